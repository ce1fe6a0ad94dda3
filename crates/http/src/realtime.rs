//! `GET /api/realtime/stream`: Framerr's realtime stream, relayed with our
//! backup events put between its own (spec section 8, "Realtime stream").
//! Framerr's web UI hears about backups only on that stream; behind one
//! reverse proxy this route is ours, so Framerr's own Backups page sees the
//! backups this server makes, live.
//!
//! Framerr decides who may open the stream: the request's cookie goes
//! upstream and a refusal comes back as Framerr wrote it. Our events go
//! only into an admin's stream, like every other backup route of ours.
//! Every upstream byte is passed on unchanged and in order; ours are whole
//! `event: NAME\ndata: JSON\n\n` blocks, only where an upstream event has
//! ended. Nothing is buffered without bound: the body is read from Framerr
//! only as fast as the client takes it. The listener's idle timeout (60 s)
//! never cuts a live stream: Framerr's heartbeat passes every 25 s.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Extension, State};
use axum::http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, COOKIE, RETRY_AFTER, USER_AGENT};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::time::{Instant, Interval, Sleep};

use backup_domain::auth::Sessions;
use backup_domain::ports::ProgressEvent;

use crate::guard::Verbatim;
use crate::{ApiError, AppState};

/// Reaching Framerr at all.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Framerr's answer's head (and a refusal's body): a Framerr that takes
/// the connection and never answers must not hold the request.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// Framerr sends a heartbeat every 25 s: this long without a byte means
/// its stream is dead, and the client had better reconnect.
const SILENCE: Duration = Duration::from_secs(90);
/// The largest refusal body passed on.
const REFUSAL_LIMIT: usize = 64 * 1024;
/// The largest unfinished upstream event: ours wait for it to end, so a
/// stream that never ends one would starve them; it ends the relay.
const PARTIAL_LIMIT: usize = 1024 * 1024;

const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");
const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

/// Framerr's own address (`http://framerr:3000`, perhaps with the path it
/// is served under): http or https, a host, no credentials, no query, no
/// fragment.
#[derive(Clone, PartialEq, Eq)]
pub struct FramerrUrl(reqwest::Url);

impl FramerrUrl {
    /// Checks `text`; the error never repeats it (it could hold a password).
    pub fn parse(text: &str) -> Result<FramerrUrl, String> {
        let url = reqwest::Url::parse(text.trim())
            .map_err(|e| format!("not a URL ({e}); expected one like http://framerr:3000"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("must start with http:// or https://, not {}:", url.scheme()));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("has no host; expected one like http://framerr:3000".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry credentials: the signed-in user's cookie is what Framerr gets".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("must have no query (?) or fragment (#)".into());
        }
        Ok(FramerrUrl(url))
    }

    /// Framerr's realtime stream, under the address's path.
    fn stream(&self) -> reqwest::Url {
        let mut url = self.0.clone();
        let path = format!("{}/api/realtime/stream", url.path().trim_end_matches('/'));
        url.set_path(&path);
        url
    }
}

impl std::fmt::Display for FramerrUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl std::fmt::Debug for FramerrUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FramerrUrl({})", self.0)
    }
}

/// One client for every relay, made at the first one.
fn client() -> Result<&'static reqwest::Client, ApiError> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    let client = CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            // Framerr is beside us: not through the environment's proxy,
            // and never redirected elsewhere with the user's cookie.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            // A stream holds its connection to its end; an idle one kept
            // for later could outlive the runtime that made it.
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| e.to_string())
    });
    client.as_ref().map_err(|e| ApiError::internal("Reaching Framerr", e))
}

pub(crate) async fn stream(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
) -> Response {
    let Some(framerr) = state.framerr.clone() else {
        // Not configured: as if the route did not exist.
        return ApiError::not_found("Not found").into_response();
    };
    let peer = peer.map(|Extension(ConnectInfo(addr))| addr);
    relay(state, &framerr, peer, &headers).await.unwrap_or_else(IntoResponse::into_response)
}

