//! Checks a backup ZIP completely: Framerr's structural rules (spec section
//! 3, with Framerr's own messages), every entry's CRC-32 and size, and, when
//! the manifest lists them, every entry's size and SHA-256.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use backup_domain::detect::{DETECT_LEN, NotABackup, detect};
use backup_domain::manifest::{DATABASE_ENTRY, MANIFEST_ENTRY};
use backup_domain::name::BackupFormat;
use backup_domain::{Manifest, ManifestError};

use crate::read::{EntryInfo, ReadLimits, ZipError, ZipReader};

/// What is wrong with an archive.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveProblem {
    #[error("Invalid ZIP file: {0}")]
    Zip(#[from] ZipError),
    #[error("Backup is missing database file (framerr.db)")]
    MissingDatabase,
    #[error("Backup is missing manifest file")]
    MissingManifest,
    #[error("{0}")]
    Manifest(#[from] ManifestError),
    #[error("{path}: {detail}")]
    Entry { path: String, detail: String },
    #[error("{path}: SHA-256 does not match the manifest")]
    Checksum { path: String },
    #[error("{path}: size {actual} does not match the manifest's {listed}")]
    Size { path: String, listed: u64, actual: u64 },
    #[error("{path} is listed in the manifest but missing from the archive")]
    Missing { path: String },
    #[error("cannot read {path}: {detail}")]
    Io { path: String, detail: String },
}

/// The result of a complete check.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub manifest: Manifest,
    pub entries: Vec<EntryInfo>,
    /// How many entries were checked against a manifest SHA-256; zero for a
    /// Framerr-made backup, whose manifest has no checksums.
    pub checksums_verified: usize,
}

/// Whether the file at `path` is a plain or an encrypted backup, by its
/// first bytes (spec section 4): the outer `Err` is the file not reading,
/// the inner one the file not being a backup.
pub fn detect_file(path: &Path) -> io::Result<Result<BackupFormat, NotABackup>> {
    let mut head = Vec::with_capacity(DETECT_LEN);
    File::open(path)?.take(DETECT_LEN as u64).read_to_end(&mut head)?;
    Ok(detect(&head))
}

/// Opens `path` as a backup ZIP and reads every entry through its checks.
pub fn inspect(path: &Path) -> Result<Inspection, ArchiveProblem> {
    let io_err = |e: io::Error| ArchiveProblem::Io { path: path.display().to_string(), detail: e.to_string() };
    let file = File::open(path).map_err(io_err)?;
    let mut zip = ZipReader::open(BufReader::new(file), ReadLimits::default())?;
    if zip.find(DATABASE_ENTRY).is_none() {
        return Err(ArchiveProblem::MissingDatabase);
    }
    let manifest_index = zip.find(MANIFEST_ENTRY).ok_or(ArchiveProblem::MissingManifest)?;
    let manifest = read_manifest(&mut zip, manifest_index)?;
    let mut checksums_verified = 0;
    for index in 0..zip.entries().len() {
        let info = zip.entries()[index].clone();
        if info.is_dir {
            continue;
        }
        let entry_err = |detail: String| ArchiveProblem::Entry { path: info.name.clone(), detail };
        let mut reader = zip.open_entry(index).map_err(|e| entry_err(e.to_string()))?;
        let mut sha = Sha256::new();
        let size = io::copy(&mut reader, &mut HashWriter(&mut sha)).map_err(|e| entry_err(e.to_string()))?;
        if index == manifest_index {
            continue;
        }
        if let Some(listed) = manifest.digest_of(&info.name) {
            if listed.size != size {
                return Err(ArchiveProblem::Size { path: info.name, listed: listed.size, actual: size });
            }
            if !hex::encode(sha.finalize()).eq_ignore_ascii_case(&listed.sha256) {
                return Err(ArchiveProblem::Checksum { path: info.name });
            }
            checksums_verified += 1;
        }
    }
    for listed in manifest.entries.iter().flatten() {
        if zip.find(&listed.path).is_none() {
            return Err(ArchiveProblem::Missing { path: listed.path.clone() });
        }
    }
    Ok(Inspection { manifest, entries: zip.entries().to_vec(), checksums_verified })
}

fn read_manifest<R: Read + io::Seek>(zip: &mut ZipReader<R>, index: usize) -> Result<Manifest, ArchiveProblem> {
    if zip.entries()[index].size > Manifest::MAX_BYTES as u64 {
        return Err(ManifestError::TooLarge.into());
    }
    let mut bytes = Vec::new();
    zip.open_entry(index)?
        .read_to_end(&mut bytes)
        .map_err(|e| ArchiveProblem::Entry { path: MANIFEST_ENTRY.into(), detail: e.to_string() })?;
    Ok(Manifest::from_json(&bytes)?)
}

/// Copies the database entry of the archive at `path` into `dest`, checking
/// its CRC-32 and size (and nothing else) on the way.
pub fn open_database_entry(path: &Path, dest: &mut impl Write) -> Result<u64, ArchiveProblem> {
    let file =
        File::open(path).map_err(|e| ArchiveProblem::Io { path: path.display().to_string(), detail: e.to_string() })?;
    let mut zip = ZipReader::open(BufReader::new(file), ReadLimits::default())?;
    let index = zip.find(DATABASE_ENTRY).ok_or(ArchiveProblem::MissingDatabase)?;
    let mut reader = zip.open_entry(index)?;
    io::copy(&mut reader, dest)
        .map_err(|e| ArchiveProblem::Entry { path: DATABASE_ENTRY.into(), detail: e.to_string() })
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
