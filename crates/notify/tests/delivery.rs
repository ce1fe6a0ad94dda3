//! What each kind of target receives, over real HTTP on 127.0.0.1, and
//! what happens when a target fails: retries for what may get better, none
//! for what will not, never a secret in what is reported.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use backup_domain::notify::{Event, Notice, Notifier};
use backup_e2e::Stub;
use backup_notify::{HttpNotifier, Tuning};
use time::macros::datetime;

fn quick() -> Tuning {
    Tuning { timeout: Duration::from_secs(2), backoff: vec![Duration::from_millis(50), Duration::from_millis(50)] }
}

fn failed() -> Notice {
    Notice::new(Event::BackupFailed, datetime!(2026-11-27 03:00:00.5 UTC))
        .backup("framerr-scheduled-2026-11-27T03-00-00.zip")
        .destination("s3://bucket/prefix")
        .error("no space left on device")
}

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn ntfy_webhook_and_healthchecks_each_get_their_shape() {
    let (ntfy, hook, hc) = (Stub::start(&[]), Stub::start(&[]), Stub::start(&[]));
    let ntfy_url = format!("{}/framerr-topic", ntfy.base.replace("http://", "ntfy+http://alice:s3cret@"));
    let hook_url = format!("{}/hook?token=abc&on=success,failure", hook.base);
    let hc_url = format!("{}/ping/0b1c-uuid", hc.base.replace("http://", "healthchecks+http://"));
    let n = HttpNotifier::start(&[ntfy_url, hook_url, hc_url], quick()).unwrap();
    n.notify(Notice::new(Event::BackupStarted, datetime!(2026-11-27 03:00 UTC)));
    n.notify(Notice::new(Event::BackupSucceeded, datetime!(2026-11-27 03:00:05 UTC)).backup("b.zip"));
    n.notify(failed());
    n.drain(WAIT).await;

    // ntfy: failures only by default; title, priority, basic auth.
    let got = ntfy.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].method.as_str(), got[0].path.as_str()), ("POST", "/framerr-topic"));
    assert_eq!(got[0].header("title"), Some("Framerr backup FAILED"));
    assert_eq!(got[0].header("priority"), Some("high"));
    assert_eq!(got[0].header("authorization"), Some("Basic YWxpY2U6czNjcmV0"));
    assert!(got[0].text().contains("Error: no space left on device"), "{}", got[0].text());

    // Webhook: success and failure, as JSON, our parameter removed.
    let got = hook.received();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1].path, "/hook?token=abc");
    assert_eq!(got[1].header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_slice(&got[1].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"event": "backup-failed", "backup": "framerr-scheduled-2026-11-27T03-00-00.zip",
            "destination": "s3://bucket/prefix", "error": "no space left on device",
            "timestamp": "2026-11-27T03:00:00.500Z"})
    );

    // Healthchecks: /start, the bare URL, /fail.
    let paths: Vec<String> = hc.received().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/ping/0b1c-uuid/start", "/ping/0b1c-uuid", "/ping/0b1c-uuid/fail"]);
    assert!(n.undelivered().is_empty());
    assert_eq!(n.targets()[2], format!("healthchecks+http://{}/…", hc.base.trim_start_matches("http://")));
}

#[tokio::test]
async fn server_errors_are_retried_client_errors_are_not_and_secrets_stay_out() {
    let flaky = Stub::start(&[503, 500]);
    let wrong = Stub::start(&[404, 404, 404]);
    let flaky_url = format!("{}/secret-topic-1", flaky.base.replace("http://", "ntfy+http://"));
    let wrong_url = format!("{}/secret-topic-2", wrong.base.replace("http://", "ntfy+http://"));
    // Nothing listens on port 9 of 127.0.0.1.
    let dead_url = "ntfy+http://127.0.0.1:9/secret-topic-3".to_owned();
    let n = HttpNotifier::start(&[flaky_url, wrong_url, dead_url], quick()).unwrap();
    n.notify(failed());
    n.drain(WAIT).await;
    assert_eq!(flaky.received().len(), 3, "two failures, then delivered");
    assert_eq!(wrong.received().len(), 1, "a 404 is not retried");
    let undelivered = n.undelivered();
    assert_eq!(undelivered.len(), 2, "{undelivered:?}");
    let text = format!("{undelivered:?}");
    assert!(!text.contains("secret-topic"), "{text}");
    assert!(undelivered[0].error.contains("404"), "{text}");
    assert!(undelivered[1].error.contains("could not connect"), "{text}");
}

#[tokio::test]
async fn a_full_queue_drops_and_says_so_without_blocking() {
    // A target that never answers in time: every attempt waits the timeout.
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ntfy+http://{}/topic", hole.local_addr().unwrap());
    let slow = Tuning { timeout: Duration::from_secs(30), backoff: vec![] };
    let n = HttpNotifier::start(&[url], slow).unwrap();
    for _ in 0..(backup_notify::QUEUE + 10) {
        n.notify(failed());
    }
    let undelivered = n.undelivered();
    assert!(undelivered.len() >= 9, "{}", undelivered.len());
    assert!(undelivered.iter().all(|u| u.error == "the notification queue is full"));
    drop(hole);
}

#[test]
fn bad_urls_are_refused_at_start() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let err = rt.block_on(async { HttpNotifier::start(&["gopher://x/secret".into()], Tuning::default()) }).unwrap_err();
    assert!(!err.to_string().contains("secret"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_target_delays_no_other_and_redirects_are_not_followed() {
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hanging = format!("ntfy+http://{}/topic", hole.local_addr().unwrap());
    let good = Stub::start(&[]);
    let moved = Stub::start(&[302]);
    let slow = Tuning { timeout: Duration::from_secs(30), backoff: vec![] };
    let n = HttpNotifier::start(
        &[hanging, format!("{}/ok", good.base), format!("{}/moved?token=secret-in-query", moved.base)],
        slow,
    )
    .unwrap();
    n.notify(failed());
    n.notify(failed());
    // The good target gets both while the first still waits on its first.
    let got = tokio::task::spawn_blocking(move || good.wait_for(2, Duration::from_secs(5))).await.unwrap();
    assert_eq!(got.len(), 2);
    let moved_got = tokio::task::spawn_blocking(move || moved.wait_for(2, Duration::from_secs(2))).await.unwrap();
    assert_eq!(moved_got.len(), 2, "one request per notice: a 302 is neither followed nor retried");
    assert!(moved_got.iter().all(|r| r.header("referer").is_none()));
    let undelivered = n.undelivered();
    assert!(undelivered.iter().any(|u| u.error.contains("302")), "{undelivered:?}");
    assert!(!format!("{undelivered:?}").contains("secret-in-query"));
    drop(hole);
}
