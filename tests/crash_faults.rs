//! The crash harness with faults: writers POST rows and PUT rising versions
//! while, cycle after cycle, the disk fills up (a small tmpfs of the
//! harness's own, when this machine lets it mount one), a table's file is
//! edited by hand, checkpoints of a table fail (a directory where the
//! server writes its temporary file), and the server is killed with SIGKILL
//! (or, now and then, stopped with SIGTERM while a checkpoint cannot be
//! written: it must then exit non-zero). After every restart: every
//! acknowledged write is there with its exact content, no refused write is,
//! no row is duplicated, every CSV file parses, and every hand edit is
//! either the table's content or kept in a conflict file.
//!
//! `cargo test` runs one cycle of each combination of faults;
//! `scripts/crash-test --faults` runs them for a minute (`CSVD_FAULT_SECONDS`,
//! `CSVD_FAULT_CYCLES`, `CSVD_CRASH_SEED`), printing a line per cycle.
//!
//! A kill may come right after a hand edit, before the server has looked at
//! it (`CSVD_FAULT_UNSEEN_EDITS=0` makes the harness wait until it has).

mod common;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::tmpfs::{Filler, Tmpfs};
use common::{env_or, Lcg};
use common::{Response, Server};
use serde_json::json;

const POSTERS: usize = 3;
const PUTTERS: usize = 2;
/// A text with every character CSV must quote, to check exact content.
const TEXT: &str = "comma, \"quote\"\nnew line; ünï";
/// 64 MiB: a long run's tables fit many times over, and filling it takes
/// a moment.
const DISK: u64 = 64 << 20;
/// How long one step of a cycle may take before the harness calls it
/// stuck: the store retries failed work with a backoff of at most 30 s.
const PATIENCE: Duration = Duration::from_secs(60);
/// The table edited by hand. The others are written only over HTTP, so
/// that every acknowledged write to them can be checked.
const EDITED: &str = "edited";
/// The tables, and how many writers each has.
const TABLES: [(&str, usize); 3] = [("rows", POSTERS), ("versions", PUTTERS), (EDITED, 1)];

/// The faults of one cycle; the kill comes in every cycle.
#[derive(Clone, Copy)]
struct Faults {
    full_disk: bool,
    hand_edit: bool,
    failing_checkpoints: bool,
}

impl Faults {
    /// Eight combinations, one per value of `bits` below 8.
    fn from_bits(bits: u64) -> Faults {
        Faults {
            full_disk: bits & 1 != 0,
            hand_edit: bits & 2 != 0,
            failing_checkpoints: bits & 4 != 0,
        }
    }
}

/// What was written, acknowledged and refused, over the whole run.
#[derive(Default)]
struct Ledger {
    /// Acknowledged POSTs: marker → id the server gave.
    posted: HashMap<String, u64>,
    /// POSTs answered 5xx: never to be seen.
    refused_posts: HashSet<String>,
    /// Per PUT key: highest acknowledged and highest attempted version,
    /// versions refused, and how many PUTs were acknowledged.
    put_acked: HashMap<String, u64>,
    put_tried: HashMap<String, u64>,
    put_refused: HashMap<String, HashSet<u64>>,
    put_count: HashMap<String, usize>,
    /// Answers no writer should get.
    problems: Vec<String>,
}

/// Acknowledged and refused writes of the current cycle, per table.
#[derive(Default)]
struct Counters {
    acked: AtomicUsize,
    refused: AtomicUsize,
    per_table: [AtomicUsize; 3],
}

/// A hand edit of `edited.csv`: the bytes written and the notes in them.
struct HandEdit {
    bytes: String,
    notes: [String; 2],
    in_place: bool,
}

/// The hand edits so far: those kept in conflict files, and the one that
/// is the table's content (until a later edit replaces it).
#[derive(Default)]
struct Edits {
    made: usize,
    aside: Vec<HandEdit>,
    content: Option<HandEdit>,
}

