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
    /// The line of an `image:` key written without a value.
    pub image_line: Option<u64>,
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    services: Option<BTreeMap<String, Option<Service>>>,
    /// Present in Kubernetes manifests (named in the error).
    #[serde(default, rename = "apiVersion")]
    api_version: Option<serde::de::IgnoredAny>,
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

/// YAML nested deeper than this is refused (serde-saphyr's budget; its
/// parser also stops flow collections at a recursion limit).
pub const MAX_YAML_DEPTH: usize = 64;

/// One line for a YAML error: `line L column C: message`, with the nesting
/// bounds said in words.
pub fn yaml_error(e: &serde_saphyr::Error) -> String {
    let mut first = e
        .to_string()
        .lines()
        .next()
        .unwrap_or("invalid YAML")
        .trim()
        .to_string();
    if let Some(rest) = first.strip_prefix("error: ") {
        first = rest.to_string();
    }
    if let Some(at) = first
        .find("budget breached: Depth")
        .or_else(|| first.find("recursion limit exceeded"))
    {
        first = format!("{}nested deeper than {MAX_YAML_DEPTH} levels", &first[..at]);
    }
    match e.location() {
        Some(loc) if !first.contains("line ") => {
            format!("line {} column {}: {first}", loc.line(), loc.column())
        }
        _ => first,
    }
}

/// Parse one stack file. Errors are one line: `line L column C: message`.
/// A file without a top-level `services:` mapping (a Kubernetes manifest,
/// Helm values, an empty file) is not a compose/stack file: an error.
pub fn parse(text: &str) -> Result<BTreeMap<String, RawService>, String> {
    let file: File = serde_saphyr::from_str(text).map_err(|e| {
        // Valid YAML whose top level is not a mapping: say what is wrong with it.
        let msg = yaml_error(&e);
        let wrong_shape = msg.contains("expected mapping") || msg.contains("expected struct File");
        if wrong_shape
            && serde_saphyr::from_str::<BTreeMap<String, serde::de::IgnoredAny>>(text).is_err()
            && serde_saphyr::from_str::<serde::de::IgnoredAny>(text).is_ok()
        {
            "not a compose/stack file: the top level is not a mapping with `services:`".to_string()
        } else {
            msg
        }
    })?;
    let Some(services) = file.services else {
        let looks_like = if file.api_version.is_some() {
            " (it has `apiVersion:`: a Kubernetes manifest?)"
        } else {
            ""
        };
        return Err(format!(
            "not a compose/stack file: no `services:` mapping at the top level{looks_like}"
        ));
    };
    let mut out = BTreeMap::new();
    for (name, svc) in services {
        let mut raw = RawService::default();
        if let Some(svc) = svc {
            if let Some(img) = svc.image {
                raw.line = img.referenced.line();
                match img.value {
                    Some(v) => raw.image = Some((v, img.referenced.line())),
                    None => raw.image_line = Some(img.referenced.line()),
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

    #[test]
    fn r15_kubernetes_helm_and_empty_files_are_not_stack_files() {
        let k8s = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: shop:1\n";
        let e = parse(k8s).unwrap_err();
        assert!(
            e.contains("not a compose/stack file: no `services:`"),
            "{e}"
        );
        assert!(e.contains("Kubernetes"), "{e}");
        let helm = "replicaCount: 2\nimage:\n  repository: shop\n  tag: \"1\"\n";
        let e = parse(helm).unwrap_err();
        assert!(e.contains("not a compose/stack file"), "{e}");
        for text in ["", "\n# only a comment\n", "- a\n- b\n", "just text\n"] {
            let e = parse(text).unwrap_err();
            assert!(e.contains("not a compose/stack file"), "{text:?}: {e}");
        }
    }

    #[test]
    fn r15_deep_yaml_names_the_bound() {
        let n = 100_000;
        let y = format!(
            "services:\n  web:\n    image: shop:1\nx-deep: {}{}\n",
            "[".repeat(n),
            "]".repeat(n)
        );
        let e = parse(&y).unwrap_err();
        assert!(e.starts_with("line 4"), "{e}");
        assert!(e.contains("nested deeper than 64 levels"), "{e}");
        let mut y = String::from("services:\n  web:\n    image: shop:1\nx-deep:\n");
        for level in 0..100 {
            y.push_str(&" ".repeat(level * 2 + 2));
            y.push_str("a:\n");
        }
        let e = parse(&y).unwrap_err();
        assert!(e.contains("nested deeper than 64 levels"), "{e}");
    }
}
