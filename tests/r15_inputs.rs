//! Issue 15 (inputs fail closed): stack files, nesting bounds, submodules,
//! pre-push and hooks. Each test failed on main before the fix.

mod common;

use common::{STACK, TestRepo, shop_repo};
use predicates::prelude::*;

// ---------------------------------------------------------------- nesting bounds

#[test]
fn r15_migration_nested_100k_deep_is_exit_2_naming_file_and_line() {
    let mut r = shop_repo();
    let n = 100_000;
    r.write(
        "shop/migrations/0005_deep.py",
        format!(
            "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n    dependencies = [(\"shop\", \"0004_order_code\")]\n    operations = {}{}\n",
            "[".repeat(n),
            "]".repeat(n)
        ),
    );
    r.commit("v3", Some("v3"));
    r.tagback()
        .args(["plan", "--from", "v3", "--to", "v1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "shop/migrations/0005_deep.py at v3 line 6",
        ))
        .stderr(predicate::str::contains("nested deeper than 200"))
        .stderr(predicate::str::contains("overflow").not());
}

#[test]
fn r15_settings_nested_100k_deep_is_exit_2_naming_file_and_line() {
    let mut r = shop_repo();
    let settings = r.read("shopsite/settings.py");
    let n = 100_000;
    r.write(
        "shopsite/settings.py",
        format!("{settings}\nDEEP = {}{}\n", "(".repeat(n), ")".repeat(n)),
    );
    let line = settings.lines().count() + 2;
    r.commit("v3", Some("v3"));
    r.tagback()
        .args(["plan", "--from", "v3", "--to", "v1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "shopsite/settings.py at v3 line {line}"
        )))
        .stderr(predicate::str::contains("nested deeper than 200"));
}

#[test]
fn r15_stack_file_nested_100k_deep_is_exit_2_naming_file_and_line() {
    let r = shop_repo();
    let n = 100_000;
    r.write(
        "stack.yml",
        format!(
            "{}x-deep: {}{}\n",
            STACK.replace("TAG", "1"),
            "[".repeat(n),
            "]".repeat(n)
        ),
    );
    r.tagback()
        .arg("check")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("stack.yml at the working tree"))
        .stderr(predicate::str::contains("line 8"))
        .stderr(predicate::str::contains("nested deeper than"));
}

#[allow(dead_code)]
fn _uses(_: TestRepo) {}

// ---------------------------------------------------------------- stack files

#[test]
fn r15_renaming_a_service_while_moving_its_image_back_is_a_downgrade() {
    let mut r = shop_repo();
    let renamed = STACK.replace("TAG", "1").replace("  web:", "  webnew:");
    r.write("stack.yml", &renamed);
    let out = r.run_json(&["check", "--format", "json"], 1);
    let svc = &out["services"][0];
    assert_eq!(svc["service"], "webnew");
    assert_eq!(svc["direction"], "downgrade");
    assert_eq!(svc["from_image"], "registry.example.com:5000/shop:2");
    assert_eq!(svc["to_image"], "registry.example.com:5000/shop:1");
    assert!(!svc["plan"]["steps"].as_array().unwrap().is_empty());
    assert_eq!(svc["findings"][0]["code"], "service-renamed");
    r.tagback()
        .arg("check")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("[BLOCKED] webnew: downgrade"))
        .stdout(predicate::str::contains("service-renamed"))
        .stdout(predicate::str::contains("no image changes").not());
    r.commit("rename and roll back", None);
    r.tagback()
        .args(["gate", "--from", "v2", "--to", "HEAD"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("webnew"));
}

#[test]
fn r15_emptied_or_removed_image_of_a_service_is_a_finding() {
    let r = shop_repo();
    let base = STACK.replace("TAG", "2");
    let cases = [
        base.replace("image: registry.example.com:5000/shop:2", "image: \"\""),
        base.replace("image: registry.example.com:5000/shop:2", "image:"),
        base.replace(
            "    image: registry.example.com:5000/shop:2\n",
            "    build: .\n",
        ),
    ];
    for stack in cases {
        r.write("stack.yml", &stack);
        let out = r.run_json(&["check", "--format", "json"], 1);
        let svc = &out["services"][0];
        assert_eq!(svc["service"], "web", "{stack}");
        assert_eq!(svc["safe"], false);
        assert_eq!(svc["findings"][0]["code"], "image-removed");
        assert_eq!(svc["findings"][0]["file"], "stack.yml");
        r.tagback()
            .arg("check")
            .assert()
            .code(1)
            .stdout(predicate::str::contains(
                "web: unknown registry.example.com:5000/shop:2 → (no image)",
            ))
            .stdout(predicate::str::contains("no longer names an image"));
    }
    r.write(".tagback.yml", "services:\n  web:\n    django: false\n");
    r.tagback().arg("check").assert().code(0);
}

