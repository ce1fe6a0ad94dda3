//! The restart command: makes a running Framerr reload what it keeps in
//! memory after a restore wrote its database under it.

use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::AsyncReadExt;

use backup_domain::restore::{RestartOutcome, Restarter};

/// How long the restart command may run (a container restart takes
/// seconds; a hung one must not hold the restore's answer).
pub const RESTART_LIMIT: Duration = Duration::from_secs(120);

/// What of its standard error is kept for the message: the end.
const KEPT: usize = 4096;

/// This program's secrets: a restart command has no use for them.
const WITHHELD: &[&str] = &[
    "SECRET_ENCRYPTION_KEY",
    "FRAMERR_BACKUP_TOKEN",
    "FRAMERR_BACKUP_METRICS_TOKEN",
    "FRAMERR_BACKUP_NOTIFY",
    "FRAMERR_BACKUP_DESTINATIONS",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// Runs `program args…` directly: no shell, nothing from a request, none of
/// this program's secrets in its environment. It runs in a process group
/// of its own, which is stopped whole past the time limit; it is done when
/// it exits, whatever it left running in the background.
#[derive(Debug, Clone)]
pub struct CommandRestarter {
    pub argv: Vec<String>,
    pub limit: Duration,
}

/// The command as a person would type it.
fn shown(argv: &[String]) -> String {
    let word = |w: &String| {
        if !w.is_empty() && !w.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
            w.clone()
        } else if w.contains('\'') {
            format!("\"{w}\"")
        } else {
            format!("'{w}'")
        }
    };
    argv.iter().map(word).collect::<Vec<_>>().join(" ")
}

#[async_trait]
impl Restarter for CommandRestarter {
    async fn restart(&self) -> RestartOutcome {
        let command = shown(&self.argv);
        let failed = |error: String| RestartOutcome::Failed { command: command.clone(), error };
        let Some((program, args)) = self.argv.split_first() else { return failed("no command".into()) };
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        for name in WITHHELD {
            cmd.env_remove(name);
        }
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => return failed(format!("cannot start {program}: {e}")),
        };
        // Only the end of standard error is kept, however much comes.
        let mut stderr = child.stderr.take();
        let tail = tokio::spawn(async move {
            let mut kept = Vec::new();
            let mut buf = vec![0; 8192];
            while let Some(Ok(n @ 1..)) = match stderr.as_mut() {
                Some(s) => Some(s.read(&mut buf).await),
                None => None,
            } {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * KEPT {
                    kept.drain(..kept.len() - KEPT);
                }
            }
            kept
        });
        let status = match tokio::time::timeout(self.limit, child.wait()).await {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => return failed(e.to_string()),
            Err(_) => {
                if let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) {
                    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
                }
                let _ = child.kill().await;
                return failed(format!("it did not finish within {} s and was stopped", self.limit.as_secs()));
            }
        };
        if status.success() {
            tail.abort();
            return RestartOutcome::Done { command };
        }
        // What it left in the background may hold the pipe open: what came
        // by now is what is told.
        let stderr = match tokio::time::timeout(Duration::from_millis(200), tail).await {
            Ok(Ok(kept)) => kept,
            _ => Vec::new(),
        };
        let stderr = String::from_utf8_lossy(&stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
        let last: String = last.chars().take(300).collect();
        failed(if last.is_empty() { format!("{status}") } else { format!("{status}: {last}") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

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
        let RestartOutcome::Failed { command, .. } = run(&["/nonexistent/a b", "c", "it's"], RESTART_LIMIT) else {
            panic!()
        };
        assert_eq!(command, r#"'/nonexistent/a b' c "it's""#);
    }

    #[test]
    fn what_it_leaves_behind_neither_holds_the_answer_nor_outlives_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        // Done at its exit, though a child it left holds its stderr.
        let started = Instant::now();
        let done = run(&["sh", "-c", "(sleep 30; echo late >&2) & exit 0"], RESTART_LIMIT);
        assert!(matches!(done, RestartOutcome::Done { .. }), "{done:?}");
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
        // Past the limit its whole process group is stopped.
        let late = dir.path().join("late");
        let script = format!("sh -c 'sleep 2; touch {}' & sleep 1000", late.display());
        let stopped = run(&["sh", "-c", &script], Duration::from_millis(300));
        assert!(matches!(stopped, RestartOutcome::Failed { .. }), "{stopped:?}");
        std::thread::sleep(Duration::from_secs(3));
        assert!(!late.exists(), "a process it started outlived the limit");
        // Megabytes of standard error: only the end is kept.
        let script = r"head -c 20000000 /dev/zero | tr '\0' x >&2; echo >&2; echo the end >&2; exit 1";
        let noisy = run(&["sh", "-c", script], RESTART_LIMIT);
        let RestartOutcome::Failed { error, .. } = noisy else { panic!("{noisy:?}") };
        assert!(error.ends_with("the end") && error.len() < 400, "{}", error.len());
    }
}
