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

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::{Duration, Instant, SystemTime};

use super::disk::Disk;
use super::file::{self, Layout, Stamp};
use super::names::Names;
use super::table::{validate_id, Applied, Table};
use super::wal::{Op, Wal};
use super::{
    validate_table_name, Error, Expect, Fields, Pending, Records, Result, RowView, Snapshot, Store,
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
    /// Start even when the log is damaged, with what can be read: damaged
    /// segments are moved aside, what could not be applied is reported.
    pub salvage: bool,
    /// Serve without writing anything to the directory (not even the lock
    /// or the log), as a read-only server on a read-only mount must.
    pub read_only: bool,
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
        }
    }
}

/// First wait after a failed checkpoint or recovery; it doubles up to
/// [`MAX_RETRY`] so a disk that stays broken is not hammered.
const FIRST_RETRY: Duration = Duration::from_millis(200);
const MAX_RETRY: Duration = Duration::from_secs(30);

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
    /// log; a checkpoint holds it exclusively for the moment it takes its
    /// snapshots and starts a new log segment, a rebuild for its duration.
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
    /// Backoff for checkpoints and rebuilds that fail.
    retry: Mutex<Retry>,
    /// Which files are tables, under which names.
    names: Names,
    /// The engine's copies of table files, by table and hash of their
    /// bytes: what logged changes build on, kept where a person's edit of
    /// the table file cannot reach them (`.csvd/base/`).
    bases: Mutex<HashSet<(String, u64)>>,
    /// Holds the data directory against a second server (shared by
    /// read-only servers, when the lock file can be opened at all).
    _lock: Option<File>,
}

#[derive(Default)]
struct Retry {
    failures: u32,
    next: Option<Instant>,
}

/// What a checkpoint writes for one table: its header and rows, or
/// nothing for a table that was dropped.
type TableImage = Option<(Arc<Vec<String>>, Vec<Arc<super::Row>>)>;

#[derive(Default)]
struct Slot {
    state: RwLock<TableState>,
}

