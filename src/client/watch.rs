//! `csvd watch URL [items…]` and the shell's `:watch`: following a csvd
//! server's change feed (`/_changes…`, Server-Sent Events).
//!
//! The request is built and authorized as a one-shot GET is
//! ([`Prepared`], [`redirect::authorize`](super::redirect::authorize)) and
//! sent on a [`Connection`] of its own; the body is parsed as it arrives
//! ([`sse`]) and each change is printed the moment its event is complete.
//! A stream that breaks or ends is resumed from the last change received
//! (`Last-Event-ID`), after a wait that doubles up to [`MAX_DELAY`]; a
//! change the server sends again is not printed twice.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::time::Duration;

use http_body_util::BodyExt as _;
use hyper::header::{self, HeaderValue};
use hyper::{Method, StatusCode};
use serde_json::Value;

use crate::cli::{HopOptions, Pretty, Since, Theme, WatchArgs};

use super::connection::{http_error, within, Connection};
use super::decode::{Codings, Decoder};
use super::error::ClientError;
use super::exchange::{build, is_retryable};
use super::items::Item;
use super::json;
use super::print::{Collected, Printer, Sections};
use super::proxy::Proxies;
use super::request::{Encoding, Prepared};
use super::style::{Paint, Style};
use super::tls::Tls;
use super::url::Url;

/// The first wait before reconnecting, unless the server's `retry:` says
/// otherwise.
const FIRST_DELAY: Duration = Duration::from_millis(250);

/// The longest wait between two connections.
pub const MAX_DELAY: Duration = Duration::from_secs(30);

/// Most bytes of an error answer's body read (it is printed, not kept).
const MAX_ERROR_BODY: usize = 1024 * 1024;

/// Exit status of a feed that cannot resume without a gap (410), as for
/// any 4xx.
const GONE_EXIT: u8 = 4;

/// `csvd watch URL [items…]`.
pub async fn run(args: WatchArgs) -> anyhow::Result<ExitCode> {
    let url = feed_url(&Url::parse(&args.url)?)?;
    let typed = super::parse_items(&args.items)?;
    let session = match &args.session {
        Some(name) => Some(super::session::Session::open(
            super::session::Session::path_of(name, url.socket_host().0)?,
            true,
        )?),
        None => None,
    };
    let items = match &session {
        Some(session) => session.items(typed, args.auth.is_some())?,
        None => typed,
    };
    let style = Style::detect(args.pretty).themed(args.style);
    let tls = Tls::new(&args.tls)?;
    let mut feed = Feed::from_args(&args, url, &items, tls, Output::choose(style))?;
    if let Some(session) = &session {
        let cookie_typed = items
            .iter()
            .any(|item| matches!(item, Item::Header { name, .. } if *name == header::COOKIE));
        session.add_cookies(&mut feed.request, cookie_typed);
    }
    let followed = tokio::select! {
        followed = feed.follow() => followed,
        _ = tokio::signal::ctrl_c() => Ok(ExitCode::SUCCESS),
    };
    match followed {
        Ok(code) => Ok(code),
        Err(error @ ClientError::Timeout { .. }) => {
            complain!("csvd: {error}");
            Ok(ExitCode::from(2))
        }
        Err(error) => Err(error.into()),
    }
}

/// The feed a URL stands for: a path that does not start with
/// `/_changes` is a table (`/people` → `/_changes/people`), a row
/// (`/people/3` → `/_changes/people/3`) or the server (`/` →
/// `/_changes`); the query is kept.
pub fn feed_url(url: &Url) -> Result<Url, ClientError> {
    let target = url.target();
    let (path, query) = match target.find('?') {
        Some(at) => target.split_at(at),
        None => (target, ""),
    };
    if path == "/_changes" || path.starts_with("/_changes/") {
        return Ok(url.clone());
    }
    let rest = path.trim_matches('/');
    let path = if rest.is_empty() {
        "/_changes".to_string()
    } else {
        format!("/_changes/{rest}")
    };
    let text = url.to_string();
    let origin = &text[..text.len() - target.len()];
    Url::parse(&format!("{origin}{path}{query}"))
}

