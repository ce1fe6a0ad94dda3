//! Doubles of every port restore runs on, sharing one [`World`] that
//! records what they saw and says how they behave.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use time::macros::datetime;

use crate::auth::{Account, Credentials, NewSession, SessionUser, Sessions};
use crate::busy::BusyFlag;
use crate::create::Creator;
use crate::encryption::{KeyStoreRow, KeyVault, NoEnvelope, VaultError};
use crate::error::{DbError, StoreError};
use crate::file::BackupFile;
use crate::kind::BackupKind;
use crate::manifest::Manifest;
use crate::memory::MemoryStore;
use crate::name::BackupFormat;
use crate::ports::{Database, Download, Held, LiveDatabase, Progress, Scratch, Snapshot, SnapshotKind, Upload};
use crate::restore::{
    ArchiveEntries, Authenticity, BackupKey, BackupReader, DatabaseFacts, DatabaseFiles, DatabaseSwap, DeclaredEntry,
    EntryError, InstanceFiles, OpenError, OpenedBackup, PostRestorePlan, PostRestoreReport, RestoreLimits, Restorer,
    StageError, Staged,
};
use crate::schedule::Schedule;
use crate::secret::Password;

use super::{FakeArchiver, FakeSnapshot, FixedClock, ProcessLock, Recorder};

/// What the doubles saw, in order.
#[derive(Default)]
pub struct Log(Mutex<Vec<String>>);

