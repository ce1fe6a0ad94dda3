//! The live Framerr instance's files: the `InstanceFiles` port (staging and
//! the journaled swap) and the `InstanceLock` port (one exclusive lock per
//! instance, and the crash recovery that runs under it).
//!
//! A restore never writes over live data in place (Framerr does). It:
//! 1. checks the whole archive before extracting anything, and extracts
//!    into staging beside each live path (same file system, so the final
//!    renames are atomic), verifying every entry as it goes;
//! 2. (the use case checks and post-processes the staged database, and
//!    takes a safety backup);
//! 3. writes a journal, then renames: the old database (with its `-wal` and
//!    `-shm`) and each replaced asset folder aside, the staged ones in;
//! 4. marks the journal committed, deletes the old copies and the caches.
//!
//! While another process (Framerr) has the live database open, its files
//! are never unlinked, renamed over or truncated: that process would go on
//! reading and writing the deleted files. Step 3 then moves only the asset
//! folders, and the staged database is written into the live file through
//! SQLite ([`LiveWriter`]), in one transaction that also records the
//! restore's id; that transaction is the commit point, and recovery asks
//! the database which side of it a crash fell on.
//!
//! Whoever takes the instance lock next finishes or rolls back a restore
//! whose process died, and removes the staging of dead processes. A live
//! restore holds the lock, so its journal is never acted on by another.

mod journal;

use std::any::Any;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use backup_domain::manifest::{DATABASE_ENTRY, MANIFEST_ENTRY};
use backup_domain::ports::{Held, InstanceLock, LockError};
use backup_domain::restore::{
    ArchiveEntries, DatabaseSwap, EntryError, EntryTarget, InstanceFiles, LiveWriter, RestoreLimits, StageError,
    Staged, check_entries,
};
use backup_domain::{AssetFolder, AssetPaths, Manifest, ManifestError};
use backup_fsutil::temp::{JOURNAL_PREFIX, OWNER_PREFIX, SCRATCH_PREFIX, STAGING_PREFIX};
use backup_fsutil::{FileLock, failpoint, is_full, parent, remove_any, remove_stale_temporaries, sync_dir};

use journal::{DatabaseMove, FileId, Item, Journal, JournalError, Paths, Role, State};

const JOURNAL: &str = ".framerr-restore-journal.json";
const LOCK: &str = ".framerr-backup.lock";
/// Beside it: held while pins change and while retention reads them.
const PINS_LOCK: &str = ".framerr-backup.pins.lock";
/// Old copies of replaced files, kept until the journal is finished.
pub(crate) const OLD_PREFIX: &str = ".framerr-old-";
pub(crate) const DATABASE_FILE: &str = "framerr.db";

/// Where a Framerr instance keeps what a backup holds.
#[derive(Debug, Clone)]
pub struct Layout {
    pub db: PathBuf,
    pub assets: AssetPaths,
    /// Deleted after a restore (spec section 1).
    pub caches: Vec<PathBuf>,
    /// Where verify extracts the database it checks.
    pub scratch: PathBuf,
}

impl Layout {
    fn data_dir(&self) -> PathBuf {
        parent(&self.db)
    }

    fn journal(&self) -> PathBuf {
        self.data_dir().join(JOURNAL)
    }

    pub(crate) fn db_side(&self, suffix: &str) -> PathBuf {
        let mut side = self.db.clone().into_os_string();
        side.push(suffix);
        PathBuf::from(side)
    }

    pub(crate) fn staging_dir(&self, id: &str) -> PathBuf {
        self.data_dir().join(format!("{STAGING_PREFIX}{id}-db"))
    }

    pub(crate) fn asset_staging(&self, folder: AssetFolder, id: &str) -> PathBuf {
        parent(self.assets.get(folder)).join(format!("{STAGING_PREFIX}{id}-{}", folder.prefix()))
    }

    /// Every folder that may hold our staging and old copies.
    fn working_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = vec![self.data_dir()];
        for (_, path) in self.assets.iter() {
            let dir = parent(path);
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        dirs
    }
}

fn io_error(path: &Path, e: io::Error) -> StageError {
    StageError::Io { path: path.display().to_string(), detail: e.to_string(), full: is_full(&e) }
}

/// The instance's files on the local file system.
#[derive(Clone)]
pub struct FsInstance {
    layout: Layout,
    swap: SwapGate,
    writer: Option<Arc<dyn LiveWriter>>,
}

