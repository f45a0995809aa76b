//! Queries on `GET /<table>`: json-server's filters, full-text search,
//! sorting, pages and slices with `X-Total-Count` and `Link`, `_fields`,
//! and precise 400s for what cannot be answered.

mod common;

use common::{Response, Server};
use serde_json::{json, Value};

const PEOPLE: &str = "\
id,name,age,city,zip,note
1,Kim,30,Seoul,007,likes tea
2,lee,25,Paris,12345,
3,park,41,Seoul,99999,Tea and cake
4,choi,,Lima,00501,n/a
5,jung,30,Oslo,10001,0
6,kang,9,Paris,7,
";

fn put_csv(s: &Server, path: &str, csv: &str) {
    let r = s.request("PUT", path, &[("Content-Type", "text/csv")], csv.as_bytes());
    assert!(r.status == 201 || r.status == 200, "{}", r.text());
}

fn people() -> Server {
    let s = Server::start();
    put_csv(&s, "/people", PEOPLE);
    s
}

/// The ids of a JSON array answer, in order.
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

fn detail(r: &Response) -> String {
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    r.json()["detail"].as_str().unwrap_or_default().to_string()
}

#[test]
fn equality_repeats_as_or_and_different_columns_as_and() {
    let s = people();
    assert_eq!(get_ids(&s, "/people?city=Seoul"), [1, 3]);
    assert_eq!(get_ids(&s, "/people?city=Seoul&city=Lima"), [1, 3, 4]);
    assert_eq!(get_ids(&s, "/people?city=Seoul&age=30"), [1]);
    // Exact text: no case folding, no number reading.
    assert_eq!(get_ids(&s, "/people?name=kim"), Vec::<i64>::new());
    assert_eq!(get_ids(&s, "/people?zip=7"), [6]);
    assert_eq!(get_ids(&s, "/people?zip=007"), [1]);
    assert_eq!(get_ids(&s, "/people?age="), [4]);
    assert_eq!(get_ids(&s, "/people?id=3"), [3]);
}

#[test]
fn not_equal_repeats_as_none_of() {
    let s = people();
    assert_eq!(get_ids(&s, "/people?city_ne=Paris"), [1, 3, 4, 5]);
    assert_eq!(get_ids(&s, "/people?city_ne=Paris&city_ne=Seoul"), [4, 5]);
}

#[test]
fn comparisons_are_numeric_for_numbers_and_textual_otherwise() {
    let s = people();
    assert_eq!(get_ids(&s, "/people?age_gte=30"), [1, 3, 5]);
    assert_eq!(get_ids(&s, "/people?age_gt=25&age_lt=41"), [1, 5]);
    // 9 < 25 as numbers (as text "9" > "25").
    assert_eq!(get_ids(&s, "/people?age_lte=25"), [2, 4, 6]);
    assert_eq!(get_ids(&s, "/people?age_lt=1e1"), [4, 6]);
    // `007` and `00501` are text by the typing rule: compared as text.
    assert_eq!(get_ids(&s, "/people?zip_lt=1"), [1, 4]);
    assert_eq!(get_ids(&s, "/people?zip_gte=10000"), [2, 3, 5]);
    // Text against text.
    assert_eq!(get_ids(&s, "/people?name_gte=l"), [2, 3]);
}

#[test]
fn like_is_a_case_insensitive_regular_expression() {
    let s = people();
    assert_eq!(get_ids(&s, "/people?note_like=tea"), [1, 3]);
    assert_eq!(get_ids(&s, "/people?name_like=%5Ek"), [1, 6]);
    assert_eq!(get_ids(&s, "/people?name_like=^k&name_like=ee$"), [1, 2, 6]);
    assert_eq!(get_ids(&s, "/people?zip_like=^0"), [1, 4]);
    let bad = detail(&s.get("/people?name_like=(kim"));
    assert!(
        bad.starts_with("name_like: \"(kim\" is not a valid regular expression"),
        "{bad}"
    );
    assert!(bad.contains("unclosed group"), "{bad}");
    let huge = detail(&s.get("/people?name_like=a%7B1000%7D%7B1000%7D"));
    assert!(huge.contains("size limit"), "{huge}");
}

