//! `framerr-backup`: parse, run one command, say what happened.

/// `println!` for results: a closed standard output (`list | head`) ends
/// the command quietly, as for any Unix tool, instead of a panic.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}

mod args;
mod commands;
mod output;
mod password;

use std::process::ExitCode;

use clap::Parser;

/// `PUID`/`PGID` (see `backup_app::privileges`); the health probe stays
/// whoever it is.
fn become_configured_user(args: &args::Args) -> Result<(), String> {
    if matches!(args.command, args::Command::Health(_)) {
        return Ok(());
    }
    let settings = backup_app::Settings::resolve(&args.flags()).map_err(|e| e.to_string())?;
    if let Some((uid, gid)) = backup_app::privileges::become_configured_user(&settings.backups)? {
        tracing::info!(uid, gid, "running as PUID:PGID");
    }
    Ok(())
}

fn main() -> ExitCode {
    // Before anything else: this process may be the sandbox that checks a
    // backup's database, which must not parse arguments or start threads.
    if let Some(code) = backup_app::sandbox_child_if_asked() {
        return code;
    }
    let args = args::Args::parse();
    output::init_logging(args.global.verbose);
    // Before any thread starts: every file from here on is PUID:PGID's.
    if let Err(e) = become_configured_user(&args) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(commands::run(args));
    // Dropping the runtime waits for blocking work still running: a restore
    // that had started swapping files in finishes it, holding its lock.
    drop(runtime);
    backup_app::release_temporaries();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
