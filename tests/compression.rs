//! Compressed answers: every offered encoding, every representation, small
//! and large (streamed) answers, errors and HEAD. Each compressed answer is
//! decoded and compared with the uncompressed one, row for row.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use common::{Response, Server};

/// The encodings the server offers.
const ENCODINGS: [&str; 4] = ["gzip", "br", "deflate", "zstd"];
/// What a browser (Chromium) sends; and the older, shorter form.
const BROWSER_ENCODINGS: [&str; 2] = ["gzip, deflate, br, zstd", "gzip, deflate, br"];
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// Writes `DIR/<name>.csv` with `rows` rows whose cells need quoting in CSV
/// and escaping in JSON and HTML.
fn write_table(dir: &Path, name: &str, rows: usize) {
    let mut csv = String::from("id,name,note\n");
    for i in 1..=rows {
        csv.push_str(&format!(
            "{i},\"name {i}, the \"\"{}\"\"\",<b>ü {}</b>\n",
            i % 7,
            i % 97
        ));
    }
    std::fs::write(dir.join(format!("{name}.csv")), csv).unwrap();
}

/// A server on a data directory holding `big` (`rows` rows).
fn server_with(rows: usize) -> (Server, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    write_table(tmp.path(), "big", rows);
    let server = Server::start_in(tmp.path(), &[]);
    (server, tmp)
}

/// Sends raw bytes and returns all the server answers until it closes the
/// connection. Rendering and compressing a large table in a debug build on
/// a busy machine can be slow; only a long silence fails.
fn exchange(s: &Server, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(s.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    stream.write_all(bytes).expect("send");
    let mut out = Vec::new();
    stream
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("reading the answer failed after {} bytes: {e}", out.len()));
    out
}

/// One request on its own connection.
fn request(s: &Server, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    Response::parse(&exchange(s, head.as_bytes()), method == "HEAD")
}

fn get(s: &Server, path: &str, headers: &[(&str, &str)]) -> Response {
    request(s, "GET", path, headers)
}

/// The body of a compressed answer, decoded by its `Content-Encoding`.
fn decode(response: &Response) -> Vec<u8> {
    let encoding = response.header("content-encoding").unwrap_or("identity");
    let body = &response.body[..];
    let mut out = Vec::new();
    match encoding {
        "gzip" => flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .map(drop),
        "deflate" => flate2::read::ZlibDecoder::new(body)
            .read_to_end(&mut out)
            .map(drop),
        "br" => brotli::Decompressor::new(body, 4096)
            .read_to_end(&mut out)
            .map(drop),
        "zstd" => zstd::stream::read::Decoder::new(body)
            .and_then(|mut d| d.read_to_end(&mut out))
            .map(drop),
        "identity" => {
            out.extend_from_slice(body);
            Ok(())
        }
        other => panic!("unexpected Content-Encoding {other:?}"),
    }
    .unwrap_or_else(|e| {
        panic!(
            "the {encoding} body ({} bytes) does not decode: {e}",
            body.len()
        )
    });
    out
}

/// A compressed answer carries no `Content-Length`, or the right one.
fn check_length(response: &Response) {
    if let Some(length) = response.header("content-length") {
        assert_eq!(
            length.parse::<usize>().unwrap(),
            response.body.len(),
            "Content-Length does not match the body sent"
        );
    }
}

/// GETs `path` plain and with each encoding; each compressed answer must
/// be 200, in that encoding, and decode to the plain answer. Returns the
/// plain body.
fn same_under_every_encoding(s: &Server, path: &str, accept: &str) -> Vec<u8> {
    let plain = get(
        s,
        path,
        &[("Accept", accept), ("Accept-Encoding", "identity")],
    );
    assert_eq!(plain.status, 200, "{path}");
    assert_eq!(plain.header("content-encoding"), None);
    for encoding in ENCODINGS {
        let r = get(
            s,
            path,
            &[("Accept", accept), ("Accept-Encoding", encoding)],
        );
        assert_eq!(r.status, 200, "{path} {encoding}");
        assert_eq!(
            r.header("content-encoding"),
            Some(encoding),
            "{path}: {encoding} asked for"
        );
        assert!(
            r.headers
                .iter()
                .any(|(k, v)| k == "vary" && v.to_ascii_lowercase().contains("accept-encoding")),
            "{path}: no Vary: Accept-Encoding"
        );
        check_length(&r);
        let decoded = decode(&r);
        assert!(
            decoded == plain.body,
            "{path} {encoding}: decoded {} bytes, the plain answer has {}",
            decoded.len(),
            plain.body.len()
        );
    }
    plain.body
}

