//! The only door to git. Everything tagback reads from a repository (blobs at a
//! revision, the index, the working tree, ancestry) goes through [`Repo`], which
//! wraps libgit2: no checkout, no `git` subprocess.

pub mod hook;
pub mod write;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use git2::{ObjectType, Oid, Repository};

use crate::error::{Error, Result};

/// An object id as a map key, ordered by its bytes (`Oid`'s own ordering
/// calls into libgit2 for every comparison).
#[derive(Debug, Clone, Copy)]
pub struct OidKey(Oid);

impl OidKey {
    /// The key of an id.
    pub fn of(oid: Oid) -> OidKey {
        OidKey(oid)
    }

    /// The id.
    pub fn oid(self) -> Oid {
        self.0
    }
}

impl PartialEq for OidKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes() == other.0.as_bytes()
    }
}

impl Eq for OidKey {}

/// A SHA is already uniform: its first eight bytes are the hash.
impl std::hash::Hash for OidKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let b = self.0.as_bytes();
        let mut first = [0u8; 8];
        first.copy_from_slice(&b[..8]);
        state.write_u64(u64::from_le_bytes(first));
    }
}

impl PartialOrd for OidKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OidKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.as_bytes().cmp(other.0.as_bytes())
    }
}

/// Files larger than this are refused rather than read into memory.
pub const MAX_FILE_BYTES: usize = 8 * 1024 * 1024;

/// The entries of one tree, sorted by name, with all names in one buffer
/// (a migrations directory has hundreds of entries; one allocation each
/// would cost more than reading the tree).
struct TreeEntries {
    names: String,
    /// `(name start, name end, object id, is a tree)`.
    entries: Vec<(u32, u32, Oid, bool)>,
    /// Names of the entries that are submodules (gitlinks: the id is a
    /// commit of another repository), few and rare.
    gitlinks: Vec<String>,
    /// Names of the entries that are symbolic links (the blob holds the
    /// path they point to), few and rare.
    symlinks: Vec<String>,
}

impl TreeEntries {
    fn read(tree: &git2::Tree<'_>) -> TreeEntries {
        let mut names = String::new();
        let mut entries = Vec::with_capacity(tree.len());
        let mut gitlinks = Vec::new();
        let mut symlinks = Vec::new();
        for e in tree.iter() {
            let Ok(name) = std::str::from_utf8(e.name_bytes()) else {
                continue;
            };
            if e.kind() == Some(ObjectType::Commit) {
                gitlinks.push(name.to_string());
            }
            if e.filemode() == SYMLINK_MODE {
                symlinks.push(name.to_string());
            }
            let start = names.len() as u32;
            names.push_str(name);
            entries.push((
                start,
                names.len() as u32,
                e.id(),
                e.kind() == Some(ObjectType::Tree),
            ));
        }
        let mut t = TreeEntries {
            names,
            entries,
            gitlinks,
            symlinks,
        };
        // Git sorts directories as if their names ended in `/`; search by name.
        let names = std::mem::take(&mut t.names);
        t.entries.sort_unstable_by(|a, b| {
            names[a.0 as usize..a.1 as usize].cmp(&names[b.0 as usize..b.1 as usize])
        });
        t.names = names;
        t
    }

    fn name(&self, e: &(u32, u32, Oid, bool)) -> &str {
        &self.names[e.0 as usize..e.1 as usize]
    }

    fn get(&self, name: &str) -> Option<(Oid, bool)> {
        self.entries
            .binary_search_by(|e| self.name(e).cmp(name))
            .ok()
            .map(|i| (self.entries[i].2, self.entries[i].3))
    }

    fn iter(&self) -> impl Iterator<Item = (&str, Oid, bool)> {
        self.entries.iter().map(|e| (self.name(e), e.2, e.3))
    }

    fn is_gitlink(&self, name: &str) -> bool {
        !self.gitlinks.is_empty() && self.gitlinks.iter().any(|g| g == name)
    }

    fn is_symlink(&self, name: &str) -> bool {
        !self.symlinks.is_empty() && self.symlinks.iter().any(|l| l == name)
    }
}

/// Git's mode of a symbolic link.
const SYMLINK_MODE: i32 = 0o120000;

/// A path through a symbolic link in a git revision: tagback reads what the
/// revision holds and does not follow links (a checkout would: Django would
/// read what it points to, which may not be what the same path holds).
fn symlink_refused(path: &str, rev: &str) -> Error {
    Error::input(format!(
        "{path} at {rev} is a symbolic link: tagback reads the files a git revision holds and does not follow links, while Django, run from a checkout, reads what the link points to; replace the link with the directory or file it points to"
    ))
}

/// An opened git repository.
pub struct Repo {
    repo: Repository,
    /// A short name for messages (the directory given by the user).
    label: String,
    /// Trees read so far, by id: every tree is read and parsed once per run.
    trees: RefCell<BTreeMap<OidKey, Rc<TreeEntries>>>,
    /// A plain directory opened with [`Repo::open_dir`]: its files are the
    /// working tree, and there is no git history.
    plain_dir: Option<PathBuf>,
    /// The working-tree file read last by [`Repo::blob_id`], handed to the
    /// [`Repo::read_blob_at`] that usually follows instead of reading and
    /// hashing it again.
    /// Object directories of submodules added as alternates of this
    /// repository's object database (so their commits, trees and blobs are
    /// read like this repository's own).
    alternates: RefCell<std::collections::BTreeSet<PathBuf>>,
}

