//! Backup encryption as the domain sees it: the key store row (spec
//! section 4, table `backup_encryption`), the envelope port that seals a
//! backup's bytes, and a writer that seals as it writes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use async_trait::async_trait;
use futures_io::AsyncWrite;

use crate::error::{CryptoError, DbError};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStoreOutcome {
    /// There was no row: backup encryption is off.
    Absent,
    /// The row's server wrapping opens with this instance's key.
    Kept,
    /// The row was rewrapped with this instance's key (the password was known).
    Rewrapped,
    /// The row could not be kept; backup encryption is off.
    TurnedOff,
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
    fn encrypt(&mut self, buf: &mut [u8]);
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
        this.seal.encrypt(&mut this.buf);
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
