//! Finding a user's entry: the [`Directory`] trait and its two implementations.
//!
//! * [`ldap::LdapDirectory`] searches an LDAP server (production);
//! * [`ldif::LdifDirectory`] evaluates the same filters over an LDIF file held in memory
//!   (trying mailmux without an LDAP server, small sites, tests).
//!
//! Both take the filter built from `SearchFormat`, with every user-supplied value already
//! escaped (RFC 4515), and return at most one entry: a filter that matches several entries
//! is an error, because routing one login to an arbitrary store would be worse than refusing it.

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
}

impl Entry {
    /// Builds an entry from attribute/value pairs (names are lower-cased).
    pub fn new<'a>(dn: &str, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Entry {
        let mut entry = Entry { dn: dn.to_owned(), attrs: HashMap::new() };
        for (name, value) in pairs {
            entry.push(name, value.to_owned());
        }
        entry
    }

    /// Adds a value.
    pub fn push(&mut self, name: &str, value: String) {
        self.attrs.entry(name.to_ascii_lowercase()).or_default().push(value);
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

/// Where users are found.
pub trait Directory: Send + Sync + std::fmt::Debug {
    /// Finds the one entry matching `filter`, fetching `attrs` (lower-cased names).
    fn find_user<'a>(
        &'a self,
        filter: &'a str,
        attrs: &'a [String],
    ) -> BoxFuture<'a, Result<Option<Entry>, DirectoryError>>;
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

/// Builds the directory a service's `LdapURL` names.
pub fn from_config(svc: &ServiceConfig) -> Result<Arc<dyn Directory>, DirectorySetupError> {
    let ldif: Vec<_> = svc
        .directory
        .iter()
        .filter_map(|u| match u {
            DirectoryUrl::Ldif { path, base } => Some((path, base)),
            DirectoryUrl::Ldap { .. } => None,
        })
        .collect();
    if ldif.is_empty() {
        return Ok(Arc::new(ldap::LdapDirectory::new(svc)));
    }
    if ldif.len() != svc.directory.len() {
        return Err(DirectorySetupError::Mixed);
    }
    let (path, base) = ldif[0];
    let dir = ldif::LdifDirectory::load(path, base).map_err(DirectorySetupError::Ldif)?;
    Ok(Arc::new(dir))
}
