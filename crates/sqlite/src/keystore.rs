//! The `backup_encryption` table (spec section 4), exactly Framerr's schema.

use async_trait::async_trait;
use sqlx::{Connection, Row, SqliteConnection};

use backup_domain::DbError;
use backup_domain::encryption::{KeyStore, KeyStoreRow};

use crate::{SqliteDatabase, map_err, table_exists};

const CREATE: &str = "CREATE TABLE IF NOT EXISTS backup_encryption (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  enabled INTEGER DEFAULT 0,
  mbk_password TEXT NOT NULL,
  mbk_server TEXT NOT NULL,
  kek_salt TEXT NOT NULL,
  kdf_iterations INTEGER DEFAULT 600000,
  created_at TEXT DEFAULT (datetime('now')),
  updated_at TEXT DEFAULT (datetime('now'))
)";

pub(crate) async fn read_row(conn: &mut SqliteConnection) -> Result<Option<KeyStoreRow>, sqlx::Error> {
    if !table_exists(conn, "backup_encryption").await? {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT enabled, mbk_password, mbk_server, kek_salt, kdf_iterations FROM backup_encryption WHERE id = 1",
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|row| KeyStoreRow {
        enabled: row.try_get::<Option<i64>, _>(0).ok().flatten().unwrap_or(0) != 0,
        mbk_password: row.try_get(1).unwrap_or_default(),
        mbk_server: row.try_get(2).unwrap_or_default(),
        kek_salt: row.try_get(3).unwrap_or_default(),
        kdf_iterations: row.try_get::<Option<i64>, _>(4).ok().flatten().unwrap_or(600_000).clamp(1, u32::MAX as i64)
            as u32,
    }))
}

#[async_trait]
impl KeyStore for SqliteDatabase {
    async fn get(&self) -> Result<Option<KeyStoreRow>, DbError> {
        let mut conn = self.connect().await?;
        let row = read_row(&mut conn).await.map_err(|e| map_err(self.path(), e))?;
        let _ = conn.close().await;
        Ok(row)
    }

    async fn put(&self, row: &KeyStoreRow) -> Result<(), DbError> {
        let mut conn = self.connect().await?;
        let path = self.path().to_owned();
        let err = |e| map_err(&path, e);
        let mut tx = conn.begin().await.map_err(err)?;
        sqlx::query(CREATE).execute(&mut *tx).await.map_err(err)?;
        sqlx::query(
            "INSERT INTO backup_encryption (id, enabled, mbk_password, mbk_server, kek_salt, kdf_iterations) \
             VALUES (1, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET enabled = excluded.enabled, \
             mbk_password = excluded.mbk_password, mbk_server = excluded.mbk_server, kek_salt = excluded.kek_salt, \
             kdf_iterations = excluded.kdf_iterations, updated_at = datetime('now')",
        )
        .bind(i64::from(row.enabled))
        .bind(&row.mbk_password)
        .bind(&row.mbk_server)
        .bind(&row.kek_salt)
        .bind(i64::from(row.kdf_iterations))
        .execute(&mut *tx)
        .await
        .map_err(err)?;
        tx.commit().await.map_err(err)?;
        let _ = conn.close().await;
        Ok(())
    }

    async fn delete(&self) -> Result<(), DbError> {
        let mut conn = self.connect().await?;
        let path = self.path().to_owned();
        if table_exists(&mut conn, "backup_encryption").await.map_err(|e| map_err(&path, e))? {
            sqlx::query("DELETE FROM backup_encryption").execute(&mut *conn).await.map_err(|e| map_err(&path, e))?;
        }
        let _ = conn.close().await;
        Ok(())
    }
}
