//! The create use case: snapshot, archive, store, then retention.

use std::sync::Arc;
use std::time::Duration;

use futures_io::AsyncWrite;

use futures::io::AsyncWriteExt;

use crate::busy::{BusyFlag, BusyGuard};
use crate::encryption::{Envelope, EnvelopeError, Seal, SealingWriter};
use crate::error::{ArchiveError, DbError, StoreError};
use crate::kind::BackupKind;
use crate::manifest::{Encryption, Manifest};
use crate::name::{BackupFormat, BackupName};
use crate::pins;
use crate::ports::{
    Archiver, BackupStore, Clock, Contents, Database, Held, InstanceLock, LiveDatabase, LockError, Progress,
    ProgressEvent, Snapshot, SnapshotKind, StoredBackup,
};
use crate::retention::{self, KeepPolicy, Plan, Rules};
use crate::schedule::Zone;

/// Why a backup was not made. In every case no partial backup is left.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    #[error("a backup or restore is already in progress")]
    InProgress,
    /// Another process holds the instance.
    #[error(transparent)]
    Busy(LockError),
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("cannot write the backup: {0}")]
    Output(String),
    /// A plain copy elsewhere was asked for while backups are encrypted.
    #[error(
        "backup encryption is on, and this writes a plain backup: allow it explicitly (--plain), or make an encrypted backup in the backups folder"
    )]
    PlainRefused,
}

impl CreateError {
    /// Whether the disk (or a quota) filled up: the place's fault, not the
    /// data's.
    pub fn is_full(&self) -> bool {
        matches!(self, CreateError::Store(StoreError::Full(_)) | CreateError::Database(DbError::Full(_)))
    }
}

/// What retention did after a backup. A failed deletion does not fail the
/// backup that was just made; it is reported here.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// The policy it ran under; `None` when none applies (all kept).
    pub policy: Option<KeepPolicy>,
    /// Deleted (in a dry run: would be deleted), oldest first.
    pub deleted: Vec<BackupName>,
    /// What stays and why, newest first.
    pub kept: Vec<retention::Kept>,
    /// Kept and not counted: stamped in the future (a clock was wrong).
    pub future: Vec<BackupName>,
    pub failed: Vec<(BackupName, String)>,
    /// Retention could not run at all (the schedule or the list failed).
    pub error: Option<String>,
}

/// Retention in one destination, by `prune`. Serializes as an item of
/// `GET /api/backup/retention` (and `prune --json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    pub destination: String,
    pub outcome: RetentionOutcome,
}

impl serde::Serialize for Pruned {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let o = &self.outcome;
        let names = |list: &[BackupName]| list.iter().map(ToString::to_string).collect::<Vec<_>>();
        let failed: Vec<serde_json::Value> =
            o.failed.iter().map(|(n, e)| serde_json::json!({ "filename": n.to_string(), "error": e })).collect();
        let mut out = s.serialize_struct("Pruned", 7)?;
        out.serialize_field("destination", &self.destination)?;
        out.serialize_field("policy", &o.policy)?;
        out.serialize_field("delete", &names(&o.deleted))?;
        out.serialize_field("kept", &o.kept)?;
        out.serialize_field("futureStamped", &names(&o.future))?;
        out.serialize_field("failed", &failed)?;
        out.serialize_field("error", &o.error)?;
        out.end()
    }
}

/// Why retention did not run in a destination after a backup.
pub const NOT_COPIED: &str = "the copy of this backup failed there";

/// What happened at one extra destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub destination: String,
    /// `None` when the copy is complete there.
    pub error: Option<String>,
    pub retention: RetentionOutcome,
}

/// Serializes as an item of a create's `destinations` (the CLI's `create
/// --json` and `POST /api/backup/create`): the copy's error, and what
/// retention deleted there, could not delete, or why it did not run.
impl serde::Serialize for Replica {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let r = &self.retention;
        let names = |list: &[BackupName]| list.iter().map(ToString::to_string).collect::<Vec<_>>();
        let failed: Vec<serde_json::Value> =
            r.failed.iter().map(|(n, e)| serde_json::json!({ "filename": n.to_string(), "error": e })).collect();
        let mut out = s.serialize_struct("Replica", 6)?;
        out.serialize_field("destination", &self.destination)?;
        out.serialize_field("error", &self.error)?;
        out.serialize_field("deleted", &names(&r.deleted))?;
        out.serialize_field("failed", &failed)?;
        out.serialize_field("futureStamped", &names(&r.future))?;
        out.serialize_field("retentionError", &r.error)?;
        out.end()
    }
}

