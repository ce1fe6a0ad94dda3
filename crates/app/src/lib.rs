//! The composition root of framerr-backup, as a library: [`Settings`]
//! resolved in one place from flags and Framerr's environment variables,
//! the destination [`Registry`], the [`Engine`] (every use case wired to
//! its adapters), and [`serve`]. The CLI and a host server compose nothing
//! themselves: they build an engine here.
//!
//! Embedding the engine in a host server, beside its own routes (the
//! host's `main` calls [`sandbox_child_if_asked`] first, since the engine
//! runs its checks of untrusted databases in a child of the same program):
//!
//! ```no_run
//! use std::sync::Arc;
//! use backup_app::{Engine, Flags, Settings};
//! use backup_http::BroadcastProgress;
//!
//! fn main() -> std::process::ExitCode {
//!     if let Some(code) = backup_app::sandbox_child_if_asked() {
//!         return code;
//!     }
//!     // … start the runtime, then run() …
//!     std::process::ExitCode::SUCCESS
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let settings = Settings::resolve(&Flags::default())?;
//! let (progress, events) = BroadcastProgress::channel();
//! let engine = Engine::build(settings, Arc::new(progress))?;
//! let changed = Arc::new(tokio::sync::Notify::new());
//! let app = axum::Router::new()
//!     .route("/host/hello", axum::routing::get(|| async { "the host's own route" }))
//!     .merge(backup_http::router(engine.http_state(events, changed)));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

mod clock;
mod engine;
mod files;
pub mod health;
pub mod listen;
pub mod privileges;
pub mod registry;
mod restart;
pub mod scheduler;
mod serve;
mod settings;

pub use backup_instance::Recovered;
pub use clock::SystemClock;
pub use engine::{Engine, EngineError};

/// Call first thing in `main`, before any thread or runtime starts: the
/// engine checks backups' databases in a child process of this same
/// program, which this turns into that child (its one job done, it
/// returns how to exit). `None` in every other process.
pub fn sandbox_child_if_asked() -> Option<std::process::ExitCode> {
    backup_sqlite::child_if_asked()
}
pub use files::release_temporaries;
pub use registry::Registry;
pub use restart::{CommandRestarter, RESTART_LIMIT};
pub use serve::{SHUTDOWN_GRACE, ServeError, Stopped, serve};
pub use settings::{DEFAULT_LOCK_WAIT, DEFAULT_PORT, DEFAULT_UPLOAD_LIMIT, Flags, Settings, SettingsError};

fn absolute(path: &std::path::Path) -> String {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string()
}

impl Engine {
    /// The HTTP API's state over this engine: progress events reach SSE
    /// clients through `events`; `schedule_changed` wakes the scheduler.
    pub fn http_state(
        &self,
        events: tokio::sync::broadcast::Sender<backup_domain::ports::ProgressEvent>,
        schedule_changed: std::sync::Arc<tokio::sync::Notify>,
    ) -> backup_http::AppState {
        backup_http::AppState {
            backups: self.scheduled.clone(),
            restorer: self.restorer.clone(),
            encryption: self.encryption.clone(),
            sessions: self.sessions.clone(),
            scratch: self.scratch.clone(),
            events,
            schedule_changed,
            bearer_token: self.settings.bearer_token.clone(),
            upload_limit: self.settings.upload_limit,
            setup: backup_http::SetupRestores::default(),
            sign_in: self.sign_in.clone(),
            paths: backup_http::InstancePaths {
                database: absolute(&self.settings.db),
                data_dir: absolute(&backup_fsutil::parent(&self.settings.db)),
            },
            verifier: self.verifier.clone(),
            metrics_token: self.settings.metrics_token.clone(),
            trusted_proxies: self.settings.trusted_proxies.clone(),
            framerr: self.settings.framerr_url.clone(),
        }
    }
}
