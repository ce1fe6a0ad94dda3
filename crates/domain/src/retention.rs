//! Which backups to delete after a successful backup (spec section 7).
//!
//! Policy: manual and scheduled backups are counted together and only the
//! newest `max` of them are kept; safety backups are never counted and never
//! deleted. Age comes from the name's stamp, never from file mtime; backups
//! of the same second are ordered by their sequence number, then by name, so
//! the result does not depend on the order the store listed them in.
//! A backup whose stamp is not a date (Framerr accepts any stamp) cannot be
//! aged, so retention leaves it alone. Nor can one stamped in the future (a
//! clock that was ahead, a Raspberry Pi without a real-time clock, a copy
//! from another machine): it would count as the newest forever and push
//! every new backup out. It is left alone, not counted, and reported. The
//! backup just made is never deleted, whatever its stamp says.

use std::collections::BTreeSet;
use std::fmt;

use time::OffsetDateTime;

use crate::name::BackupName;

/// `maxBackups`: how many manual and scheduled backups to keep, 1 to 30.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MaxBackups(u8);

impl MaxBackups {
    pub const MIN: u8 = 1;
    pub const MAX: u8 = 30;
    /// Framerr's default.
    pub const DEFAULT: MaxBackups = MaxBackups(10);

    pub fn new(n: u64) -> Option<Self> {
        u8::try_from(n).ok().filter(|n| (Self::MIN..=Self::MAX).contains(n)).map(MaxBackups)
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl fmt::Display for MaxBackups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Stamps up to this far ahead of now are a small clock difference between
/// machines, not the future.
pub const FUTURE_TOLERANCE: time::Duration = time::Duration::minutes(5);

/// What retention decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Oldest first.
    pub delete: Vec<BackupName>,
    /// Stamped after `now` (beyond the tolerance): kept, not counted.
    pub future: Vec<BackupName>,
}

/// Which backups to delete, keeping the newest `max` manual and scheduled
/// backups dated up to `now`, and never `keep` (the backup just made).
pub fn plan<'a>(
    stored: impl IntoIterator<Item = &'a BackupName>,
    max: MaxBackups,
    now: OffsetDateTime,
    keep: Option<&BackupName>,
) -> Plan {
    let horizon = now + FUTURE_TOLERANCE;
    let mut future = BTreeSet::new();
    let mut counted = BTreeSet::new();
    for name in stored {
        match name.created_at() {
            Some(at) if name.kind().is_rotated() && at > horizon => {
                future.insert(name);
            }
            Some(_) if name.kind().is_rotated() => {
                counted.insert(name);
            }
            _ => {}
        }
    }
    let excess = counted.len().saturating_sub(usize::from(max.get()));
    let delete = counted.into_iter().filter(|n| Some(*n) != keep).take(excess).cloned().collect();
    Plan { delete, future: future.into_iter().cloned().collect() }
}

