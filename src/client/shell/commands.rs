//! The shell's own `:commands` (`:help`, `:verbose`, `:base`,
//! `:headers`, `:tables`, `:watch`): showing and changing the session's
//! settings, and following a change feed.
//!
//! A command never sends a request of the person's own: at most it asks
//! the server for its table list, or (`:watch`) for its changes.

use crate::cli::Theme;

use super::super::items::Item;
use super::super::style::parse_theme;
use super::super::url::Url;
use super::session::Shell;
use super::words;

/// The shell's own commands, for completion.
pub const COMMANDS: [&str; 11] = [
    ":help", ":verbose", ":stream", ":sorted", ":style", ":base", ":headers", ":tables", ":watch",
    "exit", "quit",
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
  --ca FILE or -k for that request's https:// connection, --proxy PROTOCOL:URL or
  --no-proxy for its proxy.
  At the body question, type fields (name:kim age:30, or name=kim, age=30; quote
  values with spaces), items (age:=30, bio=@file) or JSON ({\"name\": \"kim\"}).

Commands
  :verbose on|off           show each request as sent, too
  :stream on|off            print every body line by line as it arrives (-S)
  :sorted on|off            sort headers and JSON keys (--sorted)
  :style [NAME]             show or change the colours (those of --style)
  A line's own -S, --sorted, --unsorted or --style wins for that request.
  :base [URL]               show or change where paths point (http:// or https://)
  :headers [Name:value …]   show or set headers sent with every request
                            (`Name:` removes one, `:headers clear` all;
                            quote a value with spaces: 'Authorization:Bearer abc')
  :tables                   list the server's tables (csvd servers)
  :watch [path] [items…]    print the changes to a table (/people), a row
                            (/people/3) or every table (no path) as they happen,
                            until Ctrl-C; items and flags are those of
                            `csvd watch --help` (city==Seoul, --since N, --count N)
  :help                     this text
  exit, quit, Ctrl-D        leave

Tab completes methods, commands, and on a csvd server tables and columns.";

/// `:stream on`, `:sorted off`, or the name alone to see the setting.
fn on_off(setting: &mut bool, name: &str, words: &[&str]) {
    match words {
        ["on"] => *setting = true,
        ["off"] => *setting = false,
        _ => {}
    }
    say!("{name} is {}", if *setting { "on" } else { "off" });
}

/// The theme a `:style` name chose, as `--style` names it.
fn style_name(theme: Theme) -> &'static str {
    match theme {
        Theme::Auto => "auto",
        Theme::Bright => "bright",
        Theme::Solarized => "solarized",
        Theme::Mono => "mono",
    }
}

impl Shell<'_> {
    /// A `:command`, its words split as request lines are (so
    /// `:headers 'Authorization:Bearer x'` is one header).
    pub(super) fn command(&mut self, command: &str) {
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
            ("stream", [] | ["on"] | ["off"]) => on_off(&mut self.stream, "stream", rest),
            ("sorted", [] | ["on"] | ["off"]) => on_off(&mut self.sorted, "sorted", rest),
            ("stream" | "sorted", _) => complain!("csvd: use `:{name} on` or `:{name} off`"),
            ("style", []) => say!("style is {}", style_name(self.theme)),
            ("style", [theme]) => match parse_theme(theme) {
                Ok(theme) => {
                    self.theme = theme;
                    say!("style is {}", style_name(theme));
                }
                Err(reason) => complain!("csvd: {reason}"),
            },
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
            ("watch", words) => self.watch(words),
            _ => {
                return complain!(
                    "csvd: `:{name}` is not a shell command: :help, :verbose, :stream, :sorted, \
                     :style, :base, :headers, :tables, :watch"
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

/// `:watch`'s words, parsed with `csvd watch`'s grammar.
#[derive(Debug, clap::Parser)]
#[command(name = ":watch", no_binary_name = true, disable_version_flag = true)]
#[command(about = "Print the changes to a table, a row or every table until Ctrl-C.")]
struct WatchLine {
    #[command(flatten)]
    watch: crate::cli::WatchArgs,
}

impl Shell<'_> {
    /// `:watch [path] [items…] [flags]`: follows the feed of a path under
    /// the base URL (all tables without one) until Ctrl-C, which returns
    /// to the prompt.
    fn watch(&mut self, words: &[&str]) {
        use super::super::watch::{feed_url, Feed, Output};
        use clap::{CommandFactory as _, FromArgMatches as _};

        // The path is optional: a first word that is a flag or an item is
        // not one.
        let has_path = words.first().is_some_and(|word| {
            word.starts_with('/') || (!word.starts_with('-') && Item::parse(word).is_err())
        });
        let mut line: Vec<&str> = Vec::with_capacity(words.len() + 1);
        if !has_path {
            line.push("/");
        }
        line.extend_from_slice(words);
        // CSVD_CA was read when the shell started: on a line, only what is
        // typed counts.
        let parsed = WatchLine::command()
            .mut_arg("ca", |arg| arg.env(None))
            .try_get_matches_from(&line)
            .and_then(|matches| WatchLine::from_arg_matches(&matches));
        let args = match parsed {
            Ok(parsed) => parsed.watch,
            Err(error) => return say!("{}", error.render().to_string().trim_end()),
        };
        let prepared = (|| {
            let url = feed_url(&self.base.resolve(&args.url)?)?;
            let items = self.with_session_headers(super::super::parse_items(&args.items)?);
            let tls = self.tls_for(&args.tls)?.unwrap_or_else(|| self.tls.clone());
            let mut style =
                super::super::style::Style::detect(args.pretty.or(self.pretty)).themed(args.style);
            // A shell's output is read by a person even when it is
            // captured: lines, unless `--pretty none` asks for NDJSON.
            style.format |= args.pretty.or(self.pretty) != Some(crate::cli::Pretty::None);
            let mut feed = Feed::from_args(&args, url, &items, tls, Output::choose(style))?;
            feed.timeout = args.timeout.or(self.timeout);
            feed.pretty = args.pretty.or(self.pretty);
            Ok::<_, super::super::error::ClientError>(feed)
        })();
        let mut feed = match prepared {
            Ok(feed) => feed,
            Err(error) => return complain!("csvd: {error}"),
        };
        say!("watching {} (Ctrl-C stops)", feed.url());
        let followed = self.runtime.block_on(async {
            tokio::select! {
                followed = feed.follow() => Some(followed),
                _ = tokio::signal::ctrl_c() => None,
            }
        });
        match followed {
            None => say!("\n(stopped watching)"),
            Some(Ok(_)) => {}
            Some(Err(error)) => complain!("csvd: {error}"),
        }
    }
}