/// Where file contents come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The tree of a commit.
    Commit {
        /// The commit id.
        commit: Oid,
        /// The root tree id of that commit.
        tree: Oid,
    },
    /// The staging area (for pre-commit).
    Index,
    /// The files on disk.
    WorkTree,
}

/// One view of the repository's files: a commit, the index or the working tree,
/// with the revision name used in messages.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Where the contents come from.
    pub source: Source,
    /// The revision as the user named it (`v2`, `HEAD`, `working tree`).
    pub label: String,
}

/// A file's contents with the blob id that identifies them.
#[derive(Debug, Clone)]
pub struct Blob {
    /// Git's blob id (or the hash of the bytes for working-tree files).
    pub oid: Oid,
    /// The raw bytes.
    pub data: Vec<u8>,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's file name.
    pub name: String,
    /// Whether it is a directory.
    pub is_dir: bool,
}

impl Repo {
    /// Open the repository containing `dir`, ignoring `GIT_*` variables.
    pub fn open(dir: &Path) -> Result<Repo> {
        let repo = Repository::open_ext(
            dir,
            git2::RepositoryOpenFlags::empty(),
            std::iter::empty::<&std::ffi::OsStr>(),
        )
        .map_err(|source| {
            if source.code() == git2::ErrorCode::Owner {
                // git's own check (CVE-2022-24765) stays on; say how to pass it.
                return Error::input(format!(
                    "{} is owned by another user, and git refuses such repositories ({}); run tagback as its owner (in Docker: --user \"$(id -u):$(id -g)\") or add the path to safe.directory in the global or system git config",
                    dir.display(),
                    source.message()
                ));
            }
            Error::input(format!(
                "{} is not a git repository ({})",
                dir.display(),
                source.message()
            ))
        })?;
        Ok(Repo::new(repo, dir.display().to_string()))
    }

    /// Open the repository a git hook runs in, honouring `GIT_DIR` and the
    /// quarantine object directories git sets up during a push.
    pub fn open_from_env() -> Result<Repo> {
        let repo = Repository::open_from_env().map_err(|source| {
            Error::input(format!(
                "not inside a git repository ({})",
                source.message()
            ))
        })?;
        let label = repo
            .workdir()
            .unwrap_or_else(|| repo.path())
            .display()
            .to_string();
        Ok(Repo::new(repo, label))
    }

