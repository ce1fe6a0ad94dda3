//! `serve`: the HTTP API and the scheduler, until a shutdown signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use backup_http::BroadcastProgress;

use crate::engine::{Engine, EngineError};
use crate::settings::Settings;

/// Requests get this long to finish after a shutdown signal; a backup
/// still running then is cancelled (its temporaries removed).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("the server failed: {0}")]
    Server(std::io::Error),
}

/// How the server stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// A backup was running and was cancelled.
    pub cancelled_backup: bool,
}

/// Serves the API on `settings.listen` and runs the schedule, until
/// `shutdown` completes. `listening` learns the bound address.
pub async fn serve(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
    listening: impl FnOnce(SocketAddr),
) -> Result<Stopped, ServeError> {
    let (progress, events) = BroadcastProgress::channel();
    let engine = Engine::build(settings, Arc::new(progress))?;
    engine.tidy().await;
    // Tidying destinations waits for them; the server must not: one that
    // never answers would keep it from ever listening.
    let stores = engine.stores();
    tokio::spawn(async move {
        for store in stores {
            if let Err(e) = store.prepare().await {
                tracing::warn!(destination = %store.describe(), error = %e, "cannot prepare a destination");
            }
        }
    });
    if engine.scheduled.framerr_scheduler_enabled().await {
        tracing::warn!(
            "Framerr's own backup schedule is enabled too: two schedulers would both back up and prune; run `framerr-backup schedule disable-framerr` (effective at Framerr's next start)"
        );
    }
    let listen = engine.settings.listen;
    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|source| ServeError::Listen { addr: listen, source })?;
    let local = listener.local_addr().map_err(ServeError::Server)?;
    listening(local);
    tracing::info!(%local, backups = %engine.settings.backups.display(), db = %engine.settings.db.display(), zone = engine.settings.zone.name(), "serving");

    let schedule_changed = Arc::new(Notify::new());
    let state = engine.http_state(events, schedule_changed.clone());
    let scheduler =
        tokio::spawn(crate::scheduler::run(engine.scheduled.clone(), engine.verifier.clone(), schedule_changed));
    let verification = tokio::spawn(crate::scheduler::verify_periodically(engine.verifier.clone()));
    let setup = state.setup.clone();
    let janitor = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            setup.expire();
        }
    });
    let busy = engine.creator.busy.clone();
    // Requests get a moment to finish; a backup still running after it is
    // cancelled when the runtime stops: dropping it removes its temporary
    // upload and snapshot, so no partial file is left, under any name.
    crate::listen::serve_connections(listener, backup_http::router(state), shutdown, SHUTDOWN_GRACE).await;
    let cancelled_backup = busy.is_busy();
    scheduler.abort();
    verification.abort();
    janitor.abort();
    let _ = scheduler.await;
    Ok(Stopped { cancelled_backup })
}
