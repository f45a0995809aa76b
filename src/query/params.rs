//! Reading a query string into a [`Query`], checked against the table's
//! columns so that every mistake is a precise 400 before a row is read.

use std::collections::HashMap;

use super::compare::{Op, Operand};
use super::filter::{like, Filter, Search, Test, TextOp};
use super::sort::SortKey;
use super::window::Window;

/// The parameters that are not column names (the page reads them too).
pub const RESERVED: [&str; 13] = [
    "q",
    "_sort",
    "_order",
    "_page",
    "_limit",
    "_per_page",
    "_start",
    "_end",
    "_fields",
    // Read by the server, which joins related tables around the rows.
    "_embed",
    "_expand",
    // json-server v1's filter as one JSON object.
    "_where",
    // Read by the server: a wait before the answer.
    "_delay",
];

/// Operator suffixes of column parameters, and what they mean.
const SUFFIXES: [(&str, Kind); 9] = [
    ("_ne", Kind::NotEquals),
    ("_lt", Kind::Compare(Op::Lt)),
    ("_lte", Kind::Compare(Op::Lte)),
    ("_gt", Kind::Compare(Op::Gt)),
    ("_gte", Kind::Compare(Op::Gte)),
    ("_like", Kind::Like),
    // The later spelling of some of the `field:op` operators.
    ("_eq", Kind::V1(V1::Eq)),
    ("_in", Kind::V1(V1::In)),
    ("_contains", Kind::V1(V1::Text(TextOp::Contains))),
];

/// The operators of the `field:op=value` (or `field[op]=value`) form.
const OPERATORS: [(&str, V1); 10] = [
    ("eq", V1::Eq),
    ("ne", V1::Ne),
    ("lt", V1::Compare(Op::Lt)),
    ("lte", V1::Compare(Op::Lte)),
    ("gt", V1::Compare(Op::Gt)),
    ("gte", V1::Compare(Op::Gte)),
    ("in", V1::In),
    ("contains", V1::Text(TextOp::Contains)),
    ("startsWith", V1::Text(TextOp::StartsWith)),
    ("endsWith", V1::Text(TextOp::EndsWith)),
];

/// A parsed query: which rows, in which order, which part, which columns.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// All must accept a row.
    pub filters: Vec<Filter>,
    pub search: Option<Search>,
    pub sort: Vec<SortKey>,
    pub window: Window,
    /// The columns to show, in this order; `None` for all.
    pub fields: Option<Vec<usize>>,
    /// Pages were asked with `_per_page`: a JSON answer is one object
    /// naming the neighbouring pages around the rows (`data`).
    pub envelope: bool,
    /// `_where`'s `or`s: each holds when all the filters of one of its
    /// alternatives accept the row.
    pub or: Vec<Vec<Vec<Filter>>>,
}

impl Query {
    /// Whether the answer is the table as it is (only a window, at most).
    pub fn is_plain(&self) -> bool {
        self.filters.is_empty()
            && self.search.is_none()
            && self.sort.is_empty()
            && self.or.is_empty()
    }

    /// Whether a row of a table `width` columns wide is one the query
    /// selects: every filter, `q` and `_where`'s `or`s accept it.
    pub fn accepts(&self, row: &crate::store::Row, width: usize) -> bool {
        self.filters.iter().all(|f| f.accepts(row.get(f.column)))
            && self.search.as_ref().is_none_or(|s| s.accepts(row, width))
            && self.or_accepts(row)
    }

    /// Whether `_where`'s `or`s accept a row.
    pub fn or_accepts(&self, row: &crate::store::Row) -> bool {
        self.or.iter().all(|alternatives| {
            alternatives
                .iter()
                .any(|all| all.iter().all(|f| f.accepts(row.get(f.column))))
        })
    }
}

/// A query the server cannot answer, said so a person can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Equals,
    NotEquals,
    Compare(Op),
    Like,
    /// `field:op=value`: the last value given counts.
    V1(V1),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum V1 {
    Eq,
    Ne,
    Compare(Op),
    In,
    Text(TextOp),
}

