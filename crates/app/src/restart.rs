//! The restart command: makes a running Framerr reload what it keeps in
//! memory after a restore wrote its database under it.

use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;

use backup_domain::restore::{RestartOutcome, Restarter};

/// How long the restart command may run (a container restart takes
/// seconds; a hung one must not hold the restore's answer).
pub const RESTART_LIMIT: Duration = Duration::from_secs(120);

/// Runs `program args…` directly: no shell, nothing from a request.
#[derive(Debug, Clone)]
pub struct CommandRestarter {
    pub argv: Vec<String>,
    pub limit: Duration,
}

#[async_trait]
impl Restarter for CommandRestarter {
    async fn restart(&self) -> RestartOutcome {
        let command = self.argv.join(" ");
        let failed = |error: String| RestartOutcome::Failed { command: command.clone(), error };
        let Some((program, args)) = self.argv.split_first() else { return failed("no command".into()) };
        let child = tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) => return failed(format!("cannot start {program}: {e}")),
        };
        match tokio::time::timeout(self.limit, child.wait_with_output()).await {
            Err(_) => failed(format!("it did not finish within {} s and was stopped", self.limit.as_secs())),
            Ok(Err(e)) => failed(e.to_string()),
            Ok(Ok(out)) if out.status.success() => RestartOutcome::Done { command },
            Ok(Ok(out)) => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
                let last: String = last.chars().take(300).collect();
                failed(if last.is_empty() { format!("{}", out.status) } else { format!("{}: {last}", out.status) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(argv: &[&str], limit: Duration) -> RestartOutcome {
        let restarter = CommandRestarter { argv: argv.iter().map(|s| (*s).to_owned()).collect(), limit };
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(restarter.restart())
    }

    #[test]
    fn outcomes_say_what_happened() {
        assert_eq!(run(&["true"], RESTART_LIMIT), RestartOutcome::Done { command: "true".into() });
        let RestartOutcome::Failed { error, .. } = run(&["sh", "-c", "echo nope >&2; exit 3"], RESTART_LIMIT) else {
            panic!("a failing command")
        };
        assert!(error.contains("3") && error.contains("nope"), "{error}");
        let RestartOutcome::Failed { error, .. } = run(&["/nonexistent/restart"], RESTART_LIMIT) else { panic!() };
        assert!(error.contains("cannot start"), "{error}");
        let RestartOutcome::Failed { error, .. } = run(&["sleep", "5"], Duration::from_millis(200)) else { panic!() };
        assert!(error.contains("did not finish"), "{error}");
    }
}
