//! One record's cells, packed: a [`Row`] is a shared handle (one pointer)
//! to the row's bytes, which lie in a reference-counted block of their own
//! (a row written later) or in a block shared with the rows packed beside
//! it (the rows of a table file, packed by a [`Packer`] as it is loaded).
//!
//! A table of a million rows holds a million of these, so a row costs one
//! pointer, a few bytes of header and its text: no allocation per cell, no
//! allocation per row at load, and no separate `Arc` around the row.
//!
//! # Layout
//!
//! A block is a header — the number of handles to any row in it (atomic,
//! as an `Arc`'s) and the size of what follows — then one or more rows'
//! records back to back. A record is:
//!
//! - `back`, u32 LE: where the record starts after the block's header (0
//!   for a row alone in its block), so a handle finds the block's count;
//! - `tag`, one byte: the width of the cell offsets in its low 2 bits (1, 2,
//!   4 or 8 bytes: the narrowest that holds the text's length), the cell
//!   count in its upper 6 bits, or 63 when a u32 LE count follows;
//! - the end offset of each cell in the text, in that width, LE;
//! - the cells' text, back to back.
//!
//! # Cells are valid UTF-8, checked once
//!
//! Every constructor takes its cells as `&str` (or a text and cell ends on
//! its character boundaries, checked), so a row's text is valid UTF-8 cut
//! at character boundaries from the moment it exists; reading a cell does
//! not validate it again. Nothing writes a row's bytes after construction.

// The one module allowed `unsafe` (see the crate root): a handle is a
// pointer into a reference-counted block, as an `Arc`'s is.
#![allow(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

use std::alloc::{self, Layout};
use std::cell::RefCell;
use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{self, AtomicUsize, Ordering};

/// The header of a block of rows.
#[repr(C)]
struct Block {
    /// Handles to rows in this block (every clone of every row).
    refs: AtomicUsize,
    /// Bytes of records after this header.
    size: usize,
}

const HEAD: usize = std::mem::size_of::<Block>();
/// `back` and `tag`.
const FIXED: usize = 5;
/// A tag's count field meaning "a u32 count follows".
const LONG: usize = 63;
/// Bytes of records a [`Packer`] puts in one block: with its header, at
/// most 64 KiB, a size allocators hold without rounding it up (one of
/// 64 KiB and 16 bytes would take 80 KiB in a size-class allocator).
const CHUNK: usize = 64 * 1024 - HEAD;

/// The cells of one row, in the table's column order. Cells past the end
/// read as empty: a short row is a row whose trailing cells are empty.
///
/// Cloning a row is cheap (a count goes up, as with an `Arc`), and a clone
/// is the same row: rows are never changed, only replaced.
pub struct Row {
    /// The row's record, inside a block made by `Row::alloc` or a
    /// [`Packer`], which this handle holds one count of.
    ptr: NonNull<u8>,
}

// SAFETY: a row's bytes are never written after construction, and the
// block's count is atomic, so handles may move and be shared between
// threads as `Arc<[u8]>` may.
unsafe impl Send for Row {}
// SAFETY: as above: `&Row` only reads immutable bytes.
unsafe impl Sync for Row {}

/// The offset width for a text of `len` bytes, as a tag's code.
fn width_code(len: usize) -> u8 {
    match len {
        0..=0xFF => 0,
        0x100..=0xFFFF => 1,
        _ if u32::try_from(len).is_ok() => 2,
        _ => 3,
    }
}

/// Bytes of the record of `count` cells holding `len` bytes of text.
fn record_len(count: usize, len: usize) -> usize {
    let long = if count >= LONG { 4 } else { 0 };
    FIXED + long + count * (1 << width_code(len)) + len
}

/// The LE number of `width` (1, 2, 4 or 8) bytes at the start of `bytes`.
#[inline]
fn read(bytes: &[u8], width: usize) -> usize {
    match width {
        1 => usize::from(bytes[0]),
        2 => usize::from(u16::from_le_bytes([bytes[0], bytes[1]])),
        4 => u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize,
        _ => u64::from_le_bytes([
            bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
        ]) as usize,
    }
}

