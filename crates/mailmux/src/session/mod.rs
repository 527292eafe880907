//! One client connection, from greeting to relay.
//!
//! The protocol specifics live in the front machines of `mailmux-proto`; this module drives
//! either of them through the same phases:
//!
//! ```text
//! greet ─▶ read/answer until credentials ─▶ identify ─▶ look up ─▶ route ─▶ store login ─▶ relay
//!              ▲                                                                 │
//!              └────────────── refused (client may retry) ◀─────────────────────┘
//! ```
//!
//! The pre-login phase is bounded by `PreAuthTimeout`; lookups and store logins by their own
//! timeouts; the relay by the idle `Timeout`. At shutdown a session still before login says
//! goodbye in its protocol; a relayed one is left to finish until the drain deadline.

pub mod imap;
pub mod pop3;

use std::net::SocketAddr;
use std::sync::Arc;

use mailmux_proto::{Credentials, Rejection, ReplayCredentials, ldap_filter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::LoginError;
use crate::identity::Identity;
use crate::relay;
use crate::route::{self, StoreAddr};
use crate::server::Service;
use crate::store::{self, StoreLogin};

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

/// What a front machine asks of the session.
#[derive(Debug)]
pub enum Step<T> {
    /// Credentials to verify; answer with [`Front::accept`] or [`Front::reject`].
    Login(T, Credentials),
    /// The client is done (logout, quit, protocol violation): flush and close.
    Close,
}

/// A protocol's pre-login machine, as the session drives it.
pub trait Front: Send {
    /// What identifies the login command being answered (the IMAP tag).
    type Ticket: Send;
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
    up: u64,
    down: u64,
    outcome: &'static str,
}

/// Runs one session to its end and logs its summary.
pub async fn run<F: Front>(mut client: TcpStream, ctx: SessionContext, mut front: F) {
    let started = Instant::now();
    let mut summary = Summary::default();
    summary.outcome = drive(&mut client, &ctx, &mut front, &mut summary).await;
    tracing::info!(
        user = summary.user.as_deref().unwrap_or("-"),
        store = %summary.store.as_ref().map_or_else(|| "-".to_owned(), ToString::to_string),
        bytes_in = summary.up,
        bytes_out = summary.down,
        duration_ms = started.elapsed().as_millis() as u64,
        outcome = summary.outcome,
        "session end"
    );
}

async fn drive<F: Front>(
    client: &mut TcpStream,
    ctx: &SessionContext,
    front: &mut F,
    summary: &mut Summary,
) -> &'static str {
    let svc = &ctx.service.config;
    let deadline = Instant::now() + svc.preauth_timeout;
    let mut buf = vec![0u8; 4096];
    loop {
        let step = front.next_step();
        // Answers queued while processing go out before the session waits or acts.
        if flush(client, front, deadline).await.is_err() {
            return "client-gone";
        }
        match step {
            Some(Step::Close) => return "closed-before-login",
            Some(Step::Login(ticket, credentials)) => {
                summary.user = Some(credentials.login.clone());
                match log_in(ctx, &credentials).await {
                    Ok((store, login)) => {
                        tracing::info!(user = %credentials.login, store = %store, mechanism = credentials.mechanism.as_str(), "logged in");
                        summary.store = Some(store);
                        let client_pending =
                            front.accept(ticket, login.capabilities.as_deref(), &login.text);
                        if flush(client, front, deadline).await.is_err() {
                            return "client-gone";
                        }
                        let stats = relay::relay(
                            client,
                            client_pending,
                            login.stream,
                            login.pending,
                            svc.timeout,
                        )
                        .await;
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
                        let _ = flush(client, front, Instant::now() + std::time::Duration::from_secs(1)).await;
                        return "login-timeout";
                    }
                    _ = ctx.shutdown.cancelled() => {
                        front.shutdown();
                        let _ = flush(client, front, Instant::now() + std::time::Duration::from_secs(1)).await;
                        return "shutdown";
                    }
                }
            }
        }
    }
}

async fn flush<F: Front>(
    client: &mut TcpStream,
    front: &mut F,
    deadline: Instant,
) -> std::io::Result<()> {
    let out = front.take_output();
    if out.is_empty() {
        return Ok(());
    }
    match tokio::time::timeout_at(deadline, client.write_all(&out)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

/// Finds the user's store and logs in there.
async fn log_in(
    ctx: &SessionContext,
    credentials: &Credentials,
) -> Result<(StoreAddr, StoreLogin<TcpStream>), LoginError> {
    let service = &ctx.service;
    let svc = &service.config;
    let identity = Identity::parse(
        &credentials.login,
        &svc.domain_delims,
        svc.default_domain.as_deref(),
    )
    .ok_or(LoginError::EmptyUser)?;
    let (client_ip, server_ip) = (ctx.client.ip(), ctx.local.ip());
    let mut filter = svc.search_format.expand(
        |t| identity.token(t, client_ip, server_ip, None),
        ldap_filter::escape_value,
    );
    if !filter.starts_with('(') {
        filter = format!("({filter})");
    }
    tracing::debug!(%filter, "directory search");
    let entry = service
        .directory
        .find_user(&filter, &service.search_attrs)
        .await?
        .ok_or(LoginError::UnknownUser)?;
    let store =
        route::store_of(&entry, &svc.mail_host_attrs, svc.backside_port).ok_or_else(|| {
            LoginError::NoMailHost {
                dn: entry.dn.clone(),
            }
        })?;
    let replay_user = svc.replay_format.expand(
        |t| identity.token(t, client_ip, server_ip, Some(&entry)),
        str::to_owned,
    );
    let stream = store::connect(&store, svc.backside_timeout).await?;
    let credentials = ReplayCredentials {
        authzid: None,
        authcid: replay_user,
        password: credentials.password.clone(),
    };
    let login = store::login(
        svc.protocol,
        stream,
        &store,
        svc.replay_mechanism,
        credentials,
        svc.backside_timeout,
    )
    .await?;
    Ok((store, login))
}
