//! `tagback init`: write a commented `.tagback.yml` from what the working
//! tree shows — the stack file, `manage.py`, its settings module, and which
//! services run this repository's Django code (their image tag is one of
//! its git revisions, the zero-config case) and which are well-known
//! infrastructure images. What it cannot tell is written as a comment that
//! says what to decide; nothing is guessed into a live key.

use std::io::Write;
use std::path::Path;

use crate::Outcome;
use crate::config::{self, Config};
use crate::django::project::{find_manage_py, settings_named_by_manage_py};
use crate::error::{Error, Result};
use crate::fs::{self, Mode};
use crate::git::Repo;
use crate::source::GitRevision;
use crate::stack::{self, DEFAULT_FILES};

/// Images that are never Django (matched on the image name's last part).
const NOT_DJANGO: &[&str] = &[
    "caddy",
    "elasticsearch",
    "haproxy",
    "httpd",
    "mariadb",
    "memcached",
    "minio",
    "mongo",
    "mysql",
    "nginx",
    "opensearch",
    "pgbouncer",
    "postgis",
    "postgres",
    "rabbitmq",
    "redis",
    "traefik",
    "valkey",
];

/// What `init` found about one service.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// The image tag is a revision of this repository.
    Django { tag: String, rev: String },
    /// A well-known non-Django image.
    NotDjango,
    /// Neither: the user must say.
    Unknown { why: String },
    /// No `image:` (a build-only service): nothing for tagback to judge.
    NoImage,
}

/// What `init` found in the repository.
#[derive(Debug, Clone, Default)]
struct Found {
    files: Vec<String>,
    other_files: Vec<String>,
    manage_py: Option<String>,
    settings: Option<String>,
    services: Vec<(String, String, Kind)>,
}

pub(super) fn run(dir: &Path, force: bool, stdout: bool, out: &mut dyn Write) -> Result<Outcome> {
    let repo = Repo::open(dir)?;
    let root = repo
        .workdir()
        .ok_or_else(|| {
            Error::input(format!(
                "{} is a bare repository; init needs a working tree",
                repo.label()
            ))
        })?
        .to_path_buf();
    let target = root.join(config::FILE_NAME);
    if !stdout && !force && target.exists() {
        return Err(Error::input(format!(
            "{} already exists; pass --force to replace it, or --stdout to print a new one",
            target.display()
        )));
    }
    let found = detect(&repo)?;
    let text = render(&found);
    // What init writes must be what tagback reads.
    Config::parse(&text).map_err(|e| {
        Error::input(format!(
            "tagback init produced a .tagback.yml it cannot read ({e}); please report it"
        ))
    })?;
    let io = |e| Error::io("<stdout>", e);
    if stdout {
        out.write_all(text.as_bytes()).map_err(io)?;
        return Ok(Outcome::Safe);
    }
    let mode = if force {
        Mode::Replace
    } else {
        Mode::CreateNew
    };
    fs::write_atomic(&target, text.as_bytes(), mode)?;
    writeln!(out, "wrote {}", target.display()).map_err(io)?;
    for (name, _, kind) in &found.services {
        let line = match kind {
            Kind::Django { tag, rev } => {
                format!("  {name}: Django (tag {tag} is revision {rev} here)")
            }
            Kind::NotDjango => format!("  {name}: not Django"),
            Kind::Unknown { why } => format!("  {name}: decide in the file ({why})"),
            Kind::NoImage => format!("  {name}: no image: (build-only), not judged"),
        };
        writeln!(out, "{line}").map_err(io)?;
    }
    writeln!(out, "next: tagback check").map_err(io)?;
    Ok(Outcome::Safe)
}

