//! Local-file mechanisms that every adapter writing files shares, so that no
//! adapter depends on another:
//!
//! - [`temp`]: temporaries owned by a live process, and the removal of the
//!   ones whose owner died (judged by a lock, never by process id);
//! - [`lock`]: an exclusive lock across processes, with a bounded wait;
//! - [`file`]: opening without following links, fsync of folders, removal
//!   of files and folders, io errors in the store's words, local files as
//!   [`backup_domain::file::BackupFile`];
//! - [`failpoint`]: crash and race test hooks, compiled only with the
//!   `failpoints` feature.

pub mod failpoint;
pub mod file;
pub mod lock;
pub mod temp;

pub use failpoint::failpoint;
pub use file::{LocalFile, is_full, map_io, open_regular, parent, remove_any, sync_dir, sync_parent};
pub use lock::{FileLock, LockError, lock_exclusive};
pub use temp::{TempPath, remove_stale_temporaries, temporary_name, temporary_path};
