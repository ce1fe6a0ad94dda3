//! Framerr's realtime stream relayed with our backup events, over real
//! HTTP on 127.0.0.1: a stand-in for Framerr writes its stream (a
//! heartbeat, events with several `data:` lines, CRLF lines, an event in
//! two TCP writes) while a backup runs; every byte of Framerr's arrives in
//! order, ours only between its events, and Framerr's refusals come back
//! as they were.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backup_e2e::{Instance, Received, Server, python_ok};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;

const TOKEN: &str = "relay-token-for-tests";
const COOKIE: &str = "theme=dark; sessionId=admin-live";

/// A live admin session, and the fixture's schedule off (no catch-up
/// backup at start to collide with ours).
fn prepare(inst: &Instance) {
    python_ok(
        "import sqlite3,sys,time\nc=sqlite3.connect(sys.argv[1])\nc.execute('INSERT INTO sessions(token,user_id,expires_at) VALUES(?,?,?)',('admin-live','u-admin',int(time.time())+3600))\nc.execute(\"UPDATE system_config SET value='{\\\"enabled\\\":false,\\\"frequency\\\":\\\"daily\\\",\\\"hour\\\":3,\\\"maxBackups\\\":5}' WHERE key='backupSchedule'\")\nc.commit()",
        &[&inst.db()],
    );
}

fn serve(inst: &Instance, framerr: Option<&str>) -> Server {
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    if let Some(url) = framerr {
        args.extend(["--framerr-url", url]);
    }
    let mut command = inst.command(&args);
    command.env("FRAMERR_BACKUP_TOKEN", TOKEN).env_remove("FRAMERR_URL");
    Server::spawn(command)
}

/// A stand-in for Framerr: each connection's request head is recorded,
/// then `answer` writes the response on the connection and closes it.
struct Framerr {
    base: String,
    seen: Arc<Mutex<Vec<Received>>>,
}

impl Framerr {
    fn start(answer: impl Fn(&Received, &mut TcpStream) + Send + Sync + 'static) -> Framerr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (log, answer) = (seen.clone(), Arc::new(answer));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (log, answer) = (log.clone(), answer.clone());
                std::thread::spawn(move || {
                    // Each write its own TCP segment: the chunks the relay sees.
                    stream.set_nodelay(true).unwrap();
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    let mut parts = line.split_whitespace();
                    let (method, path) = (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
                    let mut headers = Vec::new();
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        let Some((name, value)) = h.trim_end().split_once(':') else { break };
                        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
                    }
                    let request = Received { method, path, headers, body: Vec::new() };
                    log.lock().unwrap().push(request.clone());
                    answer(&request, &mut stream);
                });
            }
        });
        Framerr { base, seen }
    }

    fn seen(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }
}

const SSE_HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nX-Accel-Buffering: no\r\nConnection: close\r\n\r\n";

/// Framerr's stream, in the writes it makes. The event of `HALVES` is
/// written in two, with our backup running in between.
const BEFORE: [&str; 4] = [
    ": heartbeat\n\n",
    "event: settings:theme\ndata: {\"mode\":\"dark\"}\n\n",
    "event: notification:new\ndata: {\"title\":\"Disk\",\ndata: \"body\":\"almost full\"}\n\n",
    "event: service:status\r\ndata: {\"id\":\"plex\",\"up\":true}\r\n\r\n",
];
const HALVES: [&str; 2] = ["event: widget:update\ndata: {\"id\":\"w1\",", "\"value\":42}\n\n"];
const AFTER: &str = ": heartbeat\n\nevent: sync:done\ndata: {}\n\n";

