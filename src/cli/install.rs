//! `tagback install`: put the hook scripts into a repository without ever
//! losing an existing hook (it is kept as `NAME.tagback-chained` and run first).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::Outcome;
use crate::error::{Error, Result};
use crate::fs::{self, Mode};
use crate::git::Repo;

/// The hooks and their scripts (the files under `hooks/`).
pub(super) const HOOKS: &[(&str, &str)] = &[
    ("pre-push", include_str!("../../hooks/pre-push")),
    ("pre-commit", include_str!("../../hooks/pre-commit")),
    (
        "pre-merge-commit",
        include_str!("../../hooks/pre-merge-commit"),
    ),
];

const MARKER: &str = "installed by tagback";
const CHAINED: &str = ".tagback-chained";

fn hooks_dir(repo: &Repo) -> Result<PathBuf> {
    let cfg = git2::Repository::open(repo.git_dir())
        .and_then(|r| r.config())
        .and_then(|mut c| c.snapshot())
        .ok();
    let configured = cfg.and_then(|c| c.get_string("core.hooksPath").ok());
    Ok(match configured {
        Some(p) => {
            let p = PathBuf::from(shellexpand_home(&p));
            if p.is_absolute() {
                p
            } else {
                repo.workdir().unwrap_or_else(|| repo.git_dir()).join(p)
            }
        }
        None => repo.git_dir().join("hooks"),
    })
}

fn shellexpand_home(p: &str) -> String {
    match (p.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) => format!("{home}/{rest}"),
        _ => p.to_string(),
    }
}

pub(super) fn run(dir: &Path, uninstall: bool, out: &mut dyn Write) -> Result<Outcome> {
    let repo = Repo::open(dir)?;
    let hooks = hooks_dir(&repo)?;
    std::fs::create_dir_all(&hooks).map_err(|e| Error::io(&hooks, e))?;
    let say =
        |out: &mut dyn Write, s: String| writeln!(out, "{s}").map_err(|e| Error::io("<stdout>", e));
    for (name, script) in HOOKS {
        let path = hooks.join(name);
        let chained = hooks.join(format!("{name}{CHAINED}"));
        let existing = std::fs::read(&path).ok();
        let ours = existing
            .as_deref()
            .is_some_and(|b| String::from_utf8_lossy(b).contains(MARKER));
        if uninstall {
            if !ours {
                continue;
            }
            if chained.exists() {
                std::fs::rename(&chained, &path).map_err(|e| Error::io(&path, e))?;
                say(out, format!("restored {}", path.display()))?;
            } else {
                std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                say(out, format!("removed {}", path.display()))?;
            }
            continue;
        }
        if ours {
            if existing.as_deref() != Some(script.as_bytes()) {
                fs::write_atomic(&path, script.as_bytes(), Mode::ReplaceExecutable)?;
                say(out, format!("updated {}", path.display()))?;
            } else {
                say(out, format!("{} already installed", path.display()))?;
            }
            continue;
        }
        if let Some(old) = &existing {
            // Keep the user's hook first; never overwrite a different chained copy.
            match std::fs::read(&chained) {
                Ok(prev) if prev != *old => {
                    return Err(Error::input(format!(
                        "{} and {} both exist and differ; move one away, then run `tagback install` again",
                        path.display(),
                        chained.display()
                    )));
                }
                Ok(_) => {}
                Err(_) => fs::write_atomic(&chained, old, Mode::ReplaceExecutable)?,
            }
            say(
                out,
                format!("kept the existing {name} hook as {}", chained.display()),
            )?;
        }
        fs::write_atomic(&path, script.as_bytes(), Mode::ReplaceExecutable)?;
        say(out, format!("installed {}", path.display()))?;
    }
    Ok(Outcome::Safe)
}
