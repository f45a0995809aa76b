//! The fault walk: a workload of writes, hand edits and checkpoints run
//! again and again, each time with one more of the engine's file-system
//! calls failing (EIO, ENOSPC, a short write; once, or from then on), then
//! a restart on a healthy disk. After every run: each write that was
//! acknowledged is there with its exact content, nothing refused is, every
//! CSV file parses, and the hand edit is kept somewhere.
//!
//! Acknowledged writes are mirrored onto a second store on a disk that
//! never fails (the oracle), so "exact content" means the same columns and
//! rows, in the same order, as the oracle has.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::disk::{Disk, Fault, Faults};
use super::{DirStore, Expect, Fields, Options, Records, Store};
use crate::query::Snapshots;

const HAND_MARKER: &str = "written-by-hand-7f3a";

fn options() -> Options {
    Options {
        sync: true,
        // Checkpoints happen where the workload says, never on a timer.
        settle: Duration::from_secs(3600),
        max_log_bytes: u64::MAX,
        salvage: false,
        read_only: false,
        changes: Default::default(),
        // Every read looks at the files: hand edits are seen at once.
        file_check: Duration::ZERO,
    }
}

/// Where the runs keep their data: memory-backed when the machine has it,
/// so hundreds of runs with real fsyncs stay quick.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().expect("temp dir")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A store on `dir` whose disk fails as `faults` says, counting from zero
/// once it is open.
fn open_faulty(dir: &Path, faults: &Arc<Faults>) -> Arc<DirStore> {
    faults.reset();
    let store = DirStore::open_on(dir, "id", options(), Disk::with_faults(faults.clone()))
        .expect("open with no fault armed");
    faults.reset();
    store
}

fn records(records: Vec<Fields>) -> Records {
    Records::from_fields(Vec::new(), records)
}

fn fields(pairs: &[(&str, &str)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// One step of the workload, applied the same way to both stores.
#[derive(Clone, Copy, Debug)]
enum Step {
    ReplaceA,
    InsertA,
    PutA2,
    PatchA1,
    InsertB,
    DeleteA3,
    InsertNotes,
    HandEditNotes,
    PatchNotes,
    InsertAWide,
    DeleteB,
    Checkpoint,
}

const WORKLOAD: &[Step] = &[
    Step::ReplaceA,
    Step::InsertA,
    Step::Checkpoint,
    Step::PutA2,
    Step::PatchA1,
    Step::InsertB,
    Step::DeleteA3,
    Step::InsertNotes,
    Step::Checkpoint,
    Step::HandEditNotes,
    Step::PatchNotes,
    Step::InsertAWide,
    Step::Checkpoint,
    Step::DeleteB,
    Step::InsertA,
];

/// Runs one step; `Ok(true)` when it was acknowledged.
fn run(rt: &tokio::runtime::Runtime, store: &DirStore, dir: &Path, step: Step) -> bool {
    let none = Expect::none();
    let outcome = match step {
        Step::ReplaceA => rt
            .block_on(store.replace_table(
                "a",
                Records::from_fields(
                    vec!["id".into(), "name".into(), "zip".into()],
                    vec![
                        fields(&[("name", "kim"), ("zip", "007")]),
                        fields(&[("name", "lee, \"jr\""), ("zip", "10001")]),
                        fields(&[("name", "park\nline two"), ("zip", "")]),
                    ],
                ),
                &none,
            ))
            .map(drop),
        Step::InsertA => rt
            .block_on(store.insert(
                "a",
                records(vec![
                    fields(&[("name", "choi")]),
                    fields(&[("name", "한국")]),
                ]),
                &none,
            ))
            .map(drop),
        Step::PutA2 => rt
            .block_on(store.put_row("a", "2", fields(&[("name", "lee2")]), &none))
            .map(drop),
        Step::PatchA1 => rt
            .block_on(store.patch_row("a", "1", fields(&[("zip", "00501")]), &none))
            .map(drop),
        Step::InsertB => rt
            .block_on(store.insert("b", records(vec![fields(&[("x", "1")])]), &none))
            .map(drop),
        Step::DeleteA3 => rt.block_on(store.delete_row("a", "3", &none)),
        Step::InsertNotes => rt
            .block_on(store.insert("notes", records(vec![fields(&[("text", "first")])]), &none))
            .map(drop),
        Step::HandEditNotes => {
            let text = format!("id,text\n1,first\n99,{HAND_MARKER}\n");
            std::fs::write(dir.join("notes.csv"), text).expect("hand edit");
            // Let the store notice it, as a reader would.
            let _ = rt.block_on(store.tables());
            return true;
        }
        Step::PatchNotes => rt
            .block_on(store.patch_row("notes", "1", fields(&[("text", "patched")]), &none))
            .map(drop),
        Step::InsertAWide => rt
            .block_on(store.insert(
                "a",
                records(vec![fields(&[("name", "wide"), ("city", "Seoul")])]),
                &none,
            ))
            .map(drop),
        Step::DeleteB => rt.block_on(store.delete_table("b", &none)),
        Step::Checkpoint => return store.checkpoint().is_ok_and(|f| f.is_empty()),
    };
    outcome.is_ok()
}

/// What a store holds: each table's columns and rows, as text.
type Contents = Vec<(String, Vec<String>, Vec<Vec<String>>)>;

fn contents(rt: &tokio::runtime::Runtime, store: &DirStore, skip: &[&str]) -> Contents {
    let mut out = Vec::new();
    for info in rt.block_on(store.tables()).expect("tables") {
        if skip.contains(&info.name.as_str()) {
            continue;
        }
        assert!(info.error.is_none(), "{}: {:?}", info.name, info.error);
        let snapshot = rt.block_on(store.read(&info.name)).expect("read");
        let width = snapshot.columns.len();
        let rows = snapshot
            .rows
            .iter()
            .map(|r| r.cells(width).map(str::to_string).collect())
            .collect();
        out.push((info.name, snapshot.columns.to_vec(), rows));
    }
    out
}

/// Whether the hand edit survives: in the table, or in a conflict file.
fn hand_edit_kept(rt: &tokio::runtime::Runtime, store: &DirStore, dir: &Path) -> bool {
    let in_table = rt.block_on(store.read("notes")).is_ok_and(|s| {
        s.rows
            .iter()
            .any(|r| r.cells(s.columns.len()).any(|c| c == HAND_MARKER))
    });
    let in_file = std::fs::read_dir(dir).expect("dir").flatten().any(|e| {
        let name = e.file_name().to_string_lossy().to_string();
        name.starts_with("notes.csv")
            && std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains(HAND_MARKER))
    });
    in_table || in_file
}

fn every_csv_parses(dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        let path: PathBuf = entry.path();
        if path.extension().is_some_and(|e| e == "csv") {
            let bytes = std::fs::read(&path).expect("read csv");
            super::file::parse(&bytes)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
        }
    }
}

