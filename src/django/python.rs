//! The only module that touches the Python parser (`ruff_python_parser`, pinned
//! because its API is unstable). It lowers a module into a small model of
//! statements and literal values that the rest of `django` reasons about.

mod fast;

use ruff_python_ast::{self as ast, Expr, Operator};
use ruff_text_size::Ranged;

/// A Python value as far as it can be known without running code.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string literal (implicit concatenation joined).
    Str(String),
    /// An integer literal.
    Int(i64),
    /// `True` / `False`.
    Bool(bool),
    /// `None`.
    None,
    /// A list, tuple or set literal.
    List(Vec<Value>),
    /// A dict literal.
    Dict(Vec<(Value, Value)>),
    /// A (dotted) name: `settings.AUTH_USER_MODEL`, `migrations.RunPython.noop`.
    Name(String),
    /// A call.
    Call(Box<Call>),
    /// `a + b`.
    Add(Box<Value>, Box<Value>),
    /// `*value` inside a list, tuple or set literal.
    Starred(Box<Value>),
    /// `not value` (only in an `if` test).
    Not(Box<Value>),
    /// `a and b` / `a or b` (only in an `if` test).
    BoolOp {
        /// `and` (else `or`).
        and: bool,
        /// The operands.
        values: Vec<Value>,
    },
    /// `a == b`, `a != b`, `a is b`, `a is not b` (only in an `if` test).
    Compare(Cmp, Box<Value>, Box<Value>),
    /// Anything computed at run time (comprehension, f-string, subscript…).
    Dynamic {
        /// 1-based line.
        line: u32,
    },
}

/// A comparison operator tagback can decide on literals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `==`.
    Eq,
    /// `!=`.
    NotEq,
    /// `is`.
    Is,
    /// `is not`.
    IsNot,
}

/// A parameter of a function definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Its name.
    pub name: String,
    /// Its default value.
    pub default: Option<Value>,
    /// Whether it can only be passed by keyword (after `*` or `*args`).
    pub keyword_only: bool,
}

/// A call expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The dotted callee (`migrations.RunPython`), empty if not a name.
    pub func: String,
    /// Positional arguments.
    pub args: Vec<Value>,
    /// Keyword arguments.
    pub kwargs: Vec<(String, Value)>,
    /// Whether `*args` / `**kwargs` appear (arguments not fully known).
    pub starred: bool,
    /// 1-based line of the call.
    pub line: u32,
}

impl Call {
    /// The keyword argument `name`, or the positional argument at `pos`.
    pub fn arg(&self, name: &str, pos: usize) -> Option<&Value> {
        self.kwargs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .or_else(|| self.args.get(pos))
    }

    /// The last component of the callee: `RunPython` for `migrations.RunPython`.
    pub fn short_name(&self) -> &str {
        self.func.rsplit('.').next().unwrap_or("")
    }
}

/// A statement, reduced to what tagback needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    /// `a = b = value` (targets as dotted names; others are dropped).
    Assign {
        /// Assigned names.
        targets: Vec<String>,
        /// The value.
        value: Value,
        /// 1-based line.
        line: u32,
    },
    /// `name += value`.
    AugAdd {
        /// The target name.
        target: String,
        /// The added value.
        value: Value,
        /// 1-based line.
        line: u32,
    },
    /// An assignment or augmented assignment that is not understood
    /// (`x -= …`, `x[0] = …`): records that `target` changed dynamically.
    DynamicAssign {
        /// The dotted target when it has one.
        target: String,
        /// 1-based line.
        line: u32,
    },
    /// A call used as a statement (`INSTALLED_APPS.append("x")`).
    Call(Call),
    /// `from module import a as b` (`level` counts leading dots).
    ImportFrom {
        /// The module after the dots.
        module: String,
        /// Number of leading dots.
        level: u32,
        /// Imported names and their aliases (`*` for a star import).
        names: Vec<(String, Option<String>)>,
        /// 1-based line.
        line: u32,
    },
    /// `import a.b as c`.
    Import {
        /// Modules and aliases.
        names: Vec<(String, Option<String>)>,
    },
    /// A class definition.
    Class(Class),
    /// A function definition.
    Def {
        /// Its name.
        name: String,
        /// Its named parameters, in order.
        params: Vec<Param>,
        /// Whether it takes `*args`, `**kwargs` or positional-only parameters.
        variadic: bool,
        /// Whether its body (docstring aside) starts with `raise`.
        raises: bool,
        /// Its statements.
        body: Vec<Stmt>,
        /// 1-based line.
        line: u32,
    },
    /// `return value`.
    Return {
        /// The returned value (`None` for a bare `return`).
        value: Option<Value>,
        /// 1-based line.
        line: u32,
    },
    /// Statements that run only sometimes: `if`, `try`, `for`, `while`, `with`.
    Block {
        /// Whether the block is a loop or a conditional (not `with`).
        conditional: bool,
        /// For an `if`: its test. `body[..split]` runs when it is true,
        /// `body[split..]` otherwise (an `elif` is one nested block there).
        test: Option<Box<Value>>,
        /// Where the `else` part of `body` starts (`body.len()` when there is none).
        split: usize,
        /// Every statement of every branch.
        body: Vec<Stmt>,
        /// 1-based line.
        line: u32,
    },
    /// Anything else.
    Other,
}

