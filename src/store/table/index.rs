//! A table's id index ([`Index`]): from id to the slot of the first row
//! holding it, without storing the ids a second time.
//!
//! It must never hold an entry for a slot whose row does not have that id,
//! never visit the rows to grow, and never let ids chosen by clients be
//! made to collide (its hasher is keyed per process). No I/O.

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

use super::slots::Slots;

/// Id → slot without storing the ids a second time: an entry is a slot
/// number and 32 bits of its id's hash, and the id itself is read from the
/// row in that slot. Keeping the hash in the entry lets the table grow
/// without visiting a single row (a million-row table would otherwise stall
/// a write for the pointer-chasing); 8 bytes an entry.
#[derive(Clone, Debug, Default)]
pub(super) struct Index {
    entries: HashTable<(u32, u32)>,
    /// Keyed per process (SipHash), so ids chosen by clients cannot be
    /// made to collide.
    hasher: RandomState,
    id_col: usize,
}

impl Index {
    pub(super) fn clear(&mut self, id_col: usize) {
        self.entries.clear();
        self.id_col = id_col;
    }

    fn hash(&self, id: &str) -> u32 {
        self.hasher.hash_one(id) as u32
    }

    /// The 64-bit hash the table files an entry under, derived from the
    /// stored 32 bits alone (spread so its top bits vary too).
    fn spread(hash: u32) -> u64 {
        u64::from(hash).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    fn id_at(slots: &Slots, id_col: usize, slot: u32) -> &str {
        slots.row(slot as usize).map_or("", |row| row.get(id_col))
    }

    pub(super) fn get(&self, id: &str, slots: &Slots) -> Option<usize> {
        let hash = self.hash(id);
        self.entries
            .find(Self::spread(hash), |&(slot, h)| {
                h == hash && Self::id_at(slots, self.id_col, slot) == id
            })
            .map(|&(slot, _)| slot as usize)
    }

    /// Makes room for `more` entries at once (growing step by step would
    /// hold the old entries and the new at every step).
    pub(super) fn reserve(&mut self, more: usize) {
        self.entries.reserve(more, |&(_, h)| Self::spread(h));
    }

    /// Adds `id` at `slot` (whose row must already hold that id).
    pub(super) fn insert(&mut self, id: &str, slot: usize) {
        let hash = self.hash(id);
        self.entries
            .insert_unique(Self::spread(hash), (slot as u32, hash), |&(_, h)| {
                Self::spread(h)
            });
    }

    pub(super) fn remove(&mut self, id: &str, slots: &Slots) -> Option<usize> {
        let id_col = self.id_col;
        let hash = self.hash(id);
        let entry = self
            .entries
            .find_entry(Self::spread(hash), |&(slot, h)| {
                h == hash && Self::id_at(slots, id_col, slot) == id
            })
            .ok()?;
        let ((slot, _), _) = entry.remove();
        Some(slot as usize)
    }
}
