//! [`DirStore`]: the [`Store`] over a data directory of CSV files.
//!
//! Each table lives in memory behind its own lock and is written back to its
//! file, atomically, before a write is acknowledged. Files added, edited or
//! removed by someone else while the server runs are noticed on the next
//! access (by the file's size, modification time and inode) and reloaded.
//! A file that is not valid CSV is reported and served as an error; it is
//! never rewritten except by an explicit replace or delete of the table.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockWriteGuard};
use std::time::SystemTime;

use super::file::{self, Layout, Stamp};
use super::table::{validate_id, Table};
use super::{
    validate_table_name, Error, Expect, Fields, Result, RowView, Snapshot, Store, TableInfo,
    Written,
};

/// The store over one data directory.
pub struct DirStore {
    dir: PathBuf,
    id_column: String,
    /// Tables seen so far. The map's lock is held only to find a slot; each
    /// slot's lock guards one table, so tables never wait for each other.
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

#[derive(Default)]
struct Slot {
    state: RwLock<State>,
}

#[derive(Default)]
struct State {
    content: Content,
    /// The file as we last read or wrote it; `None` when there is no file.
    stamp: Option<Stamp>,
    layout: Layout,
}

#[derive(Default)]
enum Content {
    #[default]
    Absent,
    Loaded(Table),
    Broken(String),
}

impl DirStore {
    /// Opens (creating if needed) a data directory, removing temporary files
    /// a crash may have left behind.
    pub fn open(dir: &Path, id_column: &str) -> io::Result<DirStore> {
        fs::create_dir_all(dir)?;
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_name().to_str().is_some_and(file::is_temp) {
                tracing::warn!(file = %entry.path().display(), "removing a temporary file left by an interrupted write");
                fs::remove_file(entry.path())?;
            }
        }
        Ok(DirStore {
            dir: dir.to_path_buf(),
            id_column: id_column.to_string(),
            slots: Mutex::new(HashMap::new()),
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.csv"))
    }

    /// The slot of a table; created only when `create` is set or the file
    /// exists, so requests for absent tables cost no memory.
    fn slot(&self, name: &str, create: bool) -> Result<Arc<Slot>> {
        validate_table_name(name)?;
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = slots.get(name) {
            return Ok(slot.clone());
        }
        if !create && disk_stamp(&self.path(name)).is_none() {
            return Err(Error::NoTable(name.to_string()));
        }
        let slot = Arc::new(Slot::default());
        slots.insert(name.to_string(), slot.clone());
        Ok(slot)
    }

    /// Brings a table's state in line with its file if the file changed.
    fn refresh(&self, name: &str, state: &mut State) {
        if !self.is_fresh(name, state) {
            self.reload(name, state);
        }
    }

    /// Reads the table's state from its file (absent when there is none).
    fn reload(&self, name: &str, state: &mut State) {
        let path = self.path(name);
        let stamp = disk_stamp(&path);
        *state = match stamp {
            None => State::default(),
            Some(_) => match file::load(&path, &self.id_column) {
                Ok(loaded) => {
                    tracing::info!(
                        table = name,
                        rows = loaded.table.len(),
                        "loaded table from its file"
                    );
                    State {
                        content: Content::Loaded(loaded.table),
                        stamp: Some(loaded.stamp),
                        layout: loaded.layout,
                    }
                }
                Err(err) => {
                    tracing::error!(table = name, file = %path.display(), "cannot read table file: {err}");
                    State {
                        content: Content::Broken(err.to_string()),
                        stamp,
                        layout: Layout::default(),
                    }
                }
            },
        };
    }

    fn is_fresh(&self, name: &str, state: &State) -> bool {
        let stamp = disk_stamp(&self.path(name));
        stamp == state.stamp && !(stamp.is_some() && matches!(state.content, Content::Absent))
    }

    /// Runs `f` on the table's current state under its read lock.
    fn with_read<T>(&self, name: &str, f: impl FnOnce(&State) -> Result<T>) -> Result<T> {
        let slot = self.slot(name, false)?;
        {
            let state = slot.state.read().unwrap_or_else(PoisonError::into_inner);
            if self.is_fresh(name, &state) {
                return f(&state);
            }
        }
        let mut state = slot.state.write().unwrap_or_else(PoisonError::into_inner);
        self.refresh(name, &mut state);
        f(&state)
    }

    /// Applies a change to a loaded table and makes it durable; on any
    /// failure the table is put back as its file says.
    fn write_table<T>(
        &self,
        name: &str,
        state: &mut RwLockWriteGuard<'_, State>,
        change: impl FnOnce(&mut Table) -> Result<T>,
    ) -> Result<T> {
        let path = self.path(name);
        let layout = state.layout;
        let Content::Loaded(table) = &mut state.content else {
            return Err(broken_or_missing(name, &state.content));
        };
        let outcome = change(table).and_then(|value| {
            let stamp = file::save(&path, table, layout)?;
            Ok((value, stamp))
        });
        match outcome {
            Ok((value, stamp)) => {
                state.stamp = Some(stamp);
                Ok(value)
            }
            Err(err) => {
                // The file still holds the last acknowledged state.
                self.reload(name, state);
                Err(err)
            }
        }
    }

    fn info(&self, name: &str, state: &State) -> Option<TableInfo> {
        match &state.content {
            Content::Absent => None,
            Content::Loaded(table) => Some(TableInfo {
                name: name.to_string(),
                rows: table.len(),
                columns: table.columns().to_vec(),
                modified: table.modified,
                version: table.version,
                error: None,
            }),
            Content::Broken(reason) => Some(TableInfo {
                name: name.to_string(),
                rows: 0,
                columns: Vec::new(),
                modified: SystemTime::UNIX_EPOCH,
                version: 0,
                error: Some(reason.clone()),
            }),
        }
    }

    fn written(table: &Table, rows: Vec<Arc<super::Row>>, created: bool) -> Written {
        Written {
            columns: table.columns().clone(),
            id_col: table.id_col(),
            versions: rows.iter().map(|r| table.row_version(r)).collect(),
            rows,
            created,
        }
    }
}

fn disk_stamp(path: &Path) -> Option<Stamp> {
    // Only regular files are tables: a symlink is never followed.
    let meta = fs::symlink_metadata(path).ok()?;
    meta.is_file().then(|| Stamp::of(&meta))
}

fn broken_or_missing(name: &str, content: &Content) -> Error {
    match content {
        Content::Broken(reason) => Error::BrokenTable {
            table: name.to_string(),
            reason: reason.clone(),
        },
        _ => Error::NoTable(name.to_string()),
    }
}

fn loaded<'a>(name: &str, state: &'a State) -> Result<&'a Table> {
    match &state.content {
        Content::Loaded(table) => Ok(table),
        other => Err(broken_or_missing(name, other)),
    }
}

