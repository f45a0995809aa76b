//! The write path: change a table in memory, log what changed under the
//! table's lock, and hand back a [`Pending`] that resolves once the log
//! records are durable; the [`Store`](crate::store::Store) methods await it
//! before they return.
//!
//! It must never let a write be acknowledged before its records are
//! durable, and never let a change whose log append failed be seen: the
//! store is then made unavailable until memory is rebuilt.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use crate::feed::{Batch, What};
use crate::store::table::{Applied, Table};
use crate::store::wal::Op;
use crate::store::wal::Ticket;
use crate::store::{Error, Result, Row, Written};

use super::{loaded_mut, read, slow, Content, DirStore, TableState};

/// A write that is applied (readers may see it) and logged, not yet
/// necessarily durable. Acknowledge it only after [`Pending::durable`].
pub(super) struct Pending<T> {
    value: T,
    ticket: Option<Ticket>,
}

impl<T> Pending<T> {
    /// A write that is durable already (or that changed nothing).
    fn done(value: T) -> Pending<T> {
        Pending {
            value,
            ticket: None,
        }
    }

    /// Waits until the write is durable and returns its result.
    pub(super) async fn durable(self) -> Result<T> {
        if let Some(ticket) = self.ticket {
            ticket.durable().await?;
        }
        Ok(self.value)
    }
}

impl DirStore {
    /// The write path. `change` alters the state and lists the log records
    /// that say what it did; they are appended under the table's lock and
    /// the call returns once they are durable.
    pub(super) fn write<T>(
        &self,
        name: &str,
        create: bool,
        change: impl FnOnce(&mut TableState, &mut Vec<Op>, &mut Vec<Batch>) -> Result<T>,
    ) -> Result<Pending<T>> {
        if self.options.read_only {
            return Err(Error::Io(io::Error::other(
                "the data directory is served read-only",
            )));
        }
        let world = read(&self.world);
        self.available()?;
        let slot = self.slot(name, create)?;
        let mut ops = Vec::new();
        let mut changes = Vec::new();
        let (result, lsn) = {
            let mut state = slot.write();
            self.refresh(name, &mut state)?;
            if !state.dirty {
                self.ensure_base(name, &state);
            }
            let result = change(&mut state, &mut ops, &mut changes);
            if result.is_err() {
                changes.clear();
            }
            let lsn = if ops.is_empty() {
                None
            } else {
                if !state.dirty {
                    // Memory was its file until this change: say which file,
                    // so recovery can tell it from a hand edit.
                    ops.insert(
                        0,
                        Op::Base {
                            table: name.to_string(),
                            hash: state.file_hash,
                        },
                    );
                }
                state.dirty = true;
                state.logged = true;
                state.generation += 1;
                match self.wal.append_changes(&ops, changes) {
                    Ok(lsn) => Some(lsn),
                    Err(err) => {
                        // Memory now holds a change that can never be
                        // durable: nobody may see it until it is rebuilt.
                        self.set_unavailable(err.to_string());
                        return Err(Error::Unavailable(format!(
                            "{err}; the write was refused and csvd refuses requests until it has rebuilt its tables from disk"
                        )));
                    }
                }
            };
            (result, lsn)
        };
        drop(world);
        let Some(lsn) = lsn else {
            return result.map(Pending::done);
        };
        self.any_dirty.store(true, Ordering::Release);
        let ms = self.started.elapsed().as_millis() as u64;
        self.last_write_ms.store(ms, Ordering::Release);
        let ticket = self.wal.ticket(lsn);
        match result {
            Ok(value) => Ok(Pending {
                value,
                ticket: Some(ticket),
            }),
            Err(err) => {
                // A failed write may still have logged a change (ids given
                // to a table at its first write): wait for it, then fail.
                slow(|| self.wal.wait(lsn))?;
                Err(err)
            }
        }
    }

    /// Gives a table its ids before its first write, logging the result.
    pub(super) fn prepare(&self, name: &str, table: &mut Table, ops: &mut Vec<Op>) {
        if !table.ids_ok() {
            table.ensure_ids(&self.id_column);
            ops.push(Op::Replace {
                table: name.to_string(),
                columns: table.columns().to_vec(),
                rows: table.rows(),
            });
        }
    }

    /// A change to rows that creates the table if it is absent: gives the
    /// table its ids first, logs the grown header and the resulting rows,
    /// and leaves no new table behind when the change is refused.
    pub(super) fn change_rows(
        &self,
        name: &str,
        state: &mut TableState,
        ops: &mut Vec<Op>,
        change: impl FnOnce(&mut Table, &str) -> Result<Applied>,
    ) -> Result<Written> {
        let creating = matches!(state.content, Content::Absent);
        if creating {
            state.content = Content::Loaded(self.new_table());
        }
        let table = loaded_mut(name, state)?;
        self.prepare(name, table, ops);
        let before = if creating { 0 } else { table.columns().len() };
        match change(table, &self.id_column) {
            Ok(applied) => {
                log_columns(name, table, before, ops);
                ops.push(Op::Put {
                    table: name.to_string(),
                    rows: applied.rows.clone(),
                });
                Ok(written(table, applied.rows, applied.created))
            }
            Err(err) => {
                if creating {
                    state.content = Content::Absent;
                }
                Err(err)
            }
        }
    }

    fn new_table(&self) -> Table {
        Table::new(
            vec![self.id_column.clone()],
            Vec::new(),
            &self.id_column,
            0,
            SystemTime::now(),
        )
    }
}

/// The feed's record of a write to table `name`, numbered by the log.
pub(super) fn change(name: &str, table: Option<&Table>, what: What) -> Batch {
    Batch {
        first: 0,
        table: Arc::from(name),
        columns: table.map(|t| t.columns().clone()).unwrap_or_default(),
        id_col: table.and_then(Table::id_col),
        what,
    }
}

pub(super) fn written(table: &Table, rows: Vec<Row>, created: bool) -> Written {
    Written {
        columns: table.columns().clone(),
        id_col: table.id_col(),
        versions: rows.iter().map(|r| table.row_version(r)).collect(),
        rows,
        created,
    }
}

/// Logs the header if a change grew it.
fn log_columns(name: &str, table: &Table, before: usize, ops: &mut Vec<Op>) {
    if table.columns().len() != before {
        ops.push(Op::Columns {
            table: name.to_string(),
            columns: table.columns().to_vec(),
        });
    }
}
