//! Any bytes as a request body of this kind (see `checks::body`).
#![no_main]

#[path = "../checks.rs"]
mod checks;

use csvd::codec::body::BodyKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| checks::body(BodyKind::KeyValue, data));
