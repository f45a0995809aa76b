//! The full disk, on a small tmpfs of the test's own: a write the log
//! cannot take is refused and never seen again, reads go on once the store
//! has rebuilt its tables, writes are accepted again once there is space,
//! and every write acknowledged before, during and after is kept exactly,
//! across stops, starts and a kill -9.
//!
//! Needs permission to mount a tmpfs (root): skipped loudly elsewhere,
//! required in CI.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::tmpfs::Tmpfs;
use common::{Response, Server};
use serde_json::json;

/// 4 MiB: room for the log and the tables, small enough to fill at once.
const DISK: u64 = 4 << 20;
/// A text with every character CSV must quote, to check exact content.
const TEXT: &str = "comma, \"quote\"\nnew line; ünï";
/// How long the store may take to rebuild or accept writes again; it
/// retries with a backoff of at most 30 s.
const PATIENCE: Duration = Duration::from_secs(60);

/// What the test wrote to `/rows`: acknowledged rows (marker → the id the
/// server gave) and refused ones.
#[derive(Default)]
struct Ledger {
    acked: BTreeMap<String, u64>,
    refused: BTreeSet<String>,
}

impl Ledger {
    /// POSTs a row and books the answer: 201 is acknowledged, 5xx refused.
    fn post(&mut self, server: &Server, marker: &str) -> u16 {
        let r = server.post_json("/rows", &row_body(marker));
        match r.status {
            201 => {
                let id = r.json()["id"].as_u64().expect("numeric id");
                self.acked.insert(marker.to_string(), id);
            }
            500..=599 => {
                if r.status == 503 {
                    assert!(r.header("retry-after").is_some(), "503 without Retry-After");
                }
                self.refused.insert(marker.to_string());
            }
            other => panic!("POST {marker}: {other} {}", r.text()),
        }
        r.status
    }

    /// POSTs rows until one is refused; the disk is full by then.
    fn post_until_refused(&mut self, server: &Server, prefix: &str) {
        for i in 0..200 {
            if self.post(server, &format!("{prefix}-{i}")) != 201 {
                return;
            }
        }
        panic!("200 rows of a kilobyte were accepted on a full disk");
    }

    /// The table holds exactly the acknowledged rows, with their ids and
    /// content, and not one refused row; `X-Total-Count` agrees.
    fn check(&self, rows: &Response, when: &str) {
        assert_eq!(rows.status, 200, "{when}: {}", rows.text());
        let body = rows.json();
        let got = body.as_array().expect("an array of rows");
        let mut seen = BTreeSet::new();
        for row in got {
            let marker = row["marker"].as_str().expect("a marker").to_string();
            assert!(
                !self.refused.contains(&marker),
                "{when}: the refused write {marker} is served"
            );
            let id = self
                .acked
                .get(&marker)
                .unwrap_or_else(|| panic!("{when}: a row nobody wrote: {row}"));
            assert_eq!(
                *row,
                json!({"id": id, "marker": marker, "text": TEXT, "pad": pad(&marker)}),
                "{when}: {marker} changed"
            );
            assert!(
                seen.insert(marker.clone()),
                "{when}: {marker} is duplicated"
            );
        }
        let lost: Vec<&String> = self.acked.keys().filter(|m| !seen.contains(*m)).collect();
        assert!(lost.is_empty(), "{when}: acknowledged rows lost: {lost:?}");
        assert_eq!(
            rows.header("x-total-count"),
            Some(self.acked.len().to_string().as_str()),
            "{when}: X-Total-Count counts what is served"
        );
    }
}

fn row_body(marker: &str) -> String {
    json!({"marker": marker, "text": TEXT, "pad": pad(marker)}).to_string()
}

/// About a kilobyte a row, so the space left in the log file's last page
/// is used up within a few writes.
fn pad(marker: &str) -> String {
    format!("{marker}:{}", "p".repeat(1000))
}