    /// Open a plain directory that need not be a git repository (the code
    /// inside a container image): only [`Repo::worktree_snapshot`] reads
    /// it, with the same rules as a working tree; revisions do not exist.
    pub fn open_dir(dir: &Path) -> Result<Repo> {
        if !dir.is_dir() {
            return Err(Error::input(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
        // A repository over an empty in-memory object database: nothing is
        // read from it, and no `.git` is looked for or created.
        let repo = git2::Odb::new()
            .and_then(Repository::from_odb)
            .map_err(|source| Error::Git {
                context: format!("opening {}", dir.display()),
                source,
            })?;
        // Messages name the directory absolutely (`/app`, not `.`).
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        let mut r = Repo::new(repo, dir.display().to_string());
        r.plain_dir = Some(dir);
        Ok(r)
    }

    /// Whether this is a plain directory (see [`Repo::open_dir`]).
    pub fn is_plain_dir(&self) -> bool {
        self.plain_dir.is_some()
    }

    fn new(repo: Repository, label: String) -> Repo {
        // Objects are read from the user's own repository; re-hashing every
        // object on read (libgit2's default) costs more than the rest of a run.
        git2::opts::strict_hash_verification(false);
        Repo {
            repo,
            label,
            trees: RefCell::new(BTreeMap::new()),
            plain_dir: None,
            alternates: RefCell::new(std::collections::BTreeSet::new()),
        }
    }

    /// Files `newer` has and `older` lacks under directories whose last
    /// component is `dir_name`, found by walking both trees in step as `git
    /// diff` does: a subtree with the same id at both is never opened.
    /// Only commits are compared (empty for the index or working tree).
    ///
    /// Nor is a directory named `dir_name` opened when `skip(path, tree)`
    /// says its files do not matter and it has no subdirectories (the
    /// caller knows it by its tree id); each such directory this walk does
    /// open and finds without subdirectories is given to `flat`.
    pub fn added_files_in_dirs_named(
        &self,
        newer: &Snapshot,
        older: &Snapshot,
        dir_name: &str,
        skip: &dyn Fn(&str, Oid) -> bool,
        flat: &mut dyn FnMut(&str, Oid),
    ) -> Result<Vec<String>> {
        let (Source::Commit { tree: tn, .. }, Source::Commit { tree: to, .. }) =
            (&newer.source, &older.source)
        else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut stack: Vec<(String, Oid, Option<Oid>)> = vec![(String::new(), *tn, Some(*to))];
        while let Some((path, n, o)) = stack.pop() {
            if Some(n) == o {
                continue;
            }
            let here = path.rsplit('/').next() == Some(dir_name);
            if here && skip(&path, n) {
                continue;
            }
            let ne = self.tree_entries(n, newer)?;
            if here && !ne.iter().any(|(_, _, is_dir)| is_dir) {
                flat(&path, n);
            }
            let oe = match o {
                Some(o) => Some(self.tree_entries(o, older)?),
                None => None,
            };
            let full = |name: &str| {
                if path.is_empty() {
                    name.to_string()
                } else {
                    format!("{path}/{name}")
                }
            };
            for (name, id, is_dir) in ne.iter() {
                if !is_dir && !here {
                    continue;
                }
                let other = oe.as_ref().and_then(|t| t.get(name));
                if is_dir {
                    let other_tree = other.and_then(|(oid, d)| d.then_some(oid));
                    if other_tree != Some(id) {
                        stack.push((full(name), id, other_tree));
                    }
                } else if other.is_none_or(|(_, d)| d) {
                    out.push(full(name));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// The entries of a tree, read once and cached.
    fn tree_entries(&self, oid: Oid, snap: &Snapshot) -> Result<Rc<TreeEntries>> {
        if let Some(t) = self.trees.borrow().get(&OidKey::of(oid)) {
            return Ok(t.clone());
        }
        let tree = self.find_tree(oid, snap)?;
        let entries = Rc::new(TreeEntries::read(&tree));
        self.trees
            .borrow_mut()
            .insert(OidKey::of(oid), entries.clone());
        Ok(entries)
    }

    /// Walk `path` from a root tree through the cache: `(id, is_tree)`.
    /// A submodule on the way is entered through its commit's tree (an
    /// error naming it when its objects are not in this clone).
    fn lookup(&self, root: Oid, path: &str, snap: &Snapshot) -> Result<Option<(Oid, bool)>> {
        let mut cur = (root, true);
        // Where the current part ends in `path` (to name a submodule).
        let mut end = 0;
        for part in path.split('/') {
            end += part.len() + 1;
            if part.is_empty() {
                continue;
            }
            if !cur.1 {
                return Ok(None);
            }
            let entries = self.tree_entries(cur.0, snap)?;
            if entries.is_symlink(part) {
                let at = path[..(end - 1).min(path.len())].trim_start_matches('/');
                return Err(symlink_refused(at, &snap.label));
            }
            match entries.get(part) {
                Some((commit, false)) if entries.is_gitlink(part) => {
                    let at = path[..(end - 1).min(path.len())].trim_start_matches('/');
                    cur = (self.submodule_tree(commit, at, snap)?, true);
                }
                Some(e) => cur = e,
                None => return Ok(None),
            }
        }
        Ok(Some(cur))
    }

    /// The root tree of submodule commit `commit` at `path`, read from the
    /// submodule's own repository (`.git/modules/NAME`, or `PATH/.git` in the
    /// working tree) when this clone has it.
    fn submodule_tree(&self, commit: Oid, path: &str, snap: &Snapshot) -> Result<Oid> {
        if let Ok(c) = self.repo.find_commit(commit) {
            return Ok(c.tree_id());
        }
        for dir in self.submodule_git_dirs(path, snap) {
            let objects = dir.join("objects");
            if !objects.is_dir() || self.alternates.borrow().contains(&objects) {
                continue;
            }
            let added = objects.to_str().is_some_and(|o| {
                self.repo
                    .odb()
                    .and_then(|odb| odb.add_disk_alternate(o))
                    .is_ok()
            });
            if added {
                self.alternates.borrow_mut().insert(objects);
                if let Ok(c) = self.repo.find_commit(commit) {
                    return Ok(c.tree_id());
                }
            }
        }
        Err(Error::input(format!(
            "{path} at {} is a git submodule whose commit {} is not in {}; run `git submodule update --init {path}` (in CI: check out with submodules) and try again",
            snap.label,
            short(commit),
            self.label
        )))
    }

    /// Where the repository of the submodule at `path` may be: under the
    /// common git directory's `modules/` by its name in `.gitmodules` (and by
    /// its path), and the working tree's `PATH/.git` (a directory, or a file
    /// saying `gitdir: …`).
    fn submodule_git_dirs(&self, path: &str, snap: &Snapshot) -> Vec<PathBuf> {
        let modules = self.repo.commondir().join("modules");
        let mut names = vec![path.to_string()];
        if let Source::Commit { tree, .. } = snap.source
            && let Ok(Some((oid, false))) = self.lookup(tree, ".gitmodules", snap)
            && let Ok(blob) = self.repo.find_blob(oid)
        {
            names.extend(gitmodules_names(
                &String::from_utf8_lossy(blob.content()),
                path,
            ));
        }
        let mut dirs: Vec<PathBuf> = names.iter().map(|n| modules.join(n)).collect();
        if let Some(work) = self.repo.workdir() {
            let dot_git = work.join(path).join(".git");
            if dot_git.is_dir() {
                dirs.push(dot_git);
            } else if let Ok(text) = std::fs::read_to_string(&dot_git)
                && let Some(gitdir) = text.trim().strip_prefix("gitdir:")
            {
                dirs.push(work.join(path).join(gitdir.trim()));
            }
        }
        dirs
    }

    /// Read a blob by id (from a tree listing, or the hash of a working-tree
    /// or index file read before); `path` names it in errors. A file that
    /// no longer has that id was changed while tagback read it: an error,
    /// never the other bytes under the old id.
    pub fn read_blob_at(&self, oid: Oid, snap: &Snapshot, path: &str) -> Result<Blob> {
        if let Source::Commit { .. } = &snap.source {
            return self.read_blob(oid, snap, path);
        }
        match self.read(snap, path)? {
            Some(blob) if blob.oid == oid => Ok(blob),
            found => Err(Error::input(format!(
                "{path} at {} {} while tagback read it; run tagback again",
                snap.label,
                if found.is_some() {
                    "changed"
                } else {
                    "disappeared"
                }
            ))),
        }
    }

    /// Whether a directory exists at a snapshot (without listing it).
    pub fn dir_exists(&self, snap: &Snapshot, path: &str) -> Result<bool> {
        match &snap.source {
            Source::Commit { tree, .. } => {
                Ok(matches!(self.lookup(*tree, path, snap)?, Some((_, true))))
            }
            _ => Ok(self.list_dir(snap, path)?.is_some()),
        }
    }

    /// Whether a file exists at a snapshot (without reading it); the
    /// directory's tree is indexed and kept for later questions (see
    /// [`Repo::all_exist_in_unread_dir`] for a directory asked about once).
    pub fn exists(&self, snap: &Snapshot, path: &str) -> Result<bool> {
        match &snap.source {
            Source::Commit { tree, .. } => {
                Ok(matches!(self.lookup(*tree, path, snap)?, Some((_, false))))
            }
            // A file on disk is not read to know that it is there.
            Source::WorkTree => Ok(self
                .worktree_path(path)
                .is_some_and(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file()))),
            Source::Index => Ok(self.read(snap, path)?.is_some()),
        }
    }

    /// Whether every one of `names` is a file in `dir`, answered as
    /// [`Repo::exists`] answers, for a one-off question about a directory
    /// that is otherwise not read: the directory's tree is read once for all
    /// the names and searched in place instead of being indexed and kept
    /// (`exists` indexes it, for directories that are read again; a
    /// migrations directory's tree, deltified, costs a quarter of a million
    /// instructions to read).
    pub fn all_exist_in_unread_dir(
        &self,
        snap: &Snapshot,
        dir: &str,
        names: &[&str],
    ) -> Result<bool> {
        let in_place = match &snap.source {
            Source::Commit { tree, .. } => match self.lookup(*tree, dir, snap)? {
                Some((dir_oid, true)) => {
                    (!self.trees.borrow().contains_key(&OidKey::of(dir_oid))).then_some(dir_oid)
                }
                _ => return Ok(false),
            },
            _ => None,
        };
        let Some(dir_oid) = in_place else {
            for name in names {
                if !self.exists(snap, &join_path(dir, name))? {
                    return Ok(false);
                }
            }
            return Ok(true);
        };
        let t = self.find_tree(dir_oid, snap)?;
        for name in names {
            match t.get_name(name) {
                Some(e) if e.filemode() == SYMLINK_MODE => {
                    return Err(symlink_refused(&join_path(dir, name), &snap.label));
                }
                Some(e) if e.kind() != Some(ObjectType::Tree) => {}
                _ => return Ok(false),
            }
        }
        Ok(true)
    }

    /// The working directory, if the repository has one.
    pub fn workdir(&self) -> Option<&Path> {
        self.plain_dir.as_deref().or_else(|| self.repo.workdir())
    }

    /// The `.git` directory.
    pub fn git_dir(&self) -> &Path {
        self.repo.path()
    }

    /// The repository's name in messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Resolve a revision (`HEAD`, `v2`, a sha, `main~3`) to a commit snapshot.
    pub fn snapshot(&self, rev: &str) -> Result<Snapshot> {
        let commit = self.resolve_commit(rev)?;
        // The tree's id only: parsing the root tree here would parse it twice.
        let tree = self
            .repo
            .find_commit(commit)
            .map(|c| c.tree_id())
            .map_err(|e| self.missing_object(rev, &e))?;
        Ok(Snapshot {
            source: Source::Commit { commit, tree },
            label: rev.to_string(),
        })
    }

    /// The snapshot of a commit id, labelled with its short id.
    pub fn snapshot_of(&self, commit: Oid) -> Result<Snapshot> {
        self.snapshot(&commit.to_string()).map(|s| Snapshot {
            label: short(commit),
            ..s
        })
    }

    /// The index (staged files).
    pub fn index_snapshot(&self) -> Snapshot {
        Snapshot {
            source: Source::Index,
            label: "the index".into(),
        }
    }

    /// The working tree.
    pub fn worktree_snapshot(&self) -> Snapshot {
        Snapshot {
            source: Source::WorkTree,
            label: "the working tree".into(),
        }
    }

    /// Resolve `rev` to a commit id with a clear error.
    pub fn resolve_commit(&self, rev: &str) -> Result<Oid> {
        if rev.is_empty() || rev.starts_with('-') || rev.contains(['\n', '\0']) {
            return Err(Error::input(format!(
                "invalid revision {rev:?} in {}",
                self.label
            )));
        }
        let object = self
            .repo
            .revparse_single(rev)
            .map_err(|e| self.missing_object(rev, &e))?;
        let commit = object.peel_to_commit().map_err(|_| {
            Error::input(format!(
                "revision {rev:?} in {} is not a commit",
                self.label
            ))
        })?;
        Ok(commit.id())
    }

    /// Whether `rev` names an existing commit.
    pub fn has_revision(&self, rev: &str) -> bool {
        self.repo
            .revparse_single(rev)
            .and_then(|o| o.peel_to_commit())
            .is_ok()
    }

    fn missing_object(&self, rev: &str, e: &git2::Error) -> Error {
        let shallow = if self.repo.is_shallow() {
            " (this is a shallow clone: fetch more history, e.g. `git fetch --unshallow --tags`)"
        } else {
            ""
        };
        Error::input(format!(
            "revision {rev:?} not found in {}{shallow}: {}",
            self.label,
            e.message()
        ))
    }

    /// Whether commit `ancestor` is an ancestor of (or equal to) `descendant`.
    pub fn is_ancestor(&self, ancestor: Oid, descendant: Oid) -> Result<bool> {
        if ancestor == descendant {
            return Ok(true);
        }
        self.repo
            .graph_descendant_of(descendant, ancestor)
            .map_err(|source| Error::Git {
                context: format!("checking ancestry of {} in {}", short(ancestor), self.label),
                source,
            })
    }

    /// The merge base of two commits, if any.
    pub fn merge_base(&self, a: Oid, b: Oid) -> Option<Oid> {
        self.repo.merge_base(a, b).ok()
    }

    /// The commit `refs/remotes/REMOTE/HEAD` (or `main`/`master`) points to.
    pub fn remote_default_branch(&self, remote: &str) -> Option<(String, Oid)> {
        let candidates = [
            format!("refs/remotes/{remote}/HEAD"),
            format!("refs/remotes/{remote}/main"),
            format!("refs/remotes/{remote}/master"),
        ];
        candidates.into_iter().find_map(|name| {
            let r = self.repo.find_reference(&name).ok()?;
            let oid = r.resolve().ok()?.target()?;
            Some((name, oid))
        })
    }

    /// Whether this repository has any remote-tracking ref of `remote`
    /// (`false` for a remote never fetched, or pushed to for the first time).
    pub fn has_remote_refs(&self, remote: &str) -> bool {
        self.repo
            .references_glob(&format!("refs/remotes/{remote}/*"))
            .is_ok_and(|mut refs| refs.next().is_some())
    }

    /// The id (tree or blob) of `path` at a commit snapshot; `None` when
    /// absent or not a commit snapshot.
    pub fn entry_id(&self, snap: &Snapshot, path: &str) -> Option<Oid> {
        let Source::Commit { tree, .. } = snap.source else {
            return None;
        };
        match self.lookup(tree, path, snap) {
            Ok(found) => found.map(|(oid, _)| oid),
            // A submodule that is not in this clone (its commit id) or a
            // symbolic link (its blob): an id that is neither "absent" nor
            // any tree id, so nothing cached matches it; reading the path
            // is refused with the reason.
            Err(_) => {
                let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
                let Ok(Some((parent, true))) = self.lookup(tree, dir, snap) else {
                    return None;
                };
                self.tree_entries(parent, snap)
                    .ok()?
                    .get(name)
                    .map(|(oid, _)| oid)
            }
        }
    }

    /// The tree id of `dir` at a commit snapshot (`None` when absent or not a
    /// commit snapshot). Two equal ids mean identical contents below `dir`.
    pub fn dir_oid(&self, snap: &Snapshot, dir: &str) -> Option<Oid> {
        let Source::Commit { tree, .. } = snap.source else {
            return None;
        };
        match self.lookup(tree, dir, snap) {
            Ok(Some((oid, true))) => Some(oid),
            _ => None,
        }
    }

    /// Whether directory `dir` has identical contents at two commit
    /// snapshots. Walks both paths in step and stops at the first directory
    /// with the same tree id, as `git diff` prunes identical subtrees.
    pub fn same_dir(&self, a: &Snapshot, b: &Snapshot, dir: &str) -> bool {
        let (Source::Commit { tree: ta, .. }, Source::Commit { tree: tb, .. }) =
            (&a.source, &b.source)
        else {
            return false;
        };
        let (mut x, mut y) = (*ta, *tb);
        for part in dir.split('/').filter(|p| !p.is_empty()) {
            if x == y {
                return true;
            }
            let (Ok(ex), Ok(ey)) = (self.tree_entries(x, a), self.tree_entries(y, b)) else {
                return false;
            };
            match (ex.get(part), ey.get(part)) {
                (Some((ox, true)), Some((oy, true))) => (x, y) = (ox, oy),
                _ => return false,
            }
        }
        x == y
    }

    /// Read a file at a snapshot. `Ok(None)` when it does not exist.
    pub fn read(&self, snap: &Snapshot, path: &str) -> Result<Option<Blob>> {
        let blob = match &snap.source {
            Source::Commit { tree, .. } => match self.lookup(*tree, path, snap)? {
                Some((oid, false)) => self.read_blob(oid, snap, path)?,
                _ => return Ok(None),
            },
            Source::Index => {
                let index = self.repo.index().map_err(|source| Error::Git {
                    context: format!("reading the index of {}", self.label),
                    source,
                })?;
                let Some(entry) = index.get_path(Path::new(path), 0) else {
                    return Ok(None);
                };
                if entry.mode == SYMLINK_MODE as u32 {
                    return Err(symlink_refused(path, &snap.label));
                }
                self.read_blob(entry.id, snap, path)?
            }
            Source::WorkTree => {
                let Some(full) = self.worktree_path(path) else {
                    return Ok(None);
                };
                match std::fs::metadata(&full) {
                    Ok(m) if m.is_file() => {
                        if m.len() as usize > MAX_FILE_BYTES {
                            return Err(too_big(path, &snap.label));
                        }
                    }
                    Ok(_) => return Ok(None),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(Error::io(full, e)),
                }
                let data = std::fs::read(&full).map_err(|e| Error::io(&full, e))?;
                let oid =
                    Oid::hash_object(ObjectType::Blob, &data).map_err(|source| Error::Git {
                        context: format!("hashing {path}"),
                        source,
                    })?;
                Blob { oid, data }
            }
        };
        Ok(Some(blob))
    }

    /// Read a file as UTF-8 text; errors name the file and revision.
    pub fn read_text(&self, snap: &Snapshot, path: &str) -> Result<Option<(Oid, String)>> {
        let Some(blob) = self.read(snap, path)? else {
            return Ok(None);
        };
        let text = String::from_utf8(blob.data).map_err(|e| {
            Error::input(format!(
                "{path} at {} is not valid UTF-8 (byte {})",
                snap.label,
                e.utf8_error().valid_up_to()
            ))
        })?;
        Ok(Some((blob.oid, text)))
    }

    /// List a directory at a snapshot, sorted by name. `None` when absent.
    pub fn list_dir(&self, snap: &Snapshot, dir: &str) -> Result<Option<Vec<DirEntry>>> {
        let mut entries = match &snap.source {
            Source::Commit { tree, .. } => {
                let Some((oid, true)) = self.lookup(*tree, dir, snap)? else {
                    return Ok(None);
                };
                let entries = self.tree_entries(oid, snap)?;
                entries
                    .iter()
                    .map(|(name, id, is_dir)| DirEntry {
                        name: name.to_string(),
                        // A submodule is a directory when its objects are here.
                        is_dir: is_dir
                            || (entries.is_gitlink(name)
                                && self.submodule_tree(id, &join_path(dir, name), snap).is_ok()),
                    })
                    .collect::<Vec<_>>()
            }
            Source::Index => {
                let index = self.repo.index().map_err(|source| Error::Git {
                    context: format!("reading the index of {}", self.label),
                    source,
                })?;
                let prefix = if dir.is_empty() {
                    String::new()
                } else {
                    format!("{dir}/")
                };
                let mut out: Vec<DirEntry> = Vec::new();
                for e in index.iter() {
                    let Ok(p) = std::str::from_utf8(&e.path) else {
                        continue;
                    };
                    let Some(rest) = p.strip_prefix(&prefix) else {
                        continue;
                    };
                    let (name, is_dir) = match rest.split_once('/') {
                        Some((d, _)) => (d, true),
                        None => (rest, false),
                    };
                    if out.last().is_none_or(|l| l.name != name) {
                        out.push(DirEntry {
                            name: name.to_string(),
                            is_dir,
                        });
                    }
                }
                if out.is_empty() {
                    return Ok(None);
                }
                out
            }
            Source::WorkTree => {
                let Some(full) = self.worktree_path(dir) else {
                    return Ok(None);
                };
                let Ok(rd) = std::fs::read_dir(&full) else {
                    return Ok(None);
                };
                // As Python's imports see the directory: a symbolic link is
                // what it points to, and only files and directories count
                // (a dangling link, a socket or a pipe is listed as nothing).
                rd.filter_map(|e| {
                    let e = e.ok()?;
                    let mut kind = e.file_type().ok()?;
                    if kind.is_symlink() {
                        kind = std::fs::metadata(e.path()).ok()?.file_type();
                    }
                    (kind.is_dir() || kind.is_file()).then_some(())?;
                    Some(DirEntry {
                        name: e.file_name().into_string().ok()?,
                        is_dir: kind.is_dir(),
                    })
                })
                .collect()
            }
        };
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries.dedup_by(|a, b| a.name == b.name);
        Ok(Some(entries))
    }

    fn worktree_path(&self, path: &str) -> Option<PathBuf> {
        let root = self.workdir()?;
        if Path::new(path)
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return None;
        }
        Some(root.join(path))
    }

    fn find_tree(&self, oid: Oid, snap: &Snapshot) -> Result<git2::Tree<'_>> {
        self.repo
            .find_tree(oid)
            .map_err(|e| self.missing_object(&snap.label, &e))
    }

    /// Read a blob through the object database. The size bound is checked
    /// on the object read (asking its size first walks the delta chain a
    /// second time, a sixth of a cold run).
    fn read_blob(&self, oid: Oid, snap: &Snapshot, path: &str) -> Result<Blob> {
        let odb = self.repo.odb().map_err(|source| Error::Git {
            context: format!("opening the object database of {}", self.label),
            source,
        })?;
        let object = odb.read(oid).map_err(|_| {
            Error::input(format!(
                "{path} at {} cannot be read: object {} is missing{}",
                snap.label,
                short(oid),
                if self.repo.is_shallow() {
                    " (shallow clone)"
                } else {
                    ""
                },
            ))
        })?;
        if object.kind() != ObjectType::Blob {
            return Err(Error::input(format!(
                "{path} at {} is not a file (object {} is a {})",
                snap.label,
                short(oid),
                object.kind()
            )));
        }
        if object.len() > MAX_FILE_BYTES {
            return Err(too_big(path, &snap.label));
        }
        Ok(Blob {
            oid,
            data: object.data().to_vec(),
        })
    }

    /// The files of directory `dir` at a commit snapshot with their blob
    /// ids, sorted by name, from one tree listing (`None` when absent or
    /// not a commit snapshot). Submodules are not files.
    pub fn file_ids(&self, snap: &Snapshot, dir: &str) -> Result<Option<Vec<(String, Oid)>>> {
        let mut files = Vec::new();
        let listed = self.each_file(snap, dir, |name, id| files.push((name.to_string(), id)))?;
        Ok(listed.map(|()| files))
    }

    /// What [`Repo::file_ids`] lists, given to `f` name by name without
    /// copying the names. `None` as there.
    pub fn each_file(
        &self,
        snap: &Snapshot,
        dir: &str,
        mut f: impl FnMut(&str, Oid),
    ) -> Result<Option<()>> {
        let Source::Commit { tree, .. } = snap.source else {
            return Ok(None);
        };
        let Some((oid, true)) = self.lookup(tree, dir, snap)? else {
            return Ok(None);
        };
        let entries = self.tree_entries(oid, snap)?;
        if let Some(link) = entries.symlinks.first() {
            return Err(symlink_refused(&join_path(dir, link), &snap.label));
        }
        for (name, id, is_dir) in entries.iter() {
            if !is_dir && !entries.is_gitlink(name) {
                f(name, id);
            }
        }
        Ok(Some(()))
    }

    /// Read blobs and turn each into a `T` (`f` gets the key the blob came
    /// with), `threads` at most at once. This thread takes the blobs from
    /// `blobs` as it goes (so listing what to read overlaps with the rest)
    /// and reads each, in batches, while the others run `f` on the batches
    /// read: libgit2 shares a pack and its locks between repository handles,
    /// so two readers are slower than one (on the bench, each took 14 ms for
    /// half of 4,532 deltified blobs; one took 8.5 ms for all). Results are
    /// in the order of `blobs`, `None` where a blob could not be read
    /// (missing, not a blob, too large): the caller reads those through
    /// [`Repo::read_blob_at`], which names the failure.
    pub fn map_blobs<K: Send, T: Send>(
        &self,
        blobs: impl IntoIterator<Item = (K, Oid)>,
        threads: usize,
        f: impl Fn(&K, &[u8]) -> T + Sync,
    ) -> Vec<(K, Option<T>)> {
        let odb = self.repo.odb().ok();
        let read = |oid: Oid| {
            let object = odb.as_ref()?.read(oid).ok()?;
            (object.kind() == ObjectType::Blob && object.len() <= MAX_FILE_BYTES).then_some(object)
        };
        if threads < 2 || self.plain_dir.is_some() {
            return blobs
                .into_iter()
                .map(|(key, oid)| {
                    let value = read(oid).map(|o| f(&key, o.data()));
                    (key, value)
                })
                .collect();
        }
        let mut blobs = blobs.into_iter().peekable();
        // Nothing to read (a warm run finds every directory cached): no
        // thread is started.
        if blobs.peek().is_none() {
            return Vec::new();
        }
        let queue = BlobQueue::default();
        // Each worker turns the blobs of the oldest batch read into values.
        let work = |batch: Batch<K>, done: &mut Vec<(usize, K, T)>| {
            let Batch { data, blobs } = batch;
            done.extend(blobs.into_iter().map(|(i, key, range)| {
                let value = f(&key, &data[range]);
                (i, key, value)
            }));
        };
        std::thread::scope(|scope| {
            let workers: Vec<_> = (1..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut done = Vec::new();
                        while let Some(batch) = queue.pop() {
                            work(batch, &mut done);
                        }
                        done
                    })
                })
                .collect();
            // Closed however this thread leaves (a panic too), so that no
            // worker waits for ever.
            let _closing = Closing(&queue);
            let mut mine = Vec::new();
            let mut unread = Vec::new();
            let mut batch = Batch::default();
            let mut n = 0;
            for (i, (key, oid)) in blobs.enumerate() {
                n = i + 1;
                match read(oid) {
                    Some(object) => batch.push(i, key, object.data()),
                    None => unread.push((i, key)),
                }
                if batch.blobs.len() == BATCH {
                    let full = std::mem::take(&mut batch);
                    // When the workers fall behind, this thread takes a
                    // batch too: reading and parsing cost about the same.
                    if let Some(behind) = queue.push(full) {
                        work(behind, &mut mine);
                    }
                }
            }
            work(batch, &mut mine);
            queue.close();
            while let Some(batch) = queue.pop() {
                work(batch, &mut mine);
            }
            let mut out: Vec<Option<(K, Option<T>)>> =
                std::iter::repeat_with(|| None).take(n).collect();
            for (i, key) in unread {
                out[i] = Some((key, None));
            }
            let done = workers.into_iter().flat_map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            });
            for (i, key, value) in done.chain(mine) {
                out[i] = Some((key, Some(value)));
            }
            out.into_iter().flatten().collect()
        })
    }
}

