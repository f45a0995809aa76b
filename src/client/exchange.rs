//! Sending a prepared request and printing the exchange: the part one-shot
//! commands and the shell share.
//!
//! A compressed response body is decoded on its way to the printer
//! ([`decode`](super::decode)), chunk by chunk.
//!
//! A [`Client`] keeps one keep-alive connection and reuses it while it is
//! open and the requests go to the same server. A request that fails on a
//! reused connection before any byte of an answer arrived (the server had
//! closed it while idle) is sent once more on a fresh connection.

use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Full};
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, Response, StatusCode, Version};
use indicatif::ProgressBar;

use super::connection::{http_error, Connection, RequestBody};
use super::decode::{BodyError, Codings, Decoder};
use super::error::ClientError;
use super::print::Printer;
use super::proxy::{Proxies, Proxy};
use super::request::{Payload, Prepared};
use super::tap::Tap;
use super::tls::{is_tls_record, Tls};
use super::upload::{Parts, Tally, Upload};

/// Sends requests, reusing its connection when it can.
pub struct Client {
    connection: Option<Connection>,
    pub timeout: Option<Duration>,
    tls: Tls,
    /// The proxies requests go through (the environment's unless the
    /// command says otherwise).
    pub proxies: Proxies,
    /// Print nothing of a redirect's answer (`--follow` without `-v`).
    pub quiet_redirects: bool,
    /// The last `@file` body sent and answered, for the summary line.
    pub uploaded: Option<Uploaded>,
    /// Print nothing of a 502, 503 or 504 answer: it will be asked again
    /// (`--retry`).
    pub quiet_retryable: bool,
    /// The last exchange got the head of an answer (so a failure after it
    /// is not one of connecting).
    pub answered: bool,
}

/// What came back, besides what was printed.
pub struct Answer {
    pub status: StatusCode,
    pub location: Option<String>,
    /// The body was left unread: the connection cannot be used again.
    unread: bool,
    /// A 502, 503 or 504 left unprinted for `--retry`.
    pub retryable: bool,
    /// The answer's `Retry-After`, from now.
    pub retry_after: Option<Duration>,
    /// Its `Set-Cookie` headers.
    pub set_cookies: Vec<String>,
}

/// A file body that went whole and was answered.
pub struct Uploaded {
    pub tally: Tally,
    /// The server's count of the rows, when its answer gave one
    /// (`X-Total-Count`).
    pub server_rows: Option<u64>,
    /// From the first byte sent to the answer's head.
    pub elapsed: Duration,
}

/// Why an attempt failed.
enum Failure {
    /// Nothing came back on a reused connection: the server most likely
    /// closed it while idle, and the request can be sent again.
    Stale(ClientError),
    Fatal(ClientError),
}

impl Client {
    pub fn new(timeout: Option<Duration>, tls: Tls) -> Client {
        Client {
            connection: None,
            timeout,
            tls,
            proxies: Proxies::from_env(),
            quiet_redirects: false,
            uploaded: None,
            quiet_retryable: false,
            answered: false,
        }
    }

    /// Sends the request, prints the exchange and returns the status.
    pub async fn execute(
        &mut self,
        prepared: &Prepared,
        printer: &mut Printer,
    ) -> Result<StatusCode, ClientError> {
        self.exchange(prepared, printer)
            .await
            .map(|answer| answer.status)
    }

    /// As [`Client::execute`], with the `Location` of the answer.
    pub async fn exchange(
        &mut self,
        prepared: &Prepared,
        printer: &mut Printer,
    ) -> Result<Answer, ClientError> {
        printer.begin();
        self.uploaded = None;
        self.answered = false;
        let answered = self.attempt_twice(prepared, printer).await;
        if answered.as_ref().is_ok_and(|answer| answer.unread) {
            self.connection = None;
        }
        answered
    }

