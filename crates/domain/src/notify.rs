//! Notifications: what happened that someone should hear about, sent
//! through the [`Notifier`] port (ntfy, webhooks, healthchecks.io-style
//! pings in the adapter). Sending never delays or fails a backup: the
//! port only enqueues.

use serde::Serialize;
use time::OffsetDateTime;

use crate::timefmt;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    /// A scheduled backup is starting (a heartbeat's `/start`).
    BackupStarted,
    BackupSucceeded,
    BackupFailed,
    /// A backup was made but could not be copied to a destination.
    CopyFailed,
    VerificationFailed,
    /// No successful scheduled backup within one interval plus the grace.
    ScheduleOverdue,
}

/// Which events a notification target wants (`?on=` in its URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Start,
    Success,
    Failure,
}

impl Event {
    pub fn class(self) -> Class {
        match self {
            Event::BackupStarted => Class::Start,
            Event::BackupSucceeded => Class::Success,
            Event::BackupFailed | Event::CopyFailed | Event::VerificationFailed | Event::ScheduleOverdue => {
                Class::Failure
            }
        }
    }

    /// A line a person reads on a phone.
    pub fn title(self) -> &'static str {
        match self {
            Event::BackupStarted => "Framerr backup started",
            Event::BackupSucceeded => "Framerr backup succeeded",
            Event::BackupFailed => "Framerr backup FAILED",
            Event::CopyFailed => "Framerr backup copy FAILED",
            Event::VerificationFailed => "Framerr backup verification FAILED",
            Event::ScheduleOverdue => "Framerr backups are overdue",
        }
    }
}

/// One notification: the event and what it concerns. Serializes as the
/// generic webhook's JSON body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub event: Event,
    pub backup: Option<String>,
    pub destination: Option<String>,
    pub error: Option<String>,
    #[serde(with = "timefmt::iso")]
    pub timestamp: OffsetDateTime,
}

impl Notice {
    pub fn new(event: Event, timestamp: OffsetDateTime) -> Self {
        Notice { event, backup: None, destination: None, error: None, timestamp }
    }

    pub fn backup(mut self, name: impl ToString) -> Self {
        self.backup = Some(name.to_string());
        self
    }

    pub fn destination(mut self, place: impl Into<String>) -> Self {
        self.destination = Some(place.into());
        self
    }

    pub fn error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }

    /// The message body for people: what, which backup, where, why.
    pub fn message(&self) -> String {
        let mut lines = Vec::new();
        if let Some(b) = &self.backup {
            lines.push(format!("Backup: {b}"));
        }
        if let Some(d) = &self.destination {
            lines.push(format!("Destination: {d}"));
        }
        if let Some(e) = &self.error {
            lines.push(format!("Error: {e}"));
        }
        if lines.is_empty() {
            lines.push(self.event.title().to_owned());
        }
        lines.join("\n")
    }
}

/// A notification that could not be delivered, for the health endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Undelivered {
    /// The target, with its secrets redacted.
    pub target: String,
    pub event: Event,
    pub error: String,
    #[serde(with = "timefmt::iso")]
    pub at: OffsetDateTime,
}

/// Where notices go. `notify` must return at once (the adapter queues and
/// sends in the background); a full queue drops the notice and says so in
/// `undelivered`.
pub trait Notifier: Send + Sync {
    fn notify(&self, notice: Notice);
    /// The most recent deliveries that failed after their retries.
    fn undelivered(&self) -> Vec<Undelivered> {
        Vec::new()
    }
    /// The configured targets, redacted.
    fn targets(&self) -> Vec<String> {
        Vec::new()
    }
}

/// No targets configured.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Notifier for Silent {
    fn notify(&self, _: Notice) {}
}
