//! A front end's files (`--static DIR`, or `./public`), served at the
//! paths the API does not answer: never `/` (the list of tables), never a
//! table (a table named like a file wins) and never a `/_…` route. A path
//! that climbs out of the directory (`..`, an encoded `/` or `\`) is
//! refused, and so is a file reached through a link that leads outside it;
//! hidden files (a name starting with `.`) are never served.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::super::problem::Problem;
use super::AppState;

/// Largest file served, read whole: a front end's bundle, not a data set.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

pub(super) async fn serve(
    State((state, dir)): State<(AppState, Arc<PathBuf>)>,
    request: Request,
    next: Next,
) -> Response {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let path = request.uri().path();
    if path == "/" || path.starts_with("/_") {
        return next.run(request).await;
    }
    let segments = match segments(path) {
        Ok(Some(segments)) => segments,
        Ok(None) => return next.run(request).await,
        Err(problem) => return problem.into_response(),
    };
    let Some(file) = find(&dir, &segments).await else {
        return next.run(request).await;
    };
    // A table is never hidden by a file of the same name.
    let first = segments[0].as_str();
    let stem = first.rsplit_once('.').map_or(first, |(stem, _)| stem);
    match state.store.tables().await {
        Ok(tables) if !tables.iter().any(|t| t.name == first || t.name == stem) => {}
        _ => return next.run(request).await,
    }
    match tokio::fs::read(&file).await {
        Ok(bytes) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(media_type(&file)),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            bytes,
        )
            .into_response(),
        Err(err) => Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "static-file",
            format!("the file for {path} cannot be read: {err}"),
        )
        .into_response(),
    }
}

/// The decoded segments of a path, `index.html` after a final `/`;
/// `None` for a path no file can answer (empty or hidden segments), an
/// error for one that climbs out of the directory.
fn segments(path: &str) -> Result<Option<Vec<String>>, Problem> {
    let mut out = Vec::new();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let last = parts.len() - 1;
    for (i, raw) in parts.into_iter().enumerate() {
        let Ok(part) = percent_encoding::percent_decode_str(raw).decode_utf8() else {
            return Ok(None);
        };
        if part == ".." || part.contains(['/', '\\', '\0']) {
            return Err(Problem::bad_request(format!(
                "{path}: a path may not leave the directory of files served"
            )));
        }
        if part.is_empty() && i == last && i > 0 {
            out.push("index.html".to_string());
            continue;
        }
        if part.is_empty() || part.starts_with('.') {
            return Ok(None);
        }
        out.push(part.into_owned());
    }
    Ok(Some(out))
}

/// The file the segments name inside `dir` (a directory's `index.html`),
/// when it is a regular file of a size to serve whose real path stays
/// inside `dir`.
async fn find(dir: &Path, segments: &[String]) -> Option<PathBuf> {
    let mut file = dir.to_path_buf();
    file.extend(segments);
    let mut meta = tokio::fs::metadata(&file).await.ok()?;
    if meta.is_dir() {
        file.push("index.html");
        meta = tokio::fs::metadata(&file).await.ok()?;
    }
    if !meta.is_file() || meta.len() > MAX_FILE_BYTES {
        return None;
    }
    let root = tokio::fs::canonicalize(dir).await.ok()?;
    let real = tokio::fs::canonicalize(&file).await.ok()?;
    real.starts_with(&root).then_some(real)
}

/// The media type of a file, by its extension.
fn media_type(file: &Path) -> &'static str {
    let extension = file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match extension.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_segments_or_are_refused() {
        let ok = |p: &str| segments(p).unwrap();
        assert_eq!(ok("/app.js"), Some(vec!["app.js".to_string()]));
        assert_eq!(
            ok("/css/a%20b.css"),
            Some(vec!["css".to_string(), "a b.css".to_string()])
        );
        assert_eq!(
            ok("/docs/"),
            Some(vec!["docs".to_string(), "index.html".to_string()])
        );
        assert_eq!(ok("/.env"), None);
        assert_eq!(ok("/a//b"), None);
        assert!(segments("/../secret").is_err());
        assert!(segments("/%2e%2e/secret").is_err());
        assert!(segments("/a%2F..%2Fb").is_err());
        assert!(segments("/a%5c..").is_err());
    }
}
