#!/usr/bin/env bash
# `make bench`: ftbackup against the tools a user would otherwise run, in one run, on the same
# scratch cluster and data. Prints wall time, CPU time, peak RSS and bytes, and the ratios.
#   backup:  ftbackup backup -j2   vs  pg_dump -Fd -j2   vs  two `psql COPY | zstd -3` pipes
#   restore: ftbackup restore -j2  vs  pg_restore -j2 (from that dump) into empty databases
#   S3:      the same backup and restore to a loopback moto server (when installed); BENCH_ONLY=s3 runs only that
set -euo pipefail
bin=${1:?binary}; scale=${2:-200}
B="$FTBACKUP_SCRATCH_BIN"
base="host=127.0.0.1 port=$FTBACKUP_SCRATCH_PORT user=postgres"
src="$base dbname=bench_src"
work="$PWD/.scratch/bench/work"
results="$work/results.tsv"
rm -rf "$work"; mkdir -p "$work"
command -v zstd >/dev/null || { echo "bench needs the zstd command (apt-get install zstd)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench needs GNU time (apt-get install time)" >&2; exit 1; }
sql() { "$B/psql" "$base dbname=postgres" -qAtc "$1" >/dev/null; }

# Each measured run gets the cluster to itself: settle (a checkpoint, then autovacuum idle, at most 120 s) before it, and
# a database a restore wrote dropped once measured (done_with). Left in place, a restored gigabyte was vacuumed (and,
# unanalyzed, analyzed) by autovacuum during the next run: after pg_restore a whole scan that sets hint bits and the
# visibility map, after ftbackup (COPY FREEZE: pages frozen and all-visible) much less, so each kind ran beside a
# different load. The seeded source is vacuumed and analyzed the same way before the first backup.
settle() {
  sql "CHECKPOINT"
  local i busy
  for i in $(seq 1 120); do
    busy=$("$B/psql" "$base dbname=postgres" -qAtc "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")
    [ "$busy" = 0 ] && return 0; sleep 1
  done
}
fresh() { sql "DROP DATABASE IF EXISTS $1 WITH (FORCE)"; sql "CREATE DATABASE $1"; settle; }
done_with() { sql "DROP DATABASE IF EXISTS $1 WITH (FORCE)"; }

# measure NAME BYTES_PATH CMD…: wall, CPU and peak RSS of CMD (and its children), bytes under BYTES_PATH.
measure() {
  local name=$1 path=$2; shift 2
  /usr/bin/time -f "%e %U %S %M" -o "$work/$name.time" "$@" >"$work/$name.out" 2>"$work/$name.err" \
    || { echo "$name failed:"; tail -5 "$work/$name.err"; exit 1; }
  read -r wall user sys rss < "$work/$name.time"
  local bytes=0
  [ -n "$path" ] && bytes=$(du -sb "$path" | cut -f1)
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$wall" "$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')" "$rss" "$bytes" >> "$results"
}

echo "==> seeding scale $scale"
sql "DROP DATABASE IF EXISTS bench_src WITH (FORCE)"; sql "CREATE DATABASE bench_src"
"$bin" dev seed --scale "$scale" --db "$src"
settle

