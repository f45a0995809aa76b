//! `csvd shell` driven through a pseudo-terminal, as a person at a
//! keyboard would: the guided method → path → body flow, the one-line
//! form, the shell's own commands, Tab completion, history, and the one
//! keep-alive connection.
//!
//! Every wait is for a piece of text, bounded by the session's timeout;
//! none is a sleep.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::thread;

use common::{Server, BIN};
use rexpect::process::wait::WaitStatus;
use rexpect::session::{spawn_command, PtySession};

/// Upper bound for any one expected piece of output.
const TIMEOUT_MS: u64 = 15_000;

fn spawn_shell(base: &str, history: &Path) -> PtySession {
    let mut command = Command::new(BIN);
    command
        .args(["shell", base])
        .env("NO_COLOR", "1")
        .env("TERM", "xterm")
        .env("CSVD_HISTORY", history);
    spawn_command(command, Some(TIMEOUT_MS)).expect("start csvd shell")
}

fn leave(mut shell: PtySession) {
    shell.send_control('d').unwrap();
    shell.exp_eof().unwrap();
    assert!(matches!(
        shell.process.wait().unwrap(),
        WaitStatus::Exited(_, 0)
    ));
}

#[test]
fn guided_flow_one_line_form_and_commands() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("state").join("history");
    let prompt = format!("{}> ", server.addr);
    let mut shell = spawn_shell(&server.base(), &history);
    shell
        .exp_string("It is a csvd server with no tables yet.")
        .unwrap();
    shell.exp_string(&prompt).unwrap();

    // Anything but a method is refused with the list of methods.
    shell.send_line("fetch").unwrap();
    shell
        .exp_string("`fetch` is not a method: type one of GET, HEAD, POST, PUT, PATCH, DELETE")
        .unwrap();
    shell.exp_string(&prompt).unwrap();

    // The seed's flow: method, then path, then body.
    shell.send_line("post").unwrap();
    shell.exp_string("path: ").unwrap();
    shell.send_line("/people").unwrap();
    shell.exp_string("body: ").unwrap();
    shell.send_line("name=kim age:=30").unwrap();
    shell.exp_string("HTTP/1.1 201 Created").unwrap();
    shell.exp_string("location: /people/1").unwrap();
    shell.exp_string("\"name\": \"kim\"").unwrap();
    shell.exp_string(&prompt).unwrap();

    // The seed's own body format, key:value, in any case of method.
    shell.send_line("Put").unwrap();
    shell.exp_string("path: ").unwrap();
    shell.send_line("/people/5").unwrap();
    shell.exp_string("body: ").unwrap();
    shell.send_line("name:lee").unwrap();
    shell.exp_string("HTTP/1.1 201 Created").unwrap();
    shell.exp_string("\"name\": \"lee\"").unwrap();
    shell.exp_string(&prompt).unwrap();

    // GET asks for no body.
    shell.send_line("GET").unwrap();
    shell.exp_string("path: ").unwrap();
    shell.send_line("/people/5").unwrap();
    shell.exp_string("HTTP/1.1 200 OK").unwrap();
    shell.exp_string("\"id\": 5").unwrap();
    shell.exp_string(&prompt).unwrap();

    // The one-line form, with items and flags.
    shell.send_line("patch /people/1 age:=31").unwrap();
    shell.exp_string("HTTP/1.1 200 OK").unwrap();
    shell.exp_string("\"age\": 31").unwrap();
    shell.exp_string(&prompt).unwrap();
    shell.send_line("get /people.csv -b").unwrap();
    shell.exp_string("id  name  age").unwrap();
    shell.exp_string(&prompt).unwrap();

    // :verbose and :headers show up in the request as sent.
    shell.send_line(":verbose on").unwrap();
    shell.exp_string("verbose is on").unwrap();
    shell.send_line(":headers X-Trace:abc").unwrap();
    shell.exp_string(&prompt).unwrap();
    shell.send_line("delete /people/5").unwrap();
    shell.exp_string("DELETE /people/5 HTTP/1.1").unwrap();
    shell.exp_string("X-Trace: abc").unwrap();
    shell.exp_string("HTTP/1.1 204 No Content").unwrap();
    shell.exp_string(&prompt).unwrap();
    shell.send_line(":verbose off").unwrap();
    shell.exp_string("verbose is off").unwrap();
    shell.send_line(":headers").unwrap();
    shell.exp_string("x-trace: abc").unwrap();

    // Errors are one line and the shell carries on.
    shell.send_line("post /people kim").unwrap();
    shell
        .exp_string("csvd: invalid request item `kim`")
        .unwrap();
    shell.exp_string(&prompt).unwrap();

    // Tab completes the table the server has.
    shell.send("get /peo").unwrap();
    shell.send("\t").unwrap();
    shell.send_line("").unwrap();
    shell.exp_string("HTTP/1.1 200 OK").unwrap();
    shell.exp_string("\"age\": 31").unwrap();
    shell.exp_string(&prompt).unwrap();

    shell.send_line(":help").unwrap();
    shell.exp_string(":base [URL]").unwrap();
    shell.exp_string(&prompt).unwrap();

    // :base points the shell elsewhere (here: the same server, spelt
    // differently) and says what it found.
    shell
        .send_line(&format!(":base :{}", server.addr.port()))
        .unwrap();
    shell
        .exp_string("It is a csvd server with tables: people.")
        .unwrap();
    shell
        .exp_string(&format!("localhost:{}> ", server.addr.port()))
        .unwrap();
    leave(shell);

    let saved = std::fs::read_to_string(&history).expect("history was saved");
    assert!(saved.contains("patch /people/1 age:=31"), "{saved}");
    assert_eq!(server.get("/people/1").json()["age"], 31);
}

