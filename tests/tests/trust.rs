//! Restore you can trust, tried from the outside: two processes at once,
//! kill -9 anywhere, files planted in the data folder, a broken live
//! database, hostile databases and archives, a full disk, Ctrl-C.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use backup_e2e::{
    FIXTURE_KEY, Instance, Tmpfs, count, fixtures, hidden_leftovers, new_backup, old_instance, python_ok, query, tree,
    wholly_old_or_new,
};
use serde_json::Value;

fn fixture_zip() -> PathBuf {
    fixtures().join("backups/framerr-manual-2026-11-26T22-17-29.zip")
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn finish(child: Child) -> (bool, String, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn spawn(cmd: &mut Command) -> Child {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

#[test]
fn a_list_or_create_while_another_process_commits_a_restore_never_undoes_it() {
    let (_source, zip) = new_backup(0);
    let inst = old_instance();
    // The restore stops for 3 s in the middle of its renames.
    let restore = spawn(
        inst.command(&["restore", zip.to_str().unwrap(), "--yes"])
            .env("FRAMERR_FAILPOINT", "restore:moved-old-2=sleep:3000"),
    );
    let journal = inst.data().join(".framerr-restore-journal.json");
    wait_for("the restore's journal", || journal.exists());
    // `list` sees a journal whose owner holds the lock: it leaves it alone.
    let listed = inst.run(&["list", "--json"]);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    // `create` waits for the instance, then backs up the restored state.
    let create = spawn(&mut inst.command(&["create", "--json"]));
    let (ok, stdout, stderr) = finish(restore);
    assert!(ok && stdout.contains("Restored"), "{stdout}{stderr}");
    let (ok, stdout, stderr) = finish(create);
    assert!(ok, "create: {stderr}");
    assert_eq!(wholly_old_or_new(&inst, "after the race"), "new", "the restore was undone");
    let created: Value = serde_json::from_str(&stdout).unwrap();
    let backup = inst.backups().join(created["filename"].as_str().unwrap());
    let restored_marker = python_ok(
        "import sys,zipfile,sqlite3,tempfile,os\nd=tempfile.mkdtemp()\nzipfile.ZipFile(sys.argv[1]).extract('framerr.db',d)\nprint(sqlite3.connect(os.path.join(d,'framerr.db')).execute(\"select value from system_config where key='marker'\").fetchone()[0])",
        &[&backup],
    );
    assert_eq!(restored_marker.trim(), "new", "the backup waited for the restore and holds its result");
    assert!(hidden_leftovers(&inst.data()).is_empty(), "{:?}", hidden_leftovers(&inst.data()));
}

#[test]
fn another_process_holding_the_instance_makes_restore_fail_clearly_not_silently() {
    let (_source, zip) = new_backup(0);
    let inst = old_instance();
    let first = spawn(
        inst.command(&["restore", zip.to_str().unwrap(), "--yes"])
            .env("FRAMERR_FAILPOINT", "restore:moved-old-1=sleep:14000"),
    );
    // Checks run before the instance is held; the swap holds it.
    let journal = inst.data().join(".framerr-restore-journal.json");
    wait_for("the first restore's swap", || journal.exists());
    // The second waits its 10 s for the lock, then says why it gave up.
    let started = Instant::now();
    let second = inst.run(&["restore", fixture_zip().to_str().unwrap(), "--yes"]);
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success() && err.contains("another backup or restore"), "{err}");
    assert!(started.elapsed() >= Duration::from_secs(9), "{:?}", started.elapsed());
    let (ok, _, stderr) = finish(first);
    assert!(ok, "{stderr}");
    assert_eq!(wholly_old_or_new(&inst, "after both"), "new");
}

fn kill_at(child: &mut Child, after: Duration) {
    std::thread::sleep(after);
    let _ = Command::new("kill").arg("-9").arg(child.id().to_string()).status();
    let _ = child.wait();
}

#[test]
fn kill_9_anywhere_in_twenty_restores_leaves_no_copies_and_a_whole_instance() {
    let (_source, zip) = new_backup(64);
    // How long an undisturbed restore takes here, to spread the kills over
    // it and past it (process start-up varies).
    let probe = old_instance();
    let started = Instant::now();
    probe.ok(&["restore", zip.to_str().unwrap(), "--yes"]);
    let full = started.elapsed();
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..20u32 {
        let inst = old_instance();
        let mut child = inst.command(&["restore", zip.to_str().unwrap(), "--yes"]).spawn().unwrap();
        kill_at(&mut child, full * 2 * i / 19);
        // The next command, whatever it is, recovers.
        inst.ok(&["list"]);
        let state = wholly_old_or_new(&inst, &format!("kill {i}"));
        let left = hidden_leftovers(inst.dir.path());
        assert!(left.is_empty(), "kill {i} ({state}): {left:?}");
        seen.insert(state);
    }
    eprintln!("restore of {full:?} killed 20 times: outcomes {seen:?}");
    assert!(seen.contains("old") && seen.contains("new"), "the kills did not span the restore: {seen:?}");
}

#[test]
fn kill_9_anywhere_in_twenty_creates_leaves_only_whole_backups() {
    let (source, _zip) = new_backup(64);
    let started = Instant::now();
    source.ok(&["create"]);
    let full = started.elapsed();
    let mut completed = 0;
    for i in 0..20u32 {
        let mut child = source.command(&["create"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        kill_at(&mut child, full * 2 * i / 19);
        source.ok(&["list"]);
        let left = hidden_leftovers(source.dir.path());
        assert!(left.is_empty(), "kill {i}: {left:?}");
        completed = source.backup_files().len();
    }
    // Every backup that carries a final name is whole.
    for name in source.backup_files() {
        let out = source.run(&["verify", &name]);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    }
    eprintln!("{completed} backups completed out of 22 attempts; all verify");
}

#[test]
fn a_planted_journal_is_never_acted_on_and_planted_links_are_never_followed() {
    let inst = Instance::from_fixture();
    let victim = inst.dir.path().join("victim");
    std::fs::create_dir_all(victim.join("inside")).unwrap();
    std::fs::write(victim.join("inside/precious"), b"x").unwrap();
    let journal = inst.data().join(".framerr-restore-journal.json");
    std::fs::write(&journal, format!(r#"{{"state":"committing","items":[],"cleanup":["{}"]}}"#, victim.display()))
        .unwrap();
    inst.ok(&["list"]);
    let err = inst.fails(&["create"]);
    assert!(err.contains("journal") && err.contains("delete it"), "{err}");
    assert!(victim.join("inside/precious").exists(), "a planted journal deleted a folder");
    std::fs::remove_file(&journal).unwrap();

    // A link with a backup's name, pointing anywhere: not listed, not
    // restored, not verified, not deleted through.
    std::fs::create_dir_all(inst.backups()).unwrap();
    let name = "framerr-manual-2026-01-01T00-00-00.zip";
    std::os::unix::fs::symlink(fixture_zip(), inst.backups().join(name)).unwrap();
    let listed: Value = serde_json::from_str(&inst.ok(&["list", "--json"])).unwrap();
    assert_eq!(listed["count"], 0);
    assert!(inst.fails(&["restore", name, "--yes"]).contains("not found"));
    assert!(inst.fails(&["verify", name]).contains("not found"));
    assert!(inst.fails(&["delete", name]).contains("not found"));
    assert!(fixture_zip().exists());
}

#[test]
fn a_well_formed_planted_journal_never_removes_or_replaces_a_live_file() {
    let old_database = ".framerr-old-00ab-1-framerr.db";
    let cases = [
        // The form an earlier version wrote: roles only, nothing on disk to
        // match (this deleted the database and every asset folder).
        r#"{"version":2,"id":"00ab-1","state":"committing","items":[{"role":"database","existed":false},{"role":"custom-icons","existed":false},{"role":"profile-pictures","existed":false},{"role":"favicon","existed":false}]}"#,
        // Today's form, naming files that are not the ones there.
        r#"{"version":3,"id":"00ab-1","state":"committing","items":[{"role":"database","was":null,"new":[1,2]},{"role":"custom-icons","was":null,"new":[1,3]}]}"#,
        // A planted "old copy" that rolling back would rename over the database.
        r#"{"version":3,"id":"00ab-1","state":"committing","items":[{"role":"database","was":[1,2],"new":[1,3]}]}"#,
        r#"{"version":3,"id":"00ab-1","state":"committed","items":[{"role":"database","was":[1,2],"new":[1,3]}]}"#,
    ];
    for journal in cases {
        let inst = Instance::from_fixture();
        let before = tree(&inst.data());
        std::fs::write(inst.data().join(old_database), b"planted").unwrap();
        std::fs::write(inst.data().join(".framerr-restore-journal.json"), journal).unwrap();
        // `list` reads on (it says what is wrong); what would change the
        // instance stops.
        let _ = inst.run(&["list"]);
        for args in [&["create"][..], &["restore", fixture_zip().to_str().unwrap(), "--yes"]] {
            let err = inst.fails(args);
            assert!(err.contains("journal") && err.contains("delete it"), "{journal}\n{args:?}: {err}");
        }
        // Without its journal, an old copy is the user's to decide about
        // (a folder copied mid-restore, a journal deleted as advised): it
        // stays, and every command says so.
        std::fs::remove_file(inst.data().join(".framerr-restore-journal.json")).unwrap();
        let out = inst.run(&["list"]);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && said.contains("moved aside"), "{journal}: {said}");
        assert!(inst.data().join(old_database).exists(), "{journal}: an old copy was deleted");
        std::fs::remove_file(inst.data().join(old_database)).unwrap();
        assert_eq!(tree(&inst.data()), before, "{journal}");
    }
}

#[test]
fn a_broken_live_database_does_not_block_the_restore_that_repairs_it() {
    let good = std::fs::read(fixtures().join("instance-plain/framerr.db")).unwrap();
    let mut corrupt_page = good.clone();
    let page = 4096 * 3;
    corrupt_page[page..page + 4096].fill(0xA5);
    let cases: [(&str, Vec<u8>); 4] = [
        ("empty", Vec::new()),
        ("truncated", good[..good.len() / 3].to_vec()),
        ("garbage", b"\x00this is not SQLite at all".repeat(400)),
        ("corrupt page", corrupt_page),
    ];
    for (what, bytes) in cases {
        let inst = Instance::from_fixture();
        std::fs::write(inst.db(), &bytes).unwrap();
        let out = inst.ok(&["restore", fixture_zip().to_str().unwrap(), "--yes"]);
        assert!(out.contains("could not be read"), "{what}: {out}");
        assert_eq!(query(&inst.db(), "PRAGMA integrity_check"), serde_json::json!([["ok"]]), "{what}");
        assert!(count(&inst.db(), "users") > 0, "{what}");
        // The broken files are kept, byte for byte, in a listed safety backup.
        let listed: Value = serde_json::from_str(&inst.ok(&["list", "--json"])).unwrap();
        let safety = listed["backups"][0]["filename"].as_str().unwrap().to_owned();
        assert!(safety.starts_with("framerr-safety-"), "{what}: {listed}");
        let kept = python_ok(
            "import sys,zipfile\nprint(zipfile.ZipFile(sys.argv[1]).read('framerr.db').hex())",
            &[&inst.backups().join(&safety)],
        );
        assert_eq!(kept.trim(), hex::encode(&bytes), "{what}: the safety backup does not hold the live file");
    }
}

#[test]
fn safety_backups_keep_this_instances_field_encryption() {
    let inst = Instance::from_fixture();
    let out = inst.ok(&["restore", fixture_zip().to_str().unwrap(), "--yes"]);
    let safety = out.lines().find_map(|l| l.trim().strip_prefix("safety backup: ")).unwrap();
    let safety = safety.split_whitespace().next().unwrap();
    let configs = python_ok(
        "import sys,zipfile,sqlite3,tempfile,os\nd=tempfile.mkdtemp()\nzipfile.ZipFile(sys.argv[1]).extract('framerr.db',d)\nc=sqlite3.connect(os.path.join(d,'framerr.db'))\nfor (v,) in c.execute(\"select config_encrypted from integration_instances where id != 'int-plain'\"): print(v)",
        &[&inst.backups().join(safety)],
    );
    assert!(!configs.trim().is_empty());
    for line in configs.lines() {
        assert!(backup_domain::credentials::looks_encrypted(line), "a credential in clear in a safety backup: {line}");
    }
    // And it still undoes the restore.
    inst.ok(&["restore", safety, "--yes"]);
}

/// Builds an archive around `db` with python's zipfile.
const PY_ARCHIVE: &str = r#"
import sys, zipfile, json
out, kind, db = sys.argv[1], sys.argv[2], open(sys.argv[3], "rb").read()
manifest = {"version": "2.0", "type": "manual", "createdAt": "2026-11-26T03:00:00.000Z",
    "encryption": "plaintext", "purgedOnRestore": [], "assets": {"profilePictures": True, "customIcons": True, "favicon": True}}
z = zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED)
z.writestr("framerr.db", db)
z.writestr("manifest.json", json.dumps(manifest))
if kind == "small-bombs":
    for i in range(150): z.writestr("custom-icons/zero-%d.png" % i, b"\0" * (1024 * 1024))
if kind == "case-duplicate":
    z.writestr("custom-icons/a.png", "1"); z.writestr("custom-icons/A.png", "2")
if kind == "zip-slip":
    z.writestr("custom-icons/../../evil.txt", "x")
if kind == "symlink":
    info = zipfile.ZipInfo("custom-icons/link.png"); info.external_attr = (0o120777 << 16); info.create_system = 3
    z.writestr(info, "/etc/passwd")
z.close()
"#;

/// A copy of the fixture database changed by `sql`.
fn database_with(dir: &Path, label: &str, sql: &str) -> PathBuf {
    let db = dir.join(format!("{label}.db"));
    std::fs::copy(fixtures().join("instance-plain/framerr.db"), &db).unwrap();
    let mut perms = std::fs::metadata(&db).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&db, perms).unwrap();
    if !sql.is_empty() {
        python_ok(
            "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nc.executescript(sys.argv[2])\nc.commit()",
            &[&db, Path::new(sql)],
        );
    }
    db
}

fn archive(dir: &Path, kind: &str, db: &Path) -> PathBuf {
    let zip = dir.join(format!("{kind}.zip"));
    python_ok(PY_ARCHIVE, &[&zip, Path::new(kind), db]);
    zip
}

#[test]
fn a_hostile_database_runs_none_of_its_triggers() {
    let inst = Instance::from_fixture();
    let db = database_with(
        inst.dir.path(),
        "triggers",
        "CREATE TRIGGER keep_sessions AFTER DELETE ON sessions BEGIN
             INSERT INTO sessions (token, user_id, expires_at) VALUES (old.token || 'x', old.user_id, old.expires_at);
         END;
         CREATE TRIGGER forever AFTER DELETE ON notifications BEGIN
             SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c);
         END;",
    );
    let zip = archive(inst.dir.path(), "triggers", &db);
    let started = Instant::now();
    let out = inst.ok(&["restore", zip.to_str().unwrap(), "--yes"]);
    assert!(started.elapsed() < Duration::from_secs(60), "{:?}", started.elapsed());
    assert!(out.contains("sessions"), "{out}");
    assert_eq!(count(&inst.db(), "sessions"), 0, "a trigger undid the purge the summary reports");
    let triggers = query(
        &inst.db(),
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name IN ('keep_sessions', 'forever')",
    );
    assert_eq!(triggers.as_array().unwrap().len(), 2, "the archive's schema was not kept as it was");
}

#[test]
fn a_hostile_database_cannot_hide_sessions_in_a_view_or_make_its_checks_endless_or_huge() {
    let inst = Instance::from_fixture();
    let before = tree(&inst.data());
    let cases = [
        // Survived the purge while the summary said "sessions were cleared".
        ("view", "DROP TABLE sessions; CREATE VIEW sessions AS SELECT 'evil-token' AS token, 'u-admin' AS user_id, 9999999999 AS expires_at;"),
        // Rebuilding this index kept a core busy for the whole 10-minute deadline.
        ("endless", "DROP TABLE media_library_fts;
            CREATE VIEW endless AS WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT x AS rowid, 'a' AS title FROM r;
            CREATE VIRTUAL TABLE media_library_fts USING fts5(title, content='endless', content_rowid='rowid');"),
        // Read by post-restore: 300 MB a row from a few kilobytes.
        ("generated", "ALTER TABLE integration_instances ADD COLUMN huge TEXT GENERATED ALWAYS AS (printf('%.*c', 300000000, 'x')) VIRTUAL;"),
        // Evaluated for every row by the integrity check.
        ("expression", "CREATE INDEX costly ON users (length(hex(zeroblob(50000000))) + length(username));"),
    ];
    for (label, sql) in cases {
        let zip = archive(inst.dir.path(), label, &database_with(inst.dir.path(), label, sql));
        let started = Instant::now();
        let verified = inst.fails(&["verify", zip.to_str().unwrap()]);
        let restored = inst.fails(&["restore", zip.to_str().unwrap(), "--yes"]);
        assert!(started.elapsed() < Duration::from_secs(60), "{label}: {:?}", started.elapsed());
        for err in [&verified, &restored] {
            assert!(err.contains("not a Framerr database"), "{label}: {err}");
        }
        assert_eq!(tree(&inst.data()), before, "{label}");
    }
}

/// A table whose CHECK constraint builds `bytes` of hex for each of its
/// `rows` rows, in a backup of a few hundred KB: built cheaply, then its
/// definition swapped in, as an attacker would.
pub(crate) const COSTLY_CHECKS: &str = "CREATE TABLE costly (n INTEGER);
    WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < 20000) INSERT INTO costly SELECT x FROM r;
    PRAGMA writable_schema = ON;
    UPDATE sqlite_master SET sql = 'CREATE TABLE costly (n INTEGER CHECK (length(hex(zeroblob(BYTES))) > 0))' WHERE name = 'costly';
    PRAGMA writable_schema = OFF;";

/// Peak memory of a finished child and its children, in KiB.
fn peak_kib_of_children() -> i64 {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    usage.max_rss()
}

#[test]
fn check_constraints_that_cost_memory_or_cpu_are_refused_within_bounds() {
    let inst = Instance::from_fixture();
    let before = tree(&inst.data());
    // 600 MB a row: the server grew to 1.4 GB; 4 MB a row: 20,000 rows
    // took minutes of CPU. Framerr's own schema has CHECK constraints, so
    // the class is bounded, not refused.
    for (label, bytes) in [("huge", "300000000"), ("slow", "2000000")] {
        let db = database_with(inst.dir.path(), label, &COSTLY_CHECKS.replace("BYTES", bytes));
        let zip = archive(inst.dir.path(), label, &db);
        assert!(std::fs::metadata(&zip).unwrap().len() < 1 << 20);
        for args in [vec!["verify", zip.to_str().unwrap()], vec!["restore", zip.to_str().unwrap(), "--yes"]] {
            let err = inst.fails(&args);
            assert!(err.contains("refused: the database does too much work to check"), "{label} {args:?}: {err}");
        }
        assert_eq!(tree(&inst.data()), before, "{label}");
    }
    // Every process these commands started, the sandboxes included.
    let peak = peak_kib_of_children();
    assert!(peak < 256 * 1024, "a check grew to {peak} KiB");
    assert!(hidden_leftovers(inst.dir.path()).is_empty(), "{:?}", hidden_leftovers(inst.dir.path()));
}

#[test]
fn asset_folders_the_archive_has_no_files_for_are_left_alone() {
    let inst = Instance::from_fixture();
    let before = tree(&inst.data().join("upload/custom-icons"));
    assert!(!before.is_empty());
    let db = database_with(inst.dir.path(), "plain", "");
    // The manifest says every folder existed; the archive carries none.
    let zip = archive(inst.dir.path(), "no-assets", &db);
    inst.ok(&["restore", zip.to_str().unwrap(), "--yes"]);
    assert_eq!(tree(&inst.data().join("upload/custom-icons")), before);
}

#[test]
fn verify_refuses_exactly_what_restore_refuses() {
    let inst = Instance::from_fixture();
    let good = database_with(inst.dir.path(), "good", "");
    let newer = database_with(inst.dir.path(), "newer", "PRAGMA user_version = 49;");
    let not_framerr = database_with(inst.dir.path(), "not-framerr", "DROP TABLE system_config;");
    let cases = [
        ("small-bombs", &good, "zip bomb", &["--max-ratio", "2"][..]),
        ("case-duplicate", &good, "more than once", &[][..]),
        ("zip-slip", &good, "unsafe path", &[][..]),
        ("symlink", &good, "symbolic link", &[][..]),
        ("newer", &newer, "newer Framerr", &[][..]),
        ("not-framerr", &not_framerr, "not a Framerr database", &[][..]),
    ];
    let before = tree(&inst.data());
    for (kind, db, want, extra) in cases {
        let zip = archive(inst.dir.path(), kind, db);
        let mut args = vec!["restore", zip.to_str().unwrap(), "--yes"];
        args.extend_from_slice(extra);
        let err = inst.fails(&args);
        assert!(err.contains(want), "restore {kind}: {err}");
        // Verify says OK exactly when restore (with its default limits)
        // would accept.
        let verified = inst.run(&["verify", zip.to_str().unwrap()]);
        let restored = inst.run(&["restore", zip.to_str().unwrap(), "--yes"]);
        assert_eq!(verified.status.success(), restored.status.success(), "{kind}: verify and restore disagree");
        if extra.is_empty() {
            let err = String::from_utf8_lossy(&verified.stderr);
            assert!(!verified.status.success() && err.contains("FAILED") && err.contains(want), "verify {kind}: {err}");
        }
        assert_eq!(tree(&inst.data()), before, "{kind}: the instance changed");
    }
    // A good archive verifies and reports the live version it was checked against.
    let zip = archive(inst.dir.path(), "good", &good);
    let out = inst.ok(&["verify", zip.to_str().unwrap()]);
    assert!(out.contains("this instance runs 48"), "{out}");
    assert!(hidden_leftovers(inst.dir.path()).is_empty(), "{:?}", hidden_leftovers(inst.dir.path()));
}

#[test]
fn a_terminated_restore_stops_cleanly() {
    let inst = Instance::from_fixture();
    let before = tree(&inst.data());
    let mut child = spawn(
        inst.command(&["restore", fixture_zip().to_str().unwrap(), "--yes"])
            .env("FRAMERR_FAILPOINT", "restore:staged=sleep:2000"),
    );
    wait_for("staging", || {
        std::fs::read_dir(inst.data())
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().starts_with(".framerr-restore-"))
    });
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(tree(&inst.data()), before, "a terminated restore changed the instance");
    assert!(hidden_leftovers(inst.dir.path()).is_empty(), "{:?}", hidden_leftovers(inst.dir.path()));
}

#[test]
#[ignore = "needs root to mount a tmpfs (CI runs as root and runs it)"]
fn a_full_data_folder_is_an_io_error_never_a_damaged_backup() {
    let inst = Instance::empty();
    let mut inst = inst;
    inst.key = Some(FIXTURE_KEY.into());
    let (_source, zip) = new_backup(6);
    // Room for the lock file, not for the database.
    let _full = Tmpfs::mount(&inst.data(), "2m");
    let out = inst.run(&["restore", zip.to_str().unwrap(), "--yes"]);
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(!out.status.success(), "restored onto a full disk");
    assert!(err.contains("no space") || err.contains("space left"), "{err}");
    assert!(!err.contains("damaged"), "a full disk was blamed on the backup: {err}");
    assert!(!inst.db().exists());
    // Not a file is left (empty asset folders, as Framerr makes at start,
    // may be).
    assert!(tree(&inst.data()).is_empty(), "{:?}", tree(&inst.data()));
}

#[test]
fn processes_creating_backups_at_once_get_distinct_names() {
    let inst = Instance::from_fixture();
    let children: Vec<Child> = (0..3).map(|_| spawn(&mut inst.command(&["create", "--json"]))).collect();
    let mut names = std::collections::BTreeSet::new();
    for child in children {
        let (ok, stdout, stderr) = finish(child);
        assert!(ok, "{stderr}");
        let created: Value = serde_json::from_str(&stdout).unwrap();
        names.insert(created["filename"].as_str().unwrap().to_owned());
    }
    assert_eq!(names.len(), 3, "{names:?}");
    for name in &names {
        inst.ok(&["verify", name]);
    }
}

#[test]
fn backups_stamped_in_the_future_never_push_a_new_one_out() {
    let inst = Instance::from_fixture();
    python_ok(
        "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nc.execute(\"UPDATE system_config SET value='{\\\"enabled\\\":false,\\\"frequency\\\":\\\"daily\\\",\\\"hour\\\":3,\\\"maxBackups\\\":2}' WHERE key='backupSchedule'\")\nc.commit()",
        &[&inst.db()],
    );
    std::fs::create_dir_all(inst.backups()).unwrap();
    let ahead = ["framerr-scheduled-2099-01-01T03-00-00.zip", "framerr-scheduled-2099-01-02T03-00-00.zip"];
    for name in ahead {
        std::fs::copy(fixture_zip(), inst.backups().join(name)).unwrap();
    }
    for _ in 0..2 {
        let out = inst.run(&["create", "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let created: Value = serde_json::from_slice(&out.stdout).unwrap();
        let name = created["filename"].as_str().unwrap();
        assert!(inst.backups().join(name).exists(), "the new backup was deleted right after it was made");
        assert!(!created["deleted"].as_array().unwrap().iter().any(|d| d == name));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("stamped in the future"), "{err}");
    }
    let files = inst.backup_files();
    for name in ahead {
        assert!(files.contains(&name.to_owned()), "{files:?}");
    }
    // Two counted (the newest two made now), the future ones kept apart.
    assert_eq!(files.iter().filter(|f| f.starts_with("framerr-manual-")).count(), 2, "{files:?}");
}

#[test]
fn one_scheduler_per_instance_framerrs_own_is_reported_and_turned_off() {
    let inst = Instance::from_fixture();
    // Framerr's own schedule is on: reported, exit code 3.
    let out = inst.run(&["schedule", "status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("Schedule: on (daily at 03:00") && text.contains("Framerr's own backup schedule is on too"),
        "{text}"
    );
    let out = inst.ok(&["schedule", "disable-framerr"]);
    assert!(out.contains("next start"), "{out}");
    let stored = query(
        &inst.db(),
        "SELECT key, value FROM system_config WHERE key IN ('backupSchedule', 'framerrBackupSchedule') ORDER BY key",
    );
    let value = |i: usize| serde_json::from_str::<Value>(stored[i][1].as_str().unwrap()).unwrap();
    assert_eq!(stored[0][0], "backupSchedule");
    assert_eq!(value(0)["enabled"], false, "Framerr's scheduler would still run");
    assert_eq!((value(1)["enabled"].clone(), value(1)["maxBackups"].clone()), (Value::Bool(true), Value::from(5)));
    let out = inst.ok(&["schedule", "status"]);
    assert!(out.contains("Schedule: on") && !out.contains("warning"), "{out}");
    assert!(inst.ok(&["schedule", "disable-framerr"]).contains("was not on"));
}
