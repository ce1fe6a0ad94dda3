//! The server keeps watch: a scheduled backup is verified in every
//! destination, failures (a backup, a copy, a verification, an overdue
//! schedule) reach ntfy, webhooks and healthchecks stubs on 127.0.0.1,
//! health says what is wrong, and `/metrics` parses as Prometheus text.
//! No secret of a notification URL appears anywhere.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use backup_e2e::{Instance, Server, Stub, python_ok};
use serde_json::{Value, json};

const TOKEN: &str = "watch-api-token";
const SCRAPER: &str = "watch-scraper-token";
const SECRET: &str = "webhook-secret-7f3a";

fn serve(inst: &Instance, args: &[&str]) -> Server {
    let mut all = vec!["serve", "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let mut command = inst.command(&all);
    command.env("FRAMERR_BACKUP_TOKEN", TOKEN).env("FRAMERR_BACKUP_METRICS_TOKEN", SCRAPER).env("FRAMERR_LOG", "info");
    Server::spawn(command)
}

fn get(server: &Server, path: &str, token: &str) -> (u16, String) {
    let resp =
        reqwest::blocking::Client::new().get(format!("{}{path}", server.base)).bearer_auth(token).send().unwrap();
    (resp.status().as_u16(), resp.text().unwrap())
}

fn post(server: &Server, path: &str) -> (u16, Value) {
    let resp = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
        .post(format!("{}{path}", server.base))
        .bearer_auth(TOKEN)
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.json().unwrap_or(Value::Null))
}

