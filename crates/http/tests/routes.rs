//! Every route in process (`tower::ServiceExt::oneshot`), over the
//! in-memory store and the domain's test doubles: the auth matrix, error
//! shapes, and what each route answers. The end-to-end tests keep what
//! needs the real binary (real SQLite, real files, signals).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast};
use tower::ServiceExt;
use zeroize::Zeroizing;

use backup_domain::auth::SessionUser;
use backup_domain::memory::MemoryStore;
use backup_domain::ports::BackupStore;
use backup_domain::scheduler::ScheduledBackups;
use backup_domain::testkit::restore::{Accounts, MemoryKeyStore, NoScratch, Vault, World, restorer};
use backup_domain::{BackupEncryption, BackupName, Zone};
use backup_http::{AppState, SetupRestores, router};

const TOKEN: &str = "bearer-for-tests";

struct Harness {
    world: Arc<World>,
    store: MemoryStore,
    state: AppState,
}

fn harness() -> Harness {
    let world = World::new();
    world.sessions.lock().unwrap().extend([
        ("admin-live".to_owned(), SessionUser { user_id: "u-admin".into(), is_admin: true }),
        ("alice-live".to_owned(), SessionUser { user_id: "u-alice".into(), is_admin: false }),
    ]);
    let store = MemoryStore::default();
    let restorer = restorer(&world, &store);
    let state = AppState {
        backups: ScheduledBackups::new(restorer.creator.clone(), Zone::utc()),
        restorer,
        encryption: BackupEncryption { key_store: Arc::new(MemoryKeyStore::default()), vault: Arc::new(Vault) },
        sessions: Arc::new(Accounts(world.clone())),
        scratch: Arc::new(NoScratch),
        events: broadcast::channel(16).0,
        schedule_changed: Arc::new(Notify::new()),
        bearer_token: Some(Arc::new(Zeroizing::new(TOKEN.to_owned()))),
        upload_limit: 1 << 20,
        setup: SetupRestores::default(),
    };
    Harness { world, store, state }
}

enum Who {
    Nobody,
    Cookie(&'static str),
    Bearer(&'static str),
}

async fn call(state: &AppState, method: Method, path: &str, who: Who, body: Option<Value>) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(path);
    match who {
        Who::Nobody => {}
        Who::Cookie(session) => request = request.header(header::COOKIE, format!("theme=dark; sessionId={session}")),
        Who::Bearer(token) => request = request.header(header::AUTHORIZATION, format!("Bearer {token}")),
    }
    let request = match body {
        Some(body) => request.header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_string())),
        None => request.body(Body::empty()),
    }
    .unwrap();
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn seed(store: &MemoryStore, name: &str) {
    let mut upload = store.create(&BackupName::parse(name).unwrap()).await.unwrap();
    futures::io::AsyncWriteExt::write_all(&mut upload, b"PK\x03\x04 a backup").await.unwrap();
    upload.commit().await.unwrap();
}

const ROUTES: [(&str, &str); 14] = [
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
];

