//! CSV files as people have them: other delimiters, `sep=` lines, byte-order
//! marks, legacy encodings and UTF-16 are read, and every rewrite keeps
//! them byte for byte; what cannot be told apart is refused, not guessed.

mod common;

use std::fs;

use common::Server;
use serde_json::json;

/// Starts a server on a directory holding `file` with `bytes`; waits
/// (boundedly) until a file not named `<table>.csv` is found too.
fn serve(file: &str, bytes: &[u8]) -> Server {
    let s = Server::start();
    fs::write(s.dir.join(file), bytes).unwrap();
    let table = file.rsplit_once('.').unwrap().0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while s.get(&format!("/{table}")).status == 404 {
        assert!(std::time::Instant::now() < deadline, "{file} never found");
    }
    s
}

/// Stops the server and reads a file's bytes.
fn bytes_after_stop(s: &mut Server, file: &str) -> Vec<u8> {
    let status = s.stop();
    assert!(status.success(), "csvd exited with {status:?}");
    fs::read(s.dir.join(file)).unwrap()
}

fn encode(encoding: &'static encoding_rs::Encoding, text: &str) -> Vec<u8> {
    let (bytes, _, errors) = encoding.encode(text);
    assert!(!errors, "{text}");
    bytes.into_owned()
}

fn utf16(le: bool, text: &str) -> Vec<u8> {
    let mut out = if le {
        vec![0xFF, 0xFE]
    } else {
        vec![0xFE, 0xFF]
    };
    for unit in text.encode_utf16() {
        out.extend(if le {
            unit.to_le_bytes()
        } else {
            unit.to_be_bytes()
        });
    }
    out
}

