//! A streaming ZIP writer: each entry is deflated (in parallel) straight to
//! the output, followed by a data descriptor, so nothing is ever held whole
//! in memory and the output need not be seekable (a pipe, an upload).
//!
//! Layout matches what Framerr writes (deflate, data descriptors, UTF-8
//! names, no directory entries). Zip64 fields appear only where a size or
//! offset needs them, so small backups stay readable by the simplest
//! readers.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use backup_domain::EntryDigest;

use crate::deflate::{DeflateOptions, deflate};
use crate::format::*;

struct Written {
    name: String,
    crc: u32,
    compressed: u64,
    uncompressed: u64,
    offset: u64,
    zip64_sizes: bool,
    date: u16,
    time: u16,
}

/// Counts what passes through to the output.
struct Counting<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Counting<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes)?;
        self.count += bytes.len() as u64;
        Ok(())
    }
}

pub struct ZipWriter<W: Write> {
    out: Counting<W>,
    entries: Vec<Written>,
    options: DeflateOptions,
    force_zip64: bool,
}

impl<W: Write> std::fmt::Debug for ZipWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZipWriter").field("written", &self.out.count).field("entries", &self.entries.len()).finish()
    }
}

impl<W: Write> ZipWriter<W> {
    pub fn new(out: W, options: DeflateOptions) -> Self {
        ZipWriter { out: Counting { inner: out, count: 0 }, entries: Vec::new(), options, force_zip64: false }
    }

    /// Writes Zip64 sizes and end records even where they are not needed,
    /// so tests can check the Zip64 layout without 4 GiB of data.
    pub fn force_zip64(mut self) -> Self {
        self.force_zip64 = true;
        self
    }

    /// Streams one entry from `data`. `size_hint` is the expected size; an
    /// entry that may reach 4 GiB gets Zip64 sizes. `progress` is called
    /// with the bytes read so far.
    pub fn add(
        &mut self,
        name: &str,
        modified: OffsetDateTime,
        size_hint: u64,
        data: impl Read,
        mut progress: impl FnMut(u64),
    ) -> io::Result<EntryDigest> {
        if name.len() as u64 > U16_MAX {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "entry name too long"));
        }
        // Deflate can grow incompressible data by ~5 bytes per 16 KiB; leave
        // a generous margin so the decision made now still holds at the end.
        let zip64_sizes = self.force_zip64 || size_hint + size_hint / 64 + (1 << 20) >= U32_MAX;
        let offset = self.out.count;
        let (date, time) = dos_date_time(modified);
        let flags = FLAG_DATA_DESCRIPTOR | FLAG_UTF8;
        let mut header = Le::default();
        header
            .u32(LOCAL_HEADER)
            .u16(if zip64_sizes { VERSION_ZIP64 } else { VERSION_DEFLATE })
            .u16(flags)
            .u16(METHOD_DEFLATE)
            .u16(time)
            .u16(date)
            .u32(0);
        if zip64_sizes {
            header.u32(u32::MAX).u32(u32::MAX).u16(name.len() as u16).u16(20).bytes(name.as_bytes());
            header.u16(ZIP64_EXTRA).u16(16).u64(0).u64(0);
        } else {
            header.u32(0).u32(0).u16(name.len() as u16).u16(0).bytes(name.as_bytes());
        }
        self.out.put(&header.0)?;

        let mut crc = crc32fast::Hasher::new();
        let mut sha = Sha256::new();
        let mut read = 0u64;
        let out = &mut self.out;
        let totals = deflate(
            data,
            self.options,
            |chunk| {
                crc.update(chunk);
                sha.update(chunk);
                read += chunk.len() as u64;
                progress(read);
                Ok(())
            },
            |compressed| out.put(compressed),
        )?;
        let crc = crc.finalize();
        if !zip64_sizes && (totals.compressed >= U32_MAX || totals.uncompressed >= U32_MAX) {
            return Err(io::Error::other(format!("{name} grew past 4 GiB while it was being read")));
        }
        let mut descriptor = Le::default();
        descriptor.u32(DATA_DESCRIPTOR).u32(crc);
        if zip64_sizes {
            descriptor.u64(totals.compressed).u64(totals.uncompressed);
        } else {
            descriptor.u32(totals.compressed as u32).u32(totals.uncompressed as u32);
        }
        self.out.put(&descriptor.0)?;
        self.entries.push(Written {
            name: name.to_owned(),
            crc,
            compressed: totals.compressed,
            uncompressed: totals.uncompressed,
            offset,
            zip64_sizes,
            date,
            time,
        });
        Ok(EntryDigest { path: name.to_owned(), size: totals.uncompressed, sha256: hex::encode(sha.finalize()) })
    }

    /// Writes the central directory and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        let cd_start = self.out.count;
        for e in &self.entries {
            let big_u = e.zip64_sizes || e.uncompressed >= U32_MAX;
            let big_c = e.zip64_sizes || e.compressed >= U32_MAX;
            let big_o = self.force_zip64 || e.offset >= U32_MAX;
            let mut extra = Le::default();
            if big_u || big_c || big_o {
                let len = 8 * (big_u as u16 + big_c as u16 + big_o as u16);
                extra.u16(ZIP64_EXTRA).u16(len);
                if big_u {
                    extra.u64(e.uncompressed);
                }
                if big_c {
                    extra.u64(e.compressed);
                }
                if big_o {
                    extra.u64(e.offset);
                }
            }
            let needs_64 = !extra.0.is_empty();
            let clip = |big: bool, v: u64| if big { u32::MAX } else { v as u32 };
            let mut rec = Le::default();
            rec.u32(CENTRAL_HEADER)
                .u16(MADE_BY_UNIX)
                .u16(if needs_64 { VERSION_ZIP64 } else { VERSION_DEFLATE })
                .u16(FLAG_DATA_DESCRIPTOR | FLAG_UTF8)
                .u16(METHOD_DEFLATE)
                .u16(e.time)
                .u16(e.date)
                .u32(e.crc)
                .u32(clip(big_c, e.compressed))
                .u32(clip(big_u, e.uncompressed))
                .u16(e.name.len() as u16)
                .u16(extra.0.len() as u16)
                .u16(0)
                .u16(0)
                .u16(0)
                .u32(REGULAR_FILE_ATTRS)
                .u32(clip(big_o, e.offset))
                .bytes(e.name.as_bytes())
                .bytes(&extra.0);
            self.out.put(&rec.0)?;
        }
        let cd_end = self.out.count;
        let cd_size = cd_end - cd_start;
        let count = self.entries.len() as u64;
        let zip64 = self.force_zip64 || count >= U16_MAX || cd_start >= U32_MAX || cd_size >= U32_MAX;
        let mut end = Le::default();
        if zip64 {
            end.u32(ZIP64_END_OF_CENTRAL_DIR)
                .u64(44)
                .u16(MADE_BY_UNIX)
                .u16(VERSION_ZIP64)
                .u32(0)
                .u32(0)
                .u64(count)
                .u64(count)
                .u64(cd_size)
                .u64(cd_start);
            end.u32(ZIP64_LOCATOR).u32(0).u64(cd_end).u32(1);
        }
        let count16 = if zip64 { u16::MAX } else { count as u16 };
        end.u32(END_OF_CENTRAL_DIR)
            .u16(0)
            .u16(0)
            .u16(count16)
            .u16(count16)
            .u32(if zip64 { u32::MAX } else { cd_size as u32 })
            .u32(if zip64 { u32::MAX } else { cd_start as u32 })
            .u16(0);
        self.out.put(&end.0)?;
        self.out.inner.flush()?;
        Ok(self.out.inner)
    }
}
