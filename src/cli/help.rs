//! Long help shown after each subcommand's options (`--help`): examples to
//! paste and the exit statuses. Kept apart so `mod.rs` stays the argument
//! model.

/// The top-level command.
pub(super) const TOP: &str = "\
Examples:
  tagback check                              # HEAD against the working tree
  tagback check --from origin/main --to HEAD --format markdown
  tagback script --from origin/main --to HEAD --service web -o rollback.sh
  tagback gate --from \"$BEFORE\" --to \"$AFTER\"  # in CI

Exit status:
  0  safe / success
  1  unsafe: blocked, refused, or a rollback would be impossible
  2  error or bad input (one sentence naming the file, revision and line)

Environment:
  NO_COLOR          no colour when set (unless --color always)
  CLICOLOR_FORCE    colour even when stdout is not a terminal (--color auto)
  TAGBACK_CONFIG    the .tagback.yml to read instead of the repositories' own (--config)
  TAGBACK_NO_CACHE  1: do not read or write the parse cache in .git/tagback/cache
  PRE_COMMIT_FROM_REF, PRE_COMMIT_TO_REF
                    the range `hook pre-push` compares (set by the pre-commit framework)
  USER              who `record` names in a record
  STACK             read by the generated rollback scripts: the stack or project name";

/// `tagback plan`.
pub(super) const PLAN: &str = "\
Examples:
  tagback plan --repo . --from v2 --to v1
  tagback plan --repo ../shop-app --from v2.1.0 --to v2.0.3 --format json

Exit status:
  0  the plan was computed (also when it is empty or has irreversible steps)
  2  bad input";

/// `tagback check`.
pub(super) const CHECK: &str = "\
Examples:
  tagback check                                # HEAD against the working tree
  tagback check --from origin/main --to HEAD   # what a merge would deploy
  tagback check -f stack.yml -f stack.prod.yml --format json

Exit status:
  0  nothing unsafe
  1  a service needs backward migrations that are not recorded, has
     irreversible ones, or moves in a way tagback cannot judge
  2  bad input";

/// `tagback script`.
pub(super) const SCRIPT: &str = "\
Examples:
  tagback script --from origin/main --to HEAD --service web -o rollback.sh
  DRY_RUN=1 ./rollback.sh                      # print every command, change nothing
  tagback script --repo . --from v2 --to v1 --service shop_web --image shop:1
  tagback script --from HEAD~1 --to HEAD --release-artifact rollback/

Exit status:
  0  the script (or release artifact) was written
  1  the rollback is impossible (irreversible operations; see --allow-manual-steps)
  2  bad input";

/// `tagback record`.
pub(super) const RECORD: &str = "\
Examples:
  tagback record --service web --evidence tagback-evidence-shop_web.txt
  tagback record --service web --database-url postgres://user@db:5432/shop
  git add .tagback && git commit -m \"record the rollback of web\"

Exit status:
  0  recorded
  1  refused: a planned migration is still applied, or an older one is missing
  2  bad input";

/// `tagback gate`.
pub(super) const GATE: &str = "\
Examples:
  tagback gate --from origin/main --to HEAD
  tagback gate --from \"$CI_COMMIT_BEFORE_SHA\" --to \"$CI_COMMIT_SHA\" --format markdown

Exit status:
  0  every downgrade with backward migrations is recorded
  1  a downgrade's backward migrations are not recorded (or the record no
     longer matches the plan), or a change cannot be judged
  2  bad input";

/// `tagback hook`.
pub(super) const HOOK: &str = "\
Examples:
  tagback install                  # installs the hooks that call these
  echo \"$LOCAL_REF $LOCAL_SHA $REMOTE_REF $REMOTE_SHA\" | tagback hook pre-push origin

Exit status:
  0  nothing unsafe
  1  blocked
  2  bad input";

/// `tagback install`.
pub(super) const INSTALL: &str = "\
Examples:
  tagback install                  # pre-push, pre-commit, pre-merge-commit
  tagback install --uninstall

Exit status:
  0  installed (or removed)
  2  bad input (not a repository, a hook that cannot be written)";

/// `tagback demo`.
pub(super) const DEMO: &str = "\
Examples:
  tagback demo
  tagback demo --keep /tmp/tagback-demo      # keep the example repository

Exit status:
  0  the demo ran
  2  it could not run";

/// `tagback init`.
pub(super) const INIT: &str = "\
Examples:
  tagback init                     # writes .tagback.yml in the current repository
  tagback init --stdout            # print it instead
  tagback init --force             # replace an existing .tagback.yml

Exit status:
  0  written
  2  .tagback.yml already exists (without --force), or bad input";

/// `tagback completions`.
pub(super) const COMPLETIONS: &str = "\
Examples:
  tagback completions bash > ~/.local/share/bash-completion/completions/tagback
  tagback completions zsh > \"${fpath[1]}/_tagback\"
  tagback completions fish > ~/.config/fish/completions/tagback.fish

Exit status:
  0  printed
  2  bad input";

/// `tagback schema`.
pub(super) const SCHEMA: &str = "\
Examples:
  tagback schema plan > plan.schema.json
  tagback schema config               # for editors: the schema of .tagback.yml

Exit status:
  0  printed
  2  bad input";
