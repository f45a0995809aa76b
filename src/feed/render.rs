//! Which changes a subscriber asked for, and each one as JSON.
//!
//! A feed takes json-server's filters (`city=Seoul`, `age_gt=30`, `q=`)
//! and `_fields`: a row change is sent when the row matched the filters
//! before the change or matches them after it, so a subscriber sees a row
//! leave its selection as well as enter it. Table changes (replaced,
//! deleted) are always sent. Sorting and windows mean nothing on a feed
//! and are refused.

use std::sync::Arc;

use super::{Change, Op};
use crate::codec::{cell, repr};
use crate::query::{self, Query};
use crate::store::schema::Types;
use crate::store::{row_version, Row};

/// Query parameters that shape a list, not a feed.
const LIST_ONLY: [&str; 7] = [
    "_sort",
    "_order",
    "_page",
    "_limit",
    "_per_page",
    "_start",
    "_end",
];

/// Where a selector finds a table's declared datatypes when it renders a
/// row (the store's, as they are at that moment).
#[derive(Clone)]
pub struct TypesOf(pub Arc<dyn Fn(&str) -> Types + Send + Sync>);

impl std::fmt::Debug for TypesOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TypesOf")
    }
}

/// What one subscriber follows: a table or all, a row or all, filtered.
#[derive(Debug)]
pub struct Selector {
    table: Option<String>,
    id: Option<String>,
    /// The filter and `_fields` part of the query string, raw.
    raw: String,
    /// The query read against the columns it was last read with; `None`
    /// when it names a column those lack (nothing matches then).
    read: Option<(Arc<Vec<String>>, Option<Query>)>,
    /// Rows are rendered by their table's datatypes found here (`None`:
    /// by the typing rule).
    types: Option<TypesOf>,
}

impl Selector {
    /// A selector from the route and the query string's filter part
    /// (`raw`, without the feed's own parameters). When the table exists,
    /// `columns` are its columns and the filters are checked against them.
    pub fn new(
        table: Option<String>,
        id: Option<String>,
        raw: String,
        columns: Option<Arc<Vec<String>>>,
    ) -> Result<Selector, String> {
        for (key, _) in form_urlencoded::parse(raw.as_bytes()) {
            if LIST_ONLY.contains(&&*key) {
                return Err(format!(
                    "{key} has no meaning on a change feed; a feed takes since, limit, feed, \
                     timeout, heartbeat, filters and _fields"
                ));
            }
        }
        let filtered = form_urlencoded::parse(raw.as_bytes()).any(|(k, _)| !k.is_empty());
        if filtered && table.is_none() {
            return Err(
                "filters and _fields need a table: ask /_changes/<table>?… for them".into(),
            );
        }
        let mut selector = Selector {
            table,
            id,
            raw,
            read: None,
            types: None,
        };
        if let Some(columns) = columns {
            let query = query::parse(&selector.raw, &columns).map_err(|e| e.to_string())?;
            selector.read = Some((columns, Some(query)));
        }
        Ok(selector)
    }

    /// The same selector, rendering rows by the datatypes `types` gives.
    pub fn typed(self, types: TypesOf) -> Selector {
        Selector {
            types: Some(types),
            ..self
        }
    }

    /// The table followed (`None`: every table).
    pub fn table(&self) -> Option<&str> {
        self.table.as_deref()
    }

    /// Whether the selector looks at `table` at all.
    fn wants_table(&self, table: &str) -> bool {
        self.table.as_deref().is_none_or(|t| t == table)
    }

    /// The query as read against `columns`, reading it again when the
    /// columns changed.
    fn query(&mut self, columns: &Arc<Vec<String>>) -> Option<&Query> {
        let fresh = match &self.read {
            Some((read_with, _)) => !Arc::ptr_eq(read_with, columns) && read_with != columns,
            None => true,
        };
        if fresh {
            let query = query::parse(&self.raw, columns).ok();
            self.read = Some((columns.clone(), query));
        }
        self.read.as_ref().and_then(|(_, q)| q.as_ref())
    }

    /// Writes the change as one JSON object to `out` if the subscriber
    /// wants it; returns whether it did.
    pub fn render(&mut self, change: &Change<'_>, out: &mut Vec<u8>) -> bool {
        if !self.wants_table(change.table) {
            return false;
        }
        let is_row = matches!(change.op, Op::Insert | Op::Update | Op::Delete);
        if let Some(id) = &self.id {
            if is_row && change.id() != Some(id.as_str()) {
                return false;
            }
        }
        let width = change.columns.len();
        let Some(query) = self.query(change.columns) else {
            // The filters name a column the table does not have (yet):
            // no row matches them; table changes still count.
            if is_row {
                return false;
            }
            write(change, None, &self.types_of(change.table), out);
            return true;
        };
        if is_row {
            let matches = |row: Option<&Row>| row.is_some_and(|row| query.accepts(row, width));
            // A delete whose row before is not known is sent: it may have
            // matched.
            let unknown = change.op == Op::Delete && change.before.is_none();
            if !(matches(change.before) || matches(change.after) || unknown) {
                return false;
            }
        }
        let fields = query.fields.clone();
        let types = self.types_of(change.table);
        write(change, fields.as_deref(), &types, out);
        true
    }

