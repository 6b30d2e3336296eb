//! Migrations that arrive through pip, on a wheelhouse of tiny wheels built
//! here from `tests/fixtures/packages/` (fixture sources, zipped by the
//! test; no downloaded code is committed).

mod common;

use std::io::Write;
use std::path::Path;

use common::{TestRepo, fixture};

const SETTINGS: &str =
    "INSTALLED_APPS = [\n    \"django.contrib.contenttypes\",\n    \"tinytags\",\n]\n";
const MANAGE: &str =
    "import os\nos.environ.setdefault(\"DJANGO_SETTINGS_MODULE\", \"proj.settings\")\n";
const STACK: &str = "services:\n  web:\n    image: registry.example.com/site:TAG\n";

/// A wheel of `tests/fixtures/packages/NAME/VERSION/` in `dir`.
fn build_wheel(dir: &Path, name: &str, version: &str) {
    let src = fixture(&format!("../tests/fixtures/packages/{name}/{version}"));
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

/// A site pinning tinytags 1.0 at `v1` and 2.0 at `v2`, the stack file
/// moved back to `1` in the working tree.
fn site(requirements_v2: &str) -> TestRepo {
    let mut r = TestRepo::new();
    r.write("manage.py", MANAGE);
    r.write("proj/__init__.py", "");
    r.write("proj/settings.py", SETTINGS);
    r.write(
        "requirements.txt",
        "Django==4.2.30\ntinytags==1.0 # the tags\n",
    );
    r.write("stack.yml", STACK.replace("TAG", "1"));
    r.commit("v1", Some("v1"));
    r.write("requirements.txt", requirements_v2);
    r.write("stack.yml", STACK.replace("TAG", "2"));
    r.commit("v2", Some("v2"));
    r.write("stack.yml", STACK.replace("TAG", "1"));
    r
}

fn offline(r: &TestRepo, wheelhouse: &Path) -> assert_cmd::Command {
    let mut c = r.tagback();
    c.env("TAGBACK_WHEELHOUSE", wheelhouse)
        .env("TAGBACK_NO_INDEX", "1")
        .env_remove("PIP_INDEX_URL")
        .env_remove("UV_INDEX_URL");
    c
}

#[test]
fn a_changed_package_is_planned_with_its_app_config_label_and_lines_inside_the_package() {
    let r = site("Django==4.2.30\n-r extra.txt\n");
    r.write("extra.txt", "tinytags==2.0 \\\n    --hash=sha256:0000\n");
    // The hash pins the archive: a wheel that does not match is not used.
    let mut r = r;
    r.write("stack.yml", STACK.replace("TAG", "2"));
    r.commit("v2 with hash", Some("v2"));
    let wh = tempfile::tempdir().unwrap();
    build_wheel(wh.path(), "tinytags", "1.0");
    build_wheel(wh.path(), "tinytags", "2.0");
    let out = offline(&r, wh.path())
        .args([
            "plan", "--repo", ".", "--from", "v2", "--to", "v1", "--format", "json",
        ])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let v = common::json(&out);
    let problems = v["problems"].to_string();
    assert!(problems.contains("package-unavailable"), "{problems}");
    assert!(
        problems.contains("does not match the pinned hashes"),
        "{problems}"
    );

    r.write("extra.txt", "tinytags==2.0\n");
    r.commit("v2 without hash", Some("v2"));
    let out = offline(&r, wh.path())
        .args([
            "plan", "--repo", ".", "--from", "v2", "--to", "v1", "--format", "json",
        ])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let v = common::json(&out);
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    assert_eq!(v["steps"][0]["app"], "tiny");
    assert_eq!(v["steps"][0]["target"], "0001_initial");
    assert_eq!(v["unapply"], serde_json::json!([["tiny", "0002_tag_slug"]]));
    assert_eq!(
        v["irreversible"][0]["file"],
        "tinytags/migrations/0002_tag_slug.py"
    );
    assert_eq!(v["irreversible"][0]["line"], 22);
    assert_eq!(
        v["commands"][0],
        "python manage.py migrate tiny 0001_initial"
    );
    // The script's header says where the newer package versions are.
    let out = offline(&r, wh.path())
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
        ])
        .args([
            "--image",
            "registry.example.com/site:1",
            "--allow-manual-steps",
        ])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(
        script.contains("#   packages: the backward migrations of tinytags 2.0 (older: 1.0) run in the newer image, where the newer versions are installed"),
        "{script}"
    );
    // The whole header, as a person reads it before running the script.
    let header: Vec<&str> = script.lines().take_while(|l| l.starts_with('#')).collect();
    let header = header
        .join("\n")
        .replace(env!("CARGO_PKG_VERSION"), "VERSION");
    insta::assert_snapshot!("script_header_with_packages", header);
}