impl Store for DirStore {
    fn tables(&self) -> Result<Vec<TableInfo>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let file_name = entry.file_name();
            let Some(stem) = file_name.to_str().and_then(|n| n.strip_suffix(".csv")) else {
                continue;
            };
            if validate_table_name(stem).is_err() {
                tracing::debug!(file = ?file_name, "skipping a file whose name is not a table name");
                continue;
            }
            names.push(stem.to_string());
        }
        names.sort();
        let mut infos = Vec::with_capacity(names.len());
        for name in names {
            match self.with_read(&name, |state| Ok(self.info(&name, state))) {
                Ok(Some(info)) => infos.push(info),
                Ok(None) | Err(Error::NoTable(_)) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(infos)
    }

    fn read(&self, name: &str) -> Result<Snapshot> {
        self.with_read(name, |state| {
            let table = loaded(name, state)?;
            Ok(Snapshot {
                columns: table.columns().clone(),
                id_col: table.id_col(),
                rows: table.rows(),
                version: table.version,
                modified: table.modified,
            })
        })
    }

    fn row(&self, name: &str, id: &str) -> Result<RowView> {
        self.with_read(name, |state| {
            let table = loaded(name, state)?;
            let row = table.get(id).ok_or_else(|| Error::NoRow(id.to_string()))?;
            Ok(RowView {
                columns: table.columns().clone(),
                row: row.clone(),
                version: table.row_version(row),
                modified: table.modified,
            })
        })
    }

    fn insert(&self, name: &str, records: Vec<Fields>, expect: &Expect) -> Result<Written> {
        let slot = self.slot(name, true)?;
        let mut state = slot.state.write().unwrap_or_else(PoisonError::into_inner);
        self.refresh(name, &mut state);
        let version = match &state.content {
            Content::Loaded(table) => Some(table.version),
            Content::Absent => None,
            Content::Broken(_) => return Err(broken_or_missing(name, &state.content)),
        };
        expect.check(version)?;
        if version.is_none() {
            let table = Table::new(
                Vec::new(),
                Vec::new(),
                &self.id_column,
                0,
                SystemTime::now(),
            );
            state.content = Content::Loaded(table);
        }
        let id_column = self.id_column.clone();
        self.write_table(name, &mut state, |table| {
            let applied = table.insert(&records, &id_column)?;
            Ok(DirStore::written(table, applied.rows, true))
        })
    }

    fn put_row(&self, name: &str, id: &str, record: Fields, expect: &Expect) -> Result<Written> {
        validate_id(id)?;
        let slot = self.slot(name, true)?;
        let mut state = slot.state.write().unwrap_or_else(PoisonError::into_inner);
        self.refresh(name, &mut state);
        let current = match &state.content {
            Content::Loaded(table) => table.get(id).map(|row| table.row_version(row)),
            Content::Absent => None,
            Content::Broken(_) => return Err(broken_or_missing(name, &state.content)),
        };
        expect.check(current)?;
        if matches!(state.content, Content::Absent) {
            let table = Table::new(
                Vec::new(),
                Vec::new(),
                &self.id_column,
                0,
                SystemTime::now(),
            );
            state.content = Content::Loaded(table);
        }
        let id_column = self.id_column.clone();
        self.write_table(name, &mut state, |table| {
            let applied = table.put(id, &record, &id_column)?;
            Ok(DirStore::written(table, applied.rows, applied.created))
        })
    }

    fn patch_row(&self, name: &str, id: &str, record: Fields, expect: &Expect) -> Result<Written> {
        let slot = self.slot(name, false)?;
        let mut state = slot.state.write().unwrap_or_else(PoisonError::into_inner);
        self.refresh(name, &mut state);
        let table = loaded(name, &state)?;
        let row = table.get(id).ok_or_else(|| Error::NoRow(id.to_string()))?;
        expect.check(Some(table.row_version(row)))?;
        let id_column = self.id_column.clone();
        self.write_table(name, &mut state, |table| {
            let applied = table.patch(id, &record, &id_column)?;
            Ok(DirStore::written(table, applied.rows, false))
        })
    }

    fn delete_row(&self, name: &str, id: &str, expect: &Expect) -> Result<()> {
        let slot = self.slot(name, false)?;
        let mut state = slot.state.write().unwrap_or_else(PoisonError::into_inner);
        self.refresh(name, &mut state);
        let table = loaded(name, &state)?;
        let row = table.get(id).ok_or_else(|| Error::NoRow(id.to_string()))?;
        expect.check(Some(table.row_version(row)))?;
        self.write_table(name, &mut state, |table| table.delete(id))
    }

    fn replace_table(
        &self,
        name: &str,
        columns: Vec<String>,
        records: Vec<Fields>,
        expect: &Expect,
    ) -> Result<(TableInfo, bool)> {
        let slot = self.slot(name, true)?;
        let path = self.path(name);
        let mut state = slot.state.write().unwrap_or_else(PoisonError::into_inner);
        self.refresh(name, &mut state);
        // A broken file may be replaced: that is how a user repairs it.
        let current = match &state.content {
            Content::Loaded(table) => Some(table.version),
            Content::Broken(_) => Some(0),
            Content::Absent => None,
        };
        expect.check(current)?;
        let table = Table::from_records(columns, &records, &self.id_column, current.unwrap_or(0))?;
        let layout = state.layout;
        let stamp = file::save(&path, &table, layout)?;
        state.content = Content::Loaded(table);
        state.stamp = Some(stamp);
        let info = self
            .info(name, &state)
            .ok_or_else(|| Error::NoTable(name.to_string()))?;
        Ok((info, current.is_none()))
    }

    fn delete_table(&self, name: &str, expect: &Expect) -> Result<()> {
        let slot = self.slot(name, false)?;
        let mut state = slot.state.write().unwrap_or_else(PoisonError::into_inner);
        self.refresh(name, &mut state);
        let current = match &state.content {
            Content::Loaded(table) => Some(table.version),
            Content::Broken(_) => Some(0),
            Content::Absent => return Err(Error::NoTable(name.to_string())),
        };
        expect.check(current)?;
        file::remove(&self.path(name))?;
        *state = State::default();
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        // Every acknowledged write is already in its file.
        Ok(())
    }
}
