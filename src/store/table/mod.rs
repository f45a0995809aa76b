//! A table in memory: its columns, its rows in file order, and an index
//! from id to row. Pure data and rules (ids, growing columns); no I/O.
//!
//! The id index lives in `index`, the rules for ids and field names in
//! `rules`, table versions in `version`. Nothing here may touch a file.

mod index;
pub(crate) mod rules;
mod slots;
mod version;

use index::Index;
pub use rules::validate_id;
use rules::{check_body_id, int_id, validate_columns, validate_fields, without};
use slots::Slots;
use version::fresh_version;

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use hashbrown::HashTable;
use std::time::SystemTime;

use xxhash_rust::xxh3::xxh3_64;

use super::row::Row;
use super::{Error, Fields, Records};

/// The rows and columns of one table.
#[derive(Clone, Debug)]
pub struct Table {
    columns: Arc<Vec<String>>,
    id_col: Option<usize>,
    /// Rows in file order, in shared chunks.
    slots: Slots,
    /// Id → slot, for the first row holding each id.
    index: Index,
    live: usize,
    /// Whether every row has a unique, non-empty id (false for a file dropped
    /// in without ids; fixed at the first write).
    ids_ok: bool,
    /// Largest canonical integer id, when known.
    max_int_id: Option<u64>,
    /// Changes with every write; derived from the file's bytes at load.
    pub version: u64,
    pub modified: SystemTime,
}

/// Every row of a table at one moment, taken cheaply (see
/// [`Table::image`]).
#[derive(Clone, Debug)]
pub struct Image {
    slots: Slots,
    live: usize,
}

impl Image {
    /// Handles to every row, in order.
    pub fn rows(&self) -> Vec<Row> {
        Row::share_all(self.slots.rows(), self.live)
    }
}

/// A write applied to a table, with the rows it produced (for the answer).
#[derive(Debug)]
pub struct Applied {
    pub rows: Vec<Row>,
    pub created: bool,
}

impl Table {
    /// A table read from a file (or empty): `rows` are in file order.
    pub fn new(
        columns: Vec<String>,
        rows: Vec<Row>,
        id_column: &str,
        version: u64,
        modified: SystemTime,
    ) -> Table {
        let id_col = columns.iter().position(|c| c == id_column);
        let mut table = Table {
            columns: Arc::new(columns),
            id_col,
            slots: Slots::from_loaded(rows),
            index: Index::default(),
            live: 0,
            ids_ok: true,
            max_int_id: None,
            version,
            modified,
        };
        table.reindex();
        table
    }

    fn reindex(&mut self) {
        self.slots.compact();
        self.live = self.slots.len();
        self.index.clear(self.id_col.unwrap_or(0));
        self.ids_ok = self.id_col.is_some();
        self.max_int_id = None;
        let Some(id_col) = self.id_col else { return };
        for slot in 0..self.slots.len() {
            let Some(row) = self.slots.row(slot) else {
                continue;
            };
            let id = row.get(id_col);
            if id.is_empty() || self.index.get(id, &self.slots).is_some() {
                self.ids_ok = false;
                continue;
            }
            self.index.insert(id, slot);
        }
    }

    pub fn columns(&self) -> &Arc<Vec<String>> {
        &self.columns
    }

    pub fn id_col(&self) -> Option<usize> {
        self.id_col
    }

    pub fn len(&self) -> usize {
        self.live
    }

    /// Shared handles to every row, in order: cheap to take, and a stable view
    /// while writers go on.
    pub fn rows(&self) -> Vec<Row> {
        Row::share_all(self.slots.rows(), self.live)
    }

    /// The rows as they are now, for [`Image::rows`] to list later: taking
    /// it costs one count per thousand rows, so a checkpoint holds the
    /// table's lock only that long, and writes go on meanwhile.
    pub fn image(&self) -> Image {
        Image {
            slots: self.slots.clone(),
            live: self.live,
        }
    }

