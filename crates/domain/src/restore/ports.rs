//! What restore and verify need from the outside: reading (and unsealing)
//! an archive, staging and committing the instance's files, checking and
//! post-processing a staged database.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::policy::{DeclaredEntry, HostileArchive, RestoreLimits};
use crate::credentials::{CredentialColumn, Restored};
use crate::encryption::{KeyStoreDecision, KeyStoreOutcome, KeyStoreRow};
use crate::error::{CryptoError, DbError};
use crate::file::BackupFile;
use crate::manifest::{Manifest, ManifestError};
use crate::name::BackupFormat;
use crate::ports::Held;
use crate::secret::Password;

/// Why a backup could not be opened. Messages are Framerr's where it has
/// one (spec section 4).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    #[error("Not a valid Framerr backup file")]
    NotABackup,
    #[error("this backup is encrypted: its password is needed")]
    PasswordRequired,
    #[error("Incorrect password")]
    WrongPassword,
    /// Sealed under an earlier backup encryption key (encryption was turned
    /// off and on since): the server's key cannot open it, its password can.
    #[error("this backup was encrypted under an earlier backup encryption key: its password is needed")]
    EarlierKey,
    /// The instance's key opens it, but its password side (salt,
    /// iterations, wrapped key) is not the current password's: only the
    /// password in use when it was made could open it, or it was damaged.
    #[error(
        "its password header does not match the current backup password: it would open only with the password in use when it was made (a reset-password that was interrupted: run `framerr-backup encryption reset-password` again to give it the current one), or the header is damaged"
    )]
    PasswordSideDiffers,
    /// The FRMRBKUP container is malformed: Framerr's message.
    #[error("{0}")]
    Envelope(String),
    #[error("Backup file is damaged or was tampered with: its authentication tag does not match")]
    Tampered,
    #[error("Invalid ZIP file: {0}")]
    Zip(String),
    /// Reading the file failed (not the file's fault).
    #[error("cannot read the backup: {0}")]
    Io(String),
}

/// Reading an entry failed: the archive's fault, or the destination's.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// The entry is damaged (CRC, size, inflate, truncation).
    #[error("{0}")]
    Damaged(String),
    /// Writing where the entry goes failed (a full disk is not a damaged
    /// backup).
    #[error(transparent)]
    Write(io::Error),
}

/// A backup's ZIP, entry by entry, with any encryption undone as it is read.
/// Blocking: adapters call it from blocking threads.
pub trait ArchiveEntries: Send {
    /// The entries as the central directory declares them.
    fn entries(&self) -> &[DeclaredEntry];
    /// The ZIP's own size, for the archive's expansion ratio.
    fn archive_size(&self) -> u64;
    /// Streams entry `index` into `out`, failing unless its CRC-32 and size
    /// match what is declared; returns the size.
    fn copy_entry(&mut self, index: usize, out: &mut dyn io::Write) -> Result<u64, EntryError>;
}

/// Whether an encrypted backup's payload is authentic. Checked alongside
/// the reading; nothing read may be committed before it says so.
#[async_trait]
pub trait Authenticity: Send {
    async fn check(self: Box<Self>) -> Result<(), OpenError>;
}

/// Plain backups have no tag.
#[derive(Debug, Clone, Copy)]
pub struct NoTag;

#[async_trait]
impl Authenticity for NoTag {
    async fn check(self: Box<Self>) -> Result<(), OpenError> {
        Ok(())
    }
}

/// An opened backup.
pub struct OpenedBackup {
    pub format: BackupFormat,
    pub entries: Box<dyn ArchiveEntries>,
    pub authenticity: Box<dyn Authenticity>,
}

impl std::fmt::Debug for OpenedBackup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedBackup").field("format", &self.format).finish_non_exhaustive()
    }
}

/// Opens backup files: detects plain or encrypted, unseals, reads the ZIP.
#[async_trait]
pub trait BackupReader: Send + Sync {
    /// Plain or encrypted, by the first bytes.
    async fn format(&self, file: &Arc<dyn BackupFile>) -> Result<BackupFormat, OpenError>;
    /// Opens the backup; an encrypted one needs a key (a password's slow
    /// derivation happens here, so a wrong password is known at once).
    async fn open(&self, file: Arc<dyn BackupFile>, key: Option<&BackupKey>) -> Result<OpenedBackup, OpenError>;
}

