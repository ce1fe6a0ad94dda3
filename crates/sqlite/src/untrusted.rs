//! The SQL that runs against a database a backup brought: executed inside
//! the sandbox's child process only (see `sandbox`), on a connection that
//! runs none of the file's triggers, trusts nothing of its schema and holds
//! SQLite's own limits low.

use std::path::Path;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::limits::Limit;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags};
use serde::{Deserialize, Serialize};

use backup_domain::credentials::CredentialColumn;
use backup_domain::restore::{QueryKind, SEARCH_INDEX};

/// The longest string, blob or row SQLite may build or read: Framerr's
/// largest values are JSON settings of kilobytes, and a CHECK constraint
/// such as `length(hex(zeroblob(300000000)))` stops at its first row.
pub(crate) const MAX_LENGTH: i32 = 8 << 20;
/// SQLite's heap in the child, page cache included.
pub(crate) const HEAP_LIMIT: i64 = 64 << 20;
/// At most this many bytes of names and values go back to the parent.
const MAX_REPLY: usize = 16 << 20;

/// Why a job failed, as the parent maps it to a `DbError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum FailKind {
    NotSqlite,
    Corrupt,
    Full,
    TooMuchWork,
    Other,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Failure {
    pub kind: FailKind,
    pub detail: String,
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        let kind = match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) => FailKind::NotSqlite,
            Some(ErrorCode::DatabaseCorrupt) => FailKind::Corrupt,
            Some(ErrorCode::DiskFull) => FailKind::Full,
            Some(ErrorCode::OperationInterrupted | ErrorCode::OutOfMemory | ErrorCode::TooBig) => FailKind::TooMuchWork,
            _ => FailKind::Other,
        };
        let detail = match e.sqlite_error_code() {
            Some(ErrorCode::OperationInterrupted) => "its CPU time ran out".to_owned(),
            Some(ErrorCode::OutOfMemory) => "its memory ran out".to_owned(),
            Some(ErrorCode::TooBig) => format!("a value over {} MiB", MAX_LENGTH >> 20),
            _ => e.to_string(),
        };
        Failure { kind, detail }
    }
}

fn too_much(detail: &str) -> Failure {
    Failure { kind: FailKind::TooMuchWork, detail: detail.to_owned() }
}

/// Opens an untrusted file for reading and writing (it is ours: a staged
/// or scratch copy; read-write, so that closing it leaves no `-wal` or
/// `-shm` behind), bounded: stopped past `cpu` of running.
pub(crate) fn open(path: &Path, cpu: Duration) -> Result<Connection, Failure> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    // Nothing of the file's own code runs: no trigger (a recursive one
    // never ends, one that re-inserts sessions undoes the purge), no view,
    // no function with side effects from its schema.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_VIEW, false)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    // No foreign-key action either: purging sessions must not cascade into
    // rows of a user's table (a lean backup, made the same way, keeps them).
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_FKEY, false)?;
    for (limit, value) in [
        (Limit::SQLITE_LIMIT_LENGTH, MAX_LENGTH),
        (Limit::SQLITE_LIMIT_SQL_LENGTH, 1 << 20),
        (Limit::SQLITE_LIMIT_EXPR_DEPTH, 100),
        (Limit::SQLITE_LIMIT_COMPOUND_SELECT, 10),
        (Limit::SQLITE_LIMIT_FUNCTION_ARG, 32),
        (Limit::SQLITE_LIMIT_ATTACHED, 0),
        (Limit::SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 1000),
        (Limit::SQLITE_LIMIT_TRIGGER_DEPTH, 1),
        (Limit::SQLITE_LIMIT_WORKER_THREADS, 0),
    ] {
        conn.set_limit(limit, value)?;
    }
    conn.pragma_update(None, "hard_heap_limit", HEAP_LIMIT)?;
    conn.pragma_update(None, "cell_size_check", true)?;
    // Nobody else opens this file. In WAL mode this also keeps the index
    // in memory instead of a `-shm` file, whose growth on a full disk
    // fails as a bare I/O error, not as "disk is full".
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
    // CPU time, not the wall clock: the same file gets the same verdict on
    // a busy machine (the parent's deadline is the wall-clock bound).
    let started = thread_cpu();
    conn.progress_handler(1_000, Some(move || thread_cpu().saturating_sub(started) >= cpu))?;
    Ok(conn)
}

/// This thread's CPU time so far.
fn thread_cpu() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).map_or(Duration::ZERO, Duration::from)
}

/// One object of the schema that computes (see `QueryKind`).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Computed {
    pub kind: WireKind,
    pub name: String,
    pub sql: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) enum WireKind {
    View,
    VirtualTable,
    GeneratedColumn,
    ExpressionIndex,
}

