//! Recovery: replaying the write-ahead log over the table files, one table
//! at a time (`recover`, `replay_table`, `apply`), at start and when memory
//! is rebuilt after a log failure.
//!
//! It must never apply logged changes over a file they do not build on,
//! never overwrite a file changed by hand (it is set aside), and, without
//! salvage, never drop a change it cannot apply: the start is refused.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use crate::store::file;
use crate::store::table::Table;
use crate::store::wal::Op;
use crate::store::{validate_table_name, Row};

use super::{disk_stamp, Content, DirStore, TableState};

impl DirStore {
    /// Replays logged changes (at start, or when rebuilding after a log
    /// failure) into the tables, one table at a time. Returns what salvage
    /// could not apply; without salvage, damage is an error.
    pub(super) fn recover(&self, ops: Vec<Op>, salvage: bool) -> io::Result<Vec<String>> {
        let mut by_table: BTreeMap<String, Vec<Op>> = BTreeMap::new();
        for op in ops {
            by_table.entry(op.table().to_string()).or_default().push(op);
        }
        let mut salvaged = Vec::new();
        for (name, ops) in by_table {
            if validate_table_name(&name).is_err() {
                let what = format!(
                    "the log holds {} changes to {name:?}, which is not a table name",
                    ops.len()
                );
                if !salvage {
                    return Err(refuse(&what));
                }
                salvaged.push(what);
                continue;
            }
            let slot = self
                .slot(&name, true)
                .map_err(|e| io::Error::other(e.to_string()))?;
            let mut state = slot.write();
            let (mut replayed, notes) = self
                .replay_table(&name, &ops, salvage)
                .map_err(|what| refuse(&what))?;
            replayed.generation = state.generation + 1;
            *state = replayed;
            if state.dirty {
                self.any_dirty.store(true, Ordering::Release);
            }
            salvaged.extend(notes);
        }
        Ok(salvaged)
    }

    /// The state of one table after its logged changes: from the last
    /// record that says what the table was (a whole image, a drop, or "its
    /// file with this hash"), then every change after it.
    fn replay_table(
        &self,
        name: &str,
        ops: &[Op],
        salvage: bool,
    ) -> std::result::Result<(TableState, Vec<String>), String> {
        let path = self.path(name);
        let mut ours: HashSet<u64> = HashSet::new();
        for op in ops {
            match op {
                Op::Base {
                    hash: Some(hash), ..
                }
                | Op::Written { hash, .. } => {
                    ours.insert(*hash);
                }
                _ => {}
            }
        }
        // Logs from before files were named by hash: any file is the base.
        let legacy = !ops
            .iter()
            .any(|op| matches!(op, Op::Base { .. } | Op::Written { .. }));
        let start = ops
            .iter()
            .rposition(|op| matches!(op, Op::Replace { .. } | Op::Drop { .. } | Op::Base { .. }));
        let mut on_disk = TableState::default();
        if disk_stamp(&path).is_some() {
            self.reload(name, &mut on_disk);
            if let Content::Broken(reason) = &on_disk.content {
                if reason.starts_with("I/O") || on_disk.file_hash.is_none() {
                    return Err(format!("cannot read {}: {reason}", path.display()));
                }
            }
        }
        let file_is_ours = on_disk
            .file_hash
            .is_some_and(|h| legacy || ours.contains(&h));
        // Changes a file named by the log does not hold for sure: those
        // after the last checkpoint that wrote one.
        let covered = ops
            .iter()
            .rposition(|op| matches!(op, Op::Written { .. }))
            .into_iter()
            .chain(start)
            .max()
            .map_or(0, |i| i + 1);
        let changes = ops[covered..]
            .iter()
            .filter(|op| changes_content(op))
            .count();
        // The version of the file the changes build on, from the engine's
        // own copy, when the table file itself is a person's edit.
        let mut kept_base = None;
        if !file_is_ours && changes > 0 {
            let wanted = match start.map(|i| &ops[i]) {
                Some(Op::Base {
                    hash: Some(hash), ..
                }) => Some(*hash),
                None => ops.iter().rev().find_map(|op| match op {
                    Op::Written { hash, .. } => Some(*hash),
                    _ => None,
                }),
                _ => None,
            };
            kept_base = wanted.and_then(|hash| self.load_base(name, hash));
        }
        let rebuilt_from_copy = kept_base.is_some();
        let mut notes = Vec::new();
        let from_log = matches!(
            start.map(|i| &ops[i]),
            Some(Op::Replace { .. } | Op::Drop { .. } | Op::Base { hash: None, .. })
        );
        let mut state = match start.map(|i| &ops[i]) {
            Some(Op::Replace { columns, rows, .. }) => TableState {
                content: Content::Loaded(self.image(columns.clone(), rows.clone())),
                ..TableState::default()
            },
            Some(Op::Drop { .. }) | Some(Op::Base { hash: None, .. }) => TableState::default(),
            Some(Op::Base {
                hash: Some(base), ..
            }) if on_disk.file_hash == Some(*base) || file_is_ours => on_disk.take_file(),
            None if file_is_ours || legacy && on_disk.stamp.is_some() => on_disk.take_file(),
            _ if rebuilt_from_copy => kept_base.take().unwrap_or_default(),
            _ if changes == 0 => {
                // Edited (or removed) by hand after every logged change was
                // written to the file: the person's version is the table.
                tracing::warn!(
                    table = name,
                    "{} was changed by hand while csvd was not running, after every logged change had been written to it; serving it as it is",
                    path.display()
                );
                let mut kept = on_disk.take_file();
                kept.logged = true;
                return Ok((kept, notes));
            }
            _ => {
                let why = if on_disk.stamp.is_none() {
                    format!(
                        "the log holds {changes} changes to table {name:?}, but its file {} is gone and they apply to it",
                        path.display()
                    )
                } else {
                    format!(
                        "{} was changed by hand after csvd last wrote it, while the log still held {changes} changes to it that the file lacks; the version of the file they apply to is gone",
                        path.display()
                    )
                };
                if !salvage {
                    return Err(why);
                }
                notes.push(format!(
                    "{why}: the table is served from the file as it is; those changes were not applied"
                ));
                let mut kept = on_disk.take_file();
                kept.logged = true;
                return Ok((kept, notes));
            }
        };
        // Built from the log (or the engine's copy): a file that is not one
        // of ours is a person's.
        if (from_log || rebuilt_from_copy) && on_disk.stamp.is_some() {
            if file_is_ours || self.options.read_only {
                state.layout = on_disk.layout;
                state.stamp = on_disk.stamp;
                state.file_hash = on_disk.file_hash;
            } else {
                let aside = file::set_aside(&self.disk, &path).map_err(|err| {
                    format!("cannot set the hand-edited {} aside: {err}", path.display())
                })?;
                let notice = format!(
                    "{} was changed by hand while the log held changes to the table not yet written to it: the edited file was kept as {}, and the table keeps its changes",
                    path.display(),
                    aside.display()
                );
                tracing::error!(table = name, "{notice}");
                state.notice = Some(notice);
            }
        }
        if state.stamp.is_none() {
            // No file of the table's yet (or one set aside): the first one
            // is written as its metadata declares, and it is checked by it.
            let meta = super::schemas::Meta::read(&self.disk, &path, &self.id_column);
            if on_disk.stamp.is_none() {
                state.layout = meta.new_layout();
            }
            state.meta = meta;
        }
        let rest = &ops[start.map_or(0, |i| i + 1)..];
        for op in rest {
            if let Err(what) = self.apply(name, &mut state.content, op) {
                if !salvage {
                    return Err(what);
                }
                notes.push(format!("{what}: not applied"));
            }
        }
        if let Content::Loaded(table) = &mut state.content {
            table.renew_version();
        }
        state.logged = true;
        // A table built from the log is ahead of its file (if any).
        state.dirty = from_log || rebuilt_from_copy || rest.iter().any(changes_content);
        Ok((state, notes))
    }

