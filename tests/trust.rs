//! Issue 15: records that cannot be forged (evidence re-verified by the gate,
//! optional SSH signatures), checked with the real `ssh-keygen`.
// See: issue 15, items 2, 4 and 9.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{STACK, TestRepo, shop_repo};
use predicates::prelude::*;

const EVIDENCE_AFTER: &str = "members\n [X] 0001_initial\n [ ] 0002_badge\n [ ] 0003_normalize_nicknames\nshop\n [X] 0001_initial\n [X] 0002_product_sku\n [ ] 0003_order_badge\n [ ] 0004_order_code\n";

/// The shop repository with a commit that rolls `web` back from 2 to 1.
fn downgraded() -> TestRepo {
    let mut r = shop_repo();
    r.write("stack.yml", STACK.replace("TAG", "1"));
    r.commit("roll back web", None);
    r
}

fn gate(r: &TestRepo, from: &str) -> assert_cmd::assert::Assert {
    r.tagback()
        .args(["gate", "--from", from, "--to", "HEAD"])
        .assert()
}

fn plan_fingerprint(r: &TestRepo) -> String {
    let plan = r.run_json(
        &[
            "plan", "--repo", ".", "--from", "v2", "--to", "v1", "--format", "json",
        ],
        0,
    );
    plan["fingerprint"].as_str().unwrap().to_string()
}

fn record_file(r: &TestRepo) -> PathBuf {
    let dir = r.path().join(".tagback/records");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(files.len(), 1, "one record in {}", dir.display());
    files.remove(0)
}

#[test]
fn r15_hand_written_record_without_evidence_does_not_count() {
    let mut r = downgraded();
    let fingerprint = plan_fingerprint(&r);
    // As written by hand on the old format: no evidence, a zero digest.
    r.write(
        ".tagback/records/hand.json",
        serde_json::json!({
            "version": 1, "service": "web",
            "from_image": "registry.example.com:5000/shop:2",
            "to_image": "registry.example.com:5000/shop:1",
            "from_rev": "v2", "to_rev": "v1", "fingerprint": fingerprint,
            "unapplied": [], "recorded_at": "2026-01-01T00:00:00Z",
            "recorded_by": "me", "evidence_kind": "showmigrations",
            "evidence_sha256": "0".repeat(64),
        })
        .to_string(),
    );
    r.commit("forged record", None);
    gate(&r, "HEAD~2")
        .code(1)
        .stdout(predicate::str::contains("embeds no evidence"))
        .stdout(predicate::str::contains("tagback record --service web"));
}

#[test]
fn r15_record_whose_evidence_does_not_prove_the_plan_does_not_count() {
    let mut r = downgraded();
    r.write("after.txt", EVIDENCE_AFTER);
    r.tagback()
        .args(["record", "--from", "HEAD~1", "--to", "HEAD"])
        .args(["--service", "web", "--evidence", "after.txt"])
        .assert()
        .code(0);
    r.remove("after.txt");
    let path = record_file(&r);
    let genuine = std::fs::read_to_string(&path).unwrap();
    let mut record: serde_json::Value = serde_json::from_str(&genuine).unwrap();
    assert_eq!(record["version"], 2);
    let lines = record["evidence"]["lines"].as_array().unwrap().clone();
    assert!(
        lines.iter().any(|l| l == "[ ] shop.0004_order_code"),
        "evidence embedded: {lines:?}"
    );
    r.commit("record", None);
    gate(&r, "HEAD~2").code(0);

    let rel = path
        .strip_prefix(r.path())
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    type Forge = Box<dyn Fn(&mut serde_json::Value)>;
    let forgeries: [(&str, Forge); 4] = [
        (
            "does not prove the plan ran (shop.0004_order_code is still applied)",
            Box::new(|v| {
                let lines = v["evidence"]["lines"].as_array_mut().unwrap();
                for l in lines.iter_mut() {
                    *l = l.as_str().unwrap().replace("[ ]", "[X]").into();
                }
            }),
        ),
        (
            "missing from the evidence",
            Box::new(|v| v["evidence"]["lines"] = serde_json::json!(["[X] shop.0001_initial"])),
        ),
        (
            "lists 0 unapplied migration(s) but the plan unapplies 4",
            Box::new(|v| v["unapplied"] = serde_json::json!([])),
        ),
        (
            "unknown evidence kind",
            Box::new(|v| v["evidence"]["kind"] = "trust me".into()),
        ),
    ];
    for (why, forge) in forgeries {
        let mut forged = record.clone();
        forge(&mut forged);
        r.write(&rel, forged.to_string());
        r.commit("edit the record", None);
        gate(&r, "HEAD~3")
            .code(1)
            .stdout(predicate::str::contains(why));
        r.git(&["reset", "-q", "--hard", "HEAD~1"]);
    }
    record["signature"] = "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----".into();
    r.write(&rel, record.to_string());
    r.commit("a signature nobody asked for", None);
    gate(&r, "HEAD~3").code(0);
}

