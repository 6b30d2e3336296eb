//! The GitHub Action's shell logic (scripts/action/*.sh) on recorded-shape
//! event payloads (tests/fixtures/action/) and real repositories, with the
//! real tagback binary: which revisions it picks, what it writes to the step
//! summary and outputs, and the status the action ends with.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{STACK, TestRepo, shop_repo};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The deploy repository: main at v2 (shop:2) pushed to a bare origin, and a
/// branch `rollback-web` one commit ahead moving web back to shop:1.
struct Scenario {
    repo: TestRepo,
    base: String,
    head: String,
    runner: tempfile::TempDir,
}

impl Scenario {
    fn new() -> Scenario {
        let mut repo = shop_repo();
        let runner = tempfile::tempdir().unwrap();
        let origin = runner.path().join("origin.git");
        repo.git(&["clone", "-q", "--bare", ".", origin.to_str().unwrap()]);
        repo.git(&["remote", "add", "origin", origin.to_str().unwrap()]);
        repo.git(&["fetch", "-q", "origin"]);
        let base = rev(&repo, "HEAD");
        repo.git(&["checkout", "-q", "-b", "rollback-web"]);
        repo.write("stack.yml", STACK.replace("TAG", "1"));
        repo.commit("roll web back to shop:1", None);
        let head = rev(&repo, "HEAD");
        Scenario {
            repo,
            base,
            head,
            runner,
        }
    }

