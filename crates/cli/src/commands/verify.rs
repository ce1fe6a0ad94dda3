use std::process::ExitCode;

use backup_app::Engine;
use backup_domain::name::BackupFormat;
use backup_domain::{RestoreError, VerifyReport};

use super::CliResult;
use crate::args::VerifyArgs;
use crate::password;

pub(crate) async fn run(engine: &Engine, args: VerifyArgs) -> CliResult {
    let report = verify(engine, &args).await;
    let ok = report.is_ok();
    if args.json {
        let json = match &report {
            Ok(r) => serde_json::json!({
                "backup": args.backup, "ok": true,
                "encrypted": r.format == BackupFormat::Encrypted,
                "checksumsVerified": r.checksums_verified,
                "userVersion": r.user_version,
                "type": r.manifest.kind,
                "createdAt": backup_domain::timefmt::to_iso_millis(r.manifest.created_at),
            }),
            Err(e) => serde_json::json!({ "backup": args.backup, "ok": false, "error": e }),
        };
        println!("{json}");
    } else {
        match &report {
            Ok(r) => {
                println!("{}: OK", args.backup);
                if r.manifest.entries.is_some() {
                    println!("  checksums: {} SHA-256 verified, and every CRC-32", r.checksums_verified);
                } else {
                    println!("  checksums: none in the manifest (made by Framerr); CRC-32 of every entry verified");
                }
                if r.format == BackupFormat::Encrypted {
                    println!("  encryption: the password opens it and its authentication tag verifies");
                }
                match r.live_version {
                    Some(live) => println!(
                        "  database: integrity ok, user_version {} (this instance runs {live}): restore would accept it",
                        r.user_version
                    ),
                    None => println!("  database: integrity ok, user_version {}", r.user_version),
                }
            }
            Err(e) => eprintln!("{}: FAILED: {e}", args.backup),
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn verify(engine: &Engine, args: &VerifyArgs) -> Result<VerifyReport, String> {
    let source = engine.source(&args.backup)?;
    let format = engine.restorer.format(&source).await.map_err(|e| e.to_string())?;
    let password = match format {
        BackupFormat::Plain => None,
        BackupFormat::Encrypted => Some(password::read(args.password_stdin, "Backup password: ", false)?),
    };
    engine.restorer.verify(source, password.as_ref()).await.map_err(|e: RestoreError| e.to_string())
}