/// [`read`] of the `i`th offset of a width code at `ends`.
///
/// # Safety
/// `ends` must point at a record's offsets, of that width, with more than `i`.
#[inline]
unsafe fn offset_at(ends: *const u8, code: u8, i: usize) -> usize {
    // SAFETY: the caller's promise; reads are unaligned.
    unsafe {
        match code {
            0 => usize::from(*ends.add(i)),
            1 => usize::from(u16::from_le(ends.add(2 * i).cast::<u16>().read_unaligned())),
            2 => u32::from_le(ends.add(4 * i).cast::<u32>().read_unaligned()) as usize,
            _ => u64::from_le(ends.add(8 * i).cast::<u64>().read_unaligned()) as usize,
        }
    }
}

/// Writes a record into `out` (exactly [`record_len`] bytes): `ends` are
/// the cells' end offsets in the concatenation of `texts`, `len` bytes.
fn encode<'a>(
    out: &mut [u8],
    back: u32,
    count: usize,
    len: usize,
    ends: impl Iterator<Item = usize>,
    texts: impl Iterator<Item = &'a [u8]>,
) {
    let width = 1usize << width_code(len);
    let mut at = encode_head(out, back, count, len);
    let mut last = 0;
    for end in ends.take(count) {
        // What `Row::get` relies on: cells never end before they start.
        assert!(end >= last, "a row's cell ends go backwards");
        out[at..at + width].copy_from_slice(&(end as u64).to_le_bytes()[..width]);
        at += width;
        last = end;
    }
    for text in texts {
        out[at..at + text.len()].copy_from_slice(text);
        at += text.len();
    }
    // What `Row::record` reads the record's length from must be its length.
    assert!(
        at == out.len() && last == len,
        "a row's cell ends do not match its text"
    );
}

/// Writes a record's `back`, tag and count; where its offsets start.
fn encode_head(out: &mut [u8], back: u32, count: usize, len: usize) -> usize {
    let code = width_code(len);
    out[..4].copy_from_slice(&back.to_le_bytes());
    if count >= LONG {
        out[4] = ((LONG as u8) << 2) | code;
        let long = u32::try_from(count).expect("a row of over 4 billion cells");
        out[FIXED..FIXED + 4].copy_from_slice(&long.to_le_bytes());
        FIXED + 4
    } else {
        out[4] = ((count as u8) << 2) | code;
        FIXED
    }
}

fn block_layout(size: usize) -> Layout {
    // A size that overflows would have failed to allocate its text first.
    Layout::from_size_align(HEAD + size, std::mem::align_of::<Block>())
        .unwrap_or_else(|_| alloc::handle_alloc_error(Layout::new::<Block>()))
}

/// A block for `size` bytes of records, zeroed, with `refs` counts.
fn new_block(size: usize, refs: usize) -> NonNull<Block> {
    let layout = block_layout(size);
    // SAFETY: the layout's size is at least HEAD, never zero.
    let raw = unsafe { alloc::alloc_zeroed(layout) };
    let Some(block) = NonNull::new(raw.cast::<Block>()) else {
        alloc::handle_alloc_error(layout)
    };
    // SAFETY: the block is freshly allocated, aligned and large enough
    // for its header.
    unsafe {
        block.as_ptr().write(Block {
            refs: AtomicUsize::new(refs),
            size,
        })
    };
    block
}

/// The bytes of records of a block new_block made (zeroed, so initialised).
///
/// # Safety
/// No handle to a row of the block may exist yet.
unsafe fn block_bytes<'a>(block: NonNull<Block>) -> &'a mut [u8] {
    // SAFETY: the caller's promise: nothing else reads these bytes yet;
    // new_block allocated and zeroed `size` bytes after the header.
    unsafe {
        let size = (*block.as_ptr()).size;
        std::slice::from_raw_parts_mut(block.as_ptr().cast::<u8>().add(HEAD), size)
    }
}

/// Frees a block.
///
/// # Safety
/// It must come from new_block, and no handle to a row in it may be left.
unsafe fn free_block(block: *const Block) {
    // SAFETY: the caller's promise; new_block allocated it with this layout.
    unsafe {
        let layout = block_layout((*block).size);
        alloc::dealloc(block.cast_mut().cast::<u8>(), layout);
    }
}

/// Cells gathered by [`Row::from_cells`] before packing, kept per thread
/// so that building a row allocates nothing but the row.
#[derive(Default)]
struct Scratch {
    text: Vec<u8>,
    ends: Vec<usize>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = const {
        RefCell::new(Scratch { text: Vec::new(), ends: Vec::new() })
    };
}

