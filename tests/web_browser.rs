//! The web page in a real browser (headless Chromium), used as a person
//! would: open the list and a table, sort, search, filter, add a row with a
//! new column, edit it, meet a stale edit, delete it, create, upload,
//! replace and delete tables, on a desktop and a phone-width screen, and
//! see others' changes show on an open page without a reload.
//! Each page is saved as a screenshot in `target/screenshots/`.

mod browser;
mod common;

use std::time::Instant;

use browser::{Browser, PATIENCE};
use common::Server;
use serde_json::json;

/// The body rows of the table shown.
const ROWS: &str = "table.rows tbody tr";

fn people() -> Server {
    let s = Server::start();
    let rows = json!([
        {"name": "Kim Minji", "email": "minji@example.com", "city": "Seoul", "age": 31},
        {"name": "Lee Jun", "email": "jun@example.com", "city": "Busan", "age": 27},
        {"name": "Park Sora", "email": "sora@example.com", "city": "Daegu", "age": 45},
        {"name": "Choi Hana", "email": "hana@example.com", "city": "Seoul", "age": 38},
    ]);
    assert_eq!(s.post_json("/people", &rows.to_string()).status, 201);
    s
}

#[tokio::test(flavor = "current_thread")]
async fn a_person_reads_and_edits_tables_in_a_browser() {
    let s = people();
    let Some(b) = Browser::start(&s.base(), true).await else {
        return;
    };
    browse(&b).await;
    sort_search_filter(&b).await;
    add_edit_delete(&b, &s).await;
    tables(&b, &s).await;
    phone(&b).await;
    b.stop().await;
}

/// The table list, a table, its labels.
async fn browse(b: &Browser) {
    b.open("/").await;
    b.wait_for_text("table.list tbody tr", "people").await;
    let entry = b.text("table.list tbody tr").await;
    assert!(entry.contains('4') && entry.contains("email"), "{entry}");
    assert!(
        b.unlabelled().await.is_empty(),
        "{:?}",
        b.unlabelled().await
    );
    // The script ran (the policy allowed it): its controls are enabled.
    assert!(b
        .find("form[data-create] button")
        .await
        .is_enabled()
        .await
        .unwrap());
    b.screenshot("01-table-list").await;

    b.click("table.list a[href='/people']").await;
    b.wait_for_path("/people").await;
    b.wait_for_count(ROWS, 4).await;
    assert!(
        b.unlabelled().await.is_empty(),
        "{:?}",
        b.unlabelled().await
    );
    assert_eq!(b.text("h1").await, "people");
    b.screenshot("02-table").await;
}

/// The first cell of a column in the rows shown, by column position.
async fn column(b: &Browser, index: usize) -> Vec<String> {
    b.texts(&format!("{ROWS} td:nth-child({index})")).await
}

async fn sort_search_filter(b: &Browser) {
    b.open("/people").await;
    b.click_text("age").await;
    b.wait_for_address("sorted by age", |a| a.contains("_sort=age"))
        .await;
    assert_eq!(column(b, 5).await, ["27", "31", "38", "45"]);
    b.click_text("age▲").await;
    b.wait_for_address("sorted by age, descending", |a| a.contains("_sort=-age"))
        .await;
    assert_eq!(column(b, 5).await, ["45", "38", "31", "27"]);

    b.fill("#q", "seoul").await;
    b.click("form#query button[type=submit]").await;
    let address = b
        .wait_for_address("a search", |a| a.contains("q=seoul"))
        .await;
    // The sort stays; empty filters are not sent.
    assert!(address.contains("_sort=-age"), "{address}");
    assert!(!address.contains("_like="), "{address}");
    b.wait_for_count(ROWS, 2).await;
    assert_eq!(column(b, 2).await, ["Choi Hana", "Kim Minji"]);
    b.screenshot("03-table-search").await;

    b.click_text("Clear search and filters").await;
    b.wait_for_count(ROWS, 4).await;
    b.fill("tr.filters input[name='city_like']", "bu").await;
    b.click("form#query button[type=submit]").await;
    b.wait_for_address("a filter", |a| a.contains("city_like=bu"))
        .await;
    b.wait_for_count(ROWS, 1).await;
    assert_eq!(column(b, 2).await, ["Lee Jun"]);

    // Pages: two rows a page, then the next page.
    b.open("/people?_limit=2&_sort=id").await;
    b.wait_for_count(ROWS, 2).await;
    b.click("a[rel=next]").await;
    b.wait_for_address("page 2", |a| a.contains("_page=2"))
        .await;
    assert_eq!(column(b, 1).await, ["3", "4"]);
    assert!(b.text(".pager").await.contains("Page 2 of 2"));
}

