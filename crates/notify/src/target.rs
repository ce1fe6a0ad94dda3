//! Notification targets, from URLs, with their secrets kept out of sight.

use std::fmt;

use backup_domain::notify::{Class, Event};

/// How a target is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// POST the message to a topic (ntfy.sh or a self-hosted ntfy).
    Ntfy,
    /// POST the notice as JSON.
    Webhook,
    /// healthchecks.io-style pings: `/start`, the bare URL, `/fail`.
    Healthchecks,
}

/// One place notices go.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: Kind,
    /// Where to send, without our parameters and without user info.
    pub url: String,
    /// From the URL's user info: `user:password` (basic) or `:token` (bearer).
    pub auth: Option<(String, String)>,
    /// The classes of events it wants.
    pub on: Vec<Class>,
    /// For logs, listings and errors: scheme and host only.
    pub redacted: String,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target").field("kind", &self.kind).field("redacted", &self.redacted).finish_non_exhaustive()
    }
}

/// A notification URL that cannot be used. Never repeats the URL's secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid notification URL {redacted}: {reason}")]
pub struct BadTarget {
    pub redacted: String,
    pub reason: String,
}

/// `scheme://host[:port]/…`: the path, query and user info of these URLs
/// are secrets (a healthchecks UUID, an ntfy topic, a webhook token).
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url
        .split_once("://")
        .filter(|(s, _)| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    else {
        // Not a URL at all: nothing of it is safe to show.
        return "(not a URL)".to_owned();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let tail = if rest.len() > authority.len() { "/…" } else { "" };
    format!("{scheme}://{host}{tail}")
}

impl Target {
    /// Reads a target: `ntfy://host/topic` (https), `ntfy+http://host/topic`,
    /// `https://ntfy.sh/topic`; `https://hc-ping.com/<uuid>` or
    /// `healthchecks+http(s)://host/ping/<uuid>`; any other `http(s)://` URL
    /// is a webhook. `?on=start,success,failure` says which events it gets
    /// (default: failures; healthchecks: all three, it is a heartbeat).
    pub fn parse(text: &str) -> Result<Target, BadTarget> {
        let text = text.trim();
        let redacted = redact(text);
        let bad = |reason: &str| BadTarget { redacted: redacted.clone(), reason: reason.to_owned() };
        let (scheme, rest) =
            text.split_once("://").ok_or_else(|| bad("expected a URL such as ntfy://ntfy.sh/topic"))?;
        let (kind, http_scheme) = match scheme.to_ascii_lowercase().as_str() {
            "ntfy" | "ntfy+https" => (Kind::Ntfy, "https"),
            "ntfy+http" => (Kind::Ntfy, "http"),
            "healthchecks" | "healthchecks+https" => (Kind::Healthchecks, "https"),
            "healthchecks+http" => (Kind::Healthchecks, "http"),
            "webhook+https" => (Kind::Webhook, "https"),
            "webhook+http" => (Kind::Webhook, "http"),
            "https" | "http" => {
                let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
                let host = host.rsplit_once('@').map_or(host, |(_, h)| h).to_ascii_lowercase();
                let kind = match host.as_str() {
                    "ntfy.sh" => Kind::Ntfy,
                    "hc-ping.com" => Kind::Healthchecks,
                    _ => Kind::Webhook,
                };
                (kind, if scheme.eq_ignore_ascii_case("https") { "https" } else { "http" })
            }
            _ => return Err(bad("the scheme must be ntfy, healthchecks, http or https (with +http or +https)")),
        };
        let (before_fragment, _) = rest.split_once('#').unwrap_or((rest, ""));
        let (location, query) = before_fragment.split_once('?').unwrap_or((before_fragment, ""));
        let (authority, path) = location.split_once('/').unwrap_or((location, ""));
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        if host.is_empty() {
            return Err(bad("it has no host"));
        }
        if kind != Kind::Webhook && path.trim_matches('/').is_empty() {
            return Err(bad(if kind == Kind::Ntfy { "it has no topic" } else { "it has no check (UUID) in its path" }));
        }
        let mut on = None;
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("on", list)) => {
                    let mut classes = Vec::new();
                    for item in list.split([',', '+']).map(str::trim).filter(|s| !s.is_empty()) {
                        classes.push(match item {
                            "start" => Class::Start,
                            "success" => Class::Success,
                            "failure" => Class::Failure,
                            _ => return Err(bad("on= takes start, success and failure, comma-separated")),
                        });
                    }
                    on = Some(classes);
                }
                _ => kept.push(pair),
            }
        }
        let on = on.unwrap_or_else(|| match kind {
            Kind::Healthchecks => vec![Class::Start, Class::Success, Class::Failure],
            _ => vec![Class::Failure],
        });
        let auth = userinfo.map(|u| {
            let (user, password) = u.split_once(':').unwrap_or((u, ""));
            (percent_decode(user), percent_decode(password))
        });
        let mut url = format!("{http_scheme}://{host}/{}", path.trim_end_matches('/'));
        if !kept.is_empty() {
            url.push('?');
            url.push_str(&kept.join("&"));
        }
        // What reqwest will be given must be a URL it can send to: checked
        // now, not found broken at the first failure.
        match reqwest::Url::parse(&url) {
            Ok(parsed) if parsed.host_str().is_some_and(|h| !h.is_empty()) => {}
            _ => return Err(bad("it is not a valid URL (host or port)")),
        }
        Ok(Target { kind, url, auth, on, redacted })
    }

    pub fn wants(&self, event: Event) -> bool {
        self.on.contains(&event.class())
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_defaults_and_our_parameters() {
        let t = Target::parse("ntfy://ntfy.sh/framerr-backups-x7").unwrap();
        assert_eq!(
            (t.kind, t.url.as_str(), t.on.as_slice()),
            (Kind::Ntfy, "https://ntfy.sh/framerr-backups-x7", &[Class::Failure][..])
        );
        assert_eq!(Target::parse("https://ntfy.sh/topic").unwrap().kind, Kind::Ntfy);
        let t = Target::parse("ntfy+http://127.0.0.1:8080/alerts?on=success,failure").unwrap();
        assert_eq!(
            (t.url.as_str(), t.on.as_slice()),
            ("http://127.0.0.1:8080/alerts", &[Class::Success, Class::Failure][..])
        );
        let t = Target::parse("https://hc-ping.com/0f3c2a1e-uuid").unwrap();
        assert_eq!((t.kind, t.on.len()), (Kind::Healthchecks, 3));
        let t = Target::parse("https://user:p%40ss@hooks.example/backup?token=abc&on=failure").unwrap();
        assert_eq!(t.kind, Kind::Webhook);
        assert_eq!(t.url, "https://hooks.example/backup?token=abc");
        assert_eq!(t.auth, Some(("user".into(), "p@ss".into())));
        assert_eq!(t.redacted, "https://hooks.example/…");
    }

    #[test]
    fn bad_urls_are_refused_without_their_secrets() {
        for (url, why) in [
            ("ftp://secret-host/x", "scheme"),
            ("ntfy://ntfy.sh/", "no topic"),
            ("https://hc-ping.com/", "no check"),
            ("ntfy://ntfy.sh/topic?on=sometimes", "on="),
            ("not a url with-secret", "expected a URL"),
            ("http://[::1?on=success", "not a valid URL"),
            ("ntfy+http://127.0.0.1:99999/topic", "not a valid URL"),
        ] {
            let err = Target::parse(url).unwrap_err().to_string();
            assert!(err.contains(why), "{url}: {err}");
        }
        let err = Target::parse("https://ntfy.sh/my-secret-topic?on=never").unwrap_err().to_string();
        assert!(!err.contains("my-secret-topic"), "{err}");
    }

    #[test]
    fn redaction_keeps_scheme_and_host_only() {
        assert_eq!(redact("https://user:pw@hc-ping.com/uuid?x=1"), "https://hc-ping.com/…");
        assert_eq!(redact("ntfy://ntfy.sh/topic"), "ntfy://ntfy.sh/…");
        assert_eq!(redact("https://example.com"), "https://example.com");
        assert_eq!(redact("://SECRET-topic"), "(not a URL)");
        assert_eq!(redact("SECRET-topic"), "(not a URL)");
    }
}
