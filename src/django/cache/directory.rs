//! The cached parse of one migrations directory: one line per migration,
//! decoded line by line on demand.

use std::sync::Arc;

use git2::Oid;

use super::text::{cut, fields_of, oid_from_hex};
use crate::django::migration::{Dependency, DynamicPart, Migration, Operations};
use crate::django::{MigrationKey, Name};

/// First line of a cached directory.
const HEADER: &str = "tagback migrations v4";

/// One parsed file of a cached directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Migration name (file stem).
    pub name: String,
    /// Blob id of the file.
    pub blob: Oid,
    /// What the file says (its operations are not stored).
    pub migration: Arc<Migration>,
}

// One line per migration, tab-separated: name, blob, initial (`-`, `0`, `1`),
// dependencies, replaces, run_before, dynamic parts. List items are separated
// by US (0x1f), the two halves of a pair by RS (0x1e); a dependency starts
// with `k` (a key) or `s` (a swappable setting). A directory whose strings
// contain a separator is not cached. Reading it back is a split, not a parse
// (decoding JSON took a fifth of a warm plan).
const ITEM: char = '\u{1f}';
const PAIR: char = '\u{1e}';
const _: () = assert!(ITEM.is_ascii() && PAIR.is_ascii());

pub(super) fn encode(entries: &[Entry]) -> Option<String> {
    use std::fmt::Write;
    let mut out = String::with_capacity(entries.len() * 96);
    out.push_str(HEADER);
    out.push('\n');
    let mut strings: Vec<&str> = Vec::new();
    let list = |out: &mut String, i: usize| {
        if i > 0 {
            out.push(ITEM);
        }
    };
    for e in entries {
        let m = &e.migration;
        strings.push(&e.name);
        let initial = match m.initial {
            None => '-',
            Some(false) => '0',
            Some(true) => '1',
        };
        let _ = write!(out, "{}\t{}\t{initial}\t", e.name, e.blob);
        for (i, d) in m.dependencies.iter().enumerate() {
            list(&mut out, i);
            match d {
                Dependency::Key(a, n) => {
                    let _ = write!(out, "k{a}{PAIR}{n}");
                    strings.extend([a.as_str(), n.as_str()]);
                }
                Dependency::Swappable(setting) => {
                    let _ = write!(out, "s{setting}");
                    strings.push(setting);
                }
            }
        }
        for pairs in [&m.replaces, &m.run_before] {
            out.push('\t');
            for (i, MigrationKey { app: a, name: n }) in pairs.iter().enumerate() {
                list(&mut out, i);
                let _ = write!(out, "{a}{PAIR}{n}");
                strings.extend([a.as_str(), n.as_str()]);
            }
        }
        out.push('\t');
        for (i, d) in m.dynamic.iter().enumerate() {
            list(&mut out, i);
            let _ = write!(out, "{}{PAIR}{}", d.line, d.what);
            strings.push(&d.what);
        }
        out.push('\n');
    }
    let clean = strings
        .iter()
        .all(|s| !s.contains(['\t', '\n', '\r', ITEM, PAIR]));
    clean.then_some(out)
}

/// A cached directory as read from disk, decoded line by line on demand.
pub struct CachedDir {
    text: String,
    /// Where the directory starts in `text` (after the file's checksum line).
    body: usize,
}

/// One line of a [`CachedDir`]: the migration's name and blob id, and the
/// rest of the line, decoded only when needed.
pub struct CachedLine<'a> {
    /// The whole line (equal lines describe equal files).
    pub raw: &'a str,
    /// Migration name (file stem).
    pub name: &'a str,
    blob: &'a str,
    rest: &'a str,
}

impl CachedDir {
    /// A directory read from `text` (check it with [`CachedDir::is_valid`]).
    pub fn new(text: String) -> CachedDir {
        CachedDir { text, body: 0 }
    }

