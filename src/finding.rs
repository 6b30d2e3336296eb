//! Findings as data: everything tagback reports about a plan or a service —
//! a reason the plan cannot be carried out, an irreversible operation, a part
//! of a migration it cannot read, data a downgrade drops, a note — is a
//! [`Finding`] with a stable [`Code`]. Renderers decide how it looks; the
//! code is what scripts, CI annotations and `.tagback.yml` refer to.

use serde::{Deserialize, Serialize};

/// How much a finding weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The downgrade is blocked until it is resolved.
    Error,
    /// The price of the downgrade (data loss): shown, not blocking by itself.
    Warning,
    /// Context: what was assumed, why a plan was not computed.
    Note,
}

/// Stable finding codes. The kebab-case names are part of the JSON, SARIF
/// and GitHub outputs; never rename one (add a new code instead).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// A squash replaces migrations the older revision knows and migrations it does not.
    SquashStraddles,
    /// The older leaf is replaced by a squash that also holds newer migrations.
    LeafSquashedWithNewer,
    /// The older leaf does not exist in the newer revision.
    LeafMissing,
    /// The target is a prefix of two migration names: Django rejects it.
    AmbiguousTarget,
    /// No order of per-app `migrate` commands unapplies exactly the planned set.
    NoExactOrder,
    /// The operations of a migration to unapply could not be read.
    UnreadableOperations,
    /// An operation Django cannot unapply (`IrreversibleError` halfway through).
    Irreversible,
    /// An operation whose reversibility cannot be known statically.
    MaybeIrreversible,
    /// A part of a migration computed at run time.
    DynamicMigration,
    /// A swappable dependency whose setting is not set statically.
    RuntimeSwappable,
    /// Unapplying drops a table or a column.
    DataLoss,
    /// The service is configured as not Django.
    NotDjango,
    /// The image tags could not be mapped to git revisions: no plan.
    UnresolvedRevision,
    /// Neither revision has a `manage.py`.
    NoManagePy,
    /// A ledger record exists but no longer proves this plan.
    StaleRecord,
    /// A downgrade needs backward migrations that are not recorded as run.
    UnrecordedBackwardMigrations,
    /// An image change tagback could not judge (no plan): blocked, not waved through.
    UnjudgedChange,
    /// Settings tagback cannot read are assumed to add only apps from outside the repository.
    AssumedExternalApps,
    /// manage.py names no settings module; the one that sets INSTALLED_APPS was read, as every other can only inherit it.
    AssumedSettingsModule,
    /// A migrations directory gains migrations but belongs to no installed app.
    UnplannedMigrations,
    /// A service disappears while another runs the same image repository: judged as one service.
    ServiceRenamed,
    /// A Django service's `image:` is removed or emptied.
    ImageRemoved,
    /// A ledger record matches the plan but is not signed by a trusted key, or its evidence does not prove it.
    UntrustedRecord,
    /// A release that adds migrations can be rolled back without tagback
    /// (`failure_action: rollback`, `docker service rollback` in a script).
    AutoRollback,
    /// `tagback guard` blocks but cannot name the backward commands.
    GuardNoTargets,
    /// A migration to unapply that no per-app `migrate APP TARGET` reaches
    /// exactly (it hangs off an old migration): the executor step does it.
    UnreachableByMigrate,
    /// A requirement without an exact pin: the installed version, hence its migrations, is unknown.
    UnpinnedRequirement,
    /// A package whose pinned version changes cannot be obtained (wheelhouse, cache, index).
    PackageUnavailable,
    /// A changed package's archive was obtained but its apps or migrations cannot be read.
    PackageUnreadable,
    /// A pin under an environment marker that a Linux deploy decides only with the image's Python version or machine (or never installs).
    AssumedEnvironment,
    /// The `AppConfig.label` of an app from outside the repository was not read, where a guess from its module path would matter.
    UnreadAppLabel,
}

