//! Several destinations: a local primary and an S3 bucket (moto on
//! 127.0.0.1). Scheduled backups land in both, retention trims both, a
//! destination dying mid-upload costs nothing locally and leaves nothing
//! partial, and a restore can come from the S3 copy alone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use backup_e2e::{Instance, Moto, python_ok};
use serde_json::Value;

fn with_s3(cmd: &mut std::process::Command) -> &mut std::process::Command {
    cmd.env("AWS_ACCESS_KEY_ID", "test").env("AWS_SECRET_ACCESS_KEY", "test-secret")
}

fn run(inst: &Instance, args: &[&str]) -> std::process::Output {
    with_s3(&mut inst.command(args)).output().unwrap()
}

fn ok(inst: &Instance, args: &[&str]) -> String {
    let out = run(inst, args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn backup_keys(moto: &Moto) -> Vec<String> {
    let mut keys: Vec<String> =
        moto.objects("backups").0.into_iter().map(|(k, _)| k).filter(|k| !backup_e2e::is_document(k)).collect();
    keys.sort();
    keys
}

#[test]
fn scheduled_backups_land_in_both_and_retention_trims_both() {
    let moto = Moto::start("backups");
    let inst = Instance::from_fixture();
    // Keep 2; two old scheduled backups in each place.
    python_ok(
        "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nc.execute(\"UPDATE system_config SET value='{\\\"enabled\\\":true,\\\"frequency\\\":\\\"daily\\\",\\\"hour\\\":3,\\\"maxBackups\\\":2}' WHERE key='backupSchedule'\")\nc.commit()",
        &[&inst.db()],
    );
    std::fs::create_dir_all(inst.backups()).unwrap();
    for old in ["framerr-scheduled-2020-01-01T03-00-00.zip", "framerr-scheduled-2020-01-02T03-00-00.zip"] {
        std::fs::write(inst.backups().join(old), b"old").unwrap();
        moto.put("backups", &format!("inst/{old}"), "old");
    }
    let url = moto.url("backups", "inst");
    let mut cmd = inst.command(&["--destination", &url, "serve", "--listen", "127.0.0.1:0"]);
    let mut server = with_s3(&mut cmd).stderr(Stdio::piped()).spawn().unwrap();
    let lines = BufReader::new(server.stderr.take().unwrap()).lines();
    std::thread::spawn(move || for _ in lines {});
    // The catch-up scheduled backup runs at start.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (local, remote) = loop {
        // The running server's owner file of its temporaries aside.
        let local: Vec<String> = std::fs::read_dir(inst.backups())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with(".framerr-owner-") && !backup_e2e::is_document(n))
            .collect();
        let remote = backup_keys(&moto);
        if local.len() == 2
            && remote.len() == 2
            && local.iter().any(|n| n.starts_with("framerr-scheduled-2026"))
            && remote.iter().any(|k| k.contains("scheduled-2026"))
        {
            break (local, remote);
        }
        assert!(Instant::now() < deadline, "local {local:?}, remote {remote:?}");
        std::thread::sleep(Duration::from_millis(250));
    };
    let _ = server.kill();
    let _ = server.wait();
    // Each kept its newest two: the new backup and the newer old one.
    assert!(local.contains(&"framerr-scheduled-2020-01-02T03-00-00.zip".to_owned()), "{local:?}");
    assert!(remote.contains(&"inst/framerr-scheduled-2020-01-02T03-00-00.zip".to_owned()), "{remote:?}");
    let new = local.iter().find(|n| n.starts_with("framerr-scheduled-2026")).unwrap();
    assert!(remote.contains(&format!("inst/{new}")));
    // The copy is the same bytes.
    let (objects, uploads) = moto.objects("backups");
    let size = objects.iter().find(|(k, _)| k.ends_with(new.as_str())).unwrap().1;
    assert_eq!(size, std::fs::metadata(inst.backups().join(new)).unwrap().len());
    assert_eq!(uploads, 0, "an orphan multipart upload was left");
    // list shows where each backup lives.
    let list: Value = serde_json::from_str(&ok(&inst, &["--destination", &url, "list", "--json"])).unwrap();
    let item = list["backups"].as_array().unwrap().iter().find(|b| b["filename"] == new.as_str()).unwrap();
    assert_eq!(item["locations"].as_array().unwrap().len(), 2, "{item}");
    assert!(item["locations"][1].as_str().unwrap().starts_with("s3://backups/inst"));
    assert!(!list.to_string().contains("test-secret"));
}

#[test]
fn a_destination_dying_mid_upload_costs_nothing_locally_and_leaves_nothing_partial() {
    let mut moto = Moto::start("backups");
    let port = moto.port;
    let inst = Instance::from_fixture();
    // 60 MiB of incompressible data: several 8 MiB parts.
    python_ok(
        "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nc.execute('CREATE TABLE ballast(b)')\nc.execute('WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 61440) INSERT INTO ballast SELECT randomblob(1024) FROM n')\nc.commit()",
        &[&inst.db()],
    );
    let url = moto.url("backups", "inst");
    let mut cmd = inst.command(&["--destination", &url, "create", "--json"]);
    let child = with_s3(&mut cmd).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // Kill the S3 server as soon as the local backup is complete, while the
    // copy is uploading.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = std::fs::read_dir(inst.backups())
            .ok()
            .is_some_and(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with("framerr-manual-")));
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "no local backup");
        std::thread::sleep(Duration::from_millis(5));
    }
    moto.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("complete locally") && stderr.contains("s3://backups/inst"), "{stderr}");
    let created: Value = serde_json::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert!(created["destinations"][0]["error"].is_string(), "{created}");
    // The local backup is whole.
    let name = created["filename"].as_str().unwrap();
    ok(&inst, &["verify", name]);
    // A fresh server on the same port: nothing partial under a backup name.
    let back = Moto::on_port(port);
    back.create_bucket("backups");
    assert!(backup_keys(&back).is_empty());
}

