//! Measures what a read of one row costs while csvd writes, over loopback
//! (bench/reads.sh).
//!
//! ```text
//! read_latency mixed HOST:PORT TABLE ROWS READERS WRITERS SECONDS
//! read_latency checkpoint HOST:PORT BIG BIG_ROWS SMALL SMALL_ROWS READERS CYCLES
//! ```
//!
//! `mixed`: READERS threads `GET /TABLE/<id>` (a random id in 1..=ROWS) in
//! a loop while WRITERS threads `PATCH /TABLE/<id>` (durable writes), each
//! on its own keep-alive connection, for SECONDS. Prints `key value` lines:
//! counts, rates, and the p50, p99, p99.9 and maximum latency (ms) of the
//! reads and of the writes.
//!
//! `checkpoint`: CYCLES times, one row of the BIG table is changed, then
//! (once the checkpoint that rewrites BIG's file has begun: `--checkpoint-after`
//! must be 1 s) one writer changes rows of the SMALL table every 2 ms until
//! `csvd_checkpoints_total` in `/_metrics` has grown, while READERS threads
//! read rows of BIG and SMALL throughout. Prints the same lines for the
//! requests sent while a checkpoint ran, and how long the checkpoints took.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["mixed", addr, table, rows, readers, writers, seconds] => mixed(
            addr,
            table,
            number(rows, "ROWS"),
            number(readers, "READERS"),
            number(writers, "WRITERS"),
            Duration::from_secs_f64(number::<f64>(seconds, "SECONDS")),
        ),
        ["checkpoint", addr, big, big_rows, small, small_rows, readers, cycles] => checkpoint(
            addr,
            (big, number(big_rows, "BIG_ROWS")),
            (small, number(small_rows, "SMALL_ROWS")),
            number(readers, "READERS"),
            number(cycles, "CYCLES"),
        ),
        _ => {
            eprintln!(
                "usage: read_latency mixed HOST:PORT TABLE ROWS READERS WRITERS SECONDS\n       \
                 read_latency checkpoint HOST:PORT BIG BIG_ROWS SMALL SMALL_ROWS READERS CYCLES"
            );
            std::process::exit(2);
        }
    };
    if let Err(err) = result {
        eprintln!("read_latency: {err}");
        std::process::exit(1);
    }
}

fn number<T: std::str::FromStr>(text: &str, name: &str) -> T {
    text.parse().unwrap_or_else(|_| {
        eprintln!("read_latency: {name}: expected a number, got {text:?}");
        std::process::exit(2);
    })
}

/// A small xorshift generator: ids to read, without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// One request: when it was sent, how long until its answer was read whole.
#[derive(Clone, Copy)]
struct Sample {
    sent: Instant,
    took: Duration,
}

fn mixed(
    addr: &str,
    table: &str,
    rows: u64,
    readers: usize,
    writers: usize,
    run: Duration,
) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let reads = spawn_all(readers, addr, &stop, |n| {
        let table = table.to_string();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (n as u64 + 1));
        move |conn: &mut Conn| conn.get(&format!("/{table}/{}", 1 + rng.below(rows)))
    });
    let writes = spawn_all(writers, addr, &stop, |n| {
        let table = table.to_string();
        let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ (n as u64 + 1));
        let mut count = 0u64;
        move |conn: &mut Conn| {
            count += 1;
            let body = format!(r#"{{"note":"written {n}-{count}"}}"#);
            conn.send(
                "PATCH",
                &format!("/{table}/{}", 1 + rng.below(rows)),
                Some(&body),
            )
        }
    });
    std::thread::sleep(run);
    stop.store(true, Ordering::Relaxed);
    let reads = join_all(reads)?;
    let writes = join_all(writes)?;
    let elapsed = start.elapsed().as_secs_f64();
    report("read", &reads, elapsed);
    report("write", &writes, elapsed);
    Ok(())
}

