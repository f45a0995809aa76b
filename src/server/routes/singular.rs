//! json-server's singular resources: a table kept as one object (db.json's
//! `"profile": {...}`), at `/profile` without an id. `GET` answers the
//! object, `PUT` replaces it, `PATCH` changes the fields it names; `POST`
//! and `DELETE` are 404, as json-server answers them. A `PUT` of a JSON
//! object to a table that does not exist makes one.
//!
//! The store keeps the object as a table of one row, and a mark saying it
//! is one object ([`crate::store::Singular`]); `/profile.csv` is that table.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use serde_json::{Map, Value};

use super::super::conditional::{expectations, Target};
use super::super::problem::Problem;
use super::bodies::read_body;
use super::validators::write;
use super::writes::typed_after;
use super::{options, AppState};
use crate::codec::body::{kind_of, BodyKind};
use crate::jsondb::{row_object, singular_object};
use crate::store::{Error, Expect, Records, Row, Singular, Tag};

const ALLOW_SINGULAR: &str = "GET, HEAD, PUT, PATCH, OPTIONS";

/// What a request to `/<name>` is, as far as singular resources go.
pub(super) enum Routed {
    /// Answered here.
    Answered(Response),
    /// Not a singular resource's business: routed as any table's request.
    Table(Request),
}

/// Answers a request to `/<name>` when `name` is a singular resource (or a
/// `PUT` of an object makes it one); hands the request back otherwise.
pub(super) async fn route(
    state: &AppState,
    name: &str,
    request: Request,
) -> Result<Routed, Problem> {
    if crate::store::validate_table_name(name).is_err() {
        return Ok(Routed::Table(request));
    }
    let mark = match state.store.singular(name).await {
        Ok(mark) => mark,
        // The store cannot say now (a database not answering): the request
        // goes on as any table's, and answers what its own call meets
        // (for a write, whether it may have been applied).
        Err(Error::Unavailable(_) | Error::OutcomeUnknown(_)) => return Ok(Routed::Table(request)),
        Err(err) => return Err(err.into()),
    };
    let exists = match mark {
        Some(_) => table_exists(state, name).await?,
        None => false,
    };
    if let (Some(mark), true) = (mark, exists) {
        return answer(state, name, mark, request)
            .await
            .map(Routed::Answered);
    }
    let method = request.method().clone();
    let writes = matches!(method, Method::POST | Method::PUT);
    if mark.is_some() && writes {
        // A mark left by a table since removed: what is written now decides.
        state.store.set_singular(name, None).await?;
    }
    if method != Method::PUT || !json_like(&request) {
        return Ok(Routed::Table(request));
    }
    if mark.is_none() && table_exists(state, name).await? {
        return Ok(Routed::Table(request));
    }
    let (object, request) = starts_object(request).await?;
    if !object {
        return Ok(Routed::Table(request));
    }
    put(state, name, None, request).await.map(Routed::Answered)
}

/// Whether the table exists (readable or not).
async fn table_exists(state: &AppState, name: &str) -> Result<bool, Problem> {
    match state.store.row(name, "").await {
        Err(Error::NoTable(_)) => Ok(false),
        _ => Ok(true),
    }
}

/// A body that may be one JSON object (JSON, or a form that holds JSON).
fn json_like(request: &Request) -> bool {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    kind_of(content_type).is_ok_and(|kind| {
        kind == BodyKind::Json || kind == BodyKind::Form || kind == BodyKind::KeyValue
    })
}

/// Whether the body's first byte that is not white space is `{`; the
/// request is given back whole, the bytes read to tell put back in front.
async fn starts_object(request: Request) -> Result<(bool, Request), Problem> {
    let (parts, mut body) = request.into_parts();
    let mut seen: Vec<Bytes> = Vec::new();
    let mut first = None;
    while first.is_none() {
        match body.frame().await {
            None => break,
            Some(Err(err)) => {
                return Err(Problem::bad_request(format!(
                    "could not read the body: {err}"
                )))
            }
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    first = data.iter().copied().find(|b| !b.is_ascii_whitespace());
                    seen.push(data);
                }
            }
        }
    }
    let rest = futures_util::stream::iter(seen.into_iter().map(Ok::<_, axum::Error>))
        .chain(body.into_data_stream());
    let request = Request::from_parts(parts, Body::from_stream(rest));
    Ok((first == Some(b'{'), request))
}

async fn answer(
    state: &AppState,
    name: &str,
    mark: Singular,
    request: Request,
) -> Result<Response, Problem> {
    let method = request.method().clone();
    match method {
        Method::GET | Method::HEAD => {
            let (object, _) = current(state, name, mark).await?;
            Ok(json(StatusCode::OK, &object))
        }
        Method::PUT => put(state, name, Some(mark), request).await,
        Method::PATCH => patch(state, name, mark, request).await,
        Method::OPTIONS => Ok(options(ALLOW_SINGULAR)),
        Method::POST | Method::DELETE => Err(Problem::not_found(format!(
            "{name} is a singular resource (one object), as json-server answers {method} of one: \
             there is no row to create or delete; GET /{name} reads it, PUT replaces it, PATCH \
             changes its fields"
        ))),
        _ => Err(super::not_allowed(&method, ALLOW_SINGULAR)),
    }
}

