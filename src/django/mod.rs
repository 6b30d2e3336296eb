//! Static reading of a Django project at two git revisions: settings and apps
//! (`project`), migration files (`migration`, through the parser façade
//! `python`), and the migration graph Django would build (`graph`).
//!
//! Only apps whose migrations differ between the two revisions are parsed
//! (plus apps a squash reaches into); every blob is parsed once per run.

pub mod cache;
pub mod graph;
pub mod key;
pub mod migration;
pub mod project;
pub mod python;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::Arc;

use git2::Oid;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::error::{Error, Result};
use crate::git::{OidKey, Repo, Snapshot};
use crate::source::{GitRevision, IdentifiedFile, ProjectSource};
pub use graph::{Files, Graph, MigrationFile};
pub use key::{MigrationKey, Name};
use migration::{Migration, Operation, Reversibility};
pub use project::{Project, ProjectOptions};

/// One revision of the project, with the migrations of the apps that matter.
#[derive(Debug)]
pub struct Revision {
    /// The snapshot it was read from.
    pub snap: Snapshot,
    /// Settings and apps.
    pub project: Project,
    /// Migration files of the loaded apps.
    pub files: Files,
    /// Apps whose migrations were loaded.
    pub loaded: BTreeSet<String>,
    /// The graph over the loaded apps.
    pub graph: Graph,
}

/// Django's rule for a migration module in a migrations package (the
/// package itself needs an `__init__.py`): a `NAME.py` whose name does not
/// start with `_` or `~` and holds no other dot.
pub fn is_migration_file_name(file_name: &str) -> bool {
    file_name.strip_suffix(".py").is_some_and(is_migration_name)
}

/// The same rule for a module name without its `.py`.
pub fn is_migration_name(stem: &str) -> bool {
    !stem.is_empty() && !stem.starts_with(['_', '~']) && !stem.contains('.')
}

/// The files with the dependencies `.tagback.yml` states for them
/// (`migrations: {APP.NAME: {dependencies: […]}}`): they replace what the
/// file says, and its dynamic parts about dependencies are resolved. A key
/// that is not `APP.NAME` is an error (one that names no migration: see
/// [`check_stated`]).
fn stated(files: Files, opts: &ProjectOptions) -> Result<Files> {
    if opts.stated_dependencies.is_empty() {
        return Ok(files);
    }
    let mut out: Vec<Rc<MigrationFile>> =
        (0..files.len()).map(|i| files.shared(i).clone()).collect();
    for (key, deps) in &opts.stated_dependencies {
        let Some((app, name)) = key
            .split_once('.')
            .filter(|(a, n)| !a.is_empty() && !n.is_empty())
        else {
            return Err(Error::input(format!(
                ".tagback.yml: migrations: {key:?} is not APP.NAME"
            )));
        };
        let Some(i) = files.position(app, name) else {
            continue;
        };
        let f = &out[i];
        let mut m = (*f.migration).clone();
        m.dependencies = deps
            .iter()
            .map(|(a, n)| migration::Dependency::Key(a.into(), n.into()))
            .collect();
        m.dynamic.retain(|d| !migration::is_dependency_part(d));
        out[i] = Rc::new(MigrationFile {
            migration: Arc::new(m),
            ..(**f).clone()
        });
    }
    Ok(Files::new(out))
}

/// A stated migration of a loaded app must exist at one of the revisions: a
/// stale statement is never silently ignored.
fn check_stated(
    opts: &ProjectOptions,
    loaded: &BTreeSet<String>,
    revs: [(&Files, &Snapshot); 2],
) -> Result<()> {
    for key in opts.stated_dependencies.keys() {
        let Some((app, name)) = key.split_once('.') else {
            continue;
        };
        if loaded.contains(app) && !revs.iter().any(|(f, _)| f.position(app, name).is_some()) {
            return Err(Error::input(format!(
                ".tagback.yml: migrations: {key} names no migration of {app} at {} or {}",
                revs[0].1.label, revs[1].1.label
            )));
        }
    }
    Ok(())
}

/// The file that makes a migrations directory a package: without it the
/// directory is a namespace package, which Django treats as an app without
/// migrations (`MigrationLoader.load_disk`).
pub const PACKAGE_INIT: &str = "__init__.py";

/// Django's rule for the migrations of a directory
/// (`MigrationLoader.load_disk`), given its files (not subdirectories):
/// none unless it is a package (an `__init__.py`), then every
/// [`is_migration_file_name`], by name (file stem).
fn migrations_among<T>(files: Vec<T>, name: impl Fn(&T) -> &str) -> Vec<(String, T)> {
    if !files.iter().any(|f| name(f) == PACKAGE_INIT) {
        return Vec::new();
    }
    let mut out: Vec<(String, T)> = files
        .into_iter()
        .filter(|f| is_migration_file_name(name(f)))
        .filter_map(|f| Some((name(&f).strip_suffix(".py")?.to_string(), f)))
        .collect();
    // By stem, as names are compared (`a-b.py` sorts before `a.py`).
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The deployed (newer) and target (older) revisions of a downgrade.
#[derive(Debug)]
pub struct Pair {
    /// The revision deployed now; its code runs the backward migrations.
    pub newer: Revision,
    /// The revision to go back to.
    pub older: Revision,
    /// What blocks the plan before it is computed: migrations directories
    /// that gain migrations but belong to no installed app, apparent leaf
    /// conflicts that a dynamic migration may explain.
    pub unplanned: Vec<crate::finding::Finding>,
    /// Packages whose pinned version changes and whose apps are planned.
    pub packages: Vec<String>,
}

/// One operation of a migration to unapply, with its reversibility decided
/// (a custom operation class followed to its definition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JudgedOperation {
    /// The operation as read from the file.
    pub operation: Operation,
    /// Whether it can be unapplied.
    pub reversibility: Reversibility,
    /// Why it is irreversible or unknown.
    pub reason: Option<String>,
}