/// `ssh-keygen` as the tests run it (skipped, loudly, when absent).
fn ssh_keygen() -> Option<Command> {
    let found = Command::new("ssh-keygen").arg("-?").output().is_ok();
    if !found {
        eprintln!("ssh-keygen not installed: signature interop NOT tested");
    }
    found.then(|| Command::new("ssh-keygen"))
}

/// A fresh ed25519 key pair in `dir`; returns the private key path and the
/// public key line.
fn keypair(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let out = ssh_keygen()
        .unwrap()
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public.trim().to_string())
}

/// The message a record's signature covers, computed the documented way
/// (compact JSON, sorted keys, without `signature`) by Python, not by tagback.
fn signed_message(record: &Path) -> Vec<u8> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json,sys; r=json.load(open(sys.argv[1])); r.pop('signature', None); sys.stdout.write(json.dumps(r, sort_keys=True, separators=(',', ':'), ensure_ascii=False))",
        ])
        .arg(record)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn r15_trusted_keys_only_records_signed_by_one_of_them_count() {
    if ssh_keygen().is_none() {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    let (alice, alice_pub) = keypair(keys.path(), "alice");
    let (mallory, mallory_pub) = keypair(keys.path(), "mallory");
    let mut r = shop_repo();
    r.write(
        ".tagback.yml",
        format!("trusted_keys:\n  - \"alice@example.com {alice_pub}\"\n"),
    );
    r.commit("trust alice", None);
    // The change adds mallory's key and a downgrade: keys come from the
    // deployed revision, so mallory's signature does not count.
    r.write(
        ".tagback.yml",
        format!(
            "trusted_keys:\n  - \"alice@example.com {alice_pub}\"\n  - \"mallory@example.com {mallory_pub}\"\n"
        ),
    );
    r.write("stack.yml", STACK.replace("TAG", "1"));
    r.write("after.txt", EVIDENCE_AFTER);
    let record = ["record", "--service", "web", "--evidence", "after.txt"];
    r.tagback()
        .args(record)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--sign-key"));
    r.tagback()
        .args(record)
        .arg("--sign-key")
        .arg(&mallory)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not in trusted_keys"));
    r.tagback()
        .args(record)
        .arg("--sign-key")
        .arg(&alice)
        .assert()
        .code(0);
    r.remove("after.txt");
    let path = record_file(&r);
    let signed_by_alice = std::fs::read_to_string(&path).unwrap();

    // The same record signed by mallory (with ssh-keygen) does not count.
    let message = keys.path().join("message");
    std::fs::write(&message, signed_message(&path)).unwrap();
    let out = ssh_keygen()
        .unwrap()
        .args(["-Y", "sign", "-n", "tagback-record", "-f"])
        .arg(&mallory)
        .arg(&message)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut by_mallory: serde_json::Value = serde_json::from_str(&signed_by_alice).unwrap();
    by_mallory["signature"] = std::fs::read_to_string(message.with_extension("sig"))
        .unwrap()
        .into();
    std::fs::write(&path, by_mallory.to_string()).unwrap();
    r.commit("roll back, signed by mallory", None);
    gate(&r, "HEAD~1")
        .code(1)
        .stdout(predicate::str::contains("not in trusted_keys"));
    r.git(&["reset", "-q", "--soft", "HEAD~1"]);

    std::fs::write(&path, &signed_by_alice).unwrap();
    r.commit("roll back, signed by alice", None);
    gate(&r, "HEAD~1").code(0);

    // Any edit after signing breaks the signature.
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("\"recorded_by\": \"", "\"recorded_by\": \"x"),
    )
    .unwrap();
    r.commit("edit", None);
    gate(&r, "HEAD~2")
        .code(1)
        .stdout(predicate::str::contains("does not match its content"));
    // An unsigned record (evidence and all) does not count either.
    let mut unsigned: serde_json::Value = serde_json::from_str(&text).unwrap();
    unsigned.as_object_mut().unwrap().remove("signature");
    std::fs::write(&path, unsigned.to_string()).unwrap();
    r.commit("unsigned", None);
    gate(&r, "HEAD~3")
        .code(1)
        .stdout(predicate::str::contains("it is not signed"));
}

