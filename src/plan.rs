//! The backward plan: from two loaded revisions to the ordered per-app
//! `migrate APP TARGET` commands that bring a database migrated by the newer
//! code back to what a fresh migrate of the older code gives — verified by
//! simulating Django's executor on the newer graph.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::django::graph::Node;
use crate::django::migration::Reversibility;
use crate::django::{Graph, MigrationKey, Pair, UnappliedOperations};
use crate::finding::{Acknowledged, Acknowledgement, Code, Finding};

pub mod executor;

/// One step of the plan: a per-app `migrate` command, or (where none can be
/// exact) one step that unapplies exactly the planned set with Django's
/// executor. In JSON a migrate step is `{app, target, unapply}` as before;
/// the executor step has `"kind": "executor"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Step {
    /// `manage.py migrate APP TARGET`.
    Migrate(MigrateStep),
    /// `manage.py shell -c CODE` handing `MigrationExecutor.migrate` an explicit backwards plan.
    Executor(ExecutorStep),
}

impl Step {
    /// What this step unapplies, in order (`name` in its app, `app.name` elsewhere; always `app.name` for the executor step).
    pub fn unapply(&self) -> &[String] {
        match self {
            Step::Migrate(s) => &s.unapply,
            Step::Executor(s) => &s.unapply,
        }
    }
}

/// The kind tag of [`ExecutorStep`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ExecutorKind {
    /// Always `executor`.
    Executor,
}

/// Unapply exactly the planned migrations with Django's own
/// `MigrationExecutor`, in this order, when no per-app `migrate` can (new
/// migrations hang off old ones that must stay applied). The code re-checks
/// the order against the loader when it runs (see [`executor`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ExecutorStep {
    /// `executor`.
    pub kind: ExecutorKind,
    /// Every planned migration as `app.name`, children before parents.
    pub unapply: Vec<String>,
    /// What the planned migrations hang off (`app.name`): stays applied, checked before and after.
    pub keep_applied: Vec<String>,
    /// Why no per-app command does it.
    pub why: String,
}

impl ExecutorStep {
    fn pairs(v: &[String]) -> Vec<MigrationKey> {
        v.iter()
            .filter_map(|k| MigrationKey::parse_dotted(k))
            .collect()
    }

    /// `unapply` as `(app, name)`.
    pub fn order(&self) -> Vec<MigrationKey> {
        Self::pairs(&self.unapply)
    }

    /// `keep_applied` as `(app, name)`.
    pub fn keep(&self) -> Vec<MigrationKey> {
        Self::pairs(&self.keep_applied)
    }
}

/// One `migrate APP TARGET` command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct MigrateStep {
    /// App label.
    pub app: String,
    /// Migration name, or `zero`.
    pub target: String,
    /// What this command unapplies, in Django's order (may include dependents in other apps as `app.name`).
    pub unapply: Vec<String>,
}

/// An operation that cannot (or may not) be unapplied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Irreversible {
    /// `irreversible` or `maybe-irreversible`.
    pub code: Code,
    /// One sentence for people.
    pub message: String,
    /// App label.
    pub app: String,
    /// Migration name.
    pub migration: String,
    /// Operation class.
    pub operation: String,
    /// Repository path.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// `irreversible` or `unknown`.
    pub certainty: Reversibility,
    /// Why.
    pub reason: String,
}

/// Data that unapplying drops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct DataLoss {
    /// Always `data-loss`.
    pub code: Code,
    /// One sentence for people.
    pub message: String,
    /// App label.
    pub app: String,
    /// Migration name.
    pub migration: String,
    /// What is dropped.
    pub what: String,
    /// Repository path of the migration.
    pub file: String,
    /// 1-based line of the operation.
    pub line: u32,
}

/// An app only the older revision migrates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct OldOnlyApp {
    /// App label.
    pub app: String,
    /// Its last migration in the older revision.
    pub leaf: String,
}

/// A part of a migration that tagback cannot read exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Dynamic {
    /// `dynamic-migration` or `runtime-swappable`.
    pub code: Code,
    /// One sentence for people.
    pub message: String,
    /// App label.
    pub app: String,
    /// Migration name.
    pub migration: String,
    /// Repository path.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// What is dynamic.
    pub what: String,
}

/// The whole plan (the JSON object of `plan --format json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Plan {
    /// The deployed (newer) revision.
    pub from: String,
    /// The revision to go back to.
    pub to: String,
    /// Commands in the order they must run.
    pub steps: Vec<Step>,
    /// Every migration to unapply, last first.
    pub unapply: Vec<MigrationKey>,
    /// Operations that cannot be unapplied, or may not.
    pub irreversible: Vec<Irreversible>,
    /// Tables and columns that unapplying drops.
    pub data_loss: Vec<DataLoss>,
    /// `python manage.py migrate APP TARGET`, one per step.
    pub commands: Vec<String>,
    /// Apps only the older code migrates: run with the older code after the retag.
    pub old_only_apps: Vec<OldOnlyApp>,
    /// Commands to run with the older code after the retag.
    pub post_commands: Vec<String>,
    /// Parts of relevant migrations that cannot be read exactly.
    pub dynamic: Vec<Dynamic>,
    /// Why the plan cannot be carried out exactly (empty when it can).
    pub problems: Vec<Finding>,
    /// Planned migrations no per-app `migrate APP TARGET` can unapply without
    /// also unapplying migrations the older revision has (`unreachable-by-migrate`);
    /// the executor step unapplies them exactly. Present when non-empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreachable: Vec<Finding>,
    /// What was assumed where the settings cannot be read exactly (one line each).
    pub notes: Vec<Finding>,
    /// Warnings (data loss) that `.tagback.yml` acknowledges, with the reason
    /// (absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acknowledged: Vec<Acknowledged>,
    /// Hash over the steps and the set to unapply.
    pub fingerprint: String,
    /// Migrations of the planned apps that must stay applied (for evidence checks).
    #[serde(skip)]
    pub keep_applied: Vec<MigrationKey>,
    /// What each squash in `unapply`/`keep_applied` replaces.
    #[serde(skip)]
    pub squashes: BTreeMap<MigrationKey, Vec<MigrationKey>>,
    /// Packages whose pinned version changes and whose apps were planned
    /// (`django-taggit 5.0.1 (older: 4.0.0)`), for the script's header.
    #[serde(skip)]
    pub packages: Vec<String>,
}

