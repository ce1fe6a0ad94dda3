//! Architecture invariant: `backup-domain`'s sources never reach for the
//! file system, the network, a process or the system clock. (Its
//! dependencies are checked from `cargo metadata` in
//! `crates/app/tests/architecture.rs`, with the rest of the picture.)

#![allow(clippy::unwrap_used)] // Test helpers may panic: that is a failed test.

use std::path::Path;

const FORBIDDEN_CODE: [&str; 7] =
    ["std::fs", "std::net", "std::process", "SystemTime::now", "OffsetDateTime::now", "Timestamp::now", "Instant::now"];

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
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
