//! The web page in a browser with JavaScript turned off: reading, sorting,
//! searching, paging and adding rows work with plain links and forms; the
//! controls that need the script say so instead of failing, and a page
//! does not follow changes (it shows the table as it was when loaded).

mod browser;
mod common;

use browser::Browser;
use common::Server;
use serde_json::json;

const ROWS: &str = "table.rows tbody tr";

#[tokio::test(flavor = "current_thread")]
async fn reading_and_adding_need_no_script() {
    let s = Server::start();
    let rows: Vec<_> = (1..=30)
        .map(|n| json!({"item": format!("item {n}"), "size": n % 7}))
        .collect();
    let body = serde_json::Value::Array(rows).to_string();
    assert_eq!(s.post_json("/stock", &body).status, 201);
    let Some(b) = Browser::start(&s.base(), false).await else {
        return;
    };
    assert_eq!(
        b.script("return 1").await,
        json!(1),
        "the driver itself runs scripts"
    );

    b.open("/").await;
    b.click("table.list a[href='/stock']").await;
    b.wait_for_path("/stock").await;
    b.wait_for_count(ROWS, 25).await;
    assert!(b.text(".pager").await.contains("Page 1 of 2"));
    // Nothing follows the changes: no live sign, no notice.
    assert!(b.find_all(".live, .live-notice").await.is_empty());

    b.click("a[rel=next]").await;
    b.wait_for_address("page 2", |a| a.contains("_page=2"))
        .await;
    b.wait_for_count(ROWS, 5).await;

    b.click_text("size").await;
    b.wait_for_address("sorted", |a| a.contains("_sort=size"))
        .await;
    b.fill("#q", "item 2").await;
    b.click("form#query button[type=submit]").await;
    b.wait_for_address("a search", |a| a.contains("q=item+2"))
        .await;
    // item 2, item 20…29: sorted by size, ascending.
    b.wait_for_count(ROWS, 11).await;
    let sizes = b.texts(&format!("{ROWS} td:nth-child(3)")).await;
    let mut sorted = sizes.clone();
    sorted.sort();
    assert_eq!(sizes, sorted);

    // Adding a row is a plain form post.
    b.open("/stock").await;
    b.fill("form[data-add-row] input[name='item']", "new item")
        .await;
    b.fill("form[data-add-row] input[name='size']", "3").await;
    b.click_text("Add row").await;
    b.wait_for_path("/stock/31").await;
    assert_eq!(b.value("input[name='item']").await, "new item");
    assert_eq!(s.get("/stock/31").json()["item"], json!("new item"));

    // What needs the script is disabled, and the page says why.
    assert!(!b
        .find("form.edit-row button[type=submit]")
        .await
        .is_enabled()
        .await
        .unwrap());
    b.wait_for_text("noscript p, p.note", "need JavaScript")
        .await;
    b.screenshot("10-row-without-script").await;
    b.stop().await;
}
