//! Measures csvd's change feed from outside, over loopback (bench/changes.sh).
//!
//! ```text
//! feed_latency latency HOST:PORT SUBSCRIBERS WRITERS SECONDS
//! feed_latency hold HOST:PORT PATH COUNT
//! ```
//!
//! `latency`: SUBSCRIBERS Server-Sent Events streams follow `/_changes/t`
//! while WRITERS threads POST rows to `/t` in a loop, each on its own
//! keep-alive connection, for SECONDS. Every row carries a unique marker
//! (`"m":"<writer>-<n>"`); each writer notes the monotonic time it sent the
//! request and the time its answer was read whole, each subscriber the time
//! each row's event arrived. Prints `key value` lines: the write rate, and
//! percentiles of event time − answer time (negative when the event came
//! first) and of event time − request time.
//!
//! `hold`: opens COUNT SSE streams on PATH, prints `ready COUNT` once every
//! one has its opening, then reads and discards what arrives until SIGTERM,
//! when it prints what it received and exits.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["latency", addr, subscribers, writers, seconds] => latency(
            addr,
            number(subscribers, "SUBSCRIBERS"),
            number(writers, "WRITERS"),
            Duration::from_secs_f64(number::<f64>(seconds, "SECONDS")),
        ),
        ["hold", addr, path, count] => hold(addr, path, number(count, "COUNT")),
        _ => {
            eprintln!(
                "usage: feed_latency latency HOST:PORT SUBSCRIBERS WRITERS SECONDS\n       \
                 feed_latency hold HOST:PORT PATH COUNT"
            );
            std::process::exit(2);
        }
    };
    if let Err(err) = result {
        eprintln!("feed_latency: {err}");
        std::process::exit(1);
    }
}

fn number<T: std::str::FromStr>(text: &str, name: &str) -> T {
    text.parse().unwrap_or_else(|_| {
        eprintln!("feed_latency: {name}: expected a number, got {text:?}");
        std::process::exit(2);
    })
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// One write: when its request went, when its answer was read whole.
#[derive(Clone, Copy)]
struct Write1 {
    sent: Instant,
    acked: Instant,
}

fn latency(addr: &str, subscribers: usize, writers: usize, run: Duration) -> Result<()> {
    // The table exists before anyone follows it.
    let mut setup = Conn::open(addr)?;
    setup.post("/t", r#"{"name":"setup","m":"setup"}"#)?;

    let received = Arc::new(AtomicUsize::new(0));
    let ready = Arc::new(Barrier::new(subscribers + 1));
    let mut subs = Vec::new();
    for _ in 0..subscribers {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        write!(
            stream,
            "GET /_changes/t?since=now HTTP/1.1\r\nHost: {addr}\r\n\
             Accept: text/event-stream\r\n\r\n"
        )?;
        let closer = stream.try_clone()?;
        let (received, ready) = (received.clone(), ready.clone());
        let handle = std::thread::spawn(move || subscribe(stream, writers, &received, &ready));
        subs.push((closer, handle));
    }
    ready.wait();

    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let addr = addr.to_string();
            let stop = stop.clone();
            std::thread::spawn(move || -> Result<Vec<Write1>> {
                let mut conn = Conn::open(&addr)?;
                let mut writes = Vec::with_capacity(1 << 16);
                while !stop.load(Ordering::Relaxed) {
                    let body = format!(
                        r#"{{"name":"Kim Minji","city":"Seoul","note":"feed latency","m":"{w}-{}"}}"#,
                        writes.len()
                    );
                    let sent = Instant::now();
                    conn.post("/t", &body)?;
                    writes.push(Write1 {
                        sent,
                        acked: Instant::now(),
                    });
                }
                Ok(writes)
            })
        })
        .collect();
    std::thread::sleep(run);
    stop.store(true, Ordering::Relaxed);
    let mut writes = Vec::new();
    for handle in handles {
        writes.push(handle.join().map_err(|_| "a writer panicked")??);
    }
    let elapsed = start.elapsed();
    let total: usize = writes.iter().map(Vec::len).sum();

    // Every subscriber should get every write; wait for the stragglers.
    let deadline = Instant::now() + Duration::from_secs(5);
    while received.load(Ordering::Acquire) < total * subscribers && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut from_ack = Vec::new();
    let mut from_send = Vec::new();
    let mut missing = 0usize;
    for (closer, handle) in subs {
        let _ = closer.shutdown(Shutdown::Both);
        let events = handle.join().map_err(|_| "a subscriber panicked")??;
        let mut seen = 0usize;
        for (w, n, at) in events {
            let Some(write) = writes.get(w as usize).and_then(|ws| ws.get(n as usize)) else {
                continue;
            };
            seen += 1;
            from_ack.push(signed_ns(at, write.acked));
            from_send.push(signed_ns(at, write.sent));
        }
        missing += total - seen.min(total);
    }
    from_ack.sort_unstable();
    from_send.sort_unstable();
    let negative = from_ack.iter().filter(|&&ns| ns < 0).count();
    println!("writes {total}");
    println!("rate {:.0}", total as f64 / elapsed.as_secs_f64());
    println!("events {}", from_ack.len());
    println!("missing {missing}");
    println!(
        "negative {:.1}",
        100.0 * negative as f64 / from_ack.len().max(1) as f64
    );
    for (name, sorted) in [("ack", &from_ack), ("send", &from_send)] {
        for (label, q) in [("p50", 0.5), ("p99", 0.99), ("p999", 0.999)] {
            println!("{name}_{label} {:.2}", ms(percentile(sorted, q)));
        }
        println!("{name}_min {:.2}", ms(sorted.first().copied().unwrap_or(0)));
        println!("{name}_max {:.2}", ms(sorted.last().copied().unwrap_or(0)));
    }
    Ok(())
}

