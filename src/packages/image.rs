//! A package version as installed in a local Docker image, read without
//! running the image: `docker image save` streams the image's layers (a tar
//! of tars, in both the classic and the OCI layout, layers plain or gzip),
//! they are applied in the manifest's order honouring whiteouts (`.wh.NAME`
//! removes NAME from the layers below, `.wh..wh..opq` empties a directory of
//! them), and the distribution's `NAME-VERSION.dist-info` in a
//! `site-packages` (or `dist-packages`) directory says, through its
//! `RECORD`, which files the package installed. Only what the graph needs is
//! kept (as for archives: `__init__.py`, `apps.py`, migrations, and the
//! dist-info's `RECORD` and `METADATA` headers).
//!
//! The image is named by the stack (`image:` at each revision) and asked
//! for by its id (`docker image inspect`), so a tag that moves between the
//! two calls cannot mix two images. What was read is cached by (name,
//! version, image id) — the id is the SHA-256 of the image's configuration,
//! which holds the digests of its layers — in the package cache, whose files
//! are checksummed: a damaged or half-written entry is a miss.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use super::archive::{self, PackageFiles};
use super::cache;
use super::pins::normalize;

/// Bound on one kept file, and on what is kept of one image.
const MAX_FILE: u64 = 8 << 20;
const MAX_KEPT: u64 = 512 << 20;
/// Bound on `manifest.json`.
const MAX_MANIFEST: u64 = 16 << 20;

/// A kept file of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    /// Its text.
    Text(String),
    /// There, but not readable as a package file (why).
    Unreadable(String),
}

/// What one layer says about the paths tagback looks at.
#[derive(Debug, Default)]
struct Layer {
    files: Vec<(String, Node)>,
    /// Paths removed from the layers below (`DIR/.wh.NAME`).
    whiteouts: Vec<String>,
    /// Directories whose contents in the layers below are hidden
    /// (`DIR/.wh..wh..opq`).
    opaque: Vec<String>,
    kept: u64,
}

/// The kept files of an image, its layers applied in order.
#[derive(Debug, Default)]
pub struct Site {
    files: BTreeMap<String, Node>,
}

/// Read `dist` at `version` from `image` (a reference the local Docker
/// Engine knows). `Err` says why the image cannot provide it: docker
/// missing, the image not local, the package not installed there or at
/// another version.
pub fn read(
    image: &str,
    norm: &str,
    version: &str,
    cache_dir: Option<&Path>,
) -> Result<PackageFiles, String> {
    let id = image_id(image)?;
    let key = format!("image-{}", id.trim_start_matches("sha256:"));
    if let Some(dir) = cache_dir
        && let Some(files) = cache::get(dir, norm, version, &key)
    {
        return Ok(files);
    }
    let site = site(&id);
    let site = site
        .as_ref()
        .as_ref()
        .map_err(|e| format!("image {image}: {e}"))?;
    let files = site
        .dist_files(norm, version)
        .map_err(|e| format!("image {image}: {e}"))?;
    if let Some(dir) = cache_dir {
        cache::put(dir, norm, version, &key, &files);
    }
    Ok(files)
}

/// Images read in this process, by id (a check reads the pair twice: the
/// plan and the rollback of an upgrade).
static READ: Mutex<BTreeMap<String, Arc<Result<Site, String>>>> = Mutex::new(BTreeMap::new());

fn site(id: &str) -> Arc<Result<Site, String>> {
    if let Some(r) = READ.lock().ok().and_then(|m| m.get(id).cloned()) {
        return r;
    }
    let r = Arc::new(save(id));
    if let Ok(mut m) = READ.lock() {
        m.insert(id.to_string(), r.clone());
    }
    r
}

fn docker() -> Command {
    let mut c = Command::new("docker");
    c.stdin(Stdio::null());
    c
}

/// The image's id (`sha256:…`), or why the image is not available.
fn image_id(image: &str) -> Result<String, String> {
    if image.starts_with('-') {
        return Err(format!("{image:?} is not an image reference"));
    }
    let out = docker()
        .args(["image", "inspect", "--format", "{{.Id}}", image])
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                format!("image {image}: docker is not installed (no `docker` on PATH)")
            }
            _ => format!("image {image}: docker cannot be run: {e}"),
        })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        return Err(
            if first.contains("No such image") || first.contains("No such object") {
                format!(
                    "image {image} is not in the local Docker Engine (`docker image ls` does not list it)"
                )
            } else {
                format!(
                    "image {image}: docker image inspect failed: {}",
                    first.trim()
                )
            },
        );
    }
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let hex = id.strip_prefix("sha256:").unwrap_or("");
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "image {image}: docker image inspect gave no image id ({id:?})"
        ));
    }
    Ok(id)
}