/// An encrypted backup's payload, decrypted as it is read, and the check
/// of its tag running alongside.
pub struct Unsealed {
    pub payload: Arc<dyn BackupFile>,
    pub authenticity: Box<dyn Authenticity>,
}

impl std::fmt::Debug for Unsealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unsealed").field("payload", &self.payload.describe()).finish_non_exhaustive()
    }
}

/// The encryption container (FRMRBKUP v1). Blocking.
pub trait Unsealer: Send + Sync {
    fn unseal(&self, file: Arc<dyn BackupFile>, key: &BackupKey) -> Result<Unsealed, OpenError>;
}

/// What opens an encrypted backup.
#[derive(Clone)]
pub enum BackupKey {
    Password(Password),
    /// This instance's backup encryption key, as the server's key opens it
    /// (`mbk_server`): what seals its scheduled backups, so the server can
    /// verify them unattended. It opens the backups made since encryption
    /// was last turned on.
    Instance(crate::encryption::KeyStoreRow),
}

impl std::fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackupKey::Password(_) => "Password(..)",
            BackupKey::Instance(_) => "Instance(..)",
        })
    }
}

/// What restore found in an archive and staged.
pub trait Staged: Send + Sync {
    /// The staged copy of the database (post-restore works on it).
    fn database(&self) -> &Path;
    fn manifest(&self) -> &Manifest;
    /// Asset files staged.
    fn assets(&self) -> usize;
    /// The adapter's own handle back, for its commit.
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send>;
}

/// Why staging failed. The live instance is untouched in every case.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StageError {
    #[error(transparent)]
    Hostile(#[from] HostileArchive),
    #[error("Backup is missing database file (framerr.db)")]
    MissingDatabase,
    #[error("Backup is missing manifest file")]
    MissingManifest,
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{path} in the backup is damaged: {detail}")]
    Damaged { path: String, detail: String },
    /// Writing the staged files failed: the data folder's problem.
    #[error("{path}: {detail}")]
    Io { path: String, detail: String, full: bool },
}

/// The instance's files: staging beside them, the journaled swap, and a
/// scratch staging for checks that must not touch the instance.
#[async_trait]
pub trait InstanceFiles: Send + Sync {
    /// Checks every entry and extracts them beside the live files,
    /// verifying each as it goes. Nothing live is touched; dropping the
    /// result removes the staging.
    async fn stage(
        &self,
        archive: Box<dyn ArchiveEntries>,
        limits: RestoreLimits,
    ) -> Result<Box<dyn Staged>, StageError>;
    /// The same checks, extracting only the database, into scratch space
    /// (for verify).
    async fn stage_for_check(
        &self,
        archive: Box<dyn ArchiveEntries>,
        limits: RestoreLimits,
    ) -> Result<Box<dyn Staged>, StageError>;
    /// Swaps the staged files in under a journal: after a crash at any
    /// instant, recovery leaves the instance wholly old or wholly new.
    /// `held` (the instance lock) is kept until the swap is complete, even
    /// if the caller stops waiting. While another process has the live
    /// database open, its files are never unlinked or replaced: the staged
    /// database is written into it through SQLite ([`LiveWriter`]).
    async fn commit(&self, staged: Box<dyn Staged>, held: Arc<dyn Held>) -> Result<DatabaseSwap, StageError>;
}

/// How a commit put the restored database in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseSwap {
    /// Nobody else had the live database open: the staged file was renamed
    /// over it (with its `-wal` and `-shm` set aside).
    Replaced,
    /// Another process (Framerr) had it open: the staged database was
    /// written into the live file through SQLite in one transaction, which
    /// that process sees whole at its next read.
    WrittenInPlace,
}

