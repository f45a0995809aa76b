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
//! Files added, edited or removed by someone else are noticed on the next
//! access (size, modification time, inode). A table with no changes pending
//! is reloaded; one with changes pending keeps them, and the edited file is
//! set aside (`<name>.csv.conflict-<time>`), never overwritten. A file that
//! is not valid CSV is reported and served as an error; only an explicit
//! replace or delete of that table rewrites it.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::{Duration, Instant, SystemTime};

use super::file::{self, Layout, Stamp};
use super::table::{validate_id, Applied, Table};
use super::wal::{Op, Wal};
use super::{
    validate_table_name, Error, Expect, Fields, Pending, Result, RowView, Snapshot, Store,
    StoreStats, TableInfo, Written,
};

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
        }
    }
}

/// The store over one data directory.
pub struct DirStore {
    dir: PathBuf,
    id_column: String,
    options: Options,
    /// Tables seen so far. The map's lock is held only to find a slot; each
    /// slot's lock guards one table, so tables never wait for each other.
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    wal: Arc<Wal>,
    /// Writers hold it shared while they change memory and append to the
    /// log; a checkpoint holds it exclusively for the moment it takes its
    /// snapshots and starts a new log segment.
    world: RwLock<()>,
    /// One checkpoint at a time.
    checkpointing: Mutex<()>,
    /// Whether any table has changes not yet in its file.
    any_dirty: AtomicBool,
    /// Checkpoints completed.
    checkpoints: AtomicU64,
    /// Milliseconds since `started` of the last write.
    last_write_ms: AtomicU64,
    started: Instant,
    /// Holds the data directory against a second server.
    _lock: File,
}

/// What a checkpoint writes for one table: its header and rows, or
/// nothing for a table that was dropped.
type TableImage = Option<(Arc<Vec<String>>, Vec<Arc<super::Row>>)>;

#[derive(Default)]
struct Slot {
    state: RwLock<State>,
}

#[derive(Default)]
struct State {
    content: Content,
    /// The file as we last read or wrote it; `None` when there is none.
    stamp: Option<Stamp>,
    layout: Layout,
    /// Memory holds changes the file does not have yet.
    dirty: bool,
    /// Counts writes, so a checkpoint knows whether it caught the latest.
    generation: u64,
}

