//! Relations between tables, by json-server's conventions: a row of
//! `comments` belongs to the row of `posts` its `postId` names (the
//! parent table's name made singular, then the foreign-key suffix).
//!
//! `_embed=comments` puts each row's children in it as an array,
//! `_expand=post` puts the parent a row names in it as an object. Both
//! are answered here, above the store, by one more `select` per related
//! table (an equality filter listing the keys), so every backend answers
//! them alike. Keys compare as text, like every equality filter.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::TryStreamExt;

use super::super::problem::Problem;
use super::AppState;
use crate::codec::{cell, repr};
use crate::store::{Error, Row};

/// Most rows an answer with relations may hold: a larger one is refused
/// (ask for a page), so one request cannot make the server gather
/// related rows for a whole large table.
pub(super) const MAX_ROWS: usize = 10_000;
/// Most related rows one relation may bring into an answer.
pub(super) const MAX_RELATED: usize = 100_000;

/// The relations a query asks for (`_embed`, `_expand`; each may be
/// repeated or list names separated by commas).
#[derive(Debug, Default, Clone)]
pub(super) struct Relations {
    pub embed: Vec<String>,
    pub expand: Vec<String>,
}

impl Relations {
    pub fn of(raw_query: &str) -> Relations {
        let mut relations = Relations::default();
        for (key, value) in form_urlencoded::parse(raw_query.as_bytes()) {
            let list = match key.as_ref() {
                "_embed" => &mut relations.embed,
                "_expand" => &mut relations.expand,
                _ => continue,
            };
            for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                if !list.iter().any(|n| n == name) {
                    list.push(name.to_string());
                }
            }
        }
        relations
    }

    pub fn is_empty(&self) -> bool {
        self.embed.is_empty() && self.expand.is_empty()
    }
}

/// The rows of an answer with relations, and what to show of them.
pub(super) struct Joined {
    pub columns: Arc<Vec<String>>,
    /// The columns shown (`_fields`), all when `None`.
    pub fields: Option<Vec<usize>>,
    pub rows: Vec<Row>,
    /// Per row, the related values to add: a name and its JSON text.
    pub related: Vec<Vec<(String, Vec<u8>)>>,
    /// The table's declared datatypes.
    pub types: crate::store::schema::Types,
}

impl Joined {
    /// One row as a JSON object: its cells (a cell named like a relation
    /// gives way to it, as in json-server), then its relations.
    pub fn object(&self, out: &mut Vec<u8>, at: usize) {
        let row = &self.rows[at];
        let related = &self.related[at];
        let shown: Vec<usize> = match &self.fields {
            Some(fields) => fields.clone(),
            None => (0..self.columns.len()).collect(),
        };
        out.push(b'{');
        let mut first = true;
        for c in shown {
            let name = &self.columns[c];
            if related.iter().any(|(key, _)| key == name) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            cell::write_json_string(out, name);
            out.push(b':');
            cell::write_typed(out, row.get(c), self.types.get(name));
        }
        for (key, value) in related {
            if !first {
                out.push(b',');
            }
            first = false;
            cell::write_json_string(out, key);
            out.push(b':');
            out.extend_from_slice(value);
        }
        out.push(b'}');
    }
}

