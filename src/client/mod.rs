//! The HTTP client: one-shot commands (`csvd get …`), the interactive
//! shell, raw mode.
//!
//! Request items are parsed ([`items`]) and turned into a request
//! ([`request`]), sent on a connection that records what crossed the wire
//! ([`connection`], [`tap`]), and printed ([`print`]). Errors reach the
//! person as one line ([`error`]); nothing here panics on what a user or a
//! server can send.

/// Prints a line for the person on stdout. A closed stdout (`| head`)
/// ends nothing: unlike `println!`, this never panics.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// As [`say!`], on stderr.
macro_rules! complain {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod config;
mod connection;
mod decode;
mod download;
mod error;
mod exchange;
mod items;
mod json;
mod nested;
mod offline;
mod print;
mod proxy;
mod raw;
mod redirect;
mod request;
mod session;
mod shell;
mod style;
mod table;
mod tap;
mod tls;
mod upload;
mod url;
mod watch;

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Duration;

use hyper::{Method, StatusCode};

use crate::cli::{Command, RequestArgs, RequestOptions};

pub use error::ClientError;
pub use proxy::{parse_rule as parse_proxy, ProxyRule};
pub use style::parse_theme as parse_style;

use download::Download;
use exchange::Client;
use items::Item;
use print::{Printer, Sections};
use request::{Encoding, Prepared};
use style::Style;
use tls::Tls;

/// Runs a client command and returns the process exit code.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    // One worker is plenty for one person's requests, and it keeps
    // connections watched while the shell waits for a line: a server
    // closing an idle connection is noticed before the next request.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let result = match command {
        Command::Get(args) => runtime.block_on(one_shot(Method::GET, args)),
        Command::Head(args) => runtime.block_on(one_shot(Method::HEAD, args)),
        Command::Post(args) => runtime.block_on(one_shot(Method::POST, args)),
        Command::Put(args) => runtime.block_on(one_shot(Method::PUT, args)),
        Command::Patch(args) => runtime.block_on(one_shot(Method::PATCH, args)),
        Command::Delete(args) => runtime.block_on(one_shot(Method::DELETE, args)),
        Command::Options(args) => runtime.block_on(one_shot(Method::OPTIONS, args)),
        Command::Request(args) => {
            let method =
                Method::from_bytes(args.method.to_ascii_uppercase().as_bytes()).map_err(|_| {
                    anyhow::anyhow!(
                        "`{}` is not a method: expected a token such as GET or PROPFIND",
                        args.method
                    )
                })?;
            runtime.block_on(one_shot(method, args.request))
        }
        Command::Shell(args) => shell::run(args, &runtime),
        Command::Raw(args) => runtime.block_on(raw::run(args)),
        Command::Watch(args) => runtime.block_on(watch::run(args)),
        Command::Serve(_) | Command::Copy(_) => anyhow::bail!("not a client command"),
    };
    // Standard input may still be read by a blocking thread (raw mode):
    // do not wait for it.
    runtime.shutdown_background();
    result
}

