//! `csvd shell [BASE_URL]`: the seed's `Enter Method / Path / Body`
//! prompt grown up. Type a method and answer the questions, or type a
//! whole request on one line (`POST /people name=kim`); the one-line form
//! takes the same items and flags as the one-shot commands.
//!
//! One keep-alive connection serves every request to the base URL's
//! server and is reopened when the server has closed it. History persists
//! between sessions; Tab completes methods, and table names and columns
//! when the server is csvd.
//!
//! This file is the loop: it starts a session, greets, reads a line and
//! hands it on, deciding only what kind of line it is (leaving, a
//! `:command`, a request). It never reads what a request or a command
//! says: `prompt` and `commands` do.

mod body;
mod commands;
mod complete;
mod editor;
mod prompt;
mod session;
mod words;

use std::process::ExitCode;

use rustyline::config::{CompletionType, Config};
use rustyline::history::FileHistory;
use rustyline::Editor;
use tokio::runtime::Runtime;

use crate::cli::ShellArgs;

use super::error::ClientError;
use super::exchange::Client;
use super::tls::Tls;
use super::url::Url;

use complete::{Prompt, ShellHelper};
use editor::{default_history, save_history, Answer};
use prompt::method;
use session::Shell;

/// The methods the shell sends, in the order it lists them.
pub const METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

pub use commands::COMMANDS;

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
    let proxies = super::proxy::Proxies::new(&args.proxy.proxy, args.proxy.no_proxy, |name| {
        std::env::var(name).ok()
    });
    let mut client = Client::new(args.timeout, tls.clone());
    client.proxies = proxies.clone();
    let mut shell = Shell {
        base,
        client,
        proxy_options: args.proxy.clone(),
        proxies,
        timeout: args.timeout,
        tls_options: args.tls.clone(),
        tls,
        verbose: args.verbose,
        pretty: args.pretty,
        stream: false,
        sorted: false,
        theme: Default::default(),
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

impl Shell<'_> {
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
}
