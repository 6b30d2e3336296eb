//! `tagback script` (rollback script for one downgrade) and
//! `tagback script --release-artifact DIR` (the rollback of an upgrade,
//! written at release time with its plan and a markdown summary).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use super::StackArgs;
use crate::Outcome;
use crate::config::{Config, Strategy};
use crate::deploy::{self, ServiceReport};
use crate::django::{Loader, MigrationKey, ProjectOptions};
use crate::error::{Error, Result};
use crate::fs::{self, Mode};
use crate::git::Repo;
use crate::plan::{self, Plan};
use crate::report;
use crate::script::{self, ScriptOptions};
use crate::source::GitRevision;
use crate::stack::{Direction, ImageRef};

/// Arguments of `tagback script`.
#[derive(Debug, Args)]
pub struct ScriptArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// The service to roll back (default: the only one that needs it).
    #[arg(long)]
    service: Option<String>,
    /// How the script reaches manage.py (default: exec for Swarm stack files, compose for compose files).
    #[arg(long, value_enum)]
    strategy: Option<Strategy>,
    /// Write the script here (mode 0755) instead of stdout.
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
    /// Default stack (Swarm) or project (Compose) name; STACK overrides when the script runs.
    #[arg(long)]
    stack_name: Option<String>,
    /// Put clearly marked manual steps where operations cannot be unapplied instead of refusing.
    #[arg(long)]
    allow_manual_steps: bool,
    /// Without a stack file: the Django repository.
    #[arg(long)]
    repo: Option<PathBuf>,
    /// Without a stack file: the image to go back to.
    #[arg(long)]
    image: Option<String>,
    /// Without a stack file: the image running now (default: derived from --image and --from).
    #[arg(long)]
    current_image: Option<String>,
    /// Command running manage.py in the container.
    #[arg(long)]
    manage_command: Option<String>,
    /// Release mode: for every upgraded service, write the script that would
    /// roll the upgrade back, its plan (JSON) and a markdown summary into DIR.
    #[arg(long, value_name = "DIR")]
    release_artifact: Option<PathBuf>,
}

fn default_strategy(files: &[String]) -> Strategy {
    if files.iter().any(|f| {
        let name = f.rsplit('/').next().unwrap_or(f);
        name.starts_with("compose.") || name.starts_with("docker-compose")
    }) {
        Strategy::Compose
    } else {
        Strategy::Exec
    }
}

fn manage_words(cmd: Option<&str>) -> Vec<String> {
    cmd.unwrap_or(plan::DEFAULT_MANAGE)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

pub(super) fn run(args: &ScriptArgs, out: &mut dyn Write) -> Result<Outcome> {
    if let Some(dir) = &args.release_artifact {
        return release_artifact(args, dir, out);
    }
    if args.repo.is_some() || args.image.is_some() {
        return without_stack(args, out);
    }
    let repo = Repo::open(&args.stack.deploy_repo)?;
    let req = super::check::request(&repo, &args.stack, args.service.clone())?;
    let config = Config::load(&GitRevision::new(&repo, &req.to))?;
    let report = deploy::check(&req)?;
    let candidates: Vec<&ServiceReport> = report
        .services
        .iter()
        .filter(|s| {
            s.plan.as_ref().is_some_and(Plan::needs_backward_migrations) || args.service.is_some()
        })
        .collect();
    let svc = match candidates.as_slice() {
        [one] => *one,
        [] => {
            return Err(Error::input(match &args.service {
                Some(s) => format!(
                    "service {s:?} has no image change between {} and {}",
                    report.from, report.to
                ),
                None => format!(
                    "no service needs backward migrations between {} and {}",
                    report.from, report.to
                ),
            }));
        }
        many => {
            let names: Vec<&str> = many.iter().map(|s| s.service.as_str()).collect();
            return Err(Error::input(format!(
                "several services need a rollback ({}); choose one with --service",
                names.join(", ")
            )));
        }
    };
    let Some(plan) = &svc.plan else {
        return Err(Error::input(format!(
            "no plan for service {}: {}",
            svc.service,
            svc.notes
                .first()
                .map_or_else(|| "revisions not resolved".into(), |n| n.message.clone())
        )));
    };
    let cfg = config.service(&svc.service);
    let opts = ScriptOptions {
        // A renamed service is rolled back where it runs now: its old name.
        service: svc
            .renamed_from
            .clone()
            .unwrap_or_else(|| svc.service.clone()),
        stack: args
            .stack_name
            .clone()
            .or(config.stack.clone())
            .unwrap_or_default(),
        from_image: ImageRef::parse(&svc.from_image).map_err(Error::input)?,
        to_image: ImageRef::parse(&svc.to_image).map_err(Error::input)?,
        strategy: args
            .strategy
            .or(cfg.strategy)
            .unwrap_or_else(|| default_strategy(&report.files)),
        manage: manage_words(args.manage_command.as_deref().or(cfg.command.as_deref())),
        replicas: svc.replicas,
        compose_files: report.files.clone(),
        project_dir: project_dir(&repo),
        record_args: record_args(&repo, &args.stack, &report.files, &svc.service)?,
        allow_manual_steps: args.allow_manual_steps,
    };
    let app_repo = match &svc.app_repo {
        Some(p) => Repo::open(p)?,
        None => Repo::open(&args.stack.deploy_repo)?,
    };
    let popts = cfg_options(&cfg);
    let parent = parent_lookup(&app_repo, plan, &popts)?;
    emit(plan, &opts, &parent, args.output.as_deref(), out)
}

/// The deploy repository's work tree, absolute: compose files resolve from it.
fn project_dir(repo: &Repo) -> String {
    repo.workdir()
        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()))
        .map(|p| p.to_string_lossy().trim_end_matches('/').to_string())
        .unwrap_or_default()
}

