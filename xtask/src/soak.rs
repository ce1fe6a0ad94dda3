//! `cargo xtask bench --soak [--minutes 10]`: the real server under a
//! long, unkind load. For the whole run: 20 API clients list, download and
//! ask for status and health; a manual backup every 20 s; a restore of a
//! random stored backup every minute; and the server killed with -9 at a
//! random moment every 40-80 s and started again, each time with its clock
//! two days later (libfaketime), so its scheduler's catch-up makes a
//! scheduled backup at every start. At the end: every stored backup must
//! verify, the instance must be whole, and nothing of ours may be left
//! behind.

use std::path::Path;
use std::process::Command;

use crate::Result;

const SOAK: &str = r#"
import json, os, random, signal, sqlite3, subprocess, sys, threading, time, urllib.request, urllib.error
binary, data, minutes = sys.argv[1], sys.argv[2], float(sys.argv[3])
token = "soak-token"
backups = os.path.join(data, "backups")
env = dict(os.environ, DATA_DIR=data, FRAMERR_CONFIG_DIR="/nonexistent", FRAMERR_BACKUP_TOKEN=token,
           SECRET_ENCRYPTION_KEY="b0" * 32, FRAMERR_LOG="warn")
# A daily schedule at 03:00, keeping 6: every start two days later is a missed run.
db = sqlite3.connect(os.path.join(data, "framerr.db"))
db.execute("DELETE FROM system_config WHERE key IN ('backupSchedule', 'framerrBackupSchedule')")
db.execute("INSERT INTO system_config (key, value) VALUES ('framerrBackupSchedule', ?)",
           (json.dumps({"enabled": True, "frequency": "daily", "hour": 3, "maxBackups": 6}),))
db.commit(); db.close()

state = {"base": None, "server": None}
stats = {"requests": 0, "errors": [], "unavailable": 0, "max_latency": 0.0, "creates": 0, "create_busy": 0,
         "restores": 0, "restore_busy": 0, "restore_failed": [], "kills": 0, "starts": 0}
lock = threading.Lock()
running = True