/// The related values of each of `rows` (of `table`, with these columns).
pub(super) async fn gather(
    state: &AppState,
    table: &str,
    columns: &[String],
    id_col: Option<usize>,
    rows: &[Row],
    relations: &Relations,
) -> Result<Vec<Vec<(String, Vec<u8>)>>, Problem> {
    let mut related: Vec<Vec<(String, Vec<u8>)>> = vec![Vec::new(); rows.len()];
    let suffix = &state.json_server.foreign_key_suffix;
    // As json-server v1 does: `_embed=post` on a table whose rows name a
    // post (`postId`) embeds that parent; any other name, its children.
    let names_parent = |name: &str| columns.iter().any(|c| *c == format!("{name}{suffix}"));
    let (parents, children): (Vec<&String>, Vec<&String>) =
        relations.embed.iter().partition(|name| names_parent(name));
    let mut expand: Vec<&String> = relations.expand.iter().collect();
    for parent in parents {
        if !expand.contains(&parent) {
            expand.push(parent);
        }
    }
    for child in children {
        let Some(id_col) = id_col else {
            return Err(Problem::bad_request(format!(
                "_embed={child}: table {table:?} has no id column ({:?}) for its rows' \
                 children to name",
                state.id_column
            )));
        };
        let key = format!("{}{suffix}", singular(table));
        let ids: Vec<&str> = distinct(rows.iter().map(|r| r.get(id_col)));
        let found = fetch(state, "_embed", child, &key, &ids).await?;
        let mut by_parent: HashMap<&str, Vec<u8>> = HashMap::new();
        if let Some((child_columns, child_rows, child_types)) = &found {
            let at = child_columns
                .iter()
                .position(|c| c == &key)
                .unwrap_or_default();
            for row in child_rows {
                let list = by_parent.entry(row.get(at)).or_default();
                list.push(if list.is_empty() { b'[' } else { b',' });
                repr::json_object_typed(list, child_columns, child_types, row);
            }
        }
        for (slot, row) in related.iter_mut().zip(rows) {
            let value = match by_parent.get(row.get(id_col)) {
                Some(list) => [list.as_slice(), b"]"].concat(),
                None => b"[]".to_vec(),
            };
            slot.push((child.clone(), value));
        }
    }
    for parent in expand {
        let key = format!("{parent}{suffix}");
        let Some(at) = columns.iter().position(|c| c == &key) else {
            return Err(Problem::bad_request(format!(
                "_expand={parent}: table {table:?} has no column {key:?} naming a row of {:?}; \
                 columns are {}",
                plural(parent),
                columns.join(", ")
            )));
        };
        let keys: Vec<&str> = distinct(rows.iter().map(|r| r.get(at)));
        let parents = plural(parent);
        let found = fetch(state, "_expand", &parents, &state.id_column, &keys).await?;
        let mut by_id: HashMap<&str, Vec<u8>> = HashMap::new();
        if let Some((parent_columns, parent_rows, parent_types)) = &found {
            let id_at = parent_columns
                .iter()
                .position(|c| **c == *state.id_column)
                .unwrap_or_default();
            for row in parent_rows {
                by_id.entry(row.get(id_at)).or_insert_with(|| {
                    let mut out = Vec::new();
                    repr::json_object_typed(&mut out, parent_columns, parent_types, row);
                    out
                });
            }
        }
        for (slot, row) in related.iter_mut().zip(rows) {
            // No such parent: the name is left out, as in json-server.
            if let Some(object) = by_id.get(row.get(at)) {
                slot.push((parent.clone(), object.clone()));
            }
        }
    }
    Ok(related)
}

/// The non-empty texts, each once, in order of first appearance.
fn distinct<'a>(cells: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = std::collections::HashSet::new();
    cells.filter(|c| !c.is_empty() && seen.insert(*c)).collect()
}

/// The rows of `table` whose `column` holds one of `keys`, with the
/// table's columns; `None` when the table does not exist (yet: tables
/// come into being with their first row).
async fn fetch(
    state: &AppState,
    param: &str,
    table: &str,
    column: &str,
    keys: &[&str],
) -> Result<Option<Fetched>, Problem> {
    if keys.is_empty() {
        return Ok(None);
    }
    let query = {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for key in keys {
            query.append_pair(column, key);
        }
        query.finish()
    };
    let selected = match state.store.select(table, &query).await {
        Ok(selected) => selected,
        Err(Error::NoTable(_)) => return Ok(None),
        Err(Error::InvalidTableName(name)) => {
            return Err(Problem::bad_request(format!(
                "{param}: {name:?} is not a table name (1 to 64 letters, digits, '_' or '-', \
                 starting with a letter or digit)"
            )))
        }
        Err(Error::Query(err)) => {
            return Err(Problem::bad_request(format!(
                "{param}: table {table:?} cannot be joined by {column:?}: {err}"
            )))
        }
        Err(err) => return Err(err.into()),
    };
    if selected.total > MAX_RELATED {
        return Err(Problem::bad_request(format!(
            "{param}: these rows have {} related rows in {table:?}, more than the {MAX_RELATED} \
             one answer may join; ask for fewer rows (_page, _limit or a filter)",
            selected.total
        )));
    }
    let columns = selected.head.columns.clone();
    let rows: Vec<Row> = selected.rows.try_collect().await?;
    let types = state.store.types(table).await.aligned(&columns);
    Ok(Some((columns, rows, types)))
}

