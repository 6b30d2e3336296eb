//! A parse cache on disk, inside the repository's git directory
//! (`.git/tagback/cache/VERSION-RELEASE/`), keyed by git object ids:
//! identical contents, identical parse.
//!
//! - `LABEL-TREE`: the graph part of every migration of one app's migrations
//!   directory (`directory.rs`);
//! - `projects`, `apps.tsv`, `probes`: settings reads and app resolutions by
//!   tree id, and migrations known to exist (`memo.rs`, `project/records.rs`).
//!
//! The cache never changes a result. Every file starts with an XXH3-128 of its
//! name (which holds its key) and its content: a damaged, truncated,
//! swapped or half-written file is a miss and is derived again from git
//! objects. The facts that decide safety, the operations of the migrations
//! to unapply (irreversible, data loss), are never cached: they are parsed
//! from the blobs on every run. Files are replaced atomically, on a thread
//! of their own while the run goes on (waited for before the process ends);
//! past a few thousand files the oldest half is pruned.

mod directory;
mod memo;
mod text;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, mpsc};

use git2::Oid;

pub use directory::{CachedDir, CachedLine, Entry, SharedNames};
pub use memo::{AppMemo, NO_SUBDIRECTORIES, Probes};
pub(crate) use text::{fields_of, oid_from_hex, optional, parse_optional};

use crate::fs::{self, Mode};

/// Bumped whenever the parsed model, the file format or a rule whose
/// outcome is cached (settings and app resolution) changes: v9, the
/// checksum line is an XXH3-128 (v8: a package wins over a module of the
/// same name).
const VERSION: &str = "v9";

/// The cache directory (`None`: caching off).
#[derive(Debug, Clone)]
pub struct DiskCache {
    dir: Option<PathBuf>,
    pruned: std::cell::Cell<bool>,
    /// Shared by every clone: files are written while the run goes on.
    writes: Arc<WriteBehind>,
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
            writes: Arc::default(),
        }
    }

    /// No cache at all (a plain directory has no git directory to keep it in).
    pub fn off() -> Self {
        DiskCache {
            dir: None,
            pruned: std::cell::Cell::new(false),
            writes: Arc::default(),
        }
    }

    /// Wait until every file handed to the cache is written (also done
    /// when the last clone of this cache goes).
    pub fn finish_writes(&self) {
        self.writes.finish();
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
        let path = self.path(label, tree)?;
        let text = std::fs::read_to_string(&path).ok()?;
        let body = checked_body(&path, &text)?;
        let dir = CachedDir::starting_at(text, body);
        dir.is_valid().then_some(dir)
    }

    /// Whether a parse of the directory may be stored (a file exists; it
    /// is checked only when read with [`DiskCache::get`]).
    pub fn may_have(&self, label: &str, tree: Oid) -> bool {
        self.path(label, tree).is_some_and(|p| p.is_file())
    }

    /// Store a parse; errors are ignored (the cache is an optimisation).
    pub fn put(&self, label: &str, tree: Oid, entries: &[Entry]) {
        let Some(path) = self.path(label, tree) else {
            return;
        };
        let Some(text) = directory::encode(entries) else {
            return;
        };
        self.writes.send(Job::Write(path, text));
        self.prune();
    }

    /// Keep the cache bounded: past [`FILES_KEPT`] files, the least recently
    /// written half goes (they are parsed again if ever needed). Runs only
    /// after a write, which a warm run does not do.
    fn prune(&self) {
        // Once per run: listing a full cache directory costs milliseconds.
        if !self.pruned.replace(true)
            && let Some(dir) = &self.dir
        {
            self.writes.send(Job::Prune(dir.clone()));
        }
    }

    #[cfg(test)]
    fn prune_to(&self, kept: usize) {
        if let Some(dir) = &self.dir {
            prune_dir(dir, kept);
        }
    }
}

/// Work for the thread that writes the cache.
enum Job {
    /// Replace a file (its checksum line is added).
    Write(PathBuf, String),
    /// Bound the directory to [`FILES_KEPT`] files.
    Prune(PathBuf),
}

impl Job {
    fn run(self) {
        match self {
            Job::Write(path, body) => write_checked(&path, &body),
            Job::Prune(dir) => prune_dir(&dir, FILES_KEPT),
        }
    }
}

