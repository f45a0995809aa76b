//! `csvd watch` against a fake change feed: a loopback listener in the
//! test hands each connection's request head to the test, which writes
//! the answer (Server-Sent Events) itself, one event at a time, and can
//! drop the connection whenever it likes.
//!
//! Every wait is bounded: reads from the fake's connections and from the
//! client's output time out, and a client still running at the end of a
//! test is killed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_csvd");

/// How long any one wait may take before the test fails.
const WAIT: Duration = Duration::from_secs(10);

/// The fake feed server: every connection, once its request head has
/// been read, is handed over.
struct Fake {
    port: u16,
    connections: Receiver<Conn>,
}

/// One connection to the fake, its request read.
struct Conn {
    head: String,
    stream: TcpStream,
}

impl Fake {
    fn start() -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().unwrap().port();
        let (sender, connections) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                stream.set_read_timeout(Some(WAIT)).unwrap();
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => break,
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                if sender.send(Conn { head, stream }).is_err() {
                    return;
                }
            }
        });
        Fake { port, connections }
    }

    /// The next connection the client makes.
    fn next(&self) -> Conn {
        self.connections
            .recv_timeout(WAIT)
            .expect("the client connects to the feed")
    }
}

impl Conn {
    /// The request line: `GET /_changes… HTTP/1.1`.
    fn request_line(&self) -> &str {
        self.head.lines().next().unwrap_or("")
    }

    /// The value of a request header, by name in any case.
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (have, value) = line.split_once(':')?;
            have.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }

    fn send(&mut self, text: &str) {
        self.stream.write_all(text.as_bytes()).unwrap();
        self.stream.flush().unwrap();
    }

    /// The head of an event stream (delimited by the connection's close),
    /// the server's `retry:` and a comment.
    fn start_stream(&mut self) {
        self.send(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
             Connection: close\r\n\r\nretry: 10\n: csvd change feed\n\n",
        );
    }

    fn event(&mut self, seq: u64) -> String {
        let data = change(seq);
        self.send(&format!("id: {seq}\nevent: insert\ndata: {data}\n\n"));
        data
    }

    fn answer(&mut self, status: &str, content_type: &str, body: &str) {
        self.send(&format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        ));
    }
}

/// The JSON of change `seq`.
fn change(seq: u64) -> String {
    format!(
        r#"{{"seq":{seq},"table":"people","id":"{seq}","op":"insert","row":{{"id":{seq},"name":"p{seq}"}},"etag":"\"{seq:016x}\""}}"#
    )
}

/// A running `csvd watch`, its output read line by line as it comes.
struct Watch {
    child: Child,
    stdout: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    stderr_lines: Receiver<String>,
}

impl Watch {
    fn start(args: &[&str]) -> Watch {
        let mut child = Command::new(BIN)
            .arg("watch")
            .args(args)
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start csvd watch");
        let stdout = lines_of(child.stdout.take().unwrap(), None);
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_lines = lines_of(child.stderr.take().unwrap(), Some(stderr.clone()));
        Watch {
            child,
            stdout,
            stderr,
            stderr_lines,
        }
    }

    /// The next line on stdout.
    fn line(&self) -> String {
        self.stdout.recv_timeout(WAIT).unwrap_or_else(|_| {
            panic!("no line on stdout; stderr: {}", self.stderr.lock().unwrap())
        })
    }

    /// Waits for a line on stderr that contains `text`.
    fn says(&self, text: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr_lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => continue,
                Err(_) => panic!(
                    "stderr never said `{text}`: {}",
                    self.stderr.lock().unwrap()
                ),
            }
        }
    }

    /// Waits for the exit status.
    fn exit_code(&mut self) -> i32 {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let stderr = self.stderr.lock().unwrap().clone();
                assert!(!stderr.contains("panicked"), "{stderr}");
                return status.code().expect("an exit code, not a signal");
            }
            assert!(Instant::now() < deadline, "csvd watch did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A thread that sends each line read (and keeps the whole text, when
/// asked to).
fn lines_of(
    reader: impl Read + Send + 'static,
    all: Option<Arc<Mutex<String>>>,
) -> Receiver<String> {
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { return };
            if let Some(all) = &all {
                let mut all = all.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
            let _ = sender.send(line);
        }
    });
    lines
}

