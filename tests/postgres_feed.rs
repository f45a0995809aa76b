//! The change feed on PostgreSQL: every instance on one database numbers
//! changes in one order, gap-free, each change once, and follows every
//! other instance's changes.
//!
//! Every test here skips loudly without PostgreSQL (and fails instead when
//! `CSVD_REQUIRE_POSTGRES=1`, as in CI). The test that restarts the
//! database runs alone (it cuts every connection to the cluster).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use common::load::{request, try_request};
use common::{pg, Server};

/// Held shared by every test, and alone by the one restarting the cluster.
static CLUSTER: RwLock<()> = RwLock::new(());

/// A database of its own for one test, or `None` (skipped, said loudly).
fn database() -> Option<(String, RwLockReadGuard<'static, ()>)> {
    let pg = pg::available()?;
    let guard = CLUSTER.read().unwrap_or_else(|e| e.into_inner());
    Some((pg.fresh_database(), guard))
}

/// How long a test waits for a change to reach another instance, at most.
const DEADLINE: Duration = Duration::from_secs(30);

/// One change as the feed shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    seq: u64,
    op: String,
    id: String,
    row: serde_json::Value,
}

fn seen(change: &serde_json::Value) -> Seen {
    Seen {
        seq: change["seq"].as_u64().expect("a seq"),
        op: change["op"].as_str().expect("an op").to_string(),
        id: change["id"].as_str().unwrap_or_default().to_string(),
        row: change["row"].clone(),
    }
}

/// One JSON answer of the feed of `table` after `since`.
fn feed_once(addr: SocketAddr, table: &str, since: u64) -> (Vec<Seen>, u64) {
    let answer = request(
        addr,
        "GET",
        &format!("/_changes/{table}?since={since}"),
        &[],
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    let json = answer.json();
    let results = json["results"].as_array().expect("results");
    (
        results.iter().map(seen).collect(),
        json["last_seq"].as_u64().expect("last_seq"),
    )
}

/// Every change of `table` after `since`, through `addr`, until `count`
/// of them came (within the deadline; fails otherwise).
fn feed_until(addr: SocketAddr, table: &str, since: u64, count: usize) -> Vec<Seen> {
    let start = Instant::now();
    let mut got: Vec<Seen> = Vec::new();
    let mut at = since;
    loop {
        let (changes, last) = feed_once(addr, table, at);
        got.extend(changes);
        at = last.max(at);
        if got.len() >= count {
            return got;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{} of {count} changes after {since} reached {addr} in {DEADLINE:?}: {got:?}",
            got.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A Server-Sent Events subscription, read as a client would.
struct Events {
    reader: BufReader<TcpStream>,
    /// Decoded body bytes not yet split into events.
    pending: Vec<u8>,
}

impl Events {
    fn open(addr: SocketAddr, path: &str) -> Events {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("a head");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push_str(&line);
        }
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let lower = head.to_ascii_lowercase();
        assert!(lower.contains("text/event-stream"), "{head}");
        assert!(lower.contains("transfer-encoding: chunked"), "{head}");
        Events {
            reader,
            pending: Vec::new(),
        }
    }

    /// The next change event (comments and heartbeats skipped).
    fn next(&mut self) -> Seen {
        loop {
            if let Some(end) = self.pending.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = self.pending.drain(..end + 2).collect();
                let event = String::from_utf8(event).expect("UTF-8");
                let mut id = None;
                let mut data = None;
                for line in event.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = Some(v.parse::<u64>().expect("a numbered id"));
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = Some(v.to_string());
                    }
                }
                if let (Some(id), Some(data)) = (id, data) {
                    let change = seen(&serde_json::from_str(&data).expect("JSON data"));
                    assert_eq!(change.seq, id, "the event's id is its seq");
                    return change;
                }
                assert!(!event.contains("event: end"), "the stream ended: {event}");
                continue;
            }
            // One chunk of the body.
            let mut size = String::new();
            self.reader.read_line(&mut size).expect("a chunk size");
            let size = usize::from_str_radix(size.trim(), 16).expect("a chunk size");
            assert!(size > 0, "the stream ended");
            let mut chunk = vec![0; size + 2];
            self.reader.read_exact(&mut chunk).expect("a chunk");
            chunk.truncate(size);
            self.pending.extend(chunk);
        }
    }
}

fn ops(changes: &[Seen]) -> Vec<(String, String)> {
    changes
        .iter()
        .map(|c| (c.op.clone(), c.id.clone()))
        .collect()
}

/// Sequence numbers follow one another from `first`.
fn assert_numbered_from(changes: &[Seen], first: u64) {
    let seqs: Vec<u64> = changes.iter().map(|c| c.seq).collect();
    let want: Vec<u64> = (first..first + changes.len() as u64).collect();
    assert_eq!(seqs, want);
}

