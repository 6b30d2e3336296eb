//! End-to-end: the `tagback` binary on deterministic git repositories.

mod common;

use common::{STACK, TestRepo, fixture, shop_repo};
use predicates::prelude::*;

// ---------------------------------------------------------------- check

#[test]
fn downgrade_with_backward_migrations_is_blocked_with_the_contract_json() {
    let r = shop_repo();
    r.write("stack.yml", STACK.replace("TAG", "1"));
    let out = r.run_json(&["check", "--format", "json"], 1);
    let v = out;
    assert_eq!(v["safe"], false);
    let web = &v["services"][0];
    assert_eq!(web["service"], "web");
    assert_eq!(web["direction"], "downgrade");
    assert_eq!(web["from_image"], "registry.example.com:5000/shop:2");
    assert_eq!(web["to_image"], "registry.example.com:5000/shop:1");
    assert_eq!(web["from_rev"], "v2");
    assert_eq!(web["to_rev"], "v1");
    assert_eq!(web["recorded"], false);
    let plan = &web["plan"];
    assert_eq!(plan["steps"][0]["app"], "shop");
    assert_eq!(plan["steps"][0]["target"], "0002_product_sku");
    assert_eq!(
        plan["steps"][0]["unapply"],
        serde_json::json!(["0004_order_code", "0003_order_badge"])
    );
    assert_eq!(plan["steps"][1]["app"], "members");
    assert_eq!(
        plan["unapply"][0],
        serde_json::json!(["shop", "0004_order_code"])
    );
    assert_eq!(
        plan["commands"][0],
        "python manage.py migrate shop 0002_product_sku"
    );
    assert!(
        plan["data_loss"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["what"] == "drops column shop_order.badge_id")
    );
}

#[test]
fn upgrade_is_safe() {
    let mut r = shop_repo();
    r.write("stack.yml", STACK.replace("TAG", "1"));
    r.commit("deploy 1", None);
    r.write("stack.yml", STACK.replace("TAG", "2"));
    r.tagback()
        .arg("check")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("upgrade"));
}

#[test]
fn text_output_names_the_commands_and_the_line() {
    let r = shop_repo();
    r.write("stack.yml", STACK.replace("TAG", "1"));
    r.tagback()
        .arg("check")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("[BLOCKED] web: downgrade"))
        .stdout(predicate::str::contains("stack.yml:3"))
        .stdout(predicate::str::contains(
            "python manage.py migrate shop 0002_product_sku",
        ));
}

#[test]
fn markdown_summary() {
    let r = shop_repo();
    r.write("stack.yml", STACK.replace("TAG", "1"));
    r.tagback()
        .args(["check", "--format", "markdown"])
        .assert()
        .code(1)
        .stdout(predicate::str::starts_with("### ❌ tagback"));
}

#[test]
fn non_django_service_configured_off_is_not_blocked() {
    let mut r = shop_repo();
    r.write(".tagback.yml", "services:\n  nginx:\n    django: false\n");
    r.commit("config", None);
    r.write(
        "stack.yml",
        STACK
            .replace("TAG", "2")
            .replace("nginx:1.25", "nginx:1.24"),
    );
    let out = r.run_json(&["check", "--format", "json"], 0);
    let v = out;
    assert_eq!(v["services"][0]["service"], "nginx");
    assert_eq!(v["services"][0]["direction"], "downgrade");
    assert!(v["services"][0]["plan"].is_null());
}

#[test]
fn unresolvable_downgrade_is_not_waved_through() {
    let r = shop_repo();
    r.write(
        "stack.yml",
        STACK
            .replace("TAG", "2")
            .replace("nginx:1.25", "nginx:1.24"),
    );
    r.tagback()
        .arg("check")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("no git revision"))
        .stdout(predicate::str::contains("django: false"));
}

#[test]
fn sha_tags_use_ancestry() {
    let r = shop_repo();
    let v1 = String::from_utf8(r.git(&["rev-parse", "v1"]).stdout)
        .unwrap()
        .trim()
        .to_string();
    let v2 = String::from_utf8(r.git(&["rev-parse", "v2"]).stdout)
        .unwrap()
        .trim()
        .to_string();
    let mut r = r;
    r.write("stack.yml", STACK.replace("TAG", &v2));
    r.commit("deploy sha", None);
    r.write("stack.yml", STACK.replace("TAG", &v1));
    let out = r.run_json(&["check", "--format", "json"], 1);
    assert_eq!(out["services"][0]["direction"], "downgrade");
}

#[test]
fn numeric_tags_never_resolve_to_commit_id_prefixes() {
    let mut r = shop_repo();
    // A tag that is not a git tag but is a prefix of a commit id.
    let head = String::from_utf8(r.git(&["rev-parse", "HEAD"]).stdout).unwrap();
    let prefix: String = head.chars().take(4).collect();
    r.write(
        "stack.yml",
        STACK.replace("TAG", "2").replace(
            "nginx:1.25",
            &format!("registry.example.com:5000/shop:{prefix}"),
        ),
    );
    r.commit("odd", None);
    r.write(
        "stack.yml",
        STACK
            .replace("TAG", "2")
            .replace("nginx:1.25", "registry.example.com:5000/shop:1"),
    );
    let out = r.run_json(&["check", "--format", "json"], 1);
    let v = out;
    assert_eq!(v["services"][0]["from_rev"], serde_json::Value::Null, "{v}");
}

#[test]
fn sideways_move_onto_a_hotfix_branch_needs_backward_migrations() {
    let mut r = shop_repo();
    r.git(&["checkout", "-q", "-b", "hotfix", "v1"]);
    r.write("shop/views.py", "# hotfix\n");
    r.commit("hotfix", Some("v1.0.1"));
    r.git(&["checkout", "-q", "main"]);
    r.write("stack.yml", STACK.replace("TAG", "1.0.1"));
    let out = r.run_json(&["check", "--format", "json"], 1);
    let v = out;
    // By tag 2 -> 1.0.1 is older, but 1.0.1 is not an ancestor of 2.
    assert_eq!(v["services"][0]["direction"], "sideways");
    assert_eq!(
        v["services"][0]["plan"]["unapply"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

// ---------------------------------------------------------------- plan

#[test]
fn plan_json_contract() {
    let r = shop_repo();
    let out = r.run_json(
        &[
            "plan", "--repo", ".", "--from", "v2", "--to", "v1", "--format", "json",
        ],
        0,
    );
    let v = out;
    for key in [
        "from",
        "to",
        "steps",
        "unapply",
        "irreversible",
        "data_loss",
        "commands",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["from"], "v2");
    assert_eq!(v["to"], "v1");
}

#[test]
fn empty_plan_for_an_upgrade_and_for_identical_revisions() {
    let r = shop_repo();
    for (from, to) in [("v1", "v2"), ("v2", "v2")] {
        let out = r.run_json(&["plan", "--from", from, "--to", to, "--format", "json"], 0);
        assert_eq!(out["unapply"], serde_json::json!([]));
    }
}

#[test]
fn irreversible_operation_is_found_with_file_and_line() {
    let mut r = shop_repo();
    r.write(
        "shop/migrations/0005_backfill.py",
        "from django.db import migrations\n\n\ndef fill(apps, schema_editor):\n    pass\n\n\nclass Migration(migrations.Migration):\n    dependencies = [(\"shop\", \"0004_order_code\")]\n    operations = [\n        migrations.RunPython(fill),\n    ]\n",
    );
    r.commit("v3", Some("v3"));
    let args = ["plan", "--from", "v3", "--to", "v1", "--format", "json"];
    let v = r.run_json(&args, 0);
    let i = &v["irreversible"][0];
    assert_eq!(i["app"], "shop");
    assert_eq!(i["migration"], "0005_backfill");
    assert_eq!(i["operation"], "RunPython");
    assert_eq!(i["file"], "shop/migrations/0005_backfill.py");
    assert_eq!(i["line"], 11);
    // The second run reads the graph from the on-disk cache, which leaves
    // operations out: the plan must be the same.
    assert!(r.path().join(".git/tagback/cache").is_dir());
    assert_eq!(r.run_json(&args, 0), v);
}

/// A minimal project whose `shop` app has the given migrations:
/// `(name, dependencies, replaces)`.
fn write_shop(r: &TestRepo, migrations: &[(&str, &[&str], &[&str])]) {
    proj_site(r, "INSTALLED_APPS = ['django.contrib.auth', 'shop']\n");
    r.write("shop/__init__.py", "");
    r.write("shop/migrations/__init__.py", "");
    for (name, deps, replaces) in migrations {
        let deps: String = deps.iter().map(|d| format!("('shop', '{d}'), ")).collect();
        let replaces: String = replaces
            .iter()
            .map(|d| format!("('shop', '{d}'), "))
            .collect();
        r.write(
            &format!("shop/migrations/{name}.py"),
            format!("from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n    replaces = [{replaces}]\n    dependencies = [{deps}]\n    operations = []\n"),
        );
    }
}

/// `APP/migrations/NAME.py`, with the packages around it, depending on `deps`
/// and running `operations` (Python, as written inside the list).
fn write_migration(r: &TestRepo, app: &str, name: &str, deps: &[(&str, &str)], operations: &str) {
    r.write(&format!("{app}/__init__.py"), "");
    r.write(&format!("{app}/migrations/__init__.py"), "");
    let deps: String = deps
        .iter()
        .map(|(a, n)| format!("('{a}', '{n}'), "))
        .collect();
    r.write(
        &format!("{app}/migrations/{name}.py"),
        format!("from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n    dependencies = [{deps}]\n    operations = [{operations}]\n"),
    );
}

#[test]
fn nested_squash_target_is_the_outer_squash() {
    // Django >= 6.0 squashes squashes; its loader treats the outer squash as
    // standing for everything it replaces, recursively.
    let mut r = TestRepo::new();
    let v1: &[(&str, &[&str], &[&str])] = &[
        ("0001_initial", &[], &[]),
        ("0002_b", &["0001_initial"], &[]),
        ("0003_c", &["0002_b"], &[]),
        ("0001_squashed_0002_b", &[], &["0001_initial", "0002_b"]),
    ];
    write_shop(&r, v1);
    r.commit("v1", Some("v1"));
    let mut v2 = v1.to_vec();
    v2.push((
        "0001_squashed_0003_c",
        &[],
        &["0001_squashed_0002_b", "0003_c"],
    ));
    v2.push(("0004_d", &["0003_c"], &[]));
    write_shop(&r, &v2);
    r.commit("v2", Some("v2"));
    let out = r.run_json(
        &["plan", "--from", "v2", "--to", "v1", "--format", "json"],
        0,
    );
    let v = out;
    assert_eq!(v["steps"][0]["target"], "0001_squashed_0003_c");
    assert_eq!(v["unapply"], serde_json::json!([["shop", "0004_d"]]));
    assert_eq!(v["problems"], serde_json::json!([]));
}

/// NetBox 4.0 squashed its 3.x migrations and deleted the replaced files:
/// the older leaf is reached through the squash that lists it (Django's
/// `migrate users 0002_squashed_0004`), not refused as missing.
#[test]
fn corpus_older_leaf_replaced_by_a_squash_whose_replaced_files_are_gone() {
    let mut r = TestRepo::new();
    let v1: &[(&str, &[&str], &[&str])] = &[
        ("0001_initial", &[], &[]),
        ("0002_b", &["0001_initial"], &[]),
        ("0003_c", &["0002_b"], &[]),
    ];
    write_shop(&r, v1);
    r.commit("v1", Some("v1"));
    for (name, _, _) in v1 {
        r.remove(&format!("shop/migrations/{name}.py"));
    }
    write_shop(
        &r,
        &[
            ("0001_squashed_0001", &[], &["0001_initial"]),
            (
                "0002_squashed_0003",
                &["0001_squashed_0001"],
                &["0002_b", "0003_c"],
            ),
            ("0004_d", &["0002_squashed_0003"], &[]),
        ],
    );
    r.commit("v2", Some("v2"));
    let v = r.run_json(
        &["plan", "--from", "v2", "--to", "v1", "--format", "json"],
        0,
    );
    assert_eq!(v["problems"], serde_json::json!([]));
    assert_eq!(v["steps"][0]["target"], "0002_squashed_0003");
    assert_eq!(v["unapply"], serde_json::json!([["shop", "0004_d"]]));
}

#[test]
fn latest_dependency_from_an_unchanged_app_is_caught_with_full() {
    // `("shop", "__latest__")` in an app that did not change makes it depend on
    // the newer leaf: unapplying shop's new migrations would unapply it too.
    let mut r = TestRepo::new();
    write_shop(&r, &[("0001_initial", &[], &[])]);
    r.write("proj/settings.py", "INSTALLED_APPS = ['shop', 'blog']\n");
    write_migration(&r, "blog", "0001_initial", &[("shop", "__latest__")], "");
    r.commit("v1", Some("v1"));
    write_shop(
        &r,
        &[
            ("0001_initial", &[], &[]),
            ("0002_more", &["0001_initial"], &[]),
        ],
    );
    r.write("proj/settings.py", "INSTALLED_APPS = ['shop', 'blog']\n");
    r.commit("v2", Some("v2"));
    let out = r.run_json(
        &[
            "plan", "--from", "v2", "--to", "v1", "--full", "--format", "json",
        ],
        0,
    );
    let problems = out["problems"].to_string();
    assert!(problems.contains("blog.0001_initial"), "{problems}");
}

#[test]
fn huge_stack_file_is_refused() {
    let r = shop_repo();
    let mut big = String::from("services:\n  web:\n    image: shop:1\n");
    big.push_str(&"# padding\n".repeat(1_000_000));
    r.write("stack.yml", big);
    r.tagback()
        .arg("check")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("larger than 8 MiB"));
}

// ---------------------------------------------------------------- bad input

fn with_stack(name: &str) -> TestRepo {
    let mut r = shop_repo();
    r.write(
        "stack.yml",
        std::fs::read(fixture(&format!("stack/{name}"))).unwrap(),
    );
    r.commit("bad stack", None);
    r
}

#[test]
fn malformed_yaml_names_file_revision_and_line() {
    let r = with_stack("malformed.yml");
    r.tagback()
        .arg("check")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("stack.yml at HEAD"))
        .stderr(predicate::str::contains("line"))
        .stderr(predicate::str::contains("panicked").not());
}

#[test]
fn alias_bomb_is_refused_quickly() {
    let r = with_stack("alias_bomb.yml");
    r.tagback()
        .arg("check")
        .timeout(std::time::Duration::from_secs(20))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("stack.yml at HEAD"));
}

