//! The `BackupStore` port on a local folder (Framerr's backups folder).
//!
//! A backup is written to a hidden temporary file in the same folder,
//! fsynced, then linked to its final name (which fails if the name exists,
//! so nothing is ever clobbered), and the folder is fsynced. A crash at any
//! instant leaves either no backup or a complete one under the final name;
//! its temporary leftovers are removed by [`FsStore::prepare`] (once their
//! owner is gone) and never listed. Backups are opened and deleted without
//! following symbolic links: a link planted in the folder is not a backup.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use futures_io::AsyncWrite;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

use backup_domain::file::BackupFile;
use backup_domain::ports::{BackupStore, Download, Place, Scratch, StoredBackup, Upload};
use backup_domain::{BackupName, StoreError};
use backup_fsutil::temp::{SNAPSHOT_PREFIX, UPLOAD_PREFIX};
use backup_fsutil::{LocalFile, TempPath, map_io, open_regular, remove_stale_temporaries, temporary_path};

const BUFFER: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct FsStore {
    dir: PathBuf,
}

impl FsStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FsStore { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where a backup of this name lives (whether or not it exists).
    pub fn path_of(&self, name: &BackupName) -> PathBuf {
        self.dir.join(name.to_string())
    }
}

/// `path` made absolute, every link on the way followed (a dangling one
/// too) and every `.` and `..` resolved, as far as the path exists; the
/// rest as written. Past 40 links (a loop), what is resolved so far.
fn resolved(path: &Path) -> PathBuf {
    let mut pending: PathBuf = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut hops = 0;
    'again: loop {
        let mut done = PathBuf::from("/");
        let current = pending.clone();
        let components: Vec<std::path::Component<'_>> = current.components().collect();
        for (i, component) in components.iter().enumerate() {
            match component {
                std::path::Component::Normal(name) => {
                    let next = done.join(name);
                    let link = std::fs::symlink_metadata(&next).is_ok_and(|m| m.file_type().is_symlink());
                    if link
                        && hops < 40
                        && let Ok(target) = std::fs::read_link(&next)
                    {
                        hops += 1;
                        // `done` has no links in it: a relative target
                        // starts there.
                        let mut again = done.join(target);
                        again.extend(&components[i + 1..]);
                        pending = again;
                        continue 'again;
                    }
                    done = next;
                }
                std::path::Component::ParentDir => {
                    done.pop();
                }
                std::path::Component::RootDir | std::path::Component::CurDir | std::path::Component::Prefix(_) => {}
            }
        }
        return done;
    }
}

#[async_trait]
impl BackupStore for FsStore {
    /// A `file://` URL of the absolute folder.
    fn describe(&self) -> String {
        let dir = std::path::absolute(&self.dir).unwrap_or_else(|_| self.dir.clone());
        format!("file://{}", dir.display())
    }

    /// The folder's device and inode, or, before it exists, its path with
    /// links followed and `.`/`..` resolved: one folder however spelled.
    fn place(&self) -> Place {
        use std::os::unix::fs::MetadataExt;
        match std::fs::metadata(&self.dir) {
            Ok(meta) => Place::Folder { device: meta.dev(), inode: meta.ino() },
            Err(_) => Place::NewFolder(resolved(&self.dir).display().to_string()),
        }
    }

