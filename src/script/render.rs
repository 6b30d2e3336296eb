//! Render a [`RollbackScript`] to bash. The fixed parts are constant text;
//! every value is inserted through `quote`.

use std::fmt::Write as _;

use super::quote::{bash, comment, literal, words};
use super::{Action, RollbackScript};
use crate::config::Strategy;

const COMMON: &str = r#"
log() { printf 'tagback: %s\n' "$*" >&2; }
die() { printf 'tagback: error: %s\n' "$*" >&2; exit 1; }
# run CMD...: runs CMD, or only prints it when DRY_RUN=1.
run() {
  if [[ "$DRY_RUN" == 1 ]]; then
    printf 'DRY_RUN:'
    printf ' %q' "$@"
    printf '\n'
  else
    "$@"
  fi
}
state_get() {
  if [[ -f "$STATE_FILE" ]]; then
    awk -F= -v k="$1" '$1 == k { v = substr($0, length(k) + 2) } END { if (v != "") print v }' "$STATE_FILE"
  fi
}
state_set() {
  if [[ "$DRY_RUN" != 1 ]]; then
    printf '%s=%s\n' "$1" "$2" >>"$STATE_FILE"
  fi
}
strip_digest() { printf '%s' "${1%%@*}"; }
# showmigrations --list output -> "app name X" / "app name -" lines.
normalize_showmigrations() {
  awk '/^[^ \[]/ { app = $1; next }
       /^ *\[.\] / { s = (index($0, "[X]") > 0) ? "X" : "-"; n = $0; sub(/^ *\[.\] /, "", n); sub(/ .*/, "", n); print app " " n " " s }'
}
verify() {
  local out normalized i
  if [[ "$DRY_RUN" == 1 ]]; then
    log "DRY_RUN: would check with showmigrations that the planned migrations are unapplied"
    return 0
  fi
  out=$(manage_newer showmigrations --list "${APPS[@]}")
  normalized=$(printf '%s\n' "$out" | normalize_showmigrations)
  for ((i = 0; i < ${#UNAPPLIED[@]}; i += 2)); do
    if ! grep -Fxq -- "${UNAPPLIED[i]} ${UNAPPLIED[i + 1]} -" <<<"$normalized"; then
      die "${UNAPPLIED[i]}.${UNAPPLIED[i + 1]} is not shown as unapplied by showmigrations; not scaling down"
    fi
  done
  for ((i = 0; i < ${#KEEP_APPLIED[@]}; i += 2)); do
    if ! grep -Fxq -- "${KEEP_APPLIED[i]} ${KEEP_APPLIED[i + 1]} X" <<<"$normalized"; then
      die "${KEEP_APPLIED[i]}.${KEEP_APPLIED[i + 1]} should still be applied but is not; not scaling down"
    fi
  done
  printf '%s\n' "$out" >"$EVIDENCE_FILE"
  state_set verified 1
  log "verified: every planned migration is unapplied; evidence saved to $EVIDENCE_FILE"
  log "record it: tagback record --service $(printf '%q' "$SERVICE_NAME") --evidence $(printf '%q' "$EVIDENCE_FILE")"
}
manual_step() {
  local n=$1 text=$2 var="TAGBACK_MANUAL_$1"
  if [[ "${!var:-}" != "done" ]]; then
    if [[ "$DRY_RUN" == 1 ]]; then
      log "DRY_RUN: MANUAL STEP $n: $text"
      return 0
    fi
    die "MANUAL STEP $n: $text"
  fi
  log "manual step $n marked done"
}
"#;

const SWARM: &str = r#"
inspect() { docker service inspect --format "$1" "$SERVICE"; }
current_image() { strip_digest "$(inspect '{{.Spec.TaskTemplate.ContainerSpec.Image}}')"; }
current_replicas() { inspect '{{if .Spec.Mode.Replicated}}{{.Spec.Mode.Replicated.Replicas}}{{end}}'; }
preconditions() {
  command -v docker >/dev/null 2>&1 || die "docker is not installed"
  docker info >/dev/null 2>&1 || die "docker is not reachable"
  docker service inspect "$SERVICE" >/dev/null 2>&1 ||
    die "service $SERVICE does not exist (set STACK=name if the stack is named differently)"
}
scale() {
  if [[ "$(current_replicas)" == "$1" ]]; then
    log "$SERVICE already has $1 replicas"
    return 0
  fi
  log "scaling $SERVICE to $1"
  run docker service scale --detach=false "$SERVICE=$1"
}
retag() {
  if [[ "$(current_image)" == "$TO_IMAGE" ]]; then
    log "$SERVICE already uses $TO_IMAGE"
    return 0
  fi
  log "changing the image of $SERVICE to $TO_IMAGE"
  run docker service update --detach=false --image "$TO_IMAGE" "$SERVICE"
}
running_task() {
  local id img
  for id in $(docker ps -q --filter "label=com.docker.swarm.service.name=$SERVICE" --filter status=running); do
    img=$(docker inspect --format '{{.Config.Image}}' "$id")
    if [[ "$(strip_digest "$img")" == "$1" ]]; then
      printf '%s\n' "$id"
      return 0
    fi
  done
  return 1
}
report() {
  docker service ps --filter desired-state=running --format '{{.Name}} {{.Image}} {{.CurrentState}}' "$SERVICE" >&2 || true
}
"#;

const EXEC: &str = r#"
manage_in() {
  local image=$1 cid
  shift
  cid=$(running_task "$image") ||
    die "no running task of $SERVICE with $image on this node; run this script on a node that runs one, or use --strategy job"
  docker exec "$cid" "${MANAGE[@]}" "$@"
}
manage_newer() { manage_in "$FROM_IMAGE" "$@"; }
migrate_newer() {
  local cid
  cid=$(running_task "$FROM_IMAGE") ||
    die "no running task of $SERVICE with $FROM_IMAGE on this node; run this script on a node that runs one, or use --strategy job"
  run docker exec "$cid" "${MANAGE[@]}" migrate "$@" --noinput
}
migrate_older() {
  local cid
  cid=$(running_task "$TO_IMAGE") || die "no running task of $SERVICE with $TO_IMAGE on this node"
  run docker exec "$cid" "${MANAGE[@]}" migrate "$@" --noinput
}
"#;

const JOB: &str = r#"
JOB_SEQ=0
# One Swarm replicated-job per manage.py call, with the service's networks,
# environment, secrets, configs and working directory.
job() {
  local image=$1 name opts=() net kv src tgt dir state i
  shift
  JOB_SEQ=$((JOB_SEQ + 1))
  name="${SERVICE}_tagback_${FINGERPRINT:0:8}_${JOB_SEQ}"
  while IFS= read -r net; do
    [[ -n "$net" ]] && opts+=(--network "$net")
  done < <(inspect '{{range .Spec.TaskTemplate.Networks}}{{println .Target}}{{end}}')
  while IFS= read -r kv; do
    [[ -n "$kv" ]] && opts+=(--env "$kv")
  done < <(inspect '{{range .Spec.TaskTemplate.ContainerSpec.Env}}{{println .}}{{end}}')
  while read -r src tgt; do
    [[ -n "$src" ]] && opts+=(--secret "source=$src,target=$tgt")
  done < <(inspect '{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{println .SecretName .File.Name}}{{end}}')
  while read -r src tgt; do
    [[ -n "$src" ]] && opts+=(--config "source=$src,target=$tgt")
  done < <(inspect '{{range .Spec.TaskTemplate.ContainerSpec.Configs}}{{println .ConfigName .File.Name}}{{end}}')
  dir=$(inspect '{{.Spec.TaskTemplate.ContainerSpec.Dir}}')
  [[ -n "$dir" ]] && opts+=(--workdir "$dir")
  docker service rm "$name" >/dev/null 2>&1 || true
  run docker service create --quiet --detach --mode replicated-job --restart-condition none \
    --name "$name" "${opts[@]}" "$image" "${MANAGE[@]}" "$@" >/dev/null
  [[ "$DRY_RUN" == 1 ]] && return 0
  state=""
  for ((i = 0; i < 600; i++)); do
    state=$(docker service ps --format '{{.CurrentState}}' "$name" 2>/dev/null | head -n 1)
    case "$state" in
      Complete* | Failed* | Rejected* | Shutdown*) break ;;
    esac
    sleep 1
  done
  docker service logs --raw "$name" 2>/dev/null
  docker service rm "$name" >/dev/null 2>&1 || true
  [[ "$state" == Complete* ]] || die "job $name ($*) ended as: ${state:-unknown}"
}
manage_newer() { job "$FROM_IMAGE" "$@"; }
migrate_newer() { job "$FROM_IMAGE" migrate "$@" --noinput; }
migrate_older() { job "$TO_IMAGE" migrate "$@" --noinput; }
"#;

const COMPOSE: &str = r#"
COMPOSE_BIN=()
compose() {
  local files=() f
  for f in "${COMPOSE_FILES[@]}"; do files+=(-f "$f"); done
  if [[ -n "$STACK" ]]; then
    "${COMPOSE_BIN[@]}" -p "$STACK" "${files[@]}" "$@"
  else
    "${COMPOSE_BIN[@]}" "${files[@]}" "$@"
  fi
}
preconditions() {
  command -v docker >/dev/null 2>&1 || die "docker is not installed"
  docker info >/dev/null 2>&1 || die "docker is not reachable"
  if docker compose version >/dev/null 2>&1; then
    COMPOSE_BIN=(docker compose)
  elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE_BIN=(docker-compose)
  else
    die "neither docker compose nor docker-compose is installed"
  fi
  compose config --services | grep -Fxq -- "$SERVICE_NAME" || die "service $SERVICE_NAME is not in the compose project"
}
containers() { compose ps -q "$SERVICE_NAME"; }
current_replicas() { containers | grep -c . || true; }
current_image() {
  local id
  id=$(containers | head -n 1)
  if [[ -n "$id" ]]; then
    strip_digest "$(docker inspect --format '{{.Config.Image}}' "$id")"
  else
    state_get image
  fi
}
running_task() {
  local id
  for id in $(containers); do
    if [[ "$(strip_digest "$(docker inspect --format '{{.Config.Image}}' "$id")")" == "$1" ]]; then
      printf '%s\n' "$id"
      return 0
    fi
  done
  return 1
}
manage_newer() {
  local cid
  cid=$(running_task "$FROM_IMAGE") || die "no running container of $SERVICE_NAME with $FROM_IMAGE"
  docker exec "$cid" "${MANAGE[@]}" "$@"
}
migrate_newer() {
  local cid
  cid=$(running_task "$FROM_IMAGE") || die "no running container of $SERVICE_NAME with $FROM_IMAGE"
  run docker exec "$cid" "${MANAGE[@]}" migrate "$@" --noinput
}
migrate_older() {
  local cid
  cid=$(running_task "$TO_IMAGE") || die "no running container of $SERVICE_NAME with $TO_IMAGE"
  run docker exec "$cid" "${MANAGE[@]}" migrate "$@" --noinput
}
OVERRIDE_FILE=""
override_file() {
  if [[ -z "$OVERRIDE_FILE" ]]; then
    OVERRIDE_FILE=$(mktemp "${TMPDIR:-/tmp}/tagback-override.XXXXXX")
    printf 'services:\n  "%s":\n    image: "%s"\n' "$SERVICE_NAME" "$TO_IMAGE" >"$OVERRIDE_FILE"
  fi
  printf '%s' "$OVERRIDE_FILE"
}
scale() {
  if [[ "$(current_replicas)" == "$1" && "$1" == 0 ]]; then
    log "$SERVICE_NAME already has 0 containers"
    return 0
  fi
  log "scaling $SERVICE_NAME to $1"
  if [[ "$1" == 0 ]]; then
    state_set image "$(current_image)"
    run compose stop "$SERVICE_NAME"
  else
    COMPOSE_FILES+=("$(override_file)")
    run compose up -d --no-deps --scale "$SERVICE_NAME=$1" "$SERVICE_NAME"
  fi
}
retag() {
  state_set image "$TO_IMAGE"
  log "the image of $SERVICE_NAME becomes $TO_IMAGE when it is started again"
}
report() { compose ps "$SERVICE_NAME" >&2 || true; }
"#;

const MAIN: &str = r#"
main() {
  preconditions
  local image replicas now
  image=$(current_image)
  now=$(current_replicas)
  replicas=$(state_get replicas)
  if [[ -z "$replicas" ]]; then
    if [[ -n "$now" && "$now" != 0 ]]; then
      replicas=$now
    elif [[ -n "$DEFAULT_REPLICAS" ]]; then
      replicas=$DEFAULT_REPLICAS
    else
      die "$SERVICE has 0 replicas and the original count is unknown; set REPLICAS=N"
    fi
    state_set replicas "$replicas"
  fi
  replicas=${REPLICAS:-$replicas}
  log "service $SERVICE: image $image, $now replica(s); will restore $replicas"
  if [[ "$image" == "$TO_IMAGE" ]]; then
    log "$SERVICE already runs $TO_IMAGE: the backward migrations ran before; finishing"
  elif [[ "$image" == "$FROM_IMAGE" ]]; then
    if [[ "$(state_get verified)" == 1 ]]; then
      log "backward migrations already verified by an earlier run"
    else
      if [[ "$now" == 0 && "$STRATEGY" != job ]]; then
        die "$SERVICE has 0 replicas but the backward migrations were not verified; scale it to $replicas with $FROM_IMAGE and re-run"
      fi
      backward_migrations
      verify
    fi
    scale 0
    retag
  else
    die "$SERVICE runs $image; expected $FROM_IMAGE (or $TO_IMAGE after the rollback). Refusing to change anything"
  fi
  scale "$replicas"
  forward_old_only_apps
  report
  log "done: $SERVICE runs $TO_IMAGE with $replicas replica(s)"
}

main "$@"
"#;

/// Render the script.
pub fn render(s: &RollbackScript) -> String {
    let mut out = String::new();
    let w = &mut out;
    let is_swarm = s.strategy != Strategy::Compose;
    let _ = writeln!(w, "#!/usr/bin/env bash");
    let _ = writeln!(
        w,
        "# tagback rollback script. Read it, then run it (it never prompts)."
    );
    let _ = writeln!(w, "#");
    let _ = writeln!(w, "# Service:    {}", comment(&s.service));
    let _ = writeln!(
        w,
        "# From image: {}  (running now; its code unapplies the migrations)",
        comment(&s.from_image)
    );
    let _ = writeln!(w, "# To image:   {}", comment(&s.to_image));
    let _ = writeln!(w, "# Strategy:   {}", s.strategy.as_str());
    let _ = writeln!(w, "#");
    if s.summary.is_empty() {
        let _ = writeln!(w, "# No backward migrations are needed.");
    } else {
        let _ = writeln!(
            w,
            "# Backward migrations, run with the newer image in this order:"
        );
        for line in &s.summary {
            let _ = writeln!(w, "#   {}", comment(line));
        }
    }
    let _ = writeln!(w, "#");
    let _ = writeln!(
        w,
        "# Steps: preconditions (docker, service, running image) -> backward migrations"
    );
    let _ = writeln!(
        w,
        "# -> verify with showmigrations -> scale to 0 -> set image -> scale back up."
    );
    let _ = writeln!(
        w,
        "# DRY_RUN=1 prints every command that would change something and changes nothing."
    );
    let _ = writeln!(
        w,
        "# Safe to re-run after a failure: each step checks the state before it acts."
    );
    let _ = writeln!(
        w,
        "# STACK=name overrides the stack/project name; REPLICAS=N the replica count."
    );
    let _ = writeln!(
        w,
        "# Generated by {} (plan {}).",
        comment(&s.generated_by),
        &s.fingerprint[..s.fingerprint.len().min(12)]
    );
    let _ = writeln!(w, "set -euo pipefail");
    let _ = writeln!(w);
    let _ = writeln!(w, "STACK=${{STACK-{}}}", bash(&s.stack));
    let _ = writeln!(w, "SERVICE_NAME={}", literal(&s.service));
    let _ = writeln!(w, "FROM_IMAGE={}", literal(&s.from_image));
    let _ = writeln!(w, "TO_IMAGE={}", literal(&s.to_image));
    let _ = writeln!(w, "STRATEGY={}", literal(s.strategy.as_str()));
    let _ = writeln!(
        w,
        "DEFAULT_REPLICAS={}",
        literal(
            &s.default_replicas
                .map(|r| r.to_string())
                .unwrap_or_default()
        )
    );
    let _ = writeln!(w, "FINGERPRINT={}", literal(&s.fingerprint));
    let _ = writeln!(w, "MANAGE=({})", words(&s.manage));
    let mut apps: Vec<&str> = s
        .unapplied
        .iter()
        .map(|(a, _)| a.as_str())
        .chain(s.keep_applied.iter().map(|(a, _)| a.as_str()))
        .collect();
    apps.sort_unstable();
    apps.dedup();
    let _ = writeln!(w, "APPS=({})", words(&apps));
    let pairs = |v: &[(String, String)]| {
        v.iter()
            .map(|(a, n)| format!("  {} {}\n", bash(a), bash(n)))
            .collect::<String>()
    };
    let _ = writeln!(w, "UNAPPLIED=(\n{})", pairs(&s.unapplied));
    let _ = writeln!(w, "KEEP_APPLIED=(\n{})", pairs(&s.keep_applied));
    let _ = writeln!(w, "POST_APPS=({})", words(&s.post_apps));
    if s.strategy == Strategy::Compose {
        let _ = writeln!(w, "COMPOSE_FILES=({})", words(&s.compose_files));
    }
    let _ = writeln!(w, "DRY_RUN=${{DRY_RUN:-0}}");
    if is_swarm {
        let _ = writeln!(
            w,
            "if [[ -n \"$STACK\" ]]; then SERVICE=\"${{STACK}}_${{SERVICE_NAME}}\"; else SERVICE=$SERVICE_NAME; fi"
        );
    } else {
        let _ = writeln!(w, "SERVICE=$SERVICE_NAME");
    }
    let _ = writeln!(
        w,
        "STATE_FILE=${{TAGBACK_STATE_FILE:-${{TMPDIR:-/tmp}}/tagback-rollback-${{SERVICE}}-${{FINGERPRINT:0:12}}.state}}"
    );
    let _ = writeln!(
        w,
        "EVIDENCE_FILE=${{TAGBACK_EVIDENCE_FILE:-tagback-evidence-${{SERVICE}}.txt}}"
    );
    out.push_str(COMMON);
    match s.strategy {
        Strategy::Exec => {
            out.push_str(SWARM);
            out.push_str(EXEC);
        }
        Strategy::Job => {
            out.push_str(SWARM);
            out.push_str(JOB);
        }
        Strategy::Compose => out.push_str(COMPOSE),
    }
    out.push_str("\nbackward_migrations() {\n");
    if s.actions.is_empty() {
        out.push_str("  log \"no backward migrations to run\"\n");
    }
    for a in &s.actions {
        match a {
            Action::Migrate { app, target, fake } => {
                let _ = writeln!(
                    out,
                    "  log {}",
                    bash(&format!(
                        "migrate {app} {target}{}",
                        if *fake { " --fake" } else { "" }
                    ))
                );
                let fake = if *fake { " --fake" } else { "" };
                let _ = writeln!(out, "  migrate_newer {} {}{fake}", bash(app), bash(target));
            }
            Action::Manual {
                number,
                instructions,
            } => {
                let _ = writeln!(out, "  # MANUAL STEP {number}");
                let _ = writeln!(out, "  manual_step {number} {}", bash(instructions));
            }
        }
    }
    out.push_str("}\n");
    out.push_str("\nforward_old_only_apps() {\n  local app\n  for app in \"${POST_APPS[@]}\"; do\n    log \"migrating $app forward with the older code\"\n    migrate_older \"$app\"\n  done\n}\n");
    out.push_str(MAIN);
    out
}
