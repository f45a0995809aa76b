//! csvd as a drop-in for json-server, over real sockets: v1's query
//! operators and page envelope, `_sort=-x`, relations (`_embed`,
//! `_expand`, nested routes), `--delay` and `--static`.

mod common;

use std::time::{Duration, Instant};

use common::{Response, Server};
use serde_json::{json, Value};

const PEOPLE: &str = "\
id,name,age,city
1,Kim,30,Seoul
2,lee,25,Paris
3,park,41,Seoul
4,choi,,Lima
5,jung,30,Oslo
6,kang,9,Paris
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

fn ids_of(value: &Value) -> Vec<i64> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|row| row["id"].as_i64().expect("numeric id"))
        .collect()
}

fn ids(s: &Server, path: &str) -> Vec<i64> {
    let r = s.get(path);
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    ids_of(&r.json())
}

fn problem(r: &Response, status: u16) -> String {
    assert_eq!(r.status, status, "{}", r.text());
    r.json()["detail"].as_str().unwrap_or_default().to_string()
}

// ------------------------------------------------------------ v1 queries

#[test]
fn v1_operators_filter_rows() {
    let s = people();
    assert_eq!(ids(&s, "/people?age:gt=25"), [1, 3, 5]);
    assert_eq!(ids(&s, "/people?age:gte=30&age:lt=41"), [1, 5]);
    assert_eq!(ids(&s, "/people?age:lte=25&age:ne="), [2, 6]);
    assert_eq!(ids(&s, "/people?city:eq=Seoul"), [1, 3]);
    assert_eq!(ids(&s, "/people?city:ne=Paris"), [1, 3, 4, 5]);
    assert_eq!(ids(&s, "/people?city:in=Seoul,Lima"), [1, 3, 4]);
    assert_eq!(ids(&s, "/people?id:in=2,+6"), [2, 6]);
    // The text operators ignore case, and look only at text cells.
    assert_eq!(ids(&s, "/people?name:contains=K"), [1, 3, 6]);
    assert_eq!(ids(&s, "/people?name:startsWith=k"), [1, 6]);
    assert_eq!(ids(&s, "/people?city:endsWith=IS"), [2, 6]);
    assert_eq!(ids(&s, "/people?age:contains=3"), Vec::<i64>::new());
    // The bracket spelling, and v1's later suffixes.
    assert_eq!(ids(&s, "/people?age[gt]=25&age[lt]=41"), [1, 5]);
    assert_eq!(ids(&s, "/people?city_in=Oslo,Lima"), [4, 5]);
    assert_eq!(ids(&s, "/people?name_contains=AN"), [6]);
    // As in v1, the last value of an operator counts.
    assert_eq!(ids(&s, "/people?age:gt=40&age:gt=29"), [1, 3, 5]);
    // Mixed with 0.17's forms: all must hold.
    assert_eq!(ids(&s, "/people?age_gte=25&city:eq=Seoul"), [1, 3]);
    assert_eq!(ids(&s, "/people?city=Paris&name:startsWith=k"), [6]);
    assert!(problem(&s.get("/people?age:over=1"), 400).contains("unknown operator \"over\""));
    assert!(problem(&s.get("/people?nope:gt=1"), 400).starts_with("no column \"nope\""));
}

#[test]
fn sort_with_a_minus_is_descending() {
    let s = people();
    assert_eq!(ids(&s, "/people?_sort=-age&age:ne="), [3, 1, 5, 2, 6]);
    assert_eq!(ids(&s, "/people?_sort=city,-id"), [4, 5, 6, 2, 3, 1]);
}