#[test]
fn q_searches_every_cell_ignoring_case() {
    let s = people();
    assert_eq!(get_ids(&s, "/people?q=TEA"), [1, 3]);
    assert_eq!(get_ids(&s, "/people?q=seoul"), [1, 3]);
    assert_eq!(get_ids(&s, "/people?q=a.d"), Vec::<i64>::new());
    assert_eq!(get_ids(&s, "/people?q=30&city=Oslo"), [5]);
    assert_eq!(get_ids(&s, "/people?q=0"), [1, 4, 5]);
    assert_eq!(get_ids(&s, "/people?q="), [1, 2, 3, 4, 5, 6]);
    // As in json-server, cells that are 0 or false never match.
    put_csv(&s, "/flags", "id,a\n1,0\n2,10\n3,false\n4,falsey\n");
    assert_eq!(get_ids(&s, "/flags?q=0"), [2]);
    assert_eq!(get_ids(&s, "/flags?q=FALSE"), [4]);
}

#[test]
fn sorting_by_columns_and_directions() {
    let s = people();
    // Numbers numerically; the empty age sorts as 0, as in json-server.
    assert_eq!(get_ids(&s, "/people?_sort=age"), [4, 6, 2, 1, 5, 3]);
    assert_eq!(
        get_ids(&s, "/people?_sort=age&_order=desc"),
        [3, 1, 5, 2, 6, 4]
    );
    assert_eq!(get_ids(&s, "/people?_sort=-age"), [3, 1, 5, 2, 6, 4]);
    // Ties keep table order in both directions.
    assert_eq!(get_ids(&s, "/people?_sort=city,-age"), [4, 5, 2, 6, 3, 1]);
    assert_eq!(
        get_ids(&s, "/people?_sort=city,age&_order=desc,desc"),
        [3, 1, 2, 6, 5, 4]
    );
    // Text by code point: upper case before lower case.
    assert_eq!(get_ids(&s, "/people?_sort=name"), [1, 4, 5, 6, 2, 3]);
    assert_eq!(
        get_ids(&s, "/people?_sort=id&_order=DESC"),
        [6, 5, 4, 3, 2, 1]
    );
    assert!(detail(&s.get("/people?_sort=height")).starts_with("no column \"height\" (in _sort)"));
    assert!(detail(&s.get("/people?_sort=id&_order=down")).contains("use asc or desc"));
}

