//! Request bodies in: JSON (object or array), NDJSON, CSV, HTML forms, and
//! the seed's `key:value` lines. Each parser turns bytes into packed
//! records (one allocation a record, column names once), or says exactly
//! what is wrong and where. A CSV body is parsed as it arrives ([`Reader`]),
//! so only its rows are held, never its bytes whole.

use serde::de::{DeserializeSeed, IgnoredAny, SeqAccess, Visitor};
use serde_json::Value;

use super::cell;
use crate::store::{Fields, Records, RecordsBuilder, Row};

/// The formats a request body may come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Ndjson,
    Csv,
    /// `text/tab-separated-values`: CSV with tabs (quoted as in CSV).
    Tsv,
    Form,
    /// `key:value` (or `key=value`) lines, the seed client's format.
    KeyValue,
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The media type is not one we read (415).
    #[error("cannot read a body of type {0:?}; send application/json, application/x-ndjson, text/csv, text/tab-separated-values, application/x-www-form-urlencoded, or key:value lines as text/plain")]
    Unsupported(String),
    /// The body does not parse (400).
    #[error("{0}")]
    Invalid(String),
}

/// The records a body holds.
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    /// Every field name, in order of first appearance (for CSV, the
    /// header), and the records' cells in that order.
    pub records: Records,
    /// Whether the body is a collection (array, CSV, NDJSON) rather than one record.
    pub many: bool,
    /// The fields given a JSON object or array somewhere in the body (each
    /// once, in order of first appearance): the store records them as
    /// JSON columns, rendered back as JSON.
    pub nested: Vec<String>,
}

/// Notes the fields of one JSON object that hold objects or arrays.
pub fn note_nested(nested: &mut Vec<String>, map: &serde_json::Map<String, Value>) {
    for (key, value) in map {
        if (value.is_object() || value.is_array()) && !nested.iter().any(|k| k == key) {
            nested.push(key.clone());
        }
    }
}

/// A body's format and the character set it is in (`None`: UTF-8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyType {
    pub kind: BodyKind,
    pub charset: Option<&'static encoding_rs::Encoding>,
}

impl From<BodyKind> for BodyType {
    fn from(kind: BodyKind) -> BodyType {
        BodyType {
            kind,
            charset: None,
        }
    }
}

impl PartialEq<BodyKind> for BodyType {
    fn eq(&self, kind: &BodyKind) -> bool {
        self.charset.is_none() && self.kind == *kind
    }
}

/// Picks the parser for a `Content-Type` (absent: `key:value` lines), and
/// the character set its `charset=` names (any the WHATWG Encoding
/// Standard knows; another is refused).
pub fn kind_of(content_type: Option<&str>) -> Result<BodyType, BodyError> {
    let Some(content_type) = content_type else {
        return Ok(BodyKind::KeyValue.into());
    };
    let mut parts = content_type.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let mut charset = None;
    for param in parts {
        if let Some((key, value)) = param.split_once('=') {
            let value = value.trim().trim_matches('"').to_ascii_lowercase();
            if key.trim().eq_ignore_ascii_case("charset") {
                match crate::store::dialect::charset(&value) {
                    Some(e) if e == encoding_rs::UTF_8 => {}
                    Some(e) => charset = Some(e),
                    None => {
                        return Err(BodyError::Unsupported(format!(
                            "{essence}; charset={value} (a character set csvd does not know; send UTF-8)"
                        )))
                    }
                }
            }
        }
    }
    let kind = match essence.as_str() {
        "application/json" => BodyKind::Json,
        e if e.starts_with("application/") && e.ends_with("+json") => BodyKind::Json,
        "application/x-ndjson" | "application/jsonl" | "application/json-seq" => BodyKind::Ndjson,
        "text/csv" | "application/csv" => BodyKind::Csv,
        "text/tab-separated-values" => BodyKind::Tsv,
        "application/x-www-form-urlencoded" => BodyKind::Form,
        "" => BodyKind::KeyValue,
        e if e.starts_with("text/") => BodyKind::KeyValue,
        _ => return Err(BodyError::Unsupported(essence)),
    };
    Ok(BodyType { kind, charset })
}

/// A body in another character set, as UTF-8 (a mark of its own dropped).
fn decode_charset(
    encoding: &'static encoding_rs::Encoding,
    bytes: &[u8],
) -> Result<String, BodyError> {
    let (text, had_errors) = encoding.decode_with_bom_removal(bytes);
    if had_errors {
        return Err(BodyError::Invalid(format!(
            "the body is not valid {}, as its Content-Type's charset says",
            encoding.name()
        )));
    }
    Ok(text.into_owned())
}

/// How a CSV body is written, when it is not comma-separated with `"`
/// quotes and a header line (`?delimiter=;`, `?quote='`, `?header=0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvOptions {
    /// `None`: detected from the body's first 64 KiB, as a table file's
    /// is (tabs for `text/tab-separated-values`).
    pub delimiter: Option<u8>,
    pub quote: u8,
    /// The quote character is detected (`"` or `'`) rather than `quote`.
    pub detect_quote: bool,
    /// No charset was given: a body that does not start as UTF-8 (a
    /// UTF-16 byte-order mark, or other bytes in its first 64 KiB) is
    /// gathered whole and its encoding detected as a table file's is.
    pub detect_encoding: bool,
    /// `false`: the first line is a row; the columns are named `1`, `2`, ….
    pub header: bool,
}

