//! The FRMRBKUP v1 container (spec section 4), streamed both ways.
//!
//! ```text
//! "FRMRBKUP" | 0x01 | header length N (u16 LE, N <= 8192) | header JSON | payload
//! ```
//! The payload is the plain backup ZIP under AES-256-GCM with a fresh data
//! key (DEK); the DEK is wrapped by the master backup key (MBK), the MBK by
//! a key derived from the password (PBKDF2-HMAC-SHA256).
//!
//! Writing cannot know the payload's tag until the end, but every header
//! field has a fixed length, so the header's length is known in advance:
//! the writer reserves it, streams the payload, and writes the header over
//! the reservation last. Reading decrypts into the caller's writer and
//! reports success only once the tag has verified.

use std::io::{self, Read, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use backup_domain::detect::ENCRYPTED_MAGIC;
use backup_domain::encryption::Seal;

use crate::gcm::GcmStream;
use crate::keywrap::{self, Key32};
use crate::random_bytes;

pub const FORMAT_VERSION: u8 = 1;
pub const MAX_HEADER: usize = 8192;
/// PBKDF2 iterations Framerr uses.
pub const ITERATIONS: u32 = 600_000;
/// The most iterations a header may ask for: ten times Framerr's. A header
/// is read before any password is known, so its cost must be bounded (a
/// crafted 100,000,000 would hold a key derivation for seconds per try).
pub const MAX_ITERATIONS: u32 = 10 * ITERATIONS;
/// Magic, version byte, header length.
pub const PREAMBLE_LEN: usize = 8 + 1 + 2;
pub const KDF: &str = "pbkdf2-sha256";

/// Framerr's messages (spec section 4), plus ours for what Framerr lacks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    #[error("Not a valid Framerr backup file")]
    NotABackup,
    #[error("Unsupported backup format version")]
    UnsupportedVersion,
    #[error("Truncated backup file")]
    Truncated,
    #[error("Malformed backup file (header too large)")]
    HeaderTooLarge,
    #[error("Corrupted backup header")]
    CorruptHeader,
    #[error("Incorrect password")]
    WrongPassword,
    #[error("Backup file is damaged or was tampered with: its authentication tag does not match")]
    Tampered,
    #[error("Backup header asks for {0} key-derivation iterations; at most {MAX_ITERATIONS} are accepted")]
    TooManyIterations(u32),
    #[error("Backup payload is larger than AES-GCM allows (64 GiB)")]
    TooLong,
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// The header JSON, field for field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    pub version: u32,
    pub kdf: String,
    pub iterations: u32,
    pub salt: String,
    pub wrapped_mbk: String,
    pub wrapped_dek: String,
    pub payload_iv: String,
    pub payload_auth_tag: String,
}

impl Header {
    /// The bytes between the preamble and the payload.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    fn decode(field: &str) -> Result<Vec<u8>, EnvelopeError> {
        STANDARD.decode(field).map_err(|_| EnvelopeError::CorruptHeader)
    }

    pub(crate) fn iv(&self) -> Result<[u8; 12], EnvelopeError> {
        Self::decode(&self.payload_iv)?.try_into().map_err(|_| EnvelopeError::CorruptHeader)
    }

    pub(crate) fn tag(&self) -> Result<Vec<u8>, EnvelopeError> {
        let tag = Self::decode(&self.payload_auth_tag)?;
        if tag.len() == 16 { Ok(tag) } else { Err(EnvelopeError::CorruptHeader) }
    }
}

/// PBKDF2-HMAC-SHA256 of the password: the key that wraps the MBK.
pub fn derive_kek(password: &str, salt: &[u8], iterations: u32) -> Key32 {
    let mut out = Zeroizing::new([0u8; 32]);
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out[..]);
    Key32::from_bytes(*out)
}

/// What sealing needs from the key store: the MBK (unwrapped with the
/// server key) and the password-side fields copied into every header.
#[derive(Clone)]
pub struct SealingKeys {
    pub mbk: Key32,
    pub salt_b64: String,
    pub wrapped_mbk_b64: String,
    pub iterations: u32,
}

impl std::fmt::Debug for SealingKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealingKeys").field("iterations", &self.iterations).finish_non_exhaustive()
    }
}

/// Seals one backup: a fresh DEK and IV.
pub struct Sealer {
    gcm: Option<GcmStream>,
    header: Header,
    reserved: usize,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").field("reserved", &self.reserved).finish_non_exhaustive()
    }
}

