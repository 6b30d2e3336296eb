#!/usr/bin/env bash
# Which two revisions the tagback GitHub Action compares, from the event
# GitHub delivered (GITHUB_EVENT_NAME, GITHUB_EVENT_PATH). Prints
# `from=SHA`, `to=SHA` and `skip=true|false` lines (appended to
# GITHUB_OUTPUT when it is set) and explains its choice on stderr.
#
#   pull_request, pull_request_target: merge base of base.sha and head.sha
#                 (what the pull request changes, as `git diff base...head`)
#   merge_group:  merge_group.base_sha -> merge_group.head_sha
#   push:         before -> after; a new branch (before all zeros, or empty)
#                 compares with its merge base with the default branch; a
#                 force-push whose `before` is gone does the same, saying so;
#                 a deleted branch is skipped
#   otherwise:    the inputs `from` and `to` are required
#
# Inputs (environment): TAGBACK_FROM, TAGBACK_TO (override both),
# TAGBACK_DEFAULT_BRANCH (default: the event's repository.default_branch).
# Exit 2 with one sentence when it cannot decide.
set -euo pipefail

say() { printf 'tagback: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }
emit() {
  printf 'from=%s\nto=%s\nskip=%s\n' "$1" "$2" "$3"
  if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
    printf 'from=%s\nto=%s\nskip=%s\n' "$1" "$2" "$3" >>"$GITHUB_OUTPUT"
  fi
  exit 0
}
command -v jq >/dev/null || die "jq is needed to read the event payload (preinstalled on GitHub-hosted runners)"
commit() { git rev-parse --verify --quiet "$1^{commit}"; }
zeros='^0+$'

event=${GITHUB_EVENT_NAME:-}
payload=${GITHUB_EVENT_PATH:-}
field() {
  [[ -n "$payload" && -f "$payload" ]] || { echo ""; return; }
  jq -r "$1 // empty" "$payload"
}

if [[ -n "${TAGBACK_FROM:-}" || -n "${TAGBACK_TO:-}" ]]; then
  [[ -n "${TAGBACK_FROM:-}" && -n "${TAGBACK_TO:-}" ]] || die "give both from: and to:, or neither"
  f=$(commit "$TAGBACK_FROM") || die "from: $TAGBACK_FROM is not a commit in this checkout (use actions/checkout with fetch-depth: 0)"
  t=$(commit "$TAGBACK_TO") || die "to: $TAGBACK_TO is not a commit in this checkout (use actions/checkout with fetch-depth: 0)"
  say "comparing the given revisions $TAGBACK_FROM..$TAGBACK_TO"
  emit "$f" "$t" false
fi

default_branch=${TAGBACK_DEFAULT_BRANCH:-$(field .repository.default_branch)}

# The merge base of REV with the default branch (fetched if the checkout lacks it).
base_with_default() {
  local rev=$1 tip
  [[ -n "$default_branch" ]] || die "the event names no default branch; set default-branch:"
  tip=$(commit "refs/remotes/origin/$default_branch") || {
    git fetch --quiet --no-tags origin "+refs/heads/$default_branch:refs/remotes/origin/$default_branch" >&2 ||
      die "cannot fetch the default branch $default_branch from origin"
    tip=$(commit "refs/remotes/origin/$default_branch") || die "origin/$default_branch is not a commit"
  }
  git merge-base "$rev" "$tip" || die "$rev and origin/$default_branch have no common ancestor (use actions/checkout with fetch-depth: 0)"
}

case $event in
  pull_request | pull_request_target)
    base=$(field .pull_request.base.sha)
    head=$(field .pull_request.head.sha)
    [[ -n "$base" && -n "$head" ]] || die "the $event payload has no pull_request.base.sha / head.sha"
    b=$(commit "$base") || die "base $base is not in this checkout (use actions/checkout with fetch-depth: 0)"
    h=$(commit "$head") || die "head $head is not in this checkout (check out the pull request head with fetch-depth: 0)"
    m=$(git merge-base "$b" "$h") || die "base $base and head $head have no common ancestor"
    say "pull request: comparing the merge base ${m:0:12} with the head ${h:0:12}"
    emit "$m" "$h" false
    ;;
  merge_group)
    base=$(field .merge_group.base_sha)
    head=$(field .merge_group.head_sha)
    [[ -n "$base" && -n "$head" ]] || die "the merge_group payload has no base_sha / head_sha"
    b=$(commit "$base") || die "base $base is not in this checkout (use fetch-depth: 0)"
    h=$(commit "$head") || die "head $head is not in this checkout (use fetch-depth: 0)"
    say "merge queue: comparing ${b:0:12} with ${h:0:12}"
    emit "$b" "$h" false
    ;;
  push)
    after=$(field .after)
    [[ -n "$after" ]] || after=${GITHUB_SHA:-}
    [[ -n "$after" ]] || die "the push payload has no after and GITHUB_SHA is not set"
    if [[ "$after" =~ $zeros || "$(field .deleted)" == true ]]; then
      say "push deleted $(field .ref); nothing to compare"
      emit "" "" true
    fi
    a=$(commit "$after") || die "after $after is not in this checkout"
    before=$(field .before)
    if [[ -n "$before" && ! "$before" =~ $zeros ]]; then
      if b=$(commit "$before"); then
        say "push: comparing before ${b:0:12} with after ${a:0:12}"
        emit "$b" "$a" false
      fi
      say "push: before $before is not in this checkout (a force-push, or a shallow clone); comparing with the default branch instead"
    else
      say "push: $(field .ref) is a new branch (no before); comparing with its merge base with $default_branch"
    fi
    m=$(base_with_default "$a")
    if [[ "$m" == "$a" ]]; then
      say "push: ${a:0:12} is already on $default_branch; nothing to compare"
      emit "" "" true
    fi
    emit "$m" "$a" false
    ;;
  *)
    die "event ${event:-<none>}: tagback cannot tell which revisions to compare; set from: and to:"
    ;;
esac