impl std::fmt::Debug for FsInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FsInstance").field("layout", &self.layout).finish_non_exhaustive()
    }
}

/// Held for writing while files are swapped (commit, recovery), so that
/// this process's own database connections, which hold it for reading,
/// never open the database halfway through a swap.
pub type SwapGate = Arc<tokio::sync::RwLock<()>>;

impl FsInstance {
    pub fn new(layout: Layout) -> Self {
        FsInstance { layout, swap: SwapGate::default(), writer: None }
    }

    /// Writes the database into the live file while another process has it
    /// open (without one, the database file is always replaced).
    pub fn with_live_writer(mut self, writer: Arc<dyn LiveWriter>) -> Self {
        self.writer = Some(writer);
        self
    }

    /// Swaps wait for the readers that hold `swap`, and hold them off.
    pub fn with_swap_gate(mut self, swap: SwapGate) -> Self {
        self.swap = swap;
        self
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The lock that serializes pin changes with retention (short: a
    /// pin never waits for a whole backup).
    pub fn pins_lock(&self) -> PinsLock {
        PinsLock { path: self.layout.data_dir().join(PINS_LOCK) }
    }

    /// The instance lock (see [`InstanceLock`]).
    pub fn lock(&self) -> FsInstanceLock {
        FsInstanceLock { layout: self.layout.clone(), swap: self.swap.clone(), writer: self.writer.clone() }
    }
}

/// Where staging writes.
enum Destination {
    /// Beside the live files, every entry.
    Instance,
    /// In scratch space, the database only (assets are checked, not kept).
    Scratch,
}

/// A staged restore (or a scratch check); its files are removed when it
/// is dropped, unless a commit moved them in.
#[derive(Debug)]
struct StagedFiles {
    layout: Layout,
    id: String,
    db: PathBuf,
    /// Folders to remove on drop.
    dirs: Vec<PathBuf>,
    manifest: Manifest,
    assets: usize,
    /// Asset folders the archive had files for: only those are replaced.
    folders: Vec<AssetFolder>,
}

impl Drop for StagedFiles {
    fn drop(&mut self) {
        for dir in &self.dirs {
            let _ = remove_any(dir);
        }
    }
}

impl Staged for StagedFiles {
    fn database(&self) -> &Path {
        &self.db
    }
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    fn assets(&self) -> usize {
        self.assets
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

/// A writer that hashes what passes through it.
struct Hashing<'a> {
    inner: &'a mut dyn Write,
    sha: Sha256,
    size: u64,
}

impl Write for Hashing<'_> {
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

fn damaged(name: &str, detail: impl ToString) -> StageError {
    StageError::Damaged { path: name.to_owned(), detail: detail.to_string() }
}

/// Checks the archive, then writes its entries where `staged` says,
/// verifying each entry's CRC-32, size and (when listed) SHA-256 as it goes.
fn extract(
    archive: &mut dyn ArchiveEntries,
    limits: RestoreLimits,
    destination: &Destination,
    staged: &mut StagedFiles,
) -> Result<(), StageError> {
    let targets = check_entries(archive.entries(), archive.archive_size(), limits)?;
    let names: Vec<(String, bool)> = archive.entries().iter().map(|e| (e.name.clone(), e.is_dir)).collect();
    let find = |name: &str| names.iter().position(|(n, dir)| n == name && !dir);
    find(DATABASE_ENTRY).ok_or(StageError::MissingDatabase)?;
    let manifest_index = find(MANIFEST_ENTRY).ok_or(StageError::MissingManifest)?;
    if archive.entries()[manifest_index].size > Manifest::MAX_BYTES as u64 {
        return Err(ManifestError::TooLarge.into());
    }
    let mut bytes = Vec::new();
    archive.copy_entry(manifest_index, &mut bytes).map_err(|e| match e {
        EntryError::Damaged(d) => damaged(MANIFEST_ENTRY, d),
        EntryError::Write(e) => io_error(Path::new(MANIFEST_ENTRY), e),
    })?;
    let manifest = Manifest::from_json(&bytes)?;

    for (index, target) in targets.iter().enumerate() {
        let name = names[index].0.clone();
        let dest = match (target, destination) {
            (EntryTarget::Database, _) => Some(staged.db.clone()),
            (EntryTarget::Asset { folder, file }, Destination::Instance) => {
                let dir = staged.layout.asset_staging(*folder, &staged.id);
                if !staged.folders.contains(folder) {
                    std::fs::create_dir(&dir).map_err(|e| io_error(&dir, e))?;
                    staged.dirs.push(dir.clone());
                    staged.folders.push(*folder);
                }
                staged.assets += 1;
                Some(dir.join(file))
            }
            (EntryTarget::Asset { .. }, Destination::Scratch) => None,
            (EntryTarget::Manifest | EntryTarget::Unknown, _) => continue,
        };
        let (sha, size) = match &dest {
            Some(dest) => {
                let mut file = File::create_new(dest).map_err(|e| io_error(dest, e))?;
                let mut out = io::BufWriter::with_capacity(256 * 1024, &mut file);
                let digest = copy_hashing(archive, index, &name, &mut out, dest)?;
                out.flush().map_err(|e| io_error(dest, e))?;
                drop(out);
                if matches!(destination, Destination::Instance) {
                    file.sync_all().map_err(|e| io_error(dest, e))?;
                }
                digest
            }
            None => copy_hashing(archive, index, &name, &mut io::sink(), Path::new(&name))?,
        };
        let listed = manifest.digest_of(&name);
        if listed.is_some_and(|l| l.size != size || !l.sha256.eq_ignore_ascii_case(&sha)) {
            return Err(damaged(&name, "does not match the manifest's SHA-256"));
        }
    }
    for listed in manifest.entries.iter().flatten() {
        if find(&listed.path).is_none() {
            return Err(damaged(&listed.path, "is missing from the archive"));
        }
    }
    if matches!(destination, Destination::Instance) {
        for folder in &staged.folders {
            sync_dir(&staged.layout.asset_staging(*folder, &staged.id));
        }
        sync_dir(&parent(&staged.db));
    }
    staged.manifest = manifest;
    Ok(())
}

fn copy_hashing(
    archive: &mut dyn ArchiveEntries,
    index: usize,
    name: &str,
    out: &mut dyn Write,
    dest: &Path,
) -> Result<(String, u64), StageError> {
    let mut hashing = Hashing { inner: out, sha: Sha256::new(), size: 0 };
    archive.copy_entry(index, &mut hashing).map_err(|e| match e {
        EntryError::Damaged(detail) => damaged(name, detail),
        EntryError::Write(e) => io_error(dest, e),
    })?;
    Ok((hex::encode(hashing.sha.finalize()), hashing.size))
}

impl FsInstance {
    async fn stage_into(
        &self,
        mut archive: Box<dyn ArchiveEntries>,
        limits: RestoreLimits,
        destination: Destination,
    ) -> Result<Box<dyn Staged>, StageError> {
        let layout = self.layout.clone();
        tokio::task::spawn_blocking(move || {
            let base = match destination {
                Destination::Instance => layout.data_dir(),
                Destination::Scratch => layout.scratch.clone(),
            };
            std::fs::create_dir_all(&base).map_err(|e| io_error(&base, e))?;
            let mut dirs: Vec<PathBuf> = vec![base.clone()];
            if matches!(destination, Destination::Instance) {
                for (_, path) in layout.assets.iter() {
                    let dir = parent(path);
                    std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
                    dirs.push(dir);
                }
            }
            let refs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
            let id = backup_fsutil::temp::new_id(&refs).map_err(|e| io_error(&base, e))?;
            let folder = match destination {
                Destination::Instance => layout.staging_dir(&id),
                Destination::Scratch => base.join(format!("{SCRATCH_PREFIX}{id}-verify")),
            };
            // Owns every staging path from here: dropped on any error, it
            // removes them.
            let mut staged = StagedFiles {
                db: folder.join(DATABASE_FILE),
                dirs: vec![folder.clone()],
                layout,
                id,
                manifest: Manifest::new(
                    backup_domain::BackupKind::Manual,
                    time::OffsetDateTime::UNIX_EPOCH,
                    backup_domain::Encryption::Plaintext,
                    Default::default(),
                ),
                assets: 0,
                folders: Vec::new(),
            };
            std::fs::create_dir(&folder).map_err(|e| io_error(&folder, e))?;
            extract(archive.as_mut(), limits, &destination, &mut staged)?;
            failpoint("restore:staged");
            Ok(Box::new(staged) as Box<dyn Staged>)
        })
        .await
        .map_err(|e| StageError::Io { path: "staging".into(), detail: e.to_string(), full: false })?
    }
}

#[async_trait]
impl InstanceFiles for FsInstance {
    async fn stage(
        &self,
        archive: Box<dyn ArchiveEntries>,
        limits: RestoreLimits,
    ) -> Result<Box<dyn Staged>, StageError> {
        self.stage_into(archive, limits, Destination::Instance).await
    }

    async fn stage_for_check(
        &self,
        archive: Box<dyn ArchiveEntries>,
        limits: RestoreLimits,
    ) -> Result<Box<dyn Staged>, StageError> {
        self.stage_into(archive, limits, Destination::Scratch).await
    }

    async fn commit(&self, staged: Box<dyn Staged>, held: Arc<dyn Held>) -> Result<DatabaseSwap, StageError> {
        let staged = staged.into_any().downcast::<StagedFiles>().map_err(|_| StageError::Io {
            path: "staging".into(),
            detail: "not staged here".into(),
            full: false,
        })?;
        // The swap runs to its end on its own thread, holding the lock,
        // even if the caller stops waiting (Ctrl-C, a client leaving).
        let (swap, writer) = (self.swap.clone(), self.writer.clone());
        tokio::task::spawn_blocking(move || {
            let _held = held;
            let _swapping = swap.blocking_write();
            commit(&staged, writer.as_deref(), &|point| {
                failpoint(point);
                false
            })
        })
        .await
        .map_err(|e| StageError::Io { path: "commit".into(), detail: e.to_string(), full: false })?
    }
}

/// The swap. `crash_at` says whether the process dies at a named point: a
/// failpoint aborts there for real; unit tests stop there instead, leaving
/// everything as a crash would, and recover.
fn commit(
    staged: &StagedFiles,
    writer: Option<&dyn LiveWriter>,
    crash_at: &dyn Fn(&str) -> bool,
) -> Result<DatabaseSwap, StageError> {
    let crashed = || StageError::Io { path: "commit".into(), detail: "crashed".into(), full: false };
    let layout = &staged.layout;
    // The writer, when another process has the live database open (when
    // that cannot be told, writing in place is the safe side).
    let written = writer.filter(|w| FileId::of(&layout.db).is_some() && w.opened_elsewhere().unwrap_or(true));
    let paths = Paths { layout, id: &staged.id };
    let item = |role| Item {
        role,
        was: FileId::of(&paths.target(role)),
        new: paths.staged(role).and_then(|s| FileId::of(&s)),
    };
    let mut items = Vec::new();
    if written.is_none() {
        for role in [Role::Wal, Role::Shm, Role::Database] {
            items.push(item(role));
        }
    }
    // A folder the backup has no files for is left as it is.
    for folder in &staged.folders {
        let role = Role::asset(*folder);
        let target = paths.target(role);
        let dir = parent(&target);
        std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
        items.push(item(role));
    }
    for role in items.iter().map(|i| i.role) {
        if let Some(staged) = paths.staged(role) {
            keep_owner(&paths.target(role), &staged);
        }
    }
    let path = layout.journal();
    let how = if written.is_some() { DatabaseMove::Written } else { DatabaseMove::Renamed };
    let journal = Journal::new(staged.id.clone(), how, items);
    journal.write(&path).map_err(|e| io_error(&path, e))?;
    if crash_at("restore:journal-written") {
        return Err(crashed());
    }
    let undo = |error: StageError| {
        let _ = journal::roll_back(&paths, &journal.items);
        let _ = std::fs::remove_file(&path);
        error
    };
    match journal::apply(&paths, &journal.items, crash_at) {
        Ok(()) => {}
        Err(journal::Stop::Crashed) => return Err(crashed()),
        Err(journal::Stop::Io(e)) => return Err(undo(io_error(&layout.db, e))),
    }
    match written {
        // The commit point is the database's own transaction.
        Some(writer) => {
            if let Err(e) = writer.write(&staged.db, &staged.id) {
                let full = matches!(e, backup_domain::DbError::Full(_));
                let detail = format!("writing the restored database into the one Framerr has open: {e}");
                return Err(undo(StageError::Io { path: layout.db.display().to_string(), detail, full }));
            }
            if crash_at("restore:database-written") {
                return Err(crashed());
            }
        }
        // The commit point is the journal saying so.
        None => {
            let committed = Journal { state: State::Committed, ..journal.clone() };
            if let Err(e) = committed.write(&path) {
                return Err(undo(io_error(&path, e)));
            }
        }
    }
    if crash_at("restore:committed") {
        return Err(crashed());
    }
    // Past the commit point the restore has happened: what is left is
    // tidying, which the next holder of the lock finishes if it fails now
    // (a full disk must not make a done restore look failed).
    let tidied = journal::finish(&paths, &journal.items).and_then(|()| std::fs::remove_file(&path));
    match tidied {
        Ok(()) => {
            backup_fsutil::sync_parent(&path);
            // Recovery no longer needs the mark.
            if let Some(writer) = written {
                unmark(writer, &staged.id);
            }
        }
        Err(e) => tracing::warn!(error = %e, "the restore is complete; its old copies are removed at the next command"),
    }
    Ok(if written.is_some() { DatabaseSwap::WrittenInPlace } else { DatabaseSwap::Replaced })
}

/// Takes a finished restore's mark away from the live database; one left
/// behind names a finished restore and harms nothing.
/// A restored file or folder keeps the owner and mode of what it replaces
/// (a folder's files take the folder's owner), so that Framerr, running as
/// its own user (`PUID`/`PGID`), can still write them when this process
/// runs as root. Not being allowed to give a file away (not root) is fine:
/// the file is this process's user's, as what it replaces was.
fn keep_owner(target: &Path, staged: &Path) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Ok(was) = std::fs::symlink_metadata(target) else { return };
    let (uid, gid) = (Some(was.uid()), Some(was.gid()));
    let _ = std::os::unix::fs::lchown(staged, uid, gid);
    let _ = std::fs::set_permissions(staged, std::fs::Permissions::from_mode(was.mode() & 0o7777));
    if was.is_dir()
        && let Ok(entries) = std::fs::read_dir(staged)
    {
        for entry in entries.flatten() {
            let _ = std::os::unix::fs::lchown(entry.path(), uid, gid);
        }
    }
}

fn unmark(writer: &dyn LiveWriter, id: &str) {
    if let Err(e) = writer.unmark(id) {
        tracing::debug!(error = %e, "the restore's mark stays in the database header");
    }
}

/// What recovery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovered {
    RolledBack,
    Finished,
}

/// The `InstanceLock` port: `flock` on `.framerr-backup.lock` beside the
/// database. Taking it recovers what a dead process left.
#[derive(Clone)]
pub struct FsInstanceLock {
    layout: Layout,
    swap: SwapGate,
    writer: Option<Arc<dyn LiveWriter>>,
}

impl std::fmt::Debug for FsInstanceLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FsInstanceLock").field("layout", &self.layout).finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct HeldLock(#[allow(dead_code)] FileLock);

impl Held for HeldLock {}

impl FsInstanceLock {
    /// Whether an interrupted restore or a dead process's staging may be
    /// waiting to be dealt with: a journal, or any of our working files.
    pub fn needs_recovery(&self) -> bool {
        if std::fs::symlink_metadata(self.layout.journal()).is_ok() {
            return true;
        }
        let ours = [STAGING_PREFIX, JOURNAL_PREFIX, OLD_PREFIX, OWNER_PREFIX];
        self.layout.working_dirs().iter().any(|dir| {
            std::fs::read_dir(dir).is_ok_and(|entries| {
                entries.flatten().any(|e| e.file_name().to_str().is_some_and(|n| ours.iter().any(|p| n.starts_with(p))))
            })
        })
    }

