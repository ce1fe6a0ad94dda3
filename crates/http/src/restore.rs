//! Restore on a running instance (Framerr lacks it): `POST /api/backup/restore`
//! with `{"filename": "...", "password"?: "..."}` for a stored backup.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use axum::extract::{Multipart, Path};
use backup_domain::encryption::KeyStoreOutcome;

use backup_domain::name::BackupFormat;
use backup_domain::restore::{
    FramerrAfterRestore, RestartOutcome, RestoreLimits, RestoreRequest, RestoreSummary, SafetyBackup, Source,
};
use backup_domain::timefmt::to_iso_millis;
use backup_domain::{BackupName, Password, VerifyReport};

use crate::{ApiError, ApiResult, AppState};

/// Runs a restore to its end even if the client goes away: a restore half
/// done is undone by its drop, but one the user asked for should finish.
pub(crate) async fn run(state: &AppState, request: RestoreRequest) -> ApiResult<RestoreSummary> {
    let restorer = state.restorer.clone();
    let summary = tokio::spawn(async move { restorer.restore(request).await })
        .await
        .map_err(|e| ApiError::internal("Restore", e))?
        .map_err(ApiError::from)?;
    match &summary.framerr {
        FramerrAfterRestore::NotRunning => {}
        FramerrAfterRestore::RestartNeeded => {
            tracing::warn!("restored under a running Framerr: restart it to reload its settings")
        }
        FramerrAfterRestore::Restarted(RestartOutcome::Done { command }) => {
            tracing::info!(%command, "restored under a running Framerr, which was restarted")
        }
        FramerrAfterRestore::Restarted(RestartOutcome::Failed { command, error }) => {
            tracing::warn!(%command, %error, "restored under a running Framerr; the restart command failed")
        }
    }
    Ok(summary)
}

/// The summary as JSON: what the safety backup is, what was cleared, and
/// notes a person should act on.
pub(crate) fn summary_json(summary: &RestoreSummary) -> Value {
    let post = &summary.post;
    let mut notes = Vec::new();
    let safety = match &summary.safety {
        SafetyBackup::None => None,
        SafetyBackup::Made(name) => Some(name.to_string()),
        SafetyBackup::Raw { name, why } => {
            notes.push(format!(
                "The database being replaced could not be read ({why}); its files were kept as they were in {name}."
            ));
            Some(name.to_string())
        }
    };
    if post.sso_secret_unreadable {
        notes.push(
            "The SSO client secret was encrypted with the old instance's key; enter it again in the SSO settings."
                .to_owned(),
        );
    }
    if post.configs_unreadable > 0 {
        notes.push("Some integration credentials are encrypted with another instance's key; enter them again.".into());
    }
    if post.key_store == KeyStoreOutcome::TurnedOff {
        notes.push("Backup encryption was turned off: its key does not open with this instance's key.".into());
    }
    let framerr = framerr_json(&summary.framerr);
    if let Some(message) = framerr.get("message").and_then(Value::as_str) {
        notes.push(message.to_owned());
    } else if let FramerrAfterRestore::Restarted(RestartOutcome::Done { command }) = &summary.framerr {
        notes.push(format!("Framerr was running on this database and was restarted ({command})."));
    }
    json!({
        "framerr": framerr,
        "safetyBackup": safety,
        "tablesPurged": post.tables_purged,
        "configsEncrypted": post.configs_encrypted,
        "assetsRestored": summary.assets_restored,
        "notes": notes,
    })
}

/// Framerr's side: whether it was running on the database (so the restore
/// was written under it) and what became of the restart command.
pub(crate) fn framerr_json(framerr: &FramerrAfterRestore) -> Value {
    match framerr {
        FramerrAfterRestore::NotRunning => json!({ "running": false, "restart": null, "message": null }),
        FramerrAfterRestore::RestartNeeded => json!({
            "running": true,
            "restart": "not-configured",
            "message": "Framerr is running on the restored database and already reads it; restart Framerr to reload its settings and integrations (a restart command can do it for you: see DEPLOY.md).",
        }),
        FramerrAfterRestore::Restarted(RestartOutcome::Done { command }) => json!({
            "running": true,
            "restart": "done",
            "command": command,
            "message": null,
        }),
        FramerrAfterRestore::Restarted(RestartOutcome::Failed { command, error }) => json!({
            "running": true,
            "restart": "failed",
            "command": command,
            "error": error,
            "message": format!("Framerr is running on the restored database, but the restart command failed ({error}); restart Framerr by hand to reload its settings."),
        }),
    }
}

