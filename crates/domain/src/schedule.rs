//! The backup schedule (spec section 7): stored as JSON under the
//! `system_config` key `backupSchedule`, validated field by field, and turned
//! into run times.
//!
//! Unlike Framerr, the hour is in the server's time zone (an IANA name,
//! default UTC), so "3 AM" is the user's 3 AM. On a day when that hour does
//! not exist (spring forward) the run happens once, at the first instant
//! after the gap; on a day when it exists twice (fall back) it happens once,
//! at the first of the two.
//!
//! The zone database is compiled into the binary (jiff's bundled tzdb), so
//! these functions never read the filesystem and give the same answer on
//! every machine.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::{Duration, OffsetDateTime};

use crate::retention::{KeepPolicy, MaxBackups};
use crate::timefmt;

/// How often scheduled backups run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Frequency {
    Daily,
    Weekly,
}

impl Frequency {
    pub fn interval(self) -> Duration {
        match self {
            Frequency::Daily => Duration::days(1),
            Frequency::Weekly => Duration::days(7),
        }
    }
}

/// The grace after a missed interval before a catch-up backup runs at start.
pub const CATCH_UP_GRACE: Duration = Duration::hours(2);

/// The `backupSchedule` value, exactly as Framerr stores and serves it
/// (`dayOfWeek` only for a weekly schedule).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "Map<String, Value>")]
pub struct Schedule {
    pub enabled: bool,
    pub frequency: Frequency,
    /// 0 = Sunday ... 6 = Saturday; used by weekly schedules only.
    pub day_of_week: u8,
    /// 0-23, the whole hour (minute 0) in the schedule's time zone.
    pub hour: u8,
    pub max_backups: MaxBackups,
    /// Calendar retention beyond Framerr (0 = off): the newest backup of
    /// each of the last N days, ISO weeks and months that have backups.
    /// Framerr ignores these fields; a `PUT` without them keeps them.
    pub keep_daily: u16,
    pub keep_weekly: u16,
    pub keep_monthly: u16,
    pub last_backup: Option<OffsetDateTime>,
}

/// The JSON form, field for field.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    enabled: bool,
    frequency: Frequency,
    #[serde(skip_serializing_if = "Option::is_none")]
    day_of_week: Option<u8>,
    hour: u8,
    max_backups: u8,
    #[serde(skip_serializing_if = "is_zero")]
    keep_daily: u16,
    #[serde(skip_serializing_if = "is_zero")]
    keep_weekly: u16,
    #[serde(skip_serializing_if = "is_zero")]
    keep_monthly: u16,
    #[serde(serialize_with = "timefmt::iso_opt::serialize", skip_serializing_if = "Option::is_none")]
    last_backup: Option<OffsetDateTime>,
}

impl Serialize for Schedule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Wire {
            enabled: self.enabled,
            frequency: self.frequency,
            day_of_week: (self.frequency == Frequency::Weekly).then_some(self.day_of_week),
            hour: self.hour,
            max_backups: self.max_backups.get(),
            keep_daily: self.keep_daily,
            keep_weekly: self.keep_weekly,
            keep_monthly: self.keep_monthly,
            last_backup: self.last_backup,
        }
        .serialize(s)
    }
}

fn is_zero(n: &u16) -> bool {
    *n == 0
}

impl Default for Schedule {
    /// Off until someone turns it on: Framerr shows a default schedule as
    /// enabled while nothing runs, which is worse than an honest "off".
    fn default() -> Self {
        Schedule {
            enabled: false,
            frequency: Frequency::Daily,
            day_of_week: 0,
            hour: 3,
            max_backups: MaxBackups::DEFAULT,
            keep_daily: 0,
            keep_weekly: 0,
            keep_monthly: 0,
            last_backup: None,
        }
    }
}

/// One field's complaint, in words a UI can show next to the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: &'static str,
    pub message: &'static str,
}

/// Every field that was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ScheduleErrors(pub Vec<FieldError>);

