//! Every command, flag and environment variable of `csvd`, in one place.
//!
//! Parsing only: nothing here opens a socket or a file. `main.rs` hands the
//! parsed values to the server or the client.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

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
    /// Serve the CSV files of a data directory over HTTP (or json-server's
    /// db.json, its data kept in db.csvd/ beside it).
    #[command(
        after_help = "Examples:\n  csvd serve ./data --bind 127.0.0.1:8080\n  csvd serve db.json --routes routes.json"
    )]
    Serve(Box<ServeArgs>),
    /// Copy every table from one store to another: a data directory, a
    /// PostgreSQL database (`postgres://…`) or json-server's db.json
    /// (`FILE.json`) on either side.
    #[command(
        after_help = "Examples:\n  csvd copy ./data postgres://csvd@db.internal/csvd\n  csvd copy postgres://csvd@db.internal/csvd ./backup\n  csvd copy db.json ./data\n  csvd copy ./data db.json"
    )]
    Copy(CopyArgs),
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
    /// Send an OPTIONS request.
    Options(RequestArgs),
    /// Send a request with any method: `csvd request PROPFIND URL …`.
    Request(MethodArgs),
    /// Interactive HTTP shell.
    Shell(ShellArgs),
    /// Send bytes verbatim to HOST:PORT and print what comes back.
    Raw(RawArgs),
    /// Follow a csvd server's change feed, printing each change as it
    /// happens.
    Watch(WatchArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CopyArgs {
    /// Where the tables are read: a data directory, `postgres://…` or a
    /// `.json` file.
    pub from: String,
    /// Where they are written (created if absent). A table of the same
    /// name there is replaced; other tables there are left alone (a
    /// `.json` file is written whole).
    pub to: String,
    /// Copy only these tables (comma-separated; all when not given).
    #[arg(long, value_delimiter = ',')]
    pub tables: Vec<String>,
    /// Name of the column that holds each row's id.
    #[arg(long, env = "CSVD_ID_COLUMN", default_value = "id")]
    pub id_column: String,
    /// Rows sent per write.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    /// No progress bar, even on a terminal.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Where a store keeps its tables, from the text that names it.
pub fn source_of(text: &str) -> Source {
    if crate::store::is_postgres_url(text) {
        Source::Postgres(text.to_string())
    } else if crate::jsondb::is_json_path(text) {
        Source::Json(PathBuf::from(text))
    } else {
        Source::Dir(PathBuf::from(text))
    }
}

/// Where `csvd serve` keeps its tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Dir(PathBuf),
    Postgres(String),
    /// json-server's `db.json` (a path ending in `.json`).
    Json(PathBuf),
}

impl ServeArgs {
    /// The data source given, or `DATABASE_URL`, or `data`.
    pub fn source(&self) -> Source {
        let given = self
            .data_dir
            .clone()
            .or_else(|| std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()));
        source_of(given.as_deref().unwrap_or("data"))
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Where the tables are: a directory (one `<name>.csv` each; created if
    /// absent), a PostgreSQL database (`postgres://user@host:port/db`), or
    /// json-server's `db.json` (its data kept in `db.csvd/` beside it).
    /// Without it, `DATABASE_URL` when set, else `data`.
    #[arg(
        env = "CSVD_DATA_DIR",
        value_name = "DATA_DIR | postgres://… | FILE.json"
    )]
    pub data_dir: Option<String>,

    /// Connections kept open to a PostgreSQL database, shared by all
    /// requests.
    #[arg(long, env = "CSVD_DB_CONNECTIONS", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub db_connections: u32,

    /// Seconds one request's work in a PostgreSQL database may take before
    /// it is answered 503 (a database that stopped answering).
    #[arg(long, env = "CSVD_DB_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub db_timeout: u64,

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
    #[arg(long, env = "CSVD_MAX_BODY", default_value_t = 64 * 1024 * 1024, help_heading = "Limits")]
    pub max_body: usize,

    /// Most bytes of large request bodies (over 1 MiB each) read and
    /// written at once, bounding the memory bulk writes take (about three
    /// times this at the peak); a large body that finds no room waits
    /// --bulk-wait, then gets 503 with Retry-After. 0: no limit.
    #[arg(long, env = "CSVD_MAX_BULK_BYTES", default_value_t = 128 * 1024 * 1024, help_heading = "Limits")]
    pub max_bulk_bytes: usize,

    /// Seconds a large body waits for room under --max-bulk-bytes before
    /// it is answered 503 (its body unread).
    #[arg(
        long,
        env = "CSVD_BULK_WAIT",
        default_value_t = 10,
        help_heading = "Limits"
    )]
    pub bulk_wait: u64,

    /// Largest request head (request line and headers), in bytes (431).
    #[arg(long, env = "CSVD_MAX_HEADER_BYTES", default_value_t = 32 * 1024, help_heading = "Limits")]
    pub max_header_bytes: usize,

    /// Most headers in one request (431).
    #[arg(
        long,
        env = "CSVD_MAX_HEADERS",
        default_value_t = 100,
        help_heading = "Limits"
    )]
    pub max_headers: usize,

    /// Longest request target (path and query), in bytes (414).
    #[arg(long, env = "CSVD_MAX_URI", default_value_t = 8 * 1024, help_heading = "Limits")]
    pub max_uri: usize,

    /// Seconds a client has to send a complete request head, counted from
    /// when the server starts waiting for it (a slow sender is cut off).
    #[arg(
        long,
        env = "CSVD_HEADER_TIMEOUT",
        default_value_t = 15,
        help_heading = "Limits"
    )]
    pub header_timeout: u64,

    /// Seconds a connection may stay silent (no byte either way) before it
    /// is closed; idle keep-alive connections also end at --header-timeout.
    #[arg(
        long,
        env = "CSVD_IDLE_TIMEOUT",
        default_value_t = 60,
        help_heading = "Limits"
    )]
    pub idle_timeout: u64,

    /// Seconds a client has to send a request's whole body (408).
    #[arg(
        long,
        env = "CSVD_BODY_TIMEOUT",
        default_value_t = 60,
        help_heading = "Limits"
    )]
    pub body_timeout: u64,

    /// Seconds a request may take in all before it is answered 503.
    #[arg(
        long,
        env = "CSVD_REQUEST_TIMEOUT",
        default_value_t = 120,
        help_heading = "Limits"
    )]
    pub request_timeout: u64,

    /// Most connections open at once; beyond it new ones get 503 with
    /// Retry-After and are closed (never queued).
    #[arg(
        long,
        env = "CSVD_MAX_CONNECTIONS",
        default_value_t = 1024,
        help_heading = "Limits"
    )]
    pub max_connections: usize,

    /// Most change-feed streams open at once (SSE, NDJSON and long polls;
    /// each also counts against --max-connections); beyond it a new one
    /// gets 503 with Retry-After.
    #[arg(
        long,
        env = "CSVD_MAX_SUBSCRIBERS",
        default_value_t = 1000,
        help_heading = "Limits"
    )]
    pub max_subscribers: usize,

    /// Changes the feed (/_changes) keeps at least, for subscribers to
    /// resume from; older positions are answered 410 Gone.
    #[arg(
        long,
        env = "CSVD_CHANGES_KEEP",
        default_value_t = 10_000,
        help_heading = "Change feed"
    )]
    pub changes_keep: usize,

    /// MiB of rows the feed may hold beyond --changes-keep for subscribers
    /// that lag behind; one that falls further is told so and disconnected.
    #[arg(
        long,
        env = "CSVD_CHANGES_MEMORY",
        default_value_t = 64,
        help_heading = "Change feed"
    )]
    pub changes_memory: usize,

    /// Refuse every write (405 with Allow), and write nothing to the data
    /// directory either (no lock file, no log): serves a read-only mount.
    #[arg(long, env = "CSVD_READ_ONLY", help_heading = "Access")]
    pub read_only: bool,

    /// Bearer token required for writes (prefer CSVD_TOKEN or --token-file:
    /// arguments are visible to other users of the machine).
    #[arg(
        long,
        env = "CSVD_TOKEN",
        hide_env_values = true,
        help_heading = "Access"
    )]
    pub token: Option<String>,

    /// File holding the bearer token (surrounding whitespace ignored).
    #[arg(
        long,
        env = "CSVD_TOKEN_FILE",
        conflicts_with = "token",
        help_heading = "Access"
    )]
    pub token_file: Option<PathBuf>,

    /// Require the token for reads too.
    #[arg(long, env = "CSVD_PRIVATE", help_heading = "Access")]
    pub private: bool,

    /// Allow browsers on this origin to call the API (repeatable; `*` for any).
    #[arg(
        long,
        env = "CSVD_CORS",
        value_delimiter = ',',
        help_heading = "Access"
    )]
    pub cors: Vec<String>,

    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(
        long,
        env = "CSVD_TLS_CERT",
        requires = "tls_key",
        help_heading = "Access"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --tls-cert.
    #[arg(
        long,
        env = "CSVD_TLS_KEY",
        requires = "tls_cert",
        help_heading = "Access"
    )]
    pub tls_key: Option<PathBuf>,

    /// In CSV answers, prefix cells that spreadsheets would run as formulas
    /// (starting with = + - @ tab or CR) with a single quote.
    #[arg(long, env = "CSVD_CSV_SAFE", help_heading = "Access")]
    pub csv_safe: bool,

    // ---- json-server compatibility
    /// The ending of a foreign-key column after the singular name of the
    /// table it points into (`postId` names a row of `posts`), for
    /// `_embed`, `_expand` and nested routes.
    #[arg(
        long,
        env = "CSVD_FOREIGN_KEY_SUFFIX",
        default_value = "Id",
        help_heading = "json-server"
    )]
    pub foreign_key_suffix: String,

    /// Wait this many milliseconds before every answer (a slow network,
    /// for trying a front end against).
    #[arg(
        long,
        env = "CSVD_DELAY",
        value_name = "MS",
        default_value_t = 0,
        help_heading = "json-server"
    )]
    pub delay: u64,

    /// Serve the files in DIR at paths that are not tables nor routes of
    /// the API (default: ./public when it is a directory).
    #[arg(
        long = "static",
        env = "CSVD_STATIC",
        value_name = "DIR",
        help_heading = "json-server"
    )]
    pub static_dir: Option<PathBuf>,

    /// Serve no files, even when ./public exists.
    #[arg(
        long,
        env = "CSVD_NO_STATIC",
        conflicts_with = "static_dir",
        help_heading = "json-server"
    )]
    pub no_static: bool,
    /// json-server 0.17's routes.json: rewrite request paths by its rules
    /// (`"/api/*": "/$1"`) before they are routed.
    #[arg(
        long,
        env = "CSVD_ROUTES",
        value_name = "FILE",
        help_heading = "json-server"
    )]
    pub routes: Option<PathBuf>,

    /// Serving a db.json: write the data back into it at shutdown (it is
    /// never written otherwise).
    #[arg(long, env = "CSVD_WRITE_JSON", help_heading = "json-server")]
    pub write_json: bool,
    // ---- end of json-server compatibility
    /// Start CSV downloads of tables with a UTF-8 byte-order mark, so that
    /// Excel reads them as UTF-8 (`?bom=0` on a request turns it off).
    #[arg(long, env = "CSVD_CSV_BOM")]
    pub csv_bom: bool,

    /// When to fsync the write-ahead log: `always` (before every write is
    /// acknowledged) or `never` (UNSAFE: a crash may lose acknowledged
    /// writes; for measuring what durability costs).
    #[arg(long, env = "CSVD_SYNC", value_enum, default_value = "always")]
    pub sync: SyncMode,

    /// Start even if the write-ahead log is damaged (a bad checksum, a
    /// missing segment, a hand edit that lost the version logged changes
    /// apply to): serve what can be read, move damaged segments to
    /// DATA/.csvd/salvaged/ (never deleting them) and log what was lost.
    #[arg(long, env = "CSVD_SALVAGE")]
    pub salvage: bool,

    /// Seconds without writes after which changed CSV files are rewritten
    /// (writes are durable in the write-ahead log before that).
    #[arg(long, env = "CSVD_CHECKPOINT_AFTER", default_value_t = 1)]
    pub checkpoint_after: u64,

    /// How often, at most, a read looks at a table's file for an edit made
    /// by hand, in milliseconds (0: on every read). A write always looks
    /// first.
    #[arg(long, env = "CSVD_FILE_CHECK", default_value_t = 20, value_name = "MS")]
    pub file_check: u64,

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
///
/// `-h` means "response headers only", as in HTTPie and xh, so help is
/// `--help` alone here.
#[derive(Debug, Clone, Args)]
#[command(disable_help_flag = true)]
// A flag given twice takes the later value (typed options after a
// configuration file's defaults); other commands refuse a repeated flag.
#[command(args_override_self = true)]
#[command(after_help = "Request items:
  name=kim           string field in the JSON (or form, or CSV) body
  age:=30            raw JSON field (number, true, null, [..], {..})
  q==kim             query parameter appended to the URL
  Header:value       request header (`Header:` removes a default one)
  Header;            header with an empty value
  bio=@bio.txt       string field read from a file
  meta:=@meta.json   raw JSON field read from a file
  photo@cat.png      file part of a multipart form (with --form or --multipart)
  @people.csv        the whole body from a file (streamed)
  @-                 the whole body from standard input
  user[name]=kim     nested JSON: {\"user\":{\"name\":\"kim\"}}; tags[]=a appends,
                     rows[0][id]:=1 sets by index, []:=1 makes a top-level array

Examples:
  csvd get :8080/people name==kim
  csvd post :8080/people name=kim age:=30
  csvd post :8080/people @people.csv
  csvd patch :8080/people/3 age:=31 -v
  csvd delete :8080/people/3 --check-status
  csvd get https://localhost:8443/people --ca cert.pem")]
pub struct RequestArgs {
    /// URL: `http://…` or `https://…`; shorthands `:8080/people`
    /// (localhost), `localhost:8080/people`, `/people`
    /// (http://127.0.0.1:8080) are plain HTTP.
    pub url: String,

    /// Request items (see below).
    pub items: Vec<String>,

    /// Send this text as the body, as it is (no data items with it).
    #[arg(long, value_name = "BODY")]
    pub raw: Option<String>,

    /// Print the request that would be sent (`--print` H and B choose the
    /// parts) and send nothing.
    #[arg(long)]
    pub offline: bool,

    /// Print an equivalent curl command and send nothing.
    #[arg(long, conflicts_with = "offline")]
    pub curl: bool,

    /// Ignore the configuration files (`~/.config/csvd/config.toml`,
    /// `.csvd.toml`).
    #[arg(long)]
    pub no_config: bool,

    #[command(flatten)]
    pub options: RequestOptions,

    #[command(flatten)]
    pub tls: TlsOptions,

    #[command(flatten)]
    pub hops: HopOptions,

    #[command(flatten)]
    pub transfer: TransferOptions,

    #[command(flatten)]
    pub proxy: ProxyOptions,

    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
}

/// `csvd request METHOD URL [items…]`.
#[derive(Debug, Clone, Args)]
#[command(disable_help_flag = true)]
pub struct MethodArgs {
    /// The method, any token (`GET`, `PROPFIND`, …; sent in capitals).
    pub method: String,

    #[command(flatten)]
    pub request: RequestArgs,
}

/// Redirects and credentials of the one-shot commands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct HopOptions {
    /// Follow redirects (301, 302, 303, 307, 308) and print the last
    /// answer (`-v` prints every hop).
    #[arg(short = 'F', long)]
    pub follow: bool,

    /// Most redirects --follow takes before giving up (exit 6).
    #[arg(long, value_name = "N", default_value_t = 30, requires = "follow")]
    pub max_redirects: usize,

    /// Credentials: `user:password` (`user` alone asks for the password on
    /// a terminal), or the token of `--auth-type bearer`.
    #[arg(short = 'a', long, value_name = "USER[:PASS]|TOKEN")]
    pub auth: Option<String>,

    /// Send the headers and cookies kept in session NAME
    /// (`sessions/<host>/NAME.json` in the configuration directory) or the
    /// file PATH, and keep this request's headers and the cookies set.
    #[arg(long, value_name = "NAME|PATH", conflicts_with = "session_read_only")]
    pub session: Option<String>,

    /// As --session, without saving anything into the session.
    #[arg(long, value_name = "NAME|PATH")]
    pub session_read_only: Option<String>,

    /// Send a GET, HEAD, PUT, DELETE or OPTIONS again, up to N times, when
    /// connecting fails or the answer is 502, 503 or 504; waits 0.5 s, then
    /// 1 s, 2 s… or the answer's Retry-After, at most 30 s each time.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retry: u32,

    /// How --auth is sent: basic (the default) or bearer.
    #[arg(short = 'A', long, value_enum, value_name = "TYPE", requires = "auth")]
    pub auth_type: Option<AuthType>,
}

