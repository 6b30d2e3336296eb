//! `tagback plan`: the backward plan between two revisions of the Django code.

use std::io::Write;
use std::path::PathBuf;

use crate::Outcome;
use crate::config::Config;
use crate::django::{Loader, ProjectOptions};
use crate::error::{Error, Result};
use crate::git::Repo;
use crate::report::{self, Format};
use crate::source::GitRevision;

pub(super) struct PlanRequest {
    pub(super) repo: PathBuf,
    pub(super) from: String,
    pub(super) to: String,
    pub(super) format: Format,
    pub(super) manage_py: Option<String>,
    pub(super) settings: Option<String>,
    pub(super) full: bool,
    pub(super) service: Option<String>,
}

pub(super) fn run(req: &PlanRequest, out: &mut dyn Write) -> Result<Outcome> {
    if matches!(req.format, Format::Github | Format::Sarif) {
        return Err(Error::input(
            "--format github and --format sarif are for `check` and `gate` (they annotate the stack file); use json for a plan",
        ));
    }
    let repo = Repo::open(&req.repo)?;
    let newer = repo.snapshot(&req.from)?;
    let older = repo.snapshot(&req.to)?;
    let loader = Loader::new(&repo);
    // The repository's own `.tagback.yml` (its working tree, or HEAD in a
    // bare repository), unless `--config` named another file.
    let config_snap = match repo.workdir() {
        Some(_) => repo.worktree_snapshot(),
        None => repo.snapshot("HEAD")?,
    };
    let config = Config::load(&GitRevision::new(&repo, &config_snap))?;
    let cfg = config.plan_service(req.service.as_deref()).map_err(|e| {
        Error::input(format!(
            "{} in {}: {e}",
            crate::config::FILE_NAME,
            repo.label()
        ))
    })?;
    let mut opts = cfg.project_options();
    opts.manage_py = req.manage_py.clone().or(opts.manage_py);
    opts.settings = req.settings.clone().or(opts.settings);
    let pair = loader
        .load_pair(&newer, &older, &opts, req.full)?
        .ok_or_else(|| {
            Error::input(format!(
                "no manage.py in {} at {} or {}: not a Django project",
                repo.label(),
                req.from,
                req.to
            ))
        })?;
    let mut plan = crate::deploy::plan_pair(&loader, &pair);
    cfg.finish(&mut plan);
    loader.finish_writes();
    // The process ends right after printing: freeing tens of thousands of
    // small allocations one by one would cost more than computing the plan.
    std::mem::forget(pair);
    std::mem::forget(loader);
    // So does closing the repository's pack (libgit2 frees its caches).
    std::mem::forget(repo);
    match req.format {
        Format::Json => report::json(&plan, out)?,
        Format::Text => report::plan_text(&plan, out)?,
        Format::Markdown => report::plan_markdown("plan", &plan, out)?,
        Format::Github | Format::Sarif => unreachable!("refused before planning"),
    }
    Ok(Outcome::Safe)
}

/// `tagback graph`: every migration of every in-repository app at one
/// revision, with dependencies as tagback resolved them, and the leaves.
pub(super) fn graph(dir: &std::path::Path, rev: &str, out: &mut dyn Write) -> Result<Outcome> {
    use std::collections::BTreeMap;

    use crate::django::migration::Dependency;

    let repo = Repo::open(dir)?;
    let snap = repo.snapshot(rev)?;
    let loader = Loader::new(&repo);
    let pair = loader
        .load_pair(&snap, &snap, &ProjectOptions::default(), true)?
        .ok_or_else(|| Error::input(format!("no manage.py in {} at {rev}", repo.label())))?;
    let r = &pair.newer;
    let mut migrations = BTreeMap::new();
    for f in r.files.iter() {
        let k = &f.key;
        let deps: Vec<(String, String)> = f
            .migration
            .dependencies
            .iter()
            .map(|d| match d {
                Dependency::Key(a, n) => (a.to_string(), n.to_string()),
                Dependency::Swappable(s) => {
                    let v = crate::django::graph::swappable_value(&r.project, s)
                        .unwrap_or_else(|| format!("?{s}"));
                    (
                        v.split('.').next().unwrap_or_default().to_string(),
                        "__first__".to_string(),
                    )
                }
            })
            .collect();
        migrations.insert(
            format!("{}.{}", k.app, k.name),
            serde_json::json!({
                "file": f.file,
                "dependencies": deps,
                "replaces": f.migration.replaces,
                "run_before": f.migration.run_before,
                "dynamic": f.migration.all_dynamic().into_iter().map(|d| format!("line {}: {}", d.line, d.what))
                    .chain(crate::django::graph::unresolved_swappables(&r.project, &f.migration).into_iter().map(|s| format!("swappable setting {s} is set at run time")))
                    .collect::<Vec<_>>(),
            }),
        );
    }
    let mut leaves = BTreeMap::new();
    for app in &r.loaded {
        let l: Vec<String> = r
            .graph
            .leaves(app)
            .into_iter()
            .map(|k| k.name.to_string())
            .collect();
        leaves.insert(app.clone(), l);
    }
    let apps: BTreeMap<&str, Option<&str>> = r
        .project
        .apps
        .iter()
        .map(|a| (a.label.as_str(), a.migrations_dir.as_deref()))
        .collect();
    report::json(
        &serde_json::json!({ "apps": apps, "migrations": migrations, "leaves": leaves, "parsed_blobs": loader.parsed_count() }),
        out,
    )?;
    Ok(Outcome::Safe)
}