    /// A directory that starts at byte `body` of `text` (a character
    /// boundary; the file's checksum line comes before it). Not copying the
    /// rest down saves moving every cached file once.
    pub fn starting_at(text: String, body: usize) -> CachedDir {
        let body = if text.is_char_boundary(body) {
            body
        } else {
            text.len()
        };
        CachedDir { text, body }
    }

    /// How many migrations it lists at most (its lines but the header).
    pub fn len_hint(&self) -> usize {
        memchr::memchr_iter(b'\n', self.body().as_bytes()).count()
    }

    fn body(&self) -> &str {
        &self.text[self.body..]
    }

    /// The entries, or `None` at the first malformed line.
    pub fn lines(&self) -> impl Iterator<Item = Option<CachedLine<'_>>> {
        let mut lines = split_terminator_lf(self.body());
        let valid = lines.next() == Some(HEADER);
        lines.map(move |raw| {
            if !valid {
                return None;
            }
            let (name, rest) = cut(raw, b'\t')?;
            let (blob, rest) = cut(rest, b'\t')?;
            Some(CachedLine {
                raw,
                name,
                blob,
                rest,
            })
        })
    }

    /// The byte range of one of this directory's lines.
    pub fn range_of(&self, raw: &str) -> std::ops::Range<usize> {
        let start = raw.as_ptr() as usize - self.text.as_ptr() as usize;
        start..start + raw.len()
    }

    /// The text in a range given by [`CachedDir::range_of`].
    pub fn at(&self, range: std::ops::Range<usize>) -> &str {
        self.text.get(range).unwrap_or_default()
    }

    /// Whether the file starts as a cached directory does.
    pub fn is_valid(&self) -> bool {
        self.body().split_terminator('\n').next() == Some(HEADER)
    }
}

/// Names shared while one directory's lines are decoded: the app's label,
/// and the name of the line before (what a migration most often depends
/// on). A warm plan decodes thousands of lines; most of their names are
/// one of these two.
pub struct SharedNames {
    app: Name,
    previous: Option<Name>,
}

impl SharedNames {
    /// For the directory of app `label`.
    pub fn new(label: &str) -> SharedNames {
        SharedNames {
            app: Name::from(label),
            previous: None,
        }
    }

    /// The app's label.
    pub fn app(&self) -> Name {
        self.app.clone()
    }

    /// `s` as a name, shared where it is the label or the previous name.
    pub fn get(&self, s: &str) -> Name {
        if self.app == s {
            return self.app.clone();
        }
        match &self.previous {
            Some(p) if *p == s => p.clone(),
            _ => Name::from(s),
        }
    }

    /// Remember the name of the line just decoded.
    pub fn decoded(&mut self, name: &Name) {
        self.previous = Some(name.clone());
    }
}

impl CachedLine<'_> {
    /// The blob id of the file.
    pub fn blob(&self) -> Option<Oid> {
        oid_from_hex(self.blob)
    }

    /// The migration (without operations) the line describes, its names
    /// taken from `names` where they are shared.
    pub fn migration(&self, names: &SharedNames) -> Option<Migration> {
        let [initial, deps, replaces, run_before, dynamic] = fields(self.rest)?;
        let pair = |s: &str| -> Option<MigrationKey> {
            let (a, n) = cut(s, PAIR as u8)?;
            Some(MigrationKey {
                app: names.get(a),
                name: names.get(n),
            })
        };
        let initial = match initial {
            "-" => None,
            "0" => Some(false),
            "1" => Some(true),
            _ => return None,
        };
        let mut dependencies = Vec::with_capacity(count_items(deps));
        for d in items(deps) {
            dependencies.push(match d.split_at_checked(1)? {
                ("k", rest) => {
                    let MigrationKey { app: a, name: n } = pair(rest)?;
                    Dependency::Key(a, n)
                }
                ("s", rest) => Dependency::Swappable(rest.to_string()),
                _ => return None,
            });
        }
        let replaces = items(replaces).map(pair).collect::<Option<_>>()?;
        let run_before = items(run_before).map(pair).collect::<Option<_>>()?;
        let dynamic = items(dynamic)
            .map(|d| {
                let (line, what) = cut(d, PAIR as u8)?;
                Some(DynamicPart {
                    line: line.parse().ok()?,
                    what: what.to_string(),
                })
            })
            .collect::<Option<_>>()?;
        Some(Migration {
            dependencies,
            replaces,
            run_before,
            initial,
            operations: Operations::Deferred,
            dynamic,
            operations_dynamic: Vec::new(),
        })
    }
}