impl Row {
    /// A row alone in a new block, holding `count` cells whose end offsets
    /// in the concatenation of `texts` (`len` bytes) are `ends`. The texts
    /// must be valid UTF-8 and the ends on character boundaries of their
    /// concatenation (every caller passes `str`s, and cell ends it measured
    /// on them or checked).
    fn alloc<'a>(
        count: usize,
        len: usize,
        ends: impl Iterator<Item = usize>,
        texts: impl Iterator<Item = &'a [u8]>,
    ) -> Row {
        let block = new_block(record_len(count, len), 1);
        // SAFETY: the block was just made; no handle exists.
        let bytes = unsafe { block_bytes(block) };
        encode(bytes, 0, count, len, ends, texts);
        // SAFETY: the record starts right after the header.
        let ptr = unsafe { NonNull::new_unchecked(block.as_ptr().cast::<u8>().add(HEAD)) };
        let row = Row { ptr };
        row.debug_check();
        row
    }

    /// Packs cells into a row. Cells are stored verbatim.
    pub fn from_cells<I, S>(cells: I) -> Row
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let build = |scratch: &mut Scratch| {
            scratch.text.clear();
            scratch.ends.clear();
            for cell in cells {
                scratch.text.extend_from_slice(cell.as_ref().as_bytes());
                scratch.ends.push(scratch.text.len());
            }
            let row = Row::alloc(
                scratch.ends.len(),
                scratch.text.len(),
                scratch.ends.iter().copied(),
                std::iter::once(&scratch.text[..]),
            );
            // A huge row's buffers are not kept for the thread's life.
            if scratch.text.capacity() > CHUNK {
                *scratch = Scratch::default();
            }
            row
        };
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => build(&mut scratch),
            // Only when a cell's `as_ref` builds a row itself.
            Err(_) => build(&mut Scratch::default()),
        })
    }

    /// Packs cells read twice from an iterator (once to measure them, once
    /// to copy them): one allocation, no copy in between.
    pub fn from_cells_twice<'a, I>(cells: I) -> Row
    where
        I: Iterator<Item = &'a str> + Clone,
    {
        let (count, len) = cells.clone().fold((0, 0), |(n, l), c| (n + 1, l + c.len()));
        let block = new_block(record_len(count, len), 1);
        // SAFETY: the block was just made; no handle exists.
        let out = unsafe { block_bytes(block) };
        let at = encode_head(out, 0, count, len);
        let width = 1usize << width_code(len);
        let text = at + count * width;
        // Each cell's end is written with its text, in one pass: every end
        // lies between two `str`s even if the second pass reads other
        // cells than the first measured.
        let (mut n, mut end) = (0, 0);
        for cell in cells.clone() {
            let bytes = cell.as_bytes();
            if n == count || end + bytes.len() > len {
                n = count + 1;
                break;
            }
            out[text + end..text + end + bytes.len()].copy_from_slice(bytes);
            end += bytes.len();
            out[at + n * width..at + (n + 1) * width]
                .copy_from_slice(&(end as u64).to_le_bytes()[..width]);
            n += 1;
        }
        if n != count || end != len {
            // The passes differed: one pass, as `from_cells` makes rows.
            // SAFETY: no handle to the block was made.
            unsafe { free_block(block.as_ptr()) };
            return Row::from_cells(cells);
        }
        // SAFETY: the record starts right after the header.
        let ptr = unsafe { NonNull::new_unchecked(block.as_ptr().cast::<u8>().add(HEAD)) };
        let row = Row { ptr };
        row.debug_check();
        row
    }

    /// Packs a parsed CSV record without copying its cells one by one.
    pub fn from_record(record: &csv::StringRecord) -> Row {
        let text = record.as_slice().as_bytes();
        Row::alloc(
            record.len(),
            text.len(),
            record_ends(record),
            std::iter::once(text),
        )
    }

    /// Packs cells given as one text and the end offset of each cell in it
    /// (as a CSV parser leaves them).
    ///
    /// # Panics
    /// When an end is past the text, before the one before it, or not on a
    /// character boundary (as slicing a `str` there would).
    pub fn from_ends(text: &str, ends: &[usize]) -> Row {
        Row::from_ends_after(None, text, ends)
    }

    /// The same, after a first cell `lead` when there is one.
    pub fn from_ends_after(lead: Option<&str>, text: &str, ends: &[usize]) -> Row {
        let mut start = 0;
        for &end in ends {
            assert!(
                start <= end && text.is_char_boundary(end),
                "cell end {end} is not a character boundary after {start} in a text of {} bytes",
                text.len()
            );
            start = end;
        }
        let shift = lead.map_or(0, str::len);
        let count = ends.len() + usize::from(lead.is_some());
        let ends = lead
            .map(|_| shift)
            .into_iter()
            .chain(ends.iter().map(|&end| end + shift));
        // Text past the last cell end is no cell's: it is not stored.
        let text = &text[..start];
        let lead = lead.unwrap_or_default().as_bytes();
        Row::alloc(
            count,
            lead.len() + text.len(),
            ends,
            [lead, text.as_bytes()].into_iter(),
        )
    }

    /// The cell count, the offsets' width code and where they start.
    #[inline]
    fn head(&self) -> (usize, u8, *const u8) {
        let p = self.ptr.as_ptr();
        // SAFETY: `ptr` points at a whole record made by `encode`, in a live
        // block this handle counts: its tag, then a u32 count when the
        // tag's count is LONG.
        unsafe {
            let tag = *p.add(4);
            match usize::from(tag >> 2) {
                LONG => {
                    let count = u32::from_le(p.add(FIXED).cast::<u32>().read_unaligned());
                    (count as usize, tag & 3, p.add(FIXED + 4))
                }
                n => (n, tag & 3, p.add(FIXED)),
            }
        }
    }

    /// The row's record (see the module's layout).
    fn record(&self) -> &[u8] {
        let (count, code, ends) = self.head();
        let len = match count {
            0 => 0,
            // SAFETY: the record has `count` offsets.
            n => unsafe { offset_at(ends, code, n - 1) },
        };
        let p = self.ptr.as_ptr();
        // SAFETY: the record runs from `ptr` to the end of its text, whose
        // length is its last cell end (`encode` checked it is).
        unsafe {
            let head = ends.offset_from(p) as usize;
            std::slice::from_raw_parts(p, head + (count << code) + len)
        }
    }

    /// The block this row lies in.
    fn block_ptr(&self) -> *const Block {
        // SAFETY: `back` is the record's offset after its block's header,
        // and the block lives while this handle does.
        unsafe {
            let p = self.ptr.as_ptr();
            let back = u32::from_le(p.cast::<u32>().read_unaligned()) as usize;
            p.sub(back + HEAD).cast::<Block>()
        }
    }

    fn block(&self) -> &Block {
        // SAFETY: the block lives while this handle does.
        unsafe { &*self.block_ptr() }
    }

    /// The cell count, the offset width and where the offsets start.
    fn shape(record: &[u8]) -> (usize, usize, usize) {
        let tag = usize::from(record[4]);
        let width = 1usize << (tag & 3);
        match tag >> 2 {
            LONG => (read(&record[FIXED..], 4), width, FIXED + 4),
            n => (n, width, FIXED),
        }
    }

    fn debug_check(&self) {
        if cfg!(debug_assertions) {
            let record = self.record();
            let (count, width, at) = Row::shape(record);
            let text = &record[at + count * width..];
            let mut start = 0;
            for i in 0..count {
                let end = read(&record[at + i * width..], width);
                assert!(start <= end && end <= text.len());
                assert!(std::str::from_utf8(&text[start..end]).is_ok());
                start = end;
            }
        }
    }

    /// Bytes the row holds (its record).
    pub fn size(&self) -> usize {
        self.record().len()
    }

    /// Number of cells stored (trailing empty cells may be omitted).
    pub fn len(&self) -> usize {
        Row::shape(self.record()).0
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cell at `index`, or `""` past the end.
    #[inline]
    pub fn get(&self, index: usize) -> &str {
        let (count, code, ends) = self.head();
        if index >= count {
            return "";
        }
        // SAFETY: `index` is below the count; the text follows the
        // offsets, and every cell lies inside it (ends grow, and the last
        // is the text's length: `encode` checked both).
        let bytes = unsafe {
            let start = match index {
                0 => 0,
                i => offset_at(ends, code, i - 1),
            };
            let end = offset_at(ends, code, index);
            let text = ends.add(count << code);
            std::slice::from_raw_parts(text.add(start), end - start)
        };
        debug_assert!(std::str::from_utf8(bytes).is_ok());
        // SAFETY: a row's text is the concatenation of `str`s, and every
        // cell end lies on a boundary between them or on a character
        // boundary checked by `from_ends_after` (see the module's docs);
        // the bytes are never changed after.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }

    /// The first `width` cells, padding with empty cells.
    pub fn cells(&self, width: usize) -> impl Iterator<Item = &str> + '_ {
        let record = self.record();
        let (count, width_of, at) = Row::shape(record);
        let text = &record[at + count * width_of..];
        let mut start = 0;
        (0..width).map(move |i| {
            if i >= count {
                return "";
            }
            let end = read(&record[at + i * width_of..], width_of);
            let bytes = &text[start..end];
            start = end;
            debug_assert!(std::str::from_utf8(bytes).is_ok());
            // SAFETY: as in `get`: cells are cut from `str`s at character
            // boundaries.
            unsafe { std::str::from_utf8_unchecked(bytes) }
        })
    }

    /// A copy with the cell at `index` set, padding with empty cells.
    pub fn with_cell(&self, index: usize, value: &str) -> Row {
        let width = self.len().max(index + 1);
        Row::from_cells((0..width).map(|i| if i == index { value } else { self.get(i) }))
    }

    /// Whether two handles are the same row (not just equal cells).
    pub fn ptr_eq(a: &Row, b: &Row) -> bool {
        a.ptr == b.ptr
    }

    /// Handles to these rows (as cloning each would), counting each run of
    /// rows of one block at once: a reader taking a million rows loaded
    /// together touches a few hundred counts, not a million. `live` is the
    /// number of rows (the capacity of the answer).
    pub fn share_all<'a>(rows: impl Iterator<Item = &'a Row>, live: usize) -> Vec<Row> {
        let mut out: Vec<Row> = Vec::with_capacity(live);
        let mut run: Option<(&Block, usize)> = None;
        for row in rows {
            let block = row.block();
            match &mut run {
                Some((b, n)) if std::ptr::eq(*b, block) => *n += 1,
                _ => {
                    if let Some((b, n)) = run.take() {
                        b.add_refs(n);
                    }
                    run = Some((block, 1));
                }
            }
            // The run's count is raised before any handle made here can be
            // dropped: nothing between can unwind (a failed allocation
            // aborts).
            out.push(Row { ptr: row.ptr });
        }
        if let Some((b, n)) = run {
            b.add_refs(n);
        }
        out
    }
}

