//! Which files in a data directory are tables, and under which names.
//!
//! `people.csv` is the table `people`, and so is `people.tsv` (a table
//! whose file is tab-separated) when there is no `people.csv`: with both,
//! the table is reported as broken until one is renamed or removed. A file whose name is not a table
//! name (`UPPER.CSV`, `Customers Export.csv`, `2024 données.csv`) is served
//! under a stable derived name, the same one the web page's upload picks:
//! the extension dropped, every run of other characters made one `_`,
//! leading non-alphanumerics and trailing `_` dropped, at most 64
//! characters (`Customers_Export`, `UPPER`, `2024_donn_es`). The file keeps
//! its own name on disk. A derived name that an exactly named file (or an
//! earlier file) already has is not served, and neither is any file that
//! is not CSV; each such file is reported once, with the reason, when it is
//! first seen.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::validate_table_name;

/// How often a request for a table without an exactly named file may
/// rescan the directory for a file it could be (a 404 must stay cheap).
const RESCAN: Duration = Duration::from_millis(500);

/// The table names a directory's files are served under.
#[derive(Default)]
pub struct Names {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Table name → file name, for files not named `<table>.csv`.
    derived: HashMap<String, String>,
    /// File names already reported as skipped or derived.
    reported: HashSet<String>,
    scanned: Option<Instant>,
}

/// The table name a CSV file's name is served under, if any.
pub fn derive(file_name: &str) -> Option<String> {
    let dot = file_name.rfind('.')?;
    let (stem, extension) = file_name.split_at(dot);
    if !extension.eq_ignore_ascii_case(".csv") && !extension.eq_ignore_ascii_case(".tsv") {
        return None;
    }
    let mut name = String::new();
    for c in stem.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            name.push(c);
        } else if !name.ends_with('_') {
            name.push('_');
        }
    }
    let name = name.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    let name: String = name.chars().take(super::MAX_TABLE_NAME).collect();
    let name = name.trim_end_matches('_').to_string();
    validate_table_name(&name).is_ok().then_some(name)
}

impl Names {
    /// The file of table `name` in `dir`.
    pub fn path(&self, dir: &Path, name: &str) -> PathBuf {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        match inner.derived.get(name) {
            Some(file) => dir.join(file),
            None => dir.join(format!("{name}.csv")),
        }
    }

    /// Reads the directory: every table name a file is served under, with
    /// files that cannot be tables reported once.
    pub fn scan(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        let mut files: Vec<String> = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                tracing::warn!(file = ?entry.file_name(), "skipping a file whose name is not UTF-8: it cannot be a table");
                continue;
            };
            // The engine's own files and dot files are never tables.
            if name.starts_with('.') || !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            files.push(name);
        }
        files.sort();
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.scanned = Some(Instant::now());
        let exact: HashSet<String> = files
            .iter()
            .filter_map(|f| f.strip_suffix(".csv"))
            .filter(|stem| validate_table_name(stem).is_ok())
            .map(str::to_string)
            .collect();
        let mut tables: Vec<String> = exact.iter().cloned().collect();
        let mut derived = HashMap::new();
        for file in &files {
            if file.strip_suffix(".csv").is_some_and(|s| exact.contains(s)) {
                continue;
            }
            let first_time = inner.reported.insert(file.clone());
            match derive(file) {
                Some(table) if exact.contains(&table) || derived.contains_key(&table) => {
                    let holder = derived
                        .get(&table)
                        .cloned()
                        .unwrap_or_else(|| format!("{table}.csv"));
                    if first_time {
                        tracing::warn!(
                            file = %file,
                            "not serving {file:?}: its table name {table:?} is {holder:?}'s; rename one of them"
                        );
                    }
                }
                Some(table) => {
                    if first_time {
                        tracing::info!(file = %file, "serving {file:?} as the table {table:?}");
                    }
                    derived.insert(table.clone(), file.clone());
                    tables.push(table);
                }
                None if first_time => {
                    let why = if file.contains(".csv.conflict-") {
                        "a hand edit kept aside, not a table"
                    } else if file.ends_with("-metadata.json") {
                        "a table's declared columns (CSV on the Web metadata), not a table"
                    } else {
                        "not a .csv or .tsv file"
                    };
                    tracing::info!(file = %file, "skipping {file:?}: {why}");
                }
                None => {}
            }
        }
        inner.derived = derived;
        tables.sort();
        Ok(tables)
    }

    /// Rescans if no scan happened lately; whether `name` is now a table
    /// some file is served under (other than `<name>.csv`).
    pub fn discover(&self, dir: &Path, name: &str) -> bool {
        let recent = {
            let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            inner.scanned.is_some_and(|at| at.elapsed() < RESCAN)
        };
        if !recent {
            let _ = self.scan(dir);
        }
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.derived.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_names_match_the_upload_form() {
        assert_eq!(derive("UPPER.CSV").as_deref(), Some("UPPER"));
        assert_eq!(
            derive("Customers Export.csv").as_deref(),
            Some("Customers_Export")
        );
        assert_eq!(derive("My data (2).csv").as_deref(), Some("My_data_2"));
        assert_eq!(derive("  --x.Csv").as_deref(), Some("x"));
        assert_eq!(derive("한국.csv"), None);
        assert_eq!(derive("db.json"), None);
        assert_eq!(derive("My Data.TSV").as_deref(), Some("My_Data"));
        assert_eq!(derive("people.csv.conflict-17"), None);
        let long = format!("{}.csv", "a b".repeat(40));
        assert_eq!(derive(&long).unwrap().len(), 64);
    }

    #[test]
    fn exact_names_win_and_everything_is_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["a_b.csv", "a b.csv", "UPPER.CSV", "db.json", ".hidden.csv"] {
            std::fs::write(dir.path().join(f), "id\n").unwrap();
        }
        let names = Names::default();
        assert_eq!(names.scan(dir.path()).unwrap(), ["UPPER", "a_b"]);
        assert_eq!(
            names.path(dir.path(), "UPPER"),
            dir.path().join("UPPER.CSV")
        );
        assert_eq!(names.path(dir.path(), "a_b"), dir.path().join("a_b.csv"));
        assert!(names.discover(dir.path(), "UPPER"));
    }
}
