//! `cargo xtask bench [--size 1G] [--runs 3] [--threads N] [--keep DIR] [--no-shell] [--load] [--s3] [--soak [--minutes N]] [--media ROWS] [--neighbour] [--hostile [--baseline BIN]]`
//!
//! Builds a Framerr-shaped instance (a database of the given size: mixed
//! JSON text, blobs and indexes; plus asset folders), then reports the
//! median wall time and peak RSS of `framerr-backup create` beside the
//! classic shell alternative, `sqlite3 DB ".backup tmp.db"` followed by
//! `zip -6 -r`, and of `framerr-backup verify` and `restore` (onto a fresh
//! data folder). Peak RSS comes from
//! getrusage(RUSAGE_CHILDREN) in a small python3 wrapper, so it is the
//! kernel's figure for the measured processes only.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Result, cargo};

struct Options {
    size: u64,
    runs: usize,
    threads: Option<usize>,
    keep: Option<PathBuf>,
    shell: bool,
    load: bool,
    s3: bool,
    soak: Option<f64>,
    media: Option<u64>,
    neighbour: bool,
    hostile: bool,
    baseline: Option<PathBuf>,
}

fn parse_size(text: &str) -> Result<u64> {
    let (digits, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = digits.parse().map_err(|_| format!("bad size {text:?}"))?;
    let mult = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KIB" => 1 << 10,
        "M" | "MIB" => 1 << 20,
        "G" | "GIB" => 1 << 30,
        _ => return Err(format!("bad size unit in {text:?}")),
    };
    Ok(n * mult)
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        size: 1 << 30,
        runs: 3,
        threads: None,
        keep: None,
        shell: true,
        load: false,
        s3: false,
        soak: None,
        media: None,
        neighbour: false,
        hostile: false,
        baseline: None,
    };
    let mut size_given = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--size" => {
                o.size = parse_size(&value()?)?;
                size_given = true;
            }
            "--runs" => o.runs = value()?.parse().map_err(|_| "bad --runs")?,
            "--threads" => o.threads = Some(value()?.parse().map_err(|_| "bad --threads")?),
            "--keep" => o.keep = Some(PathBuf::from(value()?)),
            "--no-shell" => o.shell = false,
            "--load" => o.load = true,
            "--s3" => o.s3 = true,
            "--soak" => o.soak = Some(o.soak.unwrap_or(10.0)),
            "--minutes" => o.soak = Some(value()?.parse().map_err(|_| "bad --minutes")?),
            "--media" => o.media = Some(value()?.parse().map_err(|_| "bad --media")?),
            "--neighbour" => o.neighbour = true,
            "--hostile" => o.hostile = true,
            "--baseline" => o.baseline = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown option {other}")),
        }
    }
    // A soak makes many backups: a smaller instance unless one is asked for.
    if o.soak.is_some() && !size_given {
        o.size = 128 << 20;
    }
    Ok(o)
}

/// Runs a shell command line under the python wrapper; returns (seconds,
/// peak RSS in KiB).
fn measure(script: &str, env: &[(&str, &Path)]) -> Result<(f64, u64)> {
    measure_cpu(script, env, true).map(|(secs, rss, _)| (secs, rss))
}

