//! A parse cache on disk, inside the repository's git directory: the parsed
//! migrations of one app's migrations directory, keyed by the directory's tree
//! id (identical contents, identical parse). Best effort: a missing, stale or
//! unreadable entry is parsed again; entries are written atomically.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use super::migration::{CustomOp, Dependency, DynamicPart, Migration, Operation, Reversibility};
use crate::fs::{self, Mode};
use crate::git::OidKey;
use git2::Oid;

/// Bumped whenever the parsed model or the file format changes.
const VERSION: &str = "v4";

/// First line of a cached directory.
const HEADER: &str = "tagback migrations v4";

/// One parsed file of a cached directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Migration name (file stem).
    pub name: String,
    /// Blob id of the file.
    pub blob: Oid,
    /// What the file says (without operations).
    pub migration: Arc<Migration>,
}

/// The cache directory (`None`: caching off).
#[derive(Debug, Clone)]
pub struct DiskCache {
    dir: Option<PathBuf>,
    pruned: std::cell::Cell<bool>,
}

impl DiskCache {
    /// The cache of the repository whose git directory is `git_dir`;
    /// `TAGBACK_NO_CACHE=1` turns it off.
    pub fn new(git_dir: &std::path::Path) -> Self {
        let off = std::env::var("TAGBACK_NO_CACHE").is_ok_and(|v| !v.is_empty() && v != "0");
        // The tagback version is part of the path: a new release never reads
        // what an older one parsed.
        let version = format!("{VERSION}-{}", env!("CARGO_PKG_VERSION"));
        DiskCache {
            dir: (!off).then(|| git_dir.join("tagback").join("cache").join(version)),
            pruned: std::cell::Cell::new(false),
        }
    }

    fn path(&self, label: &str, tree: Oid) -> Option<PathBuf> {
        let label: String = label
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        Some(self.dir.as_ref()?.join(format!("{label}-{tree}")))
    }

    /// The cached parse of an app's migrations directory.
    pub fn get(&self, label: &str, tree: Oid) -> Option<CachedDir> {
        let text = std::fs::read_to_string(self.path(label, tree)?).ok()?;
        let dir = CachedDir { text };
        dir.is_valid().then_some(dir)
    }

    /// Store a parse; errors are ignored (the cache is an optimisation).
    pub fn put(&self, label: &str, tree: Oid, entries: &[Entry]) {
        let (Some(path), Some(text)) = (self.path(label, tree), encode(entries)) else {
            return;
        };
        let _ = fs::write_atomic(&path, text.as_bytes(), Mode::ReplaceCache);
        self.prune();
    }
}

impl DiskCache {
    fn operations_path(&self, label: &str, blob: Oid) -> Option<PathBuf> {
        let mut p = self.path(label, blob)?;
        p.set_extension("ops");
        Some(p)
    }

    /// The operations of a migration blob, as parsed by an earlier run.
    pub fn get_operations(&self, label: &str, blob: Oid) -> Option<Vec<Operation>> {
        let text = std::fs::read_to_string(self.operations_path(label, blob)?).ok()?;
        decode_operations(&text)
    }

    /// Store the operations of a migration blob (best effort).
    pub fn put_operations(&self, label: &str, blob: Oid, operations: &[Operation]) {
        if let (Some(path), Some(text)) = (
            self.operations_path(label, blob),
            encode_operations(operations),
        ) {
            let _ = fs::write_atomic(&path, text.as_bytes(), Mode::ReplaceCache);
            self.prune();
        }
    }

    /// Keep the cache bounded: past [`FILES_KEPT`] files, the least recently
    /// written half goes (they are parsed again if ever needed). Runs only
    /// after a write, which a warm run does not do.
    fn prune(&self) {
        // Once per run: listing a full cache directory costs milliseconds.
        if !self.pruned.replace(true) {
            self.prune_to(FILES_KEPT);
        }
    }

