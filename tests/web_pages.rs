//! The web page as HTTP sees it: what a browser is sent (policy headers,
//! escaping, embedded assets, pages of rows), and how a browser's form
//! writes are answered. The real browser drives the pages in web_browser.rs.

mod common;

use std::io::Read;

use common::{Response, Server};
use serde_json::json;

const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
const POLICY: &str = "default-src 'none'; style-src 'self'; script-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
     frame-ancestors 'none'";

fn page(s: &Server, path: &str) -> Response {
    s.get_with(path, &[("Accept", BROWSER)])
}

fn people() -> Server {
    let s = Server::start();
    for (name, city, age) in [("kim", "Seoul", 31), ("lee", "Busan", 27)] {
        let body = json!({"name": name, "city": city, "age": age}).to_string();
        assert_eq!(s.post_json("/people", &body).status, 201);
    }
    s
}

/// The body rows of a table page (`<tr`s after the header's two).
fn body_rows(html: &str) -> usize {
    html.split("<tbody>")
        .nth(1)
        .and_then(|rest| rest.split("</tbody>").next())
        .map_or(0, |body| body.matches("<tr").count())
}

/// The value of the first `name="…"` attribute in a page.
fn attribute(html: &str, name: &str) -> String {
    html.split(&format!(" {name}=\""))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        .replace("&amp;", "&")
}

