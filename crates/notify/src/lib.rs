//! The `Notifier` port over HTTP: ntfy, generic JSON webhooks and
//! healthchecks.io-style pings.
//!
//! `notify` only puts the notice on a bounded queue; one background task
//! sends it to each target that wants it, with a timeout per attempt and
//! retries with backoff. A backup never waits for a notification, and a
//! notification that could not be delivered is logged (target redacted)
//! and kept for the health endpoint. Target URLs carry secrets (a
//! healthchecks UUID, an ntfy topic, a webhook token): only their scheme
//! and host are ever shown.

mod target;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use backup_domain::notify::{Class, Event, Notice, Notifier, Undelivered};

pub use target::{BadTarget, Kind, Target, redact};

/// Notices waiting to be sent; beyond this they are dropped (and said so).
pub const QUEUE: usize = 64;
/// One attempt's limit.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Waits before the second, third and fourth attempts.
pub const BACKOFF: [Duration; 3] = [Duration::from_secs(1), Duration::from_secs(5), Duration::from_secs(25)];
/// Failed deliveries remembered for the health endpoint.
const REMEMBERED: usize = 20;

/// How the sender is tuned (tests shorten the waits).
#[derive(Debug, Clone)]
pub struct Tuning {
    pub timeout: Duration,
    pub backoff: Vec<Duration>,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning { timeout: TIMEOUT, backoff: BACKOFF.to_vec() }
    }
}

/// One target's own queue: a target that hangs or fails delays only its
/// own notices, never another target's.
struct Lane {
    target: Target,
    queue: mpsc::Sender<Notice>,
    /// Free places in the queue; all free when everything was sent.
    free: Arc<tokio::sync::Semaphore>,
}

/// Sends notices to its targets, each from a background task of its own.
#[derive(Clone)]
pub struct HttpNotifier {
    lanes: Arc<Vec<Lane>>,
    undelivered: Arc<Mutex<VecDeque<Undelivered>>>,
}

impl std::fmt::Debug for HttpNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let targets: Vec<&Target> = self.lanes.iter().map(|l| &l.target).collect();
        f.debug_struct("HttpNotifier").field("targets", &targets).finish_non_exhaustive()
    }
}

