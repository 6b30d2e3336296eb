//! `tagback guard` end to end on plain directories (no git) and SQLite
//! databases whose `django_migrations` rows are what real Django writes for
//! the demo shop (its migrations are real `makemigrations` output). The
//! real-Django proof on SQLite, PostgreSQL and MariaDB is tests/django/guard.py.
// See: issue 13.

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use tempfile::TempDir;

use common::{copy_tree, fixture};

/// Rows Django writes when migrating the demo's v1 (the contrib apps first).
const V1_ROWS: &[(&str, &str)] = &[
    ("contenttypes", "0001_initial"),
    ("auth", "0001_initial"),
    ("members", "0001_initial"),
    ("shop", "0001_initial"),
    ("shop", "0002_product_sku"),
];

/// What v2 adds.
const V2_ROWS: &[(&str, &str)] = &[
    ("members", "0002_badge"),
    ("members", "0003_normalize_nicknames"),
    ("shop", "0003_order_badge"),
    ("shop", "0004_order_code"),
];

struct Image {
    _dir: TempDir,
    code: PathBuf,
    db: PathBuf,
}

/// The demo's `rev` as the plain directory of an image, and a SQLite
/// database with `rows` in `django_migrations` (`None`: no table).
fn image(rev: &str, rows: Option<&[(&str, &str)]>) -> Image {
    let dir = tempfile::tempdir().unwrap();
    let code = dir.path().join("app");
    copy_tree(&fixture(&format!("demo/{rev}")), &code);
    let db = dir.path().join("db.sqlite3");
    let conn = rusqlite::Connection::open(&db).unwrap();
    if let Some(rows) = rows {
        conn.execute_batch(
            "CREATE TABLE django_migrations (id integer primary key autoincrement, app varchar(255), name varchar(255), applied datetime)",
        )
        .unwrap();
        for (app, name) in rows {
            conn.execute(
                "INSERT INTO django_migrations (app, name, applied) VALUES (?1, ?2, '2026-12-01 07:00:00')",
                [app, name],
            )
            .unwrap();
        }
    }
    Image {
        _dir: dir,
        code,
        db,
    }
}

fn url(db: &Path) -> String {
    format!("sqlite://{}", db.display())
}

fn guard(img: &Image) -> Command {
    let mut c = Command::cargo_bin("tagback").unwrap();
    c.env_remove("DATABASE_URL")
        .env("NO_COLOR", "1")
        .current_dir(&img.code)
        .args(["guard", "--database-url", &url(&img.db)]);
    c
}

fn json(img: &Image, code: i32) -> serde_json::Value {
    let out = guard(img).args(["--format", "json"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn r13_guard_blocks_older_code_on_a_database_the_newer_code_migrated() {
    let all: Vec<_> = V1_ROWS.iter().chain(V2_ROWS).copied().collect();
    let img = image("v1", Some(&all));
    let out = guard(&img).assert().code(1).get_output().stdout.clone();
    let text = String::from_utf8(out).unwrap();
    for m in [
        "members.0002_badge",
        "members.0003_normalize_nicknames",
        "shop.0003_order_badge",
        "shop.0004_order_code",
    ] {
        assert!(text.contains(m), "{m} missing from:\n{text}");
    }
    assert!(text.contains("BLOCKED: the database is ahead of the code"));
    // The fix: the backward migrations, run with the newer image.
    assert!(text.contains("python manage.py migrate members 0001_initial"));
    assert!(text.contains("python manage.py migrate shop 0002_product_sku"));
    assert!(text.contains("NEWER image"));
    assert!(text.contains("not checked (migrations outside"));

    let report = json(&img, 1);
    assert_eq!(report["version"], 1);
    assert_eq!(report["ahead"], true);
    assert_eq!(report["unknown"].as_array().unwrap().len(), 4);
    assert_eq!(
        report["not_checked"],
        serde_json::json!(["auth", "contenttypes"])
    );
    assert_eq!(
        report["targets"],
        serde_json::json!([
            {"app": "members", "target": "0001_initial"},
            {"app": "shop", "target": "0002_product_sku"}
        ])
    );

    // --warn-only prints the same verdict and lets the app start.
    guard(&img)
        .arg("--warn-only")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("WARNING: the database is ahead"));
}

#[test]
fn r13_guard_passes_a_consistent_or_behind_database() {
    let img = image("v1", Some(V1_ROWS));
    guard(&img)
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "ok: the database is not ahead of the code",
        ));
    // The newer code on the older database: behind, not ahead.
    let img = image("v2", Some(V1_ROWS));
    assert_eq!(json(&img, 0)["ahead"], false);
}

