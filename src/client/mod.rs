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

mod connection;
mod decode;
mod error;
mod exchange;
mod items;
mod json;
mod nested;
mod offline;
mod print;
mod raw;
mod redirect;
mod request;
mod shell;
mod style;
mod table;
mod tap;
mod tls;
mod upload;
mod url;

use std::process::ExitCode;

use hyper::{Method, StatusCode};

use crate::cli::{Command, RequestArgs, RequestOptions};

pub use error::ClientError;

use exchange::Client;
use items::Item;
use print::{Printer, Sections};
use request::{Encoding, Prepared};
use style::Style;
use tls::Tls;
use url::Url;

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
        Command::Serve(_) | Command::Copy(_) => anyhow::bail!("not a client command"),
    };
    // Standard input may still be read by a blocking thread (raw mode):
    // do not wait for it.
    runtime.shutdown_background();
    result
}

/// `csvd get|head|post|put|patch|delete URL [items…]`.
async fn one_shot(method: Method, args: RequestArgs) -> anyhow::Result<ExitCode> {
    let url = Url::parse(&args.url)?;
    let tls = Tls::new(&args.tls)?;
    let items = parse_items(&args.items)?;
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
    redirect::authorize(&mut prepared, &items, &args.hops)?;
    if args.offline || args.curl {
        let out = if args.curl {
            let mut line = offline::curl(&prepared)?;
            line.push('\n');
            line.into_bytes()
        } else {
            let print = args.options.print.as_deref().unwrap_or("HB");
            let print = if args.options.quiet { "" } else { print };
            offline::render(&prepared, print.contains('H'), print.contains('B'))?
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
    let style = Style::detect(args.options.pretty);
    let sections = Sections::choose(&args.options, style.terminal);
    let mut printer = Printer::stdout(style, sections);
    let mut client = Client::new(args.options.timeout, tls);
    // Only the last answer is printed, unless -v asks for every hop.
    client.quiet_redirects = args.hops.follow && !args.options.verbose;
    match follow(&mut client, prepared, &mut printer, &args.hops).await {
        Ok(status) => {
            // A refused upload is said by its answer, not summed up.
            let summed = !args.options.quiet && status.is_success();
            if let Some(uploaded) = client.uploaded.as_ref().filter(|_| summed) {
                complain!(
                    "{}",
                    upload::summary(&uploaded.tally, uploaded.server_rows, uploaded.elapsed)
                );
            }
            Ok(exit_code(status, &args.options))
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
) -> Result<StatusCode, ClientError> {
    let mut followed = 0;
    loop {
        let answer = client.exchange(&prepared, printer).await?;
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

/// With `--check-status`, 3xx, 4xx and 5xx exit with 3, 4 and 5 and a
/// warning on stderr (as xh and HTTPie do); otherwise any answer is a
/// success.
fn exit_code(status: StatusCode, options: &RequestOptions) -> ExitCode {
    let code = match status.as_u16() {
        300..=399 => 3,
        400..=499 => 4,
        500..=599 => 5,
        _ => 0,
    };
    if !options.check_status || code == 0 {
        return ExitCode::SUCCESS;
    }
    if !options.quiet {
        complain!(
            "csvd: warning: HTTP {} {}",
            status.as_str(),
            status.canonical_reason().unwrap_or("")
        );
    }
    ExitCode::from(code)
}
