//! Cross-cutting request and response handling, as three services that
//! wrap the routes, outermost first (each is a plain type with its own
//! future: a request pays no boxed layer nor clone of the stack below it):
//!
//! - [`Log`]: the access log and metrics (once the body has been sent),
//!   the server's name, and tags of compressed bodies; compression sits
//!   inside it;
//! - [`Panics`]: a panic in a handler becomes a 500 ([`panicked`]);
//! - [`Gate`]: request checks (framing, `Host`, target length), access
//!   rules, the body limit, json-server's delay, the request time limit,
//!   `Prefer: return=minimal`, and errors shown as problem documents or
//!   pages.
//!
//! Plus the seed client's quirk, applied before routing.

use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri, Version};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use futures_util::FutureExt;
use http_body::Frame;
use tower::{Layer, Service, ServiceExt};

use super::access::{self, Admission, Caller, Keeper};
use super::conditional::ENCODING_SUFFIXES;
use super::limits::{declared_length, too_large, DeadlineService};
use super::metrics::Metrics;
use super::negotiate::prefers_html;
use super::problem::Problem;
use crate::page::{sign_in_href, ProblemPage, Viewer};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The outer layer: names the server, tags compressed bodies, and logs
/// one line per request (method, path, status, bytes, duration to the last
/// byte) and counts it in the metrics once its body has been sent, so the
/// line tells what the client really got.
#[derive(Clone)]
pub struct Log<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> Log<S> {
    pub fn new(inner: S, metrics: Arc<Metrics>) -> Log<S> {
        Log { inner, metrics }
    }
}

impl<S, B, R> Service<axum::http::Request<B>> for Log<S>
where
    S: Service<axum::http::Request<B>, Response = axum::http::Response<R>, Error = Infallible>,
    R: http_body::Body<Data = Bytes>,
    R::Error: Into<BoxError>,
{
    type Response = axum::http::Response<Sent<R>>;
    type Error = Infallible;
    type Future = Logged<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        let started = Instant::now();
        let method = request.method().clone();
        // A clone of the target shares its bytes: no copy of the path.
        let uri = request.uri().clone();
        self.metrics.received();
        let answered = Answered(self.metrics.clone());
        Logged {
            inner: self.inner.call(request),
            entry: Some((answered, method, uri, started)),
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of [`Log`]'s inner service, then logged as it is sent.
    pub struct Logged<F> {
        #[pin]
        inner: F,
        entry: Option<(Answered, Method, Uri, Instant)>,
    }
}

impl<F, R> Future for Logged<F>
where
    F: Future<Output = Result<axum::http::Response<R>, Infallible>>,
    R: http_body::Body,
{
    type Output = Result<axum::http::Response<Sent<R>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(mut response) = std::task::ready!(this.inner.poll(cx));
        let (answered, method, uri, started) = this.entry.take().expect("polled after its end");
        let metrics = answered.0.clone();
        drop(answered);
        tag_encoding(response.headers_mut());
        response.headers_mut().insert(
            header::SERVER,
            HeaderValue::from_static(concat!("csvd/", env!("CARGO_PKG_VERSION"))),
        );
        let (parts, body) = response.into_parts();
        let sent = Sent {
            body,
            entry: Entry {
                metrics,
                head: method == Method::HEAD,
                method,
                uri,
                status: parts.status.as_u16(),
                started,
                to_head: started.elapsed().as_secs_f64(),
                bytes: 0,
                ended: false,
            },
        };
        Poll::Ready(Ok(axum::http::Response::from_parts(parts, sent)))
    }
}

/// Counts a request as answered when dropped (also when its handler is
/// cancelled or panics).
struct Answered(Arc<Metrics>);

impl Drop for Answered {
    fn drop(&mut self) {
        self.0.answering();
    }
}

