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
use backup_domain::auth::{Account, SignIn};
use backup_domain::memory::MemoryStore;
use backup_domain::ports::BackupStore;
use backup_domain::scheduler::ScheduledBackups;
use backup_domain::testkit::FixedClock;
use backup_domain::testkit::restore::{Accounts, FakeCredentials, MemoryKeyStore, NoScratch, Vault, World, restorer};
use backup_domain::{BackupEncryption, BackupName};
use backup_http::{AppState, InstancePaths, SetupRestores, router};

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
    let verifier = backup_domain::verification::Verifier {
        restorer: restorer.clone(),
        key_store: Arc::new(MemoryKeyStore::default()),
        clock: Arc::new(FixedClock::at(time::macros::datetime!(2026-11-27 12:00 UTC))),
        notifier: Arc::new(backup_domain::notify::Silent),
    };
    let state = AppState {
        backups: ScheduledBackups::new(restorer.creator.clone()),
        restorer,
        encryption: BackupEncryption {
            key_store: Arc::new(MemoryKeyStore::default()),
            vault: Arc::new(Vault),
            instance: None,
        },
        sessions: Arc::new(Accounts(world.clone())),
        scratch: Arc::new(NoScratch),
        events: broadcast::channel(16).0,
        schedule_changed: Arc::new(Notify::new()),
        bearer_token: Some(Arc::new(Zeroizing::new(TOKEN.to_owned()))),
        upload_limit: 1 << 20,
        setup: SetupRestores::default(),
        sign_in: SignIn::new(
            Arc::new(Accounts(world.clone())),
            Arc::new(FakeCredentials::default()),
            Arc::new(FixedClock::at(time::macros::datetime!(2026-11-27 12:00 UTC))),
        ),
        paths: InstancePaths { database: "/data/framerr.db".into(), data_dir: "/data".into() },
        verifier,
        metrics_token: None,
        trusted_proxies: Default::default(),
        framerr: None,
    };
    world.accounts.lock().unwrap().extend([
        Account {
            id: "u-admin".into(),
            username: "admin".into(),
            password_hash: Some("hash:right password".into()),
            has_local_password: true,
            is_admin: true,
        },
        Account {
            id: "u-alice".into(),
            username: "alice".into(),
            password_hash: Some("hash:alice's".into()),
            has_local_password: true,
            is_admin: false,
        },
    ]);
    Harness { world, store, state }
}

