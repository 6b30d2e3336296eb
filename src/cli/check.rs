//! `tagback check` and `tagback gate`.

use std::io::Write;

use super::StackArgs;
use crate::Outcome;
use crate::deploy::{self, Request};
use crate::error::{Error, Result};
use crate::git::Repo;
use crate::report::{self, Format};

/// Open the deploy repository and build the deploy-check request.
pub(super) fn request<'a>(
    repo: &'a Repo,
    args: &StackArgs,
    service: Option<String>,
) -> Result<Request<'a>> {
    let from = repo.snapshot(&args.from)?;
    let to = match &args.to {
        Some(rev) => repo.snapshot(rev)?,
        None if repo.workdir().is_none() => {
            return Err(Error::input(format!(
                "{} is a bare repository: it has no working tree to compare with {}; pass --to REV (for example --from HEAD~1 --to HEAD)",
                repo.label(),
                args.from
            )));
        }
        None => repo.worktree_snapshot(),
    };
    Ok(Request {
        repo,
        from,
        to,
        files: args.files.clone(),
        service,
        full: args.full,
    })
}

/// `check` and `gate` judge alike (the gate is the merge-time form of
/// check: it blocks unrecorded backward migrations and changes it cannot
/// judge); they differ in their help and in where they are run.
pub(super) fn run(args: &StackArgs, format: Format, out: &mut dyn Write) -> Result<Outcome> {
    let repo = Repo::open(&args.deploy_repo)?;
    let req = request(&repo, args, None)?;
    let report = deploy::check(&req)?;
    match format {
        Format::Json => report::json(&report, out)?,
        Format::Text => report::check_text(&report, out)?,
        Format::Markdown => report::check_markdown(&report, out)?,
        Format::Github => report::check_github(&report, out)?,
        Format::Sarif => report::check_sarif(&report, out)?,
    }
    Ok(if report.safe {
        Outcome::Safe
    } else {
        Outcome::Unsafe
    })
}

/// Render a report for hooks (text) and return its outcome.
pub(super) fn render_hook(report: &deploy::CheckReport, out: &mut dyn Write) -> Result<Outcome> {
    report::check_text(report, out)?;
    Ok(if report.safe {
        Outcome::Safe
    } else {
        Outcome::Unsafe
    })
}
