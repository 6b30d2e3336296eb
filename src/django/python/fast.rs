//! A fast reader for the shape nearly every migration file has (what
//! `makemigrations` writes): imports, assignments, calls and classes whose
//! values are literals, names, calls, lists, tuples, sets and dicts. It
//! lowers the module to exactly the statements [`super::Lower`] makes of
//! ruff's tree, without building that tree (parsing was most of a first
//! run).
//!
//! It never decides anything about Python it is not sure of: at the first
//! token outside its subset (an operator, a `def`, an f-string, a tab, a
//! backslash continuation, a keyword it does not know…) it answers `None`,
//! whether or not the file is valid Python, and the full parser reads the
//! file. Whatever it accepts is valid Python with one reading, and gives the
//! same statements as the full parser: `tests/fast_reader.rs` and the
//! `migration` fuzz target compare both on every input.

use super::{Call, Class, MAX_BRACKET_DEPTH, MAX_CHAIN, MAX_INDENT_DEPTH, Stmt, Value};

/// The source is outside the subset (says nothing about its validity).
struct Outside;

type R<T> = Result<T, Outside>;

/// The statements of `source`, or `None` when it is outside the subset,
/// with whether the file is within the nesting bounds (see [`Bounds`]).
/// Brackets nested deeper than [`MAX_BRACKET_DEPTH`] and classes deeper
/// than [`MAX_INDENT_DEPTH`] are outside (they bound this reader's
/// recursion).
///
/// Control characters other than newline and tab (a carriage return, a
/// form feed, NUL…) anywhere, and tabs outside strings and comments, are
/// left to the parser.
pub(super) fn parse(source: &str) -> Option<(Vec<Stmt>, Bounds)> {
    read(source, false)
}

/// What the reader proved of the bounds `check_nesting` enforces, on a
/// file it read: brackets, indentation and chained operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bounds {
    /// Within all of them: no statement has more than [`MAX_CHAIN`]
    /// operators and brackets in all (a bound on the chains
    /// `check_nesting` counts, which restart at each comma), brackets and
    /// classes are nested within their limits. `check_nesting` would pass.
    Within,
    /// A statement has more operators and brackets than [`MAX_CHAIN`]:
    /// `check_nesting` decides.
    Unproven,
}

/// [`parse`], but the value of `operations = …` in the body of a top-level
/// `class Migration` is checked without being built: it is the statement
/// `operations = <Dynamic>` (at the line of the value). It accepts no file
/// [`parse`] refuses: the grammar is the same code, only the values are not
/// made (a chained `operations = x = …` is left to the parser). What reading a migration for its graph needs (most of a
/// file is its operations, and most migrations are never unapplied).
pub(super) fn parse_without_operations(source: &str) -> Option<(Vec<Stmt>, Bounds)> {
    read(source, true)
}

