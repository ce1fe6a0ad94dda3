//! Framerr's backup API (spec section 8) on axum, so Framerr's web UI works
//! against this server unchanged: `fn router(state) -> Router`, mounted at
//! `/api/backup` and `/api/auth/setup`, plus Framerr's realtime stream
//! relayed with our backup events (`/api/realtime/stream`).
//!
//! Presentation only: the use cases come in [`AppState`] from
//! `backup-domain` (built by `backup-app`); this crate parses requests,
//! renders responses, and alone maps errors to HTTP statuses (`error.rs`).

mod account;
mod auth;
mod backups;
mod encryption;
mod error;
mod events;
mod guard;
mod health;
mod metrics;
mod page;
mod proxies;
mod realtime;
mod restore;
mod schedule;
mod setup;
mod upload;
mod verification;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use tokio::sync::broadcast;
use zeroize::Zeroizing;

use backup_domain::auth::{Sessions, SignIn};
use backup_domain::ports::{Progress, ProgressEvent, Scratch};
use backup_domain::scheduler::ScheduledBackups;
use backup_domain::verification::Verifier;
use backup_domain::{BackupEncryption, Restorer};

pub use error::{ApiError, ApiResult};
pub use guard::{CLIENT_HEADER, PAGE_CSP};
pub use proxies::TrustedProxies;
pub use realtime::FramerrUrl;
pub use setup::SetupRestores;

/// Everything the routes need.
#[derive(Clone)]
pub struct AppState {
    /// Create, list, schedule; `backups.creator` holds the stores.
    pub backups: ScheduledBackups,
    pub restorer: Restorer,
    pub encryption: BackupEncryption,
    pub sessions: Arc<dyn Sessions>,
    /// Where uploads are kept while they are restored.
    pub scratch: Arc<dyn Scratch>,
    pub events: broadcast::Sender<ProgressEvent>,
    /// Wakes the scheduler when the schedule changes.
    pub schedule_changed: Arc<tokio::sync::Notify>,
    /// `Authorization: Bearer` for headless use, when configured.
    pub bearer_token: Option<Arc<Zeroizing<String>>>,
    pub upload_limit: u64,
    pub setup: SetupRestores,
    /// Signing in with a Framerr admin account.
    pub sign_in: SignIn,
    /// Where the instance is, told (during setup only) to a newcomer whose
    /// server finds no database.
    pub paths: InstancePaths,
    /// Checks the newest backup of every destination.
    pub verifier: Verifier,
    /// A token for a metrics scraper only (`GET /metrics`), besides the
    /// bearer token.
    pub metrics_token: Option<Arc<Zeroizing<String>>>,
    /// Peers whose `X-Forwarded-For` names the client (loopback always).
    pub trusted_proxies: TrustedProxies,
    /// Framerr's own address, when its realtime stream is to be relayed
    /// with our backup events (`GET /api/realtime/stream`); `None`: 404.
    pub framerr: Option<FramerrUrl>,
}

/// Where the server looks for Framerr's files.
#[derive(Debug, Clone, Default)]
pub struct InstancePaths {
    pub database: String,
    pub data_dir: String,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("upload_limit", &self.upload_limit).finish_non_exhaustive()
    }
}

/// Sends use-case progress to every SSE listener; a slow listener misses
/// events rather than slowing a backup down.
#[derive(Debug, Clone)]
pub struct BroadcastProgress(pub broadcast::Sender<ProgressEvent>);

impl BroadcastProgress {
    /// A progress sink and the channel SSE clients subscribe to.
    pub fn channel() -> (BroadcastProgress, broadcast::Sender<ProgressEvent>) {
        let (events, _) = broadcast::channel(256);
        (BroadcastProgress(events.clone()), events)
    }
}

impl Progress for BroadcastProgress {
    fn report(&self, event: ProgressEvent) {
        let _ = self.0.send(event);
    }
}

/// The largest JSON body any route accepts.
pub const JSON_LIMIT: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    let backup = Router::new()
        .route("/create", post(backups::create))
        .route("/list", get(backups::list))
        .route("/download/{filename}", get(backups::download))
        .route("/status", get(backups::status))
        .route("/schedule", get(schedule::get_schedule).put(schedule::put_schedule))
        .route("/schedule/framerr/disable", post(schedule::disable_framerr))
        .route("/encryption/status", get(encryption::status))
        .route("/encryption/enable", post(encryption::enable))
        .route("/encryption/disable", post(encryption::disable))
        .route("/encryption/reset-password", post(encryption::reset_password))
        .route("/events", get(events::events))
        .route("/health", get(health::health))
        .route("/restore", post(restore::restore_running))
        .route("/restore/upload", post(restore::restore_upload).layer(DefaultBodyLimit::disable()))
        .route("/inspect/{filename}", get(restore::inspect).post(restore::inspect_encrypted))
        .route("/history", get(backups::history))
        .route("/retention", get(backups::retention))
        .route("/{filename}/pin", post(backups::pin).delete(backups::unpin))
        .route("/verification", get(verification::last))
        .route("/verify", post(verification::verify_now))
        .route("/{filename}", delete(backups::remove))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_admin));
    let setup = Router::new()
        // Uploads stream to scratch space with their own limit.
        .route("/restore", post(setup::restore).layer(DefaultBodyLimit::disable()))
        .route("/restore/decrypt", post(setup::decrypt))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), setup::gate));
    let account = Router::new()
        .route("/login", post(account::login))
        .route("/logout", post(account::logout))
        .route("/setup/status", get(setup::status));
    Router::new()
        .route("/", get(page::index))
        .route("/assets/{file}", get(page::asset))
        .route("/metrics", get(metrics::metrics))
        // Framerr's own stream with ours in it: Framerr says who may open
        // it, so no admin layer here.
        .route("/api/realtime/stream", get(realtime::stream))
        .nest("/api/backup", backup)
        .nest("/api/auth/setup", setup)
        .nest("/api/auth", account)
        .fallback(guard::not_found)
        .method_not_allowed_fallback(guard::method_not_allowed)
        // JSON bodies are small: nothing unauthenticated can make the
        // server hold more than this.
        .layer(DefaultBodyLimit::max(JSON_LIMIT))
        .layer(axum::middleware::from_fn(guard::steady_body))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::request_source))
        .layer(axum::middleware::from_fn(guard::response_headers))
        .with_state(state)
}
