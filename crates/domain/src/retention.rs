//! Which backups to delete after a successful backup (spec section 7, and
//! restic's keep policies beyond it).
//!
//! Policy: manual and scheduled backups are counted together. A backup is
//! kept when any rule keeps it: one of the newest `last` (Framerr's
//! `maxBackups`), or the newest of one of the last `daily` days, `weekly`
//! ISO weeks or `monthly` months that have backups (restic's meaning), in
//! the server's time zone. The newest backup is always kept. Safety and
//! pinned backups are never counted and never deleted. Age comes from the
//! name's stamp, never from file mtime; backups of the same second are
//! ordered by their sequence number, then by name, so the result does not
//! depend on the order the store listed them in.
//! A backup whose stamp is not a date (Framerr accepts any stamp) cannot be
//! aged, so retention leaves it alone. Nor can one stamped in the future (a
//! clock that was ahead, a Raspberry Pi without a real-time clock, a copy
//! from another machine): it would count as the newest forever and push
//! every new backup out. It is left alone, not counted, and reported. The
//! backup just made is never deleted, whatever its stamp says.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;
use time::OffsetDateTime;

use crate::kind::BackupKind;
use crate::name::BackupName;
use crate::schedule::{LocalDay, Zone};

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

/// How many backups retention keeps, rule by rule. A backup is kept when
/// any rule keeps it; zero turns a rule off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeepPolicy {
    /// The newest N (Framerr's `maxBackups`).
    pub last: u16,
    /// The newest backup of each of the last N days that have backups.
    pub daily: u16,
    /// ... of each of the last N ISO weeks (Monday to Sunday) that have backups.
    pub weekly: u16,
    /// ... of each of the last N calendar months that have backups.
    pub monthly: u16,
}

impl KeepPolicy {
    /// The largest count a rule takes (keepDaily 1000 is close to three years).
    pub const MAX_COUNT: u16 = 1000;

    /// Framerr's policy: the newest `max`.
    pub fn newest(max: MaxBackups) -> Self {
        KeepPolicy { last: u16::from(max.get()), ..KeepPolicy::default() }
    }
}

impl fmt::Display for KeepPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rules: Vec<String> =
            [("last", self.last), ("daily", self.daily), ("weekly", self.weekly), ("monthly", self.monthly)]
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(rule, n)| format!("{n} {rule}"))
                .collect();
        if rules.is_empty() { f.write_str("the newest only") } else { f.write_str(&rules.join(", ")) }
    }
}

/// Why a backup is kept.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// One of the newest `last`, with its rank (1 = newest).
    Last(u16),
    /// The newest of this day, week or month (local, in the server's zone).
    Daily(LocalDay),
    Weekly(LocalDay),
    Monthly(LocalDay),
    /// The newest backup, kept whatever the rules say.
    Newest,
    /// The backup just made.
    JustMade,
    Pinned,
    Safety,
    /// Stamped after now: a clock was wrong; kept, not counted.
    Future,
    /// Its name carries no date, so it cannot be aged.
    Undated,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Last(rank) => write!(f, "last #{rank}"),
            Reason::Daily(d) => write!(f, "daily {:04}-{:02}-{:02}", d.year, d.month, d.day),
            Reason::Weekly(d) => write!(f, "weekly {:04}-W{:02}", d.week_year, d.week),
            Reason::Monthly(d) => write!(f, "monthly {:04}-{:02}", d.year, d.month),
            Reason::Newest => f.write_str("newest"),
            Reason::JustMade => f.write_str("just made"),
            Reason::Pinned => f.write_str("pinned"),
            Reason::Safety => f.write_str("safety backup"),
            Reason::Future => f.write_str("stamped in the future"),
            Reason::Undated => f.write_str("no date in its name"),
        }
    }
}

impl Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A kept backup and every reason it is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kept {
    #[serde(rename = "filename", serialize_with = "as_text")]
    pub name: BackupName,
    pub reasons: Vec<Reason>,
}

fn as_text<S: serde::Serializer>(name: &BackupName, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(name)
}

/// What retention decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Oldest first.
    pub delete: Vec<BackupName>,
    /// Newest first.
    pub kept: Vec<Kept>,
    /// Stamped after `now` (beyond the tolerance): kept, not counted.
    pub future: Vec<BackupName>,
}