/// `record --from COMMIT [--to COMMIT] [-f FILE]... --service NAME`: the
/// revisions as commit ids, so that the command still names this change
/// after more commits (the record itself is one).
fn record_args(
    repo: &Repo,
    stack: &super::StackArgs,
    files: &[String],
    service: &str,
) -> Result<Vec<String>> {
    let mut out = vec!["record".to_string(), "--from".to_string()];
    out.push(repo.resolve_commit(&stack.from)?.to_string());
    if let Some(to) = &stack.to {
        out.push("--to".into());
        out.push(repo.resolve_commit(to)?.to_string());
    }
    for f in files {
        out.push("-f".into());
        out.push(f.clone());
    }
    out.push("--service".into());
    out.push(service.to_string());
    Ok(out)
}

fn cfg_options(cfg: &crate::config::ServiceConfig) -> ProjectOptions {
    cfg.project_options()
}

/// Same-app parent of a migration in the newer graph (for manual steps).
fn parent_lookup(
    repo: &Repo,
    plan: &Plan,
    opts: &ProjectOptions,
) -> Result<impl Fn(&str, &str) -> Option<String>> {
    let mut parents: Vec<(MigrationKey, Option<String>)> = Vec::new();
    if !plan.irreversible.is_empty() {
        let loader = Loader::new(repo);
        let newer = repo.snapshot(&plan.from)?;
        let older = repo.snapshot(&plan.to)?;
        if let Some(pair) = loader.load_pair(&newer, &older, opts, false)? {
            for i in &plan.irreversible {
                let key = MigrationKey::new(i.app.clone(), i.migration.clone());
                let g = &pair.newer.graph;
                let same: Vec<&MigrationKey> = g
                    .node(&key)
                    .map(|n| g.parents(n))
                    .unwrap_or_default()
                    .iter()
                    .filter(|p| g.in_app(**p, &i.app))
                    .map(|p| g.key(*p))
                    .collect();
                let parent = match same.as_slice() {
                    [one] => Some(one.name.to_string()),
                    [] => Some("zero".to_string()),
                    _ => None,
                };
                parents.push((key, parent));
            }
        }
    }
    Ok(move |app: &str, name: &str| {
        parents
            .iter()
            .find(|(k, _)| k.app == app && k.name == name)
            .and_then(|(_, p)| p.clone())
    })
}

fn emit(
    plan: &Plan,
    opts: &ScriptOptions,
    parent: &dyn Fn(&str, &str) -> Option<String>,
    output: Option<&Path>,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let refusals = script::refusals(plan);
    if !refusals.is_empty() {
        return Err(Error::input(format!(
            "refusing to generate a rollback script: {}",
            refusals.join("; ")
        )));
    }
    let model = match script::build(plan, opts, parent) {
        Ok(m) => m,
        Err(Error::Input(msg)) if msg.starts_with("irreversible operations") => {
            return Err(Error::Refused(format!(
                "refusing to generate a rollback script: {msg}; pass --allow-manual-steps to put manual steps in their place"
            )));
        }
        Err(e) => return Err(e),
    };
    let text = script::render::render(&model);
    match output {
        Some(path) => write_script(path, &text)?,
        None => out
            .write_all(text.as_bytes())
            .map_err(|e| Error::io("<stdout>", e))?,
    }
    Ok(Outcome::Safe)
}

