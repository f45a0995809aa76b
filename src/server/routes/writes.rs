//! The writes: creating rows, replacing or deleting a table, and putting,
//! patching or deleting a row. Each reads its body, makes one store call
//! and answers only once that call is durable. They never answer a page:
//! a browser is sent on to one by the router.

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::super::conditional::{etag, expectations, Target};
use super::super::problem::Problem;
use super::super::stream;
use super::bodies::{read_body, single};
use super::formats::{answer_format, content};
use super::validators::write;
use super::{row_body, Answer, AppState};
use crate::codec::repr::{self, encode_segment, Format};
use crate::page::{RowPage, Viewer};
use crate::store::schema::Types;
use crate::store::{Records, Row, Written};

/// `POST /<table>`; `parent`, for `POST /posts/1/comments`, is the
/// foreign key and id every row gets (`postId` 1).
pub(super) async fn post_rows(
    state: AppState,
    name: String,
    request: Request,
    parent: Option<(String, String)>,
) -> Answer {
    crate::store::validate_table_name(&name)?;
    let (headers, mut parsed, _claim) = read_body(&state, request, true).await?;
    if let Some((column, id)) = &parent {
        set_field(&mut parsed.records, column, id)?;
    }
    if parsed.records.is_empty() {
        return Err(Problem::bad_request("the body holds no rows to create"));
    }
    let expect = expectations(&headers);
    let many = parsed.many;
    let written = write(
        Target::Table(&name),
        state.store.insert(&name, parsed.records, &expect),
    )
    .await?;
    let types = typed_after(&state, &name, &parsed.nested).await;
    let format = answer_format(&headers);
    let location = if many {
        format!("/{name}")
    } else {
        row_location(&name, &written, 0)
    };
    let mut response = if many {
        let body = stream::written(format, &name, written, state.csv_safe, types).await;
        (StatusCode::CREATED, body).into_response()
    } else {
        written_row(
            format,
            &name,
            &written,
            &types,
            StatusCode::CREATED,
            state.csv_safe,
        )
    };
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// The datatypes a write's answer is rendered by, once the columns it gave
/// JSON objects or arrays are recorded as JSON columns (a record that
/// cannot be made leaves them as they were: the write itself is done).
pub(super) async fn typed_after(state: &AppState, table: &str, nested: &[String]) -> Types {
    if !nested.is_empty() {
        if let Err(err) = state.store.record_json(table, nested).await {
            tracing::warn!(table, "cannot record the columns written as JSON: {err}");
        }
    }
    state.store.types(table).await
}

fn row_location(table: &str, written: &Written, index: usize) -> String {
    let id = written
        .id_col
        .zip(written.rows.get(index))
        .map(|(col, row)| row.get(col).to_string())
        .unwrap_or_default();
    format!("/{table}/{}", encode_segment(&id))
}

/// The answer to a write of one row: its representation and its tag.
fn written_row(
    format: Format,
    table: &str,
    written: &Written,
    types: &Types,
    status: StatusCode,
    csv_safe: bool,
) -> Response {
    let (Some(row), Some(version)) = (written.rows.first(), written.versions.first()) else {
        return status.into_response();
    };
    let typed = super::schema::types_tag(types, format);
    let tag = etag(*version, typed.as_deref(), format);
    let body = row_body(
        format,
        &written.columns,
        types,
        RowPage {
            table,
            columns: &written.columns,
            id_col: written.id_col,
            row,
            tag: &tag,
            // Never drawn: a write's answer is never a page.
            since: 0,
            viewer: &Viewer::default(),
        },
        csv_safe,
    );
    (status, content(format, false, &tag), body).into_response()
}

pub(super) async fn put_table(state: AppState, name: String, request: Request) -> Answer {
    crate::store::validate_table_name(&name)?;
    let (headers, parsed, _claim) = read_body(&state, request, true).await?;
    let expect = expectations(&headers);
    let (info, created) = write(
        Target::Table(&name),
        state.store.replace_table(&name, parsed.records, &expect),
    )
    .await?;
    typed_after(&state, &name, &parsed.nested).await;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = format!("{}\n", repr::table_info_json(&info));
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    let tag = etag(info.version, None, Format::Json);
    if let Ok(value) = HeaderValue::from_str(&tag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    if created {
        if let Ok(value) = HeaderValue::from_str(&format!("/{name}")) {
            response.headers_mut().insert(header::LOCATION, value);
        }
    }
    Ok(response)
}

pub(super) async fn delete_table(state: AppState, name: String, headers: &HeaderMap) -> Answer {
    let expect = expectations(headers);
    write(
        Target::Table(&name),
        state.store.delete_table(&name, &expect),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn write_row(
    state: AppState,
    table: String,
    id: String,
    request: Request,
) -> Answer {
    let patch = request.method() == Method::PATCH;
    crate::store::validate_table_name(&table)?;
    let (headers, parsed, _claim) = read_body(&state, request, false).await?;
    let nested = parsed.nested.clone();
    let record = single(parsed)?;
    let expect = expectations(&headers);
    let target = Target::Row {
        table: &table,
        id: &id,
    };
    let call = if patch {
        state.store.patch_row(&table, &id, record, &expect)
    } else {
        state.store.put_row(&table, &id, record, &expect)
    };
    let written = write(target, call).await?;
    let types = typed_after(&state, &table, &nested).await;
    let status = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = written_row(
        answer_format(&headers),
        &table,
        &written,
        &types,
        status,
        state.csv_safe,
    );
    if written.created {
        if let Ok(value) = HeaderValue::from_str(&format!("/{table}/{}", encode_segment(&id))) {
            response.headers_mut().insert(header::LOCATION, value);
        }
    }
    Ok(response)
}

pub(super) async fn delete_row(
    state: AppState,
    table: String,
    id: String,
    headers: &HeaderMap,
) -> Answer {
    let expect = expectations(headers);
    let target = Target::Row {
        table: &table,
        id: &id,
    };
    write(target, state.store.delete_row(&table, &id, &expect)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- json-server compatibility: nested routes

/// Gives every record `column` = `value` (the parent a nested route
/// names); a record that names another value is refused.
fn set_field(records: &mut Records, column: &str, value: &str) -> Result<(), Problem> {
    let at = match records.columns.iter().position(|c| c == column) {
        Some(at) => at,
        None => {
            records.columns.push(column.to_string());
            records.columns.len() - 1
        }
    };
    let width = records.columns.len();
    for row in &mut records.rows {
        let given = row.get(at);
        if !given.is_empty() && given != value {
            return Err(Problem::bad_request(format!(
                "the body's {column} {given:?} does not match the URL's {value:?}; leave it out \
                 or give the same"
            )));
        }
        let cells = (0..width).map(|i| if i == at { value } else { row.get(i) });
        *row = Row::from_cells(cells);
    }
    Ok(())
}