/// `docker image save ID`, read as it streams.
fn save(id: &str) -> Result<Site, String> {
    let mut child = docker()
        .args(["image", "save", id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("docker image save cannot be run: {e}"))?;
    let Some(stdout) = child.stdout.take() else {
        let _ = child.kill();
        let _ = child.wait();
        return Err("docker image save gave no output".to_string());
    };
    let mut stdout = BufReader::with_capacity(1 << 20, stdout);
    let read = read_saved(&mut stdout);
    if read.is_err() {
        let _ = child.kill();
    } else {
        // The tar's end may be followed by padding.
        let _ = std::io::copy(&mut stdout, &mut std::io::sink());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("docker image save: {e}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        return Err(format!(
            "docker image save failed: {}",
            if first.is_empty() {
                out.status.to_string()
            } else {
                first.trim().to_string()
            }
        ));
    }
    read
}

/// A path in a tar, without `./`, a leading `/` or a trailing `/`.
fn clean(path: &str) -> String {
    let p = path.trim_start_matches("./").trim_start_matches('/');
    p.trim_end_matches('/').to_string()
}

/// Read the output of `docker image save` (one image).
fn read_saved(reader: impl Read) -> Result<Site, String> {
    let mut tar = tar::Archive::new(reader);
    let mut layers: BTreeMap<String, Result<Layer, String>> = BTreeMap::new();
    let mut manifest: Option<Vec<u8>> = None;
    for entry in tar
        .entries()
        .map_err(|e| format!("docker image save: not a tar stream: {e}"))?
    {
        let mut entry = entry.map_err(|e| format!("docker image save: broken tar stream: {e}"))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = clean(&entry.path().map_err(|e| e.to_string())?.to_string_lossy());
        if path == "manifest.json" {
            let mut data = Vec::new();
            (&mut entry)
                .take(MAX_MANIFEST)
                .read_to_end(&mut data)
                .map_err(|e| format!("manifest.json: {e}"))?;
            manifest = Some(data);
        } else if path.ends_with("/layer.tar") || path.starts_with("blobs/") {
            // Blobs also hold the configuration and manifests: only the
            // layers the manifest lists are looked at below.
            layers.insert(path, read_layer(&mut entry));
        }
    }
    let manifest = manifest.ok_or("docker image save gave no manifest.json")?;
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(rename = "Layers")]
        layers: Vec<String>,
    }
    let entries: Vec<Entry> =
        serde_json::from_slice(&manifest).map_err(|e| format!("manifest.json: {e}"))?;
    let [entry] = entries.as_slice() else {
        return Err(format!(
            "manifest.json describes {} images, not one",
            entries.len()
        ));
    };
    let mut ordered = Vec::new();
    for l in &entry.layers {
        match layers.remove(&clean(l)) {
            Some(Ok(layer)) => ordered.push(layer),
            Some(Err(e)) => return Err(format!("layer {l}: {e}")),
            None => return Err(format!("docker image save gave no layer {l}")),
        }
    }
    merge(ordered)
}

/// Apply layers in order: each one's whiteouts hide what the layers below
/// hold, then its files are added.
fn merge(layers: Vec<Layer>) -> Result<Site, String> {
    let mut files: BTreeMap<String, Node> = BTreeMap::new();
    let mut kept = 0u64;
    for layer in layers {
        for dir in &layer.opaque {
            remove_below(&mut files, dir);
        }
        for path in &layer.whiteouts {
            files.remove(path);
            remove_below(&mut files, path);
        }
        kept += layer.kept;
        if kept > MAX_KEPT {
            return Err("more than 512 MiB of package files".to_string());
        }
        files.extend(layer.files);
    }
    Ok(Site { files })
}

fn remove_below(files: &mut BTreeMap<String, Node>, dir: &str) {
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let doomed: Vec<String> = files
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k.clone())
        .collect();
    for k in doomed {
        files.remove(&k);
    }
}

/// `(site dir, path below it)` when `path` is inside a `site-packages` or
/// `dist-packages` directory.
fn split_site(path: &str) -> Option<(&str, &str)> {
    let mut at = 0;
    for part in path.split('/') {
        let end = at + part.len();
        if part == "site-packages" || part == "dist-packages" {
            let rest = path.get(end + 1..)?;
            return (!rest.is_empty()).then(|| (&path[..end], rest));
        }
        at = end + 1;
    }
    None
}