impl Sealer {
    pub fn new(keys: &SealingKeys) -> Self {
        let dek = Key32::random();
        let mut iv = [0u8; 12];
        random_bytes(&mut iv);
        let header = Header {
            version: 1,
            kdf: KDF.to_owned(),
            iterations: keys.iterations,
            salt: keys.salt_b64.clone(),
            wrapped_mbk: keys.wrapped_mbk_b64.clone(),
            wrapped_dek: keywrap::wrap(&dek, &keys.mbk),
            payload_iv: STANDARD.encode(iv),
            // A placeholder of the final length: base64 of 16 bytes.
            payload_auth_tag: STANDARD.encode([0u8; 16]),
        };
        let reserved = header.to_bytes().len();
        Sealer { gcm: Some(GcmStream::new(&dek, &iv)), header, reserved }
    }

    fn preamble_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PREAMBLE_LEN + self.reserved);
        out.extend_from_slice(ENCRYPTED_MAGIC);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&(self.reserved as u16).to_le_bytes());
        out.extend_from_slice(&self.header.to_bytes());
        out
    }

    /// The final header, padded with spaces to the reserved length.
    fn final_header(mut self) -> Vec<u8> {
        if let Some(gcm) = self.gcm.take() {
            self.header.payload_auth_tag = STANDARD.encode(gcm.tag());
        }
        let mut bytes = self.header.to_bytes();
        bytes.resize(self.reserved.max(bytes.len()), b' ');
        bytes
    }

    /// Seals a whole stream into a writer that need not seek: for tests
    /// and small payloads (the payload is encrypted twice: once for the tag).
    pub fn seal_all(mut self, payload: &[u8]) -> Vec<u8> {
        let mut out = self.preamble_bytes();
        let start = out.len();
        out.extend_from_slice(payload);
        if let Some(gcm) = self.gcm.as_mut() {
            // Test-sized payloads only: far below the GCM limit.
            let _ = gcm.encrypt(&mut out[start..]);
        }
        let header = self.final_header();
        out[PREAMBLE_LEN..PREAMBLE_LEN + header.len()].copy_from_slice(&header);
        out
    }
}

impl Seal for Sealer {
    fn preamble(&self) -> Vec<u8> {
        self.preamble_bytes()
    }

    fn encrypt(&mut self, buf: &mut [u8]) -> Result<(), backup_domain::CryptoError> {
        match self.gcm.as_mut() {
            Some(gcm) => gcm.encrypt(buf),
            None => Ok(()),
        }
    }

    fn finish(self: Box<Self>) -> (u64, Vec<u8>) {
        (PREAMBLE_LEN as u64, self.final_header())
    }
}

/// Reads the preamble and header, leaving `input` at the payload.
pub fn read_header(input: &mut impl Read) -> Result<(Header, usize), EnvelopeError> {
    let mut preamble = [0u8; PREAMBLE_LEN];
    read_exact_or_truncated(input, &mut preamble[..8])?;
    if &preamble[..8] != ENCRYPTED_MAGIC {
        return Err(EnvelopeError::NotABackup);
    }
    read_exact_or_truncated(input, &mut preamble[8..])?;
    if preamble[8] != FORMAT_VERSION {
        return Err(EnvelopeError::UnsupportedVersion);
    }
    let len = u16::from_le_bytes([preamble[9], preamble[10]]) as usize;
    if len > MAX_HEADER {
        return Err(EnvelopeError::HeaderTooLarge);
    }
    let mut json = vec![0u8; len];
    read_exact_or_truncated(input, &mut json)?;
    let header: Header = serde_json::from_slice(&json).map_err(|_| EnvelopeError::CorruptHeader)?;
    if header.version != 1 {
        return Err(EnvelopeError::UnsupportedVersion);
    }
    if header.kdf != KDF || header.iterations == 0 {
        return Err(EnvelopeError::CorruptHeader);
    }
    if header.iterations > MAX_ITERATIONS {
        return Err(EnvelopeError::TooManyIterations(header.iterations));
    }
    // Checked before any password is tried: a damaged header must not be
    // reported (and counted, in setup restore) as a wrong password.
    if !keywrap::is_wrapped_key(&header.wrapped_mbk) || !keywrap::is_wrapped_key(&header.wrapped_dek) {
        return Err(EnvelopeError::CorruptHeader);
    }
    Ok((header, PREAMBLE_LEN + len))
}

fn read_exact_or_truncated(input: &mut impl Read, buf: &mut [u8]) -> Result<(), EnvelopeError> {
    input.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => EnvelopeError::Truncated,
        _ => EnvelopeError::Io(e),
    })
}