/// The GET of a feed: `Accept: text/event-stream` and no compression
/// (which could hold events back), unless the items say otherwise.
pub fn feed_request(url: Url, items: &[Item]) -> Result<Prepared, ClientError> {
    let named = |wanted: &header::HeaderName| {
        items
            .iter()
            .any(|item| matches!(item, Item::Header { name, .. } if name == wanted))
    };
    let mut all = Vec::new();
    for (name, value) in [
        (header::ACCEPT, "text/event-stream"),
        (header::ACCEPT_ENCODING, "identity"),
        (header::CACHE_CONTROL, "no-cache"),
    ] {
        if !named(&name) {
            all.push(Item::Header {
                name,
                value: Some(HeaderValue::from_static(value)),
            });
        }
    }
    all.extend(items.iter().cloned());
    Prepared::new(Method::GET, url, &all, Encoding::Auto)
}

/// A feed's request has no body, and its start is `--since`'s.
fn check_items(items: &[Item]) -> Result<(), ClientError> {
    for item in items {
        match item {
            Item::Query { name, value } if name == "since" => {
                return Err(ClientError::item(
                    &format!("since=={value}"),
                    "the start is given with --since N (or --since now)",
                ))
            }
            Item::Header { .. } | Item::Query { .. } => {}
            Item::Field { name, .. }
            | Item::FieldFile { name, .. }
            | Item::Json { name, .. }
            | Item::JsonFile { name, .. }
            | Item::Upload { name, .. } => {
                return Err(ClientError::item(
                    name,
                    format!(
                        "a watch sends no body: filter with query items (`{name}==value`) or \
                         set a header (`Name:value`)"
                    ),
                ))
            }
            Item::BodyFile(path) => {
                return Err(ClientError::item(
                    &format!("@{}", path.display()),
                    "a watch sends no body",
                ))
            }
        }
    }
    Ok(())
}

/// How changes are printed.
pub enum Output {
    /// Each change's JSON on a line of its own, as received.
    Ndjson,
    /// One line per change for a person: seq, op, table/id, row.
    Lines(Style),
}

impl Output {
    /// Lines on a terminal, or wherever `--pretty` asks for formatting or
    /// colours; NDJSON otherwise (pipes, `--pretty none`).
    pub fn choose(style: Style) -> Output {
        if style.colors || style.format {
            Output::Lines(style)
        } else {
            Output::Ndjson
        }
    }

    /// The text printed for a change (without its line end).
    fn render(&self, data: &str, change: Option<&Value>) -> String {
        let change = match (self, change) {
            (Output::Lines(style), Some(Value::Object(change))) => (style, change),
            // The JSON on one line, whatever the server's line breaks.
            _ => {
                return match change {
                    Some(value) if data.contains('\n') => value.to_string(),
                    _ => data.replace('\n', " "),
                }
            }
        };
        let (style, change) = change;
        let text = |key: &str| match change.get(key) {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Number(number)) => number.to_string(),
            _ => String::new(),
        };
        let op = text("op");
        let paint = match op.as_str() {
            "insert" => Paint::Success,
            "update" => Paint::Redirect,
            "delete" | "delete_table" => Paint::Failure,
            _ => Paint::Method,
        };
        let mut target = text("table");
        if change.get("id").is_some_and(|id| !id.is_null()) {
            target = format!("{target}/{}", text("id"));
        }
        let mut line = format!(
            "{} {} {}",
            style.paint(Paint::Faint, &format!("{:>4}", text("seq"))),
            style.paint(paint, &format!("{op:<6}")),
            style.paint(Paint::Protocol, &target),
        );
        if let Some(row) = change.get("row").filter(|row| !row.is_null()) {
            line.push(' ');
            line.push_str(&json::render_line(&row.to_string(), style));
        }
        line
    }
}

/// Why one connection's stream stopped.
enum Stopped {
    /// Nothing more to do: exit with this code.
    Exit(ExitCode),
    /// It ended or broke (why, in words): reconnect, after `wait` when the
    /// server said how long.
    Ended { why: String, wait: Option<Duration> },
}

