//! Renderers: plans and check reports as text, JSON and markdown. Every
//! renderer writes to an `io::Write`; none decides exit codes.

use std::io::Write;

use owo_colors::{OwoColorize, Stream};

use crate::deploy::{CheckReport, ServiceReport};
use crate::django::MigrationKey;
use crate::error::{Error, Result};
use crate::finding::Code;
use crate::plan::{Plan, Step};
use crate::stack::Direction;

pub mod ci;
pub mod schema;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// One JSON object on stdout.
    Json,
    /// For pull requests and CI summaries.
    Markdown,
    /// GitHub workflow commands (`::error file=…,line=…::…`): annotations in
    /// the pull request (`check` and `gate`).
    Github,
    /// SARIF 2.1.0, for code-scanning uploads (`check` and `gate`).
    Sarif,
}

fn io(e: std::io::Error) -> Error {
    Error::io("<stdout>", e)
}

/// The `version` of every JSON output; raised only with a breaking change.
pub const JSON_VERSION: u32 = 1;

/// A JSON object with `"version"` first.
#[derive(serde::Serialize)]
struct Versioned<'a, T: serde::Serialize> {
    version: u32,
    #[serde(flatten)]
    body: &'a T,
}

/// Write a serializable object as pretty JSON plus a newline, with
/// `"version": 1` at the top level.
pub fn json<T: serde::Serialize>(value: &T, w: &mut dyn Write) -> Result<()> {
    let value = Versioned {
        version: JSON_VERSION,
        body: value,
    };
    // One write, not one per line (stdout is line-buffered).
    let mut text =
        serde_json::to_vec_pretty(&value).map_err(|e| Error::io("<stdout>", e.into()))?;
    text.push(b'\n');
    w.write_all(&text).map_err(io)
}

/// A check report as GitHub workflow commands.
pub fn check_github(r: &CheckReport, w: &mut dyn Write) -> Result<()> {
    ci::github(r, w).map_err(io)
}

/// A check report as a SARIF 2.1.0 log.
pub fn check_sarif(r: &CheckReport, w: &mut dyn Write) -> Result<()> {
    let mut text =
        serde_json::to_vec_pretty(&ci::sarif(r)).map_err(|e| Error::io("<stdout>", e.into()))?;
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
        writeln!(w, "{ind}  {}", totals(plan, ""))?;
        for (i, s) in plan.steps.iter().enumerate() {
            let command = plan.commands.get(i).cloned().unwrap_or_default();
            let unapply = s.unapply();
            match s {
                Step::Migrate(_) => writeln!(w, "{ind}  {}. {command}", i + 1)?,
                Step::Executor(x) => executor_step_text(x, i + 1, w, ind)?,
            }
            if unapply.len() <= 4 {
                writeln!(w, "{ind}       unapplies: {}", unapply.join(", "))?;
            } else {
                writeln!(w, "{ind}       unapplies {}:", unapply.len())?;
                for m in unapply {
                    writeln!(w, "{ind}         {m}")?;
                }
            }
        }
    }
    for u in &plan.unreachable {
        let tag = "no per-app target:"
            .if_supports_color(Stream::Stdout, |t| t.yellow().to_string())
            .to_string();
        writeln!(w, "{ind}  {tag} {}", u.message)?;
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
    for a in &plan.acknowledged {
        writeln!(
            w,
            "{ind}  acknowledged: {} ({}: {})",
            a.finding.message,
            crate::config::FILE_NAME,
            a.reason
        )?;
    }
    for n in &plan.notes {
        writeln!(w, "{ind}  assumed: {}", n.message)?;
    }
    for (i, a) in plan.old_only_apps.iter().enumerate() {
        let command = plan.post_commands.get(i).cloned();
        let command = command.unwrap_or_else(|| {
            crate::plan::migrate_command(crate::plan::DEFAULT_MANAGE, &a.app, None)
        });
        writeln!(
            w,
            "{ind}  old-only app: {} (up to {}) is not migrated by {}; after the retag run `{command}` with the {} code",
            a.app, a.leaf, plan.from, plan.to
        )?;
    }
    Ok(())
}