/// The MBK from the header and the password.
pub fn unwrap_mbk(header: &Header, password: &str) -> Result<Key32, EnvelopeError> {
    let salt = Header::decode(&header.salt)?;
    let kek = derive_kek(password, &salt, header.iterations);
    keywrap::unwrap(&header.wrapped_mbk, &kek).map_err(|_| EnvelopeError::WrongPassword)
}

/// Decrypts the payload that follows the header into `out`, returning its
/// length. The caller must discard `out` unless this returns `Ok`: the
/// bytes are only authentic once the tag has verified at the end.
pub fn decrypt_payload(
    header: &Header,
    mbk: &Key32,
    input: &mut impl Read,
    out: &mut impl Write,
) -> Result<u64, EnvelopeError> {
    let dek = keywrap::unwrap(&header.wrapped_dek, mbk).map_err(|_| EnvelopeError::CorruptHeader)?;
    let expected = header.tag()?;
    let mut gcm = GcmStream::new(&dek, &header.iv()?);
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        gcm.decrypt(&mut buf[..n]).map_err(|_| EnvelopeError::TooLong)?;
        out.write_all(&buf[..n])?;
        total += n as u64;
    }
    out.flush()?;
    if total == 0 {
        return Err(EnvelopeError::Truncated);
    }
    if gcm.verify(&expected) { Ok(total) } else { Err(EnvelopeError::Tampered) }
}

/// What the fuzzer runs: reading a header from arbitrary bytes must end in
/// a header or an error, never a panic.
pub fn fuzz_header(data: &[u8]) {
    if let Ok((header, at)) = read_header(&mut &data[..]) {
        assert!(at <= data.len());
        let _ = (header.iv(), header.tag());
    }
}

/// A new header for the same payload under a new password: new salt and
/// wrapped MBK; DEK, IV and tag unchanged (spec section 4, reset password).
pub fn reheader(header: &Header, salt_b64: &str, wrapped_mbk_b64: &str, iterations: u32) -> Header {
    Header { salt: salt_b64.to_owned(), wrapped_mbk: wrapped_mbk_b64.to_owned(), iterations, ..header.clone() }
}

