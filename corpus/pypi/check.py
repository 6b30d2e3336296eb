#!/usr/bin/env python3
"""The PyPI tier of tagback's corpus: real Django applications, judged by real Django.

Every application here publishes its releases on PyPI. For each release the
script downloads its sdist (or its wheel where no sdist builds without the
project's toolchain), lays it out as the project's repository holds it, and
commits it to a git repository of that application, one commit and one tag per
release. Nothing downloaded is committed to tagback: only the truth computed
from it (corpus/pypi/<app>/<older>..<newer>.json) and this script.

  check.py check  [--tagback BIN] [--cache DIR]
      download (once, cached), build the repositories, run
      `tagback plan --repo REPO --from NEWER --to OLDER --format json` for every
      pair and compare with the stored truth. Exit 1 on any wrong plan or any
      outcome that differs from the stored one.
  check.py truth  --venvs DIR [--cache DIR] [--only APP]
      rebuild the stored truth: in DIR/<app>-<version> (a venv made by
      `pip install APP==VERSION` on Python 3.11), load Django's MigrationLoader
      with that release's settings (corpus/truth.py graph), then apply the
      design's rules (truth.py pair) per pair. Writes the JSON files.
  check.py replay --venvs DIR --postgres HOST:PORT PAIR...   (PAIR: app:older..newer)
      forward-migrate a fresh PostgreSQL database with the newer release,
      run tagback's commands with the newer release, then check with the older
      release: `migrate --check`, django_migrations rows and the schema against
      a fresh migrate of the older release (tests/django/harness.py's
      comparison). Stores the outcome in the pair's JSON.
  check.py table
      the markdown table of every pair (corpus/README.md).

The cache defaults to $TAGBACK_TEST_ENV/corpus-pypi (or target/test-env/...).
"""

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "corpus"))
sys.path.insert(0, os.path.join(ROOT, "tests", "django"))
import truth  # noqa: E402

# The manage.py a release lacks (pretix's wheel carries the package only; the
# project's repository has src/manage.py with this settings module).
MANAGE = '''\
#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "{settings}")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
'''

# dist: "sdist" or "wheel"; prefix: where the archive's tree goes in the
# repository; add_manage: path of a manage.py to add (the release has none);
# settings: the module Django loads for the truth; pythonpath: directory of the
# installed package to put on sys.path (relative to the package's own dir);
# env: what the settings need to import (data directories, never a database);
# config: the .tagback.yml tagback needs (only where it blocks and says so).
APPS = {
    "pretalx": {
        "dist": "sdist", "prefix": "", "settings": "pretalx.settings", "package": "pretalx",
        "env": {"PRETALX_DATA_DIR": "{tmp}"},
        "versions": ["2024.1.0", "2024.3.1", "2025.1.0", "2025.2.2"],
    },
    "pretix": {
        "dist": "wheel", "prefix": "src/", "add_manage": "src/manage.py", "settings": "pretix.settings",
        "package": "pretix", "env": {"PRETIX_DATA_DIR": "{tmp}"},
        "versions": ["2026.1.2", "2026.6.3", "2026.7.2", "2026.8.0"],
    },
    "label-studio": {
        "dist": "sdist", "prefix": "", "settings": "core.settings.label_studio", "package": "label_studio",
        "pythonpath": ".",
        "env": {"LABEL_STUDIO_BASE_DATA_DIR": "{tmp}", "HOME": "{tmp}"},
        "versions": ["1.19.0", "1.21.0", "1.22.0", "1.23.2"],
    },
    "weblate": {
        "dist": "sdist", "prefix": "", "settings": "weblate.settings_example", "package": "weblate",
        "env": {"DATA_DIR": "{tmp}", "HOME": "{tmp}"},
        # manage.py picks its settings module through a variable
        # (`default = "weblate.settings"`, a file the operator copies from
        # settings_example.py): tagback exits 2 naming that manage.py line and
        # asking for `settings: weblate.settings_example`; then
        # weblate.billing (commented out in settings_example) blocks as
        # unplanned-migrations, whose message asks for `not_installed:`.
        "config": "services:\n  web:\n    settings: weblate.settings_example\n    not_installed: [weblate/billing/migrations]\n",
        "versions": ["5.12.2", "5.13.3", "5.14.3"],
    },
}

