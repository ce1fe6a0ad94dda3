//! The restore journal: written before the first rename, so that a crash at
//! any instant is rolled back (before the commit point) or finished (after
//! it) by the next holder of the instance lock. The live database is then
//! either entirely the old one or entirely the new one.
//!
//! Nothing in the data folder is trusted: the journal names no path. It
//! holds the restore's id and the roles of what it replaces; every path is
//! derived from the instance's layout and that id. It also names, by
//! device and inode, the files it moves, and recovery acts only when the
//! files on disk are those: a planted journal, or one copied here with a
//! data folder, matches nothing and is refused, so it can neither remove a
//! live file nor rename anything over one.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use backup_domain::AssetFolder;
use backup_fsutil::temp::JOURNAL_PREFIX;
use backup_fsutil::{TempPath, open_regular, remove_any, sync_parent};

use crate::Layout;

/// 2 named roles only; 3 adds the identities recovery checks; 4 says how
/// the database is replaced. A version 3 journal is read as a rename.
const VERSION: u32 = 4;
const RENAMES_ONLY: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum State {
    /// Renames may have started; roll back.
    Committing,
    /// Every rename is done; finish (delete the old copies).
    Committed,
}

/// What a journal item replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Role {
    /// The old database's WAL, moved aside with it: a stale WAL beside the
    /// new file would be replayed into it.
    Wal,
    Shm,
    Database,
    ProfilePictures,
    CustomIcons,
    Favicon,
}

impl Role {
    pub(crate) fn asset(folder: AssetFolder) -> Role {
        match folder {
            AssetFolder::ProfilePictures => Role::ProfilePictures,
            AssetFolder::CustomIcons => Role::CustomIcons,
            AssetFolder::Favicon => Role::Favicon,
        }
    }

    fn folder(self) -> Option<AssetFolder> {
        match self {
            Role::ProfilePictures => Some(AssetFolder::ProfilePictures),
            Role::CustomIcons => Some(AssetFolder::CustomIcons),
            Role::Favicon => Some(AssetFolder::Favicon),
            _ => None,
        }
    }
}

/// A file or folder as the file system knows it (device, inode): renames
/// and hard links keep it, a copy or a new file does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileId(u64, u64);

impl FileId {
    pub(crate) fn of(path: &Path) -> Option<FileId> {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(path).ok().map(|m| FileId(m.dev(), m.ino()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Item {
    pub(crate) role: Role,
    /// The live file or folder moved aside, when there was one.
    pub(crate) was: Option<FileId>,
    /// The staged copy moved in, for roles with new content.
    pub(crate) new: Option<FileId>,
}

impl Item {
    pub(crate) fn existed(&self) -> bool {
        self.was.is_some()
    }
}

/// How the database is replaced, and so where the commit point is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum DatabaseMove {
    /// The staged file is renamed over the live one: the journal's state
    /// is the commit point.
    #[default]
    Renamed,
    /// Another process had the live database open: the staged database is
    /// written into it through SQLite, in one transaction that also
    /// records the restore's id. That transaction is the commit point:
    /// recovery asks the database whether it holds the id, and rolls the
    /// assets forward or back to match.
    Written,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Journal {
    pub(crate) version: u32,
    pub(crate) id: String,
    pub(crate) state: State,
    #[serde(default)]
    pub(crate) database: DatabaseMove,
    pub(crate) items: Vec<Item>,
}

/// Where each role's files are, for one restore id.
pub(crate) struct Paths<'a> {
    pub(crate) layout: &'a Layout,
    pub(crate) id: &'a str,
}

impl Paths<'_> {
    pub(crate) fn target(&self, role: Role) -> PathBuf {
        match role {
            Role::Database => self.layout.db.clone(),
            Role::Wal => self.layout.db_side("-wal"),
            Role::Shm => self.layout.db_side("-shm"),
            other => other.folder().map(|f| self.layout.assets.get(f).to_path_buf()).unwrap_or_default(),
        }
    }

    /// The new content; `None` for paths only moved aside.
    pub(crate) fn staged(&self, role: Role) -> Option<PathBuf> {
        match role {
            Role::Wal | Role::Shm => None,
            Role::Database => Some(self.layout.staging_dir(self.id).join(crate::DATABASE_FILE)),
            other => other.folder().map(|f| self.layout.asset_staging(f, self.id)),
        }
    }

    pub(crate) fn old(&self, role: Role) -> PathBuf {
        let target = self.target(role);
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        backup_fsutil::parent(&target).join(format!("{}{}-{name}", crate::OLD_PREFIX, self.id))
    }
}

/// Why a journal cannot be acted on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JournalError {
    #[error(
        "the restore journal {0} is not one this version writes (planted, or left by an older version); if no restore was interrupted, delete it"
    )]
    Invalid(String),
    #[error(
        "the restore journal {0} does not match the files it names (planted, or copied here from another folder); nothing was changed; if no restore was interrupted here, delete it"
    )]
    Foreign(String),
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    /// A restore that wrote into the live database was interrupted, and
    /// the database cannot say whether it got the new content.
    #[error(
        "an interrupted restore ({path}) cannot be finished or rolled back yet: the live database cannot be read ({why}); nothing was changed"
    )]
    Undecided { path: String, why: String },
}

