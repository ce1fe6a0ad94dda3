//! Settings, resolved in one place: flags over Framerr's environment
//! variables over the defaults (spec section 1).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

use backup_archive::DeflateOptions;
use backup_crypto::InstanceKey;
use backup_domain::{AssetPaths, Zone};

/// What a front (the CLI's flags, a host server's configuration) sets;
/// `None` leaves it to the environment and the defaults.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub data_dir: Option<PathBuf>,
    pub db: Option<PathBuf>,
    pub backups_dir: Option<PathBuf>,
    pub config_dir: Option<PathBuf>,
    /// Extra destinations; empty leaves them to `FRAMERR_BACKUP_DESTINATIONS`.
    pub destinations: Vec<String>,
    pub threads: Option<usize>,
    pub listen: Option<SocketAddr>,
    pub time_zone: Option<String>,
    pub upload_limit: Option<u64>,
    /// Backups keep the caches every restore deletes.
    pub full: bool,
    /// Notification targets; empty leaves them to `FRAMERR_BACKUP_NOTIFY`.
    pub notify: Vec<String>,
    /// Reverse proxies whose `X-Forwarded-For` is believed; empty leaves
    /// them to `FRAMERR_BACKUP_TRUSTED_PROXIES`.
    pub trusted_proxies: Vec<String>,
    /// Framerr's own address, for relaying its realtime stream; `None`
    /// leaves it to `FRAMERR_URL`.
    pub framerr_url: Option<String>,
    /// Run after a restore written under a running Framerr; `None` leaves
    /// it to `FRAMERR_BACKUP_RESTART_COMMAND`.
    pub restart_command: Option<String>,
}

/// Everything the engine is built from.
#[derive(Clone)]
pub struct Settings {
    pub db: PathBuf,
    pub backups: PathBuf,
    pub assets: AssetPaths,
    /// Caches Framerr rebuilds; deleted after a restore.
    pub caches: Vec<PathBuf>,
    pub key: Option<InstanceKey>,
    pub deflate: DeflateOptions,
    /// Extra destinations, as URLs.
    pub destinations: Vec<String>,
    pub listen: SocketAddr,
    pub zone: Zone,
    /// `Authorization: Bearer` for headless API use.
    pub bearer_token: Option<Arc<Zeroizing<String>>>,
    pub upload_limit: u64,
    /// How long a command waits for another process's backup or restore.
    pub lock_wait: Duration,
    /// Backups keep the caches (media library, monitor history): the
    /// `--full` flag, or `FRAMERR_BACKUP_FULL=true`. Never the sessions.
    pub full: bool,
    /// Where notices go (URLs with secrets: never logged as they are).
    pub notify: Vec<String>,
    /// `FRAMERR_BACKUP_METRICS_TOKEN`: lets a scraper read `/metrics` only.
    pub metrics_token: Option<Arc<Zeroizing<String>>>,
    /// Peers whose `X-Forwarded-For` names the client (loopback always).
    pub trusted_proxies: backup_http::TrustedProxies,
    /// `FRAMERR_URL`: Framerr's own address; its realtime stream is relayed
    /// with our backup events when set.
    pub framerr_url: Option<backup_http::FramerrUrl>,
    /// What was set but could not be used, for the front to show.
    pub warnings: Vec<String>,
    /// The program and its arguments that make a running Framerr reload
    /// after a restore under it (`docker restart framerr`); run as they
    /// are, through no shell.
    pub restart_command: Option<Vec<String>>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("db", &self.db)
            .field("backups", &self.backups)
            .field("key", &self.key.is_some())
            .field("listen", &self.listen)
            .field("zone", &self.zone)
            .field("bearer_token", &self.bearer_token.is_some())
            .finish_non_exhaustive()
    }
}

