//! The migration graph of one revision, built the way Django's
//! `MigrationLoader` builds it for a database on which every migration of that
//! revision is applied: dependencies resolved (`__first__`, `__latest__`,
//! swappable settings, `run_before`), squashes used in place of what they
//! replace (nested squashes too), then checked for cycles and conflicts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::migration::{Dependency, Migration};
use super::project::Project;
use crate::error::{Error, Result};

/// `(app_label, migration_name)`.
pub type Key = (String, String);

/// A migration file of one revision.
#[derive(Debug, Clone)]
pub struct MigrationFile {
    /// Its key.
    pub key: Key,
    /// Repository path of the file.
    pub file: String,
    /// What the file says. When read from the on-disk cache, `operations`
    /// are left out (see [`MigrationFile::blob`]); `Loader::complete` reads them.
    pub migration: Arc<Migration>,
    /// The blob id when the operations were left out, `None` when complete.
    pub blob: Option<git2::Oid>,
}

/// The graph Django uses once every migration of the revision is applied.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    /// Nodes in use (squashes instead of what they replace).
    pub nodes: BTreeSet<Key>,
    /// Parents (dependencies) of each node.
    pub parents: BTreeMap<Key, BTreeSet<Key>>,
    /// Children (dependents) of each node.
    pub children: BTreeMap<Key, BTreeSet<Key>>,
    /// For every replaced migration, the outermost squash now standing for it.
    pub replaced_by: BTreeMap<Key, Key>,
}

impl Graph {
    /// Nodes of `app` with no child in the same app, sorted.
    pub fn leaves(&self, app: &str) -> Vec<Key> {
        self.nodes
            .iter()
            .filter(|k| {
                k.0 == app
                    && !self
                        .children
                        .get(*k)
                        .is_some_and(|c| c.iter().any(|c| c.0 == app))
            })
            .cloned()
            .collect()
    }

    /// Nodes of `app` with no parent in the same app, sorted.
    pub fn roots(&self, app: &str) -> Vec<Key> {
        self.nodes
            .iter()
            .filter(|k| {
                k.0 == app
                    && !self
                        .parents
                        .get(*k)
                        .is_some_and(|p| p.iter().any(|p| p.0 == app))
            })
            .cloned()
            .collect()
    }

    /// `node` and everything that depends on it, transitively.
    pub fn descendants(&self, node: &Key) -> BTreeSet<Key> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![node.clone()];
        while let Some(k) = stack.pop() {
            if seen.insert(k.clone())
                && let Some(c) = self.children.get(&k)
            {
                stack.extend(c.iter().cloned());
            }
        }
        seen
    }

    /// `node` and everything it depends on, transitively.
    pub fn ancestors(&self, node: &Key) -> BTreeSet<Key> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![node.clone()];
        while let Some(k) = stack.pop() {
            if seen.insert(k.clone())
                && let Some(p) = self.parents.get(&k)
            {
                stack.extend(p.iter().cloned());
            }
        }
        seen
    }

    /// The node standing for `key`: itself, or the squash replacing it.
    pub fn standing_for(&self, key: &Key) -> Option<Key> {
        if self.nodes.contains(key) {
            return Some(key.clone());
        }
        self.replaced_by.get(key).cloned()
    }

    /// Order `set` so that every node comes after all its dependents in the
    /// set (the order Django unapplies them in). Ties sort by key, reversed.
    pub fn unapply_order(&self, set: &BTreeSet<Key>) -> Vec<Key> {
        // Kahn on the reversed edges restricted to `set`.
        let mut pending: BTreeMap<&Key, usize> = set
            .iter()
            .map(|k| {
                (
                    k,
                    self.children
                        .get(k)
                        .map_or(0, |c| c.iter().filter(|c| set.contains(*c)).count()),
                )
            })
            .collect();
        let mut ready: BTreeSet<&Key> = pending
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(k, _)| *k)
            .collect();
        let mut out = Vec::with_capacity(set.len());
        while let Some(k) = ready.pop_last() {
            pending.remove(k);
            out.push(k.clone());
            for p in self.parents.get(k).into_iter().flatten() {
                if let Some(n) = pending.get_mut(p) {
                    *n -= 1;
                    if *n == 0 {
                        ready.insert(p);
                    }
                }
            }
        }
        out
    }
}

