//! Evaluating a [`Query`] on a [`TableView`]: the positions of the rows to
//! answer with, in order, and how many rows matched.

use std::ops::Range;
use std::sync::Arc;

use super::column::{Cells, Column};
use super::filter::Test;
use super::params::Query;
use super::sort::sort;
use super::view::TableView;

/// Candidates from an index are "few" below this fraction of the table
/// (1/16): reading them in place costs less than copying their columns.
const FEW_ROWS_DIVISOR: usize = 16;

/// The rows of a snapshot to answer with, by position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Picked {
    /// Consecutive rows in table order: a plain read allocates nothing.
    Range(Range<usize>),
    /// Rows in answer order.
    Positions(Vec<u32>),
}

impl Picked {
    pub fn len(&self) -> usize {
        match self {
            Picked::Range(range) => range.len(),
            Picked::Positions(positions) => positions.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The position of the `i`th row of the answer.
    pub fn get(&self, i: usize) -> Option<usize> {
        match self {
            Picked::Range(range) => Some(range.start + i).filter(|p| *p < range.end),
            Picked::Positions(positions) => positions.get(i).map(|p| *p as usize),
        }
    }
}

/// What a query selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub picked: Picked,
    /// Rows that matched the filters, before the window (`X-Total-Count`).
    pub total: usize,
}

/// [`select`] on a blocking thread, off the async workers: for queries
/// that may read every row of a large table. Hands the query back with
/// what it selected.
pub async fn select_apart(
    query: Query,
    view: Arc<TableView>,
) -> std::io::Result<(Query, Selection)> {
    tokio::task::spawn_blocking(move || {
        let selection = select(&query, &view);
        (query, selection)
    })
    .await
    .map_err(|e| std::io::Error::other(format!("a query task failed: {e}")))
}

/// Runs a query: filters (through an index when one is ready), sorts only
/// as far as the window needs, and cuts the window. Its cost is one pass
/// over the candidate rows; positions are `u32`, as a table holds fewer
/// than 2^32 rows.
pub fn select(query: &Query, view: &Arc<TableView>) -> Selection {
    let rows = &view.snapshot.rows;
    let width = view.snapshot.columns.len();
    if query.is_plain() {
        let total = rows.len();
        return Selection {
            picked: Picked::Range(query.window.range(total)),
            total,
        };
    }
    let (candidates, indexed) = candidates(query, view);
    // Rows found through an index are few: read them as they are. A scan
    // reads every row: copy the columns it reads first, in one pass.
    let few = candidates
        .as_ref()
        .is_some_and(|c| c.len() < rows.len() / FEW_ROWS_DIVISOR);
    let cells = |column: usize| {
        if few {
            view.cells_as_they_are(column)
        } else {
            view.cells(column)
        }
    };
    let unindexed = || {
        query
            .filters
            .iter()
            .enumerate()
            .filter(move |(i, _)| Some(*i) != indexed)
            .map(|(_, f)| f)
    };
    if !few {
        let used: Vec<usize> = unindexed()
            .map(|f| f.column)
            .chain(query.sort.iter().map(|k| k.column))
            .collect();
        view.prepare(&used);
    }
    let filters: Vec<_> = unindexed().map(|f| (f, cells(f.column))).collect();
    let accepts = |position: &u32| {
        filters
            .iter()
            .all(|(f, cells)| f.accepts(cells.get(*position)))
            && query
                .search
                .as_ref()
                .is_none_or(|s| s.accepts(&rows[*position as usize], width))
            && query.or_accepts(&rows[*position as usize])
    };
    let mut matched: Vec<u32> = match candidates {
        Some(positions) => positions.into_iter().filter(accepts).collect(),
        None => (0..rows.len())
            .filter_map(|p| u32::try_from(p).ok())
            .filter(accepts)
            .collect(),
    };
    let total = matched.len();
    let range = query.window.range(total);
    if !query.sort.is_empty() {
        // A path into cells' JSON objects sorts by the values it reaches.
        let reached: Vec<Option<Column>> = query
            .sort
            .iter()
            .map(|k| (!k.path.is_empty()).then(|| Column::reached(rows, k.column, &k.path))?)
            .collect();
        let columns: Vec<_> = query
            .sort
            .iter()
            .zip(&reached)
            .map(|(k, reached)| match reached {
                Some(column) => Cells::Copied(column),
                None => cells(k.column),
            })
            .collect();
        sort(&mut matched, &query.sort, &columns, range.end);
    }
    matched.truncate(range.end);
    matched.drain(..range.start);
    Selection {
        picked: Picked::Positions(matched),
        total,
    }
}

/// The rows an equality filter allows, through the smallest ready index,
/// and which filter that was; `None` when every row must be read.
fn candidates(query: &Query, view: &Arc<TableView>) -> (Option<Vec<u32>>, Option<usize>) {
    let mut best: Option<(Vec<u32>, usize)> = None;
    for (i, filter) in query.filters.iter().enumerate() {
        let Test::Equals(values) = &filter.test else {
            continue;
        };
        let Some(index) = view.index(filter.column) else {
            view.note_equality(filter.column);
            continue;
        };
        let mut positions: Vec<u32> = values
            .iter()
            .flat_map(|v| index.lookup(view.cells(filter.column), v).iter().copied())
            .collect();
        if values.len() > 1 {
            positions.sort_unstable();
            positions.dedup();
        }
        if best.as_ref().is_none_or(|(b, _)| positions.len() < b.len()) {
            best = Some((positions, i));
        }
    }
    match best {
        Some((positions, i)) => (Some(positions), Some(i)),
        None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::parse;
    use crate::store::{Row, Snapshot};

    fn view(rows: usize) -> Arc<TableView> {
        let columns: Vec<String> = ["id", "group", "value"].map(String::from).to_vec();
        let rows = (0..rows)
            .map(|i| {
                let cells = [
                    i.to_string(),
                    format!("g{}", i % 13),
                    ((i * 7919) % 1009).to_string(),
                ];
                Row::from_cells(cells)
            })
            .collect();
        Arc::new(TableView::new(Snapshot {
            columns: Arc::new(columns),
            id_col: Some(0),
            rows,
            version: 1,
            modified: std::time::SystemTime::UNIX_EPOCH,
        }))
    }

    #[test]
    fn indexes_select_what_scans_select() {
        let scanned = view(3000);
        let indexed = view(3000);
        indexed.index_now(0);
        indexed.index_now(1);
        for raw in [
            "group=g3",
            "group=g3&group=g12&group=g3",
            "group=g3&id=42",
            "group=g4&id=42",
            "id=7&id=2999&id=nope",
            "group=g1&value_gte=500&_sort=-value&_page=2&_limit=7",
            "group=none",
        ] {
            let query = parse(raw, &scanned.snapshot.columns).unwrap();
            assert_eq!(select(&query, &scanned), select(&query, &indexed), "{raw}");
        }
        let query = parse("id=7&id=2999", &indexed.snapshot.columns).unwrap();
        assert_eq!(
            select(&query, &indexed).picked,
            Picked::Positions(vec![7, 2999])
        );
    }

    #[test]
    fn plain_reads_pick_a_range() {
        let view = view(50);
        let query = parse("_start=10&_limit=5", &view.snapshot.columns).unwrap();
        let selection = select(&query, &view);
        assert_eq!(selection.picked, Picked::Range(10..15));
        assert_eq!(selection.total, 50);
    }
}
