//! A table's state in memory and its freshness against the table's file.
//!
//! [`TableState`] is what a slot's lock guards: the table (or why its file
//! cannot be read), what we last knew of its file, and whether memory is
//! ahead of it. Every write, and a read when no read has found the file
//! unchanged for `Options::file_check` (`checked_lately`), first compares
//! the file with what we last knew (`is_fresh`); a file changed by someone
//! else is reloaded (`refresh`,
//! `reload`), or, while memory holds changes it lacks, set aside after the
//! table is logged whole (`keep_hand_edit`).
//!
//! It must never overwrite or remove a person's file, never drop changes
//! that are not yet in a file, and never write anything when the store is
//! read-only.

use std::fs;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use crate::store::file::{self, Layout, Stamp};
use crate::store::table::Table;
use crate::store::wal::Op;
use crate::store::{Error, Result, TableInfo};

use super::schemas::Meta;
use super::writes::change;
use super::{disk_stamp, read, slow, DirStore};
use crate::feed::What;

#[derive(Default)]
pub(super) struct TableState {
    pub(super) content: Content,
    /// The file as we last read or wrote it; `None` when there is none.
    pub(super) stamp: Option<Stamp>,
    /// Hash of that file's bytes, as the log names it.
    pub(super) file_hash: Option<u64>,
    pub(super) layout: Layout,
    /// Memory holds changes the file does not have yet.
    pub(super) dirty: bool,
    /// Counts writes, so a checkpoint knows whether it caught the latest.
    pub(super) generation: u64,
    /// Changes to this table were logged (or replayed) since the store
    /// opened: a hand edit of its file must then be logged too.
    pub(super) logged: bool,
    /// A hand edit kept under another name, for the table list.
    pub(super) notice: Option<String>,
    /// The generation last logged whole because of a hand edit.
    pub(super) imaged: Option<u64>,
    /// The file's modification time, for a file that cannot be read.
    pub(super) file_modified: Option<SystemTime>,
    /// The table's declared metadata (`<file>-metadata.json`), as last read.
    pub(super) meta: Meta,
}

#[derive(Default)]
pub(super) enum Content {
    #[default]
    Absent,
    Loaded(Table),
    Broken(String),
}

impl DirStore {
    /// Whether memory and file agree with what we last knew of the file.
    fn is_fresh(&self, name: &str, state: &TableState) -> bool {
        let path = self.path(name);
        let stamp = disk_stamp(&path);
        stamp == state.stamp
            && !(stamp.is_some() && matches!(state.content, Content::Absent))
            && state.meta.is_fresh(&path)
    }

    /// Whether a read found the table's file as expected less than
    /// `options.file_check` ago, with no change to the state since: then
    /// the read may skip looking at the file (a system call). Writes always
    /// look, so a hand edit is noticed within `file_check` by reads and
    /// always before a write.
    fn checked_lately(&self, slot: &super::Slot) -> bool {
        let checked = slot.checked.load(Ordering::Acquire);
        let window = self.options.file_check.as_micros() as u64;
        checked != 0 && window != 0 && self.micros().saturating_sub(checked) < window
    }

    /// Microseconds since the store started, plus one (never zero).
    fn micros(&self) -> u64 {
        self.started.elapsed().as_micros() as u64 + 1
    }

    /// Brings a table's state in line with its file if the file changed.
    /// Callers hold the world lock (shared): this may append to the log.
    pub(super) fn refresh(&self, name: &str, state: &mut TableState) -> Result<()> {
        if self.is_fresh(name, state) {
            return Ok(());
        }
        if self.refresh_meta(name, state) && !state.dirty {
            // The declared dialect changed: the file reads anew by it.
            self.reload(name, state);
            return Ok(());
        }
        if self.is_fresh(name, state) {
            return Ok(());
        }
        if state.dirty {
            return self.keep_hand_edit(name, state);
        }
        // A log that cannot be written (reads still served) cannot name the
        // new file; recovery then treats it as an edit made while down.
        let writable = !self.options.read_only && !self.wal.is_failed();
        let known = state.logged && writable;
        // A file we had read changed (not a first load): the feed says so.
        let edited = state.stamp.is_some() && writable;
        self.reload(name, state);
        let mut ops = Vec::new();
        if known {
            // The table's logged changes are all in the file the person
            // replaced: from here on, their file is what the log builds on.
            ops.push(Op::Base {
                table: name.to_string(),
                hash: state.file_hash,
            });
        }
        let mut changes = Vec::new();
        if edited {
            let what = match &state.content {
                Content::Absent => What::Dropped,
                _ => What::Replaced,
            };
            changes.push(change(name, loaded(name, state).ok(), what));
        }
        if !ops.is_empty() || !changes.is_empty() {
            let lsn = self.wal.append_changes(&ops, changes)?;
            slow(|| self.wal.wait(lsn))?;
        }
        Ok(())
    }