    fn prune_to(&self, kept: usize) {
        let Some(dir) = &self.dir else {
            return;
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
            .filter_map(|e| {
                let e = e.ok()?;
                let meta = e.metadata().ok()?;
                // Per-directory and per-blob files (`LABEL-ID`), not the
                // run-wide ones (projects, probes, apps.tsv).
                let name = e.file_name();
                if !meta.is_file() || !name.to_string_lossy().contains('-') {
                    return None;
                }
                Some((meta.modified().ok()?, e.path()))
            })
            .collect();
        if files.len() <= kept {
            return;
        }
        files.sort();
        let drop = files.len() - kept / 2;
        for (_, path) in files.into_iter().take(drop) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// How many files the parse cache keeps before pruning (a few hundred bytes
/// to a few tens of kilobytes each).
const FILES_KEPT: usize = 4096;

// Operations: one line each, tab-separated: kind, line, reversibility
// (`r`, `i`, `u`), reason, data loss, custom class, custom module; optional
// fields are `-` or `=value`.
const OPERATIONS_HEADER: &str = "tagback operations v1";

fn encode_operations(operations: &[Operation]) -> Option<String> {
    let opt = |v: Option<&str>| v.map_or_else(|| "-".to_string(), |s| format!("={s}"));
    let mut out = String::from(OPERATIONS_HEADER);
    out.push('\n');
    for op in operations {
        let fields = [
            op.kind.clone(),
            op.line.to_string(),
            match op.reversibility {
                Reversibility::Reversible => "r",
                Reversibility::Irreversible => "i",
                Reversibility::Unknown => "u",
            }
            .to_string(),
            opt(op.reason.as_deref()),
            opt(op.data_loss.as_deref()),
            opt(op.custom.as_ref().map(|c| c.class.as_str())),
            opt(op.custom.as_ref().and_then(|c| c.module.as_deref())),
        ];
        if fields.iter().any(|f| f.contains(['\t', '\n', '\r'])) {
            return None;
        }
        out.push_str(&fields.join("\t"));
        out.push('\n');
    }
    Some(out)
}

fn decode_operations(text: &str) -> Option<Vec<Operation>> {
    let mut lines = text.lines();
    if lines.next()? != OPERATIONS_HEADER {
        return None;
    }
    let opt = |s: &str| -> Option<Option<String>> {
        match s.strip_prefix('=') {
            Some(v) => Some(Some(v.to_string())),
            None if s == "-" => Some(None),
            None => None,
        }
    };
    lines
        .map(|line| {
            let mut f = fields_of(line, b'\t');
            let mut next = || f.next();
            let (kind, number, reversibility, reason, data_loss, class, module) = (
                next()?,
                next()?,
                next()?,
                next()?,
                next()?,
                next()?,
                next()?,
            );
            if f.next().is_some() {
                return None;
            }
            Some(Operation {
                kind: kind.to_string(),
                line: number.parse().ok()?,
                reversibility: match reversibility {
                    "r" => Reversibility::Reversible,
                    "i" => Reversibility::Irreversible,
                    "u" => Reversibility::Unknown,
                    _ => return None,
                },
                reason: opt(reason)?,
                data_loss: opt(data_loss)?,
                custom: match (opt(class)?, opt(module)?) {
                    (Some(class), module) => Some(CustomOp { module, class }),
                    (None, None) => None,
                    (None, Some(_)) => return None,
                },
            })
        })
        .collect()
}

// One line per migration, tab-separated: name, blob, initial (`-`, `0`, `1`),
// dependencies, replaces, run_before, dynamic parts. List items are separated
// by US (0x1f), the two halves of a pair by RS (0x1e); a dependency starts
// with `k` (a key) or `s` (a swappable setting). A directory whose strings
// contain a separator is not cached. Reading it back is a split, not a parse
// (decoding JSON took a fifth of a warm plan).
const ITEM: char = '\u{1f}';
const PAIR: char = '\u{1e}';
const _: () = assert!(ITEM.is_ascii() && PAIR.is_ascii());

fn encode(entries: &[Entry]) -> Option<String> {
    use std::fmt::Write;
    let mut out = String::with_capacity(entries.len() * 96);
    out.push_str(HEADER);
    out.push('\n');
    let mut strings: Vec<&str> = Vec::new();
    let list = |out: &mut String, i: usize| {
        if i > 0 {
            out.push(ITEM);
        }
    };
    for e in entries {
        let m = &e.migration;
        strings.push(&e.name);
        let initial = match m.initial {
            None => '-',
            Some(false) => '0',
            Some(true) => '1',
        };
        let _ = write!(out, "{}\t{}\t{initial}\t", e.name, e.blob);
        for (i, d) in m.dependencies.iter().enumerate() {
            list(&mut out, i);
            match d {
                Dependency::Key(a, n) => {
                    let _ = write!(out, "k{a}{PAIR}{n}");
                    strings.extend([a.as_str(), n.as_str()]);
                }
                Dependency::Swappable(setting) => {
                    let _ = write!(out, "s{setting}");
                    strings.push(setting);
                }
            }
        }
        for pairs in [&m.replaces, &m.run_before] {
            out.push('\t');
            for (i, (a, n)) in pairs.iter().enumerate() {
                list(&mut out, i);
                let _ = write!(out, "{a}{PAIR}{n}");
                strings.extend([a.as_str(), n.as_str()]);
            }
        }
        out.push('\t');
        for (i, d) in m.dynamic.iter().enumerate() {
            list(&mut out, i);
            let _ = write!(out, "{}{PAIR}{}", d.line, d.what);
            strings.push(&d.what);
        }
        out.push('\n');
    }
    let clean = strings
        .iter()
        .all(|s| !s.contains(['\t', '\n', '\r', ITEM, PAIR]));
    clean.then_some(out)
}

/// A cached directory as read from disk, decoded line by line on demand.
pub struct CachedDir {
    text: String,
}

/// One line of a [`CachedDir`]: the migration's name and blob id, and the
/// rest of the line, decoded only when needed.
pub struct CachedLine<'a> {
    /// The whole line (equal lines describe equal files).
    pub raw: &'a str,
    /// Migration name (file stem).
    pub name: &'a str,
    blob: &'a str,
    rest: &'a str,
}

impl CachedDir {
    /// The entries, or `None` at the first malformed line.
    pub fn lines(&self) -> impl Iterator<Item = Option<CachedLine<'_>>> {
        let mut lines = self.text.split_terminator('\n');
        let valid = lines.next() == Some(HEADER);
        lines.map(move |raw| {
            if !valid {
                return None;
            }
            let (name, rest) = cut(raw, b'\t')?;
            let (blob, rest) = cut(rest, b'\t')?;
            Some(CachedLine {
                raw,
                name,
                blob,
                rest,
            })
        })
    }

    /// The byte range of one of this directory's lines.
    pub fn range_of(&self, raw: &str) -> std::ops::Range<usize> {
        let start = raw.as_ptr() as usize - self.text.as_ptr() as usize;
        start..start + raw.len()
    }

    /// The text in a range given by [`CachedDir::range_of`].
    pub fn at(&self, range: std::ops::Range<usize>) -> &str {
        self.text.get(range).unwrap_or_default()
    }

    /// Whether the file starts as a cached directory does.
    pub fn is_valid(&self) -> bool {
        self.text.split_terminator('\n').next() == Some(HEADER)
    }
}

impl CachedLine<'_> {
    /// The blob id of the file.
    pub fn blob(&self) -> Option<Oid> {
        oid_from_hex(self.blob)
    }