import glob
libfaketime = (glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1") + glob.glob("/usr/lib/faketime/libfaketimeMT.so.1"))[0]
def start(day):
    # libfaketime preloaded into the server itself (the faketime wrapper
    # forks, and a kill -9 must reach the server).
    fake = time.strftime("@%Y-%m-%d 02:59:50", time.gmtime(1796000000 + day * 86400))
    proc = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0"],
                            env=dict(env, LD_PRELOAD=libfaketime, FAKETIME=fake),
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    for line in proc.stderr:
        if line.startswith("framerr-backup listening on "):
            base = line.strip().split()[-1]
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            return proc, base
    raise SystemExit("the server did not start")

def call(method, path, body=None, timeout=60):
    base = state["base"]
    req = urllib.request.Request(base + path, method=method, headers={"Authorization": "Bearer " + token,
                                 "Content-Type": "application/json"},
                                 data=json.dumps(body).encode() if body is not None else None)
    t = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            payload = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        payload, status = e.read(), e.code
    dt = time.monotonic() - t
    return status, payload, dt

def client():
    while running:
        path = random.choice(["/api/backup/list", "/api/backup/status", "/api/backup/health", "download"])
        try:
            if path == "download":
                status, payload, _ = call("GET", "/api/backup/list")
                names = [b["filename"] for b in json.loads(payload)["backups"]] if status == 200 else []
                if not names:
                    continue
                status, payload, dt = call("GET", "/api/backup/download/" + random.choice(names))
                ok = status in (200, 404)  # deleted by retention meanwhile
            else:
                status, payload, dt = call("GET", path)
                ok = status == 200
            with lock:
                stats["requests"] += 1
                stats["max_latency"] = max(stats["max_latency"], dt)
                if not ok:
                    stats["errors"].append((path, status, payload[:200].decode(errors="replace")))
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            with lock: stats["unavailable"] += 1  # the server is restarting
            time.sleep(0.2)

def creator():
    while running:
        time.sleep(20)
        try:
            status, payload, _ = call("POST", "/api/backup/create", timeout=300)
            with lock:
                if status == 200: stats["creates"] += 1
                elif status == 409: stats["create_busy"] += 1
                else: stats["errors"].append(("create", status, payload[:200].decode(errors="replace")))
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            with lock: stats["unavailable"] += 1

def restorer():
    while running:
        time.sleep(60)
        try:
            status, payload, _ = call("GET", "/api/backup/list")
            names = [b["filename"] for b in json.loads(payload)["backups"] if b["type"] != "safety" and not b["encrypted"]]
            if not names:
                continue
            status, payload, _ = call("POST", "/api/backup/restore", {"filename": random.choice(names)}, timeout=600)
            with lock:
                if status == 200: stats["restores"] += 1
                elif status in (404, 409): stats["restore_busy"] += 1
                else: stats["restore_failed"].append((status, payload[:300].decode(errors="replace")))
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            with lock: stats["unavailable"] += 1

day = 0
state["server"], state["base"] = start(day); stats["starts"] += 1
threads = [threading.Thread(target=client, daemon=True) for _ in range(20)]
threads += [threading.Thread(target=creator, daemon=True), threading.Thread(target=restorer, daemon=True)]
for t in threads: t.start()
end = time.monotonic() + minutes * 60
while time.monotonic() < end:
    time.sleep(min(random.uniform(40, 80), max(0, end - time.monotonic())))
    if time.monotonic() >= end: break
    state["server"].send_signal(signal.SIGKILL); state["server"].wait()
    stats["kills"] += 1
    day += 2
    state["server"], state["base"] = start(day); stats["starts"] += 1
running = False
time.sleep(1)
state["server"].send_signal(signal.SIGTERM); state["server"].wait()

def run(*args):
    return subprocess.run([binary, *args], env=env, capture_output=True, text=True)
listed = run("list", "--json")
if listed.returncode != 0: raise SystemExit("list failed: " + listed.stderr)
names = [b["filename"] for b in json.loads(listed.stdout)["backups"]]
kinds = {}
bad = []
for name in names:
    kinds[name.split("-")[1]] = kinds.get(name.split("-")[1], 0) + 1
    v = run("verify", name)
    if v.returncode != 0 and "encrypted" not in v.stderr: bad.append((name, v.stderr.strip()[-200:]))
left = []
for root, dirs, files in os.walk(data):
    for f in files + dirs:
        if f.startswith(".framerr") and f not in (".framerr-backup.lock", ".framerr-backup.pins.lock"): left.append(os.path.join(root, f))
ok = sqlite3.connect(os.path.join(data, "framerr.db")).execute("PRAGMA integrity_check").fetchone()[0]
print(json.dumps({"stats": {k: (v[:5] if isinstance(v, list) else v) for k, v in stats.items()},
    "error_count": len(stats["errors"]), "restore_failures": len(stats["restore_failed"]),
    "backups": len(names), "by_type": kinds, "unverified": bad, "leftovers": left, "integrity": ok}))
"#;

pub(crate) fn run(bin: &Path, data: &Path, minutes: f64) -> Result {
    let preload = ["/usr/lib/x86_64-linux-gnu/faketime", "/usr/lib/aarch64-linux-gnu/faketime", "/usr/lib/faketime"];
    if !preload.iter().any(|d| Path::new(d).join("libfaketimeMT.so.1").exists()) {
        return Err("the soak needs faketime (Debian package faketime; `cargo xtask tools` installs it)".into());
    }
    let _ = std::fs::remove_dir_all(data.join("backups"));
    eprintln!("soaking for {minutes} minutes ...");
    let out = Command::new("python3")
        .args(["-c", SOAK])
        .arg(bin)
        .arg(data)
        .arg(minutes.to_string())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("soak failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{report}");
    let clean = report.contains("\"error_count\": 0")
        && report.contains("\"restore_failures\": 0")
        && report.contains("\"unverified\": []")
        && report.contains("\"leftovers\": []")
        && report.contains("\"integrity\": \"ok\"");
    if clean { Ok(()) } else { Err("soak: errors, unverified backups, leftovers or a damaged instance".into()) }
}
