//! What was read from a package archive, cached by (name, version, archive
//! SHA-256): `CACHE/NAME/SHA256/VERSION.files`. The archive is found and
//! hashed on every run (the key is its hash, so this cache never decides
//! which package is read); this only saves inflating it again.
//!
//! As every tagback cache file, it starts with a checksum of its key and
//! content (here a SHA-256; the parse cache, read on every run, uses XXH3): a damaged, truncated or swapped file is a miss.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::archive::PackageFiles;
use crate::fs::{self, Mode};

const MAGIC: &str = "tagback-package-files 1\n";

fn path(cache: &Path, norm: &str, version: &str, sha256: &str) -> PathBuf {
    cache
        .join(norm)
        .join(sha256)
        .join(format!("{version}.files"))
}

fn checksum(key: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(key.as_bytes());
    h.update([0]);
    h.update(body);
    crate::hex::encode(&h.finalize())
}

/// The cached files of an archive, when the cache file is intact.
pub fn get(cache: &Path, norm: &str, version: &str, sha256: &str) -> Option<PackageFiles> {
    let data = std::fs::read(path(cache, norm, version, sha256)).ok()?;
    let (sum, body) = data.split_at_checked(65)?;
    let key = format!("{norm}/{version}/{sha256}");
    if sum[64] != b'\n' || sum[..64] != *checksum(&key, body).as_bytes() {
        return None;
    }
    decode(body)
}

/// Store what was read (a cache that cannot be written is only slower).
pub fn put(cache: &Path, norm: &str, version: &str, sha256: &str, files: &PackageFiles) {
    let mut body = MAGIC.as_bytes().to_vec();
    for t in &files.tops {
        body.extend_from_slice(format!("T\t{t}\n").as_bytes());
    }
    for (p, text) in &files.files {
        body.extend_from_slice(format!("F\t{p}\t{}\n", text.len()).as_bytes());
        body.extend_from_slice(text.as_bytes());
    }
    let key = format!("{norm}/{version}/{sha256}");
    let mut out = checksum(&key, &body).into_bytes();
    out.push(b'\n');
    out.extend_from_slice(&body);
    let target = path(cache, norm, version, sha256);
    if let Some(dir) = target.parent()
        && std::fs::create_dir_all(dir).is_ok()
    {
        let _ = fs::write_atomic(&target, &out, Mode::ReplaceCache);
    }
}

fn decode(body: &[u8]) -> Option<PackageFiles> {
    let mut rest = body.strip_prefix(MAGIC.as_bytes())?;
    let mut out = PackageFiles::default();
    while !rest.is_empty() {
        let nl = rest.iter().position(|b| *b == b'\n')?;
        let line = std::str::from_utf8(&rest[..nl]).ok()?;
        rest = &rest[nl + 1..];
        let mut parts = line.split('\t');
        match (parts.next()?, parts.next()?, parts.next()) {
            ("T", top, None) => {
                out.tops.insert(top.to_string());
            }
            ("F", p, Some(len)) => {
                let len: usize = len.parse().ok()?;
                let text = std::str::from_utf8(rest.get(..len)?).ok()?;
                out.files.insert(p.to_string(), text.to_string());
                rest = &rest[len..];
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_any_damage_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = PackageFiles::default();
        files.tops.insert("taggit".into());
        files.files.insert(
            "taggit/migrations/0001_initial.py".into(),
            "x = 1\n\té\n".into(),
        );
        files
            .files
            .insert("taggit/__init__.py".into(), String::new());
        put(dir.path(), "django-taggit", "5.0.1", "ab", &files);
        assert_eq!(
            get(dir.path(), "django-taggit", "5.0.1", "ab"),
            Some(files.clone())
        );
        // Another key (version, hash) never reads this file.
        assert_eq!(get(dir.path(), "django-taggit", "5.0.2", "ab"), None);
        let p = path(dir.path(), "django-taggit", "5.0.1", "ab");
        let good = std::fs::read(&p).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x20;
            std::fs::write(&p, &bad).unwrap();
            assert_eq!(
                get(dir.path(), "django-taggit", "5.0.1", "ab"),
                None,
                "byte {i}"
            );
        }
        std::fs::write(&p, &good[..good.len() - 1]).unwrap();
        assert_eq!(get(dir.path(), "django-taggit", "5.0.1", "ab"), None);
    }
}