fn read(source: &str, elide_operations: bool) -> Option<(Vec<Stmt>, Bounds)> {
    let mut p = Reader {
        chain: 0,
        longest_chain: 0,
        classes: 0,
        build: true,
        elide_operations,
        migration_body: None,
        name_span: (0, 0, false),
        keywords: Vec::new(),
        src: source,
        b: source.as_bytes(),
        pos: 0,
        line: 1,
        depth: 0,
        bol: true,
        indent: 0,
        tok: Tok::Eof,
        tok_line: 1,
        start: 0,
        end: 0,
        text: String::new(),
    };
    let stmts = p.module().ok()?;
    let bounds = if p.longest_chain.max(p.chain) <= MAX_CHAIN {
        Bounds::Within
    } else {
        Bounds::Unproven
    };
    Some((stmts, bounds))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kw {
    True,
    False,
    None,
    Class,
    From,
    Import,
    As,
    Pass,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    /// An identifier that is no keyword (`src[start..end]`).
    Name,
    Kw(Kw),
    /// A string literal, its value in `text`.
    Str,
    Int(i64),
    Float,
    /// One of `( ) [ ] { } , : . = - *`.
    Op(u8),
    /// The end of a logical line.
    Newline,
    Eof,
}

/// A control character the reader leaves to the parser (not a tab or newline).
fn is_control(c: u8) -> bool {
    (c < 0x20 && c != b'\n' && c != b'\t') || c == 0x7f
}

/// The token of a word: a name, a keyword the reader knows, or `Outside`
/// for the other keywords (and `__debug__`, which cannot be assigned).
fn keyword(w: &[u8]) -> R<Tok> {
    // Keywords are 2 to 9 bytes long: most names are decided by one test.
    if w.len() < 2 || w.len() > 9 {
        return Ok(Tok::Name);
    }
    let kw = match w[0] {
        b'T' if w == b"True" => Kw::True,
        b'F' if w == b"False" => Kw::False,
        b'N' if w == b"None" => Kw::None,
        b'c' if w == b"class" => Kw::Class,
        b'f' if w == b"from" => Kw::From,
        b'i' if w == b"import" => Kw::Import,
        b'a' if w == b"as" => Kw::As,
        b'p' if w == b"pass" => Kw::Pass,
        b'a' | b'b' | b'c' | b'd' | b'e' | b'f' | b'g' | b'i' | b'l' | b'n' | b'o' | b'r'
        | b't' | b'w' | b'y' | b'_' => {
            return match w {
                b"and" | b"assert" | b"async" | b"await" | b"break" | b"continue" | b"def"
                | b"del" | b"elif" | b"else" | b"except" | b"finally" | b"for" | b"global"
                | b"if" | b"in" | b"is" | b"lambda" | b"nonlocal" | b"not" | b"or" | b"raise"
                | b"return" | b"try" | b"while" | b"with" | b"yield" | b"__debug__" => Err(Outside),
                _ => Ok(Tok::Name),
            };
        }
        _ => return Ok(Tok::Name),
    };
    Ok(Tok::Kw(kw))
}

/// Byte classes of the reader's lexer.
const NAME_START: u8 = 1;
const NAME_CONT: u8 = 2;

static BYTE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = if b.is_ascii_alphabetic() || b == b'_' {
            NAME_START | NAME_CONT
        } else if b.is_ascii_digit() {
            NAME_CONT
        } else {
            0
        };
        c += 1;
    }
    t
};

struct Reader<'s> {
    /// Operators (`.`, `-`, `*`, the dot of a float) and opening brackets
    /// in the current statement: what `check_nesting` counts in chains.
    chain: usize,
    /// The most in one statement before the current one.
    longest_chain: usize,
    /// Classes open around the statement being read.
    classes: usize,
    /// Whether values are built (else only checked: [`Value::Dynamic`]
    /// stands for each, and no string is copied).
    build: bool,
    /// Whether `operations` in a top-level `class Migration` is only checked.
    elide_operations: bool,
    /// The indentation of the body of the top-level `class Migration` being
    /// read, when `elide_operations`.
    migration_body: Option<usize>,
    /// The span of the last dotted name read, and whether it has a dot.
    name_span: (usize, usize, bool),
    /// The keyword names of the calls being read (spans into `src`), to
    /// refuse a repeated one.
    keywords: Vec<(usize, usize)>,
    src: &'s str,
    b: &'s [u8],
    pos: usize,
    /// 1-based line at `pos`.
    line: u32,
    /// Open brackets (newlines inside them join lines).
    depth: u32,
    /// At the beginning of a logical line.
    bol: bool,
    /// Indentation width of the current logical line.
    indent: usize,
    tok: Tok,
    /// Line where `tok` starts.
    tok_line: u32,
    start: usize,
    end: usize,
    /// The value of a [`Tok::Str`].
    text: String,
}

