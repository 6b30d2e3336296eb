//! The rollback script as a model (what to run, in which order) built from a
//! plan, validated, then rendered to bash by `render`. Quoting happens only
//! in `quote`.

pub mod quote;
pub mod render;

use crate::config::Strategy;
use crate::django::MigrationKey;
use crate::error::{Error, Result};
use crate::plan::{Plan, Step};
use crate::stack::ImageRef;

/// One backward command of the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `manage.py migrate APP TARGET --noinput`.
    Migrate {
        /// App label.
        app: String,
        /// Target migration or `zero`.
        target: String,
    },
    /// Unapply exactly `order` (children before parents) with Django's
    /// `MigrationExecutor` through `manage.py shell -c CODE`, where no per-app
    /// `migrate` is exact; the code re-checks the order when it runs.
    UnapplyExactly {
        /// `(app, migration)` in the order they are unapplied.
        order: Vec<MigrationKey>,
        /// The Python code (`plan::executor::python`).
        code: String,
    },
    /// A manual step in place of an irreversible migration, taken only while
    /// that migration is applied: migrate down to it, stop unless
    /// `TAGBACK_MANUAL_<n>=done`, then `--fake` it unapplied (to `parent`).
    Manual {
        /// Step number (1-based).
        number: usize,
        /// App of the irreversible migration.
        app: String,
        /// The irreversible migration.
        migration: String,
        /// Its same-app parent (or `zero`): the `--fake` target.
        parent: String,
        /// What the person must do.
        instructions: String,
    },
}

/// Everything the rendered script needs.
#[derive(Debug, Clone)]
pub struct RollbackScript {
    /// Service name as in the stack file.
    pub service: String,
    /// Default stack (Swarm) or project (Compose) name; `STACK` overrides.
    pub stack: String,
    /// The image running now.
    pub from_image: String,
    /// The image to go back to.
    pub to_image: String,
    /// How manage.py is reached.
    pub strategy: Strategy,
    /// The command running manage.py in the container, as words.
    pub manage: Vec<String>,
    /// Replica count to restore when the service is found at 0.
    pub default_replicas: Option<u64>,
    /// Compose files (compose strategy).
    pub compose_files: Vec<String>,
    /// Directory the compose files are relative to (compose strategy).
    pub project_dir: String,
    /// `tagback record` arguments (without `--evidence FILE`) for the closing banner.
    pub record_args: Vec<String>,
    /// Backward actions in order.
    pub actions: Vec<Action>,
    /// `(app, migration)` that must be unapplied afterwards.
    pub unapplied: Vec<MigrationKey>,
    /// `(app, migration)` that must remain applied (the targets).
    pub keep_applied: Vec<MigrationKey>,
    /// Apps to migrate forward with the older code after the retag.
    pub post_apps: Vec<String>,
    /// Header lines describing the plan.
    pub summary: Vec<String>,
    /// Plan fingerprint.
    pub fingerprint: String,
    /// Provenance: tagback version, revisions.
    pub generated_by: String,
}

/// Options of `tagback script`.
#[derive(Debug, Clone)]
pub struct ScriptOptions {
    /// Service name.
    pub service: String,
    /// Stack name default.
    pub stack: String,
    /// Image running now.
    pub from_image: ImageRef,
    /// Image to go back to.
    pub to_image: ImageRef,
    /// Strategy.
    pub strategy: Strategy,
    /// manage.py command words.
    pub manage: Vec<String>,
    /// Replicas from the stack file.
    pub replicas: Option<u64>,
    /// Compose files.
    pub compose_files: Vec<String>,
    /// Directory the compose files are relative to.
    pub project_dir: String,
    /// `tagback record` arguments (without `--evidence FILE`) that record this rollback.
    pub record_args: Vec<String>,
    /// Replace irreversible operations with manual steps instead of refusing.
    pub allow_manual_steps: bool,
}

fn check_name(kind: &str, s: &str, max: usize, extra: &[char]) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= max
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(&c));
    if ok {
        Ok(())
    } else {
        Err(Error::input(format!(
            "{kind} {s:?} is not a name Docker or Django accepts; refusing to generate a script"
        )))
    }
}

/// Why the plan cannot become a script without a person's help; empty when it can.
pub fn refusals(plan: &Plan) -> Vec<String> {
    let mut out: Vec<String> = plan.problems.iter().map(|p| p.message.clone()).collect();
    for d in &plan.dynamic {
        out.push(format!(
            "{}:{} {}.{} is dynamic: {}",
            d.file, d.line, d.app, d.migration, d.what
        ));
    }
    out
}

