//! The file store and the PostgreSQL backend answer every query alike:
//! random tables (numbers, `007`, `1e3`, booleans, empty cells, mixed-case
//! and non-ASCII text, columns added after the first rows) and random
//! queries (filters of every operator, repeated, `q`, `_like`, sorts on one
//! or two columns, windows, `_fields`), compared status, body and
//! `X-Total-Count`. Seeded: a mismatch prints the seed, table and query.
//!
//! `CSVD_DIFF_CASES` sets the number of tables (default 12),
//! `CSVD_DIFF_SEED` the seed. Skips loudly without PostgreSQL.

mod common;

use common::{env_or, pg, Lcg, Response, Server};

/// Cells the tables are made of: every class the typing rule and the sort
/// tell apart, and text that case folding and byte order tell apart.
const CELLS: &[&str] = &[
    "7",
    "-2.5",
    "007",
    "1e3",
    "true",
    "false",
    "",
    "",
    "0",
    "-0",
    "10",
    "9",
    "1.50",
    "0.5",
    "12345678901234567",
    " 2.5 ",
    "Infinity",
    "abc",
    "Abc",
    "ABC",
    "école",
    "Ecole",
    "Zoë",
    "zoe",
    "Seoul",
    "seoul",
    "a,b",
    "x\"y",
    "n/a",
    "100",
    "-100",
    "3.14159",
];

/// Operands and patterns queries use.
const VALUES: &[&str] = &[
    "7", "007", "10", "0", "", "-1", "2.5", "1e3", "true", "abc", "a", "z", "É", "école", "Seoul",
    "100", "x",
];
const PATTERNS: &[&str] = &["^a", "o", "^[0-9]+$", "é", "E", "\\.", "^$", "s.o"];
const SEARCHES: &[&str] = &["a", "O", "é", "1", "seo", "0", "true", "Zo"];

fn pick<'a>(rng: &mut Lcg, from: &[&'a str]) -> &'a str {
    from[rng.next(from.len() as u64) as usize]
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn csv_cell(cell: &str) -> String {
    format!("\"{}\"", cell.replace('"', "\"\""))
}

/// A random table as a CSV body: an id column and 2 to 4 others.
fn table(rng: &mut Lcg) -> (Vec<String>, String) {
    let width = 2 + rng.next(3) as usize;
    let mut columns = vec!["id".to_string()];
    columns.extend((0..width).map(|c| format!("c{c}")));
    let rows = 10 + rng.next(50) as usize;
    let mut body = columns.join(",") + "\n";
    for i in 1..=rows {
        let mut cells = vec![i.to_string()];
        cells.extend((0..width).map(|_| csv_cell(pick(rng, CELLS))));
        body.push_str(&cells.join(","));
        body.push('\n');
    }
    (columns, body)
}

/// A random query string on these columns.
fn query(rng: &mut Lcg, columns: &[String]) -> String {
    let mut parts = Vec::new();
    for _ in 0..rng.next(3) {
        let column = &columns[rng.next(columns.len() as u64) as usize];
        let op = ["", "_ne", "_lt", "_lte", "_gt", "_gte", "_like"][rng.next(7) as usize];
        let repeat = 1 + rng.next(2);
        for _ in 0..repeat {
            let value = if op == "_like" {
                pick(rng, PATTERNS)
            } else {
                pick(rng, VALUES)
            };
            parts.push(format!("{column}{op}={}", encode(value)));
        }
    }
    if rng.next(4) == 0 {
        parts.push(format!("q={}", encode(pick(rng, SEARCHES))));
    }
    if rng.next(3) != 0 {
        let keys: Vec<String> = (0..1 + rng.next(2))
            .map(|_| {
                let column = &columns[rng.next(columns.len() as u64) as usize];
                if rng.next(3) == 0 {
                    format!("-{column}")
                } else {
                    column.clone()
                }
            })
            .collect();
        parts.push(format!("_sort={}", keys.join(",")));
        if rng.next(3) == 0 {
            parts.push("_order=desc".to_string());
        }
    }
    match rng.next(5) {
        0 => parts.push(format!(
            "_page={}&_limit={}",
            1 + rng.next(3),
            1 + rng.next(8)
        )),
        1 => parts.push(format!("_start={}&_end={}", rng.next(5), 3 + rng.next(20))),
        2 => parts.push(format!("_limit={}", rng.next(6))),
        _ => {}
    }
    if rng.next(5) == 0 {
        let a = &columns[rng.next(columns.len() as u64) as usize];
        parts.push(format!("_fields={a},id"));
    }
    parts.join("&")
}

fn summary(answer: &Response) -> (u16, Option<String>, String) {
    (
        answer.status,
        answer.header("x-total-count").map(str::to_string),
        answer.text(),
    )
}

#[test]
fn the_file_store_and_postgresql_answer_alike() {
    let Some(pg) = pg::available() else { return };
    let files = Server::start();
    let db = Server::start_source(&pg.fresh_database(), &[]);
    let seed = env_or("CSVD_DIFF_SEED", 20261201);
    let cases = env_or("CSVD_DIFF_CASES", 12);
    let mut rng = Lcg(seed);
    let mut compared = 0;
    // Answers with rows: the comparison must not be of errors only.
    let mut found = 0;
    for t in 0..cases {
        let name = format!("t{t}");
        let (mut columns, body) = table(&mut rng);
        for server in [&files, &db] {
            let put = server.request(
                "PUT",
                &format!("/{name}"),
                &[("Content-Type", "text/csv")],
                body.as_bytes(),
            );
            assert_eq!(put.status, 201, "{}", put.text());
        }
        // A column added after the first rows: those rows are short.
        if rng.next(2) == 0 {
            let row = serde_json::json!({ "late": pick(&mut rng, CELLS) }).to_string();
            for server in [&files, &db] {
                let made = server.post_json(&format!("/{name}"), &row);
                assert_eq!(made.status, 201, "{}", made.text());
            }
            columns.push("late".to_string());
        }
        for _ in 0..40 {
            let q = query(&mut rng, &columns);
            let path = format!("/{name}?{q}");
            let (a, b) = (files.get(&path), db.get(&path));
            assert_eq!(
                summary(&a),
                summary(&b),
                "the backends disagree (seed {seed}, table {name}, GET {path}); table:\n{body}"
            );
            compared += 1;
            if a.status == 200 && a.header("x-total-count").is_some_and(|n| n != "0") {
                found += 1;
            }
        }
        let (a, b) = (
            files.get(&format!("/{name}.csv")),
            db.get(&format!("/{name}.csv")),
        );
        assert_eq!(a.text(), b.text(), "seed {seed}, table {name}");
    }
    assert!(
        found * 2 > compared,
        "only {found} of {compared} queries found rows"
    );
    eprintln!(
        "{compared} queries answered alike by both backends, {found} with rows (seed {seed})"
    );
}
