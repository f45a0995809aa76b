//! Noticing a client that has gone while its answer waits or streams.
//!
//! hyper is told not to read from a connection while it answers (so that a
//! client which closes its sending side after its request still gets the
//! answer, and so that no read buffer is taken per request); it then learns
//! that a client left only when a write to it fails. An answer that waits
//! (a long poll) or that writes seldom (a quiet feed) would hold its
//! subscriber slot long after its client is gone. Such an answer watches
//! its connection here instead: a second registration of the same socket,
//! made only for the answers that ask, tells when the client has closed its
//! side, and when the connection is gone for good.
#![allow(unsafe_code)]

use std::future::Future;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};

use tokio::io::unix::AsyncFd;
use tokio::io::{Interest, Ready};

tokio::task_local! {
    /// The socket of the connection the running task serves.
    static CONNECTION: RawFd;
}

/// Runs `serve`, a connection's whole life, with `socket` (its descriptor) as the
/// connection an answer may watch. `serve` must own `socket` (or what wraps
/// it) until it has answered its last request: that is what makes the
/// descriptor valid wherever [`Hangup::watch`] can see it.
pub fn serving<F: Future>(socket: RawFd, serve: F) -> impl Future<Output = F::Output> {
    CONNECTION.scope(socket, serve)
}

/// A watch on one connection's socket.
pub struct Hangup {
    socket: AsyncFd<OwnedFd>,
}

impl Hangup {
    /// A watch on the connection whose request is being answered; `None`
    /// outside one, or when the system refuses one more descriptor (the
    /// answer then learns of a departed client as before, when a write to
    /// it fails).
    pub fn watch() -> Option<Hangup> {
        let fd = CONNECTION.try_with(|fd| *fd).ok()?;
        // SAFETY: `fd` is seen only by code polled inside `serving`, whose
        // future owns the socket until its last answer is done, so the
        // descriptor is open and is that connection's while it is borrowed
        // here; the duplicate made from it owns a descriptor of its own.
        let socket = unsafe { BorrowedFd::borrow_raw(fd) };
        let copy = match socket.try_clone_to_owned() {
            Ok(copy) => copy,
            Err(err) => {
                tracing::debug!("cannot watch a connection: {err}");
                return None;
            }
        };
        // SAFETY: an `OwnedFd` stays open, and names the same descriptor,
        // for as long as it is owned, here by the `AsyncFd`.
        let registered = unsafe {
            AsyncFd::register_with_interest(copy, Interest::READABLE | Interest::WRITABLE)
        };
        match registered {
            Ok(socket) => Some(Hangup { socket }),
            Err(err) => {
                tracing::debug!("cannot watch a connection: {err}");
                None
            }
        }
    }

    /// Resolves once the client has closed its sending side: it has left,
    /// or it only half-closed and still reads (the two look alike until
    /// something is written to it). Bytes it sends meanwhile (a pipelined
    /// request) are left for hyper to read.
    pub async fn sending_closed(&self) {
        loop {
            let Ok(mut ready) = self.socket.ready(Interest::READABLE).await else {
                return std::future::pending().await;
            };
            if ready.ready().is_read_closed() {
                return;
            }
            ready.clear_ready_matching(Ready::READABLE);
        }
    }

    /// Resolves once the connection is gone for good: reset by the client
    /// (which it does when written to after it closed), or closed on both
    /// sides.
    pub async fn gone(&self) {
        loop {
            let Ok(mut ready) = self
                .socket
                .ready(Interest::WRITABLE | Interest::ERROR)
                .await
            else {
                return std::future::pending().await;
            };
            let seen = ready.ready();
            if seen.is_write_closed() || seen.is_error() {
                return;
            }
            ready.clear_ready_matching(Ready::WRITABLE);
        }
    }
}

/// [`Hangup::sending_closed`], or never without a watch.
pub async fn sending_closed(watch: Option<&Hangup>) {
    match watch {
        Some(watch) => watch.sending_closed().await,
        None => std::future::pending().await,
    }
}

/// [`Hangup::gone`], or never without a watch.
pub async fn gone(watch: Option<&Hangup>) {
    match watch {
        Some(watch) => watch.gone().await,
        None => std::future::pending().await,
    }
}