fn signed_ns(later: Instant, earlier: Instant) -> i64 {
    match later.checked_duration_since(earlier) {
        Some(d) => d.as_nanos() as i64,
        None => -(earlier.duration_since(later).as_nanos() as i64),
    }
}

fn percentile(sorted: &[i64], q: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(ns: i64) -> f64 {
    ns as f64 / 1e6
}

/// Follows one SSE stream until its socket is shut down; the time each
/// marked row's event arrived (per chunk read).
fn subscribe(
    stream: TcpStream,
    writers: usize,
    received: &AtomicUsize,
    ready: &Barrier,
) -> Result<Vec<(u32, u32, Instant)>> {
    let mut reader = BufReader::with_capacity(1 << 16, stream);
    let mut line = String::new();
    if let Err(err) = read_head(&mut reader, &mut line) {
        // The writers wait for every subscriber, this one included.
        ready.wait();
        return Err(err);
    }
    let mut events = Vec::with_capacity(1 << 18);
    let mut chunk = Vec::new();
    let mut opened = false;
    let result = loop {
        // Chunked transfer coding: a size line, the bytes, CRLF.
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break Ok(()),
            Ok(_) => {}
        }
        let Ok(size) = usize::from_str_radix(line.trim_end(), 16) else {
            break Err(format!("bad chunk size {line:?}"));
        };
        if size == 0 {
            break Ok(());
        }
        chunk.resize(size + 2, 0);
        if reader.read_exact(&mut chunk).is_err() {
            break Ok(());
        }
        let at = Instant::now();
        let text = String::from_utf8_lossy(&chunk[..size]);
        if !opened {
            opened = true;
            ready.wait();
        }
        let mut n = 0;
        for data in text.lines().filter_map(|l| l.strip_prefix("data: ")) {
            if data.contains(r#""reason":"#) {
                eprintln!("feed_latency: the stream ended: {data}");
            }
            if let Some((w, i)) = marker(data).filter(|&(w, _)| (w as usize) < writers) {
                events.push((w, i, at));
                n += 1;
            }
        }
        received.fetch_add(n, Ordering::Release);
    };
    if !opened {
        ready.wait();
    }
    result?;
    Ok(events)
}

/// Reads the stream's status line and headers; it must be a 200.
fn read_head(reader: &mut BufReader<TcpStream>, line: &mut String) -> Result<()> {
    reader.read_line(line)?;
    if !line.starts_with("HTTP/1.1 200") {
        return Err(format!("the feed answered {:?}", line.trim_end()).into());
    }
    loop {
        line.clear();
        reader.read_line(line)?;
        if line == "\r\n" {
            return Ok(());
        }
        if line.is_empty() {
            return Err("the feed closed in its headers".into());
        }
    }
}

