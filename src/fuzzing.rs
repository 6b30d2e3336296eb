//! Entry points for the cargo-fuzz targets under `fuzz/` (one per parser fed
//! user input). Each takes raw bytes, must never panic, and is also called by
//! the regression tests that replay every crash the fuzzers found.

use crate::django::{self, ProjectOptions, project};
use crate::git::Repo;
use crate::stack;

/// The bytes as text, lossily (every parser below reads text).
fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// A stack/compose file.
pub fn stack_file(data: &[u8]) {
    let _ = stack::compose::parse(&text(data));
}

/// `${VAR}` interpolation, with a fixed environment, and `.env` files.
pub fn interpolation(data: &[u8]) {
    let t = text(data);
    let lookup = |name: &str| match name {
        "TAG" => Some("1.2.3".to_string()),
        "EMPTY" => Some(String::new()),
        _ => None,
    };
    let _ = stack::interpolate::interpolate(&t, &lookup);
    let _ = stack::interpolate::parse_dotenv(&t);
}

/// An image reference: parse, print back, parse again (must agree).
pub fn image_reference(data: &[u8]) {
    if let Ok(image) = stack::ImageRef::parse(&text(data)) {
        let again = stack::ImageRef::parse(&image.to_string())
            .unwrap_or_else(|e| panic!("{image} does not parse back: {e}"));
        assert_eq!(image, again, "round trip of an image reference");
        let _ = image.effective_tag();
    }
}

/// Two tags (split at the first newline): their order must be antisymmetric.
pub fn tags(data: &[u8]) {
    let t = text(data);
    let (a, b) = t.split_once('\n').unwrap_or((&t, "1.0"));
    let ab = stack::tag_order::compare(a, b);
    let ba = stack::tag_order::compare(b, a);
    assert_eq!(ab, ba.map(std::cmp::Ordering::reverse), "{a:?} vs {b:?}");
    if ab.is_none() {
        let _ = stack::tag_order::why_not_comparable(a, b);
    }
}

/// A migration file, as the Python migration reader reads it; the fast
/// reader must read it as the full parser does, or leave it to the parser.
pub fn migration(data: &[u8]) {
    let t = text(data);
    if let Err(e) = django::migration::check_graph_reading(&t, "shop") {
        panic!("{e}");
    }
    if let Err(e) = django::python::check_fast_reader(&t) {
        panic!("{e}");
    }
}

/// A settings module, read through a real (temporary) project on disk.
pub fn settings(data: &[u8]) {
    thread_local! {
        static PROJECT: (tempfile::TempDir, Repo) = {
            let dir = tempfile::tempdir().expect("temporary directory");
            git2::Repository::init(dir.path()).expect("git init");
            std::fs::write(
                dir.path().join("manage.py"),
                "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')\n",
            )
            .expect("manage.py");
            std::fs::create_dir_all(dir.path().join("proj")).expect("proj/");
            std::fs::write(dir.path().join("proj/__init__.py"), "").expect("proj/__init__.py");
            let repo = Repo::open(dir.path()).expect("open the repository");
            (dir, repo)
        };
    }
    PROJECT.with(|(dir, repo)| {
        if std::fs::write(dir.path().join("proj/settings.py"), data).is_err() {
            return;
        }
        let snap = repo.worktree_snapshot();
        let memo = project::Resolutions::default();
        let _ = project::load_shared(
            &crate::source::GitRevision::new(repo, &snap),
            &ProjectOptions::default(),
            &memo,
            None,
        );
    });
}

/// Evidence and records: `showmigrations` output, a ledger record file
/// (with its embedded evidence and signature), `trusted_keys:` lines.
pub fn evidence(data: &[u8]) {
    use crate::ledger::{self, trust};
    let t = text(data);
    let _ = ledger::evidence::parse_showmigrations(&t);
    if let Ok(ledger::Stored::Current(record)) = ledger::parse_record(&t, "fuzz.json", "fuzz") {
        let key = |n: &str| crate::django::MigrationKey::new("shop", n);
        let plan = crate::plan::Plan {
            unapply: vec![key("0002_b")],
            keep_applied: vec![key("0001_a")],
            squashes: [(key("0001_a"), vec![key("0001_x")])].into(),
            ..Default::default()
        };
        let _ = record.evidence.proves(&plan);
        if let Some(sig) = &record.signature {
            let _ = trust::verify(&[], &record.signed_message(), sig);
        }
    }
    let lines: Vec<String> = t.lines().map(str::to_string).collect();
    if let Ok(keys) = trust::parse_trusted_keys(&lines) {
        let _ = trust::verify(&keys, data, &t);
    }
}

/// The pre-push hook's standard input.
pub fn hook_stdin(data: &[u8]) {
    let _ = crate::git::hook::parse_pre_push(&text(data));
}

/// Every file format of the parse cache.
pub fn cache_file(data: &[u8]) {
    django::cache::decode_any(&text(data));
}