echo "==> ftbackup backup --type full -j2"
measure ftbackup_backup "$work/repo" "$bin" backup --type full -j2 --db "$src" --repo "$work/repo"
raw=$("$bin" info --repo "$work/repo" --output json | sed -n 's/.*"rawBytes" : \([0-9]*\).*/\1/p' | head -1)
# Which COPY format the backup's data files are in (binary where every column type allows it).
manifest=$(ls "$work"/repo/backups/*/manifest.json | head -1)
formats="$(grep -c '"format" : "binary"' "$manifest" || true) tables in COPY binary, $(grep -c '"format" : "text"' "$manifest" || true) in text"

# --- S3 repository (issue 15) ----------------------------------------------------------------------
# The same backup and restore to a loopback S3 server (moto, started as scripts/scratch-s3.sh does) in this
# run, against the local folder above: wall time ratio, peak RSS, and requests per backup (moto's request log).
s3_bench() {
  s3_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"; local venv="$s3_root/.scratch/s3-venv"
  if [ ! -x "$venv/bin/moto_server" ]; then echo "==> S3: skipped (moto not installed: make deps)"; return 0; fi
  echo "==> S3: ftbackup backup and restore -j2 to a loopback moto server"
  bash "$s3_root/scripts/scratch-s3.sh" start "$work/s3"
  trap 'bash "$s3_root/scripts/scratch-s3.sh" stop "$work/s3"' EXIT
  # shellcheck disable=SC1091
  source "$work/s3/s3env"
  local -a env=(env -u AWS_PROFILE -u AWS_SESSION_TOKEN AWS_ACCESS_KEY_ID="$FTBACKUP_TEST_S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$FTBACKUP_TEST_S3_SECRET_KEY"
                AWS_ENDPOINT_URL_S3="$FTBACKUP_TEST_S3_ENDPOINT" AWS_REGION=us-east-1)
  "$FTBACKUP_TEST_S3_PYTHON" -c "import boto3,sys; boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3]).create_bucket(Bucket='bench')" \
    "$FTBACKUP_TEST_S3_ENDPOINT" "$FTBACKUP_TEST_S3_ACCESS_KEY" "$FTBACKUP_TEST_S3_SECRET_KEY"
  requests() { grep -cE '"(GET|PUT|POST|DELETE|HEAD) /bench' "$work/s3/moto.log" || true; }
  # Each S3 run is paired with a local one just before it, so the ratio is not a load change between sections.
  sql "CHECKPOINT"; measure ftbackup_s3_local_backup "$work/repo-s3pair" "$bin" backup --type full -j2 --db "$src" --repo "$work/repo-s3pair"
  local before; before=$(requests); sql "CHECKPOINT"
  measure ftbackup_s3_backup "" "${env[@]}" "$bin" backup --type full -j2 --db "$src" --repo s3://bench/repo
  s3_requests=$(( $(requests) - before ))
  s3_objects=$("${env[@]}" "$FTBACKUP_TEST_S3_PYTHON" -c "import boto3,sys; p=boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1').get_paginator('list_objects_v2'); print(sum(len(x.get('Contents', [])) for x in p.paginate(Bucket='bench')))" "$FTBACKUP_TEST_S3_ENDPOINT")
  sql "DROP DATABASE IF EXISTS bench_r5 WITH (FORCE)"; sql "CREATE DATABASE bench_r5"; sql "CHECKPOINT"
  measure ftbackup_s3_local_restore "" "$bin" restore -j2 --repo "$work/repo-s3pair" --target "$base dbname=bench_r5"
  rm -rf "$work/repo-s3pair"
  sql "DROP DATABASE IF EXISTS bench_r5 WITH (FORCE)"; sql "CREATE DATABASE bench_r5"; sql "CHECKPOINT"
  before=$(requests)
  measure ftbackup_s3_restore "" "${env[@]}" "$bin" restore -j2 --repo s3://bench/repo --target "$base dbname=bench_r5"
  s3_restore_requests=$(( $(requests) - before ))
  "$bin" dev compare --db "$src" --target "$base dbname=bench_r5" >/dev/null
  bash "$s3_root/scripts/scratch-s3.sh" stop "$work/s3"; trap - EXIT
}
s3_summary() {
  [ -n "${s3_requests:-}" ] || return 0
  awk -F'\t' -v req="$s3_requests" -v rreq="$s3_restore_requests" -v obj="$s3_objects" '
    { wall[$1]=$2; rss[$1]=$4 }
    END {
      printf "S3 (loopback moto): backup %.1f s = %.2fx local (%.1f s, the run just before), restore %.1f s = %.2fx local (%.1f s)   (target <= 1.3x)\n", wall["ftbackup_s3_backup"], wall["ftbackup_s3_backup"]/wall["ftbackup_s3_local_backup"], wall["ftbackup_s3_local_backup"], wall["ftbackup_s3_restore"], wall["ftbackup_s3_restore"]/wall["ftbackup_s3_local_restore"], wall["ftbackup_s3_local_restore"]
      printf "                    peak RSS backup %.0f MiB, restore %.0f MiB   (target < 150 MiB + 2 jobs x 8 MiB parts = 166 MiB)\n", rss["ftbackup_s3_backup"]/1024, rss["ftbackup_s3_restore"]/1024
      printf "                    requests: %d per backup (%d objects written), %d per restore\n", req, obj, rreq
    }' "$results"
}
if [ "${BENCH_ONLY:-}" = s3 ]; then
  # Only this section (a quick check at a small scale): each S3 run against the local run just before it.
  s3_bench; s3_summary; exit 0
fi

echo "==> pg_dump -Fd -j2"
measure pg_dump "$work/dump" "$B/pg_dump" -Fd -j2 -f "$work/dump" "$src"

echo "==> two psql COPY | zstd -3 pipes"
"$B/psql" "$src" -qAtc "SELECT quote_ident(n.nspname)||'.'||quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid=c.relnamespace WHERE c.relkind='r' AND n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg_toast%' ORDER BY pg_total_relation_size(c.oid) DESC" > "$work/tables"
mkdir -p "$work/pipes"
cat > "$work/pipe.sh" <<PIPE
#!/usr/bin/env bash
# Greedy split of the tables (largest first) into two workers, each COPY | zstd -3, as a user would script it.
set -euo pipefail
worker() { local i=0; while read -r t; do if [ \$((i % 2)) -eq \$1 ]; then "$B/psql" "$src" -qAtc "COPY \$t TO STDOUT" | zstd -3 -q -T1 > "$work/pipes/\$t.zst"; fi; i=\$((i+1)); done < "$work/tables"; }
worker 0 & worker 1 & wait
PIPE
measure copy_zstd "$work/pipes" bash "$work/pipe.sh"

echo "==> the same two pipes with COPY (FORMAT binary), to size the text/binary choice"
mkdir -p "$work/pipes_binary"
sed -e 's/TO STDOUT/TO STDOUT (FORMAT binary)/' -e "s#$work/pipes/#$work/pipes_binary/#" "$work/pipe.sh" > "$work/pipe_binary.sh"
measure copy_zstd_binary "$work/pipes_binary" bash "$work/pipe_binary.sh"

echo "==> ftbackup restore -j2"
sql "DROP DATABASE IF EXISTS bench_r1 WITH (FORCE)"; sql "CREATE DATABASE bench_r1"; sql "CHECKPOINT"
measure ftbackup_restore "" "$bin" restore -j2 --repo "$work/repo" --target "$base dbname=bench_r1"

s3_bench

echo "==> encryption at rest: the same backup and restore with a master key (--key-file)"
"$bin" key create --key-file "$work/bench.key" >/dev/null
sql "CHECKPOINT"
measure ftbackup_backup_enc "$work/repo-enc" "$bin" backup --type full -j2 --db "$src" --repo "$work/repo-enc" --key-file "$work/bench.key"
sql "DROP DATABASE IF EXISTS bench_r4 WITH (FORCE)"; sql "CREATE DATABASE bench_r4"; sql "CHECKPOINT"
measure ftbackup_restore_enc "" "$bin" restore -j2 --repo "$work/repo-enc" --key-file "$work/bench.key" --target "$base dbname=bench_r4"
"$bin" dev compare --db "$src" --target "$base dbname=bench_r4" >/dev/null
# The plain pair again after the encrypted one: encryption is judged against the mean of the plain runs on
# either side of it, so a load change during the run does not pass for its cost.
sql "CHECKPOINT"
measure ftbackup_backup_2 "$work/repo-2" "$bin" backup --type full -j2 --db "$src" --repo "$work/repo-2"
sql "DROP DATABASE IF EXISTS bench_r5 WITH (FORCE)"; sql "CREATE DATABASE bench_r5"; sql "CHECKPOINT"
measure ftbackup_restore_2 "" "$bin" restore -j2 --repo "$work/repo-2" --target "$base dbname=bench_r5"
sql "DROP DATABASE IF EXISTS bench_r4 WITH (FORCE)"; sql "DROP DATABASE IF EXISTS bench_r5 WITH (FORCE)"; rm -rf "$work/repo-2"

# --- restore against pg_restore (issue 14) ----------------------------------------------------------
# One restore of each kind varied by 15-20 % from run to run on the same machine (one run of pg_restore followed by
# vacuumdb came out 1 s slower than pg_restore alone, where vacuumdb takes 3 s): the four kinds run in rounds,
# alternating, and the ratios are between their medians.
echo "==> restore rounds (x${RESTORE_ROUNDS:=3}): pg_restore -j2; ftbackup restore -j2 --skip-analyze (neither analyzes);"
echo "    pg_restore -j2 then vacuumdb --analyze-only -j2; ftbackup restore -j2 (its restore includes ANALYZE)"
cat > "$work/restore_analyze.sh" <<R
set -e
"$B/pg_restore" -j2 -d "$base dbname=bench_r3" "$work/dump"
"$B/vacuumdb" --analyze-only -j2 -q -d "$base dbname=bench_r3"
R
for round in $(seq 1 "$RESTORE_ROUNDS"); do
  fresh bench_r2; measure "pg_restore_$round" "" "$B/pg_restore" -j2 -d "$base dbname=bench_r2" "$work/dump"; done_with bench_r2
  fresh bench_r6; measure "ftbackup_restore_skip_$round" "" "$bin" restore -j2 --skip-analyze --repo "$work/repo" --target "$base dbname=bench_r6"
  [ "$round" = 1 ] && "$bin" dev compare --db "$src" --target "$base dbname=bench_r6" >/dev/null
  done_with bench_r6
  fresh bench_r3; measure "pg_restore_analyze_$round" "" bash "$work/restore_analyze.sh"; done_with bench_r3
  fresh bench_r7; measure "ftbackup_restore_round_$round" "" "$bin" restore -j2 --repo "$work/repo" --target "$base dbname=bench_r7"; done_with bench_r7
done
# Each kind's median run, under the kind's own name (wall, CPU, RSS of that run).
for kind in pg_restore ftbackup_restore_skip pg_restore_analyze ftbackup_restore_round; do
  grep -P "^${kind}_[0-9]+\t" "$results" | sort -t$'\t' -k2,2g | awk -v n="$RESTORE_ROUNDS" -v k="$kind" -F'\t' -v OFS='\t' \
    'NR == int((n + 1) / 2) { $1 = k "_median"; print }' >> "$results"
done

echo "==> checking the ftbackup restore against the source"
"$bin" dev compare --db "$src" --target "$base dbname=bench_r1"

# A repository belongs to one database: the restored copy gets its own.
echo "==> lifecycle on the restored copy: archive completed tool data older than 2 years, prune audit rows older than 7"
measure lifecycle_archive "" "$bin" lifecycle archive --output json --db "$base dbname=bench_r1" --repo "$work/repo-lifecycle"
measure lifecycle_prune "" "$bin" lifecycle prune-audit --output json --db "$base dbname=bench_r1" --repo "$work/repo-lifecycle"
archived=$(sed -n 's/^      "rows" : \([0-9]*\).*/\1/p' "$work/lifecycle_archive.out" | awk '{s+=$1} END {print s+0}')
archive_longest=$(sed -n 's/.*"longestBatchSeconds" : \([0-9.e-]*\).*/\1/p' "$work/lifecycle_archive.out" | head -1)
pruned=$(sed -n 's/^      "rows" : \([0-9]*\).*/\1/p' "$work/lifecycle_prune.out" | awk '{s+=$1} END {print s+0}')
prune_longest=$(sed -n 's/.*"longestBatchSeconds" : \([0-9.e-]*\).*/\1/p' "$work/lifecycle_prune.out" | sort -g | tail -1)

echo "==> change archival on the source: setup, a slot-aligned full, 1% of rows changed, the incremental"
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
export FTBACKUP_DB="$src" FTBACKUP_REPO="$work/pitr-repo"
"$bin" setup --fix-replica-identity >/dev/null
measure full_aligned "" "$bin" backup --type full -j2
"$B/psql" "$src" -qc "DO \$\$ DECLARE r record; BEGIN
  FOR r IN SELECT c.oid::regclass AS t, (SELECT quote_ident(attname) FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped AND attgenerated = '' AND attidentity <> 'a' ORDER BY attnum DESC LIMIT 1) AS col
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname IN ('users','organizations','tool_access','audit') OR (c.relkind = 'r' AND n.nspname LIKE 'sprint\\_%')
  LOOP CONTINUE WHEN r.col IS NULL; EXECUTE format('UPDATE %s SET %s = %s WHERE random() < 0.01', r.t, r.col, r.col); END LOOP; END \$\$"
changed_large=$("$B/psql" "$src" -qAtc "SELECT sum(n_tup_upd) FROM pg_stat_user_tables")
measure incr_1pct "" "$bin" backup --type incr
for i in $(seq 1 5000); do echo "UPDATE tool_access.progress SET progress_percentage = progress_percentage WHERE ctid = (SELECT ctid FROM tool_access.progress OFFSET $((i * 7)) LIMIT 1);"; done > "$work/small.sql"
"$B/psql" "$src" -q -f "$work/small.sql" >/dev/null
small_at=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ); sleep 1
measure incr_small "" "$bin" backup --type incr
# restore --at against the plain restore of the same full, in alternating rounds (single runs vary by 15-20 %):
# the ratio is between medians, the replay's the median of the --at rounds' own.
echo "==> restore --at rounds (x$RESTORE_ROUNDS), each beside a plain restore of the full it starts from"
for round in $(seq 1 "$RESTORE_ROUNDS"); do
  fresh bench_pitr_plain
  if [ "$round" = 1 ]; then aligned_set=$("$bin" info --output json | python3 -c "import json,sys; print([b['label'] for b in json.load(sys.stdin)['backups'] if b['type'] == 'full'][-1])"); fi
  measure "restore_at_plain_$round" "" "$bin" restore --set "$aligned_set" --target "$base dbname=bench_pitr_plain" -j2
  done_with bench_pitr_plain
  fresh bench_pitr
  measure "restore_at_$round" "" "$bin" restore --at "$small_at" --target "$base dbname=bench_pitr" -j2 --output json
  json "$work/restore_at_$round.out" "'replay_$round\t%.3f' % d['replaySeconds']" >> "$work/replay_seconds.tsv"
  # (the last round's is kept: the one-tool runs below restore into it in place)
  [ "$round" = "$RESTORE_ROUNDS" ] || done_with bench_pitr