impl Plan {
    /// Whether anything must be unapplied.
    pub fn needs_backward_migrations(&self) -> bool {
        !self.unapply.is_empty()
    }

    /// Whether running the plan can fail halfway or is not exact.
    pub fn is_blocked(&self) -> bool {
        !self.irreversible.is_empty() || !self.problems.is_empty() || !self.dynamic.is_empty()
    }
}

impl Plan {
    /// Write `commands` and `post_commands` with the configured command that
    /// runs manage.py in the container (`command:` in `.tagback.yml`), so
    /// that what is printed is what works when pasted.
    pub fn use_manage_command(&mut self, manage: Option<&str>) {
        if let Some(manage) = manage.map(str::trim).filter(|m| !m.is_empty()) {
            self.write_commands(manage);
        }
    }

    /// Move the data loss that `.tagback.yml` acknowledges (same code and
    /// migration) to `acknowledged`, with the reason. Blocking findings are
    /// never touched: the configuration refuses to acknowledge them.
    pub fn acknowledge(&mut self, acks: &[Acknowledgement]) {
        let mut kept = Vec::new();
        for d in std::mem::take(&mut self.data_loss) {
            let migration = format!("{}.{}", d.app, d.migration);
            match acks
                .iter()
                .find(|a| a.code == d.code && a.migration == migration)
            {
                Some(a) => self.acknowledged.push(Acknowledged {
                    finding: Finding::new(d.code, d.message).at(d.file, d.line),
                    migration,
                    reason: a.reason.clone(),
                }),
                None => kept.push(d),
            }
        }
        self.data_loss = kept;
    }

    /// `commands` from `steps` and `post_commands` from `old_only_apps`.
    fn write_commands(&mut self, manage: &str) {
        self.commands = self
            .steps
            .iter()
            .map(|s| match s {
                Step::Migrate(s) => migrate_command(manage, &s.app, Some(&s.target)),
                Step::Executor(s) => executor::command(manage, &s.order(), &s.keep()),
            })
            .collect();
        self.post_commands = self
            .old_only_apps
            .iter()
            .map(|a| migrate_command(manage, &a.app, None))
            .collect();
    }
}

/// How `manage.py` runs when `.tagback.yml` says nothing (`command:`).
pub const DEFAULT_MANAGE: &str = "python manage.py";

/// `MANAGE migrate APP [TARGET]` (without `--noinput`): the one place a
/// migrate command line is spelled.
pub fn migrate_command(manage: &str, app: &str, target: Option<&str>) -> String {
    match target {
        Some(t) => format!("{manage} migrate {app} {t}"),
        None => format!("{manage} migrate {app}"),
    }
}

/// Compute the backward plan for going from `pair.newer` to `pair.older`,
/// given the operations of the migrations it unapplies: [`decide`] (what to
/// unapply, targets, command order), then [`finish`] (findings, old-only
/// apps, what stays applied). `read` is what the caller's loader read for
/// [`Decision::files_to_read`] of the same pair.
pub fn compute(pair: &Pair, read: &UnappliedOperations) -> Plan {
    finish(pair, decide(pair), read)
}

/// Stage 1 of the plan, decided from the two graphs alone (no file is read):
/// what to unapply, each app's target, and the commands in order, verified
/// by simulating Django's executor.
#[derive(Debug)]
pub struct Decision<'p> {
    /// Per node of the newer graph: whether it is to be unapplied.
    to_unapply: Vec<bool>,
    /// Apps with something to unapply.
    apps: BTreeSet<&'p str>,
    /// `migrate APP OLD_LEAF` inside a squash, when that is the exact way.
    fallback: Option<RawFallback>,
    /// The commands, in the order they must run.
    steps: Vec<Step>,
    /// Planned migrations no per-app `migrate` reaches.
    unreachable: Vec<Finding>,
    /// Why the plan cannot be carried out exactly.
    problems: Vec<Finding>,
    /// The nodes to unapply, dependents first.
    order: Vec<Node>,
    /// The files Django unapplies, dependents first (indices into the newer files).
    order_files: Vec<usize>,
}

impl Decision<'_> {
    /// The migrations (indices into the newer revision's files) whose
    /// operations decide the findings: exactly those to unapply.
    pub fn files_to_read(&self) -> &[usize] {
        &self.order_files
    }

    /// Whether node `n` of the newer graph is to be unapplied.
    pub fn unapplies(&self, n: Node) -> bool {
        self.to_unapply[n]
    }

    /// The steps decided so far.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The problems found so far.
    pub fn problems(&self) -> &[Finding] {
        &self.problems
    }
}

