//! A throwaway PostgreSQL server for the tests that run csvd on a database.
//!
//! With `CSVD_TEST_POSTGRES=<url>` the tests use that server and create
//! their own databases in it. Otherwise each test binary starts one cluster
//! of its own, the first time a test asks for it: Debian's `initdb`,
//! `pg_ctl` and `postgres` (found in `PATH` or in `/usr/lib/postgresql/*/bin`,
//! the highest version), in a temporary directory, listening on 127.0.0.1
//! only, on a free port, with trust authentication for loopback and `fsync`
//! on. As root (initdb refuses root) they run as the unprivileged user
//! `postgres` (which Debian's package creates), or `nobody`.
//!
//! The cluster never outlives the test binary: a watchdog shell, started
//! before the cluster, reads a pipe whose only writing end this process
//! holds. However the process ends — tests done, a panic, Ctrl-C, SIGKILL —
//! the kernel closes that end, the watchdog reads end-of-file, stops the
//! cluster (`pg_ctl stop -m immediate`) and removes its directory. It runs
//! in a process group of its own and ignores SIGINT, SIGHUP and SIGTERM, so
//! a Ctrl-C that stops the tests cannot stop it before it has cleaned up.
//!
//! When no PostgreSQL can be found or started, [`available`] says so loudly
//! and the tests skip, unless `CSVD_REQUIRE_POSTGRES=1` (or `CI=true`) is
//! set: then it panics with the reason, and the test fails.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The superuser of a cluster the tests start.
const SUPERUSER: &str = "postgres";

/// How long a cluster may take to start, or to come back after a restart.
const READY_DEADLINE: Duration = Duration::from_secs(60);

/// A PostgreSQL server the tests may create databases in.
pub struct Pg {
    /// The URL to connect with for administration (`CREATE DATABASE`).
    admin_url: String,
    /// `psql` and `pg_isready`, from the same installation when there is one.
    psql: PathBuf,
    pg_isready: Option<PathBuf>,
    /// The cluster started for this test binary; `None` for a server given
    /// by `CSVD_TEST_POSTGRES`.
    local: Option<Local>,
    /// The writing end of the watchdog's pipe: held until the process ends.
    _watchdog: Option<ChildStdin>,
    databases: AtomicU64,
}

/// A cluster started by this test binary.
struct Local {
    bin: PathBuf,
    data: PathBuf,
    log: PathBuf,
    port: u16,
    /// The unprivileged user that runs the cluster when the tests run as root.
    owner: Option<String>,
}

/// The PostgreSQL server of this test binary, started on first use; `None`
/// (after a loud message) when there is none and none is required.
pub fn available() -> Option<&'static Pg> {
    static PG: OnceLock<Result<Pg, String>> = OnceLock::new();
    match PG.get_or_init(start) {
        Ok(pg) => Some(pg),
        Err(why) if required() => panic!(
            "PostgreSQL is required (CSVD_REQUIRE_POSTGRES=1 or CI=true) but cannot be \
             used: {why}"
        ),
        Err(why) => {
            // Once per test binary, straight to stderr: the harness would
            // hide `eprintln!` of a passing test.
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "\n*** SKIPPED: PostgreSQL tests — no PostgreSQL found (install Debian's \
                     postgresql, or set CSVD_TEST_POSTGRES=url): {why} ***\n"
                );
            });
            None
        }
    }
}

