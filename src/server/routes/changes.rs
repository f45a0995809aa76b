//! The change feed over HTTP: `/_changes`, `/_changes/<t>` and
//! `/_changes/<t>/<id>`.
//!
//! Four styles, by `feed=` or by `Accept`: JSON (`{"results": […],
//! "last_seq": N}`, at once), long-poll (the same, once at least one change
//! came or `timeout` passed), NDJSON (one change per line, continuous) and
//! Server-Sent Events (`id:` the sequence number, `event:` the op, resumed
//! from `Last-Event-ID`). A position the feed no longer covers is 410 Gone
//! with the oldest position kept. A stream ends with a final event saying
//! why (`slow`, `shutdown`, `limit`) before the server lets it go.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::mpsc;

use super::{options, Answer, AppState};
use crate::feed::render::{Selector, TypesOf};
use crate::feed::{Feed, Gone, Next, Read, Subscription};
use crate::server::hangup::{self, Hangup};
use crate::server::problem::Problem;
use crate::store::{self, validate_table_name};

const ALLOW_FEED: &str = "GET, HEAD, OPTIONS";
/// Changes a JSON answer holds when no `limit` is given.
const DEFAULT_LIMIT: usize = 1000;
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);
const DEFAULT_POLL: Duration = Duration::from_secs(60);
/// Changes read from the feed at a time.
const READ: usize = 256;
/// What a browser's EventSource waits before it reconnects, in ms.
const RETRY_MS: u32 = 2000;

/// Open feed streams, for `--max-subscribers` and for shutdown.
#[derive(Debug)]
pub struct Streams {
    open: AtomicUsize,
    /// Long polls waiting for a change.
    waiting: AtomicUsize,
    max: usize,
    /// The longest a long poll may wait (under the request time limit).
    longest_poll: Duration,
}

impl Streams {
    pub fn new(max: usize, request_timeout: Duration) -> Streams {
        Streams {
            open: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            max,
            longest_poll: request_timeout
                .saturating_sub(Duration::from_secs(1))
                .max(Duration::from_millis(100)),
        }
    }

    /// Feed requests open now: streams and long polls.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Long polls waiting now (their answer is not sent yet).
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    fn enter(self: &Arc<Streams>) -> Result<Slot, Problem> {
        let before = self.open.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(self.clone());
        if before >= self.max {
            return Err(Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                format!(
                    "{} change-feed subscribers are connected, the most this server takes \
                     (--max-subscribers); try again shortly",
                    self.max
                ),
            ));
        }
        Ok(slot)
    }
}

/// One open feed request; counted until dropped.
struct Slot(Arc<Streams>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Waiting<'a>(&'a Streams);

impl<'a> Waiting<'a> {
    fn new(streams: &'a Streams) -> Waiting<'a> {
        streams.waiting.fetch_add(1, Ordering::AcqRel);
        Waiting(streams)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    Json,
    LongPoll,
    Ndjson,
    Sse,
}

#[derive(Debug)]
enum Since {
    Seq(u64),
    Now,
}

/// A feed request's own parameters; the rest are the selector's.
#[derive(Debug, Default)]
struct Params {
    since: Option<Since>,
    limit: Option<usize>,
    style: Option<Style>,
    timeout: Option<Duration>,
    heartbeat: Option<Duration>,
    /// Filters and `_fields`, raw.
    rest: String,
}

fn params(raw: &str) -> Result<Params, Problem> {
    let mut params = Params::default();
    let mut rest = form_urlencoded::Serializer::new(String::new());
    let bad = |name: &str, value: &str, expected: &str| {
        Problem::bad_request(format!("{name}={value:?}: expected {expected}"))
    };
    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        let millis = |name: &str| {
            value
                .trim()
                .parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| bad(name, &value, "a number of milliseconds"))
        };
        match &*key {
            "since" => {
                params.since = Some(match value.trim() {
                    "now" => Since::Now,
                    text => Since::Seq(text.parse().map_err(|_| {
                        bad("since", &value, "a sequence number (0 or more) or now")
                    })?),
                })
            }
            "limit" => {
                params.limit = Some(
                    value
                        .trim()
                        .parse()
                        .ok()
                        .filter(|&n: &usize| n > 0)
                        .ok_or_else(|| bad("limit", &value, "a number of changes, 1 or more"))?,
                )
            }
            "feed" => {
                params.style = Some(match value.trim() {
                    "normal" | "json" => Style::Json,
                    "longpoll" => Style::LongPoll,
                    "continuous" | "ndjson" => Style::Ndjson,
                    "eventsource" | "sse" => Style::Sse,
                    _ => {
                        return Err(bad(
                            "feed",
                            &value,
                            "normal, longpoll, continuous (NDJSON) or eventsource (SSE)",
                        ))
                    }
                })
            }
            "timeout" => params.timeout = Some(millis("timeout")?),
            "heartbeat" => params.heartbeat = Some(millis("heartbeat")?),
            _ => {
                rest.append_pair(&key, &value);
            }
        }
    }
    params.rest = rest.finish();
    Ok(params)
}

