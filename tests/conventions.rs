//! Command-line conventions, end to end: `init`, `completions`, `man`,
//! `--color`, `--quiet`, and the long help of every subcommand.

mod common;

use common::{STACK, shop_repo};
use predicates::prelude::*;

fn help(args: &[&str]) -> String {
    let r = shop_repo();
    let out = r.tagback().args(args).assert().code(0).get_output().clone();
    assert!(out.stderr.is_empty());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn long_help_shows_examples_exit_statuses_and_environment() {
    insta::assert_snapshot!("help_top", help(&["--help"]));
    for sub in [
        "check",
        "plan",
        "script",
        "record",
        "gate",
        "hook",
        "install",
        "demo",
        "init",
        "completions",
        "schema",
    ] {
        let text = help(&[sub, "--help"]);
        assert!(text.contains("Examples:\n  "), "{sub}: no examples");
        assert!(
            text.contains("Exit status:\n  0  "),
            "{sub}: no exit statuses"
        );
        assert!(
            text.contains("[env: TAGBACK_COLOR="),
            "{sub}: env not shown"
        );
        if sub == "check" {
            insta::assert_snapshot!("help_check", text);
        }
    }
}

#[test]
fn init_writes_a_commented_config_that_check_then_reads() {
    let r = shop_repo();
    r.tagback()
        .arg("init")
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "web: Django (tag 2 is revision v2 here)",
        ))
        .stdout(predicate::str::contains("nginx: not Django"));
    let written = r.read(".tagback.yml");
    insta::assert_snapshot!("init_shop", written);
    // An existing file is never overwritten without --force.
    r.write(".tagback.yml", "# mine\n");
    r.tagback()
        .arg("init")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("already exists; pass --force"));
    assert_eq!(r.read(".tagback.yml"), "# mine\n");
    r.tagback()
        .args(["init", "--stdout"])
        .assert()
        .code(0)
        .stdout(written.clone());
    assert_eq!(r.read(".tagback.yml"), "# mine\n");
    r.tagback().args(["init", "--force"]).assert().code(0);
    assert_eq!(r.read(".tagback.yml"), written);
    // The file is what tagback reads: a downgrade is still blocked, by its config.
    r.write("stack.yml", STACK.replace("TAG", "1"));
    r.tagback()
        .arg("check")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("[BLOCKED] web: downgrade"));
}

#[test]
fn init_leaves_unknown_services_for_the_user_to_decide() {
    let r = shop_repo();
    r.write(
        "stack.yml",
        "services:\n  web:\n    image: shop:2\n  worker:\n    image: other/thing:abc123\n  db:\n    image: docker.io/library/postgres:16\n  assets:\n    build: ./assets\n",
    );
    let out = r
        .tagback()
        .args(["init", "--stdout"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("  web:\n    # image shop:2 (stack.yml:3): tag 2 is revision v2"),
        "{text}"
    );
    assert!(text.contains("  # worker:\n  #   image other/thing:abc123 (stack.yml:5): tag abc123 is not a revision of this repository."), "{text}");
    assert!(text.contains("  db:\n    # image docker.io/library/postgres:16 (stack.yml:7): not Django\n    django: false\n"), "{text}");
    assert!(
        text.contains("  # assets: (in stack.yml) has no image: (build-only)"),
        "{text}"
    );
}

#[test]
fn completions_for_every_shell_and_bash_parses_them() {
    let r = shop_repo();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = r
            .tagback()
            .args(["completions", shell])
            .assert()
            .code(0)
            .get_output()
            .clone();
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("init") && text.contains("gate"), "{shell}");
        if shell == "bash" {
            let path = r.path().join("tagback.bash");
            std::fs::write(&path, &text).unwrap();
            let ok = std::process::Command::new("bash")
                .arg("-n")
                .arg(&path)
                .status()
                .unwrap();
            assert!(ok.success(), "bash -n refused the completion script");
        }
    }
    r.tagback().args(["completions", "tcsh"]).assert().code(2);
}

#[test]
fn man_writes_one_page_per_command() {
    let r = shop_repo();
    let dir = r.path().join("man");
    r.tagback()
        .args(["man", "--dir"])
        .arg(&dir)
        .assert()
        .code(0);
    for page in [
        "tagback.1",
        "tagback-check.1",
        "tagback-init.1",
        "tagback-gate.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(text.contains(".TH"), "{page}");
    }
    let check = std::fs::read_to_string(dir.join("tagback-check.1")).unwrap();
    assert!(
        check.contains("Exit status"),
        "long help reaches the man page"
    );
}

fn downgrade() -> common::TestRepo {
    let r = shop_repo();
    r.write("stack.yml", STACK.replace("TAG", "1"));
    r
}

const ESC: &str = "\u{1b}[";

#[test]
fn color_follows_the_flag_then_no_color_then_clicolor_force() {
    let r = downgrade();
    let run = |args: &[&str], env: &[(&str, &str)], no_color: bool| {
        let mut c = r.tagback();
        if !no_color {
            c.env_remove("NO_COLOR");
        }
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.args(args).assert().code(1).get_output().clone();
        String::from_utf8(out.stdout).unwrap()
    };
    // NO_COLOR is set by TestRepo.
    assert!(!run(&["check"], &[], true).contains(ESC));
    assert!(run(&["--color", "always", "check"], &[], true).contains(ESC));
    assert!(run(&["check", "--color=always"], &[], true).contains(ESC));
    assert!(run(&["check"], &[("TAGBACK_COLOR", "always")], true).contains(ESC));
    // Not a terminal: no colour unless forced.
    assert!(!run(&["check"], &[], false).contains(ESC));
    assert!(run(&["check"], &[("CLICOLOR_FORCE", "1")], false).contains(ESC));
    assert!(
        !run(
            &["--color", "never", "check"],
            &[("CLICOLOR_FORCE", "1")],
            false
        )
        .contains(ESC)
    );
}

#[test]
fn quiet_prints_nothing_and_keeps_the_verdict() {
    let r = downgrade();
    r.tagback()
        .args(["--quiet", "check"])
        .assert()
        .code(1)
        .stdout("")
        .stderr("");
    r.tagback()
        .args(["check", "-q", "--format", "json"])
        .assert()
        .code(1)
        .stdout("");
    r.tagback()
        .args(["-q", "script", "--service", "web"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("write it with -o FILE"));
    r.tagback()
        .args(["-q", "script", "--service", "web", "-o", "rollback.sh"])
        .assert()
        .code(0)
        .stdout("");
    assert!(r.read("rollback.sh").starts_with("#!/usr/bin/env bash"));
    // Errors still reach stderr.
    r.tagback()
        .args(["-q", "check", "--from", "no-such-rev"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no-such-rev"));
}

#[test]
fn a_repository_owned_by_another_user_is_refused_saying_how_to_pass() {
    let uid = std::process::Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        eprintln!("SKIPPED: changing a repository's owner needs root");
        return;
    }
    let r = shop_repo();
    let chown = std::process::Command::new("chown")
        .args(["-R", "4242:4242"])
        .arg(r.path())
        .status()
        .unwrap();
    assert!(chown.success());
    r.tagback()
        .arg("check")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is owned by another user"))
        .stderr(predicate::str::contains("--user"));
    // safe.directory in the global config (HOME is the test's) lets it through.
    let home = r.home.path().join(".gitconfig");
    std::fs::write(
        &home,
        format!("[safe]\n\tdirectory = {}\n", r.path().display()),
    )
    .unwrap();
    r.tagback().arg("check").assert().code(0);
}