async fn relay(
    state: AppState,
    framerr: &FramerrUrl,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    // Before Framerr answers, so that nothing of ours is missed meanwhile.
    let events = state.events.subscribe();
    let mut request = client()?.get(framerr.stream());
    for name in [COOKIE, USER_AGENT, ACCEPT, LAST_EVENT_ID] {
        for value in headers.get_all(&name) {
            request = request.header(&name, value.clone());
        }
    }
    if let Some(peer) = peer {
        // Framerr limits reconnections per client: name the client, not us.
        let client = crate::account::client_address(Some(peer), headers, &state.trusted_proxies);
        request = request.header(FORWARDED_FOR, client);
    }
    let unreachable = |detail: &dyn std::fmt::Display| {
        tracing::warn!(framerr = %framerr, %detail, "cannot open Framerr's realtime stream");
        ApiError::new(StatusCode::BAD_GATEWAY, "Framerr cannot be reached")
    };
    let answer = match tokio::time::timeout(ANSWER_TIMEOUT, request.send()).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => return Err(unreachable(&e)),
        Err(_) => return Err(unreachable(&"no answer within 30 s")),
    };
    if answer.status() != StatusCode::OK {
        return passed_on(answer).await.map_err(|e| unreachable(&e));
    }
    let session = crate::auth::session_cookie(headers);
    let admin = match &session {
        Some(session) => is_admin(&*state.sessions, session).await.unwrap_or(false),
        None => false,
    };
    let upstream = answer.bytes_stream().map(|r| r.map_err(std::io::Error::other)).boxed();
    let relay = Relay::new(upstream, events, admin, session.map(|s| (state.sessions.clone(), s)));
    let body = futures::stream::unfold(relay, |mut relay| async move {
        let chunk = relay.next().await?;
        Some((Ok::<_, Infallible>(chunk), relay))
    });
    let headers = [(CONTENT_TYPE, "text/event-stream"), (CACHE_CONTROL, "no-cache"), (ACCEL_BUFFERING, "no")];
    Ok((StatusCode::OK, headers, Body::from_stream(body)).into_response())
}

