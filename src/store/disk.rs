//! The storage engine's one door to the file system, so that tests can make
//! any call fail the way real disks do (EIO, ENOSPC, a short write).
//!
//! Every open, read, write, fsync, rename, link, removal, truncation and
//! directory sync the engine makes on its own files goes through [`Disk`].
//! In production it adds one branch per call; with [`Faults`] armed, the
//! call numbered N fails (or every call from N on, for a disk that stays
//! broken), which is how the fault walk in the tests reaches each point of
//! the write path, the checkpoint and recovery in turn.
//!
//! Checks that only look (`stat` to notice hand edits) do not go through
//! it: they cannot lose data, and a failing one reads as "file absent".

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use super::os;

/// What kind of call a fault point is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Call {
    Open,
    Read,
    Write,
    Sync,
    SyncDir,
    Rename,
    Link,
    Copy,
    Remove,
    Truncate,
    List,
    Mkdir,
}

/// How an armed fault fails its call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// An I/O error (EIO).
    Io,
    /// No space left on the device (ENOSPC).
    NoSpace,
    /// A write that stores part of its bytes, then fails with ENOSPC; on any
    /// other call, the same as `NoSpace`.
    ShortWrite,
}

/// A plan of failures shared by every [`Disk`] cloned from one.
#[derive(Debug, Default)]
pub struct Faults {
    calls: AtomicU64,
    plan: Mutex<Option<Plan>>,
    /// Calls seen, in order.
    seen: Mutex<Vec<Call>>,
    /// Kinds of call that fail (EIO) every time, whatever the plan.
    broken: Mutex<Vec<Call>>,
    /// A call held in the middle, to look at what others do meanwhile.
    hold: Mutex<Hold>,
    released: Condvar,
}

#[derive(Debug, Default)]
struct Hold {
    /// The kind of the next call to hold.
    next: Option<Call>,
    /// A call is waiting.
    waiting: bool,
}

#[derive(Clone, Copy, Debug)]
struct Plan {
    at: u64,
    fault: Fault,
    /// Every call from `at` on fails, not just that one.
    sticky: bool,
}

impl Faults {
    pub fn new() -> Arc<Faults> {
        Arc::new(Faults::default())
    }

    /// Makes call number `at` (counting from 0 at the last reset) fail.
    pub fn fail_at(&self, at: u64, fault: Fault, sticky: bool) {
        *self.plan.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(Plan { at, fault, sticky });
    }

    /// Makes every call of these kinds fail with EIO until reset (a disk
    /// that still reads but no longer writes, say).
    pub fn break_calls(&self, kinds: &[Call]) {
        *self.broken.lock().unwrap_or_else(PoisonError::into_inner) = kinds.to_vec();
    }

    /// Makes the next call of this kind wait, before it is made, until
    /// [`Faults::release`].
    pub fn hold_next(&self, call: Call) {
        self.hold
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .next = Some(call);
    }

    /// Whether a held call is waiting.
    pub fn holding(&self) -> bool {
        self.hold
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .waiting
    }

    /// Lets a held call go on (and holds no further one).
    pub fn release(&self) {
        let mut hold = self.hold.lock().unwrap_or_else(PoisonError::into_inner);
        hold.next = None;
        hold.waiting = false;
        self.released.notify_all();
    }

    fn wait_if_held(&self, call: Call) {
        let mut hold = self.hold.lock().unwrap_or_else(PoisonError::into_inner);
        if hold.next != Some(call) {
            return;
        }
        hold.next = None;
        hold.waiting = true;
        while hold.waiting {
            hold = self
                .released
                .wait(hold)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Disarms, and starts counting calls from zero again.
    pub fn reset(&self) {
        self.release();
        self.broken
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        *self.plan.lock().unwrap_or_else(PoisonError::into_inner) = None;
        self.calls.store(0, Ordering::SeqCst);
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Calls made since the last reset.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// The kinds of the calls made since the last reset, in order.
    pub fn seen(&self) -> Vec<Call> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn check(&self, call: Call) -> Option<Fault> {
        self.wait_if_held(call);
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(call);
        if self
            .broken
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&call)
        {
            return Some(Fault::Io);
        }
        let plan = (*self.plan.lock().unwrap_or_else(PoisonError::into_inner))?;
        let hit = n == plan.at || (plan.sticky && n > plan.at);
        hit.then_some(plan.fault)
    }
}

fn error(fault: Fault, call: Call) -> io::Error {
    match fault {
        Fault::Io => io::Error::other(format!("injected I/O error ({call:?})")),
        Fault::NoSpace | Fault::ShortWrite => io::Error::new(
            io::ErrorKind::StorageFull,
            format!("No space left on device (injected, {call:?})"),
        ),
    }
}

/// The file system as the engine uses it.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    faults: Option<Arc<Faults>>,
}

impl Disk {
    /// The real file system, with nothing injected.
    pub fn real() -> Disk {
        Disk::default()
    }

