//! One record's cells, packed into a single allocation.
//!
//! A table of a million rows holds a million of these, so a row is one text
//! buffer plus the end offset of each cell rather than a `Vec<String>`
//! (which would cost an allocation and 24 bytes of header per cell).

/// The cells of one row, in the table's column order. Cells past the end
/// read as empty: a short row is a row whose trailing cells are empty.
///
/// Layout of `data`: the cell count (u32 LE), the end offset of each cell
/// in the text (u32 LE each), then the cells' text back to back: one
/// allocation per row.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Row {
    data: Box<[u8]>,
}

const WORD: usize = 4;

impl Row {
    /// Packs cells into a row. Cells are stored verbatim.
    pub fn from_cells<I, S>(cells: I) -> Row
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut text = Vec::new();
        let mut ends = Vec::new();
        for cell in cells {
            text.extend_from_slice(cell.as_ref().as_bytes());
            ends.push(u32::try_from(text.len()).unwrap_or(u32::MAX));
        }
        let count = ends.len();
        Row::pack(&[&text], ends.into_iter(), count)
    }

    /// Packs cells read twice from an iterator (once to measure them, once
    /// to copy them): one allocation, no copy in between.
    pub fn from_cells_twice<'a, I>(cells: I) -> Row
    where
        I: Iterator<Item = &'a str> + Clone,
    {
        let (count, len) = cells.clone().fold((0, 0), |(n, l), c| (n + 1, l + c.len()));
        let mut data = Vec::with_capacity(WORD * (1 + count) + len);
        data.extend_from_slice(&(count as u32).to_le_bytes());
        let mut end = 0usize;
        for cell in cells.clone() {
            end += cell.len();
            data.extend_from_slice(&u32::try_from(end).unwrap_or(u32::MAX).to_le_bytes());
        }
        for cell in cells {
            data.extend_from_slice(cell.as_bytes());
        }
        Row {
            data: data.into_boxed_slice(),
        }
    }

    /// Packs a parsed CSV record without copying its cells one by one.
    pub fn from_record(record: &csv::StringRecord) -> Row {
        let ends = record.iter().scan(0usize, |end, cell| {
            *end += cell.len();
            Some(u32::try_from(*end).unwrap_or(u32::MAX))
        });
        Row::pack(&[record.as_slice().as_bytes()], ends, record.len())
    }

    /// Packs cells given as one text and the end offset of each cell in it
    /// (as a CSV parser leaves them).
    pub fn from_ends(text: &str, ends: &[usize]) -> Row {
        Row::from_ends_after(None, text, ends)
    }

    /// The same, after a first cell `lead` when there is one.
    pub fn from_ends_after(lead: Option<&str>, text: &str, ends: &[usize]) -> Row {
        let word = |end: usize| u32::try_from(end).unwrap_or(u32::MAX);
        let shift = lead.map_or(0, str::len);
        let count = ends.len() + usize::from(lead.is_some());
        let ends = lead
            .map(|_| word(shift))
            .into_iter()
            .chain(ends.iter().map(|&end| word(end + shift)));
        Row::pack(
            &[lead.unwrap_or_default().as_bytes(), text.as_bytes()],
            ends,
            count,
        )
    }

    fn pack(texts: &[&[u8]], ends: impl Iterator<Item = u32>, count: usize) -> Row {
        let len = texts.iter().map(|t| t.len()).sum::<usize>();
        let mut data = Vec::with_capacity(WORD * (1 + count) + len);
        data.extend_from_slice(&(count as u32).to_le_bytes());
        for end in ends {
            data.extend_from_slice(&end.to_le_bytes());
        }
        for text in texts {
            data.extend_from_slice(text);
        }
        Row {
            data: data.into_boxed_slice(),
        }
    }

    fn word(&self, index: usize) -> usize {
        let at = index * WORD;
        self.data
            .get(at..at + WORD)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    /// Number of cells stored (trailing empty cells may be omitted).
    /// Bytes the row holds.
    pub fn size(&self) -> usize {
        self.data.len()
    }

    pub fn len(&self) -> usize {
        self.word(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cell at `index`, or `""` past the end.
    pub fn get(&self, index: usize) -> &str {
        let count = self.len();
        if index >= count {
            return "";
        }
        let text = WORD * (1 + count);
        let start = if index == 0 { 0 } else { self.word(index) };
        let end = self.word(index + 1);
        // Every cell was a `str` when packed, so this never fails.
        std::str::from_utf8(&self.data[text + start..text + end]).unwrap_or_default()
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
    fn from_record_matches_from_cells() {
        let record = csv::StringRecord::from(vec!["1", "", "kim, lee", "é"]);
        assert_eq!(
            Row::from_record(&record),
            Row::from_cells(["1", "", "kim, lee", "é"])
        );
    }

    #[test]
    fn from_ends_matches_from_cells() {
        assert_eq!(
            Row::from_ends("1kim, leeé", &[1, 1, 9, 11]),
            Row::from_cells(["1", "", "kim, lee", "é"])
        );
        assert_eq!(
            Row::from_ends_after(Some("17"), "kimé", &[3, 3, 5]),
            Row::from_cells(["17", "kim", "", "é"])
        );
    }

    #[test]
    fn with_cell_grows() {
        let row = Row::from_cells(["a"]).with_cell(2, "c");
        assert_eq!(row.cells(3).collect::<Vec<_>>(), ["a", "", "c"]);
    }
}
