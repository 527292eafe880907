//! After login: copy bytes both ways until the session ends.
//!
//! Nothing is parsed here. Each direction has one fixed buffer, so a session costs the same
//! memory however much mail it moves; a slow reader slows its writer through TCP flow
//! control instead of growing a queue. When one side closes its sending half, the other
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
//! cost a flush per 16 KiB chunk on a busy stream for nothing.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Bytes buffered per direction.
pub const BUFFER_SIZE: usize = 16 * 1024;

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
/// goes to the store first; `store_pending` goes to the client first. `tally` hears of every
/// chunk written; `kick` ends the relay ([`RelayEnd::Kicked`]) when it resolves.
#[allow(clippy::too_many_arguments)]
pub async fn relay<C, S>(
    mut client: C,
    client_pending: Vec<u8>,
    mut store: S,
    store_pending: Vec<u8>,
    idle: Duration,
    tally: Tally<'_>,
    kick: impl std::future::Future<Output = ()>,
) -> RelayStats
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut up = Pump::new(client_pending);
    let mut down = Pump::new(store_pending);
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

/// One direction: reads into its buffer, writes the buffer out, flushes before waiting.
struct Pump {
    /// Starts out holding the pending bytes (if any), then reused for every read.
    buf: Box<[u8]>,
    /// `buf[pos..end]` has been read and not yet written.
    pos: usize,
    end: usize,
    /// Something was written since the last flush: a TLS writer may still hold it.
    unflushed: bool,
    /// The reader reached its end; what is left is writing out, then the half-close.
    eof: bool,
    /// The half-close was sent: this direction is over.
    done: bool,
    /// Bytes written.
    copied: u64,
}

impl Pump {
    fn new(pending: Vec<u8>) -> Pump {
        let end = pending.len();
        let mut buf = pending;
        if buf.len() < BUFFER_SIZE {
            buf.resize(BUFFER_SIZE, 0);
        }
        Pump { buf: buf.into_boxed_slice(), pos: 0, end, unflushed: false, eof: false, done: false, copied: 0 }
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
            while self.pos < self.end {
                let n = ready!(writer.as_mut().poll_write(cx, &self.buf[self.pos..self.end]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.pos += n;
                self.copied += n as u64;
                tally(n as u64);
                self.unflushed = true;
                *moved = true;
            }
            if self.buf.len() > BUFFER_SIZE {
                // Pending bytes larger than a buffer are out: back to the usual size.
                self.buf = vec![0u8; BUFFER_SIZE].into_boxed_slice();
            }
            if self.eof {
                // Shutting down flushes first. A peer that is already gone cannot take the
                // half-close; the other direction still decides how the session ends.
                let _ = ready!(writer.as_mut().poll_shutdown(cx));
                self.done = true;
                return Poll::Ready(Ok(()));
            }
            let mut read = ReadBuf::new(&mut self.buf);
            match reader.as_mut().poll_read(cx, &mut read) {
                Poll::Pending => {
                    if self.unflushed {
                        ready!(writer.as_mut().poll_flush(cx))?;
                        self.unflushed = false;
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    let n = read.filled().len();
                    self.pos = 0;
                    self.end = n;
                    if n == 0 {
                        self.eof = true;
                    } else {
                        *moved = true;
                    }
                }
            }
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
        let stats = tokio::time::timeout(
            Duration::from_secs(5),
            relay(client, Vec::new(), store, Vec::new(), Duration::from_millis(100), &NO_TALLY, never()),
        )
        .await
        .expect("idle timeout fired");
        assert_eq!(stats.end, RelayEnd::IdleTimeout);
    }

    #[tokio::test]
    async fn store_closing_first_is_reported() {
        let (client, mut client_peer) = duplex(64);
        let (store, store_peer) = duplex(64);
        let relay =
            tokio::spawn(relay(client, Vec::new(), store, Vec::new(), Duration::from_secs(5), &NO_TALLY, never()));
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
        let relay =
            tokio::spawn(relay(client, Vec::new(), store, Vec::new(), Duration::from_secs(30), &NO_TALLY, never()));
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
}
