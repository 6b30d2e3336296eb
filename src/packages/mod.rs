//! Migrations that arrive through pip. The deploy's pins are read at both
//! revisions (`pins`); for every package whose version differs, both
//! versions' archives are found (`index`: wheelhouse, archive cache, simple
//! index) and read without running their code (`archive`); the installed
//! apps they provide then enter each revision's graph as if their code were
//! in the repository, with the labels of their `AppConfig`s and their
//! migrations. Packages whose version did not change keep the treatment of
//! apps from outside the repository (present and unchanged).
//!
//! Never silent: a requirement whose installed version cannot be known, a
//! changed package that cannot be obtained or read, blocks with a finding.

pub mod archive;
pub mod cache;
pub mod index;
pub mod pins;

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use crate::django::project::{App, Project, ProjectOptions, default_config, named_config};
use crate::django::{MigrationFile, is_migration_file_name, migration, python};
use crate::error::Result;
use crate::finding::{Code, Finding};
use crate::git::{Repo, Snapshot};
use archive::PackageFiles;
use pins::{Pin, Pins};

/// An installed app whose migrations come from a package version.
#[derive(Debug, Clone)]
pub struct PackageApp {
    /// The distribution as the pins name it (`django-taggit`).
    pub dist: String,
    /// Its version at this revision.
    pub version: String,
    /// The app's migrations, read from the archive (paths inside the package).
    pub files: Vec<Rc<MigrationFile>>,
}

/// A package whose pinned version differs between the revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Normalized name.
    pub name: String,
    /// As written in the pins.
    pub display: String,
    /// Version at the newer revision (`None`: not pinned there).
    pub newer: Option<String>,
    /// Version at the older revision.
    pub older: Option<String>,
}

/// What the pins say changed, and what was found wrong with them.
#[derive(Debug, Default)]
pub struct Changes {
    /// Packages whose version differs.
    pub changed: Vec<Change>,
    /// Blocking findings (unknown versions).
    pub findings: Vec<Finding>,
}

/// Compare the pins of two revisions.
pub fn compare(newer: &Pins, older: &Pins, newer_rev: &str, older_rev: &str) -> Changes {
    let mut out = Changes::default();
    for (pins, rev) in [(newer, newer_rev), (older, older_rev)] {
        for pin in pins.by_name.values().filter(|p| p.version.is_none()) {
            out.findings.push(unpinned(pin, rev));
        }
        for (name, list) in &pins.ambiguous {
            let specs: Vec<&str> = list.iter().map(|p| p.spec.as_str()).collect();
            let first = &list[0];
            out.findings.push(
                Finding::new(
                    Code::UnpinnedRequirement,
                    format!(
                        "{name} is pinned to different versions at {rev} ({}) under environment markers tagback does not evaluate; pin one version, or name the deploy's file with `requirements:` in .tagback.yml",
                        specs.join(", ")
                    ),
                )
                .at(first.file.clone(), first.line),
            );
        }
    }
    let names: std::collections::BTreeSet<&String> =
        newer.by_name.keys().chain(older.by_name.keys()).collect();
    for name in names {
        let (n, o) = (newer.by_name.get(name), older.by_name.get(name));
        let (vn, vo) = (
            n.and_then(|p| p.version.clone()),
            o.and_then(|p| p.version.clone()),
        );
        if n.is_some_and(|p| p.version.is_none())
            || o.is_some_and(|p| p.version.is_none())
            || vn == vo
        {
            continue;
        }
        let display = n
            .or(o)
            .map(|p| p.display.clone())
            .unwrap_or_else(|| name.clone());
        out.changed.push(Change {
            name: name.clone(),
            display,
            newer: vn,
            older: vo,
        });
    }
    out
}

fn unpinned(pin: &Pin, rev: &str) -> Finding {
    Finding::new(
        Code::UnpinnedRequirement,
        format!(
            "{} at {rev} requires `{}` without an exact version: which migrations it installs cannot be known; pin it with `==` (pip-compile, `uv pip compile`) or commit a uv.lock/poetry.lock, and name that file with `requirements:` in .tagback.yml if it is not the usual one",
            pin.file, pin.spec
        ),
    )
    .at(pin.file.clone(), pin.line)
}