/// Splits what we relayed into Framerr's bytes and ours. Framerr's must
/// all be there, in order; each of ours must be a whole `event: NAME\ndata:
/// JSON\n\n` where Framerr's stream is between events. Returns ours with
/// how far into Framerr's stream each came.
fn separate(relayed: &[u8], framerr: &[u8]) -> Vec<(usize, String, Value)> {
    let mut ours = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < relayed.len() {
        let sent = &framerr[..j];
        let between = j == 0 || sent.ends_with(b"\n\n") || sent.ends_with(b"\r\n\r\n");
        if between && relayed[i..].starts_with(b"event: backup:") {
            let len = relayed[i..].windows(2).position(|w| w == b"\n\n").expect("an event of ours is cut") + 2;
            let block = std::str::from_utf8(&relayed[i..i + len]).unwrap();
            let (name, data) = block.trim_end_matches('\n').split_once('\n').unwrap();
            let name = name.strip_prefix("event: ").unwrap().to_owned();
            let data = serde_json::from_str(data.strip_prefix("data: ").expect("one data line")).unwrap();
            ours.push((j, name, data));
            i += len;
            continue;
        }
        assert!(
            j < framerr.len() && relayed[i] == framerr[j],
            "byte {i} of the relay is not Framerr's next ({j}): {:?}",
            String::from_utf8_lossy(&relayed[i.saturating_sub(40)..(i + 40).min(relayed.len())])
        );
        i += 1;
        j += 1;
    }
    assert_eq!(j, framerr.len(), "Framerr's stream was cut short");
    ours
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framerrs_stream_is_relayed_with_our_backup_events_between_its_own() {
    let inst = Instance::from_fixture();
    prepare(&inst);
    let (mid_tx, mid_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (mid_tx, go_rx) = (Mutex::new(mid_tx), Mutex::new(go_rx));
    let framerr = Framerr::start(move |request, stream| {
        assert_eq!(request.path, "/api/realtime/stream");
        let pause = || std::thread::sleep(Duration::from_millis(50));
        stream.write_all(SSE_HEAD.as_bytes()).unwrap();
        for part in BEFORE {
            stream.write_all(part.as_bytes()).unwrap();
            pause();
        }
        stream.write_all(HALVES[0].as_bytes()).unwrap();
        mid_tx.lock().unwrap().send(()).unwrap();
        go_rx.lock().unwrap().recv_timeout(Duration::from_secs(60)).unwrap();
        stream.write_all(HALVES[1].as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        stream.write_all(AFTER.as_bytes()).unwrap();
        pause();
    });
    let server = serve(&inst, Some(&framerr.base));
    let client = reqwest::Client::new();

    let answer = client
        .get(format!("{}/api/realtime/stream", server.base))
        .header("Cookie", COOKIE)
        .header("User-Agent", "Framerr-UI-test")
        .header("Accept", "text/event-stream")
        .header("Last-Event-ID", "7")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let headers = answer.headers().clone();
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");
    let reader = tokio::spawn(async move {
        let mut body = Vec::new();
        let mut stream = answer.bytes_stream();
        while let Some(chunk) = stream.next().await {
            body.extend_from_slice(&chunk.unwrap());
        }
        body
    });

    // Framerr is in the middle of an event: the backup runs now.
    tokio::task::spawn_blocking(move || mid_rx.recv_timeout(Duration::from_secs(30)).unwrap()).await.unwrap();
    let created = client.post(format!("{}/api/backup/create", server.base)).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(created.status(), StatusCode::OK);
    let created: Value = created.json().await.unwrap();
    go_tx.send(()).unwrap();

    let relayed = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("the relay did not end when Framerr's stream did")
        .unwrap();
    let sent = [BEFORE.concat(), HALVES.concat(), AFTER.to_owned()].concat();
    let ours = separate(&relayed, sent.as_bytes());
    let names: Vec<&str> = ours.iter().map(|(_, name, _)| name.as_str()).collect();
    assert_eq!(names.first(), Some(&"backup:started"), "{names:?}");
    assert_eq!(names.last(), Some(&"backup:complete"), "{names:?}");
    assert!(names.len() > 2 && names[1..names.len() - 1].iter().all(|n| *n == "backup:progress"), "{names:?}");
    let (_, _, complete) = ours.last().unwrap();
    assert_eq!((&complete["filename"], &complete["size"]), (&created["filename"], &created["size"]));
    assert_eq!(ours[0].2["type"], "manual");
    // Made while Framerr's event was unfinished: none before its end.
    let split_end = [BEFORE.concat(), HALVES.concat()].concat().len();
    assert!(ours.iter().all(|(at, _, _)| *at >= split_end), "{:?}", ours.iter().map(|o| o.0).collect::<Vec<_>>());

    let seen = framerr.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].header("cookie"), Some(COOKIE));
    assert_eq!(seen[0].header("user-agent"), Some("Framerr-UI-test"));
    assert_eq!(seen[0].header("accept"), Some("text/event-stream"));
    assert_eq!(seen[0].header("last-event-id"), Some("7"));
    assert_eq!(seen[0].header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen[0].header("authorization"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framerrs_refusals_pass_through_and_unset_or_unreachable_framerr_is_no_stream() {
    let inst = Instance::from_fixture();
    prepare(&inst);
    let framerr = Framerr::start(|request, stream| {
        let cookie = request.header("cookie").unwrap_or("");
        let (status, kind, extra, body) = if cookie.contains("sessionId=busy") {
            (
                "429 Too Many Requests",
                "application/json; charset=utf-8",
                "Retry-After: 5\r\n",
                r#"{"error":"Too many connection attempts. Please wait before reconnecting."}"#,
            )
        } else if cookie.contains("sessionId=") {
            ("503 Service Unavailable", "text/plain", "", "Framerr is starting")
        } else {
            ("401 Unauthorized", "application/json; charset=utf-8", "", r#"{"error":"Not authenticated"}"#)
        };
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    });
    let server = serve(&inst, Some(&framerr.base));
    let client = reqwest::Client::new();
    let url = format!("{}/api/realtime/stream", server.base);
    let refusals = [
        (None, 401, "application/json; charset=utf-8", r#"{"error":"Not authenticated"}"#),
        (
            Some("sessionId=busy"),
            429,
            "application/json; charset=utf-8",
            r#"{"error":"Too many connection attempts. Please wait before reconnecting."}"#,
        ),
        (Some("sessionId=admin-live"), 503, "text/plain", "Framerr is starting"),
    ];
    for (cookie, status, kind, body) in refusals {
        let mut request = client.get(&url);
        if let Some(cookie) = cookie {
            request = request.header("Cookie", cookie);
        }
        let answer = request.send().await.unwrap();
        assert_eq!(answer.status().as_u16(), status, "{cookie:?}");
        assert_eq!(answer.headers()["content-type"], kind, "{cookie:?}");
        if status == 429 {
            assert_eq!(answer.headers()["retry-after"], "5");
        }
        assert_eq!(answer.text().await.unwrap(), body, "{cookie:?}");
    }
    assert_eq!(framerr.seen().len(), 3);
    // Framerr's other realtime routes are not ours.
    let answer = client.get(format!("{}/api/realtime/status", server.base)).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    assert_eq!(framerr.seen().len(), 3);
    drop(server);

    // No Framerr address: no such route, in our JSON.
    let server = serve(&inst, None);
    let answer =
        client.get(format!("{}/api/realtime/stream", server.base)).header("Cookie", COOKIE).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    assert_eq!(answer.json::<Value>().await.unwrap(), serde_json::json!({"error": "Not found"}));
    drop(server);

    // Framerr down: 502 at once, in our JSON.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let server = serve(&inst, Some(&format!("http://{closed}")));
    let answer =
        client.get(format!("{}/api/realtime/stream", server.base)).header("Cookie", COOKIE).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(answer.json::<Value>().await.unwrap()["error"], "Framerr cannot be reached");
    drop(server);

    // A wrong address stops the server at start, saying why.
    for bad in ["framerr:3000", "http://admin:hunter2@framerr:3000"] {
        let err = inst.fails(&["serve", "--listen", "127.0.0.1:0", "--framerr-url", bad]);
        assert!(err.contains("FRAMERR_URL") && !err.contains("hunter2"), "{err}");
    }
}
