//! After login: copy bytes both ways until the session ends.
//!
//! Nothing is parsed here. A session owns no buffer: each read goes into a 64 KiB scratch
//! buffer the worker thread lends ([`READ`]) and is written straight out; only what the
//! writer does not take at once is kept on the heap, and given back when the direction is
//! idle again. So an idle session costs its two streams and little more. A slow client may
//! fall behind its store by its [`Lag`] allowance (`SlowClientBuffer`), taken from a budget
//! the whole process shares (`SlowClientBufferTotal`), so the store finishes and moves on;
//! past that, and toward stores, a slow reader slows its writer through TCP flow control
//! instead of growing a queue. When one side closes its sending half, the other
//! side's sending half is shut down too (half-close) and the opposite direction goes on until
//! it ends as well. The session ends when both directions are done, when either fails, or
//! when nothing has moved for the idle timeout.
//!
//! Both directions and the idle timer are polled by one future, without splitting the
//! streams, so nothing is locked per read or write:
//!
//! ```text
//!            ┌─────────── up: client ─▶ store ───────────┐
//! client ◀──▶│  read ─▶ buffer ─▶ write ─▶ (read would     │◀──▶ store
//!            │                             block) flush    │
//!            └─────────── down: store ─▶ client ─────────┘
//! ```
//!
//! **Flush before waiting.** A TLS writer (tokio-rustls) accepts plaintext into its record
//! buffer even when the socket under it would block, and reports it written. If the relay
//! then went back to waiting on a reader that has nothing more to say — the store finished
//! its response, the client waits for an answer — those last records would sit in the buffer
//! for ever. So whenever a direction's reader would block after something was written, the
//! writer is flushed (for plain TCP that is free). Flushing after every write instead would
//! cost a flush per read on a busy stream for nothing.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Bytes read at a time while the writer keeps up, into a buffer each worker thread lends to
/// whichever session is moving bytes: a session owns no buffer while it is idle. 64 KiB
/// rather than 16 costs a third less CPU per GiB relayed (fewer reads and writes; `bench/`'s
/// relay figures); it is also what one direction may keep on the heap, unbudgeted, when its
/// writer stops taking bytes in the middle of a read.
pub const READ: usize = 64 * 1024;

/// The unit in which a lagging direction reads ahead, and takes from the [`LagBudget`].
pub const CHUNK: usize = 16 * 1024;

thread_local! {
    static SCRATCH: std::cell::RefCell<Box<[u8]>> = std::cell::RefCell::new(vec![0; READ].into_boxed_slice());
}

/// Memory the relays of the whole process may hold for clients that read slower than their
/// stores write (`SlowClientBufferTotal`). Lives in the server, outside configuration
/// generations. When it is spent, slow clients get TCP flow control, as without it.
#[derive(Debug)]
pub struct LagBudget {
    limit: AtomicUsize,
    used: AtomicUsize,
}

impl LagBudget {
    /// A budget of `limit` bytes.
    pub const fn new(limit: usize) -> LagBudget {
        LagBudget { limit: AtomicUsize::new(limit), used: AtomicUsize::new(0) }
    }

    /// A reload's new limit; bytes held beyond it are given back as their clients catch up.
    pub fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// Bytes held now, by every session.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn try_take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |used| {
                used.checked_add(n).filter(|&u| u <= self.limit.load(Ordering::Relaxed))
            })
            .is_ok()
    }

    fn give_back(&self, n: usize) {
        if n > 0 {
            self.used.fetch_sub(n, Ordering::AcqRel);
        }
    }
}

/// How far the store-to-client direction of one session may read ahead of its client
/// (`SlowClientBuffer`), so a slow client does not hold its store for as long as it reads.
#[derive(Debug, Clone, Copy)]
pub struct Lag<'a> {
    /// Bytes one session may hold (at least one [`READ`]).
    pub per_session: usize,
    /// The process's budget.
    pub budget: &'a LagBudget,
}

/// How the relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayEnd {
    /// Both sides closed; the client closed first.
    ClientClosed,
    /// Both sides closed; the store closed first.
    StoreClosed,
    /// Nothing moved for the idle timeout.
    IdleTimeout,
    /// A read or write failed (connection reset, broken pipe).
    Error,
    /// The administrator ended the session (`mailmux admin kick`).
    Kicked,
    /// The server was stopping and the session was still going at the drain deadline
    /// (`ShutdownTimeout`). The relay itself reports [`RelayEnd::Kicked`]; the session knows why.
    DrainDeadline,
}

