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
mod prelogin;
pub mod spoof;
pub mod verify;

use std::net::SocketAddr;
use std::sync::Arc;

use mailmux_config::Protocol;
use mailmux_config::tcp_access::{Client, Decision, Service as AccessService};
use mailmux_proto::{Proof, Rejection};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::host_name::{self, ClientHost};
use crate::access::{self, Admission, Edge};
use crate::control::metrics::{Metrics, Phase};
use crate::control::sessions::SessionRegistry;
use crate::outcome::{Outcome, Refusal};
use crate::proxy_header;
use crate::relay;
use crate::relay::{Direction, RelayEnd};
use crate::route::StoreAddr;
use crate::service::Service;
use prelogin::HandOver;
use tracing::Instrument;
use tracing::field::Empty;

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
    /// Budgets, connection counts and penalty tables, for the life of the server.
    pub edge: Arc<Edge>,
    /// Stores that could not be reached lately, for the life of the server.
    pub stores: Arc<crate::store::health::StoreHealth>,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
    /// The client's host name, looked up once when first needed.
    pub host: Arc<tokio::sync::OnceCell<ClientHost>>,
    /// The server's metrics.
    pub metrics: Arc<Metrics>,
    /// The relayed sessions (admin list and kick).
    pub registry: Arc<SessionRegistry>,
    /// Where session tasks are tracked for the shutdown drain; a session's relay runs in a
    /// task of its own there (see [`Relaying`]).
    pub tasks: TaskTracker,
}

impl SessionContext {
    /// The client's host name (looked up on first use).
    pub async fn client_host(&self) -> &ClientHost {
        self.host.get_or_init(|| host_name::look_up(self.client.ip())).await
    }

    /// The client as access filters see it: with its host name if `lookup`, else without.
    pub async fn access_client(&self, lookup: bool) -> Client<'_> {
        if lookup {
            Client::with_host(self.client.ip(), self.client_host().await.as_host_name())
        } else {
            Client::new(self.client.ip())
        }
    }
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
    /// A proof to verify; answer with [`Front::accept`] or [`Front::reject`].
    Login(T, Proof),
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
    /// The login failed and the client has failed too often: answer, say goodbye, close.
    fn reject_and_close(&mut self, ticket: Self::Ticket, rejection: &Rejection);
    /// The STARTTLS/STLS handshake succeeded.
    fn tls_started(&mut self, client_certificate: bool);
    /// Goodbye at server shutdown.
    fn shutdown(&mut self);
    /// Goodbye when the client took too long.
    fn idle_timeout(&mut self);
}

/// What the session learned, for its summary line.
#[derive(Debug, Default)]
struct Summary {
    /// The login name tried last, then the user who logged in.
    user: Option<String>,
    store: Option<StoreAddr>,
    tls: bool,
    up: u64,
    down: u64,
}

/// A connection the accept loop took, with what its session needs.
#[derive(Debug)]
pub struct Accepted {
    /// The session id.
    pub id: u64,
    /// The connection.
    pub tcp: TcpStream,
    /// Its peer: the client, or a load balancer that will say who the client is.
    pub peer: SocketAddr,
    /// The mailmux address it arrived on.
    pub local: SocketAddr,
    /// The port speaks TLS from the first byte.
    pub implicit_tls: bool,
    /// The listener's service (a vdmap entry's may serve the session instead).
    pub service: Arc<Service>,
    /// Budgets, counts and penalties.
    pub edge: Arc<Edge>,
    /// Store health.
    pub stores: Arc<crate::store::health::StoreHealth>,
    /// The server's metrics.
    pub metrics: Arc<Metrics>,
    /// The relayed sessions.
    pub registry: Arc<SessionRegistry>,
    /// Where session tasks are tracked for the drain.
    pub tasks: TaskTracker,
    /// Server shutdown.
    pub shutdown: CancellationToken,
}

