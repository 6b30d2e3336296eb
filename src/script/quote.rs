//! The only place values are quoted for bash.

use shell_quote::{Bash, Quote};

/// Quote one value for bash so that it is always exactly one word, whatever
/// it contains (spaces, quotes, `$`, newlines, control characters).
pub fn bash(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,+%".contains(&b))
    {
        return s.to_string();
    }
    let q: String = Bash::quote(s);
    q
}

/// Quote a value that is assigned to a variable: always visibly quoted, so
/// that `X=exec` is never mistaken for a command by readers or shellcheck.
pub fn literal(s: &str) -> String {
    let q = bash(s);
    if q.starts_with(['\'', '$']) {
        q
    } else {
        format!("'{q}'")
    }
}

/// Quote a multi-line value (a program) so that it reads as written: in
/// single quotes, line by line, when it has no `'` and no control character
/// but newlines; otherwise as [`literal`] does.
pub fn multiline(s: &str) -> String {
    if !s.contains('\'') && !s.chars().any(|c| c.is_control() && c != '\n') {
        format!("'{s}'")
    } else {
        literal(s)
    }
}

/// Quote a list of words and join them with spaces.
pub fn words<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|s| bash(s.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Make text safe inside a `#` comment line: no newlines or control characters.
pub fn comment(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Quote a value for POSIX `sh` (git hooks): single quotes, `'` written as
/// `'\''`. `None` when it has control characters, which `sh` cannot quote
/// visibly.
pub fn posix_sh(s: &str) -> Option<String> {
    if s.chars().any(char::is_control) {
        return None;
    }
    Some(format!("'{}'", s.replace('\'', "'\\''")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiline_programs_read_as_written_and_stay_one_word() {
        for s in ["a\nb \"c\" $d `e`\n", "it's\n", "tab\there\n"] {
            let q = multiline(s);
            let out = std::process::Command::new("bash")
                .arg("-c")
                .arg(format!("printf '%s' {q}"))
                .output()
                .expect("bash runs");
            assert_eq!(String::from_utf8(out.stdout).unwrap(), s, "{q}");
        }
        assert_eq!(multiline("x = \"$y\"\nz\n"), "'x = \"$y\"\nz\n'");
    }

    fn roundtrip(s: &str) -> String {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("printf '%s' {}", bash(s)))
            .output()
            .expect("bash runs");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn hostile_values_round_trip_through_bash() {
        for s in [
            "plain",
            "with space",
            "it's",
            "$(rm -rf /)",
            "`id`",
            "a\nb",
            "tab\there",
            "\"dq\"",
            "semi;colon",
            "",
            "*",
            "~",
            "-n",
            "\x07bell",
            "ünïcode",
        ] {
            assert_eq!(roundtrip(s), s, "{s:?}");
        }
    }

    #[test]
    fn comments_cannot_break_out() {
        assert!(!comment("x\nrm -rf /").contains('\n'));
    }
}
