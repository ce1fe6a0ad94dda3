use std::process::ExitCode;

use backup_app::Engine;
use backup_domain::name::BackupFormat;
use backup_domain::verification::Outcome;
use backup_domain::{RestoreError, VerifyReport};

use super::CliResult;
use crate::args::VerifyArgs;
use crate::password;

pub(crate) async fn run(engine: &Engine, args: VerifyArgs) -> CliResult {
    if args.all {
        return all(engine, &args).await;
    }
    let backup = args.backup.clone().unwrap_or_default();
    let report = verify(engine, &backup, args.password_stdin).await;
    let ok = report.is_ok();
    if args.json {
        let json = match &report {
            Ok(r) => serde_json::json!({
                "backup": backup, "ok": true,
                "encrypted": r.format == BackupFormat::Encrypted,
                "checksumsVerified": r.checksums_verified,
                "userVersion": r.user_version,
                "type": r.manifest.kind,
                "createdAt": backup_domain::timefmt::to_iso_millis(r.manifest.created_at),
            }),
            Err(e) => serde_json::json!({ "backup": backup, "ok": false, "error": e }),
        };
        say!("{json}");
    } else {
        match &report {
            Ok(r) => {
                say!("{backup}: OK");
                if r.manifest.entries.is_some() {
                    say!("  checksums: {} SHA-256 verified, and every CRC-32", r.checksums_verified);
                } else {
                    say!("  checksums: none in the manifest (made by Framerr); CRC-32 of every entry verified");
                }
                if r.format == BackupFormat::Encrypted {
                    say!("  encryption: the password opens it and its authentication tag verifies");
                }
                match r.live_version {
                    Some(live) => say!(
                        "  database: integrity ok, user_version {} (this instance runs {live}): restore would accept it",
                        r.user_version
                    ),
                    None => say!("  database: integrity ok, user_version {}", r.user_version),
                }
            }
            Err(e) => eprintln!("{backup}: FAILED: {e}"),
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `verify --all`: every backup everywhere; encrypted ones with the
/// password given on standard input, else with this instance's key.
async fn all(engine: &Engine, args: &VerifyArgs) -> CliResult {
    let password = if args.password_stdin { Some(password::read(true, "Backup password: ", false)?) } else { None };
    let json = args.json;
    let checked = engine
        .verifier
        .verify_all(password.as_ref(), |c| {
            if json {
                return;
            }
            let name = c.name.as_ref().map_or_else(|| "(cannot list)".to_owned(), ToString::to_string);
            match (&c.result, c.outcome) {
                (Ok(_), _) => say!("OK       {name}  {}", c.destination),
                (Err(e), Outcome::Skipped) => say!("SKIPPED  {name}  {}: {e}", c.destination),
                (Err(e), _) => say!("FAILED   {name}  {}: {e}", c.destination),
            }
        })
        .await;
    let count = |o: Outcome| checked.iter().filter(|c| c.outcome == o).count();
    let (passed, failed, skipped) = (count(Outcome::Passed), count(Outcome::Failed), count(Outcome::Skipped));
    if json {
        let list: Vec<serde_json::Value> = checked
            .iter()
            .map(|c| {
                serde_json::json!({
                    "destination": c.destination,
                    "filename": c.name.as_ref().map(ToString::to_string),
                    "outcome": c.outcome,
                    "error": c.result.as_ref().err().map(ToString::to_string),
                })
            })
            .collect();
        say!("{}", serde_json::json!({"checked": list, "passed": passed, "failed": failed, "skipped": skipped}));
    } else {
        say!("{passed} passed, {failed} failed, {skipped} not checked");
    }
    Ok(ExitCode::from(if failed > 0 {
        1
    } else if skipped > 0 {
        2
    } else {
        0
    }))
}

async fn verify(engine: &Engine, backup: &str, password_stdin: bool) -> Result<VerifyReport, String> {
    let source = engine.source(backup)?;
    let format = engine.restorer.format(&source).await.map_err(|e| e.to_string())?;
    let password = match format {
        BackupFormat::Plain => None,
        BackupFormat::Encrypted => Some(password::read(password_stdin, "Backup password: ", false)?),
    };
    engine.restorer.verify(source, password.as_ref()).await.map_err(|e: RestoreError| e.to_string())
}
