//! The scheduler loop: catch-up at start, then sleep until the next run,
//! waking early when the schedule changes. Decisions (what is due, what a
//! run records) are `backup_domain::scheduler`'s; this is only the timer.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use backup_domain::CreateError;
use backup_domain::scheduler::ScheduledBackups;
use backup_domain::verification::{Outcome, Verifier};

/// Re-evaluates at least this often, so clock jumps and edits of the
/// database behind our back are noticed.
const MAX_SLEEP: Duration = Duration::from_secs(15 * 60);
const BUSY_RETRY: Duration = Duration::from_secs(60);
const VERIFY_START_DELAY: Duration = Duration::from_secs(10 * 60);

pub async fn run(backups: ScheduledBackups, verifier: Verifier, changed: Arc<Notify>) {
    let now = backups.creator.clock.now();
    if backups.missed(now).await {
        tracing::info!("a scheduled backup was missed while the server was down; running it now");
        run_once(&backups, &verifier).await;
    }
    loop {
        let now = backups.creator.clock.now();
        // Still missed after the catch-up (or a failing one): say so, once.
        backups.check_overdue(now).await;
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
            run_once(&backups, &verifier).await;
        }
    }
}

/// Verification on its own timer: at least every [`INTERVAL`], backups or
/// not (a disk that rots under old backups is found too).
///
/// [`INTERVAL`]: backup_domain::verification::INTERVAL
pub async fn verify_periodically(verifier: Verifier) {
    // Not at the very start: a catch-up backup (verified when it is done)
    // goes first, and a server in a restart loop does not verify each time.
    tokio::time::sleep(VERIFY_START_DELAY).await;
    loop {
        let now = verifier.clock.now();
        match verifier.due(now).await {
            Some(at) if at <= now => verify(&verifier).await,
            Some(at) => {
                let wait = Duration::try_from(at - now).unwrap_or_default().min(MAX_SLEEP);
                tokio::time::sleep(wait).await;
            }
            None => tokio::time::sleep(MAX_SLEEP).await,
        }
    }
}

async fn verify(verifier: &Verifier) {
    for v in verifier.verify_newest().await {
        match v.outcome {
            Outcome::Passed | Outcome::Empty => {
                tracing::info!(destination = %v.destination, backup = ?v.filename, outcome = ?v.outcome, "verified")
            }
            Outcome::Skipped => {
                tracing::warn!(destination = %v.destination, backup = ?v.filename, why = ?v.error, "not verified")
            }
            Outcome::Failed => {
                tracing::error!(destination = %v.destination, backup = ?v.filename, error = ?v.error, "verification FAILED")
            }
        }
    }
}

async fn run_once(backups: &ScheduledBackups, verifier: &Verifier) {
    loop {
        match backups.run().await {
            Ok(created) => {
                tracing::info!(backup = %created.stored.name, size = created.stored.size, deleted = created.retention.deleted.len(), "scheduled backup done");
                verify(verifier).await;
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
