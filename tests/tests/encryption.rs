//! Password-encrypted backups (FRMRBKUP v1): Framerr's open here, ours open
//! with an independent implementation of spec section 4 (python's
//! `cryptography`), damage is refused, and the password lifecycle works.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Output;

use backup_e2e::{FIXTURE_PASSWORD, Instance, fixtures, python, query};
use serde_json::Value;

const NEW_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn framerr_encrypted() -> PathBuf {
    fixtures().join("backups/framerr-manual-2026-11-26T22-17-29.framerr-backup")
}

/// Runs the binary with `input` on standard input.
fn with_stdin(inst: &Instance, args: &[&str], input: &str) -> Output {
    inst.run_stdin(args, input)
}

fn ok_stdin(inst: &Instance, args: &[&str], input: &str) -> String {
    let out = with_stdin(inst, args, input);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn fails_stdin(inst: &Instance, args: &[&str], input: &str) -> String {
    let out = with_stdin(inst, args, input);
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8(out.stderr).unwrap()
}

fn fresh(key: &str) -> Instance {
    let mut inst = Instance::empty();
    inst.key = Some(key.into());
    inst
}

#[test]
fn framerrs_encrypted_backup_restores_with_its_password_onto_another_key() {
    let inst = fresh(NEW_KEY);
    let file = framerr_encrypted();
    let err = fails_stdin(&inst, &["restore", file.to_str().unwrap(), "--yes", "--password-stdin"], "wrong password\n");
    assert!(err.contains("Incorrect password"), "{err}");
    assert!(!inst.db().exists(), "a wrong password restored something");
    let out = ok_stdin(
        &inst,
        &["restore", file.to_str().unwrap(), "--yes", "--password-stdin"],
        &format!("{FIXTURE_PASSWORD}\n"),
    );
    // Its key store row did not open with our key, but the password was
    // known: the row is rewrapped, and encryption stays on.
    assert!(out.contains("rewrapped"), "{out}");
    assert_eq!(query(&inst.db(), "PRAGMA integrity_check"), serde_json::json!([["ok"]]));
    assert_eq!(query(&inst.db(), "SELECT count(*) FROM users"), serde_json::json!([[4]]));
    assert_eq!(query(&inst.db(), "SELECT count(*) FROM sessions"), serde_json::json!([[0]]));
    assert!(inst.ok(&["encryption", "status"]).contains("enabled"));
    // New backups are encrypted, under the same password.
    let created: Value = serde_json::from_str(&inst.ok(&["create", "--json"])).unwrap();
    let name = created["filename"].as_str().unwrap();
    assert!(name.ends_with(".framerr-backup"), "{name}");
    ok_stdin(&inst, &["verify", name, "--password-stdin"], &format!("{FIXTURE_PASSWORD}\n"));
}

#[test]
fn without_the_password_a_foreign_key_store_row_turns_encryption_off() {
    // A plain backup of an instance whose encryption was on: restored onto
    // an instance with another key, the row's server wrapping cannot open.
    let source = Instance::from_fixture();
    std::fs::copy(fixtures().join("instance-encrypted/framerr.db"), source.db()).unwrap();
    let created: Value = serde_json::from_str(&source.ok(&["create", "--json", "--type", "safety"])).unwrap();
    let zip = source.backups().join(created["filename"].as_str().unwrap());
    let target = fresh(NEW_KEY);
    let out = target.ok(&["restore", zip.to_str().unwrap(), "--yes"]);
    assert!(out.contains("backup encryption was turned off"), "{out}");
    assert!(target.ok(&["encryption", "status"]).contains("disabled"));
}

/// Decrypts a FRMRBKUP v1 file following spec section 4 alone, with the
/// `cryptography` package, and checks the ZIP inside.
const PY_DECRYPT: &str = r#"
import sys, json, base64, struct, zipfile, io
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives import hashes
data = open(sys.argv[1], "rb").read()
password = sys.argv[2].encode()
assert data[:8] == b"FRMRBKUP" and data[8] == 1
n = struct.unpack("<H", data[9:11])[0]
assert n <= 8192
h = json.loads(data[11:11 + n])
assert h["version"] == 1 and h["kdf"] == "pbkdf2-sha256" and h["iterations"] == 600000
b = lambda k: base64.b64decode(h[k])
assert len(b("salt")) == 32 and len(b("payloadIv")) == 12 and len(b("payloadAuthTag")) == 16
kek = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=b("salt"), iterations=h["iterations"]).derive(password)
unwrap = lambda blob, key: AESGCM(key).decrypt(blob[:12], blob[12:], None)
mbk = unwrap(b("wrappedMbk"), kek)
dek = unwrap(b("wrappedDek"), mbk)
payload = AESGCM(dek).decrypt(b("payloadIv"), data[11 + n:] + b("payloadAuthTag"), None)
z = zipfile.ZipFile(io.BytesIO(payload))
assert z.testzip() is None
m = json.loads(z.read("manifest.json"))
print(json.dumps({"encryption": m["encryption"], "names": sorted(z.namelist()), "header_len": n}))
"#;

