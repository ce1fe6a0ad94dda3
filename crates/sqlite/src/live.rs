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
//! (no connection of this process can be using it then). A connection in
//! rollback-journal mode holds no lock while idle: processes that `/proc`
//! shows with the database open count too.
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
use rusqlite::{Connection, OpenFlags};

use backup_domain::DbError;
use backup_domain::restore::LiveWriter;

use crate::display;

/// A restore's mark: the database header's application id (`PRAGMA
/// application_id`, which Framerr leaves at 0), derived from the restore's
/// id and never 0. No SQL in the database can change it (triggers run no
/// pragmas), so whatever a restored database's code does once Framerr
/// writes into it, the mark says truly whether the restore's transaction
/// committed.
pub fn mark_of(id: &str) -> i32 {
    // FNV-1a: stable across versions, which recovery relies on.
    let hash = id.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    i32::from_ne_bytes(hash.to_ne_bytes()).max(1)
}

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
    Ok(probe(&side(db, "-shm"), SHM_LOCKS)? || probe(db, DB_LOCKS)? || open_in_proc(db))
}

/// Whether a process that `/proc` shows has `db` open: a connection in
/// rollback-journal mode holds no lock while idle. Only processes of this
/// PID namespace that this user may inspect are seen (Framerr in another
/// container is seen by its locks, in WAL mode). Processes of this very
/// program are not Framerr: they keep the probe's descriptors open, and
/// their connections, while open, hold locks.
fn open_in_proc(db: &Path) -> bool {
    let identity = |path: &Path| std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
    let Some(id) = identity(db) else { return false };
    let ours = identity(Path::new("/proc/self/exe"));
    let Ok(processes) = std::fs::read_dir("/proc") else { return false };
    processes.flatten().any(|process| {
        let is_pid = process.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
        if !is_pid || identity(&process.path().join("exe")) == ours {
            return false;
        }
        let Ok(fds) = std::fs::read_dir(process.path().join("fd")) else { return false };
        // Following a descriptor's link opens nothing.
        fds.flatten().any(|fd| identity(&fd.path()) == Some(id))
    })
}

/// Writes restored databases into the live one at `path`.
#[derive(Debug, Clone)]
pub struct SqliteLiveWriter {
    path: PathBuf,
    /// The application id each restored database had before it carried a
    /// mark, by mark, to put back once the restore is tidied.
    originals: std::sync::Arc<Mutex<Vec<(i32, i32)>>>,
}

impl SqliteLiveWriter {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteLiveWriter { path: path.into(), originals: Default::default() }
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

fn application_id(conn: &Connection, path: &Path) -> Result<i32, DbError> {
    conn.pragma_query_value(None, "application_id", |r| r.get(0)).map_err(|e| db_error(path, e))
}

impl LiveWriter for SqliteLiveWriter {
    fn opened_elsewhere(&self) -> Result<bool, DbError> {
        opened_elsewhere(&self.path)
    }

    fn write(&self, staged: &Path, mark: &str) -> Result<(), DbError> {
        let mark = mark_of(mark);
        let source = open(staged)?;
        let mut live = open(&self.path)?;
        if application_id(&live, &self.path)? == mark {
            return Err(DbError::Other(format!(
                "{}: the live database already carries this restore's mark; restore again",
                display(&self.path)
            )));
        }
        // The backup API cannot change a WAL database's page size.
        let wanted = page_size(&live, &self.path)?;
        if page_size(&source, staged)? != wanted {
            source
                .execute_batch(&format!("PRAGMA journal_mode = DELETE; PRAGMA page_size = {wanted}; VACUUM;"))
                .map_err(|e| db_error(staged, e))?;
        }
        let original = application_id(&source, staged)?;
        source.pragma_update(None, "application_id", mark).map_err(|e| db_error(staged, e))?;
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
        self.originals.lock().unwrap_or_else(|p| p.into_inner()).push((mark, original));
        Ok(())
    }

    fn holds(&self, mark: &str) -> Result<bool, DbError> {
        let conn = open(&self.path)?;
        Ok(application_id(&conn, &self.path)? == mark_of(mark))
    }

    fn unmark(&self, mark: &str) -> Result<(), DbError> {
        let mark = mark_of(mark);
        let original = {
            let mut originals = self.originals.lock().unwrap_or_else(|p| p.into_inner());
            let found = originals.iter().position(|(m, _)| *m == mark);
            found.map(|i| originals.remove(i).1).unwrap_or(0)
        };
        let mut conn = open(&self.path)?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| db_error(&self.path, e))?;
        if application_id(&tx, &self.path)? == mark {
            tx.pragma_update(None, "application_id", original).map_err(|e| db_error(&self.path, e))?;
        }
        tx.commit().map_err(|e| db_error(&self.path, e))
    }
}