/// `text.split_terminator('\n')`, with the line ends found by `memchr`.
fn split_terminator_lf(text: &str) -> impl Iterator<Item = &str> {
    let mut start = 0;
    let mut ends = memchr::memchr_iter(b'\n', text.as_bytes());
    std::iter::from_fn(move || match ends.next() {
        Some(end) => {
            // `\n` is ASCII: both ends are character boundaries.
            let line = &text[start..end];
            start = end + 1;
            Some(line)
        }
        None if start < text.len() => {
            let line = &text[start..];
            start = text.len();
            Some(line)
        }
        None => None,
    })
}

/// The five tab-separated fields after the name and blob of an entry line.
fn fields(rest: &str) -> Option<[&str; 5]> {
    let mut out = [""; 5];
    let mut n = 0;
    let mut start = 0;
    // Tabs are ASCII, so every split point is a character boundary.
    for (i, b) in rest.bytes().enumerate() {
        if b == b'\t' {
            *out.get_mut(n)? = &rest[start..i];
            n += 1;
            start = i + 1;
        }
    }
    *out.get_mut(n)? = &rest[start..];
    (n == 4).then_some(out)
}

/// How many items a list field has.
fn count_items(s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        1 + s.bytes().filter(|b| *b == ITEM as u8).count()
    }
}