impl Code {
    /// The stable name (`squash-straddles`).
    pub fn as_str(self) -> &'static str {
        match self {
            Code::SquashStraddles => "squash-straddles",
            Code::LeafSquashedWithNewer => "leaf-squashed-with-newer",
            Code::LeafMissing => "leaf-missing",
            Code::AmbiguousTarget => "ambiguous-target",
            Code::NoExactOrder => "no-exact-order",
            Code::UnreadableOperations => "unreadable-operations",
            Code::Irreversible => "irreversible",
            Code::MaybeIrreversible => "maybe-irreversible",
            Code::DynamicMigration => "dynamic-migration",
            Code::RuntimeSwappable => "runtime-swappable",
            Code::DataLoss => "data-loss",
            Code::NotDjango => "not-django",
            Code::UnresolvedRevision => "unresolved-revision",
            Code::NoManagePy => "no-manage-py",
            Code::StaleRecord => "stale-record",
            Code::UnrecordedBackwardMigrations => "unrecorded-backward-migrations",
            Code::UnjudgedChange => "unjudged-change",
            Code::AssumedExternalApps => "assumed-external-apps",
            Code::AssumedSettingsModule => "assumed-settings-module",
            Code::UnplannedMigrations => "unplanned-migrations",
            Code::ServiceRenamed => "service-renamed",
            Code::ImageRemoved => "image-removed",
            Code::UntrustedRecord => "untrusted-record",
            Code::AutoRollback => "auto-rollback",
            Code::GuardNoTargets => "guard-no-targets",
            Code::UnreachableByMigrate => "unreachable-by-migrate",
            Code::UnpinnedRequirement => "unpinned-requirement",
            Code::PackageUnavailable => "package-unavailable",
            Code::PackageUnreadable => "package-unreadable",
            Code::AssumedEnvironment => "assumed-environment",
            Code::UnreadAppLabel => "unread-app-label",
        }
    }

    /// How much findings of this code weigh.
    pub fn severity(self) -> Severity {
        match self {
            Code::DataLoss | Code::AutoRollback | Code::UnreachableByMigrate => Severity::Warning,
            Code::NotDjango
            | Code::UnresolvedRevision
            | Code::NoManagePy
            | Code::StaleRecord
            | Code::UntrustedRecord
            | Code::AssumedExternalApps
            | Code::AssumedSettingsModule
            | Code::ServiceRenamed
            | Code::GuardNoTargets
            | Code::AssumedEnvironment
            | Code::UnreadAppLabel => Severity::Note,
            _ => Severity::Error,
        }
    }

    /// One line for the README's table and `--help`.
    pub fn summary(self) -> &'static str {
        match self {
            Code::SquashStraddles => {
                "a squash replaces migrations the older revision has and migrations it lacks; no target reaches the older state"
            }
            Code::LeafSquashedWithNewer => {
                "the older revision's last migration is inside a squash that also holds newer migrations"
            }
            Code::LeafMissing => {
                "the older revision's last migration does not exist in the newer one"
            }
            Code::AmbiguousTarget => {
                "the target is a prefix of two migration names; Django rejects it"
            }
            Code::NoExactOrder => {
                "no order of per-app commands unapplies exactly the planned migrations"
            }
            Code::UnreadableOperations => "a migration's operations could not be read",
            Code::Irreversible => "an operation Django cannot unapply",
            Code::MaybeIrreversible => {
                "an operation whose reversibility cannot be known statically"
            }
            Code::DynamicMigration => "dependencies, replaces or operations computed at run time",
            Code::RuntimeSwappable => "a swappable dependency on a setting set at run time",
            Code::DataLoss => "unapplying drops a table or a column",
            Code::NotDjango => "the service is configured as not Django",
            Code::UnresolvedRevision => "an image tag does not map to a git revision",
            Code::NoManagePy => "no manage.py at either revision",
            Code::StaleRecord => "a ledger record exists but does not match the current plan",
            Code::UnrecordedBackwardMigrations => {
                "a downgrade needs backward migrations that are not recorded as run"
            }
            Code::UnjudgedChange => "an image change tagback could not judge is blocked",
            Code::AssumedExternalApps => {
                "apps from settings tagback cannot read are assumed to come from outside the repository"
            }
            Code::AssumedSettingsModule => {
                "manage.py names no settings module: the only one that sets INSTALLED_APPS was read (the others only inherit it)"
            }
            Code::UnplannedMigrations => {
                "a migrations directory gains migrations but belongs to no app installed as tagback reads the settings"
            }
            Code::ServiceRenamed => {
                "a service renamed in the same change that moves its image is judged as that service"
            }
            Code::ImageRemoved => "a Django service's image is removed or emptied",
            Code::UntrustedRecord => {
                "a ledger record is not signed by a trusted key or its evidence does not prove the plan"
            }
            Code::AutoRollback => {
                "a release that adds migrations can be rolled back behind tagback's back (Swarm's automatic rollback, docker service rollback)"
            }
            Code::GuardNoTargets => {
                "the guard blocks but cannot name the backward commands (use tagback script)"
            }
            Code::UnreachableByMigrate => {
                "a migration to unapply hangs off an old one: no per-app migrate target reaches it exactly, so the plan unapplies it with Django's executor (an `executor` step)"
            }
            Code::UnpinnedRequirement => {
                "a requirement without an exact version: its migrations cannot be known"
            }
            Code::PackageUnavailable => {
                "a package whose pinned version changes cannot be obtained to read its migrations"
            }
            Code::PackageUnreadable => {
                "a changed package's apps or migrations cannot be read from its archive"
            }
            Code::AssumedEnvironment => {
                "a pin's environment marker depends on the image's Python version or machine (assumed installed), or never holds on Linux"
            }
            Code::UnreadAppLabel => {
                "the label of an app from outside the repository was not read; its guess is not used to decide anything"
            }
        }
    }

    /// Every code, for documentation and tests.
    pub const ALL: [Code; 31] = [
        Code::SquashStraddles,
        Code::LeafSquashedWithNewer,
        Code::LeafMissing,
        Code::AmbiguousTarget,
        Code::NoExactOrder,
        Code::UnreadableOperations,
        Code::Irreversible,
        Code::MaybeIrreversible,
        Code::DynamicMigration,
        Code::RuntimeSwappable,
        Code::DataLoss,
        Code::NotDjango,
        Code::UnresolvedRevision,
        Code::NoManagePy,
        Code::StaleRecord,
        Code::UnrecordedBackwardMigrations,
        Code::UnjudgedChange,
        Code::AssumedExternalApps,
        Code::AssumedSettingsModule,
        Code::UnplannedMigrations,
        Code::ServiceRenamed,
        Code::ImageRemoved,
        Code::UntrustedRecord,
        Code::AutoRollback,
        Code::GuardNoTargets,
        Code::UnreachableByMigrate,
        Code::UnpinnedRequirement,
        Code::PackageUnavailable,
        Code::PackageUnreadable,
        Code::AssumedEnvironment,
        Code::UnreadAppLabel,
    ];
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding: a code, one sentence, and where (when known).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Finding {
    /// Stable code.
    pub code: Code,
    /// One sentence for people.
    pub message: String,
    /// Repository path, when the finding has a place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based line in `file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

impl Finding {
    /// A finding without a place.
    pub fn new(code: Code, message: impl Into<String>) -> Finding {
        Finding {
            code,
            message: message.into(),
            file: None,
            line: None,
        }
    }

    /// The same finding, placed at `file` (and `line` when non-zero).
    pub fn at(mut self, file: impl Into<String>, line: u32) -> Finding {
        self.file = Some(file.into());
        self.line = (line > 0).then_some(line);
        self
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A warning a person checked and accepted (`acknowledge:` in
/// `.tagback.yml`, as squawk's ignores): the finding is still reported, as
/// acknowledged with the reason, but no longer as a warning. Only findings
/// about one migration that do not block can be acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Acknowledgement {
    /// The finding's code (`data-loss`).
    pub code: Code,
    /// `APP.NAME` of the migration the finding is about.
    pub migration: String,
    /// Why it is acceptable (required, shown with the finding).
    pub reason: String,
}

impl Acknowledgement {
    /// Why this entry cannot be honoured, if it cannot: a blocking finding
    /// is never waved through, and only per-migration findings have a key.
    pub fn invalid(&self) -> Option<String> {
        let code = self.code.as_str();
        if self.code.severity() == Severity::Error {
            return Some(format!(
                "`{code}` blocks the downgrade and cannot be acknowledged (resolve it instead)"
            ));
        }
        if self.code != Code::DataLoss {
            return Some(format!(
                "`{code}` is not a finding about one migration; only `data-loss` can be acknowledged"
            ));
        }
        if !self.migration.contains('.') {
            return Some(format!("migration {:?} is not APP.NAME", self.migration));
        }
        if self.reason.trim().is_empty() {
            return Some(format!(
                "the acknowledgement of {} has no reason",
                self.migration
            ));
        }
        None
    }
}

/// A finding that `.tagback.yml` acknowledges, with the reason given there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Acknowledged {
    /// The finding.
    #[serde(flatten)]
    pub finding: Finding,
    /// `APP.NAME`.
    pub migration: String,
    /// The reason from `.tagback.yml`.
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::{Code, Finding};

    #[test]
    fn codes_serialize_as_their_stable_names() {
        for code in Code::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::json!(code.as_str()), "{code:?}");
            assert!(!code.summary().is_empty());
        }
        let names: std::collections::BTreeSet<&str> =
            Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), Code::ALL.len(), "codes are unique");
    }

    #[test]
    fn a_finding_without_a_place_has_no_file_or_line_in_json() {
        let f = Finding::new(Code::LeafMissing, "x");
        assert_eq!(
            serde_json::to_value(&f).unwrap(),
            serde_json::json!({"code": "leaf-missing", "message": "x"})
        );
        let f = f.at("a/b.py", 0);
        assert_eq!(
            serde_json::to_value(&f).unwrap(),
            serde_json::json!({"code": "leaf-missing", "message": "x", "file": "a/b.py"})
        );
    }
}

#[cfg(test)]
mod docs {
    /// Every code is documented in the README with an example.
    #[test]
    fn every_code_is_in_the_readme() {
        let readme = include_str!("../README.md");
        for code in super::Code::ALL {
            assert!(
                readme.contains(&format!("| `{code}` |")),
                "README lacks a row for finding code `{code}`"
            );
        }
    }
}
