//! The restore use case over test doubles: the order of its steps, what it
//! holds while it runs, and what it refuses.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::executor::block_on;
use time::macros::datetime;

use super::*;
use crate::busy::BusyFlag;
use crate::encryption::{KeyStoreOutcome, NoEnvelope};
use crate::error::DbError;
use crate::kind::BackupKind;
use crate::memory::MemoryStore;
use crate::ports::{
    BackupStore, Database, Download, Held, InstanceLock, LiveDatabase, Progress, Snapshot, SnapshotKind,
};
use crate::schedule::Schedule;
use crate::testkit::{FakeArchiver, FakeSnapshot, FixedClock, ProcessLock, Recorder};

/// What the doubles saw, in order.
#[derive(Default)]
struct Log(Mutex<Vec<String>>);

impl Log {
    fn push(&self, s: impl Into<String>) {
        self.0.lock().unwrap().push(s.into());
    }
    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

struct World {
    log: Arc<Log>,
    live: Mutex<LiveDatabase>,
    staged_version: i64,
    tables: Vec<String>,
    tag_ok: bool,
    users: Mutex<Vec<bool>>,
    busy: BusyFlag,
    lock: Arc<ProcessLock>,
}

impl World {
    fn new() -> Arc<World> {
        Arc::new(World {
            log: Arc::default(),
            live: Mutex::new(LiveDatabase::Readable { user_version: 48 }),
            staged_version: 48,
            tables: vec!["users".into(), "system_config".into()],
            tag_ok: true,
            users: Mutex::new(Vec::new()),
            busy: BusyFlag::default(),
            lock: Arc::default(),
        })
    }
}

struct Db(Arc<World>);

#[async_trait]
impl Database for Db {
    async fn snapshot(&self, kind: SnapshotKind) -> Result<Box<dyn Snapshot>, DbError> {
        let w = &self.0;
        w.log.push(format!("snapshot {kind:?} busy={} locked={}", w.busy.is_busy(), w.lock.is_held()));
        match &*w.live.lock().unwrap() {
            LiveDatabase::Damaged(why) => Err(DbError::NotSqlite(why.clone())),
            _ => Ok(Box::new(FakeSnapshot)),
        }
    }
    async fn raw_copy(&self, why: &str) -> Result<Box<dyn Snapshot>, DbError> {
        self.0.log.push("raw copy");
        Ok(Box::new(RawSnapshot(why.to_owned())))
    }
    async fn state(&self) -> LiveDatabase {
        self.0.live.lock().unwrap().clone()
    }
    async fn schedule(&self) -> Result<Option<Schedule>, DbError> {
        Ok(None)
    }
    async fn save_schedule(&self, _: &Schedule) -> Result<(), DbError> {
        Ok(())
    }
}

struct RawSnapshot(String);

#[async_trait]
impl Snapshot for RawSnapshot {
    fn user_version(&self) -> Option<i64> {
        None
    }
    fn size(&self) -> u64 {
        3
    }
    async fn open(&self) -> Result<Box<dyn futures_io::AsyncRead + Send + Unpin>, DbError> {
        Ok(Box::new(futures::io::Cursor::new(b"raw".to_vec())))
    }
    fn damaged(&self) -> Option<&str> {
        Some(&self.0)
    }
}

struct Entries;

impl ArchiveEntries for Entries {
    fn entries(&self) -> &[DeclaredEntry] {
        &[]
    }
    fn archive_size(&self) -> u64 {
        0
    }
    fn copy_entry(&mut self, _: usize, _: &mut dyn std::io::Write) -> Result<u64, EntryError> {
        Ok(0)
    }
}

struct Tag(Arc<World>);

#[async_trait]
impl Authenticity for Tag {
    async fn check(self: Box<Self>) -> Result<(), OpenError> {
        self.0.log.push("tag");
        if self.0.tag_ok { Ok(()) } else { Err(OpenError::Tampered) }
    }
}

struct Reader(Arc<World>);

#[async_trait]
impl BackupReader for Reader {
    async fn format(&self, _: &Arc<dyn BackupFile>) -> Result<BackupFormat, OpenError> {
        Ok(BackupFormat::Encrypted)
    }
    async fn open(&self, file: Arc<dyn BackupFile>, password: Option<&Password>) -> Result<OpenedBackup, OpenError> {
        self.0.log.push(format!("open {}", file.describe()));
        match password.map(Password::expose) {
            None => Err(OpenError::PasswordRequired),
            Some("right password") => Ok(OpenedBackup {
                format: BackupFormat::Encrypted,
                entries: Box::new(Entries),
                authenticity: Box::new(Tag(self.0.clone())),
            }),
            Some(_) => Err(OpenError::WrongPassword),
        }
    }
}

struct StagedFiles(Manifest);

impl Staged for StagedFiles {
    fn database(&self) -> &Path {
        Path::new("staged.db")
    }
    fn manifest(&self) -> &Manifest {
        &self.0
    }
    fn assets(&self) -> usize {
        2
    }
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }
}

