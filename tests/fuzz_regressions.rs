//! Replays every input kept under `tests/fuzz-regressions/<target>/`
//! (crashers the fuzzers found, and hand-picked edge cases) through the
//! same checks the fuzz targets run.

#[path = "../fuzz/checks.rs"]
mod checks;

use csvd::codec::body::BodyKind;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-regressions")
        .join(target);
    let mut found: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            (path.display().to_string(), std::fs::read(&path).unwrap())
        })
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no inputs for {target}");
    found
}

#[test]
fn body_inputs() {
    for (target, kind) in [
        ("body_json", BodyKind::Json),
        ("body_csv", BodyKind::Csv),
        ("body_form", BodyKind::Form),
        ("body_key_value", BodyKind::KeyValue),
    ] {
        for (name, data) in inputs(target) {
            eprintln!("{name}");
            checks::body(kind, &data);
        }
    }
}

#[test]
fn csv_file_inputs() {
    for (name, data) in inputs("csv_file") {
        eprintln!("{name}");
        checks::csv_file(&data);
    }
}

#[test]
fn dialect_sniff_inputs() {
    for (name, data) in inputs("dialect_sniff") {
        eprintln!("{name}");
        checks::dialect_sniff(&data);
    }
}

#[test]
fn wal_inputs() {
    for (name, data) in inputs("wal_replay") {
        eprintln!("{name}");
        checks::wal(&data);
    }
}

#[test]
fn query_inputs() {
    for (name, data) in inputs("query_params") {
        eprintln!("{name}");
        checks::query(&data);
    }
}
