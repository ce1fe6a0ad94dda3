//! The scheduler loop: catch-up at start, then sleep until the next run,
//! waking early when the schedule changes. Decisions (what is due, what a
//! run records) are `backup_domain::scheduler`'s; this is only the timer.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use backup_domain::CreateError;
use backup_domain::scheduler::ScheduledBackups;

/// Re-evaluates at least this often, so clock jumps and edits of the
/// database behind our back are noticed.
const MAX_SLEEP: Duration = Duration::from_secs(15 * 60);
const BUSY_RETRY: Duration = Duration::from_secs(60);

pub async fn run(backups: ScheduledBackups, changed: Arc<Notify>) {
    let now = backups.creator.clock.now();
    if backups.missed(now).await {
        tracing::info!("a scheduled backup was missed while the server was down; running it now");
        run_once(&backups).await;
    }
    loop {
        let now = backups.creator.clock.now();
        let next = backups.next_run(now).await;
        let wait = match next {
            Some(at) => Duration::try_from(at - now).unwrap_or_default().min(MAX_SLEEP),
            None => MAX_SLEEP,
        };
        if let Some(at) = next {
            tracing::debug!(next = %at, "next scheduled backup");
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = changed.notified() => continue,
        }
        let now = backups.creator.clock.now();
        if next.is_some_and(|at| now >= at) {
            run_once(&backups).await;
        }
    }
}

async fn run_once(backups: &ScheduledBackups) {
    loop {
        match backups.run().await {
            Ok(created) => {
                tracing::info!(backup = %created.stored.name, size = created.stored.size, deleted = created.retention.deleted.len(), "scheduled backup done");
                return;
            }
            Err(CreateError::InProgress | CreateError::Busy(_)) => {
                tracing::info!("a backup or restore is already running; the scheduled backup waits a minute");
                tokio::time::sleep(BUSY_RETRY).await;
            }
            Err(e) => {
                tracing::error!(error = %e, "scheduled backup failed");
                return;
            }
        }
    }
}
