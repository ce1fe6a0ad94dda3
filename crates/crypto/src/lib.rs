//! Framerr's cryptography on RustCrypto crates.
//!
//! - [`InstanceKey`]: `SECRET_ENCRYPTION_KEY`, 32 bytes given as 64 hex
//!   characters.
//! - [`FieldCrypto`]: field-level encryption of integration credentials
//!   (spec section 6): base64( iv(16) ‖ tag(16) ‖ AES-256-GCM ciphertext ).
//!
//! Key material is zeroized when dropped and never printed: `Debug` shows
//! `[redacted]`, and no error message carries a key or a plaintext.

pub mod envelope;
pub mod gcm;
pub mod keywrap;
pub mod manage;
pub mod unseal;

use std::fmt;

use aes_gcm::aead::consts::U16;
use aes_gcm::aes::Aes256;
use aes_gcm::{AeadInOut, AesGcm, KeyInit};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use backup_domain::CryptoError;
use backup_domain::ports::FieldCipher;

/// AES-256-GCM with the 16-byte IV Framerr's field encryption uses.
type FieldAead = AesGcm<Aes256, U16>;

/// A 32-byte key.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct InstanceKey([u8; 32]);

/// `SECRET_ENCRYPTION_KEY` is not 64 hex characters. The message never
/// repeats the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SECRET_ENCRYPTION_KEY must be 64 hexadecimal characters (32 bytes)")]
pub struct BadKey;

impl InstanceKey {
    pub fn from_hex(text: &str) -> Result<Self, BadKey> {
        let text = Zeroizing::new(text.trim().to_owned());
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.as_bytes(), &mut bytes[..]).map_err(|_| BadKey)?;
        Ok(InstanceKey(*bytes))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        InstanceKey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The instance key as a key-wrapping key (for `mbk_server`).
    pub fn as_kek(&self) -> keywrap::Key32 {
        keywrap::Key32::from_bytes(self.0)
    }
}

impl fmt::Debug for InstanceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InstanceKey([redacted])")
    }
}

pub use backup_domain::secret::constant_time_eq;

/// Fills `buf` from the operating system's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) {
    // The OS generator failing is not something a backup can recover from,
    // and continuing with a predictable IV would be worse than stopping.
    #[allow(clippy::expect_used)]
    getrandom::fill(buf).expect("the operating system's random generator failed");
}

/// Framerr's field-level encryption under the instance key.
pub struct FieldCrypto {
    aead: FieldAead,
}

impl fmt::Debug for FieldCrypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FieldCrypto([redacted])")
    }
}

impl FieldCrypto {
    pub fn new(key: &InstanceKey) -> Self {
        FieldCrypto { aead: FieldAead::new(&key.0.into()) }
    }
}

const IV: usize = 16;
const TAG: usize = 16;

impl FieldCipher for FieldCrypto {
    fn decrypt(&self, value: &str) -> Result<String, CryptoError> {
        let raw = Zeroizing::new(STANDARD.decode(value.trim()).map_err(|_| CryptoError::Malformed)?);
        if raw.len() < IV + TAG {
            return Err(CryptoError::Malformed);
        }
        let (iv, rest) = raw.split_at(IV);
        let (tag, ciphertext) = rest.split_at(TAG);
        let mut plain = Zeroizing::new(ciphertext.to_vec());
        let iv = iv.try_into().map_err(|_| CryptoError::Malformed)?;
        let tag = tag.try_into().map_err(|_| CryptoError::Malformed)?;
        self.aead
            .decrypt_inout_detached(iv, b"", plain.as_mut_slice().into(), tag)
            .map_err(|_| CryptoError::WrongKey)?;
        String::from_utf8(plain.to_vec()).map_err(|_| CryptoError::Malformed)
    }

