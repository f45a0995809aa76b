//! Table files on disk: reading a CSV file into a [`Table`], and replacing a
//! file atomically (temp file, fsync, rename, fsync directory) so a crash
//! leaves either the old file or the new one, never a mix.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use xxhash_rust::xxh3::xxh3_64;

use super::dialect::{self, Sniffed};
use super::disk::Disk;
use super::row::{Packer, Row};
use super::table::Table;

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

/// How a file is laid out, kept so that our rewrites look like the
/// original: its encoding and byte-order mark, a `sep=` first line, its
/// delimiter, quote and line ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub bom: bool,
    pub crlf: bool,
    /// Lines end with a lone CR (as old Mac files do).
    pub cr: bool,
    pub delimiter: u8,
    pub quote: u8,
    /// A `sep=<delimiter>` first line, as spreadsheets write.
    pub sep_line: bool,
    /// Which fields are quoted.
    pub quoting: dialect::Quoting,
    pub encoding: &'static encoding_rs::Encoding,
    /// The first line names the columns. Without one (declared so), the
    /// columns are named `1`, `2`, … by position and the file is written
    /// back without a header line.
    pub header: bool,
    /// Some rows of the file were shorter than its header when it was
    /// read (a ragged file): every row is written back with the cells it
    /// holds, so a row read short stays as short as it was.
    pub ragged: bool,
}

impl Default for Layout {
    fn default() -> Layout {
        Layout {
            bom: false,
            crlf: false,
            cr: false,
            delimiter: b',',
            quote: b'"',
            sep_line: false,
            quoting: dialect::Quoting::Needed,
            encoding: encoding_rs::UTF_8,
            header: true,
            ragged: false,
        }
    }
}

impl Layout {
    /// The first character of `text` this file cannot hold, if any.
    pub fn unencodable(&self, text: &str) -> Option<char> {
        dialect::unencodable(self.encoding, text)
    }

    /// The file's encoding, as a person names it.
    pub fn encoding_name(&self) -> &'static str {
        self.encoding.name()
    }
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
/// bytes that are not UTF-8 make the file invalid. (The engine reads
/// through [`load_declared`], with what a table's metadata declares.)
#[cfg(test)]
pub fn load(disk: &Disk, path: &Path, id_column: &str) -> Result<Loaded, LoadError> {
    no_twin(path)?;
    load_with(disk, path, id_column, path)
}

/// Refuses a table file whose twin (`t.tsv` for `t.csv`) exists too.
fn no_twin(path: &Path) -> Result<(), LoadError> {
    if let Some(other) = twin(path).filter(|other| other.exists()) {
        let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
        return Err(LoadError::Invalid(format!(
            "both {:?} and {:?} exist and csvd cannot tell which is the table; rename or remove one (the table is read again when its file changes, or at the next start)",
            name(path).unwrap_or_default(),
            name(&other).unwrap_or_default()
        )));
    }
    Ok(())
}

/// Reads a table file as [`load`] does, with the parts of its dialect
/// that are declared (a metadata file's `dialect`) taken as declared
/// rather than detected: a declared `header: false` reads a file whose
/// first line is a row, which detection refuses. What is not declared is
/// detected, as for any file.
pub fn load_declared(
    disk: &Disk,
    path: &Path,
    id_column: &str,
    declared: dialect::Declared,
) -> Result<Loaded, LoadError> {
    no_twin(path)?;
    load_declared_as(disk, path, id_column, path, declared)
}

/// The delimiter a table file's name says: a tab for `.tsv`.
fn delimiter_of(path: &Path) -> Option<u8> {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tsv"))
        .then_some(b'\t')
}

/// Reads a file as [`load`] does, as the file of the table file `table`
/// (a copy of a table file is read as its table's: its delimiter, and the
/// encoding csvd last wrote it in).
pub fn load_with(
    disk: &Disk,
    path: &Path,
    id_column: &str,
    table: &Path,
) -> Result<Loaded, LoadError> {
    load_declared_as(disk, path, id_column, table, dialect::Declared::default())
}

/// [`load_declared`] of `path` as the file of the table file `table`.
fn load_declared_as(
    disk: &Disk,
    path: &Path,
    id_column: &str,
    table: &Path,
    declared: dialect::Declared,
) -> Result<Loaded, LoadError> {
    let mut file = disk.open(path)?;
    let meta = file.metadata()?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    disk.read_to_end(&mut file, &mut bytes)?;
    let stamp = Stamp::of(&meta);
    let modified = meta.modified().unwrap_or_else(|_| SystemTime::now());
    let hash = xxh3_64(&bytes);
    let declared = dialect::Declared {
        delimiter: declared.delimiter.or(delimiter_of(table)),
        encoding: declared.encoding.or(written_encoding(table, hash)),
        ..declared
    };
    let (columns, rows, layout) = parse_declared(&bytes, declared).map_err(LoadError::Invalid)?;
    let table = Table::new(columns, rows, id_column, hash, modified);
    Ok(Loaded {
        table,
        layout,
        stamp,
        hash,
    })
}

