//! The settings module read statically: found from `manage.py`, executed
//! over literal values (imports, `+`, `+=`, `append`/`extend`/`insert`,
//! conditional additions), and reduced to what tagback uses.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use super::{ProjectOptions, join, module_file, top_of_module};
use crate::django::python::{self, Stmt, Value};
use crate::error::{Error, Result};
use crate::source::ProjectSource;

/// The repository's top-level entries (and their ids) that a result depends
/// on: everything it read lies below them.
pub(super) type Footprint = Vec<(String, Option<git2::Oid>)>;

/// What the settings reader needs from its caller: each Python file parsed
/// (once per blob, as the caller keeps it), and a note of every path it
/// looks at (so the caller can tell when a read can be reused). The reader
/// itself knows nothing of caches.
pub(super) trait ReadContext {
    /// The statements of a Python file of `src` (errors name file, revision, line).
    fn python(&self, src: &dyn ProjectSource, file: &str) -> Result<Rc<Vec<Stmt>>>;
    /// The read depends on `path` (a repository path, existing or not).
    fn touch(&self, path: &str);
}

/// What reading the settings module gave, reduced to what tagback uses.
#[derive(Debug)]
pub(super) struct SettingsRead {
    /// The options it was read with (`ProjectOptions` except the apps).
    pub(super) opts_key: String,
    pub(super) manage_py: String,
    pub(super) settings_module: String,
    pub(super) settings_file: String,
    pub(super) installed_apps: InstalledApps,
    pub(super) migration_modules: BTreeMap<String, Option<String>>,
    pub(super) string_settings: BTreeMap<String, String>,
    /// Apps appended under a condition: (entry, file, line).
    pub(super) maybe_apps: Vec<(String, String, u32)>,
    /// Apps removed under a condition: (entry, file, line).
    pub(super) maybe_removed: Vec<(String, String, u32)>,
    /// What was assumed about parts tagback cannot read: (file, line, what).
    pub(super) assumptions: Vec<(String, u32, String)>,
    /// Why this settings module was read when manage.py names none.
    pub(super) settings_assumed: Option<String>,
    /// The top-level entries it read, with their ids (`None`: not reusable).
    pub(super) footprint: Option<Footprint>,
}

/// `INSTALLED_APPS` as the settings module defines it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum InstalledApps {
    /// A list tagback can read.
    List(Vec<String>),
    /// Changed in a way tagback cannot follow: (file, line, why).
    Dynamic(String, u32, String),
    /// Assigned something that is not a list of strings.
    NotStatic,
    /// Not assigned.
    Missing,
}

impl SettingsRead {
    /// Whether both were read from identical files with the same options.
    pub(super) fn same_as(&self, other: &SettingsRead) -> bool {
        std::ptr::eq(self, other)
            || (self.opts_key == other.opts_key
                && self.manage_py == other.manage_py
                && self.footprint.is_some()
                && self.footprint == other.footprint)
    }

    /// Whether what it read is identical in `src`.
    pub(super) fn still_valid(
        &self,
        src: &dyn ProjectSource,
        opts_key: &str,
        manage_py: &str,
    ) -> bool {
        self.opts_key == opts_key
            && self.manage_py == manage_py
            && self
                .footprint
                .as_ref()
                .is_some_and(|f| f.iter().all(|(top, id)| src.entry_id(top) == Some(*id)))
    }
}

/// The part of the options a settings read depends on (a read made with
/// other options is not reused).
pub(super) fn opts_key(opts: &ProjectOptions) -> String {
    // Configured migrations modules change how apps resolve.
    let mut key = format!("{:?} {:?}", opts.manage_py, opts.settings);
    if !opts.migration_modules.is_empty() {
        key.push_str(&format!(" {:?}", opts.migration_modules));
    }
    key
}

