use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use backup_app::Engine;
use backup_domain::encryption::KeyStoreOutcome;
use backup_domain::name::BackupFormat;
use backup_domain::restore::{FramerrAfterRestore, RestartOutcome, RestoreLimits, RestoreRequest, SafetyBackup};

use super::CliResult;
use crate::args::RestoreArgs;
use crate::password;

fn confirm(backup: &str, engine: &Engine) -> Result<bool, std::io::Error> {
    eprint!(
        "Restore {backup} over the instance at {}?\nA safety backup of the current state is made first; everyone signs in again afterwards. [y/N] ",
        engine.settings.db.display()
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

pub(crate) async fn run(engine: &Engine, args: RestoreArgs) -> CliResult {
    let source = engine.source(&args.backup)?;
    let format = engine.restorer.format(&source).await?;
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err("restore replaces the current instance: confirm with --yes when not on a terminal".into());
        }
        if !confirm(&args.backup, engine)? {
            eprintln!("Nothing was restored.");
            return Ok(ExitCode::FAILURE);
        }
    }
    let password = match format {
        BackupFormat::Plain => None,
        BackupFormat::Encrypted => Some(password::read(args.password_stdin, "Backup password: ", false)?),
    };
    let mut limits = RestoreLimits::default();
    if let Some(max) = args.max_size {
        limits.max_total = max;
        limits.max_entry = limits.max_entry.min(max);
    }
    if let Some(ratio) = args.max_ratio {
        limits.max_ratio = ratio;
    }
    eprintln!("Checking and staging {} ...", args.backup);
    let request = RestoreRequest { source, password, limits, only_without_users: false };
    let summary = engine.restorer.restore(request).await?;

    let post = &summary.post;
    say!("Restored {} (made {}).", args.backup, backup_domain::timefmt::to_iso_millis(summary.manifest.created_at));
    match &summary.safety {
        SafetyBackup::Made(name) => say!("  safety backup: {name} (restore it to undo)"),
        SafetyBackup::None => say!("  safety backup: none (there was no database before)"),
        SafetyBackup::Raw { name, why } => {
            say!("  safety backup: {name}");
            say!(
                "  note: the database that was replaced could not be read ({why}); the safety backup keeps its files exactly as they were"
            );
        }
    }
    say!(
        "  tables purged: {}",
        if post.tables_purged.is_empty() { "none".into() } else { post.tables_purged.join(", ") }
    );
    say!("  integration configs encrypted with this instance's key: {}", post.configs_encrypted);
    say!("  asset files restored: {}", summary.assets_restored);
    match &summary.framerr {
        FramerrAfterRestore::NotRunning => {}
        FramerrAfterRestore::RestartNeeded => say!(
            "  note: Framerr is running on this database and already reads the restored data; restart it to reload its settings and integrations (or set FRAMERR_BACKUP_RESTART_COMMAND)"
        ),
        FramerrAfterRestore::Restarted(RestartOutcome::Done { command }) => {
            say!("  Framerr was running on this database: restarted with `{command}`")
        }
        FramerrAfterRestore::Restarted(RestartOutcome::Failed { command, error }) => say!(
            "  note: Framerr is running on this database, but `{command}` failed ({error}); restart Framerr by hand to reload its settings"
        ),
    }
    if post.fts_rebuilt {
        say!("  search index rebuilt");
    }
    if post.configs_unreadable > 0 {
        say!(
            "  note: {} integration config(s) are encrypted with another instance's key; enter their credentials again",
            post.configs_unreadable
        );
    }
    if post.sso_secret_unreadable {
        say!(
            "  note: the SSO client secret was encrypted with the old instance's key; enter it again in the SSO settings"
        );
    }
    if post.key_store == KeyStoreOutcome::Rewrapped {
        say!("  backup encryption: kept, its key rewrapped with this instance's key");
    }
    if post.key_store == KeyStoreOutcome::TurnedOff {
        say!(
            "  note: backup encryption was turned off: its key does not open with this instance's key; enable it again to encrypt new backups"
        );
    }
    say!("  Everyone signs in again: sessions were cleared.");
    Ok(ExitCode::SUCCESS)
}
