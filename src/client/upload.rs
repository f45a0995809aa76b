//! A request body streamed from a file (`@big.csv`): read in chunks as the
//! connection can take them, never whole into memory, with a progress bar
//! on stderr for files big enough to wait for, and a tally of what went
//! (bytes, and the rows of a CSV or NDJSON body) for the summary line.
//!
//! A multipart body with file parts ([`Parts`]) is streamed the same way:
//! its text in memory, each file read in chunks when its turn comes.

use std::collections::VecDeque;
use std::io;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::io::{AsyncRead, ReadBuf};

/// 64 KiB per read: large enough to keep the socket busy, small enough
/// that the progress bar moves.
const CHUNK: usize = 64 * 1024;

/// Below 1 MiB an upload is over before a bar would be worth drawing.
const BAR_FROM: u64 = 1024 * 1024;

/// The body of an `@file` request.
pub struct Upload {
    file: tokio::fs::File,
    remaining: u64,
    buffer: BytesMut,
    progress: ProgressBar,
    tally: Arc<Mutex<Tally>>,
}

/// What an upload has sent so far.
#[derive(Debug, Clone)]
pub struct Tally {
    pub started: Instant,
    pub bytes: u64,
    /// Rows of a CSV (after its header line) or NDJSON body; `None` for
    /// any other kind of body.
    rows: Option<Rows>,
}

/// Counts records while the bytes go by: lines that hold something, a
/// line break inside a quoted CSV cell not ending one.
#[derive(Debug, Clone)]
struct Rows {
    csv: bool,
    in_quotes: bool,
    line_has_content: bool,
    lines: u64,
}

impl Rows {
    fn push(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            match byte {
                b'"' if self.csv => {
                    self.in_quotes = !self.in_quotes;
                    self.line_has_content = true;
                }
                b'\n' if !self.in_quotes => {
                    if self.line_has_content {
                        self.lines += 1;
                    }
                    self.line_has_content = false;
                }
                b'\r' | b' ' | b'\t' => {}
                _ => self.line_has_content = true,
            }
        }
    }

    fn count(&self) -> u64 {
        let lines = self.lines + u64::from(self.line_has_content);
        if self.csv {
            lines.saturating_sub(1)
        } else {
            lines
        }
    }
}

impl Tally {
    fn new(content_type: Option<&str>) -> Tally {
        let essence = content_type
            .and_then(|value| value.split(';').next())
            .map(|value| value.trim().to_ascii_lowercase());
        let csv = match essence.as_deref() {
            Some("text/csv") => Some(true),
            Some("application/x-ndjson") => Some(false),
            _ => None,
        };
        Tally {
            started: Instant::now(),
            bytes: 0,
            rows: csv.map(|csv| Rows {
                csv,
                in_quotes: false,
                line_has_content: false,
                lines: 0,
            }),
        }
    }

    /// The data rows sent (CSV lines after the header, NDJSON lines), when
    /// the body is of a kind whose rows can be counted.
    pub fn rows(&self) -> Option<u64> {
        self.rows.as_ref().map(Rows::count)
    }
}

impl Upload {
    /// Streams `len` bytes of the file at `path` (its size when the
    /// request was prepared: the `Content-Length` already promises it).
    ///
    /// The caller clears the progress bar once the answer has come (or
    /// the request failed).
    pub async fn open(path: &Path, len: u64, content_type: Option<&str>) -> io::Result<Upload> {
        let file = tokio::fs::File::open(path).await?;
        Ok(Upload {
            file,
            remaining: len,
            buffer: BytesMut::new(),
            progress: progress_bar(path, Some(len)),
            tally: Arc::new(Mutex::new(Tally::new(content_type))),
        })
    }
}

