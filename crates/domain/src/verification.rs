//! Automatic verification: a backup nobody has restored is a hope. The
//! newest backup of every destination is checked completely (everything
//! `verify` checks: every CRC and SHA-256, the tag of an encrypted one, the
//! database's integrity and Framerr's tables), read from that destination,
//! the instance untouched. The last result of each destination is kept
//! beside the backups in the primary store (a document, not the database,
//! which a restore replaces), for the health endpoint and the metrics.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::encryption::KeyStore;
use crate::error::StoreError;
use crate::name::BackupName;
use crate::ports::{BackupStore, Clock};
use crate::restore::{BackupKey, OpenError, RestoreError, Restorer, Source, StageError, VerifyReport};
use crate::secret::Password;
use crate::timefmt;

/// The document's key.
pub const KEY: &str = "verification";

/// Automatic verification runs at least this often, backups or not.
pub const INTERVAL: time::Duration = time::Duration::days(7);

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Everything a restore checks passed.
    Passed,
    /// The backup is damaged, unreadable or would be refused by a restore.
    Failed,
    /// It could not be checked: without its password (sealed under an
    /// earlier backup encryption key, or no instance key), or for want of
    /// room or permission to check it here (this side's problem, not the
    /// backup's).
    Skipped,
    /// The destination holds no backup.
    Empty,
}

/// The last check of one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    pub destination: String,
    /// The backup checked (the destination's newest).
    pub filename: Option<String>,
    pub outcome: Outcome,
    /// Why it failed or was skipped.
    pub error: Option<String>,
    #[serde(with = "timefmt::iso")]
    pub checked_at: OffsetDateTime,
    pub duration_ms: u64,
}

impl Verification {
    pub fn failed(&self) -> bool {
        self.outcome == Outcome::Failed
    }
}

/// The last verification of each destination, by destination.
pub async fn read(store: &dyn BackupStore) -> Vec<Verification> {
    match store.read_meta(KEY).await {
        Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_default(),
        _ => Vec::new(),
    }
}

async fn record(store: &dyn BackupStore, results: &[Verification]) -> Result<(), StoreError> {
    let mut by_place: BTreeMap<String, Verification> =
        read(store).await.into_iter().map(|v| (v.destination.clone(), v)).collect();
    for v in results {
        by_place.insert(v.destination.clone(), v.clone());
    }
    let all: Vec<&Verification> = by_place.values().collect();
    let bytes = serde_json::to_vec_pretty(&all).map_err(|e| StoreError::Other(e.to_string()))?;
    store.write_meta(KEY, &bytes).await
}

/// One backup checked by [`Verifier::verify_all`].
#[derive(Debug)]
pub struct Checked {
    pub destination: String,
    /// `None` when the destination could not be listed.
    pub name: Option<BackupName>,
    pub outcome: Outcome,
    pub result: Result<VerifyReport, RestoreError>,
}

/// The verification use case.
#[derive(Clone)]
pub struct Verifier {
    pub restorer: Restorer,
    /// This instance's backup encryption key, to open its own encrypted
    /// backups without a password.
    pub key_store: Arc<dyn KeyStore>,
    pub clock: Arc<dyn Clock>,
    /// Told of every failed verification.
    pub notifier: Arc<dyn crate::notify::Notifier>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").finish_non_exhaustive()
    }
}

/// Whether the key was the problem, not the backup.
fn key_problem(e: &RestoreError) -> bool {
    matches!(e, RestoreError::Open(OpenError::PasswordRequired | OpenError::EarlierKey | OpenError::WrongPassword))
}

/// Whether checking failed on this side (writing its scratch copy, a full
/// disk, the instance busy), which says nothing of the backup.
fn checker_problem(e: &RestoreError) -> bool {
    matches!(
        e,
        RestoreError::Stage(StageError::Io { .. })
            | RestoreError::Full(_)
            | RestoreError::Busy(_)
            | RestoreError::InProgress
    )
}

fn outcome_of(result: &Result<VerifyReport, RestoreError>) -> Outcome {
    match result {
        Ok(_) => Outcome::Passed,
        Err(e) if key_problem(e) || checker_problem(e) => Outcome::Skipped,
        Err(_) => Outcome::Failed,
    }
}

/// The newest backup by its stamp, not counting one stamped in the future
/// (a clock was wrong): it would hide the real newest from every check.
fn newest(names: Vec<BackupName>, now: OffsetDateTime) -> Option<BackupName> {
    let horizon = now + crate::retention::FUTURE_TOLERANCE;
    let dated = names.iter().filter(|n| n.created_at().is_some_and(|t| t <= horizon)).max().cloned();
    dated.or_else(|| names.into_iter().max())
}

impl Verifier {
    /// The keys to try on encrypted backups: the instance's own (no slow
    /// derivation, opens what it sealed), then `password` (older ones).
    async fn keys(&self, password: Option<&Password>) -> Vec<BackupKey> {
        let mut keys: Vec<BackupKey> =
            self.key_store.get().await.ok().flatten().map(BackupKey::Instance).into_iter().collect();
        keys.extend(password.map(|p| BackupKey::Password(p.clone())));
        keys
    }