/// `csvd get|head|post|put|patch|delete URL [items…]`.
async fn one_shot(method: Method, args: RequestArgs) -> anyhow::Result<ExitCode> {
    let config = config::current();
    let url = config.url(&args.url)?;
    let tls = Tls::new(&args.tls)?;
    let typed = parse_items(&args.items)?;
    let auth_given = args.hops.auth.is_some();
    let mut session = match (&args.hops.session, &args.hops.session_read_only) {
        (Some(name), _) | (None, Some(name)) => Some(session::Session::open(
            session::Session::path_of(name, url.socket_host().0)?,
            args.hops.session.is_none(),
        )?),
        (None, None) => None,
    };
    let items = config.items(match &session {
        Some(session) => session.items(typed.clone(), auth_given)?,
        None => typed.clone(),
    });
    let encoding = encoding(&args.options);
    let mut prepared = Prepared::new(method, url, &items, encoding)?;
    if let Some(raw) = &args.raw {
        if items
            .iter()
            .any(|item| item.is_data() || matches!(item, Item::BodyFile(_)))
        {
            return Err(ClientError::item(
                "--raw",
                "the body is given by --raw: it cannot be combined with data fields or @file",
            )
            .into());
        }
        let content_type = match encoding {
            Encoding::Form => "application/x-www-form-urlencoded",
            Encoding::Csv => "text/csv",
            Encoding::Multipart => "multipart/form-data",
            Encoding::Auto | Encoding::Json => "application/json",
        };
        prepared = prepared.with_body(bytes::Bytes::from(raw.clone()), content_type);
        // A JSON body asks for JSON back, as data fields do.
        let accept_given = items.iter().any(
            |item| matches!(item, Item::Header { name, .. } if *name == hyper::header::ACCEPT),
        );
        if matches!(encoding, Encoding::Auto | Encoding::Json) && !accept_given {
            prepared.set_accept_json();
        }
    }
    if args.transfer.ignore_stdin {
        refuse_stdin(&items, &args.hops)?;
    }
    redirect::authorize(&mut prepared, &items, &args.hops)?;
    let cookie_typed = items
        .iter()
        .any(|item| matches!(item, Item::Header { name, .. } if *name == hyper::header::COOKIE));
    if let Some(session) = session.as_mut() {
        session.remember(&typed, &prepared, auth_given);
        session.add_cookies(&mut prepared, cookie_typed);
    }
    let proxies = proxy::Proxies::new(&args.proxy.proxy, args.proxy.no_proxy, |name| {
        std::env::var(name).ok()
    });
    if args.offline || args.curl {
        let proxy = proxies.for_url(&prepared.url)?;
        let out = if args.curl {
            let mut line = offline::curl(&prepared, proxy, args.proxy.no_proxy)?;
            line.push('\n');
            line.into_bytes()
        } else {
            let print = args.options.print.as_deref().unwrap_or("HB");
            let print = if args.options.quiet { "" } else { print };
            offline::render(&prepared, proxy, print.contains('H'), print.contains('B'))?
        };
        use std::io::Write as _;
        let mut stdout = std::io::stdout();
        return match stdout.write_all(&out).and_then(|()| stdout.flush()) {
            Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
                Err(ClientError::Output { error }.into())
            }
            _ => Ok(ExitCode::SUCCESS),
        };
    }
    let transfer = &args.transfer;
    let download = Download::prepare(transfer, args.options.quiet, &items, &mut prepared)?;
    let mut hops = args.hops.clone();
    // What would go to stdout goes to stderr while the body is saved, or
    // to the file of `-o` otherwise.
    let (mut printer, terminal) = if download.is_some() {
        hops.follow = true;
        let terminal = std::io::stderr().is_terminal();
        let style = Style::for_output(args.options.pretty, terminal)
            .themed(args.options.style.unwrap_or_default());
        let mut sections = Sections::choose(&args.options, terminal);
        sections.response_body = false;
        let printer = Printer::new(Box::new(std::io::stderr()), style, sections);
        (printer, terminal)
    } else if let Some(path) = &transfer.output {
        let file = std::fs::File::create(path).map_err(|error| ClientError::Unwritable {
            path: path.display().to_string(),
            error,
        })?;
        let style = Style::for_output(args.options.pretty, false)
            .themed(args.options.style.unwrap_or_default());
        let sections = Sections::choose(&args.options, false);
        (Printer::new(Box::new(file), style, sections), false)
    } else {
        let style =
            Style::detect(args.options.pretty).themed(args.options.style.unwrap_or_default());
        let sections = Sections::choose(&args.options, style.terminal);
        (Printer::stdout(style, sections), style.terminal)
    };
    printer.download = download;
    printer.stream = args.options.stream;
    printer.sorted = args.options.sorted;
    let mut client = Client::new(args.options.timeout, tls);
    client.proxies = proxies;
    // Only the last answer is printed, unless -v asks for every hop.
    client.quiet_redirects = hops.follow && !args.options.verbose;
    let judged = Judged {
        check: args.options.check_status || printer.download.is_some(),
        // A download that ends on a 3xx saved nothing: that is a failure.
        follow: hops.follow && printer.download.is_none(),
        quiet: args.options.quiet,
        terminal,
    };
    let followed = follow(
        &mut client,
        prepared,
        &mut printer,
        &hops,
        session.as_mut().map(|session| (session, cookie_typed)),
    )
    .await;
    // Only what an answer came back for is kept.
    if let Some(session) = session.as_ref().filter(|_| followed.is_ok()) {
        session.save()?;
    }
    match followed {
        Ok(_)
            if printer
                .download
                .as_ref()
                .is_some_and(|download| download.outcome == download::Outcome::AlreadyComplete) =>
        {
            Ok(ExitCode::SUCCESS)
        }
        Ok(status) => {
            // A refused upload is said by its answer, not summed up.
            let summed = !args.options.quiet && status.is_success();
            if let Some(uploaded) = client.uploaded.as_ref().filter(|_| summed) {
                complain!(
                    "{}",
                    upload::summary(&uploaded.tally, uploaded.server_rows, uploaded.elapsed)
                );
            }
            Ok(judged.exit_code(status))
        }
        // The reader went away (`| head`): nothing left to tell anyone.
        Err(ClientError::Output { error }) if error.kind() == std::io::ErrorKind::BrokenPipe => {
            Ok(ExitCode::SUCCESS)
        }
        // As HTTPie: exit 6.
        Err(error @ ClientError::TooManyRedirects { .. }) => {
            complain!("csvd: {error}");
            Ok(ExitCode::from(6))
        }
        // As HTTPie: exit 2.
        Err(error @ ClientError::Timeout { .. }) => {
            complain!("csvd: {error}");
            Ok(ExitCode::from(2))
        }
        Err(error) => Err(error.into()),
    }
}