/// The executor step for people: what it is, why, and how to run it (the
/// Python code itself is in `commands` of the JSON and in the script).
fn executor_step_text(
    x: &crate::plan::ExecutorStep,
    number: usize,
    w: &mut dyn Write,
    ind: &str,
) -> std::io::Result<()> {
    writeln!(
        w,
        "{ind}  {number}. unapply exactly these {} migration(s) with Django's own MigrationExecutor (`manage.py shell -c`, code in `--format json` commands and in `tagback script`)",
        x.unapply.len()
    )?;
    writeln!(
        w,
        "{ind}       why: no per-app `migrate APP TARGET` is exact here ({}); this step hands MigrationExecutor.migrate an explicit backwards plan (children before parents), refuses before changing anything if the database or the code differs from the plan, and verifies afterwards that exactly these are unapplied",
        x.why
    )?;
    writeln!(
        w,
        "{ind}       stays applied: {}",
        if x.keep_applied.is_empty() {
            "nothing of these apps".to_string()
        } else {
            x.keep_applied.join(", ")
        }
    )?;
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

/// The new image in a headline (a removed image is said, not left blank).
fn shown_image(image: &str) -> &str {
    if image.is_empty() {
        "(no image)"
    } else {
        image
    }
}

/// A move in a sentence, with its article: "a downgrade", "an unknown move".
fn move_phrase(d: Direction) -> &'static str {
    match d {
        Direction::Upgrade => "an upgrade",
        Direction::Downgrade => "a downgrade",
        Direction::Sideways => "a sideways move",
        Direction::Unchanged => "an unchanged image",
        Direction::Unknown => "a move in an unknown direction",
    }
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
            shown_image(&s.to_image),
            s.file,
            s.line
        )?;
        if let (Some(a), Some(b)) = (&s.from_rev, &s.to_rev) {
            writeln!(w, "  source revisions: {a} → {b}")?;
        }
        for n in &s.notes {
            match (&n.file, n.line) {
                (Some(f), Some(l)) => writeln!(w, "  {} ({f}:{l}): {n}", n.code)?,
                _ => writeln!(w, "  {n}")?,
            }
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
                } else if let Some(next) = next_step(r, s) {
                    writeln!(w, "  not recorded: {next}")?;
                }
            }
        } else if !s.safe
            && s.direction != Direction::Upgrade
            && let Some(next) = next_step(r, s)
        {
            writeln!(w, "  {next}")?;
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
            shown_image(&s.to_image),
            s.direction.as_str(),
            n,
            status
        )?;
    }
    for s in &r.services {
        if let Some(back) = &s.rollback {
            rollback_warning_markdown(s, back, w)?;
        }
        for n in s
            .notes
            .iter()
            .filter(|n| n.code == crate::finding::Code::AutoRollback)
        {
            let at = match (&n.file, n.line) {
                (Some(file), Some(line)) => format!(" (`{file}:{line}`)"),
                _ => String::new(),
            };
            writeln!(w, "\n> **Warning** `{}`{at}: {}", n.code, n.message)?;
        }
        let Some(p) = &s.plan else {
            for n in &s.notes {
                writeln!(w, "\n**{}**: {}", s.service, n)?;
            }
            if let Some(next) = next_step(r, s) {
                writeln!(w, "\n**Next step** for `{}`: {next}", s.service)?;
            }
            continue;
        };
        if !p.needs_backward_migrations() && p.problems.is_empty() {
            continue;
        }
        plan_markdown_inner(&s.service, p, w)?;
        if let Some(next) = next_step(r, s) {
            writeln!(w, "\n**Next step**: {next}")?;
        }
    }
    Ok(())
}

/// On an upgrade: say before the release whether it could be rolled back,
/// and what rolling it back would drop.
fn rollback_warning_markdown(
    s: &ServiceReport,
    back: &Plan,
    w: &mut dyn Write,
) -> std::io::Result<()> {
    let impossible = back.is_blocked();
    if !impossible && back.data_loss.is_empty() {
        return Ok(());
    }
    writeln!(
        w,
        "\n#### `{}`: rolling this release back ({} → {})\n",
        s.service, back.from, back.to
    )?;
    if impossible {
        writeln!(
            w,
            "> ⚠️ **This release could not be rolled back exactly**: {} irreversible operation(s), {} problem(s). Make the migrations reversible (`reverse_code`, `reverse_sql`) before releasing, or plan a manual rollback.\n",
            back.irreversible.len(),
            back.problems.len() + back.dynamic.len()
        )?;
        for i in &back.irreversible {
            writeln!(w, "- `{}:{}` {}", i.file, i.line, i.message)?;
        }
        for x in back
            .problems
            .iter()
            .map(|f| &f.message)
            .chain(back.dynamic.iter().map(|d| &d.message))
        {
            writeln!(w, "- {x}")?;
        }
    }
    if !back.data_loss.is_empty() {
        writeln!(
            w,
            "\n> Rolling it back would drop data: {} table(s) or column(s).\n",
            back.data_loss.len()
        )?;
        data_loss_details("What a rollback drops", back, w)?;
    }
    Ok(())
}

/// The data a plan drops, one migration per line, folded in `<details>`.
fn data_loss_details(summary: &str, p: &Plan, w: &mut dyn Write) -> std::io::Result<()> {
    writeln!(w, "<details><summary>{summary}</summary>\n")?;
    for d in &p.data_loss {
        writeln!(w, "- `{}.{}` {}", d.app, d.migration, d.what)?;
    }
    writeln!(w, "\n</details>")
}

/// One plan as a markdown section.
pub fn plan_markdown(service: &str, p: &Plan, w: &mut dyn Write) -> Result<()> {
    plan_markdown_inner(service, p, w).map_err(io)
}

