//! `tagback guard`: is the live database ahead of the code about to start?
//!
//! The code knows, per Django's rules, every migration on its disk and every
//! name in one of their `replaces`. A row of `django_migrations` in an app
//! whose migrations are in the code's directory that the code does not know
//! is a migration a newer release applied: the database is ahead, and this
//! code must not start on it (Django's own `migrate --check` ignores such
//! rows). Rows Django leaves behind after a correct rollback are not ahead:
//! rows of apps the code does not install, and a squash's own row left after
//! unapplying through its replaced migrations (recognised by the name
//! `squashmigrations` gives it, or listed in `.tagback.yml` with a reason).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use serde::Serialize;

use crate::config::GuardAllow;
use crate::django::{Files, Graph, MigrationKey, Project};
use crate::error::{Error, Result};
use crate::finding::{Code, Finding};

/// One row of `django_migrations`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Row {
    /// The app label.
    pub app: String,
    /// The migration name.
    pub migration: String,
}

/// A row that is not ahead, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Excused {
    /// The app label.
    pub app: String,
    /// The migration name.
    pub migration: String,
    /// Why it does not count.
    pub reason: String,
}

/// A backward command to run with the newer image, per app with rows ahead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// The app label.
    pub app: String,
    /// This code's leaf of the app, or `zero`.
    pub target: String,
}

/// The guard's verdict, as data.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// JSON format version.
    pub version: u32,
    /// Whether the database is ahead of the code.
    pub ahead: bool,
    /// Rows of the code's apps that the code does not know.
    pub unknown: Vec<Row>,
    /// Rows the code does not know that are not ahead (leftover squash rows,
    /// allow-listed rows).
    pub excused: Vec<Excused>,
    /// Apps with rows that the code does not install (ignored).
    pub not_installed: Vec<String>,
    /// Installed apps with rows whose migrations are not in the directory
    /// (`django.contrib.*`, pip packages: not checked).
    pub not_checked: Vec<String>,
    /// Backward commands, with the newer image, that bring the database back.
    pub targets: Vec<Target>,
    /// Findings that limit what the guard could read.
    pub findings: Vec<Finding>,
    /// Rows read and migrations known.
    pub rows: usize,
    /// Migrations the code knows (on disk and replaced).
    pub known: usize,
    /// The database has no `django_migrations` table (never migrated).
    pub never_migrated: bool,
    /// Unknown rows numbered below this code's latest migration of their
    /// app: possibly rows of migrations deleted after a squash (a hint; they
    /// still block).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub numbered_below_latest: Vec<Row>,
}

/// Judge the rows of `django_migrations` against the code.
pub fn judge(
    project: &Project,
    files: &Files,
    graph: impl FnOnce() -> std::result::Result<Graph, String>,
    rows: &BTreeSet<MigrationKey>,
    allow: &[GuardAllow],
) -> Result<Report> {
    let allowed = allow_list(allow)?;
    let mut known: BTreeSet<MigrationKey> = BTreeSet::new();
    for f in files.iter() {
        known.insert(f.key.clone());
        known.extend(f.migration.replaces.iter().cloned());
    }
    let checked: BTreeSet<&str> = project.repo_apps().map(|a| a.label.as_str()).collect();
    let mut report = Report {
        version: 1,
        ahead: false,
        unknown: Vec::new(),
        excused: Vec::new(),
        not_installed: Vec::new(),
        not_checked: Vec::new(),
        targets: Vec::new(),
        findings: Vec::new(),
        rows: rows.len(),
        known: known.len(),
        never_migrated: false,
        numbered_below_latest: Vec::new(),
    };
    let mut apps_ahead: BTreeSet<&str> = BTreeSet::new();
    for MigrationKey { app, name } in rows {
        if !checked.contains(app.as_str()) {
            let list = if project.app(app).is_some() {
                &mut report.not_checked
            } else {
                &mut report.not_installed
            };
            if list.last().map(String::as_str) != Some(app.as_str()) {
                list.push(app.to_string());
            }
            continue;
        }
        let key = MigrationKey::new(app.clone(), name.clone());
        if known.contains(&key) {
            continue;
        }
        if let Some(reason) = allowed.get(&key) {
            report.excused.push(Excused {
                app: app.to_string(),
                migration: name.to_string(),
                reason: format!("allowed in .tagback.yml: {reason}"),
            });
        } else if let Some((first, last)) = leftover_squash(app, name, &known, rows) {
            report.excused.push(Excused {
                app: app.to_string(),
                migration: name.to_string(),
                reason: format!(
                    "the row of a squash of {first}…{last}, both known to this code and applied: Django leaves it after unapplying through the replaced migrations"
                ),
            });
        } else {
            report.unknown.push(Row {
                app: app.to_string(),
                migration: name.to_string(),
            });
            apps_ahead.insert(app);
        }
    }
    report.ahead = !report.unknown.is_empty();
    if !report.ahead {
        return Ok(report);
    }
    let latest = |app: &str| files.app(app).filter_map(|f| number(&f.key.name)).max();
    report.numbered_below_latest = report
        .unknown
        .iter()
        .filter(|r| {
            number(&r.migration)
                .zip(latest(&r.app))
                .is_some_and(|(n, l)| n < l)
        })
        .cloned()
        .collect();
    match graph() {
        Ok(graph) => {
            for app in apps_ahead {
                let leaves = graph.leaves(app);
                let target = match leaves.as_slice() {
                    [] => "zero".to_string(),
                    [one] => one.name.to_string(),
                    _ => {
                        report.findings.push(Finding::new(
                            Code::GuardNoTargets,
                            format!(
                                "app {app} has {} leaf migrations in this code (Django refuses to migrate it until they are merged)",
                                leaves.len()
                            ),
                        ));
                        continue;
                    }
                };
                report.targets.push(Target {
                    app: app.to_string(),
                    target,
                });
            }
        }
        Err(why) => report.findings.push(Finding::new(
            Code::GuardNoTargets,
            format!("cannot name the backward targets: {why}"),
        )),
    }
    for f in files.iter() {
        for d in &f.migration.dynamic {
            report.findings.push(
                Finding::new(
                    Code::DynamicMigration,
                    format!(
                        "{} (what this code knows may be incomplete)",
                        d.what.trim_end_matches('.')
                    ),
                )
                .at(f.file.clone(), d.line),
            );
        }
    }
    Ok(report)
}

