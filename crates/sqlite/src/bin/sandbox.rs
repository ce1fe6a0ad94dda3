//! The sandbox child alone, for this crate's tests: `framerr-backup` is
//! its own sandbox child in production.

fn main() -> std::process::ExitCode {
    backup_sqlite::child_if_asked().unwrap_or_else(|| {
        eprintln!("this program only runs as the sandbox of backup-sqlite's tests");
        std::process::ExitCode::FAILURE
    })
}
