//! One way to read a project, whatever holds it: a git revision, a plain
//! directory (the code inside a container, installed site-packages), a
//! package archive (wheel or sdist) — and a caching wrapper any of them can
//! be put in. A Django rule that reads through [`ProjectSource`] can be
//! read, changed and tested without knowing that git or a cache exists.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::git::{Blob, DirEntry, Repo, Snapshot};
use crate::packages::archive::PackageFiles;

/// What identifies a directory's contents: two equal ids mean identical
/// contents below the directory (a git tree id, or a hash of what is below).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContentId(String);

impl ContentId {
    /// A git tree (or blob) id.
    pub fn git(oid: git2::Oid) -> ContentId {
        ContentId(format!("git:{oid}"))
    }

    /// A SHA-256 of the contents, as computed by [`content_hash`].
    pub fn sha256(digest: &[u8]) -> ContentId {
        ContentId(format!("sha256:{}", crate::hex::encode(digest)))
    }
}

/// Read access to a project's files, by repository-relative path with `/`
/// separators (`""` is the root).
pub trait ProjectSource {
    /// The source's name in messages (`v2`, `working tree`, `django-taggit 5.0.1`).
    fn label(&self) -> &str;

    /// A file's bytes; `None` when there is no such file.
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>>;

    /// A directory's entries, sorted by name; `None` when there is no such
    /// directory.
    fn list_dir(&self, dir: &str) -> Result<Option<Vec<DirEntry>>>;

    /// Whether a file exists (without reading it where the source can).
    fn exists(&self, path: &str) -> Result<bool> {
        listed_as_file(self, path)
    }

