//! The plan's stages on small in-memory revisions (no git, no files): each
//! revision is built from migration values and its graph by
//! [`crate::django::graph::build`], as the loader builds it.

use std::collections::BTreeSet;
use std::rc::Rc;
use std::sync::Arc;

use super::*;
use crate::django::graph::{self, AppIndex};
use crate::django::migration::{Dependency, Migration, Operation, Operations};
use crate::django::project::App;
use crate::django::{Files, JudgedOperation, MigrationFile, Project, Revision};
use crate::git::{Snapshot, Source};

/// No app outside the loaded ones has migrations.
struct NoOtherApps;

impl AppIndex for NoOtherApps {
    fn exists(&self, _app: &str, _name: &str) -> crate::error::Result<bool> {
        Ok(false)
    }
}

fn key(dotted: &str) -> MigrationKey {
    MigrationKey::parse_dotted(dotted).unwrap()
}

/// A migration `app.name` depending on `deps` (`app.name` each), squashing
/// `replaces`, with no operations.
fn migration(dotted: &str, deps: &[&str], replaces: &[&str]) -> MigrationFile {
    let k = key(dotted);
    MigrationFile {
        file: format!("{}/migrations/{}.py", k.app, k.name),
        key: k,
        migration: Arc::new(Migration {
            dependencies: deps
                .iter()
                .map(|d| {
                    let d = key(d);
                    Dependency::Key(d.app, d.name)
                })
                .collect(),
            replaces: replaces.iter().map(|r| key(r)).collect(),
            run_before: Vec::new(),
            initial: None,
            operations: Operations::default(),
            dynamic: Vec::new(),
            operations_dynamic: Vec::new(),
        }),
        blob: None,
    }
}

/// A revision installing `apps` (each with its migrations in the repository).
fn revision(label: &str, apps: &[&str], files: Vec<MigrationFile>) -> Revision {
    let project = Project::from_apps(
        "site.settings",
        apps.iter()
            .map(|a| App {
                label: (*a).to_string(),
                name: (*a).to_string(),
                migrations_dir: Some(format!("{a}/migrations")),
                migrations_module: Some(format!("{a}.migrations")),
                label_from_path: false,
            })
            .collect(),
    );
    let files = Files::new(files.into_iter().map(Rc::new).collect());
    let loaded: BTreeSet<String> = apps.iter().map(|a| (*a).to_string()).collect();
    let graph = graph::build(&files, &loaded, &project, label, &NoOtherApps).unwrap();
    Revision {
        snap: Snapshot {
            source: Source::WorkTree,
            label: label.to_string(),
        },
        project,
        files,
        loaded,
        graph,
    }
}

fn pair(newer: Revision, older: Revision) -> Pair {
    Pair {
        newer,
        older,
        unplanned: Vec::new(),
        packages: Vec::new(),
    }
}

/// Stage 2 with every migration to unapply read and holding no operation.
fn plan_without_operations(p: &Pair) -> Plan {
    let d = decide(p);
    let mut read = UnappliedOperations::default();
    for &f in d.files_to_read() {
        read.insert(f, Ok(Vec::new()));
    }
    finish(p, d, &read)
}

fn to_read(p: &Pair, d: &Decision<'_>) -> Vec<String> {
    d.files_to_read()
        .iter()
        .map(|f| p.newer.files.at(*f).key.to_string())
        .collect()
}

fn shop(n: usize) -> Vec<MigrationFile> {
    let names = [
        "shop.0001_initial",
        "shop.0002_sku",
        "shop.0003_code",
        "shop.0004_badge",
    ];
    (0..n)
        .map(|i| {
            let deps: Vec<&str> = if i == 0 { vec![] } else { vec![names[i - 1]] };
            migration(names[i], &deps, &[])
        })
        .collect()
}

#[test]
fn what_to_unapply_is_what_the_older_revision_lacks_newest_first() {
    let p = pair(
        revision("v2", &["shop"], shop(4)),
        revision("v1", &["shop"], shop(2)),
    );
    let d = decide(&p);
    assert_eq!(to_read(&p, &d), ["shop.0004_badge", "shop.0003_code"]);
    assert!(d.problems().is_empty(), "{:?}", d.problems());
    let plan = plan_without_operations(&p);
    assert_eq!(plan.commands, ["python manage.py migrate shop 0002_sku"]);
    assert_eq!(
        plan.keep_applied,
        [key("shop.0001_initial"), key("shop.0002_sku")]
    );
}

#[test]
fn nothing_new_is_an_empty_plan() {
    let p = pair(
        revision("v2", &["shop"], shop(2)),
        revision("v1", &["shop"], shop(2)),
    );
    let plan = plan_without_operations(&p);
    assert!(!plan.needs_backward_migrations());
    assert!(plan.steps.is_empty() && plan.commands.is_empty());
}