done
for kind in restore_at_plain restore_at; do
  grep -P "^${kind}_[0-9]+\t" "$results" | sort -t$'\t' -k2,2g | awk -v n="$RESTORE_ROUNDS" -v k="$kind" -F'\t' -v OFS='\t' \
    'NR == int((n + 1) / 2) { $1 = k "_median"; print }' >> "$results"
done
replay_seconds=$(cut -f2 "$work/replay_seconds.tsv" | sort -g | awk -v n="$RESTORE_ROUNDS" 'NR == int((n + 1) / 2)')
replay_changes=$(json "$work/restore_at_1.out" "d['changesApplied']"); replay_txns=$(json "$work/restore_at_1.out" "d['transactionsApplied']")
echo "==> restore --at of one tool in place (--schema --clean): reads only the segments that name it"
# The whole-database restore --at just wrote 1 GB into the same cluster: its checkpoint and autovacuum's
# work on it run for a while after it. Let them finish (settle), then take five runs.
settle
for run in 1 2 3 4 5; do
  measure "restore_at_tool_$run" "" "$bin" restore --at "$small_at" --schema sprint_24_fit_abc_analysis --clean --yes --target "$base dbname=bench_pitr" -j2 --output json
done

echo "==> the follower under a steady write load (60 s, seal_every 10 s): recovery point age"
sed 's/seal_every: 60s/seal_every: 10s/' policies/default.yaml > "$work/follow-policy.yaml"
"$bin" follow --policy "$work/follow-policy.yaml" > "$work/follow.out" 2> "$work/follow.err" & follower=$!
( for i in $(seq 1 600); do echo "UPDATE tool_access.progress SET progress_percentage = progress_percentage WHERE ctid = (SELECT ctid FROM tool_access.progress OFFSET $i LIMIT 1); SELECT pg_sleep(0.1);"; done | "$B/psql" "$src" -q >/dev/null ) &
writer=$!
max_age=0
sleep 15  # one seal interval for the follower to start up and seal its first segment
for i in $(seq 1 9); do
  sleep 5
  age=$("$bin" info --output json | python3 -c "import json,sys; print(int(json.load(sys.stdin)['changeArchive'].get('newestCommitAgeSeconds') or 0))")
  [ "$age" -gt "$max_age" ] && max_age=$age