impl HttpNotifier {
    /// Parses every target and starts the senders; must run inside a Tokio
    /// runtime. A URL that cannot be used is an error now, not a silent
    /// loss later.
    pub fn start(urls: &[String], tuning: Tuning) -> Result<HttpNotifier, BadTarget> {
        let targets: Vec<Target> = urls.iter().map(|u| Target::parse(u)).collect::<Result<_, _>>()?;
        let client = reqwest::Client::builder()
            .timeout(tuning.timeout)
            .connect_timeout(tuning.timeout)
            // A redirect would carry the URL's secrets to another place
            // (reqwest sends the old URL as the Referer): not followed.
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .user_agent(concat!("framerr-backup/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        let undelivered: Arc<Mutex<VecDeque<Undelivered>>> = Arc::default();
        let mut lanes = Vec::new();
        let mut receivers = Vec::new();
        for target in targets {
            let (queue, rx) = mpsc::channel(QUEUE);
            lanes.push(Lane { target, queue, free: Arc::new(tokio::sync::Semaphore::new(QUEUE)) });
            receivers.push(rx);
        }
        let notifier = HttpNotifier { lanes: Arc::new(lanes), undelivered };
        for (i, rx) in receivers.into_iter().enumerate() {
            tokio::spawn(send_all(rx, notifier.clone(), i, client.clone(), tuning.clone()));
        }
        Ok(notifier)
    }

    /// Waits up to `max` for queued notices to be sent (a command line
    /// that is about to exit); returns how many were still waiting.
    pub async fn drain(&self, max: Duration) -> usize {
        let waiting = || self.lanes.iter().map(|l| QUEUE - l.free.available_permits()).sum::<usize>();
        let _ = tokio::time::timeout(max, async {
            while waiting() > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        waiting()
    }

    fn remember(&self, target: &Target, event: Event, error: String) {
        tracing::warn!(target = %target.redacted, event = ?event, error = %error, "a notification could not be delivered");
        let mut list = self.undelivered.lock().unwrap_or_else(|p| p.into_inner());
        if list.len() == REMEMBERED {
            list.pop_front();
        }
        list.push_back(Undelivered {
            target: target.redacted.clone(),
            event,
            error,
            at: time::OffsetDateTime::now_utc(),
        });
    }
}

impl Notifier for HttpNotifier {
    fn notify(&self, notice: Notice) {
        for lane in self.lanes.iter().filter(|l| l.target.wants(notice.event)) {
            let Ok(permit) = lane.free.clone().try_acquire_owned() else {
                self.remember(&lane.target, notice.event, "the notification queue is full".into());
                continue;
            };
            permit.forget();
            if lane.queue.try_send(notice.clone()).is_err() {
                lane.free.add_permits(1);
            }
        }
    }

    fn undelivered(&self) -> Vec<Undelivered> {
        self.undelivered.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
    }

    fn targets(&self) -> Vec<String> {
        self.lanes.iter().map(|l| l.target.redacted.clone()).collect()
    }
}

async fn send_all(
    mut rx: mpsc::Receiver<Notice>,
    notifier: HttpNotifier,
    lane: usize,
    client: reqwest::Client,
    tuning: Tuning,
) {
    let Some(target) = notifier.lanes.get(lane).map(|l| l.target.clone()) else { return };
    while let Some(notice) = rx.recv().await {
        let mut last = String::new();
        let mut delivered = false;
        for attempt in 0..=tuning.backoff.len() {
            if attempt > 0 {
                tokio::time::sleep(tuning.backoff[attempt - 1]).await;
            }
            match send(&client, &target, &notice).await {
                Ok(()) => {
                    delivered = true;
                    break;
                }
                Err(Failure { message, retry }) => {
                    last = message;
                    if !retry {
                        break;
                    }
                }
            }
        }
        if !delivered {
            notifier.remember(&target, notice.event, last);
        }
        if let Some(l) = notifier.lanes.get(lane) {
            l.free.add_permits(1);
        }
    }
}

struct Failure {
    message: String,
    retry: bool,
}

/// One attempt. Errors name the target only by its redacted form: reqwest's
/// own messages include the URL.
async fn send(client: &reqwest::Client, target: &Target, notice: &Notice) -> Result<(), Failure> {
    let request = match target.kind {
        Kind::Ntfy => {
            let failure = notice.event.class() == Class::Failure;
            client
                .post(&target.url)
                .header("Title", notice.event.title())
                .header("Priority", if failure { "high" } else { "default" })
                .header("Tags", if failure { "warning,floppy_disk" } else { "floppy_disk" })
                .body(notice.message())
        }
        Kind::Webhook => client
            .post(&target.url)
            .header("Content-Type", "application/json")
            .body(serde_json::to_vec(notice).unwrap_or_default()),
        Kind::Healthchecks => {
            let url = match notice.event.class() {
                Class::Start => format!("{}/start", target.url),
                Class::Success => target.url.clone(),
                Class::Failure => format!("{}/fail", target.url),
            };
            client.post(url).body(notice.message())
        }
    };
    let request = match &target.auth {
        Some((user, password)) if user.is_empty() => request.bearer_auth(password),
        Some((user, password)) => request.basic_auth(user, Some(password)),
        None => request,
    };
    match request.send().await {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => {
            let status = resp.status();
            // A client error will not get better by trying again (a wrong
            // topic or token), nor will a redirect (not followed); a server
            // error or a rate limit may.
            let retry = status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408;
            Err(Failure { message: format!("{} answered {status}", target.redacted), retry })
        }
        Err(e) => {
            let what = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "failed"
            };
            Err(Failure { message: format!("{} {what}", target.redacted), retry: true })
        }
    }
}
