use std::process::ExitCode;

use backup_app::Engine;
use backup_domain::BackupName;

use super::CliResult;
use crate::args::PinArgs;

pub(crate) async fn run(engine: &Engine, args: PinArgs, on: bool) -> CliResult {
    let name = BackupName::parse(&args.name).map_err(|e| format!("{:?}: {e}", args.name))?;
    let outcome = engine.creator.pin(&name, on).await?;
    let done = if on { "Pinned" } else { "Unpinned" };
    say!("{done} {name} in {}", outcome.saved.join(", "));
    for (place, error) in &outcome.failed {
        eprintln!("warning: {place}: {error}");
    }
    // A destination that did not take the change is worth a non-zero exit
    // for a script, as with `list` and an unreachable destination.
    Ok(if outcome.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(3) })
}
