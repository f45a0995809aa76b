//! Load against several csvd instances with a fault in the middle, and
//! what the writers saw: the shared part of the multi-instance tests.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Response;

/// One request; `None` when the connection failed or was cut (the outcome
/// of a write is then unknown).
pub fn try_request(
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

pub fn request(
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
pub fn ids(addr: SocketAddr, table: &str) -> BTreeSet<String> {
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
pub fn outcome_unknown(answer: &Response) -> bool {
    answer.status == 503
        && answer.text().contains("urn:csvd:problem:outcome-unknown")
        && answer.text().contains("may or may not have been applied")
}

/// What writers saw: ids acknowledged, refused, or of unknown outcome.
#[derive(Default)]
pub struct Outcomes {
    pub acked: BTreeSet<String>,
    pub refused: BTreeSet<String>,
    pub unknown: BTreeSet<String>,
}

/// Writes rows with ids of their own (`<worker>-<i>`) through `addrs` in
/// turn, recording each outcome; calls `fault` once, after `fault_after`
/// acknowledged writes.
pub fn load_with_fault(
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
pub fn assert_outcomes(addr: SocketAddr, outcomes: &Outcomes) {
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
