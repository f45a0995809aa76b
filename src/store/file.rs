//! Table files on disk: reading a CSV file into a [`Table`], and replacing a
//! file atomically (temp file, fsync, rename, fsync directory) so a crash
//! leaves either the old file or the new one, never a mix.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use xxhash_rust::xxh3::xxh3_64;

use super::disk::Disk;
use super::row::Row;
use super::table::Table;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// What identifies one version of a file on disk, to notice edits made by
/// someone else: a rename (our writes) changes the inode, an edit in place
/// changes the size or the modification time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    len: u64,
    mtime: (i64, i64),
    ino: u64,
}

impl Stamp {
    pub fn of(meta: &fs::Metadata) -> Stamp {
        Stamp {
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ino: meta.ino(),
        }
    }
}

/// How a file is laid out, kept so that our rewrites look like the original.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    pub bom: bool,
    pub crlf: bool,
}

/// A table file that was read.
pub struct Loaded {
    pub table: Table,
    pub layout: Layout,
    pub stamp: Stamp,
    /// Hash of the file's bytes: what the log names a file by.
    pub hash: u64,
}

/// Why a file could not be read as a table.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Invalid(String),
}

/// Reads a CSV file: header line, then rows. Short rows are padded with
/// empty cells; a row longer than the header, a repeated column name or
/// bytes that are not UTF-8 make the file invalid.
pub fn load(disk: &Disk, path: &Path, id_column: &str) -> Result<Loaded, LoadError> {
    let mut file = disk.open(path)?;
    let meta = file.metadata()?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    disk.read_to_end(&mut file, &mut bytes)?;
    let stamp = Stamp::of(&meta);
    let modified = meta.modified().unwrap_or_else(|_| SystemTime::now());
    let hash = xxh3_64(&bytes);
    let (columns, rows, layout) = parse(&bytes).map_err(LoadError::Invalid)?;
    let table = Table::new(columns, rows, id_column, hash, modified);
    Ok(Loaded {
        table,
        layout,
        stamp,
        hash,
    })
}

/// The hash of a file's bytes, as [`Loaded::hash`] has it; `None` when the
/// file cannot be read.
pub fn hash_of(disk: &Disk, path: &Path) -> Option<u64> {
    disk.read(path).ok().map(|bytes| xxh3_64(&bytes))
}

/// A header that reads as one column but holds another delimiter (`;` as
/// Excel writes in much of Europe, a tab, `|`) is a file in a dialect not
/// read yet: refused, so that it is reported and never rewritten with
/// commas (which would corrupt it).
fn refuse_other_delimiters(columns: &[String], line: u64) -> Result<(), String> {
    let [only] = columns else { return Ok(()) };
    // Two names at least, so that a stray character is not a dialect.
    let found = [(';', "semicolons"), ('\t', "tabs"), ('|', "'|'")]
        .into_iter()
        .find(|(c, _)| {
            only.split(*c)
                .filter(|name| !name.trim().is_empty())
                .count()
                >= 2
        });
    match found {
        Some((_, name)) => Err(format!(
            "line {}: the header is separated by {name}, not commas; csvd reads comma-separated CSV only for now (save it as \"CSV UTF-8 (comma delimited)\")",
            line.max(1)
        )),
        None => Ok(()),
    }
}

/// The rules every header follows, in a file or a body: byte-order marks
/// are not part of the first name (after blank lines, or repeated: written
/// back, they would read as a mark), no name appears twice, and a header in
/// another delimiter is refused. `line` is the header's line.
pub fn check_header(columns: &mut [String], line: u64) -> Result<(), String> {
    if let Some(first) = columns.first_mut() {
        if first.starts_with('\u{feff}') {
            *first = first.trim_start_matches('\u{feff}').to_string();
        }
    }
    refuse_other_delimiters(columns, line)?;
    for (i, name) in columns.iter().enumerate() {
        if columns[..i].contains(name) {
            return Err(format!(
                "line {line}: column {name:?} appears twice in the header"
            ));
        }
    }
    Ok(())
}