#[test]
fn per_page_answers_v1_envelope() {
    let s = people();
    let r = s.get("/people?_page=2&_per_page=2");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["first"], json!(1));
    assert_eq!(v["prev"], json!(1));
    assert_eq!(v["next"], json!(3));
    assert_eq!(v["last"], json!(3));
    assert_eq!(v["pages"], json!(3));
    assert_eq!(v["items"], json!(6));
    assert_eq!(ids_of(&v["data"]), [3, 4]);
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 7, "{v}");
    assert!(r.header("link").is_none());
    // First page, filtered and sorted.
    let v = s.get("/people?_per_page=2&_sort=-id&city:ne=Oslo").json();
    assert_eq!(
        (v["prev"].clone(), v["next"].clone()),
        (json!(null), json!(2))
    );
    assert_eq!(
        (v["items"].clone(), v["pages"].clone()),
        (json!(5), json!(3))
    );
    assert_eq!(ids_of(&v["data"]), [6, 4]);
    // Past the last page: the last page, as v1 answers.
    let v = s.get("/people?_page=9&_per_page=4").json();
    assert_eq!(v["next"], json!(null));
    assert_eq!(v["prev"], json!(1));
    assert_eq!(ids_of(&v["data"]), [5, 6]);
    // No rows: one empty page.
    let v = s.get("/people?_page=1&_per_page=4&id=99").json();
    assert_eq!(v["pages"], json!(1));
    assert_eq!(v["items"], json!(0));
    assert_eq!(v["data"], json!([]));
    // 0.17's `_page` with `_limit` keeps the bare array, total and links.
    let r = s.get("/people?_page=2&_limit=2");
    assert_eq!(ids_of(&r.json()), [3, 4]);
    assert_eq!(r.header("x-total-count"), Some("6"));
    assert!(r.header("link").unwrap().contains("rel=\"next\""));
    // Other formats get the rows alone.
    let r = s.get("/people.ndjson?_page=1&_per_page=2");
    assert_eq!(r.text().lines().count(), 2);
}

// ------------------------------------------------------------- relations

fn blog() -> Server {
    let s = Server::start();
    put_csv(&s, "/posts", "id,title\n1,hello\n2,again\n3,quiet\n");
    put_csv(
        &s,
        "/comments",
        "id,body,postId\n1,nice,1\n2,meh,1\n3,wow,2\n4,orphan,9\n",
    );
    put_csv(&s, "/likes", "id,postId\n1,2\n");
    s
}

#[test]
fn embed_children_on_lists_rows_and_pages() {
    let s = blog();
    let v = s.get("/posts?_embed=comments").json();
    assert_eq!(ids_of(&v), [1, 2, 3]);
    assert_eq!(ids_of(&v[0]["comments"]), [1, 2]);
    assert_eq!(v[0]["comments"][0]["body"], json!("nice"));
    assert_eq!(ids_of(&v[1]["comments"]), [3]);
    assert_eq!(v[2]["comments"], json!([]));
    // Several at once, with a filter, a sort and a page.
    let r = s.get("/posts?_embed=comments&_embed=likes&_sort=-id&id:lte=2&_page=1&_limit=1");
    assert_eq!(r.header("x-total-count"), Some("2"));
    assert!(r.header("etag").is_none());
    let v = r.json();
    assert_eq!(ids_of(&v), [2]);
    assert_eq!(ids_of(&v[0]["comments"]), [3]);
    assert_eq!(ids_of(&v[0]["likes"]), [1]);
    // In v1's envelope.
    let v = s.get("/posts?_embed=comments&_per_page=2").json();
    assert_eq!(ids_of(&v["data"][0]["comments"]), [1, 2]);
    // One row.
    let v = s.get("/posts/1?_embed=comments").json();
    assert_eq!(v["title"], json!("hello"));
    assert_eq!(ids_of(&v["comments"]), [1, 2]);
    // A table not made yet embeds nothing; CSV cannot hold relations.
    assert_eq!(s.get("/posts/1?_embed=tags").json()["tags"], json!([]));
    assert!(problem(&s.get("/posts.csv?_embed=comments"), 400).contains("JSON"));
    assert!(problem(&s.get("/posts?_embed=posts"), 400).contains("postId"));
    assert!(problem(&s.get("/posts?_embed=a%20b"), 400)
        .starts_with("_embed: \"a b\" is not a table name"));
}

