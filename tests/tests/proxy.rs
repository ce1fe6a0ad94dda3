//! docs/deploy/nginx.conf, run by Debian's nginx in front of the real
//! server and a stand-in for Framerr: each route reaches the right side,
//! and Framerr's realtime stream is relayed, unbuffered, with our backup
//! events in it (or comes from Framerr when the relay is not configured).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use backup_e2e::{Instance, Server, python_ok, repo_root};

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for_port(port: u16) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Answers every request with where it landed; its realtime stream is
/// one event saying so (with the cookie and client it was given), then a
/// heartbeat every 0.2 s for 20 s.
const STAND_IN: &str = r#"
import json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def answer(self):
        n = int(self.headers.get("content-length") or 0)
        if n: self.rfile.read(n)
        body = json.dumps({"upstream": "framerr", "path": self.path}).encode()
        self.send_response(200); self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def do_GET(self):
        if self.path != "/api/realtime/stream": return self.answer()
        self.send_response(200); self.send_header("content-type", "text/event-stream"); self.end_headers()
        seen = {"upstream": "framerr", "cookie": self.headers.get("cookie"), "for": self.headers.get("x-forwarded-for")}
        self.wfile.write(("event: probe\ndata: " + json.dumps(seen) + "\n\n").encode())
        for _ in range(100):
            time.sleep(0.2)
            try: self.wfile.write(b": heartbeat\n\n")
            except OSError: return
    do_POST = do_PUT = do_DELETE = do_PATCH = answer
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"#;

/// nginx with the documented configuration in front of `ours` and the
/// stand-in; its port, and what to keep until the end.
fn nginx(ours: &str, framerr_port: u16) -> (u16, Kill, tempfile::TempDir) {
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().find(|p| std::path::Path::new(p).exists());
    let nginx = nginx.expect("nginx is not installed: run `cargo xtask tools` (it installs Debian's nginx)");
    let dir = tempfile::tempdir().unwrap();
    let proxy_port = free_port();
    let site = std::fs::read_to_string(repo_root().join("docs/deploy/nginx.conf"))
        .unwrap()
        .replace("server 127.0.0.1:3001;", &format!("server 127.0.0.1:{framerr_port};"))
        .replace("server 127.0.0.1:3002;", &format!("server {ours};"))
        .replace("listen 8080;", &format!("listen 127.0.0.1:{proxy_port};"));
    std::fs::write(dir.path().join("site.conf"), site).unwrap();
    let d = dir.path().display();
    std::fs::write(
        dir.path().join("nginx.conf"),
        format!(
            "pid {d}/nginx.pid;\nmaster_process off;\nerror_log stderr warn;\nevents {{}}\nhttp {{\n access_log off;\n client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n include {d}/site.conf;\n}}\n"
        ),
    )
    .unwrap();
    let process = Kill(
        Command::new(nginx)
            .args(["-p"])
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .spawn()
            .unwrap(),
    );
    wait_for_port(proxy_port);
    (proxy_port, process, dir)
}

