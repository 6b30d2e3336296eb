//! A Django project at one revision, read statically: where `manage.py` is,
//! the settings module, `INSTALLED_APPS` resolved to app labels and migration
//! directories, `AUTH_USER_MODEL` and `MIGRATION_MODULES`.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

mod records;

use records::PROJECTS_FILE;

use super::python::{self, Stmt, Value};
use crate::error::{Error, Result};
use crate::git::{Repo, Snapshot};

/// How to find the project (from `.tagback.yml`).
#[derive(Debug, Clone, Default)]
pub struct ProjectOptions {
    /// Path of `manage.py` in the repository.
    pub manage_py: Option<String>,
    /// The settings module.
    pub settings: Option<String>,
    /// Installed apps overriding `INSTALLED_APPS`.
    pub installed_apps: Option<Vec<String>>,
}

/// An installed app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// `AppConfig.label`.
    pub label: String,
    /// `AppConfig.name` (the package).
    pub name: String,
    /// The migrations directory in the repository, when the app's migrations
    /// live in the repository.
    pub migrations_dir: Option<String>,
    /// The migrations module (`shop.migrations`).
    pub migrations_module: Option<String>,
}

/// The project at one revision.
#[derive(Debug, Clone)]
pub struct Project {
    /// Directory holding `manage.py` (`""` at the root): Python's `sys.path[0]`.
    pub root: String,
    /// The settings module.
    pub settings_module: String,
    /// Installed apps by label, in `INSTALLED_APPS` order.
    pub apps: Vec<Rc<App>>,
    /// String settings that dependencies may name (`AUTH_USER_MODEL`).
    pub string_settings: BTreeMap<String, String>,
    /// Index of `apps` by label.
    by_label: BTreeMap<String, usize>,
    /// What the apps were resolved from, for reuse by another revision.
    resolved_from: Option<ResolvedFrom>,
}

/// The inputs of a project's app resolution: the settings read, and the tree
/// ids of each entry's top-level package and of its migrations module's.
#[derive(Debug, Clone)]
struct ResolvedFrom {
    settings: std::rc::Rc<SettingsRead>,
    entries: Vec<String>,
    tops: Vec<Tops>,
}

/// The tree ids of an entry's top-level package and of its migrations
/// module's top-level package (`None`: not a directory of the repository).
type Tops = (Option<git2::Oid>, Option<git2::Oid>);

impl Project {
    /// The installed app with this label.
    pub fn app(&self, label: &str) -> Option<&App> {
        self.by_label.get(label).map(|i| &*self.apps[*i])
    }

    /// Labels of installed apps whose migrations are in the repository.
    pub fn repo_apps(&self) -> impl Iterator<Item = &App> {
        self.apps
            .iter()
            .map(|a| &**a)
            .filter(|a| a.migrations_dir.is_some())
    }

    /// Repository path of a module's file: `(path, is_package)`.
    pub fn module_file(
        &self,
        repo: &Repo,
        snap: &Snapshot,
        module: &str,
    ) -> Result<Option<(String, bool)>> {
        module_file(repo, snap, &self.root, module)
    }
}

fn join(root: &str, rel: &str) -> String {
    if root.is_empty() {
        rel.to_string()
    } else {
        format!("{root}/{rel}")
    }
}

fn valid_module(module: &str) -> bool {
    if module
        .bytes()
        .all(|b| b == b'.' || b == b'_' || b.is_ascii_alphanumeric())
    {
        // The common case, without decoding characters.
        return !module.is_empty()
            && module
                .split('.')
                .all(|p| p.as_bytes().first().is_some_and(|b| !b.is_ascii_digit()));
    }
    !module.is_empty()
        && module.split('.').all(|p| {
            !p.is_empty()
                && !p.starts_with(|c: char| c.is_ascii_digit())
                && p.chars().all(|c| c == '_' || c.is_alphanumeric())
        })
}

fn module_file(
    repo: &Repo,
    snap: &Snapshot,
    root: &str,
    module: &str,
) -> Result<Option<(String, bool)>> {
    if !valid_module(module) {
        return Ok(None);
    }
    let rel = module.replace('.', "/");
    let file = join(root, &format!("{rel}.py"));
    if repo.exists(snap, &file)? {
        return Ok(Some((file, false)));
    }
    let init = join(root, &format!("{rel}/__init__.py"));
    if repo.exists(snap, &init)? {
        return Ok(Some((init, true)));
    }
    Ok(None)
}