impl Journal {
    pub(crate) fn new(id: String, database: DatabaseMove, items: Vec<Item>) -> Journal {
        Journal { version: VERSION, id, state: State::Committing, database, items }
    }

    pub(crate) fn read(path: &Path) -> Result<Option<Journal>, JournalError> {
        let invalid = || JournalError::Invalid(path.display().to_string());
        let file = match open_regular(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound && std::fs::symlink_metadata(path).is_err() => {
                return Ok(None);
            }
            // Something that is not a regular file carries the name.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(invalid()),
            Err(source) => return Err(JournalError::Io { path: path.display().to_string(), source }),
        };
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut io::Read::take(file, 64 * 1024), &mut bytes)
            .map_err(|source| JournalError::Io { path: path.display().to_string(), source })?;
        let journal: Journal = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        journal.validate().then_some(Some(journal)).ok_or_else(invalid)
    }

    fn validate(&self) -> bool {
        let id_ok = self.id.len() <= 64
            && self.id.split_once('-').is_some_and(|(a, b)| {
                !a.is_empty() && !b.is_empty() && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_hexdigit())
            });
        let mut roles: Vec<Role> = self.items.iter().map(|i| i.role).collect();
        roles.sort_by_key(|r| *r as u8);
        roles.dedup();
        let database_items = self.items.iter().any(|i| matches!(i.role, Role::Database | Role::Wal | Role::Shm));
        let form_ok = match (self.version, self.database) {
            (VERSION, DatabaseMove::Renamed) => true,
            // Its files are never moved: the journal names only assets.
            (VERSION, DatabaseMove::Written) => !database_items,
            (RENAMES_ONLY, DatabaseMove::Renamed) => true,
            _ => false,
        };
        form_ok && id_ok && roles.len() == self.items.len()
    }

    /// Replaces the journal atomically and durably. The temporary is
    /// created exclusively (never through a planted link), and renamed
    /// over the journal's name (a link there is replaced, not followed).
    pub(crate) fn write(&self, path: &Path) -> io::Result<()> {
        let dir = backup_fsutil::parent(path);
        let temp = TempPath::new(&dir, JOURNAL_PREFIX, "json")?;
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(temp.path())?;
        file.write_all(&serde_json::to_vec_pretty(self).map_err(io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(temp.path(), path)?;
        let _ = temp.keep();
        sync_parent(path);
        Ok(())
    }
}

fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

fn rename(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::rename(from, to)?;
    sync_parent(to);
    Ok(())
}

/// How the renames stopped early.
#[derive(Debug)]
pub(crate) enum Stop {
    Io(io::Error),
    /// The process died here (in tests: a simulated crash).
    Crashed,
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Self {
        Stop::Io(e)
    }
}

/// Performs the renames. Each step is idempotent, so recovery can roll
/// back from any point. `crash_at` says whether the process dies at a
/// named point (always no, outside tests and failpoints).
pub(crate) fn apply(paths: &Paths<'_>, items: &[Item], crash_at: &dyn Fn(&str) -> bool) -> Result<(), Stop> {
    for (i, item) in items.iter().enumerate() {
        let target = paths.target(item.role);
        let staged = paths.staged(item.role);
        if item.existed() && exists(&target) {
            // The database is replaced in place: its old copy is a second
            // link and the new one is renamed over it, so another process
            // opening the path finds one whole database or the other, never
            // none. Folders (and file systems without hard links) move.
            let old = paths.old(item.role);
            let linked = item.role == Role::Database && staged.is_some() && std::fs::hard_link(&target, &old).is_ok();
            if !linked {
                rename(&target, &old)?;
            }
        }
        if crash_at(&format!("restore:moved-old-{i}")) {
            return Err(Stop::Crashed);
        }
        if let Some(staged) = staged {
            rename(&staged, &target)?;
        }
        if crash_at(&format!("restore:moved-new-{i}")) {
            return Err(Stop::Crashed);
        }
    }
    Ok(())
}

/// Whether the files on disk are the ones the journal moved, at whatever
/// point [`apply`] stopped: an old copy is the live file that was moved
/// aside; a live path is that file (not moved yet, or linked) or the
/// staged copy moved in. SQLite's side files are exempt from the second
/// rule: a reader of the new database may have made its own.
pub(crate) fn matches(paths: &Paths<'_>, items: &[Item]) -> bool {
    items.iter().all(|item| {
        let old = FileId::of(&paths.old(item.role));
        let target = FileId::of(&paths.target(item.role));
        let old_ok = old.is_none() || old == item.was;
        let target_ok = item.new.is_none() || target.is_none() || target == item.new || target == item.was;
        old_ok && target_ok
    })
}

/// Puts every item back as it was before [`apply`] started.
pub(crate) fn roll_back(paths: &Paths<'_>, items: &[Item]) -> io::Result<()> {
    for item in items.iter().rev() {
        let (target, old, staged) = (paths.target(item.role), paths.old(item.role), paths.staged(item.role));
        if item.existed() {
            if exists(&old) {
                // A file is renamed over what is there (never missing); a
                // folder cannot be, so what was moved in goes first.
                if std::fs::symlink_metadata(&old).is_ok_and(|m| m.is_dir()) {
                    remove_any(&target)?;
                }
                rename(&old, &target)?;
                // Renaming a link over another link of the same file does
                // nothing (POSIX): the copy is still there.
                if exists(&old) {
                    remove_any(&old)?;
                }
            }
        } else if staged.as_ref().is_some_and(|s| !exists(s)) && FileId::of(&target) == item.new {
            // The new content was moved in where nothing was before.
            remove_any(&target)?;
        }
        if let Some(staged) = staged {
            remove_any(&staged)?;
        }
    }
    remove_any(&paths.layout.staging_dir(paths.id))
}

/// Deletes the old copies, the staging folder and the caches after a
/// completed commit.
pub(crate) fn finish(paths: &Paths<'_>, items: &[Item]) -> io::Result<()> {
    for item in items {
        remove_any(&paths.old(item.role))?;
    }
    remove_any(&paths.layout.staging_dir(paths.id))?;
    for cache in &paths.layout.caches {
        remove_any(cache)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planted_or_foreign_journals_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.json");
        let good =
            r#"{"version":3,"id":"00ab-1","state":"committing","items":[{"role":"database","was":[1,2],"new":null}]}"#;
        for bad in [
            // The first format named paths: never acted on.
            r#"{"state":"committing","items":[],"cleanup":["/some/dir"]}"#,
            // The second named no identities to check.
            r#"{"version":2,"id":"00ab-1","state":"committing","items":[{"role":"database","existed":true}]}"#,
            r#"{"version":3,"id":"00ab-1","state":"committing","items":[{"role":"database","existed":true}]}"#,
            r#"{"version":2,"id":"../../etc","state":"committing","items":[]}"#,
            r#"{"version":2,"id":"00ab-1","state":"committing","items":[],"cleanup":["/x"]}"#,
            r#"{"version":2,"id":"00ab-1","state":"committing","items":[{"role":"/etc","existed":true}]}"#,
            r#"{"version":2,"id":"00ab-1","state":"committing","items":[{"role":"wal","existed":true},{"role":"wal","existed":false}]}"#,
            // A database written in place never has its files moved.
            r#"{"version":4,"id":"00ab-1","state":"committing","database":"written","items":[{"role":"database","was":[1,2],"new":null}]}"#,
            r#"{"version":3,"id":"00ab-1","state":"committing","database":"written","items":[]}"#,
            "not json",
        ] {
            std::fs::write(&path, bad).unwrap();
            assert!(matches!(Journal::read(&path), Err(JournalError::Invalid(_))), "{bad}");
        }
        std::fs::write(&path, good).unwrap();
        let read = Journal::read(&path).unwrap().unwrap();
        assert_eq!((read.items[0].role, read.database), (Role::Database, DatabaseMove::Renamed));
        // A link carrying the journal's name is not followed.
        std::fs::remove_file(&path).unwrap();
        let elsewhere = dir.path().join("elsewhere.json");
        std::fs::write(&elsewhere, good).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        assert!(matches!(Journal::read(&path), Err(JournalError::Invalid(_))));
        assert!(Journal::read(&dir.path().join("none.json")).unwrap().is_none());
    }

    #[test]
    fn writing_replaces_a_planted_link_instead_of_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let path = dir.path().join(".framerr-restore-journal.json");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let journal = Journal::new("00ab-1".into(), DatabaseMove::Written, Vec::new());
        journal.write(&path).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(std::fs::symlink_metadata(&path).unwrap().is_file());
        assert_eq!(Journal::read(&path).unwrap().unwrap(), journal);
    }
}
