//! `framerr-backup create`, `list`, `verify` and `delete` on copies of a
//! real Framerr instance, checked with an independent ZIP reader (python's
//! zipfile) and SQLite itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use backup_e2e::{Instance, fixtures, golden, python_ok};
use serde_json::Value;

/// Reads a backup with python's zipfile: every entry's CRC, the manifest,
/// each entry's size and SHA-256; extracts framerr.db to `db_out`.
const PY_READ: &str = r#"
import sys, zipfile, hashlib, json
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None, "bad CRC"
names = [i.filename for i in z.infolist()]
assert len(names) == len(set(names)), "duplicate names"
digests = {i.filename: [i.file_size, hashlib.sha256(z.read(i)).hexdigest(), i.compress_type] for i in z.infolist()}
open(sys.argv[2], "wb").write(z.read("framerr.db"))
print(json.dumps({"manifest": json.loads(z.read("manifest.json")), "entries": digests}))
"#;

fn read_with_python(zip: &Path, db_out: &Path) -> Value {
    serde_json::from_str(&python_ok(PY_READ, &[zip, db_out])).unwrap()
}

/// The rows as compact JSON text.
fn sqlite(db: &Path, sql: &str) -> String {
    backup_e2e::query(db, sql).to_string()
}

#[test]
fn backup_of_a_framerr_instance_is_complete_portable_and_readable_by_others() {
    let inst = Instance::from_fixture();
    let created: Value = serde_json::from_str(&inst.ok(&["create", "--json"])).unwrap();
    let name = created["filename"].as_str().unwrap();
    assert!(name.starts_with("framerr-manual-") && name.ends_with(".zip"), "{name}");
    let zip = inst.backups().join(name);
    assert_eq!(std::fs::metadata(&zip).unwrap().len(), created["size"].as_u64().unwrap());
    // Only the backup is left: no temporaries.
    assert_eq!(inst.backup_files(), [name]);

    let db = inst.dir.path().join("extracted.db");
    let read = read_with_python(&zip, &db);
    let manifest = &read["manifest"];
    // Framerr's fields, with Framerr's values.
    assert_eq!(manifest["version"], "2.0");
    assert_eq!(manifest["type"], "manual");
    assert_eq!(manifest["encryption"], "plaintext");
    assert_eq!(manifest["assets"], serde_json::json!({"profilePictures": true, "customIcons": true, "favicon": true}));
    let golden = golden();
    let framerr_manifest = &golden["files"][1]["manifest"];
    assert_eq!(manifest["purgedOnRestore"], framerr_manifest["purgedOnRestore"]);
    assert!(manifest["createdAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(manifest["userVersion"], 48);
    // Every entry but the manifest is listed with its true size and SHA-256,
    // and every entry is deflated.
    let entries = read["entries"].as_object().unwrap();
    let listed = manifest["entries"].as_array().unwrap();
    assert_eq!(listed.len(), entries.len() - 1);
    for item in listed {
        let actual = &entries[item["path"].as_str().unwrap()];
        assert_eq!(actual[0], item["size"]);
        assert_eq!(actual[1], item["sha256"]);
    }
    assert!(entries.values().all(|e| e[2] == 8));
    // The same asset files as Framerr's own backup.
    let mut framerr_assets: Vec<&str> = golden["files"][1]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .filter(|p| p.contains('/'))
        .collect();
    let mut ours: Vec<&str> = entries.keys().map(String::as_str).filter(|p| p.contains('/')).collect();
    framerr_assets.sort();
    ours.sort();
    assert_eq!(ours, framerr_assets);
    for path in ours {
        let (folder, file) = path.split_once('/').unwrap();
        let sub = if folder == "favicon" { "public/favicon".to_owned() } else { format!("upload/{folder}") };
        let original = std::fs::read(fixtures().join("instance-plain").join(sub).join(file)).unwrap();
        use sha2::Digest;
        assert_eq!(entries[path][1], hex::encode(sha2::Sha256::digest(&original)), "{path}");
    }
    // The database: intact, and its credentials decrypted as Framerr's
    // backup has them (golden.json), so another instance can read them.
    assert_eq!(sqlite(&db, "PRAGMA integrity_check"), r#"[["ok"]]"#);
    let configs: Vec<(String, String)> =
        serde_json::from_str(&sqlite(&db, "SELECT id, config_encrypted FROM integration_instances ORDER BY id"))
            .unwrap();
    let want: Vec<(String, String)> = golden["files"][1]["db"]["integration_instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_owned(), r["config_encrypted"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(configs, want);
    // The live database was not modified.
    let live: Vec<(String, String)> = serde_json::from_str(&sqlite(
        &inst.db(),
        "SELECT id, config_encrypted FROM integration_instances WHERE id = 'int-plex'",
    ))
    .unwrap();
    assert!(!live[0].1.starts_with('{'), "live credentials were decrypted");
    // And our own verify agrees.
    let verified: Value = serde_json::from_str(&inst.ok(&["verify", name, "--json"])).unwrap();
    assert_eq!(verified["ok"], true);
    assert_eq!(verified["checksumsVerified"], 8);
}

#[test]
fn the_oidc_client_secret_is_made_portable_too() {
    let inst = Instance::from_fixture();
    let key = backup_crypto::InstanceKey::from_hex(backup_e2e::FIXTURE_KEY).unwrap();
    let cipher = backup_crypto::FieldCrypto::new(&key);
    use backup_domain::ports::FieldCipher;
    let sealed = cipher.encrypt("sso-client-secret").unwrap();
    sqlite(&inst.db(), &format!("UPDATE oidc_config SET client_secret = '{sealed}' RETURNING 1"));
    let created: Value = serde_json::from_str(&inst.ok(&["create", "--json"])).unwrap();
    let db = inst.dir.path().join("x.db");
    read_with_python(&inst.backups().join(created["filename"].as_str().unwrap()), &db);
    assert_eq!(sqlite(&db, "SELECT client_secret FROM oidc_config"), r#"[["sso-client-secret"]]"#);
}

#[test]
fn same_second_backups_get_distinct_names_and_list_newest_first() {
    let inst = Instance::from_fixture();
    for _ in 0..3 {
        inst.ok(&["create"]);
    }
    let list: Value = serde_json::from_str(&inst.ok(&["list", "--json"])).unwrap();
    assert_eq!(list["count"], 3);
    let names: Vec<&str> =
        list["backups"].as_array().unwrap().iter().map(|b| b["filename"].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| std::cmp::Reverse(backup_domain::BackupName::parse(n).unwrap()));
    assert_eq!(names, sorted);
    let distinct: std::collections::HashSet<&&str> = names.iter().collect();
    assert_eq!(distinct.len(), 3);
    let total: u64 = list["backups"].as_array().unwrap().iter().map(|b| b["size"].as_u64().unwrap()).sum();
    assert_eq!(list["totalSize"], total);
}

#[test]
fn retention_follows_the_saved_schedule_and_spares_safety_backups() {
    let inst = Instance::from_fixture();
    // The fixture's schedule keeps 5; make it 2.
    sqlite(
        &inst.db(),
        r#"UPDATE system_config SET value = '{"enabled":true,"frequency":"daily","hour":3,"maxBackups":2}' WHERE key = 'backupSchedule' RETURNING 1"#,
    );
    std::fs::create_dir_all(inst.backups()).unwrap();
    for old in [
        "framerr-manual-2020-01-01T00-00-00.zip",
        "framerr-scheduled-2020-01-02T00-00-00.zip",
        "framerr-safety-2019-01-01T00-00-00.zip",
    ] {
        std::fs::write(inst.backups().join(old), b"old").unwrap();
    }
    let created: Value = serde_json::from_str(&inst.ok(&["create", "--json"])).unwrap();
    assert_eq!(created["deleted"], serde_json::json!(["framerr-manual-2020-01-01T00-00-00.zip"]));
    let files = inst.backup_files();
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(files.contains(&"framerr-safety-2019-01-01T00-00-00.zip".to_owned()));
    assert!(files.contains(&"framerr-scheduled-2020-01-02T00-00-00.zip".to_owned()));
    // A safety backup does not trigger retention.
    inst.ok(&["create", "--type", "safety"]);
    assert_eq!(inst.backup_files().len(), 4);
}

#[test]
fn framerr_made_fixtures_list_and_verify() {
    let inst = Instance::empty();
    backup_e2e::copy_tree(&fixtures().join("backups"), &inst.backups());
    let list: Value = serde_json::from_str(&inst.ok(&["list", "--json"])).unwrap();
    let golden = golden();
    for file in golden["files"].as_array().unwrap() {
        let listed = list["backups"].as_array().unwrap().iter().find(|b| b["filename"] == file["file"]).unwrap();
        assert_eq!(listed["size"], file["bytes"]);
        assert_eq!(listed["type"], "manual");
        assert_eq!(listed["encrypted"], file["format"] == "encrypted");
        assert_eq!(listed["createdAt"], "2026-11-26T22:17:29.000Z");
    }
    let out = inst.ok(&["verify", "framerr-manual-2026-11-26T22-17-29.zip"]);
    assert!(out.contains("OK") && out.contains("user_version 48"), "{out}");
}

#[test]
fn verify_catches_a_flipped_byte_and_a_tampered_checksum() {
    let inst = Instance::from_fixture();
    let created: Value = serde_json::from_str(&inst.ok(&["create", "--json"])).unwrap();
    let zip = inst.backups().join(created["filename"].as_str().unwrap());
    let good = std::fs::read(&zip).unwrap();
    let mut bad = good.clone();
    bad[good.len() / 3] ^= 0x01;
    let copy = inst.dir.path().join("bad.zip");
    std::fs::write(&copy, &bad).unwrap();
    let err = inst.fails(&["verify", copy.to_str().unwrap()]);
    assert!(err.contains("FAILED"), "{err}");
    // A manifest whose checksum was changed (and its CRC fixed up, by
    // python rewriting the archive) is caught by the SHA-256 check.
    let rewritten = inst.dir.path().join("rewritten.zip");
    python_ok(
        r#"
import sys, zipfile, json
src = zipfile.ZipFile(sys.argv[1]); dst = zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_DEFLATED)
for i in src.infolist():
    data = src.read(i)
    if i.filename == "manifest.json":
        m = json.loads(data); m["entries"][1]["sha256"] = "0" * 64; data = json.dumps(m).encode()
    dst.writestr(i.filename, data)
dst.close()
"#,
        &[&zip, &rewritten],
    );
    let err = inst.fails(&["verify", rewritten.to_str().unwrap()]);
    assert!(err.contains("SHA-256"), "{err}");
    let err = inst.fails(&["verify", fixtures().join("golden.json").to_str().unwrap()]);
    assert!(err.contains("Not a valid Framerr backup file"), "{err}");
}

#[test]
fn output_streams_elsewhere_without_touching_the_backups_folder() {
    let inst = Instance::from_fixture();
    let file = inst.dir.path().join("elsewhere.zip");
    inst.ok(&["create", "--output", file.to_str().unwrap()]);
    let db = inst.dir.path().join("x.db");
    read_with_python(&file, &db);
    // Never over an existing file.
    let err = inst.fails(&["create", "--output", file.to_str().unwrap()]);
    assert!(err.contains("already exists"), "{err}");
    // Standard output.
    let out = inst.command(&["create", "--output", "-"]).output().unwrap();
    assert!(out.status.success());
    assert!(out.stdout.starts_with(b"PK\x03\x04"));
    let piped = inst.dir.path().join("piped.zip");
    std::fs::write(&piped, &out.stdout).unwrap();
    read_with_python(&piped, &db);
    assert!(inst.backup_files().iter().all(|f| !f.starts_with("framerr-")), "{:?}", inst.backup_files());
}

#[test]
fn delete_refuses_bad_names_and_safety_backups_without_force() {
    let inst = Instance::from_fixture();
    std::fs::create_dir_all(inst.backups()).unwrap();
    let safety = "framerr-safety-2026-01-01T00-00-00.zip";
    std::fs::write(inst.backups().join(safety), b"x").unwrap();
    std::fs::write(inst.dir.path().join("victim.zip"), b"x").unwrap();
    for bad in ["../victim.zip", "framerr-manual-../../victim.zip", "framerr-manual-a/b.zip", "notes.txt"] {
        let err = inst.fails(&["delete", bad]);
        assert!(err.contains("name"), "{bad}: {err}");
    }
    assert!(inst.dir.path().join("victim.zip").exists());
    let err = inst.fails(&["delete", safety]);
    assert!(err.contains("--force"), "{err}");
    inst.ok(&["delete", safety, "--force"]);
    let err = inst.fails(&["delete", safety, "--force"]);
    assert!(err.contains("not found"), "{err}");
}
