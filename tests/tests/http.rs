//! The server over real HTTP on 127.0.0.1: every route, the auth matrix,
//! error shapes, SSE during a create, downloads byte for byte, setup
//! restore with its limits, and SIGTERM during a backup.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use backup_e2e::{FIXTURE_PASSWORD, Instance, Server, fixtures, python_ok};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

const TOKEN: &str = "headless-token-for-tests";

fn serve(inst: &Instance, extra: &[&str]) -> Server {
    serve_with(inst, extra, &[])
}

fn serve_with(inst: &Instance, extra: &[&str], env: &[(&str, &str)]) -> Server {
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut command = inst.command(&args);
    command.envs(env.iter().copied()).env("FRAMERR_BACKUP_TOKEN", TOKEN);
    Server::spawn(command)
}

/// Adds live sessions: admin, non-admin, and an expired admin one.
fn add_sessions(inst: &Instance) {
    python_ok(
        "import sqlite3,sys,time\nc=sqlite3.connect(sys.argv[1])\nnow=int(time.time())\nfor t,u,e in [('admin-live','u-admin',now+3600),('alice-live','u-alice',now+3600),('admin-expired','u-admin',now-10)]:\n    c.execute('INSERT INTO sessions(token,user_id,expires_at) VALUES(?,?,?)',(t,u,e))\nc.commit()",
        &[&inst.db()],
    );
}

/// Turns the fixture's schedule off, so no catch-up backup runs at start.
fn schedule_off(inst: &Instance) {
    python_ok(
        "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nc.execute(\"UPDATE system_config SET value='{\\\"enabled\\\":false,\\\"frequency\\\":\\\"daily\\\",\\\"hour\\\":3,\\\"maxBackups\\\":5}' WHERE key='backupSchedule'\")\nc.commit()",
        &[&inst.db()],
    );
}

/// A client that sends what Framerr's web UI sends with every request.
fn client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("X-Framerr-Client", reqwest::header::HeaderValue::from_static("1"));
    reqwest::Client::builder().timeout(Duration::from_secs(60)).default_headers(headers).build().unwrap()
}

fn admin(req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    req.header("Cookie", "theme=dark; sessionId=admin-live")
}

