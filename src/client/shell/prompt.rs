//! A request, asked for or typed whole: the seed's questions (a method
//! typed alone, then `path:` and, for POST, PUT and PATCH, `body:`), the
//! one-line form with the one-shot commands' items and flags, and sending
//! either with the session's headers.
//!
//! It never changes the session's settings (base URL, headers, verbosity):
//! only the `:commands` do. And it never lets a request read standard
//! input, which carries the shell's own lines.

use clap::{CommandFactory, FromArgMatches, Parser};
use hyper::Method;
use rustyline::history::FileHistory;
use rustyline::Editor;

use crate::cli::{RequestArgs, TlsOptions};

use super::super::error::ClientError;
use super::super::items::Item;
use super::super::print::{Printer, Sections};
use super::super::request::{Payload, Prepared};
use super::super::style::{Paint, Style};
use super::super::{encoding, parse_items};
use super::body::{self, Body};
use super::complete::{Prompt, ShellHelper};
use super::editor::Answer;
use super::session::Shell;
use super::METHODS;

/// A request line after the method, parsed with the one-shot grammar.
#[derive(Debug, Parser)]
#[command(no_binary_name = true, disable_version_flag = true)]
#[command(
    about = "A request typed in the shell: the method, then what the one-shot command takes."
)]
struct RequestLine {
    #[command(flatten)]
    request: RequestArgs,
}

