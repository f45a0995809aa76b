//! PostgreSQL restarted as a crash would (`pg_ctl restart -m immediate`)
//! while two csvd instances write: no acknowledged write is lost, none
//! refused is kept, and csvd recovers by itself. A binary of its own: the
//! restart cuts every connection to the cluster this binary started.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{pg, Response, Server};

/// One request; `None` when the connection failed or was cut (the outcome
/// of a write is then unknown).
fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    json: Option<&str>,
) -> Option<Response> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .ok()?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    match json {
        Some(body) => request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )),
        None => request.push_str("\r\n"),
    }
    stream.write_all(request.as_bytes()).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    if !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        return None;
    }
    let response = Response::parse(&raw, method == "HEAD");
    // A body cut short is an unknown outcome, too.
    if let Some(length) = response.header("content-length") {
        if length.parse::<usize>().ok() != Some(response.body.len()) {
            return None;
        }
    }
    Some(response)
}

fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    json: Option<&str>,
) -> Response {
    try_request(addr, method, path, headers, json)
        .unwrap_or_else(|| panic!("{method} {path}: no answer from {addr}"))
}

/// The ids of a table's rows, through one instance.
fn ids(addr: SocketAddr, table: &str) -> BTreeSet<String> {
    let answer = request(addr, "GET", &format!("/{table}"), &[], None);
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer
        .json()
        .as_array()
        .expect("an array of rows")
        .iter()
        .map(|row| match &row["id"] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// Whether a 503 says the write may have been applied.
fn outcome_unknown(answer: &Response) -> bool {
    answer.status == 503 && answer.text().contains("may or may not have been applied")
}

/// What writers saw: ids acknowledged, refused, or of unknown outcome.
#[derive(Default)]
struct Outcomes {
    acked: BTreeSet<String>,
    refused: BTreeSet<String>,
    unknown: BTreeSet<String>,
}

/// Writes rows with ids of their own (`<worker>-<i>`) through `addrs` in
/// turn, recording each outcome; calls `fault` once, after `fault_after`
/// acknowledged writes.
fn load_with_fault(
    addrs: Vec<SocketAddr>,
    writes_per_worker: usize,
    fault_after: usize,
    fault: impl FnOnce() + Send + 'static,
) -> Outcomes {
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let acked_count = Arc::new(AtomicUsize::new(0));
    let fault = Arc::new(Mutex::new(Some(fault)));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let addrs = addrs.clone();
            let outcomes = outcomes.clone();
            let acked_count = acked_count.clone();
            let fault = fault.clone();
            std::thread::spawn(move || {
                for i in 0..writes_per_worker {
                    let id = format!("w{w}-{i}");
                    let addr = addrs[(w + i) % addrs.len()];
                    let body = format!(r#"{{"id":"{id}","worker":{w}}}"#);
                    let answer = try_request(addr, "POST", "/load", &[], Some(&body));
                    let mut o = outcomes.lock().unwrap();
                    match answer {
                        Some(a) if a.status == 201 => {
                            o.acked.insert(id);
                            if acked_count.fetch_add(1, Ordering::SeqCst) + 1 == fault_after {
                                drop(o);
                                if let Some(f) = fault.lock().unwrap().take() {
                                    f();
                                }
                            }
                        }
                        Some(a) if outcome_unknown(&a) => {
                            o.unknown.insert(id);
                        }
                        Some(a) if a.status == 503 || a.status == 409 => {
                            o.refused.insert(id);
                        }
                        Some(a) => panic!("unexpected {}: {}", a.status, a.text()),
                        None => {
                            o.unknown.insert(id);
                        }
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    Arc::try_unwrap(outcomes)
        .ok()
        .expect("workers done")
        .into_inner()
        .unwrap()
}

/// Every acknowledged write is there and nothing refused is.
fn assert_outcomes(addr: SocketAddr, outcomes: &Outcomes) {
    let present = ids(addr, "load");
    let lost: Vec<_> = outcomes.acked.difference(&present).collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    let kept: Vec<_> = outcomes.refused.intersection(&present).collect();
    assert!(kept.is_empty(), "refused writes present: {kept:?}");
    let strays: Vec<_> = present
        .iter()
        .filter(|id| !outcomes.acked.contains(*id) && !outcomes.unknown.contains(*id))
        .collect();
    assert!(strays.is_empty(), "rows nobody wrote: {strays:?}");
}

#[test]
fn postgres_restarted_mid_load_loses_no_acknowledged_write_and_csvd_recovers() {
    let Some(pg) = pg::available() else { return };
    if !pg.can_restart() {
        eprintln!("SKIPPED: the PostgreSQL given by CSVD_TEST_POSTGRES cannot be restarted here");
        return;
    }
    let url = pg.fresh_database();
    let a = Server::start_source(&url, &[]);
    let b = Server::start_source(&url, &[]);
    let outcomes = load_with_fault(vec![a.addr, b.addr], 40, 30, move || {
        pg.restart_immediate();
    });
    assert!(outcomes.acked.len() >= 30);
    // Both instances answer again by themselves: no restart of csvd.
    for server in [&a, &b] {
        let mut answer = try_request(server.addr, "GET", "/load", &[], None);
        for _ in 0..100 {
            if answer.as_ref().is_some_and(|a| a.status == 200) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            answer = try_request(server.addr, "GET", "/load", &[], None);
        }
        assert_eq!(answer.map(|a| a.status), Some(200), "csvd did not recover");
    }
    assert_outcomes(a.addr, &outcomes);
    eprintln!(
        "restart: {} acknowledged, {} of unknown outcome, {} refused",
        outcomes.acked.len(),
        outcomes.unknown.len(),
        outcomes.refused.len()
    );
}