/// A backup that was made and stored.
#[derive(Debug, Clone)]
pub struct Created {
    pub stored: StoredBackup,
    pub manifest: Manifest,
    pub retention: RetentionOutcome,
    /// One per extra destination, in configuration order.
    pub replicas: Vec<Replica>,
}

/// The ports the create use case runs on.
#[derive(Clone)]
pub struct Creator {
    pub db: Arc<dyn Database>,
    pub store: Arc<dyn BackupStore>,
    pub archiver: Arc<dyn Archiver>,
    pub clock: Arc<dyn Clock>,
    pub progress: Arc<dyn Progress>,
    pub busy: BusyFlag,
    /// Seals manual and scheduled backups while backup encryption is on.
    pub envelope: Arc<dyn Envelope>,
    /// Extra destinations: each complete backup is copied to them after it
    /// is committed to `store`, the primary. A failing destination is
    /// reported and never affects the primary copy.
    pub replicas: Vec<Arc<dyn BackupStore>>,
    /// The instance lock, shared with restore and other processes.
    pub lock: Arc<dyn InstanceLock>,
    /// How long to wait for another process's backup or restore.
    pub lock_wait: Duration,
    /// The server's time zone: the days, weeks and months of calendar
    /// retention, and the schedule's hour.
    pub zone: Zone,
    /// Destinations with their own retention policy, by description.
    /// Others follow the saved schedule.
    pub keep_overrides: Vec<(String, KeepPolicy)>,
    /// Serializes changes to pins with retention's reading of them, across
    /// processes, without waiting for a running backup.
    pub pins_lock: Arc<dyn InstanceLock>,
    /// How much of the instance-specific data backups carry.
    pub contents: Contents,
}

/// The instance, held: this process's busy flag, then the instance lock.
/// One backup or restore at a time, in this process and across processes.
#[derive(Debug)]
pub struct Hold {
    _busy: BusyGuard,
    lock: Arc<dyn Held>,
}

impl Hold {
    /// The lock, for work that must keep it past its caller (a commit).
    pub fn lock(&self) -> Arc<dyn Held> {
        Arc::clone(&self.lock)
    }
}

impl std::fmt::Debug for Creator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Creator").field("store", &self.store.describe()).finish_non_exhaustive()
    }
}

impl Creator {
    /// Holds the instance for a backup or restore.
    pub async fn hold(&self) -> Result<Hold, CreateError> {
        let busy = self.busy.try_acquire().ok_or(CreateError::InProgress)?;
        let lock = self.lock.acquire(self.lock_wait).await.map_err(CreateError::Busy)?;
        Ok(Hold { _busy: busy, lock })
    }

    /// The primary store, then every extra destination.
    pub fn stores(&self) -> Vec<Arc<dyn BackupStore>> {
        std::iter::once(self.store.clone()).chain(self.replicas.iter().cloned()).collect()
    }

    /// Makes a backup of `kind` in the store. After a manual or scheduled
    /// backup, when a schedule has been saved, retention deletes the oldest
    /// backups beyond its `maxBackups`; never after a failure.
    pub async fn create(&self, kind: BackupKind) -> Result<Created, CreateError> {
        let hold = self.hold().await?;
        self.create_held(&hold, kind, None).await
    }

    /// Restore's safety backup, the instance already held. A live database
    /// that cannot be read is copied raw without opening it: an open could
    /// touch its files (a WAL reset), and they are all that is left.
    pub async fn create_safety(&self, hold: &Hold, live: &LiveDatabase) -> Result<Created, CreateError> {
        let snapshot = match live {
            LiveDatabase::Damaged(why) => Some(self.db.raw_copy(why).await?),
            _ => None,
        };
        self.create_held(hold, BackupKind::Safety, snapshot).await
    }

