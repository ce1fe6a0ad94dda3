//! A backup never runs the user's code: emptying the purge tables in the
//! snapshot (and decrypting credentials there) fires no trigger, whatever
//! table it is on and however its `ON` clause spells it, and no
//! foreign-key action. So a lean backup holds exactly what a `--full` one
//! holds, minus the purged rows, and both hold the live rows of every
//! table they keep.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use backup_domain::manifest::{NEVER_BACKED_UP, PURGED_ON_RESTORE};
use backup_domain::ports::{Contents, Database, FieldCipher, SnapshotKind};
use backup_sqlite::SqliteDatabase;
use proptest::prelude::*;
use rusqlite::Connection;

/// How an `ON` clause or a `REFERENCES` may name a table.
fn spelt(table: &str, how: u8) -> String {
    let upper = table.to_uppercase();
    let mut capital = table.to_owned();
    capital[..1].make_ascii_uppercase();
    match how % 6 {
        0 => table.to_owned(),
        1 => upper,
        2 => capital,
        3 => format!("\"{upper}\""),
        4 => format!("[{capital}]"),
        _ => format!("`{table}`"),
    }
}

#[derive(Debug, Clone)]
struct Trigger {
    /// An index into the purge list, or the credentials' table.
    on: usize,
    spelling: u8,
    before: bool,
    /// Which user table it changes, and how.
    target: usize,
    action: u8,
}

#[derive(Debug, Clone)]
struct Case {
    user_tables: usize,
    triggers: Vec<Trigger>,
    /// User tables whose rows reference a purge table with ON DELETE CASCADE.
    cascades: Vec<(usize, u8)>,
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..4).prop_flat_map(|user_tables| {
        let trigger = (0..PURGED_ON_RESTORE.len() + 1, any::<u8>(), any::<bool>(), 0..user_tables, 0u8..3)
            .prop_map(|(on, spelling, before, target, action)| Trigger { on, spelling, before, target, action });
        (
            Just(user_tables),
            proptest::collection::vec(trigger, 1..6),
            proptest::collection::vec((0..user_tables, any::<u8>()), 0..3),
        )
            .prop_map(|(user_tables, triggers, cascades)| Case { user_tables, triggers, cascades })
    })
}

fn build(live: &Path, case: &Case) {
    let conn = Connection::open(live).unwrap();
    for k in 0..case.user_tables {
        conn.execute_batch(&format!(
            "CREATE TABLE audit_{k} (id INTEGER PRIMARY KEY, note TEXT, s TEXT);
             INSERT INTO audit_{k} (note, s) SELECT 'row ' || value, (SELECT token FROM sessions LIMIT 1)
                 FROM json_each('[1,2,3,4,5]');"
        ))
        .unwrap();
    }
    for (n, (k, spelling)) in case.cascades.iter().enumerate() {
        conn.execute_batch(&format!(
            "CREATE TABLE owned_{n} (id INTEGER PRIMARY KEY, s TEXT REFERENCES {} (token) ON DELETE CASCADE);
             INSERT INTO owned_{n} (s) SELECT token FROM sessions;
             INSERT INTO audit_{k} (note) VALUES ('owner of owned_{n}');",
            spelt("sessions", *spelling)
        ))
        .unwrap();
    }
    for (n, t) in case.triggers.iter().enumerate() {
        let (event, table) = match PURGED_ON_RESTORE.get(t.on) {
            Some(table) => ("DELETE", *table),
            // Decrypting a credential in the copy is an UPDATE.
            None => ("UPDATE", "integration_instances"),
        };
        let action = match t.action {
            0 => format!("DELETE FROM audit_{};", t.target),
            1 => format!("INSERT INTO audit_{} (note) VALUES ('fired {n}');", t.target),
            _ => format!("UPDATE audit_{} SET note = 'changed by {n}';", t.target),
        };
        let when = if t.before { "BEFORE" } else { "AFTER" };
        conn.execute_batch(&format!(
            "CREATE TRIGGER user_trigger_{n} {when} {event} ON {} BEGIN {action} END;",
            spelt(table, t.spelling)
        ))
        .unwrap();
    }
}

/// Every row of `table`, in order, as text.
fn rows(conn: &Connection, table: &str) -> Vec<String> {
    let mut statement = conn.prepare(&format!("SELECT * FROM \"{table}\" ORDER BY rowid")).unwrap();
    let columns = statement.column_count();
    let mut rows = statement.query([]).unwrap();
    let mut all = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        let values: Vec<String> =
            (0..columns).map(|i| format!("{:?}", row.get::<_, rusqlite::types::Value>(i).unwrap())).collect();
        all.push(values.join("|"));
    }
    all
}

fn schema(conn: &Connection) -> Vec<String> {
    let mut statement = conn
        .prepare("SELECT type || ' ' || name || ' ' || tbl_name || ' ' || coalesce(sql, '') FROM sqlite_master ORDER BY name")
        .unwrap();
    statement.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

fn tables(conn: &Connection) -> Vec<String> {
    let mut statement = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'media_library_fts%'")
        .unwrap();
    statement.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

async fn snapshot(db: &SqliteDatabase, contents: Contents, to: &Path) {
    let snapshot = db.snapshot(SnapshotKind::Portable, contents).await.unwrap();
    let mut reader = tokio_util::compat::FuturesAsyncReadCompatExt::compat(snapshot.open().await.unwrap());
    let mut file = tokio::fs::File::create(to).await.unwrap();
    tokio::io::copy(&mut reader, &mut file).await.unwrap();
}

/// A writable copy of Framerr's own database in `dir`.
fn fixture(dir: &Path) -> std::path::PathBuf {
    let live = dir.join("framerr.db");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/framerr-0.4.1/instance-plain/framerr.db"),
        &live,
    )
    .unwrap();
    let mut perms = std::fs::metadata(&live).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&live, perms).unwrap();
    live
}