/// Parses the raw query string of `GET /<table>?…` (percent-encoded, `+`
/// for space) against the table's columns.
pub fn parse(raw: &str, columns: &[String]) -> Result<Query, QueryError> {
    let mut query = Query::default();
    // Column parameters in the order first given, with their values.
    let mut groups: Vec<((Target, Kind), Vec<String>)> = Vec::new();
    let mut reserved: HashMap<&'static str, Vec<String>> = HashMap::new();
    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        if key.is_empty() || key == "_" {
            // `_` is the cache-buster some HTTP libraries append.
            continue;
        }
        if let Some(name) = RESERVED.iter().find(|r| **r == key) {
            reserved.entry(name).or_default().push(value.into_owned());
            continue;
        }
        let target = resolve(&key, columns)?;
        match groups.iter_mut().find(|(t, _)| *t == target) {
            Some((_, values)) if matches!(target.1, Kind::V1(_)) => {
                *values = vec![value.into_owned()]
            }
            Some((_, values)) => values.push(value.into_owned()),
            None => groups.push((target, vec![value.into_owned()])),
        }
    }
    for (((column, path), kind), values) in groups {
        let mut filter = filter(column, kind, values, columns)?;
        if !path.is_empty() {
            filter.test = Test::Path(path, Box::new(filter.test));
        }
        query.filters.push(filter);
    }
    if let Some(json) = once(&reserved, "_where")? {
        let (filters, or) = where_filters(json, columns)?;
        query.filters.extend(filters);
        query.or = or;
    }
    // Like json-server, the first `q` counts.
    if let Some(text) = reserved.get("q").and_then(|v| v.first()) {
        query.search = Search::new(text);
    }
    let single = |name: &str| once(&reserved, name);
    if let Some(sort) = single("_sort")? {
        query.sort = super::sort::keys(sort, single("_order")?, columns).map_err(QueryError)?;
    } else if let Some(order) = single("_order")? {
        // `_order` alone changes nothing, but a wrong one is still wrong.
        super::sort::directions(order).map_err(QueryError)?;
    }
    query.envelope = single("_per_page")?.is_some();
    let page = match single("_page")? {
        None if query.envelope => Some("1"),
        page => page,
    };
    query.window = Window::from_params(
        page,
        match (single("_limit")?, single("_per_page")?) {
            (Some(_), Some(_)) => {
                return Err(QueryError(
                    "give _limit or _per_page (the same thing), not both".into(),
                ))
            }
            (limit, per_page) => limit
                .map(|l| ("_limit", l))
                .or(per_page.map(|p| ("_per_page", p))),
        },
        single("_start")?,
        single("_end")?,
    )
    .map_err(QueryError)?;
    if let Some(fields) = single("_fields")? {
        query.fields = Some(field_list(fields, columns)?);
    }
    Ok(query)
}

/// The one value of a parameter that may be given once.
fn once<'a>(
    reserved: &'a HashMap<&'static str, Vec<String>>,
    name: &str,
) -> Result<Option<&'a str>, QueryError> {
    match reserved.get(name).map(Vec::as_slice) {
        None | Some([]) => Ok(None),
        Some([value]) => Ok(Some(value)),
        Some(_) => Err(QueryError(format!(
            "{name} is given more than once; give it once (lists are comma-separated: {name}=a,b)"
        ))),
    }
}

/// Which column and operator a parameter names. A column whose name ends
/// like an operator (`price_lt`) is taken as the column.
fn resolve(key: &str, columns: &[String]) -> Result<(Target, Kind), QueryError> {
    if let Some(i) = position(columns, key) {
        return Ok(((i, Vec::new()), Kind::Equals));
    }
    if let Some(found) = operator_form(key, columns)? {
        return Ok(found);
    }
    let suffixed = SUFFIXES
        .iter()
        .find_map(|(suffix, kind)| Some((key.strip_suffix(suffix)?, *kind)));
    if let Some((stem, kind)) = suffixed {
        return match locate(columns, stem) {
            Some(target) => Ok((target, kind)),
            None => Err(no_column(stem, Some(key), columns)),
        };
    }
    // Last, a path into a column's JSON objects: `author.name`.
    if let Some(target) = locate(columns, key) {
        return Ok((target, Kind::Equals));
    }
    if key.starts_with('_') {
        return Err(QueryError(format!(
            "unknown parameter {key:?}; the parameters are q, _sort, _order, _page, _limit \
             (or _per_page), _start, _end, _fields, _embed, _expand, _where, and a column name \
             alone, with _ne, _lt, _lte, _gt, _gte or _like, or as column:op with op one of \
             {}",
            operator_names()
        )));
    }
    Err(no_column(key, None, columns))
}

