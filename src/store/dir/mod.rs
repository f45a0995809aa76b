//! [`DirStore`]: the [`Store`] over a data directory of CSV files.
//!
//! Tables live in memory, each behind its own lock; that is the read path.
//! A write changes the table in memory, appends the change to the
//! write-ahead log under the table's lock (so the log's order is the
//! memory's order), releases the lock and waits for the log's fsync before
//! it is acknowledged. Concurrent writes share fsyncs (group commit).
//! A checkpoint, after writes settle, when the log grows, and at shutdown,
//! rewrites the changed tables' CSV files atomically and drops the log
//! segments they covered. At start, the log is replayed over the files.
//!
//! Files added, edited or removed by someone else are noticed by the next
//! write, and by reads within `Options::file_check` (size, modification
//! time, inode: a read looks at the file at most that often). A table with no changes pending
//! is reloaded; one with changes pending keeps them (logged whole first, so
//! no crash can lose them), and the edited file is set aside
//! (`<name>.csv.conflict-<time>`), never overwritten. The log names the file
//! each table's logged changes apply to (by a hash of its bytes), so that a
//! hand edit made while the server was down is recognised at recovery too.
//!
//! When the log cannot be written, memory may hold changes that will never
//! be durable: the store then refuses every request (503) until it has cut
//! the log back to its last durable byte and rebuilt memory from disk, as a
//! restart would. It never serves, nor writes into a CSV file, a change
//! that was refused.
//!
//! This module holds the store itself: [`DirStore`], its opening and start,
//! and the [`Store`] methods over it. Its parts live beside it: `state`
//! (a table's state and freshness against its file), `writes` (the write
//! path), `recovery` (replaying the log), `bases` (the engine's copies of
//! table files), `rebuild` (after a log failure) and `checkpoint`. The
//! [`Store`] methods here must never change a table but through the write
//! path, nor write a table's file but through a checkpoint.

mod bases;
mod checkpoint;
mod rebuild;
mod recovery;
mod schemas;
mod singular;
mod state;
mod writes;

use checkpoint::{checkpointer, Retry};
use schemas::{check_fields, check_records, meta_ok};
use state::{broken_or_missing, loaded, loaded_mut, Content, TableState};
use writes::change;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use super::disk::Disk;
use super::file::{self, Layout, Stamp};
use super::names::{self, Names};
use super::table::{validate_id, Table};
use super::wal::{Op, Wal};
use super::{
    validate_table_name, Error, Expect, Fields, Records, Result, Row, RowView, SchemaView,
    Selected, Snapshot, Store, StoreStats, TableInfo, Written,
};
use crate::feed::{Feed, Op as FeedOp, Retention, RowChange, What};
use crate::query::{Snapshots, Views};
use crate::store::schema::Types;
use serde_json::Value;

/// How the store makes writes durable.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// fsync the log before acknowledging a write. Off only for measuring
    /// what durability costs: a crash may then lose acknowledged writes.
    pub sync: bool,
    /// Checkpoint once no write came for this long.
    pub settle: Duration,
    /// Checkpoint once the log's current segment holds this many bytes.
    pub max_log_bytes: u64,
    /// Start even when the log is damaged, with what can be read: damaged
    /// segments are moved aside, what could not be applied is reported.
    pub salvage: bool,
    /// Serve without writing anything to the directory (not even the lock
    /// or the log), as a read-only server on a read-only mount must.
    pub read_only: bool,
    /// How much of the change feed is kept.
    pub changes: Retention,
    /// How often, at most, a read looks at a table's file for a hand edit
    /// (zero: on every read). Every write looks first, whatever this is.
    pub file_check: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            sync: true,
            // Long enough that a burst of writes costs one rewrite, short
            // enough that the CSV files a person opens are fresh.
            settle: Duration::from_secs(1),
            // 64 MiB of log replays in well under a second at start.
            max_log_bytes: 64 << 20,
            salvage: false,
            read_only: false,
            changes: Retention::default(),
            // A stat() costs about as much as the rest of a read from
            // memory; once every 20 ms it costs nothing, and an edit is
            // still seen long before a person could switch windows.
            file_check: Duration::from_millis(20),
        }
    }
}