#[tokio::test]
async fn every_backup_route_is_for_admins_only() {
    let h = harness();
    for (method, path) in ROUTES {
        let m: Method = method.parse().unwrap();
        let (s, body) = call(&h.state, m.clone(), path, Who::Nobody, None).await;
        assert_eq!((s, body), (StatusCode::UNAUTHORIZED, json!({"error": "Not authenticated"})), "{method} {path}");
        let (s, _) = call(&h.state, m.clone(), path, Who::Cookie("no-such-session"), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {path}: unknown session");
        let (s, body) = call(&h.state, m.clone(), path, Who::Cookie("alice-live"), None).await;
        assert_eq!((s, body), (StatusCode::FORBIDDEN, json!({"error": "Admin access required"})), "{method} {path}");
        let (s, _) = call(&h.state, m.clone(), path, Who::Bearer("wrong"), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {path}: wrong bearer");
        if path.ends_with("/events") {
            continue; // A stream: its answer never ends.
        }
        for who in [Who::Cookie("admin-live"), Who::Bearer(TOKEN)] {
            let (s, _) = call(&h.state, m.clone(), path, who, None).await;
            assert!(s != StatusCode::UNAUTHORIZED && s != StatusCode::FORBIDDEN, "{method} {path}: {s}");
        }
    }
}

#[tokio::test]
async fn create_list_download_and_delete() {
    let h = harness();
    let admin = || Who::Cookie("admin-live");
    let (s, created) = call(&h.state, Method::POST, "/api/backup/create", admin(), None).await;
    assert_eq!(s, StatusCode::OK, "{created}");
    assert_eq!(created["success"], true);
    let name = created["filename"].as_str().unwrap().to_owned();
    let (s, list) = call(&h.state, Method::GET, "/api/backup/list", admin(), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!((list["count"].as_u64(), list["backups"][0]["filename"].as_str()), (Some(1), Some(name.as_str())));
    assert_eq!(list["backups"][0]["locations"], json!(["memory"]));
    let (s, _) = call(&h.state, Method::GET, &format!("/api/backup/download/{name}"), admin(), None).await;
    assert_eq!(s, StatusCode::OK);
    for bad in ["nope.zip", "framerr-manual-2020-01-01T00-00-00.zip", "..%2F..%2Fetc%2Fpasswd"] {
        let (s, body) = call(&h.state, Method::GET, &format!("/api/backup/download/{bad}"), admin(), None).await;
        assert_eq!((s, body), (StatusCode::NOT_FOUND, json!({"error": "Backup not found"})), "{bad}");
    }
    let safety = "framerr-safety-2026-01-01T00-00-00.zip";
    seed(&h.store, safety).await;
    let (s, body) = call(&h.state, Method::DELETE, &format!("/api/backup/{safety}"), admin(), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    let (s, body) = call(&h.state, Method::DELETE, &format!("/api/backup/{safety}?force=true"), admin(), None).await;
    assert_eq!((s, body), (StatusCode::OK, json!({"success": true})));
    let (s, _) = call(&h.state, Method::DELETE, &format!("/api/backup/{name}"), admin(), None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = call(&h.state, Method::DELETE, &format!("/api/backup/{name}"), admin(), None).await;
    assert_eq!((s, body), (StatusCode::NOT_FOUND, json!({"error": "Backup not found"})));
    // One at a time: a held instance answers 409.
    let _held = h.state.backups.creator.hold().await.unwrap();
    let (s, body) = call(&h.state, Method::POST, "/api/backup/create", admin(), None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    let (s, body) = call(&h.state, Method::GET, "/api/backup/status", admin(), None).await;
    assert_eq!((s, body), (StatusCode::OK, json!({"inProgress": true})));
}

#[tokio::test]
async fn schedule_and_encryption_answer_with_framerrs_messages() {
    let h = harness();
    let admin = || Who::Cookie("admin-live");
    let (s, body) = call(&h.state, Method::GET, "/api/backup/schedule", admin(), None).await;
    assert_eq!((s, body["schedule"]["enabled"].clone()), (StatusCode::OK, json!(false)));
    let (s, body) =
        call(&h.state, Method::PUT, "/api/backup/schedule", admin(), Some(json!({"enabled": true, "hour": 25}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("hour"), "{body}");
    let weekly = json!({"enabled": true, "frequency": "weekly", "dayOfWeek": 0, "hour": 3, "maxBackups": 5});
    let (s, body) = call(&h.state, Method::PUT, "/api/backup/schedule", admin(), Some(weekly)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(body["status"]["nextBackup"].is_string());
    let (_, body) = call(&h.state, Method::GET, "/api/backup/schedule", admin(), None).await;
    assert_eq!(
        (body["schedule"]["frequency"].as_str(), body["schedule"]["maxBackups"].as_u64()),
        (Some("weekly"), Some(5))
    );

    let enc = |p: &str| format!("/api/backup/encryption/{p}");
    let (s, body) = call(&h.state, Method::POST, &enc("enable"), admin(), Some(json!({"password": "short"}))).await;
    assert_eq!((s, body), (StatusCode::BAD_REQUEST, json!({"error": "Password must be at least 8 characters"})));
    let (s, body) =
        call(&h.state, Method::POST, &enc("disable"), admin(), Some(json!({"password": "whatever1"}))).await;
    assert_eq!((s, body), (StatusCode::NOT_FOUND, json!({"error": "Backup encryption is not enabled"})));
    let pw = json!({"password": "a long password"});
    let (s, _) = call(&h.state, Method::POST, &enc("enable"), admin(), Some(pw.clone())).await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = call(&h.state, Method::POST, &enc("enable"), admin(), Some(pw.clone())).await;
    assert_eq!((s, body), (StatusCode::CONFLICT, json!({"error": "Backup encryption is already enabled"})));
    let (s, body) = call(&h.state, Method::GET, &enc("status"), admin(), None).await;
    assert_eq!((s, body), (StatusCode::OK, json!({"enabled": true})));
    let (s, body) =
        call(&h.state, Method::POST, &enc("disable"), admin(), Some(json!({"password": "wrong one"}))).await;
    assert_eq!((s, body), (StatusCode::FORBIDDEN, json!({"error": "Incorrect password"})));
    let (s, body) = call(&h.state, Method::POST, &enc("reset-password"), admin(), Some(json!({}))).await;
    assert_eq!((s, body), (StatusCode::BAD_REQUEST, json!({"error": "newPassword is required"})));
    let (s, _) =
        call(&h.state, Method::POST, &enc("reset-password"), admin(), Some(json!({"newPassword": "another one"})))
            .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(&h.state, Method::POST, &enc("disable"), admin(), Some(json!({"password": "another one"}))).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn restore_errors_say_whose_fault_it_is() {
    let h = harness();
    let admin = || Who::Cookie("admin-live");
    let (s, body) = call(&h.state, Method::POST, "/api/backup/restore", admin(), Some(json!({}))).await;
    assert_eq!((s, body), (StatusCode::BAD_REQUEST, json!({"error": "filename is required"})));
    let missing = json!({"filename": "framerr-manual-2020-01-01T00-00-00.framerr-backup"});
    let (s, body) = call(&h.state, Method::POST, "/api/backup/restore", admin(), Some(missing)).await;
    assert_eq!((s, body), (StatusCode::NOT_FOUND, json!({"error": "Backup not found"})));
    let name = "framerr-manual-2026-01-01T00-00-00.framerr-backup";
    seed(&h.store, name).await;
    let (s, body) = call(
        &h.state,
        Method::POST,
        "/api/backup/restore",
        admin(),
        Some(json!({"filename": name, "password": "nope"})),
    )
    .await;
    assert_eq!((s, body), (StatusCode::UNAUTHORIZED, json!({"error": "Incorrect password"})));
    let (s, body) = call(
        &h.state,
        Method::POST,
        "/api/backup/restore",
        admin(),
        Some(json!({"filename": name, "password": "right password"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(body["safetyBackup"].as_str().unwrap().starts_with("framerr-safety-"), "{body}");
    assert!(h.world.log.all().iter().any(|l| l.starts_with("commit")));
}

#[tokio::test]
async fn setup_restore_is_closed_once_a_user_exists() {
    let h = harness();
    *h.world.users.lock().unwrap() = vec![true, true];
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/auth/setup/restore")
        .header(header::CONTENT_TYPE, "multipart/form-data; boundary=X")
        .body(Body::from(
            "--X\r\nContent-Disposition: form-data; name=\"backup\"; filename=\"b\"\r\n\r\nPK\x03\x04\r\n--X--\r\n",
        ))
        .unwrap();
    let response = router(h.state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let decrypt = json!({"restoreId": "x", "password": "y"});
    let (s, body) = call(&h.state, Method::POST, "/api/auth/setup/restore/decrypt", Who::Nobody, Some(decrypt)).await;
    assert_eq!((s, body), (StatusCode::FORBIDDEN, json!({"error": "Restore is only available during initial setup"})));
}
