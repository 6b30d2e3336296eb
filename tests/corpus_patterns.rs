//! Patterns found in real applications' releases (corpus/pypi): each made
//! tagback refuse a plan that real Django's MigrationLoader contradicts.

mod common;

use common::TestRepo;
use serde_json::json;

const MANAGE: &str =
    "import os\nos.environ.setdefault(\"DJANGO_SETTINGS_MODULE\", \"proj.settings\")\n";

fn migration(deps: &str, extra: &str) -> String {
    format!(
        "from django.db import migrations, models\n\n\nclass Migration(migrations.Migration):\n{extra}    dependencies = [{deps}]\n    operations = [\n        migrations.CreateModel(name=\"M{n}\", fields=[(\"id\", models.AutoField(primary_key=True))]),\n    ]\n",
        n = deps.len() + extra.len()
    )
}

fn project(r: &TestRepo, settings_tail: &str) {
    r.write("manage.py", MANAGE);
    r.write("proj/__init__.py", "");
    r.write(
        "proj/settings.py",
        format!("INSTALLED_APPS = [\"django.contrib.contenttypes\", \"shop\"]\n{settings_tail}"),
    );
    r.write("shop/__init__.py", "");
    r.write("shop/migrations/__init__.py", "");
}

fn plan(r: &TestRepo) -> serde_json::Value {
    r.run_json(
        &[
            "plan", "--repo", ".", "--from", "v2", "--to", "v1", "--format", "json",
        ],
        0,
    )
}

/// pretalx: `with suppress(ImportError): from .override_settings import *`
/// where the file is absent is Django's try/except ImportError.
#[test]
fn optional_star_import_under_contextlib_suppress() {
    let mut r = TestRepo::new();
    project(
        &r,
        "from contextlib import suppress\n\nwith suppress(ImportError):\n    from .override_settings import *  # noqa\n",
    );
    r.write("shop/migrations/0001_initial.py", migration("", ""));
    r.commit("v1", Some("v1"));
    r.write(
        "shop/migrations/0002_more.py",
        migration("(\"shop\", \"0001_initial\")", ""),
    );
    r.commit("v2", Some("v2"));
    let p = plan(&r);
    assert_eq!(p["problems"], json!([]), "{p}");
    assert_eq!(p["unapply"], json!([["shop", "0002_more"]]));
    assert_eq!(p["steps"][0]["target"], "0001_initial");
}

/// A `with` that suppresses nothing still runs its body: an import error
/// there names the module with its leading dots.
#[test]
fn missing_star_import_outside_suppress_names_the_relative_module() {
    let mut r = TestRepo::new();
    project(
        &r,
        "with open(__file__):\n    from .override_settings import *\n",
    );
    r.write("shop/migrations/0001_initial.py", migration("", ""));
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
    assert!(
        err.contains("proj/settings.py at v2 line 3: `from .override_settings import *`"),
        "{err}"
    );
}

/// label-studio: a squash both releases carry, whose replaced files are
/// partly deleted at both, is known to the older release by its name: it
/// does not straddle; the new migration on top of it is unapplied alone.
#[test]
fn squash_both_revisions_have_does_not_straddle_when_replaced_files_are_gone() {
    let mut r = TestRepo::new();
    project(&r, "");
    // 0001_initial stays on disk; 0002_token is gone (only named in replaces).
    r.write("shop/migrations/0001_initial.py", migration("", ""));
    r.write(
        "shop/migrations/0001_squashed_0002_token.py",
        migration(
            "",
            "    replaces = [(\"shop\", \"0001_initial\"), (\"shop\", \"0002_token\")]\n",
        ),
    );
    r.write(
        "shop/migrations/0003_after.py",
        migration("(\"shop\", \"0001_squashed_0002_token\")", ""),
    );
    r.commit("v1", Some("v1"));
    r.write(
        "shop/migrations/0004_new.py",
        migration("(\"shop\", \"0003_after\")", ""),
    );
    r.commit("v2", Some("v2"));
    let p = plan(&r);
    assert_eq!(p["problems"], json!([]), "{p}");
    assert_eq!(p["unapply"], json!([["shop", "0004_new"]]));
    assert_eq!(p["steps"][0]["target"], "0003_after");
}

