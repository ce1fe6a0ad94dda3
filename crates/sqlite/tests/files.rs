//! Database files that come from an archive are hostile: post-restore runs
//! none of their triggers, keeps their definitions, stops at a deadline;
//! the live database's state tells a damaged file from a missing one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use backup_domain::DbError;
use backup_domain::credentials::{CredentialColumn, Restored};
use backup_domain::encryption::{KeyStoreDecision, KeyStoreRow};
use backup_domain::manifest::PURGED_ON_RESTORE;
use backup_domain::ports::{Contents, Database, LiveDatabase, SnapshotKind};
use backup_domain::restore::{DatabaseFiles, PostRestorePlan, QueryKind};
use backup_sqlite::{Sandbox, SqliteDatabase, SqliteFiles};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, Row, SqliteConnection};

const MINUTE: Duration = Duration::from_secs(60);

/// The port as the server has it, with this crate's own sandbox program.
fn files() -> SqliteFiles {
    SqliteFiles::new(Sandbox::new(env!("CARGO_BIN_EXE_backup-sqlite-sandbox"), Vec::<String>::new()))
}

fn fixture(dir: &Path) -> PathBuf {
    let db = dir.join("framerr.db");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/framerr-0.4.1/instance-plain/framerr.db"),
        &db,
    )
    .unwrap();
    let mut perms = std::fs::metadata(&db).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&db, perms).unwrap();
    db
}

async fn connect(path: &Path) -> SqliteConnection {
    let options = SqliteConnectOptions::from_str("sqlite:").unwrap().filename(path);
    SqliteConnection::connect_with(&options).await.unwrap()
}

async fn exec(path: &Path, sql: &str) {
    let mut conn = connect(path).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

async fn count(path: &Path, sql: &str) -> i64 {
    let mut conn = connect(path).await;
    let n = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(&mut conn).await.unwrap().get(0);
    conn.close().await.unwrap();
    n
}

fn keep(_: CredentialColumn, _: &str) -> Result<Restored, backup_domain::CryptoError> {
    Ok(Restored::Keep)
}

fn remove(_: &KeyStoreRow) -> KeyStoreDecision {
    KeyStoreDecision::Remove
}

fn plan(budget: Duration) -> PostRestorePlan<'static> {
    PostRestorePlan { purge: &PURGED_ON_RESTORE, credential: &keep, key_store: &remove, budget }
}

#[tokio::test]
async fn post_restore_runs_no_trigger_of_the_archive_and_keeps_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path());
    // A trigger that would undo the purge, and one that never ends.
    exec(
        &db,
        "CREATE TRIGGER keep_sessions AFTER DELETE ON sessions BEGIN
             INSERT INTO sessions (token, user_id, expires_at) VALUES (old.token || 'x', old.user_id, old.expires_at);
         END;
         CREATE TRIGGER forever AFTER DELETE ON notifications BEGIN
             SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c);
         END;",
    )
    .await;
    let before = count(&db, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'").await;
    assert!(count(&db, "SELECT count(*) FROM sessions").await > 0);
    let started = Instant::now();
    let report = files().post_restore(&db, &plan(Duration::from_secs(60))).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(20), "a trigger ran: {:?}", started.elapsed());
    assert!(report.tables_purged.contains(&"sessions".to_owned()));
    assert_eq!(count(&db, "SELECT count(*) FROM sessions").await, 0, "the purge was undone");
    assert_eq!(count(&db, "SELECT count(*) FROM notifications").await, 0);
    // Every trigger is back, unchanged, and works (Framerr's own keep the
    // search index in step).
    assert_eq!(count(&db, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'").await, before);
    assert_eq!(count(&db, "SELECT count(*) FROM pragma_integrity_check WHERE integrity_check = 'ok'").await, 1);
    exec(&db, "DROP TRIGGER forever; INSERT INTO sessions (token, user_id, expires_at) VALUES ('t', 'u-admin', 1); DELETE FROM sessions WHERE token = 't'").await;
    assert_eq!(
        count(&db, "SELECT count(*) FROM sessions WHERE token = 'tx'").await,
        1,
        "keep_sessions no longer fires"
    );
    // Post-restore leaves no side files.
    assert!(!dir.path().join("framerr.db-wal").exists() && !dir.path().join("framerr.db-shm").exists());
}

#[tokio::test]
async fn post_restore_stops_at_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path());
    // Slow work that is not a trigger: 300,000 credentials to read; a zero
    // budget stands in for a slow one.
    exec(
        &db,
        "CREATE TABLE media_cache_big (x INTEGER PRIMARY KEY, b BLOB);
         WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000)
             INSERT INTO media_cache_big SELECT x, randomblob(100) FROM c;
         WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000)
             INSERT INTO integration_instances (id, type, display_name, config_encrypted)
             SELECT 'i' || x, 'plex', 'Plex', '{}' FROM c;",
    )
    .await;
    let purge: &'static [&'static str] = &["media_cache_big"];
    let slow = PostRestorePlan { purge, credential: &keep, key_store: &remove, budget: Duration::ZERO };
    let err = files().post_restore(&db, &slow).await.unwrap_err().to_string();
    assert!(err.contains("too much work"), "{err}");
    // Nothing half done: the transaction rolled back.
    assert_eq!(count(&db, "SELECT count(*) FROM media_cache_big").await, 300_000);
}

