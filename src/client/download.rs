//! `--download`: the response body saved to a file as it arrives (never
//! held whole), with a progress bar on a terminal, and resumed with
//! `--continue`.
//!
//! The file is chosen once the answer's head is in: `-o FILE`, else the
//! name its `Content-Disposition` gives, else the last segment of the URL;
//! a name that exists gets `-1`, `-2`… appended unless `--overwrite`.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::StatusCode;
use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::error::ClientError;
use super::items::Item;
use super::request::Prepared;
use crate::cli::TransferOptions;

/// A download in progress, or about to be.
pub struct Download {
    /// `-o FILE`.
    output: Option<PathBuf>,
    /// Bytes already in `-o FILE` that `--continue` asked the rest of.
    resume_from: u64,
    overwrite: bool,
    /// `--download` without `-o`, stdout redirected: the body goes there.
    to_stdout: bool,
    /// The name the URL suggests (its last path segment).
    url_name: String,
    quiet: bool,
    saving: Option<Saving>,
    /// Why writing failed, when it did: said instead of a bare I/O error.
    pub failed: Option<ClientError>,
    /// What became of the last answer's body.
    pub outcome: Outcome,
}

/// Where the body is going.
struct Saving {
    out: Box<dyn Write + Send>,
    /// `None` for stdout.
    path: Option<PathBuf>,
    bar: ProgressBar,
    written: u64,
    /// Bytes that were in the file before (a resumed download).
    kept: u64,
    started: Instant,
}

/// What became of an answer's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing was saved (no answer yet, a HEAD, or not a 2xx).
    NotSaved,
    Saved,
    /// `--continue`, and the server said there is nothing more (416).
    AlreadyComplete,
}

impl Download {
    /// The download `--download` asks for, or none. Adjusts the request:
    /// the body is asked for as it is stored (`Accept-Encoding: identity`,
    /// unless an item names one), and from the byte `--continue` resumes at.
    pub fn prepare(
        transfer: &TransferOptions,
        quiet: bool,
        items: &[Item],
        prepared: &mut Prepared,
    ) -> Result<Option<Download>, ClientError> {
        if !transfer.download {
            return Ok(None);
        }
        let given = |wanted: &header::HeaderName| {
            items
                .iter()
                .any(|item| matches!(item, Item::Header { name, .. } if name == wanted))
        };
        if !given(&header::ACCEPT_ENCODING) {
            prepared
                .headers
                .retain(|(name, _)| *name != header::ACCEPT_ENCODING);
            prepared.headers.push((
                header::ACCEPT_ENCODING,
                HeaderValue::from_static("identity"),
            ));
        }
        let mut resume_from = 0;
        if let (true, Some(path)) = (transfer.resume, &transfer.output) {
            resume_from = match std::fs::metadata(path) {
                Ok(meta) if meta.is_dir() => {
                    return Err(ClientError::file(
                        path,
                        io::Error::other("it is a directory"),
                    ))
                }
                Ok(meta) => meta.len(),
                Err(error) if error.kind() == io::ErrorKind::NotFound => 0,
                Err(error) => return Err(ClientError::file(path, error)),
            };
            if resume_from > 0 && !given(&header::RANGE) {
                let range = format!("bytes={resume_from}-");
                prepared.headers.push((
                    header::RANGE,
                    HeaderValue::from_str(&range).expect("digits are a header value"),
                ));
            }
        }
        Ok(Some(Download {
            output: transfer.output.clone(),
            resume_from,
            overwrite: transfer.overwrite,
            to_stdout: transfer.output.is_none() && !io::stdout().is_terminal(),
            url_name: name_from_path(prepared.url.target()),
            quiet,
            saving: None,
            failed: None,
            outcome: Outcome::NotSaved,
        }))
    }

