//! The `Archiver` port on the local asset folders: the ZIP is built on a
//! blocking thread (deflate is CPU work) and handed to the async output in
//! bounded chunks, so memory stays flat whatever the backup's size.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use futures_io::AsyncWrite;
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_util::compat::{FuturesAsyncReadCompatExt, FuturesAsyncWriteCompatExt};
use tokio_util::io::SyncIoBridge;

use backup_domain::manifest::{DATABASE_ENTRY, MANIFEST_ENTRY};
use backup_domain::ports::{Archiver, Snapshot};
use backup_domain::{ArchiveError, AssetPaths, Assets, Manifest};

use crate::deflate::DeflateOptions;
use crate::write::ZipWriter;

#[derive(Debug, Clone)]
pub struct ZipArchiver {
    assets: AssetPaths,
    deflate: DeflateOptions,
}

impl ZipArchiver {
    pub fn new(assets: AssetPaths, deflate: DeflateOptions) -> Self {
        ZipArchiver { assets, deflate }
    }
}

/// How many output chunks may wait for the async side.
const CHANNEL_DEPTH: usize = 4;
const CHUNK: usize = 256 * 1024;

#[async_trait]
impl Archiver for ZipArchiver {
    async fn assets(&self) -> Assets {
        let paths = self.assets.clone();
        tokio::task::spawn_blocking(move || Assets::from_fn(|f| paths.get(f).is_dir())).await.unwrap_or_default()
    }

    async fn write(
        &self,
        snapshot: &dyn Snapshot,
        manifest: Manifest,
        out: &mut (dyn AsyncWrite + Send + Unpin),
        progress: &(dyn Fn(u8) + Send + Sync),
    ) -> Result<Manifest, ArchiveError> {
        let db = SyncIoBridge::new(snapshot.open().await.map_err(|e| ArchiveError::Other(e.to_string()))?.compat());
        let db_size = snapshot.size();
        let extras: Vec<Extra> = snapshot
            .extras()
            .await
            .map_err(|e| ArchiveError::Other(e.to_string()))?
            .into_iter()
            .map(|(name, size, reader)| Extra { name, size, reader: SyncIoBridge::new(reader.compat()) })
            .collect();
        let (chunk_tx, mut chunk_rx) = mpsc::channel::<Vec<u8>>(CHANNEL_DEPTH);
        let (percent_tx, mut percent_rx) = mpsc::unbounded_channel::<u8>();
        let output_failed = Arc::new(AtomicBool::new(false));
        let job = Job {
            assets: self.assets.clone(),
            deflate: self.deflate,
            output_failed: Arc::clone(&output_failed),
            percent: percent_tx,
        };
        let builder = tokio::task::spawn_blocking(move || {
            let sink =
                ChannelWriter { tx: chunk_tx, buf: Vec::with_capacity(CHUNK), failed: job.output_failed.clone() };
            job.run(db, db_size, extras, manifest, sink)
        });

        let mut out = out.compat_write();
        let mut write_error = None;
        let mut chunks_open = true;
        let mut percents_open = true;
        while chunks_open || percents_open {
            tokio::select! {
                chunk = chunk_rx.recv(), if chunks_open => match chunk {
                    Some(chunk) if write_error.is_none() => {
                        if let Err(e) = out.write_all(&chunk).await {
                            write_error = Some(e);
                            output_failed.store(true, Ordering::Release);
                            // Dropping the receiver stops the builder.
                            chunk_rx.close();
                        }
                    }
                    Some(_) => {}
                    None => chunks_open = false,
                },
                percent = percent_rx.recv(), if percents_open => match percent {
                    Some(p) => progress(p),
                    None => percents_open = false,
                },
            }
        }
        let built = builder.await.map_err(|e| ArchiveError::Other(format!("archive builder stopped: {e}")))?;
        if let Some(e) = write_error {
            return Err(ArchiveError::Output(e.to_string()));
        }
        let manifest = built?;
        out.flush().await.map_err(|e| ArchiveError::Output(e.to_string()))?;
        Ok(manifest)
    }
}

/// A further entry that belongs with the database (a raw copy's WAL).
struct Extra {
    name: String,
    size: u64,
    reader: SyncIoBridge<tokio_util::compat::Compat<Box<dyn futures_io::AsyncRead + Send + Unpin>>>,
}

/// Everything the blocking builder needs, owned.
struct Job {
    assets: AssetPaths,
    deflate: DeflateOptions,
    output_failed: Arc<AtomicBool>,
    percent: mpsc::UnboundedSender<u8>,
}

