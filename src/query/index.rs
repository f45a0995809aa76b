//! An index of one column of a snapshot: row positions ordered by cell
//! text, so `col=value` finds its rows by binary search instead of reading
//! every row. It holds positions only (4 bytes a row), never text.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::store::Row;

/// Row positions of one column, ordered by cell then position.
#[derive(Debug)]
pub struct ColumnIndex {
    column: usize,
    order: Vec<u32>,
}

impl ColumnIndex {
    /// Orders the rows by their cell in `column`. Rows are compared by the
    /// first 8 bytes of their cells first, so most comparisons need no
    /// pointer chasing.
    pub fn build(rows: &[Arc<Row>], column: usize) -> ColumnIndex {
        let prefix = |position: u32| {
            let cell = rows[position as usize].get(column).as_bytes();
            let mut bytes = [0u8; 8];
            let len = cell.len().min(8);
            bytes[..len].copy_from_slice(&cell[..len]);
            u64::from_be_bytes(bytes)
        };
        let mut keyed: Vec<(u64, u32)> = (0..rows.len())
            .filter_map(|p| u32::try_from(p).ok())
            .map(|p| (prefix(p), p))
            .collect();
        keyed.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| {
                    let cell = |p: u32| rows[p as usize].get(column);
                    cell(a.1).cmp(cell(b.1))
                })
                .then(a.1.cmp(&b.1))
        });
        ColumnIndex {
            column,
            order: keyed.into_iter().map(|(_, p)| p).collect(),
        }
    }

    /// Positions of the rows whose cell is exactly `value`, in table order.
    /// `rows` must be the snapshot the index was built from.
    pub fn lookup<'a>(&'a self, rows: &[Arc<Row>], value: &str) -> &'a [u32] {
        let cell = |p: &u32| rows[*p as usize].get(self.column);
        let start = self.order.partition_point(|p| cell(p) < value);
        let len = self.order[start..].partition_point(|p| cell(p).cmp(value) == Ordering::Equal);
        &self.order[start..start + len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_find_what_a_scan_finds() {
        let values = [
            "b",
            "",
            "abcdefghij",
            "a",
            "abcdefghi",
            "b",
            "é",
            "abcdefghij",
        ];
        let rows: Vec<Arc<Row>> = values
            .iter()
            .map(|v| Arc::new(Row::from_cells(["x", v])))
            .collect();
        let index = ColumnIndex::build(&rows, 1);
        for wanted in values.iter().chain(&["c", "abcdefgh", "0"]) {
            let scanned: Vec<u32> = (0..values.len() as u32)
                .filter(|&p| values[p as usize] == *wanted)
                .collect();
            assert_eq!(index.lookup(&rows, wanted), scanned, "{wanted:?}");
        }
    }
}
