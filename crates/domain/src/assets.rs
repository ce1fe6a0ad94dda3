//! The three folders of uploaded images a backup carries (spec sections 1
//! and 3): one type for the folder, used by the archive (its entry prefix),
//! the manifest (whether it existed) and the instance (where it lives).

use std::fmt;
use std::path::{Path, PathBuf};

/// An asset folder of a Framerr instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AssetFolder {
    ProfilePictures,
    CustomIcons,
    Favicon,
}

impl AssetFolder {
    pub const ALL: [AssetFolder; 3] = [AssetFolder::ProfilePictures, AssetFolder::CustomIcons, AssetFolder::Favicon];

    /// The folder's name inside the archive: its files are `<prefix>/<file>`.
    pub fn prefix(self) -> &'static str {
        match self {
            AssetFolder::ProfilePictures => "profile-pictures",
            AssetFolder::CustomIcons => "custom-icons",
            AssetFolder::Favicon => "favicon",
        }
    }

    /// Where the folder lives under the data folder (or `/config`).
    pub fn relative_path(self) -> &'static str {
        match self {
            AssetFolder::ProfilePictures => "upload/profile-pictures",
            AssetFolder::CustomIcons => "upload/custom-icons",
            AssetFolder::Favicon => "public/favicon",
        }
    }

    pub fn from_prefix(prefix: &str) -> Option<AssetFolder> {
        AssetFolder::ALL.into_iter().find(|f| f.prefix() == prefix)
    }
}

impl fmt::Display for AssetFolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.prefix())
    }
}

/// Where each asset folder of an instance lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetPaths([PathBuf; 3]);

impl AssetPaths {
    /// Framerr's layout under a root (the data folder, or `/config` in
    /// Docker): spec section 1.
    pub fn under(root: &Path) -> Self {
        AssetPaths(AssetFolder::ALL.map(|f| root.join(f.relative_path())))
    }

    pub fn get(&self, folder: AssetFolder) -> &Path {
        &self.0[folder as usize]
    }

    pub fn iter(&self) -> impl Iterator<Item = (AssetFolder, &Path)> {
        AssetFolder::ALL.into_iter().map(|f| (f, self.get(f)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framerrs_layout() {
        let paths = AssetPaths::under(Path::new("/config"));
        assert_eq!(paths.get(AssetFolder::Favicon), Path::new("/config/public/favicon"));
        assert_eq!(paths.get(AssetFolder::CustomIcons), Path::new("/config/upload/custom-icons"));
        let prefixes: Vec<&str> = paths.iter().map(|(f, _)| f.prefix()).collect();
        assert_eq!(prefixes, ["profile-pictures", "custom-icons", "favicon"]);
        assert_eq!(AssetFolder::from_prefix("favicon"), Some(AssetFolder::Favicon));
        assert_eq!(AssetFolder::from_prefix("upload"), None);
    }
}
