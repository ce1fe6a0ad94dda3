//! Backup file names: `framerr-{type}-{stamp}.{ext}` (spec section 2).
//!
//! Framerr accepts any stamp text; we accept the same names except those that
//! could escape a folder or confuse a shell (separators, `..`, control
//! characters), because a name also arrives from URLs and command lines.
//! We date a backup by the stamp in its name, never by file mtime.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::kind::BackupKind;

/// Plain ZIP or FRMRBKUP-encrypted; it decides the file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BackupFormat {
    Plain,
    Encrypted,
}

impl BackupFormat {
    pub fn extension(self) -> &'static str {
        match self {
            BackupFormat::Plain => "zip",
            BackupFormat::Encrypted => "framerr-backup",
        }
    }

    /// The `Content-Type` Framerr serves a download with.
    pub fn content_type(self) -> &'static str {
        match self {
            BackupFormat::Plain => "application/zip",
            BackupFormat::Encrypted => "application/octet-stream",
        }
    }
}

/// Why a text is not a backup name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    #[error("not a backup name: expected framerr-(manual|scheduled|safety)-<stamp>.(zip|framerr-backup)")]
    Pattern,
    #[error("backup name is longer than {max} bytes", max = BackupName::MAX_LEN)]
    TooLong,
    #[error(
        "backup name contains a character that is not allowed (letters, digits, '-', '_', '.', '+' only, and no '..')"
    )]
    Character,
}

/// A valid backup file name.
///
/// Ordering is by age: creation time from the stamp, then the same-second
/// sequence number, then the text. Names whose stamp is not a date (Framerr
/// accepts them) sort before every dated name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BackupName {
    kind: BackupKind,
    stamp: String,
    format: BackupFormat,
    created_at: Option<OffsetDateTime>,
    sequence: u32,
}

const PREFIX: &str = "framerr-";
const STAMP_LEN: usize = 19;

impl BackupName {
    /// File systems commonly cap a name at 255 bytes.
    pub const MAX_LEN: usize = 255;

    /// The name for a backup created at `at` (rounded down to the second, UTC).
    pub fn new(kind: BackupKind, at: OffsetDateTime, format: BackupFormat) -> Self {
        Self::with_sequence(kind, at, format, 1)
    }

    /// As [`BackupName::new`]; a `sequence` of 2 or more adds `-{sequence}`
    /// to the stamp, which keeps the name inside Framerr's pattern.
    pub fn with_sequence(kind: BackupKind, at: OffsetDateTime, format: BackupFormat, sequence: u32) -> Self {
        let at = at.to_offset(UtcOffset::UTC);
        let at = at.replace_nanosecond(0).unwrap_or(at);
        let mut stamp =
            at.format(format_description!("[year]-[month]-[day]T[hour]-[minute]-[second]")).unwrap_or_default();
        if sequence >= 2 {
            stamp.push_str(&format!("-{sequence}"));
        }
        BackupName { kind, stamp, format, created_at: Some(at), sequence: sequence.max(1) }
    }

    /// The first name for `at` whose stem (the name without extension) is not
    /// `taken`. Framerr gives two backups of the same second one name and the
    /// second overwrites the first; we add a sequence number instead.
    pub fn unique(
        kind: BackupKind,
        at: OffsetDateTime,
        format: BackupFormat,
        mut taken: impl FnMut(&str) -> bool,
    ) -> Self {
        (1..)
            .map(|seq| Self::with_sequence(kind, at, format, seq))
            .find(|name| !taken(&name.stem()))
            .unwrap_or_else(|| Self::new(kind, at, format))
    }

