//! The git corpus (`corpus/git/<project>/<older>..<newer>.json`): real Django
//! applications planned on their own release tags, with Django's truth
//! computed by `corpus/git/build.py` in each tag's own venv.
//!
//! The repositories themselves are not committed. With
//! `TAGBACK_CORPUS_MIRRORS=DIR`, where `DIR/<project>` is `git clone URL`
//! of the pair's `repo` (or `DIR/<owner>+<name>/repo`, the search tool's
//! mirror layout), every stored pair is planned again and must keep its
//! outcome: an exact pair plans exactly the truth's unapply set and targets
//! (the repository's own apps and the packages whose pinned version
//! changed); a blocked pair still blocks with the same finding codes.
//! Without the variable the test says loudly that it was skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn pairs() -> Vec<(PathBuf, Value)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/git");
    let mut out = Vec::new();
    for project in std::fs::read_dir(&root).unwrap() {
        let dir = project.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "json") {
                let v: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
                out.push((f, v));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The truth tagback must plan: the repository's own apps and the installed
/// packages whose pinned version changed (tagback reads their archives).
fn planned_truth(v: &Value) -> (Vec<(String, String)>, Value) {
    let truth = &v["truth"];
    let mut unapply = sorted_pairs(&truth["own"]["unapply"]);
    unapply.extend(sorted_pairs(&truth["packages"]["unapply"]));
    unapply.sort();
    let mut targets = truth["own"]["targets"].as_object().unwrap().clone();
    for (app, target) in truth["packages"]["targets"].as_object().unwrap() {
        targets.insert(app.clone(), target.clone());
    }
    (unapply, Value::Object(targets))
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

/// Every stored pair is well-formed and its recorded outcome agrees with
/// its own truth (no Python, no repository needed).
#[test]
fn corpus_git_truth_files_are_consistent() {
    let all = pairs();
    assert!(!all.is_empty(), "no corpus pairs under corpus/git");
    for (f, v) in &all {
        let outcome = v["tagback"]["outcome"].as_str().unwrap();
        assert!(
            matches!(outcome, "exact" | "blocked"),
            "{}: outcome {outcome}",
            f.display()
        );
        assert!(v["newer"]["commit"].as_str().unwrap().len() == 40);
        assert!(v["repo"].as_str().unwrap().starts_with("https://"));
        let own = &v["truth"]["own"];
        assert!(own["unapply"].is_array() && own["targets"].is_object());
        if outcome == "exact" {
            // What tagback printed when the pair was built is the truth.
            let (unapply, targets) = planned_truth(v);
            assert_eq!(v["tagback"]["targets"], targets, "{}", f.display());
            assert_eq!(
                v["tagback"]["unapply_count"].as_u64().unwrap() as usize,
                unapply.len(),
                "{}",
                f.display()
            );
        }
        if let Some(r) = v["replay"].as_object() {
            assert_eq!(r["ok"], true, "{}: replay failed", f.display());
        }
    }
}

fn mirror(dir: &Path, v: &Value) -> Option<PathBuf> {
    let project = v["project"].as_str().unwrap();
    let url = v["repo"].as_str().unwrap();
    let mut parts = url.trim_end_matches('/').rsplit('/');
    let name = parts.next().unwrap();
    let owner = parts.next().unwrap();
    [
        dir.join(project),
        dir.join(format!("{owner}+{name}")).join("repo"),
    ]
    .into_iter()
    .find(|p| p.exists())
}

#[test]
fn corpus_git_pairs_plan_as_stored_on_the_real_repositories() {
    let Some(dir) = std::env::var_os("TAGBACK_CORPUS_MIRRORS") else {
        eprintln!(
            "\n*** SKIPPED corpus_git_pairs_plan_as_stored_on_the_real_repositories: set TAGBACK_CORPUS_MIRRORS=DIR \
             holding the corpus repositories (DIR/<project> = git clone URL; see corpus/git/README.md) ***\n"
        );
        return;
    };
    let dir = PathBuf::from(dir);
    let bin = assert_cmd::cargo::cargo_bin("tagback");
    let mut checked = 0;
    for (f, v) in pairs() {
        let Some(repo) = mirror(&dir, &v) else {
            panic!(
                "{}: no repository for {} under {}",
                f.display(),
                v["repo"],
                dir.display()
            );
        };
        let mut cmd = Command::new(&bin);
        cmd.args(["plan", "--repo"])
            .arg(&repo)
            .args(["--from", v["newer"]["tag"].as_str().unwrap()])
            .args(["--to", v["older"]["tag"].as_str().unwrap()])
            .args(["--format", "json"]);
        // The `.tagback.yml` lines the pair was built with (where tagback's
        // zero-config message asked for them).
        let yml = std::env::temp_dir().join(format!("tagback-corpus-{}.yml", std::process::id()));
        if let Some(text) = v["tagback_yml"].as_str() {
            std::fs::write(&yml, text).unwrap();
            cmd.arg("--config").arg(&yml);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
        let codes = |key: &str| -> Vec<String> {
            let mut c: Vec<String> = plan[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["code"].as_str().unwrap().to_string())
                .collect();
            c.sort();
            c
        };
        let stored = |key: &str| -> Vec<String> {
            let mut c: Vec<String> = v["tagback"][key]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["code"].as_str().unwrap().to_string())
                .collect();
            c.sort();
            c
        };
        match v["tagback"]["outcome"].as_str().unwrap() {
            "exact" => {
                let (unapply, want_targets) = planned_truth(&v);
                assert_eq!(sorted_pairs(&plan["unapply"]), unapply, "{}", f.display());
                let targets: serde_json::Map<String, Value> = plan["steps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| (s["app"].as_str().unwrap().to_string(), s["target"].clone()))
                    .collect();
                assert_eq!(Value::Object(targets), want_targets, "{}", f.display());
                assert!(codes("problems").is_empty(), "{}", f.display());
            }
            _ => {
                assert_eq!(codes("problems"), stored("problems"), "{}", f.display());
                assert_eq!(codes("dynamic"), stored("dynamic"), "{}", f.display());
            }
        }
        checked += 1;
    }
    eprintln!("corpus_git: {checked} pairs re-checked against their repositories");
}