    pub fn get(&self, id: &str) -> Option<&Row> {
        let slot = self.index.get(id, &self.slots)?;
        self.slots.row(slot)
    }

    /// The version of one row: a hash of the columns and the row's cells, so
    /// it is the same across restarts and changes when either changes.
    pub fn row_version(&self, row: &Row) -> u64 {
        row_version(&self.columns, row)
    }

    fn touch(&mut self) {
        self.version = fresh_version();
        self.modified = SystemTime::now();
    }

    /// Gives the table a version no other content has had (after replaying
    /// the log, or undoing a change): tags must never repeat.
    pub fn renew_version(&mut self) {
        self.version = fresh_version();
    }

    fn column_index(&mut self, name: &str) -> usize {
        if let Some(i) = self.columns.iter().position(|c| c == name) {
            return i;
        }
        Arc::make_mut(&mut self.columns).push(name.to_string());
        self.columns.len() - 1
    }

    /// The largest canonical integer id (0 when there is none).
    fn max_int_id(&mut self) -> u64 {
        match self.max_int_id {
            Some(max) => max,
            None => {
                let id_col = self.id_col.unwrap_or(0);
                let max = self
                    .slots
                    .rows()
                    .filter_map(|row| int_id(row.get(id_col)))
                    .max()
                    .unwrap_or(0);
                self.max_int_id = Some(max);
                max
            }
        }
    }

    fn next_id(&mut self) -> Result<String, Error> {
        let next = self.max_int_id().checked_add(1).ok_or_else(no_id_left)?;
        self.max_int_id = Some(next);
        Ok(next.to_string())
    }

    fn note_id(&mut self, id: &str) {
        if let (Some(n), Some(max)) = (int_id(id), self.max_int_id) {
            self.max_int_id = Some(max.max(n));
        }
    }

    /// Whether every row has a unique, non-empty id.
    pub fn ids_ok(&self) -> bool {
        self.ids_ok
    }

    /// Gives the table an id column (first) and every row a unique id, as the
    /// first write to a table dropped in without them does.
    pub fn ensure_ids(&mut self, id_column: &str) {
        if self.ids_ok {
            return;
        }
        let id_col = match self.id_col {
            Some(i) => i,
            None => {
                let columns = Arc::make_mut(&mut self.columns);
                columns.insert(0, id_column.to_string());
                self.slots.update_rows(|row| {
                    let cells: Vec<&str> =
                        std::iter::once("").chain(row.cells(row.len())).collect();
                    *row = Row::from_cells(cells);
                });
                self.id_col = Some(0);
                0
            }
        };
        self.reindex();
        for slot in 0..self.slots.len() {
            let Some(row) = self.slots.row(slot).cloned() else {
                continue;
            };
            let id = row.get(id_col);
            if !id.is_empty() && self.index.get(id, &self.slots) == Some(slot) {
                continue;
            }
            let fresh = match self.next_id() {
                Ok(id) => id,
                // No integer id is left: one past them, still unique.
                Err(_) => (1u128..)
                    .map(|n| (u128::from(u64::MAX) + n).to_string())
                    .find(|id| self.index.get(id, &self.slots).is_none())
                    .unwrap_or_default(),
            };
            self.slots.set(slot, Some(row.with_cell(id_col, &fresh)));
            self.index.insert(&fresh, slot);
        }
        self.ids_ok = true;
    }

    /// Builds a row from fields, growing columns as needed. `base` supplies
    /// the cells of fields not given (for a patch).
    fn build_row(&mut self, fields: &Fields, base: Option<&Row>) -> Row {
        let positions: Vec<usize> = fields
            .iter()
            .map(|(name, _)| self.column_index(name))
            .collect();
        let mut cells: Vec<&str> = match base {
            Some(row) => row.cells(self.columns.len()).collect(),
            None => vec![""; self.columns.len()],
        };
        for (&at, (_, value)) in positions.iter().zip(fields) {
            cells[at] = value;
        }
        Row::from_cells(cells)
    }

