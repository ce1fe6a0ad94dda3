//! The page in a real browser: Debian's Chromium, headless, driven by
//! playwright-core (tests/browser/run.mjs, one scenario per test) against
//! the real server on 127.0.0.1. Screenshots at 1280x800 and 390x844 land
//! in target/browser-screenshots.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use backup_e2e::{FIXTURE_PASSWORD, Instance, Server, fixtures, python_ok, repo_root};
use serde_json::Value;

const ADMIN_PASSWORD: &str = "browser admin password";

fn serve(inst: &Instance) -> Server {
    Server::spawn(inst.command(&["serve", "--listen", "127.0.0.1:0"]))
}

/// The fixture instance with an admin whose password we know, and
/// Framerr's schedule off (no catch-up backup at start).
fn instance() -> Instance {
    let inst = Instance::from_fixture();
    let hash = bcrypt::hash(ADMIN_PASSWORD, 4).unwrap();
    python_ok(
        "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nc.execute(\"UPDATE users SET password=? WHERE username='admin'\", (sys.argv[2],))\nc.execute(\"UPDATE system_config SET value='{\\\"enabled\\\":false,\\\"frequency\\\":\\\"daily\\\",\\\"hour\\\":3,\\\"maxBackups\\\":10}' WHERE key='backupSchedule'\")\nc.commit()",
        &[&inst.db(), std::path::Path::new(&hash)],
    );
    inst
}

