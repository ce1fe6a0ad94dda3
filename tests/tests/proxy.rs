//! docs/deploy/nginx.conf, run by Debian's nginx in front of the real
//! server and a stand-in for Framerr: each route reaches the right side.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use backup_e2e::{Instance, Server, repo_root};

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

/// Answers every request with where it landed.
const STAND_IN: &str = r#"
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def answer(self):
        n = int(self.headers.get("content-length") or 0)
        if n: self.rfile.read(n)
        body = json.dumps({"upstream": "framerr", "path": self.path}).encode()
        self.send_response(200); self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body))); self.end_headers(); self.wfile.write(body)
    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = answer
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"#;

#[test]
fn the_nginx_configuration_sends_each_route_to_the_right_side() {
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().find(|p| std::path::Path::new(p).exists());
    let nginx = nginx.expect("nginx is not installed: run `cargo xtask tools` (it installs Debian's nginx)");
    let inst = Instance::from_fixture();
    // Ours.
    let ours = Server::spawn(inst.command(&["serve", "--listen", "127.0.0.1:0"]));
    let ours_addr = ours.addr();
    // The stand-in for Framerr.
    let framerr_port = free_port();
    let _framerr = Kill(Command::new("python3").args(["-c", STAND_IN, &framerr_port.to_string()]).spawn().unwrap());
    wait_for_port(framerr_port);
    // nginx, with the documented configuration.
    let dir = tempfile::tempdir().unwrap();
    let proxy_port = free_port();
    let site = std::fs::read_to_string(repo_root().join("docs/deploy/nginx.conf"))
        .unwrap()
        .replace("server 127.0.0.1:3000;", &format!("server 127.0.0.1:{framerr_port};"))
        .replace("server 127.0.0.1:3001;", &format!("server {ours_addr};"))
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
    let _nginx = Kill(
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
        ("GET", "/api/realtime/stream"),
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
}
