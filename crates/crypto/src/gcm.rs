//! AES-256-GCM as a stream (NIST SP 800-38D with a 96-bit IV and no
//! associated data): CTR from inc32(J0) for the data, GHASH over the
//! ciphertext, tag = E(J0) xor GHASH. The aes-gcm crate only seals whole
//! messages; a backup is too large to hold, so the same construction runs
//! here over chunks, checked against aes-gcm in the tests.

use aes_gcm::aes::Aes256;
use aes_gcm::aes::cipher::{BlockCipherEncrypt, KeyInit, KeyIvInit, StreamCipher, StreamCipherSeek};
use ghash::GHash;
use ghash::universal_hash::UniversalHash;
use zeroize::Zeroize;

use backup_domain::CryptoError;

use crate::keywrap::Key32;

type Ctr = ctr::Ctr32BE<Aes256>;

/// The most bytes one key and nonce may encrypt: 2^32 - 2 blocks (NIST SP
/// 800-38D). Past it the 32-bit counter would wrap and reuse keystream.
pub const MAX_MESSAGE: u64 = ((1 << 32) - 2) * 16;

/// The counter block the data starts at: inc32(J0) for a 96-bit IV.
fn first_counter(iv: &[u8; 12]) -> [u8; 16] {
    let mut block = [0u8; 16];
    block[..12].copy_from_slice(iv);
    block[15] = 2;
    block
}

/// Decrypts (or encrypts: it is the same) `buf` as the bytes at `offset` of
/// a GCM message: CTR mode can start anywhere. This does not authenticate;
/// the tag must be checked over the whole message apart.
pub fn apply_keystream_at(key: &Key32, iv: &[u8; 12], offset: u64, buf: &mut [u8]) -> Result<(), CryptoError> {
    if offset.checked_add(buf.len() as u64).is_none_or(|end| end > MAX_MESSAGE) {
        return Err(CryptoError::TooLong);
    }
    let mut ctr = Ctr::new(&key.0.into(), &first_counter(iv).into());
    ctr.try_seek(offset).map_err(|_| CryptoError::TooLong)?;
    ctr.try_apply_keystream(buf).map_err(|_| CryptoError::TooLong)
}

/// One GCM message being encrypted or decrypted in chunks.
pub struct GcmStream {
    ctr: Ctr,
    ghash: GHash,
    mask: [u8; 16],
    pending: [u8; 16],
    pending_len: usize,
    len: u64,
}

impl std::fmt::Debug for GcmStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcmStream").field("len", &self.len).finish_non_exhaustive()
    }
}

impl Drop for GcmStream {
    fn drop(&mut self) {
        self.mask.zeroize();
        self.pending.zeroize();
    }
}

impl GcmStream {
    pub fn new(key: &Key32, iv: &[u8; 12]) -> Self {
        let cipher = Aes256::new(&key.0.into());
        let mut h = [0u8; 16];
        cipher.encrypt_block((&mut h).into());
        let ghash = GHash::new(&h.into());
        h.zeroize();
        let mut j0 = [0u8; 16];
        j0[..12].copy_from_slice(iv);
        j0[15] = 1;
        let mut mask = j0;
        cipher.encrypt_block((&mut mask).into());
        let ctr = Ctr::new(&key.0.into(), &first_counter(iv).into());
        GcmStream { ctr, ghash, mask, pending: [0; 16], pending_len: 0, len: 0 }
    }

    fn grow(&mut self, by: usize) -> Result<(), CryptoError> {
        let len = self.len.checked_add(by as u64).filter(|l| *l <= MAX_MESSAGE).ok_or(CryptoError::TooLong)?;
        self.len = len;
        Ok(())
    }

    /// Feeds ciphertext to the tag only (it was decrypted elsewhere, at
    /// random offsets, with [`apply_keystream_at`]).
    pub fn authenticate(&mut self, ciphertext: &[u8]) -> Result<(), CryptoError> {
        self.grow(ciphertext.len())?;
        self.absorb(ciphertext);
        Ok(())
    }

    fn absorb(&mut self, mut ciphertext: &[u8]) {
        if self.pending_len > 0 {
            let take = (16 - self.pending_len).min(ciphertext.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&ciphertext[..take]);
            self.pending_len += take;
            ciphertext = &ciphertext[take..];
            if self.pending_len < 16 {
                return;
            }
            self.ghash.update(&[self.pending.into()]);
            self.pending_len = 0;
        }
        let whole = ciphertext.len() / 16 * 16;
        for block in ciphertext[..whole].chunks_exact(16) {
            let block: [u8; 16] = block.try_into().unwrap_or_default();
            self.ghash.update(&[block.into()]);
        }
        let rest = &ciphertext[whole..];
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }

