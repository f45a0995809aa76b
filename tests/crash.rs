//! The crash harness: writers POST rows and PUT rising versions while the
//! server is killed with SIGKILL, cycle after cycle. After every restart,
//! every acknowledged write must be there with its exact content, no row may
//! be duplicated, and every CSV file must parse.
//!
//! `cargo test` runs a few cycles; `scripts/crash-test` runs many
//! (`CSVD_CRASH_CYCLES`, `CSVD_CRASH_SEED`).

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use common::Server;
use common::{env_or, Lcg};
use serde_json::{json, Value};

const POSTERS: usize = 3;
const PUTTERS: usize = 2;
/// A text with every character CSV must quote, to check exact content.
const TEXT: &str = "comma, \"quote\"\nnew line; ünï";

#[derive(Default)]
struct Ledger {
    /// Acknowledged POSTs: marker → id the server gave.
    posted: HashMap<String, u64>,
    /// Per PUT key: highest acknowledged and highest attempted version.
    put_acked: HashMap<String, u64>,
    put_tried: HashMap<String, u64>,
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let cycles = env_or("CSVD_CRASH_CYCLES", 4);
    let mut rng = Lcg(env_or("CSVD_CRASH_SEED", 7));
    // Checkpoint as soon as writes pause, so kills also land mid-checkpoint.
    let mut server = Server::start_with(&["--checkpoint-after", "0"]);
    let ledger = Mutex::new(Ledger::default());
    let mut sequence = 0u64;
    for cycle in 0..cycles {
        let kill_after = 20 + rng.next(120) as usize;
        let acked = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let addr = server.addr;
        let pid = server.child.id().to_string();
        std::thread::scope(|scope| {
            for t in 0..POSTERS {
                let (ledger, acked, stop) = (&ledger, &acked, &stop);
                scope.spawn(move || {
                    for i in 0.. {
                        if stop.load(Ordering::Acquire) {
                            break;
                        }
                        let marker = format!("c{cycle}-t{t}-{i}");
                        let body = json!({"marker": marker, "text": TEXT}).to_string();
                        let Some(r) = try_request(addr, "POST", "/rows", &body) else {
                            break;
                        };
                        assert_eq!(r.status, 201, "{}", r.text());
                        let id = r.json()["id"].as_u64().expect("numeric id");
                        ledger.lock().unwrap().posted.insert(marker, id);
                        acked.fetch_add(1, Ordering::AcqRel);
                    }
                });
            }
            for t in 0..PUTTERS {
                let (ledger, acked, stop) = (&ledger, &acked, &stop);
                let base = sequence;
                scope.spawn(move || {
                    let key = format!("k{t}");
                    for version in base + 1.. {
                        if stop.load(Ordering::Acquire) {
                            break;
                        }
                        ledger
                            .lock()
                            .unwrap()
                            .put_tried
                            .insert(key.clone(), version);
                        let body = json!({"n": version}).to_string();
                        let Some(r) = try_request(addr, "PUT", &format!("/versions/{key}"), &body)
                        else {
                            break;
                        };
                        assert!(r.status == 200 || r.status == 201, "{}", r.text());
                        ledger
                            .lock()
                            .unwrap()
                            .put_acked
                            .insert(key.clone(), version);
                        acked.fetch_add(1, Ordering::AcqRel);
                    }
                });
            }
            while acked.load(Ordering::Acquire) < kill_after {
                std::thread::yield_now();
            }
            let killed = std::process::Command::new("kill")
                .args(["-KILL", &pid])
                .status();
            assert!(killed.expect("run kill").success());
            stop.store(true, Ordering::Release);
        });
        server.child.wait().expect("reap");
        sequence += 1_000_000;
        files_parse(&server);
        server.restart_after_crash();
        check(&server, &ledger.lock().unwrap(), cycle);
    }
    let status = server.stop();
    assert!(status.success());
    files_parse(&server);
}

/// A request that may fail because the server was killed under it.
fn try_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> Option<common::Response> {
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    use std::io::{Read, Write};
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    if !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        return None;
    }
    Some(common::Response::parse(&raw, false))
}

fn check(server: &Server, ledger: &Ledger, cycle: u64) {
    let rows = server.get("/rows");
    assert_eq!(rows.status, 200, "cycle {cycle}: {}", rows.text());
    let mut by_marker: HashMap<String, Vec<Value>> = HashMap::new();
    for row in rows.json().as_array().unwrap() {
        let marker = row["marker"].as_str().unwrap().to_string();
        by_marker.entry(marker).or_default().push(row.clone());
    }
    for (marker, rows) in &by_marker {
        assert_eq!(rows.len(), 1, "cycle {cycle}: {marker} is duplicated");
    }
    for (marker, id) in &ledger.posted {
        let row = by_marker
            .get(marker)
            .unwrap_or_else(|| panic!("cycle {cycle}: acknowledged {marker} was lost"));
        assert_eq!(
            row[0]["id"],
            json!(id),
            "cycle {cycle}: {marker} changed id"
        );
        assert_eq!(
            row[0]["text"],
            json!(TEXT),
            "cycle {cycle}: {marker} changed content"
        );
    }
    for (key, acked) in &ledger.put_acked {
        let got = server.get(&format!("/versions/{key}")).json()["n"]
            .as_u64()
            .unwrap();
        let tried = ledger.put_tried[key];
        assert!(
            got >= *acked && got <= tried,
            "cycle {cycle}: {key} holds version {got}; acknowledged {acked}, attempted up to {tried}"
        );
    }
}

/// Every CSV file in the data directory parses, whatever moment the kill hit.
fn files_parse(server: &Server) {
    for entry in std::fs::read_dir(&server.dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "csv") {
            let mut reader = csv::ReaderBuilder::new().from_path(&path).unwrap();
            let width = reader.headers().unwrap().len();
            for record in reader.records() {
                let record =
                    record.unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
                assert!(
                    record.len() <= width,
                    "{} has a row wider than its header",
                    path.display()
                );
            }
        }
    }
}