/// A setting that cannot be used. Never repeats a secret's value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    #[error(transparent)]
    Key(#[from] backup_crypto::BadKey),
    #[error("PORT must be a port number, not {0:?}")]
    Port(String),
    #[error(transparent)]
    Zone(#[from] backup_domain::schedule::UnknownZone),
    #[error("trusted proxies: {0}")]
    Proxies(String),
    #[error("Framerr's address (--framerr-url, FRAMERR_URL) {0}")]
    FramerrUrl(String),
    #[error("the restart command: {0}")]
    RestartCommand(String),
}

/// Framerr's own port is 3001: the two run side by side on one host
/// network or one machine.
pub const DEFAULT_PORT: u16 = 3002;
pub const DEFAULT_UPLOAD_LIMIT: u64 = 1 << 30;
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(10);

impl Settings {
    /// Resolves `flags` over the process environment.
    pub fn resolve(flags: &Flags) -> Result<Settings, SettingsError> {
        Self::resolve_with(flags, |name| std::env::var(name).ok())
    }

    /// Resolves `flags` over `env` (a variable's value by name).
    pub fn resolve_with(flags: &Flags, env: impl Fn(&str) -> Option<String>) -> Result<Settings, SettingsError> {
        let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let path = |name: &str| var(name).map(PathBuf::from);
        let data = flags.data_dir.clone().or_else(|| path("DATA_DIR")).unwrap_or_else(|| PathBuf::from("data"));
        let config =
            flags.config_dir.clone().or_else(|| path("FRAMERR_CONFIG_DIR")).unwrap_or_else(|| PathBuf::from("/config"));
        // Framerr picks the Docker layout when /config exists.
        let root = if config.is_dir() { config } else { data.clone() };
        let db = flags.db.clone().or_else(|| path("FRAMERR_DB_PATH")).unwrap_or_else(|| data.join("framerr.db"));
        let backups =
            flags.backups_dir.clone().or_else(|| path("FRAMERR_BACKUPS_DIR")).unwrap_or_else(|| root.join("backups"));
        let key = match var("SECRET_ENCRYPTION_KEY") {
            Some(hex) => Some(InstanceKey::from_hex(&hex)?),
            None => None,
        };
        let mut deflate = DeflateOptions::default();
        if let Some(threads) = flags.threads {
            deflate.threads = threads.max(1);
        }
        let destinations = if flags.destinations.is_empty() {
            var("FRAMERR_BACKUP_DESTINATIONS")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_owned)
                .collect()
        } else {
            flags.destinations.clone()
        };
        let listen = match flags.listen {
            Some(addr) => addr,
            None => {
                let port = match var("PORT") {
                    Some(p) => p.trim().parse().map_err(|_| SettingsError::Port(p))?,
                    None => DEFAULT_PORT,
                };
                SocketAddr::from(([0, 0, 0, 0], port))
            }
        };
        let mut warnings = Vec::new();
        // A flag is what the user asked for here: wrong is an error. `TZ` is
        // the machine's, read by every program: a value we cannot read must
        // not stop a backup, so it is UTC with a warning.
        let zone = match (flags.time_zone.clone(), var("TZ")) {
            (Some(name), _) => Zone::named(name.trim_start_matches(':'))?,
            (None, Some(tz)) => match Zone::from_tz(&resolve_localtime(&tz)) {
                Ok(zone) => zone,
                Err(e) => {
                    warnings.push(format!("{e}: TZ is ignored and times are in UTC"));
                    Zone::utc()
                }
            },
            (None, None) => Zone::utc(),
        };
        let bearer_token = var("FRAMERR_BACKUP_TOKEN").map(|t| Arc::new(Zeroizing::new(t)));
        let proxies = match flags.trusted_proxies.is_empty() {
            true => var("FRAMERR_BACKUP_TRUSTED_PROXIES").unwrap_or_default(),
            false => flags.trusted_proxies.join(","),
        };
        let trusted_proxies = backup_http::TrustedProxies::parse(&proxies).map_err(SettingsError::Proxies)?;
        let framerr_url = match flags.framerr_url.clone().or_else(|| var("FRAMERR_URL")) {
            Some(url) => Some(backup_http::FramerrUrl::parse(&url).map_err(SettingsError::FramerrUrl)?),
            None => None,
        };
        let restart_command = match flags.restart_command.clone().or_else(|| var("FRAMERR_BACKUP_RESTART_COMMAND")) {
            Some(text) => Some(split_command(&text).map_err(SettingsError::RestartCommand)?),
            None => None,
        };
        Ok(Settings {
            assets: AssetPaths::under(&root),
            caches: vec![data.join("cache/library"), data.join("cache/images")],
            db,
            backups,
            key,
            deflate,
            destinations,
            listen,
            zone,
            bearer_token,
            upload_limit: flags.upload_limit.unwrap_or(DEFAULT_UPLOAD_LIMIT),
            lock_wait: DEFAULT_LOCK_WAIT,
            warnings,
            full: flags.full || var("FRAMERR_BACKUP_FULL").is_some_and(|v| matches!(v.trim(), "1" | "true" | "yes")),
            metrics_token: var("FRAMERR_BACKUP_METRICS_TOKEN").map(|t| Arc::new(Zeroizing::new(t))),
            trusted_proxies,
            framerr_url,
            restart_command,
            notify: if flags.notify.is_empty() {
                split_urls(&var("FRAMERR_BACKUP_NOTIFY").unwrap_or_default())
            } else {
                flags.notify.clone()
            },
        })
    }
}

