//! Where a package version's files come from, in the order
//! `package_sources:` gives (default: wheelhouse, index, image): local
//! wheelhouse directories (`wheelhouse:` in `.tagback.yml`,
//! `TAGBACK_WHEELHOUSE`) and the archive cache; the PEP 503 simple
//! indexes pip or uv would use (`PIP_INDEX_URL`, `PIP_EXTRA_INDEX_URL`,
//! `UV_INDEX_URL`, `UV_EXTRA_INDEX_URL`, `UV_DEFAULT_INDEX`, `UV_INDEX`;
//! PyPI when none is set; none with `PIP_NO_INDEX` or `TAGBACK_NO_INDEX`);
//! the service's Docker image at that revision, when it is local
//! (`image`: the package as installed in its site-packages).
//! Credentials come from the index URL or `~/.netrc` (`NETRC`) and are
//! never part of a message.
//!
//! The archive cache is content-addressed: `CACHE/NAME/SHA256/FILE`. A
//! cached archive is used only when its bytes still hash to its directory's
//! name (and to one of the pin's hashes, when the pin has any), so a damaged
//! or swapped file is a miss, never a different package.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::archive::PackageFiles;
use super::pins::normalize;
use crate::config::PackageSource;
use crate::fs::{self, Mode};

/// Bound on one downloaded archive (Django's wheel is about 8 MiB).
const MAX_ARCHIVE: u64 = 256 << 20;
/// Bound on an index page.
const MAX_PAGE: u64 = 32 << 20;

/// The places archives are looked for.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Local directories holding wheels and sdists.
    pub wheelhouses: Vec<PathBuf>,
    /// Simple-index base URLs (credentials included, never printed).
    pub indexes: Vec<String>,
    /// The archive cache (`None`: off).
    pub cache: Option<PathBuf>,
    /// The order of the sources (empty: the default order).
    pub order: Vec<PackageSource>,
}

/// What a source gave: an archive to read, or the files of an installed
/// package (from an image).
#[derive(Debug, Clone)]
pub enum Obtained {
    /// A wheel or sdist.
    Archive(Archive),
    /// The package's files as installed in `image`.
    Installed {
        /// The image reference.
        image: String,
        /// The files (as read from an archive).
        files: PackageFiles,
    },
}

impl Obtained {
    /// Where it came from, for a message.
    pub fn origin(&self) -> String {
        match self {
            Obtained::Archive(a) => a.file_name.clone(),
            Obtained::Installed { image, .. } => format!("installed in image {image}"),
        }
    }
}

/// An archive found: its file name, bytes and SHA-256 (hex).
#[derive(Debug, Clone)]
pub struct Archive {
    /// File name (`django_taggit-5.0.1-py3-none-any.whl`).
    pub file_name: String,
    /// Its bytes.
    pub data: Vec<u8>,
    /// SHA-256 of `data`, lower-case hex.
    pub sha256: String,
}

