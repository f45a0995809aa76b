//! The write-ahead log: row-level changes made durable before they are
//! acknowledged, with group commit.
//!
//! Writers append encoded records to a shared buffer (a memory copy, O(1) in
//! a table's size) and wait; a record of many rows is queued as it is and
//! encoded by the log thread as it writes it, so a bulk write is never
//! held a second time as log bytes. One log thread takes everything buffered,
//! writes it and fsyncs once, then wakes every writer that batch covered:
//! many concurrent writes share one fsync, and a lone writer waits for just
//! one write and one fsync (no timer gathers batches).
//!
//! On disk the log is a series of segment files `.csvd/wal-NNNNNNNNNN.log`,
//! each opening with a header (magic, format version, its own number). A
//! checkpoint rotates to a new segment, brings the CSV files up to date,
//! then deletes the older segments. See `docs/storage.md` for the format
//! and for what recovery may and may not drop.
//!
//! When a batch cannot be written or synced, none of its writes (nor any
//! queued behind it) is acknowledged, and the log refuses appends until
//! [`Wal::repair`] cuts the segment back to its last durable byte: a write
//! that was refused must never come back at the next start.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};

use super::disk::Disk;
use super::row::Row;
use crate::feed::{Batch, Feed};

/// Frames larger than this are taken as corruption, not as data: no single
/// change is near it (bodies are limited far below).
const MAX_FRAME: usize = 1 << 30;
/// Bytes of a frame header: payload length and CRC-32C, both u32 LE.
const HEADER: usize = 8;
/// The first bytes of every segment.
const MAGIC: &[u8; 8] = b"csvd-log";
/// The segment format this build writes and reads. Segments written before
/// headers existed (no magic) are read as version 0: records only.
const VERSION: u32 = 1;
/// magic, version u32, segment number u64, CRC-32C of those 20 bytes.
const SEGMENT_HEADER: usize = 24;
/// A new segment's length: its header and its [`Op::Seq`] record (frame
/// header, kind, empty table name, u64).
const SEGMENT_START: u64 = (SEGMENT_HEADER + HEADER + 1 + 4 + 8) as u64;

/// One logged change. Row changes are logged as their result (the whole
/// new row), so replaying a record is idempotent: it sets a state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// The table's header is now `columns`.
    Columns { table: String, columns: Vec<String> },
    /// Each row replaces the row with its id, or is appended.
    Put { table: String, rows: Vec<Row> },
    /// These rows are gone.
    Delete { table: String, ids: Vec<String> },
    /// The table is now exactly this (also: created).
    Replace {
        table: String,
        columns: Vec<String>,
        rows: Vec<Row>,
    },
    /// The table is gone.
    Drop { table: String },
    /// The table is now exactly its file, whose content hashes to `hash`
    /// (`None`: there is no file, and no table). Logged before the first
    /// change to a table in a segment, and when a hand edit was accepted.
    Base { table: String, hash: Option<u64> },
    /// A checkpoint is about to put a file with this content hash in place:
    /// a file with this hash is the engine's own, not a hand edit.
    Written { table: String, hash: u64 },
    /// The change feed's next sequence number is at least `next`: logged
    /// with every write that makes changes, and first in every segment, so
    /// numbers never repeat across restarts. Names no table.
    Seq { next: u64 },
}

impl Op {
    pub fn table(&self) -> &str {
        match self {
            Op::Columns { table, .. }
            | Op::Put { table, .. }
            | Op::Delete { table, .. }
            | Op::Replace { table, .. }
            | Op::Drop { table }
            | Op::Base { table, .. }
            | Op::Written { table, .. } => table,
            Op::Seq { .. } => "",
        }
    }
}

/// Appends one framed record to `out`.
pub fn encode(op: &Op, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    encode_head(op, out);
    for row in op_rows(op) {
        encode_row(row, out);
    }
    let payload_len = out.len() - start - HEADER;
    let crc = crc32c::crc32c(&out[start + HEADER..]);
    out[start..start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Records of more rows than this are encoded by the log thread as it
/// writes them, a piece at a time, from the rows themselves: a bulk write
/// is never held a second time as encoded bytes.
const STREAM_ROWS: usize = 1024;
/// Size of one piece of such a record.
const PIECE: usize = 256 * 1024;

/// Writes one framed record in pieces through `write`, the same bytes as
/// [`encode`]; returns how many. The rows are read twice: once for the
/// header's length and checksum, once to write them.
fn encode_streamed(op: &Op, write: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<u64> {
    let mut piece = Vec::with_capacity(PIECE + 4096);
    let (mut len, mut crc) = (0usize, 0u32);
    pieces(op, &mut piece, &mut |bytes| {
        len += bytes.len();
        crc = crc32c::crc32c_append(crc, bytes);
        Ok(())
    })?;
    let mut header = [0; HEADER];
    header[..4].copy_from_slice(&(len as u32).to_le_bytes());
    header[4..].copy_from_slice(&crc.to_le_bytes());
    piece.clear();
    piece.extend_from_slice(&header);
    pieces(op, &mut piece, write)?;
    Ok((HEADER + len) as u64)
}

/// The payload of `op` in pieces of about [`PIECE`] bytes, appended to
/// what `piece` holds already.
fn pieces(
    op: &Op,
    piece: &mut Vec<u8>,
    write: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    encode_head(op, piece);
    for row in op_rows(op) {
        encode_row(row, piece);
        if piece.len() >= PIECE {
            write(piece)?;
            piece.clear();
        }
    }
    if !piece.is_empty() {
        write(piece)?;
        piece.clear();
    }
    Ok(())
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_strs<'a>(out: &mut Vec<u8>, items: impl Iterator<Item = &'a str>, count: usize) {
    out.extend_from_slice(&(count as u32).to_le_bytes());
    for s in items {
        put_str(out, s);
    }
}

fn encode_row(row: &Row, out: &mut Vec<u8>) {
    put_strs(out, row.cells(row.len()), row.len());
}

/// The rows a record carries (written after its head).
fn op_rows(op: &Op) -> &[Row] {
    match op {
        Op::Put { rows, .. } | Op::Replace { rows, .. } => rows,
        _ => &[],
    }
}

/// A record's payload up to its rows: its kind, its table, and every
/// other field (for records with rows, their count last).
fn encode_head(op: &Op, out: &mut Vec<u8>) {
    let kind = match op {
        Op::Columns { .. } => 1u8,
        Op::Put { .. } => 2,
        Op::Delete { .. } => 3,
        Op::Replace { .. } => 4,
        Op::Drop { .. } => 5,
        Op::Base { .. } => 6,
        Op::Written { .. } => 7,
        Op::Seq { .. } => 8,
    };
    out.push(kind);
    put_str(out, op.table());
    match op {
        Op::Columns { columns, .. } => {
            put_strs(out, columns.iter().map(String::as_str), columns.len())
        }
        Op::Put { rows, .. } => out.extend_from_slice(&(rows.len() as u32).to_le_bytes()),
        Op::Delete { ids, .. } => put_strs(out, ids.iter().map(String::as_str), ids.len()),
        Op::Replace { columns, rows, .. } => {
            put_strs(out, columns.iter().map(String::as_str), columns.len());
            out.extend_from_slice(&(rows.len() as u32).to_le_bytes());
        }
        Op::Drop { .. } => {}
        Op::Base { hash, .. } => match hash {
            Some(hash) => {
                out.push(1);
                out.extend_from_slice(&hash.to_le_bytes());
            }
            None => out.push(0),
        },
        Op::Written { hash, .. } => out.extend_from_slice(&hash.to_le_bytes()),
        Op::Seq { next } => out.extend_from_slice(&next.to_le_bytes()),
    }
}

/// What reading a run of records found.
#[derive(Debug, Default)]
pub struct Decoded {
    pub ops: Vec<Op>,
    /// Bytes that make up whole, valid records.
    pub valid_len: usize,
    /// Why reading stopped before the end, if it did.
    pub problem: Option<Problem>,
}

/// Where and why records stopped being readable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Offset of the first unreadable record, from the start of the bytes.
    pub offset: usize,
    pub what: String,
    /// The damage is what an interrupted append leaves (a record cut short
    /// at the end, or zeros after the last record) rather than a damaged
    /// record with more data after it.
    pub torn: bool,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.what)
    }
}

