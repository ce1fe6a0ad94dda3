//! The restore use case over test doubles: the order of its steps, what it
//! holds while it runs, and what it refuses.

use std::sync::Arc;

use futures::executor::block_on;

use super::*;
use crate::encryption::KeyStoreOutcome;
use crate::kind::BackupKind;
use crate::memory::MemoryStore;
use crate::ports::{BackupStore, InstanceLock, LiveDatabase};
use crate::testkit::restore::{World, restorer};

fn request(password: &str) -> RestoreRequest {
    RestoreRequest {
        source: Source::File(Arc::new(b"FRMRBKUP".to_vec())),
        password: Some(Password::new(password)),
        limits: RestoreLimits::default(),
        only_without_users: false,
    }
}

fn kinds(store: &MemoryStore) -> Vec<String> {
    block_on(store.list()).unwrap().iter().map(|b| b.name.to_string()).collect()
}

#[test]
fn one_hold_covers_the_whole_restore_safety_backup_included() {
    let w = World::new();
    let store = MemoryStore::default();
    let r = restorer(&w, &store);
    let summary = block_on(r.restore(request("right password"))).unwrap();
    assert_eq!(
        w.log.all(),
        [
            "open memory",
            "stage",
            "check staged.db",
            "post-restore",
            "tag",
            "snapshot SameInstance busy=true locked=true",
            "commit busy=true locked=true",
        ]
    );
    assert!(matches!(&summary.safety, SafetyBackup::Made(n) if n.kind() == BackupKind::Safety));
    assert_eq!(kinds(&store).len(), 1, "one safety backup");
    // The key store row opened with the backup's password is rewrapped.
    assert_eq!(summary.post.key_store, KeyStoreOutcome::Rewrapped);
    assert!(!w.busy.is_busy() && !w.lock.is_held(), "released after the restore");
}

#[test]
fn nothing_is_saved_or_swapped_before_the_tag_verifies() {
    let mut w = World::new();
    Arc::get_mut(&mut w).unwrap().tag_ok = false;
    let store = MemoryStore::default();
    let err = block_on(restorer(&w, &store).restore(request("right password"))).unwrap_err();
    assert!(matches!(err, RestoreError::Open(OpenError::Tampered)), "{err}");
    assert!(!w.log.all().iter().any(|l| l.starts_with("commit") || l.starts_with("snapshot")), "{:?}", w.log.all());
    assert!(kinds(&store).is_empty());
}

#[test]
fn wrong_or_missing_passwords_stop_before_anything_is_staged() {
    let w = World::new();
    let r = restorer(&w, &MemoryStore::default());
    assert!(matches!(block_on(r.restore(request("nope"))), Err(RestoreError::Open(OpenError::WrongPassword))));
    let mut req = request("");
    req.password = None;
    assert!(matches!(block_on(r.restore(req)), Err(RestoreError::Open(OpenError::PasswordRequired))));
    assert!(!w.log.all().contains(&"stage".to_owned()));
}

#[test]
fn setup_restore_is_refused_when_a_user_appears_before_the_swap() {
    let w = World::new();
    // No user at the first look, one by the last (an admin created meanwhile).
    *w.users.lock().unwrap() = vec![false, true];
    let store = MemoryStore::default();
    let mut req = request("right password");
    req.only_without_users = true;
    let err = block_on(restorer(&w, &store).restore(req)).unwrap_err();
    assert!(matches!(err, RestoreError::SetupClosed), "{err}");
    let log = w.log.all();
    assert_eq!(log.iter().filter(|l| *l == "any user?").count(), 2);
    assert!(!log.iter().any(|l| l.starts_with("commit")), "{log:?}");
}