/// Find `manage.py`: the configured path, the root, or one or two levels down.
pub fn find_manage_py(
    repo: &Repo,
    snap: &Snapshot,
    configured: Option<&str>,
) -> Result<Option<String>> {
    if let Some(p) = configured {
        return Ok(repo.exists(snap, p)?.then(|| p.to_string()));
    }
    if repo.exists(snap, "manage.py")? {
        return Ok(Some("manage.py".into()));
    }
    let Some(top) = repo.list_dir(snap, "")? else {
        return Ok(None);
    };
    let dirs: Vec<String> = top
        .into_iter()
        .filter(|e| e.is_dir && !e.name.starts_with('.'))
        .map(|e| e.name)
        .collect();
    for d in &dirs {
        let p = format!("{d}/manage.py");
        if repo.exists(snap, &p)? {
            return Ok(Some(p));
        }
    }
    for d in &dirs {
        let Some(sub) = repo.list_dir(snap, d)? else {
            continue;
        };
        for e in sub
            .into_iter()
            .filter(|e| e.is_dir && !e.name.starts_with('.'))
        {
            let p = format!("{d}/{}/manage.py", e.name);
            if repo.exists(snap, &p)? {
                return Ok(Some(p));
            }
        }
    }
    Ok(None)
}

/// App resolutions, shared between the revisions of one run and kept on disk
/// between runs: an entry whose top-level package directory has the same tree
/// id resolves the same way, and a migrations directory exists or not the same
/// way when its top-level directory has the same tree id. A warm run of a
/// project with hundreds of apps reads no app directory at all.
#[derive(Default)]
pub struct Resolutions {
    /// Loaded from disk on first use (a warm run rarely needs it).
    memo: std::cell::OnceCell<std::cell::RefCell<super::cache::AppMemo>>,
    disk: Option<super::cache::DiskCache>,
    /// Python files parsed in this run, by blob id (settings and app
    /// configs are mostly the same blobs at both revisions).
    parsed: std::cell::RefCell<BTreeMap<git2::Oid, std::rc::Rc<Vec<Stmt>>>>,
    /// Settings read in this run or by earlier runs.
    settings: std::cell::RefCell<Vec<std::rc::Rc<SettingsRead>>>,
    /// Projects resolved by earlier runs (from the on-disk cache).
    records: Vec<records::Record>,
    /// Top-level entries the settings being read have looked at.
    touched: std::cell::RefCell<BTreeSet<String>>,
}

/// The repository's top-level entries (and their ids) that a result depends
/// on: everything it read lies below them.
type Footprint = Vec<(String, Option<git2::Oid>)>;

/// What reading the settings module gave, reduced to what tagback uses.
#[derive(Debug)]
struct SettingsRead {
    /// The options it was read with (`ProjectOptions` except the apps).
    opts_key: String,
    manage_py: String,
    settings_module: String,
    settings_file: String,
    installed_apps: InstalledApps,
    migration_modules: BTreeMap<String, Option<String>>,
    string_settings: BTreeMap<String, String>,
    /// Apps appended under a condition: (entry, file, line).
    maybe_apps: Vec<(String, String, u32)>,
    /// The top-level entries it read, with their ids (`None`: not reusable).
    footprint: Option<Footprint>,
}

/// `INSTALLED_APPS` as the settings module defines it.
#[derive(Debug, Clone, PartialEq)]
enum InstalledApps {
    /// A list tagback can read.
    List(Vec<String>),
    /// Changed in a way tagback cannot follow: (file, line, why).
    Dynamic(String, u32, String),
    /// Assigned something that is not a list of strings.
    NotStatic,
    /// Not assigned.
    Missing,
}

impl SettingsRead {
    /// Whether both were read from identical files with the same options.
    fn same_as(&self, other: &SettingsRead) -> bool {
        std::ptr::eq(self, other)
            || (self.opts_key == other.opts_key
                && self.manage_py == other.manage_py
                && self.footprint.is_some()
                && self.footprint == other.footprint)
    }

    /// Whether what it read is identical at `snap`.
    fn still_valid(&self, repo: &Repo, snap: &Snapshot, opts_key: &str, manage_py: &str) -> bool {
        self.opts_key == opts_key
            && self.manage_py == manage_py
            && matches!(snap.source, crate::git::Source::Commit { .. })
            && self
                .footprint
                .as_ref()
                .is_some_and(|f| f.iter().all(|(top, id)| repo.entry_id(snap, top) == *id))
    }
}

/// The top-level entry of the repository a path lies below.
fn top_of(path: &str) -> &str {
    path.split('/').next().unwrap_or(path)
}

impl Resolutions {
    /// Resolutions backed by the on-disk cache.
    pub fn with_disk(disk: super::cache::DiskCache) -> Resolutions {
        let records = disk
            .read(PROJECTS_FILE)
            .and_then(|t| records::decode(&t))
            .unwrap_or_default();
        let settings = records.iter().map(|r| r.settings.clone()).collect();
        Resolutions {
            memo: std::cell::OnceCell::new(),
            disk: Some(disk),
            parsed: Default::default(),
            settings: std::cell::RefCell::new(settings),
            records,
            touched: Default::default(),
        }
    }

