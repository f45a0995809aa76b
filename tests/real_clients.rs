//! csvd driven by real third-party clients: `curl` and Python's `urllib`.
//! Every answer must arrive complete and decode (large tables in every
//! representation and encoding, uploads, conditional requests). A client
//! the machine lacks is skipped loudly; in CI (`CI=true`) it is a failure.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::Server;

const BIG: usize = 100_001;
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// Whether `program` runs here. Missing: a failure in CI, a loud skip
/// elsewhere.
fn have(program: &str, version_flag: &str) -> bool {
    let found = Command::new(program)
        .arg(version_flag)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("`{program}` is needed by this test and is missing (.ci/run installs it)");
        }
        eprintln!(
            "\n*** SKIPPED: `{program}` is not installed, so this test did not run; \
             install it (CI fails without it) ***\n"
        );
    }
    found
}

/// The rows of the test table, as CSV (cells that need quoting and
/// escaping); with an id column or without.
fn table_csv(rows: usize, ids: bool) -> String {
    let mut csv = String::from(if ids { "id,name,note\n" } else { "name,note\n" });
    for i in 1..=rows {
        if ids {
            csv.push_str(&format!("{i},"));
        }
        csv.push_str(&format!(
            "\"name {i}, the \"\"{}\"\"\",<b>ü {}</b>\n",
            i % 7,
            i % 97
        ));
    }
    csv
}

/// A server on a data directory holding `big` (`rows` rows).
fn server_with(rows: usize) -> (Server, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("big.csv"), table_csv(rows, true)).unwrap();
    let server = Server::start_in(tmp.path(), &[]);
    (server, tmp)
}

/// The encodings this curl can decode.
fn curl_encodings() -> Vec<&'static str> {
    let out = Command::new("curl").arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let features = text
        .lines()
        .find_map(|l| l.strip_prefix("Features:"))
        .unwrap_or_default()
        .to_ascii_lowercase();
    let has = |f: &str| features.split_whitespace().any(|w| w == f);
    let mut encodings = Vec::new();
    if has("libz") {
        encodings.extend(["gzip", "deflate"]);
    }
    if has("brotli") {
        encodings.push("br");
    }
    if has("zstd") {
        encodings.push("zstd");
    }
    for missing in ["gzip", "deflate", "br", "zstd"] {
        if !encodings.contains(&missing) {
            eprintln!("*** this curl cannot decode {missing}; not tried with curl ***");
        }
    }
    encodings
}

