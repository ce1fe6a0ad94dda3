//! Helpers for the end-to-end tests: the real `framerr-backup` binary run
//! against a copy of a Framerr instance in a temporary folder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The instance key of the fixtures (../shared/fixtures README).
pub const FIXTURE_KEY: &str = "f00dfacecafebeef0123456789abcdef00112233445566778899aabbccddeeff";
pub const FIXTURE_PASSWORD: &str = "correct horse battery";
/// The instance lock's file beside the database: permanent, empty.
pub const LOCK_FILE: &str = ".framerr-backup.lock";
/// Beside it: serializes pin changes with retention. Permanent too.
pub const PINS_LOCK_FILE: &str = ".framerr-backup.pins.lock";

/// One of the permanent, empty lock files.
pub fn is_lock_file(name: &str) -> bool {
    name.ends_with(LOCK_FILE) || name.ends_with(PINS_LOCK_FILE)
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `../shared/fixtures/framerr-0.4.1`, or `$FRAMERR_FIXTURES/framerr-0.4.1`.
pub fn fixtures() -> PathBuf {
    std::env::var_os("FRAMERR_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/fixtures"))
        .join("framerr-0.4.1")
}

pub fn golden() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(fixtures().join("golden.json")).unwrap()).unwrap()
}

/// The binary, built once per test process.
pub fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "backup-cli", "--bin", "framerr-backup", "--features", "failpoints"])
            .current_dir(repo_root())
            .status()
            .unwrap();
        assert!(status.success(), "building framerr-backup failed");
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"));
        target.join("debug/framerr-backup")
    })
}

/// Copies a folder tree, making everything writable (the fixtures are
/// read-only).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            let mut perms = std::fs::metadata(&target).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            std::fs::set_permissions(&target, perms).unwrap();
        }
    }
}

/// A Framerr instance laid out as a `DATA_DIR` in a temporary folder.
#[derive(Debug)]
pub struct Instance {
    pub dir: tempfile::TempDir,
    pub key: Option<String>,
}

