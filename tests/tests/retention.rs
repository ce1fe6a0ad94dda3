//! Calendar retention, per-destination policies and pins, through the CLI
//! on real folders: `prune --dry-run` explains, `prune` deletes exactly
//! that, pins hold everywhere and survive a restore.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use backup_e2e::{Instance, python_ok};
use serde_json::Value;

fn save_schedule(inst: &Instance, json: &str) {
    python_ok(
        "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nc.execute(\"INSERT OR REPLACE INTO system_config(key,value) VALUES('framerrBackupSchedule',?)\",(sys.argv[2],))\nc.commit()",
        &[&inst.db(), Path::new(json)],
    );
}

fn plant(dir: &Path, names: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    for name in names {
        std::fs::write(dir.join(name), b"planted").unwrap();
    }
}

fn sorted<const N: usize>(mut names: [String; N]) -> [String; N] {
    names.sort();
    names
}

/// Keys for an S3 destination (one on 127.0.0.1 that is never reached).
fn with_keys(cmd: &mut std::process::Command) -> &mut std::process::Command {
    cmd.env("AWS_ACCESS_KEY_ID", "test").env("AWS_SECRET_ACCESS_KEY", "test-secret")
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

const PLANTED: [&str; 10] = [
    "framerr-manual-2026-08-15T10-00-00.zip",
    "framerr-manual-2026-09-10T10-00-00.zip",
    "framerr-scheduled-2026-09-20T03-00-00.zip",
    "framerr-manual-2026-10-05T10-00-00.zip",
    "framerr-scheduled-2026-10-28T03-00-00.zip",
    "framerr-manual-2026-11-20T08-00-00.zip",
    "framerr-manual-2026-11-20T20-00-00.zip",
    "framerr-scheduled-2026-11-21T03-00-00.zip",
    "framerr-scheduled-2026-11-22T03-00-00.zip",
    "framerr-safety-2026-01-01T00-00-00.zip",
];

#[test]
fn prune_dry_run_explains_and_prune_does_exactly_that_around_pins() {
    let inst = Instance::from_fixture();
    save_schedule(
        &inst,
        r#"{"enabled":false,"frequency":"daily","hour":3,"maxBackups":2,"keepDaily":3,"keepMonthly":3}"#,
    );
    plant(&inst.backups(), &PLANTED);
    let dry = json(&inst.ok(&["prune", "--dry-run", "--json", "--time-zone", "UTC"]));
    let place = &dry["destinations"][0];
    assert_eq!(place["policy"], serde_json::json!({"last": 2, "daily": 3, "weekly": 0, "monthly": 3}));
    let delete: Vec<&str> = place["delete"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(delete, [PLANTED[0], PLANTED[1], PLANTED[3], PLANTED[5]]);
    let why = |name: &str| -> Vec<String> {
        let kept = place["kept"].as_array().unwrap().iter().find(|k| k["filename"] == name).unwrap();
        kept["reasons"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(why(PLANTED[8]), ["last #1", "daily 2026-11-22", "monthly 2026-11"]);
    assert_eq!(why(PLANTED[6]), ["daily 2026-11-20"]);
    assert_eq!(why(PLANTED[2]), ["monthly 2026-09"]);
    assert_eq!(why(PLANTED[9]), ["safety backup"]);
    // A dry run deletes nothing.
    assert_eq!(inst.backup_files().len(), PLANTED.len());
    let text = inst.ok(&["prune", "--dry-run", "--time-zone", "UTC"]);
    assert!(text.contains("keep 2 last, 3 daily, 3 monthly (zone UTC)"), "{text}");
    assert!(text.contains(&format!("would delete  {}", PLANTED[5])), "{text}");

    // Pinned: never deleted, not counted, shown in the listing.
    let out = inst.ok(&["pin", PLANTED[0]]);
    assert!(out.starts_with(&format!("Pinned {}", PLANTED[0])), "{out}");
    let listed = json(&inst.ok(&["list", "--json"]));
    let pinned: Vec<&str> = listed["backups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["pinned"] == true)
        .map(|b| b["filename"].as_str().unwrap())
        .collect();
    assert_eq!(pinned, [PLANTED[0]]);
    assert!(inst.ok(&["list"]).lines().any(|l| l.starts_with(PLANTED[0]) && l.contains(" yes")));
    assert!(inst.fails(&["pin", "framerr-manual-2020-01-01T00-00-00.zip"]).contains("not found"));

    let out = inst.ok(&["prune", "--time-zone", "UTC"]);
    assert!(out.contains(&format!("deleted       {}", PLANTED[1])), "{out}");
    let mut left = inst.backup_files();
    left.sort();
    let mut want: Vec<&str> =
        PLANTED.iter().copied().filter(|n| ![PLANTED[1], PLANTED[3], PLANTED[5]].contains(n)).collect();
    want.sort();
    assert_eq!(left, want);
    // Idempotent.
    let again = json(&inst.ok(&["prune", "--dry-run", "--json", "--time-zone", "UTC"]));
    assert_eq!(again["destinations"][0]["delete"], serde_json::json!([]));

    // Deleting a pinned backup needs --force, and takes its pin along.
    let err = inst.fails(&["delete", PLANTED[0]]);
    assert!(err.contains("is pinned") && err.contains("--force"), "{err}");
    inst.ok(&["delete", "--force", PLANTED[0]]);
    let pins: Value =
        serde_json::from_slice(&std::fs::read(inst.backups().join("framerr-backup.pins.json")).unwrap()).unwrap();
    assert_eq!(pins["pinned"], serde_json::json!([]));
}

#[test]
fn a_destination_keeps_its_own_policy_and_pins_survive_a_restore() {
    let inst = Instance::from_fixture();
    save_schedule(&inst, r#"{"enabled":false,"frequency":"daily","hour":3,"maxBackups":5}"#);
    let nas = inst.dir.path().join("nas");
    let destination = format!("file://{}?keep-last=1", nas.display());
    let create = || {
        json(&inst.ok(&["create", "--json", "--destination", &destination]))["filename"].as_str().unwrap().to_owned()
    };
    let first = create();
    let second = create();
    let nas_files = || {
        let mut n: Vec<String> = std::fs::read_dir(&nas)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !backup_e2e::is_document(n))
            .collect();
        n.sort();
        n
    };
    assert_eq!(nas_files(), std::slice::from_ref(&second), "the NAS keeps the newest one");
    assert_eq!(inst.backup_files(), sorted([first.clone(), second.clone()]), "the backups folder keeps five");
    let out = inst.ok(&["pin", &second, "--destination", &destination]);
    assert!(out.contains(&nas.display().to_string()), "pinned in both places: {out}");
    let third = create();
    assert_eq!(nas_files(), sorted([second.clone(), third.clone()]), "the pinned one stays");

    // A restore replaces the database; pins live beside the backups.
    inst.ok(&["restore", &first, "--yes", "--destination", &destination]);
    let listed = json(&inst.ok(&["list", "--json", "--destination", &destination]));
    let entry =
        listed["backups"].as_array().unwrap().iter().find(|b| b["filename"] == second.as_str()).unwrap().clone();
    assert_eq!(entry["pinned"], true, "{entry}");
    // Unpinned, the NAS is back to its newest one at the next backup.
    inst.ok(&["unpin", &second, "--destination", &destination]);
    let fourth = create();
    let rotated: Vec<String> = nas_files().into_iter().filter(|n| !n.starts_with("framerr-safety-")).collect();
    assert_eq!(rotated, [fourth], "besides the restore's safety backup, copied there too");
    // A bad policy is refused before anything runs.
    let err = inst.fails(&["list", "--destination", &format!("file://{}?keep-daily=lots", nas.display())]);
    assert!(err.contains("keep-daily must be a whole number from 0 to 1000"), "{err}");
}

#[test]
fn pins_that_cannot_be_read_protect_everything_until_forced() {
    let inst = Instance::from_fixture();
    save_schedule(&inst, r#"{"enabled":false,"frequency":"daily","hour":3,"maxBackups":1}"#);
    plant(&inst.backups(), &PLANTED[..3]);
    inst.ok(&["pin", PLANTED[0]]);
    let pins = inst.backups().join("framerr-backup.pins.json");
    let damaged: [(&str, &dyn Fn()); 3] = [
        ("truncated JSON", &|| std::fs::write(&pins, format!("{{\"pinned\":[\"{}\"]", PLANTED[0])).unwrap()),
        ("a folder", &|| {
            std::fs::remove_file(&pins).unwrap();
            std::fs::create_dir(&pins).unwrap();
        }),
        ("a dangling link", &|| {
            std::fs::remove_dir(&pins).unwrap();
            std::os::unix::fs::symlink("/nonexistent/pins.json", &pins).unwrap();
        }),
    ];
    for (what, damage) in damaged {
        damage();
        // Every listing says so, and what it cannot tell.
        let listed = json(&inst.ok(&["list", "--json"]));
        let problems = listed["pinsUnreadable"].as_array().unwrap();
        assert!(problems.len() == 1 && problems[0].as_str().unwrap().contains("pins"), "{what}: {listed}");
        let entry = listed["backups"].as_array().unwrap().iter().find(|b| b["filename"] == PLANTED[0]).unwrap();
        assert_eq!((&entry["pinned"], &entry["pinsUnreadable"]), (&Value::Bool(false), &Value::Bool(true)), "{what}");
        let text = inst.ok(&["list"]);
        assert!(text.contains("pins unreadable"), "{what}: {text}");
        assert!(text.lines().any(|l| l.starts_with(PLANTED[0]) && l.contains(" ?")), "{what}: {text}");
        let err = inst.fails(&["delete", PLANTED[0]]);
        assert!(err.contains("may pin this backup") && err.contains("--force"), "{what}: {err}");
        let out = inst.run(&["prune"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            !out.status.success() && text.contains("retention did not run") && text.contains("pins"),
            "{what}: {text}"
        );
        assert_eq!(inst.backup_files().len(), 3, "{what}: something was deleted");
    }
    inst.ok(&["delete", "--force", PLANTED[0]]);
    assert_eq!(inst.backup_files().len(), 2);
    // Until it is fixed.
    std::fs::remove_file(&pins).unwrap();
    let listed = json(&inst.ok(&["list", "--json"]));
    assert_eq!(listed["pinsUnreadable"], serde_json::json!([]), "{listed}");
    assert!(!inst.ok(&["list"]).contains("pins unreadable"));
}

/// The primary backups folder given again as a destination, by any
/// spelling, or two destinations that are one place: refused before
/// anything runs. (Given with `keep-last=1`, the backups folder itself was
/// trimmed to one backup after a copy that failed with "already exists".)
#[test]
fn a_destination_that_is_the_backups_folder_or_another_destination_is_refused_at_start() {
    let inst = Instance::from_fixture();
    save_schedule(&inst, r#"{"enabled":false,"frequency":"daily","hour":3,"maxBackups":5}"#);
    plant(&inst.backups(), &PLANTED[..5]);
    let backups = inst.backups();
    let link = inst.dir.path().join("link-to-backups");
    std::os::unix::fs::symlink(&backups, &link).unwrap();
    let data = inst.data();
    let spellings = [
        format!("file://{}/?keep-last=1", backups.display()),
        format!("file://{}//?keep-last=1", backups.display()),
        format!("file://{}/../data/backups?keep-last=1", data.display()),
        format!("file://{}/./backups/", data.display()),
        format!("file://{}?keep-last=1", link.display()),
        format!("file://{}", backups.display()).replace("/backups", "/%62ackups"),
    ];
    for spelling in &spellings {
        for command in [&["create"][..], &["list"], &["prune"], &["serve", "--listen", "127.0.0.1:0"]] {
            let mut args = command.to_vec();
            args.extend(["--destination", spelling.as_str()]);
            let err = inst.fails(&args);
            assert!(err.contains("is the backups folder"), "{spelling} {command:?}: {err}");
        }
        // The same through the environment.
        let out = inst.command(&["create"]).env("FRAMERR_BACKUP_DESTINATIONS", spelling).output().unwrap();
        assert!(!out.status.success(), "{spelling}: {}", String::from_utf8_lossy(&out.stdout));
        assert_eq!(inst.backup_files().len(), 5, "{spelling}: the backups folder was touched");
    }
    let mut planted: Vec<String> = PLANTED[..5].iter().map(|n| n.to_string()).collect();
    planted.sort();
    assert_eq!(inst.backup_files(), planted);

    // Two destinations that are one folder, by two spellings.
    let nas = inst.dir.path().join("nas");
    std::fs::create_dir_all(&nas).unwrap();
    let nas_link = inst.dir.path().join("nas-link");
    std::os::unix::fs::symlink(&nas, &nas_link).unwrap();
    for (a, b) in [
        (format!("file://{}", nas.display()), format!("file://{}/?keep-last=1", nas.display())),
        (format!("file://{}", nas.display()), format!("file://{}", nas_link.display())),
        // Not made yet: the same path once made.
        (format!("file://{}/new", nas.display()), format!("file://{}/new/", nas_link.display())),
        // One bucket and prefix by two spellings (nothing is contacted).
        (
            "s3://bucket/prefix?endpoint=http://127.0.0.1:9&allow_http=true&region=us-east-1".to_owned(),
            "s3://bucket//prefix/?endpoint=http://127.0.0.1:9/&allow_http=true&region=eu-west-1".to_owned(),
        ),
    ] {
        let out = with_keys(&mut inst.command(&["list", "--destination", &a, "--destination", &b])).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("are the same place"), "{a} {b}: {err}");
    }
    // A missing primary folder, and a link to where it will be.
    std::fs::remove_dir_all(&backups).unwrap();
    let err = inst.fails(&["create", "--destination", &format!("file://{}", link.display())]);
    assert!(err.contains("is the backups folder"), "{err}");
    assert!(!backups.exists(), "the refused command made a backup");
    // Different places are fine: another folder, another prefix.
    inst.ok(&["list", "--destination", &format!("file://{}", nas.display())]);
    let other = "s3://bucket/other?endpoint=http://127.0.0.1:9&allow_http=true";
    let out = with_keys(&mut inst.command(&[
        "list",
        "--destination",
        "s3://bucket/prefix?endpoint=http://127.0.0.1:9&allow_http=true",
        "--destination",
        other,
    ]))
    .output()
    .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("same place"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn create_reports_what_retention_deleted_in_every_destination() {
    let inst = Instance::from_fixture();
    save_schedule(&inst, r#"{"enabled":false,"frequency":"daily","hour":3,"maxBackups":5}"#);
    let nas = inst.dir.path().join("nas");
    plant(&nas, &PLANTED[..2]);
    let destination = format!("file://{}?keep-last=1", nas.display());
    let created = json(&inst.ok(&["create", "--json", "--destination", &destination]));
    assert_eq!(created["deleted"], serde_json::json!([]), "{created}");
    let place = &created["destinations"][0];
    assert_eq!(place["destination"], format!("file://{}", nas.display()), "{created}");
    assert_eq!(place["deleted"], serde_json::json!([PLANTED[0], PLANTED[1]]), "{created}");
    assert_eq!((&place["failed"], &place["retentionError"]), (&serde_json::json!([]), &Value::Null), "{created}");
    plant(&nas, &PLANTED[2..3]);
    let text = inst.ok(&["create", "--destination", &destination]);
    assert!(text.contains(&format!("Deleted {} from file://{} (retention)", PLANTED[2], nas.display())), "{text}");
    // A copy that failed: retention did not run there, and that is said.
    let out = inst.run(&["create", "--json", "--destination", "file:///proc/1/nope?keep-last=1"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let place = &created["destinations"][0];
    assert!(place["error"].is_string(), "{created}");
    assert_eq!(place["deleted"], serde_json::json!([]), "{created}");
    assert!(place["retentionError"].as_str().unwrap().contains("copy"), "{created}");
}
