//! The one conformance suite every [`BackupStore`] adapter runs, unchanged
//! (object_store's `integration.rs` pattern). Each check takes an empty
//! store; adapters call [`run_all`] from their own tests, against a real
//! folder or a real S3-compatible server.

use futures::io::{AsyncReadExt, AsyncWriteExt};
use time::macros::datetime;

use crate::error::StoreError;
use crate::kind::BackupKind;
use crate::name::{BackupFormat, BackupName};
use crate::ports::BackupStore;

/// Knobs where stores legitimately differ.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Size of the large object check; big enough to need several parts in
    /// a multipart upload.
    pub large_size: usize,
    /// Whether the store's no-clobber check is atomic against a concurrent
    /// commit of the same name. Real stores are (a hard link, S3's
    /// `If-None-Match`); some test servers (moto) check then write, so two
    /// racing commits may both succeed. Even then the object must be one
    /// upload whole, never a mix.
    pub atomic_create: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { large_size: 24 * 1024 * 1024 + 12_345, atomic_create: true }
    }
}

/// Bytes that differ at every offset, so a misplaced chunk is caught.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[i % 4] ^ seed).collect()
}

fn name(kind: BackupKind, second: u8, format: BackupFormat) -> BackupName {
    let at = datetime!(2026-11-26 03:00:00 UTC) + time::Duration::seconds(second as i64);
    BackupName::new(kind, at, format)
}

async fn put(store: &dyn BackupStore, name: &BackupName, data: &[u8]) -> Result<u64, StoreError> {
    let mut upload = store.create(name).await?;
    // Odd-sized writes, so adapters that buffer into parts see ragged input.
    for chunk in data.chunks(999_983) {
        upload.write_all(chunk).await.map_err(|e| StoreError::Other(e.to_string()))?;
    }
    Ok(upload.commit().await?.size)
}

async fn get(store: &dyn BackupStore, name: &BackupName) -> Result<Vec<u8>, StoreError> {
    let mut download = store.open(name).await?;
    let mut data = Vec::new();
    download.reader.read_to_end(&mut data).await.map_err(|e| StoreError::Other(e.to_string()))?;
    assert_eq!(download.size, data.len() as u64, "declared size of {name}");
    Ok(data)
}

async fn names(store: &dyn BackupStore) -> Vec<String> {
    let mut listed: Vec<String> = store.list().await.expect("list").iter().map(|b| b.name.to_string()).collect();
    listed.sort();
    listed
}

pub async fn run_all(store: &dyn BackupStore, options: Options) {
    put_get_list_delete(store).await;
    uncommitted_is_invisible(store).await;
    no_clobber(store).await;
    not_found(store).await;
    large_object(store, options).await;
    concurrent_put_same_name(store, options.atomic_create).await;
    replace_and_write_at(store).await;
    documents(store).await;
    assert!(names(store).await.is_empty(), "the checks clean up after themselves");
}

pub async fn put_get_list_delete(store: &dyn BackupStore) {
    let a = name(BackupKind::Manual, 1, BackupFormat::Plain);
    let b = name(BackupKind::Safety, 2, BackupFormat::Encrypted);
    let empty = name(BackupKind::Scheduled, 3, BackupFormat::Plain);
    assert_eq!(put(store, &a, b"alpha").await.expect("put a"), 5);
    assert_eq!(put(store, &b, &pattern(70_000, 1)).await.expect("put b"), 70_000);
    assert_eq!(put(store, &empty, b"").await.expect("put empty"), 0);
    let mut listed = store.list().await.expect("list");
    listed.sort_by(|x, y| x.name.cmp(&y.name));
    let got: Vec<(String, u64, BackupKind, bool)> =
        listed.iter().map(|s| (s.name.to_string(), s.size, s.name.kind(), s.name.is_encrypted())).collect();
    assert_eq!(
        got,
        [
            (a.to_string(), 5, BackupKind::Manual, false),
            (b.to_string(), 70_000, BackupKind::Safety, true),
            (empty.to_string(), 0, BackupKind::Scheduled, false),
        ]
    );
    // Dates come from the names.
    assert_eq!(listed[0].name.created_at(), Some(datetime!(2026-11-26 03:00:01 UTC)));
    assert_eq!(get(store, &a).await.expect("get a"), b"alpha");
    assert_eq!(get(store, &b).await.expect("get b"), pattern(70_000, 1));
    assert_eq!(get(store, &empty).await.expect("get empty"), b"");
    for n in [&a, &b, &empty] {
        store.delete(n).await.expect("delete");
    }
    assert!(names(store).await.is_empty());
}