/// What retention looks at besides the stored names.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub keep: KeepPolicy,
    /// Days, weeks and months are the server's.
    pub zone: &'a Zone,
    pub now: OffsetDateTime,
    pub pinned: &'a BTreeSet<BackupName>,
    /// The backup just made: never deleted, whatever its stamp says.
    pub just_made: Option<&'a BackupName>,
}

/// Which backups to delete and why the others stay.
pub fn plan<'a>(stored: impl IntoIterator<Item = &'a BackupName>, rules: &Rules<'_>) -> Plan {
    let horizon = rules.now + FUTURE_TOLERANCE;
    let mut reasons: BTreeMap<&BackupName, Vec<Reason>> = BTreeMap::new();
    let mut counted: Vec<(&BackupName, LocalDay)> = Vec::new();
    let mut future = BTreeSet::new();
    let distinct: BTreeSet<&BackupName> = stored.into_iter().collect();
    for name in distinct {
        let mut why = Vec::new();
        if rules.pinned.contains(name) {
            why.push(Reason::Pinned);
        }
        let day = name.created_at().and_then(|at| Some((at, rules.zone.local_day(at)?)));
        match day {
            _ if name.kind() == BackupKind::Safety => why.push(Reason::Safety),
            None => why.push(Reason::Undated),
            Some((at, _)) if at > horizon => {
                why.push(Reason::Future);
                future.insert(name);
            }
            Some((_, day)) if why.is_empty() => counted.push((name, day)),
            Some(_) => {}
        }
        reasons.insert(name, why);
    }
    // Newest first.
    counted.reverse();
    let keep = rules.keep;
    for (rank, (name, _)) in counted.iter().take(usize::from(keep.last)).enumerate() {
        push(&mut reasons, name, Reason::Last(rank as u16 + 1));
    }
    let by_period: [(u16, PeriodOf, ReasonOf); 3] = [
        (keep.daily, |d| (d.year, d.month, d.day), Reason::Daily),
        (keep.weekly, |d| (d.week_year, d.week, 0), Reason::Weekly),
        (keep.monthly, |d| (d.year, d.month, 0), Reason::Monthly),
    ];
    for (count, period, reason) in by_period {
        let mut seen = 0;
        let mut last = None;
        for (name, day) in &counted {
            if seen == count {
                break;
            }
            if last != Some(period(day)) {
                last = Some(period(day));
                seen += 1;
                push(&mut reasons, name, reason(*day));
            }
        }
    }
    if let Some((newest, _)) = counted.first()
        && reasons.get(newest).is_some_and(Vec::is_empty)
    {
        push(&mut reasons, newest, Reason::Newest);
    }
    if let Some(why) = rules.just_made.and_then(|n| reasons.get_mut(n)).filter(|why| why.is_empty()) {
        why.push(Reason::JustMade);
    }
    let mut delete = Vec::new();
    let mut kept = Vec::new();
    for (name, why) in reasons.into_iter().rev() {
        if why.is_empty() {
            delete.push(name.clone());
        } else {
            kept.push(Kept { name: name.clone(), reasons: why });
        }
    }
    delete.reverse();
    Plan { delete, kept, future: future.into_iter().cloned().collect() }
}

/// The period a day falls in: the day itself, its ISO week, its month.
type PeriodOf = fn(&LocalDay) -> (i16, u8, u8);
type ReasonOf = fn(LocalDay) -> Reason;