#[test]
fn piped_changes_are_ndjson_each_printed_as_it_arrives() {
    let fake = Fake::start();
    let watch = Watch::start(&[&format!(":{}/people", fake.port)]);
    let mut conn = fake.next();
    assert_eq!(
        conn.request_line(),
        "GET /_changes/people?since=now HTTP/1.1"
    );
    assert_eq!(conn.header("accept").as_deref(), Some("text/event-stream"));
    assert_eq!(conn.header("last-event-id"), None);
    conn.start_stream();
    // Each line is read before the next event is sent: nothing waits for
    // more of the stream.
    for seq in 1..=3 {
        let sent = conn.event(seq);
        assert_eq!(watch.line(), sent);
    }
    // Heartbeats print nothing.
    conn.send(": heartbeat\n\n");
    let sent = conn.event(4);
    assert_eq!(watch.line(), sent);
}

#[test]
fn server_and_row_urls_are_rewritten_to_their_feeds() {
    let fake = Fake::start();
    for (given, wanted) in [
        (format!(":{}", fake.port), "/_changes?since=now"),
        (format!(":{}/", fake.port), "/_changes?since=now"),
        (
            format!(":{}/people/3", fake.port),
            "/_changes/people/3?since=now",
        ),
        (
            format!("http://127.0.0.1:{}/_changes/people", fake.port),
            "/_changes/people?since=now",
        ),
    ] {
        let _watch = Watch::start(&[&given]);
        let conn = fake.next();
        assert_eq!(
            conn.request_line(),
            format!("GET {wanted} HTTP/1.1"),
            "{given}"
        );
    }
}

#[test]
fn since_and_query_items_and_headers_are_sent() {
    let fake = Fake::start();
    let _watch = Watch::start(&[
        &format!(":{}/people", fake.port),
        "city==Seoul",
        "age_gt==30",
        "X-Team:data",
        "--since",
        "41",
    ]);
    let conn = fake.next();
    assert_eq!(
        conn.request_line(),
        "GET /_changes/people?city=Seoul&age_gt=30&since=41 HTTP/1.1"
    );
    assert_eq!(conn.header("x-team").as_deref(), Some("data"));
}

#[test]
fn bearer_auth_is_sent() {
    let fake = Fake::start();
    let _watch = Watch::start(&[
        &format!(":{}/people", fake.port),
        "-A",
        "bearer",
        "-a",
        "s3cret",
    ]);
    let conn = fake.next();
    assert_eq!(
        conn.header("authorization").as_deref(),
        Some("Bearer s3cret")
    );
}

#[test]
fn a_dropped_stream_is_resumed_after_the_last_change_without_repeats() {
    let fake = Fake::start();
    let watch = Watch::start(&[&format!(":{}/people", fake.port)]);
    let mut conn = fake.next();
    conn.start_stream();
    let sent = conn.event(1);
    assert_eq!(watch.line(), sent);
    let sent = conn.event(2);
    assert_eq!(watch.line(), sent);
    drop(conn);
    let mut conn = fake.next();
    watch.says("reconnecting in");
    assert_eq!(conn.header("last-event-id").as_deref(), Some("2"));
    assert_eq!(conn.request_line(), "GET /_changes/people HTTP/1.1");
    conn.start_stream();
    // The server sends change 2 again: it is not printed twice.
    conn.event(2);
    let sent = conn.event(3);
    assert_eq!(watch.line(), sent);
}

#[test]
fn an_end_event_is_followed_by_a_reconnect() {
    let fake = Fake::start();
    let watch = Watch::start(&[&format!(":{}/people", fake.port), "--since", "4"]);
    let mut conn = fake.next();
    assert_eq!(conn.request_line(), "GET /_changes/people?since=4 HTTP/1.1");
    conn.start_stream();
    let sent = conn.event(5);
    assert_eq!(watch.line(), sent);
    conn.send(
        "event: end\ndata: {\"reason\":\"shutdown\",\"detail\":\"the server is stopping\",\"last_seq\":5}\n\n",
    );
    // The connection is left open: the client ends it.
    let mut again = fake.next();
    let said = watch.says("reconnecting in");
    assert!(said.contains("shutdown"), "{said}");
    assert_eq!(again.header("last-event-id").as_deref(), Some("5"));
    again.start_stream();
    let sent = again.event(6);
    assert_eq!(watch.line(), sent);
    drop(conn);
}