    async fn check(
        &self,
        store: &Arc<dyn BackupStore>,
        name: &BackupName,
        keys: &[BackupKey],
    ) -> Result<VerifyReport, RestoreError> {
        let source = || Source::At(store.clone(), name.clone());
        if keys.is_empty() {
            return self.restorer.verify_with(source(), None).await;
        }
        // The first key that opens it decides. A header the instance's key
        // opens but the current password would not is a failure unless
        // the password given opens it.
        let mut differs = None;
        let mut last = None;
        for key in keys {
            match self.restorer.verify_with(source(), Some(key)).await {
                Err(e @ RestoreError::Open(OpenError::PasswordSideDiffers)) => differs = Some(e),
                Err(e) if key_problem(&e) => last = Some(e),
                done => return done,
            }
        }
        Err(differs.or(last).unwrap_or(RestoreError::Open(OpenError::PasswordRequired)))
    }

    /// Verifies the newest backup of every destination and records each
    /// result. Never fails: a destination that cannot be listed is a
    /// failed verification.
    pub async fn verify_newest(&self) -> Vec<Verification> {
        let keys = self.keys(None).await;
        let mut results = Vec::new();
        for store in self.restorer.creator.stores() {
            let started = self.clock.now();
            let destination = store.describe();
            let (filename, outcome, error) = match store.list().await {
                Err(e) => (None, Outcome::Failed, Some(format!("cannot list: {e}"))),
                Ok(list) => match newest(list.into_iter().map(|b| b.name).collect(), started) {
                    None => (None, Outcome::Empty, None),
                    Some(name) => {
                        let result = self.check(&store, &name, &keys).await;
                        let outcome = outcome_of(&result);
                        (Some(name.to_string()), outcome, result.err().map(|e| e.to_string()))
                    }
                },
            };
            let took = (self.clock.now() - started).whole_milliseconds().max(0) as u64;
            results.push(Verification {
                destination,
                filename,
                outcome,
                error,
                checked_at: started,
                duration_ms: took,
            });
        }
        for v in results.iter().filter(|v| v.failed()) {
            let mut notice = crate::notify::Notice::new(crate::notify::Event::VerificationFailed, v.checked_at)
                .destination(v.destination.clone());
            if let Some(name) = &v.filename {
                notice = notice.backup(name);
            }
            if let Some(e) = &v.error {
                notice = notice.error(e.clone());
            }
            self.notifier.notify(notice);
        }
        // A record; the results are returned to the caller whether or not
        // it could be written.
        let _ = record(self.restorer.creator.store.as_ref(), &results).await;
        results
    }

    /// Whether automatic verification is due: never ran, or the oldest
    /// destination's last check is older than [`INTERVAL`].
    pub async fn due(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let last = read(self.restorer.creator.store.as_ref()).await;
        let places = self.restorer.creator.stores().len();
        if last.len() < places {
            return Some(now);
        }
        last.iter().map(|v| v.checked_at + INTERVAL).min()
    }

    /// Verifies every backup in every destination (`verify --all`).
    pub async fn verify_all(&self, password: Option<&Password>, mut each: impl FnMut(&Checked)) -> Vec<Checked> {
        let keys = self.keys(password).await;
        let mut all = Vec::new();
        for store in self.restorer.creator.stores() {
            let destination = store.describe();
            let mut names: Vec<BackupName> = match store.list().await {
                Ok(list) => list.into_iter().map(|b| b.name).collect(),
                Err(e) => {
                    let checked = Checked {
                        destination,
                        name: None,
                        outcome: Outcome::Failed,
                        result: Err(RestoreError::Store(e)),
                    };
                    each(&checked);
                    all.push(checked);
                    continue;
                }
            };
            names.sort();
            names.reverse();
            for name in names {
                let result = self.check(&store, &name, &keys).await;
                let outcome = outcome_of(&result);
                let checked = Checked { destination: destination.clone(), name: Some(name), outcome, result };
                each(&checked);
                all.push(checked);
            }
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_newest_is_not_one_stamped_in_the_future() {
        let names: Vec<BackupName> = [
            "framerr-manual-2026-11-26T03-00-00.zip",
            "framerr-manual-2027-06-01T00-00-00.zip",
            "framerr-manual-imported.zip",
        ]
        .iter()
        .map(|n| BackupName::parse(n).unwrap())
        .collect();
        let now = datetime!(2026-11-27 12:00 UTC);
        assert_eq!(newest(names.clone(), now).unwrap().to_string(), "framerr-manual-2026-11-26T03-00-00.zip");
        let future_only = vec![names[1].clone()];
        assert_eq!(newest(future_only, now).unwrap(), names[1]);
        assert_eq!(newest(Vec::new(), now), None);
    }
}
