//! HTTP proxies: which one a request goes through (`--proxy`, then the
//! `http_proxy`, `https_proxy` and `all_proxy` environment variables, minus
//! the hosts of `no_proxy`), and the `CONNECT` tunnel an `https://` request
//! goes through before its TLS handshake.
//!
//! A plain `http://` request is sent to the proxy itself, its target in
//! absolute form (`GET http://host/path HTTP/1.1`); credentials in the
//! proxy's URL go as `Proxy-Authorization: Basic …` on each request (or on
//! the `CONNECT`), never to the server.

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use hyper::header::HeaderValue;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::connection::within;
use super::error::{describe_io, ClientError};
use super::url::Url;

/// The most a proxy's answer to `CONNECT` may take before its end.
const MAX_CONNECT_HEAD: usize = 16 * 1024;

/// Which requests a `--proxy` rule is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForScheme {
    Http,
    Https,
    All,
}

/// One `--proxy PROTOCOL:URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRule {
    pub scheme: ForScheme,
    pub proxy: Proxy,
}

/// A proxy to go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    /// Where it listens (`http://host:port/`).
    pub url: Url,
    /// `Basic …` from the credentials of its URL.
    pub authorization: Option<HeaderValue>,
    /// Its URL with the credentials, as curl's `-x` takes it.
    pub given: String,
}

/// `--proxy http:http://host:3128` (also `https:…` and `all:…`).
pub fn parse_rule(text: &str) -> Result<ProxyRule, String> {
    let (scheme, url) = text.split_once(':').unwrap_or(("", text));
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => ForScheme::Http,
        "https" => ForScheme::Https,
        "all" => ForScheme::All,
        _ => {
            return Err(format!(
                "`{text}` is not PROTOCOL:URL: write http:URL, https:URL or all:URL \
                 (http:http://proxy:3128)"
            ))
        }
    };
    if url.starts_with("//") {
        return Err(format!(
            "`{text}` names no protocol: write http:{text}, https:{text} or all:{text}"
        ));
    }
    let proxy = Proxy::parse(url)?;
    Ok(ProxyRule { scheme, proxy })
}

