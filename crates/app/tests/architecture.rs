//! The architecture, enforced from `cargo metadata` (not from splitting
//! Cargo.toml text): the picture in docs/ARCHITECTURE.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Each workspace crate's layer. A new crate must be placed here.
const DOMAIN: &str = "backup-domain";
const SHARED: &str = "backup-fsutil";
const ADAPTERS: [&str; 7] = [
    "backup-sqlite",
    "backup-archive",
    "backup-crypto",
    "backup-instance",
    "backup-store-fs",
    "backup-store-s3",
    "backup-notify",
];
const APP: &str = "backup-app";
const FRONTS: [&str; 2] = ["backup-http", "backup-cli"];
const TOOLS: [&str; 2] = ["backup-e2e", "xtask"];

/// Crates that do IO; the core may depend on none of them.
const IO_CRATES: [&str; 12] = [
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

/// Normal (not dev, not build) dependencies of every workspace package.
fn dependencies() -> BTreeMap<String, Vec<Value>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let metadata: Value = serde_json::from_slice(&out.stdout).unwrap();
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let deps = p["dependencies"].as_array().unwrap().iter().filter(|d| d["kind"].is_null()).cloned().collect();
            (p["name"].as_str().unwrap().to_owned(), deps)
        })
        .collect()
}

fn names(deps: &[Value]) -> BTreeSet<String> {
    deps.iter().map(|d| d["name"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn every_crate_has_a_place_in_the_picture() {
    let placed: BTreeSet<&str> = [DOMAIN, SHARED, APP].into_iter().chain(ADAPTERS).chain(FRONTS).chain(TOOLS).collect();
    for name in dependencies().keys() {
        assert!(placed.contains(name.as_str()), "{name} is in no layer of docs/ARCHITECTURE.md");
    }
}

#[test]
fn dependencies_point_inwards() {
    let all = dependencies();
    let workspace: BTreeSet<String> = all.keys().cloned().collect();
    let internal =
        |name: &str| -> BTreeSet<String> { names(&all[name]).into_iter().filter(|d| workspace.contains(d)).collect() };
    let allowed = |name: &str, may: &[&str]| {
        let extra: Vec<String> = internal(name).into_iter().filter(|d| !may.contains(&d.as_str())).collect();
        assert!(extra.is_empty(), "{name} must not depend on {extra:?}");
    };
    allowed(DOMAIN, &[]);
    allowed(SHARED, &[DOMAIN]);
    for adapter in ADAPTERS {
        allowed(adapter, &[DOMAIN, SHARED]);
    }
    allowed("backup-http", &[DOMAIN]);
    allowed("backup-cli", &[APP, DOMAIN]);
    let io: Vec<String> = names(&all[DOMAIN]).into_iter().filter(|d| IO_CRATES.contains(&d.as_str())).collect();
    assert!(io.is_empty(), "backup-domain must not depend on {io:?}");
    // jiff may only use its bundled zone database, never the system's files.
    let jiff = all[DOMAIN].iter().find(|d| d["name"] == "jiff").expect("jiff");
    assert_eq!(jiff["uses_default_features"], false);
    let features: Vec<&str> = jiff["features"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(features.iter().all(|f| !f.starts_with("tz-system") && *f != "tzdb-zoneinfo"), "{features:?}");
}

#[test]
fn no_cycles() {
    let all = dependencies();
    let workspace: BTreeSet<String> = all.keys().cloned().collect();
    fn visit(
        name: &str,
        all: &BTreeMap<String, Vec<Value>>,
        workspace: &BTreeSet<String>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if done.contains(name) {
            return;
        }
        assert!(!path.iter().any(|p| p == name), "cycle: {} -> {name}", path.join(" -> "));
        path.push(name.to_owned());
        for dep in names(&all[name]).into_iter().filter(|d| workspace.contains(d)) {
            visit(&dep, all, workspace, path, done);
        }
        path.pop();
        done.insert(name.to_owned());
    }
    let mut done = BTreeSet::new();
    for name in &workspace {
        visit(name, &all, &workspace, &mut Vec::new(), &mut done);
    }
}
