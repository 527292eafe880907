//! One service of one configuration generation: everything its sessions share, built
//! once from its [`ServiceConfig`] (directory clients, TLS configurations, vdmap entries).
//!
//! A session holds the `Arc<Service>` it started with for its whole life, so a reload that
//! builds new services never changes a session in progress.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mailmux_config::ServiceConfig;

use crate::control::metrics::Metrics;
use crate::directory::auth_cache::AuthCache;
use crate::directory::cache::RouteCache;
use crate::directory::{self, Directory};
use crate::route::StoreAddr;
use crate::store::capabilities::{ProbeSetup, StoreCapabilities};
use crate::tls::{self, TlsSetupError};

/// One service of one configuration generation: what every session of it shares.
pub struct Service {
    /// The service's parameters.
    pub config: ServiceConfig,
    /// Where users are found.
    pub directory: Arc<dyn Directory>,
    /// Which directory that is (its URLs and bind identity): the AuthCache keys proofs by it.
    pub directory_key: String,
    /// Successful pre-authentications, shared with the vdmap entries and kept across reloads.
    pub auth_cache: Arc<AuthCache>,
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
    /// What the stores of this protocol offer before login, shared with every generation.
    pub store_capabilities: Arc<StoreCapabilities>,
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
            .field("auth_cache", &self.auth_cache)
            .field("search_attrs", &self.search_attrs)
            .field("tls", &self.tls.is_some())
            .field("store_tls", &self.store_tls.is_some())
            .field("warnings", &self.warnings)
            .field("virtual_domains", &self.virtual_domains)
            .field("store_capabilities", &self.store_capabilities)
            .finish()
    }
}

/// Why CRAM-MD5 and APOP cannot work ([`Service::crams_problem`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CramsProblem {
    /// The directory answered: they cannot.
    Certain(String),
    /// The directory could not be asked.
    Unknown(String),
}

impl std::fmt::Display for CramsProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CramsProblem::Certain(text) | CramsProblem::Unknown(text) => f.write_str(text),
        }
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
    /// A reload could not run to its end.
    #[error("reload failed: {0}")]
    Reload(String),
    /// A metrics or admin endpoint could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Control {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
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

/// What a service keeps across reloads: owned by the server, lent to each generation.
#[derive(Debug, Clone)]
pub struct Caches {
    /// Directory answers (`LdapCache*`).
    pub routes: Arc<RouteCache>,
    /// Successful pre-authentications (`AuthCache*`).
    pub proofs: Arc<AuthCache>,
    /// The server's metrics, which the directory's timings and the cache's hits go to.
    pub metrics: Arc<Metrics>,
    /// What the stores offer before login, learned from them; never replaced by a reload.
    pub store_capabilities: Arc<StoreCapabilities>,
}

impl Caches {
    /// New caches sized and timed for `config` (and its vdmap entries), with metrics of
    /// their own (`mailmux check`).
    pub fn for_config(config: &ServiceConfig) -> Caches {
        Caches::with_metrics(config, Metrics::new())
    }

    /// New caches for `config`, counting into `metrics`.
    pub fn with_metrics(config: &ServiceConfig, metrics: Arc<Metrics>) -> Caches {
        Caches {
            routes: directory::route_cache(config),
            proofs: auth_cache_for(config),
            metrics,
            store_capabilities: StoreCapabilities::new(config.protocol),
        }
    }
}

/// An AuthCache for a service, sized by the service's `AuthCacheSize`.
pub fn auth_cache_for(config: &ServiceConfig) -> Arc<AuthCache> {
    AuthCache::new(config.auth.cache_size, auth_cache_keep(config))
}

/// How long an AuthCache keeps a proof: the longest `AuthCacheTTL` of the service and its
/// vdmap entries (each lookup applies its own).
pub fn auth_cache_keep(config: &ServiceConfig) -> Duration {
    config.virtual_domains.iter().map(|d| d.config.auth.cache_ttl).fold(config.auth.cache_ttl, Duration::max)
}

/// Which directory a configuration reaches, and as whom.
fn directory_key(config: &ServiceConfig) -> String {
    format!("{:?} {:?}", config.directory, config.bind_dn)
}

