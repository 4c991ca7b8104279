#!/usr/bin/env bash
# Private PostgreSQL 15+ cluster for the sample legacy bank on PostgreSQL, with what logical
# decoding needs (wal_level=logical, replication slots and WAL senders for the embedded
# pgoutput reader and Debezium). The machine's own cluster is not ours to reconfigure (and
# changing wal_level needs a restart), so the project runs its own.
#   legacy-pg.sh up | down | status | logs [lines]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${CQRS_LEGACY_PG_DIR:-$ROOT/.data/postgres}"
PORT="${CQRS_LEGACY_PG_PORT:-5433}"
LOG="$DATA/postgres.log"
USER_NAME="${CQRS_LEGACY_PG_USER:-cqrs}"
USER_PASS="${CQRS_LEGACY_PG_PASSWORD:-cqrs}"

# Debian/Ubuntu keep the server binaries off PATH, under /usr/lib/postgresql/<major>/bin.
find_bindir() {
  if [ -n "${PG_BINDIR:-}" ]; then echo "$PG_BINDIR"; return 0; fi
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r) /usr/local/pgsql/bin; do
    [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  command -v pg_ctl >/dev/null 2>&1 && { dirname "$(command -v pg_ctl)"; return 0; }
  return 1
}

# initdb and postgres refuse to run as root: as root, the cluster belongs to the `postgres`
# OS user (created by the server package) and every server command runs as that user.
OS_USER="$(id -un)"
[ "$(id -u)" = 0 ] && OS_USER="${CQRS_LEGACY_PG_OS_USER:-postgres}"
as_owner() {
  if [ "$(id -un)" = "$OS_USER" ]; then "$@"; else runuser -u "$OS_USER" -- "$@"; fi
}

# The socket lives in the data directory, so the superuser's trust login stays local to us.
superuser_psql() { as_owner "$BIN/psql" -X -q -h "$DATA" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }
running() { [ -n "${BIN:-}" ] && [ -f "$DATA/postmaster.pid" ] && superuser_psql -tAc 'SELECT 1' >/dev/null 2>&1; }

# Another checkout's instance (or any server) already serving the port with logical decoding
# on is reused: tests only need a reachable server with the CDC settings and our role.
tcp_psql() { PGPASSWORD="$USER_PASS" "${BIN:+$BIN/}psql" -X -h 127.0.0.1 -p "$PORT" -U "$USER_NAME" -d postgres "$@"; }
serving_elsewhere() {
  [ "$(tcp_psql -tAc 'SHOW wal_level' 2>/dev/null)" = "logical" ]
}

BIN="$(find_bindir || true)"

up() {
  if running; then echo "legacy-pg: already running on 127.0.0.1:$PORT"; return 0; fi
  if serving_elsewhere; then echo "legacy-pg: a server with wal_level=logical already serves 127.0.0.1:$PORT; using it"; return 0; fi
  [ -n "$BIN" ] || { echo "legacy-pg: PostgreSQL server binaries not found; install PostgreSQL 15+ (apt-get install postgresql) or set PG_BINDIR, or point the PostgreSQL tests at a server with wal_level=logical" >&2; exit 1; }
  id "$OS_USER" >/dev/null 2>&1 || { echo "legacy-pg: running as root needs the '$OS_USER' OS user to own the cluster (set CQRS_LEGACY_PG_OS_USER)" >&2; exit 1; }
  mkdir -p "$DATA"
  chown "$OS_USER" "$DATA"
  chmod 700 "$DATA"
  as_owner test -w "$DATA" || { echo "legacy-pg: the '$OS_USER' OS user cannot reach $DATA (a parent directory is closed to it); set CQRS_LEGACY_PG_DIR to a directory it can use" >&2; exit 1; }
  if [ ! -f "$DATA/PG_VERSION" ]; then
    echo "legacy-pg: initialising $DATA"
    local initlog
    initlog="$(mktemp)"
    # initdb wants an empty directory, so its log goes elsewhere.
    as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
      >"$initlog" 2>&1 || { cat "$initlog" >&2; rm -f "$initlog"; exit 1; }
    rm -f "$initlog"
    # Password logins over TCP for every database and for replication connections.
    as_owner sh -c "cat > '$DATA/pg_hba.conf'" <<'EOF'
local   all          all                    trust
local   replication  all                    trust
host    all          all    127.0.0.1/32    scram-sha-256
host    replication  all    127.0.0.1/32    scram-sha-256
EOF
  fi
  # Settings on the command line, not in postgresql.conf, so an old data directory picks up
  # any change here on its next start.
  as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start -o "\
    -c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories='$DATA' \
    -c wal_level=logical -c max_replication_slots=64 -c max_wal_senders=64 \
    -c max_connections=300 -c shared_buffers=128MB -c fsync=off -c synchronous_commit=off \
    -c full_page_writes=off -c wal_sender_timeout=0" >/dev/null \
    || { echo "legacy-pg: server did not start; see $LOG" >&2; tail -20 "$LOG" >&2 || true; exit 1; }
  for _ in $(seq 1 120); do
    if running; then break; fi
    sleep 0.5
  done
  running || { echo "legacy-pg: server did not answer; see $LOG" >&2; tail -20 "$LOG" >&2 || true; exit 1; }
  # REPLICATION for slots and WAL streaming; CREATEDB so tests create (and own) their own
  # databases: owning the tables is what Debezium's filtered publication needs.
  superuser_psql <<EOF
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$USER_NAME') THEN
    CREATE ROLE "$USER_NAME" LOGIN;
  END IF;
END \$\$;
ALTER ROLE "$USER_NAME" WITH LOGIN REPLICATION CREATEDB PASSWORD '$USER_PASS';
EOF
  echo "legacy-pg: up on 127.0.0.1:$PORT (user $USER_NAME, wal_level=logical, data $DATA)"
}

down() {
  if running; then as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null || true; fi
  echo "legacy-pg: down"
}

status() {
  if running; then
    echo "legacy-pg: running on 127.0.0.1:$PORT"
    superuser_psql -tAc "SELECT 'wal_level=' || current_setting('wal_level') || ' max_replication_slots=' || current_setting('max_replication_slots') || ' slots_in_use=' || (SELECT count(*) FROM pg_replication_slots)" | sed 's/^/  /'
  else
    echo "legacy-pg: not running"; return 3
  fi
}

case "${1:-status}" in
  up) up ;;
  down) down ;;
  status) status ;;
  logs) tail -n "${2:-50}" "$LOG" ;;
  *) echo "usage: $0 up|down|status|logs [lines]" >&2; exit 2 ;;
esac