    /// The answer's head is in: decides whether its body is saved, and
    /// where. Returns whether to read the body into [`Download::write`].
    pub fn start(&mut self, status: StatusCode, headers: &HeaderMap) -> Result<bool, ClientError> {
        self.saving = None;
        self.outcome = Outcome::NotSaved;
        if status == StatusCode::RANGE_NOT_SATISFIABLE && self.resume_from > 0 {
            self.outcome = Outcome::AlreadyComplete;
            return Ok(false);
        }
        if !status.is_success() {
            return Ok(false);
        }
        let length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok());
        let appending = status == StatusCode::PARTIAL_CONTENT && self.resume_from > 0;
        if appending {
            let start = headers
                .get(header::CONTENT_RANGE)
                .and_then(|value| value.to_str().ok())
                .and_then(range_start);
            if start != Some(self.resume_from) {
                return Err(ClientError::Http {
                    addr: self.shown_name(None),
                    reason: format!(
                        "asked for the rest from byte {}, the server sent a part starting at {} \
                         (Content-Range): nothing was written",
                        self.resume_from,
                        start.map_or("an unknown byte".to_string(), |start| start.to_string())
                    ),
                });
            }
        } else if self.resume_from > 0 && !self.quiet {
            complain!(
                "csvd: the server sent the whole body, not the rest: `{}` is written again from \
                 the start",
                self.shown_name(None)
            );
        }
        let (out, path): (Box<dyn Write + Send>, Option<PathBuf>) = match &self.output {
            Some(path) => {
                let file = if appending {
                    OpenOptions::new().append(true).open(path)
                } else {
                    File::create(path)
                };
                let file =
                    file.map_err(|error| self.write_failed(&path.display().to_string(), error))?;
                (Box::new(file), Some(path.clone()))
            }
            None if self.to_stdout => (Box::new(io::stdout()), None),
            None => {
                let name = headers
                    .get(header::CONTENT_DISPOSITION)
                    .and_then(|value| name_from_disposition(value.as_bytes()))
                    .unwrap_or_else(|| {
                        with_extension(&self.url_name, headers.get(header::CONTENT_TYPE))
                    });
                let (file, path) = self.create(&name)?;
                (Box::new(file), Some(path))
            }
        };
        let kept = if appending { self.resume_from } else { 0 };
        let total = length.map(|length| length + kept);
        let bar = progress_bar(&self.shown_name(path.as_deref()), total, kept, self.quiet);
        self.saving = Some(Saving {
            out,
            path,
            bar,
            written: 0,
            kept,
            started: Instant::now(),
        });
        Ok(true)
    }

    /// A new file for a name the answer or the URL gave.
    fn create(&self, name: &str) -> Result<(File, PathBuf), ClientError> {
        if self.overwrite {
            return File::create(name)
                .map(|file| (file, PathBuf::from(name)))
                .map_err(|error| self.write_failed(name, error));
        }
        for attempt in 0..10_000 {
            let path = match attempt {
                0 => PathBuf::from(name),
                n => PathBuf::from(format!("{name}-{n}")),
            };
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => return Ok((file, path)),
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(error) => return Err(self.write_failed(&path.display().to_string(), error)),
            }
        }
        Err(self.write_failed(
            name,
            io::Error::other("it and 9999 numbered names after it exist already"),
        ))
    }

    fn shown_name(&self, path: Option<&Path>) -> String {
        match path.or(self.output.as_deref()) {
            Some(path) => path.display().to_string(),
            None => "standard output".to_string(),
        }
    }

    /// The body is complete: the bar goes, a line on stderr says what was
    /// saved.
    pub fn finish(&mut self) -> Result<(), ClientError> {
        let Some(mut saving) = self.saving.take() else {
            if self.outcome == Outcome::AlreadyComplete && !self.quiet {
                complain!(
                    "csvd: `{}` is already complete: the server has nothing after byte {}",
                    self.shown_name(None),
                    self.resume_from
                );
            }
            return Ok(());
        };
        saving.bar.finish_and_clear();
        let shown = self.shown_name(saving.path.as_deref());
        saving
            .out
            .flush()
            .map_err(|error| self.write_failed(&shown, error))?;
        self.outcome = Outcome::Saved;
        if !self.quiet {
            complain!("{}", saving.summary(&shown));
        }
        Ok(())
    }

    /// The body stopped short: says how much the file holds, and how to
    /// get the rest.
    pub fn interrupted(&mut self, error: ClientError) -> ClientError {
        let Some(saving) = self.saving.take() else {
            return error;
        };
        saving.bar.abandon();
        let _ = { saving.out }.flush();
        let (Some(path), ClientError::Http { addr, reason }) = (&saving.path, &error) else {
            return error;
        };
        let shown = path.display();
        ClientError::Http {
            addr: addr.clone(),
            reason: format!(
                "{reason}: the download stopped after {}, `{shown}` holds {} (`-d -c -o {shown}` \
                 resumes it)",
                HumanBytes(saving.written),
                HumanBytes(saving.kept + saving.written),
            ),
        }
    }

    fn write_failed(&self, shown: &str, error: io::Error) -> ClientError {
        ClientError::Unwritable {
            path: shown.to_string(),
            error,
        }
    }
}

