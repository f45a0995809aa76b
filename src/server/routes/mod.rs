//! The HTTP API: `/`, `/<table>` and `/<table>/<id>`, each method mapped to
//! one store call. Handlers parse (negotiate, read the body), call the store,
//! wait for a write to be durable, and render; they never see a file.
//!
//! This file routes: it maps each path and method to its handler in
//! [`reads`], [`writes`] or [`service`], and holds what they share. It never
//! reads a body nor calls the store itself; that is the handlers' work.

mod bodies;
mod changes;
mod detect;
mod formats;
mod reads;
mod relations;
mod schema;
mod service;
mod singular;
mod statics;
mod validators;
mod writes;

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use futures_util::future::Either;

use self::changes::{all_changes, row_changes, table_changes};
pub use self::changes::{Live, Streams};
use self::formats::{split_suffix, Browser};
use self::reads::{get_row, get_table, list_tables};
use self::service::{asset, health, metrics};
use self::writes::{delete_row, delete_table, post_rows, put_table, write_row};
use super::problem::Problem;
use crate::codec::repr::{self, encode_segment, Format};
use crate::page::{RowPage, Viewer};
use crate::store::Store;

const ALLOW_ROOT: &str = "GET, HEAD, OPTIONS";
const ALLOW_TABLE: &str = "GET, HEAD, POST, PUT, DELETE, OPTIONS";
const ALLOW_ROW: &str = "GET, HEAD, PUT, PATCH, DELETE, OPTIONS";

/// What every handler shares: one allocation, so that the clone each
/// request takes of it is one reference count, not one per field.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The fields of [`AppState`].
pub struct Shared {
    pub store: Arc<dyn Store>,
    pub max_body: usize,
    /// Room for large bodies in flight (`--max-bulk-bytes`).
    pub bulk: Arc<super::bulk::Budget>,
    /// The column that holds each row's id (`--id-column`).
    pub id_column: Arc<str>,
    /// Time a client has to send a whole body (408 after).
    pub body_timeout: std::time::Duration,
    pub metrics: Arc<super::Metrics>,
    /// Neutralise CSV cells that spreadsheets would run as formulas
    /// (`--csv-safe`).
    pub csv_safe: bool,
    /// Start CSV downloads with a byte-order mark (`--csv-bom`).
    pub csv_bom: bool,
    /// Open change-feed requests (`--max-subscribers`).
    pub streams: Arc<Streams>,
    pub json_server: Arc<JsonServer>,
}

// ---- json-server compatibility: options

/// What makes csvd answer as json-server does.
#[derive(Debug, Clone)]
pub struct JsonServer {
    /// `postId` names a row of `posts` (`--foreign-key-suffix`).
    pub foreign_key_suffix: String,
    /// Waited before every answer (`--delay`).
    pub delay: std::time::Duration,
    /// Where the front end's files are (`--static`, or `./public`).
    pub static_dir: Option<std::path::PathBuf>,
    /// routes.json's rewrite rules (`--routes`).
    pub routes: Option<Arc<super::rewrite::Rules>>,
}

impl Default for JsonServer {
    fn default() -> JsonServer {
        JsonServer {
            foreign_key_suffix: "Id".into(),
            delay: std::time::Duration::ZERO,
            static_dir: None,
            routes: None,
        }
    }
}

impl JsonServer {
    /// From the command line; a `--static` that is not a directory is an error.
    pub fn of(args: &crate::cli::ServeArgs) -> anyhow::Result<JsonServer> {
        let public = std::path::Path::new("public");
        if let Some(dir) = &args.static_dir {
            anyhow::ensure!(
                dir.is_dir(),
                "--static {}: not a directory of files to serve",
                dir.display()
            );
        }
        Ok(JsonServer {
            foreign_key_suffix: args.foreign_key_suffix.clone(),
            delay: std::time::Duration::from_millis(args.delay),
            static_dir: match &args.static_dir {
                Some(dir) => Some(dir.clone()),
                None if !args.no_static && public.is_dir() => Some(public.to_path_buf()),
                None => None,
            },
            routes: match &args.routes {
                Some(path) => Some(super::rewrite::Rules::load(path)?),
                None => None,
            },
        })
    }
}

