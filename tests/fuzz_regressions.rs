//! Every input a fuzz target ever crashed on (fuzz/regressions/TARGET/), and
//! the seeds, replayed through the same entry points (`tagback::fuzzing`).
// See: issue 15, item 10.

use std::path::{Path, PathBuf};

use tagback::fuzzing;

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("stack_file", fuzzing::stack_file),
    ("interpolation", fuzzing::interpolation),
    ("image_reference", fuzzing::image_reference),
    ("tags", fuzzing::tags),
    ("migration", fuzzing::migration),
    ("settings", fuzzing::settings),
    ("evidence", fuzzing::evidence),
    ("hook_stdin", fuzzing::hook_stdin),
    ("cache_file", fuzzing::cache_file),
];

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

fn replay(kind: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind);
    let mut n = 0;
    for (name, target) in TARGETS {
        for f in files(&root.join(name)) {
            let data = std::fs::read(&f).unwrap();
            let result = std::panic::catch_unwind(|| target(&data));
            assert!(
                result.is_ok(),
                "fuzz target {name} panics on {}",
                f.display()
            );
            n += 1;
        }
    }
    n
}

/// Run `target` on every file of `dir` (relative to the package root).
fn feed(target: Target, dir: &str, ends_with: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let inputs: Vec<PathBuf> = files(&root.join(dir))
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(ends_with))
        .collect();
    for f in &inputs {
        target(&std::fs::read(f).unwrap());
    }
    inputs.len()
}

#[test]
fn fuzz_seeds_run_through_every_target() {
    replay("seeds");
    // The fixtures fuzz/run.sh seeds the other targets with.
    assert!(feed(fuzzing::stack_file, "fixtures/stack", ".yml") >= 2);
    assert!(
        feed(
            fuzzing::migration,
            "fixtures/demo/v2/shop/migrations",
            ".py"
        ) >= 4
    );
    assert!(feed(fuzzing::migration, "fixtures/django/err", ".py") >= 3);
    assert!(
        feed(
            fuzzing::settings,
            "fixtures/demo/v2/shopsite",
            "settings.py"
        ) == 1
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    for (name, _) in TARGETS {
        let seeded = root.join(name).is_dir();
        assert!(
            seeded || ["stack_file", "migration"].contains(name),
            "fuzz target {name} has no seeds"
        );
    }
}

#[test]
fn fuzz_regressions_never_panic() {
    replay("regressions");
}

#[test]
fn fuzz_targets_are_all_listed() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/Cargo.toml"))
            .unwrap();
    for (name, _) in TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "{name} is not a fuzz target in fuzz/Cargo.toml"
        );
    }
    assert_eq!(manifest.matches("[[bin]]").count(), TARGETS.len());
}
