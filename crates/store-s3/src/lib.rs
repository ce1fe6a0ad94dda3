//! The `BackupStore` port on S3-compatible object storage.
//!
//! Complete or absent, no clobbering: a backup is uploaded (multipart, every
//! part but the last of the same size) under a hidden temporary key, then
//! copied server-side to its final key with `If-None-Match: *`
//! (object_store's `copy_if_not_exists` in multipart mode), so the final key
//! appears whole or not at all, and never over another backup. A failed or
//! dropped upload is aborted; its parts never become an object. Temporary
//! keys are never listed, and `prepare` removes stale ones.
//!
//! The server-side copy is a single part, so one backup can be at most
//! 5 GiB on AWS S3 (the UploadPartCopy limit).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use futures_io::AsyncWrite;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, S3CopyIfNotExists};
use object_store::path::Path as Key;
use object_store::{ClientOptions, MultipartUpload, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};

use backup_domain::ports::{BackupStore, Download, Place, StoredBackup, Upload};
use backup_domain::{BackupName, StoreError};
use backup_fsutil::temp::UPLOAD_PREFIX;
use backup_fsutil::temporary_name;

/// Every multipart part but the last has this size (R2 and others reject
/// uneven parts); S3's minimum is 5 MiB.
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts uploading at once; memory is about (this + 1) x PART_SIZE.
const PARTS_IN_FLIGHT: usize = 2;

/// Where a bucket is and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: String,
    pub allow_http: bool,
    pub virtual_hosted: bool,
    /// Overrides `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
    pub credentials: Option<Credentials>,
    /// `credentials=instance`: without keys in the environment, the
    /// machine's cloud role from the instance metadata service
    /// (169.254.169.254). Otherwise that service is never asked.
    pub instance_credentials: bool,
}

/// An access key; the secret never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub key_id: String,
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("key_id", &self.key_id).field("secret", &"[redacted]").finish()
    }
}

/// A destination URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid S3 destination: {0}")]
pub struct ConfigError(pub String);

impl S3Config {
    /// `s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1&allow_http=true&addressing=path|virtual`.
    /// Credentials never come from the URL: `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY` (and the other usual AWS variables).
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        let rest = url.strip_prefix("s3://").ok_or_else(|| ConfigError("the URL must start with s3://".into()))?;
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
        if bucket.is_empty() || bucket.contains('@') {
            return Err(ConfigError("a bucket name is required (and credentials do not belong in the URL)".into()));
        }
        let mut config = S3Config {
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
            endpoint: None,
            region: "us-east-1".into(),
            allow_http: false,
            virtual_hosted: false,
            credentials: None,
            instance_credentials: false,
        };
        // Values are %-decoded, as in any URL query; the checks below see
        // what object_store would.
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "endpoint" => config.endpoint = Some(v.into_owned()),
                "region" => config.region = v.into_owned(),
                "allow_http" => config.allow_http = v == "true",
                "addressing" => config.virtual_hosted = v == "virtual",
                "credentials" => match &*v {
                    "instance" => config.instance_credentials = true,
                    "env" => config.instance_credentials = false,
                    _ => {
                        return Err(ConfigError(
                            "credentials is env (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, the default) or instance (the machine's cloud role)"
                                .into(),
                        ));
                    }
                },
                other => return Err(ConfigError(format!("unknown option {other:?}"))),
            }
        }
        // object_store panics on what is not a valid host or URI: check here.
        let name_like = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || b".-_".contains(&c));
        if !name_like(&config.bucket) {
            return Err(ConfigError("a bucket name is letters, digits, '.', '-' and '_'".into()));
        }
        if !name_like(&config.region) {
            return Err(ConfigError("a region is letters, digits, '.', '-' and '_' (us-east-1)".into()));
        }
        if let Some(endpoint) = &config.endpoint {
            // Never repeated in the error: it may carry what it must not.
            let parsed = url::Url::parse(endpoint).ok().filter(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host().is_some()
                    && u.query().is_none()
                    && u.fragment().is_none()
            });
            let Some(parsed) = parsed else {
                return Err(ConfigError(
                    "the endpoint must be an http:// or https:// URL with a host (endpoint=http://nas.local:9000)"
                        .into(),
                ));
            };
            // Credentials in the endpoint would reach logs and listings.
            if !parsed.username().is_empty() || parsed.password().is_some() {
                return Err(ConfigError(
                    "credentials do not belong in the endpoint URL: use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                        .into(),
                ));
            }
            if parsed.scheme() == "http" && !config.allow_http {
                return Err(ConfigError("a plain http:// endpoint needs allow_http=true".into()));
            }
        }
        Ok(config)
    }

    /// What this bucket and prefix are, however the URL spells them: the
    /// endpoint normalized (case, default port, trailing `/`), the prefix
    /// without empty segments (object keys never have them here).
    pub fn place(&self) -> Place {
        let endpoint = self.endpoint.as_ref().map(|e| match url::Url::parse(e) {
            Ok(u) => u.as_str().trim_end_matches('/').to_owned(),
            Err(_) => e.trim_end_matches('/').to_owned(),
        });
        let prefix: Vec<&str> = self.prefix.split('/').filter(|p| !p.is_empty()).collect();
        Place::Objects { endpoint, bucket: self.bucket.clone(), prefix: prefix.join("/") }
    }

    /// The URL back, for logs and listings: never any credential.
    pub fn describe(&self) -> String {
        let mut out = format!("s3://{}/{}", self.bucket, self.prefix);
        if let Some(e) = &self.endpoint {
            out.push_str(&format!(" (endpoint {e})"));
        }
        out
    }
}

