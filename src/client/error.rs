//! The client's errors: each one is a single line a person can act on.
//!
//! Messages carry their cause inline rather than as a `source`, so that the
//! binary's `{:#}` rendering never repeats a cause or spills onto a second
//! line.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid URL `{url}`: {reason}")]
    InvalidUrl { url: String, reason: String },

    #[error("invalid request item `{item}`: {reason}")]
    InvalidItem { item: String, reason: String },

    #[error("cannot read `{}`: {}", path.display(), describe_io(error))]
    UnreadableFile { path: PathBuf, error: io::Error },

    #[error("cannot resolve host `{host}`: {reason}")]
    Dns { host: String, reason: String },

    #[error("connection refused by {addr}: nothing is listening there")]
    Refused { addr: String },

    #[error("cannot reach {addr}: {}", describe_io(error))]
    Unreachable { addr: String, error: io::Error },

    #[error("timed out after {} {doing}", seconds(*after))]
    Timeout {
        after: Duration,
        doing: &'static str,
    },

    #[error("{addr}: {reason}")]
    Http { addr: String, reason: String },

    /// A proxy that cannot be used, or that refused.
    #[error("proxy {proxy}: {reason}")]
    Proxy {
        proxy: String,
        reason: String,
        /// Worth another try (`--retry`): it could not be reached, or it
        /// failed (5xx), rather than refused.
        retryable: bool,
    },

    /// `--proxy` or a proxy variable that does not name a usable proxy.
    #[error("{from}: {reason}")]
    BadProxy { from: String, reason: String },

    #[error("HTTPS to {addr}: {reason}")]
    Tls { addr: String, reason: String },

    #[error("cannot set up TLS: {reason}")]
    TlsSetup { reason: String },

    #[error("--ca {}: {reason}", path.display())]
    BadCa { path: PathBuf, reason: String },

    #[error("cannot write the output: {}", describe_io(error))]
    Output { error: io::Error },

    #[error("cannot write `{path}`: {}", describe_io(error))]
    Unwritable { path: String, error: io::Error },

    #[error("session `{}`: {reason}", path.display())]
    Session { path: PathBuf, reason: String },

    #[error("too many redirects: more than {max} (--max-redirects)")]
    TooManyRedirects { max: usize },

    #[error("{flag}: {reason}")]
    Auth { flag: &'static str, reason: String },

    /// Ctrl-C in the shell while a request was in flight.
    #[error("cancelled")]
    Cancelled,
}

impl ClientError {
    /// Connecting failed, or the connection broke before an answer: what
    /// `--retry` tries again.
    pub fn is_connection_failure(&self) -> bool {
        matches!(
            self,
            ClientError::Refused { .. }
                | ClientError::Unreachable { .. }
                | ClientError::Http { .. }
                | ClientError::Proxy {
                    retryable: true,
                    ..
                }
        )
    }

    pub fn item(item: &str, reason: impl Into<String>) -> ClientError {
        ClientError::InvalidItem {
            item: item.to_string(),
            reason: reason.into(),
        }
    }

    pub fn url(url: &str, reason: impl Into<String>) -> ClientError {
        ClientError::InvalidUrl {
            url: url.to_string(),
            reason: reason.into(),
        }
    }

    pub fn file(path: impl Into<PathBuf>, error: io::Error) -> ClientError {
        ClientError::UnreadableFile {
            path: path.into(),
            error,
        }
    }
}

/// An I/O error in words, without the `(os error N)` suffix that only a
/// programmer can use.
pub fn describe_io(error: &io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error") {
        Some(end) => text[..end].to_string(),
        None => text,
    }
}

/// `5 s`, `0.5 s`.
fn seconds(duration: Duration) -> String {
    format!("{} s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_lose_the_os_error_number() {
        let error = io::Error::from_raw_os_error(2);
        assert_eq!(describe_io(&error), "No such file or directory");
    }

    #[test]
    fn timeouts_name_the_seconds() {
        let error = ClientError::Timeout {
            after: Duration::from_millis(500),
            doing: "waiting for the response",
        };
        assert_eq!(
            error.to_string(),
            "timed out after 0.5 s waiting for the response"
        );
    }
}