#[test]
fn history_comes_back_and_exit_leaves() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history");
    let prompt = format!("{}> ", server.addr);

    let mut first = spawn_shell(&server.base(), &history);
    first.exp_string(&prompt).unwrap();
    first.send_line("post /notes text=remembered").unwrap();
    first.exp_string("201 Created").unwrap();
    first.exp_string(&prompt).unwrap();
    first.send_line("exit").unwrap();
    first.exp_eof().unwrap();

    // Up arrow recalls the last session's lines: `exit`, then the request.
    let mut second = spawn_shell(&server.base(), &history);
    second.exp_string(&prompt).unwrap();
    second.send("\x1b[A\x1b[A").unwrap();
    second.send_line("").unwrap();
    second.exp_string("201 Created").unwrap();
    second.exp_string(&prompt).unwrap();
    leave(second);
    assert_eq!(
        server.get("/notes").json().as_array().map(Vec::len),
        Some(2)
    );
}

#[test]
fn an_unreachable_base_is_reported_and_the_shell_stays() {
    let closed_port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let base = format!("http://127.0.0.1:{closed_port}");
    let mut shell = spawn_shell(&base, &dir.path().join("history"));
    shell
        .exp_string("It does not answer yet (connection refused")
        .unwrap();
    shell.send_line("get /people").unwrap();
    shell
        .exp_string("csvd: connection refused by 127.0.0.1:")
        .unwrap();
    shell.exp_string("> ").unwrap();
    // Flags of the one-shot commands alone are refused, not ignored.
    shell.send_line("post /people a=1 --offline").unwrap();
    shell
        .exp_string("`--offline`: only the one-shot commands")
        .unwrap();
    shell.exp_string("> ").unwrap();
    for flag in ["--download", "-o x.csv", "--ignore-stdin"] {
        shell.send_line(&format!("get /people {flag}")).unwrap();
        let name = if flag.starts_with("-o") {
            "--output"
        } else {
            flag
        };
        shell
            .exp_string(&format!("`{name}`: only the one-shot commands"))
            .unwrap();
        shell.exp_string("> ").unwrap();
    }
    leave(shell);
}

#[test]
fn a_large_upload_shows_progress_on_a_terminal() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.csv");
    let mut csv = String::from("name\n");
    for n in 0..200_000 {
        csv.push_str(&format!("person {n}\n"));
    }
    std::fs::write(&path, &csv).unwrap();
    let mut command = Command::new(BIN);
    command
        .args(["post", &format!("{}/big", server.base()), "-q"])
        .arg(format!("@{}", path.display()))
        .env("TERM", "xterm");
    let mut upload = spawn_command(command, Some(TIMEOUT_MS)).unwrap();
    upload.exp_string("uploading big.csv").unwrap();
    upload.exp_eof().unwrap();
    assert!(matches!(
        upload.process.wait().unwrap(),
        WaitStatus::Exited(_, 0)
    ));
    assert_eq!(server.get("/big/200000").status, 200);
}

/// Counts connections; the first one is closed after its first answer,
/// as a server closes an idle keep-alive connection.
fn keep_alive_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for (number, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { return };
            let closes_early = number == 0;
            thread::spawn(move || serve(stream, number + 1, closes_early));
        }
    });
    port
}