/// Read the settings module (found from `manage.py` or the options). The
/// result's `footprint` is left for the caller, which saw every path the
/// read touched.
pub(super) fn read_settings(
    src: &dyn ProjectSource,
    opts: &ProjectOptions,
    cx: &dyn ReadContext,
    root: &str,
    manage_py: &str,
) -> Result<SettingsRead> {
    let opts_key = opts_key(opts);
    cx.touch(manage_py);
    let (settings_module, settings_assumed, named_at) = match &opts.settings {
        Some(s) => (s.clone(), None, None),
        None => settings_from_manage_py(src, root, manage_py, cx)?,
    };
    cx.touch(&join(root, top_of_module(&settings_module)));
    let (settings_file, _) = module_file(src, root, &settings_module)?.ok_or_else(|| {
        let from = match named_at {
            Some(line) => format!("from {manage_py} line {line}"),
            None if opts.settings.is_some() => "from `settings:` in .tagback.yml".to_string(),
            None => format!("from {manage_py}"),
        };
        Error::input(format!(
            "settings module {settings_module:?} ({from}) is not in the repository at {}; set `settings:` in .tagback.yml",
            src.label()
        ))
    })?;
    let mut reader = SettingsReader::new(src, cx, root, 0, BTreeSet::new());
    reader.exec_file(&settings_file, &settings_module)?;
    let installed_apps = if let Some((file, line, what)) = reader.dynamic.get("INSTALLED_APPS") {
        InstalledApps::Dynamic(file.clone(), *line, what.clone())
    } else {
        match reader.env.get("INSTALLED_APPS") {
            Some(v) => string_list(v).map_or(InstalledApps::NotStatic, InstalledApps::List),
            None => InstalledApps::Missing,
        }
    };
    let mut migration_modules = BTreeMap::new();
    let mut unreadable = reader.dynamic.get("MIGRATION_MODULES").cloned();
    match reader.env.get("MIGRATION_MODULES") {
        Some(Value::Dict(items)) => {
            for (k, v) in items {
                match (k, v) {
                    (Value::Str(k), Value::Str(v)) => {
                        migration_modules.insert(k.clone(), Some(v.clone()));
                    }
                    (Value::Str(k), Value::None) => {
                        migration_modules.insert(k.clone(), None);
                    }
                    _ => {
                        unreadable.get_or_insert((
                            settings_file.clone(),
                            0,
                            "has an entry tagback cannot read".into(),
                        ));
                    }
                }
            }
        }
        None => {}
        Some(_) => {
            unreadable.get_or_insert((
                settings_file.clone(),
                0,
                "is not a dict tagback can read".into(),
            ));
        }
    }
    // Where the repository's migrations live: never guessed. Stated in
    // .tagback.yml, it replaces what cannot be read.
    if let Some((file, line, what)) = unreadable
        && opts.migration_modules.is_empty()
    {
        let at = if line > 0 {
            format!(" line {line}")
        } else {
            String::new()
        };
        return Err(Error::input(format!(
            "MIGRATION_MODULES in {file} at {}{at} {what}; state it under `migration_modules:` in .tagback.yml",
            src.label()
        )));
    }
    let string_settings = reader
        .env
        .iter()
        .filter_map(|(k, v)| match v {
            Value::Str(s) if k.chars().all(|c| c.is_ascii_uppercase() || c == '_') => {
                Some((k.clone(), s.clone()))
            }
            _ => None,
        })
        .collect();
    Ok(SettingsRead {
        opts_key,
        manage_py: manage_py.to_string(),
        settings_module,
        settings_file,
        installed_apps,
        migration_modules,
        string_settings,
        maybe_apps: reader.maybe_apps,
        maybe_removed: reader.maybe_removed,
        assumptions: reader.assumptions,
        settings_assumed,
        footprint: None,
    })
}

