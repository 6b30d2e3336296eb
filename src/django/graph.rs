//! The migration graph of one revision, built the way Django's
//! `MigrationLoader` builds it for a database on which every migration of that
//! revision is applied: dependencies resolved (`__first__`, `__latest__`,
//! swappable settings, `run_before`), squashes used in place of what they
//! replace (nested squashes too), then checked for cycles and conflicts.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::Arc;

use super::key::Name;
use super::migration::{Dependency, Migration};
use super::project::Project;
use crate::error::{Error, Result};

pub use super::key::MigrationKey;

/// A migration file of one revision.
#[derive(Debug, Clone)]
pub struct MigrationFile {
    /// Its key.
    pub key: MigrationKey,
    /// Repository path of the file.
    pub file: String,
    /// What the file says. When read from the on-disk cache, its
    /// `operations` are [`Operations::Deferred`](super::migration::Operations::Deferred)
    /// and `Loader::read_operations` reads them from [`MigrationFile::blob`].
    pub migration: Arc<Migration>,
    /// The file's blob id, where deferred operations are read from (`None`
    /// only for files whose operations were read with them: a package's).
    pub blob: Option<git2::Oid>,
}

/// The migration files of one revision, sorted by key (apps are contiguous).
#[derive(Debug, Clone, Default)]
pub struct Files(Vec<Rc<MigrationFile>>);

impl Files {
    /// From files in any order; the first of two files with one key wins.
    pub fn new(mut files: Vec<Rc<MigrationFile>>) -> Files {
        // Loaders produce them sorted and distinct: one pass checks it.
        if !files.windows(2).all(|w| w[0].key < w[1].key) {
            files.sort_by(|a, b| a.key.cmp(&b.key));
            files.dedup_by(|a, b| a.key == b.key);
        }
        Files(files)
    }

    /// Number of files.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no file.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The files in key order.
    pub fn iter(&self) -> impl Iterator<Item = &MigrationFile> {
        self.0.iter().map(|f| &**f)
    }

    /// The file at an index.
    pub fn at(&self, i: usize) -> &MigrationFile {
        &self.0[i]
    }

    /// The index of `app.name`.
    pub fn position(&self, app: &str, name: &str) -> Option<usize> {
        self.0
            .binary_search_by(|f| (f.key.app.as_str(), f.key.name.as_str()).cmp(&(app, name)))
            .ok()
    }

    /// The file of a key.
    pub fn get(&self, key: &MigrationKey) -> Option<&MigrationFile> {
        self.position(&key.app, &key.name).map(|i| &*self.0[i])
    }

    /// Whether a key has a file.
    pub fn contains_key(&self, key: &MigrationKey) -> bool {
        self.position(&key.app, &key.name).is_some()
    }

    /// The indices of an app's files.
    pub fn app_range(&self, app: &str) -> std::ops::Range<usize> {
        let start = self.0.partition_point(|f| f.key.app.as_str() < app);
        start..start + self.0[start..].partition_point(|f| f.key.app == app)
    }

    /// An app's files, in name order.
    pub fn app(&self, app: &str) -> impl Iterator<Item = &MigrationFile> {
        self.0[self.app_range(app)].iter().map(|f| &**f)
    }

    /// The shared handle of the file at an index.
    pub fn shared(&self, i: usize) -> &Rc<MigrationFile> {
        &self.0[i]
    }

    /// For each file, the index of the file with the same key in `other`
    /// (one merge pass over both sorted lists).
    pub fn matching(&self, other: &Files) -> Vec<Option<usize>> {
        let mut out = Vec::with_capacity(self.len());
        let mut j = 0;
        for f in &self.0 {
            while j < other.0.len() && other.0[j].key < f.key {
                j += 1;
            }
            out.push((j < other.0.len() && other.0[j].key == f.key).then_some(j));
        }
        out
    }
}

impl std::ops::Index<&MigrationKey> for Files {
    type Output = MigrationFile;

    fn index(&self, key: &MigrationKey) -> &MigrationFile {
        match self.get(key) {
            Some(f) => f,
            None => panic!("no migration file {}.{}", key.app, key.name),
        }
    }
}

/// A node of a [`Graph`]: an index into its sorted keys, so node order is
/// key order.
pub type Node = usize;