#[test]
fn writes_and_hand_edits_survive_full_disks_failing_checkpoints_and_sigkill() {
    let cycles = env_or("CSVD_FAULT_CYCLES", 8);
    let seconds = env_or("CSVD_FAULT_SECONDS", 0);
    let seed = env_or("CSVD_CRASH_SEED", 11);
    let unseen_edits = env_or("CSVD_FAULT_UNSEEN_EDITS", 1) == 1;
    let mut rng = Lcg(seed);
    let disk = Tmpfs::mount_or_skip(DISK, "crash_faults: the full disk fault");
    let plain = tempfile::tempdir().expect("temp dir");
    let dir = match &disk {
        Some(disk) => disk.path().join("data"),
        None => {
            println!("crash faults: cannot mount a tmpfs: the full disk is not tested");
            plain.path().join("data")
        }
    };
    println!("crash faults: seed {seed}");
    // Every combination once first, in an order the seed decides.
    let mut order: Vec<u64> = (0..8).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.next(i as u64 + 1) as usize);
    }
    let deadline = (seconds > 0).then(|| Instant::now() + Duration::from_secs(seconds));
    // Checkpoint as soon as writes pause, so kills and hand edits also land
    // mid-checkpoint.
    let mut server = Server::start_in(&dir, &["--checkpoint-after", "0"]);
    let ledger = Mutex::new(Ledger::default());
    let mut edits = Edits::default();
    let mut run = 0;
    for cycle in 0..cycles {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let bits = order
            .get(cycle as usize)
            .copied()
            .unwrap_or_else(|| rng.next(8));
        let mut faults = Faults::from_bits(bits);
        faults.full_disk &= disk.is_some();
        let mut cycle_run = Cycle {
            cycle,
            faults,
            rng: &mut rng,
            server: &mut server,
            disk: disk.as_ref(),
            ledger: &ledger,
            edits: &mut edits,
            unseen_edits,
        };
        cycle_run.run();
        run += 1;
    }
    let status = server.stop();
    assert!(status.success(), "the last stop exited {status:?}");
    let problems = files_parse(&dir);
    assert!(problems.is_empty(), "{problems:?}");
    println!(
        "crash faults: {run} cycles passed (seed {seed}): no acknowledged write or hand edit lost"
    );
}

/// One cycle: writers run, faults are injected at random moments, the
/// server is killed, started again and everything checked.
struct Cycle<'a> {
    cycle: u64,
    faults: Faults,
    rng: &'a mut Lcg,
    server: &'a mut Server,
    disk: Option<&'a Tmpfs>,
    ledger: &'a Mutex<Ledger>,
    edits: &'a mut Edits,
    /// Let the kill come before the server has looked at a hand edit.
    unseen_edits: bool,
}

/// The random choices of one cycle, all made from the seed up front.
struct Plan {
    /// Acknowledged writes before the kill (or before the disk fills).
    kill_after: usize,
    block_at: Option<usize>,
    edit_at: Option<usize>,
    /// Index into [`TABLES`].
    blocked_table: usize,
    edit_in_place: bool,
    free_before_kill: bool,
    refusals_wanted: usize,
    acks_after_freeing: usize,
    /// SIGTERM instead of SIGKILL (while a checkpoint cannot be written).
    graceful: bool,
}

/// What happened while the writers ran.
#[derive(Default)]
struct Driven {
    notes: Vec<String>,
    problems: Vec<String>,
    blocker: Option<PathBuf>,
    /// Writes acknowledged to the blocked table when it was blocked.
    blocked_acks: usize,
    edit: Option<HandEdit>,
    filler: Option<Filler>,
}