done
wait $writer; kill -TERM $follower; wait $follower || true

echo "==> ftbackup drill: the newest restorable point into a scratch database, validated; measured RTO, RPO, headroom"
"$bin" drill --output json -j2 > "$work/drill.out" 2> "$work/drill.err" || { echo "drill did not pass:"; tail -3 "$work/drill.err"; }
"$bin" teardown >/dev/null

# --- replay speed (issue 14) -------------------------------------------------------------------------
# A small database of its own, so each measurement restores little besides what it replays: a full,
# then the workload, then the incremental, then restore --at just after the workload.
echo "==> replay speed: mixed small transactions, a bulk insert, one ${REPLAY_BIG:=5000000}-change transaction"
replay_db="$base dbname=bench_replay"
sql "DROP DATABASE IF EXISTS bench_replay WITH (FORCE)"; sql "CREATE DATABASE bench_replay"
"$B/psql" "$replay_db" -q <<'SQL'
CREATE SCHEMA mix;
-- body is ~3 KB of hex (pglz does not shrink it): stored out of line, sent as "unchanged TOAST" by updates of doc
CREATE TABLE mix.docs (id int PRIMARY KEY, doc jsonb NOT NULL, body text NOT NULL);
INSERT INTO mix.docs SELECT g, jsonb_build_object('n', 0, 'tags', jsonb_build_array('a', 'b'), 'owner', md5(g::text)),
  (SELECT string_agg(md5(g::text || x::text), '') FROM generate_series(1, 100) x) FROM generate_series(1, 20000) g;