/// `GET /rows` once the store serves again: while it rebuilds its tables
/// it answers 503 with `Retry-After`, which is asked again.
fn served(server: &Server) -> Response {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let r = server.get("/rows");
        if r.status != 503 {
            return r;
        }
        assert!(r.header("retry-after").is_some(), "503 without Retry-After");
        assert!(
            Instant::now() < deadline,
            "reads still refused after {PATIENCE:?}: {}",
            r.text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_full_disk_refuses_what_it_cannot_log_and_keeps_everything_acknowledged() {
    let Some(disk) = Tmpfs::mount_or_skip(DISK, "full_disk: refused writes") else {
        return;
    };
    let dir = disk.path().join("data");
    let mut ledger = Ledger::default();
    // Rows in the CSV file (written at a graceful stop), rows only in the log.
    let mut s = Server::start_in(&dir, &[]);
    for i in 0..5 {
        assert_eq!(ledger.post(&s, &format!("file-{i}")), 201);
    }
    assert!(s.stop().success());
    let mut s = Server::start_in(&dir, &["--checkpoint-after", "3600"]);
    for i in 0..5 {
        assert_eq!(ledger.post(&s, &format!("log-{i}")), 201);
    }

    let mut filler = disk.fill();
    ledger.post_until_refused(&s, "full");
    ledger.check(&served(&s), "with the disk full");
    for i in 0..3 {
        ledger.post(&s, &format!("still-full-{i}"));
    }
    ledger.check(&served(&s), "after more writes on the full disk");
    assert!(
        !s.stop().success(),
        "a stop that could not bring the CSV files up to date exits non-zero"
    );

    filler.give_back(512 << 10);
    s.restart_after_crash();
    ledger.check(&served(&s), "started with a little space");
    for i in 0..3 {
        assert_eq!(ledger.post(&s, &format!("after-{i}")), 201);
    }
    assert!(s.stop().success(), "a stop with space enough exits 0");

    filler.remove();
    s.restart_after_crash();
    ledger.check(&served(&s), "started with space");
    assert!(ledger.acked.contains_key("after-2"));
    assert!(s.stop().success());
}

#[test]
fn on_a_full_disk_reads_go_on_and_writes_come_back_once_space_is_freed() {
    let Some(disk) = Tmpfs::mount_or_skip(DISK, "full_disk: space freed") else {
        return;
    };
    let dir = disk.path().join("data");
    let mut ledger = Ledger::default();
    // Checkpoints as soon as writes pause, so one may meet the full disk too.
    let mut s = Server::start_in(&dir, &["--checkpoint-after", "0"]);
    for i in 0..5 {
        assert_eq!(ledger.post(&s, &format!("before-{i}")), 201);
    }

    let filler = disk.fill();
    ledger.post_until_refused(&s, "full");
    ledger.check(&served(&s), "with the disk full");
    // Once rebuilt, reads keep working while checkpoints fail.
    for i in 0..5 {
        ledger.check(&s.get("/rows"), &format!("read {i} with the disk full"));
    }

    filler.remove();
    let deadline = Instant::now() + PATIENCE;
    for i in 0.. {
        if ledger.post(&s, &format!("freed-{i}")) == 201 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "writes still refused {PATIENCE:?} after space was freed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    ledger.check(&served(&s), "space freed, no restart");

    s.child.kill().expect("kill -9");
    s.child.wait().expect("reap");
    s.restart_after_crash();
    ledger.check(&served(&s), "after kill -9");
    assert!(s.stop().success());
}

#[test]
fn a_server_starts_on_a_full_disk_and_serves_what_it_has() {
    let Some(disk) = Tmpfs::mount_or_skip(DISK, "full_disk: start on a full disk") else {
        return;
    };
    let dir = disk.path().join("data");
    let mut ledger = Ledger::default();
    let mut s = Server::start_in(&dir, &["--checkpoint-after", "3600"]);
    for i in 0..5 {
        assert_eq!(ledger.post(&s, &format!("before-{i}")), 201);
    }
    // Killed with its writes in the log only, then the disk fills up.
    s.child.kill().expect("kill -9");
    s.child.wait().expect("reap");
    let filler = disk.fill();
    s.restart_after_crash();
    ledger.check(&served(&s), "started on a full disk");
    // Writes fit in what is left of the log's last page, then are refused.
    ledger.post_until_refused(&s, "full");
    ledger.check(&served(&s), "a write refused on a full disk");
    filler.remove();
    let deadline = Instant::now() + PATIENCE;
    for i in 0.. {
        if ledger.post(&s, &format!("freed-{i}")) == 201 {
            break;
        }
        assert!(Instant::now() < deadline, "writes never came back");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(s.stop().success());
    s.restart_after_crash();
    ledger.check(&served(&s), "after a clean stop and start");
}
