//! A subscriber to the change feed over a real socket: sends one GET,
//! reads the answer's head, then its chunked body piece by piece as it
//! arrives, parsed as Server-Sent Events or NDJSON lines. Every read has a
//! bounded wait, so a missing event fails the test instead of hanging it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long a subscriber waits for the next thing the test expects.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// One Server-Sent Event (or a comment, with `event` "comment").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

impl Event {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{e}: {:?}", self.data))
    }

    pub fn seq(&self) -> u64 {
        self.json()["seq"].as_u64().expect("seq")
    }
}

pub struct Subscriber {
    reader: BufReader<TcpStream>,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Body bytes received and not parsed yet.
    pending: Vec<u8>,
    /// How much of `pending` was parsed.
    read: usize,
    chunked: bool,
    ended: bool,
}

impl Subscriber {
    /// `GET path` with these headers (an `Accept` among them, usually).
    pub fn open(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Subscriber {
        Subscriber::connect(addr, path, headers, false)
    }

    /// Like [`Subscriber::open`], closing the sending side of the
    /// connection right after the request (as `nc -N` does).
    pub fn open_half_closed(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Subscriber {
        Subscriber::connect(addr, path, headers, true)
    }

    fn connect(
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
        half_close: bool,
    ) -> Subscriber {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        (&stream).write_all(request.as_bytes()).expect("send");
        if half_close {
            stream
                .shutdown(std::net::Shutdown::Write)
                .expect("half-close");
        }
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).expect("status line");
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {line:?}"));
        let mut headers = Vec::new();
        loop {
            line.clear();
            reader.read_line(&mut line).expect("header");
            let text = line.trim_end();
            if text.is_empty() {
                break;
            }
            if let Some((name, value)) = text.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        let chunked = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
        Subscriber {
            reader,
            status,
            headers,
            pending: Vec::new(),
            read: 0,
            chunked,
            ended: false,
        }
    }

    /// An SSE subscriber (`Accept: text/event-stream`).
    pub fn sse(addr: SocketAddr, path: &str) -> Subscriber {
        Subscriber::open(addr, path, &[("Accept", "text/event-stream")])
    }

    /// Closes the sending side of the connection; the answer still comes.
    pub fn half_close(&self) {
        let stream = self.reader.get_ref();
        stream
            .shutdown(std::net::Shutdown::Write)
            .expect("half-close");
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Reads more of the body; false at its end.
    fn fill(&mut self) -> bool {
        if self.ended {
            return false;
        }
        if !self.chunked {
            let mut buf = [0u8; 8192];
            return match self.reader.read(&mut buf) {
                Ok(0) => {
                    self.ended = true;
                    false
                }
                Ok(n) => {
                    self.pending.extend_from_slice(&buf[..n]);
                    true
                }
                Err(e) => panic!("reading the feed: {e}"),
            };
        }
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => {
                self.ended = true;
                return false;
            }
            Ok(_) => {}
            Err(e) => panic!("reading the feed: {e}"),
        }
        let size = usize::from_str_radix(line.trim(), 16)
            .unwrap_or_else(|_| panic!("bad chunk size {line:?}"));
        if size == 0 {
            self.ended = true;
            return false;
        }
        let mut chunk = vec![0; size + 2];
        self.reader.read_exact(&mut chunk).expect("chunk");
        chunk.truncate(size);
        self.pending.extend_from_slice(&chunk);
        true
    }

    /// The next line of the body (without its end), `None` at the end.
    pub fn line(&mut self) -> Option<String> {
        loop {
            if let Some(at) = self.pending[self.read..].iter().position(|&b| b == b'\n') {
                let line = &self.pending[self.read..self.read + at];
                let line = String::from_utf8_lossy(line).into_owned();
                self.read += at + 1;
                if self.read == self.pending.len() {
                    self.pending.clear();
                    self.read = 0;
                }
                return Some(line);
            }
            if !self.fill() {
                return None;
            }
        }
    }

    /// The next non-empty NDJSON line, parsed.
    pub fn json_line(&mut self) -> Option<serde_json::Value> {
        loop {
            let line = self.line()?;
            if !line.trim().is_empty() {
                return Some(serde_json::from_str(&line).expect("a JSON line"));
            }
        }
    }

    /// The next event or comment, `None` at the end of the stream.
    pub fn event_or_comment(&mut self) -> Option<Event> {
        let mut event = Event::default();
        let mut any = false;
        loop {
            let line = self.line()?;
            if line.is_empty() {
                // As a browser does: an event without data is not one.
                if any && event.data.is_empty() && event.event.is_empty() {
                    any = false;
                    event = Event::default();
                    continue;
                }
                if any {
                    if event.event.is_empty() {
                        event.event = "message".into();
                    }
                    return Some(event);
                }
                continue;
            }
            if let Some(comment) = line.strip_prefix(':') {
                if !any {
                    return Some(Event {
                        id: None,
                        event: "comment".into(),
                        data: comment.trim().to_string(),
                    });
                }
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => event.id = Some(value.to_string()),
                "event" => event.event = value.to_string(),
                "data" => {
                    if !event.data.is_empty() {
                        event.data.push('\n');
                    }
                    event.data.push_str(value);
                }
                _ => {}
            }
            any = any || field != "retry";
        }
    }

    /// The next event (comments and `retry:` skipped).
    pub fn event(&mut self) -> Option<Event> {
        loop {
            let event = self.event_or_comment()?;
            if event.event != "comment" {
                return Some(event);
            }
        }
    }

    /// The next `n` events.
    pub fn events(&mut self, n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| {
                self.event()
                    .unwrap_or_else(|| panic!("the feed ended after {i} of {n} events"))
            })
            .collect()
    }

    /// Reads until the stream ends; returns the events it still sent.
    pub fn rest(&mut self) -> Vec<Event> {
        let deadline = Instant::now() + PATIENCE;
        let mut out = Vec::new();
        while let Some(event) = self.event() {
            out.push(event);
            assert!(Instant::now() < deadline, "the feed did not end");
        }
        out
    }
}