/// The live database written through SQLite itself, for a restore beside a
/// running Framerr. Blocking: called from the commit's thread and from
/// recovery.
pub trait LiveWriter: Send + Sync {
    /// Whether another process has the live database open (its SQLite
    /// locks, probed without taking them).
    fn opened_elsewhere(&self) -> Result<bool, DbError>;
    /// Copies the database at `staged` into the live one in one write
    /// transaction (SQLite's online backup API), recording `mark` in it
    /// where nothing the database holds can change it: the restore's
    /// commit point, which recovery reads back.
    fn write(&self, staged: &Path, mark: &str) -> Result<(), DbError>;
    /// Whether the live database holds `mark` (so the restore that wrote
    /// it reached its commit point).
    fn holds(&self, mark: &str) -> Result<bool, DbError>;
    /// Takes `mark` away once the restore needs no recovery (best effort:
    /// a mark left behind only names a finished restore).
    fn unmark(&self, mark: &str) -> Result<(), DbError>;
}

/// What telling a running Framerr to reload came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestartOutcome {
    /// The command ran and exited successfully.
    Done { command: String },
    /// It could not be started, failed, or ran past its time limit.
    Failed { command: String, error: String },
}

/// Makes a running Framerr reload what it keeps in memory (settings,
/// integration clients, its backup key) after its database was restored
/// under it: the user's restart command, bounded in time.
#[async_trait]
pub trait Restarter: Send + Sync {
    async fn restart(&self) -> RestartOutcome;
}

/// What a database file is, as far as restore cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseFacts {
    pub user_version: i64,
    pub tables: Vec<String>,
    /// Rows of the tables asked for that exist.
    pub counts: Vec<(String, i64)>,
}

/// What in a database's schema computes with the file's own code when the
/// file is read or checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    View,
    VirtualTable,
    /// A column computed from an expression (`GENERATED ALWAYS AS`).
    GeneratedColumn,
    /// An index on an expression, or with a `WHERE` clause.
    ExpressionIndex,
}

/// One such object, with the SQL that defines it (a generated column's is
/// its table's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryObject {
    pub kind: QueryKind,
    pub name: String,
    pub sql: String,
}

/// The rules post-restore applies to a staged database (spec sections 5
/// and 6), decided here and executed by the database adapter.
pub struct PostRestorePlan<'a> {
    /// Emptied, when they exist (always the fixed list, never the
    /// manifest's).
    pub purge: &'a [&'a str],
    /// What to do with each credential value.
    pub credential: &'a (dyn Fn(CredentialColumn, &str) -> Result<Restored, CryptoError> + Send + Sync),
    /// What to do with the key store row.
    pub key_store: &'a (dyn Fn(&KeyStoreRow) -> KeyStoreDecision + Send + Sync),
    /// The staged database is attacker-controlled: post-restore's CPU
    /// time (see [`crate::restore::WorkBudget`]).
    pub budget: Duration,
}

impl std::fmt::Debug for PostRestorePlan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostRestorePlan").field("purge", &self.purge).finish_non_exhaustive()
    }
}

/// What post-restore did, for the summary.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PostRestoreReport {
    pub tables_purged: Vec<String>,
    pub configs_encrypted: usize,
    /// Integration configs encrypted under a key this instance lacks.
    pub configs_unreadable: usize,
    /// The OIDC client secret is encrypted under another key.
    pub sso_secret_unreadable: bool,
    pub fts_rebuilt: bool,
    pub key_store: KeyStoreOutcome,
}

/// Database files other than the live one: a staged restore, a checked
/// backup.
#[async_trait]
pub trait DatabaseFiles: Send + Sync {
    /// `integrity_check`, `user_version`, the tables, and the rows of the
    /// tables in `count` (those that exist). An error means the file is no
    /// usable database.
    ///
    /// Every method here works on a file an attacker may have written: it
    /// is bounded by construction, whatever SQL the file holds (CPU time
    /// `budget`, memory, SQLite's limits), and a bound reached is
    /// [`DbError::TooMuchWork`].
    async fn check(&self, path: &Path, count: &[&str], budget: Duration) -> Result<DatabaseFacts, DbError>;
    /// What in the schema computes with the file's own code, read from the
    /// schema alone (nothing of it runs): decided on before [`Self::check`],
    /// which evaluates it.
    async fn computed(&self, path: &Path, budget: Duration) -> Result<Vec<QueryObject>, DbError>;
    /// Post-restore on a staged copy, in one transaction. Triggers the
    /// staged database carries never run, and the work is bounded by the
    /// plan's budget.
    async fn post_restore(&self, path: &Path, plan: &PostRestorePlan<'_>) -> Result<PostRestoreReport, DbError>;
}