    /// The real file system, failing as `faults` says.
    pub fn with_faults(faults: Arc<Faults>) -> Disk {
        Disk {
            faults: Some(faults),
        }
    }

    fn check(&self, call: Call) -> io::Result<()> {
        match self.faults.as_ref().and_then(|f| f.check(call)) {
            Some(fault) => Err(error(fault, call)),
            None => Ok(()),
        }
    }

    pub fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.check(Call::Mkdir)?;
        fs::create_dir_all(path)
    }

    /// The names in a directory.
    pub fn list(&self, dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
        self.check(Call::List)?;
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if let Some(name) = entry.file_name().to_str() {
                names.push((name.to_string(), entry.path()));
            }
        }
        Ok(names)
    }

    /// Opens a file to read it.
    pub fn open(&self, path: &Path) -> io::Result<File> {
        self.check(Call::Open)?;
        File::open(path)
    }

    /// Reads a whole open file.
    pub fn read_to_end(&self, file: &mut File, out: &mut Vec<u8>) -> io::Result<usize> {
        self.check(Call::Read)?;
        file.read_to_end(out)
    }

    /// Reads a whole file.
    pub fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut file = self.open(path)?;
        let mut bytes = Vec::new();
        self.read_to_end(&mut file, &mut bytes)?;
        Ok(bytes)
    }

    /// Opens (creating) a file to append to.
    pub fn append(&self, path: &Path) -> io::Result<File> {
        self.check(Call::Open)?;
        OpenOptions::new().create(true).append(true).open(path)
    }

    /// Creates (or empties) a file to write.
    pub fn create(&self, path: &Path) -> io::Result<File> {
        self.check(Call::Open)?;
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
    }

    pub fn write_all(&self, file: &mut File, bytes: &[u8]) -> io::Result<()> {
        if let Some(fault) = self.faults.as_ref().and_then(|f| f.check(Call::Write)) {
            if fault == Fault::ShortWrite {
                file.write_all(&bytes[..bytes.len() / 2])?;
            }
            return Err(error(fault, Call::Write));
        }
        file.write_all(bytes)
    }

    /// A writer whose every write is a fault point.
    pub fn writer<'a>(&'a self, file: &'a mut File) -> DiskWriter<'a> {
        DiskWriter {
            disk: self,
            file,
            paced: None,
        }
    }

    /// A writer for a large file written whole (a checkpoint's): see
    /// [`Pacing`].
    pub fn paced_writer<'a>(&'a self, file: &'a mut File) -> DiskWriter<'a> {
        DiskWriter {
            disk: self,
            file,
            paced: Some(Pacing::default()),
        }
    }

    /// fsync of the data (and what is needed to read it back).
    pub fn sync_data(&self, file: &File) -> io::Result<()> {
        self.check(Call::Sync)?;
        file.sync_data()
    }

    /// fsync of data and metadata.
    pub fn sync_all(&self, file: &File) -> io::Result<()> {
        self.check(Call::Sync)?;
        file.sync_all()
    }

    pub fn set_len(&self, file: &File, len: u64) -> io::Result<()> {
        self.check(Call::Truncate)?;
        file.set_len(len)
    }

    /// Makes renames, links and removals in `dir` durable.
    pub fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.check(Call::SyncDir)?;
        File::open(dir)?.sync_all()
    }

    pub fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check(Call::Rename)?;
        fs::rename(from, to)
    }

    /// A second name for a file; fails if `to` exists (never replaces).
    pub fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check(Call::Link)?;
        fs::hard_link(from, to)
    }

    /// Copies a file's bytes to a new file (replacing it if present).
    /// Copies a file, paced as [`Disk::paced_writer`] writes.
    pub fn copy(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check(Call::Copy)?;
        let mut source = File::open(from)?;
        let mut target = File::create(to)?;
        let mut out = DiskWriter {
            disk: &Disk::real(),
            file: &mut target,
            paced: Some(Pacing::default()),
        };
        io::copy(&mut source, &mut out).map(drop)
    }

    pub fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.check(Call::Remove)?;
        fs::remove_file(path)
    }
}