impl Reader<'_> {
    // ---- lexer -------------------------------------------------------

    fn name(&self) -> &str {
        &self.src[self.start..self.end]
    }

    /// Skip blank and comment-only lines and measure the indentation of
    /// the next logical line. `false` at the end of the file.
    fn begin_line(&mut self) -> R<bool> {
        let b = self.b;
        loop {
            let start = self.pos;
            while self.pos < b.len() && b[self.pos] == b' ' {
                self.pos += 1;
            }
            if self.pos >= b.len() {
                return Ok(false);
            }
            match b[self.pos] {
                b'\n' => {
                    self.pos += 1;
                    self.line += 1;
                }
                b'#' => self.skip_comment()?,
                b'\t' => return Err(Outside),
                _ => {
                    self.indent = self.pos - start;
                    self.bol = false;
                    return Ok(true);
                }
            }
        }
    }

    /// Up to the end of the line (control characters: the parser's).
    fn skip_comment(&mut self) -> R<()> {
        let b = self.b;
        let mut i = self.pos;
        while i < b.len() && b[i] != b'\n' {
            if is_control(b[i]) {
                return Err(Outside);
            }
            i += 1;
        }
        self.pos = i;
        Ok(())
    }

    fn next(&mut self) -> R<()> {
        let b = self.b;
        if self.bol && !self.begin_line()? {
            self.tok = Tok::Eof;
            self.tok_line = self.line;
            return Ok(());
        }
        loop {
            while self.pos < b.len() && b[self.pos] == b' ' {
                self.pos += 1;
            }
            self.tok_line = self.line;
            let Some(&c) = b.get(self.pos) else {
                if self.depth > 0 {
                    return Err(Outside);
                }
                self.tok = Tok::Eof;
                return Ok(());
            };
            match c {
                b'#' => {
                    self.skip_comment()?;
                    continue;
                }
                b'\n' => {
                    self.pos += 1;
                    self.line += 1;
                    if self.depth > 0 {
                        continue;
                    }
                    self.longest_chain = self.longest_chain.max(self.chain);
                    self.chain = 0;
                    self.tok = Tok::Newline;
                    self.bol = true;
                    return Ok(());
                }
                b'\'' | b'"' => {
                    self.string(false)?;
                    return Ok(());
                }
                b'0'..=b'9' => {
                    self.number()?;
                    return Ok(());
                }
                b'(' | b'[' | b'{' => {
                    self.depth += 1;
                    if self.depth as usize > MAX_BRACKET_DEPTH {
                        return Err(Outside);
                    }
                    self.chain += 1;
                    self.op(c);
                    return Ok(());
                }
                b')' | b']' | b'}' => {
                    if self.depth == 0 {
                        return Err(Outside);
                    }
                    self.depth -= 1;
                    self.op(c);
                    return Ok(());
                }
                b',' => {
                    self.op(c);
                    return Ok(());
                }
                b'.' | b'-' | b'*' => {
                    self.chain += 1;
                    self.op(c);
                    return Ok(());
                }
                // `=` and `:` but not `==`, `:=`.
                b'=' | b':' => {
                    if b.get(self.pos + 1) == Some(&b'=') {
                        return Err(Outside);
                    }
                    self.op(c);
                    return Ok(());
                }
                _ if BYTE[c as usize] & NAME_START != 0 => {
                    self.word()?;
                    return Ok(());
                }
                _ => return Err(Outside),
            }
        }
    }

    fn op(&mut self, c: u8) {
        self.tok = Tok::Op(c);
        self.pos += 1;
    }

    fn word(&mut self) -> R<()> {
        let b = self.b;
        let start = self.pos;
        let mut i = start + 1;
        while i < b.len() && BYTE[b[i] as usize] & NAME_CONT != 0 {
            i += 1;
        }
        match b.get(i) {
            // A string prefix: `u` and `r` only (bytes, f-strings and
            // t-strings are left to the parser).
            Some(b'\'' | b'"') => {
                return match &b[start..i] {
                    b"u" | b"U" => {
                        self.pos = i;
                        self.string(false)
                    }
                    b"r" | b"R" => {
                        self.pos = i;
                        self.string(true)
                    }
                    _ => Err(Outside),
                };
            }
            // A non-ASCII identifier.
            Some(&c) if c >= 0x80 => return Err(Outside),
            _ => {}
        }
        self.pos = i;
        self.start = start;
        self.end = i;
        self.tok = keyword(&b[start..i])?;
        Ok(())
    }

    /// `0`, `[1-9][0-9]*` (up to 18 digits), optionally with a fraction.
    fn number(&mut self) -> R<()> {
        let b = self.b;
        let start = self.pos;
        let mut i = start;
        if b[i] == b'0' {
            i += 1;
        } else {
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
        let int_end = i;
        let mut float = false;
        if b.get(i) == Some(&b'.') {
            if !b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                return Err(Outside);
            }
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            float = true;
            self.chain += 1;
        }
        // `1_000`, `0x1`, `1e3`, `1j`, `00`, `1.5.x`…
        if b.get(i)
            .is_some_and(|&c| BYTE[c as usize] & NAME_CONT != 0 || c == b'.' || c >= 0x80)
        {
            return Err(Outside);
        }
        self.pos = i;
        self.tok = if float {
            Tok::Float
        } else {
            if int_end - start > 18 {
                return Err(Outside);
            }
            let mut v: i64 = 0;
            for &d in &b[start..int_end] {
                v = v * 10 + i64::from(d - b'0');
            }
            Tok::Int(v)
        };
        Ok(())
    }

    /// A string literal at `pos` (a quote), decoded into `text`. Escapes
    /// other than the one-character ones (`\x`, `\u`, `\N{…}`, octal, a
    /// backslash-newline) are left to the parser.
    fn string(&mut self, raw: bool) -> R<()> {
        let b = self.b;
        let q = b[self.pos];
        let triple = b.get(self.pos + 1) == Some(&q) && b.get(self.pos + 2) == Some(&q);
        let mut i = self.pos + if triple { 3 } else { 1 };
        let mut seg = i;
        self.text.clear();
        loop {
            let Some(p) = b[i..]
                .iter()
                .position(|&c| c == q || c == b'\\' || c < 0x20 || c == 0x7f)
            else {
                return Err(Outside);
            };
            i += p;
            match b[i] {
                b'\t' => i += 1,
                b'\n' => {
                    if !triple {
                        return Err(Outside);
                    }
                    self.line += 1;
                    i += 1;
                }
                b'\\' => {
                    let Some(&c) = b.get(i + 1) else {
                        return Err(Outside);
                    };
                    if raw {
                        // Kept as written; the backslash only stops the
                        // next character from closing the string.
                        if c == b'\n' || is_control(c) {
                            return Err(Outside);
                        }
                        i += 2;
                        continue;
                    }
                    self.text.push_str(&self.src[seg..i]);
                    let decoded = match c {
                        b'\\' => '\\',
                        b'\'' => '\'',
                        b'"' => '"',
                        b'a' => '\x07',
                        b'b' => '\x08',
                        b'f' => '\x0c',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'v' => '\x0b',
                        b'0'..=b'7' | b'x' | b'u' | b'U' | b'N' | b'\n' => return Err(Outside),
                        _ if is_control(c) => return Err(Outside),
                        // An unknown escape stays as written: the backslash,
                        // then the character (copied with what follows).
                        _ => {
                            self.text.push('\\');
                            i += 1;
                            seg = i;
                            continue;
                        }
                    };
                    self.text.push(decoded);
                    i += 2;
                    seg = i;
                }
                c if c != q => return Err(Outside),
                _ => {
                    if !triple {
                        self.text.push_str(&self.src[seg..i]);
                        self.pos = i + 1;
                        break;
                    }
                    if b.get(i + 1) == Some(&q) && b.get(i + 2) == Some(&q) {
                        self.text.push_str(&self.src[seg..i]);
                        self.pos = i + 3;
                        break;
                    }
                    i += 1;
                }
            }
        }
        self.tok = Tok::Str;
        Ok(())
    }

    // ---- statements ---------------------------------------------------

    fn module(&mut self) -> R<Vec<Stmt>> {
        self.next()?;
        if self.tok != Tok::Eof && self.indent != 0 {
            return Err(Outside);
        }
        let mut out = Vec::new();
        self.block(0, &mut out)?;
        if self.tok != Tok::Eof {
            return Err(Outside);
        }
        Ok(out)
    }

    /// The statements indented by `level`, until a line indented less.
    fn block(&mut self, level: usize, out: &mut Vec<Stmt>) -> R<()> {
        while self.tok != Tok::Eof {
            if self.indent < level {
                return Ok(());
            }
            if self.indent > level {
                return Err(Outside);
            }
            out.push(self.stmt(level)?);
        }
        Ok(())
    }

    fn expect(&mut self, t: Tok) -> R<()> {
        if self.tok != t {
            return Err(Outside);
        }
        self.next()
    }

    fn end_stmt(&mut self) -> R<()> {
        match self.tok {
            Tok::Newline => self.next(),
            Tok::Eof => Ok(()),
            _ => Err(Outside),
        }
    }

    fn stmt(&mut self, level: usize) -> R<Stmt> {
        let line = self.tok_line;
        match self.tok {
            Tok::Kw(Kw::From) => self.import_from(line),
            Tok::Kw(Kw::Import) => self.import(),
            Tok::Kw(Kw::Class) => self.class(level, line),
            Tok::Kw(Kw::Pass) => {
                self.next()?;
                self.end_stmt()?;
                Ok(Stmt::Other)
            }
            _ => {
                let (first, mut plain) = self.expr()?;
                if self.tok != Tok::Op(b'=') {
                    self.end_stmt()?;
                    return Ok(match first {
                        Value::Call(c) => Stmt::Call(*c),
                        _ => Stmt::Other,
                    });
                }
                if self.migration_body == Some(level)
                    && plain
                    && matches!(&first, Value::Name(n) if n == "operations")
                {
                    return self.unbuilt_assignment(first, line);
                }
                let mut targets = Vec::new();
                let mut value = first;
                while self.tok == Tok::Op(b'=') {
                    let Value::Name(target) = value else {
                        return Err(Outside);
                    };
                    if !plain {
                        return Err(Outside);
                    }
                    targets.push(target);
                    self.next()?;
                    (value, plain) = self.expr()?;
                }
                self.end_stmt()?;
                Ok(Stmt::Assign {
                    targets,
                    value,
                    line,
                })
            }
        }
    }

    /// `operations = VALUE` (at the `=`), the value checked but not built.
    /// A chained assignment (`operations = x = …`) is left to the parser.
    fn unbuilt_assignment(&mut self, target: Value, line: u32) -> R<Stmt> {
        let Value::Name(target) = target else {
            return Err(Outside);
        };
        self.next()?;
        let value_line = self.tok_line;
        self.build = false;
        let checked = self.expr();
        self.build = true;
        checked?;
        if self.tok == Tok::Op(b'=') {
            return Err(Outside);
        }
        self.end_stmt()?;
        Ok(Stmt::Assign {
            targets: vec![target],
            value: Value::Dynamic { line: value_line },
            line,
        })
    }

    /// `NAME(.NAME)*` (spaces around the dots are allowed, as in Python).
    /// Empty while values are not built (`name_span` tells where it was).
    fn dotted_name(&mut self) -> R<String> {
        if self.tok != Tok::Name {
            return Err(Outside);
        }
        let (first, mut last) = (self.start, self.end);
        // Built only when the name is not written as one piece (`a . b`).
        let mut spaced = String::new();
        let mut dotted = false;
        self.next()?;
        while self.tok == Tok::Op(b'.') {
            let dot = self.pos - 1;
            dotted = true;
            self.next()?;
            if self.tok != Tok::Name {
                return Err(Outside);
            }
            if !self.build || (spaced.is_empty() && dot == last && self.start == dot + 1) {
                last = self.end;
            } else {
                if spaced.is_empty() {
                    spaced.push_str(&self.src[first..last]);
                }
                spaced.push('.');
                spaced.push_str(self.name());
            }
            self.next()?;
        }
        self.name_span = (first, last, dotted);
        Ok(if !self.build {
            String::new()
        } else if spaced.is_empty() {
            self.src[first..last].to_string()
        } else {
            spaced
        })
    }

    /// `NAME [as NAME]`.
    fn alias(&mut self, dotted: bool) -> R<(String, Option<String>)> {
        let name = if dotted {
            self.dotted_name()?
        } else {
            if self.tok != Tok::Name {
                return Err(Outside);
            }
            let n = self.name().to_string();
            self.next()?;
            n
        };
        if self.tok != Tok::Kw(Kw::As) {
            return Ok((name, None));
        }
        self.next()?;
        if self.tok != Tok::Name {
            return Err(Outside);
        }
        let alias = self.name().to_string();
        self.next()?;
        Ok((name, Some(alias)))
    }

    fn import(&mut self) -> R<Stmt> {
        self.next()?;
        let mut names = vec![self.alias(true)?];
        while self.tok == Tok::Op(b',') {
            self.next()?;
            names.push(self.alias(true)?);
        }
        self.end_stmt()?;
        Ok(Stmt::Import { names })
    }

    fn import_from(&mut self, line: u32) -> R<Stmt> {
        self.next()?;
        let mut level = 0;
        while self.tok == Tok::Op(b'.') {
            level += 1;
            self.next()?;
        }
        let module = if self.tok == Tok::Name {
            self.dotted_name()?
        } else if level > 0 {
            String::new()
        } else {
            return Err(Outside);
        };
        // Rules about `__future__` imports are the parser's.
        if module == "__future__" {
            return Err(Outside);
        }
        self.expect(Tok::Kw(Kw::Import))?;
        let mut names = Vec::new();
        match self.tok {
            Tok::Op(b'*') => {
                names.push(("*".to_string(), None));
                self.next()?;
            }
            Tok::Op(b'(') => {
                self.next()?;
                loop {
                    names.push(self.alias(false)?);
                    match self.tok {
                        Tok::Op(b',') => {
                            self.next()?;
                            if self.tok == Tok::Op(b')') {
                                self.next()?;
                                break;
                            }
                        }
                        Tok::Op(b')') => {
                            self.next()?;
                            break;
                        }
                        _ => return Err(Outside),
                    }
                }
            }
            _ => {
                names.push(self.alias(false)?);
                while self.tok == Tok::Op(b',') {
                    self.next()?;
                    names.push(self.alias(false)?);
                }
            }
        }
        self.end_stmt()?;
        Ok(Stmt::ImportFrom {
            module,
            level,
            names,
            line,
        })
    }

    fn class(&mut self, level: usize, line: u32) -> R<Stmt> {
        self.next()?;
        if self.tok != Tok::Name {
            return Err(Outside);
        }
        let name = self.name().to_string();
        self.next()?;
        let mut bases = Vec::new();
        if self.tok == Tok::Op(b'(') {
            let args = self.call(String::new(), line)?;
            bases = args
                .args
                .into_iter()
                .filter_map(|v| match v {
                    Value::Name(n) => Some(n),
                    _ => None,
                })
                .collect();
        }
        self.expect(Tok::Op(b':'))?;
        // The body on lines of its own, indented deeper.
        self.expect(Tok::Newline)?;
        if self.tok == Tok::Eof || self.indent <= level {
            return Err(Outside);
        }
        let mut body = Vec::new();
        self.classes += 1;
        if self.classes >= MAX_INDENT_DEPTH {
            return Err(Outside);
        }
        let outer = self.migration_body;
        if self.elide_operations && level == 0 && name == "Migration" {
            self.migration_body = Some(self.indent);
        }
        let read = self.block(self.indent, &mut body);
        self.migration_body = outer;
        self.classes -= 1;
        read?;
        Ok(Stmt::Class(Class {
            name,
            bases,
            body,
            line,
        }))
    }

    // ---- expressions --------------------------------------------------

    /// An expression, and whether it is a plain dotted name (an
    /// assignment target or a keyword).
    fn expr(&mut self) -> R<(Value, bool)> {
        let line = self.tok_line;
        let (value, plain) = match self.tok {
            Tok::Name => {
                let name = self.dotted_name()?;
                if self.tok == Tok::Op(b'(') {
                    let call = self.call(name, line)?;
                    if self.build {
                        (Value::Call(Box::new(call)), false)
                    } else {
                        (Value::Dynamic { line }, false)
                    }
                } else {
                    (Value::Name(name), true)
                }
            }
            Tok::Str if !self.build => {
                while self.tok == Tok::Str {
                    self.next()?;
                }
                (Value::Dynamic { line }, false)
            }
            Tok::Str => {
                let mut s = std::mem::take(&mut self.text);
                self.next()?;
                while self.tok == Tok::Str {
                    s.push_str(&self.text);
                    self.next()?;
                }
                (Value::Str(s), false)
            }
            Tok::Int(i) => {
                self.next()?;
                (Value::Int(i), false)
            }
            Tok::Float => {
                self.next()?;
                (Value::Dynamic { line }, false)
            }
            // A negative number: a unary operation, computed.
            Tok::Op(b'-') => {
                self.next()?;
                if !matches!(self.tok, Tok::Int(_) | Tok::Float) {
                    return Err(Outside);
                }
                self.next()?;
                (Value::Dynamic { line }, false)
            }
            Tok::Kw(k @ (Kw::True | Kw::False | Kw::None)) => {
                self.next()?;
                let v = match k {
                    Kw::True => Value::Bool(true),
                    Kw::False => Value::Bool(false),
                    _ => Value::None,
                };
                (v, false)
            }
            Tok::Op(b'(') => {
                self.next()?;
                if self.tok == Tok::Op(b')') {
                    self.next()?;
                    (Value::List(Vec::new()), false)
                } else {
                    let (first, _) = self.expr()?;
                    match self.tok {
                        Tok::Op(b')') => {
                            self.next()?;
                            (first, false)
                        }
                        Tok::Op(b',') => (Value::List(self.items(first, b')')?), false),
                        _ => return Err(Outside),
                    }
                }
            }
            Tok::Op(b'[') => {
                self.next()?;
                if self.tok == Tok::Op(b']') {
                    self.next()?;
                    (Value::List(Vec::new()), false)
                } else {
                    let (first, _) = self.expr()?;
                    (Value::List(self.items(first, b']')?), false)
                }
            }
            Tok::Op(b'{') => {
                self.next()?;
                if self.tok == Tok::Op(b'}') {
                    self.next()?;
                    (Value::Dict(Vec::new()), false)
                } else {
                    let (first, _) = self.expr()?;
                    if self.tok == Tok::Op(b':') {
                        (Value::Dict(self.dict(first)?), false)
                    } else {
                        (Value::List(self.items(first, b'}')?), false)
                    }
                }
            }
            _ => return Err(Outside),
        };
        // Subscripts, attributes of calls, calls of calls…: the parser's.
        if matches!(self.tok, Tok::Op(b'(' | b'[' | b'.')) {
            return Err(Outside);
        }
        Ok((value, plain))
    }

    /// The rest of a comma-separated sequence after its first item, up to
    /// and including `close` (a trailing comma allowed).
    fn items(&mut self, first: Value, close: u8) -> R<Vec<Value>> {
        let mut items = Vec::new();
        if self.build {
            items.push(first);
        }
        loop {
            match self.tok {
                Tok::Op(c) if c == close => {
                    self.next()?;
                    return Ok(items);
                }
                Tok::Op(b',') => {
                    self.next()?;
                    if self.tok == Tok::Op(close) {
                        self.next()?;
                        return Ok(items);
                    }
                    let item = self.expr()?.0;
                    if self.build {
                        items.push(item);
                    }
                }
                _ => return Err(Outside),
            }
        }
    }

    /// The rest of a dict after its first key (at the `:`).
    fn dict(&mut self, first: Value) -> R<Vec<(Value, Value)>> {
        let mut key = first;
        let mut items = Vec::new();
        loop {
            self.expect(Tok::Op(b':'))?;
            let (value, _) = self.expr()?;
            if self.build {
                items.push((key, value));
            }
            match self.tok {
                Tok::Op(b'}') => {
                    self.next()?;
                    return Ok(items);
                }
                Tok::Op(b',') => {
                    self.next()?;
                    if self.tok == Tok::Op(b'}') {
                        self.next()?;
                        return Ok(items);
                    }
                    key = self.expr()?.0;
                }
                _ => return Err(Outside),
            }
        }
    }

    /// The arguments of a call of `func` (at its `(`): positional ones,
    /// then keyword ones, each keyword once.
    fn call(&mut self, func: String, line: u32) -> R<Call> {
        self.next()?;
        let mut args = Vec::new();
        let mut kwargs: Vec<(String, Value)> = Vec::new();
        // Where this call's keywords start in `keywords`.
        let base = self.keywords.len();
        while self.tok != Tok::Op(b')') {
            let (v, plain) = self.expr()?;
            if self.tok == Tok::Op(b'=') {
                let Value::Name(k) = v else {
                    return Err(Outside);
                };
                // A keyword is one name (empty while values are not built:
                // its span tells which), given once.
                let (start, end, dotted) = self.name_span;
                let name = &self.b[start..end];
                if !plain
                    || dotted
                    || self.keywords[base..]
                        .iter()
                        .any(|&(s, e)| &self.b[s..e] == name)
                {
                    return Err(Outside);
                }
                self.keywords.push((start, end));
                self.next()?;
                let (value, _) = self.expr()?;
                if self.build {
                    kwargs.push((k, value));
                }
            } else {
                if self.keywords.len() > base {
                    return Err(Outside);
                }
                if self.build {
                    args.push(v);
                }
            }
            match self.tok {
                Tok::Op(b',') => self.next()?,
                Tok::Op(b')') => {}
                _ => return Err(Outside),
            }
        }
        self.keywords.truncate(base);
        self.next()?;
        Ok(Call {
            func,
            args,
            kwargs,
            starred: false,
            line,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIGRATION: &str = "from django.db import migrations, models\n\n\nclass Migration(migrations.Migration):\n    dependencies = [(\"shop\", \"0001_initial\")]\n    operations = [\n        migrations.AddField(model_name=\"item\", name=\"x\", field=models.IntegerField(default=1)),\n    ]\n";

    fn assign<'a>(stmts: &'a [Stmt], target: &str) -> Option<&'a Value> {
        stmts.iter().find_map(|s| match s {
            Stmt::Class(c) => assign(&c.body, target),
            Stmt::Assign { targets, value, .. } if targets == &[target] => Some(value),
            _ => None,
        })
    }

    #[test]
    fn operations_of_the_migration_class_are_checked_but_not_built() {
        let (built, b1) = parse(MIGRATION).expect("in the subset");
        let (unbuilt, b2) = parse_without_operations(MIGRATION).expect("in the subset");
        assert_eq!((b1, b2), (Bounds::Within, Bounds::Within));
        assert!(matches!(assign(&built, "operations"), Some(Value::List(v)) if v.len() == 1));
        assert_eq!(
            assign(&unbuilt, "operations"),
            Some(&Value::Dynamic { line: 6 })
        );
        assert_eq!(
            assign(&unbuilt, "dependencies"),
            assign(&built, "dependencies")
        );
    }

    #[test]
    fn only_the_top_level_migration_class_has_its_operations_unbuilt() {
        for source in [
            "operations = [1]\n",
            "class Other:\n    operations = [1]\n",
            "class Outer:\n    class Migration:\n        operations = [1]\n",
        ] {
            let (stmts, _) = parse_without_operations(source).expect("in the subset");
            assert_eq!(
                assign(&stmts, "operations"),
                Some(&Value::List(vec![Value::Int(1)])),
                "{source}"
            );
        }
    }

    #[test]
    fn what_the_builder_refuses_the_checker_refuses() {
        for source in [
            // A repeated keyword is a SyntaxError.
            "class Migration:\n    operations = [f(a=1, a=2)]\n",
            // A keyword before a positional argument too.
            "class Migration:\n    operations = [f(a=1, 2)]\n",
            // A dotted keyword.
            "class Migration:\n    operations = [f(a.b=1)]\n",
        ] {
            assert!(parse(source).is_none(), "{source}");
            assert!(parse_without_operations(source).is_none(), "{source}");
        }
        // A chained assignment is left to the parser when unbuilt.
        let chained = "class Migration:\n    operations = x = [1]\n";
        assert!(parse(chained).is_some());
        assert!(parse_without_operations(chained).is_none());
        // Keywords are per call: the same name in two calls is fine.
        let ok = "class Migration:\n    operations = [f(a=1, b=g(a=2)), f(a=3)]\n";
        assert!(parse(ok).is_some() && parse_without_operations(ok).is_some());
    }

    #[test]
    fn nesting_bounds_are_proven_or_left_to_the_check() {
        let long = format!("x = f({})\n", ["a.b"; MAX_CHAIN + 1].join(", "));
        assert_eq!(parse(&long).map(|r| r.1), Some(Bounds::Unproven));
        let short = format!("x = f({})\n", ["a.b"; 10].join(", "));
        assert_eq!(parse(&short).map(|r| r.1), Some(Bounds::Within));
        let deep = format!(
            "x = {}{}\n",
            "[".repeat(MAX_BRACKET_DEPTH + 1),
            "]".repeat(MAX_BRACKET_DEPTH + 1)
        );
        assert!(parse(&deep).is_none());
        let ok = format!(
            "x = {}{}\n",
            "[".repeat(MAX_BRACKET_DEPTH),
            "]".repeat(MAX_BRACKET_DEPTH)
        );
        assert!(parse(&ok).is_some());
        let mut classes = String::new();
        for level in 0..MAX_INDENT_DEPTH {
            classes.push_str(&format!("{}class C{level}:\n", "    ".repeat(level)));
        }
        classes.push_str(&format!("{}pass\n", "    ".repeat(MAX_INDENT_DEPTH)));
        assert!(parse(&classes).is_none());
    }
}
