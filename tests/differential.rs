//! Differential test: random tables, random writes and random queries,
//! sent alike to a server on the file store and to one on PostgreSQL; every
//! answer must be the same (status, type, `X-Total-Count`, `Link`, the body
//! byte for byte, row tags).
//!
//! Tables hold cells chosen to be hard: numbers that are and are not
//! canonical (`7`, `-2.5`, `007`, `1e3`, ` 5`), booleans, empty cells, text
//! in mixed case and beyond ASCII (`école`, `Zoë`, `İstanbul`, `ß`), commas,
//! quotes and newlines. Queries use every filter operator, json-server v1's
//! `col:op` forms among them (repeated too),
//! `q`, `_sort` on one or two columns with `_order`, every kind of window,
//! `_fields`, the three representations, and mistakes.
//!
//! `CSVD_DIFF_CASES` (default 20) tables, `CSVD_DIFF_QUERIES` (default 40)
//! queries each, `CSVD_DIFF_SEED` (default fixed; `random` for one from the
//! clock), `CSVD_DIFF_ONLY=N` to replay table N alone, `CSVD_DIFF_BIG=0` to
//! leave out the large table. `CSVD_DIFF_AGAINST=files` compares two file
//! stores instead: a check of this test itself, needing no PostgreSQL.

mod common;

use common::{env_or, pg, Response, Server};
use serde_json::{json, Map, Value};

/// A small xorshift64* generator: the same seed, the same run.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // Never zero, and nearby seeds far apart.
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// True `percent` times in 100.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn int(&mut self, low: i64, high: i64) -> i64 {
        low + self.below((high - low + 1) as usize) as i64
    }
}

const WORDS: &[&str] = &[
    "kim",
    "Kim",
    "KIM",
    "lee",
    "park",
    "école",
    "École",
    "ÉCOLE d'été",
    "Zoë",
    "zoë",
    "zoe",
    "Zoe",
    "São Paulo",
    "Seoul",
    "seoul",
    "tea",
    "Tea and cake",
    "n/a",
    "a b",
    "x,y",
    "say \"hi\"",
    "two\nlines",
    "100%",
    "a_b",
    "ß",
    "straße",
    "STRASSE",
    "İstanbul",
    "istanbul",
    "ǅemal",
    "Ωmega",
    "ωmega",
    "日本",
    "🎉 party",
    "  padded ",
    "Infinity",
    "NaN",
    "null",
    "TRUE",
    "False",
    "abc",
    "ABC",
    "Abc",
    "0abc",
    "a.c",
];

const NUMBERS: &[&str] = &[
    "7",
    "-2.5",
    "007",
    "1e3",
    "0",
    "10",
    "9",
    "0.5",
    "-0",
    "2.50",
    "+1",
    " 5",
    "-1",
    "12345678901234567890",
    "9007199254740993",
    "0.1",
    "100",
    "1E2",
    "-7",
    ".5",
    "5.",
    "true",
    "false",
];

const SYLLABLES: &[&str] = &[
    "ka", "Lo", "mé", "zo", "ël", "ST", "ab", "Ça", "ñu", "i", "İ", "ß",
];

const COLUMNS: &[&str] = &[
    "name", "age", "city", "Note", "note", "x y", "é", "price", "price_lt", "zip", "flag", "score",
    "Ünï", "a,b", "when",
];

const IDS: &[&str] = &["007", "abc", "a b", "Zoë", "x-1", "7", "10", "0", "99"];

/// How a column's cells are drawn.
#[derive(Clone, Copy, Debug)]
enum Flavour {
    Numeric,
    Text,
    Boolean,
    Mixed,
    Sparse,
}

fn flavour(rng: &mut Rng) -> Flavour {
    *rng.pick(&[
        Flavour::Numeric,
        Flavour::Numeric,
        Flavour::Text,
        Flavour::Text,
        Flavour::Boolean,
        Flavour::Mixed,
        Flavour::Sparse,
    ])
}

fn number(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => format!("{}.{}", rng.int(-20, 20), rng.int(1, 9)),
        _ => rng.int(-20, 60).to_string(),
    }
}

