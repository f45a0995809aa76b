//! One suite of API tests that every storage backend must pass: each case
//! runs once on the file store (`files::CASE`) and once on PostgreSQL
//! (`postgres::CASE`), through the real `csvd serve` over real sockets.
//!
//! The cases only speak HTTP, so they hold every backend to the same
//! answers: routes and methods, statuses, representations, queries, entity
//! tags and preconditions, ids, columns, ordering and errors. Without a
//! PostgreSQL server the `postgres::` half says so loudly and skips (it
//! fails instead with `CSVD_REQUIRE_POSTGRES=1` or `CI=true`).

mod common;

use std::sync::{Arc, Barrier};

use common::{pg, Response, Server};
use serde_json::{json, Value};

/// A kind of store for `csvd serve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// A fresh temporary data directory.
    Files,
    /// A fresh database on the tests' PostgreSQL.
    Postgres,
}

impl Backend {
    /// A server on a fresh, empty store of this kind; `None` when this
    /// backend cannot be tested here (said loudly by `pg::available`).
    fn start(self) -> Option<Server> {
        self.start_with(&[])
    }

    fn start_with(self, flags: &[&str]) -> Option<Server> {
        match self {
            Backend::Files => Some(Server::start_with(flags)),
            Backend::Postgres => {
                let pg = pg::available()?;
                Some(Server::start_source(&pg.fresh_database(), flags))
            }
        }
    }
}

/// Turns each `fn case(backend: Backend)` into `files::case` and
/// `postgres::case`.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod files {
            $(#[test]
            fn $case() {
                super::$case(super::Backend::Files)
            })*
        }
        mod postgres {
            $(#[test]
            fn $case() {
                super::$case(super::Backend::Postgres)
            })*
        }
    };
}

conformance!(
    // Tables and rows
    root_lists_tables_by_name_with_rows_and_columns,
    post_creates_the_table_and_answers_the_row,
    ids_are_the_largest_integer_plus_one,
    next_id_follows_the_largest_id,
    next_id_beyond_signed_64_bits,
    no_integer_id_left_is_a_clear_refusal,
    given_ids_are_kept_and_a_taken_id_is_409,
    ids_are_text_leading_zeros_kept,
    invalid_ids_are_400,
    bulk_posts_are_all_or_nothing,
    put_row_creates_then_replaces,
    patch_changes_only_the_given_fields,
    delete_rows_and_tables,
    put_table_replaces_from_csv,
    put_table_replaces_from_json,
    columns_grow_at_the_end,
    rows_keep_their_place,
    typing_rule_and_exact_round_trips,
    cells_hold_any_character,
    hostile_and_long_column_names,
    table_names_are_exact,
    id_column_flag,
    bodies_by_content_type,
    bad_bodies_say_what_is_wrong,
    prefer_return_minimal,
    length_required_and_too_large,
    // Routes, methods, representations
    representations_by_accept_and_suffix,
    not_acceptable_is_406,
    head_is_get_without_a_body,
    options_and_methods_not_allowed,
    problem_documents,
    unknown_routes_and_names,
    large_tables_stream_completely,
    // Queries
    equality_filters,
    not_equal_filters,
    comparison_filters,
    comparisons_of_words_and_empty_cells,
    like_filters_are_regular_expressions,
    full_text_search,
    sorting_numbers_and_text,
    sorting_mixed_columns,
    sorting_by_two_columns,
    pages_with_total_and_links,
    slices_with_total_and_links,
    fields_pick_columns,
    filtered_answers_in_every_representation,
    query_mistakes_are_precise_400s,
    head_of_a_query,
    answers_follow_writes,
    a_column_named_like_an_operator,
    // json-server v1's forms and relations
    v1_operator_filters,
    v1_text_operators,
    v1_page_envelopes,
    relations_across_tables,
    paths_into_json_cells,
    v1_where_filters,
    // Entity tags and preconditions
    row_etags_and_if_none_match,
    table_etags_and_if_none_match,
    if_match_on_rows_prevents_lost_updates,
    if_match_on_tables,
    if_none_match_star_creates_only,
    failed_preconditions_say_what_happened,
    last_modified_and_if_modified_since,
    // Concurrency and restarts
    concurrent_creates_get_distinct_ids,
    concurrent_conditional_writes_have_one_winner,
    a_restart_keeps_rows_columns_order_and_row_tags,
);

// ---------------------------------------------------------------- helpers

const PEOPLE: &str = "\
id,name,age,city,zip,note
1,Kim,30,Seoul,007,likes tea
2,lee,25,Paris,12345,
3,park,41,Seoul,99999,Tea and cake
4,choi,,Lima,00501,n/a
5,jung,30,Oslo,10001,0
6,kang,9,Paris,7,
7,Émile,2.5,Zürich,-1,École d'été
8,zoë,n/a,São Paulo,1e3,false
";

fn put_csv(s: &Server, path: &str, csv: &str) -> Response {
    let r = s.request("PUT", path, &[("Content-Type", "text/csv")], csv.as_bytes());
    assert!(
        r.status == 201 || r.status == 200,
        "PUT {path}: {} {}",
        r.status,
        r.text()
    );
    r
}

/// A server holding the table `people` (PEOPLE).
fn people(b: Backend) -> Option<Server> {
    let s = b.start()?;
    put_csv(&s, "/people", PEOPLE);
    Some(s)
}

/// The numeric ids of a 200 JSON array answer, in order.
fn ids(r: &Response) -> Vec<i64> {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {}", r.text()))
        .iter()
        .map(|row| row["id"].as_i64().expect("numeric id"))
        .collect()
}

fn get_ids(s: &Server, path: &str) -> Vec<i64> {
    ids(&s.get(path))
}

/// The detail of a problem document with this status.
fn problem(r: &Response, status: u16) -> String {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let doc = r.json();
    assert_eq!(doc["status"], json!(status));
    doc["detail"].as_str().unwrap_or_default().to_string()
}

fn kind(r: &Response) -> String {
    r.json()["type"].as_str().unwrap_or_default().to_string()
}

fn etag(r: &Response) -> String {
    r.header("etag")
        .unwrap_or_else(|| panic!("no ETag: {:?}", r.headers))
        .to_string()
}

fn send(s: &Server, method: &str, path: &str, headers: &[(&str, &str)], json: &str) -> Response {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    s.request(method, path, &all, json.as_bytes())
}

fn delete(s: &Server, path: &str, headers: &[(&str, &str)]) -> Response {
    s.request("DELETE", path, headers, b"")
}

fn table_entry(s: &Server, name: &str) -> Value {
    let list = s.get("/").json();
    list.as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == json!(name))
        .cloned()
        .unwrap_or_else(|| panic!("no table {name} in {list}"))
}

// ------------------------------------------- json-server v1 and relations

fn v1_operator_filters(b: Backend) {
    let Some(s) = people(b) else { return };
    assert_eq!(get_ids(&s, "/people?age:gte=30&age:ne=n%2Fa"), [1, 3, 5]);
    assert_eq!(get_ids(&s, "/people?age[gt]=25&age[lt]=41"), [1, 5]);
    assert_eq!(get_ids(&s, "/people?zip:lt=1"), [1, 4, 7]);
    assert_eq!(get_ids(&s, "/people?city:eq=Seoul"), [1, 3]);
    assert_eq!(
        get_ids(&s, "/people?city:ne=Paris&city:ne=Seoul"),
        [2, 4, 5, 6, 7, 8]
    );
    assert_eq!(get_ids(&s, "/people?city:in=Seoul,Lima"), [1, 3, 4]);
    assert_eq!(get_ids(&s, "/people?zip:in=007,7"), [1, 6]);
    assert_eq!(get_ids(&s, "/people?note_eq=&age:lt=26"), [2, 6]);
    // Last value counts; different forms must all hold.
    assert_eq!(get_ids(&s, "/people?id:gt=1&id:gt=6"), [7, 8]);
    assert_eq!(
        get_ids(&s, "/people?city=Seoul&city:ne=Seoul"),
        Vec::<i64>::new()
    );
    assert_eq!(get_ids(&s, "/people?_sort=-age&city=Seoul"), [3, 1]);
    assert_eq!(
        get_ids(&s, "/people?_sort=city,-id&city:in=Paris,Seoul"),
        [6, 2, 3, 1]
    );
    assert!(problem(&s.get("/people?age:big=1"), 400).contains("unknown operator"));
}

fn v1_text_operators(b: Backend) {
    let Some(s) = people(b) else { return };
    // Case is ignored (Unicode too); cells typed as numbers or booleans
    // are not text and never match.
    assert_eq!(get_ids(&s, "/people?note:contains=TEA"), [1, 3]);
    assert_eq!(get_ids(&s, "/people?name:contains=%C3%89"), [7]);
    assert_eq!(get_ids(&s, "/people?city:startsWith=s"), [1, 3, 8]);
    assert_eq!(get_ids(&s, "/people?city:endsWith=RICH"), [7]);
    assert_eq!(get_ids(&s, "/people?zip:endsWith=7"), [1]);
    assert_eq!(get_ids(&s, "/people?note:contains=0"), Vec::<i64>::new());
    assert_eq!(get_ids(&s, "/people?note:contains=als"), Vec::<i64>::new());
    assert_eq!(get_ids(&s, "/people?note_contains=a&age:gt=29"), [1, 3]);
    // With pushed-down filters, a sort and a window around them.
    let r = s.get("/people?city:startsWith=s&age:ne=n%2Fa&_sort=-id&_page=1&_limit=1");
    assert_eq!(ids(&r), [3]);
    assert_eq!(r.header("x-total-count"), Some("2"));
}

fn v1_page_envelopes(b: Backend) {
    let Some(s) = people(b) else { return };
    let v = s.get("/people?_page=2&_per_page=3&_sort=-id").json();
    assert_eq!(
        (
            &v["first"],
            &v["prev"],
            &v["next"],
            &v["last"],
            &v["pages"],
            &v["items"]
        ),
        (
            &json!(1),
            &json!(1),
            &json!(3),
            &json!(3),
            &json!(3),
            &json!(8)
        )
    );
    let data: Vec<i64> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(data, [5, 4, 3]);
    let v = s.get("/people?_page=7&_per_page=3&city:contains=o").json();
    assert_eq!(
        (&v["items"], &v["pages"], &v["next"]),
        (&json!(4), &json!(2), &json!(null))
    );
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
}

