//! Bulk writes against the real binary: a large CSV, JSON array and NDJSON
//! body round-trips exactly, in bounded memory, and large writes beyond
//! the budget of bodies in flight wait or are refused with 503 without
//! harming any data.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Response, Server};
use csvd::store::{parse_csv, write_csv, Layout, Row};

/// A CSV body of about `bytes` bytes: an id column, then cells that need
/// quoting (commas, quotes, line ends), non-ASCII text and empty cells.
fn csv_body(bytes: usize) -> Vec<u8> {
    let columns = ["id", "name", "email", "age", "city", "note"].map(String::from);
    let cities = ["Seoul", "Paris, France", "Lima", "서울", "\"Quoted\" Town"];
    let mut rows = Vec::new();
    let mut size = 0;
    for i in 1.. {
        let row = Row::from_cells([
            i.to_string(),
            format!("person {i}"),
            format!("person{i}@example.com"),
            (18 + i % 60).to_string(),
            cities[i % cities.len()].to_string(),
            match i % 7 {
                0 => String::new(),
                1 => format!("line one\r\nline two of {i}"),
                _ => format!("a note about row {i}, with a comma"),
            },
        ]);
        size += 90;
        rows.push(row);
        if size >= bytes {
            break;
        }
    }
    let mut out = Vec::new();
    write_csv(
        &mut out,
        &columns,
        rows.iter(),
        Layout {
            bom: false,
            crlf: true,
            ..Layout::default()
        },
    )
    .unwrap();
    out
}

/// Kibibytes of a `VmRSS` or `VmHWM` line of the server's status.
fn memory_kib(server: &Server, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc status"))
}

/// Sends one request with a body, and returns the answer and the peak of
/// resident memory it took above what the server held before, in bytes.
/// The server must be fresh: the peak is the process's high-water mark.
fn measured(server: &Server, method: &str, path: &str, kind: &str, body: &[u8]) -> (Response, u64) {
    assert_eq!(server.get("/_health").status, 200);
    // Start the high-water mark from here where the system allows it.
    let _ = std::fs::write(format!("/proc/{}/clear_refs", server.child.id()), "5");
    let before = memory_kib(server, "VmRSS");
    let answer = server.request(method, path, &[("Content-Type", kind)], body);
    let peak = memory_kib(server, "VmHWM").saturating_sub(before) * 1024;
    eprintln!(
        "{method} {path} of {} bytes of {kind}: {peak} bytes more memory at the peak ({:.1}×)",
        body.len(),
        peak as f64 / body.len() as f64
    );
    (answer, peak)
}

/// What a table holds, as CSV text, for comparing.
fn cells(csv: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let (columns, rows, _) = parse_csv(csv).unwrap();
    let rows = rows
        .iter()
        .map(|r| r.cells(columns.len()).map(str::to_string).collect())
        .collect();
    (columns, rows)
}

#[test]
fn a_large_csv_put_round_trips_exactly_in_bounded_memory() {
    let body = csv_body(20_000_000);
    let mut server = Server::start();
    let (answer, peak) = measured(&server, "PUT", "/people", "text/csv", &body);
    assert_eq!(answer.status, 201, "{}", answer.text());
    let info = answer.json();
    assert_eq!(
        info["rows"].as_u64().unwrap() as usize,
        cells(&body).1.len()
    );
    // A guard, not a benchmark: the body, its rows and the table are all
    // in it (bench/bulk.sh measures it exactly).
    assert!(
        peak < 5 * body.len() as u64,
        "a PUT of {} bytes of CSV took {peak} bytes more memory at its peak",
        body.len()
    );
    // What comes back is what was sent, byte for byte.
    let csv = server.get("/people.csv");
    assert_eq!(csv.status, 200);
    assert!(
        csv.body == body,
        "GET /people.csv differs from the body sent"
    );
    // And so is the file, once written, and after a restart.
    let file = server.file_after_stop("people");
    assert!(cells(file.as_bytes()) == cells(&body));
    server.restart_after_crash();
    let again = server.get("/people.csv");
    assert!(again.body == body, "the table differs after a restart");
}

#[test]
fn a_large_csv_without_ids_gets_them_in_bounded_memory() {
    let with_ids = csv_body(8_000_000);
    // The same rows without their id column.
    let body: Vec<u8> = String::from_utf8(with_ids.clone())
        .unwrap()
        .split_inclusive("\r\n")
        .map(|line| match line.split_once(',') {
            Some((_, rest)) if !line.starts_with("line two") => rest.to_string(),
            _ => line.to_string(),
        })
        .collect::<String>()
        .into_bytes();
    let (columns, rows) = cells(&with_ids);
    assert_eq!(cells(&body).1.len(), rows.len());
    let server = Server::start();
    let (answer, peak) = measured(&server, "PUT", "/people", "text/csv", &body);
    assert_eq!(answer.status, 201, "{}", answer.text());
    assert!(
        peak < 5 * body.len() as u64,
        "{peak} bytes for {}",
        body.len()
    );
    // Each row got its position as its id: the table is the one with ids.
    assert!(cells(&server.get("/people.csv").body) == (columns.clone(), rows.clone()));
    // More rows without ids continue from the last.
    let more = server.request(
        "POST",
        "/people",
        &[("Content-Type", "text/csv")],
        b"name,city\nnew one,Oslo\nnew two,Lima\n",
    );
    assert_eq!(more.status, 201, "{}", more.text());
    let last = rows.len();
    assert_eq!(
        server.get(&format!("/people/{}", last + 2)).json()["name"],
        "new two"
    );
    assert_eq!(
        server.get(&format!("/people/{last}")).json()["name"],
        format!("person {last}")
    );
}

