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
    let overdue = schedule.enabled && schedule.missed(now);
    Ok(Json(json!({
        "scheduleEnabled": schedule.enabled,
        "lastSuccess": last_success.map(to_iso_millis),
        "overdue": overdue,
        "nextRun": schedule.next_run(now, &state.backups.zone).map(to_iso_millis),
        "lastError": memory.last_error.map(|(at, e)| json!({ "at": to_iso_millis(at), "error": e })),
        "inProgress": state.backups.creator.busy.is_busy(),
        "timeZone": state.backups.zone.name(),
    })))
}