/// What one curl run got.
struct Got {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> Option<String> {
        // The last head (after a `100 Continue`) is the answer's.
        let head = self.headers.trim_end().rsplit("\r\n\r\n").next().unwrap();
        head.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// Runs curl on `base + path` with `args`; fails the test unless curl
/// itself succeeded (exit 0: the whole answer arrived and decoded).
fn curl(s: &Server, dir: &Path, path: &str, args: &[&str]) -> Got {
    curl_with_stdin(s, dir, path, args, None)
}

fn curl_with_stdin(s: &Server, dir: &Path, path: &str, args: &[&str], stdin: Option<&[u8]>) -> Got {
    let head_file = dir.join("head");
    let body_file = dir.join("body");
    let _ = std::fs::remove_file(&body_file);
    let url = format!("{}{path}", s.base());
    let mut command = Command::new("curl");
    command
        .args(["-sS", "--max-time", "120", "-w", "%{http_code}", "-D"])
        .arg(&head_file)
        .arg("-o")
        .arg(&body_file)
        .args(args)
        .arg(&url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out: Output = if let Some(input) = stdin {
        command.stdin(Stdio::piped());
        let mut child = command.spawn().expect("run curl");
        let mut pipe = child.stdin.take().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            let _ = pipe.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        out
    } else {
        command.output().expect("run curl")
    };
    assert!(
        out.status.success(),
        "curl {args:?} {url} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Got {
        status: String::from_utf8_lossy(&out.stdout).trim().parse().unwrap(),
        headers: std::fs::read_to_string(&head_file).unwrap_or_default(),
        body: std::fs::read(&body_file).unwrap_or_default(),
    }
}

/// The expected row `i` of [`table_csv`], as JSON.
fn expected_row(i: usize) -> serde_json::Value {
    serde_json::json!({
        "id": i,
        "name": format!("name {i}, the \"{}\"", i % 7),
        "note": format!("<b>ü {}</b>", i % 97),
    })
}

/// The rows of a JSON array, an NDJSON body or a CSV answer, as JSON.
fn rows_of(format: &str, body: &[u8]) -> Vec<serde_json::Value> {
    match format {
        "json" => serde_json::from_slice(body).expect("a JSON array"),
        "ndjson" => std::str::from_utf8(body)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect(),
        "csv" => {
            let mut reader = csv::Reader::from_reader(body);
            let headers = reader.headers().unwrap().clone();
            reader
                .records()
                .map(|record| {
                    let record = record.unwrap();
                    let mut row = serde_json::Map::new();
                    for (k, v) in headers.iter().zip(record.iter()) {
                        let value = match v.parse::<u64>() {
                            Ok(n) if k == "id" => serde_json::json!(n),
                            _ => serde_json::json!(v),
                        };
                        row.insert(k.to_string(), value);
                    }
                    serde_json::Value::Object(row)
                })
                .collect()
        }
        other => panic!("no such format {other}"),
    }
}

fn check_rows(format: &str, body: &[u8], rows: usize) {
    let got = rows_of(format, body);
    assert_eq!(got.len(), rows, "{format}: rows");
    for (n, row) in got.iter().enumerate() {
        assert_eq!(row, &expected_row(n + 1), "{format}: row {}", n + 1);
    }
}

#[test]
fn curl_downloads_large_tables_whole_in_every_representation_and_encoding() {
    if !have("curl", "--version") {
        return;
    }
    let encodings = curl_encodings();
    let (s, data) = server_with(BIG);
    let dir = data.path();
    for (path, format) in [
        ("/big", Some("json")),
        ("/big.csv", Some("csv")),
        ("/big.ndjson", Some("ndjson")),
        ("/big.html?_limit=3000", None),
    ] {
        let plain = curl(&s, dir, path, &["-H", "Accept-Encoding: identity"]);
        assert_eq!(plain.status, 200);
        assert_eq!(plain.header("content-encoding"), None);
        match format {
            Some(format) => check_rows(format, &plain.body, BIG),
            None => assert!(plain.body.ends_with(b"</html>\n"), "{path}: the whole page"),
        }
        // curl's own choice (`--compressed`), then each encoding alone.
        let mut asks: Vec<Vec<&str>> = vec![vec!["--compressed"]];
        for encoding in &encodings {
            asks.push(vec!["--compressed", "-H", encoding_header(encoding)]);
        }
        for ask in asks {
            let got = curl(&s, dir, path, &ask);
            assert_eq!(got.status, 200, "{path} {ask:?}");
            let encoding = got.header("content-encoding");
            assert!(encoding.is_some(), "{path} {ask:?}: not compressed");
            assert_eq!(got.header("content-length"), None, "{path} {ask:?}");
            assert!(
                got.body == plain.body,
                "{path} {ask:?} ({encoding:?}): {} bytes decoded, {} plain",
                got.body.len(),
                plain.body.len()
            );
        }
    }
}

fn encoding_header(encoding: &str) -> &'static str {
    match encoding {
        "gzip" => "Accept-Encoding: gzip",
        "deflate" => "Accept-Encoding: deflate",
        "br" => "Accept-Encoding: br",
        "zstd" => "Accept-Encoding: zstd",
        other => panic!("no such encoding {other}"),
    }
}

#[test]
fn curl_follows_the_pages_download_link_of_a_large_table() {
    if !have("curl", "--version") {
        return;
    }
    let (s, data) = server_with(BIG);
    let dir = data.path();
    let page = curl(
        &s,
        dir,
        "/big",
        &["--compressed", "-H", &format!("Accept: {BROWSER_ACCEPT}")],
    );
    let page = String::from_utf8(page.body).unwrap();
    let href = page
        .split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .find(|href| href.starts_with("/big.csv"))
        .expect("a CSV download link")
        .replace("&amp;", "&");
    // What Chromium sends, with and without zstd.
    for accept_encoding in ["gzip, deflate, br, zstd", "gzip, deflate, br"] {
        let got = curl(
            &s,
            dir,
            &href,
            &[
                "--compressed",
                "-H",
                &format!("Accept: {BROWSER_ACCEPT}"),
                "-H",
                &format!("Accept-Encoding: {accept_encoding}"),
            ],
        );
        assert_eq!(got.status, 200);
        assert!(got.header("content-encoding").is_some());
        check_rows("csv", &got.body, BIG);
    }
}

#[test]
fn curl_uploads_csv_files_and_json() {
    if !have("curl", "--version") {
        return;
    }
    let s = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let file = dir.join("big.csv");
    std::fs::write(&file, table_csv(BIG, true)).unwrap();
    let file = file.to_str().unwrap();

    // `-T FILE`: a PUT of the whole table (4 MB: curl asks `Expect:
    // 100-continue` first).
    let put = curl(
        &s,
        dir,
        "/up",
        &["-T", file, "-H", "Content-Type: text/csv"],
    );
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));
    let got = curl(&s, dir, "/up.csv", &["--compressed"]);
    check_rows("csv", &got.body, BIG);
    // Again: the table is replaced.
    let put = curl(
        &s,
        dir,
        "/up",
        &["-T", file, "-H", "Content-Type: text/csv"],
    );
    assert_eq!(put.status, 200);

