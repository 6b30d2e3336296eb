//! The exact way out of branches under merges: a `manage.py shell -c CODE`
//! step whose Python hands Django's own `MigrationExecutor.migrate` an
//! explicit backwards plan (`unapply_exactly.py`). Django (4.2 to 5.2)
//! takes such a plan as given: `migrate(targets, plan=...)` only computes a
//! plan when none is passed, and `_migrate_all_backwards` unapplies in the
//! plan's order without checking it (and fails with `KeyError` on a
//! migration that is not applied). So the code checks at run time, against
//! the loader of the code that runs it, everything Django does not: every
//! planned migration and every migration to keep is in the graph, those to
//! keep are applied, and the order unapplies each migration only after
//! every applied migration depending on it. Then it verifies with a fresh
//! loader (the recorder's rows) that exactly the planned set is unapplied.
//!
//! What it does not do that `migrate` does: send `pre_migrate` /
//! `post_migrate` (which only create content types and permissions for
//! models that exist afterwards; a backward `migrate` removes none either).

use crate::django::MigrationKey;
use crate::script::quote;

/// The Python template; `__ORDER__` and `__KEEP__` become tuples.
const TEMPLATE: &str = include_str!("unapply_exactly.py");

/// `("app", "name"), ...` as Python literals (JSON strings are Python strings).
fn tuples(keys: &[MigrationKey]) -> String {
    keys.iter()
        .map(|MigrationKey { app: a, name: n }| {
            let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
            format!("({}, {})", q(a), q(n))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Python code that unapplies `order` (children before parents) and
/// checks that `keep` stays applied.
pub fn python(order: &[MigrationKey], keep: &[MigrationKey]) -> String {
    TEMPLATE
        .replace("__ORDER__", &tuples(order))
        .replace("__KEEP__", &tuples(keep))
}

/// `MANAGE shell -c 'CODE'`, ready to paste into bash.
pub fn command(manage: &str, order: &[MigrationKey], keep: &[MigrationKey]) -> String {
    format!("{manage} shell -c {}", quote::bash(&python(order, keep)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &[(&str, &str)]) -> Vec<MigrationKey> {
        v.iter().map(|(a, n)| MigrationKey::new(*a, *n)).collect()
    }

    #[test]
    fn the_code_names_the_order_and_what_stays_applied() {
        let code = python(
            &keys(&[("shop", "0005_merge"), ("shop", "0003_fix")]),
            &keys(&[("shop", "0002_two")]),
        );
        assert!(code.contains(r#"ORDER = [("shop", "0005_merge"), ("shop", "0003_fix")]"#));
        assert!(code.contains(r#"KEEP = [("shop", "0002_two")]"#));
        assert!(
            !code.contains('\''),
            "no single quote: the bash quoting stays readable"
        );
    }

    #[test]
    fn hostile_names_stay_python_string_literals() {
        let code = python(&keys(&[("a\"b", "x\\\ny")]), &[]);
        assert!(code.contains(r#"ORDER = [("a\"b", "x\\\ny")]"#), "{code}");
    }

    #[test]
    fn the_command_is_one_bash_word_after_shell_c() {
        let c = command("python manage.py", &keys(&[("shop", "0003_fix")]), &[]);
        assert!(c.starts_with("python manage.py shell -c "));
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "set -- {}; printf '%s' \"$#\"",
                &c["python manage.py".len()..]
            ))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "3");
    }
}
