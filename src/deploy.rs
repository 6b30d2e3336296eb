//! Judging a change to a deploy — what `check`, `gate` and the hooks share:
//! compare the stack files at two snapshots of the deploy repository, judge
//! each image change, resolve tags to source revisions, compute plans and
//! consult the ledger.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{Config, ServiceConfig};
use crate::django::{Loader, Pair};
use crate::error::{Error, Result};
use crate::finding::{Code, Finding};
use crate::git::{Repo, Snapshot, short};
use crate::ledger::{self, RecordStatus};
use crate::plan::{self, Plan};
use crate::source::GitRevision;
use crate::stack::{self, Direction, ImageRef};

/// One service whose image changes.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ServiceReport {
    /// Service name.
    pub service: String,
    /// Image deployed now.
    pub from_image: String,
    /// Image after the change.
    pub to_image: String,
    /// upgrade / downgrade / sideways / unchanged / unknown.
    pub direction: Direction,
    /// Source revision of the deployed image.
    pub from_rev: Option<String>,
    /// Source revision of the new image.
    pub to_rev: Option<String>,
    /// The backward plan from `from_rev` to `to_rev` (null when not computed).
    pub plan: Option<Plan>,
    /// For an upgrade: the plan that would roll it back (from the new
    /// revision to the deployed one), so a pull request shows before the
    /// release whether it could be undone and what that would drop.
    pub rollback: Option<Plan>,
    /// Whether a ledger record matching this plan exists.
    pub recorded: bool,
    /// Why the plan is null, the direction is unknown, or a record is stale.
    pub notes: Vec<Finding>,
    /// Whether this change may go ahead.
    pub safe: bool,
    /// Stack file and line of the new `image:`.
    pub file: String,
    /// Line of `image:`.
    pub line: u64,
    /// `deploy.replicas` of the deployed service.
    #[serde(skip)]
    pub replicas: Option<u64>,
    /// Where the Django code lives (for scripts).
    #[serde(skip)]
    pub app_repo: Option<PathBuf>,
    /// The deployed service's name when the stack file renames it: the
    /// backward migrations run in that service's containers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<String>,
}

/// The result of comparing two snapshots of the deploy repository.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CheckReport {
    /// True when every change is safe.
    pub safe: bool,
    /// Deployed snapshot.
    pub from: String,
    /// New snapshot.
    pub to: String,
    /// Stack files compared.
    pub files: Vec<String>,
    /// Services whose image changes.
    pub services: Vec<ServiceReport>,
}

/// Inputs of a deploy check.
pub struct Request<'a> {
    /// The deploy repository.
    pub repo: &'a Repo,
    /// Snapshot deployed now.
    pub from: Snapshot,
    /// Snapshot to deploy.
    pub to: Snapshot,
    /// Explicit stack files (`-f`).
    pub files: Vec<String>,
    /// Only this service, when given.
    pub service: Option<String>,
    /// Load every app, not only those that changed.
    pub full: bool,
}