    /// The migration (without operations) the line describes.
    pub fn migration(&self) -> Option<Migration> {
        let [initial, deps, replaces, run_before, dynamic] = fields(self.rest)?;
        let pair = |s: &str| -> Option<(String, String)> {
            let (a, n) = cut(s, PAIR as u8)?;
            Some((a.to_string(), n.to_string()))
        };
        let initial = match initial {
            "-" => None,
            "0" => Some(false),
            "1" => Some(true),
            _ => return None,
        };
        let mut dependencies = Vec::with_capacity(count_items(deps));
        for d in items(deps) {
            dependencies.push(match d.split_at_checked(1)? {
                ("k", rest) => {
                    let (a, n) = pair(rest)?;
                    Dependency::Key(a, n)
                }
                ("s", rest) => Dependency::Swappable(rest.to_string()),
                _ => return None,
            });
        }
        let replaces = items(replaces).map(pair).collect::<Option<_>>()?;
        let run_before = items(run_before).map(pair).collect::<Option<_>>()?;
        let dynamic = items(dynamic)
            .map(|d| {
                let (line, what) = cut(d, PAIR as u8)?;
                Some(DynamicPart {
                    line: line.parse().ok()?,
                    what: what.to_string(),
                })
            })
            .collect::<Option<_>>()?;
        Some(Migration {
            dependencies,
            replaces,
            run_before,
            initial,
            operations: Vec::new(),
            dynamic,
        })
    }
}