/// Related rows: their columns, the rows, and the columns' datatypes.
type Fetched = (
    Arc<Vec<String>>,
    Vec<Row>,
    Vec<Option<crate::store::schema::Datatype>>,
);

/// Words whose plural is not made by a rule.
const IRREGULAR: [(&str, &str); 14] = [
    ("person", "people"),
    ("child", "children"),
    ("woman", "women"),
    ("mouse", "mice"),
    ("goose", "geese"),
    ("foot", "feet"),
    ("tooth", "teeth"),
    ("quiz", "quizzes"),
    ("leaf", "leaves"),
    ("knife", "knives"),
    ("wife", "wives"),
    ("movie", "movies"),
    ("cookie", "cookies"),
    ("index", "indices"),
];

/// Words that are their own plural.
const SAME: [&str; 10] = [
    "sheep",
    "fish",
    "deer",
    "series",
    "species",
    "news",
    "info",
    "information",
    "equipment",
    "data",
];

/// A table's name made singular, for its rows' children to name it:
/// `posts` → `post`, `categories` → `category`, `boxes` → `box`,
/// `people` → `person`. A name that is not an English plural is kept.
pub(super) fn singular(word: &str) -> String {
    let lower = word.to_ascii_lowercase();
    if SAME.contains(&lower.as_str()) {
        return word.to_string();
    }
    if let Some((one, many)) = IRREGULAR.iter().find(|(_, many)| lower.ends_with(many)) {
        return format!("{}{one}", &word[..word.len() - many.len()]);
    }
    let stem = |n: usize| word[..word.len() - n].to_string();
    if lower.ends_with("ies") && word.len() > 4 {
        return format!("{}y", stem(3));
    }
    if ["sses", "shes", "ches", "xes", "zzes"]
        .iter()
        .any(|e| lower.ends_with(e))
    {
        return stem(2);
    }
    if lower.ends_with('s')
        && !lower.ends_with("ss")
        && !lower.ends_with("us")
        && !lower.ends_with("is")
        && word.len() > 1
    {
        return stem(1);
    }
    word.to_string()
}

/// A singular name made plural, for the table its parent is in:
/// `post` → `posts`, `category` → `categories`, `box` → `boxes`,
/// `person` → `people`.
pub(super) fn plural(word: &str) -> String {
    let lower = word.to_ascii_lowercase();
    if SAME.contains(&lower.as_str()) {
        return word.to_string();
    }
    if let Some((one, many)) = IRREGULAR.iter().find(|(one, _)| lower.ends_with(one)) {
        return format!("{}{many}", &word[..word.len() - one.len()]);
    }
    let vowel = |c: char| "aeiou".contains(c);
    let before_last = lower.chars().rev().nth(1).unwrap_or('a');
    if lower.ends_with('y') && !vowel(before_last) {
        return format!("{}ies", &word[..word.len() - 1]);
    }
    if ["s", "sh", "ch", "x", "z"]
        .iter()
        .any(|e| lower.ends_with(e))
    {
        return format!("{word}es");
    }
    format!("{word}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_and_singulars_of_common_names() {
        for (one, many) in [
            ("post", "posts"),
            ("comment", "comments"),
            ("category", "categories"),
            ("box", "boxes"),
            ("match", "matches"),
            ("dish", "dishes"),
            ("address", "addresses"),
            ("person", "people"),
            ("child", "children"),
            ("salesperson", "salespeople"),
            ("day", "days"),
            ("leaf", "leaves"),
            ("series", "series"),
            ("user", "users"),
            ("todo", "todos"),
        ] {
            assert_eq!(plural(one), many, "{one}");
            assert_eq!(singular(many), one, "{many}");
        }
        assert_eq!(singular("status"), "status");
        assert_eq!(singular("analysis"), "analysis");
        assert_eq!(singular("data"), "data");
        assert_eq!(singular("s"), "s");
    }

    #[test]
    fn relations_read_repeats_and_lists() {
        let r = Relations::of("_embed=comments&_embed=likes,comments&_expand=post&x=1");
        assert_eq!(r.embed, ["comments", "likes"]);
        assert_eq!(r.expand, ["post"]);
        assert!(Relations::of("_embed=").is_empty());
    }
}