impl Block {
    fn add_refs(&self, n: usize) {
        let old = self.refs.fetch_add(n, Ordering::Relaxed);
        // As `Arc` does: a count this high means handles are leaked in a
        // loop; going on would risk a use after free.
        if old > isize::MAX as usize {
            std::process::abort();
        }
    }
}

/// The end offset of each cell of a record in its text.
fn record_ends(record: &csv::StringRecord) -> impl Iterator<Item = usize> + '_ {
    record.iter().scan(0usize, |end, cell| {
        *end += cell.len();
        Some(*end)
    })
}

impl Clone for Row {
    fn clone(&self) -> Row {
        self.block().add_refs(1);
        Row { ptr: self.ptr }
    }
}

impl Drop for Row {
    fn drop(&mut self) {
        let block = self.block_ptr();
        // SAFETY: the block lives until its last handle's count is gone.
        if unsafe { (*block).refs.fetch_sub(1, Ordering::Release) } != 1 {
            return;
        }
        // As `Arc` does: every other handle's use of the block happens
        // before it is freed.
        atomic::fence(Ordering::Acquire);
        // SAFETY: this was the last handle to any row of the block.
        unsafe { free_block(block) };
    }
}

impl Default for Row {
    /// A row of no cells.
    fn default() -> Row {
        Row::alloc(0, 0, std::iter::empty(), std::iter::empty())
    }
}

