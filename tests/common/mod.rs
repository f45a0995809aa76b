//! Starts the real `csvd` binary on an ephemeral loopback port with a
//! temporary data directory, and talks to it over real sockets.
//!
//! The server's stderr is watched: a panic in the server (in any request)
//! fails the test that ran it, when the server is stopped or dropped.
#![allow(dead_code)]

pub mod feed;
pub mod load;
pub mod pg;
pub mod python;
pub mod tmpfs;

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_csvd");

/// A running `csvd serve`; killed when dropped. Stopping or dropping it
/// fails the test if the server panicked.
pub struct Server {
    pub addr: SocketAddr,
    pub child: Child,
    /// The data directory; for a server on a database URL, its empty
    /// working directory.
    pub dir: PathBuf,
    /// What `serve` is given: the data directory, or a database URL.
    source: OsString,
    /// Whether `dir` is only the working directory of a server on a URL.
    on_url: bool,
    flags: Vec<String>,
    /// One per server process started: reads its stderr until it exits and
    /// returns the panics it reported.
    watchers: Vec<JoinHandle<Vec<String>>>,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// A server on a fresh, empty data directory.
    pub fn start() -> Server {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().to_path_buf();
        let mut server = Server::start_in(&dir, &[]);
        server._tmp = Some(tmp);
        server
    }

    /// A server with extra `serve` flags on a fresh data directory.
    pub fn start_with(flags: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().to_path_buf();
        let mut server = Server::start_in(&dir, flags);
        server._tmp = Some(tmp);
        server
    }

    /// A server on an existing data directory (which outlives it).
    pub fn start_in(dir: &Path, flags: &[&str]) -> Server {
        let (child, addr, watcher) = spawn(dir.as_os_str(), None, flags);
        Server {
            addr,
            child,
            dir: dir.to_path_buf(),
            source: dir.as_os_str().to_owned(),
            on_url: false,
            flags: flags.iter().map(|f| f.to_string()).collect(),
            watchers: vec![watcher],
            _tmp: None,
        }
    }

    /// A server on a source that is not a directory: a database URL
    /// (`postgres://…`). It runs in an empty temporary working directory
    /// (`dir`), so a build that took the URL for a path creates it there,
    /// never in the repository, and the start fails saying so. `restart`
    /// and the rest work as for a directory; `file_after_stop` means nothing.
    pub fn start_source(source: &str, flags: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().to_path_buf();
        let (child, addr, watcher) = spawn(OsStr::new(source), Some(&dir), flags);
        let mut server = Server {
            addr,
            child,
            dir,
            source: source.into(),
            on_url: true,
            flags: flags.iter().map(|f| f.to_string()).collect(),
            watchers: vec![watcher],
            _tmp: Some(tmp),
        };
        server.assert_not_a_directory();
        server
    }

    /// Fails when a server on a URL made a data directory of it.
    fn assert_not_a_directory(&mut self) {
        let made: Vec<_> = std::fs::read_dir(&self.dir)
            .expect("working directory")
            .map(|entry| entry.expect("entry").path())
            .collect();
        if !made.is_empty() {
            let _ = self.child.kill();
            panic!(
                "csvd took {:?} for a data directory path (it created {made:?}): this build \
                 has no backend for it",
                self.source
            );
        }
    }

    /// Stops the server gracefully (which brings every CSV file up to date)
    /// and starts it again on the same data directory.
    pub fn restart(&mut self) {
        let status = self.stop();
        assert!(status.success(), "csvd exited with {status:?}");
        self.respawn();
    }

    /// Starts the server again after it was killed.
    pub fn restart_after_crash(&mut self) {
        self.respawn();
    }

    fn respawn(&mut self) {
        let flags: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        let cwd = self.on_url.then_some(self.dir.as_path());
        let (child, addr, watcher) = spawn(&self.source, cwd, &flags);
        self.child = child;
        self.addr = addr;
        self.watchers.push(watcher);
        if self.on_url {
            self.assert_not_a_directory();
        }
    }

    /// Fails the test if a server process that has ended reported a panic.
    /// Each watcher ends when its process's stderr closes (at its exit), so
    /// this waits for nothing but processes already gone.
    fn assert_no_panic(&mut self) {
        let mut panics = Vec::new();
        for watcher in self.watchers.drain(..) {
            panics.extend(watcher.join().unwrap_or_default());
        }
        if !panics.is_empty() && !std::thread::panicking() {
            panic!(
                "csvd panicked while serving this test (a panic is a bug, whatever the \
                 client got):\n{}",
                panics.join("\n")
            );
        }
    }

    /// Reads a table's CSV file as it is after a graceful stop.
    pub fn file_after_stop(&mut self, table: &str) -> String {
        let status = self.stop();
        assert!(status.success(), "csvd exited with {status:?}");
        std::fs::read_to_string(self.dir.join(format!("{table}.csv"))).expect("table file")
    }

