//! The client over HTTPS: the real binary against a real `csvd serve
//! --tls-cert/--tls-key`, with a self-signed certificate each test makes
//! for `localhost` and `127.0.0.1`. Loopback only; every client run has a
//! `--timeout`, so a failure cannot hang.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{Server, BIN};
use serde_json::{json, Value};

/// Upper bound for any wait of the client, in seconds.
const TIMEOUT: &str = "10";

/// A certificate and its key as PEM files.
struct Certificate {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
}

impl Certificate {
    /// A self-signed certificate for `names`.
    fn for_names(names: &[&str]) -> Certificate {
        Certificate::make(names, |_| {})
    }

    /// A self-signed certificate for `names`, with `adjust` applied to
    /// its parameters.
    fn make(names: &[&str], adjust: impl FnOnce(&mut rcgen::CertificateParams)) -> Certificate {
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).expect("certificate names");
        adjust(&mut params);
        let key = rcgen::KeyPair::generate().expect("generate a key");
        let made = params.self_signed(&key).expect("sign the certificate");
        let dir = tempfile::tempdir().expect("temp dir");
        let cert_path = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        std::fs::write(&cert_path, made.pem()).expect("write the certificate");
        std::fs::write(&key_path, key.serialize_pem()).expect("write the key");
        Certificate {
            _dir: dir,
            cert: cert_path,
            key: key_path,
        }
    }

    fn local() -> Certificate {
        Certificate::for_names(&["localhost", "127.0.0.1"])
    }

    fn cert(&self) -> &str {
        path(&self.cert)
    }

    /// A server that speaks HTTPS with this certificate.
    fn serve(&self) -> Server {
        Server::start_with(&["--tls-cert", path(&self.cert), "--tls-key", path(&self.key)])
    }
}

fn path(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// What one run of the client did.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}", self.stdout))
    }
}

