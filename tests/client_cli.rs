//! The one-shot commands (`csvd get|head|post|put|patch|delete`), run as
//! the real binary against a real `csvd serve` on an ephemeral port.
//!
//! Output goes to a pipe here, so it is the bytes as received unless a
//! test asks for `--pretty`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;

use common::{Server, BIN};
use serde_json::{json, Value};

/// What one run of the client did.
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
    run_with_env(args, &[])
}

fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(BIN);
    command.args(args).env_remove("NO_COLOR");
    for (name, value) in env {
        command.env(name, value);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("run csvd");
    let run = Run {
        code: status.code().expect("exit code"),
        stdout: String::from_utf8(stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(stderr).expect("stderr is UTF-8"),
    };
    assert!(
        !run.stderr.contains("panicked") && !run.stderr.contains("RUST_BACKTRACE"),
        "csvd panicked: {}",
        run.stderr
    );
    run
}

fn url(server: &Server, path: &str) -> String {
    format!("{}{path}", server.base())
}

/// `:PORT/path`, the shorthand for localhost.
fn short(server: &Server, path: &str) -> String {
    format!(":{}{path}", server.addr.port())
}

#[test]
fn post_sends_fields_as_json_and_prints_the_created_row() {
    let server = Server::start();
    let out = run(&["post", &url(&server, "/people"), "name=kim", "age:=30"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json(), json!({"id": 1, "name": "kim", "age": 30}));
    assert_eq!(
        server.get("/people/1").json(),
        json!({"id": 1, "name": "kim", "age": 30})
    );
}

#[test]
fn every_method_with_the_shorthand_url() {
    let server = Server::start();
    let people = short(&server, "/people");
    let row = short(&server, "/people/7");

    let put = run(&["put", &row, "name=lee", "--check-status"]);
    assert_eq!(put.code, 0, "{}", put.stderr);
    assert_eq!(put.json()["name"], "lee");

    let patch = run(&["patch", &row, "age:=41", "--check-status"]);
    assert_eq!(patch.code, 0, "{}", patch.stderr);
    assert_eq!(patch.json(), json!({"id": 7, "name": "lee", "age": 41}));

    let get = run(&["get", &people, "--check-status"]);
    assert_eq!(get.json(), json!([{"id": 7, "name": "lee", "age": 41}]));

    let head = run(&["head", &row, "--check-status"]);
    assert_eq!((head.code, head.stdout.as_str()), (0, ""));

    let delete = run(&["delete", &row, "--check-status"]);
    assert_eq!((delete.code, delete.stdout.as_str()), (0, ""));
    assert_eq!(server.get("/people/7").status, 404);
}

#[test]
fn query_items_filter() {
    let server = Server::start();
    server.post_json("/people", r#"{"name":"kim","city":"Seoul"}"#);
    server.post_json("/people", r#"{"name":"lee","city":"Busan"}"#);
    let out = run(&[
        "get",
        &url(&server, "/people"),
        "city==Busan",
        "q==kim lee",
        "-v",
    ]);
    assert!(
        out.stdout
            .starts_with("GET /people?city=Busan&q=kim+lee HTTP/1.1\n"),
        "{}",
        out.stdout
    );
    assert_eq!(out.code, 0);
}

#[test]
fn header_items_set_and_remove_headers() {
    let server = Server::start();
    server.post_json("/people", r#"{"name":"kim"}"#);
    let out = run(&["get", &url(&server, "/people"), "Accept:text/csv"]);
    assert_eq!(out.stdout.replace("\r\n", "\n"), "id,name\n1,kim\n");

    let verbose = run(&[
        "get",
        &url(&server, "/people"),
        "X-Note:hello there",
        "User-Agent:",
        "X-Empty;",
        "-v",
    ]);
    assert!(
        verbose.stdout.contains("\nX-Note: hello there\n"),
        "{}",
        verbose.stdout
    );
    assert!(
        verbose.stdout.contains("\nX-Empty: \n"),
        "{}",
        verbose.stdout
    );
    assert!(!verbose.stdout.contains("User-Agent"), "{}", verbose.stdout);
}

#[test]
fn form_and_csv_bodies() {
    let server = Server::start();
    let form = run(&[
        "post",
        &url(&server, "/people"),
        "--form",
        "name=kim lee",
        "city=a&b",
    ]);
    assert_eq!(form.code, 0, "{}", form.stderr);
    assert_eq!(
        server.get("/people/1").json(),
        json!({"id": 1, "name": "kim lee", "city": "a&b"})
    );

    let csv = run(&[
        "post",
        &url(&server, "/people"),
        "--csv",
        "name=park, j",
        "age:=30",
        "-v",
    ]);
    assert_eq!(csv.code, 0, "{}", csv.stderr);
    assert!(
        csv.stdout.contains("Content-Type: text/csv\n"),
        "{}",
        csv.stdout
    );
    assert!(
        csv.stdout.contains("name,age\n\"park, j\",30\n"),
        "{}",
        csv.stdout
    );
    assert_eq!(server.get("/people/2").json()["name"], "park, j");

    let table = run(&["get", &url(&server, "/people"), "--csv"]);
    assert!(
        table.stdout.starts_with("id,name,city,age\r\n"),
        "{}",
        table.stdout
    );
}

#[test]
fn fields_from_files_and_bodies_from_files() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let bio = dir.path().join("bio.txt");
    std::fs::write(&bio, "line one, \"quoted\"\nline two ü\n").unwrap();
    let tags = dir.path().join("tags.json");
    std::fs::write(&tags, "true\n").unwrap();
    let out = run(&[
        "post",
        &url(&server, "/people"),
        "name=kim",
        &format!("bio=@{}", bio.display()),
        &format!("ok:=@{}", tags.display()),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let row = server.get("/people/1").json();
    assert_eq!(row["bio"], "line one, \"quoted\"\nline two ü\n");
    assert_eq!(row["ok"], true);

    let csv = dir.path().join("pets.csv");
    std::fs::write(&csv, "name,kind\nrex,dog\ntom,cat\n").unwrap();
    let bulk = run(&[
        "post",
        &url(&server, "/pets"),
        &format!("@{}", csv.display()),
    ]);
    assert_eq!(bulk.code, 0, "{}", bulk.stderr);
    assert_eq!(
        server.get("/pets").json(),
        json!([{"id": 1, "name": "rex", "kind": "dog"}, {"id": 2, "name": "tom", "kind": "cat"}])
    );
}

#[test]
fn a_body_from_standard_input() {
    let server = Server::start();
    for (input, flag) in [
        (&b"{\"name\":\"kim\"}"[..], None),
        (b"name,age\nlee,30\n", Some("--csv")),
        (b"name:park\n", None),
    ] {
        let mut command = Command::new(BIN);
        command
            .args(["post", &url(&server, "/people"), "@-", "--check-status"])
            .args(flag)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = command.spawn().unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{input:?}");
    }
    let names: Vec<Value> = server
        .get("/people")
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["name"].clone())
        .collect();
    assert_eq!(names, [json!("kim"), json!("lee"), json!("park")]);
}

#[test]
fn a_large_csv_upload_streams_from_disk() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.csv");
    let mut csv = String::from("name,note\n");
    for n in 0..40_000 {
        csv.push_str(&format!("person {n},\"a note, with a comma\"\n"));
    }
    std::fs::write(&path, &csv).unwrap();
    assert!(csv.len() > 1024 * 1024);
    let out = run(&[
        "post",
        &url(&server, "/big"),
        &format!("@{}", path.display()),
        "-v",
        "--check-status",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains(&format!("Content-Length: {}\n", csv.len())),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("Content-Type: text/csv\n"));
    assert!(out
        .stdout
        .contains(&format!("[{} bytes streamed from", csv.len())));
    let total = server.get("/big?_limit=1");
    assert_eq!(total.header("x-total-count"), Some("40000"));
}

/// The peak resident memory of `csvd ARGS` in KiB, from GNU time (Debian's
/// `time` package); `None`, loudly, when it is not installed (CI installs it
/// and fails instead).
fn peak_rss_kib(args: &[&str]) -> Option<(u64, Run)> {
    let time = std::path::Path::new("/usr/bin/time");
    if !time.exists() {
        assert!(
            std::env::var("CI").is_err(),
            "/usr/bin/time is needed to measure the client's memory"
        );
        eprintln!("SKIPPING the client's memory check: /usr/bin/time is not installed");
        return None;
    }
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut command = vec!["-v", "-o", report.path().to_str().unwrap(), BIN];
    command.extend_from_slice(args);
    let output = Command::new(time)
        .args(&command)
        .output()
        .expect("run time");
    let run = Run {
        code: output.status.code().expect("exit code"),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    };
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let report = std::fs::read_to_string(report.path()).unwrap();
    let kib = report
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("Maximum resident set size (kbytes):")
        })
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak memory in {report}"));
    Some((kib, run))
}

#[test]
fn a_bulk_import_from_a_file_is_streamed_minimal_and_summed_up() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bulk.csv");
    let rows = 140_000;
    let mut csv = String::from("name,n,note\n");
    for n in 0..rows {
        csv.push_str(&format!(
            "person {n},{n},\"a note about {n}, on\ntwo lines and padded out to be long\"\n"
        ));
    }
    std::fs::write(&path, &csv).unwrap();
    assert!(csv.len() > 10 * 1024 * 1024, "{}", csv.len());
    let small = dir.path().join("small.csv");
    std::fs::write(&small, "name,n,note\nkim,1,hi\n").unwrap();

    let body = format!("@{}", path.display());
    let args = [
        "post",
        &url(&server, "/bulk"),
        &body,
        "--print",
        "Hhb",
        "--check-status",
    ];
    let (out, memory) = match peak_rss_kib(&args) {
        Some((big, out)) => {
            let small_body = format!("@{}", small.display());
            let (tiny, small_out) =
                peak_rss_kib(&["post", &url(&server, "/small"), &small_body]).unwrap();
            assert_eq!(small_out.code, 0, "{}", small_out.stderr);
            (out, Some((tiny, big)))
        }
        None => (run(&args), None),
    };
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Asked for a minimal answer, and got one: no rows echoed back.
    assert!(
        out.stdout.contains("Prefer: return=minimal\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("Content-Length: {}\n", csv.len())),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("HTTP/1.1 201"), "{}", out.stdout);
    assert!(
        out.stdout
            .to_ascii_lowercase()
            .contains("preference-applied: return=minimal\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.len() < 2000, "{}", out.stdout);
    // One summary line: rows counted while streaming (a quoted line
    // break is no row), bytes, time and rate.
    let summary = out
        .stderr
        .lines()
        .find(|line| line.starts_with("csvd: sent "))
        .unwrap_or_else(|| panic!("no summary in {:?}", out.stderr));
    assert!(
        summary.contains(&format!("sent {rows} rows, ")),
        "{summary}"
    );
    assert!(
        summary.contains(" MiB in ") && summary.ends_with("/s)"),
        "{summary}"
    );

    // Everything arrived, cell for cell.
    let back = server.get_with("/bulk", &[("Accept", "text/csv")]);
    assert_eq!(back.status, 200);
    let mut reader = csv::Reader::from_reader(&back.body[..]);
    assert_eq!(
        reader.headers().unwrap(),
        &csv::StringRecord::from(vec!["id", "name", "n", "note"])
    );
    let mut count = 0;
    for (n, record) in reader.records().enumerate() {
        let record = record.unwrap();
        let expected = [
            (n + 1).to_string(),
            format!("person {n}"),
            n.to_string(),
            format!("a note about {n}, on\ntwo lines and padded out to be long"),
        ];
        assert_eq!(record.iter().collect::<Vec<_>>(), expected);
        count += 1;
    }
    assert_eq!(count, rows);

    // Streamed: the client grows by far less than the file it sent.
    if let Some((tiny, big)) = memory {
        eprintln!("client peak memory: {big} KiB (tiny upload: {tiny} KiB)");
        let file_kib = csv.len() as u64 / 1024;
        assert!(
            big < tiny + file_kib / 2,
            "the client peaked at {big} KiB sending {file_kib} KiB (a tiny file: {tiny} KiB)"
        );
    }

    // Quiet means no summary; a Prefer of one's own wins.
    let quiet = run(&[
        "post",
        &url(&server, "/small2"),
        &format!("@{}", small.display()),
        "-q",
    ]);
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    assert_eq!(quiet.stderr, "");
    let full = run(&[
        "post",
        &url(&server, "/small3"),
        &format!("@{}", small.display()),
        "Prefer:return=representation",
    ]);
    assert_eq!(full.code, 0, "{}", full.stderr);
    assert_eq!(full.json()[0]["name"], "kim");
    assert!(
        full.stderr.contains("csvd: sent 1 row, 21 B in "),
        "{}",
        full.stderr
    );
    // A refused upload gets no summary.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"name\":").unwrap();
    let refused = run(&[
        "post",
        &url(&server, "/small4"),
        &format!("@{}", bad.display()),
    ]);
    assert_eq!(refused.code, 0, "{}", refused.stderr);
    assert!(refused.stdout.contains("400"), "{}", refused.stdout);
    assert!(!refused.stderr.contains("csvd: sent"), "{}", refused.stderr);
}

#[test]
fn a_terminal_sees_the_upload_progress_then_the_summary() {
    use rexpect::process::wait::WaitStatus;
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.csv");
    let mut csv = String::from("name,note\n");
    for n in 0..40_000 {
        csv.push_str(&format!("person {n},a note that takes some room\n"));
    }
    std::fs::write(&path, &csv).unwrap();
    assert!(csv.len() > 1024 * 1024);
    let mut command = Command::new(BIN);
    command
        .args([
            "post",
            &url(&server, "/big"),
            &format!("@{}", path.display()),
        ])
        .env("NO_COLOR", "1")
        .env("TERM", "xterm");
    let mut client = rexpect::session::spawn_command(command, Some(15_000)).unwrap();
    client.exp_string("uploading big.csv").unwrap();
    client.exp_string("HTTP/1.1 201 Created").unwrap();
    client.exp_string("csvd: sent 40000 rows, ").unwrap();
    client.exp_eof().unwrap();
    assert!(matches!(
        client.process.wait().unwrap(),
        WaitStatus::Exited(_, 0)
    ));
    let total = server.get("/big?_limit=1");
    assert_eq!(total.header("x-total-count"), Some("40000"));
}

#[test]
fn verbose_prints_the_request_as_sent_and_the_response_as_received() {
    let server = Server::start();
    let out = run(&["post", &url(&server, "/people"), "name=kim", "-v"]);
    let expected_request = format!(
        "POST /people HTTP/1.1\nHost: {}\nUser-Agent: csvd/{}\nAccept: application/json, */*;q=0.5\n\
         Accept-Encoding: gzip, deflate, br\nContent-Type: application/json\nContent-Length: 14\n\n\
         {{\"name\":\"kim\"}}\n\n",
        server.addr,
        env!("CARGO_PKG_VERSION")
    );
    assert!(out.stdout.starts_with(&expected_request), "{}", out.stdout);
    let response = &out.stdout[expected_request.len()..];
    assert!(response.starts_with("HTTP/1.1 201 Created\n"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("\nlocation: /people/1\n"),
        "{response}"
    );
    assert!(
        response
            .trim_end()
            .ends_with("\n\n{\"id\":1,\"name\":\"kim\"}"),
        "{response}"
    );
}

/// The text without the ANSI colour escapes around it.
fn without_colours(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("\x1b[") {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let end = after.find('m').map_or(after.len(), |end| end + 1);
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn verbose_on_a_terminal_shows_the_request_body_as_sent() {
    for pretty in ["format", "all"] {
        let server = Server::start();
        let out = run(&[
            "post",
            &url(&server, "/people"),
            "name=kim",
            "age:=30",
            "-v",
            &format!("--pretty={pretty}"),
        ]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let plain = without_colours(&out.stdout);
        // The 23 bytes Content-Length counts, as they went on the wire.
        assert!(
            plain.contains(
                "\nContent-Length: 23\n\n{\"name\":\"kim\",\"age\":30}\n\nHTTP/1.1 201 Created\n"
            ),
            "--pretty={pretty}: {plain}"
        );
        // The answer is still formatted for reading.
        assert!(
            plain.ends_with("{\n    \"id\": 1,\n    \"name\": \"kim\",\n    \"age\": 30\n}"),
            "--pretty={pretty}: {plain}"
        );
    }
}

#[test]
fn print_selects_what_is_shown() {
    let server = Server::start();
    server.post_json("/people", r#"{"name":"kim"}"#);
    let people = url(&server, "/people/1");

    let headers = run(&["get", &people, "-h"]);
    assert!(
        headers.stdout.starts_with("HTTP/1.1 200 OK\n"),
        "{}",
        headers.stdout
    );
    assert!(!headers.stdout.contains("kim"));

    let body = run(&["get", &people, "-b"]);
    assert_eq!(body.stdout.trim_end(), r#"{"id":1,"name":"kim"}"#);

    let both = run(&["get", &people, "--print", "hb"]);
    assert!(both.stdout.starts_with("HTTP/1.1 200 OK\n"));
    assert!(
        both.stdout
            .trim_end()
            .ends_with("\n\n{\"id\":1,\"name\":\"kim\"}"),
        "{}",
        both.stdout
    );

    let request_only = run(&["get", &people, "--print=H"]);
    assert!(request_only.stdout.starts_with("GET /people/1 HTTP/1.1\n"));
    assert!(!request_only.stdout.contains("200 OK"));

    let quiet = run(&["get", &people, "-q"]);
    assert_eq!((quiet.code, quiet.stdout.as_str()), (0, ""));

    let wrong = run(&["get", &people, "--print=x"]);
    assert_eq!(wrong.code, 2);
}

#[test]
fn pretty_output_is_asked_for_or_left_out() {
    let server = Server::start();
    server.post_json("/people", r#"{"name":"kim","age":30}"#);
    let people = url(&server, "/people");

    let format = run(&["get", &people, "--pretty=format"]);
    assert_eq!(
        format.stdout,
        "[\n    {\n        \"id\": 1,\n        \"name\": \"kim\",\n        \"age\": 30\n    }\n]"
    );

    let colours = run(&["get", &people, "--pretty=all"]);
    assert!(colours.stdout.contains("\x1b["), "{}", colours.stdout);

    let table = run(&["get", &url(&server, "/people.csv"), "--pretty=format"]);
    assert_eq!(
        table.stdout,
        "id  name  age\n──  ────  ───\n 1  kim    30\n"
    );

    let piped = run_with_env(&["get", &people, "-v"], &[("NO_COLOR", "1")]);
    assert!(!piped.stdout.contains('\x1b'));
}

#[test]
fn check_status_exits_with_the_status_class() {
    let server = Server::start();
    let missing = run(&["get", &url(&server, "/nobody/1"), "--check-status"]);
    assert_eq!(missing.code, 4);
    assert_eq!(missing.stderr, "csvd: warning: HTTP 404 Not Found\n");
    assert!(
        missing.stdout.contains("\"status\":404"),
        "{}",
        missing.stdout
    );

    let without = run(&["get", &url(&server, "/nobody/1")]);
    assert_eq!((without.code, without.stderr.as_str()), (0, ""));

    server.post_json("/people", r#"{"name":"kim"}"#);
    let etag = server.get("/people/1").header("etag").unwrap().to_string();
    let not_modified = run(&[
        "get",
        &url(&server, "/people/1"),
        &format!("If-None-Match:{etag}"),
        "--check-status",
    ]);
    assert_eq!(not_modified.code, 3, "{}", not_modified.stderr);
    assert_eq!(
        not_modified.stderr,
        "csvd: warning: HTTP 304 Not Modified\n"
    );

    let (port, _server) =
        canned_server(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
    let unavailable = run(&["get", &format!("127.0.0.1:{port}/"), "--check-status"]);
    assert_eq!(unavailable.code, 5);
    assert!(unavailable.stderr.contains("HTTP 503 Service Unavailable"));
}

/// Answers every connection with the same bytes, then closes it.
fn canned_server(answer: &'static [u8]) -> (u16, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            read_head(&mut stream);
            let _ = stream.write_all(answer);
        }
    });
    (port, handle)
}

/// Reads a request head (this test server's requests have no body).
fn read_head(stream: &mut std::net::TcpStream) -> String {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            return head;
        }
        head.push_str(&line);
    }
}

#[test]
fn streamed_bodies_print_as_they_arrive() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (seen_first, wait_for_first) = mpsc::channel::<()>();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        read_head(&mut stream);
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n{\"n\":1}\n\r\n")
            .unwrap();
        // The rest is sent only once the client has printed the first line.
        wait_for_first.recv().unwrap();
        stream.write_all(b"8\r\n{\"n\":2}\n\r\n0\r\n\r\n").unwrap();
    });
    let mut child = Command::new(BIN)
        .args(["get", &format!("127.0.0.1:{port}/stream")])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert_eq!(first, "{\"n\":1}\n");
    seen_first.send(()).unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "{\"n\":2}\n");
    assert!(child.wait().unwrap().success());
    server.join().unwrap();
}

#[test]
fn errors_are_one_line_and_exit_1() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.csv");
    let closed_port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["get".into(), format!("127.0.0.1:{closed_port}/")],
            "connection refused by 127.0.0.1:",
        ),
        (
            vec!["get".into(), "ftp://127.0.0.1/".into()],
            "unsupported scheme `ftp` (only http:// and https:// are)",
        ),
        (
            vec!["get".into(), "127.0.0.1:99999/".into()],
            "port `99999` is not a number",
        ),
        (
            vec!["post".into(), url(&server, "/people"), "kim".into()],
            "invalid request item `kim`",
        ),
        (
            vec!["post".into(), url(&server, "/people"), "age:=3x".into()],
            "`3x` is not JSON",
        ),
        (
            vec![
                "post".into(),
                url(&server, "/people"),
                format!("@{}", missing.display()),
            ],
            "missing.csv`: No such file or directory",
        ),
        (
            vec![
                "post".into(),
                url(&server, "/people"),
                format!("bio=@{}", missing.display()),
            ],
            "missing.csv`: No such file or directory",
        ),
    ];
    for (args, message) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&args);
        assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
        assert!(out.stderr.starts_with("csvd: "), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
    }
    assert_eq!(server.get("/people").status, 404, "no request was sent");
}

#[test]
fn a_silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (done, wait) = mpsc::channel::<()>();
    let server = thread::spawn(move || {
        // Accept, read the request, say nothing until the client has gone.
        let (mut stream, _) = listener.accept().unwrap();
        read_head(&mut stream);
        let _ = wait.recv();
    });
    let out = run(&["get", &format!("127.0.0.1:{port}/"), "--timeout", "0.3"]);
    done.send(()).unwrap();
    server.join().unwrap();
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "csvd: timed out after 0.3 s waiting for the response\n"
    );
}

