use std::process::ExitCode;

use backup_app::Settings;

use super::CliResult;

pub(crate) async fn run(settings: Settings) -> CliResult {
    let shutdown = async {
        super::interrupted().await;
    };
    // Tests and scripts read this line to find the port.
    let stopped =
        backup_app::serve(settings, shutdown, |addr| eprintln!("framerr-backup listening on http://{addr}")).await?;
    if stopped.cancelled_backup {
        eprintln!("framerr-backup: stopped during a backup; it was cancelled and its partial file removed");
    } else {
        eprintln!("framerr-backup: stopped");
    }
    Ok(ExitCode::SUCCESS)
}