CREATE TABLE mix.events (id bigint NOT NULL, day int NOT NULL, payload text, PRIMARY KEY (id, day)) PARTITION BY RANGE (day);
CREATE TABLE mix.events_0 PARTITION OF mix.events FOR VALUES FROM (0) TO (10);
CREATE TABLE mix.events_1 PARTITION OF mix.events FOR VALUES FROM (10) TO (20);
CREATE TABLE mix.events_2 PARTITION OF mix.events FOR VALUES FROM (20) TO (30);
CREATE TABLE mix.events_3 PARTITION OF mix.events FOR VALUES FROM (30) TO (40);
INSERT INTO mix.events SELECT g, g % 40, 'event ' || g FROM generate_series(1, 20000) g;
CREATE SCHEMA bulk;
CREATE TABLE bulk.rows (id bigint PRIMARY KEY, a int, b text, c timestamptz);
CREATE TABLE bulk.big (id bigint PRIMARY KEY, v int);
SQL
export FTBACKUP_DB="$replay_db" FTBACKUP_REPO="$work/replay-repo"
"$bin" setup >/dev/null
now_us() { date -u +%Y-%m-%dT%H:%M:%S.%6NZ; }
# replay_run NAME WORKLOAD_SQL: full, workload, incremental, then restore --at just after the workload.
replay_run() {
  "$bin" backup --type full >/dev/null
  "$B/psql" "$replay_db" -qc "$2"
  local at; at=$(now_us); sleep 1
  "$bin" backup --type incr >/dev/null
  sql "DROP DATABASE IF EXISTS bench_replay_$1 WITH (FORCE)"; sql "CREATE DATABASE bench_replay_$1"
  measure "replay_$1" "" "$bin" restore --at "$at" --target "$base dbname=bench_replay_$1" --output json
  "$bin" dev compare --target "$base dbname=bench_replay_$1" --schema mix --schema bulk >/dev/null
}
# 20,000 transactions of 3 changes: a jsonb update (TOASTed body unchanged), an insert into a partition, a delete.
replay_run mixed "DO \$\$ BEGIN FOR i IN 1..20000 LOOP
  UPDATE mix.docs SET doc = jsonb_set(doc, '{n}', to_jsonb(i)) WHERE id = 1 + (i * 7919) % 20000;
  INSERT INTO mix.events VALUES (1000000 + i, i % 40, 'new event ' || i);
  DELETE FROM mix.events WHERE id = i AND day = i % 40;
  COMMIT;
