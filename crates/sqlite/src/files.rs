//! Database files that are not the live database: a staged restore and a
//! checked backup. Their content comes from an archive, so it is treated as
//! hostile: opened with `trusted_schema` off, its triggers kept from
//! running, and post-restore stopped at a deadline.

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteLockingMode};
use sqlx::{AssertSqlSafe, Connection, Row, SqliteConnection};

use backup_domain::DbError;
use backup_domain::credentials::{CredentialColumn, Restored};
use backup_domain::encryption::{KeyStoreDecision, KeyStoreOutcome};
use backup_domain::restore::{
    DatabaseFacts, DatabaseFiles, PostRestorePlan, PostRestoreReport, QueryKind, QueryObject, SEARCH_INDEX,
};

use crate::{check_is_sqlite, display, ident, map_err, table_exists};

/// The `DatabaseFiles` port on SQLite.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqliteFiles;

/// Opens an untrusted database file for reading and writing (it is ours:
/// a staged or scratch copy). Read-write, so that closing it leaves no
/// `-wal` or `-shm` behind.
async fn open_untrusted(path: &Path) -> Result<SqliteConnection, DbError> {
    check_is_sqlite(path).await?;
    let options = SqliteConnectOptions::from_str("sqlite:")
        .map_err(|e| DbError::Other(e.to_string()))?
        // A long `VACUUM INTO` is expected, not a problem to warn about.
        .disable_statement_logging()
        .filename(path)
        .create_if_missing(false)
        // Functions with side effects may not run from the schema (views,
        // triggers, defaults) of a file we did not write.
        .pragma("trusted_schema", "OFF")
        .pragma("cell_size_check", "ON")
        // Nobody else opens this file. In WAL mode this also keeps the
        // index in memory instead of a `-shm` file, whose growth on a full
        // disk fails as a bare I/O error, not as "disk is full".
        .locking_mode(SqliteLockingMode::Exclusive)
        .busy_timeout(Duration::from_secs(5));
    SqliteConnection::connect_with(&options).await.map_err(|e| map_err(path, e))
}

pub(crate) async fn tables(conn: &mut SqliteConnection) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").fetch_all(conn).await?;
    Ok(rows.iter().map(|r| r.get::<String, _>(0)).collect())
}

#[async_trait]
impl DatabaseFiles for SqliteFiles {
    async fn computed(&self, path: &Path) -> Result<Vec<QueryObject>, DbError> {
        let mut conn = open_untrusted(path).await?;
        let found = computed(&mut conn).await.map_err(|e| map_err(path, e));
        let _ = conn.close().await;
        found
    }

    async fn check(&self, path: &Path, count: &[&str], deadline: Duration) -> Result<DatabaseFacts, DbError> {
        let mut conn = open_untrusted(path).await?;
        stop_at(&mut conn, path, deadline).await?;
        let err = |e: sqlx::Error| interrupted_or(path, deadline, e);
        let rows = sqlx::query("PRAGMA integrity_check").fetch_all(&mut conn).await.map_err(err)?;
        let messages: Vec<String> = rows.iter().map(|r| r.get::<String, _>(0)).collect();
        if messages != ["ok"] {
            let _ = conn.close().await;
            return Err(DbError::Corrupt { path: display(path), detail: messages.join("; ") });
        }
        let user_version = sqlx::query("PRAGMA user_version").fetch_one(&mut conn).await.map_err(err)?.get(0);
        let tables = tables(&mut conn).await.map_err(err)?;
        let mut counts = Vec::new();
        for table in count.iter().filter(|t| tables.iter().any(|have| have == *t)) {
            let n: i64 = sqlx::query(AssertSqlSafe(format!("SELECT count(*) FROM {}", ident(table))))
                .fetch_one(&mut conn)
                .await
                .map_err(err)?
                .get(0);
            counts.push(((*table).to_owned(), n));
        }
        conn.close().await.map_err(err)?;
        Ok(DatabaseFacts { user_version, tables, counts })
    }

