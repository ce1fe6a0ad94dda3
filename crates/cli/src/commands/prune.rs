use std::process::ExitCode;

use backup_app::Engine;
use serde_json::json;

use super::CliResult;
use crate::args::PruneArgs;

pub(crate) async fn run(engine: &Engine, args: PruneArgs) -> CliResult {
    let done = engine.creator.prune(args.dry_run).await?;
    let failed = done.iter().any(|p| p.outcome.error.is_some() || !p.outcome.failed.is_empty());
    let code = if failed { ExitCode::from(1) } else { ExitCode::SUCCESS };
    if args.json {
        say!("{}", serde_json::to_string_pretty(&json!({ "dryRun": args.dry_run, "destinations": done }))?);
        return Ok(code);
    }
    let verb = if args.dry_run { "would delete" } else { "deleted" };
    for pruned in &done {
        let (place, o) = (&pruned.destination, &pruned.outcome);
        match (&o.error, o.policy) {
            (Some(e), _) => {
                say!("{place}: retention did not run: {e}");
                continue;
            }
            (None, None) => {
                say!("{place}: no retention policy (no schedule saved), everything is kept");
                continue;
            }
            (None, Some(policy)) => say!("{place}: keep {policy} (zone {})", engine.settings.zone.name()),
        }
        for name in &o.deleted {
            say!("  {verb:12}  {name}");
        }
        for (name, e) in &o.failed {
            say!("  {:12}  {name}: {e}", "FAILED");
        }
        for kept in &o.kept {
            let why: Vec<String> = kept.reasons.iter().map(ToString::to_string).collect();
            say!("  {:12}  {}  ({})", "keep", kept.name, why.join(", "));
        }
    }
    Ok(code)
}
