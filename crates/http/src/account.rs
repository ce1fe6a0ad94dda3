//! Signing in with a Framerr admin account (Framerr's `POST
//! /api/auth/login`: a bcrypt password, a `sessions` row, the `sessionId`
//! cookie), and signing out.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Extension, State};
use axum::http::header::{COOKIE, SET_COOKIE, USER_AGENT};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use backup_domain::Password;
use backup_domain::auth::{SignInError, SignInRequest};

use crate::{ApiError, ApiResult, AppState, TrustedProxies};

/// The address failures are counted for: the peer's, or, behind a reverse
/// proxy we trust (loopback, or one named), the client address it reports.
pub(crate) fn client_address(peer: Option<SocketAddr>, headers: &HeaderMap, proxies: &TrustedProxies) -> String {
    let Some(peer) = peer else { return "unknown".into() };
    if !proxies.trusts(peer.ip()) {
        return peer.ip().to_string();
    }
    // The proxy appends the address it saw: the last entry of all the
    // header's lines together. Only an address counts (a port, or any
    // other text, would make a fresh counter per guess).
    let last = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back();
    last.and_then(forwarded_ip).map_or_else(|| peer.ip().to_string(), |ip| ip.to_canonical().to_string())
}

/// `203.0.113.7`, `203.0.113.7:5123`, `2001:db8::1` or `[2001:db8::1]:5123`.
fn forwarded_ip(entry: &str) -> Option<std::net::IpAddr> {
    let entry = entry.trim();
    entry.parse().ok().or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

/// `Secure` when the request came over https, directly or through a proxy.
fn over_https(headers: &HeaderMap) -> bool {
    headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

fn cookie(token: &str, max_age: i64, secure: bool) -> Result<HeaderValue, ApiError> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("sessionId={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"))
        .map_err(|e| ApiError::internal("Signing in", e))
}

pub(crate) async fn login(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> ApiResult<Response> {
    let body = body.map(|Json(v)| v).unwrap_or_default();
    let text = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (username, password) = (text("username"), text("password"));
    if username.is_empty() || password.is_empty() {
        return Err(ApiError::bad_request("Username and password are required"));
    }
    let request = SignInRequest {
        username,
        password: Password::new(password),
        remember: body.get("rememberMe").and_then(Value::as_bool).unwrap_or(false),
        client: client_address(peer.map(|Extension(ConnectInfo(a))| a), &headers, &state.trusted_proxies),
        user_agent: headers.get(USER_AGENT).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(512).collect()),
    };
    let signed = state.sign_in.sign_in(request).await.map_err(|e| match e {
        SignInError::Invalid => ApiError::new(StatusCode::UNAUTHORIZED, e.to_string()),
        SignInError::NotAdmin => ApiError::new(StatusCode::FORBIDDEN, e.to_string()),
        SignInError::TooMany { retry_after } => {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, e.to_string()).with(json!({ "retryAfter": retry_after }))
        }
        other => ApiError::internal("Signing in", other),
    })?;
    let now = state.sign_in.clock.now();
    let max_age = signed.max_age(now).whole_seconds().max(0);
    let mut response =
        Json(json!({ "success": true, "user": { "id": signed.user_id, "username": signed.username } })).into_response();
    response.headers_mut().insert(SET_COOKIE, cookie(&signed.token, max_age, over_https(&headers))?);
    Ok(response)
}

pub(crate) async fn logout(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let session = headers.get_all(COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|header| {
        header.split(';').find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == "sessionId" && !value.is_empty()).then(|| value.to_owned())
        })
    });
    if let Some(token) = session {
        state.sign_in.sign_out(&token).await.map_err(|e| ApiError::internal("Signing out", e))?;
    }
    let mut response = Json(json!({ "success": true })).into_response();
    response.headers_mut().insert(SET_COOKIE, cookie("", 0, over_https(&headers))?);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_proxy_reports_the_client_others_cannot() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6, 10.0.0.7"));
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let remote: SocketAddr = "192.168.1.9:5000".parse().unwrap();
        let none = TrustedProxies::default();
        assert_eq!(client_address(Some(local), &headers, &none), "10.0.0.7");
        assert_eq!(client_address(Some(remote), &headers, &none), "192.168.1.9");
        assert_eq!(client_address(None, &headers, &none), "unknown");
        // A proxy in a Docker network, named.
        let docker: SocketAddr = "172.18.0.2:5000".parse().unwrap();
        let named = TrustedProxies::parse("172.18.0.0/16").unwrap();
        assert_eq!(client_address(Some(docker), &headers, &none), "172.18.0.2");
        assert_eq!(client_address(Some(docker), &headers, &named), "10.0.0.7");
        // Every line of the header counts (a proxy may add its own line),
        // ports and junk never make a counter of their own.
        let mut two = HeaderMap::new();
        two.append("x-forwarded-for", HeaderValue::from_static("198.51.100.9"));
        two.append("x-forwarded-for", HeaderValue::from_static("10.0.0.77"));
        assert_eq!(client_address(Some(local), &two, &none), "10.0.0.77");
        for (value, client) in [
            ("10.0.0.88:40123", "10.0.0.88"),
            ("[2001:db8::1]:5123", "2001:db8::1"),
            ("::ffff:10.0.0.9", "10.0.0.9"),
            ("not-an-address", "127.0.0.1"),
            ("", "127.0.0.1"),
        ] {
            let mut h = HeaderMap::new();
            h.insert("x-forwarded-for", HeaderValue::from_str(value).unwrap());
            assert_eq!(client_address(Some(local), &h, &none), client, "{value:?}");
        }
    }
}
