//! The three kinds of backup Framerr knows.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a backup was made. Spelled as in Framerr's file names and manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupKind {
    /// Made on request, by a person or a script.
    Manual,
    /// Made by the scheduler.
    Scheduled,
    /// Made right before a restore, so that the restore can be undone.
    /// Never counted or deleted by retention.
    Safety,
}

impl BackupKind {
    pub const ALL: [BackupKind; 3] = [BackupKind::Manual, BackupKind::Scheduled, BackupKind::Safety];

    pub fn as_str(self) -> &'static str {
        match self {
            BackupKind::Manual => "manual",
            BackupKind::Scheduled => "scheduled",
            BackupKind::Safety => "safety",
        }
    }

    /// Whether retention may count and delete backups of this kind.
    pub fn is_rotated(self) -> bool {
        !matches!(self, BackupKind::Safety)
    }
}

impl fmt::Display for BackupKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not `manual`, `scheduled` or `safety`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown backup type {0:?}: expected manual, scheduled or safety")]
pub struct UnknownKind(pub String);

impl FromStr for BackupKind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BackupKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| UnknownKind(s.to_owned()))
    }
}
