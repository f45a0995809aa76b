//! `--follow` and `--auth` against a Python `http.server` whose handler
//! redirects as told and echoes what each request carried (method, body,
//! `Authorization`, `Host`), so that every hop is checked on the server's
//! side.
//!
//! Python is needed: without it these tests say so loudly on stderr and
//! pass, except in CI (`CI=true`), where a missing `python3` is a failure.

mod common;

use std::process::{Command, Output, Stdio};

use common::python::Python;
use common::BIN;

use serde_json::{json, Value};

const HANDLER: &str = r#"
import json
from urllib.parse import urlsplit, parse_qs
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/hop":
            # /hop?code=307&to=/echo: a redirect to `to`.
            self.answer(int(query["code"][0]), b'{"moved": true}', [("Location", query["to"][0])])
        elif url.path.startswith("/chain/"):
            # /chain/N: N relative redirects (to `N-1`), then the echo.
            left = int(url.path.rsplit("/", 1)[1])
            if left == 0:
                self.echo(body)
            else:
                self.answer(302, b"{}", [("Location", str(left - 1))])
        elif url.path == "/loop":
            self.answer(302, b"{}", [("Location", "/loop")])
        else:
            self.echo(body)

    def echo(self, body):
        echo = {
            "method": self.command,
            "path": self.path,
            "body": body,
            "type": self.headers.get("Content-Type"),
            "authorization": self.headers.get("Authorization"),
            "host": self.headers.get("Host"),
        }
        self.answer(200, json.dumps(echo).encode())

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// A redirect with `code` to `to`.
fn hop(python: &Python, code: u16, to: &str) -> String {
    let to: String = form_urlencoded::byte_serialize(to.as_bytes()).collect();
    python.url(&format!("/hop?code={code}&to={to}"))
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}", self.stdout))
    }
}