// ---- end of json-server compatibility: options

type Answer = Result<Response, Problem>;

/// The router of the whole API.
pub fn router(state: AppState) -> Router {
    let router = Router::new()
        .route("/", any(root))
        .route("/_health", get(health))
        .route("/_assets/{name}", get(asset))
        .route("/_metrics", get(metrics))
        .route("/_detect", any(detect::detect))
        .route("/_changes", any(all_changes))
        .route("/_changes/", any(all_changes))
        .route("/_changes/{table}", any(table_changes))
        .route("/_changes/{table}/{id}", any(row_changes))
        .route("/_schema/{table}", any(schema::table_schema))
        // json-server's whole database, unless a table is named `db`.
        .route("/db", any(database))
        // routes.json's rules, as json-server 0.17 shows them.
        .route("/__rules", get(rules))
        .route("/{table}", any(table))
        // `/people/` is `/people`, as json-server users type it.
        .route("/{table}/", any(table))
        .route("/{table}/{id}", any(row))
        // json-server's nested routes: `/posts/1/comments`.
        .route("/{table}/{id}/{child}", any(nested))
        .fallback(no_route);
    // ---- json-server compatibility: static files
    let router = match state.json_server.static_dir.clone() {
        Some(dir) => router.layer(axum::middleware::from_fn_with_state(
            (state.clone(), Arc::new(dir)),
            statics::serve,
        )),
        None => router,
    };
    // ---- end of json-server compatibility
    router.with_state(state)
}

// ---- json-server compatibility: delay (waited by the gate)

/// Longest wait a request may ask for with `_delay`.
const MAX_ASKED_DELAY_MS: u64 = 60_000;

/// `_delay=MS` in a query: this request's wait instead of `--delay`.
pub(in crate::server) fn asked_delay(
    raw_query: &str,
) -> Result<Option<std::time::Duration>, Problem> {
    let Some((_, value)) =
        form_urlencoded::parse(raw_query.as_bytes()).find(|(k, _)| k == "_delay")
    else {
        return Ok(None);
    };
    match value.trim().parse::<u64>() {
        Ok(ms) if ms <= MAX_ASKED_DELAY_MS => Ok(Some(std::time::Duration::from_millis(ms))),
        _ => Err(Problem::bad_request(format!(
            "_delay: expected a number of milliseconds from 0 to {MAX_ASKED_DELAY_MS}, got {value:?}"
        ))),
    }
}

// ---- json-server compatibility: nested routes

const ALLOW_NESTED: &str = "GET, HEAD, POST, OPTIONS";

/// `/posts/1/comments`: the rows of `comments` whose `postId` is 1
/// (`GET`, with any query), or a new one with that `postId` (`POST`).
async fn nested(
    State(state): State<AppState>,
    Path((parent, id, segment)): Path<(String, String, String)>,
    mut request: Request,
) -> Answer {
    // Three segments that do not name two tables are no route at all.
    let (child, suffix) = match split_suffix(&segment) {
        Ok((child, suffix))
            if crate::store::validate_table_name(&parent).is_ok()
                && crate::store::validate_table_name(&child).is_ok() =>
        {
            (child, suffix)
        }
        _ => return Err(no_route(request).await),
    };
    let key = format!(
        "{}{}",
        relations::singular(&parent),
        state.json_server.foreign_key_suffix
    );
    let method = request.method().clone();
    match method {
        Method::GET | Method::HEAD => {
            // An operator form of its own, so a filter on the same column
            // in the query narrows rather than widens.
            let mut query = form_urlencoded::Serializer::new(String::new())
                .append_pair(&format!("{key}:eq"), &id)
                .finish();
            if let Some(rest) = request.uri().query().filter(|q| !q.is_empty()) {
                query = format!("{query}&{rest}");
            }
            // Links lead to the child table's own address, with the filter.
            let uri = format!("/{}?{query}", encode_segment(&segment));
            *request.uri_mut() = uri
                .parse()
                .map_err(|_| Problem::bad_request("this nested address cannot be read"))?;
            get_table(state, child, suffix, request).await
        }
        Method::POST => post_rows(state, child, request, Some((key, id)))
            .await
            .map_err(Problem::for_write),
        Method::OPTIONS => Ok(options(ALLOW_NESTED)),
        _ => Err(not_allowed(&method, ALLOW_NESTED)),
    }
}