/// Runs the client with `--timeout`, standard input from `input`, and
/// neither CSVD_CA nor NO_COLOR from the test's environment.
fn run_with(args: &[&str], env: &[(&str, &str)], input: &str) -> Run {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .args(["--timeout", TIMEOUT])
        .env_remove("CSVD_CA")
        .env_remove("NO_COLOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("run csvd");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("write stdin");
    drop(stdin);
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("wait for csvd");
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
    run_with(args, &[], "")
}

/// `https://localhost:PORT/path` (the name the certificate holds).
fn https(server: &Server, path: &str) -> String {
    format!("https://localhost:{}{path}", server.addr.port())
}

#[test]
fn get_and_post_over_https_with_the_ca() {
    let certificate = Certificate::local();
    let server = certificate.serve();
    let ca = certificate.cert();

    let posted = run(&[
        "post",
        &https(&server, "/people"),
        "name=kim",
        "age:=30",
        "--ca",
        ca,
    ]);
    assert_eq!(posted.code, 0, "{}", posted.stderr);
    assert_eq!(posted.json(), json!({"id": 1, "name": "kim", "age": 30}));
    assert_eq!(posted.stderr, "");

    // By address too: the certificate names 127.0.0.1.
    let by_address = format!("{}/people/1", server.base());
    assert!(by_address.starts_with("https://127.0.0.1:"));
    let got = run(&["get", &by_address, "--ca", ca]);
    assert_eq!(got.code, 0, "{}", got.stderr);
    assert_eq!(got.json(), json!({"id": 1, "name": "kim", "age": 30}));

    // The environment twin of --ca.
    let from_env = run_with(
        &["get", &https(&server, "/people/1")],
        &[("CSVD_CA", ca)],
        "",
    );
    assert_eq!(from_env.code, 0, "{}", from_env.stderr);
    assert_eq!(from_env.json()["name"], "kim");
}

#[test]
fn an_untrusted_certificate_is_refused_with_what_to_do() {
    let certificate = Certificate::local();
    let server = certificate.serve();
    let out = run(&["get", &https(&server, "/")]);
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.starts_with("csvd: HTTPS to localhost:"));
    assert!(out.stderr.contains("certificate"), "{}", out.stderr);
    assert!(out.stderr.contains("--ca FILE"), "{}", out.stderr);
    assert!(out.stderr.contains("--insecure"), "{}", out.stderr);

    // A --ca that does not hold the server's certificate is named (this
    // one has the same subject name, as a certificate made anew would).
    let other = Certificate::local();
    let out = run(&["get", &https(&server, "/"), "--ca", other.cert()]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(&format!(
            "not signed by any certificate in {}",
            other.cert()
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn insecure_accepts_any_certificate_and_says_so() {
    let certificate = Certificate::local();
    let server = certificate.serve();
    for flag in ["--insecure", "-k"] {
        let out = run(&["post", &https(&server, "/people"), "name=lee", flag]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(out.json()["name"], "lee");
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(
            out.stderr.starts_with("csvd: warning: --insecure"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn verbose_shows_the_plaintext_exchange() {
    let certificate = Certificate::local();
    let server = certificate.serve();
    let out = run(&[
        "post",
        &https(&server, "/people"),
        "name=kim",
        "-v",
        "--ca",
        certificate.cert(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let port = server.addr.port();
    assert!(
        out.stdout
            .starts_with(&format!("POST /people HTTP/1.1\nHost: localhost:{port}\n")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("\n{\"name\":\"kim\"}\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("HTTP/1.1 201 Created"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("location: /people/1"), "{}", out.stdout);
}

#[test]
fn a_certificate_for_another_name_is_refused_by_name() {
    let certificate = Certificate::for_names(&["other.example"]);
    let server = certificate.serve();
    let out = run(&["get", &https(&server, "/"), "--ca", certificate.cert()]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("its certificate is for other.example, not `localhost`"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_expired_certificate_is_refused_with_its_date() {
    let certificate = Certificate::make(&["localhost"], |params| {
        params.not_before = rcgen::date_time_ymd(2001, 1, 1);
        params.not_after = rcgen::date_time_ymd(2002, 2, 2);
    });
    let server = certificate.serve();
    let out = run(&["get", &https(&server, "/"), "--ca", certificate.cert()]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("its certificate expired on Sat, 02 Feb 2002 00:00:00 GMT"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_wrong_scheme_is_named() {
    let certificate = Certificate::local();
    let secure = certificate.serve();
    let plain = Server::start();

    let http_to_https = format!("http://{}/", secure.addr);
    let out = run(&["get", &http_to_https]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("it answered in TLS: use https://"),
        "{}",
        out.stderr
    );

    let https_to_http = format!("https://{}/", plain.addr);
    let out = run(&["get", &https_to_http, "--ca", certificate.cert()]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("not in TLS: is it a plain http:// server?"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_ca_file_that_is_not_pem_is_refused() {
    let certificate = Certificate::local();
    let out = run(&[
        "get",
        "https://localhost:1/",
        "--ca",
        path(&certificate.key),
    ]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("holds no `BEGIN CERTIFICATE` section"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_shell_keeps_its_trust_across_base_changes() {
    let certificate = Certificate::local();
    let server = certificate.serve();
    let plain = Server::start();
    let stranger = Certificate::for_names(&["localhost"]).serve();
    let dir = tempfile::tempdir().expect("temp dir");
    let history = dir.path().join("history");
    let input = format!(
        "post /people name=kim\n:base {}\nget /\n:base {}\nget /people/1 -b\n\
         get {} -b\nget {} -b -k\n",
        plain.base(),
        https(&server, ""),
        https(&stranger, "/_health"),
        https(&stranger, "/_health"),
    );
    let out = run_with(
        &["shell", &https(&server, ""), "--ca", certificate.cert()],
        &[("CSVD_HISTORY", path(&history))],
        &input,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    // The session's --ca does not hold the stranger's certificate; the
    // line's own -k accepts it, for that line.
    let stderr: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(stderr.len(), 2, "{}", out.stderr);
    assert!(stderr[0].contains("not signed by any certificate in"));
    assert!(stderr[1].starts_with("csvd: warning: --insecure"));
    assert_eq!(out.stdout.matches("\"status\":\"ok\"").count(), 1);
    let port = server.addr.port();
    assert!(
        out.stdout
            .contains(&format!("requests go to https://localhost:{port}/")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("HTTP/1.1 201 Created"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("Requests now go to {}/", plain.base())),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("It is a csvd server with tables: people."),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("{\"id\":1,\"name\":\"kim\"}"),
        "{}",
        out.stdout
    );
}

#[test]
fn raw_speaks_tls_when_asked() {
    let certificate = Certificate::local();
    let server = certificate.serve();
    let request = "GET /_health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let address = format!("localhost:{}", server.addr.port());
    let out = run_with(
        &["raw", &address, "--tls", "--ca", certificate.cert()],
        &[],
        request,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("HTTP/1.1 200 OK\r\n"),
        "{}",
        out.stdout
    );

    let untrusted = run_with(&["raw", &https(&server, "")], &[], request);
    assert_eq!(untrusted.code, 1);
    assert!(
        untrusted.stderr.contains("certificate"),
        "{}",
        untrusted.stderr
    );
}
