//! An index of one column of a snapshot: row positions ordered by cell
//! text, so `col=value` finds its rows by binary search instead of reading
//! every row. It holds positions only (4 bytes a row), never text.

use std::cmp::Ordering;

use super::column::Cells;

/// Row positions of one column, ordered by cell then position.
#[derive(Debug)]
pub struct ColumnIndex {
    order: Vec<u32>,
}

impl ColumnIndex {
    /// Orders the `len` rows of a snapshot by their cell. Rows are
    /// compared by the first 8 bytes of their cells first, so most
    /// comparisons need no pointer chasing.
    pub fn build(cells: Cells<'_>, len: usize) -> ColumnIndex {
        let prefix = |position: u32| {
            let cell = cells.get(position).as_bytes();
            let mut bytes = [0u8; 8];
            let len = cell.len().min(8);
            bytes[..len].copy_from_slice(&cell[..len]);
            u64::from_be_bytes(bytes)
        };
        let mut keyed: Vec<(u64, u32)> = (0..len)
            .filter_map(|p| u32::try_from(p).ok())
            .map(|p| (prefix(p), p))
            .collect();
        keyed.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| cells.get(a.1).cmp(cells.get(b.1)))
                .then(a.1.cmp(&b.1))
        });
        ColumnIndex {
            order: keyed.into_iter().map(|(_, p)| p).collect(),
        }
    }

    /// Positions of the rows whose cell is exactly `value`, in table order.
    /// `cells` must be the column the index was built from.
    pub fn lookup<'a>(&'a self, cells: Cells<'_>, value: &str) -> &'a [u32] {
        let start = self.order.partition_point(|&p| cells.get(p) < value);
        let len =
            self.order[start..].partition_point(|&p| cells.get(p).cmp(value) == Ordering::Equal);
        &self.order[start..start + len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Row;

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
        let rows: Vec<Row> = values.iter().map(|v| Row::from_cells(["x", v])).collect();
        let cells = Cells::Rows(&rows, 1);
        let index = ColumnIndex::build(cells, rows.len());
        for wanted in values.iter().chain(&["c", "abcdefgh", "0"]) {
            let scanned: Vec<u32> = (0..values.len() as u32)
                .filter(|&p| values[p as usize] == *wanted)
                .collect();
            assert_eq!(index.lookup(cells, wanted), scanned, "{wanted:?}");
        }
    }
}
