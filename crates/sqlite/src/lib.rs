//! The `Database` port on SQLite through sqlx.
//!
//! Snapshots use `VACUUM INTO`, which copies the database inside one read
//! transaction: the copy holds one instant's state, writers in WAL mode keep
//! writing meanwhile, and the live file is never copied raw (Framerr copies
//! it after a checkpoint, racing its own writers). Credentials are then
//! made portable in the copy only.
//!
//! Error policy: sqlx and io errors are mapped to [`DbError`] here, with the
//! database path in the message; nothing above this crate sees sqlx.

mod files;
mod keystore;
mod live;
pub mod sandbox;
mod snapshot;
mod untrusted;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AssertSqlSafe, Connection, Row, SqliteConnection};

use backup_domain::ports::{Contents, Database, FieldCipher, LiveDatabase, Snapshot, SnapshotKind};
use backup_domain::{DbError, Schedule};

pub use files::SqliteFiles;
pub use live::{SqliteLiveWriter, mark_of};
pub use sandbox::{Sandbox, child_if_asked};
pub use snapshot::SqliteSnapshot;

/// The `system_config` key of Framerr's own schedule, which Framerr's own
/// scheduler reads at its start.
pub const FRAMERR_SCHEDULE_KEY: &str = "backupSchedule";
/// The key of this server's schedule: one scheduler per instance, and
/// Framerr's never runs the schedule saved here behind the user's back.
pub const SCHEDULE_KEY: &str = "framerrBackupSchedule";

/// The live Framerr database at `path`.
#[derive(Clone)]
pub struct SqliteDatabase {
    path: PathBuf,
    work_dir: PathBuf,
    cipher: Option<Arc<dyn FieldCipher>>,
    swap: SwapGate,
}

/// Shared with the restore commit of the same process: every connection to
/// the live database holds it for reading, the swap holds it for writing,
/// so this process never opens the database halfway through a swap (its
/// `-wal` moved and the old file still in place).
pub type SwapGate = Arc<tokio::sync::RwLock<()>>;

/// A connection to the live database, open while the swap waits.
pub(crate) struct Live {
    conn: SqliteConnection,
    _swap: tokio::sync::OwnedRwLockReadGuard<()>,
}

impl Live {
    pub(crate) async fn close(self) -> Result<(), sqlx::Error> {
        self.conn.close().await
    }
}

impl std::ops::Deref for Live {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Live {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }
}

impl std::fmt::Debug for SqliteDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteDatabase")
            .field("path", &self.path)
            .field("work_dir", &self.work_dir)
            .field("cipher", &self.cipher.is_some())
            .finish()
    }
}

impl SqliteDatabase {
    /// `work_dir` receives the temporary snapshot files; put it on a disk
    /// with room for a copy of the database. `cipher` is the instance key's
    /// field cipher, when `SECRET_ENCRYPTION_KEY` is set.
    pub fn new(path: impl Into<PathBuf>, work_dir: impl Into<PathBuf>, cipher: Option<Arc<dyn FieldCipher>>) -> Self {
        SqliteDatabase { path: path.into(), work_dir: work_dir.into(), cipher, swap: SwapGate::default() }
    }

    /// Connections wait for the restore commits that hold `swap`.
    pub fn with_swap_gate(mut self, swap: SwapGate) -> Self {
        self.swap = swap;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the live database for reading and writing, never creating it.
    pub(crate) async fn connect(&self) -> Result<Live, DbError> {
        self.connect_as(false).await
    }

    /// Opens the live database, never creating it; read-only never writes
    /// to it, not even a checkpoint when the connection closes.
    pub(crate) async fn connect_as(&self, read_only: bool) -> Result<Live, DbError> {
        let swap = Arc::clone(&self.swap).read_owned().await;
        check_is_sqlite(&self.path).await?;
        Ok(Live { conn: connect(&self.path, read_only).await?, _swap: swap })
    }
}

pub(crate) fn display(path: &Path) -> String {
    path.display().to_string()
}

/// Fails unless `path` exists and starts with SQLite's header.
pub async fn check_is_sqlite(path: &Path) -> Result<(), DbError> {
    use tokio::io::AsyncReadExt;
    let mut file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(DbError::Missing(display(path))),
        Err(e) => return Err(DbError::Other(format!("cannot open {}: {e}", display(path)))),
    };
    let mut header = [0u8; 16];
    match file.read_exact(&mut header).await {
        Ok(_) if &header == b"SQLite format 3\0" => Ok(()),
        _ => Err(DbError::NotSqlite(display(path))),
    }
}

