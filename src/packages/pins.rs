//! What a revision installs: the exact versions its pins name, read from
//! git blobs. `requirements*.txt` (with `-r`/`-c` includes, `--hash`,
//! comments, line continuations; pip-tools output is this format),
//! `uv.lock`, `poetry.lock`, `pdm.lock` (its `default` group),
//! `Pipfile.lock` (its `default` section) and `pyproject.toml` (PEP 621
//! `[project] dependencies` and `[tool.poetry.dependencies]`, with the
//! versions of a lockfile beside it). The format is told by the file name.
//!
//! Environment markers are evaluated for a Linux deploy (a Docker image) on
//! CPython 3.8–3.14, x86_64 and aarch64: a pin whose marker holds for all
//! of them is installed, one whose marker holds for none is not (and a note
//! says so), and one that depends on which of them the image has is kept
//! with a note naming what was assumed. A pin is never dropped silently.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use pep508_rs::pep440_rs::{Operator, Version, VersionSpecifiers};
use pep508_rs::{
    MarkerEnvironment, MarkerEnvironmentBuilder, MarkerTree, VerbatimUrl, VersionOrUrl,
};

use crate::error::{Error, Result};
use crate::finding::{Code, Finding};
use crate::git::{Repo, Snapshot};

/// One requirement as a revision pins it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// The name as written (`Django`).
    pub display: String,
    /// The exact version, when the pin is exact (`==4.2.7`).
    pub version: Option<String>,
    /// The requirement as written, without hashes and comments.
    pub spec: String,
    /// `sha256` hex digests the pin allows (`--hash`, lockfile hashes).
    pub hashes: BTreeSet<String>,
    /// Where it is pinned.
    pub file: String,
    /// 1-based line (0 in lockfiles, whose entries span lines).
    pub line: u32,
    /// The PEP 508 environment marker, as written (`python_version < "3.12"`).
    pub marker: Option<String>,
}

/// The pins of one revision, by normalized name (PEP 503).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pins {
    /// The file read (`None`: no pins file found).
    pub file: Option<String>,
    /// Pins by normalized name.
    pub by_name: BTreeMap<String, Pin>,
    /// Names pinned twice with different versions under different
    /// environment markers (the installed one cannot be known statically).
    pub ambiguous: BTreeMap<String, Vec<Pin>>,
    /// What was assumed to read them (notes: environment markers).
    pub notes: Vec<Finding>,
}

/// File names tried, in order, when `.tagback.yml` names none: lockfiles
/// first (every version exact), then the usual requirements files. Not
/// `pyproject.toml`: its ranges are most often a package's metadata, not
/// what a deploy installs (the PyPI corpus: label-studio, weblate); it is
/// read when `requirements:` names it.
pub const CANDIDATES: &[&str] = &[
    "uv.lock",
    "poetry.lock",
    "pdm.lock",
    "Pipfile.lock",
    "requirements.txt",
    "requirements/production.txt",
    "requirements/prod.txt",
    "requirements/base.txt",
];

/// PEP 503 normalized name: lower case, runs of `-`, `_`, `.` as one `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
            continue;
        }
        if sep && !out.is_empty() {
            out.push('-');
        }
        sep = false;
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Read the pins at `snap`: the configured file, else the first of
/// [`CANDIDATES`] found at the repository root or in `project_root` (the
/// directory of `manage.py`). `Ok(Pins::default())` when there is none.
/// Environment markers are decided for `python`, the image's Python
/// version (`python:` in `.tagback.yml`), else for every Linux CPython the
/// pins file allows.
pub fn read(
    repo: &Repo,
    snap: &Snapshot,
    configured: Option<&str>,
    project_root: &str,
    python: Option<&str>,
) -> Result<Pins> {
    let stated = python.map(stated_python).transpose()?;
    let path = match configured {
        Some(p) => {
            if !repo.exists(snap, p)? {
                return Err(Error::input(format!(
                    "{p} (`requirements:` in .tagback.yml) does not exist at {}",
                    snap.label
                )));
            }
            p.to_string()
        }
        None => {
            let mut found = None;
            let roots: Vec<&str> = if project_root.is_empty() {
                vec![""]
            } else {
                vec!["", project_root]
            };
            'outer: for root in roots {
                for c in CANDIDATES {
                    let p = join(root, c);
                    if repo.exists(snap, &p)? {
                        found = Some(p);
                        break 'outer;
                    }
                }
            }
            let Some(p) = found else {
                return Ok(Pins::default());
            };
            p
        }
    };
    let text = read_text(repo, snap, &path, None)?;
    let mut pins = Pins {
        file: Some(path.clone()),
        ..Pins::default()
    };
    let mut lines: Vec<Pin> = Vec::new();
    let file_name = path.rsplit('/').next().unwrap_or(&path);
    let rev = &snap.label;
    match file_name {
        "uv.lock" => read_lock(&text, &path, rev, LockKind::Uv, &mut lines)?,
        "poetry.lock" => read_lock(&text, &path, rev, LockKind::Poetry, &mut lines)?,
        "pdm.lock" => read_lock(&text, &path, rev, LockKind::Pdm, &mut lines)?,
        "Pipfile.lock" => read_pipfile_lock(&text, &path, rev, &mut lines)?,
        "pyproject.toml" => {
            // A lockfile beside it says the versions its ranges resolved to.
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
            let mut locked: Vec<Pin> = Vec::new();
            for (lock, kind) in [
                ("uv.lock", LockKind::Uv),
                ("poetry.lock", LockKind::Poetry),
                ("pdm.lock", LockKind::Pdm),
            ] {
                let p = join(dir, lock);
                if let Some((_, t)) = repo.read_text(snap, &p)? {
                    read_lock(&t, &p, rev, kind, &mut locked)?;
                    break;
                }
            }
            let locked_names: BTreeSet<String> =
                locked.iter().map(|p| normalize(&p.display)).collect();
            read_pyproject(&text, &path, rev, &mut lines)?;
            lines.retain(|p| !locked_names.contains(&normalize(&p.display)));
            lines.extend(locked);
        }
        _ => {
            let mut reader = Requirements {
                repo,
                snap,
                seen: BTreeSet::new(),
                constraints: BTreeMap::new(),
                lines: Vec::new(),
            };
            reader.file(&path, &text, false, 0)?;
            let Requirements {
                constraints,
                lines: read,
                ..
            } = reader;
            for mut pin in read {
                let name = normalize(&pin.display);
                if pin.version.is_none()
                    && let Some(c) = constraints.get(&name)
                {
                    pin.version.clone_from(&c.version);
                    pin.hashes.extend(c.hashes.iter().cloned());
                }
                lines.push(pin);
            }
        }
    }
    let mut not_installed: Vec<String> = Vec::new();
    let deploy = match stated {
        Some(d) => d,
        None => Deploy::allowed_by(python_of(file_name, &text).as_ref()),
    };
    for pin in lines {
        match pin
            .marker
            .as_deref()
            .map(|m| markers(m, &pin, rev, &deploy.envs))
        {
            None | Some(Ok(Installed::Always)) => {}
            Some(Ok(Installed::Never)) => {
                not_installed.push(at_line(&pin));
                continue;
            }
            Some(Ok(Installed::Sometimes)) => pins.notes.push(
                Finding::new(
                    Code::AssumedEnvironment,
                    format!(
                        "{} at {rev}{}: `{}` is installed only where `{}` holds, which depends on the image's {}; assumed installed",
                        pin.file,
                        line_part(pin.line),
                        pin.spec,
                        pin.marker.as_deref().unwrap_or_default(),
                        deploy.depends_on,
                    ),
                )
                .at(pin.file.clone(), pin.line),
            ),
            Some(Err(e)) => return Err(e),
        }
        let name = normalize(&pin.display);
        add(&mut pins, name, pin);
    }
    if !not_installed.is_empty() {
        pins.notes.push(
            Finding::new(
                Code::AssumedEnvironment,
                format!(
                    "{path} at {rev}: not installed on a Linux deploy (their environment markers never hold on {}): {}",
                    deploy.described,
                    not_installed.join(", ")
                ),
            )
            .at(path.clone(), 0),
        );
    }
    Ok(pins)
}

