//! One `INSTALLED_APPS` entry resolved to its app config's name and label,
//! as Django 3.2+ does (the single `AppConfig` in `apps.py`, or the one
//! marked `default = True`, or the class the entry names).

use std::collections::BTreeSet;
use std::rc::Rc;

use super::{App, module_file};
use crate::django::python::{self, Stmt, Value};
use crate::error::{Error, Result};
use crate::source::ProjectSource;

/// A Python file's statements, parsed by the caller (which may share them
/// between revisions): errors name file, revision and line.
pub(super) type ParsePython<'a> = &'a dyn Fn(&str) -> Result<Rc<Vec<Stmt>>>;

/// Resolve one `INSTALLED_APPS` entry to its app config's name and label,
/// reading `src` below `root`.
pub(super) fn resolve_app(
    src: &dyn ProjectSource,
    root: &str,
    entry: &str,
    python: ParsePython<'_>,
) -> Result<App> {
    let external = |name: &str| {
        let base = match name.split_once(".apps.") {
            Some((pkg, _)) => pkg,
            None => name,
        };
        App {
            label: base.rsplit('.').next().unwrap_or(base).to_string(),
            name: base.to_string(),
            migrations_dir: None,
            migrations_module: None,
            // Django's own apps are labelled by their module names.
            label_from_path: !entry.starts_with("django.contrib."),
        }
    };
    let from_config = |name: Option<String>, label: Option<String>, fallback: &str| {
        let name = name.unwrap_or_else(|| fallback.to_string());
        let label = label.unwrap_or_else(|| name.rsplit('.').next().unwrap_or(&name).to_string());
        App {
            label,
            name,
            migrations_dir: None,
            migrations_module: None,
            label_from_path: false,
        }
    };
    if let Some((_, true)) = module_file(src, root, entry)? {
        // A package: Django 3.2+ picks the single AppConfig in `apps.py`, or
        // the one marked `default = True`.
        if let Some((apps_file, _)) = module_file(src, root, &format!("{entry}.apps"))? {
            let stmts = python(&apps_file)?;
            if let Some((name, label)) = default_config(&stmts) {
                return Ok(from_config(name, label, entry));
            }
        }
        return Ok(from_config(None, None, entry));
    }
    if let Some((module, class)) = entry.rsplit_once('.')
        && let Some((file, _)) = module_file(src, root, module)?
    {
        let stmts = python(&file)?;
        let found = stmts.iter().find_map(|s| match s {
            Stmt::Class(c) if c.name == class => Some(c),
            _ => None,
        });
        let Some(c) = found else {
            return Err(Error::input(format!(
                "INSTALLED_APPS entry {entry:?} at {}: {file} has no class {class}",
                src.label()
            )));
        };
        let (name, label, _) = config_attrs(c);
        let fallback = module.strip_suffix(".apps").unwrap_or(module);
        return Ok(from_config(name, label, fallback));
    }
    Ok(external(entry))
}

type ConfigAttrs = (Option<String>, Option<String>, Option<bool>);

fn config_attrs(c: &python::Class) -> ConfigAttrs {
    let mut out: ConfigAttrs = (None, None, None);
    for s in &c.body {
        if let Stmt::Assign { targets, value, .. } = s {
            for t in targets {
                match (t.as_str(), value) {
                    ("name", Value::Str(v)) => out.0 = Some(v.clone()),
                    ("label", Value::Str(v)) => out.1 = Some(v.clone()),
                    ("default", Value::Bool(b)) => out.2 = Some(*b),
                    _ => {}
                }
            }
        }
    }
    out
}

/// The app configs of a module's statements: subclasses of `AppConfig`,
/// directly or through a class in the same file.
fn configs_in(stmts: &[Stmt]) -> Vec<ConfigAttrs> {
    let classes: Vec<&python::Class> = stmts
        .iter()
        .filter_map(|s| match s {
            Stmt::Class(c) => Some(c),
            _ => None,
        })
        .collect();
    let mut config_names: BTreeSet<&str> = BTreeSet::new();
    loop {
        let before = config_names.len();
        for c in &classes {
            if c.bases
                .iter()
                .any(|b| b.ends_with("AppConfig") || config_names.contains(b.as_str()))
            {
                config_names.insert(&c.name);
            }
        }
        if config_names.len() == before {
            break;
        }
    }
    classes
        .iter()
        .filter(|c| config_names.contains(c.name.as_str()))
        .map(|c| config_attrs(c))
        .collect()
}

/// Django 3.2+'s choice in an `apps.py`: the single config (unless it says
/// `default = False`), or the one marked `default = True`. `(name, label)`.
pub(crate) fn default_config(stmts: &[Stmt]) -> Option<(Option<String>, Option<String>)> {
    let configs = configs_in(stmts);
    let chosen = if configs.len() == 1 && configs[0].2 != Some(false) {
        configs.into_iter().next()
    } else {
        configs.into_iter().find(|c| c.2 == Some(true))
    };
    chosen.map(|(n, l, _)| (n, l))
}

/// The `(name, label)` of the config class `class` in a module's statements.
pub(crate) fn named_config(
    stmts: &[Stmt],
    class: &str,
) -> Option<(Option<String>, Option<String>)> {
    stmts.iter().find_map(|s| match s {
        Stmt::Class(c) if c.name == class => {
            let (n, l, _) = config_attrs(c);
            Some((n, l))
        }
        _ => None,
    })
}
