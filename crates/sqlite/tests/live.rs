//! The live database beside another process: SQLite's locks probed without
//! taking them, and a restored database written into the live file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use backup_domain::restore::LiveWriter;
use backup_sqlite::{SqliteLiveWriter, mark_of};
use rusqlite::Connection;

fn database(path: &Path, page_size: u32, wal: bool, label: &str) {
    let c = Connection::open(path).unwrap();
    c.execute_batch(&format!("PRAGMA page_size = {page_size}; VACUUM;")).unwrap();
    if wal {
        c.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())).unwrap();
    }
    c.execute_batch(
        "CREATE TABLE system_config (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL DEFAULT 0);
         CREATE TABLE users (id TEXT PRIMARY KEY, username TEXT);
         CREATE TABLE audit (n INTEGER);
         CREATE TRIGGER keep_out AFTER INSERT ON system_config BEGIN INSERT INTO audit VALUES (1); END;",
    )
    .unwrap();
    c.execute("INSERT INTO users VALUES ('u', ?1)", [label]).unwrap();
}

/// A process that opens `db` in WAL mode, reads it, and keeps it open.
fn holder(db: &Path) -> std::process::Child {
    holder_in(db, "WAL")
}

/// The same, in the journal mode `mode`.
fn holder_in(db: &Path, mode: &str) -> std::process::Child {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(format!("import sqlite3,sys,time\nc=sqlite3.connect(sys.argv[1])\nc.execute('PRAGMA journal_mode={mode}')\nc.execute('SELECT count(*) FROM users').fetchall()\nprint('open', flush=True)\ntime.sleep(120)"))
        .arg(db)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "open");
    child
}

#[test]
fn another_process_is_seen_by_its_locks_and_this_one_never() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("framerr.db");
    let writer = SqliteLiveWriter::new(&db);
    assert!(!writer.opened_elsewhere().unwrap(), "no database yet");
    database(&db, 4096, true, "live");
    assert!(!writer.opened_elsewhere().unwrap(), "nobody has it open");
    // This process's own connection does not count.
    let own = Connection::open(&db).unwrap();
    own.query_row("SELECT count(*) FROM users", [], |_| Ok(())).unwrap();
    assert!(!writer.opened_elsewhere().unwrap(), "this process's own connection");
    drop(own);
    for mode in ["WAL", "DELETE"] {
        // In rollback-journal mode an idle connection holds no lock.
        let mut other = holder_in(&db, mode);
        assert!(writer.opened_elsewhere().unwrap(), "another process has it open in {mode} mode");
        other.kill().unwrap();
        other.wait().unwrap();
        assert!(!writer.opened_elsewhere().unwrap(), "it is gone");
    }
}

#[test]
fn a_restored_database_is_written_into_the_live_one_which_keeps_its_file_mode_and_page_size() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let (live, staged) = (dir.path().join("framerr.db"), dir.path().join("staged.db"));
    database(&live, 4096, true, "old");
    // A backup made elsewhere, with another page size and no WAL.
    database(&staged, 8192, false, "new");
    let mut other = holder(&live);
    let inode = std::fs::metadata(&live).unwrap().ino();
    let writer = SqliteLiveWriter::new(&live);
    writer.write(&staged, "00ab-7").unwrap();
    assert!(writer.holds("00ab-7").unwrap() && !writer.holds("00ab-8").unwrap());
    assert_eq!(std::fs::metadata(&live).unwrap().ino(), inode, "the live file was replaced");
    let c = Connection::open(&live).unwrap();
    let one = |sql: &str| c.query_row(sql, [], |r| r.get::<_, rusqlite::types::Value>(0)).unwrap();
    assert_eq!(one("SELECT username FROM users"), rusqlite::types::Value::Text("new".into()));
    assert_eq!(one("PRAGMA page_size"), rusqlite::types::Value::Integer(4096));
    assert_eq!(one("PRAGMA journal_mode"), rusqlite::types::Value::Text("wal".into()));
    assert_eq!(one("PRAGMA integrity_check"), rusqlite::types::Value::Text("ok".into()));
    assert_eq!(one("PRAGMA application_id"), rusqlite::types::Value::Integer(mark_of("00ab-7").into()));
    // Whatever the restored database's code does to its tables, the mark
    // stays: it is not in a table.
    c.execute_batch("DELETE FROM system_config; DELETE FROM users; DROP TABLE system_config;").unwrap();
    assert!(writer.holds("00ab-7").unwrap());
    writer.unmark("00ab-7").unwrap();
    assert!(!writer.holds("00ab-7").unwrap());
    assert_eq!(one("PRAGMA application_id"), rusqlite::types::Value::Integer(0), "the backup's own id is back");
    other.kill().unwrap();
    other.wait().unwrap();
}

/// Whether, seen from another process, someone holds a lock on the `-shm`
/// file's WAL lock bytes.
fn shm_locked_seen_from_outside(db: &Path) -> bool {
    let script = "import fcntl,os,struct,sys\nfd=os.open(sys.argv[1]+'-shm',os.O_RDONLY)\nr=fcntl.fcntl(fd,fcntl.F_GETLK,struct.pack('hhqqi',fcntl.F_WRLCK,0,120,9,0))\nprint(struct.unpack('hhqqi',r[:struct.calcsize('hhqqi')])[0]!=fcntl.F_UNLCK)";
    let out = Command::new("python3").arg("-c").arg(script).arg(db).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim() == "True"
}

#[test]
fn probing_never_drops_this_processs_own_sqlite_locks() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("framerr.db");
    database(&db, 4096, true, "live");
    let own = Connection::open(&db).unwrap();
    own.query_row("SELECT count(*) FROM users", [], |_| Ok(())).unwrap();
    assert!(shm_locked_seen_from_outside(&db), "an open WAL connection holds the -shm lock");
    let writer = SqliteLiveWriter::new(&db);
    for _ in 0..3 {
        assert!(!writer.opened_elsewhere().unwrap());
    }
    // Closing a descriptor of the file would have dropped them.
    assert!(shm_locked_seen_from_outside(&db), "the probe dropped this process's own locks");
    drop(own);
}
