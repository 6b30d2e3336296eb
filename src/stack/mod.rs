//! Stack files: which services run which image, at a revision of the deploy
//! repository, and how an image change moves (upgrade, downgrade, sideways).

pub mod compose;
pub mod image_ref;
pub mod interpolate;
pub mod tag_order;

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::git::{Repo, Snapshot};
pub use image_ref::ImageRef;

/// File names `check` looks for when no `-f` is given, in Docker's order.
pub const DEFAULT_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
    "stack.yml",
    "stack.yaml",
];

/// A service after merging all stack files and interpolating variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The service name.
    pub name: String,
    /// The image, when the service has one.
    pub image: Option<ImageRef>,
    /// `deploy.replicas`, when given.
    pub replicas: Option<u64>,
    /// The file the image came from.
    pub file: String,
    /// The line of `image:` in that file.
    pub line: u64,
}

/// All services of a stack at one snapshot.
#[derive(Debug, Clone, Default)]
pub struct Stack {
    /// Services by name.
    pub services: BTreeMap<String, Service>,
}

/// Which files to read: explicit `-f` files, or the first default that exists
/// at either snapshot.
pub fn discover_files(
    repo: &Repo,
    snaps: &[&Snapshot],
    explicit: &[String],
) -> Result<Vec<String>> {
    if !explicit.is_empty() {
        return Ok(explicit.to_vec());
    }
    for name in DEFAULT_FILES {
        for snap in snaps {
            if repo.read(snap, name)?.is_some() {
                return Ok(vec![(*name).to_string()]);
            }
        }
    }
    Err(Error::input(format!(
        "no stack file found in {} (looked for {}); pass -f FILE",
        repo.label(),
        DEFAULT_FILES.join(", ")
    )))
}

/// Read and merge the stack files at a snapshot. Files missing at this
/// snapshot are skipped; `Ok(None)` when none exists.
pub fn load(repo: &Repo, snap: &Snapshot, files: &[String]) -> Result<Option<Stack>> {
    let mut stack = Stack::default();
    let mut found = false;
    for file in files {
        let Some((_, text)) = repo.read_text(snap, file)? else {
            continue;
        };
        found = true;
        let dir = file.rsplit_once('/').map_or("", |(d, _)| d);
        let dotenv_path = if dir.is_empty() {
            ".env".to_string()
        } else {
            format!("{dir}/.env")
        };
        let dotenv = match repo.read_text(snap, &dotenv_path)? {
            Some((_, t)) => interpolate::parse_dotenv(&t),
            None => Vec::new(),
        };
        let lookup = |name: &str| -> Option<String> {
            std::env::var(name).ok().or_else(|| {
                dotenv
                    .iter()
                    .rev()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            })
        };
        let raw = compose::parse(&text)
            .map_err(|e| Error::input(format!("{file} at {}: {e}", snap.label)))?;
        for (name, r) in raw {
            let entry = stack
                .services
                .entry(name.clone())
                .or_insert_with(|| Service {
                    name: name.clone(),
                    image: None,
                    replicas: None,
                    file: file.clone(),
                    line: r.line,
                });
            if let Some((img, line)) = r.image {
                let at = |e: String| {
                    Error::input(format!(
                        "{file} at {} line {line}: service {name:?}: {e}",
                        snap.label
                    ))
                };
                let value = interpolate::interpolate(&img, &lookup).map_err(at)?;
                entry.image = Some(ImageRef::parse(&value).map_err(at)?);
                entry.file = file.clone();
                entry.line = line;
            }
            if let Some((rep, line)) = r.replicas {
                let at = |e: String| {
                    Error::input(format!(
                        "{file} at {} line {line}: service {name:?}: {e}",
                        snap.label
                    ))
                };
                let value = interpolate::interpolate(&rep, &lookup).map_err(at)?;
                let n = value
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| at(format!("deploy.replicas {value:?} is not a whole number")))?;
                entry.replicas = Some(n);
            }
        }
    }
    Ok(found.then_some(stack))
}

/// How an image change moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The new tag is newer.
    Upgrade,
    /// The new tag is older.
    Downgrade,
    /// Neither revision contains the other (e.g. a hotfix branch).
    Sideways,
    /// The image did not change.
    Unchanged,
    /// The tags cannot be ordered and the revisions cannot be resolved.
    Unknown,
}

impl Direction {
    /// The lowercase name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Upgrade => "upgrade",
            Direction::Downgrade => "downgrade",
            Direction::Sideways => "sideways",
            Direction::Unchanged => "unchanged",
            Direction::Unknown => "unknown",
        }
    }
}

/// A service whose image differs between two snapshots.
#[derive(Debug, Clone)]
pub struct ImageChange {
    /// The service as deployed now (the older snapshot of the deploy repo).
    pub from: Service,
    /// The service as it will be deployed.
    pub to: Service,
}

/// Services present at both snapshots whose image reference changed.
pub fn changes(from: &Stack, to: &Stack) -> Vec<ImageChange> {
    from.services
        .iter()
        .filter_map(|(name, a)| {
            let b = to.services.get(name)?;
            (a.image.is_some() && b.image.is_some() && a.image != b.image).then(|| ImageChange {
                from: a.clone(),
                to: b.clone(),
            })
        })
        .collect()
}

/// Direction judged from the tags alone; `Err(reason)` when they cannot be ordered.
pub fn direction_by_tags(from: &ImageRef, to: &ImageRef) -> Result<Direction, String> {
    if from == to {
        return Ok(Direction::Unchanged);
    }
    if from.repository != to.repository {
        return Err(format!(
            "the image repository changes ({} → {})",
            from.repository, to.repository
        ));
    }
    let (Some(a), Some(b)) = (from.effective_tag(), to.effective_tag()) else {
        return Err("a digest-only reference has no tag to compare".into());
    };
    if a == b {
        return Err(format!("the tag {a:?} is the same but the digest changes"));
    }
    match tag_order::compare(a, b) {
        Some(Ordering::Less) => Ok(Direction::Upgrade),
        Some(Ordering::Greater) => Ok(Direction::Downgrade),
        // `1.4` and `1.4.0` are the same release written twice.
        Some(Ordering::Equal) => Ok(Direction::Unchanged),
        None => Err(tag_order::why_not_comparable(a, b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
    }

    #[test]
    fn directions() {
        assert_eq!(
            direction_by_tags(&img("shop:1.10.0"), &img("shop:1.9.0")),
            Ok(Direction::Downgrade)
        );
        assert_eq!(
            direction_by_tags(&img("shop:1.9.0"), &img("shop:1.10.0")),
            Ok(Direction::Upgrade)
        );
        assert!(direction_by_tags(&img("shop:latest"), &img("shop:1.0")).is_err());
        assert!(direction_by_tags(&img("shop:1.0"), &img("other:0.9")).is_err());
        assert!(direction_by_tags(&img("shop@sha256:aa"), &img("shop@sha256:bb")).is_err());
    }
}