enum Who {
    Nobody,
    /// A browser session, as Framerr's UI sends it (with its header).
    Cookie(&'static str),
    Bearer(&'static str),
}

async fn call(state: &AppState, method: Method, path: &str, who: Who, body: Option<Value>) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(path);
    match who {
        Who::Nobody => request = request.header("X-Framerr-Client", "1"),
        Who::Cookie(session) => {
            request = request.header(header::COOKIE, format!("theme=dark; sessionId={session}"));
            request = request.header("X-Framerr-Client", "1");
        }
        Who::Bearer(token) => {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
            request = request.header("X-Framerr-Client", "1");
        }
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
        .header("X-Framerr-Client", "1")
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

async fn raw(state: &AppState, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn state_changes_need_framerrs_client_header_unless_the_token_is_used() {
    let h = harness();
    let post = |auth: (header::HeaderName, &str)| {
        Request::builder()
            .method(Method::POST)
            .uri("/api/backup/create")
            .header(auth.0, auth.1)
            .body(Body::empty())
            .unwrap()
    };
    let (s, _, body) = raw(&h.state, post((header::COOKIE, "sessionId=admin-live"))).await;
    assert_eq!(
        (s, body),
        (StatusCode::FORBIDDEN, json!({"error": "Invalid request source", "code": "CSRF_PROTECTION"}))
    );
    // The token cannot be sent by another site: no header needed, and the
    // scheme is case-insensitive.
    let (s, _, body) = raw(&h.state, post((header::AUTHORIZATION, &format!("bearer {TOKEN}")))).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    // Setup restore is unauthenticated and needs the header too.
    let request =
        Request::builder().method(Method::POST).uri("/api/auth/setup/restore/decrypt").body(Body::empty()).unwrap();
    let (s, _, body) = raw(&h.state, request).await;
    assert_eq!((s, body["code"].clone()), (StatusCode::FORBIDDEN, json!("CSRF_PROTECTION")));
    // Reads need no header.
    let (s, _) = call(&h.state, Method::GET, "/api/backup/status", Who::Bearer(TOKEN), None).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn a_proxys_basic_auth_beside_a_session_cookie_is_not_ours() {
    let h = harness();
    let request = Request::builder()
        .uri("/api/backup/status")
        .header(header::COOKIE, "sessionId=admin-live")
        .header(header::AUTHORIZATION, "Basic dXNlcjpwYXNz")
        .body(Body::empty())
        .unwrap();
    let (s, _, _) = raw(&h.state, request).await;
    assert_eq!(s, StatusCode::OK);
    // A Bearer token that is not ours is refused even with a good cookie.
    let request = Request::builder()
        .uri("/api/backup/status")
        .header(header::COOKIE, "sessionId=admin-live")
        .header(header::AUTHORIZATION, "BEARER not-ours")
        .body(Body::empty())
        .unwrap();
    assert_eq!(raw(&h.state, request).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_realtime_relay_is_there_only_with_framerrs_address() {
    let mut h = harness();
    let (s, body) = call(&h.state, Method::GET, "/api/realtime/stream", Who::Cookie("admin-live"), None).await;
    assert_eq!((s, body), (StatusCode::NOT_FOUND, json!({"error": "Not found"})));
    // Framerr down: a JSON 502 at once, never a hang.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    h.state.framerr = Some(backup_http::FramerrUrl::parse(&format!("http://{closed}")).unwrap());
    let (s, body) = call(&h.state, Method::GET, "/api/realtime/stream", Who::Cookie("admin-live"), None).await;
    assert_eq!((s, body), (StatusCode::BAD_GATEWAY, json!({"error": "Framerr cannot be reached"})));
    // The rest of Framerr's realtime routes are never ours.
    for (method, path) in [(Method::GET, "/api/realtime/status"), (Method::POST, "/api/realtime/subscribe")] {
        let (s, _) = call(&h.state, method, path, Who::Cookie("admin-live"), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn every_error_is_json_and_every_answer_carries_careful_headers() {
    let h = harness();
    let admin = |request: axum::http::request::Builder| {
        request.header(header::COOKIE, "sessionId=admin-live").header("X-Framerr-Client", "1")
    };
    let cases = [
        // Malformed JSON, the wrong content type, a wrong method, no such route.
        (
            admin(Request::builder().method(Method::PUT).uri("/api/backup/schedule"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{not json"))
                .unwrap(),
            StatusCode::BAD_REQUEST,
        ),
        (
            admin(Request::builder().method(Method::PUT).uri("/api/backup/schedule"))
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from("{}"))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            admin(Request::builder().method(Method::PATCH).uri("/api/backup/list")).body(Body::empty()).unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (Request::builder().uri("/api/nothing/here").body(Body::empty()).unwrap(), StatusCode::NOT_FOUND),
        // A JSON body over 64 KiB.
        (
            admin(Request::builder().method(Method::POST).uri("/api/backup/encryption/enable"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(format!("{{\"password\": \"{}\"}}", "x".repeat(100 * 1024))))
                .unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for (request, want) in cases {
        let what = format!("{} {}", request.method(), request.uri());
        let (s, headers, body) = raw(&h.state, request).await;
        assert_eq!(s, want, "{what}: {body}");
        assert!(body["error"].is_string(), "{what}: not a JSON error: {body}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json; charset=utf-8", "{what}");
    }
    let (_, headers, _) =
        raw(&h.state, admin(Request::builder().uri("/api/backup/status")).body(Body::empty()).unwrap()).await;
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("content-type", "application/json; charset=utf-8"),
    ] {
        assert_eq!(headers[name], value, "{name}");
    }
    assert!(headers["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
}

#[tokio::test]
async fn a_daily_schedule_has_no_day_of_week() {
    let h = harness();
    let admin = || Who::Cookie("admin-live");
    let daily = json!({"enabled": true, "frequency": "daily", "dayOfWeek": 3, "hour": 4, "maxBackups": 5});
    let (s, body) = call(&h.state, Method::PUT, "/api/backup/schedule", admin(), Some(daily)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (_, body) = call(&h.state, Method::GET, "/api/backup/schedule", admin(), None).await;
    assert!(body["schedule"].get("dayOfWeek").is_none(), "{body}");
    let weekly = json!({"enabled": true, "frequency": "weekly", "dayOfWeek": 3, "hour": 4, "maxBackups": 5});
    call(&h.state, Method::PUT, "/api/backup/schedule", admin(), Some(weekly)).await;
    let (_, body) = call(&h.state, Method::GET, "/api/backup/schedule", admin(), None).await;
    assert_eq!(body["schedule"]["dayOfWeek"], 3);
}

#[tokio::test]
async fn closed_setup_refuses_before_reading_and_no_address_can_keep_others_from_uploading() {
    let h = harness();
    *h.world.users.lock().unwrap() = vec![true];
    // Refused before the (large, unread) body matters.
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/auth/setup/restore/decrypt")
        .header("X-Framerr-Client", "1")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(vec![b' '; 2 << 20]))
        .unwrap();
    let (s, _, body) = raw(&h.state, request).await;
    assert_eq!((s, body), (StatusCode::FORBIDDEN, json!({"error": "Restore is only available during initial setup"})));
    // Open setup: four encrypted uploads wait for their password.
    *h.world.users.lock().unwrap() = vec![];
    let upload = |from: &str| {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/api/auth/setup/restore")
            .header("X-Framerr-Client", "1")
            .header(header::CONTENT_TYPE, "multipart/form-data; boundary=X")
            .body(Body::from(
                "--X\r\nContent-Disposition: form-data; name=\"backup\"; filename=\"b\"\r\n\r\nFRMRBKUP\r\n--X--\r\n",
            ))
            .unwrap();
        let peer: std::net::SocketAddr = format!("{from}:40000").parse().unwrap();
        request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        request
    };
    let mut ids = Vec::new();
    for from in ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"] {
        let (s, _, body) = raw(&h.state, upload(from)).await;
        assert_eq!((s, body["encrypted"].clone()), (StatusCode::OK, json!(true)), "{body}");
        ids.push(body["restoreId"].as_str().unwrap().to_owned());
    }
    assert_eq!(h.state.setup.pending(), 4);
    // One address holds one: uploading again replaces its own.
    let (s, _, _) = raw(&h.state, upload("10.0.0.4")).await;
    assert_eq!((s, h.state.setup.pending()), (StatusCode::OK, 4));
    // Whoever holds the others, a newcomer gets in: the oldest makes room.
    let (s, _, body) = raw(&h.state, upload("192.168.1.20")).await;
    assert_eq!((s, h.state.setup.pending()), (StatusCode::OK, 4), "{body}");
    let decrypt = |id: &str| {
        Request::builder()
            .method(Method::POST)
            .uri("/api/auth/setup/restore/decrypt")
            .header("X-Framerr-Client", "1")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({"restoreId": id, "password": "whatever it is"}).to_string()))
            .unwrap()
    };
    for gone in [&ids[0], &ids[3]] {
        let (s, _, body) = raw(&h.state, decrypt(gone)).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_event_stream_ends_when_its_session_does() {
    use http_body_util::BodyExt;
    let h = harness();
    let request = Request::builder()
        .uri("/api/backup/events")
        .header(header::COOKIE, "sessionId=admin-live")
        .body(Body::empty())
        .unwrap();
    let response = router(h.state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    // Signed out (the session row is gone).
    h.world.sessions.lock().unwrap().retain(|(t, _)| t != "admin-live");
    let ended = tokio::time::timeout(std::time::Duration::from_secs(31), async {
        loop {
            match body.frame().await {
                None => return true,
                Some(Ok(_)) => continue,
                Some(Err(_)) => return true,
            }
        }
    })
    .await;
    assert_eq!(ended, Ok(true), "the stream outlived its session");
}

#[tokio::test]
async fn sign_in_creates_a_session_cookie_and_sign_out_ends_it() {
    let h = harness();
    let login = |body: Value| {
        Request::builder()
            .method(Method::POST)
            .uri("/api/auth/login")
            .header("X-Framerr-Client", "1")
            .header("X-Forwarded-Proto", "https")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let (s, _, body) = raw(&h.state, login(json!({"username": "admin", "password": "wrong"}))).await;
    assert_eq!((s, body), (StatusCode::UNAUTHORIZED, json!({"error": "Invalid username or password"})));
    let (s, _, body) = raw(&h.state, login(json!({"username": "alice", "password": "alice's"}))).await;
    assert_eq!((s, body), (StatusCode::FORBIDDEN, json!({"error": "Admin access required"})));
    let response = router(h.state.clone())
        .oneshot(login(json!({"username": "Admin", "password": "right password", "rememberMe": true})))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("sessionId=token-") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    assert!(cookie.contains("Secure") && cookie.contains(&format!("Max-Age={}", 30 * 86_400)), "{cookie}");
    let token = cookie.trim_start_matches("sessionId=").split(';').next().unwrap().to_owned();
    let with_cookie = |method: Method, uri: &str| {
        Request::builder()
            .method(method)
            .uri(uri)
            .header(header::COOKIE, format!("sessionId={token}"))
            .header("X-Framerr-Client", "1")
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(raw(&h.state, with_cookie(Method::GET, "/api/backup/status")).await.0, StatusCode::OK);
    let (s, headers, _) = raw(&h.state, with_cookie(Method::POST, "/api/auth/logout")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(headers[header::SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(raw(&h.state, with_cookie(Method::GET, "/api/backup/status")).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn inspect_history_and_setup_status() {
    let h = harness();
    let admin = || Who::Cookie("admin-live");
    let name = "framerr-manual-2026-01-01T00-00-00.framerr-backup";
    seed(&h.store, name).await;
    let (s, body) = call(&h.state, Method::GET, &format!("/api/backup/inspect/{name}"), admin(), None).await;
    assert_eq!((s, body["passwordRequired"].clone()), (StatusCode::BAD_REQUEST, json!(true)), "{body}");
    let (s, body) = call(
        &h.state,
        Method::POST,
        &format!("/api/backup/inspect/{name}"),
        admin(),
        Some(json!({"password": "right password"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["counts"], json!({"users": 2, "dashboards": 2, "integrations": 2, "icons": 2}));
    assert_eq!((body["encrypted"].clone(), body["userVersion"].clone()), (json!(true), json!(48)));
    // Nothing was restored by looking.
    assert!(!h.world.log.all().iter().any(|l| l.starts_with("commit")));
    call(&h.state, Method::POST, "/api/backup/create", admin(), None).await;
    let (s, body) = call(&h.state, Method::GET, "/api/backup/history", admin(), None).await;
    assert_eq!((s, body.as_array().map(Vec::len)), (StatusCode::OK, Some(1)), "{body}");
    assert_eq!(body[0]["type"], "manual");
    // Setup status: paths only while setup is open.
    let (s, body) = call(&h.state, Method::GET, "/api/auth/setup/status", Who::Nobody, None).await;
    assert_eq!(
        (s, body["setupOpen"].clone(), body["databaseFound"].clone()),
        (StatusCode::OK, json!(true), json!(true))
    );
    assert_eq!(body["databasePath"], "/data/framerr.db");
    *h.world.users.lock().unwrap() = vec![true];
    let (_, body) = call(&h.state, Method::GET, "/api/auth/setup/status", Who::Nobody, None).await;
    assert_eq!(body, json!({"setupOpen": false, "databaseFound": true}));
}