#[test]
fn an_end_event_at_the_limit_exits_0() {
    let fake = Fake::start();
    let mut watch = Watch::start(&[&format!(":{}/people", fake.port), "limit==1"]);
    let mut conn = fake.next();
    conn.start_stream();
    let sent = conn.event(1);
    assert_eq!(watch.line(), sent);
    conn.send("event: end\ndata: {\"reason\":\"limit\",\"last_seq\":1}\n\n");
    assert_eq!(watch.exit_code(), 0, "{}", watch.stderr());
}

#[test]
fn a_position_no_longer_kept_exits_4_and_says_to_reload() {
    let fake = Fake::start();
    let mut watch = Watch::start(&[&format!(":{}/people", fake.port), "--since", "3"]);
    let mut conn = fake.next();
    conn.answer(
        "410 Gone",
        "application/problem+json",
        r#"{"type":"about:blank","title":"Gone","status":410,"detail":"changes after 3 are no longer kept","oldest_seq":10,"last_seq":25}"#,
    );
    assert_eq!(watch.exit_code(), 4);
    let stderr = watch.stderr();
    assert!(
        stderr.contains(
            "changes after 3 are no longer kept (oldest kept: 10); reload the table, or watch \
             again with --since now"
        ),
        "{stderr}"
    );
}

#[test]
fn other_refusals_are_printed_and_exit_with_their_class() {
    let fake = Fake::start();
    let mut watch = Watch::start(&[&format!(":{}/nope", fake.port)]);
    let mut conn = fake.next();
    conn.answer(
        "404 Not Found",
        "application/problem+json",
        r#"{"title":"Not Found","status":404,"detail":"no table `nope`"}"#,
    );
    assert_eq!(watch.exit_code(), 4);
    let stderr = watch.stderr();
    assert!(stderr.contains("no table `nope`"), "{stderr}");
    assert!(stderr.contains("HTTP 404 Not Found"), "{stderr}");
}

#[test]
fn a_503_is_tried_again() {
    let fake = Fake::start();
    let watch = Watch::start(&[&format!(":{}/people", fake.port)]);
    let mut conn = fake.next();
    conn.send(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n",
    );
    let mut again = fake.next();
    watch.says("HTTP 503");
    again.start_stream();
    let sent = again.event(1);
    assert_eq!(watch.line(), sent);
}

#[test]
fn count_exits_0_after_that_many_changes() {
    let fake = Fake::start();
    let mut watch = Watch::start(&[&format!(":{}/people", fake.port), "--count", "2"]);
    let mut conn = fake.next();
    conn.start_stream();
    let sent = conn.event(1);
    assert_eq!(watch.line(), sent);
    let sent = conn.event(2);
    assert_eq!(watch.line(), sent);
    assert_eq!(watch.exit_code(), 0, "{}", watch.stderr());
}

#[test]
fn no_reconnect_exits_1_when_the_stream_ends() {
    let fake = Fake::start();
    let mut watch = Watch::start(&[&format!(":{}/people", fake.port), "--no-reconnect"]);
    let mut conn = fake.next();
    conn.start_stream();
    let sent = conn.event(1);
    assert_eq!(watch.line(), sent);
    drop(conn);
    assert_eq!(watch.exit_code(), 1);
    assert!(
        !watch.stderr().contains("reconnecting"),
        "{}",
        watch.stderr()
    );
}

