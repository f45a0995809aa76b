//! The tables as queries see them: the latest [`Snapshot`] of each table
//! read, with column copies and indexes made on demand, kept until the
//! table's version changes.
//!
//! Taking a snapshot copies a handle per row (a million for a large table);
//! keeping it means a read costs one version check, and what one query
//! derived serves the next ones: copies of the columns it filtered or
//! sorted on, and indexes of the columns it looked up by value. The price
//! is memory: one handle list per table (8 bytes a row), copies of the
//! columns queries use (their text and 4 bytes a row), indexes (4 bytes a
//! row), and old rows staying alive until the table is read again after a
//! write.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use super::column::{Cells, Column};
use super::index::ColumnIndex;
use crate::store::{self, Head, Selected, Snapshot};

/// Tables smaller than this are read from their rows: a scan of them takes
/// microseconds, less than keeping a column copy or an index would be worth.
const DERIVE_MIN_ROWS: usize = 10_000;
/// Equality filters on a column, at one version, before it gets an index.
/// The first is answered by a scan and may be a one-off; a second suggests
/// more will come. Lookups by id are the common case: the id column gets
/// its index at the first.
const INDEX_AFTER_USES: u32 = 2;

/// One snapshot of a table and what queries derived from it.
pub struct TableView {
    pub snapshot: Snapshot,
    /// By column.
    derived: Vec<Derived>,
}

/// What is derived from one column, each part when first needed.
#[derive(Default)]
struct Derived {
    copy: OnceLock<Option<Column>>,
    uses: AtomicU32,
    building: AtomicBool,
    ready: OnceLock<ColumnIndex>,
}

impl TableView {
    pub fn new(snapshot: Snapshot) -> TableView {
        let derived = snapshot
            .columns
            .iter()
            .map(|_| Derived::default())
            .collect();
        TableView { snapshot, derived }
    }