/// Sends the request and, with `--follow`, the requests its redirects ask
/// for; returns the last status.
async fn follow(
    client: &mut Client,
    mut prepared: Prepared,
    printer: &mut Printer,
    hops: &crate::cli::HopOptions,
    mut session: Option<(&mut session::Session, bool)>,
) -> Result<StatusCode, ClientError> {
    let mut followed = 0;
    loop {
        let answer = send(client, &prepared, printer, hops.retry).await?;
        if let Some((session, _)) = session.as_mut() {
            session.store_cookies(&prepared, &answer.set_cookies);
        }
        let location = match answer.location {
            Some(location) if hops.follow && redirect::is_redirect(answer.status) => location,
            _ => return Ok(answer.status),
        };
        if followed == hops.max_redirects {
            return Err(ClientError::TooManyRedirects {
                max: hops.max_redirects,
            });
        }
        followed += 1;
        printer
            .between_exchanges()
            .map_err(|error| ClientError::Output { error })?;
        prepared = redirect::next(&prepared, answer.status, &location)?;
        if let Some((session, typed)) = session.as_ref() {
            session.add_cookies(&mut prepared, *typed);
        }
    }
}

/// The longest `--retry` waits between two attempts.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);

/// Sends the request; with `--retry N`, an idempotent one is sent again,
/// up to N times, after a failure to connect (or a connection lost before
/// any answer) or a 502, 503 or 504 answer (printed only when it is the
/// last). The waits double from 0.5 s, or follow the answer's
/// `Retry-After`, capped at [`MAX_RETRY_WAIT`].
async fn send(
    client: &mut Client,
    prepared: &Prepared,
    printer: &mut Printer,
    retries: u32,
) -> Result<exchange::Answer, ClientError> {
    let idempotent = [
        Method::GET,
        Method::HEAD,
        Method::PUT,
        Method::DELETE,
        Method::OPTIONS,
    ]
    .contains(&prepared.method);
    let retries = if idempotent { retries } else { 0 };
    let mut attempt = 0;
    loop {
        let left = attempt < retries;
        client.quiet_retryable = left;
        let backoff = Duration::from_millis(500)
            .saturating_mul(1 << attempt.min(16))
            .min(MAX_RETRY_WAIT);
        let (wait, why) = match client.exchange(prepared, printer).await {
            Ok(answer) if answer.retryable => (
                answer
                    .retry_after
                    .map_or(backoff, |wait| wait.min(MAX_RETRY_WAIT)),
                format!(
                    "HTTP {} {}",
                    answer.status.as_str(),
                    answer.status.canonical_reason().unwrap_or("")
                ),
            ),
            Err(error) if left && !client.answered && error.is_connection_failure() => {
                (backoff, error.to_string())
            }
            other => return other,
        };
        attempt += 1;
        complain!(
            "csvd: {why}; trying again in {} ({attempt} of {retries})",
            humantime::format_duration(Duration::from_millis(wait.as_millis() as u64))
        );
        tokio::time::sleep(wait).await;
    }
}