/// The store over one data directory.
pub struct DirStore {
    dir: PathBuf,
    id_column: String,
    options: Options,
    disk: Disk,
    /// Tables seen so far. The map's lock is held only to find a slot; each
    /// slot's lock guards one table, so tables never wait for each other.
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    wal: Arc<Wal>,
    /// Writers hold it shared while they change memory and append to the
    /// log; a checkpoint holds it exclusively for the moment it lists the
    /// tables with changes and starts a new log segment (it copies each
    /// table afterwards, under that table's read lock), a rebuild for its
    /// duration.
    world: RwLock<()>,
    /// One checkpoint (or rebuild) at a time.
    checkpointing: Mutex<()>,
    /// Whether any table has changes not yet in its file.
    any_dirty: AtomicBool,
    /// Checkpoints completed.
    checkpoints: AtomicU64,
    /// Milliseconds since `started` of the last write.
    last_write_ms: AtomicU64,
    started: Instant,
    /// Set while memory may hold a change that was refused: every request
    /// is refused until memory is rebuilt from disk. The reason is kept
    /// beside it for the answer.
    unavailable: AtomicBool,
    unavailable_reason: Mutex<Option<String>>,
    /// The log's failure count memory was last rebuilt after: reads wait
    /// for a rebuild after every failure.
    rebuilt_after: AtomicU64,
    /// Backoff for checkpoints and rebuilds that fail.
    retry: Mutex<Retry>,
    /// Which files are tables, under which names.
    names: Names,
    /// The engine's copies of table files, by table and hash of their
    /// bytes: what logged changes build on, kept where a person's edit of
    /// the table file cannot reach them (`.csvd/base/`).
    bases: Mutex<HashSet<(String, u64)>>,
    /// The tables as queries see them, kept between reads.
    views: Views,
    /// Every change, once durable (published by the log).
    feed: Arc<Feed>,
    /// Which tables are kept as one object (`.csvd/singular.json`).
    singulars: singular::Marks,
    /// Holds the data directory against a second server (shared by
    /// read-only servers, when the lock file can be opened at all).
    _lock: Option<File>,
}

#[derive(Default)]
struct Slot {
    state: RwLock<TableState>,
    /// When a read last found the table's file as its state expects
    /// (microseconds since the store started, plus one; zero: never, or
    /// the state has changed since). Set under the read lock, cleared
    /// under the write lock.
    checked: AtomicU64,
}

