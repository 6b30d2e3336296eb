//! The ledger: records, committed in the deploy repository, that the backward
//! migrations of one downgrade ran. One small JSON file per record under
//! `.tagback/records/`, so two branches never conflict; written atomically
//! (temp file, fsync, rename), so an interrupted write never counts.

pub mod database;
pub mod evidence;
pub mod trust;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::django::MigrationKey;
use crate::error::{Error, Result};
use crate::fs::{self, Mode};
use crate::git::{Repo, Snapshot};
use crate::plan::{self, Plan};
use trust::TrustedKey;

/// Default directory of records, relative to the deploy repository root.
pub const DEFAULT_DIR: &str = ".tagback/records";

/// Current on-disk format version (2: the evidence is embedded).
pub const FORMAT_VERSION: u32 = 2;

/// One record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Format version.
    pub version: u32,
    /// Service name.
    pub service: String,
    /// Image deployed before the downgrade.
    pub from_image: String,
    /// Image after the downgrade.
    pub to_image: String,
    /// Source revision of `from_image`.
    pub from_rev: String,
    /// Source revision of `to_image`.
    pub to_rev: String,
    /// The plan's fingerprint.
    pub fingerprint: String,
    /// Every migration that was unapplied, `app.name`.
    pub unapplied: Vec<String>,
    /// When (RFC 3339, UTC).
    pub recorded_at: String,
    /// Who (git identity).
    pub recorded_by: String,
    /// What the record was verified against; `gate` verifies it again.
    pub evidence: Evidence,
    /// Armored SSH signature (namespace `tagback-record`) of
    /// [`Record::signed_message`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// The evidence a record embeds, normalized: the migrations of the apps the
/// plan touches, as the evidence showed them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// `showmigrations` (lines `[X] app.name` / `[ ] app.name`) or
    /// `database` (the `django_migrations` rows, `app.name`).
    pub kind: String,
    /// One line per migration, sorted.
    pub lines: Vec<String>,
    /// SHA-256 of the file or row listing it was taken from.
    pub source_sha256: String,
}

impl Evidence {
    /// `showmigrations` evidence, reduced to the apps of `plan`.
    pub fn from_showmigrations(
        plan: &Plan,
        applied: &evidence::Applied,
        source_sha256: String,
    ) -> Evidence {
        let apps = plan_apps(plan);
        let lines = applied
            .iter()
            .filter(|(k, _)| apps.contains(k.app.as_str()))
            .map(|(k, on)| format!("[{}] {k}", if *on { 'X' } else { ' ' }))
            .collect();
        Evidence {
            kind: "showmigrations".into(),
            lines,
            source_sha256,
        }
    }

    /// `django_migrations` rows, reduced to the apps of `plan`.
    pub fn from_rows(plan: &Plan, rows: &database::Rows, source_sha256: String) -> Evidence {
        let apps = plan_apps(plan);
        let lines = rows
            .iter()
            .filter(|k| apps.contains(k.app.as_str()))
            .map(ToString::to_string)
            .collect();
        Evidence {
            kind: "database".into(),
            lines,
            source_sha256,
        }
    }

    /// Whether this evidence proves that `plan`'s backward migrations ran:
    /// every migration to unapply is unapplied, every one to keep applied.
    pub fn proves(&self, plan: &Plan) -> std::result::Result<(), String> {
        match self.kind.as_str() {
            "showmigrations" => {
                let text = self.lines.join("\n");
                let applied = evidence::parse_showmigrations(&text)?;
                plan::verify_state(plan, &|k| applied.get(k).copied())
            }
            "database" => {
                let mut rows = database::Rows::new();
                for line in &self.lines {
                    let (a, n) = line
                        .split_once('.')
                        .filter(|(a, n)| !a.is_empty() && !n.is_empty())
                        .ok_or_else(|| format!("evidence row {line:?} is not app.name"))?;
                    rows.insert(MigrationKey::new(a, n));
                }
                verify_rows(plan, &rows)
            }
            other => Err(format!("unknown evidence kind {other:?}")),
        }
    }
}

