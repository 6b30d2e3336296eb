//! The name of one migration node: its app label and migration name.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One migration: `app.name` (`shop.0002_product_sku`). Ordered by app, then
/// name, so a sorted list keeps each app's migrations together. In JSON it is
/// the pair `["app", "name"]`, as the `unapply` list of a plan has always
/// printed it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MigrationKey {
    /// App label.
    pub app: String,
    /// Migration name.
    pub name: String,
}

impl MigrationKey {
    /// From an app label and a migration name.
    pub fn new(app: impl Into<String>, name: impl Into<String>) -> MigrationKey {
        MigrationKey {
            app: app.into(),
            name: name.into(),
        }
    }

    /// The key as borrowed parts, for comparing against `(&str, &str)`
    /// without allocating.
    pub fn parts(&self) -> (&str, &str) {
        (&self.app, &self.name)
    }

    /// `app.name` parsed back (the first dot splits: app labels have none).
    pub fn parse_dotted(s: &str) -> Option<MigrationKey> {
        s.split_once('.').map(|(a, n)| MigrationKey::new(a, n))
    }
}

impl fmt::Display for MigrationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.app, self.name)
    }
}

impl Serialize for MigrationKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (&self.app, &self.name).serialize(s)
    }
}

impl<'de> Deserialize<'de> for MigrationKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MigrationKey, D::Error> {
        let (app, name) = <(String, String)>::deserialize(d)?;
        Ok(MigrationKey { app, name })
    }
}

impl schemars::JsonSchema for MigrationKey {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        <(String, String)>::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        <(String, String)>::schema_id()
    }

    fn inline_schema() -> bool {
        <(String, String)>::inline_schema()
    }

    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <(String, String)>::json_schema(g)
    }
}

impl From<(String, String)> for MigrationKey {
    fn from((app, name): (String, String)) -> MigrationKey {
        MigrationKey { app, name }
    }
}

impl From<(&str, &str)> for MigrationKey {
    fn from((app, name): (&str, &str)) -> MigrationKey {
        MigrationKey::new(app, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_the_pair_and_display_is_dotted() {
        let k = MigrationKey::new("shop", "0002_product_sku");
        assert_eq!(
            serde_json::to_string(&k).unwrap(),
            r#"["shop","0002_product_sku"]"#
        );
        assert_eq!(k.to_string(), "shop.0002_product_sku");
        let back: MigrationKey = serde_json::from_str(r#"["shop","0002_product_sku"]"#).unwrap();
        assert_eq!(back, k);
        assert_eq!(MigrationKey::parse_dotted("shop.0002_product_sku"), Some(k));
    }

    #[test]
    fn orders_by_app_then_name() {
        let mut v = [
            MigrationKey::new("shop", "0001"),
            MigrationKey::new("members", "0002"),
            MigrationKey::new("members", "0001"),
        ];
        v.sort();
        let shown: Vec<String> = v.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["members.0001", "members.0002", "shop.0001"]);
    }
}
