//! Projects resolved by earlier runs, kept in the parse cache: the settings
//! read (with the top-level entries they depend on) and, for every
//! `INSTALLED_APPS` entry, the apps it resolved to with the tree ids they were
//! resolved from. A warm run checks those ids instead of parsing the settings
//! and reading hundreds of app directories.
//!
//! One line per item, tab-separated; a record starts with `P`, an entry with
//! `E`, each resolution of the entry is an `A` line. Nothing is written for a
//! record whose strings contain a tab or a newline.

use std::collections::BTreeMap;
use std::rc::Rc;

use git2::Oid;

use super::{App, InstalledApps, Project, SettingsRead, Tops};
use crate::django::cache::{fields_of, oid_from_hex, optional, parse_optional};

/// File name in the cache directory.
pub(super) const PROJECTS_FILE: &str = "projects";

/// How many records (one per distinct settings read) the cache keeps.
const RECORDS_KEPT: usize = 4;

/// How many resolutions of one entry a record keeps (most recent first).
const ALTERNATIVES_KEPT: usize = 4;

const HEADER: &str = "tagback projects v2";

/// The apps resolved from one settings read, over several revisions.
#[derive(Debug, Clone)]
pub(super) struct Record {
    pub(super) root: String,
    pub(super) settings: Rc<SettingsRead>,
    pub(super) entries: Vec<String>,
    /// For each entry, the apps it resolved to and the tree ids they were
    /// resolved from.
    pub(super) resolutions: Vec<Vec<(Tops, Rc<App>)>>,
}

impl Record {
    /// Whether both were resolved from the same settings and entries.
    fn same_inputs(&self, other: &Record) -> bool {
        self.root == other.root
            && self.settings.same_as(&other.settings)
            && self.entries == other.entries
    }

    /// Whether `project` was resolved from the same settings and entries.
    fn holds(&self, project: &Project) -> bool {
        project.resolved_from.as_ref().is_some_and(|from| {
            self.root == project.root
                && self.settings.same_as(&from.settings)
                && self.entries == from.entries
        })
    }

    /// Add the resolutions of `project` (which it [`holds`](Record::holds)).
    fn add(&mut self, project: &Project) {
        let Some(from) = &project.resolved_from else {
            return;
        };
        for ((alternatives, tops), app) in self
            .resolutions
            .iter_mut()
            .zip(&from.tops)
            .zip(&project.apps)
        {
            // Known resolutions keep their place (rewriting the cache on
            // every run would cost more than it saves); new ones go first.
            if alternatives.iter().any(|(t, a)| t == tops && a == app) {
                continue;
            }
            alternatives.retain(|(t, _)| t != tops);
            alternatives.insert(0, (*tops, app.clone()));
            alternatives.truncate(ALTERNATIVES_KEPT);
        }
    }

    fn of(project: &Project) -> Option<Record> {
        let from = project.resolved_from.as_ref()?;
        from.settings.footprint.as_ref()?;
        Some(Record {
            root: project.root.clone(),
            settings: from.settings.clone(),
            entries: from.entries.clone(),
            resolutions: from
                .tops
                .iter()
                .zip(&project.apps)
                .map(|(t, a)| vec![(*t, a.clone())])
                .collect(),
        })
    }
}