    /// Encrypts `buf` in place; refuses to go past [`MAX_MESSAGE`].
    pub fn encrypt(&mut self, buf: &mut [u8]) -> Result<(), CryptoError> {
        self.grow(buf.len())?;
        self.ctr.apply_keystream(buf);
        self.absorb(buf);
        Ok(())
    }

    /// Decrypts `buf` in place. Nothing decrypted may be trusted until
    /// [`GcmStream::verify`] has succeeded.
    pub fn decrypt(&mut self, buf: &mut [u8]) -> Result<(), CryptoError> {
        self.grow(buf.len())?;
        self.absorb(buf);
        self.ctr.apply_keystream(buf);
        Ok(())
    }

    pub fn tag(mut self) -> [u8; 16] {
        if self.pending_len > 0 {
            let pending = self.pending;
            self.ghash.update_padded(&pending[..self.pending_len]);
        }
        let mut lengths = [0u8; 16];
        lengths[8..].copy_from_slice(&(self.len * 8).to_be_bytes());
        self.ghash.update(&[lengths.into()]);
        let ghash = self.ghash.clone().finalize();
        let mut tag = [0u8; 16];
        for (i, t) in tag.iter_mut().enumerate() {
            *t = ghash[i] ^ self.mask[i];
        }
        tag
    }

    /// Whether `expected` is this message's tag, compared in constant time.
    pub fn verify(self, expected: &[u8]) -> bool {
        crate::constant_time_eq(&self.tag(), expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes_gcm::{AeadInOut, Aes256Gcm};
    use proptest::prelude::*;

    #[test]
    fn refuses_to_go_past_the_gcm_limit() {
        let key = Key32::from_bytes([1; 32]);
        let iv = [2; 12];
        let mut last = [0u8; 16];
        assert!(apply_keystream_at(&key, &iv, MAX_MESSAGE - 16, &mut last).is_ok());
        assert_eq!(apply_keystream_at(&key, &iv, MAX_MESSAGE - 15, &mut last), Err(CryptoError::TooLong));
        let mut stream = GcmStream::new(&key, &iv);
        stream.len = MAX_MESSAGE - 10;
        assert!(stream.encrypt(&mut [0u8; 10]).is_ok());
        assert_eq!(stream.encrypt(&mut [0u8; 1]), Err(CryptoError::TooLong));
        assert_eq!(stream.authenticate(&[0u8; 1]), Err(CryptoError::TooLong));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Chunked streaming gives exactly what the aes-gcm crate gives for
        /// the whole message, and decrypts back.
        #[test]
        fn matches_aes_gcm(data in proptest::collection::vec(any::<u8>(), 0..5000), cuts in proptest::collection::vec(0usize..200, 0..20), key in any::<[u8; 32]>(), iv in any::<[u8; 12]>()) {
            let mut whole = data.clone();
            let tag = Aes256Gcm::new(&key.into()).encrypt_inout_detached(&iv.into(), b"", whole.as_mut_slice().into()).unwrap();
            let key = Key32::from_bytes(key);
            let mut stream = GcmStream::new(&key, &iv);
            let mut out = data.clone();
            let mut at: usize = 0;
            for cut in cuts.iter().chain(std::iter::once(&usize::MAX)) {
                let end = at.saturating_add(*cut).min(out.len());
                stream.encrypt(&mut out[at..end]).unwrap();
                at = end;
            }
            prop_assert_eq!(&out, &whole);
            let ours = stream.tag();
            prop_assert_eq!(ours.as_slice(), tag.as_slice());
            let mut back = out.clone();
            let mut stream = GcmStream::new(&key, &iv);
            for chunk in back.chunks_mut(37) {
                stream.decrypt(chunk).unwrap();
            }
            prop_assert_eq!(&back, &data);
            // Random access gives the same plaintext, and the tag alone
            // matches what full decryption computes.
            let mut tag_only = GcmStream::new(&key, &iv);
            for (i, chunk) in out.chunks(1000).enumerate().rev() {
                let mut piece = chunk.to_vec();
                apply_keystream_at(&key, &iv, i as u64 * 1000, &mut piece).unwrap();
                prop_assert_eq!(&piece[..], &data[i * 1000..i * 1000 + chunk.len()]);
            }
            for chunk in out.chunks(333) {
                tag_only.authenticate(chunk).unwrap();
            }
            prop_assert!(tag_only.verify(&tag));
            prop_assert!(!GcmStream::new(&key, &iv).verify(&[0; 15]));
        }
    }
}