    /// Write what this run resolved back to the cache (best effort): the
    /// app resolutions, and the projects of this run (most recent first).
    pub fn save(&self, projects: &[&Project]) {
        let Some(disk) = &self.disk else {
            return;
        };
        if let Some(memo) = self.memo.get() {
            disk.put_app_memo(&memo.borrow());
        }
        if let Some(records) = records::merge(&self.records, projects) {
            disk.write(PROJECTS_FILE, &records::encode(&records));
        }
    }

    fn app_memo(&self) -> &std::cell::RefCell<super::cache::AppMemo> {
        self.memo.get_or_init(|| {
            std::cell::RefCell::new(self.disk.as_ref().map(|d| d.app_memo()).unwrap_or_default())
        })
    }

    /// Record that the settings being read depend on the top-level entry of
    /// `path` (a repository path, existing or not).
    fn touch(&self, path: &str) {
        let top = top_of(path);
        if !self.touched.borrow().contains(top) {
            self.touched.borrow_mut().insert(top.to_string());
        }
    }

    /// The ids of a footprint's entries at a snapshot (`None` for snapshots
    /// other than commits, whose files are not identified by tree ids).
    fn footprint(repo: &Repo, snap: &Snapshot, tops: &BTreeSet<String>) -> Option<Footprint> {
        matches!(snap.source, crate::git::Source::Commit { .. }).then(|| {
            tops.iter()
                .map(|t| (t.clone(), repo.entry_id(snap, t)))
                .collect()
        })
    }

    /// Read and parse a Python file at a snapshot, once per blob; errors
    /// name file, revision and line.
    fn python(&self, repo: &Repo, snap: &Snapshot, file: &str) -> Result<std::rc::Rc<Vec<Stmt>>> {
        let (oid, text) = repo
            .read_text(snap, file)?
            .unwrap_or((git2::Oid::ZERO_SHA1, String::new()));
        if let Some(stmts) = self.parsed.borrow().get(&oid) {
            return Ok(stmts.clone());
        }
        let stmts = python::parse_module(&text).map_err(|e| {
            Error::input(format!(
                "{file} at {} line {}: invalid Python: {}",
                snap.label, e.line, e.message
            ))
        })?;
        let stmts = std::rc::Rc::new(stmts);
        self.parsed.borrow_mut().insert(oid, stmts.clone());
        Ok(stmts)
    }

    fn app(&self, repo: &Repo, snap: &Snapshot, root: &str, entry: &str) -> Result<App> {
        let top = join(root, entry.split('.').next().unwrap_or(entry));
        let Some(oid) = repo.dir_oid(snap, &top) else {
            return resolve_app(repo, snap, root, entry, self);
        };
        let key = (root.to_string(), entry.to_string(), oid);
        if let Some((label, name)) = self.app_memo().borrow_mut().app(&key) {
            return Ok(App {
                label,
                name,
                migrations_dir: None,
                migrations_module: None,
            });
        }
        let app = resolve_app(repo, snap, root, entry, self)?;
        self.app_memo()
            .borrow_mut()
            .add_app(key, (app.label.clone(), app.name.clone()));
        Ok(app)
    }

    /// Whether the migrations directory `dir` (of module `module`) exists.
    fn dir_exists(
        &self,
        repo: &Repo,
        snap: &Snapshot,
        root: &str,
        module: &str,
        dir: &str,
    ) -> Result<bool> {
        let top = join(root, module.split('.').next().unwrap_or(module));
        let Some(oid) = repo.dir_oid(snap, &top) else {
            return repo.dir_exists(snap, dir);
        };
        let key = (dir.to_string(), oid);
        if let Some(e) = self.app_memo().borrow_mut().dir(&key) {
            return Ok(e);
        }
        let e = repo.dir_exists(snap, dir)?;
        self.app_memo().borrow_mut().add_dir(key, e);
        Ok(e)
    }
}

/// Load the project at a snapshot without sharing resolutions.
pub fn load(repo: &Repo, snap: &Snapshot, opts: &ProjectOptions) -> Result<Option<Project>> {
    load_shared(repo, snap, opts, &Resolutions::default(), None)
}