END LOOP; END \$\$"
replay_run bulk "INSERT INTO bulk.rows SELECT g, g % 1000, 'row ' || g, now() FROM generate_series(1, 500000) g"
replay_run big "INSERT INTO bulk.big SELECT g, g FROM generate_series(1, $REPLAY_BIG) g"
"$bin" teardown >/dev/null
for run in mixed bulk big; do
  json "$work/replay_$run.out" "'%s\t%d\t%d\t%.2f' % ('$run', d['transactionsApplied'], d['changesApplied'], d['replaySeconds'])" >> "$work/replay.tsv"
done

echo
echo "scale $scale: database $("$B/psql" "$src" -qAtc "SELECT pg_size_pretty(pg_database_size(current_database()))"), data files $((raw / 1048576)) MiB raw ($formats)"
awk -F'\t' -v raw="$raw" -v formats="$formats" '
  { wall[$1]=$2; cpu[$1]=$3; rss[$1]=$4; bytes[$1]=$5; order[NR]=$1 }
  END {
    printf "%-18s %9s %9s %10s %11s\n", "run", "wall s", "cpu s", "peak RSS", "output MiB"
    for (i = 1; i <= NR; i++) { n = order[i]; printf "%-18s %9.1f %9.1f %7.0f MiB %11.1f\n", n, wall[n], cpu[n], rss[n]/1024, bytes[n]/1048576 }
    printf "\nbackup:  pg_dump -Fd -j2 / ftbackup = %.2fx faster   (target >= 2.5x; %s)\n", wall["pg_dump"]/wall["ftbackup_backup"], formats
    printf "         ftbackup / COPY|zstd pipes = %.2fx        (target <= 1.15x)\n", wall["ftbackup_backup"]/wall["copy_zstd"]
    printf "         ftbackup bytes / pg_dump bytes = %.2f      (target <= 1)\n", bytes["ftbackup_backup"]/bytes["pg_dump"]
    printf "         COPY binary bytes / COPY text bytes (both zstd -3) = %.2f, time %.2fx\n", bytes["copy_zstd_binary"]/bytes["copy_zstd"], wall["copy_zstd_binary"]/wall["copy_zstd"]
    printf "restore (medians of the rounds; %s):\n", formats
    printf "         pg_restore -j2 / ftbackup --skip-analyze (neither analyzes) = %.2fx faster (%.1f s vs %.1f s; target >= 1.25x)\n", wall["pg_restore_median"]/wall["ftbackup_restore_skip_median"], wall["pg_restore_median"], wall["ftbackup_restore_skip_median"]
    printf "         pg_restore -j2 + vacuumdb --analyze-only -j2 / ftbackup (both analyze) = %.2fx faster (%.1f s vs %.1f s)\n", wall["pg_restore_analyze_median"]/wall["ftbackup_restore_round_median"], wall["pg_restore_analyze_median"], wall["ftbackup_restore_round_median"]
    printf "         pg_restore -j2 (no ANALYZE) / ftbackup (with ANALYZE) = %.2fx faster\n", wall["pg_restore_median"]/wall["ftbackup_restore_round_median"]
    rounds = ""; for (i = 1; ("pg_restore_" i) in wall; i++) rounds = rounds sprintf(" %.1f/%.1f/%.1f/%.1f", wall["pg_restore_" i], wall["ftbackup_restore_skip_" i], wall["pg_restore_analyze_" i], wall["ftbackup_restore_round_" i])
    printf "         each round, pg_restore/skip-analyze/pg_restore+vacuumdb/ftbackup s:%s\n", rounds
    printf "peak RSS ftbackup backup %.0f MiB, restore %.0f MiB (target < 150 MiB)\n", rss["ftbackup_backup"]/1024, rss["ftbackup_restore"]/1024
    pb = (wall["ftbackup_backup"] + wall["ftbackup_backup_2"]) / 2; pr = (wall["ftbackup_restore"] + wall["ftbackup_restore_2"]) / 2
    printf "encryption at rest: backup %+.1f%%, restore %+.1f%% wall time against the mean of the plain runs before and after it (plain runs %.1f/%.1f s and %.1f/%.1f s), %+.2f%% bytes (target < 5%%)\n", (wall["ftbackup_backup_enc"]/pb-1)*100, (wall["ftbackup_restore_enc"]/pr-1)*100, wall["ftbackup_backup"], wall["ftbackup_backup_2"], wall["ftbackup_restore"], wall["ftbackup_restore_2"], (bytes["ftbackup_backup_enc"]/bytes["ftbackup_backup"]-1)*100
  }' "$results"