/// Read the pins of both revisions and put the apps of every changed
/// package into both projects. Returns the findings that block the plan,
/// and the changed packages whose apps were put in.
pub fn attach(
    repo: &Repo,
    newer: &Snapshot,
    older: &Snapshot,
    pn: &mut Project,
    po: &mut Project,
    opts: &ProjectOptions,
) -> Result<(Vec<Finding>, Vec<String>)> {
    let pins_n = pins::read(repo, newer, opts.requirements.as_deref(), &pn.root)?;
    let pins_o = pins::read(repo, older, opts.requirements.as_deref(), &po.root)?;
    if pins_n.file.is_none() && pins_o.file.is_none() {
        return Ok((Vec::new(), Vec::new()));
    }
    let Changes {
        changed,
        mut findings,
    } = compare(&pins_n, &pins_o, &newer.label, &older.label);
    let mut planned = Vec::new();
    if changed.is_empty() {
        return Ok((findings, planned));
    }
    let sources = sources(repo, opts);
    for change in &changed {
        // Both versions are read before anything is attached: a package
        // read at one revision only would make the plan lopsided.
        let mut read: Vec<(bool, String, PackageFiles)> = Vec::new();
        let mut failed = false;
        for (is_newer, version, pins) in [
            (true, &change.newer, &pins_n),
            (false, &change.older, &pins_o),
        ] {
            let Some(v) = version else { continue };
            let hashes = pins
                .by_name
                .get(&change.name)
                .map(|p| p.hashes.clone())
                .unwrap_or_default();
            match sources.obtain(&change.name, v, &hashes) {
                Ok(a) => match read_archive(&sources, &change.name, v, &a) {
                    Ok(files) => read.push((is_newer, v.clone(), files)),
                    Err(e) => {
                        findings.push(Finding::new(
                            Code::PackageUnavailable,
                            format!(
                                "{} {v} ({}) cannot be read: {e}",
                                change.display, a.file_name
                            ),
                        ));
                        failed = true;
                    }
                },
                Err(why) => {
                    findings.push(Finding::new(
                        Code::PackageUnavailable,
                        format!(
                            "{} changes from {} at {} to {} at {}, and version {v} cannot be obtained ({why}): {}",
                            change.display,
                            change.newer.as_deref().unwrap_or("not installed"),
                            newer.label,
                            change.older.as_deref().unwrap_or("not installed"),
                            older.label,
                            sources.how_to_provide()
                        ),
                    ));
                    failed = true;
                }
            }
        }
        if failed {
            continue;
        }
        let mut staged: Vec<(bool, usize, App, Rc<PackageApp>)> = Vec::new();
        let mut bad = false;
        for (is_newer, version, files) in &read {
            let (project, rev) = if *is_newer {
                (&*pn, &newer.label)
            } else {
                (&*po, &older.label)
            };
            match apps_of(project, &change.display, version, files) {
                Ok(apps) => staged.extend(apps.into_iter().map(|(i, a, p)| (*is_newer, i, a, p))),
                Err(f) => {
                    findings.push(Finding::new(
                        Code::PackageUnreadable,
                        format!("{} {version} (installed at {rev}): {f}", change.display),
                    ));
                    bad = true;
                }
            }
        }
        if bad {
            continue;
        }
        // An app of the package the settings remove under a condition they
        // cannot decide, whose migrations differ between the versions:
        // whether `migrate APP …` is needed (or fails: the app is not
        // installed) depends on that condition. Never guessed.
        if opts.installed_apps.is_none() {
            for (is_newer, i, app, _) in staged.iter().filter(|s| s.0) {
                let names = |newer: bool| -> Vec<&str> {
                    let mut n: Vec<&str> = staged
                        .iter()
                        .filter(|s| s.0 == newer && s.2.label == app.label)
                        .flat_map(|s| s.3.files.iter().map(|f| f.key.1.as_str()))
                        .collect();
                    n.sort_unstable();
                    n
                };
                let entry = pn
                    .entries()
                    .and_then(|e| e.get(*i))
                    .cloned()
                    .unwrap_or_default();
                if let (true, Some((file, line))) = (*is_newer, pn.removed_under_condition(&entry))
                    && names(true) != names(false)
                {
                    return Err(crate::error::Error::input(format!(
                        "{file} at {} line {line} removes {entry:?} from INSTALLED_APPS only under a condition, and {} changes from {} to {} between the revisions with other migrations of {:?}: whether they must be unapplied depends on that condition; list the apps the deployment installs under `installed_apps:` in .tagback.yml",
                        newer.label,
                        change.display,
                        change.older.as_deref().unwrap_or("not installed"),
                        change.newer.as_deref().unwrap_or("not installed"),
                        app.label
                    )));
                }
            }
        }
        if !staged.is_empty() {
            planned.push(format!(
                "{} {} (older: {})",
                change.display,
                change.newer.as_deref().unwrap_or("not installed"),
                change.older.as_deref().unwrap_or("not installed")
            ));
        }
        for (is_newer, i, app, package) in staged {
            let (project, rev) = if is_newer {
                (&mut *pn, &newer.label)
            } else {
                (&mut *po, &older.label)
            };
            project.attach_package(i, app, package, rev)?;
        }
    }
    Ok((findings, planned))
}

/// What the graph needs of an archive: from the files cache when it holds
/// this very archive (same SHA-256), else read and cached.
fn read_archive(
    sources: &index::Sources,
    norm: &str,
    version: &str,
    a: &index::Archive,
) -> std::result::Result<PackageFiles, String> {
    if let Some(dir) = &sources.cache
        && let Some(files) = cache::get(dir, norm, version, &a.sha256)
    {
        return Ok(files);
    }
    let files = archive::read(&a.file_name, &a.data)?;
    if let Some(dir) = &sources.cache {
        cache::put(dir, norm, version, &a.sha256, &files);
    }
    Ok(files)
}

