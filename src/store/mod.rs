//! The storage engine: tables of rows kept as CSV files in a data directory.
//!
//! The HTTP layer sees only the [`Store`] trait: table names, ids, fields and
//! versions — never a path or a file. Every method is async; a write's
//! future resolves only once the write is durable.

pub mod dialect;
mod dir;
mod disk;
#[cfg(test)]
mod fault_walk;
mod file;
mod names;
mod os;
mod pg;
mod row;
pub mod schema;
mod table;
mod wal;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use crate::feed::Feed;
use crate::query::{Query, QueryError};
use schema::Types;

pub use dir::{DirStore, Options};
pub use disk::{Call, Disk, Fault, Faults};
pub use file::{
    check_header, declared_by, parse as parse_csv, parse_declared, parse_written, write_csv, Layout,
};
pub use pg::{is_url as is_postgres_url, redact as pg_redacted, PgOptions, PgStore};
pub use row::Row;
pub use table::row_version;
pub use wal::{decode as decode_log, Decoded};

/// The fields of one record as given by a client, in the order given.
/// A field whose value is empty is stored as an empty cell.
pub type Fields = Vec<(String, String)>;

/// Many records for one write, packed: their columns (each named once, in
/// order of first appearance; a CSV body's header) and one [`Row`] per
/// record whose cells follow `columns` (a short row's missing cells are
/// empty). A bulk body is parsed straight into this form, so a record costs
/// one allocation whatever its number of fields, and no field repeats its
/// column's name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Records {
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
    /// The records named no id column: the first column was added, and
    /// each row numbered in it by its position from 1. The numbers are not
    /// ids given by the client; they are kept as the rows' ids only where
    /// they are what the table would give (a table with no integer id yet),
    /// and spare rebuilding every row then.
    pub numbered: bool,
}