/// The executor step as an action. Irreversible operations among the
/// planned set are refused whatever `--allow-manual-steps` says: a manual
/// step needs a per-app `migrate` to stop at.
fn executor_action(
    plan: &Plan,
    x: &crate::plan::ExecutorStep,
    actions: &mut Vec<Action>,
    keep_applied: &mut Vec<MigrationKey>,
) -> Result<()> {
    if !plan.irreversible.is_empty() {
        let list: Vec<String> = plan
            .irreversible
            .iter()
            .map(|i| {
                format!(
                    "{}:{} ({} in {}.{})",
                    i.file, i.line, i.operation, i.app, i.migration
                )
            })
            .collect();
        return Err(Error::input(format!(
            "irreversible operations among the migrations the executor step unapplies (manual steps need a per-app migrate to stop at): {}",
            list.join(", ")
        )));
    }
    let (order, keep) = (x.order(), x.keep());
    for MigrationKey { app: a, name: n } in order.iter().chain(&keep) {
        check_name("app label", a, 100, &[])?;
        check_name("migration name", n, 255, &[])?;
    }
    keep_applied.extend(keep.iter().cloned());
    actions.push(Action::UnapplyExactly {
        code: crate::plan::executor::python(&order, &keep),
        order,
    });
    Ok(())
}

