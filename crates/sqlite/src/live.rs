//! The live database beside a running Framerr: who else has it open, and
//! writing a restored database into it through SQLite itself.
//!
//! Framerr keeps one connection to `framerr.db` for its lifetime. A file
//! renamed over the database, or a `-wal`/`-shm` deleted, is invisible to
//! that connection: it goes on with the deleted files, and everything it
//! writes afterwards is lost. What SQLite writes into the same file, in a
//! transaction, that connection sees at its next read. So while another
//! process has the database open, a restore writes the checked, staged
//! database into it with the online backup API: one write transaction,
//! whole or not at all, journal mode and page size kept.
//!
//! Who has it open is read from SQLite's own POSIX locks, without taking
//! any: every connection in WAL mode holds a read lock on the `-shm` file's
//! "dead man switch" byte for as long as it is open, and a shared lock on
//! the database file once it has read; `F_GETLK` reports another process's
//! locks (across containers sharing a volume too, as one kernel keeps
//! them) and never this process's own. Closing any descriptor of a file
//! drops every POSIX lock this process holds on it, SQLite's included, so
//! the probe never closes a descriptor of the live files: it keeps one
//! open per file, and lets one go only once a restore replaced that file
//! (no connection of this process can be using it then).
//!
//! rusqlite is used here, beside sqlx, for its safe wrapper of the backup
//! API (sqlx has none, and this workspace forbids `unsafe`); both link the
//! same SQLite.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use backup_domain::DbError;
use backup_domain::restore::LiveWriter;

use crate::display;

/// The `system_config` key that records the last restore written into the
/// live database: its id (the commit point recovery reads) and when.
pub const RESTORE_MARK_KEY: &str = "framerrBackupRestore";

/// How long writing waits for Framerr's own write transactions.
const BUSY: Duration = Duration::from_secs(30);

/// SQLite's lock bytes in the database file (`PENDING_BYTE` and the
/// shared range after it) and in the `-shm` file (the WAL locks and the
/// dead man switch that every open connection holds).
const DB_LOCKS: (i64, i64) = (0x4000_0000, 512);
const SHM_LOCKS: (i64, i64) = (120, 9);

/// The probe's descriptors, by path, with the file (device, inode) each
/// one is open on: never closed while that file is the one at the path.
static PROBED: Mutex<Vec<Probed>> = Mutex::new(Vec::new());

/// A path, the (device, inode) of the file it named when opened, and the
/// descriptor.
type Probed = (PathBuf, (u64, u64), File);

/// Whether a process other than this one holds a lock on `path` in
/// `range`: a write lock there would conflict with it.
fn locked_elsewhere(path: &Path, (start, len): (i64, i64)) -> io::Result<bool> {
    let id = match std::fs::symlink_metadata(path) {
        Ok(meta) => (meta.dev(), meta.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let mut probed = PROBED.lock().unwrap_or_else(|p| p.into_inner());
    let index = match probed.iter().position(|(p, _, _)| p == path) {
        Some(i) if probed[i].1 == id => i,
        found => {
            let file = OpenOptions::new().read(true).custom_flags(nix::libc::O_NOFOLLOW).open(path)?;
            let entry = (path.to_path_buf(), id, file);
            match found {
                // A restore replaced that file: its old descriptor goes.
                Some(i) => {
                    probed[i] = entry;
                    i
                }
                None => {
                    probed.push(entry);
                    probed.len() - 1
                }
            }
        }
    };
    let file = &probed[index].2;
    let mut lock = nix::libc::flock {
        l_type: nix::libc::F_WRLCK as i16,
        l_whence: nix::libc::SEEK_SET as i16,
        l_start: start,
        l_len: len,
        l_pid: 0,
    };
    nix::fcntl::fcntl(file, nix::fcntl::FcntlArg::F_GETLK(&mut lock)).map_err(io::Error::from)?;
    Ok(lock.l_type != nix::libc::F_UNLCK as i16)
}

/// `framerr.db` + `-wal` or `-shm`.
pub(crate) fn side(db: &Path, suffix: &str) -> PathBuf {
    let mut path = db.as_os_str().to_owned();
    path.push(suffix);
    PathBuf::from(path)
}

/// Whether another process has the database at `db` open.
pub(crate) fn opened_elsewhere(db: &Path) -> Result<bool, DbError> {
    let probe = |path: &Path, range| {
        locked_elsewhere(path, range).map_err(|e| DbError::Other(format!("{}: {e}", display(path))))
    };
    Ok(probe(&side(db, "-shm"), SHM_LOCKS)? || probe(db, DB_LOCKS)?)
}

/// Writes restored databases into the live one at `path`.
#[derive(Debug, Clone)]
pub struct SqliteLiveWriter {
    path: PathBuf,
}

impl SqliteLiveWriter {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteLiveWriter { path: path.into() }
    }
}

fn db_error(path: &Path, e: rusqlite::Error) -> DbError {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => DbError::Full(display(path)),
        Some(ErrorCode::NotADatabase) => DbError::NotSqlite(display(path)),
        Some(ErrorCode::DatabaseCorrupt) => DbError::Corrupt { path: display(path), detail: e.to_string() },
        _ => DbError::Other(format!("{}: {e}", display(path))),
    }
}