/// The five tab-separated fields after the name and blob of an entry line.
fn fields(rest: &str) -> Option<[&str; 5]> {
    let mut out = [""; 5];
    let mut n = 0;
    let mut start = 0;
    // Tabs are ASCII, so every split point is a character boundary.
    for (i, b) in rest.bytes().enumerate() {
        if b == b'\t' {
            *out.get_mut(n)? = &rest[start..i];
            n += 1;
            start = i + 1;
        }
    }
    *out.get_mut(n)? = &rest[start..];
    (n == 4).then_some(out)
}

/// `s` split at the first `sep`, an ASCII byte (for the short fields of the
/// cache files this beats `str::split_once`).
pub(crate) fn cut(s: &str, sep: u8) -> Option<(&str, &str)> {
    let i = s.bytes().position(|b| b == sep)?;
    // `sep` is ASCII: both halves are valid UTF-8.
    Some((&s[..i], &s[i + 1..]))
}

/// The fields of `s` separated by `sep`, an ASCII byte.
pub(crate) fn fields_of(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        match cut(r, sep) {
            Some((field, tail)) => {
                rest = Some(tail);
                Some(field)
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// How many items a list field has.
fn count_items(s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        1 + s.bytes().filter(|b| *b == ITEM as u8).count()
    }
}

/// The items of a list field (none when empty).
fn items(s: &str) -> impl Iterator<Item = &str> {
    fields_of(s, ITEM as u8).filter(|_| !s.is_empty())
}

/// A 40-digit lowercase hex object id (without a round trip through libgit2).
pub(crate) fn oid_from_hex(hex: &str) -> Option<Oid> {
    let hex = hex.as_bytes();
    if hex.len() != 40 {
        return None;
    }
    let digit = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    };
    let mut raw = [0u8; 20];
    for (i, b) in raw.iter_mut().enumerate() {
        *b = (digit(hex[2 * i])? << 4) | digit(hex[2 * i + 1])?;
    }
    Oid::from_bytes(&raw).ok()
}

/// How many probes the cache keeps.
const PROBES_LIMIT: usize = 20_000;

const PROBES_HEADER: &str = "tagback probes v1";

/// Migrations known to exist, by the tree id of their directory: the answer
/// to "does `app.name` exist" for dependencies into apps that did not change
/// (whose directories are otherwise never read).
#[derive(Debug, Default)]
pub struct Probes {
    known: BTreeSet<(OidKey, String)>,
    added: Vec<(Oid, String)>,
}

impl Probes {
    /// Whether `name` (a migration name) is known to exist in the tree.
    pub fn knows(&self, tree: Oid, name: &str) -> bool {
        self.known.contains(&(OidKey::of(tree), name.to_string()))
    }

    /// Record that `name` exists in the tree.
    pub fn add(&mut self, tree: Oid, name: &str) {
        if !name.contains(['\t', '\n', '\r'])
            && self.known.insert((OidKey::of(tree), name.to_string()))
        {
            self.added.push((tree, name.to_string()));
        }
    }
}

impl DiskCache {
    /// The probes of earlier runs.
    pub fn probes(&self) -> Probes {
        let mut probes = Probes::default();
        let Some(text) = self.read("probes") else {
            return probes;
        };
        let mut lines = text.lines();
        if lines.next() != Some(PROBES_HEADER) {
            return probes;
        }
        for line in lines {
            if let Some((tree, name)) = cut(line, b'\t')
                && let Some(tree) = oid_from_hex(tree)
            {
                probes.known.insert((OidKey::of(tree), name.to_string()));
            }
        }
        probes
    }

    /// Store the probes when this run added any (best effort). Past the
    /// limit, only this run's are kept.
    pub fn put_probes(&self, probes: &Probes) {
        if probes.added.is_empty() {
            return;
        }
        let mut text = String::from(PROBES_HEADER);
        text.push('\n');
        let mut write = |tree: &dyn std::fmt::Display, name: &str| {
            text.push_str(&format!("{tree}\t{name}\n"));
        };
        if probes.known.len() > PROBES_LIMIT {
            for (tree, name) in &probes.added {
                write(tree, name);
            }
        } else {
            for (tree, name) in &probes.known {
                write(&tree.to_hex(), name);
            }
        }
        self.write("probes", &text);
    }
}

/// How many app and directory resolutions the cache keeps (the ones used by
/// the latest run first).
const APP_MEMO_LIMIT: usize = 50_000;

/// `INSTALLED_APPS` entries resolved to `(label, name)` by `(project root,
/// entry, tree id of the entry's top-level package)`, and whether migrations
/// directories exist by `(directory, tree id of its top-level package)`.
/// Each record remembers whether this run used it: when the cache grows past
/// its limit, only those are kept.
#[derive(Debug, Default)]
pub struct AppMemo {
    apps: BTreeMap<(String, String, Oid), (String, String, bool)>,
    dirs: BTreeMap<(String, Oid), (bool, bool)>,
    changed: bool,
}

impl AppMemo {
    /// The `(label, name)` of a resolved entry.
    pub fn app(&mut self, key: &(String, String, Oid)) -> Option<(String, String)> {
        let (label, name, used) = self.apps.get_mut(key)?;
        *used = true;
        Some((label.clone(), name.clone()))
    }

    /// Whether a migrations directory exists, if known.
    pub fn dir(&mut self, key: &(String, Oid)) -> Option<bool> {
        let (exists, used) = self.dirs.get_mut(key)?;
        *used = true;
        Some(*exists)
    }

    /// Record a resolved entry.
    pub fn add_app(&mut self, key: (String, String, Oid), (label, name): (String, String)) {
        self.apps.insert(key, (label, name, true));
        self.changed = true;
    }

    /// Record whether a migrations directory exists.
    pub fn add_dir(&mut self, key: (String, Oid), exists: bool) {
        self.dirs.insert(key, (exists, true));
        self.changed = true;
    }

    /// One line per record: `a TAB root TAB entry TAB tree TAB label TAB name`
    /// or `d TAB dir TAB tree TAB 0|1`. Fields with tabs or newlines are not kept.
    fn to_lines(&self) -> String {
        let only_used = self.apps.len() + self.dirs.len() > APP_MEMO_LIMIT;
        let clean = |f: &[&str]| f.iter().all(|x| !x.contains(['\t', '\n', '\r']));
        let mut out = String::new();
        for ((root, entry, oid), (label, name, used)) in &self.apps {
            if (*used || !only_used) && clean(&[root, entry, label, name]) {
                out.push_str(&format!("a\t{root}\t{entry}\t{oid}\t{label}\t{name}\n"));
            }
        }
        for ((dir, oid), (exists, used)) in &self.dirs {
            if (*used || !only_used) && clean(&[dir]) {
                out.push_str(&format!("d\t{dir}\t{oid}\t{}\n", u8::from(*exists)));
            }
        }
        out
    }

    fn from_lines(text: &str) -> AppMemo {
        let mut memo = AppMemo::default();
        for line in text.lines() {
            let mut f = fields_of(line, b'\t');
            match (
                f.next(),
                f.next(),
                f.next(),
                f.next(),
                f.next(),
                f.next(),
                f.next(),
            ) {
                (Some("a"), Some(root), Some(entry), Some(oid), Some(label), Some(name), None) => {
                    if let Some(oid) = oid_from_hex(oid) {
                        memo.apps.insert(
                            (root.to_string(), entry.to_string(), oid),
                            (label.to_string(), name.to_string(), false),
                        );
                    }
                }
                (Some("d"), Some(dir), Some(oid), Some(e @ ("0" | "1")), None, None, None) => {
                    if let Some(oid) = oid_from_hex(oid) {
                        memo.dirs.insert((dir.to_string(), oid), (e == "1", false));
                    }
                }
                _ => {}
            }
        }
        memo
    }
}

impl DiskCache {
    /// A file of the cache directory, if it exists.
    pub fn read(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.as_ref()?.join(name)).ok()
    }

    /// Replace a file of the cache directory (best effort).
    pub fn write(&self, name: &str, text: &str) {
        if let Some(dir) = &self.dir {
            let _ = fs::write_atomic(&dir.join(name), text.as_bytes(), Mode::ReplaceCache);
        }
    }

    fn memo_path(&self) -> Option<PathBuf> {
        Some(self.dir.as_ref()?.join("apps.tsv"))
    }

    /// The app resolutions of earlier runs (empty when none or caching is off).
    pub fn app_memo(&self) -> AppMemo {
        self.memo_path()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|t| AppMemo::from_lines(&t))
            .unwrap_or_default()
    }

    /// Store the app resolutions when this run added any (best effort).
    pub fn put_app_memo(&self, memo: &AppMemo) {
        if !memo.changed {
            return;
        }
        if let Some(path) = self.memo_path() {
            let _ = fs::write_atomic(&path, memo.to_lines().as_bytes(), Mode::ReplaceCache);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, migration: Migration) -> Entry {
        Entry {
            name: name.to_string(),
            blob: Oid::from_str("0123456789abcdef0123456789abcdef01234567").unwrap(),
            migration: Arc::new(migration),
        }
    }

    fn decode(text: &str) -> Option<Vec<Entry>> {
        let dir = CachedDir {
            text: text.to_string(),
        };
        if !dir.is_valid() {
            return None;
        }
        dir.lines()
            .map(|l| {
                let l = l?;
                Some(Entry {
                    name: l.name.to_string(),
                    blob: l.blob()?,
                    migration: Arc::new(l.migration()?),
                })
            })
            .collect()
    }

    fn bare() -> Migration {
        Migration {
            dependencies: Vec::new(),
            replaces: Vec::new(),
            run_before: Vec::new(),
            initial: None,
            operations: Vec::new(),
            dynamic: Vec::new(),
        }
    }

    #[test]
    fn directories_round_trip() {
        let full = Migration {
            dependencies: vec![
                Dependency::Key("shop".into(), "0001_initial".into()),
                Dependency::Key("auth".into(), "__first__".into()),
                Dependency::Swappable("AUTH_USER_MODEL".into()),
            ],
            replaces: vec![
                ("shop".into(), "0002_a".into()),
                ("shop".into(), "0003_b".into()),
            ],
            run_before: vec![("other".into(), "0001_initial".into())],
            initial: Some(true),
            operations: Vec::new(),
            dynamic: vec![DynamicPart {
                line: 7,
                what: "dependencies computed at run time".into(),
            }],
        };
        let mut not_initial = bare();
        not_initial.initial = Some(false);
        let entries = vec![
            entry("0001_x", full),
            entry("0002_y", bare()),
            entry("0003_z", not_initial),
        ];
        let text = encode(&entries).unwrap();
        assert_eq!(decode(&text).unwrap(), entries);
        assert_eq!(decode(&format!("{HEADER}\n")).unwrap(), Vec::new());
    }

    #[test]
    fn pruning_keeps_the_newest_half_and_the_run_wide_files() {
        let git_dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::new(git_dir.path());
        let dir = cache.dir.clone().unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        cache.write("projects", "kept");
        for i in 0..10u32 {
            let p = dir.join(format!("shop-{i:040}"));
            std::fs::write(&p, "x").unwrap();
            let t = std::time::SystemTime::UNIX_EPOCH
                + std::time::Duration::from_secs(1_000 + u64::from(i));
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        cache.prune_to(8);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let newest: Vec<String> = (6..10u32).map(|i| format!("shop-{i:040}")).collect();
        assert_eq!(left, [vec!["projects".to_string()], newest].concat());
        cache.prune_to(8);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 5);
    }

    #[test]
    fn operations_round_trip() {
        let ops = vec![
            Operation {
                kind: "RunPython".into(),
                line: 12,
                reversibility: Reversibility::Irreversible,
                reason: Some("RunPython without reverse_code".into()),
                data_loss: None,
                custom: None,
            },
            Operation {
                kind: "RemoveField".into(),
                line: 20,
                reversibility: Reversibility::Reversible,
                reason: None,
                data_loss: Some("drops column shop_order.note".into()),
                custom: None,
            },
            Operation {
                kind: "Backfill".into(),
                line: 31,
                reversibility: Reversibility::Unknown,
                reason: Some("custom operation".into()),
                data_loss: None,
                custom: Some(CustomOp {
                    module: Some("shop.ops".into()),
                    class: "Backfill".into(),
                }),
            },
        ];
        let text = encode_operations(&ops).unwrap();
        assert_eq!(decode_operations(&text).unwrap(), ops);
        let mut odd = ops[0].clone();
        odd.reason = Some("a\nb".into());
        assert_eq!(encode_operations(&[odd]), None);
        assert_eq!(decode_operations("garbage\n"), None);
        assert_eq!(
            decode_operations(&format!("{OPERATIONS_HEADER}\nX\t1\t?\t-\t-\t-\t-\n")),
            None
        );
    }

    #[test]
    fn separators_in_strings_are_not_cached_and_garbage_is_a_miss() {
        let mut odd = bare();
        odd.dependencies
            .push(Dependency::Key("shop".into(), "a\tb".into()));
        assert_eq!(encode(&[entry("0001_x", odd)]), None);
        let mut odd = bare();
        odd.replaces.push(("shop".into(), "a\u{1e}b".into()));
        assert_eq!(encode(&[entry("0001_x", odd)]), None);
        assert_eq!(decode("not a cache\n"), None);
        let blob = "0123456789abcdef0123456789abcdef01234567";
        assert!(decode(&format!("{HEADER}\n0001\t{blob}\t-\t\t\t\t\n")).is_some());
        assert_eq!(decode(&format!("{HEADER}\n0001\tzz\t-\t\t\t\t\n")), None);
        assert_eq!(
            decode(&format!("{HEADER}\n0001\t{blob}\t?\t\t\t\t\n")),
            None
        );
        assert_eq!(
            decode(&format!("{HEADER}\n0001\t{blob}\t-\tx\t\t\t\n")),
            None
        );
        assert_eq!(decode(&format!("{HEADER}\n0001\t{blob}\n")), None);
        assert_eq!(oid_from_hex(&blob.to_uppercase()), None);
    }
}
