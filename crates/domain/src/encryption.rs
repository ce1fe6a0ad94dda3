//! Backup encryption as the domain sees it: the key store row (spec
//! section 4, table `backup_encryption`), the envelope port that seals a
//! backup's bytes, and a writer that seals as it writes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use async_trait::async_trait;
use futures_io::AsyncWrite;

use crate::error::{CryptoError, DbError};
use crate::secret::Password;

/// The singleton `backup_encryption` row. Values are base64 as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyStoreRow {
    pub enabled: bool,
    /// The master backup key wrapped by the password's key.
    pub mbk_password: String,
    /// The master backup key wrapped by `SECRET_ENCRYPTION_KEY`.
    pub mbk_server: String,
    pub kek_salt: String,
    pub kdf_iterations: u32,
}

impl std::fmt::Debug for KeyStoreRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Wrapped keys are not secrets on their own, but they are key
        // material; keep them out of logs.
        f.debug_struct("KeyStoreRow")
            .field("enabled", &self.enabled)
            .field("kdf_iterations", &self.kdf_iterations)
            .finish()
    }
}

/// What a restore did with the restored database's key store row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyStoreOutcome {
    /// There was no row: backup encryption is off.
    #[default]
    Absent,
    /// The row's server wrapping opens with this instance's key.
    Kept,
    /// The row was rewrapped with this instance's key (the password was known).
    Rewrapped,
    /// The row could not be kept; backup encryption is off.
    TurnedOff,
}

/// Key wrapping under the instance key (`SECRET_ENCRYPTION_KEY`) and under
/// a password (spec section 4), and the encryption header of stored
/// backups. Keys never leave the adapter; the methods that take a password
/// derive a key from it (slow, by design).
#[async_trait]
pub trait KeyVault: Send + Sync {
    /// Whether the instance key is configured.
    fn has_server_key(&self) -> bool;
    /// Whether the row's `mbk_server` opens with the instance key.
    fn opens_with_server_key(&self, row: &KeyStoreRow) -> bool;
    /// The row's master key, opened with `password`, wrapped again with the
    /// instance key (a new `mbk_server`); `None` if the password does not
    /// open it or there is no instance key.
    fn rewrap_for_server(&self, row: &KeyStoreRow, password: &Password) -> Option<String>;
    /// A new row: a fresh master key wrapped by the instance key and by
    /// the password (fresh salt), enabled.
    fn new_row(&self, password: &Password) -> Result<KeyStoreRow, VaultError>;
    /// Whether `password` opens the row's master key.
    fn password_opens(&self, row: &KeyStoreRow, password: &Password) -> bool;
    /// The row with a new password side (salt, `mbk_password`); the master
    /// key comes from the instance key, so no old password is needed.
    fn with_new_password(&self, row: &KeyStoreRow, password: &Password) -> Result<KeyStoreRow, VaultError>;
    /// Streams an encrypted backup from `from` to `to` with a header for
    /// `row` (same payload, data key and tag). Refused when its data key
    /// does not open with the row's master key (made under another key).
    async fn reheader(
        &self,
        row: &KeyStoreRow,
        from: crate::ports::Download,
        to: &mut dyn crate::ports::Upload,
    ) -> Result<(), String>;
}

/// The vault cannot do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    #[error("SECRET_ENCRYPTION_KEY must be set to use backup encryption")]
    NoServerKey,
    #[error("the backup encryption key does not open with SECRET_ENCRYPTION_KEY (was the key changed?)")]
    WrongServerKey,
}

/// What a restore does with the restored database's key store row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyStoreDecision {
    Keep,
    /// Keep it with this new `mbk_server`.
    Rewrap(String),
    /// Delete it: backup encryption is off after the restore.
    Remove,
}

impl KeyStoreDecision {
    pub fn outcome(&self) -> KeyStoreOutcome {
        match self {
            KeyStoreDecision::Keep => KeyStoreOutcome::Kept,
            KeyStoreDecision::Rewrap(_) => KeyStoreOutcome::Rewrapped,
            KeyStoreDecision::Remove => KeyStoreOutcome::TurnedOff,
        }
    }
}

