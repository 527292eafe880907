//! The traffic through a relay under test: a source that writes a known byte sequence as fast
//! as the relay takes it, and a sink that reads, counts and compares every byte with the same
//! sequence, so a relay that drops, repeats, reorders or mixes up bytes between connections
//! fails the run instead of looking fast.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Length of the sequence before it repeats: not a multiple of any buffer or page size, so a
/// chunk dropped or repeated anywhere shifts everything after it.
const PERIOD: usize = (1 << 20) + 7;

/// Bytes the source hands to one `write`.
const WRITE_CHUNK: usize = 256 * 1024;

/// Bytes the sink asks one `read` for.
const READ_CHUNK: usize = 64 * 1024;

/// The byte sequence: pseudo-random (xorshift), stored twice over so that any stretch of up
/// to [`PERIOD`] bytes is one slice.
pub struct Pattern {
    bytes: Vec<u8>,
}

impl Pattern {
    /// The sequence every run uses.
    pub fn new() -> Pattern {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut bytes: Vec<u8> = (0..PERIOD)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        bytes.extend_from_within(..);
        Pattern { bytes }
    }

    /// `len` (at most [`PERIOD`]) bytes of the sequence from position `offset` on.
    fn at(&self, offset: u64, len: usize) -> &[u8] {
        let start = (offset % PERIOD as u64) as usize;
        &self.bytes[start..start + len]
    }
}

/// Where connection `index` starts in the sequence: each connection somewhere else, so bytes
/// crossing from one connection to another are caught.
pub fn start_of(index: usize) -> u64 {
    index as u64 * 100_003
}

/// Writes `total` bytes of the sequence from `start` on, half-closes, then waits for the
/// relay's half-close coming back (the sink has read everything and closed its side).
pub async fn source(mut stream: TcpStream, pattern: &Pattern, start: u64, total: u64) -> io::Result<()> {
    let mut sent = 0u64;
    while sent < total {
        let n = (total - sent).min(WRITE_CHUNK as u64) as usize;
        stream.write_all(pattern.at(start + sent, n)).await?;
        sent += n as u64;
    }
    stream.shutdown().await?;
    let mut rest = [0u8; 64];
    match stream.read(&mut rest).await? {
        0 => Ok(()),
        n => Err(io::Error::new(io::ErrorKind::InvalidData, format!("the source was sent {n} bytes"))),
    }
}

/// Reads until the relay's half-close, checking every byte against the sequence from `start`
/// on, then half-closes its own side. Fails unless exactly `total` bytes came, all as sent.
/// Returns how many reads brought bytes (how finely the relay's writes arrived).
pub async fn sink(mut stream: TcpStream, pattern: &Pattern, start: u64, total: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; READ_CHUNK];
    let mut got = 0u64;
    let mut reads = 0u64;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        reads += 1;
        if got + n as u64 > total {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("more than the {total} bytes sent")));
        }
        if buf[..n] != *pattern.at(start + got, n) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a byte differs within {got}..{}", got + n as u64),
            ));
        }
        got += n as u64;
    }
    if got != total {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("{got} of {total} bytes arrived")));
    }
    stream.shutdown().await?;
    Ok(reads)
}