# (app, older, newer, why an operator goes back across it)
PAIRS = [
    ("pretalx", "2025.1.0", "2025.2.2", "previous minor release"),
    ("pretalx", "2024.3.1", "2025.1.0", "previous minor release"),
    ("pretalx", "2024.1.0", "2024.3.1", "previous minor release"),
    ("pretalx", "2024.1.0", "2025.2.2", "a year back"),
    ("pretix", "2026.7.2", "2026.8.0", "previous minor release"),
    ("pretix", "2026.6.3", "2026.7.2", "previous minor release"),
    ("pretix", "2026.1.2", "2026.6.3", "wider jump"),
    ("pretix", "2026.1.2", "2026.8.0", "wider jump"),
    ("label-studio", "1.22.0", "1.23.2", "previous minor release"),
    ("label-studio", "1.21.0", "1.22.0", "previous minor release"),
    ("label-studio", "1.19.0", "1.21.0", "two minors back"),
    ("label-studio", "1.19.0", "1.23.2", "wider jump"),
    ("weblate", "5.13.3", "5.14.3", "previous minor release"),
    ("weblate", "5.12.2", "5.13.3", "previous minor release"),
    ("weblate", "5.12.2", "5.14.3", "two minors back"),
]

KEEP_NAMES = {"manage.py", "pyproject.toml", "setup.cfg", "setup.py"}


def keep(path):
    """tagback reads Python files and packaging metadata; templates, static
    files and translations are left out of the repositories (speed)."""
    base = os.path.basename(path)
    return base.endswith(".py") or base in KEEP_NAMES or (base.startswith("requirements") and base.endswith(".txt"))


