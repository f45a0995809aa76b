//! Access rules and operations: --read-only, bearer tokens, --private,
//! CORS, /_health and /_metrics.

mod common;

use common::Server;

#[test]
fn read_only_refuses_every_write_with_405() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("t.csv"), "id,a\n1,x\n").unwrap();
    let s = Server::start_in(tmp.path(), &["--read-only"]);
    assert_eq!(s.get("/t/1").status, 200);
    for (method, path) in [
        ("POST", "/t"),
        ("PUT", "/t/1"),
        ("PATCH", "/t/1"),
        ("DELETE", "/t/1"),
        ("PUT", "/t"),
        ("DELETE", "/t"),
    ] {
        let r = s.send_json(method, path, r#"{"a":"y"}"#);
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
        assert!(r.json()["detail"].as_str().unwrap().contains("read-only"));
    }
    assert_eq!(s.get("/t/1").json()["a"], "x");
}

#[test]
fn a_token_guards_writes() {
    let s = Server::start_with(&["--token", "s3cret"]);
    let r = s.post_json("/t", r#"{"a":"x"}"#);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"csvd\""));
    let wrong = s.request(
        "POST",
        "/t",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", "Bearer nope"),
        ],
        br#"{"a":"x"}"#,
    );
    assert_eq!(wrong.status, 401);
    assert!(wrong.json()["detail"].as_str().unwrap().contains("wrong"));
    let ok = s.request(
        "POST",
        "/t",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", "Bearer s3cret"),
        ],
        br#"{"a":"x"}"#,
    );
    assert_eq!(ok.status, 201);
    assert_eq!(s.get("/t").status, 200, "reads stay open without --private");
}

#[test]
fn private_needs_the_token_for_reads_too_and_it_can_come_from_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, "from-a-file\n").unwrap();
    let s = Server::start_with(&["--token-file", token_file.to_str().unwrap(), "--private"]);
    assert_eq!(s.get("/").status, 401);
    assert_eq!(s.get("/_metrics").status, 401);
    assert_eq!(s.get("/_health").status, 200, "liveness stays open");
    let auth = [("Authorization", "Bearer from-a-file")];
    assert_eq!(s.get_with("/", &auth).status, 200);
}

#[test]
fn private_without_a_token_refuses_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::BIN)
        .args([
            "serve",
            tmp.path().to_str().unwrap(),
            "--bind",
            "127.0.0.1:0",
            "--private",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--private needs a token"));
}

#[test]
fn cors_preflight_and_exposed_headers() {
    let s = Server::start_with(&["--cors", "http://app.example"]);
    let pre = s.request(
        "OPTIONS",
        "/t",
        &[
            ("Origin", "http://app.example"),
            ("Access-Control-Request-Method", "PATCH"),
            ("Access-Control-Request-Headers", "content-type, if-match"),
        ],
        b"",
    );
    assert!(pre.status == 200 || pre.status == 204, "{}", pre.status);
    assert_eq!(
        pre.header("access-control-allow-origin"),
        Some("http://app.example")
    );
    assert!(pre
        .header("access-control-allow-methods")
        .unwrap()
        .contains("PATCH"));
    let r = s.request(
        "POST",
        "/t",
        &[
            ("Origin", "http://app.example"),
            ("Content-Type", "application/json"),
        ],
        br#"{"a":1}"#,
    );
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://app.example")
    );
    assert!(r
        .header("access-control-expose-headers")
        .unwrap()
        .to_lowercase()
        .contains("etag"));
    let other = s.get_with("/t", &[("Origin", "http://evil.example")]);
    assert_eq!(other.header("access-control-allow-origin"), None);
}

#[test]
fn with_cors_a_plain_options_still_gets_204_and_allow() {
    let s = Server::start_with(&["--cors", "http://app.example"]);
    assert_eq!(s.post_json("/t", r#"{"a":1}"#).status, 201);
    for (path, allow) in [
        ("/", "GET, HEAD, OPTIONS"),
        ("/t", "GET, HEAD, POST, PUT, DELETE, OPTIONS"),
        ("/t/1", "GET, HEAD, PUT, PATCH, DELETE, OPTIONS"),
    ] {
        let r = s.request("OPTIONS", path, &[], b"");
        assert_eq!(r.status, 204, "{path}");
        assert_eq!(r.header("allow"), Some(allow), "{path}");
        // Not a preflight, but from an allowed origin: readable there.
        let r = s.request("OPTIONS", path, &[("Origin", "http://app.example")], b"");
        assert_eq!(r.status, 204, "{path}");
        assert_eq!(r.header("allow"), Some(allow), "{path}");
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("http://app.example")
        );
        let r = s.request("OPTIONS", path, &[("Origin", "http://evil.example")], b"");
        assert_eq!((r.status, r.header("allow")), (204, Some(allow)));
        assert_eq!(r.header("access-control-allow-origin"), None);
    }
    // Routes with parameters are still routed once, right.
    assert_eq!(s.get("/t/1").json()["a"], 1);
    let r = s.get_with("/t/1", &[("Origin", "http://app.example")]);
    assert_eq!(r.json()["a"], 1);
}

#[test]
fn metrics_in_prometheus_text() {
    let s = Server::start();
    s.post_json("/people", r#"{"name":"kim"}"#);
    s.post_json("/people", r#"{"name":"lee"}"#);
    s.get("/people/9");
    let text = s.get("/_metrics").text();
    assert!(
        text.contains("csvd_requests_total{status=\"201\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("csvd_requests_total{status=\"404\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("csvd_table_rows{table=\"people\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("csvd_request_duration_seconds_count 3"),
        "{text}"
    );
    // This request's connection is open; earlier ones may still be closing.
    let open = text
        .lines()
        .find_map(|l| l.strip_prefix("csvd_open_connections "))
        .and_then(|n| n.parse::<i64>().ok())
        .unwrap();
    assert!(open >= 1, "{text}");
    let fsyncs = text
        .lines()
        .find_map(|l| l.strip_prefix("csvd_log_fsyncs_total "))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap();
    assert!(fsyncs >= 1, "{text}");
    let bytes = text
        .lines()
        .find_map(|l| l.strip_prefix("csvd_log_bytes_written_total "))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap();
    assert!(bytes > 0);
}

#[test]
fn csv_safe_neutralises_formulas_in_csv_answers_only() {
    let mut s = Server::start_with(&["--csv-safe"]);
    s.post_json(
        "/t",
        r#"{"f":"=HYPERLINK(\"http://x\")","n":"-5","ok":"plain"}"#,
    );
    let csv = s.get("/t.csv").text();
    assert!(csv.contains("'=HYPERLINK"), "{csv}");
    assert!(csv.contains(",'-5,"), "{csv}");
    assert!(csv.contains(",plain"), "{csv}");
    assert_eq!(
        s.get("/t/1").json()["f"],
        "=HYPERLINK(\"http://x\")",
        "JSON is untouched"
    );
    let file = s.file_after_stop("t");
    assert!(
        file.contains("=HYPERLINK") && !file.contains("'="),
        "the file is untouched: {file}"
    );
}
