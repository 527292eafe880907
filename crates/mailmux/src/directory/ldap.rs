//! The LDAP directory: a few service-bound connections shared round-robin.
//!
//! `ldaps://` URLs and `LdapStartTLS` use the service's rustls configuration, which checks the
//! server's certificate against `LdapCAFile` with the URL's host as the name.
//!
//! Each slot holds one connection (ldap3 multiplexes concurrent operations over it).
//! A slot connects lazily, trying the `LdapURL` servers in order, and binds with
//! `BindDN`/`BindPass` (anonymously without them). When an operation fails at the transport
//! level the slot is emptied and the operation retried once on a fresh connection, which is
//! how a restarted or failed-over server is picked up. Every operation, connecting and
//! binding included, is bounded by `LdapTimeout`.
//!
//! A directory that stops answering must not become an outage of its own making:
//!
//! * no lock is held while connecting or searching: a slot's connection is cloned out from
//!   under a short synchronous lock; connecting is single-flight per slot, and the sessions
//!   waiting on it wait for that one attempt (at most `LdapTimeout`), not one each;
//! * a server that failed to connect or bind is *down* for [`DOWN_FOR`]: lookups skip it for
//!   the next `LdapURL`, or fail at once when every server is down, instead of each paying
//!   `LdapTimeout` again;
//! * a search asks for two entries at most: one is the answer, two mean the filter is
//!   ambiguous, and a broad filter cannot make the server send the whole tree.
//!
//! PreAuth binds as the user on connections of their own ([`BIND_POOL_SIZE`], opened
//! without `BindDN`): a bind changes who a connection is, so a search connection is never
//! bound as a user, and a bind connection is used by one bind at a time.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ldap3::{DerefAliases, Ldap, LdapConnAsync, LdapConnSettings, LdapError, SearchEntry, SearchOptions};
use mailmux_config::{DirectoryUrl, ServiceConfig};
use mailmux_proto::Secret;
use rustls::ClientConfig;
use tokio::time::Instant;

use super::{Aliases, Base, BoxFuture, Directory, DirectoryError, Entry, Query, Scope};

/// Connections per service. Lookups are short; a few connections keep one slow reply from
/// holding up the rest without opening a connection per session.
const POOL_SIZE: usize = 4;

/// Connections for PreAuth binds, per service.
pub const BIND_POOL_SIZE: usize = 4;

/// How long a server that failed to connect or bind is skipped.
pub const DOWN_FOR: Duration = Duration::from_secs(5);

/// A bind with a wrong password (or, for some servers, a DN that does not exist).
const INVALID_CREDENTIALS: u32 = 49;
/// Servers that refuse a bind outright (an empty password, a locked account) say this.
const UNWILLING_TO_PERFORM: u32 = 53;
/// A bind as a DN whose entry is gone, with servers that say so.
const INAPPROPRIATE_AUTHENTICATION: u32 = 48;

/// LDAP result codes that mean "no such entry" rather than trouble.
const NO_SUCH_OBJECT: u32 = 32;
/// More entries matched than the size limit of 2: the filter is ambiguous.
const SIZE_LIMIT_EXCEEDED: u32 = 4;
/// The server could not parse the filter: a configuration problem.
const FILTER_ERROR: u32 = 87;

/// One LDAP server and its search base.
#[derive(Debug)]
struct Server {
    url: String,
    base: String,
    /// Skipped until then after a failure to connect or bind.
    down_until: Mutex<Option<Instant>>,
}

impl Server {
    fn is_down(&self, now: Instant) -> bool {
        self.down_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_some_and(|t| now < t)
    }

    fn mark(&self, down: bool) {
        *self.down_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            down.then(|| Instant::now() + DOWN_FOR);
    }
}

/// A pooled connection, with the index of its server and a generation number, so that a
/// late failure of an old connection never empties the slot of the one that replaced it.
type Pooled = (Ldap, usize, u64);

