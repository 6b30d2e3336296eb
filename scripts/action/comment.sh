#!/usr/bin/env bash
# Create or update the one tagback comment on a pull request: the comment
# whose body holds the marker is edited in place, otherwise one is created.
# Environment: GITHUB_TOKEN, GITHUB_REPOSITORY (owner/name), GITHUB_API_URL
# (default https://api.github.com), TAGBACK_PR (the number), TAGBACK_REPORT
# (the markdown file). Exit 0 when the comment was written, 1 when the API
# refused it (a fork's read-only token: the step summary still has it).
set -euo pipefail

marker='<!-- tagback-report -->'
api=${GITHUB_API_URL:-https://api.github.com}
repo=${GITHUB_REPOSITORY:?GITHUB_REPOSITORY is not set}
pr=${TAGBACK_PR:?TAGBACK_PR is not set}
token=${GITHUB_TOKEN:?GITHUB_TOKEN is not set}
report=${TAGBACK_REPORT:?TAGBACK_REPORT is not set}

body=$(jq -Rs --arg m "$marker" '{body: ($m + "\n" + .)}' <"$report")
call() { # METHOD URL [DATA]
  curl --silent --show-error --fail-with-body --location \
    -H "Authorization: Bearer $token" -H "Accept: application/vnd.github+json" \
    -H "X-GitHub-Api-Version: 2022-11-28" -X "$1" "$2" ${3:+--data "$3"}
}

existing=""
page=1
while :; do
  comments=$(call GET "$api/repos/$repo/issues/$pr/comments?per_page=100&page=$page") || {
    echo "tagback: cannot list the comments of pull request #$pr" >&2; exit 1; }
  existing=$(jq -r --arg m "$marker" '[.[] | select(.body | contains($m))][0].id // empty' <<<"$comments")
  [[ -z "$existing" && $(jq length <<<"$comments") == 100 ]] || break
  page=$((page + 1))
done

if [[ -n "$existing" ]]; then
  call PATCH "$api/repos/$repo/issues/comments/$existing" "$body" >/dev/null ||
    { echo "tagback: cannot update comment $existing on pull request #$pr" >&2; exit 1; }
  echo "tagback: updated the comment on pull request #$pr" >&2
else
  call POST "$api/repos/$repo/issues/$pr/comments" "$body" >/dev/null ||
    { echo "tagback: cannot comment on pull request #$pr (a fork's token is read-only; the step summary has the report)" >&2; exit 1; }
  echo "tagback: commented on pull request #$pr" >&2
fi
