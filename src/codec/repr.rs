//! Representations out: rows as JSON, CSV, NDJSON or HTML.
//!
//! A [`RowWriter`] renders a collection piece by piece (`begin`, `row`…,
//! `end`), so the server can stream a table of any size in chunks without
//! building it whole. HTML is only named here (as a [`Format`] a client may
//! ask for): pages are drawn elsewhere, and the writers here write the
//! other formats ([`Data`]).

use std::sync::Arc;

use serde_json::{json, Value};

use super::cell;
use crate::store::schema::{Datatype, Types};
use crate::store::{Row, TableInfo};

/// The representations a table or row can be served as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Ndjson,
    Html,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Json, Format::Csv, Format::Ndjson, Format::Html];

    /// The `Content-Type` of this representation.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Ndjson => "application/x-ndjson",
            Format::Html => "text/html; charset=utf-8",
        }
    }

    /// The bare media type, as matched against `Accept`.
    pub fn media_type(self) -> &'static str {
        self.content_type().split(';').next().unwrap_or_default()
    }

    /// The URL suffix that selects it (`/people.csv`).
    pub fn suffix(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
            Format::Html => "html",
        }
    }

    pub fn from_suffix(suffix: &str) -> Option<Format> {
        Format::ALL
            .into_iter()
            .find(|f| f.suffix().eq_ignore_ascii_case(suffix))
    }

    /// The format as data, or `None` for HTML (a page).
    pub fn data(self) -> Option<Data> {
        match self {
            Format::Json => Some(Data::Json),
            Format::Csv => Some(Data::Csv),
            Format::Ndjson => Some(Data::Ndjson),
            Format::Html => None,
        }
    }
}

/// The formats written here: every [`Format`] but HTML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Data {
    Json,
    Csv,
    Ndjson,
}

/// Renders a collection of rows, piece by piece.
pub struct RowWriter {
    data: Data,
    columns: Arc<Vec<String>>,
    written: usize,
    /// Neutralise formula-like CSV cells ([`neutralise`]).
    csv_safe: bool,
    /// The CSV delimiter (`,` unless an answer asks for another).
    delimiter: u8,
    /// Each column's declared datatype (empty: the typing rule for all).
    types: Vec<Option<Datatype>>,
}

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab,
/// CR first) gets a leading `'`, which spreadsheets show as text (OWASP's
/// advice for CSV exports).
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

impl RowWriter {
    /// `csv_safe` neutralises CSV cells that spreadsheets would run as
    /// formulas.
    pub fn new(data: Data, columns: Arc<Vec<String>>, csv_safe: bool) -> RowWriter {
        RowWriter {
            data,
            columns,
            written: 0,
            csv_safe,
            delimiter: b',',
            types: Vec::new(),
        }
    }

    /// The same writer, rendering JSON cells by the columns' datatypes.
    pub fn typed(self, types: &Types) -> RowWriter {
        let types = types.aligned(&self.columns);
        RowWriter { types, ..self }
    }

    /// The same writer, separating CSV cells by `delimiter`.
    pub fn delimited(self, delimiter: u8) -> RowWriter {
        RowWriter { delimiter, ..self }
    }

    pub fn begin(&mut self, out: &mut Vec<u8>) {
        match self.data {
            Data::Json => out.push(b'['),
            Data::Csv if !self.columns.is_empty() => {
                csv_record(out, self.columns.iter().map(String::as_str), self.delimiter);
            }
            Data::Csv | Data::Ndjson => {}
        }
    }

    pub fn row(&mut self, out: &mut Vec<u8>, row: &Row) {
        match self.data {
            Data::Json => {
                out.extend_from_slice(if self.written == 0 { b"\n" } else { b",\n" });
                json_object_typed(out, &self.columns, &self.types, row);
            }
            Data::Ndjson => {
                json_object_typed(out, &self.columns, &self.types, row);
                out.push(b'\n');
            }
            Data::Csv if self.csv_safe => {
                csv_record(
                    out,
                    row.cells(self.columns.len()).map(neutralise),
                    self.delimiter,
                );
            }
            Data::Csv => csv_record(out, row.cells(self.columns.len()), self.delimiter),
        }
        self.written += 1;
    }

    pub fn end(&mut self, out: &mut Vec<u8>) {
        match self.data {
            Data::Json if self.written == 0 => out.extend_from_slice(b"]\n"),
            Data::Json => out.extend_from_slice(b"\n]\n"),
            Data::Csv | Data::Ndjson => {}
        }
    }
}

