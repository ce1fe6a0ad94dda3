//! Backups leave out the rows every restore deletes: no session tokens in
//! any backup, a large media library costs nothing, the search index stays
//! consistent, and a lean backup restores to exactly the state a full one
//! does, table by table.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use backup_domain::manifest::{NEVER_BACKED_UP, PURGED_ON_RESTORE};
use backup_e2e::{Instance, count, python_ok, query};
use serde_json::Value;

/// Fills the media library through its triggers (so the full-text index
/// holds every row) and adds push subscriptions; the fixture already has
/// sessions, notifications and monitor history.
fn add_media(inst: &Instance, rows: u32) {
    python_ok(
        "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nn=int(sys.argv[2])\n\
         c.executemany(\"INSERT INTO media_library(integration_instance_id,media_type,item_key,title,summary,actors) VALUES('plex-1','movie',?,?,?,?)\",\
         [(f'k{i}', f'Movie number {i}', 'A long summary about the film '*8, 'Someone Famous, Another Actor') for i in range(n)])\n\
         c.execute(\"INSERT INTO push_subscriptions(user_id,endpoint,p256dh,auth) SELECT id,'https://push.example/x','key','secret' FROM users LIMIT 1\")\n\
         c.commit()",
        &[&inst.db(), Path::new(&rows.to_string())],
    );
}

/// Extracts the backup's database with python's zipfile; returns it and the manifest.
fn extract(inst: &Instance, zip: &Path, name: &str) -> (PathBuf, Value) {
    let db = inst.dir.path().join(name);
    let manifest = python_ok(
        "import sys,zipfile\nz=zipfile.ZipFile(sys.argv[1])\nopen(sys.argv[2],'wb').write(z.read('framerr.db'))\nprint(z.read('manifest.json').decode())",
        &[zip, &db],
    );
    (db, serde_json::from_str(&manifest).unwrap())
}

fn schema(db: &Path) -> Value {
    query(db, "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name")
}

fn fts_is_consistent(db: &Path) {
    python_ok(
        "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nc.execute(\"INSERT INTO media_library_fts(media_library_fts, rank) VALUES('integrity-check', 1)\")\nassert c.execute('PRAGMA integrity_check').fetchone()[0] == 'ok'",
        &[db],
    );
}

#[test]
fn backups_hold_no_sessions_and_no_caches_unless_full_and_restore_the_same() {
    let source = Instance::from_fixture();
    add_media(&source, 3000);
    // A table of the user's that cascades from sessions keeps its rows.
    python_ok(
        "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nc.execute('CREATE TABLE my_notes(note TEXT, token TEXT REFERENCES sessions(token) ON DELETE CASCADE)')\nc.execute('INSERT INTO my_notes SELECT \\'kept\\', token FROM sessions LIMIT 1')\nc.commit()",
        &[&source.db()],
    );
    assert!(count(&source.db(), "sessions") > 0 && count(&source.db(), "notifications") > 0);
    let create = |extra: &[&str]| -> PathBuf {
        let mut args = vec!["create", "--json"];
        args.extend_from_slice(extra);
        let created: Value = serde_json::from_str(&source.ok(&args)).unwrap();
        source.backups().join(created["filename"].as_str().unwrap())
    };
    let (lean_zip, full_zip) = (create(&[]), create(&["--full"]));
    let lean_size = std::fs::metadata(&lean_zip).unwrap().len();
    let full_size = std::fs::metadata(&full_zip).unwrap().len();
    assert!(lean_size * 2 < full_size, "lean {lean_size} vs full {full_size}");

    let (lean, manifest) = extract(&source, &lean_zip, "lean.db");
    let omitted: Vec<&str> = manifest["omittedRows"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(omitted, PURGED_ON_RESTORE);
    // Framerr's own manifest fields are untouched.
    assert_eq!(manifest["purgedOnRestore"].as_array().unwrap().len(), PURGED_ON_RESTORE.len());
    for table in PURGED_ON_RESTORE {
        assert_eq!(count(&lean, table), 0, "{table}");
    }
    let (full, manifest) = extract(&source, &full_zip, "full.db");
    let omitted: Vec<&str> = manifest["omittedRows"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(omitted, NEVER_BACKED_UP);
    for table in NEVER_BACKED_UP {
        assert_eq!(count(&full, table), 0, "{table}: secrets are never backed up");
    }
    assert_eq!(count(&full, "media_library"), 3000);
    assert_eq!((count(&lean, "my_notes"), count(&full, "my_notes")), (1, 1), "a cascade took the user's rows");
    assert_eq!(count(&full, "notifications"), count(&source.db(), "notifications"));
    // Same schema, triggers included, byte for byte; search indexes consistent.
    assert_eq!(schema(&lean), schema(&source.db()));
    assert_eq!(schema(&full), schema(&source.db()));
    fts_is_consistent(&lean);
    fts_is_consistent(&full);
    let hits = query(&full, "SELECT count(*) FROM media_library_fts WHERE media_library_fts MATCH 'famous'");
    assert_eq!(hits[0][0], 3000);
    // The live database still has everything.
    assert_eq!(count(&source.db(), "media_library"), 3000);
    assert!(count(&source.db(), "sessions") > 0);

    for zip in [&lean_zip, &full_zip] {
        source.ok(&["verify", zip.to_str().unwrap()]);
    }
    // Restored onto two fresh instances: the same state, table by table.
    let restored: Vec<Instance> = [&lean_zip, &full_zip]
        .iter()
        .map(|zip| {
            let mut target = Instance::empty();
            target.key = Some(backup_e2e::FIXTURE_KEY.into());
            target.ok(&["restore", zip.to_str().unwrap(), "--yes"]);
            target
        })
        .collect();
    let tables = query(&restored[0].db(), "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
    let mut compared = 0;
    for t in tables.as_array().unwrap() {
        let table = t[0].as_str().unwrap();
        let sql = format!("SELECT * FROM \"{table}\" ORDER BY 1");
        let rows = |inst: &Instance| {
            let mut rows = query(&inst.db(), &sql).as_array().unwrap().clone();
            rows.sort_by_key(|r| r.to_string());
            rows
        };
        let (a, b) = (rows(&restored[0]), rows(&restored[1]));
        if table == "integration_instances" {
            // Configs re-encrypted with fresh IVs: compare the row count.
            assert_eq!(a.len(), b.len());
        } else {
            assert_eq!(a, b, "{table}");
        }
        compared += 1;
    }
    assert!(compared > 20, "only {compared} tables");
    assert_eq!(schema(&restored[0].db()), schema(&restored[1].db()));
}