fn checkpoint(
    addr: &str,
    (big, big_rows): (&str, u64),
    (small, small_rows): (&str, u64),
    readers: usize,
    cycles: usize,
) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let reads = spawn_all(readers, addr, &stop, |n| {
        let (big, small) = (big.to_string(), small.to_string());
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (n as u64 + 1));
        move |conn: &mut Conn| {
            let path = if rng.below(2) == 0 {
                format!("/{big}/{}", 1 + rng.below(big_rows))
            } else {
                format!("/{small}/{}", 1 + rng.below(small_rows))
            };
            conn.get(&path)
        }
    });
    let mut control = Conn::open(addr)?;
    let mut windows = Vec::new();
    let mut writes = Vec::new();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for cycle in 0..cycles {
        // Let earlier checkpoints end, then change the big table once.
        std::thread::sleep(Duration::from_millis(1500));
        let before = checkpoints(&mut control)?;
        let body = format!(r#"{{"note":"checkpoint cycle {cycle}"}}"#);
        let path = format!("/{big}/{}", 1 + rng.below(big_rows));
        control.send("PATCH", &path, Some(&body))?;
        let changed = Instant::now();
        // The checkpoint begins 1 to 1.1 s after that write; writes before
        // then would put it off.
        std::thread::sleep(Duration::from_millis(1150));
        let begun = Instant::now();
        let mut writer = Conn::open(addr)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let body = format!(r#"{{"note":"during checkpoint {cycle}"}}"#);
            let path = format!("/{small}/{}", 1 + rng.below(small_rows));
            let sent = Instant::now();
            writer.send("PATCH", &path, Some(&body))?;
            writes.push(Sample {
                sent,
                took: sent.elapsed(),
            });
            if checkpoints(&mut control)? > before {
                break;
            }
            if Instant::now() > deadline {
                return Err("no checkpoint ended within 60 s of a write".into());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        windows.push((begun, Instant::now(), changed));
    }
    stop.store(true, Ordering::Relaxed);
    let reads = join_all(reads)?;
    let elapsed = start.elapsed().as_secs_f64();
    let during = |samples: &[Sample]| -> Vec<Sample> {
        samples
            .iter()
            .filter(|s| windows.iter().any(|(a, b, _)| s.sent >= *a && s.sent <= *b))
            .copied()
            .collect()
    };
    let seconds: f64 = windows
        .iter()
        .map(|(a, b, _)| (*b - *a).as_secs_f64())
        .sum();
    let longest = windows
        .iter()
        .map(|(_, b, changed)| (*b - *changed).as_secs_f64() - 1.0)
        .fold(0.0, f64::max);
    println!("checkpoints {}", windows.len());
    println!("checkpoint_seconds {seconds:.2}");
    println!("checkpoint_longest_s {longest:.2}");
    report("read", &during(&reads), seconds);
    report("write", &during(&writes), seconds);
    report("read_all", &reads, elapsed);
    Ok(())
}

/// `csvd_checkpoints_total` from `/_metrics`.
fn checkpoints(conn: &mut Conn) -> Result<u64> {
    let body = conn.get_body("/_metrics")?;
    body.lines()
        .find_map(|l| l.strip_prefix("csvd_checkpoints_total "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| "no csvd_checkpoints_total in /_metrics".into())
}

type Worker = std::thread::JoinHandle<Result<Vec<Sample>>>;

/// `count` threads, each on its own connection, running the request `make`
/// gives it in a loop until `stop`.
fn spawn_all<F>(
    count: usize,
    addr: &str,
    stop: &Arc<AtomicBool>,
    mut make: impl FnMut(usize) -> F,
) -> Vec<Worker>
where
    F: FnMut(&mut Conn) -> Result<()> + Send + 'static,
{
    (0..count)
        .map(|n| {
            let addr = addr.to_string();
            let stop = stop.clone();
            let mut request = make(n);
            std::thread::spawn(move || {
                let mut conn = Conn::open(&addr)?;
                let mut samples = Vec::with_capacity(1 << 16);
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    request(&mut conn)?;
                    samples.push(Sample {
                        sent,
                        took: sent.elapsed(),
                    });
                }
                Ok(samples)
            })
        })
        .collect()
}

fn join_all(workers: Vec<Worker>) -> Result<Vec<Sample>> {
    let all = Mutex::new(Vec::new());
    for worker in workers {
        let samples = worker.join().map_err(|_| "a worker panicked")??;
        all.lock().unwrap().extend(samples);
    }
    Ok(all.into_inner().unwrap())
}

fn report(name: &str, samples: &[Sample], seconds: f64) {
    let mut ns: Vec<u64> = samples.iter().map(|s| s.took.as_nanos() as u64).collect();
    ns.sort_unstable();
    println!("{name}_count {}", ns.len());
    println!("{name}_rate {:.0}", ns.len() as f64 / seconds.max(1e-9));
    for (label, q) in [("p50", 0.5), ("p99", 0.99), ("p999", 0.999)] {
        println!("{name}_{label} {:.2}", percentile(&ns, q) as f64 / 1e6);
    }
    println!(
        "{name}_max {:.2}",
        ns.last().copied().unwrap_or(0) as f64 / 1e6
    );
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    host: String,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    body: Vec<u8>,
}

impl Conn {
    fn open(addr: &str) -> Result<Conn> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            host: addr.to_string(),
            writer: stream.try_clone()?,
            reader: BufReader::with_capacity(1 << 16, stream),
            body: Vec::new(),
        })
    }

    fn get(&mut self, path: &str) -> Result<()> {
        self.send("GET", path, None)
    }

    fn get_body(&mut self, path: &str) -> Result<String> {
        self.send("GET", path, None)?;
        Ok(String::from_utf8_lossy(&self.body).into_owned())
    }

    /// Sends one request and reads its answer whole; anything but a 2xx
    /// is an error.
    fn send(&mut self, method: &str, path: &str, body: Option<&str>) -> Result<()> {
        let head = match body {
            Some(body) => format!(
                "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                self.host,
                body.len()
            ),
            None => format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.host),
        };
        self.writer.write_all(head.as_bytes())?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("not an HTTP answer: {line:?}"))?;
        let mut length = 0usize;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err("the connection closed mid-answer".into());
            }
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            if let Some((name, value)) = trimmed.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse()?;
                }
            }
        }
        self.body.resize(length, 0);
        self.reader.read_exact(&mut self.body)?;
        if !(200..300).contains(&status) {
            return Err(format!(
                "{method} {path}: {status} {}",
                String::from_utf8_lossy(&self.body)
            )
            .into());
        }
        Ok(())
    }
}