impl Records {
    /// Records given as fields: `columns` first (a header that may name
    /// columns no record uses), then every other name as it first appears.
    pub fn from_fields(columns: Vec<String>, records: Vec<Fields>) -> Records {
        let mut builder = RecordsBuilder::new(columns);
        for record in &records {
            builder.push(record.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        builder.finish()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Each record as fields, every column given (empty when not set).
    pub fn to_fields(&self) -> Vec<Fields> {
        self.rows
            .iter()
            .map(|row| {
                self.columns
                    .iter()
                    .cloned()
                    .zip(row.cells(self.columns.len()).map(str::to_string))
                    .collect()
            })
            .collect()
    }
}

/// Packs records given field by field (JSON objects, say) into
/// [`Records`], growing the columns as new names appear.
#[derive(Debug, Default)]
pub struct RecordsBuilder {
    columns: Vec<String>,
    positions: HashMap<String, usize>,
    rows: Vec<Row>,
    /// One record's cells by column, reused.
    cells: Vec<Option<String>>,
}

impl RecordsBuilder {
    /// Starts with these columns (a repeated name counts once).
    pub fn new(columns: Vec<String>) -> RecordsBuilder {
        let mut builder = RecordsBuilder::default();
        for name in columns {
            builder.position(&name);
        }
        builder
    }

    fn position(&mut self, name: &str) -> usize {
        if let Some(&at) = self.positions.get(name) {
            return at;
        }
        self.columns.push(name.to_string());
        self.positions
            .insert(name.to_string(), self.columns.len() - 1);
        self.columns.len() - 1
    }

    /// Adds one record; a name given twice keeps its last value.
    pub fn push<'a, V: Into<String>>(&mut self, fields: impl IntoIterator<Item = (&'a str, V)>) {
        let mut cells = std::mem::take(&mut self.cells);
        cells.clear();
        for (name, value) in fields {
            let at = self.position(name);
            if cells.len() <= at {
                cells.resize(at + 1, None);
            }
            cells[at] = Some(value.into());
        }
        let row = Row::from_cells(cells.iter().map(|c| c.as_deref().unwrap_or("")));
        self.rows.push(row);
        self.cells = cells;
    }

    pub fn finish(self) -> Records {
        Records {
            columns: self.columns,
            rows: self.rows,
            numbered: false,
        }
    }
}

/// Longest table name, in characters.
pub const MAX_TABLE_NAME: usize = 64;

/// Everything that can go wrong in the store. Each variant says what was
/// wrong in words a client can act on; the server maps them to statuses.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0:?} is not a valid table name: use 1 to 64 letters, digits, '_' or '-', starting with a letter or digit")]
    InvalidTableName(String),
    #[error("there is no table {0:?}")]
    NoTable(String),
    #[error("there is no row with id {0:?}")]
    NoRow(String),
    #[error("id {0:?} is already taken")]
    IdTaken(String),
    #[error("the body's id {body:?} does not match the URL's id {url:?}")]
    IdMismatch { url: String, body: String },
    #[error("invalid id: {0}")]
    InvalidId(String),
    #[error("invalid field: {0}")]
    InvalidField(String),
    /// A value that breaks the table's declared columns, or a declaration
    /// that cannot be used (said with the row and column).
    #[error("{0}")]
    Declared(String),
    /// Something this backend does not do.
    #[error("{0}")]
    Unsupported(String),
    #[error("the precondition failed: {0}")]
    PreconditionFailed(Unmet),
    /// A value the table's file cannot hold in its encoding.
    #[error("{0}")]
    Unencodable(String),
    /// A query string that cannot be answered, said so a person can fix it.
    #[error("{0}")]
    Query(#[from] QueryError),
    #[error("table {table:?} cannot be read from its file ({reason}); fix the file, or replace the table with PUT /{table}")]
    BrokenTable { table: String, reason: String },
    #[error("storage failure: {0}")]
    Io(#[from] std::io::Error),
    /// The store refuses requests until it has recovered from a storage
    /// failure (or cannot, and says why).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The store became unavailable while a write was being made durable
    /// (a database connection lost during its commit): it may or may not
    /// have been applied, and a client must read before it repeats it.
    #[error("storage unavailable: {0}")]
    OutcomeUnknown(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// A version a client expects, from `If-Match` / `If-None-Match`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    /// `*`: any current version.
    Any,
    Version(u64),
}

/// Which precondition of a write did not hold: what the target's state was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unmet {
    /// `If-Match`, and there is nothing there.
    #[error("it does not exist")]
    Missing,
    /// `If-Match`, and it is at another version.
    #[error("it has changed")]
    Changed,
    /// `If-None-Match: *`, and it exists.
    #[error("it already exists")]
    Exists,
    /// `If-None-Match`, and it is at a version named there.
    #[error("it is at a version If-None-Match names")]
    Unchanged,
}

/// Preconditions on a write, checked atomically with it.
#[derive(Clone, Debug, Default)]
pub struct Expect {
    /// The write happens only if the target exists with one of these versions.
    pub if_match: Option<Vec<Tag>>,
    /// The write happens only if the target has none of these versions.
    pub if_none_match: Option<Vec<Tag>>,
}

impl Expect {
    pub fn none() -> Expect {
        Expect::default()
    }

    /// Checks the target's current version (`None`: it does not exist).
    pub fn check(&self, current: Option<u64>) -> Result<()> {
        let matches = |tags: &[Tag]| {
            current.is_some_and(|v| tags.iter().any(|t| *t == Tag::Any || *t == Tag::Version(v)))
        };
        if let Some(tags) = &self.if_match {
            if !matches(tags) {
                let unmet = match current {
                    None => Unmet::Missing,
                    Some(_) => Unmet::Changed,
                };
                return Err(Error::PreconditionFailed(unmet));
            }
        }
        if let Some(tags) = &self.if_none_match {
            if matches(tags) {
                let unmet = if tags.contains(&Tag::Any) {
                    Unmet::Exists
                } else {
                    Unmet::Unchanged
                };
                return Err(Error::PreconditionFailed(unmet));
            }
        }
        Ok(())
    }
}

/// Counters a backend reports for monitoring, whatever they count: the
/// metrics page shows each as `csvd_<name>`, with its help text. A backend
/// names its own (log bytes and fsyncs for the file store, say).
#[derive(Clone, Debug, Default)]
pub struct StoreStats {
    pub counters: Vec<Counter>,
}

/// One monitoring counter: only ever grows.
#[derive(Clone, Copy, Debug)]
pub struct Counter {
    /// `[a-z_]+`, ending in `_total`.
    pub name: &'static str,
    pub help: &'static str,
    pub value: u64,
}

/// What the table list shows of one table.
#[derive(Clone, Debug)]
pub struct TableInfo {
    pub name: String,
    pub rows: usize,
    pub columns: Vec<String>,
    pub modified: SystemTime,
    pub version: u64,
    /// Set when the file cannot be read as a table.
    pub error: Option<String>,
    /// Something a person should know about the table's file (a hand edit
    /// that was kept under another name).
    pub notice: Option<String>,
}

/// What a read of a table's rows describes of the table itself, as it was
/// when the rows were read.
#[derive(Clone, Debug)]
pub struct Head {
    pub columns: Arc<Vec<String>>,
    pub id_col: Option<usize>,
    /// Rows in the whole table.
    pub rows: usize,
    pub version: u64,
    pub modified: SystemTime,
}

/// What the store believes about a table's columns (`GET /<t>/_schema`):
/// its declaration, if any, and what it detected.
#[derive(Clone, Debug)]
pub struct SchemaView {
    /// The declared table description (`None`: nothing declared).
    pub declared: Option<Arc<schema::Schema>>,
    /// The table's columns, in order.
    pub columns: Vec<String>,
    pub id_col: Option<usize>,
    /// The file's delimiter and encoding, as read.
    pub delimiter: u8,
    pub encoding: &'static str,
    /// The quote character, and whether the first line names the columns.
    pub quote: u8,
    pub header: bool,
    /// The table's file name (`people.csv`), for the document's `url`.
    pub file: String,
}

impl SchemaView {
    /// The view of a table with no file of its own (a database's): shown
    /// as the comma-separated, `"`-quoted UTF-8 CSV it exports as.
    pub fn plain(
        table: &str,
        declared: Option<Arc<schema::Schema>>,
        columns: Vec<String>,
        id_col: Option<usize>,
    ) -> SchemaView {
        SchemaView {
            declared,
            columns,
            id_col,
            delimiter: b',',
            encoding: "UTF-8",
            quote: b'"',
            header: true,
            file: format!("{table}.csv"),
        }
    }

    /// The version `If-Match` on `/<t>/_schema` compares (`None`:
    /// nothing declared).
    pub fn version(&self) -> Option<u64> {
        self.declared.as_ref().map(|s| s.version())
    }
}

/// Rows as they arrive from a backend, in answer order. An error ends the
/// answer (the connection is closed, so a client never takes a cut answer
/// for a whole one).
pub type RowStream = futures_util::stream::BoxStream<'static, Result<Row>>;

/// The rows a query selected from one version of a table.
pub struct Selected {
    /// The table at the version the rows were read from.
    pub head: Head,
    /// The query as read against `head.columns`.
    pub query: Query,
    /// Rows that matched the filters, before the window (`X-Total-Count`).
    pub total: usize,
    /// The window's rows, whole (every column; `_fields` is the caller's).
    pub rows: RowStream,
}

/// A consistent view of a whole table, unaffected by later writes.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub columns: Arc<Vec<String>>,
    pub id_col: Option<usize>,
    pub rows: Vec<Row>,
    pub version: u64,
    pub modified: SystemTime,
}

/// Rows a write produced, with their columns and versions, for the answer.
#[derive(Clone, Debug)]
pub struct Written {
    pub columns: Arc<Vec<String>>,
    pub id_col: Option<usize>,
    pub rows: Vec<Row>,
    pub versions: Vec<u64>,
    /// True when the write created its target (row or table).
    pub created: bool,
}

/// How a table kept as one object (json-server's singular resource, a
/// top-level object of db.json such as `"profile": {...}`) is stored: as a
/// table of one row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Singular {
    /// The object names its own id (the id column is one of its fields);
    /// otherwise the id column was added by the store and is not shown.
    pub own_id: bool,
}

