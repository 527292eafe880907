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

use mailmux_config::{Config, Protocol, ServiceConfig};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::{Edge, budget};
use crate::directory::cache::RouteCache;
use crate::directory::{self, Directory};
use crate::listen;
use crate::store::health::StoreHealth;
use crate::tls::{self, TlsSetupError};

/// One service of one configuration generation: what every session of it shares.
pub struct Service {
    /// The service's parameters.
    pub config: ServiceConfig,
    /// Where users are found.
    pub directory: Arc<dyn Directory>,
    /// Attributes a user search asks for: the mail-host attributes and those `ReplayFormat` uses.
    pub search_attrs: Vec<String>,
    /// TLS toward clients, built once for this configuration generation.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// TLS toward stores, built once for this configuration generation.
    pub store_tls: Option<tokio_rustls::TlsConnector>,
    /// What the operator should know about this service that did not stop it: logged at
    /// start-up, printed by `mailmux check`.
    pub warnings: Vec<String>,
    /// The vdmap entries: connections arriving on these addresses are served by these.
    pub virtual_domains: Vec<VirtualService>,
}

/// A vdmap entry, built: the service as configured for one local address.
#[derive(Debug)]
pub struct VirtualService {
    /// The entry's name, for logs.
    pub name: String,
    /// The mailmux address its clients connect to (IPv4-mapped addresses stored as IPv4).
    pub address: std::net::IpAddr,
    /// Everything its sessions use.
    pub service: Arc<Service>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // rustls acceptors and connectors do not print; say whether they are there.
        f.debug_struct("Service")
            .field("config", &self.config)
            .field("directory", &self.directory)
            .field("search_attrs", &self.search_attrs)
            .field("tls", &self.tls.is_some())
            .field("store_tls", &self.store_tls.is_some())
            .field("warnings", &self.warnings)
            .field("virtual_domains", &self.virtual_domains)
            .finish()
    }
}

/// Start-up failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A directory could not be set up.
    #[error("{file}: {source}")]
    Directory {
        /// The service file.
        file: String,
        /// Why.
        source: directory::DirectorySetupError,
    },
    /// A TLS configuration could not be built.
    #[error("{file}: {source}")]
    Tls {
        /// The service file.
        file: String,
        /// Why.
        source: TlsSetupError,
    },
    /// A listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

impl Service {
    /// Builds the shared state of a service (reads LDIF files; opens no connection). Its
    /// directory answers are cached in `cache`, which outlives the service.
    pub fn build(config: ServiceConfig, cache: &Arc<RouteCache>) -> Result<Service, StartError> {
        let directory_tls = tls::directory_config(&config)
            .map_err(|source| StartError::Tls { file: config.file.display().to_string(), source })?;
        let directory = directory::from_config(&config, directory_tls, cache)
            .map_err(|source| StartError::Directory { file: config.file.display().to_string(), source })?;
        let search_attrs = search_attrs_of(&config);
        let file = config.file.display().to_string();
        let tls_error = |source| StartError::Tls { file: file.clone(), source };
        let mut warnings = Vec::new();
        let tls = match &config.tls {
            Some(settings) => {
                let (server_config, unknown) = tls::server_config(settings).map_err(tls_error)?;
                if !unknown.is_empty() {
                    warnings.push(format!(
                        "{file}: SSLCipherSpecs names suites mailmux does not know, ignored: {}",
                        unknown.join(" ")
                    ));
                }
                Some(tls::acceptor(&server_config))
            }
            None => None,
        };
        let store_tls = tls::store_connector(&config.store_tls).map_err(tls_error)?;
        if store_tls.is_some() && !config.store_tls.verify {
            warnings.push(format!("{file}: SSLBacksideVerify no: store certificates are not verified"));
        }
        let mut virtual_domains = Vec::new();
        for domain in &config.virtual_domains {
            let vd = &domain.config;
            // An entry that reaches the same directory the same way shares its connections
            // and route cache; one with its own LdapURL or BindDN gets its own.
            let same_directory = vd.directory == config.directory
                && vd.bind_dn == config.bind_dn
                && vd.bind_pass == config.bind_pass
                && vd.lookup.cache_size == config.lookup.cache_size
                && vd.lookup.cache_ttl == config.lookup.cache_ttl
                && vd.lookup.cache_max_stale == config.lookup.cache_max_stale;
            let directory = if same_directory {
                directory.clone()
            } else {
                let directory_tls = tls::directory_config(vd).map_err(tls_error)?;
                directory::from_config(vd, directory_tls, &directory::route_cache(vd)).map_err(|source| {
                    StartError::Directory { file: format!("{file} (vdmap {})", domain.name), source }
                })?
            };
            let service = Service {
                config: (**vd).clone(),
                directory,
                search_attrs: search_attrs_of(vd),
                tls: tls.clone(),
                store_tls: store_tls.clone(),
                warnings: Vec::new(),
                virtual_domains: Vec::new(),
            };
            virtual_domains.push(VirtualService {
                name: domain.name.clone(),
                address: domain.address,
                service: Arc::new(service),
            });
        }
        Ok(Service { config, directory, search_attrs, tls, store_tls, warnings, virtual_domains })
    }

    /// The service for connections that arrived on `local`: a vdmap entry's, or this one.
    pub fn for_local_address(self: &Arc<Self>, local: std::net::IpAddr) -> (Arc<Service>, Option<&str>) {
        let local = local.to_canonical();
        match self.virtual_domains.iter().find(|d| d.address == local) {
            Some(d) => (d.service.clone(), Some(d.name.as_str())),
            None => (self.clone(), None),
        }
    }
}

/// Attributes a user search asks for: the mail-host attributes, those `ReplayFormat` uses,
/// the user's access filter and status.
fn search_attrs_of(config: &ServiceConfig) -> Vec<String> {
    let mut search_attrs = config.mail_host_attrs.clone();
    let always = [config.edge.tcp_access_attr.as_str(), "inetuserstatus", "mailuserstatus"];
    for attr in config.replay_format.attributes().chain(always) {
        if !search_attrs.iter().any(|a| a == attr) {
            search_attrs.push(attr.to_owned());
        }
    }
    search_attrs
}

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