pin_project_lite::pin_project! {
    /// A response body on its way out: counts its bytes, and turns a panic
    /// while producing it into an error, which cuts the connection (the
    /// status line has left already; a cut body is how HTTP says the answer
    /// failed).
    pub struct Sent<B>
    where
        B: http_body::Body,
    {
        #[pin]
        body: B,
        entry: Entry,
    }

    impl<B> PinnedDrop for Sent<B>
    where
        B: http_body::Body,
    {
        fn drop(this: Pin<&mut Self>) {
            // Dropped before its end: the client went away (a HEAD answer,
            // or one with nothing to send, is never read).
            let unsent = !this.body.is_end_stream();
            this.project().entry.log(unsent);
        }
    }
}

/// What the access log and metrics record of one request, when its body
/// has ended or been dropped.
struct Entry {
    metrics: Arc<Metrics>,
    method: Method,
    head: bool,
    uri: Uri,
    /// The status sent; 500 once the body has failed.
    status: u16,
    started: Instant,
    /// Seconds until the response head (what the metrics measure).
    to_head: f64,
    bytes: u64,
    ended: bool,
}

impl Entry {
    fn log(&self, unsent: bool) {
        let cut = !self.ended && !self.head && unsent;
        let seconds = self.started.elapsed().as_secs_f64();
        self.metrics.request(self.status, self.to_head);
        tracing::info!(
            target: "csvd::access",
            "{} {} {} {}{} {:.1}ms",
            self.method,
            self.uri.path(),
            self.status,
            self.bytes,
            if cut { " (cut: the client left)" } else { "" },
            seconds * 1000.0
        );
    }
}

impl<B> http_body::Body for Sent<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.project();
        let entry = this.entry;
        if entry.ended {
            return Poll::Ready(None);
        }
        let body = this.body;
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| body.poll_frame(cx)));
        match polled {
            Ok(Poll::Ready(Some(Ok(frame)))) => {
                if let Some(data) = frame.data_ref() {
                    entry.bytes += data.len() as u64;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Ok(Poll::Ready(Some(Err(err)))) => {
                let err = axum::Error::new(err);
                tracing::warn!(
                    "{} {}: the answer failed after {} bytes: {err}",
                    entry.method,
                    entry.uri.path(),
                    entry.bytes
                );
                entry.ended = true;
                Poll::Ready(Some(Err(err)))
            }
            Ok(Poll::Ready(None)) => {
                entry.ended = true;
                Poll::Ready(None)
            }
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => {
                tracing::error!(
                    "{} {}: the server failed while sending the answer (after {} bytes; the \
                     connection is cut): {}",
                    entry.method,
                    entry.uri.path(),
                    entry.bytes,
                    panic_message(&*panic)
                );
                entry.status = 500;
                entry.ended = true;
                Poll::Ready(Some(Err(axum::Error::new("the answer failed midway"))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.entry.ended || self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        if self.entry.ended {
            http_body::SizeHint::with_exact(0)
        } else {
            self.body.size_hint()
        }
    }
}

/// Compression (gzip, br, deflate, zstd, by `Accept-Encoding`) for the
/// requests that accept an encoding; the others skip the compressor and its
/// body type altogether.
#[derive(Clone)]
pub struct Compress<S, P> {
    compressed: tower_http::compression::Compression<S, P>,
    plain: S,
}

impl<S: Clone, P: tower_http::compression::Predicate> Compress<S, P> {
    pub fn new(inner: S, predicate: P) -> Compress<S, P> {
        Compress {
            compressed: tower_http::compression::CompressionLayer::new()
                .compress_when(predicate)
                .layer(inner.clone()),
            plain: inner,
        }
    }
}

impl<S, P, B> Service<axum::http::Request<B>> for Compress<S, P>
where
    S: Service<axum::http::Request<B>, Response = Response, Error = Infallible>,
    P: tower_http::compression::Predicate,
    tower_http::compression::Compression<S, P>: Service<
        axum::http::Request<B>,
        Response = axum::http::Response<tower_http::compression::CompressionBody<Body>>,
        Error = Infallible,
    >,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Compressing<
        <tower_http::compression::Compression<S, P> as Service<axum::http::Request<B>>>::Future,
        S::Future,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.plain.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        if request.headers().contains_key(header::ACCEPT_ENCODING) {
            Compressing::Compressed {
                inner: self.compressed.call(request),
            }
        } else {
            Compressing::Plain {
                inner: self.plain.call(request),
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of [`Compress`], its body boxed when it went through the
    /// compressor.
    #[project = CompressingProj]
    pub enum Compressing<C, F> {
        Compressed { #[pin] inner: C },
        Plain { #[pin] inner: F },
    }
}

impl<C, F, R> Future for Compressing<C, F>
where
    C: Future<Output = Result<axum::http::Response<R>, Infallible>>,
    R: http_body::Body<Data = Bytes> + Send + 'static,
    R::Error: Into<BoxError>,
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            CompressingProj::Compressed { inner } => {
                let Ok(response) = std::task::ready!(inner.poll(cx));
                Poll::Ready(Ok(response.map(Body::new)))
            }
            CompressingProj::Plain { inner } => inner.poll(cx),
        }
    }
}

/// Answers a panic in the service inside as a 500 ([`panicked`]).
#[derive(Clone)]
pub struct Panics<S> {
    inner: S,
}

impl<S> Panics<S> {
    pub fn new(inner: S) -> Panics<S> {
        Panics { inner }
    }
}

impl<S, B> Service<axum::http::Request<B>> for Panics<S>
where
    S: Service<axum::http::Request<B>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Caught<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        let inner = &mut self.inner;
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.call(request))) {
            Ok(future) => Caught {
                inner: Some(future),
                panicked: None,
            },
            Err(panic) => Caught {
                inner: None,
                panicked: Some(panic),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of [`Panics`]'s inner service, or a 500.
    pub struct Caught<F> {
        #[pin]
        inner: Option<F>,
        panicked: Option<Box<dyn Any + Send>>,
    }
}

impl<F> Future for Caught<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some(panic) = this.panicked.take() {
            return Poll::Ready(Ok(panicked(panic)));
        }
        let Some(inner) = this.inner.as_pin_mut() else {
            panic!("polled after its end");
        };
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(polled) => polled,
            Err(panic) => Poll::Ready(Ok(panicked(panic))),
        }
    }
}