    // `-T -`: the body from stdin, sent chunked.
    let piped = table_csv(5_000, true);
    let put = curl_with_stdin(
        &s,
        dir,
        "/piped",
        &["-T", "-", "-H", "Content-Type: text/csv"],
        Some(piped.as_bytes()),
    );
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));
    check_rows(
        "json",
        &curl(&s, dir, "/piped", &["--compressed"]).body,
        5_000,
    );

    // `--data-binary @FILE`: a bulk POST (rows without ids get new ones).
    let more = dir.join("more.csv");
    std::fs::write(&more, table_csv(2_000, false)).unwrap();
    let post = curl(
        &s,
        dir,
        "/piped",
        &[
            "--data-binary",
            &format!("@{}", more.display()),
            "-H",
            "Content-Type: text/csv",
            "--compressed",
        ],
    );
    assert_eq!(post.status, 201, "{}", String::from_utf8_lossy(&post.body));
    let created: Vec<serde_json::Value> = serde_json::from_slice(&post.body).unwrap();
    assert_eq!(created.len(), 2_000);
    assert_eq!(created[0]["id"], 5_001);
    let all = rows_of(
        "ndjson",
        &curl(&s, dir, "/piped.ndjson", &["--compressed"]).body,
    );
    assert_eq!(all.len(), 7_000);
    assert_eq!(all[6_999]["id"], 7_000);
    assert_eq!(all[6_999]["name"], "name 2000, the \"5\"");

    // NDJSON from a file, and a JSON object with `-d`.
    let ndjson = dir.join("rows.ndjson");
    std::fs::write(&ndjson, "{\"name\":\"a\"}\n{\"name\":\"b\"}\n").unwrap();
    let post = curl(
        &s,
        dir,
        "/small",
        &[
            "--data-binary",
            &format!("@{}", ndjson.display()),
            "-H",
            "Content-Type: application/x-ndjson",
        ],
    );
    assert_eq!(post.status, 201);
    let post = curl(
        &s,
        dir,
        "/small",
        &[
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"name":"kim","age":30}"#,
        ],
    );
    assert_eq!(post.status, 201);
    assert_eq!(post.header("location").as_deref(), Some("/small/3"));
    let row: serde_json::Value = serde_json::from_slice(&post.body).unwrap();
    assert_eq!(row["name"], "kim");
}

#[test]
fn curl_conditional_requests_with_etags() {
    if !have("curl", "--version") {
        return;
    }
    let (s, data) = server_with(BIG);
    let dir = data.path();

    // A row: 304 for its tag; If-Match succeeds once, then 412.
    let row = curl(&s, dir, "/big/1", &[]);
    let tag = row.header("etag").expect("an ETag");
    let again = curl(&s, dir, "/big/1", &["-H", &format!("If-None-Match: {tag}")]);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let if_match = format!("If-Match: {tag}");
    let patch = [
        "-X",
        "PATCH",
        "-d",
        r#"{"note":"changed"}"#,
        "-H",
        &if_match,
        "-H",
        "Content-Type: application/json",
    ];
    assert_eq!(curl(&s, dir, "/big/1", &patch).status, 200);
    let stale = curl(&s, dir, "/big/1", &patch);
    assert_eq!(stale.status, 412);

    // The large table, compressed: its tag names the encoding; it answers
    // If-None-Match (304) and If-Match on a bulk POST.
    let table = curl(&s, dir, "/big.csv", &["--compressed"]);
    assert_eq!(table.status, 200);
    let tag = table.header("etag").expect("an ETag");
    let encoding = table.header("content-encoding").unwrap();
    assert!(tag.ends_with(&format!("-{encoding}\"")), "{tag}");
    let cached = curl(
        &s,
        dir,
        "/big.csv",
        &["--compressed", "-H", &format!("If-None-Match: {tag}")],
    );
    assert_eq!(cached.status, 304);
    let if_match = format!("If-Match: {tag}");
    let post = [
        "-d",
        r#"{"name":"new"}"#,
        "-H",
        &if_match,
        "-H",
        "Content-Type: application/json",
    ];
    assert_eq!(curl(&s, dir, "/big", &post).status, 201);
    assert_eq!(curl(&s, dir, "/big", &post).status, 412, "the tag is stale");
}