fn required() -> bool {
    std::env::var("CSVD_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| v == "true")
}

impl Pg {
    /// Creates a new, empty database and returns its URL
    /// (`postgres://user@127.0.0.1:PORT/NAME`).
    ///
    /// Databases get ICU's `en-US` collation where the server has ICU, as a
    /// real server's database often has a language's collation rather than
    /// code point order: a backend must not lean on the database's collation
    /// to sort text the way csvd does (by code point).
    pub fn fresh_database(&self) -> String {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let name = format!("csvd_test_{}_{stamp}_{n}", std::process::id());
        let attempts = [
            format!(
                "CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' \
                 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
            ),
            format!("CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'"),
            format!("CREATE DATABASE \"{name}\""),
        ];
        let mut failures = Vec::new();
        for sql in &attempts {
            match self.try_psql(&self.admin_url, sql) {
                Ok(_) => return with_database(&self.admin_url, &name),
                Err(why) => failures.push(why),
            }
        }
        panic!(
            "cannot create a database on {}: {}",
            self.admin_url,
            failures.join("; then: ")
        );
    }

    /// Runs `sql` with psql on the database at `url` and returns what it
    /// printed: unaligned, tuples only (`a|b` a row, a line each). Panics
    /// with psql's message when it fails.
    pub fn psql(&self, url: &str, sql: &str) -> String {
        self.try_psql(url, sql)
            .unwrap_or_else(|why| panic!("psql on {url}: {sql}: {why}"))
    }

    /// Whether [`Pg::restart_immediate`] can be used: only on a cluster this
    /// test binary started.
    pub fn can_restart(&self) -> bool {
        self.local.is_some()
    }

    /// Stops the cluster as a crash would (`pg_ctl restart -m immediate`:
    /// no checkpoint, recovery from the WAL at start) and waits until it
    /// accepts connections again. Every connection to it is cut, so a test
    /// binary that uses it must not share the cluster with tests running at
    /// the same time.
    pub fn restart_immediate(&self) {
        let local = self.local.as_ref().expect(
            "restart_immediate needs a cluster the tests started, not one given by \
             CSVD_TEST_POSTGRES (check can_restart())",
        );
        local
            .pg_ctl(&[
                "restart",
                "-m",
                "immediate",
                "-w",
                "-t",
                "60",
                "-l",
                &local.log.to_string_lossy(),
            ])
            .unwrap_or_else(|why| panic!("pg_ctl restart -m immediate failed: {why}"));
        if let Err(why) = self.wait_ready() {
            panic!("PostgreSQL did not come back after an immediate restart: {why}");
        }
    }

    /// The port of the cluster this binary started (`None` for an external
    /// server).
    pub fn local_port(&self) -> Option<u16> {
        self.local.as_ref().map(|local| local.port)
    }

    /// The data directory of the cluster this binary started.
    pub fn local_data_dir(&self) -> Option<&Path> {
        self.local.as_ref().map(|local| local.data.as_path())
    }

    fn try_psql(&self, url: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(&self.psql)
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                url,
                "-c",
                sql,
            ])
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.psql.display()))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "psql exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// Polls until the server accepts connections, up to [`READY_DEADLINE`].
    fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + READY_DEADLINE;
        let mut last = String::new();
        while Instant::now() < deadline {
            let ready = match &self.pg_isready {
                Some(pg_isready) => {
                    let out = Command::new(pg_isready)
                        .args(["-d", &self.admin_url, "-t", "2"])
                        .stdin(Stdio::null())
                        .output()
                        .map_err(|e| format!("cannot run {}: {e}", pg_isready.display()))?;
                    last = String::from_utf8_lossy(&out.stdout).trim().to_string();
                    out.status.success()
                }
                None => match self.try_psql(&self.admin_url, "SELECT 1") {
                    Ok(_) => true,
                    Err(why) => {
                        last = why;
                        false
                    }
                },
            };
            if ready {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "not ready within {} s: {last}",
            READY_DEADLINE.as_secs()
        ))
    }
}

