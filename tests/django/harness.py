#!/usr/bin/env python3
"""Real Django is the judge of tagback's plans.

For every scenario this builds a Django project revision by revision with real
`makemigrations` / `squashmigrations`, commits each revision to a git
repository, and then for every (newer -> older) pair:

1. migrates a fresh database forward with the newer code;
2. asks `tagback plan --format json` for the backward plan;
3. runs the plan's commands with the newer code and its post-commands with the
   older code;
4. compares the database with a fresh migrate of the older code:
   `migrate --check` with the older code, the `django_migrations` rows, and the
   schema (tables, columns, indexes, unique constraints, foreign keys).

Scenarios that must not be executable (irreversible operations, squashes that
straddle both revisions, ambiguous targets) are checked the other way round:
tagback must report them, and real Django must indeed fail or misbehave.

Usage: harness.py --tagback BIN --python PY [--postgres HOST:PORT] --work DIR [--only NAME...]
Exit status 0 when every check passed.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap
import traceback

ARGS = None
RESULTS = []  # (scenario, db, check, ok, detail)
# The environment of the deployment a case stands for (`expect["env"]`:
# babybuddy's manage.py leaves DJANGO_SETTINGS_MODULE to it): every manage.py
# run of the case gets it.
CASE_ENV = {}


def sh(cmd, cwd=None, env=None, check=True):
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} (in {cwd}) failed with {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


def git(repo, *a):
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@e", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@e", GIT_AUTHOR_DATE="2024-01-01T00:00:00Z",
               GIT_COMMITTER_DATE="2024-01-01T00:00:00Z")
    for k in ("GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE"):
        env.pop(k, None)
    return sh(["git", *a], cwd=repo, env=env)


MANAGE = '''\
#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
'''

SETTINGS = '''\
import os

SECRET_KEY = "tagback-harness"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
BASE_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
]
INSTALLED_APPS = BASE_APPS + {apps!r}
{extra}
if os.environ.get("TAGBACK_DB_ENGINE") == "postgresql":
    DATABASES = {{"default": {{
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["TAGBACK_DB_NAME"],
        "HOST": os.environ["TAGBACK_DB_HOST"],
        "PORT": os.environ["TAGBACK_DB_PORT"],
        "USER": os.environ.get("TAGBACK_DB_USER", "postgres"),
    }}}}
else:
    DATABASES = {{"default": {{
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("TAGBACK_DB_NAME", "/tmp/unused.sqlite3"),
    }}}}
'''

SCHEMA = r'''
import json, os, sys
sys.path.insert(0, os.getcwd())
import django
django.setup()
from django.db import connection
out = {}
with connection.cursor() as c:
    for t in sorted(connection.introspection.table_names(c)):
        cols = []
        for col in connection.introspection.get_table_description(c, t):
            cols.append([col.name, str(col.type_code), bool(col.null_ok)])
        cons = []
        for name, info in connection.introspection.get_constraints(c, t).items():
            cons.append([sorted(info["columns"] or []), bool(info["primary_key"]), bool(info["unique"]),
                         list(info["foreign_key"]) if info["foreign_key"] else None, bool(info["index"]),
                         bool(info.get("check"))])
        out[t] = {"columns": sorted(cols), "constraints": sorted(cons, key=json.dumps)}
    rows = []
    if "django_migrations" in out:
        c.execute("SELECT app, name FROM django_migrations")
        rows = sorted([list(r) for r in c.fetchall()])
print(json.dumps({"schema": out, "rows": rows}))
'''


class Project:
    """A Django project built revision by revision in a git repository."""

    def __init__(self, root):
        self.root = root
        if os.path.exists(root):
            shutil.rmtree(root)
        os.makedirs(root)
        git(root, "init", "-q")
        self.write("manage.py", MANAGE)
        self.write("proj/__init__.py", "")
        self.apps = []
        self.extra = ""

    def write(self, path, text):
        p = os.path.join(self.root, path)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(textwrap.dedent(text))

    def read(self, path):
        with open(os.path.join(self.root, path)) as f:
            return f.read()

    def remove(self, path):
        p = os.path.join(self.root, path)
        shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)

    def settings(self, apps, extra=""):
        self.apps, self.extra = list(apps), extra
        self.write("proj/settings.py", SETTINGS.format(apps=self.apps, extra=extra))

    def app(self, pkg, label=None):
        self.write(f"{pkg}/__init__.py", "")
        self.write(f"{pkg}/migrations/__init__.py", "")
        if label:
            cls = pkg.capitalize() + "Config"
            self.write(f"{pkg}/apps.py", f'from django.apps import AppConfig\n\n\nclass {cls}(AppConfig):\n    name = "{pkg}"\n    label = "{label}"\n')
        if not os.path.exists(os.path.join(self.root, pkg, "models.py")):
            self.write(f"{pkg}/models.py", "from django.db import models\n")

    def models(self, pkg, code):
        self.write(f"{pkg}/models.py", "from django.conf import settings\nfrom django.db import models\n\n" + textwrap.dedent(code))

    def manage(self, *a, env=None, check=True):
        e = dict(os.environ, **CASE_ENV, TAGBACK_DB_NAME=os.path.join(self.root, ".mk.sqlite3"))
        e.pop("TAGBACK_DB_ENGINE", None)
        return sh([ARGS.python, "manage.py", *a], cwd=self.root, env=e, check=check)

    def makemigrations(self, label, name=None, empty=False):
        a = ["makemigrations", label, "--noinput"]
        if name:
            a += ["--name", name]
        if empty:
            a += ["--empty"]
        self.manage(*a)

    def squash(self, label, start, end, name=None):
        a = ["squashmigrations", label, start, end, "--noinput"]
        if name:
            a += ["--squashed-name", name]
        self.manage(*a)

    def commit(self, tag):
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "--allow-empty", "-m", tag)
        git(self.root, "tag", "-f", tag)

    def export(self, tag, dest):
        if os.path.exists(dest):
            shutil.rmtree(dest)
        os.makedirs(dest)
        archive = subprocess.run(["git", "archive", tag], cwd=self.root, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)


class Database:
    """A fresh database (SQLite file or PostgreSQL database)."""

    counter = 0

    def __init__(self, kind, work):
        Database.counter += 1
        self.kind = kind
        if kind == "sqlite":
            self.name = os.path.join(work, f"db{Database.counter}.sqlite3")
            if os.path.exists(self.name):
                os.remove(self.name)
        else:
            self.host, self.port = ARGS.postgres.split(":")
            self.name = f"tb_{os.getpid()}_{Database.counter}"
            for stmt in (f"DROP DATABASE IF EXISTS {self.name}", f"CREATE DATABASE {self.name}"):
                sh(["psql", "-h", self.host, "-p", self.port, "-U", "postgres", "-d", "postgres", "-qc", stmt])

    def env(self):
        e = dict(os.environ, **CASE_ENV, TAGBACK_DB_NAME=self.name)
        if self.kind == "postgresql":
            e.update(TAGBACK_DB_ENGINE="postgresql", TAGBACK_DB_HOST=self.host, TAGBACK_DB_PORT=self.port)
        else:
            e.pop("TAGBACK_DB_ENGINE", None)
        return e

    def url(self):
        if self.kind == "sqlite":
            return f"sqlite://{self.name}"
        return f"postgres://postgres@{self.host}:{self.port}/{self.name}"

    def manage(self, code_dir, *a, check=True):
        return sh([ARGS.python, "manage.py", *a], cwd=code_dir, env=self.env(), check=check)

    def snapshot(self, code_dir):
        env = self.env()
        env.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
        out = sh([ARGS.python, "-c", SCHEMA], cwd=code_dir, env=env).stdout
        return json.loads(out)


def record(scenario, db, check, ok, detail=""):
    RESULTS.append((scenario, db, check, ok, detail))
    mark = "ok  " if ok else "FAIL"
    print(f"  [{mark}] {scenario} [{db}] {check}" + (f": {detail}" if detail and not ok else ""), flush=True)


def tagback_plan(repo, newer, older):
    p = sh([ARGS.tagback, "plan", "--repo", repo, "--from", newer, "--to", older, "--format", "json"], check=False)
    if p.returncode != 0:
        raise RuntimeError(f"tagback plan exited {p.returncode}: {p.stderr.strip()}")
    return json.loads(p.stdout)


def disk_names(code_dir, apps):
    names = set()
    for pkg_label in apps:
        pass
    for dirpath, _, files in os.walk(code_dir):
        if os.path.basename(dirpath) == "migrations":
            for f in files:
                if f.endswith(".py") and not f.startswith("_"):
                    names.add(f[:-3])
    return names


def run_commands(db, code_dir, commands, check=True):
    """Run the plan's commands with the code in code_dir: per-app `migrate`
    commands, and the executor step (`python manage.py shell -c CODE`), which
    runs exactly as printed, through bash, with the venv's python first on
    PATH."""
    outputs = []
    for c in commands:
        words = c.split()
        if words[:3] == ["python", "manage.py", "migrate"]:
            p = db.manage(code_dir, *words[2:], "--noinput", check=check)
        else:
            assert words[:4] == ["python", "manage.py", "shell", "-c"], c
            env = dict(db.env(), PATH=os.path.dirname(ARGS.python) + os.pathsep + os.environ["PATH"])
            p = sh(["bash", "-c", c], cwd=code_dir, env=env, check=check)
        outputs.append(p)
    return outputs


def executor_steps(plan):
    return [s for s in plan["steps"] if s.get("kind") == "executor"]


def verify_pair(sc, proj, newer, older, kinds, expect):
    """Run the plan for newer -> older on every database kind and compare;
    with --export-fixtures, store both revisions and the verified truth."""
    first = len(RESULTS)
    CASE_ENV.clear()
    CASE_ENV.update(expect.get("env", {}))
    _verify_pair(sc, proj, newer, older, kinds, expect)
    if ARGS.export_fixtures:
        export_case(sc, newer, older, expect, all(r[3] for r in RESULTS[first:]))


def export_case(sc, newer, older, expect, django_agrees):
    """Copy the two revisions (as tagback reads them: the committed trees)
    to EXPORT/<scenario>/<tag>/ and add the pair to truth.json. The truth is
    the plan real Django just confirmed: its commands, run on a database the
    newer code migrated, gave exactly a fresh migrate of the older code (or,
    for refused plans, real Django failed where tagback refused)."""
    work = os.path.join(ARGS.work, sc)
    case = os.path.join(ARGS.export_fixtures, sc)
    for tag, code in ((newer, "newer"), (older, "older")):
        dest = os.path.join(case, tag)
        if os.path.exists(dest):
            shutil.rmtree(dest)
        shutil.copytree(os.path.join(work, code), dest,
                        ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3", "*.pyc"))
    plan = tagback_plan(EXPORT_ROOTS[sc], newer, older)
    truth_file = os.path.join(case, "truth.json")
    truth = json.load(open(truth_file)) if os.path.exists(truth_file) else {"scenario": sc, "pairs": []}
    truth["pairs"] = [t for t in truth["pairs"] if (t["newer"], t["older"]) != (newer, older)]
    truth["pairs"].append({
        "newer": newer,
        "older": older,
        "django": ("refuses as tagback says" if expect.get("django_fails") else "verified") if django_agrees else "DISAGREES",
        "targets": {st["app"]: st["target"] for st in plan["steps"] if "app" in st},
        "executor": [st["unapply"] for st in executor_steps(plan)],
        "unreachable": sorted(u["message"].split(" ")[0] for u in plan.get("unreachable", [])),
        "unapply": sorted(plan["unapply"]),
        "problem_codes": sorted({pr["code"] for pr in plan["problems"]}),
        "irreversible": sorted([i["migration"], i["operation"], i["line"]] for i in plan["irreversible"]),
        "old_only_apps": [a["app"] for a in plan["old_only_apps"]],
        "expect": expect,
    })
    truth["pairs"].sort(key=lambda t: (t["newer"], t["older"]))
    with open(truth_file, "w") as f:
        json.dump(truth, f, indent=1, sort_keys=True)
        f.write("\n")


EXPORT_ROOTS = {}


def replay_fixtures(kinds):
    """The committed fixture cases (fixtures/cases/<case>/<tag>/ + truth.json)
    judged by real Django again: each case becomes a git repository, and every
    pair is verified exactly as when it was exported, with the same
    expectations. So one case is both a snapshot (tests/fixtures.rs) and a
    Django-verified truth."""
    root = ARGS.replay_fixtures
    for case in sorted(os.listdir(root)):
        truth_file = os.path.join(root, case, "truth.json")
        if not os.path.isfile(truth_file):
            continue
        print(f"fixture case {case}", flush=True)
        CASE_ENV.clear()
        try:
            truth = json.load(open(truth_file))
            p = Project(os.path.join(ARGS.work, "repos", f"fixture-{case}"))
            for tag in sorted(d for d in os.listdir(os.path.join(root, case)) if os.path.isdir(os.path.join(root, case, d))):
                for e in os.listdir(p.root):
                    if e != ".git":
                        p.remove(e)
                shutil.copytree(os.path.join(root, case, tag), p.root, dirs_exist_ok=True)
                p.commit(tag)
            for t in truth["pairs"]:
                exp = dict(t["expect"])
                exp["targets"] = t["targets"]
                if "irreversible" in exp:
                    exp["irreversible"] = [tuple(i) for i in exp["irreversible"]]
                verify_pair(f"fixture-{case}", p, t["newer"], t["older"], kinds, exp)
                want = sorted(map(list, t["unapply"]))
                got = sorted(map(list, tagback_plan(p.root, t["newer"], t["older"])["unapply"]))
                record(f"fixture-{case}", "static", f"{t['newer']}->{t['older']} unapply equals truth.json", got == want, f"got {got}")
        except Exception as e:  # a crash is a failed check, with its trace
            record(f"fixture-{case}", "-", "case ran", False, "".join(traceback.format_exception(e))[-2000:])


def _verify_pair(sc, proj, newer, older, kinds, expect):
    EXPORT_ROOTS[sc] = proj.root
    work = os.path.join(ARGS.work, sc)
    ncode, ocode = os.path.join(work, "newer"), os.path.join(work, "older")
    proj.export(newer, ncode)
    proj.export(older, ocode)
    plan = tagback_plan(proj.root, newer, older)
    label = f"{newer}->{older}"
    if "targets" in expect:
        got = {s["app"]: s["target"] for s in plan["steps"] if "app" in s}
        record(sc, "static", f"{label} targets", got == expect["targets"], f"got {got}, want {expect['targets']}")
    if "unapply_count" in expect:
        record(sc, "static", f"{label} unapply count", len(plan["unapply"]) == expect["unapply_count"],
               f"got {plan['unapply']}")
    if expect.get("empty"):
        record(sc, "static", f"{label} empty plan", plan["unapply"] == [] and plan["steps"] == [], json.dumps(plan["steps"]))
    if "irreversible" in expect:
        got = sorted((i["migration"], i["operation"], i["line"]) for i in plan["irreversible"])
        record(sc, "static", f"{label} irreversible found with lines", got == sorted(expect["irreversible"]), f"got {got}")
    if "problems" in expect:
        ok = any(expect["problems"] in p["message"] and p["code"] for p in plan["problems"])
        record(sc, "static", f"{label} problem reported", ok, f"got {plan['problems']}")
    if "note_codes" in expect:
        got = sorted({n["code"] for n in plan.get("notes", [])})
        record(sc, "static", f"{label} notes say what was assumed", got == expect["note_codes"], f"got {plan.get('notes')}")
    if "executor" in expect:
        got = [s["unapply"] for s in executor_steps(plan)]
        record(sc, "static", f"{label} executor step unapplies exactly, children first", got == expect["executor"],
               f"got {got}, want {expect['executor']}")
    if "unreachable" in expect:
        got = sorted(u["message"].split(" ")[0] for u in plan.get("unreachable", []))
        ok = got == sorted(expect["unreachable"]) and all(u["code"] == "unreachable-by-migrate" and u.get("file")
                                                          for u in plan["unreachable"])
        record(sc, "static", f"{label} every migration no per-app target reaches is listed with its file", ok,
               f"got {plan.get('unreachable')}")
    if "old_only" in expect:
        got = [a["app"] for a in plan["old_only_apps"]]
        record(sc, "static", f"{label} old-only apps", got == expect["old_only"], f"got {got}")
    if "data_loss" in expect:
        got = sorted(d["what"] for d in plan["data_loss"])
        ok = all(any(w in g for g in got) for w in expect["data_loss"])
        record(sc, "static", f"{label} data loss", ok, f"got {got}")

    for kind in kinds:
        db = Database(kind, work)
        db.manage(ncode, "migrate", "--noinput")
        before = db.manage(ncode, "showmigrations", "--list").stdout
        if expect.get("script"):
            # The rollback script runs the plan; then the same comparisons.
            verify_script(sc, kind, db, proj, newer, older, ncode, label)
            chk = db.manage(ocode, "migrate", "--check", "--noinput", check=False)
            record(sc, kind, f"{label} after the script: migrate --check with older code", chk.returncode == 0, chk.stdout + chk.stderr)
            fresh = Database(kind, work)
            fresh.manage(ocode, "migrate", "--noinput")
            got, want = db.snapshot(ocode), fresh.snapshot(ocode)
            record(sc, kind, f"{label} after the script: schema equals a fresh migrate of {older}", got["schema"] == want["schema"],
                   schema_diff(got["schema"], want["schema"]))
            db = Database(kind, work)
            db.manage(ncode, "migrate", "--noinput")
        if expect.get("django_fails"):
            # tagback said it cannot be done: show that real Django fails or misbehaves.
            outs = run_commands(db, ncode, plan["commands"] or expect.get("naive", []), check=False)
            failed = any(o.returncode != 0 and expect["django_fails"] in (o.stderr + o.stdout) for o in outs)
            record(sc, kind, f"{label} real Django fails ({expect['django_fails']})", failed,
                   "; ".join((o.stderr or o.stdout).strip()[-300:] for o in outs))
            continue
        if expect.get("naive_noop"):
            rows_before = db.snapshot(ncode)["rows"]
            run_commands(db, ncode, expect["naive_noop"])
            rows_after = db.snapshot(ncode)["rows"]
            record(sc, kind, f"{label} naive target is a silent no-op in Django", rows_before == rows_after,
                   "naive command changed the database")
        run_commands(db, ncode, plan["commands"])
        if expect.get("empty"):
            # Nothing to unapply: deploying the other revision just migrates forward.
            db.manage(ocode, "migrate", "--noinput")
        for c in plan["post_commands"]:
            db.manage(ocode, *c.split()[2:], "--noinput")
        chk = db.manage(ocode, "migrate", "--check", "--noinput", check=False)
        record(sc, kind, f"{label} migrate --check with older code", chk.returncode == 0, chk.stdout + chk.stderr)
        fresh = Database(kind, work)
        fresh.manage(ocode, "migrate", "--noinput")
        got, want = db.snapshot(ocode), fresh.snapshot(ocode)
        record(sc, kind, f"{label} schema equals a fresh migrate of {older}", got["schema"] == want["schema"],
               schema_diff(got["schema"], want["schema"]))
        old_names = disk_names(ocode, [])
        got_rows = {tuple(r) for r in got["rows"]}
        want_rows = {tuple(r) for r in want["rows"]}
        missing = want_rows - got_rows
        extra = {r for r in got_rows - want_rows if r[1] in old_names}
        record(sc, kind, f"{label} django_migrations rows match", not missing and not extra,
               f"missing {sorted(missing)}, extra {sorted(extra)}")
        if executor_steps(plan):
            verify_executor_refusals(sc, kind, db, ncode, plan, label)
        if expect.get("record"):
            verify_record(sc, kind, db, proj, newer, older, plan, before)


# A stand-in for the docker CLI, enough for a rollback script of the exec
# strategy on one Swarm service: `docker exec TASK CMD...` runs CMD in the
# newer code's directory (real manage.py, real database); the service's
# image and replica count live in files of $FAKE_DOCKER_STATE.
FAKE_DOCKER = r'''#!/usr/bin/env bash
set -euo pipefail
st=$FAKE_DOCKER_STATE
printf '%s\n' "$*" >>"$st/calls"
case "$1 ${2:-}" in
  "info "*) exit 0 ;;
  "service inspect")
    shift 2
    if [[ "${1:-}" == --format ]]; then
      case "$2" in
        *'.ID'*) echo svc1 ;;
        *ContainerSpec.Image*) cat "$st/image" ;;
        *Replicas*) cat "$st/replicas" ;;
        *) echo ;;
      esac
    fi ;;
  "service ls") exit 0 ;;
  "service ps") exit 0 ;;
  "service scale") shift 2; [[ "$1" == --detach=false ]] && shift; echo "${1#*=}" >"$st/replicas" ;;
  "service update") echo "$5" >"$st/image" ;;
  "ps -q") [[ "$(cat "$st/replicas")" != 0 ]] && echo task1 || true ;;
  "inspect --format") cat "$st/image" ;;
  "exec task1") shift 2; cd "$FAKE_DOCKER_CODE" && exec "$@" ;;
  *) echo "fake docker: unexpected: $*" >&2; exit 3 ;;
esac
'''


def verify_script(sc, kind, db, proj, newer, older, ncode, label):
    """The rendered rollback script (exec strategy), run for real against a
    stand-in docker whose `exec` runs the newer code on the real database:
    DRY_RUN=1 changes nothing and shows the executor step; the real run
    unapplies exactly the plan with the executor step, verifies with
    showmigrations, scales down, retags and scales up."""
    work = os.path.join(ARGS.work, sc, f"script-{kind}")
    if os.path.exists(work):
        shutil.rmtree(work)
    os.makedirs(os.path.join(work, "bin"))
    with open(os.path.join(work, "bin", "docker"), "w") as f:
        f.write(FAKE_DOCKER)
    os.chmod(os.path.join(work, "bin", "docker"), 0o755)
    for name, value in (("image", f"shop:{newer}"), ("replicas", "2")):
        with open(os.path.join(work, name), "w") as f:
            f.write(value + "\n")
    out = os.path.join(work, "rollback.sh")
    r = sh([ARGS.tagback, "script", "--repo", proj.root, "--from", newer, "--to", older, "--service", "web",
            "--image", f"shop:{older}", "--current-image", f"shop:{newer}", "--stack-name", "", "-o", out], check=False)
    record(sc, kind, f"{label} script written", r.returncode == 0 and os.path.exists(out), r.stdout + r.stderr)
    if r.returncode != 0:
        return
    env = dict(db.env(), FAKE_DOCKER_STATE=work, FAKE_DOCKER_CODE=ncode, TAGBACK_STATE_DIR=os.path.join(work, "state"),
               TAGBACK_EVIDENCE_FILE=os.path.join(work, "evidence.txt"),
               PATH=os.path.join(work, "bin") + os.pathsep + os.path.dirname(ARGS.python) + os.pathsep + os.environ["PATH"])
    rows = db.snapshot(ncode)["rows"]
    dry = sh(["bash", out], cwd=work, env=dict(env, DRY_RUN="1"), check=False)
    record(sc, kind, f"{label} script DRY_RUN=1 shows the executor step and changes nothing",
           dry.returncode == 0 and "shell -c" in dry.stderr and db.snapshot(ncode)["rows"] == rows
           and open(os.path.join(work, "image")).read().strip() == f"shop:{newer}", (dry.stdout + dry.stderr)[-600:])
    run = sh(["bash", out], cwd=work, env=env, check=False)
    image = open(os.path.join(work, "image")).read().strip()
    record(sc, kind, f"{label} script runs the executor step, verifies, retags",
           run.returncode == 0 and "Unapplying" in run.stdout + run.stderr and image == f"shop:{older}"
           and os.path.exists(os.path.join(work, "evidence.txt")), (run.stdout + run.stderr)[-800:])


def verify_executor_refusals(sc, kind, db, ncode, plan, label):
    """The executor step after it ran: a second run changes nothing and says
    so; on a database migrated forward again, an order that unapplies a
    parent before its child is refused before anything changes."""
    cmd = next(c for c in plan["commands"] if " shell -c " in c)
    rows = db.snapshot(ncode)["rows"]
    again = run_commands(db, ncode, [cmd], check=False)[0]
    record(sc, kind, f"{label} executor step re-run is a verified no-op", again.returncode == 0
           and "already unapplied" in again.stdout and db.snapshot(ncode)["rows"] == rows, again.stdout + again.stderr)
    step = executor_steps(plan)[0]
    if len(step["unapply"]) < 2:
        return
    other = Database(kind, os.path.dirname(ncode))
    other.manage(ncode, "migrate", "--noinput")
    before = other.snapshot(ncode)
    first, last = step["unapply"][0].split("."), step["unapply"][-1].split(".")
    a, b = f'("{first[0]}", "{first[1]}")', f'("{last[0]}", "{last[1]}")'
    swapped = cmd.replace(a, "@@").replace(b, a).replace("@@", b)
    out = run_commands(other, ncode, [swapped], check=False)[0]
    record(sc, kind, f"{label} executor step refuses an invalid order and changes nothing",
           out.returncode != 0 and "not valid" in out.stderr and other.snapshot(ncode) == before,
           (out.stdout + out.stderr)[-400:])


def verify_record(sc, kind, db, proj, newer, older, plan, before):
    """The record/gate story with real evidence: a deploy repository whose
    stack file moves `web` from the newer to the older image; the gate blocks;
    evidence taken before the rollback is refused; real `showmigrations`
    output (--list and --plan forms) and the database itself are accepted;
    the gate then passes; a plan change after recording blocks it again."""
    ncode = os.path.join(ARGS.work, sc, "newer")
    work = os.path.join(ARGS.work, sc, f"deploy-{kind}")
    if os.path.exists(work):
        shutil.rmtree(work)
    os.makedirs(work)
    git(work, "init", "-q")
    with open(os.path.join(work, ".tagback.yml"), "w") as f:
        f.write(f"services:\n  web:\n    repo: {proj.root}\n")
    def stack(tag):
        with open(os.path.join(work, "stack.yml"), "w") as f:
            f.write(f"services:\n  web:\n    image: shop:{tag}\n")
        git(work, "add", "-A")
        git(work, "commit", "-qm", f"deploy {tag}")
    stack(newer)
    stack(older)
    tb = lambda *a: sh([ARGS.tagback, *a], cwd=work, check=False)
    g = tb("gate", "--from", "HEAD~1", "--to", "HEAD")
    record(sc, kind, "gate blocks the unrecorded downgrade (exit 1)", g.returncode == 1, g.stdout + g.stderr)
    apps = sorted({a for a, _ in plan["unapply"]})
    ev = lambda name, text: (open(os.path.join(work, name), "w").write(text), name)[1]
    r = tb("record", "--from", "HEAD~1", "--to", "HEAD", "--service", "web", "--evidence", ev("before.txt", before))
    record(sc, kind, "evidence from before the rollback is refused", r.returncode == 1 and "still applied" in r.stdout, r.stdout + r.stderr)
    partial = db.manage(ncode, "showmigrations", "--list", apps[0]).stdout
    if len(apps) > 1:
        r = tb("record", "--from", "HEAD~1", "--to", "HEAD", "--service", "web", "--evidence", ev("partial.txt", partial))
        record(sc, kind, "evidence of another app set is refused", r.returncode == 1 and "missing from the evidence" in r.stdout, r.stdout + r.stderr)
    r = tb("record", "--from", "HEAD~1", "--to", "HEAD", "--service", "other", "--evidence", "before.txt")
    record(sc, kind, "evidence for another service is refused", r.returncode != 0, r.stdout + r.stderr)
    listing = db.manage(ncode, "showmigrations", "--list", *apps).stdout
    planned = db.manage(ncode, "showmigrations", "--plan").stdout
    for form, text in (("list", listing), ("plan", planned)):
        r = tb("record", "--from", "HEAD~1", "--to", "HEAD", "--service", "web", "--evidence", ev(f"after-{form}.txt", text))
        record(sc, kind, f"real showmigrations --{form} evidence is accepted", r.returncode == 0, r.stdout + r.stderr)
    r = tb("record", "--from", "HEAD~1", "--to", "HEAD", "--service", "web", "--database-url", db.url())
    record(sc, kind, "django_migrations read through --database-url is accepted", r.returncode == 0, r.stdout + r.stderr)
    for name in ("before.txt", "partial.txt", "after-list.txt", "after-plan.txt"):
        if os.path.exists(os.path.join(work, name)):
            os.remove(os.path.join(work, name))
    git(work, "add", "-A")
    git(work, "commit", "-qm", "record")
    g = tb("gate", "--from", "HEAD~2", "--to", "HEAD")
    record(sc, kind, "gate passes once recorded", g.returncode == 0, g.stdout + g.stderr)
    # A migration added to the newer revision after recording: the plan changes.
    head = git(proj.root, "rev-parse", newer).stdout.strip()
    current = git(proj.root, "rev-parse", "HEAD").stdout.strip()
    app = plan["unapply"][0][0]
    mdir = next(os.path.dirname(os.path.join(proj.root, f)) for f in git(proj.root, "ls-files").stdout.split()
                if "/migrations/" in f and f.split("/")[0] in (app, "accounts") and app in f or ("/migrations/" in f and plan["unapply"][0][1] in f))
    git(proj.root, "checkout", "-q", newer)
    with open(os.path.join(mdir, "9999_late.py"), "w") as f:
        f.write(f"from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n    dependencies = [({plan['unapply'][0][0]!r}, {plan['unapply'][0][1]!r})]\n    operations = []\n")
    git(proj.root, "add", "-A")
    git(proj.root, "commit", "-qm", "late migration")
    git(proj.root, "tag", "-f", newer)
    g = tb("gate", "--from", "HEAD~2", "--to", "HEAD")
    record(sc, kind, "a plan change after recording blocks the gate again", g.returncode == 1 and "the plan is now" in g.stdout, g.stdout + g.stderr)
    git(proj.root, "tag", "-f", newer, head)
    git(proj.root, "checkout", "-q", current)


def schema_diff(a, b):
    lines = []
    for t in sorted(set(a) | set(b)):
        if a.get(t) != b.get(t):
            lines.append(f"{t}: downgraded={json.dumps(a.get(t))[:300]} fresh={json.dumps(b.get(t))[:300]}")
    return "\n".join(lines[:5])


# ---------------------------------------------------------------- scenarios

def sc_multi_app(kinds):
    """Several apps, custom label, swapped AUTH_USER_MODEL, cross-app dependency
    added in the newer revision, RunPython with reverse, RunSQL with reverse."""
    p = Project(os.path.join(ARGS.work, "repos", "multi_app"))
    p.app("accounts", label="members")
    p.app("shop")
    p.app("blog")
    p.settings(["accounts.apps.AccountsConfig", "shop", "blog"], extra='AUTH_USER_MODEL = "members.User"')
    p.models("accounts", '''
        from django.contrib.auth.models import AbstractUser


        class User(AbstractUser):
            nickname = models.CharField(max_length=40, default="")
    ''')
    p.models("shop", '''
        class Product(models.Model):
            name = models.CharField(max_length=100)


        class Order(models.Model):
            product = models.ForeignKey(Product, on_delete=models.CASCADE)
            buyer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    ''')
    p.models("blog", '''
        class Post(models.Model):
            title = models.CharField(max_length=100)
    ''')
    for a in ("members", "shop", "blog"):
        p.makemigrations(a)
    p.commit("v1")
    p.commit("v1.0.1")  # same code under another tag
    p.models("accounts", '''
        from django.contrib.auth.models import AbstractUser


        class Badge(models.Model):
            title = models.CharField(max_length=40)


        class User(AbstractUser):
            nickname = models.CharField(max_length=40, default="")
            badge = models.ForeignKey(Badge, null=True, on_delete=models.SET_NULL)
    ''')
    p.makemigrations("members", name="badge")
    p.makemigrations("members", name="lower_nicknames", empty=True)
    mig = "accounts/migrations/0003_lower_nicknames.py"
    p.write(mig, p.read(mig).replace("operations = [\n    ]", textwrap.dedent('''\
        operations = [
                migrations.RunPython(lambda apps, se: None, reverse_code=migrations.RunPython.noop),
                migrations.RunSQL("UPDATE members_user SET nickname = LOWER(nickname)", reverse_sql=migrations.RunSQL.noop),
            ]''')))
    p.models("shop", '''
        class Product(models.Model):
            name = models.CharField(max_length=100)
            sku = models.CharField(max_length=20, default="")


        class Coupon(models.Model):
            code = models.CharField(max_length=20, unique=True)


        class Order(models.Model):
            product = models.ForeignKey(Product, on_delete=models.CASCADE)
            buyer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
            coupon = models.ForeignKey(Coupon, null=True, on_delete=models.SET_NULL)

            class Meta:
                indexes = [models.Index(fields=["product", "buyer"], name="order_prod_buyer")]
    ''')
    p.makemigrations("shop", name="coupons")
    p.models("blog", '''
        class Post(models.Model):
            title = models.CharField(max_length=100)
            promo = models.ForeignKey("shop.Coupon", null=True, on_delete=models.SET_NULL)
    ''')
    p.makemigrations("blog", name="post_promo")
    p.commit("v2")
    verify_pair("multi_app", p, "v2", "v1", kinds, {
        "targets": {"members": "0001_initial", "shop": "0001_initial", "blog": "0001_initial"},
        "unapply_count": 4, "data_loss": ["members_badge", "shop_coupon", "blog_post.promo_id"], "record": True})
    verify_pair("multi_app", p, "v1", "v2", kinds[:1], {"empty": True})
    verify_pair("multi_app", p, "v1.0.1", "v1", kinds[:1], {"empty": True})
    verify_pair("multi_app", p, "v2", "v2", kinds[:1], {"empty": True})


def sc_squash_old_leaf(kinds):
    """The older leaf is replaced by a squash in the newer revision: the target
    must be the squash (migrate APP OLD_LEAF is a silent no-op)."""
    p = Project(os.path.join(ARGS.work, "repos", "squash_old_leaf"))
    p.app("shop")
    p.settings(["shop"])
    fields = []
    for i, f in enumerate(["name", "sku", "color"], 1):
        fields.append(f)
        p.models("shop", "class Product(models.Model):\n" + "".join(f"    {x} = models.CharField(max_length=20, default='')\n" for x in fields))
        p.makemigrations("shop", name=f"add_{f}" if i > 1 else None)
    p.commit("v1")
    p.squash("shop", "0001", "0003")
    fields.append("size")
    p.models("shop", "class Product(models.Model):\n" + "".join(f"    {x} = models.CharField(max_length=20, default='')\n" for x in fields))
    p.makemigrations("shop", name="add_size")
    p.commit("v2")
    squash = [f[:-3] for f in os.listdir(os.path.join(p.root, "shop/migrations")) if "squashed" in f][0]
    verify_pair("squash_old_leaf", p, "v2", "v1", kinds, {
        "targets": {"shop": squash}, "unapply_count": 1,
        "naive_noop": ["python manage.py migrate shop 0003_add_color"], "record": True})


def sc_squash_replaced_deleted(kinds):
    """A squash whose replaced files were deleted while a later migration
    still depends on one of them by its old name: Django's loader points that
    dependency at the squash (no NodeNotFoundError), and the plan works."""
    p = Project(os.path.join(ARGS.work, "repos", "squash_replaced_deleted"))
    p.app("shop")
    p.settings(["shop"])
    fields = []
    for i, f in enumerate(["name", "sku", "color", "size"], 1):
        fields.append(f)
        p.models("shop", "class Product(models.Model):\n" + "".join(f"    {x} = models.CharField(max_length=20, default='')\n" for x in fields))
        p.makemigrations("shop", name=f"add_{f}" if i > 1 else None)
    p.commit("v1")
    p.squash("shop", "0001", "0003")
    for old in ("0001_initial", "0002_add_sku", "0003_add_color"):
        p.remove(f"shop/migrations/{old}.py")
    fields.append("weight")
    p.models("shop", "class Product(models.Model):\n" + "".join(f"    {x} = models.CharField(max_length=20, default='')\n" for x in fields))
    p.makemigrations("shop", name="add_weight")
    p.commit("v2")
    verify_pair("squash_replaced_deleted", p, "v2", "v1", kinds, {
        "targets": {"shop": "0004_add_size"}, "unapply_count": 1})


def sc_squash_straddles(kinds):
    """A squash replacing migrations the older revision has and newer ones:
    no target can reach the older state."""
    p = Project(os.path.join(ARGS.work, "repos", "squash_straddles"))
    p.app("shop")
    p.settings(["shop"])
    fields = []
    for f in ["name", "sku"]:
        fields.append(f)
        p.models("shop", "class Product(models.Model):\n" + "".join(f"    {x} = models.CharField(max_length=20, default='')\n" for x in fields))
        p.makemigrations("shop", name=None if f == "name" else "add_sku")
    p.commit("v1")
    fields.append("color")
    p.models("shop", "class Product(models.Model):\n" + "".join(f"    {x} = models.CharField(max_length=20, default='')\n" for x in fields))
    p.makemigrations("shop", name="add_color")
    p.squash("shop", "0001", "0003")
    for f in os.listdir(os.path.join(p.root, "shop/migrations")):
        if f[:4] in ("0001", "0002", "0003") and "squashed" not in f:
            p.remove(f"shop/migrations/{f}")
    p.commit("v2")
    verify_pair("squash_straddles", p, "v2", "v1", kinds[:1], {"problems": "cannot", "django_fails": "Cannot find a migration matching",
                                                                "naive": ["python manage.py migrate shop 0002_add_sku"]})


def sc_merge(kinds):
    """A merge migration joins two leaves in the newer revision; a revision with
    two unmerged leaves is refused like Django refuses it."""
    p = Project(os.path.join(ARGS.work, "repos", "merge"))
    p.app("shop")
    p.settings(["shop"])
    p.models("shop", "class Product(models.Model):\n    name = models.CharField(max_length=20)\n")
    p.makemigrations("shop")
    p.commit("v1")
    p.models("shop", "class Product(models.Model):\n    name = models.CharField(max_length=20)\n    a = models.IntegerField(default=0)\n")
    p.makemigrations("shop", name="add_a")
    p.models("shop", "class Product(models.Model):\n    name = models.CharField(max_length=20)\n    a = models.IntegerField(default=0)\n    b = models.IntegerField(default=0)\n")
    p.makemigrations("shop", name="add_b")
    # Make 0003_add_b a sibling of 0002_add_a, as if from another branch.
    b = "shop/migrations/0003_add_b.py"
    p.write(b, p.read(b).replace("('shop', '0002_add_a')", "('shop', '0001_initial')"))
    p.commit("conflict")
    p.manage("makemigrations", "shop", "--merge", "--noinput")
    p.commit("v2")
    verify_pair("merge", p, "v2", "v1", kinds, {"targets": {"shop": "0001_initial"}, "unapply_count": 3, "record": True})
    r = sh([ARGS.tagback, "plan", "--repo", p.root, "--from", "conflict", "--to", "v1"], check=False)
    record("merge", "static", "unmerged leaves refused with exit 2", r.returncode == 2 and "unmerged" in r.stderr, r.stderr)
    code = os.path.join(ARGS.work, "merge", "conflict")
    p.export("conflict", code)
    db = Database("sqlite", os.path.join(ARGS.work, "merge"))
    d = db.manage(code, "migrate", "--noinput", check=False)
    record("merge", "sqlite", "real Django refuses the unmerged revision too", d.returncode != 0 and "Conflicting migrations" in d.stderr, d.stderr[-200:])


SETTINGS_PATTERNS = '''
DEBUG = False
CORE_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
]
CORE_APPS.append("shop.apps.ShopConfig")
CORE_APPS += ["blog"]
if DEBUG:
    CORE_APPS.append("debugonly")
EXTRA_APPS = [a for a in os.environ.get("TAGBACK_EXTRA_APPS", "").split(",") if a]
INSTALLED_APPS = CORE_APPS + ["debug_toolbar", "devtools", *EXTRA_APPS]
if not DEBUG:
    INSTALLED_APPS.remove("debug_toolbar")
    INSTALLED_APPS.remove("devtools")
for plugin in os.environ.get("TAGBACK_PLUGINS", "").split(","):
    if plugin:
        INSTALLED_APPS.append(plugin)
'''


def sc_settings_patterns(kinds):
    """Settings as real projects write them: a helper list mutated with
    append/+= before it flows into INSTALLED_APPS (its apps must be planned),
    an app removed under a condition that is not in the repository, apps from
    an environment variable spliced with `*` and appended in a loop (assumed
    to come from outside the repository, said in one line). The conditions
    on `DEBUG = False` are decided: `debugonly` and `devtools`, whose
    migrations are in the repository, are not installed (real Django agrees:
    their tables never appear), instead of a refusal."""
    p = Project(os.path.join(ARGS.work, "repos", "settings_patterns"))
    p.app("shop", label="shop")
    p.app("blog")
    for pkg in ("debugonly", "devtools"):
        # Not installed (DEBUG is False), so makemigrations cannot write it.
        p.app(pkg)
        p.write(f"{pkg}/migrations/0001_initial.py", "from django.db import migrations, models\n\n\n"
                "class Migration(migrations.Migration):\n    initial = True\n    dependencies = []\n    operations = [\n"
                "        migrations.CreateModel(name='Probe', fields=[('id', models.AutoField(primary_key=True))]),\n    ]\n")
    p.settings([])
    p.write("proj/settings.py", p.read("proj/settings.py").replace("INSTALLED_APPS = BASE_APPS + []\n", SETTINGS_PATTERNS))
    p.models("shop", "class Product(models.Model):\n    name = models.CharField(max_length=20)\n")
    p.models("blog", "class Post(models.Model):\n    title = models.CharField(max_length=20)\n")
    p.makemigrations("shop")
    p.makemigrations("blog")
    p.commit("v1")
    p.models("shop", "class Product(models.Model):\n    name = models.CharField(max_length=20)\n    sku = models.CharField(max_length=20, default='')\n")
    p.models("blog", "class Post(models.Model):\n    title = models.CharField(max_length=20)\n    body = models.TextField(default='')\n")
    p.makemigrations("shop", name="sku")
    p.makemigrations("blog", name="body")
    p.commit("v2")
    verify_pair("settings_patterns", p, "v2", "v1", kinds, {
        "targets": {"shop": "0001_initial", "blog": "0001_initial"}, "unapply_count": 2,
        "note_codes": ["assumed-external-apps"]})


def sc_split_settings(kinds):
    """django-split-settings: the settings package include()s its components
    (a glob among them) and an optional local file that is absent; one
    component sets MIGRATION_MODULES, so shop's migrations live in
    shop/db_migrations (shop/migrations stays empty and must not be read)."""
    p = Project(os.path.join(ARGS.work, "repos", "split_settings"))
    p.app("shop")
    p.app("blog")
    p.settings([])
    base = p.read("proj/settings.py").replace("INSTALLED_APPS = BASE_APPS + []\n", "INSTALLED_APPS = BASE_APPS + []\n")
    p.remove("proj/settings.py")
    p.write("proj/settings/__init__.py", 'from split_settings.tools import include, optional\n\ninclude("components/base.py")\nINSTALLED_APPS = BASE_APPS + ["shop"]\ninclude(\n    "components/apps_*.py",\n    optional("local.py"),\n)\n')
    p.write("proj/settings/components/base.py", base)
    p.write("proj/settings/components/apps_a.py", 'MIGRATION_MODULES = {"shop": "shop.db_migrations"}\n')
    p.write("proj/settings/components/apps_b.py", 'INSTALLED_APPS += ["blog"]\n')
    p.models("shop", "class Product(models.Model):\n    name = models.CharField(max_length=20)\n")
    p.models("blog", "class Post(models.Model):\n    title = models.CharField(max_length=20)\n")
    p.makemigrations("shop")
    p.makemigrations("blog")
    p.commit("v1")
    for i, f in enumerate(["sku", "size", "colour"]):
        p.models("shop", "class Product(models.Model):\n    name = models.CharField(max_length=20)\n" + "".join(
            f"    {x} = models.CharField(max_length=20, default='')\n" for x in ["sku", "size", "colour"][:i + 1]))
        p.makemigrations("shop", name=f)
    p.models("blog", "class Post(models.Model):\n    title = models.CharField(max_length=20)\n    body = models.TextField(default='')\n")
    p.makemigrations("blog", name="body")
    p.commit("v2")
    verify_pair("split_settings", p, "v2", "v1", kinds, {"targets": {"shop": "0001_initial", "blog": "0001_initial"}, "unapply_count": 4})


def sc_settings_package_beside_module(kinds):
    """A settings package beside a stale settings module of the same name
    (proj/settings/__init__.py and proj/settings.py, as a project that split
    its settings and kept the old file has them): Python imports the package,
    so its INSTALLED_APPS decide, and blog is installed only there."""
    p = Project(os.path.join(ARGS.work, "repos", "settings_package_beside_module"))
    p.app("shop")
    p.app("blog")
    p.settings(["shop", "blog"])
    full = p.read("proj/settings.py")
    p.remove("proj/settings.py")
    p.write("proj/settings/__init__.py", full)
    p.write("proj/settings.py", "# Replaced by the settings package; Python imports the package.\n"
            + full.replace("INSTALLED_APPS = BASE_APPS + ['shop', 'blog']", "INSTALLED_APPS = BASE_APPS + ['shop']"))
    assert "['shop']" in p.read("proj/settings.py")
    p.models("shop", "class Product(models.Model):\n    name = models.CharField(max_length=20)\n")
    p.models("blog", "class Post(models.Model):\n    title = models.CharField(max_length=20)\n")
    p.makemigrations("shop")
    p.makemigrations("blog")
    p.commit("v1")
    p.models("blog", "class Post(models.Model):\n    title = models.CharField(max_length=20)\n    body = models.TextField(default='')\n")
    p.makemigrations("blog", name="body")
    p.commit("v2")
    verify_pair("settings_package_beside_module", p, "v2", "v1", kinds,
                {"targets": {"blog": "0001_initial"}, "unapply_count": 1})


def sc_irreversible(kinds):
    """RunPython without reverse_code and RunSQL without reverse_sql: tagback
    names file and line before anything runs; real Django raises IrreversibleError."""
    p = Project(os.path.join(ARGS.work, "repos", "irreversible"))
    p.app("shop")
    p.settings(["shop"])
    p.models("shop", "class Product(models.Model):\n    name = models.CharField(max_length=20)\n")
    p.makemigrations("shop")
    p.commit("v1")
    p.makemigrations("shop", name="backfill", empty=True)
    mig = "shop/migrations/0002_backfill.py"
    text = p.read(mig).replace("from django.db import migrations\n", "from django.db import migrations\n\n\ndef forwards(apps, schema_editor):\n    pass\n")
    text = text.replace("operations = [\n    ]", "operations = [\n        migrations.RunPython(forwards),\n        migrations.RunSQL(\"SELECT 1\"),\n    ]")
    p.write(mig, text)
    p.commit("v2")
    lines = p.read(mig).splitlines()
    rp = next(i for i, l in enumerate(lines, 1) if "RunPython(" in l)
    rs = next(i for i, l in enumerate(lines, 1) if "RunSQL(" in l)
    verify_pair("irreversible", p, "v2", "v1", kinds, {
        "irreversible": [("0002_backfill", "RunPython", rp), ("0002_backfill", "RunSQL", rs)],
        "django_fails": "IrreversibleError"})


def sc_app_added_and_removed(kinds):
    """An app only the newer revision has (target zero) and an app the newer
    revision removed from INSTALLED_APPS (migrated forward with the older code)."""
    p = Project(os.path.join(ARGS.work, "repos", "apps_added_removed"))
    p.app("shop")
    p.app("legacy")
    p.settings(["shop", "legacy"])
    p.models("shop", "class Product(models.Model):\n    name = models.CharField(max_length=20)\n")
    p.models("legacy", "class Thing(models.Model):\n    name = models.CharField(max_length=20)\n")
    p.makemigrations("shop")
    p.makemigrations("legacy")
    p.commit("v1")
    p.app("promo")
    p.models("promo", "class Campaign(models.Model):\n    product = models.ForeignKey('shop.Product', on_delete=models.CASCADE)\n")
    p.settings(["shop", "promo"])
    p.makemigrations("promo")
    p.remove("legacy")
    p.commit("v2")
    verify_pair("apps_added_removed", p, "v2", "v1", kinds, {
        "targets": {"promo": "zero"}, "old_only": ["legacy"], "data_loss": ["promo_campaign"]})


def sc_ambiguous(kinds):
    """The older leaf's name is a prefix of a newer migration's name: Django
    rejects `migrate APP OLD_LEAF` as ambiguous; tagback must say so."""
    p = Project(os.path.join(ARGS.work, "repos", "ambiguous"))
    p.app("shop")
    p.settings(["shop"])
    p.models("shop", "class Product(models.Model):\n    name = models.CharField(max_length=20)\n")
    p.makemigrations("shop")
    p.models("shop", "class Product(models.Model):\n    name = models.CharField(max_length=20)\n    sku = models.CharField(max_length=20, default='')\n")
    p.makemigrations("shop", name="sku")
    p.commit("v1")
    p.makemigrations("shop", name="sku_backfill", empty=True)
    os.rename(os.path.join(p.root, "shop/migrations/0003_sku_backfill.py"), os.path.join(p.root, "shop/migrations/0002_sku_backfill.py"))
    p.commit("v2")
    verify_pair("ambiguous", p, "v2", "v1", kinds[:1], {"problems": "ambiguous", "django_fails": "More than one migration matches",
                                                        "naive": ["python manage.py migrate shop 0002_sku"]})


def sc_nested_squash(kinds):
    """A squash of a squash (squashmigrations allows it from Django 6.0): the
    target is the outer squash. Django 4.2/5.2 cannot load nested squashes
    reliably (measured: a hand-written one breaks `migrate` with KeyError), so
    this runs only where the venv has Django >= 6.0 (Python >= 3.12)."""
    version = sh([ARGS.python, "-c", "import django; print(django.VERSION[0]*100+django.VERSION[1])"]).stdout.strip()
    if int(version) < 600:
        print("  [skip] nested_squash needs Django >= 6.0 (squashmigrations refuses squashed migrations before)")
        return
    p = Project(os.path.join(ARGS.work, "repos", "nested_squash"))
    p.app("shop")
    p.settings(["shop"])
    fields = []
    for f in ["name", "sku", "color"]:
        fields.append(f)
        p.models("shop", "class Product(models.Model):\n" + "".join(f"    {x} = models.CharField(max_length=20, default='')\n" for x in fields))
        p.makemigrations("shop", name=None if f == "name" else f"add_{f}")
    p.squash("shop", "0001", "0002", name="first_two")
    p.commit("v1")
    inner = [f[:-3] for f in os.listdir(os.path.join(p.root, "shop/migrations")) if "first_two" in f][0]
    p.squash("shop", inner, "0003", name="all_three")
    fields.append("size")
    p.models("shop", "class Product(models.Model):\n" + "".join(f"    {x} = models.CharField(max_length=20, default='')\n" for x in fields))
    p.makemigrations("shop", name="add_size")
    p.commit("v2")
    outer = [f[:-3] for f in os.listdir(os.path.join(p.root, "shop/migrations")) if "all_three" in f][0]
    verify_pair("nested_squash", p, "v2", "v1", kinds, {"targets": {"shop": outer}, "unapply_count": 1})


def sc_backport(kinds):
    """Branches under merges, built with real git branches: 2.0 (main) adds
    shop 0003_product_color and 0004_product_size; a fix backported to the
    1.x branch (1.1) adds shop 0003_product_fix off 0002 and a blog migration
    depending on it (cross-app, onto the branch); main merges the branch and
    `makemigrations --merge` joins the leaves (3.0). Going back from 3.0 to
    2.0 or to 1.1 leaves new migrations hanging off old ones that stay
    applied: no per-app target is exact, the executor step is."""
    p = Project(os.path.join(ARGS.work, "repos", "backport"))
    p.app("shop")
    p.app("blog")
    p.settings(["shop", "blog"])
    product = "class Product(models.Model):\n    name = models.CharField(max_length=20)\n"
    fields = {"sku": "    sku = models.CharField(max_length=20, default='')\n",
              "color": "    color = models.CharField(max_length=20, default='')\n",
              "size": "    size = models.IntegerField(default=0)\n",
              "fix": "    fix = models.BooleanField(default=False)\n"}
    post = "class Post(models.Model):\n    title = models.CharField(max_length=20)\n"
    p.models("shop", product)
    p.models("blog", post)
    p.makemigrations("shop")
    p.makemigrations("blog")
    p.models("shop", product + fields["sku"])
    p.makemigrations("shop", name="product_sku")
    p.commit("v1")
    git(p.root, "branch", "maint")
    for f in ("color", "size"):
        p.models("shop", product + fields["sku"] + "".join(fields[x] for x in ("color", "size") if x == "color" or f == "size"))
        p.makemigrations("shop", name=f"product_{f}")
    p.commit("v2")
    git(p.root, "checkout", "-q", "maint")
    p.models("shop", product + fields["sku"] + fields["fix"])
    p.makemigrations("shop", name="product_fix")
    p.models("blog", post + "    product = models.ForeignKey(\"shop.Product\", null=True, on_delete=models.SET_NULL)\n")
    p.makemigrations("blog", name="post_product")
    p.commit("v1.1")
    git(p.root, "checkout", "-q", "master" if "master" in git(p.root, "branch").stdout else "main")
    sh(["git", "merge", "-q", "--no-commit", "maint"], cwd=p.root, check=False)  # models.py conflicts
    p.models("shop", product + fields["sku"] + fields["color"] + fields["size"] + fields["fix"])
    git(p.root, "add", "-A")
    git(p.root, "commit", "-qm", "merge maint")
    p.manage("makemigrations", "shop", "--merge", "--noinput")
    p.commit("v3")
    merge = [f[:-3] for f in os.listdir(os.path.join(p.root, "shop/migrations")) if "_merge_" in f][0]
    verify_pair("backport", p, "v3", "v2", kinds, {
        "targets": {}, "record": True,
        "executor": [[f"shop.{merge}", "blog.0002_post_product", "shop.0003_product_fix"]],
        "unreachable": ["shop.0003_product_fix"],
        "data_loss": ["shop_product.fix", "blog_post.product"]})
    verify_pair("backport", p, "v3", "v1.1", kinds, {
        "targets": {},
        "executor": [[f"shop.{merge}", "shop.0004_product_size", "shop.0003_product_color"]],
        "unreachable": ["shop.0003_product_color"], "script": True,
        "data_loss": ["shop_product.color", "shop_product.size"]})


HELPER_MIGRATION = """\
from django.db import migrations, models


