//! Reading an encrypted backup without a decrypted copy on disk: the
//! payload is decrypted where it is read (AES-CTR can start at any offset),
//! while the GCM tag is computed over the whole ciphertext on a thread of
//! its own. Restore commits nothing before that check says the payload is
//! authentic.

use std::io::{self, BufReader};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use futures::channel::oneshot;

use backup_domain::file::{BackupFile, FileCursor};
use backup_domain::restore::{Authenticity, BackupKey, OpenError, Unsealed, Unsealer};

use crate::envelope::{EnvelopeError, read_header, unwrap_mbk};
use crate::gcm::{GcmStream, MAX_MESSAGE, apply_keystream_at};
use crate::keywrap::{self, Key32};

/// The `Unsealer` port for FRMRBKUP v1. With the instance key, it also
/// opens backups with this instance's backup encryption key, unattended.
#[derive(Clone, Default)]
pub struct EnvelopeUnsealer {
    pub server_key: Option<crate::InstanceKey>,
}

impl std::fmt::Debug for EnvelopeUnsealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvelopeUnsealer").field("server_key", &self.server_key.is_some()).finish()
    }
}

fn open_error(e: EnvelopeError) -> OpenError {
    match e {
        EnvelopeError::WrongPassword => OpenError::WrongPassword,
        EnvelopeError::NotABackup => OpenError::NotABackup,
        EnvelopeError::Tampered => OpenError::Tampered,
        EnvelopeError::Io(e) => OpenError::Io(e.to_string()),
        other => OpenError::Envelope(other.to_string()),
    }
}

impl Unsealer for EnvelopeUnsealer {
    fn unseal(&self, file: Arc<dyn BackupFile>, key: &BackupKey) -> Result<Unsealed, OpenError> {
        let mut input = BufReader::with_capacity(16 * 1024, FileCursor::new(file.clone()));
        let (header, payload_at) = read_header(&mut input).map_err(open_error)?;
        let dek = match key {
            BackupKey::Password(password) => {
                let mbk = unwrap_mbk(&header, password.expose()).map_err(open_error)?;
                // The password opened the master key, so a DEK that does
                // not open with it means the header was tampered with.
                keywrap::unwrap(&header.wrapped_dek, &mbk).map_err(|_| open_error(EnvelopeError::CorruptHeader))?
            }
            BackupKey::Instance(row) => {
                let server = self.server_key.as_ref().ok_or(OpenError::PasswordRequired)?;
                let mbk =
                    keywrap::unwrap(&row.mbk_server, &server.as_kek()).map_err(|_| OpenError::PasswordRequired)?;
                // What a restore will need is the password: the header's
                // password side must be the current password's, or the
                // backup opens here and nowhere else.
                let same_password = header.salt == row.kek_salt
                    && header.wrapped_mbk == row.mbk_password
                    && header.iterations == row.kdf_iterations;
                match keywrap::unwrap(&header.wrapped_dek, &mbk) {
                    Ok(dek) if same_password => dek,
                    Ok(_) => return Err(OpenError::PasswordSideDiffers),
                    // Same master key, yet the data key does not open.
                    Err(_) if same_password => return Err(open_error(EnvelopeError::CorruptHeader)),
                    // Another master key sealed it (encryption was turned
                    // off and on since).
                    Err(_) => return Err(OpenError::EarlierKey),
                }
            }
        };
        let (iv, tag) = (header.iv().map_err(open_error)?, header.tag().map_err(open_error)?);
        let offset = payload_at as u64;
        let len = file.size().saturating_sub(offset);
        if len == 0 {
            return Err(open_error(EnvelopeError::Truncated));
        }
        if len > MAX_MESSAGE {
            return Err(open_error(EnvelopeError::TooLong));
        }
        let cancelled = Arc::new(AtomicBool::new(false));
        let (tx, rx) = oneshot::channel();
        let check = TagJob { file: file.clone(), offset, len, key: dek.clone(), iv, cancelled: cancelled.clone() };
        std::thread::Builder::new()
            .name("framerr-gcm-tag".into())
            .spawn(move || {
                let _ = tx.send(check.run(&tag));
            })
            .map_err(|e| OpenError::Io(format!("cannot start the tag check: {e}")))?;
        let payload = Decrypting { file, offset, len, key: dek, iv };
        Ok(Unsealed { payload: Arc::new(payload), authenticity: Box::new(TagCheck { rx, cancelled }) })
    }
}

/// The payload, decrypted as it is read.
struct Decrypting {
    file: Arc<dyn BackupFile>,
    offset: u64,
    len: u64,
    key: Key32,
    iv: [u8; 12],
}

impl BackupFile for Decrypting {
    fn size(&self) -> u64 {
        self.len
    }

    fn read_at(&self, buf: &mut [u8], at: u64) -> io::Result<usize> {
        if at >= self.len {
            return Ok(0);
        }
        let room = usize::try_from(self.len - at).unwrap_or(usize::MAX).min(buf.len());
        let n = self.file.read_at(&mut buf[..room], self.offset + at)?;
        apply_keystream_at(&self.key, &self.iv, at, &mut buf[..n]).map_err(io::Error::other)?;
        Ok(n)
    }