fn relations_across_tables(b: Backend) {
    let Some(s) = b.start() else { return };
    put_csv(&s, "/posts", "id,title\n1,hello\n2,again\n");
    put_csv(
        &s,
        "/comments",
        "id,body,postId\n1,nice,1\n2,meh,1\n3,wow,2\n",
    );
    let v = s.get("/posts?_embed=comments&_sort=-id").json();
    assert_eq!(v[0]["comments"][0]["body"], json!("wow"));
    assert_eq!(v[1]["comments"].as_array().unwrap().len(), 2);
    let v = s.get("/comments/2?_expand=post").json();
    assert_eq!(v["post"], json!({"id": 1, "title": "hello"}));
    assert_eq!(get_ids(&s, "/posts/1/comments?_sort=-id"), [2, 1]);
    let r = send(&s, "POST", "/posts/2/comments", &[], r#"{"body":"more"}"#);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(get_ids(&s, "/posts/2/comments"), [3, 4]);
}

/// `_where` as a query parameter, percent-encoded.
fn where_query(json: &str) -> String {
    let encoded: String = json
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("/people?_where={encoded}")
}

fn v1_where_filters(b: Backend) {
    let Some(s) = people(b) else { return };
    let w = |json: &str| get_ids(&s, &where_query(json));
    assert_eq!(w(r#"{"age":{"gte":30,"lt":41}}"#), [1, 5]);
    assert_eq!(
        w(r#"{"city":{"in":["Seoul","Lima"]},"id":{"ne":3}}"#),
        [1, 4]
    );
    // "n/a" > "40" as text, by the comparison rule.
    assert_eq!(
        w(r#"{"or":[{"city":{"eq":"Oslo"}},{"age":{"gt":40}}]}"#),
        [3, 5, 8]
    );
    assert_eq!(
        w(r#"{"or":[{"city":{"eq":"Paris"}},{"name":{"startsWith":"K"}}],"id":{"lt":6}}"#),
        [1, 2]
    );
    assert_eq!(w(r#"{"or":[]}"#), Vec::<i64>::new());
    assert_eq!(w(r#"{"zip":{"eq":"007"}}"#), [1]);
    assert_eq!(w(r#"{"age":{"eq":30}}"#), [1, 5]);
    // With the other parameters: all must hold.
    assert_eq!(
        get_ids(
            &s,
            &format!(
                "{}&_sort=-id&city=Seoul",
                where_query(r#"{"or":[{"id":{"eq":1}},{"id":{"eq":3}},{"id":{"eq":5}}]}"#)
            )
        ),
        [3, 1]
    );
    for (bad, said) in [
        (r#"{"age":30}"#, "_where: age: give operators"),
        ("[1]", "_where: expected a JSON object"),
        ("{nope", "_where: expected a JSON object"),
        (r#"{"nope":{"eq":1}}"#, "no column \"nope\" (in _where)"),
        (r#"{"id":{"gt":[1]}}"#, "_where: id: gt takes one value"),
    ] {
        let detail = problem(&s.get(&where_query(bad)), 400);
        assert!(detail.starts_with(said), "{bad}: {detail}");
    }
}

fn paths_into_json_cells(b: Backend) {
    let Some(s) = b.start() else { return };
    let r = send(
        &s,
        "POST",
        "/books",
        &[],
        r#"[{"id":1,"author":{"name":"kim","age":30},"tags":["a","b"]},
            {"id":2,"author":{"name":"Lee","age":9},"tags":["b"]},
            {"id":3,"author":"nobody","tags":[]},
            {"id":4,"author":{"name":"park","age":41,"home":{"city":"Seoul"}},"tags":["c"]}]"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(get_ids(&s, "/books?author.name=kim"), [1]);
    assert_eq!(get_ids(&s, "/books?author.age_gte=10"), [1, 4]);
    assert_eq!(get_ids(&s, "/books?author.age:lt=30"), [2]);
    assert_eq!(get_ids(&s, "/books?author.name:startsWith=L"), [2]);
    assert_eq!(get_ids(&s, "/books?author.home.city=Seoul"), [4]);
    assert_eq!(get_ids(&s, "/books?tags.0=b"), [2]);
    assert_eq!(get_ids(&s, "/books?author.name_ne=kim"), [2, 4]);
    assert_eq!(get_ids(&s, "/books?_sort=author.name"), [3, 2, 1, 4]);
    assert_eq!(get_ids(&s, "/books?_sort=-author.age&id:ne=3"), [4, 1, 2]);
    assert_eq!(
        get_ids(
            &s,
            "/books?_sort=author.age&author.age:gt=0&_page=1&_limit=2"
        ),
        [2, 1]
    );
    assert!(problem(&s.get("/books?writer.name=kim"), 400).starts_with("no column \"writer.name\""));
}

// ------------------------------------------------------- tables and rows

fn root_lists_tables_by_name_with_rows_and_columns(b: Backend) {
    let Some(s) = b.start() else { return };
    assert_eq!(s.get("/").text(), "[]\n");
    s.post_json("/people", r#"{"name":"kim","zip":"007"}"#);
    s.post_json("/people", r#"{"name":"lee"}"#);
    s.post_json("/cities", r#"{"name":"Seoul"}"#);
    s.post_json("/Zeta", r#"{"a":"1"}"#);
    let r = s.get("/");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let list = r.json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    // By name, in code point order: upper case first.
    assert_eq!(names, ["Zeta", "cities", "people"]);
    assert_eq!(list[2]["rows"], json!(2));
    assert_eq!(list[2]["columns"], json!(["id", "name", "zip"]));
    assert_eq!(list[1]["rows"], json!(1));
    assert!(list[2]["modified"].is_string(), "{list}");
    // One table a line.
    let lines: Vec<String> = r.text().lines().map(String::from).collect();
    assert_eq!(lines.len(), 5, "{}", r.text());
    assert!(lines[3].starts_with("{\"name\":\"people\",\"rows\":2,"));
    let csv = s.get_with("/", &[("Accept", "text/csv")]);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(
        csv.text().starts_with("name,rows,columns"),
        "{}",
        csv.text()
    );
    assert!(csv.text().contains("\r\npeople,2,"), "{}", csv.text());
}

fn post_creates_the_table_and_answers_the_row(b: Backend) {
    let Some(s) = b.start() else { return };
    assert_eq!(s.get("/people").status, 404);
    let r = s.post_json("/people", r#"{"name":"kim","age":30}"#);
    assert_eq!(r.status, 201);
    assert_eq!(r.header("location"), Some("/people/1"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json(), json!({"id": 1, "name": "kim", "age": 30}));
    let tag = etag(&r);
    let one = s.get("/people/1");
    assert_eq!(one.json(), json!({"id": 1, "name": "kim", "age": 30}));
    assert_eq!(etag(&one), tag, "the write's tag is the row's");
    let r = s.post_json("/people", r#"{"name":"lee"}"#);
    assert_eq!(r.header("location"), Some("/people/2"));
    assert_eq!(r.json(), json!({"id": 2, "name": "lee", "age": ""}));
    assert_eq!(
        s.get("/people").text(),
        "[\n{\"id\":1,\"name\":\"kim\",\"age\":30},\n{\"id\":2,\"name\":\"lee\",\"age\":\"\"}\n]\n"
    );
    assert_eq!(s.get("/people").header("x-total-count"), Some("2"));
}

fn ids_are_the_largest_integer_plus_one(b: Backend) {
    let Some(s) = b.start() else { return };
    s.post_json("/t", r#"{"id": 10, "a": "x"}"#);
    s.post_json("/t", r#"{"id": "abc", "a": "y"}"#);
    s.post_json("/t", r#"{"id": "0099", "a": "z"}"#);
    s.post_json("/t", r#"{"id": "-50", "a": "n"}"#);
    s.post_json("/t", r#"{"id": 3, "a": "small"}"#);
    let r = s.post_json("/t", r#"{"a": "w"}"#);
    assert_eq!(r.json()["id"], json!(11));
    assert_eq!(r.header("location"), Some("/t/11"));
    let batch = s.post_json("/t", r#"[{"a":"p"},{"a":"q"},{"a":"r"}]"#);
    let got: Vec<Value> = batch
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["id"].clone())
        .collect();
    assert_eq!(got, [json!(12), json!(13), json!(14)], "consecutive ids");
    // Ids that are not canonical integers never count.
    let Some(u) = b.start() else { return };
    u.send_json("PUT", "/u/007", r#"{"a":"x"}"#);
    u.send_json("PUT", "/u/1e3", r#"{"a":"x"}"#);
    u.send_json("PUT", "/u/-5", r#"{"a":"x"}"#);
    u.send_json("PUT", "/u/2.5", r#"{"a":"x"}"#);
    assert_eq!(u.post_json("/u", r#"{"a":"y"}"#).json()["id"], json!(1));
}

fn next_id_follows_the_largest_id(b: Backend) {
    let Some(s) = b.start() else { return };
    s.post_json("/t", r#"[{"a":"1"},{"a":"2"},{"a":"3"}]"#);
    assert_eq!(delete(&s, "/t/2", &[]).status, 204);
    assert_eq!(s.post_json("/t", r#"{"a":"4"}"#).json()["id"], json!(4));
    // The file store counts the ids of the rows there are, so deleting
    // the largest frees it; PostgreSQL counts every id it ever gave, and
    // never gives one twice (documented in the README).
    assert_eq!(delete(&s, "/t/4", &[]).status, 204);
    let again = match b {
        Backend::Files => 4,
        Backend::Postgres => 5,
    };
    assert_eq!(
        s.post_json("/t", r#"{"a":"again"}"#).json()["id"],
        json!(again)
    );
    // A table deleted and created again starts at 1.
    assert_eq!(delete(&s, "/t", &[]).status, 204);
    assert_eq!(s.post_json("/t", r#"{"a":"new"}"#).json()["id"], json!(1));
    // A replaced table counts from its new rows.
    put_csv(&s, "/t", "id,a\n40,x\n7,y\n");
    assert_eq!(s.post_json("/t", r#"{"a":"z"}"#).json()["id"], json!(41));
}

fn no_integer_id_left_is_a_clear_refusal(b: Backend) {
    let Some(s) = b.start() else { return };
    let r = s.send_json("PUT", "/t/18446744073709551615", r#"{"a":"x"}"#);
    assert_eq!(r.status, 201);
    let r = s.post_json("/t", r#"{"a":"y"}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("no integer id is left"), "{}", r.text());
    // Rows with ids of their own still go in.
    let r = s.post_json("/t", r#"{"id":"k","a":"z"}"#);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(s.get("/t").json().as_array().unwrap().len(), 2);
}

fn next_id_beyond_signed_64_bits(b: Backend) {
    let Some(s) = b.start() else { return };
    let r = s.send_json("PUT", "/t/9223372036854775807", r#"{"a":"x"}"#);
    assert_eq!(r.status, 201);
    // Beyond 2^53 an id is a string in JSON (it would not survive a double).
    assert_eq!(r.json()["id"], json!("9223372036854775807"));
    let r = s.post_json("/t", r#"{"a":"y"}"#);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["id"], json!("9223372036854775808"));
    let r = s.send_json("PUT", "/t/12345678901234567890", r#"{"a":"z"}"#);
    assert_eq!(r.status, 201);
    assert_eq!(
        s.post_json("/t", r#"{"a":"w"}"#).json()["id"],
        json!("12345678901234567891")
    );
    assert_eq!(
        s.get("/t/12345678901234567891").json(),
        json!({"id": "12345678901234567891", "a": "w"})
    );
}

fn given_ids_are_kept_and_a_taken_id_is_409(b: Backend) {
    let Some(s) = b.start() else { return };
    let r = s.post_json("/t", r#"{"id": "abc", "a": "y"}"#);
    assert_eq!(r.status, 201);
    assert_eq!(r.header("location"), Some("/t/abc"));
    let taken = s.post_json("/t", r#"{"id": "abc", "a": "other"}"#);
    assert_eq!(problem(&taken, 409), "id \"abc\" is already taken");
    assert_eq!(kind(&taken), "urn:csvd:problem:id-taken");
    assert_eq!(s.get("/t/abc").json()["a"], json!("y"), "not overwritten");
    // A number given as id is its text.
    assert_eq!(s.post_json("/t", r#"{"id": 5}"#).status, 201);
    assert_eq!(
        problem(&s.post_json("/t", r#"{"id": "5"}"#), 409),
        "id \"5\" is already taken"
    );
    // An id in a URL with characters to encode.
    let r = s.send_json("PUT", "/t/a%20b%C3%A9", r#"{"a":"spaced"}"#);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(s.get("/t/a%20b%C3%A9").json()["id"], json!("a bé"));
    assert_eq!(s.get("/t").json().as_array().unwrap().len(), 3);
}

fn ids_are_text_leading_zeros_kept(b: Backend) {
    let Some(s) = b.start() else { return };
    let r = s.post_json("/t", r#"{"id": "007", "a": "bond"}"#);
    assert_eq!(r.header("location"), Some("/t/007"));
    assert_eq!(r.json()["id"], json!("007"));
    assert_eq!(s.get("/t/7").status, 404, "007 is not 7");
    let seven = s.post_json("/t", r#"{"id": "7", "a": "seven"}"#);
    assert_eq!(seven.status, 201, "7 is not taken by 007");
    assert_eq!(s.get("/t/007").json(), json!({"id": "007", "a": "bond"}));
    assert_eq!(s.get("/t/7").json(), json!({"id": 7, "a": "seven"}));
    assert_eq!(
        s.get("/t?id=007").json(),
        json!([{"id": "007", "a": "bond"}])
    );
    assert_eq!(s.get("/t.csv").text(), "id,a\r\n007,bond\r\n7,seven\r\n");
    assert_eq!(delete(&s, "/t/007", &[]).status, 204);
    assert_eq!(s.get("/t/7").status, 200);
}

fn invalid_ids_are_400(b: Backend) {
    let Some(s) = b.start() else { return };
    let r = s.post_json("/t", r#"{"id": "a\u0001b", "x": "y"}"#);
    problem(&r, 400);
    assert_eq!(kind(&r), "urn:csvd:problem:invalid-id");
    let long = "x".repeat(257);
    let r = s.post_json("/t", &format!(r#"{{"id": "{long}"}}"#));
    assert!(problem(&r, 400).contains("257 bytes"), "{}", r.text());
    let r = s.send_json("PUT", "/t/1", r#"{"id":"2","a":"z"}"#);
    assert_eq!(
        problem(&r, 400),
        "the body's id \"2\" does not match the URL's id \"1\""
    );
    assert_eq!(kind(&r), "urn:csvd:problem:id-mismatch");
    let r = s.send_json("PATCH", "/t/1", r#"{"id":"2"}"#);
    assert!(matches!(r.status, 400 | 404), "{}", r.text());
    assert_eq!(s.get("/t").status, 404, "nothing was created");
}

fn bulk_posts_are_all_or_nothing(b: Backend) {
    let Some(s) = b.start() else { return };
    let r = s.post_json("/t", r#"[{"a":"1"},{"a":"2","b":"x"}]"#);
    assert_eq!(r.status, 201);
    assert_eq!(r.header("location"), Some("/t"));
    assert_eq!(
        r.json(),
        json!([{"id": 1, "a": 1, "b": ""}, {"id": 2, "a": 2, "b": "x"}])
    );
    let r = s.request(
        "POST",
        "/t",
        &[("Content-Type", "text/csv")],
        b"a,c\n3,y\n4,\"q,\"\"uoted\"\"\"\n",
    );
    assert_eq!(r.status, 201);
    assert_eq!(
        r.json()[1],
        json!({"id": 4, "a": 4, "b": "", "c": "q,\"uoted\""})
    );
    let r = s.request(
        "POST",
        "/t",
        &[("Content-Type", "application/x-ndjson")],
        b"{\"a\":\"5\"}\n{\"id\":\"n6\",\"a\":\"6\"}\n",
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.json()[1]["id"], json!("n6"));
    // A taken id, or one repeated in the batch: nothing of it is written.
    for body in [
        r#"[{"a":"new"},{"id":1,"a":"dup"}]"#,
        r#"[{"id":"x","a":"1"},{"id":"x","a":"2"}]"#,
        r#"[{"a":"new","fresh":"col"},{"id":"n6"}]"#,
    ] {
        let r = s.post_json("/t", body);
        assert_eq!(r.status, 409, "{body}: {}", r.text());
        assert_eq!(kind(&r), "urn:csvd:problem:id-taken");
    }
    let rows = s.get("/t").json();
    assert_eq!(rows.as_array().unwrap().len(), 6, "{rows}");
    assert_eq!(
        s.get("/t").json()[0].as_object().unwrap().len(),
        4,
        "no column of a refused batch"
    );
    assert_eq!(s.post_json("/t", r#"{"a":"next"}"#).json()["id"], json!(6));
}

fn put_row_creates_then_replaces(b: Backend) {
    let Some(s) = b.start() else { return };
    let r = s.send_json("PUT", "/t/k1", r#"{"a":"x","b":"y"}"#);
    assert_eq!(r.status, 201);
    assert_eq!(r.header("location"), Some("/t/k1"));
    assert_eq!(r.json(), json!({"id": "k1", "a": "x", "b": "y"}));
    let r = s.send_json("PUT", "/t/k1", r#"{"a":"z"}"#);
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"id": "k1", "a": "z", "b": ""}));
    let r = s.send_json("PUT", "/t/k1", r#"{"id":"k1","b":"w","c":"new"}"#);
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"id": "k1", "a": "", "b": "w", "c": "new"}));
    assert_eq!(s.get("/t/k1").json(), r.json());
    assert_eq!(s.get("/t").json().as_array().unwrap().len(), 1);
}

fn patch_changes_only_the_given_fields(b: Backend) {
    let Some(s) = b.start() else { return };
    s.post_json("/t", r#"{"a":"x","b":"y"}"#);
    let r = s.send_json("PATCH", "/t/1", r#"{"b":"z","c":true}"#);
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"id": 1, "a": "x", "b": "z", "c": true}));
    let r = s.send_json("PATCH", "/t/1", r#"{"a":null}"#);
    assert_eq!(r.json(), json!({"id": 1, "a": "", "b": "z", "c": true}));
    assert_eq!(s.get("/t/1").json(), r.json());
    let r = s.send_json("PATCH", "/t/9", r#"{"b":"z"}"#);
    assert_eq!(problem(&r, 404), "there is no row with id \"9\"");
    assert_eq!(kind(&r), "urn:csvd:problem:no-row");
    let r = s.send_json("PATCH", "/none/1", r#"{"b":"z"}"#);
    assert_eq!(problem(&r, 404), "there is no table \"none\"");
    assert_eq!(kind(&r), "urn:csvd:problem:no-table");
    assert_eq!(s.get("/none").status, 404, "a PATCH creates no table");
}

fn delete_rows_and_tables(b: Backend) {
    let Some(mut s) = b.start() else { return };
    s.post_json("/t", r#"[{"a":"x"},{"a":"y"}]"#);
    s.post_json("/other", r#"{"a":"keep"}"#);
    let r = delete(&s, "/t/1", &[]);
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    assert_eq!(s.get("/t/1").status, 404);
    assert_eq!(
        problem(&delete(&s, "/t/1", &[]), 404),
        "there is no row with id \"1\""
    );
    assert_eq!(s.get("/t").json(), json!([{"id": 2, "a": "y"}]));
    assert_eq!(delete(&s, "/t", &[]).status, 204);
    assert_eq!(s.get("/t").status, 404);
    assert_eq!(s.get("/t/2").status, 404);
    assert_eq!(
        problem(&delete(&s, "/t", &[]), 404),
        "there is no table \"t\""
    );
    assert_eq!(
        problem(&delete(&s, "/t/2", &[]), 404),
        "there is no table \"t\""
    );
    assert_eq!(s.get("/").json().as_array().unwrap().len(), 1);
    s.restart();
    assert_eq!(s.get("/t").status, 404, "a deleted table stays deleted");
    assert_eq!(s.get("/other/1").json()["a"], json!("keep"));
}

fn put_table_replaces_from_csv(b: Backend) {
    let Some(s) = b.start() else { return };
    let r = put_csv(&s, "/t", "name,zip\nkim,02134\nlee,\n");
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["name"], json!("t"));
    assert_eq!(r.json()["rows"], json!(2));
    assert_eq!(r.json()["columns"], json!(["id", "name", "zip"]));
    assert_eq!(
        s.get("/t").json(),
        json!([{"id": 1, "name": "kim", "zip": "02134"}, {"id": 2, "name": "lee", "zip": ""}])
    );
    // Replaced whole: old rows and columns go; the body's order and ids stay.
    let r = put_csv(&s, "/t", "id,x\nb,2\na,1\n10,3\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["columns"], json!(["id", "x"]));
    assert_eq!(s.get("/t.csv").text(), "id,x\r\nb,2\r\na,1\r\n10,3\r\n");
    assert_eq!(s.get("/t/1").status, 404);
    // A refused replace leaves the table as it was.
    let bad = put_csv_status(&s, "/t", "id,x\n1,a\n1,b\n");
    assert_eq!(bad.status, 409);
    let bad = put_csv_status(&s, "/t", "id,x\n1,a,extra\n");
    assert!(problem(&bad, 400).contains("line 2"), "{}", bad.text());
    assert_eq!(s.get("/t.csv").text(), "id,x\r\nb,2\r\na,1\r\n10,3\r\n");
    // A header alone is a table with no rows.
    let r = put_csv(&s, "/empty", "id,a,b\n");
    assert_eq!(r.json()["rows"], json!(0));
    assert_eq!(s.get("/empty").json(), json!([]));
    assert_eq!(s.get("/empty.csv").text(), "id,a,b\r\n");
}

fn put_csv_status(s: &Server, path: &str, csv: &str) -> Response {
    s.request("PUT", path, &[("Content-Type", "text/csv")], csv.as_bytes())
}

fn put_table_replaces_from_json(b: Backend) {
    let Some(s) = b.start() else { return };
    s.post_json("/t", r#"{"old":"row"}"#);
    let r = s.send_json("PUT", "/t", r#"[{"x":"1"},{"id":"k","y":true}]"#);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["rows"], json!(2));
    assert_eq!(
        s.get("/t").json(),
        json!([{"id": 1, "x": 1, "y": ""}, {"id": "k", "x": "", "y": true}])
    );
    let r = s.send_json("PUT", "/t", "[]");
    assert!(r.status == 200 || r.status == 400, "{}", r.text());
    if r.status == 200 {
        assert_eq!(s.get("/t").json(), json!([]));
    }
}

fn columns_grow_at_the_end(b: Backend) {
    let Some(s) = b.start() else { return };
    s.post_json("/t", r#"{"a":"1"}"#);
    s.post_json("/t", r#"{"b":"2"}"#);
    assert_eq!(table_entry(&s, "t")["columns"], json!(["id", "a", "b"]));
    assert_eq!(s.get("/t/1").json(), json!({"id": 1, "a": 1, "b": ""}));
    s.send_json("PATCH", "/t/1", r#"{"c":"x"}"#);
    s.send_json("PUT", "/t/2", r#"{"d":"y"}"#);
    s.post_json("/t", r#"[{"f":"1","e":"2"}]"#);
    assert_eq!(
        table_entry(&s, "t")["columns"],
        json!(["id", "a", "b", "c", "d", "f", "e"])
    );
    assert_eq!(
        s.get("/t.csv").text(),
        "id,a,b,c,d,f,e\r\n1,1,,x,,,\r\n2,,,,y,,\r\n3,,,,,1,2\r\n"
    );
    // Field order is the header's, whatever the body's order.
    let r = s.post_json("/t", r#"{"e":"E","a":"A","id":"z"}"#);
    assert_eq!(
        r.text().trim_end(),
        r#"{"id":"z","a":"A","b":"","c":"","d":"","f":"","e":"E"}"#
    );
    // A new column can be queried at once.
    assert_eq!(get_ids(&s, "/t?d=y"), [2]);
}

fn rows_keep_their_place(b: Backend) {
    let Some(s) = b.start() else { return };
    put_csv(&s, "/t", "id,a\n5,x\n3,y\n9,z\n1,w\n");
    s.send_json("PUT", "/t/3", r#"{"a":"Y"}"#);
    s.send_json("PATCH", "/t/5", r#"{"a":"X"}"#);
    s.post_json("/t", r#"{"id":"2","a":"v"}"#);
    assert_eq!(delete(&s, "/t/9", &[]).status, 204);
    s.send_json("PUT", "/t/9", r#"{"a":"back"}"#);
    assert_eq!(
        s.get("/t.csv").text(),
        "id,a\r\n5,X\r\n3,Y\r\n1,w\r\n2,v\r\n9,back\r\n"
    );
    assert_eq!(get_ids(&s, "/t?_start=1&_end=3"), [3, 1]);
}

fn typing_rule_and_exact_round_trips(b: Backend) {
    let Some(mut s) = b.start() else { return };
    let body = json!({
        "n": 30, "neg": -2.5, "zip": "007", "exp": "1e5", "t": true, "f": "false",
        "big": 12345678901234567890u64, "bigtext": "12345678901234567890",
        "float": 0.1, "sci": 1e21, "trail": "2.50", "plus": "+1", "negzero": "-0",
        "comma": "a,b", "quote": "say \"hi\"", "nl": "two\nlines", "cr": "a\r\nb",
        "lonecr": "a\rb", "tab": "a\tb", "uni": "한국어 ünï 🎉 Zoë école", "empty": "",
        "null": null, "sp": "  padded  ", "backslash": "C:\\dir\\", "nested": {"k": [1, 2]},
        "arr": [1, "a"], "sql": "'; DROP TABLE t; --", "percent": "100%_x"
    });
    let r = s.post_json("/t", &body.to_string());
    assert_eq!(r.status, 201, "{}", r.text());
    let got = s.get("/t/1").json();
    assert_eq!(got["n"], json!(30));
    assert_eq!(got["neg"], json!(-2.5));
    assert_eq!(got["zip"], json!("007"));
    assert_eq!(got["exp"], json!("1e5"));
    assert_eq!(got["t"], json!(true));
    assert_eq!(got["f"], json!(false));
    assert_eq!(got["big"], json!("12345678901234567890"));
    assert_eq!(got["float"], json!(0.1));
    // Stored in its shortest form without exponent; too large to be exact.
    assert_eq!(got["sci"], json!("1000000000000000000000"));
    assert_eq!(got["null"], json!(""));
    // Written as JSON: recorded as JSON columns and rendered back as JSON.
    assert_eq!(got["nested"], json!({"k": [1, 2]}));
    assert_eq!(got["arr"], json!([1, "a"]));
    for key in [
        "bigtext",
        "trail",
        "plus",
        "negzero",
        "comma",
        "quote",
        "nl",
        "cr",
        "lonecr",
        "tab",
        "uni",
        "empty",
        "sp",
        "backslash",
        "sql",
        "percent",
    ] {
        assert_eq!(got[key], body[key], "{key}");
    }
    let csv = s.get("/t.csv?_fields=comma,quote,nl,sp,empty").text();
    assert_eq!(
        csv,
        "comma,quote,nl,sp,empty\r\n\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",  padded  ,\r\n"
    );
    // The same cells after a restart.
    s.restart();
    assert_eq!(s.get("/t/1").json(), got);
    // Exact search on text that SQL would read as patterns.
    assert_eq!(get_ids(&s, "/t?percent=100%25_x"), [1]);
    assert_eq!(get_ids(&s, "/t?percent=100%25%25x"), Vec::<i64>::new());
    assert_eq!(get_ids(&s, "/t?q=%25_x"), [1]);
    assert_eq!(get_ids(&s, "/t?q=0%25x"), Vec::<i64>::new());
}

fn cells_hold_any_character(b: Backend) {
    let Some(mut s) = b.start() else { return };
    // A NUL and other control characters, a byte-order mark, the highest
    // code point (a surrogate pair in JSON): cells are text up to the byte.
    let body = r#"{"nul":"x\u0000y","bell":"\u0007","esc":"\u001b[0m","del":"\u007f","bom":"\ufeffhead","max":"\udbff\udfff"}"#;
    let r = s.post_json("/t", body);
    assert_eq!(r.status, 201, "{}", r.text());
    let want = json!({
        "id": 1, "nul": "x\u{0}y", "bell": "\u{7}", "esc": "\u{1b}[0m", "del": "\u{7f}",
        "bom": "\u{feff}head", "max": "\u{10ffff}"
    });
    assert_eq!(s.get("/t/1").json(), want);
    assert_eq!(get_ids(&s, "/t?nul=x%00y"), [1]);
    assert_eq!(get_ids(&s, "/t?q=%00"), [1]);
    s.restart();
    assert_eq!(s.get("/t/1").json(), want);
    let csv = s.get("/t.csv?_fields=nul,bom").text();
    assert_eq!(csv, "nul,bom\r\nx\u{0}y,\u{feff}head\r\n");
}

fn hostile_and_long_column_names(b: Backend) {
    let Some(s) = b.start() else { return };
    let long_a = format!("{}a", "c".repeat(70));
    let long_b = format!("{}b", "c".repeat(70));
    let mut row = serde_json::Map::new();
    for (name, value) in [
        ("first name", "kim"),
        ("\"quoted\"", "q"),
        ("a,b", "c"),
        ("\"; DROP TABLE t; --", "x"),
        ("é", "e"),
        ("Name", "upper"),
        ("name", "lower"),
        ("select", "kw"),
        (long_a.as_str(), "A"),
        (long_b.as_str(), "B"),
    ] {
        row.insert(name.to_string(), json!(value));
    }
    let r = s.post_json("/t", &Value::Object(row).to_string());
    assert_eq!(r.status, 201, "{}", r.text());
    let columns = table_entry(&s, "t")["columns"].clone();
    assert_eq!(
        columns,
        json!([
            "id",
            "first name",
            "\"quoted\"",
            "a,b",
            "\"; DROP TABLE t; --",
            "é",
            "Name",
            "name",
            "select",
            long_a,
            long_b
        ])
    );
    let got = s.get("/t/1").json();
    assert_eq!(got["Name"], json!("upper"));
    assert_eq!(got["name"], json!("lower"));
    assert_eq!(got[&long_a], json!("A"));
    assert_eq!(got[&long_b], json!("B"));
    let header = s
        .get("/t.csv?_fields=first%20name,%22quoted%22,Name,name")
        .text();
    assert_eq!(
        header,
        "first name,\"\"\"quoted\"\"\",Name,name\r\nkim,q,upper,lower\r\n"
    );
    assert!(s
        .get("/t.csv")
        .text()
        .starts_with("id,first name,\"\"\"quoted\"\"\",\"a,b\","));
    s.post_json("/t", r#"{"Name":"other","name":"upper"}"#);
    assert_eq!(get_ids(&s, "/t?Name=upper"), [1]);
    assert_eq!(get_ids(&s, "/t?name=upper"), [2]);
    assert_eq!(get_ids(&s, "/t?first%20name=kim"), [1]);
    assert_eq!(get_ids(&s, "/t?%22%3B%20DROP%20TABLE%20t%3B%20--=x"), [1]);
    assert_eq!(get_ids(&s, &format!("/t?{long_b}=B")), [1]);
    assert_eq!(get_ids(&s, &format!("/t?{long_a}_ne=A")), [2]);
    assert_eq!(get_ids(&s, "/t?_sort=Name"), [2, 1]);
    assert_eq!(s.get("/t").status, 200, "the table is still there");
}

fn table_names_are_exact(b: Backend) {
    let Some(s) = b.start() else { return };
    let long_a = format!("{}a", "t".repeat(63));
    let long_b = format!("{}b", "t".repeat(63));
    for (i, name) in [
        "people", "People", "my-table", "x_1", "9lives", &long_a, &long_b,
    ]
    .iter()
    .enumerate()
    {
        let r = s.post_json(&format!("/{name}"), &format!(r#"{{"n":"{i}"}}"#));
        assert_eq!(r.status, 201, "{name}: {}", r.text());
    }
    let list = s.get("/").json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["9lives", "People", "my-table", "people", &long_a, &long_b, "x_1"]
    );
    assert_eq!(s.get("/People/1").json()["n"], json!(1));
    assert_eq!(s.get("/people/1").json()["n"], json!(0));
    assert_eq!(s.get(&format!("/{long_b}/1")).json()["n"], json!(6));
    let too_long = format!("/{}", "t".repeat(65));
    let r = s.post_json(&too_long, r#"{"n":"x"}"#);
    assert!(
        problem(&r, 400).contains("not a valid table name"),
        "{}",
        r.text()
    );
    assert_eq!(delete(&s, "/People", &[]).status, 204);
    assert_eq!(s.get("/people/1").status, 200);
}

fn id_column_flag(b: Backend) {
    let Some(s) = b.start_with(&["--id-column", "key"]) else {
        return;
    };
    let r = s.post_json("/t", r#"{"name":"a","id":"plain"}"#);
    assert_eq!(r.status, 201);
    assert_eq!(r.header("location"), Some("/t/1"));
    assert_eq!(r.json(), json!({"key": 1, "name": "a", "id": "plain"}));
    s.send_json("PUT", "/t/k9", r#"{"name":"b"}"#);
    assert_eq!(s.get("/t/k9").json()["key"], json!("k9"));
    assert_eq!(s.post_json("/t", r#"{"key":"k9"}"#).status, 409);
    assert_eq!(s.post_json("/t", r#"{"id":"k9"}"#).status, 201);
    assert_eq!(s.get("/t/plain").status, 404);
    assert_eq!(
        table_entry(&s, "t")["columns"],
        json!(["key", "name", "id"])
    );
}

fn bodies_by_content_type(b: Backend) {
    let Some(s) = b.start() else { return };
    let form = s.request(
        "POST",
        "/t",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"name=kim+lee&city=%EC%84%9C%EC%9A%B8",
    );
    assert_eq!(form.status, 201);
    assert_eq!(form.json()["city"], json!("서울"));
    assert_eq!(form.json()["name"], json!("kim lee"));
    let kv = s.request(
        "POST",
        "/t",
        &[("Content-Type", "text/plain")],
        b"name: park\ncity=Busan\n",
    );
    assert_eq!(kv.status, 201);
    assert_eq!(kv.json()["name"], json!("park"));
    assert_eq!(kv.json()["city"], json!("Busan"));
    assert_eq!(s.request("POST", "/t", &[], b"name:choi").status, 201);
    let curl = s.request(
        "POST",
        "/t",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        br#"{"name":"jung"}"#,
    );
    assert_eq!(curl.json()["name"], json!("jung"));
    let vendor = s.request(
        "POST",
        "/t",
        &[("Content-Type", "application/vnd.x+json")],
        br#"{"name":"kang"}"#,
    );
    assert_eq!(vendor.status, 201);
    assert_eq!(get_ids(&s, "/t"), [1, 2, 3, 4, 5]);
}

fn bad_bodies_say_what_is_wrong(b: Backend) {
    let Some(s) = b.start() else { return };
    let cases: &[(&str, &[u8], u16, &str)] = &[
        ("application/json", b"{\"a\": 1,,}", 400, "line 1"),
        ("application/json", b"[1, 2]", 400, "element 1"),
        ("application/json", b"\"text\"", 400, "object"),
        ("text/csv", b"a,b\n1,2,3\n", 400, "line 2: 3 fields"),
        ("text/plain", b"name:kim\njunk", 400, "line 2"),
        ("application/json", b"", 400, "empty"),
        ("application/json", b"{\"\": 1}", 400, "empty"),
        ("application/xml", b"<a/>", 415, "application/xml"),
        (
            "multipart/form-data; boundary=x",
            b"--x--",
            415,
            "multipart",
        ),
        ("application/json", b"{\"a\":\"\xff\"}", 400, "UTF-8"),
        ("text/csv; charset=klingon", b"a\n1\n", 415, "klingon"),
    ];
    for (content_type, body, status, needle) in cases {
        let r = s.request("POST", "/t", &[("Content-Type", content_type)], body);
        let detail = problem(&r, *status);
        assert!(
            detail.contains(needle),
            "{content_type} {:?}: {detail:?} should mention {needle:?}",
            String::from_utf8_lossy(body)
        );
    }
    assert_eq!(s.get("/t").status, 404, "no failed write created the table");
    assert_eq!(s.get("/").json(), json!([]));
}

fn prefer_return_minimal(b: Backend) {
    let Some(s) = b.start() else { return };
    let minimal = [("Content-Type", "text/csv"), ("Prefer", "return=minimal")];
    let r = s.request("POST", "/t", &minimal, b"a\n1\n2\n3\n");
    assert_eq!(r.status, 201);
    assert!(r.body.is_empty());
    assert_eq!(r.header("preference-applied"), Some("return=minimal"));
    assert_eq!(r.header("location"), Some("/t"));
    let json = [
        ("Content-Type", "application/json"),
        ("Prefer", "return=minimal"),
    ];
    let r = s.request("PATCH", "/t/1", &json, br#"{"a":"x"}"#);
    assert_eq!(r.status, 204);
    assert_eq!(etag(&r), etag(&s.get("/t/1")));
    let r = s.request("POST", "/t", &json, br#"{"a":"y"}"#);
    assert_eq!(r.status, 201);
    assert_eq!(r.header("location"), Some("/t/4"));
    assert!(r.body.is_empty());
    assert_eq!(get_ids(&s, "/t"), [1, 2, 3, 4]);
    assert_eq!(s.get("/t/1").json()["a"], json!("x"));
}

fn length_required_and_too_large(b: Backend) {
    let Some(s) = b.start_with(&["--max-body", "100"]) else {
        return;
    };
    let raw = s.raw(
        b"POST /t HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(Response::parse(&raw, false).status, 411);
    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(200));
    problem(&s.post_json("/t", &big), 413);
    assert_eq!(s.get("/t").status, 404);
    assert_eq!(s.post_json("/t", r#"{"a":"small"}"#).status, 201);
}

// ------------------------------------------- routes and representations

fn representations_by_accept_and_suffix(b: Backend) {
    let Some(s) = b.start() else { return };
    s.post_json("/people", r#"{"name":"kim","zip":"007"}"#);
    s.post_json("/people", r#"{"name":"lee","zip":"12345"}"#);
    let json_text =
        "[\n{\"id\":1,\"name\":\"kim\",\"zip\":\"007\"},\n{\"id\":2,\"name\":\"lee\",\"zip\":12345}\n]\n";
    let plain = s.get("/people");
    assert_eq!(plain.text(), json_text);
    assert_eq!(plain.header("content-type"), Some("application/json"));
    assert_eq!(plain.header("vary"), Some("Accept"));
    assert_eq!(s.get("/people.json").text(), json_text);
    assert_eq!(
        s.get_with("/people", &[("Accept", "application/json")])
            .text(),
        json_text
    );
    let csv = s.get_with("/people", &[("Accept", "text/csv")]);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(csv.text(), "id,name,zip\r\n1,kim,007\r\n2,lee,12345\r\n");
    assert_eq!(s.get("/people.csv").text(), csv.text());
    let nd = s.get_with("/people", &[("Accept", "application/x-ndjson")]);
    assert!(nd
        .header("content-type")
        .unwrap()
        .starts_with("application/x-ndjson"));
    assert_eq!(
        nd.text(),
        "{\"id\":1,\"name\":\"kim\",\"zip\":\"007\"}\n{\"id\":2,\"name\":\"lee\",\"zip\":12345}\n"
    );
    assert_eq!(s.get("/people.ndjson").text(), nd.text());
    let html = s.get_with(
        "/people",
        &[("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")],
    );
    assert!(html
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(html.text().contains("<td>kim</td>"));
    assert!(s.get("/people.html").text().contains("<td>lee</td>"));
    // Weighted preferences: CSV over JSON here.
    let weighted = s.get_with("/people", &[("Accept", "application/json;q=0.5, text/csv")]);
    assert_eq!(weighted.text(), csv.text());
    // A row in each representation.
    assert_eq!(
        s.get("/people/1").text().trim_end(),
        "{\"id\":1,\"name\":\"kim\",\"zip\":\"007\"}"
    );
    assert_eq!(s.get("/people/1.json").json(), s.get("/people/1").json());
    let one = s.get_with("/people/1", &[("Accept", "text/csv")]);
    assert_eq!(one.text(), "id,name,zip\r\n1,kim,007\r\n");
    assert_eq!(s.get("/people/1.csv").text(), one.text());
    // Each representation has its own tag.
    assert_ne!(etag(&s.get("/people/1.csv")), etag(&s.get("/people/1")));
    assert_ne!(etag(&s.get("/people.csv")), etag(&s.get("/people")));
}

fn not_acceptable_is_406(b: Backend) {
    let Some(s) = people(b) else { return };
    let r = s.get_with("/people", &[("Accept", "application/xml")]);
    assert!(problem(&r, 406).contains("text/csv"), "{}", r.text());
    assert_eq!(s.get("/people.xml").status, 406);
    assert_eq!(
        s.get_with("/people/1", &[("Accept", "image/png")]).status,
        406
    );
    assert_eq!(
        s.get_with("/", &[("Accept", "application/xml")]).status,
        406
    );
}

fn head_is_get_without_a_body(b: Backend) {
    let Some(s) = people(b) else { return };
    for path in [
        "/",
        "/people",
        "/people/1",
        "/people.csv",
        "/people?city=Seoul",
    ] {
        let get = s.get(path);
        let head = s.request("HEAD", path, &[], b"");
        assert_eq!(head.status, 200, "{path}");
        assert!(head.body.is_empty());
        for name in ["etag", "content-type", "content-length", "x-total-count"] {
            assert_eq!(head.header(name), get.header(name), "{path} {name}");
        }
    }
    assert_eq!(s.request("HEAD", "/people/99", &[], b"").status, 404);
    assert_eq!(s.request("HEAD", "/nope", &[], b"").status, 404);
}

fn options_and_methods_not_allowed(b: Backend) {
    let Some(s) = people(b) else { return };
    for (path, allow) in [
        ("/", "GET, HEAD, OPTIONS"),
        ("/people", "GET, HEAD, POST, PUT, DELETE, OPTIONS"),
        ("/people/1", "GET, HEAD, PUT, PATCH, DELETE, OPTIONS"),
        ("/absent", "GET, HEAD, POST, PUT, DELETE, OPTIONS"),
    ] {
        let r = s.request("OPTIONS", path, &[], b"");
        assert_eq!(r.status, 204, "{path}");
        assert_eq!(r.header("allow"), Some(allow), "{path}");
    }
    let r = s.post_json("/", "{}");
    assert_eq!(
        problem(&r, 405),
        "POST is not allowed here; allowed: GET, HEAD, OPTIONS"
    );
    assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
    let r = s.send_json("PATCH", "/people", "{}");
    problem(&r, 405);
    assert_eq!(
        r.header("allow"),
        Some("GET, HEAD, POST, PUT, DELETE, OPTIONS")
    );
    let r = s.post_json("/people/1", "{}");
    problem(&r, 405);
    assert_eq!(
        r.header("allow"),
        Some("GET, HEAD, PUT, PATCH, DELETE, OPTIONS")
    );
    assert_eq!(s.request("TRACE", "/people", &[], b"").status, 405);
    assert_eq!(s.request("BREW", "/people", &[], b"").status, 501);
    assert_eq!(get_ids(&s, "/people").len(), 8, "nothing changed");
}

fn problem_documents(b: Backend) {
    let Some(s) = people(b) else { return };
    let r = s.get("/people/42");
    let doc = r.json();
    assert_eq!(r.status, 404);
    assert_eq!(doc["title"], json!("Not Found"));
    assert_eq!(doc["type"], json!("urn:csvd:problem:no-row"));
    assert_eq!(doc["detail"], json!("there is no row with id \"42\""));
    let r = s.get("/nobody");
    assert_eq!(problem(&r, 404), "there is no table \"nobody\"");
    assert_eq!(kind(&r), "urn:csvd:problem:no-table");
    let page = s.get_with("/people/42", &[("Accept", "text/html")]);
    assert_eq!(page.status, 404);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(page.text().contains("42"));
}

fn unknown_routes_and_names(b: Backend) {
    let Some(s) = people(b) else { return };
    assert_eq!(s.get("/a/b/c").status, 404);
    for path in ["/_x", "/a%20b", "/%2e%2e", "/..%2Fetc", "/-lead"] {
        let r = s.post_json(path, r#"{"a":1}"#);
        assert!(
            matches!(r.status, 400 | 404 | 405),
            "{path}: {} {}",
            r.status,
            r.text()
        );
        let r = s.send_json("PUT", &format!("{path}/1"), r#"{"a":1}"#);
        assert!(matches!(r.status, 400 | 404), "PUT {path}/1: {}", r.status);
    }
    let r = s.post_json("/a%20b", r#"{"a":1}"#);
    assert_eq!(kind(&r), "urn:csvd:problem:invalid-table-name");
    assert_eq!(s.get("/").json().as_array().unwrap().len(), 1);
    assert_eq!(s.get("/people/").json(), s.get("/people").json());
    assert_eq!(s.get("/_health").json(), json!({"status": "ok"}));
}

fn large_tables_stream_completely(b: Backend) {
    let Some(s) = b.start() else { return };
    let mut csv = String::from("id,v,g\n");
    for i in 1..=3000 {
        csv.push_str(&format!("{i},value {i},g{}\n", i % 7));
    }
    put_csv(&s, "/big", &csv);
    let r = s.get("/big");
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.header("x-total-count"), Some("3000"));
    let rows = r.json();
    assert_eq!(rows.as_array().unwrap().len(), 3000);
    assert_eq!(
        rows[2999],
        json!({"id": 3000, "v": "value 3000", "g": "g4"})
    );
    let text = s.get("/big.csv").text();
    assert_eq!(text.lines().count(), 3001);
    assert!(text.ends_with("3000,value 3000,g4\r\n"));
    assert_eq!(s.get("/big.ndjson").text().lines().count(), 3000);
    let g3 = s.get("/big?g=g3&_sort=-id&_fields=id");
    assert_eq!(g3.header("x-total-count"), Some("429"));
    assert_eq!(g3.json()[0], json!({"id": 2999}));
    assert_eq!(get_ids(&s, "/big?_sort=-v&_limit=3"), [999, 998, 997]);
}

// ---------------------------------------------------------------- queries

fn equality_filters(b: Backend) {
    let Some(s) = people(b) else { return };
    assert_eq!(get_ids(&s, "/people?city=Seoul"), [1, 3]);
    assert_eq!(get_ids(&s, "/people?city=Seoul&city=Lima"), [1, 3, 4]);
    assert_eq!(get_ids(&s, "/people?city=Seoul&age=30"), [1]);
    // Exact text: no case folding, no number reading, no trimming.
    assert_eq!(get_ids(&s, "/people?name=kim"), Vec::<i64>::new());
    assert_eq!(get_ids(&s, "/people?name=%C3%A9mile"), Vec::<i64>::new());
    assert_eq!(get_ids(&s, "/people?name=%C3%89mile"), [7]);
    assert_eq!(get_ids(&s, "/people?zip=7"), [6]);
    assert_eq!(get_ids(&s, "/people?zip=007"), [1]);
    assert_eq!(get_ids(&s, "/people?zip=1000"), Vec::<i64>::new());
    assert_eq!(get_ids(&s, "/people?age=30.0"), Vec::<i64>::new());
    assert_eq!(get_ids(&s, "/people?city=+Seoul"), Vec::<i64>::new());
    assert_eq!(get_ids(&s, "/people?age="), [4]);
    assert_eq!(get_ids(&s, "/people?note="), [2, 6]);
    assert_eq!(get_ids(&s, "/people?id=3"), [3]);
    assert_eq!(get_ids(&s, "/people?city=S%C3%A3o+Paulo"), [8]);
    assert_eq!(get_ids(&s, "/people?note=false"), [8]);
}

fn not_equal_filters(b: Backend) {
    let Some(s) = people(b) else { return };
    assert_eq!(get_ids(&s, "/people?city_ne=Paris"), [1, 3, 4, 5, 7, 8]);
    assert_eq!(
        get_ids(&s, "/people?city_ne=Paris&city_ne=Seoul"),
        [4, 5, 7, 8]
    );
    assert_eq!(get_ids(&s, "/people?note_ne="), [1, 3, 4, 5, 7, 8]);
    assert_eq!(get_ids(&s, "/people?age_ne=30&city=Seoul"), [3]);
    assert_eq!(get_ids(&s, "/people?name_ne=KIM"), [1, 2, 3, 4, 5, 6, 7, 8]);
}

fn comparison_filters(b: Backend) {
    let Some(s) = people(b) else { return };
    // Numeric where the cell is a number by the typing rule.
    assert_eq!(get_ids(&s, "/people?age_gte=30&age_ne=n%2Fa"), [1, 3, 5]);
    assert_eq!(get_ids(&s, "/people?age_gt=25&age_lt=41"), [1, 5]);
    // 9 < 25 as numbers (as text "9" > "25"); 2.5 too.
    assert_eq!(get_ids(&s, "/people?age_lte=25&age_ne="), [2, 6, 7]);
    assert_eq!(get_ids(&s, "/people?age_lt=1e1&age_ne="), [6, 7]);
    assert_eq!(get_ids(&s, "/people?age_gt=2.49&age_lt=2.51"), [7]);
    // `007` and `00501` are text: compared as text; -1 is a number.
    assert_eq!(get_ids(&s, "/people?zip_lt=1"), [1, 4, 7]);
    // Text against text, by code point.
    assert_eq!(get_ids(&s, "/people?name_gte=l"), [2, 3, 7, 8]);
    assert_eq!(get_ids(&s, "/people?name_lt=Z"), [1]);
    assert_eq!(get_ids(&s, "/people?city_gt=Seoul"), [7, 8]);
    // Repeated: any of them holds.
    assert_eq!(get_ids(&s, "/people?age_lt=5&age_lt=10&age_ne="), [6, 7]);
    assert_eq!(get_ids(&s, "/people?id_gte=7&id_lte=2"), Vec::<i64>::new());
    assert_eq!(get_ids(&s, "/people?id_gt=6"), [7, 8]);
    assert_eq!(get_ids(&s, "/people?id_lt=10"), [1, 2, 3, 4, 5, 6, 7, 8]);
}

fn comparisons_of_words_and_empty_cells(b: Backend) {
    let Some(s) = people(b) else { return };
    // A cell that is not a number compares as text even with a numeric
    // operand: "n/a" >= "30" ('n' after '3'), "" < "30".
    assert_eq!(get_ids(&s, "/people?age_gte=30"), [1, 3, 5, 8]);
    assert_eq!(get_ids(&s, "/people?age_lte=25"), [2, 4, 6, 7]);
    assert_eq!(get_ids(&s, "/people?age_lt=1e1"), [4, 6, 7]);
    // "1e3" is text: "1e3" >= "10000" ('e' after '0').
    assert_eq!(get_ids(&s, "/people?zip_gte=10000"), [2, 3, 5, 8]);
    // A word operand: text against every cell.
    assert_eq!(get_ids(&s, "/people?age_lt=abc"), [1, 2, 3, 4, 5, 6, 7]);
    put_csv(
        &s,
        "/f",
        "id,flag,n\n1,true,5\n2,,-5\n3,false,\n4,1,2\n5,0,x\n",
    );
    // Booleans are 1 and 0 against numbers; an empty operand is 0.
    assert_eq!(get_ids(&s, "/f?flag_gte=1"), [1, 4]);
    assert_eq!(get_ids(&s, "/f?flag_lt=1"), [2, 3, 5]);
    assert_eq!(get_ids(&s, "/f?n_gte="), [1, 3, 4, 5]);
    assert_eq!(get_ids(&s, "/f?n_lt=0"), [2, 3]);
    assert_eq!(get_ids(&s, "/f?n_gt=007"), [5]);
}

fn like_filters_are_regular_expressions(b: Backend) {
    let Some(s) = people(b) else { return };
    assert_eq!(get_ids(&s, "/people?note_like=tea"), [1, 3]);
    assert_eq!(get_ids(&s, "/people?name_like=%5Ek"), [1, 6]);
    assert_eq!(get_ids(&s, "/people?name_like=^k&name_like=ee$"), [1, 2, 6]);
    assert_eq!(get_ids(&s, "/people?zip_like=^0"), [1, 4]);
    // Case is ignored beyond ASCII too.
    assert_eq!(get_ids(&s, "/people?name_like=%5E%C3%A9"), [7]);
    assert_eq!(get_ids(&s, "/people?city_like=Z%C3%9CR"), [7]);
    assert_eq!(get_ids(&s, "/people?note_like=%C3%A9t%C3%A9%24"), [7]);
    // Rust's syntax: \b is a word boundary, \w any letter, \d a digit.
    assert_eq!(get_ids(&s, "/people?city_like=%5Cbpaulo"), [8]);
    assert_eq!(get_ids(&s, "/people?note_like=%5E%5Cw%2B%24"), [5, 8]);
    assert_eq!(
        get_ids(&s, "/people?name_like=%5E%5Cw%2B%24"),
        [1, 2, 3, 4, 5, 6, 7, 8]
    );
    assert_eq!(
        get_ids(&s, "/people?zip_like=%5E%5Cd%7B5%7D%24"),
        [2, 3, 4, 5]
    );
    assert_eq!(get_ids(&s, "/people?city_like=o%7Cu"), [1, 3, 5, 8]);
    assert_eq!(get_ids(&s, "/people?note_like=a.d"), [3]);
    assert_eq!(get_ids(&s, "/people?note_like="), [1, 2, 3, 4, 5, 6, 7, 8]);
    let bad = problem(&s.get("/people?name_like=(kim"), 400);
    assert!(
        bad.starts_with("name_like: \"(kim\" is not a valid regular expression"),
        "{bad}"
    );
    assert!(bad.contains("unclosed group"), "{bad}");
    let huge = problem(&s.get("/people?name_like=a%7B1000%7D%7B1000%7D"), 400);
    assert!(huge.contains("size limit"), "{huge}");
}

fn full_text_search(b: Backend) {
    let Some(s) = people(b) else { return };
    assert_eq!(get_ids(&s, "/people?q=TEA"), [1, 3]);
    assert_eq!(get_ids(&s, "/people?q=seoul"), [1, 3]);
    // Plain text, not a pattern.
    assert_eq!(get_ids(&s, "/people?q=a.d"), Vec::<i64>::new());
    assert_eq!(get_ids(&s, "/people?q=n%2Fa"), [4, 8]);
    assert_eq!(get_ids(&s, "/people?q=30&city=Oslo"), [5]);
    // Case folding beyond ASCII.
    assert_eq!(get_ids(&s, "/people?q=%C3%89COLE"), [7]);
    assert_eq!(get_ids(&s, "/people?q=%C3%A9cole"), [7]);
    assert_eq!(get_ids(&s, "/people?q=ZO%C3%8B"), [8]);
    assert_eq!(get_ids(&s, "/people?q=S%C3%83O"), [8]);
    assert_eq!(get_ids(&s, "/people?q=ecole"), Vec::<i64>::new());
    // Cells that are 0, false or empty never match, as in json-server.
    assert_eq!(get_ids(&s, "/people?q=0"), [1, 4, 5]);
    assert_eq!(get_ids(&s, "/people?q=false"), Vec::<i64>::new());
    assert_eq!(get_ids(&s, "/people?q="), [1, 2, 3, 4, 5, 6, 7, 8]);
    // The id is a cell like any other; the first q counts.
    assert_eq!(get_ids(&s, "/people?q=8"), [8]);
    assert_eq!(get_ids(&s, "/people?q=lima&q=paris"), [4]);
    put_csv(
        &s,
        "/flags",
        "id,a\n1,0\n2,10\n3,false\n4,falsey\n5,FALSE\n",
    );
    assert_eq!(get_ids(&s, "/flags?q=0"), [2]);
    assert_eq!(get_ids(&s, "/flags?q=FALSE"), [4, 5]);
}

fn sorting_numbers_and_text(b: Backend) {
    let Some(s) = people(b) else { return };
    // A column with numbers sorts numerically, the empty cell as 0, text
    // that is not a number after the numbers.
    assert_eq!(get_ids(&s, "/people?_sort=age"), [4, 7, 6, 2, 1, 5, 3, 8]);
    assert_eq!(
        get_ids(&s, "/people?_sort=age&_order=desc"),
        [8, 3, 1, 5, 2, 6, 7, 4]
    );
    assert_eq!(get_ids(&s, "/people?_sort=-age"), [8, 3, 1, 5, 2, 6, 7, 4]);
    assert_eq!(
        get_ids(&s, "/people?_sort=-age&_order=desc"),
        [8, 3, 1, 5, 2, 6, 7, 4]
    );
    // Text by code point: upper case first, accented letters last.
    assert_eq!(get_ids(&s, "/people?_sort=name"), [1, 4, 5, 6, 2, 3, 8, 7]);
    assert_eq!(get_ids(&s, "/people?_sort=-name"), [7, 8, 3, 2, 6, 5, 4, 1]);
    assert_eq!(get_ids(&s, "/people?_sort=city"), [4, 5, 2, 6, 1, 3, 8, 7]);
    assert_eq!(
        get_ids(&s, "/people?_sort=id&_order=DESC"),
        [8, 7, 6, 5, 4, 3, 2, 1]
    );
    // Sorting with filters and windows.
    assert_eq!(get_ids(&s, "/people?city=Paris&_sort=-age&_limit=1"), [2]);
    assert_eq!(get_ids(&s, "/people?_sort=age&_start=2&_end=5"), [6, 2, 1]);
}

fn sorting_mixed_columns(b: Backend) {
    let Some(s) = people(b) else { return };
    // Numbers among text that reads as a number (007, 00501, 1e3): all by
    // value; ties (007 and 7) keep table order in both directions.
    assert_eq!(get_ids(&s, "/people?_sort=zip"), [7, 1, 6, 4, 8, 5, 2, 3]);
    assert_eq!(get_ids(&s, "/people?_sort=-zip"), [3, 2, 5, 8, 4, 1, 6, 7]);
    // Whether a column is numeric depends on the rows that matched: 007
    // and 00501 alone are text.
    assert_eq!(get_ids(&s, "/people?zip_like=%5E0&_sort=zip"), [4, 1]);
    assert_eq!(
        get_ids(&s, "/people?zip_like=%5E0%7C%5E7&_sort=zip"),
        [1, 6, 4]
    );
    // `0` and `false` make the notes numeric: they and the empty notes
    // sort as 0, in table order, before the text.
    assert_eq!(get_ids(&s, "/people?_sort=note"), [2, 5, 6, 8, 3, 1, 4, 7]);
    assert_eq!(get_ids(&s, "/people?_sort=-note"), [7, 4, 1, 3, 2, 5, 6, 8]);
    assert_eq!(
        get_ids(&s, "/people?_sort=note&note_ne=0&note_ne=false"),
        [2, 6, 3, 1, 4, 7]
    );
    put_csv(
        &s,
        "/m",
        "id,v\n1,10\n2,9\n3,abc\n4,\n5,-1\n6,true\n7,ABC\n8, 5\n9,Infinity\n10,0.5\n",
    );
    assert_eq!(get_ids(&s, "/m?_sort=v"), [5, 4, 10, 6, 8, 2, 1, 9, 7, 3]);
    assert_eq!(get_ids(&s, "/m?_sort=-v"), [3, 7, 9, 1, 2, 8, 6, 10, 4, 5]);
    // Without a number among the matched rows: text (numbers first, as in
    // the whole column, would be 7, 9, 8).
    assert_eq!(get_ids(&s, "/m?_sort=-v&id_gte=7&id_lte=9"), [9, 7, 8]);
    put_csv(&s, "/flags", "id,flag\n1,true\n2,\n3,false\n4,1\n5,0\n");
    assert_eq!(get_ids(&s, "/flags?_sort=flag"), [2, 3, 5, 1, 4]);
}

fn sorting_by_two_columns(b: Backend) {
    let Some(s) = people(b) else { return };
    assert_eq!(
        get_ids(&s, "/people?_sort=city,-age"),
        [4, 5, 2, 6, 3, 1, 8, 7]
    );
    assert_eq!(
        get_ids(&s, "/people?_sort=city,age&_order=desc,desc"),
        [7, 8, 3, 1, 2, 6, 5, 4]
    );
    assert_eq!(
        get_ids(&s, "/people?_sort=city,age&_order=asc,desc"),
        [4, 5, 2, 6, 3, 1, 8, 7]
    );
    assert_eq!(
        get_ids(&s, "/people?_sort=age,-name"),
        [4, 7, 6, 2, 5, 1, 3, 8]
    );
    assert_eq!(
        get_ids(&s, "/people?_sort=age,name"),
        [4, 7, 6, 2, 1, 5, 3, 8]
    );
    // `_order` may name fewer directions than columns (the rest ascend).
    assert_eq!(
        get_ids(&s, "/people?_sort=age,name&_order=desc"),
        [8, 3, 1, 5, 2, 6, 7, 4]
    );
    assert_eq!(
        get_ids(&s, "/people?_sort=age,%20-name%20"),
        [4, 7, 6, 2, 5, 1, 3, 8]
    );
}

fn pages_with_total_and_links(b: Backend) {
    let Some(s) = people(b) else { return };
    let r = s.get("/people?city_ne=Oslo&_page=2&_limit=2");
    assert_eq!(ids(&r), [3, 4]);
    assert_eq!(r.header("x-total-count"), Some("7"));
    assert_eq!(
        r.header("link"),
        Some(
            "</people?city_ne=Oslo&_page=1&_limit=2>; rel=\"first\", \
             </people?city_ne=Oslo&_page=1&_limit=2>; rel=\"prev\", \
             </people?city_ne=Oslo&_page=3&_limit=2>; rel=\"next\", \
             </people?city_ne=Oslo&_page=4&_limit=2>; rel=\"last\""
        )
    );
    let last = s.get("/people?city_ne=Oslo&_page=4&_limit=2");
    assert_eq!(ids(&last), [8]);
    assert!(!last.header("link").unwrap().contains("rel=\"next\""));
    let envelope = s.get("/people?_page=2&_per_page=3").json();
    assert_eq!(envelope["data"].as_array().unwrap().len(), 3);
    assert_eq!(envelope["data"][0]["id"], json!(4));
    assert_eq!(get_ids(&s, "/people?_page=1"), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(get_ids(&s, "/people?_page=2"), Vec::<i64>::new());
    let one = s.get("/people?_page=1&_limit=20");
    assert_eq!(one.header("x-total-count"), Some("8"));
    assert_eq!(
        one.header("link"),
        Some(
            "</people?_page=1&_limit=20>; rel=\"first\", </people?_page=1&_limit=20>; rel=\"last\""
        )
    );
    let none = s.get("/people?city=Nowhere&_page=1");
    assert_eq!(ids(&none), Vec::<i64>::new());
    assert_eq!(none.header("x-total-count"), Some("0"));
    assert_eq!(get_ids(&s, "/people?_page=9&_limit=2"), Vec::<i64>::new());
    assert_eq!(get_ids(&s, "/people?_sort=-id&_page=3&_limit=3"), [2, 1]);
    // Every answer counts its rows, paged or not.
    assert_eq!(
        s.get("/people?city=Seoul").header("x-total-count"),
        Some("2")
    );
    assert_eq!(s.get("/people?city=Seoul").header("link"), None);
}

fn slices_with_total_and_links(b: Backend) {
    let Some(s) = people(b) else { return };
    let r = s.get("/people?_start=1&_end=3");
    assert_eq!(ids(&r), [2, 3]);
    assert_eq!(r.header("x-total-count"), Some("8"));
    assert_eq!(
        r.header("link"),
        Some(
            "</people?_start=0&_end=2>; rel=\"first\", \
             </people?_start=0&_end=2>; rel=\"prev\", \
             </people?_start=3&_end=5>; rel=\"next\", \
             </people?_start=6&_end=8>; rel=\"last\""
        )
    );
    assert_eq!(get_ids(&s, "/people?_start=4&_limit=5"), [5, 6, 7, 8]);
    let limited = s.get("/people?_limit=4&_sort=-id");
    assert_eq!(ids(&limited), [8, 7, 6, 5]);
    assert_eq!(
        limited.header("link"),
        Some(
            "</people?_limit=4&_sort=-id&_start=0>; rel=\"first\", \
             </people?_limit=4&_sort=-id&_start=4>; rel=\"next\", \
             </people?_limit=4&_sort=-id&_start=4>; rel=\"last\""
        )
    );
    assert_eq!(get_ids(&s, "/people?_limit=0"), Vec::<i64>::new());
    assert_eq!(get_ids(&s, "/people?_start=6"), [7, 8]);
    assert_eq!(get_ids(&s, "/people?_end=2"), [1, 2]);
    assert_eq!(get_ids(&s, "/people?_start=5&_end=2"), Vec::<i64>::new());
    assert_eq!(get_ids(&s, "/people?_start=100"), Vec::<i64>::new());
    let filtered = s.get("/people?city=Paris&_start=1&_limit=5");
    assert_eq!(ids(&filtered), [6]);
    assert_eq!(filtered.header("x-total-count"), Some("2"));
}

fn fields_pick_columns(b: Backend) {
    let Some(s) = people(b) else { return };
    let r = s.get("/people?_fields=name,id&city=Seoul");
    assert_eq!(
        r.text(),
        "[\n{\"name\":\"Kim\",\"id\":1},\n{\"name\":\"park\",\"id\":3}\n]\n"
    );
    let csv = s.get("/people.csv?_fields=zip,id&_limit=2");
    assert_eq!(csv.text(), "zip,id\r\n007,1\r\n12345,2\r\n");
    assert_eq!(
        s.get("/people.ndjson?_fields=age,id,age&id=7").text(),
        "{\"age\":2.5,\"id\":7}\n"
    );
    // Filters and sorts may use columns not shown.
    assert_eq!(
        s.get("/people?_fields=name&_sort=-age&age_ne=n%2Fa&_limit=2")
            .json(),
        json!([{"name": "park"}, {"name": "Kim"}])
    );
    let r = s.get("/people?_fields=id,email");
    assert!(problem(&r, 400).starts_with("no column \"email\" (in _fields)"));
    assert!(problem(&s.get("/people?_fields="), 400).contains("names no column"));
}

fn filtered_answers_in_every_representation(b: Backend) {
    let Some(s) = people(b) else { return };
    let nd = s.get("/people.ndjson?city=Paris");
    assert_eq!(
        nd.text(),
        "{\"id\":2,\"name\":\"lee\",\"age\":25,\"city\":\"Paris\",\"zip\":12345,\"note\":\"\"}\n\
         {\"id\":6,\"name\":\"kang\",\"age\":9,\"city\":\"Paris\",\"zip\":7,\"note\":\"\"}\n"
    );
    let csv = s.get_with("/people?age_lt=10&age_ne=", &[("Accept", "text/csv")]);
    assert_eq!(
        csv.text(),
        "id,name,age,city,zip,note\r\n6,kang,9,Paris,7,\r\n7,Émile,2.5,Zürich,-1,École d'été\r\n"
    );
    assert_eq!(csv.header("x-total-count"), Some("2"));
    let empty = s.get("/people.csv?city=Rome");
    assert_eq!(empty.text(), "id,name,age,city,zip,note\r\n");
    assert_eq!(empty.header("x-total-count"), Some("0"));
    assert_eq!(s.get("/people?city=Rome").text(), "[]\n");
    assert_eq!(s.get("/people.ndjson?city=Rome").text(), "");
    let json = s.get("/people?id=8").json();
    assert_eq!(
        json,
        json!([{"id": 8, "name": "zoë", "age": "n/a", "city": "São Paulo", "zip": "1e3", "note": false}])
    );
}

fn query_mistakes_are_precise_400s(b: Backend) {
    let Some(s) = people(b) else { return };
    assert_eq!(
        problem(&s.get("/people?nme=kim"), 400),
        "no column \"nme\"; columns are id, name, age, city, zip, note"
    );
    assert!(problem(&s.get("/people?height_gte=2"), 400)
        .starts_with("no column \"height\" (in height_gte)"));
    let unknown = problem(&s.get("/people?_embeds=posts"), 400);
    assert!(
        unknown.starts_with("unknown parameter \"_embeds\""),
        "{unknown}"
    );
    for page in ["two", "0", "-1"] {
        let said = problem(&s.get(&format!("/people?_page={page}")), 400);
        assert!(
            said.starts_with("_page: expected a page number (1 or more"),
            "{page}: {said}"
        );
    }
    assert!(problem(&s.get("/people?_limit=-1"), 400).contains("_limit: expected a whole number"));
    assert!(problem(&s.get("/people?_start=1.5"), 400).contains("_start"));
    assert!(problem(&s.get("/people?_page=1&_start=2"), 400).contains("not both"));
    assert!(problem(&s.get("/people?_end=2&_limit=2"), 400).contains("not both"));
    assert!(problem(&s.get("/people?_limit=1&_per_page=2"), 400).contains("not both"));
    assert!(problem(&s.get("/people?_sort=id&_sort=age"), 400).contains("more than once"));
    assert!(
        problem(&s.get("/people?_sort=height"), 400).starts_with("no column \"height\" (in _sort)")
    );
    assert!(problem(&s.get("/people?_sort=id&_order=down"), 400).contains("use asc or desc"));
    assert_eq!(
        problem(&s.get("/people?_sort=age&_order=asc,desc"), 400),
        "_order gives 2 directions for 1 _sort columns"
    );
    assert!(problem(&s.get("/people?_page=1&_limit=0"), 400).contains("at least 1 row"));
    // The cache-buster `_` is ignored.
    assert_eq!(get_ids(&s, "/people?_=1700000000&id=2"), [2]);
    // A query on a table that does not exist is a 404.
    assert_eq!(s.get("/nobody?name=x").status, 404);
}

fn head_of_a_query(b: Backend) {
    let Some(s) = people(b) else { return };
    let path = "/people?city_ne=Oslo&_page=2&_limit=2";
    let get = s.get(path);
    let head = s.request("HEAD", path, &[], b"");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    for name in [
        "x-total-count",
        "link",
        "etag",
        "content-type",
        "last-modified",
    ] {
        assert!(get.header(name).is_some(), "{name}");
        assert_eq!(head.header(name), get.header(name), "{name}");
    }
    assert_eq!(s.request("HEAD", "/people?nme=x", &[], b"").status, 400);
}

fn answers_follow_writes(b: Backend) {
    let Some(s) = people(b) else { return };
    assert_eq!(get_ids(&s, "/people?city=Lima"), [4]);
    let r = s.post_json("/people", r#"{"name":"seo","city":"Lima","age":50}"#);
    assert_eq!(r.json()["id"], json!(9));
    assert_eq!(get_ids(&s, "/people?city=Lima"), [4, 9]);
    s.send_json("PATCH", "/people/4", r#"{"city":"Cairo"}"#);
    assert_eq!(get_ids(&s, "/people?city=Lima"), [9]);
    assert_eq!(get_ids(&s, "/people?_sort=-age&_limit=2"), [8, 9]);
    s.send_json("PATCH", "/people/1", r#"{"email":"kim@example.com"}"#);
    assert_eq!(get_ids(&s, "/people?email_like=example"), [1]);
    assert_eq!(get_ids(&s, "/people?email="), [2, 3, 4, 5, 6, 7, 8, 9]);
    delete(&s, "/people/3", &[]);
    assert_eq!(get_ids(&s, "/people?city=Seoul"), [1]);
    assert_eq!(
        s.get("/people?city=Seoul").header("x-total-count"),
        Some("1")
    );
    assert_eq!(delete(&s, "/people", &[]).status, 204);
    assert_eq!(s.get("/people?city=Lima").status, 404);
}

fn a_column_named_like_an_operator(b: Backend) {
    let Some(s) = b.start() else { return };
    put_csv(
        &s,
        "/t",
        "id,price,price_lt,q_like\n1,5,cheap,x\n2,50,dear,y\n",
    );
    // A column whose name ends like an operator is that column.
    assert_eq!(get_ids(&s, "/t?price_lt=cheap"), [1]);
    assert_eq!(get_ids(&s, "/t?price_lt_ne=cheap"), [2]);
    assert_eq!(get_ids(&s, "/t?q_like=y"), [2]);
    assert_eq!(get_ids(&s, "/t?price_gt=10"), [2]);
}

// ----------------------------------------- entity tags and preconditions

fn row_etags_and_if_none_match(b: Backend) {
    let Some(s) = people(b) else { return };
    let first = s.get("/people/1");
    let tag = etag(&first);
    assert!(
        tag.starts_with('"') && tag.ends_with('"'),
        "strong tag: {tag}"
    );
    let r = s.get_with("/people/1", &[("If-None-Match", &tag)]);
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), Some(tag.as_str()));
    assert_eq!(
        s.get_with("/people/1", &[("If-None-Match", "\"other\", *")])
            .status,
        304
    );
    assert_eq!(
        s.get_with("/people/1", &[("If-None-Match", "\"other\"")])
            .status,
        200
    );
    // Another row's change leaves this row's tag.
    s.send_json("PATCH", "/people/2", r#"{"name":"x"}"#);
    assert_eq!(
        s.get_with("/people/1", &[("If-None-Match", &tag)]).status,
        304
    );
    // Its own change changes it; the same content again gives the same tag.
    s.send_json("PATCH", "/people/1", r#"{"name":"changed"}"#);
    assert_eq!(
        s.get_with("/people/1", &[("If-None-Match", &tag)]).status,
        200
    );
    s.send_json("PATCH", "/people/1", r#"{"name":"Kim"}"#);
    assert_eq!(
        etag(&s.get("/people/1")),
        tag,
        "a row's tag is its content's"
    );
}

fn table_etags_and_if_none_match(b: Backend) {
    let Some(s) = people(b) else { return };
    let table_tag = etag(&s.get("/people"));
    assert_eq!(
        s.get_with("/people", &[("If-None-Match", &table_tag)])
            .status,
        304
    );
    let seoul = s.get("/people?city=Seoul");
    let seoul_tag = etag(&seoul);
    assert_ne!(seoul_tag, table_tag, "each query has its own tag");
    assert_ne!(
        Some(seoul_tag.as_str()),
        s.get("/people?city=Paris").header("etag")
    );
    assert_eq!(
        s.get_with("/people?city=Seoul", &[("If-None-Match", &seoul_tag)])
            .status,
        304
    );
    assert_eq!(
        s.get_with("/people?city=Paris", &[("If-None-Match", &seoul_tag)])
            .status,
        200
    );
    let list_tag = etag(&s.get("/"));
    assert_eq!(s.get_with("/", &[("If-None-Match", &list_tag)]).status, 304);
    s.send_json("PATCH", "/people/2", r#"{"name":"park"}"#);
    assert_eq!(
        s.get_with("/people", &[("If-None-Match", &table_tag)])
            .status,
        200
    );
    assert_ne!(etag(&s.get("/people")), table_tag);
    assert_eq!(s.get_with("/", &[("If-None-Match", &list_tag)]).status, 200);
}

fn if_match_on_rows_prevents_lost_updates(b: Backend) {
    let Some(s) = people(b) else { return };
    let tag = etag(&s.get("/people/1"));
    let ok = send(
        &s,
        "PATCH",
        "/people/1",
        &[("If-Match", &tag)],
        r#"{"name":"A"}"#,
    );
    assert_eq!(ok.status, 200);
    let new_tag = etag(&ok);
    assert_ne!(new_tag, tag);
    let stale = send(
        &s,
        "PATCH",
        "/people/1",
        &[("If-Match", &tag)],
        r#"{"name":"B"}"#,
    );
    problem(&stale, 412);
    assert_eq!(kind(&stale), "urn:csvd:problem:precondition-failed");
    assert_eq!(s.get("/people/1").json()["name"], json!("A"));
    assert_eq!(
        send(
            &s,
            "PUT",
            "/people/1",
            &[("If-Match", &tag)],
            r#"{"name":"C"}"#
        )
        .status,
        412
    );
    assert_eq!(delete(&s, "/people/1", &[("If-Match", &tag)]).status, 412);
    // Any of several tags; `*` means "exists"; a weak tag never matches.
    let list = format!("\"nope\", {new_tag}");
    let r = send(
        &s,
        "PATCH",
        "/people/1",
        &[("If-Match", &list)],
        r#"{"name":"D"}"#,
    );
    assert_eq!(r.status, 200);
    let d_tag = etag(&r);
    let weak = format!("W/{d_tag}");
    assert_eq!(
        send(
            &s,
            "PATCH",
            "/people/1",
            &[("If-Match", &weak)],
            r#"{"name":"E"}"#
        )
        .status,
        412
    );
    assert_eq!(
        send(
            &s,
            "PATCH",
            "/people/1",
            &[("If-Match", "*")],
            r#"{"name":"F"}"#
        )
        .status,
        200
    );
    assert_eq!(
        send(
            &s,
            "PUT",
            "/people/77",
            &[("If-Match", "*")],
            r#"{"name":"G"}"#
        )
        .status,
        412
    );
    assert_eq!(s.get("/people/77").status, 404);
    // Any representation's tag of the current state matches.
    let csv_tag = etag(&s.get("/people/1.csv"));
    let r = send(
        &s,
        "PATCH",
        "/people/1",
        &[("If-Match", &csv_tag)],
        r#"{"name":"H"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let current = etag(&r);
    assert_eq!(
        delete(&s, "/people/1", &[("If-Match", &current)]).status,
        204
    );
    assert_eq!(s.get("/people/1").status, 404);
}

fn if_match_on_tables(b: Backend) {
    let Some(s) = people(b) else { return };
    let tag = etag(&s.get("/people"));
    let r = send(
        &s,
        "POST",
        "/people",
        &[("If-Match", &tag)],
        r#"{"name":"new"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    // The table changed: the old tag no longer matches any table write.
    let stale = [("Content-Type", "text/csv"), ("If-Match", tag.as_str())];
    assert_eq!(
        s.request("PUT", "/people", &stale, b"name\nz\n").status,
        412
    );
    assert_eq!(
        send(
            &s,
            "POST",
            "/people",
            &[("If-Match", &tag)],
            r#"{"name":"x"}"#
        )
        .status,
        412
    );
    assert_eq!(delete(&s, "/people", &[("If-Match", &tag)]).status, 412);
    assert_eq!(get_ids(&s, "/people").len(), 9);
    let current = etag(&s.get("/people"));
    let csv_tag = etag(&s.get("/people.csv"));
    let fresh = [("Content-Type", "text/csv"), ("If-Match", csv_tag.as_str())];
    let r = s.request("PUT", "/people", &fresh, b"name\nz\n");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(delete(&s, "/people", &[("If-Match", &current)]).status, 412);
    let now = etag(&s.get("/people"));
    assert_eq!(delete(&s, "/people", &[("If-Match", &now)]).status, 204);
    assert_eq!(
        send(&s, "POST", "/people", &[("If-Match", "*")], r#"{"a":"1"}"#).status,
        412
    );
    assert_eq!(s.get("/people").status, 404);
}

fn if_none_match_star_creates_only(b: Backend) {
    let Some(s) = people(b) else { return };
    let create_only = [("If-None-Match", "*")];
    assert_eq!(
        send(&s, "PUT", "/people/2", &create_only, r#"{"name":"x"}"#).status,
        412
    );
    assert_eq!(s.get("/people/2").json()["name"], json!("lee"));
    assert_eq!(
        send(&s, "PUT", "/people/9", &create_only, r#"{"name":"x"}"#).status,
        201
    );
    let csv_only = [("Content-Type", "text/csv"), ("If-None-Match", "*")];
    assert_eq!(
        s.request("PUT", "/people", &csv_only, b"name\nx\n").status,
        412
    );
    assert_eq!(
        s.request("PUT", "/fresh", &csv_only, b"name\nx\n").status,
        201
    );
    assert_eq!(
        s.request("PUT", "/fresh", &csv_only, b"name\ny\n").status,
        412
    );
    assert_eq!(s.get("/fresh/1").json()["name"], json!("x"));
}

fn failed_preconditions_say_what_happened(b: Backend) {
    let Some(s) = people(b) else { return };
    let detail = |r: &Response| problem(r, 412);
    let create_only = [("If-None-Match", "*")];
    let said = detail(&send(
        &s,
        "PUT",
        "/people/1",
        &create_only,
        r#"{"name":"x"}"#,
    ));
    assert!(
        said.contains("row \"1\" of \"people\" already exists"),
        "{said}"
    );
    assert!(!said.contains("changed"), "{said}");
    let csv_only = [("Content-Type", "text/csv"), ("If-None-Match", "*")];
    let said = detail(&s.request("PUT", "/people", &csv_only, b"name\nx\n"));
    assert!(said.contains("table \"people\" already exists"), "{said}");
    let tag = etag(&s.get("/people/1"));
    s.send_json("PATCH", "/people/1", r#"{"name":"new"}"#);
    let stale = [("If-Match", tag.as_str())];
    let said = detail(&send(&s, "PATCH", "/people/1", &stale, r#"{"name":"b"}"#));
    assert!(
        said.contains("row \"1\" of \"people\" has changed"),
        "{said}"
    );
    let said = detail(&send(&s, "PUT", "/people/77", &stale, r#"{"name":"b"}"#));
    assert!(
        said.contains("row \"77\" of \"people\" does not exist"),
        "{said}"
    );
    let said = detail(&delete(&s, "/people/1", &stale));
    assert!(said.contains("has changed"), "{said}");
    let current = etag(&s.get("/people/2"));
    let same = [("If-None-Match", current.as_str())];
    let said = detail(&send(&s, "PUT", "/people/2", &same, r#"{"name":"b"}"#));
    assert!(said.contains("If-None-Match names"), "{said}");
}

fn last_modified_and_if_modified_since(b: Backend) {
    let Some(s) = people(b) else { return };
    let r = s.get("/people");
    let modified = r
        .header("last-modified")
        .expect("Last-Modified")
        .to_string();
    assert!(modified.ends_with(" GMT"), "{modified}");
    assert_eq!(
        s.get_with("/people", &[("If-Modified-Since", &modified)])
            .status,
        304
    );
    let past = "Mon, 01 Jan 2001 00:00:00 GMT";
    assert_eq!(
        s.get_with("/people", &[("If-Modified-Since", past)]).status,
        200
    );
    // If-None-Match wins over If-Modified-Since.
    let both = [
        ("If-None-Match", "\"other\""),
        ("If-Modified-Since", modified.as_str()),
    ];
    assert_eq!(s.get_with("/people", &both).status, 200);
}

// --------------------------------------------- concurrency and restarts

fn concurrent_creates_get_distinct_ids(b: Backend) {
    let Some(s) = b.start() else { return };
    s.post_json("/t", r#"{"w":"first"}"#);
    std::thread::scope(|scope| {
        for t in 0..6 {
            let s = &s;
            scope.spawn(move || {
                for i in 0..15 {
                    let body = if i % 5 == 4 {
                        format!(r#"[{{"w":"{t}-{i}a"}},{{"w":"{t}-{i}b"}}]"#)
                    } else {
                        format!(r#"{{"w":"{t}-{i}"}}"#)
                    };
                    let r = s.post_json("/t", &body);
                    assert_eq!(r.status, 201, "{}", r.text());
                }
            });
        }
    });
    let rows = s.get("/t").json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1 + 6 * 18);
    let mut ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    ids.sort();
    assert_eq!(
        ids,
        (1..=109).collect::<Vec<i64>>(),
        "every id once, no gap"
    );
    // A batch's ids are consecutive, whoever wrote between.
    for row in rows
        .iter()
        .filter(|r| r["w"].as_str().unwrap().ends_with('a'))
    {
        let next = row["id"].as_i64().unwrap() + 1;
        let partner = s.get(&format!("/t/{next}")).json();
        let w = row["w"].as_str().unwrap();
        assert_eq!(partner["w"], json!(format!("{}b", &w[..w.len() - 1])));
    }
}

fn concurrent_conditional_writes_have_one_winner(b: Backend) {
    let Some(s) = b.start() else { return };
    s.post_json("/t", r#"{"n":"0"}"#);
    for round in 0..3 {
        let tag = etag(&s.get("/t/1"));
        let barrier = Arc::new(Barrier::new(6));
        let statuses: Vec<u16> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..6)
                .map(|t| {
                    let (s, tag, barrier) = (&s, tag.clone(), barrier.clone());
                    scope.spawn(move || {
                        barrier.wait();
                        let body = format!(r#"{{"n":"{round}-{t}"}}"#);
                        send(s, "PATCH", "/t/1", &[("If-Match", &tag)], &body).status
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let won = statuses.iter().filter(|&&st| st == 200).count();
        let lost = statuses.iter().filter(|&&st| st == 412).count();
        assert_eq!((won, lost), (1, 5), "round {round}: {statuses:?}");
        let n = s.get("/t/1").json()["n"].as_str().unwrap().to_string();
        assert!(n.starts_with(&format!("{round}-")), "{n}");
    }
    // Creating one id from many writers: one 201, the rest 409 or 412.
    let barrier = Arc::new(Barrier::new(6));
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|t| {
                let (s, barrier) = (&s, barrier.clone());
                scope.spawn(move || {
                    barrier.wait();
                    s.post_json("/t", &format!(r#"{{"id":"same","n":"{t}"}}"#))
                        .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|&&st| st == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&st| st == 409).count(),
        5,
        "{statuses:?}"
    );
}

fn a_restart_keeps_rows_columns_order_and_row_tags(b: Backend) {
    let Some(mut s) = people(b) else { return };
    s.post_json("/people", r#"{"name":"new","extra":"col"}"#);
    s.send_json("PATCH", "/people/3", r#"{"note":"patched"}"#);
    delete(&s, "/people/2", &[]);
    let before = s.get("/people.csv").text();
    let tags: Vec<String> = [1, 3, 9]
        .iter()
        .map(|i| etag(&s.get(&format!("/people/{i}"))))
        .collect();
    s.restart();
    assert_eq!(s.get("/people.csv").text(), before);
    let after: Vec<String> = [1, 3, 9]
        .iter()
        .map(|i| etag(&s.get(&format!("/people/{i}"))))
        .collect();
    assert_eq!(after, tags, "row tags survive a restart");
    assert_eq!(
        s.post_json("/people", r#"{"name":"later"}"#).json()["id"],
        json!(10)
    );
    // Killed without a stop: every acknowledged write is there.
    s.send_json("PUT", "/people/3", r#"{"name":"last"}"#);
    let expected = s.get("/people.csv").text();
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    s.restart_after_crash();
    assert_eq!(s.get("/people.csv").text(), expected);
}