def create_model(with_label, name="Tag"):
    fields = [
        ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
        ("name", models.CharField(max_length=20)),
    ]
    if with_label:
        fields = fields + [("label", models.CharField(default="", max_length=20))]
    return migrations.CreateModel(name=name, fields=fields)


def add_char(model, name):
    return migrations.AddField(model_name=model, name=name, field=models.CharField(default="", max_length=20))


def backfill(apps, schema_editor):
    pass


def run(reverse=True):
    if not reverse:
        return migrations.RunPython(backfill)
    return migrations.RunPython(backfill, migrations.RunPython.noop)


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [
        create_model(True),
        add_char("product", "sku"),
        run(),
    ]
"""


def sc_helper_operations(kinds):
    """Operations built by helper functions of the migration module
    (`operations = [create_model(True)]`): judged like literal ones — data
    loss of the CreateModel/AddField they return, reversibility of the
    RunPython they return — with the call's line; a helper returning a
    RunPython without reverse_code is irreversible, and real Django agrees."""
    p = Project(os.path.join(ARGS.work, "repos", "helper_operations"))
    p.app("shop")
    p.settings(["shop"])
    p.models("shop", "class Product(models.Model):\n    name = models.CharField(max_length=20)\n")
    p.makemigrations("shop")
    p.commit("v1")
    p.models("shop", "class Product(models.Model):\n    name = models.CharField(max_length=20)\n    sku = models.CharField(default='', max_length=20)\n\n\n"
             "class Tag(models.Model):\n    name = models.CharField(max_length=20)\n    label = models.CharField(default='', max_length=20)\n")
    p.write("shop/migrations/0002_helpers.py", HELPER_MIGRATION)
    p.commit("v2")
    p.write("shop/migrations/0003_backfill.py", HELPER_MIGRATION.split("class Migration")[0]
            + 'class Migration(migrations.Migration):\n    dependencies = [("shop", "0002_helpers")]\n    operations = [\n        run(reverse=False),\n    ]\n')
    p.commit("v3")
    line = next(i for i, l in enumerate(p.read("shop/migrations/0003_backfill.py").splitlines(), 1) if "run(reverse=False)" in l)
    verify_pair("helper_operations", p, "v2", "v1", kinds, {
        "targets": {"shop": "0001_initial"}, "unapply_count": 1, "irreversible": [],
        "data_loss": ["drops table shop_tag", "drops column shop_product.sku"]})
    verify_pair("helper_operations", p, "v3", "v2", kinds, {
        "irreversible": [("0003_backfill", "RunPython", line)], "django_fails": "IrreversibleError"})


def sc_squash_raw_fallback(kinds):
    """The older leaf 0002 is replaced in the newer revision by a squash that
    also stands for the newer 0003, the replaced files still on disk. Django's
    executor then reloads the graph without replacements
    (`MigrationExecutor.migration_plan`), so `migrate shop 0002_touch` stops
    inside the squash and unapplies only 0003: the exact older state. The
    squash copies 0002's RunSQL without reverse_sql, which Django does not
    unapply on that path: irreversibility is judged on 0003 alone. When a
    later migration depends on the squash itself, that path leaves it applied:
    refused."""
    p = Project(os.path.join(ARGS.work, "repos", "squash_raw_fallback"))
    p.app("shop")
    p.settings(["shop"])
    p.models("shop", "class Product(models.Model):\n    name = models.CharField(max_length=20)\n")
    p.makemigrations("shop")
    p.makemigrations("shop", name="touch", empty=True)
    mig = "shop/migrations/0002_touch.py"
    p.write(mig, p.read(mig).replace("operations = [\n    ]", "operations = [\n        migrations.RunSQL(\"UPDATE shop_product SET name = name\"),\n    ]"))
    p.commit("v1")
    p.models("shop", "class Product(models.Model):\n    name = models.CharField(max_length=20)\n    color = models.CharField(max_length=20, default='')\n")
    p.makemigrations("shop", name="add_color")
    p.squash("shop", "0001", "0003")
    p.commit("v2")
    squash = [f[:-3] for f in os.listdir(os.path.join(p.root, "shop/migrations")) if "squashed" in f][0]
    p.models("shop", "class Product(models.Model):\n    name = models.CharField(max_length=20)\n    color = models.CharField(max_length=20, default='')\n    size = models.CharField(max_length=20, default='')\n")
    p.makemigrations("shop", name="add_size")
    p.commit("v3")
    verify_pair("squash_raw_fallback", p, "v2", "v1", kinds, {
        "targets": {"shop": "0002_touch"}, "unapply_count": 1, "irreversible": [],
        "data_loss": ["drops column shop_product.color"], "record": True})
    dep = p.read("shop/migrations/0004_add_size.py")
    record("squash_raw_fallback", "static", "0004 depends on the squash", squash in dep, dep)
    plan = tagback_plan(p.root, "v3", "v1")
    record("squash_raw_fallback", "static", "v3->v1 refused (0004 depends on the squash itself)",
           any("also contains newer migrations" in pr["message"] for pr in plan["problems"]) and not plan["commands"],
           json.dumps(plan["problems"]))
    # Real Django on that path: `migrate shop 0002_touch` unapplies 0003 but
    # leaves 0004 applied, so the database is not the older state.
    work = os.path.join(ARGS.work, "squash_raw_fallback")
    v3, v1 = os.path.join(work, "v3"), os.path.join(work, "v1")
    p.export("v3", v3)
    p.export("v1", v1)
    for kind in kinds:
        db = Database(kind, work)
        db.manage(v3, "migrate", "--noinput")
        db.manage(v3, "migrate", "shop", "0002_touch", "--noinput")
        fresh = Database(kind, work)
        fresh.manage(v1, "migrate", "--noinput")
        got, want = db.snapshot(v1), fresh.snapshot(v1)
        record("squash_raw_fallback", kind, "v3->v1 the naive command leaves 0004 applied (not the older state)",
               got["schema"] != want["schema"] and ["shop", "0004_add_size"] in got["rows"], schema_diff(got["schema"], want["schema"]))


MANAGE_FROM_ENV = '''\
#!/usr/bin/env python
import sys

if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
'''


def sc_settings_from_environment(kinds):
    """babybuddy's shape: manage.py sets no DJANGO_SETTINGS_MODULE (the
    deployment's environment does: here proj.settings.production); one module
    of the settings package sets INSTALLED_APPS (base), its siblings only
    inherit it, so whichever the deployment names the plan is the same:
    tagback reads base and says so in one line (assumed-settings-module).
    Real Django runs with proj.settings.production."""
    env = {"DJANGO_SETTINGS_MODULE": "proj.settings.production"}
    CASE_ENV.update(env)
    p = Project(os.path.join(ARGS.work, "repos", "settings_from_environment"))
    p.write("manage.py", MANAGE_FROM_ENV)
    p.app("shop")
    p.app("blog")
    p.settings(["shop", "blog"])
    base = p.read("proj/settings.py")
    p.remove("proj/settings.py")
    p.write("proj/settings/__init__.py", "")
    p.write("proj/settings/base.py", base)
    p.write("proj/settings/development.py", "from .base import *  # noqa: F403\n\nDEBUG = True\n")
    p.write("proj/settings/production.py", "from .base import *  # noqa: F403\n\nDEBUG = False\nALLOWED_HOSTS = [\"*\"]\n")
    p.models("shop", "class Product(models.Model):\n    name = models.CharField(max_length=20)\n")
    p.models("blog", "class Post(models.Model):\n    title = models.CharField(max_length=20)\n")
    p.makemigrations("shop")
    p.makemigrations("blog")
    p.commit("v1")
    p.models("shop", "class Product(models.Model):\n    name = models.CharField(max_length=20)\n    sku = models.CharField(max_length=20, default='')\n")
    p.models("blog", "class Post(models.Model):\n    title = models.CharField(max_length=20)\n    body = models.TextField(default='')\n")
    p.makemigrations("shop", name="sku")
    p.makemigrations("blog", name="body")
    p.commit("v2")
    verify_pair("settings_from_environment", p, "v2", "v1", kinds, {
        "env": env, "targets": {"shop": "0001_initial", "blog": "0001_initial"}, "unapply_count": 2,
        "note_codes": ["assumed-settings-module"]})


PLUGIN_LOOP = '''
import importlib

# NetBox's shape: the operator's configuration module names the plugins.
config_path = os.getenv("TAGBACK_CONFIGURATION", "proj.configuration")
try:
    configuration = importlib.import_module(config_path)
except ModuleNotFoundError as e:
    if getattr(e, "name") == config_path:
        raise RuntimeError(f"Specified configuration module ({config_path}) not found.")
    raise
DEBUG = getattr(configuration, "DEBUG", False)
PLUGINS = getattr(configuration, "PLUGINS", [])
PLUGINS_CONFIG = getattr(configuration, "PLUGINS_CONFIG", {})
INSTALLED_APPS += ["debug_toolbar"]
if not DEBUG:
    INSTALLED_APPS.remove("debug_toolbar")
for plugin_name in PLUGINS:
    try:
        plugin = importlib.import_module(plugin_name)
    except ModuleNotFoundError as e:
        if getattr(e, "name") == plugin_name:
            raise RuntimeError(f"Unable to import plugin {plugin_name}: Module not found.")
        raise e
    plugin_config = plugin.config
    if plugin_name not in PLUGINS_CONFIG:
        PLUGINS_CONFIG[plugin_name] = {}
    plugin_module = "{}.{}".format(plugin_config.__module__, plugin_config.__name__)
    django_apps = plugin_config.django_apps
    if plugin_module not in django_apps:
        django_apps.append(plugin_module)
    INSTALLED_APPS.extend(django_apps)
    # Preserve uniqueness of the INSTALLED_APPS list, we keep the last occurrence
    sorted_apps = reversed(list(dict.fromkeys(reversed(INSTALLED_APPS))))
    INSTALLED_APPS = list(sorted_apps)
'''


def sc_plugin_loop(kinds):
    """NetBox's plugin loop: a configuration module imported by name
    (importlib) names the plugins; each one's apps are appended to
    INSTALLED_APPS in a loop, then duplicates dropped by
    `list(reversed(list(dict.fromkeys(reversed(INSTALLED_APPS)))))`;
    debug_toolbar is removed unless DEBUG (read from the configuration).
    The plugins' apps can only come from outside the repository: the plan
    goes ahead and says so (assumed-external-apps)."""
    p = Project(os.path.join(ARGS.work, "repos", "plugin_loop"))
    p.app("shop")
    p.app("blog")
    p.settings(["shop", "blog"], extra=PLUGIN_LOOP)
    p.write("proj/configuration.py", "DEBUG = False\nPLUGINS = []\nPLUGINS_CONFIG = {}\n")
    p.models("shop", "class Product(models.Model):\n    name = models.CharField(max_length=20)\n")
    p.models("blog", "class Post(models.Model):\n    title = models.CharField(max_length=20)\n")
    p.makemigrations("shop")
    p.makemigrations("blog")
    p.commit("v1")
    p.models("shop", "class Product(models.Model):\n    name = models.CharField(max_length=20)\n    sku = models.CharField(max_length=20, default='')\n")
    p.makemigrations("shop", name="sku")
    p.commit("v2")
    verify_pair("plugin_loop", p, "v2", "v1", kinds, {
        "targets": {"shop": "0001_initial"}, "unapply_count": 1, "note_codes": ["assumed-external-apps"]})


def sc_test_migrations_dir(kinds):
    """label-studio's shape: `shop/tests/migrations/test_*.py` are tests of
    migrations in a directory named `migrations`, no migrations module of any
    app (Django's loader never reads it): not unplanned migrations, no
    refusal; the plan is exactly the app's new migration."""
    p = Project(os.path.join(ARGS.work, "repos", "test_migrations_dir"))
    p.app("shop")
    p.settings(["shop"])
    p.models("shop", "class Product(models.Model):\n    name = models.CharField(max_length=20)\n")
    p.makemigrations("shop")
    p.write("shop/tests/__init__.py", "")
    p.write("shop/tests/migrations/__init__.py", "")
    p.commit("v1")
    p.write("shop/tests/migrations/test_sku_backfill.py", "from django.test import TestCase\n\n\n"
            "class TestSkuBackfill(TestCase):\n    def test_default(self):\n        self.assertTrue(True)\n")
    p.models("shop", "class Product(models.Model):\n    name = models.CharField(max_length=20)\n    sku = models.CharField(max_length=20, default='')\n")
    p.makemigrations("shop", name="sku")
    p.commit("v2")
    verify_pair("test_migrations_dir", p, "v2", "v1", kinds, {"targets": {"shop": "0001_initial"}, "unapply_count": 1})


def sc_squash_known_by_name(kinds):
    """label-studio's shape: a squash both releases carry, whose replaced
    files are partly deleted (0002_token is only named in `replaces`), with a
    later migration depending on the squash: the older release knows it by
    its name, so it does not straddle; only the newer migration on top is
    unapplied. Going back across the squash itself (v1 -> v0, where the
    older leaf 0002_token is replaced), the target is the squash."""
    p = Project(os.path.join(ARGS.work, "repos", "squash_known_by_name"))
    p.app("shop")
    p.settings(["shop"])
    fields = []
    for f in ["name", "token"]:
        fields.append(f)
        p.models("shop", "class Product(models.Model):\n" + "".join(f"    {x} = models.CharField(max_length=20, default='')\n" for x in fields))
        p.makemigrations("shop", name=None if f == "name" else "token")
    p.commit("v0")
    p.squash("shop", "0001", "0002")
    p.remove("shop/migrations/0002_token.py")
    fields.append("color")
    p.models("shop", "class Product(models.Model):\n" + "".join(f"    {x} = models.CharField(max_length=20, default='')\n" for x in fields))
    p.makemigrations("shop", name="color")
    p.commit("v1")
    fields.append("size")
    p.models("shop", "class Product(models.Model):\n" + "".join(f"    {x} = models.CharField(max_length=20, default='')\n" for x in fields))
    p.makemigrations("shop", name="size")
    p.commit("v2")
    squash = [f[:-3] for f in os.listdir(os.path.join(p.root, "shop/migrations")) if "squashed" in f][0]
    record("squash_known_by_name", "static", "0003 depends on the squash", squash in p.read("shop/migrations/0003_color.py"),
           p.read("shop/migrations/0003_color.py"))
    verify_pair("squash_known_by_name", p, "v2", "v1", kinds, {"targets": {"shop": "0003_color"}, "unapply_count": 1})
    verify_pair("squash_known_by_name", p, "v1", "v0", kinds, {"targets": {"shop": squash}, "unapply_count": 1})


INIT_DEPENDENCIES = """from django.db import migrations, models


class Migration(migrations.Migration):
    operations = [
        migrations.AddField(model_name="product", name="late", field=models.IntegerField(default=0)),
    ]

    def __init__(self, name, app_label):
        super().__init__(name, app_label)
        # Set when Django imports the module: a static reader cannot see it.
        self.dependencies = [("shop", "0002_price"), ("members", "0002_badge")]
"""


def sc_dependencies_in_init(kinds):
    """A migration whose dependencies are set in `__init__` (the class has
    none): read statically, shop would have two leaves and members.0002
    nothing after it. tagback refuses to plan on a guess (dynamic-migration)
    until `.tagback.yml` states the dependencies; then its plan is the one
    real Django, which runs `__init__`, carries out exactly."""
    p = Project(os.path.join(ARGS.work, "repos", "dependencies_in_init"))
    p.app("shop")
    p.app("members")
    p.settings(["shop", "members"])
    p.models("shop", "class Product(models.Model):\n    name = models.CharField(max_length=20)\n")
    p.models("members", "class Member(models.Model):\n    name = models.CharField(max_length=20)\n")
    p.makemigrations("shop")
    p.makemigrations("members")
    p.models("shop", "class Product(models.Model):\n    name = models.CharField(max_length=20)\n    price = models.IntegerField(default=0)\n")
    p.makemigrations("shop", "price")
    p.commit("v1")
    p.models("members", "class Member(models.Model):\n    name = models.CharField(max_length=20)\n    badge = models.CharField(default='', max_length=20)\n")
    p.makemigrations("members", "badge")
    p.models("shop", "class Product(models.Model):\n    name = models.CharField(max_length=20)\n    price = models.IntegerField(default=0)\n    late = models.IntegerField(default=0)\n")
    p.write("shop/migrations/0003_late.py", INIT_DEPENDENCIES)
    p.commit("v2")
    # No database: nothing is planned while the dependencies are unknown.
    verify_pair("dependencies_in_init", p, "v2", "v1", [], {"problems": "computed in __init__"})
    p.write(".tagback.yml", "services:\n  web:\n    migrations:\n      shop.0003_late:\n"
                            "        dependencies: [[shop, 0002_price], [members, 0002_badge]]\n")
    p.commit("v3")
    plan = tagback_plan(p.root, "v3", "v1")
    record("dependencies_in_init", "static", "v3->v1 stated dependencies: no problem left",
           plan["problems"] == [] and plan["dynamic"] == [], json.dumps(plan["problems"]))
    # The stated edge orders the commands: shop.0003 (the child) goes first,
    # so each command unapplies exactly what its step says.
    got = [(s.get("app"), s.get("unapply")) for s in plan["steps"]]
    record("dependencies_in_init", "static", "v3->v1 the child app's command comes first",
           got == [("shop", ["0003_late"]), ("members", ["0002_badge"])], f"got {got}")
    verify_pair("dependencies_in_init", p, "v3", "v1", kinds, {
        "targets": {"shop": "0002_price", "members": "0001_initial"}, "unapply_count": 2})


SCENARIOS = {
    "backport": sc_backport,
    "multi_app": sc_multi_app,
    "squash_old_leaf": sc_squash_old_leaf,
    "squash_straddles": sc_squash_straddles,
    "merge": sc_merge,
    "irreversible": sc_irreversible,
    "apps_added_removed": sc_app_added_and_removed,
    "ambiguous": sc_ambiguous,
    "nested_squash": sc_nested_squash,
    "settings_patterns": sc_settings_patterns,
    "split_settings": sc_split_settings,
    "settings_package_beside_module": sc_settings_package_beside_module,
    "squash_replaced_deleted": sc_squash_replaced_deleted,
    "helper_operations": sc_helper_operations,
    "squash_raw_fallback": sc_squash_raw_fallback,
    "settings_from_environment": sc_settings_from_environment,
    "plugin_loop": sc_plugin_loop,
    "test_migrations_dir": sc_test_migrations_dir,
    "squash_known_by_name": sc_squash_known_by_name,
    "dependencies_in_init": sc_dependencies_in_init,
}


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--tagback", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--postgres")
    ap.add_argument("--work", required=True)
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--replay-fixtures", metavar="DIR",
                    help="instead of building the scenarios, judge the committed fixture cases in DIR")
    ap.add_argument("--export-fixtures", metavar="DIR",
                    help="store every verified pair as a fixture case under DIR (tests/fixtures/cases)")
    ARGS = ap.parse_args()
    if ARGS.export_fixtures:
        ARGS.export_fixtures = os.path.abspath(ARGS.export_fixtures)
    ARGS.tagback = os.path.abspath(ARGS.tagback)
    ARGS.work = os.path.abspath(ARGS.work)
    os.makedirs(ARGS.work, exist_ok=True)
    kinds = ["sqlite"] + (["postgresql"] if ARGS.postgres else [])
    version = sh([ARGS.python, "-c", "import django; print(django.get_version())"]).stdout.strip()
    print(f"Django {version}; databases: {', '.join(kinds)}", flush=True)
    if ARGS.replay_fixtures:
        ARGS.replay_fixtures = os.path.abspath(ARGS.replay_fixtures)
        replay_fixtures(kinds)
    for name, fn in ({} if ARGS.replay_fixtures else SCENARIOS).items():
        if ARGS.only and name not in ARGS.only:
            continue
        print(f"scenario {name}", flush=True)
        CASE_ENV.clear()
        try:
            fn(kinds)
        except Exception as e:  # a crash is a failed check, with its trace
            record(name, "-", "scenario ran", False, "".join(traceback.format_exception(e))[-2000:])
    failed = [r for r in RESULTS if not r[3]]
    print(f"\n{len(RESULTS) - len(failed)} of {len(RESULTS)} checks passed against real Django {version}")
    for r in failed:
        print(f"FAILED: {r[0]} [{r[1]}] {r[2]}: {r[4]}")
    sys.exit(1 if failed or not RESULTS else 0)


if __name__ == "__main__":
    main()
