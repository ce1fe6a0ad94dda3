use std::process::ExitCode;

use backup_app::Engine;
use backup_domain::BackupName;
use backup_domain::listing::DeleteError;

use super::CliResult;
use crate::args::DeleteArgs;

pub(crate) async fn run(engine: &Engine, args: DeleteArgs) -> CliResult {
    let name = BackupName::parse(&args.name).map_err(|e| format!("{:?}: {e}", args.name))?;
    match engine.creator.delete(&name, args.force).await {
        Ok(places) => {
            for place in places {
                say!("Deleted {name} from {place}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(DeleteError::SafetyNeedsForce(_)) => {
            Err(format!("{name} is a safety backup, kept to undo a restore; add --force to delete it").into())
        }
        Err(DeleteError::PinnedNeedsForce(_)) => {
            Err(format!("{name} is pinned; unpin it first (framerr-backup unpin {name}), or add --force").into())
        }
        Err(e @ DeleteError::PinsUnreadable(_)) => Err(format!("{e} (--force)").into()),
        Err(e) => Err(e.into()),
    }
}