/// The operations of the migrations a plan unapplies, by index into the
/// newer revision's files: what the plan's findings are computed from. A
/// migration whose operations could not be read has the reason instead.
#[derive(Debug, Clone, Default)]
pub struct UnappliedOperations {
    read: BTreeMap<usize, std::result::Result<Vec<JudgedOperation>, String>>,
    /// The parts of each file's `operations` that cannot be read exactly.
    dynamic: BTreeMap<usize, Vec<migration::DynamicPart>>,
}

impl UnappliedOperations {
    /// Record what was read for file `index`.
    pub fn insert(
        &mut self,
        index: usize,
        read: std::result::Result<Vec<JudgedOperation>, String>,
    ) {
        self.read.insert(index, read);
    }

    /// Record the parts of file `index`'s operations that cannot be read exactly.
    pub fn insert_dynamic(&mut self, index: usize, parts: Vec<migration::DynamicPart>) {
        if !parts.is_empty() {
            self.dynamic.insert(index, parts);
        }
    }

    /// The parts of file `index`'s operations that cannot be read exactly
    /// (none when they were not read: [`UnappliedOperations::of`] says so).
    pub fn dynamic_of(&self, index: usize) -> &[migration::DynamicPart] {
        self.dynamic.get(&index).map_or(&[], Vec::as_slice)
    }

    /// The operations of file `index`; an error when they were not read
    /// (never an empty list in their place).
    pub fn of(&self, index: usize) -> std::result::Result<&[JudgedOperation], &str> {
        match self.read.get(&index) {
            Some(Ok(ops)) => Ok(ops),
            Some(Err(e)) => Err(e),
            None => Err("its operations were not read"),
        }
    }
}

/// Reads projects and migration files, parsing each blob once.
pub struct Loader<'r> {
    repo: &'r Repo,
    parsed: RefCell<ParsedBlobs>,
    /// Threads for parsing (the machine's parallelism, asked once).
    threads: usize,
    /// Migrations known to exist in directories not otherwise read.
    probes: std::cell::OnceCell<RefCell<cache::Probes>>,
    /// Settings and app resolutions of this run.
    resolutions: std::cell::OnceCell<project::Resolutions>,
    /// Per app, the cached directory read last and its files, shared with
    /// the other revision where lines are equal.
    previous_dir: RefCell<BTreeMap<String, PreviousDir>>,
    disk: cache::DiskCache,
    listings: RefCell<BTreeMap<(String, String), BTreeSet<String>>>,
}

