#!/usr/bin/env bash
# `make demo`: the main job end to end on the scratch cluster started by scratch-pg.sh:
# generate the Fast Track database, check, full backup, info, verify, restore into a fresh
# database, and compare the two table by table.
set -euo pipefail
bin=${1:?binary}; scale=${2:-2}
psql="${FTBACKUP_SCRATCH_BIN}/psql"
base="host=127.0.0.1 port=$FTBACKUP_SCRATCH_PORT user=postgres"
export FTBACKUP_DB="$base dbname=fasttrack"
export FTBACKUP_REPO="$PWD/.scratch/demo/repository"
restored="$base dbname=fasttrack_restored"
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "generating the Fast Track database (scale $scale)"
"$psql" "$FTBACKUP_TEST_DSN" -qAtc "DROP DATABASE IF EXISTS fasttrack WITH (FORCE)" -c "CREATE DATABASE fasttrack" >/dev/null
"$bin" dev seed --scale "$scale"

step "ftbackup check"
"$bin" check

step "ftbackup setup (change archival: publication, heartbeat, slot)"
"$bin" setup --fix-replica-identity

step "ftbackup backup --type full -j2 (its snapshot comes from a replication slot: aligned with the change archive)"
rm -rf "$FTBACKUP_REPO"
label=$("$bin" backup --type full -j2)
echo "new backup: $label"

step "ftbackup info"
"$bin" info

step "ftbackup verify"
"$bin" verify

step "ftbackup restore --dry-run, then for real into a fresh database"
"$psql" "$FTBACKUP_TEST_DSN" -qAtc "DROP DATABASE IF EXISTS fasttrack_restored WITH (FORCE)" -c "CREATE DATABASE fasttrack_restored" >/dev/null
"$bin" restore --target "$restored" --dry-run
"$bin" restore --target "$restored" -j2

step "comparing source and restored databases table by table (ordered row hashes)"
"$bin" dev compare --target "$restored"

step "point in time: a good change, then a 'bad deploy' that wipes a tool's data; the hourly incremental"
"$psql" "$FTBACKUP_DB" -qc "UPDATE users.accounts SET full_name = 'Renamed before the incident' WHERE id = (SELECT id FROM users.accounts ORDER BY id LIMIT 1)"
sleep 1
before_incident=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
sleep 1
"$psql" "$FTBACKUP_DB" -qc "DELETE FROM sprint_15_value_proposition.hypotheses" -c "UPDATE sprint_15_value_proposition.tool_data SET data = '{}'"
"$bin" backup --type incr
"$bin" info | tail -4

step "ftbackup restore --at $before_incident (just before the bad deploy)"
"$psql" "$FTBACKUP_TEST_DSN" -qAtc "DROP DATABASE IF EXISTS fasttrack_pitr WITH (FORCE)" -c "CREATE DATABASE fasttrack_pitr" >/dev/null
"$bin" restore --at "$before_incident" --target "$base dbname=fasttrack_pitr" --dry-run
"$bin" restore --at "$before_incident" --target "$base dbname=fasttrack_pitr"
echo "hypotheses now in the source: $("$psql" "$FTBACKUP_DB" -qAtc "SELECT count(*) FROM sprint_15_value_proposition.hypotheses"); \
in the point-in-time restore: $("$psql" "$base dbname=fasttrack_pitr" -qAtc "SELECT count(*) FROM sprint_15_value_proposition.hypotheses"); \
the renamed user there: $("$psql" "$base dbname=fasttrack_pitr" -qAtc "SELECT count(*) FROM users.accounts WHERE full_name = 'Renamed before the incident'")"

step "data lifecycle: archive completed tool data older than 2 years (dry run, then for real)"
"$bin" lifecycle archive --dry-run
"$bin" lifecycle archive
"$bin" lifecycle list

step "data lifecycle: prune audit rows older than 7 years: yearly partitions past retention go whole, the rest by rows"
"$bin" lifecycle prune-audit --dry-run
"$bin" lifecycle prune-audit
"$bin" verify --archives --evidence

step "a restore of the backup taken before the lifecycle runs does not bring retired rows back"
"$psql" "$FTBACKUP_TEST_DSN" -qAtc "DROP DATABASE IF EXISTS fasttrack_restored WITH (FORCE)" -c "CREATE DATABASE fasttrack_restored" >/dev/null
"$bin" restore --target "$restored" -j2
echo "audit rows older than 7 years in the restore: $("$psql" "$restored" -qAtc "SELECT count(*) FROM audit.events WHERE \"timestamp\" < localtimestamp - interval '7 years'")"

step "compliance report of this month (findings exit 2: no drill has run here yet); HTML beside the repository"
"$bin" report || echo "(report exit $?: findings listed above)"
"$bin" report --format html --out "$FTBACKUP_REPO/../compliance-report.html" || true
ls -l "$FTBACKUP_REPO/../compliance-report.html"

step "ftbackup expire --dry-run (the fresh backup is the newest full: kept)"
"$bin" expire --dry-run

printf '\nrepository: %s (kept until the next make demo; the cluster is stopped)\n' "$FTBACKUP_REPO"