#[test]
fn our_encrypted_backups_open_with_an_independent_implementation() {
    let inst = Instance::from_fixture();
    ok_stdin(&inst, &["encryption", "enable", "--password-stdin"], "a long enough password\n");
    let created: Value = serde_json::from_str(&inst.ok(&["create", "--json"])).unwrap();
    let file = inst.backups().join(created["filename"].as_str().unwrap());
    let out = python().arg("-c").arg(PY_DECRYPT).arg(&file).arg("a long enough password").output().unwrap();
    assert!(out.status.success(), "python could not decrypt ours: {}", String::from_utf8_lossy(&out.stderr));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["encryption"], "envelope-v1");
    assert!(result["names"].as_array().unwrap().iter().any(|n| n == "framerr.db"));
    // And python, given the wrong password, fails.
    let out = python().arg("-c").arg(PY_DECRYPT).arg(&file).arg("not the password").output().unwrap();
    assert!(!out.status.success());
    // The python decryptor agrees with Framerr's own file too.
    let out = python().arg("-c").arg(PY_DECRYPT).arg(framerr_encrypted()).arg(FIXTURE_PASSWORD).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn damaged_encrypted_backups_are_refused_and_nothing_is_restored() {
    let inst = fresh(NEW_KEY);
    let good = std::fs::read(framerr_encrypted()).unwrap();
    let header_len = u16::from_le_bytes([good[9], good[10]]) as usize;
    let payload_at = 11 + header_len;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "version",
            {
                let mut v = good.clone();
                v[8] = 2;
                v
            },
            "Unsupported backup format version",
        ),
        (
            "header length",
            {
                let mut v = good.clone();
                v[9..11].copy_from_slice(&9000u16.to_le_bytes());
                v
            },
            "Malformed backup file (header too large)",
        ),
        (
            "header json",
            {
                let mut v = good.clone();
                v[11] = b'x';
                v
            },
            "Corrupted backup header",
        ),
        (
            "wrapped dek",
            {
                let mut v = good.clone();
                let text = String::from_utf8_lossy(&v[11..payload_at]).into_owned();
                let at = 11 + text.find("wrappedDek").unwrap() + 14;
                v[at] = if v[at] == b'A' { b'B' } else { b'A' };
                v
            },
            "Corrupted backup header",
        ),
        (
            "payload",
            {
                let mut v = good.clone();
                v[payload_at + 100] ^= 1;
                v
            },
            "tampered",
        ),
        (
            "last byte",
            {
                let mut v = good.clone();
                let n = v.len();
                v[n - 1] ^= 0x80;
                v
            },
            "tampered",
        ),
        ("truncated payload", good[..good.len() - 10].to_vec(), "tampered"),
        ("truncated header", good[..200].to_vec(), "Truncated backup file"),
        (
            "tag",
            {
                let mut v = good.clone();
                let text = String::from_utf8_lossy(&v[11..payload_at]).into_owned();
                let at = 11 + text.find("payloadAuthTag").unwrap() + 18;
                v[at] = if v[at] == b'A' { b'B' } else { b'A' };
                v
            },
            "tampered",
        ),
    ];
    for (what, bytes, want) in cases {
        let file = inst.dir.path().join("damaged.framerr-backup");
        std::fs::write(&file, bytes).unwrap();
        let err = fails_stdin(
            &inst,
            &["restore", file.to_str().unwrap(), "--yes", "--password-stdin"],
            &format!("{FIXTURE_PASSWORD}\n"),
        );
        assert!(err.contains(want), "{what}: {err}");
        assert!(!inst.db().exists(), "{what}: something was restored");
        let left: Vec<_> = std::fs::read_dir(inst.data()).unwrap().map(|e| e.unwrap().file_name()).collect();
        let leftover = |n: &std::ffi::OsString| {
            n.to_string_lossy().starts_with(".framerr") && !backup_e2e::is_lock_file(&n.to_string_lossy())
        };
        assert!(!left.iter().any(leftover), "{what}: {left:?}");
    }
}