impl Default for CsvOptions {
    fn default() -> CsvOptions {
        CsvOptions {
            delimiter: None,
            quote: b'"',
            detect_quote: false,
            detect_encoding: false,
            header: true,
        }
    }
}

/// A body read piece by piece as it arrives. A CSV body is parsed as it
/// comes (its bytes are dropped once they are rows); any other kind is
/// gathered whole, then parsed, and its bytes dropped.
pub enum Reader {
    Csv(Box<CsvReader>),
    Whole {
        kind: BodyType,
        bytes: Vec<u8>,
        options: CsvOptions,
        numbering: Option<String>,
    },
}

/// Whether a body's first bytes are not UTF-8 text: a UTF-16 byte-order
/// mark, or a byte no UTF-8 character has (a character cut at the end of
/// the bytes is not one).
fn foreign(bytes: &[u8]) -> bool {
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return true;
    }
    let text = bytes.strip_prefix(BOM).unwrap_or(bytes);
    matches!(std::str::from_utf8(text), Err(err) if err.error_len().is_some())
}

impl Reader {
    /// `expected`: the body's declared length, to gather it without copies.
    /// `numbering`: the id column, when a CSV body without it is to have
    /// its rows numbered in it (see [`Records::numbered`]).
    pub fn new(kind: impl Into<BodyType>, expected: usize, numbering: Option<&str>) -> Reader {
        Reader::with_options(kind, CsvOptions::default(), expected, numbering)
    }

    /// [`Reader::new`], reading a CSV body in the dialect `options` gives.
    pub fn with_options(
        kind: impl Into<BodyType>,
        options: CsvOptions,
        expected: usize,
        numbering: Option<&str>,
    ) -> Reader {
        let kind = kind.into();
        match (kind.kind, kind.charset) {
            (BodyKind::Csv | BodyKind::Tsv, None) => Reader::Csv(Box::new(CsvReader::configured(
                kind.kind, options, numbering,
            ))),
            // Other character sets are decoded whole, then read as UTF-8.
            _ => Reader::Whole {
                kind,
                bytes: Vec::with_capacity(expected),
                options,
                numbering: numbering.map(str::to_string),
            },
        }
    }

    /// Takes the next piece of the body; a CSV error is told at once.
    pub fn feed(&mut self, piece: &[u8]) -> Result<(), BodyError> {
        match self {
            Reader::Csv(reader) => {
                reader.feed(piece)?;
                if let Some(whole) = reader.foreign_start() {
                    *self = whole;
                }
                Ok(())
            }
            Reader::Whole { bytes, .. } => {
                bytes.extend_from_slice(piece);
                Ok(())
            }
        }
    }

    /// The records, once the whole body has been fed.
    pub fn finish(self) -> Result<Parsed, BodyError> {
        match self {
            Reader::Csv(mut reader) => match reader.foreign_rest() {
                Some(whole) => whole.finish(),
                None => reader.finish(),
            },
            Reader::Whole {
                kind,
                bytes,
                options,
                numbering,
            } => {
                let text = match kind.charset {
                    None if options.detect_encoding
                        && matches!(kind.kind, BodyKind::Csv | BodyKind::Tsv) =>
                    {
                        let decoded = crate::store::dialect::decode(&bytes).map_err(|err| {
                            BodyError::Invalid(format!(
                                "{err}; name the body's encoding with charset= in its Content-Type (or ?charset=)"
                            ))
                        })?;
                        std::borrow::Cow::Owned(decoded.text.into_owned().into_bytes())
                    }
                    None => std::borrow::Cow::Borrowed(&bytes[..]),
                    Some(encoding) => {
                        std::borrow::Cow::Owned(decode_charset(encoding, &bytes)?.into_bytes())
                    }
                };
                match kind.kind {
                    BodyKind::Csv | BodyKind::Tsv => {
                        let mut reader =
                            CsvReader::configured(kind.kind, options, numbering.as_deref());
                        reader.feed(&text)?;
                        reader.finish()
                    }
                    other => parse(other, &text),
                }
            }
        }
    }
}

/// Parses a body of the given kind.
pub fn parse(kind: BodyKind, bytes: &[u8]) -> Result<Parsed, BodyError> {
    Ok(match kind {
        // The CSV reader says on which line and in which field a byte is
        // not UTF-8, which tells more than an offset.
        BodyKind::Csv | BodyKind::Tsv => {
            let mut reader = match kind {
                BodyKind::Tsv => CsvReader {
                    core: tabs(),
                    delimiter: b'\t',
                    ..CsvReader::default()
                },
                _ => CsvReader::default(),
            };
            reader.feed(bytes)?;
            reader.finish()?
        }
        BodyKind::Json => parse_json(text(bytes)?)?,
        BodyKind::Ndjson => parse_ndjson(text(bytes)?)?,
        BodyKind::Form | BodyKind::KeyValue => {
            let text = text(bytes)?;
            match kind {
                // `curl -d '{"name":"kim"}'` sends JSON labelled as a form:
                // a form or key:value body cannot start with a brace or
                // bracket, so such a body is read as the JSON it is.
                _ if looks_like_json(text) => parse_json(text)?,
                // `curl -d 'name:kim'` sends key:value text labelled as a form.
                BodyKind::Form if text.contains('=') => one(parse_form(text)?, Vec::new()),
                _ => one(parse_key_values(text)?, Vec::new()),
            }
        }
    })
}

/// The CSV parser, reading tabs as delimiters.
fn tabs() -> csv_core::Reader {
    csv_core::ReaderBuilder::new().delimiter(b'\t').build()
}

