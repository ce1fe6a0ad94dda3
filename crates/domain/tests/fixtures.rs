//! Every manifest Framerr itself wrote (../shared/fixtures) reads, and writes
//! back byte for byte.

#![allow(clippy::unwrap_used)] // Test helpers may panic: that is a failed test.

use std::path::PathBuf;

use backup_domain::{BackupKind, BackupName, Encryption, Manifest};

fn fixtures() -> PathBuf {
    std::env::var_os("FRAMERR_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures"))
}

fn files_named(suffix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![fixtures()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(suffix) {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn framerr_manifest_files_round_trip_exactly() {
    let files = files_named(".manifest.json");
    assert!(!files.is_empty(), "no manifests under {}", fixtures().display());
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let manifest = Manifest::from_json(text.as_bytes()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(manifest.version, "2.0");
        assert_eq!(manifest.to_json(), text, "{}", path.display());
    }
}

#[test]
fn golden_manifests_and_names_parse() {
    let golden_files = files_named("golden.json");
    assert!(!golden_files.is_empty());
    for path in golden_files {
        let golden: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for file in golden["files"].as_array().unwrap() {
            let name = BackupName::parse(file["file"].as_str().unwrap()).unwrap();
            assert_eq!(name.kind(), BackupKind::Manual);
            let encrypted = file["format"] == "encrypted";
            assert_eq!(name.is_encrypted(), encrypted);
            let json = serde_json::to_vec(&file["manifest"]).unwrap();
            let manifest = Manifest::from_json(&json).unwrap();
            let want = if encrypted { Encryption::EnvelopeV1 } else { Encryption::Plaintext };
            assert_eq!(manifest.encryption, want);
            assert!(manifest.assets.profile_pictures && manifest.assets.custom_icons && manifest.assets.favicon);
            // The name's stamp is the manifest's createdAt without milliseconds.
            assert_eq!(name.created_at().unwrap(), manifest.created_at.replace_millisecond(0).unwrap());
        }
    }
}