impl<'r> Loader<'r> {
    /// A loader over `repo`.
    pub fn new(repo: &'r Repo) -> Self {
        Loader {
            repo,
            parsed: RefCell::new(ParsedBlobs::default()),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(8)),
            previous_dir: RefCell::new(BTreeMap::new()),
            resolutions: std::cell::OnceCell::new(),
            probes: std::cell::OnceCell::new(),
            disk: if repo.is_plain_dir() {
                cache::DiskCache::off()
            } else {
                cache::DiskCache::new(repo.git_dir())
            },
            listings: RefCell::new(BTreeMap::new()),
        }
    }

    /// Wait until the cache files this run handed over are written (when
    /// the loader is not dropped: a process about to end).
    pub fn finish_writes(&self) {
        self.disk.finish_writes();
    }

    /// Number of distinct migration blobs parsed so far.
    pub fn parsed_count(&self) -> usize {
        self.parsed.borrow().len
    }

    /// Load both revisions. `Ok(None)` when neither has a `manage.py`.
    /// With `full`, every app is loaded, not only those that changed.
    pub fn load_pair(
        &self,
        newer: &Snapshot,
        older: &Snapshot,
        opts: &ProjectOptions,
        full: bool,
    ) -> Result<Option<Pair>> {
        let memo = self
            .resolutions
            .get_or_init(|| project::Resolutions::with_disk(self.disk.clone()));
        // `.tagback.yml`'s `newer:` / `older:`: each revision read with its own.
        let sides = [opts.side(true), opts.side(false)];
        let opts = &sides[0];
        let (src_n, src_o) = (
            GitRevision::new(self.repo, newer),
            GitRevision::new(self.repo, older),
        );
        let pn = project::load_shared(&src_n, opts, memo, None)?;
        let po = project::load_shared(&src_o, &sides[1], memo, pn.as_ref())?;
        memo.save(&pn.iter().chain(po.iter()).collect::<Vec<_>>());
        let (mut pn, mut po) = match (pn, po) {
            (None, None) => return Ok(None),
            (Some(a), Some(b)) => (a, b),
            (Some(p), None) => return Err(manage_py_moved(newer, older, "older", &p.root)),
            (None, Some(p)) => return Err(manage_py_moved(older, newer, "newer", &p.root)),
        };
        // Apps of packages whose pinned version changes: read from their
        // archives, planned like the repository's apps.
        let (from_packages, packages) =
            crate::packages::attach(self.repo, newer, older, &mut pn, &mut po, [opts, &sides[1]])?;
        let mut loaded: BTreeSet<String> = BTreeSet::new();
        let labels: BTreeSet<&str> = pn
            .repo_apps()
            .chain(po.repo_apps())
            .map(|a| a.label.as_str())
            .collect();
        for label in labels {
            let dn = pn.app(label).and_then(|a| a.migrations_dir.as_deref());
            let d_o = po.app(label).and_then(|a| a.migrations_dir.as_deref());
            let same = match (dn, d_o) {
                (Some(a), Some(b)) if a == b => self.repo.same_dir(newer, older, a),
                (Some(a), Some(b)) => {
                    let (x, y) = (self.repo.dir_oid(newer, a), self.repo.dir_oid(older, b));
                    x.is_some() && x == y
                }
                _ => false,
            };
            let packaged = pn.package_of(label).is_some() || po.package_of(label).is_some();
            if full || !same || packaged {
                loaded.insert(label.to_string());
            }
        }
        // A squash may replace migrations of another app: load that app too.
        loop {
            self.prefetch([(newer, &pn), (older, &po)], &loaded);
            let files_n = stated(self.load_files(&src_n, &pn, &loaded)?, opts)?;
            let files_o = stated(self.load_files(&src_o, &po, &loaded)?, opts)?;
            check_stated(opts, &loaded, [(&files_n, newer), (&files_o, older)])?;
            let reached: BTreeSet<String> = files_n
                .iter()
                .chain(files_o.iter())
                .flat_map(|f| f.migration.replaces.iter().map(|r| r.app.to_string()))
                .filter(|a| {
                    !loaded.contains(a)
                        && (pn.app(a).is_some_and(|x| x.migrations_dir.is_some())
                            || po.app(a).is_some_and(|x| x.migrations_dir.is_some()))
                })
                .collect();
            if reached.is_empty() {
                let (gn, mut doubts) = self.graph(&files_n, &loaded, &pn, &src_n)?;
                let (go, doubts_o) = self.graph(&files_o, &loaded, &po, &src_o)?;
                doubts.extend(doubts_o);
                let nrev = Revision {
                    snap: newer.clone(),
                    project: pn,
                    files: files_n,
                    loaded: loaded.clone(),
                    graph: gn,
                };
                let orev = Revision {
                    snap: older.clone(),
                    project: po,
                    files: files_o,
                    loaded,
                    graph: go,
                };
                let mut unplanned = self.unplanned_dirs(&nrev, &orev, opts)?;
                if let Some(probes) = self.probes.get() {
                    self.disk.put_probes(&probes.borrow());
                }
                unplanned.extend(doubts);
                unplanned.extend(from_packages);
                return Ok(Some(Pair {
                    newer: nrev,
                    older: orev,
                    unplanned,
                    packages,
                }));
            }
            loaded.extend(reached);
        }
    }

    /// The project in `src` with the migration files of every app whose
    /// migrations it holds (what the code knows, for `tagback guard`).
    /// `Ok(None)` without a `manage.py`.
    pub fn load_known(
        &self,
        src: &dyn ProjectSource,
        opts: &ProjectOptions,
    ) -> Result<Option<(Project, Files)>> {
        let memo = self
            .resolutions
            .get_or_init(|| project::Resolutions::with_disk(self.disk.clone()));
        let Some(project) = project::load_shared(src, opts, memo, None)? else {
            return Ok(None);
        };
        let apps: BTreeSet<String> = project.repo_apps().map(|a| a.label.clone()).collect();
        let files = self.load_files(src, &project, &apps)?;
        Ok(Some((project, files)))
    }

    /// The graph of files from [`Loader::load_known`] (built only when the
    /// guard needs to name backward targets). A leaf conflict that a
    /// dynamic migration may explain only costs the guard its targets.
    pub fn known_graph(
        &self,
        src: &dyn ProjectSource,
        project: &Project,
        files: &Files,
    ) -> Result<Graph> {
        let apps: BTreeSet<String> = project.repo_apps().map(|a| a.label.clone()).collect();
        self.graph(files, &apps, project, src)
            .map(|(graph, _doubts)| graph)
    }

    /// Directories named `migrations` where the newer revision adds files
    /// while no app installed at either revision reads them (not in
    /// INSTALLED_APPS as tagback reads it, or moved by MIGRATION_MODULES):
    /// if the app is installed after all, those migrations would be left
    /// applied, so they block unless `.tagback.yml` says `not_installed:`.
    fn unplanned_dirs(
        &self,
        newer: &Revision,
        older: &Revision,
        opts: &ProjectOptions,
    ) -> Result<Vec<crate::finding::Finding>> {
        use crate::finding::{Code, Finding};
        let read: BTreeSet<&str> = newer
            .project
            .apps
            .iter()
            .chain(older.project.apps.iter())
            .filter(|a| {
                newer.project.package_of(&a.label).is_none()
                    && older.project.package_of(&a.label).is_none()
            })
            .filter_map(|a| a.migrations_dir.as_deref())
            .collect();
        let mut added: BTreeMap<String, Vec<String>> = BTreeMap::new();
        // A directory an app reads, known to have no subdirectories (by its
        // tree id, from an earlier walk), holds nothing to look at here.
        let skip = |dir: &str, tree: Oid| {
            read.contains(dir) && self.probes().borrow().knows(tree, cache::NO_SUBDIRECTORIES)
        };
        let mut flat = |dir: &str, tree: Oid| {
            if read.contains(dir) {
                self.probes()
                    .borrow_mut()
                    .add(tree, cache::NO_SUBDIRECTORIES);
            }
        };
        let paths = self.repo.added_files_in_dirs_named(
            &newer.snap,
            &older.snap,
            "migrations",
            &skip,
            &mut flat,
        )?;
        for path in paths {
            let Some((dir, name)) = path.rsplit_once('/') else {
                continue;
            };
            if !is_migration_file_name(name)
                || read.contains(dir)
                || opts
                    .not_installed
                    .iter()
                    .any(|d| d.trim_end_matches('/') == dir)
            {
                continue;
            }
            // Not a package: Django loads no migrations from it, whichever
            // app it belongs to (the rule of [`is_migrations_package`]).
            if !self
                .repo
                .exists(&newer.snap, &format!("{dir}/{PACKAGE_INIT}"))?
            {
                continue;
            }
            // A module that never names `Migration` cannot be a migration:
            // Django's loader raises BadMigrationError on it, so a directory
            // of such files (tests/migrations/test_*.py) is no migrations
            // module of a working deployment.
            if let Some((_, text)) = self.repo.read_text(&newer.snap, &path)?
                && !names_migration(&text)
            {
                continue;
            }
            added
                .entry(dir.to_string())
                .or_default()
                .push(name.to_string());
        }
        let mut findings = Vec::new();
        for (dir, names) in added {
            if let Some((app, file, dep)) = self.label_elsewhere(newer, &dir, &names)? {
                let expected = app
                    .migrations_module
                    .as_deref()
                    .map_or(String::new(), |m| format!(" ({})", m.replace('.', "/")));
                findings.push(
                    Finding::new(
                        Code::UnplannedMigrations,
                        format!(
                            "app {label} is installed at {rev} but has no migrations folder{expected}, while migration files for {label} are in {dir} ({file} depends on {label}.{dep}); if they are its migrations, set `migration_modules: {{{label}: {module}}}` in .tagback.yml, otherwise say `not_installed: [{dir}]`",
                            label = app.label,
                            rev = newer.snap.label,
                            module = dir.replace('/', "."),
                        ),
                    )
                    .at(dir, 0),
                );
                continue;
            }
            findings.push(
                Finding::new(
                    Code::UnplannedMigrations,
                    format!(
                        "{dir} gains {} migration(s) in {} ({}) but is the migrations module of no app installed at {} or {} as tagback reads the settings; if that app is installed, list it under `installed_apps:` (or its module under `migration_modules:`) in .tagback.yml, otherwise say `not_installed: [{dir}]`",
                        names.len(),
                        newer.snap.label,
                        names.join(", "),
                        newer.snap.label,
                        older.snap.label
                    ),
                )
                .at(dir, 0),
            );
        }
        Ok(findings)
    }

    /// A migrations directory that belongs to no app, whose added files
    /// depend on migrations of the same directory under a label: the
    /// installed app with that label that has no migrations folder, the
    /// file, and the migration it depends on.
    fn label_elsewhere<'p>(
        &self,
        rev: &'p Revision,
        dir: &str,
        added: &[String],
    ) -> Result<Option<(&'p project::App, String, String)>> {
        let stems = self.migration_names(&rev.snap, dir)?;
        for name in added {
            let path = format!("{dir}/{name}");
            let Some((_, text)) = self.repo.read_text(&rev.snap, &path)? else {
                continue;
            };
            let Ok(m) = migration::parse(&text, "") else {
                continue;
            };
            for dep in &m.dependencies {
                let migration::Dependency::Key(label, n) = dep else {
                    continue;
                };
                if !stems.contains(n.as_str()) {
                    continue;
                }
                if let Some(app) = rev
                    .project
                    .app(label)
                    .filter(|a| a.migrations_dir.is_none() && a.migrations_module.is_some())
                {
                    return Ok(Some((app, name.clone(), n.to_string())));
                }
            }
        }
        Ok(None)
    }

    fn graph(
        &self,
        files: &Files,
        loaded: &BTreeSet<String>,
        project: &Project,
        src: &dyn ProjectSource,
    ) -> Result<(Graph, Vec<crate::finding::Finding>)> {
        let index = UnloadedIndex {
            loader: self,
            project,
            src,
        };
        let apps: BTreeSet<String> = loaded
            .iter()
            .filter(|a| project.app(a).is_some_and(|x| x.migrations_dir.is_some()))
            .cloned()
            .collect();
        let g = graph::build(files, &apps, project, src.label(), &index)?;
        let findings = graph::check_conflicts(&g, &apps, src.label())?;
        Ok((g, findings))
    }

    fn probes(&self) -> &RefCell<cache::Probes> {
        self.probes.get_or_init(|| RefCell::new(self.disk.probes()))
    }

    /// Migration names (file stems) of an app's migrations directory.
    pub fn migration_names(&self, snap: &Snapshot, dir: &str) -> Result<BTreeSet<String>> {
        let key = (snap.label.clone(), dir.to_string());
        if let Some(n) = self.listings.borrow().get(&key) {
            return Ok(n.clone());
        }
        let files: Vec<crate::git::DirEntry> = self
            .repo
            .list_dir(snap, dir)?
            .unwrap_or_default()
            .into_iter()
            .filter(|e| !e.is_dir)
            .collect();
        refuse_compiled_modules(files.iter().map(|e| e.name.as_str()), dir, &snap.label)?;
        let names: BTreeSet<String> = migrations_among(files, |e| &e.name)
            .into_iter()
            .map(|(stem, _)| stem)
            .collect();
        self.listings.borrow_mut().insert(key, names.clone());
        Ok(names)
    }

    fn load_files(
        &self,
        src: &dyn ProjectSource,
        project: &Project,
        apps: &BTreeSet<String>,
    ) -> Result<Files> {
        let mut out = Vec::new();
        for label in apps {
            if let Some(package) = project.package_of(label) {
                out.extend(package.files.iter().cloned());
                continue;
            }
            let Some(dir) = project.app(label).and_then(|a| a.migrations_dir.clone()) else {
                continue;
            };
            let tree = src.tree_id(&dir);
            let cached = tree
                .and_then(|t| self.disk.get(label, t))
                .and_then(|c| self.files_of_cached(label, &dir, c));
            match cached {
                Some(files) => out.extend(files),
                None => out.extend(self.parse_app(src, label, &dir, tree)?),
            }
        }
        Ok(Files::new(out))
    }

    /// An app's files from its cached directory (the graph part of each
    /// migration; operations are read only for the migrations to unapply).
    /// `None` when the cached file is malformed.
    fn files_of_cached(
        &self,
        label: &str,
        dir: &str,
        cached: cache::CachedDir,
    ) -> Option<Vec<Rc<MigrationFile>>> {
        // The same app at the other revision, read just before: its lines
        // and files, sorted by name as these are.
        let previous = self.previous_dir.borrow_mut().remove(label);
        let previous = previous.filter(|p| p.dir == dir);
        let mut j = 0;
        let mut files: Vec<Rc<MigrationFile>> = Vec::with_capacity(cached.len_hint());
        let mut ranges = Vec::with_capacity(files.capacity());
        let mut names = cache::SharedNames::new(label);
        for line in cached.lines() {
            let line = line?;
            ranges.push(cached.range_of(line.raw));
            // Most lines are the same at both revisions: the file of the
            // other revision is shared, not decoded again.
            if let Some(p) = &previous {
                while j < p.files.len() && p.files[j].key.name.as_str() < line.name {
                    j += 1;
                }
                if j < p.files.len() && p.line(j) == line.raw {
                    names.decoded(&p.files[j].key.name);
                    files.push(p.files[j].clone());
                    continue;
                }
            }
            let key = MigrationKey {
                app: names.app(),
                name: names.get(line.name),
            };
            let migration = Arc::new(line.migration(&names)?);
            names.decoded(&key.name);
            files.push(Rc::new(MigrationFile {
                file: migration_path(dir, line.name),
                key,
                migration,
                blob: Some(line.blob()?),
            }));
        }
        self.previous_dir.borrow_mut().insert(
            label.to_string(),
            PreviousDir {
                dir: dir.to_string(),
                cached,
                ranges,
                files: files.clone(),
            },
        );
        Some(files)
    }

    /// Speed only: read and parse on every core, in one pass over both
    /// revisions, the migration blobs of `apps` that neither this run nor
    /// the on-disk cache has read, so that [`Loader::parse_app`] finds them
    /// parsed. A blob this pass cannot read or parse is left for
    /// `parse_app`, which reads it again and names what is wrong.
    fn prefetch(&self, revs: [(&Snapshot, &Project); 2], apps: &BTreeSet<String>) {
        let mut seen: FxHashSet<(&str, OidKey)> = FxHashSet::default();
        // Listed app by app as the blobs are read, so that parsing starts
        // with the first app's blobs.
        let wanted = revs
            .into_iter()
            .flat_map(|(snap, project)| apps.iter().map(move |label| (snap, project, label)))
            .filter_map(|(snap, project, label)| {
                if project.package_of(label).is_some() {
                    return None;
                }
                let dir = project.app(label)?.migrations_dir.as_deref()?;
                let src = GitRevision::new(self.repo, snap);
                // Only a commit's tree gives the ids without reading.
                let tree = src.tree_id(dir)?;
                if self.disk.may_have(label, tree) {
                    return None;
                }
                // The blobs of what may be migrations (whether the
                // directory is a package is `load_files`'s to decide: a
                // blob parsed for nothing is only time).
                let mut blobs = Vec::new();
                self.repo
                    .each_file(snap, dir, |name, id| {
                        if is_migration_file_name(name) {
                            blobs.push(id);
                        }
                    })
                    .ok()??;
                Some((label.as_str(), blobs))
            })
            .flat_map(|(label, blobs)| blobs.into_iter().map(move |id| (label, id)))
            .filter(|&(label, oid)| {
                self.parsed.borrow().get(label, oid).is_none()
                    && seen.insert((label, OidKey::of(oid)))
            })
            .map(|(label, oid)| ((label, oid), oid));
        // Each blob is parsed for its own app.
        let results = self
            .repo
            .map_blobs(wanted, self.threads, |&(label, _), data| {
                parse_graph_one(data, label).ok().map(Arc::new)
            });
        let mut parsed = self.parsed.borrow_mut();
        for ((label, oid), m) in results {
            if let Some(Some(m)) = m {
                parsed.insert(label, oid, m);
            }
        }
    }

    /// An app's files read from git: list them, read the blobs not parsed
    /// yet, parse those on every core, assemble in name order, and cache the
    /// directory's parse under its tree id.
    fn parse_app(
        &self,
        src: &dyn ProjectSource,
        label: &str,
        dir: &str,
        tree: Option<Oid>,
    ) -> Result<Vec<Rc<MigrationFile>>> {
        let mut listed = Vec::new();
        let mut unparsed = Vec::new();
        for (name, identified) in migration_files(src, dir)? {
            let file = migration_path(dir, &name);
            let oid = identified.id;
            if self.parsed.borrow().get(label, oid).is_none() {
                let data = src.read_identified(&file, identified)?;
                unparsed.push((oid, data, file.clone()));
            }
            listed.push((name, file, oid));
        }
        let results = parse_all(&unparsed, label, self.threads);
        for ((oid, _, file), result) in unparsed.iter().zip(results) {
            let m = result.map_err(|e| e.into_error(file, src.label()))?;
            self.parsed.borrow_mut().insert(label, *oid, Arc::new(m));
        }
        let mut entries = Vec::new();
        let mut files = Vec::new();
        let app = Name::from(label);
        for (name, file, oid) in listed {
            let Some(migration) = self.parsed.borrow().get(label, oid) else {
                continue;
            };
            entries.push(cache::Entry {
                name: name.clone(),
                blob: oid,
                migration: migration.clone(),
            });
            files.push(Rc::new(MigrationFile {
                key: MigrationKey::new(app.clone(), name),
                file,
                migration,
                blob: Some(oid),
            }));
        }
        if let Some(t) = tree {
            self.disk.put(label, t, &entries);
        }
        Ok(files)
    }

    /// Parse a blob completely and keep that reading for the rest of the
    /// run (in place of its reading for the graph).
    fn parse(
        &self,
        oid: Oid,
        data: &[u8],
        label: &str,
        file: &str,
        rev: &str,
    ) -> Result<Arc<Migration>> {
        let m = parse_one(data, label).map_err(|e| e.into_error(file, rev))?;
        let m = Arc::new(m);
        self.parsed.borrow_mut().insert(label, oid, m.clone());
        Ok(m)
    }

    /// The operations of the migrations a plan unapplies (`files`: indices
    /// into `rev.files`, as [`crate::plan::Decision::files_to_read`] gives
    /// them), read completely and with custom operation classes followed:
    /// the input of the plan's second stage.
    pub fn read_operations(&self, rev: &Revision, files: &[usize]) -> UnappliedOperations {
        let mut out = UnappliedOperations::default();
        for &fi in files {
            let f = rev.files.at(fi);
            let complete = self.complete(rev, f);
            if let Ok(m) = &complete {
                out.insert_dynamic(fi, m.operations_dynamic.clone());
            }
            let read = complete.map_err(|e| e.to_string()).and_then(|m| {
                let ops = m
                    .operations
                    .read()
                    .ok_or_else(|| format!("{} was described without its operations", f.file))?;
                Ok(ops
                    .iter()
                    .map(|op| {
                        let (reversibility, reason) = if op.custom.is_some() {
                            self.custom_reversibility(rev, f, op)
                        } else {
                            (op.reversibility.clone(), op.reason.clone())
                        };
                        JudgedOperation {
                            operation: op.clone(),
                            reversibility,
                            reason,
                        }
                    })
                    .collect())
            });
            out.insert(fi, read);
        }
        out
    }

    /// The migration with its operations, parsing the blob when it came
    /// from the on-disk cache without them. Operations decide safety
    /// (irreversible, data loss): they come from the blob on every run,
    /// never from the on-disk cache.
    pub fn complete(&self, rev: &Revision, f: &MigrationFile) -> Result<Arc<Migration>> {
        if f.migration.operations.is_read() {
            return Ok(f.migration.clone());
        }
        let Some(oid) = f.blob else {
            return Err(Error::input(format!(
                "{} at {} was read without its operations and without its blob id",
                f.file, rev.snap.label
            )));
        };
        if let Some(m) = self.parsed.borrow().get(&f.key.app, oid)
            && m.operations.is_read()
        {
            return Ok(m);
        }
        let src = GitRevision::new(self.repo, &rev.snap);
        let identified = IdentifiedFile {
            name: f.key.name.to_string(),
            id: oid,
            data: None,
        };
        let data = src.read_identified(&f.file, identified)?;
        self.parse(oid, &data, &f.key.app, &f.file, src.label())
    }

    /// Follow a custom operation class to decide whether it can be unapplied.
    pub fn custom_reversibility(
        &self,
        rev: &Revision,
        file: &MigrationFile,
        op: &Operation,
    ) -> (Reversibility, Option<String>) {
        let unknown = (op.reversibility.clone(), op.reason.clone());
        let Some(custom) = &op.custom else {
            return unknown;
        };
        let Some(module) = &custom.module else {
            return unknown;
        };
        // A package's own operation classes are not in the repository.
        if rev.project.package_of(&file.key.app).is_some() {
            return unknown;
        }
        let package = rev
            .project
            .app(&file.key.app)
            .and_then(|a| a.migrations_module.clone())
            .unwrap_or_default();
        let Some(absolute) = project::absolute_module(&package, module) else {
            return unknown;
        };
        let src = GitRevision::new(self.repo, &rev.snap);
        let Ok(Some((path, _))) = rev.project.module_file(&src, &absolute) else {
            return unknown;
        };
        let Ok(Some(text)) = src.read_text(&path) else {
            return unknown;
        };
        let Ok(stmts) = python::parse_module(&text) else {
            return unknown;
        };
        let classes: BTreeMap<String, python::Class> = stmts
            .into_iter()
            .filter_map(|s| match s {
                python::Stmt::Class(c) => Some((c.name.clone(), c)),
                _ => None,
            })
            .collect();
        let Some(class) = classes.get(&custom.class) else {
            return unknown;
        };
        let lookup = |n: &str| classes.get(n).cloned();
        let (r, why) = migration::class_reversibility(class, &lookup, 0);
        let why = (!why.is_empty()).then(|| format!("{why} ({path})"));
        (r, why)
    }
}