/// Stage 1: [`Decision`] from the pair's graphs.
pub fn decide(pair: &Pair) -> Decision<'_> {
    let graph = &pair.newer.graph;
    let mut problems = Vec::new();
    let mut known = KnownByOlder::new(pair);
    let to_unapply = what_to_unapply(pair, &mut known, &mut problems);
    let apps: BTreeSet<&str> = (0..graph.len())
        .filter(|n| to_unapply[*n])
        .map(|n| graph.key(n).app.as_str())
        .collect();
    let (targets, fallback) = targets(pair, &apps, &to_unapply, &mut known, &mut problems);
    let (steps, unreachable) = command_order(
        pair,
        &targets,
        fallback.as_ref(),
        &to_unapply,
        &mut problems,
    );
    let order = graph.unapply_order(&to_unapply);
    // What Django unapplies: the nodes in order, or on the fallback path
    // the migrations themselves, not the squash.
    let order_files: Vec<usize> = match &fallback {
        Some(fb) => fb.files.clone(),
        None => order.iter().map(|n| graph.file(*n)).collect(),
    };
    Decision {
        to_unapply,
        apps,
        fallback,
        steps,
        unreachable,
        problems,
        order,
        order_files,
    }
}

/// Stage 2: the plan from the decision and the operations read for it.
pub fn finish(pair: &Pair, decision: Decision<'_>, read: &UnappliedOperations) -> Plan {
    let (newer, older) = (&pair.newer, &pair.older);
    let mut problems = decision.problems.clone();
    let found = findings(newer, &decision.order_files, read, &mut problems);
    let (keep_applied, squashes) = what_stays_applied(pair, &decision);
    let unapply: Vec<MigrationKey> = decision
        .order_files
        .iter()
        .map(|f| newer.files.at(*f).key.clone())
        .collect();
    let fingerprint = fingerprint(&decision.steps, &unapply);
    problems.extend(
        pair.unplanned
            .iter()
            .filter(|f| f.code.severity() != crate::finding::Severity::Note)
            .cloned(),
    );
    let mut plan = Plan {
        from: newer.snap.label.clone(),
        to: older.snap.label.clone(),
        steps: decision.steps,
        unapply,
        irreversible: found.irreversible,
        data_loss: found.data_loss,
        commands: Vec::new(),
        old_only_apps: old_only_apps(pair),
        post_commands: Vec::new(),
        dynamic: found.dynamic,
        problems,
        unreachable: decision.unreachable,
        notes: notes(pair),
        acknowledged: Vec::new(),
        fingerprint,
        keep_applied,
        squashes,
        packages: pair.packages.clone(),
    };
    plan.write_commands(DEFAULT_MANAGE);
    plan
}

/// Whether a node of the newer graph is already applied in the older state
/// (memoised over one pair).
struct KnownByOlder<'p> {
    pair: &'p Pair,
    memo: BTreeMap<MigrationKey, bool>,
}

