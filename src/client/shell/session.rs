//! What one shell session holds: where requests go (the base URL), the
//! keep-alive connection and its TLS trust, the session's timeout,
//! verbosity and headers, and what the server's tables are; and sending a
//! prepared request on that connection.
//!
//! It never reads the terminal and never prints on its own: a request's
//! output goes to the printer it is given, and the table list it fetches
//! for itself is collected, not shown.

use std::time::Duration;

use hyper::{Method, StatusCode};
use tokio::runtime::Runtime;

use crate::cli::{Pretty, ProxyOptions, Theme, TlsOptions};

use super::super::error::ClientError;
use super::super::exchange::Client;
use super::super::items::Item;
use super::super::print::{Collected, Printer, Sections};
use super::super::proxy::Proxies;
use super::super::request::{Encoding, Prepared};
use super::super::style::Style;
use super::super::tls::Tls;
use super::super::url::Url;
use super::complete::{tables_from_json, ShellHelper, Table};

/// How long the table list may take: it is a nicety, not worth a long
/// wait at start or after a write.
const TABLES_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) struct Shell<'a> {
    pub(super) base: Url,
    pub(super) client: Client,
    pub(super) timeout: Option<Duration>,
    /// The session's trust settings, and what they built.
    pub(super) tls_options: TlsOptions,
    pub(super) tls: Tls,
    /// The session's `--proxy` and `--no-proxy`, and what they chose.
    pub(super) proxy_options: ProxyOptions,
    pub(super) proxies: Proxies,
    pub(super) verbose: bool,
    pub(super) pretty: Option<Pretty>,
    /// `:stream`, `:sorted` and `:style`: how every answer is printed
    /// unless a line's own flags say otherwise.
    pub(super) stream: bool,
    pub(super) sorted: bool,
    pub(super) theme: Theme,
    /// Header items sent with every request (`:headers`).
    pub(super) headers: Vec<Item>,
    /// The last table list request got no answer at all.
    pub(super) unanswered: bool,
    pub(super) helper: ShellHelper,
    pub(super) runtime: &'a Runtime,
}

impl Shell<'_> {
    pub(super) fn prompt(&self) -> String {
        format!("{}> ", self.base.host_and_port())
    }

    /// Asks the server for its tables (`GET /`); `None` when it is not a
    /// csvd server.
    pub(super) fn refresh_tables(&mut self) -> Result<Option<Vec<Table>>, ClientError> {
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

    /// The trust a line's own `--ca` or `--insecure` asks for, when it
    /// differs from the session's; `None` for the session's own.
    pub(super) fn tls_for(&self, line: &TlsOptions) -> Result<Option<Tls>, ClientError> {
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

    /// The proxies a line's own `--proxy` or `--no-proxy` ask for (its
    /// rules instead of the session's), when it gives any; `None` for the
    /// session's own.
    pub(super) fn proxies_for(&self, line: &ProxyOptions) -> Option<Proxies> {
        if line.proxy.is_empty() && !line.no_proxy {
            return None;
        }
        let none = line.no_proxy || self.proxy_options.no_proxy && line.proxy.is_empty();
        Some(Proxies::new(&line.proxy, none, |name| {
            std::env::var(name).ok()
        }))
    }

    /// A client with the session's proxies.
    pub(super) fn new_client(&self, timeout: Option<Duration>, tls: Tls) -> Client {
        let mut client = Client::new(timeout, tls);
        client.proxies = self.proxies.clone();
        client
    }

    /// Sends a request on the shell's connection, or on a connection of
    /// its own when the line asked for other TLS trust; Ctrl-C abandons
    /// it, and the connection with it (an answer may still be on its way).
    pub(super) fn execute(
        &mut self,
        prepared: &Prepared,
        printer: &mut Printer,
        timeout: Option<Duration>,
        tls: Option<Tls>,
    ) -> Result<StatusCode, ClientError> {
        self.execute_via(prepared, printer, timeout, tls, None)
    }

    /// As [`Shell::execute`], on a connection of its own also when the
    /// line asked for other proxies.
    pub(super) fn execute_via(
        &mut self,
        prepared: &Prepared,
        printer: &mut Printer,
        timeout: Option<Duration>,
        tls: Option<Tls>,
        proxies: Option<Proxies>,
    ) -> Result<StatusCode, ClientError> {
        let mut one_off;
        let client = match (tls, proxies) {
            (None, None) => {
                self.client.timeout = timeout;
                &mut self.client
            }
            (tls, proxies) => {
                one_off = self.new_client(timeout, tls.unwrap_or_else(|| self.tls.clone()));
                if let Some(proxies) = proxies {
                    one_off.proxies = proxies;
                }
                &mut one_off
            }
        };
        let outcome = self.runtime.block_on(async {
            tokio::select! {
                outcome = client.execute(prepared, printer) => Some(outcome),
                _ = tokio::signal::ctrl_c() => None,
            }
        });
        outcome.unwrap_or_else(|| {
            self.client = self.new_client(self.timeout, self.tls.clone());
            Err(ClientError::Cancelled)
        })
    }

    /// The session's headers first, minus those the line sets itself.
    pub(super) fn with_session_headers(&self, line: Vec<Item>) -> Vec<Item> {
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
}
