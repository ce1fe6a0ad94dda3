//! The live Framerr instance's files, and the restore that replaces them.
//!
//! A restore never writes over live data in place (Framerr does). It:
//! 1. checks the whole archive before extracting anything (hostile paths,
//!    links, duplicates, sizes, ratios, every CRC and SHA-256, Framerr's
//!    structural rules);
//! 2. extracts into staging beside each live path (same file system, so
//!    the final renames are atomic), runs `integrity_check`, refuses a
//!    database newer than the running one, and does the post-restore work
//!    on the staged copy;
//! 3. takes a safety backup of the current state;
//! 4. writes a journal, then renames: the old database (with its `-wal` and
//!    `-shm`) and each old asset folder aside, the staged ones in;
//! 5. marks the journal committed, deletes the old copies and the caches.
//!
//! [`Instance::recover`] runs at every start: a journal in state
//! `committing` is rolled back, one in state `committed` is finished. The
//! database is therefore entirely the old one or entirely the new one.

mod journal;

use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use backup_archive::{AssetDirs, ReadLimits, ZipReader};
use backup_domain::manifest::{DATABASE_ENTRY, MANIFEST_ENTRY};
use backup_domain::ports::FieldCipher;
use backup_domain::restore::{AssetFolder, DeclaredEntry, EntryTarget, HostileArchive, RestoreLimits, TooNew};
use backup_domain::{DbError, Manifest, ManifestError};
use backup_sqlite::restored::{KeyStoreFix, PostRestore};
use backup_store_fs::temporary_name;

use journal::{Item, Journal, State};

pub use backup_domain::encryption::{KeyStoreOutcome, KeyStoreRow};

const JOURNAL: &str = ".framerr-restore-journal.json";
const STAGING_PREFIX: &str = ".framerr-restore-";
const OLD_PREFIX: &str = ".framerr-old-";

/// Where a Framerr instance keeps what a backup holds.
#[derive(Debug, Clone)]
pub struct Layout {
    pub db: PathBuf,
    pub assets: AssetDirs,
    /// Deleted after a restore (spec section 1).
    pub caches: Vec<PathBuf>,
}

impl Layout {
    fn asset_dir(&self, folder: AssetFolder) -> &Path {
        match folder {
            AssetFolder::ProfilePictures => &self.assets.profile_pictures,
            AssetFolder::CustomIcons => &self.assets.custom_icons,
            AssetFolder::Favicon => &self.assets.favicon,
        }
    }

    fn journal(&self) -> PathBuf {
        parent(&self.db).join(JOURNAL)
    }
}

fn parent(path: &Path) -> PathBuf {
    path.parent().filter(|p| !p.as_os_str().is_empty()).map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn sibling(path: &Path, prefix: &str, id: &str) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    parent(path).join(format!("{prefix}{id}-{name}"))
}

/// Why a restore did not happen. In every case the live instance is as it
/// was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    #[error("Invalid ZIP file: {0}")]
    Zip(#[from] backup_archive::ZipError),
    #[error("Backup is missing database file (framerr.db)")]
    MissingDatabase,
    #[error("Backup is missing manifest file")]
    MissingManifest,
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Hostile(#[from] HostileArchive),
    #[error("{path} in the backup is damaged: {detail}")]
    Damaged { path: String, detail: String },
    #[error(transparent)]
    TooNew(#[from] TooNew),
    #[error("the backup's database is damaged: {0}")]
    BadDatabase(DbError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("the safety backup failed, so nothing was restored: {0}")]
    Safety(String),
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> RestoreError + '_ {
    move |source| RestoreError::Io { path: path.display().to_string(), source }
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreSummary {
    pub manifest: Manifest,
    pub post: PostRestore,
    pub assets_restored: usize,
    pub safety_backup: Option<String>,
}

/// Options of one restore.
pub struct RestoreOptions<'a> {
    pub cipher: Option<&'a dyn FieldCipher>,
    pub limits: RestoreLimits,
    pub key_store: KeyStoreFix<'a>,
}

impl std::fmt::Debug for RestoreOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestoreOptions").field("limits", &self.limits).finish_non_exhaustive()
    }
}

/// What recovery found at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovered {
    RolledBack,
    Finished,
}

/// Test hook: `FRAMERR_FAILPOINT=<name>` aborts the process at that point
/// (as a kill -9 would), so crash tests can stop a restore anywhere.
fn failpoint(name: &str) {
    if std::env::var("FRAMERR_FAILPOINT").is_ok_and(|v| v == name) {
        std::process::abort();
    }
}

#[derive(Debug, Clone)]
pub struct Instance {
    layout: Layout,
}

/// A restore staged and checked, waiting for its commit.
#[derive(Debug)]
pub struct Staged {
    id: String,
    staging_db: PathBuf,
    staged_assets: Vec<(AssetFolder, PathBuf)>,
    /// Set once staging succeeded.
    summary: Option<RestoreSummary>,
}

impl Staged {
    pub fn summary(&self) -> Option<&RestoreSummary> {
        self.summary.as_ref()
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        // Uncommitted staging is removed; committed staging was moved away.
        let _ = journal::remove_any(&parent(&self.staging_db));
        for (_, dir) in &self.staged_assets {
            let _ = journal::remove_any(dir);
        }
    }
}

