//! Restore and verify: one use case, one set of checks.
//!
//! Restore orders its steps so that nothing live changes until everything
//! that can fail has been done. Steps 1 to 6 work on a private staged copy
//! and take nothing from the instance; from step 7 on it holds the instance
//! (this process's busy flag and the instance lock), so an upload being
//! checked never keeps anyone else out:
//!
//! 1. fetch the backup (in place when local, else into scratch space);
//! 2. open it: detect the format, unseal with the password;
//! 3. stage: check every entry (paths, links, duplicates, sizes, ratios),
//!    extract beside the live files verifying every CRC-32 and SHA-256;
//! 4. check the staged database: integrity, Framerr's tables, not newer
//!    than the live one (skipped when the live one cannot be read; checked
//!    again once the instance is held);
//! 5. post-restore on the staged copy (credentials, purge, search index,
//!    key store), none of its triggers run; steps 4 and 5 are bounded by
//!    the [`WorkBudget`] of the archive's size, whatever SQL the file holds;
//! 6. the encrypted payload's tag (checked alongside since step 2);
//! 7. a safety backup of the live state (a raw copy when it cannot be read);
//! 8. for a restore during setup, no user may exist, checked last;
//! 9. the journaled swap: files renamed in when nobody else has the live
//!    database open, else the database written into the live file through
//!    SQLite, so a running Framerr sees the restored data at its next read
//!    and nothing it writes afterwards goes to a deleted file;
//! 10. when Framerr was running, the restart command (if configured), so
//!     it reloads what it keeps in memory.
//!
//! Verify runs steps 1 to 4 and 6 on scratch space: it says OK exactly for
//! what restore would accept.

pub mod policy;
pub mod ports;

use std::sync::Arc;
use std::time::Duration;

pub use policy::{
    DeclaredEntry, EntryTarget, HostileArchive, NotFramerr, REQUIRED_TABLES, RestoreLimits, SEARCH_INDEX,
    SUMMARY_TABLES, TooNew, WorkBudget, check_entries, check_queries, check_tables, check_version, classify,
};
pub use ports::{
    ArchiveEntries, Authenticity, BackupKey, BackupReader, DatabaseFacts, DatabaseFiles, DatabaseSwap, EntryError,
    InstanceFiles, LiveWriter, NoTag, OpenError, OpenedBackup, PostRestorePlan, PostRestoreReport, QueryKind,
    QueryObject, RestartOutcome, Restarter, StageError, Staged, Unsealed, Unsealer,
};

use crate::auth::Sessions;
use crate::create::{CreateError, Creator};
use crate::credentials::{self, CredentialColumn};
use crate::encryption::{KeyStoreRow, KeyVault, restored_key_store};
use crate::error::{DbError, StoreError};
use crate::file::BackupFile;
use crate::manifest::{Manifest, PURGED_ON_RESTORE};
use crate::name::{BackupFormat, BackupName};
use crate::ports::{FieldCipher, LiveDatabase, LockError, Scratch};
use crate::secret::Password;

/// Where the backup to restore or verify comes from.
pub enum Source {
    /// A stored backup: the primary store first, then each destination.
    Stored(BackupName),
    /// A file given by path or uploaded.
    File(Arc<dyn BackupFile>),
    /// A stored backup in one store only (verifying each destination's copy).
    At(Arc<dyn crate::ports::BackupStore>, BackupName),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Stored(name) => write!(f, "Stored({name})"),
            Source::File(file) => write!(f, "File({})", file.describe()),
            Source::At(store, name) => write!(f, "At({}, {name})", store.describe()),
        }
    }
}

/// One restore.
#[derive(Debug)]
pub struct RestoreRequest {
    pub source: Source,
    pub password: Option<Password>,
    pub limits: RestoreLimits,
    /// Restore during initial setup: refused once any user exists,
    /// checked right before the swap.
    pub only_without_users: bool,
}

