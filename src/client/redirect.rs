//! `--follow` and `--auth` of the one-shot commands: the request each
//! redirect asks for, and the `Authorization` header credentials make.

use std::io::IsTerminal;

use base64::Engine as _;
use hyper::header::{self, HeaderValue};
use hyper::{Method, StatusCode};

use crate::cli::{AuthType, HopOptions};

use super::error::ClientError;
use super::items::Item;
use super::request::{Payload, Prepared};

/// Statuses `--follow` follows (when they carry a `Location`).
pub fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// The request a redirect asks for: 303 turns any method but HEAD into a
/// GET without a body, as 301 and 302 do to POST; 307 and 308 send the
/// same method and body again. Credentials are not sent to another
/// server.
pub fn next(
    prepared: &Prepared,
    status: StatusCode,
    location: &str,
) -> Result<Prepared, ClientError> {
    let url = prepared.url.locate(location)?;
    let mut next = prepared.clone();
    let to_get = match status.as_u16() {
        303 => prepared.method != Method::HEAD,
        301 | 302 => prepared.method == Method::POST,
        _ => false,
    };
    if to_get {
        next.method = Method::GET;
        next.payload = Payload::Empty;
        next.headers
            .retain(|(name, _)| ![header::CONTENT_TYPE, header::CONTENT_LENGTH].contains(name));
    }
    if !prepared.url.trusts(&url) {
        next.headers
            .retain(|(name, _)| *name != header::AUTHORIZATION);
    }
    if !prepared.url.same_origin(&url) {
        let host = HeaderValue::from_str(&url.authority())
            .map_err(|_| ClientError::url(location, "not usable in a Host header"))?;
        for (name, value) in &mut next.headers {
            if *name == header::HOST {
                *value = host.clone();
            }
        }
    }
    next.url = url;
    Ok(next)
}

/// Adds the `Authorization` header `--auth` asks for, unless an
/// `Authorization:` item set (or removed) one.
pub fn authorize(
    prepared: &mut Prepared,
    items: &[Item],
    hops: &HopOptions,
) -> Result<(), ClientError> {
    let Some(auth) = &hops.auth else {
        return Ok(());
    };
    let explicit = items
        .iter()
        .any(|item| matches!(item, Item::Header { name, .. } if *name == header::AUTHORIZATION));
    if explicit {
        return Ok(());
    }
    let value = match hops.auth_type.unwrap_or(AuthType::Basic) {
        AuthType::Bearer => format!("Bearer {auth}"),
        AuthType::Basic => {
            let credentials = match auth.split_once(':') {
                Some(_) => auth.clone(),
                None => format!("{auth}:{}", ask_password(auth, prepared)?),
            };
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(credentials)
            )
        }
    };
    let value = HeaderValue::from_str(&value).map_err(|_| ClientError::Auth {
        flag: "--auth",
        reason: "the credentials hold characters a header cannot carry (control characters)"
            .to_string(),
    })?;
    prepared.headers.push((header::AUTHORIZATION, value));
    Ok(())
}

/// The password of `--auth user`, typed on the terminal without echo.
fn ask_password(user: &str, prepared: &Prepared) -> Result<String, ClientError> {
    let failed = |reason: String| ClientError::Auth {
        flag: "--auth",
        reason,
    };
    if !std::io::stdin().is_terminal() {
        return Err(failed(format!(
            "no password for `{user}`, and no terminal to ask for it on: use \
             --auth {user}:PASSWORD"
        )));
    }
    let terminal = console::Term::stderr();
    terminal
        .write_str(&format!(
            "password for {user}@{}: ",
            prepared.url.host_and_port()
        ))
        .and_then(|()| terminal.read_secure_line())
        .map_err(|error| failed(format!("cannot read the password: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::request::Encoding;
    use crate::client::url::Url;

    fn prepare(method: Method, url: &str, items: &[&str]) -> Prepared {
        let items: Vec<Item> = items
            .iter()
            .map(|text| Item::parse(text).unwrap())
            .collect();
        Prepared::new(method, Url::parse(url).unwrap(), &items, Encoding::Auto).unwrap()
    }

    fn header<'a>(prepared: &'a Prepared, name: &header::HeaderName) -> Option<&'a str> {
        prepared.header(name).and_then(|value| value.to_str().ok())
    }

    #[test]
    fn methods_change_as_browsers_change_them() {
        let post = prepare(Method::POST, "http://a.test/p", &["name=kim"]);
        for (status, method, body) in [
            (301, Method::GET, false),
            (302, Method::GET, false),
            (303, Method::GET, false),
            (307, Method::POST, true),
            (308, Method::POST, true),
        ] {
            let status = StatusCode::from_u16(status).unwrap();
            let next = next(&post, status, "/q").unwrap();
            assert_eq!(next.method, method, "{status}");
            assert_eq!(matches!(next.payload, Payload::Bytes(_)), body, "{status}");
            assert_eq!(
                next.header(&header::CONTENT_TYPE).is_some(),
                body,
                "{status}"
            );
            assert_eq!(next.url.to_string(), "http://a.test/q");
        }
        let put = prepare(Method::PUT, "http://a.test/p", &["name=kim"]);
        assert_eq!(
            next(&put, StatusCode::FOUND, "/q").unwrap().method,
            Method::PUT
        );
        assert_eq!(
            next(&put, StatusCode::SEE_OTHER, "/q").unwrap().method,
            Method::GET
        );
        let head = prepare(Method::HEAD, "http://a.test/p", &[]);
        assert_eq!(
            next(&head, StatusCode::SEE_OTHER, "/q").unwrap().method,
            Method::HEAD
        );
    }

    #[test]
    fn credentials_and_host_follow_the_server() {
        let mut get = prepare(Method::GET, "http://a.test:8080/p", &[]);
        let hops = HopOptions {
            auth: Some("kim:s3cret".to_string()),
            ..HopOptions::default()
        };
        authorize(&mut get, &[], &hops).unwrap();
        assert_eq!(
            header(&get, &header::AUTHORIZATION),
            Some("Basic a2ltOnMzY3JldA==")
        );
        let same = next(&get, StatusCode::FOUND, "http://a.test:8080/q").unwrap();
        assert!(same.header(&header::AUTHORIZATION).is_some());
        let other = next(&get, StatusCode::FOUND, "http://b.test/q").unwrap();
        assert_eq!(other.header(&header::AUTHORIZATION), None);
        assert_eq!(header(&other, &header::HOST), Some("b.test"));
    }

    #[test]
    fn bearer_tokens_and_explicit_headers() {
        let hops = HopOptions {
            auth: Some("t0k:en".to_string()),
            auth_type: Some(AuthType::Bearer),
            ..HopOptions::default()
        };
        let mut get = prepare(Method::GET, "http://a.test/p", &[]);
        authorize(&mut get, &[], &hops).unwrap();
        assert_eq!(header(&get, &header::AUTHORIZATION), Some("Bearer t0k:en"));

        let items = [Item::parse("Authorization:Token x").unwrap()];
        let mut get = prepare(Method::GET, "http://a.test/p", &["Authorization:Token x"]);
        authorize(&mut get, &items, &hops).unwrap();
        let values: Vec<_> = get
            .headers
            .iter()
            .filter(|(name, _)| *name == header::AUTHORIZATION)
            .collect();
        assert_eq!(values.len(), 1);
        assert_eq!(header(&get, &header::AUTHORIZATION), Some("Token x"));
    }
}