/// [`measure`], with the CPU time (user and system) of every process the
/// command started, however deep (each was waited for); `must_succeed`
/// false measures commands that are meant to fail.
fn measure_cpu(script: &str, env: &[(&str, &Path)], must_succeed: bool) -> Result<(f64, u64, f64)> {
    let wrapper = r#"
import resource, subprocess, sys, time, json
t = time.monotonic()
r = subprocess.run(["bash", "-c", sys.argv[1]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
elapsed = time.monotonic() - t
if r.returncode != 0 and sys.argv[2] == "1":
    sys.exit("command failed: " + sys.argv[1])
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps([elapsed, u.ru_maxrss, u.ru_utime + u.ru_stime]))
"#;
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(wrapper).arg(script).arg(if must_succeed { "1" } else { "0" });
    // A fixed instance key, so that encrypted cases can run.
    cmd.env("SECRET_ENCRYPTION_KEY", "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> =
        text.trim().trim_start_matches('[').trim_end_matches(']').split(',').map(str::trim).collect();
    let [secs, rss, cpu] = fields[..] else { return Err("bad wrapper output".into()) };
    Ok((
        secs.parse().map_err(|_| "bad seconds")?,
        rss.parse().map_err(|_| "bad rss")?,
        cpu.parse().map_err(|_| "bad cpu")?,
    ))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Runs `script` `runs` times, telling each run; returns the median wall
/// time and the highest peak RSS (KiB).
fn median_of(label: &str, script: &str, env: &[(&str, &Path)], runs: usize) -> Result<(f64, u64)> {
    let mut times = Vec::new();
    let mut peak = 0;
    for i in 0..runs {
        let (secs, rss) = measure(script, env)?;
        eprintln!("{label} run {}: {secs:.2} s, peak RSS {} MiB", i + 1, rss / 1024);
        times.push(secs);
        peak = peak.max(rss);
    }
    Ok((median(times), peak))
}

/// A live-shaped Framerr database of about `size` bytes: its bulk in a
/// table every backup keeps (JSON metadata, compressible text, and blobs
/// half random like images, with indexes), and what a running instance
/// always has in the tables a lean backup leaves out: sessions,
/// notifications, media library and cache rows, monitor history (a few
/// percent of the file).
fn build_instance(dir: &Path, size: u64) -> Result {
    let data = dir.join("data");
    for sub in ["upload/profile-pictures", "upload/custom-icons", "public/favicon"] {
        std::fs::create_dir_all(data.join(sub)).map_err(|e| e.to_string())?;
    }
    let db = data.join("framerr.db");
    let has_users = || {
        Command::new("python3")
            .args(["-c", "import sqlite3,sys; sqlite3.connect(sys.argv[1]).execute('select 1 from users')"])
            .arg(&db)
            .status()
            .is_ok_and(|s| s.success())
    };
    let live_shaped = || {
        Command::new("python3")
            .args([
                "-c",
                "import sqlite3,sys; sqlite3.connect(sys.argv[1]).execute('select 1 from dashboard_activity')",
            ])
            .arg(&db)
            .status()
            .is_ok_and(|s| s.success())
    };
    let len = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    if db.exists() && len >= size * 9 / 10 && len <= size * 3 / 2 && has_users() && live_shaped() {
        eprintln!("reusing {}", db.display());
        return Ok(());
    }
    let _ = std::fs::remove_file(&db);
    // About 2.1 KiB a row on disk, indexes included.
    let rows = (size / 2_100).max(1);
    let script = format!(
        r#"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.executescript('''
PRAGMA journal_mode = WAL;
PRAGMA user_version = 48;
CREATE TABLE dashboard_activity (id INTEGER PRIMARY KEY, title TEXT, meta TEXT, poster BLOB, added INTEGER);
CREATE INDEX activity_title ON dashboard_activity(title);
CREATE INDEX activity_added ON dashboard_activity(added);
CREATE TABLE media_library (id INTEGER PRIMARY KEY, title TEXT, meta TEXT, poster BLOB, added INTEGER);
CREATE INDEX media_title ON media_library(title);
CREATE TABLE media_cache (id INTEGER PRIMARY KEY, url TEXT, data BLOB);
CREATE TABLE service_monitor_history (id INTEGER PRIMARY KEY, monitor_id TEXT, status TEXT, checked_at INTEGER);
CREATE INDEX monitor_recent ON service_monitor_history(monitor_id, checked_at);
CREATE TABLE sessions (token TEXT PRIMARY KEY, user_id TEXT, expires_at INTEGER);
CREATE TABLE notifications (id INTEGER PRIMARY KEY, user_id TEXT, body TEXT);
CREATE TABLE system_config (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL DEFAULT 0);
CREATE TABLE users (id TEXT PRIMARY KEY, username TEXT UNIQUE NOT NULL, password TEXT NOT NULL, group_id TEXT NOT NULL DEFAULT 'user');
INSERT INTO users VALUES ('u1', 'admin', '$2b$10$abcdefghijklmnopqrstuu', 'admin');
''')
c.execute("""
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
INSERT INTO dashboard_activity (title, meta, poster, added)
SELECT 'Title ' || i || ' ' || hex(randomblob(4)),
       json_object('id', i, 'type', CASE i % 3 WHEN 0 THEN 'movie' WHEN 1 THEN 'show' ELSE 'episode' END,
                   'overview', 'A story about item ' || i || ' with a long overview text that repeats ' || substr(hex(randomblob(300)), 1, 200) || ' and the cast list follows.',
                   'genres', json_array('Drama', 'Comedy', 'Sci-Fi'), 'rating', (i % 100) / 10.0,
                   'paths', json_array('/media/library/' || i || '/file.mkv', '/media/library/' || i || '/poster.jpg')),
       randomblob(700) || zeroblob(700),
       1700000000 + i
FROM n
""")
small = max({rows} // 100, 10)
c.execute("INSERT INTO media_library (title, meta, poster, added) SELECT title, meta, poster, added FROM dashboard_activity LIMIT ?", (small,))
c.execute("INSERT INTO media_cache (url, data) SELECT 'https://image/' || id, poster FROM dashboard_activity LIMIT ?", (small,))
c.execute("INSERT INTO service_monitor_history (monitor_id, status, checked_at) SELECT 'm' || (id % 7), 'up', added FROM dashboard_activity LIMIT ?", (small * 5,))
c.execute("INSERT INTO sessions SELECT hex(randomblob(16)), 'u1', 0 FROM dashboard_activity LIMIT 1000")
c.execute("INSERT INTO notifications (user_id, body) SELECT 'u1', meta FROM dashboard_activity LIMIT 5000")
c.commit()
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
c.close()
"#
    );
    eprintln!("building a {} MiB database with {rows} rows ...", size >> 20);
    let status = Command::new("python3").arg("-c").arg(script).arg(&db).status().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("building the database failed: {status}"));
    }
    // Asset folders: a few hundred small images.
    for i in 0..300u32 {
        let bytes: Vec<u8> = (0..20_000u32).map(|j| (j.wrapping_mul(2_654_435_761) ^ i) as u8).collect();
        let folder = ["upload/profile-pictures", "upload/custom-icons", "public/favicon"][i as usize % 3];
        std::fs::write(data.join(folder).join(format!("asset-{i}.png")), bytes).map_err(|e| e.to_string())?;
    }
    Ok(())
}

pub(crate) fn run(args: &[String]) -> Result {
    let o = parse(args)?;
    crate::run(cargo().args(["build", "--release", "-p", "backup-cli", "--bin", "framerr-backup"]))?;
    let bin = crate::tools::root().join("target/release/framerr-backup");
    if let Some(rows) = o.media {
        return media(&bin, rows, o.runs);
    }
    let temp;
    let dir = match &o.keep {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
            d.clone()
        }
        None => {
            temp = crate::tools::root().join("target/bench");
            std::fs::create_dir_all(&temp).map_err(|e| e.to_string())?;
            temp
        }
    };
    build_instance(&dir, o.size)?;
    let data = dir.join("data");
    if o.load {
        return crate::load::run(&bin, &data);
    }
    if o.s3 {
        return s3(&bin, &data, &dir, o.runs);
    }
    if let Some(minutes) = o.soak {
        return crate::soak::run(&bin, &data, minutes);
    }
    if o.neighbour {
        return neighbour(&bin, &data, &dir, o.runs);
    }
    if o.hostile {
        return hostile(&bin, o.baseline.as_deref(), &data, &dir, o.runs);
    }
    let db_size = std::fs::metadata(data.join("framerr.db")).map_err(|e| e.to_string())?.len();
    let threads = o.threads.map(|t| format!(" --threads {t}")).unwrap_or_default();
    // The same instance with its purge tables already empty: what leaving
    // rows out may cost at most (5% more).
    let emptied = dir.join("data-emptied");
    if !emptied.join("framerr.db").exists() {
        let _ = std::fs::remove_dir_all(&emptied);
        crate::run(Command::new("cp").arg("-r").arg(&data).arg(&emptied))?;
        let tables = backup_domain_purge_list().join("', '");
        let empty = format!(
            "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nfor (t,) in c.execute(\"select name from sqlite_master where type='table' and name in ('{tables}')\").fetchall(): c.execute('DELETE FROM \"%s\"' % t)\nc.commit()\nc.execute('VACUUM')"
        );
        crate::run(Command::new("python3").arg("-c").arg(empty).arg(emptied.join("framerr.db")))?;
    }
    let create = |data: &str, extra: &str, out: &str| {
        format!(
            "rm -rf \"{data}/backups\" && \"$BIN\" --data-dir \"{data}\" --config-dir /nonexistent{extra} create --output \"$OUT/{out}.tmp\" && mv \"$OUT/{out}.tmp\" \"$OUT/{out}\""
        )
    };
    let ours = create("$DATA", &threads, "ours.zip");
    let full = create("$DATA", &threads, "full.zip").replace(" create --output", " create --full --output");
    let already_empty = create("$EMPTIED", &threads, "emptied.zip");
    let shell = "rm -f \"$OUT/tmp.db\" \"$OUT/shell.zip\" && sqlite3 \"$DATA/framerr.db\" \".backup '$OUT/tmp.db'\" && cd \"$DATA\" && zip -q -6 -r \"$OUT/shell.zip\" \"$OUT/tmp.db\" upload public && rm -f \"$OUT/tmp.db\"";
    // The database only, as the issue that asked for it measured it.
    let pigz = "rm -f \"$OUT/tmp.db\" \"$OUT/pigz.gz\" && sqlite3 \"$DATA/framerr.db\" \".backup '$OUT/tmp.db'\" && pigz -6 -p 2 -c \"$OUT/tmp.db\" > \"$OUT/pigz.gz\" && rm -f \"$OUT/tmp.db\"";
    let verify = "\"$BIN\" --data-dir \"$DATA\" --config-dir /nonexistent verify \"$OUT/ours.zip\"";
    // Onto a fresh data folder: staging, checks, post-restore, commit.
    let restore = "rm -rf \"$OUT/restored\" && mkdir -p \"$OUT/restored\" && \"$BIN\" --data-dir \"$OUT/restored\" --config-dir /nonexistent restore \"$OUT/ours.zip\" --yes && rm -rf \"$OUT/restored\"";
    let have_shell = o.shell
        && Command::new("sqlite3").arg("-version").output().is_ok()
        && Command::new("zip").arg("-v").output().is_ok();
    let have_pigz = o.shell && Command::new("pigz").arg("--version").output().is_ok();
    let env: Vec<(&str, &Path)> = vec![("BIN", &bin), ("DATA", &data), ("OUT", &dir), ("EMPTIED", &emptied)];
    let mut rows = Vec::new();
    let by_threads: Vec<(String, String)> = [1usize, 2, 8, 16]
        .iter()
        .map(|t| {
            (format!("framerr-backup create --threads {t}"), create("$DATA", &format!(" --threads {t}"), "threads.zip"))
        })
        .collect();
    let mut cases = vec![
        ("framerr-backup create", ours.as_str()),
        ("framerr-backup create --full", full.as_str()),
        ("create, purge tables already empty", already_empty.as_str()),
    ];
    if have_shell {
        cases.push(("sqlite3 .backup + zip -6", shell));
    } else if o.shell {
        eprintln!("sqlite3 or zip is not installed: the shell alternative is skipped");
    }
    if have_pigz {
        cases.push(("sqlite3 .backup + pigz -6 -p 2 (database only)", pigz));
    }
    if o.threads.is_none() {
        for (label, script) in &by_threads {
            cases.push((label.as_str(), script.as_str()));
        }
    }
    cases.push(("framerr-backup verify", verify));
    cases.push(("framerr-backup restore", restore));
    // Encrypted: the same backup sealed with a password, into the backups
    // folder (an encrypted --output is not offered), then restored.
    let create_encrypted = "rm -rf \"$DATA/backups\" && \"$BIN\" --data-dir \"$DATA\" --config-dir /nonexistent create --full && mv \"$DATA\"/backups/*.framerr-backup \"$OUT/ours.framerr-backup\"";
    let restore_encrypted = "rm -rf \"$OUT/restored\" && mkdir -p \"$OUT/restored\" && echo 'bench password' | \"$BIN\" --data-dir \"$OUT/restored\" --config-dir /nonexistent restore \"$OUT/ours.framerr-backup\" --yes --password-stdin && rm -rf \"$OUT/restored\"";
    cases.push(("framerr-backup create (encrypted)", create_encrypted));
    cases.push(("framerr-backup restore (encrypted)", restore_encrypted));
    let encryption = |verb: &str| {
        let script = format!(
            "echo 'bench password' | \"$BIN\" --data-dir \"$DATA\" --config-dir /nonexistent encryption {verb} --password-stdin"
        );
        let _ = measure(&script, &env);
    };
    encryption("disable");
    for (label, script) in cases {
        if label == "framerr-backup create (encrypted)" {
            encryption("enable");
        }
        let (secs, peak) = median_of(label, script, &env, o.runs)?;
        rows.push((label, secs, peak));
    }
    encryption("disable");
    let out_size = std::fs::metadata(dir.join("ours.zip")).map(|m| m.len()).unwrap_or(0);
    let shell_size = std::fs::metadata(dir.join("shell.zip")).map(|m| m.len()).unwrap_or(0);
    let pigz_size = std::fs::metadata(dir.join("pigz.gz")).map(|m| m.len()).unwrap_or(0);
    println!();
    println!(
        "database {} MiB, {} runs each, {} cores",
        db_size >> 20,
        o.runs,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| command | median wall time | peak RSS | output |");
    println!("|---|---|---|---|");
    for (label, secs, rss) in &rows {
        let size = match *label {
            "framerr-backup create" => format!("{} MiB", out_size >> 20),
            "sqlite3 .backup + pigz -6 -p 2 (database only)" => format!("{} MiB", pigz_size >> 20),
            "sqlite3 .backup + zip -6" => format!("{} MiB", shell_size >> 20),
            _ => "-".into(),
        };
        println!("| {label} | {secs:.2} s | {} MiB | {size} |", rss / 1024);
    }
    let time_of = |label: &str| rows.iter().find(|r| r.0 == label).map(|r| r.1);
    if let (Some(c), Some(z)) = (time_of("framerr-backup create"), time_of("sqlite3 .backup + zip -6")) {
        println!("\ncreate / shell alternative: {:.2}x wall time (target: at most 0.35x)", c / z);
    }
    if let (Some(c), Some(p)) =
        (time_of("framerr-backup create"), time_of("sqlite3 .backup + pigz -6 -p 2 (database only)"))
    {
        println!("create / pigz pipeline: {:.2}x wall time (target: at most 0.6x)", c / p);
    }
    for label in ["framerr-backup create", "framerr-backup create --full"] {
        if let (Some(c), Some(e)) = (time_of(label), time_of("create, purge tables already empty")) {
            println!("{label} / purge tables already empty: {:.2}x wall time (target: at most 1.05x)", c / e);
        }
    }
    if let (Some(t1), Some(t2)) =
        (time_of("framerr-backup create --threads 1"), time_of("framerr-backup create --threads 2"))
    {
        // Amdahl: t2 = t1 (s + (1 - s) / 2), so the serial share s is
        // 2 t2 / t1 - 1.
        let serial = (2.0 * t2 / t1 - 1.0).clamp(0.0, 1.0);
        println!(
            "threads 1 / threads 2: {:.2}x (target: at least 1.85x); serial share {:.1}%; projected 8 threads {:.2} s, 16 threads {:.2} s",
            t1 / t2,
            serial * 100.0,
            t1 * (serial + (1.0 - serial) / 8.0),
            t1 * (serial + (1.0 - serial) / 16.0)
        );
    }
    if let (Some(r), Some(c)) = (time_of("framerr-backup restore"), time_of("framerr-backup create")) {
        println!("restore / create: {:.2}x wall time", r / c);
    }
    for (enc, plain) in [
        ("framerr-backup create (encrypted)", "framerr-backup create"),
        ("framerr-backup restore (encrypted)", "framerr-backup restore"),
    ] {
        if let (Some(e), Some(p)) = (time_of(enc), time_of(plain)) {
            println!("{enc} / plain: {:.2}x wall time", e / p);
        }
    }
    Ok(())
}

/// `--neighbour`: restoring the bench instance's backup over a running
/// Framerr's small database, with and without a stand-in
/// (`tests/standin/framerr.py`) holding that database open: without it the
/// staged file is renamed in; with it the database is written through
/// SQLite's online backup API (every page through SQLite, into the WAL and
/// then the file). Both include copying the small database and a safety
/// backup of it; the stand-in's start (about 0.1 s) is in the second.
fn neighbour(bin: &Path, data: &Path, dir: &Path, runs: usize) -> Result {
    let create = "rm -rf \"$DATA/backups\" && \"$BIN\" --data-dir \"$DATA\" --config-dir /nonexistent create --full --output \"$OUT/ours.zip.tmp\" && mv \"$OUT/ours.zip.tmp\" \"$OUT/ours.zip\"";
    let small = crate::tools::root().join("../shared/fixtures/framerr-0.4.1/instance-plain/framerr.db");
    let standin = crate::tools::root().join("tests/standin/framerr.py");
    let env: Vec<(&str, &Path)> =
        vec![("BIN", bin), ("DATA", data), ("OUT", dir), ("SMALL", &small), ("STANDIN", &standin)];
    measure(create, &env)?;
    let live = "rm -rf \"$OUT/restored\" && mkdir -p \"$OUT/restored\" && cp \"$SMALL\" \"$OUT/restored/framerr.db\" && chmod u+w \"$OUT/restored/framerr.db\"";
    let restore = "\"$BIN\" --data-dir \"$OUT/restored\" --config-dir /nonexistent restore \"$OUT/ours.zip\" --yes";
    let alone = format!("{live} && {restore} && rm -rf \"$OUT/restored\"");
    let beside = format!(
        "{live} && (python3 \"$STANDIN\" \"$OUT/restored/framerr.db\" \"$OUT/standin.log\" > \"$OUT/standin.out\" &) && until grep -q listening \"$OUT/standin.out\" 2>/dev/null; do sleep 0.02; done && {restore}; rc=$?; pkill -TERM -f \"$STANDIN\"; sleep 0.2; rm -rf \"$OUT/restored\" \"$OUT/standin.out\" \"$OUT/standin.log\"; exit $rc"
    );
    let mut rows = Vec::new();
    for (label, script) in
        [("restore, nobody else on the database", &alone), ("restore beside a running Framerr", &beside)]
    {
        let (secs, peak) = median_of(label, script, &env, runs)?;
        rows.push((label, secs, peak));
    }
    let db_size = std::fs::metadata(data.join("framerr.db")).map_err(|e| e.to_string())?.len();
    println!("\nbackup of a {} MiB database restored over a running instance, {runs} runs each", db_size >> 20);
    println!("| restore | median wall time | peak RSS |");
    println!("|---|---|---|");
    for (label, secs, rss) in &rows {
        println!("| {label} | {secs:.2} s | {} MiB |", rss / 1024);
    }
    println!("\nbeside / alone: {:.2}x wall time", rows[1].1 / rows[0].1);
    Ok(())
}

/// `--media ROWS`: Framerr's own instance (the fixture) with its media
/// library filled through Framerr's triggers, so the search index holds
/// every row: a default backup (which leaves the media tables out) against
/// `create --full`.
fn media(bin: &Path, rows: u64, runs: usize) -> Result {
    let dir = crate::tools::root().join("target/bench-media");
    let data = dir.join("data");
    let marker = dir.join("rows");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(&rows.to_string()) {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let fixtures = std::env::var_os("FRAMERR_FIXTURES")
            .map_or_else(|| crate::tools::root().join("../shared/fixtures"), PathBuf::from)
            .join("framerr-0.4.1/instance-plain");
        crate::run(Command::new("cp").arg("-r").arg(&fixtures).arg(&data))?;
        crate::run(Command::new("chmod").args(["-R", "u+w"]).arg(&data))?;
        eprintln!("adding {rows} media library rows ...");
        let script = r#"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
n = int(sys.argv[2])
c.executemany("INSERT INTO media_library(integration_instance_id, media_type, item_key, title, original_title, year, summary, genres, actors, director, rating, duration, added_at) VALUES ('plex-1', 'episode', ?, ?, ?, ?, ?, 'Drama, Comedy', ?, ?, ?, ?, ?)",
    ((f"/library/metadata/{i}", f"Episode {i} of a long running show", f"Original title {i}", 1990 + i % 35,
      f"In episode {i} the crew discovers something that changes everything they knew about the station and its history. " * 2,
      "Actor One, Actor Two, Actor Three", "A Director", (i % 100) / 10, 2_400_000, 1_700_000_000 + i) for i in range(n)))
c.commit()
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
"#;
        crate::run(Command::new("python3").arg("-c").arg(script).arg(data.join("framerr.db")).arg(rows.to_string()))?;
        std::fs::write(&marker, rows.to_string()).map_err(|e| e.to_string())?;
    }
    let db_size = std::fs::metadata(data.join("framerr.db")).map_err(|e| e.to_string())?.len();
    let env = [("BIN", bin), ("DATA", data.as_path()), ("OUT", dir.as_path())];
    let cases =
        [("framerr-backup create (default: media tables left out)", "lean"), ("framerr-backup create --full", "full")];
    println!();
    println!("Framerr 0.4.1 instance, {rows} media library rows, database {} MiB, {runs} runs each", db_size >> 20);
    println!("| command | median wall time | peak RSS | backup size |");
    println!("|---|---|---|---|");
    for (label, out) in cases {
        let full = if out == "full" { " --full" } else { "" };
        let script = format!(
            "rm -f \"$OUT/{out}.zip\" && \"$BIN\" --data-dir \"$DATA\" --config-dir /nonexistent create{full} --output \"$OUT/{out}.zip\""
        );
        let (secs, peak) = median_of(label, &script, &env, runs)?;
        let size = std::fs::metadata(dir.join(format!("{out}.zip"))).map_err(|e| e.to_string())?.len();
        let size = if size < 1 << 20 {
            format!("{} KiB", size >> 10)
        } else {
            format!("{:.1} MiB", size as f64 / (1 << 20) as f64)
        };
        println!("| {label} | {secs:.2} s | {} MiB | {size} |", peak / 1024);
    }
    Ok(())
}

/// `--s3`: a backup of the instance copied to a local S3-compatible server
/// (moto from `cargo xtask tools`): the create plus the multipart upload.
fn s3(bin: &Path, data: &Path, dir: &Path, runs: usize) -> Result {
    let tools = crate::tools::install_all()?;
    let venv = tools.python.parent().ok_or("no venv")?.to_path_buf();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| e.to_string())?
        .local_addr()
        .map_err(|e| e.to_string())?
        .port();
    let mut moto = Command::new(venv.join("moto_server"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed().as_secs() > 30 {
            let _ = moto.kill();
            return Err("moto did not start".into());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let endpoint = format!("http://127.0.0.1:{port}");
    let bucket = format!(
        "import boto3; boto3.client('s3', endpoint_url='{endpoint}', aws_access_key_id='k', aws_secret_access_key='s', region_name='us-east-1').create_bucket(Bucket='bench')"
    );
    crate::run(Command::new(&tools.python).arg("-c").arg(bucket))?;
    let url = format!("s3://bench/framerr?endpoint={endpoint}&allow_http=true&region=us-east-1");
    let script = format!(
        "rm -rf \"$DATA/backups\" && AWS_ACCESS_KEY_ID=k AWS_SECRET_ACCESS_KEY=s \"$BIN\" --data-dir \"$DATA\" --config-dir /nonexistent --destination '{url}' create --full"
    );
    let env: Vec<(&str, &Path)> = vec![("BIN", bin), ("DATA", data), ("OUT", dir)];
    let result = median_of("create + copy to S3", &script, &env, runs);
    let _ = moto.kill();
    let _ = moto.wait();
    let (secs, peak) = result?;
    println!("\n| command | median wall time | peak RSS |");
    println!("|---|---|---|");
    println!("| framerr-backup create, copied to S3 (moto on 127.0.0.1) | {secs:.2} s | {} MiB |", peak / 1024);
    Ok(())
}

/// Hostile archives for `--hostile`, each under 1 MiB, built around the
/// fixtures' Framerr backup.
const PY_HOSTILE: &str = r#"
import sys, zipfile, sqlite3, tempfile, os
src, out, kind = sys.argv[1], sys.argv[2], sys.argv[3]
d = tempfile.mkdtemp(); db = os.path.join(d, "framerr.db")
with zipfile.ZipFile(src) as z:
    z.extract("framerr.db", d); entries = {n: z.read(n) for n in z.namelist() if n != "framerr.db"}
c = sqlite3.connect(db)
def costly(nbytes):
    c.executescript("""CREATE TABLE costly (n INTEGER);
        WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < 20000) INSERT INTO costly SELECT x FROM r;
        PRAGMA writable_schema = ON;
        UPDATE sqlite_master SET sql = 'CREATE TABLE costly (n INTEGER CHECK (length(hex(zeroblob(BYTES))) > 0))' WHERE name = 'costly';
        PRAGMA writable_schema = OFF;""".replace("BYTES", str(nbytes)))
if kind == "check-huge": costly(300000000)
if kind in ("check-slow", "check-slow-1MiB"): costly(2000000)
if kind == "zeros":
    c.executescript("CREATE TABLE zeros (b BLOB); WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < 400) INSERT INTO zeros SELECT zeroblob(1000000) FROM r;")
c.commit(); c.close()
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    z.write(db, "framerr.db")
    for n, b in entries.items(): z.writestr(n, b)
    if kind == "check-slow-1MiB":
        z.writestr("custom-icons/padding.png", os.urandom(1000000 - os.path.getsize(out) - 4096), zipfile.ZIP_STORED)
"#;

/// `--hostile`: archives under 1 MiB that make their database's checks
/// expensive, decided by `verify` and `restore` (onto a copy of Framerr's
/// own instance), against the budgets of 10 s of CPU and 128 MiB of memory
/// (every process counted: the sandboxes too); then `verify` of the 1 GiB
/// bench backup, against `--baseline BIN` (an earlier release binary) when
/// given.
fn hostile(bin: &Path, baseline: Option<&Path>, data: &Path, dir: &Path, runs: usize) -> Result {
    let fixtures = crate::tools::root().join("../shared/fixtures/framerr-0.4.1");
    let source = fixtures.join("backups/framerr-manual-2026-11-26T22-17-29.zip");
    let work = dir.join("hostile");
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let instance = fixtures.join("instance-plain");
    let env: Vec<(&str, &Path)> = vec![("BIN", bin), ("WORK", &work), ("INSTANCE", &instance)];
    let fresh = "rm -rf \"$WORK/data\" && cp -r \"$INSTANCE\" \"$WORK/data\" && chmod -R u+w \"$WORK/data\"";
    let mut rows = Vec::new();
    for kind in ["check-huge", "check-slow", "check-slow-1MiB", "zeros"] {
        let zip = work.join(format!("{kind}.zip"));
        let out = Command::new("python3")
            .arg("-c")
            .arg(PY_HOSTILE)
            .args([source.as_os_str(), zip.as_os_str(), std::ffi::OsStr::new(kind)])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!("building {kind}: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let size = std::fs::metadata(&zip).map_err(|e| e.to_string())?.len();
        for verb in ["verify", "restore"] {
            let extra = if verb == "restore" { " --yes" } else { "" };
            let script = format!(
                "{fresh} && \"$BIN\" --data-dir \"$WORK/data\" --config-dir /nonexistent {verb} \"$WORK/{kind}.zip\"{extra}; echo $? > \"$WORK/rc\""
            );
            let (mut times, mut cpus, mut peak) = (Vec::new(), Vec::new(), 0);
            for i in 0..runs {
                let (secs, rss, cpu) = measure_cpu(&script, &env, true)?;
                eprintln!("{kind} {verb} run {}: {secs:.2} s, {cpu:.2} s CPU, peak RSS {} MiB", i + 1, rss / 1024);
                times.push(secs);
                cpus.push(cpu);
                peak = peak.max(rss);
            }
            let rc = std::fs::read_to_string(work.join("rc")).unwrap_or_default();
            let outcome = if rc.trim() == "0" { "accepted" } else { "refused" };
            rows.push((kind, size, verb, median(times), median(cpus), peak, outcome));
        }
    }
    println!("\nhostile archives, {runs} runs each (budget: 10 s of CPU, 128 MiB, every process counted)");
    println!("| archive | size | command | median wall time | median CPU | peak RSS | outcome | within budget |");
    println!("|---|---|---|---|---|---|---|---|");
    for (kind, size, verb, secs, cpu, rss, outcome) in &rows {
        let within = *cpu < 10.0 && *rss < 128 * 1024;
        println!(
            "| {kind} | {} KiB | {verb} | {secs:.2} s | {cpu:.2} s | {} MiB | {outcome} | {} |",
            size >> 10,
            rss / 1024,
            if within { "yes" } else { "NO" }
        );
    }

    // A genuine backup's checks: the 1 GiB bench instance.
    let create = "rm -rf \"$DATA/backups\" && \"$BIN\" --data-dir \"$DATA\" --config-dir /nonexistent create --full --output \"$OUT/ours.zip.tmp\" && mv \"$OUT/ours.zip.tmp\" \"$OUT/ours.zip\"";
    let env: Vec<(&str, &Path)> = vec![("BIN", bin), ("DATA", data), ("OUT", dir)];
    measure(create, &env)?;
    let verify = "\"$BIN\" --data-dir \"$DATA\" --config-dir /nonexistent verify \"$OUT/ours.zip\"";
    let mut genuine = vec![("this build", bin.to_path_buf())];
    if let Some(b) = baseline {
        genuine.push(("baseline", b.to_path_buf()));
    }
    let mut results = Vec::new();
    for (label, program) in &genuine {
        let env: Vec<(&str, &Path)> = vec![("BIN", program), ("DATA", data), ("OUT", dir)];
        let (mut times, mut cpus, mut peak) = (Vec::new(), Vec::new(), 0);
        for i in 0..runs {
            let (secs, rss, cpu) = measure_cpu(verify, &env, true)?;
            eprintln!("verify 1 GiB ({label}) run {}: {secs:.2} s, {cpu:.2} s CPU", i + 1);
            times.push(secs);
            cpus.push(cpu);
            peak = peak.max(rss);
        }
        results.push((*label, median(times), median(cpus), peak));
    }
    let db_size = std::fs::metadata(data.join("framerr.db")).map_err(|e| e.to_string())?.len();
    println!("\nverify of a genuine backup ({} MiB database), {runs} runs each", db_size >> 20);
    println!("| binary | median wall time | median CPU | peak RSS |");
    println!("|---|---|---|---|");
    for (label, secs, cpu, rss) in &results {
        println!("| {label} | {secs:.2} s | {cpu:.2} s | {} MiB |", rss / 1024);
    }
    if let [now, before] = &results[..] {
        println!("\nthis build / baseline: {:.2}x wall time, {:.2}x CPU", now.1 / before.1, now.2 / before.2);
    }
    Ok(())
}

/// The tables a lean backup leaves out (the spec's purge list, as
/// `backup-domain` has it; xtask does not depend on the workspace).
fn backup_domain_purge_list() -> Vec<&'static str> {
    vec![
        "media_library",
        "library_sync_status",
        "media_cache",
        "media_search_history",
        "sessions",
        "push_subscriptions",
        "sso_setup_tokens",
        "notifications",
        "service_monitor_history",
        "service_monitor_aggregates",
    ]
}
