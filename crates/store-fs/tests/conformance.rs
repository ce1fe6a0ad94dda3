//! The local store passes the shared conformance suite, on a real folder,
//! and keeps what only a folder can get wrong (stray files, leftovers).

#![allow(clippy::unwrap_used)]

use backup_domain::conformance;
use backup_domain::ports::BackupStore;
use backup_fsutil::temp::UPLOAD_PREFIX;
use backup_store_fs::FsStore;

#[tokio::test]
async fn passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::new(dir.path().join("backups"));
    conformance::run_all(&store, conformance::Options::default()).await;
    // Nothing left behind: no temporaries from aborted or dropped uploads
    // (the owner file of this live process and the suite's documents aside).
    let left: Vec<String> = std::fs::read_dir(dir.path().join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with(".framerr-owner-") && !n.starts_with("framerr-backup."))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn lists_only_backup_files_and_cleans_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::new(dir.path());
    // A leftover of a process that is gone (no owner holds its token), and
    // the temporary of one that is running (this one).
    let stale = dir.path().join(format!("{UPLOAD_PREFIX}0123abcd-1-framerr-manual-x.partial"));
    std::fs::write(&stale, b"half a backup").unwrap();
    let live = backup_fsutil::temporary_path(dir.path(), UPLOAD_PREFIX, "framerr-manual-y.partial").unwrap();
    std::fs::write(&live, b"being written").unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
    std::fs::write(dir.path().join("framerr-manual-2026-11-26T03-00-00.zip"), b"zip").unwrap();
    std::fs::create_dir(dir.path().join("framerr-manual-2026-11-27T03-00-00.zip")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("framerr-safety-2026-11-26T03-00-00.zip")).unwrap();
    let listed: Vec<String> = store.list().await.unwrap().iter().map(|b| b.name.to_string()).collect();
    assert_eq!(listed, ["framerr-manual-2026-11-26T03-00-00.zip"]);
    store.prepare().await.unwrap();
    assert!(!stale.exists());
    assert!(live.exists(), "a running process's upload was removed");
    assert!(dir.path().join("notes.txt").exists());
    // A planted link is neither opened nor deleted through.
    let link = backup_domain::BackupName::parse("framerr-safety-2026-11-26T03-00-00.zip").unwrap();
    assert!(matches!(store.open(&link).await, Err(backup_domain::StoreError::NotFound(_))));
    assert!(matches!(store.open_file(&link).await, Err(backup_domain::StoreError::NotFound(_))));
    assert!(matches!(store.delete(&link).await, Err(backup_domain::StoreError::NotFound(_))));
    assert!(std::path::Path::new("/etc/passwd").exists());
}

#[tokio::test]
async fn a_missing_folder_lists_empty_and_an_unusable_one_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::new(dir.path().join("nope"));
    assert!(store.list().await.unwrap().is_empty());
    // A file where the folder should be.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"").unwrap();
    let store = FsStore::new(blocker.join("backups"));
    let name = backup_domain::BackupName::parse("framerr-manual-2026-11-26T03-00-00.zip").unwrap();
    let err = store.create(&name).await.err().unwrap().to_string();
    assert!(err.contains("file/backups"), "{err}");
}
