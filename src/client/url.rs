//! Where a request goes, from what a person types: full URLs and the
//! HTTPie shorthands (`:8080/people`, `localhost:8080/people`, `/people`).
//!
//! `http://` and `https://`; shorthands always mean `http://`, as in
//! HTTPie. Parsing never touches the network: resolving the host is the
//! connection's business.

use std::fmt;

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

use super::error::ClientError;

/// Where `/people` goes when no base URL was given.
pub const DEFAULT_BASE: &str = "http://127.0.0.1:8080";

/// Bytes a request target may not carry as they are (RFC 3986 allows none
/// of these); `%` is left alone so that already-encoded text stays as typed.
const TARGET_ESCAPES: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// How a connection to the server is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    /// HTTP inside TLS.
    Https,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// An `http://` or `https://` URL split the way a request needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    scheme: Scheme,
    /// Host name or address as written; IPv6 addresses keep their brackets.
    host: String,
    port: u16,
    /// The request target: starts with `/`, percent-encoded, no fragment.
    target: String,
}

impl Url {
    /// Parses a one-shot command's URL: a full URL, a shorthand, or a path
    /// relative to [`DEFAULT_BASE`].
    pub fn parse(text: &str) -> Result<Url, ClientError> {
        Url::parse_as(text, Scheme::Http)
    }

    /// As [`Url::parse`], with shorthands (text without a scheme) taken as
    /// `shorthand` URLs: `csvd raw --tls` reads `host:port` as HTTPS.
    pub fn parse_as(text: &str, shorthand: Scheme) -> Result<Url, ClientError> {
        if text.starts_with('/') {
            let base = Url::parse(DEFAULT_BASE)?;
            return base.join(text);
        }
        let scheme = text.split_once("://").filter(|(scheme, _)| {
            scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
        });
        let (scheme, rest) = match scheme {
            Some((name, rest)) if name.eq_ignore_ascii_case("http") => {
                (Scheme::Http, rest.to_string())
            }
            Some((name, rest)) if name.eq_ignore_ascii_case("https") => {
                (Scheme::Https, rest.to_string())
            }
            Some((scheme, _)) => {
                return Err(ClientError::url(
                    text,
                    format!("unsupported scheme `{scheme}` (only http:// and https:// are)"),
                ))
            }
            None if text.starts_with(':') => (shorthand, format!("localhost{text}")),
            None => (shorthand, text.to_string()),
        };
        let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(split);
        let (host, port) = parse_authority(text, authority)?;
        Ok(Url {
            scheme,
            host,
            port: port.unwrap_or(scheme.default_port()),
            target: parse_target(text, target)?,
        })
    }

    /// Whether requests go inside TLS.
    pub fn is_https(&self) -> bool {
        self.scheme == Scheme::Https
    }

    /// Resolves what a person typed in the shell against its base URL:
    /// `people` and `/people` are paths under the base; text with a scheme,
    /// a leading `:` or a `host:port` first segment is a URL of its own.
    pub fn resolve(&self, text: &str) -> Result<Url, ClientError> {
        let first_segment = text.split(['/', '?']).next().unwrap_or("");
        if text.contains("://") || text.starts_with(':') || first_segment.contains(':') {
            Url::parse(text)
        } else {
            self.join(text)
        }
    }