/// Parses CSV text with a header line into columns and rows.
pub fn parse(bytes: &[u8]) -> Result<(Vec<String>, Vec<Row>, Layout), String> {
    let (bom, body) = match bytes.strip_prefix(BOM) {
        Some(rest) => (true, rest),
        None => (false, bytes),
    };
    let crlf = body
        .iter()
        .position(|&b| b == b'\n')
        .is_some_and(|i| i > 0 && body[i - 1] == b'\r');
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .from_reader(body);
    // One record, reused: no allocation per row but the row itself.
    let mut record = csv::StringRecord::new();
    let mut columns: Vec<String> = match reader
        .read_record(&mut record)
        .map_err(|e| describe(body, e))?
    {
        false => Vec::new(),
        true => record.iter().map(str::to_string).collect(),
    };
    check_header(&mut columns, line_at(body, record.position()))?;
    let mut rows = Vec::new();
    while reader
        .read_record(&mut record)
        .map_err(|e| describe(body, e))?
    {
        if record.len() > columns.len() {
            let line = line_at(body, record.position());
            return Err(format!(
                "line {line}: {} fields, but the header names {}",
                record.len(),
                plural(columns.len(), "column", "columns")
            ));
        }
        rows.push(Row::from_record(&record));
    }
    Ok((columns, rows, Layout { bom, crlf }))
}

fn describe(body: &[u8], err: csv::Error) -> String {
    match err.kind() {
        csv::ErrorKind::Utf8 { pos, err } => format!(
            "line {}: field {} is not valid UTF-8 (save the file as UTF-8)",
            line_at(body, pos.as_ref()),
            err.field() + 1
        ),
        _ => err.to_string(),
    }
}

/// The physical line (from 1) a record starts on: every line end before
/// it counts (CRLF once, a lone CR or LF once), inside quotes too. The csv
/// reader's own count misses the line ends of CRLF files.
fn line_at(body: &[u8], position: Option<&csv::Position>) -> u64 {
    let end = position.map_or(0, |p| usize::try_from(p.byte()).unwrap_or(usize::MAX));
    let before = &body[..end.min(body.len())];
    let ends = before
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && before.get(i + 1) != Some(&b'\n')))
        .count();
    ends as u64 + 1
}

/// "1 column", "2 columns".
fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Writes the table as CSV bytes.
pub fn write_csv<W: Write>(
    out: W,
    columns: &[String],
    rows: impl Iterator<Item = impl AsRef<Row>>,
    layout: Layout,
) -> io::Result<()> {
    let mut out = out;
    if layout.bom {
        out.write_all(BOM)?;
    }
    let terminator = if layout.crlf {
        csv::Terminator::CRLF
    } else {
        csv::Terminator::Any(b'\n')
    };
    let mut writer = csv::WriterBuilder::new()
        .terminator(terminator)
        .from_writer(out);
    if !columns.is_empty() {
        writer.write_record(columns)?;
        for row in rows {
            writer.write_record(row.as_ref().cells(columns.len()))?;
        }
    }
    writer.flush()?;
    Ok(())
}

/// A table written to a temporary file beside its own, fsync'd, waiting to
/// be renamed over it by [`commit`].
pub struct Staged {
    tmp: PathBuf,
    stamp: Stamp,
    /// Hash of the bytes written.
    pub hash: u64,
}