/// The apps whose migrations decide a plan's verification.
fn plan_apps(plan: &Plan) -> BTreeSet<&str> {
    let keys = plan.unapply.iter().chain(&plan.keep_applied);
    let squashed = plan
        .squashes
        .iter()
        .flat_map(|(k, v)| std::iter::once(k).chain(v));
    keys.chain(squashed).map(|k| k.app.as_str()).collect()
}

/// Verify `django_migrations` rows against a plan (a squash counts as
/// applied when every migration it replaces is, as Django does).
pub fn verify_rows(plan: &Plan, rows: &database::Rows) -> std::result::Result<(), String> {
    plan::verify_state(plan, &|k: &MigrationKey| {
        let row = rows.contains(k);
        Some(match plan.squashes.get(k) {
            Some(replaced) if !row => replaced.iter().all(|r| rows.contains(r)),
            _ => row,
        })
    })
}

impl Record {
    /// The bytes a signature covers: the record without `signature`, as
    /// compact JSON with sorted keys (`jq -cjS 'del(.signature)'`).
    pub fn signed_message(&self) -> Vec<u8> {
        let unsigned = Record {
            signature: None,
            ..self.clone()
        };
        // A Value's map is sorted by key.
        serde_json::to_value(&unsigned)
            .map(|v| v.to_string().into_bytes())
            .unwrap_or_default()
    }
}

/// A record of an older format, kept only to say why it does not count.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LegacyRecord {
    /// Format version.
    pub version: u32,
    /// Service name.
    pub service: String,
    /// Image deployed before the downgrade.
    pub from_image: String,
    /// Image after the downgrade.
    pub to_image: String,
}

/// A record file as read from the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// A record of the current format.
    Current(Box<Record>),
    /// A version 1 record: it carries no evidence and is not trusted.
    Legacy(LegacyRecord),
}

impl Stored {
    fn is_for(&self, service: &str, from_image: &str, to_image: &str) -> bool {
        let (s, f, t) = match self {
            Stored::Current(r) => (&r.service, &r.from_image, &r.to_image),
            Stored::Legacy(r) => (&r.service, &r.from_image, &r.to_image),
        };
        s == service && f == from_image && t == to_image
    }
}

/// Whether a plan is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordStatus {
    /// A record with this plan's fingerprint exists, its evidence proves the
    /// plan ran, and it is signed by a trusted key when keys are configured.
    Recorded,
    /// Records exist for this downgrade, but for another plan.
    Stale(String),
    /// Records exist for this plan, but none can be trusted (says why).
    Untrusted(String),
    /// No record.
    Missing,
}

/// Parse one record file (`path` and `label` name it in errors).
pub fn parse_record(text: &str, path: &str, label: &str) -> Result<Stored> {
    let malformed = |err: serde_json::Error| {
        Error::input(format!(
            "ledger record {path} at {label} line {} is malformed: {err}",
            err.line()
        ))
    };
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    let version = serde_json::from_str::<Version>(text)
        .map_err(malformed)?
        .version;
    match version {
        1 => Ok(Stored::Legacy(
            serde_json::from_str(text).map_err(malformed)?,
        )),
        FORMAT_VERSION => Ok(Stored::Current(Box::new(
            serde_json::from_str(text).map_err(malformed)?,
        ))),
        v => Err(Error::input(format!(
            "ledger record {path} at {label} has format version {v}; this tagback reads versions 1 and {FORMAT_VERSION}"
        ))),
    }
}