/// The message a panic was raised with.
pub fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// The answer to a request whose handling panicked: a 500, logged (the
/// panic is a bug, never an answer).
pub fn panicked(panic: Box<dyn Any + Send>) -> Response {
    tracing::error!("a request failed: {}", panic_message(&*panic));
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the server failed while answering this request; the failure is in its log",
    )
    .into_response()
}

/// What the gate checks requests against, and the routes behind it.
pub struct Rules {
    pub keeper: Arc<Keeper>,
    pub max_uri: usize,
    /// The largest body taken (`--max-body`).
    pub max_body: usize,
    /// json-server's `--delay`, waited before every answer.
    pub delay: Duration,
    /// The routes, each request within its time limit.
    pub routes: DeadlineService<Router>,
    /// Reads of a row by id go straight to their handler, not through
    /// the router (`None`: through it, as when `--static` files may
    /// answer first).
    pub rows: Option<super::routes::AppState>,
}

/// The inner layer: refuses malformed or unauthorised requests, limits
/// bodies, waits json-server's delay, applies `Prefer: return=minimal`, and
/// turns every error into a problem document or a page.
#[derive(Clone)]
pub struct Gate {
    rules: Arc<Rules>,
}

impl Gate {
    pub fn new(rules: Rules) -> Gate {
        Gate {
            rules: Arc::new(rules),
        }
    }
}