/// Cache files written on a thread of their own while the run goes on: a
/// first run writes one per migrations directory it parses, about a tenth
/// of its time. What is not written (the thread could not start) is
/// written at once; what is lost is only derived again.
#[derive(Default)]
struct WriteBehind {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for WriteBehind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteBehind")
    }
}

impl WriteBehind {
    fn send(&self, job: Job) {
        let mut jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        if jobs.is_none() {
            let (tx, rx) = mpsc::channel::<Job>();
            let started = std::thread::Builder::new()
                .name("tagback-cache-writes".into())
                .spawn(move || rx.into_iter().for_each(Job::run));
            let Ok(thread) = started else {
                return job.run();
            };
            *self.thread.lock().unwrap_or_else(PoisonError::into_inner) = Some(thread);
            *jobs = Some(tx);
        }
        if let Some(Err(mpsc::SendError(job))) = jobs.as_ref().map(|tx| tx.send(job)) {
            job.run();
        }
    }

    /// Wait for every job sent so far.
    fn finish(&self) {
        drop(
            self.jobs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl Drop for WriteBehind {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Keep a cache directory bounded: past `kept` files, the least recently
/// written half goes (they are parsed again if ever needed).
fn prune_dir(dir: &std::path::Path, kept: usize) {
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

/// Every decoder of the cache's file formats run on `text` (for the fuzzer:
/// whatever the bytes, a decoder returns a value or a miss, never panics).
#[doc(hidden)]
pub fn decode_any(text: &str) {
    let path = std::path::Path::new("v5-0.1.0/shop-0123456789abcdef0123456789abcdef01234567");
    let _ = strip_checksum(path, text.to_string());
    let cached = CachedDir::new(text.to_string());
    for line in cached.lines().flatten() {
        let _ = (
            line.blob(),
            line.migration(&SharedNames::new("shop")),
            cached.range_of(line.raw),
        );
    }
    let _ = AppMemo::from_lines(text);
    let _ = Probes::decode(text);
    crate::django::project::decode_records(text);
}

/// How many files the parse cache keeps before pruning (a few hundred bytes
/// to a few tens of kilobytes each).
const FILES_KEPT: usize = 4096;

impl DiskCache {
    /// A file of the cache directory, if it exists and its checksum holds.
    pub fn read(&self, name: &str) -> Option<String> {
        read_checked(&self.dir.as_ref()?.join(name))
    }

    /// Replace a file of the cache directory (best effort).
    pub fn write(&self, name: &str, text: &str) {
        if let Some(dir) = &self.dir {
            self.writes
                .send(Job::Write(dir.join(name), text.to_string()));
        }
    }
}

/// First bytes of every cache file, before the checksum.
const SUM_PREFIX: &str = "tagback-sum ";

/// XXH3-128 (hex) of a cache file's key and content. The key is the file's
/// path below the cache root: version, label and object id, so a file
/// copied over another one's name is a miss too.
fn checksum(path: &std::path::Path, body: &str) -> String {
    let key = path
        .iter()
        .rev()
        .take(2)
        .map(|c| c.to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    let mut h = twox_hash::XxHash3_128::new();
    h.write(key.as_bytes());
    h.write(&[0]);
    h.write(body.as_bytes());
    format!("{:032x}", h.finish_128())
}

/// The content of a cache file whose checksum matches its path and content.
fn read_checked(path: &std::path::Path) -> Option<String> {
    strip_checksum(path, std::fs::read_to_string(path).ok()?)
}

/// `text` without its checksum line, if the checksum holds for `path`.
fn strip_checksum(path: &std::path::Path, mut text: String) -> Option<String> {
    let skip = checked_body(path, &text)?;
    text.drain(..skip);
    Some(text)
}

/// Where the content of a cache file starts in `text`, if the checksum
/// line before it holds for `path` and that content.
fn checked_body(path: &std::path::Path, text: &str) -> Option<usize> {
    let (sum, body) = text.strip_prefix(SUM_PREFIX)?.split_once('\n')?;
    if sum.len() != 32 || checksum(path, body) != sum {
        return None;
    }
    Some(SUM_PREFIX.len() + sum.len() + 1)
}

/// Write a cache file with its checksum line (best effort).
fn write_checked(path: &std::path::Path, body: &str) {
    let text = format!("{SUM_PREFIX}{}\n{body}", checksum(path, body));
    let _ = fs::write_atomic(path, text.as_bytes(), Mode::ReplaceCache);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Edits of a valid text, deterministic (characters inserted, removed,
    /// swapped for separators), for "never panics" checks of the decoders.
    pub(crate) fn mutations(valid: &str, rounds: usize) -> Vec<String> {
        let alphabet: Vec<char> = "\t\n\u{1e}\u{1f}-=0123456789abcdefkslP".chars().collect();
        let chars: Vec<char> = valid.chars().collect();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n.max(1) as u64) as usize
        };
        (0..rounds)
            .map(|_| {
                let mut c = chars.clone();
                for _ in 0..1 + next(4) {
                    let at = next(c.len() + 1);
                    match next(3) {
                        0 if at < c.len() => {
                            c.remove(at);
                        }
                        1 if at < c.len() => c[at] = alphabet[next(alphabet.len())],
                        _ => c.insert(at, alphabet[next(alphabet.len())]),
                    }
                }
                c.into_iter().collect()
            })
            .collect()
    }

    #[test]
    fn decoders_never_panic_on_edited_files() {
        let git_dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::new(git_dir.path());
        let m = crate::django::migration::parse(
            "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n    replaces = [('shop', '0001_a')]\n    dependencies = [('shop', '0001_initial'), migrations.swappable_dependency(settings.AUTH_USER_MODEL)]\n    run_before = [('blog', '0001_initial')]\n    operations = [migrations.RunPython(forwards), migrations.RemoveField('order', 'note')]\n",
            "shop",
        )
        .unwrap();
        let blob = Oid::from_str("0123456789abcdef0123456789abcdef01234567").unwrap();
        let entry = Entry {
            name: "0002_b".into(),
            blob,
            migration: std::sync::Arc::new(m.clone()),
        };
        let dir = directory::encode(&[entry.clone(), entry]).unwrap();
        for text in mutations(&dir, 3000) {
            let cached = CachedDir::new(text);
            for line in cached.lines().flatten() {
                let _ = (
                    line.blob(),
                    line.migration(&SharedNames::new("shop")),
                    cached.range_of(line.raw),
                );
            }
        }
        let mut probes = Probes::default();
        probes.add(blob, "0002_b");
        cache.put_probes(&probes);
        cache.finish_writes();
        let probes_text = cache.read("probes").unwrap();
        for text in mutations(&probes_text, 2000) {
            cache.write("probes", &text);
            cache.finish_writes();
            let _ = cache.probes();
        }
        let memo_text = "a\t\tshop\t0123456789abcdef0123456789abcdef01234567\tshop\tshop\nd\tshop/migrations\t0123456789abcdef0123456789abcdef01234567\t1\n";
        for text in mutations(memo_text, 2000) {
            cache.write("apps.tsv", &text);
            cache.finish_writes();
            let _ = cache.app_memo();
        }
    }

    #[test]
    fn checksums_bind_content_and_key() {
        let git_dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::new(git_dir.path());
        cache.write("probes", "tagback probes v1\n");
        cache.finish_writes();
        assert_eq!(cache.read("probes").as_deref(), Some("tagback probes v1\n"));
        let dir = cache.dir.clone().unwrap();
        std::fs::copy(dir.join("probes"), dir.join("projects")).unwrap();
        assert_eq!(
            cache.read("projects"),
            None,
            "a file under another name is a miss"
        );
        let text = std::fs::read_to_string(dir.join("probes")).unwrap();
        std::fs::write(dir.join("probes"), text.replace("v1", "v2")).unwrap();
        assert_eq!(cache.read("probes"), None, "an edited file is a miss");
        std::fs::write(dir.join("probes"), "tagback probes v1\n").unwrap();
        assert_eq!(
            cache.read("probes"),
            None,
            "a file without a checksum is a miss"
        );
    }

    #[test]
    fn pruning_keeps_the_newest_half_and_the_run_wide_files() {
        let git_dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::new(git_dir.path());
        let dir = cache.dir.clone().unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        cache.write("projects", "kept");
        cache.finish_writes();
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
}
