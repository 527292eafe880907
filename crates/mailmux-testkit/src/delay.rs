//! A TCP relay that delays traffic: put it between mailmux and a server (e.g. slapd) to make
//! that server slow, and change the delay while the test runs.
//!
//! The relay listens on 127.0.0.1 (a free port) and, for each connection it accepts, connects
//! to the target and forwards bytes both ways. Each chunk it reads is written on
//! `delay` after it was read: the delay is latency added to every answer, not a sum over
//! chunks, and the byte stream (order, content, the closing of each direction) is kept.
//! A chunk waiting when the delay changes goes out by the new delay within about 20 ms, so
//! setting it to zero releases everything held back.
//!
//! The relay runs on a thread of its own, so it works from synchronous tests and from any
//! runtime, even while the test's thread is blocked (e.g. in `ldapsearch`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Which traffic the relay delays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Only the server's answers (the target → the client); requests pass at once.
    ServerToClient,
    /// Both ways.
    Both,
}

/// A running relay; dropping it closes the listener and every relayed connection.
#[derive(Debug)]
pub struct DelayRelay {
    /// Where clients connect instead of the target.
    pub addr: SocketAddr,
    /// Where the relay connects.
    pub target: SocketAddr,
    delay_ms: Arc<AtomicU64>,
    accepted: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl DelayRelay {
    /// Starts relaying to `target`, delaying `direction` by `delay`.
    pub fn start(target: SocketAddr, delay: Duration, direction: Direction) -> DelayRelay {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the delay relay");
        let addr = listener.local_addr().expect("delay relay address");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let delay_ms = Arc::new(AtomicU64::new(millis(delay)));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = oneshot::channel();
        let (delay, count) = (delay_ms.clone(), accepted.clone());
        let thread = std::thread::Builder::new()
            .name(format!("delay-relay-{addr}"))
            .spawn(move || {
                let runtime =
                    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("delay relay runtime");
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("tokio listener");
                    tokio::select! {
                        _ = stopped => {}
                        () = accept(listener, target, direction, delay, count) => {}
                    }
                });
                // Dropping the runtime cancels every connection task and closes its sockets.
            })
            .expect("start the delay relay thread");
        DelayRelay { addr, target, delay_ms, accepted, stop: Some(stop), thread: Some(thread) }
    }

    /// Changes the delay; chunks already waiting follow the new value.
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms.store(millis(delay), Ordering::Relaxed);
    }

    /// The current delay.
    pub fn delay(&self) -> Duration {
        Duration::from_millis(self.delay_ms.load(Ordering::Relaxed))
    }

    /// The delay in milliseconds, shared: a store changes it like [`DelayRelay::set_delay`].
    pub fn delay_handle(&self) -> Arc<AtomicU64> {
        self.delay_ms.clone()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for DelayRelay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

async fn accept(
    listener: TcpListener,
    target: SocketAddr,
    direction: Direction,
    delay: Arc<AtomicU64>,
    accepted: Arc<AtomicUsize>,
) {
    while let Ok((client, _)) = listener.accept().await {
        accepted.fetch_add(1, Ordering::Relaxed);
        let delay = delay.clone();
        tokio::spawn(async move {
            // A target that refuses: the client sees its connection closed.
            let Ok(server) = TcpStream::connect(target).await else { return };
            let _ = (client.set_nodelay(true), server.set_nodelay(true));
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            let requests_delay = (direction == Direction::Both).then(|| delay.clone());
            tokio::join!(pump(client_read, server_write, requests_delay), pump(server_read, client_write, Some(delay)));
        });
    }
}

/// Forwards one direction: a reader timestamps chunks, a writer sends each `delay` after its
/// timestamp (no delay with `None`); the end of the stream is forwarded the same way.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Option<Arc<AtomicU64>>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Option<Vec<u8>>)>();
    let reader = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = tx.send((Instant::now(), None));
                    return;
                }
                Ok(n) => {
                    if tx.send((Instant::now(), Some(buf[..n].to_vec()))).is_err() {
                        return;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((read_at, chunk)) = rx.recv().await {
            if let Some(delay) = &delay {
                // Re-read the delay while waiting, so a change applies to held chunks too.
                loop {
                    let due = read_at + Duration::from_millis(delay.load(Ordering::Relaxed));
                    let now = Instant::now();
                    if now >= due {
                        break;
                    }
                    tokio::time::sleep((due - now).min(Duration::from_millis(20))).await;
                }
            }
            match chunk {
                Some(bytes) => {
                    if to.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                None => {
                    let _ = to.shutdown().await;
                    return;
                }
            }
        }
    };
    tokio::join!(reader, writer);
}
