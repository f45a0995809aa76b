//! Content codings: a response body the server compressed
//! (`Content-Encoding: gzip`, `deflate`, `br`) is decoded as it arrives,
//! chunk by chunk, so that a stream stays a stream.
//!
//! The decoders are a chain of writers ending in the printer: decoded
//! bytes leave each decoder in pieces of its buffer's size, so a small
//! body that expands enormously is never held whole either.
//!
//! Only the body changes: the head is printed as received, with its
//! `Content-Encoding` and `Content-Length`. A coding csvd cannot decode
//! is never guessed at; the body is then shown as received.

use std::fmt;
use std::io::{self, Write};

use brotli::DecompressorWriter;
use flate2::write::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};
use hyper::header::{HeaderMap, CONTENT_ENCODING};

/// What the client asks for: exactly what it can decode.
pub const ACCEPT_ENCODING: &str = "gzip, deflate, br";

/// The brotli decoder's output buffer (flate2's is 32 KiB too).
const BROTLI_BUFFER: usize = 32 * 1024;

/// A coding csvd decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    Deflate,
    Brotli,
}

impl Coding {
    fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Brotli => "br",
        }
    }
}

/// How a response body is encoded.
#[derive(Debug, PartialEq, Eq)]
pub enum Codings {
    /// In the order they were applied (none: not encoded, or `identity`).
    Known(Vec<Coding>),
    /// With a coding csvd does not decode: its name.
    Unknown(String),
}

impl Codings {
    /// From the `Content-Encoding` headers.
    pub fn of(headers: &HeaderMap) -> Codings {
        let mut known = Vec::new();
        for value in headers.get_all(CONTENT_ENCODING) {
            let text = String::from_utf8_lossy(value.as_bytes());
            for coding in text
                .split(',')
                .map(|coding| coding.trim().to_ascii_lowercase())
            {
                known.push(match coding.as_str() {
                    "" | "identity" => continue,
                    "gzip" | "x-gzip" => Coding::Gzip,
                    "deflate" => Coding::Deflate,
                    "br" => Coding::Brotli,
                    _ => return Codings::Unknown(coding),
                });
            }
        }
        Codings::Known(known)
    }
}

/// Why a body could not be written out.
#[derive(Debug)]
pub enum BodyError {
    /// The output failed (a closed pipe, a full disk).
    Output(io::Error),
    /// The body is not what its `Content-Encoding` says, in words.
    Invalid(String),
}

/// Takes a body as received and writes it, decoded, to the output.
pub struct Decoder<'a> {
    chain: Box<dyn Stage + 'a>,
    received: bool,
}

impl<'a> Decoder<'a> {
    /// Undoes `codings` (last applied first) on the way to `out`.
    pub fn new(codings: &[Coding], out: impl Write + 'a) -> Decoder<'a> {
        let mut chain: Box<dyn Stage + 'a> = Box::new(Out(out));
        // The coding applied first is undone last: it wraps the output.
        for coding in codings {
            chain = match coding {
                Coding::Gzip => Box::new(Gzip(MultiGzDecoder::new(chain))),
                Coding::Deflate => Box::new(Deflate::Undecided {
                    start: Vec::new(),
                    out: Some(chain),
                }),
                Coding::Brotli => Box::new(Brotli(DecompressorWriter::new(chain, BROTLI_BUFFER))),
            };
        }
        Decoder {
            chain,
            received: false,
        }
    }

    /// Decodes the next chunk and writes out all it completes.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), BodyError> {
        self.received |= !chunk.is_empty();
        self.chain
            .write_all(chunk)
            .and_then(|()| self.chain.flush())
            .map_err(BodyError::from)
    }

    /// The body has ended: writes out the rest, or says why the data was
    /// cut short. An empty body is no error (a `304`, or a server that
    /// labels even empty bodies).
    pub fn finish(self) -> Result<(), BodyError> {
        if !self.received {
            return Ok(());
        }
        self.chain.finish().map_err(BodyError::from)
    }
}

/// A link of the chain: a writer that can be told the input has ended.
trait Stage: Write {
    /// Writes out what is left, then finishes the links after it.
    fn finish(self: Box<Self>) -> io::Result<()>;
}

