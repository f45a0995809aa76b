//! The HTTP API: `/`, `/<table>` and `/<table>/<id>`, each method mapped to
//! one store call. Handlers parse (negotiate, read the body), call the store,
//! wait for a write to be durable, and render; they never see a file.

use std::future::Future;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use http_body_util::BodyExt;

use super::bulk::Claim;
use super::conditional::{self, etag, expectations, not_modified, Target};
use super::negotiate::{negotiate, prefers_html};
use super::problem::Problem;
use super::stream::{self, Rows};
use crate::codec::body::{self, Parsed};
use crate::codec::repr::{self, encode_segment, Format};
use crate::page::{self, Address, RowPage, TablePage, Viewer};
use crate::query::{self, Views};
use crate::store::{Row, Store, TableInfo, Written};

const ALLOW_ROOT: &str = "GET, HEAD, OPTIONS";
const ALLOW_TABLE: &str = "GET, HEAD, POST, PUT, DELETE, OPTIONS";
const ALLOW_ROW: &str = "GET, HEAD, PUT, PATCH, DELETE, OPTIONS";

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// The tables as queries see them, kept between requests.
    pub views: Arc<Views>,
    pub max_body: usize,
    /// Room for large bodies in flight (`--max-bulk-bytes`).
    pub bulk: Arc<super::bulk::Budget>,
    /// The column that holds each row's id (`--id-column`).
    pub id_column: String,
    /// Time a client has to send a whole body (408 after).
    pub body_timeout: std::time::Duration,
    pub metrics: Arc<super::Metrics>,
    /// Neutralise CSV cells that spreadsheets would run as formulas
    /// (`--csv-safe`).
    pub csv_safe: bool,
}

type Answer = Result<Response, Problem>;

/// The router of the whole API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", any(root))
        .route("/_health", get(health))
        .route("/_assets/{name}", get(asset))
        .route("/_metrics", get(metrics))
        .route("/{table}", any(table))
        // `/people/` is `/people`, as json-server users type it.
        .route("/{table}/", any(table))
        .route("/{table}/{id}", any(row))
        .fallback(no_route)
        .with_state(state)
}

async fn no_route(request: Request) -> Problem {
    Problem::not_found(format!(
        "no resource at {}; the routes are /, /<table> and /<table>/<id>",
        request.uri().path()
    ))
}

async fn metrics(State(state): State<AppState>) -> Answer {
    let tables = state.store.tables().await?;
    let text = state.metrics.render(&tables, state.store.stats().await);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

async fn health() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        "{\"status\":\"ok\"}\n",
    )
        .into_response()
}

/// A store write, answered only once it is durable (the store's future
/// resolves then). The wait for the log's fsync holds no thread, so
/// concurrent writes share fsyncs cheaply. A failed precondition is said
/// in terms of the `target`.
async fn write<T>(
    target: Target<'_>,
    call: impl Future<Output = crate::store::Result<T>>,
) -> Result<T, Problem> {
    call.await.map_err(|err| match err {
        crate::store::Error::PreconditionFailed(unmet) => conditional::failed(unmet, target),
        other => Problem::from(other),
    })
}

