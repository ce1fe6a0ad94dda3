//! What every request and response goes through: Framerr's request-source
//! check, the headers a careful server sends, and JSON error bodies even
//! for the framework's own rejections.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use backup_domain::secret::constant_time_eq;

use crate::{ApiError, AppState};

/// The page's policy: its own scripts, styles and images only; no inline
/// script; talks to this origin only; never framed.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The header Framerr's web UI sends with every state-changing request.
pub const CLIENT_HEADER: &str = "x-framerr-client";

/// The bearer token a request carries, when its `Authorization` uses the
/// Bearer scheme (case-insensitive, RFC 7235). Other schemes (basic auth
/// added by a reverse proxy) are not ours: `None`.
pub(crate) fn bearer(request: &Request) -> Option<&str> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Framerr refuses state-changing requests without `X-Framerr-Client: 1`
/// (403 `CSRF_PROTECTION`): another site can make a browser send the
/// session cookie, not this header. A client with the bearer token is
/// exempt: another site cannot send that either.
pub(crate) async fn request_source(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let changes_state = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let from_client = request.headers().get(CLIENT_HEADER).is_some_and(|v| v == "1");
    let with_token = match (&state.bearer_token, bearer(&request)) {
        (Some(token), Some(given)) => constant_time_eq(given.as_bytes(), token.as_bytes()),
        _ => false,
    };
    if changes_state && !from_client && !with_token {
        return ApiError::new(StatusCode::FORBIDDEN, "Invalid request source")
            .with(serde_json::json!({ "code": "CSRF_PROTECTION" }))
            .into_response();
    }
    next.run(request).await
}

/// For every response: no sniffing, no framing, no referrer; a strict
/// Content-Security-Policy (the page's own for HTML, nothing at all for
/// the rest); `charset=utf-8` on JSON; and a JSON `{"error": ...}` body on
/// any error that does not have one (axum's rejections, 404, 405).
pub(crate) async fn response_headers(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let failed = response.status().is_client_error() || response.status().is_server_error();
    let verbatim = response.extensions().get::<Verbatim>().is_some();
    let response = if failed && !verbatim { json_error(response).await } else { response };
    let (mut parts, body) = response.into_parts();
    let headers = &mut parts.headers;
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    if content_type == "application/json" && !verbatim {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    }
    // Framerr's pages are not ours: they get the strict policy.
    let page = content_type.starts_with("text/html") && !verbatim;
    let csp = if page { PAGE_CSP } else { "default-src 'none'; frame-ancestors 'none'" };
    headers.insert("content-security-policy", HeaderValue::from_static(csp));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    Response::from_parts(parts, body)
}

/// Marks a response passed on from Framerr (the realtime relay's refusals):
/// its body stays as Framerr wrote it, not rewritten as our JSON error.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Verbatim;

async fn json_error(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let message = if text.is_empty() { parts.status.canonical_reason().unwrap_or("Error").to_owned() } else { text };
    let mut out = ApiError::new(parts.status, message).into_response();
    // Keep what the framework said beyond the body (Allow on a 405).
    for (name, value) in parts.headers.iter() {
        if name != CONTENT_TYPE && name != "content-length" {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// A known path with another method: a JSON 405.
pub(crate) async fn method_not_allowed() -> Response {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed").into_response()
}

/// Unknown paths: a JSON 404 like every other error.
pub(crate) async fn not_found() -> Response {
    ApiError::not_found("Not found").into_response()
}

/// A request body must bring at least [`BODY_PACE_BYTES`] in every window
/// of this length until it ends: a dial-up modem's pace, well under any
/// upload a person makes.
const BODY_WINDOW: Duration = Duration::from_secs(10);
const BODY_PACE_BYTES: u64 = 10 * 1024;

/// Every request body must keep a pace (see [`BODY_WINDOW`]). The
/// connection's idle timer restarts at each byte, so without this a client
/// sending a byte every few seconds would hold its connection, and a
/// handler, for as long as it liked; measured per window, not on average,
/// so a fast start buys no hours of trickling after it.
pub(crate) async fn steady_body(request: Request, next: Next) -> Response {
    next.run(
        request.map(|body| Body::new(Steady { inner: body, window_start: Instant::now(), in_window: 0, timer: None })),
    )
    .await
}

struct Steady {
    inner: Body,
    window_start: Instant,
    /// Bytes received since `window_start`.
    in_window: u64,
    /// Made when the body first has to be waited for.
    timer: Option<Pin<Box<Sleep>>>,
}

impl Steady {
    /// Ends the window if it is over: `false` when it brought too little.
    fn next_window(&mut self, now: Instant) -> bool {
        if now < self.window_start + BODY_WINDOW {
            return true;
        }
        if self.in_window < BODY_PACE_BYTES {
            return false;
        }
        self.window_start = now;
        self.in_window = 0;
        if let Some(timer) = &mut self.timer {
            timer.as_mut().reset(now + BODY_WINDOW);
        }
        true
    }
}

fn too_slow() -> axum::Error {
    axum::Error::new("the request body arrived too slowly")
}

impl http_body::Body for Steady {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        loop {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        this.in_window += data.len() as u64;
                        if !this.next_window(Instant::now()) {
                            return Poll::Ready(Some(Err(too_slow())));
                        }
                    }
                    return Poll::Ready(Some(Ok(frame)));
                }
                Poll::Pending => {
                    let due = this.window_start + BODY_WINDOW;
                    let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
                    if timer.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    // The window is over while waiting: enough, and a new
                    // one starts (poll again to wait on it), or too little.
                    if !this.next_window(Instant::now()) {
                        return Poll::Ready(Some(Err(too_slow())));
                    }
                }
                other => return other,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
