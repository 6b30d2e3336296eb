#!/usr/bin/env python3
"""Real Django judges tagback's plans for migrations that arrive through pip.

For every scenario: a site made by `django-admin startproject`, whose
requirements.txt pins package versions, is committed at two revisions
(older pins, newer pins). The pinned archives come from a real local PEP 503
index: a directory filled by `pip download` (from the registry), laid out
as INDEX/NAME/FILE and served by `python3 -m http.server` on 127.0.0.1.
Two venvs get the older and the newer pins from that index. Then:

1. `tagback plan` (PIP_INDEX_URL pointing at the local index) gives the plan;
   a second run with the index turned off (TAGBACK_NO_INDEX=1) must give the
   same plan from the archive cache;
2. a fresh database is migrated by the newer venv, the plan's commands run
   with the newer venv (where the newer package versions are installed);
3. with the older venv: `migrate --check` exits 0, the django_migrations rows
   the older code knows equal a fresh migrate of the older pins, and the
   schema equals it — on SQLite and PostgreSQL;
4. what tagback says unapplying drops (data_loss) is what introspection saw
   dropped; `check` (the stack file moved back in the working tree) exits 1
   with the same plan when it has steps; the script's header says the
   backward migrations run in the newer image with the newer versions;
5. irreversible operations: named with file:line inside the package, which
   real Django confirms (operation.reversible, the installed file's lines);
   `script` refuses without --allow-manual-steps; the plain commands stop
   with IrreversibleError; the script with its manual steps, run against
   harness's stand-in docker on that half-downgraded database, then reaches
   the older state (checked as in 3).

Usage: packages.py --tagback BIN --work DIR [--postgres HOST:PORT] [--python PY] [--only NAME...]
(--python: the interpreter that makes the venvs and runs pip download;
default python3). Exit status 0 when every check passed.
"""

import argparse
import concurrent.futures
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import traceback
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (sh, git, Database, SCHEMA, schema_diff, record)
from harness import git, record, schema_diff, sh  # noqa: E402

COMMON = ["asgiref==3.13.0", "sqlparse==0.6.1", "typing_extensions==4.16.0",
          "psycopg==3.3.9", "psycopg-binary==3.3.9", "python-dateutil==2.9.0.post0", "six==1.17.0"]

# What wagtail 6.2.3 and 6.3.1 both install (besides COMMON).
WAGTAIL_DEPS = ["anyascii==0.3.3", "beautifulsoup4==4.12.3", "certifi==2026.10.19.post1",
                "charset-normalizer==3.5.3", "defusedxml==0.7.1", "django-filter==24.3",
                "django-modelcluster==6.5", "django-permissionedforms==0.1", "django-taggit==5.0.1",
                "django-treebeard==4.8.0", "djangorestframework==3.17.2", "draftjs_exporter==5.2.0",
                "et_xmlfile==2.0.0", "filetype==1.2.0", "idna==3.20", "l18n==2021.3", "laces==0.1.2",
                "openpyxl==3.1.5", "pytz==2026.6", "requests==2.34.2", "soupsieve==4.1.3",
                "telepath==0.3.1", "urllib3==2.8.0"]
# The apps whose 6.3.1 wheel adds migrations (labels from their AppConfigs),
# back to their 6.2.3 leaves.
WAGTAIL_TARGETS = {"wagtaildocs": "0013_delete_uploadeddocument", "wagtailimages": "0026_delete_uploadedimage",
                   "wagtailusers": "0013_userprofile_density"}

