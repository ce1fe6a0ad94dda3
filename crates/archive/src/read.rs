//! A ZIP reader for archives that may be hostile. It trusts the central
//! directory, checks every local header against it, bounds everything it
//! allocates, and verifies each entry's CRC-32 and size as it streams.
//! Nothing in here panics on bad input; every problem is a [`ZipError`].

use std::io::{self, Read, Seek, SeekFrom};

use flate2::read::DeflateDecoder;

use crate::format::*;

/// Limits for reading an archive from an untrusted source.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    pub max_entries: u64,
    pub max_central_directory: u64,
}

impl Default for ReadLimits {
    fn default() -> Self {
        // A backup has a handful of entries plus one per asset file.
        ReadLimits { max_entries: 100_000, max_central_directory: 64 * 1024 * 1024 }
    }
}

/// Why an archive could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ZipError {
    #[error("not a ZIP archive: {0}")]
    NotZip(&'static str),
    #[error("damaged ZIP archive: {0}")]
    Corrupt(String),
    #[error("unsupported ZIP feature: {0}")]
    Unsupported(String),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// An entry as the central directory describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    /// The raw name; check it before using it as a path.
    pub name: String,
    pub method: u16,
    pub crc32: u32,
    pub compressed_size: u64,
    pub size: u64,
    pub is_symlink: bool,
    pub is_dir: bool,
    pub encrypted: bool,
    local_header_offset: u64,
}

#[derive(Debug)]
pub struct ZipReader<R> {
    inner: R,
    entries: Vec<EntryInfo>,
    archive_len: u64,
}

impl<R: Read + Seek> ZipReader<R> {
    pub fn open(mut inner: R, limits: ReadLimits) -> Result<Self, ZipError> {
        let archive_len = inner.seek(SeekFrom::End(0))?;
        let (eocd_pos, eocd) = find_end_record(&mut inner, archive_len)?;
        let mut c = Cursor::new(&eocd);
        c.take(4);
        let (disk, cd_disk) = (c.u16(), c.u16());
        let (_, count16) = (c.u16(), c.u16());
        let (size32, offset32) = (c.u32(), c.u32());
        let (Some(disk), Some(cd_disk), Some(count16), Some(size32), Some(offset32)) =
            (disk, cd_disk, count16, size32, offset32)
        else {
            return Err(ZipError::NotZip("truncated end record"));
        };
        if disk != 0 || cd_disk != 0 {
            return Err(ZipError::Unsupported("multi-disk archives".into()));
        }
        let (mut count, mut cd_size, mut cd_offset) = (count16 as u64, size32 as u64, offset32 as u64);
        let needs_zip64 = count16 == u16::MAX || size32 == u32::MAX || offset32 == u32::MAX;
        if needs_zip64 && let Some((c64, s64, o64)) = read_zip64_end(&mut inner, eocd_pos)? {
            (count, cd_size, cd_offset) = (c64, s64, o64);
        }
        if count > limits.max_entries {
            return Err(ZipError::Unsupported(format!("{count} entries (the limit is {})", limits.max_entries)));
        }
        if cd_size > limits.max_central_directory {
            return Err(ZipError::Unsupported(format!("a {cd_size}-byte central directory")));
        }
        if cd_offset.checked_add(cd_size).is_none_or(|end| end > eocd_pos) {
            return Err(ZipError::Corrupt("central directory lies outside the archive".into()));
        }
        inner.seek(SeekFrom::Start(cd_offset))?;
        let mut cd = vec![0u8; cd_size as usize];
        inner.read_exact(&mut cd)?;
        let entries = parse_central_directory(&cd, count, cd_offset)?;
        Ok(ZipReader { inner, entries, archive_len })
    }

    pub fn entries(&self) -> &[EntryInfo] {
        &self.entries
    }