pub(crate) async fn connect(path: &Path, read_only: bool) -> Result<SqliteConnection, DbError> {
    let options = SqliteConnectOptions::from_str("sqlite:")
        .map_err(|e| DbError::Other(e.to_string()))?
        // A long `VACUUM INTO` is expected, not a problem to warn about.
        .disable_statement_logging()
        .filename(path)
        .create_if_missing(false)
        .read_only(read_only)
        // Framerr's server may hold a write lock for a moment.
        .busy_timeout(Duration::from_secs(30));
    SqliteConnection::connect_with(&options).await.map_err(|e| map_err(path, e))
}

pub(crate) fn map_err(path: &Path, e: sqlx::Error) -> DbError {
    let code = e.as_database_error().and_then(|d| d.code()).map(|c| c.into_owned());
    match code.as_deref() {
        Some("26") => DbError::NotSqlite(display(path)),
        Some("11") => DbError::Corrupt { path: display(path), detail: e.to_string() },
        // SQLITE_CANTOPEN: missing, or there but not to be opened (a
        // read-only folder, permissions), which is not "not found".
        Some("14") if std::fs::symlink_metadata(path).is_err() => DbError::Missing(display(path)),
        // SQLITE_FULL.
        Some("13") => DbError::Full(display(path)),
        _ => DbError::Other(format!("{}: {e}", display(path))),
    }
}

/// Whether a table exists (Framerr's schema grows over versions).
pub(crate) async fn table_exists(conn: &mut SqliteConnection, table: &str) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE")
        .bind(table)
        .fetch_one(conn)
        .await?;
    Ok(row.get::<i64, _>(0) > 0)
}

/// Quotes an SQL identifier.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `PRAGMA user_version` of the database at `path`, opened read-only.
pub async fn user_version(path: &Path) -> Result<i64, DbError> {
    check_is_sqlite(path).await?;
    let mut conn = connect(path, true).await?;
    let version = sqlx::query("PRAGMA user_version").fetch_one(&mut conn).await.map_err(|e| map_err(path, e))?.get(0);
    let _ = conn.close().await;
    Ok(version)
}

#[async_trait]
impl Database for SqliteDatabase {
    async fn snapshot(&self, kind: SnapshotKind, contents: Contents) -> Result<Box<dyn Snapshot>, DbError> {
        Ok(Box::new(snapshot::take(self, kind, contents).await?))
    }

    async fn raw_copy(&self, why: &str) -> Result<Box<dyn Snapshot>, DbError> {
        Ok(Box::new(snapshot::raw(self, why).await?))
    }

