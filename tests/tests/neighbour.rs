//! Restore beside a running Framerr: a stand-in (`tests/standin/framerr.py`)
//! holds the database open in WAL mode through one connection for its
//! whole life, as Framerr does, and writes a row every few milliseconds.
//! A restore must reach that connection at once, lose none of what it
//! writes afterwards, never leave it on a deleted file, and stay wholly
//! old or wholly new through a kill -9 anywhere.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use backup_e2e::{
    Instance, Server, StandIn, hidden_leftovers, http, new_backup, old_instance, python_ok, query, wholly_old_or_new,
};
use serde_json::{Value, json};

const TOKEN: &str = "neighbour-token";

/// Waits until the stand-in reads `marker` through its open connection.
fn sees(standin: &StandIn, marker: &str, within: Duration) -> Duration {
    let started = Instant::now();
    while standin.state()["marker"] != marker {
        assert!(started.elapsed() < within, "the stand-in still reads {} after {within:?}", standin.state());
        std::thread::sleep(Duration::from_millis(5));
    }
    started.elapsed()
}

/// Every row the stand-in committed after it saw the restored database is
/// in the database it closed, read again from the file.
fn keeps_writes_made_after_the_restore(db: &Path, committed: &[(String, String)]) {
    let after: Vec<&String> = committed.iter().filter(|(_, m)| m == "new").map(|(k, _)| k).collect();
    assert!(after.len() > 10, "the stand-in wrote too little after the restore: {}", after.len());
    let rows = query(db, "SELECT key FROM system_config WHERE key LIKE 'standin-%'");
    let kept: std::collections::HashSet<&str> = rows.as_array().unwrap().iter().filter_map(|r| r[0].as_str()).collect();
    let lost: Vec<&&String> = after.iter().filter(|k| !kept.contains(k.as_str())).collect();
    assert!(lost.is_empty(), "{} of {} writes made after the restore were lost: {lost:?}", lost.len(), after.len());
}

#[test]
fn a_restore_beside_a_running_framerr_reaches_its_connection_and_loses_none_of_its_writes() {
    let (_source, zip) = new_backup(0);
    let inst = old_instance();
    let standin = StandIn::start(&inst.db());
    assert_eq!(standin.state()["marker"], "old");
    let schedule_status = || String::from_utf8(inst.run(&["schedule", "status"]).stdout).unwrap();
    let status = schedule_status();
    assert!(status.contains("Framerr is running on this database"), "{status}");

    let out = inst.ok(&["restore", zip.to_str().unwrap(), "--yes"]);
    assert!(out.contains("Framerr is running on this database"), "{out}");
    let took = sees(&standin, "new", Duration::from_secs(1));
    eprintln!("the stand-in read the restored database {took:?} after the restore returned");
    assert_eq!(standin.state()["users"], json!(["admin", "alice", "bob", "carol"]));
    assert!(standin.deleted_files().is_empty(), "{:?}", standin.deleted_files());
    std::thread::sleep(Duration::from_millis(400));
    assert!(standin.deleted_files().is_empty(), "{:?}", standin.deleted_files());
    let committed = standin.stop();
    keeps_writes_made_after_the_restore(&inst.db(), &committed);
    assert_eq!(wholly_old_or_new(&inst, "after the restore"), "new");
    assert!(hidden_leftovers(inst.dir.path()).is_empty(), "{:?}", hidden_leftovers(inst.dir.path()));
    let status = schedule_status();
    assert!(status.contains("Framerr is not running on this database"), "{status}");
}

/// The old instance, with a backup of the new state in its backups folder:
/// (the source it came from, the instance, the backup's name).
fn old_instance_holding_a_new_backup() -> (Instance, Instance, String) {
    let (source, zip) = new_backup(0);
    let inst = old_instance();
    std::fs::create_dir_all(inst.backups()).unwrap();
    let name = zip.file_name().unwrap().to_str().unwrap().to_owned();
    std::fs::copy(&zip, inst.backups().join(&name)).unwrap();
    (source, inst, name)
}