/// Blobs read, each with its place in the input and its key.
/// Their bytes are copied into one buffer (one allocation per batch, freed
/// on the thread that parses it).
struct Batch<K> {
    data: Vec<u8>,
    /// Each blob's place in the input, key and bytes in `data`.
    blobs: Vec<(usize, K, std::ops::Range<usize>)>,
}

impl<K> Default for Batch<K> {
    fn default() -> Self {
        Batch {
            // Most migrations are 0.5-2 KiB.
            data: Vec::with_capacity(BATCH * 1024),
            blobs: Vec::with_capacity(BATCH),
        }
    }
}

impl<K> Batch<K> {
    fn push(&mut self, i: usize, key: K, bytes: &[u8]) {
        let start = self.data.len();
        self.data.extend_from_slice(bytes);
        self.blobs.push((i, key, start..self.data.len()));
    }
}

/// Blobs per batch: enough that locking is rare.
const BATCH: usize = 16;

/// Batches of blobs read by one thread and waiting to be turned into
/// values by the others ([`Repo::map_blobs`]).
struct BlobQueue<K> {
    /// The batches waiting, and whether the reader is done.
    state: std::sync::Mutex<(std::collections::VecDeque<Batch<K>>, bool)>,
    ready: std::sync::Condvar,
}

impl<K> Default for BlobQueue<K> {
    fn default() -> Self {
        BlobQueue {
            state: std::sync::Mutex::new((std::collections::VecDeque::new(), false)),
            ready: std::sync::Condvar::new(),
        }
    }
}

