//! The server's own resources beside the tables: `/_health`, `/_metrics`
//! and the web page's assets under `/_assets`. They only read; they never
//! change a table nor answer for one.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::fmt::Write;

use super::super::conditional::not_modified;
use super::super::problem::Problem;
use super::{Answer, AppState};
use crate::page;

pub(super) async fn metrics(State(state): State<AppState>) -> Answer {
    let tables = state.store.tables().await?;
    let mut text = state.metrics.render(&tables, state.store.stats().await);
    let feed = state.store.feed();
    let _ = write!(
        text,
        "# HELP csvd_changes_last_seq The change feed's last sequence number.\n\
         # TYPE csvd_changes_last_seq gauge\ncsvd_changes_last_seq {}\n\
         # HELP csvd_changes_oldest_seq The oldest change the feed keeps.\n\
         # TYPE csvd_changes_oldest_seq gauge\ncsvd_changes_oldest_seq {}\n\
         # HELP csvd_feed_subscribers Change-feed streams and long polls open now.\n\
         # TYPE csvd_feed_subscribers gauge\ncsvd_feed_subscribers {}\n",
        feed.last_seq(),
        feed.oldest_seq(),
        state.streams.open()
    );
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

pub(super) async fn health() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        "{\"status\":\"ok\"}\n",
    )
        .into_response()
}

/// A stylesheet, script or icon of the web page.
pub(super) async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Answer {
    let (asset, tag) =
        page::assets::get(&name).ok_or_else(|| Problem::not_found(format!("no asset {name}")))?;
    let mut answer = HeaderMap::new();
    answer.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    answer.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(page::assets::CACHE_CONTROL),
    );
    answer.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(value) = HeaderValue::from_str(&tag) {
        answer.insert(header::ETAG, value);
    }
    if not_modified(&headers, &tag, None) {
        return Ok((StatusCode::NOT_MODIFIED, answer).into_response());
    }
    Ok((answer, asset.body).into_response())
}