/// Load the project at a snapshot, reusing `memo` across revisions, and the
/// apps of `prior` (another revision of the same run) whose packages have
/// the same tree ids.
pub fn load_shared(
    repo: &Repo,
    snap: &Snapshot,
    opts: &ProjectOptions,
    memo: &Resolutions,
    prior: Option<&Project>,
) -> Result<Option<Project>> {
    let Some(manage_py) = find_manage_py(repo, snap, opts.manage_py.as_deref())? else {
        return Ok(None);
    };
    let root = manage_py
        .rsplit_once('/')
        .map_or(String::new(), |(d, _)| d.to_string());
    let settings = read_settings(repo, snap, opts, memo, &root, &manage_py)?;
    let settings_file = &settings.settings_file;
    let entries: Vec<String> = match (&opts.installed_apps, &settings.installed_apps) {
        (Some(apps), _) => apps.clone(),
        (None, InstalledApps::List(apps)) => apps.clone(),
        (None, InstalledApps::Dynamic(file, line, what)) => {
            return Err(Error::input(format!(
                "INSTALLED_APPS in {file} at {} line {line} {what}; list the apps under `installed_apps:` in .tagback.yml",
                snap.label
            )));
        }
        (None, InstalledApps::NotStatic) => {
            return Err(Error::input(format!(
                "INSTALLED_APPS in {settings_file} at {} cannot be read statically; list the apps under `installed_apps:` in .tagback.yml",
                snap.label
            )));
        }
        (None, InstalledApps::Missing) => {
            return Err(Error::input(format!(
                "{settings_file} at {} defines no INSTALLED_APPS that tagback can read; list the apps under `installed_apps:` in .tagback.yml",
                snap.label
            )));
        }
    };
    let migration_modules = &settings.migration_modules;

    // Another revision of this run that read the same settings: entries
    // whose packages have the same tree ids resolve alike.
    // Failing that, a project an earlier run resolved from the same settings.
    let prior = prior.and_then(|p| {
        let from = p.resolved_from.as_ref()?;
        (p.root == root && from.settings.same_as(&settings) && from.entries == entries)
            .then_some((p, from))
    });
    let records: Vec<&records::Record> = memo
        .records
        .iter()
        .filter(|r| r.root == root && r.settings.same_as(&settings) && r.entries == entries)
        .collect();
    let module_top = |module: &str| -> Option<git2::Oid> {
        if !valid_module(module) {
            return None;
        }
        let top = top_of_module(module);
        if root.is_empty() {
            repo.dir_oid(snap, top)
        } else {
            repo.dir_oid(snap, &join(&root, top))
        }
    };
    let mut apps: Vec<Rc<App>> = Vec::with_capacity(entries.len());
    let mut tops = Vec::with_capacity(entries.len());
    let mut by_label: BTreeMap<String, usize> = BTreeMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let top = module_top(entry);
        // The tree ids this entry was resolved from, if `app` resolved it
        // from the same ones as now.
        let same = |(was, was_migrations): &Tops, app: &Rc<App>| -> Option<Tops> {
            let migrations_top = match &app.migrations_module {
                Some(m) if top_of_module(m) == top_of_module(entry) => top,
                Some(m) => module_top(m),
                None => None,
            };
            (top.is_some() && *was == top && *was_migrations == migrations_top)
                .then_some((top, migrations_top))
        };
        let reused = prior
            .and_then(|(p, from)| Some((p.apps[i].clone(), same(&from.tops[i], &p.apps[i])?)))
            .or_else(|| {
                records.iter().find_map(|r| {
                    r.resolutions[i]
                        .iter()
                        .find_map(|(t, app)| Some((app.clone(), same(t, app)?)))
                })
            });
        let app = match reused {
            Some((app, resolved_from)) => {
                tops.push(resolved_from);
                app
            }
            None => {
                let mut app = memo.app(repo, snap, &root, entry)?;
                let module = match migration_modules.get(&app.label) {
                    Some(m) => m.clone(),
                    None => Some(format!("{}.migrations", app.name)),
                };
                // Only the directory is looked up here (its `__init__.py` is
                // checked when the app's migrations are loaded): reading every
                // migrations directory of a large project would cost more
                // than the whole plan.
                if let Some(m) = &module
                    && valid_module(m)
                {
                    let dir = join(&root, &m.replace('.', "/"));
                    if memo.dir_exists(repo, snap, &root, m, &dir)? {
                        app.migrations_dir = Some(dir);
                    }
                }
                let migrations_top = match module.as_deref() {
                    Some(m) if top_of_module(m) == top_of_module(entry) => top,
                    Some(m) => module_top(m),
                    None => None,
                };
                tops.push((top, migrations_top));
                app.migrations_module = module;
                Rc::new(app)
            }
        };
        if let Some(prev) = by_label.insert(app.label.clone(), i) {
            return Err(Error::input(format!(
                "INSTALLED_APPS at {} has two apps labelled {:?} ({} and {}); Django refuses to start",
                snap.label, app.label, apps[prev].name, app.name
            )));
        }
        apps.push(app);
    }
    // Apps added only under a condition: harmless when their migrations are
    // not in the repository; otherwise tagback cannot know whether they run.
    for (entry, file, line) in &settings.maybe_apps {
        if entries.contains(entry) {
            continue;
        }
        let app = resolve_app(repo, snap, &root, entry, memo)?;
        let migrated = matches!(
            module_file(repo, snap, &root, &format!("{}.migrations", app.name))?,
            Some((_, true))
        );
        if migrated && opts.installed_apps.is_none() {
            return Err(Error::input(format!(
                "{file} at {} line {line} adds {entry:?} to INSTALLED_APPS only under a condition; list the apps under `installed_apps:` in .tagback.yml",
                snap.label
            )));
        }
    }
    Ok(Some(Project {
        root,
        settings_module: settings.settings_module.clone(),
        apps,
        string_settings: settings.string_settings.clone(),
        by_label,
        resolved_from: Some(ResolvedFrom {
            settings,
            entries,
            tops,
        }),
    }))
}