    async fn post_restore(&self, path: &Path, plan: &PostRestorePlan<'_>) -> Result<PostRestoreReport, DbError> {
        let mut conn = open_untrusted(path).await?;
        stop_at(&mut conn, path, plan.deadline).await?;
        let result = post_restore(&mut conn, plan).await;
        let _ = conn.close().await;
        result.map_err(|e| match e {
            Failure::Sql(e) => interrupted_or(path, plan.deadline, e),
            Failure::Plan(e) => e,
        })
    }
}

/// Interrupts whatever runs on `conn` past `after` from now
/// (SQLITE_INTERRUPT): the file is the archive's, and so is its cost.
async fn stop_at(conn: &mut SqliteConnection, path: &Path, after: Duration) -> Result<(), DbError> {
    let deadline = Instant::now() + after;
    conn.lock_handle()
        .await
        .map_err(|e| map_err(path, e))?
        .set_progress_handler(1_000, move || Instant::now() < deadline);
    Ok(())
}

/// An error, saying so when it is the deadline's interruption.
fn interrupted_or(path: &Path, deadline: Duration, e: sqlx::Error) -> DbError {
    match e.as_database_error().and_then(|d| d.code()).as_deref() {
        Some("9") => DbError::Other(format!("{}: stopped after {} s", display(path), deadline.as_secs())),
        _ => map_err(path, e),
    }
}

/// Views, virtual tables, generated columns and indexes on expressions or
/// with conditions, read from the schema (none of them is evaluated).
async fn computed(conn: &mut SqliteConnection) -> Result<Vec<QueryObject>, sqlx::Error> {
    let mut found = Vec::new();
    // Virtual tables are the tables without pages of their own.
    let objects = sqlx::query(
        "SELECT type = 'view', name, coalesce(sql, '') FROM sqlite_master
         WHERE type = 'view' OR (type = 'table' AND rootpage = 0)",
    );
    for row in objects.fetch_all(&mut *conn).await? {
        let kind = if row.get(0) { QueryKind::View } else { QueryKind::VirtualTable };
        found.push(QueryObject { kind, name: row.get(1), sql: row.get(2) });
    }
    // `hidden` 2 and 3: generated columns (virtual, stored).
    let generated = sqlx::query(
        "SELECT m.name || '.' || c.name, coalesce(m.sql, '') FROM sqlite_master m, pragma_table_xinfo(m.name) c
         WHERE m.type = 'table' AND m.rootpage != 0 AND c.hidden IN (2, 3)",
    );
    for row in generated.fetch_all(&mut *conn).await? {
        found.push(QueryObject { kind: QueryKind::GeneratedColumn, name: row.get(0), sql: row.get(1) });
    }
    // A key column with cid -2 is an expression.
    let indexes = sqlx::query(
        "SELECT i.name FROM sqlite_master m, pragma_index_list(m.name) i
         WHERE m.type = 'table' AND m.rootpage != 0
           AND (i.partial OR EXISTS (SELECT 1 FROM pragma_index_xinfo(i.name) WHERE cid = -2))",
    );
    for row in indexes.fetch_all(&mut *conn).await? {
        found.push(QueryObject { kind: QueryKind::ExpressionIndex, name: row.get(0), sql: String::new() });
    }
    Ok(found)
}

enum Failure {
    Sql(sqlx::Error),
    Plan(DbError),
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Sql(e)
    }
}

/// A trigger as `sqlite_master` holds it.
struct Trigger {
    name: String,
    table: String,
    sql: String,
}

