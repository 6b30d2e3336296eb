//! A Django project at one revision, read statically: where `manage.py` is,
//! the settings module, `INSTALLED_APPS` resolved to app labels and migration
//! directories, `AUTH_USER_MODEL` and `MIGRATION_MODULES`.

use std::collections::BTreeMap;
use std::rc::Rc;

mod apps;
pub(crate) use apps::{default_config, named_config};
mod memo;
mod records;
mod settings;

use apps::resolve_app;
pub use memo::Resolutions;
use settings::{InstalledApps, SettingsRead};
pub use settings::{absolute_module, settings_named_by_manage_py};

use crate::error::{Error, Result};
use crate::source::ProjectSource;

/// How to find the project (from `.tagback.yml`).
#[derive(Debug, Clone, Default)]
pub struct ProjectOptions {
    /// Path of `manage.py` in the repository.
    pub manage_py: Option<String>,
    /// The settings module.
    pub settings: Option<String>,
    /// Installed apps overriding `INSTALLED_APPS`.
    pub installed_apps: Option<Vec<String>>,
    /// Migrations directories of apps that are not installed (test apps…).
    pub not_installed: Vec<String>,
    /// The pins file (`requirements:` in `.tagback.yml`).
    pub requirements: Option<String>,
    /// The image's Python version (`python:` in `.tagback.yml`).
    pub python: Option<String>,
    /// A wheelhouse directory (`wheelhouse:` in `.tagback.yml`).
    pub wheelhouse: Option<String>,
    /// Where changed packages' files are looked for, in order
    /// (`package_sources:`; empty: the default order).
    pub package_sources: Vec<crate::config::PackageSource>,
    /// The service's images at the newer and the older revision (the
    /// `image:` that deploys each), read when they are local.
    pub images: [Option<String>; 2],
    /// Migrations modules by label, overriding and adding to the settings'
    /// `MIGRATION_MODULES` (`None`: no migrations).
    pub migration_modules: BTreeMap<String, Option<String>>,
    /// Dependencies stated per migration (`APP.NAME`) in `.tagback.yml`,
    /// replacing what its file computes at run time.
    pub stated_dependencies: BTreeMap<String, Vec<(String, String)>>,
    /// What `.tagback.yml` says differs at the newer and at the older
    /// revision of a pair; applied by [`ProjectOptions::side`].
    pub sides: [crate::config::SideConfig; 2],
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
    /// The label was derived from the module path: neither the app's
    /// package nor its config's module is in the repository, and it is not
    /// one of Django's own apps (a package pip installs, whose label only
    /// its own `AppConfig` knows). Decided when the entry is resolved.
    pub label_from_path: bool,
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
    /// What was assumed about settings tagback cannot read: (file, line, what).
    pub assumptions: Vec<(String, u32, String)>,
    /// Why the settings module was read when manage.py names none.
    pub settings_assumed: Option<String>,
    /// Index of `apps` by label.
    by_label: BTreeMap<String, usize>,
    /// Apps whose migrations come from a package version the pins name
    /// (read from its archive), by label.
    pub packaged: BTreeMap<String, Rc<crate::packages::PackageApp>>,
    /// What the apps were resolved from, for reuse by another revision.
    resolved_from: Option<ResolvedFrom>,
    /// Apps from outside the repository whose label was guessed from the
    /// module path and collides with another app's: indices into `apps`,
    /// absent from `by_label`. A guess never makes a conflict (Django starts
    /// only with distinct labels); `packages` reads the real label from the
    /// package's archive when it can, and says so when it cannot.
    pub unread: Vec<usize>,
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
    /// A project whose installed apps are known (settings module `settings`,
    /// `manage.py` at the root): for callers that build a revision without
    /// reading settings, as the plan's unit tests do.
    pub fn from_apps(settings_module: &str, apps: Vec<App>) -> Project {
        let by_label = apps
            .iter()
            .enumerate()
            .map(|(i, a)| (a.label.clone(), i))
            .collect();
        Project {
            root: String::new(),
            settings_module: settings_module.to_string(),
            apps: apps.into_iter().map(Rc::new).collect(),
            string_settings: BTreeMap::new(),
            assumptions: Vec::new(),
            settings_assumed: None,
            by_label,
            packaged: BTreeMap::new(),
            resolved_from: None,
            unread: Vec::new(),
        }
    }

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

    /// The `INSTALLED_APPS` entries, in the order of `apps`.
    pub fn entries(&self) -> Option<&[String]> {
        self.resolved_from.as_ref().map(|r| r.entries.as_slice())
    }

