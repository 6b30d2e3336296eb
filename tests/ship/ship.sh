#!/usr/bin/env bash
# How users get tagback, checked with the real tools:
#   - action.yml and the example workflows against the official schemas
#     (check-jsonschema's vendored GitHub schemas; works offline), the
#     GitLab template as YAML with its script run by sh on real repositories;
#   - the pre-commit hooks with the real pre-commit framework
#     (`pre-commit try-repo`) on a real repository with a staged downgrade;
#   - where Docker runs: the static binary, the scratch image, `check` on a
#     mounted repository owned by another uid, and the docker_image hook.
#
# Usage: tests/ship/ship.sh WORKDIR VENV   (VENV has pre-commit and check-jsonschema)
#   TAGBACK_SHIP_DOCKER=0 skips the image part; TAGBACK_SHIP_PREFIX names
#   what it creates in Docker (default tbship).
set -euo pipefail
work=${1:?usage: ship.sh WORKDIR VENV}
venv=$(cd "${2:?usage: ship.sh WORKDIR VENV}" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$work"
work=$(cd "$work" && pwd)
prefix=${TAGBACK_SHIP_PREFIX:-tbship}
image=$prefix-tagback:test
checks=0
say() { printf '\n--- %s\n' "$*"; }
pass() { checks=$((checks + 1)); printf '  [ok  ] %s\n' "$*"; }
fail() { printf '  [FAIL] %s\n' "$*" >&2; exit 1; }
# expect CODE CMD...: run CMD, keep its output in $out, require exit CODE.
expect() {
  local want=$1 got=0
  shift
  out=$("$@" 2>&1) || got=$?
  [[ $got == "$want" ]] || { printf '%s\n' "$out" >&2; fail "exit $got, wanted $want: $*"; }
}
contains() { [[ "$out" == *"$1"* ]] || { printf '%s\n' "$out" >&2; fail "output lacks: $1"; }; }

export PATH="$root/target/debug:$venv/bin:$PATH"
for v in $(env | sed -n 's/^\(GIT_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
# A private HOME for git and pre-commit; cargo and rustup keep theirs.
export RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup} CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
export HOME=$work/home GIT_CONFIG_NOSYSTEM=1 NO_COLOR=1 PRE_COMMIT_HOME=$work/pre-commit-cache
mkdir -p "$HOME"
git config --global user.name Test
git config --global user.email test@example.com
git config --global init.defaultBranch main
git config --global advice.detachedHead false

# A deploy repository holding the demo shop at v1 and v2 (tags), deploying shop:2.
make_repo() {
  local dir=$1
  rm -rf "$dir"
  mkdir -p "$dir"
  (
    cd "$dir"
    git init -q
    cp -R "$root/fixtures/demo/v1/." .
    sed 's/TAG/1/' "$root/tests/ship/stack.yml" >stack.yml
    git add -A && git commit -qm v1 && git tag v1
    rm -rf accounts shop && cp -R "$root/fixtures/demo/v2/." .
    sed 's/TAG/2/' "$root/tests/ship/stack.yml" >stack.yml
    git add -A && git commit -qm v2 && git tag v2
  )
}

say "schemas: action.yml and the workflows (check-jsonschema, offline)"
expect 0 check-jsonschema --builtin-schema vendor.github-actions "$root/action.yml"
pass "action.yml is a valid action"
expect 0 check-jsonschema --builtin-schema vendor.github-workflows \
  "$root"/docs/examples/github-*.yml "$root"/.github/workflows/*.yml
pass "docs/examples/github-*.yml and .github/workflows/*.yml are valid workflows"
printf 'name: x\ndescription: y\nruns:\n  using: composite\n  steps:\n    - run: echo\n' >"$work/bad-action.yml"
expect 1 check-jsonschema --builtin-schema vendor.github-actions "$work/bad-action.yml"
pass "a composite step without shell: is refused (the schema check bites)"
expect 0 check-jsonschema --builtin-schema vendor.gitlab-ci "$root/docs/examples/gitlab-ci.yml"
pass "docs/examples/gitlab-ci.yml is valid GitLab CI"

say "GitLab template: its script, run by sh, picks the revisions"
gitlab_script="$work/gitlab-script.sh"
job_lines() { # SECTION: the lines of the .tagback job's SECTION (PyYAML comes with pre-commit)
  "$venv/bin/python" - "$root/docs/examples/gitlab-ci.yml" "$1" <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
job = doc[".tagback"]
print("set -eu")
for line in job[sys.argv[2]]:
    print(line)
PY
}
job_lines script >"$gitlab_script"
repo=$work/gitlab
make_repo "$repo"
git -C "$repo" clone -q --bare . "$work/gitlab-origin.git"
git -C "$repo" remote add origin "$work/gitlab-origin.git"
git -C "$repo" fetch -q origin
v2=$(git -C "$repo" rev-parse HEAD)
git -C "$repo" checkout -q -b rollback-web
sed 's/TAG/1/' "$root/tests/ship/stack.yml" >"$repo/stack.yml"
git -C "$repo" commit -qam "roll web back"
head=$(git -C "$repo" rev-parse HEAD)
gl() { (cd "$repo" && env "$@" sh "$gitlab_script"); }
expect 1 gl CI_COMMIT_BEFORE_SHA="$v2" CI_COMMIT_SHA="$head" CI_DEFAULT_BRANCH=main
contains "comparing $v2 with $head"
contains "[BLOCKED] web: downgrade"
pass "push pipeline: before..sha, the downgrade blocks (exit 1)"
git -C "$repo" update-ref -d refs/remotes/origin/main
expect 1 gl CI_COMMIT_BEFORE_SHA=0000000000000000000000000000000000000000 CI_COMMIT_SHA="$head" CI_DEFAULT_BRANCH=main
contains "comparing $v2 with $head"
pass "new branch (before all zeros): merge base with the fetched default branch"
expect 1 gl CI_MERGE_REQUEST_DIFF_BASE_SHA="$v2" CI_COMMIT_SHA="$head" CI_COMMIT_BEFORE_SHA=0000000000000000000000000000000000000000 CI_DEFAULT_BRANCH=main
contains "comparing $v2 with $head"
pass "merge request pipeline: CI_MERGE_REQUEST_DIFF_BASE_SHA"
[[ -d "$repo/rollback" ]] || fail "the rollback artifact directory was not created"
pass "the artifact directory exists for artifacts: paths"
# before_script: the release download, checked, from a release directory
# packed like the real one (file://; a stand-in executable keeps it small).
releases=$work/gitlab-releases
arch_target=$(uname -m)-unknown-linux-gnu
mkdir -p "$releases/v0.1.0" "$work/gitlab-bin" "$work/stand-in"
printf '#!/bin/sh\necho "tagback 0.1.0"\n' >"$work/stand-in/tagback"
"$root/scripts/package-release.sh" "$work/stand-in/tagback" v0.1.0 "$arch_target" "$releases/v0.1.0" >/dev/null
job_lines before_script >"$work/gitlab-before.sh"
gl_before() { env TAGBACK_VERSION=0.1.0 TAGBACK_RELEASES="file://$releases" TAGBACK_BIN_DIR="$work/gitlab-bin" sh "$work/gitlab-before.sh"; }
expect 0 gl_before
[[ -x "$work/gitlab-bin/tagback" ]] || fail "before_script did not install tagback"
pass "before_script: downloads, checks the SHA-256 and installs the release binary"
rm "$work/gitlab-bin/tagback"
printf 'x' >>"$releases/v0.1.0/tagback-v0.1.0-$arch_target.tar.gz"
expect 1 gl_before
[[ ! -e "$work/gitlab-bin/tagback" ]] || fail "a tampered release was installed"
pass "before_script: a tampered archive fails the job and installs nothing"

say "install.sh: says what is missing before building"
fake=$work/fake-toolchain
mkdir -p "$fake"
printf '#!/bin/sh\necho "rustc 1.80.0 (abc 2024-07-21)"\n' >"$fake/rustc"
printf '#!/bin/sh\necho "cargo must not run" >&2; exit 99\n' >"$fake/cargo"
chmod +x "$fake/rustc" "$fake/cargo"
expect 2 env PATH="$fake:$PATH" "$root/install.sh"
contains "rustc 1.80.0 (abc 2024-07-21) is too old: tagback needs Rust 1.95 or newer"
pass "install.sh refuses Rust 1.80 before building, saying what to do"
printf '#!/bin/sh\necho "rustc 1.95.0 (abc 2026-04-14)"\n' >"$fake/rustc"
mkdir -p "$work/no-cc"
for tool in bash sed env head cat; do ln -sf "$(command -v "$tool")" "$work/no-cc/$tool"; done
expect 2 env PATH="$fake:$work/no-cc" "$root/install.sh"
contains "no C compiler (cc)"
pass "install.sh refuses to start without a C compiler"

say "pre-commit framework: language system hooks (pre-commit try-repo)"
expect 0 pre-commit validate-manifest "$root/.pre-commit-hooks.yaml"
pass "pre-commit validate-manifest .pre-commit-hooks.yaml"
repo=$work/precommit
make_repo "$repo"
sed 's/TAG/1/' "$root/tests/ship/stack.yml" >"$repo/stack.yml"
git -C "$repo" add stack.yml
expect 1 bash -c "cd '$repo' && pre-commit try-repo '$root' tagback"
contains "[BLOCKED] web: downgrade"
pass "try-repo tagback: a staged downgrade is blocked"
sed 's/TAG/2/' "$root/tests/ship/stack.yml" >"$repo/stack.yml"
git -C "$repo" add stack.yml
expect 0 bash -c "cd '$repo' && pre-commit try-repo '$root' tagback"
contains "Passed"
pass "try-repo tagback: nothing staged against HEAD passes"
sed 's/TAG/1/' "$root/tests/ship/stack.yml" >"$repo/stack.yml"
git -C "$repo" commit -qam "roll web back"
expect 1 bash -c "cd '$repo' && pre-commit try-repo '$root' tagback-pre-push --hook-stage pre-push --from-ref v2 --to-ref HEAD"
contains "[BLOCKED] web: downgrade"
pass "try-repo tagback-pre-push: the pushed range v2..HEAD is blocked"

say "Docker: static binary, scratch image, another uid's repository, docker_image hook"
if [[ "${TAGBACK_SHIP_DOCKER:-1}" != 0 && -n "${TAGBACK_REQUIRE_DOCKER:-}" ]] && ! docker info >/dev/null 2>&1; then
  fail "Docker Engine not reachable and TAGBACK_REQUIRE_DOCKER is set"
fi
if [[ "${TAGBACK_SHIP_DOCKER:-1}" == 0 ]] || ! docker info >/dev/null 2>&1; then
  printf '\n!!! Docker Engine not reachable (or TAGBACK_SHIP_DOCKER=0): the image checks DID NOT RUN\n\n' >&2
  printf '\n%d shipping checks passed (image checks skipped)\n' "$checks"
  exit 0
fi
start=$SECONDS
# This checks how the binary is linked and packed, not its speed: built
# without the release profile's whole-program optimisation (fat LTO, one
# codegen unit), which would add minutes of single-threaded work to the run.
CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
  "$root/scripts/build-static.sh" --quiet
pass "scripts/build-static.sh: $(du -h "$root/target/static/tagback" | cut -f1) static binary in $((SECONDS - start)) s"
if ldd "$root/target/static/tagback" 2>&1 | grep -q '=>'; then fail "target/static/tagback is dynamically linked"; fi
pass "ldd: no shared library (statically linked)"
start=$SECONDS
(cd "$root" && docker build -q -t "$image" . >/dev/null)
pass "docker build -t $image . ($((SECONDS - start)) s, $(docker image inspect -f '{{.Size}}' "$image") bytes)"
cleanup() { docker image rm -f "$image" >/dev/null 2>&1 || true; }
trap cleanup EXIT

repo=$work/image-repo
make_repo "$repo"
sed 's/TAG/1/' "$root/tests/ship/stack.yml" >"$repo/stack.yml"
git -C "$repo" commit -qam "roll web back"
if [[ $(id -u) == 0 ]]; then
  chown -R 4242:4242 "$repo"
  expect 1 docker run --rm -v "$repo:/repo" "$image" check --from v2 --to HEAD
  contains "[BLOCKED] web: downgrade"
  pass "root in the image, repository owned by uid 4242 at /repo (trusted mount point): blocked, exit 1"
  expect 2 docker run --rm -v "$repo:/elsewhere" -w /elsewhere "$image" check --from v2 --to HEAD
  contains "owned by"
  pass "the same repository at /elsewhere: refused, exit 2 (the ownership check stays on)"
  expect 1 docker run --rm --user 4242:4242 -v "$repo:/elsewhere" -w /elsewhere "$image" check --from v2 --to HEAD
  pass "--user 4242:4242 (the owner) at any path: blocked, exit 1, nothing trusted"
  expect 0 docker run --rm --user 4242:4242 "$image" demo
  pass "tagback demo as a non-root uid (writable /tmp)"
else
  printf '\n!!! not root: the other-uid checks DID NOT RUN (chown needs root)\n\n' >&2
fi
expect 0 docker run --rm -v "$repo:/repo" "$image" check --from v2 --to v2 --format json
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["safe"] is True, d' "$out"
pass "check --format json from the image parses"

say "GitHub Action with install: image (the wrapper runs the image as the runner's uid)"
runner=$work/runner
rm -rf "$runner" && mkdir -p "$runner"
repo=$work/action-image
make_repo "$repo"
sed 's/TAG/1/' "$root/tests/ship/stack.yml" >"$repo/stack.yml"
git -C "$repo" commit -qam "roll web back"
expect 0 env RUNNER_TEMP="$runner" TAGBACK_INSTALL=image TAGBACK_IMAGE="$image" GITHUB_PATH="$runner/path" \
  "$root/scripts/action/install.sh"
contains "using tagback 0.1.0 (image)"
[[ "$(cat "$runner/path")" == "$runner/tagback-bin" ]] || fail "GITHUB_PATH does not name the wrapper's directory"
: >"$runner/output"
expect 0 bash -c "cd '$repo' && PATH='$runner/tagback-bin':\$PATH RUNNER_TEMP='$runner' GITHUB_OUTPUT='$runner/output' \
  GITHUB_STEP_SUMMARY='$runner/summary' TAGBACK_FROM=v2 TAGBACK_TO=HEAD TAGBACK_ARTIFACT_DIR=.tagback-rollback '$root/scripts/action/run.sh'"
grep -qx 'status=1' "$runner/output" || { cat "$runner/output" >&2; fail "the action would not end with status 1"; }
grep -q 'downgrade' "$runner/summary" || fail "the step summary lacks the report"
pass "install: image, then run.sh: the image's gate blocks (status 1) and the summary has the report"

say "pre-commit framework: the docker_image hook with the image"
repo=$work/precommit-docker
make_repo "$repo"
rev=$(git -C "$root" rev-parse HEAD)
cat >"$repo/.pre-commit-config.yaml" <<EOF
repos:
  - repo: $root
    rev: $rev
    hooks:
      - id: tagback-docker
        entry: $image hook pre-commit
EOF
git -C "$repo" add .pre-commit-config.yaml
git -C "$repo" commit -qm "pre-commit config"
sed 's/TAG/1/' "$root/tests/ship/stack.yml" >"$repo/stack.yml"
git -C "$repo" add stack.yml
expect 1 bash -c "cd '$repo' && pre-commit run tagback-docker"
contains "[BLOCKED] web: downgrade"
pass "pre-commit run tagback-docker (language: docker_image, as your uid at /src): blocked"
sed 's/TAG/2/' "$root/tests/ship/stack.yml" >"$repo/stack.yml"
git -C "$repo" add stack.yml
expect 0 bash -c "cd '$repo' && pre-commit run tagback-docker"
pass "pre-commit run tagback-docker: passes without a downgrade"

printf '\n%d shipping checks passed\n' "$checks"
