//! The ledger: records, committed in the deploy repository, that the backward
//! migrations of one downgrade ran. One small JSON file per record under
//! `.tagback/records/`, so two branches never conflict; written atomically
//! (temp file, fsync, rename), so an interrupted write never counts.

pub mod database;
pub mod evidence;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fs::{self, Mode};
use crate::git::{Repo, Snapshot};

/// Default directory of records, relative to the deploy repository root.
pub const DEFAULT_DIR: &str = ".tagback/records";

/// Current on-disk format version.
pub const FORMAT_VERSION: u32 = 1;

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
    /// `showmigrations` or `database`.
    pub evidence_kind: String,
    /// SHA-256 of the evidence.
    pub evidence_sha256: String,
}

/// Whether a plan is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordStatus {
    /// A record with this plan's fingerprint exists.
    Recorded,
    /// Records exist for this downgrade, but for another plan.
    Stale(String),
    /// No record.
    Missing,
}

/// Read every record at a snapshot of the deploy repository.
pub fn read_all(repo: &Repo, snap: &Snapshot, dir: Option<&str>) -> Result<Vec<(String, Record)>> {
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
        let record: Record = serde_json::from_str(&text).map_err(|err| {
            Error::input(format!(
                "ledger record {path} at {} line {} is malformed: {err}",
                snap.label,
                err.line()
            ))
        })?;
        if record.version != FORMAT_VERSION {
            return Err(Error::input(format!(
                "ledger record {path} at {} has format version {}; this tagback reads version {FORMAT_VERSION}",
                snap.label, record.version
            )));
        }
        out.push((path, record));
    }
    Ok(out)
}

/// Whether `records` hold a record for this downgrade and plan.
pub fn status(
    records: &[(String, Record)],
    service: &str,
    from_image: &str,
    to_image: &str,
    fingerprint: &str,
) -> RecordStatus {
    let same: Vec<&(String, Record)> = records
        .iter()
        .filter(|(_, r)| {
            r.service == service && r.from_image == from_image && r.to_image == to_image
        })
        .collect();
    if same.iter().any(|(_, r)| r.fingerprint == fingerprint) {
        return RecordStatus::Recorded;
    }
    match same.first() {
        Some((path, r)) => RecordStatus::Stale(format!(
            "record {path} is for plan {} but the plan is now {}: the migrations changed since it was recorded",
            &r.fingerprint[..r.fingerprint.len().min(12)],
            &fingerprint[..fingerprint.len().min(12)]
        )),
        None => RecordStatus::Missing,
    }
}

/// Write a record atomically into `dir` (on disk); returns its path.
pub fn write(dir: &Path, record: &Record) -> Result<PathBuf> {
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
    fs::write_atomic(&path, &body, Mode::CreateNew)?;
    Ok(path)
}