/// Where the output goes, and whether standard input may be read (the
/// one-shot commands).
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct TransferOptions {
    /// Write the output to FILE instead of stdout (as redirecting it
    /// would); with --download, the body is saved there.
    #[arg(short = 'o', long, value_name = "FILE", conflicts_with_all = ["offline", "curl"], help_heading = "Downloads")]
    pub output: Option<PathBuf>,

    /// Save the body to a file (named by `-o`, the answer's
    /// Content-Disposition, or the URL; never one that exists) with a
    /// progress bar; the headers go to stderr. Follows redirects.
    #[arg(short = 'd', long, conflicts_with_all = ["offline", "curl"], help_heading = "Downloads")]
    pub download: bool,

    /// Resume a download into `-o FILE` from its current size.
    #[arg(
        short = 'c',
        long = "continue",
        requires = "download",
        requires = "output",
        help_heading = "Downloads"
    )]
    pub resume: bool,

    /// With --download and no `-o`: replace a file of the same name
    /// rather than add `-1`, `-2`… to the name.
    #[arg(long, requires = "download", help_heading = "Downloads")]
    pub overwrite: bool,

    /// Never read standard input: `@-` is refused, and `--auth USER` does
    /// not ask for a password.
    #[arg(short = 'I', long)]
    pub ignore_stdin: bool,
}

