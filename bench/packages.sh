#!/usr/bin/env bash
# Benchmark (issue 12, point 6): a warm `check` on a site whose pins changed
# against a warm `plan` whose pins did not, in the same run (release build).
# The site is bench/gen.py's repository (APPS x MIGS, CHANGED apps gain two
# migrations) with django-taggit and django-auditlog installed and pinned:
#   v1: older pins (taggit 4.0.0, auditlog 2.1.1), stack image site:1
#   v2: the new migrations and newer pins (taggit 5.0.1, auditlog 2.3.0), site:2
#   v3: the same new migrations, pins unchanged, site:3
# then stack commits moving back to site:1 from site:2 (pins changed) and
# from site:3 (pins unchanged). The packages come from a wheelhouse (pip
# download, once), the caches are warm (one run before timing).
# Usage: bench/packages.sh [PYTHON_WITH_PIP] [APPS] [MIGS] [CHANGED]
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:-${TAGBACK_TEST_PYTHON:-python3}}
apps=${2:-30}
migs=${3:-50}
changed=${4:-5}
work=$PWD/target/bench
mkdir -p "$work"
cargo build --release --quiet
bin=$PWD/target/release/tagback
wheels=$work/wheels-packages
older=(django-taggit==4.0.0 django-auditlog==2.1.1)
newer=(django-taggit==5.0.1 django-auditlog==2.3.0)
common=(Django==4.2.30 asgiref==3.13.0 sqlparse==0.6.1 python-dateutil==2.9.0.post0 six==1.17.0)
if [[ ! -f "$wheels/.ready" ]]; then
  mkdir -p "$wheels"
  for r in "${older[@]}" "${newer[@]}" "${common[@]}"; do
    "$py" -m pip download -q --no-deps -d "$wheels" "$r"
  done
  touch "$wheels/.ready"
fi

repo=$work/packages-$apps-$migs-$changed
rm -rf "$repo"
python3 bench/gen.py "$repo" "$apps" "$migs" "$changed" >/dev/null
g() { git -C "$repo" -c user.name=b -c user.email=b@e "$@"; }
pins() { printf '%s\n' "# pinned" "$@" "${common[@]}" >"$repo/requirements.txt"; }
image() { printf 'services:\n  web:\n    image: site:%s\n' "$1" >"$repo/stack.yml"; }
g checkout -q -f old
python3 - "$repo/proj/settings.py" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read().replace("INSTALLED_APPS = [\n", "INSTALLED_APPS = [\n    'taggit',\n    'auditlog',\n", 1)
open(p, "w").write(s)
PY
pins "${older[@]}" && image 1
g add -A && g commit -qm v1 && g tag v1
mapfile -t news < <(g diff --name-only old new)
g checkout -q new -- "${news[@]}"
pins "${newer[@]}" && image 2
g add -A && g commit -qm "v2: migrations and newer pins" && g tag v2
image 1 && g commit -qam "back from 2 (pins change)" && g tag back-pins
g checkout -q v1
g checkout -q new -- "${news[@]}"
image 3
g add -A && g commit -qm "v3: migrations, same pins" && g tag v3
image 1 && g commit -qam "back from 3 (same pins)" && g tag back-same

TAGBACK_WHEELHOUSE=$wheels TAGBACK_NO_INDEX=1 python3 - "$bin" "$repo" <<'PY'
import os, shutil, statistics, subprocess, sys, time
bin, repo = sys.argv[1:]

def once(cmd):
    t = time.perf_counter()
    p = subprocess.run(cmd, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if p.returncode not in (0, 1):
        sys.exit(f"{cmd} exited {p.returncode}: {p.stderr.decode()}")
    return time.perf_counter() - t

cmds = {
    "plan, pins unchanged": [bin, "plan", "--repo", ".", "--from", "v3", "--to", "v1", "--format", "json"],
    "plan, pins changed": [bin, "plan", "--repo", ".", "--from", "v2", "--to", "v1", "--format", "json"],
    "check, pins unchanged": [bin, "check", "--from", "v3", "--to", "back-same", "--format", "json"],
    "check, pins changed": [bin, "check", "--from", "v2", "--to", "back-pins", "--format", "json"],
}
shutil.rmtree(os.path.join(repo, ".git", "tagback"), ignore_errors=True)
for cmd in cmds.values():
    once(cmd)  # warm the caches (the package files cache included)
out = subprocess.run(cmds["check, pins changed"][:-2] + ["--format", "json"], cwd=repo, capture_output=True, text=True).stdout
assert '"taggit"' in out and '"auditlog"' in out, "the packages' apps are not in the plan"
times = {name: [] for name in cmds}
for _ in range(51):
    for name, cmd in cmds.items():
        times[name].append(once(cmd))
base = statistics.median(times["plan, pins unchanged"])
print(f"site: {repo} (51 interleaved rounds; median, min)")
for name, t in times.items():
    med = statistics.median(t)
    print(f"{name:24s} {med*1000:7.2f} ms {min(t)*1000:7.2f} ms   {med/base:4.2f}x the warm plan whose pins did not change")
PY