/// Reads `stream` until `text` has come (`None` if it does not within
/// `max`); what came so far.
fn read_until(stream: &mut impl Read, text: &str, max: Duration) -> Option<String> {
    let end = Instant::now() + max;
    let mut seen = Vec::new();
    let mut buf = [0; 4096];
    while !String::from_utf8_lossy(&seen).contains(text) {
        if Instant::now() > end {
            return None;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    Some(String::from_utf8_lossy(&seen).into_owned())
}

#[test]
fn the_nginx_configuration_sends_each_route_to_the_right_side() {
    let inst = Instance::from_fixture();
    // A live admin session; no catch-up backup at start.
    python_ok(
        "import sqlite3,sys,time\nc=sqlite3.connect(sys.argv[1])\nc.execute('INSERT INTO sessions(token,user_id,expires_at) VALUES(?,?,?)',('admin-live','u-admin',int(time.time())+3600))\nc.execute(\"UPDATE system_config SET value='{\\\"enabled\\\":false,\\\"frequency\\\":\\\"daily\\\",\\\"hour\\\":3,\\\"maxBackups\\\":5}' WHERE key='backupSchedule'\")\nc.commit()",
        &[&inst.db()],
    );
    // The stand-in for Framerr.
    let framerr_port = free_port();
    let _framerr = Kill(Command::new("python3").args(["-c", STAND_IN, &framerr_port.to_string()]).spawn().unwrap());
    wait_for_port(framerr_port);
    // Ours, relaying Framerr's realtime stream.
    let framerr_url = format!("http://127.0.0.1:{framerr_port}");
    let mut command = inst.command(&["serve", "--listen", "127.0.0.1:0", "--framerr-url", &framerr_url]);
    command.env_remove("FRAMERR_URL");
    let ours = Server::spawn(command);
    let (proxy_port, _nginx, _dir) = nginx(ours.addr(), framerr_port);

    let name = "framerr-manual-2026-11-26T22-17-29.zip";
    let ours_routes = [
        ("GET", "/api/backup/list".to_owned()),
        ("POST", "/api/backup/create".to_owned()),
        ("GET", "/api/backup/status".to_owned()),
        ("GET", "/api/backup/schedule".to_owned()),
        ("PUT", "/api/backup/schedule".to_owned()),
        ("POST", "/api/backup/schedule/framerr/disable".to_owned()),
        ("GET", "/api/backup/health".to_owned()),
        ("GET", "/api/backup/events".to_owned()),
        ("POST", "/api/backup/restore".to_owned()),
        ("POST", "/api/backup/restore/upload".to_owned()),
        ("GET", "/api/backup/encryption/status".to_owned()),
        ("POST", "/api/backup/encryption/enable".to_owned()),
        ("POST", "/api/backup/encryption/reset-password".to_owned()),
        ("GET", format!("/api/backup/download/{name}")),
        ("GET", format!("/api/backup/inspect/{name}")),
        ("DELETE", format!("/api/backup/{name}")),
        ("POST", "/api/auth/setup/restore".to_owned()),
        ("POST", "/api/auth/setup/restore/decrypt".to_owned()),
    ];
    let framerr_routes = [
        ("GET", "/"),
        ("GET", "/api/config/system"),
        ("POST", "/api/auth/login"),
        ("GET", "/api/realtime/status"),
        ("POST", "/api/realtime/subscribe"),
        ("GET", "/api/backup/export"),
        ("POST", "/api/backup/import"),
        ("GET", "/api/backup/download/../../etc/passwd"),
        ("DELETE", "/api/backup/not-a-backup-name"),
    ];
    let landed = |method: &str, path: &str| -> String {
        use std::io::{Read, Write};
        // A raw request: the path goes exactly as written.
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", proxy_port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nX-Framerr-Client: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let body = String::from_utf8_lossy(&response).into_owned();
        if body.contains("\"upstream\":\"framerr\"") || body.contains("\"upstream\": \"framerr\"") {
            "framerr".into()
        } else if body.contains("\"error\"") {
            // Ours answers an unauthenticated request with a JSON error.
            "framerr-backup".into()
        } else {
            format!("neither: {body:?}")
        }
    };
    for (method, path) in &ours_routes {
        assert_eq!(landed(method, path), "framerr-backup", "{method} {path}");
    }
    for (method, path) in framerr_routes {
        assert_eq!(landed(method, path), "framerr", "{method} {path}");
    }
    // The realtime stream: through ours (its headers), Framerr's own event
    // first, with the cookie and the client's address; then a backup's
    // events while Framerr's stream is still open (nothing buffered).
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let cookie = "theme=dark; sessionId=admin-live";
    let mut stream = client.get(format!("{proxy}/api/realtime/stream")).header("Cookie", cookie).send().unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    assert_eq!(stream.headers()["x-frame-options"], "DENY", "not through framerr-backup");
    let probe = read_until(&mut stream, "\n\n", Duration::from_secs(10)).expect("Framerr's first event");
    let data = probe.strip_prefix("event: probe\ndata: ").and_then(|p| p.split_once('\n')).expect(&probe).0;
    let seen: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(seen, serde_json::json!({"upstream": "framerr", "cookie": cookie, "for": "127.0.0.1"}));
    let created = client
        .post(format!("{proxy}/api/backup/create"))
        .header("Cookie", cookie)
        .header("X-Framerr-Client", "1")
        .send()
        .unwrap();
    assert_eq!(created.status(), 200);
    let text = read_until(&mut stream, "event: backup:complete\ndata: ", Duration::from_secs(15))
        .expect("our events did not come through nginx while the stream was open");
    assert!(text.contains("event: backup:started\ndata: {"), "{text}");
    drop(stream);
    drop(ours);

    // Without FRAMERR_URL ours answers 404 and nginx asks Framerr instead.
    let mut command = inst.command(&["serve", "--listen", "127.0.0.1:0"]);
    command.env_remove("FRAMERR_URL");
    let plain = Server::spawn(command);
    let (proxy_port, _nginx, _dir) = nginx(plain.addr(), framerr_port);
    let mut stream = client
        .get(format!("http://127.0.0.1:{proxy_port}/api/realtime/stream"))
        .header("Cookie", cookie)
        .send()
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(stream.headers().get("x-frame-options").is_none(), "not straight from Framerr");
    let probe = read_until(&mut stream, "\n\n", Duration::from_secs(10)).expect("Framerr's first event");
    assert!(probe.starts_with("event: probe\ndata: {\"upstream\": \"framerr\""), "{probe}");
}
