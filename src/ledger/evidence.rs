//! Evidence that backward migrations ran: `manage.py showmigrations` output
//! (`--list` and `--plan` forms).

use std::collections::BTreeMap;

use crate::django::MigrationKey;

/// Applied state per `(app, migration)` as the evidence shows it.
pub type Applied = BTreeMap<MigrationKey, bool>;

/// Parse `showmigrations` output. `--list` form: an app label line followed by
/// ` [X] 0001_initial` lines (squashes may add ` (2 squashed migrations)`).
/// `--plan` form: `[X]  app.0001_initial` lines.
pub fn parse_showmigrations(text: &str) -> Result<Applied, String> {
    let mut out = Applied::new();
    let mut app: Option<String> = None;
    let mut lines = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        if line.trim().is_empty() {
            continue;
        }
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed
            .strip_prefix("[X]")
            .or_else(|| trimmed.strip_prefix("[ ]"))
            .or_else(|| trimmed.strip_prefix("[-]"))
        {
            let applied = trimmed.starts_with("[X]");
            if trimmed.starts_with("[-]") {
                return Err(format!(
                    "line {}: {:?} is partially applied (a squash with only some of its migrations applied)",
                    i + 1,
                    line.trim()
                ));
            }
            let name = rest.trim();
            let name = name.split(" (").next().unwrap_or(name).trim();
            let indented = line.starts_with(' ');
            let (a, n) = if indented {
                let Some(a) = &app else {
                    return Err(format!(
                        "line {}: migration {name:?} appears before any app name",
                        i + 1
                    ));
                };
                (a.clone(), name.to_string())
            } else {
                let Some((a, n)) = name.split_once('.') else {
                    return Err(format!(
                        "line {}: expected `app.migration` in {:?}",
                        i + 1,
                        line.trim()
                    ));
                };
                (a.to_string(), n.to_string())
            };
            if n.is_empty() || n.contains(char::is_whitespace) {
                return Err(format!(
                    "line {}: malformed migration name in {:?}",
                    i + 1,
                    line.trim()
                ));
            }
            out.insert(MigrationKey::new(a, n), applied);
            lines += 1;
        } else if trimmed == "(no migrations)" {
            continue;
        } else if !line.starts_with(' ') && !line.contains(char::is_whitespace) {
            app = Some(line.to_string());
        } else {
            return Err(format!(
                "line {}: not showmigrations output: {:?}",
                i + 1,
                line.chars().take(80).collect::<String>()
            ));
        }
    }
    if lines == 0 {
        return Err("contains no migrations".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_form() {
        let a = parse_showmigrations("shop\n [X] 0001_initial\n [ ] 0002_sku\nmembers\n [X] 0001_squashed_0003 (3 squashed migrations)\nempty\n (no migrations)\n").unwrap();
        assert!(a[&MigrationKey::new("shop", "0001_initial")]);
        assert!(!a[&MigrationKey::new("shop", "0002_sku")]);
        assert!(a[&MigrationKey::new("members", "0001_squashed_0003")]);
    }

    #[test]
    fn plan_form() {
        let a =
            parse_showmigrations("[X]  contenttypes.0001_initial\n[ ]  shop.0002_sku\n").unwrap();
        assert_eq!(a.len(), 2);
        assert!(!a[&MigrationKey::new("shop", "0002_sku")]);
    }

    #[test]
    fn garbage_and_truncation() {
        assert!(parse_showmigrations("").is_err());
        assert!(parse_showmigrations("hello world\nfoo bar\n").is_err());
        assert!(parse_showmigrations(" [X] 0001_initial\n").is_err());
        assert!(parse_showmigrations("shop\n [-] 0001_squashed\n").is_err());
    }
}
