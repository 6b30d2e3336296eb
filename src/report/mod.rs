//! Renderers: plans and check reports as text, JSON and markdown. Every
//! renderer writes to an `io::Write`; none decides exit codes.

use std::io::Write;

use owo_colors::{OwoColorize, Stream};

use crate::analysis::{CheckReport, ServiceReport};
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::stack::Direction;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// One JSON object on stdout.
    Json,
    /// For pull requests and CI summaries.
    Markdown,
}

fn io(e: std::io::Error) -> Error {
    Error::io("<stdout>", e)
}

/// Write any serializable value as pretty JSON plus a newline.
pub fn json<T: serde::Serialize>(value: &T, w: &mut dyn Write) -> Result<()> {
    // One write, not one per line (stdout is line-buffered).
    let mut text = serde_json::to_vec_pretty(value).map_err(|e| Error::io("<stdout>", e.into()))?;
    text.push(b'\n');
    w.write_all(&text).map_err(io)
}

/// A plan for people.
pub fn plan_text(plan: &Plan, w: &mut dyn Write) -> Result<()> {
    plan_text_indented(plan, w, "").map_err(io)
}

fn plan_text_indented(plan: &Plan, w: &mut dyn Write, ind: &str) -> std::io::Result<()> {
    if plan.unapply.is_empty() && plan.problems.is_empty() {
        writeln!(
            w,
            "{ind}No backward migrations: {} has every migration {} has applied.",
            plan.to, plan.from
        )?;
    } else {
        writeln!(
            w,
            "{ind}Backward migrations from {} to {} (run with the {} code):",
            plan.from, plan.to, plan.from
        )?;
        for (i, s) in plan.steps.iter().enumerate() {
            let command = plan.commands.get(i).cloned();
            let command = command.unwrap_or_else(|| crate::plan::command(&s.app, &s.target));
            writeln!(w, "{ind}  {}. {command}", i + 1)?;
            writeln!(w, "{ind}       unapplies: {}", s.unapply.join(", "))?;
        }
    }
    for p in &plan.problems {
        let tag = "cannot plan:"
            .if_supports_color(Stream::Stdout, |t| t.red().bold().to_string())
            .to_string();
        writeln!(w, "{ind}  {tag} {p}")?;
    }
    for i in &plan.irreversible {
        let tag = match i.certainty {
            crate::django::migration::Reversibility::Irreversible => "irreversible:",
            _ => "maybe irreversible:",
        };
        let tag = tag
            .if_supports_color(Stream::Stdout, |t| t.red().bold().to_string())
            .to_string();
        writeln!(
            w,
            "{ind}  {tag} {}.{} {} at {}:{} ({})",
            i.app, i.migration, i.operation, i.file, i.line, i.reason
        )?;
    }
    for d in &plan.dynamic {
        writeln!(
            w,
            "{ind}  dynamic: {}:{} {}.{}: {}",
            d.file, d.line, d.app, d.migration, d.what
        )?;
    }
    for d in &plan.data_loss {
        let tag = "data loss:"
            .if_supports_color(Stream::Stdout, |t| t.yellow().to_string())
            .to_string();
        writeln!(w, "{ind}  {tag} {}.{} {}", d.app, d.migration, d.what)?;
    }
    for (i, a) in plan.old_only_apps.iter().enumerate() {
        let command = plan.post_commands.get(i).cloned();
        let command = command.unwrap_or_else(|| format!("python manage.py migrate {}", a.app));
        writeln!(
            w,
            "{ind}  old-only app: {} (up to {}) is not migrated by {}; after the retag run `{command}` with the {} code",
            a.app, a.leaf, plan.from, plan.to
        )?;
    }
    Ok(())
}

/// `--from A [--to B] [-f FILE]... --service S`, quoted: the arguments that
/// make `tagback script` and `tagback record` see the same change as this
/// report, pasted verbatim (the index and the working tree are the default
/// `--to`).
pub fn rerun_args(r: &CheckReport, service: &str) -> String {
    use crate::script::quote::bash;
    let mut out = format!("--from {}", bash(&r.from));
    if r.to != "the working tree" && r.to != "the index" {
        out.push_str(&format!(" --to {}", bash(&r.to)));
    }
    for f in &r.files {
        out.push_str(&format!(" -f {}", bash(f)));
    }
    out.push_str(&format!(" --service {}", bash(service)));
    out
}

fn verdict(s: &ServiceReport) -> &'static str {
    if s.safe { "ok" } else { "BLOCKED" }
}

/// A check report for people.
pub fn check_text(r: &CheckReport, w: &mut dyn Write) -> Result<()> {
    check_text_inner(r, w).map_err(io)
}