/// `age:gt` or `age[gt]`: a column and an operator of the `field:op`
/// form; `None` when the key has neither shape.
fn operator_form(key: &str, columns: &[String]) -> Result<Option<(Target, Kind)>, QueryError> {
    let split = match key.strip_suffix(']').and_then(|k| k.rsplit_once('[')) {
        Some(parts) => Some(parts),
        None => key.rsplit_once(':'),
    };
    let Some((stem, op)) = split.filter(|(stem, _)| !stem.is_empty()) else {
        return Ok(None);
    };
    let known = OPERATORS.iter().find(|(name, _)| *name == op);
    match (locate(columns, stem), known) {
        (Some(target), Some(&(_, v1))) => Ok(Some((target, Kind::V1(v1)))),
        (Some(_), None) => Err(QueryError(format!(
            "{key}: unknown operator {op:?}; use one of {}",
            operator_names()
        ))),
        (None, Some(_)) => Err(no_column(stem, Some(key), columns)),
        // Not this form: a column name nobody has.
        (None, None) => Ok(None),
    }
}

fn operator_names() -> String {
    OPERATORS.map(|(name, _)| name).join(", ")
}

/// A column, and a path of keys into the JSON object its cells hold
/// (empty for the cell itself).
type Target = (usize, Vec<String>);

/// The column a name names (`author`), or a path into a column's JSON
/// objects (`author.name`, `tags.0`); a column named with dots wins.
pub(super) fn locate(columns: &[String], name: &str) -> Option<Target> {
    if let Some(i) = position(columns, name) {
        return Some((i, Vec::new()));
    }
    name.match_indices('.').find_map(|(dot, _)| {
        let column = position(columns, &name[..dot])?;
        let path: Vec<String> = name[dot + 1..].split('.').map(str::to_string).collect();
        (!path.iter().any(String::is_empty)).then_some((column, path))
    })
}

fn position(columns: &[String], name: &str) -> Option<usize> {
    columns.iter().position(|c| c == name)
}

/// "no column X; columns are …", the error for every unknown column name.
pub fn no_column(name: &str, param: Option<&str>, columns: &[String]) -> QueryError {
    let from = param.map(|p| format!(" (in {p})")).unwrap_or_default();
    let list = if columns.is_empty() {
        "the table has no columns".to_string()
    } else {
        format!("columns are {}", columns.join(", "))
    };
    QueryError(format!("no column {name:?}{from}; {list}"))
}