    /// [`Creator::create`] for a caller that already holds the instance;
    /// `snapshot` when it was already taken.
    async fn create_held(
        &self,
        _hold: &Hold,
        kind: BackupKind,
        snapshot: Option<Box<dyn Snapshot>>,
    ) -> Result<Created, CreateError> {
        let now = self.clock.now();
        // Safety backups are never encrypted: they must restore even when
        // the password is what went wrong.
        let seal = if kind == BackupKind::Safety { None } else { self.envelope.sealer().await? };
        let format = if seal.is_some() { BackupFormat::Encrypted } else { BackupFormat::Plain };
        let taken: Vec<String> = self.store.list().await?.iter().map(|b| b.name.stem()).collect();
        let name = BackupName::unique(kind, now, format, |stem| taken.iter().any(|t| t == stem));
        let id = name.stem();
        self.progress.report(ProgressEvent::Started { id: id.clone(), kind });
        let result = self.create_named(&id, &name, seal, snapshot).await;
        let (stored, manifest) = match result {
            Ok(done) => done,
            Err(e) => {
                self.progress.report(ProgressEvent::Error { id, error: e.to_string() });
                return Err(e);
            }
        };
        let took = (self.clock.now() - now).whole_milliseconds().max(0) as u64;
        let entry = crate::history::Entry {
            filename: stored.name.to_string(),
            kind,
            size: stored.size,
            duration_ms: took,
            created_at: now,
        };
        // A record, not a reason to fail the backup that was made.
        let _ = crate::history::record(self.store.as_ref(), entry).await;
        let mut replicas = Vec::with_capacity(self.replicas.len());
        for replica in &self.replicas {
            let destination = replica.describe();
            self.step(&id, "copying", 99);
            let error =
                copy_backup(self.store.as_ref(), replica.as_ref(), &stored.name).await.err().map(|e| e.to_string());
            if let Some(error) = &error {
                self.progress.report(ProgressEvent::DestinationFailed {
                    id: id.clone(),
                    destination: destination.clone(),
                    error: error.clone(),
                });
            }
            replicas.push(Replica { destination, error, retention: RetentionOutcome::default() });
        }
        let retention = if kind.is_rotated() {
            self.apply_retention_to(self.store.as_ref(), Some(&stored.name)).await
        } else {
            RetentionOutcome::default()
        };
        if kind.is_rotated() {
            for (replica, outcome) in self.replicas.iter().zip(replicas.iter_mut()) {
                // A destination that did not receive this backup keeps all
                // it has: retention there would count a backup that is not
                // there, and a failed copy may mean the place is not what
                // it seems (the primary by another name).
                outcome.retention = match outcome.error {
                    Some(_) => RetentionOutcome { error: Some(NOT_COPIED.to_owned()), ..RetentionOutcome::default() },
                    None => self.apply_retention_to(replica.as_ref(), Some(&stored.name)).await,
                };
            }
        }
        self.progress.report(ProgressEvent::Complete { id, filename: stored.name.to_string(), size: stored.size });
        Ok(Created { stored, manifest, retention, replicas })
    }

    async fn create_named(
        &self,
        id: &str,
        name: &BackupName,
        seal: Option<Box<dyn Seal>>,
        snapshot: Option<Box<dyn Snapshot>>,
    ) -> Result<(StoredBackup, Manifest), CreateError> {
        let mut upload = self.store.create(name).await?;
        let written = match seal {
            None => self.write_archive(id, name.kind(), Encryption::Plaintext, &mut *upload, snapshot).await,
            Some(mut seal) => {
                let sealed = async {
                    let out: &mut (dyn AsyncWrite + Send + Unpin) = &mut *upload;
                    out.write_all(&seal.preamble()).await.map_err(|e| CreateError::Output(e.to_string()))?;
                    let mut sealing = SealingWriter::new(out, seal.as_mut());
                    let manifest =
                        self.write_archive(id, name.kind(), Encryption::EnvelopeV1, &mut sealing, snapshot).await?;
                    sealing.flush().await.map_err(|e| CreateError::Output(e.to_string()))?;
                    Ok::<_, CreateError>(manifest)
                }
                .await;
                match sealed {
                    Ok(manifest) => {
                        let (offset, header) = seal.finish();
                        upload.write_at(offset, &header).await.map(|()| manifest).map_err(CreateError::from)
                    }
                    Err(e) => Err(e),
                }
            }
        };
        match written {
            Ok(manifest) => {
                self.step(id, "storing", 98);
                Ok((upload.commit().await?, manifest))
            }
            Err(e) => {
                // The archive error is what the user needs; a failed cleanup
                // of the partial upload is the store's to report in its logs.
                let _ = upload.abort().await;
                Err(e)
            }
        }
    }

