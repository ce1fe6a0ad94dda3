//! Backups as files the user names: a backup to restore or verify given by
//! name or path, and `create --output`.

use std::path::Path;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio_util::compat::TokioAsyncWriteCompatExt;

use backup_domain::restore::Source;
use backup_domain::{ArchiveError, BackupKind, BackupName, CreateError, Manifest};
use backup_fsutil::temp::UPLOAD_PREFIX;
use backup_fsutil::{LocalFile, TempPath};

use crate::engine::Engine;

impl Engine {
    /// A backup name means the stores (the backups folder first); anything
    /// else, or a name that exists as a path, is a file.
    pub fn source(&self, arg: &str) -> Result<Source, String> {
        let path = Path::new(arg);
        match BackupName::parse(arg) {
            Ok(name) if !path.exists() => Ok(Source::Stored(name)),
            _ => {
                let file = LocalFile::open(path).map_err(|e| format!("cannot read {arg}: {e}"))?;
                Ok(Source::File(Arc::new(file)))
            }
        }
    }

    /// `create --output FILE`: a regular file is written through a hidden
    /// temporary beside it and linked into place only when complete, never
    /// over an existing file; anything else (a pipe, a device) is streamed
    /// to directly.
    pub async fn create_to_file(&self, kind: BackupKind, path: &Path, plain_ok: bool) -> Result<u64, CreateError> {
        self.write_file(kind, path, plain_ok).await.map_err(|e| match e {
            // Where it could not be written is what the user needs to know.
            CreateError::Archive(ArchiveError::Output(m)) | CreateError::Output(m)
                if !m.contains(&*path.to_string_lossy()) =>
            {
                CreateError::Output(format!("{}: {m}", path.display()))
            }
            other => other,
        })
    }

    async fn write_file(&self, kind: BackupKind, path: &Path, plain_ok: bool) -> Result<u64, CreateError> {
        let output = |e: std::io::Error| CreateError::Output(format!("{}: {e}", path.display()));
        let special = tokio::fs::metadata(path).await.is_ok_and(|m| !m.is_file());
        if special {
            let file = tokio::fs::OpenOptions::new().write(true).open(path).await.map_err(output)?;
            let mut out = file.compat_write();
            self.creator.create_to(kind, &mut out, plain_ok).await?;
            out.into_inner().flush().await.map_err(output)?;
            return Ok(0);
        }
        if tokio::fs::symlink_metadata(path).await.is_ok() {
            return Err(CreateError::Output(format!(
                "{} already exists; choose another name or remove it",
                path.display()
            )));
        }
        let dir = backup_fsutil::parent(path);
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let temp = TempPath::new(&dir, UPLOAD_PREFIX, &format!("{name}.partial")).map_err(output)?;
        let file = tokio::fs::File::create_new(temp.path()).await.map_err(output)?;
        let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, file).compat_write();
        self.creator.create_to(kind, &mut out, plain_ok).await?;
        let mut file = out.into_inner();
        file.flush().await.map_err(output)?;
        file.into_inner().sync_all().await.map_err(output)?;
        tokio::fs::hard_link(temp.path(), path).await.map_err(output)?;
        backup_fsutil::sync_parent(path);
        Ok(tokio::fs::metadata(path).await.map(|m| m.len()).unwrap_or(0))
    }

    /// `create --output -`.
    pub async fn create_to_stdout(&self, kind: BackupKind, plain_ok: bool) -> Result<Manifest, CreateError> {
        let mut out = tokio::io::stdout().compat_write();
        let manifest = self.creator.create_to(kind, &mut out, plain_ok).await?;
        out.into_inner().flush().await.map_err(|e| CreateError::Output(e.to_string()))?;
        Ok(manifest)
    }
}

/// Call when the process is about to exit: removes the owner files of its
/// (finished) temporaries.
pub fn release_temporaries() {
    backup_fsutil::temp::release_owner_files();
}
