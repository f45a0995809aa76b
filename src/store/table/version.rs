//! Table versions: [`fresh_version`] gives a table a version no table had
//! before, in this process or any other.
//!
//! A version is compared for equality only: it must never be handed out
//! twice, and nothing may rely on its order. No I/O.

use std::hash::{BuildHasher, RandomState};
use std::time::SystemTime;

use xxhash_rust::xxh3::Xxh3;

/// A table version never handed out before, in this process or any other:
/// a per-process random key (the same kind that keys hash maps), the clock
/// and a counter, hashed. Versions are compared for equality only, so they
/// need to be unique, not ordered.
pub fn fresh_version() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static KEY: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let key = *KEY.get_or_init(|| RandomState::new().hash_one(std::process::id()));
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut hasher = Xxh3::new();
    hasher.update(&key.to_le_bytes());
    hasher.update(&nanos.to_le_bytes());
    hasher.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    hasher.digest()
}
