use std::process::ExitCode;

use backup_crypto::manage;
use backup_domain::ports::BackupStore;

use super::{CliResult, database};
use crate::args::EncryptionCommand;
use crate::password;
use crate::settings::Settings;

pub(crate) async fn run(settings: &Settings, command: EncryptionCommand) -> CliResult {
    let db = database(settings);
    match command {
        EncryptionCommand::Status => {
            let on = manage::is_enabled(&db).await?;
            println!("Backup encryption is {}.", if on { "enabled" } else { "disabled" });
        }
        EncryptionCommand::Enable(args) => {
            let password = password::read(args.password_stdin, "New backup password: ", true)?;
            manage::enable(&db, settings.key.as_ref(), &password).await?;
            println!(
                "Backup encryption enabled. New backups are encrypted; keep the password safe: it is needed to restore them."
            );
        }
        EncryptionCommand::Disable(args) => {
            let password = password::read(args.password_stdin, "Current backup password: ", false)?;
            manage::disable(&db, &password).await?;
            println!("Backup encryption disabled. Existing encrypted backups stay encrypted.");
        }
        EncryptionCommand::ResetPassword(args) => {
            let password = password::read(args.password_stdin, "New backup password: ", true)?;
            let all = super::all_stores(settings)?;
            let stores: Vec<&dyn BackupStore> = all.iter().map(|s| s.as_ref()).collect();
            let failures = manage::reset_password(&db, settings.key.as_ref(), &password, &stores).await?;
            if failures.is_empty() {
                println!("Backup password reset. Every stored encrypted backup now opens with the new password.");
            } else {
                println!("Backup password reset, but these backups could not be rewritten:");
                for (name, why) in &failures {
                    println!("  {name}: {why}");
                }
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
