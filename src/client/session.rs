//! `--session NAME|PATH`: headers and cookies kept between one-shot
//! commands in a JSON file, `sessions/<host>/<NAME>.json` under the
//! configuration directory (or PATH when the name holds a `/` or ends in
//! `.json`). Cookies follow RFC 6265's domain, path and expiry rules
//! (the `cookie_store` crate; sent sorted by name); headers are those typed with a request
//! (and `--auth`'s `Authorization`), sent again unless a later command
//! names the same header.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cookie_store::{CookieStore, RawCookie};
use hyper::header::{self, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use super::error::ClientError;
use super::items::Item;
use super::request::Prepared;

/// What the file holds.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    cookies: Vec<serde_json::Value>,
}

/// An open session.
pub struct Session {
    path: PathBuf,
    read_only: bool,
    headers: BTreeMap<String, String>,
    cookies: CookieStore,
}

/// Headers that belong to one request, never kept.
fn is_kept(name: &HeaderName) -> bool {
    ![
        header::COOKIE,
        header::CONTENT_TYPE,
        header::CONTENT_LENGTH,
        header::HOST,
        header::RANGE,
    ]
    .contains(name)
        && !name.as_str().starts_with("if-")
}

fn invalid(path: &Path, reason: impl Into<String>) -> ClientError {
    ClientError::Session {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

impl Session {
    /// The file of session `name` for `host`: a path when the name holds a
    /// `/` or ends in `.json`.
    pub fn path_of(name: &str, host: &str) -> Result<PathBuf, ClientError> {
        if name.contains('/') || name.ends_with(".json") {
            return Ok(PathBuf::from(name));
        }
        let fine = !name.is_empty()
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !fine {
            return Err(ClientError::Auth {
                flag: "--session",
                reason: format!(
                    "`{name}`: a name is letters, digits, `-`, `_` and `.` (or give a path with a `/`)"
                ),
            });
        }
        let dir = super::config::config_dir().ok_or_else(|| ClientError::Auth {
            flag: "--session",
            reason: format!("`{name}`: neither HOME nor XDG_CONFIG_HOME is set: give a path"),
        })?;
        let host = host.trim_matches(['[', ']']).replace(':', "_");
        Ok(dir.join("sessions").join(host).join(format!("{name}.json")))
    }

    /// Opens the session at `path` (empty when there is no file yet).
    pub fn open(path: PathBuf, read_only: bool) -> Result<Session, ClientError> {
        let file: File = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|error| invalid(&path, format!("line {}: {error}", error.line())))?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => File::default(),
            Err(error) => {
                return Err(ClientError::UnreadableFile { path, error });
            }
        };
        let cookies = serde_json::to_string(&file.cookies).unwrap_or_default();
        let cookies = cookie_store::serde::json::load(cookies.as_bytes())
            .map_err(|error| invalid(&path, format!("its cookies: {error}")))?;
        Ok(Session {
            path,
            read_only,
            headers: file.headers,
            cookies,
        })
    }

    /// The kept headers the command line does not name (nor `--auth`, for
    /// `Authorization`), then the command line's items.
    pub fn items(&self, items: Vec<Item>, auth_given: bool) -> Result<Vec<Item>, ClientError> {
        let named = |header: &HeaderName| {
            items
                .iter()
                .any(|item| matches!(item, Item::Header { name, .. } if name == header))
        };
        let mut all = Vec::new();
        for (name, value) in &self.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid(&self.path, format!("`{name}` is not a header name")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| invalid(&self.path, format!("the value of `{name}` is not one")))?;
            if named(&name) || (auth_given && name == header::AUTHORIZATION) {
                continue;
            }
            all.push(Item::Header {
                name,
                value: Some(value),
            });
        }
        all.extend(items);
        Ok(all)
    }

    /// Keeps the headers of this request that were typed (or `--auth`'s).
    pub fn remember(&mut self, items: &[Item], prepared: &Prepared, auth_given: bool) {
        for item in items {
            if let Item::Header { name, value } = item {
                if !is_kept(name) {
                    continue;
                }
                match value {
                    Some(value) => {
                        if let Ok(text) = value.to_str() {
                            self.headers.insert(name.to_string(), text.to_string());
                        }
                    }
                    // `Name:` sends none, and keeps none.
                    None => {
                        self.headers.remove(name.as_str());
                    }
                }
            }
        }
        if auth_given {
            if let Some(text) = prepared
                .header(&header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
            {
                self.headers
                    .insert(header::AUTHORIZATION.to_string(), text.to_string());
            }
        }
    }

    fn url(prepared: &Prepared) -> Option<url::Url> {
        url::Url::parse(&prepared.url.to_string()).ok()
    }

    /// Puts the session's cookies for this URL in a `Cookie` header, unless
    /// one was typed.
    pub fn add_cookies(&self, prepared: &mut Prepared, typed: bool) {
        if typed {
            return;
        }
        prepared.headers.retain(|(name, _)| *name != header::COOKIE);
        let Some(url) = Session::url(prepared) else {
            return;
        };
        // By name: the store keeps no order of its own.
        let mut pairs: Vec<String> = self
            .cookies
            .get_request_values(&url)
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        pairs.sort();
        if let Ok(value) = HeaderValue::from_str(&pairs.join("; ")) {
            if !pairs.is_empty() {
                prepared.headers.push((header::COOKIE, value));
            }
        }
    }

    /// Keeps the cookies an answer set.
    pub fn store_cookies(&mut self, prepared: &Prepared, set_cookies: &[String]) {
        let Some(url) = Session::url(prepared) else {
            return;
        };
        let cookies = set_cookies
            .iter()
            .filter_map(|text| RawCookie::parse(text.clone()).ok());
        self.cookies.store_response_cookies(cookies, &url);
    }

    /// Writes the file (not with `--session-read-only`).
    pub fn save(&self) -> Result<(), ClientError> {
        if self.read_only {
            return Ok(());
        }
        let mut cookies = Vec::new();
        cookie_store::serde::json::save_incl_expired_and_nonpersistent(&self.cookies, &mut cookies)
            .map_err(|error| invalid(&self.path, format!("its cookies: {error}")))?;
        let file = File {
            headers: self.headers.clone(),
            cookies: serde_json::from_slice(&cookies).unwrap_or_default(),
        };
        let mut text = serde_json::to_string_pretty(&file).unwrap_or_default();
        text.push('\n');
        let unwritable = |error| ClientError::Unwritable {
            path: self.path.display().to_string(),
            error,
        };
        if let Some(dir) = self.path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(unwritable)?;
        }
        // Whole or not at all: a new file moved over the old one.
        let temporary = self.path.with_extension("json.new");
        std::fs::write(&temporary, text).map_err(unwritable)?;
        // It may hold credentials: for its owner's eyes only.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let private = std::fs::Permissions::from_mode(0o600);
            std::fs::set_permissions(&temporary, private).map_err(unwritable)?;
        }
        std::fs::rename(&temporary, &self.path).map_err(unwritable)
    }
}
