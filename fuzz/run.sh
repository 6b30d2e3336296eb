#!/usr/bin/env bash
# Fuzz every parser tagback feeds user input, seeded from fixtures/ and
# fuzz/seeds/. Usage: fuzz/run.sh RUNS [TARGET...]  (RUNS: executions per
# target, e.g. 2000000; "smoke" runs each target for a few seconds).
# Needs cargo-fuzz (`cargo install cargo-fuzz`); libFuzzer needs nightly
# flags, which RUSTC_BOOTSTRAP=1 allows on the stable toolchain.
set -euo pipefail
cd "$(dirname "$0")"
runs=${1:?usage: fuzz/run.sh RUNS|smoke [TARGET...]}
shift
targets=("$@")
((${#targets[@]})) || mapfile -t targets < <(sed -n 's/^name = "\([a-z_]*\)"$/\1/p' Cargo.toml | grep -v '^tagback-fuzz$')
export RUSTC_BOOTSTRAP=1
fixtures=../fixtures
seed() { # seed TARGET FILES...
  local dir=corpus/$1
  shift
  mkdir -p "$dir"
  [[ -d seeds/${dir#corpus/} ]] && cp seeds/"${dir#corpus/}"/* "$dir"/
  local f
  for f in "$@"; do cp "$f" "$dir/$(echo "$f" | tr / _)"; done
}
for t in "${targets[@]}"; do
  case $t in
    # Not the alias bomb: refusing it takes its budget (~10-400 ms) on every
    # variant, which would cap the target at ~100 executions/s (a CLI test
    # covers the bomb).
    stack_file) seed "$t" "$fixtures"/stack/{malformed,required_var}.yml "$fixtures"/demo/stack.yml ;;
    interpolation) seed "$t" "$fixtures"/stack/*.yml ;;
    migration) seed "$t" "$fixtures"/demo/v*/*/migrations/0*.py "$fixtures"/django/err/*.py ;;
    settings) seed "$t" "$fixtures"/demo/v*/shopsite/settings.py ;;
    *) seed "$t" ;;
  esac
done
# Safe Rust (unsafe_code is forbidden): no sanitizer; the smoke run builds
# unoptimised (quicker to build), long runs optimised (more executions).
if [[ $runs == smoke ]]; then
  limit=(-max_total_time=3)
  build=(--dev --sanitizer none)
else
  limit=(-runs="$runs")
  # FUZZ_MAX_SECONDS caps each target's time (the report says how far it got).
  [[ -n ${FUZZ_MAX_SECONDS:-} ]] && limit+=(-max_total_time="$FUZZ_MAX_SECONDS")
  build=(--sanitizer none)
fi
cargo fuzz build "${build[@]}"
for t in "${targets[@]}"; do
  start=$SECONDS
  cargo fuzz run "${build[@]}" "$t" "corpus/$t" -- "${limit[@]}" -max_len=65536 -print_final_stats=1 2>"corpus/$t.log" || {
    tail -40 "corpus/$t.log" >&2
    echo "fuzz target $t failed: the crashing input is in fuzz/artifacts/$t/" >&2
    exit 1
  }
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "corpus/$t.log")
  echo "fuzz $t: $execs executions in $((SECONDS - start)) s"
done
