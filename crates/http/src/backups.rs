//! Create, list, download, delete, status.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio_util::compat::FuturesAsyncReadCompatExt;
use tokio_util::io::ReaderStream;

use std::sync::Arc;

use backup_domain::ports::{BackupStore, Download};
use backup_domain::{BackupKind, BackupName, StoreError};

use crate::{ApiError, ApiResult, AppState};

pub(crate) async fn create(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let created = state.backups.creator.create(BackupKind::Manual).await?;
    state.backups.record_copies(&created);
    for (name, why) in &created.retention.failed {
        tracing::warn!(%name, %why, "retention could not delete a backup");
    }
    Ok(Json(json!({
        "success": true,
        "filename": created.stored.name.to_string(),
        "size": created.stored.size,
    })))
}

/// Every store, in order: the primary first, then the extra destinations.
pub(crate) fn stores(state: &AppState) -> Vec<Arc<dyn BackupStore>> {
    let creator = &state.backups.creator;
    std::iter::once(creator.store.clone()).chain(creator.replicas.iter().cloned()).collect()
}

/// Framerr's listing, with each backup once and, as an extra field Framerr
/// ignores, the places it lives. An unreachable destination is skipped.
pub(crate) async fn list(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    // The primary must answer; a destination may be down.
    state.backups.creator.store.list().await?;
    let (json, unreachable) = backup_domain::listing::merged(&stores(&state)).await;
    for problem in unreachable {
        tracing::warn!(%problem, "cannot list a destination");
    }
    Ok(Json(json))
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
pub(crate) async fn open_anywhere(state: &AppState, name: &BackupName) -> ApiResult<Download> {
    for store in stores(state) {
        match store.open(name).await {
            Ok(download) => return Ok(download),
            Err(StoreError::NotFound(_)) => continue,
            Err(e) => tracing::warn!(destination = %store.describe(), error = %e, "cannot read a destination"),
        }
    }
    Err(ApiError::not_found("Backup not found"))
}

/// Deletes the backup wherever it lives.
pub(crate) async fn remove(State(state): State<AppState>, Path(filename): Path<String>) -> ApiResult<Json<Value>> {
    let name = parse_name(&filename)?;
    if name.kind() == BackupKind::Safety {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "Safety backups cannot be deleted"));
    }
    let mut deleted = false;
    for store in stores(&state) {
        match store.delete(&name).await {
            Ok(()) => deleted = true,
            Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if !deleted {
        return Err(ApiError::not_found("Backup not found"));
    }
    Ok(Json(json!({ "success": true })))
}

pub(crate) async fn status(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "inProgress": state.backups.creator.busy.is_busy() }))
}