fn sources(repo: &Repo, opts: &ProjectOptions) -> index::Sources {
    let base = repo.workdir().map(PathBuf::from).unwrap_or_default();
    let wheelhouse = opts.wheelhouse.as_deref().map(|w| base.join(w));
    let cache = (!repo.is_plain_dir()
        && std::env::var_os("TAGBACK_NO_CACHE").is_none_or(|v| v.is_empty()))
    .then(|| repo.git_dir().join("tagback").join("packages"));
    index::Sources::from_env(wheelhouse.as_deref(), cache)
}

/// The installed apps of `project` that this package version provides
/// (apps from outside the repository whose entry's top-level module the
/// archive installs), resolved in its files: `(index in project.apps, app, its migrations)`.
fn apps_of(
    project: &Project,
    dist: &str,
    version: &str,
    files: &PackageFiles,
) -> std::result::Result<Vec<(usize, App, Rc<PackageApp>)>, String> {
    let Some(entries) = project.entries() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (i, app) in project.apps.iter().enumerate() {
        let Some(entry) = entries.get(i) else {
            continue;
        };
        if app.migrations_dir.is_some()
            || !files
                .tops
                .contains(entry.split('.').next().unwrap_or_default())
        {
            continue;
        }
        let (name, label) = resolve(entry, files)?;
        let module = format!("{name}.migrations");
        let dir = module.replace('.', "/");
        let migrations = read_migrations(files, &dir, &label)?;
        let has_migrations = files.has(&format!("{dir}/__init__.py"));
        out.push((
            i,
            App {
                label,
                name,
                migrations_dir: has_migrations.then_some(dir),
                migrations_module: Some(module),
            },
            Rc::new(PackageApp {
                dist: dist.to_string(),
                version: version.to_string(),
                files: migrations,
            }),
        ));
    }
    Ok(out)
}

/// An `INSTALLED_APPS` entry resolved in a package's files as Django does:
/// a package's `apps.py` default config, or the named config class.
fn resolve(entry: &str, files: &PackageFiles) -> std::result::Result<(String, String), String> {
    let path = entry.replace('.', "/");
    let parse = |file: &str| -> std::result::Result<Option<Vec<python::Stmt>>, String> {
        match files.get(file) {
            Some(text) => python::parse_module(text)
                .map(Some)
                .map_err(|e| format!("{file} line {}: {}", e.line, e.message)),
            None => Ok(None),
        }
    };
    let fallback_label = |name: &str| name.rsplit('.').next().unwrap_or(name).to_string();
    if files.has(&format!("{path}/__init__.py")) {
        let chosen = match parse(&format!("{path}/apps.py"))? {
            Some(stmts) => default_config(&stmts),
            None => None,
        };
        let (name, label) = chosen.unwrap_or((None, None));
        let name = name.unwrap_or_else(|| entry.to_string());
        let label = label.unwrap_or_else(|| fallback_label(&name));
        return Ok((name, label));
    }
    if let Some((module, class)) = entry.rsplit_once('.') {
        let file = format!("{}.py", module.replace('.', "/"));
        if let Some(stmts) = parse(&file)? {
            let Some((name, label)) = named_config(&stmts, class) else {
                return Err(format!(
                    "INSTALLED_APPS entry {entry:?}: {file} has no class {class}"
                ));
            };
            let fallback = module.strip_suffix(".apps").unwrap_or(module);
            let name = name.unwrap_or_else(|| fallback.to_string());
            let label = label.unwrap_or_else(|| fallback_label(&name));
            return Ok((name, label));
        }
    }
    Err(format!(
        "INSTALLED_APPS entry {entry:?} is neither a package nor an app config class of this version"
    ))
}

/// The migration modules of a package's migrations directory.
fn read_migrations(
    files: &PackageFiles,
    dir: &str,
    label: &str,
) -> std::result::Result<Vec<Rc<MigrationFile>>, String> {
    if !files.has(&format!("{dir}/__init__.py")) {
        return Ok(Vec::new());
    }
    let prefix = format!("{dir}/");
    let mut out = Vec::new();
    for (path, text) in files.files.range(prefix.clone()..) {
        let Some(name) = path.strip_prefix(&prefix) else {
            break;
        };
        if name.contains('/') || !is_migration_file_name(name) {
            continue;
        }
        let m = migration::parse(text, label).map_err(|e| {
            let at = if e.line > 0 {
                format!(" line {}", e.line)
            } else {
                String::new()
            };
            format!("{path}{at}: {}", e.message)
        })?;
        out.push(Rc::new(MigrationFile {
            key: (label.to_string(), name.trim_end_matches(".py").to_string()),
            file: path.clone(),
            migration: Arc::new(m),
            blob: None,
        }));
    }
    Ok(out)
}