/// The end of the chain: its errors are marked as the output's, so that
/// they are never taken for bad data.
struct Out<W>(W);

#[derive(Debug)]
struct OutputFailed(io::Error);

#[derive(Debug)]
struct Invalid(String);

impl fmt::Display for OutputFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OutputFailed {}
impl std::error::Error for Invalid {}

impl<W: Write> Write for Out<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.write_all(bytes).map_err(output_failed)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(output_failed)
    }
}

impl<W: Write> Stage for Out<W> {
    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.flush()
    }
}

fn output_failed(error: io::Error) -> io::Error {
    io::Error::new(error.kind(), OutputFailed(error))
}

impl From<io::Error> for BodyError {
    fn from(error: io::Error) -> BodyError {
        let kind = error.kind();
        let text = error.to_string();
        match error
            .into_inner()
            .map(|inner| inner.downcast::<OutputFailed>())
        {
            Some(Ok(failed)) => BodyError::Output(failed.0),
            Some(Err(inner)) => match inner.downcast::<Invalid>() {
                Ok(invalid) => BodyError::Invalid(invalid.0),
                Err(other) => BodyError::Invalid(other.to_string()),
            },
            None => BodyError::Invalid(format!("{text} ({kind})")),
        }
    }
}

/// A decoder's own error in words; errors from further down the chain
/// (the output's, or a later decoder's) pass unchanged.
fn named(coding: Coding, error: io::Error) -> io::Error {
    let passing = error
        .get_ref()
        .is_some_and(|inner| inner.is::<OutputFailed>() || inner.is::<Invalid>());
    if passing {
        return error;
    }
    let coding = coding.name();
    let words = match error.kind() {
        io::ErrorKind::UnexpectedEof => format!("the body ends in the middle of its {coding} data"),
        io::ErrorKind::WriteZero => format!("the body goes on after its {coding} data ends"),
        _ => format!("the body is not valid {coding} data ({error})"),
    };
    io::Error::new(io::ErrorKind::InvalidData, Invalid(words))
}

/// What a decoder's `write` says, in words when it fails; a decoder
/// that takes nothing more has seen its data end.
fn wrote(coding: Coding, written: io::Result<usize>, offered: usize) -> io::Result<usize> {
    match written {
        Ok(0) if offered > 0 => Err(named(coding, io::ErrorKind::WriteZero.into())),
        Ok(written) => Ok(written),
        Err(error) => Err(named(coding, error)),
    }
}

struct Gzip<'a>(MultiGzDecoder<Box<dyn Stage + 'a>>);

impl Write for Gzip<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        wrote(Coding::Gzip, self.0.write(bytes), bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(|error| named(Coding::Gzip, error))
    }
}

impl Stage for Gzip<'_> {
    fn finish(self: Box<Self>) -> io::Result<()> {
        let out = self
            .0
            .finish()
            .map_err(|error| named(Coding::Gzip, error))?;
        out.finish()
    }
}

struct Brotli<'a>(DecompressorWriter<Box<dyn Stage + 'a>>);

impl Write for Brotli<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        wrote(Coding::Brotli, self.0.write(bytes), bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(|error| named(Coding::Brotli, error))
    }
}

impl Stage for Brotli<'_> {
    fn finish(mut self: Box<Self>) -> io::Result<()> {
        // At the end, brotli's only complaint is that the data stopped
        // before the stream did.
        self.0.close().map_err(|error| match error.kind() {
            io::ErrorKind::InvalidData => {
                named(Coding::Brotli, io::ErrorKind::UnexpectedEof.into())
            }
            _ => named(Coding::Brotli, error),
        })?;
        match self.0.into_inner() {
            Ok(out) => out.finish(),
            Err(_) => Err(named(Coding::Brotli, io::ErrorKind::UnexpectedEof.into())),
        }
    }
}

