//! The reads: the list of tables, a table's rows as a query selects them,
//! and one row, in any representation, answered `304` when unchanged;
//! with json-server's relations, v1's page envelope and `/db`.
//! They never change the store.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};

use super::super::conditional::{etag, not_modified};
use super::super::problem::Problem;
use super::super::stream::{CsvOut, Rows};
use super::formats::{choose, content, vary_by_viewer};
use super::relations::{self, Joined, Relations};
use super::validators::{last_modified, page_tag};
use super::{row_body, viewer_of, Answer, AppState};
use crate::codec::repr::{self, Format};
use crate::page::{self, Address, RowPage, TablePage, Viewer};
use crate::query;
use crate::store::schema::Types;
use crate::store::{Row, RowRead, RowView, TableInfo};

pub(super) async fn list_tables(
    state: AppState,
    request_headers: &HeaderMap,
    viewer: &Viewer,
) -> Answer {
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

/// A CSV answer's options, from the query (`bom=1`, `delimiter=;`), the
/// server's `--csv-bom` and `Accept`'s `charset=`; and the query without
/// them, for the store.
fn csv_out(
    raw_query: &str,
    headers: &HeaderMap,
    default_bom: bool,
    tsv: bool,
) -> Result<(CsvOut, String), super::super::problem::Problem> {
    let bad = |detail: String| super::super::problem::Problem::bad_request(detail);
    let mut out = CsvOut {
        bom: default_bom,
        delimiter: if tsv { b'\t' } else { b',' },
        tsv,
        ..CsvOut::default()
    };
    let mut rest = Vec::new();
    for piece in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = form_urlencoded::parse(piece.as_bytes())
            .next()
            .unwrap_or_default();
        match &*key {
            "bom" => {
                out.bom = match &*value {
                    "1" | "true" | "yes" | "" => true,
                    "0" | "false" | "no" => false,
                    other => return Err(bad(format!("bom={other:?}: use bom=1 or bom=0"))),
                }
            }
            "delimiter" => {
                out.delimiter = match &*value {
                    "," => b',',
                    ";" => b';',
                    "\t" | "tab" => b'\t',
                    "|" => b'|',
                    other => {
                        return Err(bad(format!(
                            "delimiter={other:?}: use one of , ; | or tab (%09)"
                        )))
                    }
                }
            }
            _ => rest.push(piece),
        }
    }
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if let Some(label) = accept.and_then(csv_charset) {
        out.encoding = crate::store::dialect::charset(&label).ok_or_else(|| {
            super::super::problem::Problem::new(
                StatusCode::NOT_ACCEPTABLE,
                "not-acceptable",
                format!("cannot answer in charset {label:?}: csvd does not know it; ask for utf-8, or a charset such as cp949, shift_jis, windows-1252"),
            )
        })?;
    }
    Ok((out, rest.join("&")))
}

/// Whether `Accept` asks for tab-separated values rather than CSV.
fn wants_tsv(headers: &HeaderMap) -> bool {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let accept = accept.unwrap_or_default().to_ascii_lowercase();
    accept.contains("text/tab-separated-values") && !accept.contains("text/csv")
}

