//! The page, compiled into the binary: `/` and `/assets/<file>`.

use std::io::Write;
use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::ApiError;

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "webmanifest" => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

/// Each file gzipped once, on first use: text compresses to a quarter, and
/// the page's first load stays well under 100 KB over the wire.
fn gzipped(name: &str) -> Option<&'static [u8]> {
    static GZIPPED: OnceLock<Vec<(&'static str, Vec<u8>)>> = OnceLock::new();
    let all = GZIPPED.get_or_init(|| {
        ASSETS
            .iter()
            .map(|(name, body)| {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                let done = gz.write_all(body).and_then(|()| gz.finish());
                (*name, done.unwrap_or_default())
            })
            .collect()
    });
    all.iter().find(|(n, gz)| *n == name && !gz.is_empty()).map(|(_, gz)| gz.as_slice())
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).any(|v| {
        v.split(',').any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            let refused = parts.any(|p| p.replace(' ', "") == "q=0" || p.replace(' ', "") == "q=0.0");
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
    })
}

fn file(name: &str, request: &HeaderMap) -> Response {
    let Some((_, body)) = ASSETS.iter().find(|(n, _)| *n == name) else {
        return ApiError::not_found("Not found").into_response();
    };
    let gz = accepts_gzip(request).then(|| gzipped(name)).flatten();
    let mut response = (StatusCode::OK, gz.unwrap_or(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(name)));
    if gz.is_some() {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    // Small files, always checked: a new version shows at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

pub(crate) async fn index(headers: HeaderMap) -> Response {
    file("index.html", &headers)
}

pub(crate) async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    file(&name, &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_page_is_under_100_kb_over_the_wire() {
        let total: usize = ASSETS.iter().map(|(name, _)| gzipped(name).map_or(0, <[u8]>::len)).sum();
        assert!(total < 100_000, "{total} bytes gzipped");
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip, deflate, br"));
        assert!(accepts_gzip(&headers));
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("br;q=1, gzip;q=0"));
        assert!(!accepts_gzip(&headers));
        let response = file("app.js", &HeaderMap::new());
        assert!(response.headers().get(header::CONTENT_ENCODING).is_none());
    }

    #[test]
    fn types() {
        assert_eq!(super::content_type("app.js"), "text/javascript; charset=utf-8");
        assert_eq!(super::content_type("index.html"), "text/html; charset=utf-8");
    }
}