impl Sources {
    /// Sources from the configuration and the environment.
    pub fn from_env(configured: Option<&Path>, cache: Option<PathBuf>) -> Sources {
        let mut wheelhouses: Vec<PathBuf> = configured.map(Path::to_path_buf).into_iter().collect();
        if let Some(v) = std::env::var_os("TAGBACK_WHEELHOUSE") {
            wheelhouses.extend(std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()));
        }
        let off =
            |v: &str| std::env::var(v).is_ok_and(|x| !x.is_empty() && x != "0" && x != "false");
        let mut indexes = Vec::new();
        if !off("PIP_NO_INDEX") && !off("TAGBACK_NO_INDEX") {
            for var in [
                "PIP_INDEX_URL",
                "UV_DEFAULT_INDEX",
                "UV_INDEX_URL",
                "PIP_EXTRA_INDEX_URL",
                "UV_INDEX",
                "UV_EXTRA_INDEX_URL",
            ] {
                if let Ok(v) = std::env::var(var) {
                    for u in v.split_whitespace() {
                        // uv's `UV_INDEX` entries may be `name=url`.
                        let u = match u.split_once('=') {
                            Some((n, rest)) if !n.contains('/') && rest.contains("://") => rest,
                            _ => u,
                        };
                        if !indexes.iter().any(|i| i == u) {
                            indexes.push(u.to_string());
                        }
                    }
                }
            }
            if indexes.is_empty() {
                indexes.push("https://pypi.org/simple/".to_string());
            }
        }
        Sources {
            wheelhouses,
            indexes,
            cache,
            order: Vec::new(),
        }
    }

    /// The sources in order.
    pub fn order(&self) -> &[PackageSource] {
        if self.order.is_empty() {
            &PackageSource::DEFAULT
        } else {
            &self.order
        }
    }

    /// The ways to provide a package version, for a message, in the order
    /// of the sources (`image`: the service's image at that revision).
    pub fn how_to_provide(&self, image: Option<&str>) -> String {
        let mut ways: Vec<String> = Vec::new();
        for source in self.order() {
            ways.push(match source {
                PackageSource::Wheelhouse if self.wheelhouses.is_empty() => "put its wheel or sdist in a wheelhouse directory (`wheelhouse:` in .tagback.yml or TAGBACK_WHEELHOUSE)".to_string(),
                PackageSource::Wheelhouse => {
                    let dirs: Vec<String> = self
                        .wheelhouses
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect();
                    format!("put its wheel or sdist in {}", dirs.join(" or "))
                }
                PackageSource::Index if self.indexes.is_empty() => {
                    "allow an index (unset PIP_NO_INDEX/TAGBACK_NO_INDEX; PIP_INDEX_URL names it)"
                        .to_string()
                }
                PackageSource::Index => {
                    let names: Vec<String> = self.indexes.iter().map(|u| redact(u)).collect();
                    format!(
                        "serve it from the index ({} tried; PIP_INDEX_URL, PIP_EXTRA_INDEX_URL or UV_INDEX_URL name others)",
                        names.join(", ")
                    )
                }
                PackageSource::Image => match image {
                    Some(i) => format!(
                        "make the service's image {i} local (`docker image ls` lists it; its site-packages are read with `docker image save`)"
                    ),
                    None => "run `tagback check` on the stack file, which reads the service's images when they are local".to_string(),
                },
            });
        }
        for source in PackageSource::DEFAULT {
            if !self.order().contains(&source) {
                ways.push(format!(
                    "add {} to `package_sources:` in .tagback.yml",
                    source.as_str()
                ));
            }
        }
        ways.join(", or ")
    }

    /// Find the files of `name` at `version`, from the sources in order
    /// (an archive: a wheel before an sdist; `image`: the service's image
    /// at the revision that pins this version). `Err` says what was tried
    /// and why it failed (without credentials).
    pub fn obtain(
        &self,
        name: &str,
        version: &str,
        hashes: &BTreeSet<String>,
        image: Option<&str>,
    ) -> Result<Obtained, String> {
        let norm = normalize(name);
        let mut why: Vec<String> = Vec::new();
        let mut cache_tried = false;
        for source in self.order() {
            match source {
                PackageSource::Wheelhouse => {
                    if let Some(a) = self.in_wheelhouses(&norm, version, hashes, &mut why) {
                        return Ok(Obtained::Archive(a));
                    }
                    cache_tried = true;
                    if let Some(a) = self.cached(&norm, version, hashes) {
                        return Ok(Obtained::Archive(a));
                    }
                }
                PackageSource::Index => {
                    // Downloads are cached: the cache comes before the network.
                    if !cache_tried && let Some(a) = self.cached(&norm, version, hashes) {
                        return Ok(Obtained::Archive(a));
                    }
                    cache_tried = true;
                    for index in &self.indexes {
                        match fetch_from_index(index, &norm, version, hashes) {
                            Ok(a) => {
                                self.store(&norm, &a);
                                return Ok(Obtained::Archive(a));
                            }
                            Err(e) => why.push(e),
                        }
                    }
                }
                PackageSource::Image => match image {
                    Some(img) => {
                        match super::image::read(img, &norm, version, self.cache.as_deref()) {
                            Ok(files) => {
                                return Ok(Obtained::Installed {
                                    image: img.to_string(),
                                    files,
                                });
                            }
                            Err(e) => why.push(e),
                        }
                    }
                    None => why.push(
                        "no service image is known (`tagback plan` has no stack file)".to_string(),
                    ),
                },
            }
        }
        if why.is_empty() {
            why.push("no wheelhouse or index is configured".to_string());
        }
        Err(why.join("; "))
    }

    fn in_wheelhouses(
        &self,
        norm: &str,
        version: &str,
        hashes: &BTreeSet<String>,
        why: &mut Vec<String>,
    ) -> Option<Archive> {
        for dir in &self.wheelhouses {
            let Ok(rd) = std::fs::read_dir(dir) else {
                why.push(format!("{} cannot be read", dir.display()));
                continue;
            };
            let mut names: Vec<String> = rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|f| matches_file(f, norm, version))
                .collect();
            names.sort_by_key(|f| (!f.ends_with(".whl"), f.clone()));
            for f in names {
                let path = dir.join(&f);
                match std::fs::read(&path) {
                    Ok(data) => {
                        let a = archive(f, data);
                        if hashes.is_empty() || hashes.contains(&a.sha256) {
                            return Some(a);
                        }
                        why.push(format!(
                            "{} does not match the pinned hashes",
                            path.display()
                        ));
                    }
                    Err(e) => why.push(format!("{}: {e}", path.display())),
                }
            }
        }
        None
    }

    fn cached(&self, norm: &str, version: &str, hashes: &BTreeSet<String>) -> Option<Archive> {
        let dir = self.cache.as_ref()?.join(norm);
        for hash_dir in std::fs::read_dir(&dir).ok()?.filter_map(|e| e.ok()) {
            let sha = hash_dir.file_name().to_string_lossy().into_owned();
            if !hashes.is_empty() && !hashes.contains(&sha) {
                continue;
            }
            let Ok(files) = std::fs::read_dir(hash_dir.path()) else {
                continue;
            };
            for f in files.filter_map(|e| e.ok()) {
                let name = f.file_name().to_string_lossy().into_owned();
                if !matches_file(&name, norm, version) {
                    continue;
                }
                let Ok(data) = std::fs::read(f.path()) else {
                    continue;
                };
                let a = archive(name, data);
                // Re-verified on every use: a damaged file is a miss.
                if a.sha256 == sha {
                    return Some(a);
                }
            }
        }
        None
    }

    fn store(&self, norm: &str, a: &Archive) {
        let Some(cache) = &self.cache else { return };
        let dir = cache.join(norm).join(&a.sha256);
        if std::fs::create_dir_all(&dir).is_ok() {
            // A cache that cannot be written is only slower.
            let _ = fs::write_atomic(&dir.join(&a.file_name), &a.data, Mode::ReplaceCache);
        }
    }
}