impl fmt::Display for ScheduleErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let messages: Vec<&str> = self.0.iter().map(|e| e.message).collect();
        f.write_str(&messages.join("; "))
    }
}

const ENABLED_RULE: &str = "enabled is required and must be true or false";
const FREQUENCY_RULE: &str = "frequency must be \"daily\" or \"weekly\"";
const HOUR_RULE: &str = "hour must be a whole number from 0 to 23";
const DAY_RULE: &str = "dayOfWeek must be a whole number from 0 (Sunday) to 6 (Saturday)";
const MAX_RULE: &str = "maxBackups must be a whole number from 1 to 30";
const KEEP_DAILY_RULE: &str = "keepDaily must be a whole number from 0 to 1000";
const KEEP_WEEKLY_RULE: &str = "keepWeekly must be a whole number from 0 to 1000";
const KEEP_MONTHLY_RULE: &str = "keepMonthly must be a whole number from 0 to 1000";
const LAST_RULE: &str = "lastBackup must be an ISO-8601 timestamp or null";

impl Schedule {
    /// Applies a change (the body of `PUT /schedule`) to this schedule.
    /// `enabled` is required; the other fields keep their value when absent.
    /// `lastBackup` is not the client's to set and is ignored.
    pub fn apply(&self, update: &Value) -> Result<Schedule, ScheduleErrors> {
        let Some(fields) = update.as_object() else {
            return Err(ScheduleErrors(vec![FieldError { field: "enabled", message: ENABLED_RULE }]));
        };
        let mut errors = Vec::new();
        let mut next = self.clone();
        match fields.get("enabled").and_then(Value::as_bool) {
            Some(on) => next.enabled = on,
            None => errors.push(FieldError { field: "enabled", message: ENABLED_RULE }),
        }
        next.read_fields(fields, &mut errors);
        if errors.is_empty() { Ok(next) } else { Err(ScheduleErrors(errors)) }
    }

    /// Reads a stored `backupSchedule` value. Absent fields take the defaults.
    pub fn from_stored(value: &Value) -> Result<Schedule, ScheduleErrors> {
        let Some(fields) = value.as_object() else {
            return Err(ScheduleErrors(vec![FieldError { field: "enabled", message: ENABLED_RULE }]));
        };
        Schedule::try_from(fields.clone())
    }

    fn read_fields(&mut self, fields: &Map<String, Value>, errors: &mut Vec<FieldError>) {
        if let Some(v) = fields.get("frequency") {
            match serde_json::from_value::<Frequency>(v.clone()) {
                Ok(f) => self.frequency = f,
                Err(_) => errors.push(FieldError { field: "frequency", message: FREQUENCY_RULE }),
            }
        }
        let mut whole = |name: &'static str, rule: &'static str, range: std::ops::RangeInclusive<u64>| {
            let v = fields.get(name)?;
            let n = v.as_u64().filter(|n| range.contains(n));
            if n.is_none() {
                errors.push(FieldError { field: name, message: rule });
            }
            n
        };
        if let Some(h) = whole("hour", HOUR_RULE, 0..=23) {
            self.hour = h as u8;
        }
        if let Some(d) = whole("dayOfWeek", DAY_RULE, 0..=6) {
            self.day_of_week = d as u8;
        }
        if let Some(m) = whole("maxBackups", MAX_RULE, 1..=30).and_then(MaxBackups::new) {
            self.max_backups = m;
        }
        let most = u64::from(KeepPolicy::MAX_COUNT);
        if let Some(n) = whole("keepDaily", KEEP_DAILY_RULE, 0..=most) {
            self.keep_daily = n as u16;
        }
        if let Some(n) = whole("keepWeekly", KEEP_WEEKLY_RULE, 0..=most) {
            self.keep_weekly = n as u16;
        }
        if let Some(n) = whole("keepMonthly", KEEP_MONTHLY_RULE, 0..=most) {
            self.keep_monthly = n as u16;
        }
    }

