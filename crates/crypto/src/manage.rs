//! Backup encryption management (spec section 4): the envelope that seals
//! new backups with the server-held master key, and enable, disable and
//! reset-password on the key store.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::io::{AsyncReadExt, AsyncWriteExt};
use zeroize::Zeroizing;

use backup_domain::encryption::{Envelope, EnvelopeError, KeyStore, KeyStoreOutcome, KeyStoreRow, Seal};
use backup_domain::ports::BackupStore;
use backup_domain::{BackupName, DbError, StoreError};

use crate::envelope::{self, ITERATIONS, PREAMBLE_LEN, Sealer, SealingKeys};
use crate::keywrap::{self, Key32};
use crate::{InstanceKey, random_bytes};

/// A password, zeroized on drop and never printed.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    pub fn new(text: String) -> Self {
        Password(Zeroizing::new(text))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// The shortest password Framerr accepts.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Why a management operation was refused. Messages match Framerr's where
/// it has one; none contains a password or key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManageError {
    #[error("Password must be at least 8 characters")]
    PasswordTooShort,
    #[error("SECRET_ENCRYPTION_KEY must be set to use backup encryption")]
    NoServerKey,
    #[error("Backup encryption is already enabled")]
    AlreadyEnabled,
    #[error("Backup encryption is not enabled")]
    NotEnabled,
    #[error("Incorrect password")]
    WrongPassword,
    #[error("the backup encryption key does not open with SECRET_ENCRYPTION_KEY (was the key changed?)")]
    WrongServerKey,
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Seals manual and scheduled backups while encryption is enabled, with the
/// master key unwrapped by the server key: no password needed to back up.
pub struct ServerKeyEnvelope {
    pub key_store: Arc<dyn KeyStore>,
    pub server_key: Option<InstanceKey>,
}

impl fmt::Debug for ServerKeyEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerKeyEnvelope").finish_non_exhaustive()
    }
}

#[async_trait]
impl Envelope for ServerKeyEnvelope {
    async fn sealer(&self) -> Result<Option<Box<dyn Seal>>, EnvelopeError> {
        let Some(row) = self.key_store.get().await?.filter(|r| r.enabled) else {
            return Ok(None);
        };
        let key = self.server_key.as_ref().ok_or(EnvelopeError::NoServerKey)?;
        let mbk = keywrap::unwrap(&row.mbk_server, &key.as_kek()).map_err(|_| EnvelopeError::WrongServerKey)?;
        let keys = SealingKeys {
            mbk,
            salt_b64: row.kek_salt.clone(),
            wrapped_mbk_b64: row.mbk_password.clone(),
            iterations: row.kdf_iterations,
        };
        Ok(Some(Box::new(Sealer::new(&keys))))
    }
}

fn check_length(password: &Password) -> Result<(), ManageError> {
    if password.expose().chars().count() < MIN_PASSWORD_CHARS {
        return Err(ManageError::PasswordTooShort);
    }
    Ok(())
}

/// A new salt and the MBK wrapped by the password's key.
fn password_side(mbk: &Key32, password: &Password) -> (String, String) {
    let mut salt = [0u8; 32];
    random_bytes(&mut salt);
    let kek = envelope::derive_kek(password.expose(), &salt, ITERATIONS);
    (STANDARD.encode(salt), keywrap::wrap(mbk, &kek))
}

/// The MBK, from the row and the password.
pub fn unwrap_with_password(row: &KeyStoreRow, password: &Password) -> Result<Key32, ManageError> {
    let salt = STANDARD.decode(&row.kek_salt).map_err(|_| ManageError::WrongPassword)?;
    let kek = envelope::derive_kek(password.expose(), &salt, row.kdf_iterations);
    keywrap::unwrap(&row.mbk_password, &kek).map_err(|_| ManageError::WrongPassword)
}

pub async fn is_enabled(key_store: &dyn KeyStore) -> Result<bool, ManageError> {
    Ok(key_store.get().await?.is_some_and(|r| r.enabled))
}

pub async fn enable(
    key_store: &dyn KeyStore,
    server_key: Option<&InstanceKey>,
    password: &Password,
) -> Result<(), ManageError> {
    check_length(password)?;
    let server_key = server_key.ok_or(ManageError::NoServerKey)?;
    if is_enabled(key_store).await? {
        return Err(ManageError::AlreadyEnabled);
    }
    let mbk = Key32::random();
    let (kek_salt, mbk_password) = password_side(&mbk, password);
    let row = KeyStoreRow {
        enabled: true,
        mbk_password,
        mbk_server: keywrap::wrap(&mbk, &server_key.as_kek()),
        kek_salt,
        kdf_iterations: ITERATIONS,
    };
    Ok(key_store.put(&row).await?)
}

