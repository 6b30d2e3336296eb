//! CI-native renderings of a check report: GitHub workflow commands
//! (`::error file=…,line=…,title=…::…`) and SARIF 2.1.0 for code-scanning
//! uploads. Both are views of the same findings: [`service_findings`] lists
//! every finding of a service with its place and weight.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{Value, json};

use crate::deploy::{CheckReport, ServiceReport};
use crate::finding::{Code, Finding, Severity};

/// One finding of a service, with the weight it has for this service (a
/// plan problem is an error; data loss a warning; a note a notice).
#[derive(Debug, Clone)]
pub struct Located {
    /// The service it belongs to.
    pub service: String,
    /// How much it weighs here.
    pub severity: Severity,
    /// The finding (its file is the stack file or a migration file).
    pub finding: Finding,
}

/// Every finding of a service: why it is blocked (at the stack file's
/// `image:` line), then the plan's problems, irreversible and dynamic
/// operations, data loss, migrations no per-app target reaches, and notes.
pub fn service_findings(s: &ServiceReport) -> Vec<Located> {
    let mut out = Vec::new();
    let mut push = |severity: Severity, finding: Finding| {
        out.push(Located {
            service: s.service.clone(),
            severity,
            finding,
        })
    };
    let line = u32::try_from(s.line).unwrap_or(0);
    if !s.safe {
        let finding = match &s.plan {
            Some(p) if p.needs_backward_migrations() => Finding::new(
                Code::UnrecordedBackwardMigrations,
                format!(
                    "{}: {} {} → {} needs {} backward migration(s) from {} to {}, not recorded as run",
                    s.service,
                    s.direction.as_str(),
                    s.from_image,
                    s.to_image,
                    p.unapply.len(),
                    p.from,
                    p.to
                ),
            ),
            _ => Finding::new(
                Code::UnjudgedChange,
                format!(
                    "{}: {} {} → {} could not be judged{}",
                    s.service,
                    s.direction.as_str(),
                    s.from_image,
                    s.to_image,
                    s.notes
                        .first()
                        .map(|n| format!(": {}", n.message))
                        .unwrap_or_default()
                ),
            ),
        };
        push(Severity::Error, finding.at(s.file.clone(), line));
    }
    if let Some(p) = &s.plan {
        for f in &p.problems {
            push(Severity::Error, f.clone());
        }
        for i in &p.irreversible {
            push(
                Severity::Error,
                Finding::new(i.code, i.message.clone()).at(i.file.clone(), i.line),
            );
        }
        for d in &p.dynamic {
            push(
                Severity::Error,
                Finding::new(d.code, d.message.clone()).at(d.file.clone(), d.line),
            );
        }
        for d in &p.data_loss {
            push(
                Severity::Warning,
                Finding::new(d.code, d.message.clone()).at(d.file.clone(), d.line),
            );
        }
        // Migrations no per-app `migrate APP TARGET` reaches (the executor
        // step unapplies them): a warning at the migration's file.
        for u in &p.unreachable {
            push(u.code.severity(), u.clone());
        }
        for n in &p.notes {
            push(Severity::Note, n.clone());
        }
        for a in &p.acknowledged {
            let mut note = a.finding.clone();
            note.message = format!("{} (acknowledged: {})", note.message, a.reason);
            push(Severity::Note, note);
        }
    }
    for n in &s.notes {
        let placed = if n.file.is_some() {
            n.clone()
        } else {
            n.clone().at(s.file.clone(), line)
        };
        push(n.code.severity(), placed);
    }
    out
}

/// Escape the message of a workflow command (`%`, CR, LF).
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escape a property of a workflow command (also `:` and `,`).
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// GitHub workflow commands: `::error` for what blocks, `::warning` for data
/// loss, `::notice` for notes; then one summary line.
pub fn github(r: &CheckReport, w: &mut dyn Write) -> std::io::Result<()> {
    for s in &r.services {
        for l in service_findings(s) {
            let kind = match l.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Note => "notice",
            };
            let mut props = Vec::new();
            if let Some(f) = &l.finding.file {
                props.push(format!("file={}", escape_property(f)));
                if let Some(line) = l.finding.line {
                    props.push(format!("line={line}"));
                }
            }
            props.push(format!(
                "title={}",
                escape_property(&format!("tagback {} ({})", l.finding.code, l.service))
            ));
            writeln!(
                w,
                "::{kind} {}::{}",
                props.join(","),
                escape_data(&l.finding.message)
            )?;
        }
    }
    let blocked = r.services.iter().filter(|s| !s.safe).count();
    if blocked == 0 {
        writeln!(
            w,
            "tagback: {} image change(s), nothing unsafe.",
            r.services.len()
        )
    } else {
        writeln!(w, "tagback: {blocked} service(s) blocked.")
    }
}

/// A SARIF 2.1.0 log with one run: a rule per finding code, a result per
/// finding, located in the stack file or the migration file.
pub fn sarif(r: &CheckReport) -> Value {
    let mut rules: BTreeMap<Code, usize> = BTreeMap::new();
    let located: Vec<Located> = r.services.iter().flat_map(service_findings).collect();
    for l in &located {
        let next = rules.len();
        rules.entry(l.finding.code).or_insert(next);
    }
    let mut ordered: Vec<(Code, usize)> = rules.iter().map(|(c, i)| (*c, *i)).collect();
    ordered.sort_by_key(|(_, i)| *i);
    let rule_objects: Vec<Value> = ordered
        .iter()
        .map(|(code, _)| {
            json!({
                "id": code.as_str(),
                "shortDescription": {"text": code.summary()},
                "helpUri": format!("https://github.com/tagback/tagback#{}", code.as_str()),
                "defaultConfiguration": {"level": level(code.severity())},
            })
        })
        .collect();
    let results: Vec<Value> = located
        .iter()
        .map(|l| {
            let mut result = json!({
                "ruleId": l.finding.code.as_str(),
                "ruleIndex": rules[&l.finding.code],
                "level": level(l.severity),
                "message": {"text": l.finding.message},
                "properties": {"service": l.service},
            });
            if let Some(file) = &l.finding.file {
                let mut physical = json!({"artifactLocation": {"uri": file}});
                if let Some(line) = l.finding.line {
                    physical["region"] = json!({"startLine": line});
                }
                result["locations"] = json!([{"physicalLocation": physical}]);
            }
            result
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "tagback",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/tagback/tagback",
                "rules": rule_objects,
            }},
            "results": results,
            "properties": {"safe": r.safe, "from": r.from, "to": r.to},
        }],
    })
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    }
}

#[cfg(test)]
mod tests {
    use super::{escape_data, escape_property};

    #[test]
    fn workflow_command_values_are_escaped() {
        assert_eq!(escape_data("50% a\nb\r"), "50%25 a%0Ab%0D");
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
        // A hostile service name cannot start a new workflow command.
        assert!(!escape_data("x\n::error::owned").contains('\n'));
    }
}
