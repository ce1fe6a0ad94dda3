use std::process::ExitCode;

use backup_domain::ports::BackupStore;
use backup_domain::timefmt::to_iso_millis;

use super::{CliResult, store};
use crate::args::ListArgs;
use crate::output::human_size;
use crate::settings::Settings;

pub(crate) async fn run(settings: &Settings, args: ListArgs) -> CliResult {
    let mut backups = store(settings).list().await?;
    let json = backup_domain::listing::to_json(&mut backups);
    if args.json {
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