#[test]
fn pages_name_the_change_feed_of_their_view_from_before_their_rows() {
    let s = people();
    // Two writes so far: the page follows the changes after the second.
    let html = page(&s, "/people").text();
    assert_eq!(attribute(&html, "data-feed"), "/_changes/people?since=2");
    assert!(html.contains("<tr data-id=\"1\">"), "{html}");
    // The view's filters, search and fields are kept; order and window are not.
    let html = page(
        &s,
        "/people?city=Seoul&_sort=-age&_order=desc&_page=1&_limit=10&q=k&_fields=name,city",
    )
    .text();
    assert_eq!(
        attribute(&html, "data-feed"),
        "/_changes/people?since=2&city=Seoul&q=k&_fields=name%2Ccity"
    );
    assert!(html.contains(" data-filtered"), "{html}");
    assert!(
        !html.contains(" data-end"),
        "sorted: new rows have no place"
    );
    assert!(page(&s, "/people?_limit=10").text().contains(" data-end"));
    // The feed takes what the page names, even a form's empty filters.
    let html = page(
        &s,
        "/people?q=&name_like=&city_like=se&_sort=name&_limit=10&_page=1",
    )
    .text();
    let feed = attribute(&html, "data-feed");
    assert_eq!(feed, "/_changes/people?since=2&q=&name_like=&city_like=se");
    let r = s.get_with(&feed, &[("Accept", "application/json")]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["last_seq"], json!(2), "{}", r.text());

    assert_eq!(
        s.send_json("PATCH", "/people/2", r#"{"age": 28}"#).status,
        200
    );
    let html = page(&s, "/people?_start=1&_end=2&age_gt=20").text();
    assert_eq!(
        attribute(&html, "data-feed"),
        "/_changes/people?since=3&age_gt=20"
    );
    let html = page(&s, "/people/2").text();
    assert_eq!(
        attribute(&html, "data-row-feed"),
        "/_changes/people/2?since=3"
    );

    // The feed moves on with changes elsewhere: a page is drawn again,
    // never answered 304 with the position of an older copy.
    for (path, feed) in [("/people", "data-feed"), ("/people/2", "data-row-feed")] {
        let first = page(&s, path);
        let tag = first.header("etag").unwrap().to_string();
        assert_eq!(s.post_json("/other", "{}").status, 201);
        let again = s.get_with(path, &[("Accept", BROWSER), ("If-None-Match", &tag)]);
        assert_eq!(again.status, 200, "{path}");
        assert_ne!(
            attribute(&again.text(), feed),
            attribute(&first.text(), feed)
        );
        // The API's representations still are.
        let json = s.get(path);
        let tag = json.header("etag").unwrap().to_string();
        assert_eq!(s.get_with(path, &[("If-None-Match", &tag)]).status, 304);
    }
}

#[test]
fn every_page_carries_a_strict_policy_and_loads_only_its_own_assets() {
    let s = people();
    for (path, status) in [
        ("/", 200),
        ("/people", 200),
        ("/people/1", 200),
        ("/people/9", 404),
    ] {
        let r = page(&s, path);
        assert_eq!(r.status, status, "{path}");
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
        assert_eq!(r.header("content-security-policy"), Some(POLICY), "{path}");
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        let html = r.text();
        assert!(
            !html.contains("<script>") && !html.contains("<style"),
            "{path}"
        );
        assert!(!html.contains(" style="), "{path}: inline style");
        for attribute in ["href=\"", "src=\"", "action=\""] {
            for link in html.split(attribute).skip(1) {
                assert!(link.starts_with('/'), "{path}: {attribute}{link:.40}");
            }
        }
        for asset in html.split("\"/_assets/").skip(1) {
            let url = format!("/_assets/{}", asset.split('"').next().unwrap());
            assert_eq!(s.get(&url).status, 200, "{url}");
        }
    }
}

#[test]
fn every_cell_and_name_is_escaped() {
    let s = Server::start();
    let evil = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>";
    let body = json!({"note": evil, "<b>col": evil}).to_string();
    assert_eq!(s.post_json("/t", &body).status, 201);
    for path in ["/", "/t", "/t/1", "/t?q=%3Cscript", "/t?note_like=script"] {
        let html = page(&s, path).text();
        assert!(!html.contains("<script>alert"), "{path}: {html}");
        assert!(!html.contains("<img"), "{path}");
        assert!(!html.contains("<b>col"), "{path}");
    }
    let table = page(&s, "/t").text();
    assert!(table.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;'&gt;&lt;img"));
    assert!(table.contains("&lt;b&gt;col"));
    let row = page(&s, "/t/1").text();
    assert!(row.contains("value=\"&lt;script&gt;alert(1)&lt;/script&gt;&quot;'&gt;"));
}

#[test]
fn a_form_post_from_a_browser_is_sent_on_to_the_new_row() {
    let s = people();
    let form = [
        ("Accept", BROWSER),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    let r = s.request(
        "POST",
        "/people",
        &form,
        b"id=&name=park+sora&city=Daegu&age=45",
    );
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/people/3"));
    assert_eq!(
        s.get("/people/3").json(),
        json!({"id": 3, "name": "park sora", "city": "Daegu", "age": 45})
    );
    // API clients still get the row they created.
    let r = s.request(
        "POST",
        "/people",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"name=choi",
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["name"], json!("choi"));
    // Any write a browser makes leads to the page that shows the result.
    let r = s.request(
        "PATCH",
        "/people/3",
        &[("Accept", BROWSER), ("Content-Type", "application/json")],
        br#"{"city":"Seoul"}"#,
    );
    assert_eq!((r.status, r.header("location")), (303, Some("/people/3")));
    let r = s.request("DELETE", "/people/3", &[("Accept", BROWSER)], b"");
    assert_eq!((r.status, r.header("location")), (303, Some("/people")));
    // A mistake is a page saying what was wrong.
    let r = s.request("POST", "/people", &form, b"=x");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("empty name"), "{}", r.text());
}

#[test]
fn assets_are_embedded_and_cached_by_content() {
    let s = Server::start();
    for (name, kind) in [
        ("style.css", "text/css"),
        ("app.js", "text/javascript"),
        ("icon.svg", "image/svg+xml"),
    ] {
        let r = s.get(&format!("/_assets/{name}"));
        assert_eq!(r.status, 200, "{name}");
        assert!(
            r.header("content-type").unwrap().starts_with(kind),
            "{name}"
        );
        assert!(r.header("cache-control").unwrap().contains("immutable"));
        let tag = r.header("etag").unwrap().to_string();
        let again = s.get_with(&format!("/_assets/{name}"), &[("If-None-Match", &tag)]);
        assert_eq!(again.status, 304, "{name}");
        assert_eq!(
            s.request("HEAD", &format!("/_assets/{name}"), &[], b"")
                .status,
            200
        );
    }
    assert_eq!(s.get("/_assets/nothing.js").status, 404);
    assert_eq!(s.get("/_assets/../people.csv").status, 404);
}

#[test]
fn a_table_page_shows_one_page_of_the_rows_its_address_selects() {
    let s = Server::start();
    let rows: Vec<_> = (1..=60)
        .map(|n| json!({"n": n, "kind": if n % 2 == 0 { "even" } else { "odd" }}))
        .collect();
    let body = serde_json::Value::Array(rows).to_string();
    assert_eq!(s.post_json("/nums", &body).status, 201);

    let first = page(&s, "/nums").text();
    assert_eq!(body_rows(&first), 25);
    assert!(first.contains("Page 1 of 3") && first.contains("Rows 1–25 of 60"));
    assert!(first.contains("href=\"/nums?_page=2&amp;_limit=25\" rel=\"next\""));

    let sorted = page(&s, "/nums?_sort=-n&_limit=5").text();
    assert_eq!(body_rows(&sorted), 5);
    assert!(sorted.contains("<a href=\"/nums/60\">60</a>"));
    assert!(sorted.contains("aria-sort=\"descending\""));
    assert!(sorted.contains("href=\"/nums?_sort=n&amp;_limit=5\""));

    let found = page(&s, "/nums?kind=even&n_gte=51").text();
    assert_eq!(body_rows(&found), 5);
    assert!(found.contains("Rows 1–5 of 5 (of 60 in the table)"));
    assert!(found.contains("Remove the filter n ≥ 51"));
    assert!(found.contains("<input type=\"hidden\" name=\"kind\" value=\"even\">"));

    let none = page(&s, "/nums?q=nothing").text();
    assert_eq!(body_rows(&none), 0);
    assert!(none.contains("No rows match."));

    // The API answers the same address as it always did: every row.
    assert_eq!(s.get("/nums").json().as_array().unwrap().len(), 60);
    // A query the server cannot answer is a page saying why.
    let bad = page(&s, "/nums?_sort=nope");
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("nope"));
}

#[test]
fn a_page_of_many_rows_streams() {
    let s = Server::start();
    let mut csv = String::from("id,v\n");
    for n in 1..=3000 {
        csv.push_str(&format!("{n},value {n}\n"));
    }
    let r = s.request(
        "PUT",
        "/big",
        &[("Content-Type", "text/csv")],
        csv.as_bytes(),
    );
    assert_eq!(r.status, 201);
    let r = page(&s, "/big?_limit=3000");
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    let html = r.text();
    assert_eq!(body_rows(&html), 3000);
    assert!(html.contains("<a href=\"/big/3000\">3000</a>"));
    assert!(html.ends_with("</html>\n"));
}

#[test]
fn error_pages_read_well_when_compressed() {
    let s = people();
    let r = s.get_with(
        "/people/99",
        &[("Accept", BROWSER), ("Accept-Encoding", "gzip")],
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    let mut html = String::new();
    flate2::read::GzDecoder::new(&r.body[..])
        .read_to_string(&mut html)
        .unwrap();
    assert!(html.contains("404 Not Found"), "{html}");
    assert!(
        html.contains("there is no row with id &quot;99&quot;"),
        "{html}"
    );
    assert!(html.contains("href=\"/people\""));
}

#[test]
fn error_pages_say_what_happened_and_lead_somewhere_that_works() {
    let s = people();
    // No table: no way "back" to it, the table list instead.
    let html = page(&s, "/nosuch").text();
    assert!(!html.contains("Back to"), "{html}");
    assert!(html.contains("<a href=\"/\">All tables</a>"), "{html}");
    let html = page(&s, "/nosuch/3").text();
    assert!(!html.contains("Back to"), "{html}");
    // No row: back to its table, which is there.
    let html = page(&s, "/people/99").text();
    assert!(
        html.contains("<a href=\"/people\">Back to people</a>"),
        "{html}"
    );

    // A table whose file cannot be read: the reason, and a repair a browser can make.
    std::fs::write(s.dir.join("semi.csv"), "name;age,x\r\n").unwrap();
    let r = page(&s, "/semi");
    assert_eq!(r.status, 500);
    let html = r.text();
    assert!(
        html.contains("reads as separated by commas or semicolons"),
        "{html}"
    );
    assert!(!html.contains("PUT /semi"), "{html}");
    assert!(!html.contains("Back to semi"), "{html}");
    assert!(html.contains("save it as CSV UTF-8"), "{html}");
    assert!(
        html.contains("data-upload data-url=\"/semi\" data-tag=\"*\""),
        "{html}"
    );
    // What that form sends repairs the table.
    let r = s.request(
        "PUT",
        "/semi",
        &[
            ("Content-Type", "text/csv"),
            ("If-Match", "*"),
            ("Accept", "application/json"),
        ],
        b"name,age\nkim,30\n",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(page(&s, "/semi").status, 200);

    // A file in another encoding, sent without a charset: detected.
    let cp949: &[u8] = b"\xc0\xcc\xb8\xa7,\xb3\xaa\xc0\xcc\r\nkim,30\r\n";
    let r = s.request(
        "PUT",
        "/korean",
        &[
            ("Content-Type", "text/csv"),
            ("If-None-Match", "*"),
            ("Accept", "application/json"),
        ],
        cp949,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        s.get("/korean/1").json(),
        serde_json::json!({"id": 1, "이름": "kim", "나이": 30})
    );
    // Said to be UTF-8, it is not: where, and what to do, in a browser's words.
    let r = s.request(
        "PUT",
        "/korean2",
        &[
            ("Content-Type", "text/csv; charset=utf-8"),
            ("If-None-Match", "*"),
            ("Accept", "application/json"),
        ],
        cp949,
    );
    assert_eq!(r.status, 400);
    let detail = r.json()["detail"].as_str().unwrap().to_string();
    assert!(
        detail.contains("line 1: field 1 is not valid UTF-8"),
        "{detail}"
    );
    assert!(detail.contains("save the file as UTF-8"), "{detail}");
    assert!(!detail.contains("send UTF-8"), "{detail}");
}

#[test]
fn a_read_only_server_offers_no_repair_it_would_refuse() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("semi.csv"), "name;age,x\n").unwrap();
    let s = Server::start_in(tmp.path(), &["--read-only"]);
    let html = page(&s, "/semi").text();
    assert!(html.contains("Fix the file"), "{html}");
    assert!(!html.contains("data-upload"), "{html}");
    let r = s.request(
        "POST",
        "/semi",
        &[
            ("Accept", BROWSER),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        b"name=x",
    );
    assert_eq!(r.status, 405);
    assert!(r.text().contains("read-only"), "{}", r.text());
}

/// Signs a browser in on a server with the token `s3cret`; returns its
/// `Cookie` header and the page's CSRF token.
fn sign_in(s: &Server, next: &str) -> (String, String) {
    let origin = format!("http://{}", s.addr);
    let r = s.request(
        "POST",
        "/_signin",
        &[
            ("Accept", BROWSER),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", &origin),
            ("Sec-Fetch-Site", "same-origin"),
        ],
        format!("next={next}&token=s3cret").as_bytes(),
    );
    assert_eq!(r.status, 303, "{}", String::from_utf8_lossy(&r.body));
    let set = r.header("set-cookie").unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "no TLS, no Secure: {set}");
    let cookie = set.split(';').next().unwrap().to_string();
    let html = s
        .get_with("/", &[("Accept", BROWSER), ("Cookie", &cookie)])
        .text();
    let csrf = html
        .split("<meta name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no CSRF token on the page: {html}"))
        .to_string();
    (cookie, csrf)
}

