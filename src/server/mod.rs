//! The HTTP layer: the accept loop, connections, middleware and routes.
//!
//! It turns requests into store calls and store answers into responses; it
//! never touches a file (the store does) and never holds a table's lock.

mod access;
mod bulk;
mod conditional;
mod dump;
mod framing;
mod hangup;
mod inspect;
mod limits;
mod metrics;
mod middleware;
mod negotiate;
mod problem;
mod rewrite;
mod routes;
mod session;
mod signin;
mod stream;
mod tls;

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio_rustls::TlsAcceptor;
use tower::util::Either;
use tower::{Layer, ServiceBuilder};
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};

use crate::store::Store;
pub use access::Access;
pub use metrics::Metrics;
pub use routes::{AppState, JsonServer};

/// What the server is told at start, by whoever read the command line.
#[derive(Debug)]
pub struct Config {
    /// The address to listen on.
    pub bind: SocketAddr,
    /// What is served, as the start-up log names it.
    pub source: String,
    /// The column that holds each row's id.
    pub id_column: String,
    /// Who may do what.
    pub access: Access,
    /// Browser origins allowed to call the API (`*` for any).
    pub cors: Vec<String>,
    /// Serve HTTPS with these files.
    pub tls: Option<TlsFiles>,
    /// Largest request body, in bytes.
    pub max_body: usize,
    /// Room for large bodies in flight, in bytes.
    pub max_bulk_bytes: usize,
    /// How long a large body waits for room.
    pub bulk_wait: Duration,
    /// Longest request target, in bytes.
    pub max_uri: usize,
    /// Largest request head, in bytes.
    pub max_header_bytes: usize,
    /// Most header fields in a request.
    pub max_headers: usize,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most change-feed streams open at once.
    pub max_subscribers: usize,
    /// Time a client has to send a request head.
    pub header_timeout: Duration,
    /// Time a connection may stay silent.
    pub idle_timeout: Duration,
    /// Time a client has to send a whole body.
    pub body_timeout: Duration,
    /// Time a request may take in all.
    pub request_timeout: Duration,
    /// Time in-flight requests get at shutdown.
    pub shutdown_timeout: Duration,
    /// In CSV answers, neutralise cells spreadsheets would run as formulas.
    pub csv_safe: bool,
    /// What makes csvd answer as json-server does (`--delay`, `--static`…).
    pub json_server: JsonServer,
    /// Start CSV downloads with a byte-order mark.
    pub csv_bom: bool,
    /// Text sent to every new connection before HTTP starts.
    pub greeting: Option<String>,
    /// Print every connection's bytes.
    pub dump: bool,
}

/// The certificate chain and private key (PEM) of an HTTPS server.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// A server ready to serve a store.
pub struct Server {
    config: Config,
    tls: Option<TlsAcceptor>,
}

impl Server {
    /// Checks what can be checked before a store is opened (the TLS files).
    pub fn new(config: Config) -> anyhow::Result<Server> {
        let tls = match &config.tls {
            Some(files) => Some(tls::acceptor(&files.cert, &files.key)?),
            None => None,
        };
        Ok(Server { config, tls })
    }

    /// Serves `store` until SIGINT or SIGTERM, then finishes the requests
    /// in flight, brings the store up to date and returns.
    pub async fn run(self, store: Arc<dyn Store>) -> anyhow::Result<()> {
        serve(self.config, self.tls, store).await
    }
}

/// The whole application: routes wrapped in their middleware, outermost
/// first: access log and server name ([`middleware::Log`]), compression
/// (gzip, br, deflate, zstd, by `Accept-Encoding`), CORS when asked,
/// panics as 500s, then the gate ([`middleware::Gate`]: request checks,
/// access rules, body limit, time limit, problem documents). Problems are
/// read and rewritten before compression, which applies to the rewritten
/// answer (a page for a browser) as to any other. Each layer is a plain
/// service with its own future, not a boxed layer of the router.
pub fn app(state: AppState, config: &Config, access: Access) -> anyhow::Result<Front> {
    let metrics = state.metrics.clone();
    let delay = state.json_server.delay;
    let keeper = Arc::new(access::Keeper {
        access,
        sessions: session::Sessions::default(),
        tls: config.tls.is_some(),
        max_body: config.max_body,
        body_timeout: state.body_timeout,
    });
    // Files of `--static` may stand where a row would: then every read is
    // routed.
    let rows = state
        .json_server
        .static_dir
        .is_none()
        .then(|| state.clone());
    let routes = routes::router(state).merge(signin::router(keeper.clone()));
    let gate = middleware::Panics::new(middleware::Gate::new(middleware::Rules {
        keeper,
        max_uri: config.max_uri,
        max_body: config.max_body,
        delay,
        routes: limits::Deadline::new(config.request_timeout).layer(routes),
        rows,
    }));
    let inner = if config.cors.is_empty() {
        Either::Right(gate)
    } else {
        Either::Left(access::CorsSteer::new(gate, &config.cors)?)
    };
    Ok(middleware::Log::new(
        middleware::Compress::new(inner, Compressible),
        metrics,
    ))
}

