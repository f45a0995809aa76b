//! Cross-cutting request and response handling, in two layers (each
//! middleware layer costs every request a boxed future and a clone of the
//! service below it, so they are few):
//!
//! - [`edge`], outermost: the access log and metrics, the server's name,
//!   and tags of compressed bodies;
//! - [`gate`], inside compression: request checks (framing, `Host`,
//!   target length), access rules, `Prefer: return=minimal`, and errors
//!   shown as problem documents or pages.
//!
//! Plus the seed client's quirk, applied before routing.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode, Uri, Version};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::access::{self, Caller, Keeper};
use super::conditional::ENCODING_SUFFIXES;
use super::metrics::Metrics;
use super::negotiate::prefers_html;
use super::problem::Problem;
use crate::page::{sign_in_href, ProblemPage, Viewer};

/// The outer layer: logs one line per request (method, path, status,
/// bytes, duration), counts it in the metrics, names the server, and tags
/// compressed bodies.
pub async fn edge(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let mut response = next.run(request).await;
    tag_encoding(&mut response);
    response.headers_mut().insert(
        header::SERVER,
        HeaderValue::from_static(concat!("csvd/", env!("CARGO_PKG_VERSION"))),
    );
    let seconds = started.elapsed().as_secs_f64();
    metrics.request(response.status().as_u16(), seconds);
    if tracing::enabled!(target: "csvd::access", tracing::Level::INFO) {
        let bytes = http_body::Body::size_hint(response.body())
            .exact()
            .map_or_else(|| "-".to_string(), |n| n.to_string());
        tracing::info!(
            target: "csvd::access",
            "{method} {path} {} {bytes} {:.1}ms",
            response.status().as_u16(),
            seconds * 1000.0
        );
    }
    response
}

/// What the gate checks requests against.
pub struct Gate {
    pub keeper: Arc<Keeper>,
    pub max_uri: usize,
}

/// The inner layer: refuses malformed or unauthorised requests, applies
/// `Prefer: return=minimal`, and turns every error into a problem document
/// or a page.
pub async fn gate(State(gate): State<Arc<Gate>>, request: Request, next: Next) -> Response {
    let html = prefers_html(
        request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok()),
    );
    let path = request.uri().path().to_string();
    let here = request
        .uri()
        .path_and_query()
        .map_or_else(|| path.clone(), |p| p.as_str().to_string());
    let mut viewer = Viewer {
        read_only: gate.keeper.access.read_only,
        guarded: gate.keeper.access.token.is_some(),
        here,
        ..Viewer::default()
    };
    let read = matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    );
    let response = match check(&request, gate.max_uri) {
        Err(problem) => {
            let mut response = problem.into_response();
            // After a framing error the rest of the stream cannot be trusted.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
        Ok(()) => match access::admit(&gate.keeper, request).await {
            // A browser is shown the way in rather than a bare 401.
            Err(refused) if refused.status == StatusCode::UNAUTHORIZED && html && read => {
                see_other(&sign_in_href(&viewer.here))
            }
            Err(refused) => refused.into_response(),
            Ok((mut request, caller)) => {
                match &caller {
                    Caller::Browser(session) => viewer.csrf = Some(session.csrf.clone()),
                    Caller::Bearer => viewer.bearer = true,
                    Caller::Anyone | Caller::Stranger => {}
                }
                request.extensions_mut().insert(viewer.clone());
                request.extensions_mut().insert(caller);
                let minimal = wants_minimal(&request);
                let response = next.run(request).await;
                if minimal {
                    without_body(response)
                } else {
                    response
                }
            }
        },
    };
    as_problem(response, html, &path, &viewer).await
}

/// Every error leaves as a problem document (RFC 9457), or as a readable
/// page when a browser asked. Errors raised below the handlers (a body over
/// the limit, a path that does not decode, a time-out) arrive as plain text
/// and are rewrapped here, so the whole API speaks one error format.
async fn as_problem(response: Response, html: bool, path: &str, viewer: &Viewer) -> Response {
    let status = response.status();
    if !status.is_client_error() && !status.is_server_error() {
        return response;
    }
    let problem = response.extensions().get::<Problem>().cloned();
    // A handler that answered with a page of its own (the sign-in page
    // saying the token was wrong) meant it.
    let page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if (problem.is_some() && !html) || (problem.is_none() && page) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let problem = match problem {
        Some(problem) => problem,
        None => {
            // Error bodies are small; 64 KiB bounds a surprise.
            let bytes = axum::body::to_bytes(body, 64 * 1024)
                .await
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes).trim().to_string();
            let detail = if text.is_empty() {
                status.canonical_reason().unwrap_or("Error").to_string()
            } else {
                text
            };
            Problem::new(status, "http", detail)
        }
    };
    let mut rebuilt = if html {
        let page = ProblemPage {
            status: status.as_u16(),
            title: problem.title(),
            kind: problem.kind,
            detail: problem.page_detail.as_deref().unwrap_or(&problem.detail),
            path,
            viewer,
        };
        let mut response = Response::new(Body::from(page.render()));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        crate::page::protect(response.headers_mut());
        response
    } else {
        problem.into_response()
    };
    *rebuilt.status_mut() = status;
    for name in [header::ALLOW, header::WWW_AUTHENTICATE, header::RETRY_AFTER] {
        if let Some(value) = parts.headers.get(&name) {
            rebuilt.headers_mut().insert(name, value.clone());
        }
    }
    rebuilt
}

