//! Request bodies: their length, size, type and time limits, and parsing
//! them into records as they arrive. It never calls the store: a body is
//! read and parsed before any write begins, and never kept as bytes.

use axum::extract::Request;
use axum::http::{header, HeaderMap, StatusCode};
use http_body_util::BodyExt;

use super::super::bulk::Claim;
use super::super::limits::{declared_length, too_large};
use super::super::problem::Problem;
use super::AppState;
use crate::codec::body::{self, Parsed};

/// Reads and parses a request body: 411 without a length, 413 over the
/// limit, 415 for a type we cannot read, 400 for one that does not parse.
/// The body is parsed as it arrives when it is CSV (only its rows are
/// kept), gathered whole otherwise; either way its bytes are gone once it
/// is parsed. A large body first claims room in the budget of large
/// bodies (503 when none comes free in time); the caller holds the claim
/// until it has answered. Rows of a table's CSV body without an id column
/// are `numbered` (the ids a new table gives them, without a copy).
pub(super) async fn read_body(
    state: &AppState,
    request: Request,
    numbered: bool,
) -> Result<(HeaderMap, Parsed, Claim), Problem> {
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let declared = declared_dialect(parts.uri.query())?;
    if !headers.contains_key(header::CONTENT_LENGTH)
        && !headers.contains_key(header::TRANSFER_ENCODING)
    {
        return Err(Problem::new(
            StatusCode::LENGTH_REQUIRED,
            "length-required",
            "a body is required: send it with Content-Length (or chunked)",
        ));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("(not text)"));
    let mut kind = body::kind_of(content_type)?;
    // A charset said (even UTF-8's) is taken as said; else it is detected.
    let charset_said = declared.encoding.is_some()
        || content_type.is_some_and(|t| t.to_ascii_lowercase().contains("charset="));
    if kind.charset.is_none() {
        kind.charset = declared.encoding.filter(|e| *e != encoding_rs::UTF_8);
    }
    let options = body::CsvOptions {
        delimiter: declared.delimiter,
        quote: declared.quote.unwrap_or(b'"'),
        detect_quote: declared.quote.is_none(),
        detect_encoding: !charset_said,
        header: declared.header.unwrap_or(true),
    };
    let declared = declared_length(&headers);
    let mut claim = state.bulk.claim(declared).await?;
    let reading = async {
        let expected = declared.unwrap_or(0).min(state.max_body);
        let numbering = numbered.then_some(&*state.id_column);
        let mut reader = body::Reader::with_options(kind, options, expected, numbering);
        let mut body = body;
        let mut received = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|err| {
                if is_too_large(&err) {
                    too_large(state.max_body)
                } else {
                    Problem::bad_request(format!("could not read the body: {err}"))
                }
            })?;
            if let Ok(piece) = frame.into_data() {
                received += piece.len();
                if received > state.max_body {
                    return Err(too_large(state.max_body));
                }
                if declared.is_none() {
                    state.bulk.grow(&mut claim, received).await?;
                }
                reader.feed(&piece)?;
            }
        }
        Ok((reader.finish()?, claim))
    };
    let (parsed, claim) = tokio::time::timeout(state.body_timeout, reading)
        .await
        .map_err(|_| Problem::body_timeout(state.body_timeout))??;
    Ok((headers, parsed, claim))
}

/// The dialect a write's query declares its CSV body in: `?delimiter=`
/// (`,` `;` `|` or `tab`), `?quote=` (`"` or `'`), `?header=0` (the first
/// line is a row) and `?charset=` (as `Content-Type`'s, which wins). 400
/// for a value that names none of them.
pub(super) fn declared_dialect(
    query: Option<&str>,
) -> Result<crate::store::dialect::Declared, Problem> {
    use crate::store::dialect;
    let mut declared = dialect::Declared::default();
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match &*key {
            "delimiter" => {
                declared.delimiter =
                    Some(dialect::delimiter_named(&value).map_err(Problem::bad_request)?)
            }
            "quote" => {
                declared.quote = Some(dialect::quote_named(&value).map_err(Problem::bad_request)?)
            }
            "header" => {
                declared.header = Some(dialect::header_named(&value).map_err(Problem::bad_request)?)
            }
            "charset" => {
                declared.encoding = Some(dialect::charset(&value).ok_or_else(|| {
                    Problem::bad_request(format!(
                        "charset={value:?}: a character set csvd does not know; send UTF-8, or name one of the WHATWG Encoding Standard (cp949, shift_jis, windows-1252, …)"
                    ))
                })?)
            }
            _ => {}
        }
    }
    Ok(declared)
}

fn is_too_large(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(err) = current {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        current = err.source();
    }
    false
}

/// One record from a body meant for one row.
pub(super) fn single(parsed: Parsed) -> Result<crate::store::Fields, Problem> {
    let count = parsed.records.len();
    let wrong =
        || Problem::bad_request(format!("expected the fields of one row, got {count} rows"));
    if count != 1 {
        return Err(wrong());
    }
    parsed.records.to_fields().pop().ok_or_else(wrong)
}
