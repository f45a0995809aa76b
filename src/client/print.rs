//! Printing an exchange: the request as sent (head and body, byte for
//! byte), the response head as received, and response bodies shown the
//! way their content type reads best.
//!
//! A body is written as it arrives unless it is being reformatted (JSON
//! indented, CSV aligned): only then is it gathered whole first. Nothing
//! here changes the bytes sent to a pipe unless colours or formatting
//! were asked for.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use crate::cli::RequestOptions;

use super::json::{self, Layout};
use super::request::Payload;
use super::style::{Paint, Style};
use super::table;

/// Which parts of an exchange are printed (`--print HBhb`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sections {
    pub request_head: bool,
    pub request_body: bool,
    pub response_head: bool,
    pub response_body: bool,
}

impl Sections {
    /// From `--print` letters: H, B (request), h, b (response).
    pub fn from_letters(letters: &str) -> Sections {
        Sections {
            request_head: letters.contains('H'),
            request_body: letters.contains('B'),
            response_head: letters.contains('h'),
            response_body: letters.contains('b'),
        }
    }

    /// `-q` beats `--print`, which beats `-h`/`-b`, which beat `-v`;
    /// without any, a terminal gets the response head and body and a pipe
    /// the body alone.
    pub fn choose(options: &RequestOptions, terminal: bool) -> Sections {
        Sections::choose_with(options, options.verbose, terminal)
    }

    /// As [`Sections::choose`], with the verbosity decided elsewhere (the
    /// shell's `:verbose`).
    pub fn choose_with(options: &RequestOptions, verbose: bool, terminal: bool) -> Sections {
        let letters = if options.quiet {
            ""
        } else if let Some(letters) = &options.print {
            letters
        } else if options.headers && options.body {
            "hb"
        } else if options.headers {
            "h"
        } else if options.body {
            "b"
        } else if verbose {
            "HBhb"
        } else if terminal {
            "hb"
        } else {
            "b"
        };
        Sections::from_letters(letters)
    }

    pub fn shows_request(&self) -> bool {
        self.request_head || self.request_body
    }
}

/// How a body's content type is best shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Json,
    Ndjson,
    Csv,
    Other,
}

impl Kind {
    fn of(content_type: Option<&str>) -> Kind {
        let media = content_type
            .and_then(|value| value.split(';').next())
            .map(|media| media.trim().to_ascii_lowercase())
            .unwrap_or_default();
        match media.as_str() {
            "application/json" => Kind::Json,
            "application/x-ndjson" | "application/ndjson" | "application/jsonl" => Kind::Ndjson,
            "text/csv" => Kind::Csv,
            media if media.ends_with("+json") => Kind::Json,
            _ => Kind::Other,
        }
    }
}

/// What happens to the chunks of the body being printed.
enum BodyMode {
    /// Not printed.
    Discard,
    /// Gathered whole, then reformatted.
    Whole(Kind, Vec<u8>),
    /// Printed line by line (NDJSON, `--stream`), the unfinished line
    /// kept back; each line that is JSON is laid out so.
    Lines(Vec<u8>, Layout),
    /// Written as it arrives; `checked` once the first chunk has been
    /// looked at for binary data.
    Stream { checked: bool },
}

/// Prints exchanges to one output.
pub struct Printer {
    out: Box<dyn Write + Send>,
    style: Style,
    pub sections: Sections,
    /// Whether anything has been printed for this exchange yet: sections
    /// are separated by one empty line.
    printed: bool,
    at_line_start: bool,
    body: BodyMode,
    body_started: bool,
    /// `--download`: the response body goes there, not to `out`.
    pub download: Option<super::download::Download>,
    /// `--stream`: every body is printed line by line as it arrives, never
    /// gathered whole.
    pub stream: bool,
    /// `--sorted`: headers by name, and the keys of JSON bodies, sorted.
    pub sorted: bool,
}