    /// Applies one replayed change to a table.
    fn apply(&self, name: &str, content: &mut Content, op: &Op) -> std::result::Result<(), String> {
        let id_column = &self.id_column;
        match (op, content) {
            (Op::Base { .. } | Op::Written { .. }, _) => {}
            (Op::Replace { columns, rows, .. }, content) => {
                *content = Content::Loaded(self.image(columns.clone(), rows.clone()))
            }
            (Op::Drop { .. }, content) => *content = Content::Absent,
            (Op::Columns { columns, .. }, Content::Loaded(table)) => {
                table.set_columns(columns.clone(), id_column)
            }
            (Op::Columns { columns, .. }, content @ Content::Absent) => {
                *content = Content::Loaded(self.image(columns.clone(), Vec::new()))
            }
            (Op::Put { rows, .. }, Content::Loaded(table)) => {
                rows.iter().for_each(|row| table.upsert(row.clone()))
            }
            (Op::Delete { ids, .. }, Content::Loaded(table)) => {
                for id in ids {
                    let _ = table.delete(id);
                }
            }
            (op, _) => {
                return Err(format!(
                    "the log holds a change to table {name:?} at a point where the table does not exist or cannot be read: {}",
                    describe(op)
                ))
            }
        }
        Ok(())
    }

    /// A table as a logged image has it.
    fn image(&self, columns: Vec<String>, rows: Vec<Row>) -> Table {
        Table::new(columns, rows, &self.id_column, 0, SystemTime::now())
    }

    /// Links every log segment into `.csvd/salvaged/`, so that the
    /// recovery checkpoint cannot delete changes salvage did not apply.
    pub(super) fn keep_segments(&self) -> io::Result<()> {
        let meta_dir = self.dir.join(".csvd");
        let aside = meta_dir.join("salvaged");
        self.disk.create_dir_all(&aside)?;
        for (name, path) in self.disk.list(&meta_dir)? {
            if name.starts_with("wal-") && name.ends_with(".log") {
                match self.disk.hard_link(&path, &aside.join(&name)) {
                    Ok(()) => {}
                    Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(err) => return Err(err),
                }
            }
        }
        self.disk.sync_dir(&aside)
    }
}

/// Whether a replayed record changes what a table holds.
fn changes_content(op: &Op) -> bool {
    !matches!(op, Op::Base { .. } | Op::Written { .. } | Op::Seq { .. })
}

/// A record in a few words, for messages.
fn describe(op: &Op) -> String {
    match op {
        Op::Columns { columns, .. } => format!("columns {columns:?}"),
        Op::Put { rows, .. } => format!("{} rows written", rows.len()),
        Op::Delete { ids, .. } => format!("ids {ids:?} deleted"),
        Op::Replace { rows, .. } => format!("replaced by {} rows", rows.len()),
        Op::Drop { .. } => "table deleted".into(),
        Op::Base { .. } | Op::Written { .. } => "file named".into(),
        Op::Seq { .. } => "changes numbered".into(),
    }
}

/// Recovery's refusal: nothing was changed, and here is what to do.
fn refuse(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "cannot recover the data directory: {what}. csvd will not start, so that nothing is lost, and has not changed that file. Put the file back as it was, or start with --salvage to serve what can be read (what could not be applied is reported, and the log is kept in .csvd/salvaged/)."
        ),
    )
}