/// The `charset=` an `Accept` header gives `text/csv` (or `text/*`, or
/// `text/tab-separated-values`).
fn csv_charset(accept: &str) -> Option<String> {
    accept.split(',').find_map(|range| {
        let mut parts = range.split(';');
        let media = parts.next()?.trim().to_ascii_lowercase();
        if !matches!(
            media.as_str(),
            "text/csv" | "text/*" | "text/tab-separated-values"
        ) {
            return None;
        }
        parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
            .map(|(_, v)| v.trim().trim_matches('"').to_string())
    })
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
pub(super) async fn get_table(
    state: AppState,
    name: String,
    suffix: Option<Format>,
    request: Request,
) -> Answer {
    let format = choose(request.headers(), suffix)?;
    let raw_query = request.uri().query().unwrap_or_default();
    let (csv, rest) = match format {
        Format::Csv => {
            let tsv = match suffix {
                Some(_) => request.uri().path().to_ascii_lowercase().ends_with(".tsv"),
                None => wants_tsv(request.headers()),
            };
            csv_out(raw_query, request.headers(), state.csv_bom, tsv)?
        }
        _ => (CsvOut::default(), raw_query.to_string()),
    };
    // A browser's page holds one page of rows unless its address names a window.
    let mut asked = match format {
        Format::Html => Address::paged(raw_query),
        _ => rest,
    };
    // A page shows the table's own columns; data formats join relations.
    let relations = match format {
        Format::Html => Relations::default(),
        _ => Relations::of(raw_query),
    };
    if !relations.is_empty() && format == Format::Csv {
        return Err(joined_in_json_only());
    }
    // Read before the rows, so that the page's feed starts no later than them.
    let since = state.store.feed().last_seq();
    let mut selected = state.store.select(&name, &asked).await?;
    // Past the last page, json-server's envelope answers the last page.
    if let Some(last) = envelope(&selected.query, format, selected.total)
        .filter(|e| e.page > e.pages && selected.total > 0)
        .map(|e| e.pages)
    {
        asked = query::with_params(&asked, &[("_page", last)]);
        selected = state.store.select(&name, &asked).await?;
    }
    let joined = !relations.is_empty();
    let types = state.store.types(&name).await;
    let head = &selected.head;
    let query = &selected.query;
    let viewer = viewer_of(&request);
    // Another delimiter, mark or charset is another representation.
    let mut tagged = match csv == CsvOut::default() {
        true => raw_query.to_string(),
        false => format!("{raw_query}\0{csv:?}"),
    };
    // Other declared types are another representation too.
    if let Some(types) = types.tag().filter(|_| format != Format::Csv) {
        tagged = format!("{tagged}\0t{types:x}");
    }
    let tag = page_tag(etag(head.version, Some(&tagged), format), format, &viewer);
    let mut headers = content(format, suffix.is_none(), &tag);
    let media = match csv.tsv {
        true => "text/tab-separated-values",
        false => "text/csv",
    };
    if csv.encoding != encoding_rs::UTF_8 || csv.tsv {
        let value = format!(
            "{media}; charset={}",
            csv.encoding.name().to_ascii_lowercase()
        );
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(header::CONTENT_TYPE, value);
        }
        headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    }
    vary_by_viewer(&mut headers, format, &viewer);
    last_modified(&mut headers, head.modified);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // A page names the change feed's position it was drawn at, which moves
    // with every change to any table: a browser's copy is never reused.
    if joined {
        // The answer holds other tables' rows too: no tag of this table's.
        headers.remove(header::ETAG);
        headers.remove(header::LAST_MODIFIED);
    } else if format != Format::Html && not_modified(request.headers(), &tag, Some(head.modified)) {
        return Ok((StatusCode::NOT_MODIFIED, headers).into_response());
    }
    if let Ok(value) = HeaderValue::from_str(&selected.total.to_string()) {
        headers.insert("x-total-count", value);
    }
    let enveloped = envelope(query, format, selected.total);
    let path = request.uri().path();
    if let Some(value) = query::links(path, &asked, query.window, selected.total)
        .filter(|_| enveloped.is_none())
        .and_then(|links| HeaderValue::from_str(&links).ok())
    {
        headers.insert(header::LINK, value);
    }
    // A browser's page is drawn around its rows, which stream between its halves.
    let frame = (format == Format::Html).then(|| {
        let shown: Vec<String> = match &query.fields {
            Some(fields) => fields.iter().map(|&c| head.columns[c].clone()).collect(),
            None => head.columns.to_vec(),
        };
        TablePage {
            name: &name,
            columns: &head.columns,
            shown: &shown,
            id_column: head.id_col.map(|c| head.columns[c].as_str()),
            tag: &tag,
            rows: head.rows,
            matching: selected.total,
            modified: head.modified,
            query: &asked,
            since,
            viewer: &viewer,
        }
        .frame()
    });
    let rows = if joined {
        if query.window.range(selected.total).len() > relations::MAX_ROWS {
            return Err(Problem::bad_request(format!(
                "_embed and _expand join at most {} rows in one answer, and this one has {}; \
                 ask for pages (_page and _limit or _per_page)",
                relations::MAX_ROWS,
                query.window.range(selected.total).len()
            )));
        }
        let columns = head.columns.clone();
        let id_col = head.id_col;
        let fields = selected.query.fields.clone();
        let rows: Vec<Row> = selected.rows.try_collect().await?;
        let related = relations::gather(&state, &name, &columns, id_col, &rows, &relations).await?;
        let joined = Joined {
            columns,
            fields,
            rows,
            related,
            types: types.clone(),
        };
        Body::from(render_joined(&joined, format))
    } else {
        Rows::new(
            head.columns.clone(),
            head.id_col,
            selected.rows,
            selected.query.fields,
        )
        .typed(types)
        .into_csv_body(format, &name, state.csv_safe, csv)
        .await?
    };
    let rows = match enveloped {
        Some(envelope) => envelope.around(rows),
        None => rows,
    };
    match frame {
        Some(frame) => Ok((headers, page::table_body(frame, rows)).into_response()),
        None => Ok((headers, rows).into_response()),
    }
}

