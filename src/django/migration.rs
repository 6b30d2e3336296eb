//! One migration file read statically: dependencies, replaces, run_before and
//! operations (kind, line, reversibility, data dropped when unapplied).

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::key::{MigrationKey, Name};
use super::python::{self, Call, Stmt, Value};

/// A dependency as written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Dependency {
    /// `("app", "0002_x")`, `("app", "__first__")`, `("app", "__latest__")`.
    Key(Name, Name),
    /// `migrations.swappable_dependency(settings.SETTING)`.
    Swappable(String),
}

/// Whether an operation can be unapplied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Reversibility {
    /// Django can unapply it.
    Reversible,
    /// Unapplying raises `IrreversibleError` (or `NotImplementedError`).
    Irreversible,
    /// Cannot be known statically (custom class not found, dynamic operations).
    Unknown,
}

/// A class named in `operations` that is not one of Django's, to be followed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomOp {
    /// The absolute module the class comes from (`None`: the migration file itself).
    pub module: Option<String>,
    /// The class name in that module.
    pub class: String,
}

/// One operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// `RunPython`, `AddField`, a custom class name, or `dynamic`.
    pub kind: String,
    /// 1-based line in the migration file.
    pub line: u32,
    /// Reversibility as far as the file alone tells.
    pub reversibility: Reversibility,
    /// Why it is irreversible or unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What unapplying it drops (`drops table shop_order`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_loss: Option<String>,
    /// A custom class to follow to decide reversibility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<CustomOp>,
}

/// Something in the file computed at run time, with its line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynamicPart {
    /// 1-based line.
    pub line: u32,
    /// What is dynamic.
    pub what: String,
}

/// The operations of a migration: read from its file, or deferred (the
/// file was described without them, and they are read from the file only
/// when they matter: for the migrations a plan unapplies). There is no way
/// to iterate deferred operations as if there were none: a reader must say
/// what a deferred list means to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operations {
    /// Read from the file, in order.
    Read(Vec<Operation>),
    /// Not read (the migration came from a description without them).
    Deferred,
}

impl Default for Operations {
    fn default() -> Operations {
        Operations::Read(Vec::new())
    }
}

impl Operations {
    /// The operations, `None` when deferred.
    pub fn read(&self) -> Option<&[Operation]> {
        match self {
            Operations::Read(v) => Some(v),
            Operations::Deferred => None,
        }
    }

    /// Whether the operations were read.
    pub fn is_read(&self) -> bool {
        matches!(self, Operations::Read(_))
    }

    /// Append one (a deferred list becomes a read one).
    pub fn push(&mut self, op: Operation) {
        self.extend([op]);
    }

    /// Append several (a deferred list becomes a read one).
    pub fn extend(&mut self, ops: impl IntoIterator<Item = Operation>) {
        match self {
            Operations::Read(v) => v.extend(ops),
            Operations::Deferred => *self = Operations::Read(ops.into_iter().collect()),
        }
    }
}

/// A parsed migration module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Migration {
    /// `dependencies`.
    pub dependencies: Vec<Dependency>,
    /// `replaces` (a squash when non-empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaces: Vec<MigrationKey>,
    /// `run_before`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run_before: Vec<MigrationKey>,
    /// `initial`.
    pub initial: Option<bool>,
    /// `operations`, or [`Operations::Deferred`] when the file was described
    /// without them (the on-disk cache); read them with `Loader::complete`.
    pub operations: Operations,
    /// Parts of the class that cannot be read exactly (its graph
    /// attributes, `__init__`, conditional assignments).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dynamic: Vec<DynamicPart>,
    /// Parts of `operations` that cannot be read exactly: read with the
    /// operations, so empty while they are deferred.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations_dynamic: Vec<DynamicPart>,
}

impl Migration {
    /// Every part that cannot be read exactly, by line.
    pub fn all_dynamic(&self) -> Vec<&DynamicPart> {
        by_line(&self.dynamic, &self.operations_dynamic)
    }
}

/// A class's dynamic parts and its operations' (read apart), by line.
pub fn by_line<'a>(
    class: &'a [DynamicPart],
    operations: &'a [DynamicPart],
) -> Vec<&'a DynamicPart> {
    let mut all: Vec<&DynamicPart> = class.iter().chain(operations).collect();
    all.sort_by_key(|d| d.line);
    all
}

/// Why a file is not a migration Django can load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line (0 when the whole file is at fault).
    pub line: u32,
    /// One sentence.
    pub message: String,
}

/// Django's own operations (and `django.contrib.postgres`'s), all reversible
/// except `RunPython`/`RunSQL` without a reverse, which are checked separately.
const DJANGO_OPERATIONS: &[&str] = &[
    "CreateModel",
    "DeleteModel",
    "RenameModel",
    "AlterModelTable",
    "AlterModelTableComment",
    "AlterUniqueTogether",
    "AlterIndexTogether",
    "AlterOrderWithRespectTo",
    "AlterModelOptions",
    "AlterModelManagers",
    "AddField",
    "RemoveField",
    "AlterField",
    "RenameField",
    "AddIndex",
    "RemoveIndex",
    "RenameIndex",
    "AddConstraint",
    "RemoveConstraint",
    "AlterConstraint",
    "SeparateDatabaseAndState",
    "RunSQL",
    "RunPython",
    "CreateExtension",
    "BloomExtension",
    "BtreeGinExtension",
    "BtreeGistExtension",
    "CITextExtension",
    "CryptoExtension",
    "HStoreExtension",
    "TrigramExtension",
    "UnaccentExtension",
    "CreateCollation",
    "RemoveCollation",
    "AddIndexConcurrently",
    "RemoveIndexConcurrently",
    "AddConstraintNotValid",
    "ValidateConstraint",
];