    /// Whether every one of `names` is a file in `dir`, answered as
    /// [`ProjectSource::exists`] answers, for a one-off question about a
    /// directory that is otherwise not read (a source may then read the
    /// directory once for all the names, and skip indexing it).
    fn all_exist_once(&self, dir: &str, names: &[&str]) -> Result<bool> {
        for name in names {
            if !self.exists(&format!("{dir}/{name}"))? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Whether a directory exists (without listing it where the source can).
    fn dir_exists(&self, dir: &str) -> Result<bool> {
        Ok(self.list_dir(dir)?.is_some())
    }

    /// A file as UTF-8 text; an error names the file and the source.
    fn read_text(&self, path: &str) -> Result<Option<String>> {
        let Some(data) = self.read(path)? else {
            return Ok(None);
        };
        utf8(data, path, self.label()).map(Some)
    }

    /// A file as UTF-8 text with the git blob id of its bytes (two files
    /// with one id have the same text, whatever source holds them).
    fn read_text_with_id(&self, path: &str) -> Result<Option<(git2::Oid, String)>> {
        let Some(data) = self.read(path)? else {
            return Ok(None);
        };
        let id = blob_id(&data, path)?;
        Ok(Some((id, utf8(data, path, self.label())?)))
    }

    /// The git id (tree or blob) of the entry at `path`, for sources that
    /// know ids without reading (a commit's tree): `Some(None)` when there
    /// is no such entry. `None` from sources that would have to read: what
    /// was read from them cannot be reused by id.
    fn entry_id(&self, path: &str) -> Option<Option<git2::Oid>> {
        let _ = path;
        None
    }

    /// What identifies the contents below `dir` (`None`: no such
    /// directory). The default hashes everything below it; sources with a
    /// cheaper identity (git's tree ids) say so.
    fn dir_id(&self, dir: &str) -> Result<Option<ContentId>> {
        content_hash(self, dir)
    }

    /// The git tree id of `dir` where the source knows it without reading
    /// anything below it (a commit's tree); `None` otherwise.
    fn tree_id(&self, dir: &str) -> Option<git2::Oid> {
        let _ = dir;
        None
    }

    /// The files of `dir` whose names `wanted` accepts (not its
    /// subdirectories), sorted by name, each with the git blob id of its
    /// bytes: two files with one id have the same bytes. `None` when there
    /// is no such directory. The default reads and hashes each file (and
    /// keeps the bytes); a git revision has the ids in its tree.
    fn identified_files(
        &self,
        dir: &str,
        wanted: &dyn Fn(&str) -> bool,
    ) -> Result<Option<Vec<IdentifiedFile>>> {
        identify_by_reading(self.list_dir(dir)?, dir, wanted, &|path| {
            let Some(data) = self.read(path)? else {
                return Ok(None);
            };
            let oid = blob_id(&data, path)?;
            Ok(Some(Blob { oid, data }))
        })
    }

    /// The bytes of a file [`ProjectSource::identified_files`] listed (its
    /// `data` if it has them, else read by id where the source can).
    fn read_identified(&self, path: &str, file: IdentifiedFile) -> Result<Vec<u8>> {
        if let Some(data) = file.data {
            return Ok(data);
        }
        self.read(path)?.ok_or_else(|| {
            Error::input(format!(
                "{path} at {} disappeared while reading",
                self.label()
            ))
        })
    }
}

/// The files of a listing whose names `wanted` accepts, each read (with
/// its git blob id) by `read`: how a source without ids in its listing
/// identifies files. `None` when there is no listing.
fn identify_by_reading(
    entries: Option<Vec<DirEntry>>,
    dir: &str,
    wanted: &dyn Fn(&str) -> bool,
    read: &dyn Fn(&str) -> Result<Option<Blob>>,
) -> Result<Option<Vec<IdentifiedFile>>> {
    let Some(entries) = entries else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for e in entries.into_iter().filter(|e| !e.is_dir && wanted(&e.name)) {
        if let Some(blob) = read(&join(dir, &e.name))? {
            out.push(IdentifiedFile {
                name: e.name,
                id: blob.oid,
                data: Some(blob.data),
            });
        }
    }
    Ok(Some(out))
}

/// Whether the listing of `path`'s directory has it as a file.
fn listed_as_file<S: ProjectSource + ?Sized>(source: &S, path: &str) -> Result<bool> {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    Ok(source
        .list_dir(dir)?
        .is_some_and(|es| es.iter().any(|e| e.name == name && !e.is_dir)))
}

/// Git's blob id of `data` (the file `path`, for the error).
fn blob_id(data: &[u8], path: &str) -> Result<git2::Oid> {
    git2::Oid::hash_object(git2::ObjectType::Blob, data).map_err(|source| Error::Git {
        context: format!("hashing {path}"),
        source,
    })
}

/// `data`, the bytes of `path` at the source `label`, as UTF-8 text.
fn utf8(data: Vec<u8>, path: &str, label: &str) -> Result<String> {
    String::from_utf8(data).map_err(|e| {
        Error::input(format!(
            "{path} at {label} is not valid UTF-8 (byte {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// A file of a directory with the git blob id of its bytes, and the bytes
/// where finding the id read them.
#[derive(Debug, Clone)]
pub struct IdentifiedFile {
    /// The file name.
    pub name: String,
    /// Git's blob id of the bytes.
    pub id: git2::Oid,
    /// The bytes, when the source read them to find the id.
    pub data: Option<Vec<u8>>,
}

/// A SHA-256 over the names, kinds and bytes of everything below `dir`, in
/// name order (`None` when `dir` does not exist).
pub fn content_hash<S: ProjectSource + ?Sized>(source: &S, dir: &str) -> Result<Option<ContentId>> {
    fn walk<S: ProjectSource + ?Sized>(
        source: &S,
        dir: &str,
        h: &mut Sha256,
        depth: u32,
    ) -> Result<bool> {
        if depth > 64 {
            return Err(Error::input(format!(
                "{dir} at {} is nested more than 64 directories deep",
                source.label()
            )));
        }
        let Some(entries) = source.list_dir(dir)? else {
            return Ok(false);
        };
        for e in entries {
            let path = join(dir, &e.name);
            if e.is_dir {
                h.update(format!("d {}\n", e.name));
                walk(source, &path, h, depth + 1)?;
                h.update("u\n");
            } else {
                let data = source.read(&path)?.unwrap_or_default();
                h.update(format!("f {} {}\n", e.name, data.len()));
                h.update(&data);
            }
        }
        Ok(true)
    }
    let mut h = Sha256::new();
    if !walk(source, dir, &mut h, 0)? {
        return Ok(None);
    }
    Ok(Some(ContentId::sha256(&h.finalize())))
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// One revision of a git repository (a commit, the index or the working
/// tree), read through the repository's one door to git.
#[derive(Clone, Copy)]
pub struct GitRevision<'r> {
    repo: &'r Repo,
    snap: &'r Snapshot,
}

impl<'r> GitRevision<'r> {
    /// The snapshot `snap` of `repo`.
    pub fn new(repo: &'r Repo, snap: &'r Snapshot) -> GitRevision<'r> {
        GitRevision { repo, snap }
    }

    /// The repository.
    pub fn repo(&self) -> &'r Repo {
        self.repo
    }

    /// The snapshot.
    pub fn snapshot(&self) -> &'r Snapshot {
        self.snap
    }
}

impl ProjectSource for GitRevision<'_> {
    fn label(&self) -> &str {
        &self.snap.label
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.repo.read(self.snap, path)?.map(|b| b.data))
    }

    fn list_dir(&self, dir: &str) -> Result<Option<Vec<DirEntry>>> {
        self.repo.list_dir(self.snap, dir)
    }

    fn exists(&self, path: &str) -> Result<bool> {
        self.repo.exists(self.snap, path)
    }

    fn all_exist_once(&self, dir: &str, names: &[&str]) -> Result<bool> {
        self.repo.all_exist_in_unread_dir(self.snap, dir, names)
    }

    fn dir_exists(&self, dir: &str) -> Result<bool> {
        self.repo.dir_exists(self.snap, dir)
    }

    fn read_text(&self, path: &str) -> Result<Option<String>> {
        Ok(self.repo.read_text(self.snap, path)?.map(|(_, t)| t))
    }

    fn read_text_with_id(&self, path: &str) -> Result<Option<(git2::Oid, String)>> {
        self.repo.read_text(self.snap, path)
    }

    fn entry_id(&self, path: &str) -> Option<Option<git2::Oid>> {
        matches!(self.snap.source, crate::git::Source::Commit { .. })
            .then(|| self.repo.entry_id(self.snap, path))
    }

    fn tree_id(&self, dir: &str) -> Option<git2::Oid> {
        self.repo.dir_oid(self.snap, dir)
    }

    fn identified_files(
        &self,
        dir: &str,
        wanted: &dyn Fn(&str) -> bool,
    ) -> Result<Option<Vec<IdentifiedFile>>> {
        if !matches!(self.snap.source, crate::git::Source::Commit { .. }) {
            // The index and the working tree: read, with the id the read
            // computes, as any source without ids in its listing.
            return identify_by_reading(self.list_dir(dir)?, dir, wanted, &|path| {
                self.repo.read(self.snap, path)
            });
        }
        Ok(self.repo.file_ids(self.snap, dir)?.map(|files| {
            files
                .into_iter()
                .filter(|(name, _)| wanted(name))
                .map(|(name, id)| IdentifiedFile {
                    name,
                    id,
                    data: None,
                })
                .collect()
        }))
    }

    fn read_identified(&self, path: &str, file: IdentifiedFile) -> Result<Vec<u8>> {
        match file.data {
            Some(data) => Ok(data),
            None => Ok(self.repo.read_blob_at(file.id, self.snap, path)?.data),
        }
    }

    fn dir_id(&self, dir: &str) -> Result<Option<ContentId>> {
        match self.repo.dir_oid(self.snap, dir) {
            Some(oid) => Ok(Some(ContentId::git(oid))),
            // Not a commit snapshot: no tree id without hashing.
            None if matches!(self.snap.source, crate::git::Source::Commit { .. }) => Ok(None),
            None => content_hash(self, dir),
        }
    }
}

/// A plain directory that need not be a git repository (the code inside a
/// container image, installed site-packages), read with the working tree's
/// rules (bounded file size, no `..`).
pub struct PlainDir {
    repo: Repo,
    snap: Snapshot,
}

impl PlainDir {
    /// Open `dir` (an error when it is not a directory).
    pub fn open(dir: &Path) -> Result<PlainDir> {
        let repo = Repo::open_dir(dir)?;
        let snap = repo.worktree_snapshot();
        Ok(PlainDir { repo, snap })
    }

    /// The repository with no history that reads the directory (a
    /// [`crate::django::Loader`] is made over one; it keeps no cache for it).
    pub fn repo(&self) -> &Repo {
        &self.repo
    }

    /// The directory as the only revision (`working tree`) of a repository
    /// with no history.
    fn revision(&self) -> GitRevision<'_> {
        GitRevision::new(&self.repo, &self.snap)
    }
}

impl ProjectSource for PlainDir {
    fn label(&self) -> &str {
        self.repo.label()
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        self.revision().read(path)
    }

