//! json-server's db.json: `csvd copy` both ways, `csvd serve db.json` (its
//! data kept in `db.csvd/` beside it), singular resources (in a db.json, in
//! a plain data directory and on PostgreSQL) and `--routes` mistakes.

mod common;

use std::path::Path;
use std::process::Command;

use common::{pg, Server, BIN};
use serde_json::{json, Value};

/// A typical db.json: tables of rows and a singular resource.
fn typical() -> Value {
    json!({
        "posts": [
            {"id": 1, "title": "json-server", "author": "typicode", "views": 10, "draft": false, "tags": ["mock", "rest"]},
            {"id": 2, "title": "csvd", "author": "kim", "views": 2.5, "draft": true, "tags": []},
            {"id": "x7", "title": "text id, \"quotes\", commas", "author": "lee", "views": 0, "draft": false, "tags": [{"n": 1}]}
        ],
        "comments": [
            {"id": 1, "body": "some comment", "postId": 1},
            {"id": 2, "body": "zip 007 stays text", "postId": 1}
        ],
        "profile": {"name": "typicode", "zip": "007", "address": {"city": "Seoul"}},
        "settings": {"id": 9, "theme": "dark"}
    })
}

fn copy(from: &Path, to: &Path) -> std::process::Output {
    Command::new(BIN)
        .arg("copy")
        .arg(from)
        .arg(to)
        .output()
        .expect("run csvd copy")
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("JSON")
}

#[test]
fn copy_round_trips_a_db_json() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db.json");
    std::fs::write(&db, serde_json::to_string_pretty(&typical()).unwrap()).unwrap();
    let dir = tmp.path().join("data");
    let out = copy(&db, &dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The rows are CSV files; the singular resource is a table of one row.
    let posts = std::fs::read_to_string(dir.join("posts.csv")).unwrap();
    assert!(posts.starts_with("id,title,author,views,draft,tags\n1,json-server,"));
    let profile = std::fs::read_to_string(dir.join("profile.csv")).unwrap();
    assert_eq!(
        profile,
        "id,name,zip,address\n1,typicode,007,\"{\"\"city\"\":\"\"Seoul\"\"}\"\n"
    );
    let back = tmp.path().join("back.json");
    let out = copy(&dir, &back);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(read_json(&back), typical());
    // Written as json-server writes it: two-space indents.
    assert!(std::fs::read_to_string(&back)
        .unwrap()
        .contains("\n  \"comments\": [\n    {"));
}

#[test]
fn copy_refuses_what_is_not_a_db_json() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db.json");
    let dir = tmp.path().join("data");
    for (text, said) in [
        (
            r#"{"posts": [1, 2]}"#,
            "\"posts\"[0] is a number, not an object",
        ),
        (r#"{"count": 3}"#, "\"count\" is a number"),
        (r#"{"bad name": []}"#, "\"bad name\""),
        ("{", "not valid JSON"),
    ] {
        std::fs::write(&db, text).unwrap();
        let out = copy(&db, &dir);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text}");
        assert!(stderr.contains(said), "{text}: {stderr}");
        assert!(!dir.join("posts.csv").exists());
    }
}

