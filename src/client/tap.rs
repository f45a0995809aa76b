//! A socket that keeps a copy of the request head it writes and the
//! response head it reads, so that `--verbose` shows the bytes that
//! crossed the wire (header case, order and all) rather than a
//! reconstruction of them.
//!
//! Only heads are kept, and only up to [`HEAD_LIMIT`]: bodies pass through
//! untouched and uncopied. Over HTTPS the tap sits above TLS, so it keeps
//! the plaintext that hyper wrote and read, never the ciphertext.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

/// Heads larger than this are not kept (hyper refuses far smaller ones).
const HEAD_LIMIT: usize = 1 << 20;

/// What one exchange sent and received, as seen by the socket.
#[derive(Default)]
struct Recording {
    sent: Vec<u8>,
    sent_done: bool,
    on_sent: Option<oneshot::Sender<Vec<u8>>>,
    received: Vec<u8>,
    /// Where the head being read starts (interim `1xx` heads come first).
    head_start: usize,
    received_done: bool,
    received_any: bool,
    /// When a byte last went either way: timeouts count silence, so a
    /// long upload or a slow stream is not cut off while it moves.
    last_activity: Option<Instant>,
}

/// The handle an exchange uses to read the recording.
#[derive(Clone, Default)]
pub struct Tap(Arc<Mutex<Recording>>);

impl Tap {
    fn lock(&self) -> MutexGuard<'_, Recording> {
        // A panic elsewhere cannot leave a recording half-updated in a way
        // that matters: it is only ever shown to a person.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts recording a new exchange; the receiver gets the request head
    /// once it has been written in full.
    pub fn start(&self) -> oneshot::Receiver<Vec<u8>> {
        let (sender, receiver) = oneshot::channel();
        *self.lock() = Recording {
            on_sent: Some(sender),
            last_activity: Some(Instant::now()),
            ..Recording::default()
        };
        receiver
    }

    /// The response head(s) read so far: interim `1xx` heads, then the
    /// final one.
    pub fn response_head(&self) -> Vec<u8> {
        let recording = self.lock();
        if recording.received_done {
            recording.received.clone()
        } else {
            Vec::new()
        }
    }

    /// The first bytes of the response, as read, before any head was
    /// complete: what a server that does not speak HTTP sent.
    pub fn received_start(&self, len: usize) -> Vec<u8> {
        let recording = self.lock();
        recording.received[..len.min(recording.received.len())].to_vec()
    }

    /// Whether any byte of a response has arrived since [`Tap::start`].
    pub fn received_any(&self) -> bool {
        self.lock().received_any
    }

    /// How long nothing has moved on the socket since the exchange started.
    pub fn idle_for(&self) -> Duration {
        self.lock()
            .last_activity
            .map_or(Duration::ZERO, |last| last.elapsed())
    }

    fn wrote(&self, bytes: &[u8]) {
        let mut recording = self.lock();
        recording.last_activity = Some(Instant::now());
        if recording.sent_done {
            return;
        }
        let searched = recording.sent.len().saturating_sub(3);
        recording.sent.extend_from_slice(bytes);
        if let Some(end) = head_end(&recording.sent[searched..]) {
            let end = searched + end;
            recording.sent.truncate(end);
            recording.sent_done = true;
            let head = recording.sent.clone();
            if let Some(sender) = recording.on_sent.take() {
                let _ = sender.send(head);
            }
        } else if recording.sent.len() > HEAD_LIMIT {
            recording.sent_done = true;
            recording.sent.clear();
        }
    }

    fn read(&self, bytes: &[u8]) {
        let mut recording = self.lock();
        recording.last_activity = Some(Instant::now());
        recording.received_any |= !bytes.is_empty();
        if recording.received_done {
            return;
        }
        recording.received.extend_from_slice(bytes);
        while let Some(end) = head_end(&recording.received[recording.head_start..]) {
            let end = recording.head_start + end;
            if is_interim(&recording.received[recording.head_start..end]) {
                recording.head_start = end;
                continue;
            }
            recording.received.truncate(end);
            recording.received_done = true;
            return;
        }
        if recording.received.len() > HEAD_LIMIT {
            recording.received_done = true;
            recording.received.clear();
        }
    }
}

/// Where the head ends: just past the empty line (`\r\n\r\n`, or the bare
/// `\n\n` some servers send).
pub fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes.iter().enumerate().find_map(|(at, byte)| {
        if *byte != b'\n' {
            return None;
        }
        match bytes.get(at + 1..) {
            Some([b'\n', ..]) => Some(at + 2),
            Some([b'\r', b'\n', ..]) => Some(at + 3),
            _ => None,
        }
    })
}

/// `HTTP/1.1 100 Continue` and friends come before the real response;
/// `101` is final (the connection changes protocol).
fn is_interim(head: &[u8]) -> bool {
    let status = head.split(|byte| *byte == b' ').nth(1).unwrap_or_default();
    status.len() == 3 && status.starts_with(b"1") && status != b"101"
}

/// A stream (TCP, or TLS over TCP) reporting to a [`Tap`].
pub struct TappedStream<S> {
    inner: S,
    tap: Tap,
}

impl<S> TappedStream<S> {
    pub fn new(inner: S, tap: Tap) -> TappedStream<S> {
        TappedStream { inner, tap }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TappedStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            self.tap.read(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TappedStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = polled {
            self.tap.wrote(&buf[..written]);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_end_at_the_first_empty_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody"), Some(24));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\nbody"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
    }

    #[test]
    fn the_request_head_is_kept_across_writes_and_announced() {
        let tap = Tap::default();
        let mut announced = tap.start();
        tap.wrote(b"POST /p HTTP/1.1\r\nHost: x\r");
        assert!(announced.try_recv().is_err());
        tap.wrote(b"\n\r\n{\"a\":1}");
        assert_eq!(
            announced.try_recv().unwrap(),
            b"POST /p HTTP/1.1\r\nHost: x\r\n\r\n"
        );
    }

    #[test]
    fn interim_responses_are_kept_before_the_final_head() {
        let tap = Tap::default();
        let _announced = tap.start();
        assert!(!tap.received_any());
        tap.read(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n");
        assert!(tap.received_any());
        assert!(tap.response_head().is_empty());
        tap.read(b"Content-Length: 2\r\n\r\n{}");
        assert_eq!(
            tap.response_head(),
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n"
        );
        tap.start();
        assert!(tap.response_head().is_empty());
    }
}
