//! Resolved settings: the command line over Framerr's environment
//! variables over the defaults (spec section 1).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use backup_archive::{AssetDirs, DeflateOptions};
use backup_crypto::{FieldCrypto, InstanceKey};
use backup_domain::ports::FieldCipher;

use crate::args::Global;

#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) db: PathBuf,
    pub(crate) backups: PathBuf,
    pub(crate) assets: AssetDirs,
    /// Caches Framerr rebuilds; deleted after a restore.
    pub(crate) caches: Vec<PathBuf>,
    pub(crate) key: Option<InstanceKey>,
    pub(crate) deflate: DeflateOptions,
    /// Extra destinations, as URLs.
    pub(crate) destinations: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SettingsError {
    #[error(transparent)]
    Key(#[from] backup_crypto::BadKey),
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

impl Settings {
    pub(crate) fn resolve(global: &Global) -> Result<Settings, SettingsError> {
        let data = global.data_dir.clone().or_else(|| env_path("DATA_DIR")).unwrap_or_else(|| PathBuf::from("data"));
        let config = global
            .config_dir
            .clone()
            .or_else(|| env_path("FRAMERR_CONFIG_DIR"))
            .unwrap_or_else(|| PathBuf::from("/config"));
        // Framerr picks the Docker layout when /config exists.
        let root = if config.is_dir() { config.clone() } else { data.clone() };
        let db = global.db.clone().or_else(|| env_path("FRAMERR_DB_PATH")).unwrap_or_else(|| data.join("framerr.db"));
        let backups = global
            .backups_dir
            .clone()
            .or_else(|| env_path("FRAMERR_BACKUPS_DIR"))
            .unwrap_or_else(|| root.join("backups"));
        let assets = AssetDirs {
            profile_pictures: root.join("upload/profile-pictures"),
            custom_icons: root.join("upload/custom-icons"),
            favicon: root.join("public/favicon"),
        };
        let key = match std::env::var("SECRET_ENCRYPTION_KEY") {
            Ok(hex) if !hex.trim().is_empty() => Some(InstanceKey::from_hex(&hex)?),
            _ => None,
        };
        let mut deflate = DeflateOptions::default();
        if let Some(threads) = global.threads {
            deflate.threads = threads.max(1);
        }
        let caches = vec![data.join("cache/library"), data.join("cache/images")];
        let destinations = if global.destinations.is_empty() {
            std::env::var("FRAMERR_BACKUP_DESTINATIONS")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_owned)
                .collect()
        } else {
            global.destinations.clone()
        };
        Ok(Settings { db, backups, assets, caches, key, deflate, destinations })
    }

    pub(crate) fn cipher(&self) -> Option<Arc<dyn FieldCipher>> {
        self.key.as_ref().map(|k| Arc::new(FieldCrypto::new(k)) as Arc<dyn FieldCipher>)
    }

    /// Where snapshots are staged: beside the backups, on the disk that must
    /// hold the result anyway.
    pub(crate) fn work_dir(&self) -> &Path {
        &self.backups
    }
}
