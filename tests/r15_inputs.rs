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
    assert_eq!(svc["notes"][0]["code"], "service-renamed");
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
        assert_eq!(svc["notes"][0]["code"], "image-removed");
        assert_eq!(svc["notes"][0]["file"], "stack.yml");
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
    // A new branch on a remote this repository never fetched: a first push.
    let zero = "0".repeat(40);
    let new_branch = format!("refs/heads/topic {head} refs/heads/topic {zero}\n");
    r.tagback()
        .args(["hook", "pre-push", "origin", "url"])
        .write_stdin(new_branch.clone())
        .assert()
        .code(0)
        .stdout(predicate::str::contains("a first push?"));
    // A new branch on a known remote without a default branch to compare with: blocked.
    r.git(&["update-ref", "refs/remotes/origin/feature", &v2]);
    r.tagback()
        .args(["hook", "pre-push", "origin", "url"])
        .write_stdin(new_branch)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("is new on origin"))
        .stdout(predicate::str::contains("git fetch origin"));
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

// ---------------------------------------------------------------- hooks

#[cfg(unix)]
fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

#[cfg(unix)]
#[test]
fn r15_uninstall_restores_hooks_byte_for_byte_with_mode_and_symlinks() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let r = shop_repo();
    let hooks = r.path().join(".git/hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    let set_mode = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    // 644 (git does not run it), 700, a dangling symlink; then a live symlink.
    std::fs::write(
        hooks.join("pre-commit"),
        b"#!/bin/sh\necho mine 644\n\x00\xff",
    )
    .unwrap();
    set_mode(&hooks.join("pre-commit"), 0o644);
    std::fs::write(hooks.join("pre-push"), b"#!/bin/sh\nexit 0\n").unwrap();
    set_mode(&hooks.join("pre-push"), 0o700);
    symlink("../../scripts/missing-hook", hooks.join("pre-merge-commit")).unwrap();
    r.tagback().arg("install").assert().code(0);
    for name in ["pre-commit", "pre-push", "pre-merge-commit"] {
        let installed = r.read(&format!(".git/hooks/{name}"));
        assert!(installed.contains("installed by tagback"), "{name}");
    }
    assert!(
        std::fs::symlink_metadata(hooks.join("pre-merge-commit.tagback-chained"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    r.tagback()
        .args(["install", "--uninstall"])
        .assert()
        .code(0);
    assert_eq!(
        std::fs::read(hooks.join("pre-commit")).unwrap(),
        b"#!/bin/sh\necho mine 644\n\x00\xff"
    );
    assert_eq!(mode(&hooks.join("pre-commit")), 0o644);
    assert_eq!(
        std::fs::read(hooks.join("pre-push")).unwrap(),
        b"#!/bin/sh\nexit 0\n"
    );
    assert_eq!(mode(&hooks.join("pre-push")), 0o700);
    let link = hooks.join("pre-merge-commit");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        std::path::PathBuf::from("../../scripts/missing-hook")
    );
    for name in ["pre-commit", "pre-push", "pre-merge-commit"] {
        assert!(!hooks.join(format!("{name}.tagback-chained")).exists());
    }
    // A live symlink stays a symlink (not a copy), and runs first while installed.
    r.write("scripts/hook.sh", "#!/bin/sh\necho chained-ran >&2\n");
    set_mode(&r.path().join("scripts/hook.sh"), 0o755);
    std::fs::remove_file(&link).unwrap();
    symlink("../../scripts/hook.sh", &link).unwrap();
    r.tagback().arg("install").assert().code(0);
    r.tagback()
        .args(["install", "--uninstall"])
        .assert()
        .code(0);
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        std::path::PathBuf::from("../../scripts/hook.sh")
    );
}

/// git with a PATH that has no tagback on it, as GUI clients run it.
fn git_without_tagback_on_path(r: &TestRepo, args: &[&str]) -> std::process::Output {
    let git = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let c = common::git_command(r.path(), r.home.path());
    let mut c2 = std::process::Command::new(git.trim());
    c2.current_dir(r.path());
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => c2.env(k, v),
            None => c2.env_remove(k),
        };
    }
    c2.env("PATH", "/usr/bin:/bin").env_remove("TAGBACK");
    c2.args(args).output().unwrap()
}

