//! The one place errors become HTTP statuses (axum's error-handling
//! pattern). User mistakes are 4xx with a message the UI shows; internal
//! failures are 500 with a generic message, their detail logged.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use backup_crypto::manage::ManageError;
use backup_domain::{CreateError, StoreError};

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
            other => ApiError::internal("the backup store", other),
        }
    }
}

impl From<CreateError> for ApiError {
    fn from(e: CreateError) -> Self {
        match e {
            CreateError::InProgress => ApiError::new(StatusCode::CONFLICT, "A backup is already in progress"),
            other => ApiError::internal("Backup", other),
        }
    }
}

impl From<ManageError> for ApiError {
    fn from(e: ManageError) -> Self {
        let status = match &e {
            ManageError::PasswordTooShort | ManageError::NoServerKey => StatusCode::BAD_REQUEST,
            ManageError::AlreadyEnabled => StatusCode::CONFLICT,
            ManageError::NotEnabled => StatusCode::NOT_FOUND,
            ManageError::WrongPassword => StatusCode::FORBIDDEN,
            _ => return ApiError::internal("Backup encryption", e),
        };
        ApiError::new(status, e.to_string())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