/// Build the script model from a plan.
pub fn build(
    plan: &Plan,
    opts: &ScriptOptions,
    graph_parent: &dyn Fn(&str, &str) -> Option<String>,
) -> Result<RollbackScript> {
    check_name("service name", &opts.service, 63, &['-', '.'])?;
    if !opts.stack.is_empty() {
        check_name("stack name", &opts.stack, 63, &['-', '.'])?;
    }
    for s in &plan.steps {
        let Step::Migrate(s) = s else { continue };
        check_name("app label", &s.app, 100, &[])?;
        if s.target != "zero" {
            check_name("migration name", &s.target, 255, &[])?;
        }
    }
    for MigrationKey { app: a, name: n } in &plan.unapply {
        check_name("app label", a, 100, &[])?;
        check_name("migration name", n, 255, &[])?;
    }
    let mut actions = Vec::new();
    let mut manual = 0;
    let mut keep_applied: Vec<MigrationKey> = Vec::new();
    for step in &plan.steps {
        let step = match step {
            Step::Migrate(m) => m,
            Step::Executor(x) => {
                executor_action(plan, x, &mut actions, &mut keep_applied)?;
                continue;
            }
        };
        if step.target != "zero" {
            keep_applied.push(MigrationKey::new(step.app.clone(), step.target.clone()));
        }
        let irreversible: Vec<_> = plan
            .irreversible
            .iter()
            .filter(|i| i.app == step.app)
            .collect();
        if !irreversible.is_empty() && !opts.allow_manual_steps {
            let list: Vec<String> = irreversible
                .iter()
                .map(|i| {
                    format!(
                        "{}:{} ({} in {}.{})",
                        i.file, i.line, i.operation, i.app, i.migration
                    )
                })
                .collect();
            return Err(Error::input(format!(
                "irreversible operations: {}",
                list.join(", ")
            )));
        }
        // Unapply down to each irreversible migration for real, have a person
        // undo it, mark it unapplied with --fake, then continue.
        let mut done: Vec<&str> = Vec::new();
        for order_name in &step.unapply {
            let Some(i) = irreversible.iter().find(|i| i.migration == *order_name) else {
                continue;
            };
            if done.contains(&i.migration.as_str()) {
                continue;
            }
            done.push(&i.migration);
            let Some(parent) = graph_parent(&i.app, &i.migration) else {
                return Err(Error::input(format!(
                    "{}.{} has no single parent in its app; cannot put a manual step in its place",
                    i.app, i.migration
                )));
            };
            manual += 1;
            let ops: Vec<String> = irreversible
                .iter()
                .filter(|x| x.migration == i.migration)
                .map(|x| format!("{} at {}:{}", x.operation, x.file, x.line))
                .collect();
            actions.push(Action::Manual {
                number: manual,
                app: i.app.clone(),
                migration: i.migration.clone(),
                parent,
                instructions: format!(
                    "undo by hand what {}.{} did ({}); then re-run with TAGBACK_MANUAL_{manual}=done",
                    i.app,
                    i.migration,
                    ops.join(", ")
                ),
            });
        }
        actions.push(Action::Migrate {
            app: step.app.clone(),
            target: step.target.clone(),
        });
    }
    let mut summary = Vec::new();
    if !plan.packages.is_empty() && !plan.steps.is_empty() {
        summary.push(format!(
            "packages: the backward migrations of {} run in the newer image, where the newer versions are installed",
            plan.packages.join(", ")
        ));
    }
    for (i, s) in plan.steps.iter().enumerate() {
        summary.push(match s {
            Step::Migrate(s) => format!(
                "{}. migrate {} {}  (unapplies {})",
                i + 1,
                s.app,
                s.target,
                s.unapply.join(", ")
            ),
            Step::Executor(x) => format!(
                "{}. unapply exactly, with Django's MigrationExecutor (no per-app migrate target is exact): {}; stays applied: {}",
                i + 1,
                x.unapply.join(", "),
                x.keep_applied.join(", ")
            ),
        });
    }
    for u in &plan.unreachable {
        summary.push(format!("no per-app target: {}", u.message));
    }
    for d in &plan.data_loss {
        summary.push(format!("data loss: {}.{} {}", d.app, d.migration, d.what));
    }
    for a in &plan.acknowledged {
        summary.push(format!(
            "data loss (acknowledged: {}): {}",
            a.reason, a.finding.message
        ));
    }
    for i in &plan.irreversible {
        summary.push(format!(
            "MANUAL: {}.{} {} at {}:{} cannot be unapplied by Django",
            i.app, i.migration, i.operation, i.file, i.line
        ));
    }
    for a in &plan.old_only_apps {
        summary.push(format!(
            "after the retag: migrate {} forward with the older code (only it has this app)",
            a.app
        ));
    }
    Ok(RollbackScript {
        service: opts.service.clone(),
        stack: opts.stack.clone(),
        from_image: opts.from_image.to_string(),
        to_image: opts.to_image.to_string(),
        strategy: opts.strategy,
        manage: opts.manage.clone(),
        default_replicas: opts.replicas,
        compose_files: opts.compose_files.clone(),
        project_dir: opts.project_dir.clone(),
        record_args: opts.record_args.clone(),
        actions,
        unapplied: plan.unapply.clone(),
        keep_applied,
        post_apps: plan.old_only_apps.iter().map(|a| a.app.clone()).collect(),
        summary,
        fingerprint: plan.fingerprint.clone(),
        generated_by: format!(
            "tagback {} from revisions {} -> {}",
            env!("CARGO_PKG_VERSION"),
            plan.from,
            plan.to
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{ExecutorKind, ExecutorStep, Irreversible};

    fn opts(allow_manual_steps: bool) -> ScriptOptions {
        ScriptOptions {
            service: "web".into(),
            stack: "shop".into(),
            from_image: ImageRef::parse("shop:2").unwrap(),
            to_image: ImageRef::parse("shop:1").unwrap(),
            strategy: Strategy::Exec,
            manage: vec!["python".into(), "manage.py".into()],
            replicas: Some(1),
            compose_files: Vec::new(),
            project_dir: String::new(),
            record_args: Vec::new(),
            allow_manual_steps,
        }
    }

    fn executor_plan() -> Plan {
        Plan {
            steps: vec![Step::Executor(ExecutorStep {
                kind: ExecutorKind::Executor,
                unapply: vec!["shop.0005_merge".into(), "shop.0003_fix".into()],
                keep_applied: vec!["shop.0002_b".into(), "shop.0004_d".into()],
                why: "no order".into(),
            })],
            unapply: vec![
                MigrationKey::new("shop", "0005_merge"),
                MigrationKey::new("shop", "0003_fix"),
            ],
            fingerprint: "0123456789abcdef".into(),
            ..Plan::default()
        }
    }

    #[test]
    fn the_executor_step_becomes_one_action_that_keeps_what_it_hangs_off() {
        let s = build(&executor_plan(), &opts(false), &|_, _| None).unwrap();
        assert!(
            matches!(&s.actions[..], [Action::UnapplyExactly { order, .. }] if order.len() == 2)
        );
        assert_eq!(
            s.keep_applied,
            vec![
                MigrationKey::new("shop", "0002_b"),
                MigrationKey::new("shop", "0004_d")
            ]
        );
    }

    #[test]
    fn irreversible_operations_with_the_executor_step_are_refused_even_with_manual_steps() {
        let mut plan = executor_plan();
        plan.irreversible.push(Irreversible {
            code: crate::finding::Code::Irreversible,
            message: String::new(),
            app: "shop".into(),
            migration: "0003_fix".into(),
            operation: "RunPython".into(),
            file: "shop/migrations/0003_fix.py".into(),
            line: 9,
            certainty: crate::django::migration::Reversibility::Irreversible,
            reason: "no reverse_code".into(),
        });
        let err = build(&plan, &opts(true), &|_, _| None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("shop/migrations/0003_fix.py:9") && err.contains("executor step"),
            "{err}"
        );
    }
}
