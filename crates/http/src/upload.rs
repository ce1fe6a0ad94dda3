//! Uploaded backups: the multipart field `backup`, streamed into scratch
//! space with a size limit, never held in memory.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Multipart;
use axum::http::StatusCode;
use futures::{Stream, TryStreamExt};
use tokio_util::compat::TokioAsyncReadCompatExt;
use tokio_util::io::StreamReader;

use backup_domain::Password;
use backup_domain::file::BackupFile;

use crate::{ApiError, ApiResult, AppState};

/// Why the upload stream stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopped {
    TooLarge,
    Interrupted,
}

/// The field's bytes, stopped past the limit.
struct Limited<S> {
    inner: S,
    seen: u64,
    limit: u64,
    stopped: Arc<std::sync::Mutex<Option<Stopped>>>,
}

impl<S, E> Stream for Limited<S>
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    type Item = io::Result<bytes::Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.seen += chunk.len() as u64;
                if this.seen > this.limit {
                    *this.stopped.lock().unwrap_or_else(|p| p.into_inner()) = Some(Stopped::TooLarge);
                    return Poll::Ready(Some(Err(io::Error::other("upload too large"))));
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                *this.stopped.lock().unwrap_or_else(|p| p.into_inner()) = Some(Stopped::Interrupted);
                Poll::Ready(Some(Err(io::Error::other(e.to_string()))))
            }
            other => other.map(|o| o.map(|r| r.map_err(|e| io::Error::other(e.to_string())))),
        }
    }
}

/// Streams the multipart field `backup` into scratch space.
pub(crate) async fn receive(state: &AppState, multipart: Multipart) -> ApiResult<Arc<dyn BackupFile>> {
    receive_with_password(state, multipart).await.map(|(file, _)| file)
}

/// The same, with an optional text field `password` sent before the file.
pub(crate) async fn receive_with_password(
    state: &AppState,
    mut multipart: Multipart,
) -> ApiResult<(Arc<dyn BackupFile>, Option<Password>)> {
    let mut password = None;
    while let Some(field) =
        multipart.next_field().await.map_err(|e| ApiError::bad_request(format!("Invalid upload: {e}")))?
    {
        if field.name() == Some("password") {
            let bytes = field.bytes().await.map_err(|e| ApiError::bad_request(format!("Invalid upload: {e}")))?;
            if bytes.len() > 4096 {
                return Err(ApiError::bad_request("password is too long"));
            }
            let text = String::from_utf8(bytes.to_vec()).map_err(|_| ApiError::bad_request("password is not text"))?;
            password = (!text.is_empty()).then(|| Password::new(text));
            continue;
        }
        if field.name() != Some("backup") {
            continue;
        }
        let stopped = Arc::new(std::sync::Mutex::new(None));
        let limited =
            Limited { inner: field.into_stream(), seen: 0, limit: state.upload_limit, stopped: stopped.clone() };
        let mut reader = StreamReader::new(limited.map_err(|e| e)).compat();
        let kept = state.scratch.keep(&mut reader).await;
        let why = *stopped.lock().unwrap_or_else(|p| p.into_inner());
        return match (kept, why) {
            (Ok(file), _) => Ok((file, password)),
            (Err(_), Some(Stopped::TooLarge)) => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Backup is larger than the {}-byte upload limit", state.upload_limit),
            )),
            (Err(e), Some(Stopped::Interrupted)) => Err(ApiError::bad_request(format!("Upload interrupted: {e}"))),
            (Err(e), None) => Err(e.into()),
        };
    }
    Err(ApiError::bad_request("No backup file provided (field 'backup')"))
}