#[test]
fn r15_signatures_interoperate_with_ssh_keygen() {
    if ssh_keygen().is_none() {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    let (alice, alice_pub) = keypair(keys.path(), "alice");
    let mut r = shop_repo();
    r.write(
        ".tagback.yml",
        format!("trusted_keys:\n  - \"alice@example.com {alice_pub}\"\n"),
    );
    r.commit("trust alice", None);
    r.write("stack.yml", STACK.replace("TAG", "1"));
    r.write("after.txt", EVIDENCE_AFTER);
    r.tagback()
        .args([
            "record",
            "--service",
            "web",
            "--evidence",
            "after.txt",
            "--sign-key",
        ])
        .arg(&alice)
        .assert()
        .code(0);
    r.remove("after.txt");
    let path = record_file(&r);
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let message = keys.path().join("message");
    std::fs::write(&message, signed_message(&path)).unwrap();

    // tagback's signature, verified by ssh-keygen.
    let sig = keys.path().join("tagback.sig");
    std::fs::write(&sig, record["signature"].as_str().unwrap()).unwrap();
    let allowed = keys.path().join("allowed_signers");
    std::fs::write(&allowed, format!("alice@example.com {alice_pub}\n")).unwrap();
    let verify = |sig: &Path| {
        ssh_keygen()
            .unwrap()
            .args([
                "-Y",
                "verify",
                "-n",
                "tagback-record",
                "-I",
                "alice@example.com",
                "-f",
            ])
            .arg(&allowed)
            .arg("-s")
            .arg(sig)
            .stdin(std::fs::File::open(&message).unwrap())
            .output()
            .unwrap()
    };
    let out = verify(&sig);
    assert!(
        out.status.success(),
        "ssh-keygen -Y verify rejects tagback's signature: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // ssh-keygen's signature of the same message, accepted by the gate.
    let out = ssh_keygen()
        .unwrap()
        .args(["-Y", "sign", "-n", "tagback-record", "-f"])
        .arg(&alice)
        .arg(&message)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = std::fs::read_to_string(message.with_extension("sig")).unwrap();
    assert!(verify(&message.with_extension("sig")).status.success());
    let mut resigned = record.clone();
    resigned["signature"] = theirs.into();
    std::fs::write(&path, serde_json::to_string_pretty(&resigned).unwrap()).unwrap();
    r.commit("roll back, signed with ssh-keygen", None);
    gate(&r, "HEAD~1").code(0);
}

// ---------------------------------------------------------------- the cache

const BACKFILL: &str = "from django.db import migrations\n\n\ndef forwards(apps, schema_editor):\n    pass\n\n\nclass Migration(migrations.Migration):\n    dependencies = [(\"shop\", \"0004_order_code\")]\n    operations = [\n        migrations.RunPython(forwards),\n    ]\n";

/// The shop at v1, v2, and v3 (v2 plus an irreversible `RunPython` in shop
/// and a new migration in members).
fn shop_with_v3() -> TestRepo {
    let mut r = shop_repo();
    r.write("shop/migrations/0005_backfill.py", BACKFILL);
    r.write(
        "accounts/migrations/0004_more.py",
        "from django.db import migrations, models\n\n\nclass Migration(migrations.Migration):\n    dependencies = [(\"members\", \"0003_normalize_nicknames\")]\n    operations = [migrations.AddField(\"member\", \"extra\", models.IntegerField(default=0))]\n",
    );
    r.commit("v3", Some("v3"));
    r
}

/// Every file of the parse cache.
fn cache_files(repo: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let root = repo.join(".git/tagback/cache");
    let Ok(versions) = std::fs::read_dir(&root) else {
        return out;
    };
    for v in versions {
        for f in std::fs::read_dir(v.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if p.is_file() {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Operations a plan cannot read exactly are reported with their line
/// whether the migrations came from the blobs (first run), from the cache
/// (second run) or with the cache off: the graph part of a migration is
/// read from the cache, its operations and their dynamic parts never are.
#[test]
fn dynamic_operations_are_reported_alike_on_first_cached_and_uncached_runs() {
    let mut r = shop_repo();
    r.write(
        "shop/migrations/0005_loop.py",
        "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n    dependencies = [(\"shop\", \"0004_order_code\")]\n    operations = [migrations.RunSQL(s, s) for s in [\"SELECT 1\"]]\n",
    );
    r.commit("v3", Some("v3"));
    let plan = ["plan", "--from", "v3", "--to", "v2", "--format", "json"];
    let dynamic = |j: serde_json::Value| {
        j["dynamic"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| format!("{} {} {}", d["file"], d["line"], d["what"]))
            .collect::<Vec<_>>()
    };
    let first = dynamic(r.run_json(&plan, 0));
    assert_eq!(
        first,
        ["\"shop/migrations/0005_loop.py\" 6 \"`operations` is computed at run time\""]
    );
    assert!(
        !cache_files(r.path()).is_empty(),
        "the first run fills the cache"
    );
    assert_eq!(dynamic(r.run_json(&plan, 0)), first, "read from the cache");
    let uncached = r
        .tagback()
        .env("TAGBACK_NO_CACHE", "1")
        .args(plan)
        .assert()
        .code(0)
        .get_output()
        .clone();
    assert_eq!(
        dynamic(common::json(&uncached)),
        first,
        "with the cache off"
    );
}

#[test]
fn r15_edited_cache_file_cannot_hide_an_irreversible_operation() {
    let r = shop_with_v3();
    let script = [
        "script",
        "--repo",
        ".",
        "--from",
        "v3",
        "--to",
        "v2",
        "--service",
        "web",
        "--image",
        "shop:2",
        "-o",
        "rollback.sh",
    ];
    r.tagback()
        .args(script)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("0005_backfill.py:11 (RunPython"));
    assert!(
        !cache_files(r.path()).is_empty(),
        "the first run fills the cache"
    );
    // The one-line edit: the cached RunPython becomes reversible.
    for f in cache_files(r.path()) {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        let edited: Vec<String> = text
            .lines()
            .map(|l| {
                if l.starts_with("RunPython\t") {
                    l.replacen("\ti\t", "\tr\t", 1)
                } else {
                    l.to_string()
                }
            })
            .collect();
        std::fs::write(&f, edited.join("\n") + "\n").unwrap();
    }
    r.tagback()
        .args(script)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("0005_backfill.py:11 (RunPython"));
}

/// A small deterministic generator (xorshift), so a failure replays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// Damage one cache file: a flipped bit, a truncation, another file's
/// content, a crafted line (copied from elsewhere, duplicated, dropped or
/// reordered), or a stale checksum line.
fn damage(rng: &mut Rng, file: &Path, all: &[Vec<u8>]) {
    let mut bytes = std::fs::read(file).unwrap_or_default();
    match rng.below(8) {
        0 if !bytes.is_empty() => {
            let at = rng.below(bytes.len());
            bytes[at] ^= 1 << rng.below(8);
        }
        1 => bytes.truncate(rng.below(bytes.len() + 1)),
        2 => bytes = all[rng.below(all.len())].clone(),
        3..=6 => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            let other = String::from_utf8_lossy(&all[rng.below(all.len())]).into_owned();
            let donor: Vec<&str> = other.lines().collect();
            let at = rng.below(lines.len() + 1);
            match rng.below(4) {
                0 if !donor.is_empty() => {
                    lines.insert(at, donor[rng.below(donor.len())].to_string());
                }
                1 if at < lines.len() => {
                    let l = lines[at].clone();
                    lines.insert(at, l);
                }
                2 if at < lines.len() => {
                    lines.remove(at);
                }
                _ if lines.len() > 2 => {
                    let b = rng.below(lines.len());
                    let a = at.min(lines.len() - 1);
                    lines.swap(a, b);
                }
                _ => lines.push("tagback-sum 0000".into()),
            }
            bytes = (lines.join("\n") + "\n").into_bytes();
        }
        _ => {
            // The content of another file under this file's name, with the
            // other file's (valid, but not for this key) checksum.
            let other = &all[rng.below(all.len())];
            bytes = other.clone();
        }
    }
    std::fs::write(file, bytes).unwrap();
}

/// The plan between two revisions, computed by the library as `plan
/// --format json` computes it.
fn library_plan(repo: &Path, from: &str, to: &str) -> Result<String, String> {
    use tagback::django::{Loader, ProjectOptions};
    let repo = tagback::git::Repo::open(repo).map_err(|e| e.to_string())?;
    let newer = repo.snapshot(from).map_err(|e| e.to_string())?;
    let older = repo.snapshot(to).map_err(|e| e.to_string())?;
    let loader = Loader::new(&repo);
    let pair = loader
        .load_pair(&newer, &older, &ProjectOptions::default(), false)
        .map_err(|e| e.to_string())?
        .ok_or("no manage.py")?;
    let plan = tagback::deploy::plan_pair(&loader, &pair);
    let mut out = Vec::new();
    tagback::report::json(&plan, &mut out).map_err(|e| e.to_string())?;
    Ok(String::from_utf8(out).unwrap())
}

#[test]
fn r15_damaged_cache_files_never_change_a_plan() {
    let mut r = shop_with_v3();
    // A fourth revision that changes the settings module and adds a
    // migration, so project records and the app memo are exercised too.
    let settings = r.read("shopsite/settings.py");
    r.write("shopsite/settings.py", settings + "\nTAGBACK_TEST = 1\n");
    r.write(
        "shop/migrations/0006_after.py",
        "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n    dependencies = [(\"shop\", \"0005_backfill\")]\n    operations = []\n",
    );
    r.commit("v4", Some("v4"));
    let pairs = [
        ("v2", "v1"),
        ("v3", "v1"),
        ("v3", "v2"),
        ("v4", "v1"),
        ("v4", "v3"),
        ("v1", "v3"),
    ];
    let truth: Vec<String> = pairs
        .iter()
        .map(|(from, to)| {
            let out = r
                .tagback()
                .env("TAGBACK_NO_CACHE", "1")
                .args([
                    "plan", "--repo", ".", "--from", from, "--to", to, "--format", "json",
                ])
                .assert()
                .code(0)
                .get_output()
                .stdout
                .clone();
            String::from_utf8(out).unwrap()
        })
        .collect();
    for ((from, to), want) in pairs.iter().zip(&truth) {
        assert_eq!(
            &library_plan(r.path(), from, to).unwrap(),
            want,
            "cold {from}→{to}"
        );
    }
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut mutations = 0;
    let mut round = 0;
    while mutations < 10_000 {
        let files = cache_files(r.path());
        assert!(files.len() >= 5, "cache files: {files:?}");
        let all: Vec<Vec<u8>> = files
            .iter()
            .map(|f| std::fs::read(f).unwrap_or_default())
            .collect();
        for f in &files {
            damage(&mut rng, f, &all);
            mutations += 1;
        }
        for _ in 0..2 {
            let i = rng.below(pairs.len());
            let (from, to) = pairs[i];
            let got = library_plan(r.path(), from, to).unwrap_or_else(|e| {
                panic!("round {round}: {from}→{to} failed with damaged cache: {e}")
            });
            assert_eq!(
                got, truth[i],
                "round {round}: {from}→{to} changed by a damaged cache"
            );
        }
        round += 1;
    }
    eprintln!(
        "{mutations} mutations over {round} rounds, every plan equal to TAGBACK_NO_CACHE=1's"
    );
}

// ---------------------------------------------------------------- kill -9

/// Run tagback in `dir` and kill it with SIGKILL after `delay` (it may have
/// finished by then).
fn run_and_kill(dir: &Path, args: &[&str], delay: std::time::Duration) {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("tagback"))
        .current_dir(dir)
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_INDEX_FILE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let _ = child.kill(); // SIGKILL on Unix
    let _ = child.wait();
}

/// How long an uninterrupted run takes (the kill points are spread over it).
fn duration_of(dir: &Path, args: &[&str]) -> std::time::Duration {
    let start = std::time::Instant::now();
    let out = Command::new(assert_cmd::cargo::cargo_bin("tagback"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.code().is_some(), "{args:?} ran to completion");
    start.elapsed()
}

fn untracked(r: &TestRepo, under: &str) -> Vec<String> {
    let out = r.git(&[
        "status",
        "--porcelain",
        "--untracked-files=all",
        "--",
        under,
    ]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l[3..].to_string())
        .collect()
}

#[test]
fn r15_sigkill_at_random_points_leaves_hooks_ledger_and_outputs_intact() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let rounds = 25;

    // record: the records directory only ever holds whole records.
    let r = downgraded();
    r.write("after.txt", EVIDENCE_AFTER);
    let record = [
        "record",
        "--from",
        "HEAD~1",
        "--to",
        "HEAD",
        "--service",
        "web",
        "--evidence",
        "after.txt",
    ];
    let full = duration_of(r.path(), &record);
    for _ in 0..rounds {
        let delay = full.mul_f64(rng.below(1000) as f64 / 900.0);
        run_and_kill(r.path(), &record, delay);
        for rel in untracked(&r, ".tagback") {
            assert!(
                rel.ends_with(".json"),
                "{rel} would be committed by `git add .tagback`"
            );
            let text = r.read(&rel);
            let v: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{rel} is half-written ({e}): {text:?}"));
            assert_eq!(v["version"], 2, "{rel}");
        }
    }
    let records = untracked(&r, ".tagback").len();
    assert!(records > 0, "some of the records ran to completion");

    // install: the user's hook survives, whole, as the hook or its chained copy.
    let reference = TestRepo::new();
    reference.tagback().arg("install").assert().code(0);
    let ours = |name: &str| std::fs::read(reference.path().join(".git/hooks").join(name)).unwrap();
    let r = TestRepo::new();
    let hooks = r.path().join(".git/hooks");
    let mine = b"#!/bin/sh\necho mine\n".to_vec();
    let full = duration_of(r.path(), &["install"]);
    for _ in 0..rounds {
        for e in std::fs::read_dir(&hooks).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
        std::fs::write(hooks.join("pre-commit"), &mine).unwrap();
        let delay = full.mul_f64(rng.below(1000) as f64 / 900.0);
        run_and_kill(r.path(), &["install"], delay);
        let hook = std::fs::read(hooks.join("pre-commit")).unwrap();
        let chained = std::fs::read(hooks.join("pre-commit.tagback-chained")).ok();
        assert!(
            (hook == mine && chained.as_ref().is_none_or(|c| *c == mine))
                || (hook == ours("pre-commit") && chained.as_ref() == Some(&mine)),
            "pre-commit after a kill: {:?} / chained {:?}",
            String::from_utf8_lossy(&hook),
            chained.map(|c| String::from_utf8_lossy(&c).into_owned())
        );
        for name in ["pre-push", "pre-merge-commit"] {
            if let Ok(hook) = std::fs::read(hooks.join(name)) {
                assert_eq!(hook, ours(name), "{name} is whole");
            }
        }
        r.tagback().arg("install").assert().code(0);
        assert_eq!(
            std::fs::read(hooks.join("pre-commit.tagback-chained")).unwrap(),
            mine
        );
    }

    // script -o: the previous output stays whole until the new one replaces it.
    let r = shop_repo();
    let script = |strategy: &'static str, out: &'static str| {
        [
            "script",
            "--repo",
            ".",
            "--from",
            "v2",
            "--to",
            "v1",
            "--service",
            "web",
            "--image",
            "registry.example.com:5000/shop:1",
            "--strategy",
            strategy,
            "-o",
            out,
        ]
    };
    r.tagback().args(script("exec", "old.sh")).assert().code(0);
    r.tagback().args(script("job", "new.sh")).assert().code(0);
    let (old, new) = (r.read("old.sh"), r.read("new.sh"));
    assert_ne!(old, new);
    let full = duration_of(r.path(), &script("job", "new.sh"));
    for _ in 0..rounds {
        r.write("out.sh", &old);
        let delay = full.mul_f64(rng.below(1000) as f64 / 900.0);
        run_and_kill(r.path(), &script("job", "out.sh"), delay);
        let now = r.read("out.sh");
        assert!(
            now == old || now == new,
            "out.sh is half-written: {} bytes",
            now.len()
        );
    }
}

#[test]
fn r15_sign_key_that_cannot_sign_is_a_clear_error() {
    if ssh_keygen().is_none() {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    let locked = keys.path().join("locked");
    let out = ssh_keygen()
        .unwrap()
        .args(["-q", "-t", "ed25519", "-N", "secret", "-f"])
        .arg(&locked)
        .output()
        .unwrap();
    assert!(out.status.success());
    let rsa = keys.path().join("rsa");
    let out = ssh_keygen()
        .unwrap()
        .args(["-q", "-t", "rsa", "-b", "2048", "-N", "", "-f"])
        .arg(&rsa)
        .output()
        .unwrap();
    assert!(out.status.success());
    let r = downgraded();
    r.write("after.txt", EVIDENCE_AFTER);
    let record = [
        "record",
        "--from",
        "HEAD~1",
        "--to",
        "HEAD",
        "--service",
        "web",
        "--evidence",
        "after.txt",
        "--sign-key",
    ];
    for (key, why) in [
        (locked, "protected by a passphrase"),
        (rsa, "ssh-ed25519 keys only"),
        (keys.path().join("absent"), "is not an OpenSSH private key"),
    ] {
        r.tagback()
            .args(record)
            .arg(&key)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(why));
    }
    assert!(
        !r.path().join(".tagback/records").exists(),
        "nothing recorded"
    );
}