#[test]
fn expand_parents_on_lists_and_rows() {
    let s = blog();
    let v = s.get("/comments?_expand=post").json();
    assert_eq!(v[0]["post"], json!({"id": 1, "title": "hello"}));
    assert_eq!(v[2]["post"]["title"], json!("again"));
    // A parent that is not there is left out, as in json-server.
    assert!(v[3].get("post").is_none());
    assert_eq!(v[3]["postId"], json!(9));
    let v = s.get("/comments/3?_expand=post").json();
    assert_eq!(v["post"]["id"], json!(2));
    let v = s.get("/comments.ndjson?_expand=post&body=meh").text();
    let line: Value = serde_json::from_str(v.trim()).unwrap();
    assert_eq!(line["post"]["id"], json!(1));
    assert!(problem(&s.get("/posts?_expand=author"), 400).contains("authorId"));
}

#[test]
fn nested_routes_read_and_create_children() {
    let s = blog();
    assert_eq!(ids(&s, "/posts/1/comments"), [1, 2]);
    assert_eq!(ids(&s, "/posts/1/comments?_sort=-id"), [2, 1]);
    assert_eq!(ids(&s, "/posts/1/comments?postId=2"), Vec::<i64>::new());
    assert_eq!(ids(&s, "/posts/3/comments"), Vec::<i64>::new());
    let r = s.get("/posts/1/comments?_page=1&_limit=1");
    assert_eq!(r.header("x-total-count"), Some("2"));
    assert!(r.header("link").unwrap().starts_with("</comments?"));
    let r = s.post_json("/posts/3/comments", r#"{"body":"first!"}"#);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["postId"], json!(3));
    assert_eq!(ids(&s, "/posts/3/comments"), [5]);
    let r = s.post_json("/posts/3/comments", r#"{"body":"x","postId":1}"#);
    assert!(problem(&r, 400).contains("postId"));
    // Deleting a parent leaves its children alone.
    assert_eq!(s.request("DELETE", "/posts/3", &[], b"").status, 204);
    assert_eq!(ids(&s, "/comments?postId=3"), [5]);
}

#[test]
fn foreign_key_suffix_is_configurable() {
    let s = Server::start_with(&["--foreign-key-suffix", "_id"]);
    put_csv(&s, "/categories", "id,name\n1,tea\n");
    put_csv(&s, "/items", "id,category_id\n1,1\n2,1\n");
    let v = s.get("/categories?_embed=items").json();
    assert_eq!(ids_of(&v[0]["items"]), [1, 2]);
    let v = s.get("/items/2?_expand=category").json();
    assert_eq!(v["category"]["name"], json!("tea"));
    assert_eq!(ids(&s, "/categories/1/items"), [1, 2]);
}

// ------------------------------------------------------ delay and statics

#[test]
fn delay_slows_every_answer() {
    let s = Server::start_with(&["--delay", "300"]);
    let started = Instant::now();
    assert_eq!(s.get("/").status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[test]
fn static_files_never_shadow_the_api() {
    let public = tempfile::tempdir().unwrap();
    std::fs::write(public.path().join("index.html"), "<h1>front</h1>").unwrap();
    std::fs::write(public.path().join("app.js"), "go()").unwrap();
    std::fs::write(public.path().join("people"), "not the table").unwrap();
    std::fs::create_dir(public.path().join("docs")).unwrap();
    std::fs::write(public.path().join("docs/index.html"), "docs").unwrap();
    std::fs::write(public.path().join(".env"), "SECRET").unwrap();
    let outside = public.path().parent().unwrap().join("csvd-outside.txt");
    std::fs::write(&outside, "SECRET").unwrap();
    let s = Server::start_with(&["--static", public.path().to_str().unwrap()]);
    put_csv(&s, "/people", PEOPLE);

    let r = s.get("/app.js");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "go()");
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));
    assert_eq!(s.get("/index.html").text(), "<h1>front</h1>");
    assert_eq!(s.get("/docs/").text(), "docs");
    assert_eq!(s.get("/docs").text(), "docs");
    // `/` stays the list of tables, and a table wins over a file.
    assert!(s.get("/").json().is_array());
    assert_eq!(ids(&s, "/people?id=1"), [1]);
    // Nothing outside the directory, nor hidden.
    for path in [
        "/../csvd-outside.txt",
        "/%2e%2e/csvd-outside.txt",
        "/docs/..%2F..%2Fcsvd-outside.txt",
        "/.env",
    ] {
        let r = s.get(path);
        assert_ne!(r.status, 200, "{path}");
        assert!(!r.text().contains("SECRET"), "{path}");
    }
    assert_ne!(s.get("/nothing.js").status, 200);
    let _ = std::fs::remove_file(outside);
}

// ----------------------------------------------------------- the database

#[test]
fn db_is_every_table_at_once() {
    let s = Server::start();
    assert_eq!(s.get("/db").json(), json!({}));
    put_csv(&s, "/posts", "id,title\n1,hello\n");
    put_csv(&s, "/comments", "id,postId\n1,1\n2,1\n");
    let r = s.get("/db");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json(),
        json!({
            "comments": [{"id": 1, "postId": 1}, {"id": 2, "postId": 1}],
            "posts": [{"id": 1, "title": "hello"}],
        })
    );
    // Large tables stream inside it.
    let big: String = std::iter::once("id,n\n".to_string())
        .chain((1..=2500).map(|i| format!("{i},{}\n", i * 2)))
        .collect();
    put_csv(&s, "/big", &big);
    let v = s.get("/db").json();
    assert_eq!(v["big"].as_array().unwrap().len(), 2500);
    assert_eq!(v["big"][2499], json!({"id": 2500, "n": 5000}));
    assert_eq!(v["posts"][0]["title"], json!("hello"));
    // A table named `db` is a table like any other.
    put_csv(&s, "/db", "id,x\n1,y\n");
    assert_eq!(s.get("/db").json(), json!([{"id": 1, "x": "y"}]));
}

