//! A control for the splice relay: the same loop, readiness and half-close, but through a
//! user-space buffer (`read` into it, `write` out of it) of a chosen size. With 16 KiB it
//! shows whether mailmux's relay (16 KiB chunks) costs more than a bare copy loop; with
//! 64 KiB, what a larger buffer alone gains; against the splice relay with the same 64 KiB,
//! what avoiding the two copies gains.

use std::io;
use std::time::Duration;

use tokio::net::TcpStream;

/// Relays between `a` and `b` with a buffer of `size` bytes per direction until both
/// directions have ended, `idle` passed without either able to move, or I/O failed. Returns
/// the bytes moved a → b and b → a.
pub async fn relay(a: &TcpStream, b: &TcpStream, size: usize, idle: Duration) -> io::Result<(u64, u64)> {
    tokio::try_join!(direction(a, b, size, idle), direction(b, a, size, idle))
}

async fn direction(from: &TcpStream, to: &TcpStream, size: usize, idle: Duration) -> io::Result<u64> {
    let mut buf = vec![0u8; size];
    let (mut start, mut end) = (0usize, 0usize);
    let mut moved = 0u64;
    let mut eof = false;
    loop {
        let mut progressed = false;
        if !eof && end < size {
            match from.try_read(&mut buf[end..]) {
                Ok(0) => eof = true,
                Ok(n) => {
                    end += n;
                    progressed = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        if start < end {
            match to.try_write(&buf[start..end]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    start += n;
                    moved += n as u64;
                    progressed = true;
                    if start == end {
                        (start, end) = (0, 0);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        if eof && start == end {
            rustix::net::shutdown(to, rustix::net::Shutdown::Write)?;
            return Ok(moved);
        }
        if progressed {
            tokio::task::coop::consume_budget().await;
        } else {
            let ready = async { if start == end { from.readable().await } else { to.writable().await } };
            tokio::time::timeout(idle, ready).await.map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        }
    }
}
