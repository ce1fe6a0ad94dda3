//! Database files that are not the live database: a staged restore and a
//! checked backup. Their content comes from an archive, so it is treated as
//! hostile: every statement over it runs in the sandbox (see `sandbox`),
//! and only the decisions (which credential to re-encrypt, what to do with
//! the key store) are taken here.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;

use backup_domain::DbError;
use backup_domain::credentials::{CredentialColumn, Restored};
use backup_domain::encryption::{KeyStoreDecision, KeyStoreOutcome, KeyStoreRow};
use backup_domain::restore::{DatabaseFacts, DatabaseFiles, PostRestorePlan, PostRestoreReport, QueryObject};

use crate::sandbox::{self, Sandbox};
use crate::untrusted::{Changes, Credential, KeyChange};

/// The `DatabaseFiles` port on SQLite, every statement in a sandbox.
#[derive(Debug, Clone)]
pub struct SqliteFiles {
    sandbox: Sandbox,
}

impl SqliteFiles {
    pub fn new(sandbox: Sandbox) -> Self {
        SqliteFiles { sandbox }
    }
}

#[async_trait]
impl DatabaseFiles for SqliteFiles {
    async fn computed(&self, path: &Path, budget: Duration) -> Result<Vec<QueryObject>, DbError> {
        let found = sandbox::computed(&self.sandbox, path, budget).await?;
        Ok(found.into_iter().map(|c| QueryObject { kind: c.kind.into(), name: c.name, sql: c.sql }).collect())
    }

    async fn check(&self, path: &Path, count: &[&str], budget: Duration) -> Result<DatabaseFacts, DbError> {
        let facts = sandbox::check(&self.sandbox, path, count, budget).await?;
        Ok(DatabaseFacts { user_version: facts.user_version, tables: facts.tables, counts: facts.counts })
    }

    async fn post_restore(&self, path: &Path, plan: &PostRestorePlan<'_>) -> Result<PostRestoreReport, DbError> {
        let secrets = sandbox::secrets(&self.sandbox, path, plan.budget).await?;
        let mut report = PostRestoreReport::default();
        let mut updates = Vec::new();
        for found in secrets.credentials {
            let Some(&column) = CredentialColumn::ALL.get(found.column) else { continue };
            match (plan.credential)(column, &found.value).map_err(|e| DbError::Other(e.to_string()))? {
                Restored::Keep => {}
                Restored::Encrypt(sealed) => {
                    if column == CredentialColumn::IntegrationConfig {
                        report.configs_encrypted += 1;
                    }
                    updates.push(Credential { column: found.column, rowid: found.rowid, value: sealed });
                }
                Restored::Unreadable => match column {
                    CredentialColumn::IntegrationConfig => report.configs_unreadable += 1,
                    CredentialColumn::OidcClientSecret => report.sso_secret_unreadable = true,
                },
            }
        }
        let key_store = match secrets.key_row {
            None => {
                report.key_store = KeyStoreOutcome::Absent;
                KeyChange::Keep
            }
            Some(row) => {
                let row = KeyStoreRow {
                    enabled: row.enabled,
                    mbk_password: row.mbk_password,
                    mbk_server: row.mbk_server,
                    kek_salt: row.kek_salt,
                    kdf_iterations: row.kdf_iterations,
                };
                let decision = (plan.key_store)(&row);
                report.key_store = decision.outcome();
                match decision {
                    KeyStoreDecision::Keep => KeyChange::Keep,
                    KeyStoreDecision::Rewrap(server) => KeyChange::Rewrap(server),
                    KeyStoreDecision::Remove => KeyChange::Remove,
                }
            }
        };
        let purge = plan.purge.iter().map(|t| (*t).to_owned()).collect();
        let applied = sandbox::apply(&self.sandbox, path, plan.budget, Changes { updates, key_store, purge }).await?;
        report.tables_purged = applied.tables_purged;
        report.fts_rebuilt = applied.fts_rebuilt;
        Ok(report)
    }
}
