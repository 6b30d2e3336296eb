#!/usr/bin/env python3
"""Real Django is the judge of `tagback guard`.

For every scenario this builds a Django project revision by revision with real
`makemigrations` / `squashmigrations` (the harness's Project), exports each
revision as a plain directory (no .git, as in an image), and on every database
kind (SQLite, PostgreSQL, MariaDB):

1. migrates a fresh database forward with the newer code;
2. shows the seed's failure: the older code's `migrate --check` exits 0 on it;
3. `tagback guard` with the older code must exit 1 naming exactly the
   migrations the older code does not know;
4. runs tagback's backward plan with the newer code (and its post-commands
   with the older code): the database is now correctly rolled back, which
   the harness confirms (`migrate --check`, rows known to the older code);
5. `tagback guard` with the older code must exit 0 (no false alarm from the
   rows Django leaves: a squash's own row, rows of apps not installed).

Usage: guard.py --tagback BIN --python PY [--postgres HOST:PORT] [--mysql HOST:PORT] --work DIR
Exit status 0 when every check passed.
"""

import argparse
import json
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Project, record, sh  # noqa: E402

# Appended to the harness's settings: MariaDB through PyMySQL (pure Python,
# no client library to build).
MYSQL_SETTINGS = '''
if os.environ.get("TAGBACK_DB_ENGINE") == "mysql":
    import pymysql
    pymysql.install_as_MySQLdb()
    DATABASES = {"default": {
        "ENGINE": "django.db.backends.mysql",
        "NAME": os.environ["TAGBACK_DB_NAME"],
        "HOST": os.environ["TAGBACK_DB_HOST"],
        "PORT": os.environ["TAGBACK_DB_PORT"],
        "USER": "tagback",
        "PASSWORD": "tagback",
    }}
'''


class Database(harness.Database):
    """The harness's SQLite/PostgreSQL database, plus MariaDB."""

    def __init__(self, kind, work):
        if kind != "mysql":
            super().__init__(kind, work)
            return
        harness.Database.counter += 1
        self.kind = kind
        self.host, self.port = ARGS.mysql.split(":")
        self.name = f"tbg_{os.getpid()}_{harness.Database.counter}"
        for stmt in (f"DROP DATABASE IF EXISTS {self.name}", f"CREATE DATABASE {self.name}"):
            sh(["mariadb", "--no-defaults", "-h", self.host, "-P", self.port, "-u", "tagback", "-ptagback", "-e", stmt])

    def env(self):
        if self.kind != "mysql":
            return super().env()
        return dict(os.environ, TAGBACK_DB_NAME=self.name, TAGBACK_DB_ENGINE="mysql",
                    TAGBACK_DB_HOST=self.host, TAGBACK_DB_PORT=self.port)

    def url(self):
        if self.kind != "mysql":
            return super().url()
        return f"mysql://tagback:tagback@{self.host}:{self.port}/{self.name}"


def settings(p, apps, extra=""):
    p.settings(apps, extra)
    p.write("proj/settings.py", p.read("proj/settings.py") + MYSQL_SETTINGS)


def guard(code, db, *extra):
    p = sh([ARGS.tagback, "guard", "--project", code, "--database-url", db.url(), "--format", "json", *extra],
           check=False)
    try:
        report = json.loads(p.stdout) if p.stdout.strip() else None
    except json.JSONDecodeError:
        report = None
    return p.returncode, report, p.stdout + p.stderr


def guard_text(code, db):
    p = sh([ARGS.tagback, "guard", "--project", code], check=False, env=dict(os.environ, DATABASE_URL=db.url()))
    return p.returncode, p.stdout + p.stderr