/// `deflate` is meant to be zlib-wrapped, but some servers send the bare
/// deflate stream: the first two bytes tell them apart.
enum Deflate<'a> {
    Undecided {
        start: Vec<u8>,
        out: Option<Box<dyn Stage + 'a>>,
    },
    Zlib(ZlibDecoder<Box<dyn Stage + 'a>>),
    Raw(DeflateDecoder<Box<dyn Stage + 'a>>),
}

impl Deflate<'_> {
    /// Zlib when the first two bytes are a zlib header (method 8, a
    /// window of at most 32 KiB, and the check bits).
    fn is_zlib(method: u8, flags: u8) -> bool {
        method & 0x0f == 8
            && method >> 4 <= 7
            && (u16::from(method) << 8 | u16::from(flags)) % 31 == 0
    }
}

impl Write for Deflate<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = match self {
            Deflate::Zlib(decoder) => decoder.write(bytes),
            Deflate::Raw(decoder) => decoder.write(bytes),
            Deflate::Undecided { start, out } => {
                start.extend_from_slice(bytes);
                let decided = match (start.as_slice(), out.take()) {
                    ([method, flags, ..], Some(out)) if Deflate::is_zlib(*method, *flags) => {
                        Deflate::Zlib(ZlibDecoder::new(out))
                    }
                    ([_, _, ..], Some(out)) => Deflate::Raw(DeflateDecoder::new(out)),
                    (_, kept) => {
                        *out = kept;
                        return Ok(bytes.len());
                    }
                };
                let start = std::mem::take(start);
                *self = decided;
                self.write_all(&start).map(|()| bytes.len())
            }
        };
        wrote(Coding::Deflate, written, bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let flushed = match self {
            Deflate::Zlib(decoder) => decoder.flush(),
            Deflate::Raw(decoder) => decoder.flush(),
            Deflate::Undecided { .. } => Ok(()),
        };
        flushed.map_err(|error| named(Coding::Deflate, error))
    }
}

