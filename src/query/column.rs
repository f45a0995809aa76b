//! One column's cells copied into a single buffer, in row order.
//!
//! Rows live in separate allocations, so reading one cell of each row of a
//! large table costs a cache miss per row; a scan of a copied column reads
//! memory in order, several times faster. Filters and sorts read their
//! columns through [`Cells`], which uses the copy when there is one.

use crate::store::Row;

/// The cells of one column, back to back.
#[derive(Debug)]
pub struct Column {
    text: String,
    /// End offset of each cell in `text`.
    ends: Vec<u32>,
}

impl Column {
    /// Copies a column; `None` when its text would not fit 32-bit offsets
    /// (4 GiB), in which case it is read from the rows.
    pub fn copy(rows: &[Row], column: usize) -> Option<Column> {
        Column::copy_many(rows, &[column]).pop().flatten()
    }

    /// Copies several columns in one pass over the rows: reading a row is
    /// the costly part (a cache miss), so a query that needs three columns
    /// pays for one pass, not three.
    pub fn copy_many(rows: &[Row], columns: &[usize]) -> Vec<Option<Column>> {
        let mut copies: Vec<Option<Column>> = columns
            .iter()
            .map(|_| {
                Some(Column {
                    text: String::new(),
                    ends: Vec::with_capacity(rows.len()),
                })
            })
            .collect();
        for row in rows {
            for (copy, &column) in copies.iter_mut().zip(columns) {
                let Some(building) = copy else { continue };
                building.text.push_str(row.get(column));
                match u32::try_from(building.text.len()) {
                    Ok(end) => building.ends.push(end),
                    Err(_) => *copy = None,
                }
            }
        }
        for copy in copies.iter_mut().flatten() {
            copy.text.shrink_to_fit();
        }
        copies
    }

    /// The values at `path` inside the JSON objects a column's cells hold
    /// (empty where there is none), as a column; `None` past 4 GiB.
    pub fn reached(rows: &[Row], column: usize, path: &[String]) -> Option<Column> {
        let mut copy = Column {
            text: String::new(),
            ends: Vec::with_capacity(rows.len()),
        };
        for row in rows {
            if let Some(value) = super::filter::reach(row.get(column), path) {
                copy.text.push_str(&value);
            }
            copy.ends.push(u32::try_from(copy.text.len()).ok()?);
        }
        Some(copy)
    }

    fn get(&self, position: usize) -> &str {
        let end = self.ends[position] as usize;
        let start = match position {
            0 => 0,
            _ => self.ends[position - 1] as usize,
        };
        &self.text[start..end]
    }
}

/// Where the cells of one column of a snapshot are read from.
#[derive(Clone, Copy)]
pub enum Cells<'a> {
    Copied(&'a Column),
    Rows(&'a [Row], usize),
}

impl<'a> Cells<'a> {
    /// The cell of the row at `position` of the snapshot.
    #[inline]
    pub fn get(self, position: u32) -> &'a str {
        match self {
            Cells::Copied(column) => column.get(position as usize),
            Cells::Rows(rows, column) => rows[position as usize].get(column),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_read_like_rows() {
        let rows: Vec<Row> = [vec!["1", "a"], vec!["2"], vec!["3", "é,\n"], vec![]]
            .into_iter()
            .map(Row::from_cells)
            .collect();
        let column = Column::copy(&rows, 1).unwrap();
        for position in 0..rows.len() as u32 {
            assert_eq!(
                Cells::Copied(&column).get(position),
                Cells::Rows(&rows, 1).get(position)
            );
        }
        assert_eq!(Cells::Copied(&column).get(2), "é,\n");
        let both = Column::copy_many(&rows, &[1, 0]);
        let first = both[1].as_ref().unwrap();
        assert_eq!(Cells::Copied(first).get(2), "3");
        assert_eq!(Cells::Copied(both[0].as_ref().unwrap()).get(0), "a");
    }
}