#[test]
fn a_damaged_live_database_is_kept_raw_and_does_not_block_the_restore() {
    let mut w = World::new();
    // A backup from any version restores over a database whose version is unknown.
    Arc::get_mut(&mut w).unwrap().staged_version = 99;
    *w.live.lock().unwrap() = LiveDatabase::Damaged("framerr.db is not a SQLite database".into());
    let store = MemoryStore::default();
    let summary = block_on(restorer(&w, &store).restore(request("right password"))).unwrap();
    match &summary.safety {
        SafetyBackup::Raw { name, why } => {
            assert_eq!(name.kind(), BackupKind::Safety);
            assert!(why.contains("not a SQLite database"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    // Copied raw without trying to open it.
    assert!(w.log.all().contains(&"raw copy".to_owned()));
    assert!(!w.log.all().iter().any(|l| l.starts_with("snapshot")), "{:?}", w.log.all());
}

#[test]
fn newer_and_foreign_databases_are_refused_by_restore_and_verify_alike() {
    let mut w = World::new();
    Arc::get_mut(&mut w).unwrap().staged_version = 49;
    let r = restorer(&w, &MemoryStore::default());
    assert!(matches!(block_on(r.restore(request("right password"))), Err(RestoreError::TooNew(_))));
    let pw = Password::new("right password");
    let source = || Source::File(Arc::new(b"FRMRBKUP".to_vec()));
    assert!(matches!(block_on(r.verify(source(), Some(&pw))), Err(RestoreError::TooNew(_))));

    let mut w = World::new();
    Arc::get_mut(&mut w).unwrap().tables = vec!["users".into()];
    let r = restorer(&w, &MemoryStore::default());
    let err = block_on(r.restore(request("right password"))).unwrap_err();
    assert!(err.to_string().contains("not a Framerr database"), "{err}");
    assert!(matches!(block_on(r.verify(source(), Some(&pw))), Err(RestoreError::NotFramerr(_))));
    assert!(!w.log.all().iter().any(|l| l.starts_with("commit")));

    // A good one verifies, and verify never takes the instance.
    let w = World::new();
    let r = restorer(&w, &MemoryStore::default());
    let report = block_on(r.verify(source(), Some(&pw))).unwrap();
    assert_eq!((report.user_version, report.live_version), (48, Some(48)));
    assert!(w.log.all().contains(&"stage for check".to_owned()));
}

#[test]
fn another_holder_makes_restore_busy_and_a_stored_name_is_fetched() {
    let w = World::new();
    let store = MemoryStore::default();
    let r = restorer(&w, &store);
    let held = block_on(w.lock.acquire(std::time::Duration::ZERO)).unwrap();
    assert!(matches!(block_on(r.restore(request("right password"))), Err(RestoreError::Busy(_))));
    drop(held);
    let missing = BackupName::parse("framerr-manual-2026-01-01T00-00-00.framerr-backup").unwrap();
    let mut req = request("right password");
    req.source = Source::Stored(missing.clone());
    assert!(matches!(block_on(r.restore(req)), Err(RestoreError::NotFound(_))));
    let mut upload = block_on(store.create(&missing)).unwrap();
    block_on(futures::io::AsyncWriteExt::write_all(&mut upload, b"FRMRBKUP...")).unwrap();
    block_on(upload.commit()).unwrap();
    let mut req = request("right password");
    req.source = Source::Stored(missing);
    block_on(r.restore(req)).unwrap();
    assert!(w.log.all().iter().any(|l| l == "open memory"));
}

/// Counts its runs and says whether Framerr's hold was released first.
struct CountingRestarter {
    runs: std::sync::Mutex<u32>,
    world: Arc<World>,
}

#[async_trait::async_trait]
impl Restarter for CountingRestarter {
    async fn restart(&self) -> RestartOutcome {
        *self.runs.lock().unwrap() += 1;
        assert!(
            !self.world.busy.is_busy() && !self.world.lock.is_held(),
            "restart runs after the instance is released"
        );
        RestartOutcome::Done { command: "restart framerr".into() }
    }
}

#[test]
fn the_restart_command_runs_once_when_framerr_was_running_and_never_otherwise() {
    for running in [false, true] {
        let mut w = World::new();
        Arc::get_mut(&mut w).unwrap().framerr_running = running;
        let store = MemoryStore::default();
        let restarter = Arc::new(CountingRestarter { runs: Default::default(), world: w.clone() });
        let mut r = restorer(&w, &store);
        let without = block_on(r.restore(request("right password"))).unwrap();
        let expected = if running { FramerrAfterRestore::RestartNeeded } else { FramerrAfterRestore::NotRunning };
        assert_eq!(without.framerr, expected);
        r.restarter = Some(restarter.clone());
        let with = block_on(r.restore(request("right password"))).unwrap();
        if running {
            let done = RestartOutcome::Done { command: "restart framerr".into() };
            assert_eq!(with.framerr, FramerrAfterRestore::Restarted(done));
        } else {
            assert_eq!(with.framerr, FramerrAfterRestore::NotRunning);
        }
        assert_eq!(*restarter.runs.lock().unwrap(), u32::from(running), "running={running}");
    }
}