#[test]
fn pages_carry_total_count_and_links() {
    let s = people();
    let r = s.get("/people?city_ne=Oslo&_page=2&_limit=2");
    assert_eq!(ids(&r), [3, 4]);
    assert_eq!(r.header("x-total-count"), Some("5"));
    assert_eq!(
        r.header("link"),
        Some(
            "</people?city_ne=Oslo&_page=1&_limit=2>; rel=\"first\", \
             </people?city_ne=Oslo&_page=1&_limit=2>; rel=\"prev\", \
             </people?city_ne=Oslo&_page=3&_limit=2>; rel=\"next\", \
             </people?city_ne=Oslo&_page=3&_limit=2>; rel=\"last\""
        )
    );
    let last = s.get("/people?city_ne=Oslo&_page=3&_limit=2");
    assert_eq!(ids(&last), [6]);
    assert!(!last.header("link").unwrap().contains("rel=\"next\""));
    // `_per_page` is v1's: the page's rows come in an envelope.
    let envelope = s.get("/people?_page=2&_per_page=4").json();
    assert_eq!(envelope["items"], json!(6));
    let data: Vec<i64> = envelope["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["id"].as_i64().unwrap())
        .collect();
    assert_eq!(data, [5, 6]);
    // One page that holds every row is the first and the last page.
    let one = s.get("/people?_page=1&_limit=20");
    assert_eq!(ids(&one), [1, 2, 3, 4, 5, 6]);
    assert_eq!(one.header("x-total-count"), Some("6"));
    assert_eq!(
        one.header("link"),
        Some(
            "</people?_page=1&_limit=20>; rel=\"first\", </people?_page=1&_limit=20>; rel=\"last\""
        )
    );
    let none = s.get("/people?city=Nowhere&_page=1");
    assert_eq!(
        none.header("link"),
        Some("</people?city=Nowhere&_page=1>; rel=\"first\", </people?city=Nowhere&_page=1>; rel=\"last\"")
    );
    assert_eq!(get_ids(&s, "/people?_page=9&_limit=2"), Vec::<i64>::new());
}

#[test]
fn slices_by_start_end_and_limit() {
    let s = people();
    let r = s.get("/people?_start=1&_end=3");
    assert_eq!(ids(&r), [2, 3]);
    assert_eq!(r.header("x-total-count"), Some("6"));
    assert_eq!(
        r.header("link"),
        Some(
            "</people?_start=0&_end=2>; rel=\"first\", \
             </people?_start=0&_end=2>; rel=\"prev\", \
             </people?_start=3&_end=5>; rel=\"next\", \
             </people?_start=4&_end=6>; rel=\"last\""
        )
    );
    assert_eq!(get_ids(&s, "/people?_start=4&_limit=5"), [5, 6]);
    let limited = s.get("/people?_limit=4&_sort=-id");
    assert_eq!(ids(&limited), [6, 5, 4, 3]);
    assert_eq!(
        limited.header("link"),
        Some(
            "</people?_limit=4&_sort=-id&_start=0>; rel=\"first\", \
             </people?_limit=4&_sort=-id&_start=4>; rel=\"next\", \
             </people?_limit=4&_sort=-id&_start=4>; rel=\"last\""
        )
    );
    assert_eq!(get_ids(&s, "/people?_limit=0"), Vec::<i64>::new());
    assert_eq!(get_ids(&s, "/people?_start=4"), [5, 6]);
    assert_eq!(get_ids(&s, "/people?_start=5&_end=2"), Vec::<i64>::new());
}

#[test]
fn fields_pick_columns_in_every_representation() {
    let s = people();
    let r = s.get("/people?_fields=name,id&city=Seoul");
    assert_eq!(
        r.text(),
        "[\n{\"name\":\"Kim\",\"id\":1},\n{\"name\":\"park\",\"id\":3}\n]\n"
    );
    let csv = s.get("/people.csv?_fields=zip,id&_limit=2");
    assert_eq!(csv.text(), "zip,id\r\n007,1\r\n12345,2\r\n");
    let html = s.get("/people.html?_fields=name,id&id=2").text();
    assert!(
        html.contains("<td>lee</td><td><a href=\"/people/2\">2</a></td>"),
        "{html}"
    );
    assert!(
        detail(&s.get("/people?_fields=id,email")).starts_with("no column \"email\" (in _fields)")
    );
}

#[test]
fn filtered_answers_in_every_representation() {
    let s = people();
    let nd = s.get("/people.ndjson?city=Paris");
    assert_eq!(
        nd.text(),
        "{\"id\":2,\"name\":\"lee\",\"age\":25,\"city\":\"Paris\",\"zip\":12345,\"note\":\"\"}\n\
         {\"id\":6,\"name\":\"kang\",\"age\":9,\"city\":\"Paris\",\"zip\":7,\"note\":\"\"}\n"
    );
    let csv = s.get_with("/people?age_lt=10", &[("Accept", "text/csv")]);
    assert_eq!(
        csv.text(),
        "id,name,age,city,zip,note\r\n4,choi,,Lima,00501,n/a\r\n6,kang,9,Paris,7,\r\n"
    );
    let empty = s.get("/people.csv?city=Rome");
    assert_eq!(empty.text(), "id,name,age,city,zip,note\r\n");
    assert_eq!(empty.header("x-total-count"), Some("0"));
    assert_eq!(s.get("/people?city=Rome").json(), json!([]));
}

#[test]
fn mistakes_are_precise_400s() {
    let s = people();
    assert_eq!(
        detail(&s.get("/people?nme=kim")),
        "no column \"nme\"; columns are id, name, age, city, zip, note"
    );
    assert!(
        detail(&s.get("/people?height_gte=2")).starts_with("no column \"height\" (in height_gte)")
    );
    let unknown = detail(&s.get("/people?_embeds=posts"));
    assert!(
        unknown.starts_with("unknown parameter \"_embeds\""),
        "{unknown}"
    );
    assert!(
        unknown.contains("_sort") && unknown.contains("_like"),
        "{unknown}"
    );
    // `_page` is a page number: the message says what the check is.
    for page in ["two", "0", "-1"] {
        let said = detail(&s.get(&format!("/people?_page={page}")));
        assert!(
            said.starts_with("_page: expected a page number (1 or more"),
            "{page}: {said}"
        );
        assert!(!said.contains("0 or more"), "{page}: {said}");
    }
    assert!(detail(&s.get("/people?_limit=-1")).contains("_limit: expected a whole number"));
    assert!(detail(&s.get("/people?_start=1.5")).contains("_start"));
    assert!(detail(&s.get("/people?_page=1&_start=2")).contains("not both"));
    assert!(detail(&s.get("/people?_sort=id&_sort=age")).contains("more than once"));
    // The cache-buster `_` is ignored.
    assert_eq!(get_ids(&s, "/people?_=1700000000&id=2"), [2]);
    // A browser gets the error as a page.
    let page = s.get_with("/people?nme=kim", &[("Accept", "text/html")]);
    assert_eq!(page.status, 400);
    assert!(page.text().contains("no column"));
}

#[test]
fn head_answers_the_same_headers_without_a_body() {
    let s = people();
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

#[test]
fn each_query_has_its_own_tag() {
    let s = people();
    let seoul = s.get("/people?city=Seoul");
    let paris = s.get("/people?city=Paris");
    let tag = seoul.header("etag").unwrap().to_string();
    assert_ne!(Some(tag.as_str()), paris.header("etag"));
    let again = s.get_with("/people?city=Seoul", &[("If-None-Match", &tag)]);
    assert_eq!(again.status, 304);
    let other = s.get_with("/people?city=Paris", &[("If-None-Match", &tag)]);
    assert_eq!(other.status, 200);
}

#[test]
fn answers_follow_writes() {
    let s = people();
    assert_eq!(get_ids(&s, "/people?city=Lima"), [4]);
    assert_eq!(
        s.post_json("/people", r#"{"name":"seo","city":"Lima","age":50}"#)
            .status,
        201
    );
    assert_eq!(get_ids(&s, "/people?city=Lima"), [4, 7]);
    assert_eq!(
        s.send_json("PATCH", "/people/4", r#"{"city":"Cairo"}"#)
            .status,
        200
    );
    assert_eq!(get_ids(&s, "/people?city=Lima"), [7]);
    assert_eq!(get_ids(&s, "/people?_sort=-age&_limit=1"), [7]);
    // A column added by a write can be queried at once.
    s.send_json("PATCH", "/people/1", r#"{"email":"kim@example.com"}"#);
    assert_eq!(get_ids(&s, "/people?email_like=example"), [1]);
    assert_eq!(s.request("DELETE", "/people", &[], b"").status, 204);
    assert_eq!(s.get("/people?city=Lima").status, 404);
}

/// A table big enough to be streamed and to get indexes.
fn big(s: &Server, rows: usize) {
    let mut csv = String::from("id,group,value\n");
    for i in 1..=rows {
        csv.push_str(&format!("{i},g{},{}\n", i % 7, (i * 7919) % 10_007));
    }
    put_csv(s, "/big", &csv);
}

#[test]
fn large_answers_are_streamed_and_complete() {
    let s = Server::start();
    big(&s, 20_000);
    let r = s.get("/big?group=g3");
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.header("x-total-count"), Some("2857"));
    let rows = r.json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2857);
    assert!(rows.iter().all(|row| row["group"] == json!("g3")));
    let csv = s.get("/big.csv?value_lt=5000&_fields=value");
    let text = csv.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "value");
    assert_eq!(
        lines.len() - 1,
        csv.header("x-total-count")
            .unwrap()
            .parse::<usize>()
            .unwrap()
    );
    assert!(lines[1..].iter().all(|v| v.parse::<u32>().unwrap() < 5000));
}

#[test]
fn repeated_equality_queries_agree_with_a_scan() {
    // Equality filters on a large table get an index after a few queries;
    // whichever way a query is answered, the rows must be the same.
    let s = Server::start();
    big(&s, 20_000);
    let expected: Vec<i64> = (1..=20_000).filter(|i| i % 7 == 5).collect();
    let expected_or: Vec<i64> = (1..=20_000).filter(|i| i % 7 == 5 || i % 7 == 0).collect();
    for _ in 0..20 {
        assert_eq!(get_ids(&s, "/big?group=g5"), expected);
        assert_eq!(get_ids(&s, "/big?group=g5&group=g0"), expected_or);
        assert_eq!(get_ids(&s, "/big?id=777"), [777]);
        assert_eq!(get_ids(&s, "/big?group=g5&id=12"), [12]);
        assert_eq!(get_ids(&s, "/big?group=nope"), Vec::<i64>::new());
    }
    let sorted = s.get("/big?group=g5&_sort=-value,id&_limit=3");
    let values: Vec<Value> = sorted
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].clone())
        .collect();
    let mut all: Vec<(i64, i64)> = expected.iter().map(|&i| ((i * 7919) % 10_007, i)).collect();
    all.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let want: Vec<Value> = all[..3].iter().map(|(v, _)| json!(v)).collect();
    assert_eq!(values, want);
}

