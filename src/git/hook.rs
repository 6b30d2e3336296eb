//! Git's hook protocols, parsed without touching a repository.

use crate::error::{Error, Result};

/// One line of the pre-push protocol: `<local ref> <local sha> <remote ref> <remote sha>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushUpdate {
    /// The local ref being pushed (`refs/heads/main`), or `(delete)`.
    pub local_ref: String,
    /// The local commit (all zeros when deleting).
    pub local_sha: String,
    /// The remote ref being updated.
    pub remote_ref: String,
    /// The remote's current commit (all zeros for a new branch).
    pub remote_sha: String,
}

impl PushUpdate {
    /// A push that deletes the remote ref.
    pub fn is_delete(&self) -> bool {
        is_zero(&self.local_sha)
    }

    /// A push that creates the remote ref.
    pub fn is_new(&self) -> bool {
        is_zero(&self.remote_sha)
    }
}

fn is_zero(sha: &str) -> bool {
    sha.bytes().all(|b| b == b'0')
}

fn is_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Parse the pre-push hook's standard input.
pub fn parse_pre_push(stdin: &str) -> Result<Vec<PushUpdate>> {
    let mut out = Vec::new();
    for (i, line) in stdin.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        let [local_ref, local_sha, remote_ref, remote_sha] = fields[..] else {
            return Err(Error::input(format!(
                "pre-push hook input line {}: expected `<local ref> <local sha> <remote ref> <remote sha>`, got {:?}",
                i + 1,
                truncate(line)
            )));
        };
        if !is_sha(local_sha) || !is_sha(remote_sha) {
            return Err(Error::input(format!(
                "pre-push hook input line {}: {:?} is not a pair of object ids",
                i + 1,
                truncate(line)
            )));
        }
        out.push(PushUpdate {
            local_ref: local_ref.into(),
            local_sha: local_sha.into(),
            remote_ref: remote_ref.into(),
            remote_sha: remote_sha.into(),
        });
    }
    Ok(out)
}

fn truncate(s: &str) -> String {
    s.chars().take(120).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const Z: &str = "0000000000000000000000000000000000000000";

    #[test]
    fn parses_several_refs_new_and_deleted() {
        let input = format!(
            "refs/heads/main {A} refs/heads/main {A}\nrefs/heads/new {A} refs/heads/new {Z}\n(delete) {Z} refs/heads/old {A}\n"
        );
        let u = parse_pre_push(&input).unwrap();
        assert_eq!(u.len(), 3);
        assert!(!u[0].is_new() && !u[0].is_delete());
        assert!(u[1].is_new());
        assert!(u[2].is_delete());
    }

    #[test]
    fn empty_input_is_no_updates() {
        assert!(parse_pre_push("").unwrap().is_empty());
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let e = parse_pre_push("hello world\n").unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
        let e = parse_pre_push(&format!("a {A} b nothex\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("object ids"), "{e}");
    }
}
