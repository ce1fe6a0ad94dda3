//! Bad input gets a clear error naming what and where, leaves no partial
//! backup, and never touches the live database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use backup_e2e::Instance;

fn no_backup_left(inst: &Instance) {
    let files = inst.backup_files();
    assert!(files.is_empty(), "left behind: {files:?}");
}

#[test]
fn missing_database() {
    let inst = Instance::empty();
    let err = inst.fails(&["create"]);
    assert!(err.contains("database not found") && err.contains("framerr.db"), "{err}");
    no_backup_left(&inst);
    assert!(!inst.db().exists(), "the live database was created");
}

#[test]
fn a_database_that_is_not_sqlite_is_left_alone() {
    let inst = Instance::empty();
    std::fs::write(inst.db(), b"this is a text file, not a database").unwrap();
    let err = inst.fails(&["create"]);
    assert!(err.contains("is not a SQLite database") && err.contains("framerr.db"), "{err}");
    assert_eq!(std::fs::read(inst.db()).unwrap(), b"this is a text file, not a database");
    no_backup_left(&inst);
}

#[test]
fn a_backups_folder_that_cannot_be_a_folder() {
    let inst = Instance::from_fixture();
    std::fs::write(inst.backups(), b"a file where the folder should be").unwrap();
    let err = inst.fails(&["create"]);
    assert!(err.contains("backups"), "{err}");
}

#[test]
fn a_full_output_device() {
    let inst = Instance::from_fixture();
    let err = inst.fails(&["create", "--output", "/dev/full"]);
    assert!(err.contains("/dev/full") && err.to_lowercase().contains("no space"), "{err}");
}

/// A real full disk: a 512 KiB tmpfs as the backups folder.
#[test]
#[ignore = "needs root to mount a tmpfs (CI runs as root and runs it)"]
fn a_full_disk_leaves_no_partial_backup() {
    let inst = Instance::from_fixture();
    // Make the database bigger than the disk.
    let filler = "x".repeat(4000);
    let sql = format!(
        "CREATE TABLE filler(v); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 400) INSERT INTO filler SELECT '{filler}' || i || hex(randomblob(500)) FROM n;"
    );
    let st = Command::new("sqlite3").arg(inst.db()).arg(&sql).status();
    if !st.is_ok_and(|s| s.success()) {
        let py = format!(
            "import sqlite3; c=sqlite3.connect('{}'); c.executescript(\"{sql}\"); c.commit()",
            inst.db().display()
        );
        assert!(Command::new("python3").arg("-c").arg(py).status().unwrap().success());
    }
    let full = backup_e2e::Tmpfs::mount(&inst.backups(), "512k");
    let before = std::fs::read(inst.db()).unwrap();
    let out = inst.run(&["create"]);
    let files = inst.backup_files();
    drop(full);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "backup succeeded on a full disk");
    assert!(err.to_lowercase().contains("no space") && err.contains("backups"), "{err}");
    assert!(files.is_empty(), "left behind: {files:?}");
    assert_eq!(std::fs::read(inst.db()).unwrap(), before, "the live database changed");
}

/// An asset the backup cannot read fails the backup, naming the file. Run
/// as an unprivileged user, since root reads everything.
#[test]
#[ignore = "needs root and setpriv to run as another user (CI runs as root and runs it)"]
fn an_unreadable_asset_file() {
    let inst = Instance::from_fixture();
    let secret = inst.data().join("upload/custom-icons/icon-1.png");
    Command::new("chmod").args(["-R", "a+rwX"]).arg(inst.dir.path()).status().unwrap();
    Command::new("chmod").arg("000").arg(&secret).status().unwrap();
    let cmd = inst.command(&["create"]);
    let program = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(ToOwned::to_owned).collect();
    let envs: Vec<_> = cmd.get_envs().map(|(k, v)| (k.to_owned(), v.map(ToOwned::to_owned))).collect();
    let mut wrapped = Command::new("setpriv");
    wrapped.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]).arg(program).args(args);
    wrapped.current_dir(inst.dir.path());
    for (k, v) in envs {
        match v {
            Some(v) => wrapped.env(k, v),
            None => wrapped.env_remove(k),
        };
    }
    let out = wrapped.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "backup succeeded without an asset");
    assert!(err.contains("icon-1.png") && err.contains("ermission denied"), "{err}");
    let files = inst.backup_files();
    assert!(files.iter().all(|f| !f.starts_with("framerr-") && !f.starts_with(".framerr")), "{files:?}");
}

#[test]
fn a_reader_that_went_away_ends_the_command_quietly() {
    let inst = backup_e2e::Instance::from_fixture();
    inst.ok(&["create"]);
    for args in [&["list"][..], &["list", "--json"], &["prune", "--dry-run"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = inst.command(args).stdout(writer).stderr(std::process::Stdio::piped()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(141), "{args:?}: {stderr}");
    }
}
