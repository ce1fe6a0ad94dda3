use std::process::ExitCode;

use backup_domain::ports::BackupStore;
use backup_domain::{BackupKind, BackupName};

use super::{CliResult, store};
use crate::args::DeleteArgs;
use crate::settings::Settings;

pub(crate) async fn run(settings: &Settings, args: DeleteArgs) -> CliResult {
    let name = BackupName::parse(&args.name).map_err(|e| format!("{:?}: {e}", args.name))?;
    if name.kind() == BackupKind::Safety && !args.force {
        return Err(format!("{name} is a safety backup, kept to undo a restore; add --force to delete it").into());
    }
    store(settings).delete(&name).await?;
    println!("Deleted {name}");
    Ok(ExitCode::SUCCESS)
}