    /// Inserts new rows; all or none. Rows without an id get the next
    /// integer. Call [`Table::ensure_ids`] first. A record whose cells
    /// already lie in the table's column order, id included, becomes a row
    /// as it is: a bulk write of a table's own layout copies no cell.
    pub fn insert(&mut self, records: Records, id_column: &str) -> Result<Applied, Error> {
        let Records {
            columns,
            rows,
            numbered,
        } = records;
        validate_columns(&columns)?;
        // Numbered rows carry no id of their own.
        let given_at = columns
            .iter()
            .position(|c| c == id_column)
            .filter(|_| !numbered);
        // Every id given is checked before anything changes.
        let mut auto = false;
        if let Some(k) = given_at {
            let mut batch = Batch::default();
            for (i, row) in rows.iter().enumerate() {
                let id = row.get(k);
                if id.is_empty() {
                    auto = true;
                    continue;
                }
                validate_id(id)?;
                if self.index.get(id, &self.slots).is_some() || !batch.insert(&rows, k, i) {
                    return Err(Error::IdTaken(id.to_string()));
                }
            }
        } else {
            auto = !rows.is_empty();
        }
        // Integer ids given, which the ids made for the others must avoid.
        let taken: HashSet<u64> = match given_at {
            Some(k) if auto => rows.iter().filter_map(|r| int_id(r.get(k))).collect(),
            _ => HashSet::new(),
        };
        let id_col = match self.id_col {
            Some(col) => col,
            None => {
                self.ensure_ids(id_column);
                self.id_col.unwrap_or(0)
            }
        };
        // Where each of the records' columns lies in the table (new ones
        // are added in the order the records name them).
        let map: Vec<usize> = columns.iter().map(|c| self.column_index(c)).collect();
        let same_layout = map.iter().enumerate().all(|(j, &c)| j == c);
        let in_place = given_at == Some(id_col) && same_layout;
        // Rows numbered from 1 hold the very ids they would be given here
        // when the table has no integer id yet.
        let numbered_in_place =
            numbered && same_layout && map.first() == Some(&id_col) && self.max_int_id() == 0;
        let width = self.columns.len();
        self.index.reserve(rows.len());
        // Which of the records' cells each of the table's columns takes.
        let mut from = vec![None; width];
        for (j, &at) in map.iter().enumerate() {
            from[at] = Some(j);
        }
        let mut relaid = Relaid::default();
        let mut applied = Vec::with_capacity(rows.len());
        for row in rows {
            let given = given_at.is_some_and(|k| !row.get(k).is_empty());
            let row = if numbered_in_place {
                self.note_id(row.get(id_col));
                row
            } else if given {
                self.note_id(row.get(given_at.unwrap_or(0)));
                if in_place {
                    row
                } else {
                    relaid.row(row, &from, None)
                }
            } else {
                let id = loop {
                    let candidate = self.next_id()?;
                    if int_id(&candidate).is_none_or(|n| !taken.contains(&n)) {
                        break candidate;
                    }
                };
                relaid.row(row, &from, Some((id_col, &id)))
            };
            self.slots.push(Some(row.clone()));
            self.index.insert(row.get(id_col), self.slots.len() - 1);
            self.live += 1;
            applied.push(row);
        }
        self.touch();
        Ok(Applied {
            rows: applied,
            created: true,
        })
    }

    /// Replaces the row `id` (or creates it): fields not given become empty.
    pub fn put(&mut self, id: &str, record: &Fields, id_column: &str) -> Result<Applied, Error> {
        validate_id(id)?;
        validate_fields(record)?;
        check_body_id(record, id, id_column)?;
        let mut fields = without(record, id_column);
        fields.insert(0, (id_column.to_string(), id.to_string()));
        let row = self.build_row(&fields, None);
        let created = match self.index.get(id, &self.slots) {
            Some(slot) => {
                self.slots.set(slot, Some(row.clone()));
                false
            }
            None => {
                self.note_id(id);
                self.slots.push(Some(row.clone()));
                self.index.insert(id, self.slots.len() - 1);
                self.live += 1;
                true
            }
        };
        self.touch();
        Ok(Applied {
            rows: vec![row],
            created,
        })
    }

