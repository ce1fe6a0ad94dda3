//! The scheduler's decisions, separate from its timer: what to run at
//! start, when the next run is, and what a scheduled run records.

use std::sync::{Arc, Mutex};

use time::OffsetDateTime;

use crate::create::{CreateError, Created, Creator};
use crate::kind::BackupKind;
use crate::notify::{Event, Notice, Notifier, Silent};
use crate::ports::ProgressEvent;
use crate::schedule::{Schedule, Zone};

/// What the scheduler knows of its own history, for the health endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchedulerHealth {
    pub last_success: Option<OffsetDateTime>,
    pub last_error: Option<(OffsetDateTime, String)>,
    /// Backups that failed since this process started.
    pub failures: u64,
    /// Copies that failed since this process started, by destination.
    pub copy_failures: std::collections::BTreeMap<String, u64>,
}

/// Runs scheduled backups through the create use case.
#[derive(Clone)]
pub struct ScheduledBackups {
    pub creator: Creator,
    pub zone: Zone,
    pub notifier: Arc<dyn Notifier>,
    health: Arc<Mutex<SchedulerHealth>>,
    /// The `lastBackup` an overdue notice was sent for: one notice per
    /// missed run, not one per check.
    overdue_sent: Arc<Mutex<Option<Option<OffsetDateTime>>>>,
}

impl std::fmt::Debug for ScheduledBackups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScheduledBackups").field("zone", &self.zone).finish_non_exhaustive()
    }
}

impl ScheduledBackups {
    /// Runs in the creator's time zone.
    pub fn new(creator: Creator) -> Self {
        ScheduledBackups {
            zone: creator.zone.clone(),
            creator,
            notifier: Arc::new(Silent),
            health: Arc::default(),
            overdue_sent: Arc::default(),
        }
    }

