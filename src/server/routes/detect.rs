//! `POST /_detect`: what csvd detects in a CSV or TSV file's bytes — its
//! delimiter, quote character, encoding, byte-order mark, line ends,
//! header, columns, rows and the first rows — without storing anything.
//! The upload form shows it before a table is replaced; the same query
//! parameters a write takes (`?delimiter=;`, `?quote='`, `?header=0`,
//! `?charset=`) override detection, as they do for the upload itself.

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::IntoResponse;
use serde_json::{json, Value};

use super::super::problem::Problem;
use super::bodies::declared_dialect;
use super::{not_allowed, options, Answer, AppState};
use crate::store::dialect::{self, Quoting};
use crate::store::{parse_declared, Layout, Row};

const ALLOW: &str = "POST, OPTIONS";

/// The rows a preview shows, unless `?rows=` asks for others (up to 100).
const FIRST_ROWS: usize = 10;

pub(super) async fn detect(State(state): State<AppState>, request: Request) -> Answer {
    match *request.method() {
        Method::POST => {}
        Method::OPTIONS => return Ok(options(ALLOW)),
        ref other => return Err(not_allowed(other, ALLOW)),
    }
    let query = request.uri().query().map(str::to_string);
    let mut declared = declared_dialect(query.as_deref())?;
    let shown = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "rows")
        .map(|(_, v)| {
            v.parse::<usize>().map_err(|_| {
                Problem::bad_request(format!("rows={v:?}: expected a number of rows to show"))
            })
        })
        .transpose()?
        .unwrap_or(FIRST_ROWS)
        .min(100);
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(content_type) = &content_type {
        let kind = crate::codec::body::kind_of(Some(content_type))?;
        if let Some(charset) = kind.charset {
            declared.encoding = Some(charset);
        }
        if kind.kind == crate::codec::body::BodyKind::Tsv && declared.delimiter.is_none() {
            declared.delimiter = Some(b'\t');
        }
    }
    let reading = axum::body::to_bytes(request.into_body(), state.max_body);
    let bytes = tokio::time::timeout(state.body_timeout, reading)
        .await
        .map_err(|_| Problem::body_timeout(state.body_timeout))?
        .map_err(|err| {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                format!(
                    "could not read the file (the limit is {} bytes): {err}",
                    state.max_body
                ),
            )
        })?;
    if bytes.is_empty() {
        return Err(Problem::bad_request(
            "the body is empty; send the bytes of a CSV or TSV file",
        ));
    }
    let answer = tokio::task::spawn_blocking(move || describe(&bytes, declared, shown))
        .await
        .map_err(|_| Problem::bad_request("the file could not be read"))?;
    let body = format!("{answer}\n");
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// What detection says of a file: its dialect, columns, row count and
/// first rows, or why it cannot be read (`"error"`), with the parts that
/// were told before that.
pub fn describe(bytes: &[u8], declared: dialect::Declared, shown: usize) -> Value {
    let (columns, rows, layout) = match parse_declared(bytes, declared) {
        Ok(parsed) => parsed,
        Err(error) => {
            let encoding = dialect::decode_as(bytes, declared.encoding)
                .ok()
                .map(|d| (d.encoding.name(), d.bom));
            return json!({
                "readable": false,
                "error": error,
                "encoding": encoding.map(|(name, _)| name),
                "bom": encoding.map(|(_, bom)| bom),
            });
        }
    };
    let width = columns.len();
    let mut warnings = Vec::new();
    let short = rows.iter().filter(|r| r.len() < width).count();
    if short > 0 {
        warnings.push(format!(
            "{short} row{} fewer fields than the header; the missing cells are empty",
            if short == 1 { " has" } else { "s have" }
        ));
    }
    if let Some(empty) = columns.iter().position(String::is_empty) {
        warnings.push(format!(
            "column {} of the header has no name; an upload is refused until it has one",
            empty + 1
        ));
    }
    if !layout.header {
        warnings
            .push("read without a header: the columns are named 1, 2, … by position".to_string());
    }
    let first: Vec<Vec<&str>> = rows
        .iter()
        .take(shown)
        .map(|r: &Row| r.cells(width).collect())
        .collect();
    json!({
        "readable": true,
        "error": null,
        "delimiter": char::from(layout.delimiter).to_string(),
        "delimiter_name": dialect::delimiter_name(layout.delimiter),
        "quote": char::from(layout.quote).to_string(),
        "encoding": layout.encoding.name(),
        "bom": layout.bom,
        "line_ends": line_ends(&layout),
        "sep_line": layout.sep_line,
        "header": layout.header,
        "quoting": match layout.quoting {
            Quoting::Needed => "needed",
            Quoting::All => "all",
            Quoting::NonNumeric => "non-numeric",
        },
        "columns": columns,
        "rows": rows.len(),
        "first_rows": first,
        "warnings": warnings,
    })
}

fn line_ends(layout: &Layout) -> &'static str {
    match (layout.crlf, layout.cr) {
        (true, _) => "CRLF",
        (false, true) => "CR",
        (false, false) => "LF",
    }
}