/// The graph Django uses once every migration of the revision is applied.
/// Nodes are indices; edges are adjacency lists (a graph of tens of
/// thousands of migrations is built and walked without comparing names).
#[derive(Debug, Clone, Default)]
pub struct Graph {
    /// Files of the nodes in use (squashes instead of what they replace),
    /// sorted by key.
    nodes: Vec<Rc<MigrationFile>>,
    /// Parents (dependencies) of each node, sorted.
    parents: Adjacency,
    /// Children (dependents) of each node, sorted.
    children: Adjacency,
    /// The index in the revision's [`Files`] of each node.
    file_of: Vec<usize>,
    /// For every replaced migration, the outermost squash now standing for it.
    replaced_by: BTreeMap<MigrationKey, Node>,
    /// Only in a revision with squashes: the graph Django builds without
    /// replacements (`MigrationLoader(replace_migrations=False)`), as the
    /// dependents of every file (indices into the revision's [`Files`]);
    /// `None` when Django cannot build it (a dependency names a replaced
    /// migration whose file is gone).
    raw_children: Option<Adjacency>,
}

impl Graph {
    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the graph has no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The key of a node.
    pub fn key(&self, n: Node) -> &MigrationKey {
        &self.nodes[n].key
    }

    /// The index in the revision's [`Files`] of a node's file.
    pub fn file(&self, n: Node) -> usize {
        self.file_of[n]
    }

    /// The node of a key, if it is in use.
    pub fn node(&self, key: &MigrationKey) -> Option<Node> {
        self.nodes
            .binary_search_by(|f| {
                (f.key.app.as_str(), f.key.name.as_str())
                    .cmp(&(key.app.as_str(), key.name.as_str()))
            })
            .ok()
    }

    /// Whether `n` belongs to `app`.
    pub fn in_app(&self, n: Node, app: &str) -> bool {
        self.nodes[n].key.app == app
    }

    /// Parents (dependencies) of a node.
    pub fn parents(&self, n: Node) -> &[Node] {
        self.parents.of(n)
    }

    /// Children (dependents) of a node.
    pub fn children(&self, n: Node) -> &[Node] {
        self.children.of(n)
    }

    /// The nodes of `app` (contiguous, since nodes are sorted by key).
    pub fn app_nodes(&self, app: &str) -> std::ops::Range<Node> {
        let start = self.nodes.partition_point(|f| f.key.app.as_str() < app);
        let end = start + self.nodes[start..].partition_point(|f| f.key.app == app);
        start..end
    }

    /// Nodes of `app` with no child in the same app, sorted.
    pub fn leaf_nodes(&self, app: &str) -> Vec<Node> {
        // An app's nodes are contiguous: "in the app" is "in its range".
        let nodes = self.app_nodes(app);
        nodes
            .clone()
            .filter(|n| !self.children(*n).iter().any(|c| nodes.contains(c)))
            .collect()
    }

    /// Keys of the leaves of `app`, sorted.
    pub fn leaves(&self, app: &str) -> Vec<MigrationKey> {
        self.leaf_nodes(app)
            .into_iter()
            .map(|n| self.nodes[n].key.clone())
            .collect()
    }

    /// Nodes of `app` with no parent in the same app, sorted.
    pub fn roots(&self, app: &str) -> Vec<Node> {
        let nodes = self.app_nodes(app);
        nodes
            .clone()
            .filter(|n| !self.parents(*n).iter().any(|p| nodes.contains(p)))
            .collect()
    }

    /// Mark `start` and everything that depends on it, transitively, and
    /// list in `marked` (unsorted) each node this call marks.
    pub fn mark_descendants(&self, start: Node, marks: &mut [bool], marked: &mut Vec<Node>) {
        let mut stack = vec![start];
        while let Some(n) = stack.pop() {
            if !marks[n] {
                marks[n] = true;
                marked.push(n);
                stack.extend(self.children(n).iter().filter(|c| !marks[**c]));
            }
        }
    }

    /// Django's fallback for `migrate APP TARGET` when TARGET is a
    /// replaced migration whose file is on disk: `MigrationExecutor.migration_plan`
    /// reloads the graph without replacements and unapplies, through
    /// TARGET's children in APP, every migration that depends on them. The
    /// files (indices into `files`) it unapplies on a database where every
    /// file is applied, dependents first; `None` when the revision has no
    /// squash or Django cannot build that graph.
    pub fn raw_unapply(&self, files: &Files, target: usize) -> Option<Vec<usize>> {
        let raw = self.raw_children.as_ref()?;
        let app = &files.at(target).key.app;
        let mut reached = vec![false; files.len()];
        let mut stack: Vec<usize> = raw
            .of(target)
            .iter()
            .copied()
            .filter(|c| files.at(*c).key.app == *app)
            .collect();
        while let Some(n) = stack.pop() {
            if !std::mem::replace(&mut reached[n], true) {
                stack.extend(raw.of(n).iter().copied());
            }
        }
        // Dependents first: a file once every one of its reached dependents is out.
        let mut left: Vec<usize> = (0..files.len())
            .map(|n| {
                if reached[n] {
                    raw.of(n).iter().filter(|c| reached[**c]).count()
                } else {
                    0
                }
            })
            .collect();
        let nodes: Vec<usize> = (0..files.len()).filter(|n| reached[*n]).collect();
        let mut ready: Vec<usize> = nodes.iter().copied().filter(|n| left[*n] == 0).collect();
        let mut order = Vec::new();
        while let Some(n) = ready.pop() {
            order.push(n);
            for &p in &nodes {
                if raw.of(p).contains(&n) {
                    left[p] -= 1;
                    if left[p] == 0 {
                        ready.push(p);
                    }
                }
            }
        }
        Some(order)
    }

