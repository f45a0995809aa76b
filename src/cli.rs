//! Every command, flag and environment variable of `csvd`, in one place.
//!
//! Parsing only: nothing here opens a socket or a file. `main.rs` hands the
//! parsed values to the server or the client.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// csvd: tables of records kept as CSV files, served over HTTP/1.1 — and an
/// HTTP client to talk to it (or to any other server).
#[derive(Debug, Parser)]
#[command(name = "csvd", version, about, long_about = None)]
#[command(
    after_help = "Examples:\n  csvd serve                      # serve ./data on 127.0.0.1:8080\n  csvd post :8080/people name=kim age:=30\n  csvd get :8080/people name==kim\n  csvd shell"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the CSV files of a data directory over HTTP.
    #[command(after_help = "Example:\n  csvd serve ./data --bind 127.0.0.1:8080")]
    Serve(ServeArgs),
    /// Send a GET request.
    Get(RequestArgs),
    /// Send a HEAD request.
    Head(RequestArgs),
    /// Send a POST request.
    Post(RequestArgs),
    /// Send a PUT request.
    Put(RequestArgs),
    /// Send a PATCH request.
    Patch(RequestArgs),
    /// Send a DELETE request.
    Delete(RequestArgs),
    /// Interactive HTTP shell.
    Shell(ShellArgs),
    /// Send bytes verbatim to HOST:PORT and print what comes back.
    Raw(RawArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Directory holding the tables (one `<name>.csv` each); created if absent.
    #[arg(env = "CSVD_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Address and port to listen on.
    #[arg(long, env = "CSVD_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Name of the column that holds each row's id.
    #[arg(long, env = "CSVD_ID_COLUMN", default_value = "id")]
    pub id_column: String,

    /// Print each request's raw bytes to stdout as they arrive.
    #[arg(long, env = "CSVD_DUMP")]
    pub dump: bool,

    /// Log filter: error, warn, info, debug, trace (or a tracing directive).
    #[arg(long, env = "CSVD_LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Largest request body accepted, in bytes (larger gets 413).
    #[arg(long, env = "CSVD_MAX_BODY", default_value_t = 64 * 1024 * 1024)]
    pub max_body: usize,

    /// Seconds a client may take to send a request's headers.
    #[arg(long, env = "CSVD_HEADER_TIMEOUT", default_value_t = 30)]
    pub header_timeout: u64,

    /// When to fsync the write-ahead log: `always` (before every write is
    /// acknowledged) or `never` (UNSAFE: a crash may lose acknowledged
    /// writes; for measuring what durability costs).
    #[arg(long, env = "CSVD_SYNC", value_enum, default_value = "always")]
    pub sync: SyncMode,

    /// Seconds without writes after which changed CSV files are rewritten
    /// (writes are durable in the write-ahead log before that).
    #[arg(long, env = "CSVD_CHECKPOINT_AFTER", default_value_t = 1)]
    pub checkpoint_after: u64,

    /// Seconds to wait for in-flight requests at shutdown.
    #[arg(long, env = "CSVD_SHUTDOWN_TIMEOUT", default_value_t = 10)]
    pub shutdown_timeout: u64,

    /// Text sent to every new connection before HTTP starts (the seed
    /// client waits for one). Breaks ordinary HTTP clients: off by default.
    #[arg(long, env = "CSVD_GREETING")]
    pub greeting: Option<String>,
}

/// When the write-ahead log is fsync'd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncMode {
    Always,
    Never,
}

/// Arguments shared by the one-shot request commands.
#[derive(Debug, Clone, Args)]
pub struct RequestArgs {
    /// URL; shorthands `:8080/people`, `localhost:8080/people`, `/people`.
    pub url: String,
    /// Request items: `name=kim`, `age:=30`, `q==kim`, `Header:value`,
    /// `field=@file`, `@file`.
    pub items: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ShellArgs {
    /// Base URL requests are relative to.
    #[arg(default_value = "http://127.0.0.1:8080")]
    pub base_url: String,
}

#[derive(Debug, Clone, Args)]
pub struct RawArgs {
    /// Where to connect, e.g. `127.0.0.1:8080`.
    pub address: String,
    /// File whose bytes are sent; `-` or absent for standard input.
    pub file: Option<PathBuf>,
}
