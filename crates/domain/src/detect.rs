//! Telling a plain backup from an encrypted one by its first bytes (spec
//! section 4), with Framerr's messages.

use crate::name::BackupFormat;

/// The first bytes of an encrypted backup.
pub const ENCRYPTED_MAGIC: &[u8; 8] = b"FRMRBKUP";
/// The first bytes of a ZIP archive's first local file header.
pub const ZIP_MAGIC: &[u8; 4] = b"PK\x03\x04";
/// How many leading bytes [`detect`] needs.
pub const DETECT_LEN: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Not a valid Framerr backup file")]
pub struct NotABackup;

/// `head` is the file's first bytes (up to [`DETECT_LEN`]).
pub fn detect(head: &[u8]) -> Result<BackupFormat, NotABackup> {
    if head.starts_with(ZIP_MAGIC) {
        Ok(BackupFormat::Plain)
    } else if head.starts_with(ENCRYPTED_MAGIC) {
        Ok(BackupFormat::Encrypted)
    } else {
        Err(NotABackup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        assert_eq!(detect(b"PK\x03\x04rest"), Ok(BackupFormat::Plain));
        assert_eq!(detect(b"FRMRBKUP\x01"), Ok(BackupFormat::Encrypted));
        for bad in [&b""[..], b"PK", b"PK\x05\x06", b"FRMRBKU", b"SQLite format 3\0", b"\x1f\x8b"] {
            assert_eq!(detect(bad), Err(NotABackup), "{bad:?}");
            assert_eq!(NotABackup.to_string(), "Not a valid Framerr backup file");
        }
    }
}