impl Cycle<'_> {
    fn run(&mut self) {
        let plan = self.plan();
        let counters = Counters::default();
        let mut driven = self.drive(&plan, &counters);
        let status = self.server.child.wait().expect("reap csvd");
        let blocked = TABLES[plan.blocked_table];
        if plan.graceful {
            // A write sent after the directory was made leaves the table
            // with changes the stop cannot write.
            let after = counters.per_table[plan.blocked_table].load(Ordering::Acquire);
            let must_fail = after > driven.blocked_acks + blocked.1;
            driven
                .notes
                .push(format!("SIGTERM (exit {})", status.code().unwrap_or(-1)));
            if must_fail && status.success() {
                driven.problems.push(format!(
                    "the stop exited 0 though {} could not be written",
                    blocked.0
                ));
            }
        } else {
            driven.notes.push("kill -9".to_string());
        }
        // csvd cannot open a data directory on a full disk: space first.
        if let Some(filler) = driven.filler.take() {
            filler.remove();
        }
        let dir = self.server.dir.clone();
        let mut problems = files_parse(&dir);
        let server = &mut *self.server;
        let restarted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            server.restart_after_crash()
        }));
        if restarted.is_err() {
            // A refused start changes no file: ask again, for the reason.
            let why = starts(&dir)
                .err()
                .unwrap_or_else(|| "it did on a second try".into());
            panic!(
                "cycle {} ({}): csvd does not start again: {why}",
                self.cycle,
                driven.notes.join(", ")
            );
        }
        if let Some(blocker) = driven.blocker {
            // Left for the new process to start beside, then removed.
            fs::remove_dir(blocker).expect("remove the blocking directory");
        }
        let (acknowledged, present) = check_writes(self.server, self.ledger, &mut problems);
        let (kept, made) = check_edits(self.server, self.edits, driven.edit, &mut problems);
        let mut ledger = self.ledger.lock().unwrap();
        let refused = ledger.refused_posts.len()
            + ledger.put_refused.values().map(HashSet::len).sum::<usize>();
        problems.append(&mut driven.problems);
        problems.append(&mut ledger.problems);
        let lost = acknowledged - present + (made - kept);
        let notes = driven.notes.join(", ");
        println!(
            "cycle {:>4}  acknowledged {acknowledged:>6}  present {present:>6}  lost {lost}  refused {refused:>5}  hand edits kept {kept}/{made}  |  {notes}",
            self.cycle,
        );
        assert!(
            problems.is_empty(),
            "cycle {} ({notes}):\n{}",
            self.cycle,
            problems.join("\n")
        );
    }

    fn plan(&mut self) -> Plan {
        let rng = &mut *self.rng;
        let kill_after = 20 + rng.next(120) as usize;
        Plan {
            kill_after,
            block_at: self
                .faults
                .failing_checkpoints
                .then(|| rng.next(kill_after as u64) as usize),
            edit_at: self
                .faults
                .hand_edit
                .then(|| rng.next(kill_after as u64) as usize),
            blocked_table: rng.next(TABLES.len() as u64) as usize,
            edit_in_place: rng.next(2) == 0,
            free_before_kill: rng.next(2) == 0,
            refusals_wanted: 1 + rng.next(5) as usize,
            acks_after_freeing: 1 + rng.next(20) as usize,
            graceful: self.faults.failing_checkpoints && !self.faults.full_disk && rng.next(2) == 0,
        }
    }

    /// Runs the writers, injects the faults as the acknowledged writes
    /// reach the plan's marks, and kills (or stops) the server.
    fn drive(&mut self, plan: &Plan, counters: &Counters) -> Driven {
        let mut driven = Driven::default();
        let stop = AtomicBool::new(false);
        let pid = self.server.child.id();
        let dir = self.server.dir.clone();
        let acked = || counters.acked.load(Ordering::Acquire);
        std::thread::scope(|scope| {
            let _guard = EndWriters { stop: &stop, pid };
            spawn_writers(
                scope,
                self.server.addr,
                self.cycle,
                self.ledger,
                counters,
                &stop,
            );
            let mut events: Vec<(usize, bool)> = plan
                .block_at
                .map(|at| (at, true))
                .into_iter()
                .chain(plan.edit_at.map(|at| (at, false)))
                .collect();
            events.sort();
            for (at, is_block) in events {
                if !wait_until(|| acked() >= at) {
                    driven
                        .problems
                        .push(format!("writers stopped short of {at} acknowledged writes"));
                }
                if is_block {
                    let table = TABLES[plan.blocked_table].0;
                    driven.blocker = Some(block_checkpoints(&dir, table, pid));
                    driven.blocked_acks =
                        counters.per_table[plan.blocked_table].load(Ordering::Acquire);
                    driven.notes.push(format!("checkpoints of {table} fail"));
                } else {
                    let edit = hand_edit(&dir, self.cycle, plan.edit_in_place);
                    // Unless asked, the kill may come before the server
                    // has looked at the edit (see the test at the end).
                    if !self.unseen_edits && !wait_until(|| seen(self.server.addr, &dir, &edit)) {
                        driven
                            .problems
                            .push("the server never looked at the hand edit".to_string());
                    }
                    driven.edit = Some(edit);
                    let how = if plan.edit_in_place {
                        "written in place"
                    } else {
                        "renamed in"
                    };
                    driven
                        .notes
                        .push(format!("hand edit of {EDITED}.csv ({how})"));
                }
            }
            if !wait_until(|| acked() >= plan.kill_after) {
                driven.problems.push(format!(
                    "writers stopped short of {} acknowledged writes",
                    plan.kill_after
                ));
            }
            if self.faults.full_disk {
                self.fill_disk(plan, counters, &mut driven);
            }
            if plan.graceful {
                // No new request: what was in flight is answered, then it stops.
                stop.store(true, Ordering::Release);
            }
            let signal = if plan.graceful { "-TERM" } else { "-KILL" };
            let sent = std::process::Command::new("kill")
                .args([signal, &pid.to_string()])
                .status();
            assert!(sent.expect("run kill").success());
            stop.store(true, Ordering::Release);
        });
        driven
    }

    /// Fills the disk until writes are refused; then frees it again and
    /// waits for writes to be accepted, or leaves it full for the kill.
    fn fill_disk(&self, plan: &Plan, counters: &Counters, driven: &mut Driven) {
        let disk = self.disk.expect("a tmpfs");
        let refused = counters.refused.load(Ordering::Acquire);
        let filler = disk.fill();
        if !wait_until(|| {
            counters.refused.load(Ordering::Acquire) >= refused + plan.refusals_wanted
        }) {
            driven
                .problems
                .push("no write was refused on the full disk".to_string());
        }
        if !plan.free_before_kill {
            driven.notes.push("full disk at the kill".to_string());
            driven.filler = Some(filler);
            return;
        }
        filler.remove();
        let before = counters.acked.load(Ordering::Acquire);
        if !wait_until(|| {
            counters.acked.load(Ordering::Acquire) >= before + plan.acks_after_freeing
        }) {
            driven.problems.push(format!(
                "writes still refused {PATIENCE:?} after space was freed"
            ));
        }
        driven
            .notes
            .push("full disk, freed before the kill".to_string());
    }
}

