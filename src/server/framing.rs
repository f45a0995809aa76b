//! Spots requests whose head carries both `Content-Length` and
//! `Transfer-Encoding`, the shape of request smuggling.
//!
//! hyper resolves such a request as RFC 9112 allows (the transfer coding
//! wins, the length is dropped before the application sees the headers,
//! the connection closes afterwards). csvd refuses it outright instead, so
//! it must see the raw head: a [`Follower`] is shown the bytes hyper reads
//! (through [`super::inspect::Inspect`]) and follows their request framing —
//! heads with the same parser hyper uses, then each body by its length or
//! its chunks — queueing one verdict per request, which the connection's
//! service takes in order.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

/// Marks a request that came with both framing headers.
#[derive(Clone, Copy, Debug)]
pub struct Conflict;

/// Verdicts of one connection's requests, oldest first.
#[derive(Clone, Default)]
pub struct Verdicts(Arc<Mutex<VecDeque<bool>>>);

impl Verdicts {
    /// The verdict on the next request hyper hands over.
    pub fn next(&self) -> Option<Conflict> {
        let mut queue = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        queue.pop_front().unwrap_or(false).then_some(Conflict)
    }

    fn push(&self, conflict: bool) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(conflict);
    }
}

/// Where the byte stream is, request-wise.
enum State {
    Head(Vec<u8>),
    Body(u64),
    ChunkSize(Vec<u8>),
    ChunkData(u64),
    ChunkEnd(u8),
    Trailers(Vec<u8>),
    /// The framing is broken or unknown: hyper refuses such a stream and
    /// closes it, so there is nothing left to follow.
    Lost,
}

/// Longest head or chunk line followed (hyper's head limit is 32 KiB by
/// default). Past it the stream is no longer followed; hyper still closes
/// the connection after a request with both headers.
const MAX_LINE: usize = 64 * 1024;

/// Follows one connection's incoming bytes request by request.
pub struct Follower {
    state: State,
    verdicts: Verdicts,
}

impl Follower {
    pub fn new(verdicts: Verdicts) -> Follower {
        Follower {
            state: State::Head(Vec::new()),
            verdicts,
        }
    }

    /// Takes the next bytes of the connection, in order.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let (next, used) = match std::mem::replace(&mut self.state, State::Lost) {
                State::Head(mut head) => self.head(&mut head, bytes),
                State::Body(left) => {
                    let used = left.min(bytes.len() as u64);
                    let next = if used == left {
                        State::Head(Vec::new())
                    } else {
                        State::Body(left - used)
                    };
                    (next, used as usize)
                }
                State::ChunkSize(line) => line_state(line, bytes, chunk_size, State::ChunkSize),
                State::ChunkData(left) => {
                    let used = left.min(bytes.len() as u64);
                    let next = if used == left {
                        State::ChunkEnd(2)
                    } else {
                        State::ChunkData(left - used)
                    };
                    (next, used as usize)
                }
                State::ChunkEnd(left) => {
                    let used = (left as usize).min(bytes.len());
                    let next = if used == left as usize {
                        State::ChunkSize(Vec::new())
                    } else {
                        State::ChunkEnd(left - used as u8)
                    };
                    (next, used)
                }
                State::Trailers(line) => line_state(line, bytes, trailer, State::Trailers),
                State::Lost => return,
            };
            self.state = next;
            bytes = &bytes[used..];
        }
    }

    /// Adds bytes to a head; once it is complete, judges it and picks the
    /// body's framing. Returns the next state and the bytes used.
    fn head(&mut self, head: &mut Vec<u8>, bytes: &[u8]) -> (State, usize) {
        let before = head.len();
        // A head that arrives in one read (nearly all) is judged where it
        // lies; only one split across reads is gathered.
        if before > 0 {
            head.extend_from_slice(bytes);
        }
        let whole: &[u8] = if before > 0 { head } else { bytes };
        match judge(whole) {
            Judged::Complete {
                len,
                next,
                conflict,
            } => {
                self.verdicts.push(conflict);
                (next, len - before)
            }
            Judged::Partial if before + bytes.len() <= MAX_LINE => {
                if before == 0 {
                    head.extend_from_slice(bytes);
                }
                (State::Head(std::mem::take(head)), bytes.len())
            }
            Judged::Partial | Judged::Broken => (State::Lost, bytes.len()),
        }
    }
}