impl Slot {
    /// The state's write lock. Whoever changes the state may change what
    /// it expects of the file: the next read looks at the file again.
    fn write(&self) -> RwLockWriteGuard<'_, TableState> {
        let guard = write(&self.state);
        self.checked.store(0, Ordering::Release);
        guard
    }
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl DirStore {
    /// Opens (creating if needed) a data directory on the real file system.
    pub fn open(dir: &Path, id_column: &str, options: Options) -> io::Result<Arc<DirStore>> {
        DirStore::open_on(dir, id_column, options, Disk::real())
    }

    /// Opens a data directory through `disk`: takes the directory's lock,
    /// removes temporary files a crash left, replays the log over the CSV
    /// files, checkpoints, and starts the background checkpointer. Refuses
    /// (with the file, offset and what was expected) when the log is damaged
    /// anywhere but its torn tail, unless `options.salvage` is set.
    pub fn open_on(
        dir: &Path,
        id_column: &str,
        options: Options,
        disk: Disk,
    ) -> io::Result<Arc<DirStore>> {
        if options.read_only {
            return DirStore::open_read_only(dir, id_column, options, disk);
        }
        disk.create_dir_all(dir)?;
        let meta_dir = dir.join(".csvd");
        disk.create_dir_all(&meta_dir)?;
        // The lock comes first: a second server must not touch anything of
        // the first one's, not even its temporary files.
        let lock = File::create(meta_dir.join("lock"))?;
        lock.try_lock().map_err(|_| {
            io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("another csvd is already serving {}", dir.display()),
            )
        })?;
        for (name, path) in disk.list(dir)? {
            if file::is_temp(&name) && path.is_file() {
                tracing::warn!(file = %path.display(), "removing a temporary file left by an interrupted write");
                disk.remove_file(&path)?;
            }
        }
        let (wal, recovered) = Wal::open(&meta_dir, options.sync, disk.clone(), options.salvage)?;
        let store = DirStore::new(dir, id_column, options, disk, wal, Some(lock));
        store.start(recovered)?;
        match store.checkpoint() {
            Ok(failures) if failures.is_empty() => {}
            Ok(failures) => store.retry_later(&failures.join("; ")),
            // The disk may be full: serve anyway; the checkpoint retries.
            Err(err) => store.retry_later(&err.to_string()),
        }
        let weak = Arc::downgrade(&store);
        std::thread::Builder::new()
            .name("csvd-checkpoint".into())
            .spawn(move || checkpointer(weak))?;
        Ok(store)
    }

    /// Opens a data directory to serve it without writing a byte: no lock
    /// file, log segment or temporary file is created or removed, and the
    /// log is replayed into memory only. The lock is taken shared when its
    /// file exists, so no read-write server starts meanwhile (and none is
    /// running: its changes would not be seen).
    fn open_read_only(
        dir: &Path,
        id_column: &str,
        options: Options,
        disk: Disk,
    ) -> io::Result<Arc<DirStore>> {
        if !dir.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "there is no data directory {} (a read-only server does not create one)",
                    dir.display()
                ),
            ));
        }
        let lock_path = dir.join(".csvd").join("lock");
        let lock = match File::open(&lock_path) {
            Ok(file) => match file.try_lock_shared() {
                Ok(()) => {
                    tracing::info!(lock = %lock_path.display(), "read-only: holding the directory's lock shared, so no read-write csvd starts on it meanwhile");
                    Some(file)
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WouldBlock,
                        format!(
                            "a csvd serving read-write holds {}: a read-only server beside it would not see its changes",
                            dir.display()
                        ),
                    ))
                }
                Err(std::fs::TryLockError::Error(err)) => {
                    tracing::warn!(lock = %lock_path.display(), "read-only: cannot lock the directory ({err}); make sure no read-write csvd serves it");
                    None
                }
            },
            Err(_) => {
                tracing::info!(
                    "read-only: no lock taken ({} cannot be opened; nothing is written); make sure no read-write csvd serves this directory",
                    lock_path.display()
                );
                None
            }
        };
        let (wal, recovered) = Wal::read_only(&dir.join(".csvd"), disk.clone(), options.salvage)?;
        let store = DirStore::new(dir, id_column, options, disk, wal, lock);
        store.start(recovered)?;
        Ok(store)
    }

    fn new(
        dir: &Path,
        id_column: &str,
        options: Options,
        disk: Disk,
        wal: Arc<Wal>,
        lock: Option<File>,
    ) -> Arc<DirStore> {
        let feed = Feed::new(options.changes, wal.next_seq() - 1);
        wal.attach(feed.clone());
        Arc::new(DirStore {
            views: Views::default(),
            feed,
            dir: dir.to_path_buf(),
            id_column: id_column.to_string(),
            options,
            disk,
            slots: Mutex::new(HashMap::new()),
            wal,
            world: RwLock::new(()),
            checkpointing: Mutex::new(()),
            any_dirty: AtomicBool::new(false),
            checkpoints: AtomicU64::new(0),
            last_write_ms: AtomicU64::new(0),
            started: Instant::now(),
            unavailable: AtomicBool::new(false),
            unavailable_reason: Mutex::new(None),
            rebuilt_after: AtomicU64::new(0),
            retry: Mutex::new(Retry::default()),
            names: Names::default(),
            bases: Mutex::new(HashSet::new()),
            singulars: singular::Marks::new(dir),
            _lock: lock,
        })
    }

    /// Finds the tables' files and replays the log into memory.
    fn start(&self, recovered: super::wal::Recovered) -> io::Result<()> {
        // Before replaying: a logged table may live in a file of another name.
        self.names.scan(&self.dir)?;
        self.list_bases();
        if !self.options.read_only {
            self.settle_held_files();
            file::empty_free_dir(&self.dir);
        }
        let mut salvaged = recovered.salvaged;
        let count = recovered.ops.len();
        salvaged.extend(self.recover(recovered.ops, self.options.salvage)?);
        if count > 0 {
            tracing::info!(records = count, "replayed the write-ahead log");
        }
        if !salvaged.is_empty() {
            // Keep every segment as it was: the recovery checkpoint would
            // delete what could not be applied.
            if !self.options.read_only {
                self.keep_segments()?;
            }
            for line in &salvaged {
                tracing::error!("salvage: {line}");
            }
        }
        Ok(())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.names.path(&self.dir, name)
    }

    /// A crash in the instant of a checkpoint's rename can leave the file
    /// it replaced under its held name: the engine's own older file (one
    /// it keeps a copy of) goes; anything else is a person's and is kept
    /// as a conflict file.
    fn settle_held_files(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let Some(file) = file::held_for(&name) else {
                continue;
            };
            let path = entry.path();
            let ours = names::derive(file)
                .zip(file::hash_of(&self.disk, &path))
                .is_some_and(|key| {
                    self.bases
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .contains(&key)
                });
            let settled = if ours {
                self.disk.remove_file(&path).map(|()| None)
            } else {
                file::set_aside_as(&self.disk, &path, &self.dir.join(file)).map(Some)
            };
            match settled {
                Ok(Some(kept)) => tracing::error!(
                    file = %path.display(),
                    "a file replaced while a checkpoint was interrupted is not the engine's own: kept as {}",
                    kept.display()
                ),
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(file = %path.display(), "cannot settle a held file: {err}")
                }
            }
        }
    }

    /// The slot of a table; created only when `create` is set or the file
    /// exists, so requests for absent tables cost no memory.
    fn slot(&self, name: &str, create: bool) -> Result<Arc<Slot>> {
        validate_table_name(name)?;
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = slots.get(name) {
            return Ok(slot.clone());
        }
        let found = disk_stamp(&self.path(name)).is_some() || self.names.discover(&self.dir, name);
        if !create && !found {
            return Err(Error::NoTable(name.to_string()));
        }
        let slot = Arc::new(Slot::default());
        slots.insert(name.to_string(), slot.clone());
        Ok(slot)
    }

    fn has_slot(&self, name: &str) -> bool {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(name)
    }

    /// Refuses while memory may hold a change that was not made durable.
    fn available(&self) -> Result<()> {
        self.readable()?;
        match self.wal.failure() {
            None => Ok(()),
            Some(failure) => Err(Error::Unavailable(format!(
                "{failure}; reads go on, but writes are refused until the log can be written again (csvd retries by itself)"
            ))),
        }
    }

    /// Refuses reads while memory may hold a change that was not made
    /// durable: from a log failure until memory is rebuilt from disk.
    pub(super) fn readable(&self) -> Result<()> {
        let rebuilt = self.rebuilt_after.load(Ordering::Acquire) == self.wal.failures();
        if !self.unavailable.load(Ordering::Acquire) && rebuilt {
            return Ok(());
        }
        let reason = self
            .unavailable_reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .or_else(|| self.wal.failure())
            .unwrap_or_else(|| "recovering from a storage failure".into());
        Err(Error::Unavailable(format!(
            "{reason}; csvd refuses requests until it has rebuilt its tables from disk (it retries by itself)"
        )))
    }

    fn set_unavailable(&self, reason: String) {
        *self
            .unavailable_reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(reason);
        self.unavailable.store(true, Ordering::Release);
    }

    /// Stops the log as a crash would: nothing more is written, no file is
    /// brought up to date.
    #[cfg(test)]
    pub fn crash(&self) {
        self.wal.close();
    }

    /// Brings every file up to date and closes the log, before the process
    /// exits: [`Store::flush`], which runs it as slow work.
    fn flush_now(&self) -> Result<()> {
        if self.options.read_only {
            return Ok(());
        }
        if self.unavailable.load(Ordering::Acquire) || self.wal.is_failed() {
            // Memory may hold refused changes: rebuild before writing files.
            if let Err(err) = self.rebuild() {
                self.wal.close();
                return Err(Error::Io(io::Error::other(format!(
                    "could not recover from a storage failure: {err}. Every acknowledged write is kept in the write-ahead log and is applied at the next start"
                ))));
            }
        }
        let result = self.checkpoint();
        self.wal.close();
        let failures = match result {
            Ok(failures) if failures.is_empty() => return Ok(()),
            Ok(failures) => failures.join("; "),
            Err(err) => err.to_string(),
        };
        Err(Error::Io(io::Error::other(format!(
            "could not bring every CSV file up to date: {failures}. Every acknowledged write is kept in the write-ahead log and is applied at the next start"
        ))))
    }
}