    /// The node standing for `key`: itself, or the squash replacing it.
    pub fn standing_for(&self, key: &MigrationKey) -> Option<Node> {
        self.node(key)
            .or_else(|| self.replaced_by.get(key).copied())
    }

    /// Order the marked nodes so that every node comes after all its
    /// dependents among them (the order Django unapplies them in). Ties go
    /// to the greatest key first.
    pub fn unapply_order(&self, set: &[bool]) -> Vec<Node> {
        let nodes: Vec<Node> = (0..self.len()).filter(|n| set[*n]).collect();
        self.unapply_order_of(&nodes, set)
    }

    /// [`Graph::unapply_order`] given the marked nodes, in increasing order
    /// (`nodes` is exactly the set `set` marks): no pass over the graph.
    pub fn unapply_order_of(&self, nodes: &[Node], set: &[bool]) -> Vec<Node> {
        debug_assert!(nodes.is_sorted() && nodes.iter().all(|n| set[*n]));
        // Kahn on the reversed edges restricted to `set`.
        let mut pending: Vec<usize> = nodes
            .iter()
            .map(|n| self.children(*n).iter().filter(|c| set[**c]).count())
            .collect();
        let mut ready: BTreeSet<Node> = nodes
            .iter()
            .zip(&pending)
            .filter(|(_, p)| **p == 0)
            .map(|(n, _)| *n)
            .collect();
        let mut out = Vec::with_capacity(nodes.len());
        while let Some(n) = ready.pop_last() {
            out.push(n);
            for p in self.parents(n).iter().filter(|p| set[**p]) {
                // Every marked node is in `nodes`.
                let Ok(i) = nodes.binary_search(p) else {
                    continue;
                };
                pending[i] -= 1;
                if pending[i] == 0 {
                    ready.insert(*p);
                }
            }
        }
        out
    }
}

/// Edges of a graph in one array, grouped by node (compressed rows).
#[derive(Debug, Clone, Default)]
struct Adjacency {
    /// Where each node's targets start in `targets` (one more entry than nodes).
    start: Vec<usize>,
    targets: Vec<Node>,
}

impl Adjacency {
    /// From `(node, target)` pairs sorted by node.
    fn new(nodes: usize, edges: impl Iterator<Item = (Node, Node)>) -> Adjacency {
        let mut start = Vec::with_capacity(nodes + 1);
        let mut targets = Vec::new();
        for (from, to) in edges {
            while start.len() <= from {
                start.push(targets.len());
            }
            targets.push(to);
        }
        while start.len() <= nodes {
            start.push(targets.len());
        }
        Adjacency { start, targets }
    }