impl Printer {
    pub fn new(out: Box<dyn Write + Send>, style: Style, sections: Sections) -> Printer {
        Printer {
            out,
            style,
            sections,
            printed: false,
            at_line_start: true,
            body: BodyMode::Discard,
            body_started: false,
            download: None,
            stream: false,
            sorted: false,
        }
    }

    pub fn stdout(style: Style, sections: Sections) -> Printer {
        Printer::new(Box::new(io::stdout()), style, sections)
    }

    /// Starts a new exchange (the shell prints many).
    pub fn begin(&mut self) {
        self.printed = false;
        self.body = BodyMode::Discard;
    }

    pub fn request_head(&mut self, head: &[u8]) -> io::Result<()> {
        if !self.sections.request_head {
            return Ok(());
        }
        self.separate()?;
        let text = String::from_utf8_lossy(head);
        let lines = self.ordered(head_lines(&text).collect());
        let mut lines = lines.into_iter();
        if let Some(first) = lines.next() {
            let mut parts = first.splitn(3, ' ');
            let method = parts.next().unwrap_or_default();
            let target = parts.next().unwrap_or_default();
            let version = parts.next().unwrap_or_default();
            let line = format!(
                "{} {} {}",
                self.style.paint(Paint::Method, method),
                target,
                self.style.paint(Paint::Protocol, version)
            );
            self.line(&line)?;
        }
        for line in lines {
            self.header_line(line)?;
        }
        Ok(())
    }

