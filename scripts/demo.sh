#!/usr/bin/env bash
# `make demo`: the main job end to end on the scratch cluster started by scratch-pg.sh.
set -euo pipefail
bin=${1:?binary}; scale=${2:-2}
psql="${FTBACKUP_SCRATCH_BIN}/psql"
db="host=127.0.0.1 port=$FTBACKUP_SCRATCH_PORT user=postgres dbname=fasttrack"
repo="$PWD/.scratch/demo/repository"
step() { printf '\n==> %s\n' "$*"; }

step "generating the Fast Track database (scale $scale)"
"$psql" "$FTBACKUP_TEST_DSN" -qAtc "DROP DATABASE IF EXISTS fasttrack" >/dev/null
"$psql" "$FTBACKUP_TEST_DSN" -qAtc "CREATE DATABASE fasttrack" >/dev/null
"$bin" dev seed --scale "$scale" --db "$db"

step "ftbackup check"
"$bin" check --db "$db" --repo "$repo"
