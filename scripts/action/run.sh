#!/usr/bin/env bash
# Run the gate (or check) for the tagback GitHub Action and, on request, the
# release artifact (the script that would roll each upgrade back). Never
# fails by itself: it records the statuses for the last step, so the
# artifact upload (`if: always()`) and the pull-request comment still run.
#
# Environment: TAGBACK_FROM, TAGBACK_TO (from revisions.sh), TAGBACK_COMMAND
# (gate | check), TAGBACK_ARGS (extra arguments, e.g. "-f stack.yml"),
# TAGBACK_ARTIFACT_DIR (empty: no artifact), TAGBACK_FAIL_ON_IMPOSSIBLE_ROLLBACK
# (true: exit 1 when an upgrade could not be rolled back), TAGBACK_ANNOTATIONS
# (false: no ::error/::warning workflow commands), RUNNER_TEMP,
# GITHUB_STEP_SUMMARY, GITHUB_OUTPUT.
# Outputs: status (the exit status the action ends with), gate-status,
# artifact-status, report (path of the markdown report).
set -uo pipefail

tmp=${RUNNER_TEMP:-${TMPDIR:-/tmp}}
report=$tmp/tagback-report.md
command=${TAGBACK_COMMAND:-gate}
case $command in gate | check) ;; *) echo "tagback: command: must be gate or check, not $command" >&2; exit 2 ;; esac
read -r -a extra <<<"${TAGBACK_ARGS:-}"
summary=${GITHUB_STEP_SUMMARY:-/dev/null}
output() { [[ -z "${GITHUB_OUTPUT:-}" ]] || printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"; }

from=${TAGBACK_FROM:?TAGBACK_FROM is not set} to=${TAGBACK_TO:?TAGBACK_TO is not set}
echo "::group::tagback $command --from $from --to $to"
tagback "$command" --from "$from" --to "$to" "${extra[@]}" --format markdown >"$report"
gate_status=$?
cat "$report"
echo "::endgroup::"
{ cat "$report"; echo; } >>"$summary"

# Annotations on the pull request's files (::error on the image line, ::warning on data loss).
if [[ "${TAGBACK_ANNOTATIONS:-true}" == true && $gate_status != 2 ]]; then
  tagback "$command" --from "$from" --to "$to" "${extra[@]}" --format github || true
fi

artifact_status=0
if [[ -n "${TAGBACK_ARTIFACT_DIR:-}" && $gate_status != 2 ]]; then
  echo "::group::tagback script --release-artifact $TAGBACK_ARTIFACT_DIR"
  tagback script --from "$from" --to "$to" "${extra[@]}" --release-artifact "$TAGBACK_ARTIFACT_DIR"
  artifact_status=$?
  echo "::endgroup::"
  # One summary.md per upgraded service (DIR/SERVICE/summary.md), or one at the top.
  while IFS= read -r -d '' file; do
    { cat "$file"; echo; } >>"$summary"
    { echo; cat "$file"; } >>"$report"
  done < <(find "$TAGBACK_ARTIFACT_DIR" -name summary.md -print0 2>/dev/null | sort -z)
  case $artifact_status in
    0) ;;
    1) echo "::warning title=tagback::rolling this release back would be impossible without manual steps (see the rollback artifact)" ;;
    *) echo "::error title=tagback::tagback script --release-artifact failed (exit $artifact_status)" ;;
  esac
fi

# The gate's status decides; a failed artifact is never silent.
status=$gate_status
if [[ $status == 0 && $artifact_status == 2 ]]; then
  status=2
elif [[ $status == 0 && $artifact_status == 1 && "${TAGBACK_FAIL_ON_IMPOSSIBLE_ROLLBACK:-false}" == true ]]; then
  status=1
fi
output status "$status"
output gate-status "$gate_status"
output artifact-status "$artifact_status"
output report "$report"
echo "tagback: $command exited $gate_status; the action will exit $status" >&2
exit 0