    /// Changes the given fields of row `id`.
    pub fn patch(&mut self, id: &str, record: &Fields, id_column: &str) -> Result<Applied, Error> {
        validate_fields(record)?;
        check_body_id(record, id, id_column)?;
        let slot = self
            .index
            .get(id, &self.slots)
            .ok_or_else(|| Error::NoRow(id.to_string()))?;
        let base = self
            .slots
            .row(slot)
            .cloned()
            .ok_or_else(|| Error::NoRow(id.to_string()))?;
        let fields = without(record, id_column);
        let row = self.build_row(&fields, Some(&base));
        self.slots.set(slot, Some(row.clone()));
        self.touch();
        Ok(Applied {
            rows: vec![row],
            created: false,
        })
    }

    /// Deletes row `id`.
    pub fn delete(&mut self, id: &str) -> Result<(), Error> {
        let slot = self
            .index
            .remove(id, &self.slots)
            .ok_or_else(|| Error::NoRow(id.to_string()))?;
        self.slots.set(slot, None);
        self.live -= 1;
        if int_id(id).is_some() && int_id(id) == self.max_int_id {
            self.max_int_id = None;
        }
        // Compact when over half the slots are holes, so deletes stay cheap
        // on average and memory stays proportional to the live rows.
        if self.slots.len() > 64 && self.live < self.slots.len() / 2 {
            self.reindex();
        }
        self.touch();
        Ok(())
    }

    /// Sets the header (replaying a logged column change).
    pub fn set_columns(&mut self, columns: Vec<String>, id_column: &str) {
        let before = self.id_col;
        self.id_col = columns.iter().position(|c| c == id_column);
        self.columns = Arc::new(columns);
        if before != self.id_col {
            self.reindex();
        }
    }

    /// Replaces the row with this row's id, or appends it (replaying a
    /// logged row). Rows without an id cell are ignored.
    pub fn upsert(&mut self, row: Row) {
        let Some(id_col) = self.id_col else { return };
        let id = row.get(id_col);
        if id.is_empty() {
            return;
        }
        match self.index.get(id, &self.slots) {
            Some(slot) => self.slots.set(slot, Some(row)),
            None => {
                self.note_id(id);
                let id = id.to_string();
                self.slots.push(Some(row));
                self.index.insert(&id, self.slots.len() - 1);
                self.live += 1;
            }
        }
        self.touch();
    }

    /// A whole new table from records (the columns first, a CSV body's
    /// header, then any the table adds: the id column, first).
    pub fn from_records(
        records: Records,
        id_column: &str,
        previous_version: u64,
    ) -> Result<Table, Error> {
        validate_columns(&records.columns)?;
        let mut table = Table::new(
            records.columns.clone(),
            Vec::new(),
            id_column,
            previous_version,
            SystemTime::now(),
        );
        table.ensure_ids(id_column);
        table.insert(records, id_column)?;
        table.renew_version();
        Ok(table)
    }
}

/// The refusal of an insert without ids into a table whose largest id is
/// the largest integer id there is.
pub fn no_id_left() -> Error {
    Error::InvalidId(format!(
        "the table's largest id is {}: no integer id is left to give; give each row an id",
        u64::MAX
    ))
}