fn plan_markdown_inner(service: &str, p: &Plan, w: &mut dyn Write) -> std::io::Result<()> {
    writeln!(w, "\n#### `{service}`: {} → {}\n", p.from, p.to)?;
    writeln!(w, "{}\n", totals(p, "**"))?;
    if !p.irreversible.is_empty() {
        writeln!(
            w,
            "> **Rollback impossible as planned**: {} operation(s) cannot be unapplied.\n",
            p.irreversible.len()
        )?;
    }
    for s in &p.steps {
        if let Step::Executor(x) = s {
            writeln!(
                w,
                "> **Exact only with Django's executor**: no per-app `migrate APP TARGET` is exact ({}). The command below hands `MigrationExecutor.migrate` an explicit backwards plan of {} migration(s), refuses before changing anything if the database or the code differs from the plan, and verifies afterwards. Stays applied: {}.\n",
                x.why,
                x.unapply.len(),
                x.keep_applied.join(", ")
            )?;
        }
    }
    if !p.commands.is_empty() {
        writeln!(w, "```sh")?;
        for c in &p.commands {
            writeln!(w, "{c}")?;
        }
        writeln!(w, "```")?;
    }
    for x in &p.problems {
        writeln!(w, "- cannot plan (`{}`): {x}", x.code)?;
    }
    for i in &p.irreversible {
        writeln!(
            w,
            "- {} (`{}`): `{}.{}` {} at `{}:{}` ({})",
            if i.code == Code::Irreversible {
                "irreversible"
            } else {
                "maybe irreversible"
            },
            i.code,
            i.app,
            i.migration,
            i.operation,
            i.file,
            i.line,
            i.reason
        )?;
    }
    for d in &p.dynamic {
        writeln!(w, "- dynamic (`{}`): {}", d.code, d.message)?;
    }
    for u in &p.unreachable {
        writeln!(w, "- no per-app target (`{}`): {}", u.code, u.message)?;
    }
    for n in &p.notes {
        writeln!(w, "- assumed (`{}`): {}", n.code, n.message)?;
    }
    if !p.unapply.is_empty() {
        writeln!(
            w,
            "\n<details><summary>{} migration(s) to unapply, last first</summary>\n",
            p.unapply.len()
        )?;
        for MigrationKey { app, name } in &p.unapply {
            writeln!(w, "- `{app}.{name}`")?;
        }
        writeln!(w, "\n</details>")?;
    }
    if !p.data_loss.is_empty() {
        writeln!(w)?;
        let summary = format!("Drops data: {} table(s) or column(s)", p.data_loss.len());
        data_loss_details(&summary, p, w)?;
    }
    if !p.acknowledged.is_empty() {
        writeln!(
            w,
            "\n<details><summary>Acknowledged in {}: {} finding(s)</summary>\n",
            crate::config::FILE_NAME,
            p.acknowledged.len()
        )?;
        for a in &p.acknowledged {
            writeln!(w, "- {} — *{}*", a.finding.message, a.reason)?;
        }
        writeln!(w, "\n</details>")?;
    }
    Ok(())
}

/// One line of totals: what a plan unapplies, in how many apps and commands,
/// what it drops, what blocks it. `strong` wraps the counts (`**` in markdown).
fn totals(p: &Plan, strong: &str) -> String {
    let apps: std::collections::BTreeSet<&str> = p.unapply.iter().map(|k| k.app.as_str()).collect();
    let mut parts = vec![format!(
        "{strong}{} migration(s) to unapply{strong} in {} app(s) with {} command(s)",
        p.unapply.len(),
        apps.len(),
        p.commands.len()
    )];
    if !p.data_loss.is_empty() {
        parts.push(format!("{strong}{} drop data{strong}", p.data_loss.len()));
    }
    if !p.acknowledged.is_empty() {
        parts.push(format!("{} acknowledged", p.acknowledged.len()));
    }
    if !p.irreversible.is_empty() {
        parts.push(format!(
            "{strong}{} irreversible{strong}",
            p.irreversible.len()
        ));
    }
    let blocking = p.problems.len() + p.dynamic.len();
    if blocking > 0 {
        parts.push(format!("{strong}{blocking} problem(s){strong}"));
    }
    parts.join(" · ")
}

/// What to do next for a blocked service (`None` when nothing is to do).
pub fn next_step(r: &CheckReport, s: &ServiceReport) -> Option<String> {
    if s.safe {
        return None;
    }
    match &s.plan {
        Some(p) if p.needs_backward_migrations() && !s.recorded => {
            let revs = rerun_args(r, &s.service);
            Some(format!(
                "run `tagback script {revs} -o rollback.sh` and then `./rollback.sh` (or the commands above with the {} image), then `tagback record {revs} --evidence FILE` (the script prints the exact command).",
                s.from_image
            ))
        }
        Some(_) => None,
        None => Some(format!(
            "{} that tagback cannot plan is not waved through: map the tags to git revisions (`ref:` in .tagback.yml) or mark the service `django: false`.",
            move_phrase(s.direction)
        )),
    }
}