    /// Notices go to `notifier`.
    pub fn with_notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = notifier;
        self
    }

    /// Sends one "overdue" notice when the schedule has missed its run,
    /// and again only after a later success is missed too.
    pub async fn check_overdue(&self, now: OffsetDateTime) {
        let Ok(schedule) = self.schedule().await else { return };
        if !schedule.overdue(now) {
            return;
        }
        let mut sent = self.overdue_sent.lock().unwrap_or_else(|p| p.into_inner());
        if *sent == Some(schedule.last_backup) {
            return;
        }
        *sent = Some(schedule.last_backup);
        drop(sent);
        let why = schedule
            .last_backup
            .map(|at| format!("no scheduled backup since {}", crate::timefmt::to_iso_millis(at)))
            .unwrap_or_default();
        self.notifier.notify(Notice::new(Event::ScheduleOverdue, now).error(why));
    }

    /// The saved schedule, or the default (off) when none was saved.
    pub async fn schedule(&self) -> Result<Schedule, crate::DbError> {
        Ok(self.creator.db.schedule().await?.unwrap_or_default())
    }

    /// Whether Framerr's own scheduler is set to run too (it reads its
    /// schedule at its start): two schedulers would both back up and both
    /// apply retention.
    pub async fn framerr_scheduler_enabled(&self) -> bool {
        self.creator.db.framerr_schedule().await.ok().flatten().is_some_and(|s| s.enabled)
    }

    /// Turns Framerr's own schedule off, from Framerr's next start.
    pub async fn disable_framerr_scheduler(&self) -> Result<bool, crate::DbError> {
        self.creator.db.disable_framerr_schedule().await
    }

    /// Backups in the primary store stamped in the future (a clock was
    /// wrong): retention keeps them and does not count them.
    pub async fn future_stamped(&self, now: OffsetDateTime) -> Vec<crate::BackupName> {
        let horizon = now + crate::retention::FUTURE_TOLERANCE;
        self.creator
            .store
            .list()
            .await
            .map(|list| {
                list.into_iter().map(|b| b.name).filter(|n| n.created_at().is_some_and(|t| t > horizon)).collect()
            })
            .unwrap_or_default()
    }

    /// When the next scheduled backup is due, after `now`.
    pub async fn next_run(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        self.schedule().await.ok()?.next_run(now, &self.zone)
    }

    /// Whether a catch-up backup is due at start (spec section 7).
    pub async fn missed(&self, now: OffsetDateTime) -> bool {
        self.schedule().await.is_ok_and(|s| s.missed(now))
    }

    /// Runs one scheduled backup. On success `lastBackup` is recorded (and
    /// retention ran in the use case); on failure nothing is recorded,
    /// nothing is deleted, and `backup:scheduled-failed` is reported.
    pub async fn run(&self) -> Result<Created, CreateError> {
        self.notifier.notify(Notice::new(Event::BackupStarted, self.creator.clock.now()));
        let result = self.creator.create(BackupKind::Scheduled).await;
        let now = self.creator.clock.now();
        match &result {
            Ok(created) => {
                // Re-read: the schedule may have changed while the backup ran.
                let saved = match self.creator.db.schedule().await {
                    Ok(Some(mut schedule)) => {
                        schedule.last_backup = Some(now);
                        self.creator.db.save_schedule(&schedule).await
                    }
                    Ok(None) => Ok(()),
                    Err(e) => Err(e),
                };
                let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
                health.last_success = Some(now);
                if let Err(e) = saved {
                    health.last_error = Some((now, format!("the backup was made, but lastBackup was not saved: {e}")));
                }
                drop(health);
                self.notifier.notify(Notice::new(Event::BackupSucceeded, now).backup(&created.stored.name));
                self.record_copies(created);
            }
            Err(CreateError::InProgress | CreateError::Busy(_)) => {
                // Not a failure: the run waits for the other backup.
            }
            Err(e) => {
                self.notifier.notify(Notice::new(Event::BackupFailed, now).error(e.to_string()));
                self.creator.progress.report(ProgressEvent::ScheduledFailed { error: e.to_string(), timestamp: now });
                self.record_failure(e);
            }
        }
        result
    }

    /// Records failed copies of any backup (scheduled or manual), so the
    /// health endpoint shows a destination that stopped working.
    pub fn record_copies(&self, created: &Created) {
        let now = self.creator.clock.now();
        let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        for replica in &created.replicas {
            if let Some(e) = &replica.error {
                health.last_error = Some((now, format!("copy to {} failed: {e}", replica.destination)));
                *health.copy_failures.entry(replica.destination.clone()).or_default() += 1;
                self.notifier.notify(
                    Notice::new(Event::CopyFailed, now)
                        .backup(&created.stored.name)
                        .destination(replica.destination.clone())
                        .error(e.clone()),
                );
            }
        }
    }

    /// Records a backup that failed (any kind but a busy refusal).
    pub fn record_failure(&self, error: &CreateError) {
        if matches!(error, CreateError::InProgress | CreateError::Busy(_)) {
            return;
        }
        let now = self.creator.clock.now();
        let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        health.failures += 1;
        health.last_error = Some((now, error.to_string()));
    }

    pub fn health(&self) -> SchedulerHealth {
        self.health.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures::executor::block_on;
    use time::macros::datetime;
    use time::{Duration, OffsetDateTime};

    use super::*;
    use crate::busy::BusyFlag;
    use crate::encryption::NoEnvelope;
    use crate::memory::MemoryStore;
    use crate::ports::{BackupStore, Clock};
    use crate::retention::MaxBackups;
    use crate::schedule::Frequency;
    use crate::testkit::{FakeArchiver, FixedClock, MemoryDb, Recorder, shared};
    use futures::io::AsyncWriteExt;

    struct World {
        scheduler: ScheduledBackups,
        clock: Arc<FixedClock>,
        db: Arc<MemoryDb>,
        store: MemoryStore,
        recorder: Arc<Recorder>,
    }

    fn world(schedule: Option<Schedule>, zone: &str, now: OffsetDateTime, fail: bool) -> World {
        let (clock, db, recorder) =
            (shared(FixedClock::at(now)), shared(MemoryDb::default()), shared(Recorder::default()));
        *db.schedule.lock().unwrap() = schedule;
        let store = MemoryStore::default();
        let creator = Creator {
            db: db.clone(),
            store: Arc::new(store.clone()),
            archiver: Arc::new(FakeArchiver { fail }),
            clock: clock.clone(),
            progress: recorder.clone(),
            busy: BusyFlag::default(),
            envelope: Arc::new(NoEnvelope),
            replicas: Vec::new(),
            lock: Arc::new(crate::testkit::ProcessLock::default()),
            lock_wait: std::time::Duration::ZERO,
            zone: Zone::named(zone).unwrap(),
            keep_overrides: Vec::new(),
            pins_lock: Arc::new(crate::testkit::ProcessLock::default()),
            contents: crate::ports::Contents::Lean,
        };
        World { scheduler: ScheduledBackups::new(creator), clock, db, store, recorder }
    }

    fn daily(hour: u8, max: u64) -> Schedule {
        Schedule { enabled: true, hour, max_backups: MaxBackups::new(max).unwrap(), ..Schedule::default() }
    }

    /// Drives the scheduler as its timer would: jump to each next run, run it.
    fn simulate(w: &World, until: OffsetDateTime) -> Vec<OffsetDateTime> {
        let mut runs = Vec::new();
        block_on(async {
            loop {
                let Some(next) = w.scheduler.next_run(w.clock.now()).await else { break };
                if next > until {
                    break;
                }
                w.clock.set(next);
                w.scheduler.run().await.unwrap();
                runs.push(next);
            }
        });
        runs
    }

    #[test]
    fn a_daily_schedule_runs_once_a_day_across_spring_forward_and_keeps_the_newest() {
        // Berlin, 02:00 daily, through the 2026-03-29 spring-forward day.
        let start = datetime!(2026-03-26 12:00 UTC);
        let w = world(Some(Schedule { last_backup: Some(start), ..daily(2, 3) }), "Europe/Berlin", start, false);
        let runs = simulate(&w, datetime!(2026-04-01 12:00 UTC));
        assert_eq!(
            runs,
            [
                datetime!(2026-03-27 01:00 UTC),
                datetime!(2026-03-28 01:00 UTC),
                // 02:00 does not exist that day: once, at 03:00 CEST.
                datetime!(2026-03-29 01:00 UTC),
                datetime!(2026-03-30 00:00 UTC),
                datetime!(2026-03-31 00:00 UTC),
                datetime!(2026-04-01 00:00 UTC),
            ]
        );
        // Retention kept the newest three; lastBackup is the last run.
        let mut kept: Vec<String> = block_on(w.store.list()).unwrap().iter().map(|b| b.name.to_string()).collect();
        kept.sort();
        assert_eq!(kept.len(), 3);
        assert!(kept[2].starts_with("framerr-scheduled-2026-04-01T00-00-00"), "{kept:?}");
        assert_eq!(w.db.schedule.lock().unwrap().as_ref().unwrap().last_backup, Some(datetime!(2026-04-01 00:00 UTC)));
    }

    #[test]
    fn a_fall_back_day_runs_once_and_weekly_runs_on_its_day() {
        let start = datetime!(2026-10-23 12:00 UTC);
        let w = world(Some(Schedule { last_backup: Some(start), ..daily(2, 30) }), "Europe/Berlin", start, false);
        let runs = simulate(&w, datetime!(2026-10-27 12:00 UTC));
        // 2026-10-25: 02:00 happens twice; one run, at the first.
        assert_eq!(runs.iter().filter(|r| r.date() == time::macros::date!(2026 - 10 - 25)).count(), 1);
        assert_eq!(runs.len(), 4);

        let weekly =
            Schedule { frequency: Frequency::Weekly, day_of_week: 0, last_backup: Some(start), ..daily(3, 30) };
        let w = world(Some(weekly), "UTC", start, false);
        let runs = simulate(&w, start + Duration::days(21));
        assert_eq!(runs.len(), 3);
        assert!(runs.iter().all(|r| r.weekday() == time::Weekday::Sunday && r.hour() == 3));
    }

    #[test]
    fn catch_up_at_start_runs_once_and_records_last_backup() {
        let now = datetime!(2026-11-26 12:00 UTC);
        let w = world(Some(daily(3, 10)), "UTC", now, false);
        block_on(async {
            assert!(w.scheduler.missed(now).await, "never ran");
            w.scheduler.run().await.unwrap();
            assert!(!w.scheduler.missed(now).await);
            assert_eq!(w.db.schedule.lock().unwrap().as_ref().unwrap().last_backup, Some(now));
            assert_eq!(w.scheduler.health().last_success, Some(now));
            // A day and two hours later it is due again, not before.
            assert!(!w.scheduler.missed(now + Duration::hours(26)).await);
            assert!(w.scheduler.missed(now + Duration::hours(26) + Duration::seconds(1)).await);
            // Disabled: never missed.
            let mut off = daily(3, 10);
            off.enabled = false;
            *w.db.schedule.lock().unwrap() = Some(off);
            assert!(!w.scheduler.missed(now + Duration::days(30)).await);
            assert_eq!(w.scheduler.next_run(now).await, None);
        });
    }

    #[test]
    fn a_failed_run_records_nothing_deletes_nothing_and_says_so() {
        let now = datetime!(2026-11-26 12:00 UTC);
        let last = datetime!(2026-11-20 03:00 UTC);
        let w = world(Some(Schedule { last_backup: Some(last), ..daily(3, 1) }), "UTC", now, true);
        block_on(async {
            for n in ["framerr-scheduled-2026-11-01T03-00-00.zip", "framerr-scheduled-2026-11-02T03-00-00.zip"] {
                let mut up = w.store.create(&crate::BackupName::parse(n).unwrap()).await.unwrap();
                up.write_all(b"old").await.unwrap();
                up.commit().await.unwrap();
            }
            assert!(w.scheduler.run().await.is_err());
        });
        assert_eq!(block_on(w.store.list()).unwrap().len(), 2, "retention ran after a failure");
        assert_eq!(w.db.schedule.lock().unwrap().as_ref().unwrap().last_backup, Some(last));
        let failed = w
            .recorder
            .events()
            .into_iter()
            .any(|e| matches!(e, ProgressEvent::ScheduledFailed { timestamp, .. } if timestamp == now));
        assert!(failed, "no backup:scheduled-failed event");
        let health = w.scheduler.health();
        assert!(
            health.last_success.is_none() && health.last_error.is_some_and(|(at, e)| at == now && e.contains("x.png"))
        );
        assert_eq!(health.failures, 1);
    }

    /// Keeps every notice.
    #[derive(Default)]
    struct Told(std::sync::Mutex<Vec<Notice>>);

    impl Notifier for Told {
        fn notify(&self, notice: Notice) {
            self.0.lock().unwrap().push(notice);
        }
    }

    #[test]
    fn runs_are_told_start_to_end_and_an_overdue_schedule_once_per_missed_run() {
        let now = datetime!(2026-11-26 12:00 UTC);
        let last = datetime!(2026-11-20 03:00 UTC);
        let told = Arc::new(Told::default());
        let events = |told: &Told| told.0.lock().unwrap().iter().map(|n| n.event).collect::<Vec<_>>();
        let mut w = world(Some(Schedule { last_backup: Some(last), ..daily(3, 5) }), "UTC", now, true);
        w.scheduler = w.scheduler.clone().with_notifier(told.clone());
        block_on(async {
            assert!(w.scheduler.run().await.is_err());
            w.scheduler.check_overdue(now).await;
            w.scheduler.check_overdue(now + Duration::minutes(15)).await;
        });
        assert_eq!(events(&told), [Event::BackupStarted, Event::BackupFailed, Event::ScheduleOverdue]);
        assert!(told.0.lock().unwrap()[1].error.as_deref().is_some_and(|e| e.contains("x.png")));

        let told = Arc::new(Told::default());
        let mut w = world(Some(Schedule { last_backup: Some(last), ..daily(3, 5) }), "UTC", now, false);
        w.scheduler = w.scheduler.clone().with_notifier(told.clone());
        block_on(async {
            let created = w.scheduler.run().await.unwrap();
            w.scheduler.check_overdue(now).await;
            assert_eq!(told.0.lock().unwrap()[1].backup.as_deref(), Some(created.stored.name.to_string().as_str()));
        });
        assert_eq!(events(&told), [Event::BackupStarted, Event::BackupSucceeded], "not overdue after a success");
        // Three days later nothing ran: overdue, told once.
        block_on(async {
            w.scheduler.check_overdue(now + Duration::days(3)).await;
            w.scheduler.check_overdue(now + Duration::days(4)).await;
        });
        assert_eq!(events(&told).iter().filter(|e| **e == Event::ScheduleOverdue).count(), 1);
    }
}