/// Appends one CSV record, quoting exactly the fields the `csv` crate
/// quotes (those holding the delimiter, a quote, CR or LF, and the empty field
/// of a record that has no other), ended by CRLF. Streaming a large table is mostly this,
/// so it writes plain fields straight through rather than through a
/// `csv::Writer` per row.
fn csv_record<S: AsRef<str>>(out: &mut Vec<u8>, fields: impl Iterator<Item = S>, delimiter: u8) {
    let start = out.len();
    for (i, field) in fields.enumerate() {
        let field = field.as_ref();
        if i > 0 {
            out.push(delimiter);
        }
        if field
            .bytes()
            .any(|b| b == delimiter || matches!(b, b'"' | b'\r' | b'\n'))
        {
            out.push(b'"');
            for (j, part) in field.split('"').enumerate() {
                if j > 0 {
                    out.extend_from_slice(b"\"\"");
                }
                out.extend_from_slice(part.as_bytes());
            }
            out.push(b'"');
        } else {
            out.extend_from_slice(field.as_bytes());
        }
    }
    if out.len() == start {
        out.extend_from_slice(b"\"\"");
    }
    out.extend_from_slice(b"\r\n");
}

/// A CSV writer appending to `out`. CSV answers end lines with CRLF, as
/// RFC 4180 and spreadsheets expect. The small buffer keeps a writer per
/// row cheap.
fn csv_writer(out: &mut Vec<u8>) -> csv::Writer<&mut Vec<u8>> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .buffer_capacity(256)
        .from_writer(out)
}

/// Renders rows whole (for small answers).
pub fn render_rows<'a>(
    data: Data,
    columns: &Arc<Vec<String>>,
    csv_safe: bool,
    rows: impl IntoIterator<Item = &'a Row>,
) -> Vec<u8> {
    render_rows_typed(data, columns, &Types::default(), csv_safe, rows)
}

/// [`render_rows`], JSON cells rendered by the columns' datatypes.
pub fn render_rows_typed<'a>(
    data: Data,
    columns: &Arc<Vec<String>>,
    types: &Types,
    csv_safe: bool,
    rows: impl IntoIterator<Item = &'a Row>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut writer = RowWriter::new(data, columns.clone(), csv_safe).typed(types);
    writer.begin(&mut out);
    for row in rows {
        writer.row(&mut out, row);
    }
    writer.end(&mut out);
    out
}

/// Renders one row on its own: a JSON object, one NDJSON line, or a CSV
/// header and row.
pub fn render_row(data: Data, columns: &Arc<Vec<String>>, csv_safe: bool, row: &Row) -> Vec<u8> {
    render_row_typed(data, columns, &Types::default(), csv_safe, row)
}

/// [`render_row`], JSON cells rendered by the columns' datatypes.
pub fn render_row_typed(
    data: Data,
    columns: &Arc<Vec<String>>,
    types: &Types,
    csv_safe: bool,
    row: &Row,
) -> Vec<u8> {
    match data {
        Data::Json => {
            // Room for the cells, the names and the punctuation, so the
            // answer is allocated once (escapes may still grow it).
            let room = row.size() + columns.iter().map(|c| c.len() + 6).sum::<usize>() + 4;
            let mut out = Vec::with_capacity(room);
            json_object_typed(&mut out, columns, &types.aligned(columns), row);
            out.push(b'\n');
            out
        }
        Data::Ndjson | Data::Csv => render_rows_typed(data, columns, types, csv_safe, [row]),
    }
}

/// Writes a row as a JSON object, cells typed by the typing rule.
pub fn json_object(out: &mut Vec<u8>, columns: &[String], row: &Row) {
    json_object_typed(out, columns, &[], row);
}

/// Writes a row as a JSON object, each cell by its column's datatype in
/// `types` (aligned with `columns`; empty, or `None` for a column: the
/// typing rule).
pub fn json_object_typed(
    out: &mut Vec<u8>,
    columns: &[String],
    types: &[Option<Datatype>],
    row: &Row,
) {
    out.push(b'{');
    for (i, (name, value)) in columns.iter().zip(row.cells(columns.len())).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        cell::write_json_string(out, name);
        out.push(b':');
        cell::write_typed(out, value, types.get(i).copied().flatten());
    }
    out.push(b'}');
}

/// The JSON value of one table's entry in the table list.
pub fn table_info_json(info: &TableInfo) -> Value {
    let mut value = json!({
        "name": info.name,
        "rows": info.rows,
        "columns": info.columns,
        "modified": humantime::format_rfc3339_seconds(info.modified).to_string(),
        "url": format!("/{}", info.name),
    });
    if let Some(error) = &info.error {
        value["error"] = json!(error);
    }
    if let Some(notice) = &info.notice {
        value["notice"] = json!(notice);
    }
    value
}