/// Whether the builder has credentials that need no instance metadata:
/// keys (from `credentials` or the environment), a web identity, a
/// container's credentials, or no signing at all (`AWS_SKIP_SIGNATURE`).
fn has_credentials(builder: &AmazonS3Builder) -> bool {
    let set = |key: AmazonS3ConfigKey| builder.get_config_value(&key).is_some_and(|v| !v.trim().is_empty());
    set(AmazonS3ConfigKey::AccessKeyId)
        || set(AmazonS3ConfigKey::SecretAccessKey)
        || (set(AmazonS3ConfigKey::WebIdentityTokenFile) && set(AmazonS3ConfigKey::RoleArn))
        || set(AmazonS3ConfigKey::ContainerCredentialsRelativeUri)
        || (set(AmazonS3ConfigKey::ContainerCredentialsFullUri)
            && set(AmazonS3ConfigKey::ContainerAuthorizationTokenFile))
        || builder.get_config_value(&AmazonS3ConfigKey::SkipSignature).is_some_and(|v| v == "true")
}

/// How long one request to the store may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct S3Store {
    store: Arc<AmazonS3>,
    config: S3Config,
}

fn map_err(what: &str, e: object_store::Error) -> StoreError {
    match e {
        object_store::Error::NotFound { .. } => StoreError::NotFound(what.to_owned()),
        object_store::Error::AlreadyExists { .. } => StoreError::AlreadyExists(what.to_owned()),
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
            StoreError::PermissionDenied(what.to_owned())
        }
        other => StoreError::Unavailable(format!("{what}: {other}")),
    }
}

