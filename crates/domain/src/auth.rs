//! Who is calling: Framerr's session cookie looked up in its database, and
//! signing in the way Framerr does (a bcrypt password, a session row), so
//! that one sign-in serves both when they share an origin.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use crate::error::DbError;
use crate::ports::Clock;
use crate::secret::Password;

/// The user a live session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    pub user_id: String,
    /// `users.group_id = 'admin'`.
    pub is_admin: bool,
}

/// A user as sign-in sees it. The hash is never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub username: String,
    /// bcrypt (`$2a$`/`$2b$`); `None` or not local for SSO-only users.
    pub password_hash: Option<String>,
    pub has_local_password: bool,
    pub is_admin: bool,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account").field("id", &self.id).field("is_admin", &self.is_admin).finish_non_exhaustive()
    }
}

/// A `sessions` row, as Framerr writes one.
#[derive(Clone, PartialEq, Eq)]
pub struct NewSession {
    pub token: String,
    pub user_id: String,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    pub expires_at: i64,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession").field("user_id", &self.user_id).field("expires_at", &self.expires_at).finish()
    }
}

/// Framerr's `sessions` and `users` tables.
#[async_trait]
pub trait Sessions: Send + Sync {
    /// The user of session `token` if it exists and `expires_at` (Unix
    /// seconds) is after `now_unix`.
    async fn session_user(&self, token: &str, now_unix: i64) -> Result<Option<SessionUser>, DbError>;
    /// Whether any user exists (restore during initial setup needs none).
    async fn any_user(&self) -> Result<bool, DbError>;
    /// The user named `username` (case-insensitive), if any.
    async fn account(&self, username: &str) -> Result<Option<Account>, DbError> {
        let _ = username;
        Ok(None)
    }
    async fn create_session(&self, session: &NewSession) -> Result<(), DbError> {
        let _ = session;
        Err(DbError::Other("sessions cannot be created here".into()))
    }
    async fn delete_session(&self, token: &str) -> Result<(), DbError> {
        let _ = token;
        Ok(())
    }
    /// `system_config.auth.session.timeout`, in milliseconds, when set.
    async fn session_timeout_ms(&self) -> Result<Option<i64>, DbError> {
        Ok(None)
    }
    /// Every password hash's bcrypt cost in `users` (see [`bcrypt_cost`]),
    /// for the decoy check's cost ([`decoy_cost`]).
    async fn password_costs(&self) -> Result<Vec<u32>, DbError> {
        Ok(Vec::new())
    }
}

/// The highest cost Framerr gives a password hash (bcryptjs, 10 to 12).
pub const FRAMERR_MAX_COST: u32 = 12;

/// The cost of a bcrypt hash (`$2a$12$...`, `$2b$`, `$2y$`), when it is one.
pub fn bcrypt_cost(hash: &str) -> Option<u32> {
    let mut parts = hash.split('$');
    let (empty, version, cost) = (parts.next()?, parts.next()?, parts.next()?);
    if !empty.is_empty() || !matches!(version, "2a" | "2b" | "2y" | "2x") || cost.len() != 2 {
        return None;
    }
    cost.parse().ok().filter(|c| (4..=31).contains(c))
}

/// What a sign-in that checks no real hash (a name nobody has, an account
/// without a local password) spends instead: one check at the highest cost
/// among the accounts' hashes, so it takes as long as the costliest real
/// check; with no hash to go by, Framerr's highest.
pub fn decoy_cost(costs: &[u32]) -> u32 {
    costs.iter().copied().filter(|c| (4..=31).contains(c)).max().unwrap_or(FRAMERR_MAX_COST)
}

/// Password hashes and session tokens.
#[async_trait]
pub trait Credentials: Send + Sync {
    /// Whether `password` matches the bcrypt `hash`.
    async fn verify(&self, password: &Password, hash: &str) -> bool;
    /// Spends what one verification at bcrypt `cost` spends, for a name
    /// with no account or no local password: the answer takes as long
    /// whether the user exists or not.
    async fn spend(&self, password: &Password, cost: u32);
    /// A new session token (a random UUID v4, as Framerr's).
    fn new_token(&self) -> String;
}

/// Framerr's default session lifetime: 7 days; "remember me": 30 days.
pub const SESSION_DEFAULT: Duration = Duration::days(7);
pub const SESSION_REMEMBERED: Duration = Duration::days(30);
/// Failed sign-ins a client may make per window.
pub const MAX_FAILURES: usize = 5;
pub const FAILURE_WINDOW: Duration = Duration::minutes(15);

/// One sign-in attempt.
#[derive(Debug)]
pub struct SignInRequest {
    pub username: String,
    pub password: Password,
    pub remember: bool,
    /// The client's address: failures are counted per address.
    pub client: String,
    pub user_agent: Option<String>,
}