/// Runs work that may take long (loading a large file) so that, on an async
/// worker thread, the runtime first hands that worker's other tasks to
/// another thread. Elsewhere it just runs it.
/// The feed's record of a row written by `put_row` or `patch_row`.
fn row_change(
    name: &str,
    state: &TableState,
    written: &Written,
    before: Option<Row>,
) -> crate::feed::Batch {
    let op = if before.is_some() {
        FeedOp::Update
    } else {
        FeedOp::Insert
    };
    let after = written.rows.first().cloned();
    let table = loaded(name, state).ok();
    change(
        name,
        table,
        What::Rows(vec![RowChange { op, before, after }]),
    )
}

/// Refuses a write whose text the table's file cannot hold in its
/// encoding, before anything changes.
fn encodable<'a>(
    name: &str,
    state: &TableState,
    texts: impl IntoIterator<Item = &'a str>,
) -> Result<()> {
    if state.layout.encoding == encoding_rs::UTF_8 {
        return Ok(());
    }
    for text in texts {
        if let Some(c) = state.layout.unencodable(text) {
            return Err(Error::Unencodable(format!(
                "the file of table {name:?} is in {}, which has no {c:?} (U+{:04X}): the value {text:?} cannot be written; leave it out, or convert the file to UTF-8",
                state.layout.encoding_name(),
                u32::from(c)
            )));
        }
    }
    Ok(())
}

