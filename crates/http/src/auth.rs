//! Admin only, as Framerr: the `sessionId` cookie names a live session of
//! an admin user; or, for headless use, `Authorization: Bearer <token>`
//! when a token is configured (compared in constant time).

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::middleware::Next;
use axum::response::Response;

use backup_domain::secret::constant_time_eq;

use crate::{ApiError, AppState};

fn session_cookie(request: &Request) -> Option<String> {
    request.headers().get_all(COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|header| {
        header.split(';').find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == "sessionId" && !value.is_empty()).then(|| value.to_owned())
        })
    })
}

pub(crate) async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let (Some(token), Some(header)) = (&state.bearer_token, request.headers().get(AUTHORIZATION)) {
        let given = header.to_str().ok().and_then(|h| h.strip_prefix("Bearer ")).unwrap_or("");
        if constant_time_eq(given.as_bytes(), token.as_bytes()) {
            return Ok(next.run(request).await);
        }
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "Not authenticated"));
    }
    let Some(session) = session_cookie(&request) else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "Not authenticated"));
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    match state.sessions.session_user(&session, now).await {
        Ok(Some(user)) if user.is_admin => Ok(next.run(request).await),
        Ok(Some(_)) => Err(ApiError::new(StatusCode::FORBIDDEN, "Admin access required")),
        Ok(None) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "Not authenticated")),
        Err(e) => Err(ApiError::internal("Authentication", e)),
    }
}
