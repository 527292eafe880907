//! The running server: configuration generations, their listeners, reloads, and the drain
//! at shutdown.
//!
//! [`Server::bind`] does everything that can fail at start-up (directories, LDIF files,
//! sockets) before any connection is accepted; [`Server::run`] then serves until the
//! shutdown token is cancelled, and returns once sessions have drained or the
//! `ShutdownTimeout` has passed. Tests bind port 0 and read [`Server::local_addrs`].
//!
//! **Reload** ([`ServerHandle::reload`]) builds a complete new generation — every service,
//! its directory clients and TLS configurations — and every socket the new configuration
//! adds, before changing anything; if any of it fails, nothing changes. Then, at once:
//! listeners on an address of both configurations keep their socket and serve the new
//! generation from the next accepted connection; new addresses start accepting; removed ones
//! stop. Sessions in progress keep the generation they started with (they hold its
//! [`Service`]) and are never dropped. What outlives generations lives here: the edge's
//! budgets, counts and penalties, store health, route caches (kept while their size and
//! times are unchanged), the capabilities learned from the stores. The session limits (`MaxSessions` and friends) are sized at start.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailmux_config::{Config, Protocol, ServiceConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::{Edge, budget};
use crate::control::{self, metrics::Metrics, sessions::SessionRegistry};
use crate::directory;
use crate::listen;
pub use crate::service::{Caches, Service, StartError, VirtualService};
use crate::store::health::StoreHealth;

/// What a listener serves: a service of the current generation, and whether the port speaks
/// TLS from the first byte.
#[derive(Debug, Clone)]
pub struct Role {
    /// The service.
    pub service: Arc<Service>,
    /// `SSLPorts` lists the port.
    pub implicit_tls: bool,
}

/// Which listener of a configuration is which, so a reload can tell kept ones from new ones.
///
/// A fixed port is its address: a reload may even change the protocol served there, the
/// socket stays. Port 0 (tests) is told apart by protocol and by its place among the
/// same protocol's port-0 listeners, since two services may both write `127.0.0.1:0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ListenerKey {
    Fixed(SocketAddr),
    Ephemeral(SocketAddr, Protocol, usize),
}

impl ListenerKey {
    fn addr(self) -> SocketAddr {
        match self {
            ListenerKey::Fixed(addr) | ListenerKey::Ephemeral(addr, ..) => addr,
        }
    }
}

/// A listener: its socket until the server runs, and what it serves.
#[derive(Debug)]
struct Listener {
    /// Its place in `ServiceList`, for [`Server::local_addrs`].
    position: usize,
    local: SocketAddr,
    protocol: Protocol,
    role: watch::Sender<Role>,
    /// Stops this listener alone (a reload that removes it).
    stop: CancellationToken,
    socket: Option<TcpListener>,
}

/// What outlives configuration generations.
#[derive(Debug)]
struct Shared {
    edge: Arc<Edge>,
    stores: Arc<StoreHealth>,
    metrics: Arc<Metrics>,
    registry: Arc<SessionRegistry>,
    sessions: TaskTracker,
    ids: Arc<AtomicU64>,
    state: Mutex<State>,
    /// One reload at a time (SIGHUP and `POST /reload` can come together), so a reload that
    /// read the files earlier cannot replace the configuration of one that read them later.
    reloading: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct State {
    /// By the address written in `ServiceList` (port 0 stays port 0, so a test's listeners
    /// are the same listeners after a reload).
    listeners: HashMap<ListenerKey, Listener>,
    /// Route caches and AuthCaches per service, with the parameters they were made for.
    caches: HashMap<Protocol, (CacheParams, Caches)>,
    drain: Duration,
    /// The configuration directory and instance of the running configuration, for reloads.
    origin: (std::path::PathBuf, Option<String>),
    /// Set by [`Server::run`]: listeners added by a reload start at once.
    shutdown: Option<CancellationToken>,
    /// The metrics and admin endpoints, bound at start-up, served by [`Server::run`].
    control: Vec<control::ControlListener>,
}

/// A configuration's services, built, as the listeners that will serve them.
struct Generation {
    listeners: Vec<(ListenerKey, Role)>,
    drain: Duration,
}

/// Services with their bound listeners, ready to run.
#[derive(Debug)]
pub struct Server {
    shared: Arc<Shared>,
}

/// A handle on a running server, for reloads.
#[derive(Debug, Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
}

/// What a reload changed, for the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    /// Listeners serving the new generation on their old sockets.
    pub kept: Vec<SocketAddr>,
    /// Listeners opened.
    pub added: Vec<SocketAddr>,
    /// Listeners closed.
    pub removed: Vec<SocketAddr>,
}