SCENARIOS = {
    # Two package upgrades under the same Django: taggit 5.0 adds a
    # RenameIndex, auditlog 2.2/2.3 add a JSON column and alter a field.
    "upgrades": {
        "apps": ["taggit", "auditlog"],
        "older": ["Django==4.2.30", "django-taggit==4.0.0", "django-auditlog==2.1.1"],
        "newer": ["Django==4.2.30", "django-taggit==5.0.1", "django-auditlog==2.3.0"],
        "targets": {"taggit": "0005_auto_20220424_2025", "auditlog": "0010_alter_logentry_timestamp"},
    },
    # Issue 12 point 3: wagtail.admin (label wagtailadmin) beside
    # django.contrib.admin was a false "two apps labelled admin"; wagtail
    # 6.2.3 -> 6.3.1 with every wagtail app installed, labels read from
    # the wheels (wagtail -> wagtailcore, wagtail.sites -> wagtailsites...).
    "wagtail": {
        "apps": ["wagtail.contrib.forms", "wagtail.contrib.redirects", "wagtail.embeds", "wagtail.sites",
                 "wagtail.users", "wagtail.snippets", "wagtail.documents", "wagtail.images", "wagtail.search",
                 "wagtail.admin", "wagtail", "modelcluster", "taggit"],
        "older": ["Django==4.2.30", "wagtail==6.2.3", "Willow==1.11.0", "pillow==10.4.0", "pillow_heif==0.22.0"]
        + WAGTAIL_DEPS,
        "newer": ["Django==4.2.30", "wagtail==6.3.1", "Willow==1.12.0", "pillow==11.3.0", "pillow_heif==1.8.1"]
        + WAGTAIL_DEPS,
        "targets": WAGTAIL_TARGETS,
    },
    # Django itself: 4.2 -> 5.2 (contrib apps read from Django's own wheels).
    "django": {
        "apps": ["taggit"],
        "older": ["Django==4.2.30", "django-taggit==5.0.1"],
        "newer": ["Django==5.2.19", "django-taggit==5.0.1"],
        "targets": {},
    },
    # Three permission/security packages at once: guardian 3.2 swaps its
    # object-permission indexes (the new ones must not stay applied), axes
    # 8.0 adds a column, django-otp 1.5 adds timestamp columns to four apps
    # whose labels come from their AppConfig (django_otp.plugins.otp_totp is
    # otp_totp). Unapplying them drops those columns: data loss.
    "permissions": {
        "apps": ["guardian", "axes", "django_otp", "django_otp.plugins.otp_static", "django_otp.plugins.otp_totp",
                 "django_otp.plugins.otp_hotp", "django_otp.plugins.otp_email"],
        "older": ["Django==4.2.30", "django-guardian==2.4.0", "django-axes==6.0.0", "django-otp==1.2.4"],
        "newer": ["Django==4.2.30", "django-guardian==3.2.0", "django-axes==8.0.0", "django-otp==1.5.0"],
        "targets": {"guardian": "0002_generic_permissions_index", "axes": "0008_accessfailurelog",
                    "otp_static": "0002_throttling", "otp_totp": "0002_auto_20190420_0723",
                    "otp_hotp": "0002_auto_20190420_0723", "otp_email": "0004_throttling"},
        "data_loss": True,
    },
    # django-allauth 0.61.1 -> 65.0.2, both sdists (tar.gz, built by pip
    # from the local index): account 0006 and 0008 are RunPython without
    # reverse_code. tagback names them inside the package, `check` blocks,
    # real Django raises IrreversibleError; the script's manual steps
    # (--allow-manual-steps, TAGBACK_MANUAL_n=done) then reach the older state.
    "allauth": {
        "apps": ["allauth", "allauth.account", "allauth.socialaccount"],
        "settings": 'MIDDLEWARE += ["allauth.account.middleware.AccountMiddleware"]\n',
        "older": ["Django==4.2.30", "django-allauth==0.61.1"],
        "newer": ["Django==4.2.30", "django-allauth==65.0.2"],
        "targets": {"account": "0005_emailaddress_idx_upper_email"},
        # Real Django on PostgreSQL: unapplying 0007's AlterField(email,
        # db_index=True) drops every index on `email` that is not in
        # Meta.indexes (BaseDatabaseSchemaEditor._alter_field), so the partial
        # UniqueConstraint `unique_verified_email` (0003, left applied) goes
        # too. Django's own loss, whatever the plan: asserted exactly.
        "django_drops": {"postgresql": ("account_emailaddress", [["email"], False, True, None, True, False])},
        "irreversible": [("account", "0006_emailaddress_lower", "RunPython",
                          "allauth/account/migrations/0006_emailaddress_lower.py"),
                         ("account", "0008_emailaddress_unique_primary_email_fixup", "RunPython",
                          "allauth/account/migrations/0008_emailaddress_unique_primary_email_fixup.py")],
    },
    # A Django upgrade that does unapply something: auth 0012 arrived with
    # Django 3.1, so 3.0.14 -> 3.2.25 must take it back (with Django 3.2's
    # code); django-reversion 3.0.9 -> 4.0.2 (whose 0001 is a squash) adds an
    # index. Django 3.x needs psycopg2 and pytz; 3.0 has no `migrate --check`
    # (3.1 added it): the same question is asked of its MigrationExecutor.
    # USE_TZ = False: Django 3.0's utc_tzinfo_factory compares psycopg2
    # 2.9's timedelta offsets with 0 and always fails (fixed in 3.1.13), and
    # psycopg2 < 2.9 has no wheel for this Python.
    "django3": {
        "apps": ["reversion"],
        "settings": "USE_TZ = False\n",
        "older": ["Django==3.0.14", "django-reversion==3.0.9", "pytz==2024.2", "psycopg2-binary==2.9.10"],
        "newer": ["Django==3.2.25", "django-reversion==4.0.2", "pytz==2024.2", "psycopg2-binary==2.9.10"],
        "targets": {"auth": "0011_update_proxy_permissions", "reversion": "0001_squashed_0004_auto_20160611_1202"},
        "pending": "executor",
    },
}

