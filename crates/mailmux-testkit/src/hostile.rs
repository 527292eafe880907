//! Servers that misbehave on purpose: stores and directories that accept a connection and
//! then say nothing, say nonsense, flood, or die at the worst moment.
//!
//! Each listens on 127.0.0.1, on a port of its own, and serves every connection it accepts
//! the same way until it is dropped. Point a user's `mailHost` at it (`127.0.0.1:PORT`), or
//! `LdapURL`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// How a hostile server treats each connection.
#[derive(Debug, Clone)]
pub enum Hostile {
    /// Accepts and never says a word (a hung store, a directory that never answers).
    Silent,
    /// Says these bytes, then reads and ignores everything.
    Says(Vec<u8>),
    /// Greets like an IMAP store, and answers the login after `noise` untagged lines with
    /// `answer` (e.g. `"NO [AUTHENTICATIONFAILED] no"`); `noise` of `usize::MAX` never stops.
    NoisyLogin {
        /// Untagged lines sent before the answer.
        noise: usize,
        /// The tagged answer's text after the tag.
        answer: &'static str,
    },
    /// Logs anyone in over IMAP, then closes the connection when the first command after
    /// the login arrives.
    DiesAfterLogin,
}

/// A running hostile server.
#[derive(Debug)]
pub struct HostileServer {
    /// Where it listens.
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    _tasks: JoinSet<()>,
}

impl HostileServer {
    /// Starts serving in the current runtime.
    pub async fn start(behavior: Hostile) -> HostileServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a hostile server");
        let addr = listener.local_addr().expect("hostile server address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let mut tasks = JoinSet::new();
        let counter = accepted.clone();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::Relaxed);
                connections.spawn(serve(stream, behavior.clone()));
            }
        });
        HostileServer { addr, accepted, _tasks: tasks }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
}

async fn serve(stream: TcpStream, behavior: Hostile) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    match behavior {
        Hostile::Silent => {}
        Hostile::Says(bytes) => {
            let _ = write.write_all(&bytes).await;
        }
        Hostile::NoisyLogin { noise, answer } => {
            let _ = write.write_all(b"* OK [CAPABILITY IMAP4rev1 LITERAL+] hostile store ready\r\n").await;
            let mut line = String::new();
            // The first command is the login (mailmux sends ID first only to stores that
            // advertise it).
            if read.read_line(&mut line).await.is_ok_and(|n| n > 0) {
                let tag = line.split(' ').next().unwrap_or("*").to_owned();
                let mut sent = 0;
                while sent < noise {
                    if write.write_all(b"* OK [ALERT] noise noise noise noise noise noise\r\n").await.is_err() {
                        return;
                    }
                    sent += 1;
                }
                let _ = write.write_all(format!("{tag} {answer}\r\n").as_bytes()).await;
            }
        }
        Hostile::DiesAfterLogin => {
            let _ = write.write_all(b"* OK [CAPABILITY IMAP4rev1] hostile store ready\r\n").await;
            let mut line = String::new();
            if read.read_line(&mut line).await.is_ok_and(|n| n > 0) {
                let tag = line.split(' ').next().unwrap_or("*").to_owned();
                let _ = write.write_all(format!("{tag} OK [CAPABILITY IMAP4rev1] Logged in\r\n").as_bytes()).await;
                line.clear();
                let _ = read.read_line(&mut line).await;
                // Dies: the connection drops here, mid-session.
                return;
            }
        }
    }
    // Hold the connection open, reading and ignoring, until the peer goes.
    let mut sink = [0u8; 4096];
    while matches!(read.read(&mut sink).await, Ok(n) if n > 0) {}
}
