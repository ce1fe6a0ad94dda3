//! The S3 store passes the shared conformance suite against a real
//! S3-compatible server (moto) started on 127.0.0.1 by this test, installed
//! by `cargo xtask tools`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use backup_domain::conformance;
use backup_domain::ports::BackupStore;
use backup_e2e::Moto;
use backup_store_s3::{Credentials, S3Config, S3Store};

fn store(moto: &Moto, prefix: &str) -> S3Store {
    let mut config = S3Config::from_url(&moto.url("backups", prefix)).unwrap();
    // moto accepts any credentials; object_store needs some to sign with.
    config.credentials = Some(Credentials { key_id: "test".into(), secret: "test-secret".into() });
    assert!(!format!("{config:?}").contains("test-secret"));
    S3Store::new(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_conformance_suite() {
    let moto = Moto::start("backups");
    let store = store(&moto, "framerr/instance-1");
    // moto checks If-None-Match and then writes, so two racing commits of
    // one name can both succeed there (AWS S3 makes the check atomic). Our
    // S3 destinations only receive backups already committed to the local
    // primary, whose no-clobber commit is atomic, so they never race.
    let options = conformance::Options { atomic_create: false, ..conformance::Options::default() };
    conformance::run_all(&store, options).await;
    // No temporary objects left behind (aborted uploads never became objects).
    store.prepare().await.unwrap();
    assert!(store.list().await.unwrap().is_empty());
    // A recent temporary may belong to an upload in progress elsewhere:
    // prepare leaves it, and it is never listed.
    let key = "framerr/instance-1/.framerr-upload-1-2-framerr-manual-x";
    moto.put("backups", key, "part");
    store.prepare().await.unwrap();
    assert!(moto.objects("backups").0.iter().any(|(k, _)| k == key));
    assert!(store.list().await.unwrap().is_empty(), "a temporary was listed");
}
