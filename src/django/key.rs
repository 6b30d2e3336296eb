//! The name of one migration node: its app label and migration name.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One migration: `app.name` (`shop.0002_product_sku`). Ordered by app, then
/// name, so a sorted list keeps each app's migrations together. In JSON it is
/// the pair `["app", "name"]`, as the `unapply` list of a plan has always
/// printed it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MigrationKey {
    /// App label.
    pub app: Name,
    /// Migration name.
    pub name: Name,
}

/// An app label or a migration name, shared: a copy costs no allocation
/// (a revision's files, its graph and its plan hold the same names, and
/// the migrations of one app share its label).
#[derive(Clone, Eq, Default)]
pub struct Name(Arc<str>);

// Equal and ordered as the strings; one shared string is equal to itself
// without comparing its bytes (most comparisons in a plan are of the label
// an app's keys share).
impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Name) -> std::cmp::Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            return std::cmp::Ordering::Equal;
        }
        self.0.cmp(&other.0)
    }
}

impl std::hash::Hash for Name {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Name {
    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether two names are one shared string (not only equal).
    #[cfg(test)]
    pub(crate) fn is_shared_with(&self, other: &Name) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Deref for Name {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

// Ordered and hashed as the string it holds, so sets of names can be
// searched with a `&str`.
impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Name {
        Name(Arc::from(s))
    }
}

impl From<String> for Name {
    fn from(s: String) -> Name {
        Name(Arc::from(s))
    }
}

impl From<&String> for Name {
    fn from(s: &String) -> Name {
        Name(Arc::from(s.as_str()))
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<Name> for String {
    fn eq(&self, other: &Name) -> bool {
        **self == *other.0
    }
}

impl PartialEq<Name> for &str {
    fn eq(&self, other: &Name) -> bool {
        **self == *other.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Name, D::Error> {
        String::deserialize(d).map(Name::from)
    }
}

impl MigrationKey {
    /// From an app label and a migration name.
    pub fn new(app: impl Into<Name>, name: impl Into<Name>) -> MigrationKey {
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
        Ok(MigrationKey::new(app, name))
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
        MigrationKey::new(app, name)
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
    fn names_order_hash_and_print_as_their_strings() {
        use std::collections::BTreeSet;
        let set: BTreeSet<Name> = ["shop", "auth", "members"].map(Name::from).into();
        assert!(set.contains("members") && !set.contains("member"));
        let sorted: Vec<&str> = set.iter().map(Name::as_str).collect();
        assert_eq!(sorted, ["auth", "members", "shop"]);
        let n = Name::from("0001_initial");
        let owned = String::from("0001_initial");
        assert_eq!(n, "0001_initial");
        assert_eq!("0001_initial", n);
        assert_eq!(n, owned);
        assert_eq!(format!("{n} {n:?}"), r#"0001_initial "0001_initial""#);
        assert_eq!(serde_json::to_string(&n).unwrap(), r#""0001_initial""#);
        let back: Name = serde_json::from_str(r#""0001_initial""#).unwrap();
        assert_eq!(back, n);
        assert!(n.clone().is_shared_with(&n) && !back.is_shared_with(&n));
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