impl Instance {
    pub fn new(layout: Layout) -> Self {
        Instance { layout }
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Finishes or rolls back a restore a crash interrupted, and removes
    /// staging leftovers. Call at every start, before anything else opens
    /// the database.
    pub fn recover(&self) -> Result<Option<Recovered>, RestoreError> {
        let path = self.layout.journal();
        let outcome = match Journal::read(&path).map_err(io_at(&path))? {
            None => None,
            Some(j) if j.state == State::Committing => {
                tracing::warn!("an interrupted restore is being rolled back");
                journal::roll_back(&j.items).map_err(io_at(&path))?;
                Some(Recovered::RolledBack)
            }
            Some(j) => {
                tracing::info!("finishing a restore that completed before an interruption");
                journal::finish(&j).map_err(io_at(&path))?;
                Some(Recovered::Finished)
            }
        };
        if outcome.is_some() {
            std::fs::remove_file(&path).map_err(io_at(&path))?;
            journal::sync_parent(&path);
        }
        let mut dirs = vec![parent(&self.layout.db)];
        for (_, dir) in self.layout.assets.folders() {
            dirs.push(parent(dir));
        }
        for dir in dirs {
            backup_store_fs::remove_stale_temporaries(&dir, &[STAGING_PREFIX, OLD_PREFIX]);
        }
        Ok(outcome)
    }

    /// The live database's `user_version`, or `None` when there is none.
    pub async fn running_version(&self) -> Result<Option<i64>, RestoreError> {
        if !self.layout.db.exists() {
            return Ok(None);
        }
        Ok(Some(backup_sqlite::user_version(&self.layout.db).await?))
    }

    /// Steps 1 and 2: check and stage the plain backup ZIP at `archive`.
    /// Nothing live is touched; on failure the staging is removed.
    pub async fn stage(&self, archive: &Path, options: &RestoreOptions<'_>) -> Result<Staged, RestoreError> {
        let id = temporary_name("", "r");
        let staging = sibling(&self.layout.db, STAGING_PREFIX, &id);
        let staged_assets: Vec<(AssetFolder, PathBuf)> =
            AssetFolder::ALL.into_iter().map(|f| (f, sibling(self.layout.asset_dir(f), STAGING_PREFIX, &id))).collect();
        // Owns the staging paths from here: dropped on any error, it
        // removes them.
        let mut staged = Staged { id, staging_db: staging.join(DATABASE_ENTRY), staged_assets, summary: None };
        std::fs::create_dir_all(&staging).map_err(io_at(&staging))?;
        let (archive, limits) = (archive.to_owned(), options.limits);
        let (db, assets) = (staged.staging_db.clone(), staged.staged_assets.clone());
        let (manifest, assets_restored) = tokio::task::spawn_blocking(move || extract(&archive, &db, &assets, limits))
            .await
            .map_err(|e| RestoreError::Io { path: "extraction".into(), source: io::Error::other(e) })??;

        backup_sqlite::integrity_check(&staged.staging_db).await.map_err(RestoreError::BadDatabase)?;
        let version = backup_sqlite::user_version(&staged.staging_db).await.map_err(RestoreError::BadDatabase)?;
        backup_domain::restore::check_version(version, self.running_version().await?)?;
        let post = backup_sqlite::restored::post_restore(&staged.staging_db, options.cipher, options.key_store).await?;
        staged.summary = Some(RestoreSummary { manifest, post, assets_restored, safety_backup: None });
        Ok(staged)
    }

    /// Steps 4 and 5: swaps the staged restore in. Take the safety backup
    /// before calling this.
    pub fn commit(&self, staged: Staged) -> Result<RestoreSummary, RestoreError> {
        let Some(summary) = staged.summary.clone() else {
            return Err(RestoreError::Io {
                path: "staging".into(),
                source: io::Error::other("restore was not staged"),
            });
        };
        let db = &self.layout.db;
        let mut items = Vec::new();
        // The old database's WAL must go with it: a stale WAL beside the new
        // file would be replayed into it.
        for suffix in ["-wal", "-shm"] {
            let mut side = db.clone().into_os_string();
            side.push(suffix);
            let side = PathBuf::from(side);
            items.push(Item {
                existed: side.exists(),
                old: sibling(&side, OLD_PREFIX, &staged.id),
                target: side,
                staged: None,
            });
        }
        items.push(Item {
            target: db.clone(),
            staged: Some(staged.staging_db.clone()),
            old: sibling(db, OLD_PREFIX, &staged.id),
            existed: db.exists(),
        });
        let present = summary.manifest.assets;
        for (folder, dir) in &staged.staged_assets {
            let in_backup = match folder {
                AssetFolder::ProfilePictures => present.profile_pictures,
                AssetFolder::CustomIcons => present.custom_icons,
                AssetFolder::Favicon => present.favicon,
            } || dir.exists();
            // A folder the backup does not have is left as it is.
            if !in_backup {
                continue;
            }
            std::fs::create_dir_all(dir).map_err(io_at(dir))?;
            let target = self.layout.asset_dir(*folder).to_path_buf();
            if let Some(p) = target.parent() {
                std::fs::create_dir_all(p).map_err(io_at(p))?;
            }
            items.push(Item {
                existed: target.exists(),
                old: sibling(&target, OLD_PREFIX, &staged.id),
                target,
                staged: Some(dir.clone()),
            });
        }
        let mut cleanup = self.layout.caches.clone();
        cleanup.push(parent(&staged.staging_db));
        let mut journal = Journal { state: State::Committing, items, cleanup };
        let path = self.layout.journal();
        journal.write(&path).map_err(io_at(&path))?;
        failpoint("restore:journal-written");
        if let Err(e) = journal::apply(&journal.items, failpoint) {
            let _ = journal::roll_back(&journal.items);
            let _ = std::fs::remove_file(&path);
            return Err(RestoreError::Io { path: db.display().to_string(), source: e });
        }
        journal.state = State::Committed;
        journal.write(&path).map_err(io_at(&path))?;
        failpoint("restore:committed");
        journal::finish(&journal).map_err(io_at(&path))?;
        std::fs::remove_file(&path).map_err(io_at(&path))?;
        journal::sync_parent(&path);
        Ok(summary)
    }
}

/// Checks the archive and writes its entries into staging, verifying each
/// entry's CRC-32, size and (when listed) SHA-256 as it goes.
fn extract(
    archive: &Path,
    db: &Path,
    assets: &[(AssetFolder, PathBuf)],
    limits: RestoreLimits,
) -> Result<(Manifest, usize), RestoreError> {
    let file = File::open(archive).map_err(io_at(archive))?;
    let read_limits = ReadLimits { max_entries: limits.max_entries as u64, ..ReadLimits::default() };
    let mut zip = ZipReader::open(BufReader::new(file), read_limits)?;
    let declared: Vec<DeclaredEntry> = zip
        .entries()
        .iter()
        .map(|e| DeclaredEntry {
            name: e.name.clone(),
            size: e.size,
            compressed_size: e.compressed_size,
            is_symlink: e.is_symlink,
            is_dir: e.is_dir,
        })
        .collect();
    let targets = backup_domain::restore::check_entries(&declared, limits)?;
    if zip.find(DATABASE_ENTRY).is_none() {
        return Err(RestoreError::MissingDatabase);
    }
    let manifest_index = zip.find(MANIFEST_ENTRY).ok_or(RestoreError::MissingManifest)?;
    if zip.entries()[manifest_index].size > Manifest::MAX_BYTES as u64 {
        return Err(ManifestError::TooLarge.into());
    }
    let mut bytes = Vec::new();
    copy_entry(&mut zip, manifest_index, &mut bytes)?;
    let manifest = Manifest::from_json(&bytes)?;

    let mut count = 0;
    for (index, target) in targets.iter().enumerate() {
        let name = zip.entries()[index].name.clone();
        let dest = match target {
            EntryTarget::Database => db.to_path_buf(),
            EntryTarget::Asset { folder, file } => {
                let dir = &assets.iter().find(|(f, _)| f == folder).map(|(_, d)| d.clone()).unwrap_or_default();
                std::fs::create_dir_all(dir).map_err(io_at(dir))?;
                count += 1;
                dir.join(file)
            }
            EntryTarget::Manifest | EntryTarget::Unknown => continue,
        };
        let mut out = File::create_new(&dest).map_err(io_at(&dest))?;
        let mut hashing = Hashing { inner: &mut out, sha: Sha256::new(), size: 0 };
        copy_entry(&mut zip, index, &mut hashing)?;
        let (sha, size) = (hex::encode(hashing.sha.finalize()), hashing.size);
        out.sync_all().map_err(io_at(&dest))?;
        let listed = manifest.digest_of(&name);
        if listed.is_some_and(|l| l.size != size || !l.sha256.eq_ignore_ascii_case(&sha)) {
            return Err(RestoreError::Damaged { path: name, detail: "does not match the manifest's SHA-256".into() });
        }
    }
    for listed in manifest.entries.iter().flatten() {
        if zip.find(&listed.path).is_none() {
            return Err(RestoreError::Damaged {
                path: listed.path.clone(),
                detail: "is missing from the archive".into(),
            });
        }
    }
    for (_, dir) in assets {
        journal::sync_dir(dir);
    }
    Ok((manifest, count))
}

fn copy_entry<R: io::Read + io::Seek>(
    zip: &mut ZipReader<R>,
    index: usize,
    out: &mut impl Write,
) -> Result<u64, RestoreError> {
    let name = zip.entries()[index].name.clone();
    let damaged = |detail: String| RestoreError::Damaged { path: name.clone(), detail };
    let mut reader = zip.open_entry(index).map_err(|e| damaged(e.to_string()))?;
    io::copy(&mut reader, out).map_err(|e| damaged(e.to_string()))
}

struct Hashing<'a, W> {
    inner: &'a mut W,
    sha: Sha256,
    size: u64,
}

impl<W: Write> Write for Hashing<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
