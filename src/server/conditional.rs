//! Entity tags and conditional requests.
//!
//! A tag is `"<version>[-q<query>][-<format>]"`: the version (16 hex digits)
//! is the state of the row or table; the query hash and format tell its
//! representations apart, so every representation's tag is strong. Response
//! compression appends `-gzip`/`-br` (see the middleware), as it changes
//! the bytes. `If-Match` compares versions only (any representation of the
//! current state will do); `If-None-Match` compares whole tags, ignoring the
//! compression suffix.

use std::time::SystemTime;

use axum::http::{header, HeaderMap, StatusCode};
use xxhash_rust::xxh3::xxh3_64;

use super::problem::Problem;
use crate::codec::repr::Format;
use crate::store::{Expect, Tag, Unmet};

/// Compression suffixes an `ETag` may carry.
pub const ENCODING_SUFFIXES: [&str; 4] = ["-gzip", "-br", "-deflate", "-zstd"];

/// The entity tag of a representation of `version`.
pub fn etag(version: u64, query: Option<&str>, format: Format) -> String {
    // Built by hand: this is on every read's path, and `format!` costs more
    // than the rest of the tag.
    let mut tag = String::with_capacity(40);
    tag.push('"');
    push_hex(&mut tag, version, 16);
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        tag.push_str("-q");
        push_hex(&mut tag, u64::from(xxh3_64(query.as_bytes()) as u32), 8);
    }
    if format != Format::Json {
        tag.push('-');
        tag.push_str(format.suffix());
    }
    tag.push('"');
    tag
}

/// Appends the low `digits` hex digits of `value`, zero-padded.
fn push_hex(out: &mut String, value: u64, digits: u32) {
    for shift in (0..digits).rev() {
        let nibble = (value >> (shift * 4)) & 0xf;
        out.push(char::from(b"0123456789abcdef"[nibble as usize]));
    }
}

/// The tags listed in a header (`*` is returned as `"*"`).
fn tags(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|t| !t.is_empty())
}

fn strip_encoding(tag: &str) -> String {
    let inner = tag.trim_start_matches("W/").trim_matches('"');
    let inner = ENCODING_SUFFIXES
        .iter()
        .find_map(|s| inner.strip_suffix(s))
        .unwrap_or(inner);
    format!("\"{inner}\"")
}

/// Whether a GET may be answered 304: `If-None-Match` (weak comparison),
/// or else `If-Modified-Since` against `modified`.
pub fn not_modified(headers: &HeaderMap, current: &str, modified: Option<SystemTime>) -> bool {
    if let Some(value) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        return tags(value).any(|t| t == "*" || strip_encoding(t) == current);
    }
    let since = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    match (since, modified) {
        (Some(since), Some(modified)) => whole_seconds(modified) <= since,
        _ => false,
    }
}

/// `Last-Modified` has one-second resolution; compare at that resolution.
fn whole_seconds(time: SystemTime) -> SystemTime {
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs)
}

/// The preconditions of a write, from `If-Match` and `If-None-Match`.
pub fn expectations(headers: &HeaderMap) -> Expect {
    let parse = |name| {
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if values.is_empty() {
            return None;
        }
        Some(
            values
                .into_iter()
                .flat_map(tags)
                .filter_map(version_tag)
                .collect::<Vec<Tag>>(),
        )
    };
    Expect {
        if_match: parse(header::IF_MATCH),
        if_none_match: parse(header::IF_NONE_MATCH),
    }
}

/// The version a tag names; weak tags name none (writes need strong ones).
fn version_tag(tag: &str) -> Option<Tag> {
    if tag == "*" {
        return Some(Tag::Any);
    }
    let inner = tag.strip_prefix('"')?.strip_suffix('"')?;
    let hex = inner.get(..16)?;
    if inner.len() > 16 && !inner[16..].starts_with('-') {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(Tag::Version)
}

/// What a conditional write was aimed at.
#[derive(Clone, Copy)]
pub enum Target<'a> {
    Table(&'a str),
    Row { table: &'a str, id: &'a str },
}

/// The 412 for a write whose precondition did not hold, saying what the
/// target's state was and what to do about it.
pub fn failed(unmet: Unmet, target: Target) -> Problem {
    let what = match target {
        Target::Table(table) => format!("the table {table:?}"),
        Target::Row { table, id } => format!("the row {id:?} of {table:?}"),
    };
    let detail = match unmet {
        Unmet::Exists => format!(
            "{what} already exists, and If-None-Match: * asks to create it only; \
             send If-Match with its ETag to replace it"
        ),
        Unmet::Missing => format!(
            "{what} does not exist (any more), and If-Match asks for a version of it; \
             send the write without If-Match to create it"
        ),
        Unmet::Changed => format!(
            "{what} has changed since the version If-Match names; \
             GET it again for its current ETag and redo the change on that"
        ),
        Unmet::Unchanged => format!("{what} is at a version If-None-Match names"),
    };
    Problem::new(
        StatusCode::PRECONDITION_FAILED,
        "precondition-failed",
        detail,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn tags_per_representation() {
        assert_eq!(etag(255, None, Format::Json), "\"00000000000000ff\"");
        assert_eq!(etag(255, None, Format::Csv), "\"00000000000000ff-csv\"");
        assert!(etag(255, Some("a=1"), Format::Json).starts_with("\"00000000000000ff-q"));
        let q = xxh3_64(b"a=1") as u32;
        assert_eq!(
            etag(u64::MAX - 1, Some("a=1"), Format::Json),
            format!("\"fffffffffffffffe-q{q:08x}\"")
        );
    }

    #[test]
    fn if_none_match_ignores_compression_suffix() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"x\", W/\"00000000000000ff-gzip\""),
        );
        assert!(not_modified(&headers, "\"00000000000000ff\"", None));
        assert!(!not_modified(&headers, "\"00000000000000fe\"", None));
    }

    #[test]
    fn if_match_reads_versions() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_MATCH,
            HeaderValue::from_static("\"00000000000000ff-csv-gzip\", W/\"0000000000000001\", *"),
        );
        let expect = expectations(&headers);
        assert_eq!(expect.if_match, Some(vec![Tag::Version(255), Tag::Any]));
        assert_eq!(expect.if_none_match, None);
    }
}
