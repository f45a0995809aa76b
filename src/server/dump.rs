//! `--dump`: prints every byte a client sends, as the seed's server printed
//! each request it received.

use std::io::Write;
use std::net::SocketAddr;

/// How much of one read is printed; the rest is summarised. The seed read
/// requests 2048 bytes at a time.
const SHOW_BYTES: usize = 2048;

/// What to do with a connection's incoming bytes: echo them to stdout.
pub fn printer(peer: SocketAddr) -> impl FnMut(&[u8]) + Send + Unpin + 'static {
    move |new: &[u8]| {
        let shown = &new[..new.len().min(SHOW_BYTES)];
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "--- {} bytes from {} ---", new.len(), peer);
        let _ = out.write_all(String::from_utf8_lossy(shown).as_bytes());
        if new.len() > shown.len() {
            let _ = write!(out, "\n… {} more bytes", new.len() - shown.len());
        }
        let _ = writeln!(out);
        let _ = out.flush();
    }
}