/// What the graph needs to know about apps it did not load.
pub trait AppIndex {
    /// Whether migration `name` exists on disk for the in-repository app
    /// `app` (one that was not loaded because it did not change).
    fn exists(&self, app: &str, name: &str) -> Result<bool>;
}

/// Build the graph of one revision from its loaded migration files.
pub fn build(
    files: &BTreeMap<Key, MigrationFile>,
    loaded_apps: &BTreeSet<String>,
    project: &Project,
    rev: &str,
    index: &dyn AppIndex,
) -> Result<Graph> {
    let mut parents: BTreeMap<Key, BTreeSet<Key>> =
        files.keys().map(|k| (k.clone(), BTreeSet::new())).collect();
    // Internal (same-app) dependencies first, as Django does, so that
    // `__first__`/`__latest__` resolve against the app's own chain.
    for (key, f) in files {
        for dep in &f.migration.dependencies {
            if let Dependency::Key(a, n) = dep
                && *a == key.0
                && n != "__first__"
                && n != "__latest__"
            {
                let target = (a.clone(), n.clone());
                if !files.contains_key(&target) {
                    return Err(missing(f, &target, rev));
                }
                parents.get_mut(key).map(|p| p.insert(target));
            }
        }
    }
    let internal_children = std::cell::OnceCell::new();
    let first = |app: &str| {
        files
            .keys()
            .find(|k| k.0 == app && !parents[*k].iter().any(|p| p.0 == app))
            .cloned()
    };
    let latest = |app: &str| {
        files
            .keys()
            .find(|k| {
                k.0 == app
                    && !internal_children
                        .get_or_init(|| children_of(&parents))
                        .get(*k)
                        .is_some_and(|c| c.iter().any(|c| c.0 == app))
            })
            .cloned()
    };
    let mut extra: Vec<(Key, Key)> = Vec::new();
    for (key, f) in files {
        for dep in &f.migration.dependencies {
            let (a, n) = match dep {
                // Same-app dependencies were added above.
                Dependency::Key(a, _) if *a == key.0 => continue,
                Dependency::Key(a, n) => (a.clone(), n.clone()),
                Dependency::Swappable(setting) => {
                    // A setting set at run time (e.g. by `swapper`) cannot be
                    // followed; `plan` reports the migration as dynamic.
                    let Some(value) = swappable_value(project, setting) else {
                        continue;
                    };
                    let label = value.split('.').next().unwrap_or_default().to_string();
                    (label, "__first__".to_string())
                }
            };
            // Same-app dependencies were added above; Django ignores a
            // same-app `__first__` (#22325).
            if a == key.0 {
                continue;
            }
            if loaded_apps.contains(&a) {
                let target = match n.as_str() {
                    "__first__" => first(&a),
                    "__latest__" => latest(&a),
                    _ => {
                        let t = (a.clone(), n.clone());
                        if !files.contains_key(&t) {
                            return Err(missing(f, &t, rev));
                        }
                        Some(t)
                    }
                };
                if let Some(t) = target {
                    extra.push((key.clone(), t));
                }
            } else if project
                .app(&a)
                .is_some_and(|app| app.migrations_dir.is_some())
                && !n.starts_with("__")
                && !index.exists(&a, &n)?
            {
                return Err(missing(f, &(a, n), rev));
            }
        }
        for (a, n) in &f.migration.run_before {
            let t = (a.clone(), n.clone());
            if files.contains_key(&t) {
                extra.push((t, key.clone()));
            } else if loaded_apps.contains(a) {
                return Err(Error::input(format!(
                    "{} at {rev}: run_before names {a}.{n}, which does not exist",
                    f.file
                )));
            }
        }
    }
    for (child, parent) in extra {
        parents.get_mut(&child).map(|p| p.insert(parent));
    }

    // Squashes stand in for what they replace (every replaced migration is
    // applied, so Django uses the squash).
    let mut replaced_by: BTreeMap<Key, Key> = BTreeMap::new();
    for (key, f) in files {
        for r in &f.migration.replaces {
            replaced_by.insert(r.clone(), key.clone());
        }
    }
    let outermost = |k: &Key| -> Key {
        let mut cur = k.clone();
        for _ in 0..64 {
            match replaced_by.get(&cur) {
                Some(s) if files.contains_key(s) => cur = s.clone(),
                _ => break,
            }
        }
        cur
    };
    let mut graph = Graph::default();
    for k in files.keys() {
        let o = outermost(k);
        if o == *k {
            graph.nodes.insert(k.clone());
        } else {
            graph.replaced_by.insert(k.clone(), o);
        }
    }
    for (k, ps) in &parents {
        let c = outermost(k);
        for p in ps {
            let p = outermost(p);
            if p != c {
                graph.parents.entry(c.clone()).or_default().insert(p);
            }
        }
    }
    graph.children = children_of(&graph.parents);
    check_acyclic(&graph, files, rev)?;
    Ok(graph)
}