fn word(rng: &mut Rng) -> String {
    (0..1 + rng.below(3))
        .map(|_| *rng.pick(SYLLABLES))
        .collect()
}

fn cell(rng: &mut Rng, flavour: Flavour) -> String {
    let roll = rng.below(100);
    match flavour {
        Flavour::Numeric => match roll {
            0..=64 => number(rng),
            65..=74 => String::new(),
            75..=89 => rng.pick(NUMBERS).to_string(),
            _ => rng.pick(WORDS).to_string(),
        },
        Flavour::Text => match roll {
            0..=59 => rng.pick(WORDS).to_string(),
            60..=79 => word(rng),
            80..=89 => String::new(),
            _ => rng.pick(NUMBERS).to_string(),
        },
        Flavour::Boolean => rng
            .pick(&["true", "false", "", "1", "0", "TRUE", "true", "false"])
            .to_string(),
        Flavour::Mixed => match roll {
            0..=24 => number(rng),
            25..=49 => rng.pick(NUMBERS).to_string(),
            50..=74 => rng.pick(WORDS).to_string(),
            75..=84 => word(rng),
            _ => String::new(),
        },
        Flavour::Sparse => match roll {
            0..=69 => String::new(),
            70..=84 => number(rng),
            _ => rng.pick(WORDS).to_string(),
        },
    }
}