/// The number a migration name starts with (`0003_x` → 3).
fn number(name: &str) -> Option<u32> {
    let digits = name.bytes().take_while(u8::is_ascii_digit).count();
    name[..digits].parse().ok()
}

/// The allow-list as keys, refusing entries without an app, a name or a reason.
fn allow_list(allow: &[GuardAllow]) -> Result<BTreeMap<MigrationKey, &str>> {
    let mut out = BTreeMap::new();
    for a in allow {
        let Some((app, name)) = a
            .migration
            .split_once('.')
            .filter(|(a, n)| !a.is_empty() && !n.is_empty() && !n.contains('.'))
        else {
            return Err(Error::input(format!(
                ".tagback.yml: guard.allow entry {:?} is not APP.MIGRATION (e.g. shop.0003_squashed_0005)",
                a.migration
            )));
        };
        if a.reason.trim().is_empty() {
            return Err(Error::input(format!(
                ".tagback.yml: guard.allow entry {:?} has no reason; say why this row is not a newer migration",
                a.migration
            )));
        }
        out.insert(MigrationKey::new(app, name), a.reason.trim());
    }
    Ok(out)
}

/// `Some((first, last))` when `name` is the name `squashmigrations` gives a
/// squash (`FIRST_squashed_LAST`) of two migrations of `app` that the code
/// knows and whose rows are present: the squash stands for migrations up to
/// one the code has, so its row is a leftover, not a newer migration.
fn leftover_squash<'n>(
    app: &str,
    name: &'n str,
    known: &BTreeSet<MigrationKey>,
    rows: &BTreeSet<MigrationKey>,
) -> Option<(&'n str, &'n str)> {
    const SEP: &str = "_squashed_";
    let mut from = 0;
    while let Some(i) = name[from..].find(SEP) {
        let (first, last) = (&name[..from + i], &name[from + i + SEP.len()..]);
        let present = |n: &str| {
            let k = MigrationKey::new(app, n);
            known.contains(&k) && rows.contains(&k)
        };
        if present(first) && present(last) {
            return Some((first, last));
        }
        from += i + SEP.len();
    }
    None
}

/// The verdict for people. `dir` names the code's directory.
pub fn render_text(report: &Report, dir: &str, warn_only: bool, w: &mut dyn Write) -> Result<()> {
    render(report, dir, warn_only, w).map_err(|e| Error::io("<stdout>", e))
}

