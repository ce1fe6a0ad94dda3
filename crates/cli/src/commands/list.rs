use std::process::ExitCode;

use backup_domain::ports::BackupStore;
use backup_domain::timefmt::to_iso_millis;

use super::{CliResult, store};
use crate::args::ListArgs;
use crate::output::human_size;
use crate::settings::Settings;

pub(crate) async fn run(settings: &Settings, args: ListArgs) -> CliResult {
    let mut backups = store(settings).list().await?;
    // Newest first, as Framerr's /list.
    backups.sort_by(|a, b| b.name.cmp(&a.name));
    if args.json {
        let total: u64 = backups.iter().map(|b| b.size).sum();
        let items: Vec<serde_json::Value> = backups
            .iter()
            .map(|b| {
                serde_json::json!({
                    "filename": b.name.to_string(),
                    "size": b.size,
                    "createdAt": b.name.created_at().map(to_iso_millis),
                    "type": b.name.kind(),
                    "encrypted": b.name.is_encrypted(),
                })
            })
            .collect();
        let json = serde_json::json!({ "backups": items, "totalSize": total, "count": backups.len() });
        println!("{json}");
        return Ok(ExitCode::SUCCESS);
    }
    if backups.is_empty() {
        println!("No backups in {}", settings.backups.display());
        return Ok(ExitCode::SUCCESS);
    }
    let width = backups.iter().map(|b| b.name.to_string().len()).max().unwrap_or(4).max(4);
    println!("{:width$}  {:9}  {:>10}  {:20}  ENCRYPTED", "NAME", "TYPE", "SIZE", "CREATED (UTC)");
    for b in &backups {
        let created =
            b.name.created_at().map(|t| to_iso_millis(t)[..19].replace('T', " ")).unwrap_or_else(|| "-".into());
        let encrypted = if b.name.is_encrypted() { "yes" } else { "no" };
        println!(
            "{:width$}  {:9}  {:>10}  {:20}  {encrypted}",
            b.name.to_string(),
            b.name.kind().as_str(),
            human_size(b.size),
            created
        );
    }
    Ok(ExitCode::SUCCESS)
}
