#!/usr/bin/env bash
# Benchmark: tagback plan against real baselines in the same run, on a
# generated repository of APPS apps x MIGS migrations (default 300 x 150):
#   - git diff --name-only between the same revisions (the floor: what changed);
#   - Django's MigrationLoader loading both revisions (what tagback replaces);
# plus peak memory, and the pre-push hook on a push that touches no stack file.
# Usage: bench/run.sh [PYTHON_WITH_DJANGO] [APPS] [MIGS]
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:-${TAGBACK_TEST_PYTHON:-python3}}
apps=${2:-300}
migs=${3:-150}
work=target/bench
mkdir -p "$work"
repo=$work/repo-$apps-$migs
cargo build --release --quiet
bin=$PWD/target/release/tagback
if [[ ! -d "$repo/.git" ]]; then
  python3 bench/gen.py "$repo" "$apps" "$migs" 5
fi
python3 - "$bin" "$repo" "$py" <<'PY'
import os, resource, shutil, statistics, subprocess, sys, tempfile, time
bin, repo, py = sys.argv[1:]

def run(cmd, env=None, cwd=repo, n=15):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)

def peak_kb(cmd, env=None):
    p = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], cwd=repo, env=env, capture_output=True, text=True)
    return int(p.stderr.strip().splitlines()[-1])

plan = [bin, "plan", "--repo", ".", "--from", "new", "--to", "old", "--format", "json"]
cold_env = dict(os.environ, TAGBACK_NO_CACHE="1")
shutil.rmtree(os.path.join(repo, ".git", "tagback"), ignore_errors=True)
diff = run(["git", "diff", "--name-only", "old", "new"])
cold = run(plan, env=cold_env, n=5)
subprocess.run(plan, cwd=repo, stdout=subprocess.DEVNULL, check=True)  # warm the cache
warm = run(plan)
full = run([bin, "graph", "--repo", ".", "--rev", "new"], env=cold_env, n=3)
mem_cold = peak_kb(plan, env=cold_env)
mem_warm = peak_kb(plan)

# Django's MigrationLoader on both revisions (the Python way: check out, import, load).
loader = None
if subprocess.run([py, "-c", "import django"], capture_output=True).returncode == 0:
    with tempfile.TemporaryDirectory() as tmp:
        for rev in ("old", "new"):
            d = os.path.join(tmp, rev)
            os.makedirs(d)
            archive = subprocess.run(["git", "archive", rev], cwd=repo, capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", d], input=archive, check=True)
        code = ("import sys,django; sys.path.insert(0, sys.argv[1]); import os; os.environ['DJANGO_SETTINGS_MODULE']='proj.settings'; "
                "django.setup(); from django.db.migrations.loader import MigrationLoader; l=MigrationLoader(None, ignore_no_migrations=True); print(len(l.disk_migrations))")
        def load_both():
            for rev in ("old", "new"):
                subprocess.run([py, "-c", code, os.path.join(tmp, rev)], check=True, stdout=subprocess.DEVNULL)
        t = time.perf_counter(); load_both(); loader = time.perf_counter() - t

print(f"repository: {repo}")
print(f"git diff --name-only old new     {diff*1000:8.1f} ms")
print(f"tagback plan (cache warm)        {warm*1000:8.1f} ms   {warm/diff:5.1f}x git diff   peak {mem_warm/1024:.1f} MB")
print(f"tagback plan (no cache)          {cold*1000:8.1f} ms   {cold/diff:5.1f}x git diff   peak {mem_cold/1024:.1f} MB")
print(f"tagback graph --rev new (all 45k files parsed, no cache) {full*1000:8.1f} ms")
if loader:
    print(f"Django MigrationLoader x2        {loader*1000:8.1f} ms   {loader/warm:6.0f}x slower than plan (warm), {loader/cold:6.0f}x (no cache)")
else:
    print("Django MigrationLoader: skipped (no Django in the given python)")
PY

# The pre-push hook on a push that touches no stack file.
hookrepo=$work/hookrepo
rm -rf "$hookrepo"
"$bin" demo --keep "$hookrepo" >/dev/null
git -C "$hookrepo" -c user.name=b -c user.email=b@e commit -qam "keep the working tree" --no-verify || true
git -C "$hookrepo" -c user.name=b -c user.email=b@e commit -q --allow-empty -m "no stack change" --no-verify
old=$(git -C "$hookrepo" rev-parse HEAD~1)
new=$(git -C "$hookrepo" rev-parse HEAD)
python3 - "$bin" "$hookrepo" "$old" "$new" <<'PY'
import statistics, subprocess, sys, time
bin, repo, old, new = sys.argv[1:]
line = f"refs/heads/main {new} refs/heads/main {old}\n".encode()
times = []
for _ in range(30):
    t = time.perf_counter()
    subprocess.run([bin, "hook", "pre-push", "origin", "url"], cwd=repo, input=line, stdout=subprocess.DEVNULL, check=True)
    times.append(time.perf_counter() - t)
print(f"pre-push hook, push without stack-file change: median {statistics.median(times)*1000:.1f} ms (30 runs)")
PY
