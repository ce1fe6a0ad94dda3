//! `cargo xtask fuzz [--seconds N]`: every fuzz target for N seconds (60 by
//! default), each seeded from the Framerr fixtures. A crash fails the run;
//! libFuzzer saves it under `fuzz/artifacts/<target>/`, and a copy in
//! `fuzz/regressions/<target>/` is replayed by every test run.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Result, run};

const TARGETS: [(&str, &[&str]); 3] = [
    (
        "zip_reader",
        &["backups/framerr-manual-2026-11-26T22-17-29.zip", "framerr-manual-2026-11-26T22-17-29.decrypted.zip"],
    ),
    ("envelope_header", &["backups/framerr-manual-2026-11-26T22-17-29.framerr-backup"]),
    ("manifest", &["framerr-manual-2026-11-26T22-17-29.manifest.json"]),
];

fn fixtures() -> PathBuf {
    std::env::var_os("FRAMERR_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::tools::root().join("../shared/fixtures"))
        .join("framerr-0.4.1")
}

/// cargo-fuzz, installed once into `target/tools`.
fn cargo_fuzz() -> Result<PathBuf> {
    let root = crate::tools::root().join("target/tools");
    let bin = root.join("bin/cargo-fuzz");
    if !bin.exists() {
        run(crate::cargo().args(["install", "cargo-fuzz", "--version", "0.13.2", "--locked", "--root"]).arg(&root))?;
    }
    Ok(bin)
}

pub(crate) fn run_all(args: &[String]) -> Result {
    let mut seconds = 60u64;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => seconds = it.next().and_then(|s| s.parse().ok()).ok_or("--seconds needs a number")?,
            other => return Err(format!("unknown option {other}")),
        }
    }
    let cargo_fuzz = cargo_fuzz()?;
    let fuzz_dir = crate::tools::root().join("fuzz");
    for (target, seeds) in TARGETS {
        let corpus = crate::tools::root().join("target/fuzz-corpus").join(target);
        std::fs::create_dir_all(&corpus).map_err(|e| e.to_string())?;
        for seed in seeds {
            let from = fixtures().join(seed);
            let name = Path::new(seed).file_name().unwrap_or_default();
            std::fs::copy(&from, corpus.join(name)).map_err(|e| format!("{}: {e}", from.display()))?;
        }
        // cargo-fuzz needs nightly flags; this stable toolchain allows them
        // with RUSTC_BOOTSTRAP (checked on this machine's toolchain).
        run(Command::new(&cargo_fuzz)
            .current_dir(&fuzz_dir)
            .env("RUSTC_BOOTSTRAP", "1")
            .env("CARGO", std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["fuzz", "run", target])
            .arg(&corpus)
            .args(["--", &format!("-max_total_time={seconds}"), "-rss_limit_mb=2048", "-max_len=1048576"]))
        .map_err(|e| format!("fuzzing {target} found a problem (see fuzz/artifacts/{target}/): {e}"))?;
    }
    Ok(())
}
