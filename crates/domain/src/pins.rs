//! Pinned backups: kept out of retention's reach until unpinned.
//!
//! Pins are documents beside the backups (key `pins`), one per store, not
//! rows in the database: a restore replaces the database, and a pin must
//! survive it. A backup is pinned in a store when the primary store's
//! document or that store's own names it, so a destination that was down
//! while a backup was pinned still keeps it, and losing the primary's
//! document does not unpin what the destinations hold.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::name::BackupName;
use crate::ports::BackupStore;

/// The document's key.
pub const KEY: &str = "pins";

#[derive(Debug, Default, Serialize, Deserialize)]
struct Document {
    pinned: BTreeSet<String>,
}

/// A pins document beyond this is not ours.
pub const MAX_BYTES: usize = 4 * 1024 * 1024;

/// The names pinned in `store`. A document that cannot be read is an error,
/// never "nothing pinned": retention and delete must not run on a guess.
pub async fn read(store: &dyn BackupStore) -> Result<BTreeSet<BackupName>, StoreError> {
    let Some(bytes) = store.read_meta(KEY).await? else { return Ok(BTreeSet::new()) };
    if bytes.len() > MAX_BYTES {
        return Err(StoreError::Other(format!("the pins in {} are unreadable: larger than 4 MiB", store.describe())));
    }
    let doc: Document = serde_json::from_slice(&bytes)
        .map_err(|e| StoreError::Other(format!("the pins in {} are unreadable: {e}", store.describe())))?;
    // A name that is not a backup name cannot protect anything; skip it.
    Ok(doc.pinned.iter().filter_map(|n| BackupName::parse(n).ok()).collect())
}

async fn write(store: &dyn BackupStore, pinned: &BTreeSet<BackupName>) -> Result<(), StoreError> {
    let doc = Document { pinned: pinned.iter().map(ToString::to_string).collect() };
    let bytes = serde_json::to_vec_pretty(&doc).map_err(|e| StoreError::Other(e.to_string()))?;
    store.write_meta(KEY, &bytes).await
}

/// What protects backups in `store`: its own pins and the primary's.
pub async fn pinned_in(primary: &dyn BackupStore, store: &dyn BackupStore) -> Result<BTreeSet<BackupName>, StoreError> {
    let mut pinned = read(primary).await?;
    if store.describe() != primary.describe() {
        pinned.extend(read(store).await?);
    }
    Ok(pinned)
}

/// Every name pinned anywhere reachable (for listings: a store that cannot
/// be read adds nothing).
pub async fn pinned_anywhere(stores: &[Arc<dyn BackupStore>]) -> BTreeSet<BackupName> {
    pinned_and_unreadable(stores).await.0
}

/// Every name pinned anywhere readable, and, by the index of its store in
/// `stores`, each pins document that cannot be read, with why: a backup
/// there may be pinned, and a listing must not say it is not.
pub async fn pinned_and_unreadable(stores: &[Arc<dyn BackupStore>]) -> (BTreeSet<BackupName>, Vec<(usize, String)>) {
    let mut pinned = BTreeSet::new();
    let mut unreadable = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        match read(store.as_ref()).await {
            Ok(names) => pinned.extend(names),
            Err(e) => unreadable.push((i, e.to_string())),
        }
    }
    (pinned, unreadable)
}

/// Why a pin or unpin did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PinError {
    /// Another process is changing pins or running retention.
    #[error(transparent)]
    Busy(crate::ports::LockError),
    #[error("backup {0} not found")]
    NotFound(BackupName),
    /// The primary store's document could not be written: nothing changed
    /// there, so nothing is promised.
    #[error("the pin could not be saved in {place}: {error}")]
    Primary { place: String, error: StoreError },
}

/// Where a pin was written, and where it could not be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PinOutcome {
    pub saved: Vec<String>,
    /// Destinations that could not be updated, with why. An unpin that
    /// failed somewhere leaves the backup pinned there (the safe side).
    pub failed: Vec<(String, String)>,
}

/// Pins (`on`) or unpins `name` in every store; `stores[0]` is the primary.
/// Pinning needs the backup to exist somewhere; unpinning a name that is
/// pinned but gone is allowed (it tidies the document).
pub async fn set(stores: &[Arc<dyn BackupStore>], name: &BackupName, on: bool) -> Result<PinOutcome, PinError> {
    if stores.is_empty() {
        return Err(PinError::NotFound(name.clone()));
    }
    let mut exists = false;
    let mut pinned_somewhere = false;
    for store in stores {
        if let Ok(list) = store.list().await {
            exists |= list.iter().any(|b| &b.name == name);
        }
        pinned_somewhere |= read(store.as_ref()).await.is_ok_and(|p| p.contains(name));
    }
    let unpinning_a_gone_backup = !on && pinned_somewhere;
    if !exists && !unpinning_a_gone_backup {
        return Err(PinError::NotFound(name.clone()));
    }
    let mut outcome = PinOutcome::default();
    for (i, store) in stores.iter().enumerate() {
        let place = store.describe();
        let result = async {
            let mut pinned = read(store.as_ref()).await?;
            let changed = if on { pinned.insert(name.clone()) } else { pinned.remove(name) };
            if changed { write(store.as_ref(), &pinned).await } else { Ok(()) }
        }
        .await;
        match result {
            Ok(()) => outcome.saved.push(place),
            Err(error) if i == 0 => return Err(PinError::Primary { place, error }),
            Err(e) => outcome.failed.push((place, e.to_string())),
        }
    }
    Ok(outcome)
}

