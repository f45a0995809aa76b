//! Cross-cutting request and response handling: the access log, errors
//! shown as problem documents or pages, tags of compressed bodies, and the
//! seed client's quirk.

use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::conditional::ENCODING_SUFFIXES;
use super::negotiate::prefers_html;
use super::problem::{html_page, Problem, PROBLEM_JSON};

/// Logs one line per request: method, path, status, bytes, duration.
pub async fn access_log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let bytes = http_body::Body::size_hint(response.body())
        .exact()
        .map_or_else(|| "-".to_string(), |n| n.to_string());
    tracing::info!(
        target: "csvd::access",
        "{method} {path} {} {bytes} {:.1}ms",
        response.status().as_u16(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    response
}

/// Every error leaves as a problem document (RFC 9457), or as a readable
/// page when a browser asked. Errors raised below the handlers (a body over
/// the limit, a path that does not decode) arrive as plain text and are
/// rewrapped here, so the whole API speaks one error format.
pub async fn problems(request: Request, next: Next) -> Response {
    let html = prefers_html(
        request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok()),
    );
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let status = response.status();
    if !status.is_client_error() && !status.is_server_error() {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem && !html {
        return response;
    }
    let (parts, body) = response.into_parts();
    // Error bodies are small; 64 KiB bounds a surprise.
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let (title, detail) = if is_problem {
        let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let text = |key: &str| {
            doc.get(key)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        (text("title"), text("detail"))
    } else {
        let text = String::from_utf8_lossy(&bytes).trim().to_string();
        let title = status.canonical_reason().unwrap_or("Error").to_string();
        let detail = if text.is_empty() { title.clone() } else { text };
        (title, detail)
    };
    let mut rebuilt = if html {
        let page = html_page(status.as_u16(), &title, &detail, &path);
        let mut response = Response::new(Body::from(page));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        crate::page::protect(response.headers_mut());
        response
    } else {
        Problem::new(status, "http", detail).into_response()
    };
    *rebuilt.status_mut() = status;
    for name in [header::ALLOW, header::WWW_AUTHENTICATE, header::RETRY_AFTER] {
        if let Some(value) = parts.headers.get(&name) {
            rebuilt.headers_mut().insert(name, value.clone());
        }
    }
    rebuilt
}

/// A compressed body is a different representation: give it its own tag
/// (`"…-gzip"`), so strong tags stay strong. Conditional checks strip it.
pub async fn tag_encodings(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let encoding = response
        .headers()
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (Some(encoding), Some(tag)) = (encoding, response.headers().get(header::ETAG)) else {
        return response;
    };
    let Ok(tag) = tag.to_str() else {
        return response;
    };
    let suffix = format!("-{encoding}");
    if !ENCODING_SUFFIXES.contains(&suffix.as_str()) {
        return response;
    }
    let tagged = format!("{}{suffix}\"", tag.trim_end_matches('"'));
    if let Ok(value) = HeaderValue::from_str(&tagged) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// The seed's client sends every request to `/` with the path it meant in
/// the `Host` header (`Host: /people`). Such a request is read as meant.
pub fn seed_path_in_host<B>(mut request: axum::http::Request<B>) -> axum::http::Request<B> {
    if request.uri().path() != "/" || request.uri().query().is_some() {
        return request;
    }
    let Some(host) = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
    else {
        return request;
    };
    if !host.starts_with('/') {
        return request;
    }
    if let Ok(uri) = host.parse::<Uri>() {
        tracing::debug!(
            path = host,
            "request target taken from the Host header (seed client)"
        );
        *request.uri_mut() = uri;
    }
    request
}

/// Names the server in every answer.
pub async fn server_header(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response.headers_mut().insert(
        header::SERVER,
        HeaderValue::from_static(concat!("csvd/", env!("CARGO_PKG_VERSION"))),
    );
    response
}
