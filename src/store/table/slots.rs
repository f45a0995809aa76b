//! A table's rows in file order ([`Slots`]), held in shared chunks so that
//! a copy of them all (for a checkpoint) costs one count per chunk, not one
//! per row, and never holds the table's lock for long.
//!
//! A write changes its slot's chunk in place when nothing else holds it,
//! and copies that one chunk first when a copy of the table does. No I/O.

use std::sync::Arc;

use crate::store::row::Row;

/// Slots a chunk holds (the last chunk may hold fewer).
const CHUNK: usize = 1024;

/// Rows in file order; `None` marks a deleted row until the next compaction.
#[derive(Clone, Debug, Default)]
pub(super) struct Slots {
    chunks: Vec<Arc<Vec<Option<Row>>>>,
    len: usize,
}

impl Slots {
    pub(super) fn from_rows(rows: impl IntoIterator<Item = Option<Row>>) -> Slots {
        let mut slots = Slots::default();
        for row in rows {
            slots.push(row);
        }
        slots
    }

    /// The rows of a table being loaded, all present. Their vector is
    /// taken apart from its end and shrunk as it goes, so the chunks reuse
    /// its memory: a million rows never take their slots' room twice.
    pub(super) fn from_loaded(mut rows: Vec<Row>) -> Slots {
        let len = rows.len();
        let mut chunks = Vec::with_capacity(len.div_ceil(CHUNK));
        while !rows.is_empty() {
            let start = (rows.len() - 1) / CHUNK * CHUNK;
            let mut chunk = Vec::with_capacity(CHUNK);
            chunk.extend(rows.drain(start..).map(Some));
            chunks.push(Arc::new(chunk));
            // Every 64 chunks (half a megabyte of slots), give the room back.
            if chunks.len() % 64 == 0 {
                rows.shrink_to_fit();
            }
        }
        chunks.reverse();
        Slots { chunks, len }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The row in `slot`, if the slot exists and holds one.
    pub(super) fn row(&self, slot: usize) -> Option<&Row> {
        self.chunks.get(slot / CHUNK)?.get(slot % CHUNK)?.as_ref()
    }

    /// Sets `slot` (which must exist).
    pub(super) fn set(&mut self, slot: usize, row: Option<Row>) {
        assert!(slot < self.len, "slot {slot} of {}", self.len);
        Arc::make_mut(&mut self.chunks[slot / CHUNK])[slot % CHUNK] = row;
    }

    pub(super) fn push(&mut self, row: Option<Row>) {
        if self.len.is_multiple_of(CHUNK) {
            self.chunks.push(Arc::new(Vec::with_capacity(CHUNK)));
        }
        let last = self.chunks.last_mut().expect("a chunk was just ensured");
        Arc::make_mut(last).push(row);
        self.len += 1;
    }

    /// Every slot, in order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Option<Row>> + '_ {
        self.chunks.iter().flat_map(|chunk| chunk.iter())
    }

    /// Every row, in order.
    pub(super) fn rows(&self) -> impl Iterator<Item = &Row> + '_ {
        self.iter().flatten()
    }

    /// Changes every row in place.
    pub(super) fn update_rows(&mut self, mut change: impl FnMut(&mut Row)) {
        for chunk in &mut self.chunks {
            Arc::make_mut(chunk)
                .iter_mut()
                .flatten()
                .for_each(&mut change);
        }
    }

    /// Drops the holes, keeping the order.
    pub(super) fn compact(&mut self) {
        if self.iter().all(Option::is_some) {
            return;
        }
        let kept: Vec<Option<Row>> = self.iter().filter(|s| s.is_some()).cloned().collect();
        *self = Slots::from_rows(kept);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: usize) -> Row {
        Row::from_cells([n.to_string()])
    }

    #[test]
    fn a_copy_is_unchanged_by_later_writes() {
        let mut slots = Slots::from_rows((0..3 * CHUNK + 5).map(|n| Some(row(n))));
        assert_eq!(slots.len(), 3 * CHUNK + 5);
        let copy = slots.clone();
        slots.set(CHUNK + 1, None);
        slots.set(7, Some(row(99_999)));
        slots.push(Some(row(100_000)));
        assert_eq!(copy.row(7).map(|r| r.get(0)), Some("7"));
        assert_eq!(copy.row(CHUNK + 1).map(|r| r.get(0)), Some("1025"));
        assert_eq!(copy.rows().count(), 3 * CHUNK + 5);
        assert_eq!(slots.row(7).map(|r| r.get(0)), Some("99999"));
        assert!(slots.row(CHUNK + 1).is_none());
        assert_eq!(slots.rows().count(), 3 * CHUNK + 5);
        // Only the chunks written to were copied.
        assert!(Arc::ptr_eq(&copy.chunks[2], &slots.chunks[2]));
        assert!(!Arc::ptr_eq(&copy.chunks[0], &slots.chunks[0]));
        slots.compact();
        assert_eq!(slots.len(), 3 * CHUNK + 5);
        let cells: Vec<&str> = slots.rows().map(|r| r.get(0)).take(3).collect();
        assert_eq!(cells, ["0", "1", "2"]);
        assert_eq!(slots.row(CHUNK + 1).map(|r| r.get(0)), Some("1026"));
        assert!(slots.row(slots.len()).is_none());
    }

    #[test]
    fn loaded_rows_keep_their_order_in_whole_chunks() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 70 * CHUNK + 3] {
            let slots = Slots::from_loaded((0..len).map(row).collect());
            assert_eq!(slots.len(), len);
            assert!(slots.chunks.iter().rev().skip(1).all(|c| c.len() == CHUNK));
            let cells: Vec<usize> = slots.rows().map(|r| r.get(0).parse().unwrap()).collect();
            assert_eq!(cells, (0..len).collect::<Vec<_>>());
        }
    }
}