impl<B> Service<axum::http::Request<B>> for Gate
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = GateFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        let rules = self.rules.clone();
        let max_body = rules.max_body;
        // A request without a body (most reads) keeps none; one with a body
        // reads it within the limit (a longer one is a 413 in the handler).
        let request = request.map(|body| {
            if body.is_end_stream() {
                Body::empty()
            } else {
                Body::new(http_body_util::Limited::new(body, max_body))
            }
        });
        let arrival = Arrival::of(&rules, &request);
        if let Err(problem) = check(&request, rules.max_uri) {
            let mut response = problem.into_response();
            // After a framing error the rest of the stream cannot be trusted.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return Box::pin(arrival.leave(response).map(Ok));
        }
        match access::admit(&rules.keeper, request) {
            Ok(Admission::Now(request, caller)) => arrival.admitted(rules, request, caller),
            Err(refused) => Box::pin(arrival.refused(refused).map(Ok)),
            // Rare: a signed-in browser's write, which may need its body read.
            Ok(Admission::Csrf(csrf)) => Box::pin(async move {
                match csrf.prove(&rules.keeper).await {
                    Ok((request, caller)) => arrival.admitted(rules, request, caller).await,
                    Err(refused) => Ok(arrival.refused(refused).await),
                }
            }),
        }
    }
}

/// The gate's answer: boxed, as each path's future is its own.
pub type GateFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// What the gate knows of a request and keeps for its answer. Each request
/// is decided in [`Gate::call`] itself, so that the future it returns holds
/// little more than the routing's own: that future is allocated for every
/// request, and one over 1 KiB costs glibc's allocator far more than one
/// under it.
struct Arrival {
    /// A browser asked: errors are pages.
    html: bool,
    read: bool,
    head: bool,
    /// `Prefer: return=minimal` on an admitted write.
    minimal: bool,
    /// Shared with the handler (and its pages) without a copy.
    viewer: Arc<Viewer>,
}

impl Arrival {
    fn of(rules: &Rules, request: &Request) -> Arrival {
        let uri = request.uri();
        let here = uri
            .path_and_query()
            .map_or_else(|| uri.path().to_string(), |p| p.as_str().to_string());
        Arrival {
            html: prefers_html(
                request
                    .headers()
                    .get(header::ACCEPT)
                    .and_then(|v| v.to_str().ok()),
            ),
            read: matches!(*request.method(), Method::GET | Method::HEAD),
            head: request.method() == Method::HEAD,
            minimal: false,
            viewer: Arc::new(Viewer {
                read_only: rules.keeper.access.read_only,
                guarded: rules.keeper.access.token.is_some(),
                here,
                ..Viewer::default()
            }),
        }
    }

    /// An admitted request: its body within the limit, json-server's delay
    /// waited, then routed within the time limit.
    fn admitted(mut self, rules: Arc<Rules>, mut request: Request, caller: Caller) -> GateFuture {
        // Not shared yet: changed in place.
        let seen = Arc::make_mut(&mut self.viewer);
        match &caller {
            Caller::Browser(session) => seen.csrf = Some(session.csrf.clone()),
            Caller::Bearer => seen.bearer = true,
            Caller::Anyone | Caller::Stranger => {}
        }
        // A row read without the router is handed the viewer; every other
        // request finds it in its extensions (a map allocated for it).
        let direct = match &rules.rows {
            Some(state) if self.read => {
                super::routes::row_address(request.uri().path()).map(|slash| (state.clone(), slash))
            }
            _ => None,
        };
        if direct.is_none() {
            request.extensions_mut().insert(self.viewer.clone());
        }
        // Only signing out asks who the caller is, and only a browser's
        // session matters there: the others are not inserted (one
        // allocation less for every other request).
        if matches!(caller, Caller::Browser(_)) {
            request.extensions_mut().insert(caller);
        }
        self.minimal = wants_minimal(&request);
        if declared_length(request.headers()).is_some_and(|length| length > rules.max_body) {
            let response = too_large(rules.max_body).into_response();
            return Box::pin(self.leave(response).map(Ok));
        }
        // ---- json-server compatibility: delay
        let asked = match request.uri().query() {
            // Only a query that names it is parsed for it.
            Some(query) if query.contains("delay") => match super::routes::asked_delay(query) {
                Ok(asked) => asked,
                Err(problem) => {
                    let response = problem.into_response();
                    return Box::pin(self.leave(response).map(Ok));
                }
            },
            _ => None,
        };
        let wait = asked.unwrap_or(rules.delay);
        // ---- end of json-server compatibility
        // Routed when first polled (so the time limit starts then).
        match direct {
            Some((state, slash)) => {
                let answer = super::routes::read_row_at(state, request, slash, self.viewer.clone());
                self.route(rules.routes.limit(answer), wait)
            }
            None => self.route(rules.routes.clone().oneshot(request), wait),
        }
    }

