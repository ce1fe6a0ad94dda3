//! A backup's bytes with random access, as restore and verify read them.
//!
//! A ZIP archive is read from its end (the central directory) and then
//! entry by entry, so restore needs random access; an encrypted backup's tag
//! is checked over the whole ciphertext alongside, from another thread. A
//! [`BackupFile`] therefore reads at an offset (`pread`), never through a
//! shared cursor; [`FileCursor`] gives one reader its own position.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

/// A backup's bytes, readable at any offset from several threads at once.
pub trait BackupFile: Send + Sync {
    /// The length in bytes.
    fn size(&self) -> u64;
    /// Reads up to `buf.len()` bytes at `offset`; 0 only at the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Where the bytes come from, for messages.
    fn describe(&self) -> String;
}

impl BackupFile for Vec<u8> {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(self.len());
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
    fn describe(&self) -> String {
        "memory".to_owned()
    }
}

/// A [`BackupFile`] read through a position of its own.
pub struct FileCursor {
    file: Arc<dyn BackupFile>,
    pos: u64,
}

impl FileCursor {
    pub fn new(file: Arc<dyn BackupFile>) -> Self {
        FileCursor { file, pos: 0 }
    }

    pub fn file(&self) -> &Arc<dyn BackupFile> {
        &self.file
    }
}

impl std::fmt::Debug for FileCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileCursor").field("file", &self.file.describe()).field("pos", &self.pos).finish()
    }
}

impl Read for FileCursor {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for FileCursor {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.file.size().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_independent() {
        let file: Arc<dyn BackupFile> = Arc::new(b"0123456789".to_vec());
        let (mut a, mut b) = (FileCursor::new(file.clone()), FileCursor::new(file));
        let mut buf = [0u8; 4];
        a.seek(SeekFrom::End(-3)).unwrap();
        assert_eq!(a.read(&mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"789");
        assert_eq!(b.read(&mut buf).unwrap(), 4);
        assert_eq!(&buf, b"0123");
        assert!(b.seek(SeekFrom::Current(-10)).is_err());
        assert_eq!(a.read(&mut buf).unwrap(), 0);
    }
}