fn archive(file_name: String, data: Vec<u8>) -> Archive {
    let sha256 = crate::hex::encode(&Sha256::digest(&data));
    Archive {
        file_name,
        data,
        sha256,
    }
}

/// Whether an archive file name is `name` at `version`: a wheel
/// `NAME-VERSION(-BUILD)-PY-ABI-PLAT.whl` or an sdist `NAME-VERSION.tar.gz`
/// (`.zip`, `.tgz`).
pub fn matches_file(file: &str, norm: &str, version: &str) -> bool {
    let lower = file.to_ascii_lowercase();
    if let Some(stem) = lower.strip_suffix(".whl") {
        let parts: Vec<&str> = stem.split('-').collect();
        return (parts.len() == 5 || parts.len() == 6)
            && normalize(parts[0]) == norm
            && same_version(parts[1], version);
    }
    let stem = lower
        .strip_suffix(".tar.gz")
        .or_else(|| lower.strip_suffix(".tgz"))
        .or_else(|| lower.strip_suffix(".zip"));
    stem.and_then(|s| s.rsplit_once('-'))
        .is_some_and(|(n, ver)| normalize(n) == norm && same_version(ver, version))
}

/// Whether two version strings name one version as `==` does (PEP 440,
/// by `pep440_rs`: normalization, zero padding, `-`/`_` separators in
/// file names): `==4.6` installs `django_compressor-4.6.0`. Strings that
/// are no PEP 440 version match only as written (case aside).
pub(super) fn same_version(a: &str, b: &str) -> bool {
    use std::str::FromStr;
    match (
        pep508_rs::pep440_rs::Version::from_str(a),
        pep508_rs::pep440_rs::Version::from_str(b),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.eq_ignore_ascii_case(b),
    }
}

