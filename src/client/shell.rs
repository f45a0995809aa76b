//! `csvd shell [BASE_URL]`: the seed's `Enter Method / Path / Body`
//! prompt grown up. Type a method and answer the questions, or type a
//! whole request on one line (`POST /people name=kim`); the one-line form
//! takes the same items and flags as the one-shot commands.
//!
//! One keep-alive connection serves every request to the base URL's
//! server and is reopened when the server has closed it. History persists
//! between sessions; Tab completes methods, and table names and columns
//! when the server is csvd.

mod body;
mod complete;
mod words;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};
use hyper::{Method, StatusCode};
use rustyline::config::{CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::Editor;
use tokio::runtime::Runtime;

use crate::cli::{Pretty, RequestArgs, ShellArgs, TlsOptions};

use super::error::ClientError;
use super::exchange::Client;
use super::items::Item;
use super::print::{Collected, Printer, Sections};
use super::request::{Encoding, Payload, Prepared};
use super::style::{Paint, Style};
use super::tls::Tls;
use super::url::Url;
use super::{encoding, parse_items};

use body::Body;
use complete::{tables_from_json, Prompt, ShellHelper, Table};

/// The methods the shell sends, in the order it lists them.
pub const METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

/// How long the table list may take: it is a nicety, not worth a long
/// wait at start or after a write.
const TABLES_TIMEOUT: Duration = Duration::from_secs(5);

/// The shell's own commands, for completion.
pub const COMMANDS: [&str; 7] = [
    ":help", ":verbose", ":base", ":headers", ":tables", "exit", "quit",
];

const HELP: &str = "\
Requests
  get                       type a method alone and the shell asks for the path
                            (and for POST, PUT and PATCH the body)
  get /people name==kim     or type the whole request: method, path, items
  post /people name=kim age:=30
  patch /people/3 age:=31 -v
  Items and flags are those of `csvd get --help`: name=text, age:=30, q==kim,
  Header:value, bio=@file, @file.csv; -v, --csv, --form, -h, -b, --print;
  --ca FILE or -k for that request's https:// connection.
  At the body question, type fields (name:kim age:30, or name=kim, age=30; quote
  values with spaces), items (age:=30, bio=@file) or JSON ({\"name\": \"kim\"}).

Commands
  :verbose on|off           show each request as sent, too
  :base [URL]               show or change where paths point (http:// or https://)
  :headers [Name:value …]   show or set headers sent with every request
                            (`Name:` removes one, `:headers clear` all;
                            quote a value with spaces: 'Authorization:Bearer abc')
  :tables                   list the server's tables (csvd servers)
  :help                     this text
  exit, quit, Ctrl-D        leave

Tab completes methods, commands, and on a csvd server tables and columns.";

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

pub fn run(args: ShellArgs, runtime: &Runtime) -> anyhow::Result<ExitCode> {
    let base = Url::parse(&args.base_url)?;
    let tls = Tls::new(&args.tls)?;
    let helper = ShellHelper::new();
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .build();
    let mut editor: Editor<ShellHelper, FileHistory> = Editor::with_config(config)?;
    editor.set_helper(Some(helper.clone()));
    let history = args.history.clone().or_else(default_history);
    if let Some(path) = &history {
        // A first session has no history yet.
        let _ = editor.load_history(path);
    }
    let mut shell = Shell {
        base,
        client: Client::new(args.timeout, tls.clone()),
        timeout: args.timeout,
        tls_options: args.tls.clone(),
        tls,
        verbose: args.verbose,
        pretty: args.pretty,
        headers: Vec::new(),
        unanswered: false,
        helper,
        runtime,
    };
    shell.greet();
    loop {
        match shell.ask(&mut editor, Prompt::Command, &shell.prompt()) {
            Answer::Line(line) => {
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                let _ = editor.add_history_entry(line);
                if let Some(path) = &history {
                    save_history(&mut editor, path);
                }
                if matches!(line, "exit" | "quit" | ":exit" | ":quit" | ":q") {
                    break;
                }
                shell.line(&mut editor, line);
            }
            Answer::Cancelled => continue,
            Answer::Done => break,
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `$XDG_STATE_HOME/csvd/history`, else `~/.local/state/csvd/history`.
fn default_history() -> Option<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/state"))
        })?;
    Some(state.join("csvd").join("history"))
}

fn save_history(editor: &mut Editor<ShellHelper, FileHistory>, path: &PathBuf) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    // Appending keeps what other sessions wrote meanwhile.
    if let Err(error) = editor.append_history(path) {
        complain!(
            "csvd: cannot save the history to {}: {error}",
            path.display()
        );
    }
}

/// What a prompt got.
enum Answer {
    Line(String),
    /// Ctrl-C: drop this line (or this guided request).
    Cancelled,
    /// Ctrl-D or the end of input: leave.
    Done,
}

struct Shell<'a> {
    base: Url,
    client: Client,
    timeout: Option<Duration>,
    /// The session's trust settings, and what they built.
    tls_options: TlsOptions,
    tls: Tls,
    verbose: bool,
    pretty: Option<Pretty>,
    /// Header items sent with every request (`:headers`).
    headers: Vec<Item>,
    /// The last table list request got no answer at all.
    unanswered: bool,
    helper: ShellHelper,
    runtime: &'a Runtime,
}

impl Shell<'_> {
    fn prompt(&self) -> String {
        format!("{}> ", self.base.host_and_port())
    }

    fn ask(
        &self,
        editor: &mut Editor<ShellHelper, FileHistory>,
        prompt: Prompt,
        text: &str,
    ) -> Answer {
        self.helper.knowledge().prompt = prompt;
        match editor.readline(text) {
            Ok(line) => Answer::Line(line),
            Err(ReadlineError::Interrupted) => Answer::Cancelled,
            Err(ReadlineError::Eof) => Answer::Done,
            Err(error) => {
                complain!("csvd: cannot read the terminal: {error}");
                Answer::Done
            }
        }
    }

    fn greet(&mut self) {
        say!("csvd shell: requests go to {}", self.base);
        self.describe_server();
        say!(
            "Type a method ({}) or a whole request like `post /people name=kim`.\n\
             :help for help, Tab to complete, Ctrl-D to leave.",
            METHODS.join(", ")
        );
    }

    /// Says what the base URL's server is, as far as the table list tells.
    fn describe_server(&mut self) {
        match self.refresh_tables() {
            Ok(Some(tables)) if tables.is_empty() => {
                say!("It is a csvd server with no tables yet.")
            }
            Ok(Some(tables)) => {
                let names: Vec<&str> = tables.iter().map(|table| table.name.as_str()).collect();
                say!("It is a csvd server with tables: {}.", names.join(", "));
            }
            Ok(None) | Err(ClientError::Cancelled) => {}
            Err(error) => say!("It does not answer yet ({error})."),
        }
    }

    /// Asks the server for its tables (`GET /`); `None` when it is not a
    /// csvd server.
    fn refresh_tables(&mut self) -> Result<Option<Vec<Table>>, ClientError> {
        let url = self.base.resolve("/")?;
        let items = [Item::parse("Accept:application/json")?];
        let prepared = Prepared::new(Method::GET, url, &items, Encoding::Auto)?;
        let collected = Collected::default();
        let mut printer = Printer::new(
            Box::new(collected.clone()),
            Style::plain(),
            Sections::from_letters("b"),
        );
        let timeout = self
            .timeout
            .map_or(TABLES_TIMEOUT, |chosen| chosen.min(TABLES_TIMEOUT));
        let status = self.execute(&prepared, &mut printer, Some(timeout), None);
        self.unanswered = status.is_err();
        let tables = status?
            .is_success()
            .then(|| tables_from_json(&collected.take()))
            .flatten();
        self.helper.knowledge().tables = tables.clone().unwrap_or_default();
        Ok(tables)
    }

    fn line(&mut self, editor: &mut Editor<ShellHelper, FileHistory>, line: &str) {
        if let Some(command) = line.strip_prefix(':') {
            return self.command(command);
        }
        if matches!(line, "help" | "?") {
            return self.command("help");
        }
        let words = match words::split(line) {
            Ok(words) => words,
            Err(reason) => return complain!("csvd: {reason}"),
        };
        let Some((first, rest)) = words.split_first() else {
            return;
        };
        let Some(method) = method(first) else {
            return complain!(
                "csvd: `{first}` is not a method: type one of {} (or :help)",
                METHODS.join(", ")
            );
        };
        if rest.is_empty() {
            self.guided(editor, method);
        } else {
            self.one_line(method, rest);
        }
    }

    /// The seed's flow: the method was typed alone, so ask for the path,
    /// then (for methods that carry one) the body.
    fn guided(&mut self, editor: &mut Editor<ShellHelper, FileHistory>, method: Method) {
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
            options: Default::default(),
            tls: TlsOptions::default(),
            help: None,
        };
        match body::parse(&body) {
            Ok(body) => self.send(method, request, Some(body)),
            Err(reason) => complain!("csvd: {reason}"),
        }
    }

    /// `METHOD URL [items…] [flags]`, parsed as the one-shot commands are.
    fn one_line(&mut self, method: Method, words: &[String]) {
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
        let mut style = Style::detect(options.pretty.or(self.pretty));
        if let (true, Payload::Bytes(sent)) = (fields, &prepared.payload) {
            say!("{}", style.paint(Paint::Faint, &sending(sent)));
        }
        // A shell's output is read by a person even when it is captured:
        // each exchange ends its line, and binary stays off the screen.
        style.terminal = true;
        // The shell always shows status and headers, as a terminal would.
        let sections = Sections::choose_with(options, options.verbose || self.verbose, true);
        let mut printer = Printer::stdout(style, sections);
        let tls = self.tls_for(&request.tls)?;
        let timeout = options.timeout.or(self.timeout);
        let status = self.execute(&prepared, &mut printer, timeout, tls)?;
        let write = method != Method::GET && method != Method::HEAD;
        // A write may have made a table or a column; a server that did not
        // answer at the start may have come up since.
        if status.is_success() && (write || self.unanswered) && prepared.url.same_origin(&self.base)
        {
            let _ = self.refresh_tables();
        }
        Ok(())
    }

    /// The trust a line's own `--ca` or `--insecure` asks for, when it
    /// differs from the session's; `None` for the session's own.
    fn tls_for(&self, line: &TlsOptions) -> Result<Option<Tls>, ClientError> {
        let wanted = TlsOptions {
            ca: line.ca.clone().or_else(|| self.tls_options.ca.clone()),
            insecure: line.insecure || self.tls_options.insecure,
        };
        if wanted == self.tls_options {
            Ok(None)
        } else {
            Tls::new(&wanted).map(Some)
        }
    }

    /// Sends a request on the shell's connection, or on a connection of
    /// its own when the line asked for other TLS trust; Ctrl-C abandons
    /// it, and the connection with it (an answer may still be on its way).
    fn execute(
        &mut self,
        prepared: &Prepared,
        printer: &mut Printer,
        timeout: Option<Duration>,
        tls: Option<Tls>,
    ) -> Result<StatusCode, ClientError> {
        let mut one_off;
        let client = match tls {
            Some(tls) => {
                one_off = Client::new(timeout, tls);
                &mut one_off
            }
            None => {
                self.client.timeout = timeout;
                &mut self.client
            }
        };
        let outcome = self.runtime.block_on(async {
            tokio::select! {
                outcome = client.execute(prepared, printer) => Some(outcome),
                _ = tokio::signal::ctrl_c() => None,
            }
        });
        outcome.unwrap_or_else(|| {
            self.client = Client::new(self.timeout, self.tls.clone());
            Err(ClientError::Cancelled)
        })
    }

    /// The session's headers first, minus those the line sets itself.
    fn with_session_headers(&self, line: Vec<Item>) -> Vec<Item> {
        let overridden = |name: &hyper::header::HeaderName| {
            line.iter()
                .any(|item| matches!(item, Item::Header { name: have, .. } if have == name))
        };
        let mut items: Vec<Item> = self
            .headers
            .iter()
            .filter(|item| !matches!(item, Item::Header { name, .. } if overridden(name)))
            .cloned()
            .collect();
        items.extend(line);
        items
    }

    /// A `:command`, its words split as request lines are (so
    /// `:headers 'Authorization:Bearer x'` is one header).
    fn command(&mut self, command: &str) {
        let words = match words::split(command) {
            Ok(words) => words,
            Err(reason) => return complain!("csvd: {reason}"),
        };
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let (name, rest) = words
            .split_first()
            .map_or(("", &[][..]), |(name, rest)| (*name, rest));
        match (name, rest) {
            ("help" | "h" | "?", _) => say!("{HELP}"),
            ("verbose", []) => {}
            ("verbose", ["on"]) => self.verbose = true,
            ("verbose", ["off"]) => self.verbose = false,
            ("verbose", _) => complain!("csvd: use `:verbose on` or `:verbose off`"),
            ("base", []) => say!("{}", self.base),
            ("base", [url]) => match Url::parse(url) {
                Ok(base) => {
                    self.base = base;
                    say!("Requests now go to {}", self.base);
                    self.describe_server();
                }
                Err(error) => complain!("csvd: {error}"),
            },
            ("headers", []) => self.show_headers(),
            ("headers", ["clear"]) => self.headers.clear(),
            ("headers", items) => self.set_headers(items),
            ("tables", []) => self.show_tables(),
            _ => {
                return complain!(
                "csvd: `:{name}` is not a shell command: :help, :verbose, :base, :headers, :tables"
            )
            }
        }
        if name == "verbose" {
            say!("verbose is {}", if self.verbose { "on" } else { "off" });
        }
    }

    fn show_headers(&self) {
        if self.headers.is_empty() {
            return say!("no headers of your own (set some with :headers Name:value)");
        }
        for item in &self.headers {
            if let Item::Header { name, value } = item {
                let value = value
                    .as_ref()
                    .map(|value| String::from_utf8_lossy(value.as_bytes()));
                match value {
                    Some(value) => say!("{name}: {value}"),
                    None => say!("{name}: (removed)"),
                }
            }
        }
    }

    /// `Name:value` sets, `Name:` drops what the session had set.
    fn set_headers(&mut self, texts: &[&str]) {
        for text in texts {
            match Item::parse(text) {
                Ok(Item::Header { name, value }) => {
                    self.headers.retain(
                        |item| !matches!(item, Item::Header { name: have, .. } if *have == name),
                    );
                    if value.is_some() {
                        self.headers.push(Item::Header { name, value });
                    }
                }
                Ok(_) => complain!("csvd: `{text}` is not a header; write Name:value"),
                Err(error) => complain!("csvd: {error}"),
            }
        }
    }

    fn show_tables(&mut self) {
        match self.refresh_tables() {
            Ok(Some(tables)) if tables.is_empty() => say!("no tables yet"),
            Ok(Some(tables)) => {
                for table in tables {
                    say!("/{}  {}", table.name, table.columns.join(", "));
                }
            }
            Ok(None) => say!("{} does not list tables (not a csvd server?)", self.base),
            Err(error) => complain!("csvd: {error}"),
        }
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
fn method(word: &str) -> Option<Method> {
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
