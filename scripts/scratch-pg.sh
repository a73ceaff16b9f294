#!/usr/bin/env bash
# A throwaway PostgreSQL cluster in a git-ignored folder of the project, for demo, tests and bench.
#
#   scripts/scratch-pg.sh start DIR   initdb (once) and start on a free loopback port; writes DIR/env;
#                                     installs the tests' extension (scripts/test-extension/)
#   scripts/scratch-pg.sh stop DIR    stop it (fast shutdown) and wait until it is gone
#   scripts/scratch-pg.sh run DIR CMD…  start, run CMD with DIR/env loaded, always stop afterwards
#
# DIR/env exports FTBACKUP_DB / FTBACKUP_TEST_DSN (TCP, user postgres, no password in it) and
# PGPASSFILE (DIR/pgpass, mode 0600), so libpq finds the password the way it would in production.
# The server runs as the `postgres` user when this runs as root (PostgreSQL refuses root).
# It listens on 127.0.0.1 only, with wal_level=logical and room for replication slots.
set -euo pipefail

die() { echo "scratch-pg: error: $*" >&2; exit 1; }

bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  command -v initdb >/dev/null && { dirname "$(readlink -f "$(command -v initdb)")"; return; }
  die "initdb not found (hint: apt-get install postgresql, or run make deps)"
}

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# The extensions the tests create (scripts/test-extension/) go into the server's share/extension folder,
# on every start (a no-op when they are there already): as root, or through passwordless sudo.
install_test_extensions() {
  local bin=$1 share src f
  share="$("$bin/pg_config" --sharedir 2>/dev/null)/extension" || return 0
  src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/test-extension"
  for f in "$src"/*; do
    cmp -s "$f" "$share/$(basename "$f")" && continue
    if [ -w "$share" ]; then install -m 644 "$f" "$share/"
    elif sudo -n true 2>/dev/null; then sudo -n install -m 644 "$f" "$share/"
    else echo "scratch-pg: warning: cannot install $(basename "$f") into $share (tests that create it will fail)" >&2; fi
  done
}

# TLS, on every start (a no-op when done already): a throwaway CA in DIR/tls (its certificate is what
# tests pass as sslrootcert) signs the server's certificate for 127.0.0.1 and localhost; ssl = on; and the
# role ftbackup_tls may only connect over TLS (pg_hba: hostnossl … reject), so a test connecting as it
# proves that every connection, pg_dump's and pg_restore's too, was encrypted.
setup_tls() {
  local dir=$1 data=$2
  command -v openssl >/dev/null || die "openssl not found (hint: apt-get install openssl, or run make deps)"
  if [ ! -f "$dir/tls/ca.crt" ] || [ ! -f "$data/server.crt" ]; then
    mkdir -p "$dir/tls"
    ( umask 077
      openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=ftbackup scratch CA" \
        -keyout "$dir/tls/ca.key" -out "$dir/tls/ca.crt" >/dev/null 2>&1
      openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$data/server.key" -out "$dir/tls/server.csr" >/dev/null 2>&1
      printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$dir/tls/san.ext"
      openssl x509 -req -in "$dir/tls/server.csr" -CA "$dir/tls/ca.crt" -CAkey "$dir/tls/ca.key" -CAcreateserial \
        -days 3650 -extfile "$dir/tls/san.ext" -out "$data/server.crt" >/dev/null 2>&1 ) || die "openssl could not make the test certificates"
    chmod 644 "$dir/tls/ca.crt"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$data/server.key" "$data/server.crt"
  fi
  grep -q '^ssl = on' "$data/postgresql.conf" || printf "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n" >> "$data/postgresql.conf"
  if ! grep -q 'ftbackup_tls' "$data/pg_hba.conf"; then
    { echo 'hostnossl all ftbackup_tls 127.0.0.1/32 reject'; cat "$data/pg_hba.conf"; } > "$data/pg_hba.conf.new"
    mv "$data/pg_hba.conf.new" "$data/pg_hba.conf"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$data/pg_hba.conf"
  fi
  local password; password=$(sed -n 's/^127\.0\.0\.1:\*:\*:postgres://p' "$dir/pgpass")
  grep -q ':ftbackup_tls:' "$dir/pgpass" || printf '127.0.0.1:*:*:ftbackup_tls:%s\n' "$password" >> "$dir/pgpass"
}

# The TLS-only role, created once the server runs.
create_tls_role() {
  local dir=$1 bin=$2 port=$3 password
  password=$(sed -n 's/^127\.0\.0\.1:\*:\*:postgres://p' "$dir/pgpass")
  PGPASSFILE="$dir/pgpass" "$bin/psql" -X -q -v ON_ERROR_STOP=1 "host=127.0.0.1 port=$port user=postgres dbname=postgres" \
    -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ftbackup_tls') THEN
          CREATE ROLE ftbackup_tls LOGIN SUPERUSER PASSWORD '$password'; END IF; END \$\$" >/dev/null
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() {
  local dir; dir=$(mkdir -p "$1" && cd "$1" && pwd)
  local bin; bin=$(bindir)
  local data="$dir/data"
  install_test_extensions "$bin"
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' user (it comes with the postgresql package)"
    chown postgres: "$dir"
    runuser -u postgres -- test -w "$dir" || die "the postgres user cannot reach $dir (hint: make its parent folders world-executable, or run as a normal user)"
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    local password; password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    umask 077
    printf '%s\n' "$password" > "$dir/pwfile"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir/pwfile"
    as_owner "$bin/initdb" -D "$data" -U postgres --pwfile="$dir/pwfile" -A scram-sha-256 \
      --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    printf '127.0.0.1:*:*:postgres:%s\n' "$password" > "$dir/pgpass"
    chmod 600 "$dir/pgpass"
    rm -f "$dir/pwfile"
    cat >> "$data/postgresql.conf" <<CONF
# scratch-pg.sh
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
wal_level = logical
# Every test that archives changes holds a slot while it runs, and the suites run in parallel: once tests stopped
# blocking the cooperative pool while their ftbackup children ran, more of them ran at once and 32 ran out.
max_replication_slots = 128
max_wal_senders = 128
# The test suites run in parallel and each restore -j2 opens about ten sessions: on a slow machine 400 ran out
# ("sorry, too many clients already", 205 at the peak of 8 suites alone).
max_connections = 1000
max_prepared_transactions = 8
shared_buffers = 256MB
maintenance_work_mem = 256MB
max_wal_size = 4GB
log_min_messages = warning
${SCRATCH_PG_FAST:+fsync = off}
${SCRATCH_PG_FAST:+synchronous_commit = off}
${SCRATCH_PG_FAST:+full_page_writes = off}
CONF
    printf 'host all all 127.0.0.1/32 scram-sha-256\nhost replication all 127.0.0.1/32 scram-sha-256\n' > "$data/pg_hba.conf"
  fi
  setup_tls "$dir" "$data"
  # Clusters made before the tests used PREPARE TRANSACTION get it on their next start.
  grep -q '^max_prepared_transactions' "$data/postgresql.conf" || echo 'max_prepared_transactions = 8' >> "$data/postgresql.conf"
  if as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    echo "scratch-pg: already running ($(sed -n 4p "$data/postmaster.pid" 2>/dev/null))" >&2
  else
    local port=${SCRATCH_PG_PORT:-54329} tries=0
    while true; do
      if port_free "$port" && as_owner "$bin/pg_ctl" -D "$data" -o "-p $port" -l "$dir/server.log" -w -t 60 start >/dev/null 2>&1; then
        break
      fi
      tries=$((tries + 1)); port=$((port + 1))
      [ $tries -ge 40 ] && { tail -20 "$dir/server.log" >&2 || true; die "could not start a server (40 ports tried)"; }
    done
  fi
  local port; port=$(sed -n 4p "$data/postmaster.pid")
  create_tls_role "$dir" "$bin" "$port"
  cat > "$dir/env" <<ENV
export PGPASSFILE='$dir/pgpass'
export FTBACKUP_TEST_DSN='host=127.0.0.1 port=$port user=postgres dbname=postgres'
export FTBACKUP_SCRATCH_PORT='$port'
export FTBACKUP_SCRATCH_BIN='$bin'
export FTBACKUP_TEST_CA='$dir/tls/ca.crt'
ENV
  echo "scratch-pg: running on 127.0.0.1:$port, data in $data" >&2
}

stop() {
  local dir; dir=$(cd "$1" 2>/dev/null && pwd) || return 0
  [ -f "$dir/data/postmaster.pid" ] || return 0
  as_owner "$(bindir)/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 \
    || as_owner "$(bindir)/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  echo "scratch-pg: stopped ($dir)" >&2
}

case "${1:-}" in
  start) start "${2:?DIR}" ;;
  stop) stop "${2:?DIR}" ;;
  run)
    dir=${2:?DIR}; shift 2
    trap 'stop "$dir"' EXIT
    trap 'exit 130' INT TERM
    start "$dir"
    # shellcheck disable=SC1091
    . "$dir/env"
    "$@"
    ;;
  *) echo "usage: $0 start|stop DIR | run DIR CMD..." >&2; exit 64 ;;
esac
