//! `csvd raw`: bytes sent verbatim to a real `csvd serve`, whatever comes
//! back printed verbatim — well-formed requests, malformed ones, and the
//! seed client's peculiar ones.

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Stdio};

use common::{Server, BIN};

struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs `csvd raw` with these arguments, `input` on its standard input.
fn raw(args: &[&str], input: &[u8]) -> Run {
    let mut child = Command::new(BIN)
        .arg("raw")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run csvd raw");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let run = Run {
        code: out.status.code().expect("exit code"),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run
}

fn with_people() -> Server {
    let server = Server::start();
    assert_eq!(server.post_json("/people", r#"{"name":"kim"}"#).status, 201);
    server
}

#[test]
fn a_good_request_from_standard_input() {
    let server = with_people();
    let addr = server.addr.to_string();
    let out = raw(
        &[&addr],
        b"GET /people/1 HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = out.text();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("\"name\":\"kim\""), "{text}");
}

#[test]
fn a_request_from_a_file_with_crlf_added() {
    let server = with_people();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("request.txt");
    std::fs::write(
        &file,
        "GET /people.csv HTTP/1.1\nHost: x\nConnection: close\n\n",
    )
    .unwrap();
    let addr = server.addr.to_string();
    let out = raw(&[&addr, file.to_str().unwrap(), "--crlf"], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = out.text();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("id,name\r\n1,kim"), "{text}");
}

#[test]
fn bad_bytes_get_a_4xx_and_the_connection_closed() {
    let server = Server::start();
    let addr = server.addr.to_string();
    for garbage in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /people HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
    ] {
        let out = raw(&[&addr, "-", "--timeout", "10"], garbage);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let text = out.text();
        assert!(
            text.starts_with("HTTP/1.1 4") || text.starts_with("HTTP/1.0 4") || text.is_empty(),
            "{garbage:?} got {text}"
        );
        assert!(
            !out.stderr.contains("sent nothing"),
            "the server closed: {}",
            out.stderr
        );
    }
}

#[test]
fn the_seed_clients_request_is_answered() {
    let server = with_people();
    let addr = server.addr.to_string();
    // Target `/`, the path in `Host:`, the head ended by `\r\n\n`.
    let seed = b"GET / HTTP/1.1\r\nHost: /people\r\nContent-Type: text/html\r\nConnection: close\r\nContent-Length: 0\r\n\n";
    let out = raw(&[&addr], seed);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.text().starts_with("HTTP/1.1 "), "{}", out.text());
}

#[test]
fn a_kept_alive_connection_ends_after_the_timeout() {
    let server = with_people();
    let addr = server.addr.to_string();
    let out = raw(
        &[&addr, "--timeout", "1"],
        b"HEAD /people HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.text().starts_with("HTTP/1.1 200 OK\r\n"),
        "{}",
        out.text()
    );
    assert!(
        out.stderr.contains("sent nothing for 1 s; closing"),
        "{}",
        out.stderr
    );
}

#[test]
fn failures_are_one_line() {
    let closed_port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let refused = raw(&[&format!("127.0.0.1:{closed_port}")], b"x");
    assert_eq!(refused.code, 1);
    assert!(
        refused
            .stderr
            .starts_with("csvd: connection refused by 127.0.0.1:"),
        "{}",
        refused.stderr
    );

    let missing = raw(&["127.0.0.1:1", "/nonexistent/request.txt"], b"");
    assert_eq!(missing.code, 1);
    assert_eq!(
        missing.stderr,
        "csvd: cannot read `/nonexistent/request.txt`: No such file or directory\n"
    );
}