impl From<WireKind> for QueryKind {
    fn from(kind: WireKind) -> Self {
        match kind {
            WireKind::View => QueryKind::View,
            WireKind::VirtualTable => QueryKind::VirtualTable,
            WireKind::GeneratedColumn => QueryKind::GeneratedColumn,
            WireKind::ExpressionIndex => QueryKind::ExpressionIndex,
        }
    }
}

/// Counts what goes back, so that a file of a million tables is refused
/// rather than sent whole.
#[derive(Default)]
struct Reply(usize);

impl Reply {
    fn add(&mut self, text: &str) -> Result<(), Failure> {
        self.0 += text.len() + 16;
        if self.0 > MAX_REPLY { Err(too_much("more names and values than a dashboard has")) } else { Ok(()) }
    }
}

/// Views, virtual tables, generated columns and indexes on expressions or
/// with conditions, read from the schema (none of them is evaluated).
pub(crate) fn computed(conn: &Connection) -> Result<Vec<Computed>, Failure> {
    let mut found = Vec::new();
    let mut reply = Reply::default();
    let mut push = |kind, name: String, sql: String| {
        reply.add(&name)?;
        reply.add(&sql)?;
        found.push(Computed { kind, name, sql });
        Ok::<_, Failure>(())
    };
    // Virtual tables are the tables without pages of their own.
    let mut objects = conn.prepare(
        "SELECT type = 'view', name, coalesce(sql, '') FROM sqlite_master
         WHERE type = 'view' OR (type = 'table' AND rootpage = 0)",
    )?;
    let mut rows = objects.query([])?;
    while let Some(row) = rows.next()? {
        let kind = if row.get(0)? { WireKind::View } else { WireKind::VirtualTable };
        push(kind, row.get(1)?, row.get(2)?)?;
    }
    // `hidden` 2 and 3: generated columns (virtual, stored).
    let mut generated = conn.prepare(
        "SELECT m.name || '.' || c.name, coalesce(m.sql, '') FROM sqlite_master m, pragma_table_xinfo(m.name) c
         WHERE m.type = 'table' AND m.rootpage != 0 AND c.hidden IN (2, 3)",
    )?;
    let mut rows = generated.query([])?;
    while let Some(row) = rows.next()? {
        push(WireKind::GeneratedColumn, row.get(0)?, row.get(1)?)?;
    }
    // A key column with cid -2 is an expression.
    let mut indexes = conn.prepare(
        "SELECT i.name FROM sqlite_master m, pragma_index_list(m.name) i
         WHERE m.type = 'table' AND m.rootpage != 0
           AND (i.partial OR EXISTS (SELECT 1 FROM pragma_index_xinfo(i.name) WHERE cid = -2))",
    )?;
    let mut rows = indexes.query([])?;
    while let Some(row) = rows.next()? {
        push(WireKind::ExpressionIndex, row.get(0)?, String::new())?;
    }
    Ok(found)
}

/// What the check found.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Facts {
    pub user_version: i64,
    pub tables: Vec<String>,
    pub counts: Vec<(String, i64)>,
}

fn tables(conn: &Connection, reply: &mut Reply) -> Result<Vec<String>, Failure> {
    let mut statement = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")?;
    let mut rows = statement.query([])?;
    let mut tables = Vec::new();
    while let Some(row) = rows.next()? {
        let name: String = row.get(0)?;
        reply.add(&name)?;
        tables.push(name);
    }
    Ok(tables)
}

/// Whether `table` exists, named as SQLite names it: case-insensitively
/// (`SESSIONS` is Framerr's sessions).
pub(crate) fn table_exists(conn: &Connection, table: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE",
        [table],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// `integrity_check` (which evaluates every CHECK constraint on every
/// row), `user_version`, the tables and the rows of those in `count`.
pub(crate) fn check(conn: &Connection, count: &[String]) -> Result<Facts, Failure> {
    let mut reply = Reply::default();
    let mut statement = conn.prepare("PRAGMA integrity_check")?;
    let mut rows = statement.query([])?;
    let mut messages = Vec::new();
    while let Some(row) = rows.next()? {
        let message: String = row.get(0)?;
        reply.add(&message)?;
        messages.push(message);
    }
    if messages != ["ok"] {
        // The same complaint for a hundred rows says no more than once.
        messages.dedup();
        let more = messages.len().saturating_sub(5);
        messages.truncate(5);
        if more > 0 {
            messages.push(format!("and {more} more"));
        }
        return Err(Failure { kind: FailKind::Corrupt, detail: messages.join("; ") });
    }
    let user_version = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let tables = tables(conn, &mut reply)?;
    let mut counts = Vec::new();
    for table in count.iter().filter(|t| tables.contains(t)) {
        let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {}", crate::ident(table)), [], |r| r.get(0))?;
        counts.push((table.clone(), n));
    }
    Ok(Facts { user_version, tables, counts })
}

/// A credential value: its column (an index into `CredentialColumn::ALL`),
/// row and text.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Credential {
    pub column: usize,
    pub rowid: i64,
    pub value: String,
}