/// Whether the server has seen a hand edit: it is the table's content or
/// kept in a conflict file (asking for the table makes the server look).
fn seen(addr: SocketAddr, dir: &Path, edit: &HandEdit) -> bool {
    let Some(r) = try_request(addr, "GET", &format!("/{EDITED}"), "") else {
        return false;
    };
    let text = r.text();
    (r.status == 200 && edit.notes.iter().all(|note| text.contains(note.as_str())))
        || conflict_files(dir).contains(&edit.bytes)
}

/// Should the harness itself fail in the middle of a cycle, kills the
/// server and stops the writers, so the failure is reported at once
/// instead of waiting for writers that never end.
struct EndWriters<'a> {
    stop: &'a AtomicBool,
    pid: u32,
}

impl Drop for EndWriters<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &self.pid.to_string()])
                .status();
        }
        self.stop.store(true, Ordering::Release);
    }
}

/// Makes every checkpoint of `table` fail: a directory where the server
/// (process `pid`) writes the table's temporary file. The server's own
/// temporary file may be there for the moment a checkpoint takes.
fn block_checkpoints(dir: &Path, table: &str, pid: u32) -> PathBuf {
    let path = dir.join(format!(".{table}.csv.{pid}.tmp"));
    let deadline = Instant::now() + PATIENCE;
    loop {
        match fs::create_dir(&path) {
            Ok(()) => return path,
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                assert!(Instant::now() < deadline, "{} stays there", path.display());
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(err) => panic!("cannot create {}: {err}", path.display()),
        }
    }
}

