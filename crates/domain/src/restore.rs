//! Restore policy: which archive entries go where, what makes an archive
//! hostile, and which databases this instance can take (spec section 5).
//!
//! The IO (staging, commit, crash recovery) is the instance adapter's; the
//! rules it applies are here, as pure functions.

use std::collections::HashSet;

use crate::manifest::{DATABASE_ENTRY, MANIFEST_ENTRY};

/// The asset folders of a backup, by their archive prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AssetFolder {
    ProfilePictures,
    CustomIcons,
    Favicon,
}

impl AssetFolder {
    pub const ALL: [AssetFolder; 3] = [AssetFolder::ProfilePictures, AssetFolder::CustomIcons, AssetFolder::Favicon];

    /// The folder's name inside the archive.
    pub fn prefix(self) -> &'static str {
        match self {
            AssetFolder::ProfilePictures => "profile-pictures",
            AssetFolder::CustomIcons => "custom-icons",
            AssetFolder::Favicon => "favicon",
        }
    }
}

/// Where an archive entry goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryTarget {
    Database,
    Manifest,
    Asset {
        folder: AssetFolder,
        file: String,
    },
    /// Not ours or Framerr's; ignored, as Framerr ignores it.
    Unknown,
}

/// Why an archive is refused before anything is extracted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostileArchive {
    #[error("archive entry {0:?} has an unsafe path")]
    UnsafePath(String),
    #[error("archive entry {0:?} is a symbolic link")]
    Symlink(String),
    #[error("archive entry {0:?} appears more than once")]
    Duplicate(String),
    #[error("archive entry {name:?} would be {size} bytes, over the {limit}-byte limit")]
    EntryTooLarge { name: String, size: u64, limit: u64 },
    #[error("the archive would expand to {size} bytes, over the {limit}-byte limit")]
    TotalTooLarge { size: u64, limit: u64 },
    #[error("archive entry {name:?} expands {ratio}x, over the {limit}x limit (a zip bomb?)")]
    Ratio { name: String, ratio: u64, limit: u64 },
    #[error("the archive has {count} entries, over the {limit} limit")]
    TooManyEntries { count: usize, limit: usize },
}

/// Bounds on what a restore will extract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoreLimits {
    pub max_entry: u64,
    pub max_total: u64,
    /// Uncompressed / compressed, for entries over 1 MiB.
    pub max_ratio: u64,
    pub max_entries: usize,
}

impl Default for RestoreLimits {
    /// Generous for a homelab dashboard (a 1 GiB database is already
    /// large), tight enough that a zip bomb cannot fill a disk.
    fn default() -> Self {
        RestoreLimits { max_entry: 16 << 30, max_total: 20 << 30, max_ratio: 1000, max_entries: 100_000 }
    }
}

/// An entry as the archive's central directory declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredEntry {
    pub name: String,
    pub size: u64,
    pub compressed_size: u64,
    pub is_symlink: bool,
    pub is_dir: bool,
}

/// Where an entry goes, or why its path is unsafe. Only plain relative
/// paths of the known shapes are accepted; a file name inside an asset
/// folder is one segment of ordinary characters.
pub fn classify(name: &str) -> Result<EntryTarget, HostileArchive> {
    let unsafe_path = || HostileArchive::UnsafePath(name.to_owned());
    let bad_char = |c: char| c.is_control() || c == '\\' || c == ':';
    if name.is_empty() || name.starts_with('/') || name.chars().any(bad_char) {
        return Err(unsafe_path());
    }
    let segments: Vec<&str> = name.split('/').collect();
    if segments.iter().any(|s| s.is_empty() || *s == "." || *s == "..") {
        return Err(unsafe_path());
    }
    Ok(match segments.as_slice() {
        [DATABASE_ENTRY] => EntryTarget::Database,
        [MANIFEST_ENTRY] => EntryTarget::Manifest,
        [folder, file] => match AssetFolder::ALL.into_iter().find(|f| f.prefix() == *folder) {
            Some(folder) if !file.starts_with('.') => EntryTarget::Asset { folder, file: (*file).to_owned() },
            Some(_) => return Err(unsafe_path()),
            None => EntryTarget::Unknown,
        },
        _ => EntryTarget::Unknown,
    })
}

/// Checks every entry before anything is extracted: paths, links,
/// duplicates, sizes, compression ratios. Directory entries are skipped
/// (Framerr writes none, other tools do).
pub fn check_entries(entries: &[DeclaredEntry], limits: RestoreLimits) -> Result<Vec<EntryTarget>, HostileArchive> {
    if entries.len() > limits.max_entries {
        return Err(HostileArchive::TooManyEntries { count: entries.len(), limit: limits.max_entries });
    }
    let mut seen = HashSet::new();
    let mut total = 0u64;
    let mut targets = Vec::with_capacity(entries.len());
    for e in entries {
        if e.is_symlink {
            return Err(HostileArchive::Symlink(e.name.clone()));
        }
        if e.is_dir {
            let trimmed = e.name.trim_end_matches('/');
            classify(if trimmed.is_empty() { &e.name } else { trimmed })?;
            targets.push(EntryTarget::Unknown);
            continue;
        }
        let target = classify(&e.name)?;
        // Case-insensitive file systems would merge names that differ in case.
        if !seen.insert(e.name.to_lowercase()) {
            return Err(HostileArchive::Duplicate(e.name.clone()));
        }
        if target == EntryTarget::Unknown {
            targets.push(target);
            continue;
        }
        if e.size > limits.max_entry {
            return Err(HostileArchive::EntryTooLarge { name: e.name.clone(), size: e.size, limit: limits.max_entry });
        }
        total = total.saturating_add(e.size);
        if total > limits.max_total {
            return Err(HostileArchive::TotalTooLarge { size: total, limit: limits.max_total });
        }
        if e.size > 1 << 20 {
            let ratio = e.size / e.compressed_size.max(1);
            if ratio > limits.max_ratio {
                return Err(HostileArchive::Ratio { name: e.name.clone(), ratio, limit: limits.max_ratio });
            }
        }
        targets.push(target);
    }
    Ok(targets)
}