/// A URL without its credentials, for messages.
pub fn redact(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string()
        }
        Err(_) => "an index URL that does not parse".to_string(),
    }
}

/// The system's trust store (as pip, configured with the system bundle, and
/// git use it), so that an index behind a company's TLS proxy is reached.
fn agent() -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_global(Some(Duration::from_secs(300)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// `(url without credentials, Authorization header)`.
fn authorized(u: &url::Url, fallback: Option<&(String, String)>) -> (url::Url, Option<String>) {
    use base64::Engine as _;
    let mut clean = u.clone();
    let creds = if !u.username().is_empty() {
        Some((
            percent_decode(u.username()),
            u.password().map(percent_decode).unwrap_or_default(),
        ))
    } else {
        fallback
            .cloned()
            .or_else(|| u.host_str().and_then(netrc_for))
    };
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    let header = creds.map(|(user, pass)| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )
    });
    (clean, header)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(
                std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                16,
            )
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `machine HOST login USER password PASS` (or `default`) from the netrc file.
fn netrc_for(host: &str) -> Option<(String, String)> {
    let path = std::env::var_os("NETRC")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".netrc")))?;
    let text = std::fs::read_to_string(path).ok()?;
    netrc_lookup(&text, host)
}

fn netrc_lookup(text: &str, host: &str) -> Option<(String, String)> {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let mut i = 0;
    let mut default = None;
    while i < tokens.len() {
        let (matches, is_default) = match tokens[i] {
            "machine" => {
                i += 1;
                (tokens.get(i) == Some(&host), false)
            }
            "default" => (false, true),
            _ => {
                i += 1;
                continue;
            }
        };
        i += 1;
        let (mut login, mut password) = (String::new(), String::new());
        while i < tokens.len() && !matches!(tokens[i], "machine" | "default") {
            match tokens[i] {
                "login" => login = tokens.get(i + 1).copied().unwrap_or_default().to_string(),
                "password" => password = tokens.get(i + 1).copied().unwrap_or_default().to_string(),
                _ => {}
            }
            i += 2;
        }
        if matches {
            return Some((login, password));
        }
        if is_default {
            default = Some((login, password));
        }
    }
    default
}

fn fetch_from_index(
    index: &str,
    norm: &str,
    version: &str,
    hashes: &BTreeSet<String>,
) -> Result<Archive, String> {
    let shown = redact(index);
    let base = url::Url::parse(&if index.ends_with('/') {
        index.to_string()
    } else {
        format!("{index}/")
    })
    .map_err(|_| format!("{shown} is not a URL"))?;
    let page_url = base
        .join(&format!("{norm}/"))
        .map_err(|_| format!("{shown} is not a base URL"))?;
    let index_creds = (!base.username().is_empty()).then(|| {
        (
            percent_decode(base.username()),
            base.password().map(percent_decode).unwrap_or_default(),
        )
    });
    let agent = agent();
    let (clean, auth) = authorized(&page_url, index_creds.as_ref());
    let page =
        get(&agent, &clean, auth.as_deref(), MAX_PAGE).map_err(|e| format!("{shown}: {e}"))?;
    let page = String::from_utf8_lossy(&page);
    let mut links: Vec<(String, String, Option<String>)> = Vec::new();
    for (href, _) in anchors(&page) {
        let Ok(u) = clean.join(&href) else { continue };
        let file = u
            .path_segments()
            .and_then(|mut s| s.next_back())
            .map(percent_decode)
            .unwrap_or_default();
        if !matches_file(&file, norm, version) {
            continue;
        }
        let sha = u
            .fragment()
            .and_then(|f| f.strip_prefix("sha256="))
            .map(str::to_ascii_lowercase);
        let mut u = u.clone();
        u.set_fragment(None);
        links.push((file, u.to_string(), sha));
    }
    if links.is_empty() {
        return Err(format!("{shown} has no archive of {norm} {version}"));
    }
    // Files the pins rule out by the index's own sha256 are not fetched (a
    // lock lists the wheels of the Pythons it supports: PyYAML 6.0.3's
    // first file, a cp38 wheel, is not among paperless-ngx's pins).
    if !hashes.is_empty() {
        links.retain(|(_, _, sha)| sha.as_ref().is_none_or(|s| hashes.contains(s)));
        if links.is_empty() {
            return Err(format!(
                "{shown}: no archive of {norm} {version} has one of the pinned hashes"
            ));
        }
    }
    links.sort_by_key(|(f, _, _)| (!f.ends_with(".whl"), f.clone()));
    // Each in turn until one matches the pins: the first error if none does.
    let mut first_error = None;
    for (file, link, sha) in links {
        match fetch_link(&agent, &base, index_creds.as_ref(), &shown, &file, &link) {
            Ok(a) if sha.as_ref().is_some_and(|s| *s != a.sha256) => {
                first_error
                    .get_or_insert(format!("{shown}: {file} does not match the index's sha256"));
            }
            Ok(a) if !hashes.is_empty() && !hashes.contains(&a.sha256) => {
                first_error
                    .get_or_insert(format!("{shown}: {file} does not match the pinned hashes"));
            }
            Ok(a) => return Ok(a),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| format!("{shown} has no archive of {norm} {version}")))
}