/// The service every connection calls: [`app`].
pub type Front =
    middleware::Log<middleware::Compress<Either<access::CorsSteer<Gated>, Gated>, Compressible>>;

type Gated = middleware::Panics<middleware::Gate>;

/// What is compressed: what tower-http's default compresses (not images,
/// not tiny bodies, not already encoded), but never a live stream (the
/// change feed): a compressor holds bytes back, and each event must leave
/// as it is produced.
#[derive(Clone, Copy)]
pub struct Compressible;

impl Predicate for Compressible {
    fn should_compress<B>(&self, response: &axum::http::Response<B>) -> bool
    where
        B: http_body::Body,
    {
        if response.extensions().get::<routes::Live>().is_some() {
            return false;
        }
        if response
            .extensions()
            .get::<middleware::HeadAnswer>()
            .is_none()
        {
            return DefaultPredicate::new().should_compress(response);
        }
        // A HEAD's body is gone already: its GET's size is in the length
        // it names (none: a stream, compressed as the GET is).
        limits::declared_length(response.headers()).is_none_or(|size| size >= MIN_COMPRESSED)
            && NotForContentType::GRPC
                .and(NotForContentType::IMAGES)
                .and(NotForContentType::SSE)
                .should_compress(response)
    }
}

/// The smallest body compressed (tower-http's default).
const MIN_COMPRESSED: usize = 32;

/// What every connection needs.
#[derive(Clone)]
struct Connections {
    router: Front,
    tls: Option<TlsAcceptor>,
    metrics: Arc<Metrics>,
    greeting: Option<Arc<str>>,
    dump: bool,
    header_timeout: Duration,
    idle_timeout: Duration,
    max_header_bytes: usize,
    max_headers: usize,
    /// routes.json's rules (`--routes`).
    rewrite: Option<Arc<rewrite::Rules>>,
}