/// A text body's text: UTF-8, without a byte-order mark, not empty.
fn text(bytes: &[u8]) -> Result<&str, BodyError> {
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    let text = std::str::from_utf8(bytes);
    if text.is_ok_and(|text| text.trim().is_empty()) {
        return Err(empty());
    }
    text.map_err(|e| not_utf8(bytes, e.valid_up_to()))
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// How much of a CSV body the delimiter and quote are detected from
/// (the body is read as it arrives after it).
const SNIFF_BYTES: usize = 64 * 1024;

/// The quote character of a CSV body's first bytes, as a table file's is
/// detected; both read differently is a 400 asking which.
fn detected_quote(text: &[u8]) -> Result<u8, BodyError> {
    match crate::store::dialect::sniff_quote(text) {
        crate::store::dialect::Quoted::Quote(quote) => Ok(quote),
        crate::store::dialect::Quoted::Ambiguous => Err(BodyError::Invalid(
            "the body's fields are quoted both with \" and with ', and the two read it differently; say which with ?quote=%22 or ?quote=%27".into(),
        )),
    }
}

/// The delimiter of a CSV body's first bytes, as a table file's is
/// detected (`,` `;` tab `|`; commas when none fits); a tie is a 400
/// asking which.
fn detected_delimiter(text: &[u8], quote: u8) -> Result<u8, BodyError> {
    use crate::store::dialect::{delimiter_name, sniff_with, Sniffed};
    match sniff_with(text, quote) {
        Sniffed::Delimiter(delimiter) => Ok(delimiter),
        Sniffed::Ambiguous(candidates) => {
            let names: Vec<String> = candidates.iter().map(|&d| delimiter_name(d)).collect();
            Err(BodyError::Invalid(format!(
                "the body's delimiter is ambiguous: {} read its header equally well and no row tells them apart; say which with ?delimiter= (for example ?delimiter=%3B), or start the body with a line sep=;",
                names.join(" or ")
            )))
        }
    }
}

fn empty() -> BodyError {
    BodyError::Invalid(
        "the body is empty; expected the fields of a row (for example JSON {\"name\": \"kim\"} or the line name:kim)".into(),
    )
}

fn not_utf8(bytes: &[u8], at: usize) -> BodyError {
    let before = &bytes[..at];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = at
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1)
        + 1;
    BodyError::Invalid(format!(
        "the body is not valid UTF-8: line {line}, byte {column} of the line; send UTF-8 text"
    ))
}

fn looks_like_json(text: &str) -> bool {
    let text = text.trim_start();
    text.starts_with('{') || text.starts_with('[')
}

fn one(record: Fields, nested: Vec<String>) -> Parsed {
    Parsed {
        records: Records::from_fields(Vec::new(), vec![record]),
        many: false,
        nested,
    }
}

fn invalid_json(err: serde_json::Error) -> BodyError {
    BodyError::Invalid(format!("invalid JSON: {err}"))
}

fn parse_json(text: &str) -> Result<Parsed, BodyError> {
    if text.trim_start().starts_with('[') {
        return parse_json_array(text);
    }
    let value: Value = serde_json::from_str(text).map_err(invalid_json)?;
    match &value {
        Value::Object(map) => {
            let mut nested = Vec::new();
            note_nested(&mut nested, map);
            Ok(one(object_fields(&value, None)?, nested))
        }
        other => Err(BodyError::Invalid(format!(
            "expected a JSON object (one row) or an array of objects (many rows), got {}",
            describe(other)
        ))),
    }
}

/// An array of objects, packed one element at a time: the array is never
/// held as JSON values whole.
fn parse_json_array(text: &str) -> Result<Parsed, BodyError> {
    let mut array = Array::default();
    let mut deserializer = serde_json::Deserializer::from_str(text);
    (&mut array)
        .deserialize(&mut deserializer)
        .map_err(invalid_json)?;
    deserializer.end().map_err(invalid_json)?;
    if let Some(refused) = array.refused {
        return Err(refused);
    }
    Ok(Parsed {
        records: array.records.finish(),
        many: true,
        nested: array.nested,
    })
}

/// The elements of a JSON array as records; the first element that is not
/// an object is refused, once the rest has been read as JSON (a syntax
/// error anywhere is told first, as for any body).
#[derive(Default)]
struct Array {
    records: RecordsBuilder,
    refused: Option<BodyError>,
    nested: Vec<String>,
}

impl<'de> DeserializeSeed<'de> for &mut Array {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for &mut Array {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut count = 0;
        loop {
            if self.refused.is_some() {
                if seq.next_element::<IgnoredAny>()?.is_none() {
                    return Ok(());
                }
                continue;
            }
            let Some(value) = seq.next_element::<Value>()? else {
                return Ok(());
            };
            count += 1;
            match value {
                Value::Object(map) => {
                    note_nested(&mut self.nested, &map);
                    self.records
                        .push(map.iter().map(|(k, v)| (k.as_str(), cell::from_json(v))))
                }
                other => {
                    self.refused = Some(not_an_object(
                        &other,
                        Some(format!("element {count} of the array")),
                    ))
                }
            }
        }
    }
}

fn parse_ndjson(text: &str) -> Result<Parsed, BodyError> {
    let mut records = RecordsBuilder::default();
    let mut nested = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line)
            .map_err(|e| BodyError::Invalid(format!("line {}: invalid JSON: {e}", i + 1)))?;
        match &value {
            Value::Object(map) => {
                note_nested(&mut nested, map);
                records.push(map.iter().map(|(k, v)| (k.as_str(), cell::from_json(v))))
            }
            other => return Err(not_an_object(other, Some(format!("line {}", i + 1)))),
        }
    }
    Ok(Parsed {
        records: records.finish(),
        many: true,
        nested,
    })
}