struct Files(Arc<World>);

fn manifest() -> Manifest {
    Manifest::new(
        BackupKind::Manual,
        datetime!(2026-11-20 03:00 UTC),
        crate::Encryption::EnvelopeV1,
        Default::default(),
    )
}

#[async_trait]
impl InstanceFiles for Files {
    async fn stage(&self, _: Box<dyn ArchiveEntries>, _: RestoreLimits) -> Result<Box<dyn Staged>, StageError> {
        self.0.log.push("stage");
        Ok(Box::new(StagedFiles(manifest())))
    }
    async fn stage_for_check(
        &self,
        _: Box<dyn ArchiveEntries>,
        _: RestoreLimits,
    ) -> Result<Box<dyn Staged>, StageError> {
        self.0.log.push("stage for check");
        Ok(Box::new(StagedFiles(manifest())))
    }
    async fn commit(&self, _: Box<dyn Staged>, _held: Arc<dyn Held>) -> Result<(), StageError> {
        let w = &self.0;
        w.log.push(format!("commit busy={} locked={}", w.busy.is_busy(), w.lock.is_held()));
        Ok(())
    }
}

struct DbFiles(Arc<World>);

#[async_trait]
impl DatabaseFiles for DbFiles {
    async fn check(&self, path: &Path) -> Result<DatabaseFacts, DbError> {
        self.0.log.push(format!("check {}", path.display()));
        Ok(DatabaseFacts { user_version: self.0.staged_version, tables: self.0.tables.clone() })
    }
    async fn post_restore(&self, _: &Path, plan: &PostRestorePlan<'_>) -> Result<PostRestoreReport, DbError> {
        self.0.log.push("post-restore");
        let row = crate::encryption::KeyStoreRow {
            enabled: true,
            mbk_password: "p".into(),
            mbk_server: "foreign".into(),
            kek_salt: "s".into(),
            kdf_iterations: 1,
        };
        Ok(PostRestoreReport {
            tables_purged: plan.purge.iter().map(|t| (*t).to_owned()).collect(),
            key_store: (plan.key_store)(&row).outcome(),
            ..PostRestoreReport::default()
        })
    }
}

struct Vault;

#[async_trait]
impl KeyVault for Vault {
    fn has_server_key(&self) -> bool {
        true
    }
    fn opens_with_server_key(&self, row: &KeyStoreRow) -> bool {
        row.mbk_server == "ours"
    }
    fn rewrap_for_server(&self, _: &KeyStoreRow, password: &Password) -> Option<String> {
        (password.expose() == "right password").then(|| "ours".to_owned())
    }
    fn new_row(&self, _: &Password) -> Result<KeyStoreRow, crate::encryption::VaultError> {
        unimplemented!("not used by restore")
    }
    fn password_opens(&self, _: &KeyStoreRow, _: &Password) -> bool {
        unimplemented!("not used by restore")
    }
    fn with_new_password(&self, _: &KeyStoreRow, _: &Password) -> Result<KeyStoreRow, crate::encryption::VaultError> {
        unimplemented!("not used by restore")
    }
    async fn reheader(&self, _: &KeyStoreRow, _: Download, _: &mut dyn crate::ports::Upload) -> Result<(), String> {
        unimplemented!("not used by restore")
    }
}

struct Accounts(Arc<World>);