# What pip needs to build the sdists (django-allauth): served by the same
# index, so pip's build isolation gets it from 127.0.0.1 too; installed in
# every venv.
BUILD = ["setuptools==75.8.0"]

STACK = "services:\n  web:\n    image: registry.example.com/site:{tag}\n"

DATABASES = '''
import os as _os
if _os.environ.get("TAGBACK_DB_ENGINE") == "postgresql":
    DATABASES = {"default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _os.environ["TAGBACK_DB_NAME"],
        "HOST": _os.environ["TAGBACK_DB_HOST"],
        "PORT": _os.environ["TAGBACK_DB_PORT"],
        "USER": _os.environ.get("TAGBACK_DB_USER", "postgres"),
    }}
else:
    DATABASES = {"default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": _os.environ.get("TAGBACK_DB_NAME", "/tmp/unused.sqlite3"),
    }}
'''

KNOWN = r'''
import json, os, sys
sys.path.insert(0, os.getcwd())
import django
django.setup()
from django.db.migrations.loader import MigrationLoader
l = MigrationLoader(None, ignore_no_migrations=True)
known = set(l.disk_migrations)
for m in l.disk_migrations.values():
    known.update(m.replaces)
print(json.dumps(sorted(known)))
'''

# `migrate --check` for a Django without it (3.0): exit 1 while the
# executor has anything to apply.
PENDING = r'''
import os, sys
sys.path.insert(0, os.getcwd())
import django
django.setup()
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
e = MigrationExecutor(connection)
plan = e.migration_plan(e.loader.graph.leaf_nodes())
print("\\n".join(f"{m.app_label}.{m.name}" for m, _ in plan))
sys.exit(1 if plan else 0)
'''

# Real Django on an operation tagback calls irreversible: is it, and on
# which line of the installed file does it start?
IRREVERSIBLE = r'''
import ast, json, os, sys
sys.path.insert(0, os.getcwd())
import django
django.setup()
from django.db.migrations.loader import MigrationLoader
l = MigrationLoader(None, ignore_no_migrations=True)
out = []
for app, name, operation in json.loads(sys.argv[1]):
    m = l.disk_migrations[(app, name)]
    mod = sys.modules[type(m).__module__]
    path = mod.__file__
    site = path[: -len(type(m).__module__.replace(".", "/") + ".py")]
    ops = [o for o in m.operations if type(o).__name__ == operation and not o.reversible]
    calls = [n.lineno for n in ast.walk(ast.parse(open(path).read()))
             if isinstance(n, ast.Call) and getattr(n.func, "attr", getattr(n.func, "id", None)) == operation]
    out.append([app, name, operation, os.path.relpath(path, site), len(ops), sorted(calls)])
print(json.dumps(out))
'''

ARGS = None


def normalize(name):
    import re
    return re.sub(r"[-_.]+", "-", name).lower()


def dist(file_name):
    """(normalized name, version) of a wheel or an sdist file name."""
    if file_name.endswith(".whl"):
        name, version = file_name.split("-")[:2]
    else:
        name, version = file_name.removesuffix(".tar.gz").removesuffix(".zip").rsplit("-", 1)
    return normalize(name), version


