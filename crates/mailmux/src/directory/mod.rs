//! Finding a user's entry: the [`Directory`] trait and its two implementations.
//!
//! * [`ldap::LdapDirectory`] searches an LDAP server (production);
//! * [`ldif::LdifDirectory`] evaluates the same filters over an LDIF file held in memory
//!   (trying mailmux without an LDAP server, small sites, tests);
//! * [`cache::CachedDirectory`] puts the route cache (`LdapCache*`) in front of either.
//!
//! Both take the filter built from `SearchFormat`, with every user-supplied value already
//! escaped (RFC 4515), and return at most one entry: a filter that matches several entries
//! is an error, because routing one login to an arbitrary store would be worse than refusing it.

pub mod cache;
pub mod ldap;
pub mod ldif;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use mailmux_config::{DirectoryUrl, ServiceConfig};

/// An entry: its DN and attributes (names lower-cased).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    /// Distinguished name.
    pub dn: String,
    attrs: HashMap<String, Vec<String>>,
    /// Values that are not text (`userCertificate;binary`), under the name without options.
    binary: HashMap<String, Vec<Vec<u8>>>,
}

impl Entry {
    /// Builds an entry from attribute/value pairs (names are lower-cased).
    pub fn new<'a>(dn: &str, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Entry {
        let mut entry = Entry { dn: dn.to_owned(), ..Entry::default() };
        for (name, value) in pairs {
            entry.push(name, value.to_owned());
        }
        entry
    }

    /// Adds a value.
    pub fn push(&mut self, name: &str, value: String) {
        self.attrs.entry(name.to_ascii_lowercase()).or_default().push(value);
    }

    /// Adds a binary value; attribute options (`;binary`) are dropped from the name.
    pub fn push_binary(&mut self, name: &str, value: Vec<u8>) {
        let base = name.split(';').next().unwrap_or(name).to_ascii_lowercase();
        self.binary.entry(base).or_default().push(value);
    }

    /// The binary values of an attribute (name lower-cased, without options).
    pub fn binary_values(&self, name: &str) -> &[Vec<u8>] {
        self.binary.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every text attribute with its values.
    pub fn attrs(&self) -> impl Iterator<Item = (&String, &Vec<String>)> {
        self.attrs.iter()
    }

    /// All values of an attribute (name lower-cased).
    pub fn values(&self, name: &str) -> &[String] {
        self.attrs.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The first value of an attribute (name lower-cased).
    pub fn first(&self, name: &str) -> Option<&str> {
        self.values(name).first().map(String::as_str)
    }
}

/// Why a lookup has no answer. None of these means "wrong password".
#[derive(Debug, Clone, thiserror::Error)]
pub enum DirectoryError {
    /// No server could be reached or it did not answer in time.
    #[error("directory unavailable: {0}")]
    Unavailable(String),
    /// The filter matched more than one entry.
    #[error("filter matched {0} entries")]
    Ambiguous(usize),
    /// The server rejected the filter (a bad `SearchFormat`).
    #[error("directory rejected the search: {0}")]
    Rejected(String),
}

/// A boxed future, so the trait can be used as `dyn Directory`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a search starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// The base DN of the `LdapURL` (or of the LDIF URL).
    Configured,
    /// This DN (certificate mapping).
    Dn(String),
}

/// How far below the base a search looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The base entry only.
    Base,
    /// The base and everything below it.
    Subtree,
}

/// One search for one entry.
#[derive(Debug, Clone)]
pub struct Query<'a> {
    /// Where to start.
    pub base: Base,
    /// How deep.
    pub scope: Scope,
    /// RFC 4515 filter, user values already escaped.
    pub filter: &'a str,
    /// Attributes to fetch (lower-cased names).
    pub attrs: &'a [String],
}

/// Where users are found.
pub trait Directory: Send + Sync + std::fmt::Debug {
    /// Finds the one entry a query matches.
    fn find<'a>(&'a self, query: Query<'a>) -> BoxFuture<'a, Result<Option<Entry>, DirectoryError>>;

    /// Like [`Directory::find`], the entry shared rather than copied (the cache keeps one copy
    /// for every login that needs it).
    fn find_shared<'a>(&'a self, query: Query<'a>) -> BoxFuture<'a, Result<Option<Arc<Entry>>, DirectoryError>> {
        Box::pin(async move { self.find(query).await.map(|found| found.map(Arc::new)) })
    }

    /// Finds the one entry matching `filter` below the configured base (a login's search).
    fn find_user<'a>(
        &'a self,
        filter: &'a str,
        attrs: &'a [String],
    ) -> BoxFuture<'a, Result<Option<Entry>, DirectoryError>> {
        self.find(Query { base: Base::Configured, scope: Scope::Subtree, filter, attrs })
    }
}

/// A directory could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DirectorySetupError {
    /// The LDIF file could not be read or parsed.
    #[error("{0}")]
    Ldif(String),
    /// `LdapURL` mixes `ldap://` and `ldif:`.
    #[error("LdapURL mixes ldap:// and ldif: entries; use one kind")]
    Mixed,
}

/// Builds the directory a service's `LdapURL` names, with the route cache in front when
/// `LdapCacheSize` is not 0 (its answers kept in `cache`, which outlives the directory).
pub fn from_config(
    svc: &ServiceConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    cache: &Arc<cache::RouteCache>,
) -> Result<Arc<dyn Directory>, DirectorySetupError> {
    let directory = uncached(svc, tls)?;
    if svc.lookup.cache_size == 0 {
        return Ok(directory);
    }
    Ok(Arc::new(cache::CachedDirectory::new(
        directory,
        cache.clone(),
        svc.lookup.cache_ttl,
        svc.lookup.cache_max_stale,
    )))
}

/// The route cache a service's directory needs (sized and timed by its `LdapCache*`).
pub fn route_cache(svc: &ServiceConfig) -> Arc<cache::RouteCache> {
    cache::RouteCache::new(svc.lookup.cache_size, svc.lookup.cache_ttl + svc.lookup.cache_max_stale)
}

fn uncached(
    svc: &ServiceConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Arc<dyn Directory>, DirectorySetupError> {
    let ldif: Vec<_> = svc
        .directory
        .iter()
        .filter_map(|u| match u {
            DirectoryUrl::Ldif { path, base } => Some((path, base)),
            DirectoryUrl::Ldap { .. } => None,
        })
        .collect();
    if ldif.is_empty() {
        return Ok(Arc::new(ldap::LdapDirectory::new(svc, tls)));
    }
    if ldif.len() != svc.directory.len() {
        return Err(DirectorySetupError::Mixed);
    }
    let (path, base) = ldif[0];
    let dir = ldif::LdifDirectory::load(path, base).map_err(DirectorySetupError::Ldif)?;
    Ok(Arc::new(dir))
}
