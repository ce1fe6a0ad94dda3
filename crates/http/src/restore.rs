//! Restore on a running instance (Framerr lacks it): `POST /api/backup/restore`
//! with `{"filename": "...", "password"?: "..."}` for a stored backup.
//! The shared restore path is also what setup restore uses.

use std::path::{Path, PathBuf};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use futures::io::AsyncReadExt;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use backup_crypto::envelope::{self, EnvelopeError};
use backup_crypto::manage::{self, Password};
use backup_domain::name::BackupFormat;
use backup_domain::restore::RestoreLimits;
use backup_domain::{BackupKind, BackupName};
use backup_instance::{KeyStoreOutcome, RestoreError, RestoreOptions};
use backup_store_fs::{UPLOAD_PREFIX, temporary_name};

use crate::{ApiError, ApiResult, AppState};

/// A staged file in the work folder, removed when dropped.
pub(crate) struct TempFile(pub(crate) PathBuf);

impl TempFile {
    pub(crate) fn new(state: &AppState, label: &str) -> ApiResult<TempFile> {
        std::fs::create_dir_all(&state.work_dir).map_err(|e| ApiError::internal("Preparing the work folder", e))?;
        Ok(TempFile(state.work_dir.join(temporary_name(UPLOAD_PREFIX, label))))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub(crate) fn format_of(path: &Path) -> ApiResult<BackupFormat> {
    backup_archive::detect_file(path)
        .map_err(|e| ApiError::internal("Reading the upload", e))?
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Decrypts into a temporary file; the error says what went wrong.
pub(crate) async fn decrypt(state: &AppState, source: &Path, password: &Password) -> Result<TempFile, EnvelopeError> {
    let target =
        TempFile::new(state, "decrypted.zip").map_err(|e| EnvelopeError::Io(std::io::Error::other(e.message)))?;
    let (from, to, pw) = (source.to_owned(), target.0.clone(), password.clone());
    tokio::task::spawn_blocking(move || envelope::decrypt_file(&from, &to, pw.expose()))
        .await
        .map_err(|e| EnvelopeError::Io(std::io::Error::other(e)))??;
    Ok(target)
}

/// Restores the plain backup ZIP at `archive`: stage and check, safety
/// backup, commit. One at a time with backups.
pub(crate) async fn perform(state: &AppState, archive: &Path, password: Option<&Password>) -> ApiResult<Value> {
    let cipher = state.cipher.as_deref();
    let key_store = manage::restored_key_store(state.server_key.as_ref(), password);
    let options = RestoreOptions { cipher, limits: RestoreLimits::default(), key_store: &key_store };
    let staged = {
        let _guard = state.backups.creator.busy.try_acquire().ok_or_else(in_progress)?;
        state.instance.stage(archive, &options).await.map_err(restore_error)?
    };
    let safety = if state.instance.layout().db.exists() {
        let created = state.backups.creator.create(BackupKind::Safety).await.map_err(|e| match e {
            backup_domain::CreateError::InProgress => in_progress(),
            other => ApiError::internal("The safety backup", other),
        })?;
        Some(created.stored.name.to_string())
    } else {
        None
    };
    let _guard = state.backups.creator.busy.try_acquire().ok_or_else(in_progress)?;
    let summary = state.instance.commit(staged).map_err(restore_error)?;
    let post = &summary.post;
    let mut notes = Vec::new();
    if post.sso_secret_unreadable {
        notes.push(
            "The SSO client secret was encrypted with the old instance's key; enter it again in the SSO settings.",
        );
    }
    if post.configs_unreadable > 0 {
        notes.push("Some integration credentials are encrypted with another instance's key; enter them again.");
    }
    if post.key_store == KeyStoreOutcome::TurnedOff {
        notes.push("Backup encryption was turned off: its key does not open with this instance's key.");
    }
    Ok(json!({
        "safetyBackup": safety,
        "tablesPurged": post.tables_purged,
        "configsEncrypted": post.configs_encrypted,
        "assetsRestored": summary.assets_restored,
        "notes": notes,
    }))
}

fn in_progress() -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "A backup or restore is already in progress")
}

/// Restore errors are the archive's fault (400) unless they are IO.
pub(crate) fn restore_error(e: RestoreError) -> ApiError {
    match e {
        RestoreError::Io { .. } | RestoreError::Db(_) | RestoreError::Safety(_) => ApiError::internal("Restore", e),
        other => ApiError::bad_request(other.to_string()),
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
    let password = body.get("password").and_then(Value::as_str).map(|p| Password::new(p.to_owned()));
    // Copy the stored backup to the work folder: the store may be remote,
    // and the restore reads the archive with random access.
    let copy = TempFile::new(&state, "restore.upload")?;
    let mut download = crate::backups::open_anywhere(&state, &name).await?;
    let mut file =
        tokio::fs::File::create_new(&copy.0).await.map_err(|e| ApiError::internal("Staging the backup", e))?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = download.reader.read(&mut buf).await.map_err(|e| ApiError::internal("Reading the backup", e))?;
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n]).await.map_err(|e| ApiError::internal("Staging the backup", e))?;
    }
    file.sync_all().await.map_err(|e| ApiError::internal("Staging the backup", e))?;
    let summary = match format_of(&copy.0)? {
        BackupFormat::Plain => perform(&state, &copy.0, None).await?,
        BackupFormat::Encrypted => {
            let password =
                password.ok_or_else(|| ApiError::bad_request("password is required for an encrypted backup"))?;
            let plain = decrypt(&state, &copy.0, &password).await.map_err(|e| match e {
                EnvelopeError::WrongPassword => ApiError::new(StatusCode::UNAUTHORIZED, "Incorrect password"),
                EnvelopeError::Io(io) => ApiError::internal("Decrypting the backup", io),
                other => ApiError::bad_request(other.to_string()),
            })?;
            perform(&state, &plain.0, Some(&password)).await?
        }
    };
    let mut body = json!({ "success": true, "message": "Backup restored; everyone signs in again" });
    if let (Some(map), Value::Object(extra)) = (body.as_object_mut(), summary) {
        map.extend(extra);
    }
    Ok(Json(body))
}
