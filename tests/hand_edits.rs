//! How soon a table file edited by hand is seen (`--file-check`): reads
//! look at a table's file at most once per interval, and a write always
//! looks first.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::Server;
use serde_json::json;

#[test]
fn a_write_always_looks_at_the_file_first() {
    // An hour between two looks by reads: only a write can notice the edit.
    let s = Server::start_with(&["--file-check", "3600000"]);
    fs::write(s.dir.join("t.csv"), "id,a\n1,old\n").unwrap();
    assert_eq!(s.get("/t").json(), json!([{"id": 1, "a": "old"}]));
    fs::write(s.dir.join("t.csv"), "id,a\n1,edited\n2,new row\n").unwrap();
    assert_eq!(
        s.get("/t").json(),
        json!([{"id": 1, "a": "old"}]),
        "within the interval a read serves the table as last seen"
    );
    // Row 2 exists only in the edited file: the write must have read it.
    let r = s.send_json("PATCH", "/t/2", r#"{"a":"patched"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.get("/t").json(),
        json!([{"id": 1, "a": "edited"}, {"id": 2, "a": "patched"}])
    );
    assert_eq!(
        fs::read_dir(&s.dir)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().contains("conflict")
            })
            .count(),
        0,
        "no changes were pending: the edit is the table, not a conflict"
    );
}

#[test]
fn a_write_sees_a_removed_file_before_it_writes() {
    let s = Server::start_with(&["--file-check", "3600000"]);
    fs::write(s.dir.join("t.csv"), "id,a\n1,x\n").unwrap();
    assert_eq!(s.get("/t/1").status, 200);
    fs::remove_file(s.dir.join("t.csv")).unwrap();
    // The table is gone for the write: PATCH of a row of it is a 404.
    let r = s.send_json("PATCH", "/t/1", r#"{"a":"y"}"#);
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(s.get("/t").status, 404);
}

#[test]
fn reads_see_a_hand_edit_within_the_interval() {
    let s = Server::start_with(&["--file-check", "20"]);
    fs::write(s.dir.join("t.csv"), "id,a\n1,old\n").unwrap();
    assert_eq!(s.get("/t").json(), json!([{"id": 1, "a": "old"}]));
    fs::write(s.dir.join("t.csv"), "id,a\n1,edited\n").unwrap();
    // Reads only: the edit is seen once the interval has passed.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if s.get("/t").json() == json!([{"id": 1, "a": "edited"}]) {
            break;
        }
        assert!(Instant::now() < deadline, "the edit was never seen");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn file_check_zero_looks_at_every_read() {
    let s = Server::start_with(&["--file-check", "0"]);
    fs::write(s.dir.join("t.csv"), "id,a\n1,old\n").unwrap();
    assert_eq!(s.get("/t").json(), json!([{"id": 1, "a": "old"}]));
    for n in 1..20 {
        // Each edit has its own length: two in one clock tick differ still.
        let value = format!("edit {}", "x".repeat(n));
        fs::write(s.dir.join("t.csv"), format!("id,a\n1,{value}\n")).unwrap();
        assert_eq!(s.get("/t/1").json(), json!({"id": 1, "a": value}));
    }
}
