//! The S3 store passes the shared conformance suite against a real
//! S3-compatible server (moto) started on 127.0.0.1 by this test, installed
//! by `cargo xtask tools`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use backup_domain::conformance;
use backup_domain::ports::BackupStore;
use backup_store_s3::{Credentials, S3Config, S3Store};

struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn venv_bin(tool: &str) -> PathBuf {
    let python = std::env::var_os("FRAMERR_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/tools/venv/bin/python"));
    python.parent().unwrap().join(tool)
}

/// Starts moto on a free loopback port and creates `bucket`.
fn moto(bucket: &str) -> Moto {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = venv_bin("moto_server");
    assert!(server.exists(), "{} is missing: run `cargo xtask tools`", server.display());
    let child = Command::new(server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let endpoint = format!("http://127.0.0.1:{port}");
    let moto = Moto { child, endpoint };
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "moto did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let script = format!(
        "import boto3; boto3.client('s3', endpoint_url='{}', aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1').create_bucket(Bucket='{bucket}')",
        moto.endpoint
    );
    let ok = Command::new(venv_bin("python")).arg("-c").arg(script).status().unwrap();
    assert!(ok.success(), "cannot create the bucket");
    moto
}

fn store(moto: &Moto, prefix: &str) -> S3Store {
    let url = format!("s3://backups/{prefix}?endpoint={}&allow_http=true&region=us-east-1", moto.endpoint);
    let mut config = S3Config::from_url(&url).unwrap();
    // moto accepts any credentials; object_store needs some to sign with.
    config.credentials = Some(Credentials { key_id: "test".into(), secret: "test-secret".into() });
    assert!(!format!("{config:?}").contains("test-secret"));
    S3Store::new(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_conformance_suite() {
    let moto = moto("backups");
    let store = store(&moto, "framerr/instance-1");
    conformance::run_all(&store, conformance::Options::default()).await;
    // No temporary objects left behind (aborted uploads never became objects).
    store.prepare().await.unwrap();
    assert!(store.list().await.unwrap().is_empty());
    // A recent temporary may belong to an upload in progress elsewhere:
    // prepare leaves it.
    let key = "framerr/instance-1/.framerr-upload-1-2-framerr-manual-x";
    let boto = |code: &str| {
        let script = format!(
            "import boto3; s3 = boto3.client('s3', endpoint_url='{}', aws_access_key_id='t', aws_secret_access_key='t', region_name='us-east-1'); {code}",
            moto.endpoint
        );
        let out = Command::new(venv_bin("python")).arg("-c").arg(script).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    boto(&format!("s3.put_object(Bucket='backups', Key='{key}', Body=b'part')"));
    store.prepare().await.unwrap();
    let keys = boto("print([o['Key'] for o in s3.list_objects_v2(Bucket='backups').get('Contents', [])])");
    assert!(keys.contains(key), "{keys}");
    assert!(store.list().await.unwrap().is_empty(), "a temporary was listed");
}
