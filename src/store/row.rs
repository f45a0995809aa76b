//! One record's cells, packed into a single allocation.
//!
//! A table of a million rows holds a million of these, so a row is one text
//! buffer plus the end offset of each cell rather than a `Vec<String>`
//! (which would cost an allocation and 24 bytes of header per cell).

/// The cells of one row, in the table's column order. Cells past the end
/// read as empty: a short row is a row whose trailing cells are empty.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Row {
    text: Box<str>,
    ends: Box<[u32]>,
}

impl Row {
    /// Packs cells into a row. Cells are stored verbatim.
    pub fn from_cells<I, S>(cells: I) -> Row
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut text = String::new();
        let mut ends = Vec::new();
        for cell in cells {
            text.push_str(cell.as_ref());
            ends.push(u32::try_from(text.len()).unwrap_or(u32::MAX));
        }
        Row {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }

    /// Number of cells stored (trailing empty cells may be omitted).
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The cell at `index`, or `""` past the end.
    pub fn get(&self, index: usize) -> &str {
        let Some(&end) = self.ends.get(index) else {
            return "";
        };
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        &self.text[start as usize..end as usize]
    }

    /// The first `width` cells, padding with empty cells.
    pub fn cells(&self, width: usize) -> impl Iterator<Item = &str> + '_ {
        (0..width).map(move |i| self.get(i))
    }

    /// A copy with the cell at `index` set, padding with empty cells.
    pub fn with_cell(&self, index: usize, value: &str) -> Row {
        let width = self.len().max(index + 1);
        Row::from_cells((0..width).map(|i| if i == index { value } else { self.get(i) }))
    }

    /// Bytes of cell text (for size accounting).
    pub fn text_len(&self) -> usize {
        self.text.len()
    }
}

impl AsRef<Row> for Row {
    fn as_ref(&self) -> &Row {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_round_trip_and_pad() {
        let row = Row::from_cells(["1", "", "kim, \"k\"\nnext", "é"]);
        assert_eq!(row.len(), 4);
        assert_eq!(row.get(0), "1");
        assert_eq!(row.get(1), "");
        assert_eq!(row.get(2), "kim, \"k\"\nnext");
        assert_eq!(row.get(3), "é");
        assert_eq!(row.get(9), "");
        assert_eq!(
            row.cells(5).collect::<Vec<_>>(),
            ["1", "", "kim, \"k\"\nnext", "é", ""]
        );
    }

    #[test]
    fn with_cell_grows() {
        let row = Row::from_cells(["a"]).with_cell(2, "c");
        assert_eq!(row.cells(3).collect::<Vec<_>>(), ["a", "", "c"]);
    }
}