/// Closes a [`BlobQueue`] when dropped.
struct Closing<'q, K>(&'q BlobQueue<K>);

impl<K> Drop for Closing<'_, K> {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl<K> BlobQueue<K> {
    /// Batches waiting past which the reader takes one itself.
    const BACKLOG: usize = 2;

    /// Add a batch; returns the oldest one when too many are waiting.
    fn push(&self, batch: Batch<K>) -> Option<Batch<K>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0.push_back(batch);
        let behind = (state.0.len() > Self::BACKLOG)
            .then(|| state.0.pop_front())
            .flatten();
        drop(state);
        self.ready.notify_one();
        behind
    }

    /// The reader is done: workers stop once the queue is empty (again on
    /// drop of a [`Closing`]).
    fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.ready.notify_all();
    }

    /// The oldest batch, waiting for one; `None` once closed and empty.
    fn pop(&self) -> Option<Batch<K>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(batch) = state.0.pop_front() {
                return Some(batch);
            }
            if state.1 {
                return None;
            }
            state = self.ready.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }
}

fn join_path(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{}/{name}", dir.trim_end_matches('/'))
    }
}

/// The names of the submodules at `path` in a `.gitmodules` file
/// (`[submodule "NAME"]` sections whose `path = PATH`).
fn gitmodules_names(text: &str, path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("[submodule") {
            current = rest
                .trim()
                .trim_end_matches(']')
                .trim()
                .strip_prefix('"')
                .and_then(|n| n.strip_suffix('"'))
                .map(str::to_string);
        } else if let (Some(name), Some((key, value))) = (&current, line.split_once('='))
            && key.trim() == "path"
            && value.trim().trim_matches('"') == path
            && !name.contains("..")
        {
            out.push(name.clone());
        }
    }
    out
}