/// Borrows what it reads (its future, allocated for every read, is smaller
/// for it).
pub(super) async fn get_row(
    state: &AppState,
    table: &str,
    id: &str,
    request: &axum::http::request::Parts,
    viewer: &Viewer,
) -> Answer {
    let request_headers = &request.headers;
    let raw_query = request.uri.query().unwrap_or_default();
    let store = state.store.as_ref();
    // Read before the row, so that its page's feed starts no later than it.
    let since = store.feed().last_seq();
    let (view, suffix, types) = match store.read_row(table, id).await {
        Ok(RowRead::Singular) => return Err(super::singular_has_no_rows(table)),
        Ok(RowRead::Row(view, types)) => (view, None, types),
        // `/people/3.csv`: a format suffix on an id that does not exist as written.
        Err(crate::store::Error::NoRow(_)) => {
            let Some((stem, format)) = id
                .rsplit_once('.')
                .and_then(|(s, f)| Some((s, Format::from_suffix(f)?)))
            else {
                return Err(crate::store::Error::NoRow(id.to_string()).into());
            };
            let view = store
                .row(table, stem)
                .await
                .map_err(|_| crate::store::Error::NoRow(id.to_string()))?;
            (view, Some(format), store.types(table).await)
        }
        Err(other) => return Err(other.into()),
    };
    let format = choose(request_headers, suffix)?;
    let typed = super::schema::types_tag(&types, format);
    let tag = page_tag(etag(view.version, typed.as_deref(), format), format, viewer);
    let mut headers = content(format, suffix.is_none(), &tag);
    vary_by_viewer(&mut headers, format, viewer);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let relations = match format {
        Format::Html => Relations::default(),
        _ => Relations::of(raw_query),
    };
    if !relations.is_empty() {
        if format == Format::Csv {
            return Err(joined_in_json_only());
        }
        headers.remove(header::ETAG);
        // Boxed: the future of a join is large, and most reads have none.
        return Box::pin(joined_row(
            state.clone(),
            table.to_string(),
            view,
            types,
            relations,
            headers,
        ))
        .await;
    }
    // A page names the feed's position it was drawn at: never reused.
    if format != Format::Html && not_modified(request_headers, &tag, None) {
        return Ok((StatusCode::NOT_MODIFIED, headers).into_response());
    }
    let body = row_body(
        format,
        &view.columns,
        &types,
        RowPage {
            table,
            columns: &view.columns,
            id_col: view.id_col,
            row: &view.row,
            tag: &tag,
            since,
            viewer,
        },
        state.csv_safe,
    );
    // The headers become the answer's own (not copied into a new map).
    let mut answer = axum::response::Response::new(Body::from(body));
    *answer.headers_mut() = headers;
    Ok(answer)
}

// ---- json-server compatibility: relations and v1's page envelope

/// A row with its related rows (`_embed`, `_expand`), in JSON.
async fn joined_row(
    state: AppState,
    table: String,
    view: RowView,
    types: Types,
    relations: Relations,
    headers: HeaderMap,
) -> Answer {
    let rows = vec![view.row.clone()];
    let related = relations::gather(
        &state,
        &table,
        &view.columns,
        view.id_col,
        &rows,
        &relations,
    )
    .await?;
    let joined = Joined {
        columns: view.columns.clone(),
        fields: None,
        rows,
        related,
        types,
    };
    let mut out = Vec::new();
    joined.object(&mut out, 0);
    out.push(b'\n');
    Ok((headers, out).into_response())
}

fn joined_in_json_only() -> Problem {
    Problem::bad_request(
        "_embed and _expand are answered in JSON or NDJSON only (related rows do not fit in \
         CSV's columns); ask with Accept: application/json",
    )
}

/// Rows with their relations, as a JSON array or NDJSON lines.
fn render_joined(joined: &Joined, format: Format) -> Vec<u8> {
    let mut out = Vec::new();
    let json = format == Format::Json;
    if json {
        out.push(b'[');
    }
    for at in 0..joined.rows.len() {
        if json {
            out.extend_from_slice(if at == 0 { b"\n" } else { b",\n" });
        }
        joined.object(&mut out, at);
        if !json {
            out.push(b'\n');
        }
    }
    if json {
        out.extend_from_slice(if joined.rows.is_empty() {
            b"]\n"
        } else {
            b"\n]\n"
        });
    }
    out
}

/// v1's answer to `_per_page`: the page's rows (`data`) in an object
/// naming the pages around it.
struct Envelope {
    page: usize,
    pages: usize,
    items: usize,
}

