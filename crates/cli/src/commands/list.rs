use std::process::ExitCode;

use backup_app::Engine;
use backup_domain::listing;

use super::CliResult;
use crate::args::ListArgs;
use crate::output::human_size;

pub(crate) async fn run(engine: &Engine, args: ListArgs) -> CliResult {
    let listing = listing::list(&engine.stores()).await;
    for problem in &listing.unreachable {
        eprintln!("warning: cannot list {problem}");
    }
    for problem in &listing.pins_unreadable {
        eprintln!("warning: pins unreadable: {problem}");
    }
    let code = if listing.unreachable.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(3) };
    if args.json {
        say!("{}", serde_json::to_string(&listing)?);
        return Ok(code);
    }
    // Said on the listing itself, not only among warnings: "no" would be
    // a guess.
    for problem in &listing.pins_unreadable {
        say!("pins unreadable ({problem}): a backup marked ? may be pinned; delete refuses it without --force");
    }
    if listing.backups.is_empty() {
        say!("No backups in {}", engine.settings.backups.display());
        return Ok(code);
    }
    let width = listing.backups.iter().map(|b| b.name.to_string().len()).max().unwrap_or(4).max(4);
    let several = !engine.settings.destinations.is_empty();
    let header = format!(
        "{:width$}  {:9}  {:>10}  {:20}  {:9}  {:6}{}",
        "NAME",
        "TYPE",
        "SIZE",
        "CREATED (UTC)",
        "ENCRYPTED",
        "PINNED",
        if several { "  WHERE" } else { "" }
    );
    say!("{}", header.trim_end());
    for b in &listing.backups {
        let created = b
            .created_at
            .map_or_else(|| "-".to_owned(), |t| backup_domain::timefmt::to_iso_millis(t)[..19].replace('T', " "));
        let encrypted = if b.encrypted { "yes" } else { "no" };
        let pinned = match (b.pinned, b.pins_unreadable) {
            (true, _) => "yes",
            (false, true) => "?",
            (false, false) => "no",
        };
        let places = if several { format!("  {}", b.locations.join(", ")) } else { String::new() };
        let line = format!(
            "{:width$}  {:9}  {:>10}  {:20}  {encrypted:9}  {pinned:6}{places}",
            b.name.to_string(),
            b.kind.to_string(),
            human_size(b.size),
            created
        );
        say!("{}", line.trim_end());
    }
    Ok(code)
}