impl PartialEq for Row {
    /// The same cells stored (trailing empty cells count).
    fn eq(&self, other: &Row) -> bool {
        self.record()[4..] == other.record()[4..]
    }
}

impl Eq for Row {}

impl fmt::Debug for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.cells(self.len())).finish()
    }
}

impl AsRef<Row> for Row {
    fn as_ref(&self) -> &Row {
        self
    }
}

/// Packs the rows of a table being loaded into shared blocks of about
/// 64 KiB: no allocation per row, and no allocator overhead per row. A
/// block is freed when the last of its rows is (rows replaced later keep
/// their block alive until then).
#[derive(Default)]
pub struct Packer {
    /// Records not yet in a block.
    pending: Vec<u8>,
    /// Where each pending record starts in `pending`.
    starts: Vec<u32>,
    rows: Vec<Row>,
}

impl Packer {
    /// Adds a parsed CSV record as the next row.
    pub fn push_record(&mut self, record: &csv::StringRecord) {
        let text = record.as_slice().as_bytes();
        let len = record_len(record.len(), text.len());
        if !self.pending.is_empty() && self.pending.len() + len > CHUNK {
            self.flush();
        }
        let start = self.pending.len();
        self.pending.resize(start + len, 0);
        // `pending` holds under CHUNK bytes before this record.
        let back = u32::try_from(start).unwrap_or(u32::MAX);
        encode(
            &mut self.pending[start..],
            back,
            record.len(),
            text.len(),
            record_ends(record),
            std::iter::once(text),
        );
        self.starts.push(back);
    }