    async fn opened_elsewhere(&self) -> Option<bool> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || live::opened_elsewhere(&path)).await.ok().and_then(Result::ok)
    }

    async fn state(&self) -> LiveDatabase {
        let _swap = Arc::clone(&self.swap).read_owned().await;
        match tokio::fs::symlink_metadata(&self.path).await {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return LiveDatabase::Absent,
            _ => {}
        }
        match user_version(&self.path).await {
            Ok(user_version) => LiveDatabase::Readable { user_version },
            Err(e) => LiveDatabase::Damaged(e.to_string()),
        }
    }

    /// Ours; until one is saved here, Framerr's (the initial value).
    async fn schedule(&self) -> Result<Option<Schedule>, DbError> {
        match self.stored_schedule(SCHEDULE_KEY).await? {
            Some(ours) => Ok(Some(ours)),
            None => self.stored_schedule(FRAMERR_SCHEDULE_KEY).await,
        }
    }

    async fn framerr_schedule(&self) -> Result<Option<Schedule>, DbError> {
        self.stored_schedule(FRAMERR_SCHEDULE_KEY).await
    }

    async fn disable_framerr_schedule(&self) -> Result<bool, DbError> {
        let Some(mut theirs) = self.stored_schedule(FRAMERR_SCHEDULE_KEY).await? else { return Ok(false) };
        if !theirs.enabled {
            return Ok(false);
        }
        // Ours keeps what the user had, if nothing was saved here yet.
        if self.stored_schedule(SCHEDULE_KEY).await?.is_none() {
            self.write_schedule(SCHEDULE_KEY, &theirs).await?;
        }
        theirs.enabled = false;
        self.write_schedule(FRAMERR_SCHEDULE_KEY, &theirs).await?;
        Ok(true)
    }

    async fn save_schedule(&self, schedule: &Schedule) -> Result<(), DbError> {
        self.write_schedule(SCHEDULE_KEY, schedule).await
    }
}

impl SqliteDatabase {
    async fn stored_schedule(&self, key: &str) -> Result<Option<Schedule>, DbError> {
        let mut conn = self.connect().await?;
        let path = &self.path;
        if !table_exists(&mut conn, "system_config").await.map_err(|e| map_err(path, e))? {
            return Ok(None);
        }
        let row = sqlx::query("SELECT value FROM system_config WHERE key = ?")
            .bind(key)
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| map_err(path, e))?;
        let _ = conn.close().await;
        let Some(row) = row else { return Ok(None) };
        let text: String = row.try_get(0).map_err(|e| map_err(path, e))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| DbError::BadSchedule(format!("not JSON: {e}")))?;
        Schedule::from_stored(&value).map(Some).map_err(|e| DbError::BadSchedule(e.to_string()))
    }

    async fn write_schedule(&self, key: &str, schedule: &Schedule) -> Result<(), DbError> {
        let mut conn = self.connect().await?;
        let path = &self.path;
        let value = serde_json::to_string(schedule).map_err(|e| DbError::Other(e.to_string()))?;
        sqlx::query(AssertSqlSafe(
            "INSERT INTO system_config (key, value, updated_at) VALUES (?, ?, strftime('%s', 'now')) \
             ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
                .to_owned(),
        ))
        .bind(key)
        .bind(value)
        .execute(&mut *conn)
        .await
        .map_err(|e| map_err(path, e))?;
        let _ = conn.close().await;
        Ok(())
    }
}

