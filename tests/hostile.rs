//! Malformed and hostile requests over raw sockets. Each must get a 4xx (or
//! 501/505 where HTTP says so) or a closed connection — never a 2xx — must
//! not touch a file outside the data directory, and the server must answer
//! a normal request right after.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use common::{Response, Server};

/// Sends bytes, closes the sending side, and reads until the server closes.
fn exchange(server: &Server, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(server.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(bytes);
    let _ = stream.shutdown(Shutdown::Write);
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}

fn statuses(raw: &[u8]) -> Vec<u16> {
    let text = String::from_utf8_lossy(raw);
    text.match_indices("HTTP/1.")
        .filter_map(|(at, _)| text[at..].split(' ').nth(1)?.get(..3)?.parse().ok())
        .collect()
}

fn cases() -> Vec<(&'static str, Vec<u8>)> {
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9000));
    let huge_header = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(40_000)
    );
    let many_headers = format!(
        "GET / HTTP/1.1\r\nHost: x\r\n{}\r\n",
        (0..150)
            .map(|i| format!("X-H{i}: v\r\n"))
            .collect::<String>()
    );
    let long_method = format!("{} / HTTP/1.1\r\nHost: x\r\n\r\n", "G".repeat(5000));
    let b = |s: &str| s.as_bytes().to_vec();
    vec![
        // Request lines.
        ("garbage", b("GARBAGE\r\n\r\n")),
        ("method only", b("GET\r\n\r\n")),
        ("no version", b("GET /\r\nHost: x\r\n\r\n")),
        ("unknown version", b("GET / HTTP/9.9\r\nHost: x\r\n\r\n")),
        ("version garbage", b("GET / HTTX/1.1\r\nHost: x\r\n\r\n")),
        ("extra token", b("GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n")),
        ("nul in target", b"GET /\0 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        ("space in target", b("GET /a b HTTP/1.1\r\nHost: x\r\n\r\n")),
        ("bare CR line end", b("GET / HTTP/1.1\rHost: x\r\n\r\n")),
        ("invalid method chars", b("G(T / HTTP/1.1\r\nHost: x\r\n\r\n")),
        ("long method", long_method.into_bytes()),
        ("uri too long", long_uri.into_bytes()),
        ("empty request", b("\r\n\r\n\r\n")),
        ("absolute-form", b("GET http://evil.example/ HTTP/1.1\r\nHost: evil.example\r\n\r\n")),
        ("absolute-form to self", b("GET http://x/_health HTTP/1.1\r\nHost: x\r\n\r\n")),
        ("asterisk-form", b("GET * HTTP/1.1\r\nHost: x\r\n\r\n")),
        ("authority-form", b("CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n")),
        ("TRACE", b("TRACE / HTTP/1.1\r\nHost: x\r\n\r\n")),
        // Host.
        ("no host", b("GET /_health HTTP/1.1\r\n\r\n")),
        ("two hosts", b("GET /_health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")),
        ("host with space", b("GET /_health HTTP/1.1\r\nHost: a b\r\n\r\n")),
        ("host with userinfo", b("GET /_health HTTP/1.1\r\nHost: user@evil\r\n\r\n")),
        ("empty host", b("GET /_health HTTP/1.1\r\nHost: \r\n\r\n")),
        ("host with path chars", b("GET /_health HTTP/1.1\r\nHost: a?b\r\n\r\n")),
        // Header syntax.
        ("header without colon", b("GET / HTTP/1.1\r\nHost: x\r\nFoo\r\n\r\n")),
        ("space in header name", b("GET / HTTP/1.1\r\nHost: x\r\nFoo Bar: x\r\n\r\n")),
        ("space before colon", b("GET / HTTP/1.1\r\nHost: x\r\nFoo : x\r\n\r\n")),
        ("empty header name", b("GET / HTTP/1.1\r\nHost: x\r\n: x\r\n\r\n")),
        ("obs-fold", b("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n")),
        ("nul in header value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n".to_vec()),
        ("bare CR in header value", b("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n")),
        ("header too large", huge_header.into_bytes()),
        ("too many headers", many_headers.into_bytes()),
        // Content-Length.
        ("CL not a number", b("POST /t HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")),
        ("CL negative", b("POST /t HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")),
        ("CL with plus", b("POST /t HTTP/1.1\r\nHost: x\r\nContent-Length: +7\r\n\r\na:b\r\nx")),
        ("two different CLs", b("POST /t HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\na:bc")),
        ("CL list", b("POST /t HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 4\r\n\r\na:bc")),
        ("CL overflow", b("POST /t HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n")),
        ("CL short body", b("POST /t HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 50\r\n\r\na:b")),
        ("CL over the limit", b("POST /t HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\nExpect: 100-continue\r\n\r\n")),
        // Transfer-Encoding.
        ("TE and CL", b("POST /t HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\na:b\r\n0\r\n\r\n")),
        ("TE chunked twice in one", b("POST /t HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked, chunked\r\n\r\n3\r\na:b\r\n0\r\n\r\n")),
        ("TE chunked on two lines", b("POST /t HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n3\r\na:b\r\n0\r\n\r\n")),
        ("TE gzip, chunked", b("POST /t HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\na:b\r\n0\r\n\r\n")),
        ("TE gzip only", b("POST /t HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: gzip\r\n\r\na:b")),
        ("TE unknown", b("POST /t HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: xchunked\r\n\r\n3\r\na:b\r\n0\r\n\r\n")),
        ("TE identity", b("POST /t HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: identity\r\n\r\na:b")),
        ("TE in HTTP/1.0", b("POST /t HTTP/1.0\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\na:b\r\n0\r\n\r\n")),
        // Chunked bodies.
        ("bad chunk size", b("POST /t HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\na:b\r\n0\r\n\r\n")),
        ("chunk size overflow", b("POST /t HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\na:b\r\n0\r\n\r\n")),
        ("chunk without CRLF", b("POST /t HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\na:bXX0\r\n\r\n")),
        ("chunk cut short", b("POST /t HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n10\r\na:b")),
        ("chunk size with space", b("POST /t HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n 3\r\na:b\r\n0\r\n\r\n")),
        ("chunk no last chunk", b("POST /t HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\na:b\r\n")),
        // Smuggling: a hidden second request after an ambiguous first one.
        ("CL.TE smuggle", b("POST /t HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nPUT /smuggled/1 HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\na:b")),
        ("TE.CL smuggle", b("POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nPUT /smuggled/2 HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\na:b\r\n0\r\n\r\n")),
        ("TE.TE smuggle", b("POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\nPUT /smuggled/3 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\na:b")),
        ("space-before-colon TE smuggle", b("POST /t HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding : chunked\r\n\r\na:b")),
        // Paths out of the data directory, in every encoding.
        ("dot-dot", b("GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n")),
        ("encoded slash", b("GET /..%2f..%2fetc%2fpasswd HTTP/1.1\r\nHost: x\r\n\r\n")),
        ("encoded dots", b("GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n")),
        ("double encoded", b("GET /%252e%252e%252fetc%252fpasswd HTTP/1.1\r\nHost: x\r\n\r\n")),
        ("backslash", b("GET /..%5c..%5cwindows HTTP/1.1\r\nHost: x\r\n\r\n")),
        ("overlong utf-8 dot", b("GET /%c0%ae%c0%ae/etc HTTP/1.1\r\nHost: x\r\n\r\n")),
        ("write outside", b("PUT /..%2foutside HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 6\r\n\r\na\nowned")),
        ("write outside by id", b("PUT /..%2f/outside HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\na:b")),
        ("nul in table", b("PUT /escape%00.csv HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 4\r\n\r\na\nb\n")),
        ("engine files", b("GET /.csvd/lock HTTP/1.1\r\nHost: x\r\n\r\n")),
        ("temporary files", b("GET /.t.csv.1.tmp HTTP/1.1\r\nHost: x\r\n\r\n")),
        ("conflict files", b("PUT /t.csv.conflict-1 HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 4\r\n\r\na\nb\n")),
        ("absolute path", b("GET //etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n")),
        ("symlink table", b("GET /link HTTP/1.1\r\nHost: x\r\n\r\n")),
    ]
}

