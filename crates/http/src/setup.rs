//! Restore during initial setup (no user yet), at `/api/auth/setup`, with
//! Framerr's restore-session rules for encrypted uploads: 30 minutes to
//! live, 5 attempts then 410, 1 s between tries, one key derivation at a
//! time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use backup_domain::Password;
use backup_domain::file::BackupFile;
use backup_domain::name::BackupFormat;
use backup_domain::restore::{OpenError, RestoreLimits, RestoreRequest, Source};

use crate::{ApiError, ApiResult, AppState};

pub(crate) const SESSION_TTL: Duration = Duration::from_secs(30 * 60);
pub(crate) const MAX_ATTEMPTS: u32 = 5;
pub(crate) const COOLDOWN: Duration = Duration::from_secs(1);
/// Encrypted uploads that may wait for their password at once, and their
/// bytes together: an unauthenticated client must not fill the disk. One
/// address has one waiting upload (a new one replaces it), and when all
/// are taken the oldest makes room: nobody can keep the real user out.
pub(crate) const MAX_PENDING: usize = 4;
pub(crate) const MAX_PENDING_BYTES: u64 = 4 << 30;

struct Pending {
    /// Deleted (dropped) after the fifth wrong password; then the entry
    /// only answers 410 and takes no room.
    upload: Option<Arc<dyn BackupFile>>,
    /// Who uploaded it (as sign-in counts clients).
    client: String,
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
    /// Uploads waiting for their password.
    pub fn pending(&self) -> usize {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Deletes the uploads of abandoned sessions. Call periodically.
    pub fn expire(&self) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain(|_, p| p.created.elapsed() < SESSION_TTL);
    }
}

/// A random version-4 UUID.
fn uuid() -> String {
    let mut b = [0u8; 16];
    // Without the OS's generator no id can be unguessable; a predictable one
    // would let another client try passwords on this upload.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut b).expect("the operating system's random generator failed");
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

/// Setup routes are unauthenticated: whether setup is still open is
/// checked before anything of the request body is read.
pub(crate) async fn gate(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Result<axum::response::Response, ApiError> {
    only_during_setup(&state).await?;
    Ok(next.run(request).await)
}

fn setup_request(upload: Arc<dyn BackupFile>, password: Option<Password>) -> RestoreRequest {
    RestoreRequest {
        source: Source::File(upload),
        password,
        limits: RestoreLimits::default(),
        // Checked again under the instance lock right before the swap: an
        // admin created while the upload ran closes setup.
        only_without_users: true,
    }
}

/// Framerr's answer, plus what became of a Framerr running on the database
/// (only then: otherwise the answer is exactly Framerr's).
fn with_framerr(mut body: Value, framerr: &backup_domain::FramerrAfterRestore) -> Value {
    if *framerr != backup_domain::FramerrAfterRestore::NotRunning
        && let Some(map) = body.as_object_mut()
    {
        map.insert("framerr".into(), crate::restore::framerr_json(framerr));
    }
    body
}

pub(crate) async fn restore(
    State(state): State<AppState>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: axum::http::HeaderMap,
    multipart: Multipart,
) -> ApiResult<Json<Value>> {
    let client = crate::account::client_address(peer.map(|p| p.0.0), &headers, &state.trusted_proxies);
    let upload = crate::upload::receive(&state, multipart).await?;
    match state.restorer.format(&Source::File(upload.clone())).await? {
        BackupFormat::Plain => {
            let summary = crate::restore::run(&state, setup_request(upload, None)).await?;
            let body = json!({ "success": true, "message": "Backup restored successfully" });
            Ok(Json(with_framerr(body, &summary.framerr)))
        }
        BackupFormat::Encrypted => {
            let id = uuid();
            let mut pending = state.setup.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.retain(|_, p| p.created.elapsed() < SESSION_TTL && p.client != client);
            if upload.size() > MAX_PENDING_BYTES {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "The backup is larger than an encrypted upload may be while it waits for its password",
                ));
            }
            // The oldest waiting uploads make room.
            loop {
                let waiting: Vec<(&String, &Pending)> = pending.iter().filter(|(_, p)| p.upload.is_some()).collect();
                let bytes: u64 = waiting.iter().filter_map(|(_, p)| p.upload.as_ref()).map(|u| u.size()).sum();
                if waiting.len() < MAX_PENDING && bytes + upload.size() <= MAX_PENDING_BYTES {
                    break;
                }
                let Some(oldest) = waiting.iter().min_by_key(|(_, p)| p.created).map(|(id, _)| (*id).clone()) else {
                    break;
                };
                pending.remove(&oldest);
            }
            let entry = Pending { upload: Some(upload), client, created: Instant::now(), attempts: 0, last_try: None };
            pending.insert(id.clone(), entry);
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
    let id =
        body.get("restoreId").and_then(Value::as_str).ok_or_else(|| ApiError::bad_request("restoreId is required"))?;
    let password = body
        .get("password")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .map(|p| Password::new(p.to_owned()))
        .ok_or_else(|| ApiError::bad_request("password is required"))?;
    let upload: Arc<dyn BackupFile> = {
        let mut pending = state.setup.pending.lock().unwrap_or_else(|p| p.into_inner());
        let Some(entry) = pending.get_mut(id).filter(|p| p.created.elapsed() < SESSION_TTL) else {
            return Err(ApiError::not_found("Restore session not found or expired"));
        };
        let Some(upload) = entry.upload.clone() else {
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
    let result = crate::restore::run(state, setup_request(upload, Some(password))).await;
    drop(deriving);
    // The cooldown runs from the end of a try: key derivation itself takes
    // about as long as the cooldown.
    if let Some(entry) = state.setup.pending.lock().unwrap_or_else(|p| p.into_inner()).get_mut(id) {
        entry.last_try = Some(Instant::now());
    }
    match result {
        Ok(summary) => {
            state.setup.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
            Ok(Json(with_framerr(json!({ "success": true }), &summary.framerr)))
        }
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
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
            Err(ApiError::new(StatusCode::UNAUTHORIZED, OpenError::WrongPassword.to_string())
                .with(json!({ "attemptsRemaining": remaining })))
        }
        Err(e) => Err(e),
    }
}

/// Whether setup is open, and, only while it is, where the server looks
/// for Framerr's database (a newcomer's first question).
pub(crate) async fn status(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let found = !matches!(state.restorer.creator.db.state().await, backup_domain::ports::LiveDatabase::Absent);
    let open = !state.sessions.any_user().await.unwrap_or(true);
    let mut body = json!({ "setupOpen": open, "databaseFound": found });
    if open {
        body["databasePath"] = json!(state.paths.database);
        body["dataDir"] = json!(state.paths.data_dir);
    }
    Ok(Json(body))
}
