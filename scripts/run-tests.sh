#!/usr/bin/env bash
# Runs inside scratch-pg.sh's environment: seeds the template database the integration tests copy,
# then runs every test target.
set -euo pipefail
export FTBACKUP_TEST_TEMPLATE=fasttrack_template
psql="${FTBACKUP_SCRATCH_BIN}/psql"
[ -x "$psql" ] || psql=psql
"$psql" "$FTBACKUP_TEST_DSN" -qAtc "DROP DATABASE IF EXISTS $FTBACKUP_TEST_TEMPLATE" >/dev/null
"$psql" "$FTBACKUP_TEST_DSN" -qAtc "CREATE DATABASE $FTBACKUP_TEST_TEMPLATE" >/dev/null
.build/debug/ftbackup dev seed --scale 1 --db "host=127.0.0.1 port=$FTBACKUP_SCRATCH_PORT user=postgres dbname=$FTBACKUP_TEST_TEMPLATE"
swift test "$@"