async fn add_edit_delete(b: &Browser, s: &Server) {
    let evil = "<script>window.owned=1</script><img src=x onerror=\"window.owned=2\">";
    // A mistake is said on the page, and what was typed stays.
    b.open("/people").await;
    b.fill("form[data-add-row] input[name='id']", "1").await;
    b.fill("form[data-add-row] input[name='name']", "Someone")
        .await;
    b.click_text("Add row").await;
    b.wait_for_text("form[data-add-row] .status", "id \"1\" is already taken")
        .await;
    assert_eq!(
        b.value("form[data-add-row] input[name='name']").await,
        "Someone"
    );

    b.open("/people").await;
    b.fill("form[data-add-row] input[name='name']", evil).await;
    b.fill("form[data-add-row] input[name='city']", "Incheon")
        .await;
    b.fill("form[data-add-row] input[name='age']", "52").await;
    b.fill("[data-new-name]", "team").await;
    b.fill("[data-new-value]", "red").await;
    b.click_text("Add row").await;
    b.wait_for_path("/people/5").await;
    b.wait_for_text("#notice", "Row 5 was added.").await;
    assert_eq!(b.value("input[name='team']").await, "red");
    assert_eq!(b.value("input[name='name']").await, evil);
    assert_eq!(
        s.get("/people/5").json(),
        json!({"id": 5, "name": evil, "email": "", "city": "Incheon", "age": 52, "team": "red"})
    );
    assert!(
        b.unlabelled().await.is_empty(),
        "{:?}",
        b.unlabelled().await
    );
    b.screenshot("04-row").await;

    // The cell shows the text, and nothing in it ran.
    b.open("/people?_sort=-id").await;
    b.wait_for_count(ROWS, 5).await;
    assert_eq!(column(b, 2).await[0], evil);
    assert_eq!(
        b.script("return window.owned === undefined").await,
        json!(true)
    );

    // Edit in place.
    b.open("/people/5").await;
    b.fill("input[name='city']", "Ulsan").await;
    b.click_text("Save changes").await;
    b.wait_for_text("#notice", "Saved.").await;
    assert_eq!(b.value("input[name='city']").await, "Ulsan");
    assert_eq!(s.get("/people/5").json()["city"], json!("Ulsan"));

    // Someone else changes the row; the stale edit is refused and said so.
    let other = s.send_json("PATCH", "/people/5", r#"{"age": 53}"#);
    assert_eq!(other.status, 200);
    b.fill("input[name='city']", "Suwon").await;
    b.click_text("Save changes").await;
    b.wait_for_text("form.edit-row .status", "someone changed")
        .await;
    b.screenshot("05-row-stale-edit").await;
    assert_eq!(s.get("/people/5").json()["city"], json!("Ulsan"));
    b.click_text("Reload").await;
    b.wait_for_text("h1", "people 5").await;
    assert_eq!(b.value("input[name='age']").await, "53");

    // Delete, after saying what will be lost.
    b.click_text("Delete this row…").await;
    b.click_text("Delete row 5").await;
    b.wait_for_path("/people").await;
    b.wait_for_text("#notice", "Row 5 was deleted.").await;
    assert_eq!(s.get("/people/5").status, 404);
    b.wait_for_count(ROWS, 4).await;

    // A page that is not there says so, and leads back.
    b.open("/people/5").await;
    assert_eq!(b.text("h1").await, "404 Not Found");
    assert!(b.text(".detail").await.contains("no row"));
    b.screenshot("06-not-found").await;
    b.click_text("Back to people").await;
    b.wait_for_path("/people").await;
}

async fn tables(b: &Browser, s: &Server) {
    let files = tempfile::tempdir().expect("temp dir");
    let cities = files.path().join("cities.csv");
    std::fs::write(
        &cities,
        "name,country,population\nSeoul,KR,9700000\nBusan,KR,3400000\nTokyo,JP,14000000\n",
    )
    .unwrap();
    let fewer = files.path().join("fewer.csv");
    std::fs::write(&fewer, "name,country\nOsaka,JP\n").unwrap();

    // Upload a file as a new table.
    b.open("/").await;
    b.find("#upload-file")
        .await
        .send_keys(&cities.display().to_string())
        .await
        .expect("choose a file");
    b.click_text("Upload").await;
    b.wait_for_path("/cities").await;
    b.wait_for_text("#notice", "Table created from cities.csv. It holds 3 rows.")
        .await;
    b.wait_for_count(ROWS, 3).await;

    // The same name again is refused unless replacing is asked for.
    b.open("/").await;
    b.find("#upload-file")
        .await
        .send_keys(&fewer.display().to_string())
        .await
        .expect("choose a file");
    b.fill("#upload-name", "cities").await;
    b.click_text("Upload").await;
    b.wait_for_text("form[data-upload] .status", "already exists")
        .await;

    // Replace the rows from the table's page.
    b.open("/cities").await;
    b.click_text("Replace all rows with a CSV file…").await;
    b.find("#replace-file")
        .await
        .send_keys(&fewer.display().to_string())
        .await
        .expect("choose a file");
    b.click_text("Replace the rows").await;
    b.wait_for_text("#notice", "Rows replaced from fewer.csv")
        .await;
    b.wait_for_count(ROWS, 1).await;
    assert_eq!(
        s.get("/cities.csv").text(),
        "id,name,country\r\n1,Osaka,JP\r\n"
    );

    // Create a table, add to it, delete it.
    b.open("/").await;
    b.fill("#create-name", "notes").await;
    b.fill("#create-columns", "title, body").await;
    b.click_text("Create table").await;
    b.wait_for_path("/notes").await;
    b.wait_for_text("#notice", "The table notes was created.")
        .await;
    b.fill("form[data-add-row] input[name='title']", "first")
        .await;
    b.fill(
        "form[data-add-row] textarea[name='body'], form[data-add-row] input[name='body']",
        "a note",
    )
    .await;
    b.click_text("Add row").await;
    b.wait_for_path("/notes/1").await;
    b.open("/notes").await;
    b.click_text("Delete this table…").await;
    b.click_text("Delete the table notes").await;
    b.wait_for_path("/").await;
    b.wait_for_text("#notice", "The table notes was deleted.")
        .await;
    assert_eq!(s.get("/notes").status, 404);

    // Downloads are the API's own representations.
    b.open("/people?q=seoul&_page=1&_limit=25").await;
    let csv = b
        .find("a[download$='.csv']")
        .await
        .attr("href")
        .await
        .unwrap();
    assert_eq!(csv.as_deref(), Some("/people.csv?q=seoul"));
}

/// A phone-width screen: nothing wider than the screen but the table,
/// which scrolls in its own box.
async fn phone(b: &Browser) {
    b.set_size(390, 844).await;
    for (path, shot) in [
        ("/", "07-phone-list"),
        ("/people", "08-phone-table"),
        ("/people/1", "09-phone-row"),
    ] {
        b.open(path).await;
        b.find("main").await;
        let picture = b.screenshot(shot).await;
        assert!(
            !b.overflows().await,
            "{path} is wider than a phone: {}",
            picture.display()
        );
    }
}

/// A server with a token, as a person uses it in a browser: sign in once,
/// then add, edit and repair as on any server, then sign out.
#[tokio::test(flavor = "current_thread")]
async fn a_person_signs_in_to_change_a_server_with_a_token() {
    let s = Server::start_with(&["--token", "s3cret"]);
    let rows =
        json!([{"name": "Kim Minji", "city": "Seoul"}, {"name": "Lee Jun", "city": "Busan"}]);
    let r = s.request(
        "POST",
        "/people",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", "Bearer s3cret"),
        ],
        rows.to_string().as_bytes(),
    );
    assert_eq!(r.status, 201);
    let Some(b) = Browser::start(&s.base(), true).await else {
        return;
    };
    b.open("/people").await;
    b.wait_for_count(ROWS, 2).await;
    assert!(b.find_all("form[data-add-row]").await.is_empty());
    b.screenshot("11-signed-out").await;
    b.click("a.account").await;
    b.wait_for_address("the sign-in page", |a| a.starts_with("/_signin"))
        .await;
    b.fill("#token", "not it").await;
    b.click_text("Sign in").await;
    b.wait_for_text("p.error", "not this server's token").await;
    b.fill("#token", "s3cret").await;
    b.screenshot("12-sign-in").await;
    b.click_text("Sign in").await;
    b.wait_for_path("/people").await;
    b.wait_for_text(".account", "Signed in").await;

    // The page's writes now carry the session's CSRF token.
    b.fill("form[data-add-row] input[name='name']", "Park Sora")
        .await;
    b.click_text("Add row").await;
    b.wait_for_path("/people/3").await;
    b.wait_for_text("#notice", "Row 3 was added.").await;
    b.fill("input[name='city']", "Daegu").await;
    b.click_text("Save changes").await;
    b.wait_for_text("#notice", "Saved.").await;
    assert_eq!(
        s.get("/people/3").json(),
        json!({"id": 3, "name": "Park Sora", "city": "Daegu"})
    );

    // A table whose file cannot be read is repaired from its error page.
    std::fs::write(s.dir.join("semi.csv"), "name;age,x\r\n").unwrap();
    let files = tempfile::tempdir().expect("temp dir");
    let fixed = files.path().join("fixed.csv");
    std::fs::write(&fixed, "name,age\nkim,30\n").unwrap();
    b.open("/semi").await;
    b.wait_for_text(".detail", "reads as separated by commas or semicolons")
        .await;
    b.screenshot("13-broken-table").await;
    b.find("#replace-file")
        .await
        .send_keys(&fixed.display().to_string())
        .await
        .expect("choose a file");
    b.click_text("Replace the rows").await;
    b.wait_for_path("/semi").await;
    b.wait_for_count(ROWS, 1).await;
    assert_eq!(s.get("/semi.csv").text(), "id,name,age\r\n1,kim,30\r\n");

    b.click_text("Sign out").await;
    b.wait_for_path("/").await;
    b.wait_for_text("a.account", "Sign in").await;
    assert!(b.find_all("form[data-create]").await.is_empty());
    assert_eq!(
        s.post_json("/people", r#"{"name":"x"}"#).status,
        401,
        "signing out left nothing open"
    );
    b.stop().await;
}

/// Waits until `condition` (a script's expression) is true in the page.
async fn wait_until(b: &Browser, what: &str, condition: &str) {
    let started = Instant::now();
    let code = format!("return Boolean({condition})");
    while b.script(&code).await != json!(true) {
        assert!(started.elapsed() < PATIENCE, "the page never showed {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The texts of a row's cells, found by its id.
async fn cells(b: &Browser, id: &str) -> Vec<String> {
    b.texts(&format!("tr[data-id='{id}'] td")).await
}

/// Others write through the API while a table's page is open: the page
/// shows each change in place, without reloading, and says it is live.
#[tokio::test(flavor = "current_thread")]
async fn an_open_table_page_shows_changes_as_they_happen() {
    let mut s = people();
    let Some(b) = Browser::start(&s.base(), true).await else {
        return;
    };
    b.open("/people").await;
    b.wait_for_count(ROWS, 4).await;
    b.find(".live[data-state='live']").await;
    assert_eq!(b.text(".live").await, "live");
    // Gone if the page were reloaded.
    b.script("window.marker = 'kept'; return true").await;

    // A change to a row on the page: its cells, drawn as the server draws them.
    let r = s.send_json("PATCH", "/people/2", r#"{"city": "Jeju", "age": 28}"#);
    assert_eq!(r.status, 200);
    b.wait_for_text("tr[data-id='2']", "Jeju").await;
    assert_eq!(
        cells(&b, "2").await,
        ["2", "Lee Jun", "jun@example.com", "Jeju", "28"]
    );
    let link = b.find("tr[data-id='2'] td a").await.attr("href").await;
    assert_eq!(link.unwrap().as_deref(), Some("/people/2"));
    wait_until(
        &b,
        "the age as a number",
        "document.querySelector(\"tr[data-id='2'] td:nth-child(5)\").className === 'num'",
    )
    .await;

    // A new row joins the end of the table; its text is only text.
    let evil = "<script>window.owned=1</script><img src=x onerror=\"window.owned=2\">";
    let body = json!({"name": evil, "city": "Incheon", "age": 52}).to_string();
    assert_eq!(s.post_json("/people", &body).status, 201);
    b.wait_for_count(ROWS, 5).await;
    assert_eq!(cells(&b, "5").await[1], evil);
    b.wait_for_text("[data-range]", "Rows 1–5 of 5").await;
    assert_eq!(b.text("[data-count='rows']").await, "5 rows");
    assert_eq!(
        b.script("return window.owned === undefined && !document.querySelector('tbody img, tbody script')")
            .await,
        json!(true)
    );

    // A deleted row goes.
    assert_eq!(s.request("DELETE", "/people/1", &[], b"").status, 204);
    b.wait_for_count(ROWS, 4).await;
    assert!(b.find_all("tr[data-id='1']").await.is_empty());
    b.wait_for_text("[data-range]", "Rows 1–4 of 4").await;
    assert_eq!(b.text("[data-count='rows']").await, "4 rows");
    b.screenshot("14-live-table").await;
    assert_eq!(b.script("return window.marker").await, json!("kept"));
    assert_eq!(b.text(".live").await, "live");

    // A filtered view: a row that leaves it goes.
    b.open("/people?city=Seoul").await;
    b.wait_for_count(ROWS, 1).await;
    b.find(".live[data-state='live']").await;
    let r = s.send_json("PATCH", "/people/4", r#"{"city": "Daejeon"}"#);
    assert_eq!(r.status, 200);
    b.wait_for_count(ROWS, 0).await;
    b.wait_for_text("[data-range]", "No rows").await;

    // A sorted view has no place for new rows: it says there are some.
    b.open("/people?_sort=name").await;
    b.wait_for_count(ROWS, 4).await;
    b.find(".live[data-state='live']").await;
    assert_eq!(
        s.post_json("/people", r#"{"name": "Jung Woo"}"#).status,
        201
    );
    b.wait_for_text(".live-notice", "1 new row — reload").await;
    let r = s.request(
        "PUT",
        "/people",
        &[("Content-Type", "text/csv")],
        b"id,name\n1,Someone\n",
    );
    assert!(r.status == 200 || r.status == 201, "{}", r.status);
    b.wait_for_text(".live-notice", "The table was replaced")
        .await;
    b.click("main .live-notice a").await;
    b.wait_for_count(ROWS, 1).await;

    // A row's page says when its row changed, and when it went.
    b.open("/people/1").await;
    b.find(".live[data-state='live']").await;
    assert_eq!(
        s.send_json("PATCH", "/people/1", r#"{"name": "Other"}"#)
            .status,
        200
    );
    b.wait_for_text(".live-notice", "This row was changed — reload")
        .await;
    assert_eq!(s.request("DELETE", "/people/1", &[], b"").status, 204);
    b.wait_for_text(".live-notice", "This row was deleted — reload")
        .await;

    // The server goes away: the browser keeps trying, and the sign says so.
    assert!(s.stop().success());
    b.find(".live[data-state='reconnecting']").await;
    assert_eq!(b.text(".live").await, "reconnecting…");
    b.stop().await;
}

/// A page opened again after the feed has moved on far past it starts
/// from where the table is now: the browser's copy is never reused with
/// an old position (which the feed could no longer resume from).
#[tokio::test(flavor = "current_thread")]
async fn a_page_opened_again_follows_from_now() {
    let s = Server::start_with(&["--changes-keep", "1", "--changes-memory", "0"]);
    assert_eq!(s.post_json("/people", r#"{"name": "Kim"}"#).status, 201);
    let Some(b) = Browser::start(&s.base(), true).await else {
        return;
    };
    b.open("/people").await;
    b.find(".live[data-state='live']").await;
    b.open("/").await;
    // Changes elsewhere: the table (and its tag) stay as they were.
    for n in 0..3 {
        let body = json!({ "n": n }).to_string();
        assert_eq!(s.post_json("/other", &body).status, 201);
    }
    b.open("/people").await;
    b.find(".live[data-state='live']").await;
    assert!(b.find_all(".live-notice:not([hidden])").await.is_empty());
    assert_eq!(s.post_json("/people", r#"{"name": "Lee"}"#).status, 201);
    b.wait_for_count(ROWS, 2).await;
    b.stop().await;
}

/// When the feed refuses the page (here: it takes no more subscribers),
/// the sign says offline and the page offers a reload.
#[tokio::test(flavor = "current_thread")]
async fn a_page_the_feed_refuses_says_it_is_offline() {
    use std::io::{Read, Write};
    let s = Server::start_with(&["--max-subscribers", "1"]);
    assert_eq!(s.post_json("/people", r#"{"name": "Kim"}"#).status, 201);
    // Someone else holds the only place.
    let mut other = std::net::TcpStream::connect(s.addr).expect("connect");
    other
        .set_read_timeout(Some(PATIENCE))
        .expect("read timeout");
    other
        .write_all(b"GET /_changes/people HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        .expect("ask for the feed");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(other.read(&mut byte).expect("the feed answers"), 1);
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let Some(b) = Browser::start(&s.base(), true).await else {
        return;
    };
    b.open("/people").await;
    b.find(".live[data-state='offline']").await;
    assert_eq!(b.text(".live").await, "offline");
    b.wait_for_text(".live-notice", "Live changes stopped — reload")
        .await;
    b.screenshot("15-live-offline").await;
    b.stop().await;
}

/// Chooses `value` in the select `css`, as a person does (a change event).
async fn choose(b: &Browser, css: &str, value: &str) {
    b.script(&format!(
        "const s = document.querySelector({css:?}); s.value = {value:?}; \
         s.dispatchEvent(new Event('change', {{ bubbles: true }}));"
    ))
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn an_upload_shows_what_was_detected_before_anything_is_stored() {
    let s = Server::start();
    let Some(b) = Browser::start(&s.base(), true).await else {
        return;
    };
    let files = tempfile::tempdir().expect("temp dir");
    // As Excel saves CSV in Korea: semicolons (here), CP949, CRLF.
    let korean = files.path().join("korean.csv");
    let (bytes, _, errors) = encoding_rs::EUC_KR
        .encode("이름;도시;점수\r\n김민준;서울특별시;2,5\r\n이서연;부산광역시;3\r\n");
    assert!(!errors);
    std::fs::write(&korean, &bytes).unwrap();

    b.open("/").await;
    b.find("#upload-file")
        .await
        .send_keys(&korean.display().to_string())
        .await
        .expect("choose a file");
    let said = b
        .wait_for_text("[data-detected]", "separated by semicolons")
        .await;
    assert!(said.contains("EUC-KR") && said.contains("2 rows"), "{said}");
    b.wait_for_text("table.sample tbody", "김민준").await;
    b.wait_for_text("table.sample thead", "도시").await;
    b.screenshot("20-upload-preview").await;
    // Nothing is stored until the upload is confirmed.
    assert_eq!(s.get("/korean").status, 404);
    // Told otherwise, it previews again (commas do not read this file).
    choose(&b, "#upload-delimiter", ",").await;
    b.wait_for_text("[data-detected]", "cannot be read this way: line 2")
        .await;
    choose(&b, "#upload-delimiter", "").await;
    b.wait_for_text("[data-detected]", "separated by semicolons")
        .await;
    b.click_text("Upload").await;
    b.wait_for_path("/korean").await;
    b.wait_for_text("#notice", "It holds 2 rows.").await;
    assert_eq!(
        s.get("/korean").json(),
        json!([
            {"id": 1, "이름": "김민준", "도시": "서울특별시", "점수": "2,5"},
            {"id": 2, "이름": "이서연", "도시": "부산광역시", "점수": 3}
        ])
    );

    // A file without a header is said so; told, it uploads.
    let numbers = files.path().join("numbers.csv");
    std::fs::write(&numbers, "1,2\n3,4\n").unwrap();
    b.open("/").await;
    b.find("#upload-file")
        .await
        .send_keys(&numbers.display().to_string())
        .await
        .expect("choose a file");
    b.wait_for_text("[data-detected]", "no header").await;
    choose(&b, "#upload-header", "0").await;
    b.wait_for_text("[data-detected]", "no header line").await;
    b.wait_for_text("table.sample tbody", "3").await;
    b.click_text("Upload").await;
    b.wait_for_path("/numbers").await;
    assert_eq!(
        s.get("/numbers").json(),
        json!([{"id": 1, "1": 1, "2": 2}, {"id": 2, "1": 3, "2": 4}])
    );
    b.stop().await;
}