/// A stylesheet, script or icon of the web page.
async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Answer {
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

async fn root(State(state): State<AppState>, request: Request) -> Answer {
    match *request.method() {
        Method::GET | Method::HEAD => {
            list_tables(state, request.headers(), &viewer_of(&request)).await
        }
        Method::OPTIONS => Ok(options(ALLOW_ROOT)),
        _ => Err(not_allowed(request.method(), ALLOW_ROOT)),
    }
}

async fn table(
    State(state): State<AppState>,
    Path(segment): Path<String>,
    request: Request,
) -> Answer {
    let (name, suffix) = split_suffix(&segment)?;
    let method = request.method().clone();
    let browser = Browser::of(request.headers());
    let table_page = format!("/{name}");
    match method {
        Method::GET | Method::HEAD => get_table(state, name, suffix, request).await,
        Method::POST => post_rows(state, name, request)
            .await
            .map_err(Problem::for_write)
            .map(|answer| browser.see(answer, &table_page)),
        Method::PUT => put_table(state, name, request)
            .await
            .map_err(Problem::for_write)
            .map(|answer| browser.see(answer, &table_page)),
        Method::DELETE => delete_table(state, name, request.headers())
            .await
            .map(|answer| browser.see(answer, "/")),
        Method::OPTIONS => Ok(options(ALLOW_TABLE)),
        _ => Err(not_allowed(&method, ALLOW_TABLE)),
    }
}

async fn row(
    State(state): State<AppState>,
    Path((table, id)): Path<(String, String)>,
    request: Request,
) -> Answer {
    let method = request.method().clone();
    let browser = Browser::of(request.headers());
    let table_page = format!("/{table}");
    let row_page = format!("{table_page}/{}", encode_segment(&id));
    match method {
        Method::GET | Method::HEAD => {
            let viewer = viewer_of(&request);
            get_row(state, table, id, request.headers(), &viewer).await
        }
        Method::PUT | Method::PATCH => write_row(state, table, id, request)
            .await
            .map_err(Problem::for_write)
            .map(|answer| browser.see(answer, &row_page)),
        Method::DELETE => delete_row(state, table, id, request.headers())
            .await
            .map_err(Problem::for_write)
            .map(|answer| browser.see(answer, &table_page)),
        Method::OPTIONS => Ok(options(ALLOW_ROW)),
        _ => Err(not_allowed(&method, ALLOW_ROW)),
    }
}

/// Whether a write came from a browser's page (it prefers HTML). A
/// browser is answered `303 See Other` to the page that shows what it
/// wrote (the new row's, say), so that it shows a page rather than a raw
/// representation, and reloading it repeats nothing.
#[derive(Clone, Copy)]
struct Browser(bool);

impl Browser {
    fn of(headers: &HeaderMap) -> Browser {
        Browser(prefers_html(
            headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()),
        ))
    }

    /// The answer to a successful write: as it is, or for a browser, on to
    /// its `Location` (else to `page`).
    fn see(self, answer: Response, page: &str) -> Response {
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

fn options(allow: &'static str) -> Response {
    (StatusCode::NO_CONTENT, [(header::ALLOW, allow)]).into_response()
}

/// 405 for the methods HTTP defines, 501 for ones it does not.
fn not_allowed(method: &Method, allow: &'static str) -> Problem {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
    ];
    if KNOWN.contains(&method.as_str()) {
        Problem::method_not_allowed(method.as_str(), allow)
    } else {
        Problem::new(
            StatusCode::NOT_IMPLEMENTED,
            "not-implemented",
            format!("method {method} is not supported; use one of {allow}"),
        )
    }
}

/// `people.csv` → (`people`, CSV). An unknown suffix is a 406: the name
/// itself could never hold a dot.
fn split_suffix(segment: &str) -> Result<(String, Option<Format>), Problem> {
    match segment.rsplit_once('.') {
        None => Ok((segment.to_string(), None)),
        Some((name, suffix)) => match Format::from_suffix(suffix) {
            Some(format) => Ok((name.to_string(), Some(format))),
            None if crate::store::validate_table_name(name).is_err() || suffix.is_empty() => {
                Err(crate::store::Error::InvalidTableName(segment.to_string()).into())
            }
            None => Err(Problem::new(
                StatusCode::NOT_ACCEPTABLE,
                "not-acceptable",
                format!("no representation .{suffix}; available: .json, .csv, .ndjson, .html"),
            )),
        },
    }
}

/// The format to answer in: the URL suffix, else `Accept`.
fn choose(headers: &HeaderMap, suffix: Option<Format>) -> Result<Format, Problem> {
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
fn answer_format(headers: &HeaderMap) -> Format {
    match choose(headers, None) {
        Ok(Format::Html) | Err(_) => Format::Json,
        Ok(format) => format,
    }
}

/// A page differs for a signed-in browser: caches must keep them apart.
fn vary_by_viewer(headers: &mut HeaderMap, format: Format, viewer: &Viewer) {
    if format == Format::Html && viewer.guarded {
        let vary = if headers.contains_key(header::VARY) {
            "Accept, Cookie"
        } else {
            "Cookie"
        };
        headers.insert(header::VARY, HeaderValue::from_static(vary));
    }
}

/// Who is looking, for a page: set by the access rules for every request.
fn viewer_of(request: &Request) -> Viewer {
    request
        .extensions()
        .get::<Viewer>()
        .cloned()
        .unwrap_or_default()
}

/// A page's tag: the representation's, told apart per viewer (a page's
/// forms and token differ), and `Vary: Cookie` when a sign-in changes it.
fn page_tag(tag: String, format: Format, viewer: &Viewer) -> String {
    match viewer.tag_suffix().filter(|_| format == Format::Html) {
        Some(suffix) => format!("{}{suffix}\"", tag.trim_end_matches('"')),
        None => tag,
    }
}

fn content(format: Format, negotiated: bool, tag: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
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

fn last_modified(headers: &mut HeaderMap, modified: std::time::SystemTime) {
    if let Ok(value) = HeaderValue::from_str(&httpdate::fmt_http_date(modified)) {
        headers.insert(header::LAST_MODIFIED, value);
    }
}

async fn list_tables(state: AppState, request_headers: &HeaderMap, viewer: &Viewer) -> Answer {
    let format = choose(request_headers, None)?;
    let tables = state.store.tables().await?;
    let version = list_version(&tables);
    let tag = page_tag(etag(version, None, format), format, viewer);
    let mut headers = content(format, true, &tag);
    vary_by_viewer(&mut headers, format, viewer);
    if not_modified(request_headers, &tag, None) {
        return Ok((StatusCode::NOT_MODIFIED, headers).into_response());
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let body = match format.data() {
        Some(data) => repr::render_tables(data, &tables),
        None => page::table_list(&tables, viewer),
    };
    Ok((headers, body).into_response())
}

fn list_version(tables: &[TableInfo]) -> u64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for info in tables {
        hasher.update(info.name.as_bytes());
        hasher.update(&info.version.to_le_bytes());
        hasher.update(&(info.rows as u64).to_le_bytes());
    }
    hasher.digest()
}

/// `GET /<table>?<query>`: the rows a query selects, in any representation,
/// streamed when there are many.
async fn get_table(
    state: AppState,
    name: String,
    suffix: Option<Format>,
    request: Request,
) -> Answer {
    let format = choose(request.headers(), suffix)?;
    let view = state.views.get(state.store.as_ref(), &name).await?;
    let raw_query = request.uri().query().unwrap_or_default();
    // A browser's page holds one page of rows unless its address names a window.
    let asked = match format {
        Format::Html => Address::paged(raw_query),
        _ => raw_query.to_string(),
    };
    let query = query::parse(&asked, &view.snapshot.columns)
        .map_err(|err| Problem::bad_request(err.to_string()))?;
    let viewer = viewer_of(&request);
    let tag = page_tag(
        etag(view.snapshot.version, Some(raw_query), format),
        format,
        &viewer,
    );
    let mut headers = content(format, suffix.is_none(), &tag);
    vary_by_viewer(&mut headers, format, &viewer);
    last_modified(&mut headers, view.snapshot.modified);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if not_modified(request.headers(), &tag, Some(view.snapshot.modified)) {
        return Ok((StatusCode::NOT_MODIFIED, headers).into_response());
    }
    let (query, selection) = if query.is_plain() {
        let selection = query::select(&query, &view);
        (query, selection)
    } else {
        // Filtering and sorting may read every row: off the async workers,
        // a few at a time.
        let _turn = state.views.turn().await;
        let view = view.clone();
        tokio::task::spawn_blocking(move || {
            let selection = query::select(&query, &view);
            (query, selection)
        })
        .await
        .map_err(|e| {
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("a query task failed: {e}"),
            )
        })?
    };
    if let Ok(value) = HeaderValue::from_str(&selection.total.to_string()) {
        headers.insert("x-total-count", value);
    }
    let path = request.uri().path();
    if let Some(value) = query::links(path, &asked, query.window, selection.total)
        .and_then(|links| HeaderValue::from_str(&links).ok())
    {
        headers.insert(header::LINK, value);
    }
    // A browser's page is drawn around its rows, which stream between its halves.
    let frame = (format == Format::Html).then(|| {
        let snapshot = &view.snapshot;
        let shown: Vec<String> = match &query.fields {
            Some(fields) => fields
                .iter()
                .map(|&c| snapshot.columns[c].clone())
                .collect(),
            None => snapshot.columns.to_vec(),
        };
        TablePage {
            name: &name,
            columns: &snapshot.columns,
            shown: &shown,
            id_column: snapshot.id_col.map(|c| snapshot.columns[c].as_str()),
            tag: &tag,
            rows: snapshot.rows.len(),
            matching: selection.total,
            modified: snapshot.modified,
            query: &asked,
            viewer: &viewer,
        }
        .frame()
    });
    let rows =
        Rows::new(view, selection.picked, query.fields).into_body(format, &name, state.csv_safe);
    match frame {
        Some(frame) => Ok((headers, page::table_body(frame, rows)).into_response()),
        None => Ok((headers, rows).into_response()),
    }
}

async fn get_row(
    state: AppState,
    table: String,
    id: String,
    request_headers: &HeaderMap,
    viewer: &Viewer,
) -> Answer {
    let title = table.clone();
    let store = state.store.as_ref();
    let (view, suffix) = match store.row(&table, &id).await {
        // `/people/3.csv`: a format suffix on an id that does not exist as written.
        Err(crate::store::Error::NoRow(_)) => {
            let Some((stem, format)) = id
                .rsplit_once('.')
                .and_then(|(s, f)| Some((s, Format::from_suffix(f)?)))
            else {
                return Err(crate::store::Error::NoRow(id).into());
            };
            store
                .row(&table, stem)
                .await
                .map(|view| (view, Some(format)))
                .map_err(|_| crate::store::Error::NoRow(id.clone()))?
        }
        other => other.map(|view| (view, None))?,
    };
    let format = choose(request_headers, suffix)?;
    let tag = page_tag(etag(view.version, None, format), format, viewer);
    let mut headers = content(format, suffix.is_none(), &tag);
    vary_by_viewer(&mut headers, format, viewer);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if not_modified(request_headers, &tag, None) {
        return Ok((StatusCode::NOT_MODIFIED, headers).into_response());
    }
    Ok((
        headers,
        row_body(
            format,
            &view.columns,
            RowPage {
                table: &title,
                columns: &view.columns,
                id_col: view.id_col,
                row: &view.row,
                tag: &tag,
                viewer,
            },
            state.csv_safe,
        ),
    )
        .into_response())
}

/// Reads and parses a request body: 411 without a length, 413 over the
/// limit, 415 for a type we cannot read, 400 for one that does not parse.
/// The body is parsed as it arrives when it is CSV (only its rows are
/// kept), gathered whole otherwise; either way its bytes are gone once it
/// is parsed. A large body first claims room in the budget of large
/// bodies (503 when none comes free in time); the caller holds the claim
/// until it has answered. Rows of a table's CSV body without an id column
/// are `numbered` (the ids a new table gives them, without a copy).
async fn read_body(
    state: &AppState,
    request: Request,
    numbered: bool,
) -> Result<(HeaderMap, Parsed, Claim), Problem> {
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
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
    let kind = body::kind_of(content_type)?;
    let declared = declared_length(&headers);
    let mut claim = state.bulk.claim(declared).await?;
    let reading = async {
        let expected = declared.unwrap_or(0).min(state.max_body);
        let numbering = numbered.then_some(state.id_column.as_str());
        let mut reader = body::Reader::new(kind, expected, numbering);
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
        .map_err(|_| {
            Problem::new(
                StatusCode::REQUEST_TIMEOUT,
                "body-timeout",
                format!(
                    "the body did not arrive within {} s",
                    state.body_timeout.as_secs()
                ),
            )
        })??;
    Ok((headers, parsed, claim))
}

/// The body's `Content-Length`, when it has one that reads as a number.
fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn too_large(limit: usize) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
        format!("the body is larger than the limit of {limit} bytes"),
    )
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
fn single(parsed: Parsed) -> Result<crate::store::Fields, Problem> {
    let count = parsed.records.len();
    let wrong =
        || Problem::bad_request(format!("expected the fields of one row, got {count} rows"));
    if count != 1 {
        return Err(wrong());
    }
    parsed.records.to_fields().pop().ok_or_else(wrong)
}

async fn post_rows(state: AppState, name: String, request: Request) -> Answer {
    crate::store::validate_table_name(&name)?;
    let (headers, parsed, _claim) = read_body(&state, request, true).await?;
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
    let format = answer_format(&headers);
    let location = if many {
        format!("/{name}")
    } else {
        row_location(&name, &written, 0)
    };
    let mut response = if many {
        let body = stream::written(format, &name, written, state.csv_safe);
        (StatusCode::CREATED, body).into_response()
    } else {
        written_row(format, &name, &written, StatusCode::CREATED, state.csv_safe)
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

fn row_location(table: &str, written: &Written, index: usize) -> String {
    let id = written
        .id_col
        .zip(written.rows.get(index))
        .map(|(col, row)| row.get(col).to_string())
        .unwrap_or_default();
    format!("/{table}/{}", encode_segment(&id))
}

/// One row on its own in `format`: its page, or its data (`columns` are
/// the page's).
fn row_body(
    format: Format,
    columns: &Arc<Vec<String>>,
    page: RowPage<'_>,
    csv_safe: bool,
) -> Vec<u8> {
    match format.data() {
        Some(data) => repr::render_row(data, columns, csv_safe, page.row),
        None => page.render(),
    }
}

/// The answer to a write of one row: its representation and its tag.
fn written_row(
    format: Format,
    table: &str,
    written: &Written,
    status: StatusCode,
    csv_safe: bool,
) -> Response {
    let (Some(row), Some(version)) = (written.rows.first(), written.versions.first()) else {
        return status.into_response();
    };
    let tag = etag(*version, None, format);
    let body = row_body(
        format,
        &written.columns,
        RowPage {
            table,
            columns: &written.columns,
            id_col: written.id_col,
            row: row.as_ref() as &Row,
            tag: &tag,
            // Never drawn: a write's answer is never a page.
            viewer: &Viewer::default(),
        },
        csv_safe,
    );
    (status, content(format, false, &tag), body).into_response()
}

async fn put_table(state: AppState, name: String, request: Request) -> Answer {
    crate::store::validate_table_name(&name)?;
    let (headers, parsed, _claim) = read_body(&state, request, true).await?;
    let expect = expectations(&headers);
    let (info, created) = write(
        Target::Table(&name),
        state.store.replace_table(&name, parsed.records, &expect),
    )
    .await?;
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

async fn delete_table(state: AppState, name: String, headers: &HeaderMap) -> Answer {
    let expect = expectations(headers);
    write(
        Target::Table(&name),
        state.store.delete_table(&name, &expect),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn write_row(state: AppState, table: String, id: String, request: Request) -> Answer {
    let patch = request.method() == Method::PATCH;
    crate::store::validate_table_name(&table)?;
    let (headers, parsed, _claim) = read_body(&state, request, false).await?;
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
    let status = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = written_row(
        answer_format(&headers),
        &table,
        &written,
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

async fn delete_row(state: AppState, table: String, id: String, headers: &HeaderMap) -> Answer {
    let expect = expectations(headers);
    let target = Target::Row {
        table: &table,
        id: &id,
    };
    write(target, state.store.delete_row(&table, &id, &expect)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