    /// A payload from tests/fixtures/action with its placeholders filled.
    fn payload(&self, name: &str, fill: &[(&str, &str)]) -> PathBuf {
        let mut text =
            std::fs::read_to_string(root().join("tests/fixtures/action").join(name)).unwrap();
        for (k, v) in fill {
            text = text.replace(k, v);
        }
        let path = self.runner.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Run one of scripts/action/*.sh as the runner would, in the checkout.
    fn script(&self, name: &str, env: &[(&str, &str)]) -> Run {
        let out_file = self.runner.path().join("github_output");
        let summary = self.runner.path().join("step_summary");
        std::fs::write(&out_file, "").unwrap();
        let bin = assert_cmd::cargo::cargo_bin("tagback");
        let mut c = Command::new("bash");
        c.arg(root().join("scripts/action").join(name))
            .current_dir(self.repo.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("GIT_") || k.starts_with("GITHUB_") || k.starts_with("TAGBACK_") {
                c.env_remove(k);
            }
        }
        c.env(
            "PATH",
            format!(
                "{}:{}",
                bin.parent().unwrap().display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("HOME", self.repo.home.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("NO_COLOR", "1")
        .env("RUNNER_TEMP", self.runner.path())
        .env("GITHUB_OUTPUT", &out_file)
        .env("GITHUB_STEP_SUMMARY", &summary);
        for (k, v) in env {
            c.env(k, v);
        }
        let output = c.output().unwrap();
        let outputs = std::fs::read_to_string(&out_file)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Run {
            output,
            outputs,
            summary: std::fs::read_to_string(&summary).unwrap_or_default(),
        }
    }

    fn revisions(&self, event: &str, payload: &Path) -> Run {
        self.script(
            "revisions.sh",
            &[
                ("GITHUB_EVENT_NAME", event),
                ("GITHUB_EVENT_PATH", payload.to_str().unwrap()),
            ],
        )
    }
}

fn rev(r: &TestRepo, name: &str) -> String {
    String::from_utf8(r.git(&["rev-parse", name]).stdout)
        .unwrap()
        .trim()
        .to_string()
}

struct Run {
    output: Output,
    outputs: BTreeMap<String, String>,
    summary: String,
}

impl Run {
    fn code(&self) -> i32 {
        self.output.status.code().unwrap()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    /// Exit 0 with from/to as given.
    fn picks(&self, from: &str, to: &str) {
        assert_eq!(self.code(), 0, "{}", self.stderr());
        assert_eq!(self.outputs["from"], from, "{}", self.stderr());
        assert_eq!(self.outputs["to"], to);
        assert_eq!(self.outputs["skip"], "false");
    }
}

#[test]
fn push_compares_before_with_after() {
    let s = Scenario::new();
    let p = s.payload("push.json", &[("@BEFORE@", &s.base), ("@AFTER@", &s.head)]);
    s.revisions("push", &p).picks(&s.base, &s.head);
}

#[test]
fn push_of_a_new_branch_compares_with_its_merge_base_with_the_default_branch() {
    let s = Scenario::new();
    for fixture in ["push-new-branch.json", "push-no-before.json"] {
        let p = s.payload(fixture, &[("@AFTER@", &s.head)]);
        let run = s.revisions("push", &p);
        run.picks(&s.base, &s.head);
        assert!(run.stderr().contains("is a new branch"), "{}", run.stderr());
    }
}

#[test]
fn force_push_whose_before_is_gone_falls_back_to_the_default_branch_and_says_so() {
    let s = Scenario::new();
    let p = s.payload("push-force.json", &[("@AFTER@", &s.head)]);
    let run = s.revisions("push", &p);
    run.picks(&s.base, &s.head);
    assert!(
        run.stderr().contains("is not in this checkout"),
        "{}",
        run.stderr()
    );
}

#[test]
fn new_branch_fetches_the_default_branch_when_the_checkout_lacks_it() {
    let s = Scenario::new();
    s.repo
        .git(&["update-ref", "-d", "refs/remotes/origin/main"]);
    let p = s.payload("push-new-branch.json", &[("@AFTER@", &s.head)]);
    s.revisions("push", &p).picks(&s.base, &s.head);
}

#[test]
fn pushing_what_the_default_branch_already_has_and_deleting_a_branch_are_skipped() {
    let s = Scenario::new();
    let p = s.payload("push-new-branch.json", &[("@AFTER@", &s.base)]);
    let run = s.revisions("push", &p);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(run.outputs["skip"], "true");
    let p = s.payload("push-delete.json", &[("@BEFORE@", &s.head)]);
    let run = s.revisions("push", &p);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(run.outputs["skip"], "true");
}

#[test]
fn pull_request_compares_the_merge_base_with_the_head() {
    let s = Scenario::new();
    // main moves on after the branch was cut: the merge base is still v2.
    s.repo.git(&["checkout", "-q", "main"]);
    s.repo.write("README.md", "moved on\n");
    s.repo.git(&["add", "-A"]);
    s.repo
        .git(&["commit", "-q", "--no-verify", "-m", "main moves on"]);
    let main_tip = rev(&s.repo, "HEAD");
    s.repo.git(&["checkout", "-q", &s.head]);
    for event in ["pull_request", "pull_request_target"] {
        let p = s.payload(
            "pull_request.json",
            &[("@BASE@", &main_tip), ("@HEAD@", &s.head)],
        );
        s.revisions(event, &p).picks(&s.base, &s.head);
    }
    let p = s.payload(
        "merge_group.json",
        &[("@BASE@", &s.base), ("@HEAD@", &s.head)],
    );
    s.revisions("merge_group", &p).picks(&s.base, &s.head);
}

#[test]
fn other_events_need_from_and_to_and_missing_commits_are_refused() {
    let s = Scenario::new();
    let p = s.payload("workflow_dispatch.json", &[]);
    let run = s.revisions("workflow_dispatch", &p);
    assert_eq!(run.code(), 2);
    assert!(
        run.stderr().contains("set from: and to:"),
        "{}",
        run.stderr()
    );
    let run = s.script(
        "revisions.sh",
        &[
            ("GITHUB_EVENT_NAME", "workflow_dispatch"),
            ("GITHUB_EVENT_PATH", p.to_str().unwrap()),
            ("TAGBACK_FROM", "main"),
            ("TAGBACK_TO", "rollback-web"),
        ],
    );
    run.picks(&s.base, &s.head);
    let run = s.script(
        "revisions.sh",
        &[("TAGBACK_FROM", "main"), ("TAGBACK_TO", "")],
    );
    assert_eq!(run.code(), 2);
    // A pull request whose head is not in the (shallow) checkout.
    let p = s.payload(
        "pull_request.json",
        &[
            ("@BASE@", &s.base),
            ("@HEAD@", "2222222222222222222222222222222222222222"),
        ],
    );
    let run = s.revisions("pull_request", &p);
    assert_eq!(run.code(), 2);
    assert!(run.stderr().contains("fetch-depth: 0"), "{}", run.stderr());
}

#[test]
fn a_blocked_downgrade_ends_the_action_with_status_1_after_writing_the_summary() {
    let s = Scenario::new();
    let run = s.script(
        "run.sh",
        &[
            ("TAGBACK_FROM", &s.base),
            ("TAGBACK_TO", &s.head),
            ("TAGBACK_ARTIFACT_DIR", "tagback-rollback"),
        ],
    );
    assert_eq!(run.code(), 0, "run.sh itself never fails: {}", run.stderr());
    assert_eq!(run.outputs["gate-status"], "1");
    assert_eq!(run.outputs["status"], "1");
    assert!(run.summary.contains("web"), "{}", run.summary);
    assert!(run.summary.contains("0002_product_sku"), "{}", run.summary);
    let report = std::fs::read_to_string(&run.outputs["report"]).unwrap();
    assert!(run.summary.starts_with(&report[..report.len().min(40)]));
    assert!(run.stdout().contains("::group::tagback gate"));
    assert!(
        run.stdout()
            .contains("::error file=stack.yml,line=3,title=tagback"),
        "annotations: {}",
        run.stdout()
    );
    let quiet = s.script(
        "run.sh",
        &[
            ("TAGBACK_FROM", &s.base),
            ("TAGBACK_TO", &s.head),
            ("TAGBACK_ANNOTATIONS", "false"),
        ],
    );
    assert!(!quiet.stdout().contains("::error"), "{}", quiet.stdout());
    assert_eq!(quiet.outputs["status"], "1");
}

#[test]
fn an_upgrade_passes_and_leaves_its_rollback_in_the_artifact_and_the_summary() {
    let mut s = Scenario::new();
    // rollback-web goes forward again: 1 -> 2 is an upgrade.
    s.repo.write("stack.yml", STACK.replace("TAG", "2"));
    s.repo.commit("forward to shop:2", None);
    let tip = rev(&s.repo, "HEAD");
    let run = s.script(
        "run.sh",
        &[
            ("TAGBACK_FROM", &s.head),
            ("TAGBACK_TO", &tip),
            ("TAGBACK_ARTIFACT_DIR", "tagback-rollback"),
        ],
    );
    assert_eq!(run.outputs["status"], "0", "{}", run.stderr());
    assert_eq!(run.outputs["artifact-status"], "0");
    let dir = s.repo.path().join("tagback-rollback");
    let found: Vec<String> = walk(&dir);
    assert!(
        found.iter().any(|f| f.ends_with("rollback.sh")),
        "{found:?}"
    );
    assert!(found.iter().any(|f| f.ends_with("summary.md")), "{found:?}");
    assert!(run.summary.contains("drops data"), "{}", run.summary);
    // Asked to fail on impossible rollbacks, a possible one still passes.
    let run = s.script(
        "run.sh",
        &[
            ("TAGBACK_FROM", &s.head),
            ("TAGBACK_TO", &tip),
            ("TAGBACK_ARTIFACT_DIR", "tagback-rollback2"),
            ("TAGBACK_FAIL_ON_IMPOSSIBLE_ROLLBACK", "true"),
        ],
    );
    assert_eq!(run.outputs["status"], "0", "{}", run.stderr());
}

#[test]
fn bad_input_is_status_2_and_the_artifact_is_not_attempted() {
    let s = Scenario::new();
    let run = s.script(
        "run.sh",
        &[
            ("TAGBACK_FROM", &s.base),
            ("TAGBACK_TO", "no-such-revision"),
            ("TAGBACK_ARTIFACT_DIR", "tagback-rollback"),
        ],
    );
    assert_eq!(run.outputs["status"], "2", "{}", run.stderr());
    assert_eq!(run.outputs["artifact-status"], "0");
    assert!(!s.repo.path().join("tagback-rollback").exists());
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn install_checks_the_release_checksum_before_putting_tagback_on_path() {
    let s = Scenario::new();
    let releases = s.runner.path().join("releases/v0.1.0");
    std::fs::create_dir_all(&releases).unwrap();
    // A stand-in executable keeps the archive small (the debug binary is
    // 120 MB); what is under test is download, checksum and unpacking.
    let bin = s.runner.path().join("built/tagback");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::write(&bin, "#!/bin/sh\necho 'tagback 0.1.0'\n").unwrap();
    let pkg = Command::new("bash")
        .arg(root().join("scripts/package-release.sh"))
        .arg(&bin)
        .args(["v0.1.0", "x86_64-unknown-linux-gnu"])
        .arg(&releases)
        .output()
        .unwrap();
    assert!(
        pkg.status.success(),
        "{}",
        String::from_utf8_lossy(&pkg.stderr)
    );
    let url = format!("file://{}", s.runner.path().join("releases").display());
    let env = [
        ("TAGBACK_INSTALL", "release"),
        ("TAGBACK_VERSION", "0.1.0"),
        ("RUNNER_ARCH", "X64"),
        ("RUNNER_OS", "Linux"),
        ("TAGBACK_RELEASES", url.as_str()),
    ];
    let run = s.script("install.sh", &env);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let installed = s.runner.path().join("tagback-bin/tagback");
    assert!(
        run.stderr().contains("using tagback 0.1.0 (release)"),
        "{}",
        run.stderr()
    );
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(&bin).unwrap()
    );
    // A tampered archive is refused and nothing is installed.
    std::fs::remove_file(&installed).unwrap();
    let archive = releases.join("tagback-v0.1.0-x86_64-unknown-linux-gnu.tar.gz");
    let mut bytes = std::fs::read(&archive).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&archive, bytes).unwrap();
    let run = s.script("install.sh", &env);
    assert_eq!(run.code(), 2);
    assert!(
        run.stderr()
            .contains("does not match its published SHA-256"),
        "{}",
        run.stderr()
    );
    assert!(!installed.exists());
    // No binary for the architecture, an unknown mode: exit 2, saying so.
    let run = s.script(
        "install.sh",
        &[("TAGBACK_VERSION", "0.1.0"), ("RUNNER_ARCH", "ARM")],
    );
    assert_eq!(run.code(), 2);
    let run = s.script("install.sh", &[("TAGBACK_INSTALL", "brew")]);
    assert_eq!(run.code(), 2);
    let run = s.script("install.sh", &[("TAGBACK_INSTALL", "path")]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
}

/// A stand-in for the three GitHub REST endpoints comment.sh calls (list,
/// create and edit issue comments), keeping comments in memory; `GET /state`
/// returns them. It checks the token and answers 403 to a read-only one.
const FAKE_GITHUB: &str = r#"
import json, re, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
comments = [{"id": 1, "body": "an unrelated comment"}]
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def reply(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
    def authorized(self):
        return self.headers.get("Authorization") == "Bearer good-token"
    def do_GET(self):
        if self.path == "/state": return self.reply(200, comments)
        if self.headers.get("Authorization") not in ("Bearer good-token", "Bearer read-only"):
            return self.reply(401, {"message": "Bad credentials"})
        m = re.fullmatch(r"/repos/shop/deploy/issues/7/comments\?per_page=100&page=(\d+)", self.path)
        if not m: return self.reply(404, {"message": "Not Found"})
        page = int(m.group(1))
        self.reply(200, comments[(page - 1) * 100: page * 100])
    def body(self):
        return json.loads(self.rfile.read(int(self.headers["Content-Length"])))
    def do_POST(self):
        if self.path != "/repos/shop/deploy/issues/7/comments": return self.reply(404, {})
        if not self.authorized(): return self.reply(403, {"message": "Resource not accessible by integration"})
        c = {"id": len(comments) + 1, "body": self.body()["body"]}
        comments.append(c); self.reply(201, c)
    def do_PATCH(self):
        m = re.fullmatch(r"/repos/shop/deploy/issues/comments/(\d+)", self.path)
        if not m or not self.authorized(): return self.reply(404, {})
        for c in comments:
            if c["id"] == int(m.group(1)):
                c["body"] = self.body()["body"]; return self.reply(200, c)
        self.reply(404, {})
s = HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

/// The fake API, stopped when dropped.
struct FakeGithub {
    child: std::process::Child,
    url: String,
}

impl FakeGithub {
    fn start() -> FakeGithub {
        use std::io::BufRead;
        let mut child = Command::new("python3")
            .args(["-c", FAKE_GITHUB])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        FakeGithub {
            child,
            url: format!("http://127.0.0.1:{}", line.trim()),
        }
    }

    fn comments(&self) -> Vec<serde_json::Value> {
        let out = Command::new("curl")
            .args(["-fsS", &format!("{}/state", self.url)])
            .output()
            .unwrap();
        serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).unwrap()
    }
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_pull_request_gets_one_comment_that_later_runs_edit() {
    let s = Scenario::new();
    let api = FakeGithub::start();
    let report = s.runner.path().join("report.md");
    let env = |token: &'static str| {
        vec![
            ("GITHUB_API_URL", api.url.clone()),
            ("GITHUB_REPOSITORY", "shop/deploy".to_string()),
            ("GITHUB_TOKEN", token.to_string()),
            ("TAGBACK_PR", "7".to_string()),
            ("TAGBACK_REPORT", report.display().to_string()),
        ]
    };
    let run = |token: &'static str| {
        let e = env(token);
        let refs: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
        s.script("comment.sh", &refs)
    };
    std::fs::write(&report, "**BLOCKED** web: downgrade\n").unwrap();
    let first = run("good-token");
    assert_eq!(first.code(), 0, "{}", first.stderr());
    assert!(first.stderr().contains("commented on pull request #7"));
    std::fs::write(&report, "ok: web recorded\n").unwrap();
    let second = run("good-token");
    assert_eq!(second.code(), 0, "{}", second.stderr());
    assert!(
        second.stderr().contains("updated the comment"),
        "{}",
        second.stderr()
    );
    let comments = api.comments();
    assert_eq!(
        comments.len(),
        2,
        "one tagback comment besides the unrelated one: {comments:?}"
    );
    assert_eq!(comments[0]["body"], "an unrelated comment");
    assert_eq!(
        comments[1]["body"],
        "<!-- tagback-report -->\nok: web recorded\n"
    );
    // A fork's read-only token: exit 1, saying where the report still is.
    let api2 = FakeGithub::start();
    let e: Vec<(&str, String)> = env("read-only")
        .into_iter()
        .map(|(k, v)| {
            if k == "GITHUB_API_URL" {
                (k, api2.url.clone())
            } else {
                (k, v)
            }
        })
        .collect();
    let refs: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = s.script("comment.sh", &refs);
    assert_eq!(refused.code(), 1);
    assert!(
        refused.stderr().contains("a fork's token is read-only"),
        "{}",
        refused.stderr()
    );
    assert_eq!(api2.comments().len(), 1, "nothing was written");
}