/// Where csvd notes the legacy encoding it wrote a table file in
/// (`.people.csv.encoding`): detection reads the bytes, and a file with
/// little text in it could read as another encoding after a change.
fn encoding_note(table: &Path) -> PathBuf {
    let name = table
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("table");
    table.with_file_name(format!(".{name}.encoding"))
}

/// The encoding csvd wrote `table` in, if the file is still the one it
/// wrote (its hash is `hash`).
fn written_encoding(table: &Path, hash: u64) -> Option<&'static encoding_rs::Encoding> {
    let note = fs::read_to_string(encoding_note(table)).ok()?;
    let (noted, label) = note.trim().split_once(' ')?;
    (u64::from_str_radix(noted, 16).ok()? == hash)
        .then(|| encoding_rs::Encoding::for_label(label.as_bytes()))
        .flatten()
}

/// Notes (or forgets) the encoding a table file was written in. Best
/// effort: without the note, the encoding is detected again.
fn note_encoding(table: &Path, hash: u64, encoding: &'static encoding_rs::Encoding) {
    let note = encoding_note(table);
    if encoding == encoding_rs::UTF_8 {
        if note.exists() {
            let _ = fs::remove_file(note);
        }
        return;
    }
    let _ = fs::write(note, format!("{hash:016x} {}\n", encoding.name()));
}

