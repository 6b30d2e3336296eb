# Shared helpers of the Docker suites (e2e.sh, guard.sh): output, and the
# one-node Swarm's state of the `$stack` stack (a `web` service answering
# "shop vN" over HTTP and a `db` PostgreSQL service). Sourced after the
# caller sets `stack` and `checks`.
# shellcheck shell=bash
: "${stack:?lib.sh needs \$stack}"

say() { printf '\n--- %s\n' "$*"; }
pass() { checks=$((checks + 1)); printf '  [ok  ] %s\n' "$*"; }
fail() { printf '  [FAIL] %s\n' "$*" >&2; exit 1; }

service_image() { docker service inspect --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}' "${stack}_web" | sed 's/@.*//'; }
service_replicas() { docker service inspect --format '{{.Spec.Mode.Replicated.Replicas}}' "${stack}_web"; }
web_task() { # IMAGE
  local id
  for id in $(docker ps -q --filter "label=com.docker.swarm.service.name=${stack}_web" --filter status=running); do
    [[ "$(docker inspect --format '{{.Config.Image}}' "$id" | sed 's/@.*//')" == "$1" ]] && { echo "$id"; return 0; }
  done
  return 1
}
db_task() { docker ps -q --filter "label=com.docker.swarm.service.name=${stack}_db" --filter status=running | head -n 1; }
wait_for() { # DESCRIPTION COMMAND...
  local what=$1
  shift
  for _ in $(seq 180); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 1
  done
  fail "timed out waiting for $what"
}
http_ok() { # CID EXPECTED
  docker exec "$1" python -c "import urllib.request,sys; b=urllib.request.urlopen('http://127.0.0.1:8000/').read().decode(); sys.exit(0 if b.strip()=='$2' else 1)"
}
web_ready() { local c; c=$(web_task "$1") && http_ok "$c" "shop v${1##*:}"; }
db_ready() { local c; c=$(db_task) && [[ -n "$c" ]] && docker exec "$c" su postgres -c "psql -h /tmp/pg -qc 'select 1'"; }

# The base image every suite builds on (no registry: a debootstrap root
# filesystem imported with `docker import`), built once and cached as
# WORKDIR/rootfs.tar.
ensure_base() { # IMAGE WORKDIR
  docker image inspect "$1" >/dev/null 2>&1 && return 0
  if [[ ! -f "$2/rootfs.tar" ]]; then
    rm -rf "$2/rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,postgresql bookworm "$2/rootfs" >"$2/debootstrap.log" 2>&1 ||
      fail "debootstrap failed: $(tail -n 5 "$2/debootstrap.log")"
    tar -C "$2/rootfs" -c . >"$2/rootfs.tar.tmp"
    mv "$2/rootfs.tar.tmp" "$2/rootfs.tar"
    rm -rf "$2/rootfs"
  fi
  docker import "$2/rootfs.tar" "$1" >/dev/null
}
