//! `cargo xtask bench --load`: 50 concurrent clients list and download
//! while a scheduled backup of the bench instance runs, against the real
//! server on 127.0.0.1. Reports errors, the slowest request per route, and
//! the server's peak RSS (VmHWM).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::Result;

const CLIENTS: usize = 50;
/// The bound no request may exceed.
const MAX_LATENCY_S: f64 = 2.0;

const LOAD: &str = r#"
import sys, json, time, threading, urllib.request
base, token, clients, name = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
hdr = {"Authorization": "Bearer " + token}
def get(path):
    t = time.monotonic()
    with urllib.request.urlopen(urllib.request.Request(base + path, headers=hdr), timeout=30) as r:
        body = r.read()
    return time.monotonic() - t, body
def status():
    return json.loads(get("/api/backup/status")[1])["inProgress"]
deadline = time.monotonic() + 20
while not status():
    if time.monotonic() > deadline: sys.exit("the scheduled backup did not start")
    time.sleep(0.05)
results, errors, lock = {"list": [], "download": []}, [], threading.Lock()
running = [True]
def client():
    while running[0]:
        for route, path in (("list", "/api/backup/list"), ("download", "/api/backup/download/" + name)):
            try:
                dt, body = get(path)
                with lock: results[route].append(dt)
            except Exception as e:
                with lock: errors.append(repr(e))
threads = [threading.Thread(target=client) for _ in range(clients)]
start = time.monotonic()
for t in threads: t.start()
while status() and time.monotonic() - start < 300: time.sleep(0.2)
running[0] = False
for t in threads: t.join()
print(json.dumps({"seconds": time.monotonic() - start, "errors": errors[:5], "error_count": len(errors),
    "requests": {k: len(v) for k, v in results.items()}, "max": {k: max(v) if v else None for k, v in results.items()},
    "p50": {k: sorted(v)[len(v)//2] if v else None for k, v in results.items()}}))
"#;

pub(crate) fn run(bin: &Path, data: &Path) -> Result {
    let backups = data.join("backups");
    let _ = std::fs::remove_dir_all(&backups);
    std::fs::create_dir_all(&backups).map_err(|e| e.to_string())?;
    // Something to download: a real backup of Framerr's size.
    let fixture =
        crate::tools::root().join("../shared/fixtures/framerr-0.4.1/backups/framerr-manual-2026-11-26T22-17-29.zip");
    let name = "framerr-manual-2026-11-26T22-17-29.zip";
    std::fs::copy(&fixture, backups.join(name)).map_err(|e| format!("{}: {e}", fixture.display()))?;
    // An enabled schedule that never ran: the server catches up at start.
    let schedule = r#"{"enabled":true,"frequency":"daily","hour":3,"maxBackups":30}"#;
    // Ours is seeded from Framerr's when it is absent: a reused bench
    // instance has one from an earlier run, with its last backup.
    let sql = format!(
        "INSERT INTO system_config(key, value) VALUES('backupSchedule', '{schedule}') ON CONFLICT(key) DO UPDATE SET value = excluded.value; DELETE FROM system_config WHERE key = 'framerrBackupSchedule';"
    );
    let ok = Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()"])
        .arg(data.join("framerr.db"))
        .arg(&sql)
        .status()
        .map_err(|e| e.to_string())?;
    if !ok.success() {
        return Err("cannot set the bench schedule".into());
    }
    let token = "bench-load-token";
    let mut server = Command::new(bin)
        .args(["--data-dir"])
        .arg(data)
        // The whole instance, media library included (see bench.rs).
        .args(["--config-dir", "/nonexistent", "serve", "--full", "--listen", "127.0.0.1:0"])
        .env("FRAMERR_BACKUP_TOKEN", token)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stderr = server.stderr.take().ok_or("no stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let base = loop {
        let line = lines.next().ok_or("the server exited")?.map_err(|e| e.to_string())?;
        if let Some(addr) = line.strip_prefix("framerr-backup listening on ") {
            break addr.to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let out = Command::new("python3")
        .args(["-c", LOAD, &base, token, &CLIENTS.to_string(), name])
        .output()
        .map_err(|e| e.to_string())?;
    let hwm = std::fs::read_to_string(format!("/proc/{}/status", server.id()))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM")).map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .unwrap_or(0);
    let _ = server.kill();
    let _ = server.wait();
    if !out.status.success() {
        return Err(format!("load test failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let report = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    println!("\nload: {CLIENTS} clients listing and downloading during a scheduled backup");
    println!("{report}");
    println!("server peak RSS (VmHWM): {} MiB; latency bound {MAX_LATENCY_S} s", hwm / 1024);
    let errors_ok = report.contains("\"error_count\": 0");
    let slow = report
        .split("\"max\": {")
        .nth(1)
        .and_then(|m| m.split('}').next())
        .map(|m| {
            m.split(',').filter_map(|kv| kv.split(':').nth(1)?.trim().parse::<f64>().ok()).any(|v| v > MAX_LATENCY_S)
        })
        .unwrap_or(true);
    if !errors_ok || slow {
        return Err("load test: errors or a request over the latency bound".into());
    }
    Ok(())
}