    fn list_dir(&self, dir: &str) -> Result<Option<Vec<DirEntry>>> {
        self.revision().list_dir(dir)
    }

    fn exists(&self, path: &str) -> Result<bool> {
        self.revision().exists(path)
    }
}

/// The kept files of a package version (its wheel or sdist, see
/// [`crate::packages::archive`]), by path relative to site-packages.
#[derive(Debug, Clone, Copy)]
pub struct Archive<'a> {
    label: &'a str,
    files: &'a PackageFiles,
}

impl<'a> Archive<'a> {
    /// The files of a package version, named `label` in messages
    /// (`django-taggit 5.0.1`).
    pub fn new(label: &'a str, files: &'a PackageFiles) -> Archive<'a> {
        Archive { label, files }
    }
}

impl ProjectSource for Archive<'_> {
    fn label(&self) -> &str {
        self.label
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.files.get(path).map(|t| t.as_bytes().to_vec()))
    }

    fn read_text(&self, path: &str) -> Result<Option<String>> {
        Ok(self.files.get(path).map(str::to_string))
    }

    fn exists(&self, path: &str) -> Result<bool> {
        Ok(self.files.has(path))
    }

    fn list_dir(&self, dir: &str) -> Result<Option<Vec<DirEntry>>> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        // Directories are implied by the kept files' paths.
        let mut entries: BTreeMap<&str, bool> = BTreeMap::new();
        for path in self.files.files.range(prefix.clone()..).map(|(p, _)| p) {
            let Some(rest) = path.strip_prefix(&prefix) else {
                break;
            };
            match rest.split_once('/') {
                Some((sub, _)) => entries.insert(sub, true),
                None => entries.insert(rest, false),
            };
        }
        if entries.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            entries
                .into_iter()
                .map(|(name, is_dir)| DirEntry {
                    name: name.to_string(),
                    is_dir,
                })
                .collect(),
        ))
    }
}

