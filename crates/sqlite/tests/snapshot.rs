//! Snapshots of a live WAL database while another connection keeps
//! writing: each snapshot passes `integrity_check` and holds one instant's
//! state, and the writer is never blocked for long.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use backup_domain::ports::{Contents, Database, FieldCipher, SnapshotKind};
use backup_sqlite::SqliteDatabase;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{Connection, Row, SqliteConnection};
use tokio::io::AsyncReadExt;
use tokio_util::compat::FuturesAsyncReadCompatExt;

async fn connect(path: &Path, create: bool) -> SqliteConnection {
    let options = SqliteConnectOptions::from_str("sqlite:")
        .unwrap()
        .filename(path)
        .create_if_missing(create)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(30));
    SqliteConnection::connect_with(&options).await.unwrap()
}

/// Copies a snapshot out through the port, as the archiver reads it.
async fn materialise(snapshot: &dyn backup_domain::ports::Snapshot, to: &Path) {
    let mut reader = snapshot.open().await.unwrap().compat();
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).await.unwrap();
    assert_eq!(bytes.len() as u64, snapshot.size());
    std::fs::write(to, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_hold_one_instant_while_a_writer_hammers() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("framerr.db");
    let mut setup = connect(&live, true).await;
    sqlx::raw_sql(
        "CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
         WITH RECURSIVE i(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM i WHERE x < 50) INSERT INTO counter SELECT x, 0 FROM i;
         CREATE TABLE ballast (id INTEGER PRIMARY KEY, blob BLOB, note TEXT);
         CREATE INDEX ballast_note ON ballast(note);
         WITH RECURSIVE i(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM i WHERE x < 4000) INSERT INTO ballast SELECT x, randomblob(1000), hex(randomblob(20)) FROM i;
         PRAGMA user_version = 48;",
    )
    .execute(&mut setup)
    .await
    .unwrap();
    setup.close().await.unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let longest_commit = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, commits, longest) = (Arc::clone(&stop), Arc::clone(&commits), Arc::clone(&longest_commit));
        let live = live.clone();
        tokio::spawn(async move {
            let mut conn = connect(&live, false).await;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let mut tx = conn.begin().await.unwrap();
                sqlx::query("UPDATE counter SET n = n + 1").execute(&mut *tx).await.unwrap();
                sqlx::query("INSERT INTO ballast (blob, note) VALUES (randomblob(500), 'w')")
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                longest.fetch_max(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                commits.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    let db = SqliteDatabase::new(&live, dir.path().join("work"), None);
    let mut last_n = -1i64;
    let during = commits.load(Ordering::Relaxed);
    for i in 0..12 {
        let snapshot = db.snapshot(SnapshotKind::Portable, Contents::Full).await.unwrap();
        assert_eq!(snapshot.user_version(), Some(48));
        let copy = dir.path().join(format!("copy-{i}.db"));
        materialise(snapshot.as_ref(), &copy).await;
        drop(snapshot);
        let mut conn = connect(&copy, false).await;
        let check: String = sqlx::query("PRAGMA integrity_check").fetch_one(&mut conn).await.unwrap().get(0);
        assert_eq!(check, "ok");
        let row = sqlx::query("SELECT min(n), max(n), count(*) FROM counter").fetch_one(&mut conn).await.unwrap();
        let (min, max, count): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        assert_eq!(count, 50);
        assert_eq!(min, max, "snapshot {i} mixes two transactions");
        // The ballast rows the writer added match its counter: one instant.
        let added: i64 =
            sqlx::query("SELECT count(*) FROM ballast WHERE note = 'w'").fetch_one(&mut conn).await.unwrap().get(0);
        assert_eq!(added, max, "snapshot {i}: counter and inserts disagree");
        assert!(max >= last_n, "snapshots went back in time");
        last_n = max;
        conn.close().await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let written = commits.load(Ordering::Relaxed) - during;
    assert!(written > 12, "the writer was starved: {written} commits during 12 snapshots");
    // Snapshot files are gone once dropped.
    let left: Vec<String> = std::fs::read_dir(dir.path().join("work"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with(".framerr-owner-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    eprintln!(
        "writer committed {written} times during the snapshots; longest commit {} ms",
        longest_commit.load(Ordering::Relaxed)
    );
}

#[tokio::test]
async fn credentials_are_decrypted_in_the_copy_only() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("framerr.db");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/framerr-0.4.1/instance-plain/framerr.db"),
        &live,
    )
    .unwrap();
    let key = backup_crypto::InstanceKey::from_hex("f00dfacecafebeef0123456789abcdef00112233445566778899aabbccddeeff")
        .unwrap();
    let cipher: Arc<dyn FieldCipher> = Arc::new(backup_crypto::FieldCrypto::new(&key));
    let db = SqliteDatabase::new(&live, dir.path(), Some(cipher));
    let snapshot = db.snapshot(SnapshotKind::Portable, Contents::Full).await.unwrap();
    let copy = dir.path().join("copy.db");
    materialise(snapshot.as_ref(), &copy).await;
    let mut conn = connect(&copy, false).await;
    let plex: String = sqlx::query("SELECT config_encrypted FROM integration_instances WHERE id = 'int-plex'")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(plex, r#"{"url":"http://plex.local:32400","token":"plex-token-AbC123xyz","machineId":"f00d"}"#);
    let mut live_conn = connect(&live, false).await;
    let still: String = sqlx::query("SELECT config_encrypted FROM integration_instances WHERE id = 'int-plex'")
        .fetch_one(&mut live_conn)
        .await
        .unwrap()
        .get(0);
    assert!(!still.starts_with('{'));
    // A safety backup's snapshot keeps this instance's encryption: it is
    // restored here, and must not hold API keys in clear.
    let snapshot = db.snapshot(SnapshotKind::SameInstance, Contents::Full).await.unwrap();
    let same = dir.path().join("same.db");
    materialise(snapshot.as_ref(), &same).await;
    let mut conn = connect(&same, false).await;
    for (column, table) in [("config_encrypted", "integration_instances"), ("client_secret", "oidc_config")] {
        let rows: Vec<Option<String>> = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {column} FROM {table}")))
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut live_conn = connect(&live, false).await;
        let live_rows: Vec<Option<String>> = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {column} FROM {table}")))
            .fetch_all(&mut live_conn)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(rows, live_rows, "{table}.{column} changed in a same-instance snapshot");
    }
    // A wrong key leaves values as they are instead of failing the backup.
    let wrong: Arc<dyn FieldCipher> =
        Arc::new(backup_crypto::FieldCrypto::new(&backup_crypto::InstanceKey::from_bytes([9; 32])));
    let db = SqliteDatabase::new(&live, dir.path(), Some(wrong));
    let snapshot = db.snapshot(SnapshotKind::Portable, Contents::Full).await.unwrap();
    let copy2 = dir.path().join("copy2.db");
    materialise(snapshot.as_ref(), &copy2).await;
    let mut conn = connect(&copy2, false).await;
    let untouched: String = sqlx::query("SELECT config_encrypted FROM integration_instances WHERE id = 'int-plex'")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(untouched, still);
}

#[tokio::test]
async fn schedule_round_trips_through_system_config() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("framerr.db");
    let mut setup = connect(&live, true).await;
    sqlx::raw_sql("CREATE TABLE system_config (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL DEFAULT (strftime('%s', 'now')))")
        .execute(&mut setup)
        .await
        .unwrap();
    let db = SqliteDatabase::new(&live, dir.path(), None);
    assert_eq!(db.schedule().await.unwrap(), None);
    let schedule = backup_domain::Schedule::default()
        .apply(&serde_json::json!({"enabled": true, "hour": 4, "frequency": "weekly", "dayOfWeek": 2}))
        .unwrap();
    db.save_schedule(&schedule).await.unwrap();
    db.save_schedule(&schedule).await.unwrap();
    assert_eq!(db.schedule().await.unwrap(), Some(schedule));
    sqlx::query("UPDATE system_config SET value = '{\"enabled\": true, \"hour\": 99}'")
        .execute(&mut setup)
        .await
        .unwrap();
    let err = db.schedule().await.unwrap_err().to_string();
    assert!(err.contains("hour must be a whole number from 0 to 23"), "{err}");
}
