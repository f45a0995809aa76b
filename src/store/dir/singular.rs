//! Which tables are kept as one object (json-server's singular resources):
//! `DATA/.csvd/singular.json`, a JSON object from table name to its mark
//! (`{"profile": {"own_id": false}}`), replaced atomically (a temporary
//! file, fsync'd, renamed over it, the directory fsync'd) at each change.
//! Read once, then kept in memory: this store is its only writer.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use crate::store::{Error, Result, Singular};

/// The marks of one data directory.
#[derive(Debug)]
pub struct Marks {
    path: PathBuf,
    /// `None` until first read.
    marks: Mutex<Option<BTreeMap<String, Singular>>>,
}

const FILE: &str = "singular.json";

impl Marks {
    pub fn new(dir: &Path) -> Marks {
        Marks {
            path: dir.join(".csvd").join(FILE),
            marks: Mutex::new(None),
        }
    }

    fn read(path: &Path) -> Result<BTreeMap<String, Singular>> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::Unavailable(format!(
                    "{} is not the JSON object csvd writes ({e}); fix or remove it",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(Error::Io(e)),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<String, Singular>) -> Result<T>) -> Result<T> {
        let mut guard = self.marks.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.is_none() {
            *guard = Some(Marks::read(&self.path)?);
        }
        f(guard.as_mut().expect("read above"))
    }

    pub fn get(&self, table: &str) -> Result<Option<Singular>> {
        self.with(|marks| Ok(marks.get(table).copied()))
    }

    pub fn all(&self) -> Result<Vec<(String, Singular)>> {
        self.with(|marks| Ok(marks.iter().map(|(k, v)| (k.clone(), *v)).collect()))
    }

    pub fn set(&self, table: &str, mark: Option<Singular>) -> Result<()> {
        self.with(|marks| {
            if marks.get(table).copied() == mark {
                return Ok(());
            }
            let mut next = marks.clone();
            match mark {
                Some(mark) => next.insert(table.to_string(), mark),
                None => next.remove(table),
            };
            write_atomically(
                &self.path,
                &serde_json::to_vec_pretty(&next).unwrap_or_default(),
            )?;
            *marks = next;
            Ok(())
        })
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let temp = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&temp)?;
    file.write_all(bytes)?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_survive_a_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let marks = Marks::new(tmp.path());
        assert_eq!(marks.get("profile").unwrap(), None);
        marks
            .set("profile", Some(Singular { own_id: false }))
            .unwrap();
        marks.set("me", Some(Singular { own_id: true })).unwrap();
        marks.set("me", None).unwrap();
        let again = Marks::new(tmp.path());
        assert_eq!(
            again.all().unwrap(),
            vec![("profile".to_string(), Singular { own_id: false })]
        );
    }
}