    /// Creates the folder if needed and removes temporary files that an
    /// interrupted upload or snapshot left behind (never a live one's).
    async fn prepare(&self) -> Result<(), StoreError> {
        tokio::fs::create_dir_all(&self.dir).await.map_err(|e| map_io(&self.dir, e))?;
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || remove_stale_temporaries(&dir, &[UPLOAD_PREFIX, SNAPSHOT_PREFIX]))
            .await
            .map_err(|e| StoreError::Other(e.to_string()))?;
        Ok(())
    }

    async fn list(&self) -> Result<Vec<StoredBackup>, StoreError> {
        let mut entries = match tokio::fs::read_dir(&self.dir).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(map_io(&self.dir, e)),
        };
        let mut found = Vec::new();
        while let Some(entry) = entries.next_entry().await.map_err(|e| map_io(&self.dir, e))? {
            let Some(name) = entry.file_name().to_str().and_then(|n| BackupName::parse(n).ok()) else {
                continue;
            };
            // Regular files only: a symlink or folder with a backup's name is
            // not a backup this store made.
            match tokio::fs::symlink_metadata(entry.path()).await {
                Ok(meta) if meta.file_type().is_file() => found.push(StoredBackup { name, size: meta.len() }),
                _ => {}
            }
        }
        Ok(found)
    }

    async fn create(&self, name: &BackupName) -> Result<Box<dyn Upload>, StoreError> {
        tokio::fs::create_dir_all(&self.dir).await.map_err(|e| map_io(&self.dir, e))?;
        let temp = temporary_path(&self.dir, UPLOAD_PREFIX, &format!("{}.partial", name.stem()))
            .map_err(|e| map_io(&self.dir, e))?;
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .await
            .map_err(|e| map_io(&temp, e))?;
        Ok(Box::new(FsUpload {
            writer: Some(BufWriter::with_capacity(BUFFER, file).compat_write()),
            temp,
            dest: self.path_of(name),
            name: name.clone(),
            dir: self.dir.clone(),
        }))
    }

    async fn open(&self, name: &BackupName) -> Result<Download, StoreError> {
        let file = self.open_regular(name).await?;
        let size = file.metadata().map_err(|e| map_io(&self.path_of(name), e))?.len();
        let reader = tokio::io::BufReader::with_capacity(BUFFER, tokio::fs::File::from_std(file)).compat();
        Ok(Download { size, reader: Box::new(reader) })
    }

    async fn read_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.dir.join(backup_domain::ports::document_name(key)?);
        // A link (dangling or not) or a folder in a document's place was
        // put there by someone else: an error, never "no document".
        match tokio::fs::symlink_metadata(&path).await {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(map_io(&path, e)),
            Ok(m) if !m.file_type().is_file() => {
                return Err(StoreError::Other(format!("{} is not a regular file", path.display())));
            }
            Ok(_) => {}
        }
        match tokio::fs::read(&path).await {
            Ok(data) => Ok(Some(data)),
            Err(e) => Err(map_io(&path, e)),
        }
    }

    async fn write_meta(&self, key: &str, data: &[u8]) -> Result<(), StoreError> {
        let path = self.dir.join(backup_domain::ports::document_name(key)?);
        tokio::fs::create_dir_all(&self.dir).await.map_err(|e| map_io(&self.dir, e))?;
        let temp = TempPath::new(&self.dir, UPLOAD_PREFIX, "meta").map_err(|e| map_io(&self.dir, e))?;
        let mut file = tokio::fs::File::create_new(temp.path()).await.map_err(|e| map_io(temp.path(), e))?;
        file.write_all(data).await.map_err(|e| map_io(temp.path(), e))?;
        file.sync_all().await.map_err(|e| map_io(temp.path(), e))?;
        tokio::fs::rename(temp.path(), &path).await.map_err(|e| map_io(&path, e))?;
        let _ = temp.keep();
        sync_dir(&self.dir).await;
        Ok(())
    }

    async fn open_file(&self, name: &BackupName) -> Result<Option<Arc<dyn BackupFile>>, StoreError> {
        let file = self.open_regular(name).await?;
        let path = self.path_of(name);
        let local = LocalFile::from_file(file, &path, false).map_err(|e| map_io(&path, e))?;
        Ok(Some(Arc::new(local)))
    }

    async fn delete(&self, name: &BackupName) -> Result<(), StoreError> {
        let path = self.path_of(name);
        match tokio::fs::symlink_metadata(&path).await {
            Ok(meta) if meta.file_type().is_file() => {}
            Ok(_) => return Err(StoreError::NotFound(name.to_string())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StoreError::NotFound(name.to_string())),
            Err(e) => return Err(map_io(&path, e)),
        }
        tokio::fs::remove_file(&path).await.map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::NotFound(name.to_string()),
            _ => map_io(&path, e),
        })?;
        sync_dir(&self.dir).await;
        Ok(())
    }
}

impl FsStore {
    /// The backup's file, never through a symbolic link.
    async fn open_regular(&self, name: &BackupName) -> Result<std::fs::File, StoreError> {
        let path = self.path_of(name);
        let opened = tokio::task::spawn_blocking({
            let path = path.clone();
            move || open_regular(&path)
        })
        .await
        .map_err(|e| StoreError::Other(e.to_string()))?;
        opened.map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::NotFound(name.to_string()),
            _ => map_io(&path, e),
        })
    }
}

/// Scratch space in a local folder: remote backups are copied here to be
/// read with random access, and removed when no longer needed.
#[derive(Debug, Clone)]
pub struct FsScratch {
    dir: PathBuf,
}

impl FsScratch {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FsScratch { dir: dir.into() }
    }
}

#[async_trait]
impl Scratch for FsScratch {
    async fn keep(
        &self,
        reader: &mut (dyn futures_io::AsyncRead + Send + Unpin),
    ) -> Result<Arc<dyn BackupFile>, StoreError> {
        tokio::fs::create_dir_all(&self.dir).await.map_err(|e| map_io(&self.dir, e))?;
        let temp = TempPath::new(&self.dir, UPLOAD_PREFIX, "fetched").map_err(|e| map_io(&self.dir, e))?;
        let path = temp.path().to_path_buf();
        // Read back at random offsets later: read and write.
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(|e| map_io(&path, e))?;
        let mut out = tokio::io::BufWriter::with_capacity(BUFFER, file);
        let mut reader = tokio_util::compat::FuturesAsyncReadCompatExt::compat(reader);
        tokio::io::copy(&mut reader, &mut out).await.map_err(|e| map_io(&path, e))?;
        out.flush().await.map_err(|e| map_io(&path, e))?;
        let file = out.into_inner().into_std().await;
        // From here the file removes itself when dropped.
        let local = LocalFile::from_file(file, &temp.keep(), true).map_err(|e| map_io(&path, e))?;
        Ok(Arc::new(local))
    }
}

