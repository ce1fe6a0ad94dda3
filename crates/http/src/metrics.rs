//! `GET /metrics`: Prometheus text format (version 0.0.4), for a scraper
//! that holds the bearer token or `FRAMERR_BACKUP_METRICS_TOKEN`.
//!
//! Labels name destinations by their description (never a credential)
//! and backups by type. Every family is documented with HELP and TYPE.

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use backup_domain::kind::BackupKind;
use backup_domain::secret::constant_time_eq;
use backup_domain::verification::{self, Outcome};

use crate::{ApiError, AppState};

pub(crate) async fn metrics(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let given = crate::guard::bearer(&request);
    let tokens = [&state.bearer_token, &state.metrics_token];
    if tokens.iter().all(|t| t.is_none()) {
        return Err(ApiError::not_found(
            "Metrics need a token: set FRAMERR_BACKUP_METRICS_TOKEN (or FRAMERR_BACKUP_TOKEN) and send it as a Bearer token",
        ));
    }
    let allowed = given.is_some_and(|given| {
        tokens.iter().filter_map(|t| t.as_ref()).any(|t| constant_time_eq(given.as_bytes(), t.as_bytes()))
    });
    if !allowed {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "Not authenticated"));
    }
    let body = render(&state).await;
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    Ok(response)
}

/// A label value, escaped as the text format requires.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", label(v))).collect();
        let labels = if labels.is_empty() { String::new() } else { format!("{{{}}}", labels.join(",")) };
        let _ = writeln!(self.0, "{name}{labels} {value}");
    }
}

/// Count and bytes of the backups of each type in one destination.
type Tally = BTreeMap<BackupKind, (u64, u64)>;

fn seconds(at: time::OffsetDateTime) -> f64 {
    at.unix_timestamp_nanos() as f64 / 1e9
}

async fn render(state: &AppState) -> String {
    let now = state.backups.creator.clock.now();
    let mut out = Out(String::new());
    let kinds = [BackupKind::Manual, BackupKind::Scheduled, BackupKind::Safety];

    // What is stored where.
    let mut stored: Vec<(String, Option<Tally>)> = Vec::new();
    for store in state.backups.creator.stores() {
        let counts = store.list().await.ok().map(|list| {
            let mut by_kind: Tally = kinds.iter().map(|k| (*k, (0, 0))).collect();
            for b in list {
                let entry = by_kind.entry(b.name.kind()).or_default();
                entry.0 += 1;
                entry.1 += b.size;
            }
            by_kind
        });
        stored.push((store.describe(), counts));
    }
    out.family("framerr_backup_destination_up", "gauge", "Whether the destination could be listed (1) or not (0).");
    for (place, counts) in &stored {
        out.sample("framerr_backup_destination_up", &[("destination", place)], f64::from(u8::from(counts.is_some())));
    }
    out.family("framerr_backup_backups", "gauge", "Backups stored, by destination and type.");
    for (place, counts) in &stored {
        for (kind, (n, _)) in counts.iter().flatten() {
            out.sample("framerr_backup_backups", &[("destination", place), ("type", &kind.to_string())], *n as f64);
        }
    }
    out.family("framerr_backup_backups_bytes", "gauge", "Bytes of the backups stored, by destination and type.");
    for (place, counts) in &stored {
        for (kind, (_, bytes)) in counts.iter().flatten() {
            out.sample(
                "framerr_backup_backups_bytes",
                &[("destination", place), ("type", &kind.to_string())],
                *bytes as f64,
            );
        }
    }

    // The last backup this server made, and what failed.
    let history = backup_domain::history::read(state.backups.creator.store.as_ref()).await;
    let health = state.backups.health();
    // A family's samples must follow its own HELP and TYPE lines.
    let last: Vec<(String, &backup_domain::history::Entry)> = kinds
        .iter()
        .filter_map(|kind| history.iter().rev().find(|e| e.kind == *kind).map(|e| (kind.to_string(), e)))
        .collect();
    out.family(
        "framerr_backup_last_success_timestamp_seconds",
        "gauge",
        "When the last successful backup of each type was made, Unix time.",
    );
    for (t, e) in &last {
        out.sample("framerr_backup_last_success_timestamp_seconds", &[("type", t)], seconds(e.created_at));
    }
    out.family("framerr_backup_last_duration_seconds", "gauge", "How long the last successful backup took.");
    for (t, e) in &last {
        out.sample("framerr_backup_last_duration_seconds", &[("type", t)], e.duration_ms as f64 / 1000.0);
    }
    out.family("framerr_backup_last_size_bytes", "gauge", "The size of the last successful backup.");
    for (t, e) in &last {
        out.sample("framerr_backup_last_size_bytes", &[("type", t)], e.size as f64);
    }
    out.family("framerr_backup_failures_total", "counter", "Backups that failed since the server started.");
    out.sample("framerr_backup_failures_total", &[], health.failures as f64);
    out.family(
        "framerr_backup_copy_failures_total",
        "counter",
        "Copies to a destination that failed since the server started.",
    );
    for (place, n) in &health.copy_failures {
        out.sample("framerr_backup_copy_failures_total", &[("destination", place)], *n as f64);
    }

    // Verification.
    let checks = verification::read(state.backups.creator.store.as_ref()).await;
    out.family(
        "framerr_backup_verification_ok",
        "gauge",
        "Whether the last verification of the destination's newest backup passed (1) or not (0).",
    );
    for v in &checks {
        let ok = matches!(v.outcome, Outcome::Passed | Outcome::Empty);
        out.sample("framerr_backup_verification_ok", &[("destination", &v.destination)], f64::from(u8::from(ok)));
    }
    out.family("framerr_backup_verification_timestamp_seconds", "gauge", "When the destination was last verified.");
    for v in &checks {
        out.sample(
            "framerr_backup_verification_timestamp_seconds",
            &[("destination", &v.destination)],
            seconds(v.checked_at),
        );
    }

    // The schedule.
    let schedule = state.backups.schedule().await.ok();
    out.family("framerr_backup_schedule_enabled", "gauge", "Whether scheduled backups are on.");
    out.sample(
        "framerr_backup_schedule_enabled",
        &[],
        f64::from(u8::from(schedule.as_ref().is_some_and(|s| s.enabled))),
    );
    out.family(
        "framerr_backup_schedule_overdue",
        "gauge",
        "Whether the schedule has missed a run (no scheduled backup within its interval plus two hours).",
    );
    let overdue = schedule.as_ref().is_some_and(|s| s.overdue(now));
    out.sample("framerr_backup_schedule_overdue", &[], f64::from(u8::from(overdue)));
    out.family("framerr_backup_in_progress", "gauge", "Whether a backup or restore is running.");
    out.sample("framerr_backup_in_progress", &[], f64::from(u8::from(state.backups.creator.busy.is_busy())));
    out.family(
        "framerr_backup_notifications_undelivered",
        "gauge",
        "Notifications that could not be delivered (the most recent, up to 20).",
    );
    out.sample("framerr_backup_notifications_undelivered", &[], state.backups.notifier.undelivered().len() as f64);
    out.0
}
