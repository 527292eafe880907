//! One client connection, from greeting to relay.
//!
//! The protocol specifics live in the front machines of `mailmux-proto`; this module drives
//! either of them through the same phases:
//!
//! ```text
//! [TLS handshake on SSLPorts] ─▶ greet ─▶ read/answer until credentials ─▶ identify ─▶ look up
//!        ▲ STARTTLS/STLS: handshake, dialogue starts over          ─▶ route ─▶ store login ─▶ relay
//!        └────────────────────────┘       ▲                                        │
//!                                         └──── refused (client may retry) ◀──────┘
//! ```
//!
//! The pre-login phase (TLS handshakes included) is bounded by `PreAuthTimeout`; lookups and
//! store logins by their own timeouts; the relay by the idle `Timeout`. At shutdown a
//! session still before login says goodbye in its protocol; a relayed one is left to finish
//! until the drain deadline.

pub mod imap;
pub mod login;
pub mod pop3;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mailmux_proto::{Credentials, Rejection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::relay;
use crate::route::StoreAddr;
use crate::server::Service;
use crate::tls::{ClientStream, MaybeTls};

/// What a session knows about where it runs.
#[derive(Debug, Clone)]
pub struct SessionContext {
    /// Unique for the life of the process; appears on every log line of the session.
    pub id: u64,
    /// The client's address.
    pub client: SocketAddr,
    /// The mailmux address the client connected to.
    pub local: SocketAddr,
    /// The service's configuration generation and directory.
    pub service: Arc<Service>,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
}

/// The connection's TLS state, as a front machine needs it.
#[derive(Debug, Clone, Copy, Default)]
pub struct TlsState {
    /// TLS is on.
    pub active: bool,
    /// The client presented a certificate that verified.
    pub client_certificate: bool,
}

/// What a front machine asks of the session.
#[derive(Debug)]
pub enum Step<T> {
    /// Credentials to verify; answer with [`Front::accept`] or [`Front::reject`].
    Login(T, Credentials),
    /// The client was told to start TLS: handshake, then [`Front::tls_started`].
    StartTls,
    /// The client is done (logout, quit, protocol violation): flush and close.
    Close,
}

/// A protocol's pre-login machine, as the session drives it.
pub trait Front: Send + Sized {
    /// What identifies the login command being answered (the IMAP tag).
    type Ticket: Send;
    /// A machine for a new connection, greeting queued.
    fn new(service: &Service, tls: TlsState) -> Self;
    /// Client bytes in.
    fn feed(&mut self, bytes: &[u8]);
    /// Bytes for the client.
    fn take_output(&mut self) -> Vec<u8>;
    /// The next thing to do, or `None` to read more.
    fn next_step(&mut self) -> Option<Step<Self::Ticket>>;
    /// The store accepted; returns the client bytes that follow the login command.
    fn accept(&mut self, ticket: Self::Ticket, capabilities: Option<&str>, text: &str) -> Vec<u8>;
    /// The login failed; the client may retry.
    fn reject(&mut self, ticket: Self::Ticket, rejection: &Rejection);
    /// The STARTTLS/STLS handshake succeeded.
    fn tls_started(&mut self, client_certificate: bool);
    /// Goodbye at server shutdown.
    fn shutdown(&mut self);
    /// Goodbye when the client took too long.
    fn idle_timeout(&mut self);
}

/// The session's end, for the summary line.
#[derive(Debug, Default)]
struct Summary {
    user: Option<String>,
    store: Option<StoreAddr>,
    tls: bool,
    up: u64,
    down: u64,
    outcome: &'static str,
}

/// Runs one session to its end and logs its summary. `implicit_tls`: the port speaks TLS
/// from the first byte.
pub async fn run<F: Front>(tcp: TcpStream, implicit_tls: bool, ctx: SessionContext) {
    let started = Instant::now();
    let deadline = started + ctx.service.config.preauth_timeout;
    let mut summary = Summary::default();
    let client = if implicit_tls {
        match handshake(&ctx, tcp, deadline).await {
            Ok(tls) => Some(tls),
            Err(e) => {
                tracing::info!(error = %e, "TLS negotiation failed");
                summary.outcome = "tls-failed";
                None
            }
        }
    } else {
        Some(MaybeTls::Plain(tcp))
    };
    if let Some(client) = client {
        let tls = TlsState { active: client.is_tls(), client_certificate: certificate_login_possible(&ctx, &client) };
        let front = F::new(&ctx.service, tls);
        summary.outcome = drive(client, &ctx, front, deadline, &mut summary).await;
    }
    tracing::info!(
        user = summary.user.as_deref().unwrap_or("-"),
        store = %summary.store.as_ref().map_or_else(|| "-".to_owned(), ToString::to_string),
        tls = summary.tls,
        bytes_in = summary.up,
        bytes_out = summary.down,
        duration_ms = started.elapsed().as_millis() as u64,
        outcome = summary.outcome,
        "session end"
    );
}

/// EXTERNAL is offered when the client presented a verified certificate and certificates
/// can be mapped to users.
fn certificate_login_possible(ctx: &SessionContext, client: &ClientStream) -> bool {
    ctx.service.config.cert_map.is_some() && client.peer_certificate().is_some()
}

/// The server side of a TLS handshake, within the pre-login deadline.
async fn handshake(ctx: &SessionContext, tcp: TcpStream, deadline: Instant) -> Result<ClientStream, String> {
    let Some(acceptor) = &ctx.service.tls else {
        return Err("TLS is not configured".into());
    };
    match tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => Ok(MaybeTls::Tls(Box::new(tls))),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("handshake timed out".into()),
    }
}

