//! Who may do what: `--read-only`, the bearer token (`--token`, for writes,
//! or for everything with `--private`), browsers signed in with it (see
//! the session module), and CORS for browser origins.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use tower::{Layer, ServiceExt};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::problem::Problem;
use super::session::{self, Session, Sessions};

/// The access rules of one server.
#[derive(Debug, Default)]
pub struct Access {
    pub read_only: bool,
    pub token: Option<String>,
    pub private: bool,
}

fn is_read(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// What decides who may do what: the rules, the signed-in browsers, and
/// what a browser's write must prove.
pub struct Keeper {
    pub access: Access,
    pub sessions: Sessions,
    /// Served over TLS: cookies are `Secure`, the server's origin `https://`.
    pub tls: bool,
    /// Limits for a form body read here for its CSRF token.
    pub max_body: usize,
    pub body_timeout: Duration,
}

/// Who sent a request, as far as access goes.
#[derive(Clone, Debug)]
pub enum Caller {
    /// Anyone, on a server without a token.
    Anyone,
    /// An HTTP client with the bearer token.
    Bearer,
    /// A signed-in browser.
    Browser(Session),
    /// Neither, on a server with a token: reads only, unless `--private`.
    Stranger,
}

/// The paths that sign browsers in and out, open to everyone (they check
/// what they need themselves).
pub fn is_sign_in(path: &str) -> bool {
    matches!(path, "/_signin" | "/_signout")
}

/// Refuses writes on a read-only server (405) and requests without the
/// token where one is required (401). A signed-in browser's write must
/// come from the server's own pages: the same origin, and its session's
/// CSRF token (403 otherwise), which is taken out of a form's fields here.
/// Liveness (`/_health`), the pages' assets and signing in stay open.
///
/// Decided at once for every request but a signed-in browser's write, whose
/// CSRF token may be in a form body still to be read: see [`Admission`].
pub fn admit(keeper: &Keeper, request: Request) -> Result<Admission, Problem> {
    let access = &keeper.access;
    let read = is_read(request.method());
    let path = request.uri().path();
    let sign_in = is_sign_in(path);
    if !read && access.read_only && !sign_in {
        return Err(
            Problem::method_not_allowed(request.method().as_str(), "GET, HEAD, OPTIONS")
                .with_detail("this server is read-only"),
        );
    }
    let Some(token) = &access.token else {
        return Ok(Admission::Now(request, Caller::Anyone));
    };
    let open = path == "/_health" || sign_in || path.starts_with("/_assets/");
    let needed = !open && (!read || access.private);
    if let Some(given) = bearer(&request) {
        if session::same(given.as_bytes(), token.as_bytes()) {
            return Ok(Admission::Now(request, Caller::Bearer));
        }
        if needed {
            return Err(unauthorized("the bearer token is wrong"));
        }
    }
    if let Some(session) = keeper.sessions.find(request.headers()) {
        if read || sign_in {
            return Ok(Admission::Now(request, Caller::Browser(session)));
        }
        same_origin(request.headers(), keeper.tls)?;
        return Ok(Admission::Csrf(Csrf { request, session }));
    }
    if !needed {
        return Ok(Admission::Now(request, Caller::Stranger));
    }
    Err(unauthorized(
        "this request needs a token: send Authorization: Bearer <token> \
         (in a browser: sign in at /_signin)",
    ))
}

/// Whom [`admit`] let in.
pub enum Admission {
    /// Admitted, with who sent it.
    Now(Request, Caller),
    /// A signed-in browser's write, admitted once [`Csrf::prove`] says so.
    Csrf(Csrf),
}

/// A signed-in browser's write, waiting for its CSRF token to be checked.
pub struct Csrf {
    request: Request,
    session: Session,
}

impl Csrf {
    /// Admits the write if it carries its session's CSRF token (reading a
    /// form's body for it).
    pub async fn prove(self, keeper: &Keeper) -> Result<(Request, Caller), Problem> {
        let request = csrf_proven(keeper, self.request, &self.session).await?;
        Ok((request, Caller::Browser(self.session)))
    }
}

fn bearer(request: &Request) -> Option<&str> {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

fn unauthorized(detail: &str) -> Problem {
    let mut problem = Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail);
    problem.challenge = true;
    problem
}

fn forbidden(detail: &str) -> Problem {
    Problem::new(StatusCode::FORBIDDEN, "forbidden", detail)
}

/// A browser's write that carries the session cookie must come from this
/// server's own pages: browsers say where a request comes from in
/// `Sec-Fetch-Site` and `Origin`; either, when sent, must name this server.
pub fn same_origin(headers: &HeaderMap, tls: bool) -> Result<(), Problem> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        if site != "same-origin" {
            return Err(forbidden(
                "a signed-in browser's write must come from this server's own pages, \
                 not from another site",
            ));
        }
    }
    if let Some(origin) = text(header::ORIGIN) {
        let scheme = if tls { "https" } else { "http" };
        let own = text(header::HOST).map(|host| format!("{scheme}://{host}"));
        if own.as_deref() != Some(origin) {
            return Err(forbidden(&format!(
                "a signed-in browser's write must come from this server's own pages, \
                 not from {origin}"
            )));
        }
    }
    Ok(())
}