    async fn attempt_twice(
        &mut self,
        prepared: &Prepared,
        printer: &mut Printer,
    ) -> Result<Answer, ClientError> {
        match self.attempt(prepared, printer).await {
            Ok(answer) => Ok(answer),
            Err(Failure::Stale(_)) => {
                self.connection = None;
                self.attempt(prepared, printer)
                    .await
                    .map_err(|failure| match failure {
                        Failure::Stale(error) | Failure::Fatal(error) => error,
                    })
            }
            Err(Failure::Fatal(error)) => {
                self.connection = None;
                Err(error)
            }
        }
    }

    /// Opens a connection for `url` unless the current one serves it.
    async fn connection_for(
        &mut self,
        prepared: &Prepared,
    ) -> Result<&mut Connection, ClientError> {
        let proxy = self.proxies.for_url(&prepared.url)?;
        let reusable = self
            .connection
            .as_ref()
            .is_some_and(|connection| connection.serves(&prepared.url, proxy));
        if !reusable {
            self.connection = None;
        }
        match &mut self.connection {
            Some(connection) => Ok(connection),
            slot => {
                let opened =
                    Connection::open(&prepared.url, self.timeout, &self.tls, proxy).await?;
                Ok(slot.insert(opened))
            }
        }
    }

    async fn attempt(
        &mut self,
        prepared: &Prepared,
        printer: &mut Printer,
    ) -> Result<Answer, Failure> {
        let timeout = self.timeout;
        let connection = self
            .connection_for(prepared)
            .await
            .map_err(Failure::Fatal)?;
        let reused = connection.reused();
        let forward = connection.forwards_to().cloned();
        let (request, progress, tally) = build(prepared, forward.as_ref())
            .await
            .map_err(Failure::Fatal)?;
        let mut request_head = connection.tap().start();
        let mut request_printed = !printer.sections.shows_request();
        let tap = connection.tap().clone();
        let peer = connection.peer().to_string();
        let content_type = prepared
            .header(&CONTENT_TYPE)
            .and_then(|value| value.to_str().ok());

        let mut response = std::pin::pin!(connection.send(request));
        let answered = loop {
            tokio::select! {
                head = &mut request_head, if !request_printed => {
                    request_printed = true;
                    if let Ok(head) = head {
                        print_request(printer, &head, prepared, content_type).map_err(Failure::Fatal)?;
                    }
                }
                answered = quiet_for(&tap, timeout, "waiting for the response", &mut response) => break answered,
            }
        };
        if let Some(bar) = progress {
            bar.finish_and_clear();
        }
        if !request_printed {
            if let Ok(head) = request_head.try_recv() {
                print_request(printer, &head, prepared, content_type).map_err(Failure::Fatal)?;
            }
        }
        let response = match answered.map_err(Failure::Fatal)? {
            Ok(response) => response,
            Err(error) if reused && !tap.received_any() => {
                return Err(Failure::Stale(http_error(&peer, &error)))
            }
            Err(_) if !prepared.url.is_https() && is_tls_record(&tap.received_start(2)) => {
                return Err(Failure::Fatal(ClientError::Http {
                    addr: peer,
                    reason: "it answered in TLS: use https://".to_string(),
                }))
            }
            Err(error) => return Err(Failure::Fatal(http_error(&peer, &error))),
        };

        let status = response.status();
        self.answered = true;
        if let Some(tally) = tally.and_then(|tally| tally.lock().ok().map(|tally| tally.clone())) {
            let server_rows = response
                .headers()
                .get("x-total-count")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse().ok());
            self.uploaded = Some(Uploaded {
                elapsed: tally.started.elapsed(),
                tally,
                server_rows,
            });
        }
        let location = response
            .headers()
            .get(hyper::header::LOCATION)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        let retryable = self.quiet_retryable && is_retryable(status);
        let skipped = retryable
            || self.quiet_redirects && super::redirect::is_redirect(status) && location.is_some();
        let answer = Answer {
            status,
            location,
            unread: skipped,
            retryable,
            retry_after: retry_after(response.headers()),
            set_cookies: response
                .headers()
                .get_all(hyper::header::SET_COOKIE)
                .iter()
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
                .collect(),
        };
        if skipped {
            return Ok(answer);
        }
        let head = match tap.response_head() {
            head if head.is_empty() => reconstructed_head(&response),
            head => head,
        };
        let printed = print_response(
            printer,
            &head,
            response,
            &prepared.method,
            &tap,
            timeout,
            &peer,
        )
        .await;
        match printed {
            Err(Failure::Fatal(ClientError::Output { error }))
                if error.kind() == io::ErrorKind::BrokenPipe =>
            {
                Ok(answer)
            }
            Err(failure) => Err(failure),
            Ok(()) => Ok(answer),
        }
    }
}

