//! Render a [`RollbackScript`] to bash. The fixed parts are constant text;
//! every value is inserted through `quote`.
//!
//! Every step decides from the live state: the image and replica count come
//! from the service, whether the backward migrations are still needed from
//! `showmigrations` run with the newer image, every time. The only state kept
//! between runs is the replica count to restore (the service cannot tell it
//! once it is at 0), in a private directory, for one attempt.

use std::fmt::Write as _;

use super::quote::{bash, comment, literal, multiline, words};
use super::{Action, RollbackScript};
use crate::config::Strategy;
use crate::django::MigrationKey;

const COMMON: &str = r#"
log() { printf 'tagback: %s\n' "$*" >&2; }
die() { printf 'tagback: error: %s\n' "$*" >&2; exit 1; }
dry() { [[ "$DRY_RUN" == 1 ]]; }
would() { log "DRY_RUN: would $*"; }
# run CMD...: runs CMD, or with DRY_RUN=1 says that it would.
run() {
  local line
  if dry; then
    printf -v line ' %q' "$@"
    log "DRY_RUN: would run:$line"
  else
    "$@"
  fi
}
strip_digest() { printf '%s' "${1%%@*}"; }
abs_path() {
  if [[ "$1" == /* ]]; then printf '%s' "$1"; else printf '%s/%s' "$PWD" "$1"; fi
}

# --- what a dry run has pretended to do (so it shows every later step)
SIM_REPLICAS=""
SIM_IMAGE=""
replicas_now() {
  if [[ -n "$SIM_REPLICAS" ]]; then printf '%s\n' "$SIM_REPLICAS"; else current_replicas; fi
}
image_now() {
  if [[ -n "$SIM_IMAGE" ]]; then printf '%s\n' "$SIM_IMAGE"; else current_image; fi
}

# --- state: only the replica count to restore, for one attempt, in a private directory
default_state_dir() {
  if [[ -n "${XDG_STATE_HOME:-}" ]]; then
    printf '%s/tagback\n' "$XDG_STATE_HOME"
  elif [[ -n "${HOME:-}" ]]; then
    printf '%s/.local/state/tagback\n' "$HOME"
  else
    printf '%s/.tagback-state\n' "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  fi
}
STATE_DIR=${TAGBACK_STATE_DIR:-$(default_state_dir)}
STATE_FILE="$STATE_DIR/$SERVICE-${FINGERPRINT:0:12}.state"
STATE_REPLICAS=""
state_check() {
  if [[ -L "$STATE_DIR" ]]; then
    die "state directory $STATE_DIR is a symbolic link; refusing to use it (remove it, or set TAGBACK_STATE_DIR to a directory of yours)"
  fi
  if [[ -e "$STATE_DIR" ]]; then
    [[ -d "$STATE_DIR" ]] || die "state directory $STATE_DIR is not a directory; refusing to use it"
    [[ -O "$STATE_DIR" ]] ||
      die "state directory $STATE_DIR belongs to another user; refusing to use it (set TAGBACK_STATE_DIR to a directory of yours)"
  fi
  if [[ -L "$STATE_FILE" ]]; then
    die "state file $STATE_FILE is a symbolic link; refusing to use it (remove it)"
  fi
  if [[ -e "$STATE_FILE" ]] && ! [[ -f "$STATE_FILE" && -O "$STATE_FILE" ]]; then
    die "state file $STATE_FILE is not a regular file of yours; refusing to use it (remove it)"
  fi
}
# state_load ID: the replica count an earlier run of this attempt remembered.
state_load() {
  local line key value id="" replicas=""
  state_check
  [[ -f "$STATE_FILE" ]] || return 0
  while IFS= read -r line || [[ -n "$line" ]]; do
    case "$line" in '' | '#'*) continue ;; esac
    key=${line%%=*}
    value=${line#*=}
    case "$key" in
      service_id) id=$value ;;
      replicas)
        if [[ "$value" =~ ^[0-9]+$ ]]; then replicas=$value; else log "ignored in $STATE_FILE: $line (not a replica count)"; fi
        ;;
      *) log "ignored in $STATE_FILE: $line (only service_id and replicas are read; the rest is decided from the live state)" ;;
    esac
  done <"$STATE_FILE"
  if [[ "$id" != "$1" ]]; then
    log "ignored $STATE_FILE: it belongs to another instance of $SERVICE (${id:-none}, now $1)"
    return 0
  fi
  STATE_REPLICAS=$replicas
}
# state_save REPLICAS ID: start (or continue) an attempt.
state_save() {
  local tmp
  if dry; then
    would "remember in $STATE_FILE that $SERVICE had $1 replica(s)"
    return 0
  fi
  if [[ ! -e "$STATE_DIR" && ! -L "$STATE_DIR" ]]; then
    mkdir -p -- "$(dirname -- "$STATE_DIR")"
    mkdir -m 0700 -- "$STATE_DIR" 2>/dev/null || true
  fi
  state_check
  chmod 0700 -- "$STATE_DIR"
  tmp=$(mktemp "$STATE_DIR/.state.XXXXXX")
  printf '# tagback: one rollback attempt of %s; removed when it completes\nservice_id=%s\nreplicas=%s\n' \
    "$SERVICE" "$2" "$1" >"$tmp"
  mv -f -- "$tmp" "$STATE_FILE"
  STATE_REPLICAS=$1
}
state_done() {
  if dry; then
    would "remove $STATE_FILE (the attempt is complete)"
  elif [[ -f "$STATE_FILE" && ! -L "$STATE_FILE" ]]; then
    rm -f -- "$STATE_FILE"
  fi
}

# --- the live migration state, read with showmigrations in the newer image
MIGRATIONS=""
MIGRATIONS_FRESH=0
SHOWMIGRATIONS=""
# showmigrations --list output -> "app name X" / "app name -" lines.
normalize_showmigrations() {
  awk '/^[^ \[]/ { app = $1; next }
       /^ *\[.\] / { s = (index($0, "[X]") > 0) ? "X" : "-"; n = $0; sub(/^ *\[.\] /, "", n); sub(/ .*/, "", n); print app " " n " " s }'
}
read_migrations() {
  SHOWMIGRATIONS=$(manage_newer showmigrations --list "${APPS[@]}") ||
    die "showmigrations with $FROM_IMAGE failed (its output is above); nothing was changed by this step"
  MIGRATIONS=$(printf '%s\n' "$SHOWMIGRATIONS" | normalize_showmigrations)
  MIGRATIONS_FRESH=1
}
# probe: read the live state; returns 1 when a dry run cannot read it without changing something.
probe() {
  if dry && ! read_is_passive; then
    would "read the applied migrations with showmigrations in a one-off $FROM_IMAGE container"
    return 1
  fi
  read_migrations
}
is_applied() { grep -Fxq -- "$1 $2 X" <<<"$MIGRATIONS"; }
is_unapplied() { grep -Fxq -- "$1 $2 -" <<<"$MIGRATIONS"; }
# Every planned migration unapplied and every target still applied.
rolled_back() {
  local i
  for ((i = 0; i < ${#UNAPPLIED[@]}; i += 2)); do
    is_unapplied "${UNAPPLIED[i]}" "${UNAPPLIED[i + 1]}" || return 1
  done
  for ((i = 0; i < ${#KEEP_APPLIED[@]}; i += 2)); do
    is_applied "${KEEP_APPLIED[i]}" "${KEEP_APPLIED[i + 1]}" || return 1
  done
  return 0
}
backward() {
  MIGRATIONS_FRESH=0
  log "migrate $* (with $FROM_IMAGE)"
  migrate_newer "$@"
}
verify() {
  local i tmp
  if dry; then
    would "check with showmigrations that the planned migrations are unapplied, and save it to $EVIDENCE_FILE"
    return 0
  fi
  [[ "$MIGRATIONS_FRESH" == 1 ]] || read_migrations
  for ((i = 0; i < ${#UNAPPLIED[@]}; i += 2)); do
    is_unapplied "${UNAPPLIED[i]}" "${UNAPPLIED[i + 1]}" ||
      die "${UNAPPLIED[i]}.${UNAPPLIED[i + 1]} is not shown as unapplied by showmigrations; not scaling down"
  done
  for ((i = 0; i < ${#KEEP_APPLIED[@]}; i += 2)); do
    is_applied "${KEEP_APPLIED[i]}" "${KEEP_APPLIED[i + 1]}" ||
      die "${KEEP_APPLIED[i]}.${KEEP_APPLIED[i + 1]} should still be applied but is not; not scaling down"
  done
  tmp=$(mktemp "$EVIDENCE_FILE.XXXXXX")
  printf '%s\n' "$SHOWMIGRATIONS" >"$tmp"
  mv -f -- "$tmp" "$EVIDENCE_FILE"
  log "verified: every planned migration is unapplied; evidence saved to $EVIDENCE_FILE"
}
# still_applied APP NAME: whether a manual step is still to be taken.
still_applied() {
  if dry; then
    return 0
  fi
  [[ "$MIGRATIONS_FRESH" == 1 ]] || read_migrations
  if is_applied "$1" "$2"; then
    return 0
  fi
  log "$1.$2 is already unapplied; its manual step was taken by an earlier run"
  return 1
}
manual_step() {
  local n=$1 text=$2 var="TAGBACK_MANUAL_$1"
  if [[ "${!var:-}" != "done" ]]; then
    if dry; then
      would "stop at MANUAL STEP $n unless $var=done: $text"
      return 0
    fi
    die "MANUAL STEP $n: $text"
  fi
  log "manual step $n marked done"
}
banner() {
  local replicas=$1 record
  printf -v record ' %q' "${RECORD_ARGS[@]}" --evidence "$(abs_path "$EVIDENCE_FILE")"
  log "================================================================"
  if dry; then
    log "DRY_RUN=1: nothing was changed. Without it, $SERVICE would end on $TO_IMAGE with $replicas replica(s)."
  else
    log "rollback done: $SERVICE runs $TO_IMAGE with $replicas replica(s)."
  fi
  log "record it (in the deploy repository; $RECORD_WHEN):"
  log "  tagback$record"
  log "  git add .tagback && git commit -m 'record the rollback of $SERVICE_NAME'"
  if dry; then
    log "state: $STATE_FILE (would hold only the replica count of this attempt, removed at the end)"
  else
    log "state: $STATE_FILE (only the replica count of this attempt; removed now that it is complete)"
  fi
  log "undo (back to $FROM_IMAGE): $UNDO_HINT"
  log "================================================================"
}
"#;

const SWARM: &str = r#"
inspect() { docker service inspect --format "$1" "$SERVICE"; }
service_id() { inspect '{{.ID}}'; }
current_image() { strip_digest "$(inspect '{{.Spec.TaskTemplate.ContainerSpec.Image}}')"; }
current_replicas() { inspect '{{if .Spec.Mode.Replicated}}{{.Spec.Mode.Replicated.Replicas}}{{end}}'; }
preconditions() {
  command -v docker >/dev/null 2>&1 || die "docker is not installed"
  docker info >/dev/null 2>&1 || die "docker is not reachable"
  docker service inspect "$SERVICE" >/dev/null 2>&1 ||
    die "service $SERVICE does not exist (set STACK=name if the stack is named differently)"
  no_job_running
}
scale() {
  if [[ "$(replicas_now)" == "$1" ]]; then
    log "$SERVICE already has $1 replicas"
    return 0
  fi
  log "scaling $SERVICE to $1"
  run docker service scale --detach=false "$SERVICE=$1"
  if dry; then SIM_REPLICAS=$1; fi
}
retag() {
  if [[ "$(image_now)" == "$TO_IMAGE" ]]; then
    log "$SERVICE already uses $TO_IMAGE"
    return 0
  fi
  log "changing the image of $SERVICE to $TO_IMAGE"
  run docker service update --detach=false --image "$TO_IMAGE" "$SERVICE"
  if dry; then SIM_IMAGE=$TO_IMAGE; fi
}
running_task() {
  local id img
  for id in $(docker ps -q --filter "label=com.docker.swarm.service.name=$SERVICE" --filter status=running); do
    img=$(docker inspect --format '{{.Config.Image}}' "$id" 2>/dev/null) || continue # gone meanwhile
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
UNDO_HINT="docker service update --image $FROM_IMAGE $SERVICE, then migrate forward with the newer code: docker exec TASK ${MANAGE[*]} migrate"

# --- one-off Swarm replicated-jobs with the service's networks, environment,
# secrets, configs, working directory, user, mounts (volumes, binds, tmpfs),
# placement and resources; anything else that cannot be copied is refused.
JOB_TIMEOUT=${TAGBACK_JOB_TIMEOUT:-1800}
JOB_SEQ=0
JOB_OPTS=()
job_state() { docker service ps --format '{{.CurrentState}}' "$1" 2>/dev/null | head -n 1 || true; }
job_ended() {
  case "$1" in Complete* | Failed* | Rejected* | Shutdown*) return 0 ;; esac
  return 1
}
# A job of an earlier run that is still running is never removed nor raced.
no_job_running() {
  local name state
  for name in $(docker service ls --filter "name=${SERVICE}_tagback_" --format '{{.Name}}'); do
    [[ "$name" == "${SERVICE}_tagback_"* ]] || continue
    state=$(job_state "$name")
    if ! job_ended "$state"; then
      die "job $name of an earlier run is still ${state:-pending}; it was not removed. Follow it (docker service logs -f $name) and re-run this script when it has ended"
    fi
    log "removing the ended job $name of an earlier run"
    run docker service rm "$name" >/dev/null
  done
}
job_options() {
  local out line kind value type src tgt ro nocopy driver nopts prop size mode spec n
  JOB_OPTS=()
  out=$(inspect '{{range .Spec.TaskTemplate.Networks}}{{println .Target}}{{end}}') || die "cannot read the networks of $SERVICE"
  while IFS= read -r line; do
    if [[ -n "$line" ]]; then JOB_OPTS+=(--network "$line"); fi
  done <<<"$out"
  out=$(inspect '{{range .Spec.TaskTemplate.ContainerSpec.Env}}{{println .}}{{end}}') || die "cannot read the environment of $SERVICE"
  while IFS= read -r line; do
    if [[ -n "$line" ]]; then JOB_OPTS+=(--env "$line"); fi
  done <<<"$out"
  out=$(inspect '{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{println .SecretName .File.Name}}{{end}}') || die "cannot read the secrets of $SERVICE"
  while read -r src tgt; do
    if [[ -n "$src" ]]; then JOB_OPTS+=(--secret "source=$src,target=$tgt"); fi
  done <<<"$out"
  out=$(inspect '{{range .Spec.TaskTemplate.ContainerSpec.Configs}}{{println .ConfigName .File.Name}}{{end}}') || die "cannot read the configs of $SERVICE"
  while read -r src tgt; do
    if [[ -n "$src" ]]; then JOB_OPTS+=(--config "source=$src,target=$tgt"); fi
  done <<<"$out"
  out=$(inspect '{{println .Spec.TaskTemplate.ContainerSpec.Dir}}{{println .Spec.TaskTemplate.ContainerSpec.User}}') || die "cannot read the working directory of $SERVICE"
  { IFS= read -r src || true; IFS= read -r tgt || true; } <<<"$out"
  if [[ -n "$src" ]]; then JOB_OPTS+=(--workdir "$src"); fi
  if [[ -n "$tgt" ]]; then JOB_OPTS+=(--user "$tgt"); fi
  out=$(inspect '{{range .Spec.TaskTemplate.ContainerSpec.Mounts}}{{.Type}}{{"\x1f"}}{{.Source}}{{"\x1f"}}{{.Target}}{{"\x1f"}}{{.ReadOnly}}{{"\x1f"}}{{with .VolumeOptions}}{{.NoCopy}}{{"\x1f"}}{{with .DriverConfig}}{{.Name}}{{"\x1f"}}{{len .Options}}{{else}}{{"\x1f"}}0{{end}}{{else}}false{{"\x1f"}}{{"\x1f"}}0{{end}}{{"\x1f"}}{{with .BindOptions}}{{.Propagation}}{{end}}{{"\x1f"}}{{with .TmpfsOptions}}{{.SizeBytes}}{{"\x1f"}}{{printf "%o" .Mode}}{{else}}0{{"\x1f"}}0{{end}}{{println}}{{end}}') ||
    die "cannot read the mounts of $SERVICE"
  while IFS=$'\x1f' read -r type src tgt ro nocopy driver nopts prop size mode; do
    [[ -n "$type" ]] || continue
    case "$src$tgt$driver$prop" in
      *,* | *\"*) die "the $type mount at $tgt ($src) has a comma or quote that --mount cannot carry; use --strategy exec" ;;
    esac
    case "$type" in
      volume)
        spec="type=volume,target=$tgt"
        if [[ -n "$src" ]]; then spec+=",source=$src"; fi
        if [[ "$nocopy" == true ]]; then spec+=",volume-nocopy"; fi
        if [[ -n "$driver" ]]; then spec+=",volume-driver=$driver"; fi
        if [[ "$nopts" != 0 ]]; then
          die "the volume mount at $tgt has volume driver options, which a job cannot copy; use --strategy exec"
        fi
        ;;
      bind)
        spec="type=bind,source=$src,target=$tgt"
        if [[ -n "$prop" ]]; then spec+=",bind-propagation=$prop"; fi
        ;;
      tmpfs)
        spec="type=tmpfs,target=$tgt"
        if [[ "$size" != 0 ]]; then spec+=",tmpfs-size=$size"; fi
        if [[ "$mode" != 0 ]]; then spec+=",tmpfs-mode=$mode"; fi
        ;;
      *) die "the $type mount at $tgt cannot be copied into a job; use --strategy exec" ;;
    esac
    if [[ "$ro" == true ]]; then spec+=",readonly"; fi
    JOB_OPTS+=(--mount "$spec")
  done <<<"$out"
  out=$(inspect '{{with .Spec.TaskTemplate.Placement}}{{range .Constraints}}{{println "constraint" .}}{{end}}{{range .Preferences}}{{with .Spread}}{{println "spread" .SpreadDescriptor}}{{end}}{{end}}{{end}}') ||
    die "cannot read the placement of $SERVICE"
  while IFS= read -r line; do
    kind=${line%% *}
    value=${line#* }
    case "$kind" in
      constraint) JOB_OPTS+=(--constraint "$value") ;;
      spread) JOB_OPTS+=(--placement-pref "spread=$value") ;;
    esac
  done <<<"$out"
  out=$(inspect '{{with .Spec.TaskTemplate.Resources}}{{with .Limits}}{{println "limit-cpu" .NanoCPUs}}{{println "limit-memory" .MemoryBytes}}{{println "limit-pids" .Pids}}{{end}}{{with .Reservations}}{{println "reserve-cpu" .NanoCPUs}}{{println "reserve-memory" .MemoryBytes}}{{println "generic" (len .GenericResources)}}{{end}}{{end}}') ||
    die "cannot read the resources of $SERVICE"
  while read -r kind n; do
    [[ -n "$kind" && "$n" != 0 ]] || continue
    case "$kind" in
      *-cpu) JOB_OPTS+=("--$kind" "$((n / 1000000000)).$(printf '%09d' $((n % 1000000000)))") ;;
      generic) die "$SERVICE reserves generic resources, which a job cannot copy; use --strategy exec" ;;
      *) JOB_OPTS+=("--$kind" "$n") ;;
    esac
  done <<<"$out"
}
# job IMAGE ARGS...: run manage.py ARGS in a one-off job; its output on stdout.
job() {
  local image=$1 name state deadline next error
  shift
  JOB_SEQ=$((JOB_SEQ + 1))
  # Unique also when called inside $(...) (a subshell: JOB_SEQ does not carry back).
  name="${SERVICE}_tagback_${FINGERPRINT:0:8}_${BASHPID}_${JOB_SEQ}"
  job_options
  if dry; then
    run docker service create --quiet --detach --mode replicated-job --restart-condition none \
      --name "$name" "${JOB_OPTS[@]}" "$image" "${MANAGE[@]}" "$@"
    return 0
  fi
  docker service create --quiet --detach --mode replicated-job --restart-condition none \
    --name "$name" "${JOB_OPTS[@]}" "$image" "${MANAGE[@]}" "$@" >/dev/null ||
    die "could not create the job $name (docker's message is above)"
  log "job $name: manage.py $* in $image (waiting up to ${JOB_TIMEOUT}s; TAGBACK_JOB_TIMEOUT=SECONDS changes it)"
  deadline=$((SECONDS + JOB_TIMEOUT))
  next=$((SECONDS + 10))
  while :; do
    state=$(job_state "$name")
    if job_ended "$state"; then break; fi
    if ((SECONDS >= deadline)); then
      die "job $name is still ${state:-pending} after ${JOB_TIMEOUT}s; it was NOT removed (a migration may still be running). Follow it with: docker service logs -f $name; when it has ended, re-run this script (it reads the database again first)"
    fi
    if ((SECONDS >= next)); then
      log "job $name: ${state:-pending}; $((deadline - SECONDS))s left"
      next=$((SECONDS + 10))
    fi
    sleep 1
  done
  if [[ "$state" != Complete* ]]; then
    error=$(docker service ps --no-trunc --format '{{.Error}}' "$name" 2>/dev/null | head -n 1 || true)
    log "job $name (manage.py $*) ended as: $state${error:+ ($error)}; its output:"
    docker service logs --raw "$name" >&2 2>&1 || true
    docker service rm "$name" >/dev/null 2>&1 || true
    die "job $name (manage.py $*) failed in $image; its output is above"
  fi
  docker service logs --raw "$name" || die "could not read the output of the job $name; it was not removed"
  docker service rm "$name" >/dev/null || die "could not remove the ended job $name"
}
"#;

const EXEC: &str = r#"
read_is_passive() { running_task "$FROM_IMAGE" >/dev/null; }
# With a task of the newer image: docker exec into it. At 0 replicas (a run
# stopped after the scale-down) only reading is needed: a one-off job does it.
manage_newer() {
  local cid
  if cid=$(running_task "$FROM_IMAGE"); then
    docker exec "$cid" "${MANAGE[@]}" "$@"
  elif [[ "$(replicas_now)" == 0 ]]; then
    log "$SERVICE is at 0 replicas: reading with a one-off job of $FROM_IMAGE"
    job "$FROM_IMAGE" "$@"
  else
    die "no running task of $SERVICE with $FROM_IMAGE on this node; run this script on a node that runs one, or use --strategy job"
  fi
}
migrate_newer() {
  local cid
  if ! cid=$(running_task "$FROM_IMAGE"); then
    if dry; then
      would "run manage.py migrate $* --noinput in a task of $FROM_IMAGE"
      return 0
    fi
    die "no running task of $SERVICE with $FROM_IMAGE on this node; run this script on a node that runs one, or use --strategy job"
  fi
  run docker exec "$cid" "${MANAGE[@]}" migrate "$@" --noinput
}
migrate_older() {
  local cid
  if dry; then
    would "run manage.py migrate $* --noinput in a task of $TO_IMAGE"
    return 0
  fi
  cid=$(running_task "$TO_IMAGE") || die "no running task of $SERVICE with $TO_IMAGE on this node"
  docker exec "$cid" "${MANAGE[@]}" migrate "$@" --noinput
}
"#;

const JOB: &str = r#"
read_is_passive() { return 1; }
manage_newer() { job "$FROM_IMAGE" "$@"; }
migrate_newer() { job "$FROM_IMAGE" migrate "$@" --noinput; }
migrate_older() { job "$TO_IMAGE" migrate "$@" --noinput; }
"#;

const COMPOSE: &str = r#"
COMPOSE_BIN=()
OVERRIDE=""
cleanup_override() { if [[ -n "$OVERRIDE" ]]; then rm -f -- "$OVERRIDE"; fi; }
trap cleanup_override EXIT
# The compose files resolve from PROJECT_DIR, whatever the current directory.
COMPOSE_ARGS=()
compose_args() {
  local f
  COMPOSE_ARGS=(--project-directory "$PROJECT_DIR")
  if [[ -n "$STACK" ]]; then COMPOSE_ARGS+=(-p "$STACK"); fi
  for f in "${COMPOSE_FILES[@]}"; do
    if [[ "$f" == /* ]]; then COMPOSE_ARGS+=(-f "$f"); else COMPOSE_ARGS+=(-f "$PROJECT_DIR/$f"); fi
  done
  if [[ -n "$OVERRIDE" ]]; then COMPOSE_ARGS+=(-f "$OVERRIDE"); fi
}
compose() {
  compose_args
  "${COMPOSE_BIN[@]}" "${COMPOSE_ARGS[@]}" "$@"
}
# run_compose ARGS...: what changes the project, shown in full by DRY_RUN=1.
run_compose() {
  compose_args
  run "${COMPOSE_BIN[@]}" "${COMPOSE_ARGS[@]}" "$@"
}
# with_image IMAGE CMD...: CMD with the service's image replaced by IMAGE.
with_image() {
  local image=$1
  shift
  cleanup_override
  OVERRIDE=$(mktemp "${TMPDIR:-/tmp}/tagback-override.XXXXXX")
  printf 'services:\n  "%s":\n    image: "%s"\n' "$SERVICE_NAME" "$image" >"$OVERRIDE"
  "$@"
  cleanup_override
  OVERRIDE=""
}
preconditions() {
  local f out
  command -v docker >/dev/null 2>&1 || die "docker is not installed"
  docker info >/dev/null 2>&1 || die "docker is not reachable"
  if docker compose version >/dev/null 2>&1; then
    COMPOSE_BIN=(docker compose)
  elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE_BIN=(docker-compose)
  else
    die "neither docker compose nor docker-compose is installed"
  fi
  [[ -d "$PROJECT_DIR" ]] ||
    die "the compose project directory $PROJECT_DIR does not exist; set PROJECT_DIR to the directory holding ${COMPOSE_FILES[*]}"
  for f in "${COMPOSE_FILES[@]}"; do
    [[ "$f" == /* ]] || f="$PROJECT_DIR/$f"
    [[ -f "$f" ]] || die "compose file $f does not exist; set PROJECT_DIR to the directory holding ${COMPOSE_FILES[*]}"
  done
  out=$(compose config --services 2>&1) || die "${COMPOSE_BIN[*]} config failed in $PROJECT_DIR: $out"
  grep -Fxq -- "$SERVICE_NAME" <<<"$out" ||
    die "service $SERVICE_NAME is not in the compose project of ${COMPOSE_FILES[*]} in $PROJECT_DIR (it has: ${out//$'\n'/, })"
}
service_id() { printf 'compose:%s/%s\n' "$STACK" "$SERVICE_NAME"; }
containers() { compose ps -a -q "$SERVICE_NAME"; }
running_containers() {
  local id
  for id in $(containers); do
    if [[ "$(docker inspect --format '{{.State.Running}}' "$id")" == true ]]; then printf '%s\n' "$id"; fi
  done
}
current_replicas() { running_containers | grep -c . || true; }
current_image() {
  local id
  id=$(running_containers | head -n 1 || true)
  [[ -n "$id" ]] || id=$(containers | head -n 1 || true)
  if [[ -n "$id" ]]; then strip_digest "$(docker inspect --format '{{.Config.Image}}' "$id")"; fi
}
running_task() {
  local id
  for id in $(running_containers); do
    if [[ "$(strip_digest "$(docker inspect --format '{{.Config.Image}}' "$id")")" == "$1" ]]; then
      printf '%s\n' "$id"
      return 0
    fi
  done
  return 1
}
read_is_passive() { running_task "$FROM_IMAGE" >/dev/null; }
manage_newer() {
  local cid
  if cid=$(running_task "$FROM_IMAGE"); then
    docker exec "$cid" "${MANAGE[@]}" "$@"
  else
    log "no running container of $SERVICE_NAME with $FROM_IMAGE: reading with a one-off container of it"
    with_image "$FROM_IMAGE" compose run --rm --no-deps -T "$SERVICE_NAME" "${MANAGE[@]}" "$@"
  fi
}
migrate_newer() {
  local cid
  if ! cid=$(running_task "$FROM_IMAGE"); then
    if dry; then
      would "run manage.py migrate $* --noinput in a container of $FROM_IMAGE"
      return 0
    fi
    die "no running container of $SERVICE_NAME with $FROM_IMAGE"
  fi
  run docker exec "$cid" "${MANAGE[@]}" migrate "$@" --noinput
}
migrate_older() {
  local cid
  if dry; then
    would "run manage.py migrate $* --noinput in a container of $TO_IMAGE"
    return 0
  fi
  cid=$(running_task "$TO_IMAGE") || die "no running container of $SERVICE_NAME with $TO_IMAGE"
  docker exec "$cid" "${MANAGE[@]}" migrate "$@" --noinput
}
scale() {
  if [[ "$(replicas_now)" == "$1" && ("$1" == 0 || "$(image_now)" == "$TO_IMAGE") ]]; then
    log "$SERVICE_NAME already has $1 running container(s)"
    return 0
  fi
  log "scaling $SERVICE_NAME to $1"
  if [[ "$1" == 0 ]]; then
    run_compose stop "$SERVICE_NAME"
  else
    with_image "$TO_IMAGE" run_compose up -d --no-deps --scale "$SERVICE_NAME=$1" "$SERVICE_NAME"
  fi
  if dry; then SIM_REPLICAS=$1; fi
}
retag() {
  log "the containers of $SERVICE_NAME are recreated with $TO_IMAGE when they start again"
  if dry; then SIM_IMAGE=$TO_IMAGE; fi
}
report() { compose ps "$SERVICE_NAME" >&2 || true; }
UNDO_HINT="put $FROM_IMAGE back in ${COMPOSE_FILES[*]}, run ${COMPOSE_BIN[*]:-docker compose} up -d $SERVICE_NAME in $PROJECT_DIR, then migrate forward with the newer code: ${COMPOSE_BIN[*]:-docker compose} exec $SERVICE_NAME ${MANAGE[*]} migrate"
"#;

/// Only in scripts with an executor step: `backward_exactly` runs the step's
/// Python (`$UNAPPLY_EXACTLY`) with `manage.py shell -c` in the newer image.
const EXACTLY: &str = r#"
backward_exactly() {
  MIGRATIONS_FRESH=0
  log "unapplying exactly $((${#UNAPPLIED[@]} / 2)) migration(s) with the MigrationExecutor of Django (with $FROM_IMAGE): no per-app migrate target is exact here"
  shell_newer -c "$UNAPPLY_EXACTLY"
}
"#;

const EXACTLY_EXEC: &str = r#"
shell_newer() {
  local cid
  if ! cid=$(running_task "$FROM_IMAGE"); then
    if dry; then
      would "run manage.py shell -c \"\$UNAPPLY_EXACTLY\" in a task of $FROM_IMAGE"
      return 0
    fi
    die "no running task of $SERVICE with $FROM_IMAGE on this node; run this script on a node that runs one, or use --strategy job"
  fi
  run docker exec "$cid" "${MANAGE[@]}" shell "$@"
}
"#;

const EXACTLY_JOB: &str = r#"
shell_newer() { job "$FROM_IMAGE" shell "$@"; }
"#;

const EXACTLY_COMPOSE: &str = r#"
shell_newer() {
  local cid
  if ! cid=$(running_task "$FROM_IMAGE"); then
    if dry; then
      would "run manage.py shell -c \"\$UNAPPLY_EXACTLY\" in a container of $FROM_IMAGE"
      return 0
    fi
    die "no running container of $SERVICE_NAME with $FROM_IMAGE"
  fi
  run docker exec "$cid" "${MANAGE[@]}" shell "$@"
}
"#;

const MAIN: &str = r#"
main() {
  preconditions
  local image now replicas id
  id=$(service_id)
  state_load "$id"
  image=$(current_image)
  now=$(current_replicas)
  if [[ -n "$now" && "$now" != 0 ]]; then
    # The live service tells the replica count; a new attempt starts here.
    if [[ "$image" == "$FROM_IMAGE" ]]; then
      if [[ -n "$STATE_REPLICAS" && "$STATE_REPLICAS" != "$now" ]]; then
        log "$SERVICE runs $FROM_IMAGE with $now replica(s): a new attempt; the earlier one's count ($STATE_REPLICAS) is not used"
      fi
      state_save "$now" "$id"
    fi
    replicas=$now
  elif [[ -n "$STATE_REPLICAS" ]]; then
    replicas=$STATE_REPLICAS
  elif [[ -n "$DEFAULT_REPLICAS" ]]; then
    replicas=$DEFAULT_REPLICAS
  elif [[ -z "${REPLICAS:-}" ]]; then
    die "$SERVICE has 0 replicas and the original count is unknown; set REPLICAS=N"
  fi
  replicas=${REPLICAS:-$replicas}
  [[ "$replicas" =~ ^[0-9]+$ ]] || die "REPLICAS must be a number, not $replicas"
  log "service $SERVICE: image $image, ${now:-0} replica(s); will restore $replicas"
  if [[ "$image" == "$FROM_IMAGE" ]]; then
    log "reading the applied migrations with showmigrations in $FROM_IMAGE"
    if ! probe; then
      backward_migrations
    elif rolled_back; then
      log "showmigrations: every planned migration is already unapplied; no backward migration to run"
    else
      if [[ "${now:-0}" == 0 && "$STRATEGY" != job ]]; then
        die "$SERVICE has 0 replicas but the planned migrations are still applied; scale it to $replicas with $FROM_IMAGE and re-run"
      fi
      backward_migrations
    fi
    verify
    scale 0
    retag
  elif [[ "$image" == "$TO_IMAGE" ]]; then
    log "$SERVICE already runs $TO_IMAGE: the backward migrations ran before the retag; finishing"
  else
    die "$SERVICE runs ${image:-nothing}; expected $FROM_IMAGE (or $TO_IMAGE after the rollback). Refusing to change anything"
  fi
  scale "$replicas"
  forward_old_only_apps
  report
  state_done
  banner "$replicas"
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
    for line in HEADER_STEPS {
        let _ = writeln!(w, "#{}{line}", if line.is_empty() { "" } else { " " });
    }
    if s.strategy == Strategy::Job {
        let _ = writeln!(
            w,
            "# TAGBACK_JOB_TIMEOUT=SECONDS (default 1800) bounds the wait for each job; a job still running is never removed."
        );
    }
    if s.strategy == Strategy::Compose {
        let _ = writeln!(
            w,
            "# PROJECT_DIR=DIR: where the compose files are (default: where they were when this was generated)."
        );
    }
    let _ = writeln!(
        w,
        "# Generated by {} (plan {}).",
        comment(&s.generated_by),
        &s.fingerprint[..s.fingerprint.len().min(12)]
    );
    let _ = writeln!(w, "set -euo pipefail");
    let _ = writeln!(w, "shopt -s inherit_errexit");
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
        .map(|k| k.app.as_str())
        .chain(s.keep_applied.iter().map(|k| k.app.as_str()))
        .collect();
    apps.sort_unstable();
    apps.dedup();
    let _ = writeln!(w, "APPS=({})", words(&apps));
    let pairs = |v: &[MigrationKey]| {
        v.iter()
            .map(|k| format!("  {} {}\n", bash(&k.app), bash(&k.name)))
            .collect::<String>()
    };
    let _ = writeln!(w, "UNAPPLIED=(\n{})", pairs(&s.unapplied));
    let _ = writeln!(w, "KEEP_APPLIED=(\n{})", pairs(&s.keep_applied));
    let _ = writeln!(w, "POST_APPS=({})", words(&s.post_apps));
    let _ = writeln!(w, "RECORD_ARGS=({})", words(&s.record_args));
    let when = if s.record_args.iter().any(|a| a == "--to") {
        "the revisions are those this script was generated from"
    } else {
        "with the stack file moved back in the working tree, not yet committed"
    };
    let _ = writeln!(w, "RECORD_WHEN={}", literal(when));
    if s.strategy == Strategy::Compose {
        let _ = writeln!(w, "COMPOSE_FILES=({})", words(&s.compose_files));
        let _ = writeln!(w, "PROJECT_DIR=${{PROJECT_DIR:-{}}}", bash(&s.project_dir));
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
    let exactly = s.actions.iter().find_map(|a| match a {
        Action::UnapplyExactly { code, .. } => Some(code),
        _ => None,
    });
    if let Some(code) = exactly {
        let _ = writeln!(
            out,
            "\n# The executor step: Python run with manage.py shell -c in the newer image."
        );
        let _ = writeln!(out, "UNAPPLY_EXACTLY={}", multiline(code));
        out.push_str(EXACTLY);
        out.push_str(match s.strategy {
            Strategy::Exec => EXACTLY_EXEC,
            Strategy::Job => EXACTLY_JOB,
            Strategy::Compose => EXACTLY_COMPOSE,
        });
    }
    out.push_str("\nbackward_migrations() {\n");
    if s.actions.is_empty() {
        out.push_str("  log \"no backward migrations to run\"\n");
    }
    for a in &s.actions {
        match a {
            Action::Migrate { app, target } => {
                let _ = writeln!(out, "  backward {} {}", bash(app), bash(target));
            }
            Action::UnapplyExactly { order, .. } => {
                let _ = writeln!(
                    out,
                    "  # exactly, children before parents: {}",
                    comment(
                        &order
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                );
                let _ = writeln!(out, "  backward_exactly");
            }
            Action::Manual {
                number,
                app,
                migration,
                parent,
                instructions,
            } => {
                let _ = writeln!(out, "  # MANUAL STEP {number}");
                let _ = writeln!(
                    out,
                    "  if still_applied {} {}; then",
                    bash(app),
                    bash(migration)
                );
                let _ = writeln!(out, "    backward {} {}", bash(app), bash(migration));
                let _ = writeln!(out, "    manual_step {number} {}", bash(instructions));
                let _ = writeln!(out, "    backward {} {} --fake", bash(app), bash(parent));
                let _ = writeln!(out, "  fi");
            }
        }
    }
    out.push_str("}\n");
    out.push_str("\nforward_old_only_apps() {\n  local app\n  for app in \"${POST_APPS[@]}\"; do\n    log \"migrating $app forward with the older code\"\n    migrate_older \"$app\"\n  done\n}\n");
    out.push_str(MAIN);
    out
}

const HEADER_STEPS: &[&str] = &[
    "",
    "Steps: preconditions (docker, service, running image) -> read the applied",
    "migrations with showmigrations in the newer image -> the backward migrations",
    "still needed -> verify with showmigrations (saved as evidence for tagback record)",
    "-> scale to 0 -> set the image -> scale back up -> closing banner.",
    "Every step decides from the live state (the service, showmigrations), never",
    "from a file: re-running after a failure, or after the service was upgraded",
    "again, does what is still needed. The replica count to restore is kept for one",
    "attempt in $TAGBACK_STATE_DIR (default $XDG_STATE_HOME/tagback, mode 0700).",
    "DRY_RUN=1 says what every step would do and changes nothing.",
    "STACK=name overrides the stack/project name; REPLICAS=N the replica count.",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn model(strategy: Strategy, actions: Vec<Action>) -> RollbackScript {
        RollbackScript {
            service: "web".into(),
            stack: "shop".into(),
            from_image: "registry.example.com:5000/shop:2".into(),
            to_image: "registry.example.com:5000/shop:1".into(),
            strategy,
            manage: vec!["python3".into(), "manage.py".into()],
            default_replicas: Some(2),
            compose_files: vec!["compose.yml".into()],
            project_dir: "/srv/deploy".into(),
            record_args: [
                "record",
                "--from",
                "0123456789abcdef0123456789abcdef01234567",
                "--to",
                "89abcdef0123456789abcdef0123456789abcdef",
                "--service",
                "web",
            ]
            .map(String::from)
            .to_vec(),
            actions,
            unapplied: vec![
                MigrationKey::new("shop", "0004_order_code"),
                MigrationKey::new("shop", "0003_order_badge"),
            ],
            keep_applied: vec![MigrationKey::new("shop", "0002_product_sku")],
            post_apps: vec![],
            summary: vec![
                "1. migrate shop 0002_product_sku  (unapplies 0004_order_code, 0003_order_badge)"
                    .into(),
            ],
            fingerprint: "0123456789abcdef0123456789abcdef".into(),
            generated_by: "tagback (test) from revisions v2 -> v1".into(),
        }
    }

    fn migrate() -> Vec<Action> {
        vec![Action::Migrate {
            app: "shop".into(),
            target: "0002_product_sku".into(),
        }]
    }

    fn exactly() -> Vec<Action> {
        let order = vec![
            MigrationKey::new("shop", "0004_order_code"),
            MigrationKey::new("shop", "0003_order_badge"),
        ];
        let keep = vec![MigrationKey::new("shop", "0002_product_sku")];
        vec![Action::UnapplyExactly {
            code: crate::plan::executor::python(&order, &keep),
            order,
        }]
    }

    fn manual() -> Vec<Action> {
        vec![
            Action::Manual {
                number: 1,
                app: "shop".into(),
                migration: "0004_order_code".into(),
                parent: "0003_order_badge".into(),
                instructions: "undo by hand what shop.0004_order_code did (RunPython at shop/migrations/0004_order_code.py:12); then re-run with TAGBACK_MANUAL_1=done".into(),
            },
            Action::Migrate {
                app: "shop".into(),
                target: "0002_product_sku".into(),
            },
        ]
    }

    #[allow(clippy::print_stderr)] // says that a check was skipped
    fn shellcheck(name: &str, text: &str) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let n = std::process::Command::new("bash")
            .arg("-n")
            .arg(&path)
            .output()
            .unwrap();
        assert!(n.status.success(), "{}", String::from_utf8_lossy(&n.stderr));
        match std::process::Command::new("shellcheck").arg(&path).output() {
            Ok(sc) => assert!(
                sc.status.success(),
                "{name}: {}",
                String::from_utf8_lossy(&sc.stdout)
            ),
            Err(_) if std::env::var("TAGBACK_REQUIRE_SHELLCHECK").is_err() => {
                eprintln!("shellcheck not installed; skipped")
            }
            Err(e) => panic!("shellcheck required: {e}"),
        }
    }

    #[test]
    fn every_strategy_renders_shellcheck_clean_bash_as_snapshotted() {
        for (name, strategy, actions) in [
            ("exec", Strategy::Exec, migrate()),
            ("job", Strategy::Job, migrate()),
            ("compose", Strategy::Compose, migrate()),
            ("exec_manual_steps", Strategy::Exec, manual()),
            ("exec_exactly", Strategy::Exec, exactly()),
            ("job_exactly", Strategy::Job, exactly()),
            ("compose_exactly", Strategy::Compose, exactly()),
        ] {
            let text = render(&model(strategy, actions));
            shellcheck(&format!("{name}.sh"), &text);
            insta::assert_snapshot!(format!("rollback_{name}"), text);
        }
    }

    /// Run the script's own state functions (the real bash of `COMMON`) with `body`.
    fn state_shell(dir: &std::path::Path, env: &[(&str, &str)], body: &str) -> (i32, String) {
        let text = format!(
            "set -euo pipefail\nshopt -s inherit_errexit\nSERVICE=shop_web\nSERVICE_NAME=web\nFINGERPRINT=0123456789abcdef\nFROM_IMAGE=shop:2\nTO_IMAGE=shop:1\nDRY_RUN=0\n{COMMON}\n{body}\n"
        );
        let mut c = std::process::Command::new("bash");
        c.arg("-c").arg(text).current_dir(dir);
        c.env_remove("TAGBACK_STATE_DIR")
            .env_remove("XDG_STATE_HOME");
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    #[test]
    fn the_state_is_one_attempt_in_a_private_directory_and_decides_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let xdg = tmp.path().join("xdg");
        let xdg_s = xdg.to_str().unwrap();
        let env = [("XDG_STATE_HOME", xdg_s)];
        let file = xdg.join("tagback/shop_web-0123456789ab.state");
        // Saved under $XDG_STATE_HOME/tagback, mode 0700, and read back for the same service id.
        let (code, out) = state_shell(
            tmp.path(),
            &env,
            "state_save 3 id1; STATE_REPLICAS=; state_load id1; echo \"replicas=$STATE_REPLICAS\"",
        );
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("replicas=3"), "{out}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(xdg.join("tagback"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        // Another instance of the service (re-created): its count is not used.
        let (code, out) = state_shell(
            tmp.path(),
            &env,
            "state_load id2; echo \"replicas=[$STATE_REPLICAS]\"",
        );
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains("replicas=[]") && out.contains("belongs to another instance"),
            "{out}"
        );
        // Anything else in the file is reported and ignored.
        std::fs::write(
            &file,
            "service_id=id1\nverified=1\nreplicas=x\nreplicas=2\n",
        )
        .unwrap();
        let (code, out) = state_shell(
            tmp.path(),
            &env,
            "state_load id1; echo \"replicas=$STATE_REPLICAS\"",
        );
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains("ignored in") && out.contains("verified=1"),
            "{out}"
        );
        assert!(
            out.contains("not a replica count") && out.contains("replicas=2"),
            "{out}"
        );
        // Completing the attempt removes the file.
        let (code, out) = state_shell(tmp.path(), &env, "state_done");
        assert_eq!(code, 0, "{out}");
        assert!(!file.exists());
        // A symlinked file or directory is refused, and nothing is written through it.
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        std::os::unix::fs::symlink(&victim, &file).unwrap();
        let (code, out) = state_shell(tmp.path(), &env, "state_save 2 id1");
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("is a symbolic link; refusing"), "{out}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        let linked = tmp.path().join("linked");
        std::os::unix::fs::symlink(tmp.path(), &linked).unwrap();
        let (code, out) = state_shell(
            tmp.path(),
            &[("TAGBACK_STATE_DIR", linked.to_str().unwrap())],
            "state_load id1",
        );
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains("state directory") && out.contains("symbolic link"),
            "{out}"
        );
        // A directory of another user is refused (needs root to set up).
        let other = tmp.path().join("other");
        std::fs::create_dir(&other).unwrap();
        let chown = std::process::Command::new("chown")
            .arg("65534")
            .arg(&other)
            .output();
        if chown.is_ok_and(|o| o.status.success()) {
            let (code, out) = state_shell(
                tmp.path(),
                &[("TAGBACK_STATE_DIR", other.to_str().unwrap())],
                "state_save 2 id1",
            );
            assert_eq!(code, 1, "{out}");
            assert!(out.contains("belongs to another user"), "{out}");
        }
        // DRY_RUN writes nothing.
        let fresh = tmp.path().join("fresh");
        let (code, out) = state_shell(
            tmp.path(),
            &[("TAGBACK_STATE_DIR", fresh.to_str().unwrap()), ("DRY", "1")],
            "DRY_RUN=1; state_save 2 id1",
        );
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains("DRY_RUN: would remember") && !fresh.exists(),
            "{out}"
        );
    }

    #[test]
    fn the_state_never_decides_whether_migrations_are_needed() {
        let text = render(&model(Strategy::Exec, migrate()));
        // Only the replica count is read back; a planted `verified=1` is reported and ignored.
        assert!(text.contains("only service_id and replicas are read"));
        assert!(!text.contains("verified=1") && !text.contains("state_get verified"));
        assert!(text.contains("elif rolled_back; then"));
        assert!(!text.contains("/tmp/tagback-rollback"));
    }
}
