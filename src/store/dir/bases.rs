//! The engine's own copies of table files (`.csvd/base/<name>.<hash>.csv`):
//! the files logged changes build on, kept where a person's edit of the
//! table file cannot reach them, so that recovery can rebuild a table whose
//! file was edited by hand.
//!
//! It must never remove a copy a table still builds on, never treat a copy
//! whose bytes do not match its hash as one, and never write in a read-only
//! store.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::PoisonError;

use crate::store::file;

use super::{read, Content, DirStore, TableState};

impl DirStore {
    fn base_dir(&self) -> PathBuf {
        self.dir.join(".csvd").join("base")
    }

    fn base_path(&self, name: &str, hash: u64) -> PathBuf {
        self.base_dir().join(format!("{name}.{hash:016x}.csv"))
    }

    /// Reads which copies `.csvd/base/` holds.
    pub(super) fn list_bases(&self) {
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
    pub(super) fn keep_base(&self, name: &str, hash: u64, from: &Path) -> io::Result<()> {
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
    pub(super) fn ensure_base(&self, name: &str, state: &TableState) {
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
    pub(super) fn load_base(&self, name: &str, hash: u64) -> Option<TableState> {
        let path = self.base_path(name, hash);
        let loaded = file::load_with(&self.disk, &path, &self.id_column, &self.path(name)).ok()?;
        (loaded.hash == hash).then(|| TableState {
            content: Content::Loaded(loaded.table),
            layout: loaded.layout,
            ..TableState::default()
        })
    }

    /// Drops the copies no table builds on any more (after a checkpoint
    /// that wrote every file).
    pub(super) fn prune_bases(&self) {
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
            let path = self.base_path(&name, hash);
            if file::free_gradually(&self.disk, &path, &self.dir).is_ok() {
                bases.remove(&(name, hash));
            }
        }
    }
}
