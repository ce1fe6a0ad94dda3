//! A listing in the shape of Framerr's `GET /list` (spec section 8):
//! newest first, with the total size.

use serde_json::{Value, json};

use crate::ports::StoredBackup;
use crate::timefmt::to_iso_millis;

/// Sorts `backups` newest first and returns the `/list` body.
pub fn to_json(backups: &mut [StoredBackup]) -> Value {
    backups.sort_by(|a, b| b.name.cmp(&a.name));
    let total: u64 = backups.iter().map(|b| b.size).sum();
    let items: Vec<Value> = backups
        .iter()
        .map(|b| {
            json!({
                "filename": b.name.to_string(),
                "size": b.size,
                "createdAt": b.name.created_at().map(to_iso_millis),
                "type": b.name.kind(),
                "encrypted": b.name.is_encrypted(),
            })
        })
        .collect();
    json!({ "backups": items, "totalSize": total, "count": backups.len() })
}

/// Every store's backups, each name once (the first store's entry wins),
/// with the places it lives as `locations` in each item, and the stores
/// that could not be listed.
pub async fn merged(stores: &[std::sync::Arc<dyn crate::ports::BackupStore>]) -> (Value, Vec<String>) {
    let mut locations: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let mut backups = Vec::new();
    let mut unreachable = Vec::new();
    for store in stores {
        match store.list().await {
            Ok(list) => {
                for b in list {
                    let places = locations.entry(b.name.to_string()).or_default();
                    if places.is_empty() {
                        backups.push(b);
                    }
                    places.push(store.describe());
                }
            }
            Err(e) => unreachable.push(format!("{}: {e}", store.describe())),
        }
    }
    let mut json = to_json(&mut backups);
    if let Some(items) = json["backups"].as_array_mut() {
        for item in items {
            let name = item["filename"].as_str().unwrap_or_default().to_owned();
            item["locations"] = json!(locations.remove(&name).unwrap_or_default());
        }
    }
    (json, unreachable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BackupName;

    #[test]
    fn framerrs_shape_newest_first() {
        let mut list: Vec<StoredBackup> =
            ["framerr-manual-2026-01-01T00-00-00.zip", "framerr-safety-2026-02-01T00-00-00.framerr-backup"]
                .iter()
                .map(|n| StoredBackup { name: BackupName::parse(n).unwrap(), size: 10 })
                .collect();
        let json = to_json(&mut list);
        assert_eq!(json["count"], 2);
        assert_eq!(json["totalSize"], 20);
        let merged = futures::executor::block_on(merged(&[]));
        assert_eq!(merged.0["count"], 0);
        assert_eq!(
            json["backups"][0],
            json!({"filename": "framerr-safety-2026-02-01T00-00-00.framerr-backup", "size": 10,
                   "createdAt": "2026-02-01T00:00:00.000Z", "type": "safety", "encrypted": true})
        );
    }
}