impl Stage for Deflate<'_> {
    fn finish(self: Box<Self>) -> io::Result<()> {
        let out = match *self {
            Deflate::Zlib(decoder) => decoder.finish(),
            Deflate::Raw(decoder) => decoder.finish(),
            Deflate::Undecided { .. } => Err(io::ErrorKind::UnexpectedEof.into()),
        };
        out.map_err(|error| named(Coding::Deflate, error))?.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn codings(header: &str) -> Vec<Coding> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_ENCODING, HeaderValue::from_str(header).unwrap());
        match Codings::of(&headers) {
            Codings::Known(codings) => codings,
            unknown => panic!("{header}: {unknown:?}"),
        }
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn brotli(data: &[u8]) -> Vec<u8> {
        let mut encoder = brotli::CompressorWriter::new(Vec::new(), 4096, 5, 22);
        encoder.write_all(data).unwrap();
        encoder.into_inner()
    }

    fn feed(mut decoder: Decoder, encoded: &[u8], piece: usize) -> Result<(), BodyError> {
        for chunk in encoded.chunks(piece) {
            decoder.push(chunk)?;
        }
        decoder.finish()
    }

    /// Decodes `encoded` fed in pieces of `piece` bytes.
    fn decode(header: &str, encoded: &[u8], piece: usize) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        match feed(Decoder::new(&codings(header), &mut out), encoded, piece) {
            Ok(()) => Ok(out),
            Err(BodyError::Invalid(words)) => Err(words),
            Err(BodyError::Output(error)) => panic!("output: {error}"),
        }
    }

    #[test]
    fn every_coding_decodes_in_any_pieces() {
        let data = b"{\"name\":\"kim\"}\n".repeat(100);
        let zlib = {
            let mut encoder =
                flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(&data).unwrap();
            encoder.finish().unwrap()
        };
        let raw = {
            let mut encoder =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(&data).unwrap();
            encoder.finish().unwrap()
        };
        for (header, encoded) in [
            ("gzip", gzip(&data)),
            ("x-gzip", gzip(&data)),
            ("deflate", zlib),
            ("deflate", raw),
            ("br", brotli(&data)),
            ("identity", data.clone()),
            ("gzip, br", brotli(&gzip(&data))),
        ] {
            for piece in [1, 7, encoded.len()] {
                assert_eq!(decode(header, &encoded, piece).unwrap(), data, "{header}");
            }
        }
    }

    #[test]
    fn a_flushed_piece_comes_out_before_the_rest_arrives() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(b"first\n").unwrap();
        encoder.flush().unwrap();
        let first = encoder.get_ref().len();
        encoder.write_all(b"second\n").unwrap();
        let encoded = encoder.finish().unwrap();
        /// Output that can be looked at while the decoder writes to it.
        #[derive(Clone, Default)]
        struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
                self.0.borrow_mut().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let out = Shared::default();
        let mut decoder = Decoder::new(&[Coding::Gzip], out.clone());
        decoder.push(&encoded[..first]).unwrap();
        assert_eq!(*out.0.borrow(), b"first\n");
        decoder.push(&encoded[first..]).unwrap();
        decoder.finish().unwrap();
        assert_eq!(*out.0.borrow(), b"first\nsecond\n");
    }

    #[test]
    fn a_huge_expansion_leaves_in_pieces() {
        /// Fails if handed more than a decoder's buffer at once.
        struct Small(usize);
        impl Write for Small {
            fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
                assert!(bytes.len() <= 64 * 1024, "{} bytes at once", bytes.len());
                self.0 += bytes.len();
                Ok(bytes.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let data = vec![b'a'; 20 << 20];
        for (coding, encoded) in [(Coding::Gzip, gzip(&data)), (Coding::Brotli, brotli(&data))] {
            let mut out = Small(0);
            let mut decoder = Decoder::new(&[coding], &mut out);
            decoder.push(&encoded).unwrap();
            decoder.finish().unwrap();
            assert_eq!(out.0, data.len());
        }
    }

    #[test]
    fn identity_and_unknown_codings() {
        let mut headers = HeaderMap::new();
        assert_eq!(Codings::of(&headers), Codings::Known(vec![]));
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("identity"));
        assert_eq!(Codings::of(&headers), Codings::Known(vec![]));
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip, zstd"));
        assert_eq!(Codings::of(&headers), Codings::Unknown("zstd".into()));
        assert_eq!(codings("gzip, BR"), [Coding::Gzip, Coding::Brotli]);
    }

    #[test]
    fn bad_and_cut_data_are_explained() {
        let bad = decode("gzip", b"this is not gzip at all", 5).unwrap_err();
        assert!(bad.starts_with("the body is not valid gzip data"), "{bad}");
        // Cut inside the compressed data (past its end, it is the checksum
        // that is found missing).
        let encoded = gzip(b"hello");
        assert_eq!(
            decode("gzip", &encoded[..encoded.len() - 10], 1).unwrap_err(),
            "the body ends in the middle of its gzip data"
        );
        let mut longer = encoded.clone();
        longer.extend_from_slice(b"junk after the end");
        assert!(decode("gzip", &longer, 4)
            .unwrap_err()
            .starts_with("the body is not valid gzip data"));
        let encoded = brotli(b"hello");
        assert_eq!(
            decode("br", &encoded[..encoded.len() - 1], 1).unwrap_err(),
            "the body ends in the middle of its br data"
        );
        assert_eq!(
            decode("deflate", b"x", 1).unwrap_err(),
            "the body ends in the middle of its deflate data"
        );
        assert!(decode("deflate", b"\x78\x9c\xff\xff", 1)
            .unwrap_err()
            .starts_with("the body"));
        // A later decoder's complaint is not blamed on an earlier one.
        assert!(decode("br, gzip", &gzip(b"not br"), 3)
            .unwrap_err()
            .starts_with("the body is not valid br data"));
        // Nothing at all is fine: a 304, a 204.
        assert_eq!(decode("gzip", b"", 1).unwrap(), b"");
    }

    #[test]
    fn output_failures_are_not_bad_data() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        for coding in [Coding::Gzip, Coding::Brotli] {
            let encoded = match coding {
                Coding::Gzip => gzip(b"hello"),
                _ => brotli(b"hello"),
            };
            let mut decoder = Decoder::new(&[coding], Closed);
            let failed = decoder.push(&encoded).and_then(|()| decoder.finish());
            assert!(
                matches!(failed, Err(BodyError::Output(ref error)) if error.kind() == io::ErrorKind::BrokenPipe),
                "{coding:?}: {failed:?}"
            );
        }
    }
}