#[test]
fn r15_stack_file_that_is_missing_or_a_directory_is_exit_2_naming_it() {
    let r = shop_repo();
    r.tagback()
        .args(["gate", "-f", "nope.yml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "stack file nope.yml does not exist",
        ));
    r.write("deploy/stack.yml", STACK.replace("TAG", "2"));
    r.tagback()
        .args(["gate", "-f", "deploy"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "stack file deploy at the working tree is a directory",
        ));
    r.write(".tagback.yml", "files: [typo.yml]\n");
    r.tagback()
        .arg("check")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "stack file typo.yml does not exist",
        ));
}

#[test]
fn r15_kubernetes_manifest_or_helm_values_given_with_f_is_exit_2() {
    let r = shop_repo();
    r.write(
        "k8s.yml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: registry.example.com:5000/shop:1\n",
    );
    r.tagback()
        .args(["gate", "-f", "k8s.yml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "k8s.yml at the working tree: not a compose/stack file: no `services:`",
        ))
        .stderr(predicate::str::contains("Kubernetes"));
    r.write(
        "values.yaml",
        "replicaCount: 2\nimage:\n  repository: registry.example.com:5000/shop\n  tag: \"1\"\n",
    );
    r.tagback()
        .args(["check", "-f", "values.yaml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "values.yaml at the working tree: not a compose/stack file",
        ));
}

#[test]
fn r15_an_image_without_a_tag_is_worded_as_a_move_in_an_unknown_direction() {
    let r = shop_repo();
    r.write(
        "stack.yml",
        STACK.replace("registry.example.com:5000/shop:TAG", "1"),
    );
    r.tagback()
        .arg("check")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("a move in an unknown direction"))
        .stdout(predicate::str::contains("a unknown").not());
}

// ---------------------------------------------------------------- pre-push

fn rev(r: &TestRepo, what: &str) -> String {
    String::from_utf8(r.git(&["rev-parse", what]).stdout)
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn r15_pre_push_with_an_unknown_remote_sha_fails_closed() {
    let mut r = shop_repo();
    let v2 = rev(&r, "HEAD");
    r.write("stack.yml", STACK.replace("TAG", "1"));
    r.commit("roll back", None);
    let head = rev(&r, "HEAD");
    let unknown = "ab".repeat(20);
    let stdin = format!("refs/heads/main {head} refs/heads/main {unknown}\n");
    // Nothing to compare with: blocked, saying how to proceed.
    r.tagback()
        .args(["hook", "pre-push", "origin", "url"])
        .write_stdin(stdin.clone())
        .assert()
        .code(1)
        .stdout(predicate::str::contains("not in this repository"))
        .stdout(predicate::str::contains("git fetch origin"))
        .stdout(predicate::str::contains("skipped").not());
    // A new branch with nothing to compare with is blocked too.
    let zero = "0".repeat(40);
    r.tagback()
        .args(["hook", "pre-push", "origin", "url"])
        .write_stdin(format!("refs/heads/topic {head} refs/heads/topic {zero}\n"))
        .assert()
        .code(1)
        .stdout(predicate::str::contains("is new on origin"))
        .stdout(predicate::str::contains("--no-verify"));
    // With the remote-tracking default branch: its merge base is compared.
    r.git(&["update-ref", "refs/remotes/origin/main", &v2]);
    r.tagback()
        .args(["hook", "pre-push", "origin", "url"])
        .write_stdin(stdin)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "comparing with its merge base with refs/remotes/origin/main",
        ))
        .stdout(predicate::str::contains("[BLOCKED] web: downgrade"));
    // A push that changes nothing unsafe then passes.
    r.git(&["update-ref", "refs/remotes/origin/main", &head]);
    r.write("README", "docs\n");
    r.commit("docs", None);
    let docs = rev(&r, "HEAD");
    r.tagback()
        .args(["hook", "pre-push", "origin", "url"])
        .write_stdin(format!(
            "refs/heads/main {docs} refs/heads/main {unknown}\n"
        ))
        .assert()
        .code(0);
}
