//! `tagback plan`: the backward plan between two revisions of the Django code.

use std::io::Write;
use std::path::PathBuf;

use crate::django::{Loader, ProjectOptions};
use crate::error::{Error, Result};
use crate::git::Repo;
use crate::report::{self, Format};
use crate::{Outcome, plan};

pub(super) struct PlanRequest {
    pub(super) repo: PathBuf,
    pub(super) from: String,
    pub(super) to: String,
    pub(super) format: Format,
    pub(super) manage_py: Option<String>,
    pub(super) settings: Option<String>,
    pub(super) full: bool,
}

pub(super) fn run(req: &PlanRequest, out: &mut dyn Write) -> Result<Outcome> {
    let repo = Repo::open(&req.repo)?;
    let newer = repo.snapshot(&req.from)?;
    let older = repo.snapshot(&req.to)?;
    let loader = Loader::new(&repo);
    let opts = ProjectOptions { manage_py: req.manage_py.clone(), settings: req.settings.clone(), installed_apps: None };
    let pair = loader.load_pair(&newer, &older, &opts, req.full)?.ok_or_else(|| {
        Error::input(format!("no manage.py in {} at {} or {}: not a Django project", repo.label(), req.from, req.to))
    })?;
    let plan = plan::compute(&loader, &pair);
    match req.format {
        Format::Json => report::json(&plan, out)?,
        Format::Text => report::plan_text(&plan, out)?,
        Format::Markdown => report::plan_markdown("plan", &plan, out)?,
    }
    Ok(Outcome::Safe)
}