#[test]
fn a_silent_tls_handshake_times_out_with_exit_2() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (done, wait) = mpsc::channel::<()>();
    let server = thread::spawn(move || {
        // Accept, answer no ClientHello, until the client has gone.
        let (_stream, _) = listener.accept().unwrap();
        let _ = wait.recv();
    });
    let target = format!("https://127.0.0.1:{port}/");
    let out = run(&["get", &target, "--timeout", "0.3", "-k"]);
    done.send(()).unwrap();
    server.join().unwrap();
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .ends_with("csvd: timed out after 0.3 s in the TLS handshake\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn usage_errors_exit_2_and_help_explains() {
    assert_eq!(run(&["get"]).code, 2);
    assert_eq!(run(&["get", "/", "--timeout", "soon"]).code, 2);
    assert_eq!(run(&["post", "/", "--form", "--csv"]).code, 2);
    let help = run(&["post", "--help"]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("name=kim"));
    assert!(help.stdout.contains("--check-status"));
}

/// Rows enough for csvd to compress its answer.
fn people(server: &Server, count: usize) -> Value {
    let rows: Vec<Value> = (1..=count)
        .map(|n| json!({"name": format!("person {n}"), "city": "Seoul"}))
        .collect();
    server.post_json("/people", &Value::Array(rows).to_string());
    server.get("/people").json()
}