#[async_trait]
impl backup_domain::auth::Sessions for SqliteDatabase {
    async fn session_user(
        &self,
        token: &str,
        now_unix: i64,
    ) -> Result<Option<backup_domain::auth::SessionUser>, DbError> {
        let mut conn = self.connect().await?;
        let path = self.path().to_owned();
        if !table_exists(&mut conn, "sessions").await.map_err(|e| map_err(&path, e))? {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT u.id, u.group_id FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token = ? AND s.expires_at > ?",
        )
        .bind(token)
        .bind(now_unix)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| map_err(&path, e))?;
        let _ = conn.close().await;
        Ok(row.map(|r| backup_domain::auth::SessionUser {
            user_id: r.try_get(0).unwrap_or_default(),
            is_admin: r.try_get::<String, _>(1).is_ok_and(|g| g == "admin"),
        }))
    }

    async fn account(&self, username: &str) -> Result<Option<backup_domain::auth::Account>, DbError> {
        let mut conn = self.connect().await?;
        let path = self.path().to_owned();
        let err = |e| map_err(&path, e);
        if !table_exists(&mut conn, "users").await.map_err(err)? {
            return Ok(None);
        }
        let columns: Vec<String> = sqlx::query("SELECT name FROM pragma_table_info('users')")
            .fetch_all(&mut *conn)
            .await
            .map_err(err)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        // Older schemas have no has_local_password: every user had one.
        let local = if columns.iter().any(|c| c == "has_local_password") { "has_local_password" } else { "1" };
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT id, username, password, {local}, group_id FROM users WHERE lower(username) = lower(?) LIMIT 1"
        )))
        .bind(username)
        .fetch_optional(&mut *conn)
        .await
        .map_err(err)?;
        let _ = conn.close().await;
        Ok(row.map(|r| backup_domain::auth::Account {
            id: r.try_get(0).unwrap_or_default(),
            username: r.try_get(1).unwrap_or_default(),
            password_hash: r.try_get::<Option<String>, _>(2).ok().flatten().filter(|h| !h.is_empty()),
            has_local_password: r.try_get::<Option<i64>, _>(3).ok().flatten().unwrap_or(1) != 0,
            is_admin: r.try_get::<String, _>(4).is_ok_and(|g| g == "admin"),
        }))
    }

    async fn password_costs(&self) -> Result<Vec<u32>, DbError> {
        let mut conn = self.connect().await?;
        let path = self.path().to_owned();
        let err = |e| map_err(&path, e);
        if !table_exists(&mut conn, "users").await.map_err(err)? {
            return Ok(Vec::new());
        }
        // Only the costs leave this function, never a hash.
        let rows = sqlx::query("SELECT DISTINCT substr(password, 1, 7) FROM users WHERE password IS NOT NULL")
            .fetch_all(&mut *conn)
            .await
            .map_err(err)?;
        let _ = conn.close().await;
        Ok(rows
            .iter()
            .filter_map(|r| r.try_get::<String, _>(0).ok())
            .filter_map(|head| backup_domain::auth::bcrypt_cost(&format!("{head}x")))
            .collect())
    }

    async fn create_session(&self, session: &backup_domain::auth::NewSession) -> Result<(), DbError> {
        let mut conn = self.connect().await?;
        let path = self.path().to_owned();
        sqlx::query(
            "INSERT INTO sessions (token, user_id, ip_address, user_agent, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&session.token)
        .bind(&session.user_id)
        .bind(&session.ip_address)
        .bind(&session.user_agent)
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&mut *conn)
        .await
        .map_err(|e| map_err(&path, e))?;
        let _ = conn.close().await;
        Ok(())
    }

    async fn delete_session(&self, token: &str) -> Result<(), DbError> {
        let mut conn = self.connect().await?;
        let path = self.path().to_owned();
        sqlx::query("DELETE FROM sessions WHERE token = ?")
            .bind(token)
            .execute(&mut *conn)
            .await
            .map_err(|e| map_err(&path, e))?;
        let _ = conn.close().await;
        Ok(())
    }

    async fn session_timeout_ms(&self) -> Result<Option<i64>, DbError> {
        let mut conn = self.connect().await?;
        let path = self.path().to_owned();
        let row = sqlx::query("SELECT value FROM system_config WHERE key = 'auth'")
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| map_err(&path, e))?;
        let _ = conn.close().await;
        let value: Option<serde_json::Value> =
            row.and_then(|r| r.try_get::<String, _>(0).ok()).and_then(|t| serde_json::from_str(&t).ok());
        Ok(value.and_then(|v| v.pointer("/session/timeout").and_then(serde_json::Value::as_i64)))
    }

    async fn any_user(&self) -> Result<bool, DbError> {
        if !self.path.exists() {
            return Ok(false);
        }
        let mut conn = self.connect().await?;
        let path = self.path().to_owned();
        if !table_exists(&mut conn, "users").await.map_err(|e| map_err(&path, e))? {
            return Ok(false);
        }
        let n: i64 = sqlx::query("SELECT count(*) FROM users")
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| map_err(&path, e))?
            .get(0);
        let _ = conn.close().await;
        Ok(n > 0)
    }
}
