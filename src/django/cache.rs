//! A parse cache on disk, inside the repository's git directory: the parsed
//! migrations of one app's migrations directory, keyed by the directory's tree
//! id (identical contents, identical parse). Best effort: a missing, stale or
//! unreadable entry is parsed again; entries are written atomically.

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