    fn of(&self, n: Node) -> &[Node] {
        &self.targets[self.start[n]..self.start[n + 1]]
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
    files: &Files,
    loaded_apps: &BTreeSet<String>,
    project: &Project,
    rev: &str,
    index: &dyn AppIndex,
) -> Result<Graph> {
    // Files by index, in key order.
    let fkeys: Vec<&MigrationKey> = files.iter().map(|f| &f.key).collect();
    let fvals: Vec<&MigrationFile> = files.iter().collect();
    // A migration a squash replaces may be gone from disk while others still
    // depend on it: Django's loader points those dependencies at the squash
    // (`MigrationGraph.remove_replaced_nodes`).
    let mut squash_of: BTreeMap<&MigrationKey, usize> = BTreeMap::new();
    for (i, f) in fvals.iter().enumerate() {
        for r in &f.migration.replaces {
            squash_of.insert(r, i);
        }
    }
    // Whether a dependency was found only through a squash (Django's graph
    // without replacements has no such node).
    let through_squash = std::cell::Cell::new(false);
    let find = |a: &str, n: &str| {
        files.position(a, n).or_else(|| {
            let s = squash_of.get(&MigrationKey::new(a, n)).copied();
            through_squash.set(through_squash.get() || s.is_some());
            s
        })
    };
    let app_range = |app: &str| files.app_range(app);
    // Edges `(child, parent)` between files.
    let mut edges: Vec<(usize, usize)> = Vec::with_capacity(fkeys.len() + 8);
    // Internal (same-app) dependencies first, as Django does, so that
    // `__first__`/`__latest__` resolve against the app's own chain.
    for (i, f) in fvals.iter().enumerate() {
        for dep in &f.migration.dependencies {
            if let Dependency::Key(a, n) = dep
                && *a == fkeys[i].app
                && n != "__first__"
                && n != "__latest__"
            {
                // Most migrations depend on the one just before them.
                let previous = i.checked_sub(1).filter(|p| fkeys[*p].name == *n);
                let Some(t) = previous.or_else(|| find(a, n)) else {
                    return Err(missing(f, &MigrationKey::new(a.clone(), n.clone()), rev));
                };
                edges.push((i, t));
            }
        }
    }
    // So far every edge is internal: which files have a parent, a child.
    let mut has_parent = vec![false; fkeys.len()];
    let mut has_child = vec![false; fkeys.len()];
    for (c, p) in &edges {
        has_parent[*c] = true;
        has_child[*p] = true;
    }
    let first = |app: &str| app_range(app).find(|i| !has_parent[*i]);
    let latest = |app: &str| app_range(app).find(|i| !has_child[*i]);
    let mut extra: Vec<(usize, usize)> = Vec::new();
    for (i, f) in fvals.iter().enumerate() {
        let own = &fkeys[i].app;
        for dep in &f.migration.dependencies {
            let (a, n) = match dep {
                // Same-app dependencies were added above.
                Dependency::Key(a, _) if a == own => continue,
                Dependency::Key(a, n) => (a.clone(), n.clone()),
                Dependency::Swappable(setting) => {
                    // A setting set at run time (e.g. by `swapper`) cannot be
                    // followed; `plan` reports the migration as dynamic.
                    let Some(value) = swappable_value(project, setting) else {
                        continue;
                    };
                    let label = value.split('.').next().unwrap_or_default();
                    (Name::from(label), Name::from("__first__"))
                }
            };
            // Same-app dependencies were added above; Django ignores a
            // same-app `__first__` (#22325).
            if a == *own {
                continue;
            }
            if loaded_apps.contains(a.as_str()) {
                let target = match n.as_str() {
                    "__first__" => first(&a),
                    "__latest__" => latest(&a),
                    _ => match find(&a, &n) {
                        Some(t) => Some(t),
                        None => return Err(missing(f, &MigrationKey::new(a, n), rev)),
                    },
                };
                if let Some(t) = target {
                    extra.push((i, t));
                }
            } else if project
                .app(&a)
                .is_some_and(|app| app.migrations_dir.is_some())
                && !n.starts_with("__")
                && !index.exists(&a, &n)?
            {
                return Err(missing(f, &MigrationKey::new(a, n), rev));
            }
        }
        for MigrationKey { app: a, name: n } in &f.migration.run_before {
            if let Some(t) = find(a, n) {
                extra.push((t, i));
            } else if loaded_apps.contains(a.as_str()) {
                return Err(Error::input(format!(
                    "{} at {rev}: run_before names {a}.{n}, which does not exist",
                    f.file
                )));
            }
        }
    }
    edges.extend(extra);
    let raw_children = (!squash_of.is_empty() && !through_squash.get()).then(|| {
        let mut by_parent: Vec<(usize, usize)> = edges.iter().map(|(c, p)| (*p, *c)).collect();
        by_parent.sort_unstable();
        by_parent.dedup();
        Adjacency::new(fkeys.len(), by_parent.into_iter())
    });

    // Squashes stand in for what they replace (every replaced migration is
    // applied, so Django uses the squash).
    let mut replaced_by: BTreeMap<&MigrationKey, usize> = BTreeMap::new();
    for (i, f) in fvals.iter().enumerate() {
        for r in &f.migration.replaces {
            replaced_by.insert(r, i);
        }
    }
    let outermost = |i: usize| -> usize {
        let mut cur = i;
        for _ in 0..64 {
            match replaced_by.get(fkeys[cur]) {
                Some(s) => cur = *s,
                None => break,
            }
        }
        cur
    };
    let mut node_of: Vec<usize> = vec![usize::MAX; fkeys.len()];
    let mut graph = Graph {
        raw_children,
        ..Graph::default()
    };
    for (i, node) in node_of.iter_mut().enumerate() {
        if outermost(i) == i {
            *node = graph.nodes.len();
            graph.nodes.push(files.shared(i).clone());
            graph.file_of.push(i);
        }
    }
    for (i, k) in fkeys.iter().enumerate() {
        if node_of[i] == usize::MAX {
            graph
                .replaced_by
                .insert((*k).clone(), node_of[outermost(i)]);
        }
    }
    // Replaced migrations whose files are gone (NetBox 4.0 squashed and
    // deleted its 3.x migrations): the squash listing them still stands for
    // them, so an older leaf among them is reached through the squash.
    for (i, f) in fvals.iter().enumerate() {
        for r in &f.migration.replaces {
            if files.contains_key(r) {
                continue;
            }
            graph
                .replaced_by
                .entry(r.clone())
                .or_insert(node_of[outermost(i)]);
        }
    }
    let mut node_edges: Vec<(Node, Node)> = edges
        .iter()
        .map(|(c, p)| (node_of[outermost(*c)], node_of[outermost(*p)]))
        .filter(|(c, p)| c != p)
        .collect();
    node_edges.sort_unstable();
    node_edges.dedup();
    let n = graph.nodes.len();
    graph.parents = Adjacency::new(n, node_edges.iter().copied());
    node_edges.sort_unstable_by_key(|(c, p)| (*p, *c));
    graph.children = Adjacency::new(n, node_edges.iter().map(|(c, p)| (*p, *c)));
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

fn missing(f: &MigrationFile, target: &MigrationKey, rev: &str) -> Error {
    Error::input(format!(
        "{} at {rev}: migration {}.{} depends on {}.{}, which does not exist (Django raises NodeNotFoundError)",
        f.file, f.key.app, f.key.name, target.app, target.name
    ))
}

fn check_acyclic(graph: &Graph, files: &Files, rev: &str) -> Result<()> {
    let mut pending: Vec<usize> = (0..graph.len()).map(|n| graph.parents(n).len()).collect();
    let mut ready: Vec<Node> = (0..graph.len()).filter(|n| pending[*n] == 0).collect();
    let mut done = 0;
    while let Some(n) = ready.pop() {
        done += 1;
        for c in graph.children(n) {
            pending[*c] -= 1;
            if pending[*c] == 0 {
                ready.push(*c);
            }
        }
    }
    if done < graph.len()
        && let Some(n) = (0..graph.len()).find(|n| pending[*n] > 0)
    {
        let k = graph.key(n);
        let file = files.at(graph.file(n)).file.as_str();
        return Err(Error::input(format!(
            "{file} at {rev}: circular dependency involving {}.{} (Django raises CircularDependencyError)",
            k.app, k.name
        )));
    }
    Ok(())
}

/// Django refuses to migrate when an app has two leaf migrations.
///
/// When a migration of the app computes its attributes at run time (its
/// dependencies may join the leaves), the conflict may not be real: instead
/// of refusing, a blocking finding names the dynamic migration.
pub fn check_conflicts(
    graph: &Graph,
    apps: &BTreeSet<String>,
    rev: &str,
) -> Result<Vec<crate::finding::Finding>> {
    use crate::finding::{Code, Finding};
    let mut findings = Vec::new();
    for app in apps {
        let leaves = graph.leaves(app);
        if leaves.len() > 1 {
            let dynamic = graph
                .nodes
                .iter()
                .filter(|f| f.key.app == *app)
                .find_map(|f| f.migration.dynamic.first().map(|d| (f, d)));
            if let Some((f, d)) = dynamic {
                let names: Vec<&str> = leaves.iter().map(|k| k.name.as_str()).collect();
                findings.push(
                    Finding::new(
                        Code::DynamicMigration,
                        format!(
                            "app {app:?} seems to have {} unmerged leaf migrations at {rev} ({}), but {}.{} ({}:{}) cannot be read exactly ({}), so its real dependencies are unknown; make them class attributes (`dependencies = [...]`) so they can be read",
                            leaves.len(),
                            names.join(", "),
                            f.key.app,
                            f.key.name,
                            f.file,
                            d.line,
                            d.what
                        ),
                    )
                    .at(f.file.clone(), d.line),
                );
                continue;
            }
            let names: Vec<&str> = leaves.iter().map(|k| k.name.as_str()).collect();
            return Err(Error::input(format!(
                "app {app:?} has {} unmerged leaf migrations at {rev} ({}); Django refuses to migrate until `makemigrations --merge` joins them",
                leaves.len(),
                names.join(", ")
            )));
        }
    }
    Ok(findings)
}
