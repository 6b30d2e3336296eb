//! Fixture cases: every `fixtures/cases/<case>/` holds revisions of a Django
//! project built with real `makemigrations`/`squashmigrations` and a
//! `truth.json` of the plans real Django confirmed (its commands, run on a
//! database the newer code migrated, give exactly a fresh migrate of the
//! older code — or real Django fails where tagback refuses). They are written
//! by `tests/django/harness.py --export-fixtures fixtures/cases` (see
//! `fixtures/cases/README.md`).
//!
//! Each case becomes a git repository (one commit and tag per revision); every
//! pair must plan exactly to its truth, and what the user sees — the plan as
//! text, JSON and markdown, `check` in every format, the rollback script of
//! every strategy — is pinned by insta snapshots (`tests/snapshots/`).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{TestRepo, copy_tree};
use serde_json::Value;

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cases")
}

/// Every case directory with a truth file, sorted.
fn cases() -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(cases_dir())
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            p.join("truth.json")
                .is_file()
                .then(|| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        })
        .collect();
    out.sort();
    out
}

/// A repository with one commit and tag per revision directory of `case`.
fn build_repo(case: &Path) -> TestRepo {
    let mut r = TestRepo::new();
    let mut tags: Vec<String> = std::fs::read_dir(case)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            e.file_type()
                .unwrap()
                .is_dir()
                .then(|| e.file_name().to_string_lossy().into_owned())
        })
        .collect();
    tags.sort();
    for tag in &tags {
        for e in std::fs::read_dir(r.path()).unwrap() {
            let name = e.unwrap().file_name();
            if name != ".git" {
                r.remove(&name.to_string_lossy());
            }
        }
        copy_tree(&case.join(tag), r.path());
        r.commit(tag, Some(tag));
    }
    r
}

fn run(r: &TestRepo, args: &[&str]) -> (i32, String) {
    let out = r.tagback().args(args).output().unwrap();
    assert!(
        out.stderr.is_empty(),
        "tagback {args:?} wrote to stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    (
        out.status.code().unwrap(),
        text.replace(&*r.path().to_string_lossy(), "[REPO]"),
    )
}