impl Server {
    /// Builds every service and binds every listener of `config`.
    pub async fn bind(config: &Config) -> Result<Server, StartError> {
        let limit = budget::raise_descriptor_limit();
        match &limit.error {
            None => tracing::info!(
                target: crate::log_severity::INFORMATION,
                was = limit.was,
                now = limit.soft,
                "open-files limit raised to the hard limit"
            ),
            Some(e) => tracing::warn!(error = %e, now = limit.soft, "cannot raise the open-files limit"),
        }
        let sessions = budget::session_limit(limit.soft, config.max_sessions);
        let prelogin = budget::prelogin_limit(sessions, config.max_prelogin_sessions);
        let per_network = budget::prelogin_per_network(prelogin, config.max_prelogin_per_network);
        tracing::info!(target: crate::log_severity::INFORMATION, sessions, prelogin, per_network, descriptors = limit.soft, "session limits");
        let shared = Arc::new(Shared {
            edge: Arc::new(Edge::new(sessions, prelogin, per_network)),
            stores: Arc::default(),
            metrics: Metrics::new(),
            registry: SessionRegistry::new(),
            sessions: TaskTracker::new(),
            ids: Arc::new(AtomicU64::new(1)),
            reloading: tokio::sync::Mutex::new(()),
            state: Mutex::new(State {
                listeners: HashMap::new(),
                caches: HashMap::new(),
                drain: Duration::ZERO,
                origin: (config.dir.clone(), config.instance.clone()),
                shutdown: None,
                control: Vec::new(),
            }),
        });
        shared.edge.slow_clients.set_limit(config.slow_client_buffer_total);
        let control = control::bind_all(config).map_err(|(addr, source)| StartError::Control { addr, source })?;
        let generation = build_generation(&shared, config)?;
        let mut state = shared.lock();
        state.drain = generation.drain;
        state.control = control;
        for (position, (key, role)) in generation.listeners.into_iter().enumerate() {
            let addr = key.addr();
            let socket = listen::bind(addr).map_err(|source| StartError::Bind { addr, source })?;
            let local = socket.local_addr().unwrap_or(addr);
            let listener = Listener {
                position,
                local,
                protocol: role.service.config.protocol,
                role: watch::Sender::new(role),
                stop: CancellationToken::new(),
                socket: Some(socket),
            };
            state.listeners.insert(key, listener);
        }
        drop(state);
        Ok(Server { shared })
    }

    /// The edge's state (budgets, connection counts, penalty tables), for tests and metrics.
    pub fn edge(&self) -> Arc<Edge> {
        self.shared.edge.clone()
    }

    /// The bound addresses, with the protocol served on each, in `ServiceList` order.
    pub fn local_addrs(&self) -> Vec<(Protocol, SocketAddr)> {
        let state = self.shared.lock();
        let mut listeners: Vec<&Listener> = state.listeners.values().collect();
        listeners.sort_by_key(|l| l.position);
        listeners.iter().map(|l| (l.protocol, l.local)).collect()
    }

    /// A handle for reloads, valid while the server runs.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle { shared: self.shared.clone() }
    }

    /// The addresses of the metrics and admin endpoints, as bound (tests bind port 0).
    pub fn control_addrs(&self) -> Vec<(control::Surface, control::ControlAddr)> {
        self.shared.lock().control.iter().map(|c| (c.surface, c.local.clone())).collect()
    }

    /// Serves until `shutdown` is cancelled, then drains. The metrics and admin endpoints
    /// answer until the drain is over (`/ready` says 503 from the start of it).
    pub async fn run(self, shutdown: CancellationToken) {
        let control_stop = CancellationToken::new();
        let mut control_tasks = Vec::new();
        {
            let mut state = self.shared.lock();
            state.shutdown = Some(shutdown.clone());
            let State { listeners, control, .. } = &mut *state;
            for listener in listeners.values_mut() {
                self.shared.start(listener, &shutdown);
            }
            for endpoint in control.drain(..) {
                control_tasks.push(tokio::spawn(control::serve(endpoint, self.handle(), control_stop.clone())));
            }
        }
        self.shared.check_crams();
        shutdown.cancelled().await;
        let sessions = &self.shared.sessions;
        sessions.close();
        let drain = self.shared.lock().drain;
        tracing::info!(sessions = sessions.len(), deadline_s = drain.as_secs(), "shutting down; draining sessions");
        if tokio::time::timeout(drain, sessions.wait()).await.is_err() {
            // Each relayed session says goodbye in its protocol (IMAP BYE) and closes both
            // connections, within a second; what is left after that ends with the runtime.
            let relayed = self.shared.registry.kick_all();
            tracing::warn!(sessions = sessions.len(), relayed, "drain deadline passed; closing remaining sessions");
            let _ = tokio::time::timeout(Duration::from_secs(2), sessions.wait()).await;
        }
        // The endpoints close last (a unix socket's file is removed as its listener goes).
        control_stop.cancel();
        for task in control_tasks {
            let _ = task.await;
        }
    }
}