fn too_big(path: &str, rev: &str) -> Error {
    Error::input(format!(
        "{path} at {rev} is larger than {} MiB; refusing to read it",
        MAX_FILE_BYTES / (1024 * 1024)
    ))
}

/// The 10-character abbreviation of an object id used in messages.
pub fn short(oid: Oid) -> String {
    let mut s = oid.to_string();
    s.truncate(10);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_read_on_every_core_equal_blobs_read_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let raw = Repository::init(dir.path()).unwrap();
        let mut oids: Vec<Oid> = (0..200)
            .map(|i| raw.blob(format!("blob {i}\n").as_bytes()).unwrap())
            .collect();
        // An id the repository lacks, and a tree where a blob is asked for.
        let missing = Oid::hash_object(ObjectType::Blob, b"never written").unwrap();
        let tree = raw.treebuilder(None).unwrap().write().unwrap();
        oids.insert(150, missing);
        oids.insert(7, tree);
        let repo = Repo::open(dir.path()).unwrap();
        let each = |i: &usize, data: &[u8]| (*i, String::from_utf8_lossy(data).into_owned());
        let keyed = || oids.iter().copied().enumerate();
        let serial = repo.map_blobs(keyed(), 1, each);
        let parallel = repo.map_blobs(keyed(), 2, each);
        assert_eq!(serial, parallel);
        assert_eq!(serial.len(), oids.len());
        assert_eq!(serial[0], (0, Some((0, "blob 0\n".to_string()))));
        assert_eq!(serial[7], (7, None), "a tree is not a blob");
        assert_eq!(
            serial[151],
            (151, None),
            "a missing object is left to the caller"
        );
        assert_eq!(serial[201], (201, Some((201, "blob 199\n".to_string()))));
        let none = std::iter::empty::<(usize, Oid)>();
        assert!(repo.map_blobs(none, 2, each).is_empty());
    }

    #[test]
    fn a_panic_while_blobs_are_read_on_every_core_reaches_the_caller() {
        let dir = tempfile::tempdir().unwrap();
        let raw = Repository::init(dir.path()).unwrap();
        let oids: Vec<Oid> = (0..300)
            .map(|i| raw.blob(format!("blob {i}\n").as_bytes()).unwrap())
            .collect();
        let repo = Repo::open(dir.path()).unwrap();
        // Whichever thread runs it (the reader or a worker), the panic
        // comes back instead of leaving a thread waiting for more blobs.
        for at in [0, 17, 299] {
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let keyed = oids.iter().copied().enumerate();
                repo.map_blobs(keyed, 3, |i, _| assert_ne!(*i, at, "planted"))
            }));
            assert!(run.is_err(), "the panic at blob {at} is lost");
        }
    }

    #[test]
    fn a_plain_directory_reads_like_a_working_tree_and_has_no_revisions() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("shop/migrations")).unwrap();
        std::fs::write(dir.path().join("manage.py"), "print()\n").unwrap();
        std::fs::write(dir.path().join("shop/migrations/__init__.py"), "").unwrap();
        let repo = Repo::open_dir(dir.path()).unwrap();
        assert!(repo.is_plain_dir());
        assert!(!dir.path().join(".git").exists(), "nothing is created");
        let snap = repo.worktree_snapshot();
        let (_, text) = repo.read_text(&snap, "manage.py").unwrap().unwrap();
        assert_eq!(text, "print()\n");
        let names: Vec<String> = repo
            .list_dir(&snap, "shop/migrations")
            .unwrap()
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["__init__.py"]);
        assert!(repo.read(&snap, "../escape").unwrap().is_none());
        assert!(repo.snapshot("HEAD").is_err());
        assert!(Repo::open_dir(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn gitmodules_names_by_path() {
        let text = "[submodule \"libs/app\"]\n\tpath = subshop\n\turl = ../app.git\n[submodule \"other\"]\n\tpath = other\n[submodule \"../escape\"]\n\tpath = subshop\n";
        assert_eq!(
            gitmodules_names(text, "subshop"),
            vec!["libs/app".to_string()]
        );
        assert_eq!(gitmodules_names(text, "other"), vec!["other".to_string()]);
        assert!(gitmodules_names(text, "none").is_empty());
    }
}
