//! A request body streamed from a file (`@big.csv`): read in chunks as the
//! connection can take them, never whole into memory, with a progress bar
//! on stderr for files big enough to wait for.

use std::io;
use std::io::IsTerminal;
use std::path::Path;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

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
}

impl Upload {
    /// Streams `len` bytes of the file at `path` (its size when the
    /// request was prepared: the `Content-Length` already promises it).
    ///
    /// The caller clears the progress bar once the answer has come (or
    /// the request failed).
    pub async fn open(path: &Path, len: u64) -> io::Result<Upload> {
        let file = tokio::fs::File::open(path).await?;
        Ok(Upload {
            file,
            remaining: len,
            buffer: BytesMut::new(),
            progress: progress_bar(path, len),
        })
    }
}

fn progress_bar(path: &Path, len: u64) -> ProgressBar {
    if len < BAR_FROM || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
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
