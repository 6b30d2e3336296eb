#!/usr/bin/env bash
# Benchmark: `tagback guard` (it runs on every container start) on a plain
# directory with APPS x MIGS migrations (default 10 x 100 = 1,000) against a
# database on the same host holding every row, SQLite and PostgreSQL, next to
# baselines measured in the same run: starting a process that does nothing
# (`true`), the database's own client answering one query (`sqlite3`, `psql`),
# and, when a Django python is given, Django loading the same migrations
# (MigrationLoader: the least a Python-based check would do).
# Usage: bench/guard.sh [PYTHON_WITH_DJANGO] [APPS] [MIGS] [PG_PORT]
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:-${TAGBACK_TEST_PYTHON:-}}
apps=${2:-10}
migs=${3:-100}
pg_port=${4:-54341}
work=$PWD/target/bench-guard
mkdir -p "$work"
cargo build --release --quiet
bin=$PWD/target/release/tagback
repo=$work/repo-$apps-$migs
code=$work/code-$apps-$migs
if [[ ! -d "$repo/.git" ]]; then
  python3 bench/gen.py "$repo" "$apps" "$migs" 0 >/dev/null
fi
if [[ ! -f "$code/manage.py" ]]; then
  rm -rf "$code" && mkdir -p "$code"
  git -C "$repo" archive old | tar -x -C "$code"
fi
# Every row a migrate of this code would write, plus the contrib apps'.
rows=$work/rows-$apps-$migs.sql
python3 - "$apps" "$migs" >"$rows" <<'PY'
import sys
apps, migs = int(sys.argv[1]), int(sys.argv[2])
print("CREATE TABLE django_migrations (id integer PRIMARY KEY, app varchar(255) NOT NULL, name varchar(255) NOT NULL, applied timestamp NOT NULL);")
values = [("contenttypes", "0001_initial"), ("contenttypes", "0002_remove_content_type_name"), ("auth", "0001_initial")]
values += [(f"app{a:03d}", f"{i:04d}_step_{i}") for a in range(apps) for i in range(1, migs + 1)]
print("INSERT INTO django_migrations (id, app, name, applied) VALUES")
print(",\n".join(f"({n}, '{a}', '{m}', '2026-12-01 00:00:00')" for n, (a, m) in enumerate(values, 1)) + ";")
PY
sqlite_db=$work/db-$apps-$migs.sqlite3
rm -f "$sqlite_db"
sqlite3 "$sqlite_db" <"$rows"

scripts/postgres.sh start "$work/pg" "$pg_port"
trap 'scripts/postgres.sh stop "$work/pg" "$pg_port"' EXIT
psql -h 127.0.0.1 -p "$pg_port" -U postgres -qc "DROP DATABASE IF EXISTS bench_guard" -c "CREATE DATABASE bench_guard" >/dev/null
psql -h 127.0.0.1 -p "$pg_port" -U postgres -d bench_guard -q -f "$rows" >/dev/null
pg_url="postgres://postgres@127.0.0.1:$pg_port/bench_guard"

python3 - "$bin" "$code" "$sqlite_db" "$pg_url" "$pg_port" "$py" "$apps" "$migs" <<'PY'
import os, statistics, subprocess, sys, time
bin, code, sqlite_db, pg_url, pg_port, py, apps, migs = sys.argv[1:]
ROUNDS = 51

CPU = {}

def run(cmd, env=None, want=0, key=None):
    """Wall time; the child's CPU time (user + system, all threads) goes to CPU[key]."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=code, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t
    code_ = os.waitstatus_to_exitcode(status)
    if code_ != want:
        sys.exit(f"{' '.join(cmd)} exited {code_}")
    CPU.setdefault(key, []).append(usage.ru_utime + usage.ru_stime)
    return dt

cases = {
    "true (process start)": (["true"], None),
    "sqlite3 select count(*)": (["sqlite3", sqlite_db, "select count(*) from django_migrations"], None),
    "tagback guard, SQLite": ([bin, "guard", "--database-url", f"sqlite://{sqlite_db}"], None),
    "psql -c 'select 1'": (["psql", "-h", "127.0.0.1", "-p", pg_port, "-U", "postgres", "-d", "bench_guard", "-Atc", "select 1"], None),
    "tagback guard, PostgreSQL": ([bin, "guard", "--database-url", pg_url], None),
}
times = {k: [] for k in cases}
for _ in range(ROUNDS):  # interleaved, so load on the machine hits every case alike
    for k, (cmd, env) in cases.items():
        times[k].append(run(cmd, env, key=k))
print(f"tagback guard on {apps} apps x {migs} migrations = {int(apps) * int(migs)} migrations, "
      f"every row applied; {ROUNDS} interleaved rounds, ms (wall median / min; CPU median, all threads):")
print(f"  load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
for k, t in times.items():
    print(f"  {k:34s} {statistics.median(t) * 1000:7.1f} / {min(t) * 1000:6.1f}   cpu {statistics.median(CPU[k]) * 1000:6.1f}")
if py:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="proj.settings")
    load = "import django; django.setup(); from django.db.migrations.loader import MigrationLoader; MigrationLoader(None, ignore_no_migrations=True)"
    t = [run([py, "-c", load], env=env, key="django") for _ in range(5)]
    print(f"  {'Django MigrationLoader (no database)':34s} {statistics.median(t) * 1000:7.1f} / {min(t) * 1000:6.1f}  (5 rounds)")
PY
