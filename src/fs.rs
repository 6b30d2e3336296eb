//! The one way tagback writes files (hooks, scripts, ledger records, the parse
//! cache): a temporary file in the same directory, flushed to disk, then
//! renamed over the target, so no reader ever sees half a file and an
//! interrupted write leaves only a `.tmp-*.partial` file that nothing reads
//! (for the ledger, outside the records directory: [`write_atomic_via`]).

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// How the target is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Replace the target if it exists.
    Replace,
    /// Replace the target and make it executable (mode 0755).
    ReplaceExecutable,
    /// Fail if the target exists (never overwrite another writer's file).
    CreateNew,
    /// Replace the target without waiting for the disk: for the parse
    /// cache, whose readers check every file and re-derive what is lost.
    ReplaceCache,
}

/// Write `contents` to `path` atomically, creating its directory.
pub fn write_atomic(path: &Path, contents: &[u8], mode: Mode) -> Result<()> {
    write_atomic_via(path, contents, mode, None)
}

/// [`write_atomic`] with the temporary file in `staging` rather than next to
/// the target, so that a write killed halfway leaves nothing in the target's
/// directory (the ledger: `git add .tagback` must never pick up a partial
/// file). Falls back to the target's directory when `staging` is on another
/// file system (a rename cannot cross it).
pub fn write_atomic_via(
    path: &Path,
    contents: &[u8],
    mode: Mode,
    staging: Option<&Path>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let staging = staging.filter(|s| std::fs::create_dir_all(s).is_ok() && same_device(s, dir));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .suffix(".partial")
        .tempfile_in(staging.unwrap_or(dir))
        .map_err(|e| Error::io(dir, e))?;
    tmp.write_all(contents)
        .map_err(|e| Error::io(tmp.path(), e))?;
    let durable = mode != Mode::ReplaceCache;
    if durable {
        tmp.as_file()
            .sync_all()
            .map_err(|e| Error::io(tmp.path(), e))?;
    }
    if mode == Mode::ReplaceExecutable {
        set_executable(tmp.path())?;
    }
    match mode {
        Mode::CreateNew => tmp.persist_noclobber(path).map(drop),
        _ => tmp.persist(path).map(drop),
    }
    .map_err(|e| Error::io(path, e.error))?;
    if durable && let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(unix)]
fn same_device(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_device(_: &Path, _: &Path) -> bool {
    false
}

#[cfg(unix)]
fn set_executable(p: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).map_err(|e| Error::io(p, e))
}

#[cfg(not(unix))]
fn set_executable(_: &Path) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_creates_new_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/file");
        write_atomic(&p, b"one", Mode::Replace).unwrap();
        write_atomic(&p, b"two", Mode::ReplaceExecutable).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert!(write_atomic(&p, b"three", Mode::CreateNew).is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("file")]);
    }

    #[test]
    fn staged_writes_leave_nothing_but_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("records/r.json");
        let staging = dir.path().join("git/tagback/tmp");
        write_atomic_via(&target, b"{}", Mode::CreateNew, Some(&staging)).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"{}");
        assert!(write_atomic_via(&target, b"x", Mode::CreateNew, Some(&staging)).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"{}");
        assert_eq!(
            std::fs::read_dir(target.parent().unwrap()).unwrap().count(),
            1
        );
        assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0);
    }
}
