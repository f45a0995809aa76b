//! PostgreSQL restarted as a crash would (`pg_ctl restart -m immediate`)
//! while two csvd instances write: no acknowledged write is lost, none
//! refused is kept, and csvd recovers by itself. A binary of its own: the
//! restart cuts every connection to the cluster this binary started.

mod common;

use std::time::Duration;

use common::load::{assert_outcomes, load_with_fault, try_request};
use common::{pg, Server};

#[test]
fn postgres_restarted_mid_load_loses_no_acknowledged_write_and_csvd_recovers() {
    let Some(pg) = pg::available() else { return };
    if !pg.can_restart() {
        eprintln!("SKIPPED: the PostgreSQL given by CSVD_TEST_POSTGRES cannot be restarted here");
        return;
    }
    let url = pg.fresh_database();
    let a = Server::start_source(&url, &[]);
    let b = Server::start_source(&url, &[]);
    let outcomes = load_with_fault(vec![a.addr, b.addr], 40, 30, move || {
        pg.restart_immediate();
    });
    assert!(outcomes.acked.len() >= 30);
    // Both instances answer again by themselves: no restart of csvd.
    for server in [&a, &b] {
        let mut answer = try_request(server.addr, "GET", "/load", &[], None);
        for _ in 0..100 {
            if answer.as_ref().is_some_and(|a| a.status == 200) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            answer = try_request(server.addr, "GET", "/load", &[], None);
        }
        assert_eq!(answer.map(|a| a.status), Some(200), "csvd did not recover");
    }
    assert_outcomes(a.addr, &outcomes);
    // Single rows too, on the connections kept for lookups, made anew.
    let acked = outcomes.acked.iter().next().expect("an acknowledged write");
    for server in [&a, &b] {
        let mut answer = try_request(server.addr, "GET", &format!("/load/{acked}"), &[], None);
        for _ in 0..100 {
            if answer.as_ref().is_some_and(|a| a.status == 200) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            answer = try_request(server.addr, "GET", &format!("/load/{acked}"), &[], None);
        }
        assert_eq!(answer.map(|a| a.status), Some(200));
    }
    eprintln!(
        "restart: {} acknowledged, {} of unknown outcome, {} refused",
        outcomes.acked.len(),
        outcomes.unknown.len(),
        outcomes.refused.len()
    );
}