fn line_part(line: u32) -> String {
    if line > 0 {
        format!(" line {line}")
    } else {
        String::new()
    }
}

fn at_line(pin: &Pin) -> String {
    let marker = pin.marker.as_deref().unwrap_or_default();
    if pin.line > 0 {
        format!("{} (line {}; {marker})", pin.display, pin.line)
    } else {
        format!("{} ({marker})", pin.display)
    }
}

/// Whether a pin's marker holds on the deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Installed {
    Always,
    Never,
    Sometimes,
}

/// The environments a Linux deploy can be: CPython 3.8–3.14 (first and a
/// late patch release of each), x86_64 and aarch64, with their Python version.
fn environments() -> &'static [(Version, MarkerEnvironment)] {
    static ENVS: std::sync::OnceLock<Vec<(Version, MarkerEnvironment)>> =
        std::sync::OnceLock::new();
    ENVS.get_or_init(|| {
        (8..=14)
            .flat_map(|minor| [(minor, 0), (minor, 99)])
            .flat_map(|(minor, patch)| linux_cpython(minor, patch))
            .collect()
    })
}

/// CPython 3.`minor`.`patch` on Linux, x86_64 and aarch64.
fn linux_cpython(minor: u32, patch: u32) -> Vec<(Version, MarkerEnvironment)> {
    let version = format!("3.{minor}");
    let full = format!("3.{minor}.{patch}");
    ["x86_64", "aarch64"]
        .into_iter()
        .filter_map(|machine| {
            let env = MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
                implementation_name: "cpython",
                implementation_version: &full,
                os_name: "posix",
                platform_machine: machine,
                platform_python_implementation: "CPython",
                platform_release: "",
                platform_system: "Linux",
                platform_version: "",
                python_full_version: &full,
                python_version: &version,
                sys_platform: "linux",
            });
            Some((Version::from_str(&full).ok()?, env.ok()?))
        })
        .collect()
}

/// The environments a pins file's markers are decided for, and how the
/// messages name them.
struct Deploy {
    envs: Vec<MarkerEnvironment>,
    /// "Linux CPython 3.8–3.14", "Linux CPython 3.12".
    described: String,
    /// What a marker that holds on some of them depends on.
    depends_on: String,
}

impl Deploy {
    /// Every Linux CPython the pins file's own Python range allows (all of
    /// 3.8–3.14 when it says none, or none of them).
    fn allowed_by(python: Option<&VersionSpecifiers>) -> Deploy {
        let all = environments();
        let mut envs: Vec<MarkerEnvironment> = all
            .iter()
            .filter(|(v, _)| python.is_none_or(|p| p.contains(v)))
            .map(|(_, e)| e.clone())
            .collect();
        if envs.is_empty() {
            envs = all.iter().map(|(_, e)| e.clone()).collect();
        }
        Deploy {
            envs,
            described: "Linux CPython 3.8–3.14".to_string(),
            depends_on: "Python version or machine (`python:` in .tagback.yml says the version)"
                .to_string(),
        }
    }
}

/// The image's Python as `.tagback.yml` states it: `3.12` (any 3.12.x) or
/// `3.12.7`.
fn stated_python(text: &str) -> Result<Deploy> {
    let refuse = || {
        Error::input(format!(
            "`python: {text}` in .tagback.yml is not a Python version: write the image's version as 3.12 or 3.12.7"
        ))
    };
    let parts: Vec<u32> = text
        .trim()
        .split('.')
        // Digits only (`parse` alone takes `+3`).
        .map(|p| {
            p.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| p.parse().ok())?
        })
        .collect::<Option<_>>()
        .ok_or_else(refuse)?;
    let envs = match parts[..] {
        [3, minor] => [linux_cpython(minor, 0), linux_cpython(minor, 99)].concat(),
        [3, minor, patch] => linux_cpython(minor, patch),
        _ => return Err(refuse()),
    };
    Ok(Deploy {
        envs: envs.into_iter().map(|(_, e)| e).collect(),
        described: format!("Linux CPython {}", text.trim()),
        depends_on: "machine".to_string(),
    })
}

