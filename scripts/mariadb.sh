#!/usr/bin/env bash
# Start or stop a private MariaDB server for the tests (mariadb-install-db +
# mariadbd on a private port, socket and data directory), with a user
# `tagback`/`tagback` allowed everything over TCP from 127.0.0.1.
# Usage: mariadb.sh start|stop DIR PORT
set -euo pipefail
action=$1 port=$3
mkdir -p "$2" && dir=$(cd "$2" && pwd)
command -v mariadbd >/dev/null || { echo "mariadb.sh: mariadbd not found (apt-get install mariadb-server)" >&2; exit 1; }
user=$(id -un)
sock="$dir/mysqld.sock"
# mariadb-install-db gives root and the --user account socket authentication.
client() { mariadb --no-defaults --socket="$sock" -u "$user" "$@"; }
case $action in
  start)
    mkdir -p "$dir"
    if [[ ! -d "$dir/data/mysql" ]]; then
      mariadb-install-db --no-defaults --datadir="$dir/data" --user="$user" \
        --auth-root-authentication-method=socket --skip-test-db >"$dir/install.log" 2>&1
    fi
    if ! client -e 'select 1' >/dev/null 2>&1; then
      mariadbd --no-defaults --datadir="$dir/data" --user="$user" --port="$port" \
        --bind-address=127.0.0.1 --socket="$sock" --pid-file="$dir/mysqld.pid" \
        --skip-name-resolve --innodb-flush-log-at-trx-commit=0 --log-error="$dir/server.log" </dev/null >>"$dir/server.log" 2>&1 &
      for _ in $(seq 1 100); do
        client -e 'select 1' >/dev/null 2>&1 && break
        sleep 0.2
      done
      client -e 'select 1' >/dev/null || { echo "mariadb.sh: server did not start (see $dir/server.log)" >&2; exit 1; }
    fi
    client -e "CREATE USER IF NOT EXISTS 'tagback'@'127.0.0.1' IDENTIFIED BY 'tagback';
      GRANT ALL PRIVILEGES ON *.* TO 'tagback'@'127.0.0.1';"
    ;;
  stop)
    if [[ -f "$dir/mysqld.pid" ]]; then
      pid=$(cat "$dir/mysqld.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    ;;
  *) echo "usage: mariadb.sh start|stop DIR PORT" >&2; exit 2 ;;
esac