fn write_script(path: &Path, text: &str) -> Result<()> {
    fs::write_atomic(path, text.as_bytes(), Mode::ReplaceExecutable)
}

fn without_stack(args: &ScriptArgs, out: &mut dyn Write) -> Result<Outcome> {
    let (Some(dir), Some(image), Some(service)) = (&args.repo, &args.image, &args.service) else {
        return Err(Error::input(
            "without a stack file, `tagback script` needs --repo DIR, --service NAME and --image OLD_IMAGE",
        ));
    };
    let to = args.stack.to.clone().ok_or_else(|| {
        Error::input("`tagback script --repo` needs --to REV (the older revision)")
    })?;
    let from = args.stack.from.clone();
    let repo = Repo::open(dir)?;
    let to_image = ImageRef::parse(image).map_err(|e| Error::input(format!("--image: {e}")))?;
    let from_image = match &args.current_image {
        Some(c) => ImageRef::parse(c).map_err(|e| Error::input(format!("--current-image: {e}")))?,
        None => {
            let tag = to_image.tag.clone().unwrap_or_default();
            let from_tag = if to == tag {
                from.clone()
            } else if to.strip_prefix('v') == Some(tag.as_str()) {
                from.strip_prefix('v').unwrap_or(&from).to_string()
            } else {
                return Err(Error::input(format!(
                    "cannot derive the running image from --image {image} and --from {from}; pass --current-image"
                )));
            };
            to_image.with_tag(&from_tag)
        }
    };
    let loader = Loader::new(&repo);
    let opts = ProjectOptions {
        images: [Some(from_image.to_string()), Some(to_image.to_string())],
        ..ProjectOptions::default()
    };
    let pair = loader
        .load_pair(&repo.snapshot(&from)?, &repo.snapshot(&to)?, &opts, false)?
        .ok_or_else(|| {
            Error::input(format!(
                "no manage.py in {} at {from} or {to}",
                repo.label()
            ))
        })?;
    let plan = crate::deploy::plan_pair(&loader, &pair);
    let sopts = ScriptOptions {
        service: service.clone(),
        stack: args.stack_name.clone().unwrap_or_default(),
        from_image,
        to_image,
        strategy: args.strategy.unwrap_or(Strategy::Exec),
        manage: manage_words(args.manage_command.as_deref()),
        replicas: None,
        compose_files: args.stack.files.clone(),
        project_dir: project_dir(&repo),
        record_args: ["record", "--service", service.as_str()]
            .map(String::from)
            .to_vec(),
        allow_manual_steps: args.allow_manual_steps,
    };
    let parent = parent_lookup(&repo, &plan, &opts)?;
    emit(&plan, &sopts, &parent, args.output.as_deref(), out)
}