async fn drive<F: Front>(
    mut client: ClientStream,
    ctx: &SessionContext,
    mut front: F,
    deadline: Instant,
    summary: &mut Summary,
) -> &'static str {
    let svc = &ctx.service.config;
    let mut buf = vec![0u8; 4096];
    loop {
        summary.tls = client.is_tls();
        let step = front.next_step();
        // Answers queued while processing go out before the session waits or acts.
        if flush(&mut client, &mut front, deadline).await.is_err() {
            return "client-gone";
        }
        match step {
            Some(Step::Close) => return "closed-before-login",
            Some(Step::StartTls) => {
                let MaybeTls::Plain(tcp) = client else {
                    return "protocol-error";
                };
                client = match handshake(ctx, tcp, deadline).await {
                    Ok(tls) => tls,
                    Err(e) => {
                        tracing::info!(error = %e, "STARTTLS negotiation failed");
                        return "tls-failed";
                    }
                };
                front.tls_started(certificate_login_possible(ctx, &client));
            }
            Some(Step::Login(ticket, credentials)) => {
                summary.user = Some(credentials.login.clone());
                match login::log_in(ctx, &credentials, client.peer_certificate()).await {
                    Ok(done) => {
                        tracing::info!(user = %done.user, store = %done.store, mechanism = credentials.mechanism.as_str(), "logged in");
                        summary.user = Some(done.user);
                        summary.store = Some(done.store);
                        let login = done.login;
                        let client_pending = front.accept(ticket, login.capabilities.as_deref(), &login.text);
                        if flush(&mut client, &mut front, deadline).await.is_err() {
                            return "client-gone";
                        }
                        let stats =
                            relay::relay(client, client_pending, login.stream, login.pending, svc.timeout).await;
                        summary.up = stats.client_to_store;
                        summary.down = stats.store_to_client;
                        return stats.end.as_str();
                    }
                    Err(e) => {
                        let rejection = e.rejection(svc.server_down_alert.as_deref());
                        match rejection {
                            Rejection::AuthenticationFailed => {
                                tracing::info!(user = %credentials.login, reason = %e, "login refused")
                            }
                            Rejection::Unavailable { .. } => {
                                tracing::warn!(user = %credentials.login, reason = %e, "login failed")
                            }
                        }
                        summary.outcome = e.outcome();
                        front.reject(ticket, &rejection);
                    }
                }
            }
            None => {
                tokio::select! {
                    read = client.read(&mut buf) => match read {
                        Ok(0) | Err(_) => return if summary.user.is_some() { summary.outcome } else { "closed-before-login" },
                        Ok(n) => front.feed(&buf[..n]),
                    },
                    _ = tokio::time::sleep_until(deadline) => {
                        front.idle_timeout();
                        let _ = flush(&mut client, &mut front, Instant::now() + Duration::from_secs(1)).await;
                        return "login-timeout";
                    }
                    _ = ctx.shutdown.cancelled() => {
                        front.shutdown();
                        let _ = flush(&mut client, &mut front, Instant::now() + Duration::from_secs(1)).await;
                        return "shutdown";
                    }
                }
            }
        }
    }
}

async fn flush<F: Front>(client: &mut ClientStream, front: &mut F, deadline: Instant) -> std::io::Result<()> {
    let out = front.take_output();
    if out.is_empty() {
        return Ok(());
    }
    let write = async {
        client.write_all(&out).await?;
        client.flush().await
    };
    match tokio::time::timeout_at(deadline, write).await {
        Ok(result) => result,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}