pub async fn uncommitted_is_invisible(store: &dyn BackupStore) {
    let n = name(BackupKind::Manual, 10, BackupFormat::Plain);
    let mut upload = store.create(&n).await.expect("create");
    upload.write_all(&pattern(100_000, 2)).await.expect("write");
    assert!(names(store).await.is_empty(), "an upload in progress is listed");
    assert!(matches!(store.open(&n).await, Err(StoreError::NotFound(_))));
    upload.abort().await.expect("abort");
    assert!(names(store).await.is_empty(), "an aborted upload is listed");

    // Dropped without commit: an interrupted upload must not appear either.
    let mut upload = store.create(&n).await.expect("create");
    upload.write_all(&pattern(50_000, 3)).await.expect("write");
    drop(upload);
    assert!(names(store).await.is_empty(), "a dropped upload is listed");
    assert!(matches!(store.open(&n).await, Err(StoreError::NotFound(_))));
}

pub async fn no_clobber(store: &dyn BackupStore) {
    let n = name(BackupKind::Manual, 20, BackupFormat::Plain);
    put(store, &n, b"first").await.expect("put");
    let err = put(store, &n, b"second, longer").await.expect_err("second put of a name must fail");
    assert!(matches!(err, StoreError::AlreadyExists(_)), "{err:?}");
    assert_eq!(get(store, &n).await.expect("get"), b"first");
    store.delete(&n).await.expect("delete");
}

pub async fn not_found(store: &dyn BackupStore) {
    let n = name(BackupKind::Scheduled, 30, BackupFormat::Encrypted);
    assert!(matches!(store.open(&n).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.delete(&n).await, Err(StoreError::NotFound(_))));
}

pub async fn large_object(store: &dyn BackupStore, options: Options) {
    let n = name(BackupKind::Manual, 40, BackupFormat::Plain);
    let data = pattern(options.large_size, 4);
    assert_eq!(put(store, &n, &data).await.expect("put large"), data.len() as u64);
    assert!(get(store, &n).await.expect("get large") == data, "large object differs");
    store.delete(&n).await.expect("delete");
}

pub async fn concurrent_put_same_name(store: &dyn BackupStore, atomic_create: bool) {
    let n = name(BackupKind::Manual, 50, BackupFormat::Plain);
    let one = pattern(300_000, 5);
    let two = pattern(200_000, 6);
    let (r1, r2) = futures::future::join(put(store, &n, &one), put(store, &n, &two)).await;
    let stored = get(store, &n).await.expect("get");
    match (&r1, &r2) {
        (Ok(_), Err(StoreError::AlreadyExists(_))) => assert!(stored == one, "not the winner's whole content"),
        (Err(StoreError::AlreadyExists(_)), Ok(_)) => assert!(stored == two, "not the winner's whole content"),
        (Ok(_), Ok(_)) if !atomic_create => {
            assert!(stored == one || stored == two, "two racing commits left a mix");
        }
        other => panic!("exactly one concurrent put must win: {other:?}"),
    }
    store.delete(&n).await.expect("delete");
}

/// `commit_replacing` swaps a backup whole; `write_at`, where supported,
/// patches bytes already written.
pub async fn replace_and_write_at(store: &dyn BackupStore) {
    let n = name(BackupKind::Manual, 60, BackupFormat::Encrypted);
    put(store, &n, b"old content").await.expect("put");
    let mut upload = store.create(&n).await.expect("create");
    upload.write_all(b"new content, longer").await.expect("write");
    match upload.write_at(4, b"CONT").await {
        Ok(()) => {
            upload.commit_replacing().await.expect("replace");
            assert_eq!(get(store, &n).await.expect("get"), b"new CONTent, longer");
        }
        Err(StoreError::Unsupported(_)) => {
            upload.commit_replacing().await.expect("replace");
            assert_eq!(get(store, &n).await.expect("get"), b"new content, longer");
        }
        Err(e) => panic!("write_at: {e}"),
    }
    // Replacing where nothing was is a plain commit.
    store.delete(&n).await.expect("delete");
    let mut upload = store.create(&n).await.expect("create");
    upload.write_all(b"x").await.expect("write");
    upload.commit_replacing().await.expect("replace onto nothing");
    store.delete(&n).await.expect("delete");
}

/// Documents beside the backups: absent, written, replaced whole, never
/// listed as backups.
pub async fn documents(store: &dyn BackupStore) {
    assert_eq!(store.read_meta("pins").await.expect("read"), None);
    store.write_meta("pins", b"[\"a\"]").await.expect("write");
    store.write_meta("history", &pattern(40_000, 7)).await.expect("write");
    assert_eq!(store.read_meta("pins").await.expect("read").as_deref(), Some(&b"[\"a\"]"[..]));
    store.write_meta("pins", b"[]").await.expect("replace");
    assert_eq!(store.read_meta("pins").await.expect("read").as_deref(), Some(&b"[]"[..]));
    assert_eq!(store.read_meta("history").await.expect("read"), Some(pattern(40_000, 7)));
    assert!(names(store).await.is_empty(), "a document was listed as a backup");
}

#[cfg(test)]
mod tests {
    #[test]
    fn memory_store_conforms() {
        let store = crate::memory::MemoryStore::default();
        futures::executor::block_on(super::run_all(
            &store,
            super::Options { large_size: 3_000_000, ..super::Options::default() },
        ));
    }
}