#[test]
fn formatted_lines_show_seq_op_table_id_and_row() {
    let fake = Fake::start();
    let watch = Watch::start(&[&format!(":{}/people", fake.port), "--pretty", "format"]);
    let mut conn = fake.next();
    conn.start_stream();
    conn.event(7);
    assert_eq!(watch.line(), r#"   7 insert people/7 {"id":7,"name":"p7"}"#);
    conn.send("id: 8\nevent: delete\ndata: {\"seq\":8,\"table\":\"people\",\"id\":\"7\",\"op\":\"delete\"}\n\n");
    assert_eq!(watch.line(), "   8 delete people/7");
}

#[test]
fn ctrl_c_exits_0() {
    let fake = Fake::start();
    let mut watch = Watch::start(&[&format!(":{}/people", fake.port)]);
    let mut conn = fake.next();
    conn.start_stream();
    // The first change printed: the client is streaming (and its signal
    // handler is in place).
    let sent = conn.event(1);
    assert_eq!(watch.line(), sent);
    let interrupted = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -INT {}", watch.child.id()))
        .status()
        .expect("run sh");
    assert!(interrupted.success());
    assert_eq!(watch.exit_code(), 0);
}

#[test]
fn a_server_not_listening_yet_is_waited_for() {
    // A port nothing listens on (until the fake takes it again below).
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let watch = Watch::start(&[&format!("http://127.0.0.1:{port}/people")]);
    let said = watch.says("reconnecting in");
    assert!(said.contains("connection refused"), "{said}");
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("take the port again");
    let (stream, _) = listener.accept().expect("the client connects once it can");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    assert_eq!(line, "GET /_changes/people?since=now HTTP/1.1\r\n");
}

#[test]
fn the_shell_watches_until_ctrl_c_and_returns_to_the_prompt() {
    use rexpect::session::spawn_command;

    let fake = Fake::start();
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(BIN);
    command
        .args(["shell", &format!("http://127.0.0.1:{}", fake.port)])
        .env("NO_COLOR", "1")
        .env("TERM", "xterm")
        .env("CSVD_HISTORY", dir.path().join("history"));
    let mut shell =
        spawn_command(command, Some(WAIT.as_millis() as u64)).expect("start csvd shell");
    // The shell asks for the table list first: this is no csvd server.
    let mut conn = fake.next();
    assert_eq!(conn.request_line(), "GET / HTTP/1.1");
    conn.answer("404 Not Found", "text/plain", "no");
    let prompt = format!("127.0.0.1:{}> ", fake.port);
    shell.exp_string(&prompt).unwrap();

    shell.send_line(":watch /people city==Seoul").unwrap();
    let mut conn = fake.next();
    assert_eq!(
        conn.request_line(),
        "GET /_changes/people?city=Seoul&since=now HTTP/1.1"
    );
    shell.exp_string("watching http://127.0.0.1:").unwrap();
    conn.start_stream();
    conn.event(1);
    shell
        .exp_string(r#"   1 insert people/1 {"id":1,"name":"p1"}"#)
        .unwrap();
    shell.send_control('c').unwrap();
    shell.exp_string("(stopped watching)").unwrap();
    shell.exp_string(&prompt).unwrap();

    // Without a path, every table's feed; the shell is still there.
    shell.send_line(":watch --since 9").unwrap();
    let conn = fake.next();
    assert_eq!(conn.request_line(), "GET /_changes?since=9 HTTP/1.1");
    shell.send_control('c').unwrap();
    shell.exp_string("(stopped watching)").unwrap();
    shell.exp_string(&prompt).unwrap();
    shell.send_control('d').unwrap();
    shell.exp_eof().unwrap();
}

#[test]
fn an_answer_that_is_not_a_stream_exits_1() {
    let fake = Fake::start();
    let mut watch = Watch::start(&[&format!(":{}/people", fake.port)]);
    let mut conn = fake.next();
    conn.answer("200 OK", "application/json", "[]");
    assert_eq!(watch.exit_code(), 1);
    let stderr = watch.stderr();
    assert!(
        stderr.contains("the answer is not an event stream (Content-Type: application/json)"),
        "{stderr}"
    );
    assert!(!stderr.contains("HTTP 200"), "{stderr}");
}

#[test]
fn a_silent_stream_times_out() {
    let fake = Fake::start();
    let mut watch = Watch::start(&[
        &format!(":{}/people", fake.port),
        "--timeout",
        "0.2",
        "--no-reconnect",
    ]);
    let mut conn = fake.next();
    conn.start_stream();
    // Nothing more is sent, not even a heartbeat.
    assert_eq!(watch.exit_code(), 2);
    let stderr = watch.stderr();
    assert!(
        stderr.contains("timed out after 0.2 s waiting for the stream"),
        "{stderr}"
    );
    drop(conn);
}
