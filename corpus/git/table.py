#!/usr/bin/env python3
"""Print the markdown table of every stored corpus pair (corpus/git/*/*.json)
and the outcome counts; README.md carries its output."""

import glob
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def version_key(tag):
    return [int(x) if x.isdigit() else x for x in tag.lstrip("v").replace("-", ".").split(".")]


def main():
    rows = []
    for f in glob.glob(os.path.join(HERE, "*", "*.json")):
        rows.append(json.load(open(f)))
    rows.sort(key=lambda r: (r["project"], version_key(r["newer"]["tag"]), version_key(r["older"]["tag"])))
    print("| project | older → newer | Django | unapply own / packages | outcome | PG replay |")
    print("| --- | --- | --- | --- | --- | --- |")
    counts = {}
    for r in rows:
        t = r["tagback"]
        own, pkg = len(r["truth"]["own"]["unapply"]), len(r["truth"]["packages"]["unapply"])
        outcome = t["outcome"]
        if outcome == "blocked":
            codes = sorted({f["code"] for f in t["problems"] + t["dynamic"]}) or [t["why"][0][:60]]
            outcome = "blocked: " + ", ".join(codes)
        if t["irreversible"]:
            outcome += f" ({len(t['irreversible'])} irreversible operation(s) reported)"
        key = t["outcome"]
        if r.get("zero_config"):
            z = r["zero_config"]
            why = z["why"][0] if z["why"] else ""
            if "DJANGO_SETTINGS_MODULE" in why:
                code = "no DJANGO_SETTINGS_MODULE in manage.py"
            else:
                # The message's first clause: file, revision, line, what.
                code = why.split("error: ", 1)[-1].split(", and ")[0].split("; ")[0]
            text = r["tagback_yml"].strip()
            if len(text) > 160:
                # A long list: its key, the lines themselves are in the JSON.
                text = text[:text.index("[") + 1] + "…]"
                where = " (all of it: `tagback_yml` in the pair's JSON)"
            else:
                where = ""
            yml = text.replace("\n", "<br>").replace(" ", "&nbsp;")
            outcome = f"zero-config blocked ({code}); with <code>{yml}</code>{where}: {outcome}"
            key = f"blocked zero-config, {t['outcome']} with .tagback.yml"
        counts[key] = counts.get(key, 0) + 1
        rp = r.get("replay")
        replay = "no" if not rp else ("yes, equal" if rp["ok"] else "yes, FAILED")
        dj = r["older"]["django"] if r["older"]["django"] == r["newer"]["django"] else \
            f"{r['older']['django']} → {r['newer']['django']}"
        print(f"| {r['project']} | {r['older']['tag']} → {r['newer']['tag']} | {dj} | {own} / {pkg} | {outcome} | {replay} |")
    print()
    print(f"{len(rows)} pairs: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) + ".")


if __name__ == "__main__":
    main()
