//! Accepting connections: a deep accept queue, a session permit taken before the task is
//! spawned (so the number of tasks is bounded too), back-off on accept errors, one task each.
//! Everything else about admission happens in the session's own task ([`session::serve`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mailmux_config::Protocol;
use mailmux_proto::imap::front::ImapFront;
use mailmux_proto::pop3::front::Pop3Front;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::{self, Edge};
use crate::outcome::Refusal;
use crate::server::Role;
use crate::session;

/// Connections the kernel may queue before mailmux accepts them (capped by
/// `net.core.somaxconn`). The default of Rust's and tokio's `bind`, 128, overflows when a few
/// hundred clients reconnect at once (after a restart, say): Linux then drops the handshake's
/// last ACK and the client waits for SYN-ACK retransmissions — 1, 3, 7, 15 seconds.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds a listening socket with address reuse and a deep accept queue.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Everything one listener's accept loop needs.
#[derive(Debug)]
pub struct Acceptor {
    /// The bound socket.
    pub listener: TcpListener,
    /// What it serves: read at each connection, so a reload takes effect from the next one.
    pub role: watch::Receiver<Role>,
    /// Session budgets, shared by all listeners.
    pub edge: Arc<Edge>,
    /// Store health, shared by all sessions.
    pub stores: Arc<crate::store::health::StoreHealth>,
    /// The server's metrics.
    pub metrics: Arc<crate::control::metrics::Metrics>,
    /// The relayed sessions.
    pub registry: Arc<crate::control::sessions::SessionRegistry>,
    /// Where session tasks are tracked for the drain.
    pub sessions: TaskTracker,
    /// Server shutdown (passed on to sessions).
    pub shutdown: CancellationToken,
    /// Stops this listener (shutdown, or a reload that removes it).
    pub stop: CancellationToken,
    /// Session id counter.
    pub ids: Arc<AtomicU64>,
}

/// Accepts until shutdown. Accept errors (out of descriptors, mostly) are logged and
/// retried after a pause that doubles up to a second, instead of spinning.
pub async fn accept_loop(a: Acceptor) {
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            _ = a.stop.cancelled() => return,
            accepted = a.listener.accept() => accepted,
        };
        let Role { service, implicit_tls } = a.role.borrow().clone();
        if accepted.is_ok() {
            a.metrics.connection(service.config.protocol);
        }
        let (stream, peer) = match accepted {
            // IPv4 clients of a dual-stack listener arrive as ::ffff:a.b.c.d: counted, logged
            // and passed on to stores as the IPv4 addresses they are.
            Ok((stream, peer)) => {
                let pair = (stream, SocketAddr::new(peer.ip().to_canonical(), peer.port()));
                backoff = Duration::from_millis(5);
                pair
            }
            Err(e) if out_of_resources(&e) => {
                tracing::error!(target: crate::log_severity::CRITICAL, error = %e, "cannot accept connections; pausing {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed; pausing {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Ok(permit) = a.edge.sessions.clone().try_acquire_owned() else {
            a.metrics.refused(service.config.protocol, Refusal::SessionLimit);
            if a.edge.log_refusal(Refusal::SessionLimit) {
                tracing::warn!(client = %peer, limit = a.edge.session_limit, "session limit reached; connection refused");
            }
            if !implicit_tls {
                let _ = stream.try_write(access::refusal_text(service.config.protocol, Refusal::SessionLimit));
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().unwrap_or_else(|_| a.listener.local_addr().unwrap_or(peer));
        let local = SocketAddr::new(local.ip().to_canonical(), local.port());
        let id = a.ids.fetch_add(1, Ordering::Relaxed);
        let protocol = service.config.protocol;
        let accepted = session::Accepted {
            id,
            tcp: stream,
            peer,
            local,
            implicit_tls,
            service,
            edge: a.edge.clone(),
            stores: a.stores.clone(),
            metrics: a.metrics.clone(),
            registry: a.registry.clone(),
            tasks: a.sessions.clone(),
            shutdown: a.shutdown.clone(),
        };
        a.sessions.spawn(async move {
            match protocol {
                Protocol::Imap => session::serve::<ImapFront>(accepted, permit).await,
                Protocol::Pop3 => session::serve::<Pop3Front>(accepted, permit).await,
            }
        });
    }
}

/// Whether an accept error means the listener cannot take connections until something is
/// freed (descriptors, memory): critical, unlike a connection reset before it was accepted.
fn out_of_resources(e: &std::io::Error) -> bool {
    use rustix::io::Errno;
    Errno::from_io_error(e)
        .is_some_and(|errno| [Errno::MFILE, Errno::NFILE, Errno::NOBUFS, Errno::NOMEM].contains(&errno))
}