/// `GET /db`: the whole database as one JSON object; a table named `db`
/// is answered as any table.
async fn database(state: State<AppState>, request: Request) -> Answer {
    let is_read = matches!(*request.method(), Method::GET | Method::HEAD);
    if is_read && !state.store.tables().await?.iter().any(|t| t.name == "db") {
        return reads::whole_database(state.0).await;
    }
    table(state, Path("db".to_string()), request).await
}

// ---- end of json-server compatibility: nested routes

/// `GET /__rules`: the rules of `--routes`, as the file gives them.
async fn rules(State(state): State<AppState>, request: Request) -> Answer {
    match &state.json_server.routes {
        Some(rules) => Ok((
            [(header::CONTENT_TYPE, "application/json")],
            format!("{}\n", rules.source),
        )
            .into_response()),
        None => Err(no_route(request).await),
    }
}

async fn no_route(request: Request) -> Problem {
    Problem::not_found(format!(
        "no resource at {}; the routes are /, /db, /<table>, /<table>/<id>, /<table>/<id>/<table>, \
         /_schema/<table> and /_changes[/<table>[/<id>]]",
        request.uri().path()
    ))
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
    // ---- json-server compatibility: singular resources (`/profile`)
    let request = match suffix {
        None => match singular::route(&state, &name, request).await? {
            singular::Routed::Answered(response) => return Ok(response),
            singular::Routed::Table(request) => request,
        },
        Some(_) => request,
    };
    // ---- end of json-server compatibility
    let method = request.method().clone();
    let browser = Browser::of(request.headers());
    let table_page = format!("/{name}");
    match method {
        Method::GET | Method::HEAD => get_table(state, name, suffix, request).await,
        Method::POST => post_rows(state, name, request, None)
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

/// The answer to a request for a row of a singular resource.
pub(super) fn singular_has_no_rows(table: &str) -> Problem {
    Problem::not_found(format!(
        "{table} is a singular resource (one object), with no rows by id: use /{table}"
    ))
}

/// A read, the common request, is answered by a future of its own size
/// (allocated for every request); the other methods' futures are larger,
/// and boxed.
fn row(
    State(state): State<AppState>,
    Path((table, id)): Path<(String, String)>,
    request: Request,
) -> impl std::future::Future<Output = Answer> {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        Either::Left(read_row(state, table, id, request))
    } else {
        Either::Right(Box::pin(change_row(state, table, id, request)))
    }
}

fn read_row(
    state: AppState,
    table: String,
    id: String,
    request: Request,
) -> impl std::future::Future<Output = Answer> {
    // A read's body is nothing: only its head is kept.
    let (head, _) = request.into_parts();
    // A block rather than an `async fn`, whose future would hold its
    // arguments twice (as arguments, and as the locals they are moved into).
    async move {
        let viewer = viewer_in(&head.extensions);
        get_row(&state, &table, &id, &head, &viewer).await
    }
}

/// Where `path` splits into table and id when it is one the router gives
/// to [`row`] with both segments as written (no escape to decode): the
/// index of the slash between them. Such a read may skip the router
/// ([`read_row_at`]), whose matching and path parameters cost more than
/// the read itself.
pub(in crate::server) fn row_address(path: &str) -> Option<usize> {
    let rest = path.strip_prefix('/')?;
    let slash = rest.find('/')?;
    let (table, id) = (&rest[..slash], &rest[slash + 1..]);
    // `_`: the service's own routes (`/_changes/<t>`, `/_schema/<t>`, …),
    // never a table.
    if table.is_empty() || table.starts_with('_') || id.is_empty() || id.contains('/') {
        return None;
    }
    if path.contains('%') {
        return None;
    }
    Some(slash + 1)
}

/// `GET` or `HEAD` of the row at `path`, split at `slash` by
/// [`row_address`], for `viewer`: what the router's `row` does with it,
/// and what the router adds to a HEAD's answer (the length of the body it
/// drops). A GET's length is written by hyper from its body, as for any
/// answer. The viewer is given rather than found in the request's
/// extensions, which then need no map of their own.
pub(in crate::server) fn read_row_at(
    state: AppState,
    request: Request,
    slash: usize,
    viewer: Arc<Viewer>,
) -> impl std::future::Future<Output = Result<Response, std::convert::Infallible>> {
    let (head, _) = request.into_parts();
    async move {
        let path = head.uri.path();
        let answer = get_row(&state, &path[1..slash], &path[slash + 1..], &head, &viewer).await;
        let mut response = answer.into_response();
        if head.method == Method::HEAD {
            if !response.headers().contains_key(header::CONTENT_LENGTH) {
                if let Some(size) = http_body::Body::size_hint(response.body()).exact() {
                    response
                        .headers_mut()
                        .insert(header::CONTENT_LENGTH, axum::http::HeaderValue::from(size));
                }
            }
            *response.body_mut() = axum::body::Body::empty();
        }
        Ok(response)
    }
}

async fn change_row(state: AppState, table: String, id: String, request: Request) -> Answer {
    let method = request.method().clone();
    // ---- json-server compatibility: a singular resource has no rows
    // (a read learns it with the row itself).
    if crate::store::validate_table_name(&table).is_ok()
        && state
            .store
            .singular(&table)
            .await
            .is_ok_and(|mark| mark.is_some())
    {
        return Err(singular_has_no_rows(&table));
    }
    // ---- end of json-server compatibility
    let browser = Browser::of(request.headers());
    let table_page = |table: &str| format!("/{table}");
    match method {
        Method::PUT | Method::PATCH => {
            let row_page = format!("{}/{}", table_page(&table), encode_segment(&id));
            write_row(state, table, id, request)
                .await
                .map_err(Problem::for_write)
                .map(|answer| browser.see(answer, &row_page))
        }
        Method::DELETE => {
            let page = table_page(&table);
            delete_row(state, table, id, request.headers())
                .await
                .map_err(Problem::for_write)
                .map(|answer| browser.see(answer, &page))
        }
        Method::OPTIONS => Ok(options(ALLOW_ROW)),
        _ => Err(not_allowed(&method, ALLOW_ROW)),
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

/// Who is looking, for a page: set by the access rules for every request.
fn viewer_of(request: &Request) -> Arc<Viewer> {
    viewer_in(request.extensions())
}

fn viewer_in(extensions: &axum::http::Extensions) -> Arc<Viewer> {
    extensions.get::<Arc<Viewer>>().cloned().unwrap_or_default()
}

/// One row on its own in `format`: its page, or its data (`columns` are
/// the page's).
fn row_body(
    format: Format,
    columns: &Arc<Vec<String>>,
    types: &crate::store::schema::Types,
    page: RowPage<'_>,
    csv_safe: bool,
) -> Vec<u8> {
    match format.data() {
        Some(data) => repr::render_row_typed(data, columns, types, csv_safe, page.row),
        None => page.render(),
    }
}