impl crate::create::Creator {
    /// Pins (`on`) or unpins `name` everywhere, serialized with retention
    /// (which reads pins and deletes under the same lock) and other pins.
    pub async fn pin(&self, name: &BackupName, on: bool) -> Result<PinOutcome, PinError> {
        let _pins = self.pins_lock.acquire(self.lock_wait).await.map_err(PinError::Busy)?;
        set(&self.stores(), name, on).await
    }

    /// Deletes `name` everywhere (see [`crate::listing::delete`]); a
    /// pinned backup only when `force`, and then its pin goes too.
    pub async fn delete(&self, name: &BackupName, force: bool) -> Result<Vec<String>, crate::listing::DeleteError> {
        use crate::listing::DeleteError;
        let _pins = self.pins_lock.acquire(self.lock_wait).await.map_err(|e| DeleteError::Busy(e.to_string()))?;
        let stores = self.stores();
        // Pins that cannot be read may pin this backup: only force deletes.
        let mut pinned = false;
        for store in &stores {
            match read(store.as_ref()).await {
                Ok(names) => pinned |= names.contains(name),
                Err(e) if !force => return Err(DeleteError::PinsUnreadable(e.to_string())),
                Err(_) => pinned = true,
            }
        }
        if pinned && !force {
            return Err(DeleteError::PinnedNeedsForce(name.clone()));
        }
        let deleted = crate::listing::delete(&stores, name, force).await?;
        if pinned {
            // A stale pin protects nothing; failing to drop it harms nothing.
            let _ = set(&stores, name, false).await;
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;
    use futures::executor::block_on;
    use futures::io::AsyncWriteExt;

    fn put(store: &MemoryStore, name: &str) -> BackupName {
        let name = BackupName::parse(name).unwrap();
        block_on(async {
            let mut up = store.create(&name).await.unwrap();
            up.write_all(b"x").await.unwrap();
            up.commit().await.unwrap();
        });
        name
    }

    #[test]
    fn pins_hold_in_every_store_and_survive_a_lost_primary_document() {
        let (primary, nas) = (MemoryStore::named("primary"), MemoryStore::named("nas"));
        let name = put(&primary, "framerr-manual-2026-01-01T00-00-00.zip");
        put(&nas, "framerr-manual-2026-01-01T00-00-00.zip");
        let stores: Vec<Arc<dyn BackupStore>> = vec![Arc::new(primary.clone()), Arc::new(nas.clone())];
        let outcome = block_on(set(&stores, &name, true)).unwrap();
        assert_eq!(outcome.saved, ["primary", "nas"]);
        assert!(block_on(pinned_in(&primary, &nas)).unwrap().contains(&name));
        // The primary's document is lost: the destination still keeps it.
        block_on(primary.write_meta(KEY, br#"{"pinned":[]}"#)).unwrap();
        assert!(block_on(pinned_in(&primary, &nas)).unwrap().contains(&name));
        assert!(block_on(pinned_anywhere(&stores)).contains(&name));
        block_on(set(&stores, &name, false)).unwrap();
        assert!(block_on(pinned_anywhere(&stores)).is_empty());
    }

    #[test]
    fn unknown_backups_cannot_be_pinned_and_unreadable_pins_are_an_error() {
        let primary = MemoryStore::default();
        let stores: Vec<Arc<dyn BackupStore>> = vec![Arc::new(primary.clone())];
        let ghost = BackupName::parse("framerr-manual-2026-01-01T00-00-00.zip").unwrap();
        assert!(matches!(block_on(set(&stores, &ghost, true)), Err(PinError::NotFound(_))));
        block_on(primary.write_meta(KEY, b"not json")).unwrap();
        let err = block_on(read(&primary)).unwrap_err();
        assert!(err.to_string().contains("unreadable"), "{err}");
    }

    #[test]
    fn a_destination_that_is_down_is_reported_and_the_primary_must_work() {
        let primary = MemoryStore::default();
        let name = put(&primary, "framerr-manual-2026-01-01T00-00-00.zip");
        let stores: Vec<Arc<dyn BackupStore>> = vec![Arc::new(primary), Arc::new(crate::testkit::DownStore)];
        let outcome = block_on(set(&stores, &name, true)).unwrap();
        assert_eq!(outcome.failed.len(), 1);
        let stores: Vec<Arc<dyn BackupStore>> = vec![Arc::new(crate::testkit::DownStore)];
        assert!(matches!(block_on(set(&stores, &name, true)), Err(PinError::NotFound(_))));
    }
}