async fn post_restore(conn: &mut SqliteConnection, plan: &PostRestorePlan<'_>) -> Result<PostRestoreReport, Failure> {
    let mut tx = conn.begin().await?;
    let mut report = PostRestoreReport::default();

    // Triggers are the archive's code: set them aside so that none runs
    // (a recursive one would never end; one that re-inserts sessions would
    // undo the purge), and put their definitions back unchanged afterwards,
    // without executing any text of theirs.
    let triggers: Vec<Trigger> = sqlx::query("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'")
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| Trigger { name: r.get(0), table: r.get(1), sql: r.get::<Option<String>, _>(2).unwrap_or_default() })
        .collect();
    for t in &triggers {
        sqlx::query(AssertSqlSafe(format!("DROP TRIGGER {}", ident(&t.name)))).execute(&mut *tx).await?;
    }

    for column in CredentialColumn::ALL {
        if !table_exists(&mut tx, column.table()).await? {
            continue;
        }
        let select = format!("SELECT rowid, {} FROM {}", ident(column.column()), ident(column.table()));
        let update = format!("UPDATE {} SET {} = ? WHERE rowid = ?", ident(column.table()), ident(column.column()));
        let rows = sqlx::query(AssertSqlSafe(select)).fetch_all(&mut *tx).await?;
        for row in rows {
            let rowid: i64 = row.try_get(0)?;
            let Ok(Some(value)) = row.try_get::<Option<String>, _>(1) else { continue };
            let action = (plan.credential)(column, &value).map_err(|e| Failure::Plan(DbError::Other(e.to_string())))?;
            match action {
                Restored::Keep => {}
                Restored::Encrypt(sealed) => {
                    sqlx::query(AssertSqlSafe(update.clone())).bind(sealed).bind(rowid).execute(&mut *tx).await?;
                    if column == CredentialColumn::IntegrationConfig {
                        report.configs_encrypted += 1;
                    }
                }
                Restored::Unreadable => match column {
                    CredentialColumn::IntegrationConfig => report.configs_unreadable += 1,
                    CredentialColumn::OidcClientSecret => report.sso_secret_unreadable = true,
                },
            }
        }
    }

    for table in plan.purge {
        if table_exists(&mut tx, table).await? {
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {}", ident(table)))).execute(&mut *tx).await?;
            report.tables_purged.push((*table).to_owned());
        }
    }

    if table_exists(&mut tx, SEARCH_INDEX).await? {
        sqlx::query("INSERT INTO media_library_fts(media_library_fts) VALUES('rebuild')").execute(&mut *tx).await?;
        report.fts_rebuilt = true;
    }

    if let Some(row) = crate::keystore::read_row(&mut tx).await? {
        let decision = (plan.key_store)(&row);
        match &decision {
            KeyStoreDecision::Keep => {}
            KeyStoreDecision::Rewrap(server) => {
                sqlx::query("UPDATE backup_encryption SET mbk_server = ?, updated_at = datetime('now') WHERE id = 1")
                    .bind(server)
                    .execute(&mut *tx)
                    .await?;
            }
            KeyStoreDecision::Remove => {
                sqlx::query("DELETE FROM backup_encryption").execute(&mut *tx).await?;
            }
        }
        report.key_store = decision.outcome();
    } else {
        report.key_store = KeyStoreOutcome::Absent;
    }

    if !triggers.is_empty() {
        sqlx::query("PRAGMA writable_schema = ON").execute(&mut *tx).await?;
        for t in &triggers {
            sqlx::query(
                "INSERT INTO sqlite_master (type, name, tbl_name, rootpage, sql) VALUES ('trigger', ?, ?, 0, ?)",
            )
            .bind(&t.name)
            .bind(&t.table)
            .bind(&t.sql)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("PRAGMA writable_schema = OFF").execute(&mut *tx).await?;
    }
    tx.commit().await?;

    // What the summary claims is checked, not assumed.
    for table in &report.tables_purged {
        let left: i64 = sqlx::query(AssertSqlSafe(format!("SELECT EXISTS (SELECT 1 FROM {})", ident(table))))
            .fetch_one(&mut *conn)
            .await?
            .get(0);
        if left != 0 {
            return Err(Failure::Plan(DbError::Other(format!("{table} is not empty after the purge"))));
        }
    }
    Ok(report)
}
