//! Helpers for the end-to-end tests: the real `framerr-backup` binary run
//! against a copy of a Framerr instance in a temporary folder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The instance key of the fixtures (../shared/fixtures README).
pub const FIXTURE_KEY: &str = "f00dfacecafebeef0123456789abcdef00112233445566778899aabbccddeeff";
pub const FIXTURE_PASSWORD: &str = "correct horse battery";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `../shared/fixtures/framerr-0.4.1`, or `$FRAMERR_FIXTURES/framerr-0.4.1`.
pub fn fixtures() -> PathBuf {
    std::env::var_os("FRAMERR_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/fixtures"))
        .join("framerr-0.4.1")
}

pub fn golden() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(fixtures().join("golden.json")).unwrap()).unwrap()
}

/// The binary, built once per test process.
pub fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "backup-cli", "--bin", "framerr-backup"])
            .current_dir(repo_root())
            .status()
            .unwrap();
        assert!(status.success(), "building framerr-backup failed");
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"));
        target.join("debug/framerr-backup")
    })
}

/// Copies a folder tree, making everything writable (the fixtures are
/// read-only).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            let mut perms = std::fs::metadata(&target).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            std::fs::set_permissions(&target, perms).unwrap();
        }
    }
}

/// A Framerr instance laid out as a `DATA_DIR` in a temporary folder.
#[derive(Debug)]
pub struct Instance {
    pub dir: tempfile::TempDir,
    pub key: Option<String>,
}

impl Instance {
    /// A copy of the fixtures' `instance-plain`.
    pub fn from_fixture() -> Self {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&fixtures().join("instance-plain"), &dir.path().join("data"));
        Instance { dir, key: Some(FIXTURE_KEY.into()) }
    }

    pub fn empty() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        Instance { dir, key: None }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn db(&self) -> PathBuf {
        self.data().join("framerr.db")
    }

    pub fn backups(&self) -> PathBuf {
        self.data().join("backups")
    }

    /// The binary with this instance's environment and no other Framerr
    /// settings leaking in from the caller's.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(binary());
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("DATA_DIR", self.data())
            .env("FRAMERR_CONFIG_DIR", self.dir.path().join("no-docker-config"))
            .env_remove("FRAMERR_DB_PATH")
            .env_remove("FRAMERR_BACKUPS_DIR")
            .env_remove("SECRET_ENCRYPTION_KEY");
        if let Some(key) = &self.key {
            cmd.env("SECRET_ENCRYPTION_KEY", key);
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs, expecting success; returns standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs, expecting failure; returns standard error.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "{args:?} succeeded: {}", String::from_utf8_lossy(&out.stdout));
        String::from_utf8(out.stderr).unwrap()
    }

    /// File names in the backups folder, hidden ones included.
    pub fn backup_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.backups())
            .map(|rd| rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// Runs python3 (the venv from `cargo xtask tools` when there is one).
pub fn python() -> Command {
    let venv = std::env::var_os("FRAMERR_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/tools/venv/bin/python"));
    Command::new(if venv.exists() { venv } else { PathBuf::from("python3") })
}

/// Runs a python script with arguments; returns its standard output.
pub fn python_ok(script: &str, args: &[&Path]) -> String {
    let out = python().arg("-c").arg(script).args(args).output().unwrap();
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}
