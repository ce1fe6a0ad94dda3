//! `manifest.json`, Framerr's version "2.0" (spec section 3), plus our own
//! optional fields, which Framerr ignores: `generator`, `userVersion` and
//! `entries` (path, size and SHA-256 of every other entry).
//!
//! Written exactly as Framerr writes it: the same field order, indented by two
//! spaces, no trailing newline. Read leniently about what Framerr leaves out
//! (our fields, unknown fields) and strictly about what it always writes.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::assets::AssetFolder;
use crate::kind::BackupKind;
use crate::timefmt;

/// The tables Framerr empties on restore, in Framerr's order. We purge this
/// list, not the one a manifest carries: a hostile manifest must not be able
/// to name `users`.
pub const PURGED_ON_RESTORE: [&str; 10] = [
    "media_library",
    "library_sync_status",
    "media_cache",
    "media_search_history",
    "sessions",
    "push_subscriptions",
    "sso_setup_tokens",
    "notifications",
    "service_monitor_history",
    "service_monitor_aggregates",
];

/// Tables whose rows no backup carries: live credentials (a session token
/// signs its holder in to the running instance), which every restore
/// deletes anyway.
pub const NEVER_BACKED_UP: [&str; 3] = ["sessions", "push_subscriptions", "sso_setup_tokens"];

/// The tables whose rows a backup leaves out (their schema stays): the
/// whole purge list by default, since every restore deletes those rows;
/// with `full`, the secrets only.
pub fn omitted_tables(full: bool) -> &'static [&'static str] {
    if full { &NEVER_BACKED_UP } else { &PURGED_ON_RESTORE }
}

/// The archive entry that holds the database.
pub const DATABASE_ENTRY: &str = "framerr.db";
/// The archive entry that holds this manifest.
pub const MANIFEST_ENTRY: &str = "manifest.json";

/// How the backup's payload is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Encryption {
    #[serde(rename = "plaintext")]
    Plaintext,
    /// The ZIP is the payload of a FRMRBKUP v1 file.
    #[serde(rename = "envelope-v1")]
    EnvelopeV1,
}

/// Which asset folders existed when the backup was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assets {
    pub profile_pictures: bool,
    pub custom_icons: bool,
    pub favicon: bool,
}

impl Assets {
    /// Whether `folder` existed.
    pub fn has(&self, folder: AssetFolder) -> bool {
        match folder {
            AssetFolder::ProfilePictures => self.profile_pictures,
            AssetFolder::CustomIcons => self.custom_icons,
            AssetFolder::Favicon => self.favicon,
        }
    }

    /// The folders for which `exists` says yes.
    pub fn from_fn(mut exists: impl FnMut(AssetFolder) -> bool) -> Self {
        Assets {
            profile_pictures: exists(AssetFolder::ProfilePictures),
            custom_icons: exists(AssetFolder::CustomIcons),
            favicon: exists(AssetFolder::Favicon),
        }
    }
}

/// Who wrote the backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generator {
    pub name: String,
    pub version: String,
}

impl Generator {
    pub fn this_crate() -> Self {
        Generator { name: "framerr-backup".to_owned(), version: env!("CARGO_PKG_VERSION").to_owned() }
    }
}

/// The size and checksum of one archive entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryDigest {
    pub path: String,
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub version: String,
    #[serde(rename = "type")]
    pub kind: BackupKind,
    #[serde(with = "timefmt::iso")]
    pub created_at: OffsetDateTime,
    pub encryption: Encryption,
    pub purged_on_restore: Vec<String>,
    pub assets: Assets,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<Generator>,
    /// `PRAGMA user_version` of the database entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_version: Option<i64>,
    /// Set on a safety backup of a live database that could not be read:
    /// the database entry is the live file byte for byte (its WAL beside it
    /// as `framerr.db-wal`), and this says why it could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damaged: Option<String>,
    /// Tables whose rows were left out of the database entry (their schema
    /// is there, empty): rows every restore deletes anyway.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub omitted_rows: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<EntryDigest>>,
}

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Framerr's own message for a manifest that is not JSON.
    #[error("Invalid manifest file format")]
    NotJson,
    #[error("manifest.json is larger than {} bytes", Manifest::MAX_BYTES)]
    TooLarge,
    #[error("Invalid manifest file format: {0}")]
    Invalid(String),
    #[error("unsupported manifest version {0:?}: this tool reads version 2.x")]
    UnsupportedVersion(String),
}

impl Manifest {
    /// The version Framerr 0.4.1 writes.
    pub const VERSION: &'static str = "2.0";
    /// A real manifest is well under 1 KiB plus ~150 bytes an asset; anything
    /// near this is hostile.
    pub const MAX_BYTES: usize = 4 * 1024 * 1024;

    /// A manifest for a new backup, without entry digests yet.
    pub fn new(kind: BackupKind, created_at: OffsetDateTime, encryption: Encryption, assets: Assets) -> Self {
        Manifest {
            version: Self::VERSION.to_owned(),
            kind,
            created_at,
            encryption,
            purged_on_restore: PURGED_ON_RESTORE.iter().map(|s| (*s).to_owned()).collect(),
            assets,
            generator: Some(Generator::this_crate()),
            user_version: None,
            damaged: None,
            omitted_rows: Vec::new(),
            entries: None,
        }
    }