def build_index(work):
    """INDEX/NAME/FILE from pip download (kept between runs in WORK/dl)."""
    dl = os.path.join(work, "dl")
    os.makedirs(dl, exist_ok=True)
    wanted = sorted({r for sc in SCENARIOS.values() for r in sc["older"] + sc["newer"]} | set(COMMON) | set(BUILD))
    have = {dist(f) for f in os.listdir(dl)}
    missing = [r for r in wanted if (normalize(r.split("==")[0]), r.split("==")[1]) not in have]
    # Each archive is downloaded once (pip resolves one version per name per
    # call, hence a call each), a few at a time: they wait on the network.
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda r: sh([ARGS.python, "-m", "pip", "download", "-q", "--no-deps", "-d", dl, r]), missing))
    index = os.path.join(work, "index")
    shutil.rmtree(index, ignore_errors=True)
    for f in os.listdir(dl):
        d = os.path.join(index, dist(f)[0])
        os.makedirs(d, exist_ok=True)
        shutil.copy(os.path.join(dl, f), d)
    return index


@contextlib.contextmanager
def serve(directory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                          "--directory", directory], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/"
    finally:
        p.terminate()
        p.wait()


def venv(work, reqs, index_url):
    import hashlib
    key = hashlib.sha256("\n".join(sorted(reqs + COMMON)).encode()).hexdigest()[:16]
    d = os.path.join(work, "venvs", key)
    py = os.path.join(d, "bin", "python")
    if not os.path.exists(os.path.join(d, ".done")):
        shutil.rmtree(d, ignore_errors=True)
        # Without pip in it (ensurepip takes seconds per venv): the outer
        # pip installs into it. setuptools too, as `venv` would have (axes
        # 6.0 imports pkg_resources), not in requirements.txt, as pip-compile
        # leaves it out.
        sh([ARGS.python, "-m", "venv", "--without-pip", d])
        req = os.path.join(work, f"req-{key}.txt")
        with open(req, "w") as f:
            f.write("\n".join(reqs + COMMON + BUILD) + "\n")
        sh([ARGS.python, "-m", "pip", "--python", py, "install", "-q", "--no-deps", "--index-url", index_url,
            "-r", req])
        open(os.path.join(d, ".done"), "w").close()
    return py


def site(root, py_older, apps, extra=""):
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    git(root, "init", "-q")
    sh([os.path.join(os.path.dirname(py_older), "django-admin"), "startproject", "proj", "."], cwd=root)
    p = os.path.join(root, "proj", "settings.py")
    with open(p) as f:
        s = f.read()
    s = s.replace('"django.contrib.staticfiles",', '"django.contrib.staticfiles",\n'
                  + "".join(f'    "{a}",\n' for a in apps))
    s = s.replace("'django.contrib.staticfiles',", "'django.contrib.staticfiles',\n"
                  + "".join(f"    '{a}',\n" for a in apps))
    s += DATABASES + extra
    with open(p, "w") as f:
        f.write(s)


def stack(root, tag):
    with open(os.path.join(root, "stack.yml"), "w") as f:
        f.write(STACK.format(tag=tag))


def commit(root, tag, reqs):
    with open(os.path.join(root, "requirements.txt"), "w") as f:
        f.write("# pinned by pip-compile\n" + "\n".join(reqs + COMMON) + "\n")
    stack(root, tag.lstrip("v"))
    git(root, "add", "-A")
    git(root, "commit", "-q", "--allow-empty", "-m", tag)
    git(root, "tag", "-f", tag)


def plan(root, index_url, offline=False):
    env = dict(os.environ, PIP_INDEX_URL=index_url)
    env.pop("TAGBACK_WHEELHOUSE", None)
    if offline:
        env["TAGBACK_NO_INDEX"] = "1"
    p = sh([ARGS.tagback, "plan", "--repo", root, "--from", "v2", "--to", "v1", "--format", "json"],
           env=env, check=False)
    if p.returncode != 0:
        raise RuntimeError(f"tagback plan exited {p.returncode}: {p.stderr.strip()}")
    return json.loads(p.stdout)


def django_py(py, code, root, env, *args):
    return sh([py, "-c", code, *args], cwd=root, env=dict(env, DJANGO_SETTINGS_MODULE="proj.settings"), check=False)


def claims(data_loss):
    """tagback's data-loss findings as ("table", T) / ("column", T, C)."""
    out = set()
    for d in data_loss:
        what = d["what"]
        if what.startswith("drops table "):
            out.add(("table", what.removeprefix("drops table ")))
        elif what.startswith("drops column "):
            out.add(("column", *what.removeprefix("drops column ").split(".", 1)))
        else:
            out.add(("other", what))
    return out


