//! Any bytes as a write-ahead log segment (see `checks::wal`).
#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| checks::wal(data));
