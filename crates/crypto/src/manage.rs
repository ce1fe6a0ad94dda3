//! Backup encryption's keys (spec section 4): the envelope that seals new
//! backups with the server-held master key, and the `KeyVault` port the
//! domain's enable, disable and reset-password use cases run on.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::io::{AsyncReadExt, AsyncWriteExt};

use backup_domain::encryption::{Envelope, EnvelopeError, KeyStore, KeyStoreRow, KeyVault, Seal, VaultError};
use backup_domain::ports::{Download, Upload};

pub use backup_domain::Password;

use crate::envelope::{self, ITERATIONS, PREAMBLE_LEN, Sealer, SealingKeys};
use crate::keywrap::{self, Key32};
use crate::{InstanceKey, random_bytes};

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

/// A new salt and the MBK wrapped by the password's key.
fn password_side(mbk: &Key32, password: &Password) -> (String, String) {
    let mut salt = [0u8; 32];
    random_bytes(&mut salt);
    let kek = envelope::derive_kek(password.expose(), &salt, ITERATIONS);
    (STANDARD.encode(salt), keywrap::wrap(mbk, &kek))
}

/// The MBK, from the row and the password.
fn unwrap_with_password(row: &KeyStoreRow, password: &Password) -> Option<Key32> {
    let salt = STANDARD.decode(&row.kek_salt).ok()?;
    // A stored row may not ask for a ruinous derivation either.
    if row.kdf_iterations == 0 || row.kdf_iterations > envelope::MAX_ITERATIONS {
        return None;
    }
    let kek = envelope::derive_kek(password.expose(), &salt, row.kdf_iterations);
    keywrap::unwrap(&row.mbk_password, &kek).ok()
}

/// The `KeyVault` port: key wrapping under the instance key.
#[derive(Clone)]
pub struct InstanceVault {
    pub server_key: Option<InstanceKey>,
}

impl fmt::Debug for InstanceVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstanceVault").field("server_key", &self.server_key.is_some()).finish()
    }
}

impl InstanceVault {
    fn server_mbk(&self, row: &KeyStoreRow) -> Result<Key32, VaultError> {
        let key = self.server_key.as_ref().ok_or(VaultError::NoServerKey)?;
        keywrap::unwrap(&row.mbk_server, &key.as_kek()).map_err(|_| VaultError::WrongServerKey)
    }
}

#[async_trait]
impl KeyVault for InstanceVault {
    fn has_server_key(&self) -> bool {
        self.server_key.is_some()
    }

    fn opens_with_server_key(&self, row: &KeyStoreRow) -> bool {
        self.server_mbk(row).is_ok()
    }

    fn rewrap_for_server(&self, row: &KeyStoreRow, password: &Password) -> Option<String> {
        let kek = self.server_key.as_ref()?.as_kek();
        let mbk = unwrap_with_password(row, password)?;
        Some(keywrap::wrap(&mbk, &kek))
    }

    fn new_row(&self, password: &Password) -> Result<KeyStoreRow, VaultError> {
        let server_key = self.server_key.as_ref().ok_or(VaultError::NoServerKey)?;
        let mbk = Key32::random();
        let (kek_salt, mbk_password) = password_side(&mbk, password);
        Ok(KeyStoreRow {
            enabled: true,
            mbk_password,
            mbk_server: keywrap::wrap(&mbk, &server_key.as_kek()),
            kek_salt,
            kdf_iterations: ITERATIONS,
        })
    }

    fn password_opens(&self, row: &KeyStoreRow, password: &Password) -> bool {
        unwrap_with_password(row, password).is_some()
    }

    fn with_new_password(&self, row: &KeyStoreRow, password: &Password) -> Result<KeyStoreRow, VaultError> {
        let mbk = self.server_mbk(row)?;
        let (kek_salt, mbk_password) = password_side(&mbk, password);
        Ok(KeyStoreRow { mbk_password, kek_salt, kdf_iterations: ITERATIONS, ..row.clone() })
    }

    async fn reheader(&self, row: &KeyStoreRow, mut from: Download, to: &mut dyn Upload) -> Result<(), String> {
        let mbk = self.server_mbk(row).map_err(|e| e.to_string())?;
        let mut preamble = [0u8; PREAMBLE_LEN];
        from.reader.read_exact(&mut preamble).await.map_err(|_| "Truncated backup file".to_owned())?;
        let len = u16::from_le_bytes([preamble[9], preamble[10]]) as usize;
        let mut head = preamble.to_vec();
        head.resize(PREAMBLE_LEN + len.min(envelope::MAX_HEADER), 0);
        from.reader.read_exact(&mut head[PREAMBLE_LEN..]).await.map_err(|_| "Truncated backup file".to_owned())?;
        let (header, _) = envelope::read_header(&mut &head[..]).map_err(|e| e.to_string())?;
        // Only backups sealed with this master key can be re-headered.
        keywrap::unwrap(&header.wrapped_dek, &mbk).map_err(|_| "made with another encryption key".to_owned())?;
        let new = envelope::reheader(&header, &row.kek_salt, &row.mbk_password, row.kdf_iterations);
        let mut bytes = Vec::new();
        envelope::write_preamble(&new, &mut bytes).map_err(|e| e.to_string())?;
        to.write_all(&bytes).await.map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = from.reader.read(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Ok(());
            }
            to.write_all(&buf[..n]).await.map_err(|e| e.to_string())?;
        }
    }
}