    /// `routing` (the request's answer), after json-server's `wait`.
    fn route<F>(self, routing: F, wait: Duration) -> GateFuture
    where
        F: Future<Output = Result<Response, Infallible>> + Send + 'static,
    {
        let routing = Routing {
            routing,
            arrival: Some(self),
            leaving: None,
        };
        // ---- json-server compatibility: delay
        if !wait.is_zero() {
            return Box::pin(async move {
                tokio::time::sleep(wait).await;
                routing.await
            });
        }
        // ---- end of json-server compatibility
        Box::pin(routing)
    }

    /// A refused request's answer. A browser is shown the way in rather
    /// than a bare 401.
    fn refused(self, refused: Problem) -> Leaving {
        let response = if refused.status == StatusCode::UNAUTHORIZED && self.html && self.read {
            see_other(&sign_in_href(&self.viewer.here))
        } else {
            refused.into_response()
        };
        self.leave(response)
    }

    fn head_marked(&self, mut response: Response) -> Response {
        if self.head {
            response.extensions_mut().insert(HeadAnswer);
        }
        response
    }

    /// The answer as it leaves the gate: without its body when the write
    /// asked for none, and every error as a problem document or a page.
    /// Most answers leave at once; rewrapping an error may read its body,
    /// and is boxed, so that the futures holding this one stay small.
    fn leave(self, response: Response) -> Leaving {
        let response = if self.minimal {
            without_body(response)
        } else {
            response
        };
        let status = response.status();
        if !status.is_client_error() && !status.is_server_error() {
            return Leaving::Now(Some(response));
        }
        Leaving::Rewrapping(Box::pin(async move {
            let path = self.viewer.here.split('?').next().unwrap_or_default();
            as_problem(response, self.html, path, &self.viewer).await
        }))
    }
}

/// The answer of [`Arrival::leave`].
enum Leaving {
    Now(Option<Response>),
    Rewrapping(Pin<Box<dyn Future<Output = Response> + Send>>),
}

impl Future for Leaving {
    type Output = Response;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        match self.get_mut() {
            Leaving::Now(response) => Poll::Ready(response.take().expect("polled after its end")),
            Leaving::Rewrapping(rewrapping) => rewrapping.as_mut().poll(cx),
        }
    }
}

pin_project_lite::pin_project! {
    /// An admitted request being routed, then its answer leaving the gate.
    /// Written out rather than an `async` block, whose future would hold
    /// the routing's future twice (as its capture, and as what it awaits).
    struct Routing<F> {
        #[pin]
        routing: F,
        arrival: Option<Arrival>,
        leaving: Option<Leaving>,
    }
}

impl<F> Future for Routing<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if this.leaving.is_none() {
            let Ok(response) = std::task::ready!(this.routing.poll(cx));
            let arrival = this.arrival.take().expect("polled after its end");
            let response = arrival.head_marked(response);
            *this.leaving = Some(arrival.leave(response));
        }
        let Some(leaving) = this.leaving.as_mut() else {
            unreachable!("set above")
        };
        Pin::new(leaving).poll(cx).map(Ok)
    }
}

