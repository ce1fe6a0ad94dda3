//! The ports: what the use cases need from the outside world, and the
//! guarantees they rely on. Adapters implement them; the domain never names
//! a file system, a database driver or an HTTP client.
//!
//! Byte streams cross the ports as `futures_io::AsyncRead`/`AsyncWrite`
//! trait objects: the traits are runtime-neutral, so the domain does not pull
//! in an async runtime, while adapters built on tokio convert at their edge.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_io::{AsyncRead, AsyncWrite};
use time::OffsetDateTime;

use crate::error::{ArchiveError, CryptoError, DbError, StoreError};
use crate::file::BackupFile;
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

/// What a store is, never how its URL was written: two stores are one
/// place exactly when their places are equal. A folder is its device and
/// inode (whatever the spelling: a trailing `/`, `//`, `..`, a link to
/// it); a bucket is its endpoint, name and prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Place {
    /// A folder that exists.
    Folder { device: u64, inode: u64 },
    /// A folder not made yet: its absolute path with every link on the way
    /// followed and every `.` and `..` resolved (what it will be once made).
    NewFolder(String),
    /// A prefix in a bucket: the endpoint as a normalized URL (`None`: AWS),
    /// and the prefix without empty segments.
    Objects { endpoint: Option<String>, bucket: String, prefix: String },
    /// Any other store, by an identity of its own.
    Described(String),
}

/// Two of `stores` (the primary first) that are one place, by their
/// descriptions: the first pair found. Backups copied onto themselves fail,
/// and retention would then run twice in one place under two policies.
pub fn same_place(stores: &[Arc<dyn BackupStore>]) -> Option<(String, String)> {
    let places: Vec<Place> = stores.iter().map(|s| s.place()).collect();
    for (i, a) in places.iter().enumerate() {
        if let Some(j) = places[i + 1..].iter().position(|b| b == a) {
            return Some((stores[i].describe(), stores[i + 1 + j].describe()));
        }
    }
    None
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

    /// What this store is, to tell one place spelled two ways from two
    /// places (see [`Place`]). The default is the description.
    fn place(&self) -> Place {
        Place::Described(self.describe())
    }

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

    /// A small document kept beside the backups (pins, history), by key
    /// (lowercase letters, digits and `-`); `None` when never written.
    async fn read_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let _ = key;
        Ok(None)
    }

    /// Replaces a document atomically: readers see the old one or the new
    /// one whole.
    async fn write_meta(&self, key: &str, data: &[u8]) -> Result<(), StoreError> {
        let _ = (key, data);
        Err(StoreError::Unsupported("documents beside the backups".into()))
    }

    /// The backup as a local file with random access, when this store is
    /// on this machine (restore reads it in place instead of copying it);
    /// `None` for remote stores. `NotFound` as [`BackupStore::open`].
    async fn open_file(&self, name: &BackupName) -> Result<Option<Arc<dyn BackupFile>>, StoreError> {
        let _ = name;
        Ok(None)
    }
}

/// The file or object name of a document beside the backups:
/// `framerr-backup.<key>.json`, which no backup name can be. Keys are
/// lowercase letters, digits and `-`.
pub fn document_name(key: &str) -> Result<String, StoreError> {
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err(StoreError::Other(format!("bad document name {key:?}")));
    }
    Ok(format!("framerr-backup.{key}.json"))
}

/// Local scratch space for backups that must be read with random access
/// but live elsewhere (a remote store).
#[async_trait]
pub trait Scratch: Send + Sync {
    /// Copies `reader` to its end into a scratch file, removed when the
    /// result is dropped (or when the copy fails or is cancelled).
    async fn keep(&self, reader: &mut (dyn AsyncRead + Send + Unpin)) -> Result<Arc<dyn BackupFile>, StoreError>;
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

/// A copy of the live database for a backup. It is deleted when dropped.
#[async_trait]
pub trait Snapshot: Send + Sync {
    /// `PRAGMA user_version` of the copy; `None` for a raw copy of a
    /// database that cannot be read.
    fn user_version(&self) -> Option<i64>;
    /// The size of the database file in bytes.
    fn size(&self) -> u64;
    /// Reads the database file from its start.
    async fn open(&self) -> Result<Box<dyn AsyncRead + Send + Unpin>, DbError>;
    /// Further files that belong with the database (a raw copy's WAL), as
    /// (entry name, size, content).
    async fn extras(&self) -> Result<Vec<(String, u64, Box<dyn AsyncRead + Send + Unpin>)>, DbError> {
        Ok(Vec::new())
    }
    /// Why the live database could not be read, for a raw copy.
    fn damaged(&self) -> Option<&str> {
        None
    }
    /// The tables whose rows this copy leaves out.
    fn omitted_rows(&self) -> Vec<String> {
        Vec::new()
    }
}

/// What a backup copies of the live database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotKind {
    /// Credentials decrypted, so another instance with another key can
    /// restore it (spec section 6).
    Portable,
    /// Credentials left encrypted with this instance's key: for safety
    /// backups, which are restored onto the instance that made them.
    SameInstance,
}

