#!/usr/bin/env python3
"""Rebuild one corpus pair's truth from real Django and re-check tagback.

  build.py --mirror GITDIR --project NAME --older TAG --newer TAG
           [--tagback BIN] [--replay HOST:PORT] [--out corpus/git]

GITDIR is the project's git repository: a bare mirror, or `git clone URL`
(any clone: only its objects are read). For each tag this

1. extracts the tag with `git archive` into WORK/<project>/<tag>/ (never
   committed anywhere);
2. makes (or reuses) a Python 3.11 venv holding that tag's own requirements
   (VENVS/<project>-<hash of the requirement lines>), with the deviations
   listed in PROJECTS below recorded in the output;
3. dumps Django's MigrationLoader view with ../truth.py graph, with the tag's
   settings module, plus which app labels live in the checkout (own apps)
   and which come from installed packages.

Then ../truth.py's rules give the truth for the pair, split into own apps and
package apps; `tagback plan --repo GITDIR --from NEWER --to OLDER --format
json` is run on the repository itself (no checkout), and the pair is
classified:

- exact: tagback's unapply set and targets equal the truth of the own apps
  and of the installed packages whose pinned version changed (irreversible
  operations may be reported: a real property of the release);
- blocked: tagback reports a problem or a dynamic migration (code, message);
- WRONG: any other difference.

With --replay, the pair is also replayed on PostgreSQL: a fresh database
migrated forward with the newer code, tagback's commands run with the newer
code (post-commands with the older), then with the older code
`migrate --check` must pass and the schema and the django_migrations rows
(of migrations the older revision knows) must equal a fresh migrate of the
older code (comparison code: tests/django/harness.py).

The result is written to OUT/<project>/<older>..<newer>.json. Exit status 0
when the outcome is exact or blocked, 1 when it is WRONG or the replay
failed.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TRUTH = os.path.join(ROOT, "corpus", "truth.py")
sys.path.insert(0, os.path.join(ROOT, "corpus"))
sys.path.insert(0, os.path.join(ROOT, "tests", "django"))
import harness  # noqa: E402  (SCHEMA, schema_diff)
import truth  # noqa: E402  (pair)

WORK = os.environ.get("CORPUS_GIT_WORK", "/work/corpus-git-work")
VENVS = os.environ.get("CORPUS_GIT_VENVS", "/work/venvs-corpus-git")
PYTHON = os.environ.get("CORPUS_GIT_PYTHON", "python3.11")

NETBOX_CONFIG = '''\
import os
ALLOWED_HOSTS = ["*"]
SECRET_KEY = "corpus-git-" + "x" * 50
_REDIS_PORT = int(os.environ.get("CORPUS_REDIS_PORT", "6379"))
REDIS = {
    "tasks": {"HOST": "localhost", "PORT": _REDIS_PORT, "PASSWORD": "", "DATABASE": 0, "SSL": False},
    "caching": {"HOST": "localhost", "PORT": _REDIS_PORT, "PASSWORD": "", "DATABASE": 1, "SSL": False},
}
_DB = {
    "NAME": os.environ.get("CORPUS_DB_NAME", "netbox"),
    "USER": "postgres",
    "PASSWORD": "",
    "HOST": os.environ.get("CORPUS_DB_HOST", "localhost"),
    "PORT": os.environ.get("CORPUS_DB_PORT", ""),
}
'''


def netbox_setup(code, tag):
    """NetBox reads netbox/netbox/configuration.py (the documented install step
    copies configuration_example.py there); write a minimal one."""
    settings = open(os.path.join(code, "netbox", "netbox", "settings.py")).read()
    # Until 4.3 DATABASE is a required parameter; from 4.3 DATABASES is
    # accepted and the two together are refused.
    legacy = "hasattr(configuration, 'DATABASES')" not in settings
    with open(os.path.join(code, "netbox", "netbox", "configuration.py"), "w") as f:
        f.write(NETBOX_CONFIG + ("DATABASE = _DB\n" if legacy else 'DATABASES = {"default": _DB}\n'))


# Per project: where manage.py is, the settings module, the environment its
# settings need to import (no database is opened for the truth), how to point
# it at PostgreSQL for a replay, and deviations from the tag's requirements
# (regex on a requirement line -> replacement; each one is recorded).
PROJECTS = {
    "inventree": {
        "url": "https://github.com/inventree/InvenTree",
        # manage.py moved from InvenTree/ to src/backend/InvenTree/ in 0.15.0,
        # requirements.txt to src/backend/ (the root one is left as a comment).
        "subdir": lambda paths: "src/backend/InvenTree" if "src/backend/InvenTree/manage.py" in paths else "InvenTree",
        "requirements": lambda paths: (["src/backend/requirements.txt"] if "src/backend/requirements.txt" in paths
                                       else ["requirements.txt"]),
        "settings": "InvenTree.settings",
        # Its settings need a database engine and these directories (they are
        # created; no database is opened for the truth); config.yaml is
        # copied from config_template.yaml into the checkout.
        "env": {"INVENTREE_SECRET_KEY": "corpus-git", "INVENTREE_DB_ENGINE": "sqlite3",
                "INVENTREE_DB_NAME": "/tmp/corpus-git-inventree/db.sqlite3",
                "INVENTREE_MEDIA_ROOT": "/tmp/corpus-git-inventree/media",
                "INVENTREE_STATIC_ROOT": "/tmp/corpus-git-inventree/static",
                "INVENTREE_BACKUP_DIR": "/tmp/corpus-git-inventree/backup"},
        "pg_env": lambda host, port, name: {"INVENTREE_DB_ENGINE": "postgresql", "INVENTREE_DB_HOST": host,
                                            "INVENTREE_DB_PORT": port, "INVENTREE_DB_NAME": name,
                                            "INVENTREE_DB_USER": "postgres", "INVENTREE_DB_PASSWORD": ""},
        # Its AppConfig.ready() methods query the database unless sys.argv
        # names a command such as `migrate` (InvenTree/ready.py): the graph is
        # read as `manage.py migrate` would load it.
        "argv": ["migrate"],
        # From 0.15.0 the file has hashes, and the venv's pip (23.2.1) refuses
        # a hashed `qrcode[pil]==7.4.2` beside django-allauth-2fa's
        # `qrcode>=5.3` ("must have their versions pinned"); the image
        # (python:3.11-alpine3.18, pip 24.0) installs with pip 24.0.
        "pip": "pip==24.0",
        "deviations": [],
        # Across the 0.15.0 move (InvenTree/manage.py -> src/backend/InvenTree/
        # manage.py, three levels down) tagback exits 2 asking for
        # `newer: {manage_py: PATH}`; with it, it blocks (unpinned-requirement)
        # asking for `newer: {requirements: PATH}`, since 0.15.0's root
        # requirements.txt is comments while its INSTALLED_APPS has the apps of
        # the packages 0.14.5 pins. (Before tagback checked that, the plan with
        # manage_py: alone was WRONG: django-otp's and django-taggit's newer
        # migrations were left applied.) Both lines are recorded.
        "tagback_yml_pairs": {
            p: "services:\n  web:\n    newer:\n      manage_py: src/backend/InvenTree/manage.py\n"
               "      requirements: src/backend/requirements.txt\n"
            for p in ("0.14.5..0.15.0", "0.13.6..0.15.0")
        },
    },
    "paperless-ngx": {
        "url": "https://github.com/paperless-ngx/paperless-ngx",
        "subdir": "src",
        "settings": "paperless.settings",
        "env": {"PAPERLESS_SECRET_KEY": "corpus-git"},
        "pg_env": lambda host, port, name: {"PAPERLESS_DBHOST": host, "PAPERLESS_DBPORT": port,
                                            "PAPERLESS_DBNAME": name, "PAPERLESS_DBUSER": "postgres",
                                            "PAPERLESS_DBPASS": ""},
        # From 2.15 no requirements.txt: its Dockerfile makes one from uv.lock
        # with `uv export --no-dev --all-extras --format requirements-txt`; the
        # same command (uv from $CORPUS_GIT_UV, --frozen, no hashes) is run in
        # the checkout and recorded as a deviation.
        "requirements": [[os.environ.get("CORPUS_GIT_UV", "uv"), "export", "--frozen", "--no-dev", "--all-extras",
                          "--no-hashes", "--no-annotate", "--no-emit-project", "--format", "requirements-txt"]],
        # psycopg's C build (compiles against libpq): the binary wheel of the
        # same version instead, as for NetBox; mysqlclient (the mariadb extra,
        # no Django app) needs MariaDB's headers: not installed.
        "deviations": [(r"^psycopg-c==", "psycopg-binary=="), (r"^mysqlclient==.*$", "")],
        # On Python 3.12 (the image: ghcr.io/astral-sh/uv:*-python3.12-* at
        # every tag) numpy, scipy and pywavelets resolve to one version of
        # the two uv.lock forks; tagback asks for `python:` (all pairs).
        "tagback_yml": "services: {web: {python: \"3.12\"}}\n",
    },
    "healthchecks": {
        "url": "https://github.com/healthchecks/healthchecks",
        "subdir": ".",
        "settings": "hc.settings",
        "env": {"SECRET_KEY": "corpus-git"},
        "pg_env": lambda host, port, name: {"DB": "postgres", "DB_HOST": host, "DB_PORT": port, "DB_NAME": name,
                                            "DB_USER": "postgres"},
        "requirements": ["requirements.txt"],
        "deviations": [],
    },
    "babybuddy": {
        "url": "https://github.com/babybuddy/babybuddy",
        "subdir": ".",
        "settings": "babybuddy.settings.base",
        "env": {"SECRET_KEY": "corpus-git"},
        "pg_env": lambda host, port, name: {"DB_ENGINE": "django.db.backends.postgresql", "DB_HOST": host,
                                            "DB_PORT": port, "DB_NAME": name, "DB_USER": "postgres"},
        "requirements": ["requirements.txt"],
        "deviations": [(r"^-i .*$", "")],
        # manage.py does not set DJANGO_SETTINGS_MODULE (the Docker image's
        # environment does); tagback says so and asks for `settings:`.
        "tagback_yml": "services: {web: {settings: babybuddy.settings.base}}\n",
    },
    "netbox": {
        "url": "https://github.com/netbox-community/netbox",
        "subdir": "netbox",
        "settings": "netbox.settings",
        "env": {},
        "setup": netbox_setup,
        # A data module of 4 MiB and more (custom-field choice sets), absent
        # from the search tool's mirror; a real clone has it.
        "stubs": {"netbox/extras/data/un_locode.py": "UN_LOCODE = ()\n"},
        "pg_env": lambda host, port, name: {"CORPUS_DB_HOST": host, "CORPUS_DB_PORT": port, "CORPUS_DB_NAME": name},
        "requirements": ["requirements.txt"],
        # psycopg's C build compiles for minutes on this machine; the binary
        # wheel of the same version is the same code for MigrationLoader.
        "deviations": [(r"^psycopg\[c,pool\]", "psycopg[binary,pool]")],
        # `if not DEBUG: INSTALLED_APPS.remove('debug_toolbar')` with DEBUG
        # from the operator's configuration: where django-debug-toolbar's
        # migrations change (4.4.0 -> 4.4.10), tagback asks for the list
        # (this is Django's INSTALLED_APPS at both tags, DEBUG off).
        "tagback_yml": "services:\n  web:\n    installed_apps: [django.contrib.auth, django.contrib.contenttypes, "
                       "django.contrib.sessions, django.contrib.messages, django.contrib.staticfiles, "
                       "django.contrib.humanize, django.forms, corsheaders, django_filters, django_htmx, "
                       "django_tables2, django_prometheus, strawberry_django, mptt, rest_framework, social_django, "
                       "sorl.thumbnail, taggit, timezone_field, core, account, circuits, dcim, ipam, extras, tenancy, "
                       "users, utilities, virtualization, vpn, wireless, django_rq, drf_spectacular, "
                       "drf_spectacular_sidecar]\n",
        # Per pair where another line is asked for: NetBox's test plugin
        # (netbox/netbox/tests/dummy_plugin) gains a migration in 4.2; the
        # plugin loop could install it, so tagback asks.
        "tagback_yml_pairs": {
            "v4.0.0..v4.2.9": "services:\n  web:\n    not_installed: [netbox/netbox/tests/dummy_plugin/migrations]\n",
        },
    },
    "tandoor": {
        "url": "https://github.com/TandoorRecipes/recipes",
        "subdir": ".",
        "settings": "recipes.settings",
        "env": {"SECRET_KEY": "corpus-git"},
        "pg_env": lambda host, port, name: {"DB_ENGINE": "django.db.backends.postgresql", "POSTGRES_HOST": host,
                                            "POSTGRES_PORT": port, "POSTGRES_DB": name, "POSTGRES_USER": "postgres",
                                            "POSTGRES_PASSWORD": ""},
        "requirements": ["requirements.txt"],
        "deviations": [],
    },
}

# Which app labels have their migrations module inside the checkout.
APPS = r'''
import importlib, json, os, sys
sys.path.insert(0, os.getcwd())
import django
django.setup()
from django.apps import apps
from django.db.migrations.loader import MigrationLoader
root = os.path.realpath(sys.argv[1])
out = {}
for cfg in apps.get_app_configs():
    module, _ = MigrationLoader.migrations_module(cfg.label)
    path = None
    if module:
        try:
            path = os.path.realpath(importlib.import_module(module).__path__[0])
        except Exception:
            path = None
    out[cfg.label] = {"module": module, "own": bool(path and (path + os.sep).startswith(root + os.sep)),
                      "path": os.path.relpath(path, root) if path and path.startswith(root) else None}
print(json.dumps(out, sort_keys=True))
'''


def sh(cmd, cwd=None, env=None, check=True, input=None):
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=input is None or isinstance(input, str),
                       input=input)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} (in {cwd}) failed with {p.returncode}:\n"
                           f"{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


class Tag:
    def __init__(self, args, cfg, tag):
        self.args, self.cfg, self.tag = args, cfg, tag
        self.commit = sh(["git", "--git-dir", args.mirror, "rev-parse", f"{tag}^{{commit}}"]).stdout.strip()
        if callable(cfg["subdir"]) or callable(cfg["requirements"]):
            # A layout that moved between releases (InvenTree): "subdir" and
            # "requirements" as functions of the paths in the tag's tree.
            paths = set(sh(["git", "--git-dir", args.mirror, "ls-tree", "-r", "--name-only",
                            self.commit]).stdout.splitlines())
            cfg = self.cfg = dict(cfg, **{k: cfg[k](paths) for k in ("subdir", "requirements") if callable(cfg[k])})
        self.root = os.path.join(WORK, args.project, tag)
        self.code = os.path.join(self.root, cfg["subdir"])
        self.deviations = []

    def checkout(self):
        if not os.path.isdir(self.root):
            os.makedirs(self.root + ".tmp", exist_ok=True)
            # A snapshot may lack its largest blobs (data files of 4 MiB and
            # more): leave them out of the checkout and say so.
            tree = sh(["git", "--git-dir", self.args.mirror, "ls-tree", "-r", self.commit]).stdout.splitlines()
            blobs = [(line.split()[2], line.split("\t", 1)[1]) for line in tree if line.split()[1] == "blob"]
            have = sh(["git", "--git-dir", self.args.mirror, "cat-file", "--batch-check"],
                      input="\n".join(b for b, _ in blobs) + "\n").stdout.splitlines()
            missing = [path for (_, path), line in zip(blobs, have) if line.endswith(" missing")]
            open(self.root + ".tmp/.corpus-missing-blobs", "w").write("\n".join(missing))
            tar = subprocess.run(["git", "--git-dir", self.args.mirror, "archive", self.commit, "--", ".",
                                  *[f":(exclude){m}" for m in missing]], capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", self.root + ".tmp"], input=tar, check=True)
            os.rename(self.root + ".tmp", self.root)
        listing = os.path.join(self.root, ".corpus-missing-blobs")
        self.missing = [m for m in open(listing).read().split("\n") if m] if os.path.exists(listing) else []
        # Blobs the mirror lacks that the models import: a stub, recorded.
        self.stubbed = []
        for path, text in self.cfg.get("stubs", {}).items():
            if path in self.missing:
                open(os.path.join(self.root, path), "w").write(text)
                self.stubbed.append({"file": path, "stub": text})
        if self.cfg.get("setup"):
            self.cfg["setup"](self.root, self.tag)

    def requirements(self):
        lines = []
        for f in self.cfg["requirements"]:
            if isinstance(f, list):
                # A command run in the checkout whose output is the
                # requirement lines (a tag without a requirements file).
                text = sh(f, cwd=self.root).stdout
                self.deviations.append({"requirement": "(no requirements file)",
                                        "installed": "output of " + " ".join([os.path.basename(f[0]), *f[1:]])})
            else:
                text = open(os.path.join(self.root, f)).read()
            for line in text.splitlines():
                new = line
                for pat, rep in self.cfg["deviations"]:
                    new = re.sub(pat, rep, new)
                if new != line:
                    self.deviations.append({"requirement": line, "installed": new or "(not installed)"})
                if new.strip() and not new.strip().startswith("#"):
                    lines.append(new.strip())
        return lines

    def venv(self):
        reqs = self.requirements()
        # "pip": the pip the project's own install uses, installed first
        # (InvenTree's hashed files need a newer pip than the venv's).
        pip = self.cfg.get("pip")
        h = hashlib.sha256("\n".join(([f"(pip) {pip}"] if pip else []) + reqs).encode()).hexdigest()[:12]
        venv = os.path.join(VENVS, f"{self.args.project}-{h}")
        self.python = os.path.join(venv, "bin", "python")
        self.venv_cmd = (f"{PYTHON} -m venv VENV && " + (f"VENV/bin/pip install {pip} && " if pip else "")
                         + f"VENV/bin/pip install -r REQUIREMENTS (sha256 {h})")
        if not os.path.exists(os.path.join(venv, ".done")):
            if os.path.exists(venv):
                shutil.rmtree(venv)
            sh([PYTHON, "-m", "venv", venv])
            if pip:
                sh([self.python, "-m", "pip", "install", "-q", pip])
            req = os.path.join(venv, "requirements.txt")
            open(req, "w").write("\n".join(reqs) + "\n")
            p = sh([self.python, "-m", "pip", "install", "-q", "-r", req], check=False)
            if p.returncode != 0:
                raise RuntimeError(f"pip install for {self.tag} failed:\n{p.stderr[-3000:]}")
            open(os.path.join(venv, ".done"), "w").write("")
        self.django = sh([self.python, "-c", "import django; print(django.get_version())"]).stdout.strip()

    def env(self, extra=None):
        e = dict(os.environ, DJANGO_SETTINGS_MODULE=self.cfg["settings"], PYTHONPATH=self.code, **self.cfg["env"])
        e.update(extra or {})
        return e

    def graph(self):
        self.graph_cmd = (f"cd {os.path.relpath(self.code, self.root)} && DJANGO_SETTINGS_MODULE={self.cfg['settings']} "
                          + " ".join(f"{k}={v}" for k, v in self.cfg["env"].items())
                          + " VENV/bin/python corpus/truth.py graph" + "".join(f" {a}" for a in self.cfg.get("argv", [])))
        # "argv": words added to the command line (truth.py reads only its
        # first), for settings and apps that look at sys.argv (InvenTree).
        out = sh([self.python, TRUTH, "graph", *self.cfg.get("argv", [])], cwd=self.code, env=self.env()).stdout
        # Settings that print while imported (Tandoor) come before the dump.
        self.loader = json.loads(out[out.index("{\n"):] if not out.startswith("{") else out)
        self.apps = json.loads(sh([self.python, "-c", APPS, self.root, *self.cfg.get("argv", [])], cwd=self.code,
                                  env=self.env()).stdout.strip().splitlines()[-1])

    def prepare(self):
        self.checkout()
        self.venv()
        self.graph()


def tagback_plan(args, newer, older, config=None):
    cmd = [args.tagback, "plan", "--repo", args.mirror, "--from", newer.tag, "--to", older.tag, "--format", "json"]
    if config:
        cmd += ["--config", config]
    p = sh(cmd, check=False)
    if p.returncode not in (0,):
        return {"exit": p.returncode, "stderr": p.stderr.strip()}, cmd
    return json.loads(p.stdout), cmd


def merged(own_truth, pkg_truth):
    """The truth tagback must plan: its own apps and the installed packages'
    (tagback reads a changed package's migrations from its archives)."""
    return {"unapply": sorted(own_truth["unapply"] + pkg_truth["unapply"]),
            "targets": {**own_truth["targets"], **pkg_truth["targets"]}}


def classify(plan, want_truth):
    if "exit" in plan:
        return "blocked" if plan["exit"] in (1, 2) else "error", [f"exit {plan['exit']}: {plan['stderr']}"]
    got_unapply = sorted(map(list, plan["unapply"]))
    got_targets = {s["app"]: s["target"] for s in plan["steps"]}
    diffs = []
    if got_unapply != want_truth["unapply"]:
        want = {tuple(x) for x in want_truth["unapply"]}
        got = {tuple(x) for x in got_unapply}
        diffs.append(f"unapply: missing {sorted(want - got)}, extra {sorted(got - want)}")
    if got_targets != want_truth["targets"]:
        diffs.append(f"targets: got {got_targets}, want {want_truth['targets']}")
    blocked = plan["problems"] or plan["dynamic"]
    if blocked:
        return "blocked", [f"{f['code']}: {f['message']}" for f in plan["problems"] + plan["dynamic"]] + diffs
    if diffs:
        return "WRONG", diffs
    return "exact", []


def restrict(pair, labels):
    return {
        "unapply": [x for x in pair["unapply"] if x[0] in labels],
        "targets": {a: t for a, t in pair["targets"].items() if a in labels},
        "ambiguous": {a: t for a, t in pair["ambiguous"].items() if a in labels},
        "unreachable": [x for x in pair["unreachable"] if x[0] in labels],
        "overreach": [x for x in pair["overreach"] if x[0] in labels],
    }


class PG:
    counter = 0

    def __init__(self, hostport, project):
        PG.counter += 1
        self.host, self.port = hostport.split(":")
        self.name = f"cg_{project}_{os.getpid()}_{PG.counter}"
        for stmt in (f"DROP DATABASE IF EXISTS {self.name}", f"CREATE DATABASE {self.name}"):
            sh(["psql", "-h", self.host, "-p", self.port, "-U", "postgres", "-d", "postgres", "-qc", stmt])

    def manage(self, t, *a, check=True):
        return sh([t.python, "manage.py", *a], cwd=t.code, env=t.env(t.cfg["pg_env"](self.host, self.port, self.name)),
                  check=check)

    def snapshot(self, t):
        out = sh([t.python, "-c", harness.SCHEMA], cwd=t.code,
                 env=t.env(t.cfg["pg_env"](self.host, self.port, self.name))).stdout
        return json.loads(out.strip().splitlines()[-1])


def replay(args, newer, older, plan):
    log = []
    db = PG(args.replay, args.project)
    db.manage(newer, "migrate", "--noinput")
    log.append(f"newer: migrate ({db.name})")
    for c in plan["commands"]:
        words = c.split()
        assert words[:2] == ["python", "manage.py"], c
        db.manage(newer, *words[2:], "--noinput")
        log.append(f"newer: {c}")
    for c in plan["post_commands"]:
        db.manage(older, *c.split()[2:], "--noinput")
        log.append(f"older: {c}")
    chk = db.manage(older, "migrate", "--check", "--noinput", check=False)
    fresh = PG(args.replay, args.project)
    fresh.manage(older, "migrate", "--noinput")
    got, want = db.snapshot(older), fresh.snapshot(older)
    known = set(older.loader["disk"])
    got_rows = {tuple(r) for r in got["rows"]}
    want_rows = {tuple(r) for r in want["rows"]}
    missing = sorted(want_rows - got_rows)
    extra = sorted(r for r in got_rows - want_rows if f"{r[0]}.{r[1]}" in known)
    result = {
        "migrate_check": chk.returncode == 0,
        "migrate_check_output": (chk.stdout + chk.stderr).strip()[-1000:],
        "schema_equal": got["schema"] == want["schema"],
        "schema_diff": harness.schema_diff(got["schema"], want["schema"]),
        "rows_missing": missing,
        "rows_extra_known": extra,
        "rows_left_unknown": len(got_rows - want_rows) - len(extra),
        "steps": log,
    }
    result["ok"] = result["migrate_check"] and result["schema_equal"] and not missing and not extra
    for d in (db, fresh):
        sh(["psql", "-h", d.host, "-p", d.port, "-U", "postgres", "-d", "postgres", "-qc",
            f"DROP DATABASE IF EXISTS {d.name}"], check=False)
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mirror", required=True)
    ap.add_argument("--project", required=True, choices=sorted(PROJECTS))
    ap.add_argument("--older", required=True)
    ap.add_argument("--newer", required=True)
    ap.add_argument("--tagback", default=os.path.join(ROOT, "target", "debug", "tagback"))
    ap.add_argument("--replay", metavar="HOST:PORT")
    ap.add_argument("--out", default=HERE)
    args = ap.parse_args()
    args.mirror = os.path.abspath(args.mirror)
    cfg = PROJECTS[args.project]
    newer, older = Tag(args, cfg, args.newer), Tag(args, cfg, args.older)
    for t in (newer, older):
        t.prepare()
    pair = truth.pair(newer.loader, older.loader)
    own = {a for t in (newer, older) for a, v in t.apps.items() if v["own"]}
    pkg = {a for t in (newer, older) for a in t.apps} - own
    own_truth, pkg_truth = restrict(pair, own), restrict(pair, pkg)
    plan, cmd = tagback_plan(args, newer, older)
    want = merged(own_truth, pkg_truth)
    outcome, why = classify(plan, want)
    zero_config = None
    yml_text = cfg.get("tagback_yml_pairs", {}).get(f"{args.older}..{args.newer}", cfg.get("tagback_yml"))
    if outcome != "exact" and yml_text:
        # Only where tagback's own message asks for it (recorded per project).
        zero_config = {"outcome": outcome, "why": why}
        yml = os.path.join(WORK, args.project, "tagback.yml")
        open(yml, "w").write(yml_text)
        plan, cmd = tagback_plan(args, newer, older, yml)
        outcome, why = classify(plan, want)
    out_file = os.path.join(args.out, args.project, f"{args.older}..{args.newer}.json")
    previous = json.load(open(out_file)) if os.path.exists(out_file) else {}
    result = {
        "project": args.project,
        "repo": cfg["url"],
        "newer": {"tag": newer.tag, "commit": newer.commit, "django": newer.django,
                  "requirements_deviations": newer.deviations,
                  "blobs_missing_from_mirror": newer.missing, "stubbed": newer.stubbed},
        "older": {"tag": older.tag, "commit": older.commit, "django": older.django,
                  "requirements_deviations": older.deviations,
                  "blobs_missing_from_mirror": older.missing, "stubbed": older.stubbed},
        "own_apps": sorted(own),
        "own_app_dirs": {a: v["path"] for t in (older, newer) for a, v in t.apps.items() if v["own"]},
        "truth": {"own": own_truth, "packages": pkg_truth, "per_app_exact": pair["per_app_exact"]},
        "zero_config": zero_config,
        "tagback_yml": yml_text if zero_config else None,
        "tagback": {
            "outcome": outcome,
            "why": why,
            "targets": {s["app"]: s["target"] for s in plan.get("steps", [])},
            "unapply_count": len(plan.get("unapply", [])),
            "commands": plan.get("commands", []),
            "problems": [{k: f.get(k) for k in ("code", "message", "file", "line")} for f in plan.get("problems", [])],
            "dynamic": [{k: f.get(k) for k in ("code", "message", "file", "line")} for f in plan.get("dynamic", [])],
            "irreversible": [[i["app"], i["migration"], i["operation"], i["file"], i["line"]]
                             for i in plan.get("irreversible", [])],
            "notes": [n["message"] for n in plan.get("notes", [])],
        },
        "commands": {
            "checkout": f"git --git-dir MIRROR archive {{commit}} | tar -x -C WORK/{args.project}/TAG",
            "venv": {"newer": newer.venv_cmd, "older": older.venv_cmd, "python": PYTHON},
            "graph": {"newer": newer.graph_cmd, "older": older.graph_cmd},
            "pair": "python corpus/truth.py pair NEWER.json OLDER.json",
            "tagback": " ".join(["tagback", *cmd[1:]]).replace(args.mirror, "MIRROR").replace(WORK, "WORK"),
            "rebuild": f"corpus/git/build.py --mirror MIRROR --project {args.project} --older {args.older} "
                       f"--newer {args.newer}",
        },
        "replay": previous.get("replay"),
    }
    if args.replay and "exit" not in plan:
        result["replay"] = replay(args, newer, older, plan)
        result["replay"]["tagback_commands"] = plan["commands"]
    os.makedirs(os.path.dirname(out_file), exist_ok=True)
    with open(out_file, "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)
        f.write("\n")
    rp = result["replay"]
    print(f"{args.project} {args.older}..{args.newer}: "
          + (f"zero-config {zero_config['outcome']}, with .tagback.yml " if zero_config else "")
          + f"{outcome} own={len(own_truth['unapply'])} "
          f"pkg={len(pkg_truth['unapply'])} tagback={len(plan.get('unapply', []))}"
          + (f" replay={'ok' if rp['ok'] else 'FAIL'}" if rp else "")
          + "".join(f"\n  {w}" for w in why))
    sys.exit(1 if outcome in ("WRONG", "error") or (rp and not rp["ok"]) else 0)


if __name__ == "__main__":
    main()
