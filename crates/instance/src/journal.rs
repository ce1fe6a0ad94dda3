//! The restore journal: written before the first rename, so that a crash at
//! any instant is rolled back (before the commit point) or finished (after
//! it) at the next start. The live database is then either entirely the old
//! one or entirely the new one.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum State {
    /// Renames may have started; roll back.
    Committing,
    /// Every rename is done; finish (delete the old copies).
    Committed,
}

/// One path the restore replaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Item {
    pub(crate) target: PathBuf,
    /// The new content; `None` for a path only moved aside (the old
    /// database's `-wal` and `-shm`).
    pub(crate) staged: Option<PathBuf>,
    /// Where the old content is moved.
    pub(crate) old: PathBuf,
    pub(crate) existed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Journal {
    pub(crate) state: State,
    pub(crate) items: Vec<Item>,
    /// Folders to delete after the commit (caches, the staging folder).
    pub(crate) cleanup: Vec<PathBuf>,
}

impl Journal {
    pub(crate) fn read(path: &Path) -> io::Result<Option<Journal>> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(io::Error::other),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces the journal atomically and durably.
    pub(crate) fn write(&self, path: &Path) -> io::Result<()> {
        let temp = path.with_extension("tmp");
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(&serde_json::to_vec_pretty(self).map_err(io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        sync_parent(path);
        Ok(())
    }
}

/// fsync a path's folder, so a rename or unlink in it is durable.
pub(crate) fn sync_parent(path: &Path) {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent);
    }
}

/// fsync a folder, so the names created in it are durable. Best effort:
/// some file systems cannot sync a folder.
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(handle) = std::fs::File::open(dir) {
        let _ = handle.sync_all();
    }
}

/// Removes a file or a folder tree; absent is fine.
pub(crate) fn remove_any(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Performs the renames. Each step is idempotent, so recovery can run the
/// rollback from any point.
pub(crate) fn apply(items: &[Item], failpoint: impl Fn(&str)) -> io::Result<()> {
    for (i, item) in items.iter().enumerate() {
        if item.existed && exists(&item.target) {
            std::fs::rename(&item.target, &item.old)?;
            sync_parent(&item.target);
        }
        failpoint(&format!("restore:moved-old-{i}"));
        if let Some(staged) = &item.staged {
            std::fs::rename(staged, &item.target)?;
            sync_parent(&item.target);
        }
        failpoint(&format!("restore:moved-new-{i}"));
    }
    Ok(())
}

/// Puts every item back as it was before [`apply`] started.
pub(crate) fn roll_back(items: &[Item]) -> io::Result<()> {
    for item in items.iter().rev() {
        if item.existed {
            if exists(&item.old) {
                remove_any(&item.target)?;
                std::fs::rename(&item.old, &item.target)?;
                sync_parent(&item.target);
            }
        } else if item.staged.as_ref().is_some_and(|s| !exists(s)) {
            // The new content was moved in where nothing was before.
            remove_any(&item.target)?;
        }
        if let Some(staged) = &item.staged {
            remove_any(staged)?;
        }
    }
    Ok(())
}

/// Deletes the old copies after a completed commit.
pub(crate) fn finish(journal: &Journal) -> io::Result<()> {
    for item in &journal.items {
        remove_any(&item.old)?;
    }
    for path in &journal.cleanup {
        remove_any(path)?;
    }
    Ok(())
}