#[derive(Default)]
enum Content {
    #[default]
    Absent,
    Loaded(Table),
    Broken(String),
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl DirStore {
    /// Opens (creating if needed) a data directory: removes temporary files
    /// a crash left, replays the log over the CSV files, checkpoints, and
    /// starts the background checkpointer.
    pub fn open(dir: &Path, id_column: &str, options: Options) -> io::Result<Arc<DirStore>> {
        fs::create_dir_all(dir)?;
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_name().to_str().is_some_and(file::is_temp) {
                tracing::warn!(file = %entry.path().display(), "removing a temporary file left by an interrupted write");
                fs::remove_file(entry.path())?;
            }
        }
        let meta_dir = dir.join(".csvd");
        fs::create_dir_all(&meta_dir)?;
        let lock = File::create(meta_dir.join("lock"))?;
        lock.try_lock().map_err(|_| {
            io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("another csvd is already serving {}", dir.display()),
            )
        })?;
        let (wal, ops, _) = Wal::open(&meta_dir, options.sync)?;
        let store = Arc::new(DirStore {
            dir: dir.to_path_buf(),
            id_column: id_column.to_string(),
            options,
            slots: Mutex::new(HashMap::new()),
            wal,
            world: RwLock::new(()),
            checkpointing: Mutex::new(()),
            any_dirty: AtomicBool::new(false),
            checkpoints: AtomicU64::new(0),
            last_write_ms: AtomicU64::new(0),
            started: Instant::now(),
            _lock: lock,
        });
        if !ops.is_empty() {
            let count = ops.len();
            for op in ops {
                store.replay(op);
            }
            tracing::info!(records = count, "replayed the write-ahead log");
        }
        store
            .checkpoint()
            .map_err(|e| io::Error::other(e.to_string()))?;
        let weak = Arc::downgrade(&store);
        std::thread::Builder::new()
            .name("csvd-checkpoint".into())
            .spawn(move || checkpointer(weak))?;
        Ok(store)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.csv"))
    }

    /// The slot of a table; created only when `create` is set or the file
    /// exists, so requests for absent tables cost no memory.
    fn slot(&self, name: &str, create: bool) -> Result<Arc<Slot>> {
        validate_table_name(name)?;
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = slots.get(name) {
            return Ok(slot.clone());
        }
        if !create && disk_stamp(&self.path(name)).is_none() {
            return Err(Error::NoTable(name.to_string()));
        }
        let slot = Arc::new(Slot::default());
        slots.insert(name.to_string(), slot.clone());
        Ok(slot)
    }

    /// Whether memory and file agree with what we last knew of the file.
    fn is_fresh(&self, name: &str, state: &State) -> bool {
        let stamp = disk_stamp(&self.path(name));
        if state.dirty {
            // Our changes are ahead of the file; only an edit by someone else
            // (a file that is not the one we last saw) needs attention.
            return stamp.is_none() || stamp == state.stamp;
        }
        stamp == state.stamp && !(stamp.is_some() && matches!(state.content, Content::Absent))
    }

    /// Brings a table's state in line with its file if the file changed.
    fn refresh(&self, name: &str, state: &mut State) {
        if self.is_fresh(name, state) {
            return;
        }
        if state.dirty {
            let path = self.path(name);
            match file::set_aside(&path) {
                Ok(aside) => tracing::error!(
                    table = name,
                    kept = %aside.display(),
                    "the file was changed on disk while the table had changes not yet written to it; the table keeps its changes and the edited file was set aside"
                ),
                Err(err) => tracing::error!(table = name, "cannot set an edited file aside: {err}"),
            }
            state.stamp = None;
            return;
        }
        self.reload(name, state);
    }

    /// Reads the table's state from its file (absent when there is none).
    fn reload(&self, name: &str, state: &mut State) {
        let path = self.path(name);
        let stamp = disk_stamp(&path);
        let generation = state.generation;
        *state = match stamp {
            None => State::default(),
            Some(_) => match slow(|| file::load(&path, &self.id_column)) {
                Ok(loaded) => {
                    tracing::info!(
                        table = name,
                        rows = loaded.table.len(),
                        "loaded table from its file"
                    );
                    State {
                        content: Content::Loaded(loaded.table),
                        stamp: Some(loaded.stamp),
                        layout: loaded.layout,
                        ..State::default()
                    }
                }
                Err(err) => {
                    tracing::error!(table = name, file = %path.display(), "cannot read table file: {err}");
                    State {
                        content: Content::Broken(err.to_string()),
                        stamp,
                        ..State::default()
                    }
                }
            },
        };
        state.generation = generation;
    }

    /// Runs `f` on the table's current state under its read lock.
    fn with_read<T>(&self, name: &str, f: impl FnOnce(&State) -> Result<T>) -> Result<T> {
        let slot = self.slot(name, false)?;
        {
            let state = read(&slot.state);
            if self.is_fresh(name, &state) {
                return f(&state);
            }
        }
        let mut state = write(&slot.state);
        self.refresh(name, &mut state);
        f(&state)
    }

    /// The write path. `change` alters the state and lists the log records
    /// that say what it did; they are appended under the table's lock and
    /// the call returns once they are durable.
    fn write<T>(
        &self,
        name: &str,
        create: bool,
        change: impl FnOnce(&mut State, &mut Vec<Op>) -> Result<T>,
    ) -> Result<Pending<T>> {
        let world = read(&self.world);
        let slot = self.slot(name, create)?;
        let mut ops = Vec::new();
        let (result, lsn) = {
            let mut state = write(&slot.state);
            self.refresh(name, &mut state);
            let result = change(&mut state, &mut ops);
            let lsn = if ops.is_empty() {
                None
            } else {
                state.dirty = true;
                state.generation += 1;
                Some(self.wal.append(&ops)?)
            };
            (result, lsn)
        };
        drop(world);
        let Some(lsn) = lsn else {
            return result.map(Pending::done);
        };
        self.any_dirty.store(true, Ordering::Release);
        let ms = self.started.elapsed().as_millis() as u64;
        self.last_write_ms.store(ms, Ordering::Release);
        let ticket = self.wal.ticket(lsn);
        match result {
            Ok(value) => Ok(Pending {
                value,
                ticket: Some(ticket),
            }),
            Err(err) => {
                // A failed write may still have logged a change (ids given
                // to a table at its first write): wait for it, then fail.
                slow(|| self.wal.wait(lsn))?;
                Err(err)
            }
        }
    }

    /// Gives a table its ids before its first write, logging the result.
    fn prepare(&self, name: &str, table: &mut Table, ops: &mut Vec<Op>) {
        if !table.ids_ok() {
            table.ensure_ids(&self.id_column);
            ops.push(Op::Replace {
                table: name.to_string(),
                columns: table.columns().to_vec(),
                rows: table.rows(),
            });
        }
    }

    /// Applies one logged change at start-up.
    fn replay(&self, op: Op) {
        let name = op.table().to_string();
        let Ok(slot) = self.slot(&name, true) else {
            tracing::warn!(
                table = name,
                "skipping a logged change to an invalid table name"
            );
            return;
        };
        let mut state = write(&slot.state);
        if !state.dirty {
            self.reload(&name, &mut state);
        }
        let id_column = &self.id_column;
        let fresh = |columns: Vec<String>, rows: Vec<Arc<super::Row>>| {
            let rows = rows.into_iter().map(Arc::unwrap_or_clone).collect();
            Content::Loaded(Table::new(columns, rows, id_column, 0, SystemTime::now()))
        };
        match (op, &mut state.content) {
            (Op::Replace { columns, rows, .. }, content) => *content = fresh(columns, rows),
            (Op::Drop { .. }, content) => *content = Content::Absent,
            (Op::Columns { columns, .. }, Content::Loaded(table)) => {
                table.set_columns(columns, id_column)
            }
            (Op::Columns { columns, .. }, content @ Content::Absent) => {
                *content = fresh(columns, Vec::new())
            }
            (Op::Put { rows, .. }, Content::Loaded(table)) => {
                rows.into_iter().for_each(|row| table.upsert(row))
            }
            (Op::Delete { ids, .. }, Content::Loaded(table)) => {
                for id in ids {
                    let _ = table.delete(&id);
                }
            }
            (op, _) => {
                tracing::error!(
                    table = name,
                    "cannot replay a logged change onto an unreadable or missing table: {op:?}"
                );
                return;
            }
        }
        state.dirty = true;
        state.generation += 1;
        self.any_dirty.store(true, Ordering::Release);
    }

    /// Brings every changed table's file up to date, then drops the log
    /// segments those changes were in.
    pub fn checkpoint(&self) -> Result<()> {
        let _one = self
            .checkpointing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (work, old_segments) = {
            let _world = write(&self.world);
            self.any_dirty.store(false, Ordering::Release);
            let slots: Vec<(String, Arc<Slot>)> = self
                .slots
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .map(|(name, slot)| (name.clone(), slot.clone()))
                .collect();
            let mut work = Vec::new();
            for (name, slot) in slots {
                let state = read(&slot.state);
                if !state.dirty {
                    continue;
                }
                let snapshot = match &state.content {
                    Content::Loaded(table) => Some((table.columns().clone(), table.rows())),
                    _ => None,
                };
                work.push((name, slot.clone(), state.generation, state.layout, snapshot));
            }
            (work, self.wal.rotate()?)
        };
        let mut complete = true;
        let started = Instant::now();
        let tables = work.len();
        for (name, slot, generation, layout, snapshot) in work {
            if let Err(err) = self.write_file(&name, &slot, generation, layout, snapshot) {
                tracing::error!(table = name, "checkpoint failed: {err}");
                self.any_dirty.store(true, Ordering::Release);
                complete = false;
            }
        }
        if complete {
            for segment in old_segments {
                fs::remove_file(&segment)?;
            }
            self.checkpoints.fetch_add(1, Ordering::Relaxed);
        }
        if tables > 0 {
            tracing::info!(
                tables,
                ms = started.elapsed().as_millis() as u64,
                "checkpoint: CSV files brought up to date"
            );
        }
        Ok(())
    }

    /// Writes one table's snapshot to its file (or removes the file of a
    /// dropped table).
    fn write_file(
        &self,
        name: &str,
        slot: &Slot,
        generation: u64,
        layout: Layout,
        snapshot: TableImage,
    ) -> Result<()> {
        let path = self.path(name);
        let staged = match &snapshot {
            Some((columns, rows)) => Some(file::stage(&path, columns, rows, layout)?),
            None => None,
        };
        let mut state = write(&slot.state);
        // An edit by someone else since our last look is set aside first.
        self.refresh(name, &mut state);
        match staged {
            Some(staged) => state.stamp = Some(file::commit(staged, &path)?),
            None => {
                if disk_stamp(&path).is_some() {
                    file::remove(&path)?;
                }
                state.stamp = None;
            }
        }
        if state.generation == generation {
            state.dirty = false;
        }
        Ok(())
    }

    /// A change to rows that creates the table if it is absent: gives the
    /// table its ids first, logs the grown header and the resulting rows,
    /// and leaves no new table behind when the change is refused.
    fn change_rows(
        &self,
        name: &str,
        state: &mut State,
        ops: &mut Vec<Op>,
        change: impl FnOnce(&mut Table, &str) -> Result<Applied>,
    ) -> Result<Written> {
        let creating = matches!(state.content, Content::Absent);
        if creating {
            state.content = Content::Loaded(self.new_table());
        }
        let table = loaded_mut(name, state)?;
        self.prepare(name, table, ops);
        let before = if creating { 0 } else { table.columns().len() };
        match change(table, &self.id_column) {
            Ok(applied) => {
                log_columns(name, table, before, ops);
                ops.push(Op::Put {
                    table: name.to_string(),
                    rows: applied.rows.clone(),
                });
                Ok(written(table, applied.rows, applied.created))
            }
            Err(err) => {
                if creating {
                    state.content = Content::Absent;
                }
                Err(err)
            }
        }
    }

    fn info(&self, name: &str, state: &State) -> Option<TableInfo> {
        match &state.content {
            Content::Absent => None,
            Content::Loaded(table) => Some(TableInfo {
                name: name.to_string(),
                rows: table.len(),
                columns: table.columns().to_vec(),
                modified: table.modified,
                version: table.version,
                error: None,
            }),
            Content::Broken(reason) => Some(TableInfo {
                name: name.to_string(),
                rows: 0,
                columns: Vec::new(),
                modified: SystemTime::UNIX_EPOCH,
                version: 0,
                error: Some(reason.clone()),
            }),
        }
    }

    fn new_table(&self) -> Table {
        Table::new(
            vec![self.id_column.clone()],
            Vec::new(),
            &self.id_column,
            0,
            SystemTime::now(),
        )
    }

    fn should_checkpoint(&self) -> bool {
        if !self.any_dirty.load(Ordering::Acquire) {
            return false;
        }
        let idle =
            self.started.elapsed().as_millis() as u64 - self.last_write_ms.load(Ordering::Acquire);
        idle >= self.options.settle.as_millis() as u64
            || self.wal.segment_bytes() >= self.options.max_log_bytes
    }
}

