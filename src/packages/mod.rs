//! Migrations that arrive through pip. The deploy's pins are read at both
//! revisions (`pins`); for every package whose version differs, both
//! versions' archives are found (`index`: wheelhouse, archive cache, simple
//! index) and read without running their code (`archive`), or the package
//! is read as installed in the service's local Docker image (`image`); the installed
//! apps they provide then enter each revision's graph as if their code were
//! in the repository, with the labels of their `AppConfig`s and their
//! migrations. Packages whose version did not change keep the treatment of
//! apps from outside the repository (present and unchanged).
//!
//! Never silent: a requirement whose installed version cannot be known, a
//! changed package that cannot be obtained or read, blocks with a finding.

pub mod archive;
pub mod cache;
pub mod image;
pub mod index;
pub mod pins;

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use crate::django::project::{App, Project, ProjectOptions, default_config, named_config};
use crate::django::{MigrationFile, MigrationKey, is_migration_file_name, migration, python};
use crate::error::Result;
use crate::finding::{Code, Finding};
use crate::git::{Repo, Snapshot};
use crate::source::GitRevision;
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
                        "{name} is pinned to different versions at {rev} ({}) under environment markers tagback cannot decide; say the image's Python version with `python:` in .tagback.yml (`python: \"3.12\"`), pin one version, or name the deploy's file with `requirements:`",
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
    sides: [&ProjectOptions; 2],
) -> Result<(Vec<Finding>, Vec<String>)> {
    // What both revisions share (sources, images) is read from the newer's
    // options; pins (their file and the image's Python), apps and
    // MIGRATION_MODULES from each revision's own.
    let opts = sides[0];
    let pins_n = pins::read(
        repo,
        newer,
        sides[0].requirements.as_deref(),
        &pn.root,
        sides[0].python.as_deref(),
    )?;
    let pins_o = pins::read(
        repo,
        older,
        sides[1].requirements.as_deref(),
        &po.root,
        sides[1].python.as_deref(),
    )?;
    let mut label_findings = Vec::new();
    let sources = sources(repo, opts);
    for (project, snap, pins, image, opts) in [
        (
            &mut *pn,
            newer,
            &pins_n,
            opts.images[0].as_deref(),
            sides[0],
        ),
        (
            &mut *po,
            older,
            &pins_o,
            opts.images[1].as_deref(),
            sides[1],
        ),
    ] {
        // Labels that matter: guesses that collide, and guesses under which
        // MIGRATION_MODULES moved an app's migrations into the repository
        // (the label is in every command for them).
        let mut matter = project.unread.clone();
        for (i, app) in project.apps.iter().enumerate() {
            if app.migrations_dir.is_some() && project.label_guessed(i) {
                matter.push(i);
            }
        }
        if !matter.is_empty() {
            let labels = Labels {
                pins,
                sources: &sources,
                image,
            };
            for f in read_labels(repo, snap, project, &matter, &labels, opts)? {
                if !label_findings.contains(&f) {
                    label_findings.push(f);
                }
            }
        }
    }
    if pins_n.file.is_none() && pins_o.file.is_none() {
        return Ok((label_findings, Vec::new()));
    }
    let Changes {
        changed,
        mut findings,
    } = compare(&pins_n, &pins_o, &newer.label, &older.label);
    findings.extend(label_findings);
    // Notes (what was assumed of environment markers) travel with the
    // blocking findings; `plan` tells them apart by severity.
    for note in pins_n.notes.iter().chain(&pins_o.notes) {
        if !findings.contains(note) {
            findings.push(note.clone());
        }
    }
    let mut planned = Vec::new();
    if changed.is_empty() {
        return Ok((findings, planned));
    }
    // Every changed package's archives are read before any is judged, so a
    // package renamed between the revisions (django-q -> django-q2, one
    // module) is told from one missing from a revision's pins.
    let mut reads: Vec<Option<Vec<(bool, String, PackageFiles)>>> = Vec::new();
    for change in &changed {
        // Both versions are read before anything is attached: a package
        // read at one revision only would make the plan lopsided.
        let mut read: Vec<(bool, String, PackageFiles)> = Vec::new();
        let mut failed = false;
        for (is_newer, version, pins, image) in [
            (true, &change.newer, &pins_n, opts.images[0].as_deref()),
            (false, &change.older, &pins_o, opts.images[1].as_deref()),
        ] {
            let Some(v) = version else { continue };
            let hashes = pins
                .by_name
                .get(&change.name)
                .map(|p| p.hashes.clone())
                .unwrap_or_default();
            match sources.obtain(&change.name, v, &hashes, image) {
                Ok(a) => match read_archive(&sources, &change.name, v, &a) {
                    Ok(files) => read.push((is_newer, v.clone(), files)),
                    Err(e) => {
                        findings.push(Finding::new(
                            Code::PackageUnavailable,
                            format!(
                                "{} {v} ({}) cannot be read: {e}",
                                change.display,
                                a.origin()
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
                            sources.how_to_provide(image)
                        ),
                    ));
                    failed = true;
                }
            }
        }
        reads.push((!failed).then_some(read));
    }
    // Which revision installs which top-level module, by changed package.
    let provided: Vec<(usize, bool, &std::collections::BTreeSet<String>)> = reads
        .iter()
        .enumerate()
        .filter_map(|(i, r)| Some((i, r.as_ref()?)))
        .flat_map(|(i, r)| r.iter().map(move |(n, _, files)| (i, *n, &files.tops)))
        .collect();
    let mut unpinned: Vec<Unpinned> = Vec::new();
    for (i, (change, read)) in changed.iter().zip(&reads).enumerate() {
        let Some(read) = read else { continue };
        let by_another = |newer: bool, top: &str| {
            provided
                .iter()
                .any(|(j, n, tops)| *j != i && *n == newer && tops.contains(top))
        };
        if let Some(u) = installed_but_unpinned([&*pn, &*po], change, read, by_another) {
            unpinned.push(u);
            continue;
        }
        if opts.installed_apps.is_none() {
            conditional_apps_of_a_change(pn, po, newer, older, change, read)?;
        }
        let mut staged: Vec<(bool, Provided)> = Vec::new();
        let mut bad = false;
        for (is_newer, version, files) in read {
            let (project, snap, opts) = if *is_newer {
                (&*pn, newer, sides[0])
            } else {
                (&*po, older, sides[1])
            };
            let rev = &snap.label;
            match apps_of(repo, snap, project, opts, &change.display, version, files) {
                Ok(apps) => staged.extend(apps.into_iter().map(|p| (*is_newer, p))),
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
            for (is_newer, provided) in staged.iter().filter(|s| s.0) {
                let Provided::Packaged(i, app, _) = provided else {
                    continue;
                };
                let names = |newer: bool| -> Vec<&str> {
                    let mut n: Vec<&str> = staged
                        .iter()
                        .filter(|s| s.0 == newer)
                        .filter_map(|s| match &s.1 {
                            Provided::Packaged(_, a, package) if a.label == app.label => {
                                Some(package)
                            }
                            _ => None,
                        })
                        .flat_map(|package| package.files.iter().map(|f| f.key.name.as_str()))
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
        for (is_newer, provided) in staged {
            let (project, snap) = if is_newer {
                (&mut *pn, newer)
            } else {
                (&mut *po, older)
            };
            let (i, app, package) = match provided {
                Provided::Packaged(i, app, package) => (i, app, package),
                Provided::InRepository(i, label, name) => {
                    project.read_label(&GitRevision::new(repo, snap), opts, i, label, name)?;
                    continue;
                }
            };
            // Another app's label, when only guessed, is no conflict.
            if let Some(other) = project.index_of(&app.label)
                && other != i
                && project.label_guessed(other)
            {
                let entry = project
                    .entries()
                    .and_then(|e| e.get(other))
                    .cloned()
                    .unwrap_or_default();
                findings.push(Finding::new(
                    Code::UnreadAppLabel,
                    format!(
                        "the label of {entry} (INSTALLED_APPS at {}) was not read: its guess {}, from the module path, is the label {} {} has; assumed distinct, as Django starts only with distinct labels",
                        snap.label, app.label, change.display,
                        if is_newer { change.newer.as_deref() } else { change.older.as_deref() }.unwrap_or_default()
                    ),
                ));
                project.set_unread(other);
            }
            project.attach_package(i, app, package, &snap.label)?;
        }
    }
    findings.extend(unpinned_findings(
        &unpinned,
        [(newer, &pins_n), (older, &pins_o)],
    ));
    Ok((findings, planned))
}

/// The labels of the apps whose guessed label collides with another app's
/// (`wagtail.admin` guessed `admin`, like `django.contrib.admin`), read
/// from the pinned version of the package that provides them (wheelhouse,
/// cache, index). What cannot be read is said in a note, and blocks only
/// where the label decides something: a `MIGRATION_MODULES` key that is no
/// installed app's label may be this app's.
fn read_labels(
    repo: &Repo,
    snap: &Snapshot,
    project: &mut Project,
    matter: &[usize],
    labels: &Labels<'_>,
    opts: &ProjectOptions,
) -> Result<Vec<Finding>> {
    let Labels {
        pins,
        sources,
        image,
    } = *labels;
    let mut out = Vec::new();
    let Some(entries) = project.entries().map(<[String]>::to_vec) else {
        return Ok(out);
    };
    for &i in matter {
        let entry = &entries[i];
        let collided = project.unread.contains(&i);
        let top = entry.split('.').next().unwrap_or_default();
        let t = pins::normalize(top);
        let candidates: Vec<&Pin> = [t.clone(), format!("django-{t}"), format!("{t}-django")]
            .iter()
            .filter_map(|n| pins.by_name.get(n))
            .collect();
        let mut why = match (&pins.file, candidates.is_empty()) {
            (None, _) => "no pins file names its package".to_string(),
            (Some(f), true) => format!("{f} pins no package named {t} or django-{t}"),
            (Some(_), false) => String::new(),
        };
        let mut read = None;
        for pin in candidates {
            let Some(v) = &pin.version else {
                why = format!("{} is not pinned to one version", pin.display);
                continue;
            };
            let files = match sources.obtain(&pin.display, v, &pin.hashes, image) {
                Ok(a) => match read_archive(sources, &pins::normalize(&pin.display), v, &a) {
                    Ok(f) => f,
                    Err(e) => {
                        why = format!("{} {v} ({}) cannot be read: {e}", pin.display, a.origin());
                        continue;
                    }
                },
                Err(e) => {
                    why = format!("{} {v} cannot be obtained ({e})", pin.display);
                    continue;
                }
            };
            if !files.tops.contains(top) {
                why = format!("{} {v} does not install {top}", pin.display);
                continue;
            }
            match resolve(entry, &files) {
                Ok(found) => {
                    read = Some(found);
                    break;
                }
                Err(e) => why = format!("{} {v}: {e}", pin.display),
            }
        }
        let guess = project.apps[i].label.clone();
        match read {
            Some((name, label)) => {
                if let Some(holder) = project.index_of(&label)
                    && holder != i
                    && !project.label_guessed(holder)
                {
                    return Err(crate::error::Error::input(format!(
                        "INSTALLED_APPS at {} has two apps labelled {label:?} ({} and {entry}, read from its package); Django refuses to start",
                        snap.label, project.apps[holder].name
                    )));
                }
                project.read_label(&GitRevision::new(repo, snap), opts, i, label, name)?;
            }
            None if collided => {
                out.push(unread_note(project, snap, i, &guess, entry, &why));
            }
            None => {
                let module = project.apps[i]
                    .migrations_module
                    .clone()
                    .unwrap_or_default();
                out.push(Finding::new(
                    Code::UnreadAppLabel,
                    format!(
                        "the label of {entry} (INSTALLED_APPS at {}) was not read ({why}): assumed {guess}, the MIGRATION_MODULES key that moves its migrations to {module}",
                        snap.label
                    ),
                ));
            }
        }
    }
    if !project.unread.is_empty() {
        let orphans = project.orphan_migration_modules(opts);
        if !orphans.is_empty() {
            let apps: Vec<String> = project.unread.iter().map(|i| entries[*i].clone()).collect();
            out.push(Finding::new(
                Code::PackageUnavailable,
                format!(
                    "MIGRATION_MODULES at {} names {}, the label of no app tagback could read, and the labels of {} were not read: which app's migrations it moves cannot be known; {}, or state the labels' modules under `migration_modules:` in .tagback.yml",
                    snap.label,
                    orphans.join(", "),
                    apps.join(", "),
                    sources.how_to_provide(image)
                ),
            ));
        }
    }
    Ok(out)
}

/// A package pinned at one revision only, while the other revision installs
/// one of its apps (its `INSTALLED_APPS`, outside the repository): the pins
/// read there are not what that revision's deploy installs. InvenTree 0.15.0
/// keeps a `requirements.txt` of comments at the root and its pins under
/// `src/backend/`; read as "not installed", django-otp's and django-taggit's
/// newer migrations were left out of the plan. Blocks, naming the app and
/// the `requirements:` line.
fn installed_but_unpinned(
    projects: [&Project; 2],
    change: &Change,
    read: &[(bool, String, PackageFiles)],
    by_another: impl Fn(bool, &str) -> bool,
) -> Option<Unpinned> {
    let [(is_newer, version, files)] = read else {
        return None;
    };
    // The revision that lacks the pin is the other one. Not where another
    // changed package pinned there installs the module (a package renamed
    // between the revisions).
    let lacking_is_newer = !*is_newer;
    let project = projects[usize::from(*is_newer)];
    let app = project.apps.iter().find(|a| {
        let top = a.name.split('.').next().unwrap_or(&a.name);
        a.migrations_dir.is_none()
            && (a.label_from_path || a.name.starts_with("django."))
            && files.tops.contains(top)
            && !by_another(lacking_is_newer, top)
    })?;
    Some(Unpinned {
        lacking_is_newer,
        package: change.display.clone(),
        version: version.clone(),
        app: app.name.clone(),
    })
}

/// A package [`installed_but_unpinned`] found.
struct Unpinned {
    /// Whether the newer revision is the one whose pins lack it.
    lacking_is_newer: bool,
    package: String,
    /// Its version at the other revision.
    version: String,
    /// The app of it that the lacking revision installs.
    app: String,
}

/// One blocking finding per revision whose pins lack packages it installs.
fn unpinned_findings(found: &[Unpinned], revisions: [(&Snapshot, &pins::Pins); 2]) -> Vec<Finding> {
    let mut out = Vec::new();
    for lacking_is_newer in [true, false] {
        let these: Vec<&Unpinned> = found
            .iter()
            .filter(|u| u.lacking_is_newer == lacking_is_newer)
            .collect();
        let Some(first) = these.first() else {
            continue;
        };
        let (snap, pins) = revisions[usize::from(!lacking_is_newer)];
        let has = revisions[usize::from(lacking_is_newer)].0;
        let side = if lacking_is_newer { "newer" } else { "older" };
        let read_from = pins
            .file
            .as_deref()
            .map_or("no pins file".to_string(), |f| format!("the pins of {f}"));
        let what = if these.len() == 1 {
            format!(
                "{} is pinned at {} ({}) but not at {} ({read_from}), while INSTALLED_APPS at {} has {}, one of its apps",
                first.package, has.label, first.version, snap.label, snap.label, first.app
            )
        } else {
            let list: Vec<String> = these
                .iter()
                .map(|u| format!("{} {} ({})", u.package, u.version, u.app))
                .collect();
            format!(
                "{} packages are pinned at {} but not at {} ({read_from}), while INSTALLED_APPS at {} has their apps: {}",
                these.len(),
                has.label,
                snap.label,
                snap.label,
                list.join(", ")
            )
        };
        out.push(Finding::new(
            Code::UnpinnedRequirement,
            format!(
                "{what}: those pins are not what {} installs; name the deploy's pins at {} with `{side}: {{requirements: PATH}}` in .tagback.yml (`requirements:` for both)",
                snap.label, snap.label
            ),
        ));
    }
    out
}

/// An app of a changed package that the settings add only under a condition
/// tagback cannot decide (`if DEBUG: INSTALLED_APPS += ["debug_toolbar"]`),
/// whose migrations differ between the two versions: whether they must be
/// unapplied depends on that condition. Never guessed: an error naming the
/// line and `installed_apps:`.
fn conditional_apps_of_a_change(
    pn: &Project,
    po: &Project,
    newer: &Snapshot,
    older: &Snapshot,
    change: &Change,
    read: &[(bool, String, PackageFiles)],
) -> Result<()> {
    // The migration file names an entry has in one version's files (none
    // where the version does not install its module).
    let names = |entry: &str, files: &PackageFiles| -> Vec<String> {
        let top = entry.split('.').next().unwrap_or(entry);
        if !files.tops.contains(top) {
            return Vec::new();
        }
        let name = resolve(entry, files).map_or_else(|_| entry.to_string(), |(name, _)| name);
        let dir = format!("{}/migrations/", name.replace('.', "/"));
        files
            .files
            .keys()
            .filter_map(|p| p.strip_prefix(&dir))
            .filter(|f| is_migration_file_name(f))
            .map(str::to_string)
            .collect()
    };
    for (project, snap) in [(pn, newer), (po, older)] {
        for (entry, file, line) in project.added_under_condition() {
            let mut per_version: Vec<Vec<String>> = read
                .iter()
                .map(|(_, _, files)| names(entry, files))
                .collect();
            // A revision whose pins lack the package installs none of its
            // migrations (django-cachalot, added to a project under a
            // condition, has none of its own: nothing to decide).
            if per_version.len() < 2 {
                per_version.push(Vec::new());
            }
            let differ = per_version.windows(2).any(|w| w[0] != w[1]);
            if differ {
                return Err(crate::error::Error::input(format!(
                    "{file} at {} line {line} adds {entry:?} to INSTALLED_APPS only under a condition, and {} changes from {} to {} between the revisions with other migrations for it: whether they must be unapplied depends on that condition; list the apps the deployment installs under `installed_apps:` in .tagback.yml",
                    snap.label,
                    change.display,
                    change.older.as_deref().unwrap_or("not installed"),
                    change.newer.as_deref().unwrap_or("not installed"),
                )));
            }
        }
    }
    Ok(())
}

/// Where the labels of one revision's external apps can be read from.
#[derive(Clone, Copy)]
struct Labels<'a> {
    pins: &'a Pins,
    sources: &'a index::Sources,
    /// The image that deploys the revision, when known.
    image: Option<&'a str>,
}

/// The note for an app whose label was not read.
fn unread_note(
    project: &Project,
    snap: &Snapshot,
    index: usize,
    guess: &str,
    entry: &str,
    why: &str,
) -> Finding {
    let other = project
        .index_of(guess)
        .filter(|o| *o != index)
        .map(|o| project.apps[o].name.clone())
        .unwrap_or_else(|| "another app".to_string());
    Finding::new(
        Code::UnreadAppLabel,
        format!(
            "the label of {entry} (INSTALLED_APPS at {}) was not read ({why}): its guess {guess}, from the module path, is also the label of {other}; assumed distinct, as Django starts only with distinct labels",
            snap.label
        ),
    )
}

/// What the graph needs of an archive: from the files cache when it holds
/// this very archive (same SHA-256), else read and cached.
fn read_archive(
    sources: &index::Sources,
    norm: &str,
    version: &str,
    obtained: &index::Obtained,
) -> std::result::Result<PackageFiles, String> {
    let a = match obtained {
        index::Obtained::Archive(a) => a,
        // Read (and cached) by the image source.
        index::Obtained::Installed { files, .. } => return Ok(files.clone()),
    };
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
    let mut sources = index::Sources::from_env(wheelhouse.as_deref(), cache);
    sources.order = opts.package_sources.clone();
    sources
}

/// What a package version says of one installed app it provides.
enum Provided {
    /// Its migrations come from the archive: `(index in project.apps, app, its migrations)`.
    Packaged(usize, App, Rc<PackageApp>),
    /// `MIGRATION_MODULES` moves its migrations into the repository: only
    /// its label and name come from the archive. `(index, label, name)`.
    InRepository(usize, String, String),
}

/// The installed apps of `project` that this package version provides
/// (apps from outside the repository whose entry's top-level module the
/// archive installs), resolved in its files, their migrations where
/// `MIGRATION_MODULES` (under the label read) says they are.
fn apps_of(
    repo: &Repo,
    snap: &Snapshot,
    project: &Project,
    opts: &ProjectOptions,
    dist: &str,
    version: &str,
    files: &PackageFiles,
) -> std::result::Result<Vec<Provided>, String> {
    let Some(entries) = project.entries() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (i, app) in project.apps.iter().enumerate() {
        let Some(entry) = entries.get(i) else {
            continue;
        };
        let top = entry.split('.').next().unwrap_or_default();
        if !files.tops.contains(top) {
            // MIGRATION_MODULES may move another app's migrations into
            // this package: those change with it.
            if app.migrations_dir.is_none()
                && let Some(m) = &app.migrations_module
                && files.has(&format!("{}/__init__.py", m.replace('.', "/")))
            {
                return Err(format!(
                    "MIGRATION_MODULES moves the migrations of {} into {m}, which this package installs; tagback does not read migrations moved into another package: state them in the repository (a `migration_modules:` module there), or keep {dist} at one version",
                    app.label
                ));
            }
            continue;
        }
        if app.migrations_dir.is_some() && !project.unread.contains(&i) && !project.label_guessed(i)
        {
            continue;
        }
        let (name, label) = resolve(entry, files)?;
        let module = match project.migrations_setting(opts, &label) {
            None => Some(format!("{name}.migrations")),
            Some(None) => None,
            Some(Some(m)) => {
                let dir = m.replace('.', "/");
                let in_repo = if project.root.is_empty() {
                    dir.clone()
                } else {
                    format!("{}/{dir}", project.root)
                };
                if repo
                    .exists(snap, &format!("{in_repo}/__init__.py"))
                    .map_err(|e| e.to_string())?
                {
                    out.push(Provided::InRepository(i, label, name));
                    continue;
                }
                if !files.has(&format!("{dir}/__init__.py")) {
                    return Err(format!(
                        "MIGRATION_MODULES moves the migrations of {label} to {m}, which neither the repository nor this package holds; tagback does not read migrations from another package: put them in the repository, or state the module under `migration_modules:` in .tagback.yml"
                    ));
                }
                Some(m)
            }
        };
        let (migrations, dir) = match &module {
            Some(m) => {
                let dir = m.replace('.', "/");
                (read_migrations(files, &dir, &label)?, Some(dir))
            }
            None => (Vec::new(), None),
        };
        let has_migrations = dir
            .as_ref()
            .filter(|d| files.has(&format!("{d}/__init__.py")))
            .cloned();
        out.push(Provided::Packaged(
            i,
            App {
                label,
                name,
                migrations_dir: has_migrations,
                migrations_module: module,
                label_from_path: app.label_from_path,
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
            key: MigrationKey::new(label, name.trim_end_matches(".py")),
            file: path.clone(),
            migration: Arc::new(m),
            blob: None,
        }));
    }
    Ok(out)
}
