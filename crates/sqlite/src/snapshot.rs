//! Consistent snapshots with credentials made portable.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use futures_io::AsyncRead;
use rusqlite::config::DbConfig;
use tokio_util::compat::TokioAsyncReadCompatExt;

use backup_domain::DbError;
use backup_domain::credentials::{CredentialColumn, Portable, portable};
use backup_domain::ports::{Contents, FieldCipher, Snapshot, SnapshotKind};
use backup_fsutil::temp::SNAPSHOT_PREFIX;
use backup_fsutil::temporary_path;

use crate::untrusted::table_exists;
use crate::{SqliteDatabase, display, ident, map_err};

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

    let cipher = match kind {
        SnapshotKind::Portable => db.cipher.clone(),
        SnapshotKind::SameInstance => None,
    };
    let (path, omitted) = (snapshot.path.clone(), contents.omitted_tables());
    let (user_version, omitted) = tokio::task::spawn_blocking(move || prepare_copy(&path, cipher, omitted))
        .await
        .map_err(|e| DbError::Other(format!("the snapshot's preparation stopped: {e}")))??;
    snapshot.user_version = Some(user_version);
    snapshot.omitted = omitted;
    snapshot.size = tokio::fs::metadata(&snapshot.path)
        .await
        .map_err(|e| DbError::Other(format!("{}: {e}", display(&snapshot.path))))?
        .len();
    Ok(snapshot)
}

/// Makes the copy what a backup holds: credentials portable, `omitted`
/// emptied. The copy's connection runs none of the database's triggers
/// (the user's own, on any table, spelt any way: emptying a table or
/// decrypting a credential in the copy must change nothing else) and no
/// foreign-key action (a table of the user's with ON DELETE CASCADE to
/// sessions keeps its rows).
fn prepare_copy(
    path: &Path,
    cipher: Option<Arc<dyn FieldCipher>>,
    omitted: &[&str],
) -> Result<(i64, Vec<String>), DbError> {
    let err = |e: rusqlite::Error| copy_error(path, e);
    let mut conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(err)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false).map_err(err)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_FKEY, false).map_err(err)?;
    conn.pragma_update(None, "journal_mode", "DELETE").map_err(err)?;
    let user_version = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(err)?;
    if let Some(cipher) = cipher {
        make_portable(&mut conn, cipher.as_ref()).map_err(err)?;
    }
    let omitted = leave_out(&mut conn, omitted).map_err(err)?;
    conn.close().map_err(|(_, e)| err(e))?;
    Ok((user_version, omitted))
}

fn copy_error(path: &Path, e: rusqlite::Error) -> DbError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => DbError::Full(format!("{} (the database snapshot)", display(path))),
        _ => DbError::Other(format!("{}: {e}", display(path))),
    }
}

/// Empties `tables` in the copy, keeping their schema (triggers included,
/// untouched), and rebuilds the media library's search index over what is
/// left, as Framerr's restore does. Returns the tables that exist (emptied
/// or already empty).
///
/// `secure_delete` makes SQLite write zeros over every byte the rows held:
/// their pages go to the free list as zeros, which deflate to almost
/// nothing, so no byte of a left-out row reaches the archive without a
/// second copy of the whole file. Only when the freed pages are most of the
/// file is it compacted (`VACUUM` then copies what little is left); a few
/// MiB of zeros are cheaper to deflate than the database is to rewrite.
fn leave_out(conn: &mut rusqlite::Connection, tables: &[&str]) -> rusqlite::Result<Vec<String>> {
    conn.pragma_update(None, "secure_delete", true)?;
    let tx = conn.transaction()?;
    let mut omitted = Vec::new();
    for table in tables {
        if !table_exists(&tx, table)? {
            continue;
        }
        tx.execute(&format!("DELETE FROM {}", ident(table)), [])?;
        omitted.push((*table).to_owned());
    }
    if omitted.iter().any(|t| t == "media_library") && table_exists(&tx, "media_library_fts")? {
        tx.execute("INSERT INTO media_library_fts(media_library_fts) VALUES('rebuild')", [])?;
    }
    tx.commit()?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    if free * 2 > pages {
        conn.execute_batch("VACUUM")?;
    }
    Ok(omitted)
}

/// Decrypts, in the snapshot only, every credential that looks encrypted
/// and decrypts under the instance key (the domain's `portable` rule).
fn make_portable(conn: &mut rusqlite::Connection, cipher: &dyn FieldCipher) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    for column in CredentialColumn::ALL {
        let (table, column) = (column.table(), column.column());
        if !table_exists(&tx, table)? {
            continue;
        }
        let mut changes = Vec::new();
        let mut undecryptable = 0;
        {
            let mut select = tx.prepare(&format!("SELECT rowid, {} FROM {}", ident(column), ident(table)))?;
            let mut rows = select.query([])?;
            while let Some(row) = rows.next()? {
                let rowid: i64 = row.get(0)?;
                let rusqlite::types::ValueRef::Text(text) = row.get_ref(1)? else { continue };
                let Ok(value) = std::str::from_utf8(text) else { continue };
                match portable(value, cipher) {
                    Portable::AsIs => {}
                    Portable::Decrypted(plain) => changes.push((rowid, plain)),
                    Portable::Undecryptable => undecryptable += 1,
                }
            }
        }
        let update = format!("UPDATE {} SET {} = ? WHERE rowid = ?", ident(table), ident(column));
        for (rowid, plain) in changes {
            tx.execute(&update, rusqlite::params![plain, rowid])?;
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
    tx.commit()
}
