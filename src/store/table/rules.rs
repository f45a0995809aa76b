//! The rules records and ids must follow: field names (not empty, no
//! byte-order mark or control character, each given once), ids (not empty,
//! no control character, short enough for a URL), and a body's id agreeing
//! with the URL's.
//!
//! These are checks and look-ups only: they must never change what they
//! are given, and a refusal always says what was wrong. No I/O.

use std::collections::HashSet;

use crate::store::{Error, Fields};

/// Longest id accepted, in bytes: ids travel in URLs.
const MAX_ID_LEN: usize = 256;

fn field<'a>(record: &'a Fields, name: &str) -> Option<&'a str> {
    record
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub(crate) fn without(record: &Fields, name: &str) -> Fields {
    record.iter().filter(|(k, _)| k != name).cloned().collect()
}

/// A body may repeat the id of the URL, but not name another.
pub(crate) fn check_body_id(record: &Fields, id: &str, id_column: &str) -> Result<(), Error> {
    match field(record, id_column) {
        Some(given) if !given.is_empty() && given != id => Err(Error::IdMismatch {
            url: id.to_string(),
            body: given.to_string(),
        }),
        _ => Ok(()),
    }
}

/// The columns of records: valid names, each named once.
pub(crate) fn validate_columns(columns: &[String]) -> Result<(), Error> {
    let mut seen = HashSet::with_capacity(columns.len());
    for name in columns {
        validate_name(name)?;
        if !seen.insert(name.as_str()) {
            return Err(Error::InvalidField(format!(
                "field {name:?} is given twice"
            )));
        }
    }
    Ok(())
}

pub(crate) fn validate_fields(record: &Fields) -> Result<(), Error> {
    record.iter().try_for_each(|(name, _)| validate_name(name))
}

fn validate_name(name: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::InvalidField("a field name is empty".into()));
    }
    if name.starts_with('\u{feff}') {
        return Err(Error::InvalidField(format!(
            "field name {name:?} starts with a byte-order mark"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::InvalidField(format!(
            "field name {name:?} contains a control character"
        )));
    }
    Ok(())
}

/// Ids are non-empty text without control characters, short enough for a URL.
pub fn validate_id(id: &str) -> Result<(), Error> {
    if id.is_empty() {
        return Err(Error::InvalidId("the id is empty".into()));
    }
    if id.len() > MAX_ID_LEN {
        return Err(Error::InvalidId(format!(
            "the id is {} bytes long; at most {MAX_ID_LEN} are allowed",
            id.len()
        )));
    }
    if id.chars().any(char::is_control) {
        return Err(Error::InvalidId(format!(
            "id {id:?} contains a control character"
        )));
    }
    Ok(())
}

/// An id written as a canonical non-negative integer (`7`, not `007`).
pub(crate) fn int_id(id: &str) -> Option<u64> {
    let n: u64 = id.parse().ok()?;
    (n.to_string() == id).then_some(n)
}