/// How much of the instance-specific data a snapshot keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Contents {
    /// Without the rows every restore deletes (the purge list: caches,
    /// monitor history, sessions, tokens): smaller, faster, no secrets.
    #[default]
    Lean,
    /// With the caches too (never sessions, push subscriptions or SSO
    /// setup tokens): `create --full`.
    Full,
}

impl Contents {
    /// The tables whose rows are left out.
    pub fn omitted_tables(self) -> &'static [&'static str] {
        crate::manifest::omitted_tables(self == Contents::Full)
    }
}

/// The live database as restore sees it before replacing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveDatabase {
    Absent,
    Readable {
        user_version: i64,
    },
    /// It exists but cannot be read (empty, truncated, not SQLite,
    /// corrupt): restore is what the user needs, not a refusal.
    Damaged(String),
}

impl LiveDatabase {
    /// The version a restored database must not exceed, when known.
    pub fn user_version(&self) -> Option<i64> {
        match self {
            LiveDatabase::Readable { user_version } => Some(*user_version),
            _ => None,
        }
    }
}

/// The live Framerr database.
///
/// Guarantees: a snapshot never blocks writers for longer than SQLite's own
/// read transaction would, never modifies the live database, and holds a
/// state that existed at one instant.
#[async_trait]
pub trait Database: Send + Sync {
    async fn snapshot(&self, kind: SnapshotKind, contents: Contents) -> Result<Box<dyn Snapshot>, DbError>;
    /// The live files as they are, for a safety backup of a database that
    /// cannot be read.
    async fn raw_copy(&self, why: &str) -> Result<Box<dyn Snapshot>, DbError>;
    /// Whether the live database exists and can be read.
    async fn state(&self) -> LiveDatabase;
    /// Whether another process (Framerr) has the live database open, seen
    /// from SQLite's own locks without taking them; `None` when it cannot
    /// be told right now.
    async fn opened_elsewhere(&self) -> Option<bool> {
        None
    }
    /// This server's schedule; until one was saved here, Framerr's own
    /// (the initial value); `None` when neither was ever saved.
    async fn schedule(&self) -> Result<Option<Schedule>, DbError>;
    /// Saves this server's schedule (never Framerr's: Framerr's scheduler
    /// would run it too).
    async fn save_schedule(&self, schedule: &Schedule) -> Result<(), DbError>;
    /// Framerr's own schedule (`backupSchedule`), which Framerr's scheduler
    /// runs from its start.
    async fn framerr_schedule(&self) -> Result<Option<Schedule>, DbError> {
        Ok(None)
    }
    /// Turns Framerr's own schedule off (effective at Framerr's next
    /// start), keeping its settings as this server's if none were saved
    /// here. `false` when it was not on.
    async fn disable_framerr_schedule(&self) -> Result<bool, DbError> {
        Ok(false)
    }
}

/// Something that holds the instance lock until it is dropped.
pub trait Held: Send + Sync + fmt::Debug {}

/// The instance lock could not be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    #[error("another backup or restore of this instance is running ({0}); try again when it has finished")]
    Busy(String),
    #[error("{0}")]
    Failed(String),
}

/// One exclusive lock per instance, across processes (a server and a cron'd
/// CLI): held for a whole backup, restore (stage, safety backup, commit)
/// and recovery. Taking it first finishes or rolls back a restore whose
/// process died, so nothing ever acts on the journal of a live restore.
#[async_trait]
pub trait InstanceLock: Send + Sync {
    /// Takes the lock, waiting up to `wait` for another holder.
    async fn acquire(&self, wait: Duration) -> Result<Arc<dyn Held>, LockError>;
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
