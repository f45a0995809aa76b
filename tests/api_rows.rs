//! Rows and tables through the HTTP API: create, read, replace, change,
//! delete; ids; growing columns; the typing rule; exact round trips.

mod common;

use common::Server;
use serde_json::json;

#[test]
fn post_creates_table_and_row_with_location() {
    let mut s = Server::start();
    let r = s.post_json("/people", r#"{"name":"kim","age":30}"#);
    assert_eq!(r.status, 201);
    assert_eq!(r.header("location"), Some("/people/1"));
    assert_eq!(r.json(), json!({"id": 1, "name": "kim", "age": 30}));
    assert!(r.header("etag").is_some());
    let r = s.post_json("/people", r#"{"name":"lee"}"#);
    assert_eq!(r.header("location"), Some("/people/2"));
    assert_eq!(
        s.get("/people/2").json(),
        json!({"id": 2, "name": "lee", "age": ""})
    );
    assert_eq!(
        s.get("/people").json(),
        json!([{"id": 1, "name": "kim", "age": 30}, {"id": 2, "name": "lee", "age": ""}])
    );
    assert_eq!(
        s.file_after_stop("people"),
        "id,name,age\n1,kim,30\n2,lee,\n"
    );
}

#[test]
fn ids_are_the_largest_integer_plus_one_or_supplied() {
    let s = Server::start();
    s.post_json("/t", r#"{"id": 10, "a": "x"}"#);
    s.post_json("/t", r#"{"id": "abc", "a": "y"}"#);
    s.post_json("/t", r#"{"id": "007", "a": "z"}"#);
    let r = s.post_json("/t", r#"{"a": "w"}"#);
    assert_eq!(r.json()["id"], json!(11));
    let taken = s.post_json("/t", r#"{"id": "abc"}"#);
    assert_eq!(taken.status, 409);
    assert_eq!(
        taken.header("content-type"),
        Some("application/problem+json")
    );
    assert!(taken.json()["detail"].as_str().unwrap().contains("abc"));
    // The id "007" keeps its zeros and stays a string.
    assert_eq!(s.get("/t/007").json()["id"], json!("007"));
}

#[test]
fn bulk_post_from_json_array_and_csv_is_all_or_nothing() {
    let s = Server::start();
    let r = s.post_json("/t", r#"[{"a":"1"},{"a":"2"}]"#);
    assert_eq!(r.status, 201);
    assert_eq!(r.json().as_array().unwrap().len(), 2);
    let r = s.request(
        "POST",
        "/t",
        &[("Content-Type", "text/csv")],
        b"a,b\n3,x\n4,y\n",
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.json()[1], json!({"id": 4, "a": 4, "b": "y"}));
    let r = s.post_json("/t", r#"[{"a":"5"},{"id":1,"a":"dup"}]"#);
    assert_eq!(r.status, 409);
    assert_eq!(
        s.get("/t").json().as_array().unwrap().len(),
        4,
        "nothing of a refused batch is written"
    );
}

#[test]
fn put_row_creates_or_replaces() {
    let s = Server::start();
    let r = s.send_json("PUT", "/t/k1", r#"{"a":"x","b":"y"}"#);
    assert_eq!(r.status, 201);
    assert_eq!(r.header("location"), Some("/t/k1"));
    let r = s.send_json("PUT", "/t/k1", r#"{"a":"z"}"#);
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"id": "k1", "a": "z", "b": ""}));
    let r = s.send_json("PUT", "/t/k1", r#"{"id":"other","a":"z"}"#);
    assert_eq!(r.status, 400);
}

#[test]
fn patch_changes_given_fields_and_grows_columns() {
    let s = Server::start();
    s.post_json("/t", r#"{"a":"x","b":"y"}"#);
    let r = s.send_json("PATCH", "/t/1", r#"{"b":"z","c":true}"#);
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"id": 1, "a": "x", "b": "z", "c": true}));
    assert_eq!(s.send_json("PATCH", "/t/9", r#"{"b":"z"}"#).status, 404);
    assert_eq!(s.send_json("PATCH", "/none/1", r#"{"b":"z"}"#).status, 404);
}

#[test]
fn delete_row_and_table() {
    let mut s = Server::start();
    s.post_json("/t", r#"{"a":"x"}"#);
    assert_eq!(s.request("DELETE", "/t/1", &[], b"").status, 204);
    assert_eq!(s.get("/t/1").status, 404);
    assert_eq!(s.request("DELETE", "/t/1", &[], b"").status, 404);
    assert_eq!(s.request("DELETE", "/t", &[], b"").status, 204);
    assert_eq!(s.get("/t").status, 404);
    assert_eq!(s.request("DELETE", "/t", &[], b"").status, 404);
    s.restart();
    assert!(!s.dir.join("t.csv").exists());
    assert_eq!(s.get("/t").status, 404);
}

#[test]
fn put_table_replaces_atomically() {
    let s = Server::start();
    let r = s.request(
        "PUT",
        "/t",
        &[("Content-Type", "text/csv")],
        b"name,zip\nkim,02134\nlee,\n",
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["rows"], json!(2));
    assert_eq!(r.json()["columns"], json!(["id", "name", "zip"]));
    let r = s.send_json("PUT", "/t", r#"[{"x":"1"}]"#);
    assert_eq!(r.status, 200);
    assert_eq!(s.get("/t").json(), json!([{"id": 1, "x": 1}]));
    let bad = s.send_json("PUT", "/t", r#"[{"id":"1"},{"id":"1"}]"#);
    assert_eq!(bad.status, 409);
    assert_eq!(
        s.get("/t").json(),
        json!([{"id": 1, "x": 1}]),
        "a refused replace leaves the table"
    );
}

#[test]
fn typing_rule_and_exact_round_trips() {
    let mut s = Server::start();
    let body = json!({
        "n": 30, "neg": -2.5, "zip": "007", "exp": "1e5", "t": true, "f": "false",
        "comma": "a,b", "quote": "say \"hi\"", "nl": "two\nlines", "cr": "a\r\nb",
        "uni": "한국어 ünï 🎉", "empty": "", "null": null, "sp": "  padded  ",
        "big": "12345678901234567890", "nested": {"k": [1, 2]}
    });
    let r = s.post_json("/t", &body.to_string());
    assert_eq!(r.status, 201);
    let got = s.get("/t/1").json();
    assert_eq!(got["n"], json!(30));
    assert_eq!(got["neg"], json!(-2.5));
    assert_eq!(got["zip"], json!("007"));
    assert_eq!(got["exp"], json!("1e5"));
    assert_eq!(got["t"], json!(true));
    assert_eq!(got["f"], json!(false));
    for key in ["comma", "quote", "nl", "cr", "uni", "empty", "sp", "big"] {
        assert_eq!(got[key], body[key], "{key}");
    }
    assert_eq!(got["null"], json!(""));
    // Written as JSON: recorded as a JSON column and rendered back as JSON.
    assert_eq!(got["nested"], json!({"k": [1, 2]}));
    // The same cells survive a restart through the CSV file.
    s.restart();
    assert_eq!(s.get("/t/1").json(), got);
    // ...and a trip through the write-ahead log alone.
    s.send_json("PUT", "/t/2", &body.to_string());
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    s.restart_after_crash();
    let mut again = s.get("/t/2").json();
    again["id"] = json!(1);
    assert_eq!(again, got);
}

#[test]
fn body_formats_form_and_key_value() {
    let s = Server::start();
    let form = s.request(
        "POST",
        "/t",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"name=kim+lee&city=%EC%84%9C%EC%9A%B8",
    );
    assert_eq!(form.status, 201);
    assert_eq!(form.json()["city"], json!("서울"));
    let kv = s.request(
        "POST",
        "/t",
        &[("Content-Type", "text/plain")],
        b"name: park\ncity=Busan\n",
    );
    assert_eq!(kv.status, 201);
    assert_eq!(kv.json()["name"], json!("park"));
    assert_eq!(kv.json()["city"], json!("Busan"));
    let none = s.request("POST", "/t", &[], b"name:choi");
    assert_eq!(none.status, 201);
    let nd = s.request(
        "POST",
        "/t",
        &[("Content-Type", "application/x-ndjson")],
        b"{\"name\":\"a\"}\n{\"name\":\"b\"}\n",
    );
    assert_eq!(nd.status, 201);
    assert_eq!(s.get("/t").json().as_array().unwrap().len(), 5);
}

#[test]
fn bad_bodies_say_what_is_wrong() {
    let s = Server::start();
    let cases: &[(&str, &[u8], u16, &str)] = &[
        ("application/json", b"{\"a\": 1,,}", 400, "line 1"),
        ("application/json", b"[1, 2]", 400, "element 1"),
        ("application/json", b"\"text\"", 400, "object"),
        ("text/csv", b"a,b\n1,2,3\n", 400, "line 2"),
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
    ];
    for (content_type, body, status, needle) in cases {
        let r = s.request("POST", "/t", &[("Content-Type", content_type)], body);
        assert_eq!(
            r.status,
            *status,
            "{content_type} {:?}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        let detail = r.json()["detail"].as_str().unwrap().to_string();
        assert!(
            detail.contains(needle),
            "{detail:?} should mention {needle:?}"
        );
    }
    assert_eq!(s.get("/t").status, 404, "no failed write created the table");
}

#[test]
fn invalid_table_names_never_touch_the_disk() {
    let s = Server::start();
    for path in [
        "/_x",
        "/a%20b",
        "/%2e%2e",
        "/..%2Fetc",
        "/a%2Fb/1",
        &format!("/{}", "x".repeat(65)),
    ] {
        let r = s.post_json(path, r#"{"a":1}"#);
        assert!(
            matches!(r.status, 400 | 404 | 405),
            "{path}: {} {}",
            r.status,
            r.text()
        );
        let put = s.send_json("PUT", &format!("{path}/1"), r#"{"a":1}"#);
        assert!(
            matches!(put.status, 400 | 404),
            "PUT {path}/1: {}",
            put.status
        );
    }
    let entries: Vec<_> = std::fs::read_dir(&s.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != ".csvd")
        .collect();
    assert!(entries.is_empty(), "{entries:?}");
}

#[test]
fn concurrent_writers_lose_nothing() {
    let mut s = Server::start();
    std::thread::scope(|scope| {
        for t in 0..8 {
            let s = &s;
            scope.spawn(move || {
                for i in 0..25 {
                    let r = s.post_json("/t", &format!(r#"{{"w":"{t}-{i}"}}"#));
                    assert_eq!(r.status, 201);
                }
            });
        }
    });
    let rows = s.get("/t").json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 200);
    let mut ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 200, "every id is unique");
    assert_eq!(s.file_after_stop("t").lines().count(), 201);
}

#[test]
fn prefer_return_minimal_drops_the_echo() {
    let s = Server::start();
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
    assert!(r.header("etag").is_some());
    assert_eq!(s.get("/t").json().as_array().unwrap().len(), 3);
    assert_eq!(s.get("/t/1").json()["a"], json!("x"));
}

#[test]
fn curl_habits_work() {
    let s = Server::start();
    // `curl -d '{...}'` labels JSON as a form.
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let r = s.request("POST", "/people", &form, br#"{"name":"kim"}"#);
    assert_eq!(r.status, 201);
    assert_eq!(r.json(), json!({"id": 1, "name": "kim"}));
    // A trailing slash names the same table.
    assert_eq!(s.get("/people/").json(), s.get("/people").json());
}

#[test]
fn csv_errors_name_the_physical_line_whatever_the_line_ends() {
    let s = Server::start();
    let bodies: &[(&[u8], &str)] = &[
        (b"a,b\n1,2\n3,4\n5,6,7\n", "line 4: 3 fields"),
        (b"a,b\r\n1,2\r\n3,4\r\n5,6,7\r\n", "line 4: 3 fields"),
        // A quoted newline is a line of the file too.
        (b"a,b\r\n1,\"x\r\ny\"\r\n5,6,7\r\n", "line 4: 3 fields"),
        (b"a,b\n1,\"x\ny\"\n5,6,7\n", "line 4: 3 fields"),
        (b"a,b\r1,2\r5,6,7\r", "line 3: 3 fields"),
        // A spreadsheet's semicolon export whose rows cannot tell.
        (
            b"name;age,years\r\n",
            "commas or semicolons read its header equally well",
        ),
        (
            b"name\r\nkim,30\r\n",
            "line 2: 2 fields, but the header names 1 column",
        ),
    ];
    for (body, needle) in bodies {
        for method in ["POST", "PUT"] {
            let r = s.request(method, "/t", &[("Content-Type", "text/csv")], body);
            assert_eq!(
                r.status,
                400,
                "{method} {:?}",
                String::from_utf8_lossy(body)
            );
            let detail = r.json()["detail"].as_str().unwrap().to_string();
            assert!(
                detail.contains(needle),
                "{method} {:?}: {detail:?} should say {needle:?}",
                String::from_utf8_lossy(body)
            );
            assert!(!detail.contains("1 columns"), "{detail}");
        }
    }
    // A body said to be UTF-8 that is not is told where (one that says no
    // charset is read in the encoding detected, as a table file is).
    let r = s.request(
        "POST",
        "/t",
        &[("Content-Type", "text/csv; charset=utf-8")],
        b"a\r\n\xff\r\n",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("line 2: field 1 is not valid UTF-8"),
        "{}",
        r.text()
    );
}

/// A read of a row by an address written plainly is answered without the
/// router; the same address with an escape goes through it. Both must say
/// the same thing, in every format, for HEAD as for GET, for a hit, a
/// conditional request and a miss.
#[test]
fn a_row_reads_the_same_whichever_way_its_address_is_written() {
    let s = Server::start();
    s.post_json("/people", r#"{"id":7,"name":"Kim \"K\" Lee","zip":"007"}"#);
    s.post_json("/people", r#"{"id":8,"name":"Émile","zip":"75001"}"#);
    let tag = s.get("/people/7").header("etag").unwrap().to_string();
    type Headers<'a> = &'a [(&'a str, &'a str)];
    let cases: &[(&str, &str, Headers)] = &[
        ("GET", "7", &[]),
        ("HEAD", "7", &[]),
        ("GET", "8", &[("Accept", "text/csv")]),
        ("GET", "8", &[("Accept-Encoding", "gzip")]),
        ("HEAD", "8", &[("Accept", "application/x-ndjson")]),
        ("GET", "7.csv", &[]),
        ("GET", "7", &[("If-None-Match", &tag)]),
        ("HEAD", "7", &[("If-None-Match", &tag)]),
        ("GET", "9", &[]),
        ("HEAD", "9", &[]),
    ];
    let without_date = |r: &common::Response| {
        let mut headers: Vec<_> = r
            .headers
            .iter()
            .filter(|(k, _)| k != "date")
            .cloned()
            .collect();
        headers.sort();
        headers
    };
    for &(method, id, headers) in cases {
        let plain = s.request(method, &format!("/people/{id}"), headers, b"");
        // `%37` is `7`, and so on: the same id, routed.
        let escaped: String = id.bytes().map(|b| format!("%{b:02X}")).collect();
        let routed = s.request(method, &format!("/people/{escaped}"), headers, b"");
        let case = format!("{method} /people/{id} {headers:?}");
        assert_eq!(plain.status, routed.status, "{case}");
        if plain.status == 404 {
            assert_eq!(
                plain.header("content-type"),
                routed.header("content-type"),
                "{case}"
            );
            if method == "GET" {
                assert_eq!(plain.json()["type"], routed.json()["type"], "{case}");
                assert!(
                    plain.json()["detail"].as_str().unwrap().contains(id),
                    "{case}"
                );
            }
            continue;
        }
        assert_eq!(without_date(&plain), without_date(&routed), "{case}");
        assert_eq!(plain.body, routed.body, "{case}");
        if method == "HEAD" {
            assert!(plain.header("content-length").is_some(), "{case}");
        }
    }
    // The row itself, exactly as stored.
    let row = s.get("/people/7").json();
    assert_eq!(row, json!({"id": 7, "name": "Kim \"K\" Lee", "zip": "007"}));
}