/// A feed being followed.
pub struct Feed {
    /// The request without a start position (`since=`, `Last-Event-ID`).
    request: Prepared,
    tls: Tls,
    output: Output,
    pub since: Since,
    /// Exit after this many changes.
    pub count: Option<u64>,
    pub reconnect: bool,
    pub timeout: Option<Duration>,
    /// How an answer that is not a stream is printed (`--pretty`,
    /// `--style`).
    pub pretty: Option<Pretty>,
    pub theme: Theme,
    /// The last change printed (or the position to resume from).
    position: Option<u64>,
    printed: u64,
    backoff: Backoff,
    /// The current connection delivered a change.
    delivered: bool,
}

impl Feed {
    /// The feed at `url` (see [`feed_url`]) as `csvd watch` (or the
    /// shell's `:watch`) asks for it: `items` are the request's, the
    /// credentials and the start from `args`.
    pub fn from_args(
        args: &WatchArgs,
        url: Url,
        items: &[Item],
        tls: Tls,
        output: Output,
    ) -> Result<Feed, ClientError> {
        check_items(items)?;
        let mut request = feed_request(url, items)?;
        let hops = HopOptions {
            auth: args.auth.clone(),
            auth_type: args.auth_type,
            ..HopOptions::default()
        };
        super::redirect::authorize(&mut request, items, &hops)?;
        let mut feed = Feed::new(request, tls, output);
        feed.since = args.since;
        feed.count = args.count;
        feed.reconnect = !args.no_reconnect;
        feed.timeout = args.timeout;
        feed.pretty = args.pretty;
        feed.theme = args.style;
        Ok(feed)
    }

    pub fn new(request: Prepared, tls: Tls, output: Output) -> Feed {
        Feed {
            request,
            tls,
            output,
            since: Since::Now,
            count: None,
            reconnect: true,
            timeout: None,
            pretty: None,
            theme: Theme::Auto,
            position: None,
            printed: 0,
            backoff: Backoff::default(),
            delivered: false,
        }
    }

    /// Where the feed is (without its start position).
    pub fn url(&self) -> &Url {
        &self.request.url
    }

