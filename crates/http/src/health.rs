//! `/health`: "did my backups silently stop?"

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use backup_domain::timefmt::to_iso_millis;

use crate::{ApiError, ApiResult, AppState};

pub(crate) async fn health(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let now = state.backups.creator.clock.now();
    let schedule = state.backups.schedule().await.map_err(|e| ApiError::internal("Reading the schedule", e))?;
    let memory = state.backups.health();
    let last_success = match (schedule.last_backup, memory.last_success) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    // Overdue: enabled, and no success within one interval plus the grace.
    let overdue = schedule.overdue(now);
    let future: Vec<String> = state.backups.future_stamped(now).await.iter().map(ToString::to_string).collect();
    let framerr_scheduler = state.backups.framerr_scheduler_enabled().await;
    let framerr_running = state.backups.creator.db.opened_elsewhere().await;
    let mut warnings = Vec::new();
    if !future.is_empty() {
        warnings.push(format!(
            "{} backup(s) are stamped in the future (was a clock wrong?); retention keeps them and does not count them",
            future.len()
        ));
    }
    if framerr_scheduler {
        warnings.push(
            "Framerr's own backup schedule is enabled too: two schedulers would both back up and prune; turn Framerr's off (POST /api/backup/schedule/framerr/disable), effective at Framerr's next start"
                .to_owned(),
        );
    }
    let verification = backup_domain::verification::read(state.backups.creator.store.as_ref()).await;
    // Problems need someone to act; warnings are worth knowing.
    let mut problems = Vec::new();
    if overdue {
        problems.push("the schedule has missed its run: no scheduled backup within its interval".to_owned());
    }
    for v in verification.iter().filter(|v| v.failed()) {
        problems.push(format!(
            "the newest backup in {} ({}) failed verification: {}",
            v.destination,
            v.filename.as_deref().unwrap_or("none"),
            v.error.as_deref().unwrap_or("unknown error")
        ));
    }
    let notifier = &state.backups.notifier;
    let undelivered = notifier.undelivered();
    if let Some(last) = undelivered.last() {
        warnings.push(format!(
            "{} notification(s) could not be delivered; the last, to {}: {}",
            undelivered.len(),
            last.target,
            last.error
        ));
    }
    Ok(Json(json!({
        "ok": problems.is_empty(),
        "problems": problems,
        "verification": verification,
        "notifications": { "targets": notifier.targets(), "undelivered": undelivered },
        "futureStamped": future,
        "framerrSchedulerEnabled": framerr_scheduler,
        // Another process has the database open: a restore is written into
        // it, and Framerr sees it at once.
        "framerrRunning": framerr_running,
        "framerrStatus": match framerr_running {
            Some(true) => Some("Framerr is running on this database"),
            Some(false) => Some("Framerr is not running on this database"),
            None => None,
        },
        "warnings": warnings,
        "scheduleEnabled": schedule.enabled,
        "lastSuccess": last_success.map(to_iso_millis),
        "overdue": overdue,
        "nextRun": schedule.next_run(now, &state.backups.zone).map(to_iso_millis),
        "lastError": memory.last_error.map(|(at, e)| json!({ "at": to_iso_millis(at), "error": e })),
        "inProgress": state.backups.creator.busy.is_busy(),
        "timeZone": state.backups.zone.name(),
    })))
}