/// The Python versions a pins file says it is for (`requires-python`, a
/// Pipfile.lock's `python_version`), as specifiers.
fn python_of(file_name: &str, text: &str) -> Option<VersionSpecifiers> {
    let spec: Option<String> = match file_name {
        "Pipfile.lock" => {
            let doc: serde_json::Value = serde_json::from_str(text).ok()?;
            let req = doc.get("_meta")?.get("requires")?;
            match (
                req.get("python_full_version").and_then(|v| v.as_str()),
                req.get("python_version").and_then(|v| v.as_str()),
            ) {
                (Some(full), _) => Some(format!("=={full}")),
                (None, Some(v)) => Some(format!("=={v}.*")),
                _ => None,
            }
        }
        "pyproject.toml"
            if !text.contains("requires-python")
                && let Ok(doc) = toml::from_str::<toml::Table>(text) =>
        {
            let py = doc
                .get("tool")?
                .get("poetry")?
                .get("dependencies")?
                .get("python")?
                .as_str()?;
            return poetry_specifiers(py);
        }
        "pdm.lock" | "uv.lock" | "pyproject.toml" => {
            let doc: toml::Table = toml::from_str(text).ok()?;
            let metadata = doc.get("metadata");
            [
                doc.get("requires-python"),
                doc.get("project").and_then(|p| p.get("requires-python")),
                metadata
                    .and_then(|m| m.get("targets"))
                    .and_then(|t| t.as_array())
                    .and_then(|t| t.first())
                    .and_then(|t| t.get("requires_python")),
                metadata.and_then(|m| m.get("requires_python")),
            ]
            .into_iter()
            .flatten()
            .find_map(|v| v.as_str().map(str::to_string))
        }
        "poetry.lock" => {
            let doc: toml::Table = toml::from_str(text).ok()?;
            let py = doc.get("metadata")?.get("python-versions")?.as_str()?;
            return poetry_specifiers(py);
        }
        _ => None,
    };
    VersionSpecifiers::from_str(&spec?).ok()
}

fn markers(marker: &str, pin: &Pin, rev: &str, envs: &[MarkerEnvironment]) -> Result<Installed> {
    let tree = MarkerTree::from_str(marker).map_err(|e| {
        Error::input(format!(
            "{} at {rev}{}: the environment marker of {} does not parse: {e}",
            pin.file,
            line_part(pin.line),
            pin.display
        ))
    })?;
    let mut seen = (false, false);
    for env in envs {
        if tree.evaluate(env, &[]) {
            seen.0 = true;
        } else {
            seen.1 = true;
        }
    }
    Ok(match seen {
        (true, false) => Installed::Always,
        (false, _) => Installed::Never,
        (true, true) => Installed::Sometimes,
    })
}

fn add(pins: &mut Pins, name: String, pin: Pin) {
    if let Some(amb) = pins.ambiguous.get_mut(&name) {
        amb.push(pin);
        return;
    }
    match pins.by_name.get(&name) {
        Some(prev) if prev.version != pin.version => {
            let prev = pins.by_name.remove(&name).unwrap_or_else(|| pin.clone());
            pins.ambiguous.insert(name, vec![prev, pin]);
        }
        // One version in several entries (uv.lock: the registry's files
        // and a wheel from a URL for one machine, paperless-ngx's
        // psycopg-c): the files any of them pins are what the deploy may
        // install. An entry without hashes adds none (an archive is used
        // only where a hash pins it, once any entry has one).
        Some(_) => {
            if let Some(prev) = pins.by_name.get_mut(&name) {
                prev.hashes.extend(pin.hashes);
            }
        }
        None => {
            pins.by_name.insert(name, pin);
        }
    }
}

fn join(dir: &str, rel: &str) -> String {
    if dir.is_empty() {
        rel.to_string()
    } else {
        format!("{dir}/{rel}")
    }
}

fn read_text(
    repo: &Repo,
    snap: &Snapshot,
    path: &str,
    from: Option<(&str, u32)>,
) -> Result<String> {
    match repo.read_text(snap, path)? {
        Some((_, t)) => Ok(t),
        None => Err(Error::input(match from {
            Some((f, l)) => format!(
                "{f} at {} line {l} includes {path}, which does not exist",
                snap.label
            ),
            None => format!("{path} does not exist at {}", snap.label),
        })),
    }
}

/// A requirements file and its includes.
struct Requirements<'a> {
    repo: &'a Repo,
    snap: &'a Snapshot,
    seen: BTreeSet<String>,
    constraints: BTreeMap<String, Pin>,
    lines: Vec<Pin>,
}