/// Whether a layer's file is one tagback keeps.
fn keep(path: &str) -> bool {
    let Some((_, rel)) = split_site(path) else {
        return false;
    };
    match rel.split_once('/') {
        Some((top, file)) if top.ends_with(".dist-info") => file == "RECORD" || file == "METADATA",
        _ => archive::wanted(rel),
    }
}

/// One layer (plain or gzip tar).
fn read_layer(reader: impl Read) -> Result<Layer, String> {
    let mut buf = BufReader::with_capacity(1 << 16, reader);
    let head = buf.fill_buf().map_err(|e| e.to_string())?;
    if head.starts_with(&[0x1f, 0x8b]) {
        read_layer_tar(flate2::read::GzDecoder::new(buf))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Err("the layer is zstd-compressed, which tagback does not read".to_string())
    } else {
        read_layer_tar(buf)
    }
}

fn read_layer_tar(reader: impl Read) -> Result<Layer, String> {
    let mut tar = tar::Archive::new(reader);
    let mut out = Layer::default();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for entry in tar.entries().map_err(|e| format!("not a tar: {e}"))? {
        let mut entry = entry.map_err(|e| format!("broken tar: {e}"))?;
        let path = clean(&entry.path().map_err(|e| e.to_string())?.to_string_lossy());
        let (dir, name) = match path.rsplit_once('/') {
            Some((d, n)) => (d, n),
            None => ("", path.as_str()),
        };
        if name == ".wh..wh..opq" {
            out.opaque.push(dir.to_string());
            continue;
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            out.whiteouts.push(if dir.is_empty() {
                hidden.to_string()
            } else {
                format!("{dir}/{hidden}")
            });
            continue;
        }
        if !keep(&path) {
            continue;
        }
        let kind = entry.header().entry_type();
        let node = if kind.is_file() {
            if entry.size() > MAX_FILE {
                Node::Unreadable("larger than 8 MiB".to_string())
            } else {
                let mut data = Vec::new();
                (&mut entry)
                    .take(MAX_FILE + 1)
                    .read_to_end(&mut data)
                    .map_err(|e| format!("{path}: {e}"))?;
                out.kept += data.len() as u64;
                match String::from_utf8(data) {
                    Ok(mut text) => {
                        if path.ends_with(".dist-info/METADATA") {
                            // Only the headers (the description can be long).
                            if let Some(end) = text.find("\n\n") {
                                text.truncate(end + 1);
                            }
                        }
                        Node::Text(text)
                    }
                    Err(_) => Node::Unreadable("not UTF-8 text".to_string()),
                }
            }
        } else if kind.is_hard_link() {
            let target = entry
                .link_name()
                .ok()
                .flatten()
                .map(|t| clean(&t.to_string_lossy()))
                .unwrap_or_default();
            match index.get(&target).map(|&i| out.files[i].1.clone()) {
                Some(node) => node,
                None => Node::Unreadable(format!("a hard link to {target}, which was not read")),
            }
        } else if kind.is_symlink() {
            let target = entry
                .link_name()
                .ok()
                .flatten()
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            Node::Unreadable(format!("a symbolic link to {target}"))
        } else {
            continue;
        };
        match index.get(&path) {
            Some(&i) => out.files[i].1 = node,
            None => {
                index.insert(path.clone(), out.files.len());
                out.files.push((path, node));
            }
        }
    }
    Ok(out)
}

/// The version a `METADATA`'s headers give.
fn metadata_version(text: &str) -> Option<&str> {
    text.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix("Version:"))
        .map(str::trim)
}

/// The first field of a `RECORD` line (CSV: quoted when it holds a comma).
fn record_path(line: &str) -> String {
    if let Some(rest) = line.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    out.push('"');
                } else {
                    break;
                }
            } else {
                out.push(c);
            }
        }
        out
    } else {
        line.split(',').next().unwrap_or_default().to_string()
    }
}