#[test]
fn r13_guard_ignores_rows_of_apps_the_code_does_not_install() {
    let mut rows = V1_ROWS.to_vec();
    rows.push(("legacy", "0001_initial"));
    rows.push(("legacy", "0002_more"));
    let img = image("v1", Some(&rows));
    guard(&img)
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "ignored rows of apps this code does not install: legacy",
        ));
}

#[test]
fn r13_guard_passes_a_database_that_was_never_migrated() {
    let img = image("v1", None);
    guard(&img)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("no django_migrations table yet"));
    // No file yet (Django creates it on first use).
    std::fs::remove_file(&img.db).unwrap();
    guard(&img)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("no django_migrations table yet"));
}

#[test]
fn r13_guard_allow_list_needs_a_reason_and_excuses_the_row() {
    let mut rows = V1_ROWS.to_vec();
    rows.push(("shop", "0001_compact"));
    let img = image("v1", Some(&rows));
    guard(&img)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("shop.0001_compact"))
        .stdout(predicate::str::contains(
            "Note: shop.0001_compact is numbered below this code's latest migration of the app",
        ));
    assert_eq!(
        json(&img, 1)["numbered_below_latest"],
        serde_json::json!([{"app": "shop", "migration": "0001_compact"}])
    );
    std::fs::write(
        img.code.join(".tagback.yml"),
        "guard:\n  allow:\n    - migration: shop.0001_compact\n      reason: squash of 0001-0002 named with --squashed-name\n",
    )
    .unwrap();
    guard(&img)
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "not ahead: shop.0001_compact: allowed in .tagback.yml: squash of 0001-0002",
        ));
    std::fs::write(
        img.code.join(".tagback.yml"),
        "guard:\n  allow:\n    - migration: shop.0001_compact\n",
    )
    .unwrap();
    guard(&img)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(".tagback.yml"));
}

#[test]
fn r13_guard_reads_database_url_from_the_environment() {
    let all: Vec<_> = V1_ROWS.iter().chain(V2_ROWS).copied().collect();
    let img = image("v1", Some(&all));
    Command::cargo_bin("tagback")
        .unwrap()
        .current_dir(&img.code)
        .env("DATABASE_URL", url(&img.db))
        .arg("guard")
        .assert()
        .code(1);
    Command::cargo_bin("tagback")
        .unwrap()
        .env_remove("DATABASE_URL")
        .args(["guard", "--project"])
        .arg(&img.code)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "no database to check: pass --database-url URL or set DATABASE_URL",
        ));
}