/// The `app.Model` a swappable setting names: the settings module's value, or
/// Django's default for `AUTH_USER_MODEL`. `None` when set only at run time.
pub fn swappable_value(project: &Project, setting: &str) -> Option<String> {
    project
        .string_settings
        .get(setting)
        .cloned()
        .or_else(|| (setting == "AUTH_USER_MODEL").then(|| "auth.User".to_string()))
}

/// Swappable settings a migration depends on that the settings module does not define.
pub fn unresolved_swappables<'m>(project: &Project, m: &'m Migration) -> Vec<&'m str> {
    m.dependencies
        .iter()
        .filter_map(|d| match d {
            Dependency::Swappable(s) if swappable_value(project, s).is_none() => Some(s.as_str()),
            _ => None,
        })
        .collect()
}

fn children_of(parents: &BTreeMap<Key, BTreeSet<Key>>) -> BTreeMap<Key, BTreeSet<Key>> {
    let mut children: BTreeMap<Key, BTreeSet<Key>> = BTreeMap::new();
    for (c, ps) in parents {
        for p in ps {
            children.entry(p.clone()).or_default().insert(c.clone());
        }
    }
    children
}

fn missing(f: &MigrationFile, target: &Key, rev: &str) -> Error {
    Error::input(format!(
        "{} at {rev}: migration {}.{} depends on {}.{}, which does not exist (Django raises NodeNotFoundError)",
        f.file, f.key.0, f.key.1, target.0, target.1
    ))
}

fn check_acyclic(graph: &Graph, files: &BTreeMap<Key, MigrationFile>, rev: &str) -> Result<()> {
    let mut pending: BTreeMap<&Key, usize> = graph
        .nodes
        .iter()
        .map(|k| (k, graph.parents.get(k).map_or(0, BTreeSet::len)))
        .collect();
    let mut ready: Vec<&Key> = pending
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(k, _)| *k)
        .collect();
    while let Some(k) = ready.pop() {
        pending.remove(k);
        for c in graph.children.get(k).into_iter().flatten() {
            if let Some(n) = pending.get_mut(c) {
                *n -= 1;
                if *n == 0 {
                    ready.push(c);
                }
            }
        }
    }
    if let Some((k, _)) = pending.iter().next() {
        let file = files.get(*k).map_or("?", |f| f.file.as_str());
        return Err(Error::input(format!(
            "{file} at {rev}: circular dependency involving {}.{} (Django raises CircularDependencyError)",
            k.0, k.1
        )));
    }
    Ok(())
}

/// Django refuses to migrate when an app has two leaf migrations.
pub fn check_conflicts(graph: &Graph, apps: &BTreeSet<String>, rev: &str) -> Result<()> {
    for app in apps {
        let leaves = graph.leaves(app);
        if leaves.len() > 1 {
            let names: Vec<&str> = leaves.iter().map(|k| k.1.as_str()).collect();
            return Err(Error::input(format!(
                "app {app:?} has {} unmerged leaf migrations at {rev} ({}); Django refuses to migrate until `makemigrations --merge` joins them",
                leaves.len(),
                names.join(", ")
            )));
        }
    }
    Ok(())
}
