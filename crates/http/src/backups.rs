//! Create, list, download, delete, status.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::compat::FuturesAsyncReadCompatExt;
use tokio_util::io::ReaderStream;

use backup_domain::listing::DeleteError;
use backup_domain::ports::Download;
use backup_domain::{BackupKind, BackupName, StoreError};

use crate::{ApiError, ApiResult, AppState};

pub(crate) async fn create(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let created = match state.backups.creator.create(BackupKind::Manual).await {
        Ok(created) => created,
        Err(e) => {
            state.backups.record_failure(&e);
            return Err(e.into());
        }
    };
    state.backups.record_copies(&created);
    for (name, why) in &created.retention.failed {
        tracing::warn!(%name, %why, "retention could not delete a backup");
    }
    for replica in &created.replicas {
        for (name, why) in &replica.retention.failed {
            tracing::warn!(destination = %replica.destination, %name, %why, "retention could not delete a backup");
        }
        if let (None, Some(why)) = (&replica.error, &replica.retention.error) {
            tracing::warn!(destination = %replica.destination, %why, "retention did not run");
        }
    }
    let names = |list: &[BackupName]| list.iter().map(ToString::to_string).collect::<Vec<_>>();
    if !created.retention.future.is_empty() {
        tracing::warn!(names = ?names(&created.retention.future), "backups stamped in the future are kept and not counted");
    }
    // Exactly what retention deleted, beside Framerr's fields: `deleted`
    // in the backups folder, and in each destination its own.
    Ok(Json(json!({
        "success": true,
        "filename": created.stored.name.to_string(),
        "size": created.stored.size,
        "deleted": names(&created.retention.deleted),
        "futureStamped": names(&created.retention.future),
        "destinations": created.replicas,
    })))
}

/// Framerr's listing, with each backup once and, as an extra field Framerr
/// ignores, the places it lives. An unreachable destination is skipped.
pub(crate) async fn list(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    // The primary must answer; a destination may be down.
    state.backups.creator.store.list().await?;
    let listing = backup_domain::listing::list(&state.backups.creator.stores()).await;
    for problem in &listing.unreachable {
        tracing::warn!(%problem, "cannot list a destination");
    }
    Ok(Json(serde_json::to_value(listing).map_err(|e| ApiError::internal("Listing", e))?))
}

fn parse_name(filename: &str) -> ApiResult<BackupName> {
    BackupName::parse(filename).map_err(|_| ApiError::not_found("Backup not found"))
}

/// Streamed from the store, never read whole into memory.
pub(crate) async fn download(State(state): State<AppState>, Path(filename): Path<String>) -> ApiResult<Response> {
    let name = parse_name(&filename)?;
    let download = open_anywhere(&state, &name).await?;
    let body = Body::from_stream(ReaderStream::with_capacity(download.reader.compat(), 256 * 1024));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(name.format().content_type()));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(download.size));
    // The name is a validated backup name: no quotes, separators or controls.
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// From the primary, else from the first destination that has it.
async fn open_anywhere(state: &AppState, name: &BackupName) -> ApiResult<Download> {
    for store in state.backups.creator.stores() {
        match store.open(name).await {
            Ok(download) => return Ok(download),
            Err(StoreError::NotFound(_)) => continue,
            Err(e) => tracing::warn!(destination = %store.describe(), error = %e, "cannot read a destination"),
        }
    }
    Err(ApiError::not_found("Backup not found"))
}

#[derive(Debug, Deserialize)]
pub(crate) struct DeleteQuery {
    /// Deliberately deletes a safety backup.
    #[serde(default)]
    force: bool,
}

/// Deletes the backup wherever it lives. A safety backup only with
/// `?force=true`: it is kept to undo a restore.
pub(crate) async fn remove(
    State(state): State<AppState>,
    Path(filename): Path<String>,
    Query(query): Query<DeleteQuery>,
) -> ApiResult<Json<Value>> {
    let name = parse_name(&filename)?;
    match state.backups.creator.delete(&name, query.force).await {
        Ok(_) => Ok(Json(json!({ "success": true }))),
        Err(DeleteError::SafetyNeedsForce(_)) => {
            Err(ApiError::new(StatusCode::FORBIDDEN, "Safety backups cannot be deleted without force=true"))
        }
        Err(DeleteError::PinnedNeedsForce(_)) => {
            Err(ApiError::new(StatusCode::FORBIDDEN, "Pinned backups cannot be deleted without force=true"))
        }
        Err(e @ DeleteError::PinsUnreadable(_)) => Err(ApiError::new(StatusCode::FORBIDDEN, e.to_string())),
        Err(DeleteError::Busy(_)) => Err(ApiError::new(StatusCode::CONFLICT, "Pins are being changed; try again")),
        Err(DeleteError::NotFound(_)) => Err(ApiError::not_found("Backup not found")),
        Err(DeleteError::Store(e)) => Err(e.into()),
        Err(e) => Err(ApiError::internal("Deleting", e)),
    }
}

/// `POST` pins the backup everywhere, `DELETE` unpins it.
pub(crate) async fn pin(state: State<AppState>, filename: Path<String>) -> ApiResult<Json<Value>> {
    set_pin(state, filename, true).await
}

pub(crate) async fn unpin(state: State<AppState>, filename: Path<String>) -> ApiResult<Json<Value>> {
    set_pin(state, filename, false).await
}

async fn set_pin(State(state): State<AppState>, Path(filename): Path<String>, on: bool) -> ApiResult<Json<Value>> {
    use backup_domain::pins::PinError;
    let name = parse_name(&filename)?;
    match state.backups.creator.pin(&name, on).await {
        Ok(outcome) => Ok(Json(json!({
            "success": true,
            "pinned": on,
            "saved": outcome.saved,
            "failed": outcome.failed.iter().map(|(place, error)| json!({"destination": place, "error": error})).collect::<Vec<_>>(),
        }))),
        Err(PinError::NotFound(_)) => Err(ApiError::not_found("Backup not found")),
        Err(PinError::Busy(_)) => Err(ApiError::new(StatusCode::CONFLICT, "Pins are being changed; try again")),
        Err(e) => Err(ApiError::internal("Saving the pin", e)),
    }
}

/// What retention would delete in every destination now, and why each
/// kept backup is kept (`prune --dry-run`).
pub(crate) async fn retention(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let done = state.backups.creator.prune(true).await.map_err(|e| ApiError::internal("Planning retention", e))?;
    Ok(Json(json!({ "timeZone": state.backups.zone.name(), "destinations": done })))
}

pub(crate) async fn status(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "inProgress": state.backups.creator.busy.is_busy() }))
}

/// The size and duration of the backups this server made, oldest first.
pub(crate) async fn history(State(state): State<AppState>) -> Json<Vec<backup_domain::history::Entry>> {
    Json(backup_domain::history::read(state.backups.creator.store.as_ref()).await)
}
