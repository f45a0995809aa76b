//! The client against a server that is not csvd: Python's `http.server`,
//! with a handler that answers gzip- and deflate-encoded bodies, streams
//! chunked NDJSON in pieces, redirects, answers HEAD, and sends a large
//! body. Each command must get the whole answer, decoded, and exit as it
//! should.
//!
//! Python is needed: without it these tests say so loudly on stderr and pass, except
//! in CI (`CI=true`), where a missing `python3` is a failure.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};

use common::python::Python;
use common::BIN;

use serde_json::{json, Value};

const HANDLER: &str = r#"
import gzip, json, sys, threading, zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

released = threading.Event()

def people():
    return json.dumps([{"id": n, "name": "person %d" % n} for n in range(1, 201)]).encode()

def big():
    return "".join("%d,row number %d\n" % (n, n) for n in range(200000)).encode()

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def accepts(self, coding):
        offered = self.headers.get("Accept-Encoding", "")
        return coding in [part.split(";")[0].strip() for part in offered.split(",")]

    def answer(self, status, body, content_type="application/json", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Accept-Encoding", self.headers.get("Accept-Encoding", "(none)"))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def compressed(self, body, content_type):
        if self.accepts("gzip"):
            self.answer(200, gzip.compress(body), content_type, [("Content-Encoding", "gzip")])
        else:
            self.answer(200, body, content_type)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def stream(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        encoder = zlib.compressobj(wbits=31)
        self.chunk(encoder.compress(b'{"n":1}\n') + encoder.flush(zlib.Z_SYNC_FLUSH))
        # The rest only once the test has seen the first line (bounded, so
        # that a failed test cannot leave the server waiting forever).
        released.wait(60)
        self.chunk(encoder.compress(b'{"n":2}\n{"n":3}\n') + encoder.flush())
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def do_GET(self):
        if self.path == "/people":
            self.compressed(people(), "application/json")
        elif self.path == "/deflate":
            self.answer(200, zlib.compress(people()), headers=[("Content-Encoding", "deflate")])
        elif self.path == "/big":
            self.compressed(big(), "text/plain")
        elif self.path == "/stream":
            self.stream()
        elif self.path == "/release":
            released.set()
            self.answer(200, b"released", "text/plain")
        elif self.path == "/moved":
            self.answer(301, b"", "text/plain", [("Location", "/people")])
        else:
            self.answer(404, b'{"error": "no such page"}')

    def do_HEAD(self):
        self.do_GET()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        echo = {"type": self.headers.get("Content-Type"), "body": json.loads(body)}
        self.answer(201, json.dumps(echo).encode())

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn text(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("stdout is UTF-8")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}", self.text()))
    }
}