impl ServerHandle {
    /// The configuration directory and instance the running configuration was read from.
    pub fn origin(&self) -> (std::path::PathBuf, Option<String>) {
        self.shared.lock().origin.clone()
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    /// The relayed sessions.
    pub fn sessions(&self) -> &Arc<SessionRegistry> {
        &self.shared.registry
    }

    /// The metrics in the Prometheus text format.
    pub fn render_metrics(&self) -> String {
        self.shared.metrics.render(&self.shared.registry.stores(), self.shared.edge.session_limit)
    }

    /// Serving: running, not shutting down, at least one listener.
    pub fn is_ready(&self) -> bool {
        let state = self.shared.lock();
        state.shutdown.as_ref().is_some_and(|s| !s.is_cancelled()) && !state.listeners.is_empty()
    }

    /// The current generation's service of `protocol` (the first listener's), if any.
    pub fn service(&self, protocol: Protocol) -> Option<(Arc<Service>, SocketAddr)> {
        let state = self.shared.lock();
        let mut listeners: Vec<&Listener> = state.listeners.values().filter(|l| l.protocol == protocol).collect();
        listeners.sort_by_key(|l| l.position);
        listeners.first().map(|l| (l.role.borrow().service.clone(), l.local))
    }

    /// A session context as a connection from `client` to `local` on `service` would have
    /// it, for looking a user up without a connection (`mailmux admin explain`).
    pub fn context(
        &self,
        service: Arc<Service>,
        client: SocketAddr,
        local: SocketAddr,
    ) -> crate::session::SessionContext {
        crate::session::SessionContext {
            id: 0,
            client,
            local,
            service,
            edge: self.shared.edge.clone(),
            stores: self.shared.stores.clone(),
            shutdown: CancellationToken::new(),
            host: Arc::default(),
            metrics: self.shared.metrics.clone(),
            registry: self.shared.registry.clone(),
            tasks: self.shared.sessions.clone(),
        }
    }

    /// Serves `config` from now on, or changes nothing and says why; waits for a reload
    /// under way to finish first.
    pub async fn reload(&self, config: Config) -> Result<ReloadSummary, StartError> {
        let _turn = self.reload_turn().await;
        self.apply(config).await
    }

    /// This handle's turn to reload: held by whoever reads the files and applies them, so
    /// reloads apply in the order they read the files.
    pub(crate) async fn reload_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.shared.reloading.lock().await
    }

