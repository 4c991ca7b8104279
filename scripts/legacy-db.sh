#!/usr/bin/env bash
# Private MariaDB instance for the sample legacy bank, with the binlog CDC needs
# (ROW format, full row images). The machine's own MariaDB runs without a binlog, and
# turning it on there needs a restart we do not own, so the project runs its own.
#   legacy-db.sh up | down | status | logs
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${CQRS_LEGACY_DB_DIR:-$ROOT/.data/mariadb}"
PORT="${CQRS_LEGACY_DB_PORT:-3307}"
SOCK="$DATA/mysqld.sock"
LOG="$DATA/mariadbd.log"
USER_NAME="${CQRS_LEGACY_DB_USER:-cqrs}"
USER_PASS="${CQRS_LEGACY_DB_PASSWORD:-cqrs}"

find_bin() {
  for b in "$@"; do
    if command -v "$b" >/dev/null 2>&1; then command -v "$b"; return 0; fi
    for d in /usr/sbin /usr/bin /usr/local/sbin /usr/local/bin; do
      [ -x "$d/$b" ] && { echo "$d/$b"; return 0; }
    done
  done
  return 1
}

client() { "$(find_bin mariadb mysql)" --protocol=socket -S "$SOCK" -uroot "$@"; }

running() { [ -S "$SOCK" ] && client -e 'SELECT 1' >/dev/null 2>&1; }

# Another checkout's instance (or any server) already serving the port with the binlog on is
# reused: tests and the demo only need a reachable server with CDC settings.
tcp_client() { "$(find_bin mariadb mysql)" --protocol=tcp -h127.0.0.1 -P"$PORT" -u"$USER_NAME" -p"$USER_PASS" "$@"; }
serving_elsewhere() { [ "$(tcp_client -N -e 'SELECT @@log_bin' 2>/dev/null)" = "1" ]; }

up() {
  if running; then echo "legacy-db: already running on 127.0.0.1:$PORT"; return 0; fi
  if serving_elsewhere; then echo "legacy-db: a server with the binlog on already serves 127.0.0.1:$PORT; using it"; return 0; fi
  local server install
  server="$(find_bin mariadbd mysqld)" || { echo "legacy-db: mariadbd not found; install MariaDB (apt-get install mariadb-server) or point CQRS_LEGACY_URL at a server with log_bin=ON, binlog_format=ROW, binlog_row_image=FULL" >&2; exit 1; }
  install="$(find_bin mariadb-install-db mysql_install_db)" || { echo "legacy-db: mariadb-install-db not found" >&2; exit 1; }
  mkdir -p "$DATA"
  if [ ! -d "$DATA/mysql" ]; then
    echo "legacy-db: initialising $DATA"
    "$install" --no-defaults --datadir="$DATA" --user="$(id -un)" --auth-root-authentication-method=normal >"$DATA/install.log" 2>&1 \
      || { cat "$DATA/install.log" >&2; exit 1; }
  fi
  local user_flag=()
  [ "$(id -u)" = 0 ] && user_flag=(--user=root)
  # Its own session: a caller's process group ending (a timed-out test run, Ctrl-C in the shell
  # that started it) must not take the shared server down with it.
  setsid nohup "$server" --no-defaults --datadir="$DATA" --port="$PORT" --bind-address=127.0.0.1 --socket="$SOCK" \
    --pid-file="$DATA/mariadbd.pid" --log-error="$LOG" "${user_flag[@]}" \
    --server-id=1 --log-bin="$DATA/binlog" --binlog-format=ROW --binlog-row-image=FULL --binlog-row-metadata=FULL \
    --max-connections=500 --innodb-buffer-pool-size=1G --innodb-flush-log-at-trx-commit=2 --sync-binlog=0 \
    --max-allowed-packet=256M --skip-name-resolve >/dev/null 2>&1 &
  for _ in $(seq 1 120); do
    if running; then break; fi
    sleep 0.5
  done
  running || { echo "legacy-db: server did not start; see $LOG" >&2; tail -20 "$LOG" >&2 || true; exit 1; }
  client -e "CREATE USER IF NOT EXISTS '$USER_NAME'@'%' IDENTIFIED BY '$USER_PASS';
             GRANT ALL PRIVILEGES ON *.* TO '$USER_NAME'@'%' WITH GRANT OPTION;
             FLUSH PRIVILEGES;"
  echo "legacy-db: up on 127.0.0.1:$PORT (user $USER_NAME, binlog ROW/FULL, data $DATA)"
}

down() {
  if running; then client -e 'SHUTDOWN' || true; fi
  for _ in $(seq 1 60); do [ -S "$SOCK" ] || break; sleep 0.5; done
  echo "legacy-db: down"
}

status() {
  if running; then
    echo "legacy-db: running on 127.0.0.1:$PORT"
    client -N -e "SELECT @@log_bin, @@binlog_format, @@binlog_row_image" | awk '{print "  log_bin="$1" binlog_format="$2" binlog_row_image="$3}'
  else
    echo "legacy-db: not running"; return 3
  fi
}

case "${1:-status}" in
  up) up ;;
  down) down ;;
  status) status ;;
  logs) tail -n "${2:-50}" "$LOG" ;;
  *) echo "usage: $0 up|down|status|logs" >&2; exit 2 ;;
esac
