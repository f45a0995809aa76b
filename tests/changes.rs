//! The change feed on the file store: every style, resumption, retention,
//! filters, slow subscribers and the access flags, over real sockets.

mod common;

use std::time::{Duration, Instant};

use common::feed::{Subscriber, PATIENCE};
use common::Server;
use serde_json::{json, Value};

fn results(server: &Server, path: &str) -> (Vec<Value>, u64) {
    let answer = server.get(path);
    assert_eq!(answer.status, 200, "{path}: {}", answer.text());
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let body = answer.json();
    (
        body["results"].as_array().expect("results").clone(),
        body["last_seq"].as_u64().expect("last_seq"),
    )
}

fn ops(changes: &[Value]) -> Vec<String> {
    changes
        .iter()
        .map(|c| c["op"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_write_is_a_numbered_change_in_order() {
    let server = Server::start();
    assert_eq!(server.post_json("/people", r#"{"name":"kim"}"#).status, 201);
    assert_eq!(
        server
            .send_json("PUT", "/people/7", r#"{"name":"lee"}"#)
            .status,
        201
    );
    assert_eq!(
        server
            .send_json("PUT", "/people/7", r#"{"name":"lee","city":"Seoul"}"#)
            .status,
        200
    );
    assert_eq!(
        server
            .send_json("PATCH", "/people/1", r#"{"city":"Busan"}"#)
            .status,
        200
    );
    assert_eq!(server.request("DELETE", "/people/7", &[], b"").status, 204);
    assert_eq!(
        server
            .post_json("/people", r#"[{"name":"a"},{"name":"b"}]"#)
            .status,
        201
    );
    let (changes, last) = results(&server, "/_changes");
    assert_eq!(
        ops(&changes),
        ["insert", "insert", "update", "update", "delete", "insert", "insert"]
    );
    let seqs: Vec<u64> = changes.iter().map(|c| c["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=7).collect::<Vec<_>>());
    assert_eq!(last, 7);
    assert_eq!(changes[2]["id"], "7");
    assert_eq!(
        changes[2]["row"],
        json!({"id": 7, "name": "lee", "city": "Seoul"})
    );
    assert!(changes[4].get("row").is_none(), "a delete has no row");
    assert!(changes[4].get("etag").is_none());
    // The change's ETag is the row's.
    let row = server.get("/people/1");
    assert_eq!(changes[3]["etag"].as_str(), row.header("etag"));
    assert_eq!(changes[3]["table"], "people");

    assert_eq!(
        server
            .request(
                "PUT",
                "/people",
                &[("Content-Type", "text/csv")],
                b"id,name\n1,x\n"
            )
            .status,
        200
    );
    assert_eq!(server.request("DELETE", "/people", &[], b"").status, 204);
    let (changes, last) = results(&server, "/_changes/people?since=7");
    assert_eq!(ops(&changes), ["replace_table", "delete_table"]);
    assert!(changes[0].get("id").is_none());
    assert_eq!(last, 9);
    let metrics = server.get("/_metrics").text();
    assert!(metrics.contains("csvd_changes_last_seq 9"), "{metrics}");
    assert!(metrics.contains("csvd_feed_subscribers 0"), "{metrics}");
}

#[test]
fn since_limit_and_the_json_answer() {
    let server = Server::start();
    for i in 0..5 {
        server.post_json("/t", &format!(r#"{{"n":{i}}}"#));
    }
    let (changes, last) = results(&server, "/_changes?since=2&limit=2");
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0]["seq"], 3);
    assert_eq!(last, 4, "last_seq is where to go on from");
    let (changes, last) = results(&server, "/_changes?since=now");
    assert!(changes.is_empty());
    assert_eq!(last, 5);
    // A position ahead of the feed is answered with nothing yet.
    let (changes, last) = results(&server, "/_changes?since=99");
    assert!(changes.is_empty());
    assert_eq!(last, 99);
    for (query, mentions) in [
        ("since=x", "since"),
        ("since=-1", "since"),
        ("limit=0", "limit"),
        ("feed=websocket", "feed"),
        ("timeout=soon", "timeout"),
        ("_sort=n", "_sort"),
        ("_page=2", "_page"),
    ] {
        let answer = server.get(&format!("/_changes/t?{query}"));
        assert_eq!(answer.status, 400, "{query}");
        assert!(
            answer.text().contains(mentions),
            "{query}: {}",
            answer.text()
        );
    }
    let answer = server.get("/_changes?n=1");
    assert_eq!(answer.status, 400);
    assert!(answer.text().contains("need a table"), "{}", answer.text());
    let answer = server.get("/_changes/t?nope=1");
    assert_eq!(answer.status, 400);
    assert!(answer.text().contains("nope"), "{}", answer.text());
    assert_eq!(server.get("/_changes/bad.name").status, 400);
    assert_eq!(server.request("POST", "/_changes", &[], b"").status, 405);
    let options = server.request("OPTIONS", "/_changes/t", &[], b"");
    assert_eq!(options.header("allow"), Some("GET, HEAD, OPTIONS"));
}

#[test]
fn filters_fields_and_row_feeds() {
    let server = Server::start();
    server.post_json("/people", r#"{"name":"kim","city":"Seoul"}"#);
    server.post_json("/people", r#"{"name":"lee","city":"Busan"}"#);
    server.send_json("PATCH", "/people/1", r#"{"city":"Daegu"}"#);
    server.send_json("PATCH", "/people/2", r#"{"city":"Jeju"}"#);
    server.request("DELETE", "/people/1", &[], b"");
    server.post_json("/other", r#"{"city":"Seoul"}"#);
    // Sent when the row matched before or after: kim's insert, kim leaving
    // Seoul; not lee, and not kim's delete (no longer in Seoul).
    let (changes, _) = results(&server, "/_changes/people?city=Seoul&_fields=name");
    assert_eq!(ops(&changes), ["insert", "update"]);
    assert_eq!(changes[1]["row"], json!({"name": "kim"}));
    let (changes, _) = results(&server, "/_changes/people/2");
    assert_eq!(ops(&changes), ["insert", "update"]);
    assert!(changes.iter().all(|c| c["id"] == "2"));
    let (changes, _) = results(&server, "/_changes/people?q=jeju");
    assert_eq!(ops(&changes), ["update"]);
    // The feed selects rows as GET does, `_where`'s `or` included.
    let (changes, _) = results(
        &server,
        "/_changes/people?_where=%7B%22or%22%3A%5B%7B%22city%22%3A%7B%22eq%22%3A%22Jeju%22%7D%7D%5D%7D",
    );
    assert_eq!(ops(&changes), ["update"]);
    assert_eq!(changes[0]["row"]["city"], "Jeju");
    let (changes, _) = results(&server, "/_changes/other");
    assert_eq!(changes.len(), 1);
    // A feed on a table that does not exist yet takes its filters on trust.
    let (changes, _) = results(&server, "/_changes/later?zip=1");
    assert!(changes.is_empty());
}

#[test]
fn server_sent_events_arrive_as_written_and_resume_from_last_event_id() {
    let server = Server::start();
    let mut sub = Subscriber::sse(server.addr, "/_changes/people?since=now");
    assert_eq!(sub.status, 200);
    assert_eq!(sub.header("content-type"), Some("text/event-stream"));
    assert_eq!(sub.header("cache-control"), Some("no-store"));
    for name in ["kim", "lee", "park"] {
        assert_eq!(
            server
                .post_json("/people", &format!(r#"{{"name":"{name}"}}"#))
                .status,
            201
        );
        // Each event arrives before the next write: nothing is held back.
        let event = sub.event().expect("an event");
        assert_eq!(event.event, "insert");
        assert_eq!(event.json()["row"]["name"], name);
        assert_eq!(event.id.as_deref(), Some(event.seq().to_string().as_str()));
    }
    drop(sub);
    let mut resumed = Subscriber::open(
        server.addr,
        "/_changes/people?since=0",
        &[("Accept", "text/event-stream"), ("Last-Event-ID", "2")],
    );
    let event = resumed.event().unwrap();
    assert_eq!(
        event.id.as_deref(),
        Some("3"),
        "Last-Event-ID wins over since"
    );
    // Compression would hold events back: never for a stream.
    let gzip = Subscriber::open(
        server.addr,
        "/_changes",
        &[("Accept", "text/event-stream"), ("Accept-Encoding", "gzip")],
    );
    assert_eq!(gzip.header("content-encoding"), None);
    let bad = server.get_with(
        "/_changes",
        &[("Accept", "text/event-stream"), ("Last-Event-ID", "three")],
    );
    assert_eq!(bad.status, 400);
}

#[test]
fn heartbeats_keep_a_quiet_stream_alive() {
    let server = Server::start();
    let mut sub = Subscriber::sse(server.addr, "/_changes?heartbeat=20");
    let deadline = Instant::now() + PATIENCE;
    let mut beats = 0;
    while beats < 2 {
        let comment = sub.event_or_comment().expect("the stream");
        if comment.event == "comment" && comment.data == "heartbeat" {
            beats += 1;
        }
        assert!(Instant::now() < deadline);
    }
    let mut nd = Subscriber::open(server.addr, "/_changes?feed=continuous&heartbeat=20", &[]);
    assert_eq!(nd.header("content-type"), Some("application/x-ndjson"));
    // NDJSON heartbeats are empty lines.
    assert_eq!(nd.line().as_deref(), Some(""));
    assert_eq!(nd.line().as_deref(), Some(""));
}

#[test]
fn ndjson_streams_one_change_per_line() {
    let server = Server::start();
    server.post_json("/t", r#"{"a":1}"#);
    let mut sub = Subscriber::open(
        server.addr,
        "/_changes/t",
        &[
            ("Accept", "application/x-ndjson"),
            ("Accept-Encoding", "gzip, br"),
        ],
    );
    assert_eq!(sub.header("content-encoding"), None, "never compressed");
    assert_eq!(sub.json_line().unwrap()["seq"], 1);
    server.send_json("PATCH", "/t/1", r#"{"a":2}"#);
    let line = sub.json_line().unwrap();
    assert_eq!(line["op"], "update");
    assert_eq!(line["row"]["a"], 2);
    // A limit ends the stream with a final line saying so.
    let mut limited = Subscriber::open(server.addr, "/_changes/t?feed=continuous&limit=1", &[]);
    assert_eq!(limited.json_line().unwrap()["seq"], 1);
    let end = limited.json_line().unwrap();
    assert_eq!(end["end"]["reason"], "limit");
    assert!(limited.json_line().is_none());
}

#[test]
fn a_long_poll_waits_for_a_change_it_wants() {
    let server = Server::start();
    server.post_json("/t", r#"{"a":1}"#);
    // Something there already: answered at once.
    let (changes, _) = results(&server, "/_changes?feed=longpoll&since=0&timeout=60000");
    assert_eq!(changes.len(), 1);
    // Nothing yet: waits until a write that matches.
    let addr = server.addr;
    let waiter = std::thread::spawn(move || {
        common::exchange(addr, "GET", "/_changes/t?feed=longpoll&since=1&a=3", None)
    });
    server.post_json("/t", r#"{"a":2}"#);
    server.post_json("/t", r#"{"a":3}"#);
    let answer = waiter.join().unwrap();
    assert_eq!(answer.status, 200);
    let body = answer.json();
    assert_eq!(body["results"].as_array().unwrap().len(), 1);
    assert_eq!(body["results"][0]["row"]["a"], 3);
    assert_eq!(body["last_seq"], 3);
    // Nothing comes: an empty answer at the timeout.
    let (changes, last) = results(&server, "/_changes?feed=longpoll&since=now&timeout=50");
    assert!(changes.is_empty());
    assert_eq!(last, 3);
}

#[test]
fn positions_older_than_what_is_kept_are_gone() {
    let server = Server::start_with(&["--changes-keep", "3", "--changes-memory", "0"]);
    for i in 0..6 {
        server.post_json("/t", &format!(r#"{{"n":{i}}}"#));
    }
    let answer = server.get("/_changes?since=0");
    assert_eq!(answer.status, 410, "{}", answer.text());
    assert_eq!(
        answer.header("content-type"),
        Some("application/problem+json")
    );
    let body = answer.json();
    assert_eq!(body["oldest_seq"], 4);
    assert_eq!(body["last_seq"], 6);
    assert!(body["detail"].as_str().unwrap().contains("reload"));
    // The oldest kept position still resumes, and so does the default.
    let (changes, _) = results(&server, "/_changes?since=3");
    assert_eq!(changes.len(), 3);
    let (changes, _) = results(&server, "/_changes");
    assert_eq!(changes[0]["seq"], 4);
    let sse = server.get_with(
        "/_changes",
        &[("Accept", "text/event-stream"), ("Last-Event-ID", "1")],
    );
    assert_eq!(sse.status, 410);
    // A table's feed is gone only when a change to that table is: writes
    // to other tables that were let go cost its subscribers nothing.
    server.post_json("/quiet", r#"{"n":0}"#);
    for i in 0..6 {
        server.post_json("/t", &format!(r#"{{"n":{i}}}"#));
    }
    assert_eq!(server.get("/_changes?since=7").status, 410);
    let (changes, last) = results(&server, "/_changes/quiet?since=7");
    assert!(changes.is_empty());
    assert_eq!(last, 13);
    assert_eq!(server.get("/_changes/quiet?since=6").status, 410);
}

#[test]
fn numbers_survive_restarts_and_a_caught_up_subscriber_resumes_without_gap() {
    let mut server = Server::start();
    let mut sub = Subscriber::sse(server.addr, "/_changes");
    for i in 0..3 {
        server.post_json("/t", &format!(r#"{{"n":{i}}}"#));
    }
    let seen: Vec<u64> = sub.events(3).iter().map(|e| e.seq()).collect();
    assert_eq!(seen, [1, 2, 3]);
    // A graceful stop ends the stream with a final event, after every
    // change acknowledged.
    let stopping = std::thread::spawn(move || sub.rest());
    server.restart();
    let rest = stopping.join().unwrap();
    let end = rest.last().expect("a final event");
    assert_eq!(end.event, "end");
    assert_eq!(end.json()["reason"], "shutdown");
    assert_eq!(end.json()["last_seq"], 3);
    assert!(end.id.is_none());

    let mut resumed = Subscriber::open(
        server.addr,
        "/_changes",
        &[("Accept", "text/event-stream"), ("Last-Event-ID", "3")],
    );
    assert_eq!(resumed.status, 200);
    server.post_json("/t", r#"{"n":3}"#);
    let next = resumed.event().unwrap();
    assert_eq!(next.seq(), 4, "no change repeated, none missed");
    // A crash does not give a number twice either.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    server.restart_after_crash();
    server.post_json("/t", r#"{"n":4}"#);
    let (changes, _) = results(&server, "/_changes?since=4");
    assert_eq!(changes[0]["seq"], 5);
    // Changes from before the restart are not kept: 410, never a gap.
    assert_eq!(server.get("/_changes?since=0").status, 410);
    // Restarts with no write in between (each checkpoint lets the older
    // log segments go) keep the numbering too.
    server.restart();
    server.restart();
    server.post_json("/t", r#"{"n":5}"#);
    let (changes, _) = results(&server, "/_changes?since=5");
    assert_eq!(changes[0]["seq"], 6);
}

#[test]
fn two_subscribers_at_different_speeds_get_the_same_changes() {
    let server = Server::start();
    let mut fast = Subscriber::sse(server.addr, "/_changes");
    let mut slow = Subscriber::sse(server.addr, "/_changes");
    let mut expected = Vec::new();
    for i in 0..50 {
        server.post_json("/t", &format!(r#"{{"n":{i}}}"#));
        expected.push(fast.event().unwrap().seq());
    }
    let late: Vec<u64> = slow.events(50).iter().map(|e| e.seq()).collect();
    assert_eq!(late, expected);
    assert_eq!(expected, (1..=50).collect::<Vec<_>>());
}

#[test]
fn a_subscriber_that_stops_reading_is_let_go_with_a_final_event() {
    let server = Server::start_with(&["--changes-keep", "2", "--changes-memory", "0"]);
    let mut stalled = Subscriber::sse(server.addr, "/_changes");
    // Far more than socket buffers hold, in two bulk writes, then a third:
    // the first is let go while the subscriber is still inside it.
    let cell = "x".repeat(1000);
    for _ in 0..2 {
        let rows: Vec<Value> = (0..12_000).map(|_| json!({ "pad": cell })).collect();
        let answer = server.request(
            "POST",
            "/big",
            &[
                ("Content-Type", "application/json"),
                ("Prefer", "return=minimal"),
            ],
            serde_json::to_string(&rows).unwrap().as_bytes(),
        );
        assert_eq!(answer.status, 201, "{}", answer.text());
    }
    server.post_json("/big", r#"{"pad":"last"}"#);
    // Other subscribers are not held up meanwhile.
    let (changes, _) = results(&server, "/_changes?since=now");
    assert!(changes.is_empty());
    let mut last = 0;
    let end = loop {
        let event = stalled.event().expect("a final event before the end");
        if event.event == "end" {
            break event;
        }
        let seq = event.seq();
        assert_eq!(seq, last + 1, "no gap before the end");
        last = seq;
    };
    assert!(last < 24_001, "it fell behind");
    assert_eq!(end.json()["reason"], "slow");
    assert_eq!(end.json()["last_seq"], last);
    assert!(end.json()["detail"].as_str().unwrap().contains("reload"));
    assert!(stalled.event().is_none(), "and the stream ends");
}

#[test]
fn the_feed_obeys_the_access_flags_and_its_limits() {
    let private = Server::start_with(&["--token", "s3cret", "--private"]);
    assert_eq!(private.get("/_changes").status, 401);
    let allowed = private.get_with("/_changes", &[("Authorization", "Bearer s3cret")]);
    assert_eq!(allowed.status, 200);

    let cors = Server::start_with(&["--cors", "http://app.example"]);
    let sub = Subscriber::open(
        cors.addr,
        "/_changes",
        &[
            ("Accept", "text/event-stream"),
            ("Origin", "http://app.example"),
        ],
    );
    assert_eq!(
        sub.header("access-control-allow-origin"),
        Some("http://app.example")
    );

    let limited = Server::start_with(&["--max-subscribers", "1"]);
    // No heartbeat for an hour: the slot comes back because the server
    // notices the client leave, not because a write to it fails.
    let first = Subscriber::sse(limited.addr, "/_changes?heartbeat=3600000");
    assert_eq!(first.status, 200);
    let second = limited.get_with("/_changes", &[("Accept", "text/event-stream")]);
    assert_eq!(second.status, 503);
    assert!(second.header("retry-after").is_some());
    assert!(second.text().contains("--max-subscribers"));
    // JSON answers are not subscribers.
    assert_eq!(limited.get("/_changes").status, 200);
    drop(first);
    wait_for_a_free_slot(&limited);
}

/// Waits until a new subscriber of `server` (which allows one) is let in.
fn wait_for_a_free_slot(server: &Server) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let again = Subscriber::sse(server.addr, "/_changes");
        if again.status == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "the slot was never given back");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `server` counts `n` subscribers (streams and long polls).
fn wait_for_subscribers(server: &Server, n: usize) {
    let deadline = Instant::now() + PATIENCE;
    let wanted = format!("csvd_feed_subscribers {n}\n");
    loop {
        let metrics = server.get("/_metrics").text();
        if metrics.contains(&wanted) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never {n} subscribers: {metrics}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_long_poll_whose_client_left_gives_back_its_slot() {
    // The poll may wait 119 s, longer than the test waits.
    let server = Server::start_with(&["--max-subscribers", "1", "--request-timeout", "120"]);
    let poll = std::net::TcpStream::connect(server.addr).unwrap();
    let request = format!(
        "GET /_changes?feed=longpoll&since=now&timeout=600000 HTTP/1.1\r\nHost: {}\r\n\r\n",
        server.addr
    );
    std::io::Write::write_all(&mut &poll, request.as_bytes()).unwrap();
    wait_for_subscribers(&server, 1);
    drop(poll);
    wait_for_subscribers(&server, 0);
    wait_for_a_free_slot(&server);
}

#[test]
fn a_long_poll_that_closes_its_sending_side_is_answered_at_once() {
    let server = Server::start_with(&["--request-timeout", "120"]);
    let mut poll = Subscriber::open_half_closed(
        server.addr,
        "/_changes?feed=longpoll&since=now&timeout=600000",
        &[],
    );
    assert_eq!(poll.status, 200);
    let answer: Value = serde_json::from_str(&poll.line().expect("an answer")).unwrap();
    assert_eq!(answer["results"], json!([]));
    assert!(answer["last_seq"].is_u64(), "{answer}");
}

#[test]
fn a_subscriber_that_closes_its_sending_side_still_gets_its_changes() {
    let server = Server::start_with(&["--max-subscribers", "1"]);
    // Such a client's leaving shows only when it is written to: at the
    // next heartbeat, frequent here.
    let path = "/_changes/people?since=now&heartbeat=100";
    for half_close_after_head in [false, true] {
        let mut sub = if half_close_after_head {
            let sub = Subscriber::sse(server.addr, path);
            sub.half_close();
            sub
        } else {
            Subscriber::open_half_closed(server.addr, path, &[("Accept", "text/event-stream")])
        };
        assert_eq!(sub.status, 200);
        for name in ["kim", "lee"] {
            let created = server.post_json("/people", &format!(r#"{{"name":"{name}"}}"#));
            assert_eq!(created.status, 201);
            let event = sub.event().expect("an event");
            assert_eq!(event.event, "insert");
            assert_eq!(event.json()["row"]["name"], name);
        }
        drop(sub);
        // And when it leaves for good, its slot comes back.
        wait_for_subscribers(&server, 0);
    }
}

#[test]
fn a_hand_edit_of_a_table_file_is_announced_as_a_replacement() {
    let server = Server::start_with(&["--checkpoint-after", "0"]);
    server.post_json("/t", r#"{"a":1}"#);
    let path = server.dir.join("t.csv");
    let deadline = Instant::now() + PATIENCE;
    while !std::fs::read_to_string(&path).is_ok_and(|text| text.contains("1,1")) {
        assert!(Instant::now() < deadline, "the file was never written");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(&path, "id,a\n1,1\n2,2\n").unwrap();
    assert_eq!(server.get("/t").json().as_array().unwrap().len(), 2);
    let (changes, _) = results(&server, "/_changes?since=1");
    assert_eq!(ops(&changes), ["replace_table"]);
}

/// A server on a fixed port, so that a client can find it again after a
/// restart.
fn serve_at(dir: &std::path::Path, port: u16) -> std::process::Child {
    use std::io::BufRead;
    let mut child = std::process::Command::new(common::BIN)
        .arg("serve")
        .arg(dir)
        .args([
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--log-level",
            "warn",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start csvd");
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("listening"), "{first}");
    child
}

fn stop(child: &mut std::process::Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
}

#[test]
fn csvd_watch_follows_the_feed_across_a_restart_without_repeating_a_change() {
    use std::io::BufRead;
    use std::sync::mpsc;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut server = serve_at(dir.path(), port);
    common::exchange(addr, "POST", "/people", Some(r#"{"name":"kim"}"#));
    let mut watch = std::process::Command::new(common::BIN)
        .args(["watch", &format!(":{port}/people"), "--since", "0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let next = || -> Value {
        let line = lines
            .recv_timeout(PATIENCE)
            .expect("a change from csvd watch");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    };
    assert_eq!(next()["seq"], 1, "piped, each change is its JSON line");
    common::exchange(addr, "POST", "/people", Some(r#"{"name":"lee"}"#));
    assert_eq!(next()["row"]["name"], "lee");
    stop(&mut server);
    let mut server = serve_at(dir.path(), port);
    common::exchange(addr, "PATCH", "/people/1", Some(r#"{"name":"kim2"}"#));
    let after = next();
    assert_eq!(after["seq"], 3, "resumed after 2: {after}");
    assert_eq!(after["op"], "update");
    let _ = watch.kill();
    let _ = watch.wait();
    stop(&mut server);
}

#[test]
fn a_stop_right_after_the_address_is_printed_is_graceful() {
    // The signal handlers are in place before the address is printed: a
    // SIGTERM at once still ends the feed's streams and exits 0.
    for _ in 0..5 {
        let mut server = Server::start();
        let status = server.stop();
        assert!(status.success(), "{status:?}");
    }
}