/// What the start of the bytes says as a request head.
enum Judged {
    Complete {
        /// Bytes of the head.
        len: usize,
        /// How its body is framed.
        next: State,
        conflict: bool,
    },
    Partial,
    Broken,
}

fn judge(bytes: &[u8]) -> Judged {
    // Left uninitialised until parsed into, as hyper does: filling 256
    // headers for every request would cost more than parsing one.
    let mut headers = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; 256];
    let mut request = httparse::Request::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut request,
        bytes,
        &mut headers,
    );
    match parsed {
        Ok(httparse::Status::Complete(len)) => {
            let has = |name: &str| {
                request
                    .headers
                    .iter()
                    .any(|h| h.name.eq_ignore_ascii_case(name))
            };
            let chunked = has("transfer-encoding");
            let length = request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map(|h| {
                    std::str::from_utf8(h.value)
                        .ok()
                        .and_then(|v| v.trim().parse::<u64>().ok())
                });
            let next = match (chunked, length) {
                (true, _) => State::ChunkSize(Vec::new()),
                (false, Some(Some(0)) | None) => State::Head(Vec::new()),
                (false, Some(Some(n))) => State::Body(n),
                (false, Some(None)) => State::Lost,
            };
            Judged::Complete {
                len,
                next,
                conflict: chunked && length.is_some(),
            }
        }
        Ok(httparse::Status::Partial) => Judged::Partial,
        Err(_) => Judged::Broken,
    }
}

/// Collects one line (kept in `partial` until it ends), then lets `done`
/// pick the next state from it.
fn line_state(
    mut line: Vec<u8>,
    bytes: &[u8],
    done: fn(&[u8]) -> State,
    partial: fn(Vec<u8>) -> State,
) -> (State, usize) {
    match bytes.iter().position(|&b| b == b'\n') {
        Some(end) => {
            line.extend_from_slice(&bytes[..end]);
            (done(&line), end + 1)
        }
        None if line.len() + bytes.len() <= MAX_LINE => {
            line.extend_from_slice(bytes);
            (partial(line), bytes.len())
        }
        None => (State::Lost, bytes.len()),
    }
}

fn chunk_size(line: &[u8]) -> State {
    let text = std::str::from_utf8(line).unwrap_or("");
    let size = text.split(';').next().unwrap_or("").trim();
    match u64::from_str_radix(size, 16) {
        Ok(0) => State::Trailers(Vec::new()),
        Ok(n) => State::ChunkData(n),
        Err(_) => State::Lost,
    }
}

fn trailer(line: &[u8]) -> State {
    if line.iter().all(|b| b.is_ascii_whitespace()) {
        State::Head(Vec::new())
    } else {
        State::Trailers(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdicts(stream: &[u8], step: usize) -> Vec<bool> {
        let verdicts = Verdicts::default();
        let mut follower = Follower::new(verdicts.clone());
        for piece in stream.chunks(step) {
            follower.feed(piece);
        }
        let queue = verdicts.0.lock().unwrap();
        queue.iter().copied().collect()
    }

    #[test]
    fn follows_lengths_and_chunks_and_judges_each_head() {
        let stream = concat!(
            "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            "POST /t HTTP/1.1\r\nHost: x\r\nContent-Length: 34\r\n\r\n",
            "GET /fake HTTP/1.1\r\nHost: y\r\n\r\n",
            "POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            "4;ext=1\r\nab\r\n\r\n0\r\nTrailer: t\r\n\r\n",
            "POST /t HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        let expected = vec![false, false, false, true];
        for step in [1, 2, 7, 64, stream.len()] {
            assert_eq!(verdicts(stream.as_bytes(), step), expected, "step {step}");
        }
    }

    #[test]
    fn either_order_of_the_two_headers_is_caught() {
        let te_first =
            b"POST /t HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n";
        assert_eq!(verdicts(te_first, 5), vec![true]);
    }

    #[test]
    fn the_seed_head_ending_is_followed() {
        let seed =
            b"POST / HTTP/1.1\r\nHost: /t\r\nContent-Length: 3\r\n\na:bGET / HTTP/1.1\r\n\r\n";
        assert_eq!(verdicts(seed, 3), vec![false, false]);
    }
}
