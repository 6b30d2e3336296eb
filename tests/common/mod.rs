//! Deterministic git repositories for tests: fixed dates and identity, a
//! scrubbed `GIT_*` environment, no global or system config.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// The path of a file under `fixtures/`.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

/// A git command with a clean, deterministic environment.
pub fn git_command(dir: &Path, home: &Path) -> Command {
    let mut c = Command::new("git");
    c.current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("GIT_") {
            c.env_remove(k);
        }
    }
    // Hooks installed by a test find this build's tagback.
    let bin = assert_cmd::cargo::cargo_bin("tagback");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    c.env("PATH", path)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com");
    c
}

/// A temporary git repository built commit by commit.
pub struct TestRepo {
    pub dir: TempDir,
    pub home: TempDir,
    clock: u64,
}

impl TestRepo {
    pub fn new() -> TestRepo {
        let dir = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        let r = TestRepo {
            dir,
            home,
            clock: 1_700_000_000,
        };
        r.git(&["init", "-q", "-b", "main"]);
        r.git(&["config", "user.name", "Test"]);
        r.git(&["config", "user.email", "test@example.com"]);
        r
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap()
    }

    pub fn remove(&self, rel: &str) {
        let p = self.path().join(rel);
        if p.is_dir() {
            std::fs::remove_dir_all(p).unwrap();
        } else {
            std::fs::remove_file(p).unwrap();
        }
    }

    /// Copy a fixture directory into the repository.
    pub fn copy_fixture(&self, fixture_dir: &str, dest: &str) {
        copy_tree(&fixture(fixture_dir), &self.path().join(dest));
    }

    pub fn git(&self, args: &[&str]) -> Output {
        let out = git_command(self.path(), self.home.path())
            .args(args)
            .env("GIT_AUTHOR_DATE", format!("@{} +0000", self.clock))
            .env("GIT_COMMITTER_DATE", format!("@{} +0000", self.clock))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    pub fn commit(&mut self, message: &str, tag: Option<&str>) {
        self.clock += 60;
        self.git(&["add", "-A"]);
        // Hooks are exercised by the tests that install them, not by fixtures.
        self.git(&[
            "commit",
            "-q",
            "--no-verify",
            "--allow-empty",
            "-m",
            message,
        ]);
        if let Some(t) = tag {
            self.git(&["tag", "-f", t]);
        }
    }

    /// Run `tagback ARGS`, assert the exit code, and parse stdout as JSON.
    pub fn run_json(&self, args: &[&str], code: i32) -> serde_json::Value {
        let out = self
            .tagback()
            .args(args)
            .assert()
            .code(code)
            .get_output()
            .clone();
        json(&out)
    }

    /// `tagback` run in this repository with a clean environment.
    pub fn tagback(&self) -> assert_cmd::Command {
        let mut c = assert_cmd::Command::cargo_bin("tagback").unwrap();
        c.current_dir(self.path())
            .env("NO_COLOR", "1")
            .env("HOME", self.home.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("GIT_") {
                c.env_remove(k);
            }
        }
        c
    }
}

pub fn copy_tree(src: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dest.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
}

pub const STACK: &str = "services:\n  web:\n    image: registry.example.com:5000/shop:TAG\n    deploy:\n      replicas: 2\n  nginx:\n    image: nginx:1.25\n";

/// The demo shop (real makemigrations output) at `v1` and `v2`, with a stack
/// file deploying `shop:2` at HEAD.
pub fn shop_repo() -> TestRepo {
    let mut r = TestRepo::new();
    r.copy_fixture("demo/v1", "");
    r.write("stack.yml", STACK.replace("TAG", "1"));
    r.commit("v1", Some("v1"));
    for d in ["accounts", "shop"] {
        r.remove(d);
    }
    r.copy_fixture("demo/v2", "");
    r.write("stack.yml", STACK.replace("TAG", "2"));
    r.commit("v2", Some("v2"));
    r
}

/// Parse a command's stdout as JSON.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// A wheel of `tests/fixtures/packages/NAME/VERSION/` in `dir`.
pub fn build_wheel(dir: &Path, name: &str, version: &str) {
    build_wheel_of(dir, "packages", name, version);
}

/// A wheel of `tests/fixtures/ROOT/NAME/VERSION/` in `dir`.
pub fn build_wheel_of(dir: &Path, root: &str, name: &str, version: &str) {
    build_wheel_from(dir, &format!("{root}/{name}/{version}"), name, version);
}

/// A wheel of distribution `name` `version` in `dir`, holding the files of
/// `tests/fixtures/SOURCE/` (a fork of a package under another name).
pub fn build_wheel_from(dir: &Path, source: &str, name: &str, version: &str) {
    use std::io::Write;
    let src = fixture(&format!("../tests/fixtures/{source}"));
    let file =
        std::fs::File::create(dir.join(format!("{name}-{version}-py3-none-any.whl"))).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default();
    let mut stack = vec![src.clone()];
    let mut files = Vec::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    for p in files {
        let rel = p
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        zip.start_file(rel, opts).unwrap();
        zip.write_all(&std::fs::read(&p).unwrap()).unwrap();
    }
    let info = format!("{name}-{version}.dist-info/METADATA");
    zip.start_file(info, opts).unwrap();
    zip.write_all(format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n").as_bytes())
        .unwrap();
    zip.finish().unwrap();
}