/// For every upgraded service, the rollback of that upgrade, written to
/// `DIR/SERVICE/{plan.json,summary.md,rollback.sh}`. An upgrade whose
/// rollback cannot be planned is an error (exit 2), never an empty artifact.
fn release_artifact(args: &ScriptArgs, dir: &Path, out: &mut dyn Write) -> Result<Outcome> {
    let repo = Repo::open(&args.stack.deploy_repo)?;
    let req = super::check::request(&repo, &args.stack, args.service.clone())?;
    let config = Config::load(&GitRevision::new(&repo, &req.to))?;
    let report = deploy::check(&req)?;
    let mut outcome = Outcome::Safe;
    let mut wrote = 0;
    for svc in &report.services {
        if svc.direction != Direction::Upgrade && svc.direction != Direction::Sideways {
            continue;
        }
        let cfg = config.service(&svc.service);
        if cfg.django == Some(false) {
            continue;
        }
        let (Some(new_rev), Some(old_rev)) = (&svc.to_rev, &svc.from_rev) else {
            return Err(Error::input(format!(
                "cannot plan the rollback of {} from {} to {}: {}; a shallow clone lacks the tags (fetch with `git fetch --tags --unshallow`, or `fetch-depth: 0` in actions/checkout)",
                svc.service,
                svc.to_image,
                svc.from_image,
                svc.notes.first().map_or_else(
                    || "the image tags do not resolve to git revisions".to_string(),
                    |n| n.message.clone()
                )
            )));
        };
        let app_repo = match &svc.app_repo {
            Some(p) => Repo::open(p)?,
            None => Repo::open(&args.stack.deploy_repo)?,
        };
        let loader = Loader::new(&app_repo);
        let popts = cfg_options(&cfg);
        let Some(pair) = loader.load_pair(
            &app_repo.snapshot(new_rev)?,
            &app_repo.snapshot(old_rev)?,
            &popts,
            false,
        )?
        else {
            let _ = writeln!(
                out,
                "tagback: {}: no manage.py at {new_rev} or {old_rev}: not a Django service; no rollback written",
                svc.service
            );
            continue;
        };
        let mut plan = crate::deploy::plan_pair(&loader, &pair);
        cfg.finish(&mut plan);
        let sdir = dir.join(&svc.service);
        let mut json = Vec::new();
        report::json(&plan, &mut json)?;
        fs::write_atomic(&sdir.join("plan.json"), &json, Mode::Replace)?;
        let impossible = plan.is_blocked();
        let mut md = Vec::new();
        let first = if impossible {
            format!(
                "> ⚠️ **Rolling back `{}` from `{}` to `{}` is not possible automatically**: {} irreversible operation(s), {} problem(s).",
                svc.service,
                svc.to_image,
                svc.from_image,
                plan.irreversible.len(),
                plan.problems.len() + plan.dynamic.len()
            )
        } else if !plan.data_loss.is_empty() {
            format!(
                "> ⚠️ **Rolling back `{}` from `{}` to `{}` drops data**: {}.",
                svc.service,
                svc.to_image,
                svc.from_image,
                plan.data_loss
                    .iter()
                    .map(|d| d.what.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        } else {
            format!(
                "Rolling back `{}` from `{}` to `{}`: {} backward migration(s), no data dropped.",
                svc.service,
                svc.to_image,
                svc.from_image,
                plan.unapply.len()
            )
        };
        let _ = writeln!(md, "{first}");
        report::plan_markdown(&svc.service, &plan, &mut md)?;
        fs::write_atomic(&sdir.join("summary.md"), &md, Mode::Replace)?;
        let summary_path = sdir.join("summary.md");
        if impossible {
            outcome = Outcome::Unsafe;
            let _ = writeln!(
                out,
                "tagback: WARNING: rolling back {} to {} is not possible automatically; see {}",
                svc.service,
                svc.from_image,
                summary_path.display()
            );
        }
        let refusals = script::refusals(&plan);
        if impossible && !(args.allow_manual_steps && refusals.is_empty()) {
            let _ = writeln!(
                out,
                "tagback: no rollback.sh for {}: {}",
                svc.service,
                if refusals.is_empty() {
                    "irreversible operations (--allow-manual-steps writes one with manual steps in their place)".to_string()
                } else {
                    refusals.join("; ")
                }
            );
            continue;
        }
        let mut record = vec!["record".to_string()];
        for f in &report.files {
            record.push("-f".into());
            record.push(f.clone());
        }
        record.push("--service".into());
        record.push(svc.service.clone());
        let opts = ScriptOptions {
            service: svc.service.clone(),
            stack: args
                .stack_name
                .clone()
                .or(config.stack.clone())
                .unwrap_or_default(),
            from_image: ImageRef::parse(&svc.to_image).map_err(Error::input)?,
            to_image: ImageRef::parse(&svc.from_image).map_err(Error::input)?,
            strategy: args
                .strategy
                .or(cfg.strategy)
                .unwrap_or_else(|| default_strategy(&report.files)),
            manage: manage_words(args.manage_command.as_deref().or(cfg.command.as_deref())),
            replicas: svc.replicas,
            compose_files: report.files.clone(),
            project_dir: project_dir(&repo),
            record_args: record,
            allow_manual_steps: args.allow_manual_steps,
        };
        let parent = parent_lookup(&app_repo, &plan, &popts)?;
        let model = script::build(&plan, &opts, &parent)?;
        write_script(&sdir.join("rollback.sh"), &script::render::render(&model))?;
        wrote += 1;
        let _ = writeln!(out, "tagback: wrote {}", sdir.join("rollback.sh").display());
        if !plan.data_loss.is_empty() {
            let _ = writeln!(
                out,
                "tagback: WARNING: rolling back {} drops data; see {}",
                svc.service,
                summary_path.display()
            );
        }
    }
    if wrote == 0 && outcome == Outcome::Safe {
        let _ = writeln!(
            out,
            "tagback: no upgraded Django service between {} and {}; nothing written",
            report.from, report.to
        );
    }
    Ok(outcome)
}

impl ScriptArgs {
    /// Whether the script goes to stdout (no `-o`, no `--release-artifact`).
    pub(super) fn writes_stdout(&self) -> bool {
        self.output.is_none() && self.release_artifact.is_none()
    }
}
