//! Every use case wired to its adapters, from one [`Settings`].

use std::sync::Arc;
use std::time::Duration;

use backup_archive::{ZipArchiver, ZipBackupReader};
use backup_crypto::manage::{InstanceVault, ServerKeyEnvelope};
use backup_crypto::unseal::EnvelopeUnsealer;
use backup_crypto::{BcryptCredentials, FieldCrypto};
use backup_domain::auth::{Sessions, SignIn};
use backup_domain::notify::{Notifier, Silent};
use backup_domain::ports::{BackupStore, FieldCipher, LockError, Progress, Scratch};
use backup_domain::restore::WorkBudget;
use backup_domain::scheduler::ScheduledBackups;
use backup_domain::verification::Verifier;
use backup_domain::{BackupEncryption, BusyFlag, Creator, Restorer};
use backup_fsutil::temp::{SCRATCH_PREFIX, SNAPSHOT_PREFIX, UPLOAD_PREFIX};
use backup_instance::{FsInstance, FsInstanceLock, Layout, Recovered};
use backup_notify::HttpNotifier;
use backup_sqlite::{Sandbox, SqliteDatabase, SqliteFiles, SqliteLiveWriter};
use backup_store_fs::{FsScratch, FsStore};

use crate::clock::SystemClock;
use crate::registry::Registry;
use crate::settings::Settings;

/// The engine could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error("{0}")]
    Destination(String),
    #[error(transparent)]
    Notify(#[from] backup_notify::BadTarget),
    /// The program's own path, which runs the checks of backups' databases.
    #[error("cannot find this program to run checks in: {0}")]
    Sandbox(std::io::Error),
}

/// The use cases, ready to run.
#[derive(Clone)]
pub struct Engine {
    pub settings: Settings,
    pub creator: Creator,
    pub restorer: Restorer,
    pub scheduled: ScheduledBackups,
    pub encryption: BackupEncryption,
    pub sessions: Arc<dyn Sessions>,
    pub sign_in: SignIn,
    pub scratch: Arc<dyn Scratch>,
    pub verifier: Verifier,
    /// The notification sender, when targets are configured (to drain it
    /// before a command exits).
    pub notifications: Option<HttpNotifier>,
    lock: FsInstanceLock,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// Refuses a destination that is the primary backups folder, or two
/// destinations that are one place, by what they are, not how they are
/// written: a copy onto itself fails, and retention would then run in one
/// place twice, under a destination's policy in the primary.
fn refuse_same_places(primary: &Arc<dyn BackupStore>, replicas: &[Arc<dyn BackupStore>]) -> Result<(), EngineError> {
    let stores: Vec<Arc<dyn BackupStore>> = std::iter::once(primary.clone()).chain(replicas.iter().cloned()).collect();
    let primary_place = primary.place();
    if let Some(same) = replicas.iter().find(|r| r.place() == primary_place) {
        return Err(EngineError::Destination(format!(
            "invalid destination {}: it is the backups folder ({}), where every backup is made anyway; give another place",
            same.describe(),
            primary.describe()
        )));
    }
    match backup_domain::ports::same_place(&stores) {
        Some((a, b)) => {
            Err(EngineError::Destination(format!("invalid destinations: {a} and {b} are the same place; give it once")))
        }
        None => Ok(()),
    }
}

impl Engine {
    /// Builds everything from `settings`, with the default destinations;
    /// `progress` receives the use cases' events.
    pub fn build(settings: Settings, progress: Arc<dyn Progress>) -> Result<Engine, EngineError> {
        Self::build_with(settings, progress, &Registry::with_defaults())
    }