/// The key store row, as Framerr's schema holds it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct KeyRow {
    pub enabled: bool,
    pub mbk_password: String,
    pub mbk_server: String,
    pub kek_salt: String,
    pub kdf_iterations: u32,
}

/// What post-restore reads first: every credential, and the key store.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Secrets {
    pub credentials: Vec<Credential>,
    pub key_row: Option<KeyRow>,
}

pub(crate) fn secrets(conn: &Connection) -> Result<Secrets, Failure> {
    let mut reply = Reply::default();
    let mut credentials = Vec::new();
    for (index, column) in CredentialColumn::ALL.iter().enumerate() {
        if !table_exists(conn, column.table())? {
            continue;
        }
        let select = format!("SELECT rowid, {} FROM {}", crate::ident(column.column()), crate::ident(column.table()));
        let mut statement = conn.prepare(&select)?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            // Only text is a credential; anything else stays as it is.
            let ValueRef::Text(text) = row.get_ref(1)? else { continue };
            let Ok(value) = std::str::from_utf8(text) else { continue };
            reply.add(value)?;
            credentials.push(Credential { column: index, rowid: row.get(0)?, value: value.to_owned() });
        }
    }
    let key_row = if table_exists(conn, "backup_encryption")? {
        let mut statement = conn.prepare(
            "SELECT enabled, mbk_password, mbk_server, kek_salt, kdf_iterations FROM backup_encryption WHERE id = 1",
        )?;
        let mut rows = statement.query([])?;
        match rows.next()? {
            None => None,
            Some(row) => {
                let text = |i| row.get::<_, Option<String>>(i).ok().flatten().unwrap_or_default();
                let row = KeyRow {
                    enabled: row.get::<_, Option<i64>>(0).ok().flatten().unwrap_or(0) != 0,
                    mbk_password: text(1),
                    mbk_server: text(2),
                    kek_salt: text(3),
                    kdf_iterations: row
                        .get::<_, Option<i64>>(4)
                        .ok()
                        .flatten()
                        .unwrap_or(600_000)
                        .clamp(1, i64::from(u32::MAX)) as u32,
                };
                reply.add(&row.mbk_password)?;
                reply.add(&row.mbk_server)?;
                reply.add(&row.kek_salt)?;
                Some(row)
            }
        }
    } else {
        None
    };
    Ok(Secrets { credentials, key_row })
}

/// What to do with the key store row.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum KeyChange {
    Keep,
    Rewrap(String),
    Remove,
}

/// Post-restore's writes, decided by the parent.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Changes {
    pub updates: Vec<Credential>,
    pub key_store: KeyChange,
    pub purge: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Applied {
    pub tables_purged: Vec<String>,
    pub fts_rebuilt: bool,
}

/// Post-restore's writes in one transaction; no trigger of the file runs
/// (the connection has them off), so their definitions stay untouched.
pub(crate) fn apply(conn: &mut Connection, changes: &Changes) -> Result<Applied, Failure> {
    let tx = conn.transaction()?;
    for update in &changes.updates {
        let column = CredentialColumn::ALL
            .get(update.column)
            .ok_or_else(|| Failure { kind: FailKind::Other, detail: "no such credential column".into() })?;
        let sql = format!(
            "UPDATE {} SET {} = ? WHERE rowid = ?",
            crate::ident(column.table()),
            crate::ident(column.column())
        );
        tx.execute(&sql, rusqlite::params![update.value, update.rowid])?;
    }
    let mut tables_purged = Vec::new();
    for table in &changes.purge {
        if table_exists(&tx, table)? {
            tx.execute(&format!("DELETE FROM {}", crate::ident(table)), [])?;
            tables_purged.push(table.clone());
        }
    }
    let fts_rebuilt = table_exists(&tx, SEARCH_INDEX)?;
    if fts_rebuilt {
        tx.execute("INSERT INTO media_library_fts(media_library_fts) VALUES('rebuild')", [])?;
    }
    match &changes.key_store {
        KeyChange::Keep => {}
        KeyChange::Rewrap(server) => {
            tx.execute(
                "UPDATE backup_encryption SET mbk_server = ?, updated_at = datetime('now') WHERE id = 1",
                [server],
            )?;
        }
        KeyChange::Remove => {
            tx.execute("DELETE FROM backup_encryption", [])?;
        }
    }
    tx.commit()?;
    // What the summary claims is checked, not assumed.
    for table in &tables_purged {
        let left: bool =
            conn.query_row(&format!("SELECT EXISTS (SELECT 1 FROM {})", crate::ident(table)), [], |r| r.get(0))?;
        if left {
            return Err(Failure { kind: FailKind::Other, detail: format!("{table} is not empty after the purge") });
        }
    }
    Ok(Applied { tables_purged, fts_rebuilt })
}