/// The style `Accept` asks for when `feed=` does not say.
fn style_of(headers: &HeaderMap) -> Style {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let wants = |media: &str| {
        accept
            .split(',')
            .any(|part| part.split(';').next().is_some_and(|m| m.trim() == media))
    };
    if wants("text/event-stream") {
        Style::Sse
    } else if wants("application/x-ndjson") {
        Style::Ndjson
    } else {
        Style::Json
    }
}

pub async fn all_changes(State(state): State<AppState>, request: Request) -> Answer {
    answer(state, None, None, request).await
}

pub async fn table_changes(
    State(state): State<AppState>,
    Path(table): Path<String>,
    request: Request,
) -> Answer {
    answer(state, Some(table), None, request).await
}

pub async fn row_changes(
    State(state): State<AppState>,
    Path((table, id)): Path<(String, String)>,
    request: Request,
) -> Answer {
    answer(state, Some(table), Some(id), request).await
}

async fn answer(
    state: AppState,
    table: Option<String>,
    id: Option<String>,
    request: Request,
) -> Answer {
    match *request.method() {
        Method::GET | Method::HEAD => {}
        Method::OPTIONS => return Ok(options(ALLOW_FEED)),
        ref other => return Err(super::not_allowed(other, ALLOW_FEED)),
    }
    if let Some(table) = &table {
        validate_table_name(table).map_err(Problem::from)?;
    }
    let params = params(request.uri().query().unwrap_or(""))?;
    let style = params.style.unwrap_or_else(|| style_of(request.headers()));
    let feed = state.store.feed().clone();
    let since = match last_event_id(request.headers())? {
        Some(seq) => seq,
        None => match params.since {
            Some(Since::Seq(seq)) => seq,
            Some(Since::Now) => feed.last_seq(),
            None => feed.start(),
        },
    };
    let columns = match (&table, params.rest.is_empty()) {
        (Some(table), false) => match state.store.select(table, "_limit=0").await {
            Ok(selected) => Some(selected.head.columns),
            Err(store::Error::NoTable(_)) => None,
            Err(err) => return Err(err.into()),
        },
        _ => None,
    };
    let store = state.store.clone();
    let types = TypesOf(Arc::new(move |table: &str| store.types_now(table)));
    let selector = Selector::new(table, id, params.rest.clone(), columns)
        .map_err(Problem::bad_request)?
        .typed(types);
    feed.check(since, selector.table()).map_err(gone)?;
    let head = request.method() == Method::HEAD;
    match style {
        Style::Json => Ok(json_answer(collect(&feed, selector, since, params.limit)?)),
        Style::LongPoll => {
            let _slot = state.streams.enter()?;
            let wait = params
                .timeout
                .unwrap_or(DEFAULT_POLL)
                .min(state.streams.longest_poll);
            let mut collected = collect(&feed, selector, since, params.limit)?;
            if collected.results.is_empty() && !head {
                let _waiting = Waiting::new(&state.streams);
                let watch = Hangup::watch();
                collected = poll(&feed, collected, wait, params.limit, watch.as_ref()).await?;
            }
            Ok(json_answer(collected))
        }
        Style::Ndjson | Style::Sse => {
            let slot = state.streams.enter()?;
            let (content_type, framing) = match style {
                Style::Sse => ("text/event-stream", Framing::Sse),
                _ => ("application/x-ndjson", Framing::Ndjson),
            };
            let mut response = if head {
                Response::new(Body::empty())
            } else {
                let subscription = feed.subscribe(since, selector.table()).map_err(gone)?;
                let heartbeat = params.heartbeat.unwrap_or(DEFAULT_HEARTBEAT);
                let stream = Stream {
                    subscription,
                    selector,
                    framing,
                    heartbeat,
                    limit: params.limit,
                    watch: Hangup::watch(),
                    _slot: slot,
                };
                Response::new(stream.start())
            };
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            // Tells buffering proxies to pass each event on as it comes.
            headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
            response.extensions_mut().insert(Live);
            Ok(response)
        }
    }
}

/// Marks a response that must reach the client as it is produced: never
/// compressed (a compressor holds bytes back).
#[derive(Clone, Copy, Debug)]
pub struct Live;

fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, Problem> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        Problem::bad_request(format!(
            "Last-Event-ID: expected the sequence number of the last change received, got {text:?}"
        ))
    })
}

/// 410: the changes after a position were let go.
fn gone(gone: Gone) -> Problem {
    let mut problem = Problem::new(
        StatusCode::GONE,
        "changes-gone",
        format!(
            "changes after {} are no longer kept (the oldest kept is {}): reload the table, \
             then follow the feed from since={}",
            gone.since, gone.oldest, gone.last
        ),
    );
    problem.members = vec![
        ("oldest_seq", json!(gone.oldest)),
        ("last_seq", json!(gone.last)),
    ];
    problem
}

/// A JSON answer being gathered.
struct Collected {
    selector: Selector,
    /// Each result, as JSON.
    results: Vec<u8>,
    count: usize,
    /// The position the answer covers: every change up to it was looked at.
    last: u64,
}

fn collect(
    feed: &Feed,
    selector: Selector,
    since: u64,
    limit: Option<usize>,
) -> Result<Collected, Problem> {
    let mut collected = Collected {
        selector,
        results: Vec::new(),
        count: 0,
        last: since,
    };
    gather(feed, &mut collected, limit)?;
    Ok(collected)
}

/// Adds the changes after `collected.last` to the answer, up to the limit.
fn gather(feed: &Feed, collected: &mut Collected, limit: Option<usize>) -> Result<(), Problem> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    loop {
        let read = feed
            .read(collected.last, READ, collected.selector.table())
            .map_err(gone)?;
        if read.batches.is_empty() {
            collected.last = collected.last.max(read.upto);
            return Ok(());
        }
        let mut one = Vec::new();
        for batch in &read.batches {
            for change in batch.after(collected.last) {
                if collected.count >= limit {
                    return Ok(());
                }
                one.clear();
                if collected.selector.render(&change, &mut one) {
                    if collected.count > 0 {
                        collected.results.push(b',');
                    }
                    collected.results.extend_from_slice(&one);
                    collected.count += 1;
                }
                collected.last = change.seq;
            }
        }
        collected.last = collected.last.max(read.upto);
    }
}

/// Waits for a change the selector wants, or for `wait` to pass, or for
/// the client to close its side (it has left, or it will read the answer
/// now: either way waiting longer serves no one).
async fn poll(
    feed: &Arc<Feed>,
    mut collected: Collected,
    wait: Duration,
    limit: Option<usize>,
    watch: Option<&Hangup>,
) -> Result<Collected, Problem> {
    let mut subscription = feed
        .subscribe(collected.last, collected.selector.table())
        .map_err(gone)?;
    let deadline = tokio::time::Instant::now() + wait;
    while collected.count == 0 {
        tokio::select! {
            next = subscription.next(READ) => match next {
                Next::Batches(_) => {
                    gather(feed, &mut collected, limit)?;
                    subscription.advance(collected.last);
                }
                Next::Gone(g) => return Err(gone(g)),
                Next::Closed => break,
            },
            () = tokio::time::sleep_until(deadline) => break,
            () = hangup::sending_closed(watch) => break,
        }
    }
    Ok(collected)
}

fn json_answer(collected: Collected) -> Response {
    let mut body = Vec::with_capacity(collected.results.len() + 40);
    body.extend_from_slice(b"{\"results\":[");
    body.extend_from_slice(&collected.results);
    body.extend_from_slice(format!("],\"last_seq\":{}}}\n", collected.last).as_bytes());
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

#[derive(Clone, Copy, Debug)]
enum Framing {
    Ndjson,
    Sse,
}

impl Framing {
    fn change(self, seq: u64, op: &str, json: &[u8], out: &mut Vec<u8>) {
        match self {
            Framing::Ndjson => {
                out.extend_from_slice(json);
                out.push(b'\n');
            }
            Framing::Sse => {
                out.extend_from_slice(format!("id: {seq}\nevent: {op}\ndata: ").as_bytes());
                out.extend_from_slice(json);
                out.extend_from_slice(b"\n\n");
            }
        }
    }

    fn heartbeat(self) -> &'static [u8] {
        match self {
            Framing::Ndjson => b"\n",
            Framing::Sse => b": heartbeat\n\n",
        }
    }

    fn end(self, reason: &str, detail: &str, last: u64) -> Vec<u8> {
        let json = json!({"reason": reason, "detail": detail, "last_seq": last});
        match self {
            Framing::Ndjson => format!("{}\n", json!({"end": json})).into_bytes(),
            Framing::Sse => format!("event: end\ndata: {json}\n\n").into_bytes(),
        }
    }
}