/// Compare the stack files and judge every image change.
pub fn check(req: &Request<'_>) -> Result<CheckReport> {
    let config = Config::load(&GitRevision::new(req.repo, &req.to))?;
    let explicit = if req.files.is_empty() {
        config.files.clone()
    } else {
        req.files.clone()
    };
    let files = stack::discover_files(req.repo, &[&req.from, &req.to], &explicit)?;
    let old = stack::load(req.repo, &req.from, &files)?.unwrap_or_default();
    let new = stack::load(req.repo, &req.to, &files)?.unwrap_or_default();
    let records = ledger::read_all(req.repo, &req.to, config.ledger.as_deref())?;
    let keys = trusted_keys(req, &config)?;
    let mut repos = AppRepos::default();
    let mut services = Vec::new();
    let mut rollback_scripts: Option<Vec<(String, u64)>> = None;
    for change in stack::changes(&old, &new) {
        // A renamed service answers to both names.
        if req
            .service
            .as_ref()
            .is_some_and(|s| *s != change.to.name && !(change.renamed && *s == change.from.name))
        {
            continue;
        }
        let Some(from_img) = &change.from.image else {
            continue;
        };
        // A renamed service keeps the settings written for its old name
        // until it has its own.
        let cfg = if change.renamed && !config.services.contains_key(&change.to.name) {
            config.service(&change.from.name)
        } else {
            config.service(&change.to.name)
        };
        let mut report = match &change.to.image {
            Some(to_img) => judge(req, &mut repos, &cfg, &change.to.name, from_img, to_img)?,
            None => removed_image(&change, &cfg, from_img),
        };
        report.file = change.to.file.clone();
        report.line = change.to.line;
        report.replicas = change.from.replicas;
        if change.renamed {
            report.renamed_from = Some(change.from.name.clone());
            report.notes.push(Finding::new(
                Code::ServiceRenamed,
                format!(
                    "service {:?} ({}:{}) is gone and {:?} runs the same image repository {}: judged as {:?} moving from {} to {}",
                    change.from.name,
                    change.from.file,
                    change.from.line,
                    change.to.name,
                    from_img.repository,
                    change.from.name,
                    report.from_image,
                    report.to_image
                ),
            ).at(change.to.file.clone(), u32::try_from(change.to.line).unwrap_or(0)));
        }
        if let Some(p) = &report.plan
            && p.needs_backward_migrations()
        {
            match ledger::status(
                &records,
                &report.service,
                &report.from_image,
                &report.to_image,
                p,
                &keys,
            ) {
                RecordStatus::Recorded => report.recorded = true,
                RecordStatus::Stale(why) => report.notes.push(Finding::new(Code::StaleRecord, why)),
                RecordStatus::Untrusted(why) => {
                    report.notes.push(Finding::new(Code::UntrustedRecord, why))
                }
                RecordStatus::Missing => {}
            }
        }
        report.safe = is_safe(&report, &cfg);
        // A release that adds migrations (the plan that would roll it back
        // is not empty) and can be rolled back behind tagback's back.
        let added = report.rollback.as_ref().map_or(0, |p| p.unapply.len());
        if added > 0 {
            let scripts = match &rollback_scripts {
                Some(s) => s,
                None => rollback_scripts.insert(stack::rollback_scripts::find(req.repo, &req.to)?),
            };
            let sources = change
                .to
                .auto_rollback
                .iter()
                .map(|(f, l)| (f, *l, "deploy.update_config.failure_action: rollback"))
                .chain(
                    scripts
                        .iter()
                        .map(|(f, l)| (f, *l, "docker service rollback")),
                );
            let found: Vec<Finding> = sources
                .map(|(file, line, what)| {
                    auto_rollback_finding(&report, added, file.clone(), line, what)
                })
                .collect();
            report.notes.extend(found);
        }
        services.push(report);
    }
    let safe = services.iter().all(|s| s.safe);
    Ok(CheckReport {
        safe,
        from: req.from.label.clone(),
        to: req.to.label.clone(),
        files,
        services,
    })
}

/// An `auto-rollback` warning: a rollback tagback does not see would start
/// the deployed image's code on the schema this release migrates.
fn auto_rollback_finding(
    r: &ServiceReport,
    added: usize,
    file: String,
    line: u64,
    what: &str,
) -> Finding {
    Finding::new(
        Code::AutoRollback,
        format!(
            "{what}: {} can go back to {} without tagback seeing it, and {} starts on a database this release migrated ({added} migration(s) it does not know); fix: run `tagback guard` in the image's entrypoint so older tasks refuse to start, or make this release's migrations backward-compatible with the code of {}",
            r.service, r.from_image, r.from_image, r.from_image
        ),
    )
    .at(file, u32::try_from(line).unwrap_or(0))
}

/// The report for a service whose `image:` was removed or emptied: unless
/// it is configured as not Django, nobody can tell what will run against
/// the database, so it is blocked with a finding.
fn removed_image(
    change: &stack::ImageChange,
    cfg: &ServiceConfig,
    from: &ImageRef,
) -> ServiceReport {
    let not_django = cfg.django == Some(false);
    let mut notes = Vec::new();
    if not_django {
        notes.push(Finding::new(
            Code::NotDjango,
            "not a Django service (django: false in .tagback.yml)",
        ));
    } else {
        notes.push(Finding::new(
            Code::ImageRemoved,
            format!(
                "service {:?} no longer names an image (it ran {from}): tagback cannot tell what will run against the database; set `image:`, or `django: false` for it in .tagback.yml",
                change.to.name
            ),
        ).at(change.to.file.clone(), u32::try_from(change.to.line).unwrap_or(0)));
    }
    ServiceReport {
        service: change.to.name.clone(),
        from_image: from.to_string(),
        to_image: String::new(),
        direction: Direction::Unknown,
        from_rev: None,
        to_rev: None,
        plan: None,
        rollback: None,
        recorded: false,
        notes,
        safe: not_django,
        file: String::new(),
        line: 0,
        replicas: None,
        app_repo: None,
        renamed_from: None,
    }
}