fn string_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::List(items) => items
            .iter()
            .map(|i| match i {
                Value::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// What `manage.py` says of `DJANGO_SETTINGS_MODULE` through
/// `os.environ.setdefault` (the one rule for it: plans and `tagback init`).
struct Setdefault<'a> {
    /// The call, if any.
    call: Option<&'a python::Call>,
    /// When it passes a variable: that variable's assignments (value, line,
    /// whether a condition guards it).
    chosen: Vec<(&'a Value, u32, bool)>,
    /// The module it names, with the line naming it: a literal, or a
    /// variable manage.py assigns one literal, under no condition but
    /// `if __name__ == "__main__":`.
    named: Option<(String, u32)>,
}

impl<'a> Setdefault<'a> {
    fn of(stmts: &'a [Stmt]) -> Setdefault<'a> {
        let mut calls = Vec::new();
        python::find_calls(stmts, "environ.setdefault", &mut calls);
        let call = calls.into_iter().find(
            |c| matches!(c.args.first(), Some(Value::Str(k)) if k == "DJANGO_SETTINGS_MODULE"),
        );
        let mut chosen = Vec::new();
        let named = match call.and_then(|c| c.args.get(1)) {
            Some(Value::Str(v)) => call.map(|c| (v.clone(), c.line)),
            Some(Value::Name(var)) => {
                assignments(stmts, var, false, &mut chosen);
                match chosen.as_slice() {
                    [(Value::Str(v), line, false)] => Some((v.clone(), *line)),
                    _ => None,
                }
            }
            _ => None,
        };
        Setdefault {
            call,
            chosen,
            named,
        }
    }
}

/// The settings module `manage.py` (its source, `text`) names, as a plan
/// reads it; `None` when it names none tagback can read, or is not Python
/// tagback reads (a plan then says why).
pub fn settings_named_by_manage_py(text: &str) -> Option<String> {
    let stmts = python::parse_module(text).ok()?;
    Setdefault::of(&stmts).named.map(|(module, _)| module)
}

fn settings_from_manage_py(
    src: &dyn ProjectSource,
    root: &str,
    manage_py: &str,
    cx: &dyn ReadContext,
) -> Result<(String, Option<String>, Option<u32>)> {
    let stmts = cx.python(src, manage_py)?;
    let Setdefault {
        call,
        chosen,
        named,
    } = Setdefault::of(&stmts);
    if let Some((module, line)) = named {
        return Ok((module, None, Some(line)));
    }
    if let Some((module, note)) = sole_settings_module(src, root, manage_py) {
        return Ok((module, note, None));
    }
    let candidates = settings_candidates(src, root);
    let found = if candidates.is_empty() {
        String::new()
    } else {
        format!(
            "; modules here that set INSTALLED_APPS: {}",
            candidates.join(", ")
        )
    };
    let mut example = candidates
        .first()
        .map_or("package.settings", String::as_str)
        .to_string();
    let what = match call {
        // weblate: `default = "weblate.settings"`, another value under a
        // condition, then `os.environ.setdefault("DJANGO_SETTINGS_MODULE",
        // default)`: name the lines, and each value tagback would not pick.
        Some(c) => {
            let how = match c.args.get(1) {
                Some(Value::Name(var)) => format!("from the variable `{var}`"),
                _ => "from a value tagback does not evaluate".to_string(),
            };
            let mut values = Vec::new();
            for (value, line, guarded) in &chosen {
                let Value::Str(v) = value else {
                    values.push(format!("a computed value at line {line}"));
                    continue;
                };
                let mut said = format!("{v:?} at line {line}");
                if *guarded {
                    said.push_str(", under a condition");
                }
                if module_file(src, root, v)?.is_none() {
                    said.push_str(", not in the repository");
                    // The copy-this-file convention (`settings_example.py`):
                    // what the operator's module starts from.
                    let copy = format!("{v}_example");
                    if module_file(src, root, &copy)?.is_some() {
                        said.push_str(&format!(" ({copy} is)"));
                        example = copy;
                    }
                }
                values.push(said);
            }
            let values = if values.is_empty() {
                String::new()
            } else {
                format!(" ({})", values.join("; "))
            };
            format!(
                "line {} sets DJANGO_SETTINGS_MODULE {how}{values}, which tagback cannot choose between",
                c.line
            )
        }
        None => "does not set DJANGO_SETTINGS_MODULE with os.environ.setdefault (the deployment's environment must set it)".to_string(),
    };
    Err(Error::input(format!(
        "{manage_py} at {} {what}; say which module in .tagback.yml: `services: {{web: {{settings: {example}}}}}` (`plan --repo DIR` reads DIR/.tagback.yml, or give --config FILE){found}",
        src.label()
    )))
}

/// Assignments to `name` in `stmts`, blocks included: (value, line, whether
/// a condition other than `if __name__ == "__main__":` guards it).
fn assignments<'a>(
    stmts: &'a [Stmt],
    name: &str,
    guarded: bool,
    out: &mut Vec<(&'a Value, u32, bool)>,
) {
    for s in stmts {
        match s {
            Stmt::Assign {
                targets,
                value,
                line,
            } if targets.iter().any(|t| t == name) => out.push((value, *line, guarded)),
            Stmt::AugAdd {
                target,
                value,
                line,
            } if target == name => {
                out.push((value, *line, true));
            }
            Stmt::Block {
                conditional,
                test,
                body,
                ..
            } => {
                let main = matches!(test.as_deref(), Some(Value::Compare(python::Cmp::Eq, a, b))
                    if matches!((&**a, &**b), (Value::Name(n), Value::Str(m)) if n == "__name__" && m == "__main__"));
                assignments(body, name, guarded || (*conditional && !main), out);
            }
            _ => {}
        }
    }
}

/// What a settings module may say that shapes the migration graph, or
/// reach it indirectly: a module whose text has none of these can only
/// inherit INSTALLED_APPS, MIGRATION_MODULES and swappable models.
const GRAPH_SETTINGS_MARKERS: [&str; 9] = [
    "INSTALLED_APPS",
    "MIGRATION_MODULES",
    "_APPS",
    "_MODEL",
    "globals(",
    "vars(",
    "exec(",
    "setattr(",
    "import_module",
];

/// When manage.py names no settings module (the deployment's environment
/// does, as babybuddy's): the one module beside it that sets INSTALLED_APPS,
/// if every other module of its settings package can only inherit what
/// shapes the migration graph — then whichever of them the deployment sets,
/// the plan is the same. `None` when that cannot be shown.
fn sole_settings_module(
    source: &dyn ProjectSource,
    root: &str,
    manage_py: &str,
) -> Option<(String, Option<String>)> {
    let candidates = settings_candidates(source, root);
    let [module] = candidates.as_slice() else {
        return None;
    };
    // Only a settings package (`pkg/settings/base.py`): its siblings are the
    // other settings modules a deployment may name.
    let (package, stem) = module.rsplit_once('.')?;
    if !package.ends_with("settings") || stem == "settings" {
        return None;
    }
    let dir = join(root, &package.replace('.', "/"));
    let files = source.list_dir(&dir).ok()??;
    let mut others = Vec::new();
    for f in files
        .iter()
        .filter(|f| !f.is_dir && f.name.ends_with(".py"))
    {
        let name = f.name.trim_end_matches(".py");
        if name == stem {
            continue;
        }
        let text = source.read_text(&format!("{dir}/{}", f.name)).ok()??;
        if GRAPH_SETTINGS_MARKERS.iter().any(|m| text.contains(m)) {
            return None;
        }
        if name != "__init__" {
            others.push(format!("{package}.{name}"));
        }
    }
    let others = if others.is_empty() {
        "none".to_string()
    } else {
        others.join(", ")
    };
    let note = format!(
        "{manage_py} does not set DJANGO_SETTINGS_MODULE (the deployment's environment does): read {module}, the only settings module beside it that sets INSTALLED_APPS; the others there ({others}) can only inherit what shapes the migration graph, so the plan is the same whichever of them the deployment sets (one outside the repository is not seen: name it with `settings:` in .tagback.yml)"
    );
    Some((module.clone(), Some(note)))
}

/// Settings modules beside manage.py (`pkg/settings.py`, `pkg/settings/*.py`)
/// whose text sets INSTALLED_APPS: what the user may mean, for the message
/// that asks for `settings:`. At most six, sorted.
fn settings_candidates(source: &dyn ProjectSource, root: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(Some(top)) = source.list_dir(root) else {
        return out;
    };
    let sets_apps = |path: &str| matches!(source.read_text(path), Ok(Some(text)) if text.contains("INSTALLED_APPS"));
    for pkg in top.iter().filter(|e| e.is_dir) {
        let dir = join(root, &pkg.name);
        if sets_apps(&format!("{dir}/settings.py")) {
            out.push(format!("{}.settings", pkg.name));
        }
        if let Ok(Some(files)) = source.list_dir(&format!("{dir}/settings")) {
            for f in files.iter().filter(|f| !f.is_dir) {
                let Some(stem) = f.name.strip_suffix(".py") else {
                    continue;
                };
                if sets_apps(&format!("{dir}/settings/{}", f.name)) {
                    out.push(if stem == "__init__" {
                        format!("{}.settings", pkg.name)
                    } else {
                        format!("{}.settings.{stem}", pkg.name)
                    });
                }
            }
        }
    }
    out.sort();
    out.truncate(6);
    out
}

/// An entry a condition may add to or remove from a list.
#[derive(Debug, Clone)]
struct MaybeEntry {
    entry: String,
    file: String,
    line: u32,
    removed: bool,
}

/// The names a value reads (`BASE_APPS + EXTRA_APPS` → both).
fn names_in(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Name(n) => out.push(n.clone()),
        Value::Add(a, b) => {
            names_in(a, out);
            names_in(b, out);
        }
        Value::List(items) => items.iter().for_each(|i| names_in(i, out)),
        Value::Starred(inner) => names_in(inner, out),
        _ => {}
    }
}

/// Executes a settings module's top-level statements over literal values.
struct SettingsReader<'a> {
    src: &'a dyn ProjectSource,
    cx: &'a dyn ReadContext,
    root: &'a str,
    env: BTreeMap<String, Value>,
    /// Apps appended under a condition: (entry, file, line).
    maybe_apps: Vec<(String, String, u32)>,
    /// Apps removed from INSTALLED_APPS under a condition: (entry, file, line).
    maybe_removed: Vec<(String, String, u32)>,
    /// Entries added to or removed from a helper list under a condition, by
    /// the list's name; they become maybe-apps when the list flows into
    /// INSTALLED_APPS.
    maybe_by_var: BTreeMap<String, Vec<MaybeEntry>>,
    /// What was assumed about parts tagback cannot read: (file, line, what).
    assumptions: Vec<(String, u32, String)>,
    /// The same for a helper list, by the list's name: said only once the
    /// list flows into INSTALLED_APPS (`ALLOWED_HOSTS = [domain]` is no
    /// assumption about apps).
    assumed_by_var: BTreeMap<String, Vec<(String, u32, String)>>,
    /// Names bound to a reordering of INSTALLED_APPS (`sorted_apps =
    /// reversed(INSTALLED_APPS)`), forgotten when INSTALLED_APPS changes.
    permutations: BTreeSet<String>,
    /// Local names of django-split-settings' `include` and `optional`.
    split_settings: BTreeMap<String, &'static str>,
    /// Settings changed in ways that cannot be followed: name → (file, line, why).
    dynamic: BTreeMap<String, (String, u32, String)>,
    depth: u32,
    seen: BTreeSet<String>,
}

impl<'a> SettingsReader<'a> {
    /// A reader with an empty namespace.
    fn new(
        src: &'a dyn ProjectSource,
        cx: &'a dyn ReadContext,
        root: &'a str,
        depth: u32,
        seen: BTreeSet<String>,
    ) -> Self {
        SettingsReader {
            src,
            cx,
            root,
            env: BTreeMap::new(),
            maybe_apps: Vec::new(),
            maybe_removed: Vec::new(),
            maybe_by_var: BTreeMap::new(),
            assumptions: Vec::new(),
            assumed_by_var: BTreeMap::new(),
            permutations: BTreeSet::new(),
            split_settings: BTreeMap::new(),
            dynamic: BTreeMap::new(),
            depth,
            seen,
        }
    }

    fn exec_file(&mut self, file: &str, module: &str) -> Result<()> {
        let package = if file.ends_with("/__init__.py") {
            module.to_string()
        } else {
            module
                .rsplit_once('.')
                .map_or(String::new(), |(p, _)| p.to_string())
        };
        self.exec_in(file, &package, false)
    }

    /// Run `file`'s statements in this reader's namespace, as a module of
    /// `package` (an included file runs in the including module's globals).
    fn exec_in(&mut self, file: &str, package: &str, conditional: bool) -> Result<()> {
        if self.depth > 16 || !self.seen.insert(file.to_string()) {
            return Ok(());
        }
        self.cx.touch(file);
        let stmts = self.cx.python(self.src, file)?;
        self.depth += 1;
        let r = self.exec(&stmts, file, package, conditional);
        self.depth -= 1;
        r
    }

    /// django-split-settings: `include("components/base.py", optional("local.py"))`
    /// runs each file (glob patterns sorted, relative to the including file)
    /// in this namespace; an `optional` one that is absent is skipped, a
    /// required one that is absent fails the settings import.
    fn include(
        &mut self,
        c: &python::Call,
        file: &str,
        package: &str,
        conditional: bool,
    ) -> Result<()> {
        let dir = file.rsplit_once('/').map_or("", |(d, _)| d);
        for arg in &c.args {
            let (pattern, optional) = match self.eval(arg) {
                Value::Str(s) => (s, false),
                Value::Call(o) if self.split_settings.get(&o.func) == Some(&"optional") => {
                    match o.args.first().map(|a| self.eval(a)) {
                        Some(Value::Str(s)) => (s, true),
                        _ => {
                            self.include_unknown(file, c.line);
                            continue;
                        }
                    }
                }
                _ => {
                    self.include_unknown(file, c.line);
                    continue;
                }
            };
            let Some(path) = normalize(&super::join(dir, &pattern)) else {
                self.include_unknown(file, c.line);
                continue;
            };
            let files = self.expand(&path)?;
            if files.is_empty() && !optional {
                return Err(Error::input(format!(
                    "{file} at {} line {}: include() names {pattern:?}, which is not in the repository (django-split-settings fails the settings import)",
                    self.src.label(),
                    c.line
                )));
            }
            for f in files {
                self.exec_in(&f, package, conditional)?;
            }
        }
        Ok(())
    }

    fn include_unknown(&mut self, file: &str, line: u32) {
        for name in ["INSTALLED_APPS", "MIGRATION_MODULES"] {
            self.mark_dynamic(
                name,
                file,
                line,
                "may be set by an include() of a file tagback cannot name",
            );
        }
    }

    /// The files a path or a glob in its last component names, sorted.
    fn expand(&self, path: &str) -> Result<Vec<String>> {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        if !name.contains(['*', '?', '[']) {
            return Ok(if self.src.exists(path)? {
                vec![path.to_string()]
            } else {
                Vec::new()
            });
        }
        self.cx.touch(dir);
        let mut out: Vec<String> = self
            .src
            .list_dir(dir)?
            .unwrap_or_default()
            .into_iter()
            .filter(|e| !e.is_dir && glob_match(name, &e.name) == Some(true))
            .map(|e| super::join(dir, &e.name))
            .collect();
        out.sort();
        Ok(out)
    }

    fn eval(&self, v: &Value) -> Value {
        match v {
            Value::Name(n) => self.env.get(n).cloned().unwrap_or_else(|| v.clone()),
            Value::Add(a, b) => match (self.eval(a), self.eval(b)) {
                (Value::List(mut x), Value::List(y)) => {
                    x.extend(y);
                    Value::List(x)
                }
                // `INSTALLED_APPS + SOCIAL_PROVIDERS` (Tandoor: a list read
                // from the environment by a function): the same as
                // `[*INSTALLED_APPS, *SOCIAL_PROVIDERS]`, an unknown part that
                // is assumed external and said (a repository migrations
                // directory it would install is still reported unplanned).
                (Value::List(mut x), Value::Call(_) | Value::Name(_)) => {
                    x.push(Value::Starred(b.clone()));
                    Value::List(x)
                }
                (Value::Str(x), Value::Str(y)) => Value::Str(x + &y),
                _ => Value::Dynamic { line: 0 },
            },
            Value::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for i in items {
                    match i {
                        // `[*BASE_APPS, "x"]`: a list tagback knows is spliced;
                        // anything else stays a marked unknown part.
                        Value::Starred(inner) => match self.eval(inner) {
                            Value::List(xs) => out.extend(xs),
                            // Unevaluated, so messages can name it.
                            _ => out.push(i.clone()),
                        },
                        _ => out.push(self.eval(i)),
                    }
                }
                Value::List(out)
            }
            Value::Dict(items) => Value::Dict(
                items
                    .iter()
                    .map(|(k, v)| (self.eval(k), self.eval(v)))
                    .collect(),
            ),
            _ => v.clone(),
        }
    }

    /// Whether `value` only reorders or deduplicates INSTALLED_APPS as it is
    /// now (`reversed(list(dict.fromkeys(reversed(INSTALLED_APPS))))`,
    /// `sorted(...)`, `tuple(...)`, or a name bound to such a value since
    /// INSTALLED_APPS last changed).
    fn same_members_of(&self, value: &Value) -> bool {
        match value {
            Value::Name(n) => n == "INSTALLED_APPS" || self.permutations.contains(n),
            Value::Call(c)
                if matches!(
                    c.func.as_str(),
                    "list" | "tuple" | "reversed" | "sorted" | "dict.fromkeys" | "set"
                ) && c.args.len() == 1
                    && !c.starred
                    && c.kwargs.iter().all(|(k, _)| k == "key" || k == "reverse") =>
            {
                self.same_members_of(&c.args[0])
            }
            _ => false,
        }
    }

    fn mark_dynamic(&mut self, name: &str, file: &str, line: u32, why: &str) {
        if matches!(
            name,
            "INSTALLED_APPS" | "MIGRATION_MODULES" | "AUTH_USER_MODEL"
        ) {
            self.dynamic.entry(name.to_string()).or_insert((
                file.to_string(),
                line,
                why.to_string(),
            ));
        }
    }

    fn exec(&mut self, stmts: &[Stmt], file: &str, package: &str, conditional: bool) -> Result<()> {
        for s in stmts {
            match s {
                Stmt::Assign {
                    targets,
                    value,
                    line,
                } => {
                    let v = self.eval(value);
                    for t in targets {
                        // `INSTALLED_APPS = list(dict.fromkeys(INSTALLED_APPS))`
                        // (NetBox drops duplicates so): the same apps.
                        if self.same_members_of(value) {
                            if t == "INSTALLED_APPS" {
                                continue;
                            }
                            self.permutations.insert(t.clone());
                        } else if t == "INSTALLED_APPS" {
                            self.permutations.clear();
                        } else {
                            self.permutations.remove(t.as_str());
                        }
                        if conditional {
                            // `if DEBUG: EXTRA_APPS = [...]`: its entries may be there.
                            if t == "INSTALLED_APPS"
                                || matches!(self.env.get(t), Some(Value::List(_)))
                                || matches!(v, Value::List(_))
                            {
                                self.flow_assumed(value, t);
                                self.maybe_list(t, &v, file, *line);
                            } else {
                                self.mark_dynamic(
                                    t,
                                    file,
                                    *line,
                                    "is assigned only under a condition",
                                );
                                // Its value is no longer known: a later `if`
                                // on it is not decided, and a list it adds to
                                // INSTALLED_APPS is read like any unknown name
                                // (NetBox's `django_apps = plugin.django_apps`
                                // in its plugin loop: assumed external).
                                self.env.remove(t.as_str());
                            }
                            continue;
                        }
                        if matches!(v, Value::Dynamic { .. } | Value::Call(_)) {
                            self.mark_dynamic(t, file, *line, "is computed at run time");
                        } else {
                            self.dynamic.remove(t.as_str());
                        }
                        self.flow(value, t);
                        let kept = self.strip_unknown_parts(t, v.clone(), file, *line);
                        self.env.insert(t.clone(), kept);
                    }
                }
                Stmt::AugAdd {
                    target,
                    value,
                    line,
                } => {
                    if target == "INSTALLED_APPS" {
                        self.permutations.clear();
                    }
                    let add = self.eval(value);
                    if conditional {
                        self.flow_assumed(value, target);
                        self.maybe_list(target, &add, file, *line);
                        continue;
                    }
                    self.flow(value, target);
                    let cur = self
                        .env
                        .get(target)
                        .cloned()
                        .unwrap_or(Value::Dynamic { line: *line });
                    let v = self.eval(&Value::Add(Box::new(cur), Box::new(add)));
                    if matches!(v, Value::Dynamic { .. }) {
                        self.mark_dynamic(
                            target,
                            file,
                            *line,
                            "is extended with a value tagback cannot read",
                        );
                    }
                    let v = self.strip_unknown_parts(target, v, file, *line);
                    self.env.insert(target.clone(), v);
                }
                Stmt::DynamicAssign { target, line } => {
                    self.mark_dynamic(
                        target,
                        file,
                        *line,
                        "is changed in a way tagback cannot follow",
                    );
                    if self.env.contains_key(target) {
                        self.env
                            .insert(target.clone(), Value::Dynamic { line: *line });
                    }
                }
                Stmt::Call(c) if self.split_settings.get(&c.func) == Some(&"include") => {
                    self.include(c, file, package, conditional)?;
                }
                Stmt::Call(c) => {
                    let Some((target, method)) = c.func.rsplit_once('.') else {
                        continue;
                    };
                    // INSTALLED_APPS itself, or a helper list that may flow
                    // into it later (`CORE_APPS.append("x")`).
                    let helper = target != "INSTALLED_APPS";
                    if !helper {
                        self.permutations.clear();
                    }
                    if helper && !matches!(self.env.get(target), Some(Value::List(_))) {
                        continue;
                    }
                    if method == "remove" {
                        self.remove(target, c, file, conditional);
                        continue;
                    }
                    let arg = match method {
                        "append" => c.args.first().map(|a| Value::List(vec![self.eval(a)])),
                        "extend" => c.args.first().map(|a| self.eval(a)),
                        "insert" => c.args.get(1).map(|a| Value::List(vec![self.eval(a)])),
                        _ => None,
                    };
                    let Some(arg) = arg else {
                        self.unreadable(
                            target,
                            file,
                            c.line,
                            &format!("is changed by .{method}()"),
                        );
                        continue;
                    };
                    if conditional {
                        if let Some(raw) = c.args.last() {
                            self.flow_assumed(raw, target);
                        }
                        self.maybe_list(target, &arg, file, c.line);
                        continue;
                    }
                    if let Some(raw) = c.args.last() {
                        self.flow(raw, target);
                    }
                    let cur = self
                        .env
                        .get(target)
                        .cloned()
                        .unwrap_or(Value::Dynamic { line: c.line });
                    let v = match (cur, arg) {
                        (Value::List(mut x), Value::List(y)) => {
                            if method == "insert" {
                                let at = match c.args.first() {
                                    Some(Value::Int(i)) if *i >= 0 => (*i as usize).min(x.len()),
                                    _ => 0,
                                };
                                for (k, item) in y.into_iter().enumerate() {
                                    x.insert(at + k, item);
                                }
                            } else {
                                x.extend(y);
                            }
                            Value::List(x)
                        }
                        _ => {
                            self.mark_dynamic(
                                target,
                                file,
                                c.line,
                                "is changed with a value tagback cannot read",
                            );
                            Value::Dynamic { line: c.line }
                        }
                    };
                    let v = self.strip_unknown_parts(target, v, file, c.line);
                    self.env.insert(target.to_string(), v);
                }
                Stmt::ImportFrom {
                    module,
                    level,
                    names,
                    line,
                } => {
                    let absolute = resolve_relative(package, module, *level);
                    let Some(absolute) = absolute else { continue };
                    if absolute == "split_settings.tools" || absolute == "split_settings" {
                        for (n, alias) in names {
                            let role = match n.as_str() {
                                "include" => "include",
                                "optional" => "optional",
                                _ => continue,
                            };
                            self.split_settings
                                .insert(alias.clone().unwrap_or_else(|| n.clone()), role);
                        }
                        continue;
                    }
                    self.cx.touch(&join(self.root, top_of_module(&absolute)));
                    let Some((path, _)) = module_file(self.src, self.root, &absolute)? else {
                        if !conditional
                            && names.iter().any(|(n, _)| n == "*")
                            && absolute.split('.').next() == package.split('.').next()
                        {
                            return Err(Error::input(format!(
                                "{file} at {} line {line}: `from {}{module} import *` names a module that is not in the repository",
                                self.src.label(),
                                ".".repeat(*level as usize)
                            )));
                        }
                        continue;
                    };
                    if names.iter().any(|(n, _)| n == "*") {
                        self.exec_file(&path, &absolute)?;
                    } else {
                        // `from .base import INSTALLED_APPS as BASE_APPS`
                        let mut sub = SettingsReader::new(
                            self.src,
                            self.cx,
                            self.root,
                            self.depth + 1,
                            self.seen.clone(),
                        );
                        sub.exec_file(&path, &absolute)?;
                        for (n, alias) in names {
                            let local = alias.clone().unwrap_or_else(|| n.clone());
                            if let Some(v) = sub.env.get(n) {
                                self.env.insert(local.clone(), v.clone());
                            }
                            // What a condition may change in the imported
                            // list travels with it.
                            let mut maybe = sub.maybe_by_var.remove(n).unwrap_or_default();
                            if n == "INSTALLED_APPS" {
                                for (list, removed) in
                                    [(&sub.maybe_apps, false), (&sub.maybe_removed, true)]
                                {
                                    maybe.extend(list.iter().map(|(e, f, l)| MaybeEntry {
                                        entry: e.clone(),
                                        file: f.clone(),
                                        line: *l,
                                        removed,
                                    }));
                                }
                            }
                            if let Some(assumed) = sub.assumed_by_var.remove(n) {
                                self.assumed_by_var
                                    .entry(local.clone())
                                    .or_default()
                                    .extend(assumed);
                            }
                            if !maybe.is_empty() {
                                self.maybe_by_var.entry(local).or_default().extend(maybe);
                            }
                        }
                        self.assumptions.extend(sub.assumptions);
                    }
                }
                Stmt::Block {
                    conditional: c,
                    test,
                    split,
                    body,
                    ..
                } => {
                    // `DEBUG = False` … `if not DEBUG:` is decided; a test on
                    // anything else (an environment variable) runs both
                    // branches as "maybe".
                    let decided = test
                        .as_deref()
                        .and_then(|t| python::decide(t, &|v| self.eval(v)));
                    match decided {
                        Some(true) => self.exec(&body[..*split], file, package, conditional)?,
                        Some(false) => self.exec(&body[*split..], file, package, conditional)?,
                        None => self.exec(body, file, package, conditional || *c)?,
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// `target` changed in a way tagback cannot follow: INSTALLED_APPS is
    /// marked dynamic (it blocks); a helper list becomes unknown, which
    /// blocks only if it flows into INSTALLED_APPS.
    fn unreadable(&mut self, target: &str, file: &str, line: u32, why: &str) {
        if target == "INSTALLED_APPS" {
            self.mark_dynamic(target, file, line, why);
        } else {
            self.env.insert(target.to_string(), Value::Dynamic { line });
        }
    }

    /// Entries a condition may add to `target`.
    fn maybe_list(&mut self, target: &str, v: &Value, file: &str, line: u32) {
        const WHY: &str = "is changed under a condition with a value tagback cannot read";
        // `for p in PLUGINS: INSTALLED_APPS.extend(p.django_apps)`: a list
        // from configuration, assumed to be packages like a loop variable.
        if let Value::Name(n) = v
            && !self.env.contains_key(n)
        {
            self.assume(target, n, file, line);
            return;
        }
        let Value::List(items) = v else {
            self.unreadable(target, file, line, WHY);
            return;
        };
        for i in items {
            match i {
                Value::Str(s) => self.maybe_entry(target, s, file, line, false),
                // A loop variable (`for app in PLUGINS: INSTALLED_APPS.append(app)`)
                // or `*EXTRA`: apps from configuration, assumed to be packages.
                Value::Name(n) if !self.env.contains_key(n) => self.assume(target, n, file, line),
                Value::Starred(inner) => self.assume_starred(target, inner, file, line),
                _ => self.unreadable(target, file, line, WHY),
            }
        }
    }

    fn maybe_entry(&mut self, target: &str, entry: &str, file: &str, line: u32, removed: bool) {
        let t = (entry.to_string(), file.to_string(), line);
        match (target, removed) {
            ("INSTALLED_APPS", false) => self.maybe_apps.push(t),
            ("INSTALLED_APPS", true) => self.maybe_removed.push(t),
            _ => self
                .maybe_by_var
                .entry(target.to_string())
                .or_default()
                .push(MaybeEntry {
                    entry: t.0,
                    file: t.1,
                    line,
                    removed,
                }),
        }
    }

    /// `*inner` in a list of apps: assumed to come from outside the repository.
    fn assume_starred(&mut self, target: &str, inner: &Value, file: &str, line: u32) {
        let mut names = Vec::new();
        names_in(inner, &mut names);
        self.assume(target, &names.join(", "), file, line);
    }

    /// Say in one line what is assumed about apps tagback cannot read.
    fn assume(&mut self, target: &str, source: &str, file: &str, line: u32) {
        let source = if source.is_empty() {
            "a value computed at run time"
        } else {
            source
        };
        let assumed = (
            file.to_string(),
            line,
            format!(
                "apps added to {target} from `{source}` cannot be read statically; they are assumed to come from outside this repository (list them under `installed_apps:` in .tagback.yml if not)"
            ),
        );
        if target == "INSTALLED_APPS" {
            self.assumptions.push(assumed);
        } else {
            self.assumed_by_var
                .entry(target.to_string())
                .or_default()
                .push(assumed);
        }
    }

    /// What was assumed about the lists `value` reads is now said of `target`
    /// too: as a note once it reaches INSTALLED_APPS.
    fn flow_assumed(&mut self, value: &Value, target: &str) {
        let mut names = Vec::new();
        names_in(value, &mut names);
        for n in names.iter().filter(|n| n.as_str() != target) {
            for a in self.assumed_by_var.get(n).cloned().unwrap_or_default() {
                let list = if target == "INSTALLED_APPS" {
                    &mut self.assumptions
                } else {
                    self.assumed_by_var.entry(target.to_string()).or_default()
                };
                if !list.contains(&a) {
                    list.push(a);
                }
            }
        }
    }

    /// What a condition may change in the lists `value` reads now also may
    /// change `target` (`INSTALLED_APPS = CORE_APPS + EXTRA`).
    fn flow(&mut self, value: &Value, target: &str) {
        self.flow_assumed(value, target);
        let mut names = Vec::new();
        names_in(value, &mut names);
        for n in names {
            if n == target {
                continue;
            }
            let Some(maybe) = self.maybe_by_var.get(&n).cloned() else {
                continue;
            };
            for m in maybe {
                self.maybe_entry(target, &m.entry, &m.file, m.line, m.removed);
            }
        }
    }

    /// `INSTALLED_APPS = [..., *env_apps]`: the unknown `*` parts of a list
    /// become an assumption (apps from outside the repository) and leave the
    /// list; other unknown parts stay and make it unreadable.
    fn strip_unknown_parts(&mut self, target: &str, v: Value, file: &str, line: u32) -> Value {
        let Value::List(items) = v else { return v };
        let mut kept = Vec::with_capacity(items.len());
        for i in items {
            if let Value::Starred(inner) = &i {
                self.assume_starred(target, inner, file, line);
            } else {
                kept.push(i);
            }
        }
        Value::List(kept)
    }

    /// `LIST.remove("x")`: gone, or (under a condition) maybe gone.
    fn remove(&mut self, target: &str, c: &python::Call, file: &str, conditional: bool) {
        let Some(Value::Str(entry)) = c.args.first().map(|a| self.eval(a)) else {
            self.unreadable(
                target,
                file,
                c.line,
                "is changed by .remove() with a value tagback cannot read",
            );
            return;
        };
        if conditional {
            self.maybe_entry(target, &entry, file, c.line, true);
            return;
        }
        match self.env.get_mut(target) {
            Some(Value::List(items)) => {
                if let Some(i) = items.iter().position(|v| *v == Value::Str(entry.clone())) {
                    items.remove(i);
                }
            }
            _ => self.mark_dynamic(
                target,
                file,
                c.line,
                "is changed by .remove() before tagback can read it",
            ),
        }
    }
}

/// `a/b/../c` → `a/c`; `None` when it climbs out of the repository.
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            _ => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// Python's glob matching of one path component (`*`, `?`, `[abc]`; a
/// leading `.` only when the pattern has one). `None`: not a pattern.
fn glob_match(pattern: &str, name: &str) -> Option<bool> {
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    Some(
        glob::Pattern::new(pattern)
            .ok()?
            .matches_with(name, options),
    )
}

/// `from ..x import y` inside `package` → the absolute module name.
pub(super) fn resolve_relative(package: &str, module: &str, level: u32) -> Option<String> {
    if level == 0 {
        return Some(module.to_string());
    }
    let mut parts: Vec<&str> = if package.is_empty() {
        Vec::new()
    } else {
        package.split('.').collect()
    };
    for _ in 1..level {
        parts.pop()?;
    }
    if !module.is_empty() {
        parts.push(module);
    }
    (!parts.is_empty()).then(|| parts.join("."))
}

/// Resolve a relative import found in a module of `package`.
pub fn absolute_module(package: &str, module: &str) -> Option<String> {
    let level = module.chars().take_while(|c| *c == '.').count() as u32;
    resolve_relative(package, &module[level as usize..], level)
}