fn serve(stream: TcpStream, connection: usize, closes_early: bool) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    for request in 1.. {
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let text = format!("connection {connection} request {request}");
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        );
        if writer.write_all(answer.as_bytes()).is_err() || closes_early {
            return;
        }
    }
}

#[test]
fn one_connection_is_kept_and_reopened_when_the_server_closed_it() {
    let port = keep_alive_server();
    let dir = tempfile::tempdir().unwrap();
    let prompt = format!("127.0.0.1:{port}> ");
    let mut shell = spawn_shell(
        &format!("http://127.0.0.1:{port}"),
        &dir.path().join("history"),
    );
    shell.exp_string(&prompt).unwrap();
    // The table list went over connection 1, which the server then closed.
    shell.send_line("get /a").unwrap();
    shell.exp_string("connection 2 request 1").unwrap();
    shell.exp_string(&prompt).unwrap();
    shell.send_line("get /b x==1").unwrap();
    shell.exp_string("connection 2 request 2").unwrap();
    shell.exp_string(&prompt).unwrap();
    shell.send_line("get /c").unwrap();
    shell.exp_string("connection 2 request 3").unwrap();
    leave(shell);
}

#[test]
fn session_headers_take_quoted_and_escaped_values() {
    let server = Server::start_with(&["--token", "s3cret"]);
    let dir = tempfile::tempdir().unwrap();
    let prompt = format!("{}> ", server.addr);
    let mut shell = spawn_shell(&server.base(), &dir.path().join("history"));
    shell.exp_string(&prompt).unwrap();
    // Words are split as on request lines: an escaped space, or quotes.
    shell
        .send_line(r":headers Authorization:Bearer\ s3cret 'X-Note:a b'")
        .unwrap();
    shell.exp_string(&prompt).unwrap();
    shell.send_line(":headers").unwrap();
    shell
        .exp_string("authorization: Bearer s3cret\r\n")
        .unwrap();
    shell.exp_string("x-note: a b\r\n").unwrap();
    shell.exp_string(&prompt).unwrap();
    // The token is what the server asks for: the write goes through.
    shell.send_line("post /people name=kim -v").unwrap();
    shell
        .exp_string("Authorization: Bearer s3cret\r\n")
        .unwrap();
    shell.exp_string("X-Note: a b\r\n").unwrap();
    shell.exp_string("HTTP/1.1 201 Created").unwrap();
    shell.exp_string(&prompt).unwrap();
    shell.send_line(r#":headers "X-Open:no end"#).unwrap();
    shell.exp_string("a \" quote is not closed").unwrap();
    shell.exp_string(&prompt).unwrap();
    leave(shell);
    assert_eq!(server.get("/people/1").json()["name"], "kim");
}

#[test]
fn the_body_question_takes_pairs_json_and_items() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let prompt = format!("{}> ", server.addr);
    let mut shell = spawn_shell(&server.base(), &dir.path().join("history"));
    shell.exp_string(&prompt).unwrap();
    let mut post = |body: &str, sent: &str| {
        shell.send_line("post").unwrap();
        shell.exp_string("path: ").unwrap();
        shell.send_line("/people").unwrap();
        shell.exp_string("body: ").unwrap();
        shell.send_line(body).unwrap();
        // What is sent is said first, when it was not typed as JSON.
        if !sent.is_empty() {
            shell.exp_string(&format!("sending {sent}\r\n")).unwrap();
        }
        shell.exp_string("HTTP/1.1 201 Created").unwrap();
        shell.exp_string(&prompt).unwrap();
    };
    post("name:kim age:30", r#"{"name":"kim","age":"30"}"#);
    post(
        r#"name:"kim lee", city=Seoul,zip:007"#,
        r#"{"name":"kim lee","city":"Seoul","zip":"007"}"#,
    );
    post("name=park age:=41", r#"{"name":"park","age":41}"#);
    post(r#"{"name": "choi", "age": 52}"#, "");
    shell.send_line("post").unwrap();
    shell.exp_string("path: ").unwrap();
    shell.send_line("/people").unwrap();
    shell.exp_string("body: ").unwrap();
    shell.send_line("kim").unwrap();
    shell.exp_string("csvd: `kim` is not").unwrap();
    shell.exp_string(&prompt).unwrap();
    leave(shell);
    let row = |id: u32, field: &str| server.get(&format!("/people/{id}")).json()[field].clone();
    assert_eq!((row(1, "name"), row(1, "age")), ("kim".into(), 30.into()));
    assert_eq!(row(2, "name"), "kim lee");
    assert_eq!(
        (row(2, "city"), row(2, "zip")),
        ("Seoul".into(), "007".into())
    );
    assert_eq!(row(3, "age"), 41);
    assert_eq!(row(4, "name"), "choi");
}

/// A server for the printing settings: `/json` answers an object whose
/// keys are not in order; `/held` sends the first line of a JSON body and
/// the rest only once the test says so (or after a bound).
fn printing_server() -> (u16, std::sync::mpsc::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (go, held) = std::sync::mpsc::channel::<()>();
    let held = std::sync::Arc::new(std::sync::Mutex::new(held));
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let held = held.clone();
            thread::spawn(move || answer_printing(stream, &held));
        }
    });
    (port, go)
}

