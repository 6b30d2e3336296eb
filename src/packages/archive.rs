//! The files of one package version, read from its wheel (zip) or sdist
//! (`.tar.gz`) without running any of its code. Only what the migration
//! graph needs is kept: `__init__.py` files (which directories are
//! packages), `apps.py` (app configs and their labels) and the migration
//! modules.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

/// Bound on one kept file (as for every file tagback reads).
const MAX_FILE: u64 = 8 << 20;
/// Bound on the files of an archive, and on the bytes kept from one.
const MAX_ENTRIES: usize = 200_000;
const MAX_KEPT: u64 = 256 << 20;

/// What was kept of a package version, by path relative to site-packages
/// (`taggit/migrations/0001_initial.py`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageFiles {
    /// Kept files' text.
    pub files: BTreeMap<String, String>,
    /// Top-level import names the archive installs (`taggit`, `django`).
    pub tops: BTreeSet<String>,
}

impl PackageFiles {
    /// The files written below a new temporary directory (for tests that
    /// read the same files from disk).
    #[cfg(test)]
    pub(crate) fn on_disk(&self) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in &self.files {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, text).unwrap();
        }
        dir
    }

    /// A kept file's text.
    pub fn get(&self, path: &str) -> Option<&str> {
        self.files.get(path).map(String::as_str)
    }

    /// Whether `path` is kept.
    pub fn has(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }
}

/// Whether a path (relative to site-packages) is one the graph needs.
pub fn wanted(path: &str) -> bool {
    let Some((dir, name)) = path.rsplit_once('/') else {
        return path == "__init__.py";
    };
    if !name.ends_with(".py")
        || dir
            .split('/')
            .any(|p| p.ends_with(".dist-info") || p.ends_with(".data"))
    {
        return false;
    }
    name == "__init__.py"
        || name == "apps.py"
        || dir == "migrations"
        || dir.ends_with("/migrations")
}

/// Read an archive (its bytes) by its file name's kind (`.whl`,
/// `.tar.gz`, `.tgz`, `.zip`).
pub fn read(file_name: &str, data: &[u8]) -> Result<PackageFiles, String> {
    let name = file_name.to_ascii_lowercase();
    if name.ends_with(".whl") {
        read_zip(data, false)
    } else if name.ends_with(".zip") {
        read_zip(data, true)
    } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        read_tar(flate2::read::GzDecoder::new(data))
    } else {
        Err(format!("{file_name} is neither a wheel nor an sdist"))
    }
}

fn read_zip(data: &[u8], sdist: bool) -> Result<PackageFiles, String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(data))
        .map_err(|e| format!("not a zip archive: {e}"))?;
    if zip.len() > MAX_ENTRIES {
        return Err(format!("{} entries (more than {MAX_ENTRIES})", zip.len()));
    }
    let names: Vec<String> = zip
        .file_names()
        .map(|n| n.map(|c| c.into_owned()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad zip entry name: {e}"))?;
    let strip = if sdist {
        sdist_prefix(names.iter().map(String::as_str))
    } else {
        String::new()
    };
    let mut out = PackageFiles::default();
    let mut kept = 0u64;
    for (i, raw) in names.iter().enumerate() {
        let Some(rel) = relative(raw, &strip) else {
            continue;
        };
        note_top(&mut out, &rel);
        if !wanted(&rel) {
            continue;
        }
        let mut entry = zip.by_index(i).map_err(|e| format!("{raw}: {e}"))?;
        if entry.size() > MAX_FILE {
            return Err(format!("{raw} is larger than 8 MiB"));
        }
        kept += entry.size();
        if kept > MAX_KEPT {
            return Err("more than 256 MiB of Python files".to_string());
        }
        let mut text = String::new();
        (&mut entry)
            .take(MAX_FILE + 1)
            .read_to_string(&mut text)
            .map_err(|e| format!("{raw}: {e}"))?;
        out.files.insert(rel, text);
    }
    Ok(out)
}

fn read_tar(reader: impl Read) -> Result<PackageFiles, String> {
    let mut tar = tar::Archive::new(reader);
    let mut entries: Vec<(String, String)> = Vec::new();
    let mut all: Vec<String> = Vec::new();
    let mut kept = 0u64;
    for entry in tar
        .entries()
        .map_err(|e| format!("not a tar archive: {e}"))?
    {
        let mut entry = entry.map_err(|e| format!("broken tar archive: {e}"))?;
        if all.len() >= MAX_ENTRIES {
            return Err(format!("more than {MAX_ENTRIES} entries"));
        }
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(|e| format!("bad path in tar: {e}"))?
            .to_string_lossy()
            .into_owned();
        all.push(path.clone());
        // The sdist's own directory is stripped below; decide on the rest.
        let rel = path.split_once('/').map_or("", |(_, r)| r);
        let rel = rel.strip_prefix("src/").unwrap_or(rel);
        if !wanted(rel) {
            continue;
        }
        if entry.size() > MAX_FILE {
            return Err(format!("{path} is larger than 8 MiB"));
        }
        kept += entry.size();
        if kept > MAX_KEPT {
            return Err("more than 256 MiB of Python files".to_string());
        }
        let mut text = String::new();
        (&mut entry)
            .take(MAX_FILE + 1)
            .read_to_string(&mut text)
            .map_err(|e| format!("{path}: {e}"))?;
        entries.push((path, text));
    }
    let strip = sdist_prefix(all.iter().map(String::as_str));
    let mut out = PackageFiles::default();
    for p in &all {
        if let Some(rel) = relative(p, &strip) {
            note_top(&mut out, &rel);
        }
    }
    for (p, text) in entries {
        if let Some(rel) = relative(&p, &strip) {
            out.files.insert(rel, text);
        }
    }
    Ok(out)
}

/// An sdist holds `NAME-VERSION/` and, in the src layout, `src/` below it.
fn sdist_prefix<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    let Some(first) = names
        .first()
        .and_then(|n| n.split_once('/'))
        .map(|(d, _)| d)
    else {
        return String::new();
    };
    let top = format!("{first}/");
    let src = format!("{first}/src/");
    if names
        .iter()
        .any(|n| n.starts_with(&src) && n.ends_with("/__init__.py"))
    {
        src
    } else {
        top
    }
}