    /// Streams a plain backup to `out` instead of the store (`create
    /// --output`). No retention: nothing was added to the store. While
    /// backup encryption is on, a plain copy is written only with
    /// `plain_ok`: credentials must not land in clear on a USB stick by
    /// accident.
    pub async fn create_to(
        &self,
        kind: BackupKind,
        out: &mut (dyn AsyncWrite + Send + Unpin),
        plain_ok: bool,
    ) -> Result<Manifest, CreateError> {
        let _hold = self.hold().await?;
        if !plain_ok && self.envelope.sealer().await?.is_some() {
            return Err(CreateError::PlainRefused);
        }
        let id = BackupName::new(kind, self.clock.now(), BackupFormat::Plain).stem();
        self.progress.report(ProgressEvent::Started { id: id.clone(), kind });
        match self.write_archive(&id, kind, Encryption::Plaintext, out, None).await {
            Ok(manifest) => {
                self.progress.report(ProgressEvent::Complete { id, filename: String::new(), size: 0 });
                Ok(manifest)
            }
            Err(e) => {
                self.progress.report(ProgressEvent::Error { id, error: e.to_string() });
                Err(e)
            }
        }
    }

    async fn write_archive(
        &self,
        id: &str,
        kind: BackupKind,
        encryption: Encryption,
        out: &mut (dyn AsyncWrite + Send + Unpin),
        snapshot: Option<Box<dyn Snapshot>>,
    ) -> Result<Manifest, CreateError> {
        self.step(id, "database", 0);
        let snapshot = match snapshot {
            Some(snapshot) => snapshot,
            None => self.snapshot(kind).await?,
        };
        let mut manifest = Manifest::new(kind, self.clock.now(), encryption, self.archiver.assets().await);
        manifest.user_version = snapshot.user_version();
        manifest.damaged = snapshot.damaged().map(str::to_owned);
        manifest.omitted_rows = snapshot.omitted_rows();
        self.step(id, "archive", 5);
        let report = |percent: u8| self.step(id, "archive", 5 + (percent.min(100) as u16 * 90 / 100) as u8);
        Ok(self.archiver.write(&*snapshot, manifest, out, &report).await?)
    }

    /// A portable snapshot for backups that may go to another instance; for
    /// a safety backup, one that keeps this instance's encryption, or, when
    /// the live database cannot be read, its files as they are: restore is
    /// what a broken instance needs, and its files must not be lost.
    async fn snapshot(&self, kind: BackupKind) -> Result<Box<dyn Snapshot>, CreateError> {
        if kind != BackupKind::Safety {
            return Ok(self.db.snapshot(SnapshotKind::Portable, self.contents).await?);
        }
        match self.db.snapshot(SnapshotKind::SameInstance, self.contents).await {
            Ok(snapshot) => Ok(snapshot),
            Err(e @ (DbError::NotSqlite(_) | DbError::Corrupt { .. })) => Ok(self.db.raw_copy(&e.to_string()).await?),
            Err(e) => Err(e.into()),
        }
    }

    /// The retention policy of `store`: its own, or the saved schedule's;
    /// `None` when neither exists (then everything is kept).
    pub async fn keep_policy(&self, store: &dyn BackupStore) -> Result<Option<KeepPolicy>, DbError> {
        let place = store.describe();
        // The primary always follows the schedule: a destination's policy
        // is for that destination only.
        let primary = place == self.store.describe() || store.place() == self.store.place();
        if let Some((_, keep)) = self.keep_overrides.iter().find(|(d, _)| *d == place && !primary) {
            return Ok(Some(*keep));
        }
        Ok(self.db.schedule().await?.map(|s| s.keep_policy()))
    }

