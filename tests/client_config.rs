//! The client's configuration files: the user's `csvd/config.toml` (under
//! `$XDG_CONFIG_HOME` or `~/.config`) and a project's `.csvd.toml`, read by
//! the real binary run with a temporary HOME and working directory.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Server, BIN};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs csvd in `cwd` with `home` as HOME and no XDG_CONFIG_HOME, unless
/// `env` gives one.
fn run_in(cwd: &Path, home: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .current_dir(cwd)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("NO_COLOR");
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command.output().expect("run csvd");
    let run = Run {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    };
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn the_user_file_gives_options_a_base_url_and_headers() {
    let server = Server::start();
    let home = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    write(
        &home.path().join(".config/csvd/config.toml"),
        &format!(
            "default_options = [\"--check-status\", \"-p\", \"hb\"]\nbase_url = \"{}\"\n\n[headers]\nX-Team = \"data\"\n",
            server.base()
        ),
    );
    // The path goes under base_url; --check-status makes a 404 exit 4;
    // -p hb prints the response headers.
    let out = run_in(cwd.path(), home.path(), &["get", "/nope"], &[]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(out.stdout.starts_with("HTTP/1.1 404"), "{}", out.stdout);
    // The header is sent, and one typed on the command line replaces it;
    // a typed option overrides the file's.
    let out = run_in(
        cwd.path(),
        home.path(),
        &["get", ":/people", "--offline", "-p", "H"],
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("x-team: data\r\n"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("host: {}\r\n", server.addr)),
        "{}",
        out.stdout
    );
    let out = run_in(
        cwd.path(),
        home.path(),
        &["get", "/people", "X-Team:typed", "--offline", "-p", "H"],
        &[],
    );
    assert!(out.stdout.contains("x-team: typed\r\n"), "{}", out.stdout);
    assert!(!out.stdout.contains("x-team: data"), "{}", out.stdout);
    // --no-config: the built-in base, no header, no options.
    let out = run_in(
        cwd.path(),
        home.path(),
        &["get", "/people", "--offline", "--no-config"],
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("host: 127.0.0.1:8080\r\n"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("x-team"), "{}", out.stdout);
}

#[test]
fn xdg_config_home_is_used_before_home() {
    let home = tempfile::tempdir().unwrap();
    let xdg = tempfile::tempdir().unwrap();
    write(
        &home.path().join(".config/csvd/config.toml"),
        "[headers]\nX-From = \"home\"\n",
    );
    write(
        &xdg.path().join("csvd/config.toml"),
        "[headers]\nX-From = \"xdg\"\n",
    );
    let xdg_dir = xdg.path().to_str().unwrap();
    let out = run_in(
        home.path(),
        home.path(),
        &["get", "/people", "--offline"],
        &[("XDG_CONFIG_HOME", xdg_dir)],
    );
    assert!(out.stdout.contains("x-from: xdg\r\n"), "{}", out.stdout);
}

#[test]
fn the_nearest_project_file_wins_over_the_users() {
    let home = tempfile::tempdir().unwrap();
    let project = tempfile::tempdir().unwrap();
    write(
        &home.path().join(".config/csvd/config.toml"),
        "base_url = \"http://user.example:1\"\n[headers]\nX-User = \"u\"\nX-Both = \"user\"\n",
    );
    write(
        &project.path().join(".csvd.toml"),
        "base_url = \"https://project.example/api\"\n[headers]\nX-Both = \"project\"\n",
    );
    let deep = project.path().join("src/deeper");
    std::fs::create_dir_all(&deep).unwrap();
    let out = run_in(&deep, home.path(), &["get", "/people", "--offline"], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("GET /api/people HTTP/1.1\r\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("host: project.example\r\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("x-user: u\r\n"), "{}", out.stdout);
    assert!(out.stdout.contains("x-both: project\r\n"), "{}", out.stdout);
    assert!(!out.stdout.contains("x-both: user"), "{}", out.stdout);
    // A full URL is left alone.
    let out = run_in(
        &deep,
        home.path(),
        &["get", "http://other.example/x", "--offline"],
        &[],
    );
    assert!(
        out.stdout.contains("host: other.example\r\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_bad_file_is_named_with_its_line_and_nothing_is_sent() {
    let home = tempfile::tempdir().unwrap();
    let project = tempfile::tempdir().unwrap();
    let path = project.path().join(".csvd.toml");
    write(
        &path,
        "base_url = \"http://a\"\n\ndefault_option = [\"-v\"]\n",
    );
    let out = run_in(project.path(), home.path(), &["get", "/people"], &[]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    let expected = format!(
        "csvd: {}: line 3: unknown field `default_option`",
        path.display()
    );
    assert!(out.stderr.starts_with(&expected), "{}", out.stderr);
    write(&path, "[headers]\nX-A = \"x\"\nX-A = \"y\"\n");
    let out = run_in(project.path(), home.path(), &["get", "/people"], &[]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains(": line 3: "), "{}", out.stderr);
    write(&path, "[headers]\n\"a b\" = \"x\"\n");
    let out = run_in(project.path(), home.path(), &["get", "/people"], &[]);
    assert!(
        out.stderr.contains(": line 2: `a b` is not a header name"),
        "{}",
        out.stderr
    );
    // --no-config does not read it at all.
    let out = run_in(
        project.path(),
        home.path(),
        &["get", "/people", "--offline", "--no-config"],
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn a_default_option_the_command_refuses_names_the_file_and_the_option() {
    let home = tempfile::tempdir().unwrap();
    let project = tempfile::tempdir().unwrap();
    let user = home.path().join(".config/csvd/config.toml");
    write(&user, "default_options = [\"--colour\"]\n");
    let out = run_in(project.path(), home.path(), &["get", "/people"], &[]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    let expected = format!(
        "csvd: {}: line 1: default_options: unknown option --colour",
        user.display()
    );
    assert!(out.stderr.starts_with(&expected), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    // The project's file replaces the user's options, and is the one named.
    let path = project.path().join(".csvd.toml");
    write(
        &path,
        "# defaults\ndefault_options = [\"--timeout\", \"soon\"]\n",
    );
    let out = run_in(project.path(), home.path(), &["post", "/people"], &[]);
    assert_eq!(out.code, 1);
    let expected = format!("csvd: {}: line 2: default_options: ", path.display());
    assert!(out.stderr.starts_with(&expected), "{}", out.stderr);
    assert!(out.stderr.contains("'soon'"), "{}", out.stderr);
    write(&path, "default_options = [\"--offline\", \"-p\", \"H\"]\n");
    let out = run_in(project.path(), home.path(), &["get", "/people"], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("GET /people HTTP/1.1"),
        "{}",
        out.stdout
    );
}