#[test]
fn each_delimiter_is_read_and_kept() {
    for (delimiter, d) in [(";", ';'), ("\t", '\t'), ("|", '|'), (",", ',')] {
        let text = format!("id{d}name{d}note\r\n1{d}kim{d}\"two\r\nlines\"\r\n2{d}lee{d}\r\n");
        let mut s = serve("t.csv", text.as_bytes());
        let rows = s.get("/t").json();
        assert_eq!(
            rows,
            json!([
                {"id": 1, "name": "kim", "note": "two\r\nlines"},
                {"id": 2, "name": "lee", "note": ""}
            ]),
            "{delimiter:?}"
        );
        let r = s.post_json("/t", r#"{"name":"park","note":"a,b;c|d"}"#);
        assert_eq!(r.status, 201, "{}", r.text());
        let after = bytes_after_stop(&mut s, "t.csv");
        let cell = if d == ',' || d == ';' || d == '|' {
            "\"a,b;c|d\"".to_string()
        } else {
            "a,b;c|d".to_string()
        };
        let expected = format!("{text}3{d}park{d}{cell}\r\n");
        assert_eq!(String::from_utf8_lossy(&after), expected, "{delimiter:?}");
    }
}

#[test]
fn sep_lines_and_byte_order_marks_are_kept() {
    let text = "\u{feff}sep=;\r\nid;name\r\n1;kim\r\n";
    let mut s = serve("t.csv", text.as_bytes());
    assert_eq!(s.get("/t/1").json()["name"], json!("kim"));
    let r = s.send_json("PATCH", "/t/1", r#"{"name":"Kim Minjun"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let after = bytes_after_stop(&mut s, "t.csv");
    assert_eq!(
        String::from_utf8(after).unwrap(),
        "\u{feff}sep=;\r\nid;name\r\n1;Kim Minjun\r\n"
    );
}

#[test]
fn tsv_files_are_tables_and_a_twin_is_refused() {
    let mut s = serve("t.tsv", b"id\tname\n1\tkim\n");
    assert_eq!(s.get("/t/1").json()["name"], json!("kim"));
    assert_eq!(s.post_json("/t", r#"{"name":"lee"}"#).status, 201);
    let after = bytes_after_stop(&mut s, "t.tsv");
    assert_eq!(after, b"id\tname\n1\tkim\n2\tlee\n");
    assert!(!s.dir.join("t.csv").exists());

    // Both t.csv and t.tsv: neither is guessed at, nor written.
    let mut s = serve("t.tsv", b"id\tname\n1\tkim\n");
    fs::write(s.dir.join("t.csv"), "id,name\n1,lee\n").unwrap();
    let listed = s.get("/").json();
    let error = listed[0]["error"].as_str().unwrap_or_default().to_string();
    assert!(
        error.contains("t.csv") && error.contains("t.tsv"),
        "{listed}"
    );
    let r = s.get("/t");
    assert_eq!(r.status, 500);
    assert!(r.text().contains("rename or remove one"), "{}", r.text());
    assert_eq!(s.post_json("/t", r#"{"name":"x"}"#).status, 409);
    s.stop();
    assert_eq!(fs::read(s.dir.join("t.csv")).unwrap(), b"id,name\n1,lee\n");
    assert_eq!(
        fs::read(s.dir.join("t.tsv")).unwrap(),
        b"id\tname\n1\tkim\n"
    );
}

#[test]
fn an_ambiguous_header_is_refused_until_a_sep_line_says() {
    let text = "id;b,c\r\n";
    let mut s = serve("t.csv", text.as_bytes());
    let listed = s.get("/").json();
    let error = listed[0]["error"].as_str().unwrap().to_string();
    assert!(error.contains("commas or semicolons"), "{error}");
    assert!(error.contains("sep="), "{error}");
    let r = s.get("/t");
    assert_eq!(r.status, 500);
    assert!(r.text().contains("sep="), "{}", r.text());
    assert_eq!(s.post_json("/t", r#"{"a":"1"}"#).status, 409);
    // A sep= line resolves it; the file is read again once it changes.
    fs::write(s.dir.join("t.csv"), "sep=;\r\nid;b,c\r\n").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while s.get("/t").status != 200 {
        assert!(std::time::Instant::now() < deadline, "never read again");
    }
    let r = s.post_json("/t", r#"{"b,c":"2"}"#);
    assert_eq!(r.status, 201, "{}", r.text());
    let after = bytes_after_stop(&mut s, "t.csv");
    assert_eq!(
        String::from_utf8(after).unwrap(),
        "sep=;\r\nid;b,c\r\n1;2\r\n"
    );

    // Never written while refused.
    let mut s = serve("u.csv", text.as_bytes());
    assert_eq!(s.post_json("/u", r#"{"b":"1"}"#).status, 409);
    assert_eq!(bytes_after_stop(&mut s, "u.csv"), text.as_bytes());
}

#[test]
fn legacy_encodings_are_read_and_kept() {
    let cases: [(&'static encoding_rs::Encoding, &str, &str); 5] = [
        (
            encoding_rs::EUC_KR,
            "id,이름,도시\r\n1,김민준,서울특별시\r\n2,이서연,부산광역시\r\n",
            "박지호",
        ),
        (
            encoding_rs::SHIFT_JIS,
            "id,名前,都市\n1,山田太郎,東京都\n2,佐藤花子,大阪府\n",
            "鈴木一郎",
        ),
        (
            encoding_rs::GBK,
            "id,姓名,城市\n1,张伟,北京市\n2,王芳,上海市\n3,李娜,广州市\n",
            "刘洋",
        ),
        (
            encoding_rs::BIG5,
            "id,姓名,城市\n1,陳大文,臺北市\n2,林小明,高雄市\n3,黃志強,臺中市\n",
            "王小華",
        ),
        (
            encoding_rs::WINDOWS_1252,
            "id;name;city\r\n1;Zoë;Zürich\r\n2;Renée;Besançon\r\n",
            "Anaïs",
        ),
    ];
    for (encoding, text, new) in cases {
        let original = encode(encoding, text);
        let mut s = serve("t.csv", &original);
        let header: Vec<&str> = text.lines().next().unwrap().split([',', ';']).collect();
        let rows = s.get("/t").json();
        assert_eq!(
            rows[0][header[1]],
            json!(text
                .lines()
                .nth(1)
                .unwrap()
                .split([',', ';'])
                .nth(1)
                .unwrap()),
            "{} {rows}",
            encoding.name()
        );
        let body = json!({ header[1]: new }).to_string();
        let r = s.post_json("/t", &body);
        assert_eq!(r.status, 201, "{}", r.text());
        let id = r.json()["id"].clone();
        let d = if text.contains(';') { ';' } else { ',' };
        let end = if text.contains('\r') { "\r\n" } else { "\n" };
        let mut expected = original.clone();
        expected.extend(encode(encoding, &format!("{id}{d}{new}{d}{end}")));
        assert_eq!(
            bytes_after_stop(&mut s, "t.csv"),
            expected,
            "{}",
            encoding.name()
        );
        // The encoding it was written in is noted, and read again so.
        assert!(s.dir.join(".t.csv.encoding").exists());
        s.restart_after_crash();
        let again = s.get("/t").json();
        let last = again.as_array().unwrap().len() - 1;
        assert_eq!(again[last][header[1]], json!(new));
        assert_eq!(again[0], rows[0]);
    }
}

#[test]
fn utf16_files_are_read_and_kept() {
    for le in [true, false] {
        let text = "id\t이름\r\n1\t김민준\r\n";
        let original = utf16(le, text);
        let mut s = serve("t.csv", &original);
        assert_eq!(s.get("/t/1").json()["이름"], json!("김민준"));
        let r = s.post_json("/t", r#"{"이름":"이서연 🎉"}"#);
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(
            bytes_after_stop(&mut s, "t.csv"),
            utf16(le, "id\t이름\r\n1\t김민준\r\n2\t이서연 🎉\r\n")
        );
    }
}

#[test]
fn a_value_the_encoding_has_not_is_refused_and_nothing_written() {
    let original = encode(encoding_rs::EUC_KR, "id,이름\n1,김민준\n");
    let mut s = serve("t.csv", &original);
    for (method, path, body) in [
        ("POST", "/t", r#"{"이름":"party 🎉"}"#),
        ("PUT", "/t/1", r#"{"이름":"Zoë ☃"}"#),
        ("PATCH", "/t/1", r#"{"이름":"🎉"}"#),
        ("POST", "/t", r#"{"이름":"x","🎉":"y"}"#),
        ("PUT", "/t", r#"[{"id":"1","이름":"🎉"}]"#),
    ] {
        let r = s.send_json(method, path, body);
        assert_eq!(r.status, 422, "{method} {path}: {}", r.text());
        let detail = r.json()["detail"].as_str().unwrap().to_string();
        assert!(
            detail.contains("EUC-KR") && detail.contains("UTF-8"),
            "{detail}"
        );
    }
    assert_eq!(s.get("/t/1").json()["이름"], json!("김민준"));
    assert_eq!(bytes_after_stop(&mut s, "t.csv"), original);
}

#[test]
fn ragged_rows_and_quoted_newlines_survive_a_checkpoint() {
    let text = "id;b;c\n1;\"x;\ny\"\n2\n3;;\"q\"\"uote\"\n";
    let mut s = serve("t.csv", text.as_bytes());
    let rows = s.get("/t").json();
    assert_eq!(rows[0]["b"], json!("x;\ny"));
    assert_eq!(rows[1]["c"], json!(""));
    assert_eq!(rows[2]["c"], json!("q\"uote"));
    // A row changed: its line changes; a short row stays as short.
    let r = s.send_json("PATCH", "/t/1", r#"{"c":"z"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let after = String::from_utf8(bytes_after_stop(&mut s, "t.csv")).unwrap();
    assert_eq!(after, "id;b;c\n1;\"x;\ny\";z\n2\n3;;\"q\"\"uote\"\n");
}

#[test]
fn bodies_in_tabs_and_other_charsets_are_read() {
    let s = Server::start();
    let r = s.request(
        "POST",
        "/t",
        &[("Content-Type", "text/tab-separated-values")],
        b"id\tname\n1\tkim\n2\tlee\n",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(s.get("/t/2").json()["name"], json!("lee"));
    let body = encode(encoding_rs::EUC_KR, "id,name\n3,박지호\n");
    let r = s.request(
        "POST",
        "/t",
        &[("Content-Type", "text/csv; charset=cp949")],
        &body,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(s.get("/t/3").json()["name"], json!("박지호"));
    let r = s.request(
        "POST",
        "/t",
        &[("Content-Type", "application/json; charset=utf-16")],
        &utf16(true, r#"{"id":"4","name":"김"}"#),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(s.get("/t/4").json()["name"], json!("김"));
    let r = s.request(
        "POST",
        "/t",
        &[("Content-Type", "text/csv; charset=klingon")],
        b"id\n5\n",
    );
    assert_eq!(r.status, 415, "{}", r.text());
    assert!(r.text().contains("klingon"), "{}", r.text());
    let r = s.request(
        "POST",
        "/t",
        &[("Content-Type", "text/csv; charset=shift_jis")],
        b"id,name\n6,\x82\n",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("Shift_JIS"), "{}", r.text());
}

#[test]
fn csv_downloads_for_excel() {
    let s = Server::start();
    let mut rows = vec![json!({"id": 1, "name": "김민준", "city": "a;b"})];
    for i in 2..=1500 {
        rows.push(json!({"id": i, "name": "이서연", "city": "서울"}));
    }
    let body = serde_json::Value::Array(rows).to_string();
    assert_eq!(s.send_json("PUT", "/t", &body).status, 201);
    let plain = s.get("/t.csv");
    assert!(plain.body.starts_with(b"id,name,city\r\n1,"));
    // A byte-order mark, asked for: another representation, another tag.
    let bom = s.get("/t.csv?bom=1");
    assert_eq!(bom.status, 200);
    assert!(bom.body.starts_with(b"\xEF\xBB\xBFid,name,city\r\n"));
    assert_eq!(&bom.body[3..], &plain.body[..]);
    assert_ne!(bom.header("etag"), plain.header("etag"));
    // Another delimiter.
    let semi = s.get("/t.csv?delimiter=;");
    assert!(semi
        .text()
        .starts_with("id;name;city\r\n1;김민준;\"a;b\"\r\n"));
    assert_ne!(semi.header("etag"), plain.header("etag"));
    assert_eq!(s.get("/t.csv?delimiter=x").status, 400);
    // Tab-separated values, by suffix or by Accept.
    let tsv = s.get("/t.tsv?_limit=1");
    assert_eq!(
        tsv.header("content-type"),
        Some("text/tab-separated-values; charset=utf-8")
    );
    assert_eq!(tsv.text(), "id\tname\tcity\r\n1\t김민준\ta;b\r\n");
    let by_accept = s.get_with("/t?_limit=1", &[("Accept", "text/tab-separated-values")]);
    assert_eq!(by_accept.body, tsv.body);
    // Another charset, streamed (more than 1,000 rows) all the same.
    let cp949 = s.get_with("/t", &[("Accept", "text/csv; charset=cp949")]);
    assert_eq!(cp949.status, 200, "{}", cp949.text());
    assert_eq!(
        cp949.header("content-type"),
        Some("text/csv; charset=euc-kr")
    );
    assert_eq!(cp949.body, encode(encoding_rs::EUC_KR, &plain.text()));
    assert_ne!(cp949.header("etag"), plain.header("etag"));
    let r = s.get_with("/t", &[("Accept", "text/csv; charset=klingon")]);
    assert_eq!(r.status, 406, "{}", r.text());
    // A cell the charset has not: a clear refusal, before the answer.
    assert_eq!(s.send_json("PATCH", "/t/1", r#"{"city":"🎉"}"#).status, 200);
    let r = s.get_with("/t", &[("Accept", "text/csv; charset=cp949")]);
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("EUC-KR"), "{}", r.text());
    // UTF-16 with its mark.
    let r = s.get_with(
        "/t.csv?bom=1&_limit=1",
        &[("Accept", "text/csv; charset=utf-16le")],
    );
    assert_eq!(r.body, utf16(true, "id,name,city\r\n1,김민준,🎉\r\n"));
    // The table page offers it.
    let page = s.get_with("/t", &[("Accept", "text/html")]).text();
    assert!(page.contains("href=\"/t.csv?bom=1\""), "{page}");
}

#[test]
fn a_server_default_byte_order_mark() {
    let s = Server::start_with(&["--csv-bom"]);
    assert_eq!(s.post_json("/t", r#"{"name":"kim"}"#).status, 201);
    assert!(s.get("/t.csv").body.starts_with(b"\xEF\xBB\xBFid,name\r\n"));
    assert!(s.get("/t.csv?bom=0").body.starts_with(b"id,name\r\n"));
    // JSON is never given one.
    assert!(s.get("/t").body.starts_with(b"["));
}

#[test]
fn files_that_quote_every_field_keep_doing_so() {
    let text = "\"id\",\"name\"\r\n\"1\",\"kim\"\r\n";
    let mut s = serve("t.csv", text.as_bytes());
    assert_eq!(s.post_json("/t", r#"{"name":"lee"}"#).status, 201);
    let after = String::from_utf8(bytes_after_stop(&mut s, "t.csv")).unwrap();
    assert_eq!(after, format!("{text}\"2\",\"lee\"\r\n"));
}

#[test]
fn apostrophe_quotes_are_read_and_kept() {
    let text = "'id';'name';'note'\r\n'1';'kim';'a;''b'''\r\n'2';'lee';''\r\n";
    let mut s = serve("t.csv", text.as_bytes());
    let rows = s.get("/t").json();
    assert_eq!(rows[0]["note"], json!("a;'b'"), "{rows}");
    let r = s.post_json("/t", r#"{"name":"park","note":"it's"}"#);
    assert_eq!(r.status, 201, "{}", r.text());
    let after = bytes_after_stop(&mut s, "t.csv");
    assert_eq!(
        String::from_utf8(after).unwrap(),
        format!("{text}'3';'park';'it''s'\r\n")
    );
    // Fields quoted with both, read differently: refused, never written.
    let text = "id,a,b\n1,\"x\",'z,w'\n";
    let mut s = serve("u.csv", text.as_bytes());
    let error = s.get("/").json()[0]["error"].as_str().unwrap().to_string();
    assert!(error.contains("both"), "{error}");
    assert_eq!(s.get("/u").status, 500);
    let r = s.post_json("/u", r#"{"a":"1"}"#);
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(bytes_after_stop(&mut s, "u.csv"), text.as_bytes());
}

#[test]
fn a_file_without_a_header_is_refused_never_guessed() {
    let text = "1,2.5,3\n4,5,6\n";
    let mut s = serve("t.csv", text.as_bytes());
    let error = s.get("/").json()[0]["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("line 1") && error.contains("no header") && error.contains("1,2.5,3"),
        "{error}"
    );
    let r = s.get("/t");
    assert_eq!(r.status, 500);
    assert!(r.text().contains("naming the columns"), "{}", r.text());
    let r = s.post_json("/t", r#"{"a":"1"}"#);
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(bytes_after_stop(&mut s, "t.csv"), text.as_bytes());
    // Names over numbers, or numbers over names, are a header.
    let s = serve("u.csv", b"2023,2024\nkim,lee\n");
    assert_eq!(s.get("/u").json(), json!([{"2023": "kim", "2024": "lee"}]));
}

#[test]
fn a_file_is_previewed_without_storing_anything() {
    let s = Server::start();
    let file = encode(
        encoding_rs::EUC_KR,
        "이름;도시;점수\r\n김민준;서울;2,5\r\n이서연;부산;3\r\n박지호;대구\r\n",
    );
    let r = s.request("POST", "/_detect", &[("Content-Type", "text/csv")], &file);
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = r.json();
    assert_eq!(seen["readable"], json!(true), "{seen}");
    assert_eq!(seen["delimiter"], json!(";"));
    assert_eq!(seen["quote"], json!("\""));
    assert_eq!(seen["encoding"], json!("EUC-KR"));
    assert_eq!(seen["bom"], json!(false));
    assert_eq!(seen["line_ends"], json!("CRLF"));
    assert_eq!(seen["header"], json!(true));
    assert_eq!(seen["columns"], json!(["이름", "도시", "점수"]));
    assert_eq!(seen["rows"], json!(3));
    assert_eq!(seen["first_rows"][0], json!(["김민준", "서울", "2,5"]));
    assert!(seen["warnings"][0]
        .as_str()
        .unwrap()
        .contains("1 row has fewer"));
    // Nothing was stored.
    assert_eq!(s.get("/").json(), json!([]));
    // What cannot be read is said, with what was told.
    let r = s.request("POST", "/_detect", &[], b"1,2\n3,4\n");
    let seen = r.json();
    assert_eq!(seen["readable"], json!(false), "{seen}");
    assert!(seen["error"].as_str().unwrap().contains("no header"));
    assert_eq!(seen["encoding"], json!("UTF-8"));
    // Told otherwise: no header, another delimiter, another quote.
    let r = s.request("POST", "/_detect?header=0&rows=1", &[], b"1,2\n3,4\n");
    let seen = r.json();
    assert_eq!(
        (&seen["columns"], &seen["rows"], &seen["first_rows"]),
        (&json!(["1", "2"]), &json!(2), &json!([["1", "2"]])),
        "{seen}"
    );
    let r = s.request(
        "POST",
        "/_detect?delimiter=%3B&quote=%27",
        &[],
        b"a,b;'c;d'\n1;2\n",
    );
    assert_eq!(r.json()["columns"], json!(["a,b", "c;d"]));
    let r = s.request("POST", "/_detect?delimiter=x", &[], b"a\n");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("tab"), "{}", r.text());
    assert_eq!(s.get("/_detect").status, 405);
}

#[test]
fn uploads_are_told_their_dialect_by_the_query() {
    let s = Server::start();
    let file = encode(
        encoding_rs::EUC_KR,
        "sep=;\r\n이름;도시\r\n김민준;'서울;특별시'\r\n",
    );
    let r = s.request(
        "PUT",
        "/t?delimiter=%3B&quote=%27&charset=cp949",
        &[("Content-Type", "text/csv")],
        &file,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        s.get("/t").json(),
        json!([{"id": 1, "이름": "김민준", "도시": "서울;특별시"}])
    );
    // The Content-Type's charset wins over the query's.
    let r = s.request(
        "POST",
        "/t?charset=shift_jis",
        &[("Content-Type", "text/csv; charset=cp949")],
        &encode(encoding_rs::EUC_KR, "이름\n박지호\n"),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(s.get("/t/2").json()["이름"], json!("박지호"));
    // No header: columns by position.
    let r = s.request(
        "PUT",
        "/u?header=0&delimiter=tab",
        &[("Content-Type", "text/csv")],
        b"kim\t30\nlee\t41\textra\n",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        s.get("/u").json(),
        json!([{"id": 1, "1": "kim", "2": 30, "3": ""}, {"id": 2, "1": "lee", "2": 41, "3": "extra"}])
    );
    let r = s.request(
        "PUT",
        "/v?quote=%60",
        &[("Content-Type", "text/csv")],
        b"a\n1\n",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(s.get("/v").status, 404);
}

#[test]
fn csv_bodies_are_read_in_the_dialect_they_are_in() {
    let s = Server::start();
    let csv = [("Content-Type", "text/csv")];
    // A semicolon file, as Excel writes it in much of Europe, uploaded as is.
    let r = s.request(
        "PUT",
        "/eu",
        &csv,
        "id;name;price\r\n1;Müller;3,50\r\n2;Ødegård;12\r\n".as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        s.get("/eu").json(),
        json!([{"id": 1, "name": "Müller", "price": "3,50"}, {"id": 2, "name": "Ødegård", "price": 12}])
    );
    // Pipes, with fields quoted by apostrophes.
    let r = s.request("POST", "/pipes", &csv, b"a|b\n'x|y'|'it''s'\n");
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        s.get("/pipes").json(),
        json!([{"id": 1, "a": "x|y", "b": "it's"}])
    );
    // A plain comma file with semicolons in its text stays comma-separated.
    let r = s.request("POST", "/notes", &csv, b"name,note\nkim,a;b;c\n");
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(s.get("/notes/1").json()["note"], json!("a;b;c"));
    // A body bigger than the sample is read whole in the detected dialect.
    let mut big = String::from("id;text\n");
    for i in 1..=5000 {
        big.push_str(&format!("{i};row {i}, with a comma\n"));
    }
    let r = s.request("PUT", "/big", &csv, big.as_bytes());
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        s.get("/big/5000").json()["text"],
        json!("row 5000, with a comma")
    );
    // Ambiguous: refused with what to say, and nothing stored.
    let r = s.request("PUT", "/amb", &csv, b"id;b,c\n");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("?delimiter="), "{}", r.text());
    assert_eq!(s.get("/amb").status, 404);
    // What the client says wins over detection.
    let r = s.request("PUT", "/amb?delimiter=%2C", &csv, b"id;b,c\n1;2,3\n");
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        s.get("/amb").json(),
        json!([{"id": 1, "id;b": "1;2", "c": 3}])
    );
}

#[test]
fn ragged_rows_are_written_back_as_short_as_they_were() {
    // Spreadsheets and hand edits leave rows shorter than the header.
    let file = "id;name;city;zip\r\n1;kim\r\n2;lee;Lima;00501\r\n3;park;Seoul\r\n";
    let mut s = serve("t.csv", file.as_bytes());
    assert_eq!(
        s.get("/t/1").json(),
        json!({"id": 1, "name": "kim", "city": "", "zip": ""})
    );
    let r = s.send_json("PATCH", "/t/2", r#"{"city":"Quito"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    s.restart();
    assert_eq!(s.get("/t/2").json()["city"], json!("Quito"));
    // Only the changed row differs; the short ones are as they were read.
    assert_eq!(
        String::from_utf8(bytes_after_stop(&mut s, "t.csv")).unwrap(),
        "id;name;city;zip\r\n1;kim\r\n2;lee;Quito;00501\r\n3;park;Seoul\r\n"
    );
    // A file whose rows are all whole stays padded: a new row gets every cell.
    let mut s = serve("w.csv", b"id,name,city\n1,kim,Seoul\n");
    assert_eq!(s.post_json("/w", r#"{"name":"lee"}"#).status, 201);
    s.restart();
    assert_eq!(
        String::from_utf8(bytes_after_stop(&mut s, "w.csv")).unwrap(),
        "id,name,city\n1,kim,Seoul\n2,lee,\n"
    );
}

#[test]
fn csv_bodies_in_other_encodings_are_detected_when_no_charset_is_said() {
    let s = Server::start();
    let csv = [("Content-Type", "text/csv")];
    // What Korean Excel saves: CP949, semicolons, no charset said.
    let mut text = String::from("이름;도시\r\n");
    for i in 0..3000 {
        text.push_str(&format!("김민준{i};서울특별시\r\n"));
    }
    let r = s.request("PUT", "/kr", &csv, &encode(encoding_rs::EUC_KR, &text));
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(s.get("/kr/3000").json()["이름"], json!("김민준2999"));
    assert_eq!(s.get("/kr/1").json()["도시"], json!("서울특별시"));
    // UTF-16 with its byte-order mark, as "Unicode text" exports are.
    let r = s.request(
        "POST",
        "/u16",
        &csv,
        &utf16(true, "name,city\r\nkim,서울\r\n"),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(s.get("/u16/1").json()["city"], json!("서울"));
    // A charset said is taken as said: these bytes are not UTF-8.
    let r = s.request(
        "POST",
        "/said",
        &[("Content-Type", "text/csv; charset=utf-8")],
        &encode(encoding_rs::EUC_KR, "이름\n김민준\n"),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(s.get("/said").status, 404);
}