    /// The index of the entry with this exact name.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.entries.iter().position(|e| e.name == name)
    }

    /// Streams the uncompressed content of entry `index`. The reader fails
    /// if the content is longer or shorter than declared or its CRC-32 does
    /// not match, so a caller that reads to the end has verified it.
    pub fn open_entry(&mut self, index: usize) -> Result<EntryReader<'_, R>, ZipError> {
        let entry = self.entries.get(index).ok_or_else(|| ZipError::Corrupt("no such entry".into()))?.clone();
        if entry.encrypted {
            return Err(ZipError::Unsupported(format!("{} is encrypted with ZIP encryption", entry.name)));
        }
        self.inner.seek(SeekFrom::Start(entry.local_header_offset))?;
        let mut fixed = [0u8; 30];
        self.inner.read_exact(&mut fixed).map_err(|_| corrupt(&entry, "local header is truncated"))?;
        let mut c = Cursor::new(&fixed);
        let sig = c.u32();
        c.take(2);
        let _flags = c.u16();
        let method = c.u16();
        c.take(16);
        let (name_len, extra_len) = (c.u16().unwrap_or(0), c.u16().unwrap_or(0));
        if sig != Some(LOCAL_HEADER) {
            return Err(corrupt(&entry, "local header signature is wrong"));
        }
        if method != Some(entry.method) {
            return Err(corrupt(&entry, "local header disagrees with the central directory"));
        }
        let mut name = vec![0u8; name_len as usize];
        self.inner.read_exact(&mut name).map_err(|_| corrupt(&entry, "local header is truncated"))?;
        if name != entry.name.as_bytes() {
            return Err(corrupt(&entry, "local header names another file"));
        }
        let data_start = entry.local_header_offset + 30 + name_len as u64 + extra_len as u64;
        if data_start.checked_add(entry.compressed_size).is_none_or(|end| end > self.archive_len) {
            return Err(corrupt(&entry, "data runs past the end of the archive"));
        }
        self.inner.seek(SeekFrom::Start(data_start))?;
        let raw = (&mut self.inner).take(entry.compressed_size);
        let body = match entry.method {
            METHOD_STORED => Body::Stored(raw),
            METHOD_DEFLATE => Body::Deflate(Box::new(DeflateDecoder::new(raw))),
            other => return Err(ZipError::Unsupported(format!("{}: compression method {other}", entry.name))),
        };
        Ok(EntryReader { body, crc: crc32fast::Hasher::new(), read: 0, entry })
    }
}

fn corrupt(entry: &EntryInfo, what: &str) -> ZipError {
    ZipError::Corrupt(format!("{}: {what}", entry.name))
}

enum Body<'a, R> {
    Stored(io::Take<&'a mut R>),
    Deflate(Box<DeflateDecoder<io::Take<&'a mut R>>>),
}

/// The content of one entry, checked as it is read.
pub struct EntryReader<'a, R> {
    body: Body<'a, R>,
    crc: crc32fast::Hasher,
    read: u64,
    entry: EntryInfo,
}

impl<R> std::fmt::Debug for EntryReader<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryReader").field("entry", &self.entry.name).field("read", &self.read).finish()
    }
}

impl<R: Read> Read for EntryReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Ask for one byte more than declared, so a longer stream (a zip
        // bomb lying about its size) is caught without inflating it all.
        let room = (self.entry.size - self.read.min(self.entry.size)).saturating_add(1);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = match &mut self.body {
            Body::Stored(r) => r.read(&mut buf[..want]),
            Body::Deflate(r) => r.read(&mut buf[..want]),
        }
        .map_err(|e| invalid(&self.entry, &format!("cannot be decompressed ({e})")))?;
        self.read += n as u64;
        if self.read > self.entry.size {
            return Err(invalid(&self.entry, "is larger than its declared size"));
        }
        self.crc.update(&buf[..n]);
        if n == 0 && want > 0 {
            if self.read != self.entry.size {
                return Err(invalid(&self.entry, "is shorter than its declared size"));
            }
            if self.crc.clone().finalize() != self.entry.crc32 {
                return Err(invalid(&self.entry, "fails its CRC-32 check"));
            }
        }
        Ok(n)
    }
}

fn invalid(entry: &EntryInfo, what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{} {what}", entry.name))
}

/// Finds the end-of-central-directory record, scanning back over a comment
/// of up to 64 KiB.
fn find_end_record<R: Read + Seek>(r: &mut R, len: u64) -> Result<(u64, Vec<u8>), ZipError> {
    if len < 22 {
        return Err(ZipError::NotZip("file is too short"));
    }
    let tail_len = len.min(22 + 65_535);
    let start = len - tail_len;
    r.seek(SeekFrom::Start(start))?;
    let mut tail = vec![0u8; tail_len as usize];
    r.read_exact(&mut tail)?;
    let sig = END_OF_CENTRAL_DIR.to_le_bytes();
    (0..=tail.len() - 22)
        .rev()
        .find(|&i| {
            tail[i..i + 4] == sig && {
                let comment_len = u16::from_le_bytes([tail[i + 20], tail[i + 21]]) as usize;
                i + 22 + comment_len == tail.len()
            }
        })
        .map(|i| (start + i as u64, tail[i..i + 22].to_vec()))
        .ok_or(ZipError::NotZip("no end of central directory record"))
}

