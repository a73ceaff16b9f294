#!/usr/bin/env bash
# Runs inside scratch-pg.sh's environment: seeds the template database the integration tests copy,
# then runs every test target.
set -euo pipefail
export FTBACKUP_TEST_TEMPLATE=fasttrack_template
# Tests run many restores into other databases at once: each COPY's transaction holds an xid, which every slot
# created meanwhile waits for. On a slow, loaded machine those waits outlast the production defaults (30 s, 60 s);
# the bound itself is tested with explicit short waits.
export FTBACKUP_SLOT_WAIT=600
# At most this many test cases at once (Swift Testing starts every one at once otherwise: over 350 on a 2-core
# machine, a load of 30, and tests waiting minutes for what takes seconds alone). FTBACKUP_TEST_WIDTH overrides it.
export SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH="${FTBACKUP_TEST_WIDTH:-10}"
psql="${FTBACKUP_SCRATCH_BIN}/psql"
[ -x "$psql" ] || psql=psql
"$psql" "$FTBACKUP_TEST_DSN" -qAtc "DROP DATABASE IF EXISTS $FTBACKUP_TEST_TEMPLATE" >/dev/null
"$psql" "$FTBACKUP_TEST_DSN" -qAtc "CREATE DATABASE $FTBACKUP_TEST_TEMPLATE" >/dev/null
.build/debug/ftbackup dev seed --scale 1 --db "host=127.0.0.1 port=$FTBACKUP_SCRATCH_PORT user=postgres dbname=$FTBACKUP_TEST_TEMPLATE"
# CI shows only the last lines of the log: on failure, end with the failing tests and their first issues.
log="$(mktemp "${TMPDIR:-/tmp}/ftbackup-test-log.XXXXXX")"
# The tests' own temporary files (repositories, key files, policies, proxy logs) go into a folder of this run,
# removed at its end whatever the tests left (a test that fails or is killed before its cleanup): they used to
# pile up in /tmp, master keys among them.
tests_tmp="$(mktemp -d "${TMPDIR:-/tmp}/ftbackup-tests.XXXXXX")"
trap 'rm -f "$log"; rm -rf "$tests_tmp"' EXIT
export TMPDIR="$tests_tmp"
set +e
swift test "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
    echo "---- failed tests (full output above) ----"
    grep -a '✘ Test .* recorded an issue' "$log" | cut -c1-360 | head -n 8
    grep -a '✘ Test .* failed after' "$log" | grep -av '✘ Test run with' | cut -c1-200 | head -n 8
    grep -a '✘ Test run with' "$log" | tail -n 1
fi
exit "$status"