/// The safety backup a restore made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SafetyBackup {
    /// There was no database to save.
    None,
    Made(BackupName),
    /// The live database could not be read; the backup holds its files as
    /// they were.
    Raw {
        name: BackupName,
        why: String,
    },
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct RestoreSummary {
    pub format: BackupFormat,
    pub manifest: Manifest,
    pub post: PostRestoreReport,
    pub assets_restored: usize,
    pub safety: SafetyBackup,
    pub framerr: FramerrAfterRestore,
}

/// Framerr's side of a restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FramerrAfterRestore {
    /// Nobody else had the database open.
    NotRunning,
    /// Framerr was running: it reads the restored database already, but
    /// keeps its old settings in memory until it restarts; no restart
    /// command is configured.
    RestartNeeded,
    /// Framerr was running, and the restart command ran.
    Restarted(RestartOutcome),
}

/// What verify found: everything restore would accept.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub format: BackupFormat,
    pub manifest: Manifest,
    /// Entries whose SHA-256 the manifest lists and that matched; zero for a
    /// Framerr-made backup, whose manifest has none (every CRC-32 was
    /// still checked).
    pub checksums_verified: usize,
    pub user_version: i64,
    /// The live database's version it was checked against, when there is a
    /// readable one.
    pub live_version: Option<i64>,
    /// What it holds: (label, rows) for [`SUMMARY_TABLES`] that exist.
    pub counts: Vec<(String, i64)>,
}

/// Why a restore (or verify) did not happen. In every case the live
/// instance is as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    #[error("a backup or restore is already in progress")]
    InProgress,
    #[error(transparent)]
    Busy(LockError),
    #[error("backup {0} not found")]
    NotFound(String),
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Stage(#[from] StageError),
    #[error("the backup's database is damaged: {0}")]
    BadDatabase(String),
    #[error(transparent)]
    NotFramerr(#[from] NotFramerr),
    #[error(transparent)]
    TooNew(#[from] TooNew),
    #[error("the backup's database could not be prepared for this instance: {0}")]
    PostRestore(String),
    #[error("Restore is only available during initial setup")]
    SetupClosed,
    #[error("the safety backup failed, so nothing was restored: {0}")]
    Safety(String),
    /// The disk filled up (staging is [`StageError::Io`]): the server's
    /// problem, never the backup's.
    #[error("no space left on the disk, so nothing was restored: {0}")]
    Full(String),
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Database(DbError),
}

/// The restore and verify use cases.
#[derive(Clone)]
pub struct Restorer {
    /// Safety backups; its busy flag, lock and stores are restore's too.
    pub creator: Creator,
    pub reader: Arc<dyn BackupReader>,
    pub instance: Arc<dyn InstanceFiles>,
    pub db_files: Arc<dyn DatabaseFiles>,
    pub cipher: Option<Arc<dyn FieldCipher>>,
    pub vault: Arc<dyn KeyVault>,
    pub accounts: Arc<dyn Sessions>,
    pub scratch: Arc<dyn Scratch>,
    /// What the work on a backup's (attacker-controlled) database may cost.
    pub work: WorkBudget,
    /// Run once after a restore written under a running Framerr.
    pub restarter: Option<Arc<dyn Restarter>>,
}

impl std::fmt::Debug for Restorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Restorer").field("creator", &self.creator).finish_non_exhaustive()
    }
}