fn read_zip64_end<R: Read + Seek>(r: &mut R, eocd_pos: u64) -> Result<Option<(u64, u64, u64)>, ZipError> {
    let Some(locator_pos) = eocd_pos.checked_sub(20) else { return Ok(None) };
    r.seek(SeekFrom::Start(locator_pos))?;
    let mut locator = [0u8; 20];
    r.read_exact(&mut locator)?;
    let mut c = Cursor::new(&locator);
    if c.u32() != Some(ZIP64_LOCATOR) {
        return Ok(None);
    }
    c.take(4);
    let record_pos = c.u64().unwrap_or(u64::MAX);
    if record_pos.checked_add(56).is_none_or(|end| end > locator_pos) {
        return Err(ZipError::Corrupt("Zip64 end record lies outside the archive".into()));
    }
    r.seek(SeekFrom::Start(record_pos))?;
    let mut record = [0u8; 56];
    r.read_exact(&mut record)?;
    let mut c = Cursor::new(&record);
    if c.u32() != Some(ZIP64_END_OF_CENTRAL_DIR) {
        return Err(ZipError::Corrupt("Zip64 end record signature is wrong".into()));
    }
    c.take(20);
    let _on_disk = c.u64();
    match (c.u64(), c.u64(), c.u64()) {
        (Some(count), Some(size), Some(offset)) => Ok(Some((count, size, offset))),
        _ => Err(ZipError::Corrupt("Zip64 end record is truncated".into())),
    }
}

fn parse_central_directory(cd: &[u8], count: u64, cd_offset: u64) -> Result<Vec<EntryInfo>, ZipError> {
    let short = || ZipError::Corrupt("central directory is truncated".into());
    let mut c = Cursor::new(cd);
    let mut entries = Vec::with_capacity(count.min(1024) as usize);
    for _ in 0..count {
        if c.u32() != Some(CENTRAL_HEADER) {
            return Err(ZipError::Corrupt("central directory entry signature is wrong".into()));
        }
        let made_by = c.u16().ok_or_else(short)?;
        c.take(2).ok_or_else(short)?;
        let flags = c.u16().ok_or_else(short)?;
        let method = c.u16().ok_or_else(short)?;
        c.take(4).ok_or_else(short)?;
        let crc32 = c.u32().ok_or_else(short)?;
        let mut compressed_size = c.u32().ok_or_else(short)? as u64;
        let mut size = c.u32().ok_or_else(short)? as u64;
        let name_len = c.u16().ok_or_else(short)? as usize;
        let extra_len = c.u16().ok_or_else(short)? as usize;
        let comment_len = c.u16().ok_or_else(short)? as usize;
        c.take(4).ok_or_else(short)?;
        let external = c.u32().ok_or_else(short)?;
        let mut offset = c.u32().ok_or_else(short)? as u64;
        let name_bytes = c.take(name_len).ok_or_else(short)?;
        let extra = c.take(extra_len).ok_or_else(short)?;
        c.take(comment_len).ok_or_else(short)?;
        let name = String::from_utf8(name_bytes.to_vec())
            .map_err(|_| ZipError::Corrupt("an entry name is not UTF-8".into()))?;
        apply_zip64_extra(extra, &mut size, &mut compressed_size, &mut offset)
            .ok_or_else(|| ZipError::Corrupt(format!("{name}: Zip64 sizes are missing")))?;
        if offset >= cd_offset {
            return Err(ZipError::Corrupt(format!("{name}: local header lies outside the archive")));
        }
        let unix = made_by >> 8 == 3;
        let mode = external >> 16;
        entries.push(EntryInfo {
            is_symlink: unix && mode & S_IFMT == S_IFLNK,
            is_dir: name.ends_with('/')
                || (unix && mode & S_IFMT != 0 && mode & S_IFMT != S_IFREG && mode & S_IFMT != S_IFLNK),
            encrypted: flags & FLAG_ENCRYPTED != 0,
            name,
            method,
            crc32,
            compressed_size,
            size,
            local_header_offset: offset,
        });
    }
    if c.position() != cd.len() {
        return Err(ZipError::Corrupt("central directory size disagrees with its entries".into()));
    }
    Ok(entries)
}

/// Replaces each 32-bit field that is 0xFFFFFFFF with its Zip64 value, in
/// the order the format fixes. `None` when a needed value is missing.
fn apply_zip64_extra(extra: &[u8], size: &mut u64, compressed: &mut u64, offset: &mut u64) -> Option<()> {
    let needs = [*size == U32_MAX, *compressed == U32_MAX, *offset == U32_MAX];
    if !needs.contains(&true) {
        return Some(());
    }
    let mut c = Cursor::new(extra);
    while let (Some(id), Some(len)) = (c.u16(), c.u16()) {
        let body = c.take(len as usize)?;
        if id != ZIP64_EXTRA {
            continue;
        }
        let mut f = Cursor::new(body);
        for (need, field) in needs.iter().zip([size, compressed, offset]) {
            if *need {
                *field = f.u64()?;
            }
        }
        return Some(());
    }
    None
}