/// The names and values of fields, as text to write.
fn fields_text(fields: &Fields) -> impl Iterator<Item = &str> {
    fields.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()])
}

/// Row `id` of a table, as [`Store::row`] answers it.
fn row_view(table: &Table, id: &str) -> Result<RowView> {
    let row = table.get(id).ok_or_else(|| Error::NoRow(id.to_string()))?;
    Ok(RowView {
        columns: table.columns().clone(),
        id_col: table.id_col(),
        row: row.clone(),
        version: table.row_version(row),
        modified: table.modified,
    })
}

fn slow<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

fn disk_stamp(path: &Path) -> Option<Stamp> {
    // Only regular files are tables: a symlink is never followed.
    let meta = fs::symlink_metadata(path).ok()?;
    meta.is_file().then(|| Stamp::of(&meta))
}

#[async_trait::async_trait]
impl Snapshots for DirStore {
    async fn read(&self, name: &str) -> Result<Snapshot> {
        self.with_read(name, |state| {
            let table = loaded(name, state)?;
            Ok(Snapshot {
                columns: table.columns().clone(),
                id_col: table.id_col(),
                rows: table.rows(),
                version: table.version,
                modified: table.modified,
            })
        })
    }

    async fn version(&self, name: &str) -> Result<u64> {
        self.with_read(name, |state| Ok(loaded(name, state)?.version))
    }
}

