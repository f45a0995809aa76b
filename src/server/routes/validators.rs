//! Conditional requests from the handlers' side: the tag and date an
//! answer carries, and a failed precondition of a write said in terms of
//! what it was about. The rules themselves are in `server::conditional`;
//! this file never decides whether a precondition holds.

use std::future::Future;

use axum::http::{header, HeaderMap, HeaderValue};

use super::super::conditional::{self, Target};
use super::super::problem::Problem;
use crate::codec::repr::Format;
use crate::page::Viewer;

/// A store write, answered only once it is durable (the store's future
/// resolves then). The wait for the log's fsync holds no thread, so
/// concurrent writes share fsyncs cheaply. A failed precondition is said
/// in terms of the `target`.
pub(super) async fn write<T>(
    target: Target<'_>,
    call: impl Future<Output = crate::store::Result<T>>,
) -> Result<T, Problem> {
    call.await.map_err(|err| match err {
        crate::store::Error::PreconditionFailed(unmet) => conditional::failed(unmet, target),
        other => Problem::from(other),
    })
}

/// A page's tag: the representation's, told apart per viewer (a page's
/// forms and token differ), and `Vary: Cookie` when a sign-in changes it.
pub(super) fn page_tag(tag: String, format: Format, viewer: &Viewer) -> String {
    match viewer.tag_suffix().filter(|_| format == Format::Html) {
        Some(suffix) => format!("{}{suffix}\"", tag.trim_end_matches('"')),
        None => tag,
    }
}

pub(super) fn last_modified(headers: &mut HeaderMap, modified: std::time::SystemTime) {
    if let Ok(value) = HeaderValue::from_str(&httpdate::fmt_http_date(modified)) {
        headers.insert(header::LAST_MODIFIED, value);
    }
}
