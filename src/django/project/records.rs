//! Projects resolved by earlier runs, kept in the parse cache: the settings
//! read (with the top-level entries they depend on) and every app with the
//! tree ids it was resolved from. A warm run checks those ids instead of
//! parsing the settings and reading hundreds of app directories.
//!
//! One line per item, tab-separated; a project starts with `P`. Nothing is
//! written for a project whose strings contain a tab or a newline.

use std::collections::BTreeMap;
use std::rc::Rc;

use git2::Oid;

use super::{App, InstalledApps, Project, ResolvedFrom, SettingsRead};
use crate::django::cache::oid_from_hex;

/// File name in the cache directory.
pub(super) const PROJECTS_FILE: &str = "projects";

/// How many projects the cache keeps (two per run: newer and older).
pub(super) const PROJECTS_KEPT: usize = 6;

const HEADER: &str = "tagback projects v1";

/// Whether two projects were resolved from the same inputs.
pub(super) fn same_resolution(a: &Project, b: &Project) -> bool {
    match (&a.resolved_from, &b.resolved_from) {
        (Some(x), Some(y)) => {
            a.root == b.root
                && x.settings.same_as(&y.settings)
                && x.entries == y.entries
                && x.tops == y.tops
        }
        _ => false,
    }
}

fn id(oid: Option<Oid>) -> String {
    oid.map_or_else(|| "-".to_string(), |o| o.to_string())
}

fn opt(v: Option<&str>) -> String {
    v.map_or_else(|| "-".to_string(), |s| format!("={s}"))
}

/// The text of the cache file, or `None` when a string cannot be stored.
pub(super) fn encode_projects(projects: &[&Project]) -> Option<String> {
    let mut lines: Vec<String> = vec![HEADER.to_string()];
    for p in projects {
        let Some(from) = &p.resolved_from else {
            continue;
        };
        let s = &from.settings;
        let Some(footprint) = &s.footprint else {
            continue;
        };
        let mut out: Vec<String> = Vec::new();
        out.push(format!(
            "P\t{}\t{}\t{}\t{}\t{}",
            p.root, s.opts_key, s.manage_py, s.settings_module, s.settings_file
        ));
        for (top, oid) in footprint {
            out.push(format!("F\t{top}\t{}", id(*oid)));
        }
        match &s.installed_apps {
            // Usually the entries the apps were resolved from: said once.
            InstalledApps::List(apps) if *apps == from.entries => out.push("L".to_string()),
            InstalledApps::List(apps) => out.extend(apps.iter().map(|a| format!("I\t{a}"))),
            InstalledApps::Dynamic(file, line, what) => {
                out.push(format!("D\t{file}\t{line}\t{what}"))
            }
            InstalledApps::NotStatic => out.push("N".to_string()),
            InstalledApps::Missing => out.push("X".to_string()),
        }
        for (label, module) in &s.migration_modules {
            out.push(format!("M\t{label}\t{}", opt(module.as_deref())));
        }
        for (name, value) in &s.string_settings {
            out.push(format!("S\t{name}\t{value}"));
        }
        for (entry, file, line) in &s.maybe_apps {
            out.push(format!("Y\t{entry}\t{file}\t{line}"));
        }
        for ((entry, (top, mtop)), app) in from.entries.iter().zip(&from.tops).zip(&p.apps) {
            out.push(format!(
                "A\t{entry}\t{}\t{}\t{}\t{}\t{}\t{}",
                id(*top),
                id(*mtop),
                app.label,
                app.name,
                opt(app.migrations_dir.as_deref()),
                opt(app.migrations_module.as_deref())
            ));
        }
        // A string with a newline would add lines; one with a tab, fields.
        let fields = |l: &String| l.split('\t').count();
        let expected = |l: &String| match l.as_bytes().first() {
            Some(b'P') => 6,
            Some(b'F' | b'M' | b'S') => 3,
            Some(b'I') => 2,
            Some(b'D' | b'Y') => 4,
            Some(b'N' | b'X' | b'L') => 1,
            Some(b'A') => 8,
            _ => 0,
        };
        let clean = out
            .iter()
            .all(|l| !l.contains(['\n', '\r']) && fields(l) == expected(l));
        if !clean {
            return None;
        }
        lines.extend(out);
    }
    let mut text = lines.join("\n");
    text.push('\n');
    Some(text)
}

