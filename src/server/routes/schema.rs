//! `/_schema/<table>`: what csvd believes about a table's columns, as a
//! CSV on the Web table description (`GET`), declared (`PUT`) or no
//! longer declared (`DELETE`). Named as `/_changes/<table>` is, so that no
//! row id is shadowed.

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::super::conditional::{etag, expectations, not_modified, Target};
use super::super::problem::Problem;
use super::validators::write;
use super::{not_allowed, options, Answer, AppState};
use crate::codec::repr::Format;
use crate::store::schema::{Types, CONTEXT};
use crate::store::SchemaView;

const ALLOW_SCHEMA: &str = "GET, HEAD, PUT, DELETE, OPTIONS";

/// Largest table description a `PUT` may send.
const MAX_DOC_BYTES: usize = 1 << 20;

pub(super) async fn table_schema(
    State(state): State<AppState>,
    Path(table): Path<String>,
    request: Request,
) -> Answer {
    crate::store::validate_table_name(&table)?;
    let method = request.method().clone();
    match method {
        Method::GET | Method::HEAD => {
            let view = state.store.schema(&table).await?;
            let tag = view.version().map(|v| etag(v, None, Format::Json));
            if let Some(tag) = &tag {
                if not_modified(request.headers(), tag, None) {
                    return Ok((StatusCode::NOT_MODIFIED, tagged(tag)).into_response());
                }
            }
            Ok(answer(StatusCode::OK, &view))
        }
        Method::PUT => {
            let (parts, body) = request.into_parts();
            let doc = read_doc(&parts.headers, body, state.body_timeout).await?;
            let expect = expectations(&parts.headers);
            let view = write(
                Target::Table(&table),
                state.store.put_schema(&table, doc, &expect),
            )
            .await?;
            Ok(answer(StatusCode::OK, &view))
        }
        Method::DELETE => {
            let expect = expectations(request.headers());
            write(
                Target::Table(&table),
                state.store.delete_schema(&table, &expect),
            )
            .await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Method::OPTIONS => Ok(options(ALLOW_SCHEMA)),
        _ => Err(not_allowed(&method, ALLOW_SCHEMA)),
    }
}

/// What a row's tag adds for its table's declared datatypes (they change
/// its JSON, not its version); `None` when there are none, and for CSV.
pub(super) fn types_tag(types: &Types, format: Format) -> Option<String> {
    types
        .tag()
        .filter(|_| format != Format::Csv)
        .map(|t| format!("t{t:x}"))
}

fn tagged(tag: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(tag) {
        headers.insert(header::ETAG, value);
    }
    headers
}

fn answer(status: StatusCode, view: &SchemaView) -> Response {
    let mut headers = match view.version() {
        Some(v) => tagged(&etag(v, None, Format::Json)),
        None => HeaderMap::new(),
    };
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/csvm+json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let mut body = serde_json::to_vec_pretty(&describe(view)).unwrap_or_default();
    body.push(b'\n');
    (status, headers, body).into_response()
}

/// Reads a `PUT`'s table description: JSON, at most [`MAX_DOC_BYTES`].
async fn read_doc(
    headers: &HeaderMap,
    body: axum::body::Body,
    timeout: std::time::Duration,
) -> Result<Value, Problem> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/json")
        && !media.eq_ignore_ascii_case("application/csvm+json")
        && !media.eq_ignore_ascii_case("application/ld+json")
    {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            format!("a table description is JSON: send it as application/json (or application/csvm+json), not {media}"),
        ));
    }
    let bytes = tokio::time::timeout(timeout, axum::body::to_bytes(body, MAX_DOC_BYTES))
        .await
        .map_err(|_| {
            Problem::new(
                StatusCode::REQUEST_TIMEOUT,
                "request-timeout",
                "the table description did not arrive in time",
            )
        })?
        .map_err(|err| {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                format!("the table description could not be read ({err}); it may hold at most {MAX_DOC_BYTES} bytes"),
            )
        })?;
    let mut doc: Value = serde_json::from_slice(&bytes)
        .map_err(|err| Problem::bad_request(format!("the table description is not JSON: {err}")))?;
    // What `GET` adds is not part of a declaration.
    if let Value::Object(top) = &mut doc {
        top.remove("declared");
    }
    Ok(doc)
}

/// The table description `GET` answers: the declared document (its
/// unknown keys kept), with the dialect as the file is read, every column
/// of the table with its datatype (`inferred` where none is declared: the
/// typing rule), and `declared` saying whether anything is.
pub fn describe(view: &SchemaView) -> Value {
    let mut top = match view.declared.as_ref().map(|s| &s.doc) {
        Some(Value::Object(top)) => top.clone(),
        _ => Map::new(),
    };
    top.entry("@context").or_insert_with(|| json!(CONTEXT));
    top.entry("url").or_insert_with(|| json!(view.file));
    let mut dialect = match top.get("dialect") {
        Some(Value::Object(d)) => d.clone(),
        _ => Map::new(),
    };
    dialect.insert(
        "delimiter".into(),
        json!(char::from(view.delimiter).to_string()),
    );
    dialect.insert("encoding".into(), json!(view.encoding.to_ascii_lowercase()));
    dialect.insert(
        "quoteChar".into(),
        json!(char::from(view.quote).to_string()),
    );
    dialect.insert("header".into(), json!(view.header));
    top.insert("dialect".into(), Value::Object(dialect));
    let mut schema = match top.get("tableSchema") {
        Some(Value::Object(s)) => s.clone(),
        _ => Map::new(),
    };
    let declared: Vec<Value> = match schema.get("columns") {
        Some(Value::Array(list)) => list.clone(),
        _ => Vec::new(),
    };
    let name_of = |c: &Value| -> Option<String> {
        let c = c.as_object()?;
        match c.get("name") {
            Some(Value::String(n)) => Some(n.clone()),
            _ => match c.get("titles") {
                Some(Value::String(t)) => Some(t.clone()),
                Some(Value::Array(t)) => t.iter().find_map(|t| t.as_str().map(str::to_string)),
                _ => None,
            },
        }
    };
    let with_type = |mut c: Value| {
        if let Value::Object(map) = &mut c {
            map.entry("datatype").or_insert(json!("inferred"));
        }
        c
    };
    let mut columns: Vec<Value> = Vec::new();
    for name in &view.columns {
        match declared
            .iter()
            .find(|c| name_of(c).as_deref() == Some(name))
        {
            Some(c) => columns.push(with_type(c.clone())),
            None => columns.push(json!({"name": name, "datatype": "inferred"})),
        }
    }
    for c in &declared {
        if !name_of(c).is_some_and(|n| view.columns.contains(&n)) {
            columns.push(with_type(c.clone()));
        }
    }
    schema.insert("columns".into(), Value::Array(columns));
    if let Some(id) = view.id_col.and_then(|c| view.columns.get(c)) {
        schema.entry("primaryKey").or_insert(json!(id));
    }
    top.insert("tableSchema".into(), Value::Object(schema));
    top.insert("declared".into(), json!(view.declared.is_some()));
    Value::Object(top)
}
