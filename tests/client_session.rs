//! `--session` and `--session-read-only` against a Python handler that sets
//! cookies (`/set`, `/expire`) and echoes what it was sent (`/echo`,
//! `/prefs/echo`), with a temporary HOME holding the session files.
//!
//! Python is needed: without it these tests say so loudly on stderr and
//! pass, except in CI (`CI=true`), where a missing `python3` is a failure.

mod common;

use std::path::Path;
use std::process::Command;

use common::python::Python;
use common::BIN;
use serde_json::{json, Value};

const HANDLER: &str = r#"
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        cookies = []
        if self.path == "/set":
            cookies = ["sid=abc; Path=/", "theme=dark; Path=/prefs", "lasting=1; Max-Age=3600"]
        if self.path == "/expire":
            cookies = ["sid=gone; Path=/; Max-Age=0"]
        if self.path == "/login":
            self.send_response(302)
            self.send_header("Location", "/echo")
            self.send_header("Set-Cookie", "sid=fresh; Path=/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        seen = {name: self.headers.get(name) for name in ("Cookie", "X-Token", "Authorization")}
        body = json.dumps(seen).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for cookie in cookies:
            self.send_header("Set-Cookie", cookie)
        self.end_headers()
        self.wfile.write(body)

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

fn run(home: &Path, args: &[&str]) -> Value {
    let out = Command::new(BIN)
        .args(args)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .current_dir(home)
        .output()
        .expect("run csvd");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout:?} {stderr}"))
}

#[test]
fn cookies_are_kept_and_sent_by_their_path_and_expiry() {
    let Some(python) = Python::start(HANDLER, "--session tests") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    run(home, &["get", &python.url("/set"), "--session", "s"]);
    let file = home.join(".config/csvd/sessions/127.0.0.1/s.json");
    assert!(file.is_file(), "no {}", file.display());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let seen = run(home, &["get", &python.url("/echo"), "--session", "s"]);
    assert_eq!(seen["Cookie"], json!("lasting=1; sid=abc"), "{seen}");
    let seen = run(home, &["get", &python.url("/prefs/echo"), "--session", "s"]);
    let cookie = seen["Cookie"].as_str().unwrap();
    assert!(
        cookie.contains("theme=dark") && cookie.contains("sid=abc"),
        "{seen}"
    );
    // Max-Age=0 removes it.
    run(home, &["get", &python.url("/expire"), "--session", "s"]);
    let seen = run(home, &["get", &python.url("/echo"), "--session", "s"]);
    assert_eq!(seen["Cookie"], json!("lasting=1"), "{seen}");
    // Another session, and no session, send none.
    let seen = run(home, &["get", &python.url("/echo"), "--session", "other"]);
    assert_eq!(seen["Cookie"], Value::Null);
    let seen = run(home, &["get", &python.url("/echo")]);
    assert_eq!(seen["Cookie"], Value::Null);
}

#[test]
fn a_cookie_set_by_a_redirect_goes_to_the_next_hop() {
    let Some(python) = Python::start(HANDLER, "--session tests") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let seen = run(
        home,
        &["get", &python.url("/login"), "--follow", "--session", "s"],
    );
    assert_eq!(seen["Cookie"], json!("sid=fresh"), "{seen}");
}

#[test]
fn headers_and_auth_are_kept_and_a_typed_one_wins() {
    let Some(python) = Python::start(HANDLER, "--session tests") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let path = home.join("mine.json");
    let path = path.to_str().unwrap();
    run(
        home,
        &[
            "get",
            &python.url("/echo"),
            "--session",
            path,
            "X-Token:t1",
            "-a",
            "kim:pw",
        ],
    );
    let seen = run(home, &["get", &python.url("/echo"), "--session", path]);
    assert_eq!(seen["X-Token"], json!("t1"));
    assert_eq!(seen["Authorization"], json!("Basic a2ltOnB3"));
    let seen = run(
        home,
        &["get", &python.url("/echo"), "--session", path, "X-Token:t2"],
    );
    assert_eq!(seen["X-Token"], json!("t2"));
    let seen = run(home, &["get", &python.url("/echo"), "--session", path]);
    assert_eq!(seen["X-Token"], json!("t2"));
}

#[test]
fn a_read_only_session_is_used_but_never_written() {
    let Some(python) = Python::start(HANDLER, "--session tests") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    run(
        home,
        &["get", &python.url("/echo"), "--session", "s", "X-Token:t1"],
    );
    let file = home.join(".config/csvd/sessions/127.0.0.1/s.json");
    let before = std::fs::read_to_string(&file).unwrap();
    let seen = run(
        home,
        &[
            "get",
            &python.url("/set"),
            "--session-read-only",
            "s",
            "X-Token:t9",
        ],
    );
    assert_eq!(seen["X-Token"], json!("t9"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
    let seen = run(
        home,
        &["get", &python.url("/echo"), "--session-read-only", "s"],
    );
    assert_eq!(seen["X-Token"], json!("t1"));
    assert_eq!(seen["Cookie"], Value::Null);
    // One that does not exist is empty, and stays absent.
    run(
        home,
        &["get", &python.url("/set"), "--session-read-only", "nope"],
    );
    assert!(!home
        .join(".config/csvd/sessions/127.0.0.1/nope.json")
        .exists());
}

#[test]
fn a_broken_session_file_is_an_error_that_names_it() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("bad.json");
    std::fs::write(&path, "{\"headers\": 3}").unwrap();
    let out = Command::new(BIN)
        .args([
            "get",
            "http://127.0.0.1:9/",
            "--session",
            path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("csvd: session `{}`: line 1: ", path.display())),
        "{stderr}"
    );
    let out = Command::new(BIN)
        .args(["get", "http://127.0.0.1:9/", "--session", "a b"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("csvd: --session: `a b`: a name is letters"),
        "{stderr}"
    );
}
