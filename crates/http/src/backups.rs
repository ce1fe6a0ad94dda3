//! Create, list, download, delete, status.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio_util::compat::FuturesAsyncReadCompatExt;
use tokio_util::io::ReaderStream;

use backup_domain::{BackupKind, BackupName};

use crate::{ApiError, ApiResult, AppState};

pub(crate) async fn create(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let created = state.backups.creator.create(BackupKind::Manual).await?;
    for (name, why) in &created.retention.failed {
        tracing::warn!(%name, %why, "retention could not delete a backup");
    }
    Ok(Json(json!({
        "success": true,
        "filename": created.stored.name.to_string(),
        "size": created.stored.size,
    })))
}

pub(crate) async fn list(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let mut backups = state.backups.creator.store.list().await?;
    Ok(Json(backup_domain::listing::to_json(&mut backups)))
}

fn parse_name(filename: &str) -> ApiResult<BackupName> {
    BackupName::parse(filename).map_err(|_| ApiError::not_found("Backup not found"))
}

/// Streamed from the store, never read whole into memory.
pub(crate) async fn download(State(state): State<AppState>, Path(filename): Path<String>) -> ApiResult<Response> {
    let name = parse_name(&filename)?;
    let download = state.backups.creator.store.open(&name).await?;
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

pub(crate) async fn remove(State(state): State<AppState>, Path(filename): Path<String>) -> ApiResult<Json<Value>> {
    let name = parse_name(&filename)?;
    if name.kind() == BackupKind::Safety {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "Safety backups cannot be deleted"));
    }
    state.backups.creator.store.delete(&name).await?;
    Ok(Json(json!({ "success": true })))
}

pub(crate) async fn status(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "inProgress": state.backups.creator.busy.is_busy() }))
}