/// A session was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub token: String,
    pub user_id: String,
    pub username: String,
    pub expires_at: OffsetDateTime,
}

impl SignedIn {
    /// The cookie's lifetime.
    pub fn max_age(&self, now: OffsetDateTime) -> Duration {
        self.expires_at - now
    }
}

/// Why nobody was signed in. The messages never tell whether a user exists:
/// an account without a local password (single sign-on) fails as a wrong
/// password does, and counts the same.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignInError {
    #[error("Invalid username or password")]
    Invalid,
    #[error("Admin access required")]
    NotAdmin,
    #[error("Too many failed sign-ins; try again in {retry_after} seconds")]
    TooMany { retry_after: u64 },
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Failed sign-ins per client address, within a window.
#[derive(Debug, Default)]
struct Failures(HashMap<String, Vec<OffsetDateTime>>);

impl Failures {
    /// At most this many addresses are remembered; the oldest go first.
    const CAPACITY: usize = 10_000;

    fn recent(&mut self, client: &str, now: OffsetDateTime) -> &mut Vec<OffsetDateTime> {
        if self.0.len() >= Self::CAPACITY && !self.0.contains_key(client) {
            self.0.retain(|_, times| times.iter().any(|t| now - *t < FAILURE_WINDOW));
            if self.0.len() >= Self::CAPACITY {
                let oldest = self.0.iter().min_by_key(|(_, t)| t.iter().max().copied()).map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    self.0.remove(&oldest);
                }
            }
        }
        let times = self.0.entry(client.to_owned()).or_default();
        times.retain(|t| now - *t < FAILURE_WINDOW);
        times
    }
}

/// A sign-in attempt's place among its address's failures, given back
/// when it is dropped without having failed.
struct Attempt<'a> {
    failures: &'a Mutex<Failures>,
    client: String,
    at: OffsetDateTime,
    failed: bool,
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.failed {
            return;
        }
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(times) = failures.0.get_mut(&self.client)
            && let Some(i) = times.iter().position(|t| *t == self.at)
        {
            times.swap_remove(i);
        }
    }
}

/// Signing in and out with a Framerr account.
#[derive(Clone)]
pub struct SignIn {
    pub sessions: Arc<dyn Sessions>,
    pub credentials: Arc<dyn Credentials>,
    pub clock: Arc<dyn Clock>,
    failures: Arc<Mutex<Failures>>,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn").finish_non_exhaustive()
    }
}

impl SignIn {
    pub fn new(sessions: Arc<dyn Sessions>, credentials: Arc<dyn Credentials>, clock: Arc<dyn Clock>) -> Self {
        SignIn { sessions, credentials, clock, failures: Arc::default() }
    }

    /// Checks the password of an admin with a local password and creates a
    /// session. After [`MAX_FAILURES`] failures from one address within
    /// [`FAILURE_WINDOW`], that address waits.
    pub async fn sign_in(&self, request: SignInRequest) -> Result<SignedIn, SignInError> {
        let now = self.clock.now();
        // The attempt counts as a failure from before its password is
        // checked, so guesses sent at once are limited like guesses sent
        // in turn; one that does not fail gives its place back.
        let mut attempt = {
            let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            let recent = failures.recent(&request.client, now);
            if recent.len() >= MAX_FAILURES {
                let oldest = recent.iter().min().copied().unwrap_or(now);
                let wait = (oldest + FAILURE_WINDOW - now).whole_seconds().max(1) as u64;
                return Err(SignInError::TooMany { retry_after: wait });
            }
            recent.push(now);
            Attempt { failures: &self.failures, client: request.client.clone(), at: now, failed: false }
        };
        let account = self.sessions.account(request.username.trim()).await?;
        let verified = match account.as_ref().and_then(|a| a.password_hash.as_deref().filter(|_| a.has_local_password))
        {
            Some(hash) => self.credentials.verify(&request.password, hash).await,
            None => {
                // The costliest real check's cost: a missing or a single
                // sign-on account answers no sooner than a real one. Not
                // knowing the costs is no reason to answer sooner.
                let costs = self.sessions.password_costs().await.unwrap_or_default();
                self.credentials.spend(&request.password, decoy_cost(&costs)).await;
                false
            }
        };
        let account = match (account, verified) {
            (Some(account), true) => account,
            _ => {
                attempt.failed = true;
                return Err(SignInError::Invalid);
            }
        };
        if !account.is_admin {
            return Err(SignInError::NotAdmin);
        }
        let lifetime = if request.remember {
            SESSION_REMEMBERED
        } else {
            match self.sessions.session_timeout_ms().await? {
                Some(ms) if ms > 0 => Duration::milliseconds(ms),
                _ => SESSION_DEFAULT,
            }
        };
        let session = NewSession {
            token: self.credentials.new_token(),
            user_id: account.id.clone(),
            ip_address: Some(request.client),
            user_agent: request.user_agent,
            created_at: now.unix_timestamp(),
            expires_at: (now + lifetime).unix_timestamp(),
        };
        self.sessions.create_session(&session).await?;
        Ok(SignedIn {
            token: session.token,
            user_id: account.id,
            username: account.username,
            expires_at: now + lifetime,
        })
    }