def dropped(before, after):
    """What going from schema `before` to `after` dropped, by real introspection."""
    out = set()
    for t, info in before.items():
        if t not in after:
            out.add(("table", t))
            continue
        cols = {c[0] for c in after[t]["columns"]}
        out |= {("column", t, c[0]) for c in info["columns"] if c[0] not in cols}
    return out


def check_static(name, sc, root, index_url, py_n):
    """The plan (from the index, then from the cache), `check` and `script`."""
    t0 = time.monotonic()
    p = plan(root, index_url)
    t1 = time.monotonic()
    p2 = plan(root, "http://127.0.0.1:9/", offline=True)
    t2 = time.monotonic()
    print(f"  plan with the index: {1000 * (t1 - t0):.0f} ms; from the archive cache: {1000 * (t2 - t1):.0f} ms")
    got = {s["app"]: s["target"] for s in p["steps"]}
    record(name, "static", "targets", got == sc["targets"], f"got {got}, want {sc['targets']}")
    record(name, "static", "no problems", p["problems"] == [], json.dumps(p["problems"]))
    record(name, "static", "plan from the cache equals the plan from the index", p == p2, json.dumps(p2)[:500])
    env = dict(os.environ, TAGBACK_NO_INDEX="1")
    env.pop("TAGBACK_WHEELHOUSE", None)
    # The stack file moved back from :2 (v2, HEAD) to :1 (v1) in the working tree.
    c = sh([ARGS.tagback, "check", "--format", "json"], cwd=root, env=env, check=False)
    want_rc = 1 if p["steps"] else 0
    ok = c.returncode == want_rc
    if ok:
        svc = json.loads(c.stdout)["services"][0]
        ok = (svc["direction"] == "downgrade" and svc["plan"]["steps"] == p["steps"]
              and svc["plan"]["irreversible"] == p["irreversible"])
    record(name, "static", f"check exits {want_rc} with the same plan", ok, f"exit {c.returncode}: {c.stdout[-600:]}{c.stderr}")
    want_irr = sorted(tuple(i) for i in sc.get("irreversible", []))
    got_irr = sorted((i["app"], i["migration"], i["operation"], i["file"]) for i in p["irreversible"])
    record(name, "static", "irreversible operations, with files inside the package", got_irr == want_irr,
           f"got {got_irr}, want {want_irr}")
    if p["irreversible"]:
        # Real Django: the operation is not reversible, and starts on that line of the installed file.
        real = json.loads(django_py(py_n, IRREVERSIBLE, root, os.environ, json.dumps(
            [[i["app"], i["migration"], i["operation"]] for i in p["irreversible"]])).stdout)
        for i, (app, mig, op, rel, n, lines) in zip(p["irreversible"], real):
            record(name, "static", f"{rel}:{i['line']} is an irreversible {op} for real Django",
                   rel == i["file"] and n >= 1 and i["line"] in lines, f"Django: {rel} lines {lines}, {n} irreversible")
    if p["steps"]:
        base = [ARGS.tagback, "script", "--repo", root, "--from", "v2", "--to", "v1", "--service", "web",
                "--image", "registry.example.com/site:1", "--current-image", "registry.example.com/site:2",
                "--stack-name", ""]
        r = sh(base, env=env, check=False)
        if p["irreversible"]:
            record(name, "static", "script refuses without --allow-manual-steps, naming the file",
                   r.returncode == 1 and all(f"{i['file']}:{i['line']}" in r.stdout + r.stderr for i in p["irreversible"]),
                   (r.stdout + r.stderr)[-500:])
            r = sh(base + ["--allow-manual-steps"], env=env, check=False)
        older = dict(r.split("==") for r in sc["older"])
        # The header names the changed packages that provide installed apps
        # (wagtail's pillow and Willow upgrades bring no migrations).
        tops = {a.split(".")[0] for a in sc["apps"]} | {"django"}

        def provides(dist):
            k = dist.lower().replace("-", "_")
            return k in tops or k.removeprefix("django_") in tops

        changed = [f"{n} {v} (older: {older.get(n, 'not installed')})"
                   for n, v in (r.split("==") for r in sc["newer"]) if older.get(n) != v and provides(n)]
        header = (f"#   packages: the backward migrations of {', '.join(sorted(changed, key=str.lower))} run in the newer "
                  "image, where the newer versions are installed\n")
        record(name, "static", "script header: backward migrations run in the newer image, newer versions installed",
               r.returncode == 0 and header in r.stdout, header + (r.stdout + r.stderr)[:1500])
        with open(os.path.join(ARGS.work, name, "rollback.sh"), "w") as f:
            f.write(r.stdout)
    return p