impl Restorer {
    /// Restores a backup over the instance; see the module documentation
    /// for the order of steps.
    pub async fn restore(&self, request: RestoreRequest) -> Result<RestoreSummary, RestoreError> {
        // A setup restore may come from anyone: refused at once once setup
        // is over, and checked without taking the instance (neither this
        // process's busy flag nor the instance lock), so that uploads being
        // checked never keep the real user out. A staged copy is private
        // to this restore, so nothing of its checks needs the instance.
        if request.only_without_users {
            self.ensure_no_users().await?;
        }
        let file = self.fetch(&request.source).await?;
        let budget = self.work.for_archive(file.size());
        let key = request.password.clone().map(BackupKey::Password);
        let opened = self.reader.open(file, key.as_ref()).await?;
        let format = opened.format;
        let prepared = async {
            let staged = self.instance.stage(opened.entries, request.limits).await?;
            let facts = self.check_database(staged.as_ref(), &self.creator.db.state().await, &[], budget).await?;
            let post = self.post_restore(staged.as_ref(), request.password.as_ref(), budget).await?;
            Ok::<_, RestoreError>((staged, facts, post))
        }
        .await;
        // A tampered payload decrypts to garbage that fails some check
        // first; the tag says what really happened.
        let (staged, facts, post) = authentic(prepared, opened.authenticity).await?;
        let hold = self.creator.hold().await.map_err(|e| match e {
            CreateError::Busy(e) => RestoreError::Busy(e),
            _ => RestoreError::InProgress,
        })?;
        // The live database as it is now that nothing else may change it.
        let live = self.creator.db.state().await;
        check_version(facts.user_version, live.user_version())?;
        if request.only_without_users {
            self.ensure_no_users().await?;
        }
        let safety = match &live {
            LiveDatabase::Absent => SafetyBackup::None,
            LiveDatabase::Readable { .. } | LiveDatabase::Damaged(_) => {
                let created = self.creator.create_safety(&hold, &live).await.map_err(|e| match e.is_full() {
                    true => RestoreError::Full(format!("the safety backup: {e}")),
                    false => RestoreError::Safety(e.to_string()),
                })?;
                match created.manifest.damaged {
                    Some(why) => SafetyBackup::Raw { name: created.stored.name, why },
                    None => SafetyBackup::Made(created.stored.name),
                }
            }
        };
        if request.only_without_users {
            self.ensure_no_users().await?;
        }
        let (manifest, assets_restored) = (staged.manifest().clone(), staged.assets());
        let swap = self.instance.commit(staged, hold.lock()).await?;
        // The instance is released first: Framerr restarting may read it.
        drop(hold);
        let framerr = match (swap, &self.restarter) {
            (DatabaseSwap::Replaced, _) => FramerrAfterRestore::NotRunning,
            (DatabaseSwap::WrittenInPlace, None) => FramerrAfterRestore::RestartNeeded,
            (DatabaseSwap::WrittenInPlace, Some(restarter)) => {
                FramerrAfterRestore::Restarted(restarter.restart().await)
            }
        };
        Ok(RestoreSummary { format, manifest, post, assets_restored, safety, framerr })
    }

    /// Every check restore makes, on scratch space, the instance untouched.
    pub async fn verify(&self, source: Source, password: Option<&Password>) -> Result<VerifyReport, RestoreError> {
        self.verify_with(source, password.cloned().map(BackupKey::Password).as_ref()).await
    }

    /// [`Restorer::verify`] with any key (the instance's, for unattended
    /// verification of its own encrypted backups).
    pub async fn verify_with(&self, source: Source, key: Option<&BackupKey>) -> Result<VerifyReport, RestoreError> {
        let file = self.fetch(&source).await?;
        let budget = self.work.for_archive(file.size());
        let opened = self.reader.open(file, key).await?;
        let live = self.creator.db.state().await;
        let checked = async {
            let staged = self.instance.stage_for_check(opened.entries, RestoreLimits::default()).await?;
            let tables: Vec<&str> = SUMMARY_TABLES.iter().map(|(_, t)| *t).collect();
            let facts = self.check_database(staged.as_ref(), &live, &tables, budget).await?;
            Ok::<_, RestoreError>((staged, facts))
        }
        .await;
        let (staged, facts) = authentic(checked, opened.authenticity).await?;
        let manifest = staged.manifest().clone();
        let checksums_verified = manifest.entries.as_ref().map_or(0, Vec::len);
        let counts = SUMMARY_TABLES
            .iter()
            .filter_map(|(label, table)| {
                facts.counts.iter().find(|(t, _)| t == table).map(|(_, n)| ((*label).to_owned(), *n))
            })
            .collect();
        Ok(VerifyReport {
            format: opened.format,
            manifest,
            checksums_verified,
            user_version: facts.user_version,
            live_version: live.user_version(),
            counts,
        })
    }