def verify(sc, proj, newer, older, kinds, expect):
    """The guard on a database migrated by `newer`, with `older`'s code,
    before and after tagback's rollback."""
    work = os.path.join(ARGS.work, sc)
    ncode, ocode = os.path.join(work, "newer"), os.path.join(work, "older")
    proj.export(newer, ncode)
    proj.export(older, ocode)
    for cfg in expect.get("config", []):
        with open(os.path.join(ocode, ".tagback.yml"), "w") as f:
            f.write(cfg)
    plan = harness.tagback_plan(proj.root, newer, older)
    label = f"{newer}->{older}"
    for kind in kinds:
        db = Database(kind, work)
        db.manage(ncode, "migrate", "--noinput")
        code, report, out = guard(ncode, db)
        record(sc, kind, f"{label} guard with the newer code on its own database: exit 0", code == 0, out)
        if expect.get("seed_check", True):
            chk = db.manage(ocode, "migrate", "--check", "--noinput", check=False)
            record(sc, kind, f"{label} seed's failure: older code's migrate --check exits 0 on the newer schema",
                   chk.returncode == 0, chk.stdout + chk.stderr)
        code, report, out = guard(ocode, db)
        got = sorted(f"{r['app']}.{r['migration']}" for r in (report or {}).get("unknown", []))
        record(sc, kind, f"{label} guard with the older code blocks (exit 1) naming {expect['ahead']}",
               code == 1 and got == sorted(expect["ahead"]), f"exit {code}, got {got}: {out[-600:]}")
        code, text = guard_text(ocode, db)
        record(sc, kind, f"{label} guard's message names the migrations and the fix",
               code == 1 and all(m in text for m in expect["ahead"]) and "NEWER image" in text, text)
        code, _, out = guard(ocode, db, "--warn-only")
        record(sc, kind, f"{label} --warn-only exits 0", code == 0, out)
        before = db.manage(ncode, "showmigrations", "--list").stdout
        harness.run_commands(db, ncode, plan["commands"])
        for c in plan["post_commands"]:
            db.manage(ocode, *c.split()[2:], "--noinput")
        chk = db.manage(ocode, "migrate", "--check", "--noinput", check=False)
        record(sc, kind, f"{label} rolled back correctly (older code's migrate --check)", chk.returncode == 0,
               chk.stdout + chk.stderr)
        if expect.get("record") and kind == "mysql":
            # `tagback record --database-url mysql://…` and the gate, as the
            # harness checks them on SQLite and PostgreSQL.
            harness.verify_record(sc, kind, db, proj, newer, older, plan, before)
        if expect.get("after_blocked"):
            expect["after_extra"](sc, kind, db, ncode, ocode)
            continue
        code, report, out = guard(ocode, db)
        excused = sorted(f"{e['app']}.{e['migration']}" for e in (report or {}).get("excused", []))
        ok = code == 0 and excused == sorted(expect.get("excused", []))
        if "not_installed" in expect:
            ok = ok and (report or {}).get("not_installed") == expect["not_installed"]
        record(sc, kind, f"{label} guard with the older code passes after the rollback (exit 0)", ok,
               f"exit {code}, excused {excused}: {out[-800:]}")
        if "after_extra" in expect:
            expect["after_extra"](sc, kind, db, ncode, ocode)


def fields_model(p, fields):
    p.models("shop", "class Product(models.Model):\n" +
             "".join(f"    {x} = models.CharField(max_length=20, default='')\n" for x in fields))


def sc_linear(kinds):
    """New migrations in two apps, one depending on the other."""
    p = Project(os.path.join(ARGS.work, "repos", "linear"))
    p.app("shop")
    p.app("accounts", label="members")
    settings(p, ["shop", "accounts.apps.AccountsConfig"])
    fields_model(p, ["name"])
    p.models("accounts", "class Member(models.Model):\n    name = models.CharField(max_length=20)\n")
    p.makemigrations("shop")
    p.makemigrations("members")
    p.commit("v1")
    fields_model(p, ["name", "sku"])
    p.makemigrations("shop", name="add_sku")
    p.models("accounts", "class Member(models.Model):\n    name = models.CharField(max_length=20)\n"
             "    fav = models.ForeignKey('shop.Product', null=True, on_delete=models.SET_NULL)\n")
    p.makemigrations("members", name="fav")
    p.commit("v2")
    verify("linear", p, "v2", "v1", kinds, {"ahead": ["shop.0002_add_sku", "members.0002_fav"], "record": True})


def sc_squash(kinds):
    """The older code's migrations are squashed in the newer revision, which
    adds one more: the squash's own row stays after the rollback."""
    p = Project(os.path.join(ARGS.work, "repos", "squash"))
    p.app("shop")
    settings(p, ["shop"])
    fields = []
    for f in ["name", "sku", "color"]:
        fields.append(f)
        fields_model(p, fields)
        p.makemigrations("shop", name=None if f == "name" else f"add_{f}")
    p.commit("v1")
    p.squash("shop", "0001", "0003")
    fields.append("size")
    fields_model(p, fields)
    p.makemigrations("shop", name="add_size")
    p.commit("v2")
    squash = [f[:-3] for f in os.listdir(os.path.join(p.root, "shop/migrations")) if "squashed" in f][0]
    verify("squash", p, "v2", "v1", kinds, {"ahead": ["shop.0004_add_size"], "excused": [f"shop.{squash}"]})


