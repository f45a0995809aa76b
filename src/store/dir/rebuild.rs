//! The rebuild after a log failure: cut the log back to its last durable
//! byte and rebuild every table from its file and the log, as a restart
//! would.
//!
//! It must never leave a refused change in memory, and never let requests
//! be served before it has succeeded.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use super::{write, DirStore, Slot, TableState};

impl DirStore {
    /// After the log failed: cuts it back to its last durable byte and
    /// rebuilds every table from its file and the log, as a restart would,
    /// so that nothing refused stays in memory. Requests are refused until
    /// it succeeds.
    pub(super) fn rebuild(&self) -> std::result::Result<(), String> {
        let _one = self
            .checkpointing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let _world = write(&self.world);
        if let Some(failure) = self.wal.failure() {
            self.set_unavailable(failure);
        }
        // No batch can fail while the world lock holds appends off.
        let failures = self.wal.failures();
        let ops = match self.wal.repair() {
            Ok(()) => self.wal.read_all(),
            Err(err) => {
                // The failed bytes cannot be cut off yet: serve reads from
                // what is durable, and keep refusing writes (the log stays
                // failed) until a later repair succeeds.
                tracing::error!(
                    "cannot repair the write-ahead log ({err}); serving reads from what was acknowledged, refusing writes until it can be written again"
                );
                self.wal.read_durable()
            }
        }
        .map_err(|err| format!("cannot read the write-ahead log back: {err}"))?;
        let slots: Vec<Arc<Slot>> = self
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for slot in slots {
            let mut state = slot.write();
            *state = TableState {
                generation: state.generation + 1,
                ..TableState::default()
            };
        }
        self.recover(ops, false)
            .map_err(|err| format!("cannot rebuild the tables: {err}"))?;
        *self
            .unavailable_reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        self.rebuilt_after.store(failures, Ordering::Release);
        self.unavailable.store(false, Ordering::Release);
        tracing::info!("tables rebuilt from disk after a storage failure; serving again");
        Ok(())
    }

    /// Tries again to cut the failed bytes off the log, once memory already
    /// holds only what was acknowledged; writes are accepted again after.
    pub(super) fn repair_log(&self) -> std::result::Result<(), String> {
        let _one = self
            .checkpointing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let _world = write(&self.world);
        self.wal
            .repair()
            .map_err(|err| format!("cannot repair the write-ahead log: {err}"))
    }
}