impl Proxy {
    /// `http://[user:password@]host[:port][/]`; without a scheme, `http://`.
    /// The port is 80 when none is given.
    pub fn parse(text: &str) -> Result<Proxy, String> {
        let rest = match text.split_once("://") {
            None => text,
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => {
                return Err(format!(
                    "`{text}`: only http:// proxies are supported (an https:// request still \
                     goes through one inside a CONNECT tunnel)"
                ))
            }
            Some((scheme, _)) => {
                return Err(format!(
                    "`{text}`: `{scheme}` proxies are not supported: use an http:// proxy"
                ))
            }
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        let (credentials, host) = match authority.rsplit_once('@') {
            Some((credentials, host)) => (Some(credentials), host),
            None => (None, authority),
        };
        if host.is_empty() {
            return Err(format!("`{text}` names no proxy host"));
        }
        let url = Url::parse(&format!("http://{host}/"))
            .map_err(|error| format!("`{text}` is not a proxy URL ({error})"))?;
        let authorization = match credentials {
            None => None,
            Some(credentials) => {
                let (user, password) = credentials.split_once(':').unwrap_or((credentials, ""));
                let decode = |part: &str| {
                    percent_encoding::percent_decode_str(part)
                        .decode_utf8_lossy()
                        .into_owned()
                };
                let pair = format!("{}:{}", decode(user), decode(password));
                let token = base64::engine::general_purpose::STANDARD.encode(pair);
                Some(
                    HeaderValue::from_str(&format!("Basic {token}"))
                        .map_err(|_| format!("`{text}`: the credentials cannot be sent"))?,
                )
            }
        };
        let given = match credentials {
            Some(credentials) => format!("http://{credentials}@{}", url.host_and_port()),
            None => format!("http://{}", url.host_and_port()),
        };
        Ok(Proxy {
            url,
            authorization,
            given,
        })
    }

    /// `host:port`, how messages name it.
    pub fn addr(&self) -> String {
        self.url.host_and_port()
    }

    /// The `CONNECT` request that opens a tunnel to `target`.
    pub fn connect_head(&self, target: &Url) -> String {
        let authority = target.host_and_port();
        let mut head = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some(authorization) = &self.authorization {
            head.push_str(&format!(
                "Proxy-Authorization: {}\r\n",
                String::from_utf8_lossy(authorization.as_bytes())
            ));
        }
        head.push_str("\r\n");
        head
    }

    /// Asks the proxy, on `stream`, for a tunnel to `target`; the stream
    /// then leads to the target (TLS comes next).
    pub async fn tunnel(
        &self,
        stream: &mut TcpStream,
        target: &Url,
        timeout: Option<Duration>,
    ) -> Result<(), ClientError> {
        let failed = |reason: String| ClientError::Proxy {
            proxy: self.addr(),
            reason,
            retryable: true,
        };
        let head = self.connect_head(target);
        within(timeout, "sending CONNECT to the proxy", async {
            stream.write_all(head.as_bytes()).await
        })
        .await?
        .map_err(|error| failed(format!("cannot send CONNECT: {}", describe_io(&error))))?;
        // Byte by byte: nothing after the head may be taken from the
        // tunnel (it is the server's TLS).
        let answer = within(timeout, "waiting for the proxy to answer CONNECT", async {
            let mut answer = Vec::new();
            let mut byte = [0u8; 1];
            while !answer.ends_with(b"\r\n\r\n") {
                if answer.len() >= MAX_CONNECT_HEAD {
                    return Err(format!(
                        "its answer to CONNECT has no end in {MAX_CONNECT_HEAD} bytes"
                    ));
                }
                match stream.read(&mut byte).await {
                    Ok(0) => {
                        return Err(format!(
                            "it closed the connection without answering CONNECT {}",
                            target.host_and_port()
                        ))
                    }
                    Ok(_) => answer.push(byte[0]),
                    Err(error) => {
                        return Err(format!("cannot read its answer: {}", describe_io(&error)))
                    }
                }
            }
            Ok(answer)
        })
        .await?
        .map_err(failed)?;
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        let code = match response.parse(&answer) {
            Ok(httparse::Status::Complete(_)) => response.code.unwrap_or(0),
            _ => {
                return Err(failed(
                    "its answer to CONNECT is not HTTP (is it an HTTP proxy?)".to_string(),
                ))
            }
        };
        if (200..300).contains(&code) {
            return Ok(());
        }
        let hint = match code {
            407 if self.authorization.is_none() => {
                " (give credentials in the proxy URL: http://USER:PASSWORD@HOST:PORT)"
            }
            407 => " (the credentials of the proxy URL were refused)",
            _ => "",
        };
        Err(ClientError::Proxy {
            proxy: self.addr(),
            reason: format!(
                "it refused to open a tunnel to {}: {code} {}{hint}",
                target.host_and_port(),
                response.reason.unwrap_or("")
            ),
            // A proxy that cannot reach the server (502, 504) may later.
            retryable: code >= 500,
        })
    }
}

/// Where the proxy settings come from, for messages about a bad one.
#[derive(Debug, Clone)]
struct Slot {
    /// `--proxy` or the variable's name.
    from: String,
    proxy: Result<Proxy, String>,
}

/// The proxies of a command (or a shell session): one for `http://`
/// requests, one for `https://`, and the hosts that bypass both.
#[derive(Debug, Clone, Default)]
pub struct Proxies {
    http: Option<Slot>,
    https: Option<Slot>,
    bypass: Vec<String>,
}

impl Proxies {
    /// From the environment only (the shell).
    pub fn from_env() -> Proxies {
        Proxies::new(&[], false, |name| std::env::var(name).ok())
    }

