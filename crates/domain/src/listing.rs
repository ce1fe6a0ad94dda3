//! What is stored where: every store's backups merged into one listing,
//! newest first, each backup once with the places it lives (Framerr's
//! `GET /list`, spec section 8, plus `locations`), and deleting a backup
//! everywhere.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::kind::BackupKind;
use crate::name::BackupName;
use crate::ports::BackupStore;

/// One backup in a listing. Serializes as an item of Framerr's `/list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    #[serde(rename = "filename", serialize_with = "as_text")]
    pub name: BackupName,
    pub size: u64,
    #[serde(with = "crate::timefmt::iso_opt")]
    pub created_at: Option<OffsetDateTime>,
    #[serde(rename = "type")]
    pub kind: BackupKind,
    pub encrypted: bool,
    /// Kept out of retention's reach (see [`crate::pins`]).
    pub pinned: bool,
    /// The pins that apply to it (the primary's, or those of a store that
    /// holds it) cannot be read: it may be pinned although `pinned` is
    /// false.
    pub pins_unreadable: bool,
    /// Where it lives, by store description (never a credential).
    pub locations: Vec<String>,
}

fn as_text<S: serde::Serializer>(name: &BackupName, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(name)
}

/// Every backup everywhere. Serializes as Framerr's `/list` body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listing {
    /// Newest first.
    pub backups: Vec<Listed>,
    pub total_size: u64,
    pub count: usize,
    /// Pins documents that cannot be read, with why ("the pins in ... are
    /// unreadable: ..."), until they are fixed: retention and delete refuse
    /// to guess, and a listing says so.
    pub pins_unreadable: Vec<String>,
    /// Stores that could not be listed, with why.
    #[serde(skip)]
    pub unreachable: Vec<String>,
}

/// Lists every store; a name in several stores is listed once (the first
/// store's size), with all its locations.
pub async fn list(stores: &[Arc<dyn BackupStore>]) -> Listing {
    let mut found: BTreeMap<BackupName, Listed> = BTreeMap::new();
    let mut unreachable = Vec::new();
    let (pinned, unreadable_pins) = crate::pins::pinned_and_unreadable(stores).await;
    // The primary's pins apply in every store.
    let pins_unknown_in = |i: usize| unreadable_pins.iter().any(|(j, _)| *j == 0 || *j == i);
    for (i, store) in stores.iter().enumerate() {
        match store.list().await {
            Ok(list) => {
                for b in list {
                    let entry = found.entry(b.name.clone()).or_insert_with(|| Listed {
                        created_at: b.name.created_at(),
                        kind: b.name.kind(),
                        encrypted: b.name.is_encrypted(),
                        pinned: pinned.contains(&b.name),
                        pins_unreadable: false,
                        name: b.name,
                        size: b.size,
                        locations: Vec::new(),
                    });
                    entry.pins_unreadable |= pins_unknown_in(i);
                    let place = store.describe();
                    if !entry.locations.contains(&place) {
                        entry.locations.push(place);
                    }
                }
            }
            Err(e) => unreachable.push(format!("{}: {e}", store.describe())),
        }
    }
    let backups: Vec<Listed> = found.into_values().rev().collect();
    Listing {
        total_size: backups.iter().map(|b| b.size).sum(),
        count: backups.len(),
        backups,
        pins_unreadable: unreadable_pins.into_iter().map(|(_, why)| why).collect(),
        unreachable,
    }
}

/// Why a delete did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeleteError {
    #[error("{0} is a safety backup, kept to undo a restore; delete it deliberately (force) if you must")]
    SafetyNeedsForce(BackupName),
    #[error("{0} is pinned; unpin it first, or delete it deliberately (force)")]
    PinnedNeedsForce(BackupName),
    /// A pins document cannot be read, so the backup may be pinned.
    #[error("{0}; it may pin this backup: delete it deliberately (force) if you must")]
    PinsUnreadable(String),
    #[error("backup {0} not found")]
    NotFound(BackupName),
    /// Pins are being changed by another process.
    #[error("{0}")]
    Busy(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Deletes `name` from every store that has it; a safety backup only when
/// `force`. Returns where it was deleted.
pub async fn delete(
    stores: &[Arc<dyn BackupStore>],
    name: &BackupName,
    force: bool,
) -> Result<Vec<String>, DeleteError> {
    if name.kind() == BackupKind::Safety && !force {
        return Err(DeleteError::SafetyNeedsForce(name.clone()));
    }
    let mut deleted = Vec::new();
    for store in stores {
        match store.delete(name).await {
            Ok(()) => deleted.push(store.describe()),
            Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if deleted.is_empty() {
        return Err(DeleteError::NotFound(name.clone()));
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;
    use futures::executor::block_on;
    use futures::io::AsyncWriteExt;

    fn put(store: &MemoryStore, name: &str, data: &[u8]) {
        block_on(async {
            let mut up = store.create(&BackupName::parse(name).unwrap()).await.unwrap();
            up.write_all(data).await.unwrap();
            up.commit().await.unwrap();
        });
    }

    #[test]
    fn merged_newest_first_in_framerrs_shape() {
        let (a, b) = (MemoryStore::default(), MemoryStore::default());
        put(&a, "framerr-manual-2026-01-01T00-00-00.zip", b"0123456789");
        put(&a, "framerr-safety-2026-02-01T00-00-00.framerr-backup", b"0123456789");
        put(&b, "framerr-safety-2026-02-01T00-00-00.framerr-backup", b"0123456789");
        let stores: Vec<Arc<dyn BackupStore>> = vec![Arc::new(a), Arc::new(b), Arc::new(crate::testkit::DownStore)];
        let listing = block_on(list(&stores));
        assert_eq!((listing.count, listing.total_size), (2, 20));
        assert_eq!(listing.unreachable.len(), 1);
        assert_eq!(
            serde_json::to_value(&listing.backups[0]).unwrap(),
            serde_json::json!({"filename": "framerr-safety-2026-02-01T00-00-00.framerr-backup", "size": 10,
                "createdAt": "2026-02-01T00:00:00.000Z", "type": "safety", "encrypted": true,
                "pinned": false, "pinsUnreadable": false, "locations": ["memory"]})
        );
        let json = serde_json::to_value(&listing).unwrap();
        assert_eq!((json["count"].as_u64(), json["totalSize"].as_u64()), (Some(2), Some(20)));
        assert!(json.get("unreachable").is_none());
        assert_eq!(json["pinsUnreadable"], serde_json::json!([]));
        assert_eq!(block_on(list(&[])).count, 0);
    }

    #[test]
    fn safety_backups_are_deleted_only_when_forced() {
        let store = MemoryStore::default();
        put(&store, "framerr-safety-2026-02-01T00-00-00.zip", b"x");
        let stores: Vec<Arc<dyn BackupStore>> = vec![Arc::new(store)];
        let name = BackupName::parse("framerr-safety-2026-02-01T00-00-00.zip").unwrap();
        assert!(matches!(block_on(delete(&stores, &name, false)), Err(DeleteError::SafetyNeedsForce(_))));
        assert_eq!(block_on(delete(&stores, &name, true)).unwrap(), ["memory"]);
        assert!(matches!(block_on(delete(&stores, &name, true)), Err(DeleteError::NotFound(_))));
    }
}