/// The background checkpointer: checks a few times a second whether writes
/// have settled or the log has grown; ends with the store.
fn checkpointer(store: Weak<DirStore>) {
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let Some(store) = store.upgrade() else { return };
        if store.should_checkpoint() {
            if let Err(err) = store.checkpoint() {
                tracing::error!("checkpoint failed: {err}");
            }
        }
    }
}

/// Runs work that may take long (loading a large file) so that, on an async
/// worker thread, the runtime first hands that worker's other tasks to
/// another thread. Elsewhere it just runs it.
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

fn broken_or_missing(name: &str, content: &Content) -> Error {
    match content {
        Content::Broken(reason) => Error::BrokenTable {
            table: name.to_string(),
            reason: reason.clone(),
        },
        _ => Error::NoTable(name.to_string()),
    }
}

fn loaded<'a>(name: &str, state: &'a State) -> Result<&'a Table> {
    match &state.content {
        Content::Loaded(table) => Ok(table),
        other => Err(broken_or_missing(name, other)),
    }
}

fn loaded_mut<'a>(name: &str, state: &'a mut State) -> Result<&'a mut Table> {
    match &mut state.content {
        Content::Loaded(table) => Ok(table),
        other => Err(broken_or_missing(name, other)),
    }
}

fn written(table: &Table, rows: Vec<Arc<super::Row>>, created: bool) -> Written {
    Written {
        columns: table.columns().clone(),
        id_col: table.id_col(),
        versions: rows.iter().map(|r| table.row_version(r)).collect(),
        rows,
        created,
    }
}