    /// Follows the feed until `--count` changes were printed, the server
    /// ends it for good, or (with `--no-reconnect`) it ends at all; the
    /// exit code.
    pub async fn follow(&mut self) -> Result<ExitCode, ClientError> {
        if let Since::Seq(seq) = self.since {
            self.position = Some(seq);
        }
        let mut first = true;
        loop {
            let request = self.request_at(first);
            first = false;
            self.delivered = false;
            let (why, wait) = match self.connect(&request).await {
                Ok(Stopped::Exit(code)) => return Ok(code),
                Ok(Stopped::Ended { why, wait }) => (why, wait),
                Err(error) if self.reconnect && retried(&error) => (error.to_string(), None),
                Err(error) => return Err(error),
            };
            if !self.reconnect {
                complain!("csvd: {why}");
                return Ok(ExitCode::FAILURE);
            }
            if self.delivered {
                self.backoff.reset();
            }
            let wait = self.backoff.next(wait);
            complain!(
                "csvd: {why}; reconnecting in {}",
                humantime::format_duration(Duration::from_millis(wait.as_millis() as u64))
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// The request of the next connection: the first one says where to
    /// start in the query (`since=`), later ones resume after the last
    /// change received (`Last-Event-ID`).
    fn request_at(&self, first: bool) -> Prepared {
        let mut request = self.request.clone();
        match (first, self.position) {
            (false, Some(seq)) => request.headers.push((
                header::HeaderName::from_static("last-event-id"),
                HeaderValue::from(seq),
            )),
            (_, position) => {
                let since = position.map_or("now".to_string(), |seq| seq.to_string());
                request.url.append_query(&[("since".to_string(), since)]);
            }
        }
        request
    }

    /// One connection: sends the request and prints the changes it
    /// streams.
    async fn connect(&mut self, request: &Prepared) -> Result<Stopped, ClientError> {
        // Proxies as the environment names them (http_proxy, no_proxy…).
        let proxies = Proxies::from_env();
        let proxy = proxies.for_url(&request.url)?;
        let mut connection = Connection::open(&request.url, self.timeout, &self.tls, proxy).await?;
        let (built, _, _) = build(request, proxy).await?;
        let tap = connection.tap().clone();
        let _sent = tap.start();
        let peer = connection.peer().to_string();
        let response = within(
            self.timeout,
            "waiting for the response",
            connection.send(built),
        )
        .await?
        .map_err(|error| http_error(&peer, &error))?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_string();
        let is_stream = content_type
            .split(';')
            .next()
            .is_some_and(|media| media.trim().eq_ignore_ascii_case("text/event-stream"));
        if !status.is_success() || !is_stream {
            let head = tap.response_head();
            let retry_after = super::exchange::retry_after(response.headers());
            let body = self.read_whole(response, &peer).await?;
            return self.refused(status, &head, &content_type, &body, retry_after);
        }
        let codings = match Codings::of(response.headers()) {
            Codings::Known(codings) => codings,
            Codings::Unknown(coding) => {
                complain!(
                    "csvd: {peer}: the stream is encoded with `{coding}`, which csvd does not \
                     decode (ask for another with an Accept-Encoding: item)"
                );
                return Ok(Stopped::Exit(ExitCode::FAILURE));
            }
        };
        let decoded = Collected::default();
        let mut decoder = Decoder::new(&codings, decoded.clone());
        let mut parser = sse::Parser::default();
        let mut body = response.into_body();
        let bad = |reason: String| ClientError::Http {
            addr: peer.clone(),
            reason,
        };
        loop {
            let frame = within(self.timeout, "waiting for the stream", body.frame()).await?;
            let data = match frame {
                None => {
                    decoder.finish().map_err(|error| bad(body_error(error)))?;
                    // What is left (a last event without its empty line)
                    // is not an event.
                    return Ok(Stopped::Ended {
                        why: "the server ended the stream".to_string(),
                        wait: None,
                    });
                }
                Some(Err(error)) => return Err(http_error(&peer, &error)),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => data,
                    Err(_) => continue,
                },
            };
            decoder
                .push(&data)
                .map_err(|error| bad(body_error(error)))?;
            let events = parser.feed(&decoded.take()).map_err(bad)?;
            if let Some(retry) = parser.retry {
                self.backoff.server_says(Duration::from_millis(retry));
            }
            if let Some(id) = parser.announced.take() {
                // The server names where the stream starts (an `id:` with no
                // data): a reconnect before any change resumes from there.
                if self.position.is_none() {
                    self.position = id.trim().parse().ok();
                }
            }
            for event in events {
                if let Some(stopped) = self.event(&event)? {
                    return Ok(stopped);
                }
            }
        }
    }

    /// One complete event; what stops the stream, if it does.
    fn event(&mut self, event: &sse::Event) -> Result<Option<Stopped>, ClientError> {
        let value: Option<Value> = serde_json::from_str(&event.data).ok();
        if event.kind == "end" {
            let text = |key: &str| {
                value
                    .as_ref()
                    .and_then(|value| value.get(key))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let last = value
                .as_ref()
                .and_then(|value| value.get("last_seq"))
                .and_then(Value::as_u64);
            if self.position.is_none() {
                self.position = last;
            }
            let reason = text("reason");
            if reason == "limit" {
                return Ok(Some(Stopped::Exit(ExitCode::SUCCESS)));
            }
            let detail = text("detail");
            let why = match (reason.as_str(), detail.as_str()) {
                ("", _) => "the server ended the stream".to_string(),
                (reason, "") => format!("the server ended the stream ({reason})"),
                (reason, detail) => format!("the server ended the stream ({reason}: {detail})"),
            };
            return Ok(Some(Stopped::Ended { why, wait: None }));
        }
        let seq = value
            .as_ref()
            .and_then(|value| value.get("seq"))
            .and_then(Value::as_u64)
            .or_else(|| event.id.as_deref().and_then(|id| id.trim().parse().ok()));
        if let (Some(seq), Some(last)) = (seq, self.position) {
            if seq <= last {
                return Ok(None);
            }
        }
        let line = self.output.render(&event.data, value.as_ref());
        let mut stdout = std::io::stdout().lock();
        let written = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
        match written {
            // The reader went away (`| head`): nothing left to do.
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
                return Ok(Some(Stopped::Exit(ExitCode::SUCCESS)))
            }
            Err(error) => return Err(ClientError::Output { error }),
            Ok(()) => {}
        }
        if seq.is_some() {
            self.position = seq;
        }
        self.delivered = true;
        self.printed += 1;
        if self.count.is_some_and(|count| self.printed >= count) {
            return Ok(Some(Stopped::Exit(ExitCode::SUCCESS)));
        }
        Ok(None)
    }

    /// The body of an answer that is not a stream, up to
    /// [`MAX_ERROR_BODY`].
    async fn read_whole(
        &self,
        response: hyper::Response<hyper::body::Incoming>,
        peer: &str,
    ) -> Result<Vec<u8>, ClientError> {
        let codings = match Codings::of(response.headers()) {
            Codings::Known(codings) => codings,
            Codings::Unknown(_) => Vec::new(),
        };
        let decoded = Collected::default();
        let mut decoder = Decoder::new(&codings, decoded.clone());
        let mut body = response.into_body();
        let mut read = 0;
        while let Some(frame) =
            within(self.timeout, "waiting for the response body", body.frame()).await?
        {
            let frame = frame.map_err(|error| http_error(peer, &error))?;
            if let Ok(data) = frame.into_data() {
                read += data.len();
                let _ = decoder.push(&data);
                if read > MAX_ERROR_BODY {
                    break;
                }
            }
        }
        let _ = decoder.finish();
        Ok(decoded.take())
    }

    /// An answer that is not a stream of changes: said on stderr.
    fn refused(
        &self,
        status: StatusCode,
        head: &[u8],
        content_type: &str,
        body: &[u8],
        retry_after: Option<Duration>,
    ) -> Result<Stopped, ClientError> {
        let reason = format!(
            "HTTP {} {}",
            status.as_str(),
            status.canonical_reason().unwrap_or("")
        );
        if is_retryable(status) && self.reconnect {
            return Ok(Stopped::Ended {
                why: reason,
                wait: retry_after,
            });
        }
        if status == StatusCode::GONE {
            complain!("csvd: {}", self.gone(body));
            return Ok(Stopped::Exit(ExitCode::from(GONE_EXIT)));
        }
        // The answer as the request commands print it, on stderr: stdout
        // is for changes.
        let terminal = std::io::stderr().is_terminal();
        let style = Style::for_output(self.pretty, terminal).themed(self.theme);
        let letters = if terminal { "hb" } else { "b" };
        let mut printer = Printer::new(
            Box::new(std::io::stderr()),
            style,
            Sections::from_letters(letters),
        );
        let printed = (|| {
            printer.begin();
            printer.response_head(head)?;
            printer.start_body(Some(content_type));
            printer.body_chunk(body)?;
            printer.finish_body()
        })();
        if let Err(error) = printed {
            return Err(ClientError::Output { error });
        }
        if !terminal && !body.is_empty() && !body.ends_with(b"\n") {
            complain!();
        }
        let code = match status.as_u16() {
            300..=399 => 3,
            400..=499 => 4,
            500..=599 => 5,
            _ => 1,
        };
        if code == 1 {
            complain!(
                "csvd: the answer is not an event stream (Content-Type: {}): is this a csvd \
                 change feed (…/_changes)?",
                if content_type.is_empty() {
                    "none"
                } else {
                    content_type
                }
            );
        } else if !terminal {
            complain!("csvd: {reason}");
        }
        Ok(Stopped::Exit(ExitCode::from(code)))
    }

    /// The words for a 410: the position asked for is older than what
    /// the server keeps.
    fn gone(&self, body: &[u8]) -> String {
        let problem: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let oldest = problem.get("oldest_seq").and_then(Value::as_u64);
        let after = self
            .position
            .map_or("the position asked for".to_string(), |seq| seq.to_string());
        match oldest {
            Some(oldest) => format!(
                "changes after {after} are no longer kept (oldest kept: {oldest}); reload the \
                 table, or watch again with --since now"
            ),
            None => {
                let detail = problem.get("detail").and_then(Value::as_str).unwrap_or("");
                format!(
                    "changes after {after} are no longer kept{}; reload the table, or watch \
                     again with --since now",
                    if detail.is_empty() {
                        String::new()
                    } else {
                        format!(" ({detail})")
                    }
                )
            }
        }
    }
}

/// The waits between connections: from the first (250 ms, or the
/// server's `retry:`) doubling up to [`MAX_DELAY`], and back to the first
/// after a connection that delivered a change.
#[derive(Debug)]
struct Backoff {
    first: Duration,
    upcoming: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            first: FIRST_DELAY,
            upcoming: FIRST_DELAY,
        }
    }
}