fn push<'a>(reasons: &mut BTreeMap<&'a BackupName, Vec<Reason>>, name: &'a BackupName, reason: Reason) {
    reasons.entry(name).or_default().push(reason);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::BackupKind;
    use crate::name::BackupFormat;
    use proptest::prelude::*;
    use time::OffsetDateTime;
    use time::macros::datetime;

    fn names(texts: &[&str]) -> Vec<BackupName> {
        texts.iter().map(|t| BackupName::parse(t).unwrap()).collect()
    }

    fn texts(names: &[BackupName]) -> Vec<String> {
        names.iter().map(ToString::to_string).collect()
    }

    const NO_PINS: &BTreeSet<BackupName> = &BTreeSet::new();

    fn rules<'a>(keep: KeepPolicy, zone: &'a Zone, now: OffsetDateTime) -> Rules<'a> {
        Rules { keep, zone, now, pinned: NO_PINS, just_made: None }
    }

    /// Framerr's policy with no clock to compare with: every dated stamp counts.
    fn to_delete<'a>(stored: impl IntoIterator<Item = &'a BackupName>, max: MaxBackups) -> Vec<BackupName> {
        let utc = Zone::utc();
        plan(stored, &rules(KeepPolicy::newest(max), &utc, datetime!(9999-12-31 0:00 UTC))).delete
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

    /// Backups at these UTC instants, named in order.
    fn at(instants: &[OffsetDateTime]) -> Vec<BackupName> {
        instants.iter().map(|t| BackupName::new(BackupKind::Scheduled, *t, BackupFormat::Plain)).collect()
    }

    fn kept_by(zone: &str, keep: KeepPolicy, stored: &[BackupName]) -> Vec<(String, Vec<String>)> {
        let zone = Zone::named(zone).unwrap();
        let p = plan(stored, &rules(keep, &zone, datetime!(2027-06-01 0:00 UTC)));
        p.kept
            .iter()
            .map(|k| (k.name.stamp().to_owned(), k.reasons.iter().map(ToString::to_string).collect()))
            .collect()
    }

    fn daily(n: u16) -> KeepPolicy {
        KeepPolicy { daily: n, ..KeepPolicy::default() }
    }

    #[test]
    fn days_are_the_servers_days() {
        // 22:30 and 23:30 UTC on the 26th: in Berlin the second is already
        // the 27th; in New York both are the 26th (evening).
        let stored = at(&[datetime!(2026-11-26 22:30 UTC), datetime!(2026-11-26 23:30 UTC)]);
        assert_eq!(
            kept_by("Europe/Berlin", daily(7), &stored),
            [
                ("2026-11-26T23-30-00".into(), vec!["daily 2026-11-27".into()]),
                ("2026-11-26T22-30-00".into(), vec!["daily 2026-11-26".into()]),
            ]
        );
        assert_eq!(
            kept_by("America/New_York", daily(7), &stored),
            [("2026-11-26T23-30-00".into(), vec!["daily 2026-11-26".into()])]
        );
        assert_eq!(kept_by("UTC", daily(7), &stored).len(), 1);
    }

    #[test]
    fn dst_days_are_one_day_each() {
        // Berlin springs forward on 2026-03-29 (a 23-hour day: 00:00 CET is
        // 23:00 UTC the day before, midnight after it is 22:00 UTC) and
        // falls back on 2026-10-25 (25 hours: 22:00 UTC before, 23:00 after).
        let spring = at(&[
            datetime!(2026-03-28 22:59 UTC), // 23:59 on the 28th
            datetime!(2026-03-28 23:00 UTC), // 00:00 on the 29th
            datetime!(2026-03-29 21:59 UTC), // 23:59 CEST on the 29th
            datetime!(2026-03-29 22:00 UTC), // 00:00 on the 30th
        ]);
        let days: Vec<Vec<String>> = kept_by("Europe/Berlin", daily(10), &spring).into_iter().map(|k| k.1).collect();
        assert_eq!(days, [["daily 2026-03-30"], ["daily 2026-03-29"], ["daily 2026-03-28"]]);
        let fall = at(&[
            datetime!(2026-10-24 21:59 UTC), // 23:59 CEST on the 24th
            datetime!(2026-10-24 22:00 UTC), // 00:00 on the 25th
            datetime!(2026-10-25 22:59 UTC), // 23:59 CET on the 25th
            datetime!(2026-10-25 23:00 UTC), // 00:00 on the 26th
        ]);
        let kept = kept_by("Europe/Berlin", daily(10), &fall);
        assert_eq!(
            kept.iter().map(|k| k.0.as_str()).collect::<Vec<_>>(),
            ["2026-10-25T23-00-00", "2026-10-25T22-59-00", "2026-10-24T21-59-00"]
        );
        // New York: 2026-03-08 springs forward, 2026-11-01 falls back.
        let ny = at(&[
            datetime!(2026-03-08 04:59 UTC), // 23:59 EST on the 7th
            datetime!(2026-03-08 05:00 UTC), // 00:00 EST on the 8th
            datetime!(2026-03-09 03:59 UTC), // 23:59 EDT on the 8th
            datetime!(2026-11-01 03:59 UTC), // 23:59 EDT on Oct 31
            datetime!(2026-11-02 04:59 UTC), // 23:59 EST on Nov 1
            datetime!(2026-11-02 05:00 UTC), // 00:00 EST on Nov 2
        ]);
        let days: Vec<Vec<String>> = kept_by("America/New_York", daily(10), &ny).into_iter().map(|k| k.1).collect();
        assert_eq!(
            days,
            [
                ["daily 2026-11-02"],
                ["daily 2026-11-01"],
                ["daily 2026-10-31"],
                ["daily 2026-03-08"],
                ["daily 2026-03-07"]
            ]
        );
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first_locally() {
        let weekly = KeepPolicy { weekly: 10, ..KeepPolicy::default() };
        // Sunday 2026-11-29 23:30 Berlin is 22:30 UTC; Monday 00:30 is 23:30 UTC.
        let stored = at(&[datetime!(2026-11-29 22:30 UTC), datetime!(2026-11-29 23:30 UTC)]);
        assert_eq!(
            kept_by("Europe/Berlin", weekly, &stored),
            [
                ("2026-11-29T23-30-00".into(), vec!["weekly 2026-W49".into()]),
                ("2026-11-29T22-30-00".into(), vec!["weekly 2026-W48".into()]),
            ]
        );
        assert_eq!(kept_by("UTC", weekly, &stored).len(), 1, "both are Sunday in UTC");
        // ISO week 53 of 2026 runs into January 2027; week 1 of 2026 began in 2025.
        let stored = at(&[datetime!(2027-01-03 12:00 UTC), datetime!(2025-12-29 12:00 UTC)]);
        let kept = kept_by("UTC", weekly, &stored);
        assert_eq!(kept[0].1, ["weekly 2026-W53"]);
        assert_eq!(kept[1].1, ["weekly 2026-W01"]);

        let monthly = KeepPolicy { monthly: 10, ..KeepPolicy::default() };
        // 2026-10-31 23:30 UTC: November 1 in Berlin, October 31 in New York.
        let stored = at(&[datetime!(2026-10-31 22:30 UTC), datetime!(2026-10-31 23:30 UTC)]);
        assert_eq!(kept_by("Europe/Berlin", monthly, &stored).len(), 2);
        assert_eq!(
            kept_by("America/New_York", monthly, &stored),
            [("2026-10-31T23-30-00".into(), vec!["monthly 2026-10".into()])]
        );
        // Australia/Lord_Howe is UTC+11 in March (its summer time, a
        // half-hour shift): 12:59 UTC on the 31st is 23:59 there, 13:00 UTC
        // is April 1.
        let stored = at(&[datetime!(2026-03-31 12:59 UTC), datetime!(2026-03-31 13:00 UTC)]);
        let kept = kept_by("Australia/Lord_Howe", monthly, &stored);
        assert_eq!(kept.iter().map(|k| k.1[0].as_str()).collect::<Vec<_>>(), ["monthly 2026-04", "monthly 2026-03"]);
    }

    #[test]
    fn restic_semantics_count_periods_that_have_backups() {
        // Three backups on the 1st, none on the 2nd to 9th, one on the 10th:
        // keeping 2 days keeps the newest of the 10th and of the 1st.
        let stored = at(&[
            datetime!(2026-11-01 01:00 UTC),
            datetime!(2026-11-01 02:00 UTC),
            datetime!(2026-11-01 03:00 UTC),
            datetime!(2026-11-10 03:00 UTC),
        ]);
        let utc = Zone::utc();
        let p = plan(&stored, &rules(daily(2), &utc, datetime!(2026-11-10 04:00 UTC)));
        assert_eq!(p.delete, stored[..2]);
        // Rules overlap: the newest is kept for three reasons.
        let keep = KeepPolicy { last: 1, daily: 1, monthly: 1, weekly: 0 };
        let p = plan(&stored, &rules(keep, &utc, datetime!(2026-11-10 04:00 UTC)));
        assert_eq!(
            p.kept[0].reasons.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["last #1", "daily 2026-11-10", "monthly 2026-11"]
        );
        assert_eq!(p.delete, stored[..3]);
    }

    #[test]
    fn pinned_and_safety_are_kept_and_not_counted() {
        let stored =
            at(&[datetime!(2026-11-01 01:00 UTC), datetime!(2026-11-02 01:00 UTC), datetime!(2026-11-03 01:00 UTC)]);
        let safety = BackupName::new(BackupKind::Safety, datetime!(2026-11-04 01:00 UTC), BackupFormat::Plain);
        let pinned: BTreeSet<BackupName> = [stored[2].clone()].into();
        let utc = Zone::utc();
        let mut all = stored.clone();
        all.push(safety.clone());
        let p = plan(
            &all,
            &Rules {
                pinned: &pinned,
                ..rules(KeepPolicy { last: 1, ..KeepPolicy::default() }, &utc, datetime!(2026-11-05 0:00 UTC))
            },
        );
        // The pinned newest does not count: the next one is "last #1".
        assert_eq!(p.delete, [stored[0].clone()]);
        let why = |n: &BackupName| p.kept.iter().find(|k| &k.name == n).unwrap().reasons.clone();
        assert_eq!(why(&stored[2]), [Reason::Pinned]);
        assert_eq!(why(&stored[1]), [Reason::Last(1)]);
        assert_eq!(why(&safety), [Reason::Safety]);
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
        let utc = Zone::utc();
        let keeping = |n: u64| Rules {
            just_made: Some(&new),
            ..rules(KeepPolicy::newest(MaxBackups::new(n).unwrap()), &utc, now)
        };
        let p = plan(&stored, &keeping(2));
        // The two a month ahead are kept and reported; of the three that
        // count, the oldest goes; a minute ahead is within the tolerance.
        assert_eq!(p.future, stored[..2]);
        assert_eq!(p.delete, [stored[2].clone()]);
        // With one to keep, the new backup stays even though one stamped a
        // minute later is "newer" (and is kept as the newest: retention errs
        // on keeping one more).
        let p = plan(&stored, &keeping(1));
        assert_eq!(p.delete, [stored[2].clone()]);
        assert!(p.kept.iter().any(|k| k.name == new && k.reasons == [Reason::JustMade]));
        assert!(p.kept.iter().any(|k| k.name == stored[3] && k.reasons == [Reason::Last(1)]));
    }

    #[test]
    fn policies_read_as_words() {
        assert_eq!(KeepPolicy::default().to_string(), "the newest only");
        assert_eq!(KeepPolicy { last: 7, monthly: 12, ..KeepPolicy::default() }.to_string(), "7 last, 12 monthly");
    }

    fn arb_name(span: i64) -> impl Strategy<Value = BackupName> {
        (
            prop_oneof![4 => Just(BackupKind::Manual), 4 => Just(BackupKind::Scheduled), 1 => Just(BackupKind::Safety)],
            0i64..span,
            1u32..4,
            any::<bool>(),
        )
            .prop_map(|(kind, secs, seq, enc)| {
                let at = OffsetDateTime::from_unix_timestamp(1_790_000_000 + secs).unwrap();
                let format = if enc { BackupFormat::Encrypted } else { BackupFormat::Plain };
                BackupName::with_sequence(kind, at, format, seq)
            })
    }

    fn arb_policy() -> impl Strategy<Value = KeepPolicy> {
        (0u16..6, 0u16..12, 0u16..6, 0u16..4).prop_map(|(last, daily, weekly, monthly)| KeepPolicy {
            last,
            daily,
            weekly,
            monthly,
        })
    }

    fn arb_zone() -> impl Strategy<Value = Zone> {
        prop_oneof![
            Just("UTC"),
            Just("Europe/Berlin"),
            Just("America/New_York"),
            Just("Australia/Lord_Howe"),
            Just("Asia/Kolkata"),
            Just("Pacific/Chatham")
        ]
        .prop_map(|z| Zone::named(z).unwrap())
    }

    /// About 115 days of seconds: days, weeks and months all matter, and
    /// same-second collisions still happen.
    const SPAN: i64 = 10_000_000;

    /// What each calendar rule must keep, computed by grouping (the
    /// implementation streams): the newest of each of the last N periods.
    fn oracle(counted: &[&BackupName], keep: KeepPolicy, zone: &Zone) -> BTreeSet<BackupName> {
        let mut must = BTreeSet::new();
        let keys: [(u16, PeriodOf); 3] = [
            (keep.daily, |d| (d.year, d.month, d.day)),
            (keep.weekly, |d| (d.week_year, d.week, 0)),
            (keep.monthly, |d| (d.year, d.month, 0)),
        ];
        for (n, key) in keys {
            let mut groups: BTreeMap<(i16, u8, u8), BackupName> = BTreeMap::new();
            for name in counted {
                let day = zone.local_day(name.created_at().unwrap()).unwrap();
                let newest = groups.entry(key(&day)).or_insert_with(|| (*name).clone());
                if *name > newest {
                    *newest = (*name).clone();
                }
            }
            must.extend(groups.into_values().rev().take(usize::from(n)));
        }
        let mut newest_first: Vec<&&BackupName> = counted.iter().collect();
        newest_first.sort();
        newest_first.reverse();
        must.extend(newest_first.iter().take(usize::from(keep.last)).map(|n| (**n).clone()));
        must.extend(newest_first.first().map(|n| (**n).clone()));
        must
    }

    proptest! {
        #[test]
        fn calendar_invariants(
            stored in proptest::collection::vec(arb_name(SPAN), 0..60),
            keep in arb_policy(),
            zone in arb_zone(),
            now_secs in 0i64..SPAN,
            pins in proptest::collection::vec(any::<proptest::sample::Index>(), 0..4),
            pick in any::<proptest::sample::Index>(),
        ) {
            let now = OffsetDateTime::from_unix_timestamp(1_790_000_000 + now_secs).unwrap();
            let pinned: BTreeSet<BackupName> = if stored.is_empty() { BTreeSet::new() } else { pins.iter().map(|i| i.get(&stored).clone()).collect() };
            let just_made = (!stored.is_empty()).then(|| pick.get(&stored).clone());
            let r = Rules { keep, zone: &zone, now, pinned: &pinned, just_made: just_made.as_ref() };
            let p = plan(&stored, &r);
            let distinct: BTreeSet<&BackupName> = stored.iter().collect();
            let counted: Vec<&BackupName> = distinct.iter().copied().filter(|n| {
                n.kind() != BackupKind::Safety && !pinned.contains(*n)
                    && n.created_at().is_some_and(|t| t <= now + FUTURE_TOLERANCE)
            }).collect();

            // Every distinct name is either deleted or kept for a reason.
            prop_assert_eq!(p.delete.len() + p.kept.len(), distinct.len());
            prop_assert!(p.kept.iter().all(|k| !k.reasons.is_empty()));
            // Never a safety, pinned, future-stamped or just-made backup.
            for d in &p.delete {
                prop_assert!(d.kind() != BackupKind::Safety && !pinned.contains(d));
                prop_assert!(d.created_at().is_some_and(|t| t <= now + FUTURE_TOLERANCE));
                prop_assert!(Some(d) != just_made.as_ref());
            }
            // Never the newest, never one a rule keeps.
            for must in oracle(&counted, keep, &zone) {
                prop_assert!(!p.delete.contains(&must), "deleted {} that a rule keeps ({keep:?}, {zone:?})", must);
            }
            // Only the counted backups no rule keeps.
            prop_assert!(p.delete.iter().all(|d| counted.contains(&d)));
            // Oldest first, newest first.
            prop_assert!(p.delete.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(p.kept.windows(2).all(|w| w[0].name > w[1].name));

            // Idempotent: nothing more goes the second time.
            let first = plan(&stored, &Rules { just_made: None, ..r });
            let left: Vec<&BackupName> = distinct.iter().copied().filter(|n| !first.delete.contains(n)).collect();
            let again = plan(left.iter().copied(), &Rules { just_made: None, ..r });
            prop_assert!(again.delete.is_empty(), "second run deletes {:?}", again.delete);
        }

        #[test]
        fn newest_only_keeps_exactly_min_count_max(stored in proptest::collection::vec(arb_name(2_000_000), 0..60), max in 1u64..=30) {
            let max = MaxBackups::new(max).unwrap();
            let deleted = to_delete(&stored, max);
            let distinct: BTreeSet<&BackupName> = stored.iter().collect();
            let rotated: Vec<&BackupName> = distinct.iter().copied().filter(|n| n.kind().is_rotated()).collect();
            let kept = rotated.len() - deleted.len();
            prop_assert_eq!(kept, rotated.len().min(usize::from(max.get())));
            // Deletes only the oldest: every deleted one is older than every kept one.
            let kept_names: Vec<&&BackupName> = rotated.iter().filter(|n| !deleted.contains(n)).collect();
            for d in &deleted {
                for k in &kept_names {
                    prop_assert!(d < **k);
                }
            }
        }

        #[test]
        fn stable_under_input_order(
            mut stored in proptest::collection::vec(arb_name(SPAN), 0..40),
            keep in arb_policy(),
            zone in arb_zone(),
            seed in any::<u64>(),
        ) {
            let now = datetime!(2027-01-01 0:00 UTC);
            let before = plan(&stored, &rules(keep, &zone, now));
            // A deterministic shuffle driven by the seed.
            let n = stored.len();
            let mut state = seed | 1;
            for i in (1..n).rev() {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                stored.swap(i, (state % (i as u64 + 1)) as usize);
            }
            prop_assert_eq!(before, plan(&stored, &rules(keep, &zone, now)));
        }
    }
}