/// Framerr's refusal (401, 429, ...) as it was: status, content type,
/// `Retry-After`, body.
async fn passed_on(mut answer: reqwest::Response) -> Result<Response, String> {
    let read = async {
        let mut body = Vec::new();
        while let Some(chunk) = answer.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > REFUSAL_LIMIT {
                return Err(format!("its {} answer is larger than {REFUSAL_LIMIT} bytes", answer.status()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    let body = tokio::time::timeout(ANSWER_TIMEOUT, read).await.map_err(|_| "its answer did not end".to_owned())??;
    let mut response = (answer.status(), body).into_response();
    response.headers_mut().remove(CONTENT_TYPE);
    for name in [CONTENT_TYPE, RETRY_AFTER] {
        if let Some(value) = answer.headers().get(&name) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response.extensions_mut().insert(Verbatim);
    Ok(response)
}

/// Whether `session` is a live admin's; `None` when it cannot be told now.
async fn is_admin(sessions: &dyn Sessions, session: &str) -> Option<bool> {
    match crate::auth::session_admin(sessions, session).await {
        Ok(admin) => Some(admin.unwrap_or(false)),
        Err(e) => {
            tracing::debug!(error = %e, "cannot check a realtime stream's session");
            None
        }
    }
}

/// One of ours as Framerr writes its events; `None` for what Framerr's UI
/// does not know (`backup:destination-failed` is ours alone).
fn framed(event: &ProgressEvent) -> Option<Bytes> {
    let (name, data) = crate::events::named(event)?;
    if name == "backup:destination-failed" {
        return None;
    }
    // Compact JSON has no line break: one `data:` line.
    Some(Bytes::from(format!("event: {name}\ndata: {data}\n\n")))
}

/// The relay's body, one chunk per pull.
struct Relay {
    upstream: BoxStream<'static, std::io::Result<Bytes>>,
    events: Receiver<ProgressEvent>,
    /// Ours go into this stream.
    admin: bool,
    /// The stream's session, checked now and then: a session that is no
    /// longer an admin's gets no more of ours.
    session: Option<(Arc<dyn Sessions>, String)>,
    check: Interval,
    ends: Ends,
    /// Bytes of the unfinished upstream event passed on so far.
    partial: usize,
    silence: Pin<Box<Sleep>>,
}

impl Relay {
    fn new(
        upstream: BoxStream<'static, std::io::Result<Bytes>>,
        events: Receiver<ProgressEvent>,
        admin: bool,
        session: Option<(Arc<dyn Sessions>, String)>,
    ) -> Relay {
        let period = crate::events::SESSION_CHECK;
        let mut check = tokio::time::interval_at(Instant::now() + period, period);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Relay {
            upstream,
            events,
            admin,
            session,
            check,
            ends: Ends::default(),
            partial: 0,
            silence: Box::pin(tokio::time::sleep(SILENCE)),
        }
    }

    /// The next chunk for the client; `None` ends the stream (the client
    /// reconnects).
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            let between = self.admin && self.ends.between();
            tokio::select! {
                // Framerr's own first: ours may wait, its may not.
                biased;
                chunk = self.upstream.next() => match chunk {
                    Some(Ok(chunk)) if chunk.is_empty() => {}
                    Some(Ok(chunk)) => return self.pass(chunk),
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "Framerr's realtime stream failed");
                        return None;
                    }
                    None => return None,
                },
                received = self.events.recv(), if between => match received {
                    Ok(event) => {
                        if let Some(bytes) = framed(&event) {
                            return Some(bytes);
                        }
                    }
                    // A slow client skips what it missed.
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => self.admin = false,
                },
                _ = self.check.tick(), if self.session.is_some() => self.recheck().await,
                () = &mut self.silence => {
                    tracing::debug!("Framerr's realtime stream went silent");
                    return None;
                }
            }
        }
    }

    async fn recheck(&mut self) {
        let Some((sessions, session)) = &self.session else { return };
        if let Some(admin) = is_admin(&**sessions, session).await {
            if admin && !self.admin {
                // From now on: what was sent meanwhile is not news.
                self.events = self.events.resubscribe();
            }
            self.admin = admin;
        }
    }

    /// Passes `chunk` on; ours that are ready go in where its last complete
    /// event ends, rather than after the event it starts.
    fn pass(&mut self, chunk: Bytes) -> Option<Bytes> {
        self.silence.as_mut().reset(Instant::now() + SILENCE);
        let end = self.ends.feed(&chunk);
        self.partial = match end {
            Some(at) => chunk.len() - at,
            None => self.partial + chunk.len(),
        };
        if self.partial > PARTIAL_LIMIT {
            tracing::warn!(
                limit = PARTIAL_LIMIT,
                "an event on Framerr's realtime stream is too large; ending the relay"
            );
            return None;
        }
        let Some(at) = end.filter(|at| *at < chunk.len() && self.admin) else { return Some(chunk) };
        let mut ours = Vec::new();
        loop {
            match self.events.try_recv() {
                Ok(event) => ours.extend(framed(&event)),
                Err(TryRecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
        if ours.is_empty() {
            return Some(chunk);
        }
        let mut out = BytesMut::with_capacity(chunk.len() + ours.iter().map(Bytes::len).sum::<usize>());
        out.extend_from_slice(&chunk[..at]);
        for event in ours {
            out.extend_from_slice(&event);
        }
        out.extend_from_slice(&chunk[at..]);
        Some(out.freeze())
    }
}

/// Where events end in an SSE byte stream: at a blank line, with any of
/// the standard's line ends (`\n`, `\r\n`, `\r`), across chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ends(Line);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// Within a line that has text.
    Text,
    /// A line just ended with `\n` (or `\r\n`).
    Ended,
    /// A line just ended with `\r`: a `\n` next belongs to it.
    EndedCr,
    /// A blank line just ended an event (or nothing has come yet).
    Between,
    /// A blank line just ended with `\r`: a `\n` next still belongs to it.
    BetweenCr,
}

impl Default for Ends {
    fn default() -> Self {
        Ends(Line::Between)
    }
}

impl Ends {
    /// Whether what came so far ends exactly where an event did.
    fn between(&self) -> bool {
        self.0 == Line::Between
    }

    /// Reads `chunk`; the last place in it (`0..=len`) between two events,
    /// if any. After a blank line ended by `\r`, that place is known only
    /// once the next byte is not `\n`.
    fn feed(&mut self, chunk: &[u8]) -> Option<usize> {
        use Line::*;
        let mut last = None;
        for (i, &byte) in chunk.iter().enumerate() {
            if self.0 == Between || (self.0 == BetweenCr && byte != b'\n') {
                last = Some(i);
            }
            self.0 = match (self.0, byte) {
                (Text | EndedCr, b'\n') => Ended,
                (Text, b'\r') => EndedCr,
                (Ended | Between | BetweenCr, b'\n') => Between,
                (Ended | EndedCr | Between | BetweenCr, b'\r') => BetweenCr,
                _ => Text,
            };
        }
        if self.0 == Between {
            last = Some(chunk.len());
        }
        last
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tokio::sync::broadcast;

    #[test]
    fn events_end_at_blank_lines_whatever_the_line_ends() {
        let text =
            b": heartbeat\n\nevent: a\ndata: 1\ndata: 2\n\nevent: b\r\ndata: 3\r\n\r\nevent: c\rdata: 4\r\revent: d\n";
        let at = |s: &str| text.windows(s.len()).position(|w| w == s.as_bytes()).unwrap();
        let expected = vec![0, at("event: a"), at("event: b"), at("event: c"), at("event: d")];
        // A byte at a time finds every place, not only a chunk's last.
        let mut ends = Ends::default();
        let mut found: Vec<usize> = (0..text.len()).filter_map(|i| ends.feed(&text[i..=i]).map(|at| i + at)).collect();
        found.dedup();
        assert_eq!(found, expected);
        // In two chunks, cut anywhere: each chunk's last place.
        let cr_end = at("event: d");
        for cut in 0..=text.len() {
            let mut ends = Ends::default();
            let first = ends.feed(&text[..cut]);
            let second = ends.feed(&text[cut..]).map(|at| at + cut);
            // After `\r\r`, the place is known at the byte after it.
            let want = expected.iter().copied().rfind(|e| *e < cut || (*e == cut && *e != cr_end));
            assert_eq!(first, want, "cut at {cut}");
            assert_eq!(second, (cut <= cr_end).then_some(cr_end), "cut at {cut}");
            assert!(!ends.between(), "the text ends inside an event");
        }
        let mut ends = Ends::default();
        assert_eq!(ends.feed(b"event: x\ndata: 1\n\n"), Some(18));
        assert!(ends.between());
        assert_eq!(ends.feed(b"\n"), Some(1), "a blank line more is still between");
        assert_eq!(ends.feed(b"data: 2\r\n\r"), Some(0));
        assert!(!ends.between(), "\\r\\n\\r: the \\n that may follow belongs to it");
        assert_eq!(ends.feed(b"\n"), Some(1));
        assert!(ends.between());
    }

    fn started(id: &str) -> ProgressEvent {
        ProgressEvent::Started { id: id.into(), kind: backup_domain::BackupKind::Manual }
    }

    fn upstream(chunks: &[&'static str]) -> BoxStream<'static, std::io::Result<Bytes>> {
        futures::stream::iter(chunks.iter().map(|c| Ok(Bytes::from_static(c.as_bytes()))).collect::<Vec<_>>()).boxed()
    }

    async fn all(mut relay: Relay) -> String {
        let mut out = Vec::new();
        while let Some(chunk) = relay.next().await {
            out.extend_from_slice(&chunk);
        }
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn ours_go_between_upstream_events_only() {
        let (tx, rx) = broadcast::channel(16);
        tx.send(started("one")).unwrap();
        tx.send(ProgressEvent::DestinationFailed { id: "one".into(), destination: "s3".into(), error: "x".into() })
            .unwrap();
        tx.send(ProgressEvent::Complete { id: "one".into(), filename: "f.zip".into(), size: 7 }).unwrap();
        // Ours that are ready go where the first chunk's complete event
        // ends, not after the event it starts.
        let relay = Relay::new(
            upstream(&["event: a\ndata: 1\n\nevent: b\nda", "ta: 2\n\n", ": heartbeat\n\n"]),
            rx,
            true,
            None,
        );
        let complete = ProgressEvent::Complete { id: "one".into(), filename: "f.zip".into(), size: 7 };
        let ours = [framed(&started("one")).unwrap(), framed(&complete).unwrap()].concat();
        let ours = String::from_utf8(ours).unwrap();
        assert_eq!(all(relay).await, format!("event: a\ndata: 1\n\n{ours}event: b\ndata: 2\n\n: heartbeat\n\n"));
    }

    #[test]
    fn ours_are_written_as_framerr_writes_its_own() {
        let text = framed(&started("one")).unwrap();
        let text = std::str::from_utf8(&text).unwrap();
        let data = text.strip_prefix("event: backup:started\ndata: ").unwrap().strip_suffix("\n\n").unwrap();
        let data: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(data, serde_json::json!({"id": "one", "type": "manual"}));
        let failed = ProgressEvent::DestinationFailed { id: "1".into(), destination: "s3".into(), error: "x".into() };
        assert!(framed(&failed).is_none(), "Framerr's UI knows no such event");
    }

    #[tokio::test]
    async fn not_an_admin_gets_framerr_only() {
        let (tx, rx) = broadcast::channel(16);
        tx.send(started("one")).unwrap();
        let relay = Relay::new(upstream(&["event: a\ndata: 1\n\nevent: b\n", "data: 2\n\n"]), rx, false, None);
        assert_eq!(all(relay).await, "event: a\ndata: 1\n\nevent: b\ndata: 2\n\n");
    }

    #[tokio::test]
    async fn an_endless_event_ends_the_relay() {
        let (_tx, rx) = broadcast::channel(16);
        let big: &'static str = Box::leak(format!("data: {}", "x".repeat(PARTIAL_LIMIT)).into_boxed_str());
        let mut relay = Relay::new(upstream(&["event: a\ndata: 1\n\n", "event: b\n", big]), rx, true, None);
        assert_eq!(relay.next().await.as_deref(), Some(&b"event: a\ndata: 1\n\n"[..]));
        assert_eq!(relay.next().await.as_deref(), Some(&b"event: b\n"[..]));
        assert!(relay.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn ours_come_while_framerr_is_quiet_and_silence_ends_it() {
        let (tx, rx) = broadcast::channel(16);
        let quiet =
            futures::stream::iter([Ok(Bytes::from_static(b": heartbeat\n\n"))]).chain(futures::stream::pending());
        let mut relay = Relay::new(quiet.boxed(), rx, true, None);
        assert_eq!(relay.next().await.as_deref(), Some(&b": heartbeat\n\n"[..]));
        tx.send(started("two")).unwrap();
        let ours = relay.next().await.unwrap();
        assert!(ours.starts_with(b"event: backup:started\ndata: {") && ours.ends_with(b"}\n\n"));
        let started = Instant::now();
        assert!(relay.next().await.is_none());
        assert!(started.elapsed() >= SILENCE - Duration::from_secs(1));
    }

    #[test]
    fn framerr_addresses_are_checked() {
        let stream = |s: &str| FramerrUrl::parse(s).unwrap().stream().to_string();
        assert_eq!(stream("http://framerr:3000"), "http://framerr:3000/api/realtime/stream");
        assert_eq!(stream(" https://home.lan/framerr/ "), "https://home.lan/framerr/api/realtime/stream");
        for bad in [
            "framerr:3000",
            "ftp://framerr",
            "http://",
            "http://user:hunter2@framerr:3000",
            "http://framerr:3000/?a=1",
            "http://framerr:3000/#x",
            "",
        ] {
            let err = FramerrUrl::parse(bad).unwrap_err();
            assert!(!err.contains("hunter2"), "{err}");
        }
    }
}
