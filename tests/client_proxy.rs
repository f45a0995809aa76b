//! The client through an HTTP proxy: a small proxy written here (std TCP on
//! an ephemeral loopback port) records what it was asked and forwards to
//! a real `csvd serve` (or a canned origin): plain `http://` requests in
//! absolute form, `https://` through `CONNECT`, credentials as
//! `Proxy-Authorization`, the proxy variables and `NO_PROXY`, a refused
//! `CONNECT`. Every read has a timeout and every client run a
//! `--timeout`, so nothing can hang.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{Server, BIN};

/// Upper bound for any wait, in seconds.
const TIMEOUT: &str = "10";
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The proxy variables, removed from every run unless a test sets them.
const PROXY_VARS: [&str; 8] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// What the proxy was asked: the request line and its
/// `Proxy-Authorization`, one per connection.
#[derive(Debug, Clone)]
struct Seen {
    line: String,
    authorization: Option<String>,
}

struct Proxy {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Proxy {
    /// A proxy that forwards; with `refuse`, it answers every `CONNECT`
    /// with that status line instead.
    fn start(refuse: Option<&'static str>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let log = log.clone();
                thread::spawn(move || {
                    let _ = proxy_one(stream, &log, refuse);
                });
            }
        });
        Proxy { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn lines(&self) -> Vec<String> {
        self.seen().into_iter().map(|seen| seen.line).collect()
    }
}