#[test]
fn hostile_requests_never_succeed_and_the_server_keeps_serving() {
    let outer = tempfile::tempdir().unwrap();
    let data = outer.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let outside = outer.path().join("outside.csv");
    std::fs::write(&outside, "id,secret\n1,keep me\n").unwrap();
    std::os::unix::fs::symlink(&outside, data.join("link.csv")).unwrap();
    let mut server = Server::start_in(&data, &["--max-body", "1000000"]);
    let cases = cases();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    for (name, bytes) in &cases {
        let raw = exchange(&server, bytes);
        let found = statuses(&raw);
        for status in &found {
            assert!(
                (400..500).contains(status) || *status == 501 || *status == 505,
                "{name}: answered {status}: {}",
                String::from_utf8_lossy(&raw)
            );
        }
        assert_eq!(server.get("/t").status, 404, "{name}: a write went through");
        let health = server.get("/_health");
        assert_eq!(health.status, 200, "{name}: the server stopped answering");
        assert_eq!(
            server.get("/smuggled").status,
            404,
            "{name}: a smuggled request was served"
        );
    }
    // Nothing was created, and nothing outside the data directory changed.
    assert_eq!(
        server.get("/smuggled").status,
        404,
        "a smuggled request was served"
    );
    assert_eq!(server.get("/t").status, 404);
    assert_eq!(
        std::fs::read_to_string(&outside).unwrap(),
        "id,secret\n1,keep me\n"
    );
    let status = server.stop();
    assert!(status.success());
    let mut names: Vec<String> = std::fs::read_dir(outer.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["data", "outside.csv"]);
    let mut inside: Vec<String> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    inside.sort();
    assert_eq!(inside, [".csvd", "link.csv"]);
}