/// Reads records until the end or the first torn or damaged one.
pub fn decode(bytes: &[u8]) -> Decoded {
    let mut decoded = Decoded::default();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        // An interrupted append leaves nothing whole after it; damage in
        // the middle (a flipped bit, even in a length) leaves records.
        let stop = |what: String, can_be_torn: bool| Problem {
            offset: at,
            what,
            torn: can_be_torn && !whole_record_after(rest),
        };
        let Some(header) = rest.get(..HEADER) else {
            decoded.problem = Some(stop(
                format!(
                    "a record header cut short ({} of {HEADER} bytes)",
                    rest.len()
                ),
                true,
            ));
            break;
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len > MAX_FRAME {
            decoded.problem = Some(stop(
                format!("a record length of {len} bytes, more than any record can have"),
                true,
            ));
            break;
        }
        let Some(payload) = rest.get(HEADER..HEADER + len) else {
            decoded.problem = Some(stop(
                format!(
                    "a record of {len} bytes cut short ({} bytes present)",
                    rest.len() - HEADER
                ),
                true,
            ));
            break;
        };
        if crc32c::crc32c(payload) != crc {
            decoded.problem = Some(stop(
                "a record whose checksum does not match its bytes".into(),
                true,
            ));
            break;
        }
        match decode_payload(payload) {
            Ok(op) => decoded.ops.push(op),
            Err(what) => {
                // Zeros read as an empty record: a preallocated tail.
                let zeros = rest.iter().all(|&b| b == 0);
                decoded.problem = Some(stop(what, zeros));
                break;
            }
        }
        at += HEADER + len;
        decoded.valid_len = at;
    }
    decoded
}

