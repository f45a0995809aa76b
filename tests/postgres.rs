//! Several csvd instances serving one PostgreSQL database: they agree on
//! every write and every ETag, concurrent conditional writes spread over
//! them lose nothing, and neither an instance killed nor the database
//! restarted mid-load loses an acknowledged write or keeps a refused one.
//! Also `csvd copy` between a data directory and a database.
//!
//! Every test here skips loudly without PostgreSQL (and fails instead when
//! `CSVD_REQUIRE_POSTGRES=1`, as in CI).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::load::{assert_outcomes, ids, load_with_fault, outcome_unknown, request};
use common::{pg, Server, BIN};

/// A database of its own for one test, or `None` (skipped, said loudly).
fn database() -> Option<String> {
    Some(pg::available()?.fresh_database())
}

#[test]
fn instances_share_writes_and_etags() {
    let Some(url) = database() else { return };
    let a = Server::start_source(&url, &[]);
    let b = Server::start_source(&url, &[]);
    let c = Server::start_source(&url, &[]);

    let made = request(
        a.addr,
        "POST",
        "/people",
        &[],
        Some(r#"{"name":"kim","zip":"007"}"#),
    );
    assert_eq!(made.status, 201, "{}", made.text());
    assert_eq!(made.header("location"), Some("/people/1"));

    // Written through A, read through B: the same row, the same ETag.
    let on_b = request(b.addr, "GET", "/people/1", &[], None);
    assert_eq!(on_b.status, 200);
    assert_eq!(on_b.json()["zip"], "007");
    let on_a = request(a.addr, "GET", "/people/1", &[], None);
    let tag = on_b.header("etag").expect("an ETag").to_string();
    assert_eq!(on_a.header("etag"), Some(tag.as_str()));

    // The ETag from B is valid at C; after that write it is stale at A.
    let changed = request(
        c.addr,
        "PATCH",
        "/people/1",
        &[("If-Match", &tag)],
        Some(r#"{"name":"lee"}"#),
    );
    assert_eq!(changed.status, 200, "{}", changed.text());
    let stale = request(
        a.addr,
        "PATCH",
        "/people/1",
        &[("If-Match", &tag)],
        Some(r#"{"name":"park"}"#),
    );
    assert_eq!(stale.status, 412, "{}", stale.text());
    assert_eq!(
        request(b.addr, "GET", "/people/1", &[], None).json()["name"],
        "lee"
    );

    // A table's ETag is the same through every instance, and 304 works
    // across them.
    let list_a = request(a.addr, "GET", "/people", &[], None);
    let table_tag = list_a.header("etag").expect("a table ETag").to_string();
    let again = request(
        c.addr,
        "GET",
        "/people",
        &[("If-None-Match", &table_tag)],
        None,
    );
    assert_eq!(again.status, 304);

    // Columns grown through one instance are there for the others.
    let grown = request(
        b.addr,
        "POST",
        "/people",
        &[],
        Some(r#"{"name":"choi","city":"Seoul"}"#),
    );
    assert_eq!(grown.status, 201);
    let csv = request(c.addr, "GET", "/people.csv", &[], None).text();
    assert_eq!(csv, "id,name,zip,city\r\n1,lee,007,\r\n2,choi,,Seoul\r\n");
}

#[test]
fn concurrent_if_match_increments_over_three_instances_lose_nothing() {
    let Some(url) = database() else { return };
    let servers: Vec<Server> = (0..3).map(|_| Server::start_source(&url, &[])).collect();
    let made = request(
        servers[0].addr,
        "PUT",
        "/counters/c",
        &[],
        Some(r#"{"n":0}"#),
    );
    assert_eq!(made.status, 201, "{}", made.text());
    const PER_WORKER: usize = 15;
    const WORKERS_PER_INSTANCE: usize = 3;
    let conflicts = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = servers
        .iter()
        .flat_map(|s| std::iter::repeat_n(s.addr, WORKERS_PER_INSTANCE))
        .map(|addr| {
            let conflicts = conflicts.clone();
            std::thread::spawn(move || {
                let mut done = 0;
                // Each increment is retried until it wins; bounded, so a
                // bug that never lets one win fails instead of hanging.
                for _ in 0..PER_WORKER * 200 {
                    if done == PER_WORKER {
                        break;
                    }
                    let current = request(addr, "GET", "/counters/c", &[], None);
                    assert_eq!(current.status, 200);
                    let tag = current.header("etag").unwrap().to_string();
                    let n = current.json()["n"].as_u64().unwrap();
                    let body = format!(r#"{{"n":{}}}"#, n + 1);
                    let put = request(
                        addr,
                        "PATCH",
                        "/counters/c",
                        &[("If-Match", &tag)],
                        Some(&body),
                    );
                    match put.status {
                        200 => done += 1,
                        412 => {
                            conflicts.fetch_add(1, Ordering::Relaxed);
                        }
                        other => panic!("unexpected {other}: {}", put.text()),
                    }
                }
                done
            })
        })
        .collect();
    let won: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let total = 3 * WORKERS_PER_INSTANCE * PER_WORKER;
    assert_eq!(won, total, "every worker finished its increments");
    for server in &servers {
        let n = request(server.addr, "GET", "/counters/c", &[], None).json()["n"].clone();
        assert_eq!(n, serde_json::json!(total), "no increment lost");
    }
    eprintln!(
        "{total} increments over 3 instances, {} refused with 412 and retried",
        conflicts.load(Ordering::Relaxed)
    );
}

#[test]
fn concurrent_posts_over_three_instances_get_distinct_ids() {
    let Some(url) = database() else { return };
    let servers: Vec<Server> = (0..3).map(|_| Server::start_source(&url, &[])).collect();
    let workers: Vec<_> = servers
        .iter()
        .flat_map(|s| std::iter::repeat_n(s.addr, 3))
        .enumerate()
        .map(|(w, addr)| {
            std::thread::spawn(move || {
                (0..20)
                    .map(|i| {
                        let body = format!(r#"{{"worker":{w},"i":{i}}}"#);
                        let made = request(addr, "POST", "/events", &[], Some(&body));
                        assert_eq!(made.status, 201, "{}", made.text());
                        made.json()["id"].to_string()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let given: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let distinct: BTreeSet<&String> = given.iter().collect();
    assert_eq!(distinct.len(), given.len(), "an id was given twice");
    assert_eq!(ids(servers[2].addr, "events").len(), 180);
    let expected: BTreeSet<String> = (1..=180).map(|n| n.to_string()).collect();
    assert_eq!(ids(servers[1].addr, "events"), expected);
}

#[test]
fn an_instance_killed_mid_load_loses_no_acknowledged_write() {
    let Some(url) = database() else { return };
    let victim = Server::start_source(&url, &[]);
    let survivor = Server::start_source(&url, &[]);
    let pid = victim.child.id();
    let outcomes = load_with_fault(vec![victim.addr, survivor.addr], 40, 30, move || {
        let status = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    });
    assert!(outcomes.acked.len() >= 30, "the load ran before the kill");
    assert_outcomes(survivor.addr, &outcomes);
    // The survivor still writes.
    let after = request(
        survivor.addr,
        "POST",
        "/load",
        &[],
        Some(r#"{"id":"after"}"#),
    );
    assert_eq!(after.status, 201, "{}", after.text());
    eprintln!(
        "kill: {} acknowledged, {} of unknown outcome, {} refused",
        outcomes.acked.len(),
        outcomes.unknown.len(),
        outcomes.refused.len()
    );
}

/// A TCP relay between csvd and PostgreSQL that the test can cut: while
/// it is down, every connection through it is closed and new ones are
/// closed at once, as when the database is away.
struct Relay {
    port: u16,
    down: Arc<std::sync::atomic::AtomicBool>,
    /// While set, bytes are held, not passed on: a database that stopped
    /// answering without closing anything.
    frozen: Arc<std::sync::atomic::AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn to(target: SocketAddr) -> Relay {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let frozen = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let streams: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (d, s, f) = (down.clone(), streams.clone(), frozen.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if d.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let mut held = s.lock().unwrap();
                held.push(client.try_clone().unwrap());
                held.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let f = f.clone();
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            // Held while frozen (checked every 10 ms).
                            while f.load(Ordering::SeqCst) {
                                std::thread::sleep(Duration::from_millis(10));
                            }
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Relay {
            port,
            down,
            frozen,
            streams,
        }
    }

    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for stream in self.streams.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    fn mend(&self) {
        self.down.store(false, Ordering::SeqCst);
    }

    fn freeze(&self, frozen: bool) {
        self.frozen.store(frozen, Ordering::SeqCst);
    }
}

#[test]
fn the_database_away_is_503_with_retry_after_and_csvd_recovers() {
    let Some(url) = database() else { return };
    // csvd refuses to start on a database it cannot reach, saying why.
    let missing = url
        .rsplit_once('/')
        .map(|(base, _)| format!("{base}/no_such_db"))
        .unwrap();
    let started = Command::new(BIN)
        .args(["serve", &missing, "--bind", "127.0.0.1:0"])
        .output()
        .expect("run csvd");
    assert!(
        !started.status.success(),
        "csvd must not start on a database it cannot reach"
    );
    let said = String::from_utf8_lossy(&started.stderr);
    assert!(
        said.contains("cannot connect") && said.contains("no_such_db"),
        "{said}"
    );

    // postgres://user@127.0.0.1:PORT/db, through the relay.
    let (head, rest) = url.rsplit_once('@').unwrap();
    let (host_port, db) = rest.split_once('/').unwrap();
    let relay = Relay::to(host_port.parse().unwrap());
    let relayed = format!("{head}@127.0.0.1:{}/{db}", relay.port);
    let server = Server::start_source(&relayed, &[]);
    let first = request(server.addr, "POST", "/t", &[], Some(r#"{"a":"1"}"#));
    assert_eq!(first.status, 201, "{}", first.text());
    assert_eq!(request(server.addr, "GET", "/t/1", &[], None).status, 200);

    relay.cut();
    let row = request(server.addr, "GET", "/t/1", &[], None);
    assert_eq!(row.status, 503, "{}", row.text());
    let read = request(server.addr, "GET", "/t", &[], None);
    assert_eq!(read.status, 503, "{}", read.text());
    assert!(read.header("retry-after").is_some());
    assert!(read.text().contains("database"), "{}", read.text());
    let write = request(server.addr, "POST", "/t", &[], Some(r#"{"a":"2"}"#));
    assert_eq!(write.status, 503, "{}", write.text());
    assert!(
        !outcome_unknown(&write),
        "refused before its transaction began"
    );

    relay.mend();
    // Back by itself, without a restart of csvd: the first request after
    // the database returns is answered.
    let back = request(server.addr, "GET", "/t", &[], None);
    assert_eq!(back.status, 200, "{}", back.text());
    // The write refused while the database was away is not there.
    assert_eq!(back.json().as_array().unwrap().len(), 1);
    assert_eq!(request(server.addr, "GET", "/t/1", &[], None).status, 200);
    let again = request(server.addr, "POST", "/t", &[], Some(r#"{"a":"3"}"#));
    assert_eq!(again.status, 201, "{}", again.text());
}

#[test]
fn copy_moves_a_data_directory_in_and_back_out() {
    let Some(url) = database() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("people.csv"),
        "id,name,zip\n1,kim,007\n7,lee,\n3,\"park, jr\",01234\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.csv"), "text\nhello\nworld\n").unwrap();
    let copied = Command::new(BIN)
        .args(["copy", dir.path().to_str().unwrap(), &url])
        .output()
        .expect("csvd copy");
    assert!(
        copied.status.success(),
        "{}",
        String::from_utf8_lossy(&copied.stderr)
    );
    let said = String::from_utf8_lossy(&copied.stderr);
    assert!(said.contains("2 tables (5 rows)"), "{said}");

    let server = Server::start_source(&url, &[]);
    // Ids, order, leading zeros and quoting as they were; the table without
    // ids got them.
    assert_eq!(
        request(server.addr, "GET", "/people.csv", &[], None).text(),
        "id,name,zip\r\n1,kim,007\r\n7,lee,\r\n3,\"park, jr\",01234\r\n"
    );
    assert_eq!(
        request(server.addr, "GET", "/notes.csv", &[], None).text(),
        "id,text\r\n1,hello\r\n2,world\r\n"
    );
    // Writes go on from there: the next id follows the largest.
    let next = request(
        server.addr,
        "POST",
        "/people",
        &[],
        Some(r#"{"name":"choi"}"#),
    );
    assert_eq!(next.json()["id"], 8);

    let back = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args([
            "copy",
            &url,
            back.path().to_str().unwrap(),
            "--tables",
            "people",
        ])
        .output()
        .expect("csvd copy back");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = std::fs::read_to_string(back.path().join("people.csv")).unwrap();
    assert_eq!(
        file,
        "id,name,zip\n1,kim,007\n7,lee,\n3,\"park, jr\",01234\n8,choi,\n"
    );
    assert!(!back.path().join("notes.csv").exists());

    // Database to database, the same rows and order.
    let other = pg::available().unwrap().fresh_database();
    let out = Command::new(BIN)
        .args(["copy", &url, &other, "--batch", "2"])
        .output()
        .expect("csvd copy between databases");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second = Server::start_source(&other, &[]);
    assert_eq!(
        request(second.addr, "GET", "/people.csv", &[], None).text(),
        request(server.addr, "GET", "/people.csv", &[], None).text()
    );

    // A table that is not there is a clear error.
    let missing = Command::new(BIN)
        .args([
            "copy",
            &url,
            back.path().to_str().unwrap(),
            "--tables",
            "nope",
        ])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no table \"nope\""));
}

#[test]
fn hostile_column_names_and_values_are_data() {
    let Some(url) = database() else { return };
    let server = Server::start_source(&url, &[]);
    let long = "x".repeat(300);
    let body = serde_json::json!({
        "\"; DROP TABLE csvd_rows; --": "'); DELETE FROM csvd_tables; --",
        "a b,c": "$1",
        long.as_str(): "long",
        "cells[1]": "🙂",
    })
    .to_string();
    let made = request(server.addr, "POST", "/evil", &[], Some(&body));
    assert_eq!(made.status, 201, "{}", made.text());
    let row = request(server.addr, "GET", "/evil/1", &[], None).json();
    assert_eq!(
        row["\"; DROP TABLE csvd_rows; --"],
        "'); DELETE FROM csvd_tables; --"
    );
    assert_eq!(row[long.as_str()], "long");
    assert_eq!(row["cells[1]"], "🙂");
    let found = request(
        server.addr,
        "GET",
        "/evil?a%20b%2Cc=%241&cells%5B1%5D_ne=x",
        &[],
        None,
    );
    assert_eq!(found.status, 200, "{}", found.text());
    assert_eq!(found.header("x-total-count"), Some("1"));
    let columns: BTreeMap<String, serde_json::Value> =
        serde_json::from_value(found.json()[0].clone()).unwrap();
    assert_eq!(columns.len(), 5);
}

#[test]
fn concurrent_inserts_batched_together_are_refused_one_by_one() {
    let Some(url) = database() else { return };
    let server = Server::start_source(&url, &[]);
    let addr = server.addr;
    // Sixteen writers at once: half give the same id, half none. Inserts
    // that arrive together share a transaction; a taken id must refuse
    // only its own insert.
    let writers: Vec<_> = (0..16)
        .map(|w| {
            std::thread::spawn(move || {
                let body = if w % 2 == 0 {
                    format!(r#"{{"id":"dup","w":{w}}}"#)
                } else {
                    format!(r#"{{"w":{w}}}"#)
                };
                request(addr, "POST", "/batch", &[], Some(&body)).status
            })
        })
        .collect();
    let statuses: Vec<u16> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    let created = statuses.iter().filter(|s| **s == 201).count();
    let taken = statuses.iter().filter(|s| **s == 409).count();
    assert_eq!((created, taken), (9, 7), "{statuses:?}");
    let present = ids(addr, "batch");
    assert_eq!(present.len(), 9);
    assert!(present.contains("dup"));
    let metrics = request(addr, "GET", "/_metrics", &[], None).text();
    assert!(
        metrics.contains("csvd_postgres_insert_batches_total"),
        "{metrics}"
    );
}

#[test]
fn database_url_and_the_postgresql_scheme_name_the_database() {
    let Some(url) = database() else { return };
    let server = Server::start_source(&url, &[]);
    let made = request(server.addr, "POST", "/seen", &[], Some(r#"{"by":"url"}"#));
    assert_eq!(made.status, 201);
    // `DATABASE_URL`, with `postgresql://`, when no data directory is given.
    let twin = url.replacen("postgres://", "postgresql://", 1);
    let work = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--bind", "127.0.0.1:0", "--log-level", "warn"])
        .env("DATABASE_URL", &twin)
        .env_remove("CSVD_DATA_DIR")
        .current_dir(work.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start csvd");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let addr: SocketAddr = line.trim().rsplit("://").next().unwrap().parse().unwrap();
    let seen = request(addr, "GET", "/seen/1", &[], None);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(seen.status, 200, "{}", seen.text());
    assert_eq!(seen.json()["by"], "url");
    // Nothing was made in the working directory: no `data` directory.
    assert!(!work.path().join("data").exists());
}

#[test]
fn a_database_that_stops_answering_is_503_within_the_deadline() {
    let Some(url) = database() else { return };
    let (head, rest) = url.rsplit_once('@').unwrap();
    let (host_port, db) = rest.split_once('/').unwrap();
    let relay = Relay::to(host_port.parse().unwrap());
    let relayed = format!("{head}@127.0.0.1:{}/{db}", relay.port);
    let server = Server::start_source(&relayed, &["--db-timeout", "1", "--db-connections", "2"]);
    let first = request(server.addr, "POST", "/t", &[], Some(r#"{"a":"1"}"#));
    assert_eq!(first.status, 201, "{}", first.text());

    // Nothing comes back, nothing is closed: every request still ends,
    // 503 after the deadline, and a write says its outcome is unknown.
    relay.freeze(true);
    let read = request(server.addr, "GET", "/t", &[], None);
    assert_eq!(read.status, 503, "{}", read.text());
    assert!(
        read.text().contains("did not answer within 1 s"),
        "{}",
        read.text()
    );
    assert!(read.header("retry-after").is_some());
    let write = request(server.addr, "POST", "/t", &[], Some(r#"{"a":"2"}"#));
    assert_eq!(write.status, 503, "{}", write.text());
    assert!(outcome_unknown(&write), "{}", write.text());
    relay.freeze(false);

    // Answers again once the database does; the write that timed out was
    // either applied or not, never half.
    let mut rows = None;
    for _ in 0..100 {
        let answer = request(server.addr, "GET", "/t", &[], None);
        if answer.status == 200 {
            rows = Some(answer.json().as_array().unwrap().len());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let rows = rows.expect("csvd answers again");
    assert!(rows == 1 || rows == 2, "{rows} rows");
}

#[test]
fn a_user_who_may_not_create_tables_is_told_what_csvd_needs() {
    let Some(pg) = pg::available() else { return };
    let url = pg.fresh_database();
    let user = format!("csvd_guest_{}", std::process::id());
    pg.psql(&url, &format!("CREATE USER \"{user}\""));
    pg.psql(&url, "REVOKE CREATE ON SCHEMA public FROM PUBLIC");
    let (_, rest) = url.split_once("://").unwrap();
    let (_, host_db) = rest.split_once('@').unwrap();
    let guest = format!("postgres://{user}@{host_db}");
    let out = Command::new(BIN)
        .args(["serve", &guest, "--bind", "127.0.0.1:0"])
        .output()
        .expect("run csvd");
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("permission denied"), "{said}");
    assert!(said.contains("give its user CREATE"), "{said}");
}

#[test]
fn a_database_not_in_utf8_is_refused_with_the_reason() {
    let Some(pg) = pg::available() else { return };
    let url = pg.fresh_database();
    let name = format!("csvd_latin_{}", std::process::id());
    pg.psql(
        &url,
        &format!(
            "CREATE DATABASE \"{name}\" ENCODING 'LATIN1' TEMPLATE template0 \
             LC_COLLATE 'C' LC_CTYPE 'C'"
        ),
    );
    let latin = format!("{}/{name}", url.rsplit_once('/').unwrap().0);
    let out = Command::new(BIN)
        .args(["serve", &latin, "--bind", "127.0.0.1:0"])
        .output()
        .expect("run csvd");
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("encoding is LATIN1") && said.contains("UTF8"),
        "{said}"
    );
}

#[test]
fn writes_keep_working_on_a_database_whose_default_is_serializable() {
    let Some(url) = database() else { return };
    let db = url.rsplit_once('/').unwrap().1.to_string();
    pg::available().unwrap().psql(
        &url,
        &format!("ALTER DATABASE \"{db}\" SET default_transaction_isolation = 'serializable'"),
    );
    let servers: Vec<Server> = (0..2).map(|_| Server::start_source(&url, &[])).collect();
    let made = request(servers[0].addr, "PUT", "/s/1", &[], Some(r#"{"n":"0"}"#));
    assert_eq!(made.status, 201, "{}", made.text());
    // Writers on both instances at once, to one table: none is refused.
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let addr = servers[w % 2].addr;
            std::thread::spawn(move || {
                (0..10)
                    .map(|i| {
                        let post = request(addr, "POST", "/s", &[], Some(r#"{"n":"1"}"#));
                        let body = format!(r#"{{"n":"{w}-{i}"}}"#);
                        let patch = request(addr, "PATCH", "/s/1", &[], Some(&body));
                        (post.status, patch.status)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for writer in writers {
        for (post, patch) in writer.join().unwrap() {
            assert_eq!((post, patch), (201, 200));
        }
    }
    assert_eq!(ids(servers[1].addr, "s").len(), 81);
}
