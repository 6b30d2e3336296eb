//! `tagback record`: verify evidence, then write a ledger record.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use sha2::{Digest, Sha256};

use super::StackArgs;
use crate::Outcome;
use crate::config::Config;
use crate::deploy;
use crate::django::MigrationKey;
use crate::error::{Error, Result};
use crate::git::Repo;
use crate::ledger::{self, Evidence, Record, database, evidence, trust};
use crate::plan::Plan;
use crate::source::GitRevision;

/// Arguments of `tagback record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// The service that was rolled back (default: the only one needing it).
    #[arg(long)]
    service: Option<String>,
    /// Output of `python manage.py showmigrations` (--list or --plan) taken with the newer code after the rollback.
    #[arg(
        long,
        conflicts_with = "database_url",
        required_unless_present = "database_url"
    )]
    evidence: Option<PathBuf>,
    /// Read django_migrations directly: postgres://…, mysql://… (MySQL/MariaDB) or sqlite:///path.
    #[arg(long)]
    database_url: Option<String>,
    /// Sign the record with this OpenSSH ed25519 private key (required when
    /// `.tagback.yml` lists `trusted_keys:`).
    #[arg(long, value_name = "FILE")]
    sign_key: Option<PathBuf>,
}

pub(super) fn run(args: &RecordArgs, out: &mut dyn Write) -> Result<Outcome> {
    let repo = Repo::open(&args.stack.deploy_repo)?;
    let req = super::check::request(&repo, &args.stack, args.service.clone())?;
    let config = Config::load(&GitRevision::new(&repo, &req.to))?;
    let report = deploy::check(&req)?;
    let candidates: Vec<_> = report
        .services
        .iter()
        .filter(|s| s.plan.as_ref().is_some_and(Plan::needs_backward_migrations))
        .collect();
    let svc = match candidates.as_slice() {
        [one] => *one,
        [] => {
            return Err(Error::input(format!(
                "no downgrade between {} and {} needs backward migrations; nothing to record",
                report.from, report.to
            )));
        }
        _ => {
            return Err(Error::input(
                "several services need backward migrations; choose one with --service",
            ));
        }
    };
    let plan = svc.plan.as_ref().expect("filtered on plan");
    let say =
        |out: &mut dyn Write, s: String| writeln!(out, "{s}").map_err(|e| Error::io("<stdout>", e));

    let embedded = if let Some(path) = &args.evidence {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let text = String::from_utf8(bytes.clone())
            .map_err(|_| Error::input(format!("evidence {} is not UTF-8 text", path.display())))?;
        let applied = evidence::parse_showmigrations(&text)
            .map_err(|e| Error::input(format!("evidence {}: {e}", path.display())))?;
        Evidence::from_showmigrations(plan, &applied, sha256(&bytes))
    } else {
        let url = args.database_url.as_deref().unwrap_or_default();
        let rows = database::applied_rows(url).map_err(Error::input)?;
        let mut listing = String::new();
        for MigrationKey { app: a, name: n } in &rows {
            listing.push_str(&format!("{a}.{n}\n"));
        }
        Evidence::from_rows(plan, &rows, sha256(listing.as_bytes()))
    };
    // The gate verifies the embedded (reduced) evidence again: verify that
    // very form here, so a record that is written is one the gate accepts.
    if let Err(why) = embedded.proves(plan) {
        say(
            out,
            format!(
                "tagback: refused: {why}; the backward migrations of {} ({} → {}) have not all run",
                svc.service, svc.from_image, svc.to_image
            ),
        )?;
        return Ok(Outcome::Unsafe);
    }
    let mut record = Record {
        version: ledger::FORMAT_VERSION,
        service: svc.service.clone(),
        from_image: svc.from_image.clone(),
        to_image: svc.to_image.clone(),
        from_rev: svc.from_rev.clone().unwrap_or_default(),
        to_rev: svc.to_rev.clone().unwrap_or_default(),
        fingerprint: plan.fingerprint.clone(),
        unapplied: plan.unapply.iter().map(ToString::to_string).collect(),
        recorded_at: now_rfc3339(),
        recorded_by: identity(&repo),
        evidence: embedded,
        signature: None,
    };
    let keys = deploy::trusted_keys(&req, &config)?;
    match &args.sign_key {
        Some(key) => {
            let signature = trust::sign(key, &record.signed_message()).map_err(Error::input)?;
            if !keys.is_empty() {
                trust::verify(&keys, &record.signed_message(), &signature).map_err(|why| {
                    Error::input(format!(
                        "the record signed with {} would not count: {why}",
                        key.display()
                    ))
                })?;
            }
            record.signature = Some(signature);
        }
        None if !keys.is_empty() => {
            return Err(Error::input(format!(
                "{} lists trusted_keys: sign the record with --sign-key FILE (an ed25519 key listed there)",
                crate::config::FILE_NAME
            )));
        }
        None => {}
    }
    let root = repo.workdir().ok_or_else(|| {
        Error::input("the deploy repository has no working tree to write the ledger into")
    })?;
    let dir = root.join(config.ledger.as_deref().unwrap_or(ledger::DEFAULT_DIR));
    let staging = repo.git_dir().join("tagback").join("tmp");
    let path = ledger::write(&dir, &staging, &record)?;
    say(
        out,
        format!(
            "tagback: recorded {} ({} → {}, plan {}) in {}; commit it with the deploy change",
            svc.service,
            svc.from_image,
            svc.to_image,
            &plan.fingerprint[..12],
            path.display()
        ),
    )?;
    Ok(Outcome::Safe)
}

fn sha256(bytes: &[u8]) -> String {
    crate::hex::encode(&Sha256::digest(bytes))
}

fn identity(repo: &Repo) -> String {
    let cfg = git2::Repository::open(repo.git_dir())
        .and_then(|r| r.config())
        .and_then(|mut c| c.snapshot());
    let (name, email) = match cfg {
        Ok(c) => (
            c.get_string("user.name").ok(),
            c.get_string("user.email").ok(),
        ),
        Err(_) => (None, None),
    };
    match (name, email) {
        (Some(n), Some(e)) => format!("{n} <{e}>"),
        (Some(n), None) => n,
        (None, Some(e)) => format!("<{e}>"),
        (None, None) => std::env::var("USER").unwrap_or_else(|_| "unknown".into()),
    }
}

/// Current UTC time as RFC 3339 (no external time crate needed).
fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
