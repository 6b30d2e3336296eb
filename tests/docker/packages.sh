#!/usr/bin/env bash
# Packages read from the service's Docker images (issue 12): a site made by
# `django-admin startproject` pins django-taggit and django-auditlog; its
# image at v1 installs the older pins from a local wheel folder, and its
# image at v2 is built FROM v1 and upgrades them in a later layer (so pip's
# uninstall leaves whiteouts over the older files). With no wheelhouse and
# no index (TAGBACK_NO_INDEX=1), `tagback check` on the stack file moving
# back from :2 to :1 can only read the packages from the two local images:
# its plan must equal the plan the wheelhouse gives, the second check must
# come from the cache, an image that is not local must block with
# package-unavailable naming it, and real Django must agree: the plan's
# commands run in the v2 image on a database migrated by v2, then the v1
# image's `migrate --check` passes and its schema and django_migrations rows
# equal a fresh migrate by v1 (SQLite).
#
# Usage: tests/docker/packages.sh WORKDIR   (e2e.sh's WORKDIR reuses its root filesystem; needs TAGBACK_TEST_PYTHON: a venv python with Django 4.2)
set -euo pipefail
work=${1:?usage: packages.sh WORKDIR}
mkdir -p "$work"
work=$(cd "$work" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
tagback=$root/target/debug/tagback
py=${TAGBACK_TEST_PYTHON:?set TAGBACK_TEST_PYTHON to a python with Django 4.2}
base="tagback-e2e/base:bookworm"
img=${TAGBACK_PKG_IMAGE:-tbpkg/site}
stack=tbpkg
checks=0
# shellcheck source=tests/docker/lib.sh
source "$root/tests/docker/lib.sh"
started=$SECONDS

cleanup() {
  [[ -n "${TAGBACK_PKG_KEEP:-}" ]] || docker image rm "$img:2" "$img:1" >/dev/null 2>&1 || true
}
trap cleanup EXIT

say "images: the site at v1 (older pins) and v2 (FROM v1, upgraded in a later layer)"
ensure_base "$base" "$work"
# The root filesystem is shared with e2e.sh (same WORKDIR); the rest is ours.
work=$work/packages
mkdir -p "$work"
older=(Django==4.2.30 django-taggit==4.0.0 django-auditlog==2.1.1)
newer=(Django==4.2.30 django-taggit==5.0.1 django-auditlog==2.3.0)
common=(asgiref==3.13.0 sqlparse==0.6.1 typing_extensions==4.16.0 python-dateutil==2.9.0.post0 six==1.17.0)
mkdir -p "$work/wheels"
if [[ ! -f "$work/wheels/.ready" ]]; then
  for r in "${older[@]}" "${newer[@]}" "${common[@]}"; do
    "$py" -m pip download -q --no-deps -d "$work/wheels" "$r"
  done
  touch "$work/wheels/.ready"
fi

repo=$work/site
rm -rf "$repo"
mkdir -p "$repo"
export GIT_AUTHOR_NAME=pkg GIT_AUTHOR_EMAIL=pkg@example.com GIT_COMMITTER_NAME=pkg GIT_COMMITTER_EMAIL=pkg@example.com
unset GIT_DIR GIT_INDEX_FILE GIT_WORK_TREE TAGBACK_WHEELHOUSE
git -C "$repo" init -q -b main
(cd "$repo" && "$(dirname "$py")/django-admin" startproject proj .)
python3 - "$repo/proj/settings.py" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
s = s.replace("'django.contrib.staticfiles',", "'django.contrib.staticfiles',\n    'taggit',\n    'auditlog',")
s = s.replace('"django.contrib.staticfiles",', '"django.contrib.staticfiles",\n    "taggit",\n    "auditlog",')
assert "taggit" in s
s += '\nimport os as _os\nDATABASES["default"]["NAME"] = _os.environ.get("DB_PATH", DATABASES["default"]["NAME"])\n'
open(p, "w").write(s)
PY
write_pins() { printf '%s\n' "# pinned" "$@" "${common[@]}" >"$repo/requirements.txt"; }
write_stack() { printf 'services:\n  web:\n    image: %s\n' "$1" >"$repo/stack.yml"; }
write_pins "${older[@]}"
write_stack "$img:1"
git -C "$repo" add -A && git -C "$repo" commit -qm "site v1" && git -C "$repo" tag v1
write_pins "${newer[@]}"
write_stack "$img:2"
git -C "$repo" add -A && git -C "$repo" commit -qm "site v2" && git -C "$repo" tag v2
write_stack "$img:1"
git -C "$repo" commit -qam "roll back to 1"

for v in 1 2; do
  ctx=$work/ctx-$v
  rm -rf "$ctx" && mkdir -p "$ctx/app"
  cp -r "$work/wheels" "$ctx/wheels"
  git -C "$repo" archive "v$v" | tar -x -C "$ctx/app"
  # Fresh mtimes: the requirements of v1 and v2 have the same size, and
  # with the git commit's mtime the storage driver's naive diff (size and
  # mtime) would leave the changed file out of v2's layer.
  find "$ctx/app" -exec touch {} +
  if [[ $v == 1 ]]; then
    from=$base
    setup="python3 -m venv /venv && /venv/bin/pip install -q --no-index --find-links /wheels -r /app/requirements.txt"
  else
    from=$img:1
    setup="/venv/bin/pip install -q --no-index --find-links /wheels -r /app/requirements.txt"
  fi
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $from
COPY wheels/ /wheels/
COPY app/ /app/
RUN $setup
ENV PATH=/venv/bin:\$PATH PYTHONUNBUFFERED=1
WORKDIR /app
DOCKERFILE
  docker build -q -t "$img:$v" "$ctx" >/dev/null
done
pass "images $img:1 and $img:2 built"

say "check with only the images to read the packages from"
check() { # OUT [ENV...]: tagback check of the roll-back commit, JSON in OUT (exit 1: unsafe, expected)
  local out=$1 rc=0
  shift
  (cd "$repo" && env TAGBACK_NO_INDEX=1 "$@" "$tagback" check --from HEAD~1 --to HEAD --format json >"$out" 2>"$out.err") || rc=$?
  [[ $rc == 0 || $rc == 1 ]] || fail "tagback check exited $rc: $(cat "$out.err")"
}
t0=$SECONDS
check "$work/check.json"
targets=$(jq -S -c '[.services[0].plan.steps[] | {(.app): .target}] | add' "$work/check.json")
[[ "$targets" == '{"auditlog":"0010_alter_logentry_timestamp","taggit":"0005_auto_20220424_2025"}' ]] ||
  fail "plan targets from the images: $targets ($(jq -c '[.services[0].plan.problems[]?]' "$work/check.json"))"
pass "plan from the images: $targets ($((SECONDS - t0)) s, docker image save of both images)"
[[ $(jq '[.services[0].plan.problems[]?] | length' "$work/check.json") == 0 ]] ||
  fail "problems: $(jq -c '.services[0].plan.problems' "$work/check.json")"
pass "no problems"

(cd "$repo" && TAGBACK_NO_INDEX=1 TAGBACK_NO_CACHE=1 TAGBACK_WHEELHOUSE=$work/wheels "$tagback" plan --repo . --from v2 --to v1 --format json >"$work/plan.json")
jq -S '.services[0].plan' "$work/check.json" >"$work/a.json"
jq -S 'del(.version)' "$work/plan.json" >"$work/b.json"
diff -u "$work/b.json" "$work/a.json" >&2 || fail "the plan from the images differs from the wheelhouse's"
pass "the plan from the images equals the plan from the wheelhouse"

compgen -G "$repo/.git/tagback/packages/django-taggit/image-*/5.0.1.files" >/dev/null || fail "nothing cached"
compgen -G "$repo/.git/tagback/packages/django-taggit/image-*/4.0.0.files" >/dev/null || fail "nothing cached"
t0=$SECONDS
check "$work/check2.json"
cmp -s "$work/check.json" "$work/check2.json" || fail "the cached check differs"
pass "a second check reads the cache (by name, version and image id) and gives the same report ($((SECONDS - t0)) s)"

write_stack "$img-absent:2"
git -C "$repo" commit -qam "images that are not local"
write_stack "$img-absent:1"
git -C "$repo" commit -qam "roll back to one that is not local"
check "$work/absent.json" TAGBACK_NO_CACHE=1
msg=$(jq -r '[.services[0].plan.problems[]? | select(.code == "package-unavailable") | .message] | join("\n")' "$work/absent.json")
[[ "$msg" == *"image $img-absent:1 is not in the local Docker Engine"* && "$msg" == *"make the service's image $img-absent:1 local"* ]] ||
  fail "an image that is not local: $(jq -c '.services[0]' "$work/absent.json")"
pass "an image that is not local blocks with package-unavailable naming it"
[[ $(jq .safe "$work/absent.json") == false ]] || fail "not blocked"
git -C "$repo" reset -q --hard HEAD~2

say "real Django: the plan's commands in the v2 image, then the v1 image judges"
db=$work/db
rm -rf "$db" && mkdir -p "$db"
in_image() { # IMAGE SCRIPT: a bash script in a container of IMAGE, the database directory at /db
  docker run --rm -v "$db:/db" -e DJANGO_SETTINGS_MODULE=proj.settings "$1" bash -euc "$2"
}
rollback="DB_PATH=/db/rolled.sqlite3 python manage.py migrate --noinput >/dev/null"
while IFS= read -r c; do
  [[ "$c" =~ ^python\ manage\.py\ migrate\ [a-z_]+\ [0-9a-z_]+$ ]] || fail "unexpected command: $c"
  rollback+=" && DB_PATH=/db/rolled.sqlite3 $c --noinput >/dev/null"
done < <(jq -r '.services[0].plan.commands[]' "$work/check.json")
in_image "$img:2" "$rollback"
schema=$(python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import harness; print(harness.SCHEMA)' "$root/tests/django")
printf '%s\n' "$schema" >"$db/schema.py"
cat >"$db/known.py" <<'PY'
import json, os, sys
sys.path.insert(0, os.getcwd())
import django
django.setup()
from django.db.migrations.loader import MigrationLoader
l = MigrationLoader(None, ignore_no_migrations=True)
k = set(l.disk_migrations)
for m in l.disk_migrations.values():
    k.update(m.replaces)
print(json.dumps(sorted(k)))
PY
in_image "$img:1" 'DB_PATH=/db/rolled.sqlite3 python manage.py migrate --check --noinput >/dev/null || { echo "migrate --check fails" >&2; exit 1; }
  DB_PATH=/db/fresh.sqlite3 python manage.py migrate --noinput >/dev/null
  DB_PATH=/db/rolled.sqlite3 python /db/schema.py >/db/rolled.json
  DB_PATH=/db/fresh.sqlite3 python /db/schema.py >/db/fresh.json
  DB_PATH=/db/fresh.sqlite3 python /db/known.py >/db/known.json' ||
  fail "migrate --check with the older image fails after the plan"
pass "the plan's commands ran in the v2 image; the v1 image's migrate --check passes after them"
python3 - "$db" <<'PY' || fail "the database after the plan differs from a fresh migrate by the older image"
import json, os, sys
w = sys.argv[1]
a, b = (json.load(open(os.path.join(w, f))) for f in ("rolled.json", "fresh.json"))
known = {tuple(k) for k in json.load(open(os.path.join(w, "known.json")))}
# SQLite remakes a table to rename an index (RenameIndex backwards): a
# unique_together comes back as an inline UNIQUE, told apart only by the
# introspection's index flag (as in tests/django/packages.py).
for snap in (a, b):
    for t in snap["schema"].values():
        t["constraints"] = sorted(([c[0], c[1], c[2], c[3], c[4] and not c[2], c[5]] for c in t["constraints"]), key=json.dumps)
if a["schema"] != b["schema"]:
    sys.exit(f"schema: {sorted(set(a['schema']) ^ set(b['schema']))} or columns/constraints differ")
rows = {tuple(r) for r in a["rows"] if tuple(r) in known}
want = {tuple(r) for r in b["rows"]}
if rows != want:
    sys.exit(f"rows: missing {sorted(want - rows)}, extra {sorted(rows - want)}")
PY
pass "schema and django_migrations rows equal a fresh migrate by the older image"

printf '\n%d checks passed (%d s)\n' "$checks" "$((SECONDS - started))"