fn restore_over_http(server: &Server, filename: &str) -> Value {
    let auth = format!("Bearer {TOKEN}");
    let request = json!({ "filename": filename }).to_string();
    let started = Instant::now();
    loop {
        let (status, body) =
            http(&server.base, "POST", "/api/backup/restore", &[("Authorization", auth.as_str())], Some(&request));
        // The schedule's catch-up backup may be running at the server's start.
        if status == 409 && started.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        assert_eq!(status, 200, "{body}");
        return serde_json::from_str(&body).unwrap();
    }
}

fn health(server: &Server) -> Value {
    let auth = format!("Bearer {TOKEN}");
    let (status, body) = http(&server.base, "GET", "/api/backup/health", &[("Authorization", auth.as_str())], None);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn the_api_says_framerr_was_running_and_runs_the_restart_command_once_then_only() {
    let (_source, inst, name) = old_instance_holding_a_new_backup();
    let ran = inst.dir.path().join("restarts.log");
    // It records what it got of this program's secrets: nothing.
    let restart =
        format!("sh -c 'echo \"ran key=$SECRET_ENCRYPTION_KEY token=$FRAMERR_BACKUP_TOKEN\" >> {}'", ran.display());
    let mut command = inst.command(&["serve", "--listen", "127.0.0.1:0", "--restart-command", &restart]);
    command.env("FRAMERR_BACKUP_TOKEN", TOKEN);
    let server = Server::spawn(command);
    let standin = StandIn::start(&inst.db());
    let before = health(&server);
    assert_eq!(before["framerrRunning"], true, "{before}");

    let restored = restore_over_http(&server, &name);
    assert_eq!(restored["framerr"]["running"], true, "{restored}");
    assert_eq!(restored["framerr"]["restart"], "done", "{restored}");
    assert_eq!(std::fs::read_to_string(&ran).unwrap(), "ran key= token=\n", "the restart command ran once");
    sees(&standin, "new", Duration::from_secs(1));
    assert!(standin.deleted_files().is_empty(), "{:?}", standin.deleted_files());
    std::thread::sleep(Duration::from_millis(300));
    let committed = standin.stop();
    keeps_writes_made_after_the_restore(&inst.db(), &committed);

    // Nobody has the database open now: the files are replaced, and the
    // restart command has no Framerr to restart.
    assert_eq!(health(&server)["framerrRunning"], false);
    let again = restore_over_http(&server, &name);
    assert_eq!(again["framerr"], json!({ "running": false, "restart": null, "message": null }), "{again}");
    assert_eq!(std::fs::read_to_string(&ran).unwrap(), "ran key= token=\n", "no Framerr was running: no restart");
    assert_eq!(wholly_old_or_new(&inst, "after both restores"), "new");
}

#[test]
fn without_a_restart_command_the_answer_says_to_restart_framerr() {
    let (_source, inst, name) = old_instance_holding_a_new_backup();
    let mut command = inst.command(&["serve", "--listen", "127.0.0.1:0"]);
    command.env("FRAMERR_BACKUP_TOKEN", TOKEN).env_remove("FRAMERR_BACKUP_RESTART_COMMAND");
    let server = Server::spawn(command);
    let _standin = StandIn::start(&inst.db());
    let restored = restore_over_http(&server, &name);
    assert_eq!(restored["framerr"]["running"], true, "{restored}");
    assert_eq!(restored["framerr"]["restart"], "not-configured", "{restored}");
    let notes = restored["notes"].to_string();
    assert!(notes.contains("restart Framerr"), "{notes}");
}

#[test]
fn a_setup_restore_beside_a_running_framerr_lets_the_restored_admin_sign_in_at_once() {
    // The backup: the fixture with a known admin password.
    let source = Instance::from_fixture();
    let hash = bcrypt::hash("restored admin pass", 4).unwrap();
    python_ok(
        "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nc.execute(\"UPDATE users SET password=? WHERE username='admin'\", (sys.argv[2],))\nc.commit()",
        &[&source.db(), Path::new(&hash)],
    );
    let created: Value = serde_json::from_str(&source.ok(&["create", "--json"])).unwrap();
    let zip = source.backups().join(created["filename"].as_str().unwrap());
    // A fresh Framerr: its schema, no user and no schedule yet, running.
    let inst = Instance::from_fixture();
    python_ok(
        "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nc.execute('DELETE FROM sessions')\nc.execute('DELETE FROM users')\nc.execute(\"DELETE FROM system_config WHERE key LIKE '%ackupSchedule'\")\nc.commit()",
        &[&inst.db()],
    );
    let standin = StandIn::start(&inst.db());
    let status = |s: &StandIn| http(&s.base, "GET", "/api/auth/setup/status", &[], None).1;
    assert_eq!(status(&standin), r#"{"needsSetup": true}"#);
    let server = Server::spawn(inst.command(&["serve", "--listen", "127.0.0.1:0"]));

    let bytes = std::fs::read(&zip).unwrap();
    let form = reqwest::blocking::multipart::Form::new()
        .part("backup", reqwest::blocking::multipart::Part::bytes(bytes).file_name("backup.zip"));
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/api/auth/setup/restore", server.base))
        .header("X-Framerr-Client", "1")
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().unwrap();
    assert_eq!(body["success"], true, "{body}");
    assert_eq!(body["framerr"]["running"], true, "{body}");
    // At once, through the connection Framerr opened before the restore.
    assert_eq!(status(&standin), r#"{"needsSetup": false}"#);
    let login = |password: &str| {
        let body = json!({ "username": "admin", "password": password }).to_string();
        http(&standin.base, "POST", "/api/auth/login", &[], Some(&body)).0
    };
    assert_eq!(login("restored admin pass"), 200);
    assert_eq!(login("wrong"), 401);
    assert!(standin.deleted_files().is_empty(), "{:?}", standin.deleted_files());
}

#[test]
fn kill_9_anywhere_in_twenty_restores_beside_a_running_framerr_leaves_a_whole_instance() {
    let (_source, zip) = new_backup(48);
    let probe = old_instance();
    let standin = StandIn::start(&probe.db());
    let started = Instant::now();
    probe.ok(&["restore", zip.to_str().unwrap(), "--yes"]);
    let full = started.elapsed();
    drop(standin);
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..20u32 {
        let inst = old_instance();
        let standin = StandIn::start(&inst.db());
        let mut child = inst
            .command(&["restore", zip.to_str().unwrap(), "--yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(full * 2 * i / 19);
        let _ = Command::new("kill").arg("-9").arg(child.id().to_string()).status();
        let _ = child.wait();
        // The next command recovers, with Framerr still running.
        inst.ok(&["list"]);
        assert!(standin.deleted_files().is_empty(), "kill {i}: {:?}", standin.deleted_files());
        let state = wholly_old_or_new(&inst, &format!("kill {i}"));
        assert_eq!(standin.state()["marker"], state.as_str(), "kill {i}: the stand-in reads another state");
        let left = hidden_leftovers(inst.dir.path());
        assert!(left.is_empty(), "kill {i} ({state}): {left:?}");
        seen.insert(state);
    }
    eprintln!("restore beside the stand-in of {full:?} killed 20 times: outcomes {seen:?}");
    assert!(seen.contains("old") && seen.contains("new"), "the kills did not span the restore: {seen:?}");
}

#[test]
#[ignore = "needs root to mount a tmpfs (CI runs as root and runs it)"]
fn a_full_disk_while_writing_beside_a_running_framerr_leaves_it_whole_on_its_database() {
    let (_source, zip) = new_backup(8);
    let mut seen = std::collections::BTreeMap::new();
    for mib in (12..=44).step_by(2) {
        let inst = Instance::empty();
        let _full = backup_e2e::Tmpfs::mount(&inst.data(), &format!("{mib}m"));
        let old = old_instance();
        backup_e2e::copy_tree(&old.data(), &inst.data());
        let standin = StandIn::start(&inst.db());
        let out = inst.run(&["restore", zip.to_str().unwrap(), "--yes"]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() {
            assert!(stderr.to_lowercase().contains("space"), "{mib} MiB: {stderr}");
        }
        inst.ok(&["list"]);
        assert!(standin.deleted_files().is_empty(), "{mib} MiB: {:?}", standin.deleted_files());
        let state = wholly_old_or_new(&inst, &format!("{mib} MiB"));
        assert_eq!(standin.state()["marker"], state.as_str(), "{mib} MiB: the stand-in reads another state");
        assert_eq!(out.status.success(), state == "new", "{mib} MiB: {stderr}");
        let left = hidden_leftovers(inst.dir.path());
        assert!(left.is_empty(), "{mib} MiB ({state}): {left:?}");
        seen.insert(mib, state);
    }
    eprintln!("outcomes by tmpfs size: {seen:?}");
    let states: std::collections::BTreeSet<&String> = seen.values().collect();
    assert_eq!(states.len(), 2, "the sizes tried should cover both outcomes: {seen:?}");
}

/// A backup of the fixture marked 'new', its database changed by `sql`.
fn new_backup_with(sql: &str) -> (Instance, std::path::PathBuf) {
    let source = Instance::from_fixture();
    python_ok(
        "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nc.execute(\"INSERT INTO system_config(key,value) VALUES('marker','new')\")\nc.executescript(sys.argv[2])\nc.commit()",
        &[&source.db(), Path::new(sql)],
    );
    let created: Value = serde_json::from_str(&source.ok(&["create", "--json"])).unwrap();
    let zip = source.backups().join(created["filename"].as_str().unwrap());
    (source, zip)
}

#[test]
fn the_commit_point_is_beyond_the_reach_of_the_restored_databases_own_code() {
    // Once Framerr writes into the restored database, its triggers run: one
    // that wipes every other row of system_config must not be able to
    // erase the restore's commit point.
    let (_source, zip) = new_backup_with(
        "CREATE TRIGGER wipe AFTER INSERT ON system_config BEGIN DELETE FROM system_config WHERE key <> 'marker' AND key NOT LIKE 'standin-%'; END;",
    );
    let inst = old_instance();
    let standin = StandIn::start(&inst.db());
    // The restore dies right after its database transaction committed.
    let out = inst
        .command(&["restore", zip.to_str().unwrap(), "--yes"])
        .env("FRAMERR_FAILPOINT", "restore:database-written")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the failpoint did not stop the restore");
    sees(&standin, "new", Duration::from_secs(1));
    // Framerr's writes have fired the restored trigger meanwhile.
    std::thread::sleep(Duration::from_millis(300));
    inst.ok(&["list"]);
    assert_eq!(wholly_old_or_new(&inst, "after recovery"), "new");
    assert!(standin.deleted_files().is_empty(), "{:?}", standin.deleted_files());
    assert!(hidden_leftovers(inst.dir.path()).is_empty(), "{:?}", hidden_leftovers(inst.dir.path()));
}

#[test]
fn a_backup_verify_accepts_restores_beside_a_running_framerr_too() {
    // Framerr's own tables as a hand-made or older database may have them:
    // system_config without a key constraint.
    let (_source, zip) = new_backup_with(
        "CREATE TABLE sc AS SELECT * FROM system_config; DROP TABLE system_config; ALTER TABLE sc RENAME TO system_config;",
    );
    let verified = Instance::from_fixture().run(&["verify", zip.to_str().unwrap()]);
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
    let inst = old_instance();
    let standin = StandIn::start(&inst.db());
    inst.ok(&["restore", zip.to_str().unwrap(), "--yes"]);
    sees(&standin, "new", Duration::from_secs(1));
    assert_eq!(wholly_old_or_new(&inst, "after the restore"), "new");
}