impl Backoff {
    /// The wait before the next connection (the server's own, such as a
    /// `Retry-After`, when it gave one), and doubles the one after it.
    fn next(&mut self, server: Option<Duration>) -> Duration {
        let wait = server.unwrap_or(self.upcoming).min(MAX_DELAY);
        self.upcoming = self.upcoming.saturating_mul(2).min(MAX_DELAY);
        wait
    }

    fn reset(&mut self) {
        self.upcoming = self.first;
    }

    /// A `retry:` field: the first wait from now on. Servers repeat the
    /// same one on every connection, which changes nothing.
    fn server_says(&mut self, retry: Duration) {
        if retry != self.first {
            self.first = retry.min(MAX_DELAY);
            self.upcoming = self.first;
        }
    }
}

/// Failures worth another connection: the server may be restarting.
fn retried(error: &ClientError) -> bool {
    error.is_connection_failure() || matches!(error, ClientError::Timeout { .. })
}

fn body_error(error: super::decode::BodyError) -> String {
    match error {
        super::decode::BodyError::Invalid(reason) => reason,
        super::decode::BodyError::Output(error) => error.to_string(),
    }
}

/// The Server-Sent Events line format, parsed as bytes arrive.
pub mod sse {
    /// The longest line kept while it is incomplete: a stream that sends
    /// more without a line end is not an event stream.
    const MAX_LINE: usize = 16 * 1024 * 1024;

