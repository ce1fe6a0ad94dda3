//! The one place errors become HTTP statuses (axum's error-handling
//! pattern). User mistakes are 4xx with a message the UI shows; internal
//! failures are 500 with a generic message, their detail logged.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use backup_domain::restore::{OpenError, StageError};
use backup_domain::{CreateError, EncryptionError, RestoreError, StoreError};

/// An error response: `{"error": "..."}` plus optional fields.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub extra: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), extra: None }
    }

    pub fn with(mut self, extra: serde_json::Value) -> Self {
        self.extra = Some(extra);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// A failure the client cannot fix: logged in full, answered in general.
    pub fn internal(what: &str, detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "{what}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{what} failed"))
    }

    /// The disk is full: the server's problem, said plainly (507).
    pub fn full(what: &str, detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "{what}: no space left");
        Self::new(StatusCode::INSUFFICIENT_STORAGE, format!("{what} failed: no space left on the server's disk"))
    }

    pub fn in_progress() -> Self {
        Self::new(StatusCode::CONFLICT, "A backup or restore is already in progress")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.message });
        if let (Some(map), Some(serde_json::Value::Object(extra))) = (body.as_object_mut(), self.extra) {
            map.extend(extra);
        }
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => ApiError::not_found("Backup not found"),
            StoreError::Full(_) => ApiError::full("The backup store", e),
            other => ApiError::internal("the backup store", other),
        }
    }
}

impl From<CreateError> for ApiError {
    fn from(e: CreateError) -> Self {
        match e {
            CreateError::InProgress => ApiError::new(StatusCode::CONFLICT, "A backup is already in progress"),
            CreateError::Busy(_) => ApiError::in_progress(),
            CreateError::Store(StoreError::Full(_)) => ApiError::full("Backup", e),
            other => ApiError::internal("Backup", other),
        }
    }
}

impl From<EncryptionError> for ApiError {
    fn from(e: EncryptionError) -> Self {
        use backup_domain::encryption::VaultError;
        let status = match &e {
            EncryptionError::PasswordTooShort | EncryptionError::Vault(VaultError::NoServerKey) => {
                StatusCode::BAD_REQUEST
            }
            EncryptionError::AlreadyEnabled | EncryptionError::Busy => StatusCode::CONFLICT,
            EncryptionError::NotEnabled => StatusCode::NOT_FOUND,
            EncryptionError::WrongPassword => StatusCode::FORBIDDEN,
            _ => return ApiError::internal("Backup encryption", e),
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<RestoreError> for ApiError {
    /// The backup's fault is 400 (401 for a wrong password); the server's
    /// is 500, or 507 for a full disk: a user must never be told a good
    /// backup is damaged because the disk filled up.
    fn from(e: RestoreError) -> Self {
        match e {
            RestoreError::InProgress | RestoreError::Busy(_) => ApiError::in_progress(),
            RestoreError::NotFound(_) => ApiError::not_found("Backup not found"),
            RestoreError::SetupClosed => ApiError::new(StatusCode::FORBIDDEN, e.to_string()),
            RestoreError::Open(OpenError::WrongPassword) => ApiError::new(StatusCode::UNAUTHORIZED, e.to_string()),
            RestoreError::Open(OpenError::PasswordRequired) => {
                ApiError::bad_request(e.to_string()).with(serde_json::json!({ "passwordRequired": true }))
            }
            RestoreError::Open(OpenError::Io(_)) => ApiError::internal("Reading the backup", e),
            RestoreError::Stage(StageError::Io { full: true, .. }) | RestoreError::Full(_) => {
                ApiError::full("Restore", e)
            }
            RestoreError::Stage(StageError::Io { .. }) => ApiError::internal("Restore", e),
            RestoreError::Store(store) => store.into(),
            RestoreError::Safety(_) | RestoreError::Database(_) => ApiError::internal("Restore", e),
            other => ApiError::bad_request(other.to_string()),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