impl<'p> KnownByOlder<'p> {
    fn new(pair: &'p Pair) -> KnownByOlder<'p> {
        // The older code also knows every name its own squashes replace,
        // even where the replaced files are gone (design: "O knows every
        // migration on its disk plus every name in one of their `replaces`").
        let memo = older_replaced(pair)
            .into_iter()
            .map(|r| (r.clone(), true))
            .collect();
        KnownByOlder { pair, memo }
    }

    fn knows(&mut self, k: &MigrationKey) -> bool {
        known_by_older(k, self.pair, &mut self.memo, 0)
    }
}

/// The names the older revision's squashes replace, in apps it migrates.
fn older_replaced(pair: &Pair) -> BTreeSet<&MigrationKey> {
    let older = &pair.older;
    older
        .files
        .iter()
        .flat_map(|f| f.migration.replaces.iter())
        .filter(|r| {
            older
                .project
                .app(&r.app)
                .is_some_and(|a| a.migrations_dir.is_some())
        })
        .collect()
}

/// The labels of the apps a revision installs from the repository.
fn installed(rev: &crate::django::Revision) -> BTreeSet<&str> {
    rev.project.repo_apps().map(|a| a.label.as_str()).collect()
}

/// What to unapply: per node of the newer graph, whether the older state
/// lacks it. A squash that straddles (replaces migrations the older code
/// knows and some it does not) is a problem.
fn what_to_unapply(
    pair: &Pair,
    known: &mut KnownByOlder<'_>,
    problems: &mut Vec<Finding>,
) -> Vec<bool> {
    let (newer, older) = (&pair.newer, &pair.older);
    let graph = &newer.graph;
    let installed_older = installed(older);
    let older_replaced = older_replaced(pair);
    let in_older = newer.files.matching(&older.files);
    let mut installed: Option<(&str, bool)> = None;
    let mut to_unapply: Vec<bool> = vec![false; graph.len()];
    for (n, unapply) in to_unapply.iter_mut().enumerate() {
        let fi = graph.file(n);
        let f = newer.files.at(fi);
        let k = &f.key;
        // A squash the older code has itself is known by its name: it does
        // not straddle, whatever became of the files it replaces.
        let squash_in_older = || in_older[fi].is_some() && installed_older.contains(k.app.as_str());
        if !f.migration.replaces.is_empty() && !squash_in_older() {
            let leaves = replaced_leaves(k, pair);
            let n_known = leaves
                .iter()
                .filter(|r| {
                    (older.files.contains_key(r) && installed_older.contains(r.app.as_str()))
                        || older_replaced.contains(r)
                })
                .count();
            if n_known > 0 && n_known < leaves.len() {
                problems.push(
                    Finding::new(
                        Code::SquashStraddles,
                        format!(
                            "squash {k} ({}) replaces migrations {} knows and migrations it does not; Django cannot stop halfway through a squash, so the database cannot be brought back exactly",
                            f.file, older.snap.label
                        ),
                    )
                    .at(f.file.clone(), 0),
                );
            }
        }
        // Nodes come sorted by app: whether the older code migrates the app
        // is looked up once per app.
        let app_installed = match installed {
            Some((app, v)) if app == k.app => v,
            _ => {
                let v = older
                    .project
                    .app(&k.app)
                    .is_some_and(|a| a.migrations_dir.is_some());
                installed = Some((&k.app, v));
                v
            }
        };
        *unapply = !((in_older[fi].is_some() && app_installed) || known.knows(k));
    }
    to_unapply
}

/// Per-app targets (`None`: `zero`) of the apps with something to unapply,
/// or the raw fallback inside a squash; an app without an exact target is a
/// problem.
fn targets(
    pair: &Pair,
    apps: &BTreeSet<&str>,
    to_unapply: &[bool],
    known: &mut KnownByOlder<'_>,
    problems: &mut Vec<Finding>,
) -> (BTreeMap<String, Option<Node>>, Option<RawFallback>) {
    let (newer, older) = (&pair.newer, &pair.older);
    let graph = &newer.graph;
    let installed_older = installed(older);
    let mut targets: BTreeMap<String, Option<Node>> = BTreeMap::new();
    let mut fallback: Option<RawFallback> = None;
    for app in apps {
        let target = if older.loaded.contains(*app)
            && installed_older.contains(app)
            && older.files.app(app).next().is_some()
        {
            let leaves = older.graph.leaves(app);
            let Some(leaf) = leaves.first() else { continue };
            match graph.standing_for(leaf) {
                Some(n) if known.knows(graph.key(n)) => Some(n),
                Some(n) => {
                    if let Some(files) =
                        raw_fallback(pair, leaf, to_unapply, &mut |k| known.knows(k))
                    {
                        fallback = Some(RawFallback {
                            app: (*app).to_string(),
                            target: leaf.name.to_string(),
                            squash: graph.file(n),
                            files,
                        });
                        continue;
                    }
                    problems.push(Finding::new(
                        Code::LeafSquashedWithNewer,
                        format!(
                            "{app}: the older leaf {} is replaced in {} by squash {}, which also contains newer migrations; no migrate target reaches the older state",
                            leaf.name, newer.snap.label, graph.key(n).name
                        ),
                    ));
                    continue;
                }
                None => {
                    problems.push(Finding::new(
                        Code::LeafMissing,
                        format!(
                            "{app}: the older leaf {} does not exist in {}, so the newer code cannot migrate back to it",
                            leaf.name, newer.snap.label
                        ),
                    ));
                    continue;
                }
            }
        } else {
            None
        };
        if let Some(t) = target
            && let Some(ambiguous) = ambiguous_target(newer, app, &graph.key(t).name)
        {
            problems.push(ambiguous);
            continue;
        }
        targets.insert((*app).to_string(), target);
    }
    (targets, fallback)
}

/// Command order, verified by simulating Django's executor; where no
/// per-app order is exact, one executor step. Nothing is ordered once a
/// problem is found (the plan cannot be exact anyway).
fn command_order(
    pair: &Pair,
    targets: &BTreeMap<String, Option<Node>>,
    fallback: Option<&RawFallback>,
    to_unapply: &[bool],
    problems: &mut Vec<Finding>,
) -> (Vec<Step>, Vec<Finding>) {
    if let Some(fb) = fallback {
        let steps = raw_fallback_step(&pair.newer, fb, problems)
            .into_iter()
            .collect();
        return (steps, Vec::new());
    }
    if problems.is_empty() && to_unapply.contains(&true) {
        match per_app_or_executor(pair, targets, to_unapply) {
            Ok(found) => return found,
            Err(e) => problems.push(e),
        }
    }
    (Vec::new(), Vec::new())
}

/// The findings about what unapplying does.
#[derive(Debug, Default)]
struct Findings {
    irreversible: Vec<Irreversible>,
    data_loss: Vec<DataLoss>,
    dynamic: Vec<Dynamic>,
}

/// Findings: irreversible operations, data loss and dynamic parts of the
/// migrations to unapply; a migration whose operations could not be read is
/// a problem.
fn findings(
    newer: &crate::django::Revision,
    order_files: &[usize],
    read: &UnappliedOperations,
    problems: &mut Vec<Finding>,
) -> Findings {
    let mut out = Findings::default();
    for &fi in order_files {
        let f = newer.files.at(fi);
        let k = &f.key;
        let ops = match read.of(fi) {
            Ok(ops) => ops,
            Err(e) => {
                problems.push(
                    Finding::new(
                        Code::UnreadableOperations,
                        format!("cannot read the operations of {k}: {e}"),
                    )
                    .at(f.file.clone(), 0),
                );
                continue;
            }
        };
        for j in ops {
            let op = &j.operation;
            if j.reversibility != Reversibility::Reversible {
                let reason = j.reason.clone().unwrap_or_default();
                let (code, verb) = if j.reversibility == Reversibility::Irreversible {
                    (Code::Irreversible, "cannot be unapplied")
                } else {
                    (Code::MaybeIrreversible, "may not be unapplied")
                };
                let why = if reason.is_empty() {
                    String::new()
                } else {
                    format!(": {reason}")
                };
                out.irreversible.push(Irreversible {
                    code,
                    message: format!("{} in {k} ({}:{}) {verb}{why}", op.kind, f.file, op.line),
                    app: k.app.to_string(),
                    migration: k.name.to_string(),
                    operation: op.kind.clone(),
                    file: f.file.clone(),
                    line: op.line,
                    certainty: j.reversibility.clone(),
                    reason,
                });
            }
            if let Some(what) = &op.data_loss {
                out.data_loss.push(DataLoss {
                    code: Code::DataLoss,
                    message: format!("unapplying {k} {what}"),
                    app: k.app.to_string(),
                    migration: k.name.to_string(),
                    what: what.clone(),
                    file: f.file.clone(),
                    line: op.line,
                });
            }
        }
        // The class's own parts and its operations' (read with them).
        for d in crate::django::migration::by_line(&f.migration.dynamic, read.dynamic_of(fi)) {
            out.dynamic.push(Dynamic {
                code: Code::DynamicMigration,
                message: format!(
                    "{k} ({}:{}) cannot be read exactly: {}",
                    f.file, d.line, d.what
                ),
                app: k.app.to_string(),
                migration: k.name.to_string(),
                file: f.file.clone(),
                line: d.line,
                what: d.what.clone(),
            });
        }
        for s in crate::django::graph::unresolved_swappables(&newer.project, &f.migration) {
            let what = format!(
                "depends on swappable setting {s}, which the settings module does not define (set at run time?)"
            );
            out.dynamic.push(Dynamic {
                code: Code::RuntimeSwappable,
                message: format!("{k} ({}) {what}", f.file),
                app: k.app.to_string(),
                migration: k.name.to_string(),
                file: f.file.clone(),
                line: 0,
                what,
            });
        }
    }
    out
}

/// Apps only the older code migrates, with their older leaf.
fn old_only_apps(pair: &Pair) -> Vec<OldOnlyApp> {
    let installed_newer = installed(&pair.newer);
    let older = &pair.older;
    older
        .project
        .repo_apps()
        .filter(|app| !installed_newer.contains(app.label.as_str()))
        .filter_map(|app| {
            older
                .graph
                .leaves(&app.label)
                .first()
                .map(|leaf| OldOnlyApp {
                    app: app.label.clone(),
                    leaf: leaf.name.to_string(),
                })
        })
        .collect()
}

/// The migrations of the planned apps that must stay applied, and what each
/// squash among them and the unapplied replaces (for evidence checks).
#[allow(clippy::type_complexity)]
fn what_stays_applied(
    pair: &Pair,
    d: &Decision<'_>,
) -> (Vec<MigrationKey>, BTreeMap<MigrationKey, Vec<MigrationKey>>) {
    let newer = &pair.newer;
    let graph = &newer.graph;
    let step_apps: BTreeSet<&str> = if d.steps.is_empty() {
        BTreeSet::new()
    } else {
        d.apps.clone()
    };
    // Nodes are sorted by key: each app's are one range, in app order.
    let keep: Vec<Node> = step_apps
        .iter()
        .flat_map(|app| graph.app_nodes(app))
        .filter(|n| !d.to_unapply[*n])
        .collect();
    if let Some(fb) = &d.fallback {
        // After the fallback the squash is partly applied: Django shows
        // (and `showmigrations` lists) the migrations it replaces instead.
        let keep_applied = newer
            .files
            .iter()
            .enumerate()
            .filter(|(i, f)| {
                step_apps.contains(f.key.app.as_str())
                    && f.migration.replaces.is_empty()
                    && !fb.files.contains(i)
            })
            .map(|(_, f)| f.key.clone())
            .collect();
        let squash = newer.files.at(fb.squash);
        let squashes = BTreeMap::from([(squash.key.clone(), squash.migration.replaces.clone())]);
        return (keep_applied, squashes);
    }
    let keep_applied = keep.iter().map(|n| graph.key(*n).clone()).collect();
    let squashes = keep
        .iter()
        .chain(d.order.iter())
        .filter_map(|n| {
            let f = newer.files.at(graph.file(*n));
            let r = &f.migration.replaces;
            (!r.is_empty()).then(|| (f.key.clone(), r.clone()))
        })
        .collect();
    (keep_applied, squashes)
}

/// What was assumed where the settings of either revision cannot be read
/// exactly (each note once).
fn notes(pair: &Pair) -> Vec<Finding> {
    // Unplanned directories that are only notes (assumed, not blocking).
    let mut notes: Vec<Finding> = pair
        .unplanned
        .iter()
        .filter(|f| f.code.severity() == crate::finding::Severity::Note)
        .cloned()
        .collect();
    for rev in [&pair.newer, &pair.older] {
        if let Some(why) = &rev.project.settings_assumed {
            let note = Finding::new(Code::AssumedSettingsModule, why.clone());
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
        for (file, line, what) in &rev.project.assumptions {
            let note = Finding::new(
                Code::AssumedExternalApps,
                format!("{file} line {line}: {what}"),
            )
            .at(file.clone(), *line);
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
    }
    notes
}

/// Check an observed migration state against the plan: every planned
/// migration unapplied, every other migration of the planned apps applied.
/// `state` says whether a migration is applied (`None`: not in the evidence).
pub fn verify_state(
    plan: &Plan,
    state: &dyn Fn(&MigrationKey) -> Option<bool>,
) -> Result<(), String> {
    // A migration missing from the evidence is applied when a squash that
    // replaces it shows as applied (`showmigrations` lists the squash).
    let state = |k: &MigrationKey| {
        state(k).or_else(|| {
            plan.squashes
                .iter()
                .filter(|(_, parts)| parts.contains(k))
                .find_map(|(s, _)| state(s).filter(|applied| *applied))
        })
    };
    for k in &plan.unapply {
        match state(k) {
            Some(false) => {}
            Some(true) => return Err(format!("{}.{} is still applied", k.app, k.name)),
            None => return Err(format!("{}.{} is missing from the evidence", k.app, k.name)),
        }
    }
    for k in &plan.keep_applied {
        match state(k) {
            Some(true) => {}
            Some(false) => {
                return Err(format!(
                    "{}.{} should still be applied but is not",
                    k.app, k.name
                ));
            }
            None => return Err(format!("{}.{} is missing from the evidence", k.app, k.name)),
        }
    }
    Ok(())
}

/// `migrate APP OLD_LEAF` where the newer revision replaced the older leaf
/// by a squash that also stands for newer migrations.
#[derive(Debug)]
struct RawFallback {
    app: String,
    /// The older leaf's name.
    target: String,
    /// The squash's file index.
    squash: usize,
    /// The files Django unapplies, dependents first.
    files: Vec<usize>,
}

/// Django's executor reloads the graph without replacements when the
/// target is a replaced migration (`MigrationExecutor.migration_plan`), so
/// `migrate APP OLD_LEAF` stops inside the squash. The files it unapplies,
/// when they are exactly what must go (every node to unapply, a squash by
/// the parts the older revision does not know) and none is a squash.
fn raw_fallback(
    pair: &Pair,
    leaf: &MigrationKey,
    to_unapply: &[bool],
    known: &mut dyn FnMut(&MigrationKey) -> bool,
) -> Option<Vec<usize>> {
    let newer = &pair.newer;
    let graph = &newer.graph;
    let raw = graph.raw_unapply(&newer.files, newer.files.position(&leaf.app, &leaf.name)?)?;
    let mut want = BTreeSet::new();
    for n in (0..graph.len()).filter(|n| to_unapply[*n]) {
        let f = newer.files.at(graph.file(n));
        if f.migration.replaces.is_empty() {
            want.insert(graph.file(n));
            continue;
        }
        for k in replaced_leaves(&f.key, pair) {
            if !known(&k) {
                want.insert(newer.files.position(&k.app, &k.name)?);
            }
        }
    }
    let got: BTreeSet<usize> = raw.iter().copied().collect();
    let plain = raw
        .iter()
        .all(|f| newer.files.at(*f).migration.replaces.is_empty());
    (got == want && plain).then_some(raw)
}

/// Whether the older revision has `k` applied after a fresh migrate: it has
/// the file, or `k` is a squash of migrations it all has.
fn known_by_older(
    k: &MigrationKey,
    pair: &Pair,
    memo: &mut BTreeMap<MigrationKey, bool>,
    depth: u32,
) -> bool {
    let older = &pair.older;
    let installed = || {
        older
            .project
            .app(&k.app)
            .is_some_and(|a| a.migrations_dir.is_some())
    };
    if older.files.contains_key(k) && installed() {
        return true;
    }
    if let Some(v) = memo.get(k) {
        return *v;
    }
    let v = if let (Some(f), true) = (pair.newer.files.get(k), depth < 32) {
        !f.migration.replaces.is_empty()
            && f.migration
                .replaces
                .iter()
                .all(|r| known_by_older(r, pair, memo, depth + 1))
    } else {
        false
    };
    memo.insert(k.clone(), v);
    v
}

/// Every non-squash migration a squash stands for (nested squashes followed).
fn replaced_leaves(k: &MigrationKey, pair: &Pair) -> BTreeSet<MigrationKey> {
    let mut out = BTreeSet::new();
    let mut stack = vec![k.clone()];
    let mut guard = 0;
    while let Some(cur) = stack.pop() {
        guard += 1;
        if guard > 100_000 {
            break;
        }
        match pair.newer.files.get(&cur) {
            Some(f) if !f.migration.replaces.is_empty() => {
                stack.extend(f.migration.replaces.iter().cloned())
            }
            _ if cur != *k => {
                out.insert(cur);
            }
            _ => {}
        }
    }
    out
}

/// What one `migrate APP TARGET` unapplies: as a mark per node of the
/// graph, and as the list of the marked nodes in increasing order.
struct Unapplied {
    set: Vec<bool>,
    nodes: Vec<Node>,
}

/// What `migrate APP TARGET` unapplies given what is applied, per Django's
/// `MigrationExecutor.migration_plan`; `Err` when the target is not applied
/// (Django would migrate forwards instead).
fn simulate_one(
    graph: &Graph,
    app: &str,
    target: Option<Node>,
    applied: &[bool],
) -> Result<Unapplied, String> {
    let starts: Vec<Node> = match target {
        None => graph.roots(app),
        Some(t) => {
            if !applied[t] {
                return Err(format!(
                    "{app}: target {} would already be unapplied when its command runs",
                    graph.key(t).name
                ));
            }
            graph
                .children(t)
                .iter()
                .copied()
                .filter(|c| graph.in_app(*c, app))
                .collect()
        }
    };
    let mut set = vec![false; graph.len()];
    let mut nodes = Vec::new();
    for s in starts {
        graph.mark_descendants(s, &mut set, &mut nodes);
    }
    nodes.retain(|n| {
        set[*n] = applied[*n];
        applied[*n]
    });
    nodes.sort_unstable();
    Ok(Unapplied { set, nodes })
}

fn run(
    graph: &Graph,
    order: &[&String],
    targets: &BTreeMap<String, Option<Node>>,
    want: &[bool],
) -> Result<Vec<MigrateStep>, String> {
    let mut applied = vec![true; graph.len()];
    let mut steps = Vec::new();
    for app in order {
        let target = targets[*app];
        let Unapplied { set, nodes } = simulate_one(graph, app, target, &applied)?;
        if let Some(&extra) = nodes.iter().find(|n| !want[**n]) {
            let k = graph.key(extra);
            return Err(format!(
                "`migrate {app} {}` would also unapply {}.{}, which the older revision has",
                target.map_or("zero", |t| graph.key(t).name.as_str()),
                k.app,
                k.name
            ));
        }
        let unapply = graph
            .unapply_order_of(&nodes, &set)
            .into_iter()
            .map(|n| {
                let k = graph.key(n);
                if k.app == **app {
                    k.name.to_string()
                } else {
                    format!("{}.{}", k.app, k.name)
                }
            })
            .collect();
        for n in &nodes {
            applied[*n] = false;
        }
        steps.push(MigrateStep {
            app: (*app).clone(),
            target: target.map_or_else(|| "zero".to_string(), |t| graph.key(t).name.to_string()),
            unapply,
        });
    }
    if let Some(left) = (0..graph.len()).find(|n| want[*n] && applied[*n]) {
        let k = graph.key(left);
        return Err(format!(
            "no order of per-app commands unapplies {}.{} without unapplying migrations the older revision has",
            k.app, k.name
        ));
    }
    Ok(steps)
}

/// Django takes a target by prefix: one that starts two migration names of
/// its app is rejected as ambiguous.
fn ambiguous_target(newer: &crate::django::Revision, app: &str, name: &str) -> Option<Finding> {
    let matching = newer
        .files
        .app(app)
        .filter(|f| f.key.name.starts_with(name))
        .count();
    (matching > 1).then(|| {
        Finding::new(
            Code::AmbiguousTarget,
            format!(
                "{app}: target {name} is a prefix of another migration name in {}; Django rejects it as ambiguous",
                newer.snap.label
            ),
        )
    })
}

/// The one `migrate APP OLD_LEAF` of the raw-graph fallback: the squash is
/// not stopped halfway, Django unapplies its newer parts one by one (the
/// "squash straddles" finding for that squash no longer applies). `None`
/// when another problem blocks the plan or the target is ambiguous.
fn raw_fallback_step(
    newer: &crate::django::Revision,
    fb: &RawFallback,
    problems: &mut Vec<Finding>,
) -> Option<Step> {
    let squash_file = &newer.files.at(fb.squash).file;
    problems.retain(|p| !(p.code == Code::SquashStraddles && p.file.as_ref() == Some(squash_file)));
    if let Some(ambiguous) = ambiguous_target(newer, &fb.app, &fb.target) {
        problems.push(ambiguous);
        return None;
    }
    if !problems.is_empty() {
        return None;
    }
    let unapply = fb
        .files
        .iter()
        .map(|f| {
            let k = &newer.files.at(*f).key;
            if k.app == fb.app {
                k.name.to_string()
            } else {
                format!("{}.{}", k.app, k.name)
            }
        })
        .collect();
    Some(Step::Migrate(MigrateStep {
        app: fb.app.clone(),
        target: fb.target.clone(),
        unapply,
    }))
}

/// Stage: the per-app commands when some order of them unapplies exactly the
/// planned set; otherwise one executor step that unapplies exactly that set,
/// with every planned migration that no per-app target reaches listed
/// (`unreachable-by-migrate`). `Err` only when neither is exact.
fn per_app_or_executor(
    pair: &Pair,
    targets: &BTreeMap<String, Option<Node>>,
    want: &[bool],
) -> Result<(Vec<Step>, Vec<Finding>), Finding> {
    let graph = &pair.newer.graph;
    let why = match order_commands(graph, targets, want) {
        Ok(s) => return Ok((s.into_iter().map(Step::Migrate).collect(), Vec::new())),
        Err(e) => e,
    };
    let step = executor_step(graph, want, why.clone()).map_err(|e| {
        Finding::new(
            Code::NoExactOrder,
            format!("{why}; and no backwards plan for Django's executor is exact either: {e}"),
        )
    })?;
    let name = |n: Node| format!("{}.{}", graph.key(n).app, graph.key(n).name);
    let unreachable = unreachable_by_migrate(graph, want)
        .into_iter()
        .map(|n| {
            let f = pair.newer.files.at(graph.file(n));
            let (kept, planned): (Vec<Node>, Vec<Node>) =
                graph.parents(n).iter().partition(|p| !want[**p]);
            let hangs = if kept.is_empty() {
                let list: Vec<String> = planned.into_iter().map(name).collect();
                format!("depends on {}, which no per-app target reaches either", list.join(", "))
            } else {
                let list: Vec<String> = kept.into_iter().map(name).collect();
                format!("hangs off {}, which {} has", list.join(", "), pair.older.snap.label)
            };
            Finding::new(
                Code::UnreachableByMigrate,
                format!(
                    "{} ({}) {hangs}: no per-app `migrate APP TARGET` unapplies it without also unapplying migrations {} has; the executor step unapplies it exactly",
                    name(n),
                    f.file,
                    pair.older.snap.label
                ),
            )
            .at(f.file.clone(), 0)
        })
        .collect();
    Ok((vec![Step::Executor(step)], unreachable))
}

/// Stage: the planned migrations that no single per-app command unapplies
/// without also unapplying a migration outside the planned set (`migrate APP
/// TARGET` unapplies everything depending on TARGET's children in APP). The
/// candidates are the same-app parents of planned migrations (and `zero` for
/// an app's first planned root): every exact command is one of them. Whether
/// a command is exact does not depend on the order: the migrations outside the
/// set stay applied throughout.
fn unreachable_by_migrate(graph: &Graph, want: &[bool]) -> Vec<Node> {
    let all_applied = vec![true; graph.len()];
    let mut candidates: BTreeSet<(&str, Option<Node>)> = BTreeSet::new();
    for n in (0..graph.len()).filter(|n| want[*n]) {
        let app = graph.key(n).app.as_str();
        let mut same_app = graph
            .parents(n)
            .iter()
            .filter(|p| graph.in_app(**p, app))
            .peekable();
        if same_app.peek().is_none() {
            candidates.insert((app, None));
        }
        candidates.extend(same_app.map(|p| (app, Some(*p))));
    }
    let mut reached = vec![false; graph.len()];
    for (app, target) in candidates {
        let Ok(unapplied) = simulate_one(graph, app, target, &all_applied) else {
            continue;
        };
        if unapplied.nodes.iter().all(|n| want[*n]) {
            for n in unapplied.nodes {
                reached[n] = true;
            }
        }
    }
    (0..graph.len())
        .filter(|n| want[*n] && !reached[*n])
        .collect()
}

/// Stage: the executor step for the planned set, in Django's unapply order
/// (children before parents), checked statically: every migration depending
/// on a planned one is planned and comes before it. The step's code checks it
/// again against the loader when it runs.
fn executor_step(graph: &Graph, want: &[bool], why: String) -> Result<ExecutorStep, String> {
    let name = |n: Node| format!("{}.{}", graph.key(n).app, graph.key(n).name);
    let order = graph.unapply_order(want);
    if order.len() != want.iter().filter(|w| **w).count() {
        return Err("the planned migrations depend on each other in a cycle".to_string());
    }
    let mut position = vec![usize::MAX; graph.len()];
    for (i, n) in order.iter().enumerate() {
        position[*n] = i;
    }
    for (i, &n) in order.iter().enumerate() {
        for &c in graph.children(n) {
            if !want[c] {
                return Err(format!(
                    "{} depends on {}, which is to be unapplied, but is not to be unapplied itself",
                    name(c),
                    name(n)
                ));
            }
            if position[c] > i {
                return Err(format!(
                    "{} would be unapplied before {}, which depends on it",
                    name(n),
                    name(c)
                ));
            }
        }
    }
    let keep: BTreeSet<Node> = order
        .iter()
        .flat_map(|n| graph.parents(*n).iter().copied())
        .filter(|p| !want[*p])
        .collect();
    Ok(ExecutorStep {
        kind: ExecutorKind::Executor,
        unapply: order.into_iter().map(name).collect(),
        keep_applied: keep.into_iter().map(name).collect(),
        why,
    })
}

/// Dependents first: an app whose new migrations depend on another app's new
/// migrations runs before it. Verified by simulation; other orders are tried
/// when the first fails.
fn order_commands(
    graph: &Graph,
    targets: &BTreeMap<String, Option<Node>>,
    want: &[bool],
) -> Result<Vec<MigrateStep>, String> {
    let apps: Vec<&String> = targets.keys().collect();
    let mut after: BTreeMap<&String, BTreeSet<&String>> =
        apps.iter().map(|a| (*a, BTreeSet::new())).collect();
    let mut marks = vec![false; graph.len()];
    let mut marked = Vec::new();
    for k in (0..graph.len()).filter(|n| want[*n]) {
        for m in marked.drain(..) {
            marks[m] = false;
        }
        graph.mark_descendants(k, &mut marks, &mut marked);
        let own_app = &graph.key(k).app;
        for &d in marked.iter().filter(|d| want[**d]) {
            let dep_app = &graph.key(d).app;
            if dep_app != own_app
                && let (Some(dep), Some(own)) = (
                    apps.iter().find(|a| **a == dep_app),
                    apps.iter().find(|a| **a == own_app),
                )
            {
                // `dep`'s command must run before `own`'s.
                after.get_mut(own).map(|s| s.insert(*dep));
            }
        }
    }
    let mut order: Vec<&String> = Vec::new();
    let mut left: BTreeSet<&String> = apps.iter().copied().collect();
    while !left.is_empty() {
        let next = left
            .iter()
            .find(|a| after[**a].iter().all(|b| !left.contains(b)))
            .or_else(|| left.iter().next())
            .copied()
            .unwrap_or(apps[0]);
        left.remove(next);
        order.push(next);
    }
    let first = run(graph, &order, targets, want);
    if first.is_ok() || order.len() > 7 {
        return first;
    }
    let mut perm = order.clone();
    let mut result = first;
    permute(&mut perm, 0, &mut |p| {
        if let Ok(s) = run(graph, p, targets, want) {
            result = Ok(s);
            true
        } else {
            false
        }
    });
    result
}

fn permute<'a>(
    v: &mut Vec<&'a String>,
    k: usize,
    f: &mut dyn FnMut(&[&'a String]) -> bool,
) -> bool {
    if k == v.len() {
        return f(v);
    }
    for i in k..v.len() {
        v.swap(k, i);
        if permute(v, k + 1, f) {
            return true;
        }
        v.swap(k, i);
    }
    false
}

fn fingerprint(steps: &[Step], unapply: &[MigrationKey]) -> String {
    let mut h = Sha256::new();
    for s in steps {
        match s {
            Step::Migrate(s) => h.update(format!("step\0{}\0{}\n", s.app, s.target)),
            Step::Executor(s) => h.update(format!("executor\0{}\n", s.unapply.join("\0"))),
        }
    }
    for MigrationKey { app: a, name: n } in unapply {
        h.update(format!("unapply\0{a}\0{n}\n"));
    }
    crate::hex::encode(&h.finalize())
}

#[cfg(test)]
mod tests;