#[test]
fn serve_db_json_keeps_the_data_beside_it() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db.json");
    let original = serde_json::to_string_pretty(&typical()).unwrap();
    std::fs::write(&db, &original).unwrap();
    let mut s = Server::start_source(db.to_str().unwrap(), &[]);
    assert_eq!(s.get("/db").json(), typical());
    assert_eq!(
        s.get("/profile").json(),
        json!({"name": "typicode", "zip": "007", "address": {"city": "Seoul"}})
    );
    let r = s.send_json("PATCH", "/profile", r#"{"zip":"04524","age":3}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"name": "typicode", "zip": "04524", "address": {"city": "Seoul"}, "age": 3})
    );
    assert_eq!(
        s.post_json("/posts", r#"{"title":"new"}"#).json()["id"],
        json!(3)
    );
    // The data is in the directory beside it; the JSON file is left alone.
    s.restart();
    assert_eq!(std::fs::read_to_string(&db).unwrap(), original);
    assert_eq!(s.get("/profile").json()["age"], json!(3));
    assert_eq!(s.get("/posts/3").json()["title"], json!("new"));
    let status = s.stop();
    assert!(status.success());
    assert!(tmp.path().join("db.csvd").join("posts.csv").is_file());

    // The JSON changed since: refused, nothing overwritten, and told what to do.
    std::fs::write(&db, r#"{"posts": []}"#).unwrap();
    let out = Command::new(BIN)
        .arg("serve")
        .arg(&db)
        .args(["--bind", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("has changed since its data was last in") && stderr.contains("csvd copy"),
        "{stderr}"
    );
    let posts = std::fs::read_to_string(tmp.path().join("db.csvd").join("posts.csv")).unwrap();
    assert!(posts.contains("new"), "{posts}");
}

#[test]
fn write_json_writes_the_file_back_at_shutdown() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db.json");
    std::fs::write(&db, typical().to_string()).unwrap();
    let mut s = Server::start_source(db.to_str().unwrap(), &["--write-json"]);
    let r = s.send_json("PUT", "/profile", r#"{"name":"kim"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.send_json("DELETE", "/posts/2", "").status, 204);
    assert!(s.stop().success());
    let written = read_json(&db);
    assert_eq!(written["profile"], json!({"name": "kim"}));
    assert_eq!(written["posts"].as_array().unwrap().len(), 2);
    assert_eq!(written["settings"], json!({"id": 9, "theme": "dark"}));
    // In step again: the next start serves the directory.
    let mut again = Server::start_source(db.to_str().unwrap(), &[]);
    assert_eq!(again.get("/profile").json(), json!({"name": "kim"}));
    assert!(again.stop().success());
}

#[test]
fn singular_resources_in_a_data_directory() {
    let s = Server::start();
    // A PUT of one object to a table that does not exist makes one.
    let r = s.send_json("PUT", "/me", r#"{"name":"kim","tags":["a"]}"#);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("location"), Some("/me"));
    assert_eq!(s.get("/me").json(), json!({"name": "kim", "tags": ["a"]}));
    let r = s.send_json("PATCH", "/me", r#"{"age":30}"#);
    assert_eq!(r.json(), json!({"name": "kim", "tags": ["a"], "age": 30}));
    let r = s.send_json("PUT", "/me", r#"[{"name":"a"}]"#);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("one JSON object"), "{}", r.text());
    assert_eq!(s.post_json("/me", r#"{"name":"b"}"#).status, 404);
    assert_eq!(s.send_json("DELETE", "/me", "").status, 404);
    assert_eq!(s.get("/me/1").status, 404);
    assert_eq!(s.get("/me").json()["age"], json!(30));
    // Its table, as CSV.
    assert_eq!(
        s.get("/me.csv").text(),
        "id,name,tags,age\r\n1,kim,\"[\"\"a\"\"]\",30\r\n"
    );
    // A PUT of an object to a table of rows still replaces its rows.
    assert_eq!(s.post_json("/people", r#"{"name":"a"}"#).status, 201);
    let r = s.send_json("PUT", "/people", r#"{"name":"b"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.get("/people").json(), json!([{"id": 1, "name": "b"}]));
    assert_eq!(
        s.get("/db").json(),
        json!({"me": {"name": "kim", "tags": ["a"], "age": 30}, "people": [{"id": 1, "name": "b"}]})
    );
}

#[test]
fn singular_resources_on_postgresql() {
    let Some(pg) = pg::available() else { return };
    let url = pg.fresh_database();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db.json");
    std::fs::write(&db, typical().to_string()).unwrap();
    let out = Command::new(BIN)
        .arg("copy")
        .arg(&db)
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut s = Server::start_source(&url, &[]);
    assert_eq!(s.get("/db").json(), typical());
    let r = s.send_json("PATCH", "/settings", r#"{"theme":"light"}"#);
    assert_eq!(r.json(), json!({"id": 9, "theme": "light"}));
    assert_eq!(
        s.get("/profile").json(),
        json!({"name": "typicode", "zip": "007", "address": {"city": "Seoul"}})
    );
    assert!(s.stop().success());
    let back = tmp.path().join("back.json");
    let out = Command::new(BIN)
        .arg("copy")
        .arg(&url)
        .arg(&back)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        read_json(&back)["settings"],
        json!({"id": 9, "theme": "light"})
    );
    assert_eq!(read_json(&back)["profile"], typical()["profile"]);
}

#[test]
fn routes_are_rewritten_and_a_bad_file_stops_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let routes = tmp.path().join("routes.json");
    std::fs::write(&routes, r#"{"/api/*": "/$1", "/p/:id": "/people/:id"}"#).unwrap();
    let s = Server::start_with(&["--routes", routes.to_str().unwrap()]);
    assert_eq!(s.post_json("/api/people", r#"{"name":"kim"}"#).status, 201);
    assert_eq!(
        s.get("/api/people?name=kim").json()[0]["name"],
        json!("kim")
    );
    assert_eq!(s.get("/p/1").json()["name"], json!("kim"));
    assert_eq!(
        s.get("/__rules").json(),
        json!({"/api/*": "/$1", "/p/:id": "/people/:id"})
    );
    drop(s);
    std::fs::write(&routes, r#"{"/ok/*": "/$1", "/p/:id": "/people/:name"}"#).unwrap();
    let out = Command::new(BIN)
        .arg("serve")
        .arg(tmp.path().join("data"))
        .args(["--bind", "127.0.0.1:0", "--routes"])
        .arg(&routes)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("routes.json")
            && stderr.contains("rule \"/p/:id\"")
            && stderr.contains(":name"),
        "{stderr}"
    );
}