/// Logs the header if a change grew it.
fn log_columns(name: &str, table: &Table, before: usize, ops: &mut Vec<Op>) {
    if table.columns().len() != before {
        ops.push(Op::Columns {
            table: name.to_string(),
            columns: table.columns().to_vec(),
        });
    }
}

impl Store for DirStore {
    fn tables(&self) -> Result<Vec<TableInfo>> {
        let mut names = BTreeSet::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let file_name = entry.file_name();
            let Some(stem) = file_name.to_str().and_then(|n| n.strip_suffix(".csv")) else {
                continue;
            };
            if validate_table_name(stem).is_ok() {
                names.insert(stem.to_string());
            }
        }
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

    fn read(&self, name: &str) -> Result<Snapshot> {
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

    fn version(&self, name: &str) -> Result<u64> {
        self.with_read(name, |state| Ok(loaded(name, state)?.version))
    }

    fn row(&self, name: &str, id: &str) -> Result<RowView> {
        self.with_read(name, |state| {
            let table = loaded(name, state)?;
            let row = table.get(id).ok_or_else(|| Error::NoRow(id.to_string()))?;
            Ok(RowView {
                columns: table.columns().clone(),
                id_col: table.id_col(),
                row: row.clone(),
                version: table.row_version(row),
                modified: table.modified,
            })
        })
    }

    fn insert(
        &self,
        name: &str,
        records: Vec<Fields>,
        expect: &Expect,
    ) -> Result<Pending<Written>> {
        self.write(name, true, |state, ops| {
            let version = match &state.content {
                Content::Loaded(table) => Some(table.version),
                Content::Absent => None,
                Content::Broken(_) => return Err(broken_or_missing(name, &state.content)),
            };
            expect.check(version)?;
            self.change_rows(name, state, ops, |table, id_column| {
                table.insert(&records, id_column)
            })
        })
    }

    fn put_row(
        &self,
        name: &str,
        id: &str,
        record: Fields,
        expect: &Expect,
    ) -> Result<Pending<Written>> {
        validate_id(id)?;
        self.write(name, true, |state, ops| {
            let current = match &state.content {
                Content::Loaded(table) => table.get(id).map(|row| table.row_version(row)),
                Content::Absent => None,
                Content::Broken(_) => return Err(broken_or_missing(name, &state.content)),
            };
            expect.check(current)?;
            self.change_rows(name, state, ops, |table, id_column| {
                table.put(id, &record, id_column)
            })
        })
    }

    fn patch_row(
        &self,
        name: &str,
        id: &str,
        record: Fields,
        expect: &Expect,
    ) -> Result<Pending<Written>> {
        self.write(name, false, |state, ops| {
            let table = loaded_mut(name, state)?;
            let row = table.get(id).ok_or_else(|| Error::NoRow(id.to_string()))?;
            expect.check(Some(table.row_version(row)))?;
            self.change_rows(name, state, ops, |table, id_column| {
                table.patch(id, &record, id_column)
            })
        })
    }

    fn delete_row(&self, name: &str, id: &str, expect: &Expect) -> Result<Pending<()>> {
        self.write(name, false, |state, ops| {
            let table = loaded_mut(name, state)?;
            let row = table.get(id).ok_or_else(|| Error::NoRow(id.to_string()))?;
            expect.check(Some(table.row_version(row)))?;
            self.prepare(name, table, ops);
            table.delete(id)?;
            ops.push(Op::Delete {
                table: name.to_string(),
                ids: vec![id.to_string()],
            });
            Ok(())
        })
    }

    fn replace_table(
        &self,
        name: &str,
        columns: Vec<String>,
        records: Vec<Fields>,
        expect: &Expect,
    ) -> Result<Pending<(TableInfo, bool)>> {
        self.write(name, true, |state, ops| {
            // A broken file may be replaced: that is how a user repairs it.
            let current = match &state.content {
                Content::Loaded(table) => Some(table.version),
                Content::Broken(_) => Some(0),
                Content::Absent => None,
            };
            expect.check(current)?;
            let table =
                Table::from_records(columns, &records, &self.id_column, current.unwrap_or(0))?;
            ops.push(Op::Replace {
                table: name.to_string(),
                columns: table.columns().to_vec(),
                rows: table.rows(),
            });
            state.content = Content::Loaded(table);
            let info = self
                .info(name, state)
                .ok_or_else(|| Error::NoTable(name.to_string()))?;
            Ok((info, current.is_none()))
        })
    }

    fn delete_table(&self, name: &str, expect: &Expect) -> Result<Pending<()>> {
        self.write(name, false, |state, ops| {
            let current = match &state.content {
                Content::Loaded(table) => Some(table.version),
                Content::Broken(_) => Some(0),
                Content::Absent => return Err(Error::NoTable(name.to_string())),
            };
            expect.check(current)?;
            ops.push(Op::Drop {
                table: name.to_string(),
            });
            state.content = Content::Absent;
            Ok(())
        })
    }

    fn flush(&self) -> Result<()> {
        self.checkpoint()?;
        self.wal.close();
        Ok(())
    }

    fn stats(&self) -> StoreStats {
        let (log_bytes, fsyncs) = self.wal.totals();
        StoreStats {
            log_bytes,
            fsyncs,
            checkpoints: self.checkpoints.load(Ordering::Relaxed),
        }
    }
}
