use std::path::Path;
use std::process::ExitCode;

use backup_app::Engine;
use backup_domain::BackupKind;

use super::CliResult;
use crate::args::{CreateArgs, KindArg};
use crate::output::human_size;

pub(crate) async fn run(engine: &Engine, args: CreateArgs) -> CliResult {
    let kind = match args.kind {
        KindArg::Manual => BackupKind::Manual,
        KindArg::Scheduled => BackupKind::Scheduled,
        KindArg::Safety => BackupKind::Safety,
    };
    match args.output.as_deref() {
        Some(path) if path == Path::new("-") => {
            engine.create_to_stdout(kind, args.plain).await?;
            Ok(ExitCode::SUCCESS)
        }
        Some(path) => {
            let size = engine.create_to_file(kind, path, args.plain).await?;
            if args.json {
                say!("{}", serde_json::json!({ "path": path, "size": size }));
            } else {
                say!("Created {} ({})", path.display(), human_size(size));
            }
            Ok(ExitCode::SUCCESS)
        }
        None => {
            engine.creator.store.prepare().await?;
            // A scheduled backup from cron is a scheduled run: lastBackup
            // is recorded and notices go out as from the server.
            let created = if kind == BackupKind::Scheduled {
                engine.scheduled.run().await?
            } else {
                let created = engine.creator.create(kind).await?;
                engine.scheduled.record_copies(&created);
                created
            };
            let path = engine.settings.backups.join(created.stored.name.to_string());
            if args.json {
                let json = serde_json::json!({
                    "filename": created.stored.name.to_string(),
                    "path": path,
                    "size": created.stored.size,
                    "deleted": created.retention.deleted.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "destinations": created.replicas,
                });
                say!("{json}");
            } else {
                say!("Created {} ({})", path.display(), human_size(created.stored.size));
                for name in &created.retention.deleted {
                    say!("Deleted {name} (retention)");
                }
            }
            if !created.retention.future.is_empty() {
                let names: Vec<String> = created.retention.future.iter().map(ToString::to_string).collect();
                eprintln!(
                    "warning: {} backup(s) are stamped in the future (was a clock wrong?); retention keeps them and does not count them: {}",
                    names.len(),
                    names.join(", ")
                );
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
                    None if !args.json => say!("Copied to {}", replica.destination),
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
                        say!("Deleted {name} from {} (retention)", replica.destination);
                    }
                }
                for (name, why) in &replica.retention.failed {
                    eprintln!("warning: retention could not delete {name} from {}: {why}", replica.destination);
                }
                if let Some(why) = &replica.retention.error {
                    eprintln!("warning: retention did not run in {}: {why}", replica.destination);
                }
            }
            // 3: the backup exists, but not everywhere it should.
            Ok(if copies_failed { ExitCode::from(3) } else { ExitCode::SUCCESS })
        }
    }
}