/// The object and the table's version now.
async fn current(
    state: &AppState,
    name: &str,
    mark: Singular,
) -> Result<(Map<String, Value>, u64), Problem> {
    let selected = state.store.select(name, "").await?;
    let head = selected.head;
    let mut rows = selected.rows;
    let first = rows.next().await.transpose()?;
    let types = state.store.types(name).await.aligned(&head.columns);
    let object = singular_object(&head.columns, &types, head.id_col, first.as_ref(), mark);
    Ok((object, head.version))
}

fn json(status: StatusCode, object: &Map<String, Value>) -> Response {
    let mut body = serde_json::to_vec(object).unwrap_or_default();
    body.push(b'\n');
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The one record of a body meant for a singular resource.
async fn one_object(
    state: &AppState,
    name: &str,
    request: Request,
) -> Result<(axum::http::HeaderMap, Records, Vec<String>), Problem> {
    let (headers, parsed, _claim) = read_body(state, request, false).await?;
    if parsed.many || parsed.records.len() != 1 {
        return Err(Problem::bad_request(format!(
            "{name} is a singular resource: the body must be one JSON object (its fields), \
             not an array or many rows"
        )));
    }
    Ok((headers, parsed.records, parsed.nested))
}

fn own_id(state: &AppState, records: &Records) -> bool {
    let width = records.columns.len();
    records
        .columns
        .iter()
        .position(|c| **c == *state.id_column)
        .zip(records.rows.first())
        .is_some_and(|(at, row)| at < width && !row.get(at).is_empty())
}

/// `PUT /<name>`: the object replaced by the body (`mark`: `None` when it
/// does not exist yet).
async fn put(
    state: &AppState,
    name: &str,
    mark: Option<Singular>,
    request: Request,
) -> Result<Response, Problem> {
    let (headers, records, nested) = one_object(state, name, request).await?;
    let next = Singular {
        own_id: own_id(state, &records),
    };
    let columns = records.columns.clone();
    let first = records.rows.first().cloned();
    if mark != Some(next) {
        state
            .store
            .set_singular(name, Some(next))
            .await
            .map_err(Problem::from)?;
    }
    let expect = expectations(&headers);
    let (_, created) = write(
        Target::Table(name),
        state.store.replace_table(name, records, &expect),
    )
    .await
    .map_err(Problem::for_write)?;
    let types = typed_after(state, name, &nested).await.aligned(&columns);
    let shown = first
        .map(|row| row_object(&columns, &types, &row))
        .unwrap_or_default();
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = json(status, &shown);
    if created {
        if let Ok(value) = header::HeaderValue::from_str(&format!("/{name}")) {
            response.headers_mut().insert(header::LOCATION, value);
        }
    }
    Ok(response)
}

/// Attempts at a `PATCH` whose table changed between its read and its
/// write, before it gives up with a 409.
const PATCH_ATTEMPTS: usize = 16;

/// `PATCH /<name>`: the body's fields set, the others kept (the table is
/// rewritten only if it has not changed since it was read).
async fn patch(
    state: &AppState,
    name: &str,
    mark: Singular,
    request: Request,
) -> Result<Response, Problem> {
    let (headers, given, nested) = one_object(state, name, request).await?;
    let asked = expectations(&headers);
    let client_expects = asked.if_match.is_some() || asked.if_none_match.is_some();
    let next = Singular {
        own_id: mark.own_id || own_id(state, &given),
    };
    let Some(given_row) = given.rows.first().cloned() else {
        return Err(Problem::bad_request("the body holds no fields"));
    };
    for _ in 0..PATCH_ATTEMPTS {
        let selected = state.store.select(name, "").await?;
        let head = selected.head;
        let mut rows = selected.rows;
        let first = rows.next().await.transpose()?;
        // The read is over before the write begins.
        drop(rows);
        let mut columns: Vec<String> = head.columns.to_vec();
        let mut cells: Vec<String> = match &first {
            Some(row) => row.cells(columns.len()).map(str::to_string).collect(),
            None => vec![String::new(); columns.len()],
        };
        for (at, column) in given.columns.iter().enumerate() {
            let value = given_row.get(at).to_string();
            match columns.iter().position(|c| c == column) {
                Some(i) => cells[i] = value,
                None => {
                    columns.push(column.clone());
                    cells.push(value);
                }
            }
        }
        let row = Row::from_cells(cells.iter().map(String::as_str));
        let records = Records {
            columns: columns.clone(),
            rows: vec![row.clone()],
            numbered: false,
        };
        let expect = if client_expects {
            asked.clone()
        } else {
            Expect {
                if_match: Some(vec![Tag::Version(head.version)]),
                if_none_match: None,
            }
        };
        match state.store.replace_table(name, records, &expect).await {
            Ok(_) => {
                if next != mark {
                    state.store.set_singular(name, Some(next)).await?;
                }
                let types = typed_after(state, name, &nested).await.aligned(&columns);
                let shown = singular_object(&columns, &types, head.id_col, Some(&row), next);
                return Ok(json(StatusCode::OK, &shown));
            }
            Err(Error::PreconditionFailed(_)) if !client_expects => continue,
            Err(err) => {
                return Err(write(Target::Table(name), async { Err::<(), _>(err) })
                    .await
                    .map_err(Problem::for_write)
                    .unwrap_err())
            }
        }
    }
    Err(Problem::new(
        StatusCode::CONFLICT,
        "conflict",
        format!(
            "{name} changed {PATCH_ATTEMPTS} times while this PATCH was applied; send it again"
        ),
    ))
}