impl Saving {
    fn summary(&self, shown: &str) -> String {
        let elapsed = self.started.elapsed();
        let seconds = elapsed.as_secs_f64();
        let rate = if seconds > 0.0 {
            (self.written as f64 / seconds) as u64
        } else {
            self.written
        };
        let resumed = if self.kept > 0 {
            format!(" (after the {} it had)", HumanBytes(self.kept))
        } else {
            String::new()
        };
        let into = match &self.path {
            Some(_) => format!("`{shown}`"),
            None => shown.to_string(),
        };
        format!(
            "csvd: saved {} to {into}{resumed} in {seconds:.2}s ({}/s)",
            HumanBytes(self.written),
            HumanBytes(rate)
        )
    }
}

impl Write for Download {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let Some(saving) = self.saving.as_mut() else {
            return Ok(bytes.len());
        };
        if let Err(error) = saving.out.write_all(bytes) {
            let shown = match &saving.path {
                Some(path) => path.display().to_string(),
                None => "standard output".to_string(),
            };
            let kind = error.kind();
            if kind != io::ErrorKind::BrokenPipe {
                self.failed = Some(self.write_failed(&shown, error));
            }
            return Err(io::Error::from(kind));
        }
        saving.written += bytes.len() as u64;
        saving.bar.inc(bytes.len() as u64);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The bar on stderr (a terminal only, and not with `--quiet`).
fn progress_bar(name: &str, total: Option<u64>, kept: u64, quiet: bool) -> ProgressBar {
    if quiet || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    let template = match total {
        Some(_) => "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {eta}",
        None => "{spinner} {msg} {bytes} {binary_bytes_per_sec}",
    };
    let style = ProgressStyle::with_template(template)
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(format!("downloading {name}"));
    bar.set_position(kept);
    bar.tick();
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// The first byte of `Content-Range: bytes FIRST-LAST/LENGTH`.
fn range_start(value: &str) -> Option<u64> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    rest.split('-').next()?.trim().parse().ok()
}

/// The last segment of a request target's path, decoded; `index` for `/`.
fn name_from_path(target: &str) -> String {
    let path = target.split(['?', '#']).next().unwrap_or_default();
    let last = path.rsplit('/').next().unwrap_or_default();
    let decoded = percent_encoding::percent_decode_str(last).decode_utf8_lossy();
    safe_name(&decoded).unwrap_or_else(|| "index".to_string())
}

/// The `filename*=UTF-8''…` (preferred) or `filename=` of a
/// `Content-Disposition`, made safe to create here.
fn name_from_disposition(value: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(value);
    let mut plain = None;
    let mut extended = None;
    for param in split_params(&text).into_iter().skip(1) {
        let Some((key, value)) = param.split_once('=') else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim();
        if key == "filename*" {
            // charset'language'percent-encoded
            let encoded = value.splitn(3, '\'').nth(2).unwrap_or(value);
            extended = Some(
                percent_encoding::percent_decode_str(encoded)
                    .decode_utf8_lossy()
                    .into_owned(),
            );
        } else if key == "filename" {
            plain = Some(unquote(value));
        }
    }
    extended.or(plain).and_then(|name| safe_name(&name))
}

/// Splits on `;` outside double quotes.
fn split_params(text: &str) -> Vec<String> {
    let mut params = vec![String::new()];
    let mut quoted = false;
    let mut escaped = false;
    for c in text.chars() {
        let current = params.last_mut().expect("never empty");
        match c {
            _ if escaped => {
                escaped = false;
                current.push(c);
            }
            '\\' if quoted => {
                escaped = true;
                current.push(c);
            }
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ';' if !quoted => params.push(String::new()),
            _ => current.push(c),
        }
    }
    params
}

fn unquote(value: &str) -> String {
    match value
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
    {
        Some(inner) => {
            let mut out = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => out.extend(chars.next()),
                    c => out.push(c),
                }
            }
            out
        }
        None => value.to_string(),
    }
}