/// One regular file of an asset folder.
struct AssetFile {
    entry: String,
    path: PathBuf,
    size: u64,
    modified: OffsetDateTime,
}

impl Job {
    fn run(
        self,
        db: impl Read,
        db_size: u64,
        extras: Vec<Extra>,
        mut manifest: Manifest,
        sink: ChannelWriter,
    ) -> Result<Manifest, ArchiveError> {
        let files = self.asset_files()?;
        let total = db_size + extras.iter().map(|e| e.size).sum::<u64>() + files.iter().map(|f| f.size).sum::<u64>();
        let mut done = 0u64;
        let mut last_percent = 0u8;
        let mut report = |bytes: u64| {
            let p = (bytes.min(total) * 100).checked_div(total).unwrap_or(100) as u8;
            if p > last_percent {
                last_percent = p;
                let _ = self.percent.send(p);
            }
        };
        let mut zip = ZipWriter::new(sink, self.deflate);
        let created = manifest.created_at;
        let mut digests = Vec::with_capacity(files.len() + 1);
        let digest = zip
            .add(DATABASE_ENTRY, created, db_size, BufReader::with_capacity(CHUNK, db), &mut report)
            .map_err(|e| self.error(e, "the database snapshot"))?;
        done += digest.size;
        digests.push(digest);
        backup_fsutil::failpoint("create:database-archived");
        for extra in extras {
            let digest = zip
                .add(&extra.name, created, extra.size, BufReader::with_capacity(CHUNK, extra.reader), |n| {
                    report(done + n)
                })
                .map_err(|e| self.error(e, &extra.name))?;
            done += digest.size;
            digests.push(digest);
        }
        for file in &files {
            let source = File::open(&file.path).map_err(|e| source_error(&file.path, e))?;
            let digest = zip
                .add(&file.entry, file.modified, file.size, source, |n| report(done + n))
                .map_err(|e| self.error(e, &file.path.display().to_string()))?;
            done += digest.size;
            digests.push(digest);
        }
        manifest.entries = Some(digests);
        let json = manifest.to_json();
        zip.add(MANIFEST_ENTRY, created, json.len() as u64, json.as_bytes(), |_| {})
            .map_err(|e| self.error(e, MANIFEST_ENTRY))?;
        let mut sink = zip.finish().map_err(|e| self.error(e, "the archive"))?;
        sink.flush().map_err(|e| self.error(e, "the archive"))?;
        report(total);
        Ok(manifest)
    }

    /// An IO error in the builder is the output's when the output side
    /// failed, otherwise the source's.
    fn error(&self, e: io::Error, what: &str) -> ArchiveError {
        if self.output_failed.load(Ordering::Acquire) {
            ArchiveError::Output("the output stopped accepting data".into())
        } else {
            ArchiveError::Source { path: what.to_owned(), detail: e.to_string() }
        }
    }

    /// Regular files directly inside each asset folder, sorted by name.
    /// Symbolic links are skipped: following one could put any file of the
    /// host into a backup.
    fn asset_files(&self) -> Result<Vec<AssetFile>, ArchiveError> {
        let mut files = Vec::new();
        for (folder, dir) in self.assets.iter() {
            let prefix = folder.prefix();
            let entries = match std::fs::read_dir(dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(source_error(dir, e)),
            };
            let mut found = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| source_error(dir, e))?;
                let path = entry.path();
                let meta = std::fs::symlink_metadata(&path).map_err(|e| source_error(&path, e))?;
                if !meta.file_type().is_file() {
                    if meta.file_type().is_symlink() {
                        tracing::warn!(path = %path.display(), "skipping symbolic link in asset folder");
                    }
                    continue;
                }
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    tracing::warn!(path = %path.display(), "skipping asset whose name is not UTF-8");
                    continue;
                };
                let modified = meta.modified().map(OffsetDateTime::from).unwrap_or(OffsetDateTime::UNIX_EPOCH);
                found.push(AssetFile { entry: format!("{prefix}/{name}"), path, size: meta.len(), modified });
            }
            found.sort_by(|a, b| a.entry.cmp(&b.entry));
            files.extend(found);
        }
        Ok(files)
    }
}

fn source_error(path: &Path, e: io::Error) -> ArchiveError {
    ArchiveError::Source { path: path.display().to_string(), detail: e.to_string() }
}

/// A `Write` that hands full chunks to the async side through a bounded
/// channel, blocking when the output is slower than the compressor.
struct ChannelWriter {
    tx: mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
    failed: Arc<AtomicBool>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx.blocking_send(chunk).map_err(|_| {
            self.failed.store(true, Ordering::Release);
            io::Error::new(io::ErrorKind::BrokenPipe, "output closed")
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}
