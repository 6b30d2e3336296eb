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
        .code(0);
    r.remove("after.txt");
    r.commit("roll back, signed by mallory", None);
    gate(&r, "HEAD~1")
        .code(1)
        .stdout(predicate::str::contains("not in trusted_keys"));
    r.git(&["reset", "-q", "--hard", "HEAD~1"]);

    r.write("stack.yml", STACK.replace("TAG", "1"));
    r.write("after.txt", EVIDENCE_AFTER);
    r.tagback()
        .args(record)
        .arg("--sign-key")
        .arg(&alice)
        .assert()
        .code(0);
    r.remove("after.txt");
    r.commit("roll back, signed by alice", None);
    gate(&r, "HEAD~1").code(0);

    // Any edit after signing breaks the signature.
    let path = record_file(&r);
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
