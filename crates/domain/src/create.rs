//! The create use case: snapshot, archive, store, then retention.

use std::sync::Arc;

use futures_io::AsyncWrite;

use crate::busy::BusyFlag;
use crate::error::{ArchiveError, DbError, StoreError};
use crate::kind::BackupKind;
use crate::manifest::{Encryption, Manifest};
use crate::name::{BackupFormat, BackupName};
use crate::ports::{Archiver, BackupStore, Clock, Database, Progress, ProgressEvent, StoredBackup};
use crate::retention;

/// Why a backup was not made. In every case no partial backup is left.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    #[error("a backup or restore is already in progress")]
    InProgress,
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What retention did after a backup. A failed deletion does not fail the
/// backup that was just made; it is reported here.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub deleted: Vec<BackupName>,
    pub failed: Vec<(BackupName, String)>,
    /// Retention could not run at all (the schedule or the list failed).
    pub error: Option<String>,
}

/// A backup that was made and stored.
#[derive(Debug, Clone)]
pub struct Created {
    pub stored: StoredBackup,
    pub manifest: Manifest,
    pub retention: RetentionOutcome,
}

/// The ports the create use case runs on.
#[derive(Clone)]
pub struct Creator {
    pub db: Arc<dyn Database>,
    pub store: Arc<dyn BackupStore>,
    pub archiver: Arc<dyn Archiver>,
    pub clock: Arc<dyn Clock>,
    pub progress: Arc<dyn Progress>,
    pub busy: BusyFlag,
}

impl std::fmt::Debug for Creator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Creator").field("store", &self.store.describe()).finish_non_exhaustive()
    }
}

impl Creator {
    /// Makes a backup of `kind` in the store. After a manual or scheduled
    /// backup, when a schedule has been saved, retention deletes the oldest
    /// backups beyond its `maxBackups`; never after a failure.
    pub async fn create(&self, kind: BackupKind) -> Result<Created, CreateError> {
        let _guard = self.busy.try_acquire().ok_or(CreateError::InProgress)?;
        let now = self.clock.now();
        let taken: Vec<String> = self.store.list().await?.iter().map(|b| b.name.stem()).collect();
        let name = BackupName::unique(kind, now, BackupFormat::Plain, |stem| taken.iter().any(|t| t == stem));
        let id = name.stem();
        self.progress.report(ProgressEvent::Started { id: id.clone(), kind });
        let result = self.create_named(&id, &name).await;
        let (stored, manifest) = match result {
            Ok(done) => done,
            Err(e) => {
                self.progress.report(ProgressEvent::Error { id, error: e.to_string() });
                return Err(e);
            }
        };
        let retention = if kind.is_rotated() { self.apply_retention().await } else { RetentionOutcome::default() };
        self.progress.report(ProgressEvent::Complete { id, filename: stored.name.to_string(), size: stored.size });
        Ok(Created { stored, manifest, retention })
    }

    async fn create_named(&self, id: &str, name: &BackupName) -> Result<(StoredBackup, Manifest), CreateError> {
        let mut upload = self.store.create(name).await?;
        match self.write_archive(id, name.kind(), &mut *upload).await {
            Ok(manifest) => {
                self.step(id, "storing", 98);
                Ok((upload.commit().await?, manifest))
            }
            Err(e) => {
                // The archive error is what the user needs; a failed cleanup
                // of the partial upload is the store's to report in its logs.
                let _ = upload.abort().await;
                Err(e)
            }
        }
    }

    /// Streams a backup to `out` instead of the store (`create --output`).
    /// No retention: nothing was added to the store.
    pub async fn create_to(
        &self,
        kind: BackupKind,
        out: &mut (dyn AsyncWrite + Send + Unpin),
    ) -> Result<Manifest, CreateError> {
        let _guard = self.busy.try_acquire().ok_or(CreateError::InProgress)?;
        let id = BackupName::new(kind, self.clock.now(), BackupFormat::Plain).stem();
        self.progress.report(ProgressEvent::Started { id: id.clone(), kind });
        match self.write_archive(&id, kind, out).await {
            Ok(manifest) => {
                self.progress.report(ProgressEvent::Complete { id, filename: String::new(), size: 0 });
                Ok(manifest)
            }
            Err(e) => {
                self.progress.report(ProgressEvent::Error { id, error: e.to_string() });
                Err(e)
            }
        }
    }

    async fn write_archive(
        &self,
        id: &str,
        kind: BackupKind,
        out: &mut (dyn AsyncWrite + Send + Unpin),
    ) -> Result<Manifest, CreateError> {
        self.step(id, "database", 0);
        let snapshot = self.db.snapshot().await?;
        let mut manifest = Manifest::new(kind, self.clock.now(), Encryption::Plaintext, self.archiver.assets().await);
        manifest.user_version = Some(snapshot.user_version());
        self.step(id, "archive", 5);
        let report = |percent: u8| self.step(id, "archive", 5 + (percent.min(100) as u16 * 90 / 100) as u8);
        Ok(self.archiver.write(&*snapshot, manifest, out, &report).await?)
    }

    /// Deletes the oldest manual and scheduled backups beyond the saved
    /// schedule's `maxBackups`. Without a saved schedule, keeps everything.
    pub async fn apply_retention(&self) -> RetentionOutcome {
        let mut outcome = RetentionOutcome::default();
        let max = match self.db.schedule().await {
            Ok(Some(schedule)) => schedule.max_backups,
            Ok(None) => return outcome,
            Err(e) => {
                outcome.error = Some(e.to_string());
                return outcome;
            }
        };
        let stored = match self.store.list().await {
            Ok(list) => list,
            Err(e) => {
                outcome.error = Some(e.to_string());
                return outcome;
            }
        };
        let names: Vec<BackupName> = stored.into_iter().map(|b| b.name).collect();
        for name in retention::to_delete(&names, max) {
            match self.store.delete(&name).await {
                Ok(()) | Err(StoreError::NotFound(_)) => outcome.deleted.push(name),
                Err(e) => outcome.failed.push((name, e.to_string())),
            }
        }
        outcome
    }

    fn step(&self, id: &str, step: &str, percent: u8) {
        self.progress.report(ProgressEvent::Progress { id: id.to_owned(), step: step.to_owned(), percent });
    }
}
