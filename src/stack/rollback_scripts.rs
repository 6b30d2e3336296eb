//! Deploy scripts that roll services back by hand: `docker service rollback`
//! (or `docker service update --rollback`) bypasses hooks and the CI gate,
//! exactly like Swarm's automatic rollback.

use crate::error::Result;
use crate::git::{Repo, Snapshot};

/// Directories whose files are read as deploy scripts (one level deep),
/// besides the repository's root.
const SCRIPT_DIRS: &[&str] = &[
    "scripts",
    "deploy",
    "bin",
    "ci",
    ".github/workflows",
    ".circleci",
];

/// Files larger than this are not deploy scripts.
const MAX_SCRIPT_BYTES: usize = 256 * 1024;

/// `(file, line)` of every command that rolls a Swarm service back in the
/// deploy scripts of a snapshot.
pub fn find(repo: &Repo, snap: &Snapshot) -> Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    for dir in std::iter::once("").chain(SCRIPT_DIRS.iter().copied()) {
        let Some(entries) = repo.list_dir(snap, dir)? else {
            continue;
        };
        for e in entries.iter().filter(|e| !e.is_dir && is_script(&e.name)) {
            let path = if dir.is_empty() {
                e.name.clone()
            } else {
                format!("{dir}/{}", e.name)
            };
            let Ok(Some(blob)) = repo.read(snap, &path) else {
                continue;
            };
            if blob.data.len() > MAX_SCRIPT_BYTES {
                continue;
            }
            let Ok(text) = std::str::from_utf8(&blob.data) else {
                continue;
            };
            out.extend(rollback_lines(text).into_iter().map(|l| (path.clone(), l)));
        }
    }
    Ok(out)
}

fn is_script(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "Makefile",
        "makefile",
        "Justfile",
        "justfile",
        ".gitlab-ci.yml",
    ];
    const EXTS: &[&str] = &[".sh", ".bash", ".yml", ".yaml", ".mk"];
    NAMES.contains(&name) || EXTS.iter().any(|x| name.ends_with(x))
}

/// 1-based lines that run a service rollback (comments are skipped).
fn rollback_lines(text: &str) -> Vec<u64> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let code = l.trim_start();
            if code.starts_with('#') {
                return false;
            }
            let words: Vec<&str> = code.split_whitespace().collect();
            words.windows(3).any(|w| {
                w[0].ends_with("docker")
                    && w[1] == "service"
                    && (w[2] == "rollback" || (w[2] == "update" && words.contains(&"--rollback")))
            })
        })
        .map(|(i, _)| i as u64 + 1)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_rollback_commands_not_comments() {
        let text = "#!/bin/sh\n# docker service rollback web\ndocker service rollback \"${STACK}_web\"\n  run: sudo docker service update --rollback shop_web\ndocker service update --image x shop_web\n";
        assert_eq!(rollback_lines(text), vec![3, 4]);
        assert!(is_script("deploy.sh") && is_script("Makefile") && !is_script("app.py"));
    }
}