/// Migrations parsed in this run, by app label and blob id (a blob's parse
/// depends on the app it belongs to).
#[derive(Default)]
struct ParsedBlobs {
    by_app: FxHashMap<String, FxHashMap<OidKey, Arc<Migration>>>,
    len: usize,
}

impl ParsedBlobs {
    fn get(&self, label: &str, oid: Oid) -> Option<Arc<Migration>> {
        self.by_app.get(label)?.get(&OidKey::of(oid)).cloned()
    }

    fn insert(&mut self, label: &str, oid: Oid, m: Arc<Migration>) {
        let app = match self.by_app.get_mut(label) {
            Some(app) => app,
            None => self.by_app.entry(label.to_string()).or_default(),
        };
        if app.insert(OidKey::of(oid), m).is_none() {
            self.len += 1;
        }
    }
}

/// Why a migration blob could not be read.
enum ParseFailure {
    /// Not UTF-8: the byte offset of the first invalid byte.
    Utf8(usize),
    /// Not a migration Django can load.
    Python(migration::ParseError),
}

impl ParseFailure {
    fn into_error(self, file: &str, rev: &str) -> Error {
        match self {
            ParseFailure::Utf8(at) => {
                Error::input(format!("{file} at {rev} is not valid UTF-8 (byte {at})"))
            }
            ParseFailure::Python(e) => {
                let at = if e.line > 0 {
                    format!(" line {}", e.line)
                } else {
                    String::new()
                };
                Error::input(format!("{file} at {rev}{at}: {}", e.message))
            }
        }
    }
}