/// Waits until `check` holds for the JSON at `path`.
fn wait_for(server: &Server, path: &str, check: impl Fn(&Value) -> bool) -> Value {
    let end = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = get(server, path, TOKEN);
        let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if status == 200 && check(&json) {
            return json;
        }
        assert!(std::time::Instant::now() < end, "timed out waiting on {path}: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Parses `/metrics` with the Prometheus project's own Python parser and
/// returns {family: [[labels, value], ...]}.
fn parse_metrics(text: &str) -> Value {
    let path = std::env::temp_dir().join(format!("metrics-{}.txt", std::process::id()));
    std::fs::write(&path, text).unwrap();
    let out = python_ok(
        "import sys,json\nfrom prometheus_client.parser import text_string_to_metric_families\nfams={}\nfor f in text_string_to_metric_families(open(sys.argv[1]).read()):\n    assert f.documentation, f.name\n    fams[f.name]=[[s.labels,s.value] for s in f.samples]\nprint(json.dumps(fams))",
        &[&path],
    );
    serde_json::from_str(&out).unwrap()
}

fn sample(metrics: &Value, family: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics[family]
        .as_array()?
        .iter()
        .find_map(|s| labels.iter().all(|(k, v)| s[0][*k] == *v).then(|| s[1].as_f64().unwrap()))
}

#[test]
fn a_scheduled_backup_is_verified_everywhere_and_failures_are_told() {
    let inst = Instance::from_fixture();
    let (hook, hc) = (Stub::start(&[]), Stub::start(&[]));
    let nas = inst.dir.path().join("nas");
    let hook_url = format!("{}/hook?token={SECRET}&on=success,failure", hook.base);
    let hc_url = format!("{}/ping/{SECRET}", hc.base.replace("http://", "healthchecks+http://"));
    // The fixture's schedule is on and never ran: the server catches up at
    // start, then verifies the backup in both places.
    let server = serve(
        &inst,
        &["--destination", &format!("file://{}", nas.display()), "--notify", &hook_url, "--notify", &hc_url],
    );
    let verified = wait_for(&server, "/api/backup/verification", |v| v.as_array().is_some_and(|a| a.len() == 2));
    for v in verified.as_array().unwrap() {
        assert_eq!(v["outcome"], "passed", "{verified}");
        assert!(v["filename"].as_str().unwrap().starts_with("framerr-scheduled-"));
    }
    let pings: Vec<String> = hc.wait_for(2, Duration::from_secs(10)).iter().map(|r| r.path.clone()).collect();
    assert_eq!(pings, [format!("/ping/{SECRET}/start"), format!("/ping/{SECRET}")]);
    let got = hook.wait_for(1, Duration::from_secs(10));
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["event"], "backup-succeeded");
    // What the server made carries no session token.
    let made = inst.backups().join(body["backup"].as_str().unwrap());
    let db = inst.dir.path().join("made.db");
    python_ok(
        "import sys,zipfile\nopen(sys.argv[2],'wb').write(zipfile.ZipFile(sys.argv[1]).read('framerr.db'))",
        &[&made, &db],
    );
    assert_eq!(backup_e2e::count(&db, "sessions"), 0);
    assert!(backup_e2e::count(&inst.db(), "sessions") > 0);

    // The NAS copy rots: "verify now" finds it, health and metrics say so,
    // the webhook and the heartbeat hear of it.
    let name = verified[0]["filename"].as_str().unwrap().to_owned();
    let copy = nas.join(&name);
    let mut bytes = std::fs::read(&copy).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&copy, bytes).unwrap();
    let (status, results) = post(&server, "/api/backup/verify");
    assert_eq!(status, 200, "{results}");
    let outcomes: Vec<&str> = results.as_array().unwrap().iter().map(|v| v["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["passed", "failed"], "{results}");
    let failed = hook.wait_for(2, Duration::from_secs(10));
    let notice: Value = serde_json::from_slice(&failed[1].body).unwrap();
    assert_eq!((&notice["event"], &notice["backup"]), (&json!("verification-failed"), &json!(name)), "{notice}");
    assert!(notice["destination"].as_str().unwrap().ends_with("/nas"));
    assert!(notice["error"].as_str().unwrap().len() > 5);
    assert_eq!(hc.wait_for(3, Duration::from_secs(10))[2].path, format!("/ping/{SECRET}/fail"));
    let (_, health) = get(&server, "/api/backup/health", TOKEN);
    let health: Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["ok"], false, "{health}");
    assert!(health["problems"][0].as_str().unwrap().contains("failed verification"), "{health}");

    // Metrics, parsed by Prometheus's own parser; the scraper's token reads
    // them and nothing else.
    let (status, text) = get(&server, "/metrics", SCRAPER);
    assert_eq!(status, 200, "{text}");
    let metrics = parse_metrics(&text);
    let nas_label = format!("file://{}", nas.display());
    assert_eq!(sample(&metrics, "framerr_backup_verification_ok", &[("destination", &nas_label)]), Some(0.0));
    assert_eq!(
        sample(&metrics, "framerr_backup_backups", &[("destination", &nas_label), ("type", "scheduled")]),
        Some(1.0)
    );
    assert!(
        sample(&metrics, "framerr_backup_backups_bytes", &[("destination", &nas_label), ("type", "scheduled")])
            .unwrap()
            > 1000.0
    );
    assert!(
        sample(&metrics, "framerr_backup_last_success_timestamp_seconds", &[("type", "scheduled")]).unwrap() > 1.7e9
    );
    assert!(sample(&metrics, "framerr_backup_last_size_bytes", &[("type", "scheduled")]).unwrap() > 1000.0);
    assert_eq!(sample(&metrics, "framerr_backup_schedule_overdue", &[]), Some(0.0));
    assert_eq!(sample(&metrics, "framerr_backup_failures", &[]), Some(0.0), "counters parse without _total");
    assert_eq!(get(&server, "/metrics", TOKEN).0, 200);
    assert_eq!(get(&server, "/metrics", "wrong").0, 401);
    assert_eq!(get(&server, "/api/backup/list", SCRAPER).0, 401);

    // The secret of the notification URLs is nowhere to be seen.
    let shown = format!("{health}{text}{}", server.log());
    assert!(!shown.contains(SECRET), "a notification secret leaked");
    assert!(health["notifications"]["targets"].to_string().contains("/…"), "{health}");
}

#[test]
fn a_failing_scheduled_backup_and_a_dead_destination_are_told_and_counted() {
    let inst = Instance::from_fixture();
    let hook = Stub::start(&[]);
    // The backups folder is a file: every backup fails. The destination is
    // under /dev/null: every copy would fail too.
    // The last scheduled backup was long ago: overdue.
    python_ok(
        "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nc.execute(\"UPDATE system_config SET value=json_set(value,'$.lastBackup','2020-01-01T03:00:00.000Z') WHERE key='backupSchedule'\")\nc.commit()",
        &[&inst.db()],
    );
    let blocked = inst.dir.path().join("not-a-folder");
    std::fs::write(&blocked, b"x").unwrap();
    let server = serve(
        &inst,
        &["--backups-dir", blocked.to_str().unwrap(), "--notify", &format!("{}/hook?token={SECRET}", hook.base)],
    );
    let got = hook.wait_for(2, Duration::from_secs(30));
    let events: Vec<String> = got
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["event"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(events, ["backup-failed", "schedule-overdue"]);
    let (_, text) = get(&server, "/metrics", SCRAPER);
    let metrics = parse_metrics(&text);
    assert_eq!(sample(&metrics, "framerr_backup_failures", &[]), Some(1.0));
    assert_eq!(sample(&metrics, "framerr_backup_schedule_overdue", &[]), Some(1.0));
    let health: Value = serde_json::from_str(&get(&server, "/api/backup/health", TOKEN).1).unwrap();
    assert_eq!(health["ok"], false);
    drop(server);

    // A working backups folder and a destination that cannot be written.
    let inst = Instance::from_fixture();
    let hook = Stub::start(&[]);
    let server = serve(
        &inst,
        &["--destination", "file:///dev/null/backups", "--notify", &format!("{}/hook?token={SECRET}", hook.base)],
    );
    let got = hook.wait_for(1, Duration::from_secs(30));
    let notice: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!((&notice["event"], &notice["destination"]), (&json!("copy-failed"), &json!("file:///dev/null/backups")));
    let (_, text) = get(&server, "/metrics", SCRAPER);
    let metrics = parse_metrics(&text);
    assert_eq!(
        sample(&metrics, "framerr_backup_copy_failures", &[("destination", "file:///dev/null/backups")]),
        Some(1.0)
    );
    assert!(!server.log().contains(SECRET));
}

#[test]
fn a_cron_scheduled_backup_is_told_and_its_notices_are_sent_before_the_command_exits() {
    let inst = Instance::from_fixture();
    let hc = Stub::start(&[]);
    let hook = Stub::start(&[500]);
    let hc_url = format!("{}/ping/{SECRET}", hc.base.replace("http://", "healthchecks+http://"));
    let hook_url = format!("{}/hook?token={SECRET}&on=success", hook.base);
    let out = inst.run(&["create", "--type", "scheduled", "--json", "--notify", &hc_url, "--notify", &hook_url]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Delivered by the time the command returned: no waiting here.
    let pings: Vec<String> = hc.received().iter().map(|r| r.path.clone()).collect();
    assert_eq!(pings, [format!("/ping/{SECRET}/start"), format!("/ping/{SECRET}")]);
    let got = hook.received();
    assert_eq!(got.len(), 2, "a 500 is retried");
    assert_eq!(serde_json::from_slice::<Value>(&got[1].body).unwrap()["event"], "backup-succeeded");
    // A scheduled run records lastBackup, as the server's would.
    let schedule = backup_e2e::query(&inst.db(), "SELECT value FROM system_config WHERE key = 'framerrBackupSchedule'");
    assert!(schedule.to_string().contains("lastBackup"), "{schedule}");
    // Secrets stay out of what the command printed.
    assert!(!String::from_utf8_lossy(&out.stderr).contains(SECRET));
    // A bad notification URL is refused before anything runs, without its secret.
    let err = inst.fails(&["create", "--notify", &format!("gopher://host/{SECRET}")]);
    assert!(err.contains("invalid notification URL") && !err.contains(SECRET), "{err}");
}