async fn json_of(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_matrix_covers_every_route() {
    let inst = Instance::from_fixture();
    add_sessions(&inst);
    let server = serve(&inst, &[]);
    let c = client();
    let routes: &[(&str, &str)] = &[
        ("POST", "/api/backup/create"),
        ("GET", "/api/backup/list"),
        ("GET", "/api/backup/download/framerr-manual-2026-11-26T22-17-29.zip"),
        ("DELETE", "/api/backup/framerr-manual-2026-11-26T22-17-29.zip"),
        ("GET", "/api/backup/status"),
        ("GET", "/api/backup/schedule"),
        ("PUT", "/api/backup/schedule"),
        ("GET", "/api/backup/encryption/status"),
        ("POST", "/api/backup/encryption/enable"),
        ("POST", "/api/backup/encryption/disable"),
        ("POST", "/api/backup/encryption/reset-password"),
        ("GET", "/api/backup/events"),
        ("GET", "/api/backup/health"),
        ("POST", "/api/backup/restore"),
        ("POST", "/api/backup/restore/upload"),
        ("GET", "/api/backup/inspect/framerr-manual-2026-11-26T22-17-29.zip"),
        ("GET", "/api/backup/history"),
        ("POST", "/api/backup/schedule/framerr/disable"),
        ("GET", "/api/backup/retention"),
        ("POST", "/api/backup/framerr-manual-2026-11-26T22-17-29.zip/pin"),
        ("DELETE", "/api/backup/framerr-manual-2026-11-26T22-17-29.zip/pin"),
    ];
    for (method, path) in routes {
        let url = format!("{}{path}", server.base);
        let req = |cookie: Option<&str>| {
            let r = c.request(method.parse().unwrap(), &url);
            match cookie {
                Some(v) => r.header("Cookie", v),
                None => r,
            }
        };
        let (s, body) = json_of(req(None).send().await.unwrap()).await;
        assert_eq!((s, &body), (StatusCode::UNAUTHORIZED, &json!({"error": "Not authenticated"})), "{method} {path}");
        let (s, _) = json_of(req(Some("sessionId=admin-expired")).send().await.unwrap()).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {path} expired");
        let (s, _) = json_of(req(Some("sessionId=no-such-session")).send().await.unwrap()).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {path} unknown");
        let (s, body) = json_of(req(Some("sessionId=alice-live")).send().await.unwrap()).await;
        assert_eq!((s, &body), (StatusCode::FORBIDDEN, &json!({"error": "Admin access required"})), "{method} {path}");
        let wrong = c.request(method.parse().unwrap(), &url).bearer_auth("wrong").send().await.unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{method} {path} wrong bearer");
    }
    let ok = c.get(format!("{}/api/backup/status", server.base)).send();
    assert_eq!(
        admin(c.get(format!("{}/api/backup/status", server.base))).send().await.unwrap().status(),
        StatusCode::OK
    );
    drop(ok);
    let bearer = c.get(format!("{}/api/backup/status", server.base)).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(json_of(bearer).await, (StatusCode::OK, json!({"inProgress": false})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_list_download_delete_with_live_progress() {
    let inst = Instance::from_fixture();
    add_sessions(&inst);
    schedule_off(&inst);
    let server = serve(&inst, &[]);
    let c = client();
    // Listen for events first.
    let events = admin(c.get(format!("{}/api/backup/events", server.base))).send().await.unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    assert!(events.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut stream = events.bytes_stream();

    let (s, created) = json_of(admin(c.post(format!("{}/api/backup/create", server.base))).send().await.unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{created}");
    assert_eq!(created["success"], true);
    let filename = created["filename"].as_str().unwrap().to_owned();

    let mut text = String::new();
    while !text.contains("event: backup:complete") {
        let chunk = tokio::time::timeout(Duration::from_secs(20), stream.next()).await.unwrap().unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let names: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
    assert_eq!(names.first(), Some(&"backup:started"), "{names:?}");
    assert_eq!(names.last(), Some(&"backup:complete"));
    assert!(names[1..names.len() - 1].iter().all(|n| *n == "backup:progress") && names.len() > 3, "{names:?}");
    let complete: Value = serde_json::from_str(
        text.lines().skip_while(|l| *l != "event: backup:complete").find_map(|l| l.strip_prefix("data: ")).unwrap(),
    )
    .unwrap();
    assert_eq!(complete["filename"], filename.as_str());
    assert_eq!(complete["size"], created["size"]);

    let (s, list) = json_of(admin(c.get(format!("{}/api/backup/list", server.base))).send().await.unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["count"], 1);
    assert_eq!(list["backups"][0]["filename"], filename.as_str());
    assert_eq!(list["backups"][0]["type"], "manual");
    assert_eq!(list["backups"][0]["encrypted"], false);
    assert_eq!(list["totalSize"], created["size"]);

    let resp = admin(c.get(format!("{}/api/backup/download/{filename}", server.base))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/zip");
    assert_eq!(resp.headers()["content-disposition"], format!("attachment; filename=\"{filename}\"").as_str());
    let length: u64 = resp.headers()["content-length"].to_str().unwrap().parse().unwrap();
    let bytes = resp.bytes().await.unwrap();
    assert_eq!(bytes.len() as u64, length);
    assert!(bytes == std::fs::read(inst.backups().join(&filename)).unwrap(), "download differs from the file");

    for bad in ["nope.zip", "framerr-manual-2026-01-01T00-00-00.zip", "..%2F..%2Fetc%2Fpasswd"] {
        let resp = admin(c.get(format!("{}/api/backup/download/{bad}", server.base))).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{bad}");
    }
    std::fs::write(inst.backups().join("framerr-safety-2026-01-01T00-00-00.zip"), b"x").unwrap();
    let (s, body) = json_of(
        admin(c.delete(format!("{}/api/backup/framerr-safety-2026-01-01T00-00-00.zip", server.base)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert!(body["error"].is_string());
    let (s, _) = json_of(
        admin(c.delete(format!("{}/api/backup/framerr-manual-2020-01-01T00-00-00.zip", server.base)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, body) =
        json_of(admin(c.delete(format!("{}/api/backup/{filename}", server.base))).send().await.unwrap()).await;
    assert_eq!((s, body), (StatusCode::OK, json!({"success": true})));
    assert!(!inst.backups().join(&filename).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_encryption_health_and_restore_routes() {
    let inst = Instance::from_fixture();
    add_sessions(&inst);
    schedule_off(&inst);
    let server = serve(&inst, &["--time-zone", "Europe/Berlin"]);
    let c = client();
    let url = |p: &str| format!("{}/api/backup{p}", server.base);

    let (s, got) = json_of(admin(c.get(url("/schedule"))).send().await.unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got["schedule"]["maxBackups"], 5);
    assert!(got["status"]["nextBackup"].is_null() && got["status"]["isRunning"] == false, "{got}");
    let (s, body) =
        json_of(admin(c.put(url("/schedule"))).json(&json!({"enabled": true, "hour": 24})).send().await.unwrap()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("hour must be a whole number from 0 to 23"));
    let (s, _) = json_of(admin(c.put(url("/schedule"))).json(&json!({"hour": 4})).send().await.unwrap()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "enabled is required");
    let put = json!({"enabled": true, "frequency": "weekly", "dayOfWeek": 1, "hour": 4, "maxBackups": 30});
    let (s, body) = json_of(admin(c.put(url("/schedule"))).json(&put).send().await.unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["schedule"]["maxBackups"], 30);
    // 04:00 in Berlin is 02:00 or 03:00 UTC.
    let next = body["status"]["nextBackup"].as_str().unwrap();
    assert!(next.contains("T02:00:00.000Z") || next.contains("T03:00:00.000Z"), "{next}");
    let (_, got) = json_of(admin(c.get(url("/schedule"))).send().await.unwrap()).await;
    assert_eq!(got["schedule"]["dayOfWeek"], 1);

    let (_, health) = json_of(admin(c.get(url("/health"))).send().await.unwrap()).await;
    assert_eq!(health["scheduleEnabled"], true);
    assert_eq!(health["timeZone"], "Europe/Berlin");
    assert!(health["nextRun"].is_string());

    assert_eq!(
        json_of(admin(c.get(url("/encryption/status"))).send().await.unwrap()).await,
        (StatusCode::OK, json!({"enabled": false}))
    );
    let (s, _) = json_of(admin(c.post(url("/encryption/enable"))).json(&json!({})).send().await.unwrap()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, body) =
        json_of(admin(c.post(url("/encryption/enable"))).json(&json!({"password": "short"})).send().await.unwrap())
            .await;
    assert_eq!(
        (s, body["error"].as_str().unwrap()),
        (StatusCode::BAD_REQUEST, "Password must be at least 8 characters")
    );
    let (s, body) = json_of(
        admin(c.post(url("/encryption/disable"))).json(&json!({"password": "whatever1"})).send().await.unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    let (s, body) = json_of(
        admin(c.post(url("/encryption/enable"))).json(&json!({"password": "first password"})).send().await.unwrap(),
    )
    .await;
    assert_eq!((s, body["enabled"].clone()), (StatusCode::OK, json!(true)));
    let (s, _) = json_of(
        admin(c.post(url("/encryption/enable"))).json(&json!({"password": "first password"})).send().await.unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // An encrypted backup, then a password reset that re-headers it.
    let (_, created) = json_of(admin(c.post(url("/create"))).send().await.unwrap()).await;
    let name = created["filename"].as_str().unwrap().to_owned();
    assert!(name.ends_with(".framerr-backup"));
    let (s, body) = json_of(
        admin(c.post(url("/encryption/reset-password")))
            .json(&json!({"newPassword": "second password"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(body.get("rewriteErrors").is_none(), "{body}");
    let (s, body) = json_of(
        admin(c.post(url("/encryption/disable"))).json(&json!({"password": "first password"})).send().await.unwrap(),
    )
    .await;
    assert_eq!((s, body), (StatusCode::FORBIDDEN, json!({"error": "Incorrect password"})));

    // Restore on the running instance: the encrypted backup, with its password.
    let (s, body) = json_of(
        admin(c.post(url("/restore")))
            .json(&json!({"filename": name, "password": "first password"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    let (s, body) = json_of(
        admin(c.post(url("/restore")))
            .json(&json!({"filename": name, "password": "second password"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(body["safetyBackup"].as_str().unwrap().starts_with("framerr-safety-"));
    // Sessions were purged: the admin must sign in again.
    let (s, _) = json_of(admin(c.get(url("/status"))).send().await.unwrap()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_restore_plain_and_encrypted_with_its_limits() {
    let c = client();
    // An instance with no user yet.
    let mut inst = Instance::empty();
    inst.key = Some(backup_e2e::FIXTURE_KEY.into());
    let server = serve(&inst, &[]);
    let url = |p: &str| format!("{}/api/auth/setup{p}", server.base);
    let upload = |path: std::path::PathBuf| {
        let bytes = std::fs::read(path).unwrap();
        reqwest::multipart::Form::new().part("backup", reqwest::multipart::Part::bytes(bytes).file_name("backup"))
    };
    // Not a backup.
    let (s, body) =
        json_of(c.post(url("/restore")).multipart(upload(fixtures().join("golden.json"))).send().await.unwrap()).await;
    assert_eq!((s, body), (StatusCode::BAD_REQUEST, json!({"error": "Not a valid Framerr backup file"})));
    // Encrypted: held for its password.
    let encrypted = fixtures().join("backups/framerr-manual-2026-11-26T22-17-29.framerr-backup");
    let (s, body) = json_of(c.post(url("/restore")).multipart(upload(encrypted.clone())).send().await.unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["encrypted"], true);
    let id = body["restoreId"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36);
    let (s, _) = json_of(
        c.post(url("/restore/decrypt")).json(&json!({"restoreId": "nope", "password": "x"})).send().await.unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let try_pw = |pw: &str| c.post(url("/restore/decrypt")).json(&json!({"restoreId": id, "password": pw})).send();
    let (s, body) = json_of(try_pw("wrong 1").await.unwrap()).await;
    assert_eq!((s, body), (StatusCode::UNAUTHORIZED, json!({"error": "Incorrect password", "attemptsRemaining": 4})));
    let (s, body) = json_of(try_pw("wrong 2").await.unwrap()).await;
    assert_eq!((s, body["retryAfter"].clone()), (StatusCode::TOO_MANY_REQUESTS, json!(1)));
    for remaining in [3, 2, 1, 0] {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (s, body) = json_of(try_pw("wrong again").await.unwrap()).await;
        assert_eq!((s, body["attemptsRemaining"].clone()), (StatusCode::UNAUTHORIZED, json!(remaining)));
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, _) = json_of(try_pw(FIXTURE_PASSWORD).await.unwrap()).await;
    assert_eq!(s, StatusCode::GONE, "after 5 failures the upload is gone");
    // A new upload with the right password restores.
    let (_, body) = json_of(c.post(url("/restore")).multipart(upload(encrypted)).send().await.unwrap()).await;
    let id2 = body["restoreId"].as_str().unwrap().to_owned();
    let (s, body) = json_of(
        c.post(url("/restore/decrypt"))
            .json(&json!({"restoreId": id2, "password": FIXTURE_PASSWORD}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, body), (StatusCode::OK, json!({"success": true})));
    // Now a user exists: setup restore is closed.
    let plain = fixtures().join("backups/framerr-manual-2026-11-26T22-17-29.zip");
    let (s, body) = json_of(c.post(url("/restore")).multipart(upload(plain)).send().await.unwrap()).await;
    assert_eq!((s, body), (StatusCode::FORBIDDEN, json!({"error": "Restore is only available during initial setup"})));
    // The uploads of both sessions are gone.
    let left: Vec<String> = std::fs::read_dir(inst.backups())
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| n.contains("upload")).collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_beyond_the_limit_are_refused() {
    let c = client();
    let inst = Instance::empty();
    let server = serve(&inst, &["--upload-limit", "10000"]);
    let bytes = std::fs::read(fixtures().join("backups/framerr-manual-2026-11-26T22-17-29.zip")).unwrap();
    let form =
        reqwest::multipart::Form::new().part("backup", reqwest::multipart::Part::bytes(bytes).file_name("b.zip"));
    let (s, body) =
        json_of(c.post(format!("{}/api/auth/setup/restore", server.base)).multipart(form).send().await.unwrap()).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body["error"].as_str().unwrap().contains("upload limit"));
    assert!(!inst.db().exists());
}

/// A database big enough that a backup takes a while.
fn add_ballast(inst: &Instance, mib: u32) {
    python_ok(
        &format!(
            "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nc.execute('CREATE TABLE ballast(b)')\nc.execute('WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < {}) INSERT INTO ballast SELECT randomblob(1024) FROM n')\nc.commit()",
            mib * 1024
        ),
        &[&inst.db()],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_backup_at_a_time_and_sigterm_leaves_nothing_partial() {
    let inst = Instance::from_fixture();
    add_sessions(&inst);
    schedule_off(&inst);
    add_ballast(&inst, 300);
    let mut server = serve(&inst, &["--threads", "1"]);
    let c = client();
    let events = admin(c.get(format!("{}/api/backup/events", server.base))).send().await.unwrap();
    let mut stream = events.bytes_stream();
    let first = tokio::spawn(admin(c.post(format!("{}/api/backup/create", server.base))).send());
    let mut text = String::new();
    while !text.contains("event: backup:progress") {
        let chunk = tokio::time::timeout(Duration::from_secs(20), stream.next()).await.unwrap().unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let (s, body) = json_of(admin(c.post(format!("{}/api/backup/create", server.base))).send().await.unwrap()).await;
    assert_eq!((s, body), (StatusCode::CONFLICT, json!({"error": "A backup is already in progress"})));
    assert_eq!(
        json_of(admin(c.get(format!("{}/api/backup/status", server.base))).send().await.unwrap()).await.1,
        json!({"inProgress": true})
    );
    // SIGTERM mid-backup.
    std::process::Command::new("kill").arg("-TERM").arg(server.child.id().to_string()).status().unwrap();
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let _ = first.await;
    let left: Vec<String> = std::fs::read_dir(inst.backups())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_schedule_catches_up_at_start_and_records_last_backup() {
    // The fixture's schedule is enabled and has never run.
    let inst = Instance::from_fixture();
    add_sessions(&inst);
    let server = serve(&inst, &[]);
    let c = client();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, got) =
            json_of(admin(c.get(format!("{}/api/backup/schedule", server.base))).send().await.unwrap()).await;
        if got["schedule"]["lastBackup"].is_string() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no catch-up backup: {got}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, list) = json_of(admin(c.get(format!("{}/api/backup/list", server.base))).send().await.unwrap()).await;
    assert_eq!(list["count"], 1);
    assert_eq!(list["backups"][0]["type"], "scheduled");
    let (_, health) = json_of(admin(c.get(format!("{}/api/backup/health", server.base))).send().await.unwrap()).await;
    assert_eq!(health["overdue"], false, "{health}");
    assert!(health["lastSuccess"].is_string() && health["lastError"].is_null(), "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_links_are_not_served_and_safety_backups_go_only_when_forced() {
    let inst = Instance::from_fixture();
    add_sessions(&inst);
    schedule_off(&inst);
    std::fs::create_dir_all(inst.backups()).unwrap();
    let link = "framerr-manual-2026-01-01T00-00-00.zip";
    std::os::unix::fs::symlink("/etc/passwd", inst.backups().join(link)).unwrap();
    let safety = "framerr-safety-2026-01-01T00-00-00.zip";
    std::fs::copy(fixtures().join("backups/framerr-manual-2026-11-26T22-17-29.zip"), inst.backups().join(safety))
        .unwrap();
    let server = serve(&inst, &[]);
    let c = client();
    let resp = admin(c.get(format!("{}/api/backup/download/{link}", server.base))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND, "a planted link was served");
    let (s, body) = json_of(
        admin(c.post(format!("{}/api/backup/restore", server.base)))
            .json(&json!({"filename": link}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, body), (StatusCode::NOT_FOUND, json!({"error": "Backup not found"})));
    let (s, _) = json_of(admin(c.delete(format!("{}/api/backup/{safety}", server.base))).send().await.unwrap()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, body) =
        json_of(admin(c.delete(format!("{}/api/backup/{safety}?force=true", server.base))).send().await.unwrap()).await;
    assert_eq!((s, body), (StatusCode::OK, json!({"success": true})));
    assert!(!inst.backups().join(safety).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_restore_closes_when_an_admin_appears_before_the_swap() {
    let mut inst = Instance::from_fixture();
    inst.key = Some(backup_e2e::FIXTURE_KEY.into());
    // A fresh Framerr: its database exists, no user yet.
    python_ok(
        "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nc.execute('DELETE FROM users')\nc.commit()",
        &[&inst.db()],
    );
    schedule_off(&inst);
    let server = serve_with(&inst, &[], &[("FRAMERR_FAILPOINT", "restore:staged=sleep:2500")]);
    let c = client();
    let bytes = std::fs::read(fixtures().join("backups/framerr-manual-2026-11-26T22-17-29.zip")).unwrap();
    let form =
        reqwest::multipart::Form::new().part("backup", reqwest::multipart::Part::bytes(bytes).file_name("b.zip"));
    let request = c.post(format!("{}/api/auth/setup/restore", server.base)).multipart(form).send();
    let respond = tokio::spawn(request);
    // While the upload is being staged, the first admin signs up in Framerr.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    python_ok(
        "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nc.execute(\"INSERT INTO users (id, username, password, group_id) VALUES ('u-new', 'newadmin', 'x', 'admin')\")\nc.commit()",
        &[&inst.db()],
    );
    let (s, body) = json_of(respond.await.unwrap().unwrap()).await;
    assert_eq!((s, body), (StatusCode::FORBIDDEN, json!({"error": "Restore is only available during initial setup"})));
    let users = backup_e2e::query(&inst.db(), "SELECT id FROM users");
    assert_eq!(users, json!([["u-new"]]), "the new admin vanished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root to mount a tmpfs (CI runs as root and runs it)"]
async fn a_full_disk_during_restore_is_507_not_a_damaged_backup() {
    let source = Instance::from_fixture();
    add_ballast(&source, 6);
    let created: Value = serde_json::from_str(&source.ok(&["create", "--json"])).unwrap();
    let name = created["filename"].as_str().unwrap().to_owned();
    // The live instance on a disk with room for itself, not for the restore.
    let inst = Instance::empty();
    let _full = backup_e2e::Tmpfs::mount(&inst.data(), "3m");
    backup_e2e::copy_tree(&fixtures().join("instance-plain"), &inst.data());
    add_sessions(&inst);
    schedule_off(&inst);
    let backups = source.backups();
    let server = serve(&inst, &["--backups-dir", backups.to_str().unwrap()]);
    let c = client();
    let (s, body) = json_of(
        admin(c.post(format!("{}/api/backup/restore", server.base)))
            .json(&json!({"filename": name}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::INSUFFICIENT_STORAGE, "{body}");
    assert!(!body["error"].as_str().unwrap().contains("damaged"), "{body}");
    assert_eq!(backup_e2e::query(&inst.db(), "PRAGMA integrity_check"), json!([["ok"]]));
    assert!(backup_e2e::count(&inst.db(), "sessions") > 0, "the live instance changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root to mount a tmpfs (CI runs as root and runs it)"]
async fn a_full_disk_at_any_step_of_a_restore_is_507_and_changes_nothing() {
    // The disk fills while staging, while preparing the staged database, or
    // while writing the safety backup, depending on its size: each is the
    // server's problem (507), never the backup's (400), and never a bare 500.
    let name = "framerr-manual-2026-11-26T22-17-29.zip";
    let mut seen = std::collections::BTreeSet::new();
    for extra_kib in (0..=2400).step_by(48) {
        let inst = Instance::empty();
        let _full = backup_e2e::Tmpfs::mount(&inst.data(), &format!("{}k", 700 + extra_kib));
        backup_e2e::copy_tree(&fixtures().join("instance-plain"), &inst.data());
        std::fs::create_dir_all(inst.backups()).unwrap();
        std::fs::copy(fixtures().join("backups").join(name), inst.backups().join(name)).unwrap();
        add_sessions(&inst);
        schedule_off(&inst);
        let server = serve(&inst, &[]);
        let resp = admin(client().post(format!("{}/api/backup/restore", server.base)))
            .json(&json!({ "filename": name }))
            .send()
            .await
            .unwrap();
        let (s, body) = json_of(resp).await;
        let log = server.log();
        drop(server);
        seen.insert(s.as_u16());
        match s {
            StatusCode::OK => {}
            StatusCode::INSUFFICIENT_STORAGE => {
                assert!(body["error"].as_str().unwrap().contains("no space left"), "{extra_kib}: {body}");
                assert_eq!(backup_e2e::query(&inst.db(), "PRAGMA integrity_check"), json!([["ok"]]));
                assert!(backup_e2e::count(&inst.db(), "sessions") > 0, "{extra_kib}: the live instance changed");
                // The killed server's owner files go with the next command.
                inst.ok(&["list"]);
                let left = backup_e2e::hidden_leftovers(&inst.data());
                assert!(left.is_empty(), "{extra_kib}: {left:?} {body}");
            }
            other => panic!("{extra_kib} KiB spare: {other} {body}\n{log}"),
        }
    }
    assert_eq!(seen, [200, 507].into(), "the sizes tried should cover both outcomes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_changes_happen_one_at_a_time_and_say_so() {
    let inst = Instance::from_fixture();
    add_sessions(&inst);
    schedule_off(&inst);
    let server = serve(&inst, &[]);
    let c = client();
    let url = |path: &str| format!("{}/api/backup/encryption{path}", server.base);
    for round in 0..5 {
        // Two enables at once: one wins, the other is told, and the
        // winner's password is the one that works.
        let enable =
            |password: &'static str| admin(c.post(url("/enable"))).json(&json!({ "password": password })).send();
        let (a, b) = tokio::join!(enable("password A!"), enable("password B!"));
        let (a, b) = (a.unwrap().status(), b.unwrap().status());
        let won: Vec<&str> = [(a, "password A!"), (b, "password B!")]
            .into_iter()
            .filter(|(s, _)| *s == StatusCode::OK)
            .map(|(_, p)| p)
            .collect();
        assert_eq!(won.len(), 1, "round {round}: {a} {b}");
        assert!([a, b].iter().all(|s| [StatusCode::OK, StatusCode::CONFLICT].contains(s)), "round {round}: {a} {b}");
        // Disable racing a reset: whatever the answers, the state agrees.
        let disable = admin(c.post(url("/disable"))).json(&json!({ "password": won[0] })).send();
        let reset = admin(c.post(url("/reset-password"))).json(&json!({ "password": "password C!" })).send();
        let (disabled, _) = tokio::join!(disable, reset);
        let disabled = disabled.unwrap().status();
        let status = json_of(admin(c.get(url("/status"))).send().await.unwrap()).await.1;
        if disabled == StatusCode::OK {
            assert_eq!(status["enabled"], false, "round {round}: disabled, yet {status}");
        } else {
            assert_eq!(status["enabled"], true, "round {round}: {disabled}, {status}");
            let (s, body) = json_of(
                admin(c.post(url("/disable"))).json(&json!({ "password": "password C!" })).send().await.unwrap(),
            )
            .await;
            assert_eq!(s, StatusCode::OK, "round {round}: {body}");
        }
    }
}

/// Opens `n` connections to `port` that send one header line (`header`)
/// or one byte of a sign-in's body (`body`) every 2 s, never finishing;
/// prints how many the server closed within `secs`.
const PY_SLOW_CLIENTS: &str = r#"
import socket, sys, time
port, n, secs, mode = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
start_line = {
    "header": b"GET /api/backup/status HTTP/1.1\r\nHost: x\r\n",
    "body": b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nX-Framerr-Client: 1\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{",
}[mode.replace("frontload", "body")]
# A fast start (most of the body at once) buys no time for trickling.
start_line = start_line + b" " * 50000 if mode == "frontload" else start_line
trickle = {"header": b"X-Slow: 1\r\n", "body": b" ", "frontload": b" "}[mode]
socks = []
for i in range(n):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(start_line)
        s.setblocking(False)
        socks.append(s)
    except OSError:
        pass
opened, closed, start = len(socks), set(), time.time()
while time.time() - start < secs:
    for i, s in enumerate(socks):
        if i in closed:
            continue
        try:
            # An end, or an answer to a request that never finished: the
            # server is done with it (it closes after answering).
            s.recv(65536)
            closed.add(i)
            continue
        except BlockingIOError:
            pass
        except OSError:
            closed.add(i)
            continue
        try:
            s.sendall(trickle)
        except OSError:
            closed.add(i)
    time.sleep(2)
print(opened, len(closed))
"#;

/// `serve` under `ulimit -n limit`: its connection cap is half of it, an
/// address's share a quarter of that.
fn serve_with_file_limit(inst: &Instance, limit: u32) -> Server {
    let probe = inst.command(&["serve", "--listen", "127.0.0.1:0"]);
    let mut cmd = std::process::Command::new("bash");
    cmd.arg("-c")
        .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
        .arg(probe.get_program())
        .args(probe.get_args());
    for (k, v) in probe.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.current_dir(inst.dir.path()).env("FRAMERR_BACKUP_TOKEN", TOKEN);
    Server::spawn(cmd)
}

/// Holds `share` idle connections to `port`, then tries one more; prints
/// whether it was refused, then whether a connection made after letting
/// the others go is answered.
const PY_ONE_ADDRESS: &str = r#"
import socket, sys, time
port, share = int(sys.argv[1]), int(sys.argv[2])
request = b"GET /api/auth/setup/status HTTP/1.1\r\nHost: x\r\n\r\n"
def ask():
    s = socket.create_connection(("127.0.0.1", port)); s.settimeout(3)
    try:
        s.sendall(request)
        return "answered" if s.recv(12).startswith(b"HTTP/1.1") else "refused"
    except OSError:
        return "refused"
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(share)]
time.sleep(0.5)
print(ask())
for s in held: s.close()
time.sleep(0.5)
print(ask())
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holds_at_most_a_quarter_of_the_connections() {
    let inst = Instance::from_fixture();
    schedule_off(&inst);
    // 128 files: 64 connections, 16 for one address.
    let server = serve_with_file_limit(&inst, 128);
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    let out = python_ok(PY_ONE_ADDRESS, &[std::path::Path::new(&port), std::path::Path::new("16")]);
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["refused", "answered"], "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_cannot_hold_the_server_even_with_few_file_descriptors() {
    let inst = Instance::from_fixture();
    add_sessions(&inst);
    schedule_off(&inst);
    // A small container's file limit.
    let server = serve_with_file_limit(&inst, 128);
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    let slow = slow_clients(&port, "300", "24", "header");
    // Past the 10 s header deadline, a real client is answered at once.
    tokio::time::sleep(Duration::from_secs(13)).await;
    let started = std::time::Instant::now();
    let c = client();
    let resp = c.get(format!("{}/api/backup/status", server.base)).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let (opened, closed) = slow_clients_result(slow);
    assert!(opened > 0, "no slow connection could be opened");
    assert_eq!(closed, opened, "slow clients kept their connections: {closed} of {opened} closed");
}

/// Starts [`PY_SLOW_CLIENTS`]: `n` connections to `port` in `mode` for `secs`.
fn slow_clients(port: &str, n: &str, secs: &str, mode: &str) -> std::process::Child {
    std::process::Command::new("python3")
        .args(["-c", PY_SLOW_CLIENTS, port, n, secs, mode])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

fn slow_clients_result(slow: std::process::Child) -> (u32, u32) {
    let out = slow.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let (opened, closed) = text.trim().split_once(' ').unwrap();
    (opened.parse().unwrap(), closed.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickled_a_byte_at_a_time_does_not_hold_its_connection() {
    let inst = Instance::from_fixture();
    schedule_off(&inst);
    let server = serve(&inst, &[]);
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    // Every idle timer restarts at each byte: only a pace for the body
    // ends these (10 KiB in every 10 s, until the body ends).
    let slow = slow_clients(&port, "20", "16", "body");
    let frontloaded = slow_clients(&port, "10", "28", "frontload");
    let (opened, closed) = slow_clients_result(slow);
    assert_eq!(opened, 20);
    assert_eq!(closed, opened, "slow bodies kept their connections: {closed} of {opened} closed");
    let (opened, closed) = slow_clients_result(frontloaded);
    assert_eq!(opened, 10);
    assert_eq!(closed, opened, "front-loaded bodies kept their connections: {closed} of {opened} closed");
}

/// Readers (the page's health and schedule polls, a scraper) keep getting
/// answers while restores swap the database underneath them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_during_restores_never_fail() {
    let inst = Instance::from_fixture();
    add_sessions(&inst);
    schedule_off(&inst);
    let server = serve(&inst, &[]);
    let c = client();
    let (s, created) =
        json_of(c.post(format!("{}/api/backup/create", server.base)).bearer_auth(TOKEN).send().await.unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{created}");
    let name = created["filename"].as_str().unwrap().to_owned();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut pollers = Vec::new();
    for path in ["/api/backup/health", "/api/backup/schedule", "/api/backup/status", "/api/backup/list"] {
        let (c, url, stop) = (c.clone(), format!("{}{path}", server.base), stop.clone());
        pollers.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let resp = c.get(&url).bearer_auth(TOKEN).send().await.unwrap();
                let status = resp.status();
                if status == StatusCode::OK {
                    ok += 1;
                } else {
                    failed.push(format!("{url}: {status} {}", resp.text().await.unwrap_or_default()));
                }
            }
            (ok, failed)
        }));
    }
    for _ in 0..6 {
        let resp = c
            .post(format!("{}/api/backup/restore", server.base))
            .bearer_auth(TOKEN)
            .json(&json!({"filename": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{}", resp.text().await.unwrap());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for poller in pollers {
        let (ok, failed) = poller.await.unwrap();
        assert!(ok > 0);
        assert!(failed.is_empty(), "{} failed reads, first: {:?}", failed.len(), failed.first());
    }
}

/// Calendar retention in the schedule (kept by Framerr's PUT), pins and
/// the retention plan over the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calendar_retention_and_pins_over_the_api() {
    let inst = Instance::from_fixture();
    add_sessions(&inst);
    schedule_off(&inst);
    let server = serve(&inst, &["--time-zone", "Europe/Berlin"]);
    let c = client();
    let url = |path: &str| format!("{}/api/backup{path}", server.base);
    let put = |body: Value| admin(c.put(url("/schedule"))).json(&body).send();
    let (s, body) =
        json_of(put(json!({"enabled": false, "maxBackups": 3, "keepDaily": 7, "keepMonthly": 12})).await.unwrap())
            .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    // What Framerr's settings page sends keeps the calendar rules.
    let framerr = json!({"enabled": false, "frequency": "weekly", "dayOfWeek": 1, "hour": 4, "maxBackups": 4});
    assert_eq!(put(framerr).await.unwrap().status(), StatusCode::OK);
    let (_, got) = json_of(admin(c.get(url("/schedule"))).send().await.unwrap()).await;
    let schedule = &got["schedule"];
    assert_eq!(
        (&schedule["keepDaily"], &schedule["keepMonthly"], &schedule["maxBackups"]),
        (&json!(7), &json!(12), &json!(4)),
        "{got}"
    );
    let (s, body) = json_of(put(json!({"enabled": false, "keepWeekly": 5000})).await.unwrap()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("keepWeekly must be a whole number from 0 to 1000"), "{body}");

    let (s, created) = json_of(admin(c.post(url("/create"))).send().await.unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{created}");
    let name = created["filename"].as_str().unwrap().to_owned();
    let (s, pinned) = json_of(admin(c.post(url(&format!("/{name}/pin")))).send().await.unwrap()).await;
    assert_eq!((s, &pinned["pinned"]), (StatusCode::OK, &json!(true)), "{pinned}");
    let (_, list) = json_of(admin(c.get(url("/list"))).send().await.unwrap()).await;
    assert_eq!(list["backups"][0]["pinned"], true, "{list}");
    let (s, body) = json_of(admin(c.delete(url(&format!("/{name}")))).send().await.unwrap()).await;
    assert_eq!(
        (s, body),
        (StatusCode::FORBIDDEN, json!({"error": "Pinned backups cannot be deleted without force=true"}))
    );
    let (_, plan) = json_of(admin(c.get(url("/retention"))).send().await.unwrap()).await;
    assert_eq!(plan["timeZone"], "Europe/Berlin");
    let kept = &plan["destinations"][0]["kept"][0];
    assert_eq!((&kept["filename"], &kept["reasons"][0]), (&json!(name), &json!("pinned")), "{plan}");
    assert_eq!(plan["destinations"][0]["policy"], json!({"last": 4, "daily": 7, "weekly": 0, "monthly": 12}));
    let (s, _) = json_of(admin(c.delete(url(&format!("/{name}/pin")))).send().await.unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    let (_, list) = json_of(admin(c.get(url("/list"))).send().await.unwrap()).await;
    assert_eq!(list["backups"][0]["pinned"], false);
    let (s, _) = json_of(admin(c.post(url("/framerr-manual-2020-01-01T00-00-00.zip/pin"))).send().await.unwrap()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(admin(c.delete(url(&format!("/{name}")))).send().await.unwrap().status(), StatusCode::OK);
}

/// The fixture backup with a table added to its database whose CHECK
/// constraint builds `bytes` of hex for each of its 20,000 rows.
fn costly_upload(dir: &Path, bytes: u64) -> PathBuf {
    let zip = dir.join(format!("costly-{bytes}.zip"));
    python_ok(
        r#"
import sys, zipfile, sqlite3, tempfile, os
src, out = sys.argv[1], sys.argv[2]
d = tempfile.mkdtemp(); db = os.path.join(d, "framerr.db")
with zipfile.ZipFile(src) as z:
    names = z.namelist(); z.extract("framerr.db", d); entries = {n: z.read(n) for n in names if n != "framerr.db"}
c = sqlite3.connect(db)
c.executescript("""CREATE TABLE costly (n INTEGER);
    WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < 20000) INSERT INTO costly SELECT x FROM r;
    PRAGMA writable_schema = ON;
    UPDATE sqlite_master SET sql = 'CREATE TABLE costly (n INTEGER CHECK (length(hex(zeroblob(BYTES))) > 0))' WHERE name = 'costly';
    PRAGMA writable_schema = OFF;""".replace("BYTES", sys.argv[3]))
c.commit(); c.close()
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    z.write(db, "framerr.db")
    for n, b in entries.items(): z.writestr(n, b)
"#,
        &[&fixtures().join("backups/framerr-manual-2026-11-26T22-17-29.zip"), &zip, Path::new(&bytes.to_string())],
    );
    zip
}

/// The server's peak resident memory, in KiB.
fn peak_kib(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_uploads_being_checked_never_keep_the_real_user_out() {
    let inst = Instance::from_fixture();
    python_ok(
        "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nc.execute('DELETE FROM users')\nc.commit()",
        &[&inst.db()],
    );
    schedule_off(&inst);
    // 600 MB of hex a row (the server grew to 1.4 GB), and 4 MB a row
    // (minutes of CPU).
    let huge = std::fs::read(costly_upload(inst.dir.path(), 300_000_000)).unwrap();
    let slow = std::fs::read(costly_upload(inst.dir.path(), 2_000_000)).unwrap();
    assert!(huge.len() < 1 << 20 && slow.len() < 1 << 20, "{} {} bytes", huge.len(), slow.len());
    let server = serve(&inst, &[]);
    let c = client();
    let url = format!("{}/api/auth/setup/restore", server.base);
    let upload = |bytes: Vec<u8>| {
        let form = reqwest::multipart::Form::new()
            .part("backup", reqwest::multipart::Part::bytes(bytes).file_name("backup.zip"));
        tokio::spawn(c.post(&url).multipart(form).send())
    };
    // Two hostile uploads, no sign-in needed; while they are being checked
    // the real user uploads their backup.
    let hostile = [upload(huge), upload(slow)];
    tokio::time::sleep(Duration::from_millis(300)).await;
    let genuine = std::fs::read(fixtures().join("backups/framerr-manual-2026-11-26T22-17-29.zip")).unwrap();
    let (s, body) = json_of(upload(genuine).await.unwrap().unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["success"], json!(true), "{body}");
    for answer in hostile {
        let (s, body) = json_of(answer.await.unwrap().unwrap()).await;
        assert!(s.is_client_error(), "{s} {body}");
        assert!(body.to_string().contains("too much work"), "{body}");
    }
    let peak = peak_kib(&server);
    assert!(peak < 256 * 1024, "the server grew to {peak} KiB");
}

/// The create response names every backup retention deleted, in every
/// destination (`deleted` stays the backups folder's, as Framerr's).
#[tokio::test]
async fn the_create_response_reports_every_deletion_in_every_destination() {
    let inst = Instance::from_fixture();
    add_sessions(&inst);
    schedule_off(&inst);
    let nas = inst.dir.path().join("nas");
    std::fs::create_dir_all(&nas).unwrap();
    let old = "framerr-manual-2020-01-01T00-00-00.zip";
    std::fs::write(nas.join(old), b"old").unwrap();
    let destination = format!("file://{}?keep-last=1", nas.display());
    let server = serve(&inst, &["--destination", &destination]);
    let c = client();
    let (s, created) = json_of(admin(c.post(format!("{}/api/backup/create", server.base))).send().await.unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{created}");
    assert!(!nas.join(old).exists(), "retention did not run in the NAS");
    assert_eq!(created["deleted"], json!([]), "{created}");
    let place = &created["destinations"][0];
    assert_eq!(place["destination"], format!("file://{}", nas.display()), "{created}");
    assert_eq!((&place["error"], &place["deleted"]), (&Value::Null, &json!([old])), "{created}");
    assert_eq!((&place["failed"], &place["retentionError"]), (&json!([]), &Value::Null), "{created}");
}

/// Sign-in tells nothing about accounts: a wrong password, a name nobody
/// has and an account without a local password (single sign-on) get the
/// same answer, each after one bcrypt check at the cost of the costliest
/// hash in `users` (read from the server's debug log, not timed), and each
/// counts against the address's attempts.
#[tokio::test]
async fn sign_in_answers_alike_for_any_failure_and_counts_every_one() {
    let inst = Instance::from_fixture();
    schedule_off(&inst);
    let costly = bcrypt::hash("the admin's password", 12).unwrap();
    python_ok(
        "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nc.execute(\"UPDATE users SET password=? WHERE username='admin'\",(sys.argv[2],))\nc.execute(\"UPDATE users SET has_local_password=0, group_id='admin' WHERE username='carol'\")\nc.commit()",
        &[&inst.db(), std::path::Path::new(&costly)],
    );
    let server = serve_with(&inst, &[], &[("FRAMERR_LOG", "backup_crypto=debug")]);
    let c = client();
    let login = |username: &str| {
        c.post(format!("{}/api/auth/login", server.base))
            .json(&json!({"username": username, "password": "not the password"}))
            .send()
    };
    let mut answers = Vec::new();
    for name in ["admin", "nobody-at-all", "carol"] {
        let resp = login(name).await.unwrap();
        answers.push((resp.status(), resp.text().await.unwrap()));
    }
    assert_eq!(answers[0].0, StatusCode::UNAUTHORIZED, "{answers:?}");
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    let log = server.log();
    let costs: Vec<&str> = log.lines().filter(|l| l.contains("bcrypt check")).collect();
    assert_eq!(costs.len(), 3, "{log}");
    assert!(costs.iter().all(|l| l.contains("cost=12")), "{costs:?}");
    // Every one counted: two more, then the address waits.
    for _ in 0..2 {
        assert_eq!(login("carol").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login("carol").await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
}

/// A damaged pins document is shown on the API's listing until it is fixed.
#[tokio::test]
async fn the_listing_says_when_the_pins_are_unreadable() {
    let inst = Instance::from_fixture();
    add_sessions(&inst);
    schedule_off(&inst);
    std::fs::create_dir_all(inst.backups()).unwrap();
    let name = "framerr-manual-2026-01-01T00-00-00.zip";
    std::fs::write(inst.backups().join(name), b"planted").unwrap();
    std::fs::write(inst.backups().join("framerr-backup.pins.json"), format!("{{\"pinned\":[\"{name}\"")).unwrap();
    let server = serve(&inst, &[]);
    let c = client();
    let (s, list) = json_of(admin(c.get(format!("{}/api/backup/list", server.base))).send().await.unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert!(list["pinsUnreadable"][0].as_str().unwrap_or_default().contains("pins"), "{list}");
    assert_eq!(list["backups"][0]["pinsUnreadable"], true, "{list}");
}

/// "Verify now" finishes and records its result although the page that
/// asked was closed at once.
#[tokio::test]
async fn a_verification_finishes_and_is_recorded_when_the_client_goes_away() {
    use std::io::Write;
    let inst = Instance::from_fixture();
    schedule_off(&inst);
    add_ballast(&inst, 96);
    let created: Value = serde_json::from_str(&inst.ok(&["create", "--json"])).unwrap();
    let server = serve(&inst, &[]);
    let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
    write!(
        stream,
        "POST /api/backup/verify HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {TOKEN}\r\nX-Framerr-Client: 1\r\nContent-Length: 0\r\n\r\n",
        server.addr()
    )
    .unwrap();
    // The request is in; the page is closed while the check runs.
    std::thread::sleep(Duration::from_millis(300));
    stream.shutdown(std::net::Shutdown::Both).unwrap();
    drop(stream);
    let c = client();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let recorded = loop {
        let (_, got) = json_of(
            c.get(format!("{}/api/backup/verification", server.base))
                .header("Authorization", format!("Bearer {TOKEN}"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        if got.as_array().is_some_and(|a| !a.is_empty()) {
            break got;
        }
        assert!(std::time::Instant::now() < deadline, "nothing was recorded: {}", server.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(recorded[0]["filename"], created["filename"], "{recorded}");
    assert_eq!(recorded[0]["outcome"], "passed", "{recorded}");
}
