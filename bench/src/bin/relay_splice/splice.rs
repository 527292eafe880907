//! A plaintext relay that moves bytes with `splice(2)`: socket → pipe → socket, per direction,
//! so the bytes never enter user space (no copy into a buffer and out again).
//!
//! Each direction owns a pipe (two descriptors) for the whole session, as the simplest design
//! does; the README's section on splice discusses what pooling the pipes would need.
//!
//! Driven by tokio's readiness. The one subtle point is `EAGAIN` from socket → pipe: it means
//! either "the socket has nothing" or "the pipe has no free slot" (a pipe holds 16 page
//! references by default, and bytes spliced from TCP may fill a slot only partly, so a pipe
//! can be full with fewer bytes than its capacity). Only the first may clear the socket's
//! readiness, or a socket still holding bytes would never be woken again. So that splice goes
//! through `try_io` (which clears readiness on `EAGAIN`) only while the pipe is empty; with
//! bytes in the pipe it is called directly and the direction waits on the writer instead.

use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::net::Shutdown;
use rustix::pipe::{PipeFlags, SpliceFlags, fcntl_getpipe_size, fcntl_setpipe_size, pipe_with, splice};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// One direction's pipe.
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// Bytes it holds at most (`F_GETPIPE_SZ`).
    capacity: usize,
}

impl Pipe {
    /// A non-blocking pipe of the kernel's default size (64 KiB), or of `size` (`F_SETPIPE_SZ`).
    fn new(size: Option<usize>) -> io::Result<Pipe> {
        let (read, write) = pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC)?;
        let capacity = match size {
            Some(size) => fcntl_setpipe_size(&write, size)?,
            None => fcntl_getpipe_size(&write)?,
        };
        Ok(Pipe { read, write, capacity })
    }
}

/// Relays between `a` and `b` until both directions have ended (each side's half-close passed
/// on), `idle` passed without either direction able to move, or I/O failed. Returns the bytes
/// moved a → b and b → a.
pub async fn relay(a: &TcpStream, b: &TcpStream, pipe_size: Option<usize>, idle: Duration) -> io::Result<(u64, u64)> {
    let (forth, back) = (Pipe::new(pipe_size)?, Pipe::new(pipe_size)?);
    tokio::try_join!(direction(a, b, &forth, idle), direction(b, a, &back, idle))
}

/// Moves bytes `from` → `to` through `pipe` until `from` ends and the pipe is empty, then
/// half-closes `to`. Returns the bytes moved.
async fn direction(from: &TcpStream, to: &TcpStream, pipe: &Pipe, idle: Duration) -> io::Result<u64> {
    let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
    let mut in_pipe = 0usize;
    let mut moved = 0u64;
    let mut eof = false;
    loop {
        let mut progressed = false;
        if !eof && in_pipe < pipe.capacity {
            let room = pipe.capacity - in_pipe;
            let fill = || splice(from, None, &pipe.write, None, room, flags).map_err(io::Error::from);
            // Empty pipe: EAGAIN is the socket's, and tokio may clear its readiness.
            // Otherwise it may be the pipe's: the socket's readiness must stay.
            let filled = if in_pipe == 0 { from.try_io(Interest::READABLE, fill) } else { fill() };
            match filled {
                Ok(0) => eof = true,
                Ok(n) => {
                    in_pipe += n;
                    progressed = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        if in_pipe > 0 {
            // The pipe holds bytes, so EAGAIN here is the socket's.
            let drain = || splice(&pipe.read, None, to, None, in_pipe, flags).map_err(io::Error::from);
            match to.try_io(Interest::WRITABLE, drain) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    in_pipe -= n;
                    moved += n as u64;
                    progressed = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        if eof && in_pipe == 0 {
            rustix::net::shutdown(to, Shutdown::Write)?;
            return Ok(moved);
        }
        if progressed {
            // try_io spends none of tokio's cooperative budget: without this a busy direction
            // would hold the worker thread until its transfer ends, starving the other sessions.
            tokio::task::coop::consume_budget().await;
        } else {
            let ready = async { if in_pipe == 0 { from.readable().await } else { to.writable().await } };
            tokio::time::timeout(idle, ready).await.map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        }
    }
}