    /// `http://ADDR`, or `https://ADDR` when the server was started with
    /// `--tls-cert`.
    pub fn base(&self) -> String {
        let scheme = if self.flags.iter().any(|flag| flag == "--tls-cert") {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// Sends raw bytes and returns everything the server answers until it
    /// closes the connection (or 5 s of silence).
    pub fn raw(&self, bytes: &[u8]) -> Vec<u8> {
        let mut stream = TcpStream::connect(self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(bytes).expect("send");
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        out
    }

    /// One request on its own connection (`Connection: close`).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        Response::parse(&self.raw(&bytes), method == "HEAD")
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        self.request("GET", path, headers, b"")
    }

    pub fn send_json(&self, method: &str, path: &str, json: &str) -> Response {
        self.request(
            method,
            path,
            &[("Content-Type", "application/json")],
            json.as_bytes(),
        )
    }

    pub fn post_json(&self, path: &str, json: &str) -> Response {
        self.send_json("POST", path, json)
    }

    /// Stops the server with SIGTERM and waits for it; returns its exit
    /// status. Fails the test if it panicked.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().expect("wait for csvd");
        self.assert_no_panic();
        status
    }
}

/// Starts `csvd serve SOURCE` (in `cwd` when given) and reads the address
/// from its first line; returns it with the watcher of its stderr.
fn spawn(
    source: &OsStr,
    cwd: Option<&Path>,
    flags: &[&str],
) -> (Child, SocketAddr, JoinHandle<Vec<String>>) {
    let mut command = Command::new(BIN);
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let mut child = command
        .arg("serve")
        .arg(source)
        .args(["--bind", "127.0.0.1:0", "--log-level", "warn"])
        // Reads look at the table files every time, so that a test's hand
        // edit is seen by its next request (a flag overrides this).
        .env("CSVD_FILE_CHECK", "0")
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start csvd");
    let watcher = watch_stderr(child.stderr.take().expect("stderr"));
    let addr = listening_addr(&mut child);
    (child, addr, watcher)
}

/// Passes the server's stderr on to the test's (shown when a test fails)
/// and collects every panic it reports (`thread '…' panicked at …` and the
/// message line after it), until the server exits.
pub fn watch_stderr(stderr: std::process::ChildStderr) -> JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut panics = Vec::new();
        let mut lines = BufReader::new(stderr).split(b'\n');
        while let Some(Ok(line)) = lines.next() {
            let line = String::from_utf8_lossy(&line).into_owned();
            eprintln!("[csvd] {line}");
            if line.contains("panicked at") {
                let message = match lines.next() {
                    Some(Ok(next)) => String::from_utf8_lossy(&next).into_owned(),
                    _ => String::new(),
                };
                eprintln!("[csvd] {message}");
                panics.push(format!("{line}\n{message}"));
            }
        }
        panics
    })
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.assert_no_panic();
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn parse(raw: &[u8], head_only: bool) -> Response {
        let end = find(raw, b"\r\n\r\n").unwrap_or_else(|| {
            panic!(
                "no complete response head in {:?}",
                String::from_utf8_lossy(raw)
            )
        });
        let head = std::str::from_utf8(&raw[..end]).expect("head is UTF-8");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let rest = &raw[end + 4..];
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
        let body = if head_only {
            Vec::new()
        } else if chunked {
            dechunk(rest)
        } else {
            rest.to_vec()
        };
        Response {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("body is UTF-8")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = find(data, b"\r\n") {
        let size_text = std::str::from_utf8(&data[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
            .expect("chunk size");
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
    out
}

/// A `csvd serve` whose stderr (its log) the test reads itself.
pub struct Logged {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: std::process::ChildStderr,
}

/// Starts `csvd serve DIR FLAGS` with its log on a pipe for the caller.
pub fn spawn_logged(dir: &Path, flags: &[&str]) -> Logged {
    let mut child = Command::new(BIN)
        .arg("serve")
        .arg(dir)
        .args(["--bind", "127.0.0.1:0"])
        .env("CSVD_FILE_CHECK", "0")
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start csvd");
    let addr = listening_addr(&mut child);
    let stderr = child.stderr.take().expect("stderr");
    Logged {
        child,
        addr,
        stderr,
    }
}

/// One request on its own connection to `addr`; the whole answer.
pub fn exchange(addr: SocketAddr, method: &str, path: &str, json: Option<&str>) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    if let Some(body) = json {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    } else {
        request.push_str("\r\n");
    }
    stream.write_all(request.as_bytes()).expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read answer");
    Response::parse(&raw, method == "HEAD")
}

/// A small deterministic generator, so that a failing seed can be replayed.
pub struct Lcg(pub u64);

impl Lcg {
    /// A number below `below` (0 when `below` is 0).
    pub fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below.max(1)
    }
}

/// A number from the environment, or `default`.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Reads the address from a started server's first line, then keeps
/// draining its stdout (for --dump) so it never blocks on a full pipe.
fn listening_addr(child: &mut Child) -> SocketAddr {
    let mut lines = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    lines.read_line(&mut line).expect("read listening line");
    // `csvd listening on http://ADDR`, or `https://ADDR` with TLS.
    let addr = line
        .trim()
        .rsplit("://")
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line from csvd: {line:?}"));
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = lines.read_to_end(&mut sink);
    });
    addr
}