fn run(args: &[&str]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run csvd");
    let run = Run {
        code: status.code().expect("exit code"),
        stdout: String::from_utf8(stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run
}

#[test]
fn redirects_change_the_method_only_where_browsers_do() {
    let Some(python) = Python::start(HANDLER, "client's redirect and auth tests") else {
        return;
    };
    for (code, method, body) in [
        (301, "GET", ""),
        (302, "GET", ""),
        (303, "GET", ""),
        (307, "POST", r#"{"name":"kim"}"#),
        (308, "POST", r#"{"name":"kim"}"#),
    ] {
        let out = run(&[
            "post",
            &hop(&python, code, "/echo"),
            "name=kim",
            "--follow",
            "--check-status",
        ]);
        assert_eq!(out.code, 0, "{code}: {}", out.stderr);
        let echo = out.json();
        assert_eq!(echo["method"], method, "{code}");
        assert_eq!(echo["body"], body, "{code}");
        assert_eq!(echo["path"], "/echo", "{code}");
        let content_type = if body.is_empty() {
            Value::Null
        } else {
            json!("application/json")
        };
        assert_eq!(echo["type"], content_type, "{code}");
    }
    // A PUT keeps its method and body through a 302, not through a 303.
    let put = run(&["put", &hop(&python, 302, "/echo"), "a:=1", "-F"]).json();
    assert_eq!(
        (put["method"].as_str(), put["body"].as_str()),
        (Some("PUT"), Some(r#"{"a":1}"#))
    );
    let put = run(&["put", &hop(&python, 303, "/echo"), "a:=1", "-F"]).json();
    assert_eq!(
        (put["method"].as_str(), put["body"].as_str()),
        (Some("GET"), Some(""))
    );
}

#[test]
fn without_follow_a_redirect_is_the_answer() {
    let Some(python) = Python::start(HANDLER, "client's redirect and auth tests") else {
        return;
    };
    let out = run(&["get", &hop(&python, 302, "/echo"), "--print=hb"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("HTTP/1.1 302 Found\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("\nLocation: /echo\n"), "{}", out.stdout);
    assert!(out.stdout.contains(r#"{"moved": true}"#), "{}", out.stdout);
}

#[test]
fn relative_chains_are_followed_and_printed_hop_by_hop_with_verbose() {
    let Some(python) = Python::start(HANDLER, "client's redirect and auth tests") else {
        return;
    };
    let out = run(&["get", &python.url("/chain/3"), "-F", "-h"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Only the last answer, without -v.
    assert_eq!(out.stdout.matches("HTTP/1.1 ").count(), 1, "{}", out.stdout);
    assert!(
        out.stdout.starts_with("HTTP/1.1 200 OK\n"),
        "{}",
        out.stdout
    );

    let out = run(&["get", &python.url("/chain/3"), "-F", "-v"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for path in ["/chain/3", "/chain/2", "/chain/1", "/chain/0"] {
        assert!(
            out.stdout.contains(&format!("GET {path} HTTP/1.1\n")),
            "{path}: {}",
            out.stdout
        );
    }
    assert_eq!(
        out.stdout.matches("HTTP/1.1 302 Found\n").count(),
        3,
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("\"path\": \"/chain/0\""),
        "{}",
        out.stdout
    );
}

#[test]
fn too_many_redirects_exit_6() {
    let Some(python) = Python::start(HANDLER, "client's redirect and auth tests") else {
        return;
    };
    let out = run(&["get", &python.url("/loop"), "--follow"]);
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert_eq!(
        out.stderr,
        "csvd: too many redirects: more than 30 (--max-redirects)\n"
    );
    assert_eq!(out.stdout, "");

    let out = run(&["get", &python.url("/chain/3"), "-F", "--max-redirects", "2"]);
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert!(out.stderr.contains("more than 2"), "{}", out.stderr);
    let out = run(&["get", &python.url("/chain/3"), "-F", "--max-redirects=3"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["path"], "/chain/0");
}

#[test]
fn auth_sends_basic_and_bearer_credentials() {
    let Some(python) = Python::start(HANDLER, "client's redirect and auth tests") else {
        return;
    };
    let echo = run(&["get", &python.url("/echo"), "-a", "kim:pa:ss wörd"]).json();
    // base64("kim:pa:ss wörd"), the password in UTF-8.
    assert_eq!(echo["authorization"], "Basic a2ltOnBhOnNzIHfDtnJk");
    let echo = run(&["get", &python.url("/echo"), "--auth=kim:"]).json();
    assert_eq!(echo["authorization"], "Basic a2ltOg==");
    let echo = run(&["get", &python.url("/echo"), "-A", "bearer", "-a", "t0ken"]).json();
    assert_eq!(echo["authorization"], "Bearer t0ken");
    let echo = run(&[
        "get",
        &python.url("/echo"),
        "--auth-type=bearer",
        "--auth=t0ken",
        "Authorization:Token mine",
    ])
    .json();
    assert_eq!(echo["authorization"], "Token mine");
    let echo = run(&["get", &python.url("/echo"), "-a", "kim:x", "Authorization:"]).json();
    assert_eq!(echo["authorization"], Value::Null);

    // No terminal to ask for the password on.
    let out = run(&["get", &python.url("/echo"), "-a", "kim"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "csvd: --auth: no password for `kim`, and no terminal to ask for it on: use \
         --auth kim:PASSWORD\n"
    );
    let out = run(&["get", &python.url("/echo"), "-A", "bearer"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[test]
fn credentials_stay_on_their_host_across_redirects() {
    let Some(python) = Python::start(HANDLER, "client's redirect and auth tests") else {
        return;
    };
    let same = run(&["get", &hop(&python, 302, "/echo"), "-F", "-a", "kim:x"]).json();
    assert_eq!(same["authorization"], "Basic a2ltOng=");
    // 127.0.0.1 and localhost are different hosts.
    let elsewhere = format!("http://localhost:{}/echo", python.port);
    let other = run(&["get", &hop(&python, 307, &elsewhere), "-F", "-a", "kim:x"]).json();
    assert_eq!(other["authorization"], Value::Null);
    assert_eq!(other["host"], format!("localhost:{}", python.port));
    // An explicit header is dropped as well.
    let other = run(&[
        "get",
        &hop(&python, 301, &elsewhere),
        "-F",
        "Authorization:Bearer x",
    ])
    .json();
    assert_eq!(other["authorization"], Value::Null);
}

#[test]
fn auth_asks_for_a_missing_password_on_the_terminal() {
    let Some(python) = Python::start(HANDLER, "client's redirect and auth tests") else {
        return;
    };
    let mut command = Command::new(BIN);
    command.args(["get", &python.url("/echo"), "-a", "kim", "--pretty=none"]);
    let mut session =
        rexpect::session::spawn_command(command, Some(30_000)).expect("start csvd get");
    session
        .exp_string(&format!("password for kim@127.0.0.1:{}: ", python.port))
        .unwrap();
    session.send_line("s3cret").unwrap();
    // base64("kim:s3cret"); the password itself is never echoed.
    let rest = session.exp_eof().unwrap();
    assert!(rest.contains("\"Basic a2ltOnMzY3JldA==\""), "{rest}");
    assert!(!rest.contains("s3cret"), "{rest}");
}