fn check_text_inner(r: &CheckReport, w: &mut dyn Write) -> std::io::Result<()> {
    if r.services.is_empty() {
        writeln!(
            w,
            "tagback: no image changes in {} between {} and {}.",
            r.files.join(", "),
            r.from,
            r.to
        )?;
        return Ok(());
    }
    for s in &r.services {
        let v = verdict(s);
        let v = if s.safe {
            v.if_supports_color(Stream::Stdout, |t| t.green().to_string())
                .to_string()
        } else {
            v.if_supports_color(Stream::Stdout, |t| t.red().bold().to_string())
                .to_string()
        };
        writeln!(
            w,
            "[{v}] {}: {} {} → {} ({}:{})",
            s.service,
            s.direction.as_str(),
            s.from_image,
            s.to_image,
            s.file,
            s.line
        )?;
        if let (Some(a), Some(b)) = (&s.from_rev, &s.to_rev) {
            writeln!(w, "  source revisions: {a} → {b}")?;
        }
        if let Some(n) = &s.note {
            writeln!(w, "  {n}")?;
        }
        if let Some(p) = &s.plan {
            plan_text_indented(p, w, "  ")?;
            if p.needs_backward_migrations() {
                if s.recorded {
                    writeln!(
                        w,
                        "  recorded: the backward migrations were recorded as run (plan {}).",
                        &p.fingerprint[..12]
                    )?;
                } else {
                    let revs = rerun_args(r, &s.service);
                    writeln!(
                        w,
                        "  not recorded: run `tagback script {revs} -o rollback.sh` and then `./rollback.sh` (or the commands above with the {} image), then `tagback record {revs} --evidence FILE` (the script prints the exact command).",
                        s.from_image
                    )?;
                }
            }
        } else if !s.safe && s.direction != Direction::Upgrade {
            writeln!(
                w,
                "  a {} that tagback cannot plan is not waved through.",
                s.direction.as_str()
            )?;
        }
    }
    let summary = if r.safe {
        "tagback: safe.".to_string()
    } else {
        let n = r.services.iter().filter(|s| !s.safe).count();
        format!("tagback: {n} service(s) blocked.")
    };
    writeln!(w, "{summary}")
}

/// A check report as markdown (pull requests, CI summaries).
pub fn check_markdown(r: &CheckReport, w: &mut dyn Write) -> Result<()> {
    check_markdown_inner(r, w).map_err(io)
}

fn check_markdown_inner(r: &CheckReport, w: &mut dyn Write) -> std::io::Result<()> {
    let blocked = r.services.iter().filter(|s| !s.safe).count();
    if r.safe {
        writeln!(w, "### ✅ tagback: no unsafe downgrade")?;
    } else {
        writeln!(
            w,
            "### ❌ tagback: {blocked} service(s) need backward migrations before this deploy"
        )?;
    }
    writeln!(w)?;
    if r.services.is_empty() {
        writeln!(w, "No image changes in `{}`.", r.files.join("`, `"))?;
        return Ok(());
    }
    writeln!(
        w,
        "| service | change | direction | backward migrations | status |"
    )?;
    writeln!(w, "|---|---|---|---|---|")?;
    for s in &r.services {
        let n = s
            .plan
            .as_ref()
            .map_or("not computed".to_string(), |p| p.unapply.len().to_string());
        let status = if s.safe {
            "ok"
        } else if s.recorded {
            "recorded"
        } else {
            "**blocked**"
        };
        writeln!(
            w,
            "| `{}` | `{}` → `{}` | {} | {} | {} |",
            s.service,
            s.from_image,
            s.to_image,
            s.direction.as_str(),
            n,
            status
        )?;
    }
    for s in &r.services {
        let Some(p) = &s.plan else {
            if let Some(n) = &s.note {
                writeln!(w, "\n**{}**: {}", s.service, n)?;
            }
            continue;
        };
        if !p.needs_backward_migrations() && p.problems.is_empty() {
            continue;
        }
        plan_markdown_inner(&s.service, p, w)?;
    }
    Ok(())
}

/// One plan as a markdown section.
pub fn plan_markdown(service: &str, p: &Plan, w: &mut dyn Write) -> Result<()> {
    plan_markdown_inner(service, p, w).map_err(io)
}

fn plan_markdown_inner(service: &str, p: &Plan, w: &mut dyn Write) -> std::io::Result<()> {
    writeln!(w, "\n#### `{service}`: {} → {}\n", p.from, p.to)?;
    if !p.irreversible.is_empty() {
        writeln!(
            w,
            "> **Rollback impossible as planned**: {} operation(s) cannot be unapplied.\n",
            p.irreversible.len()
        )?;
    }
    if !p.data_loss.is_empty() {
        writeln!(
            w,
            "> **Drops data**: {}\n",
            p.data_loss
                .iter()
                .map(|d| d.what.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        )?;
    }
    if !p.commands.is_empty() {
        writeln!(w, "```sh")?;
        for c in &p.commands {
            writeln!(w, "{c}")?;
        }
        writeln!(w, "```")?;
    }
    for i in &p.irreversible {
        writeln!(
            w,
            "- irreversible: `{}.{}` {} at `{}:{}` ({})",
            i.app, i.migration, i.operation, i.file, i.line, i.reason
        )?;
    }
    for x in &p.problems {
        writeln!(w, "- cannot plan: {x}")?;
    }
    Ok(())
}