/// Serves one accepted connection that holds a session permit: the PROXY header from a
/// trusted load balancer (the real addresses), the vdmap entry of the local address, the
/// session's log span with those addresses, then admission (pre-login budget, `ConnLimits`,
/// `TCPAccess`) and the session itself, or a refusal.
pub async fn serve<F: Front>(mut accepted: Accepted, permit: OwnedSemaphorePermit) {
    let (mut client, mut local) = (accepted.peer, accepted.local);
    let edge_config = &accepted.service.config.edge;
    if edge_config.proxy_from.contains(client.ip()) {
        let deadline = Instant::now() + accepted.service.config.preauth_timeout;
        // The session's span does not exist yet (it carries the real addresses): a line
        // about the header still names the session and goes to the service's log.
        let protocol = accepted.service.config.protocol;
        let id = accepted.id;
        let header_span = match protocol {
            Protocol::Imap => tracing::info_span!("imap", id, peer = %client),
            Protocol::Pop3 => tracing::info_span!("pop3", id, peer = %client),
        };
        match Box::pin(proxy_header::read(&mut accepted.tcp, deadline)).instrument(header_span.clone()).await {
            Ok(Some((from, to))) => {
                client = SocketAddr::new(from.ip().to_canonical(), from.port());
                local = SocketAddr::new(to.ip().to_canonical(), to.port());
            }
            Ok(None) => {}
            Err(e) => {
                header_span.in_scope(|| tracing::warn!(error = %e, "connection from a trusted proxy closed"));
                return;
            }
        }
    }
    let (service, vdmap) = accepted.service.for_local_address(local.ip());
    let vdmap = vdmap.map(str::to_owned);
    let protocol = service.config.protocol;
    // One span name per protocol, so each service's lines can go to its own log; the names
    // must match `logging::session_span_name` (span names are literals, it cannot be called here).
    let id = accepted.id;
    let span = match protocol {
        Protocol::Imap => tracing::info_span!("imap", id, client = %client, local = %local, vdmap = Empty),
        Protocol::Pop3 => tracing::info_span!("pop3", id, client = %client, local = %local, vdmap = Empty),
    };
    if let Some(name) = &vdmap {
        span.record("vdmap", name.as_str());
    }
    let ctx = SessionContext {
        id,
        client,
        local,
        service,
        edge: accepted.edge,
        stores: accepted.stores,
        shutdown: accepted.shutdown,
        host: Arc::default(),
        metrics: accepted.metrics,
        registry: accepted.registry,
        tasks: accepted.tasks,
    };
    admit::<F>(accepted.tcp, accepted.implicit_tls, ctx, permit).instrument(span).await;
}

/// Admits the session (pre-login budget, `ConnLimits`, `TCPAccess`) or turns it away.
async fn admit<F: Front>(tcp: TcpStream, implicit_tls: bool, ctx: SessionContext, permit: OwnedSemaphorePermit) {
    let protocol = ctx.service.config.protocol;
    let admitted = match ctx.edge.admit(&ctx.service.config, ctx.client.ip(), permit) {
        Ok(admission) => Box::pin(check_access(&ctx, implicit_tls)).await.map(|()| admission),
        Err(refusal) => Err(refusal),
    };
    match admitted {
        Ok(admission) => run::<F>(tcp, implicit_tls, ctx, admission).await,
        Err(refusal) => {
            ctx.metrics.refused(protocol, refusal);
            // check_access logs its own refusals, with the rule that decided.
            if refusal != Refusal::Access && ctx.edge.log_refusal(refusal) {
                match refusal {
                    Refusal::ConnLimit => {
                        tracing::warn!("Connection limit reached for client IP {}", ctx.client.ip())
                    }
                    Refusal::PreLoginNetwork => tracing::warn!(
                        limit = ctx.edge.prelogin_per_network,
                        "too many sessions before login from the client's network; connection refused"
                    ),
                    _ => tracing::warn!(
                        limit = ctx.edge.prelogin_limit,
                        "too many sessions before login; connection refused"
                    ),
                }
            }
            if !implicit_tls {
                let _ = tcp.try_write(access::refusal_text(protocol, refusal));
            }
        }
    }
}