#[test]
fn required_variable_unset_is_an_error_with_the_message() {
    let r = with_stack("required_var.yml");
    r.tagback()
        .arg("check")
        .env_remove("SHOP_TAG")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("line 3"))
        .stderr(predicate::str::contains("set SHOP_TAG to the release"));
}

#[test]
fn interpolation_reads_the_dotenv_file_at_the_same_revision() {
    let mut r = shop_repo();
    r.write(
        "stack.yml",
        "services:\n  web:\n    image: registry.example.com:5000/shop:${SHOP_TAG}\n",
    );
    r.write(".env", "SHOP_TAG=2\n");
    r.commit("dotenv", None);
    r.write(".env", "SHOP_TAG=1\n");
    r.tagback()
        .arg("check")
        .env_remove("SHOP_TAG")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("downgrade"));
}

#[test]
fn unknown_revision_and_non_utf8_and_not_a_repo() {
    let r = shop_repo();
    r.tagback()
        .args(["plan", "--from", "v9", "--to", "v1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("revision \"v9\" not found"));
    r.write(
        "stack.yml",
        b"services:\n  web:\n    image: \xff\xfe\n".as_slice(),
    );
    r.tagback()
        .arg("check")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not valid UTF-8"));
    let empty = tempfile::tempdir().unwrap();
    r.tagback()
        .args(["plan", "--repo"])
        .arg(empty.path())
        .args(["--from", "a", "--to", "b"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a git repository"));
}

fn with_bad_migration(fixture_name: &str) -> TestRepo {
    let mut r = shop_repo();
    r.write(
        "shop/migrations/0005_bad.py",
        std::fs::read(fixture(&format!("django/err/{fixture_name}"))).unwrap(),
    );
    r.commit("v3", Some("v3"));
    r
}

/// `plan` on a repository whose v3 adds a bad migration fails with exit 2
/// and a message containing `expected`.
fn assert_bad_migration(fixture_name: &str, expected: &str) {
    with_bad_migration(fixture_name)
        .tagback()
        .args(["plan", "--from", "v3", "--to", "v1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(expected));
}

#[test]
fn unparsable_python_names_file_revision_and_line() {
    assert_bad_migration("unparsable.py", "shop/migrations/0005_bad.py at v3 line");
}

#[test]
fn migration_without_migration_class() {
    assert_bad_migration(
        "no_migration_class.py",
        "0005_bad.py at v3: has no Migration class",
    );
}

#[test]
fn dependency_on_a_missing_migration() {
    assert_bad_migration(
        "missing_dependency.py",
        "depends on shop.0099_missing, which does not exist",
    );
}

#[test]
fn dependency_cycle() {
    let mut r = shop_repo();
    let p = "shop/migrations/0001_initial.py";
    let text = r.read(p).replace(
        "dependencies = [",
        "dependencies = [\n        ('shop', '0004_order_code'),",
    );
    r.write(p, text);
    r.commit("cycle", Some("v3"));
    r.tagback()
        .args(["plan", "--from", "v3", "--to", "v1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("circular dependency"));
}

#[test]
fn shallow_clone_missing_the_old_commit_says_so() {
    let r = shop_repo();
    let clone = tempfile::tempdir().unwrap();
    let url = format!("file://{}", r.path().display());
    let out = common::git_command(clone.path(), r.home.path())
        .args(["clone", "-q", "--depth", "1", &url, "c"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut cmd = assert_cmd::Command::cargo_bin("tagback").unwrap();
    cmd.current_dir(clone.path().join("c"))
        .args(["plan", "--from", "HEAD", "--to", "HEAD~1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("shallow clone"));
}

// ---------------------------------------------------------------- hooks

#[test]
fn pre_push_rejects_garbage_on_stdin() {
    let r = shop_repo();
    r.tagback()
        .args(["hook", "pre-push", "origin", "x"])
        .write_stdin("this is not git\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("pre-push hook input line 1"));
}

#[test]
fn pre_push_protocol_blocks_a_downgrade_and_skips_deletes() {
    let mut r = shop_repo();
    let v2 = String::from_utf8(r.git(&["rev-parse", "HEAD"]).stdout)
        .unwrap()
        .trim()
        .to_string();
    r.write("stack.yml", STACK.replace("TAG", "1"));
    r.commit("roll back", None);
    let head = String::from_utf8(r.git(&["rev-parse", "HEAD"]).stdout)
        .unwrap()
        .trim()
        .to_string();
    let zero = "0".repeat(40);
    let stdin = format!(
        "refs/heads/main {head} refs/heads/main {v2}\n(delete) {zero} refs/heads/gone {v2}\n"
    );
    r.tagback()
        .args(["hook", "pre-push", "origin", "url"])
        .write_stdin(stdin)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("BLOCKED"));
    let stdin = format!("refs/heads/main {v2} refs/heads/main {v2}\n");
    r.tagback()
        .args(["hook", "pre-push", "origin", "url"])
        .write_stdin(stdin)
        .assert()
        .code(0);
}

#[test]
fn pre_commit_compares_the_index_with_head() {
    let r = shop_repo();
    r.write("stack.yml", STACK.replace("TAG", "1"));
    r.tagback().args(["hook", "pre-commit"]).assert().code(0);
    r.git(&["add", "stack.yml"]);
    r.tagback()
        .args(["hook", "pre-commit"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("downgrade"));
}

fn install_tagback_hooks(r: &TestRepo) {
    r.tagback().arg("install").assert().code(0);
}

fn path_with_tagback() -> String {
    let bin = assert_cmd::cargo::cargo_bin("tagback");
    format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn real_git_push_through_the_installed_hook() {
    let mut r = shop_repo();
    let remote = tempfile::tempdir().unwrap();
    common::git_command(remote.path(), r.home.path())
        .args(["init", "-q", "--bare", "r.git"])
        .output()
        .unwrap();
    let url = remote.path().join("r.git");
    r.git(&["remote", "add", "origin", url.to_str().unwrap()]);
    install_tagback_hooks(&r);
    let push = |r: &TestRepo| {
        common::git_command(r.path(), r.home.path())
            .env("PATH", path_with_tagback())
            .env("NO_COLOR", "1")
            .args(["push", "-q", "origin", "main"])
            .output()
            .unwrap()
    };
    // First push of a new branch: nothing on the remote to compare with.
    assert!(push(&r).status.success());
    // Upgrade-neutral change: allowed.
    r.write("README", "hello\n");
    r.commit("docs", None);
    assert!(push(&r).status.success());
    // Downgrade: the pre-commit hook refuses the commit...
    r.write("stack.yml", STACK.replace("TAG", "1"));
    r.git(&["add", "-A"]);
    let commit = common::git_command(r.path(), r.home.path())
        .args(["commit", "-q", "-m", "roll back"])
        .output()
        .unwrap();
    assert!(
        !commit.status.success(),
        "pre-commit hook should refuse the commit"
    );
    // ...and when it is bypassed, the pre-push hook blocks the push; the remote keeps its commit.
    r.commit("roll back web to 1", None);
    let out = push(&r);
    assert!(!out.status.success(), "push should be blocked");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("BLOCKED")
            || String::from_utf8_lossy(&out.stdout).contains("BLOCKED")
    );
    // Going forward again is allowed.
    r.write("stack.yml", STACK.replace("TAG", "2"));
    r.commit("back to 2", None);
    assert!(push(&r).status.success());
}

#[test]
fn install_chains_an_existing_hook_is_idempotent_and_uninstalls() {
    let r = shop_repo();
    let hooks = r.path().join(".git/hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(hooks.join("pre-commit"), "#!/bin/sh\necho mine\n").unwrap();
    r.tagback()
        .arg("install")
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "kept the existing pre-commit hook",
        ));
    assert_eq!(
        std::fs::read_to_string(hooks.join("pre-commit.tagback-chained")).unwrap(),
        "#!/bin/sh\necho mine\n"
    );
    let installed = std::fs::read_to_string(hooks.join("pre-commit")).unwrap();
    assert!(installed.contains("\"$tagback\" hook pre-commit"));
    r.tagback()
        .arg("install")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("already installed"));
    assert_eq!(
        std::fs::read_to_string(hooks.join("pre-commit.tagback-chained")).unwrap(),
        "#!/bin/sh\necho mine\n"
    );
    r.tagback()
        .args(["install", "--uninstall"])
        .assert()
        .code(0);
    assert_eq!(
        std::fs::read_to_string(hooks.join("pre-commit")).unwrap(),
        "#!/bin/sh\necho mine\n"
    );
    assert!(!hooks.join("pre-push").exists());
}

#[test]
fn install_respects_core_hooks_path() {
    let r = shop_repo();
    r.git(&["config", "core.hooksPath", "githooks"]);
    r.tagback().arg("install").assert().code(0);
    assert!(r.path().join("githooks/pre-push").exists());
}

// ---------------------------------------------------------------- script

#[test]
fn generated_script_is_valid_bash_and_shellcheck_clean() {
    let r = shop_repo();
    r.write("stack.yml", STACK.replace("TAG", "1"));
    r.tagback()
        .args(["script", "--service", "web", "-o", "rollback.sh"])
        .assert()
        .code(0);
    let script = r.path().join("rollback.sh");
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(text.starts_with("#!/usr/bin/env bash\n"));
    assert!(text.contains("set -euo pipefail"));
    assert!(text.contains("  backward shop 0002_product_sku\n"));
    let n = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(n.status.success(), "{}", String::from_utf8_lossy(&n.stderr));
    match std::process::Command::new("shellcheck")
        .arg(&script)
        .output()
    {
        Ok(sc) => assert!(
            sc.status.success(),
            "{}",
            String::from_utf8_lossy(&sc.stdout)
        ),
        Err(_) if std::env::var("TAGBACK_REQUIRE_SHELLCHECK").is_err() => {
            eprintln!("shellcheck not installed; skipped")
        }
        Err(e) => panic!("shellcheck required: {e}"),
    }
}

#[test]
fn script_without_a_stack_file() {
    let r = shop_repo();
    let out = r
        .tagback()
        .args([
            "script",
            "--repo",
            ".",
            "--from",
            "v2",
            "--to",
            "v1",
            "--service",
            "web",
            "--image",
            "registry.example.com:5000/shop:1",
        ])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("FROM_IMAGE='registry.example.com:5000/shop:2'"),
        "derived from --from v2"
    );
}

#[test]
fn hostile_service_names_are_rejected() {
    let r = shop_repo();
    for bad in ["web;rm -rf /", "$(id)", "a b"] {
        r.tagback()
            .args([
                "script",
                "--repo",
                ".",
                "--from",
                "v2",
                "--to",
                "v1",
                "--image",
                "shop:1",
                "--current-image",
                "shop:2",
                "--service",
                bad,
            ])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(
                "not a name Docker or Django accepts",
            ));
    }
}

#[test]
fn irreversible_plan_refuses_a_script_unless_manual_steps_are_asked_for() {
    let mut r = shop_repo();
    r.write(
        "shop/migrations/0005_backfill.py",
        "from django.db import migrations\n\n\ndef fill(apps, schema_editor):\n    pass\n\n\nclass Migration(migrations.Migration):\n    dependencies = [(\"shop\", \"0004_order_code\")]\n    operations = [migrations.RunPython(fill)]\n",
    );
    r.commit("v3", Some("v3"));
    let args = [
        "script",
        "--repo",
        ".",
        "--from",
        "v3",
        "--to",
        "v1",
        "--service",
        "web",
        "--image",
        "shop:1",
        "--current-image",
        "shop:3",
    ];
    r.tagback()
        .args(args)
        .assert()
        .code(1)
        // On stderr: stdout is where the script goes (`> rollback.sh`).
        .stdout("")
        .stderr(predicate::str::contains(
            "shop/migrations/0005_backfill.py:10",
        ));
    let out = r
        .tagback()
        .args(args)
        .arg("--allow-manual-steps")
        .assert()
        .code(0)
        .get_output()
        .clone();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("# MANUAL STEP 1"));
    assert!(text.contains("    backward shop 0005_backfill\n"));
    assert!(text.contains("    backward shop 0004_order_code --fake\n"));
}

#[test]
fn release_artifact_for_an_upgrade() {
    let mut r = shop_repo();
    r.write("stack.yml", STACK.replace("TAG", "1"));
    r.commit("deploy 1", None);
    r.write("stack.yml", STACK.replace("TAG", "2"));
    r.commit("release 2", None);
    r.tagback()
        .args([
            "script",
            "--from",
            "HEAD~1",
            "--to",
            "HEAD",
            "--release-artifact",
            "out",
        ])
        .assert()
        .code(0);
    let summary = r.read("out/web/summary.md");
    assert!(
        summary.lines().next().unwrap().contains("drops data"),
        "{summary}"
    );
    assert!(r.path().join("out/web/rollback.sh").exists());
    let plan: serde_json::Value = serde_json::from_str(&r.read("out/web/plan.json")).unwrap();
    assert_eq!(plan["from"], "v2");
}

/// Every `tagback …` command quoted in backticks in `text`.
fn hinted_commands(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|c| c.starts_with("tagback "))
        .map(str::to_string)
        .collect()
}

/// Run a command exactly as a person would paste it, in the repository.
fn paste(r: &TestRepo, command: &str) -> std::process::Output {
    let mut c = std::process::Command::new("bash");
    c.arg("-c")
        .arg(command)
        .current_dir(r.path())
        .env("PATH", path_with_tagback())
        .env("NO_COLOR", "1")
        .env("HOME", r.home.path());
    for (k, _) in std::env::vars() {
        if k.starts_with("GIT_") {
            c.env_remove(k);
        }
    }
    c.output().unwrap()
}

// See: issue 14 item 5 ("hints that work verbatim").
#[test]
fn r14_the_pre_push_hint_after_a_committed_downgrade_works_when_pasted() {
    let mut r = shop_repo();
    r.write(
        ".tagback.yml",
        "services:\n  web:\n    command: \"python3 manage.py\"\n",
    );
    r.commit("configure", None);
    let before = String::from_utf8(r.git(&["rev-parse", "HEAD"]).stdout).unwrap();
    r.write("stack.yml", STACK.replace("TAG", "1"));
    r.commit("roll web back", None);
    let head = String::from_utf8(r.git(&["rev-parse", "HEAD"]).stdout).unwrap();
    let out = r
        .tagback()
        .args(["hook", "pre-push", "origin", "url"])
        .write_stdin(format!(
            "refs/heads/main {} refs/heads/main {}\n",
            head.trim(),
            before.trim()
        ))
        .assert()
        .code(1)
        .get_output()
        .clone();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("1. python3 manage.py migrate shop 0002_product_sku"),
        "the configured command: {text}"
    );
    let hints = hinted_commands(&text);
    let [script, record] = hints.as_slice() else {
        panic!("expected a script and a record hint: {text}");
    };
    assert!(
        script.contains(" --from ")
            && script.contains(" --to ")
            && script.contains(" --service web"),
        "{script}"
    );
    let ran = paste(&r, script);
    assert!(
        ran.status.success(),
        "`{script}`: {}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let rollback = r.read("rollback.sh");
    assert!(
        rollback.contains("MANAGE=(python3 manage.py)"),
        "configured command in the script"
    );
    assert!(
        rollback.contains("RECORD_ARGS=(record --from "),
        "the banner's record command names revisions"
    );
    r.write("evidence.txt", EVIDENCE_AFTER);
    let record = record.replace("FILE", "evidence.txt");
    let ran = paste(&r, &record);
    assert!(
        ran.status.success(),
        "`{record}`: {}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert!(
        String::from_utf8_lossy(&ran.stdout).contains("recorded"),
        "{}",
        String::from_utf8_lossy(&ran.stdout)
    );
}

#[test]
fn r14_the_banner_record_command_of_a_generated_script_works_when_pasted() {
    let mut r = shop_repo();
    r.write("stack.yml", STACK.replace("TAG", "1"));
    r.commit("roll web back", None);
    r.tagback()
        .args([
            "script",
            "--from",
            "HEAD~1",
            "--to",
            "HEAD",
            "--service",
            "web",
            "-o",
            "rollback.sh",
        ])
        .assert()
        .code(0);
    // The array the banner prints, expanded by bash exactly as the script does.
    let text = r.read("rollback.sh");
    let line = text
        .lines()
        .find(|l| l.starts_with("RECORD_ARGS=("))
        .unwrap();
    // A later commit (the record itself is one) must not change what it names.
    r.write("notes.txt", "later work\n");
    r.commit("later", None);
    r.write("evidence.txt", EVIDENCE_AFTER);
    let ran = paste(
        &r,
        &format!("{line}; tagback \"${{RECORD_ARGS[@]}}\" --evidence evidence.txt"),
    );
    assert!(
        ran.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&ran.stderr)
    );
}

#[test]
fn r14_release_artifact_fails_when_the_upgrade_cannot_be_planned() {
    let mut r = shop_repo();
    r.write("stack.yml", STACK.replace("TAG", "3"));
    r.commit("release 3, whose tag this clone lacks", None);
    r.tagback()
        .args([
            "script",
            "--from",
            "HEAD~1",
            "--to",
            "HEAD",
            "--release-artifact",
            "out",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot plan the rollback of web"))
        .stderr(predicate::str::contains("git fetch --tags"));
    assert!(!r.path().join("out").exists(), "nothing half-written");
}

#[test]
fn r14_release_artifact_with_manual_steps_writes_the_script() {
    let mut r = shop_repo();
    r.write(
        "shop/migrations/0005_backfill.py",
        "from django.db import migrations\n\n\ndef fill(apps, schema_editor):\n    pass\n\n\nclass Migration(migrations.Migration):\n    dependencies = [(\"shop\", \"0004_order_code\")]\n    operations = [migrations.RunPython(fill)]\n",
    );
    r.write("stack.yml", STACK.replace("TAG", "3"));
    r.commit("release 3", Some("v3"));
    let args = [
        "script",
        "--from",
        "HEAD~1",
        "--to",
        "HEAD",
        "--release-artifact",
        "out",
    ];
    r.tagback()
        .args(args)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("no rollback.sh for web"));
    assert!(r.path().join("out/web/summary.md").exists());
    assert!(!r.path().join("out/web/rollback.sh").exists());
    r.tagback()
        .args(args)
        .arg("--allow-manual-steps")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("wrote out/web/rollback.sh"));
    let script = r.read("out/web/rollback.sh");
    assert!(script.contains("# MANUAL STEP 1"), "{script}");
    assert!(script.contains("FROM_IMAGE='registry.example.com:5000/shop:3'"));
    assert!(script.contains("TO_IMAGE='registry.example.com:5000/shop:2'"));
}

// ---------------------------------------------------------------- record and gate

const EVIDENCE_AFTER: &str = "members\n [X] 0001_initial\n [ ] 0002_badge\n [ ] 0003_normalize_nicknames\nshop\n [X] 0001_initial\n [X] 0002_product_sku\n [ ] 0003_order_badge\n [ ] 0004_order_code\n";
const EVIDENCE_BEFORE: &str = "members\n [X] 0001_initial\n [X] 0002_badge\n [X] 0003_normalize_nicknames\nshop\n [X] 0001_initial\n [X] 0002_product_sku\n [X] 0003_order_badge\n [X] 0004_order_code\n";

#[test]
fn record_refuses_evidence_taken_before_the_rollback_then_gate_passes_after() {
    let mut r = shop_repo();
    r.write("stack.yml", STACK.replace("TAG", "1"));
    r.commit("roll back web", None);
    let gate = ["gate", "--from", "HEAD~1", "--to", "HEAD"];
    r.tagback().args(gate).assert().code(1);
    r.write("before.txt", EVIDENCE_BEFORE);
    let rec = [
        "record",
        "--from",
        "HEAD~1",
        "--to",
        "HEAD",
        "--service",
        "web",
        "--evidence",
    ];
    r.tagback()
        .args(rec)
        .arg("before.txt")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("still applied"));
    r.write("truncated.txt", &EVIDENCE_AFTER[..60]);
    r.tagback()
        .args(rec)
        .arg("truncated.txt")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("missing from the evidence"));
    r.write("after.txt", EVIDENCE_AFTER);
    r.tagback()
        .args(rec)
        .arg("after.txt")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("recorded web"));
    r.remove("before.txt");
    r.remove("truncated.txt");
    r.remove("after.txt");
    r.commit("record", None);
    r.tagback()
        .args(["gate", "--from", "HEAD~2", "--to", "HEAD"])
        .assert()
        .code(0);
    // Someone adds a migration to the newer code: the record no longer matches.
    r.write(
        "shop/migrations/0005_more.py",
        "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n    dependencies = [(\"shop\", \"0004_order_code\")]\n    operations = []\n",
    );
    r.commit("more", None);
    r.git(&["tag", "-f", "v2"]);
    r.tagback()
        .args(["gate", "--from", "HEAD~3", "--to", "HEAD"])
        .assert()
        .code(1)
        .stdout(
            predicate::str::contains("no longer").or(predicate::str::contains("the plan is now")),
        );
}

#[test]
fn concurrent_records_both_land_and_a_partial_file_does_not_count() {
    let r = shop_repo();
    r.write("stack.yml", STACK.replace("TAG", "1"));
    r.write("after.txt", EVIDENCE_AFTER);
    let bin = assert_cmd::cargo::cargo_bin("tagback");
    let spawn = || {
        std::process::Command::new(&bin)
            .current_dir(r.path())
            .args(["record", "--service", "web", "--evidence", "after.txt"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn(), spawn());
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    let dir = r.path().join(".tagback/records");
    let records: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .collect();
    assert_eq!(records.len(), 2, "both records land");
    // An interrupted write leaves a temp file, never a record.
    std::fs::write(dir.join(".tmp-abc.partial"), "{\"version\": 1, \"serv").unwrap();
    r.tagback().arg("check").assert().code(0);
}

#[test]
fn malformed_ledger_file_is_an_error_not_a_pass() {
    let r = shop_repo();
    r.write("stack.yml", STACK.replace("TAG", "1"));
    r.write(
        ".tagback/records/forged.json",
        "{\"version\": 1, \"service\": \"web\"}",
    );
    r.tagback()
        .arg("check")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("forged.json"));
}

#[test]
fn unreachable_database_url_is_a_clear_error() {
    let r = shop_repo();
    r.write("stack.yml", STACK.replace("TAG", "1"));
    r.tagback()
        .args([
            "record",
            "--service",
            "web",
            "--database-url",
            "postgres://postgres:secret@127.0.0.1:1/shop",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "cannot connect to postgres://postgres:***@127.0.0.1:1/shop",
        ));
    r.tagback()
        .args([
            "record",
            "--service",
            "web",
            "--database-url",
            "sqlite:///nonexistent/db.sqlite3",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("does not exist"));
}

#[test]
fn demo_runs_without_setup() {
    let out = assert_cmd::Command::cargo_bin("tagback")
        .unwrap()
        .arg("demo")
        .env("NO_COLOR", "1")
        .assert()
        .code(0)
        .get_output()
        .clone();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("[BLOCKED] web: downgrade"));
    assert!(text.contains("python manage.py migrate shop 0002_product_sku"));
}

#[test]
fn warm_caches_never_change_a_plan() {
    // Every plan computed with the on-disk caches (parse cache, project
    // records, probes) equals the plan computed from git objects alone, as
    // settings, apps and migrations change from revision to revision.
    let mut r = TestRepo::new();
    write_shop(&r, &[("0001_initial", &[], &[])]);
    write_migration(&r, "blog", "0001_initial", &[("shop", "0001_initial")], "");
    r.commit("v1", Some("v1"));
    write_shop(
        &r,
        &[
            ("0001_initial", &[], &[]),
            ("0002_more", &["0001_initial"], &[]),
        ],
    );
    r.commit("v2", Some("v2"));
    // Blog joins INSTALLED_APPS, with a new migration depending on shop's.
    r.write(
        "proj/settings.py",
        "INSTALLED_APPS = ['django.contrib.auth', 'shop', 'blog']\n",
    );
    write_migration(
        &r,
        "blog",
        "0002_tags",
        &[("blog", "0001_initial"), ("shop", "0002_more")],
        "migrations.RunPython(lambda a, s: None)",
    );
    r.commit("v3", Some("v3"));
    // Blog's app config renames its label; shop squashes.
    r.write(
        "blog/apps.py",
        "from django.apps import AppConfig\n\n\nclass BlogConfig(AppConfig):\n    name = 'blog'\n    label = 'journal'\n",
    );
    write_migration(
        &r,
        "blog",
        "0002_tags",
        &[("journal", "0001_initial"), ("shop", "0002_more")],
        "",
    );
    r.commit("v4", Some("v4"));
    let pairs = [
        ("v2", "v1"),
        ("v3", "v2"),
        ("v3", "v1"),
        ("v4", "v3"),
        ("v2", "v1"),
        ("v4", "v1"),
        ("v1", "v4"),
        ("v3", "v2"),
    ];
    for (from, to) in pairs {
        let args = ["plan", "--from", from, "--to", to, "--format", "json"];
        let warm = r.tagback().args(args).output().unwrap();
        let cold = r
            .tagback()
            .env("TAGBACK_NO_CACHE", "1")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            (
                warm.status.code(),
                String::from_utf8_lossy(&warm.stdout),
                String::from_utf8_lossy(&warm.stderr)
            ),
            (
                cold.status.code(),
                String::from_utf8_lossy(&cold.stdout),
                String::from_utf8_lossy(&cold.stderr)
            ),
            "{from} -> {to}"
        );
    }
    let cache = r.path().join(".git/tagback/cache");
    assert!(cache.is_dir());
    // The blog step of v3 -> v2 (blog only in the newer revision) survived
    // the caches: it is there, warm.
    let v = r.run_json(
        &["plan", "--from", "v3", "--to", "v2", "--format", "json"],
        0,
    );
    assert_eq!(v["steps"][0]["app"], "blog", "{v}");
    assert_eq!(v["steps"][0]["target"], "zero", "{v}");
}

// ---------------------------------------------------------------- config and contract additions

#[test]
fn plan_reads_the_repositorys_own_config_and_config_flag_overrides_it() {
    let r = shop_repo();
    let apps = |v: &serde_json::Value| -> Vec<String> {
        v["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["app"].as_str().unwrap().to_string())
            .collect()
    };
    let args = ["plan", "--from", "v2", "--to", "v1", "--format", "json"];
    assert_eq!(apps(&r.run_json(&args, 0)), ["shop", "members"]);
    // The repository's .tagback.yml says only `shop` is installed.
    r.write(
        ".tagback.yml",
        "services:\n  web:\n    installed_apps: [django.contrib.contenttypes, django.contrib.auth, shop]\n  nginx:\n    django: false\n",
    );
    let v = r.run_json(&args, 0);
    assert_eq!(v["version"], 1);
    assert_eq!(apps(&v), ["shop"]);
    // --config replaces it.
    r.write("other.yml", "services: {}\n");
    let mut with_config = vec!["--config", "other.yml"];
    with_config.extend(args);
    assert_eq!(apps(&r.run_json(&with_config, 0)), ["shop", "members"]);
    // A missing --config file is bad input naming it.
    r.tagback()
        .args(["--config", "nope.yml"])
        .args(args)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("nope.yml"));
    // Two Django services and no --service: say which to pick.
    r.write(".tagback.yml", "services:\n  web: {}\n  worker: {}\n");
    r.tagback()
        .args(args)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--service"));
    assert_eq!(
        apps(&r.run_json(&[&args[..], &["--service", "web"]].concat(), 0)),
        ["shop", "members"]
    );
}

#[test]
fn every_json_output_is_versioned_and_findings_have_codes() {
    let r = shop_repo();
    r.write("stack.yml", STACK.replace("TAG", "0.9"));
    let v = r.run_json(&["check", "--format", "json"], 1);
    assert_eq!(v["version"], 1);
    let note = &v["services"][0]["notes"][0];
    assert_eq!(note["code"], "unresolved-revision", "{v}");
    assert!(
        note["message"]
            .as_str()
            .unwrap()
            .contains("plan not computed")
    );
    r.write("stack.yml", STACK.replace("TAG", "1"));
    let v = r.run_json(&["check", "--format", "json"], 1);
    let plan = &v["services"][0]["plan"];
    for loss in plan["data_loss"].as_array().unwrap() {
        assert_eq!(loss["code"], "data-loss");
        assert!(
            loss["message"]
                .as_str()
                .unwrap()
                .contains(loss["what"].as_str().unwrap())
        );
    }
    assert!(!plan["data_loss"].as_array().unwrap().is_empty());
}

#[test]
fn github_format_annotates_the_stack_file_and_the_migrations() {
    let r = shop_repo();
    r.write("stack.yml", STACK.replace("TAG", "1"));
    let out = r
        .tagback()
        .args(["check", "--format", "github"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    insta::assert_snapshot!(String::from_utf8(out).unwrap());
    // The gate speaks the same format.
    r.tagback()
        .args(["gate", "--format", "github"])
        .assert()
        .code(1)
        .stdout(predicate::str::starts_with(
            "::error file=stack.yml,line=3,title=tagback unrecorded-backward-migrations (web)::",
        ));
}

#[test]
fn sarif_output_validates_against_the_official_schema() {
    let r = shop_repo();
    r.write("stack.yml", STACK.replace("TAG", "1"));
    let out = r
        .tagback()
        .args(["gate", "--format", "sarif"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let log: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(log["version"], "2.1.0");
    let results = log["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results[0]["ruleId"], "unrecorded-backward-migrations");
    assert_eq!(
        results[0]["locations"][0]["physicalLocation"]["region"]["startLine"],
        3
    );
    assert!(
        results
            .iter()
            .any(|x| x["ruleId"] == "data-loss" && x["level"] == "warning")
    );
    // The official OASIS schema (tests/fixtures/schemas) judges the log.
    validate_json(
        "tests/fixtures/schemas/sarif-schema-2.1.0.json",
        "Draft4Validator",
        &out,
    );
}

/// Validate `json` against a schema file of this repository with Python's
/// jsonschema from the test venv (./test.sh sets TAGBACK_TEST_PYTHON; CI
/// without it fails rather than skipping the check).
fn validate_json(schema: &str, validator: &str, json: &[u8]) {
    let Ok(python) = std::env::var("TAGBACK_TEST_PYTHON") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set TAGBACK_TEST_PYTHON so the schema checks run"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.json");
    std::fs::write(&file, json).unwrap();
    let schema = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(schema);
    let check = std::process::Command::new(python)
        .args([
            "-c",
            &format!("import json, sys, jsonschema; jsonschema.{validator}(json.load(open(sys.argv[1]))).validate(json.load(open(sys.argv[2])))"),
        ])
        .arg(&schema)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{} does not validate against {}: {}",
        String::from_utf8_lossy(json),
        schema.display(),
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn json_outputs_and_config_validate_against_the_published_schemas() {
    let r = shop_repo();
    let stdout = |args: &[&str], code: i32| {
        r.tagback()
            .args(args)
            .assert()
            .code(code)
            .get_output()
            .stdout
            .clone()
    };
    let plan = stdout(
        &["plan", "--from", "v2", "--to", "v1", "--format", "json"],
        0,
    );
    validate_json(
        "docs/schema/plan.schema.json",
        "Draft202012Validator",
        &plan,
    );
    r.write("stack.yml", STACK.replace("TAG", "1"));
    let check = stdout(&["check", "--format", "json"], 1);
    validate_json(
        "docs/schema/check.schema.json",
        "Draft202012Validator",
        &check,
    );
    r.write("stack.yml", STACK.replace("TAG", "0.9"));
    let check = stdout(&["gate", "--format", "json"], 1);
    validate_json(
        "docs/schema/check.schema.json",
        "Draft202012Validator",
        &check,
    );
    // The README's example configuration, as JSON (YAML's data model).
    let config = serde_json::json!({
        "stack": "shop", "files": ["stack.yml"], "ledger": ".tagback/records",
        "services": {
            "web": {"repo": "../shop-app", "ref": "release-{tag}", "manage_py": "src/manage.py",
                    "settings": "shop.settings", "installed_apps": ["shop"], "command": "python manage.py",
                    "strategy": "exec"},
            "nginx": {"django": false}
        }
    });
    validate_json(
        "docs/schema/tagback-yml.schema.json",
        "Draft202012Validator",
        config.to_string().as_bytes(),
    );
}

#[test]
fn an_upgrade_says_in_the_pull_request_when_it_could_not_be_rolled_back() {
    let mut r = shop_repo();
    r.write(
        "shop/migrations/0005_backfill.py",
        "from django.db import migrations\n\n\ndef fill(apps, schema_editor):\n    pass\n\n\nclass Migration(migrations.Migration):\n    dependencies = [(\"shop\", \"0004_order_code\")]\n    operations = [\n        migrations.RunPython(fill),\n    ]\n",
    );
    r.write("stack.yml", STACK.replace("TAG", "3"));
    r.commit("v3", Some("v3"));
    r.write("stack.yml", STACK.replace("TAG", "2"));
    r.commit("deploy 2", None);
    r.write("stack.yml", STACK.replace("TAG", "3"));
    // The upgrade itself is safe ...
    let v = r.run_json(&["check", "--format", "json"], 0);
    let web = &v["services"][0];
    assert_eq!(web["direction"], "upgrade");
    // ... and the plan that would roll it back is computed and shown.
    assert_eq!(web["rollback"]["irreversible"][0]["code"], "irreversible");
    let md = r
        .tagback()
        .args(["check", "--format", "markdown"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let md = String::from_utf8(md).unwrap();
    assert!(
        md.contains("This release could not be rolled back exactly")
            && md.contains("shop/migrations/0005_backfill.py:11"),
        "{md}"
    );
}

// ---------------------------------------------------------------- settings as real projects write them
// See: issue 11 ("Real Django projects, zero-config").

/// A project whose settings are `settings` (Python), with apps `shop` and
/// `blog` (one migration each at v1, a second at v2).
fn settings_repo(settings: &str) -> TestRepo {
    let mut r = TestRepo::new();
    r.write(
        "manage.py",
        "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')\n",
    );
    r.write("proj/__init__.py", "");
    r.write("proj/settings.py", settings);
    for app in ["shop", "blog", "debugonly"] {
        write_migration(&r, app, "0001_initial", &[], "");
    }
    r.commit("v1", Some("v1"));
    for app in ["shop", "blog", "debugonly"] {
        write_migration(&r, app, "0002_more", &[(app, "0001_initial")], "");
    }
    r.commit("v2", Some("v2"));
    r
}

fn planned_apps(r: &TestRepo) -> Vec<String> {
    let v = r.run_json(
        &["plan", "--from", "v2", "--to", "v1", "--format", "json"],
        0,
    );
    let mut apps: Vec<String> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["app"].as_str().unwrap().to_string())
        .collect();
    apps.sort();
    apps
}

#[test]
fn r11_apps_appended_to_a_helper_list_are_planned() {
    // Before: CORE_APPS.append("shop") was ignored, and shop's migrations
    // silently left the plan.
    let r = settings_repo(
        "CORE_APPS = ['django.contrib.auth']\nCORE_APPS.append('shop')\nCORE_APPS += ['blog']\nINSTALLED_APPS = CORE_APPS + []\n",
    );
    assert_eq!(planned_apps(&r), ["blog", "shop"]);
    let r = settings_repo(
        "BASE = ['django.contrib.auth', 'shop', 'blog']\nBASE.remove('blog')\nINSTALLED_APPS = [*BASE]\n",
    );
    assert_eq!(planned_apps(&r), ["shop"]);
}

#[test]
fn r11_a_conditional_change_of_an_app_outside_the_repository_is_not_a_refusal() {
    let r = settings_repo(
        "DEBUG = False\nINSTALLED_APPS = ['django.contrib.auth', 'shop', 'debug_toolbar']\nif not DEBUG:\n    INSTALLED_APPS.remove('debug_toolbar')\n",
    );
    assert_eq!(planned_apps(&r), ["shop"]);
}

#[test]
fn r11_a_conditional_change_of_a_repository_app_through_a_helper_list_blocks() {
    // Adding (or removing) an app whose migrations are in the repository
    // under a condition: tagback cannot know, so it says where and how to fix.
    for settings in [
        "import os\nAPPS = ['shop']\nif os.environ.get('X'):\n    APPS.append('debugonly')\nINSTALLED_APPS = ['django.contrib.auth'] + APPS\n",
        "import os\nINSTALLED_APPS = ['shop', 'debugonly']\nif os.environ.get('X'):\n    INSTALLED_APPS.remove('debugonly')\n",
        "import os\nEXTRA = []\nif os.environ.get('X'):\n    EXTRA = ['debugonly']\nINSTALLED_APPS = ['shop'] + EXTRA\n",
    ] {
        let r = settings_repo(settings);
        r.tagback()
            .args(["plan", "--from", "v2", "--to", "v1"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("proj/settings.py at v2 line 4"))
            .stderr(predicate::str::contains("\"debugonly\""))
            .stderr(predicate::str::contains("installed_apps:"));
    }
}

#[test]
fn a_conditional_app_whose_migration_modules_entry_is_in_the_repository_blocks() {
    // The check for conditionally added apps reads an app's migrations
    // module by the same rule as every other app: MIGRATION_MODULES first
    // (before, it looked only at `debug_toolbar/migrations` and let the
    // repository's migrations pass unsaid).
    let r = settings_repo(
        "import os\nINSTALLED_APPS = ['shop']\nMIGRATION_MODULES = {'debug_toolbar': 'debugonly.migrations'}\nif os.environ.get('X'):\n    INSTALLED_APPS += ['debug_toolbar']\n",
    );
    r.tagback()
        .args(["plan", "--from", "v2", "--to", "v1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("proj/settings.py at v2 line 5"))
        .stderr(predicate::str::contains("\"debug_toolbar\""))
        .stderr(predicate::str::contains("installed_apps:"));
}

#[test]
fn r11_constant_conditions_in_settings_are_decided() {
    // `DEBUG = False` (a literal) decides `if DEBUG:` / `if not DEBUG:`, also
    // for apps whose migrations are in the repository: no refusal.
    for (settings, want) in [
        (
            "DEBUG = False\nINSTALLED_APPS = ['shop', 'debugonly']\nif not DEBUG:\n    INSTALLED_APPS.remove('debugonly')\n",
            &["shop"][..],
        ),
        (
            "DEBUG = False\nAPPS = ['shop']\nif DEBUG:\n    APPS.append('debugonly')\nelse:\n    APPS += ['blog']\nINSTALLED_APPS = APPS\n",
            &["blog", "shop"],
        ),
        (
            "DEBUG = True\nSTAGE = 'prod'\nINSTALLED_APPS = ['shop']\nif STAGE == 'dev' and DEBUG:\n    INSTALLED_APPS += ['blog']\nelif STAGE != 'dev' or not DEBUG:\n    INSTALLED_APPS.append('debugonly')\n",
            &["debugonly", "shop"],
        ),
        (
            "import os\nDEBUG = None\nINSTALLED_APPS = ['shop']\nif DEBUG is not None and os.environ.get('X'):\n    INSTALLED_APPS += ['blog']\n",
            &["shop"],
        ),
    ] {
        let r = settings_repo(settings);
        assert_eq!(planned_apps(&r), want, "{settings}");
    }
    // A test that depends on the environment stays unknown, and so does a
    // name assigned under such a test: both block, naming the line.
    for settings in [
        "import os\nDEBUG = os.environ.get('DEBUG') == '1'\nINSTALLED_APPS = ['shop']\nif DEBUG:\n    INSTALLED_APPS += ['debugonly']\n",
        "import os\nDEBUG = False\nif os.environ.get('X'):\n    DEBUG = True\nINSTALLED_APPS = ['shop']\nif DEBUG:\n    INSTALLED_APPS += ['debugonly']\n",
    ] {
        let r = settings_repo(settings);
        r.tagback()
            .args(["plan", "--from", "v2", "--to", "v1"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("\"debugonly\""));
    }
}

#[test]
fn r11_apps_from_the_environment_are_assumed_external_and_said_so() {
    let r = settings_repo(
        "import os\nEXTRA = os.environ.get('EXTRA', '').split(',')\nINSTALLED_APPS = ['shop', *EXTRA]\nfor p in os.environ.get('PLUGINS', '').split(','):\n    INSTALLED_APPS.append(p)\n",
    );
    let v = r.run_json(
        &["plan", "--from", "v2", "--to", "v1", "--format", "json"],
        0,
    );
    let notes: Vec<&str> = v["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["message"].as_str().unwrap())
        .collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes[0].contains("`EXTRA`") && notes[0].contains("line 3"),
        "{notes:?}"
    );
    assert!(
        notes[1].contains("`p`") && notes[1].contains("line 5"),
        "{notes:?}"
    );
    assert_eq!(v["notes"][0]["code"], "assumed-external-apps");
}

/// NetBox's plugin loop: `INSTALLED_APPS.extend(plugin_config.django_apps)`
/// for each configured plugin, then duplicates dropped by
/// `INSTALLED_APPS = list(reversed(list(dict.fromkeys(reversed(...)))))`.
/// The plugins' apps are assumed external (said in a note), the
/// deduplication keeps the same apps; a reordering of an older copy of the
/// list is not mistaken for one.
#[test]
fn corpus_netbox_plugin_loop_and_deduplication_plan_the_repository_apps() {
    let netbox = "import importlib\nPLUGINS = getattr(configuration, 'PLUGINS', [])\nINSTALLED_APPS = ['shop', 'blog', 'debugonly']\nfor plugin_name in PLUGINS:\n    plugin_config = importlib.import_module(plugin_name).config\n    django_apps = plugin_config.django_apps\n    INSTALLED_APPS.extend(django_apps)\n    sorted_apps = reversed(list(dict.fromkeys(reversed(INSTALLED_APPS))))\n    INSTALLED_APPS = list(sorted_apps)\n";
    let r = settings_repo(netbox);
    let v = r.run_json(
        &["plan", "--from", "v2", "--to", "v1", "--format", "json"],
        0,
    );
    assert_eq!(planned_apps(&r), ["blog", "debugonly", "shop"]);
    assert_eq!(v["problems"], serde_json::json!([]));
    let notes: Vec<&str> = v["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["message"].as_str().unwrap())
        .collect();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("`django_apps`") && notes[0].contains("line 7"),
        "{notes:?}"
    );
    // An older copy put back after a change is not the same apps.
    let stale = "INSTALLED_APPS = ['shop']\nkept = list(INSTALLED_APPS)\nINSTALLED_APPS.append('blog')\nINSTALLED_APPS = list(kept)\n";
    let r = settings_repo(stale);
    r.tagback()
        .args(["plan", "--from", "v2", "--to", "v1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("line 4"));
}

/// Tandoor: `INSTALLED_APPS = INSTALLED_APPS + SOCIAL_PROVIDERS`, a list a
/// settings function reads from the environment, is like `*SOCIAL_PROVIDERS`:
/// assumed external and said; a repository app it would add is still caught
/// as unplanned migrations.
#[test]
fn corpus_list_plus_a_computed_list_is_an_assumption_not_a_refusal() {
    let tandoor = "import os\ndef extract_comma_list(key):\n    return [x for x in os.getenv(key, '').split(',') if x]\nSOCIAL_PROVIDERS = extract_comma_list('SOCIAL_PROVIDERS')\nINSTALLED_APPS = ['shop', 'blog']\nINSTALLED_APPS = INSTALLED_APPS + SOCIAL_PROVIDERS\n";
    let r = settings_repo(tandoor);
    let v = r.run_json(
        &["plan", "--from", "v2", "--to", "v1", "--format", "json"],
        0,
    );
    assert_eq!(planned_apps(&r), ["blog", "shop"]);
    let notes = v["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    let n = notes[0]["message"].as_str().unwrap();
    assert!(
        n.contains("`SOCIAL_PROVIDERS`") && n.contains("line 6"),
        "{n}"
    );
    assert_eq!(v["problems"][0]["code"], "unplanned-migrations");
    assert_eq!(v["problems"][0]["file"], "debugonly/migrations");
}

/// babybuddy's manage.py leaves DJANGO_SETTINGS_MODULE to the environment.
/// When one module of the settings package sets INSTALLED_APPS and the others
/// can only inherit it, whichever the deployment sets gives the same plan:
/// it goes ahead and says what it read. When another module could change the
/// apps, the message gives the exact `.tagback.yml` lines and the candidates.
#[test]
fn corpus_settings_from_the_environment_plan_when_the_choice_cannot_matter() {
    let mut r = settings_repo("INSTALLED_APPS = ['shop']\n");
    r.write(
        "manage.py",
        "import sys\nfrom django.core.management import execute_from_command_line\nexecute_from_command_line(sys.argv)\n",
    );
    r.remove("proj/settings.py");
    r.write("proj/settings/__init__.py", "");
    r.write("proj/settings/base.py", "INSTALLED_APPS = ['shop']\n");
    r.write(
        "proj/settings/dev.py",
        "from .base import *\nDEBUG = True\n",
    );
    r.commit("v3", Some("v3"));
    write_migration(&r, "shop", "0003_more", &[("shop", "0002_more")], "");
    r.commit("v4", Some("v4"));
    let v = r.run_json(
        &["plan", "--from", "v4", "--to", "v3", "--format", "json"],
        0,
    );
    assert_eq!(v["commands"][0], "python manage.py migrate shop 0002_more");
    let note = &v["notes"][0];
    assert_eq!(note["code"], "assumed-settings-module", "{v}");
    let says = note["message"].as_str().unwrap();
    assert!(
        says.contains("read proj.settings.base") && says.contains("(proj.settings.dev)"),
        "{says}"
    );

    // A sibling that may change the apps: the choice matters, so ask.
    r.write(
        "proj/settings/dev.py",
        "from .base import *\nINSTALLED_APPS += ['debug_toolbar']\n",
    );
    r.commit("v5", Some("v5"));
    write_migration(&r, "shop", "0004_more", &[("shop", "0003_more")], "");
    r.commit("v6", Some("v6"));
    r.tagback()
        .args(["plan", "--from", "v6", "--to", "v5"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "manage.py at v6 does not set DJANGO_SETTINGS_MODULE",
        ))
        .stderr(predicate::str::contains(
            "`services: {web: {settings: proj.settings.base}}`",
        ))
        .stderr(predicate::str::contains(
            "modules here that set INSTALLED_APPS: proj.settings.base, proj.settings.dev\n",
        ));
    r.write(
        ".tagback.yml",
        "services: {web: {settings: proj.settings.base}}\n",
    );
    let v = r.run_json(
        &["plan", "--from", "v6", "--to", "v5", "--format", "json"],
        0,
    );
    assert_eq!(v["commands"][0], "python manage.py migrate shop 0003_more");
    assert_eq!(v["notes"], serde_json::json!([]));
}

/// healthchecks' settings: `ALLOWED_HOSTS = [domain]` under a condition is
/// no list of apps; a note about it (seen on the corpus) was noise. A helper
/// list with an unreadable part is said once it flows into INSTALLED_APPS,
/// conditionally or not.
#[test]
fn corpus_unreadable_lists_that_never_reach_installed_apps_are_not_assumptions() {
    let notes = |settings: &str| -> Vec<String> {
        let r = settings_repo(settings);
        let v = r.run_json(
            &["plan", "--from", "v2", "--to", "v1", "--format", "json"],
            0,
        );
        v["notes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["message"].as_str().unwrap().to_string())
            .collect()
    };
    let hc = "import os\nif os.getenv('ALLOWED_HOSTS'):\n    ALLOWED_HOSTS = os.getenv('ALLOWED_HOSTS').split(',')\nelse:\n    domain, _ = os.getenv('SITE').split(':')\n    ALLOWED_HOSTS = [domain]\nINSTALLED_APPS = ['shop']\n";
    assert_eq!(notes(hc), Vec::<String>::new());
    let helper = "import os\nPLUGINS = []\nfor p in os.getenv('Q', '').split():\n    PLUGINS.append(p)\nINSTALLED_APPS = ['shop'] + PLUGINS\n";
    let n = notes(helper);
    assert_eq!(n.len(), 1, "{n:?}");
    assert!(
        n[0].contains("PLUGINS from `p`") && n[0].contains("line 4"),
        "{n:?}"
    );
    let conditional = "import os\nEXTRA = ['x', *os.getenv('E', '').split()]\nINSTALLED_APPS = ['shop']\nif os.getenv('D'):\n    INSTALLED_APPS += EXTRA\n";
    let n = notes(conditional);
    assert_eq!(n.len(), 1, "{n:?}");
    assert!(
        n[0].contains("apps added to EXTRA") && n[0].contains("line 2"),
        "{n:?}"
    );
}

#[test]
fn r11_split_settings_include_reads_components_and_refuses_a_missing_one() {
    let settings = |include: &str| {
        let mut r = settings_repo(
            "INSTALLED_APPS = ['shop', 'blog']\nMIGRATION_MODULES = {'blog': None}\n",
        );
        r.remove("proj/settings.py");
        r.write(
            "proj/settings/__init__.py",
            format!("from split_settings.tools import include, optional\ninclude({include})\n"),
        );
        r.write(
            "proj/settings/components/apps.py",
            "INSTALLED_APPS = ['shop']\nMIGRATION_MODULES = {'blog': None}\n",
        );
        r.write(
            "proj/settings/components/more_x.py",
            "INSTALLED_APPS += ['blog']\n",
        );
        r.commit("v2", Some("v2"));
        r
    };
    let r = settings(r#""components/apps.py", "components/more_*.py", optional("local.py")"#);
    // blog is installed by the glob but its migrations are disabled
    // (MIGRATION_MODULES = None), so only shop is planned.
    assert_eq!(planned_apps(&r), ["shop"]);
    let r = settings(r#""components/apps.py", "local.py""#);
    r.tagback()
        .args(["plan", "--from", "v2", "--to", "v1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "proj/settings/__init__.py at v2 line 2: include() names \"local.py\"",
        ));
}

/// A warm run skips an app's migrations directory when it knows, by tree
/// id, that the directory has no subdirectories; one that has them is
/// walked on every run, so a migrations package nested inside is caught
/// on the first run and on later ones alike.
#[test]
fn unplanned_migrations_nested_in_an_app_migrations_directory_are_caught_warm_and_cold() {
    let mut r = settings_repo("INSTALLED_APPS = ['shop', 'blog', 'debugonly']\n");
    r.write("shop/migrations/vendored/__init__.py", "");
    write_migration(&r, "shop/migrations/vendored", "0001_initial", &[], "");
    r.commit("v3", Some("v3"));
    let codes = |v: &serde_json::Value| -> Vec<(String, String)> {
        v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["code"].as_str().unwrap().to_string(),
                    p["file"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    let nested = vec![(
        "unplanned-migrations".to_string(),
        "shop/migrations/vendored/migrations".to_string(),
    )];
    for run in ["cold", "warm"] {
        let flat = r.run_json(
            &["plan", "--from", "v2", "--to", "v1", "--format", "json"],
            0,
        );
        assert_eq!(codes(&flat), [], "{run}: {flat}");
        let v = r.run_json(
            &["plan", "--from", "v3", "--to", "v1", "--format", "json"],
            0,
        );
        assert_eq!(codes(&v), nested, "{run}: {v}");
    }
    let cache = std::fs::read_dir(r.path().join(".git/tagback/cache"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let probes = std::fs::read_to_string(cache.join("probes")).unwrap();
    assert!(
        probes.contains("\t/\n"),
        "no directory recorded as flat: {probes}"
    );
}

#[test]
fn r11_new_migrations_in_a_directory_no_installed_app_reads_block_until_configured() {
    let mut r = settings_repo("INSTALLED_APPS = ['shop']\n");
    // testapp is not installed; a migration appears in it in v3.
    write_migration(&r, "testapp", "0001_initial", &[], "");
    r.write("stack.yml", STACK.replace("TAG", "3"));
    r.commit("v3", Some("v3"));
    let v = r.run_json(
        &["plan", "--from", "v3", "--to", "v2", "--format", "json"],
        0,
    );
    assert_eq!(v["unapply"], serde_json::json!([]));
    assert_eq!(v["problems"][0]["code"], "unplanned-migrations", "{v}");
    assert_eq!(v["problems"][0]["file"], "testapp/migrations");
    // check blocks the downgrade although nothing is planned ...
    r.write("stack.yml", STACK.replace("TAG", "2"));
    r.tagback()
        .args(["check"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "not_installed: [testapp/migrations]",
        ));
    // ... until .tagback.yml says the app is not installed.
    r.write(
        ".tagback.yml",
        "services:\n  web:\n    not_installed: [testapp/migrations]\n",
    );
    r.tagback().args(["check"]).assert().code(0);
}

#[test]
fn r11_dependencies_set_in_init_are_a_dynamic_migration_not_a_false_conflict() {
    let mut r = settings_repo("INSTALLED_APPS = ['shop']\n");
    r.write(
        "shop/migrations/0003_late.py",
        "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n    operations = []\n\n    def __init__(self, *args):\n        super().__init__(*args)\n        self.dependencies = [('shop', '0002_more')]\n",
    );
    r.commit("v3", Some("v3"));
    let v = r.run_json(
        &["plan", "--from", "v3", "--to", "v2", "--format", "json"],
        0,
    );
    // Before: exit 2, "app shop has 2 unmerged leaf migrations".
    let p = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["code"] == "dynamic-migration")
        .unwrap_or_else(|| panic!("no dynamic-migration problem: {v}"));
    assert_eq!(p["file"], "shop/migrations/0003_late.py");
    assert_eq!(p["line"], 7);
    assert_eq!(v["dynamic"][0]["line"], 7);
    assert!(
        v["dynamic"][0]["what"]
            .as_str()
            .unwrap()
            .contains("`dependencies` is computed in __init__"),
        "{v}"
    );
    // Stated in .tagback.yml, the dependencies are Django's and the plan is exact.
    r.write(
        ".tagback.yml",
        "services:\n  web:\n    migrations:\n      shop.0003_late:\n        dependencies: [[shop, 0002_more]]\n",
    );
    let v = r.run_json(
        &["plan", "--from", "v3", "--to", "v2", "--format", "json"],
        0,
    );
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    assert_eq!(v["dynamic"], serde_json::json!([]), "{v}");
    assert_eq!(v["commands"][0], "python manage.py migrate shop 0002_more");
    // A statement about a migration that does not exist is not ignored.
    r.write(
        ".tagback.yml",
        "services:\n  web:\n    migrations:\n      shop.0003_gone:\n        dependencies: []\n",
    );
    r.tagback()
        .args(["plan", "--from", "v3", "--to", "v2"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            ".tagback.yml: migrations: shop.0003_gone names no migration of shop at v3 or v2",
        ));
}

#[test]
fn r11_a_dependency_into_an_unchanged_migrations_dir_without_init_does_not_exist() {
    // blog/migrations has no __init__.py: a namespace package, which Django
    // treats as an app without migrations, so shop.0002's dependency on
    // blog.0001_initial raises NodeNotFoundError — also when blog is
    // unchanged between the revisions (and so not loaded).
    let mut r = TestRepo::new();
    proj_site(&r, "INSTALLED_APPS = ['shop', 'blog']\n");
    write_migration(&r, "shop", "0001_initial", &[], "");
    write_migration(&r, "blog", "0001_initial", &[], "");
    r.remove("blog/migrations/__init__.py");
    r.commit("v1", Some("v1"));
    write_migration(
        &r,
        "shop",
        "0002_x",
        &[("shop", "0001_initial"), ("blog", "0001_initial")],
        "",
    );
    r.commit("v2", Some("v2"));
    r.tagback()
        .args(["plan", "--from", "v2", "--to", "v1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "shop/migrations/0002_x.py at v2: migration shop.0002_x depends on blog.0001_initial, which does not exist",
        ));
}

#[test]
fn r11_migration_modules_in_tagback_yml_override_the_settings() {
    // The settings' MIGRATION_MODULES cannot be read (computed), so shop's
    // migrations in shop/db_migrations are found only through
    // `migration_modules:`; `null` disables an app's migrations, as in Django.
    let mut r = TestRepo::new();
    proj_site(
        &r,
        "import os\nINSTALLED_APPS = ['shop', 'blog']\nMIGRATION_MODULES = {app: f'{app}.db_migrations' for app in ['shop']}\n",
    );
    let mig = |deps: &str| {
        format!(
            "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n    dependencies = [{deps}]\n    operations = []\n"
        )
    };
    r.write("shop/__init__.py", "");
    r.write("shop/db_migrations/__init__.py", "");
    r.write("shop/db_migrations/0001_initial.py", mig(""));
    write_migration(&r, "blog", "0001_initial", &[], "");
    r.commit("v1", Some("v1"));
    r.write(
        "shop/db_migrations/0002_more.py",
        mig("('shop', '0001_initial')"),
    );
    write_migration(&r, "blog", "0002_more", &[("blog", "0001_initial")], "");
    r.commit("v2", Some("v2"));
    let targets = |r: &TestRepo| {
        let v = r.run_json(
            &["plan", "--from", "v2", "--to", "v1", "--format", "json"],
            0,
        );
        v["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                format!(
                    "{} {}",
                    s["app"].as_str().unwrap(),
                    s["target"].as_str().unwrap()
                )
            })
            .collect::<Vec<_>>()
    };
    // Without it, the computed MIGRATION_MODULES is not guessed.
    r.tagback()
        .args(["plan", "--from", "v2", "--to", "v1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "MIGRATION_MODULES in proj/settings.py at v2 line 3 is computed at run time; state it under `migration_modules:`",
        ));
    r.write(
        ".tagback.yml",
        "services:\n  web:\n    migration_modules:\n      shop: shop.db_migrations\n      blog: null\n",
    );
    assert_eq!(targets(&r), ["shop 0001_initial"]);
}

#[test]
fn r11_an_app_without_migrations_folder_whose_migrations_are_elsewhere_names_both_places() {
    let mut r = TestRepo::new();
    proj_site(&r, "INSTALLED_APPS = ['shop']\n");
    r.write("shop/__init__.py", "");
    write_migration(&r, "old/shop", "0001_initial", &[], "");
    r.commit("v1", Some("v1"));
    write_migration(&r, "old/shop", "0002_more", &[("shop", "0001_initial")], "");
    r.commit("v2", Some("v2"));
    let v = r.run_json(
        &["plan", "--from", "v2", "--to", "v1", "--format", "json"],
        0,
    );
    let p = &v["problems"][0];
    assert_eq!(p["code"], "unplanned-migrations", "{v}");
    assert_eq!(p["file"], "old/shop/migrations");
    assert!(
        p["message"].as_str().unwrap().contains(
            "app shop is installed at v2 but has no migrations folder (shop/migrations), while migration files for shop are in old/shop/migrations (0002_more.py depends on shop.0001_initial)"
        ),
        "{v}"
    );
}

/// `app target` per step of `plan --from v2 --to v1`.
fn plan_targets(r: &TestRepo) -> Vec<String> {
    let v = r.run_json(
        &["plan", "--from", "v2", "--to", "v1", "--format", "json"],
        0,
    );
    v["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s["app"].as_str().unwrap(),
                s["target"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn r11_older_settings_module_differs_from_the_newer() {
    // v1 names proj.settings in manage.py; v2 renames the project to config
    // and computes the module name, so only `.tagback.yml` can say it, and
    // `older:` says v1's. Expected result from real Django 5.2 by hand
    // (MigrationLoader at each revision, DJANGO_SETTINGS_MODULE=proj.settings
    // at v1, config.settings at v2): v2 has shop.0002_more and blog.0001_initial
    // that v1 lacks, v1's leaf of shop is 0001_initial and v1 does not
    // install blog: `migrate blog zero`, `migrate shop 0001_initial`.
    let mut r = TestRepo::new();
    proj_site(&r, "INSTALLED_APPS = ['shop']\n");
    write_migration(&r, "shop", "0001_initial", &[], "");
    r.commit("v1", Some("v1"));
    r.write(
        "manage.py",
        "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config' + '.settings')\n",
    );
    r.remove("proj/__init__.py");
    r.remove("proj/settings.py");
    r.write("config/__init__.py", "");
    r.write("config/settings.py", "INSTALLED_APPS = ['shop', 'blog']\n");
    write_migration(&r, "shop", "0002_more", &[("shop", "0001_initial")], "");
    write_migration(&r, "blog", "0001_initial", &[("shop", "0002_more")], "");
    r.commit("v2", Some("v2"));
    // One module for both revisions: v1 has no config/settings.py.
    r.write(
        ".tagback.yml",
        "services:\n  web:\n    settings: config.settings\n",
    );
    r.tagback()
        .args(["plan", "--from", "v2", "--to", "v1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "settings module \"config.settings\" (from `settings:` in .tagback.yml) is not in the repository at v1",
        ));
    r.write(
        ".tagback.yml",
        "services:\n  web:\n    settings: config.settings\n    older:\n      settings: proj.settings\n",
    );
    assert_eq!(plan_targets(&r), ["blog zero", "shop 0001_initial"]);
    // The same said the other way round.
    r.write(
        ".tagback.yml",
        "services:\n  web:\n    newer:\n      settings: config.settings\n",
    );
    assert_eq!(plan_targets(&r), ["blog zero", "shop 0001_initial"]);
    // `check` names releases too: the upgrade v1 -> v2 reads v1 with
    // `older:` and its rollback plan is the same; so is the downgrade's.
    let steps = |plan: &serde_json::Value| -> Vec<String> {
        plan["steps"]
            .as_array()
            .unwrap_or_else(|| panic!("{plan}"))
            .iter()
            .map(|s| {
                format!(
                    "{} {}",
                    s["app"].as_str().unwrap(),
                    s["target"].as_str().unwrap()
                )
            })
            .collect()
    };
    r.write(
        ".tagback.yml",
        "services:\n  web:\n    settings: config.settings\n    older:\n      settings: proj.settings\n",
    );
    r.write("stack.yml", STACK.replace("TAG", "1"));
    r.commit("deploy 1", None);
    r.write("stack.yml", STACK.replace("TAG", "2"));
    let v = r.run_json(&["check", "--format", "json"], 0);
    let web = &v["services"][0];
    assert_eq!(web["direction"], "upgrade", "{v}");
    assert_eq!(steps(&web["rollback"]), ["blog zero", "shop 0001_initial"]);
    r.commit("deploy 2", None);
    r.write("stack.yml", STACK.replace("TAG", "1"));
    let v = r.run_json(&["check", "--format", "json"], 1);
    let web = &v["services"][0];
    assert_eq!(web["direction"], "downgrade", "{v}");
    assert_eq!(steps(&web["plan"]), ["blog zero", "shop 0001_initial"]);
}

#[test]
fn r11_migration_modules_differ_between_the_revisions() {
    // MIGRATION_MODULES is computed at both revisions, and moves shop's
    // migrations from shop/legacy_migrations (v1) to shop/db_migrations
    // (v2); blog has no migrations at v1 (None) and gains them at v2.
    // Expected result from real Django 5.2 by hand (MigrationLoader at each
    // revision): v1's leaves are shop.0002_b and no blog node, v2 adds
    // shop.0003_c and blog.0001_initial: `migrate blog zero`,
    // `migrate shop 0002_b`.
    let mut r = TestRepo::new();
    r.write(
        "manage.py",
        "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')\n",
    );
    r.write("proj/__init__.py", "");
    let settings = |dir: &str, blog: &str| {
        format!(
            "INSTALLED_APPS = ['shop', 'blog']\nMIGRATION_MODULES = {{app: f'{{app}}.{dir}' for app in ['shop']}}\nMIGRATION_MODULES['blog'] = {blog}\n"
        )
    };
    let mig = |deps: &str| {
        format!(
            "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n    dependencies = [{deps}]\n    operations = []\n"
        )
    };
    r.write("proj/settings.py", settings("legacy_migrations", "None"));
    r.write("shop/__init__.py", "");
    r.write("blog/__init__.py", "");
    r.write("shop/legacy_migrations/__init__.py", "");
    r.write("shop/legacy_migrations/0001_initial.py", mig(""));
    r.write(
        "shop/legacy_migrations/0002_b.py",
        mig("('shop', '0001_initial')"),
    );
    r.commit("v1", Some("v1"));
    r.write(
        "proj/settings.py",
        settings("db_migrations", "'blog.migrations'"),
    );
    r.remove("shop/legacy_migrations/__init__.py");
    r.remove("shop/legacy_migrations/0001_initial.py");
    r.remove("shop/legacy_migrations/0002_b.py");
    r.write("shop/db_migrations/__init__.py", "");
    r.write("shop/db_migrations/0001_initial.py", mig(""));
    r.write(
        "shop/db_migrations/0002_b.py",
        mig("('shop', '0001_initial')"),
    );
    r.write("shop/db_migrations/0003_c.py", mig("('shop', '0002_b')"));
    write_migration(&r, "blog", "0001_initial", &[("shop", "0003_c")], "");
    r.commit("v2", Some("v2"));
    r.write(
        ".tagback.yml",
        "services:\n  web:\n    migration_modules:\n      shop: shop.db_migrations\n      blog: blog.migrations\n    older:\n      migration_modules:\n        shop: shop.legacy_migrations\n        blog: null\n",
    );
    assert_eq!(plan_targets(&r), ["blog zero", "shop 0002_b"]);
    // A key `older:` does not know is an error with its line.
    r.write(
        ".tagback.yml",
        "services:\n  web:\n    older:\n      migrations_modules: {}\n",
    );
    r.tagback()
        .args(["plan", "--from", "v2", "--to", "v1"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("line 4").and(predicate::str::contains("migrations_modules")),
        );
}

#[test]
fn ci_formats_annotate_migrations_no_per_app_target_reaches() {
    // fixtures/cases/backport, v3 deployed, v1.1 next: shop.0003_product_color
    // hangs off a migration v1.1 has, so only the executor step unapplies
    // it (`unreachable-by-migrate`, checked against real Django by the
    // fixture); github and sarif name it at its file like other findings.
    let mut r = TestRepo::new();
    r.copy_fixture("../fixtures/cases/backport/v1.1", "");
    r.write("stack.yml", STACK.replace("TAG", "1"));
    r.commit("v1", Some("v1"));
    for d in ["blog", "shop", "proj"] {
        r.remove(d);
    }
    r.copy_fixture("../fixtures/cases/backport/v3", "");
    r.write("stack.yml", STACK.replace("TAG", "2"));
    r.commit("v2", Some("v2"));
    r.write("stack.yml", STACK.replace("TAG", "1"));
    let out = r
        .tagback()
        .args(["check", "--format", "github"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("::warning file=shop/migrations/0003_product_color.py,title=tagback unreachable-by-migrate (web)::shop.0003_product_color"),
        "{text}"
    );
    insta::assert_snapshot!(text);
    let out = r
        .tagback()
        .args(["check", "--format", "sarif"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let log: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let results = log["runs"][0]["results"].as_array().unwrap();
    let u: Vec<&serde_json::Value> = results
        .iter()
        .filter(|x| x["ruleId"] == "unreachable-by-migrate")
        .collect();
    assert_eq!(u.len(), 1, "{log}");
    assert_eq!(u[0]["level"], "warning");
    assert_eq!(
        u[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "shop/migrations/0003_product_color.py"
    );
    validate_json(
        "tests/fixtures/schemas/sarif-schema-2.1.0.json",
        "Draft4Validator",
        &out,
    );
}

/// manage.py naming `proj.settings`, and `proj/settings.py` holding `settings`.
fn proj_site(r: &TestRepo, settings: &str) {
    r.write(
        "manage.py",
        "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')\n",
    );
    r.write("proj/__init__.py", "");
    r.write("proj/settings.py", settings);
}