    /// A path under this URL's path: the base's path is a prefix.
    pub(crate) fn join(&self, path: &str) -> Result<Url, ClientError> {
        let base_path = self.target.split('?').next().unwrap_or("");
        let joined = format!(
            "{}/{}",
            base_path.trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        Ok(Url {
            scheme: self.scheme,
            host: self.host.clone(),
            port: self.port,
            target: parse_target(path, &joined)?,
        })
    }

    /// Resolves a `Location` header against this URL (RFC 3986): a full
    /// URL, `//host/path`, `/path`, `?query` or a path relative to this
    /// one's directory, `.` and `..` segments removed.
    pub fn locate(&self, location: &str) -> Result<Url, ClientError> {
        let location = location.trim();
        let has_scheme = location.split_once("://").is_some_and(|(scheme, _)| {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
        });
        if has_scheme {
            return Url::parse(location);
        }
        if let Some(rest) = location.strip_prefix("//") {
            return Url::parse(&format!("{}://{rest}", self.scheme.name()));
        }
        let location = location.split('#').next().unwrap_or("");
        let path = self.target.split('?').next().unwrap_or("/");
        let target = if location.is_empty() {
            self.target.clone()
        } else if location.starts_with('?') {
            format!("{path}{location}")
        } else if location.starts_with('/') {
            location.to_string()
        } else {
            let directory = &path[..path.rfind('/').map_or(0, |at| at + 1)];
            format!("/{}{location}", directory.trim_start_matches('/'))
        };
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path.to_string(), Some(query)),
            None => (target.clone(), None),
        };
        let mut target = without_dot_segments(&path);
        if let Some(query) = query {
            target = format!("{target}?{query}");
        }
        Ok(Url {
            scheme: self.scheme,
            host: self.host.clone(),
            port: self.port,
            target: parse_target(location, &target)?,
        })
    }

    /// Whether credentials for this URL may go to `other`: the same host
    /// and port, and never from HTTPS down to plain HTTP.
    pub fn trusts(&self, other: &Url) -> bool {
        self.host.eq_ignore_ascii_case(&other.host)
            && self.port == other.port
            && (other.is_https() || !self.is_https())
    }

    /// Appends query parameters (`q==kim` items), form-encoded.
    pub fn append_query(&mut self, pairs: &[(String, String)]) {
        if pairs.is_empty() {
            return;
        }
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in pairs {
            query.append_pair(name, value);
        }
        let separator = match self.target.find('?') {
            None => "?",
            Some(at) if at + 1 == self.target.len() || self.target.ends_with('&') => "",
            Some(_) => "&",
        };
        self.target = format!("{}{separator}{}", self.target, query.finish());
    }

    /// The `Host` header's value: the port is left out when it is the
    /// scheme's own (80 or 443).
    pub fn authority(&self) -> String {
        if self.port == self.scheme.default_port() {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// `host:port`, port always included: how messages name a server.
    pub fn host_and_port(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Host (without IPv6 brackets) and port, for name resolution.
    pub fn socket_host(&self) -> (&str, u16) {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        (host, self.port)
    }

    /// The request target: path and query.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Whether two URLs can share one connection.
    pub fn same_origin(&self, other: &Url) -> bool {
        self.scheme == other.scheme
            && self.host.eq_ignore_ascii_case(&other.host)
            && self.port == other.port
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme.name(),
            self.authority(),
            self.target
        )
    }
}

/// A path with its `.` and `..` segments resolved (`..` never climbs
/// above the root).
fn without_dot_segments(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let mut pieces = path.split('/').skip(1).peekable();
    while let Some(piece) = pieces.next() {
        let last = pieces.peek().is_none();
        match piece {
            "." | ".." => {
                if piece == ".." {
                    segments.pop();
                }
                if last {
                    segments.push("");
                }
            }
            piece => segments.push(piece),
        }
    }
    format!("/{}", segments.join("/"))
}

/// The host and the port, if one is written.
fn parse_authority(url: &str, authority: &str) -> Result<(String, Option<u16>), ClientError> {
    if authority.contains('@') {
        return Err(ClientError::url(
            url,
            "credentials in the URL are not supported; send an `Authorization:...` item",
        ));
    }
    let (host, port) = if authority.starts_with('[') {
        let end = authority
            .find(']')
            .ok_or_else(|| ClientError::url(url, "the IPv6 address has no closing `]`"))?;
        let (host, rest) = authority.split_at(end + 1);
        match rest.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if rest.is_empty() => (host, None),
            None => {
                return Err(ClientError::url(
                    url,
                    "unexpected text after the IPv6 address",
                ))
            }
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(ClientError::url(url, "there is no host"));
    }
    let bracketed = host.starts_with('[');
    let plain = host.trim_start_matches('[').trim_end_matches(']');
    let allowed =
        |c: char| c.is_ascii_alphanumeric() || "-._".contains(c) || (bracketed && c == ':');
    if plain.is_empty() || !plain.chars().all(allowed) {
        return Err(ClientError::url(
            url,
            format!("`{host}` is not a host name"),
        ));
    }
    let port = match port {
        None | Some("") => None,
        Some(port) => Some(
            port.parse::<u16>()
                .ok()
                .filter(|port| *port != 0)
                .ok_or_else(|| {
                    ClientError::url(
                        url,
                        format!("port `{port}` is not a number from 1 to 65535"),
                    )
                })?,
        ),
    };
    Ok((host.to_string(), port))
}

/// Percent-encodes what may not appear in a request target, drops the
/// fragment (never sent), and checks the result is a valid target.
fn parse_target(url: &str, target: &str) -> Result<String, ClientError> {
    let target = target.split('#').next().unwrap_or("");
    let target = match target.chars().next() {
        None => "/".to_string(),
        Some('?') => format!("/{target}"),
        Some(_) => target.to_string(),
    };
    let encoded = utf8_percent_encode(&target, TARGET_ESCAPES).to_string();
    match hyper::Uri::try_from(encoded.as_str()) {
        Ok(_) => Ok(encoded),
        Err(error) => Err(ClientError::url(url, error.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> String {
        Url::parse(text).expect(text).to_string()
    }

    #[test]
    fn shorthands_expand_like_httpie() {
        assert_eq!(url(":8080/people"), "http://localhost:8080/people");
        assert_eq!(url(":/people"), "http://localhost/people");
        assert_eq!(url(":"), "http://localhost/");
        assert_eq!(url("localhost:8080/people"), "http://localhost:8080/people");
        assert_eq!(url("example.com"), "http://example.com/");
        assert_eq!(url("/people"), "http://127.0.0.1:8080/people");
        assert_eq!(
            url("http://127.0.0.1:9/a?b=c#frag"),
            "http://127.0.0.1:9/a?b=c"
        );
        assert_eq!(url("localhost:8080?x=1"), "http://localhost:8080/?x=1");
        assert_eq!(url("http://[::1]:8080/p"), "http://[::1]:8080/p");
    }

    #[test]
    fn targets_are_percent_encoded() {
        assert_eq!(url(":8080/a b/ü"), "http://localhost:8080/a%20b/%C3%BC");
        assert_eq!(url(":8080/a%20b"), "http://localhost:8080/a%20b");
    }

    #[test]
    fn bad_urls_say_why() {
        let error = |text: &str| Url::parse(text).unwrap_err().to_string();
        assert!(error("ftp://x/").contains("unsupported scheme `ftp`"));
        assert!(error("localhost:99999/").contains("port `99999`"));
        assert!(error("localhost:0/").contains("port `0`"));
        assert!(error("http:///people").contains("there is no host"));
        assert!(error("ho st/").contains("not a host name"));
        assert!(error("http://u:p@host/").contains("credentials"));
    }

    #[test]
    fn https_urls_default_to_port_443() {
        let secure = Url::parse("https://example.com/people").unwrap();
        assert!(secure.is_https());
        assert_eq!(secure.socket_host(), ("example.com", 443));
        assert_eq!(secure.authority(), "example.com");
        assert_eq!(secure.to_string(), "https://example.com/people");
        assert_eq!(url("HTTPS://h:8443"), "https://h:8443/");
        assert_eq!(url("https://h:80/"), "https://h:80/");
        assert_eq!(url("http://h:443/"), "http://h:443/");
        assert!(!Url::parse(":8443").unwrap().is_https());
        let raw = Url::parse_as("localhost", Scheme::Https).unwrap();
        assert_eq!(raw.to_string(), "https://localhost/");
        assert_eq!(raw.socket_host(), ("localhost", 443));
    }

    #[test]
    fn the_scheme_is_part_of_the_origin() {
        let plain = Url::parse("http://h:8443/").unwrap();
        let secure = Url::parse("https://h:8443/").unwrap();
        assert!(!plain.same_origin(&secure));
        assert!(secure.same_origin(&secure.resolve("/people").unwrap()));
        assert!(secure.resolve("people").unwrap().is_https());
    }

    #[test]
    fn the_host_header_leaves_out_port_80() {
        assert_eq!(Url::parse("http://h/").unwrap().authority(), "h");
        assert_eq!(Url::parse("h:81").unwrap().authority(), "h:81");
        assert_eq!(Url::parse("[::1]:81").unwrap().socket_host(), ("::1", 81));
    }

    #[test]
    fn shell_paths_resolve_against_the_base() {
        let base = Url::parse("http://127.0.0.1:9000").unwrap();
        let resolve = |text: &str| base.resolve(text).unwrap().to_string();
        assert_eq!(resolve("/people"), "http://127.0.0.1:9000/people");
        assert_eq!(resolve("people/3"), "http://127.0.0.1:9000/people/3");
        assert_eq!(resolve("people.csv"), "http://127.0.0.1:9000/people.csv");
        assert_eq!(resolve(":7000/x"), "http://localhost:7000/x");
        assert_eq!(resolve("other:7000/x"), "http://other:7000/x");
        let api = Url::parse("http://h:1/api/").unwrap();
        assert_eq!(
            api.resolve("/people").unwrap().to_string(),
            "http://h:1/api/people"
        );
    }

    #[test]
    fn locations_resolve_against_the_url() {
        let base = Url::parse("http://a.test:8080/p/q/r?x=1").unwrap();
        let go = |location: &str| base.locate(location).unwrap().to_string();
        assert_eq!(go("https://b.test/s"), "https://b.test/s");
        assert_eq!(go("//b.test:9/s"), "http://b.test:9/s");
        assert_eq!(go("/s?y=2"), "http://a.test:8080/s?y=2");
        assert_eq!(go("s"), "http://a.test:8080/p/q/s");
        assert_eq!(go("../s"), "http://a.test:8080/p/s");
        assert_eq!(go("./"), "http://a.test:8080/p/q/");
        assert_eq!(go("../../../../s"), "http://a.test:8080/s");
        assert_eq!(go("?y=2"), "http://a.test:8080/p/q/r?y=2");
        assert_eq!(go("s#part"), "http://a.test:8080/p/q/s");
        assert!(base.locate("ftp://b.test/").is_err());
    }

    #[test]
    fn credentials_stay_with_their_server() {
        let base = Url::parse("https://a.test/p").unwrap();
        assert!(base.trusts(&Url::parse("https://A.test/q").unwrap()));
        assert!(!base.trusts(&Url::parse("https://b.test/p").unwrap()));
        assert!(!base.trusts(&Url::parse("https://a.test:8443/p").unwrap()));
        assert!(!base.trusts(&Url::parse("http://a.test:443/p").unwrap()));
    }

    #[test]
    fn query_items_are_appended() {
        let mut url = Url::parse(":1/p?a=1").unwrap();
        url.append_query(&[("q".into(), "kim lee".into()), ("x".into(), "&".into())]);
        assert_eq!(url.target(), "/p?a=1&q=kim+lee&x=%26");
        let mut bare = Url::parse(":1/p").unwrap();
        bare.append_query(&[("q".into(), "1".into())]);
        assert_eq!(bare.target(), "/p?q=1");
    }
}