/// One client connection: its first request is forwarded (origin form,
/// `Connection: close`, no `Proxy-Authorization`) or its `CONNECT` turned
/// into a tunnel; then bytes are copied both ways until either side ends.
fn proxy_one(
    client: TcpStream,
    log: &Mutex<Vec<Seen>>,
    refuse: Option<&str>,
) -> std::io::Result<()> {
    client.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let line = line.trim_end().to_string();
    let mut headers = Vec::new();
    let mut authorization = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
        match header.split_once(':') {
            Some((name, value)) if name.eq_ignore_ascii_case("proxy-authorization") => {
                authorization = Some(value.trim().to_string())
            }
            Some((name, _)) if name.eq_ignore_ascii_case("connection") => {}
            _ => headers.push(header),
        }
    }
    log.lock().unwrap().push(Seen {
        line: line.clone(),
        authorization,
    });
    let mut words = line.split(' ');
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let mut client_writer = client.try_clone()?;
    let upstream = if method == "CONNECT" {
        if let Some(status) = refuse {
            client_writer.write_all(
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )?;
            return Ok(());
        }
        let upstream = TcpStream::connect(target)?;
        client_writer.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
        upstream
    } else {
        let rest = target
            .strip_prefix("http://")
            .expect("an absolute-form target");
        let split = rest.find('/').unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        let mut upstream = TcpStream::connect(authority)?;
        let mut head = format!("{method} {path} HTTP/1.1\r\n");
        for header in headers {
            head.push_str(&header);
        }
        head.push_str("Connection: close\r\n\r\n");
        upstream.write_all(head.as_bytes())?;
        upstream
    };
    upstream.set_read_timeout(Some(READ_TIMEOUT))?;
    // Whatever the reader already holds belongs upstream.
    let mut upstream_writer = upstream.try_clone()?;
    upstream_writer.write_all(reader.buffer())?;
    let up = thread::spawn(move || {
        let _ = std::io::copy(&mut reader, &mut upstream_writer);
        let _ = upstream_writer.shutdown(Shutdown::Write);
    });
    let mut upstream_reader = upstream;
    let _ = std::io::copy(&mut upstream_reader, &mut client_writer);
    let _ = client_writer.shutdown(Shutdown::Both);
    let _ = up.join();
    Ok(())
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the client with `--timeout`, no proxy variable but those of `env`.
fn run_with(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .args(["--timeout", TIMEOUT])
        .env_remove("CSVD_CA")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for name in PROXY_VARS {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("run csvd");
    let run = Run {
        code: status.code().expect("exit code"),
        stdout: String::from_utf8(stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(stderr).expect("stderr is UTF-8"),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "csvd panicked: {}",
        run.stderr
    );
    run
}

fn run(args: &[&str]) -> Run {
    run_with(args, &[])
}

#[test]
fn plain_http_goes_to_the_proxy_in_absolute_form_with_its_credentials() {
    let server = Server::start();
    let proxy = Proxy::start(None);
    let people = format!("{}/people", server.base());
    let rule = format!("http:http://kim:s3cret@127.0.0.1:{}", proxy.port);
    let out = run(&["post", &people, "name=kim", "--proxy", &rule]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("\"name\":\"kim\""), "{}", out.stdout);
    let seen = proxy.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].line, format!("POST {people} HTTP/1.1"));
    // kim:s3cret
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some("Basic a2ltOnMzY3JldA==")
    );
    assert_eq!(server.get("/people/1").json()["name"], "kim");

    // An https: rule leaves http:// alone; all: covers it.
    let https_only = format!("https:{}", proxy.url());
    let out = run(&["get", &people, "--proxy", &https_only]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(proxy.seen().len(), 1);
    let all = format!("all:{}", proxy.url());
    let out = run(&["get", &format!("{people}/1"), "--proxy", &all]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(proxy.lines()[1], format!("GET {people}/1 HTTP/1.1"));
    assert_eq!(proxy.seen()[1].authorization, None);
}

#[test]
fn the_proxy_variables_are_honoured_and_no_proxy_bypasses_them() {
    let server = Server::start();
    let proxy = Proxy::start(None);
    let url = format!("{}/people", server.base());
    let credentials = format!("http://u:p@127.0.0.1:{}", proxy.port);
    for name in ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"] {
        let before = proxy.seen().len();
        let out = run_with(&["get", &url], &[(name, &credentials)]);
        assert_eq!(out.code, 0, "{name}: {}", out.stderr);
        let seen = proxy.seen();
        assert_eq!(seen.len(), before + 1, "{name}: {seen:?}");
        assert_eq!(seen[before].line, format!("GET {url} HTTP/1.1"), "{name}");
        // u:p
        assert_eq!(seen[before].authorization.as_deref(), Some("Basic dTpw"));
    }
    // https_proxy is not for http://.
    let before = proxy.seen().len();
    let out = run_with(&["get", &url], &[("HTTPS_PROXY", &proxy.url())]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // NO_PROXY (by address, by address and port, or `*`) and --no-proxy
    // go directly.
    let port_entry = format!("localhost,127.0.0.1:{}", server.addr.port());
    for no_proxy in ["127.0.0.1", "*", port_entry.as_str()] {
        for name in ["no_proxy", "NO_PROXY"] {
            let env = [("HTTP_PROXY", proxy.url()), (name, no_proxy.to_string())];
            let env: Vec<(&str, &str)> = env.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let out = run_with(&["get", &url], &env);
            assert_eq!(out.code, 0, "{name}={no_proxy}: {}", out.stderr);
        }
    }
    let out = run_with(
        &[
            "get",
            &url,
            "--no-proxy",
            "--proxy",
            &format!("all:{}", proxy.url()),
        ],
        &[("http_proxy", &proxy.url())],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(proxy.seen().len(), before, "{:?}", proxy.seen());
    // A NO_PROXY entry for another port does not bypass.
    let other = format!("127.0.0.1:{}", server.addr.port() ^ 1);
    let out = run_with(
        &["get", &url],
        &[("http_proxy", &proxy.url()), ("no_proxy", &other)],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(proxy.seen().len(), before + 1);
}

/// A certificate for `localhost` and `127.0.0.1`, and a server using it.
struct Tls {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
}

impl Tls {
    fn new() -> Tls {
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let params = rcgen::CertificateParams::new(names).expect("certificate names");
        let key = rcgen::KeyPair::generate().expect("generate a key");
        let made = params.self_signed(&key).expect("sign the certificate");
        let dir = tempfile::tempdir().expect("temp dir");
        let cert = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        std::fs::write(&cert, made.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        Tls {
            _dir: dir,
            cert,
            key: key_path,
        }
    }

    fn serve(&self) -> Server {
        Server::start_with(&["--tls-cert", path(&self.cert), "--tls-key", path(&self.key)])
    }
}

fn path(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

#[test]
fn https_goes_through_a_connect_tunnel() {
    let tls = Tls::new();
    let server = tls.serve();
    let proxy = Proxy::start(None);
    let authority = format!("localhost:{}", server.addr.port());
    let url = format!("https://{authority}/people");
    let rule = format!("https:http://kim:s3cret@127.0.0.1:{}", proxy.port);
    let out = run(&[
        "post",
        &url,
        "name=lee",
        "--ca",
        path(&tls.cert),
        "--proxy",
        &rule,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("\"name\":\"lee\""), "{}", out.stdout);
    let seen = proxy.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].line, format!("CONNECT {authority} HTTP/1.1"));
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some("Basic a2ltOnMzY3JldA==")
    );
    // -v shows the request inside the tunnel, in origin form.
    for name in ["https_proxy", "HTTPS_PROXY"] {
        let out = run_with(
            &["get", &url, "-v", "--ca", path(&tls.cert)],
            &[(name, &proxy.url())],
        );
        assert_eq!(out.code, 0, "{name}: {}", out.stderr);
        assert!(
            out.stdout.contains("GET /people HTTP/1.1"),
            "{}",
            out.stdout
        );
        assert!(out.stdout.contains("\"lee\""), "{}", out.stdout);
    }
    assert_eq!(proxy.seen().len(), 3);
    assert!(proxy
        .lines()
        .iter()
        .all(|line| line.starts_with("CONNECT ")));
    // http_proxy is not for https://.
    let out = run_with(
        &["get", &url, "--ca", path(&tls.cert)],
        &[("http_proxy", &proxy.url())],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(proxy.seen().len(), 3);
}

#[test]
fn a_refused_connect_or_a_missing_proxy_is_a_clear_error() {
    let tls = Tls::new();
    let server = tls.serve();
    let proxy = Proxy::start(Some("403 Forbidden"));
    let url = format!("https://localhost:{}/people", server.addr.port());
    let rule = format!("all:{}", proxy.url());
    let out = run(&["get", &url, "--ca", path(&tls.cert), "--proxy", &rule]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    let expected = format!(
        "csvd: proxy 127.0.0.1:{}: it refused to open a tunnel to localhost:{}: 403 Forbidden",
        proxy.port,
        server.addr.port()
    );
    assert_eq!(out.stderr.trim_end(), expected);
    let asks = Proxy::start(Some("407 Proxy Authentication Required"));
    let out = run(&["get", &url, "--proxy", &format!("https:{}", asks.url())]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("407 Proxy Authentication Required (give credentials"),
        "{}",
        out.stderr
    );
    // Nothing listening where the proxy should be.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let out = run_with(
        &["get", &format!("{}/people", server.base())],
        &[("HTTPS_PROXY", &format!("127.0.0.1:{port}"))],
    );
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr.trim_end(),
        format!(
            "csvd: proxy 127.0.0.1:{port}: it refused the connection: nothing is listening there"
        )
    );
    // A bad --proxy is a usage error; a bad variable is named when used.
    let out = run(&["get", &url, "--proxy", "http://127.0.0.1:1"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("names no protocol"), "{}", out.stderr);
    let out = run_with(&["get", &url], &[("https_proxy", "socks5://127.0.0.1:1")]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with("csvd: https_proxy: `socks5://127.0.0.1:1`: `socks5` proxies"),
        "{}",
        out.stderr
    );
}

/// An origin for redirects, retries and cookies: `/a` redirects to `/b`,
/// which sets a cookie; `/flaky` is 503 the first time; `/me` echoes the
/// cookie it got.
fn origin() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let flaky = Arc::new(Mutex::new(0));
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let flaky = flaky.clone();
            thread::spawn(move || {
                let _ = answer(stream, &flaky);
            });
        }
    });
    port
}