    pub fn parse(text: &str) -> Result<Self, NameError> {
        if text.len() > Self::MAX_LEN {
            return Err(NameError::TooLong);
        }
        let rest = text.strip_prefix(PREFIX).ok_or(NameError::Pattern)?;
        let (kind, rest) = BackupKind::ALL
            .into_iter()
            .find_map(|k| rest.strip_prefix(k.as_str()).and_then(|r| r.strip_prefix('-')).map(|r| (k, r)))
            .ok_or(NameError::Pattern)?;
        let (stamp, format) = [BackupFormat::Encrypted, BackupFormat::Plain]
            .into_iter()
            .find_map(|f| rest.strip_suffix(f.extension()).and_then(|r| r.strip_suffix('.')).map(|s| (s, f)))
            .ok_or(NameError::Pattern)?;
        if stamp.is_empty() {
            return Err(NameError::Pattern);
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+');
        if !stamp.chars().all(allowed) || stamp.contains("..") {
            return Err(NameError::Character);
        }
        let (created_at, sequence) = date_of(stamp);
        Ok(BackupName { kind, stamp: stamp.to_owned(), format, created_at, sequence })
    }

    pub fn kind(&self) -> BackupKind {
        self.kind
    }

    pub fn format(&self) -> BackupFormat {
        self.format
    }

    pub fn is_encrypted(&self) -> bool {
        self.format == BackupFormat::Encrypted
    }

    pub fn stamp(&self) -> &str {
        &self.stamp
    }

    /// The creation time written in the stamp, when the stamp is a date.
    pub fn created_at(&self) -> Option<OffsetDateTime> {
        self.created_at
    }

    /// 1 for the first backup of a second, then 2, 3, ...
    pub fn sequence(&self) -> u32 {
        self.sequence
    }

    /// The name without its extension: `framerr-manual-2026-11-26T03-00-00`.
    pub fn stem(&self) -> String {
        format!("{PREFIX}{}-{}", self.kind, self.stamp)
    }

    /// The same backup in another format (the encrypted file of a plain one).
    pub fn with_format(&self, format: BackupFormat) -> Self {
        BackupName { format, ..self.clone() }
    }
}

/// `2026-11-26T03-00-00` is dated, sequence 1; `…-00-2` is sequence 2; a stamp
/// whose first 19 characters are no date is undated.
fn date_of(stamp: &str) -> (Option<OffsetDateTime>, u32) {
    let Some(date_part) = stamp.get(..STAMP_LEN) else {
        return (None, 1);
    };
    let Ok(at) =
        PrimitiveDateTime::parse(date_part, format_description!("[year]-[month]-[day]T[hour]-[minute]-[second]"))
    else {
        return (None, 1);
    };
    let rest = &stamp[STAMP_LEN..];
    let sequence = match rest.strip_prefix('-') {
        _ if rest.is_empty() => 1,
        Some(n) if !n.is_empty() && n.len() <= 9 && n.bytes().all(|b| b.is_ascii_digit()) => {
            n.parse().unwrap_or(u32::MAX)
        }
        // Dated, but with a suffix we did not write: after every numbered one.
        _ => u32::MAX,
    };
    (Some(at.assume_utc()), sequence)
}

impl fmt::Display for BackupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}-{}.{}", self.kind, self.stamp, self.format.extension())
    }
}

impl FromStr for BackupName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BackupName::parse(s)
    }
}

impl Ord for BackupName {
    fn cmp(&self, other: &Self) -> Ordering {
        self.created_at
            .cmp(&other.created_at)
            .then(self.sequence.cmp(&other.sequence))
            .then_with(|| self.to_string().cmp(&other.to_string()))
    }
}

impl PartialOrd for BackupName {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn formats_framerr_names() {
        let at = datetime!(2026-11-26 03:00:00.987 UTC);
        let plain = BackupName::new(BackupKind::Manual, at, BackupFormat::Plain);
        assert_eq!(plain.to_string(), "framerr-manual-2026-11-26T03-00-00.zip");
        let enc = BackupName::new(BackupKind::Scheduled, at, BackupFormat::Encrypted);
        assert_eq!(enc.to_string(), "framerr-scheduled-2026-11-26T03-00-00.framerr-backup");
        let local = datetime!(2026-11-26 04:00:00 +1);
        assert_eq!(
            BackupName::new(BackupKind::Safety, local, BackupFormat::Plain).to_string(),
            "framerr-safety-2026-11-26T03-00-00.zip"
        );
    }

