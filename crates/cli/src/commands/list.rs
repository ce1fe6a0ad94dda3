use std::process::ExitCode;

use super::CliResult;
use crate::args::ListArgs;
use crate::output::human_size;
use crate::settings::Settings;

pub(crate) async fn run(settings: &Settings, args: ListArgs) -> CliResult {
    let stores = super::all_stores(settings)?;
    let (json, unreachable) = backup_domain::listing::merged(&stores).await;
    for problem in &unreachable {
        eprintln!("warning: cannot list {problem}");
    }
    if args.json {
        println!("{json}");
        return Ok(ExitCode::SUCCESS);
    }
    let items = json["backups"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        println!("No backups in {}", settings.backups.display());
        return Ok(ExitCode::SUCCESS);
    }
    let text = |item: &serde_json::Value, key: &str| item[key].as_str().unwrap_or_default().to_owned();
    let width = items.iter().map(|b| text(b, "filename").len()).max().unwrap_or(4).max(4);
    let several = !settings.destinations.is_empty();
    let header = format!(
        "{:width$}  {:9}  {:>10}  {:20}  {:9}{}",
        "NAME",
        "TYPE",
        "SIZE",
        "CREATED (UTC)",
        "ENCRYPTED",
        if several { "  WHERE" } else { "" }
    );
    println!("{}", header.trim_end());
    for item in &items {
        let created = item["createdAt"].as_str().map(|t| t[..19].replace('T', " ")).unwrap_or_else(|| "-".into());
        let encrypted = if item["encrypted"] == true { "yes" } else { "no" };
        let places: Vec<String> =
            item["locations"].as_array().into_iter().flatten().filter_map(|l| l.as_str().map(str::to_owned)).collect();
        let places = if several { format!("  {}", places.join(", ")) } else { String::new() };
        let line = format!(
            "{:width$}  {:9}  {:>10}  {:20}  {encrypted:9}{places}",
            text(item, "filename"),
            text(item, "type"),
            human_size(item["size"].as_u64().unwrap_or(0)),
            created
        );
        println!("{}", line.trim_end());
    }
    Ok(if unreachable.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(3) })
}