/// One subscriber's stream, produced by a task of its own into the body.
struct Stream {
    subscription: Subscription,
    selector: Selector,
    framing: Framing,
    heartbeat: Duration,
    limit: Option<usize>,
    /// The client's connection, to end the stream (and free its slot) as
    /// soon as the client leaves, not at the next write after it left.
    watch: Option<Hangup>,
    _slot: Slot,
}

type Chunk = Result<Bytes, std::io::Error>;

impl Stream {
    fn start(self) -> Body {
        // A few chunks in flight: a subscriber that stops reading holds
        // its position in the feed, not a growing queue.
        let (tx, mut rx) = mpsc::channel::<Chunk>(4);
        tokio::spawn(self.run(tx));
        Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
    }

    async fn run(mut self, tx: mpsc::Sender<Chunk>) {
        let mut sent = 0usize;
        let opening = match self.framing {
            // `id:` alone sets where a client resumes (EventSource's last
            // event ID) before any change came, and dispatches nothing.
            Framing::Sse => format!(
                "retry: {RETRY_MS}\nid: {}\n: csvd change feed\n\n",
                self.subscription.position()
            )
            .into_bytes(),
            // A stream's headers go at once; NDJSON has no comment, so the
            // first heartbeat is a blank line.
            Framing::Ndjson => b"\n".to_vec(),
        };
        if tx.send(Ok(Bytes::from(opening))).await.is_err() {
            return;
        }
        // One timer for the stream's life, not one per event: a heartbeat
        // every so often, busy or not (harmless, and cheap to keep).
        let mut beats = (!self.heartbeat.is_zero()).then(|| {
            let mut beats = tokio::time::interval_at(
                tokio::time::Instant::now() + self.heartbeat,
                self.heartbeat,
            );
            beats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            beats
        });
        // Set once the client closed its sending side: a heartbeat then
        // goes at once, which a client that left answers with a reset.
        let mut probed = false;
        loop {
            let silence = async {
                match beats.as_mut() {
                    Some(beats) => {
                        beats.tick().await;
                    }
                    None => std::future::pending().await,
                }
            };
            let chunk = tokio::select! {
                next = self.subscription.next(READ) => match next {
                    Next::Batches(batches) => {
                        let (chunk, done) = self.render(&batches, &mut sent);
                        if done {
                            let end = self.framing.end("limit", "the limit of changes was sent", self.subscription.position());
                            let mut chunk = chunk;
                            chunk.extend_from_slice(&end);
                            let _ = tx.send(Ok(Bytes::from(chunk))).await;
                            return;
                        }
                        if chunk.is_empty() {
                            continue;
                        }
                        chunk
                    }
                    Next::Gone(gone) => {
                        let detail = format!(
                            "this subscriber fell behind what the server keeps ({}); \
                             reload the table and follow again from since={}",
                            gone, gone.last
                        );
                        let end = self.framing.end("slow", &detail, self.subscription.position());
                        let _ = tx.send(Ok(Bytes::from(end))).await;
                        return;
                    }
                    Next::Closed => {
                        let end = self.framing.end(
                            "shutdown",
                            "the server is shutting down; reconnect to resume",
                            self.subscription.position(),
                        );
                        let _ = tx.send(Ok(Bytes::from(end))).await;
                        return;
                    }
                },
                () = silence => self.framing.heartbeat().to_vec(),
                () = tx.closed() => return,
                () = hangup::sending_closed(self.watch.as_ref()), if !probed => {
                    probed = true;
                    self.framing.heartbeat().to_vec()
                }
                () = hangup::gone(self.watch.as_ref()), if probed => return,
            };
            if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                return;
            }
        }
    }

    /// The changes of `read` this subscriber wants, framed; advances its
    /// position past every change looked at. `done` once the limit was
    /// reached.
    fn render(&mut self, read: &Read, sent: &mut usize) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let mut one = Vec::new();
        let mut looked = 0;
        for batch in &read.batches {
            for change in batch.after(self.subscription.position()) {
                // A chunk at a time: a subscriber's position moves only as
                // fast as it reads, so one that lags falls behind visibly.
                if looked == READ {
                    return (out, false);
                }
                looked += 1;
                one.clear();
                if self.selector.render(&change, &mut one) {
                    self.framing
                        .change(change.seq, change.op.name(), &one, &mut out);
                    *sent += 1;
                }
                self.subscription.advance(change.seq);
                if self.limit.is_some_and(|limit| *sent >= limit) {
                    return (out, true);
                }
            }
        }
        self.subscription.advance(read.upto);
        (out, false)
    }
}
