//! One module per command. Each builds the adapters it needs from the
//! resolved settings and calls the use case.

mod create;
mod decrypt;
mod delete;
mod encryption;
mod list;
mod restore;
mod serve;
mod verify;

use std::process::ExitCode;
use std::sync::Arc;

use time::OffsetDateTime;

use backup_archive::ZipArchiver;
use backup_domain::ports::{BackupStore, Clock, Progress};
use backup_domain::{BusyFlag, Creator};
use backup_sqlite::SqliteDatabase;
use backup_store_fs::FsStore;

use crate::args::{Args, Command};
use crate::settings::Settings;

pub(crate) type CliResult = Result<ExitCode, Box<dyn std::error::Error + Send + Sync>>;

pub(crate) async fn run(args: Args) -> CliResult {
    let settings = Settings::resolve(&args.global)?;
    // A restore that a crash interrupted is finished or rolled back before
    // anything else looks at the instance.
    if let Some(outcome) = instance(&settings).recover()? {
        eprintln!(
            "note: an interrupted restore was {}",
            match outcome {
                backup_instance::Recovered::RolledBack => "rolled back; the instance is as it was before it",
                backup_instance::Recovered::Finished => "completed",
            }
        );
    }
    match args.command {
        Command::Create(a) => create::run(&settings, a).await,
        Command::List(a) => list::run(&settings, a).await,
        Command::Delete(a) => delete::run(&settings, a).await,
        Command::Verify(a) => verify::run(&settings, a).await,
        Command::Restore(a) => restore::run(&settings, a).await,
        Command::Encryption(c) => encryption::run(&settings, c).await,
        Command::Serve(a) => serve::run(&settings, a).await,
    }
}

/// The wall clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

pub(crate) fn store(settings: &Settings) -> FsStore {
    FsStore::new(&settings.backups)
}

pub(crate) fn instance(settings: &Settings) -> backup_instance::Instance {
    backup_instance::Instance::new(backup_instance::Layout {
        db: settings.db.clone(),
        assets: settings.assets.clone(),
        caches: settings.caches.clone(),
    })
}

pub(crate) fn database(settings: &Settings) -> SqliteDatabase {
    SqliteDatabase::new(&settings.db, settings.work_dir(), settings.cipher())
}

/// The extra destinations, built from their URLs.
pub(crate) fn replicas(settings: &Settings) -> Result<Vec<Arc<dyn BackupStore>>, String> {
    settings
        .destinations
        .iter()
        .map(|url| -> Result<Arc<dyn BackupStore>, String> {
            if let Some(path) = url.strip_prefix("file://") {
                if path.is_empty() {
                    return Err(format!("invalid destination {url:?}: file:// needs a path"));
                }
                Ok(Arc::new(FsStore::new(path)))
            } else if url.starts_with("s3://") {
                let config = backup_store_s3::S3Config::from_url(url).map_err(|e| e.to_string())?;
                Ok(Arc::new(backup_store_s3::S3Store::new(config).map_err(|e| e.to_string())?))
            } else {
                Err(format!(
                    "invalid destination: expected s3://… or file:///…, got {:?}",
                    url.split('?').next().unwrap_or("")
                ))
            }
        })
        .collect()
}

/// The primary store, then every extra destination.
pub(crate) fn all_stores(settings: &Settings) -> Result<Vec<Arc<dyn BackupStore>>, String> {
    let mut stores: Vec<Arc<dyn BackupStore>> = vec![Arc::new(store(settings))];
    stores.extend(replicas(settings)?);
    Ok(stores)
}

pub(crate) fn creator(settings: &Settings, progress: Arc<dyn Progress>) -> Result<Creator, String> {
    if settings.key.is_none() {
        tracing::warn!(
            "SECRET_ENCRYPTION_KEY is not set: encrypted integration credentials go into the backup as they are"
        );
    }
    let db = Arc::new(database(settings));
    Ok(Creator {
        replicas: replicas(settings)?,
        envelope: Arc::new(backup_crypto::manage::ServerKeyEnvelope {
            key_store: db.clone(),
            server_key: settings.key.clone(),
        }),
        db,
        store: Arc::new(store(settings)),
        archiver: Arc::new(ZipArchiver::new(settings.assets.clone(), settings.deflate)),
        clock: Arc::new(SystemClock),
        progress,
        busy: BusyFlag::default(),
    })
}
