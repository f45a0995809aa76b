//! `csvd raw HOST:PORT [FILE|-]`: bytes out verbatim, whatever comes back
//! printed verbatim, until the peer closes or has been silent for the
//! timeout once the input is sent. The tool for malformed requests, which
//! no HTTP library will send.
//!
//! The write half is never shut down early: many servers take a half-close
//! as the client leaving and drop the answer.
//!
//! With `--tls` (or an `https://` address) the bytes travel inside TLS,
//! checked as the other commands check it: the input is still sent
//! verbatim, only encrypted.

use std::borrow::Cow;
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{sleep_until, Instant};

use crate::cli::RawArgs;

use super::connection::connect;
use super::error::{describe_io, ClientError};
use super::tls::Tls;
use super::url::{Scheme, Url};

type Reader = Box<dyn AsyncRead + Unpin + Send>;
type Writer = Box<dyn AsyncWrite + Unpin + Send>;

pub async fn run(args: RawArgs) -> anyhow::Result<ExitCode> {
    let url = address(&args)?;
    let tls = Tls::new(&args.tls_options)?;
    let from_file = args.file.as_ref().filter(|path| path.as_os_str() != "-");
    let (mut input, typed): (Box<dyn AsyncRead + Unpin + Send>, bool) = match from_file {
        Some(path) => {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|error| ClientError::file(path, error))?;
            (Box::new(file), false)
        }
        None => (Box::new(tokio::io::stdin()), io::stdin().is_terminal()),
    };
    // A person typing at a terminal cannot easily end lines with CR LF.
    let mut line_ends = LineEnds::new(args.crlf || typed);
    let (stream, peer) = connect(&url, Some(args.timeout)).await?;
    let (mut reader, mut writer): (Reader, Writer) = if url.is_https() {
        let stream = tls.handshake(stream, &url, Some(args.timeout)).await?;
        let (reader, writer) = tokio::io::split(stream);
        (Box::new(reader), Box::new(writer))
    } else {
        let (reader, writer) = stream.into_split();
        (Box::new(reader), Box::new(writer))
    };
    let mut stdout = io::stdout();

    let mut input_open = true;
    let mut incoming = vec![0u8; 64 * 1024];
    let mut outgoing = vec![0u8; 64 * 1024];
    let mut deadline = Instant::now() + args.timeout;
    loop {
        tokio::select! {
            read = input.read(&mut outgoing), if input_open => {
                let sent = match read {
                    Ok(0) => None,
                    Ok(n) => Some(send(&mut writer, &line_ends.convert(&outgoing[..n])).await),
                    Err(error) => return Err(ClientError::file("standard input", error).into()),
                };
                if !matches!(sent, Some(Ok(()))) {
                    // Input ended, or the peer stopped taking it: what it
                    // answers is still worth reading.
                    input_open = false;
                    deadline = Instant::now() + args.timeout;
                }
            }
            received = reader.read(&mut incoming) => match received {
                Ok(0) => break,
                Ok(n) => {
                    if write_out(&mut stdout, &incoming[..n]).is_err() {
                        break;
                    }
                    deadline = Instant::now() + args.timeout;
                }
                Err(error) if error.kind() == io::ErrorKind::ConnectionReset => {
                    complain!("csvd: {peer} reset the connection");
                    break;
                }
                // TLS without its closing alert: the peer closed all the
                // same, and all it sent has been printed.
                Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(error) => {
                    anyhow::bail!("reading from {peer}: {}", describe_io(&error));
                }
            },
            () = sleep_until(deadline), if !input_open => {
                complain!(
                    "csvd: {peer} sent nothing for {} s; closing",
                    args.timeout.as_secs_f64()
                );
                break;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The address, read as `https://` with `--tls`.
fn address(args: &RawArgs) -> Result<Url, ClientError> {
    let shorthand = if args.tls {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let url = Url::parse_as(&args.address, shorthand)?;
    if args.tls && !url.is_https() {
        return Err(ClientError::url(
            &args.address,
            "--tls asks for TLS, but the address says http://",
        ));
    }
    Ok(url)
}

/// Writes all the bytes, and pushes them out of TLS's buffer too.
async fn send(writer: &mut Writer, bytes: &[u8]) -> io::Result<()> {
    writer.write_all(bytes).await?;
    writer.flush().await
}

fn write_out(stdout: &mut io::Stdout, bytes: &[u8]) -> io::Result<()> {
    stdout.write_all(bytes)?;
    stdout.flush()
}

/// Turns bare LF into CR LF when asked to, across chunk boundaries.
struct LineEnds {
    enabled: bool,
    after_cr: bool,
}

impl LineEnds {
    fn new(enabled: bool) -> LineEnds {
        LineEnds {
            enabled,
            after_cr: false,
        }
    }

    fn convert<'a>(&mut self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        if !self.enabled {
            return Cow::Borrowed(bytes);
        }
        let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 8);
        for byte in bytes {
            if *byte == b'\n' && !self.after_cr {
                out.push(b'\r');
            }
            out.push(*byte);
            self.after_cr = *byte == b'\r';
        }
        Cow::Owned(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_line_feeds_become_crlf_across_chunks() {
        let mut ends = LineEnds::new(true);
        assert_eq!(
            &*ends.convert(b"GET / HTTP/1.1\nHost: x\r"),
            b"GET / HTTP/1.1\r\nHost: x\r"
        );
        assert_eq!(&*ends.convert(b"\n\n"), b"\n\r\n");
    }

    #[test]
    fn verbatim_unless_asked() {
        let mut ends = LineEnds::new(false);
        assert_eq!(&*ends.convert(b"a\nb"), b"a\nb");
    }
}
