//! Errors that cross the ports.
//!
//! Policy: each adapter maps its own library's errors (io, sqlx, S3) into
//! these at its edge, with a message that names what and where; nothing above
//! an adapter matches on a library error. Messages never contain secrets
//! (passwords, keys, credentials in URLs). The HTTP front alone turns these
//! into status codes.

/// A backup store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("backup {0} not found")]
    NotFound(String),
    #[error("backup {0} already exists")]
    AlreadyExists(String),
    #[error("{0}: permission denied")]
    PermissionDenied(String),
    #[error("{0}: no space left on the device")]
    Full(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("this store does not support {0}")]
    Unsupported(String),
    #[error("{0}")]
    Other(String),
}

/// The database failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    #[error("database not found at {0}")]
    Missing(String),
    #[error("{0} is not a SQLite database")]
    NotSqlite(String),
    #[error("database {path} is damaged: {detail}")]
    Corrupt { path: String, detail: String },
    #[error("stored backup schedule is invalid: {0}")]
    BadSchedule(String),
    /// The disk (or a quota) is full: the file's place, not its content.
    #[error("no space left for {0}")]
    Full(String),
    /// An untrusted database (a backup's) hit the bounds its checks run
    /// under: CPU time, memory, the longest value SQLite may build.
    #[error("{path}: refused: the database does too much work to check ({detail})")]
    TooMuchWork { path: String, detail: String },
    #[error("{0}")]
    Other(String),
}

/// A cryptographic operation failed. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    #[error("value does not decrypt with this instance's key")]
    WrongKey,
    #[error("value is not in the encrypted format")]
    Malformed,
    /// AES-GCM allows at most 2^32 - 2 blocks (about 64 GiB) under one key
    /// and nonce.
    #[error("more than AES-GCM can encrypt under one key and nonce (64 GiB)")]
    TooLong,
}

/// Writing or reading a backup archive failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// A file that goes into the backup could not be read.
    #[error("cannot read {path}: {detail}")]
    Source { path: String, detail: String },
    /// The backup could not be written where it was going.
    #[error("cannot write the backup: {0}")]
    Output(String),
    #[error("{0}")]
    Other(String),
}
