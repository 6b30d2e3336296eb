//! The backward plan: from two loaded revisions to the ordered per-app
//! `migrate APP TARGET` commands that bring a database migrated by the newer
//! code back to what a fresh migrate of the older code gives — verified by
//! simulating Django's executor on the newer graph.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::django::graph::Node;
use crate::django::migration::Reversibility;
use crate::django::{Graph, Key, Loader, Pair};
use crate::finding::{Code, Finding};

/// One `migrate APP TARGET` command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Step {
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
    pub unapply: Vec<(String, String)>,
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
    /// What was assumed where the settings cannot be read exactly (one line each).
    pub notes: Vec<Finding>,
    /// Hash over the steps and the set to unapply.
    pub fingerprint: String,
    /// Migrations of the planned apps that must stay applied (for evidence checks).
    #[serde(skip)]
    pub keep_applied: Vec<Key>,
    /// What each squash in `unapply`/`keep_applied` replaces.
    #[serde(skip)]
    pub squashes: BTreeMap<Key, Vec<Key>>,
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

    /// `commands` from `steps` and `post_commands` from `old_only_apps`.
    fn write_commands(&mut self, manage: &str) {
        self.commands = self
            .steps
            .iter()
            .map(|s| migrate_command(manage, &s.app, Some(&s.target)))
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

/// Compute the backward plan for going from `pair.newer` to `pair.older`.
pub fn compute(loader: &Loader<'_>, pair: &Pair) -> Plan {
    let newer = &pair.newer;
    let older = &pair.older;
    let graph = &newer.graph;
    let mut problems = Vec::new();

    let installed_older: BTreeSet<&str> = older
        .project
        .repo_apps()
        .map(|a| a.label.as_str())
        .collect();
    // The older code also knows every name its own squashes replace, even
    // where the replaced files are gone (design: "O knows every migration on
    // its disk plus every name in one of their `replaces`").
    let older_replaced: BTreeSet<&Key> = older
        .files
        .iter()
        .flat_map(|f| f.migration.replaces.iter())
        .filter(|r| {
            older
                .project
                .app(&r.0)
                .is_some_and(|a| a.migrations_dir.is_some())
        })
        .collect();

    // Is a node of the newer graph already applied in the older state?
    let mut memo: BTreeMap<Key, bool> = older_replaced
        .iter()
        .map(|r| ((*r).clone(), true))
        .collect();
    let mut known = |k: &Key| known_by_older(k, pair, &mut memo, 0);
    let in_older = newer.files.matching(&older.files);
    let mut installed: Option<(&str, bool)> = None;
    let mut to_unapply: Vec<bool> = vec![false; graph.len()];
    for (n, unapply) in to_unapply.iter_mut().enumerate() {
        let fi = graph.file(n);
        let f = newer.files.at(fi);
        let k = &f.key;
        // A squash the older code has itself is known by its name: it does
        // not straddle, whatever became of the files it replaces.
        let squash_in_older = older.files.contains_key(k) && installed_older.contains(k.0.as_str());
        if !f.migration.replaces.is_empty() && !squash_in_older {
            let leaves = replaced_leaves(k, pair);
            let n_known = leaves
                .iter()
                .filter(|r| {
                    (older.files.contains_key(r) && installed_older.contains(r.0.as_str()))
                        || older_replaced.contains(r)
                })
                .count();
            if n_known > 0 && n_known < leaves.len() {
                problems.push(
                    Finding::new(
                        Code::SquashStraddles,
                        format!(
                            "squash {}.{} ({}) replaces migrations {} knows and migrations it does not; Django cannot stop halfway through a squash, so the database cannot be brought back exactly",
                            k.0, k.1, f.file, older.snap.label
                        ),
                    )
                    .at(f.file.clone(), 0),
                );
            }
        }
        // Nodes come sorted by app: whether the older code migrates the app
        // is looked up once per app.
        let app_installed = match installed {
            Some((app, v)) if app == k.0 => v,
            _ => {
                let v = older
                    .project
                    .app(&k.0)
                    .is_some_and(|a| a.migrations_dir.is_some());
                installed = Some((&k.0, v));
                v
            }
        };
        *unapply = !((in_older[fi].is_some() && app_installed) || known(k));
    }

    // Per-app targets.
    let apps: BTreeSet<&str> = (0..graph.len())
        .filter(|n| to_unapply[*n])
        .map(|n| graph.key(n).0.as_str())
        .collect();
    let mut targets: BTreeMap<String, Option<Node>> = BTreeMap::new();
    for app in &apps {
        let target = if older.loaded.contains(*app)
            && installed_older.contains(app)
            && older.files.app(app).next().is_some()
        {
            let leaves = older.graph.leaves(app);
            let Some(leaf) = leaves.first() else { continue };
            match graph.standing_for(leaf) {
                Some(n) if known(graph.key(n)) => Some(n),
                Some(n) => {
                    problems.push(Finding::new(
                        Code::LeafSquashedWithNewer,
                        format!(
                            "{app}: the older leaf {} is replaced in {} by squash {}, which also contains newer migrations; no migrate target reaches the older state",
                            leaf.1, newer.snap.label, graph.key(n).1
                        ),
                    ));
                    continue;
                }
                None => {
                    problems.push(Finding::new(
                        Code::LeafMissing,
                        format!(
                            "{app}: the older leaf {} does not exist in {}, so the newer code cannot migrate back to it",
                            leaf.1, newer.snap.label
                        ),
                    ));
                    continue;
                }
            }
        } else {
            None
        };
        if let Some(t) = target {
            let name = &graph.key(t).1;
            let matching = newer
                .files
                .app(app)
                .filter(|f| f.key.1.starts_with(name.as_str()))
                .count();
            if matching > 1 {
                problems.push(Finding::new(
                    Code::AmbiguousTarget,
                    format!(
                        "{app}: target {name} is a prefix of another migration name in {}; Django rejects it as ambiguous",
                        newer.snap.label
                    ),
                ));
                continue;
            }
        }
        targets.insert((*app).to_string(), target);
    }

    // Order and verify by simulating Django's executor.
    let mut steps = Vec::new();
    if problems.is_empty() && to_unapply.contains(&true) {
        match order_commands(graph, &targets, &to_unapply) {
            Ok(s) => steps = s,
            Err(e) => problems.push(Finding::new(Code::NoExactOrder, e)),
        }
    }

    let order = graph.unapply_order(&to_unapply);
    let mut irreversible = Vec::new();
    let mut data_loss = Vec::new();
    let mut dynamic = Vec::new();
    for &n in &order {
        let f = newer.files.at(graph.file(n));
        let k = &f.key;
        let complete = match loader.complete(newer, f) {
            Ok(m) => m,
            Err(e) => {
                problems.push(
                    Finding::new(
                        Code::UnreadableOperations,
                        format!("cannot read the operations of {}.{}: {e}", k.0, k.1),
                    )
                    .at(f.file.clone(), 0),
                );
                continue;
            }
        };
        for op in &complete.operations {
            let (certainty, reason) = if op.custom.is_some() {
                loader.custom_reversibility(newer, f, op)
            } else {
                (op.reversibility.clone(), op.reason.clone())
            };
            if certainty != Reversibility::Reversible {
                let reason = reason.unwrap_or_default();
                let (code, verb) = if certainty == Reversibility::Irreversible {
                    (Code::Irreversible, "cannot be unapplied")
                } else {
                    (Code::MaybeIrreversible, "may not be unapplied")
                };
                let why = if reason.is_empty() {
                    String::new()
                } else {
                    format!(": {reason}")
                };
                irreversible.push(Irreversible {
                    code,
                    message: format!(
                        "{} in {}.{} ({}:{}) {verb}{why}",
                        op.kind, k.0, k.1, f.file, op.line
                    ),
                    app: k.0.clone(),
                    migration: k.1.clone(),
                    operation: op.kind.clone(),
                    file: f.file.clone(),
                    line: op.line,
                    certainty,
                    reason,
                });
            }
            if let Some(what) = &op.data_loss {
                data_loss.push(DataLoss {
                    code: Code::DataLoss,
                    message: format!("unapplying {}.{} {what}", k.0, k.1),
                    app: k.0.clone(),
                    migration: k.1.clone(),
                    what: what.clone(),
                    file: f.file.clone(),
                    line: op.line,
                });
            }
        }
        for d in &f.migration.dynamic {
            dynamic.push(Dynamic {
                code: Code::DynamicMigration,
                message: format!(
                    "{}.{} ({}:{}) cannot be read exactly: {}",
                    k.0, k.1, f.file, d.line, d.what
                ),
                app: k.0.clone(),
                migration: k.1.clone(),
                file: f.file.clone(),
                line: d.line,
                what: d.what.clone(),
            });
        }
        for s in crate::django::graph::unresolved_swappables(&newer.project, &f.migration) {
            let what = format!(
                "depends on swappable setting {s}, which the settings module does not define (set at run time?)"
            );
            dynamic.push(Dynamic {
                code: Code::RuntimeSwappable,
                message: format!("{}.{} ({}) {what}", k.0, k.1, f.file),
                app: k.0.clone(),
                migration: k.1.clone(),
                file: f.file.clone(),
                line: 0,
                what,
            });
        }
    }

    // Apps only the older code migrates.
    let installed_newer: BTreeSet<&str> = newer
        .project
        .repo_apps()
        .map(|a| a.label.as_str())
        .collect();
    let mut old_only_apps = Vec::new();
    for app in older.project.repo_apps() {
        if installed_newer.contains(app.label.as_str()) {
            continue;
        }
        if let Some(leaf) = older.graph.leaves(&app.label).first() {
            old_only_apps.push(OldOnlyApp {
                app: app.label.clone(),
                leaf: leaf.1.clone(),
            });
        }
    }
    let step_apps: BTreeSet<&str> = steps.iter().map(|s| s.app.as_str()).collect();
    let keep: Vec<Node> = (0..graph.len())
        .filter(|n| !to_unapply[*n] && step_apps.contains(graph.key(*n).0.as_str()))
        .collect();
    let keep_applied: Vec<Key> = keep.iter().map(|n| graph.key(*n).clone()).collect();
    let unapply: Vec<(String, String)> = order.iter().map(|n| graph.key(*n).clone()).collect();
    let squashes = keep
        .iter()
        .chain(order.iter())
        .filter_map(|n| {
            let f = newer.files.at(graph.file(*n));
            let r = &f.migration.replaces;
            (!r.is_empty()).then(|| (f.key.clone(), r.clone()))
        })
        .collect();
    let fingerprint = fingerprint(&steps, &unapply);
    problems.extend(pair.unplanned.iter().cloned());
    let mut notes: Vec<Finding> = Vec::new();
    for rev in [newer, older] {
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
    let mut plan = Plan {
        from: newer.snap.label.clone(),
        to: older.snap.label.clone(),
        steps,
        unapply,
        irreversible,
        data_loss,
        commands: Vec::new(),
        old_only_apps,
        post_commands: Vec::new(),
        dynamic,
        problems,
        notes,
        fingerprint,
        keep_applied,
        squashes,
    };
    plan.write_commands(DEFAULT_MANAGE);
    plan
}

/// Check an observed migration state against the plan: every planned
/// migration unapplied, every other migration of the planned apps applied.
/// `state` says whether a migration is applied (`None`: not in the evidence).
pub fn verify_state(plan: &Plan, state: &dyn Fn(&Key) -> Option<bool>) -> Result<(), String> {
    for k in &plan.unapply {
        match state(k) {
            Some(false) => {}
            Some(true) => return Err(format!("{}.{} is still applied", k.0, k.1)),
            None => return Err(format!("{}.{} is missing from the evidence", k.0, k.1)),
        }
    }
    for k in &plan.keep_applied {
        match state(k) {
            Some(true) => {}
            Some(false) => {
                return Err(format!(
                    "{}.{} should still be applied but is not",
                    k.0, k.1
                ));
            }
            None => return Err(format!("{}.{} is missing from the evidence", k.0, k.1)),
        }
    }
    Ok(())
}

/// Whether the older revision has `k` applied after a fresh migrate: it has
/// the file, or `k` is a squash of migrations it all has.
fn known_by_older(k: &Key, pair: &Pair, memo: &mut BTreeMap<Key, bool>, depth: u32) -> bool {
    let older = &pair.older;
    let installed = || {
        older
            .project
            .app(&k.0)
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
fn replaced_leaves(k: &Key, pair: &Pair) -> BTreeSet<Key> {
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

/// What `migrate APP TARGET` unapplies given what is applied, per Django's
/// `MigrationExecutor.migration_plan`; `Err` when the target is not applied
/// (Django would migrate forwards instead).
fn simulate_one(
    graph: &Graph,
    app: &str,
    target: Option<Node>,
    applied: &[bool],
) -> Result<Vec<bool>, String> {
    let starts: Vec<Node> = match target {
        None => graph.roots(app),
        Some(t) => {
            if !applied[t] {
                return Err(format!(
                    "{app}: target {} would already be unapplied when its command runs",
                    graph.key(t).1
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
    for s in starts {
        graph.mark_descendants(s, &mut set);
    }
    for (m, a) in set.iter_mut().zip(applied) {
        *m &= *a;
    }
    Ok(set)
}

fn run(
    graph: &Graph,
    order: &[&String],
    targets: &BTreeMap<String, Option<Node>>,
    want: &[bool],
) -> Result<Vec<Step>, String> {
    let mut applied = vec![true; graph.len()];
    let mut steps = Vec::new();
    for app in order {
        let target = targets[*app];
        let set = simulate_one(graph, app, target, &applied)?;
        if let Some(extra) = (0..graph.len()).find(|n| set[*n] && !want[*n]) {
            let k = graph.key(extra);
            return Err(format!(
                "`migrate {app} {}` would also unapply {}.{}, which the older revision has",
                target.map_or("zero", |t| graph.key(t).1.as_str()),
                k.0,
                k.1
            ));
        }
        let unapply = graph
            .unapply_order(&set)
            .into_iter()
            .map(|n| {
                let k = graph.key(n);
                if k.0 == **app {
                    k.1.clone()
                } else {
                    format!("{}.{}", k.0, k.1)
                }
            })
            .collect();
        for (a, s) in applied.iter_mut().zip(&set) {
            *a &= !*s;
        }
        steps.push(Step {
            app: (*app).clone(),
            target: target.map_or_else(|| "zero".to_string(), |t| graph.key(t).1.clone()),
            unapply,
        });
    }
    if let Some(left) = (0..graph.len()).find(|n| want[*n] && applied[*n]) {
        let k = graph.key(left);
        return Err(format!(
            "no order of per-app commands unapplies {}.{} without unapplying migrations the older revision has",
            k.0, k.1
        ));
    }
    Ok(steps)
}

/// Dependents first: an app whose new migrations depend on another app's new
/// migrations runs before it. Verified by simulation; other orders are tried
/// when the first fails.
fn order_commands(
    graph: &Graph,
    targets: &BTreeMap<String, Option<Node>>,
    want: &[bool],
) -> Result<Vec<Step>, String> {
    let apps: Vec<&String> = targets.keys().collect();
    let mut after: BTreeMap<&String, BTreeSet<&String>> =
        apps.iter().map(|a| (*a, BTreeSet::new())).collect();
    let mut marks = vec![false; graph.len()];
    for k in (0..graph.len()).filter(|n| want[*n]) {
        marks.iter_mut().for_each(|m| *m = false);
        graph.mark_descendants(k, &mut marks);
        let own_app = &graph.key(k).0;
        for d in (0..graph.len()).filter(|d| marks[*d] && want[*d]) {
            let dep_app = &graph.key(d).0;
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

fn fingerprint(steps: &[Step], unapply: &[(String, String)]) -> String {
    let mut h = Sha256::new();
    for s in steps {
        h.update(format!("step\0{}\0{}\n", s.app, s.target));
    }
    for (a, n) in unapply {
        h.update(format!("unapply\0{a}\0{n}\n"));
    }
    let d = h.finalize();
    d.iter().map(|b| format!("{b:02x}")).collect()
}