#[test]
fn a_client_that_stops_sending_still_gets_its_answer() {
    // Closing the sending side after a request (as `nc -N`, or a script's
    // shutdown) is not closing the connection: the answer still comes, even
    // one that is still being made when the client's end arrives.
    let s = Server::start();
    let raw = exchange(
        &s,
        b"GET /_health?_delay=300 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(statuses(&raw), [200], "{}", String::from_utf8_lossy(&raw));
    // Two requests, then the end: both are answered, in order.
    let raw = exchange(
        &s,
        b"GET /_health HTTP/1.1\r\nHost: x\r\n\r\nGET /nope?_delay=200 HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(
        statuses(&raw),
        [200, 404],
        "{}",
        String::from_utf8_lossy(&raw)
    );
}

#[test]
fn a_symlinked_table_is_never_followed_out() {
    let outer = tempfile::tempdir().unwrap();
    let data = outer.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let outside = outer.path().join("outside.csv");
    std::fs::write(&outside, "id,secret\n1,keep me\n").unwrap();
    std::os::unix::fs::symlink(&outside, data.join("link.csv")).unwrap();
    let mut server = Server::start_in(&data, &[]);
    assert_eq!(server.get("/link").status, 404);
    assert!(!server.get("/").text().contains("link"));
    let r = server.request(
        "PUT",
        "/link",
        &[("Content-Type", "text/csv")],
        b"id,x\n1,new\n",
    );
    assert_eq!(r.status, 201);
    assert!(server.stop().success());
    assert_eq!(
        std::fs::read_to_string(&outside).unwrap(),
        "id,secret\n1,keep me\n"
    );
    let replaced = std::fs::symlink_metadata(data.join("link.csv")).unwrap();
    assert!(
        replaced.is_file(),
        "the link itself was replaced, not its target"
    );
}

#[test]
fn a_slow_sender_is_cut_off() {
    let server = Server::start_with(&["--header-timeout", "1"]);
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let started = Instant::now();
    let mut closed = false;
    // One byte every 200 ms: the head would take minutes.
    for byte in b"GET /_health HTTP/1.1\r\nHost: x\r\nX-Slow: "
        .iter()
        .cycle()
    {
        if stream.write_all(&[*byte]).is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 512];
        match stream.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => {
                let text = String::from_utf8_lossy(&buf[..n]);
                assert!(!text.contains(" 200 "), "a slow head was served: {text}");
            }
            Err(_) => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "a slow sender was kept for 20 s"
        );
    }
    assert!(closed);
}

#[test]
fn an_idle_connection_is_closed() {
    let server = Server::start_with(&["--idle-timeout", "1", "--header-timeout", "30"]);
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut buf = [0u8; 16];
    let n = stream.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the idle connection was closed by the server");
}

#[test]
fn a_slow_body_gets_408() {
    let server = Server::start_with(&["--body-timeout", "1"]);
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
        .write_all(b"POST /t HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\na:b")
        .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    assert_eq!(Response::parse(&raw, true).status, 408);
    assert_eq!(server.get("/t").status, 404);
}

#[test]
fn connections_beyond_the_cap_get_503_at_once() {
    let server = Server::start_with(&["--max-connections", "2"]);
    let held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    // Prove both are accepted (each answers), keeping them open.
    for mut stream in &held {
        stream
            .write_all(b"GET /_health HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    }
    let raw = server.raw(b"GET /_health HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = Response::parse(&raw, false);
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("1"));
    drop(held);
    // Slots free up when connections close.
    let mut answered = false;
    for _ in 0..100 {
        if Response::parse(
            &server.raw(b"GET /_health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            false,
        )
        .status
            == 200
        {
            answered = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(answered);
}

#[test]
fn limits_have_their_statuses() {
    let server = Server::start_with(&[
        "--max-uri",
        "100",
        "--max-header-bytes",
        "2000",
        "--max-headers",
        "10",
    ]);
    let long = format!("/{}", "x".repeat(200));
    assert_eq!(server.get(&long).status, 414);
    let big = "y".repeat(3000);
    assert_eq!(server.get_with("/", &[("X-Big", &big)]).status, 431);
    let headers: Vec<(String, String)> = (0..12).map(|i| (format!("X-{i}"), "v".into())).collect();
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(server.get_with("/", &refs).status, 431);
    assert_eq!(server.get("/").status, 200);
}

#[test]
fn the_default_header_count_limit_is_100() {
    let server = Server::start();
    let count = |n: usize| {
        let headers: Vec<(String, String)> =
            (0..n).map(|i| (format!("X-{i}"), "v".into())).collect();
        let refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        server.get_with("/", &refs).status
    };
    // The client adds a few of its own (Host among them).
    assert_eq!(count(90), 200);
    assert_eq!(count(101), 431);
}

#[test]
fn content_length_with_transfer_encoding_is_refused_in_either_order() {
    let server = Server::start();
    for head in [
        "Content-Length: 3\r\nTransfer-Encoding: chunked",
        "Transfer-Encoding: chunked\r\nContent-Length: 3",
    ] {
        let request = format!(
            "POST /t HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n{head}\r\n\r\n3\r\na:b\r\n0\r\n\r\n"
        );
        let r = Response::parse(&server.raw(request.as_bytes()), false);
        assert_eq!(r.status, 400, "{head}: {}", r.text());
        assert_eq!(r.header("connection"), Some("close"));
    }
    assert_eq!(server.get("/t").status, 404);
}