impl Instance {
    /// A copy of the fixtures' `instance-plain`.
    pub fn from_fixture() -> Self {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&fixtures().join("instance-plain"), &dir.path().join("data"));
        Instance { dir, key: Some(FIXTURE_KEY.into()) }
    }

    pub fn empty() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        Instance { dir, key: None }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn db(&self) -> PathBuf {
        self.data().join("framerr.db")
    }

    pub fn backups(&self) -> PathBuf {
        self.data().join("backups")
    }

    /// The binary with this instance's environment and no other Framerr
    /// settings leaking in from the caller's.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(binary());
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("DATA_DIR", self.data())
            .env("FRAMERR_CONFIG_DIR", self.dir.path().join("no-docker-config"))
            .env_remove("FRAMERR_DB_PATH")
            .env_remove("FRAMERR_BACKUPS_DIR")
            .env_remove("SECRET_ENCRYPTION_KEY");
        if let Some(key) = &self.key {
            cmd.env("SECRET_ENCRYPTION_KEY", key);
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs with `input` on standard input (a password).
    pub fn run_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        use std::process::Stdio;
        let mut child =
            self.command(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs, expecting success; returns standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs, expecting failure; returns standard error.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "{args:?} succeeded: {}", String::from_utf8_lossy(&out.stdout));
        String::from_utf8(out.stderr).unwrap()
    }

    /// File names in the backups folder, hidden ones included; not the
    /// documents kept beside the backups (`framerr-backup.<key>.json`).
    pub fn backup_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.backups())
            .map(|rd| {
                rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| !is_document(n)).collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// A running `framerr-backup serve`, killed when dropped.
#[derive(Debug)]
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT`, as the server announced it.
    pub base: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `command` (a `serve` command listening on 127.0.0.1:0) and
    /// waits for the line that says where it listens. Its standard error is
    /// kept (see [`Server::log`]) and drained, so the server never blocks on
    /// a full pipe.
    pub fn spawn(mut command: Command) -> Server {
        let mut child = command.stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(Mutex::new(String::new()));
        let base = loop {
            let line = lines.next().expect("server exited before listening").unwrap();
            log.lock().unwrap().push_str(&format!("{line}\n"));
            if let Some(addr) = line.strip_prefix("framerr-backup listening on ") {
                break addr.to_owned();
            }
        };
        let keep = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                keep.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        Server { child, base, log }
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> &str {
        self.base.strip_prefix("http://").unwrap_or(&self.base)
    }

    /// Everything the server wrote to standard error so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A document kept beside the backups (history, pins), not a backup.
pub fn is_document(name: &str) -> bool {
    name.rsplit('/').next().is_some_and(|n| n.starts_with("framerr-backup.") && n.ends_with(".json"))
}

/// Runs python3 (the venv from `cargo xtask tools` when there is one).
pub fn python() -> Command {
    let venv = std::env::var_os("FRAMERR_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/tools/venv/bin/python"));
    Command::new(if venv.exists() { venv } else { PathBuf::from("python3") })
}

/// Runs one SQL statement on the SQLite file `db` (committing it) and
/// returns its rows as JSON; blobs come back as hex.
pub fn query(db: &Path, sql: &str) -> serde_json::Value {
    let out = python_ok(
        "import sqlite3,sys,json\nc=sqlite3.connect(sys.argv[1])\nrows=c.execute(sys.argv[2]).fetchall()\nc.commit()\nprint(json.dumps(rows, default=lambda b: b.hex()))",
        &[db, Path::new(sql)],
    );
    serde_json::from_str(&out).unwrap()
}

/// Runs a python script with arguments; returns its standard output.
pub fn python_ok(script: &str, args: &[&Path]) -> String {
    let out = python().arg("-c").arg(script).args(args).output().unwrap();
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A moto S3-compatible server on 127.0.0.1 (installed by `cargo xtask
/// tools`), killed when dropped.
#[derive(Debug)]
pub struct Moto {
    child: std::process::Child,
    pub port: u16,
}

impl Moto {
    /// Starts moto on a free port and creates `bucket`.
    pub fn start(bucket: &str) -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let moto = Moto::on_port(port);
        moto.create_bucket(bucket);
        moto
    }

    /// Starts moto on `port` (empty: moto keeps objects in memory).
    pub fn on_port(port: u16) -> Moto {
        let server = venv_bin("moto_server");
        assert!(server.exists(), "{} is missing: run `cargo xtask tools`", server.display());
        let child = Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < std::time::Duration::from_secs(30), "moto did not start");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Moto { child, port }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The destination URL of `bucket/prefix` on this server.
    pub fn url(&self, bucket: &str, prefix: &str) -> String {
        format!("s3://{bucket}/{prefix}?endpoint={}&allow_http=true&region=us-east-1", self.endpoint())
    }

    fn boto(&self, code: &str) -> String {
        let script = format!(
            "import boto3, json\ns3 = boto3.client('s3', endpoint_url='{}', aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1')\n{code}",
            self.endpoint()
        );
        let out = Command::new(venv_bin("python")).arg("-c").arg(script).output().unwrap();
        assert!(out.status.success(), "boto3: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn create_bucket(&self, bucket: &str) {
        self.boto(&format!("s3.create_bucket(Bucket='{bucket}')"));
    }

    /// Every key in the bucket, with its size, and the multipart uploads in
    /// progress.
    pub fn objects(&self, bucket: &str) -> (Vec<(String, u64)>, usize) {
        let out = self.boto(&format!(
            "objs = s3.list_objects_v2(Bucket='{bucket}').get('Contents', [])\nups = s3.list_multipart_uploads(Bucket='{bucket}').get('Uploads', [])\nprint(json.dumps([[[o['Key'], o['Size']] for o in objs], len(ups)]))"
        ));
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        let objects = v[0]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| (o[0].as_str().unwrap().to_owned(), o[1].as_u64().unwrap()))
            .collect();
        (objects, v[1].as_u64().unwrap() as usize)
    }

    pub fn put(&self, bucket: &str, key: &str, body: &str) {
        self.boto(&format!("s3.put_object(Bucket='{bucket}', Key='{key}', Body=b'{body}')"));
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.kill();
    }
}

fn venv_bin(tool: &str) -> PathBuf {
    let python = std::env::var_os("FRAMERR_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/tools/venv/bin/python"));
    python.parent().unwrap().join(tool)
}