fn detect(repo: &Repo) -> Result<Found> {
    let snap = repo.worktree_snapshot();
    let mut found = Found::default();
    for name in DEFAULT_FILES {
        if repo.read(&snap, name)?.is_some() {
            if found.files.is_empty() {
                found.files.push((*name).to_string());
            } else {
                found.other_files.push((*name).to_string());
            }
        }
    }
    found.manage_py = find_manage_py(&GitRevision::new(repo, &snap), None)?;
    if let Some(m) = &found.manage_py
        && let Some((_, text)) = repo.read_text(&snap, m)?
    {
        found.settings = settings_named_by_manage_py(&text);
    }
    if found.files.is_empty() {
        return Ok(found);
    }
    let Some(stack) = stack::load(repo, &snap, &found.files)? else {
        return Ok(found);
    };
    for (name, svc) in &stack.services {
        let Some(image) = &svc.image else {
            found
                .services
                .push((name.clone(), format!("(in {})", svc.file), Kind::NoImage));
            continue;
        };
        let shown = image.to_string();
        let last = image
            .repository
            .rsplit('/')
            .next()
            .unwrap_or(&image.repository);
        let kind = if NOT_DJANGO.contains(&last) {
            Kind::NotDjango
        } else {
            match image.effective_tag() {
                None => Kind::Unknown {
                    why: "the image has no tag".into(),
                },
                Some(tag) => {
                    let rev = [tag.to_string(), format!("v{tag}")]
                        .into_iter()
                        .find(|r| repo.has_revision(r));
                    match (rev, &found.manage_py) {
                        (Some(rev), Some(_)) => Kind::Django {
                            tag: tag.to_string(),
                            rev,
                        },
                        (Some(_), None) => Kind::Unknown {
                            why: "its tag is a revision here, but there is no manage.py".into(),
                        },
                        (None, _) => Kind::Unknown {
                            why: format!("tag {tag} is not a revision of this repository"),
                        },
                    }
                }
            }
        };
        found.services.push((
            name.clone(),
            format!("{shown} ({}:{})", svc.file, svc.line),
            kind,
        ));
    }
    Ok(found)
}

