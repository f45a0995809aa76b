//! Declared table metadata: a W3C CSV on the Web table description
//! (`<table>.csv-metadata.json` beside the table's file) read into what
//! csvd uses of it: the dialect (delimiter, encoding), each column's
//! datatype and `required`, and the primary key.
//!
//! The document itself is kept as it was given (unknown keys included),
//! so that it reads back the same; only what is understood here is
//! checked. A document that cannot be understood is refused with what is
//! wrong in it, never guessed at.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

/// The CSVW context every table description names.
pub const CONTEXT: &str = "http://www.w3.org/ns/csvw";

/// The datatypes csvd understands (CSVW's names, and their usual aliases).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Datatype {
    String,
    Integer,
    Number,
    Boolean,
    Date,
    DateTime,
    Json,
}

impl Datatype {
    /// The datatype a CSVW name names.
    pub fn parse(name: &str) -> Option<Datatype> {
        Some(match name {
            "string" | "normalizedString" | "token" | "anyURI" => Datatype::String,
            "integer" | "int" | "long" | "short" | "byte" | "nonNegativeInteger"
            | "positiveInteger" | "nonPositiveInteger" | "negativeInteger" | "unsignedInt"
            | "unsignedLong" | "unsignedShort" | "unsignedByte" => Datatype::Integer,
            "number" | "decimal" | "double" | "float" => Datatype::Number,
            "boolean" => Datatype::Boolean,
            "date" => Datatype::Date,
            "datetime" | "dateTime" | "dateTimeStamp" => Datatype::DateTime,
            "json" => Datatype::Json,
            _ => return None,
        })
    }

    /// Its name, as `GET /<t>/_schema` shows it.
    pub fn name(self) -> &'static str {
        match self {
            Datatype::String => "string",
            Datatype::Integer => "integer",
            Datatype::Number => "number",
            Datatype::Boolean => "boolean",
            Datatype::Date => "date",
            Datatype::DateTime => "datetime",
            Datatype::Json => "json",
        }
    }

    /// What a cell of this type must look like, for error messages.
    fn expected(self) -> &'static str {
        match self {
            Datatype::String => "text",
            Datatype::Integer => "an integer (such as 42 or -7)",
            Datatype::Number => "a number (such as 3, -2.5 or 1e3)",
            Datatype::Boolean => "a boolean (true or false)",
            Datatype::Date => "an ISO 8601 date (YYYY-MM-DD)",
            Datatype::DateTime => {
                "an ISO 8601 date and time (YYYY-MM-DDTHH:MM:SS, with optional fraction and Z or ±HH:MM)"
            }
            Datatype::Json => "JSON text",
        }
    }

    /// Whether a (non-empty) cell is a value of this type.
    pub fn accepts(self, cell: &str) -> bool {
        match self {
            Datatype::String | Datatype::Json => true,
            Datatype::Integer => is_integer(cell),
            Datatype::Number => is_number(cell),
            Datatype::Boolean => cell == "true" || cell == "false",
            Datatype::Date => is_date(cell),
            Datatype::DateTime => is_datetime(cell),
        }
    }
}

