use std::process::ExitCode;

use backup_domain::{BackupKind, BackupName};

use super::CliResult;
use crate::args::DeleteArgs;
use crate::settings::Settings;

pub(crate) async fn run(settings: &Settings, args: DeleteArgs) -> CliResult {
    let name = BackupName::parse(&args.name).map_err(|e| format!("{:?}: {e}", args.name))?;
    if name.kind() == BackupKind::Safety && !args.force {
        return Err(format!("{name} is a safety backup, kept to undo a restore; add --force to delete it").into());
    }
    let mut deleted = 0;
    for store in super::all_stores(settings)? {
        match store.delete(&name).await {
            Ok(()) => {
                println!("Deleted {name} from {}", store.describe());
                deleted += 1;
            }
            Err(backup_domain::StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if deleted == 0 {
        return Err(format!("backup {name} not found").into());
    }
    Ok(ExitCode::SUCCESS)
}