#[test]
fn large_json_and_ndjson_bodies_round_trip_in_bounded_memory() {
    let (columns, rows) = cells(&csv_body(4_000_000));
    let object = |row: &Vec<String>| {
        let fields: serde_json::Map<String, serde_json::Value> = columns
            .iter()
            .zip(row)
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        serde_json::Value::Object(fields).to_string()
    };
    let array = format!(
        "[{}]",
        rows.iter().map(object).collect::<Vec<_>>().join(",\n")
    );
    let lines: String = rows.iter().map(|r| object(r) + "\n").collect();
    for (kind, body) in [("application/json", array), ("application/x-ndjson", lines)] {
        let server = Server::start();
        let (answer, peak) = measured(&server, "PUT", "/people", kind, body.as_bytes());
        assert_eq!(answer.status, 201, "{kind}: {}", answer.text());
        assert!(
            peak < 5 * body.len() as u64,
            "a PUT of {} bytes of {kind} took {peak} bytes more memory at its peak",
            body.len()
        );
        let back = server.get("/people.csv");
        assert!(
            cells(&back.body) == (columns.clone(), rows.clone()),
            "{kind}"
        );
    }
}

/// A request whose body is held back: its head is sent with `Expect:
/// 100-continue`, and the server's first answer line is returned.
struct Held {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Held {
    fn send(server: &Server, path: &str, length: usize) -> Held {
        let mut stream = TcpStream::connect(server.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let head = format!(
            "PUT {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/csv\r\nContent-Length: {length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
            server.addr
        );
        stream.write_all(head.as_bytes()).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Held { stream, reader }
    }

    /// The status line of the server's first answer (100, or the final one).
    fn status_line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        if line.starts_with("HTTP/1.1 100") {
            // The blank line after an interim answer.
            let mut blank = String::new();
            self.reader.read_line(&mut blank).unwrap();
        }
        line
    }

    /// Sends the body and reads the final answer.
    fn finish(mut self, body: &[u8]) -> Response {
        self.stream.write_all(body).unwrap();
        Response::parse(&self.rest(), false)
    }

    /// What the server sends from here until it closes the connection.
    fn rest(mut self) -> Vec<u8> {
        let mut raw = Vec::new();
        self.reader.read_to_end(&mut raw).unwrap();
        raw
    }
}

#[test]
fn large_writes_beyond_the_bulk_budget_are_refused_with_503_and_harm_nothing() {
    let server = Server::start_with(&["--max-bulk-bytes", "3000000", "--bulk-wait", "0"]);
    let first = csv_body(2_500_000);
    let second = csv_body(2_000_000);
    // The first large body holds 2.5 MB of the 3 MB: the server asks for
    // the body once it has its room.
    let mut holding = Held::send(&server, "/first", first.len());
    assert!(holding.status_line().starts_with("HTTP/1.1 100"));
    // A second does not fit: refused at once, its body never asked for.
    let mut refused = Held::send(&server, "/second", second.len());
    let line = refused.status_line();
    assert!(line.starts_with("HTTP/1.1 503"), "{line}");
    let refused = Response::parse(&[line.as_bytes(), &refused.rest()].concat(), false);
    assert_eq!(refused.header("retry-after"), Some("5"));
    let detail = refused.json()["detail"].as_str().unwrap().to_string();
    assert!(
        detail.contains("--max-bulk-bytes") && detail.contains("nothing was written"),
        "{detail}"
    );
    assert_eq!(server.get("/second").status, 404);
    // Small writes go on meanwhile.
    assert_eq!(server.post_json("/small", r#"{"name":"kim"}"#).status, 201);
    // The first completes; then the second fits.
    let done = holding.finish(&first);
    assert_eq!(done.status, 201, "{}", done.text());
    let answer = server.request("PUT", "/second", &[("Content-Type", "text/csv")], &second);
    assert_eq!(answer.status, 201, "{}", answer.text());
    assert!(server.get("/first.csv").body == first);
    assert!(server.get("/second.csv").body == second);
    assert_eq!(server.get("/small").json().as_array().unwrap().len(), 1);
}

#[test]
fn a_large_write_waits_for_room_while_another_is_in_flight() {
    let server = Server::start_with(&["--max-bulk-bytes", "3000000", "--bulk-wait", "120"]);
    let first = csv_body(2_500_000);
    let second = csv_body(2_000_000);
    let mut holding = Held::send(&server, "/first", first.len());
    assert!(holding.status_line().starts_with("HTTP/1.1 100"));
    // Sent while the first holds the room: it waits, then goes on.
    let mut waiting = Held::send(&server, "/second", second.len());
    let done = holding.finish(&first);
    assert_eq!(done.status, 201, "{}", done.text());
    assert!(waiting.status_line().starts_with("HTTP/1.1 100"));
    let done = waiting.finish(&second);
    assert_eq!(done.status, 201, "{}", done.text());
    assert!(server.get("/first.csv").body == first);
    assert!(server.get("/second.csv").body == second);
}