#[async_trait::async_trait]
impl Store for DirStore {
    async fn tables(&self) -> Result<Vec<TableInfo>> {
        let mut names: BTreeSet<String> = self.names.scan(&self.dir)?.into_iter().collect();
        // Tables created since the last checkpoint have no file yet.
        names.extend(
            self.slots
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .keys()
                .cloned(),
        );
        let mut infos = Vec::with_capacity(names.len());
        for name in names {
            match self.with_read(&name, |state| Ok(self.info(&name, state))) {
                Ok(Some(info)) => infos.push(info),
                Ok(None) | Err(Error::NoTable(_)) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(infos)
    }

    async fn select(&self, name: &str, query: &str) -> Result<Selected> {
        self.views.select(self, name, query).await
    }

    async fn row(&self, name: &str, id: &str) -> Result<RowView> {
        self.with_read(name, |state| row_view(loaded(name, state)?, id))
    }

    async fn read_row(&self, name: &str, id: &str) -> Result<super::RowRead> {
        if self.singulars.get(name).is_ok_and(|mark| mark.is_some()) {
            return Ok(super::RowRead::Singular);
        }
        self.with_read(name, |state| {
            let view = row_view(loaded(name, state)?, id)?;
            Ok(super::RowRead::Row(view, state.meta.types()))
        })
    }

    async fn insert(&self, name: &str, records: Records, expect: &Expect) -> Result<Written> {
        self.write(name, true, |state, ops, changes| {
            meta_ok(name, state)?;
            let version = match &state.content {
                Content::Loaded(table) => Some(table.version),
                Content::Absent => None,
                Content::Broken(_) => return Err(broken_or_missing(name, &state.content)),
            };
            expect.check(version)?;
            encodable(name, state, records.columns.iter().map(String::as_str))?;
            let width = records.columns.len();
            encodable(
                name,
                state,
                records.rows.iter().flat_map(|r| r.cells(width)),
            )?;
            check_records(state, &records, &self.id_column)?;
            let written = self.change_rows(name, state, ops, |table, id_column| {
                table.insert(records, id_column)
            })?;
            let table = loaded(name, state).ok();
            changes.push(change(name, table, What::Inserted(written.rows.clone())));
            Ok(written)
        })?
        .durable()
        .await
    }

    async fn put_row(
        &self,
        name: &str,
        id: &str,
        record: Fields,
        expect: &Expect,
    ) -> Result<Written> {
        validate_id(id)?;
        self.write(name, true, |state, ops, changes| {
            meta_ok(name, state)?;
            let before = match &state.content {
                Content::Loaded(table) => table.get(id).cloned(),
                Content::Absent => None,
                Content::Broken(_) => return Err(broken_or_missing(name, &state.content)),
            };
            let current = match &state.content {
                Content::Loaded(table) => before.as_ref().map(|row| table.row_version(row)),
                _ => None,
            };
            expect.check(current)?;
            encodable(name, state, fields_text(&record))?;
            check_fields(state, &record, id, true, &self.id_column)?;
            let written = self.change_rows(name, state, ops, |table, id_column| {
                table.put(id, &record, id_column)
            })?;
            changes.push(row_change(name, state, &written, before));
            Ok(written)
        })?
        .durable()
        .await
    }

    async fn patch_row(
        &self,
        name: &str,
        id: &str,
        record: Fields,
        expect: &Expect,
    ) -> Result<Written> {
        self.write(name, false, |state, ops, changes| {
            let table = loaded_mut(name, state)?;
            let row = table.get(id).ok_or_else(|| Error::NoRow(id.to_string()))?;
            expect.check(Some(table.row_version(row)))?;
            let before = Some(row.clone());
            encodable(name, state, fields_text(&record))?;
            check_fields(state, &record, id, false, &self.id_column)?;
            let written = self.change_rows(name, state, ops, |table, id_column| {
                table.patch(id, &record, id_column)
            })?;
            changes.push(row_change(name, state, &written, before));
            Ok(written)
        })?
        .durable()
        .await
    }

    async fn delete_row(&self, name: &str, id: &str, expect: &Expect) -> Result<()> {
        self.write(name, false, |state, ops, changes| {
            let table = loaded_mut(name, state)?;
            let row = table.get(id).ok_or_else(|| Error::NoRow(id.to_string()))?;
            expect.check(Some(table.row_version(row)))?;
            self.prepare(name, table, ops);
            let before = table.get(id).cloned();
            table.delete(id)?;
            let gone = RowChange {
                op: FeedOp::Delete,
                before,
                after: None,
            };
            changes.push(change(name, Some(table), What::Rows(vec![gone])));
            ops.push(Op::Delete {
                table: name.to_string(),
                ids: vec![id.to_string()],
            });
            Ok(())
        })?
        .durable()
        .await
    }

    async fn replace_table(
        &self,
        name: &str,
        records: Records,
        expect: &Expect,
    ) -> Result<(TableInfo, bool)> {
        self.write(name, true, |state, ops, changes| {
            meta_ok(name, state)?;
            // A broken file may be replaced: that is how a user repairs it.
            let current = match &state.content {
                Content::Loaded(table) => Some(table.version),
                Content::Broken(_) => Some(0),
                Content::Absent => None,
            };
            expect.check(current)?;
            if matches!(state.content, Content::Loaded(_)) {
                encodable(name, state, records.columns.iter().map(String::as_str))?;
                let width = records.columns.len();
                encodable(
                    name,
                    state,
                    records.rows.iter().flat_map(|r| r.cells(width)),
                )?;
            } else {
                // A new file (or one replacing a broken file): comma-separated
                // UTF-8, or as the table's metadata declares.
                state.layout = state.meta.new_layout();
            }
            check_records(state, &records, &self.id_column)?;
            let table = Table::from_records(records, &self.id_column, current.unwrap_or(0))?;
            ops.push(Op::Replace {
                table: name.to_string(),
                columns: table.columns().to_vec(),
                rows: table.rows(),
            });
            changes.push(change(name, Some(&table), What::Replaced));
            state.content = Content::Loaded(table);
            let info = self
                .info(name, state)
                .ok_or_else(|| Error::NoTable(name.to_string()))?;
            Ok((info, current.is_none()))
        })?
        .durable()
        .await
    }

    async fn delete_table(&self, name: &str, expect: &Expect) -> Result<()> {
        self.write(name, false, |state, ops, changes| {
            let current = match &state.content {
                Content::Loaded(table) => Some(table.version),
                Content::Broken(_) => Some(0),
                Content::Absent => return Err(Error::NoTable(name.to_string())),
            };
            expect.check(current)?;
            self.forget_meta(name, state)?;
            changes.push(change(name, None, What::Dropped));
            ops.push(Op::Drop {
                table: name.to_string(),
            });
            state.content = Content::Absent;
            state.layout = Layout::default();
            Ok(())
        })?
        .durable()
        .await
    }

    async fn flush(&self) -> Result<()> {
        slow(|| self.flush_now())
    }

    async fn types(&self, name: &str) -> Types {
        // Asked for after a read or write of the table, which brought its
        // metadata up to date; a table not seen yet is looked at now.
        if self.has_slot(name) {
            self.types_now(name)
        } else {
            self.types_of(name)
        }
    }

    fn types_now(&self, name: &str) -> Types {
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned();
        slot.map(|slot| read(&slot.state).meta.types())
            .unwrap_or_default()
    }

    async fn schema(&self, name: &str) -> Result<SchemaView> {
        self.with_read(name, |state| self.view_of(name, state))
    }

    async fn put_schema(&self, name: &str, doc: Value, expect: &Expect) -> Result<SchemaView> {
        self.declare(name, doc, expect).await
    }

    async fn delete_schema(&self, name: &str, expect: &Expect) -> Result<()> {
        self.undeclare(name, expect).await
    }

    async fn record_json(&self, name: &str, columns: &[String]) -> Result<()> {
        self.note_json(name, columns).await
    }

    async fn singular(&self, table: &str) -> Result<Option<super::Singular>> {
        self.singulars.get(table)
    }

    async fn singulars(&self) -> Result<Vec<(String, super::Singular)>> {
        self.singulars.all()
    }

    async fn set_singular(&self, table: &str, singular: Option<super::Singular>) -> Result<()> {
        super::validate_table_name(table)?;
        if self.options.read_only {
            return Err(Error::Unavailable(
                "the data directory is served read-only".into(),
            ));
        }
        slow(|| self.singulars.set(table, singular))
    }

    fn feed(&self) -> &Arc<Feed> {
        &self.feed
    }

    async fn stats(&self) -> StoreStats {
        let (log_bytes, fsyncs) = self.wal.totals();
        let counter = |name, help, value| super::Counter { name, help, value };
        StoreStats {
            counters: vec![
                counter(
                    "log_bytes_written_total",
                    "Bytes appended to the write-ahead log.",
                    log_bytes,
                ),
                counter(
                    "log_fsyncs_total",
                    "fsyncs of the write-ahead log (each covers a batch of writes).",
                    fsyncs,
                ),
                counter(
                    "checkpoints_total",
                    "Checkpoints that brought CSV files up to date.",
                    self.checkpoints.load(Ordering::Relaxed),
                ),
            ],
        }
    }
}