fn answer(stream: TcpStream, flaky: &Mutex<u32>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut cookie = String::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("cookie") {
                cookie = value.trim().to_string();
            }
        }
    }
    let path = line.split(' ').nth(1).unwrap_or("/");
    let (status, extra, body) = match path {
        "/a" => ("302 Found", "Location: /b\r\n".to_string(), String::new()),
        "/b" => (
            "200 OK",
            "Set-Cookie: k=v; Path=/\r\n".to_string(),
            "at b".into(),
        ),
        "/flaky" => {
            let mut count = flaky.lock().unwrap();
            *count += 1;
            if *count == 1 {
                (
                    "503 Service Unavailable",
                    "Retry-After: 0\r\n".into(),
                    String::new(),
                )
            } else {
                ("200 OK", String::new(), "steady".into())
            }
        }
        _ => ("200 OK", String::new(), format!("cookie={cookie}")),
    };
    let mut stream = stream;
    stream.write_all(
        format!(
            "HTTP/1.1 {status}\r\n{extra}Content-Type: text/plain\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )?;
    let _ = stream.read(&mut [0; 1]);
    Ok(())
}

#[test]
fn redirects_retries_sessions_and_downloads_work_through_the_proxy() {
    let port = origin();
    let proxy = Proxy::start(None);
    let base = format!("http://127.0.0.1:{port}");
    let rule = format!("http:{}", proxy.url());
    let dir = tempfile::tempdir().unwrap();
    let session = dir.path().join("session.json");
    let out = run(&[
        "get",
        &format!("{base}/a"),
        "--follow",
        "--proxy",
        &rule,
        "--session",
        path(&session),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "at b");
    let out = run(&[
        "get",
        &format!("{base}/me"),
        "--proxy",
        &rule,
        "--session",
        path(&session),
    ]);
    assert_eq!(out.stdout, "cookie=k=v", "{}", out.stderr);
    let out = run(&[
        "get",
        &format!("{base}/flaky"),
        "--retry",
        "2",
        "--proxy",
        &rule,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "steady");
    assert!(out.stderr.contains("HTTP 503"), "{}", out.stderr);
    assert_eq!(
        proxy.lines(),
        [
            format!("GET {base}/a HTTP/1.1"),
            format!("GET {base}/b HTTP/1.1"),
            format!("GET {base}/me HTTP/1.1"),
            format!("GET {base}/flaky HTTP/1.1"),
            format!("GET {base}/flaky HTTP/1.1"),
        ]
    );

    let server = Server::start();
    server.post_json("/people", r#"{"name":"kim"}"#);
    let saved = dir.path().join("people.json");
    let out = run(&[
        "get",
        &format!("{}/people", server.base()),
        "--download",
        "-o",
        path(&saved),
        "--proxy",
        &rule,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let body = std::fs::read_to_string(&saved).unwrap();
    assert!(body.contains("\"kim\""), "{body}");
    assert_eq!(proxy.lines().len(), 6);
}

#[test]
fn offline_and_curl_show_the_proxy() {
    let rule = "all:http://u:p@127.0.0.1:9";
    let out = run(&["get", "http://example.com/x", "--offline", "--proxy", rule]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("GET http://example.com/x HTTP/1.1\r\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("\r\nproxy-authorization: Basic dTpw\r\n"),
        "{}",
        out.stdout
    );
    let out = run(&["get", "https://example.com/x", "--offline", "--proxy", rule]);
    assert!(
        out.stdout.starts_with(
            "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\
             Proxy-Authorization: Basic dTpw\r\n\r\nGET /x HTTP/1.1\r\n"
        ),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("proxy-authorization"),
        "{}",
        out.stdout
    );
    let out = run(&["get", "http://example.com/x", "--curl", "--proxy", rule]);
    assert!(
        out.stdout
            .starts_with("curl -x http://u:p@127.0.0.1:9 http://example.com/x --header "),
        "{}",
        out.stdout
    );
    let out = run_with(
        &["get", "http://example.com/x", "--curl", "--no-proxy"],
        &[("http_proxy", "http://127.0.0.1:9")],
    );
    assert!(
        out.stdout.starts_with("curl --noproxy '*' http://"),
        "{}",
        out.stdout
    );
    let out = run_with(
        &["get", "http://example.com/x", "--curl"],
        &[("HTTP_PROXY", "127.0.0.1:9"), ("NO_PROXY", "example.com")],
    );
    assert!(out.stdout.starts_with("curl http://"), "{}", out.stdout);
}

#[test]
fn the_shell_goes_through_its_proxy_and_a_line_can_choose_another() {
    use rexpect::session::spawn_command;
    let server = Server::start();
    let proxy = Proxy::start(None);
    let other = Proxy::start(None);
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(BIN);
    command
        .args([
            "shell",
            &server.base(),
            "--proxy",
            &format!("http:{}", proxy.url()),
        ])
        .env("NO_COLOR", "1")
        .env("TERM", "xterm")
        .env("CSVD_HISTORY", dir.path().join("history"));
    for name in PROXY_VARS {
        command.env_remove(name);
    }
    let mut shell = spawn_command(command, Some(15_000)).expect("start csvd shell");
    let prompt = format!("{}> ", server.addr);
    shell
        .exp_string("It is a csvd server with no tables yet.")
        .unwrap();
    shell.exp_string(&prompt).unwrap();
    assert_eq!(proxy.lines(), [format!("GET {}/ HTTP/1.1", server.base())]);
    shell.send_line("post /people name=kim").unwrap();
    shell.exp_string("HTTP/1.1 201 Created").unwrap();
    shell.exp_string(&prompt).unwrap();
    assert_eq!(
        proxy.lines()[1],
        format!("POST {}/people HTTP/1.1", server.base())
    );
    let seen = proxy.lines().len();
    shell.send_line("get /people/1 --no-proxy").unwrap();
    shell.exp_string("\"name\": \"kim\"").unwrap();
    shell.exp_string(&prompt).unwrap();
    shell
        .send_line(&format!("get /people/1 --proxy all:{}", other.url()))
        .unwrap();
    shell.exp_string("\"name\": \"kim\"").unwrap();
    shell.exp_string(&prompt).unwrap();
    assert_eq!(proxy.lines().len(), seen, "{:?}", proxy.lines());
    assert_eq!(
        other.lines(),
        [format!("GET {}/people/1 HTTP/1.1", server.base())]
    );
    shell.send_control('d').unwrap();
    shell.exp_eof().unwrap();
}
