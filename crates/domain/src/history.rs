//! What each backup took: size and duration of the backups this server
//! made, kept beside the backups in the primary store (not in the database,
//! which a restore replaces), for the health page's chart and the metrics.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::kind::BackupKind;
use crate::ports::BackupStore;
use crate::timefmt;

/// The document's key.
pub const KEY: &str = "history";
/// The newest this many are kept.
pub const LIMIT: usize = 200;

/// One backup this server made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub filename: String,
    #[serde(rename = "type")]
    pub kind: BackupKind,
    pub size: u64,
    pub duration_ms: u64,
    #[serde(with = "timefmt::iso")]
    pub created_at: OffsetDateTime,
}

/// The history, oldest first; empty when there is none or it is unreadable
/// (it is a record, never a reason to fail).
pub async fn read(store: &dyn BackupStore) -> Vec<Entry> {
    match store.read_meta(KEY).await {
        Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Appends `entry`, keeping the newest [`LIMIT`].
pub async fn record(store: &dyn BackupStore, entry: Entry) -> Result<(), StoreError> {
    let mut entries = read(store).await;
    entries.push(entry);
    let excess = entries.len().saturating_sub(LIMIT);
    entries.drain(..excess);
    let bytes = serde_json::to_vec(&entries).map_err(|e| StoreError::Other(e.to_string()))?;
    store.write_meta(KEY, &bytes).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;
    use futures::executor::block_on;
    use time::macros::datetime;

    #[test]
    fn keeps_the_newest_and_reads_back() {
        let store = MemoryStore::default();
        for i in 0..(LIMIT as u64 + 5) {
            let entry = Entry {
                filename: format!("b{i}"),
                kind: BackupKind::Scheduled,
                size: i,
                duration_ms: i * 10,
                created_at: datetime!(2026-11-27 00:00 UTC),
            };
            block_on(record(&store, entry)).unwrap();
        }
        let entries = block_on(read(&store));
        assert_eq!(entries.len(), LIMIT);
        assert_eq!((entries[0].filename.as_str(), entries[LIMIT - 1].size), ("b5", LIMIT as u64 + 4));
        block_on(store.write_meta(KEY, b"not json")).unwrap();
        assert!(block_on(read(&store)).is_empty());
    }
}