/// The keys whose signatures count: those of the deployed revision's
/// `.tagback.yml` (a change cannot vouch for itself by adding its own key),
/// else the new revision's.
pub fn trusted_keys(
    req: &Request<'_>,
    to_config: &Config,
) -> Result<Vec<ledger::trust::TrustedKey>> {
    let from_config = Config::load(&GitRevision::new(req.repo, &req.from))?;
    let (lines, snap) = if from_config.trusted_keys.is_empty() {
        (&to_config.trusted_keys, &req.to)
    } else {
        (&from_config.trusted_keys, &req.from)
    };
    ledger::trust::parse_trusted_keys(lines).map_err(|e| {
        Error::input(format!(
            "{} at {}: {e}",
            crate::config::FILE_NAME,
            snap.label
        ))
    })
}

fn is_safe(r: &ServiceReport, cfg: &ServiceConfig) -> bool {
    if r.to_image.is_empty() {
        return r.safe;
    }
    match &r.plan {
        // Nothing to unapply is safe only when nothing was left unread.
        Some(p) => (!p.needs_backward_migrations() && p.problems.is_empty()) || r.recorded,
        None if cfg.django == Some(false) => true,
        // Not Django (no manage.py at either revision): nothing to migrate.
        None if r.from_rev.is_some() && r.to_rev.is_some() => true,
        None => matches!(r.direction, Direction::Upgrade | Direction::Unchanged),
    }
}

#[derive(Default)]
struct AppRepos {
    opened: BTreeMap<PathBuf, Repo>,
}

impl AppRepos {
    fn get<'a>(
        &'a mut self,
        deploy: &'a Repo,
        cfg: &ServiceConfig,
    ) -> Result<(&'a Repo, Option<PathBuf>)> {
        let Some(rel) = &cfg.repo else {
            return Ok((deploy, deploy.workdir().map(Path::to_path_buf)));
        };
        let base = deploy.workdir().unwrap_or_else(|| deploy.git_dir());
        let path = base.join(rel);
        if !self.opened.contains_key(&path) {
            let repo = Repo::open(&path).map_err(|_| {
                Error::input(format!(
                    "{}: `repo: {rel}` is not a git repository",
                    crate::config::FILE_NAME
                ))
            })?;
            self.opened.insert(path.clone(), repo);
        }
        Ok((&self.opened[&path], Some(path)))
    }
}

/// The git revision an image tag maps to, if it exists.
///
/// Zero-config: the git tag `T`, then `vT` (as tags only: a tag like `1234`
/// must never resolve to a commit whose id happens to start with 1234), then,
/// for tags that look like commit ids (7 to 40 hex digits), that commit.
/// With `ref:` configured, the template is resolved as any git revision.
pub fn resolve_tag(repo: &Repo, cfg: &ServiceConfig, image: &ImageRef) -> Option<String> {
    let tag = image.tag.as_deref()?;
    if let Some(t) = &cfg.ref_template {
        let rev = t.replace("{tag}", tag);
        return (!rev.starts_with('-') && repo.has_revision(&rev)).then_some(rev);
    }
    for candidate in [tag.to_string(), format!("v{tag}")] {
        if repo.has_revision(&format!("refs/tags/{candidate}")) {
            return Some(candidate);
        }
    }
    let sha_like = (7..=40).contains(&tag.len()) && tag.bytes().all(|b| b.is_ascii_hexdigit());
    (sha_like && repo.has_revision(&format!("{tag}^{{commit}}"))).then(|| tag.to_string())
}