impl Requirements<'_> {
    fn file(&mut self, path: &str, text: &str, constraint: bool, depth: u32) -> Result<()> {
        if !self.seen.insert(path.to_string()) {
            return Ok(());
        }
        if depth > 32 {
            return Err(Error::input(format!(
                "{path} at {}: requirements includes nested more than 32 deep",
                self.snap.label
            )));
        }
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        let mut logical = String::new();
        let mut start = 0u32;
        for (i, raw) in text.lines().enumerate() {
            let n = i as u32 + 1;
            if logical.is_empty() {
                start = n;
            }
            let line = strip_comment(raw);
            if let Some(cont) = line.strip_suffix('\\') {
                logical.push_str(cont);
                logical.push(' ');
                continue;
            }
            logical.push_str(line);
            let l = std::mem::take(&mut logical);
            self.line(path, dir, l.trim(), start, constraint, depth)?;
        }
        if !logical.trim().is_empty() {
            let l = std::mem::take(&mut logical);
            self.line(path, dir, l.trim(), start, constraint, depth)?;
        }
        Ok(())
    }

    fn line(
        &mut self,
        path: &str,
        dir: &str,
        line: &str,
        n: u32,
        constraint: bool,
        depth: u32,
    ) -> Result<()> {
        if line.is_empty() {
            return Ok(());
        }
        let include = |opt: &str| -> Option<&str> {
            let rest = line.strip_prefix(opt)?;
            if opt.starts_with("--") && !rest.starts_with(['=', ' ', '\t']) {
                return None;
            }
            Some(rest.trim_start_matches('=').trim())
        };
        for (opt, is_constraint) in [
            ("--requirement", false),
            ("--constraint", true),
            ("-r", false),
            ("-c", true),
        ] {
            if let Some(target) = include(opt)
                && !target.is_empty()
            {
                let target = target.split_whitespace().next().unwrap_or(target);
                let p = normalize_path(&join(dir, target));
                let text = read_text(self.repo, self.snap, &p, Some((path, n)))?;
                return self.file(&p, &text, constraint || is_constraint, depth + 1);
            }
        }
        if line.starts_with('-') {
            // `-e`, `-i`, `--index-url`, `--find-links`, `--no-binary`…:
            // an editable install is the project itself or a VCS checkout,
            // whose version no pin states.
            if let Some(rest) = line
                .strip_prefix("-e")
                .or_else(|| line.strip_prefix("--editable"))
            {
                let target = rest.trim_start_matches('=').trim();
                if let Some(name) = egg_name(target) {
                    self.lines.push(Pin {
                        display: name,
                        version: None,
                        spec: line.to_string(),
                        hashes: BTreeSet::new(),
                        file: path.to_string(),
                        line: n,
                        marker: None,
                    });
                }
            }
            return Ok(());
        }
        let Some(pin) = parse_requirement(line, path, n) else {
            // A bare path or URL without a name: the project or a local
            // package, not something an index serves.
            return Ok(());
        };
        if constraint {
            self.constraints.insert(normalize(&pin.display), pin);
        } else {
            self.lines.push(pin);
        }
        Ok(())
    }
}

fn egg_name(target: &str) -> Option<String> {
    let (_, frag) = target.split_once("#egg=")?;
    let name = frag.split('&').next()?;
    (!name.is_empty()).then(|| name.to_string())
}

fn normalize_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            x => parts.push(x),
        }
    }
    parts.join("/")
}

/// A comment starts at `#` at the start of a line or after whitespace (pip's rule).
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
            return &line[..i];
        }
    }
    line
}

/// `name[extras] (specs) ; marker --hash=sha256:…`.
fn parse_requirement(line: &str, file: &str, n: u32) -> Option<Pin> {
    let mut hashes = BTreeSet::new();
    let mut words = Vec::new();
    for w in line.split_whitespace() {
        if let Some(h) = w.strip_prefix("--hash=") {
            if let Some(hex) = h.strip_prefix("sha256:") {
                hashes.insert(hex.to_ascii_lowercase());
            }
        } else if w.starts_with("--") {
            // Per-requirement options (`--config-settings`…) change nothing here.
        } else {
            words.push(w);
        }
    }
    let joined = words.join(" ");
    let (req, marker) = match joined.split_once(';') {
        Some((r, m)) => (
            r.trim(),
            Some(m.trim().to_string()).filter(|m| !m.is_empty()),
        ),
        None => (joined.trim(), None),
    };
    let name_end = req
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(req.len());
    let name = &req[..name_end];
    if name.is_empty() || name.contains("://") || name.starts_with('.') || name.ends_with(".whl") {
        return None;
    }
    let mut rest = req[name_end..].trim_start();
    if let Some(r) = rest.strip_prefix('[') {
        rest = r.split_once(']').map_or("", |(_, r)| r).trim_start();
    }
    if rest.starts_with(':') || rest.starts_with('/') {
        // `C:\…` or `dir/pkg`: a path, not a name.
        return None;
    }
    let specs = rest.trim_start_matches('(').trim_end_matches(')');
    let version = if specs.starts_with('@') {
        None
    } else {
        specs.split(',').find_map(|s| {
            let s = s.trim();
            let v = s
                .strip_prefix("===")
                .or_else(|| s.strip_prefix("=="))?
                .trim();
            (!v.is_empty() && !v.contains('*')).then(|| v.to_string())
        })
    };
    Some(Pin {
        display: name.to_string(),
        version,
        spec: req.to_string(),
        hashes,
        file: file.to_string(),
        line: n,
        marker,
    })
}

#[derive(Clone, Copy)]
enum LockKind {
    Uv,
    Poetry,
    Pdm,
}

fn parse_toml(text: &str, path: &str, rev: &str, what: &str) -> Result<toml::Table> {
    toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let at = line.map(|l| format!(" line {l}")).unwrap_or_default();
        Error::input(format!(
            "{path} at {rev}{at}: not a TOML {what}: {}",
            e.message()
        ))
    })
}