#[test]
fn compressed_answers_are_asked_for_and_decoded() {
    let server = Server::start();
    let rows = people(&server, 50);
    let out = run(&["get", &url(&server, "/people"), "--print=Hhb"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (heads, body) = out.stdout.rsplit_once("\n\n").unwrap();
    assert!(
        heads.contains("\nAccept-Encoding: gzip, deflate, br\n"),
        "{heads}"
    );
    // The head as received still says how the body came.
    let heads = heads.to_ascii_lowercase();
    assert!(
        heads.contains("\ncontent-encoding: gzip\n") || heads.contains("\ncontent-encoding: br\n"),
        "{heads}"
    );
    assert_eq!(serde_json::from_str::<Value>(body).unwrap(), rows);
}

#[test]
fn an_accept_encoding_of_ones_own_wins_and_is_still_decoded() {
    let server = Server::start();
    let rows = people(&server, 50);
    for coding in ["gzip", "br"] {
        let out = run(&[
            "get",
            &short(&server, "/people"),
            &format!("Accept-Encoding:{coding}"),
        ]);
        assert_eq!(out.code, 0, "{coding}: {}", out.stderr);
        assert_eq!(out.json(), rows, "{coding}");
    }
    for identity in ["Accept-Encoding:identity", "Accept-Encoding:"] {
        let out = run(&["get", &short(&server, "/people"), identity, "--print=Hh"]);
        let lower = out.stdout.to_ascii_lowercase();
        assert!(!lower.contains("content-encoding"), "{}", out.stdout);
        assert!(!lower.contains("gzip"), "{}", out.stdout);
    }
}

/// A body of `lines` compressed by `coding` in two pieces: the first can
/// be decoded on its own (the encoder was flushed after it).
fn compressed_in_two(coding: &str, first: &[u8], second: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (whole, split) = match coding {
        "gzip" => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(first).unwrap();
            encoder.flush().unwrap();
            let split = encoder.get_ref().len();
            encoder.write_all(second).unwrap();
            (encoder.finish().unwrap(), split)
        }
        "br" => {
            let mut encoder = brotli::CompressorWriter::new(Vec::new(), 4096, 5, 22);
            encoder.write_all(first).unwrap();
            encoder.flush().unwrap();
            let split = encoder.get_ref().len();
            encoder.write_all(second).unwrap();
            (encoder.into_inner(), split)
        }
        other => panic!("no encoder for {other}"),
    };
    (whole[..split].to_vec(), whole[split..].to_vec())
}

fn chunk(bytes: &[u8]) -> Vec<u8> {
    let mut chunk = format!("{:x}\r\n", bytes.len()).into_bytes();
    chunk.extend_from_slice(bytes);
    chunk.extend_from_slice(b"\r\n");
    chunk
}

#[test]
fn compressed_streams_are_decoded_as_they_arrive() {
    for coding in ["gzip", "br"] {
        let (first, rest) = compressed_in_two(coding, b"{\"n\":1}\n", b"{\"n\":2}\n");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (seen_first, wait_for_first) = mpsc::channel::<()>();
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nContent-Encoding: {coding}\r\n\
             Transfer-Encoding: chunked\r\n\r\n"
        );
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            read_head(&mut stream);
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(&chunk(&first)).unwrap();
            // The rest is sent only once the client has printed the first line.
            if wait_for_first.recv().is_ok() {
                stream.write_all(&chunk(&rest)).unwrap();
                stream.write_all(b"0\r\n\r\n").unwrap();
            }
        });
        let mut child = Command::new(BIN)
            .args(["get", &format!("127.0.0.1:{port}/stream")])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut first_line = [0; 8];
        stdout.read_exact(&mut first_line).unwrap();
        assert_eq!(&first_line, b"{\"n\":1}\n", "{coding}");
        seen_first.send(()).unwrap();
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "{\"n\":2}\n", "{coding}");
        assert!(child.wait().unwrap().success(), "{coding}");
        server.join().unwrap();
    }
}