/// The projects of the cache file; `None` when it is not one.
pub(super) fn decode_projects(text: &str) -> Option<Vec<Project>> {
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
    let opt = |s: &str| -> Option<Option<String>> {
        match s.strip_prefix('=') {
            Some(v) => Some(Some(v.to_string())),
            None if s == "-" => Some(None),
            None => None,
        }
    };
    let mut out = Vec::new();
    while let Some(line) = lines.next() {
        let mut f = line.split('\t');
        let (
            Some("P"),
            Some(root),
            Some(opts_key),
            Some(manage_py),
            Some(settings_module),
            Some(settings_file),
            None,
        ) = (
            f.next(),
            f.next(),
            f.next(),
            f.next(),
            f.next(),
            f.next(),
            f.next(),
        )
        else {
            return None;
        };
        let mut footprint = Vec::new();
        let mut list = Vec::new();
        let mut installed = None;
        let mut migration_modules = BTreeMap::new();
        let mut string_settings = BTreeMap::new();
        let mut maybe_apps = Vec::new();
        let mut entries = Vec::new();
        let mut tops = Vec::new();
        let mut apps = Vec::new();
        while let Some(line) = lines.next_if(|l| !l.starts_with("P\t")) {
            let mut f = line.split('\t');
            let mut next = || f.next();
            match next()? {
                "A" => {
                    let (entry, top, mtop, label, name, dir, module) = (
                        next()?,
                        next()?,
                        next()?,
                        next()?,
                        next()?,
                        next()?,
                        next()?,
                    );
                    entries.push(entry.to_string());
                    tops.push((oid(top)?, oid(mtop)?));
                    apps.push(App {
                        label: label.to_string(),
                        name: name.to_string(),
                        migrations_dir: opt(dir)?,
                        migrations_module: opt(module)?,
                    });
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
                    migration_modules.insert(label, opt(next()?)?);
                }
                "S" => {
                    let name = next()?.to_string();
                    string_settings.insert(name, next()?.to_string());
                }
                "Y" => {
                    let (entry, file, line) = (next()?, next()?, next()?);
                    maybe_apps.push((entry.to_string(), file.to_string(), line.parse().ok()?))
                }
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
        let settings = Rc::new(SettingsRead {
            opts_key: opts_key.to_string(),
            manage_py: manage_py.to_string(),
            settings_module: settings_module.to_string(),
            settings_file: settings_file.to_string(),
            installed_apps,
            migration_modules,
            string_settings: string_settings.clone(),
            maybe_apps,
            footprint: Some(footprint),
        });
        let by_label = apps
            .iter()
            .enumerate()
            .map(|(i, a): (usize, &App)| (a.label.clone(), i))
            .collect();
        out.push(Project {
            root: root.to_string(),
            settings_module: settings_module.to_string(),
            apps,
            string_settings,
            by_label,
            resolved_from: Some(ResolvedFrom {
                settings,
                entries,
                tops,
            }),
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(installed: InstalledApps, label: &str) -> Project {
        let oid = Oid::from_str("0123456789abcdef0123456789abcdef01234567").unwrap();
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
            footprint: Some(vec![("manage.py".into(), Some(oid)), ("proj".into(), None)]),
        });
        let apps = vec![
            App {
                label: "auth".into(),
                name: "django.contrib.auth".into(),
                migrations_dir: None,
                migrations_module: Some("django.contrib.auth.migrations".into()),
            },
            App {
                label: label.into(),
                name: "shop".into(),
                migrations_dir: Some("shop/db_migrations".into()),
                migrations_module: Some("shop.db_migrations".into()),
            },
        ];
        Project {
            root: String::new(),
            settings_module: "proj.settings".into(),
            by_label: apps
                .iter()
                .enumerate()
                .map(|(i, a)| (a.label.clone(), i))
                .collect(),
            apps,
            string_settings: settings.string_settings.clone(),
            resolved_from: Some(ResolvedFrom {
                settings,
                entries: vec!["django.contrib.auth".into(), "shop.apps.ShopConfig".into()],
                tops: vec![(None, None), (Some(oid), Some(oid))],
            }),
        }
    }

    fn assert_same(a: &Project, b: &Project) {
        assert!(same_resolution(a, b));
        assert_eq!(a.apps, b.apps);
        assert_eq!(a.string_settings, b.string_settings);
        assert_eq!(a.by_label, b.by_label);
        let (x, y) = (
            &a.resolved_from.as_ref().unwrap().settings,
            &b.resolved_from.as_ref().unwrap().settings,
        );
        assert_eq!(x.installed_apps, y.installed_apps);
        assert_eq!(x.migration_modules, y.migration_modules);
        assert_eq!(x.maybe_apps, y.maybe_apps);
        assert_eq!(x.settings_file, y.settings_file);
    }

    #[test]
    fn projects_round_trip() {
        let entries = vec![
            "django.contrib.auth".to_string(),
            "shop.apps.ShopConfig".into(),
        ];
        let listed = project(InstalledApps::List(entries), "shop");
        let other = project(InstalledApps::List(vec!["shop".into()]), "store");
        let dynamic = project(
            InstalledApps::Dynamic("proj/settings.py".into(), 9, "is computed".into()),
            "shop",
        );
        let text = encode_projects(&[&listed, &other, &dynamic]).unwrap();
        let back = decode_projects(&text).unwrap();
        assert_eq!(back.len(), 3);
        assert_same(&back[0], &listed);
        assert_same(&back[1], &other);
        assert_same(&back[2], &dynamic);
        // Another tree id for an app's package: another resolution.
        let mut moved = project(InstalledApps::NotStatic, "shop");
        moved.resolved_from.as_mut().unwrap().tops[1].0 = None;
        assert!(!same_resolution(&back[0], &moved));
    }

    #[test]
    fn unstorable_strings_and_garbage() {
        let mut odd = project(InstalledApps::NotStatic, "shop");
        odd.apps[1].name = "sh\top".into();
        assert!(encode_projects(&[&odd]).is_none());
        let mut odd = project(InstalledApps::Missing, "shop");
        odd.apps[1].label = "a\nb".into();
        assert!(encode_projects(&[&odd]).is_none());
        assert!(decode_projects("something else\n").is_none());
        assert!(decode_projects(&format!("{HEADER}\nQ\tx\n")).is_none());
        assert!(decode_projects(&format!("{HEADER}\nP\t\tk\tm\ts\tf\nA\tx\n")).is_none());
        assert_eq!(decode_projects(&format!("{HEADER}\n")).unwrap().len(), 0);
    }
}