/// Which proxy requests go through (the one-shot commands and the shell).
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct ProxyOptions {
    /// Send http:// (or https://, or all) requests through the HTTP proxy
    /// at URL (`http://[USER:PASS@]HOST:PORT`); repeatable. Without it,
    /// http_proxy, https_proxy and all_proxy (or in capitals) say, minus
    /// the hosts of no_proxy.
    #[arg(long, value_name = "PROTOCOL:URL", value_parser = crate::client::parse_proxy, help_heading = "Proxies")]
    pub proxy: Vec<crate::client::ProxyRule>,

    /// Go directly to the server: no --proxy, no proxy variable.
    #[arg(long, help_heading = "Proxies")]
    pub no_proxy: bool,
}

/// The `Authorization` scheme of `--auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthType {
    /// `Basic base64(user:password)`.
    Basic,
    /// `Bearer TOKEN`.
    Bearer,
}

/// How a request is encoded, printed and judged; the shell's one-line form
/// accepts the same flags.
#[derive(Debug, Clone, Default, Args)]
pub struct RequestOptions {
    /// Send data fields as a JSON object (the default) and ask for JSON.
    #[arg(short, long, group = "encoding")]
    pub json: bool,

    /// Send data fields as an HTML form (application/x-www-form-urlencoded).
    #[arg(short, long, group = "encoding")]
    pub form: bool,

