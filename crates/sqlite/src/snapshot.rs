//! Consistent snapshots with credentials made portable.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use async_trait::async_trait;
use futures_io::AsyncRead;
use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AssertSqlSafe, Connection, Row, SqliteConnection};
use tokio_util::compat::TokioAsyncReadCompatExt;

use backup_domain::DbError;
use backup_domain::credentials::{CredentialColumn, Portable, portable};
use backup_domain::ports::{Contents, FieldCipher, Snapshot, SnapshotKind};
use backup_fsutil::temp::SNAPSHOT_PREFIX;
use backup_fsutil::temporary_path;

use crate::{SNAPSHOT_JOURNAL, SqliteDatabase, display, ident, map_err, table_exists};

/// A snapshot file (named with the owner-token prefix, so a crash's
/// leftovers are found and removed); deleted when dropped.
#[derive(Debug)]
pub struct SqliteSnapshot {
    path: PathBuf,
    size: u64,
    user_version: Option<i64>,
    /// A raw copy of a database that cannot be read: why, and its WAL.
    damaged: Option<String>,
    wal: Option<(PathBuf, u64)>,
    /// Tables emptied in the copy.
    omitted: Vec<String>,
}

impl SqliteSnapshot {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SqliteSnapshot {
    fn drop(&mut self) {
        // SQLite's side files too: a failed VACUUM INTO (a full disk)
        // leaves its rollback journal beside the target.
        for suffix in ["", "-journal", "-wal", "-shm", ".wal-copy"] {
            let mut path = self.path.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

#[async_trait]
impl Snapshot for SqliteSnapshot {
    fn user_version(&self) -> Option<i64> {
        self.user_version
    }

    fn damaged(&self) -> Option<&str> {
        self.damaged.as_deref()
    }

    fn omitted_rows(&self) -> Vec<String> {
        self.omitted.clone()
    }

    async fn extras(&self) -> Result<Vec<(String, u64, Box<dyn AsyncRead + Send + Unpin>)>, DbError> {
        let Some((path, size)) = &self.wal else { return Ok(Vec::new()) };
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| DbError::Other(format!("cannot open {}: {e}", display(path))))?;
        Ok(vec![("framerr.db-wal".to_owned(), *size, Box::new(file.compat()))])
    }

    fn size(&self) -> u64 {
        self.size
    }

    async fn open(&self) -> Result<Box<dyn AsyncRead + Send + Unpin>, DbError> {
        let file = tokio::fs::File::open(&self.path)
            .await
            .map_err(|e| DbError::Other(format!("cannot open snapshot {}: {e}", display(&self.path))))?;
        Ok(Box::new(file.compat()))
    }
}

/// A new, empty snapshot in the work folder; deleted when dropped.
async fn new_snapshot(db: &SqliteDatabase) -> Result<SqliteSnapshot, DbError> {
    tokio::fs::create_dir_all(&db.work_dir)
        .await
        .map_err(|e| DbError::Other(format!("cannot create {}: {e}", display(&db.work_dir))))?;
    let path = temporary_path(&db.work_dir, SNAPSHOT_PREFIX, "framerr.db")
        .map_err(|e| DbError::Other(format!("cannot write in {}: {e}", display(&db.work_dir))))?;
    Ok(SqliteSnapshot { path, size: 0, user_version: None, damaged: None, wal: None, omitted: Vec::new() })
}

/// The live database and its WAL copied byte for byte: all that can be
/// kept of a database SQLite cannot read.
pub(crate) async fn raw(db: &SqliteDatabase, why: &str) -> Result<SqliteSnapshot, DbError> {
    let mut snapshot = new_snapshot(db).await?;
    snapshot.damaged = Some(why.to_owned());
    let copy = |from: PathBuf, to: PathBuf| async move {
        tokio::fs::copy(&from, &to).await.map_err(|e| DbError::Other(format!("cannot copy {}: {e}", display(&from))))
    };
    snapshot.size = copy(db.path.clone(), snapshot.path.clone()).await?;
    let wal = crate::live::side(&db.path, "-wal");
    if tokio::fs::metadata(&wal).await.is_ok_and(|m| m.len() > 0) {
        let to = crate::live::side(&snapshot.path, ".wal-copy");
        let size = copy(wal, to.clone()).await?;
        snapshot.wal = Some((to, size));
    }
    Ok(snapshot)
}

pub(crate) async fn take(
    db: &SqliteDatabase,
    kind: SnapshotKind,
    contents: Contents,
) -> Result<SqliteSnapshot, DbError> {
    // Read-only: a backup never writes to the live database, not even a
    // checkpoint when its connection closes.
    let mut live = db.connect_as(true).await?;
    // From here on the guard deletes the file whatever happens.
    let mut snapshot = new_snapshot(db).await?;
    let target = snapshot.path.to_str().ok_or_else(|| DbError::Other("work folder path is not UTF-8".into()))?;
    sqlx::query("VACUUM INTO ?").bind(target.to_owned()).execute(&mut *live).await.map_err(|e| {
        let message = e.to_string();
        if message.contains("disk is full") || message.contains("SQLITE_FULL") {
            DbError::Full(format!("{} (the database snapshot)", display(&db.work_dir)))
        } else {
            map_err(db.path(), e)
        }
    })?;
    let _ = live.close().await;

    let mut copy = open_copy(&snapshot.path).await?;
    let p = snapshot.path.clone();
    snapshot.user_version =
        Some(sqlx::query("PRAGMA user_version").fetch_one(&mut copy).await.map_err(|e| map_err(&p, e))?.get(0));
    if let (Some(cipher), SnapshotKind::Portable) = (&db.cipher, kind) {
        make_portable(&mut copy, cipher.as_ref()).await.map_err(|e| map_err(&p, e))?;
    }
    snapshot.omitted = leave_out(&mut copy, contents.omitted_tables()).await.map_err(|e| map_err(&p, e))?;
    copy.close().await.map_err(|e| map_err(&p, e))?;
    snapshot.size = tokio::fs::metadata(&snapshot.path)
        .await
        .map_err(|e| DbError::Other(format!("{}: {e}", display(&snapshot.path))))?
        .len();
    Ok(snapshot)
}

/// Empties `tables` in the copy, keeping their schema, and rebuilds the
/// media library's search index over what is left, as Framerr's restore
/// does. Their triggers are set aside while the rows go, so that SQLite
/// truncates the table instead of firing a full-text delete per row, then
/// put back with their exact text. The file is compacted when rows went.
/// Returns the tables that exist (emptied or already empty).
async fn leave_out(conn: &mut SqliteConnection, tables: &[&str]) -> Result<Vec<String>, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let mut omitted = Vec::new();
    let mut removed = 0;
    for table in tables {
        if !table_exists(&mut tx, table).await? {
            continue;
        }
        let triggers: Vec<(String, String)> = sqlx::query(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? AND sql IS NOT NULL",
        )
        .bind(*table)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
        for (name, _) in &triggers {
            sqlx::query(AssertSqlSafe(format!("DROP TRIGGER {}", ident(name)))).execute(&mut *tx).await?;
        }
        removed += sqlx::query(AssertSqlSafe(format!("DELETE FROM {}", ident(table))))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        for (_, sql) in &triggers {
            sqlx::query(AssertSqlSafe(sql.clone())).execute(&mut *tx).await?;
        }
        omitted.push((*table).to_owned());
    }
    if omitted.iter().any(|t| t == "media_library") && table_exists(&mut tx, "media_library_fts").await? {
        sqlx::query("INSERT INTO media_library_fts(media_library_fts) VALUES('rebuild')").execute(&mut *tx).await?;
    }
    tx.commit().await?;
    if removed > 0 {
        sqlx::query("VACUUM").execute(&mut *conn).await?;
    }
    Ok(omitted)
}

async fn open_copy(path: &Path) -> Result<SqliteConnection, DbError> {
    let options = SqliteConnectOptions::from_str("sqlite:")
        .map_err(|e| DbError::Other(e.to_string()))?
        // A long `VACUUM INTO` is expected, not a problem to warn about.
        .disable_statement_logging()
        .filename(path)
        .create_if_missing(false)
        // Emptying a table must not cascade into rows a backup keeps (a
        // table of the user's with ON DELETE CASCADE to sessions).
        .foreign_keys(false)
        .journal_mode(SNAPSHOT_JOURNAL);
    SqliteConnection::connect_with(&options).await.map_err(|e| map_err(path, e))
}

/// Decrypts, in the snapshot only, every credential that looks encrypted
/// and decrypts under the instance key (the domain's `portable` rule).
async fn make_portable(conn: &mut SqliteConnection, cipher: &dyn FieldCipher) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin().await?;
    for column in CredentialColumn::ALL {
        let (table, column) = (column.table(), column.column());
        if !table_exists(&mut tx, table).await? {
            continue;
        }
        let select = format!("SELECT rowid, {} FROM {}", ident(column), ident(table));
        let rows = sqlx::query(AssertSqlSafe(select)).fetch_all(&mut *tx).await?;
        let mut undecryptable = 0;
        for row in rows {
            let rowid: i64 = row.try_get(0)?;
            let Ok(Some(value)) = row.try_get::<Option<String>, _>(1) else { continue };
            match portable(&value, cipher) {
                Portable::AsIs => {}
                Portable::Decrypted(plain) => {
                    let update = format!("UPDATE {} SET {} = ? WHERE rowid = ?", ident(table), ident(column));
                    sqlx::query(AssertSqlSafe(update)).bind(plain).bind(rowid).execute(&mut *tx).await?;
                }
                Portable::Undecryptable => undecryptable += 1,
            }
        }
        if undecryptable > 0 {
            tracing::warn!(
                table,
                column,
                count = undecryptable,
                "credentials that do not decrypt with this instance's key were left as they are"
            );
        }
    }
    tx.commit().await
}