fn run(args: &[&str]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(BIN).args(args).output().expect("run csvd");
    let run = Run {
        code: status.code().expect("exit code"),
        stdout,
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run
}

fn people() -> Value {
    (1..=200)
        .map(|n| json!({"id": n, "name": format!("person {n}")}))
        .collect()
}

#[test]
fn gzip_and_deflate_answers_are_decoded() {
    let Some(python) = Python::start(HANDLER, "client's tests against a foreign server") else {
        return;
    };
    let out = run(&["get", &python.url("/people"), "--check-status"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json(), people());

    let deflate = run(&["get", &python.url("/deflate")]);
    assert_eq!(deflate.code, 0, "{}", deflate.stderr);
    assert_eq!(deflate.json(), people());

    // The head is shown as it came: the coding is still there.
    let heads = run(&["get", &python.url("/people"), "-h"]).text();
    assert!(heads.contains("\nContent-Encoding: gzip\n"), "{heads}");
    assert!(
        heads.contains("\nX-Accept-Encoding: gzip, deflate, br\n"),
        "{heads}"
    );
}

#[test]
fn identity_asks_for_the_body_as_it_is() {
    let Some(python) = Python::start(HANDLER, "client's tests against a foreign server") else {
        return;
    };
    let out = run(&[
        "get",
        &python.url("/people"),
        "Accept-Encoding:identity",
        "--print=hb",
    ]);
    let text = out.text();
    assert!(!text.contains("Content-Encoding"), "{text}");
    assert!(text.contains("\nX-Accept-Encoding: identity\n"), "{text}");
    let body = text.split_once("\n\n").unwrap().1;
    assert_eq!(serde_json::from_str::<Value>(body).unwrap(), people());
}

#[test]
fn a_large_compressed_body_arrives_whole() {
    let Some(python) = Python::start(HANDLER, "client's tests against a foreign server") else {
        return;
    };
    let expected: String = (0..200_000)
        .map(|n| format!("{n},row number {n}\n"))
        .collect();
    let out = run(&["get", &python.url("/big")]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.len(), expected.len());
    assert!(out.stdout == expected.as_bytes());
}

#[test]
fn a_chunked_compressed_stream_prints_as_it_arrives() {
    let Some(python) = Python::start(HANDLER, "client's tests against a foreign server") else {
        return;
    };
    let mut child = Command::new(BIN)
        .args(["get", &python.url("/stream")])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0; 8];
    stdout.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"{\"n\":1}\n");
    // Only now does the server send the rest.
    let mut release = TcpStream::connect(("127.0.0.1", python.port)).unwrap();
    release
        .write_all(b"GET /release HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "{\"n\":2}\n{\"n\":3}\n");
    assert!(child.wait().unwrap().success());
}

#[test]
fn post_head_redirects_and_errors_exit_as_they_should() {
    let Some(python) = Python::start(HANDLER, "client's tests against a foreign server") else {
        return;
    };
    let post = run(&[
        "post",
        &python.url("/echo"),
        "name=kim",
        "age:=30",
        "--check-status",
    ]);
    assert_eq!(post.code, 0, "{}", post.stderr);
    assert_eq!(
        post.json(),
        json!({"type": "application/json", "body": {"name": "kim", "age": 30}})
    );

    // HEAD: the length and coding of a body that is not sent.
    let head = run(&["head", &python.url("/people"), "-h", "--check-status"]);
    assert_eq!(head.code, 0, "{}", head.stderr);
    let text = head.text();
    assert!(text.starts_with("HTTP/1.1 200 OK\n"), "{text}");
    assert!(text.contains("\nContent-Encoding: gzip\n"), "{text}");

    let moved = run(&["get", &python.url("/moved"), "-h", "--check-status"]);
    assert_eq!(moved.code, 3, "{}", moved.stderr);
    assert!(moved.text().contains("\nLocation: /people\n"));
    assert_eq!(moved.stderr, "csvd: warning: HTTP 301 Moved Permanently\n");

    let missing = run(&["get", &python.url("/nothing"), "--check-status"]);
    assert_eq!(missing.code, 4, "{}", missing.stderr);
    assert_eq!(missing.json(), json!({"error": "no such page"}));
}

#[test]
fn raw_mode_shows_the_compressed_bytes() {
    let Some(python) = Python::start(HANDLER, "client's tests against a foreign server") else {
        return;
    };
    let mut child = Command::new(BIN)
        .args(["raw", &format!("127.0.0.1:{}", python.port), "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"GET /people HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let end = out
        .stdout
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("a head");
    // The body is the gzip stream, magic number first.
    assert_eq!(&out.stdout[end + 4..end + 6], b"\x1f\x8b");
}

/// Serves one binary body with `Range: bytes=N-` (206, or 416 past the
/// end), and the ways a server can get a download wrong. `/seen` lists
/// the requests so far: path, Range and Accept-Encoding.
const RANGES: &str = r#"
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DATA = bytes((n * 7 + n // 256) % 256 for n in range(300000))
seen = []

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/seen":
            self.send(200, "\n".join(seen).encode())
            return
        asked = self.headers.get("Range", "-")
        seen.append("%s %s %s" % (self.path, asked, self.headers.get("Accept-Encoding", "-")))
        if self.path == "/data.bin":
            if asked.startswith("bytes=") and asked.endswith("-"):
                start = int(asked[6:-1])
                if start >= len(DATA):
                    self.send(416, b"", [("Content-Range", "bytes */%d" % len(DATA))])
                else:
                    span = "bytes %d-%d/%d" % (start, len(DATA) - 1, len(DATA))
                    self.send(206, DATA[start:], [("Content-Range", span)])
            else:
                self.send(200, DATA, [("Accept-Ranges", "bytes")])
        elif self.path == "/moved":
            self.send(302, b"it moved", [("Location", "/data.bin")])
        elif self.path == "/whole.bin":
            self.send(200, DATA)
        elif self.path == "/wrong.bin":
            span = "bytes 0-%d/%d" % (len(DATA) - 1, len(DATA))
            self.send(206, DATA, [("Content-Range", span)])
        elif self.path == "/named":
            self.send(200, DATA, [("Content-Disposition", 'attachment; filename="../report.bin"')])
        elif self.path == "/cut.bin":
            # Promises the whole body, sends half of it, hangs up.
            self.send_response(200)
            self.send_header("Content-Length", str(len(DATA)))
            self.end_headers()
            self.wfile.write(DATA[: len(DATA) // 2])
            self.wfile.flush()
            self.close_connection = True
        else:
            self.send(404, b"")

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// The body the Range server serves.
fn data() -> Vec<u8> {
    (0..300_000u32)
        .map(|n| ((n * 7 + n / 256) % 256) as u8)
        .collect()
}

fn ranges_server() -> Option<Python> {
    Python::start(RANGES, "client's download tests against a Range server")
}

#[test]
fn continue_resumes_a_cut_download_and_knows_when_it_is_complete() {
    let Some(python) = ranges_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data.bin");
    let file_arg = file.to_str().unwrap();

    let cut = run(&["get", &python.url("/cut.bin"), "-d", "-o", file_arg]);
    assert_eq!(cut.code, 1, "{}", cut.stderr);
    assert!(cut.stderr.starts_with("csvd: "), "{}", cut.stderr);
    assert!(
        cut.stderr.ends_with(&format!(
            "the download stopped after 146.48 KiB, `{file_arg}` holds 146.48 KiB \
             (`-d -c -o {file_arg}` resumes it)\n"
        )),
        "{}",
        cut.stderr
    );
    let half = std::fs::read(&file).unwrap();
    assert!(!half.is_empty() && half.len() < data().len());
    assert_eq!(half[..], data()[..half.len()]);

    let resumed = run(&["get", &python.url("/data.bin"), "-d", "-c", "-o", file_arg]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert!(std::fs::read(&file).unwrap() == data(), "the file is whole");
    let rest = data().len() - half.len();
    assert!(
        resumed.stderr.contains(&format!(
            "csvd: saved {} to `{file_arg}` (after the {} it had)",
            indicatif::HumanBytes(rest as u64),
            indicatif::HumanBytes(half.len() as u64)
        )),
        "{}",
        resumed.stderr
    );

    let again = run(&["get", &python.url("/data.bin"), "-d", "-c", "-o", file_arg]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        again.stderr,
        format!(
            "csvd: `{file_arg}` is already complete: the server has nothing after byte {}\n",
            data().len()
        )
    );
    assert!(std::fs::read(&file).unwrap() == data());

    let seen = run(&["get", &python.url("/seen")]).text();
    assert_eq!(
        seen,
        format!(
            "/cut.bin - identity\n/data.bin bytes={}- identity\n/data.bin bytes={}- identity",
            half.len(),
            data().len()
        )
    );
}

#[test]
fn continue_starts_again_when_the_server_sends_the_whole_body() {
    let Some(python) = ranges_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("whole.bin");
    let file_arg = file.to_str().unwrap();
    std::fs::write(&file, b"not the start of it").unwrap();
    let out = run(&["get", &python.url("/whole.bin"), "-d", "-c", "-o", file_arg]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("the server sent the whole body, not the rest"),
        "{}",
        out.stderr
    );
    assert!(std::fs::read(&file).unwrap() == data());

    // A part that starts elsewhere than asked is refused, the file kept.
    std::fs::write(&file, b"0123456789").unwrap();
    let wrong = run(&["get", &python.url("/wrong.bin"), "-d", "-c", "-o", file_arg]);
    assert_eq!(wrong.code, 1, "{}", wrong.stderr);
    assert!(
        wrong
            .stderr
            .contains("asked for the rest from byte 10, the server sent a part starting at 0"),
        "{}",
        wrong.stderr
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"0123456789");
}

#[test]
fn download_takes_the_name_content_disposition_gives() {
    use rexpect::process::wait::WaitStatus;
    let Some(python) = ranges_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(BIN);
    command
        .args(["get", &python.url("/named"), "--download"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env("TERM", "xterm");
    let mut client = rexpect::session::spawn_command(command, Some(15_000)).unwrap();
    let seen = client.exp_eof().unwrap();
    assert!(matches!(
        client.process.wait().unwrap(),
        WaitStatus::Exited(_, 0)
    ));
    assert!(seen.contains("downloading report.bin"), "{seen}");
    assert!(seen.contains("to `report.bin`"), "{seen}");
    // The name is the file's alone: `../` is dropped.
    assert!(std::fs::read(dir.path().join("report.bin")).unwrap() == data());
}

#[test]
fn download_follows_redirects_and_saves_the_last_answer() {
    let Some(python) = ranges_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for verbose in [false, true] {
        let file = dir.path().join(format!("moved-{verbose}.bin"));
        let file_arg = file.to_str().unwrap();
        let mut args = vec!["get", "", "-d", "-o", file_arg];
        let target = python.url("/moved");
        args[1] = &target;
        if verbose {
            args.push("-v");
        }
        let out = run(&args);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(out.stdout, b"");
        assert!(
            std::fs::read(&file).unwrap() == data(),
            "verbose: {verbose}"
        );
        assert_eq!(out.stderr.contains("302 Found"), verbose, "{}", out.stderr);
    }
}
