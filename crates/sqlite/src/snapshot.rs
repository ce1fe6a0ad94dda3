//! Consistent snapshots with credentials made portable.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use async_trait::async_trait;
use futures_io::AsyncRead;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AssertSqlSafe, Connection, Row, SqliteConnection};
use tokio_util::compat::TokioAsyncReadCompatExt;

use backup_domain::DbError;
use backup_domain::credentials::{ENCRYPTED_COLUMNS, looks_encrypted};
use backup_domain::ports::{FieldCipher, Snapshot};

use backup_store_fs::temporary_name;

use crate::{SNAPSHOT_JOURNAL, SqliteDatabase, display, ident, map_err, table_exists};

/// Temporary snapshot files start with this, so they are never taken for
/// backups and a crash's leftovers can be found and removed.
pub const SNAPSHOT_PREFIX: &str = ".framerr-snapshot-";

/// A snapshot file; deleted when dropped.
#[derive(Debug)]
pub struct SqliteSnapshot {
    path: PathBuf,
    size: u64,
    user_version: i64,
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
        for suffix in ["", "-journal", "-wal", "-shm"] {
            let mut path = self.path.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

#[async_trait]
impl Snapshot for SqliteSnapshot {
    fn user_version(&self) -> i64 {
        self.user_version
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

pub(crate) async fn take(db: &SqliteDatabase) -> Result<SqliteSnapshot, DbError> {
    let mut live = db.connect().await?;
    tokio::fs::create_dir_all(&db.work_dir)
        .await
        .map_err(|e| DbError::Other(format!("cannot create {}: {e}", display(&db.work_dir))))?;
    let path = db.work_dir.join(temporary_name(SNAPSHOT_PREFIX, "framerr.db"));
    // From here on the guard deletes the file whatever happens.
    let mut snapshot = SqliteSnapshot { path, size: 0, user_version: 0 };
    let target = snapshot.path.to_str().ok_or_else(|| DbError::Other("work folder path is not UTF-8".into()))?;
    sqlx::query("VACUUM INTO ?").bind(target.to_owned()).execute(&mut live).await.map_err(|e| {
        let message = e.to_string();
        if message.contains("disk is full") || message.contains("SQLITE_FULL") {
            DbError::Other(format!("no space left in {} for the database snapshot", display(&db.work_dir)))
        } else {
            map_err(db.path(), e)
        }
    })?;
    let _ = live.close().await;

    let mut copy = open_copy(&snapshot.path).await?;
    let p = snapshot.path.clone();
    snapshot.user_version =
        sqlx::query("PRAGMA user_version").fetch_one(&mut copy).await.map_err(|e| map_err(&p, e))?.get(0);
    if let Some(cipher) = &db.cipher {
        make_portable(&mut copy, cipher.as_ref()).await.map_err(|e| map_err(&p, e))?;
    }
    copy.close().await.map_err(|e| map_err(&p, e))?;
    snapshot.size = tokio::fs::metadata(&snapshot.path)
        .await
        .map_err(|e| DbError::Other(format!("{}: {e}", display(&snapshot.path))))?
        .len();
    Ok(snapshot)
}

async fn open_copy(path: &Path) -> Result<SqliteConnection, DbError> {
    let options = SqliteConnectOptions::from_str("sqlite:")
        .map_err(|e| DbError::Other(e.to_string()))?
        .filename(path)
        .create_if_missing(false)
        .journal_mode(SNAPSHOT_JOURNAL);
    SqliteConnection::connect_with(&options).await.map_err(|e| map_err(path, e))
}

/// Decrypts, in the snapshot only, every credential that looks encrypted
/// and decrypts under the instance key; Framerr decrypts integration configs
/// but forgets the OIDC client secret, which then breaks on another key.
/// A value that does not decrypt is left as it is (spec section 6).
async fn make_portable(conn: &mut SqliteConnection, cipher: &dyn FieldCipher) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin().await?;
    for (table, column) in ENCRYPTED_COLUMNS {
        if !table_exists(&mut tx, table).await? {
            continue;
        }
        let select = format!("SELECT rowid, {} FROM {}", ident(column), ident(table));
        let rows = sqlx::query(AssertSqlSafe(select)).fetch_all(&mut *tx).await?;
        let mut undecryptable = 0;
        for row in rows {
            let rowid: i64 = row.try_get(0)?;
            let Ok(Some(value)) = row.try_get::<Option<String>, _>(1) else { continue };
            if !looks_encrypted(&value) {
                continue;
            }
            match cipher.decrypt(&value) {
                Ok(plain) => {
                    let update = format!("UPDATE {} SET {} = ? WHERE rowid = ?", ident(table), ident(column));
                    sqlx::query(AssertSqlSafe(update)).bind(plain).bind(rowid).execute(&mut *tx).await?;
                }
                Err(_) => undecryptable += 1,
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