impl RelayEnd {
    /// A short word for the session summary.
    pub fn as_str(self) -> &'static str {
        match self {
            RelayEnd::ClientClosed => "client-closed",
            RelayEnd::StoreClosed => "store-closed",
            RelayEnd::IdleTimeout => "idle-timeout",
            RelayEnd::Error => "io-error",
            RelayEnd::Kicked => "kicked",
            RelayEnd::DrainDeadline => "drain-deadline",
        }
    }
}

/// What the relay did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayStats {
    /// Bytes from the client to the store (pending bytes included).
    pub client_to_store: u64,
    /// Bytes from the store to the client (pending bytes included).
    pub store_to_client: u64,
    /// Why it stopped.
    pub end: RelayEnd,
}

/// Which way bytes moved, for [`Tally`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to store.
    Up,
    /// Store to client.
    Down,
}

/// Told of every chunk written, as it is written (live byte counters: the session's, the
/// server's metrics).
pub type Tally<'a> = &'a (dyn Fn(Direction, u64) + Sync);

/// Relays until the session ends. `client_pending` (bytes the client sent after its login)
/// goes to the store first; `store_pending` goes to the client first. `lag`: how far the
/// store may get ahead of a slow client (`None`: one chunk, then TCP flow control). `tally`
/// hears of every chunk written; `kick` ends the relay ([`RelayEnd::Kicked`]) when it resolves.
#[allow(clippy::too_many_arguments)]
pub async fn relay<C, S>(
    mut client: C,
    client_pending: Vec<u8>,
    mut store: S,
    store_pending: Vec<u8>,
    idle: Duration,
    lag: Option<Lag<'_>>,
    tally: Tally<'_>,
    kick: impl std::future::Future<Output = ()>,
) -> RelayStats
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut up = Pump::new(client_pending, None);
    let mut down = Pump::new(store_pending, lag);
    let mut first_closed = None;
    let mut last_activity = Instant::now();
    let timer = tokio::time::sleep(idle);
    tokio::pin!(timer);
    tokio::pin!(kick);
    // Which direction is polled first alternates, so one that always has data (a long
    // upload) cannot starve the other.
    let mut up_first = true;
    let end = poll_fn(|cx| {
        if kick.as_mut().poll(cx).is_ready() {
            return Poll::Ready(RelayEnd::Kicked);
        }
        let mut moved = false;
        up_first = !up_first;
        for up_turn in [up_first, !up_first] {
            let (pump, reader, writer, closed): (_, &mut (dyn AsyncRead + Unpin), &mut (dyn AsyncWrite + Unpin), _) =
                if up_turn {
                    (&mut up, &mut client, &mut store, RelayEnd::ClientClosed)
                } else {
                    (&mut down, &mut store, &mut client, RelayEnd::StoreClosed)
                };
            let direction = if up_turn { Direction::Up } else { Direction::Down };
            match pump.poll(cx, Pin::new(reader), Pin::new(writer), &mut moved, &|n| tally(direction, n)) {
                Poll::Ready(Ok(())) => {
                    first_closed.get_or_insert(closed);
                }
                // Once one side has closed, the other failing on its way out (a reset after
                // the client's full close, say) is part of the close, not an error.
                Poll::Ready(Err(_)) => return Poll::Ready(first_closed.unwrap_or(RelayEnd::Error)),
                Poll::Pending => {}
            }
        }
        if up.done && down.done {
            return Poll::Ready(first_closed.unwrap_or(RelayEnd::ClientClosed));
        }
        if moved {
            last_activity = Instant::now();
        }
        // The timer is armed for the first idle deadline and only re-armed when it fires
        // early, not on every chunk.
        while timer.as_mut().poll(cx).is_ready() {
            let deadline = last_activity + idle;
            if Instant::now() >= deadline {
                return Poll::Ready(RelayEnd::IdleTimeout);
            }
            timer.as_mut().reset(deadline);
        }
        Poll::Pending
    })
    .await;
    RelayStats { client_to_store: up.copied, store_to_client: down.copied, end }
}

/// One direction: reads into the worker's scratch buffer, writes it straight out, and
/// keeps on the heap only what the writer did not take (up to its [`Lag`] allowance).
struct Pump<'a> {
    /// Read and not yet written: `backlog[start..]`. No heap while the writer keeps up.
    backlog: Vec<u8>,
    start: usize,
    /// How far this direction may read ahead of a slow writer, and from which budget.
    lag: Option<Lag<'a>>,
    /// Bytes of `lag`'s budget this pump holds.
    reserved: usize,
    /// Something was written since the last flush: a TLS writer may still hold it.
    unflushed: bool,
    /// The reader reached its end; what is left is writing out, then the half-close.
    eof: bool,
    /// The half-close was sent: this direction is over.
    done: bool,
    /// Bytes written.
    copied: u64,
}

