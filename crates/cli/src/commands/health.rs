//! `framerr-backup health`: exit 0 when the server on this machine answers
//! and no backup is overdue or failed its verification; the container's
//! healthcheck.

use std::process::ExitCode;

use backup_app::Settings;
use backup_app::health::{probe, probe_address};

use crate::args::HealthArgs;
use crate::commands::CliResult;

pub(crate) fn run(settings: &Settings, args: &HealthArgs) -> CliResult {
    let addr = probe_address(settings.listen);
    match probe(addr) {
        Ok(()) => {
            if !args.quiet {
                say!("healthy: the server on {addr} answers, and no backup is overdue or failing");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => {
            if !args.quiet {
                eprintln!("unhealthy: {why}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}