#[derive(Default)]
struct TableState {
    content: Content,
    /// The file as we last read or wrote it; `None` when there is none.
    stamp: Option<Stamp>,
    /// Hash of that file's bytes, as the log names it.
    file_hash: Option<u64>,
    layout: Layout,
    /// Memory holds changes the file does not have yet.
    dirty: bool,
    /// Counts writes, so a checkpoint knows whether it caught the latest.
    generation: u64,
    /// Changes to this table were logged (or replayed) since the store
    /// opened: a hand edit of its file must then be logged too.
    logged: bool,
    /// A hand edit kept under another name, for the table list.
    notice: Option<String>,
    /// The generation last logged whole because of a hand edit.
    imaged: Option<u64>,
    /// The file's modification time, for a file that cannot be read.
    file_modified: Option<SystemTime>,
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
            Err(err) => return Err(io::Error::other(err.to_string())),
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
        Arc::new(DirStore {
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
            retry: Mutex::new(Retry::default()),
            names: Names::default(),
            bases: Mutex::new(HashSet::new()),
            _lock: lock,
        })
    }

    /// Finds the tables' files and replays the log into memory.
    fn start(&self, recovered: super::wal::Recovered) -> io::Result<()> {
        // Before replaying: a logged table may live in a file of another name.
        self.names.scan(&self.dir)?;
        self.list_bases();
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

    /// Refuses while memory may hold a change that was not made durable.
    fn available(&self) -> Result<()> {
        if !self.unavailable.load(Ordering::Acquire) && !self.wal.is_failed() {
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

    /// Whether memory and file agree with what we last knew of the file.
    fn is_fresh(&self, name: &str, state: &TableState) -> bool {
        let stamp = disk_stamp(&self.path(name));
        stamp == state.stamp && !(stamp.is_some() && matches!(state.content, Content::Absent))
    }

    /// Brings a table's state in line with its file if the file changed.
    /// Callers hold the world lock (shared): this may append to the log.
    fn refresh(&self, name: &str, state: &mut TableState) -> Result<()> {
        if self.is_fresh(name, state) {
            return Ok(());
        }
        if state.dirty {
            return self.keep_hand_edit(name, state);
        }
        let known = state.logged && !self.options.read_only;
        self.reload(name, state);
        if known {
            // The table's logged changes are all in the file the person
            // replaced: from here on, their file is what the log builds on.
            let lsn = self.wal.append(&[Op::Base {
                table: name.to_string(),
                hash: state.file_hash,
            }])?;
            slow(|| self.wal.wait(lsn))?;
        }
        Ok(())
    }

    /// A file changed by someone else while memory held changes it lacks:
    /// logs the table whole (so neither a crash nor the missing original
    /// can lose those changes), then keeps the person's file under a name
    /// of its own. The next checkpoint writes the table's file afresh.
    fn keep_hand_edit(&self, name: &str, state: &mut TableState) -> Result<()> {
        if self.options.read_only {
            // Nothing may be written: memory (the file plus the log) stays
            // what is served, and the person's file stays where it is.
            tracing::warn!(
                table = name,
                "the table's file was changed by hand, but the log holds changes it lacks; read-only: serving the table with those changes, the file is left as it is"
            );
            state.stamp = disk_stamp(&self.path(name));
            return Ok(());
        }
        match &state.content {
            // Logged whole once per version of the table: setting the file
            // aside may fail and be retried on every access.
            Content::Loaded(table) if state.imaged != Some(state.generation) => {
                let lsn = self.wal.append(&[Op::Replace {
                    table: name.to_string(),
                    columns: table.columns().to_vec(),
                    rows: table.rows(),
                }])?;
                slow(|| self.wal.wait(lsn))?;
                state.imaged = Some(state.generation);
            }
            _ => {}
        }
        let path = self.path(name);
        if disk_stamp(&path).is_some() {
            let aside = file::set_aside(&self.disk, &path).map_err(|err| {
                tracing::error!(table = name, "cannot set a hand-edited file aside: {err}");
                Error::Io(err)
            })?;
            let notice = format!(
                "{} was changed on disk while the table had changes not yet written to it: the edited file was kept as {}, and the table keeps its changes",
                path.display(),
                aside.display()
            );
            tracing::error!(table = name, kept = %aside.display(), "{notice}");
            state.notice = Some(notice);
        } else {
            tracing::warn!(
                table = name,
                "the table's file was removed while it had changes not yet written to it; it will be written again"
            );
        }
        state.stamp = None;
        state.file_hash = None;
        Ok(())
    }

    /// Reads the table's state from its file (absent when there is none).
    fn reload(&self, name: &str, state: &mut TableState) {
        let path = self.path(name);
        let keep = (state.generation, state.logged, state.notice.take());
        *state = match disk_stamp(&path) {
            None => TableState::default(),
            Some(stamp) => match slow(|| file::load(&self.disk, &path, &self.id_column)) {
                Ok(loaded) => {
                    tracing::info!(
                        table = name,
                        rows = loaded.table.len(),
                        "loaded table from its file"
                    );
                    TableState {
                        content: Content::Loaded(loaded.table),
                        stamp: Some(loaded.stamp),
                        file_hash: Some(loaded.hash),
                        layout: loaded.layout,
                        ..TableState::default()
                    }
                }
                Err(err) => {
                    tracing::error!(table = name, file = %path.display(), "cannot read table file: {err}");
                    TableState {
                        content: Content::Broken(err.to_string()),
                        stamp: Some(stamp),
                        file_hash: file::hash_of(&self.disk, &path),
                        file_modified: fs::symlink_metadata(&path).and_then(|m| m.modified()).ok(),
                        ..TableState::default()
                    }
                }
            },
        };
        (state.generation, state.logged, state.notice) = keep;
    }

    fn base_dir(&self) -> PathBuf {
        self.dir.join(".csvd").join("base")
    }

    fn base_path(&self, name: &str, hash: u64) -> PathBuf {
        self.base_dir().join(format!("{name}.{hash:016x}.csv"))
    }

    /// Reads which copies `.csvd/base/` holds.
    fn list_bases(&self) {
        let mut bases = self.bases.lock().unwrap_or_else(PoisonError::into_inner);
        bases.clear();
        let Ok(entries) = fs::read_dir(self.base_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if file::is_temp(&name) && !self.options.read_only {
                // A copy a crash interrupted.
                let _ = self.disk.remove_file(&entry.path());
                continue;
            }
            let Some(stem) = name.strip_suffix(".csv") else {
                continue;
            };
            if let Some((table, hash)) = stem.rsplit_once('.') {
                if let Ok(hash) = u64::from_str_radix(hash, 16) {
                    bases.insert((table.to_string(), hash));
                }
            }
        }
    }

    /// Keeps a copy of `from` (a file whose bytes hash to `hash`) as the
    /// base of table `name`'s logged changes; returns once it is durable.
    fn keep_base(&self, name: &str, hash: u64, from: &Path) -> io::Result<()> {
        let key = (name.to_string(), hash);
        if self
            .bases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&key)
        {
            return Ok(());
        }
        let dir = self.base_dir();
        self.disk.create_dir_all(&dir)?;
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let kept = (|| {
            self.disk.copy(from, &tmp)?;
            let copy = self.disk.open(&tmp)?;
            self.disk.sync_all(&copy)?;
            self.disk.rename(&tmp, &self.base_path(name, hash))?;
            self.disk.sync_dir(&dir)
        })();
        if kept.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        kept?;
        self.bases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key);
        Ok(())
    }

    /// Before the first change to a table in step with its file: makes
    /// sure the engine has its own copy of that file, so that a person
    /// editing the file in place, and then a crash, cannot take away what
    /// the logged changes apply to. Only a file the engine did not write
    /// itself (dropped in, or edited and reloaded) needs copying now; the
    /// copy of a checkpointed file is made by the checkpoint.
    fn ensure_base(&self, name: &str, state: &TableState) {
        let Some(hash) = state.file_hash else { return };
        if self.options.read_only {
            return;
        }
        if let Err(err) = self.keep_base(name, hash, &self.path(name)) {
            tracing::warn!(
                table = name,
                "cannot keep a copy of the table's file ({err}); a hand edit of it before the next checkpoint, followed by a crash, would stop the next start"
            );
        }
    }

    /// The engine's copy of a table file with this hash, as a table state.
    fn load_base(&self, name: &str, hash: u64) -> Option<TableState> {
        let path = self.base_path(name, hash);
        let loaded = file::load(&self.disk, &path, &self.id_column).ok()?;
        (loaded.hash == hash).then(|| TableState {
            content: Content::Loaded(loaded.table),
            layout: loaded.layout,
            ..TableState::default()
        })
    }

    /// Drops the copies no table builds on any more (after a checkpoint
    /// that wrote every file).
    fn prune_bases(&self) {
        let keep: HashSet<(String, u64)> = self
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(|(name, slot)| {
                let state = read(&slot.state);
                state.file_hash.map(|hash| (name.clone(), hash))
            })
            .collect();
        let mut bases = self.bases.lock().unwrap_or_else(PoisonError::into_inner);
        let stale: Vec<(String, u64)> = bases.difference(&keep).cloned().collect();
        for (name, hash) in stale {
            if self.disk.remove_file(&self.base_path(&name, hash)).is_ok() {
                bases.remove(&(name, hash));
            }
        }
    }

    /// Runs `f` on the table's current state under its read lock.
    fn with_read<T>(&self, name: &str, f: impl FnOnce(&TableState) -> Result<T>) -> Result<T> {
        let slot = self.slot(name, false)?;
        {
            let state = read(&slot.state);
            if self.is_fresh(name, &state) {
                self.available()?;
                return f(&state);
            }
        }
        let _world = read(&self.world);
        let mut state = write(&slot.state);
        self.available()?;
        self.refresh(name, &mut state)?;
        f(&state)
    }

    /// The write path. `change` alters the state and lists the log records
    /// that say what it did; they are appended under the table's lock and
    /// the call returns once they are durable.
    fn write<T>(
        &self,
        name: &str,
        create: bool,
        change: impl FnOnce(&mut TableState, &mut Vec<Op>) -> Result<T>,
    ) -> Result<Pending<T>> {
        if self.options.read_only {
            return Err(Error::Io(io::Error::other(
                "the data directory is served read-only",
            )));
        }
        let world = read(&self.world);
        self.available()?;
        let slot = self.slot(name, create)?;
        let mut ops = Vec::new();
        let (result, lsn) = {
            let mut state = write(&slot.state);
            self.refresh(name, &mut state)?;
            if !state.dirty {
                self.ensure_base(name, &state);
            }
            let result = change(&mut state, &mut ops);
            let lsn = if ops.is_empty() {
                None
            } else {
                if !state.dirty {
                    // Memory was its file until this change: say which file,
                    // so recovery can tell it from a hand edit.
                    ops.insert(
                        0,
                        Op::Base {
                            table: name.to_string(),
                            hash: state.file_hash,
                        },
                    );
                }
                state.dirty = true;
                state.logged = true;
                state.generation += 1;
                match self.wal.append(&ops) {
                    Ok(lsn) => Some(lsn),
                    Err(err) => {
                        // Memory now holds a change that can never be
                        // durable: nobody may see it until it is rebuilt.
                        self.set_unavailable(err.to_string());
                        return Err(Error::Unavailable(format!(
                            "{err}; the write was refused and csvd refuses requests until it has rebuilt its tables from disk"
                        )));
                    }
                }
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

    /// Replays logged changes (at start, or when rebuilding after a log
    /// failure) into the tables, one table at a time. Returns what salvage
    /// could not apply; without salvage, damage is an error.
    fn recover(&self, ops: Vec<Op>, salvage: bool) -> io::Result<Vec<String>> {
        let mut by_table: BTreeMap<String, Vec<Op>> = BTreeMap::new();
        for op in ops {
            by_table.entry(op.table().to_string()).or_default().push(op);
        }
        let mut salvaged = Vec::new();
        for (name, ops) in by_table {
            if validate_table_name(&name).is_err() {
                let what = format!(
                    "the log holds {} changes to {name:?}, which is not a table name",
                    ops.len()
                );
                if !salvage {
                    return Err(refuse(&what));
                }
                salvaged.push(what);
                continue;
            }
            let slot = self
                .slot(&name, true)
                .map_err(|e| io::Error::other(e.to_string()))?;
            let mut state = write(&slot.state);
            let (mut replayed, notes) = self
                .replay_table(&name, &ops, salvage)
                .map_err(|what| refuse(&what))?;
            replayed.generation = state.generation + 1;
            *state = replayed;
            if state.dirty {
                self.any_dirty.store(true, Ordering::Release);
            }
            salvaged.extend(notes);
        }
        Ok(salvaged)
    }

    /// The state of one table after its logged changes: from the last
    /// record that says what the table was (a whole image, a drop, or "its
    /// file with this hash"), then every change after it.
    fn replay_table(
        &self,
        name: &str,
        ops: &[Op],
        salvage: bool,
    ) -> std::result::Result<(TableState, Vec<String>), String> {
        let path = self.path(name);
        let mut ours: HashSet<u64> = HashSet::new();
        for op in ops {
            match op {
                Op::Base {
                    hash: Some(hash), ..
                }
                | Op::Written { hash, .. } => {
                    ours.insert(*hash);
                }
                _ => {}
            }
        }
        // Logs from before files were named by hash: any file is the base.
        let legacy = !ops
            .iter()
            .any(|op| matches!(op, Op::Base { .. } | Op::Written { .. }));
        let start = ops
            .iter()
            .rposition(|op| matches!(op, Op::Replace { .. } | Op::Drop { .. } | Op::Base { .. }));
        let mut on_disk = TableState::default();
        if disk_stamp(&path).is_some() {
            self.reload(name, &mut on_disk);
            if let Content::Broken(reason) = &on_disk.content {
                if reason.starts_with("I/O") || on_disk.file_hash.is_none() {
                    return Err(format!("cannot read {}: {reason}", path.display()));
                }
            }
        }
        let file_is_ours = on_disk
            .file_hash
            .is_some_and(|h| legacy || ours.contains(&h));
        // Changes a file named by the log does not hold for sure: those
        // after the last checkpoint that wrote one.
        let covered = ops
            .iter()
            .rposition(|op| matches!(op, Op::Written { .. }))
            .into_iter()
            .chain(start)
            .max()
            .map_or(0, |i| i + 1);
        let changes = ops[covered..]
            .iter()
            .filter(|op| changes_content(op))
            .count();
        // The version of the file the changes build on, from the engine's
        // own copy, when the table file itself is a person's edit.
        let mut kept_base = None;
        if !file_is_ours && changes > 0 {
            let wanted = match start.map(|i| &ops[i]) {
                Some(Op::Base {
                    hash: Some(hash), ..
                }) => Some(*hash),
                None => ops.iter().rev().find_map(|op| match op {
                    Op::Written { hash, .. } => Some(*hash),
                    _ => None,
                }),
                _ => None,
            };
            kept_base = wanted.and_then(|hash| self.load_base(name, hash));
        }
        let rebuilt_from_copy = kept_base.is_some();
        let mut notes = Vec::new();
        let from_log = matches!(
            start.map(|i| &ops[i]),
            Some(Op::Replace { .. } | Op::Drop { .. } | Op::Base { hash: None, .. })
        );
        let mut state = match start.map(|i| &ops[i]) {
            Some(Op::Replace { columns, rows, .. }) => TableState {
                content: Content::Loaded(self.image(columns.clone(), rows.clone())),
                ..TableState::default()
            },
            Some(Op::Drop { .. }) | Some(Op::Base { hash: None, .. }) => TableState::default(),
            Some(Op::Base {
                hash: Some(base), ..
            }) if on_disk.file_hash == Some(*base) || file_is_ours => on_disk.take_file(),
            None if file_is_ours || legacy && on_disk.stamp.is_some() => on_disk.take_file(),
            _ if rebuilt_from_copy => kept_base.take().unwrap_or_default(),
            _ if changes == 0 => {
                // Edited (or removed) by hand after every logged change was
                // written to the file: the person's version is the table.
                tracing::warn!(
                    table = name,
                    "{} was changed by hand while csvd was not running, after every logged change had been written to it; serving it as it is",
                    path.display()
                );
                let mut kept = on_disk.take_file();
                kept.logged = true;
                return Ok((kept, notes));
            }
            _ => {
                let why = if on_disk.stamp.is_none() {
                    format!(
                        "the log holds {changes} changes to table {name:?}, but its file {} is gone and they apply to it",
                        path.display()
                    )
                } else {
                    format!(
                        "{} was changed by hand after csvd last wrote it, while the log still held {changes} changes to it that the file lacks; the version of the file they apply to is gone",
                        path.display()
                    )
                };
                if !salvage {
                    return Err(why);
                }
                notes.push(format!(
                    "{why}: the table is served from the file as it is; those changes were not applied"
                ));
                let mut kept = on_disk.take_file();
                kept.logged = true;
                return Ok((kept, notes));
            }
        };
        // Built from the log (or the engine's copy): a file that is not one
        // of ours is a person's.
        if (from_log || rebuilt_from_copy) && on_disk.stamp.is_some() {
            if file_is_ours || self.options.read_only {
                state.layout = on_disk.layout;
                state.stamp = on_disk.stamp;
                state.file_hash = on_disk.file_hash;
            } else {
                let aside = file::set_aside(&self.disk, &path).map_err(|err| {
                    format!("cannot set the hand-edited {} aside: {err}", path.display())
                })?;
                let notice = format!(
                    "{} was changed by hand while the log held changes to the table not yet written to it: the edited file was kept as {}, and the table keeps its changes",
                    path.display(),
                    aside.display()
                );
                tracing::error!(table = name, "{notice}");
                state.notice = Some(notice);
            }
        }
        let rest = &ops[start.map_or(0, |i| i + 1)..];
        for op in rest {
            if let Err(what) = self.apply(name, &mut state.content, op) {
                if !salvage {
                    return Err(what);
                }
                notes.push(format!("{what}: not applied"));
            }
        }
        if let Content::Loaded(table) = &mut state.content {
            table.renew_version();
        }
        state.logged = true;
        // A table built from the log is ahead of its file (if any).
        state.dirty = from_log || rebuilt_from_copy || rest.iter().any(changes_content);
        Ok((state, notes))
    }

    /// Applies one replayed change to a table.
    fn apply(&self, name: &str, content: &mut Content, op: &Op) -> std::result::Result<(), String> {
        let id_column = &self.id_column;
        match (op, content) {
            (Op::Base { .. } | Op::Written { .. }, _) => {}
            (Op::Replace { columns, rows, .. }, content) => {
                *content = Content::Loaded(self.image(columns.clone(), rows.clone()))
            }
            (Op::Drop { .. }, content) => *content = Content::Absent,
            (Op::Columns { columns, .. }, Content::Loaded(table)) => {
                table.set_columns(columns.clone(), id_column)
            }
            (Op::Columns { columns, .. }, content @ Content::Absent) => {
                *content = Content::Loaded(self.image(columns.clone(), Vec::new()))
            }
            (Op::Put { rows, .. }, Content::Loaded(table)) => {
                rows.iter().for_each(|row| table.upsert(row.clone()))
            }
            (Op::Delete { ids, .. }, Content::Loaded(table)) => {
                for id in ids {
                    let _ = table.delete(id);
                }
            }
            (op, _) => {
                return Err(format!(
                    "the log holds a change to table {name:?} at a point where the table does not exist or cannot be read: {}",
                    describe(op)
                ))
            }
        }
        Ok(())
    }

    /// A table as a logged image has it.
    fn image(&self, columns: Vec<String>, rows: Vec<Arc<super::Row>>) -> Table {
        let rows = rows.into_iter().map(Arc::unwrap_or_clone).collect();
        Table::new(columns, rows, &self.id_column, 0, SystemTime::now())
    }

    /// Links every log segment into `.csvd/salvaged/`, so that the
    /// recovery checkpoint cannot delete changes salvage did not apply.
    fn keep_segments(&self) -> io::Result<()> {
        let meta_dir = self.dir.join(".csvd");
        let aside = meta_dir.join("salvaged");
        self.disk.create_dir_all(&aside)?;
        for (name, path) in self.disk.list(&meta_dir)? {
            if name.starts_with("wal-") && name.ends_with(".log") {
                match self.disk.hard_link(&path, &aside.join(&name)) {
                    Ok(()) => {}
                    Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(err) => return Err(err),
                }
            }
        }
        self.disk.sync_dir(&aside)
    }

    /// After the log failed: cuts it back to its last durable byte and
    /// rebuilds every table from its file and the log, as a restart would,
    /// so that nothing refused stays in memory. Requests are refused until
    /// it succeeds.
    fn rebuild(&self) -> std::result::Result<(), String> {
        let _one = self
            .checkpointing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let _world = write(&self.world);
        if let Some(failure) = self.wal.failure() {
            self.set_unavailable(failure);
        }
        self.wal
            .repair()
            .map_err(|err| format!("cannot repair the write-ahead log: {err}"))?;
        let ops = self
            .wal
            .read_all()
            .map_err(|err| format!("cannot read the write-ahead log back: {err}"))?;
        let slots: Vec<Arc<Slot>> = self
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for slot in slots {
            let mut state = write(&slot.state);
            *state = TableState {
                generation: state.generation + 1,
                ..TableState::default()
            };
        }
        self.recover(ops, false)
            .map_err(|err| format!("cannot rebuild the tables: {err}"))?;
        *self
            .unavailable_reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        self.unavailable.store(false, Ordering::Release);
        tracing::info!("tables rebuilt from disk after a storage failure; serving again");
        Ok(())
    }

    /// Stops the log as a crash would: nothing more is written, no file is
    /// brought up to date.
    #[cfg(test)]
    pub fn crash(&self) {
        self.wal.close();
    }

    /// Brings every changed table's file up to date, then drops the log
    /// segments those changes were in. Returns what could not be written
    /// (empty when every file is up to date).
    pub fn checkpoint(&self) -> Result<Vec<String>> {
        let _one = self
            .checkpointing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.available()?;
        let (work, old_segments) = {
            let _world = write(&self.world);
            self.available()?;
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
        let started = Instant::now();
        let tables = work.len();
        let mut failures = Vec::new();
        let mut staged = Vec::new();
        for (name, slot, generation, layout, snapshot) in work {
            match self.stage(&name, layout, snapshot) {
                Ok(file) => staged.push((name, slot, generation, file)),
                Err(err) => failures.push(format!("table {name}: {err}")),
            }
        }
        // The log names the new files before they replace the old ones, so
        // that after a crash at any point each is known as the engine's own.
        let written: Vec<Op> = staged
            .iter()
            .filter_map(|(name, _, _, file)| {
                file.as_ref().map(|f| Op::Written {
                    table: name.clone(),
                    hash: f.hash,
                })
            })
            .collect();
        if !written.is_empty() {
            let logged = {
                let _world = read(&self.world);
                self.wal.append(&written)
            }
            .and_then(|lsn| slow(|| self.wal.wait(lsn)));
            if let Err(err) = logged {
                staged
                    .into_iter()
                    .filter_map(|(_, _, _, f)| f)
                    .for_each(file::discard);
                failures.push(format!("cannot log the checkpoint: {err}"));
                self.any_dirty.store(true, Ordering::Release);
                return Ok(failures);
            }
        }
        for (name, slot, generation, file) in staged {
            if let Err(err) = self.put_in_place(&name, &slot, generation, file) {
                failures.push(format!("table {name}: {err}"));
            }
        }
        if failures.is_empty() {
            let mut old_segments = old_segments;
            // Oldest first, so that a crash in between leaves an unbroken run.
            old_segments.sort();
            for segment in &old_segments {
                self.disk.remove_file(segment)?;
            }
            if !old_segments.is_empty() {
                self.disk.sync_dir(&self.dir.join(".csvd"))?;
            }
            self.checkpoints.fetch_add(1, Ordering::Relaxed);
            self.prune_bases();
            if tables > 0 {
                tracing::info!(
                    tables,
                    ms = started.elapsed().as_millis() as u64,
                    "checkpoint: CSV files brought up to date"
                );
            }
        } else {
            self.any_dirty.store(true, Ordering::Release);
        }
        Ok(failures)
    }

    /// Writes one table's snapshot to a temporary file beside its own.
    fn stage(
        &self,
        name: &str,
        layout: Layout,
        snapshot: TableImage,
    ) -> io::Result<Option<file::Staged>> {
        let Some((columns, rows)) = &snapshot else {
            return Ok(None);
        };
        let staged = file::stage(&self.disk, &self.path(name), columns, rows, layout)?;
        // The engine's own copy, out of a person's reach: what the next
        // changes to this table build on.
        if let Err(err) = self.keep_base(name, staged.hash, staged.path()) {
            file::discard(staged);
            return Err(err);
        }
        Ok(Some(staged))
    }

    /// Renames a staged file over the table's (or removes the file of a
    /// dropped table), after setting aside a hand edit made meanwhile.
    fn put_in_place(
        &self,
        name: &str,
        slot: &Slot,
        generation: u64,
        staged: Option<file::Staged>,
    ) -> Result<()> {
        let path = self.path(name);
        let _world = read(&self.world);
        let mut state = write(&slot.state);
        if let Err(err) = self.refresh(name, &mut state) {
            if let Some(staged) = staged {
                file::discard(staged);
            }
            return Err(err);
        }
        match staged {
            Some(staged) => {
                let hash = staged.hash;
                let (stamp, kept) = file::commit(&self.disk, staged, &path, state.stamp)?;
                state.stamp = Some(stamp);
                if let Some(kept) = kept {
                    let notice = format!(
                        "{} was changed by hand while a checkpoint was writing it: the edited file was kept as {}, and the table keeps its changes",
                        path.display(),
                        kept.display()
                    );
                    tracing::error!(table = name, "{notice}");
                    state.notice = Some(notice);
                }
                state.file_hash = Some(hash);
            }
            None => {
                if disk_stamp(&path).is_some() {
                    file::remove(&self.disk, &path)?;
                }
                state.stamp = None;
                state.file_hash = None;
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
        state: &mut TableState,
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

    fn info(&self, name: &str, state: &TableState) -> Option<TableInfo> {
        match &state.content {
            Content::Absent => None,
            Content::Loaded(table) => Some(TableInfo {
                name: name.to_string(),
                rows: table.len(),
                columns: table.columns().to_vec(),
                modified: table.modified,
                version: table.version,
                error: None,
                notice: state.notice.clone(),
            }),
            Content::Broken(reason) => Some(TableInfo {
                name: name.to_string(),
                rows: 0,
                columns: Vec::new(),
                modified: state.file_modified.unwrap_or(SystemTime::UNIX_EPOCH),
                version: 0,
                error: Some(reason.clone()),
                notice: state.notice.clone(),
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

    /// One round of the background work: rebuild after a failure, or
    /// checkpoint once writes settle; failures back off.
    fn tick(&self) {
        let due = {
            let retry = self.retry.lock().unwrap_or_else(PoisonError::into_inner);
            retry.next.is_none_or(|next| Instant::now() >= next)
        };
        if !due {
            return;
        }
        if self.unavailable.load(Ordering::Acquire) || self.wal.is_failed() {
            match self.rebuild() {
                Ok(()) => self.retry_done(),
                Err(err) => {
                    self.set_unavailable(err.clone());
                    self.retry_later(&err);
                }
            }
        } else if self.should_checkpoint() {
            match self.checkpoint() {
                Ok(failures) if failures.is_empty() => self.retry_done(),
                Ok(failures) => self.retry_later(&failures.join("; ")),
                Err(err) => self.retry_later(&err.to_string()),
            }
        }
    }

    fn retry_later(&self, what: &str) {
        let mut retry = self.retry.lock().unwrap_or_else(PoisonError::into_inner);
        let delay = FIRST_RETRY
            .saturating_mul(1 << retry.failures.min(16))
            .min(MAX_RETRY);
        retry.failures += 1;
        retry.next = Some(Instant::now() + delay);
        tracing::error!(
            attempt = retry.failures,
            "cannot bring the CSV files up to date: {what}; every acknowledged write is kept in the write-ahead log; trying again in {}",
            humantime::format_duration(delay)
        );
    }

    fn retry_done(&self) {
        let mut retry = self.retry.lock().unwrap_or_else(PoisonError::into_inner);
        if retry.failures > 0 {
            tracing::info!(
                "storage is healthy again after {} failed attempts",
                retry.failures
            );
        }
        *retry = Retry::default();
    }
}

impl TableState {
    /// The state as loaded from the file, leaving this one empty.
    fn take_file(&mut self) -> TableState {
        std::mem::take(self)
    }
}

/// Whether a replayed record changes what a table holds.
fn changes_content(op: &Op) -> bool {
    !matches!(op, Op::Base { .. } | Op::Written { .. })
}

/// A record in a few words, for messages.
fn describe(op: &Op) -> String {
    match op {
        Op::Columns { columns, .. } => format!("columns {columns:?}"),
        Op::Put { rows, .. } => format!("{} rows written", rows.len()),
        Op::Delete { ids, .. } => format!("ids {ids:?} deleted"),
        Op::Replace { rows, .. } => format!("replaced by {} rows", rows.len()),
        Op::Drop { .. } => "table deleted".into(),
        Op::Base { .. } | Op::Written { .. } => "file named".into(),
    }
}

/// Recovery's refusal: nothing was changed, and here is what to do.
fn refuse(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "cannot recover the data directory: {what}. csvd will not start, so that nothing is lost, and has not changed that file. Put the file back as it was, or start with --salvage to serve what can be read (what could not be applied is reported, and the log is kept in .csvd/salvaged/)."
        ),
    )
}

/// The background checkpointer: checks a few times a second whether writes
/// have settled, the log has grown, or a failure needs recovering from;
/// ends with the store.
fn checkpointer(store: Weak<DirStore>) {
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let Some(store) = store.upgrade() else { return };
        store.tick();
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

fn loaded<'a>(name: &str, state: &'a TableState) -> Result<&'a Table> {
    match &state.content {
        Content::Loaded(table) => Ok(table),
        other => Err(broken_or_missing(name, other)),
    }
}

fn loaded_mut<'a>(name: &str, state: &'a mut TableState) -> Result<&'a mut Table> {
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

    fn insert(&self, name: &str, records: Records, expect: &Expect) -> Result<Pending<Written>> {
        self.write(name, true, |state, ops| {
            let version = match &state.content {
                Content::Loaded(table) => Some(table.version),
                Content::Absent => None,
                Content::Broken(_) => return Err(broken_or_missing(name, &state.content)),
            };
            expect.check(version)?;
            self.change_rows(name, state, ops, |table, id_column| {
                table.insert(records, id_column)
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
        records: Records,
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
            let table = Table::from_records(records, &self.id_column, current.unwrap_or(0))?;
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

    fn stats(&self) -> StoreStats {
        let (log_bytes, fsyncs) = self.wal.totals();
        StoreStats {
            log_bytes,
            fsyncs,
            checkpoints: self.checkpoints.load(Ordering::Relaxed),
        }
    }
}
