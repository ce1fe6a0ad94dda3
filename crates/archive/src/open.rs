//! The `BackupReader` port: a backup file opened as a ZIP, through the
//! encryption container when it has one (the `Unsealer` port decrypts as
//! the ZIP is read).

use std::io::{self, BufReader, Read};
use std::sync::Arc;

use async_trait::async_trait;

use backup_domain::detect::{DETECT_LEN, detect};
use backup_domain::file::{BackupFile, FileCursor};
use backup_domain::name::BackupFormat;
use backup_domain::restore::{
    ArchiveEntries, Authenticity, BackupKey, BackupReader, DeclaredEntry, EntryError, NoTag, OpenError, OpenedBackup,
    Unsealer,
};

use crate::read::{EntryInfo, ReadLimits, ZipError, ZipReader};

const BUFFER: usize = 256 * 1024;

/// Opens backups as ZIP archives.
#[derive(Clone)]
pub struct ZipBackupReader {
    unsealer: Arc<dyn Unsealer>,
    limits: ReadLimits,
}

impl std::fmt::Debug for ZipBackupReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZipBackupReader").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl ZipBackupReader {
    pub fn new(unsealer: Arc<dyn Unsealer>) -> Self {
        ZipBackupReader { unsealer, limits: ReadLimits::default() }
    }
}

fn format_of(file: &dyn BackupFile) -> Result<BackupFormat, OpenError> {
    let mut head = [0u8; DETECT_LEN];
    let mut got = 0;
    while got < head.len() {
        let n = file.read_at(&mut head[got..], got as u64).map_err(|e| OpenError::Io(e.to_string()))?;
        if n == 0 {
            break;
        }
        got += n;
    }
    detect(&head[..got]).map_err(|_| OpenError::NotABackup)
}

fn open_blocking(
    unsealer: &dyn Unsealer,
    limits: ReadLimits,
    file: Arc<dyn BackupFile>,
    key: Option<BackupKey>,
) -> Result<OpenedBackup, OpenError> {
    let format = format_of(file.as_ref())?;
    let (payload, authenticity): (Arc<dyn BackupFile>, Box<dyn Authenticity>) = match format {
        BackupFormat::Plain => (file, Box::new(NoTag)),
        BackupFormat::Encrypted => {
            let key = key.ok_or(OpenError::PasswordRequired)?;
            let unsealed = unsealer.unseal(file, &key)?;
            (unsealed.payload, unsealed.authenticity)
        }
    };
    let size = payload.size();
    let zip = match ZipReader::open(BufReader::with_capacity(BUFFER, FileCursor::new(payload)), limits) {
        Ok(zip) => zip,
        // An encrypted payload that is no ZIP was most likely tampered with:
        // say so when the tag agrees.
        Err(e) => {
            if format == BackupFormat::Encrypted {
                futures::executor::block_on(authenticity.check())?;
            }
            return Err(OpenError::Zip(e.to_string()));
        }
    };
    let declared = declared(zip.entries());
    Ok(OpenedBackup { format, entries: Box::new(ZipEntries { zip, declared, size }), authenticity })
}

/// What the central directory declares, in the terms restore's policy checks.
pub(crate) fn declared(entries: &[EntryInfo]) -> Vec<DeclaredEntry> {
    entries
        .iter()
        .map(|e| DeclaredEntry {
            name: e.name.clone(),
            size: e.size,
            compressed_size: e.compressed_size,
            is_symlink: e.is_symlink,
            is_dir: e.is_dir,
        })
        .collect()
}

#[async_trait]
impl BackupReader for ZipBackupReader {
    async fn format(&self, file: &Arc<dyn BackupFile>) -> Result<BackupFormat, OpenError> {
        let file = file.clone();
        tokio::task::spawn_blocking(move || format_of(file.as_ref())).await.map_err(|e| OpenError::Io(e.to_string()))?
    }

    async fn open(&self, file: Arc<dyn BackupFile>, key: Option<&BackupKey>) -> Result<OpenedBackup, OpenError> {
        let (unsealer, limits, key) = (self.unsealer.clone(), self.limits, key.cloned());
        tokio::task::spawn_blocking(move || open_blocking(unsealer.as_ref(), limits, file, key))
            .await
            .map_err(|e| OpenError::Io(e.to_string()))?
    }
}

struct ZipEntries {
    zip: ZipReader<BufReader<FileCursor>>,
    declared: Vec<DeclaredEntry>,
    size: u64,
}

impl ArchiveEntries for ZipEntries {
    fn entries(&self) -> &[DeclaredEntry] {
        &self.declared
    }

    fn archive_size(&self) -> u64 {
        self.size
    }

    fn copy_entry(&mut self, index: usize, out: &mut dyn io::Write) -> Result<u64, EntryError> {
        let damaged = |e: ZipError| EntryError::Damaged(e.to_string());
        let mut reader = self.zip.open_entry(index).map_err(damaged)?;
        let mut buf = vec![0u8; BUFFER];
        let mut total = 0u64;
        loop {
            // A read error is the archive's; a write error the destination's.
            let n = reader.read(&mut buf).map_err(|e| EntryError::Damaged(e.to_string()))?;
            if n == 0 {
                return Ok(total);
            }
            out.write_all(&buf[..n]).map_err(EntryError::Write)?;
            total += n as u64;
        }
    }
}