/// Hashes what passes through, so a staged file's hash costs no second read.
struct Hashing<W> {
    inner: W,
    hasher: xxhash_rust::xxh3::Xxh3,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes rows to a temporary file next to `path` and fsyncs it. The slow
/// part of replacing a file, done without holding the table.
pub fn stage(
    disk: &Disk,
    path: &Path,
    columns: &[String],
    rows: &[Arc<Row>],
    layout: Layout,
) -> io::Result<Staged> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut file = disk.create(&tmp)?;
        let hash = {
            let mut out = Hashing {
                inner: BufWriter::with_capacity(1 << 16, disk.writer(&mut file)),
                hasher: xxhash_rust::xxh3::Xxh3::new(),
            };
            write_csv(&mut out, columns, rows.iter().map(|r| r.as_ref()), layout)?;
            out.inner.flush()?;
            out.hasher.digest()
        };
        disk.sync_all(&file)?;
        Ok(Staged {
            tmp: tmp.clone(),
            stamp: Stamp::of(&file.metadata()?),
            hash,
        })
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

impl Staged {
    /// Where the staged file is, until it is committed.
    pub fn path(&self) -> &Path {
        &self.tmp
    }
}

/// Gives up a staged file.
pub fn discard(staged: Staged) {
    let _ = fs::remove_file(&staged.tmp);
}

/// Renames a staged file over `path` and makes the rename durable: a crash
/// leaves the old file or the new one, never a mix. For the instant of the
/// rename the file it replaces is held by a second name, so that if it is
/// not the file the engine last saw (`expected`: a person wrote it after
/// the engine's last look), it is set aside as a conflict instead of lost.
/// Returns the new stamp, and where such a hand edit was kept.
pub fn commit(
    disk: &Disk,
    staged: Staged,
    path: &Path,
    expected: Option<Stamp>,
) -> io::Result<(Stamp, Option<PathBuf>)> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("table");
    // Not a `.tmp` name: start-up removes those, and this one may hold a
    // person's edit if setting it aside fails.
    let held = path.with_file_name(format!(".{name}.{}.held", std::process::id()));
    let _ = fs::remove_file(&held);
    let holding = fs::symlink_metadata(path).is_ok_and(|m| m.is_file())
        && disk.hard_link(path, &held).is_ok();
    if let Err(err) = disk.rename(&staged.tmp, path) {
        let _ = fs::remove_file(&staged.tmp);
        let _ = fs::remove_file(&held);
        return Err(err);
    }
    let synced = sync_dir(disk, path);
    let replaced = holding
        .then(|| fs::symlink_metadata(&held).ok().map(|m| Stamp::of(&m)))
        .flatten();
    let kept = match replaced {
        Some(stamp) if Some(stamp) != expected => match set_aside_as(disk, &held, path) {
            Ok(kept) => Some(kept),
            Err(err) => {
                // Still there under the held name: say where.
                tracing::error!(
                    "a hand edit of {} made during a checkpoint is kept as {}: {err}",
                    path.display(),
                    held.display()
                );
                None
            }
        },
        _ => {
            let _ = fs::remove_file(&held);
            None
        }
    };
    synced?;
    Ok((staged.stamp, kept))
}

/// Moves a file a person edited aside (`people.csv` →
/// `people.csv.conflict-<unix seconds>`, then `-2`, `-3`… within the same
/// second) so that it is kept, never overwritten, and no two hand edits
/// ever share a name.
pub fn set_aside(disk: &Disk, path: &Path) -> io::Result<PathBuf> {
    set_aside_as(disk, path, path)
}

/// Moves `from` aside under a conflict name of the table file `table`.
pub fn set_aside_as(disk: &Disk, from: &Path, table: &Path) -> io::Result<PathBuf> {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let name = table
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("table.csv");
    for n in 1u32.. {
        let suffix = if n == 1 {
            String::new()
        } else {
            format!("-{n}")
        };
        let aside = table.with_file_name(format!("{name}.conflict-{secs}{suffix}"));
        // A link never replaces an existing name, so two conflicts in one
        // second cannot overwrite each other.
        match disk.hard_link(from, &aside) {
            Ok(()) => {
                disk.remove_file(from)?;
                sync_dir(disk, table)?;
                return Ok(aside);
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err),
        }
    }
    Err(io::Error::other("no free conflict name"))
}

/// Removes a table file durably.
pub fn remove(disk: &Disk, path: &Path) -> io::Result<()> {
    disk.remove_file(path)?;
    sync_dir(disk, path)
}