    /// What retention keeps under this schedule.
    pub fn keep_policy(&self) -> KeepPolicy {
        KeepPolicy {
            last: u16::from(self.max_backups.get()),
            daily: self.keep_daily,
            weekly: self.keep_weekly,
            monthly: self.keep_monthly,
        }
    }

    /// The first scheduled run strictly after `now`, or `None` when disabled.
    pub fn next_run(&self, now: OffsetDateTime, zone: &Zone) -> Option<OffsetDateTime> {
        if !self.enabled {
            return None;
        }
        let now_ts = to_jiff(now)?;
        let mut date = now_ts.to_zoned_datetime(zone.tz.clone()).date().yesterday().ok()?;
        // Nine local days always include the next matching weekday after now.
        for _ in 0..9 {
            let weekday_ok =
                self.frequency == Frequency::Daily || date.weekday().to_sunday_zero_offset() == self.day_of_week as i8;
            if weekday_ok {
                let local = date.at(self.hour as i8, 0, 0, 0);
                // `compatible`: a time in a gap moves forward by the gap, a
                // time in a fold takes the earlier of its two instants.
                let at = zone.tz.to_ambiguous_timestamp(local).compatible().ok()?;
                if at > now_ts {
                    return from_jiff(at);
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }

    /// Whether the schedule has missed a run since its last success: the
    /// alarm for health, metrics and notices. A schedule that never ran is
    /// not overdue (it was perhaps turned on a minute ago; its first run, or
    /// the catch-up at start, says how it goes).
    pub fn overdue(&self, now: OffsetDateTime) -> bool {
        self.enabled && self.last_backup.is_some_and(|last| now > last + self.frequency.interval() + CATCH_UP_GRACE)
    }

    /// Whether a backup is due at start (spec section 7 catch-up): enabled,
    /// and never run or not within one interval plus two hours of grace.
    pub fn missed(&self, now: OffsetDateTime) -> bool {
        self.enabled
            && match self.last_backup {
                None => true,
                Some(last) => now > last + self.frequency.interval() + CATCH_UP_GRACE,
            }
    }
}

impl TryFrom<Map<String, Value>> for Schedule {
    type Error = ScheduleErrors;

    fn try_from(fields: Map<String, Value>) -> Result<Self, Self::Error> {
        let mut errors = Vec::new();
        let mut schedule = Schedule::default();
        match fields.get("enabled") {
            None => {}
            Some(v) => match v.as_bool() {
                Some(on) => schedule.enabled = on,
                None => errors.push(FieldError { field: "enabled", message: ENABLED_RULE }),
            },
        }
        schedule.read_fields(&fields, &mut errors);
        match fields.get("lastBackup") {
            None | Some(Value::Null) => {}
            Some(v) => match v.as_str().and_then(timefmt::parse_iso) {
                Some(at) => schedule.last_backup = Some(at),
                None => errors.push(FieldError { field: "lastBackup", message: LAST_RULE }),
            },
        }
        if errors.is_empty() { Ok(schedule) } else { Err(ScheduleErrors(errors)) }
    }
}

/// An IANA time zone from the bundled database.
#[derive(Clone, PartialEq)]
pub struct Zone {
    tz: jiff::tz::TimeZone,
    /// The rule as given, for a POSIX TZ string (it has no IANA name).
    posix: Option<String>,
}

/// A calendar day in some zone. Weeks are ISO weeks: they start on Monday
/// and belong to the year that holds their Thursday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalDay {
    pub year: i16,
    pub month: u8,
    pub day: u8,
    pub week_year: i16,
    pub week: u8,
}

/// The name is not in the zone database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone {0:?}: expected an IANA name such as Europe/Berlin or UTC")]
pub struct UnknownZone(pub String);

impl Zone {
    pub fn utc() -> Self {
        Zone { tz: jiff::tz::TimeZone::UTC, posix: None }
    }

    pub fn named(name: &str) -> Result<Self, UnknownZone> {
        jiff::tz::db().get(name).map(|tz| Zone { tz, posix: None }).map_err(|_| UnknownZone(name.to_owned()))
    }

    /// A zone from the `TZ` environment variable as C libraries read it: an
    /// IANA name (with or without a leading `:`), a path into a zoneinfo
    /// folder (`/usr/share/zoneinfo/Europe/Berlin`), or a POSIX rule such as
    /// `CET-1CEST,M3.5.0,M10.5.0/3`. `/etc/localtime` itself is a file, not
    /// a name: the caller resolves its link first.
    pub fn from_tz(value: &str) -> Result<Self, UnknownZone> {
        let value = value.trim().trim_start_matches(':');
        if let Some((_, name)) = value.rsplit_once("zoneinfo/") {
            return Zone::named(name);
        }
        if let Ok(zone) = Zone::named(value) {
            return Ok(zone);
        }
        jiff::tz::TimeZone::posix(value)
            .map(|tz| Zone { tz, posix: Some(value.to_owned()) })
            .map_err(|_| UnknownZone(value.to_owned()))
    }

    pub fn name(&self) -> &str {
        self.posix.as_deref().or(self.tz.iana_name()).unwrap_or("UTC")
    }

    /// The wall-clock hour and minute of `at` in this zone, and the weekday
    /// (0 = Sunday).
    pub fn local_hour_minute_weekday(&self, at: OffsetDateTime) -> Option<(u8, u8, u8)> {
        let zoned = to_jiff(at)?.to_zoned_datetime(self.tz.clone());
        Some((zoned.hour() as u8, zoned.minute() as u8, zoned.weekday().to_sunday_zero_offset() as u8))
    }

    /// The local calendar day of `at` in this zone, with its ISO week.
    pub fn local_day(&self, at: OffsetDateTime) -> Option<LocalDay> {
        let date = to_jiff(at)?.to_zoned_datetime(self.tz.clone()).date();
        let week = date.iso_week_date();
        Some(LocalDay {
            year: date.year(),
            month: date.month() as u8,
            day: date.day() as u8,
            week_year: week.year(),
            week: week.week() as u8,
        })
    }

    /// Whether the local time `hour:00` exists on the local date of `at`.
    pub fn hour_exists_on_day_of(&self, at: OffsetDateTime, hour: u8) -> bool {
        let Some(ts) = to_jiff(at) else { return false };
        let local = ts.to_zoned_datetime(self.tz.clone()).date().at(hour as i8, 0, 0, 0);
        !matches!(self.tz.to_ambiguous_timestamp(local).offset(), jiff::tz::AmbiguousOffset::Gap { .. })
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Zone({})", self.name())
    }
}

impl Default for Zone {
    fn default() -> Self {
        Zone::utc()
    }
}

fn to_jiff(at: OffsetDateTime) -> Option<jiff::Timestamp> {
    jiff::Timestamp::from_nanosecond(at.unix_timestamp_nanos()).ok()
}

fn from_jiff(at: jiff::Timestamp) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(at.as_nanosecond()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use time::macros::datetime;

    fn daily(hour: u8) -> Schedule {
        Schedule { enabled: true, hour, ..Schedule::default() }
    }

    fn weekly(day: u8, hour: u8) -> Schedule {
        Schedule { enabled: true, frequency: Frequency::Weekly, day_of_week: day, hour, ..Schedule::default() }
    }

    fn berlin() -> Zone {
        Zone::named("Europe/Berlin").unwrap()
    }

    #[test]
    fn reads_and_writes_framerrs_json() {
        let stored = json!({"enabled": true, "frequency": "weekly", "dayOfWeek": 0, "hour": 3,
            "maxBackups": 10, "lastBackup": "2026-11-22T03:00:04.512Z"});
        let s = Schedule::from_stored(&stored).unwrap();
        assert_eq!(s, Schedule { last_backup: Some(datetime!(2026-11-22 03:00:04.512 UTC)), ..weekly(0, 3) });
        assert_eq!(serde_json::to_value(&s).unwrap(), stored);
        let without_last = Schedule { last_backup: None, ..s };
        assert!(serde_json::to_value(&without_last).unwrap().get("lastBackup").is_none());
        assert_eq!(Schedule::from_stored(&json!({"enabled": true, "lastBackup": null})).unwrap(), daily(3));
        let back: Schedule = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn validates_each_field_with_a_message() {
        let base = Schedule::default();
        let err =
            base.apply(&json!({"frequency": "hourly", "hour": 24, "dayOfWeek": 7, "maxBackups": 31})).unwrap_err();
        let fields: Vec<&str> = err.0.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["enabled", "frequency", "hour", "dayOfWeek", "maxBackups"]);
        assert!(err.to_string().contains("hour must be a whole number from 0 to 23"));
        for bad in [json!("3"), json!(-1), json!(2.5), json!(null)] {
            let err = base.apply(&json!({"enabled": true, "hour": bad})).unwrap_err();
            assert_eq!(err.0, [FieldError { field: "hour", message: HOUR_RULE }]);
        }
        // maxBackups up to 30 (Framerr's API stops at 10 although its docs say 30).
        let ok = base.apply(&json!({"enabled": true, "maxBackups": 30, "hour": 0, "dayOfWeek": 6})).unwrap();
        assert_eq!((ok.max_backups.get(), ok.hour, ok.day_of_week, ok.enabled), (30, 0, 6, true));
        assert!(base.apply(&json!({"enabled": true, "maxBackups": 0})).is_err());
        assert!(base.apply(&json!("on")).is_err());
        // lastBackup is not the client's to set.
        let ignored = base.apply(&json!({"enabled": false, "lastBackup": "2020-01-01T00:00:00Z"})).unwrap();
        assert_eq!(ignored.last_backup, None);
    }

    #[test]
    fn calendar_fields_are_ours_preserved_by_framerrs_put_and_absent_when_off() {
        let base = Schedule::default();
        let ours = base.apply(&json!({"enabled": true, "maxBackups": 7, "keepDaily": 7, "keepMonthly": 12})).unwrap();
        assert_eq!(ours.keep_policy(), KeepPolicy { last: 7, daily: 7, weekly: 0, monthly: 12 });
        let json = serde_json::to_value(&ours).unwrap();
        assert_eq!((json["keepDaily"].as_u64(), json["keepMonthly"].as_u64()), (Some(7), Some(12)));
        assert!(json.get("keepWeekly").is_none());
        // What Framerr's settings page sends: the calendar rules stay.
        let framerr = json!({"enabled": true, "frequency": "weekly", "dayOfWeek": 1, "hour": 4, "maxBackups": 5});
        let after = ours.apply(&framerr).unwrap();
        assert_eq!((after.keep_daily, after.keep_monthly, after.max_backups.get()), (7, 12, 5));
        // Read back from storage.
        assert_eq!(Schedule::from_stored(&serde_json::to_value(&after).unwrap()).unwrap(), after);
        // Without them the JSON is Framerr's, field for field.
        let plain = serde_json::to_value(Schedule { enabled: true, ..base.clone() }).unwrap();
        assert_eq!(plain, json!({"enabled": true, "frequency": "daily", "hour": 3, "maxBackups": 10}));
        for bad in [json!(-1), json!(1001), json!("7"), json!(1.5)] {
            let err = base.apply(&json!({"enabled": true, "keepWeekly": bad})).unwrap_err();
            assert_eq!(err.0, [FieldError { field: "keepWeekly", message: KEEP_WEEKLY_RULE }]);
        }
    }

    #[test]
    fn tz_values_as_c_libraries_read_them() {
        let now = datetime!(2026-07-01 12:00 UTC);
        let berlin_run = daily(3).next_run(now, &berlin());
        for tz in [":Europe/Berlin", "/usr/share/zoneinfo/Europe/Berlin", "CET-1CEST,M3.5.0,M10.5.0/3"] {
            let zone = Zone::from_tz(tz).unwrap();
            assert_eq!(daily(3).next_run(now, &zone), berlin_run, "{tz}");
        }
        assert_eq!(Zone::from_tz("/usr/share/zoneinfo/Europe/Berlin").unwrap().name(), "Europe/Berlin");
        assert_eq!(Zone::from_tz("CET-1CEST,M3.5.0,M10.5.0/3").unwrap().name(), "CET-1CEST,M3.5.0,M10.5.0/3");
        assert!(Zone::from_tz("Mars/Olympus_Mons").is_err());
    }

    #[test]
    fn disabled_never_runs() {
        assert_eq!(Schedule::default().next_run(datetime!(2026-11-26 00:00 UTC), &Zone::utc()), None);
        assert!(!Schedule::default().missed(datetime!(2026-11-26 00:00 UTC)));
    }

    #[test]
    fn next_run_table() {
        let utc = Zone::utc();
        let cases = [
            // (schedule, zone, now, expected next run)
            (daily(3), &utc, datetime!(2026-11-26 02:59:59 UTC), datetime!(2026-11-26 03:00 UTC)),
            (daily(3), &utc, datetime!(2026-11-26 03:00 UTC), datetime!(2026-11-27 03:00 UTC)),
            (daily(0), &utc, datetime!(2026-12-31 23:30 UTC), datetime!(2027-01-01 00:00 UTC)),
            // 2026-11-26 is a Thursday; Sunday is 2026-11-29.
            (weekly(0, 3), &utc, datetime!(2026-11-26 12:00 UTC), datetime!(2026-11-29 03:00 UTC)),
            (weekly(4, 3), &utc, datetime!(2026-11-26 02:00 UTC), datetime!(2026-11-26 03:00 UTC)),
            (weekly(4, 3), &utc, datetime!(2026-11-26 03:00 UTC), datetime!(2026-12-03 03:00 UTC)),
            // 3 AM in Berlin is 02:00 UTC in winter, 01:00 UTC in summer.
            (daily(3), &berlin(), datetime!(2026-11-26 12:00 UTC), datetime!(2026-11-27 02:00 UTC)),
            (daily(3), &berlin(), datetime!(2026-07-01 12:00 UTC), datetime!(2026-07-02 01:00 UTC)),
            // Spring forward, 2026-03-29: 02:00-03:00 local does not exist.
            // A 02:00 run happens once, at 03:00 CEST (01:00 UTC).
            (daily(2), &berlin(), datetime!(2026-03-28 12:00 UTC), datetime!(2026-03-29 01:00 UTC)),
            (daily(2), &berlin(), datetime!(2026-03-29 01:00 UTC), datetime!(2026-03-30 00:00 UTC)),
            // Fall back, 2026-10-25: 02:00-03:00 local happens twice.
            // A 02:00 run happens once, at the first 02:00 (00:00 UTC).
            (daily(2), &berlin(), datetime!(2026-10-24 12:00 UTC), datetime!(2026-10-25 00:00 UTC)),
            (daily(2), &berlin(), datetime!(2026-10-25 00:00 UTC), datetime!(2026-10-26 01:00 UTC)),
            (daily(2), &berlin(), datetime!(2026-10-25 00:30 UTC), datetime!(2026-10-26 01:00 UTC)),
        ];
        for (schedule, zone, now, want) in cases {
            assert_eq!(schedule.next_run(now, zone), Some(want), "{schedule:?} {zone:?} {now}");
        }
    }

    #[test]
    fn next_run_does_not_depend_on_the_offset_now_is_given_in() {
        let s = weekly(1, 23);
        let now = datetime!(2026-11-26 12:00 UTC);
        assert_eq!(s.next_run(now, &berlin()), s.next_run(now.to_offset(time::macros::offset!(-7)), &berlin()));
    }

    #[test]
    fn catch_up_table() {
        let at = datetime!(2026-11-22 03:00 UTC);
        let last = |s: Schedule| Schedule { last_backup: Some(at), ..s };
        assert!(daily(3).missed(at), "never ran");
        assert!(!daily(3).overdue(at), "never ran is not an alarm");
        assert!(last(daily(3)).overdue(at + Duration::hours(26) + Duration::seconds(1)));
        assert!(!last(daily(3)).missed(at + Duration::hours(26)), "exactly one interval + grace");
        assert!(last(daily(3)).missed(at + Duration::hours(26) + Duration::seconds(1)));
        assert!(!last(weekly(0, 3)).missed(at + Duration::days(7) + Duration::hours(2)));
        assert!(last(weekly(0, 3)).missed(at + Duration::days(7) + Duration::hours(3)));
    }

    #[test]
    fn zones() {
        assert_eq!(Zone::named("Europe/Berlin").unwrap().name(), "Europe/Berlin");
        assert!(Zone::named("Mars/Olympus").is_err());
        assert!(!berlin().hour_exists_on_day_of(datetime!(2026-03-29 12:00 UTC), 2));
        assert!(berlin().hour_exists_on_day_of(datetime!(2026-03-30 12:00 UTC), 2));
    }

    const ZONES: [&str; 6] =
        ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "America/Santiago"];

    fn arb_case() -> impl Strategy<Value = (Schedule, Zone, OffsetDateTime)> {
        (any::<bool>(), 0u8..7, 0u8..24, 0usize..ZONES.len(), 1_700_000_000i64..1_900_000_000).prop_map(
            |(is_weekly, day, hour, zone, secs)| {
                let s = if is_weekly { weekly(day, hour) } else { daily(hour) };
                (s, Zone::named(ZONES[zone]).unwrap(), OffsetDateTime::from_unix_timestamp(secs).unwrap())
            },
        )
    }

    proptest! {
        #[test]
        fn next_run_invariants((s, zone, now) in arb_case()) {
            let next = s.next_run(now, &zone).expect("an enabled schedule always has a next run");
            prop_assert!(next > now);
            // Within one interval, plus the longest DST shift (one hour).
            prop_assert!(next - now <= s.frequency.interval() + Duration::hours(1));
            let (hour, minute, weekday) = zone.local_hour_minute_weekday(next).unwrap();
            let hour_exists = zone.hour_exists_on_day_of(next, s.hour);
            if s.frequency == Frequency::Weekly && hour_exists {
                prop_assert_eq!(weekday, s.day_of_week);
            }
            if hour_exists {
                prop_assert_eq!((hour, minute), (s.hour, 0));
            } else {
                // Spring forward: the first valid instant after the gap, where
                // the wall clock jumped over the configured hour.
                let (before, _, _) = zone.local_hour_minute_weekday(next - Duration::seconds(1)).unwrap();
                prop_assert!(before != s.hour && hour != before);
                prop_assert!(minute == 0 || minute == 30);
            }
            // The run right after is strictly later and not the same local day twice.
            let after = s.next_run(next, &zone).unwrap();
            prop_assert!(after > next);
            prop_assert!(after - next >= s.frequency.interval() - Duration::hours(1));
        }

        #[test]
        fn catch_up_agrees_with_section_7((s, _zone, now) in arb_case(), since in 0i64..(20 * 86_400)) {
            let last = now - Duration::seconds(since);
            let s = Schedule { last_backup: Some(last), ..s };
            let limit = s.frequency.interval() + CATCH_UP_GRACE;
            prop_assert_eq!(s.missed(now), Duration::seconds(since) > limit);
            let never_ran = Schedule { last_backup: None, ..s.clone() };
            prop_assert!(never_ran.missed(now));
            let off = Schedule { enabled: false, ..s };
            prop_assert!(!off.missed(now));
        }
    }
}
