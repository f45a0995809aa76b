//! Declared columns: a CSV on the Web metadata file beside a table's file
//! (`<t>.csv-metadata.json`) types its columns, checks writes, and wins
//! over detection; `/_schema/<t>` shows, declares and removes it; columns
//! written JSON objects or arrays are recorded and rendered back as JSON.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::Server;
use serde_json::{json, Value};

/// A server on a directory holding these files.
fn serve_files(files: &[(&str, &str)]) -> (Server, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    for (name, text) in files {
        fs::write(tmp.path().join(name), text).unwrap();
    }
    (Server::start_in(tmp.path(), &[]), tmp)
}

fn zips_metadata() -> String {
    json!({
        "@context": "http://www.w3.org/ns/csvw",
        "url": "zips.csv",
        "tableSchema": {
            "columns": [
                {"name": "id", "datatype": "integer"},
                {"name": "zip", "datatype": "string"},
                {"name": "city"}
            ],
            "primaryKey": "id"
        }
    })
    .to_string()
}

fn put_schema(s: &Server, table: &str, doc: &Value) -> common::Response {
    s.send_json("PUT", &format!("/_schema/{table}"), &doc.to_string())
}

#[test]
fn a_declared_string_column_stays_a_string() {
    let (mut s, _tmp) = serve_files(&[
        ("zips.csv", "id,zip,city\n1,00501,Holtsville\n"),
        ("zips.csv-metadata.json", &zips_metadata()),
        ("plain.csv", "id,zip\n1,00501\n"),
    ]);
    let r = s.post_json("/zips", r#"{"zip":"10001","city":"New York"}"#);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["zip"], json!("10001"));
    assert_eq!(r.json()["id"], json!(2));
    // A JSON number for a string column is kept as its text.
    let r = s.post_json("/zips", r#"{"zip":10002,"city":"New York"}"#);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["zip"], json!("10002"));
    let rows = s.get("/zips").json();
    let zips: Vec<&Value> = rows.as_array().unwrap().iter().map(|r| &r["zip"]).collect();
    assert_eq!(zips, [&json!("00501"), &json!("10001"), &json!("10002")]);
    assert_eq!(s.get("/zips/1").json()["zip"], json!("00501"));
    // The URL's id is checked against the id column's datatype too.
    let r = s.send_json("PUT", "/zips/abc", r#"{"zip":"1"}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["detail"]
        .as_str()
        .unwrap()
        .contains("column \"id\" is declared integer"));
    // Without a declaration, today's typing rule.
    let r = s.post_json("/plain", r#"{"zip":"10001"}"#);
    assert_eq!(r.json()["zip"], json!(10001));
    assert_eq!(s.get("/plain/1").json()["zip"], json!("00501"));
    // CSV is text, whatever the types.
    assert_eq!(
        s.get("/zips.csv").text(),
        "id,zip,city\r\n1,00501,Holtsville\r\n2,10001,New York\r\n3,10002,New York\r\n"
    );
    assert_eq!(
        s.file_after_stop("zips"),
        "id,zip,city\n1,00501,Holtsville\n2,10001,New York\n3,10002,New York\n"
    );
}

fn typed_doc() -> Value {
    json!({
        "@context": "http://www.w3.org/ns/csvw",
        "url": "t.csv",
        "tableSchema": {"columns": [
            {"name": "id"},
            {"name": "n", "datatype": "integer"},
            {"name": "x", "datatype": {"base": "decimal"}},
            {"name": "ok", "datatype": "boolean"},
            {"name": "day", "datatype": "date"},
            {"name": "at", "datatype": "dateTime"},
            {"name": "name", "datatype": "string", "required": true}
        ]}
    })
}

#[test]
fn declared_types_are_rendered_and_checked() {
    let file = "id,n,x,ok,day,at,name\n1,7,2.5,true,2024-02-29,2024-01-02T03:04:05Z,kim\n";
    let (mut s, _tmp) = serve_files(&[("t.csv", file)]);
    let r = put_schema(&s, "t", &typed_doc());
    assert_eq!(r.status, 200, "{}", r.text());
    let row = s.get("/t/1").json();
    assert_eq!(
        row,
        json!({"id": 1, "n": 7, "x": 2.5, "ok": true, "day": "2024-02-29",
               "at": "2024-01-02T03:04:05Z", "name": "kim"})
    );
    // Good values are accepted; empty cells of typed columns are null.
    let r = s.post_json("/t", r#"{"n":"-3","x":1e3,"ok":false,"name":"lee"}"#);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"id": 2, "n": -3, "x": 1000, "ok": false, "day": null, "at": null, "name": "lee"})
    );
    let before = s.get("/t.csv").text();
    for (body, column, expected) in [
        (r#"{"n":"seven","name":"a"}"#, "n", "integer"),
        (r#"{"n":1.5,"name":"a"}"#, "n", "integer"),
        (r#"{"x":"abc","name":"a"}"#, "x", "number"),
        (r#"{"ok":"yes","name":"a"}"#, "ok", "boolean"),
        (r#"{"day":"2023-02-29","name":"a"}"#, "day", "date"),
        (r#"{"at":"2024-01-02 03:04","name":"a"}"#, "at", "datetime"),
        (r#"{"n":1}"#, "name", "required"),
        (r#"{"n":1,"name":""}"#, "name", "required"),
    ] {
        let r = s.post_json("/t", body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        let detail = r.json()["detail"].as_str().unwrap().to_string();
        assert!(detail.contains(&format!("column {column:?}")), "{detail}");
        assert!(detail.contains(expected), "{detail}");
        assert!(detail.contains("nothing was written"), "{detail}");
    }
    // A batch with one bad record: nothing of it is written; the record
    // and its id are named.
    let r = s.post_json(
        "/t",
        r#"[{"id":10,"n":1,"name":"a"},{"id":11,"n":"x","name":"b"}]"#,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let detail = r.json()["detail"].as_str().unwrap().to_string();
    assert!(
        detail.contains("record 2 of the body (id \"11\")"),
        "{detail}"
    );
    // PUT and PATCH of a row are checked too.
    let r = s.send_json("PUT", "/t/1", r#"{"n":"x","name":"kim"}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    let r = s.send_json("PUT", "/t/x1", r#"{"n":1,"name":"kim"}"#);
    assert_eq!(
        r.status,
        201,
        "an id column without a datatype takes any id: {}",
        r.text()
    );
    assert_eq!(s.request("DELETE", "/t/x1", &[], b"").status, 204);
    let r = s.send_json("PATCH", "/t/1", r#"{"ok":"maybe"}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["detail"].as_str().unwrap().contains("id \"1\""));
    let r = s.send_json("PATCH", "/t/1", r#"{"name":""}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    // A patch need not give required columns it does not change.
    let r = s.send_json("PATCH", "/t/1", r#"{"n":8}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["n"], json!(8));
    // A CSV body is checked as a JSON one.
    let r = s.request(
        "POST",
        "/t",
        &[("Content-Type", "text/csv")],
        b"n,name\n1,a\nzz,b\n",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        s.get("/t.csv").text(),
        before.replace("\r\n1,7,", "\r\n1,8,")
    );
    // Nothing refused reached the file.
    let on_disk = s.file_after_stop("t");
    assert_eq!(
        on_disk,
        before.replace("\r\n", "\n").replace("\n1,7,", "\n1,8,")
    );
}

#[test]
fn a_declaration_that_the_rows_break_is_refused() {
    let (s, _tmp) = serve_files(&[("t.csv", "id,n\n1,7\n2,many\n")]);
    let doc = json!({"tableSchema": {"columns": [{"name": "n", "datatype": "integer"}]}});
    let r = put_schema(&s, "t", &doc);
    assert_eq!(r.status, 400, "{}", r.text());
    let detail = r.json()["detail"].as_str().unwrap().to_string();
    assert!(detail.contains("row 2 (id \"2\")"), "{detail}");
    assert!(detail.contains("\"n\""), "{detail}");
    assert!(!s.dir.join("t.csv-metadata.json").exists());
    assert_eq!(s.get("/_schema/t").json()["declared"], json!(false));
    // Invalid documents are refused saying what is wrong.
    for (doc, said) in [
        (
            json!({"tableSchema": {"columns": [{"name": "n", "datatype": "money"}]}}),
            "money",
        ),
        (json!({"tableSchema": {"primaryKey": "n"}}), "--id-column"),
        (json!({"dialect": {"header": "no"}}), "dialect.header"),
        (json!({"dialect": {"quoteChar": "`"}}), "dialect.quoteChar"),
        (json!([1]), "object"),
    ] {
        let r = put_schema(&s, "t", &doc);
        assert_eq!(r.status, 400, "{doc}: {}", r.text());
        assert!(r.text().contains(said), "{doc}: {}", r.text());
    }
    assert_eq!(put_schema(&s, "nope", &doc).status, 404);
}

#[test]
fn a_metadata_file_dropped_beside_a_table_wins_over_detection() {
    // Comma or semicolon? Detection cannot tell, the metadata says.
    let text = "id;b,c\r\n1;2,5\r\n";
    let (mut s, _tmp) = serve_files(&[("t.csv", text)]);
    assert_eq!(s.get("/t").status, 500);
    let doc = json!({"url": "t.csv", "dialect": {"delimiter": ";"},
                     "tableSchema": {"columns": [{"name": "b,c", "datatype": "string"}]}});
    fs::write(s.dir.join("t.csv-metadata.json"), doc.to_string()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.get("/t").status != 200 {
        assert!(
            Instant::now() < deadline,
            "never read with the declared dialect"
        );
    }
    assert_eq!(s.get("/t").json(), json!([{"id": 1, "b,c": "2,5"}]));
    let schema = s.get("/_schema/t").json();
    assert_eq!(schema["dialect"]["delimiter"], json!(";"));
    assert_eq!(schema["declared"], json!(true));
    let r = s.post_json("/t", r#"{"b,c":"7"}"#);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["b,c"], json!("7"));
    s.restart();
    assert_eq!(s.get("/t/2").json()["b,c"], json!("7"));
    let after = s.file_after_stop("t");
    assert_eq!(after, "id;b,c\r\n1;2,5\r\n2;7\r\n");

    // A table made by the API after its metadata: its file as declared.
    let (mut s, _tmp) = serve_files(&[(
        "new.csv-metadata.json",
        r#"{"dialect": {"delimiter": ";"}, "tableSchema": {"columns": [{"name": "n", "datatype": "integer"}]}}"#,
    )]);
    assert_eq!(s.post_json("/new", r#"{"n":"x"}"#).status, 400);
    let r = s.post_json("/new", r#"{"n":"5","m":"a,b"}"#);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["n"], json!(5));
    assert_eq!(s.file_after_stop("new"), "id;n;m\n1;5;a,b\n");
}

#[test]
fn a_declared_header_and_quote_character_read_what_detection_refuses() {
    // A first line of numbers: detection refuses to take it as names.
    let text = "1,'a, b',3\n2,'it''s',4\n";
    let doc = json!({"url": "n.csv", "dialect": {"header": false, "quoteChar": "'"}});
    let (mut s, _tmp) = serve_files(&[("n.csv", text), ("n.csv-metadata.json", &doc.to_string())]);
    let r = s.get("/n");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!([{"1": 1, "2": "a, b", "3": 3}, {"1": 2, "2": "it's", "3": 4}])
    );
    let schema = s.get("/_schema/n").json();
    assert_eq!(schema["dialect"]["header"], json!(false));
    assert_eq!(schema["dialect"]["quoteChar"], json!("'"));
    assert_eq!(s.file_after_stop("n"), text);
}

#[test]
fn an_invalid_metadata_file_makes_the_table_broken() {
    let (s, _tmp) = serve_files(&[
        ("t.csv", "id,n\n1,2\n"),
        (
            "t.csv-metadata.json",
            r#"{"tableSchema": {"columns": [{"name": "n", "datatype": "money"}]}}"#,
        ),
        ("u.csv", "id,n\n1,2\n"),
        ("u.csv-metadata.json", "{not json"),
    ]);
    let listed = s.get("/").json();
    for (entry, said) in listed.as_array().unwrap().iter().zip(["money", "not JSON"]) {
        let error = entry["error"].as_str().unwrap_or_default();
        assert!(error.contains("-metadata.json"), "{error}");
        assert!(error.contains(said), "{error}");
    }
    let r = s.get("/t");
    assert_eq!(r.status, 500);
    assert!(r.text().contains("t.csv-metadata.json"), "{}", r.text());
    assert_eq!(s.post_json("/t", r#"{"n":3}"#).status, 409);
    // Removing the declaration repairs it.
    assert_eq!(s.request("DELETE", "/_schema/t", &[], b"").status, 204);
    assert_eq!(s.get("/t").json(), json!([{"id": 1, "n": 2}]));
    assert!(!s.dir.join("t.csv-metadata.json").exists());
    // So does declaring a valid one.
    let doc = json!({"tableSchema": {"columns": [{"name": "n", "datatype": "string"}]}});
    assert_eq!(put_schema(&s, "u", &doc).status, 200);
    assert_eq!(s.get("/u").json(), json!([{"id": 1, "n": "2"}]));
}

#[test]
fn the_schema_is_shown_declared_and_removed_and_survives_a_restart() {
    let (mut s, _tmp) = serve_files(&[("zips.csv", "id,zip,city\n1,00501,Holtsville\n")]);
    // Nothing declared: what is detected.
    let r = s.get("/_schema/zips");
    assert_eq!(r.status, 200, "{}", r.text());
    let shown = r.json();
    assert_eq!(shown["declared"], json!(false));
    assert_eq!(shown["url"], json!("zips.csv"));
    assert_eq!(shown["dialect"]["delimiter"], json!(","));
    assert_eq!(shown["dialect"]["encoding"], json!("utf-8"));
    assert_eq!(shown["tableSchema"]["primaryKey"], json!("id"));
    assert_eq!(
        shown["tableSchema"]["columns"],
        json!([{"name": "id", "datatype": "inferred"}, {"name": "zip", "datatype": "inferred"},
               {"name": "city", "datatype": "inferred"}])
    );
    assert!(r.header("etag").is_none());
    let undeclared_tag = s.get("/zips/1").header("etag").unwrap().to_string();
    // Declared: kept as given (unknown keys too), the table's columns listed.
    let mut doc: Value = serde_json::from_str(&zips_metadata()).unwrap();
    doc["x-note"] = json!("kept");
    let r = put_schema(&s, "zips", &doc);
    assert_eq!(r.status, 200, "{}", r.text());
    let tag = r.header("etag").unwrap().to_string();
    assert_eq!(r.json()["declared"], json!(true));
    assert_eq!(r.json()["x-note"], json!("kept"));
    assert_eq!(
        r.json()["tableSchema"]["columns"][1]["datatype"],
        json!("string")
    );
    let on_disk: Value =
        serde_json::from_str(&fs::read_to_string(s.dir.join("zips.csv-metadata.json")).unwrap())
            .unwrap();
    assert_eq!(on_disk, doc);
    let r = s.get_with("/_schema/zips", &[("If-None-Match", &tag)]);
    assert_eq!(r.status, 304);
    let row = s.get("/zips/1");
    assert_eq!(row.json()["zip"], json!("00501"));
    // Other types, another representation: another tag, which a write's
    // answer and a read agree on.
    let typed_tag = row.header("etag").unwrap().to_string();
    assert_ne!(typed_tag, undeclared_tag);
    let r = s.send_json("PATCH", "/zips/1", r#"{"city":"Holtsville NY"}"#);
    assert_eq!(
        r.header("etag"),
        s.get("/zips/1").header("etag"),
        "{}",
        r.text()
    );
    // What GET shows can be PUT back.
    let shown = s.get("/_schema/zips").json();
    assert_eq!(put_schema(&s, "zips", &shown).status, 200);
    // If-Match names the declaration's version.
    let r = s.request(
        "PUT",
        "/_schema/zips",
        &[("Content-Type", "application/json"), ("If-Match", &tag)],
        doc.to_string().as_bytes(),
    );
    assert_eq!(r.status, 412, "{}", r.text());
    let tag = s.get("/_schema/zips").header("etag").unwrap().to_string();
    let r = s.request(
        "PUT",
        "/_schema/zips",
        &[("Content-Type", "application/json"), ("If-Match", &tag)],
        doc.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    s.restart();
    let shown = s.get("/_schema/zips").json();
    assert_eq!(shown["declared"], json!(true));
    assert_eq!(shown["x-note"], json!("kept"));
    assert_eq!(
        s.post_json("/zips", r#"{"zip":10001}"#).json()["zip"],
        json!("10001")
    );
    // Removed: the typing rule again.
    assert_eq!(s.request("DELETE", "/_schema/zips", &[], b"").status, 204);
    assert!(!s.dir.join("zips.csv-metadata.json").exists());
    assert_eq!(s.get("/zips/2").json()["zip"], json!(10001));
    s.restart();
    assert_eq!(s.get("/_schema/zips").json()["declared"], json!(false));
    assert_eq!(s.get("/_schema/nope").status, 404);
    assert_eq!(s.get("/_schema/no.such").status, 400);
    let r = s.request("POST", "/_schema/zips", &[], b"{}");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD, PUT, DELETE, OPTIONS"));
    let r = s.request(
        "PUT",
        "/_schema/zips",
        &[("Content-Type", "text/csv")],
        b"id\n",
    );
    assert_eq!(r.status, 415, "{}", r.text());
    let r = s.request(
        "PUT",
        "/_schema/zips",
        &[("Content-Type", "application/json")],
        b"{oops",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("not JSON"), "{}", r.text());
}

#[test]
fn nested_json_is_rendered_back_as_json() {
    let mut s = Server::start();
    let r = s.post_json(
        "/posts",
        r#"{"title":"a","author":{"name":"kim","age":30},"tags":["x","y"]}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["author"], json!({"name": "kim", "age": 30}));
    assert_eq!(r.json()["tags"], json!(["x", "y"]));
    let r = s.post_json("/posts", r#"{"title":"b","author":{"name":"ann"}}"#);
    assert_eq!(r.status, 201, "{}", r.text());
    // A string is still a string, in a JSON column too.
    let r = s.post_json("/posts", r#"{"title":"c","author":"nobody"}"#);
    assert_eq!(r.json()["author"], json!("nobody"));
    // The store recorded the columns in the table's metadata.
    let meta: Value =
        serde_json::from_str(&fs::read_to_string(s.dir.join("posts.csv-metadata.json")).unwrap())
            .unwrap();
    assert_eq!(
        meta["tableSchema"]["columns"],
        json!([{"name": "author", "datatype": "json"}, {"name": "tags", "datatype": "json"}])
    );
    s.restart();
    let rows = s.get("/posts").json();
    assert_eq!(rows[0]["author"], json!({"name": "kim", "age": 30}));
    assert_eq!(rows[0]["tags"], json!(["x", "y"]));
    let found = s.get("/posts?author.name=kim").json();
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["title"], json!("a"));
    let sorted = s.get("/posts?_sort=author.name&title_ne=c").json();
    let titles: Vec<&Value> = sorted
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["title"])
        .collect();
    assert_eq!(titles, [&json!("b"), &json!("a")]);
    // NDJSON too; CSV holds the JSON text.
    let lines = s.get("/posts.ndjson").text();
    let first: Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(first["author"]["name"], json!("kim"));
    assert!(s
        .get("/posts.csv")
        .text()
        .contains(r#""{""name"":""kim"",""age"":30}""#));
    // The whole database renders types.
    assert_eq!(s.get("/db").json()["posts"][0]["tags"], json!(["x", "y"]));
}

#[test]
fn the_feed_and_ndjson_render_declared_types() {
    let (s, _tmp) = serve_files(&[
        ("zips.csv", "id,zip,city\n1,00501,Holtsville\n"),
        ("zips.csv-metadata.json", &zips_metadata()),
    ]);
    let since = s.get("/_changes?since=now").json()["last_seq"]
        .as_u64()
        .unwrap();
    let r = s.post_json("/zips", r#"{"zip":"10001","city":"New York"}"#);
    assert_eq!(r.status, 201, "{}", r.text());
    let changes = s.get(&format!("/_changes/zips?since={since}")).json();
    let results = changes["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{changes}");
    assert_eq!(results[0]["row"]["zip"], json!("10001"));
    let all = s.get(&format!("/_changes?since={since}")).json();
    assert_eq!(all["results"][0]["row"]["zip"], json!("10001"));
    let lines = s.get("/zips.ndjson").text();
    let zips: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["zip"].clone())
        .collect();
    assert_eq!(zips, [json!("00501"), json!("10001")]);
}

#[test]
fn a_declaration_survives_a_crash_once_answered() {
    let (mut s, _tmp) = serve_files(&[("zips.csv", "id,zip\n1,00501\n")]);
    let doc = json!({"tableSchema": {"columns": [{"name": "zip", "datatype": "string"}]}});
    assert_eq!(put_schema(&s, "zips", &doc).status, 200);
    let r = s.post_json("/posts", r#"{"author":{"name":"kim"}}"#);
    assert_eq!(r.status, 201, "{}", r.text());
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    s.restart_after_crash();
    assert_eq!(s.get("/_schema/zips").json()["declared"], json!(true));
    assert_eq!(
        s.post_json("/zips", r#"{"zip":10001}"#).json()["zip"],
        json!("10001")
    );
    assert_eq!(s.get("/posts/1").json()["author"], json!({"name": "kim"}));
    // A table made after its metadata file, then a crash before its
    // first file: that file is still written as declared.
    let meta = r#"{"dialect": {"delimiter": ";"}, "tableSchema": {"columns": [{"name": "n", "datatype": "integer"}]}}"#;
    fs::write(s.dir.join("new.csv-metadata.json"), meta).unwrap();
    assert_eq!(s.post_json("/new", r#"{"n":"5","m":"a,b"}"#).status, 201);
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    s.restart_after_crash();
    assert_eq!(s.post_json("/new", r#"{"n":"x"}"#).status, 400);
    assert_eq!(s.get("/new/1").json(), json!({"id": 1, "n": 5, "m": "a,b"}));
    // No temporary file is left beside the table.
    let left: Vec<String> = fs::read_dir(&s.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(s.file_after_stop("new"), "id;n;m\n1;5;a,b\n");
}