#[test]
fn restore_from_the_s3_copy_onto_a_fresh_data_folder() {
    let moto = Moto::start("backups");
    let url = moto.url("backups", "framerr");
    let source = Instance::from_fixture();
    let created: Value = serde_json::from_str(&ok(&source, &["--destination", &url, "create", "--json"])).unwrap();
    assert!(created["destinations"][0]["error"].is_null(), "{created}");
    let name = created["filename"].as_str().unwrap();
    // A fresh instance whose only copy is in S3.
    let mut fresh = Instance::empty();
    fresh.key = Some(backup_e2e::FIXTURE_KEY.into());
    let out = run(&fresh, &["--destination", &url, "restore", name, "--yes"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let users = python_ok(
        "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from users').fetchone()[0])",
        &[&fresh.db()],
    );
    assert_eq!(users.trim(), "4");
    // Delete removes it everywhere.
    ok(&source, &["--destination", &url, "delete", name]);
    assert!(backup_keys(&moto).is_empty());
    assert!(!source.backups().join(name).exists());
}

#[test]
fn a_destination_written_wrong_is_refused_plainly_and_one_that_never_answers_does_not_stop_the_server() {
    let inst = Instance::from_fixture();
    // Each of these made object_store panic at first use (exit 101, and a
    // server that never started); the last smuggled credentials past the
    // check in %-escapes and printed them.
    for url in [
        "s3://bucket/p?endpoint=nas.local:9000&allow_http=true",
        "s3://bucket/p?endpoint=foo",
        "s3://bucket/p?endpoint=http://[::1&allow_http=true",
        "s3://bucket/p?endpoint=http%3A%2F%2FAKIAKEY%3ASUPERSECRET%40127.0.0.1%3A9&allow_http=true",
    ] {
        let out = run(&inst, &["--destination", url, "list"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{url}: {stderr}");
        assert!(stderr.contains("endpoint") && !stderr.contains("panicked"), "{url}: {stderr}");
        assert!(!stderr.contains("SUPERSECRET"), "{url}: {stderr}");
    }
    // A port that accepts connections (the kernel's backlog) and never answers.
    let blackhole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("s3://bucket/p?endpoint=http://{}&allow_http=true", blackhole.local_addr().unwrap());
    let started = Instant::now();
    let mut cmd = inst.command(&["serve", "--listen", "127.0.0.1:0", "--destination", &url]);
    with_s3(&mut cmd).env("FRAMERR_BACKUP_TOKEN", "t");
    let server = backup_e2e::Server::spawn(cmd);
    assert!(started.elapsed() < Duration::from_secs(10), "listening only after {:?}", started.elapsed());
    let status = python_ok(
        "import sys,urllib.request\nr=urllib.request.Request(sys.argv[1]+'/api/backup/status',headers={'Authorization':'Bearer t'})\nprint(urllib.request.urlopen(r,timeout=10).read().decode())",
        &[std::path::Path::new(&server.base)],
    );
    assert!(status.contains("inProgress"), "{status}");
}

/// Without credentials, an S3 destination is refused plainly and the cloud
/// metadata service is never asked; `credentials=instance` asks it. (Its
/// address is pointed at a recorder on 127.0.0.1.)
#[test]
fn no_credentials_never_asks_the_instance_metadata_service_unless_the_url_says_so() {
    let inst = Instance::from_fixture();
    let metadata = backup_e2e::Stub::start(&[404; 16]);
    let s3 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("s3://bucket/p?endpoint=http://{}&allow_http=true", s3.local_addr().unwrap());
    let without_keys = |args: &[&str]| {
        let mut cmd = inst.command(args);
        for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE"] {
            cmd.env_remove(var);
        }
        cmd.env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI");
        cmd.env("AWS_METADATA_ENDPOINT", &metadata.base).env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &metadata.base);
        cmd.output().unwrap()
    };
    for command in [&["list"][..], &["create"], &["verify", "--all"]] {
        let mut args = command.to_vec();
        args.extend(["--destination", url.as_str()]);
        let out = without_keys(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command:?}: {stderr}");
        assert!(stderr.contains("AWS_ACCESS_KEY_ID") && stderr.contains("credentials=instance"), "{stderr}");
        assert!(metadata.received().is_empty(), "{command:?} asked the metadata service: {:?}", metadata.received());
    }
    // Asked for: the machine's role, from the metadata service.
    let out = without_keys(&["list", "--destination", &format!("{url}&credentials=instance")]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let asked = metadata.received();
    assert!(asked.iter().any(|r| r.path.starts_with("/latest/")), "{asked:?}");
    let err = inst.fails(&["list", "--destination", &format!("{url}&credentials=maybe")]);
    assert!(err.contains("credentials"), "{err}");
}