fn render(report: &Report, dir: &str, warn_only: bool, w: &mut dyn Write) -> std::io::Result<()> {
    let mut notes = Vec::new();
    if !report.not_installed.is_empty() {
        notes.push(format!(
            "ignored rows of apps this code does not install: {}",
            report.not_installed.join(", ")
        ));
    }
    if !report.not_checked.is_empty() {
        notes.push(format!(
            "not checked (migrations outside {dir}): {}",
            report.not_checked.join(", ")
        ));
    }
    for e in &report.excused {
        notes.push(format!(
            "not ahead: {}.{}: {}",
            e.app, e.migration, e.reason
        ));
    }
    if report.never_migrated {
        writeln!(
            w,
            "tagback guard: ok: the database has no django_migrations table yet (never migrated), so it is not ahead of the code in {dir}."
        )?;
        return Ok(());
    }
    if !report.ahead {
        writeln!(
            w,
            "tagback guard: ok: the database is not ahead of the code in {dir} ({} rows, {} migrations known).",
            report.rows, report.known
        )?;
        for n in notes {
            writeln!(w, "  {n}")?;
        }
        return Ok(());
    }
    let head = if warn_only { "WARNING" } else { "BLOCKED" };
    writeln!(
        w,
        "tagback guard: {head}: the database is ahead of the code in {dir}: it has applied {} migration(s) this code does not know:",
        report.unknown.len()
    )?;
    for r in &report.unknown {
        writeln!(w, "    {}.{}", r.app, r.migration)?;
    }
    writeln!(
        w,
        "  A newer release applied them and its backward migrations have not run; this code would start on a schema it was not written for."
    )?;
    if !report.targets.is_empty() {
        writeln!(
            w,
            "  Fix: with the NEWER image (the one that applied them), run the backward migrations, then start this image again:"
        )?;
        for t in &report.targets {
            let line =
                crate::plan::migrate_command(crate::plan::DEFAULT_MANAGE, &t.app, Some(&t.target));
            writeln!(w, "    {line}")?;
        }
    } else {
        writeln!(
            w,
            "  Fix: run the backward migrations with the NEWER image (the one that applied them), then start this image again."
        )?;
    }
    writeln!(
        w,
        "  The exact, verified rollback: tagback script --from NEWER --to OLDER (see `tagback script --help`)."
    )?;
    if !report.numbered_below_latest.is_empty() {
        let names: Vec<String> = report
            .numbered_below_latest
            .iter()
            .map(|r| format!("{}.{}", r.app, r.migration))
            .collect();
        writeln!(
            w,
            "  Note: {} {} numbered below this code's latest migration of the app: if {} of migrations deleted after a squash (not newer ones), they are leftovers.",
            names.join(", "),
            if names.len() == 1 { "is" } else { "are" },
            if names.len() == 1 {
                "it is the row"
            } else {
                "they are rows"
            }
        )?;
    }
    writeln!(
        w,
        "  If a row is a leftover and not a newer migration, list it under `guard: allow:` in .tagback.yml with the reason."
    )?;
    for f in &report.findings {
        match (&f.file, f.line) {
            (Some(file), Some(line)) => writeln!(w, "  note: {file} line {line}: {}", f.message)?,
            _ => writeln!(w, "  note: {}", f.message)?,
        }
    }
    for n in notes {
        writeln!(w, "  {n}")?;
    }
    if warn_only {
        writeln!(w, "  (--warn-only: starting anyway)")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(list: &[(&str, &str)]) -> BTreeSet<MigrationKey> {
        list.iter()
            .map(|(a, n)| MigrationKey::new(*a, *n))
            .collect()
    }

    #[test]
    fn squash_names_are_recognised_only_when_both_ends_are_known_and_applied() {
        let known = rows(&[("shop", "0001_initial"), ("shop", "0002_b_squashed_0003_c")]);
        let applied = rows(&[("shop", "0001_initial"), ("shop", "0002_b_squashed_0003_c")]);
        // Nested: the last part itself contains `_squashed_`.
        assert_eq!(
            leftover_squash(
                "shop",
                "0001_initial_squashed_0002_b_squashed_0003_c",
                &known,
                &applied
            ),
            Some(("0001_initial", "0002_b_squashed_0003_c"))
        );
        // The last migration is newer than the code: ahead.
        assert_eq!(
            leftover_squash("shop", "0001_initial_squashed_0004_d", &known, &applied),
            None
        );
        // Known but not applied: not a leftover of a correct rollback.
        let only_first = rows(&[("shop", "0001_initial")]);
        assert_eq!(
            leftover_squash(
                "shop",
                "0001_initial_squashed_0002_b_squashed_0003_c",
                &known,
                &only_first
            ),
            None
        );
        assert_eq!(
            leftover_squash("shop", "0005_custom", &known, &applied),
            None
        );
    }

    #[test]
    fn allow_list_needs_app_name_and_reason() {
        let entry = |m: &str, r: &str| GuardAllow {
            migration: m.into(),
            reason: r.into(),
        };
        assert!(allow_list(&[entry("shop.0003_x", "renamed squash of 0001-0003")]).is_ok());
        let no_reason = allow_list(&[entry("shop.0003_x", " ")]).unwrap_err();
        assert!(
            no_reason.to_string().contains("has no reason"),
            "{no_reason}"
        );
        let bad = allow_list(&[entry("0003_x", "why")]).unwrap_err();
        assert!(bad.to_string().contains("not APP.MIGRATION"), "{bad}");
    }
}
