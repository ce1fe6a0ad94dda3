//! Restore policy: which archive entries go where, what makes an archive
//! hostile, and which databases this instance can take (spec section 5).
//!
//! The IO (staging, commit, crash recovery) is the instance adapter's; the
//! rules it applies are here, as pure functions.

use std::collections::HashSet;
use std::time::Duration;

use crate::assets::AssetFolder;
use crate::manifest::{DATABASE_ENTRY, MANIFEST_ENTRY};
use crate::restore::ports::{QueryKind, QueryObject};

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
    #[error("the archive would expand {ratio}x its own size, over the {limit}x limit (a zip bomb?)")]
    ArchiveRatio { ratio: u64, limit: u64 },
    #[error("the archive has {count} entries, over the {limit} limit")]
    TooManyEntries { count: usize, limit: usize },
}

/// Bounds on what a restore will extract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoreLimits {
    pub max_entry: u64,
    pub max_total: u64,
    /// Uncompressed / compressed: for each entry over [`RATIO_FLOOR`], and
    /// for everything extracted against the whole archive's size.
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

/// What the work on a backup's database may cost. The file is the
/// sender's, so each step over it (the schema scan, the integrity check,
/// post-restore) gets CPU time in proportion to what the backup weighs as
/// sent, never to what it expands to: a 1 MiB archive may hold a 1 GiB
/// database, and its checks still end within seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkBudget {
    /// What every archive gets, however small.
    pub base: Duration,
    /// And this much more per MiB of the archive.
    pub per_mib: Duration,
    /// Never more than this, whatever the size.
    pub most: Duration,
}

impl Default for WorkBudget {
    /// 2 s plus 1 s per 16 MiB: an integrity check reads about 1 GiB a
    /// second on one core, and a backup compresses its database about 2x,
    /// so a genuine backup gets some 30 times the CPU its checks take
    /// (slower machines included), and a hostile 1 MiB archive about 2 s a
    /// step.
    fn default() -> Self {
        WorkBudget {
            base: Duration::from_secs(2),
            per_mib: Duration::from_micros(62_500),
            most: Duration::from_secs(60 * 60),
        }
    }
}

impl WorkBudget {
    /// The CPU time each step over the database of a `bytes`-long archive
    /// may take.
    pub fn for_archive(&self, bytes: u64) -> Duration {
        let mib = u32::try_from(bytes.div_ceil(1 << 20)).unwrap_or(u32::MAX);
        self.base.saturating_add(self.per_mib.saturating_mul(mib)).min(self.most)
    }
}

/// Entries smaller than this are not held to the ratio on their own (a
/// small text compresses well); they still count toward the archive's.
pub const RATIO_FLOOR: u64 = 16 * 1024;

/// An entry as the archive's central directory declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredEntry {
    pub name: String,
    pub size: u64,
    pub compressed_size: u64,
    pub is_symlink: bool,
    pub is_dir: bool,
}

/// The longest file name (in bytes) ext4, XFS, btrfs and ZFS take.
pub const MAX_FILE_NAME: usize = 255;

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
            // Longer names no common file system takes: refused here, so
            // that verify says what restore would meet.
            Some(folder) if !file.starts_with('.') && file.len() <= MAX_FILE_NAME => {
                EntryTarget::Asset { folder, file: (*file).to_owned() }
            }
            Some(_) => return Err(unsafe_path()),
            None => EntryTarget::Unknown,
        },
        _ => EntryTarget::Unknown,
    })
}