/// Writes a preamble for `header` (no padding: the payload follows).
pub fn write_preamble(header: &Header, out: &mut impl Write) -> io::Result<()> {
    let json = header.to_bytes();
    out.write_all(ENCRYPTED_MAGIC)?;
    out.write_all(&[FORMAT_VERSION])?;
    out.write_all(&(json.len() as u16).to_le_bytes())?;
    out.write_all(&json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys() -> (SealingKeys, &'static str) {
        let password = "correct horse battery";
        let mut salt = [0u8; 32];
        random_bytes(&mut salt);
        // Few iterations: PBKDF2 itself is tested against Framerr's fixture.
        let iterations = 1000;
        let kek = derive_kek(password, &salt, iterations);
        let mbk = Key32::random();
        let wrapped = keywrap::wrap(&mbk, &kek);
        (SealingKeys { mbk, salt_b64: STANDARD.encode(salt), wrapped_mbk_b64: wrapped, iterations }, password)
    }

    fn open(file: &[u8], password: &str) -> Result<Vec<u8>, EnvelopeError> {
        let mut input = file;
        let (header, _) = read_header(&mut input)?;
        let mbk = unwrap_mbk(&header, password)?;
        let mut out = Vec::new();
        decrypt_payload(&header, &mbk, &mut input, &mut out)?;
        Ok(out)
    }

    #[test]
    fn the_header_is_reserved_then_filled_and_the_file_opens() {
        let (keys, password) = keys();
        let payload = b"PK\x03\x04 a zip would be here".to_vec();
        let file = Sealer::new(&keys).seal_all(&payload);
        assert!(file.starts_with(b"FRMRBKUP\x01"));
        assert_eq!(open(&file, password).unwrap(), payload);
        assert!(matches!(open(&file, "wrong password"), Err(EnvelopeError::WrongPassword)));
    }

    #[test]
    fn every_kind_of_damage_has_its_message() {
        let (keys, password) = keys();
        let file = Sealer::new(&keys).seal_all(&vec![7u8; 10_000]);
        let header_len = u16::from_le_bytes([file[9], file[10]]) as usize;
        let payload_at = PREAMBLE_LEN + header_len;
        let msg = |f: &[u8]| open(f, password).unwrap_err().to_string();
        let mut v = file.clone();
        v[8] = 2;
        assert_eq!(msg(&v), "Unsupported backup format version");
        let mut v = file.clone();
        v[9..11].copy_from_slice(&9000u16.to_le_bytes());
        assert_eq!(msg(&v), "Malformed backup file (header too large)");
        let mut v = file.clone();
        v[0] = b'X';
        assert_eq!(msg(&v), "Not a valid Framerr backup file");
        let mut v = file.clone();
        v[PREAMBLE_LEN] = b'[';
        assert_eq!(msg(&v), "Corrupted backup header");
        // A header that asks for a ruinous key derivation is refused before it.
        let mut input = &file[..];
        let (mut header, _) = read_header(&mut input).unwrap();
        header.iterations = 100_000_000;
        let mut v = Vec::new();
        write_preamble(&header, &mut v).unwrap();
        v.extend_from_slice(input);
        assert!(msg(&v).contains("100000000 key-derivation iterations"), "{}", msg(&v));
        // A wrapped key of the wrong shape is damage, whatever the password:
        // never "Incorrect password" (setup restore counts those).
        let (header, _) = read_header(&mut &file[..]).unwrap();
        let salt = Header::decode(&header.salt).unwrap();
        let kek = derive_kek(password, &salt, header.iterations);
        let short_mbk = {
            use aes_gcm::aead::{Aead, KeyInit};
            let sealed = aes_gcm::Aes256Gcm::new(&kek.0.into()).encrypt(&[0u8; 12].into(), &[1u8; 16][..]).unwrap();
            STANDARD.encode([&[0u8; 12][..], &sealed].concat())
        };
        for (field, value) in [("mbk", short_mbk), ("mbk", "AAAA".into()), ("dek", "AAAA".into())] {
            let mut damaged = header.clone();
            if field == "mbk" {
                damaged.wrapped_mbk = value
            } else {
                damaged.wrapped_dek = value
            }
            let mut v = Vec::new();
            write_preamble(&damaged, &mut v).unwrap();
            v.extend_from_slice(&file[payload_at..]);
            assert_eq!(msg(&v), "Corrupted backup header", "{field}");
        }
        for cut in [3, 10, 20, payload_at] {
            assert_eq!(msg(&file[..cut]), "Truncated backup file", "cut at {cut}");
        }
        // Payload bytes, the last byte, and a cut inside the payload.
        for at in [payload_at, payload_at + 5000, file.len() - 1] {
            let mut v = file.clone();
            v[at] ^= 1;
            assert!(msg(&v).contains("tampered"), "byte {at}");
        }
        assert!(msg(&file[..file.len() - 100]).contains("tampered"));
    }

    #[test]
    fn reheader_keeps_the_payload_and_changes_the_password() {
        let (keys, password) = keys();
        let file = Sealer::new(&keys).seal_all(b"payload");
        let mut input = &file[..];
        let (header, _) = read_header(&mut input).unwrap();
        let mbk = unwrap_mbk(&header, password).unwrap();
        let salt = [9u8; 32];
        let new =
            reheader(&header, &STANDARD.encode(salt), &keywrap::wrap(&mbk, &derive_kek("new one!", &salt, 1000)), 1000);
        let mut rewritten = Vec::new();
        write_preamble(&new, &mut rewritten).unwrap();
        rewritten.extend_from_slice(input);
        assert_eq!(open(&rewritten, "new one!").unwrap(), b"payload");
        assert!(matches!(open(&rewritten, password), Err(EnvelopeError::WrongPassword)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        #[test]
        fn seal_then_open_returns_the_input(len in 0usize..(3 << 20), seed in any::<u8>(), password in "[ -~]{8,40}") {
            let mut salt = [0u8; 32];
            random_bytes(&mut salt);
            let mbk = Key32::random();
            let keys = SealingKeys {
                wrapped_mbk_b64: keywrap::wrap(&mbk, &derive_kek(&password, &salt, 1000)),
                mbk,
                salt_b64: STANDARD.encode(salt),
                iterations: 1000,
            };
            let payload: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
            let mut sealer = Box::new(Sealer::new(&keys));
            // Through the streaming path: preamble, chunked encryption, header last.
            let mut file = sealer.preamble();
            for chunk in payload.chunks(65_537) {
                let mut c = chunk.to_vec();
                sealer.encrypt(&mut c).unwrap();
                file.extend_from_slice(&c);
            }
            let (offset, header) = sealer.finish();
            file[offset as usize..offset as usize + header.len()].copy_from_slice(&header);
            if len == 0 {
                prop_assert!(matches!(open(&file, &password), Err(EnvelopeError::Truncated)));
            } else {
                prop_assert_eq!(open(&file, &password).unwrap(), payload);
            }
        }
    }
}