/// 502, 503 and 504: a server in the way, or one that says to come back.
pub fn is_retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 502..=504)
}

/// `Retry-After`: seconds, or an HTTP date (none when it is past).
pub(super) fn retry_after(headers: &hyper::HeaderMap) -> Option<Duration> {
    let text = headers
        .get(hyper::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(text).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

fn print_request(
    printer: &mut Printer,
    head: &[u8],
    prepared: &Prepared,
    content_type: Option<&str>,
) -> Result<(), ClientError> {
    printer
        .request_head(head)
        .and_then(|()| printer.request_body(&prepared.payload, content_type))
        .map_err(|error| ClientError::Output { error })
}

async fn print_response(
    printer: &mut Printer,
    head: &[u8],
    response: Response<hyper::body::Incoming>,
    method: &Method,
    tap: &Tap,
    timeout: Option<Duration>,
    peer: &str,
) -> Result<(), Failure> {
    let output = |error| Failure::Fatal(ClientError::Output { error });
    printer.response_head(head).map_err(output)?;
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    if let Some(download) = printer.download.as_mut() {
        let status = response.status();
        let wanted = *method != Method::HEAD
            && download
                .start(status, response.headers())
                .map_err(Failure::Fatal)?;
        if wanted {
            if printer.sections.response_head {
                // The head, then an empty line, then the bar.
                complain!();
            }
            let codings = codings_of(response.headers());
            let read = read_body(response, &codings, &mut *download, tap, timeout, peer).await;
            if let Some(error) = download.failed.take() {
                return Err(Failure::Fatal(error));
            }
            if let Err(Failure::Fatal(error) | Failure::Stale(error)) = read {
                return Err(Failure::Fatal(download.interrupted(error)));
            }
        }
        download.finish().map_err(Failure::Fatal)?;
        return printer.end().map_err(output);
    }
    if *method == Method::HEAD || !printer.sections.response_body {
        return printer.end().map_err(output);
    }
    let codings = codings_of(response.headers());
    printer.start_body(content_type.as_deref());
    read_body(response, &codings, BodyOut(printer), tap, timeout, peer).await?;
    printer.finish_body().map_err(output)
}

/// The codings to undo, or none (with a warning) when one is unknown.
fn codings_of(headers: &hyper::HeaderMap) -> Vec<super::decode::Coding> {
    match Codings::of(headers) {
        Codings::Known(codings) => codings,
        Codings::Unknown(coding) => {
            complain!(
                "csvd: warning: the body is encoded with `{coding}`, which csvd does not \
                 decode: it is shown as received"
            );
            Vec::new()
        }
    }
}

/// Reads the body, decoded, into `out`.
async fn read_body(
    response: Response<hyper::body::Incoming>,
    codings: &[super::decode::Coding],
    out: impl io::Write,
    tap: &Tap,
    timeout: Option<Duration>,
    peer: &str,
) -> Result<(), Failure> {
    let output = |error| Failure::Fatal(ClientError::Output { error });
    let failed = |error: BodyError| match error {
        BodyError::Output(error) => output(error),
        BodyError::Invalid(reason) => Failure::Fatal(ClientError::Http {
            addr: peer.to_string(),
            reason,
        }),
    };
    let mut decoder = Decoder::new(codings, out);
    let mut body = response.into_body();
    while let Some(frame) = quiet_for(tap, timeout, "waiting for the response body", body.frame())
        .await
        .map_err(Failure::Fatal)?
    {
        let frame = frame.map_err(|error| Failure::Fatal(http_error(peer, &error)))?;
        if let Ok(data) = frame.into_data() {
            decoder.push(&data).map_err(failed)?;
        }
    }
    decoder.finish().map_err(failed)
}

/// The printer as the end of the decoders' chain.
struct BodyOut<'a>(&'a mut Printer);

impl io::Write for BodyOut<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.body_chunk(bytes)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs `future` until it is done, or until the connection has been
/// silent (nothing sent, nothing received) for `timeout`.
async fn quiet_for<T>(
    tap: &Tap,
    timeout: Option<Duration>,
    doing: &'static str,
    future: impl Future<Output = T>,
) -> Result<T, ClientError> {
    let Some(after) = timeout else {
        return Ok(future.await);
    };
    let mut future = std::pin::pin!(future);
    loop {
        let left = after.saturating_sub(tap.idle_for());
        if left.is_zero() {
            return Err(ClientError::Timeout { after, doing });
        }
        if let Ok(done) = tokio::time::timeout(left, &mut future).await {
            return Ok(done);
        }
    }
}

/// What [`build`] makes: the request, and the progress bar and tally of
/// its upload if it has one.
type Built = (
    Request<RequestBody>,
    Option<ProgressBar>,
    Option<Arc<Mutex<Tally>>>,
);

/// The hyper request for a prepared one; files are opened anew each time.
/// Handed to a proxy, its target is the whole URL and the proxy's
/// credentials go with it.
pub(super) async fn build(
    prepared: &Prepared,
    proxy: Option<&Proxy>,
) -> Result<Built, ClientError> {
    let mut progress = None;
    let mut tally = None;
    let body: RequestBody = match &prepared.payload {
        Payload::Empty => Empty::new().map_err(|never| match never {}).boxed(),
        Payload::Bytes(bytes) => Full::new(bytes.clone())
            .map_err(|never| match never {})
            .boxed(),
        Payload::File { path, len } => {
            let content_type = prepared
                .header(&CONTENT_TYPE)
                .and_then(|value| value.to_str().ok());
            let upload = Upload::open(path, *len, content_type)
                .await
                .map_err(|error| ClientError::file(path, error))?;
            progress = Some(upload.progress());
            tally = Some(upload.tally());
            upload.boxed()
        }
        Payload::Parts { parts, .. } => {
            let parts = Parts::open(parts)
                .await
                .map_err(|(path, error)| ClientError::file(path, error))?;
            progress = Some(parts.progress());
            parts.boxed()
        }
    };
    let target = match proxy {
        Some(_) => prepared.url.to_string(),
        None => prepared.url.target().to_string(),
    };
    let mut request = Request::builder()
        .method(prepared.method.clone())
        .uri(target)
        .version(Version::HTTP_11);
    for (name, value) in &prepared.headers {
        request = request.header(name, value);
    }
    if let Some(authorization) = proxy.and_then(|proxy| proxy.authorization.as_ref()) {
        request = request.header(hyper::header::PROXY_AUTHORIZATION, authorization);
    }
    let request = request
        .body(body)
        .map_err(|error| ClientError::url(&prepared.url.to_string(), error.to_string()))?;
    Ok((request, progress, tally))
}

/// A head built from the parsed response, for the rare head too large to
/// have been recorded.
fn reconstructed_head<B>(response: &Response<B>) -> Vec<u8> {
    let status = response.status();
    let mut head = format!(
        "{:?} {} {}\r\n",
        response.version(),
        status.as_str(),
        status.canonical_reason().unwrap_or("")
    );
    for (name, value) in response.headers() {
        head.push_str(&format!(
            "{name}: {}\r\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    head.push_str("\r\n");
    head.into_bytes()
}
