//! Destinations by URL scheme. A new kind of destination is one adapter
//! crate and one line in [`Registry::with_defaults`].

use std::sync::Arc;

use backup_domain::KeepPolicy;
use backup_domain::ports::BackupStore;

/// Builds a store from its URL.
pub type Opener = fn(&str) -> Result<Arc<dyn BackupStore>, String>;

/// The URL schemes destinations may use.
#[derive(Debug, Clone)]
pub struct Registry {
    schemes: Vec<(&'static str, Opener)>,
}

impl Registry {
    /// `file:///path` and `s3://bucket/prefix?...`.
    pub fn with_defaults() -> Self {
        let mut registry = Registry { schemes: Vec::new() };
        registry.register("file", open_file);
        registry.register("s3", open_s3);
        registry
    }

    pub fn register(&mut self, scheme: &'static str, opener: Opener) {
        self.schemes.push((scheme, opener));
    }

    /// The store a destination URL names, and its own retention policy
    /// when the URL has `keep-last`, `keep-daily`, `keep-weekly` or
    /// `keep-monthly` parameters (they are ours; the store never sees them).
    pub fn open_destination(&self, url: &str) -> Result<(Arc<dyn BackupStore>, Option<KeepPolicy>), String> {
        let (url, keep) = split_keep(url)?;
        Ok((self.open(&url)?, keep))
    }

    /// The store a destination URL names.
    pub fn open(&self, url: &str) -> Result<Arc<dyn BackupStore>, String> {
        let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or_default();
        match self.schemes.iter().find(|(s, _)| *s == scheme) {
            Some((_, open)) => open(url),
            None => {
                let known: Vec<String> = self.schemes.iter().map(|(s, _)| format!("{s}://")).collect();
                // Only the scheme is echoed: the rest may hold a secret.
                Err(format!("invalid destination: expected one of {}, got {scheme:?}", known.join(", ")))
            }
        }
    }
}

/// Takes the `keep-*` parameters out of a destination URL. Given any, the
/// destination keeps exactly what they say (a rule not given is off; the
/// newest backup is always kept).
fn split_keep(url: &str) -> Result<(String, Option<KeepPolicy>), String> {
    let Some((base, query)) = url.split_once('?') else { return Ok((url.to_owned(), None)) };
    let mut keep: Option<KeepPolicy> = None;
    let mut seen: Vec<&str> = Vec::new();
    let mut rest = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(rule) = key.strip_prefix("keep-") else {
            rest.push(pair);
            continue;
        };
        if seen.contains(&key) {
            return Err(format!("invalid destination: {key} is given twice"));
        }
        seen.push(key);
        let policy = keep.get_or_insert_with(KeepPolicy::default);
        let slot = match rule {
            "last" => &mut policy.last,
            "daily" => &mut policy.daily,
            "weekly" => &mut policy.weekly,
            "monthly" => &mut policy.monthly,
            _ => {
                return Err(format!(
                    "invalid destination: unknown parameter {key:?} (keep-last, keep-daily, keep-weekly or keep-monthly)"
                ));
            }
        };
        *slot = value.parse::<u16>().ok().filter(|n| *n <= KeepPolicy::MAX_COUNT).ok_or_else(|| {
            format!("invalid destination: {key} must be a whole number from 0 to {}", KeepPolicy::MAX_COUNT)
        })?;
    }
    let url = if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) };
    Ok((url, keep))
}

fn open_file(url: &str) -> Result<Arc<dyn BackupStore>, String> {
    let path = url.strip_prefix("file://").unwrap_or_default();
    if !path.starts_with('/') {
        return Err(format!("invalid destination {url:?}: file:// needs an absolute path (file:///mnt/backups)"));
    }
    // A typo in a parameter must not become a folder of its own.
    if path.contains('?') || path.contains('#') {
        return Err(format!(
            "invalid destination {url:?}: file:// takes no parameters but keep-last, keep-daily, keep-weekly and keep-monthly"
        ));
    }
    let path = percent_decode(path)
        .ok_or_else(|| format!("invalid destination {url:?}: a %-escape that is not two hex digits, or not a path"))?;
    Ok(Arc::new(backup_store_fs::FsStore::new(path)))
}

/// A URL path's %-escapes decoded (`%20` is a space), as file URLs mean.
fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let text = String::from_utf8(out).ok()?;
    // A decoded NUL or line break is no folder anyone means.
    (!text.contains(['\0', '\n', '\r'])).then_some(text)
}

fn open_s3(url: &str) -> Result<Arc<dyn BackupStore>, String> {
    let config = backup_store_s3::S3Config::from_url(url).map_err(|e| e.to_string())?;
    Ok(Arc::new(backup_store_s3::S3Store::new(config).map_err(|e| e.to_string())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        let registry = Registry::with_defaults();
        assert_eq!(registry.open("file:///mnt/nas").unwrap().describe(), "file:///mnt/nas");
        assert!(registry.open("file://relative").err().unwrap().contains("absolute"));
        let err = registry.open("sftp://user:secret@host/x").err().unwrap();
        assert!(err.contains("\"sftp\"") && !err.contains("secret"), "{err}");
        assert!(registry.open("s3://bucket/prefix?region=eu-west-1&credentials=instance").is_ok());
    }

    #[test]
    fn keep_parameters_are_ours_and_checked() {
        let registry = Registry::with_defaults();
        let (store, keep) = registry.open_destination("file:///mnt/nas?keep-daily=7&keep-monthly=12").unwrap();
        assert_eq!(store.describe(), "file:///mnt/nas");
        assert_eq!(keep, Some(KeepPolicy { last: 0, daily: 7, weekly: 0, monthly: 12 }));
        let (_, keep) =
            registry.open_destination("s3://b/p?region=eu-west-1&credentials=instance&keep-last=3").unwrap();
        assert_eq!(keep, Some(KeepPolicy { last: 3, ..KeepPolicy::default() }));
        assert_eq!(
            split_keep("s3://b/p?region=x&keep-last=3&endpoint=http://h").unwrap().0,
            "s3://b/p?region=x&endpoint=http://h"
        );
        assert_eq!(registry.open_destination("file:///mnt/nas").unwrap().1, None);
        for bad in [
            "file:///x?keep-daily=-1",
            "file:///x?keep-daily=1001",
            "file:///x?keep-yearly=1",
            "file:///x?keep-last",
            "file:///x?keep-last=5&keep-last=1",
            "file:///x?keep_last=3",
            "file:///x?KEEP-LAST=1",
            "file:///x/nl%0Adir",
            "file:///x/%zz",
        ] {
            assert!(registry.open_destination(bad).is_err(), "{bad}");
        }
        assert_eq!(registry.open_destination("file:///mnt/my%20nas").unwrap().0.describe(), "file:///mnt/my nas");
    }
}