/// What a kicked client is told (`stopping`: kicked because the server stops): IMAP's
/// untagged `BYE` (RFC 9051 section 7.1.5; the client reconnects, and lands on the user's
/// store as the directory now says, or on another instance); POP3 has no unsolicited
/// response, so its connection just closes.
pub fn kicked_text(protocol: Protocol, stopping: bool) -> &'static [u8] {
    match (protocol, stopping) {
        (Protocol::Imap, false) => b"* BYE [UNAVAILABLE] Session ended by the administrator, please reconnect\r\n",
        (Protocol::Imap, true) => b"* BYE [UNAVAILABLE] Server shutting down, please reconnect\r\n",
        (Protocol::Pop3, _) => b"",
    }
}

/// Writes [`kicked_text`] and closes, within a second.
async fn say_goodbye(client: &mut crate::tls::ClientStream, protocol: Protocol, stopping: bool) {
    use tokio::io::AsyncWriteExt;
    let goodbye = async {
        client.write_all(kicked_text(protocol, stopping)).await?;
        client.shutdown().await
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), goodbye).await;
}

/// `TCPAccess`, and the client's host name for the log with `ClientLookup`.
async fn check_access(ctx: &SessionContext, implicit_tls: bool) -> Result<(), Refusal> {
    let edge = &ctx.service.config.edge;
    let service = AccessService::of(ctx.service.config.protocol, implicit_tls);
    if edge.client_lookup {
        let host = ctx.client_host().await.describe();
        tracing::info!(target: crate::log_severity::INFORMATION, %host, "client host name");
    }
    if edge.tcp_access.is_empty() {
        return Ok(());
    }
    let client = ctx.access_client(edge.client_lookup || edge.tcp_access.needs_host_name_for(service)).await;
    let verdict = edge.tcp_access.verdict(service, &client);
    if verdict.decision == Decision::Deny {
        if ctx.edge.log_refusal(Refusal::Access) {
            let rule = verdict.rule.map_or_else(|| "no rule allows it".to_owned(), |r| format!("rule {}", r + 1));
            tracing::warn!(service = service.as_str(), "access denied by TCPAccess ({rule})");
        }
        return Err(Refusal::Access);
    }
    Ok(())
}

/// Runs one admitted session to its end and logs its summary.
///
/// The pre-login phase hands over a logged-in pair of streams and is dropped before the relay
/// starts, so a relayed session holds its two streams and the relay's state, nothing of its
/// dialogue (front machine, read buffer, credentials).
async fn run<F: Front>(tcp: TcpStream, implicit_tls: bool, ctx: SessionContext, mut admission: Admission) {
    let started = Instant::now();
    let protocol = ctx.service.config.protocol;
    let phase = ctx.metrics.enter(protocol, Phase::PreLogin);
    let mut summary = Summary::default();
    // The pre-login phase runs boxed: inline, its state (about 5 KiB) would set the size of
    // this future, which lives as long as the task.
    let outcome = match Box::pin(prelogin::run::<F>(tcp, implicit_tls, &ctx, &mut summary)).await {
        Ok(prelogin::Ended::Spoofed(handed)) => {
            // Not a verified login: it stays within the pre-login limits and deadline.
            let deadline = started + ctx.service.config.preauth_timeout;
            Box::pin(spoof::serve(handed, deadline, &ctx.shutdown)).await;
            Outcome::Spoofed
        }
        Ok(prelogin::Ended::LoggedIn(handed)) => {
            admission.logged_in();
            let relaying = Box::new(Relaying { ctx, admission, phase, summary, started, handed: Some(handed) });
            let tasks = relaying.ctx.tasks.clone();
            tasks.spawn(relaying.run().instrument(tracing::Span::current()));
            return;
        }
        Err(outcome) => outcome,
    };
    session_end(&ctx, outcome, &summary, started);
    drop(phase);
}

