//! Migrations that arrive through pip, on a wheelhouse of tiny wheels built
//! here from `tests/fixtures/packages/` (fixture sources, zipped by the
//! test; no downloaded code is committed).

mod common;

use std::path::Path;

use common::{TestRepo, build_wheel, build_wheel_from, build_wheel_of};

const SETTINGS: &str =
    "INSTALLED_APPS = [\n    \"django.contrib.contenttypes\",\n    \"tinytags\",\n]\n";
const MANAGE: &str =
    "import os\nos.environ.setdefault(\"DJANGO_SETTINGS_MODULE\", \"proj.settings\")\n";
const STACK: &str = "services:\n  web:\n    image: registry.example.com/site:TAG\n";

/// A site pinning tinytags 1.0 at `v1` and 2.0 at `v2`, the stack file
/// moved back to `1` in the working tree.
fn site(requirements_v2: &str) -> TestRepo {
    let mut r = TestRepo::new();
    project(&r, SETTINGS);
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

/// manage.py, and the settings module `proj.settings` holding `settings`.
fn project(r: &TestRepo, settings: impl AsRef<[u8]>) {
    r.write("manage.py", MANAGE);
    r.write("proj/__init__.py", "");
    r.write("proj/settings.py", settings);
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
        project(&r, SETTINGS);
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

const WAGTAIL_SETTINGS: &str = "INSTALLED_APPS = [\n    \"django.contrib.admin\",\n    \"django.contrib.auth\",\n    \"django.contrib.contenttypes\",\n    \"wagtail\",\n    \"wagtail.admin\",\n    \"shop\",\n]\n";

const SHOP_0001: &str = "from django.db import migrations, models\n\n\nclass Migration(migrations.Migration):\n    initial = True\n    dependencies = [(\"wagtailadmin\", \"0001_create_admin_access_permissions\")]\n    operations = [\n        migrations.CreateModel(name=\"Item\", fields=[(\"id\", models.AutoField(primary_key=True))]),\n    ]\n";
const SHOP_0002: &str = "from django.db import migrations, models\n\n\nclass Migration(migrations.Migration):\n    dependencies = [(\"shop\", \"0001_initial\")]\n    operations = [\n        migrations.AddField(model_name=\"item\", name=\"sku\", field=models.CharField(max_length=9, default=\"\")),\n    ]\n";

/// A site pinning wagtail 6.0 at both revisions, with `wagtail.admin` and
/// `django.contrib.admin` installed, and its own app `shop` gaining
/// `0002_item_sku` at `v2`. `extra` goes at the end of the settings.
fn wagtail_site(extra: &str, files: &[(&str, &str, &str)]) -> TestRepo {
    let mut r = TestRepo::new();
    for tag in ["v1", "v2"] {
        project(&r, format!("{WAGTAIL_SETTINGS}{extra}"));
        r.write("requirements.txt", "Django==4.2.30\nwagtail==6.0\n");
        r.write("shop/__init__.py", "");
        r.write("shop/migrations/__init__.py", "");
        r.write("shop/migrations/0001_initial.py", SHOP_0001);
        if tag == "v2" {
            r.write("shop/migrations/0002_item_sku.py", SHOP_0002);
        }
        for (at, path, text) in files {
            if *at == tag || at.is_empty() {
                r.write(path, text);
            }
        }
        r.commit(tag, Some(tag));
    }
    r
}

fn plan_json(r: &TestRepo, wheelhouse: &Path) -> serde_json::Value {
    common::json(
        &offline(r, wheelhouse)
            .args([
                "plan", "--repo", ".", "--from", "v2", "--to", "v1", "--format", "json",
            ])
            .assert()
            .code(0)
            .get_output()
            .clone(),
    )
}

fn codes(list: &serde_json::Value) -> Vec<String> {
    list.as_array()
        .map(|l| {
            l.iter()
                .map(|f| f["code"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Issue 12, point 3: `wagtail.admin` was guessed `admin` (its AppConfig
/// says `wagtailadmin`), a false "two apps labelled admin" that stopped
/// the plan with exit 2.
#[test]
fn r12_wagtail_admin_beside_django_admin_is_no_label_conflict() {
    let r = wagtail_site("", &[]);
    // The pinned wagtail is obtainable: its labels are read, nothing assumed.
    let wh = tempfile::tempdir().unwrap();
    build_wheel_of(wh.path(), "pins-packages", "wagtail", "6.0");
    let v = plan_json(&r, wh.path());
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    assert!(
        !codes(&v["notes"]).contains(&"unread-app-label".to_string()),
        "{v}"
    );
    assert_eq!(v["steps"][0]["app"], "shop");
    assert_eq!(v["steps"][0]["target"], "0001_initial");
    assert_eq!(v["unapply"], serde_json::json!([["shop", "0002_item_sku"]]));

    // Not obtainable: no conflict either, and a note says the label was not read.
    let empty = tempfile::tempdir().unwrap();
    let v = plan_json(&r, empty.path());
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    assert_eq!(v["unapply"], serde_json::json!([["shop", "0002_item_sku"]]));
    let note = v["notes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["code"] == "unread-app-label")
        .unwrap_or_else(|| panic!("no unread-app-label note in {v}"));
    let msg = note["message"].as_str().unwrap();
    for part in [
        "the label of wagtail.admin (INSTALLED_APPS at v2) was not read",
        "wagtail 6.0 cannot be obtained",
        "its guess admin",
        "django.contrib.admin",
    ] {
        assert!(msg.contains(part), "{part:?} not in {msg}");
    }
}

#[test]
fn r12_two_apps_of_the_repository_with_one_label_still_conflict() {
    let mut r = TestRepo::new();
    project(
        &r,
        "INSTALLED_APPS = [\"a.admin\", \"django.contrib.admin\"]\n",
    );
    r.write("a/__init__.py", "");
    r.write("a/admin/__init__.py", "");
    r.commit("v1", Some("v1"));
    r.commit("v2", Some("v2"));
    let out = r
        .tagback()
        .args(["plan", "--repo", ".", "--from", "v2", "--to", "v1"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("two apps labelled \"admin\""), "{err}");
}

/// MIGRATION_MODULES keyed by the label read from the package moves an
/// unchanged package's migrations into the repository: planned under that
/// label; when the label cannot be read, the key cannot be matched: blocked.
#[test]
fn migration_modules_of_a_package_app_into_the_repository() {
    let mig = "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n    dependencies = [DEP]\n    operations = []\n";
    let r = wagtail_site(
        "MIGRATION_MODULES = {\"wagtailadmin\": \"proj.wagtailadmin_migrations\"}\n",
        &[
            ("", "proj/wagtailadmin_migrations/__init__.py", ""),
            (
                "",
                "proj/wagtailadmin_migrations/0001_create_admin_access_permissions.py",
                &mig.replace("DEP", "(\"wagtailcore\", \"0001_initial\")"),
            ),
            (
                "v2",
                "proj/wagtailadmin_migrations/0002_site_setting.py",
                &mig.replace(
                    "DEP",
                    "(\"wagtailadmin\", \"0001_create_admin_access_permissions\")",
                ),
            ),
        ],
    );
    let wh = tempfile::tempdir().unwrap();
    build_wheel_of(wh.path(), "pins-packages", "wagtail", "6.0");
    let v = plan_json(&r, wh.path());
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    let steps: Vec<(String, String)> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["app"].as_str().unwrap().into(),
                s["target"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        steps.contains(&(
            "wagtailadmin".into(),
            "0001_create_admin_access_permissions".into()
        )),
        "{v}"
    );
    assert!(
        v["commands"]
            .to_string()
            .contains("migrate wagtailadmin 0001_create_admin_access_permissions"),
        "{v}"
    );

    let empty = tempfile::tempdir().unwrap();
    let v = plan_json(&r, empty.path());
    let p = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["code"] == "package-unavailable")
        .unwrap_or_else(|| panic!("not blocked: {v}"));
    let msg = p["message"].as_str().unwrap();
    assert!(
        msg.contains("MIGRATION_MODULES at v2 names wagtailadmin"),
        "{msg}"
    );
    assert!(msg.contains("wagtail.admin"), "{msg}");
}

/// MIGRATION_MODULES for the app of a package whose version changes:
/// Django reads what it names, under the label the package's AppConfig
/// gives (tinytags' is `tiny`), not the package's own migrations.
#[test]
fn migration_modules_of_a_changed_package_is_honoured() {
    let wh = tempfile::tempdir().unwrap();
    build_wheel(wh.path(), "tinytags", "1.0");
    build_wheel(wh.path(), "tinytags", "2.0");
    let site_with = |setting: &str, files: &[(&str, &str)]| {
        let r = site("Django==4.2.30\ntinytags==2.0\n");
        let mut r = r;
        r.write("proj/settings.py", format!("{SETTINGS}{setting}\n"));
        for (p, t) in files {
            r.write(p, t);
        }
        r.commit("v2 with MIGRATION_MODULES", Some("v2"));
        r
    };
    // Without the setting: the package's migrations are planned.
    let v = plan_json(&site_with("", &[]), wh.path());
    assert_eq!(
        v["unapply"],
        serde_json::json!([["tiny", "0002_tag_slug"]]),
        "{v}"
    );

    // `None`: the app has no migrations at v2.
    let v = plan_json(
        &site_with("MIGRATION_MODULES = {\"tiny\": None}", &[]),
        wh.path(),
    );
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    assert_eq!(v["unapply"], serde_json::json!([]), "{v}");

    // Into the repository: its migrations are the repository's.
    let init = "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n    initial = True\n    dependencies = []\n    operations = []\n";
    let v = plan_json(
        &site_with(
            "MIGRATION_MODULES = {\"tiny\": \"proj.tiny_migrations\"}",
            &[
                ("proj/tiny_migrations/__init__.py", ""),
                ("proj/tiny_migrations/0001_initial.py", init),
            ],
        ),
        wh.path(),
    );
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    assert_eq!(v["unapply"], serde_json::json!([]), "{v}");

    // Into another package: said, and blocked.
    let v = plan_json(
        &site_with(
            "MIGRATION_MODULES = {\"tiny\": \"otherpkg.tiny_migrations\"}",
            &[],
        ),
        wh.path(),
    );
    let p = &v["problems"][0];
    assert_eq!(p["code"], "package-unreadable", "{v}");
    assert!(
        p["message"]
            .as_str()
            .unwrap()
            .contains("MIGRATION_MODULES moves the migrations of tiny to otherpkg.tiny_migrations"),
        "{p}"
    );
}

/// Pins text for a version of tinytags.
type PinsText = dyn Fn(&str) -> String;

/// A site whose pins file `file` (at `path`) moves tinytags from 2.0 at
/// `v2` back to 1.0 at `v1`, written by `pins(version)`.
fn site_pinned_by(path: &str, pins: &PinsText, yml: Option<&str>) -> TestRepo {
    let mut r = TestRepo::new();
    for (tag, v) in [("v1", "1.0"), ("v2", "2.0")] {
        project(&r, SETTINGS);
        r.write(path, pins(v));
        if let Some(y) = yml {
            r.write(".tagback.yml", y);
        }
        r.commit(tag, Some(tag));
    }
    r
}

#[test]
fn pins_from_pipfile_lock_pdm_lock_and_pyproject_toml() {
    let wh = tempfile::tempdir().unwrap();
    build_wheel(wh.path(), "tinytags", "1.0");
    build_wheel(wh.path(), "tinytags", "2.0");
    let pipfile = |v: &str| {
        format!(
            "{{\n    \"_meta\": {{\"requires\": {{\"python_version\": \"3.12\"}}, \"pipfile-spec\": 6}},\n    \"default\": {{\n        \"tinytags\": {{\"hashes\": [], \"index\": \"pypi\", \"markers\": \"python_version >= '3.8'\", \"version\": \"=={v}\"}}\n    }},\n    \"develop\": {{\"pytest\": {{\"version\": \"==8.3.4\"}}}}\n}}\n"
        )
    };
    let pdm = |v: &str| {
        format!(
            "[metadata]\ngroups = [\"default\"]\nlock_version = \"4.5.1\"\n\n[[package]]\nname = \"tinytags\"\nversion = \"{v}\"\ngroups = [\"default\"]\nfiles = []\n"
        )
    };
    let pep621 = |v: &str| {
        format!(
            "[project]\nname = \"site\"\nversion = \"0\"\ndependencies = [\"tinytags=={v}\", \"colorama==0.4.6; sys_platform == 'win32'\"]\n"
        )
    };
    let poetry =
        |v: &str| format!("[tool.poetry.dependencies]\npython = \"^3.12\"\ntinytags = \"{v}\"\n");
    let named = Some("services:\n  web:\n    requirements: pyproject.toml\n");
    let cases: [(&str, &PinsText, Option<&str>); 5] = [
        ("Pipfile.lock", &pipfile, None),
        ("pdm.lock", &pdm, None),
        ("pyproject.toml", &pep621, named),
        ("pyproject.toml", &poetry, named),
        (
            "deploy/Pipfile.lock",
            &pipfile,
            Some("services:\n  web:\n    requirements: deploy/Pipfile.lock\n"),
        ),
    ];
    for (path, pins, yml) in cases {
        let r = site_pinned_by(path, pins, yml);
        let v = plan_json(&r, wh.path());
        assert_eq!(v["problems"], serde_json::json!([]), "{path}: {v}");
        assert_eq!(
            v["unapply"],
            serde_json::json!([["tiny", "0002_tag_slug"]]),
            "{path}: {v}"
        );
    }
    // A range without a lockfile beside it blocks, naming the spec and line.
    let r = site_pinned_by(
        "pyproject.toml",
        &|_| {
            "[project]\nname = \"site\"\nversion = \"0\"\ndependencies = [\n  \"tinytags>=1\",\n]\n"
                .to_string()
        },
        named,
    );
    let v = plan_json(&r, wh.path());
    let p = &v["problems"][0];
    assert_eq!(p["code"], "unpinned-requirement", "{v}");
    assert_eq!(p["file"], "pyproject.toml");
    assert_eq!(p["line"], 5);
    // ...and a uv.lock beside it says which version the range resolved to.
    let mut r = r;
    for (tag, ver) in [("v1", "1.0"), ("v2", "2.0")] {
        r.write(
            "uv.lock",
            format!("version = 1\n[[package]]\nname = \"tinytags\"\nversion = \"{ver}\"\nsource = {{ registry = \"https://pypi.org/simple\" }}\n"),
        );
        r.write(
            ".tagback.yml",
            "services:\n  web:\n    requirements: pyproject.toml\n",
        );
        r.commit(tag, Some(tag));
    }
    let v = plan_json(&r, wh.path());
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    assert_eq!(
        v["unapply"],
        serde_json::json!([["tiny", "0002_tag_slug"]]),
        "{v}"
    );
}

#[test]
fn environment_markers_are_decided_for_linux_or_said() {
    let wh = tempfile::tempdir().unwrap();
    build_wheel(wh.path(), "tinytags", "1.0");
    build_wheel(wh.path(), "tinytags", "2.0");
    let r = site_pinned_by(
        "requirements.txt",
        &|v| {
            format!(
                "tinytags=={v} ; python_version < \"3.12\"\ncolorama==0.4.6 ; sys_platform == \"win32\"\n"
            )
        },
        None,
    );
    let v = plan_json(&r, wh.path());
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    // Never dropped silently: the pin whose marker depends on the image's
    // Python is kept (and planned), with a note; the Windows-only one is said.
    assert_eq!(
        v["unapply"],
        serde_json::json!([["tiny", "0002_tag_slug"]]),
        "{v}"
    );
    let notes: Vec<&str> = v["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["code"] == "assumed-environment")
        .map(|n| n["message"].as_str().unwrap())
        .collect();
    assert!(
        notes.iter().any(|n| n.contains("requirements.txt at v2 line 1: `tinytags==2.0` is installed only where `python_version < \"3.12\"` holds")
            && n.contains("assumed installed")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains("not installed on a Linux deploy")
                && n.contains("colorama (line 2; sys_platform == \"win32\")")),
        "{notes:?}"
    );
}

#[test]
fn pyproject_toml_is_read_only_when_named() {
    // Zero-config, a pyproject.toml's ranges are a package's metadata more
    // often than the deploy's pins: not read (nothing blocks, nothing
    // changes), as before.
    let wh = tempfile::tempdir().unwrap();
    let r = site_pinned_by(
        "pyproject.toml",
        &|v| {
            format!(
                "[project]\nname = \"site\"\nversion = \"0\"\ndependencies = [\"tinytags>={v}\"]\n"
            )
        },
        None,
    );
    let v = plan_json(&r, wh.path());
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    assert_eq!(v["unapply"], serde_json::json!([]), "{v}");
}

/// A PEP 503 index on 127.0.0.1 serving `files` under `/files/` and one
/// project page listing them (`(file name, bytes, give its sha256 in the
/// link)`), until the test ends. Its URL, for `PIP_INDEX_URL`.
fn serve_index(project: &str, files: Vec<(String, Vec<u8>, bool)>) -> String {
    use sha2::Digest as _;
    use std::io::{BufRead as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut page = String::from("<html><body>\n");
    for (name, data, with_sha) in &files {
        let sha = if *with_sha {
            format!("#sha256={:x}", sha2::Sha256::digest(data))
        } else {
            String::new()
        };
        page.push_str(&format!("<a href=\"/files/{name}{sha}\">{name}</a>\n"));
    }
    page.push_str("</body></html>\n");
    let page_path = format!("/simple/{project}/");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = String::new();
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            // The rest of the head, up to its blank line.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
            let body: Option<Vec<u8>> = if path == page_path {
                Some(page.clone().into_bytes())
            } else {
                files
                    .iter()
                    .find(|(name, _, _)| path == format!("/files/{name}"))
                    .map(|(_, data, _)| data.clone())
            };
            let head = match &body {
                Some(b) => format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    b.len()
                ),
                None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_string(),
            };
            let _ = stream.write_all(head.as_bytes());
            if let Some(b) = body {
                let _ = stream.write_all(&b);
            }
        }
    });
    format!("http://127.0.0.1:{port}/simple/")
}

/// `plan --format json` with the wheelhouse and `index` (the only index).
fn plan_json_with_index(r: &TestRepo, wheelhouse: &Path, index: &str) -> serde_json::Value {
    let out = r
        .tagback()
        .env("TAGBACK_WHEELHOUSE", wheelhouse)
        .env("PIP_INDEX_URL", index)
        .env_remove("TAGBACK_NO_INDEX")
        .env_remove("PIP_NO_INDEX")
        .env_remove("UV_INDEX_URL")
        .env_remove("PIP_EXTRA_INDEX_URL")
        .args([
            "plan", "--repo", ".", "--from", "v2", "--to", "v1", "--format", "json",
        ])
        .assert()
        .code(0)
        .get_output()
        .clone();
    common::json(&out)
}

/// paperless-ngx 2.18.4 -> 2.19.0: uv.lock pins PyYAML 6.0.3 to the hashes of
/// the wheels of the Pythons the project supports; the index lists a cp38
/// wheel first. tagback fetched only the first file of the page and blocked
/// with "does not match the pinned hashes". Files the index's sha256 rules
/// out are skipped, the others tried in turn until one matches the pins.
#[test]
fn an_index_page_is_searched_for_the_file_the_pins_name() {
    let wh = tempfile::tempdir().unwrap();
    build_wheel(wh.path(), "tinytags", "1.0");
    build_wheel(wh.path(), "tinytags", "2.0");
    let wheel = std::fs::read(wh.path().join("tinytags-2.0-py3-none-any.whl")).unwrap();
    let pinned = {
        use sha2::Digest as _;
        format!("{:x}", sha2::Sha256::digest(&wheel))
    };
    let index = serve_index(
        "tinytags",
        vec![
            // Ruled out by its sha256 in the page: never fetched.
            (
                "tinytags-2.0-cp38-cp38-macosx_10_13_x86_64.whl".to_string(),
                b"not the pinned wheel".to_vec(),
                true,
            ),
            // No sha256 in the page: fetched, and refused by the pins.
            (
                "tinytags-2.0-cp39-cp39-manylinux_2_17_x86_64.whl".to_string(),
                b"not the pinned wheel either".to_vec(),
                false,
            ),
            ("tinytags-2.0-py3-none-any.whl".to_string(), wheel, false),
        ],
    );
    let r = site(&format!(
        "Django==4.2.30\ntinytags==2.0 --hash=sha256:{pinned}\n"
    ));
    // tinytags 1.0 from the wheelhouse, 2.0 only from the index.
    let only_old = tempfile::tempdir().unwrap();
    build_wheel(only_old.path(), "tinytags", "1.0");
    let v = plan_json_with_index(&r, only_old.path(), &index);
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    assert_eq!(v["unapply"], serde_json::json!([["tiny", "0002_tag_slug"]]));

    // With only files the pins rule out, the block says so (a new
    // repository: the first one keeps the archive it downloaded).
    let r = site(&format!(
        "Django==4.2.30\ntinytags==2.0 --hash=sha256:{pinned}\n"
    ));
    let index = serve_index(
        "tinytags",
        vec![(
            "tinytags-2.0-cp38-cp38-macosx_10_13_x86_64.whl".to_string(),
            b"not the pinned wheel".to_vec(),
            true,
        )],
    );
    let v = plan_json_with_index(&r, only_old.path(), &index);
    let problems = v["problems"].to_string();
    assert!(
        problems.contains("no archive of tinytags 2.0 has one of the pinned hashes"),
        "{problems}"
    );
}

/// paperless-ngx 2.18.4 -> 2.19.0: uv.lock resolves numpy to 2.2.6 where
/// `python_full_version < '3.11'` and to 2.3.3 elsewhere
/// (`resolution-markers`). tagback read both pins as installed and blocked
/// with no way out (the deploy's requirements file is made at build time).
/// The forks are read as markers; `python:` in .tagback.yml, the image's
/// Python, decides them.
#[test]
fn uv_lock_forks_are_decided_by_the_images_python() {
    let wh = tempfile::tempdir().unwrap();
    build_wheel(wh.path(), "tinytags", "1.0");
    build_wheel(wh.path(), "tinytags", "2.0");
    let package = |v: &str, fork: Option<&str>| {
        let markers = fork.map_or(String::new(), |m| {
            format!("resolution-markers = [\n    \"{m}\",\n]\n")
        });
        format!(
            "\n[[package]]\nname = \"tinytags\"\nversion = \"{v}\"\nsource = {{ registry = \"https://pypi.org/simple\" }}\n{markers}"
        )
    };
    let head = "version = 1\nrequires-python = \">=3.10\"\n";
    let site = |yml: Option<&str>| {
        let mut r = TestRepo::new();
        project(&r, SETTINGS);
        if let Some(y) = yml {
            r.write(".tagback.yml", y);
        }
        r.write("uv.lock", format!("{head}{}", package("1.0", None)));
        r.commit("v1", Some("v1"));
        r.write(
            "uv.lock",
            format!(
                "{head}{}{}",
                package("1.0", Some("python_full_version < '3.11'")),
                package("2.0", Some("python_full_version >= '3.11'"))
            ),
        );
        r.commit("v2", Some("v2"));
        r
    };
    // Zero-config: which version the image installs depends on its Python.
    let v = plan_json(&site(None), wh.path());
    let p = &v["problems"][0];
    assert_eq!(p["code"], "unpinned-requirement", "{v}");
    let msg = p["message"].as_str().unwrap();
    assert!(
        msg.contains("tinytags is pinned to different versions at v2")
            && msg.contains("`python:` in .tagback.yml"),
        "{msg}"
    );
    // Python 3.12: tinytags 2.0 at v2, so its 0002 is unapplied.
    let v = plan_json(
        &site(Some("services:\n  web:\n    python: \"3.12\"\n")),
        wh.path(),
    );
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    assert_eq!(
        v["unapply"],
        serde_json::json!([["tiny", "0002_tag_slug"]]),
        "{v}"
    );
    // Python 3.10: 1.0 at both revisions, nothing to unapply, and the pin
    // left out is said.
    let v = plan_json(
        &site(Some("services:\n  web:\n    python: \"3.10\"\n")),
        wh.path(),
    );
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    assert_eq!(v["unapply"], serde_json::json!([]), "{v}");
    assert!(
        v["notes"]
            .to_string()
            .contains("never hold on Linux CPython 3.10"),
        "{v}"
    );
    // Not a version: exit 2, naming the key.
    offline(
        &site(Some("services:\n  web:\n    python: \"3.x\"\n")),
        wh.path(),
    )
    .args(["plan", "--repo", ".", "--from", "v2", "--to", "v1"])
    .assert()
    .code(2)
    .stderr(predicates::str::contains(
        "`python: 3.x` in .tagback.yml is not a Python version",
    ));
}

/// InvenTree 0.14.5 -> 0.15.0: manage.py moved from `InvenTree/` to
/// `src/backend/InvenTree/` and the pins from `requirements.txt` (left as
/// comments) to `src/backend/requirements.txt`. `manage_py:` and
/// `requirements:` were one path for both revisions, so the fix the message
/// asked for could not work; `newer:` / `older:` take them now.
#[test]
fn manage_py_and_requirements_that_moved_are_stated_per_revision() {
    let wh = tempfile::tempdir().unwrap();
    build_wheel(wh.path(), "tinytags", "1.0");
    build_wheel(wh.path(), "tinytags", "2.0");
    let mut r = TestRepo::new();
    r.write("app/manage.py", MANAGE);
    r.write("app/proj/__init__.py", "");
    r.write("app/proj/settings.py", SETTINGS);
    r.write("requirements.txt", "Django==4.2.30\ntinytags==1.0\n");
    r.commit("v1", Some("v1"));
    r.remove("app");
    r.write("src/backend/app/manage.py", MANAGE);
    r.write("src/backend/app/proj/__init__.py", "");
    r.write("src/backend/app/proj/settings.py", SETTINGS);
    r.write(
        "requirements.txt",
        "# moved to src/backend/requirements.txt\n",
    );
    r.write(
        "src/backend/requirements.txt",
        "Django==4.2.30\ntinytags==2.0\n",
    );
    r.commit("v2", Some("v2"));
    offline(&r, wh.path())
        .args(["plan", "--repo", ".", "--from", "v2", "--to", "v1"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "manage.py exists at v1 (app/manage.py) but not at v2 where tagback looks (the root and two directories down); if it moved between the releases, say where it is at v2 with `newer: {manage_py: PATH}` in .tagback.yml",
        ));
    r.write(
        ".tagback.yml",
        "services:\n  web:\n    newer:\n      manage_py: src/backend/app/manage.py\n      requirements: src/backend/requirements.txt\n",
    );
    let v = plan_json(&r, wh.path());
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    assert_eq!(
        v["unapply"],
        serde_json::json!([["tiny", "0002_tag_slug"]]),
        "{v}"
    );
}

/// InvenTree 0.15.0 with only `manage_py:` stated: the root
/// `requirements.txt` is comments (the pins moved to
/// `src/backend/requirements.txt`), so every package read as "not installed"
/// at 0.15.0 and its apps as the older revision's only: the plan left
/// django-otp's and django-taggit's newer migrations applied, without a
/// word. A package pinned at one revision whose app the other revision
/// installs blocks, naming the line that fixes it.
#[test]
fn a_package_unpinned_at_a_revision_that_installs_its_app_blocks() {
    let wh = tempfile::tempdir().unwrap();
    build_wheel(wh.path(), "tinytags", "1.0");
    build_wheel(wh.path(), "tinytags", "2.0");
    let mut r = TestRepo::new();
    project(&r, SETTINGS);
    r.write("requirements.txt", "Django==4.2.30\ntinytags==1.0\n");
    r.commit("v1", Some("v1"));
    r.write("requirements.txt", "# moved to deploy/requirements.txt\n");
    r.write("deploy/requirements.txt", "Django==4.2.30\ntinytags==2.0\n");
    r.commit("v2", Some("v2"));
    let v = plan_json(&r, wh.path());
    let p = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["message"].as_str().unwrap().starts_with("tinytags "))
        .unwrap_or_else(|| panic!("no finding about tinytags: {v}"));
    assert_eq!(p["code"], "unpinned-requirement", "{v}");
    let msg = p["message"].as_str().unwrap();
    assert!(
        msg.contains("tinytags is pinned at v1 (1.0) but not at v2 (the pins of requirements.txt), while INSTALLED_APPS at v2 has tinytags")
            && msg.contains("`newer: {requirements: PATH}`"),
        "{msg}"
    );
    // With the deploy's pins named, the plan is exact.
    r.write(
        ".tagback.yml",
        "services:\n  web:\n    newer:\n      requirements: deploy/requirements.txt\n",
    );
    let v = plan_json(&r, wh.path());
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    assert_eq!(
        v["unapply"],
        serde_json::json!([["tiny", "0002_tag_slug"]]),
        "{v}"
    );
}

/// InvenTree 0.12.10 -> 0.13.0: django-q gives way to its fork django-q2,
/// which installs the same module (`django_q`). Each is pinned at one
/// revision only while both revisions install `django_q`: a rename, not
/// pins that miss a package, so the plan goes on (django_q 0015-0017 are
/// unapplied, as Django's truth says).
#[test]
fn a_package_renamed_between_the_revisions_is_planned() {
    let wh = tempfile::tempdir().unwrap();
    build_wheel(wh.path(), "tinytags", "1.0");
    // tinytags-ng 2.0: tinytags 2.0's files under another distribution name.
    build_wheel_from(wh.path(), "packages/tinytags/2.0", "tinytags_ng", "2.0");
    let mut r = TestRepo::new();
    project(&r, SETTINGS);
    r.write("requirements.txt", "Django==4.2.30\ntinytags==1.0\n");
    r.commit("v1", Some("v1"));
    r.write("requirements.txt", "Django==4.2.30\ntinytags-ng==2.0\n");
    r.commit("v2", Some("v2"));
    let v = plan_json(&r, wh.path());
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    assert_eq!(
        v["unapply"],
        serde_json::json!([["tiny", "0002_tag_slug"]]),
        "{v}"
    );
}

/// Several packages a revision's pins lack make one finding that lists them
/// (InvenTree 0.15.0: 24 packages).
#[test]
fn packages_unpinned_at_a_revision_that_installs_their_apps_are_one_finding() {
    let wh = tempfile::tempdir().unwrap();
    build_wheel(wh.path(), "tinytags", "1.0");
    build_wheel(wh.path(), "querycache", "2.8.0");
    let mut r = TestRepo::new();
    project(
        &r,
        "INSTALLED_APPS = [\"django.contrib.contenttypes\", \"tinytags\", \"querycache\"]\n",
    );
    r.write(
        "requirements.txt",
        "Django==4.2.30\ntinytags==1.0\nquerycache==2.8.0\n",
    );
    r.commit("v1", Some("v1"));
    r.write("requirements.txt", "Django==4.2.30\n");
    r.commit("v2", Some("v2"));
    let v = plan_json(&r, wh.path());
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{v}");
    let msg = problems[0]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("2 packages are pinned at v1 but not at v2 (the pins of requirements.txt), while INSTALLED_APPS at v2 has their apps: querycache 2.8.0 (querycache), tinytags 1.0 (tinytags)")
            && msg.contains("`newer: {requirements: PATH}`"),
        "{msg}"
    );
}