/// One row and its version.
#[derive(Clone, Debug)]
pub struct RowView {
    pub columns: Arc<Vec<String>>,
    /// The id column (its page shows the id as the row's name, not a field to edit).
    pub id_col: Option<usize>,
    pub row: Row,
    pub version: u64,
    pub modified: SystemTime,
}

/// What a read of one row by id needs, from one call: see
/// [`Store::read_row`].
#[derive(Debug)]
pub enum RowRead {
    /// The table is kept as one object: it has no rows by id.
    Singular,
    /// The row, and the datatypes its columns are rendered by.
    Row(RowView, Types),
}

/// The interface the HTTP layer uses.
///
/// The contract every implementation keeps:
/// - A write (`insert`, `put_row`, `patch_row`, `delete_row`,
///   `replace_table`, `delete_table`) returns `Ok` only once it is durable:
///   a crash after that loses nothing of it. An `Err` means it did not
///   happen (or, for a storage failure, that it is not acknowledged).
/// - A write's preconditions ([`Expect`]) are checked atomically with it,
///   and concurrent writes never lose each other.
/// - Readers never see half a write: a read shows a table as it was
///   before a write or after it, never in between.
/// - A future may block its thread briefly (a lock, or memory work); long
///   blocking work (loading a large file) is moved off the async workers by
///   the implementation.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Every table, sorted by name.
    async fn tables(&self) -> Result<Vec<TableInfo>>;
    /// The rows of a table that a query string (`GET /<table>?…`, raw)
    /// selects. The backend reads the query against the table's columns
    /// with [`query::parse`] (a mistake is [`Error::Query`]), then answers
    /// it as it can: it may push filters, sort, window and count down to
    /// where the rows are, or evaluate them itself; the answer must be the
    /// rows and total [`query::select`] gives on the same table. The head,
    /// total and rows all come from one version of the table.
    async fn select(&self, table: &str, query: &str) -> Result<Selected>;
    /// One row.
    async fn row(&self, table: &str, id: &str) -> Result<RowView>;
    /// One row as `GET /<t>/<id>` reads it: nothing when the table is
    /// singular ([`Store::singular`]), else the row ([`Store::row`]) and the
    /// table's [`Store::types`]. One call, so a backend holding all three
    /// in memory answers them at once.
    async fn read_row(&self, table: &str, id: &str) -> Result<RowRead> {
        if self.singular(table).await.is_ok_and(|mark| mark.is_some()) {
            return Ok(RowRead::Singular);
        }
        let view = self.row(table, id).await?;
        Ok(RowRead::Row(view, self.types(table).await))
    }
    /// Creates rows (creating the table if needed); `expect` is checked
    /// against the table's version.
    async fn insert(&self, table: &str, records: Records, expect: &Expect) -> Result<Written>;
    /// Creates or replaces one row.
    async fn put_row(
        &self,
        table: &str,
        id: &str,
        record: Fields,
        expect: &Expect,
    ) -> Result<Written>;
    /// Changes the given fields of one row.
    async fn patch_row(
        &self,
        table: &str,
        id: &str,
        record: Fields,
        expect: &Expect,
    ) -> Result<Written>;
    /// Deletes one row.
    async fn delete_row(&self, table: &str, id: &str, expect: &Expect) -> Result<()>;
    /// Replaces a whole table (or creates it) with the records' columns
    /// and rows.
    async fn replace_table(
        &self,
        table: &str,
        records: Records,
        expect: &Expect,
    ) -> Result<(TableInfo, bool)>;
    /// Deletes a table.
    async fn delete_table(&self, table: &str, expect: &Expect) -> Result<()>;
    /// Brings every file up to date before the process exits.
    async fn flush(&self) -> Result<()>;
    /// Whether a table is kept as one object ([`Singular`]). The mark is
    /// kept apart from the table's rows: a mark without a table means
    /// nothing, and a table without a mark is a table of rows.
    async fn singular(&self, table: &str) -> Result<Option<Singular>>;
    /// Every mark of [`Store::singular`], by table name.
    async fn singulars(&self) -> Result<Vec<(String, Singular)>>;
    /// Marks a table as kept as one object, or (`None`) as a table of rows;
    /// durable once it returns.
    async fn set_singular(&self, table: &str, singular: Option<Singular>) -> Result<()>;
    /// Counters for monitoring.
    async fn stats(&self) -> StoreStats;
    /// The datatypes the table's columns are rendered by: declared, or
    /// recorded by the store (columns written as JSON objects or arrays).
    /// Empty when the table has none (or cannot be read).
    async fn types(&self, _table: &str) -> Types {
        Types::default()
    }
    /// [`Store::types`] as the store last knew them, without looking at
    /// anything outside memory (the change feed renders rows by them).
    fn types_now(&self, _table: &str) -> Types {
        Types::default()
    }
    /// What the store believes about a table's columns.
    async fn schema(&self, table: &str) -> Result<SchemaView> {
        let selected = self.select(table, "_limit=0").await?;
        Ok(SchemaView::plain(
            table,
            None,
            selected.head.columns.to_vec(),
            selected.head.id_col,
        ))
    }
    /// Declares a table's columns with a CSVW table description, checked
    /// against the table's rows atomically with them; `expect` against
    /// the current declaration's version.
    async fn put_schema(
        &self,
        _table: &str,
        _doc: serde_json::Value,
        _expect: &Expect,
    ) -> Result<SchemaView> {
        Err(Error::Unsupported(
            "this storage backend does not keep declared columns".into(),
        ))
    }
    /// Removes a table's declaration.
    async fn delete_schema(&self, _table: &str, _expect: &Expect) -> Result<()> {
        Err(Error::Unsupported(
            "this storage backend does not keep declared columns".into(),
        ))
    }
    /// Records that these columns of a table were written JSON objects or
    /// arrays, so that they are rendered as JSON from then on (columns
    /// with a declared datatype are left as declared).
    async fn record_json(&self, _table: &str, _columns: &[String]) -> Result<()> {
        Ok(())
    }
    /// The change feed: every acknowledged write, numbered, published in
    /// order once durable (on a shared backend, every instance's writes).
    fn feed(&self) -> &Arc<Feed>;
}

/// Checks a table name before it can touch the disk.
pub fn validate_table_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if first_ok && rest_ok && name.len() <= MAX_TABLE_NAME {
        Ok(())
    } else {
        Err(Error::InvalidTableName(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        for ok in ["people", "P1", "a_b-c", "0", &"x".repeat(64)] {
            assert!(validate_table_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "_x",
            "-x",
            "a.b",
            "a/b",
            "..",
            "a b",
            "é",
            &"x".repeat(65),
            "a\0",
        ] {
            assert!(validate_table_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn expectations() {
        let e = Expect {
            if_match: Some(vec![Tag::Version(3)]),
            if_none_match: None,
        };
        assert!(e.check(Some(3)).is_ok());
        assert!(matches!(
            e.check(Some(4)),
            Err(Error::PreconditionFailed(Unmet::Changed))
        ));
        assert!(matches!(
            e.check(None),
            Err(Error::PreconditionFailed(Unmet::Missing))
        ));
        let e = Expect {
            if_match: None,
            if_none_match: Some(vec![Tag::Any]),
        };
        assert!(e.check(None).is_ok());
        assert!(matches!(
            e.check(Some(1)),
            Err(Error::PreconditionFailed(Unmet::Exists))
        ));
    }
}
