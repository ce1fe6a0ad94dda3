//! AES-256-GCM as a stream (NIST SP 800-38D with a 96-bit IV and no
//! associated data): CTR from inc32(J0) for the data, GHASH over the
//! ciphertext, tag = E(J0) xor GHASH. The aes-gcm crate only seals whole
//! messages; a backup is too large to hold, so the same construction runs
//! here over chunks, checked against aes-gcm in the tests.

use aes_gcm::aes::Aes256;
use aes_gcm::aes::cipher::{BlockCipherEncrypt, KeyInit, KeyIvInit, StreamCipher};
use ghash::GHash;
use ghash::universal_hash::UniversalHash;
use zeroize::Zeroize;

use crate::keywrap::Key32;

type Ctr = ctr::Ctr32BE<Aes256>;

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
        // The data's counter starts at inc32(J0).
        j0[15] = 2;
        let ctr = Ctr::new(&key.0.into(), &j0.into());
        GcmStream { ctr, ghash, mask, pending: [0; 16], pending_len: 0, len: 0 }
    }

    fn absorb(&mut self, mut ciphertext: &[u8]) {
        self.len += ciphertext.len() as u64;
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

    /// Encrypts `buf` in place.
    pub fn encrypt(&mut self, buf: &mut [u8]) {
        self.ctr.apply_keystream(buf);
        self.absorb(buf);
    }

    /// Decrypts `buf` in place. Nothing decrypted may be trusted until
    /// [`GcmStream::verify`] has succeeded.
    pub fn decrypt(&mut self, buf: &mut [u8]) {
        self.absorb(buf);
        self.ctr.apply_keystream(buf);
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
                stream.encrypt(&mut out[at..end]);
                at = end;
            }
            prop_assert_eq!(&out, &whole);
            let ours = stream.tag();
            prop_assert_eq!(ours.as_slice(), tag.as_slice());
            let mut back = out.clone();
            let mut stream = GcmStream::new(&key, &iv);
            for chunk in back.chunks_mut(37) {
                stream.decrypt(chunk);
            }
            prop_assert_eq!(&back, &data);
            prop_assert!(!GcmStream::new(&key, &iv).verify(&[0; 15]));
        }
    }
}
