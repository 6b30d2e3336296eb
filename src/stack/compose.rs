//! Compose / stack files read into a typed model with line numbers.
//!
//! `serde-saphyr` is used because it is maintained, applies `<<: *anchor`
//! merge keys while reading into typed structs, reports line/column, and
//! bounds alias expansion (a "billion laughs" file is refused quickly).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

/// One service as written in one file (before interpolation).
#[derive(Debug, Clone, Default)]
pub struct RawService {
    /// `image:` and its line.
    pub image: Option<(String, u64)>,
    /// `deploy.replicas:` as written (a number or an interpolated string).
    pub replicas: Option<(String, u64)>,
    /// The line of the service's first key.
    pub line: u64,
    /// `deploy.update_config.failure_action:` and its line.
    pub failure_action: Option<(String, u64)>,
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    services: Option<BTreeMap<String, Option<Service>>>,
}

#[derive(Deserialize)]
struct Service {
    #[serde(default)]
    image: Option<Spanned<Option<String>>>,
    #[serde(default)]
    deploy: Option<Deploy>,
}

#[derive(Deserialize)]
struct Deploy {
    #[serde(default)]
    replicas: Option<Spanned<Scalar>>,
    #[serde(default)]
    update_config: Option<UpdateConfig>,
}

#[derive(Deserialize)]
struct UpdateConfig {
    #[serde(default)]
    failure_action: Option<Spanned<Scalar>>,
}

/// A YAML scalar that may be a number or a string.
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number or a string")
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Parse one stack file. Errors are one line: `line L column C: message`.
pub fn parse(text: &str) -> Result<BTreeMap<String, RawService>, String> {
    let file: File = serde_saphyr::from_str(text).map_err(|e| {
        let first = e
            .to_string()
            .lines()
            .next()
            .unwrap_or("invalid YAML")
            .trim()
            .to_string();
        match e.location() {
            Some(loc) if !first.contains("line ") => {
                format!("line {} column {}: {first}", loc.line(), loc.column())
            }
            _ => first,
        }
    })?;
    let mut out = BTreeMap::new();
    for (name, svc) in file.services.unwrap_or_default() {
        let mut raw = RawService::default();
        if let Some(svc) = svc {
            if let Some(img) = svc.image {
                raw.line = img.referenced.line();
                if let Some(v) = img.value {
                    raw.image = Some((v, img.referenced.line()));
                }
            }
            if let Some(d) = svc.deploy {
                if let Some(r) = d.replicas {
                    raw.replicas = Some((r.value.0, r.referenced.line()));
                }
                if let Some(a) = d.update_config.and_then(|u| u.failure_action) {
                    raw.failure_action = Some((a.value.0, a.referenced.line()));
                }
            }
        }
        out.insert(name, raw);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keys_and_extension_fields() {
        let y = "x-defaults: &defaults\n  image: shop:1.0\n  deploy:\n    replicas: 3\nservices:\n  web:\n    <<: *defaults\n  worker:\n    <<: *defaults\n    image: shop:2.0\n  db:\n    image: postgres:16\n    unknown_key: [1, 2]\n";
        let s = parse(y).unwrap();
        assert_eq!(s["web"].image.as_ref().unwrap().0, "shop:1.0");
        assert_eq!(s["web"].replicas.as_ref().unwrap().0, "3");
        assert_eq!(s["worker"].image.as_ref().unwrap().0, "shop:2.0");
        assert_eq!(s["db"].image.as_ref().unwrap().0, "postgres:16");
    }

    #[test]
    fn malformed_yaml_names_the_line() {
        let e = parse("services:\n  web:\n    image: [unclosed\n").unwrap_err();
        assert!(e.contains("line"), "{e}");
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut y = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let mut prev = 'a';
        for c in 'b'..='j' {
            y.push_str(&format!("{c}: &{c} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
            prev = c;
        }
        y.push_str("services:\n  web:\n    image: shop:1\n");
        assert!(parse(&y).is_err());
    }

    #[test]
    fn failure_action_with_its_line() {
        let s = parse("services:\n  web:\n    image: shop:1\n    deploy:\n      update_config:\n        failure_action: rollback\n").unwrap();
        assert_eq!(s["web"].failure_action, Some(("rollback".to_string(), 6)));
    }

    #[test]
    fn build_only_and_empty_services() {
        let s = parse("services:\n  web:\n    build: .\n  empty:\n").unwrap();
        assert!(s["web"].image.is_none());
        assert!(s["empty"].image.is_none());
    }
}