    /// Takes the lock (blocking), then recovers.
    pub fn acquire_blocking(&self, wait: Duration) -> Result<(FileLock, Option<Recovered>), LockError> {
        let dir = self.layout.data_dir();
        std::fs::create_dir_all(&dir).map_err(|e| LockError::Failed(format!("{}: {e}", dir.display())))?;
        let lock = backup_fsutil::lock_exclusive(&dir.join(LOCK), wait).map_err(|e| match e {
            backup_fsutil::LockError::Busy(path) => LockError::Busy(path.display().to_string()),
            other => LockError::Failed(other.to_string()),
        })?;
        let recovered =
            recover(&self.layout, &self.swap, self.writer.as_deref()).map_err(|e| LockError::Failed(e.to_string()))?;
        Ok((lock, recovered))
    }
}

#[async_trait]
impl InstanceLock for FsInstanceLock {
    async fn acquire(&self, wait: Duration) -> Result<Arc<dyn Held>, LockError> {
        let this = self.clone();
        let (lock, _) = tokio::task::spawn_blocking(move || this.acquire_blocking(wait))
            .await
            .map_err(|e| LockError::Failed(e.to_string()))??;
        Ok(Arc::new(HeldLock(lock)))
    }
}

/// `flock` on `.framerr-backup.pins.lock`; nothing to recover.
#[derive(Debug, Clone)]
pub struct PinsLock {
    path: PathBuf,
}

#[async_trait]
impl InstanceLock for PinsLock {
    async fn acquire(&self, wait: Duration) -> Result<Arc<dyn Held>, LockError> {
        let path = self.path.clone();
        let lock = tokio::task::spawn_blocking(move || {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| LockError::Failed(format!("{}: {e}", dir.display())))?;
            }
            backup_fsutil::lock_exclusive(&path, wait).map_err(|e| match e {
                backup_fsutil::LockError::Busy(path) => LockError::Busy(path.display().to_string()),
                other => LockError::Failed(other.to_string()),
            })
        })
        .await
        .map_err(|e| LockError::Failed(e.to_string()))??;
        Ok(Arc::new(HeldLock(lock)))
    }
}

