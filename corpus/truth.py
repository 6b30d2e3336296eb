#!/usr/bin/env python3
"""Django's truth for a pair of revisions (../docs: design, "Django's truth").

Two steps, so that each revision is loaded by its own venv:

  truth.py graph  > N.json   # run by revision N's python, in N's checkout,
                             # with DJANGO_SETTINGS_MODULE set (and sys.path)
  truth.py pair N.json O.json > pair.json   # any python, no Django

`graph` dumps what Django's MigrationLoader(None, ignore_no_migrations=True)
sees: every disk migration (dependencies, replaces), the graph's nodes (a squash
in place of what it replaces) with their parents, and the leaves per app.

`pair` applies the rules: what O knows, what to unapply, the per-app target,
and whether the per-app `migrate APP TARGET` commands unapply exactly that set
on N's graph (Django's executor: every descendant of the target's children in
its app, or of the app's roots for `zero`). When they do not (new migrations
branching off old non-leaf migrations), `per_app_exact` is false and
`unreachable` lists what no per-app target can reach without also unapplying
migrations O knows.
"""

import json
import sys


def dump_graph():
    import django

    django.setup()
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(None, ignore_no_migrations=True)
    disk = {}
    for (app, name), m in loader.disk_migrations.items():
        disk[f"{app}.{name}"] = {
            "dependencies": sorted([list(d) for d in m.dependencies]),
            "replaces": sorted([list(r) for r in m.replaces]),
        }
    nodes = {}
    for key, node in loader.graph.node_map.items():
        nodes[f"{key[0]}.{key[1]}"] = sorted(f"{p.key[0]}.{p.key[1]}" for p in node.parents)
    leaves = {}
    for app, name in loader.graph.leaf_nodes():
        leaves.setdefault(app, []).append(name)
    import django as dj

    json.dump({"django": dj.get_version(), "disk": disk, "nodes": nodes, "leaves": leaves}, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


def split(key):
    app, _, name = key.partition(".")
    return app, name


def expand(key, disk, seen=None):
    """The migrations a squash stands for, nested squashes expanded."""
    seen = seen or set()
    out = set()
    for app, name in disk.get(key, {}).get("replaces", []):
        k = f"{app}.{name}"
        if k in seen:
            continue
        seen.add(k)
        out.add(k)
        out |= expand(k, disk, seen)
    return out


def pair(newer, older):
    n_disk, o_disk = newer["disk"], older["disk"]
    known = set(o_disk)
    for m in o_disk.values():
        known |= {f"{a}.{b}" for a, b in m["replaces"]}
    unapply = set()
    for key in newer["nodes"]:
        if key in known:
            continue
        stands_for = expand(key, n_disk)
        if stands_for and stands_for <= known:
            continue
        if stands_for and stands_for & known:
            # Only the unknown part: the replaced migrations O lacks.
            unapply |= {k for k in stands_for - known if not n_disk.get(k, {}).get("replaces")}
            continue
        unapply.add(key)

    targets = {}
    ambiguous = {}
    for app in sorted({split(k)[0] for k in unapply}):
        leaves = older["leaves"].get(app, [])
        if not leaves:
            targets[app] = "zero"
            continue
        if len(leaves) > 1:
            ambiguous[app] = sorted(leaves)
            continue
        leaf = f"{app}.{leaves[0]}"
        target = leaves[0]
        for key in newer["nodes"]:
            stands_for = expand(key, n_disk)
            if split(key)[0] == app and leaf in stands_for and stands_for <= known:
                target = split(key)[1]
        targets[app] = target

    # What Django's executor unapplies for each `migrate APP TARGET`, on N's
    # graph with everything applied.
    children = {k: set() for k in newer["nodes"]}
    for k, parents in newer["nodes"].items():
        for p in parents:
            children.setdefault(p, set()).add(k)

    def descendants(start):
        out, todo = set(), [start]
        while todo:
            k = todo.pop()
            if k in out:
                continue
            out.add(k)
            todo.extend(children.get(k, ()))
        return out

    reached = set()
    for app, target in targets.items():
        if target == "zero":
            starts = [k for k in newer["nodes"] if split(k)[0] == app]
        else:
            t = f"{app}.{target}"
            starts = [c for c in children.get(t, ()) if split(c)[0] == app] if t in newer["nodes"] else []
        for s in starts:
            reached |= descendants(s)
    per_app_exact = reached == unapply and not ambiguous
    return {
        "django": {"newer": newer.get("django"), "older": older.get("django")},
        "unapply": sorted([list(split(k)) for k in unapply]),
        "targets": targets,
        "ambiguous": ambiguous,
        "per_app_exact": per_app_exact,
        "unreachable": sorted([list(split(k)) for k in unapply - reached]),
        "overreach": sorted([list(split(k)) for k in reached - unapply]),
    }


def main():
    if sys.argv[1:2] == ["graph"]:
        dump_graph()
    elif sys.argv[1:2] == ["pair"] and len(sys.argv) == 4:
        newer, older = (json.load(open(p)) for p in sys.argv[2:4])
        json.dump(pair(newer, older), sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
