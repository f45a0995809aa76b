//! Sign-in sessions for browsers on a server with a token. A browser
//! cannot send `Authorization: Bearer`, so it gives the token once (the
//! sign-in page) and gets a random session id in a cookie that scripts
//! cannot read (`HttpOnly`), that other sites' requests never carry
//! (`SameSite=Strict`) and, over TLS, that never travels in the clear
//! (`Secure`). Each session has its own CSRF token, which the pages put in
//! their forms and their script sends as `X-CSRF-Token`; a write that comes
//! with the cookie but without it is refused.
//!
//! Sessions live in memory: a restart signs everyone out. Ids and tokens
//! are compared in constant time, and the store is bounded.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue};

/// The cookie's name.
pub const COOKIE: &str = "csvd_session";
/// How long a sign-in lasts: a week, then the token is asked for again.
pub const LIFETIME: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// Sessions kept at most; the oldest goes first. Only holders of the token
/// can create them, so this only bounds a careless script signing in in a
/// loop.
const MAX_SESSIONS: usize = 1024;
/// Random bytes in an id or a CSRF token: 256 bits, never guessed.
const SECRET_BYTES: usize = 32;

/// One signed-in browser.
#[derive(Clone, Debug)]
pub struct Session {
    id: String,
    /// The CSRF token its pages send with every write.
    pub csrf: String,
    expires: Instant,
}

/// The signed-in browsers of one server.
#[derive(Default)]
pub struct Sessions {
    live: Mutex<Vec<Session>>,
}

impl Sessions {
    /// A new session; its id goes in the cookie.
    pub fn create(&self) -> std::io::Result<Session> {
        let session = Session {
            id: secret()?,
            csrf: secret()?,
            expires: Instant::now() + LIFETIME,
        };
        let mut live = self.lock();
        let now = Instant::now();
        live.retain(|s| s.expires > now);
        if live.len() >= MAX_SESSIONS {
            live.remove(0);
        }
        live.push(session.clone());
        Ok(session)
    }

    /// The live session a request's cookie names.
    pub fn find(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers)?;
        let now = Instant::now();
        // Every live id is compared, in constant time, so the time taken
        // says nothing about how close a guess came.
        let mut found = None;
        for session in self.lock().iter() {
            if same(session.id.as_bytes(), id.as_bytes()) && session.expires > now {
                found = Some(session.clone());
            }
        }
        found
    }

    /// Ends a session (signing out).
    pub fn end(&self, session: &Session) {
        self.lock()
            .retain(|s| !same(s.id.as_bytes(), session.id.as_bytes()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Session>> {
        // A panic while holding the lock cannot leave the list half-changed.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Session {
    /// The `Set-Cookie` that keeps this session in the browser.
    pub fn cookie(&self, secure: bool) -> HeaderValue {
        let value = format!(
            "{COOKIE}={}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{}",
            self.id,
            LIFETIME.as_secs(),
            if secure { "; Secure" } else { "" }
        );
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// Whether `given` is this session's CSRF token.
    pub fn csrf_is(&self, given: &str) -> bool {
        same(given.as_bytes(), self.csrf.as_bytes())
    }
}

/// The `Set-Cookie` that removes the session cookie.
pub fn cleared_cookie(secure: bool) -> HeaderValue {
    let value = format!(
        "{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The session id in a request's `Cookie` headers.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|value| !value.is_empty())
}

/// A fresh random secret, as hex.
fn secret() -> std::io::Result<String> {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::getrandom(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compares secrets in time that depends only on their lengths.
pub fn same(given: &[u8], expected: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    given.len() == expected.len() && bool::from(given.ct_eq(expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_found_by_their_cookie_only() {
        let sessions = Sessions::default();
        let session = sessions.create().unwrap();
        assert_eq!(session.id.len(), 64);
        assert_ne!(session.id, session.csrf);
        let mut headers = HeaderMap::new();
        let cookie = format!("other=1; {COOKIE}={}", session.id);
        headers.insert(header::COOKIE, HeaderValue::from_str(&cookie).unwrap());
        let found = sessions.find(&headers).unwrap();
        assert!(found.csrf_is(&session.csrf));
        assert!(!found.csrf_is(&session.id));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("csvd_session=0000"),
        );
        assert!(sessions.find(&headers).is_none());
        sessions.end(&session);
        let cookie = format!("{COOKIE}={}", session.id);
        headers.insert(header::COOKIE, HeaderValue::from_str(&cookie).unwrap());
        assert!(sessions.find(&headers).is_none());
    }

    #[test]
    fn cookies_are_kept_from_scripts_and_other_sites() {
        let session = Sessions::default().create().unwrap();
        let plain = session.cookie(false);
        let plain = plain.to_str().unwrap();
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Strict"));
        assert!(!plain.contains("Secure"));
        assert!(session.cookie(true).to_str().unwrap().ends_with("; Secure"));
        assert!(cleared_cookie(false)
            .to_str()
            .unwrap()
            .contains("Max-Age=0"));
    }

    #[test]
    fn secret_comparison() {
        assert!(same(b"secret", b"secret"));
        assert!(!same(b"secret", b"secreT"));
        assert!(!same(b"secret", b"secret2"));
        assert!(!same(b"", b"x"));
    }
}