def run_script(name, kind, db, root, py_n, manual):
    """The rollback script, run for real against harness's stand-in docker
    whose `exec` runs the newer venv's manage.py on the real database; the
    manual steps marked done (there is no data to fix by hand)."""
    work = os.path.join(ARGS.work, name, f"script-{kind}")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "bin"))
    with open(os.path.join(work, "bin", "docker"), "w") as f:
        f.write(harness.FAKE_DOCKER)
    os.chmod(os.path.join(work, "bin", "docker"), 0o755)
    for file, value in (("image", "registry.example.com/site:2"), ("replicas", "2")):
        with open(os.path.join(work, file), "w") as f:
            f.write(value + "\n")
    env = dict(db.env(), FAKE_DOCKER_STATE=work, FAKE_DOCKER_CODE=root, TAGBACK_STATE_DIR=os.path.join(work, "state"),
               TAGBACK_EVIDENCE_FILE=os.path.join(work, "evidence.txt"),
               PATH=os.path.join(work, "bin") + os.pathsep + os.path.dirname(py_n) + os.pathsep + os.environ["PATH"])
    env.update({f"TAGBACK_MANUAL_{n}": "done" for n in range(1, manual + 1)})
    run = sh(["bash", os.path.join(ARGS.work, name, "rollback.sh")], cwd=work, env=env, check=False)
    image = open(os.path.join(work, "image")).read().strip()
    record(name, kind, "the script (manual steps done) unapplies, verifies, retags",
           run.returncode == 0 and image == "registry.example.com/site:1", (run.stdout + run.stderr)[-1500:])


