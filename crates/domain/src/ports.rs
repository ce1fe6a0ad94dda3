//! The ports: what the use cases need from the outside world, and the
//! guarantees they rely on. Adapters implement them; the domain never names
//! a file system, a database driver or an HTTP client.
//!
//! Byte streams cross the ports as `futures_io::AsyncRead`/`AsyncWrite`
//! trait objects: the traits are runtime-neutral, so the domain does not pull
//! in an async runtime, while adapters built on tokio convert at their edge.

use std::fmt;

use async_trait::async_trait;
use futures_io::{AsyncRead, AsyncWrite};
use time::OffsetDateTime;

use crate::error::{ArchiveError, CryptoError, DbError, StoreError};
use crate::kind::BackupKind;
use crate::manifest::{Assets, Manifest};
use crate::name::BackupName;
use crate::schedule::Schedule;

/// The current time. The domain never reads the system clock itself.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// A finished backup as a store lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBackup {
    pub name: BackupName,
    pub size: u64,
}

/// A byte stream with its length known in advance.
pub struct Download {
    pub size: u64,
    pub reader: Box<dyn AsyncRead + Send + Unpin>,
}

impl fmt::Debug for Download {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Download").field("size", &self.size).finish_non_exhaustive()
    }
}

/// Where finished backups live: a local folder, an S3 bucket, ...
///
/// Guarantees every implementation gives (checked by the shared conformance
/// suite that each adapter runs):
/// - **Complete or absent.** A backup is listed, opened or overwritten under
///   its final name only once its upload has been committed; an upload that
///   fails, is aborted or is dropped leaves nothing under that name.
/// - **No clobbering.** Committing a name that already exists fails with
///   [`StoreError::AlreadyExists`] and leaves the existing backup as it was.
/// - **Names only.** Every operation takes a [`BackupName`], which cannot
///   contain a path separator or `..`; nothing else in the store is listed.
/// - **Streaming.** Memory does not grow with the size of a backup.
#[async_trait]
pub trait BackupStore: Send + Sync {
    /// Where this store is, for logs and listings, with credentials redacted.
    fn describe(&self) -> String;

    /// Makes the store ready and removes what interrupted uploads left
    /// (never the temporaries of an upload that may still be running).
    async fn prepare(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Every complete backup, in no particular order.
    async fn list(&self) -> Result<Vec<StoredBackup>, StoreError>;

    /// Starts writing a backup. Nothing is visible until [`Upload::commit`].
    async fn create(&self, name: &BackupName) -> Result<Box<dyn Upload>, StoreError>;

    /// Reads a complete backup.
    async fn open(&self, name: &BackupName) -> Result<Download, StoreError>;

    /// Deletes a backup. Deleting a name that does not exist is `NotFound`.
    async fn delete(&self, name: &BackupName) -> Result<(), StoreError>;
}

/// A backup being written. Dropping it without `commit` discards it.
#[async_trait]
pub trait Upload: AsyncWrite + Send + Unpin {
    /// Makes the backup visible under its final name, durably. Fails with
    /// `AlreadyExists` if another backup took the name meanwhile.
    async fn commit(self: Box<Self>) -> Result<StoredBackup, StoreError>;

    /// Makes the backup visible under its final name, replacing a backup of
    /// that name atomically: readers see the old one or the new one whole.
    /// For rewriting a backup (a new encryption header).
    async fn commit_replacing(self: Box<Self>) -> Result<StoredBackup, StoreError>;

    /// Overwrites already written bytes at `offset` (the encryption header,
    /// known only at the end). Stores that cannot answer `Unsupported`.
    async fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<(), StoreError> {
        let _ = (offset, bytes);
        Err(StoreError::Unsupported("rewriting part of an upload".into()))
    }

    /// Discards what was written.
    async fn abort(self: Box<Self>) -> Result<(), StoreError>;
}

/// A consistent copy of the live database, taken at one instant, with
/// credentials already made portable (decrypted). It is deleted when dropped.
#[async_trait]
pub trait Snapshot: Send + Sync {
    /// `PRAGMA user_version` of the copy.
    fn user_version(&self) -> i64;
    /// The size of the database file in bytes.
    fn size(&self) -> u64;
    /// Reads the database file from its start.
    async fn open(&self) -> Result<Box<dyn AsyncRead + Send + Unpin>, DbError>;
}

/// The live Framerr database.
///
/// Guarantees: a snapshot never blocks writers for longer than SQLite's own
/// read transaction would, never modifies the live database, and holds a
/// state that existed at one instant.
#[async_trait]
pub trait Database: Send + Sync {
    async fn snapshot(&self) -> Result<Box<dyn Snapshot>, DbError>;
    /// The stored `backupSchedule`, or `None` when no schedule was ever saved.
    async fn schedule(&self) -> Result<Option<Schedule>, DbError>;
    async fn save_schedule(&self, schedule: &Schedule) -> Result<(), DbError>;
}

/// Writes backup archives: the database snapshot and the asset folders the
/// archiver was configured with, in Framerr's ZIP layout.
///
/// Guarantees: the output is written front to back in one pass (it may be a
/// pipe or an upload) with memory independent of the data's size; the
/// manifest is the last entry and lists every other entry's size and
/// SHA-256.
#[async_trait]
pub trait Archiver: Send + Sync {
    /// Which asset folders exist now.
    async fn assets(&self) -> Assets;

    /// Writes the archive and returns the manifest it wrote. `progress`
    /// receives the percentage of input bytes done, rising, at most once per
    /// percent.
    async fn write(
        &self,
        snapshot: &dyn Snapshot,
        manifest: Manifest,
        out: &mut (dyn AsyncWrite + Send + Unpin),
        progress: &(dyn Fn(u8) + Send + Sync),
    ) -> Result<Manifest, ArchiveError>;
}

/// Framerr's field-level encryption of integration credentials (spec
/// section 6), under the instance key `SECRET_ENCRYPTION_KEY`.
pub trait FieldCipher: Send + Sync {
    /// Decrypts a value that looks encrypted; `Err` when it does not decrypt
    /// under this key.
    fn decrypt(&self, value: &str) -> Result<String, CryptoError>;
    /// Encrypts a plaintext value with a fresh IV.
    fn encrypt(&self, plaintext: &str) -> Result<String, CryptoError>;
}

/// What a use case reports while it runs (spec section 8's events).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProgressEvent {
    Started {
        id: String,
        kind: BackupKind,
    },
    Progress {
        id: String,
        step: String,
        percent: u8,
    },
    Complete {
        id: String,
        filename: String,
        size: u64,
    },
    Error {
        id: String,
        error: String,
    },
    ScheduledFailed {
        error: String,
        timestamp: OffsetDateTime,
    },
    /// The backup is complete in the primary store, but copying it to an
    /// extra destination failed.
    DestinationFailed {
        id: String,
        destination: String,
        error: String,
    },
}

/// Receives progress events. Implementations must not block: a slow
/// listener may drop events, never stall a backup.
pub trait Progress: Send + Sync {
    fn report(&self, event: ProgressEvent);
}

/// A progress listener that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn report(&self, _event: ProgressEvent) {}
}
