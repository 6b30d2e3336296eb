//! Command-line conventions shared by every subcommand: `--color`,
//! `--quiet`, shell completions and the man page.
//!
//! The colour decision is anstream's (clap's own): `auto` follows
//! `NO_COLOR`, `CLICOLOR`, `CLICOLOR_FORCE`, `TERM=dumb` and whether stdout
//! is a terminal, so `--help`, clap's errors and tagback's reports decide the
//! same way. The reports keep styling with owo-colors, which is told the
//! decision once (`set_override`) instead of probing the terminal itself.

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use crate::Outcome;
use crate::error::{Error, Result};
use crate::fs::{self, Mode};

/// When to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorWhen {
    /// When stdout is a terminal and `NO_COLOR` is not set.
    #[default]
    Auto,
    /// Always (also into pipes and files).
    Always,
    /// Never.
    Never,
}

impl ColorWhen {
    fn clap(self) -> clap::ColorChoice {
        match self {
            ColorWhen::Auto => clap::ColorChoice::Auto,
            ColorWhen::Always => clap::ColorChoice::Always,
            ColorWhen::Never => clap::ColorChoice::Never,
        }
    }
}

/// The `--color` choice before clap has parsed anything (so `--help` and
/// clap's own errors follow it too): the last `--color WHEN` or
/// `--color=WHEN`, else `TAGBACK_COLOR`, else auto. Unknown values are left
/// for clap to reject.
pub fn color_from_args(args: &[OsString], env: Option<&str>) -> ColorWhen {
    let parse = |v: &str| match v {
        "always" => Some(ColorWhen::Always),
        "never" => Some(ColorWhen::Never),
        "auto" => Some(ColorWhen::Auto),
        _ => None,
    };
    let mut when = env.and_then(parse);
    let mut iter = args.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(arg) = iter.next() {
        if arg == "--" {
            break;
        }
        if arg == "--color" {
            if let Some(v) = iter.next() {
                when = parse(&v).or(when);
            }
        } else if let Some(v) = arg.strip_prefix("--color=") {
            when = parse(v).or(when);
        }
    }
    when.unwrap_or_default()
}

/// Decide once whether stdout gets colour and tell owo-colors; returns the
/// decision.
pub fn apply_color(when: ColorWhen) -> bool {
    let choice = match when {
        ColorWhen::Auto => anstream::AutoStream::choice(&std::io::stdout()),
        ColorWhen::Always => anstream::ColorChoice::Always,
        ColorWhen::Never => anstream::ColorChoice::Never,
    };
    let on = choice != anstream::ColorChoice::Never;
    owo_colors::set_override(on);
    on
}

/// Parse the command line with clap's help and errors coloured as `when`
/// says; clap exits 2 on a usage error (0 for `--help`).
pub fn parse(args: Vec<OsString>, when: ColorWhen) -> super::Cli {
    let matches = super::Cli::command()
        .color(when.clap())
        .get_matches_from(args);
    match <super::Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    }
}

/// Why `--quiet` cannot apply to this command: its stdout is what was asked
/// for.
pub(super) fn quiet_conflict(command: &super::Command) -> Option<&'static str> {
    match command {
        super::Command::Plan { .. } => Some("plan prints the plan; drop --quiet"),
        super::Command::Script(args) if args.writes_stdout() => {
            Some("script would print the script to stdout; write it with -o FILE")
        }
        super::Command::Completions { .. } => Some("completions prints the script; drop --quiet"),
        super::Command::Schema { .. } => Some("schema prints the schema; drop --quiet"),
        super::Command::Man { dir: None } => {
            Some("man prints the man page; drop --quiet or use --dir DIR")
        }
        super::Command::Init { stdout: true, .. } => Some("init --stdout prints the file"),
        _ => None,
    }
}

/// `tagback completions SHELL`.
pub(super) fn completions(shell: clap_complete::Shell, out: &mut dyn Write) -> Result<Outcome> {
    let mut cmd = super::Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "tagback", &mut buf);
    out.write_all(&buf).map_err(|e| Error::io("<stdout>", e))?;
    Ok(Outcome::Safe)
}

/// `tagback man [--dir DIR]`: the man page on stdout, or one page per
/// command (`tagback.1`, `tagback-check.1`, …) written into DIR.
pub(super) fn man(dir: Option<&Path>, out: &mut dyn Write) -> Result<Outcome> {
    let cmd = super::Cli::command();
    let Some(dir) = dir else {
        let mut buf = Vec::new();
        render(&cmd, &mut buf)?;
        out.write_all(&buf).map_err(|e| Error::io("<stdout>", e))?;
        return Ok(Outcome::Safe);
    };
    let mut pages = vec![("tagback.1".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("tagback-{}", sub.get_name());
        pages.push((format!("{name}.1"), sub.clone().name(name)));
    }
    for (file, page) in &pages {
        let mut buf = Vec::new();
        render(page, &mut buf)?;
        let path = dir.join(file);
        fs::write_atomic(&path, &buf, Mode::Replace)?;
        writeln!(out, "wrote {}", path.display()).map_err(|e| Error::io("<stdout>", e))?;
    }
    Ok(Outcome::Safe)
}

fn render(cmd: &clap::Command, buf: &mut Vec<u8>) -> Result<()> {
    clap_mangen::Man::new(cmd.clone())
        .render(buf)
        .map_err(|e| Error::io("<man page>", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn color_flag_is_read_before_clap_parses() {
        let c = |a: &[&str], env| color_from_args(&args(a), env);
        assert_eq!(c(&["tagback", "check"], None), ColorWhen::Auto);
        assert_eq!(
            c(&["tagback", "--color", "never", "check"], None),
            ColorWhen::Never
        );
        assert_eq!(
            c(&["tagback", "check", "--color=always"], None),
            ColorWhen::Always
        );
        assert_eq!(c(&["tagback", "check"], Some("never")), ColorWhen::Never);
        assert_eq!(
            c(&["tagback", "--color", "always"], Some("never")),
            ColorWhen::Always
        );
        // The last one wins, as clap decides; an unknown value is clap's to refuse.
        assert_eq!(
            c(&["tagback", "--color=never", "--color", "always"], None),
            ColorWhen::Always
        );
        assert_eq!(c(&["tagback", "--color", "purple"], None), ColorWhen::Auto);
        assert_eq!(
            c(&["tagback", "hook", "--", "--color=never"], None),
            ColorWhen::Auto
        );
    }

    #[test]
    fn man_page_names_every_visible_subcommand() {
        let mut buf = Vec::new();
        man(None, &mut buf).unwrap();
        let page = String::from_utf8(buf).unwrap();
        assert!(page.starts_with(".ie"), "{}", &page[..40.min(page.len())]);
        for sub in [
            "check",
            "plan",
            "script",
            "record",
            "gate",
            "init",
            "completions",
        ] {
            assert!(page.contains(&format!("tagback\\-{sub}")), "{sub} missing");
        }
        assert!(
            !page.contains("tagback\\-graph"),
            "hidden commands stay hidden"
        );
    }
}