/// manage.py found at `has` (in `root`) but not at `lacks`, which is the
/// `side` (`newer` / `older`) of the pair.
fn manage_py_moved(has: &Snapshot, lacks: &Snapshot, side: &str, root: &str) -> Error {
    let found = if root.is_empty() {
        "manage.py".to_string()
    } else {
        format!("{root}/manage.py")
    };
    Error::input(format!(
        "manage.py exists at {} ({found}) but not at {} where tagback looks (the root and two directories down); if it moved between the releases, say where it is at {} with `{side}: {{manage_py: PATH}}` in .tagback.yml (`manage_py:` for both)",
        has.label, lacks.label, lacks.label
    ))
}

/// A migration blob read with `read` (`migration::parse` or `parse_graph`).
fn read_blob_as(
    data: &[u8],
    label: &str,
    read: fn(&str, &str) -> std::result::Result<Migration, migration::ParseError>,
) -> std::result::Result<Migration, ParseFailure> {
    let text = std::str::from_utf8(data).map_err(|e| ParseFailure::Utf8(e.valid_up_to()))?;
    read(text, label).map_err(ParseFailure::Python)
}

/// A migration read completely (operations judged).
fn parse_one(data: &[u8], label: &str) -> std::result::Result<Migration, ParseFailure> {
    read_blob_as(data, label, migration::parse)
}