pub(crate) async fn restore_running(
    State(state): State<AppState>,
    body: Option<Json<Value>>,
) -> ApiResult<Json<Value>> {
    let body = body.map(|Json(v)| v).unwrap_or_default();
    let filename =
        body.get("filename").and_then(Value::as_str).ok_or_else(|| ApiError::bad_request("filename is required"))?;
    let name = BackupName::parse(filename).map_err(|_| ApiError::not_found("Backup not found"))?;
    let password = body.get("password").and_then(Value::as_str).filter(|p| !p.is_empty()).map(Password::new);
    let request = RestoreRequest {
        source: Source::Stored(name),
        password,
        limits: RestoreLimits::default(),
        only_without_users: false,
    };
    let summary = run(&state, request).await?;
    Ok(restored(&summary))
}

fn restored(summary: &RestoreSummary) -> Json<Value> {
    let mut body = json!({ "success": true, "message": "Backup restored; everyone signs in again" });
    if let (Some(map), Value::Object(extra)) = (body.as_object_mut(), summary_json(summary)) {
        map.extend(extra);
    }
    Json(body)
}

/// Restores an uploaded backup (multipart: `password` first when the file
/// is encrypted, then `backup`), on a running instance.
pub(crate) async fn restore_upload(State(state): State<AppState>, multipart: Multipart) -> ApiResult<Json<Value>> {
    let (file, password) = crate::upload::receive_with_password(&state, multipart).await?;
    let request = RestoreRequest {
        source: Source::File(file),
        password,
        limits: RestoreLimits::default(),
        only_without_users: false,
    };
    let summary = run(&state, request).await?;
    Ok(restored(&summary))
}

/// What a stored backup holds, read without restoring it: every check
/// restore makes, plus counts a person recognises.
fn inspection(name: &BackupName, report: &VerifyReport) -> Value {
    let counts: serde_json::Map<String, Value> =
        report.counts.iter().map(|(label, n)| (label.clone(), Value::from(*n))).collect();
    json!({
        "filename": name.to_string(),
        "encrypted": report.format == BackupFormat::Encrypted,
        "type": report.manifest.kind,
        "createdAt": to_iso_millis(report.manifest.created_at),
        "generator": report.manifest.generator,
        "userVersion": report.user_version,
        "liveVersion": report.live_version,
        "counts": counts,
        "checksumsVerified": report.checksums_verified,
    })
}

async fn inspect_with(state: &AppState, filename: &str, password: Option<Password>) -> ApiResult<Json<Value>> {
    let name = BackupName::parse(filename).map_err(|_| ApiError::not_found("Backup not found"))?;
    let restorer = state.restorer.clone();
    let source = Source::Stored(name.clone());
    let report = tokio::spawn(async move { restorer.verify(source, password.as_ref()).await })
        .await
        .map_err(|e| ApiError::internal("Inspecting the backup", e))??;
    Ok(Json(inspection(&name, &report)))
}

/// `GET /inspect/NAME`: a plain backup.
pub(crate) async fn inspect(State(state): State<AppState>, Path(filename): Path<String>) -> ApiResult<Json<Value>> {
    inspect_with(&state, &filename, None).await
}

/// `POST /inspect/NAME` with `{"password"}`: an encrypted one.
pub(crate) async fn inspect_encrypted(
    State(state): State<AppState>,
    Path(filename): Path<String>,
    body: Option<Json<Value>>,
) -> ApiResult<Json<Value>> {
    let password = body
        .as_ref()
        .and_then(|Json(v)| v.get("password"))
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .map(Password::new);
    inspect_with(&state, &filename, password).await
}