/// `uv.lock`, `poetry.lock` and `pdm.lock`: `[[package]]` tables with
/// `name` and `version`; the project itself (uv's `virtual`/`editable`
/// sources) is not an installed package, nor are pdm's packages of
/// development groups only (`pdm install --prod` leaves them out).
fn read_lock(text: &str, path: &str, rev: &str, kind: LockKind, out: &mut Vec<Pin>) -> Result<()> {
    let doc = parse_toml(text, path, rev, "lockfile")?;
    let Some(packages) = doc.get("package").and_then(|p| p.as_array()) else {
        return Ok(());
    };
    for p in packages {
        let Some(t) = p.as_table() else { continue };
        let (Some(name), Some(version)) = (
            t.get("name").and_then(|v| v.as_str()),
            t.get("version").and_then(|v| v.as_str()),
        ) else {
            continue;
        };
        let source = t.get("source").and_then(|s| s.as_table());
        if matches!(kind, LockKind::Uv)
            && source.is_some_and(|s| {
                s.contains_key("virtual")
                    || s.contains_key("editable")
                    || s.contains_key("directory")
            })
        {
            continue;
        }
        if matches!(kind, LockKind::Pdm)
            && let Some(groups) = t.get("groups").and_then(|g| g.as_array())
            && !groups.iter().any(|g| g.as_str() == Some("default"))
        {
            continue;
        }
        let mut hashes = BTreeSet::new();
        let mut hash = |v: &toml::Value| {
            if let Some(h) = v
                .get("hash")
                .and_then(|h| h.as_str())
                .and_then(|h| h.strip_prefix("sha256:"))
            {
                hashes.insert(h.to_ascii_lowercase());
            }
        };
        for key in ["wheels", "files"] {
            for w in t.get(key).and_then(|w| w.as_array()).into_iter().flatten() {
                hash(w);
            }
        }
        if let Some(s) = t.get("sdist") {
            hash(s);
        }
        // pdm writes `marker`, poetry `markers` (a string; poetry 2 may
        // write a table by group, which says nothing about the platform);
        // uv, where it resolves a package to versions that differ by
        // environment, `resolution-markers`: the version is installed where
        // one of them holds.
        let forks: Vec<&str> = match kind {
            LockKind::Uv => t
                .get("resolution-markers")
                .and_then(|m| m.as_array())
                .into_iter()
                .flatten()
                .filter_map(|m| m.as_str())
                .collect(),
            _ => Vec::new(),
        };
        let marker = ["marker", "markers"]
            .iter()
            .find_map(|k| t.get(*k).and_then(|m| m.as_str()))
            .map(str::to_string)
            .or_else(|| {
                (!forks.is_empty()).then(|| {
                    forks
                        .iter()
                        .map(|m| format!("({m})"))
                        .collect::<Vec<_>>()
                        .join(" or ")
                })
            });
        out.push(Pin {
            display: name.to_string(),
            version: Some(version.to_string()),
            spec: format!("{name}=={version}"),
            hashes,
            file: path.to_string(),
            line: 0,
            marker,
        });
    }
    Ok(())
}

/// `Pipfile.lock` (JSON): the `default` section, what `pipenv install
/// --deploy` installs; `develop` is for development. `"version": "==X"`.
/// An entry without a version (a path, a VCS checkout) is the project or a
/// package no index serves: a path is skipped, anything else is unpinned.
fn read_pipfile_lock(text: &str, path: &str, rev: &str, out: &mut Vec<Pin>) -> Result<()> {
    let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        Error::input(format!(
            "{path} at {rev} line {}: not a Pipfile.lock: {e}",
            e.line()
        ))
    })?;
    let Some(default) = doc.get("default").and_then(|d| d.as_object()) else {
        return Err(Error::input(format!(
            "{path} at {rev}: not a Pipfile.lock (no \"default\" section)"
        )));
    };
    for (name, entry) in default {
        let version = entry.get("version").and_then(|v| v.as_str());
        if version.is_none() && (entry.get("path").is_some() || entry.get("file").is_some()) {
            continue;
        }
        let hashes = entry
            .get("hashes")
            .and_then(|h| h.as_array())
            .into_iter()
            .flatten()
            .filter_map(|h| h.as_str()?.strip_prefix("sha256:"))
            .map(str::to_ascii_lowercase)
            .collect();
        let exact = version.and_then(exact_version);
        let spec = match (version, entry.get("git").and_then(|g| g.as_str())) {
            (Some(v), _) => format!("{name}{v}"),
            (None, Some(git)) => format!("{name} @ git+{git}"),
            (None, None) => name.clone(),
        };
        out.push(Pin {
            display: name.clone(),
            version: exact,
            spec,
            hashes,
            file: path.to_string(),
            line: 0,
            marker: entry
                .get("markers")
                .and_then(|m| m.as_str())
                .map(str::to_string),
        });
    }
    Ok(())
}

/// The version of an exact specifier set (`==4.2.7`; not `==4.2.*`).
fn exact_version(spec: &str) -> Option<String> {
    let specs = VersionSpecifiers::from_str(spec).ok()?;
    specs.iter().find_map(|s| {
        matches!(s.operator(), Operator::Equal | Operator::ExactEqual)
            .then(|| s.version().to_string())
    })
}