async fn serve(
    mut config: Config,
    tls: Option<TlsAcceptor>,
    store: Arc<dyn Store>,
) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::default());
    let streams = Arc::new(routes::Streams::new(
        config.max_subscribers,
        config.request_timeout,
    ));
    let access = std::mem::take(&mut config.access);
    let router = app(
        AppState::new(routes::Shared {
            store: store.clone(),
            max_body: config.max_body,
            bulk: Arc::new(bulk::Budget::new(config.max_bulk_bytes, config.bulk_wait)),
            id_column: config.id_column.as_str().into(),
            body_timeout: config.body_timeout,
            metrics: metrics.clone(),
            csv_safe: config.csv_safe,
            csv_bom: config.csv_bom,
            streams: streams.clone(),
            json_server: Arc::new(config.json_server.clone()),
        }),
        &config,
        access,
    )?;
    let listener =
        listen(config.bind).with_context(|| format!("cannot listen on {}", config.bind))?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    // The first line on stdout names the address (tests and scripts read it).
    let mut shutdown = std::pin::pin!(shutdown_signal());
    println!("csvd listening on {scheme}://{addr}");
    tracing::info!(data_dir = %config.source, "serving on {scheme}://{addr}");

    let connections = Connections {
        router,
        tls,
        metrics: metrics.clone(),
        greeting: config.greeting.as_deref().map(Arc::from),
        dump: config.dump,
        header_timeout: config.header_timeout,
        idle_timeout: config.idle_timeout,
        max_header_bytes: config.max_header_bytes,
        max_headers: config.max_headers,
        rewrite: config.json_server.routes.clone(),
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(config.max_connections));
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match slots.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let task = connection(stream, peer, permit, connections.clone(), graceful.watcher());
                        tokio::spawn(task);
                    }
                    Err(_) => {
                        tracing::warn!(%peer, "connection limit reached; answering 503");
                        tokio::spawn(limits::refuse(stream));
                    }
                },
                Err(err) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!("accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: finishing requests in flight");
    end_feeds(&store, &metrics, &streams, config.shutdown_timeout).await;
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(config.shutdown_timeout) => {
            tracing::warn!("requests still in flight after {}s; closing them", config.shutdown_timeout.as_secs());
        }
    }
    store.flush().await.context("the final flush failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// Connections the kernel queues for accepting: enough for a burst of a
/// thousand clients (a page's subscribers reconnecting after a restart)
/// to wait rather than be dropped.
const BACKLOG: u32 = 1024;

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As std's listeners do: a restart may bind while old connections linger.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Ends the change feed's streams, once the writes in flight are answered:
/// a subscriber hears of every change acknowledged before its stream ends.
async fn end_feeds(
    store: &Arc<dyn Store>,
    metrics: &Metrics,
    streams: &routes::Streams,
    limit: Duration,
) {
    let deadline = tokio::time::Instant::now() + limit / 2;
    // Requests whose answer has not begun, other than long polls waiting.
    while metrics.unanswered() > streams.waiting() as i64 && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    store.feed().close();
}

/// The number of headers hyper accepts unless told otherwise.
const HYPER_MAX_HEADERS: usize = 100;

/// One connection, from accept to close; holds its slot until it ends.
async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    _slot: OwnedSemaphorePermit,
    ctx: Connections,
    watcher: Watcher,
) {
    let _ = stream.set_nodelay(true);
    ctx.metrics.connection_opened();
    if let Some(greeting) = &ctx.greeting {
        let _ = stream.write_all(greeting.as_bytes()).await;
    }
    let socket = stream.as_raw_fd();
    let stream = limits::Idle::new(stream, ctx.idle_timeout);
    let serve = async {
        match &ctx.tls {
            Some(acceptor) => {
                match tokio::time::timeout(ctx.header_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => http(tls, peer, &ctx, watcher).await,
                    Ok(Err(err)) => tracing::debug!(%peer, "TLS handshake failed: {err}"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            }
            None => http(stream, peer, &ctx, watcher).await,
        }
    };
    // The future owns the stream until its last answer: see `hangup`.
    hangup::serving(socket, serve).await;
    ctx.metrics.connection_closed();
}

/// Serves HTTP/1.1 on a connection until it closes.
async fn http<IO>(io: IO, peer: SocketAddr, ctx: &Connections, watcher: Watcher)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if ctx.dump {
        serve_http(inspect::Inspect::new(io, dump::printer(peer)), ctx, watcher).await;
    } else {
        serve_http(io, ctx, watcher).await;
    }
}

async fn serve_http<IO>(io: IO, ctx: &Connections, watcher: Watcher)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let verdicts = framing::Verdicts::default();
    let mut follower = framing::Follower::new(verdicts.clone());
    let io = inspect::Inspect::new(io, move |bytes: &[u8]| follower.feed(bytes));
    let service = ServiceBuilder::new()
        .map_request(move |mut request: axum::http::Request<Incoming>| {
            if let Some(conflict) = verdicts.next() {
                request.extensions_mut().insert(conflict);
            }
            request
        })
        .map_request(middleware::seed_path_in_host::<Incoming>)
        .map_request(rewrite::layer(ctx.rewrite.clone()))
        .service(ctx.router.clone());
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(ctx.header_timeout)
        .max_header_size(ctx.max_header_bytes)
        .keep_alive(true)
        // While a request is answered, hyper would otherwise read ahead to
        // notice the client closing, drop the answer of a client that only
        // closed its sending side, and take a new 8 KiB buffer for every
        // request (the request still holds the old one). A client that
        // closes mid-answer is noticed when a write to it fails; answers
        // that wait or stream watch for it themselves (`hangup`).
        .half_close(true);
    // The default is hyper's own limit: naming it anyway would make hyper
    // initialise a header array of that size for every request (its
    // default one it leaves uninitialised until parsed into).
    if ctx.max_headers != HYPER_MAX_HEADERS {
        builder.max_headers(ctx.max_headers);
    }
    let connection = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
    if let Err(err) = watcher.watch(connection).await {
        tracing::debug!("connection ended: {err}");
    }
}

/// Resolves at SIGINT or SIGTERM. The handlers are installed when this is
/// called, not when first polled: a signal right after the address is
/// printed must stop the server gracefully, not kill it.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        let wait = |signal: std::io::Result<tokio::signal::unix::Signal>| async move {
            match signal {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            () = wait(interrupt) => {}
            () = wait(terminate) => {}
        }
    }
}