#[test]
fn the_password_lifecycle() {
    let inst = Instance::from_fixture();
    assert!(inst.ok(&["encryption", "status"]).contains("disabled"));
    let err = fails_stdin(&inst, &["encryption", "enable", "--password-stdin"], "short\n");
    assert!(err.contains("at least 8 characters"), "{err}");
    // Without the server key there is nothing to wrap the master key with.
    let mut keyless = Instance::from_fixture();
    keyless.key = None;
    let err = fails_stdin(&keyless, &["encryption", "enable", "--password-stdin"], "first password\n");
    assert!(err.contains("SECRET_ENCRYPTION_KEY"), "{err}");

    ok_stdin(&inst, &["encryption", "enable", "--password-stdin"], "first password\n");
    let err = fails_stdin(&inst, &["encryption", "enable", "--password-stdin"], "first password\n");
    assert!(err.contains("already enabled"), "{err}");
    let created: Value = serde_json::from_str(&inst.ok(&["create", "--json"])).unwrap();
    let name = created["filename"].as_str().unwrap().to_owned();
    // A plain copy elsewhere needs saying so.
    let out = inst.dir.path().join("copy.zip");
    let err = inst.fails(&["create", "--output", out.to_str().unwrap()]);
    assert!(err.contains("--plain"), "{err}");
    inst.ok(&["create", "--output", out.to_str().unwrap(), "--plain"]);
    // A backup this key did not make (Framerr's) cannot be re-headered.
    std::fs::copy(framerr_encrypted(), inst.backups().join("framerr-manual-2026-11-26T22-17-29.framerr-backup"))
        .unwrap();

    let out = with_stdin(&inst, &["encryption", "reset-password", "--password-stdin"], "second password\n");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && stdout.contains("framerr-manual-2026-11-26T22-17-29.framerr-backup"), "{stdout}");
    let err = fails_stdin(&inst, &["verify", &name, "--password-stdin"], "first password\n");
    assert!(err.contains("Incorrect password"), "{err}");
    ok_stdin(&inst, &["verify", &name, "--password-stdin"], "second password\n");
    // Framerr's own file was left as it was.
    assert_eq!(
        std::fs::read(inst.backups().join("framerr-manual-2026-11-26T22-17-29.framerr-backup")).unwrap(),
        std::fs::read(framerr_encrypted()).unwrap()
    );

    let err = fails_stdin(&inst, &["encryption", "disable", "--password-stdin"], "first password\n");
    assert!(err.contains("Incorrect password"), "{err}");
    ok_stdin(&inst, &["encryption", "disable", "--password-stdin"], "second password\n");
    let err = fails_stdin(&inst, &["encryption", "disable", "--password-stdin"], "second password\n");
    assert!(err.contains("not enabled"), "{err}");
    let created: Value = serde_json::from_str(&inst.ok(&["create", "--json"])).unwrap();
    assert!(created["filename"].as_str().unwrap().ends_with(".zip"));
    // Passwords never reach the output.
    for text in [String::from_utf8_lossy(&out.stderr).into_owned(), stdout.into_owned()] {
        assert!(!text.contains("second password"));
    }
}

#[test]
fn safety_backups_are_never_encrypted() {
    let inst = Instance::from_fixture();
    ok_stdin(&inst, &["encryption", "enable", "--password-stdin"], "first password\n");
    let out = inst.ok(&[
        "restore",
        fixtures().join("backups/framerr-manual-2026-11-26T22-17-29.zip").to_str().unwrap(),
        "--yes",
    ]);
    let safety = out.lines().find_map(|l| l.trim().strip_prefix("safety backup: ")).unwrap();
    assert!(
        safety.starts_with("framerr-safety-") && safety.split_whitespace().next().unwrap().ends_with(".zip"),
        "{safety}"
    );
}
