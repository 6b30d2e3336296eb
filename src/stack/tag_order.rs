//! Ordering image tags: semver (with or without `v`), partial versions, calver,
//! build numbers and same-suffix variants. Returns `None` when two tags cannot
//! be ordered honestly (commit shas, `latest`, different suffixes).

use std::cmp::Ordering;

/// A tag split into its numeric release, pre-release and variant suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Version {
    release: Vec<u64>,
    pre: Option<semver::Prerelease>,
    suffix: String,
}

fn parse(tag: &str) -> Option<Version> {
    let t = tag.strip_prefix(['v', 'V']).unwrap_or(tag);
    let digits_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (head, rest) = t.split_at(digits_end);
    if head.is_empty() || head.starts_with('.') || head.ends_with('.') || head.contains("..") {
        return None;
    }
    let release: Vec<u64> = head
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    // A long single number that is not a date could be a commit-ish; hex shas
    // with letters never reach here, but all-digit shas are rare enough.
    let (pre, suffix) = match rest.strip_prefix('-') {
        None if rest.is_empty() => (None, String::new()),
        None => return None,
        Some(r) => {
            // `2.1.0-alpine` is a variant; `2.1.0-rc.1` a pre-release.
            // `2.1.0-rc.1-alpine` is both.
            let (p, s) = split_pre_and_variant(r);
            let pre = match p {
                Some(p) => Some(semver::Prerelease::new(p).ok()?),
                None => None,
            };
            (pre, s.to_string())
        }
    };
    Some(Version {
        release,
        pre,
        suffix,
    })
}

fn is_pre_word(s: &str) -> bool {
    let w = s.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    matches!(
        w.to_ascii_lowercase().as_str(),
        "alpha" | "beta" | "rc" | "pre" | "dev" | "a" | "b" | "preview"
    )
}

fn split_pre_and_variant(r: &str) -> (Option<&str>, &str) {
    match r.split_once('-') {
        Some((first, variant)) if is_pre_word(first.split('.').next().unwrap_or("")) => {
            (Some(first), variant)
        }
        None if is_pre_word(r.split('.').next().unwrap_or("")) => (Some(r), ""),
        _ => (None, r),
    }
}

/// Compare two tags. `Some(Less)` means `a` is older than `b`.
///
/// `None` when the tags are not comparable: not versions, different variant
/// suffixes, or a mix of calendar and semantic versions.
pub fn compare(a: &str, b: &str) -> Option<Ordering> {
    if a == b {
        return Some(Ordering::Equal);
    }
    let va = parse(a)?;
    let vb = parse(b)?;
    if va.suffix != vb.suffix {
        return None;
    }
    // A compact date (20240501) against a dotted version is not comparable.
    let compact = |v: &Version| v.release.len() == 1 && v.release[0] >= 1_000_000;
    if compact(&va) != compact(&vb) {
        return None;
    }
    let n = va.release.len().max(vb.release.len());
    for i in 0..n {
        let x = va.release.get(i).copied().unwrap_or(0);
        let y = vb.release.get(i).copied().unwrap_or(0);
        match x.cmp(&y) {
            Ordering::Equal => {}
            o => return Some(o),
        }
    }
    Some(match (&va.pre, &vb.pre) {
        (None, None) => Ordering::Equal,
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (Some(x), Some(y)) => x.cmp(y),
    })
}

/// Why two tags could not be ordered, for messages.
pub fn why_not_comparable(a: &str, b: &str) -> String {
    match (parse(a), parse(b)) {
        (None, _) => format!("tag {a:?} is not a version"),
        (_, None) => format!("tag {b:?} is not a version"),
        (Some(x), Some(y)) if x.suffix != y.suffix => {
            format!("tags {a:?} and {b:?} have different variants")
        }
        _ => format!("tags {a:?} and {b:?} use different version schemes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal, Greater, Less};

    #[test]
    fn table() {
        let cases: &[(&str, &str, Option<Ordering>)] = &[
            ("1.10.0", "1.9.0", Some(Greater)),
            ("1.9.0", "1.10.0", Some(Less)),
            ("v1.4.2", "1.4.2", Some(Equal)),
            ("v2.0.0", "v1.9.9", Some(Greater)),
            ("2.0.0-rc.1", "2.0.0", Some(Less)),
            ("2.0.0-rc.2", "2.0.0-rc.10", Some(Less)),
            ("2.0.0-beta", "2.0.0-alpha", Some(Greater)),
            ("1.4", "1.4.0", Some(Equal)),
            ("1.4", "1.4.1", Some(Less)),
            ("1.5", "1.4.9", Some(Greater)),
            ("2024.05.1", "2024.04.3", Some(Greater)),
            ("2024.5.10", "2024.5.9", Some(Greater)),
            ("20240501", "20240430", Some(Greater)),
            ("41", "40", Some(Greater)),
            ("100", "99", Some(Greater)),
            ("2.1.0-alpine", "2.0.9-alpine", Some(Greater)),
            ("2.1.0-rc.1-alpine", "2.1.0-alpine", Some(Less)),
            ("2.1.0-alpine", "2.0.9-slim", None),
            ("2.1.0-alpine", "2.0.9", None),
            ("latest", "1.0", None),
            ("a1b2c3d", "e4f5a6b", None),
            ("main-abcdef1", "main-1234567", None),
            ("20240501", "1.2.3", None),
            ("1.2.3.4", "1.2.3.5", Some(Less)),
        ];
        for (a, b, want) in cases {
            assert_eq!(compare(a, b), *want, "compare({a:?}, {b:?})");
        }
    }

    #[test]
    fn reasons_are_specific() {
        assert!(why_not_comparable("latest", "1").contains("\"latest\" is not a version"));
        assert!(why_not_comparable("1-alpine", "1-slim").contains("variants"));
    }
}