#[tokio::test]
async fn check_reports_version_and_tables_and_refuses_damage() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path());
    let facts = files().check(&db, &["users", "no_such_table"], MINUTE).await.unwrap();
    assert_eq!(facts.user_version, 48);
    assert_eq!(facts.counts, [("users".to_owned(), 4)]);
    assert!(facts.tables.contains(&"users".to_owned()) && facts.tables.contains(&"system_config".to_owned()));
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![7u8; 8192]).unwrap();
    assert!(files().check(&garbage, &[], MINUTE).await.is_err());
    // A checked file leaves no -wal or -shm behind.
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(!names.iter().any(|n| n.ends_with("-wal") || n.ends_with("-shm")), "{names:?}");
}

#[tokio::test]
async fn the_live_database_is_absent_readable_or_damaged_and_a_damaged_one_is_copied_raw() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let missing = SqliteDatabase::new(dir.path().join("none.db"), &work, None);
    assert_eq!(missing.state().await, LiveDatabase::Absent);
    let db = fixture(dir.path());
    let live = SqliteDatabase::new(&db, &work, None);
    assert_eq!(live.state().await, LiveDatabase::Readable { user_version: 48 });
    for damage in [Vec::new(), b"not a database at all".to_vec(), std::fs::read(&db).unwrap()[..1000].to_vec()] {
        let broken = dir.path().join("broken.db");
        std::fs::write(&broken, &damage).unwrap();
        std::fs::write(dir.path().join("broken.db-wal"), b"wal bytes").unwrap();
        let broken_db = SqliteDatabase::new(&broken, &work, None);
        assert!(matches!(broken_db.state().await, LiveDatabase::Damaged(_)), "{} bytes", damage.len());
        let raw = broken_db.raw_copy("unreadable").await.unwrap();
        assert_eq!((raw.size(), raw.user_version(), raw.damaged()), (damage.len() as u64, None, Some("unreadable")));
        let extras = raw.extras().await.unwrap();
        assert_eq!(extras.iter().map(|(n, s, _)| (n.as_str(), *s)).collect::<Vec<_>>(), [("framerr.db-wal", 9)]);
        drop((raw, extras));
        assert!(broken_db.snapshot(SnapshotKind::SameInstance, Contents::Full).await.is_err());
        let left: Vec<_> = std::fs::read_dir(&work).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(left.iter().all(|n| n.to_string_lossy().starts_with(".framerr-owner-")), "{left:?}");
    }
}

#[tokio::test]
async fn what_computes_with_the_files_own_code_is_found_from_the_schema_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path());
    // Framerr's own: the search index, nothing else.
    let framerrs = files().computed(&db, MINUTE).await.unwrap();
    assert_eq!(
        framerrs.iter().map(|q| (q.kind, q.name.as_str())).collect::<Vec<_>>(),
        [(QueryKind::VirtualTable, "media_library_fts")]
    );
    // Each would cost minutes or gigabytes when checked or read; finding
    // them evaluates none (a check of this file would run for ever).
    exec(
        &db,
        "CREATE VIEW endless AS WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT x FROM r;
         CREATE TABLE huge (id INTEGER PRIMARY KEY, big TEXT GENERATED ALWAYS AS (printf('%.*c', 300000000, 'x')) VIRTUAL);
         INSERT INTO huge (id) VALUES (1), (2), (3);
         CREATE TABLE costly (n INTEGER);
         INSERT INTO costly VALUES (1);
         CREATE INDEX on_expression ON costly (length(hex(zeroblob(50000000 + n))));
         CREATE INDEX with_condition ON costly (n) WHERE n > 0;",
    )
    .await;
    let started = Instant::now();
    let mut found: Vec<(QueryKind, String)> =
        files().computed(&db, MINUTE).await.unwrap().into_iter().map(|q| (q.kind, q.name)).collect();
    found.sort_by(|a, b| a.1.cmp(&b.1));
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(
        found,
        [
            (QueryKind::View, "endless".to_owned()),
            (QueryKind::GeneratedColumn, "huge.big".to_owned()),
            (QueryKind::VirtualTable, "media_library_fts".to_owned()),
            (QueryKind::ExpressionIndex, "on_expression".to_owned()),
            (QueryKind::ExpressionIndex, "with_condition".to_owned()),
        ]
    );
}