impl Site {
    /// The files `norm` at `version` installed, by path below its
    /// site-packages directory (as an archive's).
    fn dist_files(&self, norm: &str, version: &str) -> Result<PackageFiles, String> {
        // (site dir, dist-info dir, version)
        let mut found: Vec<(String, String, String)> = Vec::new();
        for path in self.files.keys() {
            let Some(info) = path.strip_suffix("/RECORD") else {
                continue;
            };
            let Some((site, dist_info)) = split_site(info) else {
                continue;
            };
            let Some((name, ver)) = dist_info
                .strip_suffix(".dist-info")
                .and_then(|s| s.rsplit_once('-'))
            else {
                continue;
            };
            if dist_info.contains('/') || normalize(name) != norm {
                continue;
            }
            let meta = match self.files.get(&format!("{info}/METADATA")) {
                Some(Node::Text(t)) => metadata_version(t).map(str::to_string),
                _ => None,
            };
            found.push((
                site.to_string(),
                info.to_string(),
                meta.unwrap_or_else(|| ver.to_string()),
            ));
        }
        let Some((site, info, installed)) = found.first().cloned() else {
            return Err(format!(
                "no {norm} is installed in it (no {}-*.dist-info in a site-packages directory)",
                norm.replace('-', "_")
            ));
        };
        if let Some((_, other, v)) = found
            .iter()
            .find(|(_, _, v)| !super::index::same_version(v, &installed))
        {
            return Err(format!(
                "it installs {norm} twice, {installed} (/{info}) and {v} (/{other}): which one Python imports depends on sys.path"
            ));
        }
        if !super::index::same_version(&installed, version) {
            return Err(format!(
                "it installs {norm} {installed} (/{info}), not {version}"
            ));
        }
        let record = match self.files.get(&format!("{info}/RECORD")) {
            Some(Node::Text(t)) => t,
            Some(Node::Unreadable(why)) => return Err(format!("/{info}/RECORD is {why}")),
            None => return Err(format!("/{info}/RECORD is missing")),
        };
        let mut out = PackageFiles::default();
        for line in record.lines().filter(|l| !l.trim().is_empty()) {
            let rel = record_path(line);
            if rel.starts_with('/') || rel.split('/').any(|p| p == ".." || p.is_empty()) {
                continue;
            }
            archive::note_top(&mut out, &rel);
            if !archive::wanted(&rel) {
                continue;
            }
            // A file a later layer removed is not there for Python either.
            match self.files.get(&format!("{site}/{rel}")) {
                Some(Node::Text(t)) => {
                    out.files.insert(rel, t.clone());
                }
                Some(Node::Unreadable(why)) => {
                    return Err(format!("/{site}/{rel} is {why}"));
                }
                None => {}
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar of `(path, text)`; text `None` is a directory, `Some("->T")` a
    /// hard link to T.
    fn tar_of(entries: &[(&str, Option<&str>)]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, text) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            match text {
                None => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    h.set_cksum();
                    tar.append_data(&mut h, path, std::io::empty()).unwrap();
                }
                Some(t) if t.starts_with("->") => {
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_size(0);
                    tar.append_link(&mut h, path, &t[2..]).unwrap();
                }
                Some(t) => {
                    h.set_size(t.len() as u64);
                    h.set_cksum();
                    tar.append_data(&mut h, path, t.as_bytes()).unwrap();
                }
            }
        }
        tar.into_inner().unwrap()
    }