    /// The same, with the destination kinds of `registry`.
    pub fn build_with(
        settings: Settings,
        progress: Arc<dyn Progress>,
        registry: &Registry,
    ) -> Result<Engine, EngineError> {
        if settings.key.is_none() {
            tracing::warn!(
                "SECRET_ENCRYPTION_KEY is not set: encrypted integration credentials go into backups as they are"
            );
        }
        let cipher = settings.key.as_ref().map(|k| Arc::new(FieldCrypto::new(k)) as Arc<dyn FieldCipher>);
        // Snapshots are staged beside the backups: the disk that must hold
        // the result anyway.
        // This process never reads the database while a restore swaps it.
        let swap = backup_instance::SwapGate::default();
        let db =
            Arc::new(SqliteDatabase::new(&settings.db, &settings.backups, cipher.clone()).with_swap_gate(swap.clone()));
        let mut replicas: Vec<Arc<dyn BackupStore>> = Vec::new();
        let mut keep_overrides = Vec::new();
        for url in &settings.destinations {
            let (store, keep) = registry.open_destination(url).map_err(EngineError::Destination)?;
            if let Some(keep) = keep {
                keep_overrides.push((store.describe(), keep));
            }
            replicas.push(store);
        }
        let primary: Arc<dyn BackupStore> = Arc::new(FsStore::new(&settings.backups));
        refuse_same_places(&primary, &replicas)?;
        let instance = FsInstance::new(Layout {
            db: settings.db.clone(),
            assets: settings.assets.clone(),
            caches: settings.caches.clone(),
            scratch: settings.backups.clone(),
        })
        .with_swap_gate(swap)
        .with_live_writer(Arc::new(SqliteLiveWriter::new(&settings.db)));
        let lock = instance.lock();
        let pins_lock = Arc::new(instance.pins_lock());
        let vault = Arc::new(InstanceVault { server_key: settings.key.clone() });
        let creator = Creator {
            db: db.clone(),
            store: primary,
            archiver: Arc::new(ZipArchiver::new(settings.assets.clone(), settings.deflate)),
            clock: Arc::new(SystemClock),
            progress,
            busy: BusyFlag::default(),
            envelope: Arc::new(ServerKeyEnvelope { key_store: db.clone(), server_key: settings.key.clone() }),
            replicas,
            lock: Arc::new(lock.clone()),
            lock_wait: settings.lock_wait,
            zone: settings.zone.clone(),
            keep_overrides,
            pins_lock,
            contents: if settings.full {
                backup_domain::ports::Contents::Full
            } else {
                backup_domain::ports::Contents::Lean
            },
        };
        let scratch: Arc<dyn Scratch> = Arc::new(FsScratch::new(&settings.backups));
        let restorer = Restorer {
            creator: creator.clone(),
            reader: Arc::new(ZipBackupReader::new(Arc::new(EnvelopeUnsealer { server_key: settings.key.clone() }))),
            instance: Arc::new(instance),
            db_files: Arc::new(SqliteFiles::new(Sandbox::this_program().map_err(EngineError::Sandbox)?)),
            cipher,
            vault: vault.clone(),
            accounts: db.clone(),
            scratch: scratch.clone(),
            work: WorkBudget::default(),
            restarter: settings.restart_command.clone().map(|argv| {
                Arc::new(crate::restart::CommandRestarter { argv, limit: crate::restart::RESTART_LIMIT })
                    as Arc<dyn backup_domain::restore::Restarter>
            }),
        };
        let notifications = if settings.notify.is_empty() {
            None
        } else {
            Some(HttpNotifier::start(&settings.notify, backup_notify::Tuning::default())?)
        };
        let notifier: Arc<dyn Notifier> = match &notifications {
            Some(n) => Arc::new(n.clone()),
            None => Arc::new(Silent),
        };
        let verifier = Verifier {
            restorer: restorer.clone(),
            key_store: db.clone(),
            clock: Arc::new(SystemClock),
            notifier: notifier.clone(),
        };
        Ok(Engine {
            scheduled: ScheduledBackups::new(creator.clone()).with_notifier(notifier),
            verifier,
            notifications,
            encryption: BackupEncryption { key_store: db.clone(), vault, instance: Some(creator.clone()) },
            sign_in: SignIn::new(db.clone(), Arc::new(BcryptCredentials), Arc::new(SystemClock)),
            sessions: db,
            scratch,
            creator,
            restorer,
            settings,
            lock,
        })
    }

    /// The primary store, then every extra destination.
    pub fn stores(&self) -> Vec<Arc<dyn BackupStore>> {
        self.creator.stores()
    }

    /// What every command does first, without waiting for anyone: removes
    /// what dead processes left in the backups folder, and, when a restore
    /// was interrupted and its process is gone, finishes or rolls it back.
    /// A restore that another process is running is left alone.
    pub async fn tidy(&self) -> Option<Recovered> {
        let backups = self.settings.backups.clone();
        let lock = self.lock.clone();
        tokio::task::spawn_blocking(move || {
            backup_fsutil::remove_stale_temporaries(&backups, &[UPLOAD_PREFIX, SNAPSHOT_PREFIX, SCRATCH_PREFIX]);
            if !lock.needs_recovery() {
                return None;
            }
            match lock.acquire_blocking(Duration::ZERO) {
                Ok((_held, recovered)) => recovered,
                // Someone else is working: theirs to finish.
                Err(e @ LockError::Busy(_)) => {
                    tracing::info!(error = %e, "not recovering now");
                    None
                }
                // A journal that cannot be acted on: the user must know.
                Err(e) => {
                    tracing::warn!("{e}");
                    None
                }
            }
        })
        .await
        .ok()
        .flatten()
    }
}