    fn describe(&self) -> String {
        format!("{} (decrypted)", self.file.describe())
    }
}

/// The tag over the whole ciphertext, computed on its own thread.
struct TagJob {
    file: Arc<dyn BackupFile>,
    offset: u64,
    len: u64,
    key: Key32,
    iv: [u8; 12],
    cancelled: Arc<AtomicBool>,
}

impl TagJob {
    fn run(self, expected: &[u8]) -> Result<(), OpenError> {
        let mut gcm = GcmStream::new(&self.key, &self.iv);
        let mut buf = vec![0u8; 1024 * 1024];
        let mut at = 0u64;
        while at < self.len {
            if self.cancelled.load(Ordering::Relaxed) {
                return Err(OpenError::Io("cancelled".into()));
            }
            let want = usize::try_from(self.len - at).unwrap_or(usize::MAX).min(buf.len());
            let n = self.file.read_at(&mut buf[..want], self.offset + at).map_err(|e| OpenError::Io(e.to_string()))?;
            if n == 0 {
                return Err(open_error(EnvelopeError::Truncated));
            }
            gcm.authenticate(&buf[..n]).map_err(|_| open_error(EnvelopeError::TooLong))?;
            at += n as u64;
        }
        if gcm.verify(expected) { Ok(()) } else { Err(OpenError::Tampered) }
    }
}

struct TagCheck {
    rx: oneshot::Receiver<Result<(), OpenError>>,
    cancelled: Arc<AtomicBool>,
}

impl Drop for TagCheck {
    fn drop(&mut self) {
        // A restore that stopped early need not read the rest.
        self.cancelled.store(true, Ordering::Relaxed);
    }
}

#[async_trait]
impl Authenticity for TagCheck {
    async fn check(mut self: Box<Self>) -> Result<(), OpenError> {
        match (&mut self.rx).await {
            Ok(result) => result,
            Err(_) => Err(OpenError::Io("the tag check stopped".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{PREAMBLE_LEN, Sealer, SealingKeys, derive_kek};
    use backup_domain::Password;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    fn pw(password: &str) -> BackupKey {
        BackupKey::Password(Password::new(password))
    }

    fn sealed(payload: &[u8], password: &str) -> Vec<u8> {
        let salt = [5u8; 32];
        let mbk = Key32::random();
        let keys = SealingKeys {
            wrapped_mbk_b64: keywrap::wrap(&mbk, &derive_kek(password, &salt, 1000)),
            mbk,
            salt_b64: STANDARD.encode(salt),
            iterations: 1000,
        };
        Sealer::new(&keys).seal_all(payload)
    }

    fn read_all(file: &dyn BackupFile) -> Vec<u8> {
        let mut out = vec![0u8; file.size() as usize];
        // Backwards, in odd pieces: random access must not matter.
        let mut end = out.len();
        while end > 0 {
            let start = end.saturating_sub(77_777);
            let n = file.read_at(&mut out[start..end], start as u64).unwrap();
            assert_eq!(n, end - start);
            end = start;
        }
        out
    }

    #[test]
    fn decrypts_at_any_offset_and_the_tag_is_checked_alongside() {
        let payload: Vec<u8> = (0..1_000_003u32).map(|i| (i % 251) as u8).collect();
        let file = sealed(&payload, "correct horse");
        let unsealed = EnvelopeUnsealer::default().unseal(Arc::new(file.clone()), &pw("correct horse")).unwrap();
        assert_eq!(read_all(unsealed.payload.as_ref()), payload);
        futures::executor::block_on(unsealed.authenticity.check()).unwrap();

        let wrong = EnvelopeUnsealer::default().unseal(Arc::new(file.clone()), &pw("correct horse!"));
        assert!(matches!(wrong, Err(OpenError::WrongPassword)));

        // A flipped payload byte still decrypts (CTR), but the tag says no.
        let header_len = u16::from_le_bytes([file[9], file[10]]) as usize;
        let mut bad = file.clone();
        bad[PREAMBLE_LEN + header_len + 500_000] ^= 1;
        let unsealed = EnvelopeUnsealer::default().unseal(Arc::new(bad), &pw("correct horse")).unwrap();
        assert!(matches!(futures::executor::block_on(unsealed.authenticity.check()), Err(OpenError::Tampered)));

        // Truncated inside the payload: the tag fails too.
        let cut = file[..file.len() - 10].to_vec();
        let unsealed = EnvelopeUnsealer::default().unseal(Arc::new(cut), &pw("correct horse")).unwrap();
        assert!(futures::executor::block_on(unsealed.authenticity.check()).is_err());
        // Nothing after the header at all.
        let bare = file[..PREAMBLE_LEN + header_len].to_vec();
        assert!(matches!(
            EnvelopeUnsealer::default().unseal(Arc::new(bare), &pw("correct horse")),
            Err(OpenError::Envelope(m)) if m == "Truncated backup file"
        ));
    }
}
