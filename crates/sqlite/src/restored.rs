//! Post-restore work on a STAGED database (spec sections 5 and 6), in one
//! transaction, before it replaces the live one.

use std::path::Path;

use sqlx::{AssertSqlSafe, Connection, Row};

use backup_domain::DbError;
use backup_domain::credentials::looks_encrypted;
pub use backup_domain::encryption::KeyStoreOutcome;
use backup_domain::encryption::KeyStoreRow;
use backup_domain::manifest::PURGED_ON_RESTORE;
use backup_domain::ports::FieldCipher;

use crate::{connect, ident, map_err, table_exists};

/// How to treat the `backup_encryption` row: return `Some(new mbk_server)`
/// to keep the row (the same value when it already opens with this
/// instance's key), `None` to drop it.
pub type KeyStoreFix<'a> = &'a (dyn Fn(&KeyStoreRow) -> Option<(String, KeyStoreOutcome)> + Send + Sync);

/// What post-restore did, for the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostRestore {
    pub user_version: i64,
    pub tables_purged: Vec<String>,
    pub configs_encrypted: usize,
    /// Configs that still look encrypted under a key we do not have.
    pub configs_unreadable: usize,
    /// The OIDC client secret is encrypted under another instance's key:
    /// SSO needs its secret entered again.
    pub sso_secret_unreadable: bool,
    pub fts_rebuilt: bool,
    pub key_store: KeyStoreOutcome,
}

pub async fn post_restore(
    path: &Path,
    cipher: Option<&dyn FieldCipher>,
    key_store: KeyStoreFix<'_>,
) -> Result<PostRestore, DbError> {
    let mut conn = connect(path, false).await?;
    let err = |e| map_err(path, e);
    let user_version: i64 = sqlx::query("PRAGMA user_version").fetch_one(&mut conn).await.map_err(err)?.get(0);
    let mut tx = conn.begin().await.map_err(err)?;
    let mut report = PostRestore {
        user_version,
        tables_purged: Vec::new(),
        configs_encrypted: 0,
        configs_unreadable: 0,
        sso_secret_unreadable: false,
        fts_rebuilt: false,
        key_store: KeyStoreOutcome::Absent,
    };

    if table_exists(&mut tx, "integration_instances").await.map_err(err)? {
        let rows = sqlx::query("SELECT rowid, config_encrypted FROM integration_instances")
            .fetch_all(&mut *tx)
            .await
            .map_err(err)?;
        for row in rows {
            let (rowid, value): (i64, Option<String>) = (row.get(0), row.get(1));
            let Some(value) = value else { continue };
            if looks_encrypted(&value) {
                if cipher.is_none_or(|c| c.decrypt(&value).is_err()) {
                    report.configs_unreadable += 1;
                }
                continue;
            }
            let Some(cipher) = cipher else { continue };
            if serde_json::from_str::<serde_json::Value>(&value).is_err() {
                continue;
            }
            let sealed = cipher.encrypt(&value).map_err(|e| DbError::Other(e.to_string()))?;
            sqlx::query("UPDATE integration_instances SET config_encrypted = ? WHERE rowid = ?")
                .bind(sealed)
                .bind(rowid)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
            report.configs_encrypted += 1;
        }
    }

    if table_exists(&mut tx, "oidc_config").await.map_err(err)? {
        let rows =
            sqlx::query("SELECT rowid, client_secret FROM oidc_config").fetch_all(&mut *tx).await.map_err(err)?;
        for row in rows {
            let (rowid, secret): (i64, Option<String>) = (row.get(0), row.get(1));
            let Some(secret) = secret.filter(|s| !s.is_empty()) else { continue };
            if looks_encrypted(&secret) {
                report.sso_secret_unreadable |= cipher.is_none_or(|c| c.decrypt(&secret).is_err());
            } else if let Some(cipher) = cipher {
                let sealed = cipher.encrypt(&secret).map_err(|e| DbError::Other(e.to_string()))?;
                sqlx::query("UPDATE oidc_config SET client_secret = ? WHERE rowid = ?")
                    .bind(sealed)
                    .bind(rowid)
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
            }
        }
    }

    for table in PURGED_ON_RESTORE {
        if table_exists(&mut tx, table).await.map_err(err)? {
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {}", ident(table)))).execute(&mut *tx).await.map_err(err)?;
            report.tables_purged.push(table.to_owned());
        }
    }

    if table_exists(&mut tx, "media_library_fts").await.map_err(err)? {
        sqlx::query("INSERT INTO media_library_fts(media_library_fts) VALUES('rebuild')")
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        report.fts_rebuilt = true;
    }

    if let Some(current) = crate::keystore::read_row(&mut tx).await.map_err(err)? {
        match key_store(&current) {
            Some((server, outcome)) => {
                sqlx::query("UPDATE backup_encryption SET mbk_server = ?, updated_at = datetime('now') WHERE id = 1")
                    .bind(server)
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
                report.key_store = outcome;
            }
            None => {
                sqlx::query("DELETE FROM backup_encryption").execute(&mut *tx).await.map_err(err)?;
                report.key_store = KeyStoreOutcome::TurnedOff;
            }
        }
    }
    tx.commit().await.map_err(err)?;
    let _ = conn.close().await;
    Ok(report)
}
