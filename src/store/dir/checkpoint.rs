//! Checkpoints: bring changed tables' CSV files up to date (`checkpoint`,
//! `stage`, `put_in_place`) and drop the log segments they covered; the
//! background checkpointer thread that runs them once writes settle, and
//! the backoff when they (or a rebuild) fail (`tick`, `retry_later`,
//! `retry_done`).
//!
//! It must never drop a log segment before every file it covered is
//! durable, never replace a file without the log first naming the new one,
//! and never overwrite a file changed by hand (it is set aside first).

use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::store::file::{self, Layout};
use crate::store::table::Image;
use crate::store::wal::Op;
use crate::store::Result;

use super::{disk_stamp, read, slow, write, Content, DirStore, Slot};

/// First wait after a failed checkpoint or recovery; it doubles up to
/// [`MAX_RETRY`] so a disk that stays broken is not hammered.
const FIRST_RETRY: Duration = Duration::from_millis(200);

const MAX_RETRY: Duration = Duration::from_secs(30);

#[derive(Default)]
pub(super) struct Retry {
    failures: u32,
    next: Option<Instant>,
}

/// What a checkpoint writes for one table: its header and rows, or
/// nothing for a table that was dropped.
type TableImage = Option<(Arc<Vec<String>>, Image)>;

impl DirStore {
    /// Brings every changed table's file up to date, then drops the log
    /// segments those changes were in. Returns what could not be written
    /// (empty when every file is up to date).
    pub fn checkpoint(&self) -> Result<Vec<String>> {
        let _one = self
            .checkpointing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.available()?;
        // The next log segment is made (and made durable) before anything
        // is held, so the rotation below does no I/O.
        let next = self.wal.prepare_rotation()?;
        // The world is held only to list the tables with changes and switch
        // to the new segment: every change in the older segments is then in
        // a table listed here (a write marks its table dirty before it
        // appends, under the table's lock).
        let (listed, current) = {
            let _world = write(&self.world);
            if let Err(err) = self.available() {
                if let Some(next) = next {
                    self.wal.discard_prepared(next);
                }
                return Err(err);
            }
            self.any_dirty.store(false, Ordering::Release);
            let listed: Vec<(String, Arc<Slot>)> = self
                .slots
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .filter(|(_, slot)| read(&slot.state).dirty)
                .map(|(name, slot)| (name.clone(), slot.clone()))
                .collect();
            (listed, self.wal.rotate(next)?)
        };
        // Each table's image is taken under its own read lock, after the
        // rotation: a count per thousand rows, so writes to it wait
        // microseconds, and to other tables not at all. It may
        // hold changes logged in the new segment too: replaying those over
        // the file is harmless, as every logged change sets rows, ids or
        // the header to a value (replaying a prefix of the changes twice
        // gives what replaying it once does).
        let mut work = Vec::new();
        for (name, slot) in listed {
            let state = read(&slot.state);
            let snapshot = match &state.content {
                Content::Loaded(table) => Some((table.columns().clone(), table.image())),
                _ => None,
            };
            let (generation, layout) = (state.generation, state.layout);
            drop(state);
            work.push((name, slot, generation, layout, snapshot));
        }
        let started = Instant::now();
        let tables = work.len();
        let mut failures = Vec::new();
        let mut staged = Vec::new();
        for (name, slot, generation, layout, snapshot) in work {
            match self.stage(&name, layout, snapshot) {
                Ok(file) => staged.push((name, slot, generation, file)),
                Err(err) => failures.push(format!("table {name}: {err}")),
            }
        }
        // The log names the new files before they replace the old ones, so
        // that after a crash at any point each is known as the engine's own.
        let written: Vec<Op> = staged
            .iter()
            .filter_map(|(name, _, _, file)| {
                file.as_ref().map(|f| Op::Written {
                    table: name.clone(),
                    hash: f.hash,
                })
            })
            .collect();
        if !written.is_empty() {
            let logged = {
                let _world = read(&self.world);
                self.wal.append(&written)
            }
            .and_then(|lsn| slow(|| self.wal.wait(lsn)));
            if let Err(err) = logged {
                staged
                    .into_iter()
                    .filter_map(|(_, _, _, f)| f)
                    .for_each(file::discard);
                failures.push(format!("cannot log the checkpoint: {err}"));
                self.any_dirty.store(true, Ordering::Release);
                return Ok(failures);
            }
        }
        for (name, slot, generation, file) in staged {
            if let Err(err) = self.put_in_place(&name, &slot, generation, file) {
                failures.push(format!("table {name}: {err}"));
            }
        }
        if failures.is_empty() {
            // The feed's numbering goes into the current segment, and every
            // batch of the older ones is decided, before they go.
            let marked = self.wal.mark();
            marked.and_then(|lsn| slow(|| self.wal.wait(lsn)))?;
            let mut old_segments = self.wal.segments_before(current)?;
            // Oldest first, so that a crash in between leaves an unbroken run.
            old_segments.sort();
            for segment in &old_segments {
                self.disk.remove_file(segment)?;
            }
            if !old_segments.is_empty() {
                self.disk.sync_dir(&self.dir.join(".csvd"))?;
            }
            self.checkpoints.fetch_add(1, Ordering::Relaxed);
            self.prune_bases();
            if tables > 0 {
                tracing::info!(
                    tables,
                    ms = started.elapsed().as_millis() as u64,
                    "checkpoint: CSV files brought up to date"
                );
            }
        } else {
            self.any_dirty.store(true, Ordering::Release);
        }
        Ok(failures)
    }

