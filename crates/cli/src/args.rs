//! The command line, as parsed; nothing here reads the environment or the
//! disk beyond what clap does. `settings` turns it into resolved settings.

use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "framerr-backup", version, about = "Back up and restore a Framerr dashboard", max_term_width = 100)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Where things are. Framerr's environment variables are read too; flags
/// win over them.
#[derive(Debug, ClapArgs)]
pub(crate) struct Global {
    /// Framerr's data folder [env: DATA_DIR; default: data]
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// The database [env: FRAMERR_DB_PATH; default: DATA_DIR/framerr.db]
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) db: Option<PathBuf>,
    /// The backups folder [env: FRAMERR_BACKUPS_DIR; default: /config/backups
    /// in Docker, else DATA_DIR/backups]
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) backups_dir: Option<PathBuf>,
    /// The Docker config folder; its layout is used when it exists
    /// [env: FRAMERR_CONFIG_DIR; default: /config]
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) config_dir: Option<PathBuf>,
    /// An extra place to copy every backup to, as a URL: s3://bucket/prefix?endpoint=..&region=..
    /// or file:///mnt/nas/backups (repeatable) [env: FRAMERR_BACKUP_DESTINATIONS, comma-separated]
    #[arg(long = "destination", global = true, value_name = "URL")]
    pub(crate) destinations: Vec<String>,
    /// Where to send notices of failed backups, copies and verifications
    /// and of an overdue schedule: ntfy://host/topic, https://hc-ping.com/UUID
    /// or any http(s) webhook URL; ?on=start,success,failure picks events
    /// (repeatable) [env: FRAMERR_BACKUP_NOTIFY, comma-separated]
    #[arg(long = "notify", global = true, value_name = "URL")]
    pub(crate) notify: Vec<String>,
    /// Compression threads [default: the cores this process may use, a
    /// container's CPU quota included]
    #[arg(long, global = true, value_name = "N")]
    pub(crate) threads: Option<usize>,
    /// More log output (repeat for more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Make a backup in the backups folder, or stream one elsewhere
    Create(CreateArgs),
    /// List the backups in the backups folder, newest first
    List(ListArgs),
    /// Delete a backup from the backups folder and every destination
    Delete(DeleteArgs),
    /// Keep a backup out of retention's reach, everywhere, until unpinned
    Pin(PinArgs),
    /// Let retention treat a pinned backup like any other again
    Unpin(PinArgs),
    /// Apply retention now in every destination; with --dry-run, only show
    /// what it would delete and why each kept backup is kept
    Prune(PruneArgs),
    /// Check a backup completely: ZIP structure, every checksum, and the
    /// database's integrity
    Verify(VerifyArgs),
    /// Restore a backup over this instance, after a safety backup of the
    /// current state
    Restore(RestoreArgs),
    /// Backup encryption: status, enable, disable, reset-password
    #[command(subcommand)]
    Encryption(EncryptionCommand),
    /// Serve Framerr's backup API and run the backup schedule
    Serve(ServeArgs),
    /// The backup schedule this server runs, and Framerr's own
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Exit 0 when the server on this machine (PORT, or --listen) answers
    /// and no backup is overdue or failed its verification: a container's
    /// healthcheck, with no shell or curl needed
    Health(HealthArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct HealthArgs {
    /// Say nothing; the exit code is the answer
    #[arg(long, short)]
    pub(crate) quiet: bool,
    /// The address the server listens on [default: 0.0.0.0:$PORT]
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ScheduleCommand {
    /// This server's schedule, its next run, and whether Framerr's own
    /// scheduler is on too
    Status {
        /// Time zone of the schedule's hour, an IANA name [env: TZ; default: UTC]
        #[arg(long, value_name = "ZONE")]
        time_zone: Option<String>,
    },
    /// Turn Framerr's own backup schedule off (from Framerr's next start),
    /// so that only this server's scheduler runs
    DisableFramerr,
}

#[derive(Debug, ClapArgs)]
pub(crate) struct ServeArgs {
    /// Address and port to listen on [default: 0.0.0.0:$PORT, PORT defaulting to 3001]
    #[arg(long, value_name = "ADDR:PORT")]
    pub(crate) listen: Option<std::net::SocketAddr>,
    /// Time zone of the schedule's hour, an IANA name [env: TZ; default: UTC]
    #[arg(long, value_name = "ZONE")]
    pub(crate) time_zone: Option<String>,
    /// Largest accepted upload in bytes [default: 1 GiB]
    #[arg(long, value_name = "BYTES")]
    pub(crate) upload_limit: Option<u64>,
    /// Backups keep the caches every restore deletes (media library,
    /// monitor history, notifications); never sessions or tokens
    /// [env: FRAMERR_BACKUP_FULL]
    #[arg(long)]
    pub(crate) full: bool,
    /// A reverse proxy (address or network, as 172.18.0.0/16) whose
    /// X-Forwarded-For names the client, so that sign-in failures count per
    /// client and not for everyone behind it; loopback always is
    /// (repeatable) [env: FRAMERR_BACKUP_TRUSTED_PROXIES, comma-separated]
    #[arg(long = "trusted-proxy", value_name = "ADDR")]
    pub(crate) trusted_proxies: Vec<String>,
    /// Framerr's own address (http://framerr:3000): GET
    /// /api/realtime/stream then relays Framerr's realtime stream with this
    /// server's backup events in it, so Framerr's own Backups page shows
    /// them live (route that path here in the reverse proxy) [env: FRAMERR_URL]
    #[arg(long, value_name = "URL")]
    pub(crate) framerr_url: Option<String>,
    /// Run after each restore made while Framerr was running on the
    /// database, so that it reloads its settings (e.g. "docker restart
    /// framerr"); a program and its arguments, run through no shell, for at
    /// most 120 s [env: FRAMERR_BACKUP_RESTART_COMMAND]
    #[arg(long, value_name = "CMD")]
    pub(crate) restart_command: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum EncryptionCommand {
    /// Whether new backups are encrypted
    Status,
    /// Encrypt new backups with a password (at least 8 characters)
    Enable(PasswordArgs),
    /// Stop encrypting new backups (needs the current password); existing
    /// encrypted backups stay encrypted
    Disable(PasswordArgs),
    /// Set a new password without the old one (needs SECRET_ENCRYPTION_KEY)
    /// and re-header every stored encrypted backup
    ResetPassword(PasswordArgs),
}

#[derive(Debug, ClapArgs)]
pub(crate) struct PasswordArgs {
    /// Read the password from one line of standard input instead of a prompt
    #[arg(long)]
    pub(crate) password_stdin: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum KindArg {
    Manual,
    Scheduled,
    Safety,
}

#[derive(Debug, ClapArgs)]
pub(crate) struct CreateArgs {
    /// Write the backup to FILE instead of the backups folder ('-' for
    /// standard output). Nothing is saved in the backups folder and
    /// retention does not run.
    #[arg(long, short, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// The backup's type
    #[arg(long = "type", value_enum, default_value = "manual")]
    pub(crate) kind: KindArg,
    /// Print the result as JSON
    #[arg(long)]
    pub(crate) json: bool,
    /// With --output while backup encryption is on: write a plain
    /// (unencrypted) backup anyway
    #[arg(long)]
    pub(crate) plain: bool,
    /// Keep the caches every restore deletes (media library, monitor
    /// history, notifications); sessions and tokens are never kept
    #[arg(long)]
    pub(crate) full: bool,
}

#[derive(Debug, ClapArgs)]
pub(crate) struct ListArgs {
    /// Print JSON (the shape of the HTTP API's /list)
    #[arg(long)]
    pub(crate) json: bool,
}

impl Args {
    /// What the flags set, for the app's settings.
    pub(crate) fn flags(&self) -> backup_app::Flags {
        let g = &self.global;
        let serve = match &self.command {
            Command::Serve(s) => Some(s),
            _ => None,
        };
        backup_app::Flags {
            data_dir: g.data_dir.clone(),
            db: g.db.clone(),
            backups_dir: g.backups_dir.clone(),
            config_dir: g.config_dir.clone(),
            destinations: g.destinations.clone(),
            notify: g.notify.clone(),
            trusted_proxies: serve.map(|s| s.trusted_proxies.clone()).unwrap_or_default(),
            framerr_url: serve.and_then(|s| s.framerr_url.clone()),
            threads: g.threads,
            listen: match &self.command {
                Command::Health(h) => h.listen,
                _ => serve.and_then(|s| s.listen),
            },
            time_zone: match &self.command {
                Command::Schedule(ScheduleCommand::Status { time_zone }) => time_zone.clone(),
                Command::Prune(p) => p.time_zone.clone(),
                _ => serve.and_then(|s| s.time_zone.clone()),
            },
            upload_limit: serve.and_then(|s| s.upload_limit),
            full: serve.is_some_and(|s| s.full) || matches!(&self.command, Command::Create(c) if c.full),
            restart_command: match &self.command {
                Command::Restore(r) => r.restart_command.clone(),
                _ => serve.and_then(|s| s.restart_command.clone()),
            },
        }
    }
}

#[derive(Debug, ClapArgs)]
pub(crate) struct DeleteArgs {
    /// The backup's file name
    pub(crate) name: String,
    /// Allow deleting a safety or pinned backup
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, ClapArgs)]
pub(crate) struct PinArgs {
    /// The backup's file name
    pub(crate) name: String,
}

#[derive(Debug, ClapArgs)]
pub(crate) struct PruneArgs {
    /// Delete nothing: show what retention would delete, and why each kept
    /// backup is kept
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Time zone of calendar retention's days, weeks and months, an IANA
    /// name [env: TZ; default: UTC]
    #[arg(long, value_name = "ZONE")]
    pub(crate) time_zone: Option<String>,
    /// Print the result as JSON
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, ClapArgs)]
pub(crate) struct VerifyArgs {
    /// A backup name in the backups folder, or the path of a backup file
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub(crate) backup: Option<String>,
    /// Verify every stored backup in every destination; exits 1 if any
    /// fails, 2 if some could not be checked (encrypted under an earlier key, or no room or permission to check here)
    #[arg(long)]
    pub(crate) all: bool,
    /// Read the password of an encrypted backup from one line of standard
    /// input instead of a prompt
    #[arg(long)]
    pub(crate) password_stdin: bool,
    /// Print the result as JSON
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, ClapArgs)]
pub(crate) struct RestoreArgs {
    /// A backup name in the backups folder, or the path of a backup file
    pub(crate) backup: String,
    /// Do not ask for confirmation
    #[arg(long, short)]
    pub(crate) yes: bool,
    /// Refuse an archive that would expand to more than this many bytes
    /// in all [default: 20 GiB]
    #[arg(long, value_name = "BYTES")]
    pub(crate) max_size: Option<u64>,
    /// Refuse an entry that expands more than N times (a zip bomb)
    /// [default: 1000]
    #[arg(long, value_name = "N")]
    pub(crate) max_ratio: Option<u64>,
    /// Read the password of an encrypted backup from one line of standard
    /// input instead of a prompt
    #[arg(long)]
    pub(crate) password_stdin: bool,
    /// Run after the restore when Framerr was running on the database, so
    /// that it reloads its settings (as `serve --restart-command`)
    /// [env: FRAMERR_BACKUP_RESTART_COMMAND]
    #[arg(long, value_name = "CMD")]
    pub(crate) restart_command: Option<String>,
}
