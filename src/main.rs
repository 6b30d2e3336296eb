//! The `tagback` binary: parse arguments, run, map the outcome to an exit code.

use std::io::Write;
use std::process::ExitCode;

/// mimalloc serves the many small allocations of a plan faster than the
/// system allocator (measured in `bench/`, 30 apps changed: a warm plan 7 %
/// and a cold one 9 % faster; a run with nothing to plan as fast as before).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let _ = writeln!(
            std::io::stderr(),
            "tagback: internal error ({info}); please report it at https://github.com/tagback/tagback/issues"
        );
    }));
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let color =
        tagback::cli::color_from_args(&args, std::env::var("TAGBACK_COLOR").ok().as_deref());
    tagback::cli::apply_color(color);
    let cli = tagback::cli::parse(args, color);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match tagback::cli::run(cli, &mut out) {
        Ok(outcome) => ExitCode::from(outcome.code()),
        Err(tagback::Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            ExitCode::SUCCESS
        }
        Err(tagback::Error::Refused(why)) => {
            let _ = out.flush();
            let _ = writeln!(std::io::stderr(), "tagback: {why}");
            ExitCode::from(1)
        }
        Err(e) => {
            let _ = out.flush();
            let _ = writeln!(std::io::stderr(), "tagback: error: {e}");
            ExitCode::from(2)
        }
    }
}
