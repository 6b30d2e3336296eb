#!/usr/bin/env bash
# Benchmark: tagback plan against real baselines in the same run, on a
# generated repository of APPS apps x MIGS migrations (default 300 x 150):
#   - git diff --name-only between the same revisions (the floor: what changed);
#   - Django's MigrationLoader loading both revisions (what tagback replaces);
#   - git cat-file --batch reading the blobs a plan without cache must read
#     (git's own reader on the reading alone);
# tagback is timed warm, without a cache (TAGBACK_NO_CACHE=1), and on a first
# run (an empty cache that it writes, what a fresh CI clone pays); plus peak
# memory, and the pre-push hook on a push that touches no stack file.
# Two workloads (WORKLOADS, default "5 30"): that many of the apps gain two
# migrations each (5: a small release; 30: a release of a big monolith).
# Django's MigrationLoader is timed on the first workload only (it takes ~40 s).
# Usage: bench/run.sh [PYTHON_WITH_DJANGO] [APPS] [MIGS]
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:-${TAGBACK_TEST_PYTHON:-python3}}
apps=${2:-300}
migs=${3:-150}
work=target/bench
mkdir -p "$work"
cargo build --release --quiet
bin=$PWD/target/release/tagback
first=1
for changed in ${WORKLOADS:-5 30}; do
repo=$work/repo-$apps-$migs-$changed
if [[ ! -d "$repo/.git" ]]; then
  python3 bench/gen.py "$repo" "$apps" "$migs" "$changed"
fi
echo
echo "== workload: $changed of $apps apps changed"
[[ $first == 1 ]] || py=/nonexistent/python
first=0
python3 - "$bin" "$repo" "$py" <<'PY'
import os, shutil, statistics, subprocess, sys, tempfile, time
bin, repo, py = sys.argv[1:]
cold_env = dict(os.environ, TAGBACK_NO_CACHE="1")

cache_dir = os.path.join(repo, ".git", "tagback")

def once(cmd, env=None, fresh=False, stdin=None):
    if fresh:  # a first run: no cache yet, so it writes one
        shutil.rmtree(cache_dir, ignore_errors=True)
    src = open(stdin, "rb") if stdin else subprocess.DEVNULL
    t = time.perf_counter()
    subprocess.run(cmd, cwd=repo, env=env, stdin=src, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    took = time.perf_counter() - t
    if stdin:
        src.close()
    return took

def interleaved(cmds, rounds):
    """Run the commands in turn, `rounds` times: machine noise hits all alike."""
    times = {name: [] for name in cmds}
    for _ in range(rounds):
        for name, (cmd, env, *more) in cmds.items():
            fresh, stdin = (more + [False, None])[:2]
            times[name].append(once(cmd, env, fresh, stdin))
    return {name: (statistics.median(t), min(t)) for name, t in times.items()}

def peak_kb(cmd, env=None):
    p = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], cwd=repo, env=env, capture_output=True, text=True)
    return int(p.stderr.strip().splitlines()[-1])

plan = [bin, "plan", "--repo", ".", "--from", "new", "--to", "old", "--format", "json"]
same = [bin, "plan", "--repo", ".", "--from", "new", "--to", "new", "--format", "json"]
diff = ["git", "diff", "--name-only", "old", "new"]
# What reading alone costs git's own object reader: the blobs a plan without
# cache must read (the migrations of the changed apps at both revisions, each
# blob once).
changed = sorted({p.split("/")[0] for p in subprocess.run(diff, cwd=repo, capture_output=True, text=True, check=True).stdout.split()})
blobs = set()
for rev in ("old", "new"):
    for app in changed:
        out = subprocess.run(["git", "ls-tree", rev, f"{app}/migrations/"], cwd=repo, capture_output=True, text=True, check=True).stdout
        blobs.update(line.split()[2] for line in out.splitlines() if line.endswith(".py"))
blob_list = os.path.join(tempfile.mkdtemp(), "blobs")
with open(blob_list, "w") as f:
    f.write("".join(b + "\n" for b in sorted(blobs)))
cat = ["git", "cat-file", "--batch"]
shutil.rmtree(os.path.join(repo, ".git", "tagback"), ignore_errors=True)
subprocess.run(plan, cwd=repo, stdout=subprocess.DEVNULL, check=True)  # warm the caches
r = interleaved({
    "diff": (diff, None),
    "warm": (plan, None),
    "same": (same, None),
    "cold": (plan, cold_env),
    "first": (plan, None, True),
    "blobs": (cat, None, False, blob_list),
}, 101)
full = statistics.median(once([bin, "graph", "--repo", ".", "--rev", "new"], cold_env) for _ in range(3))
mem_cold = peak_kb(plan, env=cold_env)
mem_warm = peak_kb(plan)

# Django's MigrationLoader on both revisions (the Python way: check out, import, load).
loader = None
if (shutil.which(py) or os.path.exists(py)) and subprocess.run([py, "-c", "import django"], capture_output=True).returncode == 0:
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

d = r["diff"][0]
print(f"repository: {repo} (101 interleaved rounds; median, min)")
print(f"git diff --name-only old new          {d*1000:6.2f} ms  {r['diff'][1]*1000:6.2f} ms")
for name, label, mem in (("warm", "tagback plan (caches warm)", mem_warm), ("cold", "tagback plan (TAGBACK_NO_CACHE=1)", mem_cold), ("first", "tagback plan (first run, writes cache)", None), ("same", "tagback plan, identical revisions", None)):
    med, low = r[name]
    extra = f"   peak {mem/1024:.1f} MB" if mem else ""
    print(f"{label:37s} {med*1000:6.2f} ms  {low*1000:6.2f} ms   {med/d:4.2f}x git diff (median), {low/r['diff'][1]:4.2f}x (min){extra}")
med, low = r["blobs"]
print(f"{'git cat-file --batch (' + str(len(blobs)) + ' blobs)':37s} {med*1000:6.2f} ms  {low*1000:6.2f} ms   {med/d:4.2f}x git diff (median): git reading what a plan without cache reads")
print(f"tagback graph --rev new (all 45k files parsed, no cache) {full*1000:8.1f} ms")
if loader:
    print(f"Django MigrationLoader x2             {loader*1000:8.1f} ms   {loader/r['warm'][0]:6.0f}x slower than plan (warm), {loader/r['cold'][0]:6.0f}x (no cache)")
else:
    print("Django MigrationLoader: skipped (timed on the first workload only, or no Django in the given python)")
PY
done

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