/// Whether `kind` is one of Django's operation classes.
pub fn is_django_operation(kind: &str) -> bool {
    DJANGO_OPERATIONS.contains(&kind)
}

/// Parse a migration module's source. `app_label` is used to name tables in
/// data-loss notes.
pub fn parse(source: &str, app_label: &str) -> Result<Migration, ParseError> {
    parse_as(source, app_label, Read::Everything)
}

/// Parse a migration module's source for the graph: what [`parse`] gives,
/// with the operations deferred (not judged; the file is parsed all the
/// same, so a file Python cannot read is an error either way). Most of a
/// cold run's migrations are never unapplied: their operations do not
/// matter.
pub fn parse_graph(source: &str, app_label: &str) -> Result<Migration, ParseError> {
    parse_as(source, app_label, Read::Graph)
}

/// Whether [`parse_graph`] reads `source` as [`parse`] does, but for the
/// operations (and their dynamic parts), which it defers: the property the
/// differential test and the `migration` fuzz target hold it to. `Err`
/// describes a difference.
pub fn check_graph_reading(source: &str, app_label: &str) -> Result<(), String> {
    match (parse(source, app_label), parse_graph(source, app_label)) {
        (Ok(mut full), Ok(graph)) => {
            full.operations = Operations::Deferred;
            full.operations_dynamic.clear();
            if full == graph {
                Ok(())
            } else {
                Err(format!(
                    "read for the graph:\n{graph:#?}\nread completely:\n{full:#?}"
                ))
            }
        }
        (Err(a), Err(b)) if a == b => Ok(()),
        (a, b) => Err(format!(
            "read completely: {:?}; read for the graph: {:?}",
            a.map(|_| "a migration"),
            b.map(|_| "a migration")
        )),
    }
}

/// How much of a migration [`parse_as`] reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Read {
    Everything,
    Graph,
}

fn parse_as(source: &str, app_label: &str, read: Read) -> Result<Migration, ParseError> {
    let stmts = match read {
        Read::Everything => python::parse_module(source),
        Read::Graph => python::parse_module_without_operations(source),
    }
    .map_err(|e| ParseError {
        line: e.line,
        message: format!("invalid Python: {}", e.message),
    })?;
    let mut env: BTreeMap<&str, &Value> = BTreeMap::new();
    let mut class = None;
    for s in &stmts {
        match s {
            Stmt::Assign { targets, value, .. } => {
                for t in targets {
                    env.insert(t, value);
                }
            }
            Stmt::Class(c) if c.name == "Migration" => class = Some(c),
            _ => {}
        }
    }
    let Some(class) = class else {
        let imported = imports(&stmts).contains_key("Migration");
        return Err(ParseError {
            line: 0,
            message: if imported {
                "imports its Migration class from elsewhere; tagback cannot read it statically"
                    .into()
            } else {
                "has no Migration class".into()
            },
        });
    };
    // What the module's names import: only operations are judged by them.
    let imports = match read {
        Read::Everything => imports(&stmts),
        Read::Graph => BTreeMap::new(),
    };
    let local_classes: BTreeMap<&str, &python::Class> = stmts
        .iter()
        .filter_map(|s| match s {
            Stmt::Class(c) => Some((c.name.as_str(), c)),
            _ => None,
        })
        .collect();
    let local_defs: BTreeMap<&str, &Stmt> = stmts
        .iter()
        .filter_map(|s| match s {
            Stmt::Def { name, .. } => Some((name.as_str(), s)),
            _ => None,
        })
        .collect();
    let ctx = Ctx {
        env: &env,
        imports: &imports,
        local_classes: &local_classes,
        local_defs: &local_defs,
        app_label,
        helper_dynamic: RefCell::new(Vec::new()),
    };
    let mut m = Migration {
        dependencies: Vec::new(),
        replaces: Vec::new(),
        run_before: Vec::new(),
        initial: None,
        operations: match read {
            Read::Everything => Operations::default(),
            Read::Graph => Operations::Deferred,
        },
        dynamic: Vec::new(),
        operations_dynamic: Vec::new(),
    };
    for s in &class.body {
        match s {
            Stmt::Assign {
                targets,
                value,
                line,
            } => {
                for t in targets {
                    if t == "operations" && read == Read::Graph {
                        continue;
                    }
                    ctx.attribute(&mut m, t, value, *line);
                }
            }
            Stmt::AugAdd { target, line, .. } | Stmt::DynamicAssign { target, line }
                if is_graph_attr(target) =>
            {
                m.dynamic.push(DynamicPart {
                    line: *line,
                    what: format!("`{target}` is modified in a way tagback cannot follow"),
                });
            }
            Stmt::Def {
                name, line, body, ..
            } if name == "__init__" => m.dynamic.push(DynamicPart {
                line: *line,
                what: if init_sets_only_dependencies(body) {
                    DEPENDENCIES_IN_INIT.into()
                } else {
                    "the Migration class computes its attributes in __init__".into()
                },
            }),
            Stmt::Block { line, body, .. } if body.iter().any(assigns_graph_attr) => {
                m.dynamic.push(DynamicPart {
                    line: *line,
                    what: "migration attributes are set conditionally or in a loop".into(),
                })
            }
            _ => {}
        }
    }
    m.operations_dynamic
        .append(&mut ctx.helper_dynamic.borrow_mut());
    m.dynamic.sort_by_key(|d| d.line);
    m.operations_dynamic.sort_by_key(|d| d.line);
    Ok(m)
}