/// Opens a database that must exist, with nothing in it allowed to run:
/// the staged copy came from an archive.
fn open(path: &Path) -> Result<Connection, DbError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| db_error(path, e))?;
    conn.busy_timeout(BUSY).map_err(|e| db_error(path, e))?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false).map_err(|e| db_error(path, e))?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false).map_err(|e| db_error(path, e))?;
    Ok(conn)
}

fn page_size(conn: &Connection, path: &Path) -> Result<i64, DbError> {
    conn.pragma_query_value(None, "page_size", |r| r.get(0)).map_err(|e| db_error(path, e))
}

impl LiveWriter for SqliteLiveWriter {
    fn opened_elsewhere(&self) -> Result<bool, DbError> {
        opened_elsewhere(&self.path)
    }

    fn write(&self, staged: &Path, mark: &str) -> Result<(), DbError> {
        let source = open(staged)?;
        let mut live = open(&self.path)?;
        // The backup API cannot change a WAL database's page size.
        let wanted = page_size(&live, &self.path)?;
        if page_size(&source, staged)? != wanted {
            source
                .execute_batch(&format!("PRAGMA journal_mode = DELETE; PRAGMA page_size = {wanted}; VACUUM;"))
                .map_err(|e| db_error(staged, e))?;
        }
        let value = serde_json::json!({ "id": mark }).to_string();
        source
            .execute(
                "INSERT INTO system_config (key, value, updated_at) VALUES (?1, ?2, strftime('%s', 'now')) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (RESTORE_MARK_KEY, &value),
            )
            .map_err(|e| db_error(staged, e))?;
        {
            // Every page in one step: one write transaction on the live
            // database, which SQLite keeps in WAL mode if it was.
            let backup = Backup::new(&source, &mut live).map_err(|e| db_error(&self.path, e))?;
            let deadline = Instant::now() + BUSY;
            loop {
                match backup.step(-1).map_err(|e| db_error(&self.path, e))? {
                    StepResult::Done => break,
                    _ if Instant::now() >= deadline => {
                        return Err(DbError::Other(format!(
                            "{}: another process kept the database locked for {}s",
                            display(&self.path),
                            BUSY.as_secs()
                        )));
                    }
                    _ => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        // The restored pages sit in the WAL; move them into the database
        // file now rather than at Framerr's next checkpoint. Best effort:
        // SQLite itself decides what it may do beside Framerr's readers.
        let _ = live.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        live.close().map_err(|(_, e)| db_error(&self.path, e))?;
        Ok(())
    }

    fn holds(&self, mark: &str) -> Result<bool, DbError> {
        let conn = open(&self.path)?;
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'system_config'", [], |r| {
                r.get(0)
            })
            .map_err(|e| db_error(&self.path, e))?;
        if tables == 0 {
            return Ok(false);
        }
        let value: Option<String> = conn
            .query_row("SELECT value FROM system_config WHERE key = ?1", [RESTORE_MARK_KEY], |r| r.get(0))
            .optional()
            .map_err(|e| db_error(&self.path, e))?;
        let id = value
            .and_then(|v| serde_json::from_str::<serde_json::Value>(&v).ok())
            .and_then(|v| v.get("id").and_then(|id| id.as_str().map(str::to_owned)));
        Ok(id.as_deref() == Some(mark))
    }
}