impl<'a> Pump<'a> {
    fn new(pending: Vec<u8>, lag: Option<Lag<'a>>) -> Pump<'a> {
        Pump { backlog: pending, start: 0, lag, reserved: 0, unflushed: false, eof: false, done: false, copied: 0 }
    }

    fn held(&self) -> usize {
        self.backlog.len() - self.start
    }

    /// How much may be read while the writer cannot take more: one read is every pump's
    /// right (the fixed buffer of a plain proxy); more only within the session's allowance,
    /// taken from the process's budget a chunk at a time. 0: wait for the writer.
    fn room_while_blocked(&mut self) -> usize {
        let held = self.held();
        let mut allowed = READ + self.reserved;
        if held >= allowed {
            let Some(lag) = self.lag else { return 0 };
            if allowed + CHUNK > lag.per_session.max(READ) || !lag.budget.try_take(CHUNK) {
                return 0;
            }
            self.reserved += CHUNK;
            allowed += CHUNK;
        }
        allowed.saturating_sub(held).min(CHUNK)
    }

    /// The backlog is empty: its heap goes back (when `idle`, or when it grew past two
    /// reads), and so does the budget it held.
    fn drained(&mut self, idle: bool) {
        self.backlog.clear();
        self.start = 0;
        if idle || self.backlog.capacity() > 2 * READ {
            self.backlog = Vec::new();
        }
        if let Some(lag) = self.lag
            && self.reserved > 0
        {
            lag.budget.give_back(self.reserved);
            self.reserved = 0;
        }
    }

    /// Moves bytes until the reader would block (`Pending`, after flushing the writer), the
    /// direction is over (`Ready(Ok)`), or I/O fails. Sets `moved` when any byte moved.
    fn poll(
        &mut self,
        cx: &mut Context<'_>,
        mut reader: Pin<&mut (dyn AsyncRead + Unpin)>,
        mut writer: Pin<&mut (dyn AsyncWrite + Unpin)>,
        moved: &mut bool,
        tally: &dyn Fn(u64),
    ) -> Poll<io::Result<()>> {
        if self.done {
            return Poll::Pending;
        }
        loop {
            let mut writer_blocked = false;
            while self.start < self.backlog.len() {
                match writer.as_mut().poll_write(cx, &self.backlog[self.start..]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => {
                        self.start += n;
                        self.copied += n as u64;
                        tally(n as u64);
                        self.unflushed = true;
                        *moved = true;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {
                        writer_blocked = true;
                        break;
                    }
                }
            }
            if !writer_blocked && self.start > 0 {
                self.drained(false);
            }
            if self.eof {
                if writer_blocked {
                    return Poll::Pending;
                }
                // Shutting down flushes first. A peer that is already gone cannot take the
                // half-close; the other direction still decides how the session ends.
                let _ = ready!(writer.as_mut().poll_shutdown(cx));
                self.done = true;
                return Poll::Ready(Ok(()));
            }
            let room = if writer_blocked { self.room_while_blocked() } else { READ };
            if room == 0 {
                // The writer's waker is registered: it calls when the client reads again.
                return Poll::Pending;
            }
            let read = SCRATCH.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                let mut buf = ReadBuf::new(&mut scratch[..room]);
                ready!(reader.as_mut().poll_read(cx, &mut buf))?;
                let n = buf.filled().len();
                if n == 0 {
                    return Poll::Ready(Ok(0));
                }
                *moved = true;
                let mut written = 0;
                if !writer_blocked {
                    // The common case: straight from the scratch buffer to the writer.
                    while written < n {
                        match writer.as_mut().poll_write(cx, &scratch[written..n]) {
                            Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                            Poll::Ready(Ok(k)) => {
                                written += k;
                                self.copied += k as u64;
                                tally(k as u64);
                                self.unflushed = true;
                            }
                            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                            Poll::Pending => break,
                        }
                    }
                }
                if written < n {
                    if self.start > 0 && self.start >= self.backlog.len() / 2 {
                        self.backlog.drain(..self.start);
                        self.start = 0;
                    }
                    self.backlog.extend_from_slice(&scratch[written..n]);
                }
                Poll::Ready(Ok(n))
            });
            match read {
                Poll::Pending => {
                    if self.unflushed {
                        ready!(writer.as_mut().poll_flush(cx))?;
                        self.unflushed = false;
                    }
                    if self.held() == 0 {
                        self.drained(true);
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(0)) => self.eof = true,
                Poll::Ready(Ok(_)) => {}
            }
        }
    }
}

impl Drop for Pump<'_> {
    fn drop(&mut self) {
        if let Some(lag) = self.lag {
            lag.budget.give_back(self.reserved);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailmux_testkit::pki::Ca;
    use rustls::pki_types::ServerName;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

    const NO_TALLY: fn(Direction, u64) = |_, _| {};

    /// A relay with nothing pending, no slow-client allowance, no tally and no kick.
    async fn plain_relay<C, S>(client: C, store: S, idle: Duration) -> RelayStats
    where
        C: AsyncRead + AsyncWrite + Unpin,
        S: AsyncRead + AsyncWrite + Unpin,
    {
        relay(client, Vec::new(), store, Vec::new(), idle, None, &NO_TALLY, never()).await
    }

    fn never() -> std::future::Pending<()> {
        std::future::pending()
    }

    #[tokio::test]
    async fn tallies_are_live_and_a_kick_ends_the_relay() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let (client, mut client_peer) = duplex(1024);
        let (store, mut store_peer) = duplex(1024);
        let (up, down) = (std::sync::Arc::new(AtomicU64::new(0)), std::sync::Arc::new(AtomicU64::new(0)));
        let kick = tokio_util::sync::CancellationToken::new();
        let relay = {
            let (up, down, kick) = (up.clone(), down.clone(), kick.clone());
            tokio::spawn(async move {
                let tally = move |d: Direction, n: u64| {
                    match d {
                        Direction::Up => &up,
                        Direction::Down => &down,
                    }
                    .fetch_add(n, Ordering::Relaxed);
                };
                relay(
                    client,
                    Vec::new(),
                    store,
                    b"hi".to_vec(),
                    Duration::from_secs(30),
                    None,
                    &tally,
                    kick.cancelled_owned(),
                )
                .await
            })
        };
        client_peer.write_all(b"a NOOP\r\n").await.unwrap();
        let mut got = [0u8; 8];
        store_peer.read_exact(&mut got).await.unwrap();
        client_peer.read_exact(&mut [0u8; 2]).await.unwrap();
        assert_eq!((up.load(Ordering::Relaxed), down.load(Ordering::Relaxed)), (8, 2), "counted while relaying");
        kick.cancel();
        let stats = tokio::time::timeout(Duration::from_secs(5), relay).await.expect("kicked").unwrap();
        assert_eq!(stats.end, RelayEnd::Kicked);
        assert_eq!(stats.client_to_store, 8);
    }

    #[tokio::test]
    async fn pending_bytes_first_then_both_ways_with_half_close() {
        let (client, mut client_peer) = duplex(1024);
        let (store, mut store_peer) = duplex(1024);
        let relay = tokio::spawn(relay(
            client,
            b"c-pending ".to_vec(),
            store,
            b"s-pending ".to_vec(),
            Duration::from_secs(5),
            None,
            &NO_TALLY,
            never(),
        ));

        client_peer.write_all(b"hello store").await.unwrap();
        client_peer.shutdown().await.unwrap();
        let mut got = vec![0u8; 21];
        store_peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"c-pending hello store");
        // The client's half-close reached the store…
        assert_eq!(store_peer.read(&mut [0u8; 8]).await.unwrap(), 0);
        // …and the store can still answer.
        store_peer.write_all(b"bye").await.unwrap();
        drop(store_peer);
        let mut back = Vec::new();
        client_peer.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"s-pending bye");