/// Waits (bounded) until `done`; false when it never was.
fn wait_until(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// Starts the writers of one cycle: POSTs to `rows`, PUTs of rising
/// versions to `versions`, POSTs to the hand-edited table (so that it has
/// changes pending at random moments). They stop when told or when the
/// server is gone.
fn spawn_writers<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    addr: SocketAddr,
    cycle: u64,
    ledger: &'scope Mutex<Ledger>,
    counters: &'scope Counters,
    stop: &'scope AtomicBool,
) {
    for t in 0..POSTERS {
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
                let mut ledger = ledger.lock().unwrap();
                match r.status {
                    201 => match r.json()["id"].as_u64() {
                        Some(id) => {
                            ledger.posted.insert(marker, id);
                            counters.acked.fetch_add(1, Ordering::AcqRel);
                            counters.per_table[0].fetch_add(1, Ordering::AcqRel);
                        }
                        None => ledger
                            .problems
                            .push(format!("POST {marker}: no id: {}", short(&r.text()))),
                    },
                    status if status >= 500 => {
                        check_refusal(&r, &mut ledger.problems);
                        ledger.refused_posts.insert(marker);
                        counters.refused.fetch_add(1, Ordering::AcqRel);
                        drop(ledger);
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    status => ledger
                        .problems
                        .push(format!("POST {marker}: {status} {}", short(&r.text()))),
                }
            }
        });
    }
    for t in 0..PUTTERS {
        scope.spawn(move || {
            let key = format!("k{t}");
            for version in (cycle + 1) * 1_000_000.. {
                if stop.load(Ordering::Acquire) {
                    break;
                }
                ledger
                    .lock()
                    .unwrap()
                    .put_tried
                    .insert(key.clone(), version);
                let body = json!({"n": version}).to_string();
                let Some(r) = try_request(addr, "PUT", &format!("/versions/{key}"), &body) else {
                    break;
                };
                let mut ledger = ledger.lock().unwrap();
                match r.status {
                    200 | 201 => {
                        ledger.put_acked.insert(key.clone(), version);
                        *ledger.put_count.entry(key.clone()).or_default() += 1;
                        counters.acked.fetch_add(1, Ordering::AcqRel);
                        counters.per_table[1].fetch_add(1, Ordering::AcqRel);
                    }
                    status if status >= 500 => {
                        check_refusal(&r, &mut ledger.problems);
                        ledger
                            .put_refused
                            .entry(key.clone())
                            .or_default()
                            .insert(version);
                        counters.refused.fetch_add(1, Ordering::AcqRel);
                        drop(ledger);
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    status => ledger.problems.push(format!(
                        "PUT {key} {version}: {status} {}",
                        short(&r.text())
                    )),
                }
            }
        });
    }
    scope.spawn(move || {
        // Not in the ledger: a hand edit may rightly replace these rows.
        for i in 0.. {
            if stop.load(Ordering::Acquire) {
                break;
            }
            let body = json!({"marker": format!("e{cycle}-{i}")}).to_string();
            let Some(r) = try_request(addr, "POST", &format!("/{EDITED}"), &body) else {
                break;
            };
            if r.status == 201 {
                counters.per_table[2].fetch_add(1, Ordering::AcqRel);
            } else {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    });
}

/// The start of an answer, for a message.
fn short(text: &str) -> String {
    match text.char_indices().nth(300) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// A refused write says when to ask again if it is a 503.
fn check_refusal(r: &Response, problems: &mut Vec<String>) {
    if r.status == 503 && r.header("retry-after").is_none() {
        problems.push(format!("503 without Retry-After: {}", short(&r.text())));
    }
}

/// A request that may fail because the server was killed under it.
fn try_request(addr: SocketAddr, method: &str, path: &str, body: &str) -> Option<Response> {
    use std::io::{Read, Write};
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    if !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        return None;
    }
    Some(Response::parse(&raw, false))
}

/// Replaces `edited.csv` by hand, in place or by renaming a new file over
/// it (as editors do), with two rows no one else writes.
fn hand_edit(dir: &Path, cycle: u64, in_place: bool) -> HandEdit {
    let notes = [format!("by hand c{cycle} a"), format!("by hand c{cycle} b")];
    let bytes = format!("id,note\n1,{}\n2,{}\n", notes[0], notes[1]);
    let path = dir.join(format!("{EDITED}.csv"));
    if in_place {
        fs::write(&path, &bytes).expect("edit in place");
    } else {
        let new = dir.join(format!(".{EDITED}.csv.by-hand"));
        fs::write(&new, &bytes).expect("write the new file");
        fs::rename(&new, &path).expect("rename it in");
    }
    HandEdit {
        bytes,
        notes,
        in_place,
    }
}

/// Every acknowledged write is there with its exact content; no refused
/// write and no duplicate is. Returns the acknowledged and present counts.
fn check_writes(
    server: &Server,
    ledger: &Mutex<Ledger>,
    problems: &mut Vec<String>,
) -> (usize, usize) {
    let ledger = ledger.lock().unwrap();
    let acknowledged = ledger.posted.len() + ledger.put_count.values().sum::<usize>();
    let mut present = 0;
    let rows = server.get("/rows");
    if rows.status != 200 {
        problems.push(format!("GET /rows: {} {}", rows.status, rows.text()));
        return (acknowledged, 0);
    }
    let mut by_marker: HashMap<String, Vec<serde_json::Value>> = HashMap::new();
    for row in rows.json().as_array().expect("an array of rows") {
        let marker = row["marker"].as_str().unwrap_or_default().to_string();
        by_marker.entry(marker).or_default().push(row.clone());
    }
    for (marker, rows) in &by_marker {
        if rows.len() > 1 {
            problems.push(format!("{marker} is duplicated"));
        }
        if ledger.refused_posts.contains(marker) {
            problems.push(format!("the refused write {marker} is served"));
        }
    }
    for (marker, id) in &ledger.posted {
        match by_marker.get(marker).map(|rows| &rows[0]) {
            Some(row) if row["id"] == json!(id) && row["text"] == json!(TEXT) => present += 1,
            Some(row) => problems.push(format!("{marker} (id {id}) changed: {row}")),
            None => problems.push(format!("acknowledged {marker} was lost")),
        }
    }
    for (key, acked) in &ledger.put_acked {
        let r = server.get(&format!("/versions/{key}"));
        let got = (r.status == 200).then(|| r.json()["n"].as_u64()).flatten();
        let tried = ledger.put_tried[key];
        let refused = ledger.put_refused.get(key);
        match got {
            Some(got) if got >= *acked && got <= tried && !refused.is_some_and(|r| r.contains(&got)) => {
                present += ledger.put_count[key];
            }
            _ => problems.push(format!(
                "{key} holds {got:?} ({} {}); acknowledged {acked}, attempted up to {tried}, refused {:?}",
                r.status,
                short(&r.text()),
                refused.map(|r| r.len())
            )),
        }
    }
    (acknowledged, present)
}

/// Every hand edit is the table's content or kept in a conflict file:
/// the newest may be either; one kept aside stays kept; the content stays
/// until a later edit replaces it. Returns how many edits are kept (or
/// were replaced by a later one, as the person meant) and how many were
/// made.
fn check_edits(
    server: &Server,
    edits: &mut Edits,
    new: Option<HandEdit>,
    problems: &mut Vec<String>,
) -> (usize, usize) {
    let conflicts = conflict_files(&server.dir);
    let r = server.get(&format!("/{EDITED}"));
    let content: Vec<(u64, String)> = if r.status == 200 {
        r.json()
            .as_array()
            .expect("an array of rows")
            .iter()
            .filter_map(|row| Some((row["id"].as_u64()?, row["note"].as_str()?.to_string())))
            .collect()
    } else {
        Vec::new()
    };
    let is_content = |edit: &HandEdit| {
        edit.notes
            .iter()
            .enumerate()
            .all(|(i, note)| content.contains(&(i as u64 + 1, note.clone())))
    };
    let mut lost = 0;
    for edit in &edits.aside {
        if !conflicts.contains(&edit.bytes) {
            lost += 1;
            problems.push(format!(
                "the conflict file of the hand edit {:?} is gone",
                edit.notes
            ));
        }
    }
    if let Some(edit) = new {
        edits.made += 1;
        if conflicts.contains(&edit.bytes) {
            // Written in place, the server may have read it half written
            // (and served that) before setting the whole of it aside: the
            // earlier content is then replaced, as the person meant.
            if edit.in_place {
                edits.content = None;
            }
            edits.aside.push(edit);
        } else if is_content(&edit) {
            edits.content = Some(edit);
        } else {
            lost += 1;
            problems.push(format!(
                "the hand edit {:?} is lost: neither in {EDITED} ({} {}) nor in a conflict file ({} of them)",
                edit.notes,
                r.status,
                short(&r.text()),
                conflicts.len()
            ));
        }
    }
    if let Some(edit) = &edits.content {
        if !is_content(edit) {
            lost += 1;
            problems.push(format!(
                "the hand edit {:?} was the table's content and is gone: {} {}",
                edit.notes,
                r.status,
                short(&r.text())
            ));
        }
    }
    (edits.made - lost, edits.made)
}

/// The bytes of every conflict file of the hand-edited table.
fn conflict_files(dir: &Path) -> Vec<String> {
    let prefix = format!("{EDITED}.csv.conflict-");
    fs::read_dir(dir)
        .expect("read the data directory")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| fs::read_to_string(e.path()).unwrap_or_default())
        .collect()
}

/// Every CSV file in the data directory parses, whatever moment the kill
/// hit; the problems found.
fn files_parse(dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let paths: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read the data directory")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    for path in paths {
        let mut reader = match csv::ReaderBuilder::new().from_path(&path) {
            Ok(reader) => reader,
            Err(err) => {
                problems.push(format!("{}: {err}", path.display()));
                continue;
            }
        };
        let width = reader.headers().map(|h| h.len()).unwrap_or(0);
        for record in reader.records() {
            match record {
                Ok(record) if record.len() <= width => {}
                Ok(_) => problems.push(format!(
                    "{} has a row wider than its header",
                    path.display()
                )),
                Err(err) => problems.push(format!("{} does not parse: {err}", path.display())),
            }
        }
    }
    problems
}