/// `pyproject.toml`: PEP 621 `[project] dependencies` (PEP 508 strings) and
/// `[tool.poetry.dependencies]` (poetry's constraint syntax: a bare version
/// is exact; `python` is the interpreter). Optional dependencies and
/// development groups are not what a deploy installs.
fn read_pyproject(text: &str, path: &str, rev: &str, out: &mut Vec<Pin>) -> Result<()> {
    let doc = parse_toml(text, path, rev, "pyproject.toml")?;
    let line_of = |needle: &str| -> u32 {
        text.lines()
            .position(|l| l.contains(needle))
            .map_or(0, |i| i as u32 + 1)
    };
    let deps = doc
        .get("project")
        .and_then(|p| p.get("dependencies"))
        .and_then(|d| d.as_array());
    for d in deps.into_iter().flatten() {
        let Some(s) = d.as_str() else { continue };
        let req = pep508_rs::Requirement::<VerbatimUrl>::from_str(s).map_err(|e| {
            Error::input(format!(
                "{path} at {rev}{}: dependency {s:?} is not a PEP 508 requirement: {e}",
                line_part(line_of(s))
            ))
        })?;
        let version = match &req.version_or_url {
            Some(VersionOrUrl::VersionSpecifier(v)) => v.iter().find_map(|s| {
                matches!(s.operator(), Operator::Equal | Operator::ExactEqual)
                    .then(|| s.version().to_string())
            }),
            _ => None,
        };
        let spec = s.split(';').next().unwrap_or(s).trim().to_string();
        out.push(Pin {
            display: req.name.to_string(),
            version,
            spec,
            hashes: BTreeSet::new(),
            file: path.to_string(),
            line: line_of(s),
            marker: req.marker.try_to_string(),
        });
    }
    let poetry = doc
        .get("tool")
        .and_then(|t| t.get("poetry"))
        .and_then(|p| p.get("dependencies"))
        .and_then(|d| d.as_table());
    for (name, value) in poetry.into_iter().flatten() {
        if name.eq_ignore_ascii_case("python") {
            continue;
        }
        // A list of constraints, each under its own markers.
        let items: Vec<&toml::Value> = match value.as_array() {
            Some(list) => list.iter().collect(),
            None => vec![value],
        };
        for item in items {
            let (constraint, marker, skip) = match item {
                toml::Value::String(s) => (Some(s.as_str()), None, false),
                toml::Value::Table(t) => {
                    let mut marker = t
                        .get("markers")
                        .and_then(|m| m.as_str())
                        .map(str::to_string);
                    if let Some(py) = t.get("python").and_then(|p| p.as_str())
                        && let Some(m) = poetry_python_marker(py)
                    {
                        marker = Some(match marker {
                            Some(m0) => format!("({m0}) and ({m})"),
                            None => m,
                        });
                    }
                    let optional = t.get("optional").and_then(|o| o.as_bool()) == Some(true);
                    (
                        t.get("version").and_then(|v| v.as_str()),
                        marker,
                        optional || t.contains_key("path"),
                    )
                }
                _ => (None, None, true),
            };
            if skip {
                continue;
            }
            let version = constraint.and_then(poetry_exact);
            let spec = match (constraint, item.get("git").and_then(|g| g.as_str())) {
                (Some(c), _) => format!("{name} = \"{c}\""),
                (None, Some(g)) => format!("{name} @ git+{g}"),
                (None, None) => name.clone(),
            };
            out.push(Pin {
                display: name.clone(),
                version,
                spec,
                hashes: BTreeSet::new(),
                file: path.to_string(),
                line: line_of(&format!("{name} ")).max(line_of(&format!("{name}="))),
                marker,
            });
        }
    }
    Ok(())
}

/// Poetry's exact constraints: a bare version (`4.2.7`), `==4.2.7`, `=4.2.7`.
fn poetry_exact(c: &str) -> Option<String> {
    let c = c.trim();
    let bare = c
        .strip_prefix("==")
        .or_else(|| c.strip_prefix('='))
        .unwrap_or(c)
        .trim();
    if bare.contains(['*', ',', '|', '<', '>', '^', '~', '!', ' ']) {
        return None;
    }
    Version::from_str(bare).ok().map(|_| bare.to_string())
}

/// A poetry version constraint as PEP 440 specifiers: `^3.11` is
/// `>=3.11,<4`, `~3.11` is `>=3.11,<3.12`, `3.11.*`/`>=3.10,<3.13` as
/// written; `||` alternatives are not translated.
fn poetry_specifiers(c: &str) -> Option<VersionSpecifiers> {
    let parts: Vec<String> = c
        .split(',')
        .map(|part| {
            let part = part.trim();
            let caret = part.strip_prefix('^');
            let tilde = part.strip_prefix('~').filter(|r| !r.starts_with('='));
            match (caret, tilde) {
                (Some(v), _) | (_, Some(v)) => {
                    let nums: Vec<u64> = v.split('.').filter_map(|n| n.parse().ok()).collect();
                    let upper = match (caret.is_some(), nums.as_slice()) {
                        (true, [0, minor, ..]) => format!("0.{}", minor + 1),
                        (true, [major, ..]) => format!("{}", major + 1),
                        (false, [major, minor, ..]) => format!("{major}.{}", minor + 1),
                        (false, [major]) => format!("{}", major + 1),
                        _ => return String::new(),
                    };
                    format!(">={v},<{upper}")
                }
                _ => part.to_string(),
            }
        })
        .collect();
    if parts.iter().any(String::is_empty) || c.contains("||") {
        return None;
    }
    VersionSpecifiers::from_str(&parts.join(",")).ok()
}