/// Marks the answer to a HEAD, whose body the router has dropped already:
/// compression then goes by the GET's length.
#[derive(Clone, Copy)]
pub struct HeadAnswer;

/// Every error leaves as a problem document (RFC 9457), or as a readable
/// page when a browser asked. Errors raised below the handlers (a body over
/// the limit, a path that does not decode, a time-out) arrive as plain text
/// and are rewrapped here, so the whole API speaks one error format.
/// `response` is an error (4xx or 5xx).
async fn as_problem(response: Response, html: bool, path: &str, viewer: &Viewer) -> Response {
    let status = response.status();
    let problem = response.extensions().get::<Problem>().cloned();
    // A handler that answered with a page of its own (the sign-in page
    // saying the token was wrong) meant it.
    let page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if (problem.is_some() && !html) || (problem.is_none() && page) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let problem = match problem {
        Some(problem) => problem,
        None => {
            // Error bodies are small; 64 KiB bounds a surprise.
            let bytes = axum::body::to_bytes(body, 64 * 1024)
                .await
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes).trim().to_string();
            let detail = if text.is_empty() {
                status.canonical_reason().unwrap_or("Error").to_string()
            } else {
                text
            };
            Problem::new(status, "http", detail)
        }
    };
    let mut rebuilt = if html {
        let page = ProblemPage {
            status: status.as_u16(),
            title: problem.title(),
            kind: problem.kind,
            detail: problem.page_detail.as_deref().unwrap_or(&problem.detail),
            path,
            viewer,
        };
        let mut response = Response::new(Body::from(page.render()));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        crate::page::protect(response.headers_mut());
        response
    } else {
        problem.into_response()
    };
    *rebuilt.status_mut() = status;
    for name in [header::ALLOW, header::WWW_AUTHENTICATE, header::RETRY_AFTER] {
        if let Some(value) = parts.headers.get(&name) {
            rebuilt.headers_mut().insert(name, value.clone());
        }
    }
    rebuilt
}

/// `303 See Other` to `location`.
pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// A compressed body is a different representation: give it its own tag
/// (`"…-gzip"`), so strong tags stay strong. Conditional checks strip it.
fn tag_encoding(headers: &mut HeaderMap) {
    let (Some(encoding), Some(tag)) = (
        headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok()),
        headers.get(header::ETAG).and_then(|v| v.to_str().ok()),
    ) else {
        return;
    };
    let suffix = format!("-{encoding}");
    if !ENCODING_SUFFIXES.contains(&suffix.as_str()) {
        return;
    }
    let tagged = format!("{}{suffix}\"", tag.trim_end_matches('"'));
    if let Ok(value) = HeaderValue::from_str(&tagged) {
        headers.insert(header::ETAG, value);
    }
}

/// The seed's client sends every request to `/` with the path it meant in
/// the `Host` header (`Host: /people`). Such a request is read as meant.
pub fn seed_path_in_host<B>(mut request: axum::http::Request<B>) -> axum::http::Request<B> {
    if request.uri().path() != "/" || request.uri().query().is_some() {
        return request;
    }
    let Some(host) = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
    else {
        return request;
    };
    if !host.starts_with('/') {
        return request;
    }
    if let Ok(uri) = host.parse::<Uri>() {
        tracing::debug!(
            path = host,
            "request target taken from the Host header (seed client)"
        );
        *request.uri_mut() = uri;
    }
    request
}