#[async_trait]
impl Sessions for Accounts {
    async fn session_user(&self, _: &str, _: i64) -> Result<Option<crate::auth::SessionUser>, DbError> {
        Ok(None)
    }
    async fn any_user(&self) -> Result<bool, DbError> {
        let mut answers = self.0.users.lock().unwrap();
        self.0.log.push("any user?");
        Ok(if answers.is_empty() { false } else { answers.remove(0) })
    }
}

struct NoScratch;

#[async_trait]
impl Scratch for NoScratch {
    async fn keep(
        &self,
        reader: &mut (dyn futures_io::AsyncRead + Send + Unpin),
    ) -> Result<Arc<dyn BackupFile>, StoreError> {
        let mut bytes = Vec::new();
        futures::io::AsyncReadExt::read_to_end(reader, &mut bytes)
            .await
            .map_err(|e| StoreError::Other(e.to_string()))?;
        Ok(Arc::new(bytes))
    }
}

fn restorer(w: &Arc<World>, store: &MemoryStore) -> Restorer {
    let creator = Creator {
        db: Arc::new(Db(w.clone())),
        store: Arc::new(store.clone()),
        archiver: Arc::new(FakeArchiver { fail: false }),
        clock: Arc::new(FixedClock::at(datetime!(2026-11-26 03:00 UTC))),
        progress: Arc::new(Recorder::default()) as Arc<dyn Progress>,
        busy: w.busy.clone(),
        envelope: Arc::new(NoEnvelope),
        replicas: Vec::new(),
        lock: w.lock.clone(),
        lock_wait: std::time::Duration::ZERO,
    };
    Restorer {
        creator,
        reader: Arc::new(Reader(w.clone())),
        instance: Arc::new(Files(w.clone())),
        db_files: Arc::new(DbFiles(w.clone())),
        cipher: None,
        vault: Arc::new(Vault),
        accounts: Arc::new(Accounts(w.clone())),
        scratch: Arc::new(NoScratch),
        post_restore_deadline: std::time::Duration::from_secs(60),
    }
}

fn request(password: &str) -> RestoreRequest {
    RestoreRequest {
        source: Source::File(Arc::new(b"FRMRBKUP".to_vec())),
        password: Some(Password::new(password)),
        limits: RestoreLimits::default(),
        only_without_users: false,
    }
}

fn kinds(store: &MemoryStore) -> Vec<String> {
    block_on(store.list()).unwrap().iter().map(|b| b.name.to_string()).collect()
}

#[test]
fn one_hold_covers_the_whole_restore_safety_backup_included() {
    let w = World::new();
    let store = MemoryStore::default();
    let r = restorer(&w, &store);
    let summary = block_on(r.restore(request("right password"))).unwrap();
    assert_eq!(
        w.log.all(),
        [
            "open memory",
            "stage",
            "check staged.db",
            "post-restore",
            "tag",
            "snapshot SameInstance busy=true locked=true",
            "commit busy=true locked=true",
        ]
    );
    assert!(matches!(&summary.safety, SafetyBackup::Made(n) if n.kind() == BackupKind::Safety));
    assert_eq!(kinds(&store).len(), 1, "one safety backup");
    // The key store row opened with the backup's password is rewrapped.
    assert_eq!(summary.post.key_store, KeyStoreOutcome::Rewrapped);
    assert!(!w.busy.is_busy() && !w.lock.is_held(), "released after the restore");
}

#[test]
fn nothing_is_saved_or_swapped_before_the_tag_verifies() {
    let mut w = World::new();
    Arc::get_mut(&mut w).unwrap().tag_ok = false;
    let store = MemoryStore::default();
    let err = block_on(restorer(&w, &store).restore(request("right password"))).unwrap_err();
    assert!(matches!(err, RestoreError::Open(OpenError::Tampered)), "{err}");
    assert!(!w.log.all().iter().any(|l| l.starts_with("commit") || l.starts_with("snapshot")), "{:?}", w.log.all());
    assert!(kinds(&store).is_empty());
}

#[test]
fn wrong_or_missing_passwords_stop_before_anything_is_staged() {
    let w = World::new();
    let r = restorer(&w, &MemoryStore::default());
    assert!(matches!(block_on(r.restore(request("nope"))), Err(RestoreError::Open(OpenError::WrongPassword))));
    let mut req = request("");
    req.password = None;
    assert!(matches!(block_on(r.restore(req)), Err(RestoreError::Open(OpenError::PasswordRequired))));
    assert!(!w.log.all().contains(&"stage".to_owned()));
}