fn judge(
    req: &Request<'_>,
    repos: &mut AppRepos,
    cfg: &ServiceConfig,
    name: &str,
    from: &ImageRef,
    to: &ImageRef,
) -> Result<ServiceReport> {
    let mut report = ServiceReport {
        service: name.to_string(),
        from_image: from.to_string(),
        to_image: to.to_string(),
        direction: Direction::Unknown,
        from_rev: None,
        to_rev: None,
        plan: None,
        rollback: None,
        recorded: false,
        notes: Vec::new(),
        safe: false,
        file: String::new(),
        line: 0,
        replicas: None,
        app_repo: None,
        renamed_from: None,
    };
    let by_tags = stack::direction_by_tags(from, to);
    if cfg.django == Some(false) {
        report.direction = by_tags.clone().unwrap_or(Direction::Unknown);
        report.notes.push(Finding::new(
            Code::NotDjango,
            "not a Django service (django: false in .tagback.yml)",
        ));
        return Ok(report);
    }
    let (repo, path) = repos.get(req.repo, cfg)?;
    report.app_repo = path;
    report.from_rev = resolve_tag(repo, cfg, from);
    report.to_rev = resolve_tag(repo, cfg, to);
    report.direction = match (&by_tags, &report.from_rev, &report.to_rev) {
        (Ok(d), _, _) => *d,
        (Err(_), Some(a), Some(b)) => {
            let (a, b) = (repo.resolve_commit(a)?, repo.resolve_commit(b)?);
            if a == b {
                Direction::Unchanged
            } else if repo.is_ancestor(b, a)? {
                Direction::Downgrade
            } else if repo.is_ancestor(a, b)? {
                Direction::Upgrade
            } else {
                Direction::Sideways
            }
        }
        (Err(_), _, _) => Direction::Unknown,
    };
    if by_tags.is_ok() && report.direction != Direction::Unchanged {
        // Tags say one thing; ancestry can reveal a sideways move (a hotfix branch).
        if let (Some(a), Some(b)) = (&report.from_rev, &report.to_rev) {
            let (a, b) = (repo.resolve_commit(a)?, repo.resolve_commit(b)?);
            if a != b && !repo.is_ancestor(a, b)? && !repo.is_ancestor(b, a)? {
                report.direction = Direction::Sideways;
            }
        }
    }
    let (Some(fr), Some(tr)) = (report.from_rev.clone(), report.to_rev.clone()) else {
        let missing: Vec<String> = [(from, &report.from_rev), (to, &report.to_rev)]
            .iter()
            .filter(|(_, r)| r.is_none())
            .map(|(img, _)| match img.tag.as_deref() {
                Some(t) => format!(
                    "no git revision {:?} for tag {t:?} in {}",
                    cfg.ref_template
                        .as_deref()
                        .unwrap_or("{tag} or v{tag}")
                        .replace("{tag}", t),
                    repo.label()
                ),
                None => format!("image {img} has no tag to map to a git revision"),
            })
            .collect();
        let why = match &by_tags {
            Err(reason) => format!("{reason}; {}", missing.join("; ")),
            Ok(_) => missing.join("; "),
        };
        report.notes.push(Finding::new(
            Code::UnresolvedRevision,
            format!("plan not computed: {why} (set `ref:` or `django: false` in .tagback.yml)"),
        ));
        return Ok(report);
    };
    let from_snap = repo.snapshot(&fr)?;
    let to_snap = repo.snapshot(&tr)?;
    let mut opts = cfg.project_options();
    // The images that deploy each revision: packages can be read from them.
    opts.images = [Some(from.to_string()), Some(to.to_string())];
    let mut back_opts = opts.clone();
    back_opts.images.reverse();
    // `newer:` / `older:` name releases: in an upgrade the revision deployed
    // now is the older one (the rollback pair keeps them as written).
    if report.direction == Direction::Upgrade {
        opts.sides.reverse();
    }
    let loader = Loader::new(repo);
    match loader.load_pair(&from_snap, &to_snap, &opts, req.full)? {
        Some(pair) => {
            let mut plan = plan_pair(&loader, &pair);
            cfg.finish(&mut plan);
            report.plan = Some(plan);
            if report.direction == Direction::Upgrade
                && let Some(back) = loader.load_pair(&to_snap, &from_snap, &back_opts, req.full)?
            {
                let mut rollback = plan_pair(&loader, &back);
                cfg.finish(&mut rollback);
                report.rollback = Some(rollback);
            }
        }
        None => report.notes.push(Finding::new(
            Code::NoManagePy,
            format!("no manage.py at {fr} or {tr}: not a Django service"),
        )),
    }
    Ok(report)
}

/// Commit label used in reports for a snapshot.
pub fn label_commit(repo: &Repo, rev: &str) -> String {
    repo.resolve_commit(rev)
        .map(short)
        .unwrap_or_else(|_| rev.to_string())
}

/// The plan of a loaded pair, in its two stages: decide from the graphs
/// what to unapply and in which order, have the loader read the operations
/// of exactly those migrations, then compute the findings.
pub fn plan_pair(loader: &Loader<'_>, pair: &Pair) -> Plan {
    let decision = plan::decide(pair);
    let read = loader.read_operations(&pair.newer, decision.files_to_read());
    plan::finish(pair, decision, &read)
}
