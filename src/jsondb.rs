//! json-server's `db.json`: one JSON object whose keys are tables, an array
//! of objects each (`"posts": [...]`), or a single object (`"profile":
//! {...}`, a singular resource). Read into a store, and written from one.
//!
//! Values follow the typing rule both ways (`cell::from_json` in,
//! `repr::json_object` out, as every answer of the API); nested arrays and
//! objects are kept as their JSON text.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use futures_util::StreamExt;
use serde_json::{Map, Value};

use crate::codec::{cell, repr};
use crate::store::schema::Datatype;
use crate::store::{Expect, Records, RecordsBuilder, Row, Singular, Store};

/// One top-level entry of a db.json.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// An array of objects: a table of rows.
    Rows(Vec<Map<String, Value>>),
    /// An object: a singular resource.
    Object(Map<String, Value>),
}

/// Whether a source names a JSON file (`db.json`) rather than a directory.
pub fn is_json_path(text: &str) -> bool {
    let path = Path::new(text);
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        && !path.is_dir()
}

/// Reads a db.json's text; every mistake names the key (and row) at fault.
pub fn parse(text: &str, file: &Path) -> anyhow::Result<Vec<(String, Entry)>> {
    let value: Value = serde_json::from_str(text).with_context(|| {
        format!(
            "{} is not valid JSON: expected an object of tables, as json-server's db.json",
            file.display()
        )
    })?;
    let Value::Object(tables) = value else {
        anyhow::bail!(
            "{} is not a JSON object: expected {{\"posts\": [...], \"profile\": {{...}}}}",
            file.display()
        );
    };
    let mut entries = Vec::with_capacity(tables.len());
    for (name, value) in tables {
        crate::store::validate_table_name(&name)
            .map_err(|e| anyhow::anyhow!("{}: key {name:?}: {e}", file.display()))?;
        let entry = match value {
            Value::Object(object) => Entry::Object(object),
            Value::Array(items) => {
                let mut rows = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    match item {
                        Value::Object(row) => rows.push(row),
                        other => anyhow::bail!(
                            "{}: {name:?}[{i}] is {}, not an object: a table's rows are objects",
                            file.display(),
                            kind(&other)
                        ),
                    }
                }
                Entry::Rows(rows)
            }
            other => anyhow::bail!(
                "{}: {name:?} is {}: expected an array of objects (a table) or an object \
                 (a singular resource)",
                file.display(),
                kind(&other)
            ),
        };
        entries.push((name, entry));
    }
    Ok(entries)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The records of JSON objects, in their order, columns by first appearance.
pub fn records_of<'a>(objects: impl IntoIterator<Item = &'a Map<String, Value>>) -> Records {
    let mut builder = RecordsBuilder::new(Vec::new());
    for object in objects {
        builder.push(object.iter().map(|(k, v)| (k.as_str(), cell::from_json(v))));
    }
    builder.finish()
}

/// The columns to which some object gives a JSON object or array: recorded
/// as JSON columns, so that they come back as JSON.
fn nested_columns<'a>(objects: impl IntoIterator<Item = &'a Map<String, Value>>) -> Vec<String> {
    let mut nested = Vec::new();
    for object in objects {
        crate::codec::body::note_nested(&mut nested, object);
    }
    nested
}

/// Writes every entry into `store` (each table replaced), marking objects
/// as singular resources and unmarking arrays. Returns tables and rows written.
pub async fn import(
    store: &dyn Store,
    entries: &[(String, Entry)],
    id_column: &str,
) -> anyhow::Result<(usize, usize)> {
    let mut rows = 0;
    for (name, entry) in entries {
        match entry {
            Entry::Rows(objects) => {
                store.set_singular(name, None).await?;
                rows += objects.len();
                store
                    .replace_table(name, records_of(objects), &Expect::none())
                    .await
                    .with_context(|| format!("cannot write the table {name}"))?;
                let nested = nested_columns(objects);
                if !nested.is_empty() {
                    store.record_json(name, &nested).await?;
                }
            }
            Entry::Object(object) => {
                let mark = Singular {
                    own_id: object.contains_key(id_column),
                };
                store.set_singular(name, Some(mark)).await?;
                rows += 1;
                store
                    .replace_table(name, records_of([object]), &Expect::none())
                    .await
                    .with_context(|| format!("cannot write the singular resource {name}"))?;
                let nested = nested_columns([object]);
                if !nested.is_empty() {
                    store.record_json(name, &nested).await?;
                }
            }
        }
    }
    Ok((entries.len(), rows))
}

/// One row as a JSON object, by the typing rule.
pub fn row_object(columns: &[String], types: &[Option<Datatype>], row: &Row) -> Map<String, Value> {
    let mut out = Vec::new();
    repr::json_object_typed(&mut out, columns, types, row);
    match serde_json::from_slice(&out) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// A singular resource's object from its table's first row: without the
/// id column when the store added it.
pub fn singular_object(
    columns: &[String],
    types: &[Option<Datatype>],
    id_col: Option<usize>,
    row: Option<&Row>,
    mark: Singular,
) -> Map<String, Value> {
    let Some(row) = row else {
        return Map::new();
    };
    let mut object = row_object(columns, types, row);
    if !mark.own_id {
        if let Some(name) = id_col.and_then(|at| columns.get(at)) {
            object.shift_remove(name);
        }
    }
    object
}

/// The whole store as a db.json: tables as arrays, singular resources as
/// objects, by table name.
pub async fn export(store: &dyn Store) -> anyhow::Result<Value> {
    let marks: std::collections::HashMap<String, Singular> =
        store.singulars().await?.into_iter().collect();
    let mut out = Map::new();
    for info in store.tables().await? {
        if let Some(error) = &info.error {
            anyhow::bail!("the table {} cannot be read: {error}", info.name);
        }
        let selected = store.select(&info.name, "").await?;
        let columns: Arc<Vec<String>> = selected.head.columns.clone();
        let id_col = selected.head.id_col;
        let types = store.types(&info.name).await.aligned(&columns);
        let rows: Vec<Row> = selected
            .rows
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        let value = match marks.get(&info.name) {
            Some(mark) => Value::Object(singular_object(
                &columns,
                &types,
                id_col,
                rows.first(),
                *mark,
            )),
            None => Value::Array(
                rows.iter()
                    .map(|row| Value::Object(row_object(&columns, &types, row)))
                    .collect(),
            ),
        };
        out.insert(info.name.clone(), value);
    }
    Ok(Value::Object(out))
}

/// Writes `value` to `path` as json-server does (two-space indents), by a
/// temporary file renamed over it: a reader never sees half a file.
pub fn write_file(path: &Path, value: &Value) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = dir.join(format!(".{name}.csvd-tmp"));
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().with_context(|| format!("cannot write {}", path.display()))
}

