//! The HTTP layer: the accept loop, connections, middleware and routes.
//!
//! It turns requests into store calls and store answers into responses; it
//! never touches a file (the store does) and never holds a table's lock.

mod conditional;
mod dump;
mod middleware;
mod negotiate;
mod problem;
mod routes;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::middleware::from_fn;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;

use crate::cli::{ServeArgs, SyncMode};
use crate::store::{DirStore, Options, Store};
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

/// The whole application: routes wrapped in their middleware.
pub fn app(state: AppState) -> Router {
    let max_body = state.max_body;
    // Problems are read and rewritten before compression, which applies to
    // the rewritten answer (a page for a browser) as to any other.
    routes::router(state)
        .layer(RequestBodyLimitLayer::new(max_body))
        .layer(from_fn(middleware::problems))
        .layer(CompressionLayer::new())
        .layer(from_fn(middleware::tag_encodings))
        .layer(from_fn(middleware::server_header))
        .layer(from_fn(middleware::access_log))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let options = Options {
        sync: args.sync == SyncMode::Always,
        settle: Duration::from_secs(args.checkpoint_after),
        ..Options::default()
    };
    let data_dir = args.data_dir.clone();
    let id_column = args.id_column.clone();
    let store = tokio::task::spawn_blocking(move || DirStore::open(&data_dir, &id_column, options))
        .await?
        .with_context(|| format!("cannot open the data directory {}", args.data_dir.display()))?;
    let store: Arc<dyn Store> = store;
    let router = app(AppState {
        store: store.clone(),
        max_body: args.max_body,
    });
    let listener = TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    let addr = listener.local_addr()?;
    // The first line on stdout names the address (tests and scripts read it).
    println!("csvd listening on http://{addr}");
    tracing::info!(data_dir = %args.data_dir.display(), "serving on http://{addr}");

    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => accept(stream, peer, &args, &router, &graceful).await,
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

async fn accept(
    mut stream: TcpStream,
    peer: SocketAddr,
    args: &ServeArgs,
    router: &Router,
    graceful: &GracefulShutdown,
) {
    let _ = stream.set_nodelay(true);
    if let Some(greeting) = &args.greeting {
        if stream.write_all(greeting.as_bytes()).await.is_err() {
            return;
        }
    }
    let timeout = Duration::from_secs(args.header_timeout);
    if args.dump {
        spawn_connection(dump::Dump::new(stream, peer), router, graceful, timeout);
    } else {
        spawn_connection(stream, router, graceful, timeout);
    }
}

fn spawn_connection<IO>(
    io: IO,
    router: &Router,
    graceful: &GracefulShutdown,
    header_timeout: Duration,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = ServiceBuilder::new()
        .map_request(middleware::seed_path_in_host::<Incoming>)
        .service(router.clone());
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
    let connection = graceful.watch(connection);
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!("connection ended: {err}");
        }
    });
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