    /// Send data fields and `name@file` parts as multipart/form-data
    /// (`--form` does too when there is a file part).
    #[arg(long, group = "encoding")]
    pub multipart: bool,

    /// Send data fields as a one-row CSV (header line + row) and ask for CSV.
    #[arg(long, group = "encoding")]
    pub csv: bool,

    /// Print the request as sent and the response as received.
    #[arg(short, long)]
    pub verbose: bool,

    /// What to print: H request headers, B request body, h response
    /// headers, b response body (default: hb on a terminal, b when piped).
    #[arg(short, long, value_name = "WHAT", value_parser = parse_print)]
    pub print: Option<String>,

    /// Print only the response headers (`--print h`).
    #[arg(short = 'h', long)]
    pub headers: bool,

    /// Print only the response body (`--print b`).
    #[arg(short, long)]
    pub body: bool,

    /// Print nothing (errors and warnings still go to stderr).
    #[arg(short, long)]
    pub quiet: bool,

    /// Print the response body line by line as it arrives, each JSON line
    /// formatted on its own, never gathered whole first (NDJSON and other
    /// bodies that are not JSON or CSV stream without it).
    #[arg(short = 'S', long)]
    pub stream: bool,

    /// Print headers sorted by name and JSON objects' keys sorted.
    #[arg(long, overrides_with = "unsorted")]
    pub sorted: bool,

