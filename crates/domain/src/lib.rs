//! The pure core of framerr-backup: Framerr's backup names, manifest,
//! retention and schedule policy, the ports the use cases talk through, and
//! the use cases themselves.
//!
//! **Architecture invariant:** this crate does no IO. It has no async
//! runtime, no database driver, no object store client, and never reads
//! the file system or the system clock; `tests/architecture.rs` checks it.

pub mod assets;
pub mod auth;
pub mod busy;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod create;
pub mod credentials;
pub mod detect;
pub mod encryption;
pub mod error;
pub mod file;
pub mod history;
pub mod kind;
pub mod listing;
pub mod manifest;
pub mod memory;
pub mod name;
pub mod notify;
pub mod pins;
pub mod ports;
pub mod restore;
pub mod retention;
pub mod schedule;
pub mod scheduler;
pub mod secret;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod timefmt;
pub mod verification;

pub use assets::{AssetFolder, AssetPaths};
pub use busy::{BusyFlag, BusyGuard};
pub use create::{CreateError, Created, Creator, Hold, RetentionOutcome};
pub use encryption::{BackupEncryption, EncryptionError};
pub use error::{ArchiveError, CryptoError, DbError, StoreError};
pub use kind::BackupKind;
pub use manifest::{Assets, Encryption, EntryDigest, Manifest, ManifestError};
pub use name::{BackupFormat, BackupName, NameError};
pub use restore::{
    FramerrAfterRestore, RestoreError, RestoreRequest, RestoreSummary, Restorer, SafetyBackup, Source, VerifyReport,
};
pub use retention::{KeepPolicy, MaxBackups};
pub use schedule::{Frequency, Schedule, ScheduleErrors, Zone};
pub use secret::Password;