/// Any source with what it answered kept for the rest of the run: each
/// file is read and each directory listed at most once. The source it
/// wraps decides every answer; the cache only remembers them.
#[derive(Debug)]
pub struct Cached<S> {
    inner: S,
    files: RefCell<BTreeMap<String, Option<Vec<u8>>>>,
    dirs: RefCell<BTreeMap<String, Option<Vec<DirEntry>>>>,
    ids: RefCell<BTreeMap<String, Option<ContentId>>>,
}

impl<S: ProjectSource> Cached<S> {
    /// Wrap `inner`.
    pub fn new(inner: S) -> Cached<S> {
        Cached {
            inner,
            files: RefCell::default(),
            dirs: RefCell::default(),
            ids: RefCell::default(),
        }
    }

    /// The wrapped source.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// How many distinct files and directories were asked of the source.
    pub fn reads(&self) -> usize {
        self.files.borrow().len() + self.dirs.borrow().len()
    }
}

impl<S: ProjectSource> ProjectSource for Cached<S> {
    fn label(&self) -> &str {
        self.inner.label()
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        if let Some(hit) = self.files.borrow().get(path) {
            return Ok(hit.clone());
        }
        let v = self.inner.read(path)?;
        self.files.borrow_mut().insert(path.to_string(), v.clone());
        Ok(v)
    }

