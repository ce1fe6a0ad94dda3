//! Who is calling: Framerr's session cookie looked up in its database.

use async_trait::async_trait;

use crate::error::DbError;

/// The user a live session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    pub user_id: String,
    /// `users.group_id = 'admin'`.
    pub is_admin: bool,
}

/// Framerr's `sessions` and `users` tables.
#[async_trait]
pub trait Sessions: Send + Sync {
    /// The user of session `token` if it exists and `expires_at` (Unix
    /// seconds) is after `now_unix`.
    async fn session_user(&self, token: &str, now_unix: i64) -> Result<Option<SessionUser>, DbError>;
    /// Whether any user exists (restore during initial setup needs none).
    async fn any_user(&self) -> Result<bool, DbError>;
}
