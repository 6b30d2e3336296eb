//! `tagback hook NAME`: the git hook entry points.

use std::io::{Read, Write};

use crate::Outcome;
use crate::deploy::{self, Request};
use crate::error::{Error, Result};
use crate::git::hook::parse_pre_push;
use crate::git::{Repo, Snapshot, short};
use crate::source::GitRevision;
use crate::stack;

/// The hooks tagback implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[allow(clippy::enum_variant_names)] // the names are git's
pub enum HookName {
    /// Before a push: every pushed ref's stack files against the remote's.
    PrePush,
    /// Before a commit: the staged stack files against HEAD.
    PreCommit,
    /// Before a merge commit: the merge result against HEAD.
    PreMergeCommit,
}

pub(super) fn run(name: HookName, args: &[String], out: &mut dyn Write) -> Result<Outcome> {
    let repo = Repo::open_from_env()?;
    match name {
        HookName::PrePush => pre_push(&repo, args, out),
        HookName::PreCommit | HookName::PreMergeCommit => {
            if !repo.has_revision("HEAD") {
                return Ok(Outcome::Safe);
            }
            let from = repo.snapshot("HEAD")?;
            let to = repo.index_snapshot();
            compare(&repo, from, to, out)
        }
    }
}

fn compare(repo: &Repo, from: Snapshot, to: Snapshot, out: &mut dyn Write) -> Result<Outcome> {
    // No stack file at either side: nothing to check.
    if stack::discover_files(repo, &[&from, &to], &[]).is_err() && !has_config_files(repo, &to)? {
        return Ok(Outcome::Safe);
    }
    let req = Request {
        repo,
        from,
        to,
        files: Vec::new(),
        service: None,
        full: false,
    };
    let report = deploy::check(&req)?;
    if report.services.is_empty() {
        return Ok(Outcome::Safe);
    }
    super::check::render_hook(&report, out)
}

fn has_config_files(repo: &Repo, snap: &Snapshot) -> Result<bool> {
    let cfg = crate::config::Config::load(&GitRevision::new(repo, snap))?;
    Ok(!cfg.files.is_empty())
}

/// The most pre-push input read (one line per pushed ref).
const MAX_PRE_PUSH_INPUT: u64 = 1 << 20;

fn pre_push(repo: &Repo, args: &[String], out: &mut dyn Write) -> Result<Outcome> {
    // The pre-commit framework passes the range in the environment.
    if let (Ok(from), Ok(to)) = (
        std::env::var("PRE_COMMIT_FROM_REF"),
        std::env::var("PRE_COMMIT_TO_REF"),
    ) {
        let from = repo.snapshot(&from)?;
        let to = repo.snapshot(&to)?;
        return compare(repo, from, to, out);
    }
    let mut input = String::new();
    std::io::stdin()
        .take(MAX_PRE_PUSH_INPUT + 1)
        .read_to_string(&mut input)
        .map_err(|e| Error::input(format!("pre-push hook input is not text: {e}")))?;
    // Never judge part of a push: refs past the bound would go unchecked.
    if input.len() as u64 > MAX_PRE_PUSH_INPUT {
        return Err(Error::input(format!(
            "pre-push hook input is larger than {} KiB (about 9,000 refs); push fewer refs at a time",
            MAX_PRE_PUSH_INPUT / 1024
        )));
    }
    let updates = parse_pre_push(&input)?;
    let remote = args.first().map(String::as_str).unwrap_or("origin");
    let mut outcome = Outcome::Safe;
    for u in updates {
        if u.is_delete() {
            continue;
        }
        let local = repo.resolve_commit(&u.local_sha)?;
        let base = if u.is_new() || !repo.has_revision(&u.remote_sha) {
            let why = if u.is_new() {
                format!("{} is new on {remote}", u.remote_ref)
            } else {
                format!(
                    "{} on {remote} is at {}, which is not in this repository",
                    u.remote_ref,
                    &u.remote_sha[..10]
                )
            };
            match repo
                .remote_default_branch(remote)
                .and_then(|(name, tip)| repo.merge_base(local, tip).map(|b| (name, b)))
            {
                Some((name, b)) => {
                    let _ = writeln!(
                        out,
                        "tagback: {why}; comparing with its merge base with {name} ({})",
                        short(b)
                    );
                    b
                }
                None if u.is_new() && !repo.has_remote_refs(remote) => {
                    // git says the ref is absent there and nothing of the
                    // remote was ever fetched: a first push to an empty
                    // remote, with no earlier deploy to move back from.
                    let _ = writeln!(
                        out,
                        "tagback: {why} and this repository knows no ref of {remote} (a first push?); nothing to compare with"
                    );
                    continue;
                }
                None => {
                    // Fail closed: a push nobody can compare may carry a downgrade.
                    let _ = writeln!(
                        out,
                        "tagback: BLOCKED {}: {why}, and there is no remote-tracking default branch \
                         (refs/remotes/{remote}/HEAD, main or master) sharing history with {} to compare with. \
                         Run `git fetch {remote}` and push again (or check the range by hand with \
                         `tagback check --from REV --to {}` and push with `git push --no-verify`).",
                        u.remote_ref,
                        short(local),
                        short(local)
                    );
                    outcome = outcome.and(Outcome::Unsafe);
                    continue;
                }
            }
        } else {
            repo.resolve_commit(&u.remote_sha)?
        };
        if base == local {
            continue;
        }
        let from = repo.snapshot_of(base)?;
        let to = repo.snapshot_of(local)?;
        outcome = outcome.and(compare(repo, from, to, out)?);
    }
    Ok(outcome)
}