impl Stmt {
    /// A block without a test (`try`, `for`, `while`, `with`).
    fn block(conditional: bool, body: Vec<Stmt>, line: u32) -> Stmt {
        Stmt::Block {
            conditional,
            test: None,
            split: body.len(),
            body,
            line,
        }
    }
}

/// Whether an `if` test is true, when the file alone decides it (a
/// literal, or a name `eval` resolves to one: `DEBUG = False` … `if not
/// DEBUG:`). `eval` gives a name's value (a [`Value::Name`] it cannot
/// resolve stays a name). `None`: it depends on something else
/// (an environment variable, a call, a name tagback does not know).
pub fn decide(test: &Value, eval: &dyn Fn(&Value) -> Value) -> Option<bool> {
    match test {
        Value::Not(v) => decide(v, eval).map(|b| !b),
        Value::BoolOp { and, values } => {
            // Without side effects, `and`/`or` are decided by any operand
            // that decides them, whatever the others are.
            let mut all_known = true;
            for v in values {
                match decide(v, eval) {
                    Some(b) if b != *and => return Some(b),
                    Some(_) => {}
                    None => all_known = false,
                }
            }
            all_known.then_some(*and)
        }
        Value::Compare(op, a, b) => {
            let (a, b) = (literal(&eval(a))?, literal(&eval(b))?);
            match op {
                Cmp::Eq => Some(a.equals(&b)),
                Cmp::NotEq => Some(!a.equals(&b)),
                // Identity is decidable for the singletons only.
                Cmp::Is | Cmp::IsNot => {
                    let singleton = |l: &Literal| matches!(l, Literal::None | Literal::Bool(_));
                    if !singleton(&a) && !singleton(&b) {
                        return None;
                    }
                    Some((a == b && same_kind(&a, &b)) == (*op == Cmp::Is))
                }
            }
        }
        v => truthy(&eval(v)),
    }
}

/// A literal scalar, for comparisons (`True == 1` as in Python).
#[derive(Debug, PartialEq)]
enum Literal {
    Str(String),
    Bool(bool),
    Int(i64),
    None,
}

impl Literal {
    fn number(&self) -> Option<i64> {
        match self {
            Literal::Int(i) => Some(*i),
            Literal::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    /// Python's `==` on two literals.
    fn equals(&self, other: &Literal) -> bool {
        match (self.number(), other.number()) {
            (Some(a), Some(b)) => a == b,
            _ => self == other,
        }
    }
}

fn same_kind(a: &Literal, b: &Literal) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

fn literal(v: &Value) -> Option<Literal> {
    Some(match v {
        Value::Str(s) => Literal::Str(s.clone()),
        Value::Int(i) => Literal::Int(*i),
        Value::Bool(b) => Literal::Bool(*b),
        Value::None => Literal::None,
        _ => return None,
    })
}

/// The truth value of an evaluated value, when it is a literal.
fn truthy(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Int(i) => Some(*i != 0),
        Value::Str(s) => Some(!s.is_empty()),
        Value::None => Some(false),
        // A list with one entry that is surely there is true; `[*x]` may be empty.
        Value::List(items) => {
            if items.iter().any(|i| !matches!(i, Value::Starred(_))) {
                Some(true)
            } else {
                items.is_empty().then_some(false)
            }
        }
        Value::Dict(items) => Some(!items.is_empty()),
        _ => None,
    }
}

/// A class definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Class {
    /// The class name.
    pub name: String,
    /// Base classes as dotted names.
    pub bases: Vec<String>,
    /// The class body.
    pub body: Vec<Stmt>,
    /// 1-based line.
    pub line: u32,
}

/// A syntax error with its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based line.
    pub line: u32,
    /// The parser's message.
    pub message: String,
}

/// Brackets nested deeper than this are refused: CPython's own tokenizer
/// refuses more ("too many nested parentheses"), so Django could not import
/// the file either, and the parser recurses once per level.
pub const MAX_BRACKET_DEPTH: usize = 200;

/// Indentation levels beyond this are refused (CPython's own limit).
pub const MAX_INDENT_DEPTH: usize = 100;

/// Operators, attribute accesses and calls chained in one expression
/// (`a + a + …`, `- - …`, `a.a.…`, `f()()…`) beyond this are refused: each
/// one is a level of the parser's recursion.
pub const MAX_CHAIN: usize = 1000;