impl Log {
    pub fn push(&self, s: impl Into<String>) {
        self.0.lock().unwrap().push(s.into());
    }
    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// What the doubles share: what they saw, and how they behave.
pub struct World {
    pub log: Arc<Log>,
    pub live: Mutex<LiveDatabase>,
    pub staged_version: i64,
    pub tables: Vec<String>,
    pub tag_ok: bool,
    /// Answers of `any_user`, in turn; `false` when exhausted.
    pub users: Mutex<Vec<bool>>,
    /// Live sessions: token, user.
    pub sessions: Mutex<Vec<(String, SessionUser)>>,
    pub schedule: Mutex<Option<Schedule>>,
    /// Accounts sign-in finds; their password is the hash without "hash:".
    pub accounts: Mutex<Vec<Account>>,
    pub busy: BusyFlag,
    pub lock: Arc<ProcessLock>,
    /// Another process has the live database open: commit writes into it.
    pub framerr_running: bool,
}

impl World {
    pub fn new() -> Arc<World> {
        Arc::new(World {
            log: Arc::default(),
            live: Mutex::new(LiveDatabase::Readable { user_version: 48 }),
            staged_version: 48,
            tables: vec!["users".into(), "system_config".into()],
            tag_ok: true,
            users: Mutex::new(Vec::new()),
            sessions: Mutex::new(Vec::new()),
            schedule: Mutex::new(None),
            accounts: Mutex::new(Vec::new()),
            busy: BusyFlag::default(),
            lock: Arc::default(),
            framerr_running: false,
        })
    }
}

pub struct Db(pub Arc<World>);

#[async_trait]
impl Database for Db {
    async fn snapshot(&self, kind: SnapshotKind, _: crate::ports::Contents) -> Result<Box<dyn Snapshot>, DbError> {
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
        Ok(self.0.schedule.lock().unwrap().clone())
    }
    async fn save_schedule(&self, schedule: &Schedule) -> Result<(), DbError> {
        *self.0.schedule.lock().unwrap() = Some(schedule.clone());
        Ok(())
    }
}

pub struct RawSnapshot(pub String);

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

pub struct Entries;

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

pub struct Tag(pub Arc<World>);

#[async_trait]
impl Authenticity for Tag {
    async fn check(self: Box<Self>) -> Result<(), OpenError> {
        self.0.log.push("tag");
        if self.0.tag_ok { Ok(()) } else { Err(OpenError::Tampered) }
    }
}

pub struct Reader(pub Arc<World>);

#[async_trait]
impl BackupReader for Reader {
    async fn format(&self, _: &Arc<dyn BackupFile>) -> Result<BackupFormat, OpenError> {
        Ok(BackupFormat::Encrypted)
    }
    async fn open(&self, file: Arc<dyn BackupFile>, key: Option<&BackupKey>) -> Result<OpenedBackup, OpenError> {
        self.0.log.push(format!("open {}", file.describe()));
        let password = match key {
            Some(BackupKey::Password(p)) => Some(p),
            _ => None,
        };
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

pub struct StagedFiles(pub Manifest);

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

pub struct Files(pub Arc<World>);

pub fn manifest() -> Manifest {
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
    async fn commit(&self, _: Box<dyn Staged>, _held: Arc<dyn Held>) -> Result<DatabaseSwap, StageError> {
        let w = &self.0;
        w.log.push(format!("commit busy={} locked={}", w.busy.is_busy(), w.lock.is_held()));
        Ok(if w.framerr_running { DatabaseSwap::WrittenInPlace } else { DatabaseSwap::Replaced })
    }
}

pub struct DbFiles(pub Arc<World>);

#[async_trait]
impl DatabaseFiles for DbFiles {
    async fn computed(&self, _: &Path, _: std::time::Duration) -> Result<Vec<crate::restore::QueryObject>, DbError> {
        Ok(vec![])
    }
    async fn check(&self, path: &Path, count: &[&str], _: std::time::Duration) -> Result<DatabaseFacts, DbError> {
        self.0.log.push(format!("check {}", path.display()));
        let counts = count.iter().map(|t| ((*t).to_owned(), 2)).collect();
        Ok(DatabaseFacts { user_version: self.0.staged_version, tables: self.0.tables.clone(), counts })
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

pub struct Vault;

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
    fn new_row(&self, password: &Password) -> Result<KeyStoreRow, VaultError> {
        Ok(KeyStoreRow {
            enabled: true,
            mbk_password: format!("pw:{}", password.expose()),
            mbk_server: "ours".into(),
            kek_salt: "salt".into(),
            kdf_iterations: 1,
        })
    }
    fn password_opens(&self, row: &KeyStoreRow, password: &Password) -> bool {
        row.mbk_password == format!("pw:{}", password.expose())
    }
    fn with_new_password(&self, row: &KeyStoreRow, password: &Password) -> Result<KeyStoreRow, VaultError> {
        Ok(KeyStoreRow { mbk_password: format!("pw:{}", password.expose()), ..row.clone() })
    }
    async fn reheader(&self, _: &KeyStoreRow, mut from: Download, to: &mut dyn Upload) -> Result<(), String> {
        futures::io::copy(&mut from.reader, to).await.map(|_| ()).map_err(|e| e.to_string())
    }
}

pub struct Accounts(pub Arc<World>);

#[async_trait]
impl Sessions for Accounts {
    async fn session_user(&self, token: &str, _: i64) -> Result<Option<SessionUser>, DbError> {
        Ok(self.0.sessions.lock().unwrap().iter().find(|(t, _)| t == token).map(|(_, u)| u.clone()))
    }
    async fn any_user(&self) -> Result<bool, DbError> {
        let mut answers = self.0.users.lock().unwrap();
        self.0.log.push("any user?");
        Ok(if answers.is_empty() { false } else { answers.remove(0) })
    }
    async fn account(&self, username: &str) -> Result<Option<Account>, DbError> {
        Ok(self.0.accounts.lock().unwrap().iter().find(|a| a.username.eq_ignore_ascii_case(username)).cloned())
    }
    async fn create_session(&self, session: &NewSession) -> Result<(), DbError> {
        let admin = self.0.accounts.lock().unwrap().iter().any(|a| a.id == session.user_id && a.is_admin);
        let user = SessionUser { user_id: session.user_id.clone(), is_admin: admin };
        self.0.sessions.lock().unwrap().push((session.token.clone(), user));
        Ok(())
    }
    async fn delete_session(&self, token: &str) -> Result<(), DbError> {
        self.0.sessions.lock().unwrap().retain(|(t, _)| t != token);
        Ok(())
    }
}

pub struct NoScratch;

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

pub fn restorer(w: &Arc<World>, store: &MemoryStore) -> Restorer {
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
        zone: crate::Zone::utc(),
        keep_overrides: Vec::new(),
        pins_lock: Arc::new(crate::testkit::ProcessLock::default()),
        contents: crate::ports::Contents::Lean,
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
        work: crate::restore::WorkBudget::default(),
        restarter: None,
    }
}

/// The key store row in memory.
#[derive(Default)]
pub struct MemoryKeyStore(pub Mutex<Option<KeyStoreRow>>);

#[async_trait]
impl crate::encryption::KeyStore for MemoryKeyStore {
    async fn get(&self) -> Result<Option<KeyStoreRow>, DbError> {
        Ok(self.0.lock().unwrap().clone())
    }
    async fn put(&self, row: &KeyStoreRow) -> Result<(), DbError> {
        *self.0.lock().unwrap() = Some(row.clone());
        Ok(())
    }
    async fn delete(&self) -> Result<(), DbError> {
        *self.0.lock().unwrap() = None;
        Ok(())
    }
}

/// Hashes are "hash:<password>"; tokens count up.
#[derive(Default)]
pub struct FakeCredentials(Mutex<u32>);

#[async_trait]
impl Credentials for FakeCredentials {
    async fn verify(&self, password: &Password, hash: &str) -> bool {
        hash == format!("hash:{}", password.expose())
    }
    async fn spend(&self, _: &Password, _: u32) {}
    fn new_token(&self) -> String {
        let mut n = self.0.lock().unwrap();
        *n += 1;
        format!("token-{n}")
    }
}