pub(crate) fn parse_items(texts: &[String]) -> Result<Vec<Item>, ClientError> {
    texts.iter().map(|text| Item::parse(text)).collect()
}

pub(crate) fn encoding(options: &RequestOptions) -> Encoding {
    if options.multipart {
        Encoding::Multipart
    } else if options.form {
        Encoding::Form
    } else if options.csv {
        Encoding::Csv
    } else if options.json {
        Encoding::Json
    } else {
        Encoding::Auto
    }
}

/// `--ignore-stdin`: nothing may read standard input.
fn refuse_stdin(items: &[Item], hops: &crate::cli::HopOptions) -> Result<(), ClientError> {
    if items
        .iter()
        .any(|item| matches!(item, Item::BodyFile(path) if path.as_os_str() == "-"))
    {
        return Err(ClientError::item(
            "@-",
            "--ignore-stdin: standard input is not read (give the body as @FILE or --raw)",
        ));
    }
    let asks = hops.auth_type != Some(crate::cli::AuthType::Bearer)
        && hops.auth.as_ref().is_some_and(|auth| !auth.contains(':'));
    let explicit = items.iter().any(
        |item| matches!(item, Item::Header { name, .. } if *name == hyper::header::AUTHORIZATION),
    );
    match &hops.auth {
        Some(user) if asks && !explicit => Err(ClientError::Auth {
            flag: "--auth",
            reason: format!(
                "no password for `{user}`, and --ignore-stdin forbids asking for one: use \
                 --auth {user}:PASSWORD"
            ),
        }),
        _ => Ok(()),
    }
}

/// How an answer's status becomes the exit code.
struct Judged {
    /// `--check-status` (or `--download`, which implies it).
    check: bool,
    /// With `--follow`, a 3xx that was not followed is no failure.
    follow: bool,
    quiet: bool,
    /// The output goes to a terminal, where the status was seen.
    terminal: bool,
}

impl Judged {
    /// When checked, 3xx, 4xx and 5xx exit with 3, 4 and 5, as xh and
    /// HTTPie do, with a warning on stderr unless the status line went to
    /// a terminal; otherwise any answer is a success.
    fn exit_code(&self, status: StatusCode) -> ExitCode {
        let code = match status.as_u16() {
            300..=399 if !self.follow => 3,
            400..=499 => 4,
            500..=599 => 5,
            _ => 0,
        };
        if !self.check || code == 0 {
            return ExitCode::SUCCESS;
        }
        if self.quiet || !self.terminal {
            complain!(
                "csvd: warning: HTTP {} {}",
                status.as_str(),
                status.canonical_reason().unwrap_or("")
            );
        }
        ExitCode::from(code)
    }
}