    /// Where to read a column's cells: a copy of the column in a large
    /// table (made by the first query that needs it, at the cost of one
    /// scan), else the rows.
    pub fn cells(&self, column: usize) -> Cells<'_> {
        let rows = &self.snapshot.rows;
        let copy = self
            .derived
            .get(column)
            .filter(|_| rows.len() >= DERIVE_MIN_ROWS)
            .and_then(|slot| {
                slot.copy
                    .get_or_init(|| Column::copy(rows, column))
                    .as_ref()
            });
        match copy {
            Some(copy) => Cells::Copied(copy),
            None => Cells::Rows(rows, column),
        }
    }

    /// Where to read a column's cells without making a copy: for queries
    /// that read few rows.
    pub fn cells_as_they_are(&self, column: usize) -> Cells<'_> {
        let copy = self.derived.get(column).and_then(|slot| slot.copy.get());
        match copy {
            Some(Some(copy)) => Cells::Copied(copy),
            _ => Cells::Rows(&self.snapshot.rows, column),
        }
    }

    /// Makes the copies of these columns that a large table lacks, in one
    /// pass over the rows, before a query reads them.
    pub fn prepare(&self, columns: &[usize]) {
        if self.snapshot.rows.len() < DERIVE_MIN_ROWS {
            return;
        }
        let mut missing: Vec<usize> = columns
            .iter()
            .copied()
            .filter(|&c| self.derived.get(c).is_some_and(|s| s.copy.get().is_none()))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if missing.len() < 2 {
            // One column: `cells` copies it when first read.
            return;
        }
        for (column, copy) in missing
            .iter()
            .zip(Column::copy_many(&self.snapshot.rows, &missing))
        {
            // Another query may have made it meanwhile: either copy will do.
            let _ = self.derived[*column].copy.set(copy);
        }
    }

    /// The index of a column, if it is built.
    pub fn index(&self, column: usize) -> Option<&ColumnIndex> {
        self.derived.get(column)?.ready.get()
    }

    /// Notes an equality filter on `column`; once a column has been
    /// filtered often enough, builds its index on a background thread so
    /// that no request waits for it (requests scan until it is ready).
    pub fn note_equality(self: &Arc<Self>, column: usize) {
        let Some(slot) = self.derived.get(column) else {
            return;
        };
        if self.snapshot.rows.len() < DERIVE_MIN_ROWS || slot.ready.get().is_some() {
            return;
        }
        let uses = slot.uses.fetch_add(1, Ordering::Relaxed) + 1;
        let wanted = if Some(column) == self.snapshot.id_col {
            1
        } else {
            INDEX_AFTER_USES
        };
        if uses < wanted || slot.building.swap(true, Ordering::AcqRel) {
            return;
        }
        let view = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("csvd-index".into())
            .spawn(move || {
                let index = ColumnIndex::build(view.cells(column), view.snapshot.rows.len());
                let _ = view.derived[column].ready.set(index);
            });
        if let Err(err) = spawned {
            // Queries keep scanning; a later one tries again.
            tracing::warn!("cannot start building an index: {err}");
            slot.building.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
impl TableView {
    /// Builds a column's index at once, so tests can compare it with scans.
    pub fn index_now(&self, column: usize) {
        let index = ColumnIndex::build(self.cells(column), self.snapshot.rows.len());
        let _ = self.derived[column].ready.set(index);
    }
}

/// A backend that holds its tables in memory and hands out snapshots.
#[async_trait::async_trait]
pub trait Snapshots: Send + Sync {
    /// A whole table.
    async fn read(&self, table: &str) -> store::Result<Snapshot>;
    /// The current version of a table (as in its [`Snapshot`]), without
    /// copying its rows: a view is kept until this changes.
    async fn version(&self, table: &str) -> store::Result<u64>;
}

/// The latest view of every table that was queried, and the turns to
/// evaluate queries.
pub struct Views {
    tables: Mutex<HashMap<String, Arc<TableView>>>,
    /// One turn per core: a query that reads every row of a large table
    /// keeps a core busy and may hold tens of megabytes while it sorts, so
    /// more at once would only share the cores and add up the memory.
    turns: tokio::sync::Semaphore,
}

impl Default for Views {
    fn default() -> Views {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Views {
            tables: Mutex::default(),
            turns: tokio::sync::Semaphore::new(cores),
        }
    }
}

impl Views {
    /// Waits for a turn to evaluate a query that reads many rows; the turn
    /// ends when the permit is dropped.
    pub async fn turn(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        // The semaphore is never closed, so this always gives a permit.
        self.turns.acquire().await.ok()
    }

    /// The current view of a table: the kept one if the table has not
    /// changed since, else a fresh snapshot.
    pub async fn get(&self, store: &dyn Snapshots, table: &str) -> store::Result<Arc<TableView>> {
        let version = match store.version(table).await {
            Ok(version) => version,
            Err(err) => {
                self.lock().remove(table);
                return Err(err);
            }
        };
        if let Some(view) = self.lock().get(table) {
            if view.snapshot.version == version {
                return Ok(view.clone());
            }
        }
        let view = Arc::new(TableView::new(store.read(table).await?));
        self.lock().insert(table.to_string(), view.clone());
        Ok(view)
    }

    /// Answers a query string on the current view of a table, in memory:
    /// what [`crate::store::Store::select`] answers for a backend that
    /// holds its tables in memory.
    pub async fn select(
        &self,
        store: &dyn Snapshots,
        table: &str,
        raw: &str,
    ) -> store::Result<Selected> {
        let view = self.get(store, table).await?;
        let query = super::parse(raw, &view.snapshot.columns)?;
        let (query, selection) = if query.is_plain() {
            let selection = super::select(&query, &view);
            (query, selection)
        } else {
            // Filtering and sorting may read every row: off the async
            // workers, a few at a time.
            let _turn = self.turn().await;
            super::select_apart(query, view.clone()).await?
        };
        let snapshot = &view.snapshot;
        let head = Head {
            columns: snapshot.columns.clone(),
            id_col: snapshot.id_col,
            rows: snapshot.rows.len(),
            version: snapshot.version,
            modified: snapshot.modified,
        };
        let picked = selection.picked;
        let rows = futures_util::stream::iter(
            (0..picked.len())
                .filter_map(move |i| picked.get(i))
                .map(move |at| Ok(view.snapshot.rows[at].clone())),
        );
        Ok(Selected {
            head,
            query,
            total: selection.total,
            rows: Box::pin(rows),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<TableView>>> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DirStore, Expect, Options, Records, Store};

    #[test]
    fn turns_are_one_per_core() {
        use futures_util::FutureExt;
        let views = Views::default();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut held: Vec<_> = (0..cores)
            .map(|_| views.turn().now_or_never().flatten().expect("a free turn"))
            .collect();
        assert!(views.turn().now_or_never().is_none());
        held.pop();
        assert!(views.turn().now_or_never().flatten().is_some());
    }

    #[tokio::test]
    async fn views_are_kept_until_the_table_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::open(dir.path(), "id", Options::default()).unwrap();
        let store = store.as_ref();
        let fields = |name: &str| vec![("name".to_string(), name.to_string())];
        store
            .insert(
                "t",
                Records::from_fields(Vec::new(), vec![fields("kim")]),
                &Expect::none(),
            )
            .await
            .unwrap();
        let views = Views::default();
        let first = views.get(store, "t").await.unwrap();
        assert!(Arc::ptr_eq(&first, &views.get(store, "t").await.unwrap()));
        store
            .insert(
                "t",
                Records::from_fields(Vec::new(), vec![fields("lee")]),
                &Expect::none(),
            )
            .await
            .unwrap();
        let second = views.get(store, "t").await.unwrap();
        assert!(!Arc::ptr_eq(&first, &second));
        assert_eq!(second.snapshot.rows.len(), 2);
        store.delete_table("t", &Expect::none()).await.unwrap();
        assert!(views.get(store, "t").await.is_err());
        assert!(views.lock().is_empty());
    }
}