    /// `--proxy` rules (the last of a protocol wins, a protocol's own over
    /// `all:`), then the environment for what they leave open; `--no-proxy`
    /// sends everything directly.
    pub fn new(rules: &[ProxyRule], none: bool, var: impl Fn(&str) -> Option<String>) -> Proxies {
        if none {
            return Proxies::default();
        }
        // Lower case first, as curl reads them.
        let env = |names: &[&str]| {
            names.iter().find_map(|name| {
                let value = var(name)?;
                let value = value.trim().to_string();
                (!value.is_empty()).then(|| Slot {
                    from: name.to_string(),
                    proxy: Proxy::parse(&value),
                })
            })
        };
        let rule = |scheme: ForScheme| {
            rules
                .iter()
                .rev()
                .find(|rule| rule.scheme == scheme)
                .or_else(|| {
                    rules
                        .iter()
                        .rev()
                        .find(|rule| rule.scheme == ForScheme::All)
                })
                .map(|rule| Slot {
                    from: "--proxy".to_string(),
                    proxy: Ok(rule.proxy.clone()),
                })
        };
        let all = ["all_proxy", "ALL_PROXY"];
        let http = rule(ForScheme::Http)
            .or_else(|| env(&["http_proxy", "HTTP_PROXY"]))
            .or_else(|| env(&all));
        let https = rule(ForScheme::Https)
            .or_else(|| env(&["https_proxy", "HTTPS_PROXY"]))
            .or_else(|| env(&all));
        let bypass = ["no_proxy", "NO_PROXY"]
            .iter()
            .find_map(|name| var(name).filter(|value| !value.trim().is_empty()))
            .map(|list| {
                list.split([',', ' '])
                    .map(|entry| entry.trim().to_ascii_lowercase())
                    .filter(|entry| !entry.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Proxies {
            http,
            https,
            bypass,
        }
    }

    /// The proxy a request to `url` goes through, if any.
    pub fn for_url(&self, url: &Url) -> Result<Option<&Proxy>, ClientError> {
        let slot = if url.is_https() {
            &self.https
        } else {
            &self.http
        };
        let Some(slot) = slot else {
            return Ok(None);
        };
        let (host, port) = url.socket_host();
        if self.bypass.iter().any(|entry| bypasses(entry, host, port)) {
            return Ok(None);
        }
        match &slot.proxy {
            Ok(proxy) => Ok(Some(proxy)),
            Err(reason) => Err(ClientError::BadProxy {
                from: slot.from.clone(),
                reason: reason.clone(),
            }),
        }
    }
}

/// Whether a `no_proxy` entry covers a host: `*` covers all; a name covers
/// itself and its subdomains (`example.com` and `.example.com` both cover
/// `api.example.com`); an address covers itself, a `ADDR/BITS` range its
/// addresses; `:PORT` after any of them limits it to that port.
fn bypasses(entry: &str, host: &str, port: u16) -> bool {
    if entry == "*" {
        return true;
    }
    let host = host.to_ascii_lowercase();
    let (entry, wanted_port) = split_port(entry);
    if wanted_port.is_some_and(|wanted| wanted != port) {
        return false;
    }
    let entry = entry.trim_start_matches("*.").trim_start_matches('.');
    let entry = entry.trim_start_matches('[').trim_end_matches(']');
    if let Some((network, bits)) = entry.split_once('/') {
        return match (network.parse::<IpAddr>(), bits.parse::<u32>(), host.parse()) {
            (Ok(network), Ok(bits), Ok(address)) => in_network(address, network, bits),
            _ => false,
        };
    }
    if let (Ok(entry), Ok(address)) = (entry.parse::<IpAddr>(), host.parse::<IpAddr>()) {
        return entry == address;
    }
    host == entry || host.ends_with(&format!(".{entry}"))
}

/// `host:port` into its parts; an IPv6 address keeps its colons.
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        if let Some((address, after)) = rest.split_once(']') {
            return (
                address,
                after.strip_prefix(':').and_then(|p| p.parse().ok()),
            );
        }
    }
    match entry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(port) => (host, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

fn in_network(address: IpAddr, network: IpAddr, bits: u32) -> bool {
    match (address, network) {
        (IpAddr::V4(address), IpAddr::V4(network)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(address) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(address), IpAddr::V6(network)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(address) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(have, _)| *have == name)
                .map(|(_, value)| value.to_string())
        }
    }

    fn via(proxies: &Proxies, url: &str) -> Option<String> {
        proxies
            .for_url(&Url::parse(url).unwrap())
            .unwrap()
            .map(Proxy::addr)
    }

    #[test]
    fn rules_name_a_protocol_and_an_http_proxy() {
        let rule = parse_rule("http:http://kim:s%3Acret@proxy:3128").unwrap();
        assert_eq!(rule.scheme, ForScheme::Http);
        assert_eq!(rule.proxy.addr(), "proxy:3128");
        // kim:s:cret
        assert_eq!(rule.proxy.authorization.unwrap(), "Basic a2ltOnM6Y3JldA==");
        assert_eq!(parse_rule("all:proxy").unwrap().proxy.addr(), "proxy:80");
        assert!(parse_rule("http://p:1")
            .unwrap_err()
            .contains("all:http://p:1"));
        assert!(parse_rule("ftp:http://p:1")
            .unwrap_err()
            .contains("PROTOCOL:URL"));
        assert!(parse_rule("http:socks5://p:1")
            .unwrap_err()
            .contains("not supported"));
        assert!(parse_rule("https:https://p:1")
            .unwrap_err()
            .contains("only http://"));
    }

    #[test]
    fn rules_win_over_the_environment_which_fills_the_rest() {
        let rules = [parse_rule("http:a:1").unwrap()];
        let vars = [("HTTPS_PROXY", "b:2"), ("http_proxy", "c:3")];
        let proxies = Proxies::new(&rules, false, env(&vars));
        assert_eq!(via(&proxies, "http://x/").as_deref(), Some("a:1"));
        assert_eq!(via(&proxies, "https://x/").as_deref(), Some("b:2"));
        let proxies = Proxies::new(&[], false, env(&[("ALL_PROXY", "d:4")]));
        assert_eq!(via(&proxies, "https://x/").as_deref(), Some("d:4"));
        let proxies = Proxies::new(&rules, true, env(&vars));
        assert_eq!(via(&proxies, "http://x/"), None);
        let rules = [
            parse_rule("all:a:1").unwrap(),
            parse_rule("https:e:5").unwrap(),
        ];
        let proxies = Proxies::new(&rules, false, env(&[]));
        assert_eq!(via(&proxies, "http://x/").as_deref(), Some("a:1"));
        assert_eq!(via(&proxies, "https://x/").as_deref(), Some("e:5"));
    }

    #[test]
    fn no_proxy_names_hosts_domains_addresses_and_ranges() {
        let vars = [
            ("http_proxy", "p:1"),
            (
                "no_proxy",
                "example.com, .internal,10.0.0.0/8,[::1],db:5432",
            ),
        ];
        let proxies = Proxies::new(&[], false, env(&vars));
        assert_eq!(via(&proxies, "http://example.com/"), None);
        assert_eq!(via(&proxies, "http://api.example.com/"), None);
        assert!(via(&proxies, "http://notexample.com/").is_some());
        assert_eq!(via(&proxies, "http://a.internal/"), None);
        assert_eq!(via(&proxies, "http://10.2.3.4/"), None);
        assert!(via(&proxies, "http://11.2.3.4/").is_some());
        assert_eq!(via(&proxies, "http://[::1]:8080/"), None);
        assert_eq!(via(&proxies, "http://db:5432/"), None);
        assert!(via(&proxies, "http://db:5433/").is_some());
        let proxies = Proxies::new(&[], false, env(&[("http_proxy", "p:1"), ("NO_PROXY", "*")]));
        assert_eq!(via(&proxies, "http://x/"), None);
    }

    #[test]
    fn a_bad_variable_is_an_error_only_when_used() {
        let proxies = Proxies::new(&[], false, env(&[("https_proxy", "socks5://p:1")]));
        assert_eq!(via(&proxies, "http://x/"), None);
        let error = proxies
            .for_url(&Url::parse("https://x/").unwrap())
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("https_proxy: "), "{error}");
    }
}
