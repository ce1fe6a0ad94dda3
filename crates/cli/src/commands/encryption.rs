use std::process::ExitCode;

use backup_app::Engine;

use super::CliResult;
use crate::args::EncryptionCommand;
use crate::password;

pub(crate) async fn run(engine: &Engine, command: EncryptionCommand) -> CliResult {
    let encryption = &engine.encryption;
    match command {
        EncryptionCommand::Status => {
            let on = encryption.is_enabled().await?;
            say!("Backup encryption is {}.", if on { "enabled" } else { "disabled" });
        }
        EncryptionCommand::Enable(args) => {
            let password = password::read(args.password_stdin, "New backup password: ", true)?;
            encryption.enable(&password).await?;
            say!(
                "Backup encryption enabled. New backups are encrypted; keep the password safe: it is needed to restore them."
            );
        }
        EncryptionCommand::Disable(args) => {
            let password = password::read(args.password_stdin, "Current backup password: ", false)?;
            encryption.disable(&password).await?;
            say!("Backup encryption disabled. Existing encrypted backups stay encrypted.");
        }
        EncryptionCommand::ResetPassword(args) => {
            let password = password::read(args.password_stdin, "New backup password: ", true)?;
            let failures = encryption.reset_password(&password, &engine.stores()).await?;
            if failures.is_empty() {
                say!("Backup password reset. Every stored encrypted backup now opens with the new password.");
            } else {
                say!("Backup password reset, but these backups could not be rewritten:");
                for f in &failures {
                    say!("  {}: {}", f.filename, f.error);
                }
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
