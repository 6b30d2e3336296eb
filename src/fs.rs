//! The one way tagback writes files (hooks, scripts, ledger records, the parse
//! cache): a temporary file in the same directory, flushed to disk, then
//! renamed over the target, so no reader ever sees half a file and an
//! interrupted write leaves only a `.tmp-*.partial` file that nothing reads.

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
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .suffix(".partial")
        .tempfile_in(dir)
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
}
