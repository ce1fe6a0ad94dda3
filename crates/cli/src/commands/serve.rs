use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, broadcast};
use zeroize::Zeroizing;

use backup_domain::Zone;
use backup_domain::ports::BackupStore;
use backup_domain::scheduler::ScheduledBackups;
use backup_http::{AppState, BroadcastProgress, SetupRestores};
use backup_sqlite::SNAPSHOT_PREFIX;
use backup_store_fs::{UPLOAD_PREFIX, remove_stale_temporaries};

use super::{CliResult, creator, database, instance, store};
use crate::args::ServeArgs;
use crate::settings::Settings;

const DEFAULT_PORT: u16 = 3001;
const DEFAULT_UPLOAD_LIMIT: u64 = 1 << 30;
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

pub(crate) async fn run(settings: &Settings, args: ServeArgs) -> CliResult {
    let listen = match args.listen {
        Some(addr) => addr,
        None => {
            let port = match std::env::var("PORT") {
                Ok(p) if !p.is_empty() => p.parse().map_err(|_| format!("PORT must be a port number, not {p:?}"))?,
                _ => DEFAULT_PORT,
            };
            SocketAddr::from(([0, 0, 0, 0], port))
        }
    };
    let zone_name = args.time_zone.clone().or_else(|| std::env::var("TZ").ok().filter(|z| !z.is_empty()));
    let zone = match zone_name {
        Some(name) => Zone::named(name.trim_start_matches(':'))?,
        None => Zone::utc(),
    };
    let store = store(settings);
    store.prepare().await?;
    for replica in super::replicas(settings)? {
        if let Err(e) = replica.prepare().await {
            tracing::warn!(destination = %replica.describe(), error = %e, "cannot prepare a destination");
        }
    }
    remove_stale_temporaries(settings.work_dir(), &[SNAPSHOT_PREFIX, UPLOAD_PREFIX]);

    let (events, _) = broadcast::channel(256);
    let creator = creator(settings, Arc::new(BroadcastProgress(events.clone())))?;
    let db = Arc::new(database(settings));
    let backups = ScheduledBackups::new(creator, zone.clone());
    let schedule_changed = Arc::new(Notify::new());
    let bearer_token =
        std::env::var("FRAMERR_BACKUP_TOKEN").ok().filter(|t| !t.is_empty()).map(|t| Arc::new(Zeroizing::new(t)));
    let state = AppState {
        backups: backups.clone(),
        sessions: db.clone(),
        key_store: db,
        server_key: settings.key.clone(),
        cipher: settings.cipher(),
        instance: instance(settings),
        events,
        schedule_changed: schedule_changed.clone(),
        bearer_token,
        work_dir: settings.work_dir().to_path_buf(),
        upload_limit: args.upload_limit.unwrap_or(DEFAULT_UPLOAD_LIMIT),
        setup: SetupRestores::default(),
    };

    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let local = listener.local_addr()?;
    // Tests and scripts read this line to find the port.
    eprintln!("framerr-backup listening on http://{local}");
    tracing::info!(%local, backups = %settings.backups.display(), db = %settings.db.display(), zone = zone.name(), "serving");

    let scheduler = tokio::spawn(backup_http::scheduler::run(backups.clone(), schedule_changed));
    let setup = state.setup.clone();
    let janitor = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            setup.expire();
        }
    });
    let busy = backups.creator.busy.clone();
    let stopping = Arc::new(Notify::new());
    let signalled = stopping.clone();
    let app = backup_http::router(state);
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        signalled.notify_one();
    });
    // Requests get a moment to finish; a backup still running after it is
    // cancelled: dropping it removes its temporary upload and snapshot, so
    // no partial file is left, under any name.
    let grace = async {
        stopping.notified().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        served = server => served?,
        () = grace => {}
    }
    if busy.is_busy() {
        eprintln!("framerr-backup: stopped during a backup; it was cancelled and its partial file removed");
    } else {
        eprintln!("framerr-backup: stopped");
    }
    scheduler.abort();
    janitor.abort();
    let _ = scheduler.await;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