/// Merge the projects of this run into the records of earlier runs (most
/// recent first). `None` when nothing changed.
pub(super) fn merge(records: &[Record], projects: &[&Project]) -> Option<Vec<Record>> {
    // The common case, checked without copying anything: every project is
    // already known.
    let known = |p: &&Project| {
        let Some(from) = &p.resolved_from else {
            return true;
        };
        from.settings.footprint.is_none()
            || records.iter().any(|r| {
                r.holds(p)
                    && r.resolutions.iter().zip(&from.tops).zip(&p.apps).all(
                        |((alternatives, tops), app)| {
                            alternatives.iter().any(|(t, a)| t == tops && a == app)
                        },
                    )
            })
    };
    if projects.iter().all(known) {
        return None;
    }
    let mut out: Vec<Record> = Vec::new();
    for p in projects {
        if let Some(r) = out.iter_mut().find(|r| r.holds(p)) {
            r.add(p);
            continue;
        }
        let Some(mut fresh) = Record::of(p) else {
            continue;
        };
        // Carry over what an earlier run knew of the same settings.
        if let Some(old) = records.iter().find(|r| r.holds(p)) {
            fresh.resolutions.clone_from(&old.resolutions);
            fresh.add(p);
        }
        out.push(fresh);
    }
    for r in records {
        if out.len() >= RECORDS_KEPT {
            break;
        }
        if !out.iter().any(|o| o.same_inputs(r)) {
            out.push(r.clone());
        }
    }
    let unchanged = out.len() == records.len()
        && out
            .iter()
            .zip(records)
            .all(|(a, b)| a.same_inputs(b) && a.resolutions == b.resolutions);
    (!unchanged).then_some(out)
}

fn id(oid: Option<Oid>) -> String {
    oid.map_or_else(|| "-".to_string(), |o| o.to_string())
}

/// The text of the cache file (records with unstorable strings left out).
pub(super) fn encode(records: &[Record]) -> String {
    let mut text = String::from(HEADER);
    text.push('\n');
    for r in records {
        let s = &r.settings;
        let Some(footprint) = &s.footprint else {
            continue;
        };
        let mut out: Vec<String> = Vec::new();
        out.push(format!(
            "P\t{}\t{}\t{}\t{}\t{}",
            r.root, s.opts_key, s.manage_py, s.settings_module, s.settings_file
        ));
        for (top, oid) in footprint {
            out.push(format!("F\t{top}\t{}", id(*oid)));
        }
        match &s.installed_apps {
            // Usually the entries themselves: said once.
            InstalledApps::List(apps) if *apps == r.entries => out.push("L".to_string()),
            InstalledApps::List(apps) => out.extend(apps.iter().map(|a| format!("I\t{a}"))),
            InstalledApps::Dynamic(file, line, what) => {
                out.push(format!("D\t{file}\t{line}\t{what}"))
            }
            InstalledApps::NotStatic => out.push("N".to_string()),
            InstalledApps::Missing => out.push("X".to_string()),
        }
        for (label, module) in &s.migration_modules {
            out.push(format!("M\t{label}\t{}", optional(module.as_deref())));
        }
        for (name, value) in &s.string_settings {
            out.push(format!("S\t{name}\t{value}"));
        }
        for (entry, file, line) in &s.maybe_apps {
            out.push(format!("Y\t{entry}\t{file}\t{line}"));
        }
        for (entry, file, line) in &s.maybe_removed {
            out.push(format!("R\t{entry}\t{file}\t{line}"));
        }
        for (file, line, what) in &s.assumptions {
            out.push(format!("U\t{file}\t{line}\t{what}"));
        }
        if let Some(why) = &s.settings_assumed {
            out.push(format!("C\t{why}"));
        }
        for (entry, alternatives) in r.entries.iter().zip(&r.resolutions) {
            out.push(format!("E\t{entry}"));
            for ((top, mtop), app) in alternatives {
                out.push(format!(
                    "A\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    id(*top),
                    id(*mtop),
                    app.label,
                    app.name,
                    optional(app.migrations_dir.as_deref()),
                    optional(app.migrations_module.as_deref()),
                    u8::from(app.label_from_path)
                ));
            }
        }
        // A string with a newline would add lines; one with a tab, fields.
        let expected = |l: &String| match l.as_bytes().first() {
            Some(b'P') => 6,
            Some(b'F' | b'M' | b'S') => 3,
            Some(b'I' | b'E' | b'C') => 2,
            Some(b'D' | b'Y' | b'R' | b'U') => 4,
            Some(b'N' | b'X' | b'L') => 1,
            Some(b'A') => 8,
            _ => 0,
        };
        if out
            .iter()
            .all(|l| !l.contains(['\n', '\r']) && l.split('\t').count() == expected(l))
        {
            for l in out {
                text.push_str(&l);
                text.push('\n');
            }
        }
    }
    text
}