fn relative(raw: &str, strip: &str) -> Option<String> {
    let rel = raw.strip_prefix(strip)?;
    if rel.is_empty()
        || rel
            .split('/')
            .any(|p| p == ".." || p.is_empty() && rel.ends_with('/'))
    {
        return None;
    }
    Some(rel.to_string())
}

/// A top-level module: `NAME/…py` or `NAME.py` (not metadata, tests or docs
/// of an sdist, which are not installed packages: only directories with an
/// `__init__.py` are kept as tops by the caller's lookups anyway).
pub(super) fn note_top(out: &mut PackageFiles, rel: &str) {
    if !rel.ends_with(".py") {
        return;
    }
    let top = match rel.split_once('/') {
        Some((t, _)) => t,
        None => rel.trim_end_matches(".py"),
    };
    if top.ends_with(".dist-info") || top.ends_with(".data") || top.ends_with(".egg-info") {
        return;
    }
    out.tops.insert(top.to_string());
}

#[cfg(test)]
mod tests {
    use super::{read, wanted};

    #[test]
    fn an_sdist_is_read_below_its_own_directory_and_src() {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, text) in [
            ("tiny-1.0/PKG-INFO", "Name: tiny\n"),
            ("tiny-1.0/setup.py", "import os\n"),
            ("tiny-1.0/src/tiny/__init__.py", ""),
            ("tiny-1.0/src/tiny/apps.py", "x = 1\n"),
            ("tiny-1.0/src/tiny/models.py", "y = 2\n"),
            ("tiny-1.0/src/tiny/migrations/__init__.py", ""),
            ("tiny-1.0/src/tiny/migrations/0001_initial.py", "z = 3\n"),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(text.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, path, text.as_bytes()).unwrap();
        }
        let raw = tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        let files = read("tiny-1.0.tar.gz", &gz.finish().unwrap()).unwrap();
        let kept: Vec<&str> = files.files.keys().map(String::as_str).collect();
        assert_eq!(
            kept,
            [
                "tiny/__init__.py",
                "tiny/apps.py",
                "tiny/migrations/0001_initial.py",
                "tiny/migrations/__init__.py"
            ]
        );
        assert!(files.tops.contains("tiny"));
        assert!(read("tiny-1.0.tar.gz", b"not gzip").is_err());
        assert!(read("tiny-1.0.whl", b"not zip").is_err());
    }

    #[test]
    fn only_the_files_the_graph_needs() {
        assert!(wanted("taggit/__init__.py"));
        assert!(wanted("taggit/apps.py"));
        assert!(wanted("taggit/migrations/0001_initial.py"));
        assert!(wanted("django/contrib/auth/migrations/__init__.py"));
        assert!(!wanted("taggit/models.py"));
        assert!(!wanted("taggit/migrations/README"));
        assert!(!wanted("taggit-5.0.dist-info/RECORD"));
    }
}