    /// Print headers and JSON keys in the order received (the default;
    /// undoes an earlier --sorted).
    #[arg(long, overrides_with = "sorted")]
    pub unsorted: bool,

    /// Colour theme: auto (the default), bright, solarized or mono; HTTPie's
    /// style names (monokai, fruity, native, solarized-light, bw, …) pick
    /// the nearest of these.
    #[arg(long, value_name = "THEME", value_parser = crate::client::parse_style)]
    pub style: Option<Theme>,

    /// Exit with 3, 4 or 5 when the status is 3xx, 4xx or 5xx (a 3xx is
    /// no failure with --follow); a warning says so on stderr when stdout
    /// is not a terminal, or with --quiet.
    #[arg(long)]
    pub check_status: bool,

    /// Give up (exit 2) when connecting, or waiting for any part of the
    /// response, takes longer than this many seconds.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub timeout: Option<Duration>,

    /// Colours and formatting: all, colors, format or none (default: all on
    /// a terminal, none when piped; NO_COLOR turns colours off).
    #[arg(long, value_enum, value_name = "STYLE")]
    pub pretty: Option<Pretty>,
}

/// Which servers an `https://` connection trusts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct TlsOptions {
    /// Trust only the certificates in this PEM file (a CA bundle, or a
    /// server's own self-signed certificate) instead of the built-in
    /// Mozilla roots.
    #[arg(long, env = "CSVD_CA", value_name = "FILE", help_heading = "HTTPS")]
    pub ca: Option<PathBuf>,

    /// Accept any certificate: the connection is encrypted but the server
    /// is not authenticated (a warning says so on stderr). Wins over --ca.
    #[arg(short = 'k', long, help_heading = "HTTPS")]
    pub insecure: bool,
}