/// The module-level imports of `stmts`: each bound name and the dotted
/// path it refers to (`from .a import b as c`: `c` -> `.a.b`).
fn imports(stmts: &[Stmt]) -> BTreeMap<String, String> {
    let mut imports = BTreeMap::new();
    for s in stmts {
        match s {
            Stmt::ImportFrom {
                module,
                level,
                names,
                ..
            } => {
                for (name, alias) in names {
                    let prefix = ".".repeat(*level as usize);
                    let sep = if module.is_empty() { "" } else { "." };
                    imports.insert(
                        alias.clone().unwrap_or_else(|| name.clone()),
                        format!("{prefix}{module}{sep}{name}"),
                    );
                }
            }
            Stmt::Import { names } => {
                for (name, alias) in names {
                    let key = alias
                        .clone()
                        .unwrap_or_else(|| name.split('.').next().unwrap_or(name).to_string());
                    let target = if alias.is_some() {
                        name.clone()
                    } else {
                        key.clone()
                    };
                    imports.insert(key, target);
                }
            }
            _ => {}
        }
    }
    imports
}

/// What an `__init__` that computes only the dependencies is reported as.
const DEPENDENCIES_IN_INIT: &str =
    "`dependencies` is computed in __init__ (state them under `migrations:` in .tagback.yml)";

/// Whether a dynamic part is about the dependencies alone (what
/// `dependencies:` in `.tagback.yml` can state).
pub fn is_dependency_part(d: &DynamicPart) -> bool {
    d.what.contains("`dependencies`") || d.what.starts_with("a dependency ")
}

/// Whether an `__init__` body changes `self.dependencies` and no other
/// attribute (`self.X = …`, `self.X += …`, `self.X.append(…)`, `super().__init__`).
fn init_sets_only_dependencies(body: &[Stmt]) -> bool {
    let mut deps = false;
    let mut other = false;
    let mut note = |target: &str| match target.strip_prefix("self.") {
        Some(a) if a == "dependencies" || a.starts_with("dependencies.") => deps = true,
        Some(_) => other = true,
        None => {}
    };
    fn walk(stmts: &[Stmt], note: &mut dyn FnMut(&str)) {
        for s in stmts {
            match s {
                Stmt::Assign { targets, .. } => targets.iter().for_each(|t| note(t)),
                Stmt::AugAdd { target, .. } | Stmt::DynamicAssign { target, .. } => {
                    note(if target == "self" { "self.?" } else { target })
                }
                Stmt::Call(c) => note(&c.func),
                Stmt::Block { body, .. } => walk(body, note),
                _ => {}
            }
        }
    }
    walk(body, &mut note);
    deps && !other
}

fn is_graph_attr(name: &str) -> bool {
    matches!(
        name,
        "dependencies" | "replaces" | "run_before" | "operations"
    )
}

fn assigns_graph_attr(s: &Stmt) -> bool {
    match s {
        Stmt::Assign { targets, .. } => targets.iter().any(|t| is_graph_attr(t)),
        Stmt::AugAdd { target, .. } | Stmt::DynamicAssign { target, .. } => is_graph_attr(target),
        Stmt::Block { body, .. } => body.iter().any(assigns_graph_attr),
        _ => false,
    }
}

struct Ctx<'a> {
    env: &'a BTreeMap<&'a str, &'a Value>,
    imports: &'a BTreeMap<String, String>,
    local_classes: &'a BTreeMap<&'a str, &'a python::Class>,
    /// Module-level functions (`Stmt::Def`), followed when an operation is
    /// built by one.
    local_defs: &'a BTreeMap<&'a str, &'a Stmt>,
    app_label: &'a str,
    /// Helper calls that could not be followed (added to
    /// `Migration::operations_dynamic`).
    helper_dynamic: RefCell<Vec<DynamicPart>>,
}

/// Helpers calling helpers deeper than this are not followed.
const MAX_HELPER_DEPTH: u32 = 8;

