//! `verify --all`: every stored backup everywhere, encrypted ones with the
//! instance's own key (no password needed for what it sealed), a damaged
//! copy in one destination found and reported with a non-zero exit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use backup_e2e::Instance;
use serde_json::Value;

fn outcomes(json: &Value) -> Vec<(String, String, String)> {
    let mut list: Vec<(String, String, String)> = json["checked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let place = c["destination"].as_str().unwrap();
            let place = if place.ends_with("/nas") { "nas" } else { "local" };
            (place.to_owned(), c["filename"].as_str().unwrap().to_owned(), c["outcome"].as_str().unwrap().to_owned())
        })
        .collect();
    list.sort();
    list
}

#[test]
fn verify_all_checks_every_copy_and_finds_the_damaged_one() {
    let inst = Instance::from_fixture();
    let nas = inst.dir.path().join("nas");
    let dest = format!("file://{}", nas.display());
    let run = |args: &[&str], input: &str| {
        let mut all = args.to_vec();
        all.extend(["--destination", &dest]);
        inst.run_stdin(&all, input)
    };
    let ok = |args: &[&str], input: &str| {
        let out = run(args, input);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let plain =
        serde_json::from_str::<Value>(&ok(&["create", "--json"], "")).unwrap()["filename"].as_str().unwrap().to_owned();
    ok(&["encryption", "enable", "--password-stdin"], "first password\n");
    let first =
        serde_json::from_str::<Value>(&ok(&["create", "--json"], "")).unwrap()["filename"].as_str().unwrap().to_owned();

    // Everything passes, the encrypted one without any password.
    let out = run(&["verify", "--all", "--json"], "");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((json["passed"].as_u64(), json["failed"].as_u64()), (Some(4), Some(0)), "{json}");

    // A new backup key (encryption off and on again): the first encrypted
    // backup needs its password now; it is "not checked", exit 2.
    ok(&["encryption", "disable", "--password-stdin"], "first password\n");
    ok(&["encryption", "enable", "--password-stdin"], "second password\n");
    let second =
        serde_json::from_str::<Value>(&ok(&["create", "--json"], "")).unwrap()["filename"].as_str().unwrap().to_owned();
    let out = run(&["verify", "--all", "--json"], "");
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stdout));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let skipped: Vec<_> = outcomes(&json).into_iter().filter(|o| o.2 == "skipped").map(|o| o.1).collect();
    assert_eq!(skipped, [first.clone(), first.clone()]);
    // With its password, everything is checked: the instance key opens the
    // newest, the password the older one.
    let out = run(&["verify", "--all", "--json", "--password-stdin"], "first password\n");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));

    // One byte flipped in the NAS copy of the plain backup.
    let damaged = nas.join(&plain);
    let mut bytes = std::fs::read(&damaged).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&damaged, bytes).unwrap();
    let out = run(&["verify", "--all", "--json", "--password-stdin"], "first password\n");
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let got = outcomes(&json);
    assert!(got.contains(&("nas".into(), plain.clone(), "failed".into())), "{got:?}");
    assert!(got.contains(&("local".into(), plain.clone(), "passed".into())), "{got:?}");
    assert!(got.contains(&("nas".into(), second.clone(), "passed".into())), "{got:?}");
    // The text form says the same, one line a backup.
    let out = run(&["verify", "--all"], "");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().any(|l| l.starts_with("FAILED") && l.contains(&plain) && l.contains("nas")), "{text}");
    assert!(text.contains("1 failed"), "{text}");
    // Nothing of ours is left behind by all that checking.
    assert!(backup_e2e::hidden_leftovers(&inst.data()).is_empty(), "{:?}", backup_e2e::hidden_leftovers(&inst.data()));
}

/// Changes the first character of a header field's value to another valid
/// base64 character: the JSON still parses, the value is wrong.
fn alter_header(file: &std::path::Path, field: &str) {
    let mut bytes = std::fs::read(file).unwrap();
    let needle = format!("\"{field}\":\"");
    let at = bytes.windows(needle.len()).position(|w| w == needle.as_bytes()).unwrap() + needle.len();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(file, bytes).unwrap();
}

#[test]
fn an_encrypted_backup_its_password_no_longer_opens_fails_verification() {
    let inst = Instance::from_fixture();
    let out = inst.run_stdin(&["encryption", "enable", "--password-stdin"], "the password\n");
    assert!(out.status.success());
    for (field, want) in [("salt", "password header does not match"), ("wrappedDek", "")] {
        let created: Value = serde_json::from_str(&inst.ok(&["create", "--json"])).unwrap();
        let file = inst.backups().join(created["filename"].as_str().unwrap());
        alter_header(&file, field);
        let out = inst.run(&["verify", "--all", "--json"]);
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        let checked =
            json["checked"].as_array().unwrap().iter().find(|c| c["filename"] == created["filename"]).unwrap().clone();
        assert_eq!(checked["outcome"], "failed", "{field}: {checked}");
        assert!(checked["error"].as_str().unwrap().contains(want), "{field}: {checked}");
        assert_eq!(out.status.code(), Some(1), "{field}");
        // What a restore with the password says about the same file.
        let restore = inst.run_stdin(&["verify", file.to_str().unwrap(), "--password-stdin"], "the password\n");
        assert!(!restore.status.success(), "{field}: the password still opens it?");
        std::fs::remove_file(&file).unwrap();
    }
}

#[test]
#[ignore = "needs root to mount a tmpfs (CI runs as root and runs it)"]
fn a_read_only_instance_is_checked_where_it_can_be_and_never_called_missing_or_damaged() {
    let inst = Instance::empty();
    let disk = backup_e2e::Tmpfs::mount(&inst.data(), "64m");
    backup_e2e::copy_tree(&backup_e2e::fixtures().join("instance-plain"), &inst.data());
    inst.ok(&["create"]);
    disk.read_only(true);
    // No room to check here is this side's problem: "could not be
    // checked" (exit 2), never a failed backup (exit 1).
    let out = inst.run(&["verify", "--all"]);
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(!said.contains("FAILED"), "{said}");
    // The database is there: whatever the trouble, it is not "not found".
    let out = inst.run(&["encryption", "status"]);
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!said.contains("not found"), "{said}");
    disk.read_only(false);
}
