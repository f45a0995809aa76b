//! Declared columns on the PostgreSQL backend: the same `/_schema/<t>`
//! as on a data directory, kept in the database, so every instance types
//! rows and checks writes alike; columns written as JSON are recorded.
//!
//! Every test here skips loudly without PostgreSQL (and fails instead when
//! `CSVD_REQUIRE_POSTGRES=1`, as in CI).

mod common;

use common::{pg, Server, BIN};
use serde_json::{json, Value};

fn database() -> Option<String> {
    Some(pg::available()?.fresh_database())
}

fn put_schema(s: &Server, table: &str, doc: &Value) -> common::Response {
    s.send_json("PUT", &format!("/_schema/{table}"), &doc.to_string())
}

#[test]
fn declared_columns_are_kept_in_the_database() {
    let Some(url) = database() else { return };
    let mut a = Server::start_source(&url, &[]);
    let b = Server::start_source(&url, &[]);
    assert_eq!(a.post_json("/zips", r#"{"zip":"00501"}"#).status, 201);
    assert_eq!(a.get("/zips/1").json()["zip"], json!("00501"));
    // Undeclared: the typing rule.
    assert_eq!(
        a.post_json("/zips", r#"{"zip":"10001"}"#).json()["zip"],
        json!(10001)
    );
    let shown = a.get("/_schema/zips").json();
    assert_eq!(shown["declared"], json!(false));
    assert_eq!(
        shown["tableSchema"]["columns"],
        json!([{"name": "id", "datatype": "inferred"}, {"name": "zip", "datatype": "inferred"}])
    );
    let doc = json!({
        "@context": "http://www.w3.org/ns/csvw",
        "tableSchema": {"columns": [
            {"name": "zip", "datatype": "string", "required": true},
            {"name": "n", "datatype": "integer"}
        ]},
        "x-note": "kept"
    });
    let r = put_schema(&a, "zips", &doc);
    assert_eq!(r.status, 200, "{}", r.text());
    let tag = r.header("etag").unwrap().to_string();
    // Every instance renders and checks by it.
    assert_eq!(b.get("/zips/2").json()["zip"], json!("10001"));
    let r = b.post_json("/zips", r#"{"zip":10002,"n":"7"}"#);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["zip"], json!("10002"));
    assert_eq!(r.json()["n"], json!(7));
    for body in [r#"{"zip":"1","n":"x"}"#, r#"{"n":1}"#] {
        let r = b.post_json("/zips", body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(r.text().contains("nothing was written"), "{}", r.text());
    }
    let r = a.post_json("/zips", r#"[{"zip":"1"},{"zip":"2","n":1.5}]"#);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("record 2 of the body"), "{}", r.text());
    let r = a.send_json("PATCH", "/zips/1", r#"{"n":"many"}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(a.get("/zips").json().as_array().unwrap().len(), 3);
    // A declaration the rows break is refused.
    let bad = json!({"tableSchema": {"columns": [{"name": "zip", "datatype": "boolean"}]}});
    let r = put_schema(&a, "zips", &bad);
    assert_eq!(r.status, 400, "{}", r.text());
    let detail = r.json()["detail"].as_str().unwrap().to_string();
    assert!(detail.contains("row 1 (id \"1\")"), "{detail}");
    // If-Match against the declaration's version.
    let r = a.request(
        "PUT",
        "/_schema/zips",
        &[
            ("Content-Type", "application/json"),
            ("If-Match", "\"0000000000000001\""),
        ],
        doc.to_string().as_bytes(),
    );
    assert_eq!(r.status, 412, "{}", r.text());
    assert_eq!(b.get("/_schema/zips").header("etag"), Some(tag.as_str()));
    // A restart keeps it.
    a.restart();
    let shown = a.get("/_schema/zips").json();
    assert_eq!(shown["declared"], json!(true));
    assert_eq!(shown["x-note"], json!("kept"));
    // Removed: the typing rule again.
    assert_eq!(a.request("DELETE", "/_schema/zips", &[], b"").status, 204);
    assert_eq!(b.get("/zips/2").json()["zip"], json!(10001));
    assert_eq!(a.get("/_schema/nope").status, 404);
}

#[test]
fn nested_json_is_recorded_in_the_database() {
    let Some(url) = database() else { return };
    let mut s = Server::start_source(&url, &[]);
    let since = s.get("/_changes?since=now").json()["last_seq"]
        .as_u64()
        .unwrap();
    let r = s.post_json(
        "/posts",
        r#"{"title":"a","author":{"name":"kim"},"tags":[1,2]}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["author"], json!({"name": "kim"}));
    s.post_json("/posts", r#"{"title":"b","author":{"name":"ann"}}"#);
    s.restart();
    let rows = s.get("/posts").json();
    assert_eq!(rows[0]["tags"], json!([1, 2]));
    assert_eq!(
        s.get("/posts?author.name=kim").json()[0]["title"],
        json!("a")
    );
    let sorted = s.get("/posts?_sort=author.name").json();
    assert_eq!(sorted[0]["title"], json!("b"));
    let lines = s.get("/posts.ndjson").text();
    let first: Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(first["author"]["name"], json!("kim"));
    let changes = s.get(&format!("/_changes/posts?since={since}")).json();
    assert_eq!(
        changes["results"][1]["row"]["author"],
        json!({"name": "ann"})
    );
    let shown = s.get("/_schema/posts").json();
    let author = &shown["tableSchema"]["columns"][2];
    assert_eq!(author, &json!({"name": "author", "datatype": "json"}));
}

#[test]
fn copy_carries_declared_columns_both_ways() {
    let Some(url) = database() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("zips.csv"), "id;zip\n1;00501\n").unwrap();
    let doc = json!({"dialect": {"delimiter": ";"},
                     "tableSchema": {"columns": [{"name": "zip", "datatype": "string"}]}});
    std::fs::write(dir.path().join("zips.csv-metadata.json"), doc.to_string()).unwrap();
    let copy = |from: &str, to: &str| {
        let out = std::process::Command::new(BIN)
            .args(["copy", from, to])
            .output()
            .expect("csvd copy");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    copy(dir.path().to_str().unwrap(), &url);
    let s = Server::start_source(&url, &[]);
    let shown = s.get("/_schema/zips").json();
    assert_eq!(shown["declared"], json!(true));
    assert_eq!(
        shown["tableSchema"]["columns"][1]["datatype"],
        json!("string")
    );
    assert_eq!(
        s.post_json("/zips", r#"{"zip":10001}"#).json()["zip"],
        json!("10001")
    );
    drop(s);
    let back = tempfile::tempdir().unwrap();
    copy(&url, back.path().to_str().unwrap());
    let meta: Value = serde_json::from_str(
        &std::fs::read_to_string(back.path().join("zips.csv-metadata.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["tableSchema"], doc["tableSchema"]);
    // The destination writes its files its own way: no dialect is carried.
    assert!(meta.get("dialect").is_none(), "{meta}");
    assert_eq!(
        std::fs::read_to_string(back.path().join("zips.csv")).unwrap(),
        "id,zip\n1,00501\n2,10001\n"
    );
}
