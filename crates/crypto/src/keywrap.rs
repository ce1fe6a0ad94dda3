//! Key wrapping as Framerr does it (spec section 4): AES-256-GCM with a
//! fresh 12-byte nonce and no associated data; the wrapped blob is
//! nonce(12) ‖ ciphertext(32) ‖ tag(16), stored as standard base64.

use aes_gcm::{AeadInOut, Aes256Gcm, KeyInit};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::random_bytes;

/// A 32-byte AES key (KEK, MBK or DEK), zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct Key32(pub(crate) [u8; 32]);

impl Key32 {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Key32(bytes)
    }

    pub fn random() -> Self {
        let mut k = [0u8; 32];
        random_bytes(&mut k);
        Key32(k)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for Key32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key32([redacted])")
    }
}

/// A wrapped key that does not open with the given key, or is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the key does not unwrap")]
pub struct UnwrapError;

const NONCE: usize = 12;
const TAG: usize = 16;
pub const WRAPPED_LEN: usize = NONCE + 32 + TAG;

/// nonce ‖ ciphertext ‖ tag, raw bytes.
pub fn wrap_raw(key: &Key32, kek: &Key32) -> [u8; WRAPPED_LEN] {
    let mut nonce = [0u8; NONCE];
    random_bytes(&mut nonce);
    let mut buf = key.0;
    let cipher = Aes256Gcm::new(&kek.0.into());
    let tag = cipher.encrypt_inout_detached(&nonce.into(), b"", buf.as_mut_slice().into()).unwrap_or_default();
    let mut out = [0u8; WRAPPED_LEN];
    out[..NONCE].copy_from_slice(&nonce);
    out[NONCE..NONCE + 32].copy_from_slice(&buf);
    out[NONCE + 32..].copy_from_slice(&tag);
    buf.zeroize();
    out
}

pub fn unwrap_raw(wrapped: &[u8], kek: &Key32) -> Result<Key32, UnwrapError> {
    if wrapped.len() != WRAPPED_LEN {
        return Err(UnwrapError);
    }
    let mut buf = Zeroizing::new([0u8; 32]);
    buf.copy_from_slice(&wrapped[NONCE..NONCE + 32]);
    let nonce: [u8; NONCE] = wrapped[..NONCE].try_into().map_err(|_| UnwrapError)?;
    let tag: [u8; TAG] = wrapped[NONCE + 32..].try_into().map_err(|_| UnwrapError)?;
    Aes256Gcm::new(&kek.0.into())
        .decrypt_inout_detached(&nonce.into(), b"", buf.as_mut_slice().into(), &tag.into())
        .map_err(|_| UnwrapError)?;
    Ok(Key32(*buf))
}

pub fn wrap(key: &Key32, kek: &Key32) -> String {
    STANDARD.encode(wrap_raw(key, kek))
}

/// Whether `wrapped_b64` has the shape of a wrapped key (nonce, 32-byte
/// key, tag): what no password can change, so a wrong shape is damage,
/// not a wrong password.
pub fn is_wrapped_key(wrapped_b64: &str) -> bool {
    STANDARD.decode(wrapped_b64.trim()).is_ok_and(|raw| raw.len() == WRAPPED_LEN)
}

pub fn unwrap(wrapped_b64: &str, kek: &Key32) -> Result<Key32, UnwrapError> {
    let raw = STANDARD.decode(wrapped_b64.trim()).map_err(|_| UnwrapError)?;
    unwrap_raw(&raw, kek)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_unwrap_and_wrong_kek() {
        let (key, kek) = (Key32::random(), Key32::random());
        let wrapped = wrap(&key, &kek);
        assert_eq!(STANDARD.decode(&wrapped).unwrap().len(), 60);
        assert_eq!(unwrap(&wrapped, &kek).unwrap(), key);
        assert_eq!(unwrap(&wrapped, &Key32::random()), Err(UnwrapError));
        assert_eq!(unwrap("garbage", &kek), Err(UnwrapError));
        assert_ne!(wrap(&key, &kek), wrapped, "fresh nonce");
    }
}