    /// Where the settings remove `entry` from INSTALLED_APPS only under a
    /// condition they cannot decide (NetBox's `if not DEBUG:
    /// INSTALLED_APPS.remove("debug_toolbar")`): (file, line).
    pub fn removed_under_condition(&self, entry: &str) -> Option<(&str, u32)> {
        let settings = &self.resolved_from.as_ref()?.settings;
        settings
            .maybe_removed
            .iter()
            .find(|(e, _, _)| e == entry)
            .map(|(_, file, line)| (file.as_str(), *line))
    }

    /// Entries the settings add to `INSTALLED_APPS` only under a condition
    /// tagback cannot decide, and that are not installed otherwise:
    /// `(entry, file, line)`.
    pub fn added_under_condition(&self) -> Vec<(&str, &str, u32)> {
        let Some(from) = self.resolved_from.as_ref() else {
            return Vec::new();
        };
        from.settings
            .maybe_apps
            .iter()
            .filter(|(e, _, _)| !from.entries.contains(e))
            .map(|(e, file, line)| (e.as_str(), file.as_str(), *line))
            .collect()
    }

    /// The package version an app's migrations come from, when they come
    /// from one.
    pub fn package_of(&self, label: &str) -> Option<&crate::packages::PackageApp> {
        self.packaged.get(label).map(|p| &**p)
    }

    /// Replace the app at `index` (an app from outside the repository) by
    /// what its package version says: its config's label and its migrations.
    /// Two apps with one label is an error, as Django refuses to start.
    pub fn attach_package(
        &mut self,
        index: usize,
        app: App,
        package: Rc<crate::packages::PackageApp>,
        rev: &str,
    ) -> Result<()> {
        if let Some(&other) = self.by_label.get(&app.label)
            && other != index
        {
            return Err(Error::input(format!(
                "INSTALLED_APPS at {rev} has two apps labelled {:?} ({} and {}, from {} {}); Django refuses to start",
                app.label, self.apps[other].name, app.name, package.dist, package.version
            )));
        }
        let old = self.apps[index].label.clone();
        if self.by_label.get(&old) == Some(&index) {
            self.by_label.remove(&old);
        }
        self.by_label.insert(app.label.clone(), index);
        self.packaged.insert(app.label.clone(), package);
        self.apps[index] = Rc::new(app);
        self.unread.retain(|u| *u != index);
        Ok(())
    }

    /// The index in `apps` of the app with this label.
    pub fn index_of(&self, label: &str) -> Option<usize> {
        self.by_label.get(label).copied()
    }

    /// Whether the label of the app at `index` is a guess from its module
    /// path (an app from outside the repository, not one of Django's own).
    pub fn label_guessed(&self, index: usize) -> bool {
        self.entries().is_some_and(|e| index < e.len())
            && self.apps.get(index).is_some_and(|a| a.label_from_path)
    }

    /// Take the app at `index` out of the label index: its label is a guess
    /// that collides with another app's.
    pub fn set_unread(&mut self, index: usize) {
        let label = &self.apps[index].label;
        if self.by_label.get(label) == Some(&index) {
            self.by_label.remove(label);
        }
        if !self.unread.contains(&index) {
            self.unread.push(index);
        }
    }

    /// The app at `index` (whose label was not read) with the label and
    /// name read from its package: back in the label index, its migrations
    /// module looked up under the real label (`.tagback.yml`'s
    /// `migration_modules:` first, then the settings' `MIGRATION_MODULES`).
    pub fn read_label(
        &mut self,
        src: &dyn ProjectSource,
        opts: &ProjectOptions,
        index: usize,
        label: String,
        name: String,
    ) -> Result<()> {
        let module = match self.migrations_setting(opts, &label) {
            Some(m) => m,
            None => Some(format!("{name}.migrations")),
        };
        let mut migrations_dir = None;
        if let Some(m) = &module
            && valid_module(m)
        {
            let dir = join(&self.root, &m.replace('.', "/"));
            if src.exists(&format!("{dir}/__init__.py"))? {
                migrations_dir = Some(dir);
            }
        }
        self.set_unread(index);
        self.unread.retain(|u| *u != index);
        self.by_label.insert(label.clone(), index);
        self.apps[index] = Rc::new(App {
            label,
            name,
            migrations_dir,
            migrations_module: module,
            label_from_path: self.apps[index].label_from_path,
        });
        Ok(())
    }