#[test]
fn a_browser_signs_in_once_and_writes_with_its_csrf_token() {
    let s = Server::start_with(&["--token", "s3cret"]);
    let api = [
        ("Content-Type", "application/json"),
        ("Authorization", "Bearer s3cret"),
    ];
    let r = s.request("POST", "/people", &api, br#"{"name":"kim"}"#);
    assert_eq!(r.status, 201);

    // Before signing in: the pages read, offer a sign-in and no write forms.
    let before = page(&s, "/people");
    let html = before.text();
    assert!(html.contains("href=\"/_signin?next=%2Fpeople\""), "{html}");
    assert!(
        !html.contains("data-add-row") && !html.contains("data-delete"),
        "{html}"
    );
    assert!(html.contains("to add, change or delete rows"), "{html}");
    let signin = page(&s, "/_signin?next=/people");
    assert_eq!(signin.status, 200);
    assert!(signin.text().contains("type=\"password\" name=\"token\""));
    let wrong = s.request(
        "POST",
        "/_signin",
        &[
            ("Accept", BROWSER),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        b"token=nope&next=/people",
    );
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_none());
    assert!(
        wrong.text().contains("not this server's token"),
        "{}",
        wrong.text()
    );

    let (cookie, csrf) = sign_in(&s, "/people");
    let browser = [("Accept", BROWSER), ("Cookie", cookie.as_str())];
    let after = s.get_with("/people", &browser);
    assert_ne!(
        after.header("etag"),
        before.header("etag"),
        "a page per viewer"
    );
    assert!(after.header("vary").unwrap().contains("Cookie"));
    let html = after.text();
    assert!(html.contains("Signed in") && html.contains("action=\"/_signout\""));
    assert!(
        html.contains(&format!("name=\"_csrf\" value=\"{csrf}\"")),
        "{html}"
    );
    assert!(html.contains("data-add-row") && html.contains("data-delete"));

    // A plain form carries the token as a field, which is not a column.
    let form = [
        ("Accept", BROWSER),
        ("Cookie", cookie.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Sec-Fetch-Site", "same-origin"),
    ];
    let body = format!("id=&name=lee&_csrf={csrf}");
    let r = s.request("POST", "/people", &form, body.as_bytes());
    assert_eq!((r.status, r.header("location")), (303, Some("/people/2")));
    assert_eq!(s.get("/people/2").json(), json!({"id": 2, "name": "lee"}));
    // Without it, or with another, the cookie opens nothing.
    let r = s.request("POST", "/people", &form, b"id=&name=evil");
    assert_eq!(r.status, 403, "{}", r.text());
    let body = format!("name=evil&_csrf={csrf}x");
    assert_eq!(
        s.request("POST", "/people", &form, body.as_bytes()).status,
        403
    );
    // JSON, as the page's script sends it: the token in X-CSRF-Token.
    let json_write = |extra: &[(&str, &str)]| {
        let mut headers = vec![
            ("Accept", "application/json"),
            ("Cookie", cookie.as_str()),
            ("Content-Type", "application/json"),
        ];
        headers.extend_from_slice(extra);
        s.request("PATCH", "/people/1", &headers, br#"{"city":"Seoul"}"#)
    };
    let r = json_write(&[]);
    assert_eq!(r.status, 403);
    assert!(
        r.json()["detail"].as_str().unwrap().contains("CSRF"),
        "{}",
        r.text()
    );
    assert_eq!(json_write(&[("X-CSRF-Token", "wrong")]).status, 403);
    let other = [
        ("X-CSRF-Token", csrf.as_str()),
        ("Origin", "http://evil.example"),
    ];
    assert_eq!(json_write(&other).status, 403);
    let other = [
        ("X-CSRF-Token", csrf.as_str()),
        ("Sec-Fetch-Site", "cross-site"),
    ];
    assert_eq!(json_write(&other).status, 403);
    let own = format!("http://{}", s.addr);
    let ok = [("X-CSRF-Token", csrf.as_str()), ("Origin", own.as_str())];
    assert_eq!(json_write(&ok).status, 200);
    assert_eq!(s.get("/people/1").json()["city"], "Seoul");
    assert_eq!(
        s.get("/").json()[0]["columns"],
        json!(["id", "name", "city"])
    );

    // Signing out ends the session: the same cookie and token open nothing.
    let r = s.request(
        "POST",
        "/_signout",
        &form,
        format!("_csrf={csrf}").as_bytes(),
    );
    assert_eq!((r.status, r.header("location")), (303, Some("/")));
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    let r = json_write(&[("X-CSRF-Token", csrf.as_str())]);
    assert_eq!(r.status, 401);
    let html = s.get_with("/people", &browser).text();
    assert!(!html.contains("Signed in") && html.contains("Sign in"));
    // API clients are as before.
    assert_eq!(
        s.request("POST", "/people", &api, br#"{"name":"x"}"#)
            .status,
        201
    );
    assert_eq!(s.post_json("/people", r#"{"name":"x"}"#).status, 401);
}

#[test]
fn a_private_server_sends_browsers_to_sign_in() {
    let s = Server::start_with(&["--token", "s3cret", "--private"]);
    let r = page(&s, "/people?q=kim");
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location"),
        Some("/_signin?next=%2Fpeople%3Fq%3Dkim")
    );
    assert_eq!(s.get("/people").status, 401, "API clients get a 401");
    let signin = page(&s, "/_signin?next=%2Fpeople");
    assert_eq!(signin.status, 200);
    for asset in signin.text().split("\"/_assets/").skip(1) {
        let url = format!("/_assets/{}", asset.split('"').next().unwrap());
        assert_eq!(s.get(&url).status, 200, "{url}: the sign-in page is styled");
    }
    let (cookie, _) = sign_in(&s, "/");
    let r = s.get_with("/", &[("Accept", BROWSER), ("Cookie", &cookie)]);
    assert_eq!(r.status, 200);
    assert!(r.text().contains("<h1>Tables</h1>"));
    // A browser's write without a session is a page that leads to signing in.
    let r = s.request(
        "POST",
        "/people",
        &[
            ("Accept", BROWSER),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        b"name=kim",
    );
    assert_eq!(r.status, 401);
    assert!(
        r.text().contains("href=\"/_signin?next=%2Fpeople\""),
        "{}",
        r.text()
    );
}

#[test]
fn a_read_only_server_draws_no_write_forms() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("t.csv"), "id,a\n1,x\n").unwrap();
    let s = Server::start_in(tmp.path(), &["--read-only"]);
    for path in ["/", "/t", "/t/1"] {
        let html = page(&s, path).text();
        for write in [
            "data-create",
            "data-upload",
            "data-add-row",
            "data-edit",
            "data-delete",
            "method=\"post\"",
        ] {
            assert!(!html.contains(write), "{path}: {write}");
        }
        assert!(html.contains("read-only"), "{path}");
        assert!(!html.contains("Sign in"), "{path}");
    }
    assert!(page(&s, "/t/1").text().contains("value=\"x\" readonly"));
    assert_eq!(page(&s, "/_signin").status, 404, "no token, no sign-in");
}

#[test]
fn over_tls_the_session_cookie_is_secure() {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let params = rcgen::CertificateParams::new(names).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let s = Server::start_with(&[
        "--token",
        "s3cret",
        "--tls-cert",
        cert_path.to_str().unwrap(),
        "--tls-key",
        key_path.to_str().unwrap(),
    ]);
    let body = "token=s3cret&next=/";
    let request = format!(
        "POST /_signin HTTP/1.1\r\nHost: {addr}\r\nOrigin: https://{addr}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len(),
        addr = s.addr
    );
    let mut raw = std::process::Command::new(common::BIN)
        .args(["raw", &s.addr.to_string(), "--tls", "-k", "--timeout", "10"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    raw.stdin
        .take()
        .unwrap()
        .write_all(request.as_bytes())
        .unwrap();
    let out = raw.wait_with_output().unwrap();
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(answer.starts_with("HTTP/1.1 303"), "{answer}");
    let cookie = answer
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {answer}"));
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
}
