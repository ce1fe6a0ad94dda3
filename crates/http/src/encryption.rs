//! `/encryption/*`.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use backup_domain::Password;

use crate::{ApiError, ApiResult, AppState};

/// The string field `name` of the body, or 400.
fn field(body: &Option<Json<Value>>, name: &str) -> ApiResult<Password> {
    body.as_ref()
        .and_then(|Json(v)| v.get(name))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(Password::new)
        .ok_or_else(|| ApiError::bad_request(format!("{name} is required")))
}

pub(crate) async fn status(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "enabled": state.encryption.is_enabled().await? })))
}

pub(crate) async fn enable(State(state): State<AppState>, body: Option<Json<Value>>) -> ApiResult<Json<Value>> {
    let password = field(&body, "password")?;
    state.encryption.enable(&password).await?;
    Ok(Json(json!({ "enabled": true, "message": "Backup encryption enabled" })))
}

pub(crate) async fn disable(State(state): State<AppState>, body: Option<Json<Value>>) -> ApiResult<Json<Value>> {
    let password = field(&body, "password")?;
    state.encryption.disable(&password).await?;
    Ok(Json(json!({ "enabled": false, "message": "Backup encryption disabled" })))
}

pub(crate) async fn reset_password(State(state): State<AppState>, body: Option<Json<Value>>) -> ApiResult<Json<Value>> {
    let password = field(&body, "newPassword")?;
    let failures = state.encryption.reset_password(&password, &state.backups.creator.stores()).await?;
    let mut body = json!({ "message": "Backup password reset" });
    if !failures.is_empty() {
        let errors: Vec<Value> = failures.iter().map(|f| json!({ "filename": f.filename, "error": f.error })).collect();
        body["rewriteErrors"] = Value::Array(errors);
    }
    Ok(Json(body))
}
