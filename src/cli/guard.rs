//! `tagback guard`: run in the container before the app starts; refuses
//! (exit 1) when the live database is ahead of the code in the image.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use crate::Outcome;
use crate::config::Config;
use crate::django::{Loader, ProjectOptions};
use crate::error::{Error, Result};
use crate::ledger::database;
use crate::source::{Cached, PlainDir, ProjectSource};

/// Arguments of `tagback guard`.
#[derive(Debug, Clone, Args)]
pub struct GuardArgs {
    /// The code's directory (holding manage.py; no git needed).
    #[arg(long, default_value = ".")]
    pub project: PathBuf,
    /// The database: postgres://…, mysql://… (MySQL/MariaDB) or sqlite:///path.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Print the verdict and exit 0 even when the database is ahead.
    #[arg(long)]
    pub warn_only: bool,
    /// `.tagback.yml` to read (default: the one in the project directory).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// manage.py path in the project directory (default: found automatically).
    #[arg(long)]
    pub manage_py: Option<String>,
    /// Settings module (default: read from manage.py).
    #[arg(long)]
    pub settings: Option<String>,
    /// The service of `.tagback.yml` whose settings (`settings:`,
    /// `installed_apps:`, `migration_modules:`, …) read this code (default:
    /// the only Django service).
    #[arg(long)]
    pub service: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: GuardFormat,
}

/// How the verdict is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GuardFormat {
    /// For people (and container logs).
    Text,
    /// One JSON object.
    Json,
}

pub(super) fn run(args: &GuardArgs, out: &mut dyn Write) -> Result<Outcome> {
    let url = args
        .database_url
        .as_deref()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            Error::input(
                "no database to check: pass --database-url URL or set DATABASE_URL (postgres://…, mysql://… or sqlite:///path)",
            )
        })?;
    // Each file is read and each directory listed once: the code is judged
    // as it was at one moment, even if the directory changes meanwhile.
    let dir = Cached::new(PlainDir::open(&args.project)?);
    let config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            Config::parse(&text).map_err(|e| Error::input(format!("{}: {e}", path.display())))?
        }
        None => Config::load(&dir)?,
    };
    // The code is read as `plan` reads it: the service's settings from
    // `.tagback.yml`, the command line's flags first. One revision, so
    // `newer:` / `older:` do not apply.
    let service = config.guard_service(args.service.as_deref()).map_err(|e| {
        Error::input(format!(
            "{} for the guard in {}: {e}",
            crate::config::FILE_NAME,
            dir.label()
        ))
    })?;
    let mut opts = ProjectOptions {
        sides: Default::default(),
        ..service.project_options()
    };
    opts.manage_py = args.manage_py.clone().or(opts.manage_py);
    opts.settings = args.settings.clone().or(opts.settings);
    let loader = Loader::new(dir.inner().repo());
    let (project, files) = loader.load_known(&dir, &opts)?.ok_or_else(|| {
        Error::input(format!(
            "no manage.py in {}: not a Django project (pass --project DIR or --manage-py PATH)",
            dir.label()
        ))
    })?;
    // A database never migrated (first deploy) has nothing applied.
    let migrated = database::applied_rows_if_migrated(url).map_err(Error::input)?;
    let rows = migrated.clone().unwrap_or_default();
    let graph = || {
        loader
            .known_graph(&dir, &project, &files)
            .map_err(|e| e.to_string())
    };
    let mut report = crate::guard::judge(&project, &files, graph, &rows, &config.guard.allow)?;
    report.never_migrated = migrated.is_none();
    match args.format {
        GuardFormat::Text => crate::guard::render_text(&report, dir.label(), args.warn_only, out)?,
        GuardFormat::Json => crate::report::json(&report, out)?,
    }
    loader.finish_writes();
    // The process ends right after: freeing every parsed migration one by
    // one would cost a noticeable part of a container start.
    std::mem::forget((project, files, loader));
    Ok(if report.ahead && !args.warn_only {
        Outcome::Unsafe
    } else {
        Outcome::Safe
    })
}