/// Finishes or rolls back a restore a crash interrupted, and removes what
/// dead processes left. Only ever called with the lock held.
fn recover(
    layout: &Layout,
    swap: &SwapGate,
    writer: Option<&dyn LiveWriter>,
) -> Result<Option<Recovered>, JournalError> {
    let path = layout.journal();
    // A restore written in place whose mark can go once the journal is gone.
    let mut marked = None;
    let outcome = match Journal::read(&path)? {
        None => None,
        Some(j) => {
            let _swapping = swap.blocking_write();
            let paths = Paths { layout, id: &j.id };
            let io = |source| JournalError::Io { path: path.display().to_string(), source };
            if !journal::matches(&paths, &j.items) {
                return Err(JournalError::Foreign(path.display().to_string()));
            }
            // For a database written in place, the database itself says
            // whether the commit happened.
            let committed = match (j.state, j.database) {
                (State::Committed, _) => true,
                (State::Committing, DatabaseMove::Renamed) => false,
                (State::Committing, DatabaseMove::Written) => {
                    let writer = writer.ok_or_else(|| JournalError::Undecided {
                        path: path.display().to_string(),
                        why: "this build cannot read the database".into(),
                    })?;
                    writer
                        .holds(&j.id)
                        .map_err(|e| JournalError::Undecided { path: path.display().to_string(), why: e.to_string() })?
                }
            };
            if !committed {
                tracing::warn!("an interrupted restore is being rolled back; the instance is as it was before it");
                journal::roll_back(&paths, &j.items).map_err(io)?;
                Some(Recovered::RolledBack)
            } else {
                tracing::warn!("finishing a restore that completed before an interruption");
                journal::finish(&paths, &j.items).map_err(io)?;
                if j.database == DatabaseMove::Written {
                    marked = Some(j.id.clone());
                }
                Some(Recovered::Finished)
            }
        }
    };
    if outcome.is_some() {
        std::fs::remove_file(&path).map_err(|source| JournalError::Io { path: path.display().to_string(), source })?;
        backup_fsutil::sync_parent(&path);
    }
    if let (Some(id), Some(writer)) = (marked, writer) {
        unmark(writer, &id);
    }
    // No journal now: staging and scratch left by a dead process are
    // garbage. Old copies are not: they are only ever made after a journal
    // is written and gone before it is removed, so one found without a
    // journal is the instance's own files moved aside (a rollback that
    // failed, a journal deleted by hand, a folder copied mid-restore). They
    // stay, and are reported, until someone decides.
    for dir in layout.working_dirs() {
        remove_stale_temporaries(&dir, &[STAGING_PREFIX, JOURNAL_PREFIX, SCRATCH_PREFIX]);
        for old in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if old.file_name().to_string_lossy().starts_with(OLD_PREFIX) {
                tracing::warn!(
                    path = %old.path().display(),
                    "a copy an interrupted restore moved aside, with no journal to put it back: kept; move it back over the live file or folder, or delete it"
                );
            }
        }
    }
    remove_stale_temporaries(&layout.scratch, &[SCRATCH_PREFIX]);
    Ok(outcome)
}

#[cfg(test)]
mod tests;