/// The other file a table of this name could be: `t.tsv` for `t.csv`, and
/// the other way round.
fn twin(path: &Path) -> Option<PathBuf> {
    let extension = path.extension()?.to_str()?;
    let other = match extension {
        "csv" => "tsv",
        "tsv" => "csv",
        "CSV" => "TSV",
        "TSV" => "CSV",
        _ => return None,
    };
    Some(path.with_extension(other))
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
fn refuse_other_delimiters(columns: &[String], line: u64, delimiter: u8) -> Result<(), String> {
    let [only] = columns else { return Ok(()) };
    // Two names at least, so that a stray character is not a dialect.
    let found = [
        (',', "commas"),
        (';', "semicolons"),
        ('\t', "tabs"),
        ('|', "'|'"),
    ]
    .into_iter()
    .filter(|(c, _)| *c != char::from(delimiter))
    .find(|(c, _)| {
        only.split(*c)
            .filter(|name| !name.trim().is_empty())
            .count()
            >= 2
    });
    match found {
        Some((_, name)) => Err(format!(
            "line {}: the header is separated by {name}, not {}; send comma-separated text/csv, tab-separated text/tab-separated-values, or name the delimiter (?delimiter=;)",
            line.max(1),
            dialect::delimiter_name(delimiter)
        )),
        None => Ok(()),
    }
}

/// The rules every header of a body follows: byte-order marks are not
/// part of the first name (after blank lines, or repeated: written back,
/// they would read as a mark), no name appears twice, and a comma-separated
/// header in another delimiter is refused. `line` is the header's line.
pub fn check_header(columns: &mut [String], line: u64, delimiter: u8) -> Result<(), String> {
    check_names(columns, line)?;
    refuse_other_delimiters(columns, line, delimiter)
}

/// The rules of a file's header: no mark in the first name, no name twice.
fn check_names(columns: &mut [String], line: u64) -> Result<(), String> {
    if let Some(first) = columns.first_mut() {
        if first.starts_with('\u{feff}') {
            *first = first.trim_start_matches('\u{feff}').to_string();
        }
    }
    for (i, name) in columns.iter().enumerate() {
        if columns[..i].contains(name) {
            return Err(format!(
                "line {line}: column {name:?} appears twice in the header"
            ));
        }
    }
    Ok(())
}

/// Parses a table file with a header line into columns and rows, in the
/// encoding and dialect it is found in (see [`dialect`]).
pub fn parse(bytes: &[u8]) -> Result<(Vec<String>, Vec<Row>, Layout), String> {
    parse_declared(bytes, dialect::Declared::default())
}

/// Reads a file csvd wrote in `layout` (as loading does with the
/// encoding it noted): what a rewrite reads back as.
pub fn parse_written(
    bytes: &[u8],
    layout: Layout,
) -> Result<(Vec<String>, Vec<Row>, Layout), String> {
    parse_declared(bytes, declared_by(layout))
}

/// The declaration that reads a file csvd wrote in `layout` as it was
/// written: its encoding, quote and header (the delimiter is told again,
/// and a `sep=` line says it when it could not be).
pub fn declared_by(layout: Layout) -> dialect::Declared {
    dialect::Declared {
        delimiter: None,
        quote: Some(layout.quote),
        encoding: Some(layout.encoding),
        header: Some(layout.header),
    }
}

/// [`parse`], with what `declared` gives taken rather than detected: the
/// delimiter unless a `sep=` line says another (a `.tsv` file's tab), the
/// encoding unless a byte-order mark says another (the one csvd wrote the
/// file in), the quote character, and whether the first line is a header.
pub fn parse_declared(
    bytes: &[u8],
    declared: dialect::Declared,
) -> Result<(Vec<String>, Vec<Row>, Layout), String> {
    let delimiter = declared.delimiter;
    let decoded = dialect::decode_as(bytes, declared.encoding)?;
    let text = decoded.text.as_bytes();
    let mut layout = Layout {
        bom: decoded.bom,
        encoding: decoded.encoding,
        ..Layout::default()
    };
    let (body, lines_before) = match dialect::sep_line(&decoded.text) {
        Some((delimiter, len)) => {
            layout.sep_line = true;
            layout.delimiter = delimiter;
            (&text[len..], 1)
        }
        None => (text, 0),
    };
    layout.quote = match declared.quote {
        Some(quote) => quote,
        None => match dialect::sniff_quote(body) {
            dialect::Quoted::Quote(quote) => quote,
            dialect::Quoted::Ambiguous => return Err(ambiguous_quote(body)),
        },
    };
    if !layout.sep_line {
        layout.delimiter = match delimiter.map_or_else(
            || dialect::sniff_with(body, layout.quote),
            Sniffed::Delimiter,
        ) {
            Sniffed::Delimiter(d) => d,
            Sniffed::Ambiguous(seen) => return Err(ambiguous(body, &seen)),
        };
    }
    layout.header = match declared.header {
        Some(header) => header,
        None => match dialect::headerless(body, layout.delimiter, layout.quote) {
            Some(seen) => return Err(no_header(&seen, lines_before)),
            None => true,
        },
    };
    layout.quoting = dialect::quoting(body, layout.delimiter, layout.quote);
    layout.crlf = body
        .iter()
        .position(|&b| b == b'\n')
        .is_some_and(|i| i > 0 && body[i - 1] == b'\r');
    layout.cr = body
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .is_some_and(|i| body[i] == b'\r' && body.get(i + 1) != Some(&b'\n'));
    let (columns, rows) = parse_body(body, lines_before, layout)?;
    layout.ragged = rows.iter().any(|row| row.len() < columns.len());
    Ok((columns, rows, layout))
}

/// A sample whose fields are quoted with both `"` and `'`, read differently.
fn ambiguous_quote(text: &[u8]) -> String {
    let header = text
        .split(|&b| b == b'\n' || b == b'\r')
        .next()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    format!(
        "line 1: fields of the header {header:?} and the rows below it are quoted with both \" and ', which read the file differently; quote with one of them (or declare the quote character), or replace the table with PUT; csvd never writes this file until then"
    )
}

/// A first line that reads as a row, not a header.
fn no_header(seen: &str, lines_before: u64) -> String {
    format!(
        "line {}: {seen}: the file looks like it has no header; add a first line naming the columns, declare the file headerless, or replace the table with PUT; csvd never writes this file until then",
        lines_before + 1
    )
}

/// A header more than one delimiter reads, and nothing to tell them by.
fn ambiguous(text: &[u8], seen: &[u8]) -> String {
    let header = text
        .split(|&b| b == b'\n' || b == b'\r')
        .next()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let ways: Vec<String> = seen.iter().map(|&d| dialect::delimiter_name(d)).collect();
    let first = char::from(seen[0]).escape_default().to_string();
    format!(
        "line 1: the header {header:?} reads as separated by {} alike, and no row tells which; add a first line \"sep={first}\" (or the delimiter meant), or replace the table with PUT; csvd never writes this file until then",
        ways.join(" or ")
    )
}

fn parse_body(
    body: &[u8],
    lines_before: u64,
    layout: Layout,
) -> Result<(Vec<String>, Vec<Row>), String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .delimiter(layout.delimiter)
        .quote(layout.quote)
        .from_reader(body);
    let line_of = |position: Option<&csv::Position>| line_at(body, position) + lines_before;
    // One record, reused: no allocation per row but the row itself.
    let mut record = csv::StringRecord::new();
    if !layout.header {
        // Every line a row; the columns are named by position, as many
        // as the longest row has.
        let mut rows = Vec::new();
        let mut width = 0;
        while reader
            .read_record(&mut record)
            .map_err(|e| describe(body, e))?
        {
            width = width.max(record.len());
            // A mark after blank lines is no part of the first cell (as
            // for a header's first name): written first, it would be a mark.
            match record.get(0).filter(|first| first.starts_with('\u{feff}')) {
                Some(first) if rows.is_empty() => {
                    let first = first.trim_start_matches('\u{feff}').to_string();
                    let rest = record.iter().skip(1).map(str::to_string);
                    rows.push(Row::from_cells(std::iter::once(first).chain(rest)));
                }
                _ => rows.push(Row::from_record(&record)),
            }
        }
        let columns = (1..=width).map(|i| i.to_string()).collect();
        return Ok((columns, rows));
    }
    let mut columns: Vec<String> = match reader
        .read_record(&mut record)
        .map_err(|e| describe(body, e))?
    {
        false => Vec::new(),
        true => record.iter().map(str::to_string).collect(),
    };
    check_names(&mut columns, line_of(record.position()))?;
    // Rows packed into shared blocks: no allocation per row.
    let mut rows = Packer::default();
    while reader
        .read_record(&mut record)
        .map_err(|e| describe(body, e))?
    {
        if record.len() > columns.len() {
            let line = line_of(record.position());
            let separated = match layout.delimiter {
                b',' => String::new(),
                d => format!(" (separated by {})", dialect::delimiter_name(d)),
            };
            return Err(format!(
                "line {line}: {} fields, but the header names {}{separated}",
                record.len(),
                plural(columns.len(), "column", "columns"),
            ));
        }
        rows.push_record(&record);
    }
    Ok((columns, rows.finish()))
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

/// Writes the table as a file in `layout`: its encoding, mark, `sep=`
/// line, delimiter and line ends. A character the encoding cannot hold is
/// an error (writes refuse such cells before they get here).
pub fn write_csv<W: Write>(
    out: W,
    columns: &[String],
    rows: impl Iterator<Item = impl AsRef<Row>>,
    layout: Layout,
) -> io::Result<()> {
    if layout.encoding == encoding_rs::UTF_8 {
        write_text(out, columns, rows, layout)
    } else {
        let mut out = out;
        if layout.bom {
            out.write_all(dialect::bom_of(layout.encoding))?;
        }
        let encoded = dialect::Encode::new(out, layout.encoding);
        write_text(
            encoded,
            columns,
            rows,
            Layout {
                bom: false,
                ..layout
            },
        )
    }
}

/// Writes the table as UTF-8 text in `layout`'s dialect.
fn write_text<W: Write>(
    out: W,
    columns: &[String],
    rows: impl Iterator<Item = impl AsRef<Row>>,
    layout: Layout,
) -> io::Result<()> {
    let mut out = out;
    if layout.bom {
        out.write_all(dialect::bom_of(encoding_rs::UTF_8))?;
    }
    // A ragged file's rows keep their own length (at least one cell: an
    // empty line would be no row at all); others are padded to the header.
    let width = |row: &Row| {
        if layout.ragged {
            row.len().clamp(1, columns.len().max(1))
        } else {
            columns.len()
        }
    };
    let end: &[u8] = match (layout.crlf, layout.cr) {
        (true, _) => b"\r\n",
        (false, true) => b"\r",
        (false, false) => b"\n",
    };
    if columns.is_empty() {
        if layout.sep_line {
            out.write_all(b"sep=")?;
            out.write_all(&[layout.delimiter])?;
            out.write_all(end)?;
        }
        return out.flush();
    }
    // The rows the delimiter is told by when the file is read again.
    let mut rows = rows;
    let head: Vec<_> = rows.by_ref().take(dialect::SAMPLE_ROWS).collect();
    // Written as it is, could the file still be told apart from another
    // dialect? (A header holding two delimiters, once the rows that told
    // them apart are gone, could not: it gets a `sep=` line, as
    // spreadsheets write, rather than become unreadable.)
    let sep_line = layout.sep_line || {
        let mut sample = csv_writer(Vec::new(), layout);
        if layout.header {
            sample.write_record(columns)?;
        }
        for row in &head {
            sample.write_record(row.as_ref().cells(width(row.as_ref())))?;
        }
        let sample = sample.into_inner().map_err(|e| e.into_error())?;
        match dialect::sniff(&sample) {
            Sniffed::Delimiter(d) if d == layout.delimiter => false,
            // One column reads the same in any delimiter (a `.tsv`
            // file's name keeps its tabs).
            Sniffed::Delimiter(b',') => columns.len() > 1,
            _ => true,
        }
    };
    if sep_line {
        out.write_all(b"sep=")?;
        out.write_all(&[layout.delimiter])?;
        out.write_all(end)?;
    }
    // A first cell whose bytes would start the file like a byte-order
    // mark (`þÿ` in Windows-1252) is quoted, so it reads back as a cell.
    let first = if layout.header {
        columns.first().map(String::as_str)
    } else {
        head.first().map(|row| row.as_ref().get(0))
    };
    let marked = !sep_line && first.is_some_and(|cell| looks_like_a_mark(cell, layout.encoding));
    let mut out = out;
    let mut rest = head.into_iter();
    if marked {
        let mut quoted = csv_writer(
            &mut out,
            Layout {
                quoting: dialect::Quoting::All,
                ..layout
            },
        );
        if layout.header {
            quoted.write_record(columns)?;
        } else if let Some(row) = rest.next() {
            quoted.write_record(row.as_ref().cells(width(row.as_ref())))?;
        }
        quoted.flush()?;
    }
    let mut writer = csv_writer(out, layout);
    if layout.header && !marked {
        writer.write_record(columns)?;
    }
    for row in rest.chain(rows) {
        writer.write_record(row.as_ref().cells(width(row.as_ref())))?;
    }
    writer.flush()?;
    Ok(())
}

/// Whether a cell written first in `encoding` would start with the bytes
/// of a byte-order mark.
fn looks_like_a_mark(cell: &str, encoding: &'static encoding_rs::Encoding) -> bool {
    let start: String = cell.chars().take(3).collect();
    let bytes = if encoding == encoding_rs::UTF_8 {
        std::borrow::Cow::Borrowed(start.as_bytes())
    } else {
        encoding.encode(&start).0
    };
    [&b"\xEF\xBB\xBF"[..], b"\xFE\xFF", b"\xFF\xFE"]
        .iter()
        .any(|mark| bytes.starts_with(mark))
}

fn csv_writer<W: Write>(out: W, layout: Layout) -> csv::Writer<W> {
    let terminator = match (layout.crlf, layout.cr) {
        (true, _) => csv::Terminator::CRLF,
        (false, true) => csv::Terminator::Any(b'\r'),
        (false, false) => csv::Terminator::Any(b'\n'),
    };
    let style = match layout.quoting {
        dialect::Quoting::Needed => csv::QuoteStyle::Necessary,
        dialect::Quoting::All => csv::QuoteStyle::Always,
        dialect::Quoting::NonNumeric => csv::QuoteStyle::NonNumeric,
    };
    csv::WriterBuilder::new()
        .terminator(terminator)
        .delimiter(layout.delimiter)
        .quote(layout.quote)
        .quote_style(style)
        .flexible(layout.ragged)
        .from_writer(out)
}

/// A table written to a temporary file beside its own, fsync'd, waiting to
/// be renamed over it by [`commit`].
pub struct Staged {
    tmp: PathBuf,
    stamp: Stamp,
    encoding: &'static encoding_rs::Encoding,
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
    rows: &[Row],
    layout: Layout,
) -> io::Result<Staged> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut file = disk.create(&tmp)?;
        let hash = {
            let mut out = Hashing {
                inner: BufWriter::with_capacity(1 << 16, disk.paced_writer(&mut file)),
                hasher: xxhash_rust::xxh3::Xxh3::new(),
            };
            write_csv(&mut out, columns, rows.iter(), layout)?;
            out.inner.flush()?;
            out.hasher.digest()
        };
        disk.sync_all(&file)?;
        Ok(Staged {
            tmp: tmp.clone(),
            stamp: Stamp::of(&file.metadata()?),
            encoding: layout.encoding,
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
#[cfg(test)]
pub fn commit(
    disk: &Disk,
    staged: Staged,
    path: &Path,
    expected: Option<Stamp>,
) -> io::Result<(Stamp, Option<PathBuf>)> {
    let (stamp, kept, replaced) = commit_keeping_replaced(disk, staged, path, expected)?;
    if let Some(replaced) = replaced {
        remove_replaced(&replaced);
    }
    Ok((stamp, kept))
}

/// As [`commit`], but the engine's own file it replaced is left under its
/// held name, for the caller to remove with [`remove_replaced`] once it
/// holds no lock: freeing a large file's blocks takes tens of
/// milliseconds. (Should the process die in between, the next start
/// removes it, as it does any held file that is the engine's.)
pub fn commit_keeping_replaced(
    disk: &Disk,
    staged: Staged,
    path: &Path,
    expected: Option<Stamp>,
) -> io::Result<(Stamp, Option<PathBuf>, Option<PathBuf>)> {
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
    let (kept, ours) = match replaced {
        Some(stamp) if Some(stamp) != expected => match set_aside_as(disk, &held, path) {
            Ok(kept) => (Some(kept), None),
            Err(err) => {
                // Still there under the held name: say where.
                tracing::error!(
                    "a hand edit of {} made during a checkpoint is kept as {}: {err}",
                    path.display(),
                    held.display()
                );
                (None, None)
            }
        },
        Some(_) => (None, Some(held)),
        None => {
            let _ = fs::remove_file(&held);
            (None, None)
        }
    };
    if let Err(err) = synced {
        if let Some(ours) = ours {
            remove_replaced(&ours);
        }
        return Err(err);
    }
    note_encoding(path, staged.hash, staged.encoding);
    Ok((staged.stamp, kept, ours))
}

/// Removes the file a commit replaced (see [`commit_keeping_replaced`]).
pub fn remove_replaced(held: &Path) {
    let _ = fs::remove_file(held);
}

/// Where files of the engine's own are freed ([`free_gradually`]); whatever
/// is in it goes at the next start ([`empty_free_dir`]).
pub fn free_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(".csvd").join("free")
}

/// Bytes freed at a time by [`free_gradually`].
const FREE_STEP: u64 = 8 << 20;

/// Removes a file of the engine's own (a replaced table file, an old base
/// copy) without stalling every other file's fsync: freeing a large file's
/// blocks in one call holds the file system's journal for tens of
/// milliseconds, and a log fsync waits for all of it. The file is first
/// moved into [`free_dir`] (so a crash meanwhile never leaves a cut-down
/// file under a name that means something), then shortened a few megabytes
/// at a time, then removed.
pub fn free_gradually(disk: &Disk, path: &Path, data_dir: &Path) -> io::Result<()> {
    static FREED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let big = fs::metadata(path).is_ok_and(|m| m.len() > FREE_STEP);
    if !big {
        return disk.remove_file(path);
    }
    let dir = free_dir(data_dir);
    let n = FREED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let freeing = dir.join(format!("{}.{n}", std::process::id()));
    if disk.create_dir_all(&dir).is_err() || disk.rename(path, &freeing).is_err() {
        return disk.remove_file(path);
    }
    if let Ok(file) = fs::OpenOptions::new().write(true).open(&freeing) {
        let mut len = file.metadata().map_or(0, |m| m.len());
        while len > FREE_STEP {
            len -= FREE_STEP;
            if file.set_len(len).is_err() {
                break;
            }
        }
    }
    disk.remove_file(&freeing)
}

/// Removes what an interrupted [`free_gradually`] left.
pub fn empty_free_dir(data_dir: &Path) {
    if let Ok(entries) = fs::read_dir(free_dir(data_dir)) {
        for entry in entries.flatten() {
            let _ = fs::remove_file(entry.path());
        }
    }
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
    let _ = fs::remove_file(encoding_note(path));
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
                ..Layout::default()
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
        let err = parse(b"a\n\xc3\xbc\n\xff\n").unwrap_err();
        assert!(err.contains("UTF-8"), "{err}");
    }

    /// Parses a file and writes it back in its layout: the same bytes.
    fn same_bytes(bytes: &[u8]) -> Layout {
        let (columns, rows, layout) = parse(bytes).unwrap();
        let mut out = Vec::new();
        write_csv(&mut out, &columns, rows.iter(), layout).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(bytes),
            "{layout:?}"
        );
        assert_eq!(out, bytes);
        layout
    }

    #[test]
    fn every_dialect_is_read_and_written_back_as_it_was() {
        for (text, delimiter) in [
            (&b"id;name\r\n1;kim\r\n"[..], b';'),
            (b"id\tname\n1\tkim\n", b'\t'),
            (b"id|name\n1|\"a|b\"\n", b'|'),
            (b"id,name\n1,kim\n", b','),
            (b"id;name\r1;kim\r2;\"a\rb\"\r", b';'),
            (b"id;price\n1;2,5\n2;\"a;b\"\n", b';'),
            (b"\"id\",\"name\"\r\n\"1\",\"kim\"\r\n\"2\",\"\"\r\n", b','),
            (b"\"id\";\"name\"\n1;\"kim\"\n2.5;\"lee\"\n", b';'),
        ] {
            let layout = same_bytes(text);
            assert_eq!(layout.delimiter, delimiter, "{text:?}");
        }
        let (columns, rows, _) = parse(b"id;name\r\n1;kim\r\n").unwrap();
        assert_eq!(columns, ["id", "name"]);
        assert_eq!(rows[0].cells(2).collect::<Vec<_>>(), ["1", "kim"]);
        // A sep= line decides, and is kept.
        let layout = same_bytes(b"sep=;\r\na,b;c\r\n1;2\r\n");
        assert!(layout.sep_line && layout.delimiter == b';' && layout.crlf);
        let layout = same_bytes(b"\xEF\xBB\xBFsep=|\na|b\n");
        assert!(layout.sep_line && layout.bom);
        // Commas win: a semicolon inside a comma-separated header is a name.
        assert!(parse(b"id,a;b\n1,x\n").is_ok());
        // A header in two dialects with nothing to tell them by is refused.
        let err = parse(b"a;b,c\n").unwrap_err();
        assert!(err.contains("sep=") && err.contains("semicolons"), "{err}");
        // Its rows gone, a header in two dialects gets a sep= line
        // rather than become unreadable.
        let (columns, _, layout) = parse(b"id;b,c\n1;2\n").unwrap();
        let mut out = Vec::new();
        write_csv(&mut out, &columns, std::iter::empty::<Row>(), layout).unwrap();
        assert_eq!(out, b"sep=;\nid;b,c\n");
        // Too many fields in the dialect the header has: said so.
        let err = parse(b"id;name\n1;a;b\n").unwrap_err();
        assert!(
            err.contains("line 2") && err.contains("semicolons"),
            "{err}"
        );
    }

    #[test]
    fn every_encoding_is_read_and_written_back_as_it_was() {
        let korean = "이름,도시\r\n김민준,서울특별시\r\n이서연,부산광역시\r\n";
        for encoding in [
            encoding_rs::EUC_KR,
            encoding_rs::SHIFT_JIS,
            encoding_rs::GBK,
            encoding_rs::BIG5,
        ] {
            let text = match encoding.name() {
                "EUC-KR" => korean,
                "Shift_JIS" => "名前,都市\n山田太郎,東京都\n佐藤花子,大阪府\n鈴木一郎,名古屋市\n",
                "GBK" => "姓名,城市\n张伟,北京市\n王芳,上海市\n李娜,广州市\n刘洋,深圳市\n",
                _ => "姓名,城市\n陳大文,臺北市\n林小明,高雄市\n黃志強,臺中市\n",
            };
            let (bytes, _, errors) = encoding.encode(text);
            assert!(!errors);
            let layout = same_bytes(&bytes);
            assert_eq!(layout.encoding, encoding, "{text}");
            let (columns, _, _) = parse(&bytes).unwrap();
            assert_eq!(columns.join(","), text.lines().next().unwrap());
        }
        let (bytes, _, _) =
            encoding_rs::WINDOWS_1252.encode("name;city\nZoë;Zürich\nRenée;Besançon\n");
        let layout = same_bytes(&bytes);
        assert_eq!(
            (layout.encoding, layout.delimiter),
            (encoding_rs::WINDOWS_1252, b';')
        );
        for (bom, le) in [(&b"\xFF\xFE"[..], true), (b"\xFE\xFF", false)] {
            let mut bytes = bom.to_vec();
            for unit in korean.encode_utf16() {
                bytes.extend(if le {
                    unit.to_le_bytes()
                } else {
                    unit.to_be_bytes()
                });
            }
            let layout = same_bytes(&bytes);
            assert!(layout.bom && layout.crlf);
        }
        same_bytes("\u{feff}id,이름\n1,김\n".as_bytes());
    }

    /// Random bytes: reading never panics and always decides.
    #[test]
    fn random_files_always_get_a_decision() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b",;\t|\"\r\n=sepab\xff\xfe\xef\xbb\xbf\xc0\xb0";
        for _ in 0..3000 {
            let len = (next() % 80) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    if r % 4 == 0 {
                        (r >> 8) as u8
                    } else {
                        alphabet[(r >> 8) as usize % alphabet.len()]
                    }
                })
                .collect();
            if let Ok((columns, rows, layout)) = parse(&bytes) {
                let mut out = Vec::new();
                // Writing may refuse nothing it read, and reads back the same.
                write_csv(&mut out, &columns, rows.iter(), layout).unwrap();
                // As the engine reads a file it wrote: in the encoding noted.
                let (again, _, same) =
                    parse_written(&out, layout).unwrap_or_else(|e| panic!("{bytes:?} {out:?} {e}"));
                assert_eq!(
                    (again, same.delimiter, same.encoding),
                    (columns, layout.delimiter, layout.encoding),
                    "{bytes:?}"
                );
            }
        }
    }

    #[test]
    fn a_hand_edit_racing_the_rename_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::real();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, "id\n1\n").unwrap();
        let seen = Stamp::of(&std::fs::metadata(&path).unwrap());
        let columns = vec!["id".to_string()];
        let rows = vec![Row::from_cells(["2"])];
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
    fn quote_characters_and_headerless_files() {
        let layout = same_bytes(b"'id';'name'\r\n'1';'a;''b'''\r\n'2';'lee'\r\n");
        assert_eq!((layout.quote, layout.delimiter), (b'\'', b';'));
        let (_, rows, _) = parse(b"id;name\n1;'a;b'\n").unwrap();
        assert_eq!(rows[0].cells(2).collect::<Vec<_>>(), ["1", "a;b"]);
        let err = parse(b"id,a,b\n1,\"x\",'z,w'\n").unwrap_err();
        assert!(err.contains("both") && err.contains("PUT"), "{err}");
        // Numbers over numbers: no header; refused unless declared.
        let err = parse(b"1,2\n3,4\n").unwrap_err();
        assert!(err.contains("line 1") && err.contains("no header"), "{err}");
        let declared = dialect::Declared {
            header: Some(false),
            ..dialect::Declared::default()
        };
        let text = b"1,kim,\n2,lee,x\n3,,\n";
        let (columns, rows, layout) = parse_declared(text, declared).unwrap();
        assert_eq!(columns, ["1", "2", "3"]);
        assert_eq!(rows.len(), 3);
        assert!(!layout.header);
        let mut out = Vec::new();
        write_csv(&mut out, &columns, rows.iter(), layout).unwrap();
        assert_eq!(out, text);
        // Declared parts are taken as they are.
        let declared = dialect::Declared {
            delimiter: Some(b';'),
            quote: Some(b'\''),
            ..dialect::Declared::default()
        };
        let (columns, _, _) = parse_declared(b"a,b;'c;d'\n", declared).unwrap();
        assert_eq!(columns, ["a,b", "c;d"]);
    }

    #[test]
    fn a_declared_dialect_loads_what_detection_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::real();
        let path = dir.path().join("t.tsv");
        std::fs::write(&path, "1\t2\n3\t4\n").unwrap();
        assert!(load(&disk, &path, "id").is_err());
        let declared = dialect::Declared {
            header: Some(false),
            ..dialect::Declared::default()
        };
        let loaded = load_declared(&disk, &path, "id", declared).unwrap();
        // The name's tab stays; the header is as declared.
        assert_eq!(
            (loaded.layout.delimiter, loaded.layout.header),
            (b'\t', false)
        );
        assert_eq!(loaded.table.columns().as_slice(), ["1", "2"]);
    }

    #[test]
    fn short_rows_and_empty_files_are_fine() {
        let (columns, rows, _) = parse(b"a,b,c\n1\n").unwrap();
        assert_eq!(columns.len(), 3);
        assert_eq!(rows[0].cells(3).collect::<Vec<_>>(), ["1", "", ""]);
        let (columns, rows, _) = parse(b"").unwrap();
        assert!(columns.is_empty() && rows.is_empty());
    }

    #[test]
    fn files_are_freed_in_steps_and_leftovers_go_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::real();
        let big = dir.path().join(".t.csv.1.held");
        let file = fs::File::create(&big).unwrap();
        file.set_len(3 * FREE_STEP + 5).unwrap();
        let small = dir.path().join("small");
        fs::write(&small, b"a").unwrap();
        free_gradually(&disk, &big, dir.path()).unwrap();
        free_gradually(&disk, &small, dir.path()).unwrap();
        assert!(!big.exists() && !small.exists());
        let free = free_dir(dir.path());
        assert_eq!(fs::read_dir(&free).unwrap().count(), 0);
        // What a crash in the middle leaves is the engine's own: it goes.
        fs::write(free.join("9.0"), b"cut down").unwrap();
        empty_free_dir(dir.path());
        assert_eq!(fs::read_dir(&free).unwrap().count(), 0);
    }
}
