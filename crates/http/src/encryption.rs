//! `/encryption/*`.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use backup_crypto::manage::{self, Password};
use backup_domain::ports::BackupStore;

use crate::{ApiError, ApiResult, AppState};

/// The string field `name` of the body, or 400.
fn field(body: &Option<Json<Value>>, name: &str) -> ApiResult<Password> {
    body.as_ref()
        .and_then(|Json(v)| v.get(name))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(|s| Password::new(s.to_owned()))
        .ok_or_else(|| ApiError::bad_request(format!("{name} is required")))
}

pub(crate) async fn status(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "enabled": manage::is_enabled(state.key_store.as_ref()).await? })))
}

pub(crate) async fn enable(State(state): State<AppState>, body: Option<Json<Value>>) -> ApiResult<Json<Value>> {
    let password = field(&body, "password")?;
    manage::enable(state.key_store.as_ref(), state.server_key.as_ref(), &password).await?;
    Ok(Json(json!({ "enabled": true, "message": "Backup encryption enabled" })))
}

pub(crate) async fn disable(State(state): State<AppState>, body: Option<Json<Value>>) -> ApiResult<Json<Value>> {
    let password = field(&body, "password")?;
    manage::disable(state.key_store.as_ref(), &password).await?;
    Ok(Json(json!({ "enabled": false, "message": "Backup encryption disabled" })))
}

pub(crate) async fn reset_password(State(state): State<AppState>, body: Option<Json<Value>>) -> ApiResult<Json<Value>> {
    let password = field(&body, "newPassword")?;
    let all = crate::backups::stores(&state);
    let stores: Vec<&dyn BackupStore> = all.iter().map(|s| s.as_ref()).collect();
    let failures =
        manage::reset_password(state.key_store.as_ref(), state.server_key.as_ref(), &password, &stores).await?;
    let mut body = json!({ "message": "Backup password reset" });
    if !failures.is_empty() {
        let errors: Vec<Value> = failures.iter().map(|(f, e)| json!({ "filename": f, "error": e })).collect();
        body["rewriteErrors"] = Value::Array(errors);
    }
    Ok(Json(body))
}