/// A CSV field, quoted when it must be (and when empty, so that a row of
/// one empty field is not a blank line).
fn csv_field(text: &str) -> String {
    if text.is_empty() || text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn csv_line(fields: &[String]) -> String {
    let mut line = fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// A cell as a JSON value in a request body: mostly text, sometimes the
/// number, boolean or null a client would send.
fn json_cell(rng: &mut Rng, text: &str) -> Value {
    if rng.chance(20) {
        if let Ok(n) = text.parse::<i64>() {
            return json!(n);
        }
        if text == "true" || text == "false" {
            return json!(text == "true");
        }
        if text.is_empty() {
            return Value::Null;
        }
    }
    json!(text)
}

fn encode_path(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// What the other server runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Other {
    Postgres,
    Files,
}

/// The two servers and what a mismatch report needs.
struct Pair {
    files: Server,
    other: Server,
    other_kind: Other,
    seed: u64,
    /// The table being worked on, and its number.
    table: String,
    case: usize,
    requests: usize,
    /// Queries answered 200 with rows, 200 without, and refused (4xx).
    rows: usize,
    empty: usize,
    refused: usize,
    verbose: bool,
}

impl Pair {
    /// Sends one request to both servers and checks they answer alike;
    /// returns the file store's answer. `row_tag`: the answers' `ETag`s are
    /// row versions, which every backend computes alike.
    fn both(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        row_tag: bool,
    ) -> Response {
        self.requests += 1;
        let a = self.files.request(method, path, headers, body);
        let b = self.other.request(method, path, headers, body);
        let mut differences = Vec::new();
        if a.status != b.status {
            differences.push(format!("status {} vs {}", a.status, b.status));
        }
        for name in ["content-type", "x-total-count", "link", "location"] {
            if a.header(name) != b.header(name) {
                differences.push(format!(
                    "{name}: {:?} vs {:?}",
                    a.header(name),
                    b.header(name)
                ));
            }
        }
        if row_tag && a.status < 300 && a.header("etag") != b.header("etag") {
            differences.push(format!(
                "row ETag {:?} vs {:?}",
                a.header("etag"),
                b.header("etag")
            ));
        }
        if comparable(&a) != comparable(&b) {
            differences.push("bodies differ".to_string());
        }
        if !differences.is_empty() {
            self.report(method, path, body, &a, &b, &differences);
        }
        if method == "GET" {
            match (a.status, a.header("x-total-count")) {
                (200, Some("0")) => self.empty += 1,
                (200, _) => self.rows += 1,
                _ => self.refused += 1,
            }
        }
        if self.verbose {
            eprintln!(
                "{method} {path} -> {} ({} rows)",
                a.status,
                a.header("x-total-count").unwrap_or("-")
            );
        }
        a
    }

    fn get(&mut self, path: &str) -> Response {
        self.both("GET", path, &[], b"", false)
    }

    fn report(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
        a: &Response,
        b: &Response,
        differences: &[String],
    ) -> ! {
        let table = self
            .files
            .get(&format!("/{}.csv", self.table))
            .text()
            .chars()
            .take(6000)
            .collect::<String>();
        let short = |r: &Response| -> String {
            String::from_utf8_lossy(&r.body)
                .chars()
                .take(3000)
                .collect()
        };
        panic!(
            "the file store and {:?} answer differently ({}):\n\
             {method} {path}\n{}\n\
             replay: CSVD_DIFF_SEED={} CSVD_DIFF_ONLY={} (request {} of the run)\n\
             --- table {} (file store, as CSV) ---\n{table}\n\
             --- file store: {} ---\n{}\n\
             --- {:?}: {} ---\n{}",
            self.other_kind,
            differences.join("; "),
            String::from_utf8_lossy(body)
                .chars()
                .take(2000)
                .collect::<String>(),
            self.seed,
            self.case,
            self.requests,
            self.table,
            a.status,
            short(a),
            self.other_kind,
            b.status,
            short(b),
        );
    }

    /// The ids the table has now, in order (from the file store).
    fn ids(&self) -> Vec<String> {
        let r = self.files.get(&format!("/{}?_fields=id", self.table));
        if r.status != 200 {
            return Vec::new();
        }
        r.json()
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|row| match &row["id"] {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// An answer as compared: JSON without the times of change (`modified`),
/// which differ between any two stores; anything else as its bytes.
fn comparable(r: &Response) -> Value {
    fn strip(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.remove("modified");
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let json = r
        .header("content-type")
        .is_some_and(|t| t.contains("json") && !t.contains("ndjson"));
    match serde_json::from_slice::<Value>(&r.body) {
        Ok(mut value) if json => {
            strip(&mut value);
            // The text too: one row a line, the same characters.
            json!([value, String::from_utf8_lossy(&r.body).lines().count()])
        }
        _ => json!(String::from_utf8_lossy(&r.body)),
    }
}

/// A table's shape: its columns and how their cells are drawn.
struct Shape {
    columns: Vec<(String, Flavour)>,
}

/// Creates table `name` on both servers with `PUT /name` (CSV, or now and
/// then a JSON array).
fn create(pair: &mut Pair, rng: &mut Rng, name: &str) -> Shape {
    let mut pool: Vec<&str> = COLUMNS.to_vec();
    let count = 1 + rng.below(5);
    let mut columns = Vec::new();
    for _ in 0..count {
        let column = pool.remove(rng.below(pool.len()));
        columns.push((column.to_string(), flavour(rng)));
    }
    let rows = match rng.below(10) {
        0 => 0,
        1 => 1,
        _ => 3 + rng.below(35),
    };
    let with_ids = rng.chance(60);
    let mut ids: Vec<String> = (1..=rows).map(|i| i.to_string()).collect();
    if with_ids {
        for id in ids.iter_mut() {
            if rng.chance(15) {
                *id = format!("{}{}", rng.pick(IDS), rng.below(1000));
            }
        }
        if rng.chance(30) {
            // Out of order.
            for i in (1..ids.len()).rev() {
                let j = rng.below(i + 1);
                ids.swap(i, j);
            }
        }
        if rows > 1 && rng.chance(4) {
            // A repeated id: both must refuse the table.
            ids[1] = ids[0].clone();
        }
    }
    let table: Vec<Vec<String>> = (0..rows)
        .map(|_| columns.iter().map(|(_, f)| cell(rng, *f)).collect())
        .collect();
    if rng.chance(20) {
        let array: Vec<Value> = table
            .iter()
            .enumerate()
            .map(|(i, cells)| {
                let mut row = Map::new();
                if with_ids {
                    row.insert("id".into(), json!(ids[i]));
                }
                for ((column, _), text) in columns.iter().zip(cells) {
                    if !text.is_empty() || rng.chance(50) {
                        row.insert(column.clone(), json_cell(rng, text));
                    }
                }
                Value::Object(row)
            })
            .collect();
        let body = Value::Array(array).to_string();
        pair.both(
            "PUT",
            &format!("/{name}"),
            &[("Content-Type", "application/json")],
            body.as_bytes(),
            false,
        );
    } else {
        let mut header: Vec<String> = columns.iter().map(|(c, _)| c.clone()).collect();
        let id_at = rng.below(header.len() + 1);
        if with_ids {
            header.insert(id_at, "id".into());
        }
        let mut csv = csv_line(&header);
        for (i, cells) in table.iter().enumerate() {
            let mut fields = cells.clone();
            if with_ids {
                fields.insert(id_at, ids[i].clone());
            }
            csv.push_str(&csv_line(&fields));
        }
        pair.both(
            "PUT",
            &format!("/{name}"),
            &[("Content-Type", "text/csv")],
            csv.as_bytes(),
            false,
        );
    }
    Shape { columns }
}

/// A row for a write: some of the columns, sometimes a new one, sometimes
/// an id.
fn body_row(rng: &mut Rng, shape: &mut Shape, ids: &[String], with_id: bool) -> Value {
    let mut row = Map::new();
    if with_id {
        let id = if !ids.is_empty() && rng.chance(30) {
            rng.pick(ids).clone()
        } else {
            format!("{}{}", rng.pick(IDS), rng.below(50))
        };
        row.insert("id".into(), json!(id));
    }
    for (column, flavour) in &shape.columns {
        if rng.chance(70) {
            let text = cell(rng, *flavour);
            row.insert(column.clone(), json_cell(rng, &text));
        }
    }
    if rng.chance(10) {
        let column = format!("extra{}", rng.below(3));
        let flavour = flavour(rng);
        let text = cell(rng, flavour);
        row.insert(column.clone(), json!(text));
        if !shape.columns.iter().any(|(c, _)| *c == column) {
            shape.columns.push((column, flavour));
        }
    }
    Value::Object(row)
}

/// A few random writes, each sent to both servers.
fn write(pair: &mut Pair, rng: &mut Rng, name: &str, shape: &mut Shape) {
    let json = [("Content-Type", "application/json")];
    for _ in 0..rng.below(12) {
        let ids = pair.ids();
        let id = if !ids.is_empty() && rng.chance(85) {
            rng.pick(&ids).clone()
        } else {
            rng.pick(IDS).to_string()
        };
        let row_path = format!("/{name}/{}", encode_path(&id));
        match rng.below(7) {
            0 | 1 => {
                let with_id = rng.chance(20);
                let body = body_row(rng, shape, &ids, with_id).to_string();
                pair.both("POST", &format!("/{name}"), &json, body.as_bytes(), true);
            }
            2 => {
                let rows: Vec<Value> = (0..1 + rng.below(4))
                    .map(|_| {
                        let with_id = rng.chance(10);
                        body_row(rng, shape, &ids, with_id)
                    })
                    .collect();
                let body = Value::Array(rows).to_string();
                pair.both("POST", &format!("/{name}"), &json, body.as_bytes(), false);
            }
            3 => {
                let body = body_row(rng, shape, &ids, false).to_string();
                pair.both("PATCH", &row_path, &json, body.as_bytes(), true);
            }
            4 => {
                let body = body_row(rng, shape, &ids, false).to_string();
                pair.both("PUT", &row_path, &json, body.as_bytes(), true);
            }
            // Not the row of the largest integer id: the next id after
            // deleting it is the one place the backends differ by design
            // (the file store gives it again, PostgreSQL never does).
            5 if !is_largest_int_id(&ids, &id) => {
                pair.both("DELETE", &row_path, &[], b"", false);
            }
            _ => {
                // A row read, with its tag.
                pair.both("GET", &row_path, &[], b"", true);
            }
        }
    }
}

/// Whether `id` is the largest canonical integer among `ids`.
fn is_largest_int_id(ids: &[String], id: &str) -> bool {
    let int = |s: &str| s.parse::<u64>().ok().filter(|n| n.to_string() == s);
    match int(id) {
        Some(n) => ids.iter().filter_map(|i| int(i)).all(|m| m <= n),
        None => false,
    }
}

/// Escapes regular expression syntax in `text`.
fn escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A `_like` pattern, often built from a cell of the column.
fn pattern(rng: &mut Rng, sample: &str) -> String {
    let chars: Vec<char> = sample.chars().collect();
    let head: String = chars.iter().take(1 + rng.below(3)).collect();
    let tail: String = chars
        .iter()
        .skip(chars.len().saturating_sub(1 + rng.below(2)))
        .collect();
    match rng.below(14) {
        0 => format!("^{}", escape(&head)),
        1 => format!("{}$", escape(&tail)),
        2 => escape(&head.to_uppercase()),
        3 => escape(&tail.to_lowercase()),
        4 => r"^\d+$".into(),
        5 => r"^\w+$".into(),
        6 => r"\bs".into(),
        7 => "^$".into(),
        8 => "é|o".into(),
        9 => "[a-c]".into(),
        10 => "(?-i)^[A-Z]".into(),
        11 => r"\.".into(),
        12 => "^-?[0-9]*\\.?[0-9]+$".into(),
        _ => ".".into(),
    }
}

/// A value for a filter on `column`: often one of its cells.
fn operand(rng: &mut Rng, cells: &[String]) -> String {
    match rng.below(10) {
        0..=4 if !cells.is_empty() => rng.pick(cells).clone(),
        5 | 6 => rng.pick(NUMBERS).to_string(),
        7 => rng.pick(WORDS).to_string(),
        8 => number(rng),
        _ => String::new(),
    }
}

/// The cells of each column of the table now (from the file store).
fn cells_by_column(pair: &Pair, name: &str) -> Vec<(String, Vec<String>)> {
    let r = pair.files.get(&format!("/{name}.csv"));
    if r.status != 200 {
        return Vec::new();
    }
    let mut reader = csv::ReaderBuilder::new().from_reader(r.body.as_slice());
    let header: Vec<String> = reader
        .headers()
        .map(|h| h.iter().map(String::from).collect())
        .unwrap_or_default();
    let mut columns: Vec<(String, Vec<String>)> =
        header.into_iter().map(|c| (c, Vec::new())).collect();
    for record in reader.records().flatten() {
        for (i, field) in record.iter().enumerate() {
            if let Some((_, cells)) = columns.get_mut(i) {
                cells.push(field.to_string());
            }
        }
    }
    columns
}

/// One random query string for a table with these columns.
fn query(rng: &mut Rng, columns: &[(String, Vec<String>)], big: bool) -> String {
    let mut params: Vec<(String, String)> = Vec::new();
    let pick_column = |rng: &mut Rng| -> (String, Vec<String>) {
        if columns.is_empty() {
            ("id".to_string(), Vec::new())
        } else {
            rng.pick(columns).clone()
        }
    };
    // `_sort` and `_fields` are comma-separated lists: a column with a
    // comma in its name cannot be named there.
    let pick_listable = |rng: &mut Rng| -> (String, Vec<String>) {
        let listable: Vec<&(String, Vec<String>)> =
            columns.iter().filter(|(c, _)| !c.contains(',')).collect();
        if listable.is_empty() {
            ("id".to_string(), Vec::new())
        } else {
            (*rng.pick(&listable)).clone()
        }
    };
    for _ in 0..rng.below(if big { 3 } else { 4 }) {
        let (column, cells) = pick_column(rng);
        let op = *rng.pick(&[
            "",
            "",
            "_ne",
            "_lt",
            "_lte",
            "_gt",
            "_gte",
            "_like",
            "_like",
            // json-server v1's operators.
            ":eq",
            ":ne",
            ":gte",
            "[lt]",
            ":in",
            ":contains",
            ":startsWith",
            ":endsWith",
        ]);
        let repeats = if rng.chance(25) { 2 } else { 1 };
        for _ in 0..repeats {
            let value = if op == ":in" {
                format!("{},{}", operand(rng, &cells), operand(rng, &cells))
            } else if matches!(op, ":contains" | ":startsWith" | ":endsWith") {
                let sample = if cells.is_empty() {
                    rng.pick(WORDS).to_string()
                } else {
                    rng.pick(&cells).clone()
                };
                let chars: Vec<char> = sample.chars().collect();
                let len = rng.below(chars.len() + 1);
                let text: String = match op {
                    ":endsWith" => chars[chars.len() - len..].iter().collect(),
                    _ => chars[..len].iter().collect(),
                };
                if rng.chance(50) {
                    text.to_uppercase()
                } else {
                    text
                }
            } else if op == "_like" {
                let sample = if cells.is_empty() {
                    rng.pick(WORDS).to_string()
                } else {
                    rng.pick(&cells).clone()
                };
                pattern(rng, &sample)
            } else {
                operand(rng, &cells)
            };
            params.push((format!("{column}{op}"), value));
        }
    }
    if rng.chance(30) {
        let (_, cells) = pick_column(rng);
        let sample = if cells.is_empty() || rng.chance(20) {
            rng.pick(WORDS).to_string()
        } else {
            rng.pick(&cells).clone()
        };
        let chars: Vec<char> = sample.chars().collect();
        let start = rng.below(chars.len().max(1));
        let len = 1 + rng.below(4);
        let mut text: String = chars.iter().skip(start).take(len).collect();
        match rng.below(3) {
            0 => text = text.to_uppercase(),
            1 => text = text.to_lowercase(),
            _ => {}
        }
        params.push(("q".into(), text));
    }
    if rng.chance(55) {
        let keys: Vec<String> = (0..1 + rng.below(2))
            .map(|_| {
                let (column, _) = pick_listable(rng);
                if rng.chance(30) {
                    format!("-{column}")
                } else {
                    column
                }
            })
            .collect();
        let count = keys.len();
        params.push(("_sort".into(), keys.join(",")));
        if rng.chance(35) {
            let order: Vec<&str> = (0..1 + rng.below(count))
                .map(|_| *rng.pick(&["asc", "desc", "DESC"]))
                .collect();
            params.push(("_order".into(), order.join(",")));
        }
    }
    let small = |rng: &mut Rng| (rng.below(if big { 40 } else { 12 })).to_string();
    match rng.below(if big { 6 } else { 10 }) {
        0 => {
            params.push(("_page".into(), (1 + rng.below(5)).to_string()));
            params.push(("_limit".into(), (1 + rng.below(8)).to_string()));
        }
        1 => {
            params.push(("_page".into(), (1 + rng.below(3)).to_string()));
            if rng.chance(50) {
                params.push(("_per_page".into(), (1 + rng.below(8)).to_string()));
            }
        }
        2 => {
            params.push(("_start".into(), small(rng)));
            params.push(("_end".into(), small(rng)));
        }
        3 => {
            if rng.chance(50) {
                params.push(("_start".into(), small(rng)));
            }
            params.push(("_limit".into(), small(rng)));
        }
        4 => params.push(("_start".into(), small(rng))),
        5 => params.push(("_end".into(), small(rng))),
        _ => {}
    }
    if rng.chance(20) && !columns.is_empty() {
        let fields: Vec<String> = (0..1 + rng.below(3))
            .map(|_| pick_listable(rng).0)
            .collect();
        params.push(("_fields".into(), fields.join(",")));
    }
    if rng.chance(5) {
        // A mistake: both must refuse it the same way.
        match rng.below(5) {
            0 => params.push(("nocolumn".into(), "x".into())),
            1 => params.push((format!("{}_like", pick_column(rng).0), "(".into())),
            2 => params.push(("_page".into(), "0".into())),
            3 => params.push(("_sort".into(), "nope".into())),
            _ => params.push(("_embed".into(), "x".into())),
        }
    }
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (key, value) in &params {
        serializer.append_pair(key, value);
    }
    serializer.finish()
}

/// Random queries on one table, each sent to both servers.
fn ask(pair: &mut Pair, rng: &mut Rng, name: &str, count: usize, big: bool) {
    let columns = cells_by_column(pair, name);
    for _ in 0..count {
        let q = query(rng, &columns, big);
        let suffix = match rng.below(10) {
            0 => ".csv",
            1 => ".ndjson",
            _ => "",
        };
        let path = if q.is_empty() {
            format!("/{name}{suffix}")
        } else {
            format!("/{name}{suffix}?{q}")
        };
        pair.get(&path);
    }
}

/// The large table: enough rows to be streamed and, on the file store, to
/// get column copies and indexes after repeated equality queries.
fn big_table(pair: &mut Pair, rng: &mut Rng, queries: usize) {
    pair.table = "big".into();
    pair.case = usize::MAX;
    let mut csv = String::from("id,g,v,w\n");
    for i in 1..=12_000 {
        let v = match rng.below(20) {
            0 => String::new(),
            1 => rng.pick(WORDS).to_string(),
            2 => rng.pick(NUMBERS).to_string(),
            _ => rng.int(-1000, 1000).to_string(),
        };
        let w = csv_field(&word(rng));
        csv.push_str(&format!("{i},g{},{},{w}\n", rng.below(10), csv_field(&v)));
    }
    pair.both(
        "PUT",
        "/big",
        &[("Content-Type", "text/csv")],
        csv.as_bytes(),
        false,
    );
    // The same equality filters again and again: the file store answers
    // them from an index once it has one.
    for round in 0..3 {
        for g in [3, 7] {
            let path = format!("/big?g=g{g}&_sort=-v,id&_limit=25&_page={}", round + 1);
            pair.get(&path);
            pair.get(&format!(
                "/big?g=g{g}&g=g{}&v_gte=0&_limit=10",
                (g + round) % 10
            ));
        }
        pair.get(&format!("/big?id={}", 1 + rng.below(12_000)));
    }
    ask(pair, rng, "big", queries, true);
}

#[test]
fn files_and_postgres_answer_alike() {
    let other_kind = match std::env::var("CSVD_DIFF_AGAINST").as_deref() {
        Ok("files") => Other::Files,
        _ => Other::Postgres,
    };
    let other = match other_kind {
        Other::Files => Server::start(),
        Other::Postgres => {
            let Some(pg) = pg::available() else { return };
            Server::start_source(&pg.fresh_database(), &[])
        }
    };
    let seed = match std::env::var("CSVD_DIFF_SEED").as_deref() {
        Ok("random") => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
        _ => env_or("CSVD_DIFF_SEED", 0x5EED_C5D0),
    };
    let cases = env_or("CSVD_DIFF_CASES", 20) as usize;
    let queries = env_or("CSVD_DIFF_QUERIES", 40) as usize;
    let only = std::env::var("CSVD_DIFF_ONLY")
        .ok()
        .and_then(|v| v.parse::<usize>().ok());
    eprintln!(
        "differential: seed {seed} (CSVD_DIFF_SEED), {cases} tables, {queries} queries each, \
         file store vs {other_kind:?}"
    );
    let mut pair = Pair {
        files: Server::start(),
        other,
        other_kind,
        seed,
        table: String::new(),
        case: 0,
        requests: 0,
        rows: 0,
        empty: 0,
        refused: 0,
        verbose: std::env::var_os("CSVD_DIFF_VERBOSE").is_some(),
    };
    for case in 0..cases {
        if only.is_some_and(|only| only != case) {
            continue;
        }
        let mut rng = Rng::new(seed ^ (case as u64).wrapping_mul(0xA076_1D64_78BD_642F));
        let name = match rng.below(6) {
            0 => format!("T{case}-mixed_Case"),
            _ => format!("t{case}"),
        };
        pair.table = name.clone();
        pair.case = case;
        let mut shape = create(&mut pair, &mut rng, &name);
        ask(&mut pair, &mut rng, &name, queries / 2, false);
        write(&mut pair, &mut rng, &name, &mut shape);
        ask(&mut pair, &mut rng, &name, queries - queries / 2, false);
        // Every row, read alone, with its tag.
        for id in pair.ids().into_iter().take(8) {
            let path = format!("/{name}/{}", encode_path(&id));
            pair.both("GET", &path, &[], b"", true);
            pair.both("GET", &format!("{path}.csv"), &[], b"", false);
        }
        if rng.chance(15) {
            pair.both("DELETE", &format!("/{name}"), &[], b"", false);
        }
        pair.get("/");
    }
    if only.is_none() && env_or("CSVD_DIFF_BIG", 1) != 0 {
        let mut rng = Rng::new(seed ^ 0xB16);
        big_table(&mut pair, &mut rng, queries);
        pair.get("/");
    }
    eprintln!(
        "differential: {} requests answered alike; reads: {} with rows, {} with none, {} refused",
        pair.requests, pair.rows, pair.empty, pair.refused
    );
}