impl S3Store {
    pub fn new(config: S3Config) -> Result<Self, ConfigError> {
        let mut builder = AmazonS3Builder::from_env()
            // A destination that accepts connections and never answers must
            // fail a backup's copy in minutes, not hold it for ever: 30 s
            // per request (object_store's default, said here on purpose),
            // and retries for at most a minute, not ten over three. (First:
            // the client options also carry `allow_http`.)
            .with_client_options(
                ClientOptions::default().with_timeout(REQUEST_TIMEOUT).with_connect_timeout(Duration::from_secs(5)),
            )
            .with_retry(RetryConfig { max_retries: 3, retry_timeout: Duration::from_secs(60), ..Default::default() })
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_allow_http(config.allow_http)
            .with_virtual_hosted_style_request(config.virtual_hosted)
            .with_copy_if_not_exists(S3CopyIfNotExists::Multipart);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(c) = &config.credentials {
            builder = builder.with_access_key_id(&c.key_id).with_secret_access_key(&c.secret);
        }
        if !config.instance_credentials && !has_credentials(&builder) {
            // object_store would ask the instance metadata service, a
            // request to 169.254.169.254 nobody asked for (and, on a
            // cloud machine, credentials nobody meant for this).
            return Err(ConfigError(format!(
                "no credentials for {}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or add credentials=instance to the URL to use this machine's cloud role (the instance metadata service)",
                config.describe()
            )));
        }
        let store = builder.build().map_err(|e| ConfigError(e.to_string()))?;
        Ok(S3Store { store: Arc::new(store), config })
    }

    fn key(&self, file: &str) -> Key {
        if self.config.prefix.is_empty() {
            Key::from(file)
        } else {
            Key::from(format!("{}/{file}", self.config.prefix))
        }
    }

    fn prefix(&self) -> Option<Key> {
        (!self.config.prefix.is_empty()).then(|| Key::from(self.config.prefix.as_str()))
    }
}

#[async_trait]
impl BackupStore for S3Store {
    fn describe(&self) -> String {
        self.config.describe()
    }

    fn place(&self) -> Place {
        self.config.place()
    }

    /// Removes temporary objects that interrupted uploads left (a crash
    /// between the upload and the copy). Only those over a day old: another
    /// process may be uploading to the same prefix right now.
    async fn prepare(&self) -> Result<(), StoreError> {
        let cutoff = chrono_cutoff();
        let mut listing = self.store.list(self.prefix().as_ref());
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| map_err(&self.describe(), e))?;
            let temporary = meta.location.filename().is_some_and(|f| f.starts_with(UPLOAD_PREFIX));
            if temporary && meta.last_modified.timestamp() < cutoff {
                let _ = self.store.delete(&meta.location).await;
            }
        }
        Ok(())
    }

    async fn list(&self) -> Result<Vec<StoredBackup>, StoreError> {
        let result =
            self.store.list_with_delimiter(self.prefix().as_ref()).await.map_err(|e| map_err(&self.describe(), e))?;
        Ok(result
            .objects
            .into_iter()
            .filter_map(|meta| {
                let name = BackupName::parse(meta.location.filename()?).ok()?;
                Some(StoredBackup { name, size: meta.size })
            })
            .collect())
    }

    async fn create(&self, name: &BackupName) -> Result<Box<dyn Upload>, StoreError> {
        let temp = self.key(&temporary_name(UPLOAD_PREFIX, &name.stem()));
        let upload = self.store.put_multipart(&temp).await.map_err(|e| map_err(temp.as_ref(), e))?;
        Ok(Box::new(S3Upload {
            store: self.store.clone(),
            upload: Some(upload),
            buffer: Vec::with_capacity(PART_SIZE),
            in_flight: Vec::new(),
            temp,
            dest: self.key(&name.to_string()),
            name: name.clone(),
            size: 0,
        }))
    }

    async fn open(&self, name: &BackupName) -> Result<Download, StoreError> {
        let key = self.key(&name.to_string());
        let result = self.store.get(&key).await.map_err(|e| map_err(&name.to_string(), e))?;
        let size = result.meta.size;
        let stream = result.into_stream().map_err(|e| io::Error::other(e.to_string()));
        Ok(Download { size, reader: Box::new(stream.into_async_read()) })
    }

    async fn delete(&self, name: &BackupName) -> Result<(), StoreError> {
        let key = self.key(&name.to_string());
        self.store.head(&key).await.map_err(|e| map_err(&name.to_string(), e))?;
        self.store.delete(&key).await.map_err(|e| map_err(&name.to_string(), e))
    }

    async fn read_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let object = self.key(&backup_domain::ports::document_name(key)?);
        match self.store.get(&object).await {
            Ok(result) => {
                // Documents are small; a large one is not ours.
                if result.meta.size > 16 << 20 {
                    return Err(StoreError::Other(format!("{object} is too large for a document")));
                }
                let bytes = result.bytes().await.map_err(|e| map_err(object.as_ref(), e))?;
                Ok(Some(bytes.to_vec()))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(map_err(object.as_ref(), e)),
        }
    }

    /// A single PUT: S3 replaces an object atomically.
    async fn write_meta(&self, key: &str, data: &[u8]) -> Result<(), StoreError> {
        let object = self.key(&backup_domain::ports::document_name(key)?);
        self.store
            .put(&object, PutPayload::from(data.to_vec()))
            .await
            .map(|_| ())
            .map_err(|e| map_err(object.as_ref(), e))
    }
}