    /// What `MIGRATION_MODULES` says of a label (`.tagback.yml`'s
    /// `migration_modules:` first): `None` when it names no module for it,
    /// `Some(None)` when it says the app has no migrations.
    pub fn migrations_setting(&self, opts: &ProjectOptions, label: &str) -> Option<Option<String>> {
        opts.migration_modules.get(label).cloned().or_else(|| {
            self.resolved_from
                .as_ref()
                .and_then(|r| r.settings.migration_modules.get(label).cloned())
        })
    }

    /// `MIGRATION_MODULES` keys (settings and `.tagback.yml`) that are the
    /// label of no installed app as tagback reads them.
    pub fn orphan_migration_modules(&self, opts: &ProjectOptions) -> Vec<String> {
        let settings = self
            .resolved_from
            .as_ref()
            .map(|r| r.settings.migration_modules.keys().collect::<Vec<_>>())
            .unwrap_or_default();
        settings
            .into_iter()
            .chain(opts.migration_modules.keys())
            .filter(|k| !self.by_label.contains_key(*k))
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// Repository path of a module's file: `(path, is_package)`.
    pub fn module_file(
        &self,
        src: &dyn ProjectSource,
        module: &str,
    ) -> Result<Option<(String, bool)>> {
        module_file(src, &self.root, module)
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

/// Path of a module's file in `src` below `root`: `(path, is_package)`.
/// A package wins over a module of the same name, as in Python's import
/// system (`FileFinder` looks for `NAME/__init__.py` before `NAME.py`): a
/// settings package left beside an old `settings.py` is what Django reads.
fn module_file(
    src: &dyn ProjectSource,
    root: &str,
    module: &str,
) -> Result<Option<(String, bool)>> {
    if !valid_module(module) {
        return Ok(None);
    }
    let rel = module.replace('.', "/");
    let init = join(root, &format!("{rel}/__init__.py"));
    if src.exists(&init)? {
        return Ok(Some((init, true)));
    }
    let file = join(root, &format!("{rel}.py"));
    if src.exists(&file)? {
        return Ok(Some((file, false)));
    }
    Ok(None)
}

/// Find `manage.py`: the configured path, the root, or one or two levels down.
pub fn find_manage_py(src: &dyn ProjectSource, configured: Option<&str>) -> Result<Option<String>> {
    if let Some(p) = configured {
        return Ok(src.exists(p)?.then(|| p.to_string()));
    }
    if src.exists("manage.py")? {
        return Ok(Some("manage.py".into()));
    }
    let Some(top) = src.list_dir("")? else {
        return Ok(None);
    };
    let dirs: Vec<String> = top
        .into_iter()
        .filter(|e| e.is_dir && !e.name.starts_with('.'))
        .map(|e| e.name)
        .collect();
    for d in &dirs {
        let p = format!("{d}/manage.py");
        if src.exists(&p)? {
            return Ok(Some(p));
        }
    }
    for d in &dirs {
        let Some(sub) = src.list_dir(d)? else {
            continue;
        };
        for e in sub
            .into_iter()
            .filter(|e| e.is_dir && !e.name.starts_with('.'))
        {
            let p = format!("{d}/{}/manage.py", e.name);
            if src.exists(&p)? {
                return Ok(Some(p));
            }
        }
    }
    Ok(None)
}

/// Decode a cached `projects` file (for the fuzzer).
#[doc(hidden)]
pub fn decode_records(text: &str) {
    let _ = records::decode(text);
}

/// Load the project in `src` (one revision), reusing `memo` across revisions, and the
/// apps of `prior` (another revision of the same run) whose packages have
/// the same tree ids.
pub fn load_shared(
    src: &dyn ProjectSource,
    opts: &ProjectOptions,
    memo: &Resolutions,
    prior: Option<&Project>,
) -> Result<Option<Project>> {
    let Some(manage_py) = find_manage_py(src, opts.manage_py.as_deref())? else {
        return Ok(None);
    };
    let root = manage_py
        .rsplit_once('/')
        .map_or(String::new(), |(d, _)| d.to_string());
    let settings = memo.settings(src, opts, &root, &manage_py)?;
    let settings_file = &settings.settings_file;
    let entries: Vec<String> = match (&opts.installed_apps, &settings.installed_apps) {
        (Some(apps), _) => apps.clone(),
        (None, InstalledApps::List(apps)) => apps.clone(),
        (None, InstalledApps::Dynamic(file, line, what)) => {
            return Err(Error::input(format!(
                "INSTALLED_APPS in {file} at {} line {line} {what}; list the apps under `installed_apps:` in .tagback.yml",
                src.label()
            )));
        }
        (None, InstalledApps::NotStatic) => {
            return Err(Error::input(format!(
                "INSTALLED_APPS in {settings_file} at {} cannot be read statically; list the apps under `installed_apps:` in .tagback.yml",
                src.label()
            )));
        }
        (None, InstalledApps::Missing) => {
            return Err(Error::input(format!(
                "{settings_file} at {} defines no INSTALLED_APPS that tagback can read; list the apps under `installed_apps:` in .tagback.yml",
                src.label()
            )));
        }
    };
    let configured;
    let migration_modules = if opts.migration_modules.is_empty() {
        &settings.migration_modules
    } else {
        let mut m = settings.migration_modules.clone();
        m.extend(opts.migration_modules.clone());
        configured = m;
        &configured
    };

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
            src.tree_id(top)
        } else {
            src.tree_id(&join(&root, top))
        }
    };
    let mut apps: Vec<Rc<App>> = Vec::with_capacity(entries.len());
    let mut tops = Vec::with_capacity(entries.len());
    let mut by_label: BTreeMap<String, usize> = BTreeMap::new();
    let mut unread: Vec<usize> = Vec::new();
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
                let mut app = memo.app(src, &root, entry)?;
                let module = migrations_module(&app, migration_modules);
                // Only the directory is looked up here (its `__init__.py` is
                // checked when the app's migrations are loaded): reading every
                // migrations directory of a large project would cost more
                // than the whole plan.
                if let Some(m) = &module
                    && valid_module(m)
                {
                    let dir = join(&root, &m.replace('.', "/"));
                    if memo.dir_exists(src, &root, m, &dir)? {
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
        let mut app = app;
        match by_label.get(&app.label).copied() {
            None => {
                by_label.insert(app.label.clone(), i);
            }
            Some(prev) => {
                // A label guessed from the module path of an app outside
                // the repository (`wagtail.admin` is `wagtailadmin`, not
                // `admin`) is no evidence of a conflict.
                let guessed_prev = apps[prev].label_from_path;
                let guessed_new = app.label_from_path;
                if !guessed_prev && !guessed_new {
                    return Err(Error::input(format!(
                        "INSTALLED_APPS at {} has two apps labelled {:?} ({} and {}); Django refuses to start",
                        src.label(),
                        app.label,
                        apps[prev].name,
                        app.name
                    )));
                }
                if guessed_new {
                    // Its MIGRATION_MODULES entry was looked up under the
                    // guess, which is another app's label.
                    app = Rc::new(App {
                        migrations_dir: None,
                        migrations_module: Some(format!("{}.migrations", app.name)),
                        ..(*app).clone()
                    });
                    unread.push(i);
                }
                if guessed_prev && !guessed_new {
                    let p: &mut Rc<App> = &mut apps[prev];
                    *p = Rc::new(App {
                        migrations_dir: None,
                        migrations_module: Some(format!("{}.migrations", p.name)),
                        ..(**p).clone()
                    });
                    unread.push(prev);
                    by_label.insert(app.label.clone(), i);
                }
            }
        }
        apps.push(app);
    }
    // Apps added only under a condition: harmless when their migrations are
    // not in the repository; otherwise tagback cannot know whether they run.
    let maybe = settings.maybe_apps.iter().map(|m| (m, "adds", "to")).chain(
        settings
            .maybe_removed
            .iter()
            .map(|m| (m, "removes", "from")),
    );
    for ((entry, file, line), verb, prep) in maybe {
        // Added under a condition but installed anyway: no doubt. Removed
        // under a condition: in doubt whether or not it is listed.
        if verb == "adds" && entries.contains(entry) {
            continue;
        }
        let app = resolve_app(src, &root, entry, &|f| memo.python(src, f))?;
        let migrated = match migrations_module(&app, migration_modules) {
            Some(m) => matches!(module_file(src, &root, &m)?, Some((_, true))),
            None => false,
        };
        if migrated && opts.installed_apps.is_none() {
            return Err(Error::input(format!(
                "{file} at {} line {line} {verb} {entry:?} {prep} INSTALLED_APPS only under a condition, and its migrations are in the repository; list the apps under `installed_apps:` in .tagback.yml",
                src.label()
            )));
        }
    }
    Ok(Some(Project {
        root,
        settings_module: settings.settings_module.clone(),
        apps,
        string_settings: settings.string_settings.clone(),
        // With `installed_apps:` configured, nothing about INSTALLED_APPS is assumed.
        assumptions: if opts.installed_apps.is_some() {
            Vec::new()
        } else {
            settings.assumptions.clone()
        },
        settings_assumed: settings.settings_assumed.clone(),
        by_label,
        packaged: BTreeMap::new(),
        resolved_from: Some(ResolvedFrom {
            settings,
            entries,
            tops,
        }),
        unread,
    }))
}

/// Django's rule for an app's migrations module (`MigrationLoader.migrations_module`):
/// the one `MIGRATION_MODULES` names for its label (`None`: no migrations),
/// otherwise `NAME.migrations`.
fn migrations_module(
    app: &App,
    migration_modules: &BTreeMap<String, Option<String>>,
) -> Option<String> {
    match migration_modules.get(&app.label) {
        Some(m) => m.clone(),
        None => Some(format!("{}.migrations", app.name)),
    }
}

/// The first component of a dotted module path.
fn top_of_module(module: &str) -> &str {
    module.split('.').next().unwrap_or(module)
}

#[cfg(test)]
mod tests {
    use super::settings::resolve_relative;
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

    /// A project's files: `manage.py`, settings that import a base module,
    /// and two apps (one with a config that sets its label).
    fn project_files() -> crate::packages::archive::PackageFiles {
        let mut p = crate::packages::archive::PackageFiles::default();
        for (path, text) in [
            (
                "manage.py",
                "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')\n",
            ),
            ("proj/__init__.py", ""),
            (
                "proj/base.py",
                "INSTALLED_APPS = ['django.contrib.auth', 'shop']\n",
            ),
            (
                "proj/settings.py",
                "from .base import *\nINSTALLED_APPS += ['billing.apps.BillingConfig']\n",
            ),
            ("shop/__init__.py", ""),
            ("shop/migrations/__init__.py", ""),
            ("billing/__init__.py", ""),
            (
                "billing/apps.py",
                "from django.apps import AppConfig\nclass BillingConfig(AppConfig):\n    name = 'billing'\n    label = 'invoices'\n",
            ),
            ("billing/migrations/__init__.py", ""),
        ] {
            p.files.insert(path.to_string(), text.to_string());
        }
        p
    }

    fn apps_of(src: &dyn ProjectSource) -> Vec<String> {
        let memo = Resolutions::default();
        let p = load_shared(src, &ProjectOptions::default(), &memo, None)
            .unwrap()
            .unwrap();
        p.apps
            .iter()
            .map(|a| format!("{} {} {:?}", a.label, a.name, a.migrations_dir))
            .collect()
    }

    /// A source that counts what it is asked.
    struct Counting<S> {
        inner: S,
        reads: std::cell::RefCell<BTreeMap<String, usize>>,
    }

    impl<S: ProjectSource> ProjectSource for Counting<S> {
        fn label(&self) -> &str {
            self.inner.label()
        }
        fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
            *self.reads.borrow_mut().entry(path.to_string()).or_default() += 1;
            self.inner.read(path)
        }
        fn list_dir(&self, dir: &str) -> Result<Option<Vec<crate::git::DirEntry>>> {
            *self
                .reads
                .borrow_mut()
                .entry(format!("{dir}/"))
                .or_default() += 1;
            self.inner.list_dir(dir)
        }
    }

    #[test]
    fn a_project_reads_alike_from_every_source_and_a_cached_one_asks_each_path_once() {
        use crate::source::{Archive, Cached, PlainDir};
        let files = project_files();
        let want = [
            "auth django.contrib.auth None",
            "shop shop Some(\"shop/migrations\")",
            "invoices billing Some(\"billing/migrations\")",
        ];
        assert_eq!(apps_of(&Archive::new("archive", &files)), want);
        let disk = files.on_disk();
        let plain = PlainDir::open(disk.path()).unwrap();
        assert_eq!(apps_of(&plain), want);
        let counted = Cached::new(Counting {
            inner: plain,
            reads: Default::default(),
        });
        assert_eq!(apps_of(&counted), want);
        let reads = counted.inner().reads.borrow();
        assert!(reads.contains_key("proj/base.py"), "{reads:?}");
        assert!(reads.values().all(|n| *n == 1), "{reads:?}");
    }

    #[test]
    fn module_names() {
        assert!(valid_module("a.b_c"));
        assert!(!valid_module("a..b"));
        assert!(!valid_module("a/b"));
        assert!(!valid_module("1a"));
    }
}
