//! `--retry N` against a Python handler that fails the first K requests of
//! a path: `/503/K/…` answers 503 (with `Retry-After: 0`), `/drop/K/…`
//! closes the connection without an answer; `/count/PATH` tells how many
//! requests PATH got.
//!
//! Python is needed: without it these tests say so loudly on stderr and
//! pass, except in CI (`CI=true`), where a missing `python3` is a failure.

mod common;

use std::process::Command;

use common::python::Python;
use common::BIN;

const HANDLER: &str = r#"
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

counts = {}
lock = threading.Lock()

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def any(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        parts = self.path.strip("/").split("/")
        if parts[0] == "count":
            seen = counts.get("/" + "/".join(parts[1:]), 0)
            return self.answer(200, str(seen).encode())
        with lock:
            n = counts[self.path] = counts.get(self.path, 0) + 1
        if n <= int(parts[1]):
            if parts[0] == "drop":
                self.close_connection = True
                return
            return self.answer(503, b"busy", [("Retry-After", "0")])
        self.answer(200, b"ok %d" % n)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = do_OPTIONS = any

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let out = Command::new(BIN)
        .args(args)
        .arg("--no-config")
        .output()
        .expect("run csvd");
    let run = Run {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    };
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run
}

fn count(python: &Python, path: &str) -> u32 {
    let out = run(&["get", &python.url(&format!("/count{path}"))]);
    out.stdout.trim().parse().expect("a count")
}

fn start() -> Option<Python> {
    Python::start(HANDLER, "--retry tests")
}

#[test]
fn an_idempotent_request_is_sent_again_after_503s_until_it_succeeds() {
    let Some(python) = start() else { return };
    let out = run(&["get", &python.url("/503/2/a"), "--retry", "3"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Only the last answer is printed; each retry is said on stderr.
    assert_eq!(out.stdout, "ok 3");
    assert_eq!(
        out.stderr
            .matches("csvd: HTTP 503 Service Unavailable; trying again in")
            .count(),
        2,
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("(2 of 3)"), "{}", out.stderr);
    assert_eq!(count(&python, "/503/2/a"), 3);
}

#[test]
fn the_last_failure_is_printed_when_the_retries_run_out() {
    let Some(python) = start() else { return };
    let out = run(&[
        "delete",
        &python.url("/503/5/b"),
        "--retry",
        "2",
        "--check-status",
    ]);
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert_eq!(out.stdout, "busy");
    assert_eq!(count(&python, "/503/5/b"), 3);
    // Without --retry: one request.
    let out = run(&["get", &python.url("/503/5/c")]);
    assert_eq!(out.stdout, "busy");
    assert_eq!(count(&python, "/503/5/c"), 1);
}

#[test]
fn post_and_patch_are_never_sent_twice() {
    let Some(python) = start() else { return };
    for (method, path) in [("post", "/503/1/d"), ("patch", "/drop/1/e")] {
        let out = run(&[method, &python.url(path), "a=1", "--retry", "3"]);
        assert!(!out.stderr.contains("trying again"), "{}", out.stderr);
        assert_eq!(count(&python, path), 1, "{method}");
    }
}

#[test]
fn a_connection_closed_before_any_answer_is_retried() {
    let Some(python) = start() else { return };
    let out = run(&["put", &python.url("/drop/2/f"), "a=1", "--retry", "2"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "ok 3");
    assert_eq!(
        out.stderr.matches("trying again").count(),
        2,
        "{}",
        out.stderr
    );
}

#[test]
fn a_refused_connection_is_retried_then_reported() {
    // A port nothing listens on: bound, then freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = run(&["get", &format!("http://127.0.0.1:{port}/"), "--retry", "1"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("connection refused") && out.stderr.contains("(1 of 1)"),
        "{}",
        out.stderr
    );
}