    #[test]
    fn parses_what_it_formats_and_framerr_fixture_names() {
        for text in [
            "framerr-manual-2026-11-26T22-17-29.zip",
            "framerr-manual-2026-11-26T22-17-29.framerr-backup",
            "framerr-scheduled-2026-11-26T03-00-00-2.zip",
            "framerr-safety-anything_goes.zip",
        ] {
            let name = BackupName::parse(text).unwrap();
            assert_eq!(name.to_string(), text);
        }
        let name = BackupName::parse("framerr-manual-2026-11-26T22-17-29.framerr-backup").unwrap();
        assert_eq!(name.kind(), BackupKind::Manual);
        assert!(name.is_encrypted());
        assert_eq!(name.created_at(), Some(datetime!(2026-11-26 22:17:29 UTC)));
        assert_eq!(name.sequence(), 1);
    }

    #[test]
    fn rejects_non_names_and_traversal() {
        let cases = [
            ("", NameError::Pattern),
            ("backup.zip", NameError::Pattern),
            ("framerr-daily-2026-11-26T03-00-00.zip", NameError::Pattern),
            ("framerr-manual-.zip", NameError::Pattern),
            ("framerr-manual-2026.tar", NameError::Pattern),
            ("framerr-manual-2026-11-26T03-00-00.zip.part", NameError::Pattern),
            ("framerr-manual-../../etc/passwd.zip", NameError::Character),
            ("framerr-manual-a/b.zip", NameError::Character),
            ("framerr-manual-a\\b.zip", NameError::Character),
            ("framerr-manual-a..b.zip", NameError::Character),
            ("framerr-manual-a\0b.zip", NameError::Character),
            ("framerr-manual-a b.zip", NameError::Character),
            ("framerr-manual-a\nb.zip", NameError::Character),
        ];
        for (text, err) in cases {
            assert_eq!(BackupName::parse(text), Err(err), "{text:?}");
        }
        let long = format!("framerr-manual-{}.zip", "a".repeat(300));
        assert_eq!(BackupName::parse(&long), Err(NameError::TooLong));
    }

    #[test]
    fn same_second_gets_distinct_names_inside_framerrs_pattern() {
        let at = datetime!(2026-11-26 03:00:00 UTC);
        let mut taken = std::collections::HashSet::new();
        let mut names = Vec::new();
        for _ in 0..4 {
            let name = BackupName::unique(BackupKind::Manual, at, BackupFormat::Plain, |s| taken.contains(s));
            taken.insert(name.stem());
            names.push(name);
        }
        let texts: Vec<String> = names.iter().map(ToString::to_string).collect();
        assert_eq!(
            texts,
            [
                "framerr-manual-2026-11-26T03-00-00.zip",
                "framerr-manual-2026-11-26T03-00-00-2.zip",
                "framerr-manual-2026-11-26T03-00-00-3.zip",
                "framerr-manual-2026-11-26T03-00-00-4.zip",
            ]
        );
        // Still ordered by age, and each parses back with its sequence.
        for (i, name) in names.iter().enumerate() {
            let back = BackupName::parse(&name.to_string()).unwrap();
            assert_eq!(back.sequence() as usize, i + 1);
            assert_eq!(&back, name);
        }
        assert!(names.windows(2).all(|w| w[0] < w[1]));
        // An encrypted file takes the stem too.
        let enc = BackupName::unique(BackupKind::Manual, at, BackupFormat::Encrypted, |s| taken.contains(s));
        assert_eq!(enc.to_string(), "framerr-manual-2026-11-26T03-00-00-5.framerr-backup");
    }

    #[test]
    fn orders_by_stamp_then_sequence_not_by_text() {
        let mut names: Vec<BackupName> = [
            "framerr-scheduled-2026-11-26T03-00-00-10.zip",
            "framerr-manual-2026-11-27T00-00-00.zip",
            "framerr-safety-not-a-date.zip",
            "framerr-manual-2026-11-26T03-00-00-2.zip",
            "framerr-scheduled-2026-11-26T03-00-00.zip",
        ]
        .iter()
        .map(|t| BackupName::parse(t).unwrap())
        .collect();
        names.sort();
        let texts: Vec<String> = names.iter().map(ToString::to_string).collect();
        assert_eq!(
            texts,
            [
                "framerr-safety-not-a-date.zip",
                "framerr-scheduled-2026-11-26T03-00-00.zip",
                "framerr-manual-2026-11-26T03-00-00-2.zip",
                "framerr-scheduled-2026-11-26T03-00-00-10.zip",
                "framerr-manual-2026-11-27T00-00-00.zip",
            ]
        );
    }
}