/// One archive of an index page, with the index's credentials where it is
/// on the index's host.
fn fetch_link(
    agent: &ureq::Agent,
    base: &url::Url,
    index_creds: Option<&(String, String)>,
    shown: &str,
    file: &str,
    link: &str,
) -> Result<Archive, String> {
    let link = url::Url::parse(link).map_err(|_| format!("{shown}: bad link for {file}"))?;
    let same_host = link.host_str() == base.host_str();
    let (clean_link, auth) = authorized(&link, index_creds.filter(|_| same_host));
    let data = get(agent, &clean_link, auth.as_deref(), MAX_ARCHIVE)
        .map_err(|e| format!("{shown}: {file}: {e}"))?;
    Ok(archive(file.to_string(), data))
}

fn get(
    agent: &ureq::Agent,
    u: &url::Url,
    auth: Option<&str>,
    limit: u64,
) -> Result<Vec<u8>, String> {
    let mut req = agent.get(u.as_str()).header("Accept", "text/html");
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let mut resp = req.call().map_err(|e| describe(&e))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("HTTP {}", status.as_u16()));
    }
    resp.body_mut()
        .with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(|e| describe(&e))
}

/// An HTTP error without the URL (which could hold credentials).
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => io.to_string(),
        ureq::Error::Timeout(_) => "timed out".to_string(),
        ureq::Error::HostNotFound => "host not found".to_string(),
        ureq::Error::ConnectionFailed => "connection failed".to_string(),
        ureq::Error::TooManyRedirects => "too many redirects".to_string(),
        ureq::Error::BodyExceedsLimit(n) => format!("larger than {n} bytes"),
        _ => "request failed".to_string(),
    }
}

