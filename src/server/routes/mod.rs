//! The HTTP API: `/`, `/<table>` and `/<table>/<id>`, each method mapped to
//! one store call. Handlers parse (negotiate, read the body), call the store,
//! wait for a write to be durable, and render; they never see a file.
//!
//! This file routes: it maps each path and method to its handler in
//! [`reads`], [`writes`] or [`service`], and holds what they share. It never
//! reads a body nor calls the store itself; that is the handlers' work.

mod bodies;
mod changes;
mod formats;
mod reads;
mod service;
mod validators;
mod writes;

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;

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

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
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
    /// Start CSV downloads with a byte-order mark (`--csv-bom`).
    pub csv_bom: bool,
    /// Open change-feed requests (`--max-subscribers`).
    pub streams: Arc<Streams>,
}

type Answer = Result<Response, Problem>;

/// The router of the whole API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", any(root))
        .route("/_health", get(health))
        .route("/_assets/{name}", get(asset))
        .route("/_metrics", get(metrics))
        .route("/_changes", any(all_changes))
        .route("/_changes/", any(all_changes))
        .route("/_changes/{table}", any(table_changes))
        .route("/_changes/{table}/{id}", any(row_changes))
        .route("/{table}", any(table))
        // `/people/` is `/people`, as json-server users type it.
        .route("/{table}/", any(table))
        .route("/{table}/{id}", any(row))
        .fallback(no_route)
        .with_state(state)
}

async fn no_route(request: Request) -> Problem {
    Problem::not_found(format!(
        "no resource at {}; the routes are /, /<table>, /<table>/<id> and /_changes[/<table>[/<id>]]",
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
fn viewer_of(request: &Request) -> Viewer {
    request
        .extensions()
        .get::<Viewer>()
        .cloned()
        .unwrap_or_default()
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
