//! Test doubles shared by the use-case tests (and, with the `testkit`
//! feature, by the fronts' in-process tests): a snapshot, an archiver that
//! can fail half way, a settable clock, a progress recorder, a database
//! that keeps its schedule in memory, an in-process lock, and in
//! [`restore`] a double of every port restore runs on.

#![allow(clippy::unwrap_used, missing_debug_implementations, unreachable_pub)]

pub mod restore;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::io::AsyncWriteExt;
use futures_io::{AsyncRead, AsyncWrite};
use time::OffsetDateTime;

use crate::error::{ArchiveError, DbError, StoreError};
use crate::manifest::{Assets, Manifest};
use crate::name::BackupName;
use crate::ports::{
    Archiver, BackupStore, Clock, Database, Download, Held, InstanceLock, LiveDatabase, LockError, Progress,
    ProgressEvent, Snapshot, SnapshotKind, StoredBackup, Upload,
};
use crate::schedule::Schedule;

pub struct FakeSnapshot;

#[async_trait]
impl Snapshot for FakeSnapshot {
    fn user_version(&self) -> Option<i64> {
        Some(48)
    }
    fn size(&self) -> u64 {
        3
    }
    async fn open(&self) -> Result<Box<dyn AsyncRead + Send + Unpin>, DbError> {
        Ok(Box::new(futures::io::Cursor::new(b"abc".to_vec())))
    }
}

/// Writes a fixed body, or fails half way through.
pub struct FakeArchiver {
    pub fail: bool,
}

#[async_trait]
impl Archiver for FakeArchiver {
    async fn assets(&self) -> Assets {
        Assets { profile_pictures: true, custom_icons: false, favicon: false }
    }
    async fn write(
        &self,
        _snapshot: &dyn Snapshot,
        manifest: Manifest,
        out: &mut (dyn AsyncWrite + Send + Unpin),
        progress: &(dyn Fn(u8) + Send + Sync),
    ) -> Result<Manifest, ArchiveError> {
        out.write_all(b"PK\x03\x04 half").await.map_err(|e| ArchiveError::Output(e.to_string()))?;
        progress(50);
        if self.fail {
            return Err(ArchiveError::Source { path: "upload/custom-icons/x.png".into(), detail: "denied".into() });
        }
        out.write_all(b" and the rest").await.map_err(|e| ArchiveError::Output(e.to_string()))?;
        progress(100);
        Ok(manifest)
    }
}

/// A clock tests move by hand.
pub struct FixedClock(Mutex<OffsetDateTime>);

impl FixedClock {
    pub fn at(now: OffsetDateTime) -> Self {
        FixedClock(Mutex::new(now))
    }
    pub fn set(&self, now: OffsetDateTime) {
        *self.0.lock().unwrap() = now;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

#[derive(Default)]
pub struct Recorder(Mutex<Vec<ProgressEvent>>);

impl Recorder {
    pub fn events(&self) -> Vec<ProgressEvent> {
        self.0.lock().unwrap().clone()
    }
}

impl Progress for Recorder {
    fn report(&self, event: ProgressEvent) {
        self.0.lock().unwrap().push(event);
    }
}

/// A database whose schedule lives in memory.
#[derive(Default)]
pub struct MemoryDb {
    pub schedule: Mutex<Option<Schedule>>,
}

#[async_trait]
impl Database for MemoryDb {
    async fn snapshot(&self, _: SnapshotKind, _: crate::ports::Contents) -> Result<Box<dyn Snapshot>, DbError> {
        Ok(Box::new(FakeSnapshot))
    }
    async fn raw_copy(&self, _: &str) -> Result<Box<dyn Snapshot>, DbError> {
        Ok(Box::new(FakeSnapshot))
    }
    async fn state(&self) -> LiveDatabase {
        LiveDatabase::Readable { user_version: 48 }
    }
    async fn schedule(&self) -> Result<Option<Schedule>, DbError> {
        Ok(self.schedule.lock().unwrap().clone())
    }
    async fn save_schedule(&self, schedule: &Schedule) -> Result<(), DbError> {
        *self.schedule.lock().unwrap() = Some(schedule.clone());
        Ok(())
    }
}

pub fn shared<T>(t: T) -> Arc<T> {
    Arc::new(t)
}

/// A destination that is down.
pub struct DownStore;

#[async_trait]
impl BackupStore for DownStore {
    fn describe(&self) -> String {
        "s3://down".into()
    }
    async fn list(&self) -> Result<Vec<StoredBackup>, StoreError> {
        Err(StoreError::Unavailable("s3://down: connection refused".into()))
    }
    async fn create(&self, _: &BackupName) -> Result<Box<dyn Upload>, StoreError> {
        Err(StoreError::Unavailable("s3://down: connection refused".into()))
    }
    async fn open(&self, name: &BackupName) -> Result<Download, StoreError> {
        Err(StoreError::NotFound(name.to_string()))
    }
    async fn delete(&self, name: &BackupName) -> Result<(), StoreError> {
        Err(StoreError::NotFound(name.to_string()))
    }
}

/// The instance lock within one process: a flag, never waited for.
#[derive(Debug, Default)]
pub struct ProcessLock(Arc<Mutex<bool>>);

#[derive(Debug)]
struct HeldFlag(Arc<Mutex<bool>>);

impl Held for HeldFlag {}

impl Drop for HeldFlag {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = false;
    }
}

impl ProcessLock {
    pub fn is_held(&self) -> bool {
        *self.0.lock().unwrap()
    }
}

#[async_trait]
impl InstanceLock for ProcessLock {
    async fn acquire(&self, _wait: std::time::Duration) -> Result<Arc<dyn Held>, LockError> {
        let mut held = self.0.lock().unwrap();
        if *held {
            return Err(LockError::Busy("held by another process".into()));
        }
        *held = true;
        Ok(Arc::new(HeldFlag(Arc::clone(&self.0))))
    }
}