    fn types_of(&self, table: &str) -> Types {
        match &self.types {
            Some(TypesOf(lookup)) => lookup(table),
            None => Types::default(),
        }
    }
}

/// The JSON of a change: `seq`, `table`, `id`, `op`, and for a row that
/// exists after it `row` and `etag`.
fn write(change: &Change<'_>, fields: Option<&[usize]>, types: &Types, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"seq\":");
    out.extend_from_slice(change.seq.to_string().as_bytes());
    out.extend_from_slice(b",\"table\":");
    cell::write_json_string(out, change.table);
    if let Some(id) = change.id() {
        out.extend_from_slice(b",\"id\":");
        cell::write_json_string(out, id);
    }
    out.extend_from_slice(b",\"op\":\"");
    out.extend_from_slice(change.op.name().as_bytes());
    out.push(b'"');
    if let Some(row) = change.after {
        out.extend_from_slice(b",\"row\":");
        match fields {
            None => {
                let aligned = types.aligned(change.columns);
                repr::json_object_typed(out, change.columns, &aligned, row)
            }
            Some(fields) => {
                let names: Vec<String> =
                    fields.iter().map(|&c| change.columns[c].clone()).collect();
                let picked = Row::from_cells(fields.iter().map(|&c| row.get(c)));
                let aligned = types.aligned(&names);
                repr::json_object_typed(out, &names, &aligned, &picked);
            }
        }
        let version = row_version(change.columns, row);
        out.extend_from_slice(format!(",\"etag\":\"\\\"{version:016x}\\\"\"").as_bytes());
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::super::{Batch, RowChange, What};
    use super::*;

    fn batch(what: What) -> Batch {
        Batch {
            first: 7,
            table: Arc::from("people"),
            columns: Arc::new(vec!["id".into(), "name".into(), "city".into()]),
            id_col: Some(0),
            what,
        }
    }

    fn row(cells: [&str; 3]) -> Option<Row> {
        Some(Row::from_cells(cells))
    }

    fn rendered(selector: &mut Selector, batch: &Batch) -> Vec<String> {
        batch
            .after(0)
            .filter_map(|c| {
                let mut out = Vec::new();
                selector
                    .render(&c, &mut out)
                    .then(|| String::from_utf8(out).unwrap())
            })
            .collect()
    }

    #[test]
    fn a_change_as_json() {
        let b = batch(What::Rows(vec![
            RowChange {
                op: Op::Update,
                before: row(["3", "kim", "Seoul"]),
                after: row(["3", "kim", "007"]),
            },
            RowChange {
                op: Op::Delete,
                before: row(["4", "lee", "Busan"]),
                after: None,
            },
        ]));
        let mut all = Selector::new(None, None, String::new(), None).unwrap();
        let out = rendered(&mut all, &b);
        let first: serde_json::Value = serde_json::from_str(&out[0]).unwrap();
        assert_eq!(first["seq"], 7);
        assert_eq!(first["id"], "3");
        assert_eq!(first["op"], "update");
        assert_eq!(first["row"]["id"], 3);
        assert_eq!(first["row"]["city"], "007");
        assert!(first["etag"].as_str().unwrap().starts_with('"'));
        assert_eq!(
            out[1],
            r#"{"seq":8,"table":"people","id":"4","op":"delete"}"#
        );
    }

    #[test]
    fn filters_match_before_or_after_and_fields_pick_columns() {
        let b = batch(What::Rows(vec![
            RowChange {
                op: Op::Update,
                before: row(["3", "kim", "Seoul"]),
                after: row(["3", "kim", "Busan"]),
            },
            RowChange {
                op: Op::Insert,
                before: None,
                after: row(["5", "park", "Daegu"]),
            },
            RowChange {
                op: Op::Delete,
                before: row(["6", "choi", "Seoul"]),
                after: None,
            },
        ]));
        let mut seoul = Selector::new(
            Some("people".into()),
            None,
            "city=Seoul&_fields=name".into(),
            Some(b.columns.clone()),
        )
        .unwrap();
        let out = rendered(&mut seoul, &b);
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out[0].contains(r#""row":{"name":"kim"}"#), "{}", out[0]);
        assert!(out[1].contains(r#""op":"delete""#));
        let mut one =
            Selector::new(Some("people".into()), Some("5".into()), String::new(), None).unwrap();
        assert_eq!(rendered(&mut one, &b).len(), 1);
    }

    #[test]
    fn list_parameters_and_unknown_columns_are_refused() {
        let columns = Some(Arc::new(vec!["id".to_string()]));
        assert!(Selector::new(Some("t".into()), None, "_sort=id".into(), None).is_err());
        assert!(Selector::new(Some("t".into()), None, "nope=1".into(), columns).is_err());
        assert!(Selector::new(None, None, "city=x".into(), None).is_err());
        // A table that does not exist yet: checked when its rows come.
        let mut later = Selector::new(Some("people".into()), None, "zip=1".into(), None).unwrap();
        assert!(rendered(&mut later, &batch(What::Inserted(vec![]))).is_empty());
        assert_eq!(rendered(&mut later, &batch(What::Dropped)).len(), 1);
    }
}