/// The first component of a dotted module path.
fn top_of_module(module: &str) -> &str {
    module.split('.').next().unwrap_or(module)
}

/// Read the settings module (found from `manage.py` or the options), or
/// reuse what an earlier revision of this run read when every top-level
/// entry it looked at is identical.
fn read_settings(
    repo: &Repo,
    snap: &Snapshot,
    opts: &ProjectOptions,
    memo: &Resolutions,
    root: &str,
    manage_py: &str,
) -> Result<std::rc::Rc<SettingsRead>> {
    let opts_key = format!("{:?} {:?}", opts.manage_py, opts.settings);
    let cached = memo
        .settings
        .borrow()
        .iter()
        .find(|read| read.still_valid(repo, snap, &opts_key, manage_py))
        .cloned();
    if let Some(read) = cached {
        return Ok(read);
    }
    memo.touched.borrow_mut().clear();
    memo.touch(manage_py);
    let settings_module = match &opts.settings {
        Some(s) => s.clone(),
        None => settings_from_manage_py(repo, snap, manage_py, memo)?,
    };
    memo.touch(&join(root, top_of_module(&settings_module)));
    let (settings_file, _) = module_file(repo, snap, root, &settings_module)?.ok_or_else(|| {
        Error::input(format!(
            "settings module {settings_module:?} (from {manage_py}) is not in the repository at {}; set `settings:` in .tagback.yml",
            snap.label
        ))
    })?;
    let mut reader = SettingsReader {
        repo,
        memo,
        snap,
        root,
        env: BTreeMap::new(),
        maybe_apps: Vec::new(),
        dynamic: BTreeMap::new(),
        depth: 0,
        seen: BTreeSet::new(),
    };
    reader.exec_file(&settings_file, &settings_module)?;
    let installed_apps = if let Some((file, line, what)) = reader.dynamic.get("INSTALLED_APPS") {
        InstalledApps::Dynamic(file.clone(), *line, what.clone())
    } else {
        match reader.env.get("INSTALLED_APPS") {
            Some(v) => string_list(v).map_or(InstalledApps::NotStatic, InstalledApps::List),
            None => InstalledApps::Missing,
        }
    };
    let migration_modules = match reader.env.get("MIGRATION_MODULES") {
        Some(Value::Dict(items)) => items
            .iter()
            .filter_map(|(k, v)| match (k, v) {
                (Value::Str(k), Value::Str(v)) => Some((k.clone(), Some(v.clone()))),
                (Value::Str(k), Value::None) => Some((k.clone(), None)),
                _ => None,
            })
            .collect(),
        _ => BTreeMap::new(),
    };
    let string_settings = reader
        .env
        .iter()
        .filter_map(|(k, v)| match v {
            Value::Str(s) if k.chars().all(|c| c.is_ascii_uppercase() || c == '_') => {
                Some((k.clone(), s.clone()))
            }
            _ => None,
        })
        .collect();
    let touched = std::mem::take(&mut *memo.touched.borrow_mut());
    let read = std::rc::Rc::new(SettingsRead {
        opts_key,
        manage_py: manage_py.to_string(),
        settings_module,
        settings_file,
        installed_apps,
        migration_modules,
        string_settings,
        maybe_apps: reader.maybe_apps,
        footprint: Resolutions::footprint(repo, snap, &touched),
    });
    memo.settings.borrow_mut().push(read.clone());
    Ok(read)
}

