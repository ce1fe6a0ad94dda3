//! Architecture invariant: `backup-domain` has no IO dependencies and never
//! reaches for the file system, the network or the system clock.

#![allow(clippy::unwrap_used)] // Test helpers may panic: that is a failed test.

use std::path::Path;

const FORBIDDEN_CRATES: [&str; 12] = [
    "tokio",
    "sqlx",
    "libsqlite3-sys",
    "object_store",
    "reqwest",
    "hyper",
    "axum",
    "async_zip",
    "async-std",
    "smol",
    "rusqlite",
    "tempfile",
];

const FORBIDDEN_CODE: [&str; 7] =
    ["std::fs", "std::net", "std::process", "SystemTime::now", "OffsetDateTime::now", "Timestamp::now", "Instant::now"];

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn cargo_toml_has_no_io_dependency() {
    let toml = std::fs::read_to_string(manifest_dir().join("Cargo.toml")).unwrap();
    let deps = toml.split("[dependencies]").nth(1).unwrap();
    let deps = deps.split("\n[").next().unwrap();
    for line in deps.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let name = line.split(['=', '.', ' ']).next().unwrap().trim();
        assert!(!FORBIDDEN_CRATES.contains(&name), "backup-domain must not depend on {name}");
    }
    // jiff may only use its bundled zone database, never the system's files.
    let root = std::fs::read_to_string(manifest_dir().join("../../Cargo.toml")).unwrap();
    let jiff = root.lines().find(|l| l.starts_with("jiff")).expect("jiff in workspace deps");
    assert!(
        jiff.contains("default-features = false") && !jiff.contains("tz-system") && !jiff.contains("tzdb-zoneinfo")
    );
}

#[test]
fn sources_do_not_touch_io_or_the_clock() {
    let mut stack = vec![manifest_dir().join("src")];
    let mut checked = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for needle in FORBIDDEN_CODE {
                assert!(!text.contains(needle), "{} uses {needle}", path.display());
            }
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} source files found");
}