/// The records of the cache file; `None` when it is not one.
pub(super) fn decode(text: &str) -> Option<Vec<Record>> {
    let mut lines = text.lines().peekable();
    if lines.next()? != HEADER {
        return None;
    }
    let oid = |s: &str| -> Option<Option<Oid>> {
        if s == "-" {
            Some(None)
        } else {
            oid_from_hex(s).map(Some)
        }
    };
    let mut out = Vec::new();
    while let Some(line) = lines.next() {
        let mut f = fields_of(line, b'\t');
        let mut next = || f.next();
        let ("P", root, opts_key, manage_py, settings_module, settings_file) =
            (next()?, next()?, next()?, next()?, next()?, next()?)
        else {
            return None;
        };
        if f.next().is_some() {
            return None;
        }
        let mut footprint = Vec::new();
        let mut list = Vec::new();
        let mut installed = None;
        let mut migration_modules = BTreeMap::new();
        let mut string_settings = BTreeMap::new();
        let mut maybe_apps = Vec::new();
        let mut maybe_removed = Vec::new();
        let mut assumptions = Vec::new();
        let mut settings_assumed = None;
        let mut entries = Vec::new();
        let mut resolutions: Vec<Vec<(Tops, Rc<App>)>> = Vec::new();
        while let Some(line) = lines.next_if(|l| !l.starts_with("P\t")) {
            let mut f = fields_of(line, b'\t');
            let mut next = || f.next();
            match next()? {
                "A" => {
                    let (top, mtop, label, name, dir, module, from_path) = (
                        next()?,
                        next()?,
                        next()?,
                        next()?,
                        next()?,
                        next()?,
                        next()?,
                    );
                    let label_from_path = match from_path {
                        "0" => false,
                        "1" => true,
                        _ => return None,
                    };
                    let alternatives = resolutions.last_mut()?;
                    // Most entries have one resolution: no room for more.
                    alternatives.reserve_exact(1);
                    alternatives.push((
                        (oid(top)?, oid(mtop)?),
                        Rc::new(App {
                            label: label.to_string(),
                            name: name.to_string(),
                            migrations_dir: parse_optional(dir)?,
                            migrations_module: parse_optional(module)?,
                            label_from_path,
                        }),
                    ));
                }
                "E" => {
                    entries.push(next()?.to_string());
                    resolutions.push(Vec::new());
                }
                "F" => footprint.push((next()?.to_string(), oid(next()?)?)),
                "I" => list.push(next()?.to_string()),
                "L" => installed = Some(None),
                "D" => {
                    let (file, line, what) = (next()?, next()?, next()?);
                    installed = Some(Some(InstalledApps::Dynamic(
                        file.to_string(),
                        line.parse().ok()?,
                        what.to_string(),
                    )))
                }
                "N" => installed = Some(Some(InstalledApps::NotStatic)),
                "X" => installed = Some(Some(InstalledApps::Missing)),
                "M" => {
                    let label = next()?.to_string();
                    migration_modules.insert(label, parse_optional(next()?)?);
                }
                "S" => {
                    let name = next()?.to_string();
                    string_settings.insert(name, next()?.to_string());
                }
                "Y" => {
                    let (entry, file, line) = (next()?, next()?, next()?);
                    maybe_apps.push((entry.to_string(), file.to_string(), line.parse().ok()?))
                }
                "R" => {
                    let (entry, file, line) = (next()?, next()?, next()?);
                    maybe_removed.push((entry.to_string(), file.to_string(), line.parse().ok()?))
                }
                "U" => {
                    let (file, line, what) = (next()?, next()?, next()?);
                    assumptions.push((file.to_string(), line.parse().ok()?, what.to_string()))
                }
                "C" => settings_assumed = Some(next()?.to_string()),
                _ => return None,
            }
            if f.next().is_some() {
                return None;
            }
        }
        let installed_apps = match installed {
            None => InstalledApps::List(list),
            Some(None) => InstalledApps::List(entries.clone()),
            Some(Some(other)) => other,
        };
        out.push(Record {
            root: root.to_string(),
            settings: Rc::new(SettingsRead {
                opts_key: opts_key.to_string(),
                manage_py: manage_py.to_string(),
                settings_module: settings_module.to_string(),
                settings_file: settings_file.to_string(),
                installed_apps,
                migration_modules,
                string_settings,
                maybe_apps,
                maybe_removed,
                assumptions,
                settings_assumed,
                footprint: Some(footprint),
            }),
            entries,
            resolutions,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::super::ResolvedFrom;
    use super::*;

    fn oid(n: u8) -> Oid {
        Oid::from_bytes(&[n; 20]).unwrap()
    }

    fn project(installed: InstalledApps, label: &str, shop_tree: u8) -> Project {
        let settings = Rc::new(SettingsRead {
            opts_key: "None None".into(),
            manage_py: "manage.py".into(),
            settings_module: "proj.settings".into(),
            settings_file: "proj/settings.py".into(),
            installed_apps: installed,
            migration_modules: [
                ("shop".to_string(), Some("shop.db_migrations".to_string())),
                ("legacy".to_string(), None),
            ]
            .into_iter()
            .collect(),
            string_settings: [("AUTH_USER_MODEL".to_string(), "members.Member".to_string())]
                .into_iter()
                .collect(),
            maybe_apps: vec![("debug_toolbar".into(), "proj/settings.py".into(), 40)],
            maybe_removed: vec![("silk".into(), "proj/settings.py".into(), 44)],
            assumptions: vec![(
                "proj/settings.py".into(),
                45,
                "apps from `EXTRA` are assumed".into(),
            )],
            settings_assumed: Some("manage.py names no settings module: read proj.settings".into()),
            footprint: Some(vec![
                ("manage.py".into(), Some(oid(1))),
                ("proj".into(), None),
            ]),
        });
        let apps = vec![
            App {
                label: "auth".into(),
                name: "django.contrib.auth".into(),
                migrations_dir: None,
                migrations_module: Some("django.contrib.auth.migrations".into()),
                label_from_path: false,
            },
            App {
                label: label.into(),
                name: "shop".into(),
                migrations_dir: Some("shop/db_migrations".into()),
                migrations_module: Some("shop.db_migrations".into()),
                label_from_path: true,
            },
        ];
        Project {
            root: String::new(),
            settings_module: "proj.settings".into(),
            by_label: BTreeMap::new(),
            packaged: BTreeMap::new(),
            apps: apps.into_iter().map(Rc::new).collect(),
            string_settings: settings.string_settings.clone(),
            assumptions: settings.assumptions.clone(),
            settings_assumed: settings.settings_assumed.clone(),
            resolved_from: Some(ResolvedFrom {
                settings,
                entries: vec!["django.contrib.auth".into(), "shop.apps.ShopConfig".into()],
                tops: vec![(None, None), (Some(oid(shop_tree)), Some(oid(shop_tree)))],
            }),
            unread: Vec::new(),
        }
    }

    fn entries() -> Vec<String> {
        vec![
            "django.contrib.auth".to_string(),
            "shop.apps.ShopConfig".into(),
        ]
    }

    #[test]
    fn records_round_trip_and_collect_alternatives() {
        let newer = project(InstalledApps::List(entries()), "shop", 2);
        let older = project(InstalledApps::List(entries()), "store", 3);
        let records = merge(&[], &[&newer, &older]).unwrap();
        // One settings read: one record, two resolutions of the shop entry.
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].resolutions[0].len(), 1);
        assert_eq!(records[0].resolutions[1].len(), 2);
        assert_eq!(records[0].resolutions[1][0].1.label, "store");
        let back = decode(&encode(&records)).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].entries, records[0].entries);
        assert_eq!(back[0].resolutions, records[0].resolutions);
        let (a, b) = (&back[0].settings, &records[0].settings);
        assert!(a.same_as(b));
        assert_eq!(a.installed_apps, b.installed_apps);
        assert_eq!(a.migration_modules, b.migration_modules);
        assert_eq!(a.string_settings, b.string_settings);
        assert_eq!(a.maybe_apps, b.maybe_apps);
        assert_eq!(a.maybe_removed, b.maybe_removed);
        assert_eq!(a.assumptions, b.assumptions);
        assert_eq!(a.settings_assumed, b.settings_assumed);
        // Nothing new: nothing to write, in either order.
        assert!(merge(&back, &[&newer, &older]).is_none());
        assert!(merge(&back, &[&older, &newer]).is_none());
        assert!(merge(&back, &[&newer, &newer]).is_none());
        // Other settings: a record of their own, before the older ones.
        let mut dynamic = project(
            InstalledApps::Dynamic("proj/settings.py".into(), 9, "is computed".into()),
            "shop",
            2,
        );
        let from = dynamic.resolved_from.as_mut().unwrap();
        let mut settings = clone_settings(&from.settings);
        settings.footprint = Some(vec![("proj".into(), Some(oid(7)))]);
        from.settings = Rc::new(settings);
        let more = merge(&back, &[&dynamic]).unwrap();
        assert_eq!(more.len(), 2);
        let again = decode(&encode(&more)).unwrap();
        assert_eq!(
            again[0].settings.installed_apps,
            dynamic
                .resolved_from
                .as_ref()
                .unwrap()
                .settings
                .installed_apps
        );
        assert_eq!(again[1].resolutions, records[0].resolutions);
    }

    fn clone_settings(s: &SettingsRead) -> SettingsRead {
        SettingsRead {
            opts_key: s.opts_key.clone(),
            manage_py: s.manage_py.clone(),
            settings_module: s.settings_module.clone(),
            settings_file: s.settings_file.clone(),
            installed_apps: s.installed_apps.clone(),
            migration_modules: s.migration_modules.clone(),
            string_settings: s.string_settings.clone(),
            maybe_apps: s.maybe_apps.clone(),
            maybe_removed: s.maybe_removed.clone(),
            assumptions: s.assumptions.clone(),
            settings_assumed: s.settings_assumed.clone(),
            footprint: s.footprint.clone(),
        }
    }

    #[test]
    fn edited_records_never_panic() {
        let newer = project(InstalledApps::List(entries()), "shop", 2);
        let older = project(InstalledApps::List(entries()), "store", 3);
        let text = encode(&merge(&[], &[&newer, &older]).unwrap());
        for edited in crate::django::cache::tests::mutations(&text, 3000) {
            if let Some(records) = decode(&edited) {
                // Whatever decodes can be merged and written again.
                let _ = encode(&merge(&records, &[&newer]).unwrap_or(records));
            }
        }
    }

    #[test]
    fn unstorable_strings_and_garbage() {
        let mut odd = project(InstalledApps::NotStatic, "shop", 2);
        Rc::make_mut(&mut odd.apps[1]).name = "sh\top".into();
        let records = merge(&[], &[&odd]).unwrap();
        assert_eq!(decode(&encode(&records)).unwrap().len(), 0);
        let mut odd = project(InstalledApps::Missing, "shop", 2);
        Rc::make_mut(&mut odd.apps[1]).label = "a\nb".into();
        let records = merge(&[], &[&odd]).unwrap();
        assert_eq!(decode(&encode(&records)).unwrap().len(), 0);
        assert!(decode("something else\n").is_none());
        assert!(decode(&format!("{HEADER}\nQ\tx\n")).is_none());
        assert!(decode(&format!("{HEADER}\nP\t\tk\tm\ts\tf\nA\tx\n")).is_none());
        assert!(decode(&format!("{HEADER}\nP\t\tk\tm\ts\tf\nA\t-\t-\ta\tb\t-\t-\n")).is_none());
        assert_eq!(decode(&format!("{HEADER}\n")).unwrap().len(), 0);
    }
}
