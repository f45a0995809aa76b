//! Request bodies in: JSON (object or array), NDJSON, CSV, HTML forms, and
//! the seed's `key:value` lines. Each parser turns bytes into records of
//! fields, or says exactly what is wrong and where.

use serde_json::Value;

use super::cell;
use crate::store::Fields;

/// The formats a request body may come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Ndjson,
    Csv,
    Form,
    /// `key:value` (or `key=value`) lines, the seed client's format.
    KeyValue,
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The media type is not one we read (415).
    #[error("cannot read a body of type {0:?}; send application/json, application/x-ndjson, text/csv, application/x-www-form-urlencoded, or key:value lines as text/plain")]
    Unsupported(String),
    /// The body does not parse (400).
    #[error("{0}")]
    Invalid(String),
}

/// The records a body holds.
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    /// Every field name, in order of first appearance (for CSV, the header).
    pub columns: Vec<String>,
    pub records: Vec<Fields>,
    /// Whether the body is a collection (array, CSV, NDJSON) rather than one record.
    pub many: bool,
}

/// Picks the parser for a `Content-Type` (absent: `key:value` lines).
pub fn kind_of(content_type: Option<&str>) -> Result<BodyKind, BodyError> {
    let Some(content_type) = content_type else {
        return Ok(BodyKind::KeyValue);
    };
    let mut parts = content_type.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    for param in parts {
        if let Some((key, value)) = param.split_once('=') {
            let value = value.trim().trim_matches('"').to_ascii_lowercase();
            if key.trim().eq_ignore_ascii_case("charset")
                && !matches!(value.as_str(), "utf-8" | "utf8" | "us-ascii")
            {
                return Err(BodyError::Unsupported(format!(
                    "{essence}; charset={value} (only UTF-8 is read)"
                )));
            }
        }
    }
    Ok(match essence.as_str() {
        "application/json" => BodyKind::Json,
        e if e.starts_with("application/") && e.ends_with("+json") => BodyKind::Json,
        "application/x-ndjson" | "application/jsonl" | "application/json-seq" => BodyKind::Ndjson,
        "text/csv" | "application/csv" => BodyKind::Csv,
        "application/x-www-form-urlencoded" => BodyKind::Form,
        "" => BodyKind::KeyValue,
        e if e.starts_with("text/") => BodyKind::KeyValue,
        _ => return Err(BodyError::Unsupported(essence)),
    })
}

/// Parses a body of the given kind.
pub fn parse(kind: BodyKind, bytes: &[u8]) -> Result<Parsed, BodyError> {
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    let text = std::str::from_utf8(bytes);
    if text.is_ok_and(|text| text.trim().is_empty()) {
        return Err(BodyError::Invalid(
            "the body is empty; expected the fields of a row (for example JSON {\"name\": \"kim\"} or the line name:kim)".into(),
        ));
    }
    // The CSV reader says on which line and in which field a byte is not
    // UTF-8, which tells more than an offset.
    if kind == BodyKind::Csv {
        return parse_csv(bytes);
    }
    let text = text.map_err(|e| not_utf8(bytes, e.valid_up_to()))?;
    let parsed = match kind {
        BodyKind::Json => parse_json(text)?,
        BodyKind::Ndjson => parse_ndjson(text)?,
        BodyKind::Csv => parse_csv(bytes)?,
        // `curl -d '{"name":"kim"}'` sends JSON labelled as a form: a form
        // or key:value body cannot start with a brace or bracket, so such a
        // body is read as the JSON it is.
        BodyKind::Form | BodyKind::KeyValue if looks_like_json(text) => parse_json(text)?,
        // `curl -d 'name:kim'` sends key:value text labelled as a form.
        BodyKind::Form if !text.contains('=') => one(parse_key_values(text)?),
        BodyKind::Form => one(parse_form(text)?),
        BodyKind::KeyValue => one(parse_key_values(text)?),
    };
    Ok(parsed)
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

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

fn one(record: Fields) -> Parsed {
    Parsed {
        columns: record.iter().map(|(k, _)| k.clone()).collect(),
        records: vec![record],
        many: false,
    }
}

fn many(records: Vec<Fields>) -> Parsed {
    let mut columns: Vec<String> = Vec::new();
    for record in &records {
        for (name, _) in record {
            if !columns.contains(name) {
                columns.push(name.clone());
            }
        }
    }
    Parsed {
        columns,
        records,
        many: true,
    }
}

fn parse_json(text: &str) -> Result<Parsed, BodyError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| BodyError::Invalid(format!("invalid JSON: {e}")))?;
    match value {
        Value::Object(_) => Ok(one(object_fields(&value, None)?)),
        Value::Array(items) => {
            let records = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    object_fields(item, Some(format!("element {} of the array", i + 1)))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(many(records))
        }
        other => Err(BodyError::Invalid(format!(
            "expected a JSON object (one row) or an array of objects (many rows), got {}",
            describe(&other)
        ))),
    }
}

