//! After login: copy bytes both ways until the session ends.
//!
//! Nothing is parsed here. Each direction has one fixed buffer, so a session costs the same
//! memory however much mail it moves; a slow reader slows its writer through TCP flow
//! control instead of growing a queue. When one side closes its sending half, the other
//! side's sending half is shut down too (half-close) and the opposite direction goes on until
//! it ends as well. The session ends when both directions are done, when either fails, or
//! when nothing has moved for the idle timeout.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
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
}

impl RelayEnd {
    /// A short word for the session summary.
    pub fn as_str(self) -> &'static str {
        match self {
            RelayEnd::ClientClosed => "client-closed",
            RelayEnd::StoreClosed => "store-closed",
            RelayEnd::IdleTimeout => "idle-timeout",
            RelayEnd::Error => "io-error",
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

/// Relays until the session ends. `client_pending` (bytes the client sent after its login)
/// goes to the store first; `store_pending` goes to the client first.
pub async fn relay<C, S>(
    client: C,
    client_pending: Vec<u8>,
    store: S,
    store_pending: Vec<u8>,
    idle: Duration,
) -> RelayStats
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let start = Instant::now();
    let last_activity = AtomicU64::new(0);
    let (up_bytes, down_bytes) = (AtomicU64::new(0), AtomicU64::new(0));
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut store_read, mut store_write) = tokio::io::split(store);
    let activity = Activity { start, last: &last_activity };
    let up = pump(&mut client_read, &mut store_write, client_pending, &up_bytes, activity);
    let down = pump(&mut store_read, &mut client_write, store_pending, &down_bytes, activity);
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    let mut first_closed = None;
    let end = loop {
        if up_done && down_done {
            break first_closed.unwrap_or(RelayEnd::ClientClosed);
        }
        let idle_deadline = start + Duration::from_millis(last_activity.load(Ordering::Relaxed)) + idle;
        tokio::select! {
            r = &mut up, if !up_done => {
                if r.is_err() {
                    break RelayEnd::Error;
                }
                up_done = true;
                first_closed.get_or_insert(RelayEnd::ClientClosed);
            },
            r = &mut down, if !down_done => {
                if r.is_err() {
                    break RelayEnd::Error;
                }
                down_done = true;
                first_closed.get_or_insert(RelayEnd::StoreClosed);
            },
            _ = tokio::time::sleep_until(idle_deadline) => {
                let since = Duration::from_millis(last_activity.load(Ordering::Relaxed));
                if start.elapsed() >= since + idle {
                    break RelayEnd::IdleTimeout;
                }
            }
        }
    };
    RelayStats {
        client_to_store: up_bytes.load(Ordering::Relaxed),
        store_to_client: down_bytes.load(Ordering::Relaxed),
        end,
    }
}

/// When anything last moved, in milliseconds since the relay started; shared by both
/// directions and read by the idle timer.
#[derive(Clone, Copy)]
struct Activity<'a> {
    start: Instant,
    last: &'a AtomicU64,
}

impl Activity<'_> {
    fn touch(&self) {
        self.last.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

/// Copies one direction, counting into `copied`, until the reader ends (`Ok`) or an I/O
/// error (`Err`).
async fn pump<R, W>(
    reader: &mut R,
    writer: &mut W,
    pending: Vec<u8>,
    copied: &AtomicU64,
    activity: Activity<'_>,
) -> Result<(), ()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if !pending.is_empty() {
        writer.write_all(&pending).await.map_err(drop)?;
        copied.fetch_add(pending.len() as u64, Ordering::Relaxed);
    }
    drop(pending);
    let mut buf = vec![0u8; BUFFER_SIZE];
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) => {
                let _ = writer.shutdown().await;
                return Ok(());
            }
            Ok(n) => n,
            Err(_) => return Err(()),
        };
        activity.touch();
        writer.write_all(&buf[..n]).await.map_err(drop)?;
        copied.fetch_add(n as u64, Ordering::Relaxed);
        activity.touch();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    #[tokio::test]
    async fn pending_bytes_first_then_both_ways_with_half_close() {
        let (client, mut client_peer) = duplex(1024);
        let (store, mut store_peer) = duplex(1024);
        let relay =
            tokio::spawn(relay(client, b"c-pending ".to_vec(), store, b"s-pending ".to_vec(), Duration::from_secs(5)));

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
            relay(client, Vec::new(), store, Vec::new(), Duration::from_millis(100)),
        )
        .await
        .expect("idle timeout fired");
        assert_eq!(stats.end, RelayEnd::IdleTimeout);
    }

    #[tokio::test]
    async fn store_closing_first_is_reported() {
        let (client, mut client_peer) = duplex(64);
        let (store, store_peer) = duplex(64);
        let relay = tokio::spawn(relay(client, Vec::new(), store, Vec::new(), Duration::from_secs(5)));
        drop(store_peer);
        let mut rest = Vec::new();
        client_peer.read_to_end(&mut rest).await.unwrap();
        client_peer.shutdown().await.unwrap();
        drop(client_peer);
        let stats = relay.await.unwrap();
        assert_eq!(stats.end, RelayEnd::StoreClosed);
    }
}
