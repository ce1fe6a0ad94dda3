use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use backup_domain::name::BackupFormat;
use backup_domain::restore::RestoreLimits;
use backup_domain::{BackupKind, BackupName};
use backup_instance::{KeyStoreOutcome, RestoreOptions};

use super::{CliResult, creator, instance};
use crate::args::RestoreArgs;
use crate::output::ProgressReporter;
use crate::settings::Settings;

/// A backup file to read: a path as given, the backups folder's copy, or a
/// temporary download from the first extra destination that holds it.
#[derive(Debug)]
pub(crate) struct Located {
    pub(crate) path: PathBuf,
    temporary: bool,
}

impl Drop for Located {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

pub(crate) async fn locate(settings: &Settings, arg: &str) -> Result<Located, String> {
    let Ok(name) =
        BackupName::parse(arg).map_err(|_| ()).and_then(|n| if Path::new(arg).exists() { Err(()) } else { Ok(n) })
    else {
        return Ok(Located { path: PathBuf::from(arg), temporary: false });
    };
    let local = settings.backups.join(name.to_string());
    if local.exists() {
        return Ok(Located { path: local, temporary: false });
    }
    for replica in super::replicas(settings)? {
        let Ok(download) = replica.open(&name).await else { continue };
        std::fs::create_dir_all(settings.work_dir()).map_err(|e| format!("{}: {e}", settings.work_dir().display()))?;
        let path = settings.work_dir().join(backup_store_fs::temporary_name(backup_store_fs::UPLOAD_PREFIX, "fetched"));
        let located = Located { path, temporary: true };
        let mut file = tokio::fs::File::create_new(&located.path).await.map_err(|e| e.to_string())?;
        let mut reader = tokio_util::compat::FuturesAsyncReadCompatExt::compat(download.reader);
        tokio::io::copy(&mut reader, &mut file)
            .await
            .map_err(|e| format!("downloading {name} from {}: {e}", replica.describe()))?;
        eprintln!("Fetched {name} from {}", replica.describe());
        return Ok(located);
    }
    Ok(Located { path: local, temporary: false })
}

fn confirm(path: &Path, settings: &Settings) -> Result<bool, std::io::Error> {
    eprint!(
        "Restore {} over the instance at {}?\nA safety backup of the current state is made first. [y/N] ",
        path.display(),
        settings.db.display()
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

pub(crate) async fn run(settings: &Settings, args: RestoreArgs) -> CliResult {
    let located = locate(settings, &args.backup).await?;
    let path = located.path.clone();
    let format = backup_archive::detect_file(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))??;
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err("restore replaces the current instance: confirm with --yes when not on a terminal".into());
        }
        if !confirm(&path, settings)? {
            eprintln!("Nothing was restored.");
            return Ok(ExitCode::FAILURE);
        }
    }
    let decrypted = match format {
        BackupFormat::Plain => None,
        BackupFormat::Encrypted => {
            Some(super::decrypt::decrypt(&path, settings.work_dir(), args.password_stdin).await?)
        }
    };
    let archive = decrypted.as_ref().map_or(path.as_path(), |d| d.path.as_path());
    let password = decrypted.as_ref().map(|d| d.password.clone());
    let instance = instance(settings);
    let cipher = settings.cipher();
    let key_store = backup_crypto::manage::restored_key_store(settings.key.as_ref(), password.as_ref());
    let mut limits = RestoreLimits::default();
    if let Some(max) = args.max_size {
        limits.max_total = max;
        limits.max_entry = limits.max_entry.min(max);
    }
    if let Some(ratio) = args.max_ratio {
        limits.max_ratio = ratio;
    }
    let options = RestoreOptions { cipher: cipher.as_deref(), limits, key_store: &key_store };
    eprintln!("Checking and staging {} ...", path.display());
    let staged = instance.stage(archive, &options).await?;

    let mut safety = None;
    if settings.db.exists() {
        eprintln!("Making a safety backup of the current state ...");
        let progress = Arc::new(ProgressReporter::new(false));
        let created = creator(settings, progress)?
            .create(BackupKind::Safety)
            .await
            .map_err(|e| backup_instance::RestoreError::Safety(e.to_string()))?;
        safety = Some(created.stored.name.to_string());
    }
    let mut summary = instance.commit(staged)?;
    summary.safety_backup = safety;

    let post = &summary.post;
    println!(
        "Restored {} (made {}).",
        path.display(),
        backup_domain::timefmt::to_iso_millis(summary.manifest.created_at)
    );
    match &summary.safety_backup {
        Some(name) => println!("  safety backup: {name} (restore it to undo)"),
        None => println!("  safety backup: none (there was no database before)"),
    }
    println!(
        "  tables purged: {}",
        if post.tables_purged.is_empty() { "none".into() } else { post.tables_purged.join(", ") }
    );
    println!("  integration configs encrypted with this instance's key: {}", post.configs_encrypted);
    println!("  asset files restored: {}", summary.assets_restored);
    if post.fts_rebuilt {
        println!("  search index rebuilt");
    }
    if post.configs_unreadable > 0 {
        println!(
            "  note: {} integration config(s) are encrypted with another instance's key; enter their credentials again",
            post.configs_unreadable
        );
    }
    if post.sso_secret_unreadable {
        println!(
            "  note: the SSO client secret was encrypted with the old instance's key; enter it again in the SSO settings"
        );
    }
    if post.key_store == KeyStoreOutcome::Rewrapped {
        println!("  backup encryption: kept, its key rewrapped with this instance's key");
    }
    if post.key_store == KeyStoreOutcome::TurnedOff {
        println!(
            "  note: backup encryption was turned off: its key does not open with this instance's key; enable it again to encrypt new backups"
        );
    }
    println!("  Everyone signs in again: sessions were cleared.");
    Ok(ExitCode::SUCCESS)
}
