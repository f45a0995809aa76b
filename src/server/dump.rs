//! `--dump`: a connection wrapper that prints every byte a client sends, as
//! the seed's server printed each request it received.

use std::io::Write;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How much of one read is printed; the rest is summarised. The seed read
/// requests 2048 bytes at a time.
const SHOW_BYTES: usize = 2048;

/// A connection whose incoming bytes are echoed to stdout.
pub struct Dump<T> {
    inner: T,
    peer: SocketAddr,
}

impl<T> Dump<T> {
    pub fn new(inner: T, peer: SocketAddr) -> Dump<T> {
        Dump { inner, peer }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Dump<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        let new = &buf.filled()[before..];
        if !new.is_empty() {
            let shown = &new[..new.len().min(SHOW_BYTES)];
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "--- {} bytes from {} ---", new.len(), self.peer);
            let _ = out.write_all(String::from_utf8_lossy(shown).as_bytes());
            if new.len() > shown.len() {
                let _ = write!(out, "\n… {} more bytes", new.len() - shown.len());
            }
            let _ = writeln!(out);
            let _ = out.flush();
        }
        poll
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Dump<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