#[test]
fn r13_guard_bad_input_is_exit_2_with_one_sentence() {
    let img = image("v1", Some(V1_ROWS));
    let one_line = |out: &std::process::Output| {
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(!err.contains("panicked"), "{err}");
        err
    };
    for (db_url, says) in [
        (
            "mysql://tagback:secret@127.0.0.1:1/shop",
            "cannot connect to mysql://tagback:***@127.0.0.1:1/shop",
        ),
        (
            "postgres://postgres:secret@127.0.0.1:1/shop",
            "cannot connect to postgres://postgres:***@127.0.0.1:1/shop",
        ),
        ("sqlite:///nonexistent/db.sqlite3", "does not exist"),
        ("oracle://x", "unsupported database URL scheme"),
    ] {
        let out = Command::cargo_bin("tagback")
            .unwrap()
            .args(["guard", "--database-url", db_url, "--project"])
            .arg(&img.code)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = one_line(&out);
        assert!(err.contains(says), "{db_url}: {err}");
    }
    // Not a Django project.
    let empty = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("tagback")
        .unwrap()
        .args(["guard", "--database-url", &url(&img.db), "--project"])
        .arg(empty.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(one_line(&out).contains("no manage.py"));
    // A migration that is not Python: the file and line are named.
    std::fs::write(
        img.code.join("shop/migrations/0003_broken.py"),
        "from django.db import migrations\n\nclass Migration(migrations.Migration:\n",
    )
    .unwrap();
    let out = guard(&img).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = one_line(&out);
    assert!(
        err.contains("shop/migrations/0003_broken.py") && err.contains("line 3"),
        "{err}"
    );
}

const AUTO_ROLLBACK_STACK: &str = "services:\n  web:\n    image: registry.example.com:5000/shop:TAG\n    deploy:\n      replicas: 2\n      update_config:\n        order: start-first\n        failure_action: rollback\n";

/// The demo shop deployed at `shop:1` (v1), then `shop:2` (v2, which adds
/// migrations) with the given stack file, and `shop:3` (v3, same code as v2).
fn release_repo(stack: &str) -> common::TestRepo {
    let mut r = common::TestRepo::new();
    r.copy_fixture("demo/v1", "");
    r.write("stack.yml", stack.replace("TAG", "1"));
    r.commit("v1", Some("v1"));
    for d in ["accounts", "shop"] {
        r.remove(d);
    }
    r.copy_fixture("demo/v2", "");
    r.write("stack.yml", stack.replace("TAG", "2"));
    r.commit("v2", Some("v2"));
    r.write("stack.yml", stack.replace("TAG", "3"));
    r.commit("v3", Some("v3"));
    r
}

/// The `auto-rollback` findings among the first service's notes.
fn auto_rollback_notes(report: &serde_json::Value) -> Vec<serde_json::Value> {
    report["services"][0]["notes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n["code"] == "auto-rollback")
        .cloned()
        .collect()
}

#[test]
fn r13_check_warns_about_automatic_rollback_of_a_release_that_adds_migrations() {
    let r = release_repo(AUTO_ROLLBACK_STACK);
    let report = r.run_json(
        &["check", "--from", "v1", "--to", "v2", "--format", "json"],
        0,
    );
    let findings = auto_rollback_notes(&report);
    assert_eq!(findings.len(), 1, "{report:#}");
    assert_eq!(findings[0]["code"], "auto-rollback");
    assert_eq!(findings[0]["file"], "stack.yml");
    assert_eq!(findings[0]["line"], 8);
    let message = findings[0]["message"].as_str().unwrap();
    assert!(message.contains("4 migration(s)"), "{message}");
    assert!(message.contains("tagback guard"), "{message}");
    assert!(message.contains("backward-compatible"), "{message}");
    r.tagback()
        .args(["check", "--from", "v1", "--to", "v2"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "auto-rollback (stack.yml:8): deploy.update_config.failure_action: rollback",
        ));
    // A release without new migrations: nothing to warn about.
    let report = r.run_json(
        &["check", "--from", "v2", "--to", "v3", "--format", "json"],
        0,
    );
    assert!(
        report["services"][0].get("findings").is_none(),
        "{report:#}"
    );
}

#[test]
fn r13_check_warns_about_rollback_commands_in_deploy_scripts() {
    let stack = common::STACK;
    let mut r = release_repo(stack);
    r.write(
        "scripts/deploy.sh",
        "#!/bin/sh\n# on failure:\n# docker service rollback shop_web (comment)\ndocker stack deploy -c stack.yml shop || docker service rollback shop_web\n",
    );
    r.commit("deploy script", None);
    r.git(&["tag", "-f", "v2", "HEAD"]);
    let report = r.run_json(
        &["check", "--from", "v1", "--to", "v2", "--format", "json"],
        0,
    );
    let findings = auto_rollback_notes(&report);
    assert_eq!(findings.len(), 1, "{report:#}");
    assert_eq!(findings[0]["file"], "scripts/deploy.sh");
    assert_eq!(findings[0]["line"], 4);
}

#[test]
fn guard_reads_the_code_with_the_services_settings_from_tagback_yml() {
    // shop's migrations live in shop/db_migrations, named by a computed
    // MIGRATION_MODULES that only `.tagback.yml` can state: the guard reads
    // the code as `plan` does, with the service's settings.
    let rows_ahead: Vec<(&str, &str)> = V1_ROWS
        .iter()
        .copied()
        .chain([("shop", "0003_order_badge")])
        .collect();
    let img = image("v1", Some(&rows_ahead));
    std::fs::rename(
        img.code.join("shop/migrations"),
        img.code.join("shop/db_migrations"),
    )
    .unwrap();
    let settings = img.code.join("shopsite/settings.py");
    let mut text = std::fs::read_to_string(&settings).unwrap();
    text.push_str("MIGRATION_MODULES = {app: f\"{app}.db_migrations\" for app in [\"shop\"]}\n");
    std::fs::write(&settings, text).unwrap();
    // Without the statement the code cannot be read exactly: exit 2.
    guard(&img)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("MIGRATION_MODULES"));
    let config = "services:\n  web:\n    migration_modules:\n      shop: shop.db_migrations\n";
    std::fs::write(img.code.join(".tagback.yml"), config).unwrap();
    guard(&img)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("shop.0003_order_badge"));
    // Two Django services that read the code differently: say which.
    std::fs::write(
        img.code.join(".tagback.yml"),
        format!("{config}  worker:\n    settings: shopsite.settings\n"),
    )
    .unwrap();
    guard(&img)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("pass --service NAME to the guard"));
    guard(&img).args(["--service", "web"]).assert().code(1);
    // The database the code knows: ok.
    let img2 = image("v1", Some(V1_ROWS));
    std::fs::rename(
        img2.code.join("shop/migrations"),
        img2.code.join("shop/db_migrations"),
    )
    .unwrap();
    std::fs::copy(&settings, img2.code.join("shopsite/settings.py")).unwrap();
    std::fs::write(img2.code.join(".tagback.yml"), config).unwrap();
    guard(&img2).assert().code(0);
}