/// The colours of `--style`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Theme {
    /// The 16 basic terminal colours (the default).
    #[default]
    Auto,
    /// Their bright variants, for dark backgrounds.
    Bright,
    /// Solarized accents (256-colour terminals).
    Solarized,
    /// No colour: bold, underline and dim only.
    Mono,
}

/// Output styling, as HTTPie's `--pretty`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Pretty {
    /// Colours and formatting.
    All,
    /// Colours only.
    Colors,
    /// Formatting only (indented JSON, aligned CSV).
    Format,
    /// Bytes as received.
    None,
}

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "In the shell, type a method and answer the prompts, or a whole request:
  POST /people name=kim age:=30
  get /people name==kim
  :help lists the shell's own commands; Ctrl-D or `exit` leaves.

Examples:
  csvd shell http://127.0.0.1:8080
  csvd shell https://localhost:8443 --ca cert.pem"
)]
pub struct ShellArgs {
    /// Base URL requests are relative to (`http://…` or `https://…`).
    #[arg(default_value = "http://127.0.0.1:8080")]
    pub base_url: String,

    #[command(flatten)]
    pub tls: TlsOptions,

    #[command(flatten)]
    pub proxy: ProxyOptions,

    /// Start with verbose output on (`:verbose off` turns it off).
    #[arg(short, long)]
    pub verbose: bool,

    /// Give up when connecting, or waiting for any part of a response,
    /// takes longer than this many seconds.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub timeout: Option<Duration>,

    /// Colours and formatting: all, colors, format or none.
    #[arg(long, value_enum, value_name = "STYLE")]
    pub pretty: Option<Pretty>,

    /// File the shell's history is kept in (default:
    /// $XDG_STATE_HOME/csvd/history, or ~/.local/state/csvd/history).
    #[arg(long, env = "CSVD_HISTORY", value_name = "FILE")]
    pub history: Option<PathBuf>,
}

/// `csvd watch URL [items…]`.
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "A table or row URL means its feed: :8080/people watches /_changes/people,
:8080/people/3 watches /_changes/people/3, :8080 (or :8080/) watches /_changes.

Output: on a terminal, one line per change (seq, op, table/id, row); piped (or
--pretty none), each change's JSON as one line (NDJSON), written as it comes.

Lost connections, and streams the server ends, are resumed from the last change
received (Last-Event-ID), waiting 0.25 s (or the server's `retry:`) doubling to
30 s; a change is never printed twice. Ctrl-C stops.

Exit codes: 0 after --count changes, Ctrl-C, or a stream the server ended at its
`limit`; 1 when the stream ended with --no-reconnect, or on errors; 2 --timeout;
3, 4, 5 for a 3xx, 4xx or 5xx answer; 4 also when the changes after the position
asked for are no longer kept (410: reload the table, or watch again with
--since now).

Examples:
  csvd watch :8080/people
  csvd watch :8080/people city==Seoul --since 120
  csvd watch :8080 --count 1 | jq .op"
)]
pub struct WatchArgs {
    /// The feed (`:8080/_changes`, `…/_changes/people`), or a table or row
    /// URL standing for its feed (`:8080/people`, `:8080/people/3`).
    pub url: String,