fn answer_printing(stream: TcpStream, held: &std::sync::Mutex<std::sync::mpsc::Receiver<()>>) {
    stream
        .set_read_timeout(Some(std::time::Duration::from_millis(TIMEOUT_MS)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
        }
        let path = request_line.split(' ').nth(1).unwrap_or("/");
        let written = match path {
            "/json" => {
                let body = r#"{"zeta":1,"alpha":2}"#;
                writer.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                )
            }
            "/held" => {
                let first = "{\"n\":1}\n";
                let started = writer.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{first}\r\n",
                        first.len()
                    )
                    .as_bytes(),
                );
                let timeout = std::time::Duration::from_millis(TIMEOUT_MS);
                let last = match held.lock().unwrap().recv_timeout(timeout) {
                    Ok(()) => "{\"n\":2}\n",
                    Err(_) => "{\"timeout\":1}\n",
                };
                started.and_then(|()| {
                    writer.write_all(format!("{:x}\r\n{last}\r\n0\r\n\r\n", last.len()).as_bytes())
                })
            }
            _ => writer.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
        };
        if written.is_err() {
            return;
        }
    }
}

#[test]
fn stream_sorted_and_style_work_per_line_and_as_settings() {
    let (port, go) = printing_server();
    let dir = tempfile::tempdir().unwrap();
    let prompt = format!("127.0.0.1:{port}> ");
    let mut shell = spawn_shell(
        &format!("http://127.0.0.1:{port}"),
        &dir.path().join("history"),
    );
    shell.exp_string(&prompt).unwrap();
    let unsorted = r#""zeta": 1,\s+"alpha": 2"#;
    let sorted = r#""alpha": 2,\s+"zeta": 1"#;

    shell.send_line("get /json --sorted").unwrap();
    shell.exp_regex(sorted).unwrap();
    shell.exp_string(&prompt).unwrap();
    shell.send_line("get /json").unwrap();
    shell.exp_regex(unsorted).unwrap();
    shell.exp_string(&prompt).unwrap();
    shell.send_line(":sorted on").unwrap();
    shell.exp_string("sorted is on").unwrap();
    shell.send_line("get /json").unwrap();
    shell.exp_regex(sorted).unwrap();
    shell.exp_string(&prompt).unwrap();
    shell.send_line("get /json --unsorted").unwrap();
    shell.exp_regex(unsorted).unwrap();
    shell.exp_string(&prompt).unwrap();
    shell.send_line(":sorted off").unwrap();
    shell.exp_string("sorted is off").unwrap();

    // --style on a line, then as the session's (an HTTPie name).
    shell
        .send_line("get /json -b --pretty colors --style bw")
        .unwrap();
    shell.exp_string("\x1b[1m\"zeta\"\x1b[0m").unwrap();
    shell.exp_string(&prompt).unwrap();
    shell.send_line(":style monokai").unwrap();
    shell.exp_string("style is bright").unwrap();
    shell.send_line("get /json -b --pretty colors").unwrap();
    shell.exp_string("\x1b[1;94m\"zeta\"\x1b[0m").unwrap();
    shell.exp_string(&prompt).unwrap();
    shell.send_line(":style plaid").unwrap();
    shell
        .exp_string("`plaid` is not a style: use one of auto, bright")
        .unwrap();
    shell.send_line(":style").unwrap();
    shell.exp_string("style is bright").unwrap();

    // The first line of a held body is printed before the rest comes:
    // with -S on the line, then with :stream on.
    for (line, setting) in [("get /held -S", None), ("get /held", Some(":stream on"))] {
        if let Some(setting) = setting {
            shell.send_line(setting).unwrap();
            shell.exp_string("stream is on").unwrap();
        }
        shell.send_line(line).unwrap();
        shell.exp_string("\"n\": 1").unwrap();
        go.send(()).unwrap();
        shell.exp_string("\"n\": 2").unwrap();
        shell.exp_string(&prompt).unwrap();
    }
    leave(shell);
}