/// The expected rows of [`write_table`], as JSON objects.
fn expected_row(i: usize) -> serde_json::Value {
    serde_json::json!({
        "id": i,
        "name": format!("name {i}, the \"{}\"", i % 7),
        "note": format!("<b>ü {}</b>", i % 97),
    })
}

fn check_json_rows(body: &[u8], rows: usize) {
    let got: Vec<serde_json::Value> = serde_json::from_slice(body).expect("a JSON array");
    assert_eq!(got.len(), rows);
    for (n, row) in got.iter().enumerate() {
        assert_eq!(row, &expected_row(n + 1), "row {}", n + 1);
    }
}

fn check_ndjson_rows(body: &[u8], rows: usize) {
    let text = std::str::from_utf8(body).unwrap();
    let got: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(got.len(), rows);
    for (n, row) in got.iter().enumerate() {
        assert_eq!(row, &expected_row(n + 1), "row {}", n + 1);
    }
}

fn check_csv_rows(body: &[u8], rows: usize) {
    let text = std::str::from_utf8(body).unwrap();
    let mut lines = text.split("\r\n");
    assert_eq!(lines.next(), Some("id,name,note"));
    let mut n = 0;
    for line in lines.filter(|l| !l.is_empty()) {
        n += 1;
        let want = format!(
            "{n},\"name {n}, the \"\"{}\"\"\",<b>ü {}</b>",
            n % 7,
            n % 97
        );
        assert_eq!(line, want, "row {n}");
    }
    assert_eq!(n, rows);
    assert!(text.ends_with("\r\n"));
}

/// Every representation of a table of `rows` rows, under every encoding.
fn every_representation(rows: usize) {
    let (s, _dir) = server_with(rows);
    let json = same_under_every_encoding(&s, "/big", "application/json");
    check_json_rows(&json, rows);
    let csv = same_under_every_encoding(&s, "/big.csv", "*/*");
    check_csv_rows(&csv, rows);
    let ndjson = same_under_every_encoding(&s, "/big", "application/x-ndjson");
    check_ndjson_rows(&ndjson, rows);
    let limit = format!("/big.html?_limit={}", rows.min(3000));
    let html = same_under_every_encoding(&s, &limit, BROWSER_ACCEPT);
    let html = String::from_utf8(html).unwrap();
    assert!(html.ends_with("</html>\n"), "the page is complete");
    let last = rows.min(3000);
    assert!(html.contains(&format!("<a href=\"/big/{last}\">{last}</a>")));
}

#[test]
fn a_large_table_decodes_whole_in_every_encoding_and_representation() {
    every_representation(100_001);
}

#[test]
fn one_row_over_the_streaming_threshold_decodes_whole() {
    // 1,001 rows: streamed, in a single chunk.
    every_representation(1_001);
}

#[test]
fn answers_rendered_whole_still_compress() {
    every_representation(1_000);
    every_representation(3);
}

#[test]
fn a_query_over_a_large_table_decodes_whole() {
    let (s, _dir) = server_with(20_000);
    let body = same_under_every_encoding(&s, "/big?_limit=1001", "application/json");
    check_json_rows(&body, 1001);
    let body = same_under_every_encoding(&s, "/big.csv?_sort=id&_limit=5000", "*/*");
    check_csv_rows(&body, 5000);
}

#[test]
fn the_pages_download_link_of_a_large_table_is_complete() {
    let rows = 100_001;
    let (s, _dir) = server_with(rows);
    let page = get(&s, "/big", &[("Accept", BROWSER_ACCEPT)]);
    assert_eq!(page.status, 200);
    let page = page.text();
    let href = page
        .split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .find(|href| href.starts_with("/big.csv"))
        .expect("a CSV download link")
        .replace("&amp;", "&");
    for accept_encoding in BROWSER_ENCODINGS {
        let r = get(
            &s,
            &href,
            &[
                ("Accept", BROWSER_ACCEPT),
                ("Accept-Encoding", accept_encoding),
            ],
        );
        assert_eq!(r.status, 200);
        assert!(
            r.header("content-encoding").is_some(),
            "{accept_encoding}: not compressed"
        );
        check_length(&r);
        check_csv_rows(&decode(&r), rows);
    }
}

