//! `cargo xtask <task>`: the project's own automation, std-only.
//!
//! - `ci`: everything CI checks: fmt, clippy, the tests, cargo-deny.
//! - `tools`: installs the helper tools the tests use, into `target/tools`.
//! - `bench`: the benchmarks (see docs/PERFORMANCE.md).
//! - `fuzz`: every fuzz target for a bounded time (see fuzz/README.md).
//! - `image`: the container image, `localhost/framerr-backup:dev` (see image.rs).

mod bench;
mod fuzz;
mod image;
mod load;
mod soak;
mod tools;

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("tools") => tools::install_all().map(|_| ()),
        Some("bench") => bench::run(&args[1..]),
        Some("fuzz") => fuzz::run_all(&args[1..]),
        Some("image") => image::build().map(|_| ()),
        _ => {
            eprintln!("usage: cargo xtask <ci|tools|bench [options]|fuzz [--seconds N]|image>");
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

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout == b"0\n")
}

fn ci() -> Result {
    let tools = tools::install_all()?;
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    let mut test = cargo();
    test.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
    // Tests that need root (a tmpfs for a real full disk, another user for
    // an unreadable file) are ignored elsewhere, with their reason; CI runs
    // as root and runs them.
    if is_root() {
        test.args(["--run-ignored", "all"]);
    }
    tools.apply(&mut test);
    let mut counts = Counts::default();
    let tests = run_counting(&mut test, &mut counts, Runner::Nextest);
    // Doc tests: nextest does not run them.
    let docs = run_counting(cargo().args(["test", "--workspace", "--doc"]), &mut counts, Runner::Libtest);
    // The advisories check needs a database fetched from the internet, which
    // this environment cannot reach; the other checks work offline.
    let deny = run(Command::new(&tools.cargo_deny).args(["deny", "check", "licenses", "bans", "sources"]));
    // A short budget per target; `cargo xtask fuzz --seconds N` for longer.
    let fuzzed = fuzz::run_all(&["--seconds".into(), "60".into()]);
    // The last line: every test that ran, counted once.
    println!("{} passed, {} failed", counts.passed, counts.failed);
    tests.and(docs).and(deny).and(fuzzed)
}

/// Tests counted from the runners' own summaries.
#[derive(Debug, Default)]
struct Counts {
    passed: u64,
    failed: u64,
}

/// Whose summary lines to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Runner {
    /// `Summary [..] 141 tests run: 139 passed, 2 failed, 0 skipped` (the
    /// libtest lines inside a failed test's output are not counted again).
    Nextest,
    /// `test result: ok. 3 passed; 0 failed; 0 ignored; ...`.
    Libtest,
}

impl Counts {
    fn scan(&mut self, line: &str, runner: Runner) {
        let summary = match runner {
            Runner::Nextest => line.trim_start().starts_with("Summary [") && line.contains(" run: "),
            Runner::Libtest => line.trim_start().starts_with("test result:"),
        };
        if !summary {
            return;
        }
        let words: Vec<&str> = line.split([',', ';', ':']).collect();
        for part in words {
            let mut it = part.split_whitespace();
            if let (Some(n), Some(what)) = (it.next().and_then(|n| n.parse::<u64>().ok()), it.next()) {
                match what {
                    "passed" => self.passed += n,
                    "failed" | "timed" => self.failed += n,
                    _ => {}
                }
            }
        }
    }
}

/// Runs a command, passing its output through and counting its tests.
fn run_counting(cmd: &mut Command, counts: &mut Counts, runner: Runner) -> Result {
    use std::io::{BufRead, BufReader};
    eprintln!("$ {cmd:?}");
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let tx2 = tx.clone();
    let out = std::thread::spawn(move || {
        for line in stdout.map(BufReader::new).into_iter().flat_map(|r| r.lines()).map_while(std::result::Result::ok) {
            println!("{line}");
            let _ = tx.send(line);
        }
    });
    let err = std::thread::spawn(move || {
        for line in stderr.map(BufReader::new).into_iter().flat_map(|r| r.lines()).map_while(std::result::Result::ok) {
            eprintln!("{line}");
            let _ = tx2.send(line);
        }
    });
    let status = child.wait().map_err(|e| e.to_string())?;
    let _ = (out.join(), err.join());
    for line in rx.try_iter() {
        counts.scan(&line, runner);
    }
    if status.success() { Ok(()) } else { Err(format!("{cmd:?} failed: {status}")) }
}