#[test]
fn three_segments_that_name_no_tables_are_no_route() {
    let s = blog();
    for path in ["/_assets/../posts", "/a%2Fb/1/comments", "/posts/1/_x"] {
        let r = s.get(path);
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert!(r.text().contains("/<table>/<id>/<table>"), "{path}");
    }
    let put = s.send_json("PUT", "/posts/1/comments", "{}");
    assert_eq!(put.status, 405);
    assert_eq!(put.header("allow"), Some("GET, HEAD, POST, OPTIONS"));
}

#[test]
fn delay_may_be_asked_per_request() {
    let s = people();
    let started = Instant::now();
    assert_eq!(ids(&s, "/people?_delay=250&id=1"), [1]);
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(problem(&s.get("/people?_delay=soon"), 400).starts_with("_delay: expected"));
    assert!(problem(&s.get("/people?_delay=600000"), 400).contains("60000"));
}

/// `csvd serve DATA FLAGS` started in `cwd`; killed when dropped.
struct InDir(std::process::Child, std::net::SocketAddr);

impl InDir {
    fn start(cwd: &std::path::Path, data: &str, flags: &[&str]) -> InDir {
        use std::io::BufRead;
        let mut child = std::process::Command::new(common::BIN)
            .current_dir(cwd)
            .args([
                "serve",
                data,
                "--bind",
                "127.0.0.1:0",
                "--log-level",
                "warn",
            ])
            .args(flags)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start csvd");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .rsplit("://")
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        InDir(child, addr)
    }
}

impl Drop for InDir {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn public_is_served_when_it_exists() {
    let cwd = tempfile::tempdir().unwrap();
    std::fs::create_dir(cwd.path().join("public")).unwrap();
    std::fs::write(cwd.path().join("public/hello.txt"), "hi").unwrap();
    let served = InDir::start(cwd.path(), "data", &[]);
    let r = common::exchange(served.1, "GET", "/hello.txt", None);
    assert_eq!((r.status, r.text().as_str()), (200, "hi"));
    let plain = InDir::start(cwd.path(), "other", &["--no-static"]);
    assert_ne!(
        common::exchange(plain.1, "GET", "/hello.txt", None).status,
        200
    );
    // A --static that is not a directory stops the start.
    let out = std::process::Command::new(common::BIN)
        .current_dir(cwd.path())
        .args([
            "serve",
            "third",
            "--bind",
            "127.0.0.1:0",
            "--static",
            "nowhere",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("--static nowhere: not a directory"), "{said}");
}