#[test]
fn setup_restore_is_refused_when_a_user_appears_before_the_swap() {
    let w = World::new();
    // No user at the first look, one by the last (an admin created meanwhile).
    *w.users.lock().unwrap() = vec![false, true];
    let store = MemoryStore::default();
    let mut req = request("right password");
    req.only_without_users = true;
    let err = block_on(restorer(&w, &store).restore(req)).unwrap_err();
    assert!(matches!(err, RestoreError::SetupClosed), "{err}");
    let log = w.log.all();
    assert_eq!(log.iter().filter(|l| *l == "any user?").count(), 2);
    assert!(!log.iter().any(|l| l.starts_with("commit")), "{log:?}");
}

#[test]
fn a_damaged_live_database_is_kept_raw_and_does_not_block_the_restore() {
    let mut w = World::new();
    // A backup from any version restores over a database whose version is unknown.
    Arc::get_mut(&mut w).unwrap().staged_version = 99;
    *w.live.lock().unwrap() = LiveDatabase::Damaged("framerr.db is not a SQLite database".into());
    let store = MemoryStore::default();
    let summary = block_on(restorer(&w, &store).restore(request("right password"))).unwrap();
    match &summary.safety {
        SafetyBackup::Raw { name, why } => {
            assert_eq!(name.kind(), BackupKind::Safety);
            assert!(why.contains("not a SQLite database"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    // Copied raw without trying to open it.
    assert!(w.log.all().contains(&"raw copy".to_owned()));
    assert!(!w.log.all().iter().any(|l| l.starts_with("snapshot")), "{:?}", w.log.all());
}

#[test]
fn newer_and_foreign_databases_are_refused_by_restore_and_verify_alike() {
    let mut w = World::new();
    Arc::get_mut(&mut w).unwrap().staged_version = 49;
    let r = restorer(&w, &MemoryStore::default());
    assert!(matches!(block_on(r.restore(request("right password"))), Err(RestoreError::TooNew(_))));
    let pw = Password::new("right password");
    let source = || Source::File(Arc::new(b"FRMRBKUP".to_vec()));
    assert!(matches!(block_on(r.verify(source(), Some(&pw))), Err(RestoreError::TooNew(_))));

    let mut w = World::new();
    Arc::get_mut(&mut w).unwrap().tables = vec!["users".into()];
    let r = restorer(&w, &MemoryStore::default());
    let err = block_on(r.restore(request("right password"))).unwrap_err();
    assert!(err.to_string().contains("not a Framerr database"), "{err}");
    assert!(matches!(block_on(r.verify(source(), Some(&pw))), Err(RestoreError::NotFramerr(_))));
    assert!(!w.log.all().iter().any(|l| l.starts_with("commit")));

    // A good one verifies, and verify never takes the instance.
    let w = World::new();
    let r = restorer(&w, &MemoryStore::default());
    let report = block_on(r.verify(source(), Some(&pw))).unwrap();
    assert_eq!((report.user_version, report.live_version), (48, Some(48)));
    assert!(w.log.all().contains(&"stage for check".to_owned()));
}

#[test]
fn another_holder_makes_restore_busy_and_a_stored_name_is_fetched() {
    let w = World::new();
    let store = MemoryStore::default();
    let r = restorer(&w, &store);
    let held = block_on(w.lock.acquire(std::time::Duration::ZERO)).unwrap();
    assert!(matches!(block_on(r.restore(request("right password"))), Err(RestoreError::Busy(_))));
    drop(held);
    let missing = BackupName::parse("framerr-manual-2026-01-01T00-00-00.framerr-backup").unwrap();
    let mut req = request("right password");
    req.source = Source::Stored(missing.clone());
    assert!(matches!(block_on(r.restore(req)), Err(RestoreError::NotFound(_))));
    let mut upload = block_on(store.create(&missing)).unwrap();
    block_on(futures::io::AsyncWriteExt::write_all(&mut upload, b"FRMRBKUP...")).unwrap();
    block_on(upload.commit()).unwrap();
    let mut req = request("right password");
    req.source = Source::Stored(missing);
    block_on(r.restore(req)).unwrap();
    assert!(w.log.all().iter().any(|l| l == "open memory"));
}