    /// Deletes the session: signed out here and in Framerr.
    pub async fn sign_out(&self, token: &str) -> Result<(), DbError> {
        self.sessions.delete_session(token).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::FixedClock;
    use futures::executor::block_on;
    use time::macros::datetime;

    #[derive(Default)]
    struct Db {
        created: Mutex<Vec<NewSession>>,
    }

    #[async_trait]
    impl Sessions for Db {
        async fn session_user(&self, _: &str, _: i64) -> Result<Option<SessionUser>, DbError> {
            Ok(None)
        }
        async fn any_user(&self) -> Result<bool, DbError> {
            Ok(true)
        }
        async fn account(&self, username: &str) -> Result<Option<Account>, DbError> {
            let account = |id: &str, admin: bool, local: bool| Account {
                id: id.into(),
                username: username.into(),
                password_hash: local.then(|| format!("hash-of-right-{id}")),
                has_local_password: local,
                is_admin: admin,
            };
            Ok(match username {
                "admin" => Some(account("u-admin", true, true)),
                "alice" => Some(account("u-alice", false, true)),
                "sso" => Some(account("u-sso", true, false)),
                _ => None,
            })
        }
        async fn create_session(&self, session: &NewSession) -> Result<(), DbError> {
            self.created.lock().unwrap().push(session.clone());
            Ok(())
        }
        async fn password_costs(&self) -> Result<Vec<u32>, DbError> {
            Ok(vec![10, 12, 11])
        }
    }

    #[derive(Default)]
    struct Hashes {
        spent: Mutex<usize>,
        decoys: Mutex<Vec<u32>>,
    }

    #[async_trait]
    impl Credentials for Hashes {
        async fn verify(&self, password: &Password, hash: &str) -> bool {
            *self.spent.lock().unwrap() += 1;
            hash == format!("hash-of-{}", password.expose())
        }
        async fn spend(&self, _: &Password, cost: u32) {
            *self.spent.lock().unwrap() += 1;
            self.decoys.lock().unwrap().push(cost);
        }
        fn new_token(&self) -> String {
            "0f0e0d0c-0b0a-4908-8706-050403020100".into()
        }
    }

    fn request(user: &str, password: &str, client: &str) -> SignInRequest {
        SignInRequest {
            username: user.into(),
            password: Password::new(password),
            remember: false,
            client: client.into(),
            user_agent: Some("test".into()),
        }
    }

    #[test]
    fn admins_sign_in_and_the_rest_are_told_why_not_without_telling_who_exists() {
        let (db, hashes) = (Arc::new(Db::default()), Arc::new(Hashes::default()));
        let now = datetime!(2026-11-27 12:00 UTC);
        let sign_in = SignIn::new(db.clone(), hashes.clone(), Arc::new(FixedClock::at(now)));
        let done = block_on(sign_in.sign_in(request("admin", "right-u-admin", "10.0.0.1"))).unwrap();
        assert_eq!((done.user_id.as_str(), done.expires_at), ("u-admin", now + SESSION_DEFAULT));
        let row = db.created.lock().unwrap()[0].clone();
        assert_eq!(
            (row.ip_address.as_deref(), row.expires_at),
            (Some("10.0.0.1"), (now + SESSION_DEFAULT).unix_timestamp())
        );
        let mut remembered = request("admin", "right-u-admin", "10.0.0.1");
        remembered.remember = true;
        assert_eq!(block_on(sign_in.sign_in(remembered)).unwrap().expires_at, now + SESSION_REMEMBERED);
        assert!(matches!(
            block_on(sign_in.sign_in(request("alice", "right-u-alice", "a"))),
            Err(SignInError::NotAdmin)
        ));
        // Wrong password, unknown user, an account without a local
        // password: the same answer, the same work.
        let before = *hashes.spent.lock().unwrap();
        let wrong = block_on(sign_in.sign_in(request("admin", "wrong", "b"))).unwrap_err().to_string();
        let nobody = block_on(sign_in.sign_in(request("nobody", "wrong", "b"))).unwrap_err().to_string();
        let sso = block_on(sign_in.sign_in(request("sso", "anything", "b"))).unwrap_err().to_string();
        assert_eq!(wrong, nobody);
        assert_eq!(wrong, sso);
        assert_eq!(*hashes.spent.lock().unwrap(), before + 3);
        // The decoys cost what the costliest account's check costs.
        assert_eq!(*hashes.decoys.lock().unwrap(), [12, 12]);
    }

    #[test]
    fn the_decoy_costs_the_highest_cost_among_the_hashes() {
        assert_eq!(bcrypt_cost("$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"), Some(12));
        assert_eq!(bcrypt_cost("$2a$10$abc"), Some(10));
        for not in ["", "$2b$", "$2b$1$x", "$2c$10$x", "plain", "$2b$99$x", "x$2b$10$y"] {
            assert_eq!(bcrypt_cost(not), None, "{not}");
        }
        assert_eq!(decoy_cost(&[10, 14, 11]), 14);
        assert_eq!(decoy_cost(&[10]), 10);
        assert_eq!(decoy_cost(&[]), FRAMERR_MAX_COST);
        assert_eq!(decoy_cost(&[99, 2]), FRAMERR_MAX_COST);
    }

    #[test]
    fn an_account_without_a_local_password_counts_as_a_failure() {
        let clock = Arc::new(FixedClock::at(datetime!(2026-11-27 12:00 UTC)));
        let sign_in = SignIn::new(Arc::new(Db::default()), Arc::new(Hashes::default()), clock);
        for _ in 0..MAX_FAILURES {
            let err = block_on(sign_in.sign_in(request("sso", "guess", "1.2.3.4"))).unwrap_err();
            assert!(matches!(err, SignInError::Invalid), "{err}");
        }
        let err = block_on(sign_in.sign_in(request("admin", "right-u-admin", "1.2.3.4"))).unwrap_err();
        assert!(matches!(err, SignInError::TooMany { .. }), "{err}");
    }

    /// Verifies like [`Hashes`], after letting every other attempt run.
    struct Slow(Hashes);

    #[async_trait]
    impl Credentials for Slow {
        async fn verify(&self, password: &Password, hash: &str) -> bool {
            let mut yielded = false;
            std::future::poll_fn(|cx| {
                if std::mem::replace(&mut yielded, true) {
                    std::task::Poll::Ready(())
                } else {
                    cx.waker().wake_by_ref();
                    std::task::Poll::Pending
                }
            })
            .await;
            self.0.verify(password, hash).await
        }
        async fn spend(&self, password: &Password, cost: u32) {
            self.0.spend(password, cost).await
        }
        fn new_token(&self) -> String {
            self.0.new_token()
        }
    }

    #[test]
    fn guesses_sent_at_once_are_limited_like_guesses_sent_in_turn() {
        let clock = Arc::new(FixedClock::at(datetime!(2026-11-27 12:00 UTC)));
        let sign_in = SignIn::new(Arc::new(Db::default()), Arc::new(Slow(Hashes::default())), clock);
        let mut guesses: Vec<_> = (0..50).map(|i| request("admin", &format!("wrong-{i}"), "1.2.3.4")).collect();
        guesses.push(request("admin", "right-u-admin", "1.2.3.4"));
        let outcomes = block_on(futures::future::join_all(guesses.into_iter().map(|r| sign_in.sign_in(r))));
        let checked = outcomes.iter().filter(|o| !matches!(o, Err(SignInError::TooMany { .. }))).count();
        assert_eq!(checked, MAX_FAILURES, "{outcomes:?}");
        assert!(outcomes.last().unwrap().is_err(), "the right password got in after 50 guesses");
        // A success gives its reservation back: signing in does not count.
        let clock = Arc::new(FixedClock::at(datetime!(2026-11-27 12:00 UTC)));
        let sign_in = SignIn::new(Arc::new(Db::default()), Arc::new(Slow(Hashes::default())), clock);
        for _ in 0..MAX_FAILURES + 2 {
            assert!(block_on(sign_in.sign_in(request("admin", "right-u-admin", "1.2.3.4"))).is_ok());
        }
    }

    #[test]
    fn failures_are_limited_per_address_within_a_window() {
        let (db, hashes) = (Arc::new(Db::default()), Arc::new(Hashes::default()));
        let clock = Arc::new(FixedClock::at(datetime!(2026-11-27 12:00 UTC)));
        let sign_in = SignIn::new(db, hashes, clock.clone());
        for _ in 0..MAX_FAILURES {
            assert!(matches!(
                block_on(sign_in.sign_in(request("admin", "wrong", "1.2.3.4"))),
                Err(SignInError::Invalid)
            ));
        }
        // Even the right password waits now; another address does not.
        let err = block_on(sign_in.sign_in(request("admin", "right-u-admin", "1.2.3.4"))).unwrap_err();
        assert!(matches!(err, SignInError::TooMany { retry_after } if retry_after == 900), "{err}");
        assert!(block_on(sign_in.sign_in(request("admin", "right-u-admin", "5.6.7.8"))).is_ok());
        clock.set(datetime!(2026-11-27 12:15:01 UTC));
        assert!(block_on(sign_in.sign_in(request("admin", "right-u-admin", "1.2.3.4"))).is_ok());
    }
}
