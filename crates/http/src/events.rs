//! Progress as server-sent events, with Framerr's event names.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Extension, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use backup_domain::ports::ProgressEvent;
use backup_domain::timefmt::to_iso_millis;

use crate::AppState;
use crate::auth::Caller;

pub(crate) fn to_event(event: &ProgressEvent) -> Option<Event> {
    let (name, data) = named(event)?;
    Some(Event::default().event(name).data(data.to_string()))
}

/// An event's name and data, as Framerr names and shapes them (spec
/// section 8), plus our own `backup:destination-failed`.
pub(crate) fn named(event: &ProgressEvent) -> Option<(&'static str, serde_json::Value)> {
    Some(match event {
        ProgressEvent::Started { id, kind } => ("backup:started", json!({ "id": id, "type": kind })),
        ProgressEvent::Progress { id, step, percent } => {
            ("backup:progress", json!({ "id": id, "step": step, "percent": percent }))
        }
        ProgressEvent::Complete { id, filename, size } => {
            ("backup:complete", json!({ "id": id, "filename": filename, "size": size }))
        }
        ProgressEvent::Error { id, error } => ("backup:error", json!({ "id": id, "error": error })),
        ProgressEvent::DestinationFailed { id, destination, error } => {
            ("backup:destination-failed", json!({ "id": id, "destination": destination, "error": error }))
        }
        ProgressEvent::ScheduledFailed { error, timestamp } => {
            ("backup:scheduled-failed", json!({ "error": error, "timestamp": to_iso_millis(*timestamp) }))
        }
        _ => return None,
    })
}

/// How often a stream checks that its session is still alive.
pub(crate) const SESSION_CHECK: Duration = Duration::from_secs(20);

/// Events until the client leaves or, for a cookie session, until the
/// session ends (logout, expiry): checked every 20 s.
pub(crate) async fn events(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = state.events.subscribe();
    let mut check = tokio::time::interval(SESSION_CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    check.reset();
    let stream =
        futures::stream::unfold((receiver, state, caller, check), |(mut rx, state, caller, mut check)| async move {
            loop {
                tokio::select! {
                    received = rx.recv() => match received {
                        Ok(event) => {
                            if let Some(e) = to_event(&event) {
                                return Some((Ok(e), (rx, state, caller, check)));
                            }
                        }
                        // A slow client skips what it missed.
                        Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return None,
                    },
                    _ = check.tick() => {
                        if let Caller::Session(session) = &caller
                            && !matches!(crate::auth::admin_session(&state, session).await, Ok(true))
                        {
                            return None;
                        }
                    }
                }
            }
        });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