/// label-studio: `data_manager/tests/migrations/test_*.py` are tests of
/// migrations, not migrations (no `Migration`: Django's loader would raise
/// BadMigrationError on them); a real migration in an unread directory
/// still blocks.
#[test]
fn test_modules_in_a_directory_named_migrations_are_not_unplanned_migrations() {
    let mut r = TestRepo::new();
    project(&r, "");
    r.write("shop/migrations/0001_initial.py", migration("", ""));
    r.write("shop/tests/__init__.py", "");
    r.write("shop/tests/migrations/__init__.py", "");
    r.commit("v1", Some("v1"));
    r.write(
        "shop/tests/migrations/test_cleanup.py",
        "from django.test import TestCase\n\n\nclass TestCleanupMigration(TestCase):\n    pass\n",
    );
    r.commit("v2", Some("v2"));
    let p = plan(&r);
    assert_eq!(p["problems"], json!([]), "{p}");
    assert_eq!(p["unapply"], json!([]));

    r.write("extra/__init__.py", "");
    r.write("extra/migrations/__init__.py", "");
    r.write("extra/migrations/0001_initial.py", migration("", ""));
    r.commit("v2", Some("v2"));
    let p = plan(&r);
    let codes: Vec<_> = p["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes, ["unplanned-migrations"], "{p}");
}

/// weblate's manage.py (5.x): `default = "weblate.settings"` (the operator's
/// copy of settings_example.py, not in the repository), another value under
/// a condition, then `os.environ.setdefault("DJANGO_SETTINGS_MODULE",
/// default)`. The refusal names the line that chooses the module, each
/// value with its line, and the exact `settings:` line that fixes it (the
/// `_example` module the operator copies); with it, the plan goes ahead.
#[test]
fn settings_module_chosen_through_a_variable_names_the_manage_py_line_and_the_fix() {
    let weblate_manage = "#!/usr/bin/env python3\nimport os\nimport sys\n\nif __name__ == \"__main__\":\n    default = \"weblate.settings\"\n    if len(sys.argv) >= 2 and sys.argv[1] == \"test\":\n        default = \"weblate.settings_test\"\n    os.environ.setdefault(\"DJANGO_SETTINGS_MODULE\", default)\n\n    from weblate.runner import main\n\n    main(developer_mode=True)\n";
    let mut r = TestRepo::new();
    r.write("manage.py", weblate_manage);
    r.write("weblate/__init__.py", "");
    r.write(
        "weblate/settings_example.py",
        "INSTALLED_APPS = [\"django.contrib.contenttypes\", \"shop\"]\n",
    );
    r.write(
        "weblate/settings_test.py",
        "from weblate.settings_example import *  # noqa\n",
    );
    r.write("shop/__init__.py", "");
    r.write("shop/migrations/__init__.py", "");
    r.write("shop/migrations/0001_initial.py", migration("", ""));
    r.commit("v1", Some("v1"));
    r.write(
        "shop/migrations/0002_more.py",
        migration("(\"shop\", \"0001_initial\")", ""),
    );
    r.commit("v2", Some("v2"));
    let out = r
        .tagback()
        .args(["plan", "--repo", ".", "--from", "v2", "--to", "v1"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "manage.py at v2 line 9 sets DJANGO_SETTINGS_MODULE from the variable `default` (\"weblate.settings\" at line 6, not in the repository (weblate.settings_example is); \"weblate.settings_test\" at line 8, under a condition), which tagback cannot choose between; say which module in .tagback.yml: `services: {web: {settings: weblate.settings_example}}`"
        ),
        "{err}"
    );
    r.write(
        ".tagback.yml",
        "services: {web: {settings: weblate.settings_example}}\n",
    );
    let p = plan(&r);
    assert_eq!(p["unapply"], json!([["shop", "0002_more"]]), "{p}");

    // One unconditional assignment is read like a literal; a module it
    // names that is absent is refused with the line that names it.
    let mut r = TestRepo::new();
    project(&r, "");
    r.write("manage.py", "import os\n\nif __name__ == \"__main__\":\n    default = \"proj.settings\"\n    os.environ.setdefault(\"DJANGO_SETTINGS_MODULE\", default)\n");
    r.write("shop/migrations/0001_initial.py", migration("", ""));
    r.commit("v1", Some("v1"));
    r.write(
        "shop/migrations/0002_more.py",
        migration("(\"shop\", \"0001_initial\")", ""),
    );
    r.commit("v2", Some("v2"));
    let p = plan(&r);
    assert_eq!(p["unapply"], json!([["shop", "0002_more"]]), "{p}");
    assert_eq!(p["notes"], json!([]), "{p}");
    r.write("manage.py", "import os\n\nif __name__ == \"__main__\":\n    default = \"proj.local_settings\"\n    os.environ.setdefault(\"DJANGO_SETTINGS_MODULE\", default)\n");
    r.commit("v3", Some("v3"));
    r.tagback()
        .args(["plan", "--repo", ".", "--from", "v3", "--to", "v1"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "settings module \"proj.local_settings\" (from manage.py line 4) is not in the repository at v3",
        ));
}

/// NetBox 4.4.0 -> 4.4.10: `if not DEBUG: INSTALLED_APPS.remove("debug_toolbar")`
/// with DEBUG from the operator's configuration, and django-debug-toolbar's
/// migrations change between the releases. Planning `migrate debug_toolbar
/// zero` was wrong where DEBUG is off (Django: the app is not installed);
/// leaving it out is wrong where it is on. Refused with the line and the
/// fix; with `installed_apps:` the plan is exact.
#[test]
fn a_package_app_removed_under_an_undecided_condition_whose_migrations_change_is_refused() {
    let (r, wh) = tinytags_site(
        "import os\nDEBUG = os.environ.get(\"DEBUG\") == \"1\"\nINSTALLED_APPS = [\"django.contrib.contenttypes\", \"tinytags\"]\nif not DEBUG:\n    INSTALLED_APPS.remove(\"tinytags\")\n",
    );
    let offline = || offline(&r, &wh);
    let out = offline()
        .args(["plan", "--repo", ".", "--from", "v2", "--to", "v1"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("proj/settings.py at v2 line 5 removes \"tinytags\" from INSTALLED_APPS only under a condition, and tinytags changes from 1.0 to 2.0")
            && err.contains("`installed_apps:` in .tagback.yml"),
        "{err}"
    );
    r.write(
        ".tagback.yml",
        "services: {web: {installed_apps: [django.contrib.contenttypes, tinytags]}}\n",
    );
    let out = offline()
        .args([
            "plan", "--repo", ".", "--from", "v2", "--to", "v1", "--format", "json",
        ])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let v = common::json(&out);
    assert_eq!(v["unapply"], json!([["tiny", "0002_tag_slug"]]), "{v}");
    assert_eq!(v["steps"][0]["target"], "0001_initial");
}

/// The other side of the NetBox shape: `if DEBUG: INSTALLED_APPS +=
/// ["tinytags"]` with DEBUG from the environment, and tinytags' migrations
/// change between the releases. Leaving tinytags out of the plan would leave
/// 0002 applied where DEBUG is on (silent); planning it would fail where it
/// is off. Refused with the line and the fix.
#[test]
fn a_package_app_added_under_an_undecided_condition_whose_migrations_change_is_refused() {
    let (r, wh) = tinytags_site(
        "import os\nDEBUG = os.environ.get(\"DEBUG\") == \"1\"\nINSTALLED_APPS = [\"django.contrib.contenttypes\"]\nif DEBUG:\n    INSTALLED_APPS += [\"tinytags\"]\n",
    );
    let offline = || offline(&r, &wh);
    let out = offline()
        .args(["plan", "--repo", ".", "--from", "v2", "--to", "v1"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("proj/settings.py at v2 line 5 adds \"tinytags\" to INSTALLED_APPS only under a condition, and tinytags changes from 1.0 to 2.0")
            && err.contains("`installed_apps:` in .tagback.yml"),
        "{err}"
    );
    // Stated: the deployment installs it, and the plan unapplies 0002.
    r.write(
        ".tagback.yml",
        "services: {web: {installed_apps: [django.contrib.contenttypes, tinytags]}}\n",
    );
    let out = offline()
        .args([
            "plan", "--repo", ".", "--from", "v2", "--to", "v1", "--format", "json",
        ])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let v = common::json(&out);
    assert_eq!(v["unapply"], json!([["tiny", "0002_tag_slug"]]), "{v}");
}

/// paperless-ngx 2.17.1 -> 2.18.0: `if ...: INSTALLED_APPS.append("cachalot")`
/// under a setting from the environment, and django-cachalot goes from not
/// pinned to 2.8.0. The app has no migrations of its own (only its test
/// apps have), so nothing depends on the condition; tagback refused the
/// plan with "changes ... with other migrations for it".
#[test]
fn a_package_app_added_under_a_condition_without_migrations_of_its_own_is_planned() {
    let (r, wh) = appended_under_a_condition_and_newly_pinned("querycache", "2.8.0");
    let out = offline(&r, &wh)
        .args([
            "plan", "--repo", ".", "--from", "v2", "--to", "v1", "--format", "json",
        ])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let v = common::json(&out);
    assert_eq!(v["unapply"], json!([]), "{v}");
    assert_eq!(v["problems"], json!([]), "{v}");
}

/// The other side: an app added under a condition whose package is newly
/// pinned with migrations of its own still depends on the condition.
#[test]
fn a_package_app_added_under_a_condition_and_newly_pinned_with_migrations_is_refused() {
    let (r, wh) = appended_under_a_condition_and_newly_pinned("tinytags", "2.0");
    offline(&r, &wh)
        .args(["plan", "--repo", ".", "--from", "v2", "--to", "v1"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "proj/settings.py at v2 line 4 adds \"tinytags\" to INSTALLED_APPS only under a condition, and tinytags changes from not installed to 2.0",
        ));
}

/// A site whose settings append `package` to INSTALLED_APPS under a
/// condition read from the environment, pinned at v2 only (`package==version`),
/// and a wheelhouse holding that wheel.
fn appended_under_a_condition_and_newly_pinned(
    package: &str,
    version: &str,
) -> (TestRepo, tempfile::TempDir) {
    let mut r = TestRepo::new();
    r.write("manage.py", MANAGE);
    r.write("proj/__init__.py", "");
    r.write(
        "proj/settings.py",
        format!(
            "import os\nINSTALLED_APPS = [\"django.contrib.contenttypes\"]\nif os.environ.get(\"WITH_APP\") == \"1\":\n    INSTALLED_APPS.append(\"{package}\")\n"
        ),
    );
    r.write("requirements.txt", "Django==4.2.30\n");
    r.commit("v1", Some("v1"));
    r.write(
        "requirements.txt",
        format!("Django==4.2.30\n{package}=={version}\n"),
    );
    r.commit("v2", Some("v2"));
    let wh = tempfile::tempdir().unwrap();
    common::build_wheel(wh.path(), package, version);
    (r, wh)
}

/// A site with `settings`, pinning tinytags 1.0 at v1 and 2.0 at v2, and a
/// wheelhouse holding both wheels.
fn tinytags_site(settings: &str) -> (TestRepo, tempfile::TempDir) {
    let mut r = TestRepo::new();
    r.write("manage.py", MANAGE);
    r.write("proj/__init__.py", "");
    r.write("proj/settings.py", settings);
    r.write("requirements.txt", "Django==4.2.30\ntinytags==1.0\n");
    r.commit("v1", Some("v1"));
    r.write("requirements.txt", "Django==4.2.30\ntinytags==2.0\n");
    r.commit("v2", Some("v2"));
    let wh = tempfile::tempdir().unwrap();
    common::build_wheel(wh.path(), "tinytags", "1.0");
    common::build_wheel(wh.path(), "tinytags", "2.0");
    (r, wh)
}

/// tagback offline: the wheelhouse only, no index.
fn offline(r: &TestRepo, wh: &tempfile::TempDir) -> assert_cmd::Command {
    let mut c = r.tagback();
    c.env("TAGBACK_WHEELHOUSE", wh.path())
        .env("TAGBACK_NO_INDEX", "1")
        .env_remove("PIP_INDEX_URL")
        .env_remove("UV_INDEX_URL");
    c
}