/// Every file under `dir` with the SHA-256 of its content. SQLite's
/// shared-memory index (`-shm`), an empty `-wal` (any reader of a WAL
/// database may create them) and the instance lock's permanent, empty file
/// are left out.
pub fn tree(dir: &Path) -> std::collections::BTreeMap<String, String> {
    use sha2::Digest;
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let name = p.strip_prefix(dir).unwrap().display().to_string();
            let empty = std::fs::metadata(&p).unwrap().len() == 0;
            if name.ends_with("-shm") || (name.ends_with("-wal") && empty) || is_lock_file(&name) {
                continue;
            }
            out.insert(name, hex::encode(sha2::Sha256::digest(std::fs::read(&p).unwrap())));
        }
    }
    out
}

/// Hidden files of ours under `dir` (staging, old copies, temporaries,
/// journals, owner files): none may outlive the command that made them.
pub fn hidden_leftovers(dir: &Path) -> Vec<String> {
    tree(dir).into_keys().filter(|k| k.split('/').any(|part| part.starts_with(".framerr"))).collect()
}

/// `SELECT count(*) FROM table`.
pub fn count(db: &Path, table: &str) -> i64 {
    query(db, &format!("SELECT count(*) FROM {table}"))[0][0].as_i64().unwrap()
}

/// The marker row `system_config.marker`, or `None`.
pub fn marker(db: &Path) -> Option<String> {
    query(db, "SELECT value FROM system_config WHERE key = 'marker'").as_array()?.first()?[0]
        .as_str()
        .map(str::to_owned)
}

/// A tmpfs of `size` (e.g. "3m") mounted on `dir`, unmounted when dropped.
/// Needs root: the tests that use it are ignored elsewhere.
#[derive(Debug)]
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let status =
            Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(dir).status();
        assert!(status.is_ok_and(|s| s.success()), "cannot mount a tmpfs on {} (run as root)", dir.display());
        Tmpfs(dir.to_path_buf())
    }

    /// Makes it read-only (or writable again).
    pub fn read_only(&self, read_only: bool) {
        let mode = if read_only { "remount,ro" } else { "remount,rw" };
        assert!(Command::new("mount").args(["-o", mode]).arg(&self.0).status().is_ok_and(|s| s.success()));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// One request a [`Stub`] received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Lowercased names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == &name.to_ascii_lowercase()).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A tiny HTTP/1.1 server on 127.0.0.1 that records every request and
/// answers each with the next status of its script (then 200), for
/// testing what we send to webhooks and friends.
#[derive(Debug)]
pub struct Stub {
    pub base: String,
    received: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
}

impl Stub {
    pub fn start(script: &[u16]) -> Stub {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (log, script) = (received.clone(), std::sync::Arc::new(std::sync::Mutex::new(script.to_vec())));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (log, script) = (log.clone(), script.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let mut parts = line.split_whitespace();
                        let (method, path) =
                            (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
                        let mut headers = Vec::new();
                        loop {
                            let mut h = String::new();
                            reader.read_line(&mut h).unwrap();
                            let h = h.trim_end();
                            if h.is_empty() {
                                break;
                            }
                            if let Some((n, v)) = h.split_once(':') {
                                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
                            }
                        }
                        let len: usize = headers
                            .iter()
                            .find(|(n, _)| n == "content-length")
                            .and_then(|(_, v)| v.parse().ok())
                            .unwrap_or(0);
                        let mut body = vec![0; len];
                        reader.read_exact(&mut body).unwrap();
                        log.lock().unwrap().push(Received { method, path, headers, body });
                        let status = {
                            let mut s = script.lock().unwrap();
                            if s.is_empty() { 200 } else { s.remove(0) }
                        };
                        let mut out = stream.try_clone().unwrap();
                        let _ =
                            write!(out, "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok");
                    }
                });
            }
        });
        Stub { base, received }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits up to `max` for at least `n` requests.
    pub fn wait_for(&self, n: usize, max: Duration) -> Vec<Received> {
        let end = std::time::Instant::now() + max;
        while self.received().len() < n && std::time::Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.received()
    }
}

/// A backup of the fixture marked 'new', with `blob_mib` MiB of ballast so
/// that restoring it takes long enough to be interrupted anywhere.
pub fn new_backup(blob_mib: u32) -> (Instance, PathBuf) {
    let source = Instance::from_fixture();
    python_ok(
        "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nc.execute(\"INSERT INTO system_config(key,value) VALUES('marker','new')\")\nc.execute('CREATE TABLE ballast(b BLOB)')\nfor i in range(int(sys.argv[2])): c.execute('INSERT INTO ballast VALUES(randomblob(1048576))')\nc.commit()",
        &[&source.db(), Path::new(&blob_mib.to_string())],
    );
    let created: serde_json::Value = serde_json::from_str(&source.ok(&["create", "--json"])).unwrap();
    let zip = source.backups().join(created["filename"].as_str().unwrap());
    (source, zip)
}