def sh(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed with {p.returncode}:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return p


def cache_dir(args):
    if args.cache:
        return args.cache
    env = os.environ.get("TAGBACK_TEST_ENV") or os.path.join(ROOT, "target", "test-env")
    return os.path.join(env, "corpus-pypi")


def download(app, ver, dl):
    """The release archive, downloaded once with pip."""
    cfg = APPS[app]
    os.makedirs(dl, exist_ok=True)
    norm = app.replace("-", "_")

    def found():
        for f in os.listdir(dl):
            low = f.lower()
            if low.startswith(f"{norm}-{ver}".lower()) and (
                (cfg["dist"] == "sdist" and low.endswith(".tar.gz")) or (cfg["dist"] == "wheel" and low.endswith(".whl"))
            ):
                return os.path.join(dl, f)
        return None

    if found():
        return found()
    if cfg["dist"] == "wheel":
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:", f"{app}=={ver}", "-d", dl]
    else:
        # --no-binary for the application only, so its build backend may come
        # as wheels (pip prepares the sdist's metadata).
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", app, f"{app}=={ver}", "-d", dl]
    sh(cmd)
    path = found()
    if not path:
        raise RuntimeError(f"pip download {app}=={ver} left no {cfg['dist']} in {dl}")
    return path


def release_files(app, archive):
    """{repository path: bytes} of one release as the project's repository lays it out."""
    cfg = APPS[app]
    out = {}
    if archive.endswith(".whl"):
        with zipfile.ZipFile(archive) as z:
            for n in z.namelist():
                if n.endswith("/") or ".dist-info/" in n or not keep(n):
                    continue
                out[cfg["prefix"] + n] = z.read(n)
    else:
        with tarfile.open(archive) as t:
            for m in t.getmembers():
                if not m.isfile():
                    continue
                rel = m.name.split("/", 1)[1] if "/" in m.name else ""
                if not rel or ".egg-info/" in rel or rel == "PKG-INFO" or not keep(rel):
                    continue
                out[cfg["prefix"] + rel] = t.extractfile(m).read()
    if cfg.get("add_manage") and cfg["add_manage"] not in out:
        out[cfg["add_manage"]] = MANAGE.format(settings=cfg["settings"]).encode()
    return out


def git(repo, *a, **kw):
    env = dict(os.environ, GIT_AUTHOR_NAME="corpus", GIT_AUTHOR_EMAIL="corpus@tagback", GIT_COMMITTER_NAME="corpus",
               GIT_COMMITTER_EMAIL="corpus@tagback", GIT_AUTHOR_DATE="2026-01-01T00:00:00Z",
               GIT_COMMITTER_DATE="2026-01-01T00:00:00Z")
    for k in ("GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE"):
        env.pop(k, None)
    return sh(["git", *a], cwd=repo, env=env, **kw)


def build_repo(app, cache):
    """One git repository per application: one commit and one tag per release,
    oldest first. Rebuilt only when its release list changed."""
    cfg = APPS[app]
    repo = os.path.join(cache, "repos", app)
    stamp = os.path.join(repo, ".corpus-versions")
    want = " ".join(cfg["versions"]) + f" {cfg['dist']}"
    if os.path.exists(stamp) and open(stamp).read() == want:
        return repo
    if os.path.exists(repo):
        shutil.rmtree(repo)
    os.makedirs(repo)
    git(repo, "init", "-q")
    for ver in cfg["versions"]:
        files = release_files(app, download(app, ver, os.path.join(cache, "dl")))
        with tempfile.TemporaryDirectory() as tree:
            for rel, data in files.items():
                p = os.path.join(tree, rel)
                os.makedirs(os.path.dirname(p), exist_ok=True)
                with open(p, "wb") as f:
                    f.write(data)
            git(repo, "--work-tree", tree, "add", "-A", ".")
            git(repo, "--work-tree", tree, "commit", "-q", "--allow-empty", "-m", f"{app} {ver} (from PyPI)")
        git(repo, "tag", ver)
    with open(stamp, "w") as f:
        f.write(want)
    return repo


def pair_path(app, older, newer):
    return os.path.join(HERE, app, f"{older}..{newer}.json")


def load_pair(app, older, newer):
    with open(pair_path(app, older, newer)) as f:
        return json.load(f)


def save_pair(app, older, newer, data):
    os.makedirs(os.path.join(HERE, app), exist_ok=True)
    with open(pair_path(app, older, newer), "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")


# ------------------------------------------------------------------ truth

GRAPH = r'''
import contextlib, io, json, os, sys
sys.path.insert(0, {corpus!r})
import truth
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    import django
    django.setup()
out = io.StringIO()
with contextlib.redirect_stdout(out):
    truth.dump_graph()
graph = json.loads(out.getvalue())
from django.apps import apps
from importlib import metadata
files = metadata.distribution({dist!r}).locate_file("")
pkg = os.path.realpath(os.path.join(str(files), {package!r}))
graph["own"] = sorted(a.label for a in apps.get_app_configs() if os.path.realpath(a.path).startswith(pkg + os.sep) or os.path.realpath(a.path) == pkg)
sys.__stdout__.write(json.dumps(graph))
'''


def graph_of(app, ver, venvs):
    """MigrationLoader's view of one release, in that release's own venv."""
    cfg = APPS[app]
    py = os.path.join(venvs, f"{app}-{ver}", "bin", "python")
    tmp = tempfile.mkdtemp(prefix=f"corpus-{app}-")
    env = {k: v.format(tmp=tmp) for k, v in cfg.get("env", {}).items()}
    site = sh([py, "-c", f"import {cfg['package']}, os; print(os.path.dirname({cfg['package']}.__file__))"]).stdout.strip()
    pythonpath = os.path.normpath(os.path.join(site, cfg["pythonpath"])) if cfg.get("pythonpath") else ""
    full = dict(os.environ, DJANGO_SETTINGS_MODULE=cfg["settings"], **env)
    if pythonpath:
        full["PYTHONPATH"] = pythonpath
    code = GRAPH.format(corpus=os.path.join(ROOT, "corpus"), dist=app, package=cfg["package"])
    p = subprocess.run([py, "-c", code], cwd=tmp, env=full, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{app} {ver}: truth graph failed:\n{p.stderr[-3000:]}")
    line = p.stdout.strip().splitlines()[-1]
    shown = " ".join(f"{k}={v}" for k, v in sorted(env.items()))
    if pythonpath:
        shown += f" PYTHONPATH=<site-packages>/{cfg['package']}/{cfg['pythonpath']}"
    command = (f"cd $(mktemp -d) && {shown} DJANGO_SETTINGS_MODULE={cfg['settings']} "
               f"<venv: pip install {app}=={ver} on Python 3.11>/bin/python corpus/truth.py graph")
    shutil.rmtree(tmp, ignore_errors=True)
    return json.loads(line), command


def split_truth(t, own):
    """Split truth.pair's answer into the repository's own apps and the rest."""
    def part(mine):
        return {
            "unapply": [u for u in t["unapply"] if (u[0] in own) == mine],
            "targets": {a: v for a, v in t["targets"].items() if (a in own) == mine},
            "ambiguous": {a: v for a, v in t["ambiguous"].items() if (a in own) == mine},
            "unreachable": [u for u in t["unreachable"] if (u[0] in own) == mine],
        }
    return {"own": part(True), "packages": part(False)}


def cmd_truth(args):
    graphs = {}
    for app, older, newer, why in PAIRS:
        if args.only and app not in args.only:
            continue
        missing = [v for v in (older, newer) if not os.path.exists(os.path.join(args.venvs, f"{app}-{v}", ".ok"))]
        if missing:
            print(f"skip {app} {older}..{newer}: no venv for {missing}", flush=True)
            continue
        for v in (older, newer):
            if (app, v) not in graphs:
                print(f"graph {app} {v}", flush=True)
                graphs[(app, v)] = graph_of(app, v, args.venvs)
        (ng, ncmd), (og, ocmd) = graphs[(app, newer)], graphs[(app, older)]
        t = truth.pair(ng, og)
        own = set(ng["own"]) | set(og["own"])
        old = load_pair(app, older, newer) if os.path.exists(pair_path(app, older, newer)) else {}
        data = {
            "app": app, "older": older, "newer": newer, "why": why,
            "django": t["django"],
            "own_apps": sorted(own),
            "truth": split_truth(t, own),
            "per_app_exact": t["per_app_exact"],
            "overreach": t["overreach"],
            "commands": {"newer": ncmd, "older": ocmd,
                         "pair": f"corpus/truth.py pair {newer}.json {older}.json"},
        }
        for k in ("tagback", "replay"):
            if k in old:
                data[k] = old[k]
        save_pair(app, older, newer, data)
        print(f"  {app} {older}..{newer}: own {len(data['truth']['own']['unapply'])}, "
              f"packages {len(data['truth']['packages']['unapply'])}", flush=True)


# ------------------------------------------------------------------ check

def tagback_plan(tagback, repo, newer, older, config=None):
    cmd = [tagback, "plan", "--repo", repo, "--from", newer, "--to", older, "--format", "json"]
    if config:
        cmd += ["--config", config]
    return subprocess.run(cmd, capture_output=True, text=True)


def classify(p, want):
    """exact / blocked / wrong, with what tagback said."""
    if p.returncode == 2:
        # tagback refuses the input (exit 2, one sentence): a block too.
        return {"outcome": "blocked", "findings": [{"code": "exit-2", "message": p.stderr.strip()[:500]}]}
    try:
        plan = json.loads(p.stdout)
    except ValueError:
        return {"outcome": "error", "message": (p.stdout + p.stderr).strip()[:500]}
    problems = plan.get("problems", [])
    if problems or plan.get("blocked"):
        return {"outcome": "blocked",
                "findings": [{k: f.get(k) for k in ("code", "message", "file", "line") if f.get(k) is not None}
                             for f in problems]}
    own = set(want["own_apps"])
    got_unapply = sorted([list(u) for u in plan["unapply"] if u[0] in own])
    got_targets = {s["app"]: s["target"] for s in plan["steps"] if s["app"] in own}
    t = want["truth"]["own"]
    if got_unapply == sorted(t["unapply"]) and got_targets == t["targets"]:
        return {"outcome": "exact", "unapply": len(got_unapply),
                "notes": sorted({n.get("code") for n in plan.get("notes", [])})}
    return {"outcome": "wrong", "got_unapply": got_unapply, "got_targets": got_targets,
            "missing": sorted(map(list, {tuple(u) for u in t["unapply"]} - {tuple(u) for u in got_unapply})),
            "extra": sorted(map(list, {tuple(u) for u in got_unapply} - {tuple(u) for u in t["unapply"]}))}


def run_pair(tagback, repo, app, older, newer, want):
    """Zero-config first; the stored .tagback.yml lines only where the stored
    outcome says tagback blocks and asks for them."""
    zero = classify(tagback_plan(tagback, repo, newer, older), want)
    res = {"zero_config": zero}
    lines = APPS[app].get("config")
    if zero["outcome"] == "blocked" and lines:
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
            f.write(lines)
        try:
            res["with_config"] = classify(tagback_plan(tagback, repo, newer, older, f.name), want)
        finally:
            os.remove(f.name)
    return res


def summary(res):
    z = res["zero_config"]
    s = z["outcome"]
    if s == "blocked":
        s += ":" + ",".join(sorted({f.get("code", "?") for f in z["findings"]}))
    if "with_config" in res:
        s += " / with config: " + res["with_config"]["outcome"]
    return s


def cmd_check(args):
    cache = cache_dir(args)
    repos = {}
    bad = 0
    counts = {}
    for app, older, newer, _ in PAIRS:
        if args.only and app not in args.only:
            continue
        if app not in repos:
            repos[app] = build_repo(app, cache)
        want = load_pair(app, older, newer)
        res = run_pair(args.tagback, repos[app], app, older, newer, want)
        got = summary(res)
        stored = (want.get("tagback") or {}).get("summary")
        final = res.get("with_config", res["zero_config"])["outcome"]
        counts[final] = counts.get(final, 0) + 1
        flag = "ok  "
        if final in ("wrong", "error") or (stored is not None and stored != got):
            flag = "FAIL"
            bad += 1
        print(f"[{flag}] {app} {newer} -> {older}: {got}" + (f" (stored: {stored})" if stored != got else ""), flush=True)
        if flag == "FAIL" or args.verbose:
            print("       " + json.dumps(res)[:1500])
        if args.store:
            want.setdefault("tagback", {})
            want["tagback"]["config_lines"] = APPS[app].get("config") if "with_config" in res else None
            want["tagback"]["summary"] = got
            want["tagback"]["result"] = res
            save_pair(app, older, newer, want)
    print(" ".join(f"{k}={v}" for k, v in sorted(counts.items())) + f"; {bad} failed")
    return 1 if bad else 0


# ------------------------------------------------------------------ replay

def cmd_replay(args):
    import harness  # schema snapshot script and schema comparison, reused

    cache = cache_dir(args)
    host, port = args.postgres.split(":")
    bad = 0
    for spec in args.pairs:
        app, rng = spec.split(":")
        older, newer = rng.split("..")
        cfg = APPS[app]
        want = load_pair(app, older, newer)
        repo = build_repo(app, cache)
        p = tagback_plan(args.tagback, repo, newer, older)
        plan = json.loads(p.stdout)
        if plan.get("problems"):
            lines = APPS[app].get("config")
            with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
                f.write(lines or "")
            plan = json.loads(tagback_plan(args.tagback, repo, newer, older, f.name).stdout)
        tmp = tempfile.mkdtemp(prefix=f"replay-{app}-")

        def db_env(ver, name):
            py = os.path.join(args.venvs, f"{app}-{ver}", "bin", "python")
            env = {k: v.format(tmp=tmp) for k, v in cfg.get("env", {}).items()}
            e = dict(os.environ, DJANGO_SETTINGS_MODULE=cfg["settings"], **env)
            e.update(replay_db_env(app, host, port, name, tmp))
            if cfg.get("pythonpath"):
                site = sh([py, "-c", f"import {cfg['package']}, os; print(os.path.dirname({cfg['package']}.__file__))"]).stdout.strip()
                e["PYTHONPATH"] = os.path.normpath(os.path.join(site, cfg["pythonpath"]))
            return py, e

        def manage(ver, name, *a, check=True):
            py, e = db_env(ver, name)
            code = "import sys; from django.core.management import execute_from_command_line; execute_from_command_line(sys.argv)"
            return run_in(py, ["-c", code, *a], tmp, e, check)

        def snapshot(ver, name):
            py, e = db_env(ver, name)
            out = run_in(py, ["-c", harness.SCHEMA], tmp, e, True).stdout
            return json.loads(out.strip().splitlines()[-1])

        base = f"cp_{app.replace('-', '_')}_{older.replace('.', '_')}_{newer.replace('.', '_')}"
        dn, df = base + "_down", base + "_fresh"
        for d in (dn, df):
            for stmt in (f"DROP DATABASE IF EXISTS {d}", f"CREATE DATABASE {d}"):
                sh(["psql", "-h", host, "-p", port, "-U", "postgres", "-d", "postgres", "-qc", stmt])
        log = []
        manage(newer, dn, "migrate", "--noinput")
        for c in plan["commands"]:
            words = c.split()
            assert words[:3] == ["python", "manage.py", "migrate"], c
            manage(newer, dn, *words[2:], "--noinput")
            log.append(c)
        chk = manage(older, dn, "migrate", "--check", "--noinput", check=False)
        manage(older, df, "migrate", "--noinput")
        got, fresh = snapshot(older, dn), snapshot(older, df)
        to_unapply = {tuple(u) for part in want["truth"].values() for u in part["unapply"]}
        got_rows = {tuple(r) for r in got["rows"]}
        want_rows = {tuple(r) for r in fresh["rows"]}
        missing = sorted(want_rows - got_rows)
        # Rows the older release does not know may remain (a squash's own
        # row); a row of a migration the truth unapplies may not.
        extra = sorted(got_rows & to_unapply)
        diff = harness.schema_diff(got["schema"], fresh["schema"])
        ok = chk.returncode == 0 and not missing and not extra and not diff
        bad += not ok
        want["replay"] = {"postgresql": ok, "commands": log, "migrate_check": chk.returncode,
                          "rows_missing": missing, "rows_extra": extra, "schema_diff": diff,
                          "django": want["django"]}
        save_pair(app, older, newer, want)
        print(f"[{'ok  ' if ok else 'FAIL'}] replay {app} {newer} -> {older}: {len(log)} commands, "
              f"check {chk.returncode}, missing {len(missing)}, extra {len(extra)}, schema {'equal' if not diff else diff[:500]}",
              flush=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if bad else 0


def replay_db_env(app, host, port, name, tmp):
    """Point each application's own settings at the PostgreSQL database."""
    if app == "pretalx":
        cfg = os.path.join(tmp, f"{name}.cfg")
        with open(cfg, "w") as f:
            f.write(f"[database]\nbackend=postgresql\nname={name}\nuser=postgres\nhost={host}\nport={port}\n")
        return {"PRETALX_CONFIG_FILE": cfg}
    if app == "pretix":
        cfg = os.path.join(tmp, f"{name}.cfg")
        with open(cfg, "w") as f:
            f.write(f"[database]\nbackend=postgresql\nname={name}\nuser=postgres\nhost={host}\nport={port}\n")
        return {"PRETIX_CONFIG_FILE": cfg}
    if app == "label-studio":
        return {"DJANGO_DB": "default", "POSTGRE_NAME": name, "POSTGRE_USER": "postgres", "POSTGRE_PASSWORD": "",
                "POSTGRE_PORT": port, "POSTGRE_HOST": host}
    if app == "weblate":
        return {"WEBLATE_CORPUS_DB": name}
    raise RuntimeError(f"no database settings for {app}")


def run_in(py, argv, cwd, env, check):
    p = subprocess.run([py, *argv], cwd=cwd, env=env, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:1] + argv[3:])} failed:\n{p.stderr[-3000:]}")
    return p


# ------------------------------------------------------------------ table

def cmd_table(args):
    print("| app | older → newer | why | to unapply: own / packages | outcome (zero-config) | `.tagback.yml` that unblocks | PG replay |")
    print("|---|---|---|---|---|---|---|")
    for app, older, newer, why in PAIRS:
        w = load_pair(app, older, newer)
        own, pk = len(w["truth"]["own"]["unapply"]), len(w["truth"]["packages"]["unapply"])
        tb = w.get("tagback", {})
        res = tb.get("result", {})
        z = res.get("zero_config", {})
        out = z.get("outcome", "?")
        if out == "blocked":
            out += ": " + ", ".join(sorted({f.get("code", "?") for f in z["findings"]}))
        fix = "—"
        if tb.get("config_lines"):
            fix = "<code>" + tb["config_lines"].strip().replace("\n", "<br>") + "</code> → " + res.get("with_config", {}).get("outcome", "?")
        rp = w.get("replay", {})
        replay = "yes" if rp.get("postgresql") else ("FAILED" if rp else "no")
        print(f"| {app} | {older} → {newer} | {why} | {own} / {pk} | {out} | {fix} | {replay} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("check", "truth", "replay", "table"):
        s = sub.add_parser(name)
        s.add_argument("--cache")
        s.add_argument("--only", nargs="*")
        s.add_argument("--tagback", default=os.path.join(ROOT, "target", "debug", "tagback"))
        s.add_argument("--venvs")
        s.add_argument("--verbose", action="store_true")
        s.add_argument("--store", action="store_true", help="check: store the outcomes in the pair files")
        if name == "replay":
            s.add_argument("--postgres", required=True)
            s.add_argument("pairs", nargs="+")
    args = ap.parse_args()
    return {"check": cmd_check, "truth": cmd_truth, "replay": cmd_replay, "table": cmd_table}[args.cmd](args) or 0


if __name__ == "__main__":
    sys.exit(main())