        let stats = relay.await.unwrap();
        assert_eq!(stats.client_to_store, 21);
        assert_eq!(stats.store_to_client, 13);
        assert_eq!(stats.end, RelayEnd::ClientClosed);
    }

    #[tokio::test]
    async fn idle_sessions_end() {
        let (client, _client_peer) = duplex(64);
        let (store, _store_peer) = duplex(64);
        let stats =
            tokio::time::timeout(Duration::from_secs(5), plain_relay(client, store, Duration::from_millis(100)))
                .await
                .expect("idle timeout fired");
        assert_eq!(stats.end, RelayEnd::IdleTimeout);
    }

    #[tokio::test]
    async fn store_closing_first_is_reported() {
        let (client, mut client_peer) = duplex(64);
        let (store, store_peer) = duplex(64);
        let relay = tokio::spawn(plain_relay(client, store, Duration::from_secs(5)));
        drop(store_peer);
        let mut rest = Vec::new();
        client_peer.read_to_end(&mut rest).await.unwrap();
        client_peer.shutdown().await.unwrap();
        drop(client_peer);
        let stats = relay.await.unwrap();
        assert_eq!(stats.end, RelayEnd::StoreClosed);
    }

    /// Both ends of a TLS connection over an in-memory pipe of `capacity` bytes each way,
    /// with certificates from a throwaway CA: (server side, client side).
    async fn tls_pipe(
        capacity: usize,
    ) -> (tokio_rustls::server::TlsStream<DuplexStream>, tokio_rustls::client::TlsStream<DuplexStream>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = Ca::new(dir.path(), "relay-test-ca");
        let cert = ca.server("server", &["127.0.0.1"]);
        let settings = mailmux_config::ServerTls {
            cert_file: cert.cert.clone(),
            key_file: cert.key.clone(),
            implicit_ports: Vec::new(),
            cipher_suites: Vec::new(),
            client_ca_file: None,
            crl_file: None,
        };
        let (config, _) = crate::tls::server_config(&settings).expect("server config");
        let connector = mailmux_testkit::transcript::tls_connector(&ca.cert, None);
        let (a, b) = duplex(capacity);
        let name = ServerName::from(std::net::IpAddr::from([127, 0, 0, 1]));
        let (server, client) = tokio::join!(crate::tls::acceptor(&config).accept(a), connector.connect(name, b));
        (server.expect("server handshake"), client.expect("client handshake"))
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    /// Reads `len` bytes, failing if they do not all arrive within 10 s.
    async fn read_all_within(peer: &mut (impl AsyncRead + Unpin), len: usize) -> Vec<u8> {
        let mut got = vec![0u8; len];
        let mut filled = 0;
        while filled < len {
            match tokio::time::timeout(Duration::from_secs(10), peer.read(&mut got[filled..])).await {
                Ok(Ok(0)) => panic!("closed after {filled} of {len} bytes"),
                Ok(Ok(n)) => filled += n,
                Ok(Err(e)) => panic!("read failed after {filled} of {len} bytes: {e}"),
                Err(_) => panic!("stalled after {filled} of {len} bytes: the relay holds the rest"),
            }
        }
        got
    }

    /// A large response toward a TLS client whose pipe is full when the store finishes: the
    /// records the TLS writer still holds must reach the client although the store, still
    /// connected, sends nothing more.
    #[tokio::test]
    async fn tls_client_gets_every_byte_while_the_store_waits() {
        let (client, mut client_peer) = tls_pipe(1024).await;
        let (store, mut store_peer) = duplex(64 * 1024);
        let relay = tokio::spawn(plain_relay(client, store, Duration::from_secs(30)));
        let response = pattern(1024 * 1024 + 17);
        let writer = {
            let response = response.clone();
            tokio::spawn(async move {
                store_peer.write_all(&response).await.unwrap();
                store_peer
            })
        };
        // The client reads only once the relay has filled the pipe and waits on the writer.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let got = read_all_within(&mut client_peer, response.len()).await;
        assert!(got == response, "bytes changed on the way");
        drop(writer.await.unwrap());
        // The store's close reaches the TLS client as a half-close; then the client closes.
        assert_eq!(client_peer.read(&mut [0u8; 8]).await.unwrap(), 0);
        client_peer.shutdown().await.unwrap();
        let stats = relay.await.unwrap();
        assert_eq!(stats.store_to_client, response.len() as u64);
        assert_eq!(stats.end, RelayEnd::StoreClosed);
    }

    /// The same toward a TLS store: a client's large upload (APPEND) must reach the store
    /// whole while the client waits for the answer.
    #[tokio::test]
    async fn tls_store_gets_every_byte_while_the_client_waits() {
        let (mut store_peer, store) = tls_pipe(1024).await;
        let (client, mut client_peer) = duplex(64 * 1024);
        let relay = tokio::spawn(relay(
            client,
            b"a APPEND ".to_vec(),
            store,
            Vec::new(),
            Duration::from_secs(30),
            None,
            &NO_TALLY,
            never(),
        ));
        let upload = pattern(512 * 1024 + 5);
        let writer = {
            let upload = upload.clone();
            tokio::spawn(async move {
                client_peer.write_all(&upload).await.unwrap();
                client_peer
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let got = read_all_within(&mut store_peer, upload.len() + 9).await;
        assert!(got[..9] == *b"a APPEND " && got[9..] == upload[..], "bytes changed on the way");
        let mut client_peer = writer.await.unwrap();
        store_peer.write_all(b"a OK done\r\n").await.unwrap();
        store_peer.flush().await.unwrap();
        assert_eq!(read_all_within(&mut client_peer, 11).await, b"a OK done\r\n");
        drop(client_peer);
        assert_eq!(store_peer.read(&mut [0u8; 8]).await.unwrap(), 0, "the client's close reaches the store");
        store_peer.shutdown().await.unwrap();
        let stats = relay.await.unwrap();
        assert_eq!(stats.client_to_store, upload.len() as u64 + 9);
        assert_eq!(stats.end, RelayEnd::ClientClosed);
    }

    /// A direction that has moved its bytes and waits on its reader owns no heap: the chunk
    /// it read went straight from the worker's scratch buffer to the writer.
    #[tokio::test]
    async fn an_idle_direction_holds_no_heap() {
        let (mut source_peer, mut source) = duplex(64 * 1024);
        let (mut sink, mut sink_peer) = duplex(64 * 1024);
        let mut pump = Pump::new(b"pending ".to_vec(), None);
        let data = pattern(40_000);
        source_peer.write_all(&data).await.unwrap();
        let mut moved = false;
        let polled =
            poll_fn(|cx| Poll::Ready(pump.poll(cx, Pin::new(&mut source), Pin::new(&mut sink), &mut moved, &|_| {})))
                .await;
        assert!(polled.is_pending() && moved);
        assert_eq!((pump.backlog.capacity(), pump.copied), (0, 40_008));
        let got = read_all_within(&mut sink_peer, 40_008).await;
        assert!(got[..8] == *b"pending " && got[8..] == data[..]);
    }

    /// Feeds `len` bytes from a store into a relay whose client reads nothing for a while:
    /// whether the store got rid of them all within `patience`, then what the client read.
    async fn store_ahead_of_a_stalled_client(len: usize, lag: Lag<'_>, patience: Duration) -> (bool, Vec<u8>) {
        let (client, mut client_peer) = duplex(1024);
        let (store, mut store_peer) = duplex(16 * 1024);
        let data = pattern(len);
        let relaying =
            relay(client, Vec::new(), store, Vec::new(), Duration::from_secs(30), Some(lag), &NO_TALLY, never());
        let test = async {
            let mut written = 0;
            let finished = tokio::time::timeout(patience, async {
                while written < len {
                    written += store_peer.write(&data[written..]).await.unwrap();
                }
            })
            .await
            .is_ok();
            let (_, got) = tokio::join!(store_peer.write_all(&data[written..]), read_all_within(&mut client_peer, len));
            drop(store_peer);
            client_peer.shutdown().await.unwrap();
            drop(client_peer);
            (finished, got)
        };
        let (stats, (finished, got)) = tokio::join!(relaying, test);
        assert_eq!(stats.store_to_client, len as u64);
        assert!(got == data, "bytes changed on the way");
        (finished, got)
    }

    #[tokio::test]
    async fn a_slow_client_lets_its_store_finish_within_the_allowance() {
        static BUDGET: LagBudget = LagBudget::new(1 << 20);
        let lag = Lag { per_session: 256 * 1024, budget: &BUDGET };
        let (finished, _) = store_ahead_of_a_stalled_client(250 * 1024, lag, Duration::from_secs(2)).await;
        assert!(finished, "the store had to wait for the client");
        assert_eq!(BUDGET.used(), 0, "the budget is returned once the client has caught up");
    }

    #[tokio::test]
    async fn beyond_the_allowance_or_the_budget_the_store_waits() {
        static EMPTY: LagBudget = LagBudget::new(0);
        let lag = Lag { per_session: 256 * 1024, budget: &EMPTY };
        let (finished, _) = store_ahead_of_a_stalled_client(250 * 1024, lag, Duration::from_millis(300)).await;
        assert!(!finished, "no budget: flow control, as without the allowance");
        static PLENTY: LagBudget = LagBudget::new(64 << 20);
        let lag = Lag { per_session: 64 * 1024, budget: &PLENTY };
        let (finished, _) = store_ahead_of_a_stalled_client(400 * 1024, lag, Duration::from_millis(300)).await;
        assert!(!finished, "a session holds no more than its allowance");
        assert_eq!(PLENTY.used(), 0);
    }
}