    /// A file changed by someone else while memory held changes it lacks:
    /// logs the table whole (so neither a crash nor the missing original
    /// can lose those changes), then keeps the person's file under a name
    /// of its own. The next checkpoint writes the table's file afresh.
    fn keep_hand_edit(&self, name: &str, state: &mut TableState) -> Result<()> {
        if self.options.read_only {
            // Nothing may be written: memory (the file plus the log) stays
            // what is served, and the person's file stays where it is.
            tracing::warn!(
                table = name,
                "the table's file was changed by hand, but the log holds changes it lacks; read-only: serving the table with those changes, the file is left as it is"
            );
            state.stamp = disk_stamp(&self.path(name));
            return Ok(());
        }
        match &state.content {
            // Logged whole once per version of the table: setting the file
            // aside may fail and be retried on every access.
            Content::Loaded(table) if state.imaged != Some(state.generation) => {
                let lsn = self.wal.append(&[Op::Replace {
                    table: name.to_string(),
                    columns: table.columns().to_vec(),
                    rows: table.rows(),
                }])?;
                slow(|| self.wal.wait(lsn))?;
                state.imaged = Some(state.generation);
            }
            _ => {}
        }
        let path = self.path(name);
        if disk_stamp(&path).is_some() {
            let aside = file::set_aside(&self.disk, &path).map_err(|err| {
                tracing::error!(table = name, "cannot set a hand-edited file aside: {err}");
                Error::Io(err)
            })?;
            let notice = format!(
                "{} was changed on disk while the table had changes not yet written to it: the edited file was kept as {}, and the table keeps its changes",
                path.display(),
                aside.display()
            );
            tracing::error!(table = name, kept = %aside.display(), "{notice}");
            state.notice = Some(notice);
        } else {
            tracing::warn!(
                table = name,
                "the table's file was removed while it had changes not yet written to it; it will be written again"
            );
        }
        state.stamp = None;
        state.file_hash = None;
        Ok(())
    }

    /// Reads the table's state from its file (absent when there is none).
    pub(super) fn reload(&self, name: &str, state: &mut TableState) {
        let path = self.path(name);
        let keep = (state.generation, state.logged, state.notice.take());
        let meta = Meta::read(&self.disk, &path, &self.id_column);
        let declared = meta.dialect();
        *state = match disk_stamp(&path) {
            None => TableState::default(),
            Some(stamp) => match slow(|| {
                file::load_declared(&self.disk, &path, &self.id_column, declared)
            }) {
                Ok(loaded) => {
                    tracing::info!(
                        table = name,
                        rows = loaded.table.len(),
                        "loaded table from its file"
                    );
                    TableState {
                        content: Content::Loaded(loaded.table),
                        stamp: Some(loaded.stamp),
                        file_hash: Some(loaded.hash),
                        layout: loaded.layout,
                        ..TableState::default()
                    }
                }
                Err(err) => {
                    tracing::error!(table = name, file = %path.display(), "cannot read table file: {err}");
                    TableState {
                        content: Content::Broken(err.to_string()),
                        stamp: Some(stamp),
                        file_hash: file::hash_of(&self.disk, &path),
                        file_modified: fs::symlink_metadata(&path).and_then(|m| m.modified()).ok(),
                        ..TableState::default()
                    }
                }
            },
        };
        (state.generation, state.logged, state.notice) = keep;
        if matches!(state.content, Content::Absent) {
            state.layout = meta.new_layout();
        }
        state.meta = meta;
    }

    /// Runs `f` on the table's current state under its read lock.
    pub(super) fn with_read<T>(
        &self,
        name: &str,
        f: impl FnOnce(&TableState) -> Result<T>,
    ) -> Result<T> {
        let slot = self.slot(name, false)?;
        {
            let state = read(&slot.state);
            if self.checked_lately(&slot) {
                self.readable()?;
                return f(&state);
            }
            let now = self.micros();
            if self.is_fresh(name, &state) {
                slot.checked.store(now, Ordering::Release);
                self.readable()?;
                return f(&state);
            }
        }
        let _world = read(&self.world);
        let mut state = slot.write();
        self.readable()?;
        self.refresh(name, &mut state)?;
        f(&state)
    }

    pub(super) fn info(&self, name: &str, state: &TableState) -> Option<TableInfo> {
        match &state.content {
            Content::Absent => None,
            _ if state.meta.error.is_some() => Some(TableInfo {
                name: name.to_string(),
                rows: 0,
                columns: Vec::new(),
                modified: state.file_modified.unwrap_or(SystemTime::UNIX_EPOCH),
                version: 0,
                error: state.meta.error.clone(),
                notice: state.notice.clone(),
            }),
            Content::Loaded(table) => Some(TableInfo {
                name: name.to_string(),
                rows: table.len(),
                columns: table.columns().to_vec(),
                modified: table.modified,
                version: table.version,
                error: None,
                notice: state.notice.clone(),
            }),
            Content::Broken(reason) => Some(TableInfo {
                name: name.to_string(),
                rows: 0,
                columns: Vec::new(),
                modified: state.file_modified.unwrap_or(SystemTime::UNIX_EPOCH),
                version: 0,
                error: Some(reason.clone()),
                notice: state.notice.clone(),
            }),
        }
    }
}

impl TableState {
    /// The state as loaded from the file, leaving this one empty.
    pub(super) fn take_file(&mut self) -> TableState {
        std::mem::take(self)
    }
}

pub(super) fn broken_or_missing(name: &str, content: &Content) -> Error {
    match content {
        Content::Broken(reason) => Error::BrokenTable {
            table: name.to_string(),
            reason: reason.clone(),
        },
        _ => Error::NoTable(name.to_string()),
    }
}

pub(super) fn loaded<'a>(name: &str, state: &'a TableState) -> Result<&'a Table> {
    if let Some(reason) = &state.meta.error {
        return Err(Error::BrokenTable {
            table: name.to_string(),
            reason: reason.clone(),
        });
    }
    match &state.content {
        Content::Loaded(table) => Ok(table),
        other => Err(broken_or_missing(name, other)),
    }
}

pub(super) fn loaded_mut<'a>(name: &str, state: &'a mut TableState) -> Result<&'a mut Table> {
    if let Some(reason) = &state.meta.error {
        return Err(Error::BrokenTable {
            table: name.to_string(),
            reason: reason.clone(),
        });
    }
    match &mut state.content {
        Content::Loaded(table) => Ok(table),
        other => Err(broken_or_missing(name, other)),
    }
}
