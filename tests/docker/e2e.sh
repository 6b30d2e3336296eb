#!/usr/bin/env bash
# The whole story on a real Docker Engine: a Django shop at v1 and v2 built
# into images (no registry: a debootstrap root filesystem imported with
# `docker import`, Django from a local wheel folder), PostgreSQL as another
# service, a one-node Swarm. Upgrade 1 -> 2, commit the stack file moving back
# to 1, and check that tagback blocks it, that the generated script's dry run
# changes nothing, that running it leaves the service on shop:1 with its
# replica count, answering HTTP, with a database equal to a fresh migrate of
# v1; that a run killed halfway converges when re-run; that record + gate
# complete the story; and the same with the job strategy and under Compose.
#
# Usage: tests/docker/e2e.sh WORKDIR   (needs TAGBACK_TEST_PYTHON: a venv python with Django 4.2)
set -euo pipefail
work=${1:?usage: e2e.sh WORKDIR}
mkdir -p "$work"
work=$(cd "$work" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
tagback=$root/target/debug/tagback
py=${TAGBACK_TEST_PYTHON:?set TAGBACK_TEST_PYTHON to a python with Django 4.2}
base="tagback-e2e/base:bookworm"
# Names are configurable so that runs on a shared Docker Engine do not collide.
img=${TAGBACK_E2E_IMAGE:-tagback-e2e/shop}
stack=${TAGBACK_E2E_STACK:-tbe2e}
project=${TAGBACK_E2E_PROJECT:-tbc}
checks=0
# shellcheck source=tests/docker/lib.sh
source "$root/tests/docker/lib.sh"


swarm_was_active=$(docker info --format '{{.Swarm.LocalNodeState}}')
cleanup() {
  docker stack rm "$stack" "${stack}vol" >/dev/null 2>&1 || true
  (cd "$work/deploy" 2>/dev/null && docker-compose -p "$project" -f compose.yml down -v >/dev/null 2>&1) || true
  (cd "$work/deploy" 2>/dev/null && DOCKER_CONFIG=$work/docker-config docker compose -p "$project" -f compose.yml down -v >/dev/null 2>&1) || true
  docker service ls -q --filter "name=${stack}_" | xargs -r docker service rm >/dev/null 2>&1 || true
  docker service ls -q --filter "name=${stack}vol_" | xargs -r docker service rm >/dev/null 2>&1 || true
  for _ in $(seq 60); do
    docker network ls -q --filter "name=${stack}" | grep -q . || break
    sleep 1
  done
  # Ended job tasks can leave exited containers behind on Docker 20.10.
  docker ps -aq --filter "name=${stack}" --filter status=exited | xargs -r docker rm >/dev/null 2>&1 || true
  docker volume rm "${stack}vol_data" >/dev/null 2>&1 || true
  if [[ "$swarm_was_active" != active ]]; then
    docker swarm leave --force >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

say "images (built once per run; the root filesystem is cached in $work)"
ensure_base "$base" "$work"
mkdir -p "$work/wheels"
if [[ ! -f "$work/wheels/.ready" ]]; then
  "$py" -m pip download -q -d "$work/wheels" "Django==4.2.*" "psycopg[binary]>=3.1"
  touch "$work/wheels/.ready"
fi

say "the shop at v1 and v2 (v2: migrations in two apps, a cross-app dependency, a squash of the old leaf)"
repo=$work/deploy
rm -rf "$repo"
mkdir -p "$repo"
export GIT_AUTHOR_NAME=e2e GIT_AUTHOR_EMAIL=e2e@example.com GIT_COMMITTER_NAME=e2e GIT_COMMITTER_EMAIL=e2e@example.com
unset GIT_DIR GIT_INDEX_FILE GIT_WORK_TREE
git -C "$repo" init -q -b main
cp -r "$root/fixtures/demo/v1/." "$repo/"
git -C "$repo" add -A && git -C "$repo" commit -qm "shop v1" && git -C "$repo" tag v1
rm -rf "$repo/accounts" "$repo/shop"
cp -r "$root/fixtures/demo/v2/." "$repo/"
(cd "$repo" && DEMO_DB="$work/mk.sqlite3" "$py" manage.py squashmigrations shop 0001 0002 --noinput >/dev/null)
git -C "$repo" add -A && git -C "$repo" commit -qm "shop v2" && git -C "$repo" tag v2
squash=$(cd "$repo/shop/migrations" && for f in *squashed*.py; do if [[ -e $f ]]; then echo "${f%.py}"; fi; done)
[[ -n "$squash" ]] || fail "squashmigrations produced no squash"

for v in 1 2; do
  ctx=$work/ctx-$v
  rm -rf "$ctx" && mkdir -p "$ctx/app"
  cp -r "$work/wheels" "$ctx/wheels"
  git -C "$repo" archive "v$v" | tar -x -C "$ctx/app"
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $base
COPY wheels/ /wheels/
RUN python3 -m venv /venv && /venv/bin/pip install -q --no-index --find-links /wheels Django psycopg psycopg-binary
ENV PATH=/venv/bin:\$PATH PYTHONUNBUFFERED=1
COPY app/ /app/
WORKDIR /app
CMD ["python", "manage.py", "runserver", "--noreload", "0.0.0.0:8000"]
DOCKERFILE
  docker build -q -t "$img:$v" "$ctx" >/dev/null
done
pass "images $img:1 and $img:2 built"

db_command='install -d -o postgres /tmp/pg && su postgres -s /bin/bash -c "/usr/lib/postgresql/15/bin/initdb -D /tmp/pg/data -A trust -U postgres >/dev/null && echo \"host all all 0.0.0.0/0 trust\" >>/tmp/pg/data/pg_hba.conf && exec /usr/lib/postgresql/15/bin/postgres -D /tmp/pg/data -c listen_addresses=* -k /tmp/pg"'
write_stack() { # TAG
  cat >"$repo/stack.yml" <<YAML
services:
  db:
    image: $base
    command: ["bash", "-c", $(printf '%s' "$db_command" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')]
    deploy:
      endpoint_mode: dnsrr
  web:
    image: $img:$1
    environment:
      DB_HOST: db
      DB_NAME: postgres
    deploy:
      replicas: 2
networks:
  default:
    attachable: true
YAML
}


schema_snippet=$(cat <<'PY'
import json, django
django.setup()
from django.db import connection
out = {}
with connection.cursor() as c:
    for t in sorted(connection.introspection.table_names(c)):
        cols = sorted([col.name, str(col.type_code), bool(col.null_ok)] for col in connection.introspection.get_table_description(c, t))
        cons = sorted(([sorted(i["columns"] or []), bool(i["primary_key"]), bool(i["unique"]), list(i["foreign_key"] or []), bool(i["index"])] for i in connection.introspection.get_constraints(c, t).values()), key=json.dumps)
        out[t] = [cols, cons]
    c.execute("SELECT app, name FROM django_migrations")
    rows = sorted(list(r) for r in c.fetchall())
print(json.dumps({"schema": out, "rows": rows}))
PY
)

# Compare the database NAME on NETWORK with a fresh migrate of v1.
compare_with_fresh_v1() { # NETWORK DBHOST DBNAME LABEL
  local net=$1 host=$2 name=$3 label=$4 fresh="fresh_$RANDOM"
  docker run --rm --network "$net" -e DB_HOST="$host" -e DB_NAME="$name" "$img:1" python manage.py migrate --check >/dev/null ||
    fail "$label: migrate --check with the v1 code reports unapplied migrations"
  pass "$label: migrate --check with the v1 code is clean"
  docker run --rm --network "$net" -e PGHOST="$host" "$base" psql -U postgres -qc "CREATE DATABASE $fresh" >/dev/null
  docker run --rm --network "$net" -e DB_HOST="$host" -e DB_NAME="$fresh" "$img:1" python manage.py migrate -v0
  docker run --rm --network "$net" -e DB_HOST="$host" -e DB_NAME="$name" -e DJANGO_SETTINGS_MODULE=shopsite.settings "$img:1" python -c "$schema_snippet" >"$work/got.json"
  docker run --rm --network "$net" -e DB_HOST="$host" -e DB_NAME="$fresh" -e DJANGO_SETTINGS_MODULE=shopsite.settings "$img:1" python -c "$schema_snippet" >"$work/want.json"
  python3 - "$work/got.json" "$work/want.json" "$squash" <<'PY' || fail "$label: database differs from a fresh migrate of v1"
import json, sys
got, want, squash = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
assert got["schema"] == want["schema"], "schema differs: " + str({t: (got["schema"].get(t), want["schema"].get(t)) for t in set(got["schema"]) | set(want["schema"]) if got["schema"].get(t) != want["schema"].get(t)})
extra = {tuple(r) for r in got["rows"]} - {tuple(r) for r in want["rows"]}
missing = {tuple(r) for r in want["rows"]} - {tuple(r) for r in got["rows"]}
# The newer code's squash of migrations v1 has leaves its row behind: harmless, v1 does not know it.
assert not missing and extra <= {("shop", squash)}, f"rows: missing {missing}, extra {extra}"
PY
  pass "$label: schema and django_migrations rows equal a fresh migrate of v1"
}

say "one-node Swarm"
if [[ "$swarm_was_active" != active ]]; then
  docker swarm init --advertise-addr 127.0.0.1 >/dev/null
fi

deploy_v2_state() { # reset: stack at shop:1, migrated; upgraded to shop:2, migrated
  docker stack rm "$stack" >/dev/null 2>&1 || true
  for _ in $(seq 60); do
    docker network ls -q --filter "name=${stack}_default" | grep -q . || break
    sleep 1
  done
  write_stack 1
  docker stack deploy -c "$repo/stack.yml" "$stack" >/dev/null 2>&1
  wait_for "PostgreSQL" db_ready
  wait_for "a web task of shop:1" web_task "$img:1"
  docker exec "$(web_task "$img:1")" python manage.py migrate -v0
  wait_for "shop:1 answering HTTP" web_ready "$img:1"
  docker service update -q --detach=false --image "$img:2" "${stack}_web" >/dev/null 2>&1
  wait_for "a web task of shop:2" web_task "$img:2"
  docker exec "$(web_task "$img:2")" python manage.py migrate -v0
  wait_for "shop:2 answering HTTP" web_ready "$img:2"
}

commit_stack() { # TAG MESSAGE
  write_stack "$1"
  git -C "$repo" add stack.yml
  git -C "$repo" commit -qm "$2"
}

verify_rolled_back() { # LABEL
  [[ "$(service_image)" == "$img:1" ]] || fail "$1: service runs $(service_image)"
  [[ "$(service_replicas)" == 2 ]] || fail "$1: service has $(service_replicas) replicas"
  wait_for "shop:1 answering HTTP" web_ready "$img:1"
  pass "$1: ${stack}_web runs $img:1 with 2 replicas and answers HTTP as v1"
  compare_with_fresh_v1 "${stack}_default" db postgres "$1"
}

say "swarm, exec strategy: block, dry run, run, record, gate"
commit_stack 2 "deploy shop 2"
commit_stack 1 "roll web back to shop 1"
cd "$repo"
deploy_v2_state
set +e
"$tagback" check --from HEAD~1 --to HEAD >"$work/check.txt"
rc=$?
set -e
[[ $rc == 1 ]] || fail "tagback check exit $rc, want 1: $(cat "$work/check.txt")"
grep -q "migrate shop $squash" "$work/check.txt" || fail "plan does not target the squash $squash: $(cat "$work/check.txt")"
pass "tagback check blocks the downgrade (exit 1) and targets the squash $squash"
set +e
"$tagback" gate --from HEAD~1 --to HEAD >/dev/null
rc=$?
set -e
[[ $rc == 1 ]] || fail "gate exit $rc before the rollback, want 1"
pass "tagback gate exits 1 before the rollback"
"$tagback" script --from HEAD~1 --to HEAD --service web --stack-name "$stack" -o "$work/rollback.sh"
shellcheck "$work/rollback.sh" || fail "generated script has shellcheck warnings"
pass "generated script is shellcheck-clean"
rows_before=$(docker exec "$(db_task)" su postgres -c "psql -h /tmp/pg -d postgres -Atc 'select count(*) from django_migrations'")
# The script keeps its state in a private directory (0700), never in /tmp.
export TAGBACK_STATE_DIR=$work/state TAGBACK_EVIDENCE_FILE=$work/evidence.txt
rm -rf "$TAGBACK_STATE_DIR"
state_file=$TAGBACK_STATE_DIR/${stack}_web-$(sed -n "s/^FINGERPRINT='\(.\{12\}\).*/\1/p" "$work/rollback.sh").state
DRY_RUN=1 "$work/rollback.sh" >"$work/dry.txt" 2>&1 || fail "dry run failed: $(cat "$work/dry.txt")"
grep -q "DRY_RUN: would run: docker exec .* migrate shop $squash --noinput" "$work/dry.txt" || fail "dry run does not show the backward migration: $(cat "$work/dry.txt")"
grep -q "DRY_RUN: would run: docker service scale --detach=false ${stack}_web=0" "$work/dry.txt" || fail "dry run does not show the scale-down"
grep -q "DRY_RUN: would run: docker service update --detach=false --image $img:1 ${stack}_web" "$work/dry.txt" || fail "dry run does not show the retag"
grep -q "DRY_RUN: would run: docker service scale --detach=false ${stack}_web=2" "$work/dry.txt" || fail "dry run does not show the final scale-up: $(cat "$work/dry.txt")"
grep -q "DRY_RUN=1: nothing was changed" "$work/dry.txt" || fail "dry run has no closing banner"
rows_after=$(docker exec "$(db_task)" su postgres -c "psql -h /tmp/pg -d postgres -Atc 'select count(*) from django_migrations'")
[[ "$(service_image)" == "$img:2" && "$(service_replicas)" == 2 && "$rows_before" == "$rows_after" && ! -e "$TAGBACK_STATE_DIR" ]] ||
  fail "DRY_RUN changed something"
pass "DRY_RUN=1 says what every step would do, down to the final scale-up, and changes nothing"
"$work/rollback.sh" >"$work/run.txt" 2>&1 || fail "rollback failed: $(tail -n 20 "$work/run.txt")"
verify_rolled_back "exec"
[[ "$(stat -c %a "$TAGBACK_STATE_DIR")" == 700 && ! -e "$state_file" ]] || fail "state directory not 0700 or the state file outlived the rollback: $(ls -la "$TAGBACK_STATE_DIR")"
pass "the state directory is 0700 and the attempt's state file is gone once the rollback completed"
# The closing banner's record command works when pasted as printed.
record_line=$(sed -n 's/^tagback:   \(tagback record .*\)$/\1/p' "$work/run.txt")
[[ "$record_line" == *" --service web "* && "$record_line" == *" --from "*" --to "* ]] || fail "the banner names no record command with revisions and service: $(tail -n 12 "$work/run.txt")"
PATH="$(dirname "$tagback"):$PATH" eval "$record_line" >/dev/null || fail "the banner's record command failed: $record_line"
git add .tagback && git commit -qm "record the rollback of web"
"$tagback" gate --from HEAD~2 --to HEAD >/dev/null || fail "gate still blocks after record"
pass "the banner's record command, pasted, accepts the script's showmigrations evidence; gate exits 0"
"$work/rollback.sh" >"$work/rerun.txt" 2>&1 || fail "re-running the finished rollback failed: $(tail -n 5 "$work/rerun.txt")"
pass "re-running the finished rollback is a no-op"

say "swarm, exec strategy: the same rollback again after a re-upgrade (issue 15.3)"
# Deploy the newer image again and migrate forward, as a later release would.
docker service update -q --detach=false --image "$img:2" "${stack}_web" >/dev/null 2>&1
wait_for "a web task of shop:2" web_task "$img:2"
docker exec "$(web_task "$img:2")" python manage.py migrate -v0
wait_for "shop:2 answering HTTP" web_ready "$img:2"
# What an old script wrote, or someone planted: it must decide nothing.
mkdir -p "$TAGBACK_STATE_DIR"
printf 'verified=1\nreplicas=7\n' >"$state_file"
"$work/rollback.sh" >"$work/again.txt" 2>&1 || fail "second rollback failed: $(tail -n 20 "$work/again.txt")"
grep -q "ignored in $state_file: verified=1" "$work/again.txt" || fail "the planted verified=1 was not reported as ignored: $(cat "$work/again.txt")"
grep -q "tagback: migrate shop $squash" "$work/again.txt" || fail "the second rollback did not unapply the migrations: $(cat "$work/again.txt")"
verify_rolled_back "rollback after a re-upgrade"
pass "the second rollback unapplied the migrations again (read from showmigrations, not from a file)"
ln -sf /etc/passwd "$state_file"
set +e
"$work/rollback.sh" >"$work/symlink.txt" 2>&1
rc=$?
set -e
{ [[ $rc == 1 ]] && grep -q "is a symbolic link; refusing" "$work/symlink.txt"; } || fail "a symlinked state file was not refused (exit $rc): $(cat "$work/symlink.txt")"
rm -f "$state_file"
pass "a state file that is a symlink is refused (exit 1) before anything changes"

say "swarm, exec strategy, killed between steps and re-run"
git reset -q --hard HEAD~1
deploy_v2_state
rm -rf "$TAGBACK_STATE_DIR"
setsid "$work/rollback.sh" >"$work/killed.txt" 2>&1 &
pid=$!
for _ in $(seq 600); do
  grep -q "scaling ${stack}_web to 0" "$work/killed.txt" && [[ "$(service_replicas)" == 0 ]] && break
  sleep 0.1
done
kill -9 -- -"$pid" 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
grep -q "scaling ${stack}_web to 0" "$work/killed.txt" || fail "the script never reached the scale-down: $(cat "$work/killed.txt")"
pass "rollback killed during the scale-down (replicas now $(service_replicas), image $(service_image))"
# No task left: the re-run must read showmigrations some other way than docker exec.
no_web_task() { ! docker ps -q --filter "label=com.docker.swarm.service.name=${stack}_web" | grep -q .; }
wait_for "the scale-down to finish" no_web_task
"$work/rollback.sh" >"$work/resumed.txt" 2>&1 || fail "re-run after the kill failed: $(tail -n 20 "$work/resumed.txt")"
verify_rolled_back "killed+re-run"
grep -q "at 0 replicas: reading with a one-off job" "$work/resumed.txt" || fail "the re-run did not read the live state with a job: $(cat "$work/resumed.txt")"
pass "the re-run read showmigrations with a one-off job while the service had no task"

say "swarm, job strategy (a replicated-job with the service's networks and env)"
deploy_v2_state
"$tagback" script --from HEAD~1 --to HEAD --service web --stack-name "$stack" --strategy job -o "$work/rollback-job.sh"
shellcheck "$work/rollback-job.sh" || fail "job script has shellcheck warnings"
rm -rf "$TAGBACK_STATE_DIR"
# A job still running when the wait ends is left alone, and the next run waits for it.
set +e
TAGBACK_JOB_TIMEOUT=1 "$work/rollback-job.sh" >"$work/job-timeout.txt" 2>&1
rc=$?
set -e
{ [[ $rc == 1 ]] && grep -q "it was NOT removed" "$work/job-timeout.txt"; } || fail "job timeout: exit $rc: $(cat "$work/job-timeout.txt")"
left=$(docker service ls --filter "name=${stack}_web_tagback_" --format '{{.Name}}')
[[ -n "$left" ]] || fail "the job still running at the timeout was removed"
pass "a job still running when TAGBACK_JOB_TIMEOUT ends is not removed ($left)"
job_done() { docker service ps --format '{{.CurrentState}}' "$left" | grep -q '^Complete'; }
wait_for "the job left running to complete" job_done
"$work/rollback-job.sh" >"$work/job.txt" 2>&1 || fail "job rollback failed: $(tail -n 30 "$work/job.txt")"
verify_rolled_back "job"
docker stack rm "$stack" >/dev/null

say "swarm, job strategy: a SQLite database on a volume, a tmpfs, placement and limits copied into the job"
vstack=${stack}vol
vrepo=$work/deploy-vol
rm -rf "$vrepo" && git clone -q "$repo" "$vrepo"
write_vol_stack() { # TAG
  cat >"$vrepo/stack.yml" <<YAML
services:
  web:
    image: $img:$1
    environment:
      DEMO_DB: /data/db.sqlite3
    volumes:
      - data:/data
      - type: tmpfs
        target: /scratch
    deploy:
      replicas: 1
      placement:
        constraints: [node.role == manager]
      resources:
        limits: { cpus: "0.75", memory: 512M }
volumes:
  data: {}
YAML
}
vweb_task() { docker ps -q --filter "label=com.docker.swarm.service.name=${vstack}_web" --filter status=running --filter "ancestor=$1" | head -n 1 | grep .; }
write_vol_stack 1
docker stack deploy -c "$vrepo/stack.yml" "$vstack" >/dev/null 2>&1
wait_for "a web task of shop:1 (sqlite)" vweb_task "$img:1"
docker exec "$(vweb_task "$img:1")" python manage.py migrate -v0
docker service update -q --detach=false --image "$img:2" "${vstack}_web" >/dev/null 2>&1
wait_for "a web task of shop:2 (sqlite)" vweb_task "$img:2"
docker exec "$(vweb_task "$img:2")" python manage.py migrate -v0
write_vol_stack 2 && git -C "$vrepo" add stack.yml && git -C "$vrepo" commit -qm "sqlite: shop 2"
write_vol_stack 1 && git -C "$vrepo" add stack.yml && git -C "$vrepo" commit -qm "sqlite: back to shop 1"
(cd "$vrepo" && "$tagback" script --from HEAD~1 --to HEAD --service web --stack-name "$vstack" --strategy job -o "$work/rollback-vol.sh")
DRY_RUN=1 "$work/rollback-vol.sh" >"$work/vol-dry.txt" 2>&1 || fail "sqlite job dry run failed: $(cat "$work/vol-dry.txt")"
for want in "--mount type=volume\\,target=/data\\,source=${vstack}_data" "--mount type=tmpfs\\,target=/scratch" \
  "--constraint node.role\\ ==\\ manager" "--limit-cpu 0.750000000" "--limit-memory 536870912"; do
  grep -qF -- "$want" "$work/vol-dry.txt" || fail "the job does not copy $want: $(grep 'service create' "$work/vol-dry.txt" | head -n 1)"
done
pass "the job copies the volume, the tmpfs, the placement constraint and the limits"
# A job that fails shows why (the task's own output), not only "Failed".
(cd "$vrepo" && "$tagback" script --from HEAD~1 --to HEAD --service web --stack-name "$vstack" --strategy job \
  --manage-command "python no_such_manage.py" -o "$work/rollback-bad.sh")
set +e
"$work/rollback-bad.sh" >"$work/bad.txt" 2>&1
rc=$?
set -e
{ [[ $rc == 1 ]] && grep -q "no_such_manage.py" "$work/bad.txt" && grep -q "its output is above" "$work/bad.txt"; } ||
  fail "a failed job does not show its output (exit $rc): $(cat "$work/bad.txt")"
[[ -z "$(docker service ls -q --filter "name=${vstack}_web_tagback_")" ]] || fail "the failed (ended) job was not removed"
pass "a failed job prints its own output and is removed once it has ended"
(cd / && "$work/rollback-vol.sh") >"$work/vol.txt" 2>&1 || fail "sqlite job rollback failed: $(tail -n 30 "$work/vol.txt")"
[[ "$(docker service inspect --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}' "${vstack}_web" | sed 's/@.*//')" == "$img:1" ]] || fail "sqlite: service not on shop:1"
wait_for "a web task of shop:1 (sqlite) after the rollback" vweb_task "$img:1"
rows=$(docker exec "$(vweb_task "$img:1")" python -c "import sqlite3; print(sorted(n for (n,) in sqlite3.connect('/data/db.sqlite3').execute(\"select name from django_migrations where app in ('shop','members')\")))")
[[ "$rows" != *0003_order_badge* && "$rows" != *0004_order_code* && "$rows" == *0002_product_sku* ]] || fail "sqlite: django_migrations after the rollback: $rows"
docker exec "$(vweb_task "$img:1")" python manage.py migrate --check >/dev/null || fail "sqlite: migrate --check with v1 is not clean"
pass "job: the SQLite database on the volume was migrated back (rows: $rows); v1 is consistent"
docker stack rm "$vstack" >/dev/null

# Compose v2 (the `docker compose` plugin) when TAGBACK_COMPOSE_V2 names its
# binary (test.sh installs it from PyPI), then Compose v1 (`docker-compose`).
compose_v2_config=$work/docker-config
if [[ -n "${TAGBACK_COMPOSE_V2:-}" ]]; then
  mkdir -p "$compose_v2_config/cli-plugins"
  ln -sf "$TAGBACK_COMPOSE_V2" "$compose_v2_config/cli-plugins/docker-compose"
fi
write_compose() { # TAG
  cat >"$repo/compose.yml" <<YAML
services:
  db:
    image: $base
    command: ["bash", "-c", $(printf '%s' "$db_command" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')]
  web:
    image: $img:$1
    restart: unless-stopped
    environment:
      DB_HOST: db
      DB_NAME: postgres
YAML
}
compose_case() { # LABEL
  local label=$1 ids id
  say "Compose ($label), compose strategy, run from another directory"
  dc() { "${compose_bin[@]}" -p "$project" -f "$repo/compose.yml" "$@"; }
  compose_db_ready() { dc exec -T db su postgres -c "psql -h /tmp/pg -qc 'select 1'"; }
  compose_web_count() { [[ $(dc ps -q web | grep -c .) == 2 ]]; }
  write_compose 1
  dc down -v >/dev/null 2>&1 || true
  dc up -d --scale web=2 >/dev/null 2>&1
  wait_for "PostgreSQL (compose)" compose_db_ready
  wait_for "a web container" dc exec -T --index=1 web true
  dc exec -T --index=1 web python manage.py migrate -v0
  write_compose 2
  dc up -d --scale web=2 >/dev/null 2>&1
  wait_for "web containers of shop:2" compose_web_count
  wait_for "a web container of shop:2" dc exec -T --index=1 web true
  dc exec -T --index=1 web python manage.py migrate -v0
  git add compose.yml && git commit -qm "compose: shop 2"
  write_compose 1
  git add compose.yml && git commit -qm "compose: roll web back to shop 1"
  "$tagback" script --from HEAD~1 --to HEAD -f compose.yml --service web --stack-name "$project" -o "$work/rollback-compose.sh"
  grep -q "STRATEGY='compose'" "$work/rollback-compose.sh" || fail "compose files should default to the compose strategy"
  shellcheck "$work/rollback-compose.sh" || fail "compose script has shellcheck warnings"
  rm -rf "$TAGBACK_STATE_DIR"
  git checkout -q HEAD~1 -- compose.yml  # the running project was started from the shop:2 file
  (cd / && DRY_RUN=1 "$work/rollback-compose.sh") >"$work/compose-dry.txt" 2>&1 || fail "compose dry run failed: $(tail -n 30 "$work/compose-dry.txt")"
  grep -q "DRY_RUN: would run: ${compose_bin[*]} --project-directory $repo -p $project -f $repo/compose.yml -f .* up -d --no-deps --scale web=2 web" "$work/compose-dry.txt" || fail "compose dry run does not show the final up: $(cat "$work/compose-dry.txt")"
  (cd / && "$work/rollback-compose.sh") >"$work/compose.txt" 2>&1 || fail "compose rollback failed: $(tail -n 30 "$work/compose.txt")"
  grep -q "$label" <<<"$("${compose_bin[@]}" version 2>&1)" || fail "not run with Compose $label"
  ids=$(dc ps -q web)
  [[ $(wc -l <<<"$ids") == 2 ]] || fail "compose: $(wc -l <<<"$ids") web containers"
  for id in $ids; do
    [[ "$(docker inspect --format '{{.Config.Image}}' "$id")" == "$img:1" ]] || fail "compose: container $id runs $(docker inspect --format '{{.Config.Image}}' "$id")"
  done
  wait_for "compose web answering as v1" http_ok "$(head -n 1 <<<"$ids")" "shop v1"
  pass "compose ($label), run from /: 2 web containers run $img:1 and answer HTTP as v1"
  compare_with_fresh_v1 "${project}_default" db postgres "compose ($label)"
  dc down -v >/dev/null 2>&1
  git checkout -q HEAD -- compose.yml
  git reset -q --hard HEAD~2
}
if [[ -n "${TAGBACK_COMPOSE_V2:-}" ]]; then
  export DOCKER_CONFIG=$compose_v2_config
  compose_bin=(docker compose)
  compose_case "v2"
  unset DOCKER_CONFIG
fi
if command -v docker-compose >/dev/null && ! docker compose version >/dev/null 2>&1; then
  compose_bin=(docker-compose)
  compose_case "1."
fi

printf '\n%d Docker end-to-end checks passed\n' "$checks"
