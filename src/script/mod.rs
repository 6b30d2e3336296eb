//! The rollback script as a model (what to run, in which order) built from a
//! plan, validated, then rendered to bash by `render`. Quoting happens only
//! in `quote`.

pub mod quote;
pub mod render;

use crate::config::Strategy;
use crate::error::{Error, Result};
use crate::plan::Plan;
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
    pub unapplied: Vec<(String, String)>,
    /// `(app, migration)` that must remain applied (the targets).
    pub keep_applied: Vec<(String, String)>,
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
        check_name("app label", &s.app, 100, &[])?;
        if s.target != "zero" {
            check_name("migration name", &s.target, 255, &[])?;
        }
    }
    for (a, n) in &plan.unapply {
        check_name("app label", a, 100, &[])?;
        check_name("migration name", n, 255, &[])?;
    }
    let mut actions = Vec::new();
    let mut manual = 0;
    for step in &plan.steps {
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
            "packages: these run in the newer image, where the newer versions are installed: {}",
            plan.packages.join(", ")
        ));
    }
    for (i, s) in plan.steps.iter().enumerate() {
        summary.push(format!(
            "{}. migrate {} {}  (unapplies {})",
            i + 1,
            s.app,
            s.target,
            s.unapply.join(", ")
        ));
    }
    for d in &plan.data_loss {
        summary.push(format!("data loss: {}.{} {}", d.app, d.migration, d.what));
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
    let keep_applied = plan
        .steps
        .iter()
        .filter(|s| s.target != "zero")
        .map(|s| (s.app.clone(), s.target.clone()))
        .collect();
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