/// Runs one scenario; returns its JSON result lines.
fn scenario(name: &str, server: &Server) -> Vec<Value> {
    let node_path = std::env::var_os("FRAMERR_NODE_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/tools/node_modules"));
    assert!(
        node_path.join("playwright-core").exists() && std::path::Path::new("/usr/bin/chromium").exists(),
        "playwright-core or Chromium is missing: run `cargo xtask tools`"
    );
    let out = Command::new("node")
        .arg(repo_root().join("tests/browser/run.mjs"))
        .arg(name)
        .current_dir(repo_root())
        .env("NODE_PATH", &node_path)
        .env("BASE_URL", &server.base)
        .env("SCREENSHOTS", repo_root().join("target/browser-screenshots"))
        .env("ADMIN_USER", "admin")
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("BACKUP_PASSWORD", FIXTURE_PASSWORD)
        .env("ENCRYPTED_BACKUP", fixtures().join("backups/framerr-manual-2026-11-26T22-17-29.framerr-backup"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "browser scenario {name} failed:\n{stderr}");
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

#[test]
fn sign_in_with_a_wrong_then_the_right_password() {
    let inst = instance();
    let results = scenario("signin", &serve(&inst));
    // The first load's weight is a budget (its time is a benchmark figure,
    // printed here and recorded in docs/PERFORMANCE.md, not asserted).
    let load = &results.iter().find(|r| r.get("firstLoad").is_some()).expect("no first-load figures")["firstLoad"];
    eprintln!("first load: {load}");
    assert!(load["bytes"].as_u64().unwrap() < 100_000, "{load}");
    assert!(load["bytes"].as_u64().unwrap() > 5_000, "nothing measured: {load}");
}

#[test]
fn create_shows_live_progress_and_the_new_row() {
    let inst = instance();
    scenario("create", &serve(&inst));
    assert_eq!(inst.backup_files().iter().filter(|f| f.starts_with("framerr-manual-")).count(), 1);
}

#[test]
fn download_gives_the_stored_bytes() {
    let inst = instance();
    inst.ok(&["create"]);
    let results = scenario("download", &serve(&inst));
    let got = results.iter().find(|r| r.get("downloaded").is_some()).expect("no download result");
    let name = got["downloaded"].as_str().unwrap();
    let stored = std::fs::read(inst.backups().join(name)).unwrap();
    use sha2::Digest;
    assert_eq!(got["sha256"].as_str().unwrap(), hex::encode(sha2::Sha256::digest(stored)));
}

#[test]
fn delete_through_the_confirmation() {
    let inst = instance();
    inst.ok(&["create"]);
    scenario("delete", &serve(&inst));
    assert!(inst.backup_files().iter().all(|f| !f.starts_with("framerr-manual-")), "{:?}", inst.backup_files());
}

#[test]
fn a_weekly_schedule_is_saved_and_shown_after_a_reload() {
    let inst = instance();
    // Something for the retention preview to keep.
    inst.ok(&["create"]);
    let results = scenario("schedule", &serve(&inst));
    let stored = backup_e2e::query(&inst.db(), "SELECT value FROM system_config WHERE key = 'framerrBackupSchedule'");
    let schedule: Value = serde_json::from_str(stored[0][0].as_str().unwrap()).unwrap();
    assert_eq!((schedule["frequency"].as_str(), schedule["dayOfWeek"].as_u64()), (Some("weekly"), Some(3)));
    assert_eq!((schedule["hour"].as_u64(), schedule["maxBackups"].as_u64()), (Some(4), Some(7)));
    // Calendar retention: daily set in the form, the others left off.
    assert_eq!(schedule["keepDaily"].as_u64(), Some(5), "{schedule}");
    assert!(schedule.get("keepWeekly").is_none() && schedule.get("keepMonthly").is_none(), "{schedule}");
    let shown = results.iter().find(|r| r.get("schedule").is_some()).expect("no schedule result");
    assert_eq!(shown["schedule"]["keepDaily"].as_u64(), Some(5), "{shown}");
}

#[test]
fn a_pinned_backup_is_marked_and_deleted_only_after_confirming() {
    let inst = instance();
    inst.ok(&["create"]);
    inst.ok(&["create"]);
    let results = scenario("pin", &serve(&inst));
    let got = results.iter().find(|r| r.get("pinned").is_some()).expect("no pin result");
    let (pinned, deleted) = (got["pinned"].as_str().unwrap(), got["deleted"].as_str().unwrap());
    let files = inst.backup_files();
    assert!(files.iter().any(|f| f == pinned) && !files.iter().any(|f| f == deleted), "{files:?}");
    let list: Value = serde_json::from_str(&inst.ok(&["list", "--json"])).unwrap();
    let flags: Vec<(&str, bool)> = list["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["filename"].as_str().unwrap(), b["pinned"].as_bool().unwrap()))
        .collect();
    assert_eq!(flags, [(pinned, true)], "{list}");
}

fn verified(results: &[Value]) -> Vec<(String, String)> {
    let got = results.iter().find(|r| r.get("verified").is_some()).expect("no verification result");
    got["verified"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["destination"].as_str().unwrap().to_owned(), v["outcome"].as_str().unwrap().to_owned()))
        .collect()
}

#[test]
fn verify_now_checks_the_newest_backup_and_shows_it_passed() {
    let inst = instance();
    inst.ok(&["create"]);
    let got = verified(&scenario("verify", &serve(&inst)));
    assert!(!got.is_empty() && got.iter().all(|(_, outcome)| outcome == "passed"), "{got:?}");
}

#[test]
fn verify_now_finds_a_damaged_backup_and_the_page_shows_the_problem() {
    let inst = instance();
    inst.ok(&["create"]);
    let name = inst.backup_files().into_iter().find(|f| f.starts_with("framerr-manual-")).unwrap();
    // Cut in half: the central directory and half the entries are gone.
    let file = std::fs::OpenOptions::new().write(true).open(inst.backups().join(&name)).unwrap();
    let len = file.metadata().unwrap().len();
    file.set_len(len / 2).unwrap();
    drop(file);
    let got = verified(&scenario("verify-damaged", &serve(&inst)));
    assert!(!got.is_empty() && got.iter().all(|(_, outcome)| outcome == "failed"), "{got:?}");
}

#[test]
fn encryption_makes_the_next_backup_encrypted() {
    let inst = instance();
    scenario("encryption", &serve(&inst));
    assert!(inst.backup_files().iter().any(|f| f.ends_with(".framerr-backup")), "{:?}", inst.backup_files());
}

#[test]
fn restore_shows_what_the_backup_holds_and_a_summary() {
    let inst = instance();
    inst.ok(&["create"]);
    let results = scenario("restore", &serve(&inst));
    let restored = results.iter().find(|r| r.get("restored").is_some()).expect("no restore result");
    assert!(restored["safetyBackup"].as_str().is_some_and(|s| s.starts_with("framerr-safety-")), "{restored}");
}

#[test]
fn setup_restores_an_encrypted_framerr_backup_then_offers_sign_in() {
    let mut inst = Instance::empty();
    inst.key = Some(backup_e2e::FIXTURE_KEY.into());
    scenario("setup", &serve(&inst));
    assert!(backup_e2e::count(&inst.db(), "users") > 0, "nothing was restored");
}
