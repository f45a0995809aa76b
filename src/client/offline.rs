//! Requests shown instead of sent: `--offline` prints the bytes the
//! request would be (what `csvd raw` could send), `--curl` an equivalent
//! curl command. Through a proxy, `--offline` shows what the proxy gets
//! (the whole URL as the target and its credentials, or the `CONNECT`
//! before the request that goes inside the tunnel) and `--curl` names it
//! with `-x`.

use hyper::header::{self, HeaderName};
use hyper::Method;

use super::error::ClientError;
use super::proxy::Proxy;
use super::request::{Payload, Prepared};
use super::upload::Part;

/// The body bytes, files read.
fn body(prepared: &Prepared) -> Result<Vec<u8>, ClientError> {
    Ok(match &prepared.payload {
        Payload::Empty => Vec::new(),
        Payload::Bytes(bytes) => bytes.to_vec(),
        Payload::File { path, .. } => {
            std::fs::read(path).map_err(|error| ClientError::file(path, error))?
        }
        Payload::Parts { parts, .. } => {
            let mut body = Vec::new();
            for part in parts {
                match part {
                    Part::Bytes(bytes) => body.extend_from_slice(bytes),
                    Part::File { path, .. } => body.extend_from_slice(
                        &std::fs::read(path).map_err(|error| ClientError::file(path, error))?,
                    ),
                }
            }
            body
        }
    })
}

/// The headers as they go, with the `Content-Length` the body adds.
fn headers(prepared: &Prepared, forward: Option<&Proxy>) -> Vec<(HeaderName, String)> {
    let mut headers: Vec<(HeaderName, String)> = prepared
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.clone(),
                String::from_utf8_lossy(value.as_bytes()).into(),
            )
        })
        .collect();
    let len = match &prepared.payload {
        Payload::Empty => 0,
        Payload::Bytes(bytes) => bytes.len() as u64,
        Payload::File { len, .. } => *len,
        // Unknown: it would go chunked.
        Payload::Parts { len, .. } => len.unwrap_or(0),
    };
    if len > 0 && prepared.header(&header::CONTENT_LENGTH).is_none() {
        headers.push((header::CONTENT_LENGTH, len.to_string()));
    }
    if let Some(authorization) = forward.and_then(|proxy| proxy.authorization.as_ref()) {
        headers.push((
            header::PROXY_AUTHORIZATION,
            String::from_utf8_lossy(authorization.as_bytes()).into(),
        ));
    }
    headers
}

/// The request as bytes: the head (request line, headers, CRLF line ends)
/// when `head`, the body when `with_body`; through `proxy`, as the proxy
/// would get it.
pub fn render(
    prepared: &Prepared,
    proxy: Option<&Proxy>,
    head: bool,
    with_body: bool,
) -> Result<Vec<u8>, ClientError> {
    let mut out = Vec::new();
    let forward = proxy.filter(|_| !prepared.url.is_https());
    if head {
        if let (Some(proxy), true) = (proxy, prepared.url.is_https()) {
            out.extend_from_slice(proxy.connect_head(&prepared.url).as_bytes());
        }
        let target = match forward {
            Some(_) => prepared.url.to_string(),
            None => prepared.url.target().to_string(),
        };
        out.extend_from_slice(format!("{} {target} HTTP/1.1\r\n", prepared.method).as_bytes());
        for (name, value) in headers(prepared, forward) {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    if with_body {
        out.extend_from_slice(&body(prepared)?);
    }
    Ok(out)
}

/// A word for a POSIX shell: as it is when that is safe, else in single
/// quotes.
fn quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,+%".contains(&b));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// An equivalent curl command. Host and Content-Length are left to curl;
/// a file body is named (`--data-binary @file`), not copied in. The proxy
/// is `-x URL`; `--no-proxy` is `--noproxy '*'`.
pub fn curl(
    prepared: &Prepared,
    proxy: Option<&Proxy>,
    no_proxy: bool,
) -> Result<String, ClientError> {
    let mut words = vec!["curl".to_string()];
    if let Some(proxy) = proxy {
        words.push("-x".into());
        words.push(quote(&proxy.given));
    } else if no_proxy {
        words.push("--noproxy".into());
        words.push(quote("*"));
    }
    match prepared.method {
        Method::GET => {}
        Method::HEAD => words.push("--head".into()),
        ref method => {
            words.push("--request".into());
            words.push(quote(method.as_str()));
        }
    }
    words.push(quote(&prepared.url.to_string()));
    for (name, value) in headers(prepared, None) {
        if name == header::HOST || name == header::CONTENT_LENGTH {
            continue;
        }
        words.push("--header".into());
        words.push(quote(&format!("{name}: {value}")));
    }
    match &prepared.payload {
        Payload::Empty => {}
        Payload::Bytes(_) | Payload::Parts { .. } => {
            let text = String::from_utf8(body(prepared)?).map_err(|_| {
                ClientError::item(
                    "--curl",
                    "the body is not text and cannot be written in a command",
                )
            })?;
            // `--data-raw`: a body starting with `@` is no file name.
            words.push("--data-raw".into());
            words.push(quote(&text));
        }
        Payload::File { path, .. } => {
            words.push("--data-binary".into());
            words.push(quote(&format!("@{}", path.display())));
        }
    }
    Ok(words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_for_a_shell() {
        assert_eq!(quote("http://x/p"), "http://x/p");
        assert_eq!(quote("http://x/p?a=1"), "'http://x/p?a=1'");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("{\"a\":1}"), "'{\"a\":1}'");
    }
}