/// One pooled connection: the connection (cloned out under a short lock) and the
/// single-flight guard of its (re)connection.
#[derive(Debug, Default)]
struct Slot {
    conn: Mutex<Option<Pooled>>,
    generation: AtomicU64,
    connecting: tokio::sync::Mutex<()>,
}

impl Slot {
    fn live(&self) -> Option<Pooled> {
        let mut conn = self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (ldap, server, generation) = conn.as_mut()?;
        // `is_closed` takes `&mut self` in ldap3.
        if ldap.is_closed() { None } else { Some((ldap.clone(), *server, *generation)) }
    }

    fn set(&self, ldap: Ldap, server: usize) -> Pooled {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        *self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((ldap.clone(), server, generation));
        (ldap, server, generation)
    }

    /// Empties the slot if it still holds connection `generation`.
    fn clear(&self, generation: u64) {
        let mut conn = self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if conn.as_ref().is_some_and(|(_, _, g)| *g == generation) {
            *conn = None;
        }
    }
}

/// An LDAP-backed directory.
#[derive(Debug)]
pub struct LdapDirectory {
    servers: Vec<Server>,
    bind: Option<(String, Secret)>,
    /// TLS for `ldaps://` servers and StartTLS, built once with the service.
    tls: Option<Arc<ClientConfig>>,
    /// `LdapStartTLS`: upgrade `ldap://` connections before binding.
    starttls: bool,
    timeout: Duration,
    slots: Vec<Slot>,
    next: AtomicUsize,
    /// PreAuth's connections (each with the index of its server), one bind at a time each.
    bind_slots: Vec<tokio::sync::Mutex<Option<(Ldap, usize)>>>,
    bind_next: AtomicUsize,
}

impl LdapDirectory {
    /// A directory for the `ldap://` URLs of a service (connections are opened on first use).
    pub fn new(svc: &ServiceConfig, tls: Option<Arc<ClientConfig>>) -> LdapDirectory {
        let servers = svc
            .directory
            .iter()
            .filter_map(|u| match u {
                DirectoryUrl::Ldap { server, base } => {
                    Some(Server { url: server.clone(), base: base.clone(), down_until: Mutex::default() })
                }
                DirectoryUrl::Ldif { .. } => None,
            })
            .collect();
        let bind = match (&svc.bind_dn, &svc.bind_pass) {
            (Some(dn), Some(pw)) => Some((dn.clone(), pw.clone())),
            _ => None,
        };
        LdapDirectory {
            servers,
            bind,
            tls,
            starttls: svc.ldap_starttls,
            timeout: svc.ldap_timeout,
            slots: (0..POOL_SIZE).map(|_| Slot::default()).collect(),
            next: AtomicUsize::new(0),
            bind_slots: (0..BIND_POOL_SIZE).map(|_| tokio::sync::Mutex::new(None)).collect(),
            bind_next: AtomicUsize::new(0),
        }
    }

    /// A bound connection for `slot`, the index of its server, and its generation.
    async fn connection(&self, slot: usize) -> Result<Pooled, DirectoryError> {
        let slot = &self.slots[slot];
        if let Some(live) = slot.live() {
            return Ok(live);
        }
        // One connection attempt per slot at a time; the others wait for its outcome.
        let _connecting = slot.connecting.lock().await;
        if let Some(live) = slot.live() {
            return Ok(live);
        }
        let (ldap, index) = self.open(true).await?;
        Ok(slot.set(ldap, index))
    }

    /// A new connection to the first server that is not down, bound as `BindDN` when
    /// `as_bind_dn` (PreAuth's connections are not), and the index of its server.
    async fn open(&self, as_bind_dn: bool) -> Result<(Ldap, usize), DirectoryError> {
        let mut last_error = String::from("no LDAP server configured");
        let now = Instant::now();
        for (index, server) in self.servers.iter().enumerate() {
            if server.is_down(now) {
                last_error = format!("{}: down (failed within the last {} s)", server.url, DOWN_FOR.as_secs());
                continue;
            }
            match tokio::time::timeout(self.timeout, self.connect(server, as_bind_dn)).await {
                Ok(Ok(ldap)) => {
                    server.mark(false);
                    return Ok((ldap, index));
                }
                Ok(Err(e)) => last_error = format!("{}: {e}", server.url),
                Err(_) => last_error = format!("{}: no answer within {} s", server.url, self.timeout.as_secs()),
            }
            server.mark(true);
            tracing::warn!(error = %last_error, "LDAP server unusable; skipping it for {} s", DOWN_FOR.as_secs());
        }
        Err(DirectoryError::Unavailable(last_error))
    }