/// The version of a row of a table with these columns: a hash of the
/// columns and the row's cells, so it is the same wherever and whenever
/// the same row is read, and changes when either changes.
pub fn row_version(columns: &[String], row: &Row) -> u64 {
    // The bytes are gathered first and hashed at once (the same hash as
    // fed piece by piece, at a fraction of the cost for short cells).
    thread_local! {
        static BYTES: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BYTES.with(|bytes| {
        // Nothing below calls out: the buffer is never borrowed twice.
        let mut bytes = bytes.borrow_mut();
        bytes.clear();
        for (name, cell) in columns.iter().zip(row.cells(columns.len())) {
            bytes.extend_from_slice(name.as_bytes());
            bytes.push(0);
            bytes.extend_from_slice(cell.as_bytes());
            bytes.push(1);
        }
        let version = xxh3_64(&bytes);
        // A huge row's buffer is not kept for the thread's life.
        if bytes.capacity() > 1 << 16 {
            *bytes = Vec::new();
        }
        version
    })
}

/// The hash fed piece by piece: what [`row_version`] must equal.
#[cfg(test)]
fn row_version_streamed(columns: &[String], row: &Row) -> u64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for (name, cell) in columns.iter().zip(row.cells(columns.len())) {
        hasher.update(name.as_bytes());
        hasher.update(&[0]);
        hasher.update(cell.as_bytes());
        hasher.update(&[1]);
    }
    hasher.digest()
}

/// Rebuilds records' rows in a table's column order. The cells are copied
/// aside and the record's row freed before its new row is made, so that
/// the new row can take the old one's place in memory: a bulk write that
/// rebuilds every row does not hold each row twice.
#[derive(Default)]
struct Relaid {
    text: String,
    ends: Vec<usize>,
}

impl Relaid {
    /// `from` gives, for each column of the table, the record's cell it
    /// takes; `id`, a made id and its column.
    fn row(&mut self, row: Row, from: &[Option<usize>], id: Option<(usize, &str)>) -> Row {
        self.text.clear();
        self.ends.clear();
        for (at, from) in from.iter().enumerate() {
            let cell = match id {
                Some((id_at, id)) if id_at == at => id,
                _ => from.map_or("", |j| row.get(j)),
            };
            self.text.push_str(cell);
            self.ends.push(self.text.len());
        }
        drop(row);
        // Trailing empty cells need not be stored.
        while let Some(&end) = self.ends.last() {
            let start = self.ends.len().checked_sub(2).map_or(0, |i| self.ends[i]);
            if end != start {
                break;
            }
            self.ends.pop();
        }
        Row::from_ends(&self.text, &self.ends)
    }
}

/// The ids given in one insert, as positions in its rows (an id is not
/// stored twice), to refuse one given twice.
#[derive(Default)]
struct Batch {
    entries: HashTable<u32>,
    hasher: RandomState,
}

