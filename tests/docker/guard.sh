#!/usr/bin/env bash
# `tagback guard` on a real one-node Swarm: the demo shop at v1 and v2 built
# into images whose entrypoint runs the guard before the app (the README's
# pattern), PostgreSQL as another service. v2 is deployed and migrated, then
# the service goes back to v1 without tagback seeing it:
#   (a) `docker service rollback`;
#   (b) a v2 release with a failing health check and
#       `update_config.failure_action: rollback` (Swarm's automatic rollback,
#       after v2 migrated the database on start).
# With the guard, the v1 tasks refuse to start (docker service ps / logs show
# the guard's message) and the database is untouched; tagback's rollback
# script then brings the database back and the guard lets v1 start.
# The guarded images use the README's two Dockerfile lines (COPY the binary,
# ENTRYPOINT sh -c 'tagback guard … && exec "$@"').
# Without the guard (same images, no entrypoint), v1 runs on the v2 schema:
# `migrate --check` exits 0 and creating an order fails (the seed's failure).
#
# Usage: tests/docker/guard.sh WORKDIR   (needs TAGBACK_TEST_PYTHON: a venv python with Django 4.2)
set -euo pipefail
work=${1:?usage: guard.sh WORKDIR}
mkdir -p "$work"
work=$(cd "$work" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
tagback=$root/target/debug/tagback
py=${TAGBACK_TEST_PYTHON:?set TAGBACK_TEST_PYTHON to a python with Django 4.2}
base="tagback-e2e/base:bookworm"
img=tbguard/shop
stack=tbguard
checks=0
# shellcheck source=tests/docker/lib.sh
source "$root/tests/docker/lib.sh"
started=$SECONDS


swarm_was_active=$(docker info --format '{{.Swarm.LocalNodeState}}')
remove_stack() {
  docker stack rm "$stack" >/dev/null 2>&1 || true
  for _ in $(seq 60); do
    docker network ls -q --filter "name=${stack}_" | grep -q . || break
    sleep 1
  done
}
cleanup() {
  remove_stack
  if [[ "$swarm_was_active" != active ]]; then
    docker swarm leave --force >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

say "images: the demo shop v1 and v2, with and without the guard in the entrypoint"
docker image inspect "$base" >/dev/null 2>&1 || fail "$base is missing (tests/docker/e2e.sh builds it)"
mkdir -p "$work/wheels"
if [[ ! -f "$work/wheels/.ready" ]]; then
  "$py" -m pip download -q -d "$work/wheels" "Django==4.2.*" "psycopg[binary]>=3.1"
  touch "$work/wheels/.ready"
fi
for v in 1 2; do
  ctx=$work/ctx-$v
  rm -rf "$ctx" && mkdir -p "$ctx/app"
  cp -r "$work/wheels" "$ctx/wheels"
  cp -r "$root/fixtures/demo/v$v/." "$ctx/app/"
  cp "$tagback" "$ctx/tagback"
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $base AS app
COPY wheels/ /wheels/
RUN python3 -m venv /venv && /venv/bin/pip install -q --no-index --find-links /wheels Django psycopg psycopg-binary
ENV PATH=/venv/bin:\$PATH PYTHONUNBUFFERED=1
COPY app/ /app/
WORKDIR /app
CMD ["python", "manage.py", "runserver", "--noreload", "0.0.0.0:8000"]

# The README's two lines for sh-based images (the binary built on this host).
FROM app AS guarded
COPY tagback /usr/local/bin/tagback
ENTRYPOINT ["/bin/sh", "-c", "tagback guard --project /app && exec \\"\$@\\"", "--"]
CMD ["python", "manage.py", "runserver", "--noreload", "0.0.0.0:8000"]
DOCKERFILE
  docker build -q --target guarded -t "$img:$v" "$ctx" >/dev/null
  docker build -q --target app -t "$img-noguard:$v" "$ctx" >/dev/null
done
pass "images $img:1, $img:2 (guarded) and $img-noguard:1, $img-noguard:2 built"

say "the code repository (for tagback script)"
repo=$work/repo
rm -rf "$repo" && mkdir -p "$repo"
export GIT_AUTHOR_NAME=e2e GIT_AUTHOR_EMAIL=e2e@example.com GIT_COMMITTER_NAME=e2e GIT_COMMITTER_EMAIL=e2e@example.com
unset GIT_DIR GIT_INDEX_FILE GIT_WORK_TREE
git -C "$repo" init -q -b main
cp -r "$root/fixtures/demo/v1/." "$repo/"
git -C "$repo" add -A && git -C "$repo" commit -qm "shop v1" && git -C "$repo" tag v1
rm -rf "$repo/accounts" "$repo/shop"
cp -r "$root/fixtures/demo/v2/." "$repo/"
git -C "$repo" add -A && git -C "$repo" commit -qm "shop v2" && git -C "$repo" tag v2

db_command='install -d -o postgres /tmp/pg && su postgres -s /bin/bash -c "/usr/lib/postgresql/15/bin/initdb -D /tmp/pg/data -A trust -U postgres >/dev/null && echo \"host all all 0.0.0.0/0 trust\" >>/tmp/pg/data/pg_hba.conf && exec /usr/lib/postgresql/15/bin/postgres -D /tmp/pg/data -c listen_addresses=* -k /tmp/pg"'
write_stack() { # IMAGE [EXTRA WEB KEYS]
  cat >"$work/stack.yml" <<YAML
services:
  db:
    image: $base
    command: ["bash", "-c", $(printf '%s' "$db_command" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')]
    deploy:
      endpoint_mode: dnsrr
  web:
    image: $1
    environment:
      DB_HOST: db
      DB_NAME: postgres
      DATABASE_URL: postgres://postgres@db:5432/postgres
${2:-}
    deploy:
      replicas: 1
      restart_policy:
        condition: any
        delay: 2s
      update_config:
        failure_action: rollback
        monitor: 15s
        order: stop-first
networks:
  default:
    attachable: true
YAML
}

psql_db() { docker exec "$(db_task)" su postgres -c "psql -h /tmp/pg -d postgres -Atc \"$1\""; }
# The database's state: django_migrations rows and every column of every table.
db_state() {
  psql_db "select app || '.' || name from django_migrations order by 1"
  psql_db "select table_name || '.' || column_name || ':' || is_nullable from information_schema.columns where table_schema = 'public' order by 1"
}
# A task of IMAGE that exited with status 1, with the guard's message in the service's logs.
guard_refused() { # IMAGE
  # Output is captured before grep reads it: `producer | grep -q` fails under
  # pipefail when grep exits first and the producer dies of SIGPIPE.
  local tasks logs
  tasks=$(docker service ps --no-trunc --format '{{.Image}}|{{.Error}}' "${stack}_web")
  grep -F "$1" <<<"$tasks" | grep -q "non-zero exit (1)" || return 1
  logs=$(docker service logs --raw "${stack}_web" 2>&1)
  grep -q "tagback guard: BLOCKED" <<<"$logs"
}

deploy_v2() { # IMAGE-PREFIX: deploy v1 on a fresh database, migrate; update to v2, migrate
  local prefix=$1
  remove_stack
  write_stack "$prefix:1"
  docker stack deploy -c "$work/stack.yml" "$stack" >/dev/null 2>&1
  wait_for "PostgreSQL" db_ready
  wait_for "a web task of $prefix:1" web_task "$prefix:1"
  docker exec "$(web_task "$prefix:1")" python manage.py migrate -v0
  wait_for "$prefix:1 answering HTTP" web_ready "$prefix:1"
  docker logs "$(web_task "$prefix:1")" >"$work/first-task.log" 2>&1
  docker service update -q --detach=false --image "$prefix:2" "${stack}_web" >/dev/null 2>&1
  wait_for "a web task of $prefix:2" web_task "$prefix:2"
  docker exec "$(web_task "$prefix:2")" python manage.py migrate -v0
  wait_for "$prefix:2 answering HTTP" web_ready "$prefix:2"
}

say "one-node Swarm"
if [[ "$swarm_was_active" != active ]]; then
  docker swarm init --advertise-addr 127.0.0.1 >/dev/null
fi

say "(a) docker service rollback, with the guard"
deploy_v2 "$img"
grep -q "tagback guard: ok: the database has no django_migrations table yet" "$work/first-task.log" ||
  fail "the first v1 task's guard did not pass the never-migrated database: $(head -n 5 "$work/first-task.log")"
pass "first deploy: the guard passes a database that was never migrated"
before=$(db_state)
grep -q "shop.0004_order_code" <<<"$before" || fail "v2 did not migrate"
docker service rollback -q --detach "${stack}_web" >/dev/null 2>&1
wait_for "a v1 task refused by the guard" guard_refused "$img:1"
docker service logs --raw "${stack}_web" >"$work/logs-a.txt" 2>&1
for m in shop.0003_order_badge shop.0004_order_code members.0002_badge members.0003_normalize_nicknames; do
  grep -q "    $m" "$work/logs-a.txt" || fail "(a) the guard's message does not name $m: $(grep -A12 BLOCKED "$work/logs-a.txt" | head -n 14)"
done
grep -q "python manage.py migrate shop 0002_product_sku" "$work/logs-a.txt" || fail "(a) the guard's message names no backward command"
pass "(a) v1 tasks exit 1: docker service ps shows 'non-zero exit (1)', the logs show the guard naming the 4 migrations and the fix"
web_task "$img:1" >/dev/null && fail "(a) a v1 task is running"
sleep 5
[[ "$(db_state)" == "$before" ]] || fail "(a) the database changed while the guard refused v1"
pass "(a) no v1 task runs and the database is untouched (rows and columns)"

say "(a) recovery: back to v2, then tagback's rollback script; the guard lets v1 start"
docker service update -q --detach=false --image "$img:2" "${stack}_web" >/dev/null 2>&1
wait_for "$img:2 answering HTTP" web_ready "$img:2"
"$tagback" script --repo "$repo" --from v2 --to v1 --service web --image "$img:1" --current-image "$img:2" \
  --stack-name "$stack" -o "$work/rollback.sh"
export TAGBACK_STATE_FILE=$work/state TAGBACK_EVIDENCE_FILE=$work/evidence.txt
rm -f "$TAGBACK_STATE_FILE"
"$work/rollback.sh" >"$work/rollback.txt" 2>&1 || fail "rollback script failed: $(tail -n 20 "$work/rollback.txt")"
[[ "$(service_image)" == "$img:1" ]] || fail "after the script the service runs $(service_image)"
wait_for "$img:1 answering HTTP" web_ready "$img:1"
v1_log=$(docker logs "$(web_task "$img:1")" 2>&1)
grep -q "tagback guard: ok: the database is not ahead" <<<"$v1_log" ||
  fail "the v1 task's guard did not say ok: $(head -n 5 <<<"$v1_log")"
psql_db "select name from django_migrations where app = 'shop'" | grep -q 0004_order_code && fail "0004 still applied"
pass "(a) after tagback's script the guard lets v1 start (ok in its log) and v1 answers HTTP"

say "(b) a v2 release with a failing health check and failure_action: rollback, with the guard"
remove_stack
write_stack "$img:1"
docker stack deploy -c "$work/stack.yml" "$stack" >/dev/null 2>&1
wait_for "PostgreSQL" db_ready
wait_for "a web task of $img:1" web_task "$img:1"
docker exec "$(web_task "$img:1")" python manage.py migrate -v0
wait_for "$img:1 answering HTTP" web_ready "$img:1"
# The release migrates on start, then never becomes healthy.
write_stack "$img:2" '    command: ["sh", "-c", "python manage.py migrate --noinput && exec python manage.py runserver --noreload 0.0.0.0:8000"]
    healthcheck:
      test: ["CMD", "false"]
      interval: 2s
      retries: 1
      start_period: 0s'
docker stack deploy -c "$work/stack.yml" "$stack" >/dev/null 2>&1
rolled_back() { docker service inspect --format '{{.UpdateStatus.State}}' "${stack}_web" | grep -q rollback; }
wait_for "Swarm's automatic rollback" rolled_back
[[ "$(service_image)" == "$img:1" ]] || fail "(b) after the automatic rollback the service spec has $(service_image)"
pass "(b) the update failed its health check and Swarm rolled ${stack}_web back to $img:1 on its own"
wait_for "a v1 task refused by the guard after the automatic rollback" guard_refused "$img:1"
after_migrate=$(db_state)
grep -q "shop.0004_order_code" <<<"$after_migrate" || fail "(b) v2 did not migrate on start"
sleep 6
[[ "$(db_state)" == "$after_migrate" ]] || fail "(b) the database changed while the guard refused v1"
web_task "$img:1" >/dev/null && fail "(b) a v1 task is running"
pass "(b) v1 tasks refuse to start on the schema v2 migrated; the database is untouched"

say "without the guard: v1 runs on the v2 schema (the seed's failure)"
deploy_v2 "$img-noguard"
docker service rollback -q --detach=false "${stack}_web" >/dev/null 2>&1
wait_for "$img-noguard:1 answering HTTP" web_ready "$img-noguard:1"
c=$(web_task "$img-noguard:1")
psql_db "select name from django_migrations where app = 'shop'" | grep -q 0004_order_code || fail "v2 rows gone?"
docker exec "$c" python manage.py migrate --check >/dev/null || fail "v1's migrate --check should exit 0 (it ignores unknown rows)"
set +e
docker exec "$c" python manage.py shell -c "
from accounts.models import Member
from shop.models import Order, Product
Order.objects.create(product=Product.objects.create(name='p'), buyer=Member.objects.create(nickname='m'))
" >"$work/seed-failure.txt" 2>&1
rc=$?
set -e
if [[ $rc == 0 ]] || ! grep -q 'null value in column "code"' "$work/seed-failure.txt"; then
  fail "v1 creating an order on the v2 schema should fail: $(tail -n 3 "$work/seed-failure.txt")"
fi
pass "without the guard v1 starts, migrate --check exits 0, and creating an order fails: $(grep -o 'null value in column "code"[^.]*' "$work/seed-failure.txt" | head -n 1)"

printf '\n%d guard checks passed on a real Swarm in %ds\n' "$checks" $((SECONDS - started))