/// Splits a command line into a program and its arguments, as a shell
/// would for plain words and quotes ('…' and "…"), and nothing else: no
/// variables, globs or operators, since no shell runs it.
pub(crate) fn split_command(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_default().push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_default();
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_default().push(c),
        }
    }
    if quote.is_some() {
        return Err(format!("a quote is not closed in {text:?}"));
    }
    words.extend(word);
    if words.is_empty() {
        return Err("it is empty".into());
    }
    Ok(words)
}

/// `TZ=:/etc/localtime` (or any path that is a link into a zoneinfo
/// folder) names the zone its link points to.
fn resolve_localtime(tz: &str) -> String {
    let path = tz.trim().trim_start_matches(':');
    if path.starts_with('/')
        && !path.contains("zoneinfo/")
        && let Ok(target) = std::fs::read_link(path)
    {
        return target.display().to_string();
    }
    tz.to_owned()
}

/// Splits a comma-separated list of URLs; a comma inside a URL (as in
/// `?on=success,failure`) stays in it: a new item starts only where the
/// text after a comma is itself a URL.
pub(crate) fn split_urls(text: &str) -> Vec<String> {
    let mut urls: Vec<String> = Vec::new();
    for piece in text.split(',') {
        let starts_url = piece.trim().split_once("://").is_some_and(|(scheme, _)| {
            !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-')
        });
        match urls.last_mut() {
            Some(last) if !starts_url => {
                last.push(',');
                last.push_str(piece.trim_end());
            }
            _ if piece.trim().is_empty() => {}
            _ => urls.push(piece.trim().to_owned()),
        }
    }
    urls
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(flags: &Flags, vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        Settings::resolve_with(flags, |name| vars.get(name).cloned())
    }

    #[test]
    fn tz_from_the_environment_never_stops_a_command() {
        let posix = resolve(&Flags::default(), &[("TZ", "CET-1CEST,M3.5.0,M10.5.0/3")]).unwrap();
        assert_eq!(posix.zone.name(), "CET-1CEST,M3.5.0,M10.5.0/3");
        assert!(posix.warnings.is_empty());
        let path = resolve(&Flags::default(), &[("TZ", "/usr/share/zoneinfo/Asia/Tokyo")]).unwrap();
        assert_eq!(path.zone.name(), "Asia/Tokyo");
        let odd = resolve(&Flags::default(), &[("TZ", "Nowhere/Special")]).unwrap();
        assert_eq!(odd.zone.name(), "UTC");
        assert!(odd.warnings[0].contains("Nowhere/Special"), "{:?}", odd.warnings);
        let flag = Flags { time_zone: Some("Nowhere/Special".into()), ..Flags::default() };
        assert!(resolve(&flag, &[]).is_err(), "a flag is meant: wrong is an error");
    }

    #[test]
    fn trusted_proxies_from_flags_over_the_environment_and_a_bad_one_stops() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let env = [("FRAMERR_BACKUP_TRUSTED_PROXIES", "172.18.0.0/16")];
        assert!(resolve(&Flags::default(), &env).unwrap().trusted_proxies.trusts(ip("172.18.0.9")));
        let flags = Flags { trusted_proxies: vec!["10.0.0.5".into()], ..Flags::default() };
        let s = resolve(&flags, &env).unwrap();
        assert!(s.trusted_proxies.trusts(ip("10.0.0.5")) && !s.trusted_proxies.trusts(ip("172.18.0.9")));
        let err = resolve(&Flags::default(), &[("FRAMERR_BACKUP_TRUSTED_PROXIES", "proxy.lan")]).err().unwrap();
        assert!(err.to_string().contains("proxy.lan"), "{err}");
    }

    #[test]
    fn restart_commands_split_into_words_with_no_shell() {
        let words = |t: &str| split_command(t).unwrap();
        assert_eq!(words("docker restart framerr"), ["docker", "restart", "framerr"]);
        assert_eq!(
            words("  systemctl  restart 'framerr web'.service "),
            ["systemctl", "restart", "framerr web.service"]
        );
        assert_eq!(words(r#"sh -c "echo $HOME; rm -rf /" ''"#), ["sh", "-c", "echo $HOME; rm -rf /", ""]);
        assert!(split_command("docker 'restart").is_err() && split_command("   ").is_err());
        let s = resolve(&Flags::default(), &[("FRAMERR_BACKUP_RESTART_COMMAND", "docker restart framerr")]).unwrap();
        assert_eq!(s.restart_command.unwrap(), ["docker", "restart", "framerr"]);
        let flags = Flags { restart_command: Some("podman restart f".into()), ..Flags::default() };
        let s = resolve(&flags, &[("FRAMERR_BACKUP_RESTART_COMMAND", "docker restart framerr")]).unwrap();
        assert_eq!(s.restart_command.unwrap(), ["podman", "restart", "f"]);
        assert!(resolve(&Flags::default(), &[]).unwrap().restart_command.is_none());
    }

    #[test]
    fn framerr_url_from_the_flag_over_the_environment_and_a_bad_one_stops() {
        assert!(resolve(&Flags::default(), &[]).unwrap().framerr_url.is_none());
        let env = [("FRAMERR_URL", "http://framerr:3000")];
        let s = resolve(&Flags::default(), &env).unwrap();
        assert_eq!(s.framerr_url.map(|u| u.to_string()).as_deref(), Some("http://framerr:3000/"));
        let flags = Flags { framerr_url: Some("https://home.lan/framerr".into()), ..Flags::default() };
        let s = resolve(&flags, &env).unwrap();
        assert_eq!(s.framerr_url.map(|u| u.to_string()).as_deref(), Some("https://home.lan/framerr"));
        for bad in ["framerr:3000", "http://admin:hunter2@framerr:3000", "http://framerr:3000/?x=1"] {
            let err = resolve(&Flags::default(), &[("FRAMERR_URL", bad)]).err().unwrap().to_string();
            assert!(err.contains("FRAMERR_URL") && !err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn notification_lists_split_between_urls_only() {
        assert_eq!(
            split_urls(
                "ntfy://ntfy.sh/a?on=success,failure, https://hc-ping.com/x,webhook+http://h/p?on=start,failure"
            ),
            ["ntfy://ntfy.sh/a?on=success,failure", "https://hc-ping.com/x", "webhook+http://h/p?on=start,failure"]
        );
        assert!(split_urls("").is_empty());
        assert!(split_urls(" , ").is_empty());
    }

    #[test]
    fn flags_over_environment_over_defaults() {
        let none = Flags { config_dir: Some("/nonexistent-config".into()), ..Flags::default() };
        let s = resolve(&none, &[]).unwrap();
        assert_eq!(
            (s.db.as_path(), s.backups.as_path()),
            (std::path::Path::new("data/framerr.db"), std::path::Path::new("data/backups"))
        );
        assert_eq!(s.listen.port(), 3002);
        assert_eq!(s.zone.name(), "UTC");
        assert!(s.key.is_none() && s.bearer_token.is_none() && s.destinations.is_empty());

        let env = [
            ("DATA_DIR", "/srv/framerr"),
            ("PORT", "8080"),
            ("TZ", ":Europe/Berlin"),
            ("FRAMERR_BACKUP_TOKEN", "t0ken"),
            ("FRAMERR_BACKUP_DESTINATIONS", " file:///a , s3://b/c ,"),
            ("SECRET_ENCRYPTION_KEY", "f00dfacecafebeef0123456789abcdef00112233445566778899aabbccddeeff"),
        ];
        let s = resolve(&none, &env).unwrap();
        assert_eq!(s.db, PathBuf::from("/srv/framerr/framerr.db"));
        assert_eq!(s.listen.port(), 8080);
        assert_eq!(s.zone.name(), "Europe/Berlin");
        assert_eq!(s.destinations, ["file:///a", "s3://b/c"]);
        assert!(s.key.is_some() && s.bearer_token.is_some());
        assert!(!format!("{s:?}").contains("t0ken"));

        let flags = Flags {
            data_dir: Some("/x".into()),
            destinations: vec!["file:///only".into()],
            listen: Some("127.0.0.1:9".parse().unwrap()),
            ..none.clone()
        };
        let s = resolve(&flags, &env).unwrap();
        assert_eq!(
            (s.db, s.destinations, s.listen.port()),
            (PathBuf::from("/x/framerr.db"), vec!["file:///only".to_owned()], 9)
        );

        let err = resolve(&none, &[("PORT", "http")]).unwrap_err().to_string();
        assert!(err.contains("PORT"), "{err}");
        let err = resolve(&none, &[("SECRET_ENCRYPTION_KEY", "deadbeef")]).unwrap_err().to_string();
        assert!(!err.contains("deadbeef"), "{err}");
    }
}