/// Answers one request with `head` and then `body`.
fn answering(head: &str, body: &[u8]) -> (u16, thread::JoinHandle<()>) {
    let mut answer = head.as_bytes().to_vec();
    answer.extend_from_slice(body);
    let answer: &'static [u8] = Box::leak(answer.into_boxed_slice());
    canned_server(answer)
}

#[test]
fn a_body_that_does_not_decode_is_an_error() {
    let (port, _server) = answering(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\nContent-Length: 28\r\n\r\n",
        b"this is plain text, not gzip",
    );
    let out = run(&["get", &format!("127.0.0.1:{port}/")]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.starts_with(&format!(
            "csvd: 127.0.0.1:{port}: the body is not valid gzip"
        )),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn a_coding_csvd_cannot_decode_is_shown_as_received_with_a_warning() {
    let (port, _server) = answering(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: zstd\r\nContent-Length: 5\r\n\r\n",
        b"bytes",
    );
    let out = run(&["get", &format!("127.0.0.1:{port}/")]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "bytes");
    assert!(
        out.stderr
            .contains("warning: the body is encoded with `zstd`"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_empty_compressed_body_is_no_error() {
    let (port, _server) = answering(
        "HTTP/1.1 204 No Content\r\nContent-Encoding: gzip\r\n\r\n",
        b"",
    );
    let out = run(&["get", &format!("127.0.0.1:{port}/"), "--check-status"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{}", out.stderr);
}

#[test]
fn print_combines_request_and_response_parts() {
    let server = Server::start();
    let people = url(&server, "/people");
    let out = run(&["post", &people, "name=kim", "-p", "Bb"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("{\"name\":\"kim\"}\n\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("\"id\":1"), "{}", out.stdout);
    assert!(!out.stdout.contains("HTTP/1.1"), "{}", out.stdout);

    let heads = run(&["get", &people, "-p", "Hh"]);
    assert!(heads.stdout.starts_with("GET /people HTTP/1.1\n"));
    assert!(
        heads.stdout.contains("\n\nHTTP/1.1 200 OK\n"),
        "{}",
        heads.stdout
    );
    assert!(!heads.stdout.contains("kim"), "{}", heads.stdout);
}

#[test]
fn check_status_forgives_a_redirect_that_follow_did_not_take() {
    let answer = b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n";
    let (port, _server) = canned_server(answer);
    let target = format!("127.0.0.1:{port}/");
    let checked = run(&["get", &target, "--check-status"]);
    assert_eq!(checked.code, 3, "{}", checked.stderr);
    let (port, _server) = canned_server(answer);
    let target = format!("127.0.0.1:{port}/");
    let followed = run(&["get", &target, "--check-status", "--follow"]);
    assert_eq!((followed.code, followed.stderr.as_str()), (0, ""));
    // A download saved nothing from it: that is a failure still.
    let (port, _server) = canned_server(answer);
    let target = format!("127.0.0.1:{port}/");
    let downloaded = run(&["get", &target, "--download"]);
    assert_eq!(downloaded.code, 3, "{}", downloaded.stderr);
    assert_eq!(downloaded.stdout, "");
}

#[test]
fn check_status_warns_on_a_terminal_only_when_quiet() {
    use rexpect::process::wait::WaitStatus;
    let server = Server::start();
    for (quiet, warned) in [(false, false), (true, true)] {
        let mut command = Command::new(BIN);
        command
            .args(["get", &url(&server, "/nobody/1"), "--check-status"])
            .env("NO_COLOR", "1")
            .env("TERM", "xterm");
        if quiet {
            command.arg("-q");
        }
        let mut client = rexpect::session::spawn_command(command, Some(15_000)).unwrap();
        let seen = client.exp_eof().unwrap();
        assert!(matches!(
            client.process.wait().unwrap(),
            WaitStatus::Exited(_, 4)
        ));
        assert_eq!(
            seen.contains("csvd: warning: HTTP 404 Not Found"),
            warned,
            "{seen}"
        );
        assert_eq!(seen.contains("HTTP/1.1 404"), !quiet, "{seen}");
    }
}

#[test]
fn ignore_stdin_reads_nothing_from_standard_input() {
    let server = Server::start();
    let people = url(&server, "/people");
    let body = run(&["post", &people, "@-", "--ignore-stdin"]);
    assert_eq!(body.code, 1);
    assert!(
        body.stderr
            .contains("invalid request item `@-`: --ignore-stdin"),
        "{}",
        body.stderr
    );
    let password = run(&["get", &people, "-a", "kim", "-I"]);
    assert_eq!(password.code, 1);
    assert!(
        password.stderr.contains("--ignore-stdin forbids asking"),
        "{}",
        password.stderr
    );
    let fine = run(&["get", &people, "-a", "kim:pw", "-I", "-h"]);
    assert_eq!(fine.code, 0, "{}", fine.stderr);
}

/// A data directory holding `t.csv` with `rows` rows.
fn table_dir(rows: usize) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,name,note\n");
    for n in 1..=rows {
        csv.push_str(&format!("{n},person {n},a note that takes some room\n"));
    }
    std::fs::write(dir.path().join("t.csv"), &csv).unwrap();
    (dir, csv)
}

#[test]
fn output_writes_the_body_to_a_file_as_it_arrives() {
    let (data, _) = table_dir(300_000);
    let server = Server::start_in(data.path(), &[]);
    let expected = server.get("/t.csv").body;
    assert!(expected.len() > 12 * 1024 * 1024);
    let out_dir = tempfile::tempdir().unwrap();
    let file = out_dir.path().join("t.csv");
    let file_arg = file.to_str().unwrap();
    std::fs::write(&file, "old contents that are longer than nothing").unwrap();
    let out = run(&["get", &url(&server, "/t.csv"), "-o", file_arg]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "");
    assert!(
        std::fs::read(&file).unwrap() == expected,
        "the file is the table"
    );

    // Held whole, the body alone would take more than the margin.
    let small = out_dir.path().join("one.csv");
    let margin_kib = 8 * 1024;
    let one = url(&server, "/t.csv?_limit=1");
    if let (Some((big_kib, big)), Some((small_kib, _))) = (
        peak_rss_kib(&["get", &url(&server, "/t.csv"), "-o", file_arg]),
        peak_rss_kib(&["get", &one, "-o", small.to_str().unwrap()]),
    ) {
        assert_eq!(big.code, 0, "{}", big.stderr);
        assert!(
            big_kib < small_kib + margin_kib,
            "{big_kib} KiB for the table, {small_kib} KiB for one row"
        );
    }

    // `-o` is what stdout would have been: `-h` puts the head there.
    let head = run(&["get", &url(&server, "/t.csv"), "-h", "-o", file_arg]);
    assert_eq!((head.code, head.stdout.as_str()), (0, ""));
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.starts_with("HTTP/1.1 200 OK\n"), "{written}");
}

#[test]
fn download_to_a_redirected_stdout_writes_the_body_there() {
    let (data, _) = table_dir(3);
    let server = Server::start_in(data.path(), &[]);
    let expected = server.get("/t.csv").text();
    let out = run(&["get", &url(&server, "/t.csv"), "--download", "-h"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, expected);
    assert!(
        out.stderr.starts_with("HTTP/1.1 200 OK\n"),
        "{}",
        out.stderr
    );
    let saved = format!("\n\ncsvd: saved {} B to standard output", expected.len());
    assert!(out.stderr.contains(&saved), "{}", out.stderr);

    for flags in [&["-d", "-o"][..], &["-o"]] {
        let mut args = vec!["get", "/t.csv"];
        let target = url(&server, "/t.csv");
        args[1] = &target;
        args.extend_from_slice(flags);
        args.push("/nonexistent/dir/t.csv");
        let nowhere = run(&args);
        assert_eq!(nowhere.code, 1, "{flags:?}");
        assert_eq!(
            nowhere.stderr,
            "csvd: cannot write `/nonexistent/dir/t.csv`: No such file or directory\n"
        );
    }

    let missing = run(&["get", &url(&server, "/nobody.csv"), "-d"]);
    assert_eq!(missing.code, 4);
    assert_eq!(missing.stdout, "");
    assert_eq!(missing.stderr, "csvd: warning: HTTP 404 Not Found\n");
}

/// `csvd ARGS` on a terminal, in `dir`; returns what it showed.
fn on_terminal(dir: &std::path::Path, args: &[&str], code: i32) -> String {
    use rexpect::process::wait::WaitStatus;
    let mut command = Command::new(BIN);
    command
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("TERM", "xterm");
    let mut client = rexpect::session::spawn_command(command, Some(15_000)).unwrap();
    let seen = client.exp_eof().unwrap();
    let status = client.process.wait().unwrap();
    assert!(
        matches!(status, WaitStatus::Exited(_, got) if got == code),
        "{status:?}: {seen}"
    );
    seen
}

#[test]
fn download_names_the_file_after_the_url_and_never_overwrites() {
    let (data, _) = table_dir(3);
    let server = Server::start_in(data.path(), &[]);
    let expected = server.get("/t.csv").body;
    let here = tempfile::tempdir().unwrap();
    let target = url(&server, "/t.csv");
    let first = on_terminal(here.path(), &["get", &target, "-d"], 0);
    assert!(first.contains("HTTP/1.1 200 OK"), "{first}");
    let saved = format!("csvd: saved {} B to `t.csv`", expected.len());
    assert!(first.contains(&saved), "{first}");
    let second = on_terminal(here.path(), &["get", &target, "-d"], 0);
    assert!(second.contains("to `t.csv-1`"), "{second}");
    std::fs::write(here.path().join("t.csv"), "mine").unwrap();
    let third = on_terminal(here.path(), &["get", &target, "-d", "-q"], 0);
    assert_eq!(third, "");
    for name in ["t.csv-1", "t.csv-2"] {
        assert_eq!(std::fs::read(here.path().join(name)).unwrap(), expected);
    }
    assert_eq!(std::fs::read(here.path().join("t.csv")).unwrap(), b"mine");
    on_terminal(here.path(), &["get", &target, "-d", "--overwrite", "-q"], 0);
    assert_eq!(std::fs::read(here.path().join("t.csv")).unwrap(), expected);

    // A name without an extension gets its content type's; `/` is `index`.
    let json = on_terminal(here.path(), &["get", &url(&server, "/t"), "-d"], 0);
    assert!(json.contains("to `t.json`"), "{json}");
    let index = on_terminal(here.path(), &["get", &url(&server, "/"), "-d", "-q"], 0);
    assert_eq!(index, "");
    assert!(here.path().join("index.json").exists() || here.path().join("index.html").exists());

    // Nothing is saved from an error.
    let missing = on_terminal(here.path(), &["get", &url(&server, "/none.csv"), "-d"], 4);
    assert!(missing.contains("HTTP/1.1 404"), "{missing}");
    assert!(!here.path().join("none.csv").exists());
}

#[test]
fn download_flags_need_their_companions() {
    assert_eq!(run(&["get", "/", "-c", "-o", "x"]).code, 2);
    assert_eq!(run(&["get", "/", "-d", "-c"]).code, 2);
    assert_eq!(run(&["get", "/", "--overwrite"]).code, 2);
    assert_eq!(run(&["get", "/", "-d", "--offline"]).code, 2);
}

/// Sends `Content-Type: TYPE` (from `?type=`), a first line, then waits
/// until the test creates the file named by the path (at most 20 s) and
/// sends a last line saying whether it saw the file or gave up.
const STREAM_HANDLER: &str = r#"
import os, sys, time, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIR = sys.argv[1] if len(sys.argv) > 1 else os.environ["SIGNAL_DIR"]

class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        kind = urllib.parse.parse_qs(url.query)["type"][0]
        signal = os.path.join(DIR, url.path.strip("/"))
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.end_headers()
        prefix = b"data: " if kind == "text/event-stream" else b""
        self.wfile.write(prefix + b'{"n":1}\n')
        self.wfile.flush()
        deadline = time.monotonic() + 20
        while not os.path.exists(signal) and time.monotonic() < deadline:
            time.sleep(0.01)
        seen = b"signal" if os.path.exists(signal) else b"timeout"
        self.wfile.write(prefix + b'{"seen":"' + seen + b'"}\n')
        self.wfile.flush()

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

#[test]
fn stream_prints_each_line_before_the_body_ends() {
    let signals = tempfile::tempdir().unwrap();
    let handler = STREAM_HANDLER.replace(
        "sys.argv[1] if len(sys.argv) > 1 else os.environ[\"SIGNAL_DIR\"]",
        &format!("{:?}", signals.path().display().to_string()),
    );
    let Some(python) = common::python::Python::start(&handler, "streaming test") else {
        return;
    };
    // (content type, options, what the first line looks like once printed)
    let cases: [(&str, &[&str], &str); 5] = [
        ("application/json", &["--stream"], "\"n\": 1"),
        ("application/json", &["-S", "--pretty", "none"], "{\"n\":1}"),
        ("application/x-ndjson", &[], "{\"n\":1}"),
        ("text/event-stream", &[], "data: {\"n\":1}"),
        // A CSV body, else gathered whole to be aligned as a table.
        ("text/csv", &["--stream"], "\"n\": 1"),
    ];
    for (number, (kind, options, first)) in cases.iter().enumerate() {
        let what = format!("{kind} {options:?}");
        let name = format!("s{number}");
        let mut child = Command::new(BIN)
            .args(["get", &python.url(&format!("/{name}?type={kind}"))])
            .args(["--pretty", "format"])
            .args(*options)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut seen = String::new();
        while !seen.contains(first) {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap() == 0 {
                break;
            }
            seen.push_str(&line);
        }
        std::fs::write(signals.path().join(&name), "").unwrap();
        stdout.read_to_string(&mut seen).unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "{what}: {status}");
        assert!(seen.contains(first), "{what}: {seen:?}");
        assert!(
            seen.contains("signal\"") && !seen.contains("timeout"),
            "{what}: the first line came only with the last: {seen:?}"
        );
    }
}

#[test]
fn sorted_orders_headers_and_json_keys() {
    let body = br#"{"b":1,"a":{"z":[{"y":2,"x":12345678901234567890}],"c":null}}"#;
    let head = format!(
        "HTTP/1.1 200 OK\r\nX-Zeta: 1\r\nContent-Type: application/json\r\nx-alpha: 2\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let printed = |options: &[&str]| {
        let (port, _server) = answering(&head, body);
        let mut args = vec!["get", "--print", "hb", "--pretty", "format"];
        args.extend(options);
        let address = format!("127.0.0.1:{port}/");
        args.push(&address);
        let out = run(&args);
        assert_eq!(out.code, 0, "{options:?}: {}", out.stderr);
        out.stdout
    };
    let sorted = printed(&["--sorted"]);
    let expected = "http/1.1 200 ok\ncontent-length: 61\ncontent-type: application/json\nx-alpha: 2\nx-zeta: 1\n\n{\n    \"a\": {\n        \"c\": null,\n        \"z\": [\n            {\n                \"x\": 12345678901234567890,\n                \"y\": 2\n            }\n        ]\n    },\n    \"b\": 1\n}";
    assert_eq!(body.len(), 61);
    assert_eq!(sorted.to_ascii_lowercase(), expected, "{sorted}");
    // --unsorted (the default) keeps the order received; the last one given wins.
    for options in [&[][..], &["--unsorted"], &["--sorted", "--unsorted"]] {
        let out = printed(options);
        assert!(out.contains("\"b\": 1,\n    \"a\""), "{options:?}: {out}");
        let zeta = out.to_ascii_lowercase().find("x-zeta").unwrap();
        let alpha = out.to_ascii_lowercase().find("x-alpha").unwrap();
        assert!(zeta < alpha, "{options:?}: {out}");
    }
    assert_eq!(
        printed(&["--unsorted", "--sorted"]).to_ascii_lowercase(),
        expected
    );
}

#[test]
fn style_chooses_the_colours() {
    let body = br#"{"k":1}"#;
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let coloured = |style: &str| {
        let (port, _server) = answering(&head, body);
        let out = run(&[
            "get",
            "--pretty",
            "colors",
            "--style",
            style,
            &format!("127.0.0.1:{port}/"),
        ]);
        assert_eq!(out.code, 0, "{style}: {}", out.stderr);
        out.stdout
    };
    assert_eq!(
        coloured("auto"),
        "{\x1b[1;34m\"k\"\x1b[0m:\x1b[36m1\x1b[0m}"
    );
    assert_eq!(coloured("mono"), "{\x1b[1m\"k\"\x1b[0m:\x1b[0m1\x1b[0m}");
    assert_eq!(
        coloured("solarized"),
        "{\x1b[38;5;33m\"k\"\x1b[0m:\x1b[38;5;125m1\x1b[0m}"
    );
    let out = run(&["get", "--style", "neon", "127.0.0.1:9/"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("bright"), "{}", out.stderr);
}

#[test]
fn a_server_flag_given_twice_is_refused_while_client_flags_override() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", dir.path().to_str().unwrap()])
        .args(["--bind", "127.0.0.1:0", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run csvd serve");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`csvd serve --bind a --bind b` started serving instead of refusing");
        }
        thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("'--bind <BIND>' cannot be used multiple times"),
        "{stderr}"
    );
    // The request commands still take the later of two values.
    let out = run(&["get", "/", "--timeout", "1", "--timeout", "2", "--offline"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = run(&["get", "/", "-p", "b", "-p", "H", "--offline"]);
    assert!(
        out.stdout.starts_with("GET / HTTP/1.1\r\n"),
        "{}",
        out.stdout
    );
}

/// Takes one request per connection and sends each back (its head and its
/// body, chunked bodies decoded) on the channel; answers 200.
fn sink() -> (u16, mpsc::Receiver<(String, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(30)))
                .unwrap();
            let mut writer = stream.try_clone().unwrap();
            let mut reader = BufReader::new(stream);
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let lower = head.to_ascii_lowercase();
            let mut body = Vec::new();
            if lower.contains("transfer-encoding: chunked") {
                loop {
                    let mut size = String::new();
                    reader.read_line(&mut size).unwrap();
                    let size = usize::from_str_radix(size.trim(), 16).unwrap();
                    let mut chunk = vec![0; size + 2];
                    reader.read_exact(&mut chunk).unwrap();
                    if size == 0 {
                        break;
                    }
                    body.extend_from_slice(&chunk[..size]);
                }
            } else if let Some(length) = lower
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
            {
                body = vec![0; length.trim().parse().unwrap()];
                reader.read_exact(&mut body).unwrap();
            }
            let _ = writer
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            let _ = tx.send((head, body));
        }
    });
    (port, rx)
}

/// The content of the part named `name` of a multipart body.
fn part<'a>(body: &'a [u8], name: &str) -> &'a [u8] {
    let marker = format!("name=\"{name}\"");
    let at = body
        .windows(marker.len())
        .position(|window| window == marker.as_bytes())
        .unwrap_or_else(|| panic!("no part {name}"));
    let start = at
        + body[at..]
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .unwrap()
        + 4;
    let boundary_line = body.split(|byte| *byte == b'\r').next().unwrap();
    let mut end_marker = b"\r\n".to_vec();
    end_marker.extend_from_slice(boundary_line);
    let end = start
        + body[start..]
            .windows(end_marker.len())
            .position(|window| window == end_marker)
            .unwrap();
    &body[start..end]
}

#[test]
fn multipart_file_parts_are_streamed_with_their_length() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    let size = 40 * 1024 * 1024;
    let mut random = common::Lcg(7);
    let bytes: Vec<u8> = (0..size).map(|_| random.next(256) as u8).collect();
    std::fs::write(&big, &bytes).unwrap();
    let small = dir.path().join("small.bin");
    std::fs::write(&small, b"tiny").unwrap();
    let (port, received) = sink();
    let url = format!("http://127.0.0.1:{port}/upload");
    let upload = |file: &std::path::Path| {
        let photo = format!("photo@{}", file.display());
        let args = [
            "post",
            url.as_str(),
            "-f",
            "name=kim",
            photo.as_str(),
            "--timeout",
            "30",
        ];
        let measured = peak_rss_kib(&args);
        let run = match &measured {
            Some((_, run)) => Run {
                code: run.code,
                stdout: run.stdout.clone(),
                stderr: run.stderr.clone(),
            },
            None => run(&args),
        };
        assert_eq!(run.code, 0, "{}", run.stderr);
        let got = received
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the sink got the upload");
        (measured.map(|(kib, _)| kib), got)
    };
    let (tiny, _) = upload(&small);
    let (peak, (head, body)) = upload(&big);
    // The length was known up front: no chunks.
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains(&format!("content-length: {}\r\n", body.len())),
        "{head}"
    );
    assert!(!lower.contains("transfer-encoding"), "{head}");
    assert_eq!(part(&body, "name"), b"kim");
    let sent = part(&body, "photo");
    assert_eq!(sent.len(), bytes.len());
    assert_eq!(
        xxhash_rust::xxh3::xxh3_64(sent),
        xxhash_rust::xxh3::xxh3_64(&bytes)
    );
    assert!(
        body.windows(22).any(|w| w == b"filename=\"big.bin\"\r\nCo"),
        "the part names its file"
    );
    if let (Some(tiny), Some(peak)) = (tiny, peak) {
        eprintln!("client peak memory: {peak} KiB (tiny file part: {tiny} KiB)");
        let file_kib = size as u64 / 1024;
        assert!(
            peak < tiny + file_kib / 4,
            "the client peaked at {peak} KiB sending {file_kib} KiB (a tiny part: {tiny} KiB)"
        );
    }

    // A part from a pipe has no size to tell: the body goes chunked.
    let mut child = Command::new(BIN)
        .args(["post", &url, "-f", "photo@/dev/stdin", "--timeout", "30"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&bytes[..300_000])
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (head, body) = received
        .recv_timeout(std::time::Duration::from_secs(30))
        .unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    assert_eq!(part(&body, "photo"), &bytes[..300_000]);

    // -v shows the text of the body and a note for the file.
    let out = run(&[
        "post",
        &url,
        "-f",
        "name=kim",
        &format!("photo@{}", small.display()),
        "-v",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("form-data; name=\"name\""),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("[4 bytes streamed from {}]", small.display())),
        "{}",
        out.stdout
    );
    let _ = received.recv_timeout(std::time::Duration::from_secs(30));
}