fn progress_bar(path: &Path, len: Option<u64>) -> ProgressBar {
    let Some(len) = len.filter(|len| *len >= BAR_FROM && io::stderr().is_terminal()) else {
        return ProgressBar::hidden();
    };
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {eta}",
    )
    .map(|style| style.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    let name = path.file_name().unwrap_or(path.as_os_str());
    bar.set_message(format!("uploading {}", name.to_string_lossy()));
    // Drawn now, not at the first tick: a fast upload still shows it began.
    bar.tick();
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Once every byte is sent, the bar turns into a spinner until the answer
/// comes (a large import can keep the server busy for a while).
fn waiting(bar: &ProgressBar) {
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
        bar.set_style(style);
    }
    bar.set_message(format!(
        "sent {}; waiting for the answer",
        HumanBytes(bar.position())
    ));
}

impl Upload {
    pub fn progress(&self) -> ProgressBar {
        self.progress.clone()
    }

    /// What has been sent, kept up to date while the body goes.
    pub fn tally(&self) -> Arc<Mutex<Tally>> {
        Arc::clone(&self.tally)
    }
}

impl Body for Upload {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        let this = &mut *self;
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = usize::try_from(this.remaining).map_or(CHUNK, |left| left.min(CHUNK));
        this.buffer.resize(want, 0);
        let mut read = ReadBuf::new(&mut this.buffer[..]);
        ready!(Pin::new(&mut this.file).poll_read(cx, &mut read))?;
        let got = read.filled().len();
        if got == 0 {
            this.progress.abandon();
            return Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file got shorter while it was being sent",
            ))));
        }
        this.remaining -= got as u64;
        this.progress.inc(got as u64);
        if let Ok(mut tally) = this.tally.lock() {
            tally.bytes += got as u64;
            if let Some(rows) = &mut tally.rows {
                rows.push(&this.buffer[..got]);
            }
        }
        if this.remaining == 0 {
            waiting(&this.progress);
        }
        Poll::Ready(Some(Ok(Frame::data(this.buffer.split_to(got).freeze()))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// A piece of a multipart body: text (boundaries, part headers, text
/// fields) or a file's bytes, read when sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Bytes(Bytes),
    /// `len` is the file's size when the request was prepared; `None`
    /// when it has none to know (a pipe), and the body is then chunked.
    File {
        path: PathBuf,
        len: Option<u64>,
    },
}

impl Part {
    fn len(&self) -> Option<u64> {
        match self {
            Part::Bytes(bytes) => Some(bytes.len() as u64),
            Part::File { len, .. } => *len,
        }
    }
}

/// The length of a body made of `parts`, when every part has one.
pub fn parts_len(parts: &[Part]) -> Option<u64> {
    parts.iter().map(Part::len).sum()
}

/// A multipart body being sent: each file is opened when the body is
/// built (so a missing one is reported before anything goes) and read in
/// chunks when its turn comes.
pub struct Parts {
    pending: VecDeque<Pending>,
    buffer: BytesMut,
    /// What is left to send, when it is known.
    remaining: Option<u64>,
    progress: ProgressBar,
}

enum Pending {
    Bytes(Bytes),
    File {
        file: tokio::fs::File,
        /// `None`: until the end of the file.
        left: Option<u64>,
    },
}

impl Parts {
    pub async fn open(parts: &[Part]) -> Result<Parts, (PathBuf, io::Error)> {
        let mut pending = VecDeque::new();
        for part in parts {
            pending.push_back(match part {
                Part::Bytes(bytes) => Pending::Bytes(bytes.clone()),
                Part::File { path, len } => Pending::File {
                    file: tokio::fs::File::open(path)
                        .await
                        .map_err(|error| (path.clone(), error))?,
                    left: *len,
                },
            });
        }
        let remaining = parts_len(parts);
        let first_file = parts.iter().find_map(|part| match part {
            Part::File { path, .. } => Some(path.as_path()),
            Part::Bytes(_) => None,
        });
        let progress = match first_file {
            Some(path) => progress_bar(path, remaining),
            None => ProgressBar::hidden(),
        };
        Ok(Parts {
            pending,
            buffer: BytesMut::new(),
            remaining,
            progress,
        })
    }

    pub fn progress(&self) -> ProgressBar {
        self.progress.clone()
    }
}

impl Body for Parts {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        let this = &mut *self;
        loop {
            let Some(next) = this.pending.front_mut() else {
                return Poll::Ready(None);
            };
            let data = match next {
                Pending::Bytes(bytes) => {
                    let bytes = std::mem::take(bytes);
                    this.pending.pop_front();
                    bytes
                }
                Pending::File { left: Some(0), .. } => {
                    this.pending.pop_front();
                    continue;
                }
                Pending::File { file, left } => {
                    let want = left.map_or(CHUNK, |left| {
                        usize::try_from(left).map_or(CHUNK, |left| left.min(CHUNK))
                    });
                    this.buffer.resize(want, 0);
                    let mut read = ReadBuf::new(&mut this.buffer[..]);
                    ready!(Pin::new(file).poll_read(cx, &mut read))?;
                    let got = read.filled().len();
                    match (got, left.as_mut()) {
                        (0, None) => {
                            this.pending.pop_front();
                            continue;
                        }
                        (0, Some(_)) => {
                            this.progress.abandon();
                            return Poll::Ready(Some(Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "a file part got shorter while it was being sent",
                            ))));
                        }
                        (got, Some(left)) => *left -= got as u64,
                        (_, None) => {}
                    }
                    this.buffer.split_to(got).freeze()
                }
            };
            if data.is_empty() {
                continue;
            }
            if let Some(remaining) = this.remaining.as_mut() {
                *remaining = remaining.saturating_sub(data.len() as u64);
            }
            this.progress.inc(data.len() as u64);
            if this.pending.is_empty() {
                waiting(&this.progress);
            }
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        match self.remaining {
            Some(remaining) => SizeHint::with_exact(remaining),
            None => SizeHint::default(),
        }
    }
}