/// How one run ended, for the report.
#[derive(Debug, Default)]
struct Tally {
    runs: usize,
    acknowledged: usize,
    refused: usize,
}

/// Runs the workload with `arm` setting up the faults (after the store
/// opened), crashes or stops, restarts on a healthy disk and checks.
///
/// With `sticky`, the disk never works again once the fault hits, so even
/// cutting the failed batch off the log fails: that one batch (refused to
/// its writers) may then be found again at the restart, and is the only
/// difference from the oracle allowed.
fn one_run(
    faults: &Arc<Faults>,
    arm: impl FnOnce(&Faults),
    sticky: bool,
    tally: &mut Tally,
    label: &str,
) {
    let rt = runtime();
    let data = scratch();
    let truth = scratch();
    let oracle = DirStore::open(truth.path(), "id", options()).expect("oracle");
    let truth_plus = scratch();
    let oracle_plus = DirStore::open(truth_plus.path(), "id", options()).expect("oracle");
    let mut first_refusal = true;
    let store = open_faulty(data.path(), faults);
    arm(faults);
    let mut hand_edit_done = false;
    for &step in WORKLOAD {
        let acknowledged = run(&rt, &store, data.path(), step);
        if matches!(step, Step::HandEditNotes) {
            hand_edit_done = true;
        }
        if acknowledged {
            tally.acknowledged += 1;
            if !matches!(step, Step::Checkpoint | Step::HandEditNotes) {
                assert!(
                    run(&rt, &oracle, truth.path(), step),
                    "{label}: {step:?} was acknowledged, but the oracle refused it"
                );
                run(&rt, &oracle_plus, truth_plus.path(), step);
            }
        } else {
            tally.refused += 1;
            if first_refusal && !matches!(step, Step::Checkpoint | Step::HandEditNotes) {
                first_refusal = false;
                run(&rt, &oracle_plus, truth_plus.path(), step);
            }
        }
    }
    // Half the runs end in a crash, half in a graceful stop (whose final
    // checkpoint may fail: the log still has everything).
    if tally.runs.is_multiple_of(2) {
        store.crash();
    } else {
        let _ = rt.block_on(store.flush());
    }
    drop(store);
    faults.reset();
    let store = DirStore::open(data.path(), "id", options())
        .unwrap_or_else(|e| panic!("{label}: restart refused: {e}"));
    let got = contents(&rt, &store, &["notes"]);
    let want = contents(&rt, &oracle, &["notes"]);
    if !(sticky && got == contents(&rt, &oracle_plus, &["notes"])) {
        assert_eq!(
            got, want,
            "{label}: acknowledged writes differ after restart"
        );
    }
    if hand_edit_done {
        assert!(
            hand_edit_kept(&rt, &store, data.path()),
            "{label}: the hand edit was lost"
        );
    }
    rt.block_on(store.flush()).expect("flush after restart");
    every_csv_parses(data.path());
    oracle.crash();
    oracle_plus.crash();
    tally.runs += 1;
}

