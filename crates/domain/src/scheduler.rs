//! The scheduler's decisions, separate from its timer: what to run at
//! start, when the next run is, and what a scheduled run records.

use std::sync::{Arc, Mutex};

use time::OffsetDateTime;

use crate::create::{CreateError, Created, Creator};
use crate::kind::BackupKind;
use crate::ports::ProgressEvent;
use crate::schedule::{Schedule, Zone};

/// What the scheduler knows of its own history, for the health endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchedulerHealth {
    pub last_success: Option<OffsetDateTime>,
    pub last_error: Option<(OffsetDateTime, String)>,
}

/// Runs scheduled backups through the create use case.
#[derive(Clone)]
pub struct ScheduledBackups {
    pub creator: Creator,
    pub zone: Zone,
    health: Arc<Mutex<SchedulerHealth>>,
}

impl std::fmt::Debug for ScheduledBackups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScheduledBackups").field("zone", &self.zone).finish_non_exhaustive()
    }
}

impl ScheduledBackups {
    pub fn new(creator: Creator, zone: Zone) -> Self {
        ScheduledBackups { creator, zone, health: Arc::default() }
    }

    /// The saved schedule, or the default (off) when none was saved.
    pub async fn schedule(&self) -> Result<Schedule, crate::DbError> {
        Ok(self.creator.db.schedule().await?.unwrap_or_default())
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
        let result = self.creator.create(BackupKind::Scheduled).await;
        let now = self.creator.clock.now();
        match &result {
            Ok(_) => {
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
            }
            Err(e) => {
                self.creator.progress.report(ProgressEvent::ScheduledFailed { error: e.to_string(), timestamp: now });
                self.health.lock().unwrap_or_else(|p| p.into_inner()).last_error = Some((now, e.to_string()));
            }
        }
        result
    }

    pub fn health(&self) -> SchedulerHealth {
        self.health.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
