//! A Python `http.server` with a handler of the test's own, for the
//! client's tests against a server that is not csvd. Without python3 the
//! test says so loudly and is skipped, except in CI, where it fails.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

/// A running Python server; killed when dropped.
pub struct Python {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Python {
    /// Starts `handler` (a Python script that prints its port, then
    /// serves), or says loudly that the tests `what` did not run (and fails
    /// in CI).
    pub fn start(handler: &str, what: &str) -> Option<Python> {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = dir.path().join("server.py");
        std::fs::write(&script, handler).expect("write the handler");
        let spawned = Command::new("python3")
            .arg(&script)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(error) => {
                let message =
                    format!("python3 cannot be started ({error}): the {what} did not run");
                if std::env::var("CI").is_ok_and(|value| value == "true") {
                    panic!("{message}");
                }
                // Straight to stderr: the harness would hide `eprintln!` of a passing test.
                let _ = writeln!(std::io::stderr(), "\n*** SKIPPED: {message} ***\n");
                return None;
            }
        };
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the port");
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the Python server did not start: {line:?}"));
        Some(Python {
            child,
            port,
            _dir: dir,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}