/// Starts `csvd serve` on `dir` once, to learn whether it starts at all;
/// the reason it gave when it did not.
fn starts(dir: &Path) -> Result<(), String> {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};
    let mut child = Command::new(common::BIN)
        .arg("serve")
        .arg(dir)
        .args(["--bind", "127.0.0.1:0", "--log-level", "warn"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start csvd");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    let _ = BufReader::new(stdout).read_line(&mut line);
    if line.contains("listening") {
        let _ = child.kill();
        let _ = child.wait();
        return Ok(());
    }
    let mut why = String::new();
    let _ = child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut why);
    let _ = child.wait();
    Err(why)
}

/// Found by the harness: a person saves a table's file while the server
/// has acknowledged writes not yet in it, and the server is killed (or
/// stopped while it cannot write that table) before it looks at the file
/// again. Nothing may be lost: the table keeps its writes and the person's
/// file is kept aside, as when the server notices the edit while running.
#[test]
fn a_hand_edit_the_server_had_not_seen_before_a_crash_keeps_the_edit_and_the_writes() {
    for (in_place, stopped) in [(false, false), (true, false), (false, true)] {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path();
        let mut s = Server::start_in(dir, &["--checkpoint-after", "3600"]);
        let r = s.request(
            "PUT",
            "/t",
            &[("Content-Type", "text/csv")],
            b"id,name\n1,kim\n",
        );
        assert_eq!(r.status, 201, "{}", r.text());
        assert!(s.stop().success(), "the file is written at the stop");
        s.restart_after_crash();
        assert_eq!(s.post_json("/t", r#"{"name":"lee"}"#).status, 201);
        let edit = "id,name\n1,kim by hand\n";
        if in_place {
            fs::write(dir.join("t.csv"), edit).unwrap();
        } else {
            fs::write(dir.join(".t.csv.saved"), edit).unwrap();
            fs::rename(dir.join(".t.csv.saved"), dir.join("t.csv")).unwrap();
        }
        let how = match (in_place, stopped) {
            (true, _) => "saved in place, kill -9",
            (false, false) => "renamed in, kill -9",
            (false, true) => "renamed in, SIGTERM while t.csv cannot be written",
        };
        if stopped {
            let blocker = block_checkpoints(dir, "t", s.child.id());
            assert!(!s.stop().success(), "{how}: the stop could not write t.csv");
            fs::remove_dir(blocker).unwrap();
        } else {
            s.child.kill().expect("kill -9");
            s.child.wait().expect("reap");
        }
        if let Err(why) = starts(dir) {
            panic!("{how}: csvd does not start again: {why}");
        }
        s.restart_after_crash();
        assert_eq!(
            s.get("/t").json(),
            json!([{"id":1,"name":"kim"},{"id":2,"name":"lee"}]),
            "{how}: the acknowledged write is kept"
        );
        let prefix = "t.csv.conflict-";
        let kept: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
            .map(|e| fs::read_to_string(e.path()).unwrap())
            .collect();
        assert_eq!(kept, [edit], "{how}: the person's file is kept aside");
    }
}
