//! Declared columns in a data directory: a table's CSV on the Web metadata
//! file (`people.csv-metadata.json` beside `people.csv`), read when the
//! table is, noticed when it changes, written (atomically, fsync'd) when a
//! client declares the table's columns or a column is first written JSON.
//!
//! A metadata file that cannot be used makes its table broken, with what
//! is wrong in it; it is never guessed at, and never overwritten but by a
//! declaration a client makes (`PUT` or `DELETE /<t>/_schema`).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::state::{broken_or_missing, Content, TableState};
use super::{disk_stamp, DirStore};
use crate::store::dialect;
use crate::store::disk::Disk;
use crate::store::file::{self, Layout, Stamp};
use crate::store::schema::{Schema, Types};
use crate::store::{Error, Expect, Fields, Records, Result, SchemaView};

/// A table's metadata file, as last read.
#[derive(Clone, Debug, Default)]
pub(super) struct Meta {
    pub(super) schema: Option<Arc<Schema>>,
    /// The file as read (`None`: there is none).
    pub(super) stamp: Option<Stamp>,
    /// Why the file cannot be used, when it cannot.
    pub(super) error: Option<String>,
}

/// The metadata file of the table file `table`.
pub(super) fn meta_path(table: &Path) -> PathBuf {
    let name = table
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("table.csv");
    table.with_file_name(format!("{name}-metadata.json"))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Meta {
    /// Reads the metadata of the table file `table` (none when there is no
    /// metadata file); `id_column` is the store's id column, which a
    /// declared primary key must name.
    pub(super) fn read(disk: &Disk, table: &Path, id_column: &str) -> Meta {
        let path = meta_path(table);
        let Some(stamp) = disk_stamp(&path) else {
            return Meta::default();
        };
        let parsed = disk
            .read(&path)
            .map_err(|err| format!("cannot be read: {err}"))
            .and_then(|bytes| {
                serde_json::from_slice::<Value>(&bytes).map_err(|err| format!("is not JSON: {err}"))
            })
            .and_then(|doc| {
                Schema::parse(doc)
                    .map_err(|err| format!("is not a table description csvd can use: {err}"))
            })
            .and_then(|schema| primary_key_ok(&schema, id_column).map(|()| schema));
        match parsed {
            Ok(schema) => Meta {
                schema: Some(Arc::new(schema)),
                stamp: Some(stamp),
                error: None,
            },
            Err(err) => {
                let error = format!(
                    "its metadata file {} {err}; fix the file, or remove it (DELETE /<table>/_schema)",
                    file_name(&path)
                );
                tracing::error!(file = %path.display(), "{error}");
                Meta {
                    schema: None,
                    stamp: Some(stamp),
                    error: Some(error),
                }
            }
        }
    }

    /// Whether the metadata file is still the one read.
    pub(super) fn is_fresh(&self, table: &Path) -> bool {
        disk_stamp(&meta_path(table)) == self.stamp
    }

    /// The dialect declared (each part `None`: detected).
    pub(super) fn dialect(&self) -> dialect::Declared {
        match &self.schema {
            Some(schema) => declared_of(&schema.dialect),
            None => dialect::Declared::default(),
        }
    }

    /// How a new file of the table is written: comma-separated UTF-8,
    /// unless a delimiter or encoding is declared.
    pub(super) fn new_layout(&self) -> Layout {
        let declared = self.dialect();
        let default = Layout::default();
        Layout {
            delimiter: declared.delimiter.unwrap_or(default.delimiter),
            encoding: declared.encoding.unwrap_or(default.encoding),
            quote: declared.quote.unwrap_or(default.quote),
            header: declared.header.unwrap_or(default.header),
            ..default
        }
    }

    pub(super) fn types(&self) -> Types {
        self.schema.as_ref().map(|s| s.types()).unwrap_or_default()
    }
}

fn primary_key_ok(schema: &Schema, id_column: &str) -> std::result::Result<(), String> {
    schema.primary_key_ok(id_column)
}

/// Writes a metadata file durably: a temporary file beside it, fsync'd,
/// renamed over it, the directory fsync'd. Returns its stamp.
fn write_meta(disk: &Disk, table: &Path, schema: &Schema) -> io::Result<Stamp> {
    let path = meta_path(table);
    let name = file_name(&path);
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let mut text = serde_json::to_string_pretty(&schema.doc).map_err(io::Error::other)?;
    text.push('\n');
    let result = (|| {
        let mut out = disk.create(&tmp)?;
        disk.write_all(&mut out, text.as_bytes())?;
        disk.sync_all(&out)?;
        drop(out);
        disk.rename(&tmp, &path)?;
        disk.sync_dir(path.parent().unwrap_or(Path::new(".")))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    disk_stamp(&path)
        .ok_or_else(|| io::Error::other("the metadata file vanished as it was written"))
}

/// Removes a metadata file durably (nothing to do when there is none).
fn remove_meta(disk: &Disk, table: &Path) -> io::Result<()> {
    let path = meta_path(table);
    if disk_stamp(&path).is_none() {
        return Ok(());
    }
    disk.remove_file(&path)?;
    disk.sync_dir(path.parent().unwrap_or(Path::new(".")))
}

impl DirStore {
    /// Re-reads the metadata file if it changed; whether the table's file
    /// must be read again for it (its declared dialect changed, or the
    /// file could not be read before).
    pub(super) fn refresh_meta(&self, name: &str, state: &mut TableState) -> bool {
        let path = self.path(name);
        if state.meta.is_fresh(&path) {
            return false;
        }
        let meta = Meta::read(&self.disk, &path, &self.id_column);
        let reread =
            meta.dialect() != state.meta.dialect() || matches!(state.content, Content::Broken(_));
        state.meta = meta;
        reread
    }

    /// The types a table's cells are rendered by.
    pub(super) fn types_of(&self, name: &str) -> Types {
        self.with_read(name, |state| Ok(state.meta.types()))
            .unwrap_or_default()
    }

    pub(super) fn view_of(&self, name: &str, state: &TableState) -> Result<SchemaView> {
        let table = super::loaded(name, state)?;
        Ok(SchemaView {
            declared: state.meta.schema.clone(),
            columns: table.columns().to_vec(),
            id_col: table.id_col(),
            delimiter: state.layout.delimiter,
            encoding: state.layout.encoding_name(),
            quote: state.layout.quote,
            header: state.layout.header,
            file: file_name(&self.path(name)),
        })
    }

    /// Declares a table's columns: checked against every row, then written.
    pub(super) async fn declare(
        &self,
        name: &str,
        doc: Value,
        expect: &Expect,
    ) -> Result<SchemaView> {
        let schema = Schema::parse(doc)
            .map_err(|err| Error::Declared(format!("the table description is invalid: {err}")))?;
        primary_key_ok(&schema, &self.id_column)
            .map_err(|err| Error::Declared(format!("the table description {err}")))?;
        let pending = self.write(name, false, |state, _ops, _changes| {
            expect.check(state.meta.schema.as_ref().map(|s| s.version()))?;
            let path = self.path(name);
            let declared = declared_of(&schema.dialect);
            let differs = match &state.content {
                Content::Absent => return Err(Error::NoTable(name.to_string())),
                Content::Broken(_) => true,
                Content::Loaded(_) => {
                    declared.delimiter.is_some_and(|d| d != state.layout.delimiter)
                        || declared.encoding.is_some_and(|e| e != state.layout.encoding)
                        || declared.quote.is_some_and(|q| q != state.layout.quote)
                        || declared.header.is_some_and(|h| h != state.layout.header)
                }
            };
            // A new dialect reads the file anew: it must read, and its rows
            // must hold, before anything is written.
            let reread = if differs {
                if state.dirty {
                    return Err(Error::Declared(format!(
                        "the declared dialect reads the file of table {name:?} differently, and the table has changes not yet written to its file; try again in a moment"
                    )));
                }
                let loaded = file::load_declared(&self.disk, &path, &self.id_column, declared)
                    .map_err(|err| {
                        Error::Declared(format!(
                            "the file of table {name:?} cannot be read with the declared dialect: {err}; nothing was declared"
                        ))
                    })?;
                Some(loaded)
            } else {
                None
            };
            let table = match &reread {
                Some(loaded) => &loaded.table,
                None => match &state.content {
                    Content::Loaded(table) => table,
                    other => return Err(broken_or_missing(name, other)),
                },
            };
            let rows = table.rows();
            schema
                .check_rows(
                    name,
                    table.columns(),
                    table.id_col(),
                    rows.iter(),
                    &self.id_column,
                )
                .map_err(Error::Declared)?;
            let stamp = write_meta(&self.disk, &path, &schema)?;
            state.meta = Meta {
                schema: Some(Arc::new(schema)),
                stamp: Some(stamp),
                error: None,
            };
            if reread.is_some() {
                self.reload(name, state);
            }
            self.view_of(name, state)
        })?;
        pending.durable().await
    }

    /// Removes a table's declaration.
    pub(super) async fn undeclare(&self, name: &str, expect: &Expect) -> Result<()> {
        let pending = self.write(name, false, |state, _ops, _changes| {
            expect.check(state.meta.schema.as_ref().map(|s| s.version()))?;
            if matches!(state.content, Content::Absent) && state.meta.stamp.is_none() {
                return Err(Error::NoTable(name.to_string()));
            }
            let path = self.path(name);
            let reread = state.meta.dialect() != dialect::Declared::default()
                || matches!(state.content, Content::Broken(_));
            remove_meta(&self.disk, &path)?;
            state.meta = Meta::default();
            if reread && !state.dirty {
                self.reload(name, state);
            }
            Ok(())
        })?;
        pending.durable().await
    }

    /// Records columns written JSON objects or arrays as `json`.
    pub(super) async fn note_json(&self, name: &str, columns: &[String]) -> Result<()> {
        let pending = self.write(name, false, |state, _ops, _changes| {
            if state.meta.error.is_some() || !matches!(state.content, Content::Loaded(_)) {
                return Ok(());
            }
            let path = self.path(name);
            let current = match &state.meta.schema {
                Some(schema) => schema.as_ref().clone(),
                None => Schema::empty(&file_name(&path)),
            };
            let new: Vec<&str> = columns
                .iter()
                .map(String::as_str)
                .filter(|c| current.column(c).is_none_or(|c| c.datatype.is_none()))
                .collect();
            if new.is_empty() {
                return Ok(());
            }
            let schema = current.with_json(&new);
            let stamp = write_meta(&self.disk, &path, &schema)?;
            tracing::info!(table = name, columns = ?new, file = %meta_path(&path).display(), "recorded columns written as JSON");
            state.meta = Meta {
                schema: Some(Arc::new(schema)),
                stamp: Some(stamp),
                error: None,
            };
            Ok(())
        })?;
        pending.durable().await
    }

    /// Removes a dropped table's declaration with it.
    pub(super) fn forget_meta(&self, name: &str, state: &mut TableState) -> Result<()> {
        remove_meta(&self.disk, &self.path(name))?;
        state.meta = Meta::default();
        Ok(())
    }
}

/// Refuses a write to a table whose metadata file cannot be used.
pub(super) fn meta_ok(name: &str, state: &TableState) -> Result<()> {
    match &state.meta.error {
        Some(reason) => Err(Error::BrokenTable {
            table: name.to_string(),
            reason: reason.clone(),
        }),
        None => Ok(()),
    }
}

/// Refuses records that break the table's declared columns, naming the
/// record and column; nothing of the write happens then.
pub(super) fn check_records(state: &TableState, records: &Records, id_column: &str) -> Result<()> {
    match &state.meta.schema {
        Some(schema) => schema
            .check_records(records, id_column)
            .map_err(Error::Declared),
        None => Ok(()),
    }
}

/// [`check_records`] for one record given as fields: a whole row (`PUT`)
/// or the fields a patch changes.
pub(super) fn check_fields(
    state: &TableState,
    fields: &Fields,
    id: &str,
    whole: bool,
    id_column: &str,
) -> Result<()> {
    match &state.meta.schema {
        Some(schema) => schema
            .check_fields(fields, id, whole, id_column)
            .map_err(Error::Declared),
        None => Ok(()),
    }
}

/// The parts of a table's dialect its description declares, as the file
/// reader takes them.
fn declared_of(d: &crate::store::schema::Dialect) -> dialect::Declared {
    dialect::Declared {
        delimiter: d.delimiter,
        quote: d.quote,
        encoding: d.encoding,
        header: d.header,
    }
}
