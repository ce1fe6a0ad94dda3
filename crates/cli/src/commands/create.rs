use std::io;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio_util::compat::TokioAsyncWriteCompatExt;

use backup_domain::BackupKind;
use backup_domain::ports::BackupStore;
use backup_sqlite::SNAPSHOT_PREFIX;
use backup_store_fs::{UPLOAD_PREFIX, remove_stale_temporaries, temporary_name};

use super::{CliResult, creator, store};
use crate::args::{CreateArgs, KindArg};
use crate::output::{ProgressReporter, human_size};
use crate::settings::Settings;

pub(crate) async fn run(settings: &Settings, args: CreateArgs) -> CliResult {
    let kind = match args.kind {
        KindArg::Manual => BackupKind::Manual,
        KindArg::Scheduled => BackupKind::Scheduled,
        KindArg::Safety => BackupKind::Safety,
    };
    let to_stdout = args.output.as_deref() == Some(Path::new("-"));
    if args.output.is_some() && !args.plain && settings.db.exists() {
        let on = backup_crypto::manage::is_enabled(&super::database(settings)).await?;
        if on {
            return Err("backup encryption is on, and --output writes a plain backup: add --plain to write one anyway, or leave out --output to make an encrypted backup in the backups folder".into());
        }
    }
    let progress = Arc::new(ProgressReporter::new(args.json || to_stdout));
    let creator = creator(settings, progress)?;
    match args.output {
        None => {
            let store = store(settings);
            store.prepare().await?;
            remove_stale_temporaries(settings.work_dir(), &[SNAPSHOT_PREFIX, UPLOAD_PREFIX]);
            let created = creator.create(kind).await?;
            let path = store.path_of(&created.stored.name);
            if args.json {
                let replicas: Vec<serde_json::Value> = created
                    .replicas
                    .iter()
                    .map(|r| serde_json::json!({ "destination": r.destination, "error": r.error }))
                    .collect();
                let json = serde_json::json!({
                    "filename": created.stored.name.to_string(),
                    "path": path,
                    "size": created.stored.size,
                    "deleted": created.retention.deleted.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "destinations": replicas,
                });
                println!("{json}");
            } else {
                println!("Created {} ({})", path.display(), human_size(created.stored.size));
                for name in &created.retention.deleted {
                    println!("Deleted {name} (retention)");
                }
            }
            for (name, why) in &created.retention.failed {
                eprintln!("warning: retention could not delete {name}: {why}");
            }
            if let Some(why) = &created.retention.error {
                eprintln!("warning: retention did not run: {why}");
            }
            let mut copies_failed = false;
            for replica in &created.replicas {
                match &replica.error {
                    None if !args.json => println!("Copied to {}", replica.destination),
                    None => {}
                    Some(e) => {
                        copies_failed = true;
                        eprintln!(
                            "error: the backup is complete locally, but copying it to {} failed: {e}",
                            replica.destination
                        );
                    }
                }
                for name in &replica.retention.deleted {
                    if !args.json {
                        println!("Deleted {name} from {} (retention)", replica.destination);
                    }
                }
            }
            // 3: the backup exists, but not everywhere it should.
            Ok(if copies_failed { ExitCode::from(3) } else { ExitCode::SUCCESS })
        }
        Some(path) if to_stdout => {
            let mut out = tokio::io::stdout().compat_write();
            creator.create_to(kind, &mut out).await?;
            let mut out = out.into_inner();
            out.flush().await?;
            let _ = path;
            Ok(ExitCode::SUCCESS)
        }
        Some(path) => {
            std::fs::create_dir_all(settings.work_dir())?;
            remove_stale_temporaries(settings.work_dir(), &[SNAPSHOT_PREFIX]);
            create_file(&creator, kind, &path).await?;
            let size = tokio::fs::metadata(&path).await.map(|m| m.len()).unwrap_or(0);
            if args.json {
                println!("{}", serde_json::json!({ "path": path, "size": size }));
            } else {
                println!("Created {} ({})", path.display(), human_size(size));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes to a regular file through a temporary name beside it (renamed only
/// when complete, never over an existing file); streams straight into
/// anything else (a pipe, a device).
async fn create_file(creator: &backup_domain::Creator, kind: BackupKind, path: &Path) -> CliResult {
    let special = tokio::fs::metadata(path).await.is_ok_and(|m| !m.is_file());
    if special {
        let file = tokio::fs::OpenOptions::new().write(true).open(path).await.map_err(|e| with_path(path, e))?;
        let mut out = file.compat_write();
        creator.create_to(kind, &mut out).await.map_err(|e| format!("{}: {e}", path.display()))?;
        out.into_inner().flush().await.map_err(|e| with_path(path, e))?;
        return Ok(ExitCode::SUCCESS);
    }
    if tokio::fs::symlink_metadata(path).await.is_ok() {
        return Err(format!("{} already exists; choose another name or remove it", path.display()).into());
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = dir.join(temporary_name(UPLOAD_PREFIX, &format!("{file_name}.partial")));
    let result = async {
        let file = tokio::fs::File::create_new(&temp).await.map_err(|e| with_path(&temp, e))?;
        let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, file).compat_write();
        creator.create_to(kind, &mut out).await.map_err(|e| format!("{}: {e}", temp.display()))?;
        let mut file = out.into_inner();
        file.flush().await.map_err(|e| with_path(&temp, e))?;
        file.into_inner().sync_all().await.map_err(|e| with_path(&temp, e))?;
        tokio::fs::hard_link(&temp, path).await.map_err(|e| with_path(path, e))?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(ExitCode::SUCCESS)
    }
    .await;
    let _ = tokio::fs::remove_file(&temp).await;
    result
}

fn with_path(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}
