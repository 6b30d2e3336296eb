# tagback: unapply exactly the planned migrations with the executor of Django itself.
# No per-app "migrate APP TARGET" can: some of them hang off old migrations
# that must stay applied. Run with the newer code (manage.py shell -c).
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader

# Children before parents: the order Django unapplies them in.
ORDER = [__ORDER__]
# Stay applied: what the planned migrations hang off.
KEEP = [__KEEP__]


def tagback_names(keys):
    return ", ".join("%s.%s" % k for k in keys)


def tagback_progress(action, migration=None, fake=False):
    if action == "unapply_start":
        print("  Unapplying %s.%s..." % (migration.app_label, migration.name), end="", flush=True)
    elif action == "unapply_success":
        print(" OK", flush=True)


def tagback_unapply_exactly():
    executor = MigrationExecutor(connection, progress_callback=tagback_progress)
    loader = executor.loader
    graph = loader.graph
    loader.check_consistent_history(connection)
    if loader.detect_conflicts():
        raise CommandError("tagback: this code has conflicting migrations; refusing")
    unknown = [k for k in ORDER + KEEP if k not in graph.nodes]
    if unknown:
        raise CommandError(
            "tagback: the migration graph of this code has no %s (not the code the plan was made for, "
            "or a squash only partly applied); refusing, nothing was changed" % tagback_names(unknown)
        )
    applied = loader.applied_migrations
    lost = [k for k in KEEP if k not in applied]
    if lost:
        raise CommandError("tagback: %s should be applied and is not; refusing, nothing was changed" % tagback_names(lost))
    todo = [k for k in ORDER if k in applied]
    if len(todo) < len(ORDER):
        print("tagback: %d of %d planned migration(s) are already unapplied (an earlier run)" % (len(ORDER) - len(todo), len(ORDER)))
    position = {k: i for i, k in enumerate(todo)}
    for k in todo:
        for child in sorted(graph.node_map[k].children):
            child = child.key
            if child in applied and position.get(child, len(todo)) > position[k]:
                raise CommandError(
                    "tagback: %s.%s depends on %s.%s and would stay applied; the planned order is not valid "
                    "for this database; refusing, nothing was changed" % (child + k)
                )
    if todo:
        print("tagback: unapplying %d migration(s) with the MigrationExecutor of Django: %s" % (len(todo), tagback_names(todo)))
        executor.migrate(KEEP, plan=[(graph.nodes[k], True) for k in todo])
    after = MigrationLoader(connection).applied_migrations
    still = [k for k in ORDER if k in after]
    lost = [k for k in KEEP if k not in after]
    if still or lost:
        raise CommandError(
            "tagback: after unapplying, still applied: %s; no longer applied: %s"
            % (tagback_names(still) or "none", tagback_names(lost) or "none")
        )
    print("tagback: verified with the recorder: %d planned migration(s) unapplied, %d kept applied" % (len(ORDER), len(KEEP)))


tagback_unapply_exactly()