#[test]
fn r15_hooks_run_the_installed_tagback_without_it_on_path() {
    let r = shop_repo();
    r.tagback().arg("install").assert().code(0);
    let hook = r.read(".git/hooks/pre-commit");
    let exe = assert_cmd::cargo::cargo_bin("tagback");
    assert!(
        hook.contains(&format!("installed_tagback='{}'", exe.display())),
        "{hook}"
    );
    r.write("stack.yml", STACK.replace("TAG", "1"));
    r.git(&["add", "stack.yml"]);
    let out = git_without_tagback_on_path(&r, &["commit", "-q", "-m", "roll back"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("[BLOCKED] web: downgrade"), "{text}");
    assert!(!text.contains("not found on PATH"), "{text}");
    // A hook whose recorded tagback is gone says exactly how to fix it.
    let moved = hook.replace(&exe.display().to_string(), "/nonexistent/tagback");
    std::fs::write(r.path().join(".git/hooks/pre-commit"), moved).unwrap();
    let out = git_without_tagback_on_path(&r, &["commit", "-q", "-m", "roll back"]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("/nonexistent/tagback"), "{text}");
    assert!(text.contains("run `tagback install` again"), "{text}");
    assert!(text.contains("set TAGBACK=/path/to/tagback"), "{text}");
}

// ---------------------------------------------------------------- submodules

const SUBSHOP_0001: &str = "from django.db import migrations, models\n\n\nclass Migration(migrations.Migration):\n    initial = True\n    dependencies = []\n    operations = [\n        migrations.CreateModel(\n            name=\"Item\",\n            fields=[(\"id\", models.BigAutoField(primary_key=True))],\n        ),\n    ]\n";

/// A deploy repository whose app `subshop` is a git submodule: at `v1` the
/// submodule has no migrations, at `v2` it has `0001_initial`. `in_place`
/// keeps the submodule's repository in its own `subshop/.git` directory
/// instead of `.git/modules/subshop`.
fn submodule_repo(in_place: bool) -> (TestRepo, TestRepo) {
    let mut sub = TestRepo::new();
    sub.write("__init__.py", "");
    sub.write("migrations/__init__.py", "");
    sub.commit("app without migrations", None);
    let mut r = TestRepo::new();
    r.copy_fixture("demo/v1", "");
    let settings = r.read("shopsite/settings.py");
    r.write(
        "shopsite/settings.py",
        settings.replace("    \"shop\",\n", "    \"shop\",\n    \"subshop\",\n"),
    );
    r.write("stack.yml", STACK.replace("TAG", "1"));
    let url = sub.path().to_str().unwrap().to_string();
    if in_place {
        r.git(&[
            "-c",
            "protocol.file.allow=always",
            "clone",
            "-q",
            &url,
            "subshop",
        ]);
    }
    r.git(&[
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "-q",
        &url,
        "subshop",
    ]);
    r.commit("v1", Some("v1"));
    sub.write("migrations/0001_initial.py", SUBSHOP_0001);
    sub.commit("first migration", None);
    let git_in_sub = |args: &[&str]| {
        let out = common::git_command(&r.path().join("subshop"), r.home.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git_in_sub(&[
        "-c",
        "protocol.file.allow=always",
        "pull",
        "-q",
        "origin",
        "main",
    ]);
    r.write("stack.yml", STACK.replace("TAG", "2"));
    r.commit("v2", Some("v2"));
    (r, sub)
}

#[test]
fn r15_an_app_in_a_submodule_is_read_from_the_submodules_objects() {
    for in_place in [false, true] {
        let (r, _sub) = submodule_repo(in_place);
        assert_eq!(
            r.path().join("subshop/.git").is_dir(),
            in_place,
            "the layout under test"
        );
        let plan = r.run_json(
            &["plan", "--from", "v2", "--to", "v1", "--format", "json"],
            0,
        );
        let commands = plan["commands"].to_string();
        assert!(
            commands.contains("python manage.py migrate subshop zero"),
            "in_place={in_place}: {plan}"
        );
        // Warm caches give the same plan.
        let again = r.run_json(
            &["plan", "--from", "v2", "--to", "v1", "--format", "json"],
            0,
        );
        assert_eq!(again["commands"], plan["commands"]);
        r.write("stack.yml", STACK.replace("TAG", "1"));
        r.tagback()
            .arg("check")
            .assert()
            .code(1)
            .stdout(predicate::str::contains("migrate subshop zero"));
        // Once the submodule's objects are gone, nothing cached stands in for them.
        let objects = if in_place {
            r.path().join("subshop/.git")
        } else {
            r.path().join(".git/modules/subshop")
        };
        std::fs::remove_dir_all(objects).unwrap();
        r.tagback()
            .args(["plan", "--from", "v2", "--to", "v1"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(
                "git submodule update --init subshop",
            ));
    }
}

#[test]
fn r15_an_app_in_a_submodule_that_is_not_checked_out_is_exit_2_saying_what_to_do() {
    let (r, _sub) = submodule_repo(false);
    let clone = tempfile::tempdir().unwrap();
    let out = common::git_command(clone.path(), r.home.path())
        .args(["clone", "-q", "--no-recurse-submodules"])
        .arg(r.path())
        .arg("c")
        .output()
        .unwrap();
    assert!(out.status.success());
    let dir = clone.path().join("c");
    common::git_command(&dir, r.home.path())
        .args(["fetch", "-q", "--tags"])
        .output()
        .unwrap();
    assert_cmd::Command::cargo_bin("tagback")
        .unwrap()
        .current_dir(&dir)
        .env("HOME", r.home.path())
        .args(["plan", "--from", "v2", "--to", "v1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("subshop at v"))
        .stderr(predicate::str::contains("is a git submodule"))
        .stderr(predicate::str::contains(
            "git submodule update --init subshop",
        ));
}

// ---------------------------------------------------------------- wording

#[test]
fn r15_check_in_a_bare_repository_asks_for_to_instead_of_a_working_tree() {
    let r = shop_repo();
    let bare = tempfile::tempdir().unwrap();
    let out = common::git_command(bare.path(), r.home.path())
        .args(["clone", "-q", "--bare"])
        .arg(r.path())
        .arg("b.git")
        .output()
        .unwrap();
    assert!(out.status.success());
    let dir = bare.path().join("b.git");
    for cmd in ["check", "gate"] {
        assert_cmd::Command::cargo_bin("tagback")
            .unwrap()
            .current_dir(&dir)
            .env("HOME", r.home.path())
            .arg(cmd)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("is a bare repository"))
            .stderr(predicate::str::contains("pass --to REV"))
            .stderr(predicate::str::contains("the working tree").not());
    }
    assert_cmd::Command::cargo_bin("tagback")
        .unwrap()
        .current_dir(&dir)
        .env("HOME", r.home.path())
        .args(["check", "--from", "v1", "--to", "v2"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("upgrade"));
}

#[test]
fn r15_pre_push_input_past_the_bound_is_refused_not_truncated() {
    let r = shop_repo();
    let head = rev(&r, "HEAD");
    let line = format!("refs/heads/main {head} refs/heads/main {head}\n");
    let big = line.repeat((1 << 20) / line.len() + 2);
    r.tagback()
        .args(["hook", "pre-push", "origin", "url"])
        .write_stdin(big)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("larger than 1024 KiB"));
}

#[test]
fn r15_the_rollback_of_a_renamed_service_runs_where_it_is_deployed() {
    let r = shop_repo();
    r.write(
        "stack.yml",
        STACK.replace("TAG", "1").replace("  web:", "  webnew:"),
    );
    let script = r.path().join("rollback.sh");
    for name in ["webnew", "web"] {
        r.tagback()
            .args(["script", "--service", name, "-o"])
            .arg(&script)
            .assert()
            .code(0);
        let text = std::fs::read_to_string(&script).unwrap();
        assert!(text.contains("SERVICE_NAME='web'"), "{text}");
        assert!(text.contains("migrate shop 0002_product_sku"), "{text}");
    }
    let out = r.run_json(&["check", "--format", "json"], 1);
    assert_eq!(out["services"][0]["renamed_from"], "web");
}

/// The demo shop at v1 and v2 with shop's migrations (v2 adds two) read
/// through a symbolic link made by `link(repo, revision)` before each commit.
#[cfg(unix)]
fn demo_edited(link: impl Fn(&TestRepo, &str)) -> TestRepo {
    let mut r = TestRepo::new();
    for v in ["v1", "v2"] {
        for d in ["accounts", "shop", "legacy"] {
            if r.path().join(d).exists() {
                r.remove(d);
            }
        }
        r.copy_fixture(&format!("demo/{v}"), "");
        r.write("stack.yml", STACK.replace("TAG", &v[1..]));
        link(&r, v);
        r.commit(v, Some(v));
    }
    r
}

/// `plan --from v2 --to v1` refused with exit 2, its stderr naming `what`.
fn plan_refused(r: &TestRepo, what: &str) -> assert_cmd::assert::Assert {
    r.tagback()
        .args(["plan", "--from", "v2", "--to", "v1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(what))
}

#[cfg(unix)]
#[test]
fn r15_a_migrations_directory_behind_a_symbolic_link_is_exit_2_naming_the_link() {
    // shop/migrations -> ../legacy/shop_migrations: a checkout (and Django)
    // reads v2's two new migrations through it. Before, the link was taken
    // for a file, shop for an app without migrations, and the plan said
    // nothing was to be unapplied.
    let r = demo_edited(|r, _| {
        std::fs::create_dir_all(r.path().join("legacy")).unwrap();
        std::fs::rename(
            r.path().join("shop/migrations"),
            r.path().join("legacy/shop_migrations"),
        )
        .unwrap();
        std::os::unix::fs::symlink(
            "../legacy/shop_migrations",
            r.path().join("shop/migrations"),
        )
        .unwrap();
    });
    plan_refused(&r, "shop/migrations at v2 is a symbolic link")
        .stderr(predicate::str::contains("replace the link"));
}

#[cfg(unix)]
#[test]
fn r15_a_migration_file_behind_a_symbolic_link_is_exit_2_naming_the_link() {
    // v2's 0004_order_code.py is a link to a file elsewhere in the tree:
    // before, the link's text was parsed as Python ("invalid Python").
    let r = demo_edited(|r, v| {
        if v == "v2" {
            let file = "shop/migrations/0004_order_code.py";
            std::fs::create_dir_all(r.path().join("legacy")).unwrap();
            std::fs::rename(
                r.path().join(file),
                r.path().join("legacy/0004_order_code.py"),
            )
            .unwrap();
            std::os::unix::fs::symlink("../../legacy/0004_order_code.py", r.path().join(file))
                .unwrap();
        }
    });
    plan_refused(
        &r,
        "shop/migrations/0004_order_code.py at v2 is a symbolic link",
    );
}

#[test]
fn r15_a_committed_sourceless_migration_is_exit_2_naming_it() {
    // v2 adds 0004_order_code only as a compiled module: Django imports it,
    // so a plan without it would leave its rows and columns behind.
    let r = demo_edited(|r, v| {
        if v == "v2" {
            let dir = r.path().join("shop/migrations");
            std::fs::rename(
                dir.join("0004_order_code.py"),
                dir.join("0004_order_code.pyc"),
            )
            .unwrap();
        }
    });
    plan_refused(
        &r,
        "shop/migrations/0004_order_code.pyc at v2 is a compiled module without its source",
    );
}