fn string_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::List(items) => items
            .iter()
            .map(|i| match i {
                Value::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

fn settings_from_manage_py(
    repo: &Repo,
    snap: &Snapshot,
    manage_py: &str,
    memo: &Resolutions,
) -> Result<String> {
    let stmts = memo.python(repo, snap, manage_py)?;
    let mut calls = Vec::new();
    python::find_calls(&stmts, "environ.setdefault", &mut calls);
    calls
        .iter()
        .find_map(|c| match (c.args.first(), c.args.get(1)) {
            (Some(Value::Str(k)), Some(Value::Str(v))) if k == "DJANGO_SETTINGS_MODULE" => Some(v.clone()),
            _ => None,
        })
        .ok_or_else(|| {
            Error::input(format!(
                "{manage_py} at {} does not set DJANGO_SETTINGS_MODULE with os.environ.setdefault; set `settings:` in .tagback.yml",
                snap.label
            ))
        })
}

/// Executes a settings module's top-level statements over literal values.
struct SettingsReader<'a> {
    repo: &'a Repo,
    memo: &'a Resolutions,
    snap: &'a Snapshot,
    root: &'a str,
    env: BTreeMap<String, Value>,
    /// Apps appended under a condition: (entry, file, line).
    maybe_apps: Vec<(String, String, u32)>,
    /// Settings changed in ways that cannot be followed: name → (file, line, why).
    dynamic: BTreeMap<String, (String, u32, String)>,
    depth: u32,
    seen: BTreeSet<String>,
}

impl SettingsReader<'_> {
    fn exec_file(&mut self, file: &str, module: &str) -> Result<()> {
        if self.depth > 16 || !self.seen.insert(file.to_string()) {
            return Ok(());
        }
        self.memo.touch(file);
        let stmts = self.memo.python(self.repo, self.snap, file)?;
        let package = if file.ends_with("/__init__.py") {
            module.to_string()
        } else {
            module
                .rsplit_once('.')
                .map_or(String::new(), |(p, _)| p.to_string())
        };
        self.depth += 1;
        let r = self.exec(&stmts, file, &package, false);
        self.depth -= 1;
        r
    }

    fn eval(&self, v: &Value) -> Value {
        match v {
            Value::Name(n) => self.env.get(n).cloned().unwrap_or_else(|| v.clone()),
            Value::Add(a, b) => match (self.eval(a), self.eval(b)) {
                (Value::List(mut x), Value::List(y)) => {
                    x.extend(y);
                    Value::List(x)
                }
                (Value::Str(x), Value::Str(y)) => Value::Str(x + &y),
                _ => Value::Dynamic { line: 0 },
            },
            Value::List(items) => Value::List(items.iter().map(|i| self.eval(i)).collect()),
            Value::Dict(items) => Value::Dict(
                items
                    .iter()
                    .map(|(k, v)| (self.eval(k), self.eval(v)))
                    .collect(),
            ),
            _ => v.clone(),
        }
    }

    fn mark_dynamic(&mut self, name: &str, file: &str, line: u32, why: &str) {
        if matches!(
            name,
            "INSTALLED_APPS" | "MIGRATION_MODULES" | "AUTH_USER_MODEL"
        ) {
            self.dynamic.entry(name.to_string()).or_insert((
                file.to_string(),
                line,
                why.to_string(),
            ));
        }
    }

    fn exec(&mut self, stmts: &[Stmt], file: &str, package: &str, conditional: bool) -> Result<()> {
        for s in stmts {
            match s {
                Stmt::Assign {
                    targets,
                    value,
                    line,
                } => {
                    let v = self.eval(value);
                    for t in targets {
                        if conditional {
                            if t == "INSTALLED_APPS" {
                                self.maybe_list(&v, file, *line);
                            } else {
                                self.mark_dynamic(
                                    t,
                                    file,
                                    *line,
                                    "is assigned only under a condition",
                                );
                            }
                            continue;
                        }
                        if matches!(v, Value::Dynamic { .. } | Value::Call(_)) {
                            self.mark_dynamic(t, file, *line, "is computed at run time");
                        } else {
                            self.dynamic.remove(t.as_str());
                        }
                        self.env.insert(t.clone(), v.clone());
                    }
                }
                Stmt::AugAdd {
                    target,
                    value,
                    line,
                } => {
                    let add = self.eval(value);
                    if conditional {
                        if target == "INSTALLED_APPS" {
                            self.maybe_list(&add, file, *line);
                        }
                        continue;
                    }
                    let cur = self
                        .env
                        .get(target)
                        .cloned()
                        .unwrap_or(Value::Dynamic { line: *line });
                    let v = self.eval(&Value::Add(Box::new(cur), Box::new(add)));
                    if matches!(v, Value::Dynamic { .. }) {
                        self.mark_dynamic(
                            target,
                            file,
                            *line,
                            "is extended with a value tagback cannot read",
                        );
                    }
                    self.env.insert(target.clone(), v);
                }
                Stmt::DynamicAssign { target, line } => {
                    self.mark_dynamic(
                        target,
                        file,
                        *line,
                        "is changed in a way tagback cannot follow",
                    );
                }
                Stmt::Call(c) => {
                    let Some((target, method)) = c.func.rsplit_once('.') else {
                        continue;
                    };
                    if target != "INSTALLED_APPS" {
                        continue;
                    }
                    let arg = match method {
                        "append" => c.args.first().map(|a| Value::List(vec![self.eval(a)])),
                        "extend" => c.args.first().map(|a| self.eval(a)),
                        "insert" => c.args.get(1).map(|a| Value::List(vec![self.eval(a)])),
                        _ => None,
                    };
                    let Some(arg) = arg else {
                        self.mark_dynamic(
                            target,
                            file,
                            c.line,
                            &format!("is changed by .{method}()"),
                        );
                        continue;
                    };
                    if conditional {
                        self.maybe_list(&arg, file, c.line);
                        continue;
                    }
                    let cur = self
                        .env
                        .get(target)
                        .cloned()
                        .unwrap_or(Value::Dynamic { line: c.line });
                    let v = match (cur, arg) {
                        (Value::List(mut x), Value::List(y)) => {
                            if method == "insert" {
                                let at = match c.args.first() {
                                    Some(Value::Int(i)) if *i >= 0 => (*i as usize).min(x.len()),
                                    _ => 0,
                                };
                                for (k, item) in y.into_iter().enumerate() {
                                    x.insert(at + k, item);
                                }
                            } else {
                                x.extend(y);
                            }
                            Value::List(x)
                        }
                        _ => {
                            self.mark_dynamic(
                                target,
                                file,
                                c.line,
                                "is changed with a value tagback cannot read",
                            );
                            Value::Dynamic { line: c.line }
                        }
                    };
                    self.env.insert(target.to_string(), v);
                }
                Stmt::ImportFrom {
                    module,
                    level,
                    names,
                    line,
                } => {
                    let absolute = resolve_relative(package, module, *level);
                    let Some(absolute) = absolute else { continue };
                    self.memo.touch(&join(self.root, top_of_module(&absolute)));
                    let Some((path, _)) = module_file(self.repo, self.snap, self.root, &absolute)?
                    else {
                        if !conditional
                            && names.iter().any(|(n, _)| n == "*")
                            && absolute.split('.').next() == package.split('.').next()
                        {
                            return Err(Error::input(format!(
                                "{file} at {} line {line}: `from {module} import *` names a module that is not in the repository",
                                self.snap.label
                            )));
                        }
                        continue;
                    };
                    if names.iter().any(|(n, _)| n == "*") {
                        self.exec_file(&path, &absolute)?;
                    } else {
                        // `from .base import INSTALLED_APPS as BASE_APPS`
                        let mut sub = SettingsReader {
                            repo: self.repo,
                            memo: self.memo,
                            snap: self.snap,
                            root: self.root,
                            env: BTreeMap::new(),
                            maybe_apps: Vec::new(),
                            dynamic: BTreeMap::new(),
                            depth: self.depth + 1,
                            seen: self.seen.clone(),
                        };
                        sub.exec_file(&path, &absolute)?;
                        for (n, alias) in names {
                            if let Some(v) = sub.env.get(n) {
                                self.env
                                    .insert(alias.clone().unwrap_or_else(|| n.clone()), v.clone());
                            }
                        }
                    }
                }
                Stmt::Block {
                    conditional: c,
                    body,
                    ..
                } => {
                    self.exec(body, file, package, conditional || *c)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn maybe_list(&mut self, v: &Value, file: &str, line: u32) {
        match v {
            Value::List(items) => {
                for i in items {
                    if let Value::Str(s) = i {
                        self.maybe_apps.push((s.clone(), file.to_string(), line));
                    }
                }
            }
            _ => self.mark_dynamic(
                "INSTALLED_APPS",
                file,
                line,
                "is changed under a condition with a value tagback cannot read",
            ),
        }
    }
}

/// `from ..x import y` inside `package` → the absolute module name.
fn resolve_relative(package: &str, module: &str, level: u32) -> Option<String> {
    if level == 0 {
        return Some(module.to_string());
    }
    let mut parts: Vec<&str> = if package.is_empty() {
        Vec::new()
    } else {
        package.split('.').collect()
    };
    for _ in 1..level {
        parts.pop()?;
    }
    if !module.is_empty() {
        parts.push(module);
    }
    (!parts.is_empty()).then(|| parts.join("."))
}

/// Resolve a relative import found in a module of `package`.
pub fn absolute_module(package: &str, module: &str) -> Option<String> {
    let level = module.chars().take_while(|c| *c == '.').count() as u32;
    resolve_relative(package, &module[level as usize..], level)
}

/// Resolve one `INSTALLED_APPS` entry to its app config's name and label.
fn resolve_app(
    repo: &Repo,
    snap: &Snapshot,
    root: &str,
    entry: &str,
    memo: &Resolutions,
) -> Result<App> {
    let external = |name: &str| {
        let base = match name.split_once(".apps.") {
            Some((pkg, _)) => pkg,
            None => name,
        };
        App {
            label: base.rsplit('.').next().unwrap_or(base).to_string(),
            name: base.to_string(),
            migrations_dir: None,
            migrations_module: None,
        }
    };
    let from_config = |name: Option<String>, label: Option<String>, fallback: &str| {
        let name = name.unwrap_or_else(|| fallback.to_string());
        let label = label.unwrap_or_else(|| name.rsplit('.').next().unwrap_or(&name).to_string());
        App {
            label,
            name,
            migrations_dir: None,
            migrations_module: None,
        }
    };
    if let Some((_, true)) = module_file(repo, snap, root, entry)? {
        // A package: Django 3.2+ picks the single AppConfig in `apps.py`, or
        // the one marked `default = True`.
        if let Some((apps_file, _)) = module_file(repo, snap, root, &format!("{entry}.apps"))? {
            let configs = app_configs(repo, snap, &apps_file, memo)?;
            let chosen = if configs.len() == 1 && configs[0].2 != Some(false) {
                configs.into_iter().next()
            } else {
                configs.into_iter().find(|c| c.2 == Some(true))
            };
            if let Some((name, label, _)) = chosen {
                return Ok(from_config(name, label, entry));
            }
        }
        return Ok(from_config(None, None, entry));
    }
    if let Some((module, class)) = entry.rsplit_once('.')
        && let Some((file, _)) = module_file(repo, snap, root, module)?
    {
        let stmts = memo.python(repo, snap, &file)?;
        let found = stmts.iter().find_map(|s| match s {
            Stmt::Class(c) if c.name == class => Some(c),
            _ => None,
        });
        let Some(c) = found else {
            return Err(Error::input(format!(
                "INSTALLED_APPS entry {entry:?} at {}: {file} has no class {class}",
                snap.label
            )));
        };
        let (name, label, _) = config_attrs(c);
        let fallback = module.strip_suffix(".apps").unwrap_or(module);
        return Ok(from_config(name, label, fallback));
    }
    Ok(external(entry))
}

type ConfigAttrs = (Option<String>, Option<String>, Option<bool>);

fn config_attrs(c: &python::Class) -> ConfigAttrs {
    let mut out: ConfigAttrs = (None, None, None);
    for s in &c.body {
        if let Stmt::Assign { targets, value, .. } = s {
            for t in targets {
                match (t.as_str(), value) {
                    ("name", Value::Str(v)) => out.0 = Some(v.clone()),
                    ("label", Value::Str(v)) => out.1 = Some(v.clone()),
                    ("default", Value::Bool(b)) => out.2 = Some(*b),
                    _ => {}
                }
            }
        }
    }
    out
}

fn app_configs(
    repo: &Repo,
    snap: &Snapshot,
    file: &str,
    memo: &Resolutions,
) -> Result<Vec<ConfigAttrs>> {
    let stmts = memo.python(repo, snap, file)?;
    let classes: Vec<&python::Class> = stmts
        .iter()
        .filter_map(|s| match s {
            Stmt::Class(c) => Some(c),
            _ => None,
        })
        .collect();
    let mut config_names: BTreeSet<&str> = BTreeSet::new();
    // Subclasses of AppConfig, directly or through a class in the same file.
    loop {
        let before = config_names.len();
        for c in &classes {
            if c.bases
                .iter()
                .any(|b| b.ends_with("AppConfig") || config_names.contains(b.as_str()))
            {
                config_names.insert(&c.name);
            }
        }
        if config_names.len() == before {
            break;
        }
    }
    Ok(classes
        .iter()
        .filter(|c| config_names.contains(c.name.as_str()))
        .map(|c| config_attrs(c))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_imports() {
        assert_eq!(
            resolve_relative("proj.settings", "base", 1).as_deref(),
            Some("proj.settings.base")
        );
        assert_eq!(
            resolve_relative("proj.settings", "base", 2).as_deref(),
            Some("proj.base")
        );
        assert_eq!(resolve_relative("proj", "", 1).as_deref(), Some("proj"));
        assert_eq!(resolve_relative("", "x", 2), None);
        assert_eq!(
            absolute_module("shop.migrations", "..ops").as_deref(),
            Some("shop.ops")
        );
    }

    #[test]
    fn module_names() {
        assert!(valid_module("a.b_c"));
        assert!(!valid_module("a..b"));
        assert!(!valid_module("a/b"));
        assert!(!valid_module("1a"));
    }
}