impl Local {
    /// Runs `pg_ctl ARGS -D DATA` as the cluster's owner; its output goes to
    /// a file (a postmaster it starts must not hold a pipe of ours open).
    fn pg_ctl(&self, args: &[&str]) -> Result<(), String> {
        let out = self.data.with_file_name("pg_ctl.out");
        let file = std::fs::File::create(&out).map_err(|e| format!("{}: {e}", out.display()))?;
        let err = file.try_clone().map_err(|e| e.to_string())?;
        let pg_ctl = self.bin.join("pg_ctl");
        let status = as_owner(self.owner.as_deref(), &pg_ctl)
            .args(args)
            .arg("-D")
            .arg(&self.data)
            .current_dir(self.data.parent().unwrap_or(Path::new("/")))
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .status()
            .map_err(|e| format!("cannot run {}: {e}", pg_ctl.display()))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} {} exited with {status}: {}\nserver log:\n{}",
                pg_ctl.display(),
                args.join(" "),
                std::fs::read_to_string(&out).unwrap_or_default().trim(),
                tail(&self.log)
            ))
        }
    }
}

/// Connects to `CSVD_TEST_POSTGRES`, or starts a cluster.
fn start() -> Result<Pg, String> {
    if let Ok(url) = std::env::var("CSVD_TEST_POSTGRES") {
        let bin = installations().into_iter().next();
        let pg = Pg {
            psql: tool(bin.as_deref(), "psql")
                .ok_or("no psql found (PATH, /usr/lib/postgresql)")?,
            pg_isready: tool(bin.as_deref(), "pg_isready"),
            admin_url: url.clone(),
            local: None,
            _watchdog: None,
            databases: AtomicU64::new(0),
        };
        pg.wait_ready()
            .map_err(|why| format!("CSVD_TEST_POSTGRES={url}: {why}"))?;
        return Ok(pg);
    }
    let bin = installations()
        .into_iter()
        .next()
        .ok_or("no initdb, pg_ctl and postgres in PATH or in /usr/lib/postgresql/*/bin")?;
    let psql = tool(Some(&bin), "psql").ok_or("no psql found (PATH, /usr/lib/postgresql)")?;
    let owner = if is_root() {
        Some(
            ["postgres", "nobody"]
                .into_iter()
                .find(|user| id(user, "-u").is_some())
                .ok_or("running as root, and there is no user postgres or nobody to run PostgreSQL as (initdb refuses root)")?
                .to_string(),
        )
    } else {
        None
    };
    // Kept on purpose: the watchdog removes it once the binary has ended.
    let dir = tempfile::Builder::new()
        .prefix("csvd-pg-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?
        .keep();
    let data = dir.join("data");
    let log = dir.join("server.log");
    let sockets = dir.join("sockets");
    std::fs::create_dir(&sockets).map_err(|e| format!("{}: {e}", sockets.display()))?;
    if let Some(user) = &owner {
        let uid = id(user, "-u").ok_or("no uid")?;
        let gid = id(user, "-g").ok_or("no gid")?;
        for path in [&dir, &sockets] {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .map_err(|e| format!("cannot give {} to {user}: {e}", path.display()))?;
        }
    }
    let watchdog = watchdog(&bin, &data, &dir, owner.as_deref())?;

    let initdb = bin.join("initdb");
    let out = as_owner(owner.as_deref(), &initdb)
        .arg("-D")
        .arg(&data)
        .args(["-U", SUPERUSER, "-A", "trust", "-E", "UTF8"])
        .arg(format!("--locale={}", cluster_locale()))
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", initdb.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}): {}",
            initdb.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }

    // A free port can be taken by someone else before the server binds it:
    // then try another.
    let mut failures = Vec::new();
    for _ in 0..3 {
        let port = free_port()?;
        let local = Local {
            bin: bin.clone(),
            data: data.clone(),
            log: log.clone(),
            port,
            owner: owner.clone(),
        };
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k '{}' -c fsync=on \
             -c synchronous_commit=on -c max_connections=300",
            sockets.display()
        );
        match local.pg_ctl(&[
            "start",
            "-w",
            "-t",
            "60",
            "-l",
            &log.to_string_lossy(),
            "-o",
            &options,
        ]) {
            Ok(()) => {
                let pg = Pg {
                    admin_url: format!("postgres://{SUPERUSER}@127.0.0.1:{port}/postgres"),
                    psql,
                    pg_isready: tool(Some(&bin), "pg_isready"),
                    local: Some(local),
                    _watchdog: Some(watchdog),
                    databases: AtomicU64::new(0),
                };
                pg.wait_ready()?;
                return Ok(pg);
            }
            Err(why) => failures.push(why),
        }
    }
    Err(format!(
        "PostgreSQL did not start: {}",
        failures.join("\nthen: ")
    ))
}