/// Refuses requests whose framing or addressing is ambiguous, before any
/// handler sees them: a target over the limit (414), an absolute-form
/// target (csvd is not a proxy), an HTTP/1.1 request without exactly one
/// valid `Host`, a body with both `Content-Length` and `Transfer-Encoding`
/// (the classic smuggling shape), and any transfer coding but a single
/// `chunked` (501).
fn check(request: &Request, max_uri: usize) -> Result<(), Problem> {
    let uri = request.uri();
    let target_len = uri.path_and_query().map_or(0, |p| p.as_str().len());
    if target_len > max_uri {
        return Err(Problem::new(
            StatusCode::URI_TOO_LONG,
            "uri-too-long",
            format!("the request target is {target_len} bytes; the limit is {max_uri}"),
        ));
    }
    if uri.scheme().is_some() || uri.authority().is_some() {
        return Err(Problem::bad_request(
            "absolute-form request targets are refused (csvd is not a proxy): send the path only",
        ));
    }
    let headers = request.headers();
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = hosts.next();
    let count = usize::from(host.is_some()) + hosts.count();
    if request.version() == Version::HTTP_11 && count != 1 {
        return Err(Problem::bad_request(format!(
            "an HTTP/1.1 request needs exactly one Host header; this one has {count}"
        )));
    }
    if let Some(host) = host {
        host_problem(host)?;
    }
    let codings: Vec<&str> = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .map(|v| v.to_str().unwrap_or("?"))
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    if !codings.is_empty() {
        // hyper drops the length before handlers see it; the framing
        // wrapper saw the raw head.
        let conflict = request
            .extensions()
            .get::<super::framing::Conflict>()
            .is_some();
        if conflict || headers.contains_key(header::CONTENT_LENGTH) {
            return Err(Problem::bad_request(
                "both Content-Length and Transfer-Encoding were sent; send one",
            ));
        }
        if codings.len() != 1 || !codings[0].eq_ignore_ascii_case("chunked") {
            return Err(Problem::new(
                StatusCode::NOT_IMPLEMENTED,
                "unsupported-transfer-coding",
                format!(
                    "transfer coding {:?} is not supported; only a single \"chunked\" is",
                    codings.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// `host[:port]` without user info; or the seed client's path-in-Host,
/// which [`seed_path_in_host`] reads as the request's path, and which must
/// then be a valid path (else the request would be served as `/`).
fn host_problem(host: &HeaderValue) -> Result<(), Problem> {
    let text = host.to_str().unwrap_or_default();
    if text.starts_with('/') {
        return match text.parse::<axum::http::uri::PathAndQuery>() {
            Ok(_) => Ok(()),
            Err(_) => Err(Problem::bad_request(format!(
                "the Host header {text:?} is neither host[:port] nor a valid path \
                 (a path in Host is read as the request's path): \
                 percent-encode spaces and other special characters (%20)"
            ))),
        };
    }
    let valid = plain_host(text)
        || (!text.is_empty()
            && !text.contains('@')
            && text
                .parse::<axum::http::uri::Authority>()
                .is_ok_and(|a| a.as_str() == text));
    if valid {
        Ok(())
    } else {
        Err(Problem::bad_request(
            "the Host header is not a valid host[:port]",
        ))
    }
}

/// The common Host, told without parsing it (which copies it): a name or
/// IPv4 address of letters, digits, dots and dashes, with or without a
/// port. Every such value is a valid authority; others are parsed.
fn plain_host(text: &str) -> bool {
    let (name, port) = match text.split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (text, None),
    };
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    let port_ok = port.is_none_or(|port| {
        (1..=5).contains(&port.len())
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok()
    });
    name_ok && port_ok
}

/// `Prefer: return=minimal` (RFC 7240) on a write: the answer keeps its
/// status and headers (`Location`, `ETag`) but drops the body, and a 200
/// becomes 204. Saves echoing back a bulk import of a million rows.
fn wants_minimal(request: &Request) -> bool {
    let write = !matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    write
        && request
            .headers()
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim().eq_ignore_ascii_case("return=minimal"))
}

fn without_body(response: Response) -> Response {
    if !response.status().is_success() {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    if parts.status == StatusCode::OK {
        parts.status = StatusCode::NO_CONTENT;
    }
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        "preference-applied",
        HeaderValue::from_static("return=minimal"),
    );
    Response::from_parts(parts, Body::empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use futures_util::StreamExt;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use crate::store::StoreStats;

    #[test]
    fn a_plain_host_is_one_the_authority_parser_takes_as_written() {
        let plain = [
            "localhost",
            "localhost:3000",
            "127.0.0.1:8080",
            "example.com",
            "a",
            "a-b.c-d:0",
            "x:65535",
            "-",
            "..",
            "192.168.000.001:00080",
        ];
        for host in plain {
            assert!(plain_host(host), "{host}");
            let parsed = host.parse::<axum::http::uri::Authority>();
            assert!(parsed.is_ok_and(|a| a.as_str() == host), "{host}");
        }
        // Left to the parser: what is not a plain name and port.
        let parsed = [
            "",
            ":80",
            "a:",
            "a:65536",
            "a:123456",
            "a:8x",
            "a:1:2",
            "[::1]:80",
            "user@host",
            "host name",
            "h\u{e9}te",
            "a_b",
        ];
        for host in parsed {
            assert!(!plain_host(host), "{host}");
        }
        let check = |host: &str| host_problem(&HeaderValue::from_str(host).unwrap()).is_ok();
        assert!(check("[::1]:80"));
        assert!(check("a_b"));
        assert!(!check("user@host"));
        assert!(!check("a:1:2"));
    }

    /// Routes that fail: in the handler, and midway through a body.
    fn failing(metrics: Arc<Metrics>) -> Log<Panics<Router>> {
        let router = Router::new()
            .route(
                "/handler",
                get(|| async {
                    panic!("a bug in a handler");
                    #[allow(unreachable_code)]
                    "never"
                }),
            )
            .route(
                "/body",
                get(|| async {
                    let first = futures_util::stream::iter([Ok::<_, std::io::Error>(
                        Bytes::from_static(b"first part"),
                    )]);
                    let then = futures_util::stream::once(async {
                        panic!("a bug in a body");
                        #[allow(unreachable_code)]
                        Ok(Bytes::new())
                    });
                    Body::from_stream(first.chain(then))
                }),
            );
        Log::new(Panics::new(router), metrics)
    }

    fn get_request(path: &str) -> Request {
        axum::http::Request::get(path).body(Body::empty()).unwrap()
    }

    fn counted(metrics: &Metrics) -> String {
        metrics.render(&[], StoreStats::default())
    }

    #[tokio::test]
    async fn a_panicking_handler_is_answered_500_and_counted_so() {
        let metrics = Arc::new(Metrics::default());
        let response = failing(metrics.clone())
            .oneshot(get_request("/handler"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(doc["status"], 500);
        let text = counted(&metrics);
        assert!(
            text.contains("csvd_requests_total{status=\"500\"} 1"),
            "{text}"
        );
        assert!(!text.contains("status=\"200\""), "{text}");
    }

    #[tokio::test]
    async fn a_body_that_panics_fails_and_is_counted_500() {
        let metrics = Arc::new(Metrics::default());
        let response = failing(metrics.clone())
            .oneshot(get_request("/body"))
            .await
            .unwrap();
        // The head had left before the failure.
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "first part");
        assert!(body.frame().await.unwrap().is_err(), "the failure shows");
        assert!(body.frame().await.is_none(), "and the body ends");
        drop(body);
        let text = counted(&metrics);
        assert!(
            text.contains("csvd_requests_total{status=\"500\"} 1"),
            "{text}"
        );
        assert!(!text.contains("status=\"200\""), "{text}");
    }

    #[tokio::test]
    async fn a_whole_answer_is_counted_when_sent() {
        let metrics = Arc::new(Metrics::default());
        let router = Log::new(
            Panics::new(Router::new().route("/", get(|| async { "hello" }))),
            metrics.clone(),
        );
        let response = router.oneshot(get_request("/")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "hello");
        let text = counted(&metrics);
        assert!(
            text.contains("csvd_requests_total{status=\"200\"} 1"),
            "{text}"
        );
    }
}