    /// What retention would do in `store` now, and under which policy;
    /// `None` when no policy applies. `just_made` is never deleted.
    pub async fn retention_plan(
        &self,
        store: &dyn BackupStore,
        just_made: Option<&BackupName>,
    ) -> Result<Option<(KeepPolicy, Plan)>, String> {
        let Some(keep) = self.keep_policy(store).await.map_err(|e| e.to_string())? else { return Ok(None) };
        // Unreadable pins stop retention: it must not run on a guess.
        let pinned = pins::pinned_in(self.store.as_ref(), store).await.map_err(|e| e.to_string())?;
        let names: Vec<BackupName> =
            store.list().await.map_err(|e| e.to_string())?.into_iter().map(|b| b.name).collect();
        let rules = Rules { keep, zone: &self.zone, now: self.clock.now(), pinned: &pinned, just_made };
        Ok(Some((keep, retention::plan(&names, &rules))))
    }

    /// Deletes what retention does not keep in `store` (each destination
    /// under its own policy, or the schedule's), never `keep` (the backup
    /// just made), a pinned or safety backup, nor one stamped in the future
    /// (reported instead). Without a policy, keeps everything.
    pub async fn apply_retention_to(&self, store: &dyn BackupStore, keep: Option<&BackupName>) -> RetentionOutcome {
        self.retention_in(store, keep, false).await
    }

    /// Retention in every store now, as after a backup (`dry_run`: only
    /// what it would delete, and why each kept backup stays). The real run
    /// holds the instance like a backup.
    pub async fn prune(&self, dry_run: bool) -> Result<Vec<Pruned>, CreateError> {
        let _hold = if dry_run { None } else { Some(self.hold().await?) };
        let mut done = Vec::new();
        for store in self.stores() {
            let outcome = self.retention_in(store.as_ref(), None, dry_run).await;
            done.push(Pruned { destination: store.describe(), outcome });
        }
        Ok(done)
    }

    async fn retention_in(
        &self,
        store: &dyn BackupStore,
        keep: Option<&BackupName>,
        dry_run: bool,
    ) -> RetentionOutcome {
        let mut outcome = RetentionOutcome::default();
        // Pins cannot change between reading them and deleting.
        let _pins = match self.pins_lock.acquire(self.lock_wait).await {
            Ok(held) => held,
            Err(e) => {
                outcome.error = Some(format!("pins are being changed, retention waits for the next backup: {e}"));
                return outcome;
            }
        };
        let plan = match self.retention_plan(store, keep).await {
            Ok(Some((policy, plan))) => {
                outcome.policy = Some(policy);
                plan
            }
            Ok(None) => return outcome,
            Err(e) => {
                outcome.error = Some(e);
                return outcome;
            }
        };
        outcome.future = plan.future;
        outcome.kept = plan.kept;
        if dry_run {
            outcome.deleted = plan.delete;
            return outcome;
        }
        for name in plan.delete {
            match store.delete(&name).await {
                Ok(()) | Err(StoreError::NotFound(_)) => outcome.deleted.push(name),
                Err(e) => outcome.failed.push((name, e.to_string())),
            }
        }
        outcome
    }

    fn step(&self, id: &str, step: &str, percent: u8) {
        self.progress.report(ProgressEvent::Progress { id: id.to_owned(), step: step.to_owned(), percent });
    }
}

