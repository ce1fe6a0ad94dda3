use std::collections::BTreeMap;
use std::process::ExitCode;

use backup_domain::timefmt::to_iso_millis;

use super::CliResult;
use crate::args::ListArgs;
use crate::output::human_size;
use crate::settings::Settings;

pub(crate) async fn run(settings: &Settings, args: ListArgs) -> CliResult {
    // Every store's backups, each name once, with the places it lives.
    let mut locations: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut backups: Vec<backup_domain::ports::StoredBackup> = Vec::new();
    let mut unreachable = Vec::new();
    for store in super::all_stores(settings)? {
        match store.list().await {
            Ok(list) => {
                for b in list {
                    let places = locations.entry(b.name.to_string()).or_default();
                    if places.is_empty() {
                        backups.push(b.clone());
                    }
                    places.push(store.describe());
                }
            }
            Err(e) => unreachable.push(format!("{}: {e}", store.describe())),
        }
    }
    for problem in &unreachable {
        eprintln!("warning: cannot list {problem}");
    }
    let mut json = backup_domain::listing::to_json(&mut backups);
    if let Some(items) = json["backups"].as_array_mut() {
        for item in items {
            let name = item["filename"].as_str().unwrap_or_default().to_owned();
            item["locations"] = serde_json::json!(locations.get(&name).cloned().unwrap_or_default());
        }
    }
    if args.json {
        println!("{json}");
        return Ok(ExitCode::SUCCESS);
    }
    if backups.is_empty() {
        println!("No backups in {}", settings.backups.display());
        return Ok(ExitCode::SUCCESS);
    }
    let width = backups.iter().map(|b| b.name.to_string().len()).max().unwrap_or(4).max(4);
    let several = !settings.destinations.is_empty();
    println!(
        "{:width$}  {:9}  {:>10}  {:20}  {:9}{}",
        "NAME",
        "TYPE",
        "SIZE",
        "CREATED (UTC)",
        "ENCRYPTED",
        if several { "  WHERE" } else { "" }
    );
    for b in &backups {
        let created =
            b.name.created_at().map(|t| to_iso_millis(t)[..19].replace('T', " ")).unwrap_or_else(|| "-".into());
        let encrypted = if b.name.is_encrypted() { "yes" } else { "no" };
        let places = if several { format!("  {}", locations[&b.name.to_string()].join(", ")) } else { String::new() };
        println!(
            "{:width$}  {:9}  {:>10}  {:20}  {encrypted:9}{places}",
            b.name.to_string(),
            b.name.kind().as_str(),
            human_size(b.size),
            created
        );
    }
    Ok(if unreachable.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(3) })
}