/// Checks every entry before anything is extracted: paths, links,
/// duplicates, sizes, and compression ratios, per entry and for the whole
/// archive (`archive_size` bytes), so that many small bombs are caught like
/// one large one. Directory entries are skipped (Framerr writes none, other
/// tools do); entries that are not extracted do not count.
pub fn check_entries(
    entries: &[DeclaredEntry],
    archive_size: u64,
    limits: RestoreLimits,
) -> Result<Vec<EntryTarget>, HostileArchive> {
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
        if e.size > RATIO_FLOOR {
            let ratio = e.size / e.compressed_size.max(1);
            if ratio > limits.max_ratio {
                return Err(HostileArchive::Ratio { name: e.name.clone(), ratio, limit: limits.max_ratio });
            }
        }
        targets.push(target);
    }
    // Bounded by the floor: a tiny archive of small files passes.
    if total > RATIO_FLOOR {
        let ratio = total / archive_size.max(1);
        if ratio > limits.max_ratio {
            return Err(HostileArchive::ArchiveRatio { ratio, limit: limits.max_ratio });
        }
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

/// What a backup holds, shown before a restore: (label, table).
pub const SUMMARY_TABLES: [(&str, &str); 4] = [
    ("users", "users"),
    ("dashboards", "dashboards"),
    ("integrations", "integration_instances"),
    ("icons", "custom_icons"),
];

/// Tables every Framerr database has: without them a file is not a Framerr
/// database, whatever else it holds.
pub const REQUIRED_TABLES: [&str; 2] = ["users", "system_config"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the backup's database is not a Framerr database: {0}")]
pub struct NotFramerr(pub String);

pub fn check_tables(tables: &[String]) -> Result<(), NotFramerr> {
    match REQUIRED_TABLES.iter().find(|t| !tables.iter().any(|have| have == *t)) {
        Some(missing) => Err(NotFramerr(format!("it has no {missing} table"))),
        None => Ok(()),
    }
}

/// The one virtual table Framerr makes: the media search index, an FTS5
/// table over `media_library`. Rebuilding it reads its content table.
pub const SEARCH_INDEX: &str = "media_library_fts";

/// Framerr makes no view, no generated column, no index on an expression
/// or with a condition, and one virtual table. Anything else that computes
/// with the file's own code is refused before anything reads it: a view
/// named like a purged table would survive the purge (and hide sessions in
/// it), a search index over an endless view or an index on a costly
/// expression would keep a core busy for as long as the check ran, and a
/// generated column can make a tiny archive take gigabytes to read.
pub fn check_queries(queries: &[QueryObject]) -> Result<(), NotFramerr> {
    for q in queries {
        let what = match q.kind {
            QueryKind::View => "a view",
            QueryKind::GeneratedColumn => "a generated column",
            QueryKind::ExpressionIndex => "an index on an expression or with a condition",
            QueryKind::VirtualTable => "",
        };
        if !what.is_empty() {
            return Err(NotFramerr(format!("it has {what} ({:?}), and Framerr's has none", q.name)));
        }
        if q.name != SEARCH_INDEX || !is_search_index(&q.sql) {
            return Err(NotFramerr(format!(
                "it has a virtual table ({:?}) unlike Framerr's: only {SEARCH_INDEX}, an fts5 index over media_library",
                q.name
            )));
        }
    }
    Ok(())
}

/// `CREATE VIRTUAL TABLE media_library_fts USING fts5(columns...,
/// content=media_library, content_rowid=id)`, read strictly: no comments,
/// the fts5 module, and a content table that is `media_library` or none.
fn is_search_index(sql: &str) -> bool {
    let sql = sql.to_ascii_lowercase();
    if sql.contains("--") || sql.contains("/*") {
        return false;
    }
    let Some((_, after)) = sql.split_once(" using ") else { return false };
    let Some((module, args)) = after.split_once('(') else { return false };
    let unquote = |s: &str| s.trim().trim_matches(|c| matches!(c, '\'' | '"' | '`' | '[' | ']')).to_owned();
    if unquote(module) != "fts5" {
        return false;
    }
    let Some(args) = args.trim_end().strip_suffix(')') else { return false };
    args.split(',').filter_map(|a| a.split_once('=')).all(|(key, value)| match &*unquote(key) {
        "content" => matches!(&*unquote(value), "media_library" | ""),
        "content_rowid" | "tokenize" | "prefix" | "columnsize" | "detail" | "contentless_delete" => true,
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_without_framerrs_tables_is_not_framerrs() {
        let tables = |t: &[&str]| t.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(check_tables(&tables(&["sessions", "users", "system_config"])).is_ok());
        assert_eq!(check_tables(&tables(&["users"])), Err(NotFramerr("it has no system_config table".into())));
        assert!(check_tables(&[]).unwrap_err().to_string().contains("no users table"));
    }

    #[test]
    fn only_framerrs_search_index_may_run_a_query_of_the_files_own() {
        let q = |view: bool, name: &str, sql: &str| QueryObject {
            kind: if view { QueryKind::View } else { QueryKind::VirtualTable },
            name: name.into(),
            sql: sql.into(),
        };
        let framerrs = "CREATE VIRTUAL TABLE media_library_fts USING fts5(\n title,\n original_title,\n summary,\n actors,\n director,\n content=media_library,\n content_rowid=id\n )";
        assert!(check_queries(&[q(false, SEARCH_INDEX, framerrs)]).is_ok());
        assert!(
            check_queries(&[q(false, SEARCH_INDEX, "CREATE VIRTUAL TABLE media_library_fts USING fts5(title)")])
                .is_ok()
        );
        for bad in [
            q(true, "sessions", "CREATE VIEW sessions AS SELECT 'evil' AS token"),
            q(false, SEARCH_INDEX, &framerrs.replace("content=media_library", "content=endless")),
            q(false, SEARCH_INDEX, &framerrs.replace("content=media_library", "content='endless'")),
            q(false, SEARCH_INDEX, &framerrs.replace("content=media_library", "content=media_library /*,content=x*/")),
            q(false, SEARCH_INDEX, &framerrs.replace("fts5", "fts4")),
            q(false, "notes_fts", &framerrs.replace("media_library_fts", "notes_fts")),
            q(false, SEARCH_INDEX, "CREATE VIRTUAL TABLE media_library_fts USING series"),
            QueryObject { kind: QueryKind::GeneratedColumn, name: "integrations.config".into(), sql: String::new() },
            QueryObject { kind: QueryKind::ExpressionIndex, name: "slow".into(), sql: String::new() },
        ] {
            assert!(check_queries(std::slice::from_ref(&bad)).is_err(), "{bad:?}");
        }
    }

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
    fn the_work_budget_follows_the_archive_as_sent() {
        let budget = WorkBudget::default();
        assert_eq!(budget.for_archive(0), Duration::from_secs(2));
        // Under 1 MiB: five steps stay under 10 s of CPU together.
        assert!(budget.for_archive(1 << 20) * 5 < Duration::from_secs(11));
        // A genuine 1 GiB database, about 500 MiB as a backup.
        assert_eq!(budget.for_archive(500 << 20), Duration::from_micros(2_000_000 + 500 * 62_500));
        assert_eq!(budget.for_archive(u64::MAX), budget.most);
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
            &format!("custom-icons/{}.png", "a".repeat(300)),
        ] {
            assert!(matches!(classify(name), Err(HostileArchive::UnsafePath(_))), "{name:?}");
        }
    }

    #[test]
    fn refuses_hostile_archives() {
        let limits = RestoreLimits { max_entry: 100 << 20, max_total: 150 << 20, max_ratio: 100, max_entries: 10 };
        let ok = [entry("framerr.db", 10, 5), entry("manifest.json", 10, 5)];
        assert_eq!(check_entries(&ok, 100, limits).unwrap(), [EntryTarget::Database, EntryTarget::Manifest]);
        let cases: Vec<(Vec<DeclaredEntry>, &str)> = vec![
            (vec![entry("framerr.db", 1, 1), entry("framerr.db", 1, 1)], "more than once"),
            (vec![entry("favicon/a.ico", 1, 1), entry("favicon/A.ico", 1, 1)], "more than once"),
            (vec![DeclaredEntry { is_symlink: true, ..entry("favicon/a.ico", 1, 1) }], "symbolic link"),
            (vec![entry("framerr.db", 101 << 20, 100 << 20)], "over the 104857600-byte limit"),
            (vec![entry("framerr.db", 90 << 20, 90 << 20), entry("favicon/x", 90 << 20, 90 << 20)], "expand to"),
            (vec![entry("framerr.db", 50 << 20, 1000)], "zip bomb"),
            ((0..11).map(|i| entry(&format!("x{i}"), 1, 1)).collect(), "entries, over"),
            (vec![entry("../../etc/cron.d/x", 1, 1)], "unsafe path"),
            // Below a MiB, an entry is still held to the ratio.
            (vec![entry("favicon/a.ico", 200_000, 1_000)], "zip bomb"),
        ];
        for (entries, want) in cases {
            let archive: u64 = entries.iter().map(|e| e.compressed_size).sum::<u64>() + 100;
            let err = check_entries(&entries, archive, limits).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
        // Unknown entries are ignored, even large ones.
        assert!(check_entries(&[entry("video.mkv", 120 << 20, 120 << 20)], 120 << 20, limits).is_ok());
        // Directory entries are fine, unless their path is unsafe.
        let dir = DeclaredEntry { is_dir: true, ..entry("favicon/", 0, 0) };
        assert!(check_entries(&[dir], 100, limits).is_ok());
        let bad_dir = DeclaredEntry { is_dir: true, ..entry("../x/", 0, 0) };
        assert!(check_entries(&[bad_dir], 100, limits).is_err());
    }

    #[test]
    fn many_small_entries_are_held_to_the_ratio_of_the_whole_archive() {
        // 150 entries of 10 KiB of zeros, each under the floor, in a 30 KB file.
        let limits = RestoreLimits { max_ratio: 2, ..RestoreLimits::default() };
        let entries: Vec<DeclaredEntry> =
            (0..150).map(|i| entry(&format!("custom-icons/{i}.png"), 10 * 1024, 200)).collect();
        let err = check_entries(&entries, 30_000, limits).unwrap_err();
        assert!(matches!(err, HostileArchive::ArchiveRatio { limit: 2, .. }), "{err}");
        // The same files, incompressible, in an archive of their size: fine.
        assert!(check_entries(&entries, 150 * 10 * 1024 + 20_000, limits).is_ok());
        // A tiny archive of tiny files is fine whatever the ratio.
        assert!(check_entries(&[entry("framerr.db", 4096, 10)], 200, limits).is_ok());
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
