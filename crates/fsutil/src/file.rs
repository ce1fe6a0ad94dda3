//! Opening, syncing and removing files without trusting what else is in
//! the folder.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use backup_domain::StoreError;
use backup_domain::file::BackupFile;

/// Opens the regular file at `path` for reading, never through a symbolic
/// link at `path` itself: a link (or anything but a regular file) is
/// `NotFound`. The file opened is checked to be the one inspected, so a link
/// swapped in between is caught too.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let not_regular = || io::Error::new(io::ErrorKind::NotFound, format!("{} is not a regular file", path.display()));
    let before = std::fs::symlink_metadata(path)?;
    if !before.file_type().is_file() {
        return Err(not_regular());
    }
    let file = File::open(path)?;
    let after = file.metadata()?;
    if !after.is_file() || after.dev() != before.dev() || after.ino() != before.ino() {
        return Err(not_regular());
    }
    Ok(file)
}

/// Makes the names created or removed in `dir` durable. Best effort: some
/// file systems cannot sync a folder, and the data itself is synced apart.
pub fn sync_dir(dir: &Path) {
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
}

/// [`sync_dir`] on the folder holding `path`.
pub fn sync_parent(path: &Path) {
    sync_dir(&parent(path));
}

/// The folder holding `path` (`.` for a bare name).
pub fn parent(path: &Path) -> PathBuf {
    path.parent().filter(|p| !p.as_os_str().is_empty()).map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Removes a file, a symbolic link (not what it points to) or a folder
/// tree; absent is fine.
pub fn remove_any(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether an error means the disk (or a quota) is full.
pub fn is_full(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded)
}

/// Maps an io error to the store's vocabulary, naming the path.
pub fn map_io(path: &Path, e: io::Error) -> StoreError {
    let place = path.display().to_string();
    match e.kind() {
        io::ErrorKind::NotFound => StoreError::NotFound(place),
        io::ErrorKind::AlreadyExists => StoreError::AlreadyExists(place),
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => StoreError::PermissionDenied(place),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => StoreError::Full(place),
        _ => StoreError::Other(format!("{place}: {e}")),
    }
}

/// A local file as a [`BackupFile`]; optionally a temporary, removed when
/// dropped.
#[derive(Debug)]
pub struct LocalFile {
    file: File,
    size: u64,
    path: PathBuf,
    temporary: bool,
}

impl LocalFile {
    /// The file at `path`, following links (a path a person typed).
    pub fn open(path: &Path) -> io::Result<LocalFile> {
        let file = File::open(path)?;
        Self::from_file(file, path, false)
    }

    /// An already open file; `temporary` removes `path` on drop.
    pub fn from_file(file: File, path: &Path, temporary: bool) -> io::Result<LocalFile> {
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a file", path.display())));
        }
        Ok(LocalFile { file, size: meta.len(), path: path.to_path_buf(), temporary })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LocalFile {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl BackupFile for LocalFile {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.size {
            return Ok(0);
        }
        let room = usize::try_from(self.size - offset).unwrap_or(usize::MAX).min(buf.len());
        self.file.read_at(&mut buf[..room], offset)
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_folders_are_not_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("secret");
        std::fs::write(&target, b"secret").unwrap();
        let link = dir.path().join("framerr-manual-2026-01-01T00-00-00.zip");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(open_regular(&link).unwrap_err().kind(), io::ErrorKind::NotFound);
        assert_eq!(open_regular(dir.path()).unwrap_err().kind(), io::ErrorKind::NotFound);
        assert!(open_regular(&target).is_ok());
        remove_any(&link).unwrap();
        assert!(target.exists(), "removing a link removed its target");
    }

    #[test]
    fn local_files_read_at_offsets_and_temporaries_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, b"abcdef").unwrap();
        let file = LocalFile::from_file(File::open(&path).unwrap(), &path, true).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(file.read_at(&mut buf, 4).unwrap(), 2);
        assert_eq!(&buf[..2], b"ef");
        assert_eq!(file.read_at(&mut buf, 9).unwrap(), 0);
        drop(file);
        assert!(!path.exists());
    }
}