fn sorted_pairs(v: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_string(),
                p[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_case_plans_exactly_what_real_django_confirmed() {
    let cases = cases();
    assert!(cases.len() >= 10, "fixture cases missing: {cases:?}");
    let mut pairs = 0;
    for (name, dir) in &cases {
        let truth: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("truth.json")).unwrap())
                .unwrap();
        let r = build_repo(dir);
        for t in truth["pairs"].as_array().unwrap() {
            let (newer, older) = (t["newer"].as_str().unwrap(), t["older"].as_str().unwrap());
            let ctx = format!("{name} {newer}->{older}");
            assert_ne!(
                t["django"], "DISAGREES",
                "{ctx}: real Django disagreed when exported"
            );
            let (code, json) = run(
                &r,
                &["plan", "--from", newer, "--to", older, "--format", "json"],
            );
            assert_eq!(code, 0, "{ctx}: {json}");
            let plan: Value = serde_json::from_str(&json).unwrap();
            assert_eq!(plan["version"], 1, "{ctx}");
            let targets: BTreeMap<String, String> = plan["steps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s.get("kind").is_none())
                .map(|s| {
                    (
                        s["app"].as_str().unwrap().to_string(),
                        s["target"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            let want: BTreeMap<String, String> =
                serde_json::from_value(t["targets"].clone()).unwrap();
            assert_eq!(targets, want, "{ctx}: targets");
            // The executor step (branches under merges): its order, and every
            // migration no per-app target reaches.
            let executor: Vec<Value> = plan["steps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["kind"] == "executor")
                .map(|s| s["unapply"].clone())
                .collect();
            let want_executor = t.get("executor").cloned().unwrap_or(Value::Array(vec![]));
            assert_eq!(
                Value::Array(executor),
                want_executor,
                "{ctx}: executor step"
            );
            let mut unreachable: Vec<String> = plan
                .get("unreachable")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|u| {
                    assert_eq!(u["code"], "unreachable-by-migrate", "{ctx}");
                    assert!(u["file"].is_string(), "{ctx}: {u}");
                    let m = u["message"].as_str().unwrap();
                    m.split(' ').next().unwrap().to_string()
                })
                .collect();
            unreachable.sort();
            let want_unreachable = t
                .get("unreachable")
                .cloned()
                .unwrap_or(Value::Array(vec![]));
            assert_eq!(
                serde_json::to_value(&unreachable).unwrap(),
                want_unreachable,
                "{ctx}: unreachable"
            );
            assert_eq!(
                sorted_pairs(&plan["unapply"]),
                sorted_pairs(&t["unapply"]),
                "{ctx}: unapply"
            );
            let codes: std::collections::BTreeSet<&str> = plan["problems"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["code"].as_str().unwrap())
                .collect();
            let want_codes: std::collections::BTreeSet<&str> = t["problem_codes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap())
                .collect();
            assert_eq!(codes, want_codes, "{ctx}: problem codes");
            let mut irr: Vec<(String, String, u64)> = plan["irreversible"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| {
                    (
                        i["migration"].as_str().unwrap().to_string(),
                        i["operation"].as_str().unwrap().to_string(),
                        i["line"].as_u64().unwrap(),
                    )
                })
                .collect();
            irr.sort();
            let want_irr: Vec<(String, String, u64)> =
                serde_json::from_value(t["irreversible"].clone()).unwrap();
            assert_eq!(irr, want_irr, "{ctx}: irreversible operations");
            let old_only: Vec<&str> = plan["old_only_apps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["app"].as_str().unwrap())
                .collect();
            let want_old: Vec<&str> = t["old_only_apps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            assert_eq!(old_only, want_old, "{ctx}: old-only apps");
            if let Some(want) = t["expect"].get("note_codes") {
                let got: std::collections::BTreeSet<&str> = plan["notes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n["code"].as_str().unwrap())
                    .collect();
                let want: std::collections::BTreeSet<&str> = want
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap())
                    .collect();
                assert_eq!(got, want, "{ctx}: notes");
            }
            pairs += 1;
        }
    }
    assert!(pairs >= 10, "only {pairs} verified pairs");
}

/// What a user sees for every pair with something to unapply: the plan in
/// text, JSON and markdown.
#[test]
fn plan_outputs_are_pinned() {
    for (name, dir) in cases() {
        let truth: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("truth.json")).unwrap())
                .unwrap();
        let r = build_repo(&dir);
        for t in truth["pairs"].as_array().unwrap() {
            let (newer, older) = (t["newer"].as_str().unwrap(), t["older"].as_str().unwrap());
            if t["unapply"].as_array().unwrap().is_empty()
                && t["problem_codes"] == Value::Array(vec![])
            {
                continue;
            }
            for format in ["text", "json", "markdown"] {
                let (_, out) = run(
                    &r,
                    &["plan", "--from", newer, "--to", older, "--format", format],
                );
                insta::assert_snapshot!(format!("plan@{name}@{newer}-{older}.{format}"), out);
            }
        }
    }
}

/// The deploy story on each case's first verified downgrade with steps: the
/// stack file at HEAD deploys the newer tag, the working tree the older one.
/// `check` in every format and the rollback script of every strategy.
#[test]
fn check_and_script_outputs_are_pinned() {
    for (name, dir) in cases() {
        let truth: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("truth.json")).unwrap())
                .unwrap();
        let Some(t) = truth["pairs"].as_array().unwrap().iter().find(|t| {
            t["django"] == "verified"
                && (!t["targets"].as_object().unwrap().is_empty()
                    || t.get("executor")
                        .is_some_and(|e| e != &Value::Array(vec![])))
        }) else {
            continue;
        };
        let (newer, older) = (t["newer"].as_str().unwrap(), t["older"].as_str().unwrap());
        let mut r = build_repo(&dir);
        let stack = |tag: &str| {
            format!(
                "services:\n  web:\n    image: registry.example.com:5000/shop:{tag}\n    deploy:\n      replicas: 2\n"
            )
        };
        r.write("stack.yml", stack(newer));
        r.commit("deploy", None);
        r.write("stack.yml", stack(older));
        for format in ["text", "json", "markdown"] {
            let (code, out) = run(&r, &["check", "--format", format]);
            assert_eq!(code, 1, "{name}: an unrecorded downgrade blocks: {out}");
            insta::assert_snapshot!(format!("check@{name}.{format}"), out);
        }
        for strategy in ["exec", "job", "compose"] {
            let (code, out) = run(
                &r,
                &[
                    "script",
                    "--service",
                    "web",
                    "--strategy",
                    strategy,
                    "--stack-name",
                    "shop",
                ],
            );
            assert!(
                code == 0 || code == 1,
                "{name} {strategy}: exit {code}: {out}"
            );
            insta::assert_snapshot!(format!("script@{name}.{strategy}"), out);
        }
    }
}

/// `acknowledge:` in `.tagback.yml` moves a data-loss warning to
/// `acknowledged` with its reason (still shown, in every output, but no
/// longer a warning); a blocking finding cannot be acknowledged.
#[test]
fn acknowledged_data_loss_stays_visible_with_its_reason() {
    let r = build_repo(&cases_dir().join("multi_app"));
    r.write(
        ".tagback.yml",
        "acknowledge:\n  - code: data-loss\n    migration: members.0002_badge\n    reason: badges were never used in production\n",
    );
    let plan = ["plan", "--repo", ".", "--from", "v2", "--to", "v1"];
    let (code, out) = run(&r, &[&plan[..], &["--format", "json"]].concat());
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let lost: Vec<&str> = v["data_loss"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["migration"].as_str().unwrap())
        .collect();
    assert!(!lost.contains(&"0002_badge"), "{lost:?}");
    assert_eq!(v["acknowledged"][0]["migration"], "members.0002_badge");
    assert_eq!(v["acknowledged"][0]["code"], "data-loss");
    assert_eq!(
        v["acknowledged"][0]["reason"],
        "badges were never used in production"
    );
    let (_, text) = run(&r, &plan);
    insta::assert_snapshot!("plan@multi_app@acknowledged.text", text);

    r.write(
        ".tagback.yml",
        "acknowledge:\n  - code: irreversible\n    migration: members.0003_lower_nicknames\n    reason: trust me\n",
    );
    let out = r.tagback().args(plan).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(".tagback.yml") && err.contains("cannot be acknowledged"),
        "{err}"
    );
}
