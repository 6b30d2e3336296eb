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
   schema equals it — on SQLite and PostgreSQL.

Usage: packages.py --tagback BIN --work DIR [--postgres HOST:PORT] [--python PY] [--only NAME...]
(--python: the interpreter that makes the venvs and runs pip download;
default python3). Exit status 0 when every check passed.
"""

import argparse
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
}

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

ARGS = None


def normalize(name):
    import re
    return re.sub(r"[-_.]+", "-", name).lower()


def build_index(work):
    """INDEX/NAME/FILE from pip download (kept between runs in WORK/dl)."""
    dl = os.path.join(work, "dl")
    os.makedirs(dl, exist_ok=True)
    wanted = sorted({r for sc in SCENARIOS.values() for r in sc["older"] + sc["newer"]} | set(COMMON))
    for req in wanted:
        name, version = req.split("==")
        have = [f for f in os.listdir(dl) if normalize(f.split("-")[0]) == normalize(name)
                and f.split("-")[1] == version]
        if not have:
            sh([ARGS.python, "-m", "pip", "download", "-q", "--no-deps", "-d", dl, req])
    index = os.path.join(work, "index")
    shutil.rmtree(index, ignore_errors=True)
    for f in os.listdir(dl):
        d = os.path.join(index, normalize(f.split("-")[0]))
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
        sh([ARGS.python, "-m", "venv", d])
        req = os.path.join(work, f"req-{os.getpid()}.txt")
        with open(req, "w") as f:
            f.write("\n".join(reqs + COMMON) + "\n")
        sh([py, "-m", "pip", "install", "-q", "--no-deps", "--index-url", index_url, "-r", req])
        open(os.path.join(d, ".done"), "w").close()
    return py


def site(root, py_older, apps):
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
    s += DATABASES
    with open(p, "w") as f:
        f.write(s)


def commit(root, tag, reqs):
    with open(os.path.join(root, "requirements.txt"), "w") as f:
        f.write("# pinned by pip-compile\n" + "\n".join(reqs + COMMON) + "\n")
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


def run_scenario(name, sc, index_url, kinds):
    work = os.path.join(ARGS.work, name)
    os.makedirs(work, exist_ok=True)
    py_o = venv(ARGS.work, sc["older"], index_url)
    py_n = venv(ARGS.work, sc["newer"], index_url)
    root = os.path.join(work, "repo")
    site(root, py_o, sc["apps"])
    commit(root, "v1", sc["older"])
    commit(root, "v2", sc["newer"])
    shutil.rmtree(os.path.join(root, ".git", "tagback"), ignore_errors=True)
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
    known_old = {tuple(k) for k in json.loads(sh([py_o, "-c", KNOWN], cwd=root,
                 env=dict(os.environ, DJANGO_SETTINGS_MODULE="proj.settings")).stdout)}
    for kind in kinds:
        harness.ARGS.python = py_n
        db = harness.Database(kind, work)
        db.manage(root, "migrate", "--noinput")
        for c in p["commands"]:
            words = c.split()
            assert words[:3] == ["python", "manage.py", "migrate"], c
            db.manage(root, *words[2:], "--noinput")
        harness.ARGS.python = py_o
        chk = db.manage(root, "migrate", "--check", "--noinput", check=False)
        record(name, kind, "migrate --check with the older pins", chk.returncode == 0, chk.stdout + chk.stderr)
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
        record(name, kind, "schema equals a fresh migrate of the older pins", a["schema"] == b["schema"],
               schema_diff(a["schema"], b["schema"]))
        got_rows = {tuple(r) for r in a["rows"] if tuple(r) in known_old}
        want_rows = {tuple(r) for r in b["rows"]}
        record(name, kind, "django_migrations rows the older code knows match", got_rows == want_rows,
               f"missing {sorted(want_rows - got_rows)}, extra {sorted(got_rows - want_rows)}")


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
    index = build_index(ARGS.work)
    with serve(index) as url:
        for name, sc in SCENARIOS.items():
            if ARGS.only and name not in ARGS.only:
                continue
            print(f"scenario {name}", flush=True)
            try:
                run_scenario(name, sc, url, kinds)
            except Exception as e:  # a crash is a failed check, with its trace
                record(name, "-", "scenario ran", False, "".join(traceback.format_exception(e))[-2000:])
    results = harness.RESULTS
    failed = [r for r in results if not r[3]]
    print(f"\n{len(results) - len(failed)} passed, {len(failed)} failed")
    for r in failed:
        print(f"FAILED: {r[0]} [{r[1]}] {r[2]}: {r[4]}")
    sys.exit(1 if failed or not results else 0)


if __name__ == "__main__":
    main()
