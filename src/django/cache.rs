//! A parse cache on disk, inside the repository's git directory: the parsed
//! migrations of one app's migrations directory, keyed by the directory's tree
//! id (identical contents, identical parse). Best effort: a missing, stale or
//! unreadable entry is parsed again; entries are written atomically.

use std::collections::BTreeMap;
use std::path::PathBuf;

use git2::Oid;
use serde::{Deserialize, Serialize};

use super::migration::Migration;
use crate::fs::{self, Mode};

/// Bumped whenever the parsed model changes shape or meaning.
const VERSION: &str = "v3";

/// One parsed file of a cached directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// Migration name (file stem).
    pub name: String,
    /// Blob id of the file.
    pub blob: String,
    /// What the file says.
    pub migration: Migration,
}

/// The cache directory (`None`: caching off).
#[derive(Debug, Clone)]
pub struct DiskCache {
    dir: Option<PathBuf>,
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
        }
    }

    fn path(&self, label: &str, tree: Oid) -> Option<PathBuf> {
        let label: String = label
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        Some(self.dir.as_ref()?.join(format!("{label}-{tree}.json")))
    }

    /// The cached parse of an app's migrations directory.
    pub fn get(&self, label: &str, tree: Oid) -> Option<Vec<Entry>> {
        let bytes = std::fs::read(self.path(label, tree)?).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Store a parse; errors are ignored (the cache is an optimisation).
    pub fn put(&self, label: &str, tree: Oid, entries: &[Entry]) {
        let Some(path) = self.path(label, tree) else {
            return;
        };
        if let Ok(bytes) = serde_json::to_vec(entries) {
            let _ = fs::write_atomic(&path, &bytes, Mode::Replace);
        }
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
            let f: Vec<&str> = line.split('\t').collect();
            match f.as_slice() {
                ["a", root, entry, oid, label, name] => {
                    if let Ok(oid) = Oid::from_str(oid) {
                        memo.apps.insert(
                            (root.to_string(), entry.to_string(), oid),
                            (label.to_string(), name.to_string(), false),
                        );
                    }
                }
                ["d", dir, oid, e] => {
                    if let Ok(oid) = Oid::from_str(oid) {
                        memo.dirs.insert((dir.to_string(), oid), (*e == "1", false));
                    }
                }
                _ => {}
            }
        }
        memo
    }
}

impl DiskCache {
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
            let _ = fs::write_atomic(&path, memo.to_lines().as_bytes(), Mode::Replace);
        }
    }
}