/// Unix seconds a day ago.
fn chrono_cutoff() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    now - 86_400
}

struct S3Upload {
    store: Arc<AmazonS3>,
    upload: Option<Box<dyn MultipartUpload>>,
    buffer: Vec<u8>,
    in_flight: Vec<BoxFuture<'static, object_store::Result<()>>>,
    temp: Key,
    dest: Key,
    name: BackupName,
    size: u64,
}

impl S3Upload {
    /// Drives part uploads until fewer than `limit` are in flight.
    fn poll_parts(&mut self, cx: &mut Context<'_>, limit: usize) -> Poll<io::Result<()>> {
        while self.in_flight.len() >= limit.max(1) || (limit == 0 && !self.in_flight.is_empty()) {
            let mut progressed = false;
            let mut i = 0;
            while i < self.in_flight.len() {
                match self.in_flight[i].as_mut().poll(cx) {
                    Poll::Ready(Ok(())) => {
                        drop(self.in_flight.swap_remove(i));
                        progressed = true;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(io::Error::other(e.to_string()))),
                    Poll::Pending => i += 1,
                }
            }
            if !progressed {
                return Poll::Pending;
            }
        }
        Poll::Ready(Ok(()))
    }

    fn send_part(&mut self) -> io::Result<()> {
        let upload = self.upload.as_mut().ok_or_else(|| io::Error::other("upload finished"))?;
        let part = std::mem::replace(&mut self.buffer, Vec::with_capacity(PART_SIZE));
        self.in_flight.push(upload.put_part(PutPayload::from(part)));
        Ok(())
    }

    async fn finish(&mut self) -> Result<(), StoreError> {
        let what = self.name.to_string();
        futures::future::poll_fn(|cx| self.poll_parts(cx, 0))
            .await
            .map_err(|e| StoreError::Unavailable(format!("{what}: {e}")))?;
        if !self.buffer.is_empty() || self.size == 0 {
            self.send_part().map_err(|e| StoreError::Other(e.to_string()))?;
            futures::future::poll_fn(|cx| self.poll_parts(cx, 0))
                .await
                .map_err(|e| StoreError::Unavailable(format!("{what}: {e}")))?;
        }
        let mut upload = self.upload.take().ok_or_else(|| StoreError::Other("upload finished".into()))?;
        if let Err(e) = upload.complete().await {
            let _ = upload.abort().await;
            return Err(map_err(&what, e));
        }
        Ok(())
    }

    async fn publish(mut self: Box<Self>, replace: bool) -> Result<StoredBackup, StoreError> {
        let what = self.name.to_string();
        self.finish().await?;
        let copied = if replace {
            self.store.copy(&self.temp, &self.dest).await
        } else {
            self.store.copy_if_not_exists(&self.temp, &self.dest).await
        };
        let _ = self.store.delete(&self.temp).await;
        copied.map_err(|e| map_err(&what, e))?;
        Ok(StoredBackup { name: self.name.clone(), size: self.size })
    }
}

impl Drop for S3Upload {
    fn drop(&mut self) {
        // Not completed: abort, so the parts never become an object and no
        // orphan multipart upload is left (best effort, in the background).
        if let Some(mut upload) = self.upload.take()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(async move {
                let _ = upload.abort().await;
            });
        }
    }
}