#[test]
fn every_fault_point_of_writes_and_checkpoints_keeps_the_promise() {
    let faults = Faults::new();
    // A run with nothing armed counts the fault points.
    let mut tally = Tally::default();
    one_run(&faults, |_| {}, false, &mut tally, "no fault");
    let rt = runtime();
    let probe = scratch();
    let store = open_faulty(probe.path(), &faults);
    for &step in WORKLOAD {
        run(&rt, &store, probe.path(), step);
    }
    let points = faults.calls();
    store.crash();
    drop(store);
    assert!(
        points > 50,
        "only {points} fault points: is the seam bypassed?"
    );
    for at in 0..points {
        for (fault, sticky) in [
            (Fault::Io, false),
            (Fault::NoSpace, false),
            (Fault::ShortWrite, false),
            (Fault::Io, true),
        ] {
            let label = format!("call {at} of {points} failing with {fault:?} (sticky: {sticky})");
            one_run(
                &faults,
                |f| f.fail_at(at, fault, sticky),
                sticky,
                &mut tally,
                &label,
            );
        }
    }
    eprintln!(
        "fault walk: {points} fault points, {} runs, {} steps acknowledged, {} refused",
        tally.runs, tally.acknowledged, tally.refused
    );
}

#[test]
fn every_fault_point_of_recovery_keeps_the_promise() {
    let rt = runtime();
    let faults = Faults::new();
    // Count recovery's calls once.
    let prepare = |data: &Path, truth: &Path| {
        let store = DirStore::open(data, "id", options()).expect("open");
        let oracle = DirStore::open(truth, "id", options()).expect("oracle");
        for &step in WORKLOAD {
            if !matches!(step, Step::HandEditNotes | Step::PatchNotes) {
                assert!(run(&rt, &store, data, step));
                run(&rt, &oracle, truth, step);
            }
        }
        store.crash();
        oracle
    };
    let data = scratch();
    let truth = scratch();
    let oracle = prepare(data.path(), truth.path());
    faults.reset();
    let store = DirStore::open_on(
        data.path(),
        "id",
        options(),
        Disk::with_faults(faults.clone()),
    )
    .expect("recovery");
    let points = faults.calls();
    store.crash();
    oracle.crash();
    assert!(points > 10, "only {points} recovery fault points");
    for at in 0..points {
        for fault in [Fault::Io, Fault::NoSpace, Fault::ShortWrite] {
            let label = format!("recovery call {at} of {points} failing with {fault:?}");
            let data = scratch();
            let truth = scratch();
            let oracle = prepare(data.path(), truth.path());
            faults.reset();
            faults.fail_at(at, fault, false);
            if let Ok(store) = DirStore::open_on(
                data.path(),
                "id",
                options(),
                Disk::with_faults(faults.clone()),
            ) {
                store.crash();
            }
            faults.reset();
            let store = DirStore::open(data.path(), "id", options())
                .unwrap_or_else(|e| panic!("{label}: second start refused: {e}"));
            assert_eq!(
                contents(&rt, &store, &[]),
                contents(&rt, &oracle, &[]),
                "{label}: acknowledged writes differ"
            );
            rt.block_on(store.flush()).expect("flush");
            every_csv_parses(data.path());
            oracle.crash();
        }
    }
    eprintln!(
        "recovery fault walk: {points} fault points, {} runs",
        points * 3
    );
}

#[test]
fn a_log_that_can_be_read_but_not_written_keeps_reads_going() {
    use super::disk::Call;
    use super::Error;
    use std::time::Instant;
    let rt = runtime();
    let faults = Faults::new();
    let data = scratch();
    let store = open_faulty(data.path(), &faults);
    assert!(run(&rt, &store, data.path(), Step::ReplaceA));
    // The disk stops taking writes, so the failed batch cannot even be cut
    // off the log; it still reads.
    faults.break_calls(&[Call::Write, Call::Sync, Call::Truncate]);
    assert!(!run(&rt, &store, data.path(), Step::InsertA));
    let deadline = Instant::now() + Duration::from_secs(60);
    let rows = loop {
        match rt.block_on(store.read("a")) {
            Ok(snapshot) => break snapshot.rows.len(),
            Err(Error::Unavailable(_)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(err) => panic!("reads did not come back: {err}"),
        }
    };
    assert_eq!(rows, 3, "what was acknowledged, without the refused rows");
    match rt.block_on(store.insert(
        "a",
        records(vec![fields(&[("name", "x")])]),
        &Expect::none(),
    )) {
        Err(Error::Unavailable(why)) => assert!(why.contains("reads go on"), "{why}"),
        Err(err) => panic!("unexpected error: {err}"),
        Ok(_) => panic!("a write was taken while the log cannot be written"),
    }
    // The disk heals: writes are taken again, without a restart.
    faults.reset();
    while !run(&rt, &store, data.path(), Step::InsertA) {
        assert!(Instant::now() < deadline, "writes never came back");
        std::thread::sleep(Duration::from_millis(20));
    }
    store.crash();
    drop(store);
    let store = DirStore::open(data.path(), "id", options()).expect("restart");
    let names: Vec<String> = contents(&rt, &store, &[])[0]
        .2
        .iter()
        .map(|row| row[1].clone())
        .collect();
    assert_eq!(
        names,
        ["kim", "lee, \"jr\"", "park\nline two", "choi", "한국"]
    );
}
