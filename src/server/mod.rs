//! The HTTP layer: the accept loop, connections, middleware and routes.
//!
//! It turns requests into store calls and store answers into responses; it
//! never touches a file (the store does) and never holds a table's lock.

mod access;
mod bulk;
mod conditional;
mod dump;
mod framing;
mod inspect;
mod limits;
mod metrics;
mod middleware;
mod negotiate;
mod problem;
mod routes;
mod session;
mod signin;
mod stream;
mod tls;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio_rustls::TlsAcceptor;
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::cli::{ServeArgs, SyncMode};
use crate::store::{DirStore, Options, Store};
pub use access::Access;
pub use metrics::Metrics;
pub use routes::AppState;

/// Runs the server until SIGINT or SIGTERM, then finishes the requests in
/// flight, brings the files up to date and returns.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_logging(&args.log_level)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args))?;
    Ok(ExitCode::SUCCESS)
}

fn init_logging(level: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(level).with_context(|| {
        format!("invalid --log-level {level:?}: use error, warn, info, debug or trace")
    })?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    Ok(())
}

/// The whole application: routes wrapped in their middleware, outermost
/// first: access log and server name, panics as 500s, CORS, compression
/// (gzip, br, deflate, zstd, by `Accept-Encoding`), problem documents,
/// request checks, time limit, access rules, body limit. Problems are read
/// and rewritten before compression, which applies to the rewritten answer
/// (a page for a browser) as to any other.
pub fn app(state: AppState, args: &ServeArgs, access: Access) -> anyhow::Result<Router> {
    let metrics = state.metrics.clone();
    let keeper = Arc::new(access::Keeper {
        access,
        sessions: session::Sessions::default(),
        tls: args.tls_cert.is_some() && args.tls_key.is_some(),
        max_body: args.max_body,
        body_timeout: state.body_timeout,
    });
    let gate = Arc::new(middleware::Gate {
        keeper: keeper.clone(),
        max_uri: args.max_uri,
    });
    let mut router = routes::router(state)
        .merge(signin::router(keeper))
        .layer(RequestBodyLimitLayer::new(args.max_body))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(args.request_timeout),
        ))
        .layer(from_fn_with_state(gate, middleware::gate))
        .layer(CompressionLayer::new());
    if !args.cors.is_empty() {
        router = access::with_cors(router, &args.cors)?;
    }
    Ok(middleware::outer(router, metrics))
}

/// What every connection needs.
#[derive(Clone)]
struct Connections {
    router: Router,
    tls: Option<TlsAcceptor>,
    metrics: Arc<Metrics>,
    greeting: Option<Arc<str>>,
    dump: bool,
    header_timeout: Duration,
    idle_timeout: Duration,
    max_header_bytes: usize,
    max_headers: usize,
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let access = Access::from_args(&args)?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
        _ => None,
    };
    let options = Options {
        sync: args.sync == SyncMode::Always,
        settle: Duration::from_secs(args.checkpoint_after),
        salvage: args.salvage,
        read_only: args.read_only,
        ..Options::default()
    };
    let data_dir = args.data_dir.clone();
    let id_column = args.id_column.clone();
    let store = tokio::task::spawn_blocking(move || DirStore::open(&data_dir, &id_column, options))
        .await?
        .with_context(|| format!("cannot open the data directory {}", args.data_dir.display()))?;
    let store: Arc<dyn Store> = store;
    crate::codec::repr::set_csv_safe(args.csv_safe);
    let metrics = Arc::new(Metrics::default());
    let router = app(
        AppState {
            store: store.clone(),
            views: Arc::default(),
            max_body: args.max_body,
            bulk: Arc::new(bulk::Budget::new(
                args.max_bulk_bytes,
                Duration::from_secs(args.bulk_wait),
            )),
            id_column: args.id_column.clone(),
            body_timeout: Duration::from_secs(args.body_timeout),
            metrics: metrics.clone(),
        },
        &args,
        access,
    )?;
    let listener = TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    // The first line on stdout names the address (tests and scripts read it).
    println!("csvd listening on {scheme}://{addr}");
    tracing::info!(data_dir = %args.data_dir.display(), "serving on {scheme}://{addr}");

    let connections = Connections {
        router,
        tls,
        metrics,
        greeting: args.greeting.as_deref().map(Arc::from),
        dump: args.dump,
        header_timeout: Duration::from_secs(args.header_timeout),
        idle_timeout: Duration::from_secs(args.idle_timeout),
        max_header_bytes: args.max_header_bytes,
        max_headers: args.max_headers,
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(args.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());
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
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(args.shutdown_timeout)) => {
            tracing::warn!("requests still in flight after {}s; closing them", args.shutdown_timeout);
        }
    }
    tokio::task::spawn_blocking(move || store.flush())
        .await
        .context("the final flush failed")??;
    tracing::info!("stopped");
    Ok(())
}

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
    let stream = limits::Idle::new(stream, ctx.idle_timeout);
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
        .service(ctx.router.clone());
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(ctx.header_timeout)
        .max_header_size(ctx.max_header_bytes)
        .max_headers(ctx.max_headers)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
    if let Err(err) = watcher.watch(connection).await {
        tracing::debug!("connection ended: {err}");
    }
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