    /// Framerr's layout: two-space indent, no trailing newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, ManifestError> {
        if bytes.len() > Self::MAX_BYTES {
            return Err(ManifestError::TooLarge);
        }
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| ManifestError::NotJson)?;
        let version = value
            .get("version")
            .ok_or_else(|| ManifestError::Invalid("missing field `version`".into()))?
            .as_str()
            .ok_or_else(|| ManifestError::Invalid("`version` is not a string".into()))?;
        if version.split('.').next() != Some("2") {
            return Err(ManifestError::UnsupportedVersion(version.to_owned()));
        }
        let manifest: Manifest = serde_json::from_value(value).map_err(|e| ManifestError::Invalid(e.to_string()))?;
        manifest.check_entries()?;
        Ok(manifest)
    }

    /// The digest listed for `path`, if this manifest lists digests.
    pub fn digest_of(&self, path: &str) -> Option<&EntryDigest> {
        self.entries.as_ref()?.iter().find(|e| e.path == path)
    }

    fn check_entries(&self) -> Result<(), ManifestError> {
        let Some(entries) = &self.entries else {
            return Ok(());
        };
        let mut seen = std::collections::HashSet::new();
        for entry in entries {
            let hex_ok = entry.sha256.len() == 64 && entry.sha256.bytes().all(|b| b.is_ascii_hexdigit());
            if !hex_ok {
                return Err(ManifestError::Invalid(format!("entry {:?} has no valid sha256", entry.path)));
            }
            if !seen.insert(entry.path.as_str()) {
                return Err(ManifestError::Invalid(format!("entry {:?} is listed twice", entry.path)));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const FRAMERR_PLAIN: &str = r#"{
  "version": "2.0",
  "type": "manual",
  "createdAt": "2026-11-26T22:17:29.017Z",
  "encryption": "plaintext",
  "purgedOnRestore": [
    "media_library",
    "library_sync_status",
    "media_cache",
    "media_search_history",
    "sessions",
    "push_subscriptions",
    "sso_setup_tokens",
    "notifications",
    "service_monitor_history",
    "service_monitor_aggregates"
  ],
  "assets": {
    "profilePictures": true,
    "customIcons": true,
    "favicon": true
  }
}"#;

    #[test]
    fn reads_and_rewrites_framerrs_manifest_byte_for_byte() {
        let m = Manifest::from_json(FRAMERR_PLAIN.as_bytes()).unwrap();
        assert_eq!(m.kind, BackupKind::Manual);
        assert_eq!(m.created_at, datetime!(2026-11-26 22:17:29.017 UTC));
        assert_eq!(m.encryption, Encryption::Plaintext);
        assert!(m.entries.is_none() && m.generator.is_none() && m.user_version.is_none());
        assert_eq!(m.to_json(), FRAMERR_PLAIN);
    }

    #[test]
    fn our_manifest_keeps_framerrs_fields_first_and_round_trips() {
        let mut m = Manifest::new(
            BackupKind::Scheduled,
            datetime!(2026-11-26 03:00:00.5 UTC),
            Encryption::EnvelopeV1,
            Assets { profile_pictures: true, custom_icons: false, favicon: true },
        );
        m.user_version = Some(48);
        m.entries = Some(vec![EntryDigest { path: "framerr.db".into(), size: 4096, sha256: "ab".repeat(32) }]);
        let json = m.to_json();
        assert!(json.starts_with("{\n  \"version\": \"2.0\",\n  \"type\": \"scheduled\",\n  \"createdAt\": \"2026-11-26T03:00:00.500Z\",\n  \"encryption\": \"envelope-v1\",\n  \"purgedOnRestore\": ["));
        assert!(!json.ends_with('\n'));
        assert_eq!(Manifest::from_json(json.as_bytes()).unwrap(), m);
        assert_eq!(m.digest_of("framerr.db").map(|d| d.size), Some(4096));
    }

    #[test]
    fn refuses_malformed_manifests_with_a_reason() {
        let cases: [(&str, &str); 9] = [
            ("not json", "Invalid manifest file format"),
            ("[]", "missing field `version`"),
            ("{}", "missing field `version`"),
            (r#"{"version": 2}"#, "`version` is not a string"),
            (r#"{"version": "3.0"}"#, "unsupported manifest version \"3.0\""),
            (r#"{"version": "2.0", "type": "manual"}"#, "missing field `createdAt`"),
            (&FRAMERR_PLAIN.replace("\"manual\"", "\"hourly\""), "unknown variant `hourly`"),
            (&FRAMERR_PLAIN.replace("2026-11-26T22:17:29.017Z", "soon"), "not an ISO-8601 timestamp"),
            (
                &FRAMERR_PLAIN.replace(
                    "\"assets\"",
                    r#""entries": [{"path": "framerr.db", "size": 1, "sha256": "xyz"}], "assets""#,
                ),
                "has no valid sha256",
            ),
        ];
        for (json, want) in cases {
            let err = Manifest::from_json(json.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(want), "{json}: {err}");
        }
        let huge = vec![b' '; Manifest::MAX_BYTES + 1];
        assert_eq!(Manifest::from_json(&huge), Err(ManifestError::TooLarge));
    }

    #[test]
    fn ignores_unknown_fields() {
        let json = FRAMERR_PLAIN.replace("\"assets\"", "\"futureField\": {\"x\": 1},\n  \"assets\"");
        assert!(Manifest::from_json(json.as_bytes()).is_ok());
    }
}
