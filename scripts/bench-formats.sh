#!/usr/bin/env bash
# Issue 14's measurement, on a scratch cluster (run it under scripts/scratch-pg.sh run DIR …):
# backup and restore in alternating rounds, each round running every contender once on the same data:
#   backup:  ftbackup backup -j2 (binary where it can)  |  --copy-format text  |  pg_dump -Fd -j2
#   restore: ftbackup restore -j2 of each  |  pg_restore -j2, then vacuumdb --analyze-only -j2
# Prints one TSV line per run (name, round, wall s, peak RSS KiB) and the median ratios.
#   usage: scripts/bench-formats.sh BIN [SCALE=20] [ROUNDS=3]
set -euo pipefail
bin=${1:?binary}; scale=${2:-20}; rounds=${3:-3}
B="$FTBACKUP_SCRATCH_BIN"
base="host=127.0.0.1 port=$FTBACKUP_SCRATCH_PORT user=postgres"
src="$base dbname=fmt_src"
work="$PWD/.scratch/bench-formats"
rm -rf "$work"; mkdir -p "$work"
results="$work/results.tsv"
sql() { "$B/psql" "$base dbname=postgres" -qAtc "$1" >/dev/null; }
run() {  # run NAME ROUND CMD…
  local name=$1 round=$2; shift 2
  /usr/bin/time -f "%e %M" -o "$work/t" "$@" >"$work/$name.out" 2>"$work/$name.err" || { echo "$name failed:"; tail -5 "$work/$name.err"; exit 1; }
  read -r wall rss < "$work/t"
  printf '%s\t%s\t%s\t%s\n' "$name" "$round" "$wall" "$rss" | tee -a "$results"
}
fresh() { sql "DROP DATABASE IF EXISTS $1 WITH (FORCE)"; sql "CREATE DATABASE $1"; sql "CHECKPOINT"; }

sql "DROP DATABASE IF EXISTS fmt_src WITH (FORCE)"; sql "CREATE DATABASE fmt_src"
"$bin" dev seed --scale "$scale" --db "$src" >/dev/null
sql "VACUUM ANALYZE"; sql "CHECKPOINT"
echo "database $("$B/psql" "$src" -qAtc "SELECT pg_size_pretty(pg_database_size(current_database()))")"
for r in $(seq 1 "$rounds"); do
  rm -rf "$work/repo-bin" "$work/repo-text" "$work/dump"
  sql "CHECKPOINT"; run backup_binary "$r" "$bin" backup --type full -j2 --db "$src" --repo "$work/repo-bin"
  sql "CHECKPOINT"; run pg_dump "$r" "$B/pg_dump" -Fd -j2 -f "$work/dump" "$src"
  sql "CHECKPOINT"; run backup_text "$r" "$bin" backup --type full -j2 --copy-format text --db "$src" --repo "$work/repo-text"
done
manifest=$(ls "$work"/repo-bin/backups/*/manifest.json)
echo "binary backup: $(grep -c '"format" : "binary"' "$manifest") tables binary, $(grep -c '"format" : "text"' "$manifest") text;" \
  "bytes: binary $(du -sb "$work/repo-bin" | cut -f1), text $(du -sb "$work/repo-text" | cut -f1), pg_dump $(du -sb "$work/dump" | cut -f1)"
for r in $(seq 1 "$rounds"); do
  fresh fmt_r1; run restore_binary "$r" "$bin" restore -j2 --repo "$work/repo-bin" --target "$base dbname=fmt_r1"
  fresh fmt_r2; run pg_restore "$r" "$B/pg_restore" -j2 -d "$base dbname=fmt_r2" "$work/dump"
  run vacuumdb_analyze "$r" "$B/vacuumdb" --analyze-only -j2 -q -d "$base dbname=fmt_r2"
  fresh fmt_r3; run restore_text "$r" "$bin" restore -j2 --repo "$work/repo-text" --target "$base dbname=fmt_r3"
done
"$bin" dev compare --db "$src" --target "$base dbname=fmt_r1" >/dev/null && echo "binary restore compares equal to the source"
python3 - "$results" <<'PY'
import sys, statistics, collections
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, r, wall, rss = line.split("\t"); runs[name].append(float(wall))
m = {k: statistics.median(v) for k, v in runs.items()}
pa = statistics.median([a + b for a, b in zip(runs["pg_restore"], runs["vacuumdb_analyze"])])
print("median wall s: " + ", ".join(f"{k} {v:.2f}" for k, v in m.items()))
print(f"backup:  pg_dump / ftbackup binary = {m['pg_dump']/m['backup_binary']:.2f}x, / ftbackup text = {m['pg_dump']/m['backup_text']:.2f}x")
print(f"restore: pg_restore / ftbackup binary = {m['pg_restore']/m['restore_binary']:.2f}x, / text = {m['pg_restore']/m['restore_text']:.2f}x")
print(f"         pg_restore + vacuumdb / ftbackup binary = {pa/m['restore_binary']:.2f}x, / text = {pa/m['restore_text']:.2f}x")
PY
