//! One HTTP/1.1 connection to one server: resolve, connect, speak TLS for
//! `https://`, hand the stream to hyper, and keep the connection for the
//! next request (keep-alive) until the server closes it. Through a proxy,
//! the connection is to the proxy: `http://` requests are handed to it,
//! `https://` ones go through a `CONNECT` tunnel ([`proxy`](super::proxy)).
//!
//! Every failure becomes a [`ClientError`] that names the host and what
//! went wrong in words; hyper's own error text never reaches a person
//! without that context.

use std::future::Future;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::error::{describe_io, ClientError};
use super::proxy::Proxy;
use super::tap::{Tap, TappedStream};
use super::tls::Tls;
use super::url::Url;

/// Any request body: bytes in memory or a file being streamed.
pub type RequestBody = BoxBody<Bytes, io::Error>;

/// An open connection and what it has recorded.
pub struct Connection {
    sender: SendRequest<RequestBody>,
    tap: Tap,
    /// `host:port`, for messages.
    peer: String,
    origin: Url,
    /// The proxy it goes through, if any.
    proxy: Option<Proxy>,
    /// Whether a response has already come back on it: only a reused
    /// connection can have been closed by the server while idle.
    reused: bool,
}

impl Connection {
    /// Connects (to the proxy, when there is one; through its tunnel for
    /// `https://`), runs the TLS handshake for `https://`, and hands the
    /// stream to hyper.
    pub async fn open(
        url: &Url,
        timeout: Option<Duration>,
        tls: &Tls,
        proxy: Option<&Proxy>,
    ) -> Result<Connection, ClientError> {
        let (mut stream, peer) = match proxy {
            None => connect(url, timeout).await?,
            Some(proxy) => {
                let (stream, _) = connect(&proxy.url, timeout)
                    .await
                    .map_err(|error| unreachable_proxy(proxy, error))?;
                let peer = format!("{} (through proxy {})", url.host_and_port(), proxy.addr());
                (stream, peer)
            }
        };
        // Requests are small and interactive: send them now, not in 40 ms.
        let _ = stream.set_nodelay(true);
        if let (Some(proxy), true) = (proxy, url.is_https()) {
            proxy.tunnel(&mut stream, url, timeout).await?;
        }
        let tap = Tap::default();
        let sender = if url.is_https() {
            let stream = tls.handshake(stream, url, timeout).await?;
            start_http(stream, &tap, &peer).await?
        } else {
            start_http(stream, &tap, &peer).await?
        };
        Ok(Connection {
            sender,
            tap,
            peer,
            origin: url.clone(),
            proxy: proxy.cloned(),
            reused: false,
        })
    }

    /// Whether the connection can take another request to `url` (through
    /// `proxy`).
    pub fn serves(&self, url: &Url, proxy: Option<&Proxy>) -> bool {
        self.origin.same_origin(url) && self.proxy.as_ref() == proxy && !self.sender.is_closed()
    }

    /// The proxy plain `http://` requests are handed to on this
    /// connection (their target in absolute form); `None` when they go to
    /// the server itself, or inside a tunnel.
    pub fn forwards_to(&self) -> Option<&Proxy> {
        self.proxy.as_ref().filter(|_| !self.origin.is_https())
    }

    pub fn reused(&self) -> bool {
        self.reused
    }

    pub fn tap(&self) -> &Tap {
        &self.tap
    }

    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Sends a request and waits for the response head.
    pub fn send(
        &mut self,
        request: Request<RequestBody>,
    ) -> impl Future<Output = Result<Response<Incoming>, hyper::Error>> {
        self.reused = true;
        self.sender.send_request(request)
    }
}

/// Hands a stream to hyper, tapped above any TLS so that `--verbose`
/// shows the plaintext.
async fn start_http<S>(
    stream: S,
    tap: &Tap,
    peer: &str,
) -> Result<SendRequest<RequestBody>, ClientError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let io = TokioIo::new(TappedStream::new(stream, tap.clone()));
    let (sender, connection) = http1::Builder::new()
        .title_case_headers(true)
        .handshake(io)
        .await
        .map_err(|error| http_error(peer, &error))?;
    // The connection's own errors also fail the pending request, which
    // is where they are reported.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Resolves the URL's host and connects to the first of its addresses
/// that answers; also returns `host:port` for messages.
pub async fn connect(
    url: &Url,
    timeout: Option<Duration>,
) -> Result<(TcpStream, String), ClientError> {
    let (host, port) = url.socket_host();
    let peer = url.host_and_port();
    let addresses = within(
        timeout,
        "resolving the host name",
        tokio::net::lookup_host((host, port)),
    )
    .await?
    .map_err(|error| ClientError::Dns {
        host: host.to_string(),
        reason: dns_reason(&error),
    })?;
    let mut last_error = None;
    for address in addresses {
        match within(timeout, "connecting", TcpStream::connect(address)).await? {
            Ok(stream) => return Ok((stream, peer)),
            Err(error) => last_error = Some(error),
        }
    }
    Err(match last_error {
        Some(error) if error.kind() == io::ErrorKind::ConnectionRefused => {
            ClientError::Refused { addr: peer }
        }
        Some(error) => ClientError::Unreachable { addr: peer, error },
        None => ClientError::Dns {
            host: host.to_string(),
            reason: "it has no addresses".to_string(),
        },
    })
}

/// A failure to reach the proxy, said as one.
fn unreachable_proxy(proxy: &Proxy, error: ClientError) -> ClientError {
    let reason = match error {
        ClientError::Refused { .. } => {
            "it refused the connection: nothing is listening there".to_string()
        }
        ClientError::Unreachable { error, .. } => {
            format!("cannot reach it: {}", describe_io(&error))
        }
        ClientError::Dns { reason, .. } => format!("cannot resolve its host: {reason}"),
        other => return other,
    };
    ClientError::Proxy {
        proxy: proxy.addr(),
        reason,
        retryable: true,
    }
}

/// Runs `future`, giving up after `timeout` (if any).
pub async fn within<T>(
    timeout: Option<Duration>,
    doing: &'static str,
    future: impl Future<Output = T>,
) -> Result<T, ClientError> {
    match timeout {
        None => Ok(future.await),
        Some(after) => tokio::time::timeout(after, future)
            .await
            .map_err(|_| ClientError::Timeout { after, doing }),
    }
}

/// A hyper error in words, with the cause that usually says more.
pub fn http_error(peer: &str, error: &hyper::Error) -> ClientError {
    let reason = if error.is_incomplete_message() {
        "the server closed the connection before answering in full".to_string()
    } else if error.is_parse() {
        format!("the response is not valid HTTP/1.1 ({error})")
    } else if error.is_canceled() || error.is_closed() {
        "the connection was closed".to_string()
    } else {
        let mut reason = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            match cause.downcast_ref::<io::Error>() {
                Some(io_error) => reason = format!("{reason}: {}", describe_io(io_error)),
                None => reason = format!("{reason}: {cause}"),
            }
            source = cause.source();
        }
        reason
    };
    ClientError::Http {
        addr: peer.to_string(),
        reason,
    }
}

/// The resolver's message without the library's preamble.
fn dns_reason(error: &io::Error) -> String {
    let text = describe_io(error);
    text.strip_prefix("failed to lookup address information: ")
        .unwrap_or(&text)
        .to_string()
}
