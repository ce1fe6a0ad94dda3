//! An in-memory [`BackupStore`], for use-case tests and as the reference
//! the conformance suite is checked against.

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use async_trait::async_trait;
use futures_io::{AsyncRead, AsyncWrite};

use crate::error::StoreError;
use crate::name::BackupName;
use crate::ports::{BackupStore, Download, StoredBackup, Upload, document_name};

type Objects = Arc<Mutex<BTreeMap<String, Arc<Vec<u8>>>>>;

#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    objects: Objects,
    label: Option<Arc<str>>,
}

impl MemoryStore {
    /// A store that describes itself as `label` (several in one test).
    pub fn named(label: &str) -> Self {
        MemoryStore { objects: Objects::default(), label: Some(label.into()) }
    }
}

fn lock(objects: &Objects) -> MutexGuard<'_, BTreeMap<String, Arc<Vec<u8>>>> {
    objects.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_trait]
impl BackupStore for MemoryStore {
    fn describe(&self) -> String {
        self.label.as_deref().unwrap_or("memory").to_owned()
    }

    /// Clones share their objects: one place.
    fn place(&self) -> crate::ports::Place {
        crate::ports::Place::Described(format!("memory@{:p}", Arc::as_ptr(&self.objects)))
    }

    async fn list(&self) -> Result<Vec<StoredBackup>, StoreError> {
        Ok(lock(&self.objects)
            .iter()
            .filter_map(|(k, v)| BackupName::parse(k).ok().map(|name| StoredBackup { name, size: v.len() as u64 }))
            .collect())
    }

    async fn create(&self, name: &BackupName) -> Result<Box<dyn Upload>, StoreError> {
        Ok(Box::new(MemoryUpload { objects: Arc::clone(&self.objects), name: name.clone(), data: Vec::new() }))
    }

    async fn open(&self, name: &BackupName) -> Result<Download, StoreError> {
        let data = lock(&self.objects).get(&name.to_string()).cloned();
        let data = data.ok_or_else(|| StoreError::NotFound(name.to_string()))?;
        Ok(Download { size: data.len() as u64, reader: Box::new(SharedReader { data, pos: 0 }) })
    }

    async fn delete(&self, name: &BackupName) -> Result<(), StoreError> {
        lock(&self.objects).remove(&name.to_string()).map(|_| ()).ok_or_else(|| StoreError::NotFound(name.to_string()))
    }

    async fn read_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(lock(&self.objects).get(&document_name(key)?).map(|d| d.to_vec()))
    }

    async fn write_meta(&self, key: &str, data: &[u8]) -> Result<(), StoreError> {
        lock(&self.objects).insert(document_name(key)?, Arc::new(data.to_vec()));
        Ok(())
    }
}

#[derive(Debug)]
struct MemoryUpload {
    objects: Objects,
    name: BackupName,
    data: Vec<u8>,
}

impl AsyncWrite for MemoryUpload {
    fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.data.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[async_trait]
impl Upload for MemoryUpload {
    async fn commit(self: Box<Self>) -> Result<StoredBackup, StoreError> {
        let key = self.name.to_string();
        let mut objects = lock(&self.objects);
        if objects.contains_key(&key) {
            return Err(StoreError::AlreadyExists(key));
        }
        let size = self.data.len() as u64;
        objects.insert(key, Arc::new(self.data));
        Ok(StoredBackup { name: self.name, size })
    }

    async fn commit_replacing(self: Box<Self>) -> Result<StoredBackup, StoreError> {
        let size = self.data.len() as u64;
        lock(&self.objects).insert(self.name.to_string(), Arc::new(self.data));
        Ok(StoredBackup { name: self.name, size })
    }

    async fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<(), StoreError> {
        let start = usize::try_from(offset).map_err(|_| StoreError::Other("offset too large".into()))?;
        let end = start.checked_add(bytes.len()).filter(|e| *e <= self.data.len());
        let end = end.ok_or_else(|| StoreError::Other("write_at past the end of the upload".into()))?;
        self.data[start..end].copy_from_slice(bytes);
        Ok(())
    }

    async fn abort(self: Box<Self>) -> Result<(), StoreError> {
        Ok(())
    }
}

struct SharedReader {
    data: Arc<Vec<u8>>,
    pos: usize,
}

impl AsyncRead for SharedReader {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let rest = &self.data[self.pos.min(self.data.len())..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Poll::Ready(Ok(n))
    }
}
