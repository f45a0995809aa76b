//! Any bytes as a table file (see `checks::csv_file`).
#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| checks::csv_file(data));
