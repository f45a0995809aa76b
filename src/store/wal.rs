//! The write-ahead log: row-level changes made durable before they are
//! acknowledged, with group commit.
//!
//! Writers append encoded records to a shared buffer (a memory copy, O(1) in
//! a table's size) and wait. One log thread takes everything buffered,
//! writes it and fsyncs once, then wakes every writer that batch covered:
//! many concurrent writes share one fsync, and a lone writer waits for just
//! one write and one fsync (no timer gathers batches).
//!
//! On disk the log is a series of segment files `.csvd/wal-NNNNNNNNNN.log`.
//! A checkpoint rotates to a new segment, brings the CSV files up to date,
//! then deletes the older segments. See `docs/storage.md` for the format.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use super::row::Row;

/// Frames larger than this are taken as corruption, not as data: no single
/// change is near it (bodies are limited far below).
const MAX_FRAME: usize = 1 << 30;
/// Bytes of a frame header: payload length and CRC-32C, both u32 LE.
const HEADER: usize = 8;

/// One logged change. Row changes are logged as their result (the whole
/// new row), so replaying a record is idempotent: it sets a state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// The table's header is now `columns`.
    Columns { table: String, columns: Vec<String> },
    /// Each row replaces the row with its id, or is appended.
    Put { table: String, rows: Vec<Arc<Row>> },
    /// These rows are gone.
    Delete { table: String, ids: Vec<String> },
    /// The table is now exactly this (also: created).
    Replace {
        table: String,
        columns: Vec<String>,
        rows: Vec<Arc<Row>>,
    },
    /// The table is gone.
    Drop { table: String },
}

impl Op {
    pub fn table(&self) -> &str {
        match self {
            Op::Columns { table, .. }
            | Op::Put { table, .. }
            | Op::Delete { table, .. }
            | Op::Replace { table, .. }
            | Op::Drop { table } => table,
        }
    }
}

/// Appends one framed record to `out`.
pub fn encode(op: &Op, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    let put_str = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    };
    let put_strs = |out: &mut Vec<u8>, items: &mut dyn Iterator<Item = &str>, count: usize| {
        out.extend_from_slice(&(count as u32).to_le_bytes());
        for s in items {
            put_str(out, s);
        }
    };
    let put_rows = |out: &mut Vec<u8>, rows: &[Arc<Row>]| {
        out.extend_from_slice(&(rows.len() as u32).to_le_bytes());
        for row in rows {
            put_strs(out, &mut row.cells(row.len()), row.len());
        }
    };
    let kind = match op {
        Op::Columns { .. } => 1u8,
        Op::Put { .. } => 2,
        Op::Delete { .. } => 3,
        Op::Replace { .. } => 4,
        Op::Drop { .. } => 5,
    };
    out.push(kind);
    put_str(out, op.table());
    match op {
        Op::Columns { columns, .. } => {
            put_strs(out, &mut columns.iter().map(String::as_str), columns.len())
        }
        Op::Put { rows, .. } => put_rows(out, rows),
        Op::Delete { ids, .. } => put_strs(out, &mut ids.iter().map(String::as_str), ids.len()),
        Op::Replace { columns, rows, .. } => {
            put_strs(out, &mut columns.iter().map(String::as_str), columns.len());
            put_rows(out, rows);
        }
        Op::Drop { .. } => {}
    }
    let payload_len = out.len() - start - HEADER;
    let crc = crc32c::crc32c(&out[start + HEADER..]);
    out[start..start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// What reading a log found.
#[derive(Debug, Default)]
pub struct Decoded {
    pub ops: Vec<Op>,
    /// Bytes that make up whole, valid records.
    pub valid_len: usize,
    /// Why reading stopped before the end, if it did.
    pub problem: Option<String>,
}

/// Reads records until the end or the first torn or corrupt one.
pub fn decode(bytes: &[u8]) -> Decoded {
    let mut decoded = Decoded::default();
    let mut at = 0;
    while at < bytes.len() {
        let Some(header) = bytes.get(at..at + HEADER) else {
            decoded.problem = Some(format!("torn record header at byte {at}"));
            break;
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len > MAX_FRAME {
            decoded.problem = Some(format!("impossible record length {len} at byte {at}"));
            break;
        }
        let Some(payload) = bytes.get(at + HEADER..at + HEADER + len) else {
            decoded.problem = Some(format!("torn record at byte {at} ({len} bytes announced)"));
            break;
        };
        if crc32c::crc32c(payload) != crc {
            decoded.problem = Some(format!("checksum mismatch in the record at byte {at}"));
            break;
        }
        match decode_payload(payload) {
            Some(op) => decoded.ops.push(op),
            None => {
                decoded.problem = Some(format!("malformed record at byte {at}"));
                break;
            }
        }
        at += HEADER + len;
        decoded.valid_len = at;
    }
    decoded
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

    fn rows(&mut self) -> Option<Vec<Arc<Row>>> {
        let count = self.u32()?;
        if count > self.bytes.len() / 4 {
            return None;
        }
        (0..count)
            .map(|_| self.strs().map(|cells| Arc::new(Row::from_cells(cells))))
            .collect()
    }
}

fn decode_payload(payload: &[u8]) -> Option<Op> {
    let mut r = Reader { bytes: payload };
    let kind = r.take(1)?[0];
    let table = r.str()?;
    let op = match kind {
        1 => Op::Columns {
            table,
            columns: r.strs()?,
        },
        2 => Op::Put {
            table,
            rows: r.rows()?,
        },
        3 => Op::Delete {
            table,
            ids: r.strs()?,
        },
        4 => Op::Replace {
            table,
            columns: r.strs()?,
            rows: r.rows()?,
        },
        5 => Op::Drop { table },
        _ => return None,
    };
    r.bytes.is_empty().then_some(op)
}

/// Position in the log: the number of batches appended before.
pub type Lsn = u64;

/// The log of one data directory.
pub struct Wal {
    dir: PathBuf,
    sync: bool,
    state: Mutex<State>,
    /// Wakes the log thread: records are pending (or the log closes).
    work: Condvar,
    /// Wakes blocking waiters: a batch became durable (or the log failed).
    /// Separate from `work` so an append never wakes the writers waiting
    /// for fsync.
    synced: Condvar,
    /// The same news for async waiters ([`Ticket`]).
    progress: tokio::sync::watch::Sender<Progress>,
    /// Totals for monitoring: bytes written and fsyncs.
    written: AtomicU64,
    syncs: AtomicU64,
}

/// How far the log is durable, as async waiters see it.
#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    durable: Lsn,
    failed: bool,
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
        let reached = progress
            .wait_for(|p| p.durable >= self.lsn || p.failed)
            .await
            .map(|p| p.durable >= self.lsn);
        match reached {
            Ok(true) => Ok(()),
            _ => Err(io::Error::other(
                self.wal
                    .lock()
                    .failed
                    .clone()
                    .unwrap_or_else(|| "the write-ahead log stopped".into()),
            )),
        }
    }
}