/// Parse a module into statements: the common shape of a migration by the
/// fast reader (`fast.rs`), anything else by ruff's parser. Both give the
/// same statements wherever the fast reader answers.
pub fn parse_module(source: &str) -> Result<Vec<Stmt>, SyntaxError> {
    read_module(source, fast::parse(source))
}

/// What the fast reader `read` of `source`, else the parser's tree: the
/// nesting bounds are checked first unless the reader proved them.
fn read_module(
    source: &str,
    read: Option<(Vec<Stmt>, fast::Bounds)>,
) -> Result<Vec<Stmt>, SyntaxError> {
    match read {
        Some((stmts, fast::Bounds::Within)) => Ok(stmts),
        Some((stmts, fast::Bounds::Unproven)) => {
            nesting(source)?;
            Ok(stmts)
        }
        None => {
            nesting(source)?;
            parse_checked(source)
        }
    }
}

/// [`parse_module`] for a migration's graph: the fast reader leaves the
/// value of `operations` in a top-level `class Migration` unbuilt
/// ([`Value::Dynamic`]), which the graph does not read. The parser's tree
/// is the fallback, complete.
pub fn parse_module_without_operations(source: &str) -> Result<Vec<Stmt>, SyntaxError> {
    read_module(source, fast::parse_without_operations(source))
}

/// Parse a module with ruff's parser only (what [`parse_module`] falls
/// back to): the reference the fast reader is compared with.
pub fn parse_module_full(source: &str) -> Result<Vec<Stmt>, SyntaxError> {
    nesting(source)?;
    parse_checked(source)
}

/// The fast reader's answer on `source` checked against the full parser's:
/// `Ok(true)` when it read the file and both agree, `Ok(false)` when it
/// left the file to the parser, `Err(what differs)` when it read the file
/// differently (a bug: the differential tests and the `migration` fuzz
/// target fail on it).
pub fn check_fast_reader(source: &str) -> Result<bool, String> {
    let nested = nesting(source);
    let read = fast::parse(source);
    if let (Some((_, fast::Bounds::Within)), Err(e)) = (&read, &nested) {
        return Err(format!(
            "the fast reader proved the nesting bounds, which check_nesting refuses at line {}: {}",
            e.line, e.message
        ));
    }
    // Without building operations, the reader accepts nothing it refuses
    // when building them, with the same bounds (it may leave a file to the
    // parser that it reads otherwise: a chained `operations = x = …`).
    let unbuilt = fast::parse_without_operations(source);
    if let Some((_, bounds)) = &unbuilt
        && read.as_ref().map(|r| r.1) != Some(*bounds)
    {
        return Err(format!(
            "the fast reader reads differently without building operations: {:?} with them, {bounds:?} without",
            read.as_ref().map(|r| r.1),
        ));
    }
    if nested.is_err() {
        return Ok(false);
    }
    let Some((fast, _)) = read else {
        return Ok(false);
    };
    match parse_checked(source) {
        Ok(full) if full == fast => Ok(true),
        Ok(full) => Err(format!(
            "the fast reader and the parser differ:\n  fast: {fast:?}\n  full: {full:?}"
        )),
        Err(e) => Err(format!(
            "the fast reader accepts what the parser refuses at line {}: {}",
            e.line, e.message
        )),
    }
}

/// [`check_nesting`] with the line of the offending token.
fn nesting(source: &str) -> Result<(), SyntaxError> {
    check_nesting(source).map_err(|(offset, message)| SyntaxError {
        line: LineIndex::new(source).line(offset),
        message,
    })
}

/// Parse with ruff's parser and lower its tree (nesting already checked).
fn parse_checked(source: &str) -> Result<Vec<Stmt>, SyntaxError> {
    let lines = LineIndex::new(source);
    let parsed = ruff_python_parser::parse_module(source).map_err(|e| SyntaxError {
        line: lines.line(e.location.start().to_usize()),
        message: e.error.to_string(),
    })?;
    let lower = Lower { lines: &lines };
    Ok(parsed.suite().iter().map(|s| lower.stmt(s)).collect())
}

/// Byte classes for [`check_nesting`]: most bytes of a migration are
/// `OTHER` or `IDENT` and cost one table lookup.
const OTHER: u8 = 0;
const IDENT: u8 = 1;
const OPERATOR: u8 = 2;
const OPEN: u8 = 3;
const CLOSE: u8 = 4;
const COMMA: u8 = 5;
const QUOTE: u8 = 6;
const HASH: u8 = 7;
const NEWLINE: u8 = 8;
const BACKSLASH: u8 = 9;
const SEMICOLON: u8 = 10;