/// A name a server suggested, as a file in the current directory: no
/// directories, no leading dots (no hidden files, no `..`), no control
/// characters, at most 200 bytes.
fn safe_name(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base.chars().filter(|c| !c.is_control()).collect();
    let mut cleaned = cleaned.trim().trim_start_matches('.').trim().to_string();
    while cleaned.len() > 200 {
        cleaned.pop();
    }
    (!cleaned.is_empty()).then_some(cleaned)
}

/// A name without an extension gets the one its content type has.
fn with_extension(name: &str, content_type: Option<&HeaderValue>) -> String {
    if name.contains('.') {
        return name.to_string();
    }
    let media = content_type
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|media| media.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let extension = match media.as_str() {
        "application/json" => "json",
        "text/csv" => "csv",
        "application/x-ndjson" | "application/ndjson" => "ndjson",
        "text/plain" => "txt",
        "text/html" => "html",
        "application/xml" | "text/xml" => "xml",
        "application/pdf" => "pdf",
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "application/zip" => "zip",
        "application/gzip" => "gz",
        _ => return name.to_string(),
    };
    format!("{name}.{extension}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_url_path() {
        assert_eq!(name_from_path("/people.csv?limit=3"), "people.csv");
        assert_eq!(name_from_path("/a/b/my%20file.txt"), "my file.txt");
        assert_eq!(name_from_path("/"), "index");
        assert_eq!(name_from_path("/..%2F..%2Fetc"), "etc");
        assert_eq!(name_from_path("/.hidden"), "hidden");
    }

    #[test]
    fn names_come_from_content_disposition() {
        let name = |value: &str| name_from_disposition(value.as_bytes());
        assert_eq!(name("attachment; filename=\"t.csv\""), Some("t.csv".into()));
        assert_eq!(name("attachment; filename=t.csv"), Some("t.csv".into()));
        assert_eq!(
            name("attachment; filename=\"a;b.txt\"; size=3"),
            Some("a;b.txt".into())
        );
        assert_eq!(
            name("attachment; filename=\"x.txt\"; filename*=UTF-8''caf%C3%A9.txt"),
            Some("café.txt".into())
        );
        assert_eq!(
            name("attachment; filename=\"../../etc/passwd\""),
            Some("passwd".into())
        );
        assert_eq!(name("inline"), None);
        assert_eq!(name("attachment; filename=\"..\""), None);
    }

    #[test]
    fn a_name_without_extension_takes_the_content_types() {
        let csv = HeaderValue::from_static("text/csv; charset=utf-8");
        assert_eq!(with_extension("people", Some(&csv)), "people.csv");
        assert_eq!(with_extension("people.txt", Some(&csv)), "people.txt");
        assert_eq!(with_extension("blob", None), "blob");
    }

    #[test]
    fn content_range_gives_the_first_byte() {
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
        assert_eq!(range_start("bytes */200"), None);
    }
}