def sc_squash_custom_name(kinds):
    """A squash named with --squashed-name cannot be told apart from a newer
    migration by its row: the guard blocks naming it; the allow-list in
    .tagback.yml, with its reason, lets the correctly rolled-back database pass."""
    p = Project(os.path.join(ARGS.work, "repos", "squash_custom"))
    p.app("shop")
    settings(p, ["shop"])
    fields = []
    for f in ["name", "sku"]:
        fields.append(f)
        fields_model(p, fields)
        p.makemigrations("shop", name=None if f == "name" else f"add_{f}")
    p.commit("v1")
    p.squash("shop", "0001", "0002", name="compact")
    fields.append("size")
    fields_model(p, fields)
    p.makemigrations("shop", name="add_size")
    p.commit("v2")

    def blocked_then_allowed(sc, kind, db, ncode, ocode):
        code, report, out = guard(ocode, db)
        got = sorted(f"{r['app']}.{r['migration']}" for r in (report or {}).get("unknown", []))
        record(sc, kind, "an unrecognisable squash row blocks without the allow-list",
               code == 1 and got == ["shop.0001_compact"], f"exit {code}: {out[-400:]}")
        cfg = os.path.join(ocode, "allow.yml")
        with open(cfg, "w") as f:
            f.write("guard:\n  allow:\n    - migration: shop.0001_compact\n"
                    "      reason: squash of 0001_initial and 0002_add_sku made in v2 with --squashed-name\n")
        code, report, out = guard(ocode, db, "--config", cfg)
        reasons = [e["reason"] for e in (report or {}).get("excused", [])]
        record(sc, kind, "allow-listed with its reason, the rolled-back database passes",
               code == 0 and any("--squashed-name" in r for r in reasons), f"exit {code}: {out[-400:]}")
        with open(cfg, "w") as f:
            f.write("guard:\n  allow:\n    - migration: shop.0001_compact\n      reason: ''\n")
        code, _, out = guard(ocode, db, "--config", cfg)
        record(sc, kind, "an allow-list entry without a reason is bad input (exit 2)", code == 2, out)

    verify("squash_custom", p, "v2", "v1", kinds, {
        "ahead": ["shop.0001_compact", "shop.0002_add_size"],
        "excused": [],
        "after_extra": blocked_then_allowed,
        "after_blocked": True,
    })


def sc_apps_added_removed(kinds):
    """The newer revision adds an app (rolled back to zero) and removes one
    (its rows are left by Django; the older code migrates it forward)."""
    p = Project(os.path.join(ARGS.work, "repos", "apps_added_removed"))
    p.app("shop")
    p.app("legacy")
    settings(p, ["shop", "legacy"])
    fields_model(p, ["name"])
    p.models("legacy", "class Thing(models.Model):\n    name = models.CharField(max_length=20)\n")
    p.makemigrations("shop")
    p.makemigrations("legacy")
    p.commit("v1")
    p.app("promo")
    p.models("promo", "class Campaign(models.Model):\n    product = models.ForeignKey('shop.Product', on_delete=models.CASCADE)\n")
    settings(p, ["shop", "promo"])
    p.makemigrations("promo")
    fields_model(p, ["name", "sku"])
    p.makemigrations("shop", name="add_sku")
    p.remove("legacy")
    p.commit("v2")

    def removed_app_rows_are_ignored(sc, kind, db, ncode, ocode):
        # The older code migrated `legacy` forward; the newer code does not
        # install it: its rows are ignored, not "ahead".
        code, report, out = guard(ncode, db)
        record(sc, kind, "rows of an app the code no longer installs are ignored (exit 0, listed)",
               code == 0 and (report or {}).get("not_installed") == ["legacy"], out[-400:])

    verify("apps_added_removed", p, "v2", "v1", kinds, {
        "ahead": ["shop.0002_add_sku"], "not_installed": [], "after_extra": removed_app_rows_are_ignored,
        # The older code has `legacy` to migrate forward: its --check fails for that reason.
        "seed_check": False})


SCENARIOS = {
    "linear": sc_linear,
    "squash": sc_squash,
    "squash_custom": sc_squash_custom_name,
    "apps_added_removed": sc_apps_added_removed,
}

ARGS = None


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--tagback", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--postgres")
    ap.add_argument("--mysql")
    ap.add_argument("--work", required=True)
    ap.add_argument("--only", nargs="*")
    ARGS = ap.parse_args()
    ARGS.tagback = os.path.abspath(ARGS.tagback)
    ARGS.work = os.path.abspath(ARGS.work)
    harness.ARGS = ARGS
    os.makedirs(ARGS.work, exist_ok=True)
    kinds = ["sqlite"] + (["postgresql"] if ARGS.postgres else []) + (["mysql"] if ARGS.mysql else [])
    version = sh([ARGS.python, "-c", "import django; print(django.get_version())"]).stdout.strip()
    print(f"guard: Django {version}; databases: {', '.join(kinds)}", flush=True)
    for name, fn in SCENARIOS.items():
        if ARGS.only and name not in ARGS.only:
            continue
        print(f"scenario {name}", flush=True)
        try:
            fn(kinds)
        except Exception as e:  # a crash is a failed check, with its trace
            record(name, "-", "scenario ran", False, "".join(traceback.format_exception(e))[-2000:])
    results = harness.RESULTS
    failed = [r for r in results if not r[3]]
    print(f"\n{len(results) - len(failed)} of {len(results)} guard checks passed against real Django {version}")
    for r in failed:
        print(f"FAILED: {r[0]} [{r[1]}] {r[2]}: {r[4]}")
    sys.exit(1 if failed or not results else 0)


if __name__ == "__main__":
    main()