/// Poetry's `python = "^3.10"` on a dependency, as a marker.
fn poetry_python_marker(py: &str) -> Option<String> {
    let specs = poetry_specifiers(py)?;
    let parts: Vec<String> = specs
        .iter()
        .map(|s| format!("python_version {} \"{}\"", s.operator(), s.version()))
        .collect();
    (!parts.is_empty()).then(|| parts.join(" and "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalize_as_pep_503_says() {
        assert_eq!(normalize("Django"), "django");
        assert_eq!(normalize("django_taggit"), "django-taggit");
        assert_eq!(normalize("zope.interface"), "zope-interface");
        assert_eq!(normalize("a-_.b"), "a-b");
    }

    #[test]
    fn requirement_lines() {
        let p = parse_requirement(
            "Django==4.2.7 --hash=sha256:ABC ; python_version >= '3.8'",
            "r",
            1,
        )
        .unwrap();
        assert_eq!(p.display, "Django");
        assert_eq!(p.version.as_deref(), Some("4.2.7"));
        assert!(p.hashes.contains("abc"));
        let p = parse_requirement("django-taggit[x]>=4,<6", "r", 1).unwrap();
        assert_eq!(p.version, None);
        assert_eq!(p.spec, "django-taggit[x]>=4,<6");
        let p = parse_requirement("Django==4.2.*", "r", 1).unwrap();
        assert_eq!(p.version, None);
        let p = parse_requirement("pkg @ https://x/y.whl", "r", 1).unwrap();
        assert_eq!(p.version, None);
        assert!(parse_requirement("./local", "r", 1).is_none());
        assert!(parse_requirement("https://x/y.whl", "r", 1).is_none());
        assert_eq!(strip_comment("a==1 # c"), "a==1 ");
        assert_eq!(strip_comment("a==1#c"), "a==1#c");
    }

    fn lock(text: &str, file: &str, kind: LockKind) -> Vec<Pin> {
        let mut out = Vec::new();
        read_lock(text, file, "v1", kind, &mut out).unwrap();
        out
    }

    fn fixture(name: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/pins")
            .join(name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn by_name(pins: &[Pin]) -> BTreeMap<String, (Option<String>, Option<String>)> {
        pins.iter()
            .map(|p| (normalize(&p.display), (p.version.clone(), p.marker.clone())))
            .collect()
    }

    #[test]
    fn uv_and_poetry_locks() {
        let uv = r#"
version = 1
[[package]]
name = "site"
version = "0.1.0"
source = { virtual = "." }

[[package]]
name = "Django"
version = "5.2.1"
source = { registry = "https://pypi.org/simple" }
sdist = { url = "https://x/django-5.2.1.tar.gz", hash = "sha256:AA" }
wheels = [{ url = "https://x/django-5.2.1-py3-none-any.whl", hash = "sha256:bb" }]
"#;
        let pins = lock(uv, "uv.lock", LockKind::Uv);
        assert_eq!(pins.len(), 1);
        let d = &pins[0];
        assert_eq!(d.version.as_deref(), Some("5.2.1"));
        assert_eq!(d.hashes.len(), 2);
        let poetry = r#"
[[package]]
name = "django-taggit"
version = "5.0.1"
files = [{file = "django_taggit-5.0.1-py3-none-any.whl", hash = "sha256:cc"}]
"#;
        let pins = lock(poetry, "poetry.lock", LockKind::Poetry);
        assert_eq!(pins[0].version.as_deref(), Some("5.0.1"));
        // One version from the registry and, for one machine, from a URL:
        // the files of both entries are pinned.
        let forked = r#"
version = 1
[[package]]
name = "psycopg-c"
version = "3.2.12"
source = { registry = "https://pypi.org/simple" }
sdist = { url = "https://x/psycopg_c-3.2.12.tar.gz", hash = "sha256:AA" }

[[package]]
name = "psycopg-c"
version = "3.2.12"
source = { url = "https://github.com/x/psycopg_c-3.2.12-cp312-cp312-linux_x86_64.whl" }
wheels = [{ url = "https://github.com/x/psycopg_c-3.2.12-cp312-cp312-linux_x86_64.whl", hash = "sha256:bb" }]
"#;
        let mut pins = Pins::default();
        for p in lock(forked, "uv.lock", LockKind::Uv) {
            add(&mut pins, normalize(&p.display), p);
        }
        assert!(pins.ambiguous.is_empty());
        let hashes: Vec<&str> = pins.by_name["psycopg-c"]
            .hashes
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(hashes, ["aa", "bb"]);
        // An entry without hashes adds none, whichever comes first.
        for hashless in [0, 1] {
            let mut loose = lock(forked, "uv.lock", LockKind::Uv);
            loose[hashless].hashes.clear();
            let kept: Vec<String> = loose[1 - hashless].hashes.iter().cloned().collect();
            let mut pins = Pins::default();
            for p in loose {
                add(&mut pins, normalize(&p.display), p);
            }
            let got: Vec<String> = pins.by_name["psycopg-c"].hashes.iter().cloned().collect();
            assert_eq!(got, kept);
        }
        let mut out = Vec::new();
        let err = read_lock("[[package]\n", "uv.lock", "v1", LockKind::Uv, &mut out).unwrap_err();
        assert!(err.to_string().contains("uv.lock at v1 line 1"), "{err}");
    }

    #[test]
    fn pdm_lock_default_group_with_hashes() {
        let pins = lock(&fixture("pdm.lock"), "pdm.lock", LockKind::Pdm);
        let names = by_name(&pins);
        assert_eq!(names["django"].0.as_deref(), Some("4.2.30"), "{names:?}");
        assert_eq!(names["django-taggit"].0.as_deref(), Some("5.0.1"));
        // Development-only packages are not what a deploy installs.
        assert!(!names.contains_key("pytest"), "{names:?}");
        let django = pins.iter().find(|p| p.display == "django").unwrap();
        assert!(!django.hashes.is_empty());
        assert!(
            django.hashes.iter().all(|h| h.len() == 64),
            "{:?}",
            django.hashes
        );
    }

    #[test]
    fn pipfile_lock_default_section() {
        let mut pins = Vec::new();
        read_pipfile_lock(&fixture("Pipfile.lock"), "Pipfile.lock", "v1", &mut pins).unwrap();
        let names = by_name(&pins);
        assert_eq!(names["django"].0.as_deref(), Some("4.2.30"), "{names:?}");
        assert_eq!(names["django-taggit"].0.as_deref(), Some("5.0.1"));
        assert!(
            !names.contains_key("pytest"),
            "develop is not deployed: {names:?}"
        );
        assert!(names["asgiref"].1.is_some(), "markers kept: {names:?}");
        let django = pins.iter().find(|p| p.display == "django").unwrap();
        assert_eq!(django.spec, "django==4.2.30");
        assert!(!django.hashes.is_empty());
        let err = read_pipfile_lock("{", "Pipfile.lock", "v1", &mut pins).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("Pipfile.lock at v1 line 1: not a Pipfile.lock"),
            "{err}"
        );
    }

    #[test]
    fn pyproject_pep_621_and_poetry_dependencies() {
        let mut pins = Vec::new();
        read_pyproject(
            &fixture("pyproject-pep621.toml"),
            "pyproject.toml",
            "v1",
            &mut pins,
        )
        .unwrap();
        let names = by_name(&pins);
        assert_eq!(names["django"].0.as_deref(), Some("4.2.30"), "{names:?}");
        assert_eq!(names["django-taggit"].0, None, "a range is not a pin");
        assert!(
            names["tzdata"].1.as_deref().unwrap().contains("win32"),
            "{names:?}"
        );
        let taggit = pins.iter().find(|p| p.display == "django-taggit").unwrap();
        assert_eq!(taggit.spec, "django-taggit>=5,<6");
        assert!(taggit.line > 0);

        let mut pins = Vec::new();
        read_pyproject(
            &fixture("pyproject-poetry.toml"),
            "pyproject.toml",
            "v1",
            &mut pins,
        )
        .unwrap();
        let names = by_name(&pins);
        assert!(!names.contains_key("python"));
        assert_eq!(names["django"].0.as_deref(), Some("4.2.30"), "{names:?}");
        assert_eq!(
            names["django-auditlog"].0.as_deref(),
            Some("2.3.0"),
            "== is exact too"
        );
        assert_eq!(names["django-taggit"].0, None, "^5.0 is a range");
        assert!(!names.contains_key("pytest"), "dev group: {names:?}");
        assert!(
            !names.contains_key("mysite-utils"),
            "a path is the project's own"
        );
        let taggit = pins.iter().find(|p| p.display == "django-taggit").unwrap();
        assert_eq!(taggit.spec, "django-taggit = \"^5.0\"");
        assert_eq!(taggit.line, 11);
    }

    #[test]
    fn poetry_constraints() {
        assert_eq!(poetry_exact("4.2.7").as_deref(), Some("4.2.7"));
        assert_eq!(poetry_exact("==4.2.7").as_deref(), Some("4.2.7"));
        for c in ["^4.2", "~4.2", ">=4", "*", "4.2.*", ">=4,<5"] {
            assert_eq!(poetry_exact(c), None, "{c}");
        }
        assert_eq!(exact_version("==4.2.30").as_deref(), Some("4.2.30"));
        assert_eq!(exact_version("==4.2.*"), None);
        assert_eq!(exact_version(">=4"), None);
        let spec = |c: &str| poetry_specifiers(c).map(|s| s.to_string());
        assert_eq!(spec("^3.11").as_deref(), Some(">=3.11, <4"));
        assert_eq!(spec("~3.11").as_deref(), Some(">=3.11, <3.12"));
        assert_eq!(spec("^0.2").as_deref(), Some(">=0.2, <0.3"));
        assert_eq!(spec(">=3.10,<3.13").as_deref(), Some(">=3.10, <3.13"));
        assert_eq!(spec("^3.8 || ^4.0"), None);
        assert_eq!(
            poetry_python_marker("^3.11").as_deref(),
            Some("python_version >= \"3.11\" and python_version < \"4\"")
        );
        let py = python_of("pyproject.toml", &fixture("pyproject-poetry.toml"));
        assert_eq!(py.map(|s| s.to_string()).as_deref(), Some(">=3.11, <4"));
        let lock = "[metadata]\nlock-version = \"2.0\"\npython-versions = \"^3.11\"\n";
        assert_eq!(
            python_of("poetry.lock", lock)
                .map(|s| s.to_string())
                .as_deref(),
            Some(">=3.11, <4")
        );
    }

    #[test]
    fn markers_are_decided_for_a_linux_deploy() {
        let pin = parse_requirement("x==1", "r", 1).unwrap();
        let any = Deploy::allowed_by(None).envs;
        let decide = |m: &str| markers(m, &pin, "v1", &any).unwrap();
        assert_eq!(decide("sys_platform == 'win32'"), Installed::Never);
        assert_eq!(decide("sys_platform == 'linux'"), Installed::Always);
        assert_eq!(decide("platform_system != 'Windows'"), Installed::Always);
        assert_eq!(decide("python_version >= '3.8'"), Installed::Always);
        assert_eq!(decide("python_version < '3.12'"), Installed::Sometimes);
        assert_eq!(
            decide("platform_machine == 'aarch64'"),
            Installed::Sometimes
        );
        assert_eq!(decide("extra == 'dev'"), Installed::Never);
        assert!(markers("python_version <", &pin, "v1", &any).is_err());
        // A lockfile made for one Python decides its own markers.
        let py = python_of("Pipfile.lock", &fixture("Pipfile.lock")).unwrap();
        assert_eq!(py.to_string(), "==3.13.*");
        let for_313 = Deploy::allowed_by(Some(&py)).envs;
        let at = |m: &str| markers(m, &pin, "v1", &for_313).unwrap();
        assert_eq!(at("python_version >= '3.11'"), Installed::Always);
        assert_eq!(at("python_version < '3.11'"), Installed::Never);
        // So does the image's Python stated in .tagback.yml (uv.lock's forks
        // on `python_full_version`, paperless-ngx's numpy).
        let stated = stated_python("3.12").unwrap().envs;
        let on = |m: &str| markers(m, &pin, "v1", &stated).unwrap();
        assert_eq!(on("python_full_version < '3.11'"), Installed::Never);
        assert_eq!(on("python_full_version >= '3.11'"), Installed::Always);
        assert_eq!(on("python_full_version >= '3.12.4'"), Installed::Sometimes);
        let exact = stated_python("3.12.7").unwrap().envs;
        assert_eq!(
            markers("python_full_version >= '3.12.4'", &pin, "v1", &exact).unwrap(),
            Installed::Always
        );
        for bad in ["3", "three", "3.x", "2.7", "3.12.", "", "3.12.7.1"] {
            let e = stated_python(bad).map(|_| ()).unwrap_err().to_string();
            assert!(e.contains("is not a Python version"), "{bad}: {e}");
        }
        let py = python_of("pdm.lock", &fixture("pdm.lock")).unwrap();
        assert_eq!(py.to_string(), ">=3.10");
        let p = parse_requirement(
            "tzdata==2024.1 ; sys_platform == \"win32\" --hash=sha256:ab",
            "r",
            3,
        )
        .unwrap();
        assert_eq!(p.marker.as_deref(), Some("sys_platform == \"win32\""));
        assert_eq!(p.version.as_deref(), Some("2024.1"));
    }
}
