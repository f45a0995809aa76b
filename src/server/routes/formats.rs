//! Which representation an answer takes: the URL's suffix or `Accept`,
//! the headers that go with it, and the `303` that sends a browser that
//! wrote on to a page. It only decides and labels; it never renders a body
//! nor calls the store.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::super::negotiate::{negotiate, prefers_html};
use super::super::problem::Problem;
use crate::codec::repr::Format;
use crate::page::{self, Viewer};

/// Whether a write came from a browser's page (it prefers HTML). A
/// browser is answered `303 See Other` to the page that shows what it
/// wrote (the new row's, say), so that it shows a page rather than a raw
/// representation, and reloading it repeats nothing.
#[derive(Clone, Copy)]
pub(super) struct Browser(bool);

impl Browser {
    pub(super) fn of(headers: &HeaderMap) -> Browser {
        Browser(prefers_html(
            headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()),
        ))
    }

    /// The answer to a successful write: as it is, or for a browser, on to
    /// its `Location` (else to `page`).
    pub(super) fn see(self, answer: Response, page: &str) -> Response {
        if !self.0 {
            return answer;
        }
        let location = answer
            .headers()
            .get(header::LOCATION)
            .cloned()
            .or_else(|| HeaderValue::from_str(page).ok());
        let mut response = StatusCode::SEE_OTHER.into_response();
        if let Some(location) = location {
            response.headers_mut().insert(header::LOCATION, location);
        }
        response
    }
}

/// `people.csv` → (`people`, CSV). An unknown suffix is a 406: the name
/// itself could never hold a dot.
pub(super) fn split_suffix(segment: &str) -> Result<(String, Option<Format>), Problem> {
    match segment.rsplit_once('.') {
        None => Ok((segment.to_string(), None)),
        // Tab-separated CSV (the table's read tells it by the suffix).
        Some((name, suffix)) if suffix.eq_ignore_ascii_case("tsv") => {
            Ok((name.to_string(), Some(Format::Csv)))
        }
        Some((name, suffix)) => match Format::from_suffix(suffix) {
            Some(format) => Ok((name.to_string(), Some(format))),
            None if crate::store::validate_table_name(name).is_err() || suffix.is_empty() => {
                Err(crate::store::Error::InvalidTableName(segment.to_string()).into())
            }
            None => Err(Problem::new(
                StatusCode::NOT_ACCEPTABLE,
                "not-acceptable",
                format!(
                    "no representation .{suffix}; available: .json, .csv, .tsv, .ndjson, .html"
                ),
            )),
        },
    }
}

/// The format to answer in: the URL suffix, else `Accept`.
pub(super) fn choose(headers: &HeaderMap, suffix: Option<Format>) -> Result<Format, Problem> {
    if let Some(format) = suffix {
        return Ok(format);
    }
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    negotiate(accept).ok_or_else(|| {
        Problem::new(
            StatusCode::NOT_ACCEPTABLE,
            "not-acceptable",
            format!(
                "cannot answer in {}; available: application/json, text/csv, application/x-ndjson, text/html",
                accept.unwrap_or_default()
            ),
        )
    })
}

/// The format for a write's answer: as asked, or JSON (a write that
/// succeeded is never turned into a 406). Never a page: a browser that
/// wrote is sent on to the page that shows the result ([`Browser`]).
pub(super) fn answer_format(headers: &HeaderMap) -> Format {
    match choose(headers, None) {
        Ok(Format::Html) | Err(_) => Format::Json,
        Ok(format) => format,
    }
}

/// A page differs for a signed-in browser: caches must keep them apart.
pub(super) fn vary_by_viewer(headers: &mut HeaderMap, format: Format, viewer: &Viewer) {
    if format == Format::Html && viewer.guarded {
        let vary = if headers.contains_key(header::VARY) {
            "Accept, Cookie"
        } else {
            "Cookie"
        };
        headers.insert(header::VARY, HeaderValue::from_static(vary));
    }
}

pub(super) fn content(format: Format, negotiated: bool, tag: &str) -> HeaderMap {
    // Room for these and what the answer and the middleware add to a row's
    // (`Cache-Control`, `Content-Length`, `Server`), so the map is
    // allocated once. Six is the most a map of 8 slots holds: one more
    // would double it, to more than 1 KiB, an allocation glibc's allocator
    // serves far more slowly than a smaller one.
    let mut headers = HeaderMap::with_capacity(6);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(value) = HeaderValue::from_str(tag) {
        headers.insert(header::ETAG, value);
    }
    if negotiated {
        headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    }
    if format == Format::Html {
        page::protect(&mut headers);
    }
    headers
}