/// The old instance: marked 'old' in a row that lives only in its WAL, and
/// in an asset file.
pub fn old_instance() -> Instance {
    let inst = Instance::from_fixture();
    python_ok(
        "import sqlite3,sys,os\nc=sqlite3.connect(sys.argv[1])\nc.execute('PRAGMA journal_mode=WAL')\nc.execute('PRAGMA wal_autocheckpoint=0')\nc.execute(\"INSERT INTO system_config(key,value) VALUES('marker','old')\")\nc.commit()\nos._exit(0)",
        &[&inst.db()],
    );
    std::fs::write(inst.data().join("upload/custom-icons/old-only.png"), b"old").unwrap();
    inst
}

/// The instance is entirely the old one or entirely the new one, intact.
pub fn wholly_old_or_new(inst: &Instance, what: &str) -> String {
    assert_eq!(query(&inst.db(), "PRAGMA integrity_check"), serde_json::json!([["ok"]]), "{what}");
    let state = marker(&inst.db()).unwrap_or_else(|| panic!("{what}: no marker"));
    let old_asset = inst.data().join("upload/custom-icons/old-only.png").exists();
    assert_eq!(old_asset, state == "old", "{what}: a {state} database with the other state's assets");
    if state == "new" {
        assert_eq!(count(&inst.db(), "sessions"), 0, "{what}: the new database without its post-restore work");
    }
    state
}

/// One HTTP/1.1 request to `127.0.0.1`, read to its end: (status, body).
/// `body` goes as JSON when given.
pub fn http(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = base.strip_prefix("http://").unwrap_or(base);
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = body.unwrap_or("");
    request.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    // Our server answers small JSON bodies whole, Python's in one piece;
    // chunked bodies are not expected here.
    assert!(!head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "{head}");
    (status, body.to_owned())
}

/// A stand-in for a running Framerr (`tests/standin/framerr.py`): one
/// SQLite connection to `db` held open in WAL mode for its whole life,
/// writing a row every few milliseconds and answering like Framerr's setup
/// status and sign-in. Killed when dropped.
#[derive(Debug)]
pub struct StandIn {
    child: Child,
    pub base: String,
    writes: PathBuf,
    _dir: tempfile::TempDir,
}

impl StandIn {
    pub fn start(db: &Path) -> StandIn {
        let dir = tempfile::tempdir().unwrap();
        let writes = dir.path().join("writes.log");
        let mut child = python()
            .arg(repo_root().join("tests/standin/framerr.py"))
            .arg(db)
            .arg(&writes)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("stand-in said {line:?}"));
        let standin = StandIn { child, base: format!("http://127.0.0.1:{port}"), writes, _dir: dir };
        // Running: it has written through its connection.
        let started = std::time::Instant::now();
        while standin.committed().is_empty() {
            assert!(started.elapsed() < Duration::from_secs(30), "the stand-in wrote nothing");
            std::thread::sleep(Duration::from_millis(10));
        }
        standin
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it reads now through its connection: usernames and the marker.
    pub fn state(&self) -> serde_json::Value {
        let (status, body) = http(&self.base, "GET", "/standin/state", &[], None);
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Its rows committed so far: (key, the marker it saw when writing).
    pub fn committed(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(&self.writes)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.contains(" failed "))
            .filter_map(|l| l.split_once(' ').map(|(k, m)| (k.to_owned(), m.to_owned())))
            .collect()
    }

    /// Files of the database that it holds open although they were deleted
    /// (it would be reading and writing a database nobody sees).
    pub fn deleted_files(&self) -> Vec<String> {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .unwrap()
            .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .map(|target| target.display().to_string())
            .filter(|t| t.contains("framerr.db") && t.ends_with("(deleted)"))
            .collect()
    }

    /// Stops it as Framerr stops (its connection closed); returns what it
    /// committed.
    pub fn stop(mut self) -> Vec<(String, String)> {
        let _ = Command::new("kill").arg("-TERM").arg(self.pid().to_string()).status();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "the stand-in failed: {status}");
        self.committed()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
