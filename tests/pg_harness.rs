//! The tests' own PostgreSQL (tests/common/pg.rs): fresh databases,
//! settings, durability across an immediate restart, and a cluster that
//! ends with the test binary that started it, even when it is killed.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::pg;

/// Set in the child process of `the_cluster_ends_with_its_test_binary`.
const CHILD: &str = "CSVD_PG_HARNESS_CHILD";

/// What the child says about its cluster, after the test harness's own
/// words on the same line: `MARK NONE` or `MARK PORT DATA_DIR`.
const MARK: &str = "csvd-pg-child:";

#[test]
fn databases_are_fresh_and_the_cluster_keeps_its_promises() {
    let Some(pg) = pg::available() else { return };
    let a = pg.fresh_database();
    let b = pg.fresh_database();
    assert_ne!(a, b);
    assert!(a.starts_with("postgres://"), "{a}");
    let tables = "SELECT count(*) FROM information_schema.tables \
                  WHERE table_schema NOT IN ('pg_catalog', 'information_schema')";
    assert_eq!(pg.psql(&a, tables), "0\n");
    pg.psql(
        &a,
        "CREATE TABLE t (a text); INSERT INTO t VALUES ('école'), ('Zoë')",
    );
    assert_eq!(
        pg.psql(&a, "SELECT a FROM t ORDER BY a COLLATE \"C\""),
        "Zoë\nécole\n"
    );
    assert_eq!(pg.psql(&b, tables), "0\n", "databases do not share tables");
    assert_eq!(pg.psql(&a, "SHOW server_encoding"), "UTF8\n");
    if pg.can_restart() {
        // A cluster of our own: loopback only, durable, language collation.
        assert!(a.contains("@127.0.0.1:"), "{a}");
        assert_eq!(pg.psql(&a, "SHOW listen_addresses"), "127.0.0.1\n");
        assert_eq!(pg.psql(&a, "SHOW fsync"), "on\n");
        assert_eq!(pg.psql(&a, "SHOW synchronous_commit"), "on\n");
        let provider = "SELECT datlocprovider FROM pg_database WHERE datname = current_database()";
        assert_eq!(pg.psql(&a, provider), "i\n", "ICU collation");
        // en-US puts "Zoë" before "zoe": not code point order.
        assert_eq!(
            pg.psql(&a, "SELECT 'Zoë' < 'zoe', 'Zoë' < 'zoe' COLLATE \"C\""),
            "f|t\n"
        );
        // What was committed survives a crash of the server.
        pg.psql(&a, "INSERT INTO t VALUES ('committed')");
        pg.restart_immediate();
        assert_eq!(pg.psql(&a, "SELECT count(*) FROM t"), "3\n");
        assert_eq!(
            pg.psql(&pg.fresh_database(), "SELECT 1"),
            "1\n",
            "usable after the restart"
        );
    }
}

/// Run only as the child of the test below: starts the cluster, says where
/// it is, and waits to be killed.
#[test]
fn holds_a_cluster_for_the_watchdog_test() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let Some(pg) = pg::available() else {
        println!("\n{MARK} NONE");
        return;
    };
    match (pg.local_port(), pg.local_data_dir()) {
        (Some(port), Some(data)) => println!("\n{MARK} {port} {}", data.display()),
        _ => println!("\n{MARK} NONE"),
    }
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

#[test]
fn the_cluster_ends_with_its_test_binary() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "holds_a_cluster_for_the_watchdog_test",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the child test binary");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let said = BufReader::new(stdout).lines().find_map(|line| {
            let line = line.ok()?;
            Some(line.split_once(MARK)?.1.trim().to_string())
        });
        let _ = tx.send(said);
    });
    let said = rx.recv_timeout(Duration::from_secs(120)).ok().flatten();
    let said = match said {
        Some(said) if said != "NONE" => said,
        none => {
            let _ = child.kill();
            let status = child.wait();
            assert!(
                none.is_some(),
                "the child test binary said nothing about its cluster ({status:?})"
            );
            return;
        }
    };
    let mut parts = said.split(' ');
    let port: u16 = parts.next().unwrap().parse().unwrap();
    let data = PathBuf::from(parts.next().unwrap());
    let up = || TcpStream::connect(("127.0.0.1", port)).is_ok();
    assert!(up(), "the child's cluster listens on {port}");
    assert!(data.is_dir());
    // As a crash would end it: no destructor, no exit handler runs.
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (up() || data.parent().unwrap().exists()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!up(), "the cluster on port {port} outlived its test binary");
    assert!(
        !data.parent().unwrap().exists(),
        "{} was not removed",
        data.display()
    );
}