/// A migration read for the graph (operations deferred: read again with
/// [`Loader::complete`] for the migrations a plan unapplies).
fn parse_graph_one(data: &[u8], label: &str) -> std::result::Result<Migration, ParseFailure> {
    read_blob_as(data, label, migration::parse_graph)
}

/// Parse blobs of one app on every core (parsing is most of a cold run),
/// results in the order of `blobs`.
fn parse_all(
    blobs: &[(Oid, Vec<u8>, String)],
    label: &str,
    threads: usize,
) -> Vec<std::result::Result<Migration, ParseFailure>> {
    if threads < 2 || blobs.len() < 32 {
        return blobs
            .iter()
            .map(|(_, data, _)| parse_graph_one(data, label))
            .collect();
    }
    let chunk = blobs.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = blobs
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(_, data, _)| parse_graph_one(data, label))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// An app's cached migrations directory as read for one revision.
struct PreviousDir {
    dir: String,
    cached: cache::CachedDir,
    /// Where the line of each file is in `cached`.
    ranges: Vec<std::ops::Range<usize>>,
    files: Vec<Rc<MigrationFile>>,
}

impl PreviousDir {
    /// The cache line of `files[j]`.
    fn line(&self, j: usize) -> &str {
        self.cached.at(self.ranges[j].clone())
    }
}

