//! Admin only, as Framerr: the `sessionId` cookie names a live session of
//! an admin user; or, for headless use, `Authorization: Bearer <token>`
//! when a token is configured (compared in constant time).

use axum::extract::{Request, State};
use axum::http::header::COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use backup_domain::secret::constant_time_eq;

use crate::{ApiError, AppState};

/// The `sessionId` cookie's value, when there is one.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers.get_all(COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|header| {
        header.split(';').find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == "sessionId" && !value.is_empty()).then(|| value.to_owned())
        })
    })
}

/// Who a request is, once authenticated; handlers may read it.
#[derive(Debug, Clone)]
pub(crate) enum Caller {
    /// The headless token.
    Token,
    /// A Framerr session of an admin: its token, to notice when it ends.
    Session(String),
}

pub(crate) async fn require_admin(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    // A Bearer token, when one is sent, must be ours; any other scheme (a
    // reverse proxy's basic auth) is not meant for us and is ignored.
    if let Some(given) = crate::guard::bearer(&request) {
        let ours = state.bearer_token.as_ref().is_some_and(|t| constant_time_eq(given.as_bytes(), t.as_bytes()));
        if !ours {
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "Not authenticated"));
        }
        request.extensions_mut().insert(Caller::Token);
        return Ok(next.run(request).await);
    }
    let Some(session) = session_cookie(request.headers()) else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "Not authenticated"));
    };
    match admin_session(&state, &session).await? {
        true => {
            request.extensions_mut().insert(Caller::Session(session));
            Ok(next.run(request).await)
        }
        false => Err(ApiError::new(StatusCode::FORBIDDEN, "Admin access required")),
    }
}

/// Whether `session` is a live admin session: `Ok(false)` for another
/// user's, 401 for none.
pub(crate) async fn admin_session(state: &AppState, session: &str) -> Result<bool, ApiError> {
    match session_admin(&*state.sessions, session).await {
        Ok(Some(admin)) => Ok(admin),
        Ok(None) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "Not authenticated")),
        Err(e) => Err(ApiError::internal("Authentication", e)),
    }
}

/// Whether `session` is a live admin's; `None` for no live session.
pub(crate) async fn session_admin(
    sessions: &dyn backup_domain::auth::Sessions,
    session: &str,
) -> Result<Option<bool>, backup_domain::DbError> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    Ok(sessions.session_user(session, now).await?.map(|user| user.is_admin))
}