/// Quote a scalar for YAML when it needs it.
fn yaml_str(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'));
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

fn render(f: &Found) -> String {
    let mut t = String::new();
    let mut line = |s: &str| {
        t.push_str(s);
        t.push('\n');
    };
    line("# .tagback.yml, written by `tagback init` from what it found here.");
    line("# Every key is optional; the comments say what each one changes.");
    line("");
    line(
        "# stack: NAME               # Swarm stack / Compose project name for rollback scripts; STACK overrides at run time",
    );
    if f.files.is_empty() {
        line(&format!(
            "# files: [stack.yml]       # no stack file found (looked for {}); name yours here",
            DEFAULT_FILES.join(", ")
        ));
    } else {
        let list: Vec<String> = f.files.iter().map(|s| yaml_str(s)).collect();
        line(&format!(
            "files: [{}]{}# the stack files tagback compares (like -f)",
            list.join(", "),
            pad(list.join(", ").len() + 9)
        ));
        if !f.other_files.is_empty() {
            line(&format!(
                "# also found: {} (add to files: to merge them in order, like docker stack deploy -c a -c b)",
                f.other_files.join(", ")
            ));
        }
    }
    line("# ledger: .tagback/records  # where rollback records are kept (this is the default)");
    let Some(_) = f.services.first() else {
        line("# services:                 # no service with an image found in the stack file");
        return t;
    };
    line("services:");
    for (name, image, kind) in &f.services {
        let key = yaml_str(name);
        match kind {
            Kind::Django { tag, rev } => {
                line(&format!("  {key}:"));
                line(&format!(
                    "    # image {image}: tag {tag} is revision {rev} of this repository"
                ));
                line("    django: true");
                match &f.manage_py {
                    Some(m) => line(&format!(
                        "    # manage_py: {}   # found; set it if tagback should use another one",
                        yaml_str(m)
                    )),
                    None => line("    # manage_py: src/manage.py"),
                }
                match &f.settings {
                    Some(s) => line(&format!(
                        "    # settings: {}   # DJANGO_SETTINGS_MODULE in manage.py",
                        yaml_str(s)
                    )),
                    None => line(
                        "    # settings: project.settings   # manage.py does not set DJANGO_SETTINGS_MODULE: say it here",
                    ),
                }
                line("    # command: \"python manage.py\"   # how manage.py runs in the container");
                line("    # strategy: exec               # exec | job | compose");
                line(
                    "    # ref: \"v{tag}\"                 # image tag -> git revision (default: {tag}, then v{tag})",
                );
            }
            Kind::NotDjango => {
                line(&format!("  {key}:"));
                line(&format!("    # image {image}: not Django"));
                line("    django: false");
            }
            Kind::NoImage => {
                line(&format!(
                    "  # {key}: {image} has no image: (build-only); tagback judges image changes only"
                ));
            }
            Kind::Unknown { why } => {
                line(&format!("  # {key}:"));
                line(&format!("  #   image {image}: {why}."));
                line(
                    "  #   Uncomment one: django: false (not Django), or where its code lives and how tags map:",
                );
                line("  #   django: false");
                line(
                    "  #   repo: app               # the Django repository, inside this one (a submodule, or a second checkout in CI)",
                );
                line("  #   ref: \"release-{tag}\"    # image tag -> git revision");
            }
        }
    }
    t
}

fn pad(used: usize) -> String {
    " ".repeat(29usize.saturating_sub(used).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_module_is_read_from_setdefault_as_a_plan_reads_it() {
        let m = "import os\nos.environ.setdefault(\n    'DJANGO_SETTINGS_MODULE', \"shop.settings.prod\")\n";
        assert_eq!(
            settings_named_by_manage_py(m).as_deref(),
            Some("shop.settings.prod")
        );
        assert_eq!(settings_named_by_manage_py("import os\n"), None);
        // A variable assigned once, as the plan's rule follows it.
        let m = "import os\nDEFAULT = 'shop.settings'\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', DEFAULT)\n";
        assert_eq!(
            settings_named_by_manage_py(m).as_deref(),
            Some("shop.settings")
        );
        // Assigned under a condition: the plan cannot choose, nor can init.
        let m = "import os, sys\nDEFAULT = 'a.settings'\nif sys.argv:\n    DEFAULT = 'b.settings'\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', DEFAULT)\n";
        assert_eq!(settings_named_by_manage_py(m), None);
    }

    #[test]
    fn every_rendering_is_a_config_tagback_reads() {
        let cases = [
            Found::default(),
            Found {
                files: vec!["stack.yml".into()],
                other_files: vec!["compose.yml".into()],
                manage_py: Some("src/manage.py".into()),
                settings: Some("shop.settings".into()),
                services: vec![
                    (
                        "web".into(),
                        "shop:2 (stack.yml:3)".into(),
                        Kind::Django {
                            tag: "2".into(),
                            rev: "v2".into(),
                        },
                    ),
                    (
                        "db".into(),
                        "postgres:16 (stack.yml:7)".into(),
                        Kind::NotDjango,
                    ),
                    ("builder".into(), "(stack.yml:11)".into(), Kind::NoImage),
                    (
                        "odd: name".into(),
                        "x:latest (stack.yml:9)".into(),
                        Kind::Unknown {
                            why: "tag latest is not a revision".into(),
                        },
                    ),
                ],
            },
        ];
        for f in cases {
            let text = render(&f);
            let cfg = Config::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(cfg.files, f.files);
            for (name, _, kind) in &f.services {
                let s = cfg.service(name);
                match kind {
                    Kind::Django { .. } => assert_eq!(s.django, Some(true)),
                    Kind::NotDjango => assert_eq!(s.django, Some(false)),
                    Kind::Unknown { .. } | Kind::NoImage => {
                        assert_eq!(s.django, None, "left for the user")
                    }
                }
            }
        }
    }
}