/// The line printed on stderr once an upload has been answered: rows (the
/// server's count when it gave one), bytes, time and rate.
pub fn summary(tally: &Tally, server_rows: Option<u64>, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    let rate = if seconds > 0.0 {
        (tally.bytes as f64 / seconds) as u64
    } else {
        tally.bytes
    };
    let rows = match server_rows.or_else(|| tally.rows()) {
        Some(1) => "1 row, ".to_string(),
        Some(rows) => format!("{rows} rows, "),
        None => String::new(),
    };
    format!(
        "csvd: sent {rows}{} in {seconds:.2}s ({}/s)",
        HumanBytes(tally.bytes),
        HumanBytes(rate)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(content_type: &str, chunks: &[&[u8]]) -> Option<u64> {
        let mut tally = Tally::new(Some(content_type));
        for chunk in chunks {
            if let Some(rows) = &mut tally.rows {
                rows.push(chunk);
            }
        }
        tally.rows()
    }

    #[test]
    fn csv_rows_are_counted_after_the_header() {
        assert_eq!(rows("text/csv", &[b"a,b\n1,2\n3,4\n"]), Some(2));
        assert_eq!(rows("text/csv", &[b"a,b\r\n1,2\r\n3,4"]), Some(2));
        assert_eq!(rows("text/csv", &[b"a,b\n\"x\ny\",2\n\n"]), Some(1));
        assert_eq!(
            rows("text/csv", &[b"a,b\n1,\"say \"\"hi", b"\"\"\n\",2\n"]),
            Some(1)
        );
        assert_eq!(rows("text/csv; charset=utf-8", &[b"a\n"]), Some(0));
    }

    #[test]
    fn ndjson_lines_are_rows_and_other_bodies_are_not_counted() {
        assert_eq!(
            rows("application/x-ndjson", &[b"{\"a\":1}\n{\"a\"", b":2}\n\n"]),
            Some(2)
        );
        assert_eq!(rows("application/json", &[b"[1,2]"]), None);
    }

    #[test]
    fn the_summary_says_rows_bytes_time_and_rate() {
        let mut tally = Tally::new(Some("text/csv"));
        tally.bytes = 2048;
        let line = summary(&tally, Some(7), Duration::from_secs(2));
        assert_eq!(line, "csvd: sent 7 rows, 2.00 KiB in 2.00s (1.00 KiB/s)");
        let tally = Tally::new(None);
        let line = summary(&tally, None, Duration::from_millis(500));
        assert_eq!(line, "csvd: sent 0 B in 0.50s (0 B/s)");
    }
}
