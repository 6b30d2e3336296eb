//! Stack files: which services run which image, at a revision of the deploy
//! repository, and how an image change moves (upgrade, downgrade, sideways).

pub mod compose;
pub mod image_ref;
pub mod interpolate;
pub mod rollback_scripts;
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
    /// File and line of `deploy.update_config.failure_action: rollback`
    /// (Swarm rolls the service back on its own when an update fails).
    pub auto_rollback: Option<(String, u64)>,
}

/// All services of a stack at one snapshot.
#[derive(Debug, Clone, Default)]
pub struct Stack {
    /// Services by name.
    pub services: BTreeMap<String, Service>,
}

/// Which files to read: explicit `-f` (or configured) files, which must each
/// be a file at one of the snapshots at least, or the first default that
/// exists at either snapshot.
pub fn discover_files(
    repo: &Repo,
    snaps: &[&Snapshot],
    explicit: &[String],
) -> Result<Vec<String>> {
    if !explicit.is_empty() {
        for file in explicit {
            let mut found = false;
            for snap in snaps {
                if repo.dir_exists(snap, file)? {
                    return Err(Error::input(format!(
                        "stack file {file} at {} is a directory, not a compose/stack file",
                        snap.label
                    )));
                }
                found |= repo.exists(snap, file)?;
            }
            if !found {
                let labels: Vec<&str> = snaps.iter().map(|s| s.label.as_str()).collect();
                return Err(Error::input(format!(
                    "stack file {file} does not exist at {} in {}; check the -f argument or `files:` in .tagback.yml",
                    labels.join(" or "),
                    repo.label()
                )));
            }
        }
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
                    auto_rollback: None,
                });
            if let Some((action, line)) = &r.failure_action {
                // A later file overrides an earlier one, like `docker stack deploy`.
                entry.auto_rollback = (action.trim() == "rollback").then(|| (file.clone(), *line));
            }
            if let Some((img, line)) = r.image {
                let at = |e: String| {
                    Error::input(format!(
                        "{file} at {} line {line}: service {name:?}: {e}",
                        snap.label
                    ))
                };
                let value = interpolate::interpolate(&img, &lookup).map_err(at)?;
                // `image: ""` (or a variable that is empty) names no image:
                // the same as no `image:`, which `changes` reports.
                entry.image = if value.trim().is_empty() {
                    None
                } else {
                    Some(ImageRef::parse(&value).map_err(at)?)
                };
                entry.file = file.clone();
                entry.line = line;
            } else if r.image_line.is_some() {
                // `image:` with no value overrides an earlier file's image.
                entry.image = None;
                entry.file = file.clone();
                entry.line = r.line;
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
    /// The service as it will be deployed; its `image` is `None` when the
    /// image was removed or emptied.
    pub to: Service,
    /// The service was renamed: `from` disappeared and `to` appeared
    /// running the same image repository.
    pub renamed: bool,
}

/// Every image change between two stacks, matching services by what they
/// run: a service present at both whose image changed or was removed, and a
/// service that disappeared while another appeared with the same image
/// repository (a rename in the same commit is that service moving). Each
/// disappeared service is paired with an appeared one running exactly its
/// image (a plain rename, no change) first, else with the first appeared
/// one, by name, of the same repository.
pub fn changes(from: &Stack, to: &Stack) -> Vec<ImageChange> {
    let mut out = Vec::new();
    let mut appeared: Vec<&Service> = to
        .services
        .values()
        .filter(|s| !from.services.contains_key(&s.name) && s.image.is_some())
        .collect();
    let mut disappeared = Vec::new();
    for (name, a) in &from.services {
        if a.image.is_none() {
            continue;
        }
        match to.services.get(name) {
            Some(b) if a.image != b.image => out.push(ImageChange {
                from: a.clone(),
                to: b.clone(),
                renamed: false,
            }),
            Some(_) => {}
            None => match appeared.iter().position(|b| b.image == a.image) {
                Some(i) => {
                    appeared.remove(i);
                }
                None => disappeared.push(a),
            },
        }
    }
    for a in disappeared {
        let repo = a.image.as_ref().map(|i| &i.repository);
        let same_repo = appeared
            .iter()
            .position(|b| b.image.as_ref().map(|i| &i.repository) == repo);
        if let Some(i) = same_repo {
            out.push(ImageChange {
                from: a.clone(),
                to: appeared.remove(i).clone(),
                renamed: true,
            });
        }
    }
    out
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

    fn stack(services: &[(&str, &str)]) -> Stack {
        Stack {
            services: services
                .iter()
                .map(|(name, image)| {
                    let svc = Service {
                        name: (*name).to_string(),
                        image: Some(img(image)),
                        replicas: None,
                        file: "stack.yml".into(),
                        line: 1,
                        auto_rollback: None,
                    };
                    ((*name).to_string(), svc)
                })
                .collect(),
        }
    }

    fn pairs(from: &Stack, to: &Stack) -> Vec<(String, String, bool)> {
        changes(from, to)
            .into_iter()
            .map(|c| (c.from.name, c.to.name, c.renamed))
            .collect()
    }

    #[test]
    fn r15_services_are_matched_by_what_they_run() {
        let old = stack(&[("web", "shop:2"), ("nginx", "nginx:1.25")]);
        let renamed_back = stack(&[("webnew", "shop:1"), ("nginx", "nginx:1.25")]);
        assert_eq!(
            pairs(&old, &renamed_back),
            vec![("web".into(), "webnew".into(), true)]
        );
        // A plain rename is no change (another new service at an older tag is new).
        let both = stack(&[
            ("web2", "shop:2"),
            ("zz", "shop:1"),
            ("nginx", "nginx:1.25"),
        ]);
        assert!(pairs(&old, &both).is_empty());
        // A different repository is not the same service.
        let other = stack(&[("api", "other:1"), ("nginx", "nginx:1.25")]);
        assert!(pairs(&old, &other).is_empty());
    }
}
