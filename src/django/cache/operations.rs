//! The operations of one migration blob, for the migrations a plan unapplies
//! (the directory cache leaves operations out).

use super::text::{fields_of, optional, parse_optional};
use crate::django::migration::{CustomOp, Operation, Reversibility};

// Operations: one line each, tab-separated: kind, line, reversibility
// (`r`, `i`, `u`), reason, data loss, custom class, custom module; optional
// fields are `-` or `=value`.
const OPERATIONS_HEADER: &str = "tagback operations v1";

pub(super) fn encode(operations: &[Operation]) -> Option<String> {
    let mut out = String::from(OPERATIONS_HEADER);
    out.push('\n');
    for op in operations {
        let fields = [
            op.kind.clone(),
            op.line.to_string(),
            match op.reversibility {
                Reversibility::Reversible => "r",
                Reversibility::Irreversible => "i",
                Reversibility::Unknown => "u",
            }
            .to_string(),
            optional(op.reason.as_deref()),
            optional(op.data_loss.as_deref()),
            optional(op.custom.as_ref().map(|c| c.class.as_str())),
            optional(op.custom.as_ref().and_then(|c| c.module.as_deref())),
        ];
        if fields.iter().any(|f| f.contains(['\t', '\n', '\r'])) {
            return None;
        }
        out.push_str(&fields.join("\t"));
        out.push('\n');
    }
    Some(out)
}

pub(super) fn decode(text: &str) -> Option<Vec<Operation>> {
    let mut lines = text.lines();
    if lines.next()? != OPERATIONS_HEADER {
        return None;
    }
    lines
        .map(|line| {
            let mut f = fields_of(line, b'\t');
            let mut next = || f.next();
            let (kind, number, reversibility, reason, data_loss, class, module) = (
                next()?,
                next()?,
                next()?,
                next()?,
                next()?,
                next()?,
                next()?,
            );
            if f.next().is_some() {
                return None;
            }
            Some(Operation {
                kind: kind.to_string(),
                line: number.parse().ok()?,
                reversibility: match reversibility {
                    "r" => Reversibility::Reversible,
                    "i" => Reversibility::Irreversible,
                    "u" => Reversibility::Unknown,
                    _ => return None,
                },
                reason: parse_optional(reason)?,
                data_loss: parse_optional(data_loss)?,
                custom: match (parse_optional(class)?, parse_optional(module)?) {
                    (Some(class), module) => Some(CustomOp { module, class }),
                    (None, None) => None,
                    (None, Some(_)) => return None,
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_round_trip() {
        let ops = vec![
            Operation {
                kind: "RunPython".into(),
                line: 12,
                reversibility: Reversibility::Irreversible,
                reason: Some("RunPython without reverse_code".into()),
                data_loss: None,
                custom: None,
            },
            Operation {
                kind: "RemoveField".into(),
                line: 20,
                reversibility: Reversibility::Reversible,
                reason: None,
                data_loss: Some("drops column shop_order.note".into()),
                custom: None,
            },
            Operation {
                kind: "Backfill".into(),
                line: 31,
                reversibility: Reversibility::Unknown,
                reason: Some("custom operation".into()),
                data_loss: None,
                custom: Some(CustomOp {
                    module: Some("shop.ops".into()),
                    class: "Backfill".into(),
                }),
            },
        ];
        let text = encode(&ops).unwrap();
        assert_eq!(decode(&text).unwrap(), ops);
        let mut odd = ops[0].clone();
        odd.reason = Some("a\nb".into());
        assert_eq!(encode(&[odd]), None);
        assert_eq!(decode("garbage\n"), None);
        assert_eq!(
            decode(&format!("{OPERATIONS_HEADER}\nX\t1\t?\t-\t-\t-\t-\n")),
            None
        );
    }
}
