//! Docker image references: `[registry[:port]/]path[:tag][@digest]`.

use std::fmt;

/// A parsed image reference. `Display` prints it back exactly as written
/// (without an implied `latest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Everything before the tag: registry, namespaces and name.
    pub repository: String,
    /// The tag, if written.
    pub tag: Option<String>,
    /// The digest (`sha256:…`), if written.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parse a reference. The tag is split at the last `:` after the last `/`,
    /// so a registry port (`reg:5000/app:1.2`) is never taken for a tag.
    pub fn parse(s: &str) -> Result<ImageRef, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("the image reference is empty".into());
        }
        if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("image reference {s:?} contains {c:?}"));
        }
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => {
                if !d.contains(':') {
                    return Err(format!("image reference {s:?} has a malformed digest"));
                }
                (n, Some(d.to_string()))
            }
            None => (s, None),
        };
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&name_tag[..at], Some(name_tag[at + 1..].to_string()))
            }
            None => (name_tag, None),
        };
        if repository.is_empty() {
            return Err(format!("image reference {s:?} has no repository name"));
        }
        if let Some(t) = &tag {
            let valid = !t.is_empty()
                && t.len() <= 128
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
                && !t.starts_with(['.', '-']);
            if !valid {
                return Err(format!("image reference {s:?} has an invalid tag {t:?}"));
            }
        }
        let repo_ok = repository
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/' | ':'));
        if !repo_ok {
            return Err(format!(
                "image reference {s:?} has an invalid repository name"
            ));
        }
        Ok(ImageRef {
            repository: repository.to_string(),
            tag,
            digest,
        })
    }

    /// The tag Docker uses: the written one, or `latest` when neither tag nor
    /// digest is given.
    pub fn effective_tag(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(t), _) => Some(t),
            (None, None) => Some("latest"),
            (None, Some(_)) => None,
        }
    }

    /// The same repository with another tag (used for the image to roll back to).
    pub fn with_tag(&self, tag: &str) -> ImageRef {
        ImageRef {
            repository: self.repository.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let cases: &[(&str, &str, Option<&str>, bool)] = &[
            ("shop:2.1.0", "shop", Some("2.1.0"), false),
            ("shop", "shop", None, false),
            (
                "registry.example.com:5000/team/shop:2.1.0",
                "registry.example.com:5000/team/shop",
                Some("2.1.0"),
                false,
            ),
            (
                "registry.example.com:5000/team/shop",
                "registry.example.com:5000/team/shop",
                None,
                false,
            ),
            ("a/b/c/d:v1", "a/b/c/d", Some("v1"), false),
            (
                "localhost:5000/shop@DIGEST",
                "localhost:5000/shop",
                None,
                true,
            ),
            ("shop:1.2@DIGEST", "shop", Some("1.2"), true),
        ];
        for (input, repo, tag, has_digest) in cases {
            let input = input.replace("DIGEST", d);
            let r = ImageRef::parse(&input).unwrap();
            assert_eq!(r.repository, *repo, "{input}");
            assert_eq!(r.tag.as_deref(), *tag, "{input}");
            assert_eq!(r.digest.is_some(), *has_digest, "{input}");
            assert_eq!(r.to_string(), input, "round trip");
        }
    }

    #[test]
    fn implied_latest_and_digest_only() {
        assert_eq!(
            ImageRef::parse("shop").unwrap().effective_tag(),
            Some("latest")
        );
        assert_eq!(
            ImageRef::parse("shop@sha256:ab").unwrap().effective_tag(),
            None
        );
    }

    #[test]
    fn hostile_references_are_rejected() {
        for bad in [
            "",
            "shop:1;rm -rf /",
            "shop:$(id)",
            "shop:a b",
            "shop:-x",
            ":1",
            "shop@nodigest",
            "sh'op:1",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