/// Whether a whole, valid record starts anywhere after the first byte of
/// `bytes`. Cheap checks (a length that fits, a known kind, a short table
/// name) come before the checksum, so scanning a torn tail stays fast.
fn whole_record_after(bytes: &[u8]) -> bool {
    (1..bytes.len().saturating_sub(HEADER)).any(|at| {
        let header = &bytes[at..at + HEADER];
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let Some(payload) = bytes.get(at + HEADER..at + HEADER + len) else {
            return false;
        };
        if payload.len() < 5 || !(1..=7).contains(&payload[0]) {
            return false;
        }
        let name = u32::from_le_bytes([payload[1], payload[2], payload[3], payload[4]]) as usize;
        if name > super::MAX_TABLE_NAME * 4 || 5 + name > payload.len() {
            return false;
        }
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        crc32c::crc32c(payload) == crc && decode_payload(payload).is_ok()
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.bytes.get(..n)?, self.bytes.get(n..)?);
        self.bytes = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<usize> {
        let b = self.take(4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn u64(&mut self) -> Option<u64> {
        let b: [u8; 8] = self.take(8)?.try_into().ok()?;
        Some(u64::from_le_bytes(b))
    }

    fn str(&mut self) -> Option<String> {
        let len = self.u32()?;
        std::str::from_utf8(self.take(len)?)
            .ok()
            .map(str::to_string)
    }

    fn strs(&mut self) -> Option<Vec<String>> {
        let count = self.u32()?;
        // Each string takes at least 4 bytes: refuse counts the bytes cannot hold.
        if count > self.bytes.len() / 4 {
            return None;
        }
        (0..count).map(|_| self.str()).collect()
    }

    fn rows(&mut self) -> Option<Vec<Row>> {
        let count = self.u32()?;
        if count > self.bytes.len() / 4 {
            return None;
        }
        (0..count)
            .map(|_| self.strs().map(Row::from_cells))
            .collect()
    }
}

fn decode_payload(payload: &[u8]) -> Result<Op, String> {
    let mut r = Reader { bytes: payload };
    let malformed =
        || "a record whose checksum matches but whose contents do not parse".to_string();
    let kind = r.take(1).ok_or_else(malformed)?[0];
    let table = r.str().ok_or_else(malformed)?;
    let op = match kind {
        1 => r.strs().map(|columns| Op::Columns { table, columns }),
        2 => r.rows().map(|rows| Op::Put { table, rows }),
        3 => r.strs().map(|ids| Op::Delete { table, ids }),
        4 => r.strs().and_then(|columns| {
            let rows = r.rows()?;
            Some(Op::Replace {
                table,
                columns,
                rows,
            })
        }),
        5 => Some(Op::Drop { table }),
        6 => match r.take(1).map(|b| b[0]) {
            Some(0) => Some(Op::Base { table, hash: None }),
            Some(1) => r.u64().map(|hash| Op::Base {
                table,
                hash: Some(hash),
            }),
            _ => None,
        },
        7 => r.u64().map(|hash| Op::Written { table, hash }),
        8 if table.is_empty() => r.u64().map(|next| Op::Seq { next }),
        other => {
            return Err(format!(
                "a record of unknown kind {other} (written by a newer csvd?)"
            ))
        }
    };
    match op {
        Some(op) if r.bytes.is_empty() => Ok(op),
        _ => Err(malformed()),
    }
}

/// The header every segment starts with.
fn segment_header(number: u64) -> [u8; SEGMENT_HEADER] {
    let mut header = [0; SEGMENT_HEADER];
    header[..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&VERSION.to_le_bytes());
    header[12..20].copy_from_slice(&number.to_le_bytes());
    let crc = crc32c::crc32c(&header[..20]);
    header[20..].copy_from_slice(&crc.to_le_bytes());
    header
}

/// Where a segment's records start, after checking its header.
fn records_start(bytes: &[u8], number: u64) -> Result<usize, Problem> {
    let damaged = |what: String, torn: bool| Problem {
        offset: 0,
        what,
        torn,
    };
    if bytes.is_empty() {
        // Created, then a crash before its header was written: no records.
        return Ok(0);
    }
    if !bytes.starts_with(MAGIC) {
        if MAGIC.starts_with(bytes) {
            return Err(damaged("a segment header cut short".into(), true));
        }
        // Written before segments had headers: records from the first byte.
        return Ok(0);
    }
    let Some(header) = bytes.get(..SEGMENT_HEADER) else {
        return Err(damaged("a segment header cut short".into(), true));
    };
    if crc32c::crc32c(&header[..20])
        != u32::from_le_bytes([header[20], header[21], header[22], header[23]])
    {
        return Err(damaged(
            "a segment header whose checksum does not match".into(),
            false,
        ));
    }
    let version = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
    if version != VERSION {
        return Err(damaged(
            format!("segment format version {version}; this csvd reads version {VERSION}"),
            false,
        ));
    }
    let named = u64::from_le_bytes(header[12..20].try_into().unwrap_or_default());
    if named != number {
        return Err(damaged(
            format!("a header naming segment {named} in the file of segment {number}"),
            false,
        ));
    }
    Ok(SEGMENT_HEADER)
}

/// Damage that recovery may not drop: where, and what was expected there.
#[derive(Debug, Clone)]
pub struct Damage {
    pub file: PathBuf,
    pub offset: usize,
    pub what: String,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at byte {}: {}",
            self.file.display(),
            self.offset,
            self.what
        )
    }
}

/// The records of the segments found at open, in order.
#[derive(Debug, Default)]
pub struct Recovered {
    pub ops: Vec<Op>,
    /// The change feed's next sequence number (1 for a new log). The
    /// [`Op::Seq`] records it was read from are not in `ops`.
    pub next_seq: u64,
    /// What `salvage` set aside and could not apply, one line each.
    pub salvaged: Vec<String>,
}

/// Position in the log: the number of batches appended before.
pub type Lsn = u64;

/// A new segment, created and durable, for the next [`Wal::rotate`].
pub struct NextSegment {
    file: File,
    number: u64,
}

/// The log of one data directory.
pub struct Wal {
    dir: PathBuf,
    sync: bool,
    disk: Disk,
    state: Mutex<State>,
    /// Wakes the log thread: records are pending (or the log closes).
    work: Condvar,
    /// Wakes blocking waiters: a batch was decided (or the log failed).
    /// Separate from `work` so an append never wakes the writers waiting
    /// for fsync.
    synced: Condvar,
    /// The same news for async waiters ([`Ticket`]).
    progress: tokio::sync::watch::Sender<Lsn>,
    /// Set while appends are refused; read without the lock by readers,
    /// who must not serve what a failed batch left in memory.
    failed_flag: AtomicBool,
    /// Batches that failed since the log was opened: memory built before
    /// the last one may hold refused changes.
    failures: AtomicU64,
    /// Totals for monitoring: bytes written and fsyncs.
    written: AtomicU64,
    syncs: AtomicU64,
    /// Where changes are published once durable.
    feed: OnceLock<Arc<Feed>>,
}

/// A claim on a batch of records: resolves once they are durable.
pub struct Ticket {
    wal: Arc<Wal>,
    lsn: Lsn,
}

impl Ticket {
    /// Waits, without holding a thread, until the batch is on disk.
    pub async fn durable(self) -> io::Result<()> {
        let mut progress = self.wal.progress.subscribe();
        if progress
            .wait_for(|decided| *decided >= self.lsn)
            .await
            .is_err()
        {
            return Err(io::Error::other("the write-ahead log stopped"));
        }
        self.wal.lock().outcome(self.lsn)
    }
}

struct State {
    pending: Vec<u8>,
    /// Records of many rows, to be encoded as they are written, each with
    /// where it goes among the bytes of `pending`.
    streamed: Vec<(usize, Op)>,
    /// Lsn of the last batch appended.
    appended: Lsn,
    /// Every batch up to this one is decided: durable, or failed.
    decided: Lsn,
    /// Batches that failed, as (after, upto] ranges; never acknowledged.
    failed_ranges: Vec<(Lsn, Lsn)>,
    /// The segment being written; `None` while the log thread writes to it.
    file: Option<File>,
    /// The segment to write next, set by a rotation while the log thread
    /// was writing (`file` is `None` whenever this is set); the thread
    /// switches to it once its batch is decided.
    next_file: Option<(File, u64)>,
    segment: u64,
    /// Bytes of the current segment known durable (header included).
    durable_len: u64,
    /// Bytes of records in the current segment, for the checkpoint trigger.
    segment_bytes: u64,
    /// The current segment holds changes (not only checkpoint records).
    segment_changes: bool,
    /// Why appends are refused, until a repair.
    failed: Option<String>,
    /// The failed batch was already cut off the segment.
    cut: bool,
    /// Opened to read only: every append is refused.
    read_only: bool,
    closing: bool,
    /// The change feed's next sequence number.
    next_seq: u64,
    /// Changes appended since the last batch was taken, to publish once
    /// that batch is durable.
    changes: Vec<Batch>,
}

impl State {
    fn outcome(&self, lsn: Lsn) -> io::Result<()> {
        let lost = self
            .failed_ranges
            .iter()
            .any(|&(after, upto)| lsn > after && lsn <= upto);
        if lost {
            Err(io::Error::other(self.failed.clone().unwrap_or_else(|| {
                "the write-ahead log failed; the write was not made durable and was undone".into()
            })))
        } else {
            Ok(())
        }
    }
}

impl Wal {
    /// Opens the log in `dir` and returns it with the records of the
    /// segments found there, to replay. Only a torn tail of the newest
    /// segment is dropped (it was never acknowledged); any other damage is
    /// an error, unless `salvage` is set: then the damaged segment is moved
    /// to `dir/salvaged/` and what could not be read is reported.
    pub fn open(
        dir: &Path,
        sync: bool,
        disk: Disk,
        salvage: bool,
    ) -> io::Result<(Arc<Wal>, Recovered)> {
        disk.create_dir_all(dir)?;
        let (mut recovered, last) = read_segments(&disk, dir, salvage, true)?;
        take_seq(&mut recovered);
        // Numbers never repeat: the next segment is past every one seen.
        let (file, segment, len) = match create_segment(&disk, dir, last + 1, recovered.next_seq) {
            Ok(file) => (file, last + 1, SEGMENT_START),
            // A full disk: go on appending to the newest segment (its torn
            // tail, if any, was just cut off), so that the server starts and
            // serves what it has; writes wait for space like any other.
            Err(err) if err.kind() == io::ErrorKind::StorageFull && last > 0 => {
                tracing::error!(
                    "no space for a new log segment ({err}); appending to segment {last}"
                );
                let path = segment_path(dir, last);
                let file = disk.append(&path)?;
                let len = file.metadata()?.len();
                (file, last, len)
            }
            Err(err) => return Err(err),
        };
        let wal = Wal::new(dir, sync, disk, Some(file), segment);
        {
            let mut state = wal.lock();
            state.next_seq = recovered.next_seq;
            state.durable_len = len;
            state.segment_bytes = len.saturating_sub(SEGMENT_START);
            // Its records are older than this start: a checkpoint may rotate.
            state.segment_changes = len > SEGMENT_START;
        }
        let wal = Arc::new(wal);
        let worker = wal.clone();
        std::thread::Builder::new()
            .name("csvd-wal".into())
            .spawn(move || worker.run())?;
        Ok((wal, recovered))
    }

    /// Reads the log in `dir` without writing anything (for a read-only
    /// server, possibly on a read-only file system): a torn tail is left as
    /// it is, and salvage moves nothing. The log returned refuses appends.
    pub fn read_only(dir: &Path, disk: Disk, salvage: bool) -> io::Result<(Arc<Wal>, Recovered)> {
        let (mut recovered, last) = if dir.is_dir() {
            read_segments(&disk, dir, salvage, false)?
        } else {
            (Recovered::default(), 0)
        };
        take_seq(&mut recovered);
        let wal = Wal::new(dir, false, disk, None, last);
        wal.lock().read_only = true;
        wal.lock().next_seq = recovered.next_seq;
        Ok((Arc::new(wal), recovered))
    }

    fn new(dir: &Path, sync: bool, disk: Disk, file: Option<File>, segment: u64) -> Wal {
        Wal {
            dir: dir.to_path_buf(),
            sync,
            disk,
            state: Mutex::new(State {
                pending: Vec::new(),
                streamed: Vec::new(),
                appended: 0,
                decided: 0,
                failed_ranges: Vec::new(),
                file,
                next_file: None,
                segment,
                durable_len: SEGMENT_HEADER as u64,
                segment_bytes: 0,
                segment_changes: false,
                failed: None,
                cut: false,
                read_only: false,
                closing: false,
                next_seq: 1,
                changes: Vec::new(),
            }),
            work: Condvar::new(),
            synced: Condvar::new(),
            progress: tokio::sync::watch::Sender::new(0),
            failed_flag: AtomicBool::new(false),
            failures: AtomicU64::new(0),
            written: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            feed: OnceLock::new(),
        }
    }

    /// Publishes every change to `feed` once it is durable, from now on.
    pub fn attach(&self, feed: Arc<Feed>) {
        let _ = self.feed.set(feed);
    }

    /// The sequence number the next change will get.
    pub fn next_seq(&self) -> u64 {
        self.lock().next_seq
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether appends are refused (a batch failed and no repair since).
    pub fn is_failed(&self) -> bool {
        self.failed_flag.load(Ordering::Acquire)
    }

    /// How many batches have failed since the log was opened.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Acquire)
    }

    /// Why appends are refused, if they are.
    pub fn failure(&self) -> Option<String> {
        self.lock().failed.clone()
    }

    /// The number of the segment being written.
    #[cfg(test)]
    pub fn segment(&self) -> u64 {
        self.lock().segment
    }

    /// Queues records; they are durable once [`Wal::wait`] returns for the
    /// returned position.
    pub fn append(&self, ops: &[Op]) -> io::Result<Lsn> {
        self.append_changes(ops, Vec::new())
    }

    /// Queues records and the changes they make for the feed: the changes
    /// are numbered here, in log order, and published once the records are
    /// durable (never if they fail).
    pub fn append_changes(&self, ops: &[Op], mut changes: Vec<Batch>) -> io::Result<Lsn> {
        let mut state = self.lock();
        if let Some(failure) = &state.failed {
            return Err(io::Error::other(failure.clone()));
        }
        if state.read_only {
            return Err(io::Error::other("the data directory is open read-only"));
        }
        changes.retain(|batch| !batch.is_empty());
        if !changes.is_empty() {
            for batch in &mut changes {
                batch.first = state.next_seq;
                state.next_seq += batch.len();
            }
            encode(
                &Op::Seq {
                    next: state.next_seq,
                },
                &mut state.pending,
            );
            state.changes.append(&mut changes);
        }
        for op in ops {
            if op_rows(op).len() > STREAM_ROWS {
                // Shares the rows: no copy of their cells.
                let at = state.pending.len();
                state.streamed.push((at, op.clone()));
            } else {
                encode(op, &mut state.pending);
            }
        }
        // A checkpoint's own records alone do not need a new segment: a
        // checkpoint that keeps failing must not make one each time.
        state.segment_changes |= ops.iter().any(|op| !matches!(op, Op::Written { .. }));
        state.appended += 1;
        let lsn = state.appended;
        self.work.notify_one();
        Ok(lsn)
    }

    /// A claim on batch `lsn`, to wait for asynchronously.
    pub fn ticket(self: &Arc<Self>, lsn: Lsn) -> Ticket {
        Ticket {
            wal: self.clone(),
            lsn,
        }
    }

    /// Waits until the batch `lsn` is on disk, holding the thread.
    pub fn wait(&self, lsn: Lsn) -> io::Result<()> {
        let mut state = self.lock();
        while state.decided < lsn {
            state = self
                .synced
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.outcome(lsn)
    }

    /// Bytes written and fsyncs done since the log was opened.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.written.load(Ordering::Relaxed),
            self.syncs.load(Ordering::Relaxed),
        )
    }

    /// Bytes of records written to the current segment.
    pub fn segment_bytes(&self) -> u64 {
        self.lock().segment_bytes
    }

    /// Makes the next segment ready for [`Wal::rotate`]: creates it with
    /// its header and a numbering record, and makes both durable, holding
    /// no lock meanwhile, so the rotation itself does no I/O. `None` when
    /// the current segment holds no changes (nothing to rotate away from)
    /// or appends are refused.
    pub fn prepare_rotation(&self) -> io::Result<Option<NextSegment>> {
        let (number, next_seq) = {
            let mut state = self.lock();
            // A rotation still waiting for the log thread is finished first.
            while state.next_file.is_some() {
                state = self
                    .synced
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if !state.segment_changes || state.failed.is_some() || state.read_only {
                return Ok(None);
            }
            (state.segment + 1, state.next_seq)
        };
        // Its numbering record may be behind by the time it is used; the
        // highest record wins at replay, and [`Wal::mark`] writes a current
        // one before older segments may go.
        let file = create_segment(&self.disk, &self.dir, number, next_seq)?;
        Ok(Some(NextSegment { file, number }))
    }

    /// Starts writing to the segment `next` (from
    /// [`Wal::prepare_rotation`]): every batch appended from now on goes
    /// there, and so do those queued and not yet taken by the log thread.
    /// No I/O, so it may run while every writer is held off. Returns the
    /// number of the segment written from now on: the older ones may be
    /// deleted once the tables they changed are on disk and [`Wal::mark`]
    /// is durable. Without `next`, nothing rotates.
    pub fn rotate(&self, next: Option<NextSegment>) -> io::Result<u64> {
        let mut state = self.lock();
        let failed = state.failed.clone();
        let Some(next) = next else {
            return match failed {
                Some(failure) => Err(io::Error::other(failure)),
                None => Ok(state.segment),
            };
        };
        if let Some(failure) = failed {
            drop(state);
            self.discard_prepared(next);
            return Err(io::Error::other(failure));
        }
        debug_assert_eq!(next.number, state.segment + 1);
        debug_assert!(state.next_file.is_none());
        let number = next.number;
        state.segment_changes = false;
        state.segment_bytes = 0;
        if state.file.is_some() {
            state.file = Some(next.file);
            state.segment = number;
            state.durable_len = SEGMENT_START;
        } else {
            // The log thread is writing a batch to the old segment: it
            // switches once that batch is decided.
            state.next_file = Some((next.file, number));
        }
        Ok(number)
    }

    /// Removes a prepared segment that was not used.
    pub fn discard_prepared(&self, next: NextSegment) {
        drop(next.file);
        let _ = self.disk.remove_file(&segment_path(&self.dir, next.number));
    }

    /// Records the current numbering of the feed as a batch of its own and
    /// returns its position: once it is durable, every batch appended
    /// before it is decided and the numbering is in the current segment,
    /// so older segments can go without losing it.
    pub fn mark(&self) -> io::Result<Lsn> {
        let mut state = self.lock();
        if let Some(failure) = &state.failed {
            return Err(io::Error::other(failure.clone()));
        }
        let next = state.next_seq;
        encode(&Op::Seq { next }, &mut state.pending);
        state.appended += 1;
        let lsn = state.appended;
        self.work.notify_one();
        Ok(lsn)
    }

    /// The segments older than `current` on disk, to delete after a
    /// checkpoint.
    pub fn segments_before(&self, current: u64) -> io::Result<Vec<PathBuf>> {
        Ok(list_segments(&self.disk, &self.dir)?
            .into_iter()
            .filter(|(number, _)| *number < current)
            .map(|(_, path)| path)
            .collect())
    }

    /// Cuts the current segment back to its last durable byte, so that no
    /// record of a failed batch can be replayed, and accepts appends again.
    /// Appends must be held off by the caller.
    pub fn repair(&self) -> io::Result<()> {
        let mut state = self.lock();
        while state.file.is_none() {
            state = self
                .synced
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if state.failed.is_none() {
            return Ok(());
        }
        let file = state
            .file
            .as_ref()
            .ok_or_else(|| io::Error::other("no log file"))?;
        if !state.cut {
            self.disk.set_len(file, state.durable_len)?;
            self.disk.sync_all(file)?;
        }
        check_linked(file)?;
        state.cut = false;
        state.failed = None;
        self.failed_flag.store(false, Ordering::Release);
        tracing::info!("write-ahead log repaired: writes are accepted again");
        Ok(())
    }

    /// The records of every segment on disk, in order, read strictly (for
    /// rebuilding memory after a failure: the log was repaired first, so no
    /// damage of any kind is expected).
    pub fn read_all(&self) -> io::Result<Vec<Op>> {
        self.read_back(None)
    }

    /// The records of every segment on disk, the current one only up to
    /// its last durable byte: what was acknowledged, even while the bytes
    /// of a failed batch could not be cut off yet.
    pub fn read_durable(&self) -> io::Result<Vec<Op>> {
        let (segment, durable) = {
            let state = self.lock();
            (state.segment, state.durable_len)
        };
        self.read_back(Some((segment, durable as usize)))
    }

    fn read_back(&self, limit: Option<(u64, usize)>) -> io::Result<Vec<Op>> {
        let mut segments = list_segments(&self.disk, &self.dir)?;
        segments.sort();
        let mut ops = Vec::new();
        for (number, path) in segments {
            let mut bytes = self.disk.read(&path)?;
            if let Some((segment, len)) = limit {
                if number == segment {
                    bytes.truncate(len);
                }
            }
            let start = records_start(&bytes, number)
                .map_err(|p| io::Error::other(format!("{}: {p}", path.display())))?;
            let decoded = decode(&bytes[start..]);
            if let Some(problem) = decoded.problem {
                return Err(io::Error::other(format!(
                    "{} at byte {}: {problem}",
                    path.display(),
                    problem.offset + start
                )));
            }
            ops.extend(
                decoded
                    .ops
                    .into_iter()
                    .filter(|op| !matches!(op, Op::Seq { .. })),
            );
        }
        Ok(ops)
    }

    /// Truncates the current segment to its last durable byte; whether it
    /// worked.
    fn cut_back(&self, state: &State) -> bool {
        let Some(file) = &state.file else {
            return false;
        };
        let cut = self
            .disk
            .set_len(file, state.durable_len)
            .and_then(|()| self.disk.sync_all(file));
        match cut {
            Ok(()) => true,
            Err(err) => {
                tracing::error!("cannot cut the failed writes off the write-ahead log yet: {err}");
                false
            }
        }
    }

    /// Stops the log thread once everything appended is durable.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closing = true;
        self.work.notify_one();
    }

    /// Writes a batch: the encoded records, with the streamed ones encoded
    /// in place among them. `total` grows by the bytes of streamed records.
    fn write_batch(
        &self,
        file: &mut File,
        batch: &[u8],
        streamed: &[(usize, Op)],
        total: &mut u64,
    ) -> io::Result<()> {
        let mut done = 0;
        for (at, op) in streamed {
            if *at > done {
                self.disk.write_all(file, &batch[done..*at])?;
                done = *at;
            }
            *total += encode_streamed(op, &mut |piece| self.disk.write_all(file, piece))?;
        }
        if done < batch.len() {
            self.disk.write_all(file, &batch[done..])?;
        }
        Ok(())
    }

    /// The log thread: write and fsync whatever is pending, as one batch.
    fn run(&self) {
        loop {
            let mut state = self.lock();
            while state.pending.is_empty() && state.streamed.is_empty() && !state.closing {
                state = self
                    .work
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if state.pending.is_empty() && state.streamed.is_empty() {
                return;
            }
            let batch = std::mem::take(&mut state.pending);
            let streamed = std::mem::take(&mut state.streamed);
            let changes = std::mem::take(&mut state.changes);
            let upto = state.appended;
            let Some(mut file) = state.file.take() else {
                return;
            };
            drop(state);
            let mut total = batch.len() as u64;
            let result = self
                .write_batch(&mut file, &batch, &streamed, &mut total)
                .and_then(|()| {
                    if self.sync {
                        self.disk.sync_data(&file)
                    } else {
                        Ok(())
                    }
                })
                .and_then(|()| check_linked(&file));
            if result.is_ok() {
                // Durable: subscribers may hear of it, before its writers
                // are answered (they learn of it below), and without the
                // log's lock, so appends go on meanwhile.
                if let Some(feed) = self.feed.get() {
                    feed.publish(changes);
                }
            }
            let mut state = self.lock();
            state.file = Some(file);
            match result {
                Ok(()) => {
                    self.written.fetch_add(total, Ordering::Relaxed);
                    if self.sync {
                        self.syncs.fetch_add(1, Ordering::Relaxed);
                    }
                    state.durable_len += total;
                    state.segment_bytes += total;
                    state.decided = upto;
                }
                Err(err) => {
                    tracing::error!(
                        "write-ahead log failed: {err}; the writes in flight are refused and undone, and writes are refused until the log is repaired"
                    );
                    // Cut the failed batch off before anyone hears of the
                    // failure, so a refused write cannot come back at the
                    // next start, even after a crash right now.
                    state.cut = self.cut_back(&state);
                    let range = (state.decided, state.appended);
                    state.failed_ranges.push(range);
                    state.decided = state.appended;
                    state.pending.clear();
                    state.streamed.clear();
                    // Changes of the writes refused with it are never
                    // published (their numbers are never seen).
                    state.changes.clear();
                    state.failed = Some(format!(
                        "the write-ahead log failed ({err}); the write was not made durable and was undone"
                    ));
                    self.failed_flag.store(true, Ordering::Release);
                    self.failures.fetch_add(1, Ordering::AcqRel);
                }
            }
            // A rotation made while this batch was written: later batches
            // go to the new segment. A failed batch undoes it instead: its
            // bytes may still need cutting off the old segment (by
            // `repair`), whose batches the checkpoint cannot count as
            // decided, so that checkpoint fails and the old segment stays
            // the current one.
            if let Some((file, number)) = state.next_file.take() {
                if state.failed.is_none() {
                    state.file = Some(file);
                    state.segment = number;
                    state.durable_len = SEGMENT_START;
                } else {
                    drop(file);
                    state.segment_changes = true;
                    let _ = self.disk.remove_file(&segment_path(&self.dir, number));
                }
            }
            self.progress.send_replace(state.decided);
            // Reuse the batch's allocation for the next one.
            if state.pending.is_empty() {
                let mut batch = batch;
                batch.clear();
                state.pending = batch;
            }
            self.synced.notify_all();
        }
    }
}

/// Takes the feed's numbering out of recovered records.
fn take_seq(recovered: &mut Recovered) {
    let mut next = 1;
    recovered.ops.retain(|op| match op {
        Op::Seq { next: n } => {
            next = next.max(*n);
            false
        }
        _ => true,
    });
    recovered.next_seq = next;
}

/// Reads every segment in `dir`, in order, applying the recovery policy:
/// only a torn tail of the newest segment may be dropped (cut off for good
/// when `writable`). Returns the records and the highest segment number.
fn read_segments(
    disk: &Disk,
    dir: &Path,
    salvage: bool,
    writable: bool,
) -> io::Result<(Recovered, u64)> {
    let mut segments = list_segments(disk, dir)?;
    segments.sort();
    let mut recovered = Recovered::default();
    let last = segments.last().map_or(0, |(number, _)| *number);
    for pair in segments.windows(2) {
        let (a, b) = (pair[0].0, pair[1].0);
        if b != a + 1 {
            let damage = Damage {
                file: segment_path(dir, a + 1),
                offset: 0,
                what: format!("segment {} is missing between segments {a} and {b}", a + 1),
            };
            if !salvage {
                return Err(refusal(&damage));
            }
            recovered
                .salvaged
                .push(format!("{damage}: its changes are lost"));
        }
    }
    for (number, path) in &segments {
        let newest = *number == last;
        let bytes = disk.read(path)?;
        let (start, problem) = match records_start(&bytes, *number) {
            Ok(start) => (start, None),
            Err(problem) => (0, Some(problem)),
        };
        let decoded = if problem.is_none() {
            decode(&bytes[start..])
        } else {
            Decoded::default()
        };
        recovered.ops.extend(decoded.ops);
        let problem = problem.or(decoded.problem.map(|p| Problem {
            offset: p.offset + start,
            ..p
        }));
        let Some(problem) = problem else { continue };
        if newest && problem.torn && !writable {
            tracing::warn!(
                segment = %path.display(),
                "write-ahead log: {problem} at byte {}; ignoring the rest (an append that was never acknowledged; read-only: the file is left as it is)",
                problem.offset
            );
            continue;
        }
        if newest && problem.torn {
            let keep = problem.offset;
            tracing::warn!(
                segment = %path.display(),
                "write-ahead log: {problem} at byte {}; dropping the last {} bytes (an append that was never acknowledged)",
                problem.offset,
                bytes.len() - keep
            );
            let file = disk.append(path)?;
            disk.set_len(&file, keep as u64)?;
            disk.sync_all(&file)?;
            continue;
        }
        let damage = Damage {
            file: path.clone(),
            offset: problem.offset,
            what: problem.what.clone(),
        };
        if !salvage {
            return Err(refusal(&damage));
        }
        if !writable {
            recovered.salvaged.push(format!(
                    "{damage}: the {} bytes from there on were not applied (read-only: the segment was left where it is)",
                    bytes.len() - problem.offset
                ));
            continue;
        }
        let aside = dir.join("salvaged");
        disk.create_dir_all(&aside)?;
        let name = path.file_name().unwrap_or_default();
        disk.rename(path, &aside.join(name))?;
        disk.sync_dir(dir)?;
        recovered.salvaged.push(format!(
            "{damage}: the {} bytes from there on were not applied; the segment was moved to {}",
            bytes.len() - problem.offset,
            aside.join(name).display()
        ));
    }
    Ok((recovered, last))
}

/// A message for a log that recovery may not read past.
fn refusal(damage: &Damage) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "the write-ahead log is damaged: {damage}. Acknowledged writes may be in or after the damaged part, so csvd will not start and has changed no file. Start with --salvage to serve what can be read: damaged segments are moved to .csvd/salvaged/ (never deleted) and what was not applied is logged."
        ),
    )
}