fn is_integer(cell: &str) -> bool {
    let digits = cell
        .strip_prefix('-')
        .or_else(|| cell.strip_prefix('+'))
        .unwrap_or(cell);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn is_number(cell: &str) -> bool {
    let ok_chars = cell
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
    ok_chars
        && cell.bytes().any(|b| b.is_ascii_digit())
        && cell.parse::<f64>().is_ok_and(f64::is_finite)
}

fn digits(text: &str, n: usize) -> Option<u32> {
    (text.len() == n && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

fn is_date(cell: &str) -> bool {
    let mut parts = cell.splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let (Some(y), Some(m), Some(d)) = (digits(y, 4), digits(m, 2), digits(d, 2)) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

fn is_time(text: &str) -> bool {
    let (hms, fraction) = match text.split_once('.') {
        Some((hms, fraction)) => (hms, Some(fraction)),
        None => (text, None),
    };
    if fraction.is_some_and(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    let parts: Vec<&str> = hms.split(':').collect();
    let [h, m, s] = parts.as_slice() else {
        return false;
    };
    matches!(
        (digits(h, 2), digits(m, 2), digits(s, 2)),
        (Some(h), Some(m), Some(s)) if h < 24 && m < 60 && s < 60
    )
}

fn is_datetime(cell: &str) -> bool {
    let Some((date, time)) = cell.split_once('T') else {
        return false;
    };
    let time = match time.strip_suffix('Z') {
        Some(time) => time,
        None => match time.rfind(['+', '-']) {
            Some(at) => {
                let zone = &time[at + 1..];
                let ok = zone.split_once(':').is_some_and(|(h, m)| {
                    digits(h, 2).is_some_and(|h| h < 24) && digits(m, 2).is_some_and(|m| m < 60)
                });
                if !ok {
                    return false;
                }
                &time[..at]
            }
            None => time,
        },
    };
    is_date(date) && is_time(time)
}

/// One declared column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// `None`: no datatype declared (the typing rule applies).
    pub datatype: Option<Datatype>,
    pub required: bool,
}

/// The dialect a document declares; `None` where it says nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dialect {
    pub delimiter: Option<u8>,
    pub encoding: Option<&'static encoding_rs::Encoding>,
    /// `"` or `'`.
    pub quote: Option<u8>,
    /// `Some(false)`: the file's first line is a row, not names.
    pub header: Option<bool>,
}

/// A table description, as understood.
#[derive(Clone, Debug, PartialEq)]
pub struct Schema {
    /// The document as given.
    pub doc: Value,
    pub columns: Vec<Column>,
    pub primary_key: Option<String>,
    pub dialect: Dialect,
}

/// The datatypes a table's columns are rendered by, by column name; a
/// column without one follows the typing rule. Cheap to clone.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Types(Option<Arc<(u64, HashMap<String, Datatype>)>>);

impl Types {
    pub fn get(&self, column: &str) -> Option<Datatype> {
        self.0.as_ref()?.1.get(column).copied()
    }

    pub fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|m| m.1.is_empty())
    }

    /// Tells these types apart from others (for an answer's tag); `None`
    /// when there are none.
    pub fn tag(&self) -> Option<u64> {
        self.0.as_ref().filter(|m| !m.1.is_empty()).map(|m| m.0)
    }

    /// Types from datatypes by column name (a backend's own).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, Datatype)>) -> Types {
        let map: HashMap<String, Datatype> = pairs.into_iter().collect();
        let mut names: Vec<String> = map
            .iter()
            .map(|(k, v)| format!("{k}\0{}", v.name()))
            .collect();
        names.sort();
        let tag = xxhash_rust::xxh3::xxh3_64(names.join("\n").as_bytes());
        Types(Some(Arc::new((tag, map))))
    }

    /// Each of `columns`' datatype, in order; empty when no column has one.
    pub fn aligned(&self, columns: &[String]) -> Vec<Option<Datatype>> {
        if self.is_empty() {
            return Vec::new();
        }
        columns.iter().map(|c| self.get(c)).collect()
    }
}

/// How a CSVW document's string-or-list value reads (`titles`).
fn first_title(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => Some(s),
        Value::Array(items) => items.iter().find_map(Value::as_str),
        Value::Object(langs) => langs.values().find_map(first_title),
        _ => None,
    }
}

impl Schema {
    /// Reads a table description; the error says what is wrong, in words
    /// a person can fix the document by.
    pub fn parse(doc: Value) -> Result<Schema, String> {
        let Value::Object(top) = &doc else {
            return Err("expected a JSON object (a CSVW table description)".into());
        };
        if top.contains_key("tables") {
            return Err(
                "a table group (\"tables\") is not supported: describe one table, with \"tableSchema\""
                    .into(),
            );
        }
        if let Some(url) = top.get("url") {
            if !url.is_string() {
                return Err("\"url\" must be a string (the table file's name)".into());
            }
        }
        let dialect = match top.get("dialect") {
            None => Dialect::default(),
            Some(Value::Object(d)) => parse_dialect(d)?,
            Some(_) => return Err("\"dialect\" must be an object".into()),
        };
        let (columns, primary_key) = match top.get("tableSchema") {
            None => (Vec::new(), None),
            Some(Value::Object(s)) => parse_table_schema(s)?,
            Some(_) => return Err("\"tableSchema\" must be an object".into()),
        };
        Ok(Schema {
            doc,
            columns,
            primary_key,
            dialect,
        })
    }