fn filter(
    column: usize,
    kind: Kind,
    values: Vec<String>,
    columns: &[String],
) -> Result<Filter, QueryError> {
    let test = match kind {
        Kind::Equals => Test::Equals(values),
        Kind::NotEquals => Test::NotEquals(values),
        Kind::Compare(op) => Test::Compare(op, values.into_iter().map(Operand::new).collect()),
        Kind::Like => Test::Like(
            values
                .iter()
                .map(|pattern| {
                    like(pattern).map_err(|e| {
                        QueryError(format!(
                            "{}_like: {pattern:?} is not a valid regular expression: {e}",
                            columns[column]
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
        Kind::V1(op) => {
            // The last value given counts, as with one JSON object's key.
            let value = values.into_iter().next_back().unwrap_or_default();
            match op {
                V1::Eq => Test::Equals(vec![value]),
                V1::Ne => Test::NotEquals(vec![value]),
                V1::Compare(op) => Test::Compare(op, vec![Operand::new(value)]),
                V1::In => Test::Equals(value.split(',').map(|v| v.trim().to_string()).collect()),
                V1::Text(op) => Test::Text(op, value.to_lowercase()),
            }
        }
    };
    Ok(Filter { column, test })
}

/// `_where={"age":{"gt":30},"or":[{"city":{"eq":"Oslo"}},…]}`, json-server
/// v1's filter: the filters that must all hold, and the `or`s.
#[allow(clippy::type_complexity)]
fn where_filters(
    json: &str,
    columns: &[String],
) -> Result<(Vec<Filter>, Vec<Vec<Vec<Filter>>>), QueryError> {
    let bad = |why: String| QueryError(format!("_where: {why}"));
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| {
        bad(format!(
            "expected a JSON object, like {{\"age\":{{\"gt\":30}}}}: {e}"
        ))
    })?;
    let serde_json::Value::Object(fields) = value else {
        return Err(bad(
            "expected a JSON object, like {\"age\":{\"gt\":30}}".into()
        ));
    };
    let mut all = Vec::new();
    let mut or = Vec::new();
    for (key, value) in fields {
        if key == "or" {
            let serde_json::Value::Array(alternatives) = value else {
                return Err(bad("\"or\" takes an array of objects".into()));
            };
            let mut group = Vec::new();
            for alternative in alternatives {
                let serde_json::Value::Object(fields) = alternative else {
                    return Err(bad("\"or\" takes an array of objects".into()));
                };
                let mut filters = Vec::new();
                for (key, value) in fields {
                    if key == "or" {
                        return Err(bad("an \"or\" inside an \"or\" is not supported".into()));
                    }
                    where_field(&key, Vec::new(), &value, columns, &mut filters)?;
                }
                group.push(filters);
            }
            // v1: an empty `or` holds for no row.
            or.push(group);
            continue;
        }
        where_field(&key, Vec::new(), &value, columns, &mut all)?;
    }
    Ok((all, or))
}

/// One field of `_where`: `{"gt":30,"lt":40}` (operators, all must hold)
/// or an object naming fields inside the cells' JSON objects.
fn where_field(
    key: &str,
    mut path: Vec<String>,
    value: &serde_json::Value,
    columns: &[String],
    out: &mut Vec<Filter>,
) -> Result<(), QueryError> {
    let bad = |why: String| QueryError(format!("_where: {why}"));
    let serde_json::Value::Object(ops) = value else {
        return Err(bad(format!(
            "{key}: give operators, like {{\"{key}\":{{\"eq\":{value}}}}}"
        )));
    };
    let known: Vec<(&String, V1, &serde_json::Value)> = ops
        .iter()
        .filter_map(|(name, v)| {
            OPERATORS
                .iter()
                .find(|(op, _)| op == name)
                .map(|(_, op)| (name, *op, v))
        })
        .collect();
    if known.is_empty() {
        // Keys inside the cell's JSON object.
        if locate(columns, key).is_none() {
            return Err(no_column(key, Some("_where"), columns));
        }
        for (inner, value) in ops {
            let mut deeper = path.clone();
            deeper.push(inner.clone());
            where_field(key, deeper, value, columns, out)?;
        }
        return Ok(());
    }
    let (column, mut full) =
        locate(columns, key).ok_or_else(|| no_column(key, Some("_where"), columns))?;
    full.append(&mut path);
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    for (name, op, operand) in known {
        let mut filter = match (op, operand) {
            (V1::In, serde_json::Value::Array(values)) => Filter {
                column,
                test: Test::Equals(values.iter().map(text).collect()),
            },
            (V1::In, value) => Filter {
                column,
                test: Test::Equals(vec![text(value)]),
            },
            (_, serde_json::Value::Array(_) | serde_json::Value::Object(_)) => {
                return Err(bad(format!("{key}: {name} takes one value, not {operand}")))
            }
            (op, value) => filter(column, Kind::V1(op), vec![text(value)], columns)?,
        };
        if !full.is_empty() {
            filter.test = Test::Path(full.clone(), Box::new(filter.test));
        }
        out.push(filter);
    }
    Ok(())
}

/// `_fields=name,age` → column positions, each once, in the order given.
fn field_list(list: &str, columns: &[String]) -> Result<Vec<usize>, QueryError> {
    let mut fields = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let i = position(columns, name).ok_or_else(|| no_column(name, Some("_fields"), columns))?;
        if !fields.contains(&i) {
            fields.push(i);
        }
    }
    if fields.is_empty() {
        return Err(QueryError(
            "_fields names no column; give a comma-separated list, like _fields=id,name".into(),
        ));
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Row;

    fn cols() -> Vec<String> {
        ["id", "name", "age", "price_lt", "first_name"]
            .iter()
            .map(|c| c.to_string())
            .collect()
    }

    fn err(raw: &str) -> String {
        parse(raw, &cols()).unwrap_err().to_string()
    }

    #[test]
    fn column_parameters_become_filters() {
        let q = parse("name=kim&name=lee&age_gte=30&first_name_like=^k", &cols()).unwrap();
        assert_eq!(q.filters.len(), 3);
        assert!(matches!(&q.filters[0].test, Test::Equals(v) if v == &["kim", "lee"]));
        assert_eq!(q.filters[1].column, 2);
        assert!(
            matches!(&q.filters[1].test, Test::Compare(Op::Gte, o) if o[0].number == Some(30.0))
        );
        assert_eq!(q.filters[2].column, 4);
        let row = Row::from_cells(["1", "kim", "30", "", "Kate"]);
        assert!(q.filters.iter().all(|f| f.accepts(row.get(f.column))));
    }

    #[test]
    fn a_column_named_like_an_operator_wins() {
        let q = parse("price_lt=5", &cols()).unwrap();
        assert_eq!(q.filters[0].column, 3);
        assert!(matches!(q.filters[0].test, Test::Equals(_)));
    }

    #[test]
    fn decoding_follows_forms() {
        let q = parse("name=kim+lee&name=a%26b", &cols()).unwrap();
        assert!(matches!(&q.filters[0].test, Test::Equals(v) if v == &["kim lee", "a&b"]));
        assert!(parse("&&_=123&", &cols()).unwrap().is_plain());
    }

    #[test]
    fn unknown_names_are_precise() {
        assert_eq!(
            err("nme=kim"),
            "no column \"nme\"; columns are id, name, age, price_lt, first_name"
        );
        assert!(err("nme_like=k").starts_with("no column \"nme\" (in nme_like);"));
        assert!(err("_nope=posts").contains("unknown parameter \"_nope\""));
        assert!(err("age:gtt=1").starts_with("age:gtt: unknown operator \"gtt\"; use one of eq,"));
        assert!(err("nme:gt=1").starts_with("no column \"nme\" (in nme:gt);"));
        assert!(err("a:b=1").starts_with("no column \"a:b\";"));
        assert!(err("_fields=id,nope").starts_with("no column \"nope\" (in _fields)"));
        assert!(err("_sort=nope").starts_with("no column \"nope\" (in _sort)"));
    }

    #[test]
    fn bad_values_are_precise() {
        assert!(err("name_like=(").contains("name_like: \"(\" is not a valid regular expression"));
        assert!(err("_page=x").contains("_page"));
        assert!(err("_sort=id&_sort=name").contains("more than once"));
        assert!(err("_order=up").contains("asc or desc"));
        assert!(err("_limit=1&_per_page=2").contains("not both"));
    }

    #[test]
    fn fields_keep_their_order_once() {
        let q = parse("_fields=age,id,age", &cols()).unwrap();
        assert_eq!(q.fields, Some(vec![2, 0]));
        assert!(err("_fields=").contains("names no column"));
    }

    #[test]
    fn operator_forms_become_filters() {
        let q = parse(
            "age:gt=5&age[lte]=30&name:in=kim,+lee&name:startsWith=K&id:ne=1&id:ne=2&id_eq=3",
            &cols(),
        )
        .unwrap();
        assert_eq!(q.filters.len(), 6);
        assert!(matches!(&q.filters[0].test, Test::Compare(Op::Gt, o) if o[0].text == "5"));
        assert!(matches!(&q.filters[1].test, Test::Compare(Op::Lte, o) if o[0].text == "30"));
        assert!(matches!(&q.filters[2].test, Test::Equals(v) if v == &["kim", "lee"]));
        assert!(matches!(&q.filters[3].test, Test::Text(TextOp::StartsWith, t) if t == "k"));
        // As with a key of one JSON object, the last value counts.
        assert!(matches!(&q.filters[4].test, Test::NotEquals(v) if v == &["2"]));
        assert!(matches!(&q.filters[5].test, Test::Equals(v) if v == &["3"]));
        let text = Filter {
            column: 1,
            test: Test::Text(TextOp::Contains, "im".into()),
        };
        assert!(text.accepts("KIM"));
        assert!(!text.accepts("30"));
        assert!(!text.accepts("true"));
        let ends = Filter {
            column: 1,
            test: Test::Text(TextOp::EndsWith, "7".into()),
        };
        assert!(ends.accepts("007"));
        assert!(!ends.accepts("17"));
    }

    #[test]
    fn paths_reach_into_json_cells() {
        let cols: Vec<String> = ["id", "author", "a.b"]
            .iter()
            .map(|c| c.to_string())
            .collect();
        let q = parse(
            "author.name=kim&author.age_gt=3&a.b=1&author.x:in=1,2",
            &cols,
        )
        .unwrap();
        assert!(matches!(&q.filters[0].test, Test::Path(p, t)
            if p == &["name"] && matches!(**t, Test::Equals(_))));
        assert!(matches!(&q.filters[1].test, Test::Path(p, t)
            if p == &["age"] && matches!(**t, Test::Compare(Op::Gt, _))));
        // A column named with a dot is the column.
        assert_eq!(q.filters[2].column, 2);
        assert!(matches!(q.filters[2].test, Test::Equals(_)));
        let cell = r#"{"name":"kim","age":30,"tags":["x",null,true]}"#;
        assert!(q.filters[0].accepts(cell));
        assert!(q.filters[1].accepts(cell));
        assert!(!q.filters[0].accepts("kim"));
        assert!(!q.filters[0].accepts("{not json"));
        let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        use super::super::filter::reach;
        assert_eq!(reach(cell, &path(&["tags", "0"])), Some("x".into()));
        assert_eq!(reach(cell, &path(&["tags", "1"])), Some(String::new()));
        assert_eq!(reach(cell, &path(&["tags", "2"])), Some("true".into()));
        assert_eq!(
            reach(cell, &path(&["tags"])),
            Some(r#"["x",null,true]"#.into())
        );
        assert_eq!(reach(cell, &path(&["nope"])), None);
        assert!(parse("author.=1", &cols).is_err());
        let sort = parse("_sort=-author.age", &cols).unwrap().sort;
        assert_eq!((sort[0].column, sort[0].descending), (1, true));
        assert_eq!(sort[0].path, ["age"]);
    }

    #[test]
    fn per_page_asks_for_an_envelope() {
        let q = parse("_per_page=2", &cols()).unwrap();
        assert!(q.envelope);
        assert_eq!(q.window, Window::Page { number: 1, size: 2 });
        let q = parse("_page=3&_per_page=2", &cols()).unwrap();
        assert_eq!(q.window, Window::Page { number: 3, size: 2 });
        assert!(!parse("_page=3&_limit=2", &cols()).unwrap().envelope);
        assert!(parse("_embed=comments&_expand=post", &cols())
            .unwrap()
            .is_plain());
    }

    #[test]
    fn search_takes_the_first_q() {
        let q = parse("q=kim&q=lee", &cols()).unwrap();
        let search = q.search.unwrap();
        assert!(search.accepts(&Row::from_cells(["1", "KIM"]), 2));
        assert!(!search.accepts(&Row::from_cells(["1", "lee"]), 2));
    }
}