/// Fails when the log file no longer has a name: its data directory was
/// deleted or moved, and what is written to it would not survive.
fn check_linked(file: &File) -> io::Result<()> {
    if file.metadata()?.nlink() == 0 {
        return Err(io::Error::other(
            "the log file was deleted (was the data directory removed?)",
        ));
    }
    Ok(())
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("wal-{number:010}.log"))
}

/// Creates segment `number` with its header and a first record: the feed's
/// next sequence number, which must outlive the older segments.
fn create_segment(disk: &Disk, dir: &Path, number: u64, next_seq: u64) -> io::Result<File> {
    let path = segment_path(dir, number);
    let mut file = disk.append(&path)?;
    // A segment prepared for a rotation that was undone, and could not be
    // removed then, holds only its start: it is written again.
    if file.metadata()?.len() > 0 {
        disk.set_len(&file, 0)?;
    }
    let mut start = segment_header(number).to_vec();
    encode(&Op::Seq { next: next_seq }, &mut start);
    debug_assert_eq!(start.len() as u64, SEGMENT_START);
    let written = disk
        .write_all(&mut file, &start)
        .and_then(|()| disk.sync_all(&file))
        .and_then(|()| disk.sync_dir(dir));
    if let Err(err) = written {
        // Never leave a segment without its header behind.
        let _ = disk.remove_file(&path);
        return Err(err);
    }
    Ok(file)
}