/// Renders the table list.
pub fn render_tables(data: Data, tables: &[TableInfo]) -> Vec<u8> {
    let mut out = Vec::new();
    match data {
        // One entry a line, framed as arrays of rows are.
        Data::Json => {
            out.push(b'[');
            for (i, info) in tables.iter().enumerate() {
                out.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
                let _ = serde_json::to_writer(&mut out, &table_info_json(info));
            }
            out.extend_from_slice(if tables.is_empty() { b"]\n" } else { b"\n]\n" });
        }
        Data::Ndjson => {
            for info in tables {
                let _ = serde_json::to_writer(&mut out, &table_info_json(info));
                out.push(b'\n');
            }
        }
        Data::Csv => {
            let mut writer = csv_writer(&mut out);
            let _ = writer.write_record(["name", "rows", "columns", "modified", "error"]);
            for info in tables {
                let _ = writer.write_record([
                    info.name.as_str(),
                    &info.rows.to_string(),
                    &info.columns.join(","),
                    &humantime::format_rfc3339_seconds(info.modified).to_string(),
                    info.error.as_deref().unwrap_or(""),
                ]);
            }
            let _ = writer.flush();
        }
    }
    out
}

/// Percent-encodes an id for use as one path segment.
pub fn encode_segment(text: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(names: &[&str]) -> Arc<Vec<String>> {
        Arc::new(names.iter().map(|c| c.to_string()).collect())
    }

    #[test]
    fn json_array_types_cells() {
        let rows = [
            Row::from_cells(["1", "007", "true"]),
            Row::from_cells(["2", "x"]),
        ];
        let out = render_rows(Data::Json, &cols(&["id", "zip", "ok"]), false, rows.iter());
        let value: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            value,
            json!([{"id":1,"zip":"007","ok":true},{"id":2,"zip":"x","ok":""}])
        );
        let empty = render_rows(Data::Json, &cols(&["id"]), false, []);
        assert_eq!(empty, b"[]\n");
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        let rows = [Row::from_cells(["1", "a,\"b\"\nc"])];
        let out = render_rows(Data::Csv, &cols(&["id", "t"]), false, rows.iter());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "id,t\r\n1,\"a,\"\"b\"\"\nc\"\r\n"
        );
        let lone = render_rows(
            Data::Csv,
            &cols(&["x"]),
            false,
            [Row::from_cells([""])].iter(),
        );
        assert_eq!(lone, b"x\r\n\"\"\r\n");
    }

    #[test]
    fn csv_records_match_the_csv_crate() {
        let records: [&[&str]; 7] = [
            &["1", "kim", ""],
            &[""],
            &["", ""],
            &["a,b", "say \"hi\"", "two\nlines", "cr\r", "\""],
            &["é", " spaced ", "#hash", "'quote'"],
            &["\"\"", ",", "\r\n"],
            &[],
        ];
        for fields in records {
            let mut ours = Vec::new();
            csv_record(&mut ours, fields.iter().copied(), b',');
            let mut theirs = Vec::new();
            let mut writer = csv_writer(&mut theirs);
            writer.write_record(fields).unwrap();
            writer.flush().unwrap();
            drop(writer);
            assert_eq!(ours, theirs, "{fields:?}");
        }
    }

    #[test]
    fn csv_safe_is_the_writers_own() {
        let rows = [Row::from_cells(["1", "=1+1"])];
        let columns = cols(&["id", "f"]);
        let safe = render_rows(Data::Csv, &columns, true, rows.iter());
        assert_eq!(safe, b"id,f\r\n1,'=1+1\r\n");
        let plain = render_rows(Data::Csv, &columns, false, rows.iter());
        assert_eq!(plain, b"id,f\r\n1,=1+1\r\n");
        let one = render_row(Data::Csv, &columns, true, &rows[0]);
        assert_eq!(one, safe);
        let json = render_row(Data::Json, &columns, true, &rows[0]);
        assert_eq!(json, b"{\"id\":1,\"f\":\"=1+1\"}\n");
    }

    #[test]
    fn formulas_are_neutralised() {
        for (cell, safe) in [
            ("=1+1", "'=1+1"),
            ("+1", "'+1"),
            ("-5", "'-5"),
            ("@x", "'@x"),
            ("\tx", "'\tx"),
            ("a=b", "a=b"),
            ("", ""),
        ] {
            assert_eq!(neutralise(cell), safe);
        }
    }
}