    async fn connect(&self, server: &Server, as_bind_dn: bool) -> Result<Ldap, String> {
        let mut settings = LdapConnSettings::new().set_conn_timeout(self.timeout);
        if let Some(config) = &self.tls {
            // Our own configuration: the ring provider and LdapCAFile, never ldap3's defaults.
            settings =
                settings.set_config(config.clone()).set_starttls(self.starttls && server.url.starts_with("ldap://"));
        }
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &server.url).await.map_err(|e| e.to_string())?;
        ldap3::drive!(conn);
        if let Some((dn, pw)) = self.bind.as_ref().filter(|_| as_bind_dn) {
            let pw = std::str::from_utf8(pw.expose()).map_err(|_| "BindPass is not UTF-8".to_owned())?;
            ldap.with_timeout(self.timeout)
                .simple_bind(dn, pw)
                .await
                .and_then(|r| r.success())
                .map_err(|e| format!("bind as {dn} failed: {e}"))?;
        }
        Ok(ldap)
    }

    async fn search_once(&self, slot: usize, query: &Query<'_>) -> Result<Option<Entry>, Failure> {
        let (mut ldap, server, generation) = self.connection(slot).await.map_err(Failure::Final)?;
        let base = match &query.base {
            Base::Configured => self.servers[server].base.as_str(),
            Base::Dn(dn) => dn.as_str(),
        };
        let scope = match query.scope {
            Scope::Base => ldap3::Scope::Base,
            Scope::Subtree => ldap3::Scope::Subtree,
        };
        let result = ldap
            .with_timeout(self.timeout)
            .with_search_options(SearchOptions::new().sizelimit(2).deref(match query.aliases {
                Aliases::AtBase => DerefAliases::Finding,
                Aliases::Everywhere => DerefAliases::Always,
            }))
            .search(base, scope, query.filter, query.attrs)
            .await;
        let (entries, res) = match result {
            Ok(r) => (r.0, r.1),
            // A server that takes a search and does not answer is as good as down: retrying
            // would cost every login another LdapTimeout.
            Err(LdapError::Timeout { .. }) => {
                self.slots[slot].clear(generation);
                self.servers[server].mark(true);
                tracing::warn!(server = %self.servers[server].url, "LDAP search unanswered; skipping the server for {} s", DOWN_FOR.as_secs());
                return Err(Failure::Final(DirectoryError::Unavailable(format!(
                    "{}: no answer within {} s",
                    self.servers[server].url,
                    self.timeout.as_secs()
                ))));
            }
            Err(e) => {
                self.slots[slot].clear(generation);
                return Err(Failure::Transport(e));
            }
        };
        match res.rc {
            0 => {}
            NO_SUCH_OBJECT => return Ok(None),
            SIZE_LIMIT_EXCEEDED => return Err(Failure::Final(DirectoryError::Ambiguous(entries.len()))),
            FILTER_ERROR => return Err(Failure::Final(DirectoryError::Rejected(res.text))),
            rc => {
                return Err(Failure::Final(DirectoryError::Unavailable(format!(
                    "search failed with result code {rc}: {}",
                    res.text
                ))));
            }
        }
        if entries.len() > 1 {
            return Err(Failure::Final(DirectoryError::Ambiguous(entries.len())));
        }
        Ok(entries.into_iter().next().map(|re| {
            let se = SearchEntry::construct(re);
            let mut entry = Entry::new(&se.dn, []);
            for (name, values) in se.attrs {
                for v in values {
                    entry.push(&name, v);
                }
            }
            for (name, values) in se.bin_attrs {
                for v in values {
                    entry.push_binary(&name, v);
                }
            }
            entry
        }))
    }

    async fn search(&self, query: Query<'_>) -> Result<Option<Entry>, DirectoryError> {
        let slot = self.next.fetch_add(1, Ordering::Relaxed) % POOL_SIZE;
        match self.search_once(slot, &query).await {
            Ok(found) => Ok(found),
            Err(Failure::Final(e)) => Err(e),
            Err(Failure::Transport(first)) => {
                tracing::debug!(error = %first, "LDAP connection failed; reconnecting");
                match self.search_once(slot, &query).await {
                    Ok(found) => Ok(found),
                    Err(Failure::Final(e)) => Err(e),
                    Err(Failure::Transport(e)) => Err(DirectoryError::Unavailable(e.to_string())),
                }
            }
        }
    }
}

