//! One module per command: each asks the engine to do its work and says
//! what happened. Nothing here builds an adapter.

mod create;
mod delete;
mod encryption;
mod health;
mod list;
mod pin;
mod prune;
mod restore;
mod schedule;
mod serve;
mod verify;

use std::process::ExitCode;
use std::sync::Arc;

use backup_app::{Engine, Settings};
use backup_domain::ports::Progress;

use crate::args::{Args, Command};
use crate::output::ProgressReporter;

pub(crate) type CliResult = Result<ExitCode, Box<dyn std::error::Error + Send + Sync>>;

/// How long a command waits, at its end, for its notices to be sent.
const NOTICE_DRAIN: std::time::Duration = std::time::Duration::from_secs(30);

/// Exit code of a command stopped by Ctrl-C or SIGTERM.
const INTERRUPTED: u8 = 130;

pub(crate) async fn run(args: Args) -> CliResult {
    let settings = Settings::resolve(&args.flags())?;
    for warning in &settings.warnings {
        eprintln!("warning: {warning}");
    }
    if let Command::Serve(_) = args.command {
        // The server handles its signals itself: it drains requests first.
        return serve::run(settings).await;
    }
    // Asks the running server; builds nothing and takes no lock.
    if let Command::Health(a) = &args.command {
        return health::run(&settings, a);
    }
    let quiet = match &args.command {
        Command::Create(a) => a.json || a.output.as_deref() == Some(std::path::Path::new("-")),
        _ => false,
    };
    let progress: Arc<dyn Progress> = Arc::new(ProgressReporter::new(quiet));
    let engine = Engine::build(settings, progress)?;
    if let Some(outcome) = engine.tidy().await {
        eprintln!(
            "note: an interrupted restore was {}",
            match outcome {
                backup_app::Recovered::RolledBack => "rolled back; the instance is as it was before it",
                backup_app::Recovered::Finished => "completed",
            }
        );
    }
    let command = async {
        match args.command {
            Command::Create(a) => create::run(&engine, a).await,
            Command::List(a) => list::run(&engine, a).await,
            Command::Delete(a) => delete::run(&engine, a).await,
            Command::Pin(a) => pin::run(&engine, a, true).await,
            Command::Unpin(a) => pin::run(&engine, a, false).await,
            Command::Prune(a) => prune::run(&engine, a).await,
            Command::Verify(a) => verify::run(&engine, a).await,
            Command::Restore(a) => restore::run(&engine, a).await,
            Command::Encryption(c) => encryption::run(&engine, c).await,
            Command::Schedule(c) => schedule::run(&engine, c).await,
            Command::Serve(_) | Command::Health(_) => Ok(ExitCode::SUCCESS),
        }
    };
    // Ctrl-C or SIGTERM stops the command cleanly: what it was doing is
    // dropped, and its temporaries with it; a restore that had begun
    // swapping files in completes that step first.
    let command = async {
        let result = command.await;
        // Queued notices go out before the process exits; what could not
        // is said, so a cron job's owner learns their alerts do not arrive.
        if let Some(notifications) = &engine.notifications {
            let waiting = notifications.drain(NOTICE_DRAIN).await;
            use backup_domain::notify::Notifier;
            for u in notifications.undelivered() {
                eprintln!("warning: the {:?} notice to {} was not delivered: {}", u.event, u.target, u.error);
            }
            if waiting > 0 {
                eprintln!(
                    "warning: {waiting} notice(s) were still being sent after {} s and were dropped",
                    NOTICE_DRAIN.as_secs()
                );
            }
        }
        result
    };
    tokio::select! {
        result = command => result,
        signal = interrupted() => {
            eprintln!("{signal}: stopped; what was under way was undone and nothing partial was left (a backup already complete stays)");
            Ok(ExitCode::from(INTERRUPTED))
        }
    }
}

/// Waits for Ctrl-C or SIGTERM; says which.
pub(crate) async fn interrupted() -> &'static str {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupted",
        () = term => "terminated",
    }
}