    /// Whether a backup is plain or encrypted (to ask for a password first).
    pub async fn format(&self, source: &Source) -> Result<BackupFormat, RestoreError> {
        let file = self.fetch(source).await?;
        Ok(self.reader.format(&file).await?)
    }

    /// The backup as a file with random access: in place when a store has
    /// it locally, else copied into scratch space.
    async fn fetch(&self, source: &Source) -> Result<Arc<dyn BackupFile>, RestoreError> {
        let (stores, name) = match source {
            Source::File(file) => return Ok(file.clone()),
            Source::Stored(name) => (self.creator.stores(), name),
            Source::At(store, name) => (vec![store.clone()], name),
        };
        let mut failure = None;
        for store in stores {
            match store.open_file(name).await {
                Ok(Some(file)) => return Ok(file),
                Ok(None) => {}
                Err(StoreError::NotFound(_)) => continue,
                Err(e) => {
                    failure.get_or_insert(e);
                    continue;
                }
            }
            match store.open(name).await {
                Ok(mut download) => {
                    return self.scratch.keep(&mut download.reader).await.map_err(RestoreError::Store);
                }
                Err(StoreError::NotFound(_)) => {}
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        Err(failure.map_or_else(|| RestoreError::NotFound(name.to_string()), RestoreError::Store))
    }

    async fn check_database(
        &self,
        staged: &dyn Staged,
        live: &LiveDatabase,
        count: &[&str],
        budget: Duration,
    ) -> Result<DatabaseFacts, RestoreError> {
        let db_error = |e: DbError| match e {
            DbError::Other(_) => RestoreError::Database(e),
            DbError::Full(_) => RestoreError::Full(e.to_string()),
            e => RestoreError::BadDatabase(e.to_string()),
        };
        // Decided before anything evaluates it: checking the file runs its
        // expressions.
        check_queries(&self.db_files.computed(staged.database(), budget).await.map_err(db_error)?)?;
        let facts = self.db_files.check(staged.database(), count, budget).await.map_err(db_error)?;
        check_tables(&facts.tables)?;
        check_version(facts.user_version, live.user_version())?;
        Ok(facts)
    }

    async fn post_restore(
        &self,
        staged: &dyn Staged,
        password: Option<&Password>,
        budget: Duration,
    ) -> Result<PostRestoreReport, RestoreError> {
        let cipher = self.cipher.clone();
        let credential =
            move |column: CredentialColumn, value: &str| credentials::restored(column, value, cipher.as_deref());
        let (vault, password) = (self.vault.clone(), password.cloned());
        let key_store = move |row: &KeyStoreRow| restored_key_store(row, vault.as_ref(), password.as_ref());
        let plan =
            PostRestorePlan { purge: &PURGED_ON_RESTORE, credential: &credential, key_store: &key_store, budget };
        self.db_files.post_restore(staged.database(), &plan).await.map_err(|e| match e {
            DbError::Full(_) => RestoreError::Full(e.to_string()),
            DbError::TooMuchWork { .. } => RestoreError::BadDatabase(e.to_string()),
            e => RestoreError::PostRestore(e.to_string()),
        })
    }

    async fn ensure_no_users(&self) -> Result<(), RestoreError> {
        match self.accounts.any_user().await {
            Ok(false) => Ok(()),
            Ok(true) => Err(RestoreError::SetupClosed),
            // A database that cannot say whether it has users is not open
            // for an unauthenticated restore.
            Err(_) => Err(RestoreError::SetupClosed),
        }
    }
}

/// `result`, unless the payload is not authentic: then that is the error,
/// whatever else went wrong reading it.
async fn authentic<T>(result: Result<T, RestoreError>, tag: Box<dyn Authenticity>) -> Result<T, RestoreError> {
    tag.check().await?;
    result
}

#[cfg(test)]
mod tests;