/// The `"m":"<writer>-<n>"` of an event's row.
fn marker(data: &str) -> Option<(u32, u32)> {
    let at = data.find(r#""m":""#)? + 5;
    let rest = &data[at..];
    let (w, rest) = rest.split_once('-')?;
    let n = &rest[..rest.find('"')?];
    Some((w.parse().ok()?, n.parse().ok()?))
}

/// One keep-alive HTTP/1.1 connection for POSTs.
struct Conn {
    addr: String,
    reader: BufReader<TcpStream>,
    line: String,
    body: Vec<u8>,
}

impl Conn {
    fn open(addr: &str) -> Result<Conn> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            addr: addr.to_string(),
            reader: BufReader::new(stream),
            line: String::new(),
            body: Vec::new(),
        })
    }

    /// Sends one POST and reads its answer whole; it must be a 201.
    fn post(&mut self, path: &str, body: &str) -> Result<()> {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        self.reader.get_mut().write_all(request.as_bytes())?;
        self.line.clear();
        self.reader.read_line(&mut self.line)?;
        let status = self.line.clone();
        let mut length = 0usize;
        loop {
            self.line.clear();
            if self.reader.read_line(&mut self.line)? == 0 {
                return Err("the server closed the connection".into());
            }
            if self.line == "\r\n" {
                break;
            }
            if let Some((name, value)) = self.line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse()?;
                }
            }
        }
        self.body.resize(length, 0);
        self.reader.read_exact(&mut self.body)?;
        if !status.starts_with("HTTP/1.1 201") {
            return Err(format!(
                "POST {path} answered {:?}: {}",
                status.trim_end(),
                String::from_utf8_lossy(&self.body)
            )
            .into());
        }
        Ok(())
    }
}

/// What the held streams received.
#[derive(Default)]
struct Tally {
    events: AtomicUsize,
    bytes: AtomicUsize,
    ended: AtomicUsize,
    failed: AtomicUsize,
}

fn hold(addr: &str, path: &str, count: usize) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // Listening before `ready`, so that a SIGTERM right after it is
        // answered with the tally rather than the default death.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let tally = Arc::new(Tally::default());
        let (opened_tx, mut opened_rx) = tokio::sync::mpsc::channel::<bool>(count.max(1));
        let started = Instant::now();
        for _ in 0..count {
            let request =
                format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
            let (addr, tally, opened_tx) = (addr.to_string(), tally.clone(), opened_tx.clone());
            tokio::spawn(async move {
                let mut stream = match tokio::net::TcpStream::connect(&addr).await {
                    Ok(stream) => stream,
                    Err(err) => {
                        if tally.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                            eprintln!("feed_latency: connecting: {err}");
                        }
                        let _ = opened_tx.send(false).await;
                        return;
                    }
                };
                if stream.write_all(request.as_bytes()).await.is_err() {
                    tally.failed.fetch_add(1, Ordering::Relaxed);
                    let _ = opened_tx.send(false).await;
                    return;
                }
                let mut buf = vec![0u8; 16 << 10];
                // The last bytes of the previous read, so that a name split
                // between two reads is still counted.
                let mut carry: Vec<u8> = Vec::new();
                let mut opened = false;
                let mut head = Vec::new();
                let mut joined = Vec::new();
                loop {
                    let n = match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    tally.bytes.fetch_add(n, Ordering::Relaxed);
                    joined.clear();
                    joined.extend_from_slice(&carry);
                    joined.extend_from_slice(&buf[..n]);
                    if !opened {
                        // The answer's head, kept whole until the opening came.
                        head.extend_from_slice(&buf[..n]);
                        if head.len() >= 12 && !head.starts_with(b"HTTP/1.1 200") {
                            if tally.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                                let answer = String::from_utf8_lossy(&head);
                                eprintln!("feed_latency: the feed answered {answer:?}");
                            }
                            let _ = opened_tx.send(false).await;
                            return;
                        }
                        if find(&head, b"csvd change feed").is_some() {
                            opened = true;
                            head = Vec::new();
                            let _ = opened_tx.send(true).await;
                        }
                    }
                    let events = count_of(&joined, b"\nevent: ");
                    tally.events.fetch_add(events, Ordering::Relaxed);
                    if find(&joined, b"event: end").is_some() {
                        tally.ended.fetch_add(1, Ordering::Relaxed);
                    }
                    // Keep fewer bytes than the pattern so nothing counts twice.
                    let keep = joined.len().min(7);
                    carry.clear();
                    carry.extend_from_slice(&joined[joined.len() - keep..]);
                }
                if !opened {
                    if tally.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                        eprintln!("feed_latency: a stream closed before its opening");
                    }
                    let _ = opened_tx.send(false).await;
                }
            });
        }
        drop(opened_tx);
        let mut open = 0;
        for _ in 0..count {
            match opened_rx.recv().await {
                Some(true) => open += 1,
                Some(false) => {}
                None => break,
            }
        }
        println!(
            "ready {open} {:.2} {}",
            started.elapsed().as_secs_f64(),
            tally.failed.load(Ordering::Relaxed)
        );
        std::io::stdout().flush()?;
        term.recv().await;
        // An event is counted by its `event:` line; the stream's end is one.
        println!(
            "events {} bytes {} ended {}",
            tally.events.load(Ordering::Relaxed),
            tally.bytes.load(Ordering::Relaxed),
            tally.ended.load(Ordering::Relaxed)
        );
        std::io::stdout().flush()?;
        Ok(())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn count_of(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}
