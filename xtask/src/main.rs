//! `cargo xtask <task>`: the project's own automation, std-only.
//!
//! - `ci`: everything CI checks: fmt, clippy, the tests, cargo-deny.
//! - `tools`: installs the helper tools the tests use, into `target/tools`.
//! - `bench`: the benchmarks (see docs/PERFORMANCE.md).

mod bench;
mod load;
mod tools;

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("tools") => tools::install_all().map(|_| ()),
        Some("bench") => bench::run(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask <ci|tools|bench [options]>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) type Result<T = ()> = std::result::Result<T, String>;

/// Runs a command, failing with its description if it does not succeed.
pub(crate) fn run(cmd: &mut Command) -> Result {
    eprintln!("$ {cmd:?}");
    let status = cmd.status().map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{cmd:?} failed: {status}")) }
}

pub(crate) fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn ci() -> Result {
    let tools = tools::install_all()?;
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    let mut test = cargo();
    test.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
    tools.apply(&mut test);
    run(&mut test)?;
    // Doc tests: nextest does not run them.
    run(cargo().args(["test", "--workspace", "--doc", "--quiet"]))?;
    // The advisories check needs a database fetched from the internet, which
    // this environment cannot reach; the other checks work offline.
    run(Command::new(&tools.cargo_deny).args(["deny", "check", "licenses", "bans", "sources"]))?;
    Ok(())
}
