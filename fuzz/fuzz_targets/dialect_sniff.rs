//! Any bytes through the dialect sniffer (see `checks::dialect_sniff`).
#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| checks::dialect_sniff(data));