#[test]
fn a_changed_package_that_cannot_be_obtained_blocks_check_naming_both_versions_and_the_ways() {
    let r = site("Django==4.2.30\ntinytags==2.0\n");
    let wh = tempfile::tempdir().unwrap();
    build_wheel(wh.path(), "tinytags", "1.0");
    let out = offline(&r, wh.path())
        .args(["check", "--format", "json"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let v = common::json(&out);
    assert_eq!(v["safe"], false);
    let problems = &v["services"][0]["plan"]["problems"];
    let p = problems
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["code"] == "package-unavailable")
        .unwrap_or_else(|| panic!("no package-unavailable in {problems}"));
    let msg = p["message"].as_str().unwrap();
    for part in [
        "tinytags changes from 2.0 at v2 to 1.0 at v1",
        "version 2.0 cannot be obtained",
        &wh.path().display().to_string(),
        "PIP_INDEX_URL",
    ] {
        assert!(msg.contains(part), "{part:?} not in {msg}");
    }
    // The gate says the same.
    offline(&r, wh.path()).args(["gate"]).assert().code(1);
}

#[test]
fn a_requirement_without_an_exact_pin_blocks_with_its_spec() {
    let r = site("Django==4.2.30\ntinytags>=1.0\n");
    let wh = tempfile::tempdir().unwrap();
    let out = offline(&r, wh.path())
        .args([
            "plan", "--repo", ".", "--from", "v2", "--to", "v1", "--format", "json",
        ])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let v = common::json(&out);
    let p = &v["problems"][0];
    assert_eq!(p["code"], "unpinned-requirement", "{v}");
    assert!(
        p["message"].as_str().unwrap().contains("`tinytags>=1.0`"),
        "{p}"
    );
    assert_eq!(p["file"], "requirements.txt");
    assert_eq!(p["line"], 2);
}

#[test]
fn tagback_yml_names_the_deploys_requirements_file() {
    // requirements.txt moves tinytags 1.0 -> 2.0, but the deploy installs
    // from deploy/pins.txt, which keeps 1.0: with `requirements:` nothing
    // of tinytags changes (and 2.0, absent from the wheelhouse, is not needed).
    let mut r = TestRepo::new();
    let yml = "services:\n  web:\n    requirements: deploy/pins.txt\n";
    for (tag, v) in [("v1", "1.0"), ("v2", "2.0")] {
        r.write("manage.py", MANAGE);
        r.write("proj/__init__.py", "");
        r.write("proj/settings.py", SETTINGS);
        r.write("requirements.txt", format!("tinytags=={v}\n"));
        r.write("deploy/pins.txt", "tinytags==1.0\n");
        r.write(".tagback.yml", yml);
        r.commit(tag, Some(tag));
    }
    let wh = tempfile::tempdir().unwrap();
    build_wheel(wh.path(), "tinytags", "1.0");
    let plan = |r: &TestRepo| {
        common::json(
            &offline(r, wh.path())
                .args([
                    "plan", "--repo", ".", "--from", "v2", "--to", "v1", "--format", "json",
                ])
                .assert()
                .code(0)
                .get_output()
                .clone(),
        )
    };
    let v = plan(&r);
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    assert_eq!(v["steps"], serde_json::json!([]));
    // Without the setting, requirements.txt is the deploy's: 2.0 is needed.
    r.write(".tagback.yml", "");
    r.commit("v2 without the setting", Some("v2"));
    let v = plan(&r);
    assert_eq!(v["problems"][0]["code"], "package-unavailable", "{v}");
}
