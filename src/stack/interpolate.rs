//! Compose-style variable interpolation: `$VAR`, `${VAR}`, `${VAR:-d}`,
//! `${VAR-d}`, `${VAR:?msg}`, `${VAR?msg}`, `${VAR:+alt}`, `${VAR+alt}`, `$$`.

/// `${…}` nested deeper than this is refused (each level is a recursion and
/// a scan of the rest of the value).
pub const MAX_INTERPOLATION_DEPTH: usize = 32;

/// Substitute variables in `input` using `lookup`. The error is one sentence
/// without location; the caller adds the file and line.
pub fn interpolate(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let b = input.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'{' && i > 0 && b[i - 1] == b'$' {
            depth += 1;
            deepest = deepest.max(depth);
        } else if c == b'}' {
            depth = depth.saturating_sub(1);
        }
    }
    if deepest > MAX_INTERPOLATION_DEPTH {
        return Err(format!(
            "variables are nested deeper than {MAX_INTERPOLATION_DEPTH} levels of \"${{\""
        ));
    }
    interpolate_bounded(input, lookup)
}

fn interpolate_bounded(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('{') {
            let end =
                matching_brace(r).ok_or_else(|| format!("unterminated \"${{\" in {input:?}"))?;
            out.push_str(&braced(&r[..end], lookup)?);
            rest = &r[end + 1..];
        } else {
            let n = name_len(rest);
            if n == 0 {
                return Err(format!(
                    "invalid interpolation in {input:?}: \"$\" must be followed by a name, {{ or $"
                ));
            }
            out.push_str(&lookup(&rest[..n]).unwrap_or_default());
            rest = &rest[n..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn name_len(s: &str) -> usize {
    let mut n = 0;
    for (i, c) in s.char_indices() {
        let ok = c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
        if !ok {
            break;
        }
        n = i + c.len_utf8();
    }
    n
}

fn matching_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn braced(body: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let n = name_len(body);
    if n == 0 {
        return Err(format!(
            "invalid interpolation \"${{{body}}}\": expected a variable name"
        ));
    }
    let (name, op) = body.split_at(n);
    let value = lookup(name);
    let set_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    let is_set = value.is_some();
    let arg = |k: usize| interpolate_bounded(&op[k..], lookup);
    match op {
        "" => Ok(value.unwrap_or_default()),
        _ if op.starts_with(":-") => {
            if set_nonempty {
                Ok(value.unwrap_or_default())
            } else {
                arg(2)
            }
        }
        _ if op.starts_with('-') => {
            if is_set {
                Ok(value.unwrap_or_default())
            } else {
                arg(1)
            }
        }
        _ if op.starts_with(":?") => {
            if set_nonempty {
                Ok(value.unwrap_or_default())
            } else {
                Err(format!(
                    "required variable {name} is missing a value: {}",
                    arg(2)?
                ))
            }
        }
        _ if op.starts_with('?') => {
            if is_set {
                Ok(value.unwrap_or_default())
            } else {
                Err(format!(
                    "required variable {name} is missing a value: {}",
                    arg(1)?
                ))
            }
        }
        _ if op.starts_with(":+") => {
            if set_nonempty {
                arg(2)
            } else {
                Ok(String::new())
            }
        }
        _ if op.starts_with('+') => {
            if is_set {
                arg(1)
            } else {
                Ok(String::new())
            }
        }
        _ => Err(format!("invalid interpolation \"${{{body}}}\"")),
    }
}

/// Parse a `.env` file: `KEY=VALUE` lines, `#` comments, optional `export `,
/// single or double quotes around the value.
pub fn parse_dotenv(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim();
        if name_len(k) != k.len() || k.is_empty() {
            continue;
        }
        let v = v.trim();
        let v = if v.len() >= 2
            && ((v.starts_with('"') && v.ends_with('"'))
                || (v.starts_with('\'') && v.ends_with('\'')))
        {
            v[1..v.len() - 1].to_string()
        } else {
            v.split(" #").next().unwrap_or("").trim_end().to_string()
        };
        out.push((k.to_string(), v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TAG" => Some("2.1.0".into()),
            "EMPTY" => Some(String::new()),
            "REG" => Some("reg:5000".into()),
            _ => None,
        }
    }

    #[test]
    fn table() {
        let cases = [
            ("shop:$TAG", "shop:2.1.0"),
            ("shop:${TAG}", "shop:2.1.0"),
            ("${REG}/shop:${TAG}", "reg:5000/shop:2.1.0"),
            ("shop:${NOPE:-1.0}", "shop:1.0"),
            ("shop:${EMPTY:-1.0}", "shop:1.0"),
            ("shop:${EMPTY-1.0}", "shop:"),
            ("shop:${NOPE-1.0}", "shop:1.0"),
            ("shop:${NOPE:-${TAG}}", "shop:2.1.0"),
            ("cost $$5", "cost $5"),
            ("${TAG:+set}", "set"),
            ("${NOPE:+set}", ""),
            ("$NOPE", ""),
        ];
        for (input, want) in cases {
            assert_eq!(interpolate(input, &env).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn required_variables() {
        let e = interpolate("shop:${NOPE:?set NOPE to the release}", &env).unwrap_err();
        assert!(
            e.contains("NOPE") && e.contains("set NOPE to the release"),
            "{e}"
        );
        assert!(interpolate("${EMPTY:?x}", &env).is_err());
        assert_eq!(interpolate("${EMPTY?x}", &env).unwrap(), "");
    }

    #[test]
    fn malformed() {
        assert!(interpolate("${TAG", &env).is_err());
        assert!(interpolate("${}", &env).is_err());
        assert!(interpolate("$ x", &env).is_err());
        assert!(interpolate("${TAG!x}", &env).is_err());
    }

    #[test]
    fn dotenv() {
        let v = parse_dotenv("# c\nTAG=1.0\nexport A='x y'\nB=\"q\"\nC=v # note\nbad line\n");
        assert_eq!(
            v,
            vec![
                ("TAG".into(), "1.0".into()),
                ("A".into(), "x y".into()),
                ("B".into(), "q".into()),
                ("C".into(), "v".into())
            ]
        );
    }

    #[test]
    fn r15_deep_nesting_is_refused_quickly() {
        let n = 100_000;
        let deep = format!("shop:{}1{}", "${NOPE:-".repeat(n), "}".repeat(n));
        let e = interpolate(&deep, &env).unwrap_err();
        assert!(e.contains("nested deeper than 32"), "{e}");
        let ok = format!("shop:{}1{}", "${NOPE:-".repeat(32), "}".repeat(32));
        assert_eq!(interpolate(&ok, &env).unwrap(), "shop:1");
    }
}