    /// Moves the pending records into a block of their own.
    fn flush(&mut self) {
        if self.starts.is_empty() {
            return;
        }
        let block = new_block(self.pending.len(), self.starts.len());
        // SAFETY: the block was just made; no handle exists.
        unsafe { block_bytes(block) }.copy_from_slice(&self.pending);
        // SAFETY: the block's records follow its header.
        let base = unsafe { block.as_ptr().cast::<u8>().add(HEAD) };
        self.rows.reserve(self.starts.len());
        for &start in &self.starts {
            // SAFETY: each start is a record's offset inside the block,
            // and the block's count was set to one per record.
            let ptr = unsafe { NonNull::new_unchecked(base.add(start as usize)) };
            let row = Row { ptr };
            row.debug_check();
            self.rows.push(row);
        }
        self.pending.clear();
        self.starts.clear();
    }

    /// The rows added, in order.
    pub fn finish(mut self) -> Vec<Row> {
        self.flush();
        std::mem::take(&mut self.rows)
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
        // Text past the last end is no cell's.
        assert_eq!(Row::from_ends("abcdef", &[2]), Row::from_cells(["ab"]));
    }

    #[test]
    #[should_panic(expected = "character boundary")]
    fn from_ends_refuses_an_end_inside_a_character() {
        let _ = Row::from_ends("é", &[1]);
    }

    #[test]
    fn from_cells_twice_matches_from_cells() {
        for cells in [
            vec![],
            vec!["", ""],
            vec!["1", "é", "kim"],
            vec!["x"; 70],
            vec![&*"é".repeat(200), "a"],
        ] {
            let twice = Row::from_cells_twice(cells.iter().copied());
            assert_eq!(twice, Row::from_cells(&cells));
            assert_eq!(twice.cells(cells.len()).collect::<Vec<_>>(), cells);
        }
    }