#[test]
fn errors_compress_and_decode() {
    let (s, _dir) = server_with(3);
    for encoding in ENCODINGS {
        let r = get(&s, "/big/99", &[("Accept-Encoding", encoding)]);
        assert_eq!(r.status, 404);
        assert_eq!(r.header("content-encoding"), Some(encoding));
        check_length(&r);
        let body = decode(&r);
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["status"], 404, "{problem}");
        let r = get(
            &s,
            "/big/99",
            &[("Accept", BROWSER_ACCEPT), ("Accept-Encoding", encoding)],
        );
        assert_eq!(r.status, 404);
        assert_eq!(r.header("content-encoding"), Some(encoding));
        let page = String::from_utf8(decode(&r)).unwrap();
        assert!(page.contains("404 Not Found"), "{page}");
    }
}

#[test]
fn head_answers_match_the_compressed_get() {
    for rows in [3, 1_000, 1_001, 20_000] {
        let (s, _dir) = server_with(rows);
        for encoding in ENCODINGS {
            for path in ["/big", "/big.csv", "/big.ndjson"] {
                let headers = [("Accept-Encoding", encoding)];
                let get = get(&s, path, &headers);
                let head = request(&s, "HEAD", path, &headers);
                assert_eq!(head.status, 200);
                for name in ["content-type", "content-encoding", "etag", "x-total-count"] {
                    assert_eq!(
                        head.header(name),
                        get.header(name),
                        "{rows} rows {path} {encoding}: {name}"
                    );
                }
                // A HEAD may omit the length; a length it gives is the GET's.
                if let Some(length) = head.header("content-length") {
                    assert_eq!(
                        length.parse::<usize>().unwrap(),
                        get.body.len(),
                        "{rows} rows {path} {encoding}: HEAD's Content-Length"
                    );
                }
                let raw = exchange(
                    &s,
                    format!(
                        "HEAD {path} HTTP/1.1\r\nHost: x\r\n\
                         Accept-Encoding: {encoding}\r\nConnection: close\r\n\r\n"
                    )
                    .as_bytes(),
                );
                let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
                assert_eq!(raw.len(), end + 4, "a HEAD answer has no body");
            }
        }
    }
}

#[test]
fn a_compressed_answer_keeps_its_connection_usable() {
    // Two answers on one connection: the first's end must be exact, or the
    // second would not parse.
    let (s, _dir) = server_with(5_000);
    let mut requests = Vec::new();
    for encoding in ["gzip", "br"] {
        requests.extend_from_slice(
            format!("GET /big.csv HTTP/1.1\r\nHost: x\r\nAccept-Encoding: {encoding}\r\n\r\n")
                .as_bytes(),
        );
    }
    requests.extend_from_slice(b"GET /big/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let raw = exchange(&s, &requests);
    let mut rest = &raw[..];
    for encoding in ["gzip", "br"] {
        let (response, used) = parse_one(rest);
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-encoding"), Some(encoding));
        check_csv_rows(&decode(&response), 5_000);
        rest = &rest[used..];
    }
    let (last, _) = parse_one(rest);
    assert_eq!(last.status, 200);
    assert_eq!(last.json()["id"], 1);
}

/// Parses the first answer of a pipelined exchange (a chunked body or one
/// with a `Content-Length`); returns it and the bytes it used.
fn parse_one(raw: &[u8]) -> (Response, usize) {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = Response::parse(&raw[..end], true);
    let mut at = end;
    let mut body = Vec::new();
    if head
        .header("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        loop {
            let line_end = at + raw[at..].windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&raw[at..line_end]).unwrap(), 16)
                .unwrap();
            at = line_end + 2;
            if size == 0 {
                at += 2;
                break;
            }
            body.extend_from_slice(&raw[at..at + size]);
            at += size + 2;
        }
    } else {
        let length: usize = head.header("content-length").unwrap().parse().unwrap();
        body.extend_from_slice(&raw[at..at + length]);
        at += length;
    }
    (Response { body, ..head }, at)
}

#[test]
fn the_test_suite_notices_a_panic_in_the_server() {
    // What the watcher of every test server's stderr collects, shown on a
    // stand-in that prints what a panicking csvd prints.
    let mut child = std::process::Command::new("sh")
        .args([
            "-c",
            "echo 'INFO all fine' >&2; \
             echo \"thread 'tokio-rt-worker' (7) panicked at src/server/stream.rs:1:1:\" >&2; \
             echo 'a bug' >&2; echo 'stack backtrace:' >&2",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let watcher = common::watch_stderr(child.stderr.take().unwrap());
    child.wait().unwrap();
    let panics = watcher.join().unwrap();
    assert_eq!(panics.len(), 1, "{panics:?}");
    assert!(panics[0].contains("panicked at src/server/stream.rs"));
    assert!(panics[0].ends_with("a bug"));
}