static CLASS: [u8; 256] = {
    let mut t = [OTHER; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = if b.is_ascii_alphanumeric() || b == b'_' {
            IDENT
        } else {
            match b {
                b'+' | b'-' | b'*' | b'/' | b'%' | b'@' | b'&' | b'|' | b'^' | b'~' | b'<'
                | b'>' | b'.' => OPERATOR,
                b'(' | b'[' | b'{' => OPEN,
                b')' | b']' | b'}' => CLOSE,
                b',' => COMMA,
                b'\'' | b'"' => QUOTE,
                b'#' => HASH,
                b'\n' => NEWLINE,
                b'\\' => BACKSLASH,
                b';' => SEMICOLON,
                _ => OTHER,
            }
        };
        c += 1;
    }
    t
};

/// A cheap scan of the tokens that make the parser recurse, before it runs
/// (a file nested 100,000 deep would overflow the stack): brackets,
/// indentation, and chains of operators within one expression (reset at a
/// comma or the end of a statement). Strings and comments are skipped.
/// `Err((byte offset, message))` at the first bound passed.
fn check_nesting(source: &str) -> Result<(), (usize, String)> {
    let b = source.as_bytes();
    let n = b.len();
    // Per open bracket (and the statement itself), the chained tokens since
    // the last comma at that level; `chained` is their sum.
    let mut chains: Vec<usize> = vec![0];
    let mut chained = 0usize;
    let mut indents: Vec<usize> = vec![0];
    let too_long = |at: usize| {
        Err((
            at,
            format!("more than {MAX_CHAIN} operators chained in one expression"),
        ))
    };
    let mut i = indentation(b, 0, &mut indents)?;
    while i < n {
        let c = b[i];
        match CLASS[c as usize] {
            OTHER => {
                while i + 1 < n && CLASS[b[i + 1] as usize] == OTHER {
                    i += 1;
                }
            }
            IDENT => {
                let start = i;
                while i + 1 < n && CLASS[b[i + 1] as usize] == IDENT {
                    i += 1;
                }
                let word = &b[start..=i];
                let keyword = match (word[0], word.len()) {
                    (b'n', 3) => word == b"not",
                    (b'l', 6) => word == b"lambda",
                    (b'i', 2) => word == b"if",
                    (b'e', 4) => word == b"else",
                    (b'a', 5) => word == b"await",
                    (b'y', 5) => word == b"yield",
                    _ => false,
                };
                if keyword {
                    *chains.last_mut().expect("never empty") += 1;
                    chained += 1;
                    if chained > MAX_CHAIN {
                        return too_long(start);
                    }
                }
            }
            OPERATOR => {
                *chains.last_mut().expect("never empty") += 1;
                chained += 1;
                if chained > MAX_CHAIN {
                    return too_long(i);
                }
            }
            OPEN => {
                *chains.last_mut().expect("never empty") += 1;
                chained += 1;
                chains.push(0);
                if chains.len() > MAX_BRACKET_DEPTH + 1 {
                    return Err((
                        i,
                        format!(
                            "brackets nested deeper than {MAX_BRACKET_DEPTH} (Python refuses more)"
                        ),
                    ));
                }
                if chained > MAX_CHAIN {
                    return too_long(i);
                }
            }
            CLOSE if chains.len() > 1 => chained -= chains.pop().expect("more than one"),
            COMMA => {
                let last = chains.last_mut().expect("never empty");
                chained -= *last;
                *last = 0;
            }
            QUOTE => {
                i = skip_string(b, i);
                continue;
            }
            HASH => {
                i = b[i..].iter().position(|&x| x == b'\n').map_or(n, |p| i + p);
                continue;
            }
            NEWLINE if chains.len() == 1 => {
                chained = 0;
                chains[0] = 0;
                i = indentation(b, i + 1, &mut indents)?;
                continue;
            }
            BACKSLASH => i += 1,
            SEMICOLON if chains.len() == 1 => {
                chained = 0;
                chains[0] = 0;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// At the start of a logical line at `i`: track its indentation level
/// (blank and comment lines do not count) and return where its text starts.
fn indentation(b: &[u8], i: usize, indents: &mut Vec<usize>) -> Result<usize, (usize, String)> {
    let mut width = 0;
    let mut j = i;
    while j < b.len() && matches!(b[j], b' ' | b'\t' | b'\x0c') {
        width = if b[j] == b'\t' {
            (width / 8 + 1) * 8
        } else {
            width + 1
        };
        j += 1;
    }
    if j < b.len() && !matches!(b[j], b'\n' | b'\r' | b'#') {
        while indents.last().is_some_and(|&w| w > width) {
            indents.pop();
        }
        if indents.last().is_some_and(|&w| w < width) {
            indents.push(width);
            if indents.len() > MAX_INDENT_DEPTH + 1 {
                return Err((
                    j,
                    format!("indented more than {MAX_INDENT_DEPTH} levels (Python refuses more)"),
                ));
            }
        }
    }
    Ok(j)
}

/// The index just past the string literal starting at `i` (a quote).
fn skip_string(b: &[u8], i: usize) -> usize {
    let q = b[i];
    let triple = b.len() >= i + 3 && b[i + 1] == q && b[i + 2] == q;
    let mut j = if triple { i + 3 } else { i + 1 };
    while j < b.len() {
        let Some(p) = b[j..]
            .iter()
            .position(|&c| c == q || c == b'\\' || c == b'\n')
        else {
            return b.len();
        };
        j += p;
        match b[j] {
            b'\\' => j += 2,
            b'\n' if !triple => return j,
            b'\n' => j += 1,
            _ => {
                if !triple {
                    return j + 1;
                }
                if b.len() >= j + 3 && b[j + 1] == q && b[j + 2] == q {
                    return j + 3;
                }
                j += 1;
            }
        }
    }
    b.len()
}

struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(source: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    fn line(&self, offset: usize) -> u32 {
        let idx = self.starts.partition_point(|&s| s <= offset);
        u32::try_from(idx.max(1)).unwrap_or(u32::MAX)
    }
}

struct Lower<'a> {
    lines: &'a LineIndex,
}

impl Lower<'_> {
    fn line_of(&self, node: &impl Ranged) -> u32 {
        self.lines.line(node.start().to_usize())
    }

    fn stmts(&self, body: &[ast::Stmt]) -> Vec<Stmt> {
        body.iter().map(|s| self.stmt(s)).collect()
    }

    fn stmt(&self, s: &ast::Stmt) -> Stmt {
        let line = self.line_of(s);
        match s {
            ast::Stmt::Assign(a) => {
                let targets: Vec<String> = a.targets.iter().filter_map(dotted).collect();
                if targets.len() != a.targets.len() {
                    let target = a.targets.iter().find_map(base_name).unwrap_or_default();
                    return Stmt::DynamicAssign { target, line };
                }
                Stmt::Assign {
                    targets,
                    value: self.value(&a.value),
                    line,
                }
            }
            ast::Stmt::AnnAssign(a) => match (dotted(&a.target), &a.value) {
                (Some(t), Some(v)) => Stmt::Assign {
                    targets: vec![t],
                    value: self.value(v),
                    line,
                },
                _ => Stmt::Other,
            },
            ast::Stmt::AugAssign(a) => match (dotted(&a.target), a.op) {
                (Some(target), Operator::Add) => Stmt::AugAdd {
                    target,
                    value: self.value(&a.value),
                    line,
                },
                _ => Stmt::DynamicAssign {
                    target: base_name(&a.target).unwrap_or_default(),
                    line,
                },
            },
            ast::Stmt::Expr(e) => match self.value(&e.value) {
                Value::Call(c) => Stmt::Call(*c),
                _ => Stmt::Other,
            },
            ast::Stmt::ImportFrom(i) => Stmt::ImportFrom {
                module: i
                    .module
                    .as_ref()
                    .map(|m| m.id.to_string())
                    .unwrap_or_default(),
                level: i.level,
                names: aliases(&i.names),
                line,
            },
            ast::Stmt::Import(i) => Stmt::Import {
                names: aliases(&i.names),
            },
            ast::Stmt::ClassDef(c) => Stmt::Class(Class {
                name: c.name.id.to_string(),
                bases: c
                    .arguments
                    .as_ref()
                    .map(|a| a.args.iter().filter_map(dotted).collect())
                    .unwrap_or_default(),
                body: self.stmts(&c.body),
                line,
            }),
            ast::Stmt::FunctionDef(f) => {
                let first = f.body.iter().find(|s| !is_docstring(s));
                let p = &f.parameters;
                let param = |a: &ast::ParameterWithDefault, keyword_only: bool| Param {
                    name: a.parameter.name.id.to_string(),
                    default: a.default.as_deref().map(|d| self.value(d)),
                    keyword_only,
                };
                let mut params: Vec<Param> = p.args.iter().map(|a| param(a, false)).collect();
                params.extend(p.kwonlyargs.iter().map(|a| param(a, true)));
                Stmt::Def {
                    name: f.name.id.to_string(),
                    params,
                    variadic: p.vararg.is_some() || p.kwarg.is_some() || !p.posonlyargs.is_empty(),
                    raises: matches!(first, Some(ast::Stmt::Raise(_))),
                    body: self.stmts(&f.body),
                    line,
                }
            }
            ast::Stmt::If(i) => {
                // `if A: X elif B: Y else: Z` is `if A: X else: (if B: Y else: Z)`.
                let mut tail: Vec<Stmt> = Vec::new();
                for clause in i.elif_else_clauses.iter().rev() {
                    let mut body = self.stmts(&clause.body);
                    match &clause.test {
                        None => tail = body,
                        Some(t) => {
                            let split = body.len();
                            body.append(&mut tail);
                            tail = vec![Stmt::Block {
                                conditional: true,
                                test: Some(Box::new(self.test(t))),
                                split,
                                body,
                                line: self.line_of(clause),
                            }];
                        }
                    }
                }
                let mut body = self.stmts(&i.body);
                let split = body.len();
                body.append(&mut tail);
                Stmt::Block {
                    conditional: true,
                    test: Some(Box::new(self.test(&i.test))),
                    split,
                    body,
                    line,
                }
            }
            ast::Stmt::Try(t) => {
                let mut body = self.stmts(&t.body);
                for ast::ExceptHandler::ExceptHandler(h) in &t.handlers {
                    body.extend(self.stmts(&h.body));
                }
                body.extend(self.stmts(&t.orelse));
                body.extend(self.stmts(&t.finalbody));
                Stmt::block(true, body, line)
            }
            ast::Stmt::For(f) => Stmt::block(true, self.stmts(&f.body), line),
            ast::Stmt::While(w) => Stmt::block(true, self.stmts(&w.body), line),
            // `with suppress(ImportError): from .local import *` is a
            // try/except: the body may stop at any statement.
            ast::Stmt::With(w) => {
                let suppress = w.items.iter().any(|i| {
                    matches!(&i.context_expr, Expr::Call(c)
                        if dotted(&c.func).is_some_and(|f| f == "suppress" || f == "contextlib.suppress"))
                });
                Stmt::block(suppress, self.stmts(&w.body), line)
            }
            ast::Stmt::Return(r) => Stmt::Return {
                value: r.value.as_deref().map(|v| self.value(v)),
                line,
            },
            _ => Stmt::Other,
        }
    }

    fn value(&self, e: &Expr) -> Value {
        match e {
            Expr::StringLiteral(s) => Value::Str(s.value.to_str().to_string()),
            Expr::NumberLiteral(n) => match &n.value {
                ast::Number::Int(i) => i.as_i64().map_or(
                    Value::Dynamic {
                        line: self.line_of(e),
                    },
                    Value::Int,
                ),
                _ => Value::Dynamic {
                    line: self.line_of(e),
                },
            },
            Expr::BooleanLiteral(b) => Value::Bool(b.value),
            Expr::NoneLiteral(_) => Value::None,
            Expr::List(l) => self.seq(&l.elts, e),
            Expr::Tuple(t) => self.seq(&t.elts, e),
            Expr::Set(s) => self.seq(&s.elts, e),
            Expr::Dict(d) => {
                let mut items = Vec::with_capacity(d.items.len());
                for item in &d.items {
                    let Some(k) = &item.key else {
                        return Value::Dynamic {
                            line: self.line_of(e),
                        };
                    };
                    items.push((self.value(k), self.value(&item.value)));
                }
                Value::Dict(items)
            }
            Expr::Name(_) | Expr::Attribute(_) => match dotted(e) {
                Some(d) => Value::Name(d),
                None => Value::Dynamic {
                    line: self.line_of(e),
                },
            },
            Expr::Call(c) => {
                let mut starred = false;
                let args = c
                    .arguments
                    .args
                    .iter()
                    .filter_map(|a| {
                        if matches!(a, Expr::Starred(_)) {
                            starred = true;
                            None
                        } else {
                            Some(self.value(a))
                        }
                    })
                    .collect();
                let kwargs = c
                    .arguments
                    .keywords
                    .iter()
                    .filter_map(|k| match &k.arg {
                        Some(name) => Some((name.id.to_string(), self.value(&k.value))),
                        None => {
                            starred = true;
                            None
                        }
                    })
                    .collect();
                Value::Call(Box::new(Call {
                    func: dotted(&c.func).unwrap_or_default(),
                    args,
                    kwargs,
                    starred,
                    line: self.line_of(e),
                }))
            }
            Expr::BinOp(b) if b.op == Operator::Add => Value::Add(
                Box::new(self.value(&b.left)),
                Box::new(self.value(&b.right)),
            ),
            _ => Value::Dynamic {
                line: self.line_of(e),
            },
        }
    }

    /// An `if` test: `not`, `and`/`or` and one `==`/`!=`/`is`/`is not`
    /// comparison on top of [`Lower::value`].
    fn test(&self, e: &Expr) -> Value {
        match e {
            Expr::UnaryOp(u) if u.op == ast::UnaryOp::Not => {
                Value::Not(Box::new(self.test(&u.operand)))
            }
            Expr::BoolOp(b) => Value::BoolOp {
                and: b.op == ast::BoolOp::And,
                values: b.values.iter().map(|v| self.test(v)).collect(),
            },
            Expr::Compare(c) if c.ops.len() == 1 => {
                let op = match c.ops[0] {
                    ast::CmpOp::Eq => Cmp::Eq,
                    ast::CmpOp::NotEq => Cmp::NotEq,
                    ast::CmpOp::Is => Cmp::Is,
                    ast::CmpOp::IsNot => Cmp::IsNot,
                    _ => {
                        return Value::Dynamic {
                            line: self.line_of(e),
                        };
                    }
                };
                Value::Compare(
                    op,
                    Box::new(self.value(&c.left)),
                    Box::new(self.value(&c.comparators[0])),
                )
            }
            _ => self.value(e),
        }
    }

    fn seq(&self, elts: &[Expr], _whole: &Expr) -> Value {
        Value::List(
            elts.iter()
                .map(|x| match x {
                    Expr::Starred(s) => Value::Starred(Box::new(self.value(&s.value))),
                    _ => self.value(x),
                })
                .collect(),
        )
    }
}

fn is_docstring(s: &ast::Stmt) -> bool {
    matches!(s, ast::Stmt::Expr(e) if matches!(*e.value, Expr::StringLiteral(_)))
}

fn aliases(names: &[ast::Alias]) -> Vec<(String, Option<String>)> {
    names
        .iter()
        .map(|a| {
            (
                a.name.id.to_string(),
                a.asname.as_ref().map(|n| n.id.to_string()),
            )
        })
        .collect()
}

/// `a.b.c` for names and attribute chains.
fn dotted(e: &Expr) -> Option<String> {
    match e {
        Expr::Name(n) => Some(n.id.to_string()),
        Expr::Attribute(a) => Some(format!("{}.{}", dotted(&a.value)?, a.attr.id)),
        _ => None,
    }
}

/// The root name of a subscript/attribute target (`x` in `x[0]`).
fn base_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Name(n) => Some(n.id.to_string()),
        Expr::Attribute(a) => base_name(&a.value),
        Expr::Subscript(s) => base_name(&s.value),
        _ => None,
    }
}