#[test]
fn readers_that_stall_or_leave_cost_nothing_to_others() {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    let s = Server::start();
    big(&s, 50_000);
    let request = format!("GET /big.csv HTTP/1.1\r\nHost: {}\r\n\r\n", s.addr);
    // Clients that read the start of a large answer, then stop reading or go away.
    let mut stalled = Vec::new();
    for i in 0..10 {
        let mut stream = TcpStream::connect(s.addr).expect("connect");
        stream.write_all(request.as_bytes()).expect("send");
        let mut start = [0u8; 4096];
        let n = stream.read(&mut start).expect("read the start");
        assert!(String::from_utf8_lossy(&start[..n]).starts_with("HTTP/1.1 200"));
        if i % 2 == 0 {
            stalled.push(stream);
        }
    }
    // Everyone else is answered in full meanwhile.
    let r = s.get("/big?group=g1&_limit=3");
    assert_eq!(ids(&r), [1, 8, 15]);
    let whole = s.get("/big.csv");
    assert_eq!(whole.text().lines().count(), 50_001);
    drop(stalled);
    assert_eq!(get_ids(&s, "/big?id=42"), [42]);
}

#[test]
fn booleans_and_empty_values_behave_as_in_json_server() {
    let s = Server::start();
    put_csv(
        &s,
        "/f",
        "id,flag,n\n1,true,5\n2,,-5\n3,false,\n4,1,2\n5,0,x\n",
    );
    // Among numbers, true is 1 and false 0; the empty cell sorts as 0.
    assert_eq!(get_ids(&s, "/f?_sort=flag"), [2, 3, 5, 1, 4]);
    assert_eq!(get_ids(&s, "/f?flag_gte=1"), [1, 4]);
    // An empty operand is 0 against numbers, "" against text.
    assert_eq!(get_ids(&s, "/f?n_gte="), [1, 3, 4, 5]);
}