s3_summary
awk -F'\t' -v changed="$changed_large" -v rc="$replay_changes" -v rs="$replay_seconds" -v rt="$replay_txns" -v age="$max_age" '
  { wall[$1]=$2 }
  END {
    printf "change archival: incremental after ~1%% of rows changed (%d row updates): %.1f s = %.1f%% of a full backup (%.1f s; target < 5%%)\n", changed, wall["incr_1pct"], 100*wall["incr_1pct"]/wall["full_aligned"], wall["full_aligned"]
    printf "                 incremental after 5000 one-row transactions: %.1f s\n", wall["incr_small"]
    printf "                 restore --at: median %.1f s in all; replay of %d transactions, %d changes in %.2f s (%.0f changes/s; median of the rounds)\n", wall["restore_at_median"], rt, rc, rs, (rs > 0 ? rc/rs : 0)
    pr = wall["restore_at_plain_median"]
    rounds = ""; for (i = 1; ("restore_at_" i) in wall; i++) rounds = rounds sprintf(" %.1f/%.1f", wall["restore_at_plain_" i], wall["restore_at_" i])
    printf "                 restore --at / (plain restore of the same full + replay) = %.1f / (%.1f + %.2f) = %.2f (target <= 1; medians; each round plain/--at s:%s)\n", wall["restore_at_median"], pr, rs, wall["restore_at_median"]/(pr + rs), rounds
    n = 0; runs = ""; for (i = 1; ("restore_at_tool_" i) in wall; i++) { t[++n] = wall["restore_at_tool_" i]; runs = runs sprintf(" %.2f", wall["restore_at_tool_" i]) }
    for (i = 2; i <= n; i++) for (j = i; j > 1 && t[j] < t[j-1]; j--) { x = t[j]; t[j] = t[j-1]; t[j-1] = x }
    printf "                 restore --at --schema of one tool in place, once autovacuum is done: median of %d %.2f s (runs:%s; target <= 1 s)\n", n, t[int((n + 1) / 2)], runs
    printf "                 follower recovery point age under steady writes: at most %d s (target < 60 s)\n", age
  }' "$results"