/// `(href, text)` of each `<a href="…">` in a simple-index page.
fn anchors(page: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let lower = page.to_ascii_lowercase();
    let mut at = 0;
    while let Some(i) = lower[at..].find("<a ") {
        let start = at + i;
        let Some(end) = lower[start..].find('>') else {
            break;
        };
        let tag = &page[start..start + end];
        at = start + end + 1;
        let Some(h) = tag.to_ascii_lowercase().find("href=") else {
            continue;
        };
        let rest = &tag[h + 5..];
        let (q, rest) = match rest.chars().next() {
            Some(c @ ('"' | '\'')) => (c, &rest[1..]),
            _ => continue,
        };
        let Some(close) = rest.find(q) else { continue };
        let href = rest[..close].replace("&amp;", "&");
        let text_end = lower[at..].find("</a>").map_or(at, |e| at + e);
        out.push((href, page[at..text_end].trim().to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names() {
        assert!(matches_file(
            "django_compressor-4.6.0-py3-none-any.whl",
            "django-compressor",
            "4.6"
        ));
        assert!(matches_file("Django-5.2.tar.gz", "django", "5.2.0"));
        assert!(!matches_file("Django-5.2.1.tar.gz", "django", "5.2"));
        assert!(!matches_file("pkg-1.0rc1.tar.gz", "pkg", "1.0"));
        assert!(matches_file(
            "django_taggit-5.0.1-py3-none-any.whl",
            "django-taggit",
            "5.0.1"
        ));
        assert!(matches_file(
            "Django-4.2.7-py3-none-any.whl",
            "django",
            "4.2.7"
        ));
        assert!(matches_file(
            "django-taggit-5.0.1.tar.gz",
            "django-taggit",
            "5.0.1"
        ));
        assert!(!matches_file(
            "django_taggit-5.0.10-py3-none-any.whl",
            "django-taggit",
            "5.0.1"
        ));
        assert!(!matches_file(
            "django-taggit-5.0.1.tar.gz",
            "django",
            "5.0.1"
        ));
        // PEP 440 normalization, which the hand-written comparison lacked.
        assert!(same_version("2.9.0.post0", "2.9.0-post0"));
        assert!(same_version("1.0rc1", "1.0.0-RC1"));
        assert!(same_version("1.0c1", "1.0rc1"));
        assert!(same_version("1.0.dev0", "1.0-dev"));
        assert!(!same_version("1!1.0", "1.0"));
        assert!(!same_version("1.0", "1.0.post1"));
        assert!(!same_version("1.0+local", "1.0"));
    }

    #[test]
    fn credentials_never_in_messages() {
        assert_eq!(
            redact("https://u:secret@example.test/simple/"),
            "https://example.test/simple/"
        );
        let u = url::Url::parse("https://u:p%40ss@example.test/simple/x/").unwrap();
        let (clean, auth) = authorized(&u, None);
        assert_eq!(clean.as_str(), "https://example.test/simple/x/");
        assert_eq!(auth.as_deref(), Some("Basic dTpwQHNz"));
    }

    #[test]
    fn sources_follow_the_configured_order() {
        let dir = tempfile::tempdir().unwrap();
        let sources = Sources {
            wheelhouses: vec![dir.path().to_path_buf()],
            order: vec![PackageSource::Image],
            ..Sources::default()
        };
        // Only the image is asked, and none is known: the wheelhouse is not
        // searched, and the message says how to turn it on.
        let e = sources
            .obtain("django-taggit", "5.0.1", &BTreeSet::new(), None)
            .unwrap_err();
        assert!(e.contains("no service image is known"), "{e}");
        let how = sources.how_to_provide(Some("shop:2"));
        assert!(
            how.starts_with("make the service's image shop:2 local"),
            "{how}"
        );
        assert!(
            how.contains("add wheelhouse to `package_sources:`")
                && how.contains("add index to `package_sources:`"),
            "{how}"
        );
        // The default order: wheelhouse first, the image last.
        std::fs::write(
            dir.path().join("django_taggit-5.0.1-py3-none-any.whl"),
            b"zip",
        )
        .unwrap();
        let sources = Sources {
            order: Vec::new(),
            ..sources
        };
        match sources.obtain("django-taggit", "5.0.1", &BTreeSet::new(), Some("-x")) {
            Ok(Obtained::Archive(a)) => {
                assert_eq!(a.file_name, "django_taggit-5.0.1-py3-none-any.whl")
            }
            other => panic!("{other:?}"),
        }
        let how = sources.how_to_provide(None);
        assert!(how.ends_with("run `tagback check` on the stack file, which reads the service's images when they are local"), "{how}");
    }

    #[test]
    fn netrc_entries() {
        let t = "machine a.test login al password pw\ndefault login d password dp\n";
        assert_eq!(netrc_lookup(t, "a.test"), Some(("al".into(), "pw".into())));
        assert_eq!(netrc_lookup(t, "b.test"), Some(("d".into(), "dp".into())));
    }

    #[test]
    fn index_page_links() {
        let page = r#"<html><body><a href="../../files/x-1.0-py3-none-any.whl#sha256=AB" data-requires-python="&gt;=3.8">x-1.0-py3-none-any.whl</a>
<A HREF='x-1.0.tar.gz'>x-1.0.tar.gz</A></body></html>"#;
        let a = anchors(page);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].0, "../../files/x-1.0-py3-none-any.whl#sha256=AB");
        assert_eq!(a[1].1, "x-1.0.tar.gz");
    }
}
