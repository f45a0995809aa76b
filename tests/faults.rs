//! Faults a real machine has, against the real binary: hand edits at the
//! wrong moment, checkpoints that keep failing, a deleted data directory,
//! a damaged log, a second server on the same directory, stale tags after
//! a crash. (The full disk is `full_disk.rs`; every single file-system call
//! failing in turn is the engine's fault walk.)

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{exchange, spawn_logged, Logged, Server, BIN};
use serde_json::json;

/// Waits (bounded) until `check` holds; what a person would do by looking
/// again, never a fixed sleep.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn file_text(dir: &Path, name: &str) -> String {
    fs::read_to_string(dir.join(name)).unwrap_or_default()
}

fn conflict_files(dir: &Path, table: &str) -> Vec<PathBuf> {
    let prefix = format!("{table}.csv.conflict-");
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

fn segments(dir: &Path) -> usize {
    fs::read_dir(dir.join(".csvd"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("wal-"))
        .count()
}

/// Makes every checkpoint of `table` fail: a directory where the server
/// (process `pid`) writes the table's temporary file.
fn block_checkpoints(dir: &Path, table: &str, pid: u32) -> PathBuf {
    let blocker = dir.join(format!(".{table}.csv.{pid}.tmp"));
    fs::create_dir(&blocker).unwrap();
    blocker
}

/// `csvd serve` run to its end (for starts that must be refused).
fn serve_once(dir: &Path, flags: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .arg("serve")
        .arg(dir)
        .args(["--bind", "127.0.0.1:0"])
        .args(flags)
        .stdin(Stdio::null())
        .output()
        .expect("run csvd");
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    (out.status.success(), text)
}

fn snapshot_dir(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for sub in [dir.to_path_buf(), dir.join(".csvd")] {
        for entry in fs::read_dir(&sub).unwrap().flatten() {
            let path = entry.path();
            if path.is_file() && !path.ends_with("lock") {
                files.push((path.clone(), fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn a_hand_edit_with_writes_pending_then_a_crash_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    {
        let mut s = Server::start_in(dir, &[]);
        let r = s.request(
            "PUT",
            "/t",
            &[("Content-Type", "text/csv")],
            b"id,name\n1,kim\n2,lee\n",
        );
        assert_eq!(r.status, 201, "{}", r.text());
        assert!(s.stop().success());
    }
    let mut s = Server::start_in(dir, &["--checkpoint-after", "3600"]);
    assert_eq!(s.post_json("/t", r#"{"name":"park"}"#).status, 201);
    let hand = "id,name\n1,kim by hand\n";
    fs::write(dir.join("t.csv"), hand).unwrap();
    assert_eq!(s.get("/t").json().as_array().unwrap().len(), 3);
    let kept = conflict_files(dir, "t");
    assert_eq!(kept.len(), 1, "the edited file is set aside");
    assert_eq!(fs::read_to_string(&kept[0]).unwrap(), hand);
    let listed = s.get("/").json();
    assert!(
        listed[0]["notice"].as_str().unwrap().contains("conflict-"),
        "GET / says so: {listed}"
    );
    assert_eq!(
        s.send_json("PATCH", "/t/2", r#"{"name":"lee2"}"#).status,
        200
    );
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    s.restart_after_crash();
    assert_eq!(
        s.get("/t").json(),
        json!([{"id":1,"name":"kim"},{"id":2,"name":"lee2"},{"id":3,"name":"park"}])
    );
    assert_eq!(
        fs::read_to_string(&conflict_files(dir, "t")[0]).unwrap(),
        hand
    );
}

#[test]
fn a_hand_edit_is_not_overwritten_at_restart_while_another_checkpoint_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut s = Server::start_in(dir, &["--checkpoint-after", "0"]);
    assert_eq!(s.post_json("/stuck", r#"{"a":"1"}"#).status, 201);
    assert_eq!(s.post_json("/other", r#"{"b":"old"}"#).status, 201);
    eventually("both files", || {
        file_text(dir, "stuck.csv").contains('1') && file_text(dir, "other.csv").contains("old")
    });
    let blocker = block_checkpoints(dir, "stuck", s.child.id());
    assert_eq!(s.post_json("/stuck", r#"{"a":"2"}"#).status, 201);
    assert_eq!(s.post_json("/other", r#"{"b":"newer"}"#).status, 201);
    eventually("other.csv checkpointed", || {
        file_text(dir, "other.csv").contains("newer")
    });
    fs::write(dir.join("other.csv"), "id,b\n7,by hand\n").unwrap();
    assert_eq!(s.get("/other").json(), json!([{"id":7,"b":"by hand"}]));
    // The stop cannot write `stuck`: it says so with its exit code.
    assert!(!s.stop().success());
    fs::remove_dir(blocker).unwrap();
    s.restart_after_crash();
    assert_eq!(s.get("/other").json(), json!([{"id":7,"b":"by hand"}]));
    assert!(conflict_files(dir, "other").is_empty());
    assert_eq!(
        s.get("/stuck").json(),
        json!([{"id":1,"a":1},{"id":2,"a":2}])
    );
}

#[test]
fn tags_never_repeat_after_a_crash() {
    let mut s = Server::start_with(&["--checkpoint-after", "3600"]);
    let r = s.request("PUT", "/t", &[("Content-Type", "text/csv")], b"id,v\n1,a\n");
    assert_eq!(r.status, 201);
    let before = r.header("etag").map(str::to_string);
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    s.restart_after_crash();
    let a = s.get("/t");
    let tag_a = a.header("etag").unwrap().to_string();
    assert_ne!(tag_a, "\"0000000000000000\"");
    assert_ne!(Some(tag_a.clone()), before);
    // Another client replaces the table; the first client's tag is stale.
    let b = s.request("PUT", "/t", &[("Content-Type", "text/csv")], b"id,v\n1,b\n");
    assert_eq!(b.status, 200);
    assert_ne!(b.header("etag").unwrap(), tag_a);
    let stale = s.request(
        "PUT",
        "/t",
        &[("Content-Type", "text/csv"), ("If-Match", &tag_a)],
        b"id,v\n1,c\n",
    );
    assert_eq!(stale.status, 412, "a lost update: {}", stale.text());
    assert_eq!(s.get("/t/1").json()["v"], "b");
}

#[test]
fn a_deleted_data_directory_refuses_writes_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let s = Server::start_in(&dir, &[]);
    assert_eq!(s.post_json("/t", r#"{"a":"1"}"#).status, 201);
    fs::remove_dir_all(&dir).unwrap();
    let r = s.post_json("/t", r#"{"a":"2"}"#);
    assert_eq!(r.status / 100, 5, "{}", r.text());
    assert_ne!(r.status, 201);
    // Refused from then on, with the reason.
    let r = s.post_json("/t", r#"{"a":"3"}"#);
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("deleted"), "{}", r.text());
    assert!(r.header("retry-after").is_some());
    assert_eq!(s.get("/t").status, 503);
}

#[test]
fn a_checkpoint_that_keeps_failing_backs_off_creates_nothing_and_fails_the_stop() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::create_dir_all(dir).unwrap();
    let Logged {
        mut child,
        addr,
        stderr,
    } = spawn_logged(dir, &["--checkpoint-after", "0"]);
    let post = |body: &str| exchange(addr, "POST", "/stuck", Some(body)).status;
    assert_eq!(post(r#"{"a":"1"}"#), 201);
    block_checkpoints(dir, "stuck", child.id());
    assert_eq!(post(r#"{"a":"2"}"#), 201);
    let stderr = BufReader::new(stderr);
    let mut failures = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        assert!(
            !line.contains("brought up to date"),
            "a failed checkpoint is not reported as done: {line}"
        );
        if line.contains("cannot bring the CSV files up to date") {
            failures.push(line);
            if failures.len() == 4 {
                break;
            }
        }
    }
    assert!(failures[0].contains("table stuck"), "{}", failures[0]);
    assert!(
        failures[3].contains("trying again in 1s 600ms"),
        "it backs off: {}",
        failures[3]
    );
    assert!(segments(dir) <= 2, "{} log segments", segments(dir));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the stop could not write stuck.csv: non-zero exit"
    );
}

#[test]
fn two_hand_edits_in_one_second_are_both_kept() {
    let s = Server::start_with(&["--checkpoint-after", "3600"]);
    s.post_json("/t", r#"{"a":"x"}"#);
    // Make a file exist, then keep the table ahead of it.
    let first = "id,a\n1,first edit\n";
    let second = "id,a\n1,second edit\n";
    fs::write(s.dir.join("t.csv"), first).unwrap();
    assert_eq!(s.get("/t").status, 200);
    assert_eq!(s.send_json("PATCH", "/t/1", r#"{"a":"y"}"#).status, 200);
    fs::write(s.dir.join("t.csv"), second).unwrap();
    assert_eq!(s.get("/t").status, 200);
    let kept: Vec<String> = conflict_files(&s.dir, "t")
        .iter()
        .map(|p| fs::read_to_string(p).unwrap())
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept.contains(&first.to_string()) && kept.contains(&second.to_string()));
    assert_eq!(s.get("/t/1").json()["a"], "y");
}

#[test]
fn a_second_server_on_the_same_directory_touches_nothing() {
    let s = Server::start();
    let temp = s.dir.join(".t.csv.4242.tmp");
    fs::write(&temp, "a checkpoint in progress").unwrap();
    for _ in 0..5 {
        let (ok, err) = serve_once(&s.dir, &[]);
        assert!(!ok);
        assert!(err.contains("already serving"), "{err}");
        assert!(
            temp.exists(),
            "the first server's temporary file was deleted"
        );
    }
}

#[test]
fn a_damaged_log_record_refuses_to_start_and_salvage_keeps_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut s = Server::start_in(dir, &["--checkpoint-after", "3600"]);
    for i in 0..5 {
        assert_eq!(s.post_json("/t", &format!(r#"{{"n":"{i}"}}"#)).status, 201);
    }
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    let segment = fs::read_dir(dir.join(".csvd"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".log") && fs::metadata(p).unwrap().len() > 100)
        .expect("a segment with records");
    let mut bytes = fs::read(&segment).unwrap();
    // A bit flipped in the first record, with later records intact.
    bytes[40] ^= 0x10;
    fs::write(&segment, &bytes).unwrap();
    let before = snapshot_dir(dir);
    let (ok, err) = serve_once(dir, &[]);
    assert!(!ok, "started on a damaged log");
    assert!(
        err.contains("at byte") && err.contains("--salvage"),
        "{err}"
    );
    assert!(
        err.contains(&segment.file_name().unwrap().to_string_lossy().to_string()),
        "{err}"
    );
    assert_eq!(snapshot_dir(dir), before, "a refused start changes no file");
    let s = Server::start_in(dir, &["--salvage"]);
    assert_eq!(s.get("/").status, 200);
    let kept = dir
        .join(".csvd/salvaged")
        .join(segment.file_name().unwrap());
    assert_eq!(
        fs::read(kept).unwrap(),
        bytes,
        "the damaged segment is kept"
    );
}

#[test]
fn a_hand_edit_the_server_never_saw_before_a_crash_loses_nothing() {
    for dropped_in in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        if dropped_in {
            // A file the server never wrote itself.
            fs::write(dir.join("t.csv"), "id,name\n1,kim\n2,lee\n").unwrap();
        } else {
            let mut s = Server::start_in(dir, &[]);
            let r = s.request(
                "PUT",
                "/t",
                &[("Content-Type", "text/csv")],
                b"id,name\n1,kim\n2,lee\n",
            );
            assert_eq!(r.status, 201);
            assert!(s.stop().success());
        }
        let mut s = Server::start_in(dir, &["--checkpoint-after", "3600"]);
        assert_eq!(s.post_json("/t", r#"{"name":"park"}"#).status, 201);
        // Edited in place (same file, new bytes), and the server is killed
        // before it looks again.
        let hand = "id,name\n1,kim by hand\n";
        fs::write(dir.join("t.csv"), hand).unwrap();
        s.child.kill().unwrap();
        s.child.wait().unwrap();
        s.restart_after_crash();
        assert_eq!(
            s.get("/t").json(),
            json!([{"id":1,"name":"kim"},{"id":2,"name":"lee"},{"id":3,"name":"park"}]),
            "dropped in: {dropped_in}"
        );
        let kept = conflict_files(dir, "t");
        assert_eq!(kept.len(), 1, "dropped in: {dropped_in}");
        assert_eq!(fs::read_to_string(&kept[0]).unwrap(), hand);
        assert!(s.get("/").json()[0]["notice"].is_string());
    }
}

#[test]
fn a_file_left_held_by_an_interrupted_checkpoint_is_settled_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    {
        let mut s = Server::start_in(dir, &[]);
        assert_eq!(s.post_json("/t", r#"{"a":"1"}"#).status, 201);
        assert!(s.stop().success());
    }
    // The engine's own file, held: it simply goes. A person's: it is kept.
    let ours = fs::read(dir.join("t.csv")).unwrap();
    fs::write(dir.join(".t.csv.111.held"), &ours).unwrap();
    fs::write(dir.join(".t.csv.222.held"), "id,a\n1,by hand\n").unwrap();
    let s = Server::start_in(dir, &[]);
    assert_eq!(s.get("/t").json(), json!([{"id":1,"a":1}]));
    assert!(!dir.join(".t.csv.111.held").exists());
    assert!(!dir.join(".t.csv.222.held").exists());
    let kept = conflict_files(dir, "t");
    assert_eq!(kept.len(), 1);
    assert_eq!(fs::read_to_string(&kept[0]).unwrap(), "id,a\n1,by hand\n");
}
