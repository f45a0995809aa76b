//! HTTP semantics: methods and statuses, content negotiation, problem
//! documents, entity tags and conditional requests.

mod common;

use common::Server;
use serde_json::json;

fn people() -> Server {
    let s = Server::start();
    assert_eq!(
        s.post_json("/people", r#"{"name":"kim","zip":"007"}"#)
            .status,
        201
    );
    assert_eq!(
        s.post_json("/people", r#"{"name":"lee","zip":"12345"}"#)
            .status,
        201
    );
    s
}

#[test]
fn root_lists_tables_with_counts_and_columns() {
    let s = people();
    s.post_json("/cities", r#"{"name":"Seoul"}"#);
    let list = s.get("/").json();
    assert_eq!(list[0]["name"], json!("cities"));
    assert_eq!(list[1]["name"], json!("people"));
    assert_eq!(list[1]["rows"], json!(2));
    assert_eq!(list[1]["columns"], json!(["id", "name", "zip"]));
    let csv = s.get_with("/", &[("Accept", "text/csv")]);
    assert!(csv.text().starts_with("name,rows,columns"));
}

#[test]
fn representations_by_accept_and_suffix() {
    let s = people();
    let csv = s.get_with("/people", &[("Accept", "text/csv")]);
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(csv.text(), "id,name,zip\r\n1,kim,007\r\n2,lee,12345\r\n");
    assert_eq!(s.get("/people.csv").text(), csv.text());
    let nd = s.get_with("/people", &[("Accept", "application/x-ndjson")]);
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
    assert_eq!(s.get("/people.json").json(), s.get("/people").json());
    assert_eq!(s.get("/people").header("vary"), Some("Accept"));
    let one = s.get_with("/people/1", &[("Accept", "text/csv")]);
    assert_eq!(one.text(), "id,name,zip\r\n1,kim,007\r\n");
    assert_eq!(s.get("/people/1.csv").text(), one.text());
}

#[test]
fn not_acceptable_is_406() {
    let s = people();
    let r = s.get_with("/people", &[("Accept", "application/xml")]);
    assert_eq!(r.status, 406);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert!(r.json()["detail"].as_str().unwrap().contains("text/csv"));
    assert_eq!(s.get("/people.xml").status, 406);
}

#[test]
fn html_cells_are_escaped() {
    let s = Server::start();
    s.post_json("/t", r#"{"x":"<script>alert(1)</script>"}"#);
    let page = s.get("/t.html").text();
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

#[test]
fn head_is_get_without_body() {
    let s = people();
    for path in ["/", "/people", "/people/1", "/people.csv"] {
        let get = s.get(path);
        let head = s.request("HEAD", path, &[], b"");
        assert_eq!(head.status, 200, "{path}");
        assert_eq!(head.header("etag"), get.header("etag"), "{path}");
        assert_eq!(
            head.header("content-type"),
            get.header("content-type"),
            "{path}"
        );
        assert_eq!(
            head.header("content-length"),
            get.header("content-length"),
            "{path}"
        );
    }
    assert_eq!(s.request("HEAD", "/people/99", &[], b"").status, 404);
    assert_eq!(s.request("HEAD", "/nope", &[], b"").status, 404);
}

#[test]
fn options_and_method_not_allowed() {
    let s = people();
    for (path, allow) in [
        ("/", "GET, HEAD, OPTIONS"),
        ("/people", "GET, HEAD, POST, PUT, DELETE, OPTIONS"),
        ("/people/1", "GET, HEAD, PUT, PATCH, DELETE, OPTIONS"),
    ] {
        let r = s.request("OPTIONS", path, &[], b"");
        assert_eq!(r.status, 204, "{path}");
        assert_eq!(r.header("allow"), Some(allow));
    }
    let r = s.post_json("/", "{}");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let r = s.send_json("PATCH", "/people", "{}");
    assert_eq!(r.status, 405);
    assert!(r.header("allow").unwrap().contains("POST"));
    assert_eq!(s.post_json("/people/1", "{}").status, 405);
    assert_eq!(s.request("TRACE", "/people", &[], b"").status, 405);
    assert_eq!(s.request("BREW", "/people", &[], b"").status, 501);
}

#[test]
fn problem_documents_follow_rfc_9457() {
    let s = people();
    let r = s.get("/people/42");
    assert_eq!(r.status, 404);
    let doc = r.json();
    assert_eq!(doc["status"], json!(404));
    assert_eq!(doc["title"], json!("Not Found"));
    assert_eq!(doc["type"], json!("urn:csvd:problem:no-row"));
    assert!(doc["detail"].as_str().unwrap().contains("42"));
    assert_eq!(s.get("/a/b/c").status, 404);
    let page = s.get_with("/people/42", &[("Accept", "text/html")]);
    assert_eq!(page.status, 404);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(page.text().contains("42"));
}

#[test]
fn length_required_and_too_large() {
    let s = Server::start_with(&["--max-body", "100"]);
    let raw = s.raw(b"POST /t HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n");
    let r = common::Response::parse(&raw, false);
    assert_eq!(r.status, 411);
    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(200));
    let r = s.post_json("/t", &big);
    assert_eq!(r.status, 413);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let chunked = format!(
        "POST /t HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    let r = common::Response::parse(&s.raw(chunked.as_bytes()), false);
    assert_eq!(r.status, 413);
    assert_eq!(s.get("/t").status, 404);
    let small = "POST /t HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n9\r\n{\"a\":\"b\"}\r\n0\r\n\r\n";
    assert_eq!(
        common::Response::parse(&s.raw(small.as_bytes()), false).status,
        201
    );
}

#[test]
fn etags_and_if_none_match() {
    let s = people();
    let first = s.get("/people/1");
    let tag = first.header("etag").unwrap().to_string();
    assert!(
        tag.starts_with('"') && tag.ends_with('"'),
        "strong tag: {tag}"
    );
    let r = s.get_with("/people/1", &[("If-None-Match", &tag)]);
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    let csv_tag = s.get("/people/1.csv").header("etag").unwrap().to_string();
    assert_ne!(csv_tag, tag, "each representation has its own tag");
    let table_tag = s.get("/people").header("etag").unwrap().to_string();
    assert_eq!(
        s.get_with("/people", &[("If-None-Match", &table_tag)])
            .status,
        304
    );
    s.send_json("PATCH", "/people/2", r#"{"name":"park"}"#);
    assert_eq!(
        s.get_with("/people", &[("If-None-Match", &table_tag)])
            .status,
        200
    );
    assert_eq!(
        s.get_with("/people/1", &[("If-None-Match", &tag)]).status,
        304,
        "row 1 did not change"
    );
}

#[test]
fn if_match_prevents_lost_updates() {
    let s = people();
    let tag = s.get("/people/1").header("etag").unwrap().to_string();
    let ok = s.request(
        "PATCH",
        "/people/1",
        &[("Content-Type", "application/json"), ("If-Match", &tag)],
        br#"{"name":"A"}"#,
    );
    assert_eq!(ok.status, 200);
    let new_tag = ok.header("etag").unwrap().to_string();
    assert_ne!(new_tag, tag);
    let stale = s.request(
        "PATCH",
        "/people/1",
        &[("Content-Type", "application/json"), ("If-Match", &tag)],
        br#"{"name":"B"}"#,
    );
    assert_eq!(stale.status, 412);
    assert_eq!(s.get("/people/1").json()["name"], json!("A"));
    let stale_put = s.request(
        "PUT",
        "/people/1",
        &[("Content-Type", "application/json"), ("If-Match", &tag)],
        br#"{"name":"C"}"#,
    );
    assert_eq!(stale_put.status, 412);
    let stale_delete = s.request("DELETE", "/people/1", &[("If-Match", &tag)], b"");
    assert_eq!(stale_delete.status, 412);
    assert_eq!(
        s.request("DELETE", "/people/1", &[("If-Match", &new_tag)], b"")
            .status,
        204
    );
    // If-None-Match: * on PUT creates only.
    let create_only = [("Content-Type", "application/json"), ("If-None-Match", "*")];
    assert_eq!(
        s.request("PUT", "/people/2", &create_only, br#"{"name":"x"}"#)
            .status,
        412
    );
    assert_eq!(
        s.request("PUT", "/people/9", &create_only, br#"{"name":"x"}"#)
            .status,
        201
    );
    // A table's tag guards whole-table writes.
    let table_tag = s.get("/people").header("etag").unwrap().to_string();
    s.post_json("/people", r#"{"name":"new"}"#);
    let r = s.request(
        "PUT",
        "/people",
        &[("Content-Type", "text/csv"), ("If-Match", &table_tag)],
        b"name\nz\n",
    );
    assert_eq!(r.status, 412);
}

#[test]
fn last_modified_and_if_modified_since() {
    let s = people();
    let r = s.get("/people");
    let modified = r.header("last-modified").unwrap().to_string();
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
}

#[test]
fn compressed_answers_carry_their_own_tag() {
    let s = Server::start();
    let rows: Vec<String> = (0..300)
        .map(|i| format!(r#"{{"n":"row number {i}"}}"#))
        .collect();
    s.post_json("/t", &format!("[{}]", rows.join(",")));
    let plain = s.get("/t");
    let gz = s.get_with("/t", &[("Accept-Encoding", "gzip")]);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    let gz_tag = gz.header("etag").unwrap();
    assert!(gz_tag.ends_with("-gzip\""), "{gz_tag}");
    assert_ne!(Some(gz_tag), plain.header("etag"));
    assert_eq!(s.get_with("/t", &[("If-None-Match", gz_tag)]).status, 304);
}

#[test]
fn large_tables_stream_completely() {
    let s = Server::start();
    let mut csv = String::from("id,v\n");
    for i in 1..=5000 {
        csv.push_str(&format!("{i},value {i}\n"));
    }
    assert_eq!(
        s.request(
            "PUT",
            "/big",
            &[("Content-Type", "text/csv")],
            csv.as_bytes()
        )
        .status,
        201
    );
    let r = s.get("/big");
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    let rows = r.json();
    assert_eq!(rows.as_array().unwrap().len(), 5000);
    assert_eq!(rows[4999], json!({"id": 5000, "v": "value 5000"}));
    let text = s.get("/big.csv").text();
    assert_eq!(text.lines().count(), 5001);
    assert_eq!(s.get("/big.ndjson").text().lines().count(), 5000);
    assert!(s.get("/big.html").text().ends_with("</html>\n"));
}

#[test]
fn health() {
    let s = Server::start();
    assert_eq!(s.get("/_health").json(), json!({"status": "ok"}));
}

#[test]
fn failed_preconditions_say_what_happened() {
    let s = people();
    let detail = |r: &common::Response| {
        assert_eq!(r.status, 412, "{}", r.text());
        r.json()["detail"].as_str().unwrap().to_string()
    };
    let create_only = [("Content-Type", "application/json"), ("If-None-Match", "*")];
    let r = s.request("PUT", "/people/1", &create_only, br#"{"name":"x"}"#);
    let said = detail(&r);
    assert!(
        said.contains("row \"1\" of \"people\" already exists"),
        "{said}"
    );
    assert!(!said.contains("changed"), "{said}");
    let r = s.request(
        "PUT",
        "/people",
        &[("Content-Type", "text/csv"), ("If-None-Match", "*")],
        b"name\nx\n",
    );
    let said = detail(&r);
    assert!(said.contains("table \"people\" already exists"), "{said}");

    let tag = s.get("/people/1").header("etag").unwrap().to_string();
    s.send_json("PATCH", "/people/1", r#"{"name":"new"}"#);
    let stale = [
        ("Content-Type", "application/json"),
        ("If-Match", tag.as_str()),
    ];
    let said = detail(&s.request("PATCH", "/people/1", &stale, br#"{"name":"b"}"#));
    assert!(
        said.contains("row \"1\" of \"people\" has changed"),
        "{said}"
    );
    let said = detail(&s.request("PUT", "/people/7", &stale, br#"{"name":"b"}"#));
    assert!(
        said.contains("row \"7\" of \"people\" does not exist"),
        "{said}"
    );
    let said = detail(&s.request("DELETE", "/people/1", &[("If-Match", &tag)], b""));
    assert!(said.contains("has changed"), "{said}");
    let current = s.get("/people/2").header("etag").unwrap().to_string();
    let same = [
        ("Content-Type", "application/json"),
        ("If-None-Match", current.as_str()),
    ];
    let said = detail(&s.request("PUT", "/people/2", &same, br#"{"name":"b"}"#));
    assert!(said.contains("If-None-Match names"), "{said}");
}

#[test]
fn json_arrays_have_one_row_or_table_a_line() {
    let s = people();
    assert_eq!(
        s.get("/people").text(),
        "[\n{\"id\":1,\"name\":\"kim\",\"zip\":\"007\"},\n{\"id\":2,\"name\":\"lee\",\"zip\":12345}\n]\n"
    );
    let list = s.get("/").text();
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 3, "{list}");
    assert_eq!((lines[0], lines[2]), ("[", "]"));
    assert!(
        lines[1].starts_with("{\"name\":\"people\",\"rows\":2,"),
        "{list}"
    );
    let empty = Server::start();
    assert_eq!(empty.get("/").text(), "[]\n");
}
