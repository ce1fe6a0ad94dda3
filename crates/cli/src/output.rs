//! What the user sees: logs, progress, sizes.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};

use backup_domain::ports::{Progress, ProgressEvent};

pub(crate) fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FRAMERR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Progress on standard error: a bar on a terminal, plain lines otherwise
/// (one per step and per 10 percent), nothing when quiet.
pub(crate) struct ProgressReporter {
    bar: Option<ProgressBar>,
    last: Mutex<(String, u8)>,
    quiet: bool,
}

impl ProgressReporter {
    pub(crate) fn new(quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(100);
            let style = ProgressStyle::with_template("{spinner} {msg:10} [{bar:40}] {pos:>3}%")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar
        });
        ProgressReporter { bar, last: Mutex::new((String::new(), 0)), quiet }
    }
}

impl Progress for ProgressReporter {
    fn report(&self, event: ProgressEvent) {
        if self.quiet {
            return;
        }
        match (&self.bar, event) {
            (Some(bar), ProgressEvent::Progress { step, percent, .. }) => {
                bar.set_message(step);
                bar.set_position(percent.into());
            }
            (Some(bar), ProgressEvent::Complete { .. } | ProgressEvent::Error { .. }) => bar.finish_and_clear(),
            (None, ProgressEvent::Progress { step, percent, .. }) => {
                let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
                if last.0 != step || percent / 10 > last.1 / 10 {
                    eprintln!("{step} {percent}%");
                    *last = (step, percent);
                }
            }
            _ => {}
        }
    }
}

/// 1536 → "1.5 KiB".
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// Writes one line of results to standard output. When the reader has
/// gone (a closed pipe), the command ends as a Unix tool killed by SIGPIPE
/// would, with status 141, and nothing is printed about it.
pub(crate) fn line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let written = out.write_fmt(args).and_then(|()| out.write_all(b"\n"));
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        eprintln!("error: cannot write to standard output: {e}");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::human_size(0), "0 B");
        assert_eq!(super::human_size(1536), "1.5 KiB");
        assert_eq!(super::human_size(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }
}