/// The items of a list field (none when empty).
fn items(s: &str) -> impl Iterator<Item = &str> {
    fields_of(s, ITEM as u8).filter(|_| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, migration: Migration) -> Entry {
        Entry {
            name: name.to_string(),
            blob: Oid::from_str("0123456789abcdef0123456789abcdef01234567").unwrap(),
            migration: Arc::new(migration),
        }
    }

    fn decode(text: &str) -> Option<Vec<Entry>> {
        let dir = CachedDir::new(text.to_string());
        if !dir.is_valid() {
            return None;
        }
        dir.lines()
            .map(|l| {
                let l = l?;
                Some(Entry {
                    name: l.name.to_string(),
                    blob: l.blob()?,
                    migration: Arc::new(l.migration(&SharedNames::new("shop"))?),
                })
            })
            .collect()
    }

    fn bare() -> Migration {
        Migration {
            dependencies: Vec::new(),
            replaces: Vec::new(),
            run_before: Vec::new(),
            initial: None,
            operations: Operations::Deferred,
            dynamic: Vec::new(),
            operations_dynamic: Vec::new(),
        }
    }

    #[test]
    fn directories_round_trip() {
        let full = Migration {
            dependencies: vec![
                Dependency::Key("shop".into(), "0001_initial".into()),
                Dependency::Key("auth".into(), "__first__".into()),
                Dependency::Swappable("AUTH_USER_MODEL".into()),
            ],
            replaces: vec![
                MigrationKey::new("shop", "0002_a"),
                MigrationKey::new("shop", "0003_b"),
            ],
            run_before: vec![MigrationKey::new("other", "0001_initial")],
            initial: Some(true),
            operations: Operations::Deferred,
            dynamic: vec![DynamicPart {
                line: 7,
                what: "dependencies computed at run time".into(),
            }],
            operations_dynamic: Vec::new(),
        };
        let mut not_initial = bare();
        not_initial.initial = Some(false);
        let entries = vec![
            entry("0001_x", full),
            entry("0002_y", bare()),
            entry("0003_z", not_initial),
        ];
        let text = encode(&entries).unwrap();
        assert_eq!(decode(&text).unwrap(), entries);
        assert_eq!(decode(&format!("{HEADER}\n")).unwrap(), Vec::new());
    }

    #[test]
    fn separators_in_strings_are_not_cached_and_garbage_is_a_miss() {
        let mut odd = bare();
        odd.dependencies
            .push(Dependency::Key("shop".into(), "a\tb".into()));
        assert_eq!(encode(&[entry("0001_x", odd)]), None);
        let mut odd = bare();
        odd.replaces.push(MigrationKey::new("shop", "a\u{1e}b"));
        assert_eq!(encode(&[entry("0001_x", odd)]), None);
        assert_eq!(decode("not a cache\n"), None);
        let blob = "0123456789abcdef0123456789abcdef01234567";
        assert!(decode(&format!("{HEADER}\n0001\t{blob}\t-\t\t\t\t\n")).is_some());
        assert_eq!(decode(&format!("{HEADER}\n0001\tzz\t-\t\t\t\t\n")), None);
        assert_eq!(
            decode(&format!("{HEADER}\n0001\t{blob}\t?\t\t\t\t\n")),
            None
        );
        assert_eq!(
            decode(&format!("{HEADER}\n0001\t{blob}\t-\tx\t\t\t\n")),
            None
        );
        assert_eq!(decode(&format!("{HEADER}\n0001\t{blob}\n")), None);
        assert_eq!(oid_from_hex(&blob.to_uppercase()), None);
    }

    #[test]
    fn decoded_names_share_the_label_and_the_previous_name() {
        let mut second = bare();
        second.dependencies = vec![
            Dependency::Key("shop".into(), "0001_initial".into()),
            Dependency::Key("auth".into(), "0001_initial".into()),
        ];
        let text = encode(&[entry("0001_initial", bare()), entry("0002_next", second)]).unwrap();
        let dir = CachedDir::new(text);
        let mut names = SharedNames::new("shop");
        let mut decoded = Vec::new();
        for line in dir.lines() {
            let line = line.unwrap();
            let name = names.get(line.name);
            decoded.push((name.clone(), line.migration(&names).unwrap()));
            names.decoded(&name);
        }
        let [Dependency::Key(app, first), Dependency::Key(auth, _)] =
            &decoded[1].1.dependencies[..]
        else {
            panic!("two key dependencies: {:?}", decoded[1].1.dependencies);
        };
        assert!(app.is_shared_with(&names.app()) && first.is_shared_with(&decoded[0].0));
        assert_eq!(auth, "auth");
        assert!(!auth.is_shared_with(&names.app()));
    }

    #[test]
    fn lines_split_as_split_terminator_does() {
        for text in [
            "",
            "\n",
            "a",
            "a\n",
            "a\n\n",
            "\na\nb",
            "a\nb\n",
            "é\nü\n\nx",
        ] {
            let ours: Vec<&str> = split_terminator_lf(text).collect();
            let std: Vec<&str> = text.split_terminator('\n').collect();
            assert_eq!(ours, std, "{text:?}");
        }
    }

    #[test]
    fn a_directory_after_a_checksum_line_reads_as_one_without() {
        let text = encode(&[entry("0001_initial", bare()), entry("0002_next", bare())]).unwrap();
        let line = "tagback-sum 0123456789abcdef0123456789abcdef\n";
        let alone = CachedDir::new(text.clone());
        let after = CachedDir::starting_at(format!("{line}{text}"), line.len());
        assert!(after.is_valid());
        assert_eq!(after.len_hint(), 3);
        let raw = |d: &CachedDir| -> Vec<String> {
            d.lines().map(|l| l.unwrap().raw.to_string()).collect()
        };
        assert_eq!(raw(&after), raw(&alone));
        let first = after.lines().next().unwrap().unwrap();
        assert_eq!(after.at(after.range_of(first.raw)), first.raw);
        // A start that is not a character boundary reads as nothing.
        assert!(!CachedDir::starting_at("é".to_string(), 1).is_valid());
    }
}