/// Makes a rename or removal in the file's directory durable.
fn sync_dir(disk: &Disk, path: &Path) -> io::Result<()> {
    disk.sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Temporary files start with a dot, so they can never be taken for a table.
fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("table");
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// The table file a checkpoint held by a second name while renaming over
/// it (`.people.csv.1234.held` → `people.csv`), if `name` is such a file.
pub fn held_for(name: &str) -> Option<&str> {
    let rest = name.strip_prefix('.')?.strip_suffix(".held")?;
    let (file, pid) = rest.rsplit_once('.')?;
    pid.bytes().all(|b| b.is_ascii_digit()).then_some(file)
}

/// Whether a file name is one of our temporary files (left by a crash).
pub fn is_temp(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(columns: &[&str], rows: &[&[&str]], layout: Layout) {
        let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        let rows: Vec<Row> = rows.iter().map(|r| Row::from_cells(r.iter())).collect();
        let mut bytes = Vec::new();
        write_csv(&mut bytes, &columns, rows.iter(), layout).unwrap();
        let (c2, r2, l2) = parse(&bytes).unwrap();
        assert_eq!(c2, columns);
        assert_eq!(l2.bom, layout.bom);
        let width = columns.len();
        let a: Vec<Vec<&str>> = rows.iter().map(|r| r.cells(width).collect()).collect();
        let b: Vec<Vec<&str>> = r2.iter().map(|r| r.cells(width).collect()).collect();
        assert_eq!(a, b);
    }

    #[test]
    fn hard_cells_round_trip() {
        let layout = Layout::default();
        round_trip(
            &["id", "text"],
            &[
                &["1", "a,b"],
                &["2", "say \"hi\""],
                &["3", "two\nlines"],
                &["4", "cr\r\nlf"],
                &["5", "ünï 한국 🎉"],
                &["6", ""],
            ],
            layout,
        );
        round_trip(&["only"], &[&[""], &["x"], &[""]], layout);
        round_trip(
            &["id"],
            &[&["1"]],
            Layout {
                bom: true,
                crlf: true,
            },
        );
    }

    #[test]
    fn bom_is_not_part_of_the_first_column() {
        let (columns, _, layout) = parse(b"\xEF\xBB\xBFid,name\r\n1,a\r\n").unwrap();
        assert_eq!(columns, ["id", "name"]);
        assert!(layout.bom && layout.crlf);
    }

    #[test]
    fn invalid_files_are_explained() {
        let err = parse(b"a,b\n1,2,3\n").unwrap_err();
        assert!(err.contains("line 2") && err.contains("3 fields"), "{err}");
        let err = parse(b"a,a\n").unwrap_err();
        assert!(err.contains("twice"), "{err}");
        let err = parse(b"a\n\xff\n").unwrap_err();
        assert!(err.contains("UTF-8"), "{err}");
    }

    #[test]
    fn other_delimiters_are_refused_not_read_as_one_column() {
        for (text, word) in [
            (&b"id;name\r\n1;kim\r\n"[..], "semicolons"),
            (b"id\tname\n1\tkim\n", "tabs"),
            (b"id|name\n", "'|'"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(word) && err.starts_with("line 1:"), "{err}");
        }
        // Commas win: a semicolon inside a comma-separated header is a name.
        assert!(parse(b"id,a;b\n1,x\n").is_ok());
    }

    #[test]
    fn a_hand_edit_racing_the_rename_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::real();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, "id\n1\n").unwrap();
        let seen = Stamp::of(&std::fs::metadata(&path).unwrap());
        let columns = vec!["id".to_string()];
        let rows = vec![Arc::new(Row::from_cells(["2"]))];
        // Nobody else wrote: the old file simply goes.
        let staged = stage(&disk, &path, &columns, &rows, Layout::default()).unwrap();
        let (stamp, kept) = commit(&disk, staged, &path, Some(seen)).unwrap();
        assert!(kept.is_none());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "id\n2\n");
        // A person writes after the engine's last look, before the rename.
        let staged = stage(&disk, &path, &columns, &rows, Layout::default()).unwrap();
        std::fs::write(&path, "id\nby hand\n").unwrap();
        let (_, kept) = commit(&disk, staged, &path, Some(stamp)).unwrap();
        let kept = kept.expect("the hand edit is kept");
        assert_eq!(std::fs::read_to_string(kept).unwrap(), "id\nby hand\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "id\n2\n");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(left.is_empty(), "no held file is left behind");
    }

    #[test]
    fn held_names() {
        assert_eq!(held_for(".people.csv.1234.held"), Some("people.csv"));
        assert_eq!(held_for(".My data.csv.7.held"), Some("My data.csv"));
        assert_eq!(held_for(".people.csv.x.held"), None);
        assert_eq!(held_for("people.csv"), None);
    }

    #[test]
    fn short_rows_and_empty_files_are_fine() {
        let (columns, rows, _) = parse(b"a,b,c\n1\n").unwrap();
        assert_eq!(columns.len(), 3);
        assert_eq!(rows[0].cells(3).collect::<Vec<_>>(), ["1", "", ""]);
        let (columns, rows, _) = parse(b"").unwrap();
        assert!(columns.is_empty() && rows.is_empty());
    }
}
