//! Signing browsers in and out: `GET /_signin` shows the page that asks for
//! the token, `POST /_signin` checks it (in constant time) and starts a
//! session, `POST /_signout` ends one. HTTP clients need none of this:
//! they send `Authorization: Bearer`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};

use super::access::{self, Caller, Keeper};
use super::middleware::see_other;
use super::problem::Problem;
use super::session;
use crate::page::{SignInPage, Viewer};

/// A sign-in form is a token and an address: 8 KiB is plenty.
const MAX_FORM: usize = 8 * 1024;

/// The routes that sign browsers in and out.
pub fn router(keeper: Arc<Keeper>) -> Router {
    Router::new()
        .route("/_signin", get(page).post(sign_in))
        .route("/_signout", post(sign_out))
        .with_state(keeper)
}

async fn page(
    State(keeper): State<Arc<Keeper>>,
    Extension(viewer): Extension<Arc<Viewer>>,
    request: Request,
) -> Result<Response, Problem> {
    needs_sign_in(&keeper)?;
    let next = request
        .uri()
        .query()
        .and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "next")
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_default();
    Ok(sign_in_page(&keeper, &viewer, &next, None, StatusCode::OK))
}

async fn sign_in(
    State(keeper): State<Arc<Keeper>>,
    Extension(viewer): Extension<Arc<Viewer>>,
    request: Request,
) -> Result<Response, Problem> {
    needs_sign_in(&keeper)?;
    // Only this server's own page signs a browser in.
    access::same_origin(request.headers(), keeper.tls)?;
    let fields = form(request).await?;
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    let next = field("next");
    let token = keeper.access.token.as_deref().unwrap_or_default();
    if !session::same(field("token").trim().as_bytes(), token.as_bytes()) {
        let mut page = sign_in_page(
            &keeper,
            &viewer,
            next,
            Some("That is not this server's token. Try again."),
            StatusCode::UNAUTHORIZED,
        );
        page.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"csvd\""),
        );
        return Ok(page);
    }
    let session = keeper.sessions.create().map_err(|e| {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("cannot start a session: {e}"),
        )
    })?;
    let mut answer = see_other(&safe_next(next));
    answer
        .headers_mut()
        .insert(header::SET_COOKIE, session.cookie(keeper.tls));
    Ok(answer)
}

async fn sign_out(
    State(keeper): State<Arc<Keeper>>,
    caller: Option<Extension<Caller>>,
    request: Request,
) -> Result<Response, Problem> {
    needs_sign_in(&keeper)?;
    // The gate inserts a caller for a signed-in browser only.
    if let Some(Extension(Caller::Browser(session))) = caller {
        access::same_origin(request.headers(), keeper.tls)?;
        let fields = form(request).await?;
        let proven = fields
            .iter()
            .any(|(k, v)| k == access::CSRF_FIELD && session.csrf_is(v));
        if !proven {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "signing out needs the page's CSRF token: reload the page and try again",
            ));
        }
        keeper.sessions.end(&session);
    }
    let mut answer = see_other("/");
    answer
        .headers_mut()
        .insert(header::SET_COOKIE, session::cleared_cookie(keeper.tls));
    Ok(answer)
}

fn needs_sign_in(keeper: &Keeper) -> Result<(), Problem> {
    match keeper.access.token {
        Some(_) => Ok(()),
        None => Err(Problem::not_found(
            "this server has no token, so there is nothing to sign in to: anyone may use it",
        )),
    }
}

fn sign_in_page(
    keeper: &Keeper,
    viewer: &Viewer,
    next: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let html = SignInPage {
        next: &safe_next(next),
        error,
        private: keeper.access.private,
        viewer,
    }
    .render();
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    crate::page::protect(&mut headers);
    (status, headers, html).into_response()
}

/// Where to go after signing in: a path on this server (never another
/// site's address, nor the sign-in page again), else the table list.
fn safe_next(next: &str) -> String {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains(['\\', '\r', '\n'])
        && !access::is_sign_in(next.split('?').next().unwrap_or_default());
    if local {
        next.to_string()
    } else {
        "/".to_string()
    }
}

/// The fields of a small form body.
async fn form(request: Request) -> Result<Vec<(String, String)>, Problem> {
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "send the sign-in page's form (application/x-www-form-urlencoded)",
        ));
    }
    let bytes = axum::body::to_bytes(request.into_body(), MAX_FORM)
        .await
        .map_err(|_| Problem::bad_request("the form is larger than 8 KiB"))?;
    Ok(form_urlencoded::parse(&bytes).into_owned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_server() {
        assert_eq!(safe_next("/people?q=a"), "/people?q=a");
        assert_eq!(safe_next(""), "/");
        assert_eq!(safe_next("https://evil.example/"), "/");
        assert_eq!(safe_next("//evil.example/"), "/");
        assert_eq!(safe_next("/\\evil.example"), "/");
        assert_eq!(safe_next("/_signin?next=/x"), "/");
    }
}
