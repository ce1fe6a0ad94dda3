//! Opening an encrypted backup for restore or verify: the payload is
//! decrypted into a temporary file, which is used only once its tag has
//! verified, and removed whatever happens.

use std::path::{Path, PathBuf};

use backup_crypto::envelope;
use backup_crypto::manage::Password;
use backup_store_fs::{UPLOAD_PREFIX, temporary_name};

use crate::password;

/// A decrypted backup ZIP; deleted when dropped.
#[derive(Debug)]
pub(crate) struct Decrypted {
    pub(crate) path: PathBuf,
    pub(crate) password: Password,
}

impl Drop for Decrypted {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

pub(crate) async fn decrypt(file: &Path, work_dir: &Path, password_stdin: bool) -> Result<Decrypted, String> {
    let password = password::read(password_stdin, "Backup password: ", false)?;
    std::fs::create_dir_all(work_dir).map_err(|e| format!("{}: {e}", work_dir.display()))?;
    let decrypted = Decrypted { path: work_dir.join(temporary_name(UPLOAD_PREFIX, "decrypted.zip")), password };
    let (source, target, password) = (file.to_owned(), decrypted.path.clone(), decrypted.password.clone());
    tokio::task::spawn_blocking(move || envelope::decrypt_file(&source, &target, password.expose()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(decrypted)
}
