#!/usr/bin/env bash
# Start or stop a private PostgreSQL server for the tests (initdb + pg_ctl on
# a private port and socket directory). Usage: postgres.sh start|stop DIR PORT
set -euo pipefail
action=$1 dir=$2 port=$3
bins=(/usr/lib/postgresql/*/bin)
bin=$(printf '%s\n' "${bins[@]}" | sort -V | tail -n 1)
[[ -d "$bin" ]] || { echo "postgres.sh: PostgreSQL server binaries not found" >&2; exit 1; }
as_pg() {
  if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case $action in
  start)
    mkdir -p "$dir"
    [[ $(id -u) == 0 ]] && chown postgres: "$dir"
    if [[ ! -f "$dir/data/PG_VERSION" ]]; then
      as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log" 2>&1
    fi
    mkdir -p "$dir/sock"
    if [[ $(id -u) == 0 ]]; then chown postgres: "$dir/sock"; fi
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
      -o "-p $port -k $dir/sock -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
    ;;
  stop)
    if [[ -f "$dir/data/postmaster.pid" ]]; then
      as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    fi
    ;;
  *) echo "usage: postgres.sh start|stop DIR PORT" >&2; exit 2 ;;
esac