/// The Python side: the same downloads, uploads and conditions through
/// `urllib`, which decodes nothing itself (so the script does, with the
/// standard library's gzip and zlib) and raises on a body cut short.
const PYTHON: &str = r#"
import gzip, json, sys, urllib.error, urllib.request, zlib

base, rows = sys.argv[1], int(sys.argv[2])

def fetch(path, headers=None, data=None, method=None):
    request = urllib.request.Request(base + path, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()

def decode(headers, body):
    encoding = headers.get("Content-Encoding")
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    assert encoding is None, "unexpected Content-Encoding %r" % encoding
    return body

def expected(i):
    return {"id": i, "name": 'name %d, the "%d"' % (i, i % 7), "note": "<b>\u00fc %d</b>" % (i % 97)}

checks = 0
for path in ["/big", "/big.csv", "/big.ndjson", "/big.html?_limit=3000"]:
    status, headers, plain = fetch(path, {"Accept-Encoding": "identity"})
    assert status == 200, (path, status)
    # One at a time, then what `requests` sends by default.
    for asked, got_encoding in [("gzip", "gzip"), ("deflate", "deflate"), ("gzip, deflate", "gzip")]:
        status, headers, body = fetch(path, {"Accept-Encoding": asked})
        assert status == 200, (path, asked, status)
        assert headers.get("Content-Encoding") == got_encoding, (path, asked, headers.get("Content-Encoding"))
        assert headers.get("Content-Length") is None, (path, asked)
        decoded = decode(headers, body)
        assert decoded == plain, (path, asked, len(decoded), len(plain))
        checks += 1
    if path == "/big":
        got = json.loads(plain)
        assert len(got) == rows and got[0] == expected(1) and got[-1] == expected(rows), path
    if path == "/big.ndjson":
        lines = plain.decode().splitlines()
        assert len(lines) == rows and json.loads(lines[-1]) == expected(rows), path
    if path == "/big.csv":
        assert plain.count(b"\r\n") == rows + 1, path

# Uploads: a CSV table (PUT), a bulk CSV POST, a JSON object.
csv_body = "id,name,note\n" + "".join("%d,x%d,y\n" % (i, i) for i in range(1, 20001))
status, _, _ = fetch("/py", {"Content-Type": "text/csv"}, csv_body.encode(), "PUT")
assert status == 201, status
more = "name,note\n" + "".join("z%d,w\n" % i for i in range(1000))
status, headers, body = fetch("/py", {"Content-Type": "text/csv", "Accept-Encoding": "gzip"}, more.encode(), "POST")
assert status == 201, (status, body)
created = json.loads(decode(headers, body))
assert len(created) == 1000 and created[0]["id"] == 20001, created[:1]
status, headers, body = fetch("/py", {"Content-Type": "application/json"}, b'{"name":"kim"}', "POST")
assert status == 201 and headers["Location"] == "/py/21001", (status, headers["Location"])
status, headers, body = fetch("/py.csv", {"Accept-Encoding": "gzip"})
assert decode(headers, body).count(b"\r\n") == 21002

# Conditions: If-None-Match on the compressed table, If-Match on a row.
status, headers, body = fetch("/py", {"Accept-Encoding": "gzip"})
tag = headers["ETag"]
assert tag.endswith('-gzip"'), tag
status, _, _ = fetch("/py", {"Accept-Encoding": "gzip", "If-None-Match": tag})
assert status == 304, status
status, headers, _ = fetch("/py/1")
row_tag = headers["ETag"]
change = {"Content-Type": "application/json", "If-Match": row_tag}
status, _, _ = fetch("/py/1", change, b'{"note":"new"}', "PATCH")
assert status == 200, status
status, _, body = fetch("/py/1", change, b'{"note":"newer"}', "PATCH")
assert status == 412, status
assert json.loads(body)["status"] == 412

print("ok", checks)
"#;

#[test]
fn python_urllib_gets_whole_answers_and_uploads() {
    if !have("python3", "--version") {
        return;
    }
    let (s, _data) = server_with(BIG);
    let out = Command::new("python3")
        .args(["-c", PYTHON, &s.base(), &BIG.to_string()])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "the Python client failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok 12");
}