def run_scenario(name, sc, index_url, kinds):
    work = os.path.join(ARGS.work, name)
    os.makedirs(work, exist_ok=True)
    py_o = venv(ARGS.work, sc["older"], index_url)
    py_n = venv(ARGS.work, sc["newer"], index_url)
    root = os.path.join(work, "repo")
    site(root, py_o, sc["apps"], sc.get("settings", ""))
    commit(root, "v1", sc["older"])
    commit(root, "v2", sc["newer"])
    stack(root, "1")
    shutil.rmtree(os.path.join(root, ".git", "tagback"), ignore_errors=True)
    p = check_static(name, sc, root, index_url, py_n)
    known_old = {tuple(k) for k in json.loads(django_py(py_o, KNOWN, root, os.environ).stdout)}
    for kind in kinds:
        harness.ARGS.python = py_n
        db = harness.Database(kind, work)
        db.manage(root, "migrate", "--noinput")
        before = db.snapshot(root)
        failed = None
        for c in p["commands"]:
            words = c.split()
            assert words[:3] == ["python", "manage.py", "migrate"], c
            r = db.manage(root, *words[2:], "--noinput", check=not p["irreversible"])
            if r.returncode != 0:
                failed = r.stdout + r.stderr
                break
        if p["irreversible"]:
            # Django stops halfway on the first irreversible one tagback
            # named (in the order it unapplies); the script, re-run on that
            # half-downgraded database, finishes the job with its manual steps.
            first = next(f"{a}.{m}" for a, m in p["unapply"]
                         if any((i["app"], i["migration"]) == (a, m) for i in p["irreversible"]))
            record(name, kind, f"the plain commands stop with IrreversibleError at {first}",
                   failed is not None and "IrreversibleError" in failed and first in failed, (failed or "")[-500:])
            run_script(name, kind, db, root, py_n, len({(i["app"], i["migration"]) for i in p["irreversible"]}))
        else:
            record(name, kind, "the commands ran with the newer pins", failed is None, failed or "")
        harness.ARGS.python = py_o
        if sc.get("pending") == "executor":
            chk = django_py(py_o, PENDING, root, db.env())
            what = "nothing to migrate with the older pins (MigrationExecutor)"
        else:
            chk = db.manage(root, "migrate", "--check", "--noinput", check=False)
            what = "migrate --check with the older pins"
        record(name, kind, what, chk.returncode == 0, chk.stdout + chk.stderr)
        fresh = harness.Database(kind, work)
        fresh.manage(root, "migrate", "--noinput")
        a, b = db.snapshot(root), fresh.snapshot(root)
        if kind == "sqlite":
            # SQLite remakes a table to rename an index (RenameIndex
            # backwards); a unique_together then comes back as the table's
            # inline UNIQUE (an autoindex) instead of a CREATE UNIQUE INDEX:
            # the same constraint, told apart only by the introspection's
            # index flag. Any plan reaching this state shows it.
            for snap in (a, b):
                for t in snap["schema"].values():
                    t["constraints"] = sorted(([c[0], c[1], c[2], c[3], c[4] and not c[2], c[5]]
                                               for c in t["constraints"]), key=json.dumps)
        lost = sc.get("django_drops", {}).get(kind)
        if lost:
            table, cons = lost
            record(name, kind, f"Django itself drops {table} {cons} (and nothing else differs)",
                   cons in b["schema"][table]["constraints"] and cons not in a["schema"][table]["constraints"], "")
            b["schema"][table]["constraints"].remove(cons)
        record(name, kind, "schema equals a fresh migrate of the older pins", a["schema"] == b["schema"],
               schema_diff(a["schema"], b["schema"]))
        got_rows = {tuple(r) for r in a["rows"] if tuple(r) in known_old}
        want_rows = {tuple(r) for r in b["rows"]}
        record(name, kind, "django_migrations rows the older code knows match", got_rows == want_rows,
               f"missing {sorted(want_rows - got_rows)}, extra {sorted(got_rows - want_rows)}")
        # Data loss: what tagback says unapplying drops is what it dropped.
        real, said = dropped(before["schema"], a["schema"]), claims(p["data_loss"])
        record(name, kind, f"data loss reported = dropped for real ({len(real)})",
               real == said,
               f"dropped {sorted(real)}, reported {sorted(said)}")
        if sc.get("data_loss"):
            record(name, kind, "the scenario drops data", bool(real), "")


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--tagback", required=True)
    ap.add_argument("--python", default="python3")
    ap.add_argument("--postgres")
    ap.add_argument("--work", required=True)
    ap.add_argument("--only", nargs="*")
    ARGS = ap.parse_args()
    ARGS.tagback = os.path.abspath(ARGS.tagback)
    ARGS.work = os.path.abspath(ARGS.work)
    os.makedirs(ARGS.work, exist_ok=True)
    harness.ARGS = types.SimpleNamespace(python=None, postgres=ARGS.postgres)
    kinds = ["sqlite"] + (["postgresql"] if ARGS.postgres else [])
    t0 = time.monotonic()
    index = build_index(ARGS.work)
    print(f"index ready in {time.monotonic() - t0:.0f} s", flush=True)
    chosen = {n: sc for n, sc in SCENARIOS.items() if not ARGS.only or n in ARGS.only}
    with serve(index) as url:
        # Every distinct set of pins gets one venv (scenarios whose pins
        # coincide share it), two built at a time (CI has 2 cores).
        t0 = time.monotonic()
        sets = {tuple(sorted(sc[k])): sc[k] for sc in chosen.values() for k in ("older", "newer")}
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda reqs: venv(ARGS.work, reqs, url), sets.values()))
        print(f"{len(sets)} venvs ready in {time.monotonic() - t0:.0f} s", flush=True)
        for name, sc in chosen.items():
            print(f"scenario {name}", flush=True)
            t1 = time.monotonic()
            try:
                run_scenario(name, sc, url, kinds)
            except Exception as e:  # a crash is a failed check, with its trace
                record(name, "-", "scenario ran", False, "".join(traceback.format_exception(e))[-2000:])
            print(f"  scenario {name}: {time.monotonic() - t1:.0f} s", flush=True)
    results = harness.RESULTS
    failed = [r for r in results if not r[3]]
    print(f"\n{len(results) - len(failed)} passed, {len(failed)} failed")
    for r in failed:
        print(f"FAILED: {r[0]} [{r[1]}] {r[2]}: {r[4]}")
    sys.exit(1 if failed or not results else 0)


if __name__ == "__main__":
    main()