impl AsyncWrite for S3Upload {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.buffer.len() >= PART_SIZE {
            ready!(this.poll_parts(cx, PARTS_IN_FLIGHT))?;
            this.send_part()?;
        }
        let take = (PART_SIZE - this.buffer.len()).min(data.len());
        this.buffer.extend_from_slice(&data[..take]);
        this.size += take as u64;
        Poll::Ready(Ok(take))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Parts are fixed-size: a flush cannot send a short one; it waits
        // for the parts already sent.
        self.poll_parts(cx, 0)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

#[async_trait]
impl Upload for S3Upload {
    async fn commit(self: Box<Self>) -> Result<StoredBackup, StoreError> {
        self.publish(false).await
    }

    async fn commit_replacing(self: Box<Self>) -> Result<StoredBackup, StoreError> {
        self.publish(true).await
    }

    async fn abort(mut self: Box<Self>) -> Result<(), StoreError> {
        if let Some(mut upload) = self.upload.take() {
            upload.abort().await.map_err(|e| map_err(&self.name.to_string(), e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let c = S3Config::from_url(
            "s3://bucket/some/prefix/?endpoint=http://127.0.0.1:9000&region=eu-west-1&allow_http=true",
        )
        .unwrap();
        assert_eq!((c.bucket.as_str(), c.prefix.as_str(), c.region.as_str()), ("bucket", "some/prefix", "eu-west-1"));
        assert!(c.allow_http && !c.virtual_hosted);
        assert_eq!(c.describe(), "s3://bucket/some/prefix (endpoint http://127.0.0.1:9000)");
        assert!(S3Config::from_url("s3://b?addressing=virtual").unwrap().virtual_hosted);
        assert!(!c.instance_credentials);
        assert!(S3Config::from_url("s3://b?credentials=instance").unwrap().instance_credentials);
        assert!(!S3Config::from_url("s3://b?credentials=env").unwrap().instance_credentials);
        // One place, however written.
        let place = |url: &str| S3Config::from_url(url).unwrap().place();
        assert_eq!(
            place("s3://b/p/q?endpoint=HTTP://NAS.local:80/&allow_http=true"),
            place("s3://b//p//q/?endpoint=http://nas.local&allow_http=true&region=x")
        );
        assert_ne!(place("s3://b/p"), place("s3://b/p/q"));
        assert_ne!(place("s3://b/p"), place("s3://b/p?endpoint=https://h"));
        for bad in [
            "http://x",
            "s3://",
            "s3://key:secret@bucket/x",
            "s3://b?endpoint=http://h",
            "s3://b?colour=red",
            "s3://b?credentials=key:secret",
            // Each of these made object_store panic when first used.
            "s3://b?endpoint=nas.local:9000&allow_http=true",
            "s3://b?endpoint=foo",
            "s3://b?endpoint=http://[::1&allow_http=true",
            "s3://b?endpoint=http://h:99999&allow_http=true",
            "s3://b?endpoint=ftp://h",
            "s3://b?endpoint=https://h/?x=1",
            "s3://b?region=eu west",
            "s3://b c/x",
            "s3://b%2Fc/x",
        ] {
            assert!(S3Config::from_url(bad).is_err(), "{bad}");
        }
        let c = S3Config::from_url("s3://b?endpoint=http%3A%2F%2F127.0.0.1%3A9000&allow_http=true").unwrap();
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        // Credentials in an endpoint are refused, and never repeated.
        for bad in [
            "s3://b?endpoint=http://KEY:SECRET@127.0.0.1:9000&allow_http=true",
            "s3://b?endpoint=https://KEY@minio.lan",
            "s3://b?endpoint=http%3A%2F%2FKEY%3ASECRET%40127.0.0.1%3A9&allow_http=true",
        ] {
            let err = S3Config::from_url(bad).unwrap_err().to_string();
            assert!(err.contains("credentials") && !err.contains("KEY:SECRET") && !err.contains("KEY@"), "{err}");
        }
    }
}
