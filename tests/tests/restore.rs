//! `framerr-backup restore`: Framerr's backups and ours restore completely;
//! hostile archives are refused before anything is written; a crash at any
//! point leaves the whole old state or the whole new one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use backup_domain::ports::FieldCipher;
use backup_e2e::{Instance, copy_tree, count, fixtures, golden, python_ok, query, tree};
use serde_json::Value;

const NEW_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn fresh_with_key(key: &str) -> Instance {
    let mut inst = Instance::empty();
    inst.key = Some(key.into());
    inst
}

#[test]
fn framerrs_plain_backup_restores_onto_a_fresh_instance_with_another_key() {
    let inst = fresh_with_key(NEW_KEY);
    let zip = fixtures().join("backups/framerr-manual-2026-11-26T22-17-29.zip");
    let out = inst.ok(&["restore", zip.to_str().unwrap(), "--yes"]);
    assert!(out.contains("safety backup: none"), "{out}");
    let db = inst.db();
    assert_eq!(query(&db, "PRAGMA integrity_check"), serde_json::json!([["ok"]]));
    let golden = golden();
    let facts = &golden["files"][1]["db"];
    // Kept: users, config, icons; emptied: the purge list.
    for (table, n) in facts["counts"].as_object().unwrap() {
        let purged = backup_domain::manifest::PURGED_ON_RESTORE.contains(&table.as_str());
        let want = if purged { 0 } else { n.as_i64().unwrap() };
        assert_eq!(count(&db, table), want, "{table}");
    }
    // Every config is encrypted with THIS instance's key and decrypts to
    // the original JSON.
    let cipher = backup_crypto::FieldCrypto::new(&backup_crypto::InstanceKey::from_hex(NEW_KEY).unwrap());
    let rows = query(&db, "SELECT id, config_encrypted FROM integration_instances ORDER BY id");
    for (row, want) in rows.as_array().unwrap().iter().zip(facts["integration_instances"].as_array().unwrap()) {
        assert_eq!(row[0], want["id"]);
        let sealed = row[1].as_str().unwrap();
        assert!(backup_domain::credentials::looks_encrypted(sealed), "{sealed}");
        assert_eq!(cipher.decrypt(sealed).unwrap(), want["config_encrypted"].as_str().unwrap());
    }
    // The asset files are the instance's own.
    let original = fixtures().join("instance-plain");
    for sub in ["upload/profile-pictures", "upload/custom-icons", "public/favicon"] {
        assert_eq!(tree(&inst.data().join(sub)), tree(&original.join(sub)), "{sub}");
    }
    // Nothing of the restore's machinery is left behind.
    let leftovers: Vec<String> = tree(&inst.data()).into_keys().filter(|k| k.contains(".framerr-")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn create_then_restore_round_trips_everything_but_the_purged_tables() {
    let source = Instance::from_fixture();
    let created: Value = serde_json::from_str(&source.ok(&["create", "--json"])).unwrap();
    let zip = source.backups().join(created["filename"].as_str().unwrap());
    // Same key: the configs come back byte-identical in meaning.
    let target = fresh_with_key(backup_e2e::FIXTURE_KEY);
    target.ok(&["restore", zip.to_str().unwrap(), "--yes"]);
    let tables = query(
        &source.db(),
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    );
    let cipher =
        backup_crypto::FieldCrypto::new(&backup_crypto::InstanceKey::from_hex(backup_e2e::FIXTURE_KEY).unwrap());
    let mut compared = 0;
    for t in tables.as_array().unwrap() {
        let table = t[0].as_str().unwrap();
        let sql = format!("SELECT * FROM \"{table}\"");
        let sorted = |v: Value| {
            let mut rows = v.as_array().unwrap().clone();
            rows.sort_by_key(|r| r.to_string());
            Value::Array(rows)
        };
        let (before, after) = (sorted(query(&source.db(), &sql)), sorted(query(&target.db(), &sql)));
        if backup_domain::manifest::PURGED_ON_RESTORE.contains(&table) {
            assert_eq!(after, serde_json::json!([]), "{table} not purged");
        } else if table == "integration_instances" {
            // Same rows; the config column re-encrypted with a fresh IV.
            let (b, a) = (before.as_array().unwrap(), after.as_array().unwrap());
            assert_eq!(b.len(), a.len());
            for (rb, ra) in b.iter().zip(a) {
                let plain = |v: &Value| {
                    let s = v.as_str().unwrap();
                    cipher.decrypt(s).unwrap_or_else(|_| s.to_owned())
                };
                assert_eq!(plain(&rb[3]), plain(&ra[3]));
                let mut rb = rb.clone();
                let mut ra = ra.clone();
                rb[3] = Value::Null;
                ra[3] = Value::Null;
                assert_eq!(rb, ra);
            }
        } else if table.starts_with("media_library_fts") {
            // Rebuilt from the (purged) media library.
        } else {
            assert_eq!(before, after, "{table}");
            compared += 1;
        }
    }
    assert!(compared > 15, "only {compared} tables compared");
    for sub in ["upload/profile-pictures", "upload/custom-icons", "public/favicon"] {
        assert_eq!(tree(&source.data().join(sub)), tree(&target.data().join(sub)), "{sub}");
    }
}

#[test]
fn a_restore_over_a_live_instance_makes_a_safety_backup_that_undoes_it() {
    let inst = Instance::from_fixture();
    let before = query(&inst.db(), "SELECT key, value FROM system_config ORDER BY key");
    let zip = fixtures().join("backups/framerr-manual-2026-11-26T22-17-29.zip");
    let out = inst.ok(&["restore", zip.to_str().unwrap(), "--yes"]);
    let safety = out.lines().find_map(|l| l.trim().strip_prefix("safety backup: ")).unwrap();
    let safety = safety.split_whitespace().next().unwrap().to_owned();
    assert!(safety.starts_with("framerr-safety-"), "{out}");
    // Undo it by restoring the safety backup: the sessions purged by the
    // first restore are gone, but everything else is back.
    inst.ok(&["restore", &safety, "--yes"]);
    assert_eq!(query(&inst.db(), "SELECT key, value FROM system_config ORDER BY key"), before);
    // Two safety backups now, and list shows them.
    let list: Value = serde_json::from_str(&inst.ok(&["list", "--json"])).unwrap();
    assert_eq!(list["count"], 2);
}

#[test]
fn a_database_from_a_newer_framerr_is_refused() {
    let source = Instance::from_fixture();
    query(&source.db(), "PRAGMA user_version = 99");
    let created: Value = serde_json::from_str(&source.ok(&["create", "--json"])).unwrap();
    let zip = source.backups().join(created["filename"].as_str().unwrap());
    let target = Instance::from_fixture();
    let before = tree(&target.data());
    let err = target.fails(&["restore", zip.to_str().unwrap(), "--yes"]);
    assert!(err.contains("newer Framerr") && err.contains("99") && err.contains("48"), "{err}");
    assert_eq!(tree(&target.data()), before, "a refused restore changed the instance");
}

/// Builds hostile archives with python's zipfile.
const PY_HOSTILE: &str = r#"
import sys, zipfile, json, io
out, kind, db = sys.argv[1], sys.argv[2], open(sys.argv[3], "rb").read()
manifest = json.dumps({"version": "2.0", "type": "manual", "createdAt": "2026-11-26T03:00:00.000Z",
    "encryption": "plaintext", "purgedOnRestore": [], "assets": {"profilePictures": True, "customIcons": True, "favicon": True}})
z = zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED)
def add(name, data): z.writestr(name, data)
if kind != "no-db": add("framerr.db", db)
if kind == "no-manifest": pass
elif kind == "bad-manifest": add("manifest.json", "{not json")
elif kind == "huge-manifest": add("manifest.json", manifest[:-1] + ', "pad": "' + "x" * (5 * 1024 * 1024) + '"}')
else: add("manifest.json", manifest)
if kind == "dotdot": add("custom-icons/../../evil.txt", "x")
if kind == "absolute": add("/tmp/framerr-evil-absolute.txt", "x")
if kind == "drive": add("C:/evil.txt", "x")
if kind == "backslash": add("custom-icons\\..\\..\\evil.txt", "x")
if kind == "symlink":
    info = zipfile.ZipInfo("custom-icons/link.png"); info.external_attr = (0o120777 << 16); info.create_system = 3
    z.writestr(info, "/etc/passwd")
if kind == "duplicate":
    import warnings; warnings.simplefilter("ignore"); add("custom-icons/a.png", "1"); add("custom-icons/a.png", "2")
if kind == "bomb": add("custom-icons/bomb.png", b"\0" * (40 * 1024 * 1024))
if kind == "too-big": add("custom-icons/big.png", bytes(range(256)) * (12 * 1024))
z.close()
"#;

#[test]
fn hostile_archives_are_refused_and_nothing_is_written() {
    let inst = Instance::from_fixture();
    let db = inst.dir.path().join("source.db");
    std::fs::copy(inst.db(), &db).unwrap();
    let cases = [
        ("too-big", "over the 3000000-byte limit"),
        ("bomb", "zip bomb"),
        ("no-db", "Backup is missing database file (framerr.db)"),
        ("no-manifest", "Backup is missing manifest file"),
        ("bad-manifest", "Invalid manifest file format"),
        ("huge-manifest", "larger than"),
        ("dotdot", "unsafe path"),
        ("absolute", "unsafe path"),
        ("drive", "unsafe path"),
        ("backslash", "unsafe path"),
        ("symlink", "symbolic link"),
        ("duplicate", "more than once"),
    ];
    let before = tree(&inst.data());
    for (kind, want) in cases {
        let zip = inst.dir.path().join(format!("{kind}.zip"));
        python_ok(PY_HOSTILE, &[&zip, Path::new(kind), &db]);
        let mut args = vec!["restore", zip.to_str().unwrap(), "--yes"];
        match kind {
            "too-big" => args.extend(["--max-size", "3000000"]),
            "bomb" => args.extend(["--max-ratio", "200"]),
            _ => {}
        }
        let err = inst.fails(&args);
        assert!(err.contains(want), "{kind}: {err}");
        assert_eq!(tree(&inst.data()), before, "{kind}: the instance changed");
    }
    assert!(!inst.dir.path().join("evil.txt").exists());
    assert!(!Path::new("/tmp/framerr-evil-absolute.txt").exists());
    assert!(!inst.data().join("evil.txt").exists());
    // Not a backup at all, and a truncated one.
    let err = inst.fails(&["restore", fixtures().join("golden.json").to_str().unwrap(), "--yes"]);
    assert!(err.contains("Not a valid Framerr backup file"), "{err}");
    let good = std::fs::read(fixtures().join("backups/framerr-manual-2026-11-26T22-17-29.zip")).unwrap();
    let cut = inst.dir.path().join("cut.zip");
    std::fs::write(&cut, &good[..good.len() / 2]).unwrap();
    let err = inst.fails(&["restore", cut.to_str().unwrap(), "--yes"]);
    assert!(err.contains("Invalid ZIP file"), "{err}");
    assert_eq!(tree(&inst.data()), before);
}

#[test]
fn restore_without_yes_off_a_terminal_asks_for_it() {
    let inst = Instance::from_fixture();
    let zip = fixtures().join("backups/framerr-manual-2026-11-26T22-17-29.zip");
    let err = inst.fails(&["restore", zip.to_str().unwrap()]);
    assert!(err.contains("--yes"), "{err}");
}

/// The old instance, marked 'old' in a row that lives only in its WAL (never
/// checkpointed), and in an asset file.
fn old_instance() -> Instance {
    let inst = Instance::from_fixture();
    python_ok(
        "import sqlite3,sys,os\nc=sqlite3.connect(sys.argv[1])\nc.execute('PRAGMA journal_mode=WAL')\nc.execute('PRAGMA wal_autocheckpoint=0')\nc.execute(\"INSERT INTO system_config(key,value) VALUES('marker','old')\")\nc.commit()\nos._exit(0)",
        &[&inst.db()],
    );
    assert!(inst.data().join("framerr.db-wal").metadata().unwrap().len() > 0);
    std::fs::write(inst.data().join("upload/custom-icons/old-only.png"), b"old").unwrap();
    inst
}

#[test]
fn a_crash_at_any_point_leaves_the_whole_old_or_the_whole_new_state() {
    // The new state: a backup marked 'new'.
    let source = Instance::from_fixture();
    python_ok(
        "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nc.execute(\"INSERT INTO system_config(key,value) VALUES('marker','new')\")\nc.commit()",
        &[&source.db()],
    );
    let created: Value = serde_json::from_str(&source.ok(&["create", "--json"])).unwrap();
    let zip = source.backups().join(created["filename"].as_str().unwrap());

    let mut points = vec!["restore:journal-written".to_owned(), "restore:committed".to_owned()];
    for i in 0..6 {
        points.push(format!("restore:moved-old-{i}"));
        points.push(format!("restore:moved-new-{i}"));
    }
    let mut outcomes = BTreeMap::new();
    for point in &points {
        let inst = old_instance();
        let out = inst
            .command(&["restore", zip.to_str().unwrap(), "--yes"])
            .env("FRAMERR_FAILPOINT", point)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{point}: the failpoint did not fire");
        // The next start recovers.
        inst.ok(&["list"]);
        let marker = query(&inst.db(), "SELECT value FROM system_config WHERE key = 'marker'");
        assert_eq!(query(&inst.db(), "PRAGMA integrity_check"), serde_json::json!([["ok"]]), "{point}");
        let state = marker[0][0].as_str().unwrap().to_owned();
        let old_asset = inst.data().join("upload/custom-icons/old-only.png").exists();
        let sessions = count(&inst.db(), "sessions");
        match state.as_str() {
            "old" => {
                assert!(old_asset, "{point}: old database with new assets");
                assert_eq!(sessions, 8, "{point}: old database half restored");
            }
            "new" => {
                assert!(!old_asset, "{point}: new database with old assets");
                assert_eq!(sessions, 0, "{point}: new database without its post-restore work");
            }
            other => panic!("{point}: marker {other}"),
        }
        let leftovers: Vec<String> = tree(&inst.data())
            .into_keys()
            .filter(|k| k.contains(".framerr-restore") || k.contains(".framerr-old"))
            .collect();
        assert!(leftovers.is_empty(), "{point}: {leftovers:?}");
        outcomes.insert(point.clone(), state);
    }
    // Before the commit point: rolled back; after it: finished.
    assert_eq!(outcomes["restore:journal-written"], "old");
    assert_eq!(outcomes["restore:moved-new-2"], "old");
    assert_eq!(outcomes["restore:committed"], "new");
    eprintln!("{outcomes:?}");

    // And kill -9 at random moments, for good measure.
    let mut seen = std::collections::HashSet::new();
    for delay_ms in [0u64, 5, 10, 20, 40, 80, 160] {
        let inst = old_instance();
        let mut child = inst.command(&["restore", zip.to_str().unwrap(), "--yes"]).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = Command::new("kill").arg("-9").arg(child.id().to_string()).status();
        let _ = child.wait();
        inst.ok(&["list"]);
        let marker = query(&inst.db(), "SELECT value FROM system_config WHERE key = 'marker'");
        let state = marker[0][0].as_str().unwrap().to_owned();
        assert_eq!(query(&inst.db(), "PRAGMA integrity_check"), serde_json::json!([["ok"]]));
        let old_asset = inst.data().join("upload/custom-icons/old-only.png").exists();
        assert_eq!(old_asset, state == "old", "kill after {delay_ms} ms: mixed state");
        seen.insert(state);
    }
    eprintln!("kill -9 outcomes: {seen:?}");
    let _ = copy_tree;
}