    /// Request items: `city==Seoul`, `age_gt==30`, `_fields==a,b`,
    /// `limit==N`, `heartbeat==MS` query parameters; `Header:value`.
    pub items: Vec<String>,

    /// Where to start: `now` (only changes from now on; the default) or a
    /// sequence number N (the changes after N).
    #[arg(long, value_name = "N|now", default_value = "now", value_parser = parse_since)]
    pub since: Since,

    /// Exit (0) after printing N changes.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    /// Exit when the stream ends instead of reconnecting (1 unless the
    /// server ended it at its `limit`).
    #[arg(long)]
    pub no_reconnect: bool,

    /// Credentials: `user:password` (`user` alone asks for the password on
    /// a terminal), or the token of `--auth-type bearer`.
    #[arg(short = 'a', long, value_name = "USER[:PASS]|TOKEN")]
    pub auth: Option<String>,

    /// How --auth is sent: basic (the default) or bearer.
    #[arg(short = 'A', long, value_enum, value_name = "TYPE", requires = "auth")]
    pub auth_type: Option<AuthType>,

    /// Send the headers and cookies kept in session NAME or the file PATH
    /// (nothing is saved into it).
    #[arg(long, value_name = "NAME|PATH")]
    pub session: Option<String>,

    /// Give up on a connection (and reconnect, or exit 2 with
    /// --no-reconnect) when connecting, or waiting for the answer or the
    /// next bytes of the stream, takes longer than this many seconds.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub timeout: Option<Duration>,

    /// Colours and formatting: all, colors, format or none (none: NDJSON
    /// even on a terminal; NO_COLOR turns colours off).
    #[arg(long, value_enum, value_name = "STYLE")]
    pub pretty: Option<Pretty>,

    /// Colour theme: auto (the default), bright, solarized or mono, or one
    /// of HTTPie's style names (as --style of `csvd get`).
    #[arg(long, value_name = "THEME", default_value = "auto", value_parser = crate::client::parse_style)]
    pub style: Theme,

    #[command(flatten)]
    pub tls: TlsOptions,
}

/// Where `csvd watch` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    Now,
    /// The changes after this sequence number.
    Seq(u64),
}

/// `now` or a sequence number.
pub fn parse_since(text: &str) -> Result<Since, String> {
    match text {
        "now" => Ok(Since::Now),
        _ => text
            .parse()
            .map(Since::Seq)
            .map_err(|_| format!("`{text}` is neither `now` nor a sequence number (0, 1, 2, …)")),
    }
}

#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:
  printf 'GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n' | csvd raw 127.0.0.1:8080
  csvd raw 127.0.0.1:8080 request.txt --crlf
  csvd raw 127.0.0.1:8443 --tls --ca cert.pem < request.txt")]
pub struct RawArgs {
    /// Where to connect, e.g. `127.0.0.1:8080`; `https://HOST:PORT` is the
    /// same as --tls.
    pub address: String,

    /// File whose bytes are sent; `-` or absent for standard input.
    pub file: Option<PathBuf>,

    /// Turn each bare LF of the input into CRLF (for requests typed in an
    /// editor).
    #[arg(long)]
    pub crlf: bool,

    /// Stop when the peer has been silent this many seconds after the input
    /// was sent.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value = "5")]
    pub timeout: Duration,

    /// Speak TLS to the peer (the bytes go inside it, as typed); without it
    /// the connection is plain TCP.
    #[arg(long, help_heading = "HTTPS")]
    pub tls: bool,

    #[command(flatten)]
    pub tls_options: TlsOptions,
}

/// A positive number of seconds, fractions allowed (`0.5`).
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if seconds.is_finite() && seconds > 0.0 && seconds < 1e9 {
        Ok(Duration::from_secs_f64(seconds))
    } else {
        Err(format!("`{text}` is not a positive number of seconds"))
    }
}

/// `--print` takes letters from `HBhb`.
fn parse_print(text: &str) -> Result<String, String> {
    match text.chars().find(|c| !"HBhb".contains(*c)) {
        Some(c) => Err(format!("`{c}` is not one of H, B, h, b")),
        None => Ok(text.to_string()),
    }
}
