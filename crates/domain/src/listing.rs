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
        assert_eq!(
            json["backups"][0],
            json!({"filename": "framerr-safety-2026-02-01T00-00-00.framerr-backup", "size": 10,
                   "createdAt": "2026-02-01T00:00:00.000Z", "type": "safety", "encrypted": true})
        );
    }
}