/// Directories holding `initdb`, `pg_ctl` and `postgres`: those in `PATH`
/// first, then Debian's `/usr/lib/postgresql/VERSION/bin`, highest first
/// (Debian's package does not put the server's programs in `PATH`).
fn installations() -> Vec<PathBuf> {
    let complete = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|name| is_executable(&dir.join(name)))
    };
    let mut found: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|dir| complete(dir))
        .collect();
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let version = name
                .split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| complete(bin))
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    found.extend(versions.into_iter().map(|(_, bin)| bin));
    found
}

/// A client program: from the server's installation when it has one, else
/// from `PATH`, else from the newest Debian installation.
fn tool(bin: Option<&Path>, name: &str) -> Option<PathBuf> {
    let path_dirs = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    bin.map(Path::to_path_buf)
        .into_iter()
        .chain(path_dirs)
        .chain(installations())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn is_root() -> bool {
    // The owner of /proc/self is the process's effective user.
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `id -u USER` or `id -g USER`.
fn id(user: &str, which: &str) -> Option<u32> {
    let out = Command::new("id").args([which, user]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// A command that runs `program` as `owner` (through `runuser`, which needs
/// root, as the tests then are), or as this process's user.
fn as_owner(owner: Option<&str>, program: &Path) -> Command {
    match owner {
        Some(user) => {
            let mut command = Command::new("runuser");
            command.args(["-u", user, "--"]).arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// Starts the watchdog (see the module's documentation): a shell in a
/// process group of its own, deaf to SIGINT, SIGHUP and SIGTERM, that
/// waits for end-of-file on its standard input, then stops the cluster and
/// removes `dir`. Returns the writing end of that pipe, which no other
/// process may hold (Rust opens it close-on-exec).
fn watchdog(
    bin: &Path,
    data: &Path,
    dir: &Path,
    owner: Option<&str>,
) -> Result<ChildStdin, String> {
    use std::os::unix::process::CommandExt;
    const SCRIPT: &str = r#"
        trap '' INT HUP TERM
        cat >/dev/null
        if [ -n "$4" ]; then
            runuser -u "$4" -- "$1/pg_ctl" stop -D "$2" -m immediate -w -t 30
        else
            "$1/pg_ctl" stop -D "$2" -m immediate -w -t 30
        fi
        rm -rf "$3"
    "#;
    let mut child = Command::new("sh")
        .args(["-c", SCRIPT, "csvd-pg-watchdog"])
        .arg(bin)
        .arg(data)
        .arg(dir)
        .arg(owner.unwrap_or(""))
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the watchdog shell: {e}"))?;
    child
        .stdin
        .take()
        .ok_or_else(|| "the watchdog has no standard input".to_string())
}

/// The cluster's locale: `C.UTF-8` where the system has it (Debian does),
/// else `C`; databases choose their collation when created.
fn cluster_locale() -> &'static str {
    let out = Command::new("locale").arg("-a").output();
    let has_c_utf8 = out.is_ok_and(|out| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.eq_ignore_ascii_case("C.UTF-8") || l.eq_ignore_ascii_case("C.utf8"))
    });
    if has_c_utf8 {
        "C.UTF-8"
    } else {
        "C"
    }
}

/// A port nobody listens on at this moment.
fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot find a free port: {e}"))?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|e| e.to_string())
}

/// `url` with its database (path) replaced by `name`, its query kept.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    let authority = before_query.split('/').next().unwrap_or(before_query);
    match query {
        Some(query) => format!("{scheme}://{authority}/{name}?{query}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}

/// The last lines of a log file, for an error message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