/// A database from a newer Framerr cannot be migrated down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "this backup was made by a newer Framerr (database version {backup}) than the one running here (version {running}); update Framerr first"
)]
pub struct TooNew {
    pub backup: i64,
    pub running: i64,
}

pub fn check_version(backup: i64, running: Option<i64>) -> Result<(), TooNew> {
    match running {
        Some(running) if backup > running => Err(TooNew { backup, running }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, size: u64, compressed: u64) -> DeclaredEntry {
        DeclaredEntry { name: name.into(), size, compressed_size: compressed, is_symlink: false, is_dir: false }
    }

    #[test]
    fn classifies_framerrs_layout() {
        assert_eq!(classify("framerr.db"), Ok(EntryTarget::Database));
        assert_eq!(classify("manifest.json"), Ok(EntryTarget::Manifest));
        assert_eq!(
            classify("custom-icons/icon-1.png"),
            Ok(EntryTarget::Asset { folder: AssetFolder::CustomIcons, file: "icon-1.png".into() })
        );
        assert_eq!(classify("notes/readme.txt"), Ok(EntryTarget::Unknown));
        assert_eq!(classify("favicon/deep/x.ico"), Ok(EntryTarget::Unknown));
        assert_eq!(classify("README"), Ok(EntryTarget::Unknown));
    }

    #[test]
    fn refuses_unsafe_paths() {
        for name in [
            "",
            "/etc/passwd",
            "../framerr.db",
            "favicon/../../x",
            "favicon/..",
            "a//b",
            "./framerr.db",
            "C:/x",
            "C:\\x",
            "favicon\\x.ico",
            "favicon/x\0.ico",
            "favicon/.hidden",
            "favicon/\nx",
        ] {
            assert!(matches!(classify(name), Err(HostileArchive::UnsafePath(_))), "{name:?}");
        }
    }

    #[test]
    fn refuses_hostile_archives() {
        let limits = RestoreLimits { max_entry: 100 << 20, max_total: 150 << 20, max_ratio: 100, max_entries: 10 };
        let ok = [entry("framerr.db", 10, 5), entry("manifest.json", 10, 5)];
        assert_eq!(check_entries(&ok, limits).unwrap(), [EntryTarget::Database, EntryTarget::Manifest]);
        let cases: Vec<(Vec<DeclaredEntry>, &str)> = vec![
            (vec![entry("framerr.db", 1, 1), entry("framerr.db", 1, 1)], "more than once"),
            (vec![entry("favicon/a.ico", 1, 1), entry("favicon/A.ico", 1, 1)], "more than once"),
            (vec![DeclaredEntry { is_symlink: true, ..entry("favicon/a.ico", 1, 1) }], "symbolic link"),
            (vec![entry("framerr.db", 101 << 20, 100 << 20)], "over the 104857600-byte limit"),
            (vec![entry("framerr.db", 90 << 20, 90 << 20), entry("favicon/x", 90 << 20, 90 << 20)], "expand to"),
            (vec![entry("framerr.db", 50 << 20, 1000)], "zip bomb"),
            ((0..11).map(|i| entry(&format!("x{i}"), 1, 1)).collect(), "entries, over"),
            (vec![entry("../../etc/cron.d/x", 1, 1)], "unsafe path"),
        ];
        for (entries, want) in cases {
            let err = check_entries(&entries, limits).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
        // Unknown entries are ignored, even large ones.
        assert!(check_entries(&[entry("video.mkv", 120 << 20, 120 << 20)], limits).is_ok());
        // Directory entries are fine, unless their path is unsafe.
        let dir = DeclaredEntry { is_dir: true, ..entry("favicon/", 0, 0) };
        assert!(check_entries(&[dir], limits).is_ok());
        let bad_dir = DeclaredEntry { is_dir: true, ..entry("../x/", 0, 0) };
        assert!(check_entries(&[bad_dir], limits).is_err());
    }

    #[test]
    fn newer_databases_are_refused() {
        assert!(check_version(48, Some(48)).is_ok());
        assert!(check_version(40, Some(48)).is_ok());
        assert!(check_version(48, None).is_ok());
        let err = check_version(49, Some(48)).unwrap_err().to_string();
        assert!(err.contains("newer Framerr") && err.contains("49") && err.contains("48"), "{err}");
    }
}
