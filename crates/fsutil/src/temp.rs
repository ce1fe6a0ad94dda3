//! Temporary files and folders owned by a process, and the removal of those
//! whose owner is gone.
//!
//! A process id cannot tell a crash's leftovers from live work: in a
//! container the writer is PID 1 on every start, so a partial left by a
//! killed PID 1 would look alive forever. Instead each process has a random
//! token, and in every folder where it writes temporaries it keeps an
//! *owner file* `.framerr-owner-<token>` locked (`flock`) for as long as it
//! lives. The kernel releases the lock when the process dies, whatever way
//! it dies. A temporary is named `<prefix><token>-<n>-<label>`; it is stale
//! exactly when the owner file of its token is missing or can be locked.

use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::file::remove_any;

/// Backups being uploaded, decrypted copies, fetched copies, uploads.
pub const UPLOAD_PREFIX: &str = ".framerr-upload-";
/// Database snapshots being taken.
pub const SNAPSHOT_PREFIX: &str = ".framerr-snapshot-";
/// A restore's staging, beside each live path.
pub const STAGING_PREFIX: &str = ".framerr-restore-";
/// Scratch files of `verify` and of checks.
pub const SCRATCH_PREFIX: &str = ".framerr-scratch-";
/// A journal being written.
pub const JOURNAL_PREFIX: &str = ".framerr-journal-";
/// Every prefix above: what [`remove_stale_temporaries`] looks for by default.
pub const ALL_PREFIXES: [&str; 5] = [UPLOAD_PREFIX, SNAPSHOT_PREFIX, STAGING_PREFIX, SCRATCH_PREFIX, JOURNAL_PREFIX];

/// A live process's owner file (see the module documentation).
pub const OWNER_PREFIX: &str = ".framerr-owner-";
/// An owner file before it is locked and renamed into place.
const OWNER_TEMP_PREFIX: &str = ".framerr-ownertmp-";

/// This process's token: random, so it never repeats across restarts.
pub fn token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        // The standard library seeds every RandomState from the OS's
        // generator; a collision would need two processes to draw the same
        // 64 bits.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            hasher.write_u128(t.as_nanos());
        }
        format!("{:016x}", hasher.finish())
    })
}

fn counter() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// Owner files this process holds, by folder; never closed before exit.
fn owners() -> &'static Mutex<HashMap<PathBuf, File>> {
    static OWNERS: OnceLock<Mutex<HashMap<PathBuf, File>>> = OnceLock::new();
    OWNERS.get_or_init(Default::default)
}

fn owner_path(dir: &Path, token: &str) -> PathBuf {
    dir.join(format!("{OWNER_PREFIX}{token}"))
}

/// Makes sure `dir` (which must exist) holds this process's locked owner
/// file.
fn ensure_owner(dir: &Path) -> io::Result<()> {
    let mut owners = owners().lock().unwrap_or_else(|p| p.into_inner());
    let path = owner_path(dir, token());
    if owners.contains_key(dir) && std::fs::symlink_metadata(&path).is_ok() {
        return Ok(());
    }
    // Locked before it carries its final name, so no cleaner ever sees an
    // unlocked owner file of a live process.
    let staging = dir.join(format!("{OWNER_TEMP_PREFIX}{}-{:x}", token(), counter()));
    let file = OpenOptions::new().write(true).create_new(true).open(&staging)?;
    if let Err(e) = file.try_lock() {
        let _ = std::fs::remove_file(&staging);
        return Err(io::Error::other(format!("cannot lock {}: {e}", staging.display())));
    }
    if let Err(e) = std::fs::rename(&staging, &path) {
        let _ = std::fs::remove_file(&staging);
        return Err(e);
    }
    owners.insert(dir.to_path_buf(), file);
    Ok(())
}

/// A new path in `dir` for a temporary owned by this process:
/// `<prefix><token>-<n>-<label>`. Nothing is created but the owner file;
/// the caller creates the temporary itself (exclusively).
pub fn temporary_path(dir: &Path, prefix: &str, label: &str) -> io::Result<PathBuf> {
    ensure_owner(dir)?;
    Ok(dir.join(format!("{prefix}{}-{:x}-{label}", token(), counter())))
}

/// A temporary path removed (file or folder) when dropped, unless
/// [`TempPath::keep`] was called: work that is cancelled or fails half way
/// leaves nothing, even in a long-running server.
#[derive(Debug)]
pub struct TempPath {
    path: PathBuf,
    armed: bool,
}

impl TempPath {
    /// A new temporary path in `dir` (see [`temporary_path`]).
    pub fn new(dir: &Path, prefix: &str, label: &str) -> io::Result<TempPath> {
        Ok(TempPath { path: temporary_path(dir, prefix, label)?, armed: true })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the path: the caller owns it now.
    pub fn keep(mut self) -> PathBuf {
        self.armed = false;
        std::mem::take(&mut self.path)
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if self.armed {
            let _ = remove_any(&self.path);
        }
    }
}

/// A unique name `<prefix><token>-<n>-<label>` for a temporary that lives
/// elsewhere (an object store's key), where no owner file can be kept.
pub fn temporary_name(prefix: &str, label: &str) -> String {
    format!("{prefix}{}-{:x}-{label}", token(), counter())
}

/// A new id owned by this process, `<token>-<n>`, for temporaries named
/// `<prefix><id>-<label>` in each of `dirs` (which must exist): a restore
/// stages beside the database and beside each asset folder under one id.
pub fn new_id(dirs: &[&Path]) -> io::Result<String> {
    for dir in dirs {
        ensure_owner(dir)?;
    }
    Ok(format!("{}-{:x}", token(), counter()))
}

/// Removes this process's owner files: call when the process is about to
/// exit, its temporaries gone. (A process that dies leaves them for the
/// next cleaning, which finds them unlocked.)
pub fn release_owner_files() {
    let mut owners = owners().lock().unwrap_or_else(|p| p.into_inner());
    for (dir, file) in owners.drain() {
        let _ = std::fs::remove_file(owner_path(&dir, token()));
        drop(file);
    }
}

/// Whether a process still owns temporaries of `token` in `dir`.
fn owner_alive(dir: &Path, token: &str) -> bool {
    match File::open(owner_path(dir, token)) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        // Cannot tell: keep its files.
        Err(_) => true,
        Ok(file) => match file.try_lock() {
            Ok(()) => false,
            Err(TryLockError::WouldBlock) => true,
            Err(TryLockError::Error(_)) => true,
        },
    }
}