/// Read every record at a snapshot of the deploy repository.
pub fn read_all(repo: &Repo, snap: &Snapshot, dir: Option<&str>) -> Result<Vec<(String, Stored)>> {
    let dir = dir.unwrap_or(DEFAULT_DIR);
    let Some(entries) = repo.list_dir(snap, dir)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for e in entries {
        if e.is_dir || !e.name.ends_with(".json") || e.name.starts_with('.') {
            continue;
        }
        let path = format!("{dir}/{}", e.name);
        let Some((_, text)) = repo.read_text(snap, &path)? else {
            continue;
        };
        out.push((path.clone(), parse_record(&text, &path, &snap.label)?));
    }
    Ok(out)
}

/// Whether `records` hold a trusted record for this downgrade and plan: same
/// fingerprint, the same migrations unapplied, evidence that proves the plan
/// ran, and — when `keys` is not empty — a valid signature by one of them.
pub fn status(
    records: &[(String, Stored)],
    service: &str,
    from_image: &str,
    to_image: &str,
    plan: &Plan,
    keys: &[TrustedKey],
) -> RecordStatus {
    let fingerprint = &plan.fingerprint;
    let mut refused = Vec::new();
    let mut stale = None;
    for (path, stored) in records
        .iter()
        .filter(|(_, r)| r.is_for(service, from_image, to_image))
    {
        let record = match stored {
            Stored::Legacy(r) => {
                refused.push(format!(
                    "record {path} has format version {} and embeds no evidence, so it proves nothing; record the rollback again with `tagback record --service {service} --evidence FILE` (or --database-url)",
                    r.version
                ));
                continue;
            }
            Stored::Current(r) => r,
        };
        if &record.fingerprint != fingerprint {
            stale.get_or_insert_with(|| {
                format!(
                    "record {path} is for plan {} but the plan is now {}: the migrations changed since it was recorded",
                    &record.fingerprint[..record.fingerprint.len().min(12)],
                    &fingerprint[..fingerprint.len().min(12)]
                )
            });
            continue;
        }
        match trusted(record, plan, keys) {
            Ok(()) => return RecordStatus::Recorded,
            Err(why) => refused.push(format!("record {path} does not count: {why}")),
        }
    }
    if !refused.is_empty() {
        return RecordStatus::Untrusted(refused.join("; "));
    }
    stale.map_or(RecordStatus::Missing, RecordStatus::Stale)
}

/// Why a record with the plan's fingerprint is not trusted, if it is not.
fn trusted(record: &Record, plan: &Plan, keys: &[TrustedKey]) -> std::result::Result<(), String> {
    let planned: Vec<String> = plan.unapply.iter().map(ToString::to_string).collect();
    if record.unapplied != planned {
        return Err(format!(
            "it lists {} unapplied migration(s) but the plan unapplies {}",
            record.unapplied.len(),
            planned.len()
        ));
    }
    record.evidence.proves(plan).map_err(|why| {
        format!(
            "its {} evidence does not prove the plan ran ({why})",
            record.evidence.kind
        )
    })?;
    if keys.is_empty() {
        return Ok(());
    }
    let Some(signature) = &record.signature else {
        return Err("it is not signed, and trusted_keys in .tagback.yml requires a signature by one of them (tagback record --sign-key FILE)".into());
    };
    trust::verify(keys, &record.signed_message(), signature).map(drop)
}

/// Write a record atomically into `dir` (on disk), its temporary file in
/// `staging` (inside the git directory, so an interrupted write leaves
/// nothing that `git add .tagback` would commit); returns its path.
pub fn write(dir: &Path, staging: &Path, record: &Record) -> Result<PathBuf> {
    let safe_service: String = record
        .service
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let stamp = record.recorded_at.replace([':', '-'], "");
    let name = format!(
        "{stamp}-{safe_service}-{}-{}.json",
        &record.fingerprint[..record.fingerprint.len().min(12)],
        std::process::id()
    );
    let path = dir.join(&name);
    let body = serde_json::to_string_pretty(record)
        .map_err(|e| Error::input(format!("cannot encode record: {e}")))?;
    let mut body = body.into_bytes();
    body.push(b'\n');
    fs::write_atomic_via(&path, &body, Mode::CreateNew, Some(staging))?;
    Ok(path)
}