    /// Writes one table's snapshot to a temporary file beside its own.
    fn stage(
        &self,
        name: &str,
        layout: Layout,
        snapshot: TableImage,
    ) -> io::Result<Option<file::Staged>> {
        let Some((columns, image)) = &snapshot else {
            return Ok(None);
        };
        // Listed here, with no lock held.
        let rows = &image.rows();
        let staged = file::stage(&self.disk, &self.path(name), columns, rows, layout)?;
        // The engine's own copy, out of a person's reach: what the next
        // changes to this table build on.
        if let Err(err) = self.keep_base(name, staged.hash, staged.path()) {
            file::discard(staged);
            return Err(err);
        }
        Ok(Some(staged))
    }

    /// Renames a staged file over the table's (or removes the file of a
    /// dropped table), after setting aside a hand edit made meanwhile.
    fn put_in_place(
        &self,
        name: &str,
        slot: &Slot,
        generation: u64,
        staged: Option<file::Staged>,
    ) -> Result<()> {
        let path = self.path(name);
        let world = read(&self.world);
        let mut state = slot.write();
        if let Err(err) = self.refresh(name, &mut state) {
            if let Some(staged) = staged {
                file::discard(staged);
            }
            return Err(err);
        }
        let mut replaced = None;
        match staged {
            Some(staged) => {
                let hash = staged.hash;
                let (stamp, kept, old) =
                    file::commit_keeping_replaced(&self.disk, staged, &path, state.stamp)?;
                replaced = old;
                state.stamp = Some(stamp);
                if let Some(kept) = kept {
                    let notice = format!(
                        "{} was changed by hand while a checkpoint was writing it: the edited file was kept as {}, and the table keeps its changes",
                        path.display(),
                        kept.display()
                    );
                    tracing::error!(table = name, "{notice}");
                    state.notice = Some(notice);
                }
                state.file_hash = Some(hash);
            }
            None => {
                if disk_stamp(&path).is_some() {
                    file::remove(&self.disk, &path)?;
                }
                state.stamp = None;
                state.file_hash = None;
            }
        }
        if state.generation == generation {
            state.dirty = false;
        }
        // The file replaced goes once the table is free again: freeing a
        // large file's blocks takes long, and readers wait for this lock.
        drop(state);
        drop(world);
        if let Some(old) = replaced {
            let _ = file::free_gradually(&self.disk, &old, &self.dir);
        }
        Ok(())
    }

    fn should_checkpoint(&self) -> bool {
        if !self.any_dirty.load(Ordering::Acquire) {
            return false;
        }
        let idle =
            self.started.elapsed().as_millis() as u64 - self.last_write_ms.load(Ordering::Acquire);
        idle >= self.options.settle.as_millis() as u64
            || self.wal.segment_bytes() >= self.options.max_log_bytes
    }

    /// One round of the background work: rebuild after a failure, or
    /// checkpoint once writes settle; failures back off.
    fn tick(&self) {
        let due = {
            let retry = self.retry.lock().unwrap_or_else(PoisonError::into_inner);
            retry.next.is_none_or(|next| Instant::now() >= next)
        };
        if !due {
            return;
        }
        let rebuilt = self.rebuilt_after.load(Ordering::Acquire) == self.wal.failures();
        if rebuilt && !self.unavailable.load(Ordering::Acquire) && self.wal.is_failed() {
            // Memory is what was acknowledged; only the log waits for repair.
            match self.repair_log() {
                Ok(()) => self.retry_done(),
                Err(err) => self.retry_later(&err),
            }
        } else if self.unavailable.load(Ordering::Acquire) || !rebuilt {
            match self.rebuild() {
                Ok(()) => self.retry_done(),
                Err(err) => {
                    self.set_unavailable(err.clone());
                    self.retry_later(&err);
                }
            }
        } else if self.should_checkpoint() {
            match self.checkpoint() {
                Ok(failures) if failures.is_empty() => self.retry_done(),
                Ok(failures) => self.retry_later(&failures.join("; ")),
                Err(err) => self.retry_later(&err.to_string()),
            }
        }
    }

    pub(super) fn retry_later(&self, what: &str) {
        let mut retry = self.retry.lock().unwrap_or_else(PoisonError::into_inner);
        let delay = FIRST_RETRY
            .saturating_mul(1 << retry.failures.min(16))
            .min(MAX_RETRY);
        retry.failures += 1;
        retry.next = Some(Instant::now() + delay);
        tracing::error!(
            attempt = retry.failures,
            "cannot bring the CSV files up to date: {what}; every acknowledged write is kept in the write-ahead log; trying again in {}",
            humantime::format_duration(delay)
        );
    }

    fn retry_done(&self) {
        let mut retry = self.retry.lock().unwrap_or_else(PoisonError::into_inner);
        if retry.failures > 0 {
            tracing::info!(
                "storage is healthy again after {} failed attempts",
                retry.failures
            );
        }
        *retry = Retry::default();
    }
}

/// The background checkpointer: checks a few times a second whether writes
/// have settled, the log has grown, or a failure needs recovering from;
/// ends with the store.
pub(super) fn checkpointer(store: Weak<DirStore>) {
    yield_to_requests();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let Some(store) = store.upgrade() else { return };
        store.tick();
    }
}

/// Lowers this thread's priority (nice 10): writing a large table's file is
/// seconds of work that must not take a core from requests when they
/// compete for it, and gets the whole core back when they do not.
fn yield_to_requests() {
    if let Err(err) = crate::store::os::lower_thread_priority(10) {
        tracing::debug!("the checkpointer keeps its priority: {err}");
    }
}
