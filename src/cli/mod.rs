//! Command-line arguments (clap) and dispatch. Raw arguments become typed
//! requests here; nothing below this module sees clap.

mod check;
mod conventions;
mod guard;
mod help;
mod hook;
mod init;
mod install;
mod plan;
mod record;
mod script;

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::Outcome;
use crate::error::Result;
use crate::report::Format;
pub use conventions::{ColorWhen, apply_color, color_from_args, parse};

/// Catch Django downgrades in Docker stack files and generate the exact
/// backward-migration rollback.
///
/// Exit status: 0 safe, 1 unsafe (blocked), 2 error or bad input.
#[derive(Debug, Parser)]
#[command(name = "tagback", version, about, max_term_width = 100)]
#[command(after_long_help = help::TOP)]
pub struct Cli {
    /// Read this file instead of the repositories' own `.tagback.yml`.
    #[arg(long, global = true, value_name = "FILE", env = "TAGBACK_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// When to colour output (NO_COLOR and CLICOLOR_FORCE are honoured in auto).
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "WHEN",
        default_value = "auto",
        env = "TAGBACK_COLOR"
    )]
    pub color: ColorWhen,
    /// Print nothing on stdout; the exit status says the verdict and errors still go to stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// Stack-file selection shared by `check`, `script`, `record` and `gate`.
#[derive(Debug, Clone, Args)]
pub struct StackArgs {
    /// Deployed revision of the deploy repository.
    #[arg(long, default_value = "HEAD")]
    pub from: String,
    /// Revision to deploy (default: the working tree).
    #[arg(long)]
    pub to: Option<String>,
    /// Stack/compose file (repeatable; merged in order like `docker stack deploy -c a -c b`).
    #[arg(short = 'f', long = "file")]
    pub files: Vec<String>,
    /// The deploy repository.
    #[arg(long = "deploy-repo", default_value = ".")]
    pub deploy_repo: PathBuf,
    /// Read every app's migrations, not only those that changed.
    #[arg(long)]
    pub full: bool,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Backward plan between two revisions of the Django code (no stack file).
    #[command(after_long_help = help::PLAN)]
    Plan {
        /// Git repository holding the Django code.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// Deployed (newer) revision.
        #[arg(long)]
        from: String,
        /// Revision to go back to (older).
        #[arg(long)]
        to: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// manage.py path in the repository (default: found automatically).
        #[arg(long)]
        manage_py: Option<String>,
        /// Settings module (default: read from manage.py).
        #[arg(long)]
        settings: Option<String>,
        /// Read every app's migrations, not only those that changed.
        #[arg(long)]
        full: bool,
        /// Which service of the repository's `.tagback.yml` to take settings
        /// from (default: the only Django service configured there).
        #[arg(long)]
        service: Option<String>,
    },
    /// Compare stack files between two revisions and judge every image change.
    #[command(after_long_help = help::CHECK)]
    Check {
        #[command(flatten)]
        stack: StackArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Write the rollback script (bash) for a downgrade.
    #[command(after_long_help = help::SCRIPT)]
    Script(script::ScriptArgs),
    /// Record, after verifying evidence, that the backward migrations ran.
    #[command(after_long_help = help::RECORD)]
    Record(record::RecordArgs),
    /// CI gate: exit 1 while a downgrade's backward migrations are not recorded.
    #[command(after_long_help = help::GATE)]
    Gate {
        #[command(flatten)]
        stack: StackArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Git hook entry points.
    #[command(after_long_help = help::HOOK)]
    Hook {
        /// Which hook.
        #[arg(value_enum)]
        name: hook::HookName,
        /// Arguments git passes to the hook.
        args: Vec<String>,
    },
    /// Install the git hooks into a repository (chains existing hooks).
    #[command(after_long_help = help::INSTALL)]
    Install {
        /// The repository.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// Remove tagback's hooks and restore chained ones.
        #[arg(long)]
        uninstall: bool,
    },
    /// Print the migration graph tagback reads at one revision (for debugging
    /// and for cross-checking against Django's MigrationLoader).
    #[command(hide = true)]
    Graph {
        /// Git repository holding the Django code.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// Revision.
        #[arg(long, default_value = "HEAD")]
        rev: String,
    },
    /// Run in the container before the app: exit 1 when the database has
    /// applied migrations this code does not know (it is ahead of the code).
    Guard(guard::GuardArgs),
    /// Print the JSON Schema of an output or of `.tagback.yml` (also in docs/schema/).
    #[command(after_long_help = help::SCHEMA)]
    Schema {
        /// Which schema.
        #[arg(value_enum)]
        kind: crate::report::schema::SchemaKind,
    },
    /// Run the main job on an embedded example project.
    #[command(after_long_help = help::DEMO)]
    Demo {
        /// Keep the demo repository in this directory instead of a temporary one.
        #[arg(long)]
        keep: Option<PathBuf>,
    },
    /// Write a commented .tagback.yml from what this repository shows.
    #[command(after_long_help = help::INIT)]
    Init {
        /// The deploy repository.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// Replace an existing .tagback.yml.
        #[arg(long)]
        force: bool,
        /// Print the file instead of writing it.
        #[arg(long, conflicts_with = "force")]
        stdout: bool,
    },
    /// Print a shell completion script.
    #[command(after_long_help = help::COMPLETIONS)]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one page per command into DIR.
    #[command(hide = true)]
    Man {
        /// Write tagback.1, tagback-check.1, … into this directory.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// Run a parsed command line.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<Outcome> {
    if let Some(file) = &cli.config {
        crate::config::use_file(file)?;
    }
    let mut sink = std::io::sink();
    let out: &mut dyn Write = if cli.quiet {
        if let Some(why) = conventions::quiet_conflict(&cli.command) {
            return Err(crate::Error::input(format!("--quiet: {why}")));
        }
        &mut sink
    } else {
        out
    };
    match cli.command {
        Command::Plan {
            repo,
            from,
            to,
            format,
            manage_py,
            settings,
            full,
            service,
        } => plan::run(
            &plan::PlanRequest {
                repo,
                from,
                to,
                format,
                manage_py,
                settings,
                full,
                service,
            },
            out,
        ),
        Command::Check { stack, format } | Command::Gate { stack, format } => {
            check::run(&stack, format, out)
        }
        Command::Script(args) => script::run(&args, out),
        Command::Record(args) => record::run(&args, out),
        Command::Hook { name, args } => hook::run(name, &args, out),
        Command::Install { repo, uninstall } => install::run(&repo, uninstall, out),
        Command::Graph { repo, rev } => plan::graph(&repo, &rev, out),
        Command::Guard(args) => guard::run(&args, out),
        Command::Schema { kind } => {
            out.write_all(crate::report::schema::schema(kind).as_bytes())
                .map_err(|e| crate::Error::io("<stdout>", e))?;
            Ok(Outcome::Safe)
        }
        Command::Demo { keep } => crate::demo::run(keep.as_deref(), out),
        Command::Init {
            repo,
            force,
            stdout,
        } => init::run(&repo, force, stdout, out),
        Command::Completions { shell } => conventions::completions(shell, out),
        Command::Man { dir } => conventions::man(dir.as_deref(), out),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