    /// A `docker image save` stream of these layers (classic layout), the
    /// second and later gzip-compressed as in the containerd store.
    fn saved(layers: &[Vec<u8>]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        let mut names = Vec::new();
        for (i, l) in layers.iter().enumerate() {
            let data = if i == 0 {
                l.clone()
            } else {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                std::io::Write::write_all(&mut gz, l).unwrap();
                gz.finish().unwrap()
            };
            let name = format!("layer{i}/layer.tar");
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, &name, data.as_slice()).unwrap();
            names.push(name);
        }
        // An unlisted blob and the manifest last, as docker writes them.
        let junk = b"{\"architecture\":\"amd64\"}";
        let mut h = tar::Header::new_gnu();
        h.set_size(junk.len() as u64);
        h.set_cksum();
        tar.append_data(&mut h, "blobs/sha256/abc", &junk[..])
            .unwrap();
        let manifest = serde_json::to_vec(
            &serde_json::json!([{"Config": "c.json", "RepoTags": null, "Layers": names}]),
        )
        .unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(manifest.len() as u64);
        h.set_cksum();
        tar.append_data(&mut h, "manifest.json", manifest.as_slice())
            .unwrap();
        tar.into_inner().unwrap()
    }

    const SP: &str = "venv/lib/python3.11/site-packages";

    fn p(rel: &str) -> String {
        format!("{SP}/{rel}")
    }

    fn record(files: &[&str]) -> String {
        files.iter().map(|f| format!("{f},sha256=x,1\n")).collect()
    }

    fn base_layer() -> Vec<u8> {
        let rec = record(&[
            "taggit/__init__.py",
            "taggit/apps.py",
            "taggit/models.py",
            "taggit/migrations/__init__.py",
            "taggit/migrations/0001_initial.py",
            "taggit/migrations/0002_old.py",
            "taggit/migrations/__pycache__/0001_initial.cpython-311.pyc",
            "django_taggit-4.0.0.dist-info/RECORD",
            "../../../bin/taggit-tool",
        ]);
        tar_of(&[
            ("./venv/", None),
            (&p("taggit/__init__.py"), Some("")),
            (&p("taggit/apps.py"), Some("class A: name = 'taggit'\n")),
            (&p("taggit/models.py"), Some("big = 1\n")),
            (&p("taggit/migrations/__init__.py"), Some("")),
            (&p("taggit/migrations/0001_initial.py"), Some("one = 1\n")),
            (&p("taggit/migrations/0002_old.py"), Some("two = 2\n")),
            (&p("django_taggit-4.0.0.dist-info/RECORD"), Some(&rec)),
            (
                &p("django_taggit-4.0.0.dist-info/METADATA"),
                Some("Metadata-Version: 2.1\nName: django-taggit\nVersion: 4.0.0\n\nLong text\n"),
            ),
            (&p("other/__init__.py"), Some("")),
            ("etc/passwd", Some("root:x:0:0\n")),
        ])
    }

    #[test]
    fn a_package_is_read_from_the_layers_with_its_record() {
        let site = read_saved(saved(&[base_layer()]).as_slice()).unwrap();
        let files = site.dist_files("django-taggit", "4.0").unwrap();
        let kept: Vec<&str> = files.files.keys().map(String::as_str).collect();
        assert_eq!(
            kept,
            [
                "taggit/__init__.py",
                "taggit/apps.py",
                "taggit/migrations/0001_initial.py",
                "taggit/migrations/0002_old.py",
                "taggit/migrations/__init__.py",
            ]
        );
        // `other` is in site-packages but not this distribution's.
        assert_eq!(files.tops.iter().collect::<Vec<_>>(), ["taggit"]);
        // Only what the graph needs was kept of the image.
        assert!(!site.files.contains_key("etc/passwd"));
        assert!(!site.files.contains_key(&p("taggit/models.py")));
        assert_eq!(
            site.files.get(&p("django_taggit-4.0.0.dist-info/METADATA")),
            Some(&Node::Text(
                "Metadata-Version: 2.1\nName: django-taggit\nVersion: 4.0.0\n".into()
            ))
        );
        let e = site.dist_files("django-taggit", "5.0.1").unwrap_err();
        assert!(e.contains("installs django-taggit 4.0.0"), "{e}");
        let e = site.dist_files("django-auditlog", "2.3.0").unwrap_err();
        assert!(e.contains("no django-auditlog is installed"), "{e}");
    }

    #[test]
    fn whiteouts_hide_the_lower_layers_only() {
        // Layer 2: the upgrade pip does — the old dist-info and one
        // migration removed (whiteouts), the migrations directory made
        // opaque and written anew, the new dist-info added.
        let rec = record(&[
            "taggit/__init__.py",
            "taggit/apps.py",
            "taggit/migrations/__init__.py",
            "taggit/migrations/0001_initial.py",
            "taggit/migrations/0003_new.py",
            "django_taggit-5.0.1.dist-info/RECORD",
        ]);
        let upgrade = tar_of(&[
            (&p(".wh.django_taggit-4.0.0.dist-info"), Some("")),
            (&p("taggit/migrations/"), None),
            (&p("taggit/migrations/.wh..wh..opq"), Some("")),
            (&p("taggit/migrations/__init__.py"), Some("")),
            (&p("taggit/migrations/0001_initial.py"), Some("one = 11\n")),
            (&p("taggit/migrations/0003_new.py"), Some("three = 3\n")),
            (&p("django_taggit-5.0.1.dist-info/RECORD"), Some(&rec)),
            // A whiteout in the same layer as a file does not hide it.
            (&p("taggit/.wh.apps.py"), Some("")),
            (&p("taggit/apps.py"), Some("class B: name = 'taggit'\n")),
        ]);
        let site = read_saved(saved(&[base_layer(), upgrade.clone()]).as_slice()).unwrap();
        assert!(site.dist_files("django-taggit", "4.0.0").is_err());
        let files = site.dist_files("django-taggit", "5.0.1").unwrap();
        assert_eq!(
            files.files.keys().map(String::as_str).collect::<Vec<_>>(),
            [
                "taggit/__init__.py",
                "taggit/apps.py",
                "taggit/migrations/0001_initial.py",
                "taggit/migrations/0003_new.py",
                "taggit/migrations/__init__.py",
            ]
        );
        assert_eq!(
            files.get("taggit/migrations/0001_initial.py"),
            Some("one = 11\n")
        );
        assert_eq!(
            files.get("taggit/apps.py"),
            Some("class B: name = 'taggit'\n")
        );
        // The opaque directory hid 0002 of the layer below.
        assert!(!site.files.contains_key(&p("taggit/migrations/0002_old.py")));

        // Layer 3 removes the whole package: nothing of it is left.
        let gone = tar_of(&[
            (&p(".wh.taggit"), Some("")),
            (&p(".wh.django_taggit-5.0.1.dist-info"), Some("")),
        ]);
        let site = read_saved(saved(&[base_layer(), upgrade, gone]).as_slice()).unwrap();
        assert!(site.dist_files("django-taggit", "5.0.1").is_err());
        assert!(
            site.files.keys().all(|k| !k.contains("taggit")),
            "{:?}",
            site.files.keys()
        );
        // A root-level opaque marker hides every layer below.
        let root = tar_of(&[(".wh..wh..opq", Some(""))]);
        let site = read_saved(saved(&[base_layer(), root]).as_slice()).unwrap();
        assert!(site.files.is_empty());
    }

    #[test]
    fn links_and_broken_streams() {
        let rec = record(&[
            "pkg/__init__.py",
            "pkg/migrations/__init__.py",
            "pkg/migrations/0001_initial.py",
        ]);
        let layer = tar_of(&[
            (&p("pkg/__init__.py"), Some("")),
            (
                &p("pkg/migrations/__init__.py"),
                Some("->venv/elsewhere/__init__.py"),
            ),
            (&p("pkg-1.0.dist-info/RECORD"), Some(&rec)),
        ]);
        // The hard link's target was not kept: the file cannot be read.
        let site = read_saved(saved(&[layer]).as_slice()).unwrap();
        let e = site.dist_files("pkg", "1.0").unwrap_err();
        assert!(e.contains("hard link"), "{e}");
        let target = p("pkg/__init__.py");
        let link = format!("->{target}");
        let layer = tar_of(&[
            (&target, Some("x = 1\n")),
            (&p("pkg/migrations/__init__.py"), Some(&link)),
            (&p("pkg-1.0.dist-info/RECORD"), Some(&rec)),
        ]);
        let site = read_saved(saved(&[layer]).as_slice()).unwrap();
        let files = site.dist_files("pkg", "1.0").unwrap();
        assert_eq!(files.get("pkg/migrations/__init__.py"), Some("x = 1\n"));
        // A manifest naming a layer the stream lacks, or no manifest.
        let mut tar = tar::Builder::new(Vec::new());
        let m = br#"[{"Layers":["nope/layer.tar"]}]"#;
        let mut h = tar::Header::new_gnu();
        h.set_size(m.len() as u64);
        h.set_cksum();
        tar.append_data(&mut h, "manifest.json", &m[..]).unwrap();
        let e = read_saved(tar.into_inner().unwrap().as_slice()).unwrap_err();
        assert!(e.contains("no layer nope/layer.tar"), "{e}");
        let e = read_saved(tar_of(&[("x", Some("y"))]).as_slice()).unwrap_err();
        assert!(e.contains("no manifest.json"), "{e}");
        let e = read_saved(&b"garbage"[..]).map(|_| ()).unwrap_err();
        assert!(!e.is_empty());
    }

    #[test]
    fn record_lines_and_site_paths() {
        assert_eq!(record_path("a/b.py,sha256=x,3"), "a/b.py");
        assert_eq!(record_path("\"a,\"\"b\"\".py\",sha256=x,3"), "a,\"b\".py");
        assert_eq!(
            split_site("usr/lib/python3/dist-packages/x/__init__.py"),
            Some(("usr/lib/python3/dist-packages", "x/__init__.py"))
        );
        assert_eq!(split_site("usr/lib/site-packages"), None);
        assert!(keep(&p("x-1.0.dist-info/RECORD")));
        assert!(!keep(&p("x-1.0.dist-info/LICENSE")));
        assert!(!keep("app/x/migrations/0001_initial.py"));
    }
}
