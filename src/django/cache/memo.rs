//! Small run-wide memos kept in the cache directory: app resolutions by tree
//! id (`apps.tsv`) and migrations known to exist in unchanged apps (`probes`).

use std::collections::{BTreeMap, BTreeSet};

use git2::Oid;

use super::DiskCache;
use super::text::{cut, fields_of, oid_from_hex};
use crate::git::OidKey;

/// How many probes the cache keeps.
const PROBES_LIMIT: usize = 20_000;

const PROBES_HEADER: &str = "tagback probes v1";

/// Migrations known to exist, by the tree id of their directory: the answer
/// to "does `app.name` exist" for dependencies into apps that did not change
/// (whose directories are otherwise never read); and migrations directories
/// known to have no subdirectories ([`NO_SUBDIRECTORIES`]).
#[derive(Debug, Default)]
pub struct Probes {
    known: BTreeSet<(OidKey, String)>,
    added: Vec<(Oid, String)>,
}

/// The probe that says a tree has no subdirectory (no file has this name:
/// a tree entry's name holds no `/`).
pub const NO_SUBDIRECTORIES: &str = "/";

impl Probes {
    /// Whether `name` (a migration name, or [`NO_SUBDIRECTORIES`]) is known
    /// to exist in the tree.
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
        self.read("probes")
            .map(|text| Probes::decode(&text))
            .unwrap_or_default()
    }
}

impl Probes {
    /// The probes of a `probes` file (empty when it is not one).
    pub(super) fn decode(text: &str) -> Probes {
        let mut probes = Probes::default();
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
}

impl DiskCache {
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
                write(&tree.oid(), name);
            }
        }
        self.write("probes", &text);
    }
}

/// A resolved entry in [`AppMemo`]: label, name, whether the label was
/// derived from the module path, whether this run used it.
type ResolvedEntry = (String, String, bool, bool);

/// How many app and directory resolutions the cache keeps (the ones used by
/// the latest run first).
const APP_MEMO_LIMIT: usize = 50_000;

/// The cache file of [`AppMemo`].
const APP_MEMO_FILE: &str = "apps.tsv";

/// `INSTALLED_APPS` entries resolved to `(label, name, whether the label
/// was derived from the module path)` by `(project root,
/// entry, tree id of the entry's top-level package)`, and whether migrations
/// directories exist by `(directory, tree id of its top-level package)`.
/// Each record remembers whether this run used it: when the cache grows past
/// its limit, only those are kept.
#[derive(Debug, Default)]
pub struct AppMemo {
    apps: BTreeMap<(String, String, Oid), ResolvedEntry>,
    dirs: BTreeMap<(String, Oid), (bool, bool)>,
    changed: bool,
}

impl AppMemo {
    /// The `(label, name, label derived from the module path)` of a
    /// resolved entry.
    pub fn app(&mut self, key: &(String, String, Oid)) -> Option<(String, String, bool)> {
        let (label, name, from_path, used) = self.apps.get_mut(key)?;
        *used = true;
        Some((label.clone(), name.clone(), *from_path))
    }

    /// Whether a migrations directory exists, if known.
    pub fn dir(&mut self, key: &(String, Oid)) -> Option<bool> {
        let (exists, used) = self.dirs.get_mut(key)?;
        *used = true;
        Some(*exists)
    }

    /// Record a resolved entry.
    pub fn add_app(
        &mut self,
        key: (String, String, Oid),
        (label, name, from_path): (String, String, bool),
    ) {
        self.apps.insert(key, (label, name, from_path, true));
        self.changed = true;
    }

    /// Record whether a migrations directory exists.
    pub fn add_dir(&mut self, key: (String, Oid), exists: bool) {
        self.dirs.insert(key, (exists, true));
        self.changed = true;
    }

    /// One line per record: `a TAB root TAB entry TAB tree TAB label TAB
    /// name TAB 0|1` (1: the label was derived from the module path)
    /// or `d TAB dir TAB tree TAB 0|1`. Fields with tabs or newlines are not kept.
    fn to_lines(&self) -> String {
        let only_used = self.apps.len() + self.dirs.len() > APP_MEMO_LIMIT;
        let clean = |f: &[&str]| f.iter().all(|x| !x.contains(['\t', '\n', '\r']));
        let mut out = String::new();
        for ((root, entry, oid), (label, name, from_path, used)) in &self.apps {
            if (*used || !only_used) && clean(&[root, entry, label, name]) {
                out.push_str(&format!(
                    "a\t{root}\t{entry}\t{oid}\t{label}\t{name}\t{}\n",
                    u8::from(*from_path)
                ));
            }
        }
        for ((dir, oid), (exists, used)) in &self.dirs {
            if (*used || !only_used) && clean(&[dir]) {
                out.push_str(&format!("d\t{dir}\t{oid}\t{}\n", u8::from(*exists)));
            }
        }
        out
    }

    pub(super) fn from_lines(text: &str) -> AppMemo {
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
                f.next(),
            ) {
                (
                    Some("a"),
                    Some(root),
                    Some(entry),
                    Some(oid),
                    Some(label),
                    Some(name),
                    Some(g @ ("0" | "1")),
                    None,
                ) => {
                    if let Some(oid) = oid_from_hex(oid) {
                        memo.apps.insert(
                            (root.to_string(), entry.to_string(), oid),
                            (label.to_string(), name.to_string(), g == "1", false),
                        );
                    }
                }
                (
                    Some("d"),
                    Some(dir),
                    Some(oid),
                    Some(e @ ("0" | "1")),
                    None,
                    None,
                    None,
                    None,
                ) => {
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
    /// The app resolutions of earlier runs (empty when none or caching is off).
    pub fn app_memo(&self) -> AppMemo {
        self.read(APP_MEMO_FILE)
            .map(|t| AppMemo::from_lines(&t))
            .unwrap_or_default()
    }

    /// Store the app resolutions when this run added any (best effort).
    pub fn put_app_memo(&self, memo: &AppMemo) {
        if !memo.changed {
            return;
        }
        self.write(APP_MEMO_FILE, &memo.to_lines());
    }
}