/// The v1 image (its rows applied) with one file of `shop/migrations`
/// renamed; also that directory.
fn v1_with_shop_file_renamed(from: &str, to: &str) -> (Image, PathBuf) {
    let img = image("v1", Some(V1_ROWS));
    let migrations = img.code.join("shop/migrations");
    std::fs::rename(migrations.join(from), migrations.join(to)).unwrap();
    (img, migrations)
}

#[test]
fn a_sourceless_migration_in_the_image_is_exit_2_naming_it() {
    // An image built with `compileall -b` and its sources deleted: Django
    // imports shop/migrations/0002_product_sku.pyc (a migration of v1 the
    // database has applied). Before, tagback read only `.py` files, did not
    // know 0002, and blocked the start with the wrong cause ("the database
    // is ahead of the code").
    let (img, migrations) =
        v1_with_shop_file_renamed("0002_product_sku.py", "0002_product_sku.pyc");
    guard(&img)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "shop/migrations/0002_product_sku.pyc",
        ))
        .stderr(predicate::str::contains(
            "compiled module without its source (0002_product_sku.py)",
        ))
        .stdout(predicate::str::contains("ahead").not());
    // With its source beside it (compileall -b, sources kept), the guard
    // reads the source and lets the code start.
    std::fs::copy(
        fixture("demo/v1/shop/migrations/0002_product_sku.py"),
        migrations.join("0002_product_sku.py"),
    )
    .unwrap();
    guard(&img).assert().code(0);
}

#[test]
fn a_compiled_package_init_counts_as_the_package() {
    // `__init__.cpython-311-x86_64-linux-gnu.so` without `__init__.py`:
    // Python imports the package (and Django its migrations); tagback would
    // have seen a directory without migrations.
    let (img, migrations) =
        v1_with_shop_file_renamed("__init__.py", "__init__.cpython-311-x86_64-linux-gnu.so");
    guard(&img)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "shop/migrations/__init__.cpython-311-x86_64-linux-gnu.so",
        ))
        .stderr(predicate::str::contains("(__init__.py)"));
    // Beside the source, the extension module is still what Python imports.
    std::fs::copy(
        fixture("demo/v1/shop/migrations/__init__.py"),
        migrations.join("__init__.py"),
    )
    .unwrap();
    guard(&img)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "is an extension module, which Python imports instead of __init__.py",
        ));
}