impl Service {
    /// Builds the shared state of a service (reads LDIF files; opens no connection). Its
    /// directory answers and proofs are kept in `caches`, which outlive the service.
    pub fn build(config: ServiceConfig, caches: &Caches) -> Result<Service, StartError> {
        let directory_tls = tls::directory_config(&config)
            .map_err(|source| StartError::Tls { file: config.file.display().to_string(), source })?;
        let directory = directory::from_config(&config, directory_tls, &caches.routes, &caches.metrics)
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
                directory::from_config(vd, directory_tls, &directory::route_cache(vd), &caches.metrics).map_err(
                    |source| StartError::Directory { file: format!("{file} (vdmap {})", domain.name), source },
                )?
            };
            let service = Service {
                directory_key: directory_key(vd),
                auth_cache: caches.proofs.clone(),
                config: (**vd).clone(),
                directory,
                search_attrs: search_attrs_of(vd),
                tls: tls.clone(),
                store_tls: store_tls.clone(),
                warnings: Vec::new(),
                virtual_domains: Vec::new(),
                store_capabilities: caches.store_capabilities.clone(),
            };
            virtual_domains.push(VirtualService {
                name: domain.name.clone(),
                address: domain.address,
                service: Arc::new(service),
            });
        }
        Ok(Service {
            directory_key: directory_key(&config),
            auth_cache: caches.proofs.clone(),
            config,
            directory,
            search_attrs,
            tls,
            store_tls,
            warnings,
            virtual_domains,
            store_capabilities: caches.store_capabilities.clone(),
        })
    }

    /// The IMAP capabilities advertised before login (without what the connection adds):
    /// `Capability` if set, else what the stores share, else mailmux's own.
    pub fn imap_capabilities(&self) -> String {
        if let Some(configured) = &self.config.capability {
            return configured.clone();
        }
        match self.store_capabilities.advertised() {
            Some(items) => items.join(" "),
            None => mailmux_config::service::DEFAULT_IMAP_CAPABILITY.to_owned(),
        }
    }

    /// The POP3 CAPA lines the stores share (before mailmux's own).
    pub fn pop3_capabilities(&self) -> Vec<String> {
        self.store_capabilities.advertised().map(|items| items.to_vec()).unwrap_or_default()
    }

    /// Whether this service advertises what its stores offer (everything but IMAP with
    /// `Capability` set).
    pub fn learns_capabilities(&self) -> bool {
        self.config.protocol == mailmux_config::Protocol::Pop3 || self.config.capability.is_none()
    }

    /// How this service reaches a store for a capability probe.
    pub fn probe_setup(&self) -> ProbeSetup {
        ProbeSetup {
            tls_mode: self.config.store_tls.mode,
            connector: self.store_tls.clone(),
            timeout: self.config.backside_timeout,
        }
    }

    /// Makes `stores` known to the capability learning (configured or routed to).
    pub fn note_stores<'a>(&self, stores: impl IntoIterator<Item = &'a StoreAddr>) {
        if !self.learns_capabilities() {
            return;
        }
        self.store_capabilities.note(stores, &self.probe_setup());
    }

    /// The `CapabilityStores` of this service (their ports defaulted as for `mailHost`),
    /// made known; the refresh interval set. Called for each new generation by the server.
    pub fn note_configured_stores(&self) {
        if !self.learns_capabilities() {
            return;
        }
        self.store_capabilities.set_refresh(self.config.capability_learning.refresh);
        let port = self.config.store_port();
        let stores: Vec<StoreAddr> = self
            .config
            .capability_learning
            .stores
            .iter()
            .filter_map(|s| crate::route::parse_mail_host(s, port))
            .collect();
        self.note_stores(&stores);
    }

    /// With `CRAMs yes`, what keeps CRAM-MD5 and APOP from working, if anything: `BindDN`
    /// cannot read `userPassword`, or the passwords are hashed. Said at start-up, at reload
    /// and by `mailmux check`, rather than by each user's failed login.
    pub async fn crams_problem(&self) -> Option<CramsProblem> {
        if !self.config.auth.crams {
            return None;
        }
        let file = self.config.file.display();
        let who = self.config.bind_dn.as_deref().unwrap_or("an anonymous bind");
        match self.directory.password_probe(self.config.bind_dn.as_deref()).await {
            Ok(directory::PasswordProbe::Readable) => None,
            Ok(directory::PasswordProbe::HashedOnly) => Some(CramsProblem::Certain(format!(
                "{file}: CRAMs yes, but userPassword is hashed: CRAM-MD5 and APOP need passwords stored in clear"
            ))),
            Ok(directory::PasswordProbe::Hidden) => Some(CramsProblem::Certain(format!(
                "{file}: CRAMs yes, but {who} cannot read userPassword: CRAM-MD5 and APOP logins will fail \
                 (give BindDN read access to userPassword, or turn CRAMs off)"
            ))),
            Err(e) => Some(CramsProblem::Unknown(format!(
                "{file}: CRAMs yes, but whether {who} can read userPassword is unknown: {e}"
            ))),
        }
    }

    /// This service and those of its vdmap entries.
    pub fn and_virtual_domains(self: &Arc<Self>) -> impl Iterator<Item = Arc<Service>> + '_ {
        std::iter::once(self.clone()).chain(self.virtual_domains.iter().map(|d| d.service.clone()))
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