// ---- `csvd serve db.json`: the data directory beside the file

/// The data directory `csvd serve db.json` keeps the data in: `db.csvd/`
/// beside `db.json`.
pub fn data_dir_of(json: &Path) -> PathBuf {
    let stem = json.file_stem().unwrap_or_default().to_string_lossy();
    json.with_file_name(format!("{stem}.csvd"))
}

/// The file in the data directory that says which JSON it was made from,
/// and the JSON's hash when they last held the same data.
const RECORD: &str = ".json-source";

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Record {
    file: PathBuf,
    xxh3: String,
}

fn hash(bytes: &[u8]) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(bytes))
}

/// Notes that `dir` holds the same data as the JSON file `json` now does.
pub fn record_synced(dir: &Path, json: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(json).with_context(|| format!("cannot read {}", json.display()))?;
    let record = Record {
        file: std::fs::canonicalize(json).unwrap_or_else(|_| json.to_path_buf()),
        xxh3: hash(&bytes),
    };
    let text = serde_json::to_vec_pretty(&record)?;
    std::fs::write(dir.join(RECORD), text)
        .with_context(|| format!("cannot write {}", dir.join(RECORD).display()))
}

/// After `csvd copy DIR db.json`: when DIR was made from that very file,
/// it is in step with it again.
pub fn resynced_if_source(dir: &Path, json: &Path) -> anyhow::Result<()> {
    let Ok(text) = std::fs::read(dir.join(RECORD)) else {
        return Ok(());
    };
    let Ok(record) = serde_json::from_slice::<Record>(&text) else {
        return Ok(());
    };
    if std::fs::canonicalize(json).ok().as_deref() == Some(record.file.as_path()) {
        record_synced(dir, json)?;
    }
    Ok(())
}

/// What `csvd serve db.json` does with the data directory beside it.
#[derive(Debug, PartialEq, Eq)]
pub enum Start {
    /// No data there yet: read the JSON into it.
    Import,
    /// Made from the JSON, which has not changed since: serve it.
    Serve,
}

/// Decides, or refuses with what to do: the directory is never replaced
/// by the JSON, nor the JSON by the directory, without being asked.
pub fn start_of(json: &Path, dir: &Path, json_bytes: &[u8]) -> anyhow::Result<Start> {
    let record = std::fs::read(dir.join(RECORD)).ok();
    let holds_tables = std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.ends_with(".csv") || name.ends_with(".tsv")
        })
    });
    let wal_used = std::fs::read_dir(dir.join(".csvd"))
        .is_ok_and(|entries| entries.flatten().any(|e| e.file_name() != "lock"));
    let Some(record) = record else {
        if holds_tables || wal_used {
            anyhow::bail!(
                "{dir} already holds data that was not made from {json}; serve it as a data \
                 directory (csvd serve {dir}), or move it away to serve {json}",
                dir = dir.display(),
                json = json.display()
            );
        }
        return Ok(Start::Import);
    };
    let record: Record = serde_json::from_slice(&record).with_context(|| {
        format!(
            "{} is damaged; remove it to serve {} as a data directory",
            dir.join(RECORD).display(),
            dir.display()
        )
    })?;
    if record.xxh3 == hash(json_bytes) {
        return Ok(Start::Serve);
    }
    anyhow::bail!(
        "{json} has changed since its data was last in {dir} (which may hold writes made since); \
         nothing was overwritten. To keep the directory's data, serve it (csvd serve {dir}) or \
         write it back first (csvd copy {dir} {json}); to start again from {json}, remove {dir}",
        dir = dir.display(),
        json = json.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_their_mistakes() {
        let file = Path::new("db.json");
        let entries = parse(r#"{"posts":[{"id":1}],"profile":{"name":"x"}}"#, file).unwrap();
        assert!(matches!(&entries[0], (n, Entry::Rows(r)) if n == "posts" && r.len() == 1));
        assert!(matches!(&entries[1], (n, Entry::Object(_)) if n == "profile"));
        for (text, said) in [
            ("[1]", "not a JSON object"),
            (r#"{"a b":[]}"#, "\"a b\""),
            (r#"{"posts":[1]}"#, "\"posts\"[0] is a number"),
            (r#"{"n":3}"#, "\"n\" is a number"),
            ("{", "not valid JSON"),
        ] {
            let err = parse(text, file).unwrap_err().to_string();
            assert!(err.contains(said), "{text}: {err}");
        }
    }

    #[test]
    fn the_directory_beside() {
        assert_eq!(
            data_dir_of(Path::new("/x/db.json")),
            Path::new("/x/db.csvd")
        );
        assert_eq!(data_dir_of(Path::new("db.json")), Path::new("db.csvd"));
    }
}