pub async fn disable(key_store: &dyn KeyStore, password: &Password) -> Result<(), ManageError> {
    let row = key_store.get().await?.ok_or(ManageError::NotEnabled)?;
    unwrap_with_password(&row, password)?;
    Ok(key_store.delete().await?)
}

/// Sets a new password (no old one needed: the MBK comes from the server
/// key), then gives every encrypted backup in each store a new header.
/// Returns the backups that could not be rewritten, with why.
pub async fn reset_password(
    key_store: &dyn KeyStore,
    server_key: Option<&InstanceKey>,
    new_password: &Password,
    stores: &[&dyn BackupStore],
) -> Result<Vec<(String, String)>, ManageError> {
    check_length(new_password)?;
    let row = key_store.get().await?.ok_or(ManageError::NotEnabled)?;
    let server_key = server_key.ok_or(ManageError::NoServerKey)?;
    let mbk = keywrap::unwrap(&row.mbk_server, &server_key.as_kek()).map_err(|_| ManageError::WrongServerKey)?;
    let (kek_salt, mbk_password) = password_side(&mbk, new_password);
    let new_row = KeyStoreRow { mbk_password, kek_salt, kdf_iterations: ITERATIONS, ..row };
    key_store.put(&new_row).await?;
    let mut failures = Vec::new();
    for store in stores {
        for backup in store.list().await? {
            if !backup.name.is_encrypted() {
                continue;
            }
            if let Err(e) = reheader(*store, &backup.name, &mbk, &new_row).await {
                failures.push((backup.name.to_string(), e));
            }
        }
    }
    Ok(failures)
}

/// Rewrites one backup with a new header and the same payload, replacing
/// the old file atomically.
async fn reheader(store: &dyn BackupStore, name: &BackupName, mbk: &Key32, row: &KeyStoreRow) -> Result<(), String> {
    let mut download = store.open(name).await.map_err(|e| e.to_string())?;
    let mut preamble = [0u8; PREAMBLE_LEN];
    download.reader.read_exact(&mut preamble).await.map_err(|_| "Truncated backup file".to_owned())?;
    let len = u16::from_le_bytes([preamble[9], preamble[10]]) as usize;
    let mut head = preamble.to_vec();
    head.resize(PREAMBLE_LEN + len.min(envelope::MAX_HEADER), 0);
    download.reader.read_exact(&mut head[PREAMBLE_LEN..]).await.map_err(|_| "Truncated backup file".to_owned())?;
    let (header, _) = envelope::read_header(&mut &head[..]).map_err(|e| e.to_string())?;
    // Only backups sealed with this master key can be re-headered.
    keywrap::unwrap(&header.wrapped_dek, mbk).map_err(|_| "made with another encryption key".to_owned())?;
    let new = envelope::reheader(&header, &row.kek_salt, &row.mbk_password, row.kdf_iterations);
    let mut bytes = Vec::new();
    envelope::write_preamble(&new, &mut bytes).map_err(|e| e.to_string())?;
    let mut upload = store.create(name).await.map_err(|e| e.to_string())?;
    upload.write_all(&bytes).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = download.reader.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        upload.write_all(&buf[..n]).await.map_err(|e| e.to_string())?;
    }
    upload.commit_replacing().await.map_err(|e| e.to_string())?;
    Ok(())
}

/// What a restore does with the restored database's key store row: keep it
/// when this instance's key opens it; rewrap it when the restore had the
/// password; otherwise drop it (`None`), since its key could no longer be
/// used to encrypt backups.
pub fn restored_key_store(
    server_key: Option<&InstanceKey>,
    password: Option<&Password>,
) -> impl Fn(&KeyStoreRow) -> Option<(String, KeyStoreOutcome)> + Send + Sync + use<> {
    let kek = server_key.map(InstanceKey::as_kek);
    let password = password.cloned();
    move |row: &KeyStoreRow| {
        let kek = kek.as_ref()?;
        if keywrap::unwrap(&row.mbk_server, kek).is_ok() {
            return Some((row.mbk_server.clone(), KeyStoreOutcome::Kept));
        }
        let mbk = unwrap_with_password(row, password.as_ref()?).ok()?;
        Some((keywrap::wrap(&mbk, kek), KeyStoreOutcome::Rewrapped))
    }
}