    /// [`ServerHandle::reload`]'s work, for a caller that holds [`ServerHandle::reload_turn`].
    pub(crate) async fn apply(&self, config: Config) -> Result<ReloadSummary, StartError> {
        let origin = (config.dir.clone(), config.instance.clone());
        let shared = self.shared.clone();
        let config_budget = config.slow_client_buffer_total;
        // Building reads LDIF and PEM files: off the runtime's threads.
        let generation = tokio::task::spawn_blocking(move || build_generation(&shared, &config))
            .await
            .map_err(|e| StartError::Reload(e.to_string()))??;
        // Every new socket before any change: a port that cannot be bound changes nothing.
        let wanted: HashMap<ListenerKey, (usize, Role)> = generation
            .listeners
            .into_iter()
            .enumerate()
            .map(|(position, (key, role))| (key, (position, role)))
            .collect();
        let mut fresh = HashMap::new();
        {
            let state = self.shared.lock();
            for key in wanted.keys().filter(|key| !state.listeners.contains_key(key)) {
                let addr = key.addr();
                let socket = listen::bind(addr).map_err(|source| StartError::Bind { addr, source })?;
                fresh.insert(*key, socket);
            }
        }
        let mut summary = ReloadSummary::default();
        self.shared.edge.slow_clients.set_limit(config_budget);
        let mut state = self.shared.lock();
        state.drain = generation.drain;
        state.origin = origin;
        let shutdown = state.shutdown.clone();
        let removed: Vec<ListenerKey> =
            state.listeners.keys().filter(|key| !wanted.contains_key(key)).copied().collect();
        for key in removed {
            if let Some(old) = state.listeners.remove(&key) {
                old.stop.cancel();
                summary.removed.push(old.local);
            }
        }
        for (key, (position, role)) in wanted {
            if let Some(socket) = fresh.remove(&key) {
                let mut listener = Listener {
                    position,
                    local: socket.local_addr().unwrap_or(key.addr()),
                    protocol: role.service.config.protocol,
                    role: watch::Sender::new(role),
                    stop: CancellationToken::new(),
                    socket: Some(socket),
                };
                if let Some(shutdown) = &shutdown {
                    self.shared.start(&mut listener, shutdown);
                }
                summary.added.push(listener.local);
                state.listeners.insert(key, listener);
            } else if let Some(listener) = state.listeners.get_mut(&key) {
                listener.position = position;
                listener.protocol = role.service.config.protocol;
                listener.role.send_replace(role);
                summary.kept.push(listener.local);
            }
        }
        drop(state);
        tracing::info!(kept = ?summary.kept, added = ?summary.added, removed = ?summary.removed, "configuration reloaded");
        self.shared.check_crams();
        Ok(summary)
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Logs, in the background, why CRAM-MD5 and APOP cannot work where `CRAMs` is on.
    fn check_crams(&self) {
        let mut services: Vec<Arc<Service>> = Vec::new();
        for listener in self.lock().listeners.values() {
            let service = listener.role.borrow().service.clone();
            for s in service.and_virtual_domains() {
                if s.config.auth.crams && !services.iter().any(|known| Arc::ptr_eq(known, &s)) {
                    services.push(s);
                }
            }
        }
        for service in services {
            tokio::spawn(async move {
                match service.crams_problem().await {
                    Some(problem @ crate::service::CramsProblem::Certain(_)) => tracing::error!("{problem}"),
                    Some(problem) => tracing::warn!("{problem}"),
                    None => {}
                }
            });
        }
    }

    /// Starts a listener's accept loop (once: it takes the socket).
    fn start(&self, listener: &mut Listener, shutdown: &CancellationToken) {
        let Some(socket) = listener.socket.take() else { return };
        let role = listener.role.subscribe();
        tracing::info!(
            protocol = listener.protocol.as_str(),
            addr = %listener.local,
            tls = role.borrow().implicit_tls,
            "listening"
        );
        // Stopped by shutdown or by a reload that removes it, whichever comes first.
        let stop = shutdown.child_token();
        let own = listener.stop.clone();
        let both = stop.clone();
        tokio::spawn(async move {
            own.cancelled().await;
            both.cancel();
        });
        tokio::spawn(listen::accept_loop(listen::Acceptor {
            listener: socket,
            role,
            edge: self.edge.clone(),
            stores: self.stores.clone(),
            metrics: self.metrics.clone(),
            registry: self.registry.clone(),
            sessions: self.sessions.clone(),
            shutdown: shutdown.clone(),
            stop,
            ids: self.ids.clone(),
        }));
    }
}

/// Builds the services of `config` (route caches kept from the generation before when their
/// parameters are the same).
fn build_generation(shared: &Shared, config: &Config) -> Result<Generation, StartError> {
    let mut listeners = Vec::new();
    let mut drain = Duration::ZERO;
    let mut ephemeral = HashMap::new();
    for svc in &config.services {
        let caches = caches_for(shared, svc);
        let service = Arc::new(Service::build(svc.clone(), &caches)?);
        for warning in &service.warnings {
            tracing::warn!("{warning}");
        }
        for s in service.and_virtual_domains() {
            s.note_configured_stores();
        }
        drain = drain.max(svc.shutdown_timeout);
        for addr in &svc.listeners {
            let key = if addr.port() == 0 {
                let nth = ephemeral.entry((*addr, svc.protocol)).or_insert(0usize);
                *nth += 1;
                ListenerKey::Ephemeral(*addr, svc.protocol, *nth)
            } else {
                ListenerKey::Fixed(*addr)
            };
            let implicit_tls = svc.tls.as_ref().is_some_and(|t| t.implicit_ports.contains(&addr.port()));
            listeners.push((key, Role { service: service.clone(), implicit_tls }));
        }
    }
    Ok(Generation { listeners, drain })
}

/// What a cache was sized and timed for: a reload that changes neither keeps it.
type CacheParams = ((u64, Duration), (u64, Duration));

/// The caches of a service: the ones the server holds when the service's parameters are
/// unchanged, else new ones.
fn caches_for(shared: &Shared, svc: &ServiceConfig) -> Caches {
    let params = (
        (svc.lookup.cache_size, svc.lookup.cache_ttl + svc.lookup.cache_max_stale),
        (svc.auth.cache_size, crate::service::auth_cache_keep(svc)),
    );
    let mut state = shared.lock();
    let kept = state.caches.get(&svc.protocol).map(|(kept, caches)| (*kept, caches.clone()));
    let caches = match kept {
        Some((kept, caches)) if kept == params => caches,
        Some((kept, caches)) => Caches {
            routes: if kept.0 == params.0 { caches.routes } else { directory::route_cache(svc) },
            proofs: if kept.1 == params.1 { caches.proofs } else { crate::service::auth_cache_for(svc) },
            metrics: caches.metrics,
            // What the stores said does not depend on the parameters.
            store_capabilities: caches.store_capabilities,
        },
        None => Caches::with_metrics(svc, shared.metrics.clone()),
    };
    state.caches.insert(svc.protocol, (params, caches.clone()));
    caches
}
