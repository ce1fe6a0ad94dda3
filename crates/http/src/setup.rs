//! Restore during initial setup (no user yet), at `/api/auth/setup`, with
//! Framerr's restore-session rules for encrypted uploads: 30 minutes to
//! live, 5 attempts then 410, 1 s between tries, one key derivation at a
//! time.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use backup_crypto::envelope::EnvelopeError;
use backup_crypto::manage::Password;
use backup_domain::name::BackupFormat;

use crate::restore::{TempFile, decrypt as decrypt_upload, format_of, perform};
use crate::{ApiError, ApiResult, AppState};

pub(crate) const SESSION_TTL: Duration = Duration::from_secs(30 * 60);
pub(crate) const MAX_ATTEMPTS: u32 = 5;
pub(crate) const COOLDOWN: Duration = Duration::from_secs(1);

struct Pending {
    upload: Option<TempFile>,
    created: Instant,
    attempts: u32,
    last_try: Option<Instant>,
}

/// Encrypted uploads waiting for their password.
#[derive(Clone, Default)]
pub struct SetupRestores {
    pending: Arc<Mutex<HashMap<String, Pending>>>,
    deriving: Arc<AtomicBool>,
}

impl std::fmt::Debug for SetupRestores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetupRestores").finish_non_exhaustive()
    }
}

impl SetupRestores {
    /// Deletes the uploads of abandoned sessions. Call periodically.
    pub fn expire(&self) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain(|_, p| p.created.elapsed() < SESSION_TTL);
    }
}

/// A random version-4 UUID.
fn uuid() -> String {
    let mut b = [0u8; 16];
    backup_crypto::random_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

async fn only_during_setup(state: &AppState) -> ApiResult<()> {
    match state.sessions.any_user().await {
        Ok(false) => Ok(()),
        Ok(true) => Err(ApiError::new(StatusCode::FORBIDDEN, "Restore is only available during initial setup")),
        Err(e) => Err(ApiError::internal("Checking for users", e)),
    }
}

/// Streams the multipart field `backup` to a temporary file, refusing it
/// beyond the upload limit.
pub(crate) async fn receive(state: &AppState, mut multipart: Multipart) -> ApiResult<TempFile> {
    while let Some(mut field) =
        multipart.next_field().await.map_err(|e| ApiError::bad_request(format!("Invalid upload: {e}")))?
    {
        if field.name() != Some("backup") {
            continue;
        }
        let upload = TempFile::new(state, "setup.upload")?;
        let mut file =
            tokio::fs::File::create_new(&upload.0).await.map_err(|e| ApiError::internal("Saving the upload", e))?;
        let mut size = 0u64;
        while let Some(chunk) =
            field.chunk().await.map_err(|e| ApiError::bad_request(format!("Upload interrupted: {e}")))?
        {
            size += chunk.len() as u64;
            if size > state.upload_limit {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("Backup is larger than the {}-byte upload limit", state.upload_limit),
                ));
            }
            file.write_all(&chunk).await.map_err(|e| ApiError::internal("Saving the upload", e))?;
        }
        file.sync_all().await.map_err(|e| ApiError::internal("Saving the upload", e))?;
        return Ok(upload);
    }
    Err(ApiError::bad_request("No backup file provided (field 'backup')"))
}

pub(crate) async fn restore(State(state): State<AppState>, multipart: Multipart) -> ApiResult<Json<Value>> {
    only_during_setup(&state).await?;
    let upload = receive(&state, multipart).await?;
    match format_of(&upload.0)? {
        BackupFormat::Plain => {
            perform(&state, &upload.0, None).await?;
            Ok(Json(json!({ "success": true, "message": "Backup restored successfully" })))
        }
        BackupFormat::Encrypted => {
            let id = uuid();
            let pending = Pending { upload: Some(upload), created: Instant::now(), attempts: 0, last_try: None };
            state.setup.pending.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), pending);
            Ok(Json(json!({ "encrypted": true, "restoreId": id })))
        }
    }
}

/// Clears the "key derivation running" flag however the attempt ends.
struct Deriving(Arc<AtomicBool>);

impl Drop for Deriving {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

pub(crate) async fn decrypt(State(state): State<AppState>, body: Option<Json<Value>>) -> ApiResult<Json<Value>> {
    let state = &state;
    let body = body.map(|Json(v)| v).unwrap_or_default();
    only_during_setup(state).await?;
    let id =
        body.get("restoreId").and_then(Value::as_str).ok_or_else(|| ApiError::bad_request("restoreId is required"))?;
    let password = body
        .get("password")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .map(|p| Password::new(p.to_owned()))
        .ok_or_else(|| ApiError::bad_request("password is required"))?;
    let upload: PathBuf = {
        let mut pending = state.setup.pending.lock().unwrap_or_else(|p| p.into_inner());
        let Some(entry) = pending.get_mut(id).filter(|p| p.created.elapsed() < SESSION_TTL) else {
            return Err(ApiError::not_found("Restore session not found or expired"));
        };
        let Some(upload) = entry.upload.as_ref().map(|u| u.0.clone()) else {
            return Err(ApiError::new(StatusCode::GONE, "Too many failed attempts; upload the backup again"));
        };
        if entry.last_try.is_some_and(|t| t.elapsed() < COOLDOWN) {
            return Err(
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "Too many requests").with(json!({ "retryAfter": 1 }))
            );
        }
        if state.setup.deriving.swap(true, Ordering::AcqRel) {
            return Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, "Another attempt is in progress")
                .with(json!({ "retryAfter": 2 })));
        }
        upload
    };
    let deriving = Deriving(Arc::clone(&state.setup.deriving));
    let result = decrypt_upload(state, &upload, &password).await;
    drop(deriving);
    // The cooldown runs from the end of a try: key derivation itself takes
    // about as long as the cooldown.
    if let Some(entry) = state.setup.pending.lock().unwrap_or_else(|p| p.into_inner()).get_mut(id) {
        entry.last_try = Some(Instant::now());
    }
    let plain = match result {
        Ok(plain) => plain,
        Err(EnvelopeError::WrongPassword) => {
            let mut pending = state.setup.pending.lock().unwrap_or_else(|p| p.into_inner());
            let remaining = match pending.get_mut(id) {
                Some(entry) => {
                    entry.attempts += 1;
                    if entry.attempts >= MAX_ATTEMPTS {
                        // The upload is deleted; the id answers 410 until it expires.
                        entry.upload = None;
                    }
                    MAX_ATTEMPTS.saturating_sub(entry.attempts)
                }
                None => 0,
            };
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "Incorrect password")
                .with(json!({ "attemptsRemaining": remaining })));
        }
        Err(EnvelopeError::Io(e)) => return Err(ApiError::internal("Decrypting the backup", e)),
        Err(other) => return Err(ApiError::bad_request(other.to_string())),
    };
    perform(state, &plain.0, Some(&password)).await?;
    state.setup.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    Ok(Json(json!({ "success": true })))
}
