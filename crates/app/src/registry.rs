//! Destinations by URL scheme. A new kind of destination is one adapter
//! crate and one line in [`Registry::with_defaults`].

use std::sync::Arc;

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

fn open_file(url: &str) -> Result<Arc<dyn BackupStore>, String> {
    let path = url.strip_prefix("file://").unwrap_or_default();
    if !path.starts_with('/') {
        return Err(format!("invalid destination {url:?}: file:// needs an absolute path (file:///mnt/backups)"));
    }
    Ok(Arc::new(backup_store_fs::FsStore::new(path)))
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
        assert!(registry.open("s3://bucket/prefix?region=eu-west-1").is_ok());
    }
}
