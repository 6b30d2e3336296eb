//! JSON Schemas of what tagback prints and reads, generated from the types
//! themselves (schemars), so the published schemas in `docs/schema/` cannot
//! drift from the code: a test compares them.

use schemars::{JsonSchema, schema_for};

use crate::config::Config;
use crate::deploy::CheckReport;
use crate::plan::Plan;

/// Which schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaKind {
    /// `plan --format json`.
    Plan,
    /// `check --format json` and `gate --format json`.
    Check,
    /// `.tagback.yml`.
    Config,
}

impl SchemaKind {
    /// Every kind, for docs and tests.
    pub const ALL: [SchemaKind; 3] = [SchemaKind::Plan, SchemaKind::Check, SchemaKind::Config];

    /// The file name under `docs/schema/`.
    pub fn file_name(self) -> &'static str {
        match self {
            SchemaKind::Plan => "plan.schema.json",
            SchemaKind::Check => "check.schema.json",
            SchemaKind::Config => "tagback-yml.schema.json",
        }
    }
}

/// The output of `plan --format json`.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct PlanOutput {
    /// Always 1 (raised only with a breaking change).
    version: u32,
    #[serde(flatten)]
    plan: Plan,
}

/// The output of `check --format json` and `gate --format json`.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct CheckOutput {
    /// Always 1 (raised only with a breaking change).
    version: u32,
    #[serde(flatten)]
    report: CheckReport,
}

/// The schema as pretty JSON with a trailing newline.
pub fn schema(kind: SchemaKind) -> String {
    let value = match kind {
        SchemaKind::Plan => schema_for!(PlanOutput),
        SchemaKind::Check => schema_for!(CheckOutput),
        SchemaKind::Config => schema_for!(Config),
    };
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::{SchemaKind, schema};

    /// `docs/schema/*.json` are what the types say; regenerate with
    /// `cargo run -q -- schema KIND > docs/schema/FILE`.
    #[test]
    fn published_schemas_match_the_types() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema");
        for kind in SchemaKind::ALL {
            let path = dir.join(kind.file_name());
            let published = std::fs::read_to_string(&path).unwrap_or_default();
            assert_eq!(
                published,
                schema(kind),
                "{} is stale: cargo run -q -- schema {kind:?} > {}",
                path.display(),
                path.display()
            );
        }
    }
}