fn object_fields(value: &Value, place: Option<String>) -> Result<Fields, BodyError> {
    match value {
        Value::Object(map) => Ok(map
            .iter()
            .map(|(k, v)| (k.clone(), cell::from_json(v)))
            .collect()),
        other => Err(not_an_object(other, place)),
    }
}

fn not_an_object(value: &Value, place: Option<String>) -> BodyError {
    BodyError::Invalid(format!(
        "{} is {}; expected an object of fields",
        place.unwrap_or_else(|| "the body".into()),
        describe(value)
    ))
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A CSV body parsed as it arrives: a header line, then rows, each packed
/// as soon as it is complete. Reads CSV exactly as a table file is read
/// (the same parser and rules: blank lines skipped, short rows padded, a
/// row longer than the header, a repeated or empty column name or bytes
/// that are not UTF-8 refused, each with its line).
pub struct CsvReader {
    core: csv_core::Reader,
    delimiter: u8,
    /// The first line names the columns (else they are named by position).
    header: bool,
    quote: u8,
    /// The first bytes, until it is known whether they are a byte-order
    /// mark (and, when the dialect is detected, until there are enough).
    start: Vec<u8>,
    started: bool,
    /// Detect the delimiter (and the quote) from the first bytes.
    sniff_delimiter: bool,
    sniff_quote: bool,
    /// What the reader was made with, should the body turn out not to be
    /// UTF-8 and need gathering whole (`Some` only when its encoding is to
    /// be detected).
    made: Option<(BodyKind, CsvOptions)>,
    blank: Blank,
    /// Line ends before the header (blank lines the parser skips).
    leading_lfs: usize,
    leading: bool,
    lines: Lines,
    /// The line the record being read starts on.
    record_line: u64,
    /// The record being read: its cells' bytes and where each ends.
    text: Vec<u8>,
    ends: Vec<usize>,
    text_len: usize,
    ends_len: usize,
    columns: Option<Vec<String>>,
    rows: Vec<Row>,
    /// The id column, to add and number rows in when the header lacks it.
    numbering: Option<String>,
    numbered: bool,
    /// The text of a row's number, reused.
    number: String,
}

impl Default for CsvReader {
    fn default() -> CsvReader {
        CsvReader {
            core: csv_core::Reader::new(),
            delimiter: b',',
            header: true,
            quote: b'"',
            start: Vec::new(),
            started: false,
            sniff_delimiter: false,
            sniff_quote: false,
            made: None,
            blank: Blank::default(),
            leading_lfs: 0,
            leading: true,
            lines: Lines::default(),
            record_line: 1,
            text: vec![0; 4096],
            ends: vec![0; 64],
            text_len: 0,
            ends_len: 0,
            columns: None,
            rows: Vec::new(),
            numbering: None,
            numbered: false,
            number: String::new(),
        }
    }
}

impl CsvReader {
    /// A reader that numbers rows in the id column `numbering` when the
    /// header does not name it (see [`Records::numbered`]).
    pub fn numbering(numbering: Option<&str>) -> CsvReader {
        CsvReader {
            numbering: numbering.map(str::to_string),
            ..CsvReader::default()
        }
    }

    /// A reader of `kind` (CSV or TSV) in the dialect `options` gives.
    pub fn configured(kind: BodyKind, options: CsvOptions, numbering: Option<&str>) -> CsvReader {
        let tsv = if kind == BodyKind::Tsv { b'\t' } else { b',' };
        let delimiter = options.delimiter.unwrap_or(tsv);
        CsvReader {
            core: csv_core::ReaderBuilder::new()
                .delimiter(delimiter)
                .quote(options.quote)
                .build(),
            delimiter,
            header: options.header,
            quote: options.quote,
            sniff_delimiter: kind == BodyKind::Csv && options.delimiter.is_none(),
            sniff_quote: options.detect_quote,
            made: options.detect_encoding.then_some((kind, options)),
            ..CsvReader::numbering(numbering)
        }
    }

    /// Takes the next piece of the body.
    pub fn feed(&mut self, piece: &[u8]) -> Result<(), BodyError> {
        if self.started {
            return self.read(piece);
        }
        // Byte-order marks may arrive split across pieces; a dialect to
        // detect needs a sample (or the whole body, when it is shorter).
        self.start.extend_from_slice(piece);
        let marks = [BOM, BOM].concat();
        if self.start.len() < marks.len() && marks.starts_with(&self.start) {
            return Ok(());
        }
        let sampling = self.sniff_delimiter || self.sniff_quote || self.made.is_some();
        if sampling && self.start.len() < SNIFF_BYTES {
            return Ok(());
        }
        if self.made.is_some() && foreign(&self.start) {
            // Left for [`CsvReader::foreign_start`] to take.
            return Ok(());
        }
        self.begin()
    }

    /// A reader gathering the whole body, if its first bytes (at least a
    /// sample's worth) show it is not UTF-8 and its encoding is to be
    /// detected.
    fn foreign_start(&mut self) -> Option<Reader> {
        if self.started || self.start.len() < SNIFF_BYTES {
            return None;
        }
        self.foreign_rest()
    }

    /// [`CsvReader::foreign_start`] at the end of the body, whatever its
    /// length.
    fn foreign_rest(&mut self) -> Option<Reader> {
        if self.started || !foreign(&self.start) {
            return None;
        }
        let (kind, options) = self.made?;
        Some(Reader::Whole {
            kind: kind.into(),
            bytes: std::mem::take(&mut self.start),
            options,
            numbering: self.numbering.clone(),
        })
    }

    /// Starts reading once the first bytes are told apart from byte-order
    /// marks: up to two are not part of the CSV (a body's, and one more, as
    /// a table file may start with one).
    fn begin(&mut self) -> Result<(), BodyError> {
        self.started = true;
        let start = std::mem::take(&mut self.start);
        let rest = start.strip_prefix(BOM).unwrap_or(&start);
        let rest = rest.strip_prefix(BOM).unwrap_or(rest);
        // A `sep=;` first line (as spreadsheets write) names the delimiter
        // and is not part of the CSV.
        let head = &rest[..rest.len().min(8)];
        let text = match std::str::from_utf8(head) {
            Ok(text) => text,
            Err(err) => std::str::from_utf8(&head[..err.valid_up_to()]).unwrap_or_default(),
        };
        if let Some((delimiter, len)) = crate::store::dialect::sep_line(text) {
            self.delimiter = delimiter;
            self.core = csv_core::ReaderBuilder::new()
                .delimiter(delimiter)
                .quote(self.quote)
                .build();
            if self.sniff_quote {
                self.quote = detected_quote(&rest[len..])?;
                self.core = csv_core::ReaderBuilder::new()
                    .delimiter(delimiter)
                    .quote(self.quote)
                    .build();
            }
            self.lines.feed(&rest[..len]);
            self.record_line = self.lines.line();
            self.leading_lfs += 1;
            return self.read(&rest[len..]);
        }
        if self.sniff_quote || self.sniff_delimiter {
            if self.sniff_quote {
                self.quote = detected_quote(rest)?;
            }
            if self.sniff_delimiter {
                self.delimiter = detected_delimiter(rest, self.quote)?;
            }
            self.core = csv_core::ReaderBuilder::new()
                .delimiter(self.delimiter)
                .quote(self.quote)
                .build();
        }
        self.read(rest)
    }

    /// The records, once the whole body has been fed.
    pub fn finish(mut self) -> Result<Parsed, BodyError> {
        if !self.started {
            self.begin()?;
        }
        // The end of input completes a last record without a line end.
        self.read(&[])?;
        if self.blank.is_blank() {
            return Err(empty());
        }
        Ok(Parsed {
            records: Records {
                columns: self.columns.unwrap_or_default(),
                rows: self.rows,
                numbered: self.numbered,
            },
            many: true,
            nested: Vec::new(),
        })
    }

    fn read(&mut self, mut input: &[u8]) -> Result<(), BodyError> {
        use csv_core::ReadRecordResult;
        self.blank.scan(input);
        if self.leading {
            for &b in input {
                match b {
                    b'\n' => self.leading_lfs += 1,
                    b'\r' => {}
                    _ => {
                        self.leading = false;
                        break;
                    }
                }
            }
        }
        loop {
            let (result, read, written, ended) = self.core.read_record(
                input,
                &mut self.text[self.text_len..],
                &mut self.ends[self.ends_len..],
            );
            self.lines.feed(&input[..read]);
            input = &input[read..];
            self.text_len += written;
            self.ends_len += ended;
            match result {
                ReadRecordResult::InputEmpty | ReadRecordResult::End => return Ok(()),
                ReadRecordResult::OutputFull => {
                    let len = self.text.len();
                    self.text.resize(len * 2, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let len = self.ends.len();
                    self.ends.resize(len * 2, 0);
                }
                ReadRecordResult::Record => {
                    self.record()?;
                    self.text_len = 0;
                    self.ends_len = 0;
                    self.record_line = self.lines.line();
                }
            }
        }
    }

    /// One complete record: the header, or a row.
    fn record(&mut self) -> Result<(), BodyError> {
        let line = self.record_line;
        let bytes = &self.text[..self.text_len];
        let ends = &self.ends[..self.ends_len];
        // Each cell must be UTF-8 on its own (a character split between
        // two cells is not).
        if !bytes.is_ascii() {
            let mut from = 0;
            for (i, &end) in ends.iter().enumerate() {
                if std::str::from_utf8(&bytes[from..end]).is_err() {
                    return Err(invalid_csv(format!(
                        "line {line}: field {} is not valid UTF-8 (save the file as UTF-8)",
                        i + 1
                    )));
                }
                from = end;
            }
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|_| invalid_csv(format!("line {line}: a field is not valid UTF-8")))?;
        if !self.header {
            // Columns named by position, as many as the longest row has.
            let columns = self.columns.get_or_insert_with(Vec::new);
            let named = columns.len() - usize::from(self.numbered);
            if named == 0 {
                if let Some(id) = &self.numbering {
                    columns.push(id.clone());
                    self.numbered = true;
                }
            }
            for n in named + 1..=ends.len() {
                columns.push(n.to_string());
            }
        }
        let Some(columns) = &self.columns else {
            let mut columns = self.header(text, ends)?;
            if let Some(id) = &self.numbering {
                if !columns.contains(id) {
                    columns.insert(0, id.clone());
                    self.numbered = true;
                }
            }
            self.columns = Some(columns);
            return Ok(());
        };
        let count = columns.len() - usize::from(self.numbered);
        if ends.len() > count {
            return Err(invalid_csv(format!(
                "line {line}: {} fields, but the header names {count} column{}",
                ends.len(),
                if count == 1 { "" } else { "s" }
            )));
        }
        let row = if self.numbered {
            use std::fmt::Write;
            self.number.clear();
            let _ = write!(self.number, "{}", self.rows.len() + 1);
            Row::from_ends_after(Some(&self.number), text, ends)
        } else {
            Row::from_ends(text, ends)
        };
        self.rows.push(row);
        Ok(())
    }

    fn header(&self, text: &str, ends: &[usize]) -> Result<Vec<String>, BodyError> {
        let mut from = 0;
        let mut columns: Vec<String> = ends
            .iter()
            .map(|&end| {
                let name = text[from..end].to_string();
                from = end;
                name
            })
            .collect();
        crate::store::check_header(&mut columns, self.record_line, self.delimiter)
            .map_err(invalid_csv)?;
        if let Some(empty) = columns.iter().position(String::is_empty) {
            return Err(invalid_csv(format!(
                "line {}: column {} of the header has no name",
                self.leading_lfs + 1,
                empty + 1
            )));
        }
        Ok(columns)
    }
}

fn invalid_csv(what: String) -> BodyError {
    BodyError::Invalid(format!("invalid CSV: {what}"))
}

/// Counts line ends as bytes go by, as a person counts lines: CRLF once, a
/// lone CR or LF once, inside quotes too.
#[derive(Default)]
struct Lines {
    ends: u64,
    /// The last byte was a CR: one line end, unless an LF follows.
    cr: bool,
}

impl Lines {
    fn feed(&mut self, bytes: &[u8]) {
        let Some(&first) = bytes.first() else {
            return;
        };
        if std::mem::take(&mut self.cr) && first != b'\n' {
            self.ends += 1;
        }
        if !bytes.contains(&b'\r') {
            self.ends += bytes.iter().filter(|&&b| b == b'\n').count() as u64;
            return;
        }
        for (i, &b) in bytes.iter().enumerate() {
            match (b, bytes.get(i + 1)) {
                (b'\n', _) => self.ends += 1,
                (b'\r', None) => self.cr = true,
                (b'\r', Some(&next)) if next != b'\n' => self.ends += 1,
                _ => {}
            }
        }
    }

    /// The line (from 1) of the next byte.
    fn line(&self) -> u64 {
        self.ends + u64::from(self.cr) + 1
    }
}

/// Whether every byte so far is white space (the body is empty), decided
/// on the first bytes that are not.
struct Blank {
    maybe: bool,
    /// The start of a character cut off at the end of the last piece.
    carry: Vec<u8>,
}

impl Default for Blank {
    fn default() -> Blank {
        Blank {
            maybe: true,
            carry: Vec::new(),
        }
    }
}

impl Blank {
    fn scan(&mut self, bytes: &[u8]) {
        if !self.maybe || bytes.is_empty() {
            return;
        }
        let ascii_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0B' | b'\x0C');
        match bytes.iter().position(|b| !ascii_space(b)) {
            None if self.carry.is_empty() => return,
            Some(i) if self.carry.is_empty() && bytes[i].is_ascii() => {
                self.maybe = false;
                return;
            }
            _ => {}
        }
        let mut all = std::mem::take(&mut self.carry);
        all.extend_from_slice(bytes);
        match std::str::from_utf8(&all) {
            Ok(text) => self.maybe = text.trim().is_empty(),
            Err(err) => {
                let valid = std::str::from_utf8(&all[..err.valid_up_to()]).unwrap_or("x");
                if err.error_len().is_some() || !valid.trim().is_empty() {
                    self.maybe = false;
                } else {
                    self.carry = all[err.valid_up_to()..].to_vec();
                }
            }
        }
    }

    fn is_blank(&self) -> bool {
        self.maybe && self.carry.is_empty()
    }
}

fn parse_form(text: &str) -> Result<Fields, BodyError> {
    let mut record: Fields = Vec::new();
    for (key, value) in form_urlencoded::parse(text.trim_end().as_bytes()) {
        if key.is_empty() {
            return Err(BodyError::Invalid(format!(
                "form field with an empty name (value {value:?})"
            )));
        }
        // A repeated name keeps its last value, as an HTML form's last input wins.
        match record.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value.into_owned(),
            None => record.push((key.into_owned(), value.into_owned())),
        }
    }
    Ok(record)
}

/// `key:value` or `key=value`, one per line; the first `:` or `=` splits.
fn parse_key_values(text: &str) -> Result<Fields, BodyError> {
    let mut record: Fields = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some(at) = line.find([':', '=']) else {
            return Err(BodyError::Invalid(format!(
                "line {}: expected key:value or key=value, got {:?}",
                i + 1,
                line
            )));
        };
        let key = line[..at].trim();
        let value = line[at + 1..].trim();
        if key.is_empty() {
            return Err(BodyError::Invalid(format!(
                "line {}: the key before {:?} is empty",
                i + 1,
                &line[at..at + 1]
            )));
        }
        match record.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => record.push((key.to_string(), value.to_string())),
        }
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kinds_by_content_type() {
        assert_eq!(kind_of(None).unwrap(), BodyKind::KeyValue);
        assert_eq!(
            kind_of(Some("application/json; charset=utf-8")).unwrap(),
            BodyKind::Json
        );
        assert_eq!(
            kind_of(Some("application/merge-patch+json")).unwrap(),
            BodyKind::Json
        );
        assert_eq!(kind_of(Some("Text/CSV")).unwrap(), BodyKind::Csv);
        assert_eq!(kind_of(Some("text/html")).unwrap(), BodyKind::KeyValue);
        assert_eq!(
            kind_of(Some("application/x-www-form-urlencoded")).unwrap(),
            BodyKind::Form
        );
        assert!(matches!(
            kind_of(Some("application/xml")),
            Err(BodyError::Unsupported(_))
        ));
        assert_eq!(
            kind_of(Some("text/csv; charset=latin1")).unwrap(),
            BodyType {
                kind: BodyKind::Csv,
                charset: Some(encoding_rs::WINDOWS_1252)
            }
        );
        assert_eq!(
            kind_of(Some("text/tab-separated-values")).unwrap(),
            BodyKind::Tsv
        );
        assert!(matches!(
            kind_of(Some("text/csv; charset=klingon")),
            Err(BodyError::Unsupported(_))
        ));
    }

    #[test]
    fn json_object_and_array() {
        let p = parse(BodyKind::Json, br#"{"name":"kim","age":30,"nick":null}"#).unwrap();
        assert_eq!(
            p.records.to_fields(),
            vec![fields(&[("name", "kim"), ("age", "30"), ("nick", "")])]
        );
        assert!(!p.many);
        let p = parse(
            BodyKind::Json,
            br#"[{"a":1},{"b":"x","a":null},{"b":"y","b":"z"}]"#,
        )
        .unwrap();
        assert_eq!(p.records.columns, ["a", "b"]);
        assert_eq!(
            p.records.to_fields(),
            [
                fields(&[("a", "1"), ("b", "")]),
                fields(&[("a", ""), ("b", "x")]),
                fields(&[("a", ""), ("b", "z")]),
            ]
        );
        assert!(p.many);
        let p = parse(BodyKind::Json, b" [ ] ").unwrap();
        assert!(p.records.is_empty() && p.many);
        let p = parse(BodyKind::Ndjson, b"{\"a\":1}\n\n{\"c\":true,\"a\":2}\n").unwrap();
        assert_eq!(p.records.columns, ["a", "c"]);
        assert_eq!(
            p.records.to_fields()[1],
            fields(&[("a", "2"), ("c", "true")])
        );
    }

    #[test]
    fn json_errors_say_where() {
        let err = parse(BodyKind::Json, b"{\"a\": 1,\n \"b\" 2}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("column"), "{err}");
        let err = parse(BodyKind::Json, b"[{\"a\":1}, 5]")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("element 2") && err.contains("a number"),
            "{err}"
        );
        let err = parse(BodyKind::Json, b"\"x\"").unwrap_err().to_string();
        assert!(err.contains("got a string"), "{err}");
        // A syntax error is told before an element that is not an object.
        let err = parse(BodyKind::Json, b"[5, {\"a\": }]")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("invalid JSON") && err.contains("column"),
            "{err}"
        );
        let err = parse(BodyKind::Json, b"[{\"a\":1}] x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("trailing characters"), "{err}");
        let err = parse(BodyKind::Ndjson, b"{\"a\":1}\n[]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2 is an array"), "{err}");
    }

    #[test]
    fn csv_bodies() {
        let p = parse(BodyKind::Csv, b"\xEF\xBB\xBFname,note\nkim,\"a,b\"\nlee\n").unwrap();
        assert_eq!(p.records.columns, ["name", "note"]);
        assert_eq!(
            p.records.to_fields()[1],
            fields(&[("name", "lee"), ("note", "")])
        );
        let err = parse(BodyKind::Csv, b"a,b\n1,2,3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
        let err = parse(BodyKind::Csv, b"a,,b\n").unwrap_err().to_string();
        assert!(err.contains("column 2"), "{err}");
    }

    #[test]
    fn key_value_lines_and_forms() {
        let p = parse(BodyKind::KeyValue, b"name:kim\r\nurl = http://x/?a=b\n\n").unwrap();
        assert_eq!(
            p.records.to_fields()[0],
            fields(&[("name", "kim"), ("url", "http://x/?a=b")])
        );
        let err = parse(BodyKind::KeyValue, b"name:kim\nhello")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("hello"), "{err}");
        let p = parse(BodyKind::Form, b"name=kim+lee&city=%EC%84%9C%EC%9A%B8").unwrap();
        assert_eq!(
            p.records.to_fields()[0],
            fields(&[("name", "kim lee"), ("city", "서울")])
        );
        let p = parse(BodyKind::Form, br#" {"name":"kim"}"#).unwrap();
        assert_eq!(p.records.to_fields()[0], fields(&[("name", "kim")]));
        let p = parse(BodyKind::KeyValue, br#"[{"a":"1"}]"#).unwrap();
        assert!(p.many);
        let p = parse(BodyKind::Form, b"name:kim").unwrap();
        assert_eq!(p.records.to_fields()[0], fields(&[("name", "kim")]));
    }

    #[test]
    fn empty_and_non_utf8() {
        assert!(parse(BodyKind::Json, b"  \n")
            .unwrap_err()
            .to_string()
            .contains("empty"));
        let err = parse(BodyKind::KeyValue, b"a:b\nc:\xff")
            .unwrap_err()
            .to_string();
        assert!(err.contains("UTF-8: line 2, byte 3"), "{err}");
        let err = parse(BodyKind::Csv, b"a\r\n\xff\r\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2: field 1 is not valid UTF-8"), "{err}");
        let err = parse(BodyKind::Csv, b"\r\n\na,,b\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3: column 2"), "{err}");
    }

    #[test]
    fn csv_rows_without_ids_are_numbered_when_asked() {
        let read = |body: &[u8]| {
            let mut reader = Reader::new(BodyKind::Csv, 0, Some("id"));
            reader.feed(body)?;
            reader.finish()
        };
        let p = read(b"name\nkim\n\nlee\n").unwrap();
        assert!(p.records.numbered);
        assert_eq!(
            p.records.to_fields(),
            [
                fields(&[("id", "1"), ("name", "kim")]),
                fields(&[("id", "2"), ("name", "lee")])
            ]
        );
        let p = read(b"name,id\nkim,\n").unwrap();
        assert!(!p.records.numbered);
        assert_eq!(p.records.columns, ["name", "id"]);
        let err = read(b"name\na,b\n").unwrap_err().to_string();
        assert!(
            err.contains("line 2: 2 fields, but the header names 1 column"),
            "{err}"
        );
    }

    /// The records a CSV body gave before it was read as it arrives: the
    /// table-file parser on the whole body, then the body's own checks.
    fn whole(bytes: &[u8]) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
        let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
        if std::str::from_utf8(bytes).is_ok_and(|t| t.trim().is_empty()) {
            return Err(empty().to_string());
        }
        // A file may be in another encoding; a body is UTF-8.
        if std::str::from_utf8(bytes).is_err() {
            return Err("not valid UTF-8".to_string());
        }
        let (columns, rows, _) =
            crate::store::parse_csv(bytes).map_err(|e| format!("invalid CSV: {e}"))?;
        if let Some(at) = columns.iter().position(String::is_empty) {
            return Err(format!("has no name, column {}", at + 1));
        }
        let rows = rows
            .iter()
            .map(|r| r.cells(columns.len()).map(str::to_string).collect())
            .collect();
        Ok((columns, rows))
    }

    /// The same body fed in pieces of `size` bytes.
    fn in_pieces(bytes: &[u8], size: usize) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
        let mut reader = CsvReader::default();
        for piece in bytes.chunks(size.max(1)) {
            reader.feed(piece).map_err(|e| e.to_string())?;
        }
        let parsed = reader.finish().map_err(|e| e.to_string())?;
        let columns = parsed.records.columns.clone();
        let rows = parsed
            .records
            .rows
            .iter()
            .map(|r| r.cells(columns.len()).map(str::to_string).collect())
            .collect();
        Ok((columns, rows))
    }

    fn same_as_whole(input: &[u8]) {
        let expected = whole(input);
        for size in [1, 2, 3, 5, 64, usize::MAX] {
            let got = in_pieces(input, size);
            match (&expected, &got) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{input:?} in pieces of {size}"),
                // A header without a name is now told as soon as it is
                // read, before any later row's error.
                (Err(a), Err(b)) if a.contains("has no name") || b.contains("has no name") => {}
                (Err(a), Err(_)) if a == "not valid UTF-8" => {}
                (Err(a), Err(b)) => assert_eq!(a, b, "{input:?} in pieces of {size}"),
                // Nothing but byte-order marks is an empty body, not a
                // table without columns.
                (Ok((columns, _)), Err(b)) if columns.is_empty() && b.contains("empty") => {}
                _ => panic!("{input:?} in pieces of {size}: {expected:?} against {got:?}"),
            }
        }
    }

    #[test]
    fn csv_read_as_it_arrives_reads_as_a_whole_file() {
        let cases: &[&[u8]] = &[
            b"a,b\n1,2\n3\n",
            b"a,b\r\n1,2\r\n\r\n\r\n3,4",
            b"a\rb\r\rc",
            b"\xEF\xBB\xBFid,name\n1,\"kim, \"\"k\"\"\nline\"\n",
            b"\xEF\xBB\xBF\xEF\xBB\xBFa\n1\n",
            b"\n\n\xEF\xBB\xBFa\n1\n",
            b"\xEF\xBB",
            b"\xEF\xBB\xBF",
            b"",
            b" \t\n\x0B\x0C\r ",
            b"\xC2\xA0\n",
            b"\xC2\xA0x\n",
            b"\xC2",
            b"a,b\n\xC3,\xA9\n",
            b"a,b\n\xC3\xA9,x\n",
            b"a\r\n\xff\r\n",
            b"a\n\n\n1\n\xff\n",
            b"a,b\n1,2,3\n",
            b"a\r\n\"x\r\ny\"\r\n1,2\r\n",
            b"a,a\n",
            b",,\n1\n",
            b"\r\n\na,,b\n",
            b"a,,b\n1,2,3,4\n",
            b"\"unterminated\n1,2\n",
            b"a\n\"\"\n\"\n",
        ];
        for case in cases {
            same_as_whole(case);
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
        for target in ["body_csv", "csv_file"] {
            for entry in std::fs::read_dir(dir.join(target)).unwrap() {
                same_as_whole(&std::fs::read(entry.unwrap().path()).unwrap());
            }
        }
        // Bodies made of the bytes CSV cares about, in every mix.
        let alphabet: &[&[u8]] = &[
            b"a",
            b",",
            b"\"",
            b"\n",
            b"\r",
            b"\r\n",
            b" ",
            b"\xC3",
            b"\xA9",
            b"\xEF\xBB\xBF",
            b"\xff",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize
        };
        for _ in 0..3000 {
            let mut body = Vec::new();
            for _ in 0..next() % 24 {
                body.extend_from_slice(alphabet[next() % alphabet.len()]);
            }
            same_as_whole(&body);
        }
    }
}