/// `303 See Other` to `location`.
pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// A compressed body is a different representation: give it its own tag
/// (`"…-gzip"`), so strong tags stay strong. Conditional checks strip it.
fn tag_encoding(response: &mut Response) {
    let headers = response.headers();
    let (Some(encoding), Some(tag)) = (
        headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok()),
        headers.get(header::ETAG).and_then(|v| v.to_str().ok()),
    ) else {
        return;
    };
    let suffix = format!("-{encoding}");
    if !ENCODING_SUFFIXES.contains(&suffix.as_str()) {
        return;
    }
    let tagged = format!("{}{suffix}\"", tag.trim_end_matches('"'));
    if let Ok(value) = HeaderValue::from_str(&tagged) {
        response.headers_mut().insert(header::ETAG, value);
    }
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

/// Refuses requests whose framing or addressing is ambiguous, before any
/// handler sees them: a target over the limit (414), an absolute-form
/// target (csvd is not a proxy), an HTTP/1.1 request without exactly one
/// valid `Host`, a body with both `Content-Length` and `Transfer-Encoding`
/// (the classic smuggling shape), and any transfer coding but a single
/// `chunked` (501).
fn check(request: &Request, max_uri: usize) -> Result<(), Problem> {
    let uri = request.uri();
    let target_len = uri.path_and_query().map_or(0, |p| p.as_str().len());
    if target_len > max_uri {
        return Err(Problem::new(
            StatusCode::URI_TOO_LONG,
            "uri-too-long",
            format!("the request target is {target_len} bytes; the limit is {max_uri}"),
        ));
    }
    if uri.scheme().is_some() || uri.authority().is_some() {
        return Err(Problem::bad_request(
            "absolute-form request targets are refused (csvd is not a proxy): send the path only",
        ));
    }
    let headers = request.headers();
    let hosts: Vec<&HeaderValue> = headers.get_all(header::HOST).iter().collect();
    if request.version() == Version::HTTP_11 && hosts.len() != 1 {
        return Err(Problem::bad_request(format!(
            "an HTTP/1.1 request needs exactly one Host header; this one has {}",
            hosts.len()
        )));
    }
    if let Some(host) = hosts.first() {
        host_problem(host)?;
    }
    let codings: Vec<&str> = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .map(|v| v.to_str().unwrap_or("?"))
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    if !codings.is_empty() {
        // hyper drops the length before handlers see it; the framing
        // wrapper saw the raw head.
        let conflict = request
            .extensions()
            .get::<super::framing::Conflict>()
            .is_some();
        if conflict || headers.contains_key(header::CONTENT_LENGTH) {
            return Err(Problem::bad_request(
                "both Content-Length and Transfer-Encoding were sent; send one",
            ));
        }
        if codings.len() != 1 || !codings[0].eq_ignore_ascii_case("chunked") {
            return Err(Problem::new(
                StatusCode::NOT_IMPLEMENTED,
                "unsupported-transfer-coding",
                format!(
                    "transfer coding {:?} is not supported; only a single \"chunked\" is",
                    codings.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// `host[:port]` without user info; or the seed client's path-in-Host,
/// which [`seed_path_in_host`] reads as the request's path, and which must
/// then be a valid path (else the request would be served as `/`).
fn host_problem(host: &HeaderValue) -> Result<(), Problem> {
    let text = host.to_str().unwrap_or_default();
    if text.starts_with('/') {
        return match text.parse::<axum::http::uri::PathAndQuery>() {
            Ok(_) => Ok(()),
            Err(_) => Err(Problem::bad_request(format!(
                "the Host header {text:?} is neither host[:port] nor a valid path \
                 (a path in Host is read as the request's path): \
                 percent-encode spaces and other special characters (%20)"
            ))),
        };
    }
    let valid = !text.is_empty()
        && !text.contains('@')
        && text
            .parse::<axum::http::uri::Authority>()
            .is_ok_and(|a| a.as_str() == text);
    if valid {
        Ok(())
    } else {
        Err(Problem::bad_request(
            "the Host header is not a valid host[:port]",
        ))
    }
}

/// `Prefer: return=minimal` (RFC 7240) on a write: the answer keeps its
/// status and headers (`Location`, `ETag`) but drops the body, and a 200
/// becomes 204. Saves echoing back a bulk import of a million rows.
fn wants_minimal(request: &Request) -> bool {
    let write = !matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    write
        && request
            .headers()
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim().eq_ignore_ascii_case("return=minimal"))
}

fn without_body(response: Response) -> Response {
    if !response.status().is_success() {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    if parts.status == StatusCode::OK {
        parts.status = StatusCode::NO_CONTENT;
    }
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        "preference-applied",
        HeaderValue::from_static("return=minimal"),
    );
    Response::from_parts(parts, Body::empty())
}