/// The migrations of a directory of `src` ([`migrations_among`]), each
/// with its content id. A compiled module Python would import in place of
/// a source is an error ([`refuse_compiled_modules`]).
fn migration_files(src: &dyn ProjectSource, dir: &str) -> Result<Vec<(String, IdentifiedFile)>> {
    let wanted = |n: &str| {
        n == PACKAGE_INIT || is_migration_file_name(n) || compiled_module_stem(n).is_some()
    };
    let Some(files) = src.identified_files(dir, &wanted)? else {
        return Ok(Vec::new());
    };
    refuse_compiled_modules(files.iter().map(|f| f.name.as_str()), dir, src.label())?;
    Ok(migrations_among(files, |f| &f.name))
}

/// The stem of a file Python imports as a module of a migrations package
/// although it is no source tagback can read: a sourceless `STEM.pyc`
/// (beside the sources, not in `__pycache__`) or an extension module
/// `STEM.so` / `STEM.TAG.so`, where STEM is `__init__` or a migration's
/// name. Any `.so` tag counts (which ones import depends on the Python in
/// the image).
fn compiled_module_stem(file_name: &str) -> Option<&str> {
    let stem = match file_name.strip_suffix(".pyc") {
        Some(stem) if !stem.contains('.') => stem,
        Some(_) => return None,
        None => file_name.strip_suffix(".so")?.split('.').next()?,
    };
    (stem == "__init__" || is_migration_name(stem)).then_some(stem)
}