    pub fn request_body(
        &mut self,
        payload: &Payload,
        content_type: Option<&str>,
    ) -> io::Result<()> {
        if !self.sections.request_body {
            return Ok(());
        }
        match payload {
            Payload::Empty => Ok(()),
            Payload::Bytes(bytes) => {
                self.separate()?;
                // The bytes as they went on the wire, never re-indented:
                // colours mark JSON up, its text stays what was sent.
                let coloured = (Kind::of(content_type) == Kind::Json && self.style.colors)
                    .then(|| json::render(bytes, Layout::Preserve, &self.style))
                    .flatten();
                match coloured {
                    Some(text) => self.write(text.as_bytes()),
                    None => self.stream(bytes),
                }
            }
            Payload::File { path, len } => {
                self.separate()?;
                let note = format!("[{len} bytes streamed from {}]", path.display());
                let note = self.style.paint(Paint::Faint, &note).into_owned();
                self.line(&note)
            }
            // The text of a multipart body as sent, each file as a note.
            Payload::Parts { parts, .. } => {
                self.separate()?;
                for part in parts {
                    match part {
                        super::upload::Part::Bytes(bytes) => self.stream(bytes)?,
                        super::upload::Part::File { path, len } => {
                            let note = match len {
                                Some(len) => {
                                    format!("[{len} bytes streamed from {}]", path.display())
                                }
                                None => format!("[streamed from {}]", path.display()),
                            };
                            let note = self.style.paint(Paint::Faint, &note).into_owned();
                            self.write(note.as_bytes())?;
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// The response head(s): interim `1xx` heads, an empty line, the final
    /// head.
    pub fn response_head(&mut self, head: &[u8]) -> io::Result<()> {
        if !self.sections.response_head {
            return Ok(());
        }
        self.separate()?;
        let text = String::from_utf8_lossy(head);
        let mut status_line_next = true;
        for line in self.ordered(head_lines(&text).collect()) {
            if line.is_empty() {
                self.line("")?;
                status_line_next = true;
            } else if std::mem::take(&mut status_line_next) {
                let (version, status) = line.split_once(' ').unwrap_or((line, ""));
                let code = status
                    .get(..3)
                    .and_then(|code| code.parse().ok())
                    .unwrap_or(0);
                let line = format!(
                    "{} {}",
                    self.style.paint(Paint::Protocol, version),
                    self.style.paint(Paint::for_status(code), status)
                );
                self.line(&line)?;
            } else {
                self.header_line(line)?;
            }
        }
        Ok(())
    }

    /// Prepares for a response body of this content type.
    pub fn start_body(&mut self, content_type: Option<&str>) {
        self.body_started = false;
        if !self.sections.response_body {
            self.body = BodyMode::Discard;
            return;
        }
        let pretty = self.style.format || self.style.colors;
        self.body = match Kind::of(content_type) {
            _ if self.stream && pretty => BodyMode::Lines(Vec::new(), self.layout()),
            Kind::Json if pretty => BodyMode::Whole(Kind::Json, Vec::new()),
            Kind::Csv if self.style.format => BodyMode::Whole(Kind::Csv, Vec::new()),
            Kind::Ndjson if pretty => BodyMode::Lines(Vec::new(), Layout::Preserve),
            _ => BodyMode::Stream { checked: false },
        };
    }

    pub fn body_chunk(&mut self, chunk: &[u8]) -> io::Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        match &mut self.body {
            BodyMode::Discard => Ok(()),
            BodyMode::Whole(_, gathered) => {
                gathered.extend_from_slice(chunk);
                Ok(())
            }
            BodyMode::Lines(pending, layout) => {
                let layout = *layout;
                pending.extend_from_slice(chunk);
                let Some(last_newline) = pending.iter().rposition(|byte| *byte == b'\n') else {
                    return Ok(());
                };
                let complete: Vec<u8> = pending.drain(..=last_newline).collect();
                self.separate_body()?;
                self.lines(&complete, layout)
            }
            BodyMode::Stream { checked } => {
                let first = !std::mem::replace(checked, true);
                if first && self.style.terminal && chunk.contains(&0) {
                    self.body = BodyMode::Discard;
                    self.separate_body()?;
                    let note = "[binary data not shown on a terminal; pipe or redirect the output]";
                    let note = self.style.paint(Paint::Faint, note).into_owned();
                    return self.line(&note);
                }
                if first {
                    self.separate_body()?;
                }
                self.stream(chunk)
            }
        }
    }

    /// The body is complete: print what was gathered, end the line on a
    /// terminal.
    pub fn finish_body(&mut self) -> io::Result<()> {
        match std::mem::replace(&mut self.body, BodyMode::Discard) {
            BodyMode::Whole(kind, mut gathered) if !gathered.is_empty() => {
                self.separate_body()?;
                if kind == Kind::Json && self.sorted {
                    if let Some(sorted) = json::sort_keys(&gathered) {
                        gathered = sorted.into_bytes();
                    }
                }
                let rendered = match kind {
                    Kind::Csv => table::render(&gathered, &self.style),
                    _ => json::render(&gathered, self.layout(), &self.style),
                };
                match rendered {
                    Some(text) => self.write(text.as_bytes())?,
                    None => self.stream(&gathered)?,
                }
            }
            BodyMode::Lines(rest, layout) if !rest.is_empty() => {
                self.separate_body()?;
                self.lines(&rest, layout)?;
            }
            _ => {}
        }
        self.end()
    }

    /// Ends the exchange's output: a terminal's prompt starts on its own
    /// line; a pipe gets no byte that was not received.
    pub fn end(&mut self) -> io::Result<()> {
        if self.style.terminal && !self.at_line_start {
            self.write(b"\n")?;
        }
        self.out.flush()
    }

    /// Ends an exchange that another follows (a redirect's hop): an empty
    /// line between them, when anything was printed.
    pub fn between_exchanges(&mut self) -> io::Result<()> {
        if self.printed {
            if !self.at_line_start {
                self.write(b"\n")?;
            }
            self.write(b"\n")?;
        }
        self.out.flush()
    }

    fn layout(&self) -> Layout {
        if self.style.format {
            Layout::Indent
        } else {
            Layout::Preserve
        }
    }

    /// Complete lines, each JSON one rendered on its own (compact for
    /// NDJSON, indented under `--stream`), others as they are.
    fn lines(&mut self, lines: &[u8], layout: Layout) -> io::Result<()> {
        let text = String::from_utf8_lossy(lines);
        let mut out = String::with_capacity(text.len());
        for line in text.split_inclusive('\n') {
            let (content, newline) = match line.strip_suffix('\n') {
                Some(content) => (content, "\n"),
                None => (line, ""),
            };
            let sorted = self
                .sorted
                .then(|| json::sort_keys(content.as_bytes()))
                .flatten();
            let content = sorted.as_deref().unwrap_or(content);
            out.push_str(&match layout {
                Layout::Preserve => json::render_line(content, &self.style),
                Layout::Indent => json::render(content.as_bytes(), layout, &self.style)
                    .unwrap_or_else(|| content.to_string()),
            });
            out.push_str(newline);
        }
        self.stream(out.as_bytes())
    }

    /// A head's lines; under `--sorted` the headers after each start line
    /// (a head follows an empty line) sorted by name, stably.
    fn ordered<'a>(&self, mut lines: Vec<&'a str>) -> Vec<&'a str> {
        if self.sorted {
            let name = |line: &&str| {
                line.split(':')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_lowercase()
            };
            for head in lines.split_mut(|line| line.is_empty()) {
                if let Some((_, headers)) = head.split_first_mut() {
                    headers.sort_by_cached_key(name);
                }
            }
        }
        lines
    }

    fn header_line(&mut self, line: &str) -> io::Result<()> {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let line = format!("{}:{value}", self.style.paint(Paint::HeaderName, name));
        self.line(&line)
    }

    /// An empty line between sections of one exchange.
    fn separate(&mut self) -> io::Result<()> {
        if self.printed {
            if !self.at_line_start {
                self.write(b"\n")?;
            }
            self.write(b"\n")?;
        }
        self.printed = true;
        Ok(())
    }

    /// Separates the body from the head before it, once, when its first
    /// bytes are printed.
    fn separate_body(&mut self) -> io::Result<()> {
        if std::mem::replace(&mut self.body_started, true) {
            return Ok(());
        }
        self.separate()
    }

    fn line(&mut self, line: &str) -> io::Result<()> {
        self.write(line.as_bytes())?;
        self.write(b"\n")
    }

    /// Writes and flushes, so that a slow stream shows as it comes.
    fn stream(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write(bytes)?;
        self.out.flush()
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let Some(last) = bytes.last() {
            self.out.write_all(bytes)?;
            self.at_line_start = *last == b'\n';
        }
        Ok(())
    }
}

/// Output kept in memory, for exchanges whose body the program reads
/// itself (the shell's table list) rather than shows.
#[derive(Clone, Default)]
pub struct Collected(Arc<Mutex<Vec<u8>>>);

impl Collected {
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }
}

impl Write for Collected {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The lines of a head without their line ends or the final empty line.
fn head_lines(text: &str) -> impl Iterator<Item = &str> {
    let text = text.trim_end_matches(['\r', '\n']);
    text.split('\n').map(|line| line.trim_end_matches('\r'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn printer(style: Style, letters: &str) -> (Printer, Collected) {
        let captured = Collected::default();
        let printer = Printer::new(
            Box::new(captured.clone()),
            style,
            Sections::from_letters(letters),
        );
        (printer, captured)
    }

    fn text(captured: &Collected) -> String {
        String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
    }

    fn terminal() -> Style {
        Style {
            colors: false,
            format: true,
            terminal: true,
            theme: crate::cli::Theme::Auto,
        }
    }

    #[test]
    fn sections_follow_httpie_precedence() {
        let mut options = RequestOptions::default();
        assert_eq!(
            Sections::choose(&options, true),
            Sections::from_letters("hb")
        );
        assert_eq!(
            Sections::choose(&options, false),
            Sections::from_letters("b")
        );
        options.verbose = true;
        assert_eq!(
            Sections::choose(&options, false),
            Sections::from_letters("HBhb")
        );
        options.headers = true;
        assert_eq!(
            Sections::choose(&options, false),
            Sections::from_letters("h")
        );
        options.print = Some("Bb".into());
        assert_eq!(
            Sections::choose(&options, false),
            Sections::from_letters("Bb")
        );
        options.quiet = true;
        assert_eq!(Sections::choose(&options, false), Sections::default());
    }

    #[test]
    fn a_pipe_gets_the_body_bytes_and_nothing_else() {
        let (mut printer, out) = printer(Style::plain(), "b");
        printer.begin();
        printer.response_head(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
        printer.start_body(Some("application/json"));
        printer.body_chunk(b"{\"a\":").unwrap();
        printer.body_chunk(b"1}").unwrap();
        printer.finish_body().unwrap();
        assert_eq!(text(&out), "{\"a\":1}");
    }

    #[test]
    fn a_terminal_gets_heads_and_formatted_bodies() {
        let (mut printer, out) = printer(terminal(), "HBhb");
        printer.begin();
        printer
            .request_head(b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n")
            .unwrap();
        printer
            .request_body(
                &Payload::Bytes("{\"a\":1}".into()),
                Some("application/json"),
            )
            .unwrap();
        printer
            .response_head(b"HTTP/1.1 201 Created\r\nContent-Type: text/csv\r\n\r\n")
            .unwrap();
        printer.start_body(Some("text/csv; charset=utf-8"));
        printer.body_chunk(b"id,name\n1,kim\n").unwrap();
        printer.finish_body().unwrap();
        assert_eq!(
            text(&out),
            "POST /p HTTP/1.1\nHost: x\nContent-Type: application/json\n\n{\"a\":1}\n\n\
             HTTP/1.1 201 Created\nContent-Type: text/csv\n\nid  name\n──  ────\n 1  kim\n"
        );
    }

    #[test]
    fn streamed_text_gets_a_final_newline_only_on_a_terminal() {
        let (mut printer, out) = printer(terminal(), "hb");
        printer.begin();
        printer.response_head(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
        printer.start_body(Some("text/plain"));
        printer.body_chunk(b"hello").unwrap();
        printer.body_chunk(b" world").unwrap();
        printer.finish_body().unwrap();
        assert_eq!(text(&out), "HTTP/1.1 200 OK\n\nhello world\n");
    }

    #[test]
    fn ndjson_prints_line_by_line() {
        let (mut printer, out) = printer(terminal(), "b");
        printer.begin();
        printer.start_body(Some("application/x-ndjson"));
        printer.body_chunk(b"{\"a\":1}\n{\"a\"").unwrap();
        assert_eq!(text(&out), "{\"a\":1}\n");
        printer.body_chunk(b":2}\n").unwrap();
        printer.finish_body().unwrap();
        assert_eq!(text(&out), "{\"a\":1}\n{\"a\":2}\n");
    }

    #[test]
    fn binary_is_not_shown_on_a_terminal() {
        let (mut printer, out) = printer(terminal(), "b");
        printer.begin();
        printer.start_body(Some("application/octet-stream"));
        printer.body_chunk(b"\x00\x01\x02").unwrap();
        printer.body_chunk(b"more").unwrap();
        printer.finish_body().unwrap();
        assert!(text(&out).starts_with("[binary data not shown"));
        assert!(!text(&out).contains("more"));
    }

    #[test]
    fn interim_heads_are_shown_apart() {
        let (mut printer, out) = printer(Style::plain(), "h");
        printer.begin();
        printer
            .response_head(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nA: b\r\n\r\n")
            .unwrap();
        assert_eq!(
            text(&out),
            "HTTP/1.1 100 Continue\n\nHTTP/1.1 200 OK\nA: b\n"
        );
    }
}
