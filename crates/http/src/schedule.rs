//! GET and PUT `/schedule`.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use backup_domain::timefmt::to_iso_millis;

use crate::{ApiError, ApiResult, AppState};

pub(crate) async fn get_schedule(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let schedule = state.backups.schedule().await.map_err(|e| ApiError::internal("Reading the schedule", e))?;
    let next = schedule.next_run(time::OffsetDateTime::now_utc(), &state.backups.zone);
    Ok(Json(json!({
        "schedule": schedule,
        "status": { "nextBackup": next.map(to_iso_millis), "isRunning": state.backups.creator.busy.is_busy() },
    })))
}

pub(crate) async fn put_schedule(State(state): State<AppState>, body: Option<Json<Value>>) -> ApiResult<Json<Value>> {
    let Some(Json(body)) = body else {
        return Err(ApiError::bad_request("enabled is required and must be true or false"));
    };
    let current = state.backups.schedule().await.map_err(|e| ApiError::internal("Reading the schedule", e))?;
    let updated = current.apply(&body).map_err(|e| {
        // Each field's rule, for a form to show beside the field.
        let fields: serde_json::Map<String, Value> =
            e.0.iter().map(|f| (f.field.to_owned(), Value::from(f.message))).collect();
        ApiError::bad_request(e.to_string()).with(json!({ "fields": fields }))
    })?;
    state.backups.creator.db.save_schedule(&updated).await.map_err(|e| ApiError::internal("Saving the schedule", e))?;
    // Takes effect at once.
    state.schedule_changed.notify_one();
    let next = updated.next_run(time::OffsetDateTime::now_utc(), &state.backups.zone);
    Ok(Json(json!({ "success": true, "schedule": updated, "status": { "nextBackup": next.map(to_iso_millis) } })))
}

/// Turns Framerr's own schedule off (one scheduler per instance).
pub(crate) async fn disable_framerr(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let changed =
        state.backups.disable_framerr_scheduler().await.map_err(|e| ApiError::internal("Changing the schedule", e))?;
    let message = if changed {
        "Framerr's own backup schedule is off from Framerr's next start; this server runs the schedule"
    } else {
        "Framerr's own backup schedule was not on"
    };
    Ok(Json(json!({ "success": true, "changed": changed, "message": message })))
}