impl Batch {
    /// Adds row `at`'s id (column `col`); false when an earlier row has it.
    fn insert(&mut self, rows: &[Row], col: usize, at: usize) -> bool {
        let id = rows[at].get(col);
        let hash = self.hasher.hash_one(id);
        let hasher = &self.hasher;
        match self.entries.entry(
            hash,
            |&i| rows[i as usize].get(col) == id,
            |&i| hasher.hash_one(rows[i as usize].get(col)),
        ) {
            hashbrown::hash_table::Entry::Occupied(_) => false,
            hashbrown::hash_table::Entry::Vacant(slot) => {
                slot.insert(at as u32);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn recs(records: &[Fields]) -> Records {
        Records::from_fields(Vec::new(), records.to_vec())
    }

    fn table(columns: &[&str], rows: &[&[&str]]) -> Table {
        Table::new(
            columns.iter().map(|c| c.to_string()).collect(),
            rows.iter().map(|r| Row::from_cells(r.iter())).collect(),
            "id",
            0,
            SystemTime::now(),
        )
    }

    #[test]
    fn insert_assigns_next_integer_and_grows_columns() {
        let mut t = table(&["id", "name"], &[&["1", "a"], &["7", "b"], &["007", "c"]]);
        let applied = t
            .insert(recs(&[rec(&[("name", "d"), ("age", "30")])]), "id")
            .unwrap();
        assert_eq!(
            applied.rows[0].cells(3).collect::<Vec<_>>(),
            ["8", "d", "30"]
        );
        assert_eq!(**t.columns(), ["id", "name", "age"]);
        assert_eq!(t.len(), 4);
    }

    #[test]
    fn insert_refuses_taken_or_repeated_ids_atomically() {
        let mut t = table(&["id"], &[&["1"]]);
        assert!(matches!(
            t.insert(recs(&[rec(&[("id", "1")])]), "id"),
            Err(Error::IdTaken(_))
        ));
        let twice = [rec(&[("id", "x")]), rec(&[("id", "x")])];
        assert!(matches!(
            t.insert(recs(&twice), "id"),
            Err(Error::IdTaken(_))
        ));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn numbered_rows_keep_their_numbers_only_where_they_are_the_ids_made() {
        let numbered = |rows: &[&[&str]]| Records {
            columns: vec!["id".into(), "name".into()],
            rows: rows.iter().map(|r| Row::from_cells(r.iter())).collect(),
            numbered: true,
        };
        // A new table would give them these very ids: the rows are kept.
        let records = numbered(&[&["1", "a"], &["2", "b"]]);
        let first = records.rows[0].clone();
        let t = Table::from_records(records, "id", 0).unwrap();
        assert!(Row::ptr_eq(&t.rows()[0], &first));
        assert_eq!(t.get("2").unwrap().get(1), "b");
        // A table with ids gives the next ones.
        let mut t = table(&["id", "name"], &[&["5", "x"]]);
        t.insert(numbered(&[&["1", "a"], &["2", "b"]]), "id")
            .unwrap();
        let ids: Vec<String> = t.rows().iter().map(|r| r.get(0).to_string()).collect();
        assert_eq!(ids, ["5", "6", "7"]);
        assert_eq!(t.get("6").unwrap().get(1), "a");
        // Another layout: the numbers are replaced, the cells moved.
        let mut t = table(&["name", "id"], &[]);
        t.insert(numbered(&[&["1", "a"]]), "id").unwrap();
        assert_eq!(t.get("1").unwrap().cells(2).collect::<Vec<_>>(), ["a", "1"]);
    }

    #[test]
    fn first_write_gives_ids_to_a_table_without_them() {
        let mut t = table(&["name"], &[&["a"], &["b"]]);
        assert!(!t.ids_ok());
        t.ensure_ids("id");
        t.insert(recs(&[rec(&[("name", "c")])]), "id").unwrap();
        assert_eq!(**t.columns(), ["id", "name"]);
        let ids: Vec<String> = t.rows().iter().map(|r| r.get(0).to_string()).collect();
        assert_eq!(ids, ["1", "2", "3"]);
    }

    #[test]
    fn duplicate_and_empty_ids_are_repaired_on_first_write() {
        let mut t = table(&["id", "n"], &[&["5", "a"], &["5", "b"], &["", "c"]]);
        t.ensure_ids("id");
        t.insert(recs(&[rec(&[("n", "d")])]), "id").unwrap();
        let ids: Vec<String> = t.rows().iter().map(|r| r.get(0).to_string()).collect();
        assert_eq!(ids, ["5", "6", "7", "8"]);
    }

    #[test]
    fn put_patch_delete() {
        let mut t = table(&["id", "a", "b"], &[&["1", "x", "y"]]);
        assert!(!t.put("1", &rec(&[("a", "z")]), "id").unwrap().created);
        assert_eq!(
            t.get("1").unwrap().cells(3).collect::<Vec<_>>(),
            ["1", "z", ""]
        );
        assert!(t.put("abc", &rec(&[("b", "q")]), "id").unwrap().created);
        t.patch("abc", &rec(&[("a", "p")]), "id").unwrap();
        assert_eq!(
            t.get("abc").unwrap().cells(3).collect::<Vec<_>>(),
            ["abc", "p", "q"]
        );
        assert!(matches!(
            t.patch("1", &rec(&[("id", "2")]), "id"),
            Err(Error::IdMismatch { .. })
        ));
        t.delete("1").unwrap();
        assert!(t.get("1").is_none());
        assert!(matches!(t.delete("1"), Err(Error::NoRow(_))));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn replay_helpers() {
        let mut t = table(&["id", "a"], &[&["1", "x"]]);
        t.set_columns(vec!["id".into(), "a".into(), "b".into()], "id");
        t.upsert(Row::from_cells(["1", "y", "z"]));
        t.upsert(Row::from_cells(["2", "w"]));
        assert_eq!(t.len(), 2);
        assert_eq!(
            t.get("1").unwrap().cells(3).collect::<Vec<_>>(),
            ["1", "y", "z"]
        );
        t.delete("2").unwrap();
        assert!(t.get("2").is_none());
    }

    #[test]
    fn row_versions_are_the_hash_of_the_cells_fed_piece_by_piece() {
        // Tags survive upgrades: the one-shot hash must equal the streamed one,
        // at every length xxh3 treats differently.
        let columns: Vec<String> = vec!["id".into(), "text".into()];
        for len in [0, 1, 10, 100, 200, 300, 5_000, 100_000] {
            let row = Row::from_cells(["7".to_string(), "é".repeat(len)]);
            assert_eq!(
                row_version(&columns, &row),
                row_version_streamed(&columns, &row)
            );
        }
    }

    #[test]
    fn row_version_follows_content() {
        let t = table(&["id", "a"], &[&["1", "x"]]);
        let a = t.row_version(&Row::from_cells(["1", "x"]));
        assert_eq!(a, t.row_version(&Row::from_cells(["1", "x"])));
        assert_ne!(a, t.row_version(&Row::from_cells(["1", "y"])));
    }

    #[test]
    fn snapshots_of_packed_rows_outlive_writes() {
        // A table loaded as a file is: its rows packed into shared blocks.
        let mut packer = crate::store::row::Packer::default();
        for i in 1..=3000 {
            let cells = vec![i.to_string(), format!("name {i}"), "é\0".to_string()];
            packer.push_record(&csv::StringRecord::from(cells));
        }
        let columns = ["id", "name", "note"].map(String::from).to_vec();
        let mut t = Table::new(columns, packer.finish(), "id", 0, SystemTime::now());
        let before = t.rows();
        // Writes replace, change and delete rows (compacting the slots),
        // and add new ones, while the snapshot is held.
        for i in 1..=3000 {
            let id = i.to_string();
            match i % 3 {
                0 => t.delete(&id).unwrap(),
                1 => drop(t.put(&id, &rec(&[("name", "new")]), "id").unwrap()),
                _ => drop(t.patch(&id, &rec(&[("note", "")]), "id").unwrap()),
            }
        }
        let last = t.insert(recs(&[rec(&[("name", "last")])]), "id").unwrap();
        assert_eq!(before.len(), 3000);
        for (i, row) in (1..).zip(&before) {
            let cells: Vec<&str> = row.cells(3).collect();
            assert_eq!(cells, [i.to_string().as_str(), &format!("name {i}"), "é\0"]);
        }
        assert_eq!(t.len(), 2001);
        assert_eq!(
            t.get("1").unwrap().cells(3).collect::<Vec<_>>(),
            ["1", "new", ""]
        );
        assert_eq!(
            t.get("2").unwrap().cells(3).collect::<Vec<_>>(),
            ["2", "name 2", ""]
        );
        assert!(t.get("3").is_none());
        assert_eq!(t.get(last.rows[0].get(0)).unwrap().get(1), "last");
        drop(before);
        assert_eq!(t.get("2999").unwrap().get(1), "name 2999");
    }

    #[test]
    fn deletes_compact() {
        let rows: Vec<Vec<String>> = (1..=200).map(|i| vec![i.to_string()]).collect();
        let refs: Vec<Vec<&str>> = rows
            .iter()
            .map(|r| r.iter().map(String::as_str).collect())
            .collect();
        let slices: Vec<&[&str]> = refs.iter().map(Vec::as_slice).collect();
        let mut t = table(&["id"], &slices);
        for i in 1..=150 {
            t.delete(&i.to_string()).unwrap();
        }
        assert_eq!(t.len(), 50);
        assert_eq!(t.get("151").unwrap().get(0), "151");
        assert!(t.slots.len() < 200);
    }
}