fn parse_ndjson(text: &str) -> Result<Parsed, BodyError> {
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line)
            .map_err(|e| BodyError::Invalid(format!("line {}: invalid JSON: {e}", i + 1)))?;
        records.push(object_fields(&value, Some(format!("line {}", i + 1)))?);
    }
    Ok(many(records))
}

fn object_fields(value: &Value, place: Option<String>) -> Result<Fields, BodyError> {
    match value {
        Value::Object(map) => Ok(map
            .iter()
            .map(|(k, v)| (k.clone(), cell::from_json(v)))
            .collect()),
        other => Err(BodyError::Invalid(format!(
            "{} is {}; expected an object of fields",
            place.unwrap_or_else(|| "the body".into()),
            describe(other)
        ))),
    }
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

fn parse_csv(bytes: &[u8]) -> Result<Parsed, BodyError> {
    let (columns, rows, _) = crate::store::parse_csv(bytes)
        .map_err(|e| BodyError::Invalid(format!("invalid CSV: {e}")))?;
    if let Some(empty) = columns.iter().position(String::is_empty) {
        return Err(BodyError::Invalid(format!(
            "invalid CSV: line {}: column {} of the header has no name",
            header_line(bytes),
            empty + 1
        )));
    }
    let records = rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .cloned()
                .zip(row.cells(columns.len()).map(str::to_string))
                .collect()
        })
        .collect();
    Ok(Parsed {
        columns,
        records,
        many: true,
    })
}

/// The line the header is on: the CSV reader skips blank lines before it.
fn header_line(bytes: &[u8]) -> usize {
    let blank = bytes.iter().take_while(|&&b| b == b'\n' || b == b'\r');
    blank.filter(|&&b| b == b'\n').count() + 1
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
        assert!(matches!(
            kind_of(Some("text/csv; charset=latin1")),
            Err(BodyError::Unsupported(_))
        ));
    }

    #[test]
    fn json_object_and_array() {
        let p = parse(BodyKind::Json, br#"{"name":"kim","age":30,"nick":null}"#).unwrap();
        assert_eq!(
            p.records,
            vec![fields(&[("name", "kim"), ("age", "30"), ("nick", "")])]
        );
        assert!(!p.many);
        let p = parse(BodyKind::Json, br#"[{"a":1},{"b":"x"}]"#).unwrap();
        assert_eq!(p.columns, ["a", "b"]);
        assert!(p.many);
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
    }

    #[test]
    fn csv_bodies() {
        let p = parse(BodyKind::Csv, b"\xEF\xBB\xBFname,note\nkim,\"a,b\"\nlee\n").unwrap();
        assert_eq!(p.columns, ["name", "note"]);
        assert_eq!(p.records[1], fields(&[("name", "lee"), ("note", "")]));
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
            p.records[0],
            fields(&[("name", "kim"), ("url", "http://x/?a=b")])
        );
        let err = parse(BodyKind::KeyValue, b"name:kim\nhello")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("hello"), "{err}");
        let p = parse(BodyKind::Form, b"name=kim+lee&city=%EC%84%9C%EC%9A%B8").unwrap();
        assert_eq!(
            p.records[0],
            fields(&[("name", "kim lee"), ("city", "서울")])
        );
        let p = parse(BodyKind::Form, br#" {"name":"kim"}"#).unwrap();
        assert_eq!(p.records[0], fields(&[("name", "kim")]));
        let p = parse(BodyKind::KeyValue, br#"[{"a":"1"}]"#).unwrap();
        assert!(p.many);
        let p = parse(BodyKind::Form, b"name:kim").unwrap();
        assert_eq!(p.records[0], fields(&[("name", "kim")]));
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
}