impl LdapDirectory {
    /// PreAuth: a simple bind as `dn` with `password`, on a bind connection.
    async fn bind_as(&self, dn: &str, password: &Secret) -> Result<bool, DirectoryError> {
        // An empty password makes a simple bind an unauthenticated one (RFC 4513 5.1.2),
        // which servers accept: it proves nothing.
        let Ok(password) = std::str::from_utf8(password.expose()) else {
            tracing::debug!(%dn, "password is not UTF-8; an LDAP simple bind cannot carry it");
            return Ok(false);
        };
        if password.is_empty() || dn.is_empty() {
            return Ok(false);
        }
        // A free connection if there is one; else wait for the next in turn.
        let start = self.bind_next.fetch_add(1, Ordering::Relaxed);
        let slots = &self.bind_slots;
        let free = (0..slots.len()).find_map(|i| slots[(start + i) % slots.len()].try_lock().ok());
        let mut slot = match free {
            Some(slot) => slot,
            None => slots[start % slots.len()].lock().await,
        };
        for attempt in 0..2 {
            let (mut ldap, server) = match slot.take() {
                Some(live) => live,
                None => self.open(false).await?,
            };
            match ldap.with_timeout(self.timeout).simple_bind(dn, password).await {
                Ok(result) => {
                    *slot = Some((ldap, server));
                    return match result.rc {
                        0 => Ok(true),
                        INVALID_CREDENTIALS | UNWILLING_TO_PERFORM | INAPPROPRIATE_AUTHENTICATION => Ok(false),
                        rc => Err(DirectoryError::Unavailable(format!(
                            "bind as the user failed with result code {rc}: {}",
                            result.text
                        ))),
                    };
                }
                Err(LdapError::Timeout { .. }) => {
                    self.servers[server].mark(true);
                    return Err(DirectoryError::Unavailable(format!(
                        "{}: bind unanswered within {} s",
                        self.servers[server].url,
                        self.timeout.as_secs()
                    )));
                }
                // The connection broke (a restarted server): once more on a new one.
                Err(e) if attempt == 0 => tracing::debug!(error = %e, "LDAP bind connection failed; reconnecting"),
                Err(e) => return Err(DirectoryError::Unavailable(e.to_string())),
            }
        }
        Err(DirectoryError::Unavailable("bind connection failed twice".into()))
    }
}

enum Failure {
    /// The connection broke: worth one retry on a new connection.
    Transport(LdapError),
    /// An answer (or no server at all): retrying will not help.
    Final(DirectoryError),
}

impl Directory for LdapDirectory {
    fn find<'a>(&'a self, query: Query<'a>) -> BoxFuture<'a, Result<Option<Entry>, DirectoryError>> {
        Box::pin(self.search(query))
    }

    fn authenticate<'a>(&'a self, dn: &'a str, password: &'a Secret) -> BoxFuture<'a, Result<bool, DirectoryError>> {
        Box::pin(self.bind_as(dn, password))
    }
}