impl Shell<'_> {
    /// The seed's flow: the method was typed alone, so ask for the path,
    /// then (for methods that carry one) the body.
    pub(super) fn guided(&mut self, editor: &mut Editor<ShellHelper, FileHistory>, method: Method) {
        let path = match self.ask(editor, Prompt::Path, "path: ") {
            Answer::Line(path) => path.trim().to_string(),
            Answer::Cancelled | Answer::Done => return say!("(cancelled)"),
        };
        let path = if path.is_empty() {
            "/".to_string()
        } else {
            path
        };
        let body = if [Method::POST, Method::PUT, Method::PATCH].contains(&method) {
            match self.ask(editor, Prompt::Body { path: path.clone() }, "body: ") {
                Answer::Line(body) => body.trim().to_string(),
                Answer::Cancelled | Answer::Done => return say!("(cancelled)"),
            }
        } else {
            String::new()
        };
        let request = RequestArgs {
            url: path,
            items: Vec::new(),
            raw: None,
            offline: false,
            curl: false,
            no_config: false,
            options: Default::default(),
            tls: TlsOptions::default(),
            hops: Default::default(),
            transfer: Default::default(),
            proxy: Default::default(),
            help: None,
        };
        match body::parse(&body) {
            Ok(body) => self.send(method, request, Some(body)),
            Err(reason) => complain!("csvd: {reason}"),
        }
    }

    /// `METHOD URL [items…] [flags]`, parsed as the one-shot commands are.
    pub(super) fn one_line(&mut self, method: Method, words: &[String]) {
        // CSVD_CA was read when the shell started: on a line, only what is
        // typed counts.
        let command = RequestLine::command()
            .name(command_name(&method))
            .disable_help_flag(true)
            .mut_arg("ca", |arg| arg.env(None));
        let parsed = command
            .try_get_matches_from(words)
            .and_then(|matches| RequestLine::from_arg_matches(&matches));
        match parsed {
            Ok(line) => self.send(method, line.request, None),
            // Help is an "error" only to clap; both are for the person.
            Err(error) => say!("{}", error.render().to_string().trim_end()),
        }
    }

    fn send(&mut self, method: Method, request: RequestArgs, body: Option<Body>) {
        match self.exchange(method, &request, body) {
            Ok(()) => {}
            Err(ClientError::Cancelled) => say!("\n(cancelled)"),
            Err(error) => complain!("csvd: {error}"),
        }
    }

    fn exchange(
        &mut self,
        method: Method,
        request: &RequestArgs,
        body: Option<Body>,
    ) -> Result<(), ClientError> {
        let options = &request.options;
        if request.hops.follow || request.hops.auth.is_some() {
            let flag = if request.hops.follow {
                "--follow"
            } else {
                "--auth"
            };
            return Err(ClientError::item(
                flag,
                "only the one-shot commands (`csvd get …`) take it; in the shell, send an \
                 `Authorization:` header",
            ));
        }
        let one_shot_only = [
            (request.raw.is_some(), "--raw"),
            (request.hops.retry > 0, "--retry"),
            (
                request.hops.session.is_some() || request.hops.session_read_only.is_some(),
                "--session",
            ),
            (request.offline, "--offline"),
            (request.curl, "--curl"),
            (request.transfer.output.is_some(), "--output"),
            (request.transfer.download, "--download"),
            (request.transfer.ignore_stdin, "--ignore-stdin"),
        ];
        if let Some((_, flag)) = one_shot_only.iter().find(|(given, _)| *given) {
            return Err(ClientError::item(
                flag,
                "only the one-shot commands (`csvd post … --offline`) take it",
            ));
        }
        let url = self.base.resolve(&request.url)?;
        let mut line_items = parse_items(&request.items)?;
        let (json, fields) = match body {
            Some(Body::Json(json)) => (Some(json), false),
            Some(Body::Items(items)) => {
                let fields = !items.is_empty();
                line_items.extend(items);
                (None, fields)
            }
            None => (None, false),
        };
        if line_items.contains(&Item::BodyFile("-".into())) {
            return Err(ClientError::item(
                "@-",
                "the shell reads its standard input for commands; name a file",
            ));
        }
        let items = self.with_session_headers(line_items);
        let mut prepared = Prepared::new(method.clone(), url, &items, encoding(options))?;
        if let Some(json) = json {
            prepared = prepared.with_body(json, "application/json");
        }
        let mut style = Style::detect(options.pretty.or(self.pretty))
            .themed(options.style.unwrap_or(self.theme));
        if let (true, Payload::Bytes(sent)) = (fields, &prepared.payload) {
            say!("{}", style.paint(Paint::Faint, &sending(sent)));
        }
        // A shell's output is read by a person even when it is captured:
        // each exchange ends its line, and binary stays off the screen.
        style.terminal = true;
        // The shell always shows status and headers, as a terminal would.
        let sections = Sections::choose_with(options, options.verbose || self.verbose, true);
        let mut printer = Printer::stdout(style, sections);
        printer.stream = options.stream || self.stream;
        printer.sorted = options.sorted || self.sorted && !options.unsorted;
        let tls = self.tls_for(&request.tls)?;
        let timeout = options.timeout.or(self.timeout);
        let proxies = self.proxies_for(&request.proxy);
        let status = self.execute_via(&prepared, &mut printer, timeout, tls, proxies)?;
        let write = method != Method::GET && method != Method::HEAD;
        // A write may have made a table or a column; a server that did not
        // answer at the start may have come up since.
        if status.is_success() && (write || self.unanswered) && prepared.url.same_origin(&self.base)
        {
            let _ = self.refresh_tables();
        }
        Ok(())
    }
}

/// Fields typed at the body question can be read more than one way, so
/// what will be sent is said first, on one line.
fn sending(body: &[u8]) -> String {
    // A field read from a file can be long: the start says enough.
    const SHOWN: usize = 200;
    let text = String::from_utf8_lossy(body);
    match text.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("sending {}…", &text[..end]),
        None => format!("sending {text}"),
    }
}

/// The method a word names, in any case.
pub(super) fn method(word: &str) -> Option<Method> {
    let upper = word.to_ascii_uppercase();
    METHODS
        .contains(&upper.as_str())
        .then(|| Method::from_bytes(upper.as_bytes()).ok())
        .flatten()
}

/// The one-shot command a method is, for the one-line form's messages.
fn command_name(method: &Method) -> &'static str {
    match *method {
        Method::HEAD => "head",
        Method::POST => "post",
        Method::PUT => "put",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "get",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_case_insensitive_and_limited() {
        assert_eq!(method("get"), Some(Method::GET));
        assert_eq!(method("Patch"), Some(Method::PATCH));
        assert_eq!(method("OPTIONS"), None);
        assert_eq!(method("FETCH"), None);
    }
}
