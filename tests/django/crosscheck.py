#!/usr/bin/env python3
"""Cross-check tagback's static reading against Django's own MigrationLoader
on real code: Django's contrib apps and several hundred migration files of
packages from PyPI (wagtail, django-allauth, django-taggit,
django-oauth-toolkit, django-celery-beat, django-filer).

The packages' sources are committed into a git repository with a settings
module installing their apps; `tagback graph` reads it from git objects and
must report, for every migration, the same dependencies, replaces and
run_before as the MigrationLoader, and the same leaves per app.

Usage: crosscheck.py --tagback BIN --python PY --work DIR
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

PACKAGES = ["wagtail", "django-allauth", "django-taggit", "django-oauth-toolkit", "django-celery-beat", "django-filer"]

APPS = [
    "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
    "django.contrib.sites", "django.contrib.flatpages", "django.contrib.redirects", "django.contrib.messages",
    "wagtail.contrib.forms", "wagtail.contrib.redirects", "wagtail.contrib.settings",
    "wagtail.contrib.search_promotions", "wagtail.embeds", "wagtail.sites", "wagtail.users", "wagtail.snippets",
    "wagtail.documents", "wagtail.images", "wagtail.search", "wagtail.admin", "wagtail.locales", "wagtail",
    "modelcluster", "taggit",
    "allauth", "allauth.account", "allauth.socialaccount", "allauth.mfa", "allauth.usersessions",
    "oauth2_provider", "django_celery_beat", "easy_thumbnails", "filer",
]

LOADER = r'''
import json, os, sys
import django
django.setup()
from django.db.migrations.loader import MigrationLoader
loader = MigrationLoader(None, ignore_no_migrations=True)
out = {"migrations": {}, "leaves": {}}
for (app, name), m in loader.disk_migrations.items():
    out["migrations"][f"{app}.{name}"] = {
        "dependencies": sorted([list(d) for d in m.dependencies]),
        "replaces": sorted([list(r) for r in m.replaces]),
        "run_before": sorted([list(r) for r in m.run_before]),
    }
for app, name in loader.graph.leaf_nodes():
    out["leaves"].setdefault(app, []).append(name)
print(json.dumps(out))
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tagback", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    work = os.path.abspath(a.work)
    venv = os.path.join(work, "venv")
    if not os.path.exists(os.path.join(venv, ".ready")):
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", "Django==5.2.*", *PACKAGES], check=True)
        open(os.path.join(venv, ".ready"), "w").close()
    py = os.path.join(venv, "bin", "python")
    site = subprocess.run([py, "-c", "import django, os; print(os.path.dirname(os.path.dirname(django.__file__)))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    repo = os.path.join(work, "repo")
    shutil.rmtree(repo, ignore_errors=True)
    os.makedirs(repo)
    tops = sorted({app.split(".")[0] for app in APPS} | {"django"})
    for top in tops:
        src = os.path.join(site, top)
        shutil.copytree(src, os.path.join(repo, top), ignore=lambda d, fs: [f for f in fs if not (f.endswith(".py") or os.path.isdir(os.path.join(d, f))) or f == "__pycache__"])
    os.makedirs(os.path.join(repo, "proj"))
    open(os.path.join(repo, "proj", "__init__.py"), "w").close()
    with open(os.path.join(repo, "proj", "settings.py"), "w") as f:
        f.write(f'SECRET_KEY = "x"\nSITE_ID = 1\nSTATIC_URL = "/static/"\nUSE_TZ = True\nMIDDLEWARE = ["allauth.account.middleware.AccountMiddleware"]\nINSTALLED_APPS = {APPS!r}\n'
                'DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}\n')
    with open(os.path.join(repo, "manage.py"), "w") as f:
        f.write('import os\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")\n')
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@e", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@e")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "packages"], cwd=repo, env=env, check=True)

    settings_dir = os.path.join(work, "settings")
    shutil.rmtree(settings_dir, ignore_errors=True)
    shutil.copytree(os.path.join(repo, "proj"), os.path.join(settings_dir, "proj"))
    loaded = subprocess.run([py, "-c", LOADER], cwd=work, capture_output=True, text=True,
                            env=dict(os.environ, DJANGO_SETTINGS_MODULE="proj.settings", PYTHONPATH=settings_dir))
    if loaded.returncode != 0:
        print(f"Django's MigrationLoader failed: {loaded.stderr[-2000:]}")
        sys.exit(1)
    django_view = json.loads(loaded.stdout)
    tb = subprocess.run([a.tagback, "graph", "--repo", repo, "--rev", "HEAD"], capture_output=True, text=True)
    if tb.returncode != 0:
        print(f"tagback graph failed: {tb.stderr}")
        sys.exit(1)
    ours = json.loads(tb.stdout)
    failures = []
    dynamic = []
    dj, tg = django_view["migrations"], ours["migrations"]
    for key in sorted(set(dj) | set(tg)):
        if key not in tg:
            failures.append(f"{key}: Django loads it, tagback does not")
            continue
        if key not in dj:
            failures.append(f"{key}: tagback reads it, Django does not load it")
            continue
        for field in ("dependencies", "replaces", "run_before"):
            want = sorted(map(list, dj[key][field]))
            got = sorted(map(list, tg[key][field]))
            if want != got:
                if field == "dependencies" and tg[key]["dynamic"]:
                    # A documented limitation: tagback says it cannot read this exactly.
                    dynamic.append(f"{key}: {'; '.join(tg[key]['dynamic'])}")
                    continue
                failures.append(f"{key} {field}: Django {want}, tagback {got}")
    for app in sorted(set(django_view["leaves"]) | set(ours["leaves"])):
        want = sorted(django_view["leaves"].get(app, []))
        got = sorted(ours["leaves"].get(app, []))
        if app in ours["leaves"] and want != got:
            failures.append(f"leaves of {app}: Django {want}, tagback {got}")
    apps = len({k.split(".")[0] for k in dj})
    print(f"cross-check: {len(dj)} migrations of {apps} apps read by Django's MigrationLoader; "
          f"{len(tg)} read by tagback from git; {len(failures)} difference(s)")
    print(f"{len(dynamic)} migration(s) differ where tagback reports them as dynamic (conservative):")
    for d in dynamic:
        print(f"  dynamic {d}")
    for f in failures[:50]:
        print(f"  DIFF {f}")
    sys.exit(1 if failures or len(dj) < 300 else 0)


if __name__ == "__main__":
    main()