    fn encrypt(&self, plaintext: &str) -> Result<String, CryptoError> {
        let mut iv = [0u8; IV];
        random_bytes(&mut iv);
        let mut buf = Zeroizing::new(plaintext.as_bytes().to_vec());
        let tag = self
            .aead
            .encrypt_inout_detached(&iv.into(), b"", buf.as_mut_slice().into())
            .map_err(|_| CryptoError::Malformed)?;
        let mut out = Vec::with_capacity(IV + TAG + buf.len());
        out.extend_from_slice(&iv);
        out.extend_from_slice(&tag);
        out.extend_from_slice(&buf);
        Ok(STANDARD.encode(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_domain::credentials::looks_encrypted;

    const KEY: &str = "f00dfacecafebeef0123456789abcdef00112233445566778899aabbccddeeff";

    #[test]
    fn keys_parse_from_hex_and_never_print() {
        let key = InstanceKey::from_hex(KEY).unwrap();
        assert_eq!(key.as_bytes()[0], 0xf0);
        assert_eq!(format!("{key:?}"), "InstanceKey([redacted])");
        for bad in ["", "f00d", &KEY[1..], &format!("{}zz", &KEY[2..])] {
            let err = InstanceKey::from_hex(bad).unwrap_err().to_string();
            assert!(!err.contains("f00d"), "{err}");
        }
    }

    #[test]
    fn encrypt_then_decrypt_and_wrong_key_fails() {
        let a = FieldCrypto::new(&InstanceKey::from_hex(KEY).unwrap());
        let b = FieldCrypto::new(&InstanceKey::from_bytes([7; 32]));
        let json = r#"{"url":"http://plex.local:32400","token":"ÄÖÜ"}"#;
        let sealed = a.encrypt(json).unwrap();
        assert!(looks_encrypted(&sealed));
        assert_ne!(a.encrypt(json).unwrap(), sealed, "fresh IV each time");
        assert_eq!(a.decrypt(&sealed).unwrap(), json);
        assert_eq!(b.decrypt(&sealed), Err(CryptoError::WrongKey));
        assert_eq!(a.decrypt("not base64!"), Err(CryptoError::Malformed));
        assert_eq!(a.decrypt("AAAA"), Err(CryptoError::Malformed));
        let mut tampered = STANDARD.decode(&sealed).unwrap();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(a.decrypt(&STANDARD.encode(tampered)), Err(CryptoError::WrongKey));
        assert_eq!(a.decrypt(&a.encrypt("").unwrap()).unwrap(), "");
    }
}

/// The `Credentials` port: Framerr's bcrypt password hashes (bcryptjs,
/// `$2a$`/`$2b$`) and random UUID v4 session tokens.
#[derive(Debug, Clone, Copy, Default)]
pub struct BcryptCredentials;

/// A bcrypt hash of `cost` that no password matches, to spend what a real
/// check of that cost spends: a cheap hash's salt and digest under the
/// cost asked for (made once; verifying it runs the full cost).
fn decoy_hash(cost: u32) -> String {
    static CHEAP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let cheap = CHEAP.get_or_init(|| bcrypt::hash("framerr-backup decoy password", 4).unwrap_or_default());
    // `$2b$04$` + salt and digest.
    format!("$2b${:02}${}", cost.clamp(4, 31), cheap.get(7..).unwrap_or_default())
}

#[async_trait::async_trait]
impl backup_domain::auth::Credentials for BcryptCredentials {
    async fn verify(&self, password: &backup_domain::Password, hash: &str) -> bool {
        tracing::debug!(cost = backup_domain::auth::bcrypt_cost(hash), "bcrypt check");
        bcrypt::verify(password.expose(), hash).unwrap_or(false)
    }

    async fn spend(&self, password: &backup_domain::Password, cost: u32) {
        let decoy = decoy_hash(cost);
        tracing::debug!(cost = backup_domain::auth::bcrypt_cost(&decoy), "bcrypt check");
        let _ = bcrypt::verify(password.expose(), &decoy);
    }

    fn new_token(&self) -> String {
        let mut b = [0u8; 16];
        random_bytes(&mut b);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h = hex::encode(b);
        format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
    }
}

#[cfg(test)]
mod credential_tests {
    use backup_domain::Password;
    use backup_domain::auth::Credentials;

    #[test]
    fn framerrs_bcrypt_hashes_verify_and_tokens_are_uuids() {
        let hash = bcrypt::hash("correct horse", 4).unwrap();
        let c = super::BcryptCredentials;
        assert!(futures::executor::block_on(c.verify(&Password::new("correct horse"), &hash)));
        assert!(!futures::executor::block_on(c.verify(&Password::new("wrong"), &hash)));
        assert!(!futures::executor::block_on(c.verify(&Password::new("x"), "not a hash")));
        // The decoy is a real hash of the cost asked for that nothing opens.
        let decoy = super::decoy_hash(6);
        assert_eq!(backup_domain::auth::bcrypt_cost(&decoy), Some(6));
        assert!(bcrypt::verify("framerr-backup decoy password", &decoy).is_ok_and(|ok| !ok));
        futures::executor::block_on(c.spend(&Password::new("x"), 5));
        let (a, b) = (c.new_token(), c.new_token());
        assert_ne!(a, b);
        assert_eq!((a.len(), &a[14..15]), (36, "4"));
    }
}