impl Ctx<'_> {
    /// Resolve a module-level name to its literal value, one level deep.
    fn resolve<'v>(&'v self, v: &'v Value) -> &'v Value {
        match v {
            Value::Name(n) => self.env.get(n.as_str()).copied().unwrap_or(v),
            _ => v,
        }
    }

    /// Flatten `[..] + [..]` into items; `None` when not a literal list.
    fn items<'v>(&'v self, v: &'v Value, out: &mut Vec<&'v Value>) -> bool {
        match self.resolve(v) {
            Value::List(items) => {
                out.extend(items.iter());
                true
            }
            Value::Add(a, b) => self.items(a, out) && self.items(b, out),
            _ => false,
        }
    }

    fn attribute(&self, m: &mut Migration, name: &str, value: &Value, line: u32) {
        let dynamic = |m: &mut Migration, what: String| m.dynamic.push(DynamicPart { line, what });
        match name {
            "dependencies" | "replaces" | "run_before" => {
                let mut items = Vec::new();
                if !self.items(value, &mut items) {
                    dynamic(m, format!("`{name}` is computed at run time"));
                    return;
                }
                for item in items {
                    match (name, self.key(item)) {
                        ("dependencies", Some((a, n))) => {
                            m.dependencies.push(Dependency::Key(a, n))
                        }
                        ("replaces", Some((app, name))) => {
                            m.replaces.push(MigrationKey { app, name });
                        }
                        ("run_before", Some((app, name))) => {
                            m.run_before.push(MigrationKey { app, name });
                        }
                        ("dependencies", None) => match self.resolve(item) {
                            Value::Call(c) if c.short_name() == "swappable_dependency" => {
                                match c.args.first().map(|a| self.resolve(a)) {
                                    Some(Value::Name(n)) if n.starts_with("settings.") => {
                                        m.dependencies.push(Dependency::Swappable(
                                            n["settings.".len()..].to_string(),
                                        ));
                                    }
                                    _ => dynamic(
                                        m,
                                        "a swappable_dependency() argument is not `settings.NAME`"
                                            .into(),
                                    ),
                                }
                            }
                            _ => dynamic(m, "a dependency is computed at run time".into()),
                        },
                        _ => dynamic(m, format!("an entry of `{name}` is computed at run time")),
                    }
                }
            }
            "initial" => {
                if let Value::Bool(b) = self.resolve(value) {
                    m.initial = Some(*b);
                }
            }
            "operations" => {
                let mut items = Vec::new();
                if let Value::Call(call) = self.resolve(value)
                    && let Some(built) = self.helper_list(call)
                {
                    m.operations.extend(built);
                    return;
                }
                if !self.items(value, &mut items) {
                    m.operations_dynamic.push(DynamicPart {
                        line,
                        what: "`operations` is computed at run time".into(),
                    });
                    m.operations.push(Operation {
                        kind: "dynamic".into(),
                        line,
                        reversibility: Reversibility::Unknown,
                        reason: Some("operations are computed at run time".into()),
                        data_loss: None,
                        custom: None,
                    });
                    return;
                }
                for item in items {
                    if let Value::Starred(inner) = item {
                        if let Value::Call(call) = self.resolve(inner)
                            && let Some(built) = self.helper_list(call)
                        {
                            m.operations.extend(built);
                            continue;
                        }
                        m.operations_dynamic.push(DynamicPart {
                            line,
                            what: "`operations` unpacks a value computed at run time".into(),
                        });
                    }
                    let op = self.operation(item, line, 0);
                    m.operations.push(op);
                }
            }
            _ => {}
        }
    }

    /// `make_ops(...)` returning a list of operations: each judged, at
    /// the line of the call. `None`: not a call of a local function.
    fn helper_list(&self, call: &Call) -> Option<Vec<Operation>> {
        let built = self.expand_helper(call, 0)?;
        let mut items = Vec::new();
        Some(match &built {
            Ok(list) if self.items(list, &mut items) => items
                .into_iter()
                .map(|item| {
                    let mut op = self.operation(item, call.line, 1);
                    op.line = call.line;
                    op
                })
                .collect(),
            Ok(_) => vec![self.unfollowed_helper(call, "it does not return a list")],
            Err(why) => vec![self.unfollowed_helper(call, why)],
        })
    }

    /// An operation built by a helper tagback cannot follow: unknown, and
    /// a dynamic part of the migration at the call's line.
    fn unfollowed_helper(&self, call: &Call, why: &str) -> Operation {
        let what = format!(
            "the operation built by {}() at line {} cannot be read: {why}",
            call.func, call.line
        );
        self.helper_dynamic.borrow_mut().push(DynamicPart {
            line: call.line,
            what: what.clone(),
        });
        Operation {
            kind: call.short_name().to_string(),
            line: call.line,
            reversibility: Reversibility::Unknown,
            reason: Some(what),
            data_loss: None,
            custom: None,
        }
    }

    /// What calling a function defined in the migration module returns,
    /// its parameters bound to the call's arguments (constants, names,
    /// calls — as written at the call). `None`: `call` is not a call of
    /// such a function; `Err(why)`: its result is not statically decidable.
    fn expand_helper(&self, call: &Call, depth: u32) -> Option<Result<Value, String>> {
        if call.func.contains('.') || self.local_classes.contains_key(call.func.as_str()) {
            return None;
        }
        let Stmt::Def {
            params,
            variadic,
            body,
            ..
        } = self.local_defs.get(call.func.as_str())?
        else {
            return None;
        };
        Some(self.run_helper(call, params, *variadic, body, depth))
    }

    fn run_helper(
        &self,
        call: &Call,
        params: &[python::Param],
        variadic: bool,
        body: &[Stmt],
        depth: u32,
    ) -> Result<Value, String> {
        if depth >= MAX_HELPER_DEPTH {
            return Err(format!(
                "helpers call helpers more than {MAX_HELPER_DEPTH} deep"
            ));
        }
        if variadic {
            return Err("the function takes *args, **kwargs or positional-only parameters".into());
        }
        if call.starred {
            return Err("arguments are passed with * or **".into());
        }
        let positional: Vec<&python::Param> = params.iter().filter(|p| !p.keyword_only).collect();
        if call.args.len() > positional.len() {
            return Err("more arguments than parameters".into());
        }
        let mut locals: BTreeMap<String, Value> = BTreeMap::new();
        for (p, a) in positional.iter().zip(&call.args) {
            locals.insert(p.name.clone(), a.clone());
        }
        for (k, v) in &call.kwargs {
            if !params.iter().any(|p| &p.name == k) || locals.contains_key(k) {
                return Err(format!("argument {k} does not match a parameter"));
            }
            locals.insert(k.clone(), v.clone());
        }
        for p in params {
            if !locals.contains_key(&p.name) {
                let Some(d) = &p.default else {
                    return Err(format!("parameter {} is not given", p.name));
                };
                locals.insert(p.name.clone(), d.clone());
            }
        }
        match self.run_body(body, &mut locals)? {
            Some(v) => Ok(v),
            None => Err("it returns nothing".into()),
        }
    }

    /// Run a helper's statements over `locals`; `Some(value)` at `return`.
    fn run_body(
        &self,
        body: &[Stmt],
        locals: &mut BTreeMap<String, Value>,
    ) -> Result<Option<Value>, String> {
        for s in body {
            match s {
                Stmt::Assign { targets, value, .. } => {
                    let v = substitute(value, locals);
                    for t in targets {
                        if t.contains('.') {
                            return Err(format!("it assigns {t}"));
                        }
                        locals.insert(t.clone(), v.clone());
                    }
                }
                Stmt::AugAdd { target, value, .. } if locals.contains_key(target) => {
                    let cur = locals.remove(target).unwrap_or(Value::None);
                    let add = substitute(value, locals);
                    locals.insert(target.clone(), Value::Add(Box::new(cur), Box::new(add)));
                }
                Stmt::Return { value, .. } => {
                    return Ok(Some(
                        value
                            .as_ref()
                            .map_or(Value::None, |v| substitute(v, locals)),
                    ));
                }
                Stmt::Block {
                    test: Some(test),
                    split,
                    body,
                    line,
                    ..
                } => {
                    let eval = |v: &Value| self.resolve(&substitute(v, locals)).clone();
                    let Some(taken) = python::decide(test, &eval) else {
                        return Err(format!(
                            "it depends on a condition tagback cannot decide (line {line})"
                        ));
                    };
                    let branch = if taken {
                        &body[..*split]
                    } else {
                        &body[*split..]
                    };
                    if let Some(v) = self.run_body(branch, locals)? {
                        return Ok(Some(v));
                    }
                }
                Stmt::Block { line, .. } => {
                    return Err(format!("it has a loop, try or with block (line {line})"));
                }
                Stmt::Def { name, line, .. } => {
                    // A nested function: a value known to exist, not its body.
                    locals.insert(name.clone(), Value::Dynamic { line: *line });
                }
                Stmt::AugAdd { line, .. } | Stmt::DynamicAssign { line, .. } => {
                    return Err(format!(
                        "it changes a value in a way tagback cannot follow (line {line})"
                    ));
                }
                Stmt::Call(c) => {
                    let head = c.func.split('.').next().unwrap_or_default();
                    if locals.contains_key(head) {
                        return Err(format!(
                            "it changes {head} with .{}() (line {})",
                            c.short_name(),
                            c.line
                        ));
                    }
                }
                _ => {}
            }
        }
        Ok(None)
    }

    fn key(&self, v: &Value) -> Option<(Name, Name)> {
        match self.resolve(v) {
            Value::List(pair) if pair.len() == 2 => {
                match (self.resolve(&pair[0]), self.resolve(&pair[1])) {
                    (Value::Str(a), Value::Str(b)) => Some((Name::from(a), Name::from(b))),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    fn operation(&self, v: &Value, list_line: u32, depth: u32) -> Operation {
        if let Value::Call(call) = self.resolve(v)
            && let Some(built) = self.expand_helper(call, depth)
        {
            // Judged like the operation the helper returns, at the line
            // of the call in the migration.
            let mut op = match built {
                Ok(value) => self.operation(&value, call.line, depth + 1),
                Err(why) => self.unfollowed_helper(call, &why),
            };
            op.line = call.line;
            return op;
        }
        let Value::Call(call) = self.resolve(v) else {
            let line = match v {
                Value::Dynamic { line } => *line,
                _ => list_line,
            };
            return Operation {
                kind: "dynamic".into(),
                line,
                reversibility: Reversibility::Unknown,
                reason: Some("the operation is not a call tagback can read".into()),
                data_loss: None,
                custom: None,
            };
        };
        self.call_operation(call)
    }

    fn call_operation(&self, call: &Call) -> Operation {
        let kind = call.short_name().to_string();
        let mut op = Operation {
            kind: kind.clone(),
            line: call.line,
            reversibility: Reversibility::Reversible,
            reason: None,
            data_loss: None,
            custom: None,
        };
        let given = |name: &str, pos: usize| {
            !matches!(
                call.arg(name, pos).map(|v| self.resolve(v)),
                None | Some(Value::None)
            )
        };
        let is_django = is_django_operation(&kind) && self.is_django_name(&call.func);
        if !is_django {
            let custom = self.custom_ref(&call.func);
            if custom.module.is_none()
                && let Some(class) = self.local_classes.get(custom.class.as_str())
            {
                let lookup = |n: &str| self.local_classes.get(n).map(|c| (*c).clone());
                let (r, why) = class_reversibility(class, &lookup, 0);
                op.reversibility = r;
                op.reason = (!why.is_empty()).then_some(why);
                return op;
            }
            op.reversibility = Reversibility::Unknown;
            op.reason = Some(format!("custom operation {kind} could not be followed"));
            op.custom = Some(custom);
            return op;
        }
        match kind.as_str() {
            "RunPython" if !given("reverse_code", 1) => {
                op.reversibility = Reversibility::Irreversible;
                op.reason = Some("RunPython without reverse_code".into());
            }
            "RunSQL" if !given("reverse_sql", 1) => {
                op.reversibility = Reversibility::Irreversible;
                op.reason = Some("RunSQL without reverse_sql".into());
            }
            "RunPython" | "RunSQL" if call.starred => {
                op.reversibility = Reversibility::Unknown;
                op.reason = Some(format!("{kind} arguments are passed with * or **"));
            }
            "SeparateDatabaseAndState" => {
                let mut inner = Vec::new();
                match call.arg("database_operations", 0) {
                    None => {}
                    Some(v) if self.items(v, &mut inner) => {
                        let nested: Vec<Operation> = inner
                            .into_iter()
                            .map(|v| self.operation(v, call.line, 0))
                            .collect();
                        if let Some(worst) = nested
                            .iter()
                            .find(|o| o.reversibility == Reversibility::Irreversible)
                            .or_else(|| {
                                nested
                                    .iter()
                                    .find(|o| o.reversibility == Reversibility::Unknown)
                            })
                        {
                            op.reversibility = worst.reversibility.clone();
                            op.reason = Some(format!(
                                "database operation {} at line {}: {}",
                                worst.kind,
                                worst.line,
                                worst.reason.clone().unwrap_or_default()
                            ));
                            op.custom = worst.custom.clone();
                            op.line = worst.line;
                        }
                        let losses: Vec<String> =
                            nested.iter().filter_map(|o| o.data_loss.clone()).collect();
                        if !losses.is_empty() {
                            op.data_loss = Some(losses.join("; "));
                        }
                    }
                    Some(_) => {
                        op.reversibility = Reversibility::Unknown;
                        op.reason = Some("database_operations are computed at run time".into());
                    }
                }
            }
            "CreateModel" => {
                if let Some(Value::Str(name)) = call.arg("name", 0).map(|v| self.resolve(v)) {
                    let table = self
                        .db_table(call)
                        .unwrap_or_else(|| format!("{}_{}", self.app_label, name.to_lowercase()));
                    op.data_loss = Some(format!("drops table {table}"));
                }
            }
            "AddField" => {
                let model = call.arg("model_name", 0).map(|v| self.resolve(v));
                let field_name = call.arg("name", 1).map(|v| self.resolve(v));
                if let (Some(Value::Str(model)), Some(Value::Str(name))) = (model, field_name) {
                    let table = format!("{}_{}", self.app_label, model.to_lowercase());
                    op.data_loss = Some(match call.arg("field", 2).map(|v| self.resolve(v)) {
                        Some(Value::Call(f)) if f.short_name() == "ManyToManyField" => {
                            format!("drops table {table}_{}", name.to_lowercase())
                        }
                        Some(Value::Call(f)) => {
                            let column = match f
                                .arg("db_column", usize::MAX)
                                .map(|v| self.resolve(v))
                            {
                                Some(Value::Str(c)) => c.clone(),
                                _ if matches!(f.short_name(), "ForeignKey" | "OneToOneField") => {
                                    format!("{name}_id")
                                }
                                _ => name.clone(),
                            };
                            format!("drops column {table}.{column}")
                        }
                        _ => format!("drops column {table}.{name}"),
                    });
                }
            }
            _ => {}
        }
        op
    }

    fn db_table(&self, call: &Call) -> Option<String> {
        let Value::Dict(items) = self.resolve(call.arg("options", usize::MAX)?) else {
            return None;
        };
        items.iter().find_map(|(k, v)| match (k, self.resolve(v)) {
            (Value::Str(k), Value::Str(t)) if k == "db_table" => Some(t.clone()),
            _ => None,
        })
    }

    /// Whether a callee like `migrations.AddField` or `AddField` refers to
    /// Django (not a local class or an import from elsewhere with that name).
    fn is_django_name(&self, func: &str) -> bool {
        let head = func.split('.').next().unwrap_or(func);
        if self.local_classes.contains_key(head) {
            return false;
        }
        match self.imports.get(head) {
            Some(target) => target.starts_with("django."),
            // Unimported bare name: not resolvable; dotted via unknown module: trust the name.
            None => func.contains('.'),
        }
    }

    fn custom_ref(&self, func: &str) -> CustomOp {
        let mut parts = func.split('.');
        let head = parts.next().unwrap_or_default();
        let rest: Vec<&str> = parts.collect();
        if self.local_classes.contains_key(head) && rest.is_empty() {
            return CustomOp {
                module: None,
                class: head.to_string(),
            };
        }
        let base = self
            .imports
            .get(head)
            .cloned()
            .unwrap_or_else(|| head.to_string());
        let full = if rest.is_empty() {
            base
        } else {
            format!("{base}.{}", rest.join("."))
        };
        match full.rsplit_once('.') {
            Some((module, class)) => CustomOp {
                module: Some(module.to_string()),
                class: class.to_string(),
            },
            None => CustomOp {
                module: None,
                class: full,
            },
        }
    }
}

/// `v` with the helper's local names (its parameters and assignments)
/// replaced by their values; an attribute of a local stays unknown.
fn substitute(v: &Value, locals: &BTreeMap<String, Value>) -> Value {
    let sub = |x: &Value| substitute(x, locals);
    match v {
        Value::Name(n) => match n.split_once('.') {
            None => locals.get(n).cloned().unwrap_or_else(|| v.clone()),
            Some((head, _)) if locals.contains_key(head) => Value::Dynamic { line: 0 },
            Some(_) => v.clone(),
        },
        Value::List(items) => Value::List(items.iter().map(sub).collect()),
        Value::Dict(items) => Value::Dict(items.iter().map(|(k, x)| (sub(k), sub(x))).collect()),
        Value::Call(c) => Value::Call(Box::new(Call {
            func: c.func.clone(),
            args: c.args.iter().map(sub).collect(),
            kwargs: c.kwargs.iter().map(|(k, x)| (k.clone(), sub(x))).collect(),
            starred: c.starred,
            line: c.line,
        })),
        Value::Add(a, b) => Value::Add(Box::new(sub(a)), Box::new(sub(b))),
        Value::Starred(x) => Value::Starred(Box::new(sub(x))),
        Value::Not(x) => Value::Not(Box::new(sub(x))),
        Value::BoolOp { and, values } => Value::BoolOp {
            and: *and,
            values: values.iter().map(sub).collect(),
        },
        Value::Compare(op, a, b) => Value::Compare(*op, Box::new(sub(a)), Box::new(sub(b))),
        _ => v.clone(),
    }
}

/// Decide a custom operation class's reversibility from its definition.
/// `lookup_base` follows a base class name (in the same module) one step.
pub fn class_reversibility(
    class: &python::Class,
    lookup_base: &dyn Fn(&str) -> Option<python::Class>,
    depth: u32,
) -> (Reversibility, String) {
    for s in &class.body {
        match s {
            Stmt::Assign { targets, value, .. } if targets.iter().any(|t| t == "reversible") => {
                return match value {
                    Value::Bool(false) => (
                        Reversibility::Irreversible,
                        format!("{} sets reversible = False", class.name),
                    ),
                    Value::Bool(true) => (Reversibility::Reversible, String::new()),
                    _ => (
                        Reversibility::Unknown,
                        format!("{}.reversible is computed", class.name),
                    ),
                };
            }
            Stmt::Def { name, raises, .. } if name == "database_backwards" => {
                return if *raises {
                    (
                        Reversibility::Irreversible,
                        format!("{}.database_backwards raises", class.name),
                    )
                } else {
                    (Reversibility::Reversible, String::new())
                };
            }
            _ => {}
        }
    }
    for base in &class.bases {
        let short = base.rsplit('.').next().unwrap_or(base);
        if short == "Operation" {
            return (
                Reversibility::Irreversible,
                format!(
                    "{} does not define database_backwards (Operation's raises NotImplementedError)",
                    class.name
                ),
            );
        }
        if is_django_operation(short) {
            return if matches!(short, "RunPython" | "RunSQL" | "SeparateDatabaseAndState") {
                (
                    Reversibility::Unknown,
                    format!("{} subclasses {short}; its arguments decide", class.name),
                )
            } else {
                (Reversibility::Reversible, String::new())
            };
        }
        if depth < 8
            && let Some(parent) = lookup_base(short)
        {
            return class_reversibility(&parent, lookup_base, depth + 1);
        }
    }
    (
        Reversibility::Unknown,
        format!("cannot tell whether {} can be unapplied", class.name),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(src: &str) -> Migration {
        parse(src, "shop").unwrap()
    }

    const HEAD: &str =
        "from django.conf import settings\nfrom django.db import migrations, models\n\n";

    #[test]
    fn dependencies_in_every_form() {
        let m = ok(&format!(
            "{HEAD}class Migration(migrations.Migration):\n    initial = True\n    dependencies = [\n        ('shop', '0001_initial'),\n        ('members', '__first__'),\n        ('other', '__latest__'),\n        migrations.swappable_dependency(settings.AUTH_USER_MODEL),\n    ]\n    run_before = [('late', '0001_initial')]\n    replaces = [('shop', '0002_a'), ('shop', '0003_b')]\n    operations = []\n"
        ));
        assert_eq!(
            m.dependencies,
            vec![
                Dependency::Key("shop".into(), "0001_initial".into()),
                Dependency::Key("members".into(), "__first__".into()),
                Dependency::Key("other".into(), "__latest__".into()),
                Dependency::Swappable("AUTH_USER_MODEL".into()),
            ]
        );
        assert_eq!(
            m.run_before,
            vec![MigrationKey::new("late", "0001_initial")]
        );
        assert_eq!(m.replaces.len(), 2);
        assert_eq!(m.initial, Some(true));
        assert!(m.dynamic.is_empty());
    }

    #[test]
    fn reversibility_of_run_python_and_run_sql() {
        let m = ok(&format!(
            "{HEAD}def f(a, s):\n    pass\n\nclass Migration(migrations.Migration):\n    operations = [\n        migrations.RunPython(f),\n        migrations.RunPython(f, migrations.RunPython.noop),\n        migrations.RunPython(code=f, reverse_code=f),\n        migrations.RunSQL('select 1'),\n        migrations.RunSQL('select 1', reverse_sql=None),\n        migrations.RunSQL('select 1', 'select 2'),\n        migrations.SeparateDatabaseAndState(database_operations=[migrations.RunSQL('x')]),\n        migrations.SeparateDatabaseAndState(state_operations=[migrations.RunSQL('x')]),\n    ]\n"
        ));
        let r: Vec<_> = m
            .operations
            .read()
            .unwrap()
            .iter()
            .map(|o| (o.line, o.reversibility.clone()))
            .collect();
        use Reversibility::{Irreversible as I, Reversible as R};
        assert_eq!(
            r,
            vec![
                (9, I),
                (10, R),
                (11, R),
                (12, I),
                (13, I),
                (14, R),
                (15, I),
                (16, R)
            ]
        );
    }

    #[test]
    fn data_loss() {
        let m = ok(&format!(
            "{HEAD}class Migration(migrations.Migration):\n    operations = [\n        migrations.CreateModel(name='Order', fields=[]),\n        migrations.CreateModel('Thing', [], options={{'db_table': 'things'}}),\n        migrations.AddField(model_name='order', name='badge', field=models.ForeignKey('x', on_delete=models.CASCADE)),\n        migrations.AddField('order', 'code', models.CharField(max_length=3)),\n        migrations.AddField('order', 'tags', models.ManyToManyField('x')),\n        migrations.AddField('order', 'c2', models.IntegerField(db_column='c_two')),\n    ]\n"
        ));
        let l: Vec<_> = m
            .operations
            .read()
            .unwrap()
            .iter()
            .map(|o| o.data_loss.clone().unwrap())
            .collect();
        assert_eq!(
            l,
            vec![
                "drops table shop_order",
                "drops table things",
                "drops column shop_order.badge_id",
                "drops column shop_order.code",
                "drops table shop_order_tags",
                "drops column shop_order.c_two"
            ]
        );
    }

    #[test]
    fn dynamic_parts_are_reported_with_lines() {
        let m = ok(&format!(
            "{HEAD}def deps():\n    return []\n\nclass Migration(migrations.Migration):\n    dependencies = deps()\n    operations = [migrations.RunSQL(s, s) for s in ['a']]\n\n    def __init__(self, *a):\n        super().__init__(*a)\n"
        ));
        let lines: Vec<u32> = m.all_dynamic().iter().map(|d| d.line).collect();
        assert_eq!(lines, vec![8, 9, 11]);
        // The class's parts and the operations' are told apart: reading for
        // the graph keeps only the class's.
        let class: Vec<u32> = m.dynamic.iter().map(|d| d.line).collect();
        assert_eq!(class, vec![8, 11]);
        let graph = parse_graph(
            &format!(
                "{HEAD}def deps():\n    return []\n\nclass Migration(migrations.Migration):\n    dependencies = deps()\n    operations = [migrations.RunSQL(s, s) for s in ['a']]\n\n    def __init__(self, *a):\n        super().__init__(*a)\n"
            ),
            "shop",
        )
        .unwrap();
        assert_eq!(graph.dynamic, m.dynamic);
        assert!(graph.operations_dynamic.is_empty());
        assert!(!graph.operations.is_read());
        assert_eq!(
            m.operations.read().unwrap()[0].reversibility,
            Reversibility::Unknown
        );
    }

    #[test]
    fn custom_operations_are_followed_later() {
        let m = ok(&format!(
            "{HEAD}from shop.ops import Backfill\nclass Local(migrations.RunSQL):\n    pass\n\nclass Frozen(migrations.operations.base.Operation):\n    reversible = False\n\nclass Child(Frozen):\n    pass\n\nclass Migration(migrations.Migration):\n    operations = [Backfill(), Local('x'), Child()]\n"
        ));
        assert_eq!(
            m.operations.read().unwrap()[0].custom,
            Some(CustomOp {
                module: Some("shop.ops".into()),
                class: "Backfill".into()
            })
        );
        assert_eq!(
            m.operations.read().unwrap()[1].reversibility,
            Reversibility::Unknown
        );
        assert_eq!(
            m.operations.read().unwrap()[2].reversibility,
            Reversibility::Irreversible
        );
    }

    #[test]
    fn operations_built_by_helpers_are_judged_like_literal_ones() {
        let m = ok(&format!(
            "{HEAD}def f(apps, se):\n    pass\n\n\ndef create_model(with_label, name='Tag'):\n    fields = [('id', models.AutoField(primary_key=True))]\n    if with_label:\n        fields = fields + [('label', models.CharField(max_length=3))]\n    return migrations.CreateModel(name=name, fields=fields)\n\n\ndef run(reverse=True):\n    if not reverse:\n        return migrations.RunPython(f)\n    return migrations.RunPython(f, migrations.RunPython.noop)\n\n\ndef both():\n    return [run(), add('order', 'code')]\n\n\ndef add(model, name):\n    return migrations.AddField(model_name=model, name=name, field=models.CharField(max_length=3))\n\n\nclass Migration(migrations.Migration):\n    operations = [\n        create_model(True),\n        create_model(False, name='Badge'),\n        run(),\n        run(reverse=False),\n        *both(),\n    ]\n"
        ));
        let got: Vec<_> = m
            .operations
            .read()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o.kind.as_str(),
                    o.line,
                    o.reversibility.clone(),
                    o.data_loss.as_deref(),
                )
            })
            .collect();
        use Reversibility::{Irreversible as I, Reversible as R};
        assert_eq!(
            got,
            vec![
                ("CreateModel", 31, R, Some("drops table shop_tag")),
                ("CreateModel", 32, R, Some("drops table shop_badge")),
                ("RunPython", 33, R, None),
                ("RunPython", 34, I, None),
                ("RunPython", 35, R, None),
                ("AddField", 35, R, Some("drops column shop_order.code")),
            ]
        );
        assert!(m.all_dynamic().is_empty(), "{:?}", m.all_dynamic());
    }

    #[test]
    fn helpers_that_cannot_be_decided_stay_dynamic_with_the_line() {
        let m = ok(&format!(
            "{HEAD}import os\n\n\ndef by_env():\n    if os.environ.get('X'):\n        return migrations.RunSQL('a')\n    return migrations.RunSQL('a', 'b')\n\n\ndef looped(names):\n    for n in names:\n        return migrations.RunSQL(n, n)\n\n\ndef nothing():\n    pass\n\n\ndef two(a, *rest):\n    return migrations.RunSQL(a, a)\n\n\nclass Migration(migrations.Migration):\n    operations = [\n        by_env(),\n        looped(['x']),\n        nothing(),\n        two('x'),\n        run_elsewhere(),\n    ]\n"
        ));
        let lines: Vec<u32> = m.operations_dynamic.iter().map(|d| d.line).collect();
        assert_eq!(lines, vec![28, 29, 30, 31], "{:?}", m.operations_dynamic);
        assert!(m.dynamic.is_empty(), "{:?}", m.dynamic);
        assert!(
            m.operations_dynamic[0].what.contains("line 8"),
            "{:?}",
            m.operations_dynamic[0]
        );
        assert!(
            m.operations.read().unwrap()[..4]
                .iter()
                .all(|o| o.reversibility == Reversibility::Unknown)
        );
        // A name that is not a function of the module: not a helper.
        assert_eq!(
            m.operations.read().unwrap()[4].reversibility,
            Reversibility::Unknown
        );
        assert_eq!(m.operations.read().unwrap()[4].line, 32);
    }

    #[test]
    fn errors() {
        assert_eq!(parse("x = (", "a").unwrap_err().line, 1);
        assert!(
            parse("X = 1\n", "a")
                .unwrap_err()
                .message
                .contains("no Migration class")
        );
    }
}