    #[test]
    fn from_cells_twice_survives_passes_that_differ() {
        // An iterator whose clones read other cells than the first pass.
        #[derive(Clone)]
        struct Shifty<'a>(&'a std::cell::Cell<u32>, usize);
        impl<'a> Iterator for Shifty<'a> {
            type Item = &'a str;
            fn next(&mut self) -> Option<&'a str> {
                let pass = self.0.get();
                if self.1 == 2 {
                    self.0.set(pass + 1);
                    return None;
                }
                self.1 += 1;
                Some(match (pass, self.1) {
                    (0, 1) => "é",
                    (0, _) => "a",
                    (_, 1) => "a",
                    _ => "é",
                })
            }
        }
        let passes = std::cell::Cell::new(0);
        let row = Row::from_cells_twice(Shifty(&passes, 0));
        assert_eq!(row.cells(2).collect::<Vec<_>>(), ["a", "é"]);
        let passes = std::cell::Cell::new(0);
        let longer = Shifty(&passes, 0).chain(std::iter::once("x"));
        assert!(Row::from_cells_twice(longer).len() <= 3);
    }

    #[test]
    fn with_cell_grows() {
        let row = Row::from_cells(["a"]).with_cell(2, "c");
        assert_eq!(row.cells(3).collect::<Vec<_>>(), ["a", "", "c"]);
    }

    /// Cells of every offset width, many cells, empty ones, NUL.
    fn samples() -> Vec<Vec<String>> {
        let big = "x".repeat(70_000);
        let mid = "é".repeat(200);
        vec![
            vec![],
            vec![String::new()],
            vec![String::new(); 3],
            vec!["a\0b".into(), "\0".into(), String::new()],
            vec!["1".into(), mid.clone(), "z".into()],
            vec![big.clone(), "tail".into()],
            vec![String::new(), big, "é".into(), mid],
            (0..200).map(|i| i.to_string()).collect(),
            (0..63).map(|i| format!("c{i}")).collect(),
            (0..62).map(|i| format!("c{i}")).collect(),
        ]
    }

    #[test]
    fn every_width_round_trips() {
        for cells in samples() {
            let row = Row::from_cells(&cells);
            assert_eq!(row.len(), cells.len());
            assert_eq!(row.is_empty(), cells.is_empty());
            assert_eq!(row.cells(cells.len()).collect::<Vec<_>>(), cells);
            assert_eq!(row.get(cells.len()), "");
            let text: usize = cells.iter().map(String::len).sum();
            assert!(row.size() >= text && row.size() <= text + 9 + 4 * cells.len());
            let record = csv::StringRecord::from(cells.clone());
            assert_eq!(Row::from_record(&record), row);
        }
    }

    #[test]
    fn widths_are_the_narrowest() {
        // 5 bytes of header, one byte an offset for short rows.
        assert_eq!(Row::from_cells(["ab", "c"]).size(), 5 + 2 + 3);
        assert_eq!(Row::from_cells(["x".repeat(300)]).size(), 5 + 2 + 300);
        assert_eq!(Row::from_cells(["x".repeat(70_000)]).size(), 5 + 4 + 70_000);
        // 63 cells or more: the count follows the tag.
        assert_eq!(Row::from_cells(vec![""; 63]).size(), 5 + 4 + 63);
    }

    #[test]
    fn packed_rows_round_trip_and_outlive_the_packer() {
        let mut packer = Packer::default();
        let mut expected = Vec::new();
        // Enough rows for several blocks, a big one among them.
        for i in 0..5000 {
            let cells: Vec<String> = match i % 1000 {
                7 => vec![i.to_string(), "y".repeat(100_000)],
                _ => vec![
                    i.to_string(),
                    format!("name {i}"),
                    String::new(),
                    "é\0".into(),
                ],
            };
            packer.push_record(&csv::StringRecord::from(cells.clone()));
            expected.push(cells);
        }
        let rows = packer.finish();
        assert_eq!(rows.len(), expected.len());
        for (row, cells) in rows.iter().zip(&expected) {
            assert_eq!(row.cells(cells.len()).collect::<Vec<_>>(), *cells);
            assert_eq!(*row, Row::from_cells(cells));
        }
        // Handles outlive the others of their block, and shared ones count.
        let kept: Vec<Row> = rows.iter().step_by(97).cloned().collect();
        let slots: Vec<Option<Row>> = rows.iter().cloned().map(Some).collect();
        let shared = Row::share_all(slots.iter().flatten(), slots.len());
        drop(slots);
        assert!(shared.iter().zip(&rows).all(|(a, b)| Row::ptr_eq(a, b)));
        drop(rows);
        for (row, cells) in kept.iter().zip(expected.iter().step_by(97)) {
            assert_eq!(row.cells(cells.len()).collect::<Vec<_>>(), *cells);
        }
        drop(kept);
        for (row, cells) in shared.iter().zip(&expected) {
            assert_eq!(row.get(0), cells[0]);
        }
    }

    #[test]
    fn clones_are_the_same_row_across_threads() {
        let row = Row::from_cells(["1", "kim"]);
        let other = row.clone();
        assert!(Row::ptr_eq(&row, &other));
        assert!(!Row::ptr_eq(&row, &Row::from_cells(["1", "kim"])));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let row = row.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        assert_eq!(row.clone().get(1), "kim");
                    }
                })
            })
            .collect();
        drop(row);
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(other.get(1), "kim");
    }

    #[test]
    fn a_row_is_one_pointer() {
        assert_eq!(std::mem::size_of::<Row>(), std::mem::size_of::<usize>());
        assert_eq!(
            std::mem::size_of::<Option<Row>>(),
            std::mem::size_of::<usize>()
        );
        assert_eq!(format!("{:?}", Row::from_cells(["a", ""])), r#"["a", ""]"#);
        assert_eq!(Row::default().len(), 0);
    }
}