/// Streams a complete backup from one store into another, committing it
/// there only when whole.
pub async fn copy_backup(
    from: &dyn BackupStore,
    to: &dyn BackupStore,
    name: &BackupName,
) -> Result<StoredBackup, StoreError> {
    let mut download = from.open(name).await?;
    let mut upload = to.create(name).await?;
    let copied = async {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = futures::io::AsyncReadExt::read(&mut download.reader, &mut buf)
                .await
                .map_err(|e| StoreError::Other(format!("reading {name}: {e}")))?;
            if n == 0 {
                return Ok(());
            }
            upload
                .write_all(&buf[..n])
                .await
                .map_err(|e| StoreError::Unavailable(format!("{}: {e}", to.describe())))?;
        }
    }
    .await;
    match copied {
        Ok(()) => upload.commit().await,
        Err(e) => {
            let _ = upload.abort().await;
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use futures::io::AsyncWriteExt;
    use mockall::mock;
    use time::OffsetDateTime;
    use time::macros::datetime;

    use super::*;
    use crate::memory::MemoryStore;
    use crate::schedule::Schedule;

    mock! {
        Db {}
        #[async_trait]
        impl Database for Db {
            async fn snapshot(&self, kind: SnapshotKind, contents: Contents) -> Result<Box<dyn Snapshot>, DbError>;
            async fn raw_copy(&self, why: &str) -> Result<Box<dyn Snapshot>, DbError>;
            async fn state(&self) -> crate::ports::LiveDatabase;
            async fn schedule(&self) -> Result<Option<Schedule>, DbError>;
            async fn save_schedule(&self, schedule: &Schedule) -> Result<(), DbError>;
        }
    }

    use crate::testkit::{FakeArchiver, FakeSnapshot, FixedClock, Recorder};

    const NOW: OffsetDateTime = datetime!(2026-11-26 03:00:00.250 UTC);

    fn creator(db: MockDb, store: &MemoryStore, fail: bool) -> (Creator, Arc<Recorder>) {
        let recorder = Arc::new(Recorder::default());
        let creator = Creator {
            db: Arc::new(db),
            store: Arc::new(store.clone()),
            archiver: Arc::new(FakeArchiver { fail }),
            clock: Arc::new(FixedClock::at(NOW)),
            progress: recorder.clone(),
            busy: BusyFlag::default(),
            envelope: Arc::new(crate::encryption::NoEnvelope),
            replicas: Vec::new(),
            lock: Arc::new(crate::testkit::ProcessLock::default()),
            lock_wait: std::time::Duration::ZERO,
            zone: Zone::utc(),
            keep_overrides: Vec::new(),
            pins_lock: Arc::new(crate::testkit::ProcessLock::default()),
            contents: Contents::Lean,
        };
        (creator, recorder)
    }

    async fn seed(store: &MemoryStore, names: &[&str]) {
        for n in names {
            let mut up = store.create(&BackupName::parse(n).unwrap()).await.unwrap();
            up.write_all(b"old").await.unwrap();
            up.commit().await.unwrap();
        }
    }

    async fn names(store: &MemoryStore) -> Vec<String> {
        let mut n: Vec<String> = store.list().await.unwrap().iter().map(|b| b.name.to_string()).collect();
        n.sort();
        n
    }

    fn schedule_keeping(max: u64) -> Schedule {
        Schedule { enabled: true, max_backups: crate::MaxBackups::new(max).unwrap(), ..Schedule::default() }
    }

    #[test]
    fn success_stores_the_backup_then_applies_retention() {
        futures::executor::block_on(async {
            let store = MemoryStore::default();
            seed(&store, &["framerr-manual-2026-01-01T00-00-00.zip", "framerr-safety-2025-01-01T00-00-00.zip"]).await;
            let mut db = MockDb::new();
            db.expect_snapshot().times(1).returning(|_, _| Ok(Box::new(FakeSnapshot)));
            db.expect_schedule().times(1).returning(|| Ok(Some(schedule_keeping(1))));
            let (creator, recorder) = creator(db, &store, false);
            let created = creator.create(BackupKind::Manual).await.unwrap();
            assert_eq!(created.stored.name.to_string(), "framerr-manual-2026-11-26T03-00-00.zip");
            assert_eq!(created.stored.size, 22);
            assert_eq!(created.manifest.user_version, Some(48));
            assert!(created.manifest.assets.profile_pictures);
            assert_eq!(created.retention.deleted.len(), 1);
            assert_eq!(
                names(&store).await,
                ["framerr-manual-2026-11-26T03-00-00.zip", "framerr-safety-2025-01-01T00-00-00.zip"]
            );
            let events = recorder.events();
            assert!(matches!(events.first(), Some(ProgressEvent::Started { kind: BackupKind::Manual, .. })));
            assert!(matches!(events.last(), Some(ProgressEvent::Complete { size: 22, .. })));
            let percents: Vec<u8> = events
                .iter()
                .filter_map(|e| if let ProgressEvent::Progress { percent, .. } = e { Some(*percent) } else { None })
                .collect();
            assert!(percents.windows(2).all(|w| w[0] <= w[1]), "{percents:?}");
        });
    }

    #[test]
    fn no_saved_schedule_means_no_retention() {
        futures::executor::block_on(async {
            let store = MemoryStore::default();
            seed(&store, &["framerr-manual-2026-01-01T00-00-00.zip"]).await;
            let mut db = MockDb::new();
            db.expect_snapshot().returning(|_, _| Ok(Box::new(FakeSnapshot)));
            db.expect_schedule().times(1).returning(|| Ok(None));
            let (creator, _) = creator(db, &store, false);
            creator.create(BackupKind::Scheduled).await.unwrap();
            assert_eq!(names(&store).await.len(), 2);
        });
    }

    #[test]
    fn a_failed_backup_leaves_nothing_and_deletes_nothing() {
        futures::executor::block_on(async {
            let store = MemoryStore::default();
            seed(&store, &["framerr-manual-2026-01-01T00-00-00.zip", "framerr-manual-2026-01-02T00-00-00.zip"]).await;
            let mut db = MockDb::new();
            db.expect_snapshot().returning(|_, _| Ok(Box::new(FakeSnapshot)));
            db.expect_schedule().times(0);
            let (creator, recorder) = creator(db, &store, true);
            let err = creator.create(BackupKind::Scheduled).await.unwrap_err();
            assert!(err.to_string().contains("x.png"), "{err}");
            assert_eq!(names(&store).await.len(), 2);
            assert!(matches!(recorder.events().last(), Some(ProgressEvent::Error { .. })));
            assert!(!creator.busy.is_busy(), "the busy flag must be lowered after a failure");
        });
    }

    #[test]
    fn one_at_a_time() {
        futures::executor::block_on(async {
            let store = MemoryStore::default();
            let mut db = MockDb::new();
            db.expect_snapshot().times(0);
            let (creator, _) = creator(db, &store, false);
            let _held = creator.busy.try_acquire().unwrap();
            assert!(matches!(creator.create(BackupKind::Manual).await, Err(CreateError::InProgress)));
            let mut sink = Vec::new();
            let mut out = futures::io::Cursor::new(&mut sink);
            assert!(matches!(
                creator.create_to(BackupKind::Manual, &mut out, false).await,
                Err(CreateError::InProgress)
            ));
        });
    }

    #[test]
    fn copies_go_to_every_destination_and_a_failing_one_is_reported() {
        futures::executor::block_on(async {
            let (primary, replica) = (MemoryStore::default(), MemoryStore::default());
            seed(&primary, &["framerr-manual-2026-01-01T00-00-00.zip"]).await;
            seed(&replica, &["framerr-manual-2026-01-01T00-00-00.zip", "framerr-manual-2026-01-02T00-00-00.zip"]).await;
            let mut db = MockDb::new();
            db.expect_snapshot().returning(|_, _| Ok(Box::new(FakeSnapshot)));
            db.expect_schedule().returning(|| Ok(Some(schedule_keeping(1))));
            let (mut creator, recorder) = creator(db, &primary, false);
            creator.replicas = vec![Arc::new(replica.clone()), Arc::new(crate::testkit::DownStore)];
            let created = creator.create(BackupKind::Manual).await.unwrap();
            let name = created.stored.name.to_string();
            // The primary and the working destination each keep their newest one.
            assert_eq!(names(&primary).await, [name.as_str()]);
            assert_eq!(names(&replica).await, [name.as_str()]);
            assert_eq!(created.replicas.len(), 2);
            assert_eq!(created.replicas[0].error, None);
            assert_eq!(created.replicas[0].retention.deleted.len(), 2);
            assert!(created.replicas[1].error.as_deref().is_some_and(|e| e.contains("connection refused")));
            assert!(created.replicas[1].retention.error.is_some());
            let events = recorder.events();
            assert!(events.iter().any(
                |e| matches!(e, ProgressEvent::DestinationFailed { destination, .. } if destination == "s3://down")
            ));
            assert!(matches!(events.last(), Some(ProgressEvent::Complete { .. })));
        });
    }

    #[test]
    fn retention_never_runs_where_the_copy_of_the_new_backup_failed() {
        futures::executor::block_on(async {
            let (primary, nas) = (MemoryStore::named("primary"), MemoryStore::named("nas"));
            // The NAS already holds a file of the new backup's name (it is
            // the primary folder by another spelling, say): the copy fails
            // with "already exists", and what the NAS keeps must not move.
            let old = ["framerr-manual-2026-01-01T00-00-00.zip", "framerr-manual-2026-01-02T00-00-00.zip"];
            seed(&nas, &old).await;
            seed(&nas, &["framerr-manual-2026-11-26T03-00-00.zip"]).await;
            let mut db = MockDb::new();
            db.expect_snapshot().returning(|_, _| Ok(Box::new(FakeSnapshot)));
            db.expect_schedule().returning(|| Ok(Some(schedule_keeping(1))));
            let (mut creator, _) = creator(db, &primary, false);
            creator.replicas = vec![Arc::new(nas.clone())];
            creator.keep_overrides = vec![("nas".into(), KeepPolicy { last: 1, ..KeepPolicy::default() })];
            let created = creator.create(BackupKind::Manual).await.unwrap();
            assert_eq!(created.stored.name.to_string(), "framerr-manual-2026-11-26T03-00-00.zip");
            assert!(created.replicas[0].error.as_deref().is_some_and(|e| e.contains("exists")), "{created:?}");
            assert_eq!(created.replicas[0].retention.deleted, Vec::<BackupName>::new());
            assert!(
                created.replicas[0].retention.error.as_deref().is_some_and(|e| e.contains("copy")),
                "{:?}",
                created.replicas[0].retention
            );
            assert_eq!(names(&nas).await, [old[0], old[1], "framerr-manual-2026-11-26T03-00-00.zip"]);
        });
    }

    #[test]
    fn pinned_backups_stay_and_destinations_keep_their_own_policy() {
        futures::executor::block_on(async {
            let (primary, nas) = (MemoryStore::named("primary"), MemoryStore::named("nas"));
            let old = [
                "framerr-manual-2026-09-01T00-00-00.zip",
                "framerr-manual-2026-10-01T00-00-00.zip",
                "framerr-manual-2026-11-01T00-00-00.zip",
                "framerr-manual-2026-11-02T00-00-00.zip",
            ];
            seed(&primary, &old).await;
            seed(&nas, &old).await;
            let mut db = MockDb::new();
            db.expect_snapshot().returning(|_, _| Ok(Box::new(FakeSnapshot)));
            db.expect_schedule().returning(|| Ok(Some(schedule_keeping(1))));
            let (mut creator, _) = creator(db, &primary, false);
            creator.replicas = vec![Arc::new(nas.clone())];
            // The NAS keeps one backup a month, three months back.
            creator.keep_overrides = vec![("nas".into(), KeepPolicy { monthly: 3, ..KeepPolicy::default() })];
            creator.pin(&BackupName::parse(old[0]).unwrap(), true).await.unwrap();
            let created = creator.create(BackupKind::Manual).await.unwrap();
            let new = created.stored.name.to_string();
            assert_eq!(names(&primary).await, [old[0], new.as_str()], "pinned and newest");
            // November's newest is the new one; October's and the pinned September stay.
            assert_eq!(names(&nas).await, [old[0], old[1], new.as_str()]);
            let dry = creator.prune(true).await.unwrap();
            assert!(dry.iter().all(|p| p.outcome.deleted.is_empty()), "{dry:?}");
            assert_eq!(dry[1].outcome.policy, Some(KeepPolicy { monthly: 3, ..KeepPolicy::default() }));
            let why: Vec<String> = dry[1].outcome.kept.iter().map(|k| k.reasons[0].to_string()).collect();
            assert_eq!(why, ["monthly 2026-11", "monthly 2026-10", "pinned"]);
            // A pinned backup goes only when forced, and its pin with it.
            let pinned = BackupName::parse(old[0]).unwrap();
            assert!(matches!(
                creator.delete(&pinned, false).await,
                Err(crate::listing::DeleteError::PinnedNeedsForce(_))
            ));
            assert_eq!(creator.delete(&pinned, true).await.unwrap(), ["primary", "nas"]);
            assert!(crate::pins::pinned_anywhere(&creator.stores()).await.is_empty());
        });
    }

    #[test]
    fn safety_backups_do_not_trigger_retention_and_same_second_names_differ() {
        futures::executor::block_on(async {
            let store = MemoryStore::default();
            seed(&store, &["framerr-safety-2026-11-26T03-00-00.zip"]).await;
            let mut db = MockDb::new();
            db.expect_snapshot().returning(|_, _| Ok(Box::new(FakeSnapshot)));
            db.expect_schedule().times(0);
            let (creator, _) = creator(db, &store, false);
            let created = creator.create(BackupKind::Safety).await.unwrap();
            assert_eq!(created.stored.name.to_string(), "framerr-safety-2026-11-26T03-00-00-2.zip");
        });
    }
}
