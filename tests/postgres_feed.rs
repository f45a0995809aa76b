//! The change feed on PostgreSQL: every instance on one database numbers
//! changes in one order, gap-free, each change once, and follows every
//! other instance's changes.
//!
//! Every test here skips loudly without PostgreSQL (and fails instead when
//! `CSVD_REQUIRE_POSTGRES=1`, as in CI).

mod common;

use std::net::SocketAddr;

use common::load::request;
use common::{pg, Server};

/// A database of its own for one test, or `None` (skipped, said loudly).
fn database() -> Option<String> {
    Some(pg::available()?.fresh_database())
}

/// `(first, n)` of every row of `csvd_changes`, in order.
fn recorded(url: &str) -> Vec<(u64, u64)> {
    let pg = pg::available().expect("a PostgreSQL");
    pg.psql(url, "SELECT first, n FROM csvd_changes ORDER BY first")
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (first, n) = line.split_once('|').expect("first|n");
            (first.parse().unwrap(), n.parse().unwrap())
        })
        .collect()
}

/// Asserts the rows number changes 1, 2, … with no gap and none twice, and
/// returns how many changes they hold.
fn assert_gap_free(rows: &[(u64, u64)]) -> u64 {
    let mut next = 1;
    for &(first, n) in rows {
        assert_eq!(first, next, "a gap or an overlap before {first}: {rows:?}");
        assert!(n >= 1);
        next = first + n;
    }
    next - 1
}

/// Writes of every kind through one instance, from one thread; returns the
/// changes acknowledged (a refused write is none).
fn writes(addr: SocketAddr, who: usize, rounds: usize) -> u64 {
    let mut changes = 0;
    for round in 0..rounds {
        let id = format!("w{who}-{round}");
        let made = request(
            addr,
            "PUT",
            &format!("/people/{id}"),
            &[],
            Some(r#"{"name":"kim"}"#),
        );
        assert!(made.status == 201 || made.status == 200, "{}", made.text());
        changes += 1;
        let posted = request(addr, "POST", "/people", &[], Some(r#"{"name":"lee"}"#));
        assert_eq!(posted.status, 201, "{}", posted.text());
        changes += 1;
        let patched = request(
            addr,
            "PATCH",
            &format!("/people/{id}"),
            &[],
            Some(r#"{"city":"Seoul"}"#),
        );
        assert_eq!(patched.status, 200, "{}", patched.text());
        changes += 1;
        // Refused: numbers nothing.
        let stale = request(
            addr,
            "PATCH",
            &format!("/people/{id}"),
            &[("If-Match", "\"stale\"")],
            Some(r#"{"city":"Busan"}"#),
        );
        assert_eq!(stale.status, 412, "{}", stale.text());
        if round % 2 == 0 {
            let gone = request(addr, "DELETE", &format!("/people/{id}"), &[], None);
            assert_eq!(gone.status, 204, "{}", gone.text());
            changes += 1;
        }
    }
    changes
}

#[test]
fn concurrent_writers_on_two_instances_number_changes_gap_free_each_once() {
    let Some(url) = database() else { return };
    let a = Server::start_source(&url, &[]);
    let b = Server::start_source(&url, &[]);
    let threads: Vec<_> = (0..6)
        .map(|who| {
            let addr = if who % 2 == 0 { a.addr } else { b.addr };
            std::thread::spawn(move || writes(addr, who, 12))
        })
        .collect();
    let acknowledged: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    // A bulk insert is one row of changes holding each of its rows.
    let bulk = request(
        a.addr,
        "POST",
        "/people",
        &[],
        Some(r#"[{"name":"a"},{"name":"b"},{"name":"c"}]"#),
    );
    assert_eq!(bulk.status, 201, "{}", bulk.text());
    let rows = recorded(&url);
    assert_eq!(assert_gap_free(&rows), acknowledged + 3);
    assert_eq!(rows.last().unwrap().1, 3);
    let pg = pg::available().unwrap();
    let next = pg.psql(&url, "SELECT next FROM csvd_feed");
    assert_eq!(next.trim(), (acknowledged + 4).to_string());
}

#[test]
fn a_database_of_the_previous_schema_is_upgraded_in_place() {
    let Some(url) = database() else { return };
    let pg = pg::available().unwrap();
    {
        let a = Server::start_source(&url, &[]);
        let made = request(a.addr, "POST", "/people", &[], Some(r#"{"name":"kim"}"#));
        assert_eq!(made.status, 201);
    }
    // As the version before the feed left it.
    pg.psql(
        &url,
        "DROP TABLE csvd_feed, csvd_changes; \
         UPDATE csvd_meta SET value = '1' WHERE key = 'schema'",
    );
    let a = Server::start_source(&url, &[]);
    assert_eq!(request(a.addr, "GET", "/people/1", &[], None).status, 200);
    let made = request(a.addr, "POST", "/people", &[], Some(r#"{"name":"lee"}"#));
    assert_eq!(made.status, 201, "{}", made.text());
    assert_eq!(recorded(&url), [(1, 1)]);
    assert_eq!(
        pg.psql(&url, "SELECT value FROM csvd_meta WHERE key = 'schema'")
            .trim(),
        "2"
    );
}