    /// A complete event.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Event {
        /// `event:`, or `message` when it had none.
        pub kind: String,
        /// The `data:` lines, joined by line feeds.
        pub data: String,
        /// The last event ID (`id:`) at the time it was dispatched.
        pub id: Option<String>,
    }

    /// Where the parser is in the stream.
    #[derive(Debug, Default)]
    pub struct Parser {
        line: Vec<u8>,
        /// The last byte was a CR: an LF right after it ends no line.
        after_cr: bool,
        started: bool,
        kind: String,
        data: String,
        has_data: bool,
        /// The event being read has an `id:` line.
        has_id: bool,
        /// The id of the last event that had an `id:` but no data: where
        /// the server says the stream starts.
        pub announced: Option<String>,
        pub last_id: Option<String>,
        /// The latest `retry:` the server sent, in milliseconds.
        pub retry: Option<u64>,
    }

    impl Parser {
        /// Takes the next bytes; returns the events they complete.
        pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Event>, String> {
            let mut events = Vec::new();
            for &byte in bytes {
                match byte {
                    b'\n' if std::mem::take(&mut self.after_cr) => {}
                    b'\r' | b'\n' => {
                        self.after_cr = byte == b'\r';
                        let line = std::mem::take(&mut self.line);
                        if let Some(event) = self.line(&line) {
                            events.push(event);
                        }
                    }
                    _ => {
                        self.after_cr = false;
                        if self.line.len() == MAX_LINE {
                            return Err(format!(
                                "the event stream has a line longer than {} MiB",
                                MAX_LINE >> 20
                            ));
                        }
                        self.line.push(byte);
                    }
                }
            }
            Ok(events)
        }

        /// One complete line.
        fn line(&mut self, line: &[u8]) -> Option<Event> {
            let mut line = String::from_utf8_lossy(line).into_owned();
            if !std::mem::replace(&mut self.started, true) {
                if let Some(rest) = line.strip_prefix('\u{feff}') {
                    line = rest.to_string();
                }
            }
            if line.is_empty() {
                return self.dispatch();
            }
            if line.starts_with(':') {
                return None;
            }
            let (field, value) = match line.split_once(':') {
                Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
                None => (line.as_str(), ""),
            };
            match field {
                "event" => self.kind = value.to_string(),
                "data" => {
                    if self.has_data {
                        self.data.push('\n');
                    }
                    self.data.push_str(value);
                    self.has_data = true;
                }
                "id" if !value.contains('\0') => {
                    self.last_id = Some(value.to_string());
                    self.has_id = true;
                }
                "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                    self.retry = value.parse().ok();
                }
                _ => {}
            }
            None
        }

        /// The empty line: the event so far, unless it had no data.
        fn dispatch(&mut self) -> Option<Event> {
            let kind = std::mem::take(&mut self.kind);
            let data = std::mem::take(&mut self.data);
            let has_id = std::mem::take(&mut self.has_id);
            if !std::mem::take(&mut self.has_data) {
                if has_id {
                    self.announced = self.last_id.clone();
                }
                return None;
            }
            Some(Event {
                kind: if kind.is_empty() {
                    "message".to_string()
                } else {
                    kind
                },
                data,
                id: self.last_id.clone(),
            })
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn events(chunks: &[&[u8]]) -> (Vec<Event>, Parser) {
            let mut parser = Parser::default();
            let mut all = Vec::new();
            for chunk in chunks {
                all.extend(parser.feed(chunk).unwrap());
            }
            (all, parser)
        }

        fn event(kind: &str, data: &str, id: Option<&str>) -> Event {
            Event {
                kind: kind.to_string(),
                data: data.to_string(),
                id: id.map(str::to_string),
            }
        }

        #[test]
        fn lf_crlf_and_cr_all_end_lines() {
            for end in ["\n", "\r\n", "\r"] {
                let text = format!("id: 1{end}event: insert{end}data: {{}}{end}{end}");
                let (all, _) = events(&[text.as_bytes()]);
                assert_eq!(all, [event("insert", "{}", Some("1"))], "{end:?}");
            }
        }

        #[test]
        fn a_crlf_split_between_chunks_is_one_line_end() {
            let (all, _) = events(&[b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n"]);
            assert_eq!(
                all,
                [event("message", "a", None), event("message", "b", None)]
            );
        }

        #[test]
        fn events_complete_byte_by_byte() {
            let text = b"retry: 2000\n: hello\n\nid: 7\nevent: update\ndata: {\"seq\":7}\n\n";
            let mut parser = Parser::default();
            let mut all = Vec::new();
            for byte in text {
                all.extend(parser.feed(&[*byte]).unwrap());
            }
            assert_eq!(all, [event("update", "{\"seq\":7}", Some("7"))]);
            assert_eq!(parser.retry, Some(2000));
        }

        #[test]
        fn data_lines_join_with_line_feeds() {
            let (all, _) = events(&[b"data: one\ndata:two\ndata\ndata:  three\n\n"]);
            assert_eq!(all, [event("message", "one\ntwo\n\n three", None)]);
        }

        #[test]
        fn comments_and_unknown_fields_are_ignored() {
            let (all, parser) = events(&[b": heartbeat\n\nfoo: bar\nretry: soon\n\n"]);
            assert!(all.is_empty());
            assert_eq!(parser.retry, None);
        }

        #[test]
        fn an_id_without_data_dispatches_nothing_but_is_kept() {
            let (all, parser) = events(&[b"id: 5\n\n", b"data: x\n\n"]);
            assert_eq!(parser.last_id.as_deref(), Some("5"));
            // An id with no data names a position, and dispatches nothing.
            assert_eq!(parser.announced.as_deref(), Some("5"));
            assert_eq!(all, [event("message", "x", Some("5"))]);
        }

        #[test]
        fn a_field_without_colon_has_an_empty_value() {
            let (all, _) = events(&[b"event: end\ndata\n\nevent\ndata: y\n\n"]);
            assert_eq!(all, [event("end", "", None), event("message", "y", None)]);
        }

        #[test]
        fn an_unfinished_event_is_not_dispatched() {
            let (all, _) = events(&[b"data: half\n"]);
            assert!(all.is_empty());
        }

        #[test]
        fn a_leading_byte_order_mark_is_dropped() {
            let (all, _) = events(&["\u{feff}data: x\n\n".as_bytes()]);
            assert_eq!(all, [event("message", "x", None)]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_of(text: &str) -> String {
        feed_url(&Url::parse(text).unwrap()).unwrap().to_string()
    }

    #[test]
    fn table_and_row_urls_mean_their_feeds() {
        assert_eq!(
            feed_of(":8080/people"),
            "http://localhost:8080/_changes/people"
        );
        assert_eq!(
            feed_of(":8080/people/3?city=Seoul"),
            "http://localhost:8080/_changes/people/3?city=Seoul"
        );
        assert_eq!(feed_of(":8080"), "http://localhost:8080/_changes");
        assert_eq!(feed_of(":8080/"), "http://localhost:8080/_changes");
        assert_eq!(
            feed_of("https://h/_changes/people"),
            "https://h/_changes/people"
        );
        assert_eq!(feed_of("http://h/_changes"), "http://h/_changes");
        assert_eq!(feed_of("http://h/_changesx"), "http://h/_changes/_changesx");
    }

    #[test]
    fn lines_show_seq_op_target_and_row() {
        let plain = Output::Lines(Style {
            colors: false,
            format: true,
            terminal: true,
            theme: crate::cli::Theme::Auto,
        });
        let data =
            r#"{"seq":12,"table":"people","id":"3","op":"update","row":{"id":3,"name":"kim"}}"#;
        let value: Value = serde_json::from_str(data).unwrap();
        assert_eq!(
            plain.render(data, Some(&value)),
            "  12 update people/3 {\"id\":3,\"name\":\"kim\"}"
        );
        let data = r#"{"seq":13,"table":"people","op":"delete_table"}"#;
        let value: Value = serde_json::from_str(data).unwrap();
        assert_eq!(plain.render(data, Some(&value)), "  13 delete_table people");
        assert_eq!(Output::Ndjson.render(data, Some(&value)), data);
    }

    #[test]
    fn waits_double_to_30_s_and_start_over_after_a_change() {
        let mut backoff = Backoff::default();
        let waits: Vec<u128> = (0..9).map(|_| backoff.next(None).as_millis()).collect();
        assert_eq!(
            waits,
            [250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]
        );
        backoff.reset();
        assert_eq!(backoff.next(None), FIRST_DELAY);
        assert_eq!(
            backoff.next(Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        backoff.server_says(Duration::from_secs(2));
        assert_eq!(backoff.next(None), Duration::from_secs(2));
        assert_eq!(backoff.next(None), Duration::from_secs(4));
        // The same `retry:` again on the next connection: the waits go on.
        backoff.server_says(Duration::from_secs(2));
        assert_eq!(backoff.next(None), Duration::from_secs(8));
        backoff.reset();
        assert_eq!(backoff.next(None), Duration::from_secs(2));
    }

    #[test]
    fn body_items_and_since_items_are_refused() {
        for text in ["name=kim", "age:=3", "@people.csv", "since==4"] {
            let items = [Item::parse(text).unwrap()];
            let error = check_items(&items).unwrap_err().to_string();
            assert!(
                error.contains("--since") || error.contains("no body"),
                "{error}"
            );
        }
        let items = [
            Item::parse("city==Seoul").unwrap(),
            Item::parse("X-A:b").unwrap(),
        ];
        assert!(check_items(&items).is_ok());
    }

    #[test]
    fn reconnects_resume_from_the_last_change() {
        let url = Url::parse(":8080/_changes/people").unwrap();
        let request = feed_request(url, &[Item::parse("city==Seoul").unwrap()]).unwrap();
        let mut feed = Feed::new(
            request,
            Tls::new(&Default::default()).unwrap(),
            Output::Ndjson,
        );
        assert_eq!(
            feed.request_at(true).url.target(),
            "/_changes/people?city=Seoul&since=now"
        );
        feed.position = Some(7);
        let again = feed.request_at(false);
        assert_eq!(again.url.target(), "/_changes/people?city=Seoul");
        assert_eq!(
            again.header(&header::HeaderName::from_static("last-event-id")),
            Some(&HeaderValue::from(7u64))
        );
        assert_eq!(
            again.header(&header::ACCEPT),
            Some(&HeaderValue::from_static("text/event-stream"))
        );
    }
}