#[tokio::test]
async fn the_check_of_a_hostile_file_stops_at_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path());
    exec(
        &db,
        // Built cheaply, then its definition swapped for one that costs
        // milliseconds a row and gives the same values.
        "CREATE TABLE costly (n INTEGER);
         WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < 3000) INSERT INTO costly SELECT x FROM r;
         CREATE INDEX on_expression ON costly ((n + 0));
         PRAGMA writable_schema = ON;
         UPDATE sqlite_master SET sql = replace(sql, '(n + 0)', '(n + 0 * length(hex(zeroblob(5000000 + n))))') WHERE name = 'on_expression';
         PRAGMA writable_schema = OFF;",
    )
    .await;
    let started = Instant::now();
    let err = files().check(&db, &[], Duration::from_secs(1)).await.unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(err.contains("too much work"), "{err}");
}

/// The fixture with a table whose CHECK constraint builds `bytes` of hex
/// for every one of its `rows` rows: built cheaply, then its definition
/// swapped in, as an attacker would.
async fn costly_checks(db: &Path, bytes: u64, rows: u32) {
    exec(
        db,
        &format!(
            "CREATE TABLE costly (n INTEGER);
             WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < {rows}) INSERT INTO costly SELECT x FROM r;
             PRAGMA writable_schema = ON;
             UPDATE sqlite_master SET sql = 'CREATE TABLE costly (n INTEGER CHECK (length(hex(zeroblob({bytes}))) > 0))' WHERE name = 'costly';
             PRAGMA writable_schema = OFF;"
        ),
    )
    .await;
}

#[tokio::test]
async fn a_check_constraint_that_builds_huge_values_is_refused_at_sqlites_length_limit() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path());
    // 600 MB of hex a row: the server grew to 1.4 GB checking this.
    costly_checks(&db, 300_000_000, 20_000).await;
    let err = files().check(&db, &[], MINUTE).await.unwrap_err();
    assert!(matches!(err, DbError::TooMuchWork { .. }), "{err}");
    assert!(
        err.to_string().contains("refused: the database does too much work to check (a value over 8 MiB)"),
        "{err}"
    );
}

#[tokio::test]
async fn a_check_constraint_that_costs_cpu_is_refused_at_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path());
    // Under SQLite's length limit, but milliseconds a row: a minute of CPU.
    costly_checks(&db, 3_000_000, 20_000).await;
    let err = files().check(&db, &[], Duration::from_millis(500)).await.unwrap_err();
    assert!(matches!(err, DbError::TooMuchWork { .. }), "{err}");
}

#[tokio::test]
async fn the_sandbox_gets_no_environment_and_a_failing_one_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path());
    let seen = dir.path().join("env.txt");
    // A stand-in child that writes down what it was given, then fails.
    let script = "import os, sys\nopen(sys.argv[1], 'w').write('\\n'.join(sorted(os.environ)))\nsys.exit(3)";
    let spy = SqliteFiles::new(Sandbox::new("python3", ["-c", script, seen.to_str().unwrap()]));
    let err = spy.check(&db, &[], MINUTE).await.unwrap_err();
    assert!(matches!(err, DbError::Other(_)), "{err}");
    let env = std::fs::read_to_string(&seen).unwrap();
    let names: Vec<&str> = env.lines().filter(|n| *n != "TMPDIR" && *n != "LC_CTYPE").collect();
    assert_eq!(names, ["FRAMERR_BACKUP_SANDBOX"], "the test process has {} variables", std::env::vars().count());
}

#[tokio::test]
async fn purge_list_tables_spelt_in_another_case_are_purged_all_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path());
    // SQLite's names are case-insensitive: Framerr reads `SESSIONS` as its
    // sessions. It used to survive the purge with a planted token.
    exec(
        &db,
        "INSERT INTO sessions (token, user_id, expires_at) VALUES ('PLANTED-TOKEN', 'u-admin', 9999999999);
         PRAGMA writable_schema = ON;
         UPDATE sqlite_master SET name = 'SESSIONS', tbl_name = 'SESSIONS', sql = replace(sql, 'TABLE sessions', 'TABLE SESSIONS') WHERE name = 'sessions';
         PRAGMA writable_schema = OFF;",
    )
    .await;
    let report = files().post_restore(&db, &plan(MINUTE)).await.unwrap();
    assert!(report.tables_purged.contains(&"sessions".to_owned()), "{report:?}");
    assert_eq!(count(&db, "SELECT count(*) FROM SESSIONS").await, 0);
}