awk -v a="$archived" -v p="$pruned" -v al="$archive_longest" -v pl="$prune_longest" -F'\t' '
  { wall[$1]=$2 }
  END {
    printf "lifecycle: archived %d tool_data rows in %.1f s (%.0f rows/s, longest batch transaction %.3f s)\n", a, wall["lifecycle_archive"], a/wall["lifecycle_archive"], al
    printf "           pruned %d audit rows in %.1f s (%.0f rows/s, longest batch transaction %.3f s; target < 1 s)\n", p, wall["lifecycle_prune"], p/wall["lifecycle_prune"], pl
  }' "$results"
python3 - "$work/drill.out" <<'PY'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception as e:
    print(f"drill: no record ({e})"); sys.exit(0)
r = d.get("rto", {}); p = d.get("rpo", {}); h = d.get("headroom", {})
print(f"drill: {'passed' if d.get('passed') else 'FAILED'}; RTO {r.get('measuredSeconds', 0):.1f} s (objective {r.get('objectiveSeconds', 0):.0f} s), RPO {p.get('measuredSeconds', 0):.0f} s (objective {p.get('objectiveSeconds', 0):.0f} s)")
print("       phases: " + ", ".join(f"{x['name']} {x['seconds']:.1f}" for x in d.get("phases", [])))
print(f"       headroom: {h.get('statement', '-')}")
PY
awk -F'\t' -v results="$results" '
  BEGIN { while ((getline line < results) > 0) { split(line, f, "\t"); rss[f[1]] = f[4] } }
  { txns[$1]=$2; changes[$1]=$3; secs[$1]=$4 }
  END {
    printf "replay: mixed small transactions (jsonb update with unchanged TOAST, insert into a partition, delete): %d transactions, %d changes in %.2f s = %.0f changes/s (target >= 50,000)\n", txns["mixed"], changes["mixed"], secs["mixed"], changes["mixed"]/secs["mixed"]
    printf "        bulk insert: %d rows in %.2f s = %.0f rows/s (target >= 100,000)\n", changes["bulk"], secs["bulk"], changes["bulk"]/secs["bulk"]
    printf "        one transaction of %d changes: %.1f s = %.0f changes/s, restore --at peak RSS %.0f MiB (target < 150 MiB)\n", changes["big"], secs["big"], changes["big"]/secs["big"], rss["replay_big"]/1024
  }' "$work/replay.tsv"