    /// A version of the document, for `If-Match`: a hash of its text.
    pub fn version(&self) -> u64 {
        xxhash_rust::xxh3::xxh3_64(self.doc.to_string().as_bytes()) >> 1
    }

    /// The declared datatypes, by column.
    pub fn types(&self) -> Types {
        Types::from_pairs(
            self.columns
                .iter()
                .filter_map(|c| c.datatype.map(|t| (c.name.clone(), t))),
        )
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Checks one record's cells (`None`: a column the record does not
    /// give) against the declared columns; `whole` records must give every
    /// required column (a patch gives only the ones it changes). `skip`
    /// names a column not checked for `required` (the id, which the table
    /// gives when it is left out).
    pub fn check<'a>(
        &self,
        cell: impl Fn(&str) -> Option<&'a str>,
        whole: bool,
        skip: Option<&str>,
    ) -> Result<(), String> {
        for column in &self.columns {
            let value = cell(&column.name);
            match value {
                None | Some("") => {
                    let given = value.is_some();
                    if column.required && (whole || given) && skip != Some(&column.name) {
                        return Err(format!(
                            "column {:?} is required and was {}",
                            column.name,
                            if given { "empty" } else { "not given" }
                        ));
                    }
                }
                Some(text) => {
                    if let Some(t) = column.datatype {
                        if !t.accepts(text) {
                            return Err(format!(
                                "column {:?} is declared {} and expects {}, got {text:?}",
                                column.name,
                                t.name(),
                                t.expected()
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks the records of a write (every record whole): the error names
    /// the record (its place in the body, and its id when it gives one)
    /// and the column.
    pub fn check_records(
        &self,
        records: &crate::store::Records,
        id_column: &str,
    ) -> Result<(), String> {
        let id_at = records.columns.iter().position(|c| c == id_column);
        let many = records.rows.len() > 1;
        for (i, row) in records.rows.iter().enumerate() {
            let cell = |c: &str| {
                records
                    .columns
                    .iter()
                    .position(|k| k == c)
                    .map(|at| row.get(at))
            };
            self.check(cell, true, Some(id_column)).map_err(|err| {
                let id = id_at.map(|at| row.get(at));
                format!("{}: {err}; nothing was written", place(i, many, id))
            })?;
        }
        Ok(())
    }

    /// Checks one record given as fields: a whole row (`PUT`) or the
    /// fields a patch changes.
    pub fn check_fields(
        &self,
        fields: &crate::store::Fields,
        id: &str,
        whole: bool,
        id_column: &str,
    ) -> Result<(), String> {
        let cell = |c: &str| {
            let given = fields
                .iter()
                .rev()
                .find(|(k, _)| k == c)
                .map(|(_, v)| v.as_str());
            // A whole row's id is the URL's when the body leaves it out.
            given.or_else(|| (whole && c == id_column).then_some(id))
        };
        self.check(cell, whole, Some(id_column))
            .map_err(|err| format!("{}: {err}; nothing was written", place(0, false, Some(id))))
    }

    /// Checks a table's rows against this description (before it is
    /// declared): the error names the first row that breaks it.
    pub fn check_rows<'r>(
        &self,
        table: &str,
        columns: &[String],
        id_col: Option<usize>,
        rows: impl IntoIterator<Item = &'r crate::store::Row>,
        id_column: &str,
    ) -> Result<(), String> {
        for (i, row) in rows.into_iter().enumerate() {
            let cell = |c: &str| columns.iter().position(|k| k == c).map(|at| row.get(at));
            self.check(cell, true, Some(id_column)).map_err(|err| {
                let at = match id_col.map(|c| row.get(c)) {
                    Some(id) => format!("row {} (id {id:?})", i + 1),
                    None => format!("row {}", i + 1),
                };
                format!("{at} of table {table:?} does not hold to the description: {err}; nothing was declared")
            })?;
        }
        Ok(())
    }

    /// A declared primary key must be the id column csvd keys rows by.
    pub fn primary_key_ok(&self, id_column: &str) -> Result<(), String> {
        match &self.primary_key {
            Some(key) if key != id_column => Err(format!(
                "declares the primary key {key:?}, but csvd keys rows by the column {id_column:?} (--id-column): declare {id_column:?} as the primary key, or serve with --id-column {key}"
            )),
            _ => Ok(()),
        }
    }

    /// A description of `file` with nothing declared in it, for the store
    /// to record what it learned (the columns written as JSON).
    pub fn empty(file: &str) -> Schema {
        Schema::parse(json!({"@context": CONTEXT, "url": file})).expect("a valid description")
    }

    /// This description with `columns` declared `json` (added to the end
    /// of the column list, or given the datatype where listed without
    /// one); the rest of the document is kept.
    pub fn with_json(&self, columns: &[&str]) -> Schema {
        let mut doc = self.doc.clone();
        let Value::Object(top) = &mut doc else {
            return self.clone();
        };
        let schema = top
            .entry("tableSchema")
            .or_insert_with(|| Value::Object(Map::new()));
        if !schema.is_object() {
            *schema = Value::Object(Map::new());
        }
        let list = schema
            .as_object_mut()
            .expect("an object")
            .entry("columns")
            .or_insert_with(|| Value::Array(Vec::new()));
        if !list.is_array() {
            *list = Value::Array(Vec::new());
        }
        let list = list.as_array_mut().expect("an array");
        for &name in columns {
            let listed = list.iter_mut().find(|c| column_name(c) == Some(name));
            match listed {
                Some(Value::Object(c)) => {
                    c.insert("datatype".into(), json!("json"));
                }
                _ => list.push(json!({"name": name, "datatype": "json"})),
            }
        }
        Schema::parse(doc).unwrap_or_else(|_| self.clone())
    }
}

/// "record 2 of the body (id "7")", for a refused write.
fn place(index: usize, many: bool, id: Option<&str>) -> String {
    let record = if many {
        format!("record {} of the body", index + 1)
    } else {
        "the record".to_string()
    };
    match id.filter(|id| !id.is_empty()) {
        Some(id) => format!("{record} (id {id:?})"),
        None => record,
    }
}

fn column_name(column: &Value) -> Option<&str> {
    let c = column.as_object()?;
    match c.get("name") {
        Some(Value::String(name)) => Some(name),
        _ => c.get("titles").and_then(first_title),
    }
}

fn parse_dialect(d: &Map<String, Value>) -> Result<Dialect, String> {
    let mut dialect = Dialect::default();
    if let Some(v) = d.get("delimiter") {
        let text = v
            .as_str()
            .ok_or("dialect.delimiter must be a string of one character")?;
        match text.as_bytes() {
            [b] if *b != b'"' && *b != b'\r' && *b != b'\n' && b.is_ascii() => {
                dialect.delimiter = Some(*b)
            }
            _ => {
                return Err(format!(
                    "dialect.delimiter {text:?} is not supported: use one ASCII character other than a quote or line end (such as \",\", \";\", \"\\t\" or \"|\")"
                ))
            }
        }
    }
    if let Some(v) = d.get("encoding") {
        let label = v.as_str().ok_or("dialect.encoding must be a string")?;
        let encoding = crate::store::dialect::charset(label)
            .or_else(|| encoding_rs::Encoding::for_label(label.trim().as_bytes()))
            .ok_or_else(|| {
                format!("dialect.encoding {label:?} is not an encoding csvd knows (such as \"utf-8\", \"windows-1252\" or \"iso-8859-1\")")
            })?;
        dialect.encoding = Some(encoding);
    }
    match d.get("header") {
        None => {}
        Some(Value::Bool(header)) => dialect.header = Some(*header),
        Some(_) => return Err("dialect.header must be true or false".into()),
    }
    if let Some(v) = d.get("quoteChar") {
        match v.as_str() {
            Some("\"") => dialect.quote = Some(b'"'),
            Some("'") => dialect.quote = Some(b'\''),
            _ => {
                return Err(format!(
                    "dialect.quoteChar {v} is not supported: csvd reads fields quoted with \" or '"
                ))
            }
        }
    }
    for key in ["lineTerminators", "skipRows", "headerRowCount"] {
        if let Some(v) = d.get(key) {
            let ok = match key {
                "lineTerminators" => v.is_string() || v.is_array(),
                "skipRows" => v.as_u64() == Some(0),
                _ => v.as_u64() == Some(1),
            };
            if !ok {
                return Err(format!(
                    "dialect.{key} {v} is not supported (line ends are read as they come; the header is the first line)"
                ));
            }
        }
    }
    Ok(dialect)
}

fn parse_table_schema(s: &Map<String, Value>) -> Result<(Vec<Column>, Option<String>), String> {
    let mut columns: Vec<Column> = Vec::new();
    match s.get("columns") {
        None => {}
        Some(Value::Array(list)) => {
            for (i, c) in list.iter().enumerate() {
                let place = format!("tableSchema.columns[{i}]");
                let Value::Object(c) = c else {
                    return Err(format!("{place} must be an object"));
                };
                let name = match (c.get("name"), c.get("titles")) {
                    (Some(Value::String(name)), _) => name.clone(),
                    (Some(_), _) => return Err(format!("{place}.name must be a string")),
                    (None, Some(titles)) => first_title(titles)
                        .ok_or_else(|| {
                            format!("{place}.titles must be a string or a list of strings")
                        })?
                        .to_string(),
                    (None, None) => {
                        return Err(format!(
                            "{place} names no column: give \"name\" (or \"titles\")"
                        ))
                    }
                };
                if name.is_empty() {
                    return Err(format!("{place}.name is empty"));
                }
                if columns.iter().any(|k| k.name == name) {
                    return Err(format!("column {name:?} is described twice"));
                }
                let datatype = match c.get("datatype") {
                    None => None,
                    Some(v) => datatype_of(v).map_err(|e| format!("{place} ({name:?}): {e}"))?,
                };
                let required = match c.get("required") {
                    None => false,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => return Err(format!("{place}.required must be true or false")),
                };
                columns.push(Column {
                    name,
                    datatype,
                    required,
                });
            }
        }
        Some(_) => return Err("tableSchema.columns must be a list of column descriptions".into()),
    }
    let primary_key = match s.get("primaryKey") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(Value::Array(keys)) => match keys.as_slice() {
            [Value::String(k)] => Some(k.clone()),
            _ => {
                return Err(
                    "tableSchema.primaryKey must name one column: a key of several columns is not supported"
                        .into(),
                )
            }
        },
        Some(_) => return Err("tableSchema.primaryKey must be a column name".into()),
    };
    Ok((columns, primary_key))
}

fn datatype_of(value: &Value) -> Result<Option<Datatype>, String> {
    let name = match value {
        Value::String(name) => name.as_str(),
        Value::Object(d) => match d.get("base") {
            Some(Value::String(base)) => base.as_str(),
            None => "string",
            Some(_) => return Err("datatype.base must be a string".into()),
        },
        _ => return Err("datatype must be a name or an object with \"base\"".into()),
    };
    let name = name
        .strip_prefix("http://www.w3.org/2001/XMLSchema#")
        .or_else(|| name.strip_prefix("xsd:"))
        .unwrap_or(name);
    if name == "inferred" {
        return Ok(None);
    }
    Datatype::parse(name).map(Some).ok_or_else(|| {
        format!(
            "datatype {name:?} is not supported; use string, integer, number (decimal, double), boolean, date, datetime (dateTime) or json"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_forms_people_write() {
        let schema = Schema::parse(json!({
            "@context": CONTEXT,
            "url": "t.csv",
            "dialect": {"delimiter": ";", "encoding": "windows-1252", "header": true},
            "tableSchema": {
                "columns": [
                    {"name": "zip", "datatype": "string", "required": true},
                    {"titles": ["n"], "datatype": {"base": "decimal"}},
                    {"name": "when", "datatype": "dateTime", "x-mine": 1},
                    {"name": "any"}
                ],
                "primaryKey": ["zip"]
            }
        }))
        .unwrap();
        assert_eq!(schema.dialect.delimiter, Some(b';'));
        assert_eq!(schema.dialect.encoding, Some(encoding_rs::WINDOWS_1252));
        assert_eq!(schema.primary_key.as_deref(), Some("zip"));
        let types = schema.types();
        assert_eq!(types.get("zip"), Some(Datatype::String));
        assert_eq!(types.get("n"), Some(Datatype::Number));
        assert_eq!(types.get("when"), Some(Datatype::DateTime));
        assert_eq!(types.get("any"), None);
        assert!(schema.column("zip").unwrap().required);
    }

    #[test]
    fn says_what_is_wrong() {
        for (doc, said) in [
            (json!([]), "expected a JSON object"),
            (
                json!({"tableSchema": {"columns": [{"name": "a", "datatype": "money"}]}}),
                "datatype \"money\" is not supported",
            ),
            (
                json!({"tableSchema": {"columns": [{"name": "a"}, {"name": "a"}]}}),
                "described twice",
            ),
            (json!({"dialect": {"delimiter": ";;"}}), "dialect.delimiter"),
            (json!({"dialect": {"encoding": "klingon"}}), "klingon"),
            (json!({"dialect": {"header": 0}}), "dialect.header"),
            (json!({"dialect": {"quoteChar": "`"}}), "dialect.quoteChar"),
            (
                json!({"tableSchema": {"primaryKey": ["a", "b"]}}),
                "one column",
            ),
        ] {
            let err = Schema::parse(doc.clone()).unwrap_err();
            assert!(err.contains(said), "{doc}: {err}");
        }
    }

    #[test]
    fn values_by_type() {
        use Datatype::*;
        for (t, ok, bad) in [
            (
                Integer,
                &["0", "-7", "+3", "007"][..],
                &["1.5", "x", "1e3", "-"][..],
            ),
            (
                Number,
                &["3", "-2.5", "1e3", ".5"],
                &["NaN", "inf", "1,5", "e"],
            ),
            (Boolean, &["true", "false"], &["True", "1", "yes"]),
            (
                Date,
                &["2024-02-29", "1999-12-31"],
                &["2023-02-29", "2024-13-01", "2024-1-01", "x"],
            ),
            (
                DateTime,
                &[
                    "2024-01-02T03:04:05",
                    "2024-01-02T03:04:05.123Z",
                    "2024-01-02T03:04:05+01:00",
                ],
                &[
                    "2024-01-02",
                    "2024-01-02 03:04:05",
                    "2024-01-02T25:00:00",
                    "2024-01-02T03:04",
                ],
            ),
        ] {
            for v in ok {
                assert!(t.accepts(v), "{t:?} {v}");
            }
            for v in bad {
                assert!(!t.accepts(v), "{t:?} {v}");
            }
        }
    }

    #[test]
    fn records_json_columns_keeping_the_rest() {
        let schema = Schema::parse(json!({
            "url": "t.csv", "x-note": "kept",
            "tableSchema": {"columns": [{"name": "a", "datatype": "integer"}, {"name": "b"}]}
        }))
        .unwrap();
        let more = schema.with_json(&["b", "author"]);
        assert_eq!(more.doc["x-note"], "kept");
        assert_eq!(more.types().get("a"), Some(Datatype::Integer));
        assert_eq!(more.types().get("b"), Some(Datatype::Json));
        assert_eq!(more.types().get("author"), Some(Datatype::Json));
        let fresh = Schema::empty("t.csv").with_json(&["x"]);
        assert_eq!(fresh.types().get("x"), Some(Datatype::Json));
    }

    #[test]
    fn checks_records() {
        let schema = Schema::parse(json!({"tableSchema": {"columns": [
            {"name": "id", "required": true},
            {"name": "n", "datatype": "integer", "required": true},
            {"name": "s", "datatype": "string"}
        ]}}))
        .unwrap();
        let cells = |pairs: &'static [(&'static str, &'static str)]| {
            move |c: &str| pairs.iter().find(|(k, _)| *k == c).map(|(_, v)| *v)
        };
        assert!(schema.check(cells(&[("n", "3")]), true, Some("id")).is_ok());
        let err = schema
            .check(cells(&[("n", "x")]), true, Some("id"))
            .unwrap_err();
        assert!(err.contains("\"n\" is declared integer"), "{err}");
        let err = schema
            .check(cells(&[("s", "a")]), true, Some("id"))
            .unwrap_err();
        assert!(err.contains("\"n\" is required and was not given"), "{err}");
        assert!(schema
            .check(cells(&[("s", "a")]), false, Some("id"))
            .is_ok());
        let err = schema
            .check(cells(&[("n", "")]), false, Some("id"))
            .unwrap_err();
        assert!(err.contains("empty"), "{err}");
    }
}
