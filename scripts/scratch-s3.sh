#!/usr/bin/env bash
# A throwaway S3-compatible server (moto's server mode, PyPI moto[server]) on loopback, for the tests.
#
#   scripts/scratch-s3.sh start DIR      start moto on a free 127.0.0.1 port with IAM checks on; writes DIR/s3env
#   scripts/scratch-s3.sh stop DIR       stop it
#   scripts/scratch-s3.sh run DIR CMD…   start, run CMD with DIR/s3env loaded, always stop afterwards
#
# moto comes from the project's venv .scratch/s3-venv (scripts/install-deps.sh). DIR/s3env exports
# FTBACKUP_TEST_S3_ENDPOINT, FTBACKUP_TEST_S3_ACCESS_KEY/SECRET_KEY (an IAM user's key allowed s3:*)
# and FTBACKUP_TEST_S3_PYTHON (the venv's python, with botocore, for the signer cross-check).
set -euo pipefail

die() { echo "scratch-s3: error: $*" >&2; exit 1; }
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.scratch/s3-venv"

start() {
  local dir=$1 port
  mkdir -p "$dir"
  [ -x "$venv/bin/moto_server" ] || die "moto not installed in $venv (hint: make deps)"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  INITIAL_NO_AUTH_ACTION_COUNT=3 "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1 &
  echo $! >"$dir/moto.pid"
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/moto-api/" && break
    sleep 0.1
  done
  {
    echo "export FTBACKUP_TEST_S3_ENDPOINT=http://127.0.0.1:$port"
    echo "export FTBACKUP_TEST_S3_PYTHON=$venv/bin/python"
    "$venv/bin/python" "$root/scripts/s3-test-setup.py" "http://127.0.0.1:$port"
  } >"$dir/s3env" || { stop "$dir"; die "could not prepare moto (see $dir/moto.log)"; }
}

stop() {
  local dir=$1 pid
  [ -f "$dir/moto.pid" ] || return 0
  pid=$(cat "$dir/moto.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$dir/moto.pid"
}

case "${1:-}" in
  start) start "$2" ;;
  stop) stop "$2" ;;
  run)
    dir=$2; shift 2
    start "$dir"
    trap 'stop "$dir"' EXIT
    # shellcheck disable=SC1091
    source "$dir/s3env"
    "$@"
    ;;
  *) die "usage: scratch-s3.sh start|stop DIR | run DIR CMD…" ;;
esac