fn check(case: &Case) {
    let dir = tempfile::tempdir().unwrap();
    let live = fixture(dir.path());
    build(&live, case);
    // The fixture's key: its integration configs decrypt in the copy.
    let key = backup_crypto::InstanceKey::from_hex(FIXTURE_KEY).unwrap();
    let cipher: Arc<dyn FieldCipher> = Arc::new(backup_crypto::FieldCrypto::new(&key));
    let db = SqliteDatabase::new(&live, dir.path(), Some(cipher));
    let (lean, full) = (dir.path().join("lean.db"), dir.path().join("full.db"));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        snapshot(&db, Contents::Lean, &lean).await;
        snapshot(&db, Contents::Full, &full).await;
    });
    let (live, lean, full) =
        (Connection::open(&live).unwrap(), Connection::open(&lean).unwrap(), Connection::open(&full).unwrap());
    assert_eq!(schema(&lean), schema(&live), "the lean backup's schema");
    assert_eq!(schema(&full), schema(&live), "the full backup's schema");
    for table in tables(&live) {
        let kept = rows(&live, &table);
        let credentials = table == "integration_instances" || table == "oidc_config";
        if PURGED_ON_RESTORE.contains(&table.as_str()) {
            assert!(rows(&lean, &table).is_empty(), "{table} in the lean backup");
        } else if !credentials {
            assert_eq!(rows(&lean, &table), kept, "{table} in the lean backup");
        }
        if NEVER_BACKED_UP.contains(&table.as_str()) {
            assert!(rows(&full, &table).is_empty(), "{table} in the full backup");
        } else if !credentials {
            assert_eq!(rows(&full, &table), kept, "{table} in the full backup");
        }
        if credentials {
            assert_eq!(rows(&lean, &table), rows(&full, &table), "{table}: decrypted alike");
        }
    }
}

/// The fixtures' `SECRET_ENCRYPTION_KEY`.
const FIXTURE_KEY: &str = "f00dfacecafebeef0123456789abcdef00112233445566778899aabbccddeeff";

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn a_lean_backup_is_a_full_one_minus_the_purged_rows(case in case()) {
        check(&case);
    }
}

/// Fills the purge tables with rows that carry `MARK` in text, in blobs
/// and in long values (overflow pages), the media library through
/// Framerr's own triggers so that its search index holds them too.
fn fill_purged(live: &Path, rows: u32) {
    let conn = Connection::open(live).unwrap();
    conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    conn.execute_batch(&format!(
        "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < {rows})
         INSERT INTO sessions (token, user_id, expires_at) SELECT '{MARK}-token-' || x, 'u-admin', 9999999999 FROM r;
         WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < {rows})
         INSERT INTO notifications (id, user_id, title, message)
             SELECT 'n' || x, 'u-admin', '{MARK}-title', printf('%.*c', 9000, 'x') || '{MARK}-long' FROM r;
         WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < {rows})
         INSERT INTO service_monitor_history (id, monitor_id, status, checked_at)
             SELECT 'h' || x, '{MARK}-monitor', 'up', x FROM r;"
    ))
    .unwrap();
    let columns: Vec<String> = conn
        .prepare(
            "SELECT name FROM pragma_table_info('media_library') WHERE \"notnull\" AND dflt_value IS NULL AND NOT pk",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for x in 0..rows {
        let mut names = vec!["title".to_owned(), "summary".to_owned(), "media_type".to_owned()];
        let mut values = vec![format!("'{MARK}-media-{x}'"), format!("'{MARK} summary'"), "'movie'".to_owned()];
        for column in columns.iter().filter(|c| !["title", "summary", "media_type"].contains(&c.as_str())) {
            names.push(column.clone());
            values.push(format!("'{MARK}-{column}-{x}'"));
        }
        conn.execute(&format!("INSERT INTO media_library ({}) VALUES ({})", names.join(", "), values.join(", ")), [])
            .unwrap();
    }
}

const MARK: &str = "PURGED-ROW-MARK";

#[test]
fn no_byte_of_a_left_out_row_reaches_the_backup_free_pages_included() {
    // Few rows (freed pages left as zeros, no compaction) and many (most of
    // the file freed: compacted).
    for rows in [50, 3000] {
        let dir = tempfile::tempdir().unwrap();
        let live = fixture(dir.path());
        fill_purged(&live, rows);
        assert!(find(&std::fs::read(&live).unwrap(), MARK.as_bytes()));
        let db = SqliteDatabase::new(&live, dir.path(), None);
        let lean = dir.path().join("lean.db");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(snapshot(&db, Contents::Lean, &lean));
        let bytes = std::fs::read(&lean).unwrap();
        assert!(!find(&bytes, MARK.as_bytes()), "{rows} rows: a left-out row's bytes are in the backup");
        assert!(!find(&bytes, b"PURGED-ROW"), "{rows} rows");
        let conn = Connection::open(&lean).unwrap();
        let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
        conn.execute("INSERT INTO media_library_fts(media_library_fts) VALUES('integrity-check')", []).unwrap();
        let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0)).unwrap();
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
        assert!(free * 2 <= pages, "{rows} rows: {free} of {pages} pages free");
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