#[test]
fn an_app_without_migrations_in_the_older_revision_targets_zero() {
    let mut newer = shop(2);
    newer.push(migration("blog.0001_initial", &[], &[]));
    let p = pair(
        revision("v2", &["shop", "blog"], newer),
        revision("v1", &["shop", "blog"], shop(2)),
    );
    let plan = plan_without_operations(&p);
    assert_eq!(plan.commands, ["python manage.py migrate blog zero"]);
}

#[test]
fn command_order_unapplies_dependents_in_other_apps_first() {
    // blog.0002 depends on shop.0003: both are new.
    let mut newer = shop(3);
    newer.push(migration("blog.0001_initial", &[], &[]));
    newer.push(migration(
        "blog.0002_link",
        &["blog.0001_initial", "shop.0003_code"],
        &[],
    ));
    let mut older = shop(2);
    older.push(migration("blog.0001_initial", &[], &[]));
    let p = pair(
        revision("v2", &["shop", "blog"], newer),
        revision("v1", &["shop", "blog"], older),
    );
    let plan = plan_without_operations(&p);
    assert_eq!(plan.unapply, [key("blog.0002_link"), key("shop.0003_code")]);
    // Whatever the order, the union of what the commands unapply is exactly the set.
    let unapplied: usize = plan.steps.iter().map(|s| s.unapply().len()).sum();
    assert_eq!(unapplied, 2, "{:?}", plan.steps);
    assert!(plan.problems.is_empty(), "{:?}", plan.problems);
}

#[test]
fn findings_come_from_the_operations_read_for_the_decision() {
    let p = pair(
        revision("v2", &["shop"], shop(3)),
        revision("v1", &["shop"], shop(2)),
    );
    let d = decide(&p);
    let [f] = d.files_to_read() else {
        panic!("one migration to read: {:?}", to_read(&p, &d));
    };
    let op = |kind: &str, line, reversibility, data_loss: Option<&str>| JudgedOperation {
        operation: Operation {
            kind: kind.to_string(),
            line,
            reversibility: Reversibility::Reversible,
            reason: None,
            data_loss: data_loss.map(str::to_string),
            custom: None,
        },
        reversibility,
        reason: None,
    };
    let mut read = UnappliedOperations::default();
    read.insert(
        *f,
        Ok(vec![
            op(
                "AddField",
                7,
                Reversibility::Reversible,
                Some("drops column shop_order.code"),
            ),
            op("RunPython", 9, Reversibility::Irreversible, None),
        ]),
    );
    let plan = finish(&p, d, &read);
    assert_eq!(plan.data_loss.len(), 1);
    assert_eq!(plan.data_loss[0].line, 7);
    assert_eq!(plan.irreversible.len(), 1);
    assert_eq!(plan.irreversible[0].operation, "RunPython");
    assert_eq!(
        plan.irreversible[0].message,
        "RunPython in shop.0003_code (shop/migrations/0003_code.py:9) cannot be unapplied"
    );
}

#[test]
fn operations_that_were_not_read_are_a_problem_never_an_empty_list() {
    let p = pair(
        revision("v2", &["shop"], shop(3)),
        revision("v1", &["shop"], shop(2)),
    );
    let d = decide(&p);
    let plan = finish(&p, d, &UnappliedOperations::default());
    assert_eq!(plan.problems.len(), 1, "{:?}", plan.problems);
    assert_eq!(plan.problems[0].code, Code::UnreadableOperations);
    assert!(plan.is_blocked());
}

#[test]
fn old_only_apps_are_listed_with_their_older_leaf() {
    let mut older = shop(2);
    older.push(migration("legacy.0001_initial", &[], &[]));
    let p = pair(
        revision("v2", &["shop"], shop(2)),
        revision("v1", &["shop", "legacy"], older),
    );
    let plan = plan_without_operations(&p);
    assert_eq!(
        plan.old_only_apps,
        [OldOnlyApp {
            app: "legacy".into(),
            leaf: "0001_initial".into()
        }]
    );
    assert_eq!(plan.post_commands, ["python manage.py migrate legacy"]);
}

#[test]
fn a_squash_over_the_older_leaf_is_unapplied_inside_by_its_old_leaf() {
    // The squash stands for the older leaf and a newer migration: Django's
    // executor stops inside it when the target is the replaced leaf.
    let mut newer = shop(3);
    newer.push(migration(
        "shop.0001_squashed_0003",
        &[],
        &["shop.0001_initial", "shop.0002_sku", "shop.0003_code"],
    ));
    let p = pair(
        revision("v2", &["shop"], newer),
        revision("v1", &["shop"], shop(2)),
    );
    let d = decide(&p);
    assert!(d.problems().is_empty(), "{:?}", d.problems());
    assert_eq!(to_read(&p, &d), ["shop.0003_code"]);
    let plan = plan_without_operations(&p);
    assert_eq!(plan.commands, ["python manage.py migrate shop 0002_sku"]);
    assert_eq!(
        plan.squashes.keys().collect::<Vec<_>>(),
        [&key("shop.0001_squashed_0003")]
    );
}