struct State {
    pending: Vec<u8>,
    /// Lsn of the last batch appended / made durable.
    appended: Lsn,
    durable: Lsn,
    /// The segment being written; `None` while the log thread writes to it.
    file: Option<File>,
    segment: u64,
    /// Bytes in the current segment, for the checkpoint trigger.
    segment_bytes: u64,
    failed: Option<String>,
    closing: bool,
}

impl Wal {
    /// Opens the log in `dir` and returns it with the records of the
    /// segments found there (to replay), and the paths of those segments.
    pub fn open(dir: &Path, sync: bool) -> io::Result<(Arc<Wal>, Vec<Op>, Vec<PathBuf>)> {
        fs::create_dir_all(dir)?;
        let mut segments = list_segments(dir)?;
        segments.sort();
        let mut ops = Vec::new();
        let mut paths = Vec::new();
        let mut last = 0;
        for (number, path) in &segments {
            last = *number;
            paths.push(path.clone());
            let bytes = fs::read(path)?;
            let decoded = decode(&bytes);
            ops.extend(decoded.ops);
            if let Some(problem) = decoded.problem {
                let dropped = bytes.len() - decoded.valid_len;
                tracing::warn!(
                    segment = %path.display(),
                    "write-ahead log: {problem}; dropping the last {dropped} bytes (a write that was never acknowledged)"
                );
                break;
            }
        }
        let segment = last + 1;
        let file = create_segment(dir, segment)?;
        let wal = Arc::new(Wal {
            dir: dir.to_path_buf(),
            sync,
            state: Mutex::new(State {
                pending: Vec::new(),
                appended: 0,
                durable: 0,
                file: Some(file),
                segment,
                segment_bytes: 0,
                failed: None,
                closing: false,
            }),
            work: Condvar::new(),
            synced: Condvar::new(),
            progress: tokio::sync::watch::Sender::new(Progress::default()),
            written: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
        });
        let worker = wal.clone();
        std::thread::Builder::new()
            .name("csvd-wal".into())
            .spawn(move || worker.run())?;
        Ok((wal, ops, paths))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues records; they are durable once [`Wal::wait`] returns for the
    /// returned position.
    pub fn append(&self, ops: &[Op]) -> io::Result<Lsn> {
        let mut state = self.lock();
        if let Some(failure) = &state.failed {
            return Err(io::Error::other(failure.clone()));
        }
        for op in ops {
            encode(op, &mut state.pending);
        }
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
        loop {
            if state.durable >= lsn {
                return Ok(());
            }
            if let Some(failure) = &state.failed {
                return Err(io::Error::other(failure.clone()));
            }
            state = self
                .synced
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Bytes written and fsyncs done since the log was opened.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.written.load(Ordering::Relaxed),
            self.syncs.load(Ordering::Relaxed),
        )
    }

    /// Bytes written to the current segment.
    pub fn segment_bytes(&self) -> u64 {
        self.lock().segment_bytes
    }

    /// Waits until everything appended is durable, then starts a new
    /// segment; returns the paths of all older segments. Appends must be
    /// held off by the caller for the duration.
    pub fn rotate(&self) -> io::Result<Vec<PathBuf>> {
        let mut state = self.lock();
        while state.durable < state.appended || state.file.is_none() {
            if let Some(failure) = &state.failed {
                return Err(io::Error::other(failure.clone()));
            }
            state = self
                .synced
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let next = state.segment + 1;
        let file = create_segment(&self.dir, next)?;
        state.file = Some(file);
        state.segment = next;
        state.segment_bytes = 0;
        drop(state);
        let old = list_segments(&self.dir)?
            .into_iter()
            .filter(|(number, _)| *number < next)
            .map(|(_, path)| path)
            .collect();
        Ok(old)
    }

    /// Stops the log thread once everything appended is durable.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closing = true;
        self.work.notify_one();
    }

    /// The log thread: write and fsync whatever is pending, as one batch.
    fn run(&self) {
        loop {
            let mut state = self.lock();
            while state.pending.is_empty() && !state.closing {
                state = self
                    .work
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if state.pending.is_empty() {
                return;
            }
            let batch = std::mem::take(&mut state.pending);
            let upto = state.appended;
            let Some(mut file) = state.file.take() else {
                return;
            };
            drop(state);
            let result =
                file.write_all(&batch)
                    .and_then(|()| if self.sync { file.sync_data() } else { Ok(()) });
            let mut state = self.lock();
            state.file = Some(file);
            match result {
                Ok(()) => {
                    self.written
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    if self.sync {
                        self.syncs.fetch_add(1, Ordering::Relaxed);
                    }
                    state.durable = upto;
                    state.segment_bytes += batch.len() as u64;
                    self.progress.send_replace(Progress {
                        durable: upto,
                        failed: false,
                    });
                }
                Err(err) => {
                    tracing::error!("write-ahead log failed: {err}; refusing further writes");
                    state.failed = Some(format!("the write-ahead log failed: {err}"));
                    self.progress.send_replace(Progress {
                        durable: state.durable,
                        failed: true,
                    });
                }
            }
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

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("wal-{number:010}.log"))
}

fn create_segment(dir: &Path, number: u64) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(segment_path(dir, number))?;
    File::open(dir)?.sync_all()?;
    Ok(file)
}

fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let number = name
            .to_str()
            .and_then(|n| n.strip_prefix("wal-"))
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(number) = number {
            segments.push((number, entry.path()));
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
                rows: vec![
                    Arc::new(Row::from_cells(["1", "x,\"y\"\n"])),
                    Arc::new(Row::from_cells(["2"])),
                ],
            },
            Op::Delete {
                table: "t".into(),
                ids: vec!["1".into()],
            },
            Op::Replace {
                table: "u".into(),
                columns: vec!["id".into()],
                rows: vec![Arc::new(Row::from_cells(["é"]))],
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

    #[test]
    fn torn_and_corrupt_tails_are_dropped() {
        let mut bytes = Vec::new();
        for op in sample() {
            encode(&op, &mut bytes);
        }
        let whole = bytes.len();
        for cut in 1..whole {
            let decoded = decode(&bytes[..cut]);
            assert!(decoded.valid_len <= cut);
            assert!(sample().starts_with(&decoded.ops));
        }
        let mut flipped = bytes.clone();
        flipped[whole - 2] ^= 0x40;
        let decoded = decode(&flipped);
        assert_eq!(decoded.ops.len(), sample().len() - 1);
        assert!(decoded.problem.unwrap().contains("checksum"));
    }

    #[test]
    fn group_commit_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, ops, _) = Wal::open(dir.path(), true).unwrap();
        assert!(ops.is_empty());
        let lsns: Vec<Lsn> = sample()
            .iter()
            .map(|op| wal.append(std::slice::from_ref(op)).unwrap())
            .collect();
        wal.wait(*lsns.last().unwrap()).unwrap();
        wal.close();
        let (_wal, ops, segments) = Wal::open(dir.path(), true).unwrap();
        assert_eq!(ops, sample());
        assert_eq!(segments.len(), 1);
    }
}
