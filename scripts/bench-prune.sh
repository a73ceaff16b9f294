#!/usr/bin/env bash
# Retention on a large partitioned audit log: prune-audit with whole-partition drops (the default)
# against the same run pruning every partition by rows (--no-partition-drop), on two identical
# copies of an audit.events of ROWS rows (default 10 million) partitioned by year over 12 years.
# Runs inside scratch-pg.sh's environment:  make bench-prune [PRUNE_ROWS=N]
set -euo pipefail
bin=${1:?ftbackup binary}
rows=${2:-10000000}
psql="${FTBACKUP_SCRATCH_BIN}/psql"
[ -x "$psql" ] || psql=psql
base="host=127.0.0.1 port=$FTBACKUP_SCRATCH_PORT user=postgres"
work=$(mktemp -d "${TMPDIR:-/tmp}/ftbackup-bench-prune.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "==> building audit.events with $rows rows, partitioned by year (12 years, DEFAULT partition for skewed rows)"
"$psql" "$FTBACKUP_TEST_DSN" -qAtc "DROP DATABASE IF EXISTS prune_drop" -c "DROP DATABASE IF EXISTS prune_rows" -c "CREATE DATABASE prune_drop" >/dev/null
start=$(date +%s.%N)
"$psql" "$base dbname=prune_drop" -q -v ON_ERROR_STOP=1 <<SQL
CREATE SCHEMA users;
CREATE TABLE users.accounts (id uuid PRIMARY KEY, organization_id uuid);
INSERT INTO users.accounts SELECT md5('u' || g)::uuid, md5('o' || (g % 50))::uuid FROM generate_series(1, 10000) g;
CREATE SCHEMA audit;
CREATE TABLE audit.events (
  id uuid NOT NULL DEFAULT gen_random_uuid(), user_id uuid, organization_id uuid, tool_slug varchar(100),
  action varchar(100), entity_type varchar(100), entity_id uuid, changes jsonb, ip_address inet, user_agent text,
  "timestamp" timestamp NOT NULL DEFAULT now(), PRIMARY KEY (id, "timestamp")) PARTITION BY RANGE ("timestamp");
DO \$\$
DECLARE y int;
BEGIN
  FOR y IN extract(year FROM now())::int - 11 .. extract(year FROM now())::int + 1 LOOP
    EXECUTE format('CREATE TABLE audit.%I PARTITION OF audit.events FOR VALUES FROM (%L) TO (%L)', 'events_' || y, make_date(y, 1, 1), make_date(y + 1, 1, 1));
  END LOOP;
END \$\$;
CREATE TABLE audit.events_default PARTITION OF audit.events DEFAULT;
SET synchronous_commit = off;
INSERT INTO audit.events (id, user_id, organization_id, tool_slug, action, entity_type, entity_id, changes, ip_address, user_agent, "timestamp")
SELECT gen_random_uuid(), md5('u' || (g % 10000 + 1))::uuid, CASE WHEN g % 7 = 0 THEN NULL ELSE md5('o' || (g % 50))::uuid END,
       'sprint_' || lpad((g % 30)::text, 2, '0'), (ARRAY['created', 'updated', 'viewed', 'exported'])[1 + g % 4], 'tool_data',
       md5('e' || g)::uuid, jsonb_build_object('field', 'status', 'to', 'completed', 'n', g), '10.0.0.1'::inet + (g % 65000),
       'Mozilla/5.0 (bench)', localtimestamp - ((g::float8 / $rows) * interval '12 years')
FROM generate_series(1, $rows) g;
CREATE INDEX idx_audit_user ON audit.events (user_id, "timestamp" DESC);
CREATE INDEX idx_audit_org ON audit.events (organization_id, "timestamp" DESC);
CREATE INDEX idx_audit_tool ON audit.events (tool_slug, "timestamp" DESC);
VACUUM ANALYZE audit.events;
SQL
"$psql" "$FTBACKUP_TEST_DSN" -qAtc "CREATE DATABASE prune_rows TEMPLATE prune_drop" >/dev/null
printf '    built in %.0f s: %s\n' "$(echo "$(date +%s.%N) - $start" | bc)" \
  "$("$psql" "$base dbname=prune_drop" -qAtc "SELECT pg_size_pretty(pg_database_size(current_database()))")"

run() {  # name, db, extra args…
  local name=$1 db=$2; shift 2
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$work/$name.rss" "$bin" lifecycle prune-audit --output json --db "$base dbname=$db" --repo "$work/repo-$name" "$@" \
    > "$work/$name.json" 2> "$work/$name.log"
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc > "$work/$name.seconds"
}
echo "==> prune-audit (default: partitions wholly past retention exported then dropped, the rest by rows)"
run drop prune_drop
echo "==> prune-audit --no-partition-drop (every eligible row deleted in checked batches)"
run rows prune_rows --no-partition-drop

report() {  # name
  local name=$1 total dropped byrows seconds rss
  total=$(sed -n 's/^      "rows" : \([0-9]*\).*/\1/p' "$work/$name.json" | awk '{s+=$1} END {print s+0}')
  seconds=$(cat "$work/$name.seconds")
  rss=$(cat "$work/$name.rss")
  dropped=$(grep -c '"method" : "drop"' "$work/$name.json" || true)
  printf '%-6s %10d rows in %7.1f s = %9.0f rows/s; %2d partitions dropped whole; peak RSS %d MiB\n' \
    "$name" "$total" "$seconds" "$(echo "$total / $seconds" | bc -l)" "$dropped" "$((rss / 1024))"
}
echo
echo "prune-audit on $rows audit rows partitioned by year (same data, same cut-off):"
report drop
report rows
printf 'whole-partition drop is %.1fx faster than row batches\n' "$(echo "$(cat "$work/rows.seconds") / $(cat "$work/drop.seconds")" | bc -l)"
left_drop=$("$psql" "$base dbname=prune_drop" -qAtc "SELECT count(*) FROM audit.events")
left_rows=$("$psql" "$base dbname=prune_rows" -qAtc "SELECT count(*) FROM audit.events")
echo "rows left: $left_drop and $left_rows (must be equal)"
[ "$left_drop" = "$left_rows" ] || { echo "bench-prune: the two runs left different row counts" >&2; exit 1; }