/// The envelope of a JSON answer to `_per_page`, with the page asked for
/// (which may be past the last), or `None`.
fn envelope(query: &query::Query, format: Format, total: usize) -> Option<Envelope> {
    let query::Window::Page { number, size } = query.window else {
        return None;
    };
    (query.envelope && format == Format::Json).then(|| Envelope {
        page: number,
        pages: total.div_ceil(size).max(1),
        items: total,
    })
}

impl Envelope {
    fn around(self, rows: Body) -> Body {
        let page = self.page.clamp(1, self.pages);
        let link = |n: Option<usize>| n.map_or("null".to_string(), |n| n.to_string());
        let open = format!(
            "{{\"first\":1,\"prev\":{},\"next\":{},\"last\":{},\"pages\":{},\"items\":{},\"data\":",
            link((page > 1).then(|| page - 1)),
            link((page < self.pages).then_some(page + 1)),
            self.pages,
            self.pages,
            self.items
        );
        let parts = futures_util::stream::once(async move { Ok(Bytes::from(open)) })
            .chain(rows.into_data_stream())
            .chain(futures_util::stream::once(async {
                Ok::<_, axum::Error>(Bytes::from_static(b"}\n"))
            }));
        Body::from_stream(parts)
    }
}

// ---- json-server compatibility: the whole database

/// `GET /db`: every table as one JSON object, table name → its rows,
/// streamed table after table (each read at its own version).
pub(super) async fn whole_database(state: AppState) -> Answer {
    let tables = state.store.tables().await?;
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    if tables.is_empty() {
        return Ok((headers, "{}\n").into_response());
    }
    let store = state.store.clone();
    let csv_safe = state.csv_safe;
    // Singular resources are objects, as in db.json.
    let marks: std::collections::HashMap<String, crate::store::Singular> =
        store.singulars().await?.into_iter().collect();
    let parts = futures_util::stream::iter(tables.into_iter().enumerate())
        .then(move |(i, info)| {
            let store = store.clone();
            let mark = marks.get(&info.name).copied();
            async move {
                let mut open = vec![if i == 0 { b'{' } else { b',' }];
                crate::codec::cell::write_json_string(&mut open, &info.name);
                open.push(b':');
                if let Some(mark) = mark {
                    let object = singular_json(store.as_ref(), &info.name, mark).await;
                    let parts = match object {
                        Ok(mut object) => {
                            open.append(&mut object);
                            vec![Ok(Bytes::from(open))]
                        }
                        Err(err) => vec![Ok(Bytes::from(open)), Err(axum::Error::new(err))],
                    };
                    return futures_util::stream::iter(parts).boxed();
                }
                let rows: futures_util::stream::BoxStream<'static, Result<Bytes, axum::Error>> =
                    match store.select(&info.name, "").await {
                        Ok(selected) => {
                            let types = store.types(&info.name).await;
                            let rows = Rows::new(
                                selected.head.columns.clone(),
                                selected.head.id_col,
                                selected.rows,
                                None,
                            )
                            .typed(types);
                            match rows.into_body(Format::Json, &info.name, csv_safe).await {
                                Ok(body) => body.into_data_stream().boxed(),
                                Err(err) => {
                                    futures_util::stream::iter([Err(axum::Error::new(err))]).boxed()
                                }
                            }
                        }
                        // Deleted since it was listed.
                        Err(crate::store::Error::NoTable(_)) => {
                            futures_util::stream::iter([Ok(Bytes::from_static(b"[]\n"))]).boxed()
                        }
                        Err(err) => {
                            futures_util::stream::iter([Err(axum::Error::new(err))]).boxed()
                        }
                    };
                futures_util::stream::iter([Ok(Bytes::from(open))])
                    .chain(rows)
                    .boxed()
            }
        })
        .flatten()
        .chain(futures_util::stream::iter([Ok(Bytes::from_static(b"}\n"))]));
    Ok((headers, Body::from_stream(parts)).into_response())
}

/// A singular resource's object, as JSON text (`{}` once deleted).
async fn singular_json(
    store: &dyn crate::store::Store,
    name: &str,
    mark: crate::store::Singular,
) -> Result<Vec<u8>, crate::store::Error> {
    let object = match store.select(name, "").await {
        Ok(selected) => {
            let head = selected.head;
            let mut rows = selected.rows;
            let first = rows.next().await.transpose()?;
            let types = store.types(name).await.aligned(&head.columns);
            crate::jsondb::singular_object(&head.columns, &types, head.id_col, first.as_ref(), mark)
        }
        Err(crate::store::Error::NoTable(_)) => serde_json::Map::new(),
        Err(err) => return Err(err),
    };
    Ok(serde_json::to_vec(&object).unwrap_or_default())
}