/// Keep the row when this instance's key opens it; rewrap it when the
/// restore had the backup's password; otherwise remove it, since its key
/// could no longer seal backups (Framerr restores it broken).
pub fn restored_key_store(row: &KeyStoreRow, vault: &dyn KeyVault, password: Option<&Password>) -> KeyStoreDecision {
    if !vault.has_server_key() {
        return KeyStoreDecision::Remove;
    }
    if vault.opens_with_server_key(row) {
        return KeyStoreDecision::Keep;
    }
    match password.and_then(|p| vault.rewrap_for_server(row, p)) {
        Some(server) => KeyStoreDecision::Rewrap(server),
        None => KeyStoreDecision::Remove,
    }
}

/// Where the key store row lives (Framerr's database).
#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn get(&self) -> Result<Option<KeyStoreRow>, DbError>;
    /// Writes the row (creating the table if missing), replacing any.
    async fn put(&self, row: &KeyStoreRow) -> Result<(), DbError>;
    async fn delete(&self) -> Result<(), DbError>;
}

/// A backup being sealed: its container's preamble, the payload
/// encryption, and the header, known only at the end.
pub trait Seal: Send {
    /// Bytes that start the file, with room reserved for the header.
    fn preamble(&self) -> Vec<u8>;
    /// Encrypts payload bytes in place.
    fn encrypt(&mut self, buf: &mut [u8]) -> Result<(), CryptoError>;
    /// The final header and the offset to write it at, over the reserved room.
    fn finish(self: Box<Self>) -> (u64, Vec<u8>);
}

/// Decides whether new backups are encrypted, and seals them.
#[async_trait]
pub trait Envelope: Send + Sync {
    /// `None` when backup encryption is off.
    async fn sealer(&self) -> Result<Option<Box<dyn Seal>>, EnvelopeError>;
}

/// Encryption is on but a backup cannot be sealed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    #[error("backup encryption is on, but SECRET_ENCRYPTION_KEY is not set, so backups cannot be encrypted")]
    NoServerKey,
    #[error("backup encryption is on, but its key does not open with SECRET_ENCRYPTION_KEY; reset the backup password")]
    WrongServerKey,
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// Encryption is always off.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEnvelope;

#[async_trait]
impl Envelope for NoEnvelope {
    async fn sealer(&self) -> Result<Option<Box<dyn Seal>>, EnvelopeError> {
        Ok(None)
    }
}

/// Encrypts everything written through it into `inner`.
pub struct SealingWriter<'a> {
    inner: &'a mut (dyn AsyncWrite + Send + Unpin),
    seal: &'a mut dyn Seal,
    /// Ciphertext not yet accepted by `inner`.
    buf: Vec<u8>,
    at: usize,
}

impl<'a> SealingWriter<'a> {
    pub fn new(inner: &'a mut (dyn AsyncWrite + Send + Unpin), seal: &'a mut dyn Seal) -> Self {
        SealingWriter { inner, seal, buf: Vec::new(), at: 0 }
    }

    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.at < self.buf.len() {
            let n = ready!(Pin::new(&mut *self.inner).poll_write(cx, &self.buf[self.at..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.at += n;
        }
        self.buf.clear();
        self.at = 0;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for SealingWriter<'_> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        // Each plaintext byte is encrypted exactly once: new data is taken
        // only after the previous ciphertext has been handed on.
        ready!(self.drain(cx))?;
        let this = &mut *self;
        this.buf.extend_from_slice(data);
        if let Err(e) = this.seal.encrypt(&mut this.buf) {
            this.buf.clear();
            return Poll::Ready(Err(io::Error::other(e)));
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut *self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut *self.inner).poll_close(cx)
    }
}

impl std::fmt::Debug for SealingWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealingWriter").field("pending", &(self.buf.len() - self.at)).finish()
    }
}

/// The shortest password Framerr accepts, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Why an encryption change was refused. Messages are Framerr's where it
/// has one; none carries a password or key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptionError {
    #[error("Password must be at least 8 characters")]
    PasswordTooShort,
    #[error("Backup encryption is already enabled")]
    AlreadyEnabled,
    #[error("Backup encryption is not enabled")]
    NotEnabled,
    #[error("Incorrect password")]
    WrongPassword,
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Store(#[from] crate::StoreError),
    #[error("a backup, restore or encryption change is in progress; try again when it ends")]
    Busy,
}