/// A logged-in session, relaying in a task of its own.
///
/// A task keeps its future's largest state for its whole life, and the nested futures of
/// accepting, admitting and the pre-login dialogue add up to kilobytes even when each phase
/// is boxed. The relay therefore starts a new, small task (the relay's state and a pointer
/// to this) and the pre-login task ends: an idle relayed session costs about half as much
/// (the `scale` benchmark measures it).
struct Relaying {
    ctx: SessionContext,
    /// Held until the session ends (session limit, `ConnLimits` slot).
    admission: Admission,
    /// The session counted in the relay phase of the metrics until it ends.
    phase: crate::control::metrics::PhaseGuard,
    summary: Summary,
    started: Instant,
    /// Taken when the relay starts.
    handed: Option<HandOver>,
}

impl Relaying {
    /// Relays until either side closes, the idle timeout, or a kick; then logs the summary.
    async fn run(mut self: Box<Self>) {
        let Some(HandOver { mut client, client_pending, store, store_pending }) = self.handed.take() else {
            return;
        };
        self.phase.advance(Phase::Relay);
        let ctx = &self.ctx;
        let protocol = ctx.service.config.protocol;
        let store_name = self.summary.store.as_ref().map_or_else(String::new, ToString::to_string);
        let user = self.summary.user.as_deref().unwrap_or_default();
        let registered = ctx.registry.register(ctx.id, protocol, user, ctx.client, store_name);
        let live = &registered.session;
        let tally = |direction: Direction, n: u64| {
            match direction {
                Direction::Up => &live.up,
                Direction::Down => &live.down,
            }
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            ctx.metrics.bytes(protocol, direction, n);
        };
        let stats = relay::relay(
            &mut client,
            client_pending,
            store,
            store_pending,
            ctx.service.config.timeout,
            Some(relay::Lag { per_session: ctx.service.config.slow_client_buffer, budget: &ctx.edge.slow_clients }),
            &tally,
            live.kick.cancelled(),
        )
        .await;
        let mut end = stats.end;
        if end == RelayEnd::Kicked {
            // The server kicks every session left at the drain deadline.
            let stopping = ctx.shutdown.is_cancelled();
            if stopping {
                end = RelayEnd::DrainDeadline;
                tracing::info!("server stopping: session closed at the drain deadline");
            } else {
                tracing::info!("session ended by the administrator");
            }
            say_goodbye(&mut client, protocol, stopping).await;
        }
        drop(registered);
        drop(client);
        let Relaying { ctx, admission, phase, mut summary, started, .. } = *self;
        summary.up = stats.client_to_store;
        summary.down = stats.store_to_client;
        session_end(&ctx, Outcome::Relayed(end), &summary, started);
        drop((phase, admission));
    }
}

/// Counts the session's end and logs its summary line.
fn session_end(ctx: &SessionContext, outcome: Outcome, summary: &Summary, started: Instant) {
    ctx.metrics.session_ended(ctx.service.config.protocol, outcome);
    tracing::info!(
        user = summary.user.as_deref().unwrap_or("-"),
        store = %summary.store.as_ref().map_or_else(|| "-".to_owned(), ToString::to_string),
        tls = summary.tls,
        bytes_in = summary.up,
        bytes_out = summary.down,
        duration_ms = started.elapsed().as_millis() as u64,
        outcome = outcome.as_str(),
        "session end"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future a function returns, without calling it.
    fn size_of_future<A, F: std::future::Future>(_: fn(A) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// What an idle relayed session keeps in its task: the relay's state and a pointer, not
    /// the pre-login phases (which made it 2.7-7 KiB before the relay got a task of its own).
    #[test]
    fn a_relayed_session_task_is_small() {
        let relaying = size_of_future(Relaying::run);
        assert!(relaying <= 1024, "the relay task's future is {relaying} bytes");
        let state = std::mem::size_of::<Relaying>();
        assert!(state <= 768, "a relayed session's state is {state} bytes");
        println!("relay task future {relaying} bytes, relayed session state {state} bytes");
    }
}
