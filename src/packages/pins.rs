//! What a revision installs: the exact versions its pins name, read from
//! git blobs. `requirements*.txt` (with `-r`/`-c` includes, `--hash`,
//! comments, line continuations, environment markers; pip-tools output is
//! this format), `uv.lock` and `poetry.lock`.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};
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
}

/// File names tried, in order, when `.tagback.yml` names none: lockfiles
/// first (every version exact), then the usual requirements files.
pub const CANDIDATES: &[&str] = &[
    "uv.lock",
    "poetry.lock",
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
pub fn read(
    repo: &Repo,
    snap: &Snapshot,
    configured: Option<&str>,
    project_root: &str,
) -> Result<Pins> {
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
    let file_name = path.rsplit('/').next().unwrap_or(&path);
    match file_name {
        "uv.lock" => read_lock(&text, &path, &snap.label, LockKind::Uv, &mut pins)?,
        "poetry.lock" => read_lock(&text, &path, &snap.label, LockKind::Poetry, &mut pins)?,
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
                constraints, lines, ..
            } = reader;
            for mut pin in lines {
                let name = normalize(&pin.display);
                if pin.version.is_none()
                    && let Some(c) = constraints.get(&name)
                {
                    pin.version.clone_from(&c.version);
                    pin.hashes.extend(c.hashes.iter().cloned());
                }
                add(&mut pins, name, pin);
            }
        }
    }
    Ok(pins)
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
        Some(_) => {}
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
    let req = words.join(" ");
    let req = req.split(';').next().unwrap_or_default().trim();
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
    })
}

#[derive(Clone, Copy)]
enum LockKind {
    Uv,
    Poetry,
}

/// `uv.lock` and `poetry.lock`: `[[package]]` tables with `name` and
/// `version`; the project itself (uv's `virtual`/`editable` sources) is
/// not an installed package.
fn read_lock(text: &str, path: &str, rev: &str, kind: LockKind, pins: &mut Pins) -> Result<()> {
    let doc: toml::Table = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let at = line.map(|l| format!(" line {l}")).unwrap_or_default();
        Error::input(format!(
            "{path} at {rev}{at}: not a TOML lockfile: {}",
            e.message()
        ))
    })?;
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
        add(
            pins,
            normalize(name),
            Pin {
                display: name.to_string(),
                version: Some(version.to_string()),
                spec: format!("{name}=={version}"),
                hashes,
                file: path.to_string(),
                line: 0,
            },
        );
    }
    Ok(())
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
        let mut pins = Pins::default();
        read_lock(uv, "uv.lock", "v1", LockKind::Uv, &mut pins).unwrap();
        assert_eq!(pins.by_name.len(), 1);
        let d = &pins.by_name["django"];
        assert_eq!(d.version.as_deref(), Some("5.2.1"));
        assert_eq!(d.hashes.len(), 2);
        let poetry = r#"
[[package]]
name = "django-taggit"
version = "5.0.1"
files = [{file = "django_taggit-5.0.1-py3-none-any.whl", hash = "sha256:cc"}]
"#;
        let mut pins = Pins::default();
        read_lock(poetry, "poetry.lock", "v1", LockKind::Poetry, &mut pins).unwrap();
        assert_eq!(
            pins.by_name["django-taggit"].version.as_deref(),
            Some("5.0.1")
        );
        let err = read_lock("[[package]\n", "uv.lock", "v1", LockKind::Uv, &mut pins).unwrap_err();
        assert!(err.to_string().contains("uv.lock at v1 line 1"), "{err}");
    }
}