/// A write that must succeed, retried while the database comes back (503).
fn write_retrying(addr: SocketAddr, method: &str, path: &str, json: &str) -> u16 {
    let start = Instant::now();
    loop {
        if let Some(answer) = try_request(addr, method, path, &[], Some(json)) {
            if answer.status < 300 {
                return answer.status;
            }
            assert_eq!(answer.status, 503, "{}", answer.text());
            // A 503 during COMMIT may or may not have been applied: this
            // test's writes are PUTs, the same however often repeated.
            assert_eq!(method, "PUT");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the database did not come back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `(first, n)` of every row of `csvd_changes`, in order.
fn recorded(url: &str) -> Vec<(u64, u64)> {
    let pg = pg::available().expect("a PostgreSQL");
    pg.psql(url, "SELECT first, n FROM csvd_changes ORDER BY first")
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (first, n) = line.split_once('|').expect("first|n");
            (first.parse().unwrap(), n.parse().unwrap())
        })
        .collect()
}

/// Asserts the rows number changes 1, 2, … with no gap and none twice, and
/// returns how many changes they hold.
fn assert_gap_free(rows: &[(u64, u64)]) -> u64 {
    let mut next = 1;
    for &(first, n) in rows {
        assert_eq!(first, next, "a gap or an overlap before {first}: {rows:?}");
        assert!(n >= 1);
        next = first + n;
    }
    next - 1
}

/// Writes of every kind through one instance, from one thread; returns the
/// changes acknowledged (a refused write is none).
fn writes(addr: SocketAddr, who: usize, rounds: usize) -> u64 {
    let mut changes = 0;
    for round in 0..rounds {
        let id = format!("w{who}-{round}");
        let made = request(
            addr,
            "PUT",
            &format!("/people/{id}"),
            &[],
            Some(r#"{"name":"kim"}"#),
        );
        assert!(made.status == 201 || made.status == 200, "{}", made.text());
        changes += 1;
        let posted = request(addr, "POST", "/people", &[], Some(r#"{"name":"lee"}"#));
        assert_eq!(posted.status, 201, "{}", posted.text());
        changes += 1;
        let patched = request(
            addr,
            "PATCH",
            &format!("/people/{id}"),
            &[],
            Some(r#"{"city":"Seoul"}"#),
        );
        assert_eq!(patched.status, 200, "{}", patched.text());
        changes += 1;
        // Refused: numbers nothing.
        let stale = request(
            addr,
            "PATCH",
            &format!("/people/{id}"),
            &[("If-Match", "\"stale\"")],
            Some(r#"{"city":"Busan"}"#),
        );
        assert_eq!(stale.status, 412, "{}", stale.text());
        if round % 2 == 0 {
            let gone = request(addr, "DELETE", &format!("/people/{id}"), &[], None);
            assert_eq!(gone.status, 204, "{}", gone.text());
            changes += 1;
        }
    }
    changes
}

#[test]
fn concurrent_writers_on_two_instances_number_changes_gap_free_each_once() {
    let Some((url, _cluster)) = database() else {
        return;
    };
    let a = Server::start_source(&url, &[]);
    let b = Server::start_source(&url, &[]);
    let threads: Vec<_> = (0..6)
        .map(|who| {
            let addr = if who % 2 == 0 { a.addr } else { b.addr };
            std::thread::spawn(move || writes(addr, who, 12))
        })
        .collect();
    let acknowledged: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    // A bulk insert is one row of changes holding each of its rows.
    let bulk = request(
        a.addr,
        "POST",
        "/people",
        &[],
        Some(r#"[{"name":"a"},{"name":"b"},{"name":"c"}]"#),
    );
    assert_eq!(bulk.status, 201, "{}", bulk.text());
    let rows = recorded(&url);
    assert_eq!(assert_gap_free(&rows), acknowledged + 3);
    assert_eq!(rows.last().unwrap().1, 3);
    let pg = pg::available().unwrap();
    let next = pg.psql(&url, "SELECT next FROM csvd_feed");
    assert_eq!(next.trim(), (acknowledged + 4).to_string());
    // Both instances' feeds hold every change once, in the same order.
    let total = (acknowledged + 3) as usize;
    let on_a = feed_until(a.addr, "people", 0, total);
    let on_b = feed_until(b.addr, "people", 0, total);
    assert_numbered_from(&on_a, 1);
    assert_eq!(on_a, on_b);
    assert_eq!(on_a.len(), total);
}

#[test]
fn a_database_of_the_previous_schema_is_upgraded_in_place() {
    let Some((url, _cluster)) = database() else {
        return;
    };
    let pg = pg::available().unwrap();
    {
        let a = Server::start_source(&url, &[]);
        let made = request(a.addr, "POST", "/people", &[], Some(r#"{"name":"kim"}"#));
        assert_eq!(made.status, 201);
    }
    // As the version before the feed left it.
    pg.psql(
        &url,
        "DROP TABLE csvd_feed, csvd_changes; \
         UPDATE csvd_meta SET value = '1' WHERE key = 'schema'",
    );
    let a = Server::start_source(&url, &[]);
    assert_eq!(request(a.addr, "GET", "/people/1", &[], None).status, 200);
    let made = request(a.addr, "POST", "/people", &[], Some(r#"{"name":"lee"}"#));
    assert_eq!(made.status, 201, "{}", made.text());
    assert_eq!(recorded(&url), [(1, 1)]);
    assert_eq!(
        pg.psql(&url, "SELECT value FROM csvd_meta WHERE key = 'schema'")
            .trim(),
        "2"
    );
}

#[test]
fn a_subscriber_on_one_instance_sees_writes_through_another_in_order() {
    let Some((url, _cluster)) = database() else {
        return;
    };
    let a = Server::start_source(&url, &[]);
    let b = Server::start_source(&url, &[]);
    let mut events = Events::open(b.addr, "/_changes/people");
    let made = request(
        a.addr,
        "POST",
        "/people",
        &[],
        Some(r#"{"name":"kim","note":"a\u0000b"}"#),
    );
    assert_eq!(made.status, 201, "{}", made.text());
    let put = request(a.addr, "PUT", "/people/x", &[], Some(r#"{"name":"lee"}"#));
    assert_eq!(put.status, 201, "{}", put.text());
    let patched = request(
        a.addr,
        "PATCH",
        "/people/1",
        &[],
        Some(r#"{"city":"Seoul"}"#),
    );
    assert_eq!(patched.status, 200, "{}", patched.text());
    let gone = request(a.addr, "DELETE", "/people/x", &[], None);
    assert_eq!(gone.status, 204, "{}", gone.text());
    // Through the instance written to, at once: a write is answered once
    // its change is in that instance's feed.
    let (on_a, last) = feed_once(a.addr, "people", 0);
    let want = [
        ("insert", "1"),
        ("insert", "x"),
        ("update", "1"),
        ("delete", "x"),
    ]
    .map(|(op, id)| (op.to_string(), id.to_string()));
    assert_eq!(ops(&on_a), want);
    assert_numbered_from(&on_a, 1);
    assert_eq!(last, 4);
    assert_eq!(on_a[0].row["note"], "a\u{0}b");
    assert_eq!(on_a[2].row["city"], "Seoul");
    assert_eq!(on_a[2].row["name"], "kim");
    // The subscriber on the other instance: the same changes, the same
    // numbers, in order.
    let streamed: Vec<Seen> = (0..4).map(|_| events.next()).collect();
    assert_eq!(streamed, on_a);
    assert_eq!(feed_until(b.addr, "people", 0, 4), on_a);
    // Table changes too.
    let replaced = request(
        a.addr,
        "PUT",
        "/people",
        &[],
        Some(r#"[{"id":"7","name":"park"}]"#),
    );
    assert!(replaced.status < 300, "{}", replaced.text());
    let dropped = request(a.addr, "DELETE", "/people", &[], None);
    assert_eq!(dropped.status, 204, "{}", dropped.text());
    let tables: Vec<Seen> = (0..2).map(|_| events.next()).collect();
    assert_eq!(
        tables
            .iter()
            .map(|c| (c.seq, c.op.as_str()))
            .collect::<Vec<_>>(),
        [(5, "replace_table"), (6, "delete_table")]
    );
}

#[test]
fn an_instance_restarted_resumes_with_nothing_missing_or_repeated() {
    let Some((url, _cluster)) = database() else {
        return;
    };
    let a = Server::start_source(&url, &[]);
    let mut b = Server::start_source(&url, &[]);
    for i in 0..5 {
        let made = request(
            a.addr,
            "PUT",
            &format!("/people/{i}"),
            &[],
            Some(r#"{"n":"1"}"#),
        );
        assert_eq!(made.status, 201);
    }
    let before = feed_until(b.addr, "people", 0, 5);
    let resume_at = before.last().unwrap().seq;
    assert!(b.stop().success());
    for i in 5..10 {
        let made = request(
            a.addr,
            "PUT",
            &format!("/people/{i}"),
            &[],
            Some(r#"{"n":"2"}"#),
        );
        assert_eq!(made.status, 201);
    }
    b.restart_after_crash();
    // What was written while it was away, once each; and all of it from
    // the start, loaded from the database.
    let after = feed_until(b.addr, "people", resume_at, 5);
    assert_numbered_from(&after, resume_at + 1);
    assert_eq!(after.len(), 5);
    let ids: Vec<&str> = after.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["5", "6", "7", "8", "9"]);
    let all = feed_until(b.addr, "people", 0, 10);
    assert_eq!(all.len(), 10);
    assert_eq!(all, feed_until(a.addr, "people", 0, 10));
    // New numbers go on after the old ones, through the restarted instance.
    let made = request(b.addr, "PUT", "/people/new", &[], Some(r#"{"n":"3"}"#));
    assert_eq!(made.status, 201);
    let (latest, last) = feed_once(b.addr, "people", 10);
    assert_eq!(last, 11);
    assert_eq!(ops(&latest), [("insert".to_string(), "new".to_string())]);
}

#[test]
fn the_feed_survives_the_database_restarting() {
    let Some(pg) = pg::available() else { return };
    if !pg.can_restart() {
        eprintln!("SKIPPED: the PostgreSQL given by CSVD_TEST_POSTGRES cannot be restarted here");
        return;
    }
    let _alone = CLUSTER.write().unwrap_or_else(|e| e.into_inner());
    let url = pg.fresh_database();
    let a = Server::start_source(&url, &[]);
    let b = Server::start_source(&url, &[]);
    let mut events = Events::open(b.addr, "/_changes/people");
    for i in 0..3 {
        assert_eq!(
            write_retrying(a.addr, "PUT", &format!("/people/{i}"), r#"{"n":"1"}"#),
            201
        );
    }
    pg.restart_immediate();
    for i in 3..6 {
        let status = write_retrying(a.addr, "PUT", &format!("/people/{i}"), r#"{"n":"1"}"#);
        assert!(status == 201 || status == 200);
    }
    // The subscriber that stayed connected through the restart gets every
    // change once, in order; so does a reader of either instance.
    let mut streamed: Vec<Seen> = (0..6).map(|_| events.next()).collect();
    // A PUT repeated after a 503 of unknown outcome is a second change.
    let total: usize = pg
        .psql(&url, "SELECT next - 1 FROM csvd_feed")
        .trim()
        .parse()
        .unwrap();
    streamed.extend((6..total).map(|_| events.next()));
    assert_numbered_from(&streamed, 1);
    let ids: Vec<&str> = streamed.iter().map(|c| c.id.as_str()).collect();
    for i in 0..6 {
        assert!(ids.contains(&i.to_string().as_str()), "{ids:?}");
    }
    assert_eq!(feed_until(b.addr, "people", 0, total), streamed);
    assert_eq!(feed_until(a.addr, "people", 0, total), streamed);
}

#[test]
fn old_changes_are_pruned_beyond_the_newest_kept() {
    let Some((url, _cluster)) = database() else {
        return;
    };
    let pg = pg::available().unwrap();
    let a = Server::start_source(&url, &["--changes-keep", "10"]);
    let b = Server::start_source(&url, &["--changes-keep", "10"]);
    for i in 0..5 {
        let made = request(
            a.addr,
            "PUT",
            &format!("/people/{i}"),
            &[],
            Some(r#"{"n":"1"}"#),
        );
        assert_eq!(made.status, 201);
    }
    // As if written long ago; the newest changes are kept however old.
    pg.psql(
        &url,
        "UPDATE csvd_changes SET at = now() - interval '1 hour'",
    );
    let rows: Vec<String> = (0..1000).map(|i| format!(r#"{{"name":"n{i}"}}"#)).collect();
    let bulk = request(
        a.addr,
        "POST",
        "/people",
        &[],
        Some(&format!("[{}]", rows.join(","))),
    );
    assert_eq!(bulk.status, 201, "{}", bulk.text());
    // A thousand changes read by the other instance's listener: it prunes.
    assert_eq!(feed_until(b.addr, "people", 5, 1000).len(), 1000);
    let start = Instant::now();
    loop {
        let left = recorded(&url);
        if left.len() == 1 {
            assert_eq!(left, [(6, 1000)]);
            break;
        }
        assert!(start.elapsed() < DEADLINE, "not pruned: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A new instance starts from what is kept, numbering on.
    let c = Server::start_source(&url, &["--changes-keep", "10"]);
    let made = request(c.addr, "PUT", "/people/late", &[], Some(r#"{"n":"2"}"#));
    assert_eq!(made.status, 201);
    let (latest, last) = feed_once(c.addr, "people", 1005);
    assert_eq!(last, 1006);
    assert_eq!(ops(&latest), [("insert".to_string(), "late".to_string())]);
    let gone = request(c.addr, "GET", "/_changes/people?since=0", &[], None);
    assert_eq!(gone.status, 410, "{}", gone.text());
}