/// Django imports a compiled migration module (or package `__init__`)
/// that tagback cannot read: an extension module always (Python's
/// `FileFinder` tries extensions before sources), a `.pyc` when no `.py`
/// is beside it (sources come before bytecode). tagback reads only source,
/// so it would plan without that migration, or from a source Python does
/// not import: refused.
fn refuse_compiled_modules<'a>(
    names: impl Iterator<Item = &'a str> + Clone,
    dir: &str,
    rev: &str,
) -> Result<()> {
    for name in names.clone() {
        let Some(stem) = compiled_module_stem(name) else {
            continue;
        };
        let source = format!("{stem}.py");
        let has_source = names.clone().any(|n| n == source);
        if name.ends_with(".so") && has_source {
            return Err(Error::input(format!(
                "{dir}/{name} at {rev} is an extension module, which Python imports instead of {source}: tagback reads only source and cannot tell they agree; delete {name} from the migrations package"
            )));
        }
        if !has_source {
            return Err(Error::input(format!(
                "{dir}/{name} at {rev} is a compiled module without its source ({source}): Django imports it as part of the migrations package, and tagback reads only source; ship or commit {source}, or delete {name}"
            )));
        }
    }
    Ok(())
}

/// `DIR/NAME.py`.
fn migration_path(dir: &str, name: &str) -> String {
    let mut p = String::with_capacity(dir.len() + name.len() + 4);
    p.push_str(dir);
    p.push('/');
    p.push_str(name);
    p.push_str(".py");
    p
}

struct UnloadedIndex<'a, 'r> {
    loader: &'a Loader<'r>,
    project: &'a Project,
    src: &'a dyn ProjectSource,
}

impl graph::AppIndex for UnloadedIndex<'_, '_> {
    fn exists(&self, app: &str, name: &str) -> Result<bool> {
        let Some(dir) = self
            .project
            .app(app)
            .and_then(|a| a.migrations_dir.as_deref())
        else {
            return Ok(true);
        };
        // One lookup instead of listing the whole directory, for a name
        // that can be a migration at all.
        if name.contains('/') || !is_migration_name(name) {
            return Ok(false);
        }
        // The same rule as for loaded apps: no `__init__.py`, no migrations
        // (the probe cache knows it under a name no migration can have).
        let init = PACKAGE_INIT.trim_end_matches(".py");
        // Both probes are in one directory: its id is looked up once, and
        // its tree read once for the probes the cache does not know.
        let tree = self.src.tree_id(dir);
        let unknown: Vec<&str> = [init, name]
            .into_iter()
            .filter(|probe| !tree.is_some_and(|t| self.loader.probes().borrow().knows(t, probe)))
            .collect();
        if unknown.is_empty() {
            return Ok(true);
        }
        let files: Vec<String> = unknown
            .iter()
            .map(|&probe| {
                if probe == init {
                    PACKAGE_INIT.to_string()
                } else {
                    format!("{probe}.py")
                }
            })
            .collect();
        let files: Vec<&str> = files.iter().map(String::as_str).collect();
        if !self.src.all_exist_once(dir, &files)? {
            return Ok(false);
        }
        if let Some(t) = tree {
            for probe in unknown {
                self.loader.probes().borrow_mut().add(t, probe);
            }
        }
        Ok(true)
    }
}

/// Whether a module's text could define a `Migration` attribute: the word
/// `Migration` or a star import (which could bring one in).
fn names_migration(text: &str) -> bool {
    text.contains("import *")
        || text.match_indices("Migration").any(|(i, _)| {
            let before = text[..i].chars().next_back();
            let after = text[i + "Migration".len()..].chars().next();
            let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
            !word(before) && !word(after)
        })
}