/// Removes the temporaries in `dir` with one of `prefixes` whose owner is
/// gone (files and folders alike), then the owner files of dead processes.
/// Never touches this process's temporaries or a live process's. Returns how
/// many were removed.
pub fn remove_stale_temporaries(dir: &Path, prefixes: &[&str]) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut names: Vec<String> = entries.flatten().filter_map(|e| e.file_name().to_str().map(str::to_owned)).collect();
    names.sort();
    let mut alive: HashMap<String, bool> = HashMap::new();
    let mut removed = 0;
    for name in &names {
        let Some(rest) = prefixes.iter().find_map(|p| name.strip_prefix(p)) else { continue };
        // Tokens are hex (process ids in older versions); anything else with
        // our prefix (the restore journal) is not a temporary.
        let Some(owner) = rest.split('-').next().filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_hexdigit()))
        else {
            continue;
        };
        if owner == token() {
            continue;
        }
        // The owner file is looked up by path, not in the listing: a
        // listing taken while files are created may hold a new temporary
        // and miss its (older) owner file.
        let live = *alive.entry(owner.to_owned()).or_insert_with(|| owner_alive(dir, owner));
        if live {
            continue;
        }
        let path = dir.join(name);
        tracing::info!(path = %path.display(), "removing what an interrupted process left behind");
        if remove_any(&path).is_ok() {
            removed += 1;
        }
    }
    for name in &names {
        let Some(rest) = name.strip_prefix(OWNER_PREFIX).or_else(|| name.strip_prefix(OWNER_TEMP_PREFIX)) else {
            continue;
        };
        if rest.starts_with(token()) {
            continue;
        }
        let path = dir.join(name);
        // Removed while we hold its lock: no live process can hold it.
        if let Ok(file) = File::open(&path)
            && file.try_lock().is_ok()
        {
            let _ = std::fs::remove_file(&path);
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_temporaries_stay_and_dead_owners_go() {
        let dir = tempfile::tempdir().unwrap();
        let mine = temporary_path(dir.path(), UPLOAD_PREFIX, "x.partial").unwrap();
        std::fs::write(&mine, b"live").unwrap();
        assert!(owner_path(dir.path(), token()).exists());

        // A dead process: an owner file nobody locks, with a file and a folder.
        let dead = "00000000deadbeef";
        std::fs::write(owner_path(dir.path(), dead), b"").unwrap();
        let dead_file = dir.path().join(format!("{UPLOAD_PREFIX}{dead}-1-a.partial"));
        let dead_dir = dir.path().join(format!("{STAGING_PREFIX}{dead}-2-framerr.db"));
        std::fs::write(&dead_file, b"x").unwrap();
        std::fs::create_dir_all(dead_dir.join("inner")).unwrap();
        // An orphan with no owner file at all, e.g. from an older version
        // that named temporaries by process id.
        let orphan = dir.path().join(format!("{SNAPSHOT_PREFIX}12345-1-framerr.db-journal"));
        std::fs::write(&orphan, b"x").unwrap();
        // A live owner: another open file description holding the lock.
        let live = "0000000011111111";
        let held = File::create(owner_path(dir.path(), live)).unwrap();
        held.lock().unwrap();
        let live_file = dir.path().join(format!("{UPLOAD_PREFIX}{live}-1-b.partial"));
        std::fs::write(&live_file, b"x").unwrap();
        // Not temporaries at all.
        let journal = dir.path().join(".framerr-restore-journal.json");
        std::fs::write(&journal, b"{}").unwrap();
        let backup = dir.path().join("framerr-manual-2026-01-01T00-00-00.zip");
        std::fs::write(&backup, b"x").unwrap();

        assert_eq!(remove_stale_temporaries(dir.path(), &ALL_PREFIXES), 3);
        assert!(mine.exists() && live_file.exists() && backup.exists() && journal.exists());
        assert!(!dead_file.exists() && !dead_dir.exists() && !orphan.exists());
        assert!(!owner_path(dir.path(), dead).exists(), "a dead owner file stays");
        assert!(owner_path(dir.path(), live).exists());
        drop(held);
        assert_eq!(remove_stale_temporaries(dir.path(), &ALL_PREFIXES), 1);
        assert!(!live_file.exists());
    }

    #[test]
    fn names_are_unique_and_carry_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let a = temporary_path(dir.path(), SCRATCH_PREFIX, "v.db").unwrap();
        let b = temporary_path(dir.path(), SCRATCH_PREFIX, "v.db").unwrap();
        assert_ne!(a, b);
        let name = a.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with(&format!("{SCRATCH_PREFIX}{}-", token())), "{name}");
        assert!(name.ends_with("-v.db"));
    }
}