/// The backups to delete, oldest first, with no backup to protect and no
/// clock to compare with: every dated stamp counts.
pub fn to_delete<'a>(stored: impl IntoIterator<Item = &'a BackupName>, max: MaxBackups) -> Vec<BackupName> {
    plan(stored, max, time::macros::datetime!(9999-12-31 0:00 UTC), None).delete
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::BackupKind;
    use crate::name::BackupFormat;
    use proptest::prelude::*;
    use time::OffsetDateTime;

    fn names(texts: &[&str]) -> Vec<BackupName> {
        texts.iter().map(|t| BackupName::parse(t).unwrap()).collect()
    }

    fn texts(names: &[BackupName]) -> Vec<String> {
        names.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn max_backups_is_one_to_thirty() {
        assert_eq!(MaxBackups::new(0), None);
        assert_eq!(MaxBackups::new(1).map(MaxBackups::get), Some(1));
        assert_eq!(MaxBackups::new(30).map(MaxBackups::get), Some(30));
        assert_eq!(MaxBackups::new(31), None);
        assert_eq!(MaxBackups::new(u64::MAX), None);
    }

    #[test]
    fn table() {
        let stored = names(&[
            "framerr-manual-2026-11-20T03-00-00.zip",
            "framerr-scheduled-2026-11-21T03-00-00.framerr-backup",
            "framerr-safety-2026-11-01T00-00-00.zip",
            "framerr-scheduled-2026-11-22T03-00-00.zip",
            "framerr-manual-2026-11-22T03-00-00-2.zip",
            "framerr-manual-imported-by-hand.zip",
        ]);
        let cases: [(u64, &[&str]); 4] = [
            (
                1,
                &[
                    "framerr-manual-2026-11-20T03-00-00.zip",
                    "framerr-scheduled-2026-11-21T03-00-00.framerr-backup",
                    "framerr-scheduled-2026-11-22T03-00-00.zip",
                ],
            ),
            (2, &["framerr-manual-2026-11-20T03-00-00.zip", "framerr-scheduled-2026-11-21T03-00-00.framerr-backup"]),
            (3, &["framerr-manual-2026-11-20T03-00-00.zip"]),
            (4, &[]),
        ];
        for (max, want) in cases {
            let got = to_delete(&stored, MaxBackups::new(max).unwrap());
            assert_eq!(texts(&got), *want, "max {max}");
        }
    }

    #[test]
    fn same_name_listed_twice_counts_once() {
        let stored = names(&["framerr-manual-2026-11-20T03-00-00.zip", "framerr-manual-2026-11-20T03-00-00.zip"]);
        assert!(to_delete(&stored, MaxBackups::new(1).unwrap()).is_empty());
    }

    fn arb_name() -> impl Strategy<Value = BackupName> {
        (
            prop_oneof![Just(BackupKind::Manual), Just(BackupKind::Scheduled), Just(BackupKind::Safety)],
            0i64..2_000_000, // about 23 days of seconds, so collisions happen
            1u32..4,
            any::<bool>(),
        )
            .prop_map(|(kind, secs, seq, enc)| {
                let at = OffsetDateTime::from_unix_timestamp(1_790_000_000 + secs).unwrap();
                let format = if enc { BackupFormat::Encrypted } else { BackupFormat::Plain };
                BackupName::with_sequence(kind, at, format, seq)
            })
    }

    #[test]
    fn names_stamped_in_the_future_never_push_a_new_backup_out() {
        let now = OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap();
        let at = |secs: i64| OffsetDateTime::from_unix_timestamp(1_790_000_000 + secs).unwrap();
        let new = BackupName::new(BackupKind::Scheduled, now, BackupFormat::Plain);
        let stored = vec![
            BackupName::new(BackupKind::Manual, at(86_400 * 30), BackupFormat::Plain),
            BackupName::new(BackupKind::Manual, at(86_400 * 31), BackupFormat::Plain),
            BackupName::new(BackupKind::Manual, at(-86_400), BackupFormat::Plain),
            BackupName::new(BackupKind::Manual, at(60), BackupFormat::Plain),
            new.clone(),
        ];
        let p = plan(&stored, MaxBackups::new(2).unwrap(), now, Some(&new));
        // The two a month ahead are kept and reported; of the three that
        // count, the oldest goes; a minute ahead is within the tolerance.
        assert_eq!(p.future, stored[..2]);
        assert_eq!(p.delete, [stored[2].clone()]);
        // With one to keep, the new backup stays even though one stamped a
        // minute later is "newer".
        let p = plan(&stored, MaxBackups::new(1).unwrap(), now, Some(&new));
        assert!(!p.delete.contains(&new), "{p:?}");
        assert!(p.delete.contains(&stored[3]) && p.delete.contains(&stored[2]));
    }

    proptest! {
        #[test]
        fn the_backup_just_made_and_future_ones_are_never_deleted(
            stored in proptest::collection::vec(arb_name(), 0..40),
            max in 1u64..=30,
            now_secs in 0i64..2_000_000,
            pick in any::<proptest::sample::Index>(),
        ) {
            let now = OffsetDateTime::from_unix_timestamp(1_790_000_000 + now_secs).unwrap();
            let keep = (!stored.is_empty()).then(|| pick.get(&stored).clone());
            let p = plan(&stored, MaxBackups::new(max).unwrap(), now, keep.as_ref());
            if let Some(keep) = &keep {
                prop_assert!(!p.delete.contains(keep));
            }
            prop_assert!(p.delete.iter().all(|n| n.created_at().is_some_and(|t| t <= now + FUTURE_TOLERANCE)));
            prop_assert!(p.future.iter().all(|n| !p.delete.contains(n)));
        }

        #[test]
        fn invariants(stored in proptest::collection::vec(arb_name(), 0..60), max in 1u64..=30) {
            let max = MaxBackups::new(max).unwrap();
            let deleted = to_delete(&stored, max);
            let distinct: BTreeSet<&BackupName> = stored.iter().collect();
            let rotated: Vec<&BackupName> = distinct.iter().copied().filter(|n| n.kind().is_rotated()).collect();

            // Never deletes a safety backup.
            prop_assert!(deleted.iter().all(|n| n.kind() != BackupKind::Safety));
            // Keeps exactly min(count, max) manual+scheduled backups.
            let kept = rotated.len() - deleted.len();
            prop_assert_eq!(kept, rotated.len().min(usize::from(max.get())));
            // Deletes only the oldest: every deleted one is older than every kept one.
            let kept_names: Vec<&&BackupName> = rotated.iter().filter(|n| !deleted.contains(n)).collect();
            for d in &deleted {
                for k in &kept_names {
                    prop_assert!(d < **k);
                }
            }
            // Never deletes the newest backup.
            if let Some(newest) = rotated.iter().max() {
                prop_assert!(!deleted.contains(newest));
            }
            // Oldest first, no duplicates.
            prop_assert!(deleted.windows(2).all(|w| w[0] < w[1]));
        }

        #[test]
        fn stable_under_input_order(mut stored in proptest::collection::vec(arb_name(), 0..40), max in 1u64..=30, seed in any::<u64>()) {
            let max = MaxBackups::new(max).unwrap();
            let before = to_delete(&stored, max);
            // A deterministic shuffle driven by the seed.
            let n = stored.len();
            let mut state = seed | 1;
            for i in (1..n).rev() {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                stored.swap(i, (state % (i as u64 + 1)) as usize);
            }
            prop_assert_eq!(before, to_delete(&stored, max));
        }
    }
}
