//! The running server: services built from a configuration, their listeners, and the drain
//! at shutdown.
//!
//! [`Server::bind`] does everything that can fail at start-up (directories, LDIF files,
//! sockets) before any connection is accepted; [`Server::run`] then serves until the
//! shutdown token is cancelled, and returns once sessions have drained or the
//! `ShutdownTimeout` has passed. Tests bind port 0 and read [`Server::local_addrs`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use mailmux_config::{Config, Protocol};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::{Edge, budget};
use crate::directory;
use crate::listen;
pub use crate::service::{Service, StartError, VirtualService};
use crate::store::health::StoreHealth;

/// Services with their bound listeners, ready to run.
#[derive(Debug)]
pub struct Server {
    /// Each listener with its service and whether it speaks TLS from the first byte.
    listeners: Vec<(Arc<Service>, TcpListener, bool)>,
    drain: Duration,
    /// Budgets, connection counts and penalty tables: they outlive configuration generations.
    edge: Arc<Edge>,
    /// Stores that could not be reached lately (shared failover back-off).
    stores: Arc<StoreHealth>,
}

impl Server {
    /// Builds every service and binds every listener of `config`.
    pub async fn bind(config: &Config) -> Result<Server, StartError> {
        let limit = budget::raise_descriptor_limit();
        match &limit.error {
            None => tracing::info!(was = limit.was, now = limit.soft, "open-files limit raised to the hard limit"),
            Some(e) => tracing::warn!(error = %e, now = limit.soft, "cannot raise the open-files limit"),
        }
        let sessions = budget::session_limit(limit.soft, config.max_sessions);
        let prelogin = budget::prelogin_limit(sessions, config.max_prelogin_sessions);
        let per_network = budget::prelogin_per_network(prelogin, config.max_prelogin_per_network);
        tracing::info!(sessions, prelogin, per_network, descriptors = limit.soft, "session limits");
        let edge = Arc::new(Edge::new(sessions, prelogin, per_network));
        let mut listeners = Vec::new();
        let mut drain = Duration::ZERO;
        for svc in &config.services {
            let service = Arc::new(Service::build(svc.clone(), &directory::route_cache(svc))?);
            for warning in &service.warnings {
                tracing::warn!("{warning}");
            }
            drain = drain.max(svc.shutdown_timeout);
            for addr in &svc.listeners {
                let listener = listen::bind(*addr).map_err(|source| StartError::Bind { addr: *addr, source })?;
                let implicit_tls = svc.tls.as_ref().is_some_and(|t| t.implicit_ports.contains(&addr.port()));
                listeners.push((service.clone(), listener, implicit_tls));
            }
        }
        Ok(Server { listeners, drain, edge, stores: Arc::default() })
    }

    /// The edge's state (budgets, connection counts, penalty tables), for tests and metrics.
    pub fn edge(&self) -> Arc<Edge> {
        self.edge.clone()
    }

    /// The bound addresses, with the protocol served on each.
    pub fn local_addrs(&self) -> Vec<(Protocol, SocketAddr)> {
        self.listeners.iter().filter_map(|(svc, l, _)| l.local_addr().ok().map(|a| (svc.config.protocol, a))).collect()
    }

    /// Serves until `shutdown` is cancelled, then drains.
    pub async fn run(self, shutdown: CancellationToken) {
        let sessions = TaskTracker::new();
        let ids = Arc::new(AtomicU64::new(1));
        let mut acceptors = Vec::new();
        for (service, listener, implicit_tls) in self.listeners {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(protocol = service.config.protocol.as_str(), %addr, tls = implicit_tls, "listening");
            }
            acceptors.push(tokio::spawn(listen::accept_loop(listen::Acceptor {
                listener,
                implicit_tls,
                service,
                edge: self.edge.clone(),
                stores: self.stores.clone(),
                sessions: sessions.clone(),
                shutdown: shutdown.clone(),
                ids: ids.clone(),
            })));
        }
        shutdown.cancelled().await;
        for acceptor in acceptors {
            let _ = acceptor.await;
        }
        sessions.close();
        tracing::info!(
            sessions = sessions.len(),
            deadline_s = self.drain.as_secs(),
            "shutting down; draining sessions"
        );
        if tokio::time::timeout(self.drain, sessions.wait()).await.is_err() {
            tracing::warn!(sessions = sessions.len(), "drain deadline passed; closing remaining sessions");
        }
    }
}