/// The first line of every call anywhere in `stmts` whose callee ends with `suffix`.
pub fn find_calls<'a>(stmts: &'a [Stmt], suffix: &str, out: &mut Vec<&'a Call>) {
    for s in stmts {
        match s {
            Stmt::Call(c) if c.func.ends_with(suffix) => out.push(c),
            Stmt::Def { body, .. } | Stmt::Block { body, .. } | Stmt::Class(Class { body, .. }) => {
                find_calls(body, suffix, out);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_differential_check_allows_the_unbuilt_reading_to_defer_to_the_parser() {
        // Read when operations are built, left to the parser when not: both
        // readings agree with ruff's, so the check passes.
        let chained = "class Migration:\n    operations = x = [1]\n";
        assert_eq!(check_fast_reader(chained), Ok(true));
        assert_eq!(
            parse_module_without_operations(chained),
            parse_module(chained)
        );
    }

    #[test]
    fn lowers_assignments_calls_and_classes() {
        let src = "from django.db import migrations\n\nX = ['a', \"b\" 'c'] + ('d',)\nX += ['e']\n\nclass Migration(migrations.Migration):\n    dependencies = [('shop', '0001_initial')]\n    operations = [\n        migrations.RunPython(f, reverse_code=migrations.RunPython.noop),\n    ]\n";
        let m = parse_module(src).unwrap();
        assert!(
            matches!(&m[0], Stmt::ImportFrom { module, level: 0, .. } if module == "django.db")
        );
        let Stmt::Assign {
            value: Value::Add(a, _),
            ..
        } = &m[1]
        else {
            panic!("{:?}", m[1])
        };
        assert_eq!(
            **a,
            Value::List(vec![Value::Str("a".into()), Value::Str("bc".into())])
        );
        assert!(matches!(&m[2], Stmt::AugAdd { target, .. } if target == "X"));
        let Stmt::Class(c) = &m[3] else { panic!() };
        assert_eq!(c.bases, vec!["migrations.Migration"]);
        let Stmt::Assign {
            value: Value::List(ops),
            line,
            ..
        } = &c.body[1]
        else {
            panic!()
        };
        assert_eq!(*line, 8);
        let Value::Call(call) = &ops[0] else { panic!() };
        assert_eq!(call.short_name(), "RunPython");
        assert_eq!(call.line, 9);
        assert_eq!(
            call.arg("reverse_code", 1),
            Some(&Value::Name("migrations.RunPython.noop".into()))
        );
    }

    #[test]
    fn constant_if_tests_are_decided() {
        let env = |src: &str| parse_module(src).unwrap();
        let decide_in = |src: &str| {
            let m = env(src);
            let vars: Vec<(String, Value)> = m
                .iter()
                .filter_map(|s| match s {
                    Stmt::Assign { targets, value, .. } => {
                        Some((targets[0].clone(), value.clone()))
                    }
                    _ => None,
                })
                .collect();
            let Some(Stmt::Block { test: Some(t), .. }) = m.last() else {
                panic!("{m:?}")
            };
            let eval = |v: &Value| match v {
                Value::Name(n) => vars
                    .iter()
                    .find(|(k, _)| k == n)
                    .map_or(v.clone(), |(_, x)| x.clone()),
                _ => v.clone(),
            };
            decide(t, &eval)
        };
        for (src, want) in [
            ("D = False\nif D:\n    pass\n", Some(false)),
            ("D = False\nif not D:\n    pass\n", Some(true)),
            (
                "D = 1\nif D == True and 'a' != 'b':\n    pass\n",
                Some(true),
            ),
            ("D = None\nif D is None or X:\n    pass\n", Some(true)),
            ("D = None\nif D is not None and X:\n    pass\n", Some(false)),
            ("if X:\n    pass\n", None),
            ("if os.environ.get('A'):\n    pass\n", None),
            ("D = 'x'\nif D in ['x']:\n    pass\n", None),
            ("D = 1\nif D is 1:\n    pass\n", None),
            ("D = []\nif D or [*E]:\n    pass\n", None),
        ] {
            assert_eq!(decide_in(src), want, "{src}");
        }
        // `elif` is a nested block in the `else` part.
        let m = env("if A:\n    x = 1\nelif B:\n    x = 2\nelse:\n    x = 3\n");
        let Stmt::Block { split, body, .. } = &m[0] else {
            panic!()
        };
        assert_eq!(*split, 1);
        assert!(matches!(&body[1], Stmt::Block { split: 1, body, .. } if body.len() == 2));
    }

    #[test]
    fn syntax_error_has_line() {
        let e = parse_module("x = 1\ny = (\n\nclass\n").unwrap_err();
        assert!(e.line >= 2, "{e:?}");
    }

    #[test]
    fn raising_functions() {
        let m = parse_module("def f():\n    \"doc\"\n    raise NotImplementedError\n").unwrap();
        assert!(matches!(&m[0], Stmt::Def { raises: true, .. }));
    }

    /// Parse on a 2 MiB stack, as the parsing workers have.
    fn parse_small_stack(src: String) -> Result<Vec<Stmt>, SyntaxError> {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || parse_module(&src))
            .unwrap()
            .join()
            .expect("no stack overflow")
    }

    #[test]
    fn r15_deep_nesting_is_refused_with_the_line_never_a_stack_overflow() {
        let n = 100_000;
        let cases = [
            format!("x = 1\ny = {}{}\n", "[".repeat(n), "]".repeat(n)),
            format!("x = 1\ny = {}{}\n", "{".repeat(n), "}".repeat(n)),
            format!("x = 1\ny = 1{}\n", "+1".repeat(n)),
            format!("x = 1\ny = {}1\n", "-".repeat(n)),
            format!("x = 1\ny = {}1\n", "not ".repeat(n)),
            format!("x = 1\ny = a{}\n", ".a".repeat(n)),
            format!("x = 1\ny = a{}\n", "()".repeat(n)),
            format!("x = 1\ny = {}1\n", "lambda: ".repeat(n)),
            format!("x = 1\ny = 1{}\n", " if 1 else 1".repeat(n)),
        ];
        for src in cases {
            let e = parse_small_stack(src).unwrap_err();
            assert_eq!(e.line, 2, "{e:?}");
            assert!(
                e.message.contains("nested deeper than 200")
                    || e.message.contains("more than 1000 operators"),
                "{e:?}"
            );
        }
        let mut deep = String::new();
        for level in 0..150 {
            deep.push_str(&" ".repeat(level));
            deep.push_str("if x:\n");
        }
        let e = parse_small_stack(deep).unwrap_err();
        assert_eq!(e.line, 102, "{e:?}");
        assert!(e.message.contains("more than 100 levels"), "{e:?}");
    }

    #[test]
    fn nesting_up_to_the_bounds_parses_on_a_small_stack() {
        let mut src = String::new();
        for level in 0..MAX_INDENT_DEPTH {
            src.push_str(&" ".repeat(level));
            src.push_str("if x:\n");
        }
        src.push_str(&" ".repeat(MAX_INDENT_DEPTH));
        let inner = MAX_CHAIN - MAX_BRACKET_DEPTH;
        src.push_str(&format!(
            "x = {}1{}{}\n",
            "[".repeat(MAX_BRACKET_DEPTH),
            "+1".repeat(inner),
            "]".repeat(MAX_BRACKET_DEPTH)
        ));
        assert!(parse_small_stack(src).is_ok());
    }

    #[test]
    fn strings_comments_and_commas_do_not_count_as_nesting() {
        let brackets = "(".repeat(500);
        let src = format!(
            "a = '{brackets}'\nb = \"\"\"\n{brackets}\n\"\"\"\n# {brackets}\nc = r'\\'{brackets}'\nd = [{}]\n",
            "x.y + 1, ".repeat(2000)
        );
        parse_module(&src).unwrap();
    }
}