/// The name of the form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "_csrf";
/// The header the page's script sends it in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Checks a signed-in browser's write for its session's CSRF token, in the
/// `X-CSRF-Token` header or, for a plain HTML form, the `_csrf` field,
/// which is taken out of the body (it is not a column).
async fn csrf_proven(
    keeper: &Keeper,
    request: Request,
    session: &Session,
) -> Result<Request, Problem> {
    let missing = "a signed-in browser's write needs its CSRF token, which this server's \
                   pages send; HTTP clients send Authorization: Bearer <token> instead";
    if let Some(given) = request.headers().get(CSRF_HEADER) {
        if given.to_str().is_ok_and(|given| session.csrf_is(given)) {
            return Ok(request);
        }
        return Err(forbidden(
            "the CSRF token is wrong: reload the page and try again",
        ));
    }
    let form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return Err(forbidden(missing));
    }
    let (mut parts, body) = request.into_parts();
    let reading = axum::body::to_bytes(body, keeper.max_body);
    let bytes = tokio::time::timeout(keeper.body_timeout, reading)
        .await
        .map_err(|_| Problem::body_timeout(keeper.body_timeout))?
        .map_err(|_| {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                format!(
                    "the body is larger than the limit of {} bytes",
                    keeper.max_body
                ),
            )
        })?;
    let mut proven = false;
    let mut rest = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(&bytes) {
        if key == CSRF_FIELD {
            proven |= session.csrf_is(&value);
        } else {
            rest.append_pair(&key, &value);
        }
    }
    if !proven {
        return Err(forbidden(missing));
    }
    let rest = rest.finish();
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(rest.len()));
    Ok(Request::from_parts(parts, axum::body::Body::from(rest)))
}

/// The origins `--cors` lets in.
#[derive(Clone)]
enum Origins {
    Any,
    List(Vec<HeaderValue>),
}

impl Origins {
    fn parse(origins: &[String]) -> anyhow::Result<Origins> {
        if origins.iter().any(|o| o == "*") {
            return Ok(Origins::Any);
        }
        let values = origins
            .iter()
            .map(|o| {
                HeaderValue::from_str(o.trim())
                    .map_err(|_| anyhow::anyhow!("invalid --cors origin {o:?}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Origins::List(values))
    }

    /// The `Access-Control-Allow-Origin` for a request from `origin`.
    fn allow(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        match (self, origin) {
            (Origins::Any, _) => Some(HeaderValue::from_static("*")),
            (Origins::List(list), Some(origin)) => list.contains(origin).then(|| origin.clone()),
            (Origins::List(_), None) => None,
        }
    }
}

/// The service with CORS for the given origins (`*`: any). A preflight
/// (`OPTIONS` with `Access-Control-Request-Method`) is answered by the CORS
/// layer; a plain `OPTIONS` is not a preflight and goes on to the routes,
/// which answer it 204 with `Allow`, as without `--cors`. The choice is
/// made before routing, so each request is routed once.
pub struct CorsSteer<S> {
    shared: Arc<Steer<S>>,
}

impl<S> Clone for CorsSteer<S> {
    fn clone(&self) -> CorsSteer<S> {
        CorsSteer {
            shared: self.shared.clone(),
        }
    }
}

struct Steer<S> {
    /// The service behind the CORS layer.
    routed: tower_http::cors::Cors<S>,
    /// The same service without it.
    plain: S,
    origins: Origins,
}

impl<S: Clone> CorsSteer<S> {
    pub fn new(inner: S, origins: &[String]) -> anyhow::Result<CorsSteer<S>> {
        let origins = Origins::parse(origins)?;
        Ok(CorsSteer {
            shared: Arc::new(Steer {
                routed: cors(&origins).layer(inner.clone()),
                plain: inner,
                origins,
            }),
        })
    }
}

impl<S, B> tower::Service<axum::http::Request<B>> for CorsSteer<S>
where
    S: tower::Service<axum::http::Request<B>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        let shared = self.shared.clone();
        Box::pin(async move { Ok(shared.answer(request).await) })
    }
}

impl<S> Steer<S> {
    async fn answer<B>(&self, request: axum::http::Request<B>) -> Response
    where
        S: tower::Service<axum::http::Request<B>, Response = Response, Error = Infallible> + Clone,
    {
        let preflight = request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        if request.method() != Method::OPTIONS || preflight {
            let Ok(response) = self.routed.clone().oneshot(request).await;
            return response;
        }
        let allow = self.origins.allow(request.headers().get(header::ORIGIN));
        let Ok(mut response) = self.plain.clone().oneshot(request).await;
        let headers = response.headers_mut();
        headers.append(header::VARY, HeaderValue::from_static("origin"));
        if let Some(allow) = allow {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("allow"),
            );
        }
        response
    }
}

fn cors(origins: &Origins) -> CorsLayer {
    let allow = match origins {
        Origins::Any => AllowOrigin::any(),
        Origins::List(list) => AllowOrigin::list(list.clone()),
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::ACCEPT,
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            header::IF_MODIFIED_SINCE,
        ])
        .expose_headers([
            header::ALLOW,
            header::ETAG,
            header::LOCATION,
            header::LINK,
            header::LAST_MODIFIED,
            header::HeaderName::from_static("x-total-count"),
        ])
        .max_age(std::time::Duration::from_secs(600))
}
