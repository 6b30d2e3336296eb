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

/// The hook script with the absolute path of the running tagback recorded
/// in it (git GUI clients run hooks without the user's PATH); the script
/// falls back to PATH when that path cannot be known or quoted.
fn hook_script(template: &str, exe: Option<&Path>) -> String {
    let quoted = exe
        .and_then(Path::to_str)
        .and_then(crate::script::quote::posix_sh);
    match quoted {
        Some(q) => template.replacen("installed_tagback=''", &format!("installed_tagback={q}"), 1),
        None => template.to_string(),
    }
}

/// The executable of this process, when it is still a file (not deleted or
/// replaced while running).
fn running_tagback() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .filter(|p| p.is_absolute() && p.is_file())
}

/// Whether anything (a file, a directory, a symlink, dangling or not) is at `p`.
fn occupied(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

/// Our hook: a regular file (never a symlink) carrying the marker.
fn is_ours(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_file())
        && std::fs::read(p).is_ok_and(|b| String::from_utf8_lossy(&b).contains(MARKER))
}

pub(super) fn run(dir: &Path, uninstall: bool, out: &mut dyn Write) -> Result<Outcome> {
    let repo = Repo::open(dir)?;
    let hooks = hooks_dir(&repo)?;
    std::fs::create_dir_all(&hooks).map_err(|e| Error::io(&hooks, e))?;
    let say =
        |out: &mut dyn Write, s: String| writeln!(out, "{s}").map_err(|e| Error::io("<stdout>", e));
    let exe = running_tagback();
    for (name, template) in HOOKS {
        let path = hooks.join(name);
        let chained = hooks.join(format!("{name}{CHAINED}"));
        let ours = is_ours(&path);
        if uninstall {
            // The user's hook was moved aside by rename, so moving it back
            // restores it exactly: bytes, mode, a symlink (dangling too).
            if ours || !occupied(&path) {
                if occupied(&chained) {
                    std::fs::rename(&chained, &path).map_err(|e| Error::io(&path, e))?;
                    say(out, format!("restored {}", path.display()))?;
                } else if ours {
                    std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                    say(out, format!("removed {}", path.display()))?;
                }
            }
            continue;
        }
        let script = hook_script(template, exe.as_deref());
        if ours {
            if std::fs::read(&path).ok().as_deref() != Some(script.as_bytes()) {
                fs::write_atomic(&path, script.as_bytes(), Mode::ReplaceExecutable)?;
                say(out, format!("updated {}", path.display()))?;
            } else {
                say(out, format!("{} already installed", path.display()))?;
            }
            continue;
        }
        if occupied(&path) {
            // Keep the user's hook, exactly as it is, to run first; never
            // overwrite a different chained hook.
            if occupied(&chained) && !same_file_contents(&path, &chained) {
                return Err(Error::input(format!(
                    "{} and {} both exist and differ; move one away, then run `tagback install` again",
                    path.display(),
                    chained.display()
                )));
            }
            keep_aside(&path, &chained)?;
            say(
                out,
                format!("kept the existing {name} hook as {}", chained.display()),
            )?;
        }
        fs::write_atomic(&path, script.as_bytes(), Mode::ReplaceExecutable)?;
        say(out, format!("installed {}", path.display()))?;
    }
    if !uninstall && exe.is_none() {
        say(
            out,
            "note: the path of this tagback is unknown; the hooks look for tagback on PATH (or set TAGBACK)".into(),
        )?;
    }
    Ok(Outcome::Safe)
}

/// Keep the user's hook at `chained` exactly as it is (a second hard link
/// to the same file, or a symlink to the same target) while it stays in
/// place: the new hook then replaces `path` by rename, so there is no moment
/// without a hook, and uninstall's rename back restores bytes, mode and
/// symlink alike.
fn keep_aside(path: &Path, chained: &Path) -> Result<()> {
    if occupied(chained) {
        // Checked to be the same by the caller (a rerun after an interruption).
        return Ok(());
    }
    let meta = std::fs::symlink_metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path).map_err(|e| Error::io(path, e))?;
        std::os::unix::fs::symlink(target, chained).map_err(|e| Error::io(chained, e))
    } else {
        std::fs::hard_link(path, chained).map_err(|e| Error::io(chained, e))
    }
}

/// Two entries that are the same symlink, or regular files with the same bytes and mode.
fn same_file_contents(a: &Path, b: &Path) -> bool {
    let (Ok(ma), Ok(mb)) = (std::fs::symlink_metadata(a), std::fs::symlink_metadata(b)) else {
        return false;
    };
    if ma.file_type().is_symlink() || mb.file_type().is_symlink() {
        return ma.file_type().is_symlink()
            && mb.file_type().is_symlink()
            && std::fs::read_link(a).ok() == std::fs::read_link(b).ok();
    }
    ma.permissions() == mb.permissions()
        && matches!((std::fs::read(a), std::fs::read(b)), (Ok(x), Ok(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorded_path_reads_back_exactly_in_sh() {
        for path in [
            "/opt/tagback/bin/tagback",
            "/tmp/it's here/$HOME `x`/tagback",
        ] {
            let script = hook_script(HOOKS[0].1, Some(Path::new(path)));
            let line = script
                .lines()
                .find(|l| l.starts_with("installed_tagback="))
                .unwrap();
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("{line}\nprintf %s \"$installed_tagback\""))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), path);
        }
        // A path sh cannot quote visibly falls back to PATH.
        let script = hook_script(HOOKS[0].1, Some(Path::new("/tmp/a\nb/tagback")));
        assert!(script.contains("installed_tagback=''"));
    }
}