/// [`io::Write`] over a file, each write a fault point.
pub struct DiskWriter<'a> {
    disk: &'a Disk,
    file: &'a mut File,
    paced: Option<Pacing>,
}

/// How much of a file written whole may wait in memory for the disk: the
/// kernel is told to write each window as soon as it is full, and the one
/// before it must be written before more comes. The file's final fsync is
/// then short, and so is every other file's meanwhile: an fsync of the
/// log (a journal commit) never queues behind a hundred megabytes of a
/// checkpoint written at once.
#[derive(Debug, Default)]
pub struct Pacing {
    written: u64,
    /// Where the window not yet handed to the kernel starts.
    started: u64,
    /// The window handed to the kernel last (start, length).
    previous: Option<(u64, u64)>,
}

/// Bytes of one window of [`Pacing`].
const WINDOW: u64 = 2 << 20;

impl Pacing {
    fn wrote(&mut self, file: &File, n: usize) {
        self.written += n as u64;
        if self.written - self.started < WINDOW {
            return;
        }
        let (start, len) = (self.started, self.written - self.started);
        self.started = self.written;
        let previous = self.previous.replace((start, len));
        // Advice only: the final fsync is what makes the file durable, so a
        // failure here changes nothing but the pace.
        os::start_writeback(file, start, len);
        if let Some((before, len)) = previous {
            os::wait_writeback(file, before, len);
        }
    }
}

impl Write for DiskWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(fault) = self.disk.faults.as_ref().and_then(|f| f.check(Call::Write)) {
            if fault == Fault::ShortWrite && buf.len() > 1 {
                return self.file.write(&buf[..buf.len() / 2]);
            }
            return Err(error(fault, Call::Write));
        }
        let n = self.file.write(buf)?;
        if let Some(pacing) = &mut self.paced {
            pacing.wrote(self.file, n);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paced_writes_and_copies_keep_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::real();
        let bytes: Vec<u8> = (0..(5 * WINDOW + 123)).map(|i| (i % 251) as u8).collect();
        let path = dir.path().join("a");
        let mut file = disk.create(&path).unwrap();
        let mut out = disk.paced_writer(&mut file);
        for piece in bytes.chunks(100_000) {
            out.write_all(piece).unwrap();
        }
        let pacing = out.paced.as_ref().unwrap();
        assert_eq!(pacing.written, bytes.len() as u64);
        assert!(pacing.previous.is_some(), "windows were handed over");
        disk.sync_all(&file).unwrap();
        disk.copy(&path, &dir.path().join("b")).unwrap();
        assert!(fs::read(&path).unwrap() == bytes);
        assert!(fs::read(dir.path().join("b")).unwrap() == bytes);
    }

    #[test]
    fn the_armed_call_fails_and_others_pass() {
        let dir = tempfile::tempdir().unwrap();
        let faults = Faults::new();
        let disk = Disk::with_faults(faults.clone());
        faults.fail_at(1, Fault::NoSpace, false);
        let mut file = disk.create(&dir.path().join("a")).unwrap();
        let err = disk.write_all(&mut file, b"hello").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        disk.write_all(&mut file, b"again").unwrap();
        assert_eq!(faults.seen(), [Call::Open, Call::Write, Call::Write]);
    }

    #[test]
    fn a_short_write_stores_part_of_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let faults = Faults::new();
        let disk = Disk::with_faults(faults.clone());
        faults.fail_at(1, Fault::ShortWrite, false);
        let path = dir.path().join("a");
        let mut file = disk.create(&path).unwrap();
        assert!(disk.write_all(&mut file, b"12345678").is_err());
        assert_eq!(fs::read(&path).unwrap(), b"1234");
    }

    #[test]
    fn a_sticky_fault_keeps_failing() {
        let faults = Faults::new();
        let disk = Disk::with_faults(faults.clone());
        faults.fail_at(0, Fault::Io, true);
        assert!(disk
            .create_dir_all(Path::new("/nonexistent-never"))
            .is_err());
        assert!(disk.list(Path::new("/")).is_err());
        faults.reset();
        assert!(disk.list(Path::new("/")).is_ok());
    }
}
