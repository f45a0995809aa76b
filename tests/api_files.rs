//! The data directory: files dropped in or edited by hand, invalid files,
//! restarts, shutdown, and the seed's own client and server habits.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Logged, Response, Server, BIN};
use serde_json::json;

#[test]
fn files_dropped_in_while_running_become_tables() {
    let mut s = Server::start();
    assert_eq!(s.get("/zips").status, 404);
    fs::write(
        s.dir.join("zips.csv"),
        "\u{feff}zip,city\r\n02134,Boston\r\n10001,New York\r\n",
    )
    .unwrap();
    fs::write(s.dir.join("not a table.csv"), "a\n1\n").unwrap();
    fs::write(s.dir.join("notes.txt"), "hello").unwrap();
    let list = s.get("/").json();
    // `not a table.csv` is served as `not_a_table`; notes.txt is no table.
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert_eq!(list[0]["name"], "not_a_table");
    assert_eq!(
        list[1]["columns"],
        json!(["zip", "city"]),
        "the BOM is not part of the first column"
    );
    assert_eq!(
        s.get("/zips").json(),
        json!([{"zip": "02134", "city": "Boston"}, {"zip": 10001, "city": "New York"}])
    );
    // The first write gives the table an id column; BOM and CRLF are kept.
    let r = s.post_json("/zips", r#"{"zip":"90210","city":"Beverly Hills"}"#);
    assert_eq!(r.json()["id"], json!(3));
    assert_eq!(
        s.file_after_stop("zips"),
        "\u{feff}id,zip,city\r\n1,02134,Boston\r\n2,10001,New York\r\n3,90210,Beverly Hills\r\n"
    );
}

#[test]
fn files_edited_or_removed_by_hand_are_noticed() {
    let mut s = Server::start();
    s.post_json("/t", r#"{"a":"x"}"#);
    s.restart();
    assert_eq!(s.get("/t").json(), json!([{"id": 1, "a": "x"}]));
    fs::write(s.dir.join("t.csv"), "id,a,b\n1,edited,new\n2,more,\n").unwrap();
    assert_eq!(
        s.get("/t").json(),
        json!([{"id": 1, "a": "edited", "b": "new"}, {"id": 2, "a": "more", "b": ""}])
    );
    fs::remove_file(s.dir.join("t.csv")).unwrap();
    assert_eq!(s.get("/t").status, 404);
    assert_eq!(s.get("/").json(), json!([]));
}

#[test]
fn an_edit_by_hand_during_pending_writes_is_set_aside_not_overwritten() {
    // Checkpoints wait for an hour here, so the write below stays pending.
    let mut s = Server::start_with(&["--checkpoint-after", "3600"]);
    s.post_json("/t", r#"{"a":"ours"}"#);
    fs::write(s.dir.join("t.csv"), "id,a\n1,theirs\n").unwrap();
    assert_eq!(
        s.get("/t").json(),
        json!([{"id": 1, "a": "ours"}]),
        "pending changes win"
    );
    let aside: Vec<_> = fs::read_dir(&s.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("t.csv.conflict-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(
        fs::read_to_string(s.dir.join(&aside[0])).unwrap(),
        "id,a\n1,theirs\n"
    );
    assert_eq!(s.file_after_stop("t"), "id,a\n1,ours\n");
}

#[test]
fn invalid_files_are_reported_and_never_rewritten() {
    let s = Server::start();
    let bad = "id,name\n1,kim\n2,lee,extra\n";
    fs::write(s.dir.join("bad.csv"), bad).unwrap();
    let r = s.get("/bad");
    assert_eq!(r.status, 500);
    let detail = r.json()["detail"].as_str().unwrap().to_string();
    assert!(detail.contains("line 3"), "{detail}");
    let list = s.get("/").json();
    assert!(list[0]["error"].as_str().unwrap().contains("line 3"));
    let w = s.post_json("/bad", r#"{"name":"x"}"#);
    assert_eq!(w.status, 409);
    assert_eq!(
        s.send_json("PATCH", "/bad/1", r#"{"name":"x"}"#).status,
        409
    );
    assert_eq!(
        fs::read_to_string(s.dir.join("bad.csv")).unwrap(),
        bad,
        "untouched"
    );
    // Damaged UTF-8 (another encoding is read as it is).
    fs::write(s.dir.join("latin.csv"), b"name\ncaf\xc3\xa9\ncaf\xe9\n").unwrap();
    assert!(s.get("/latin").json()["detail"]
        .as_str()
        .unwrap()
        .contains("UTF-8"));
    // Replacing the table is how a user repairs it.
    let r = s.request(
        "PUT",
        "/bad",
        &[("Content-Type", "text/csv")],
        b"id,name\n1,kim\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(s.get("/bad/1").json(), json!({"id": 1, "name": "kim"}));
}

#[test]
fn a_broken_file_names_its_physical_line_for_lf_and_crlf() {
    let s = Server::start();
    fs::write(
        s.dir.join("lf.csv"),
        "id,name\n1,kim\n2,lee\n3,park,extra\n",
    )
    .unwrap();
    fs::write(
        s.dir.join("crlf.csv"),
        "id,name\r\n1,kim\r\n2,\"two\r\nlines\"\r\n3,park,extra\r\n",
    )
    .unwrap();
    fs::write(s.dir.join("semi.csv"), "name,age\r\nkim,\"30,5\",x\r\n").unwrap();
    fs::write(s.dir.join("one.csv"), "name\r\nkim,30\r\n").unwrap();
    for (table, needle) in [
        ("lf", "line 4: 3 fields, but the header names 2 columns"),
        ("crlf", "line 5: 3 fields, but the header names 2 columns"),
        ("semi", "line 2: 3 fields, but the header names 2 columns"),
        ("one", "line 2: 2 fields, but the header names 1 column"),
    ] {
        let detail = s.get(&format!("/{table}")).json()["detail"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(detail.contains(needle), "{table}: {detail:?}");
        let list = s.get("/").json();
        let entry = list
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == table)
            .unwrap();
        let error = entry["error"].as_str().unwrap();
        assert!(error.contains(needle), "{table} in GET /: {error:?}");
        assert!(!error.contains("1 columns"), "{error}");
    }
}

#[test]
fn data_survives_a_restart_and_sigterm_exits_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Server::start_in(tmp.path(), &[]);
    s.post_json("/t", r#"{"text":"line1\nline2, \"q\""}"#);
    s.send_json("PUT", "/t/x", r#"{"text":"é"}"#);
    s.send_json("PATCH", "/t/1", r#"{"more":"yes"}"#);
    let before = s.get("/t").json();
    let status = s.stop();
    assert!(status.success(), "exit status {status:?}");
    let s = Server::start_in(tmp.path(), &[]);
    assert_eq!(s.get("/t").json(), before);
    let r = s.post_json("/t", "{}");
    assert_eq!(r.json()["id"], json!(2), "ids continue after a restart");
}

#[test]
fn a_killed_server_loses_no_acknowledged_write() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Server::start_in(tmp.path(), &[]);
    for i in 0..20 {
        assert_eq!(s.post_json("/t", &format!(r#"{{"n":"{i}"}}"#)).status, 201);
    }
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    let s = Server::start_in(tmp.path(), &[]);
    assert_eq!(s.get("/t").json().as_array().unwrap().len(), 20);
}

/// The exact bytes the seed's Python client sends: target `/`, the path in
/// `Host`, `Content-Type: text/html`, and headers ended by `\r\n\n`.
fn seed_request(method: &str, path: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} / HTTP/1.1\r\nHost: {path}\r\nContent-Type: text/html\r\nConnection: keep-alive\r\nContent-Length: {}\r\n\n{body}",
        body.chars().count()
    )
    .into_bytes()
}

fn seed_exchange(s: &Server, request: &[u8]) -> Response {
    let head_only = request.starts_with(b"HEAD");
    // The seed client reads once; the connection stays open (keep-alive).
    let mut stream = TcpStream::connect(s.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "the server closed without answering");
        got.extend_from_slice(&buf[..n]);
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if head_only || got.len() >= end + 4 + length {
                return Response::parse(&got, head_only);
            }
        }
    }
}

#[test]
fn the_seed_client_is_answered() {
    let s = Server::start();
    let r = seed_exchange(&s, &seed_request("POST", "/create", "name:kim"));
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json(), json!({"id": 1, "name": "kim"}));
    let r = seed_exchange(&s, &seed_request("PUT", "/create/1", "name:lee"));
    assert_eq!(r.status, 200);
    let r = seed_exchange(&s, &seed_request("GET", "/create", ""));
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!([{"id": 1, "name": "lee"}]));
    let r = seed_exchange(&s, &seed_request("HEAD", "/create", ""));
    assert_eq!(r.status, 200);
    let r = seed_exchange(&s, &seed_request("POST", "/create", "no separator"));
    assert_eq!(r.status, 400);
    assert!(r.text().contains("key:value"));
    let r = seed_exchange(&s, &seed_request("GET", "/missing", ""));
    assert_eq!(r.status, 404);
}

#[test]
fn a_seed_style_host_that_is_no_path_is_refused() {
    let s = Server::start();
    for host in ["/people 1", "/people\t1", "/a/b c?d"] {
        let r = seed_exchange(&s, &seed_request("GET", host, ""));
        assert_eq!(r.status, 400, "Host: {host}: {}", r.text());
        let detail = r.json()["detail"].as_str().unwrap().to_string();
        assert!(
            detail.contains("Host") && detail.contains("path"),
            "{host}: {detail}"
        );
    }
    // A valid path in Host is still the seed client's request.
    assert_eq!(
        seed_exchange(&s, &seed_request("POST", "/people", "name:kim")).status,
        201
    );
    let r = seed_exchange(&s, &seed_request("GET", "/people?name=kim", ""));
    assert_eq!(r.json(), json!([{"id": 1, "name": "kim"}]));
    let r = seed_exchange(&s, &seed_request("GET", "/people%201", ""));
    assert_eq!(r.status, 400, "a table name with a space: {}", r.text());
}

#[test]
fn greeting_for_the_seed_client_and_dump_of_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .arg("serve")
        .arg(tmp.path())
        .args([
            "--bind",
            "127.0.0.1:0",
            "--log-level",
            "warn",
            "--dump",
            "--greeting",
            "Welcome to the server!!",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line.trim().rsplit("http://").next().unwrap().to_string();
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut greeting = [0u8; 23];
    stream.read_exact(&mut greeting).unwrap();
    assert_eq!(&greeting, b"Welcome to the server!!");
    stream
        .write_all(
            b"GET /_health HTTP/1.1\r\nHost: x\r\nX-Probe: seen\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let mut dumped = String::new();
    while !dumped.contains("X-Probe: seen") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "dump ended early: {dumped}"
        );
        dumped.push_str(&line);
    }
    assert!(dumped.contains("GET /_health HTTP/1.1"));
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn id_column_flag() {
    let s = Server::start_with(&["--id-column", "key"]);
    let r = s.post_json("/t", r#"{"name":"kim"}"#);
    assert_eq!(r.json(), json!({"key": 1, "name": "kim"}));
    assert_eq!(s.get("/t/1").json()["name"], json!("kim"));
}

#[test]
fn a_file_in_another_dialect_is_reported_and_never_rewritten() {
    let mut s = Server::start();
    // Semicolons or commas: nothing tells which.
    let semi = "id;name,city\r\n";
    fs::write(s.dir.join("semi.csv"), semi).unwrap();
    let listed = s.get("/").json();
    let error = listed[0]["error"].as_str().unwrap();
    assert!(
        error.contains("semicolons") && error.contains("sep="),
        "{error}"
    );
    assert_eq!(s.get("/semi").status, 500);
    let r = s.post_json("/semi", r#"{"name":"park"}"#);
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("semicolons"), "{}", r.text());
    assert_eq!(
        s.send_json("PATCH", "/semi/1", r#"{"name":"x"}"#).status,
        409
    );
    s.stop();
    assert_eq!(fs::read_to_string(s.dir.join("semi.csv")).unwrap(), semi);
    // A body whose rows tell its delimiter is read in it, not as one column;
    // one that cannot tell is refused, saying how to say.
    let s = Server::start();
    let r = s.request("POST", "/t", &[("Content-Type", "text/csv")], b"a;b\n1;2\n");
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(s.get("/t").json(), json!([{"id": 1, "a": 1, "b": 2}]));
    let r = s.request(
        "POST",
        "/u",
        &[("Content-Type", "text/csv")],
        semi.as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("semicolons"), "{}", r.text());
}

#[test]
fn csv_files_with_other_names_are_served_and_other_files_reported_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::write(dir.join("UPPER.CSV"), "id,a\n1,x\n").unwrap();
    fs::write(dir.join("Customers Export.csv"), "id,name\n1,kim\n").unwrap();
    fs::write(dir.join("db.json"), "{}").unwrap();
    let Logged {
        mut child,
        addr,
        mut stderr,
    } = common::spawn_logged(dir, &["--log-level", "info"]);
    let get = |path: &str| common::exchange(addr, "GET", path, None);
    let names: Vec<String> = get("/")
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["Customers_Export", "UPPER"]);
    assert_eq!(
        get("/Customers_Export/1").json(),
        json!({"id":1,"name":"kim"})
    );
    assert_eq!(get("/UPPER").json(), json!([{"id":1,"a":"x"}]));
    let post = common::exchange(addr, "POST", "/Customers_Export", Some(r#"{"name":"lee"}"#));
    assert_eq!(post.status, 201);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
    let mut log = String::new();
    stderr.read_to_string(&mut log).unwrap();
    assert_eq!(
        log.matches("skipping \"db.json\": not a .csv or .tsv file")
            .count(),
        1,
        "{log}"
    );
    assert!(
        log.contains("serving \"Customers Export.csv\" as the table \"Customers_Export\""),
        "{log}"
    );
    // The file keeps its name; no second file appears.
    assert_eq!(
        fs::read_to_string(dir.join("Customers Export.csv")).unwrap(),
        "id,name\n1,kim\n2,lee\n"
    );
    assert!(!dir.join("Customers_Export.csv").exists());
}

#[test]
fn a_broken_table_shows_its_files_modification_time() {
    let s = Server::start();
    let path = s.dir.join("broken.csv");
    fs::write(&path, "a,a\n1,2\n").unwrap();
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    let list = s.get("/").json();
    let modified = list[0]["modified"].as_str().unwrap();
    assert!(list[0]["error"].is_string(), "{list}");
    assert_ne!(modified, "1970-01-01T00:00:00Z");
    let expected = humantime::format_rfc3339_seconds(mtime).to_string();
    assert_eq!(modified, expected);
    let page = s.get_with("/", &[("Accept", "text/html")]).text();
    assert!(!page.contains("1970"), "the page shows the real time too");
}

#[test]
fn a_checkpoint_leaves_only_the_table_file_behind() {
    let s = Server::start_with(&["--checkpoint-after", "0"]);
    let checkpoints = || -> u64 {
        s.get("/_metrics")
            .text()
            .lines()
            .find_map(|l| l.strip_prefix("csvd_checkpoints_total "))
            .and_then(|v| v.trim().parse().ok())
            .expect("csvd_checkpoints_total in /_metrics")
    };
    // Two checkpoints of the table: the second replaces the first one's
    // file, which is removed once the table is free again.
    for round in 0..2 {
        let before = checkpoints();
        let body = format!(r#"{{"a":"round {round}"}}"#);
        assert_eq!(s.post_json("/t", &body).status, 201);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while checkpoints() == before {
            assert!(std::time::Instant::now() < deadline, "no checkpoint came");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let names: Vec<String> = fs::read_dir(&s.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != ".csvd")
        .collect();
    assert_eq!(names, ["t.csv"], "no held or temporary file is left");
    assert_eq!(
        fs::read_to_string(s.dir.join("t.csv")).unwrap(),
        "id,a\n1,round 0\n2,round 1\n"
    );
}