/// A stored backup that could not be given a new header, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewriteFailure {
    pub filename: String,
    pub error: String,
}

/// Enable, disable and reset the backup password (spec section 4).
#[derive(Clone)]
pub struct BackupEncryption {
    pub key_store: std::sync::Arc<dyn KeyStore>,
    pub vault: std::sync::Arc<dyn KeyVault>,
    /// When set, every change holds the instance as a backup does: none
    /// runs beside a backup being sealed, a restore, or another change.
    pub instance: Option<crate::create::Creator>,
}

impl std::fmt::Debug for BackupEncryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupEncryption").finish_non_exhaustive()
    }
}

fn check_length(password: &Password) -> Result<(), EncryptionError> {
    if password.chars() < MIN_PASSWORD_CHARS {
        return Err(EncryptionError::PasswordTooShort);
    }
    Ok(())
}

impl BackupEncryption {
    pub async fn is_enabled(&self) -> Result<bool, EncryptionError> {
        Ok(self.key_store.get().await?.is_some_and(|r| r.enabled))
    }

    async fn hold(&self) -> Result<Option<crate::create::Hold>, EncryptionError> {
        match &self.instance {
            Some(creator) => creator.hold().await.map(Some).map_err(|_| EncryptionError::Busy),
            None => Ok(None),
        }
    }

    /// Needs the instance key; already enabled is refused (409 in the API).
    pub async fn enable(&self, password: &Password) -> Result<(), EncryptionError> {
        check_length(password)?;
        let _hold = self.hold().await?;
        if !self.vault.has_server_key() {
            return Err(VaultError::NoServerKey.into());
        }
        if self.is_enabled().await? {
            return Err(EncryptionError::AlreadyEnabled);
        }
        let row = self.vault.new_row(password)?;
        Ok(self.key_store.put(&row).await?)
    }

    /// Needs the current password; existing encrypted backups stay so.
    pub async fn disable(&self, password: &Password) -> Result<(), EncryptionError> {
        let _hold = self.hold().await?;
        let row = self.key_store.get().await?.ok_or(EncryptionError::NotEnabled)?;
        if !self.vault.password_opens(&row, password) {
            return Err(EncryptionError::WrongPassword);
        }
        Ok(self.key_store.delete().await?)
    }

    /// Sets a new password without the old one, then gives every stored
    /// encrypted backup in `stores` a new header, each replaced atomically.
    /// Returns the backups that could not be rewritten.
    pub async fn reset_password(
        &self,
        password: &Password,
        stores: &[std::sync::Arc<dyn crate::ports::BackupStore>],
    ) -> Result<Vec<RewriteFailure>, EncryptionError> {
        check_length(password)?;
        let _hold = self.hold().await?;
        let row = self.key_store.get().await?.ok_or(EncryptionError::NotEnabled)?;
        let new_row = self.vault.with_new_password(&row, password)?;
        self.key_store.put(&new_row).await?;
        let mut failures = Vec::new();
        for store in stores {
            for backup in store.list().await? {
                if !backup.name.is_encrypted() {
                    continue;
                }
                if let Err(error) = self.reheader(store.as_ref(), &backup.name, &new_row).await {
                    failures.push(RewriteFailure { filename: backup.name.to_string(), error });
                }
            }
        }
        Ok(failures)
    }

    async fn reheader(
        &self,
        store: &dyn crate::ports::BackupStore,
        name: &crate::BackupName,
        row: &KeyStoreRow,
    ) -> Result<(), String> {
        let from = store.open(name).await.map_err(|e| e.to_string())?;
        let mut to = store.create(name).await.map_err(|e| e.to_string())?;
        match self.vault.reheader(row, from, to.as_mut()).await {
            Ok(()) => to.commit_replacing().await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => {
                let _ = to.abort().await;
                Err(e)
            }
        }
    }
}