    fn list_dir(&self, dir: &str) -> Result<Option<Vec<DirEntry>>> {
        if let Some(hit) = self.dirs.borrow().get(dir) {
            return Ok(hit.clone());
        }
        let v = self.inner.list_dir(dir)?;
        self.dirs.borrow_mut().insert(dir.to_string(), v.clone());
        Ok(v)
    }

    /// Answered from the (kept) listing of the file's directory, so that
    /// every answer agrees with the listings.
    fn exists(&self, path: &str) -> Result<bool> {
        if let Some(hit) = self.files.borrow().get(path) {
            return Ok(hit.is_some());
        }
        listed_as_file(self, path)
    }

    fn tree_id(&self, dir: &str) -> Option<git2::Oid> {
        self.inner.tree_id(dir)
    }

    fn entry_id(&self, path: &str) -> Option<Option<git2::Oid>> {
        self.inner.entry_id(path)
    }

    fn dir_id(&self, dir: &str) -> Result<Option<ContentId>> {
        if let Some(hit) = self.ids.borrow().get(dir) {
            return Ok(hit.clone());
        }
        let v = self.inner.dir_id(dir)?;
        self.ids.borrow_mut().insert(dir.to_string(), v.clone());
        Ok(v)
    }
}

/// Render a listing for messages and tests (`shop/`, `manage.py`).
pub fn describe(entries: &[DirEntry]) -> String {
    let mut s = String::new();
    for e in entries {
        let _ = write!(s, "{}{} ", e.name, if e.is_dir { "/" } else { "" });
    }
    s.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package() -> PackageFiles {
        let mut p = PackageFiles::default();
        for (path, text) in [
            ("taggit/__init__.py", ""),
            ("taggit/apps.py", "class TaggitAppConfig: name = 'taggit'\n"),
            ("taggit/migrations/__init__.py", ""),
            ("taggit/migrations/0001_initial.py", "# one\n"),
        ] {
            p.files.insert(path.to_string(), text.to_string());
        }
        p.tops.insert("taggit".into());
        p
    }

    /// The same files as [`package`], on disk.
    fn on_disk() -> tempfile::TempDir {
        package().on_disk()
    }

    fn answers(s: &dyn ProjectSource) -> Vec<String> {
        vec![
            describe(&s.list_dir("").unwrap().unwrap()),
            describe(&s.list_dir("taggit").unwrap().unwrap()),
            describe(&s.list_dir("taggit/migrations").unwrap().unwrap()),
            format!("{:?}", s.list_dir("taggit/nothing").unwrap()),
            format!(
                "{:?}",
                s.read_text("taggit/migrations/0001_initial.py").unwrap()
            ),
            format!("{:?}", s.read_text("taggit/missing.py").unwrap()),
            format!("{}", s.exists("taggit/apps.py").unwrap()),
            format!("{}", s.exists("taggit/migrations").unwrap()),
        ]
    }

    /// Symbolic links are what they point to, as Python's imports see
    /// them: the cached source, which answers `exists` from its listings,
    /// answers as the directory does.
    #[test]
    fn a_cached_plain_directory_answers_symbolic_links_as_the_directory_does() {
        let disk = on_disk();
        let root = disk.path();
        std::os::unix::fs::symlink(root.join("taggit/apps.py"), root.join("taggit/linked.py"))
            .unwrap();
        std::os::unix::fs::symlink(root.join("taggit/migrations"), root.join("taggit/dir.py"))
            .unwrap();
        std::os::unix::fs::symlink(root.join("taggit/gone.py"), root.join("taggit/dangling.py"))
            .unwrap();
        let plain = PlainDir::open(root).unwrap();
        let cached = Cached::new(PlainDir::open(root).unwrap());
        for (path, file, dir) in [
            ("taggit/linked.py", true, false),
            ("taggit/dir.py", false, true),
            ("taggit/dangling.py", false, false),
            ("taggit/apps.py", true, false),
        ] {
            for s in [&plain as &dyn ProjectSource, &cached] {
                assert_eq!(s.exists(path).unwrap(), file, "{path}");
                assert_eq!(s.dir_exists(path).unwrap(), dir, "{path}");
            }
        }
        assert_eq!(
            describe(&cached.list_dir("taggit").unwrap().unwrap()),
            "__init__.py apps.py dir.py/ linked.py migrations/"
        );
    }

    #[test]
    fn an_archive_and_a_plain_directory_answer_alike() {
        let p = package();
        let archive = Archive::new("django-taggit 5.0.1", &p);
        let disk = on_disk();
        let plain = PlainDir::open(disk.path()).unwrap();
        let want = [
            "taggit/",
            "__init__.py apps.py migrations/",
            "0001_initial.py __init__.py",
            "None",
            "Some(\"# one\\n\")",
            "None",
            "true",
            "false",
        ];
        assert_eq!(answers(&archive), want);
        assert_eq!(answers(&plain), want);
        // The same contents hash alike whatever holds them; other contents differ.
        let a = archive.dir_id("taggit").unwrap().unwrap();
        assert_eq!(plain.dir_id("taggit").unwrap(), Some(a.clone()));
        assert_ne!(archive.dir_id("taggit/migrations").unwrap(), Some(a));
        assert_eq!(archive.dir_id("nothing").unwrap(), None);
    }

    #[test]
    fn the_cache_answers_as_the_source_and_asks_it_once() {
        let p = package();
        let cached = Cached::new(Archive::new("pkg", &p));
        let want = answers(&Archive::new("pkg", &p));
        assert_eq!(answers(&cached), want);
        let asked = cached.reads();
        assert_eq!(answers(&cached), want);
        assert_eq!(cached.reads(), asked, "a second pass reads nothing new");
    }

    #[test]
    fn a_git_revision_identifies_directories_by_tree_id() {
        let disk = on_disk();
        let git = |args: &[&str]| {
            let ok = std::process::Command::new("git")
                .args(args)
                .current_dir(disk.path())
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("HOME", disk.path())
                .env_remove("GIT_DIR")
                .env_remove("GIT_INDEX_FILE")
                .status()
                .unwrap()
                .success();
            assert!(ok, "git {args:?}");
        };
        git(&["init", "-q"]);
        git(&["add", "-A"]);
        git(&[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "commit",
            "-qm",
            "v1",
        ]);
        let repo = Repo::open(disk.path()).unwrap();
        let snap = repo.snapshot("HEAD").unwrap();
        let rev = GitRevision::new(&repo, &snap);
        let mut want = answers(&Archive::new("x", &package()));
        // A git tree lists `.git` nowhere, so the root agrees as well.
        want[0] = "taggit/".into();
        assert_eq!(answers(&rev), want);
        let id = rev.dir_id("taggit/migrations").unwrap().unwrap();
        assert!(format!("{id:?}").contains("git:"), "{id:?}");
        assert_eq!(rev.dir_id("taggit/nothing").unwrap(), None);
        // Files are identified by git's blob id whatever holds them: the
        // commit from its tree (bytes not read), the plain directory and the
        // archive by hashing what they read.
        let plain = PlainDir::open(disk.path()).unwrap();
        let p = package();
        let archive = Archive::new("x", &p);
        let py = |n: &str| n.ends_with(".py");
        let ids = |s: &dyn ProjectSource| {
            s.identified_files("taggit/migrations", &py)
                .unwrap()
                .unwrap()
                .into_iter()
                .map(|f| {
                    let path = format!("taggit/migrations/{}", f.name);
                    let (name, id) = (f.name.clone(), f.id);
                    (name, id, s.read_identified(&path, f).unwrap())
                })
                .collect::<Vec<_>>()
        };
        let from_git = ids(&rev);
        assert_eq!(from_git.len(), 2, "{from_git:?}");
        assert_eq!(from_git[0].2, b"# one\n");
        assert_eq!(ids(&plain), from_git);
        assert_eq!(ids(&archive), from_git);
        assert!(rev.tree_id("taggit/migrations").is_some());
        assert_eq!(plain.tree_id("taggit/migrations"), None);
        assert!(
            rev.identified_files("taggit/nothing", &py)
                .unwrap()
                .is_none()
        );
    }
}