fn list_segments(disk: &Disk, dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut segments = Vec::new();
    for (name, path) in disk.list(dir)? {
        let number = name
            .strip_prefix("wal-")
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(number) = number {
            segments.push((number, path));
        }
    }
    Ok(segments)
}
#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Op> {
        vec![
            Op::Columns {
                table: "t".into(),
                columns: vec!["id".into(), "a".into()],
            },
            Op::Put {
                table: "t".into(),
                rows: vec![Row::from_cells(["1", "x,\"y\"\n"]), Row::from_cells(["2"])],
            },
            Op::Delete {
                table: "t".into(),
                ids: vec!["1".into()],
            },
            Op::Replace {
                table: "u".into(),
                columns: vec!["id".into()],
                rows: vec![Row::from_cells(["é"])],
            },
            Op::Drop { table: "u".into() },
        ]
    }

    #[test]
    fn records_round_trip() {
        let mut bytes = Vec::new();
        for op in sample() {
            encode(&op, &mut bytes);
        }
        let decoded = decode(&bytes);
        assert_eq!(decoded.ops, sample());
        assert_eq!(decoded.valid_len, bytes.len());
        assert!(decoded.problem.is_none());
    }

    /// A record of many rows, more than one piece of it.
    fn bulk(table: &str) -> Op {
        let rows = (0..12_000)
            .map(|i| {
                let note = format!("row {i} with a note long enough to fill pieces, é");
                Row::from_cells([i.to_string(), String::new(), note])
            })
            .collect();
        Op::Replace {
            table: table.into(),
            columns: vec!["id".into(), "a".into(), "note".into()],
            rows,
        }
    }

    #[test]
    fn streamed_records_are_the_bytes_encoded_whole() {
        let op = bulk("t");
        let mut whole = Vec::new();
        encode(&op, &mut whole);
        let mut streamed = Vec::new();
        let mut pieces = 0;
        let len = encode_streamed(&op, &mut |piece| {
            pieces += 1;
            streamed.extend_from_slice(piece);
            Ok(())
        })
        .unwrap();
        assert!(pieces > 2, "{pieces} pieces");
        assert_eq!(len as usize, whole.len());
        assert!(streamed == whole);
    }

    #[test]
    fn streamed_records_keep_their_place_in_the_log() {
        let tmp = tempfile::tempdir().unwrap();
        let mut ops = sample();
        ops.insert(2, bulk("big"));
        ops.push(bulk("other"));
        {
            let (wal, _) = open(tmp.path(), false).unwrap();
            let first = wal.append(&ops[..3]).unwrap();
            let second = wal.append(&ops[3..]).unwrap();
            wal.wait(first).unwrap();
            wal.wait(second).unwrap();
            wal.close();
        }
        let (_, recovered) = open(tmp.path(), false).unwrap();
        assert!(recovered.ops == ops);
    }

    fn encoded(ops: &[Op]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for op in ops {
            encode(op, &mut bytes);
        }
        bytes
    }

    #[test]
    fn torn_tails_and_damage_are_told_apart() {
        let bytes = encoded(&sample());
        let whole = bytes.len();
        for cut in 1..whole {
            let decoded = decode(&bytes[..cut]);
            assert!(decoded.valid_len <= cut);
            assert!(sample().starts_with(&decoded.ops));
            if let Some(problem) = decoded.problem {
                assert!(problem.torn, "cut at {cut}: {problem:?}");
            }
        }
        // A flipped bit in the last record: it reaches the end, so it reads
        // as an append cut short.
        let mut flipped = bytes.clone();
        flipped[whole - 2] ^= 0x40;
        let decoded = decode(&flipped);
        assert_eq!(decoded.ops.len(), sample().len() - 1);
        let problem = decoded.problem.unwrap();
        assert!(problem.what.contains("checksum") && problem.torn);
        // The same in the first record, with more records after it: damage.
        let mut flipped = bytes.clone();
        flipped[HEADER + 3] ^= 0x40;
        let problem = decode(&flipped).problem.unwrap();
        assert_eq!(problem.offset, 0);
        assert!(!problem.torn, "{problem:?}");
        // Zeros after the last record are what a preallocated tail looks like.
        let mut zeros = bytes.clone();
        zeros.extend_from_slice(&[0; 100]);
        let decoded = decode(&zeros);
        assert_eq!(decoded.ops, sample());
        assert!(decoded.problem.unwrap().torn);
    }

    #[test]
    fn a_damaged_length_with_records_after_it_is_damage_not_a_torn_tail() {
        let bytes = encoded(&sample());
        let mut flipped = bytes.clone();
        // The second record's length now runs past the end.
        let second = {
            let first_len = u32::from_le_bytes(bytes[0..4].try_into().unwrap()) as usize;
            HEADER + first_len
        };
        flipped[second + 1] ^= 0x10;
        let problem = decode(&flipped).problem.unwrap();
        assert_eq!(problem.offset, second);
        assert!(!problem.torn, "{problem:?}");
    }

    #[test]
    fn unknown_kinds_are_damage() {
        let mut bytes = encoded(&sample()[..1]);
        // Kind byte of the payload, with the CRC made to match.
        bytes[HEADER] = 99;
        let crc = crc32c::crc32c(&bytes[HEADER..]);
        bytes[4..8].copy_from_slice(&crc.to_le_bytes());
        bytes.extend(encoded(&sample()[1..]));
        let problem = decode(&bytes).problem.unwrap();
        assert!(problem.what.contains("unknown kind 99") && !problem.torn);
    }

    fn open(dir: &Path, salvage: bool) -> io::Result<(Arc<Wal>, Recovered)> {
        Wal::open(dir, true, Disk::real(), salvage)
    }

    fn write_some(dir: &Path) -> Vec<PathBuf> {
        let (wal, recovered) = open(dir, false).unwrap();
        assert!(recovered.ops.is_empty());
        let lsns: Vec<Lsn> = sample()
            .iter()
            .map(|op| wal.append(std::slice::from_ref(op)).unwrap())
            .collect();
        wal.wait(*lsns.last().unwrap()).unwrap();
        wal.close();
        let mut segments: Vec<PathBuf> = list_segments(&Disk::real(), dir)
            .unwrap()
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        segments.sort();
        segments
    }

    #[test]
    fn group_commit_survives_reopen_and_numbers_never_repeat() {
        let dir = tempfile::tempdir().unwrap();
        let segments = write_some(dir.path());
        assert_eq!(segments.len(), 1);
        let bytes = std::fs::read(&segments[0]).unwrap();
        assert!(bytes.starts_with(MAGIC));
        let (wal, recovered) = open(dir.path(), false).unwrap();
        assert_eq!(recovered.ops, sample());
        assert_eq!(wal.segment(), 2);
    }

    #[test]
    fn a_torn_tail_of_the_newest_segment_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let segments = write_some(dir.path());
        let len = std::fs::metadata(&segments[0]).unwrap().len();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&segments[0])
            .unwrap();
        file.set_len(len - 3).unwrap();
        let (_wal, recovered) = open(dir.path(), false).unwrap();
        assert_eq!(recovered.ops, sample()[..sample().len() - 1]);
        // Cut off for good: the next start reads it as whole.
        let (_wal, again) = open(dir.path(), false).unwrap();
        assert_eq!(again.ops, recovered.ops);
    }

    #[test]
    fn damage_elsewhere_refuses_to_start_and_salvage_moves_it_aside() {
        let dir = tempfile::tempdir().unwrap();
        let segments = write_some(dir.path());
        let mut bytes = std::fs::read(&segments[0]).unwrap();
        bytes[SEGMENT_HEADER + HEADER + 3] ^= 1;
        std::fs::write(&segments[0], &bytes).unwrap();
        let err = open(dir.path(), false).err().unwrap().to_string();
        assert!(err.contains("wal-0000000001.log at byte 24"), "{err}");
        assert!(
            err.contains("checksum") && err.contains("--salvage"),
            "{err}"
        );
        assert_eq!(
            std::fs::read(&segments[0]).unwrap(),
            bytes,
            "nothing changed"
        );
        let (_wal, recovered) = open(dir.path(), true).unwrap();
        assert!(recovered.ops.is_empty());
        assert_eq!(recovered.salvaged.len(), 1, "{:?}", recovered.salvaged);
        let kept = dir.path().join("salvaged/wal-0000000001.log");
        assert_eq!(std::fs::read(kept).unwrap(), bytes);
    }

    #[test]
    fn a_missing_segment_refuses_to_start() {
        let dir = tempfile::tempdir().unwrap();
        write_some(dir.path());
        // Segment 2 (empty, from the reopen) and 3, then 2 goes missing.
        drop(open(dir.path(), false).unwrap());
        drop(open(dir.path(), false).unwrap());
        std::fs::remove_file(segment_path(dir.path(), 2)).unwrap();
        let err = open(dir.path(), false).err().unwrap().to_string();
        assert!(err.contains("segment 2 is missing"), "{err}");
    }

    #[test]
    fn a_failed_batch_is_never_acknowledged_and_repair_cuts_it_off() {
        use super::super::disk::{Fault, Faults};
        let dir = tempfile::tempdir().unwrap();
        let faults = Faults::new();
        let (wal, _) =
            Wal::open(dir.path(), true, Disk::with_faults(faults.clone()), false).unwrap();
        let first = wal.append(&sample()[..1]).unwrap();
        wal.wait(first).unwrap();
        // The next fsync fails: the batch was written but is not durable.
        let at = faults.calls() + 1;
        faults.fail_at(at, Fault::Io, false);
        let second = wal.append(&sample()[1..2]).unwrap();
        assert!(wal.wait(second).is_err());
        assert!(wal.is_failed());
        assert!(
            wal.append(&sample()[2..3]).is_err(),
            "refused until repaired"
        );
        wal.repair().unwrap();
        let third = wal.append(&sample()[2..3]).unwrap();
        wal.wait(third).unwrap();
        assert!(wal.wait(second).is_err(), "a failed batch stays failed");
        wal.close();
        let (_wal, recovered) = open(dir.path(), false).unwrap();
        assert_eq!(recovered.ops, [sample()[0].clone(), sample()[2].clone()]);
    }

    fn change(table: &str) -> Batch {
        Batch {
            first: 0,
            table: Arc::from(table),
            columns: Arc::new(vec!["id".into()]),
            id_col: Some(0),
            what: crate::feed::What::Replaced,
        }
    }

    #[test]
    fn changes_are_published_once_durable_and_never_when_refused() {
        use super::super::disk::{Fault, Faults};
        let dir = tempfile::tempdir().unwrap();
        let faults = Faults::new();
        let (wal, recovered) =
            Wal::open(dir.path(), true, Disk::with_faults(faults.clone()), false).unwrap();
        assert_eq!(recovered.next_seq, 1);
        let feed = Feed::new(Default::default(), 0);
        wal.attach(feed.clone());
        let first = wal
            .append_changes(&sample()[..1], vec![change("a")])
            .unwrap();
        wal.wait(first).unwrap();
        assert_eq!(feed.last_seq(), 1, "published by the time it is durable");
        let at = faults.calls() + 1;
        faults.fail_at(at, Fault::Io, false);
        let second = wal
            .append_changes(&sample()[1..2], vec![change("b")])
            .unwrap();
        assert!(wal.wait(second).is_err());
        assert_eq!(feed.last_seq(), 1, "a refused write is never published");
        wal.repair().unwrap();
        let third = wal
            .append_changes(&sample()[2..3], vec![change("c")])
            .unwrap();
        wal.wait(third).unwrap();
        let read = feed.read(1, 10, None).unwrap();
        let tables: Vec<&str> = read.batches.iter().map(|b| &*b.table).collect();
        assert_eq!(tables, ["c"]);
        assert_eq!(
            read.batches[0].first, 3,
            "the refused number is not given again"
        );
        wal.close();
        drop(wal);
        // Numbers go on after a restart, and after a checkpoint's rotation
        // deletes the segments that held them.
        let (wal, recovered) = open(dir.path(), false).unwrap();
        assert_eq!(recovered.next_seq, 4);
        let next = wal.prepare_rotation().unwrap();
        let current = wal.rotate(next).unwrap();
        wal.wait(wal.mark().unwrap()).unwrap();
        for old in wal.segments_before(current).unwrap() {
            std::fs::remove_file(old).unwrap();
        }
        wal.close();
        drop(wal);
        let (_wal, recovered) = open(dir.path(), false).unwrap();
        assert_eq!(recovered.next_seq, 4);
    }

    /// A log with one durable batch, a next segment prepared, and the log
    /// thread held inside the fsync of a second batch (returned with it).
    fn held_in_flight(
        dir: &Path,
    ) -> (
        Arc<Wal>,
        Arc<super::super::disk::Faults>,
        Option<NextSegment>,
        Lsn,
    ) {
        use super::super::disk::{Call, Faults};
        let faults = Faults::new();
        let (wal, _) = Wal::open(dir, true, Disk::with_faults(faults.clone()), false).unwrap();
        let ops = sample();
        wal.wait(wal.append(&ops[..1]).unwrap()).unwrap();
        let next = wal.prepare_rotation().unwrap();
        assert!(next.is_some(), "the segment holds a change");
        faults.hold_next(Call::Sync);
        let second = wal.append(&ops[1..2]).unwrap();
        while !faults.holding() {
            std::thread::yield_now();
        }
        (wal, faults, next, second)
    }

    #[test]
    fn a_rotation_while_a_batch_is_written_waits_for_no_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let ops = sample();
        let (wal, faults, next, second) = held_in_flight(dir.path());
        let current = wal.rotate(next).unwrap();
        assert_eq!(current, 2);
        assert_eq!(wal.segment(), 1, "the batch in flight stays in its segment");
        let third = wal.append(&ops[2..3]).unwrap();
        faults.release();
        wal.wait(second).unwrap();
        wal.wait(third).unwrap();
        assert_eq!(wal.segment(), 2);
        wal.wait(wal.mark().unwrap()).unwrap();
        let old = wal.segments_before(current).unwrap();
        assert_eq!(old, [segment_path(dir.path(), 1)]);
        wal.close();
        drop(wal);
        let in_segment = |n| {
            let bytes = std::fs::read(segment_path(dir.path(), n)).unwrap();
            let start = records_start(&bytes, n).unwrap();
            decode(&bytes[start..])
                .ops
                .into_iter()
                .filter(|op| !matches!(op, Op::Seq { .. }))
                .collect::<Vec<_>>()
        };
        assert_eq!(in_segment(1), ops[..2]);
        assert_eq!(in_segment(2), ops[2..3]);
    }

    #[test]
    fn a_batch_failing_while_a_rotation_waits_undoes_it() {
        use super::super::disk::Fault;
        let dir = tempfile::tempdir().unwrap();
        let ops = sample();
        let (wal, faults, next, second) = held_in_flight(dir.path());
        // The held fsync fails once let go.
        faults.fail_at(faults.calls(), Fault::Io, false);
        assert_eq!(wal.rotate(next).unwrap(), 2);
        faults.release();
        assert!(wal.wait(second).is_err());
        assert_eq!(wal.segment(), 1, "the rotation is undone");
        assert!(!segment_path(dir.path(), 2).exists());
        assert!(wal.mark().is_err(), "the checkpoint cannot drop a segment");
        wal.repair().unwrap();
        wal.wait(wal.append(&ops[2..3]).unwrap()).unwrap();
        let next = wal.prepare_rotation().unwrap();
        assert!(next.is_some(), "the next checkpoint rotates again");
        assert_eq!(wal.rotate(next).unwrap(), 2);
        wal.wait(wal.mark().unwrap()).unwrap();
        wal.close();
        drop(wal);
        let (_wal, recovered) = open(dir.path(), false).unwrap();
        assert_eq!(recovered.ops, [ops[0].clone(), ops[2].clone()]);
    }
}