struct FsUpload {
    writer: Option<Compat<BufWriter<tokio::fs::File>>>,
    temp: PathBuf,
    dest: PathBuf,
    name: BackupName,
    dir: PathBuf,
}

impl FsUpload {
    fn with_path(&self, e: io::Error) -> io::Error {
        let full = matches!(e.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded);
        let what = if full { "no space left on the device".to_owned() } else { e.to_string() };
        io::Error::new(e.kind(), format!("{}: {what}", self.temp.display()))
    }

    fn writer(&mut self) -> io::Result<Pin<&mut Compat<BufWriter<tokio::fs::File>>>> {
        self.writer.as_mut().map(Pin::new).ok_or_else(|| io::Error::other("upload already finished"))
    }

    async fn finish(&mut self, replace: bool) -> Result<(), StoreError> {
        let mut file =
            self.writer.take().ok_or_else(|| StoreError::Other("upload already finished".into()))?.into_inner();
        file.flush().await.map_err(|e| map_io(&self.temp, e))?;
        let file = file.into_inner();
        file.sync_all().await.map_err(|e| map_io(&self.temp, e))?;
        drop(file);
        if replace {
            // rename(2) replaces atomically: readers see the old file or the new one.
            tokio::fs::rename(&self.temp, &self.dest).await.map_err(|e| map_io(&self.dest, e))?;
            sync_dir(&self.dir).await;
            return Ok(());
        }
        // A hard link never replaces an existing file: no clobbering, even
        // against another process. Fall back to a checked rename on file
        // systems without hard links.
        match tokio::fs::hard_link(&self.temp, &self.dest).await {
            Ok(()) => {
                tokio::fs::remove_file(&self.temp).await.map_err(|e| map_io(&self.temp, e))?;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(StoreError::AlreadyExists(self.name.to_string()));
            }
            Err(_) => {
                if tokio::fs::symlink_metadata(&self.dest).await.is_ok() {
                    return Err(StoreError::AlreadyExists(self.name.to_string()));
                }
                tokio::fs::rename(&self.temp, &self.dest).await.map_err(|e| map_io(&self.dest, e))?;
            }
        }
        sync_dir(&self.dir).await;
        Ok(())
    }
}

/// Makes a rename or unlink in `dir` durable. Best effort: some file
/// systems cannot fsync a folder, and the data itself is already synced.
async fn sync_dir(dir: &Path) {
    if let Ok(d) = tokio::fs::File::open(dir).await {
        let _ = d.sync_all().await;
    }
}

impl Drop for FsUpload {
    fn drop(&mut self) {
        // Committed or not, the temporary name must not survive us.
        let _ = std::fs::remove_file(&self.temp);
    }
}

impl AsyncWrite for FsUpload {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let poll = self.writer()?.poll_write(cx, buf);
        poll.map_err(|e| self.with_path(e))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = self.writer()?.poll_flush(cx);
        poll.map_err(|e| self.with_path(e))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Closing is committing's job; here we only flush.
        let poll = self.writer()?.poll_flush(cx);
        poll.map_err(|e| self.with_path(e))
    }
}

#[async_trait]
impl Upload for FsUpload {
    async fn commit(mut self: Box<Self>) -> Result<StoredBackup, StoreError> {
        self.finish(false).await?;
        let size = tokio::fs::metadata(&self.dest).await.map_err(|e| map_io(&self.dest, e))?.len();
        Ok(StoredBackup { name: self.name.clone(), size })
    }

    async fn commit_replacing(mut self: Box<Self>) -> Result<StoredBackup, StoreError> {
        self.finish(true).await?;
        let size = tokio::fs::metadata(&self.dest).await.map_err(|e| map_io(&self.dest, e))?.len();
        Ok(StoredBackup { name: self.name.clone(), size })
    }

    async fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<(), StoreError> {
        use tokio::io::AsyncSeekExt;
        let temp = self.temp.clone();
        let writer = self.writer.as_mut().ok_or_else(|| StoreError::Other("upload already finished".into()))?;
        let buffered = writer.get_mut();
        buffered.flush().await.map_err(|e| map_io(&temp, e))?;
        let file = buffered.get_mut();
        let end = file.seek(std::io::SeekFrom::End(0)).await.map_err(|e| map_io(&temp, e))?;
        if offset.checked_add(bytes.len() as u64).is_none_or(|e| e > end) {
            return Err(StoreError::Other(format!("{}: write_at past the end", temp.display())));
        }
        file.seek(std::io::SeekFrom::Start(offset)).await.map_err(|e| map_io(&temp, e))?;
        file.write_all(bytes).await.map_err(|e| map_io(&temp, e))?;
        file.seek(std::io::SeekFrom::Start(end)).await.map_err(|e| map_io(&temp, e))?;
        Ok(())
    }

    async fn abort(self: Box<Self>) -> Result<(), StoreError> {
        // Drop removes the temporary file.
        Ok(())
    }
}
