//! Finding a user's entry: the [`Directory`] trait and its two implementations.
//!
//! * [`ldap::LdapDirectory`] searches an LDAP server (production);
//! * [`ldif::LdifDirectory`] evaluates the same filters over an LDIF file held in memory
//!   (trying mailmux without an LDAP server, small sites, tests);
//! * [`cache::CachedDirectory`] puts the route cache (`LdapCache*`) in front of either;
//! * [`metered::MeteredDirectory`], under the cache, times what the directory itself costs.
//!
//! Both take the filter built from `SearchFormat`, with every user-supplied value already
//! escaped (RFC 4515), and return at most one entry: a filter that matches several entries
//! is an error, because routing one login to an arbitrary store would be worse than refusing it.

pub mod auth_cache;
pub mod cache;
pub mod ldap;
pub mod ldif;
pub mod metered;
pub mod password;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use mailmux_config::{DirectoryUrl, ServiceConfig};
use mailmux_proto::{Secret, ldap_filter};

use crate::control::metrics::Metrics;

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

    /// The entry as an LDAP server answers a search for `wanted` (names in any case, options
    /// such as `;binary` ignored): only those attributes, or all of them when none is named or
    /// `*` is. The LDIF directory answers this way too, so what works on LDIF works on LDAP,
    /// and a cached route holds what routing needs, not the whole entry.
    pub fn selected(&self, wanted: &[String]) -> Entry {
        if wanted.is_empty() || wanted.iter().any(|a| a == "*") {
            return self.clone();
        }
        let base = |name: &str| name.split(';').next().unwrap_or(name).to_ascii_lowercase();
        let wanted: Vec<String> = wanted.iter().map(|a| base(a)).collect();
        let keep = |name: &String| wanted.contains(&base(name));
        Entry {
            dn: self.dn.clone(),
            attrs: self.attrs.iter().filter(|(k, _)| keep(k)).map(|(k, v)| (k.clone(), v.clone())).collect(),
            binary: self.binary.iter().filter(|(k, _)| keep(k)).map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
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
    /// Which alias entries the server follows.
    pub aliases: Aliases,
}

/// Which alias entries a search follows (LDAP's `derefAliases`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aliases {
    /// Only an alias named as the base (`derefFindingBaseObj`): user and password searches.
    /// Following aliases everywhere makes slapd look for aliases in the whole scope of every
    /// search: cold logins against slapd were a fifth slower for it.
    AtBase,
    /// Aliases anywhere in the scope (`derefAlways`): the hosted-domain search, which reaches
    /// Schema 2 domains through alias nodes of the DC tree.
    Everywhere,
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

    /// Whether the route cache holds the answer to `query`, without asking the directory
    /// (`mailmux admin explain`).
    fn peek(&self, _query: &Query<'_>) -> CacheState {
        CacheState::NoCache
    }

    /// Finds the one entry matching `filter` below the configured base (a login's search).
    fn find_user<'a>(
        &'a self,
        filter: &'a str,
        attrs: &'a [String],
    ) -> BoxFuture<'a, Result<Option<Entry>, DirectoryError>> {
        self.find(Query { base: Base::Configured, scope: Scope::Subtree, filter, attrs, aliases: Aliases::AtBase })
    }

    /// Whether `password` is the password of entry `dn` (PreAuth): `Ok(false)` for a wrong
    /// password, an error when the directory cannot say. LDAP binds as `dn`, on connections
    /// apart from the search connections; the LDIF directory checks `userPassword`.
    fn authenticate<'a>(&'a self, dn: &'a str, password: &'a Secret) -> BoxFuture<'a, Result<bool, DirectoryError>>;

    /// The `userPassword` values of entry `dn`, read with the directory's own credentials
    /// (`BindDN`) and never cached: CRAM-MD5 and APOP need the cleartext.
    fn stored_passwords<'a>(&'a self, dn: &'a str) -> BoxFuture<'a, Result<Vec<Secret>, DirectoryError>> {
        Box::pin(async move {
            let attrs = [USER_PASSWORD.to_owned()];
            let query = Query {
                base: Base::Dn(dn.to_owned()),
                scope: Scope::Base,
                filter: "(userPassword=*)",
                attrs: &attrs,
                aliases: Aliases::AtBase,
            };
            Ok(self.find(query).await?.map(|entry| passwords_of(&entry)).unwrap_or_default())
        })
    }

    /// Whether `BindDN` can read users' passwords (checked at start-up and by `mailmux check`
    /// when `CRAMs` is on): a search for any entry with a `userPassword`. Servers evaluate a
    /// filter on an attribute the client may not read as undefined, so hidden passwords find
    /// nothing. `bind_dn`'s own entry does not count: access rules commonly let an identity
    /// read its own password.
    fn password_probe<'a>(&'a self, bind_dn: Option<&'a str>) -> BoxFuture<'a, Result<PasswordProbe, DirectoryError>> {
        Box::pin(async move {
            let attrs = [USER_PASSWORD.to_owned()];
            let query = Query {
                base: Base::Configured,
                scope: Scope::Subtree,
                filter: "(userPassword=*)",
                attrs: &attrs,
                aliases: Aliases::AtBase,
            };
            let own = |entry: &Entry| bind_dn.is_some_and(|dn| normalize_dn(dn) == normalize_dn(&entry.dn));
            match self.find(query).await {
                Ok(None) => Ok(PasswordProbe::Hidden),
                Ok(Some(entry)) if own(&entry) => Ok(PasswordProbe::Hidden),
                Ok(Some(entry)) => {
                    let passwords = passwords_of(&entry);
                    let clear = passwords
                        .iter()
                        .any(|p| std::str::from_utf8(p.expose()).ok().and_then(password::cleartext).is_some());
                    Ok(if clear { PasswordProbe::Readable } else { PasswordProbe::HashedOnly })
                }
                Err(DirectoryError::Ambiguous(_)) => Ok(PasswordProbe::Readable),
                Err(e) => Err(e),
            }
        })
    }
}

/// What the route cache holds for a query ([`Directory::peek`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheState {
    /// The service has no route cache (`LdapCacheSize 0`).
    NoCache,
    /// Nothing cached: the next lookup asks the directory.
    Absent,
    /// An answer within its TTL: the next lookup uses it.
    Fresh,
    /// An answer past its TTL: used only while the directory cannot answer.
    Expired,
}

impl CacheState {
    /// A word for `mailmux admin explain`.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheState::NoCache => "no route cache (LdapCacheSize 0)",
            CacheState::Absent => "not cached",
            CacheState::Fresh => "cached (fresh)",
            CacheState::Expired => "cached (expired; used only while the directory is down)",
        }
    }
}

/// What `BindDN` may read of users' passwords, for `CRAMs yes` (see
/// [`Directory::password_probe`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordProbe {
    /// Some entry's `userPassword` is visible (stored in clear, or several entries match
    /// and were not read one by one).
    Readable,
    /// The one entry found holds only hashed values: CRAM-MD5 and APOP cannot be checked.
    HashedOnly,
    /// No entry shows a `userPassword`: access controls hide it from `BindDN`.
    Hidden,
}

/// A DN as compared: each RDN trimmed and lower-cased.
pub(crate) fn normalize_dn(dn: &str) -> String {
    dn.split(',').map(|rdn| rdn.trim().to_lowercase()).collect::<Vec<_>>().join(",")
}

/// The attribute holding a user's password (RFC 4519).
pub const USER_PASSWORD: &str = "userpassword";

/// An entry's `userPassword` values (text or, as LDAP may send them, binary).
pub fn passwords_of(entry: &Entry) -> Vec<Secret> {
    let text = entry.values(USER_PASSWORD).iter().map(|v| Secret::new(v.as_bytes()));
    text.chain(entry.binary_values(USER_PASSWORD).iter().map(|v| Secret::new(v.as_slice()))).collect()
}

/// A directory could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DirectorySetupError {
    /// The LDIF file could not be read or parsed.
    #[error("{0}")]
    Ldif(String),
    /// `LdapURL` mixes `ldap://` and `ldif:`, or names several LDIF files. The loader refuses
    /// such a file with its line; this is for configurations built in code.
    #[error("LdapURL {0}")]
    Urls(String),
}

/// Builds the directory a service's `LdapURL` names, timed into `metrics`, with the route
/// cache in front when `LdapCacheSize` is not 0 (its answers kept in `cache`, which outlives
/// the directory).
///
/// An LDIF directory gets the equality indexes of the attributes `SearchFormat` compares
/// built here, at start-up or reload, so the first logins do not pay for them.
pub fn from_config(
    svc: &ServiceConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    cache: &Arc<cache::RouteCache>,
    metrics: &Arc<Metrics>,
) -> Result<Arc<dyn Directory>, DirectorySetupError> {
    let directory: Arc<dyn Directory> =
        Arc::new(metered::MeteredDirectory::new(uncached(svc, tls)?, metrics.clone(), svc.protocol));
    if svc.lookup.cache_size == 0 {
        return Ok(directory);
    }
    Ok(Arc::new(
        cache::CachedDirectory::new(directory, cache.clone(), svc.lookup.cache_ttl, svc.lookup.cache_max_stale)
            .with_metrics(metrics.clone(), svc.protocol),
    ))
}

/// The route cache a service's directory needs (sized and timed by its `LdapCache*`).
pub fn route_cache(svc: &ServiceConfig) -> Arc<cache::RouteCache> {
    cache::RouteCache::new(svc.lookup.cache_size, svc.lookup.cache_ttl + svc.lookup.cache_max_stale)
}

fn uncached(
    svc: &ServiceConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Arc<dyn Directory>, DirectorySetupError> {
    mailmux_config::directory_url::check_list(&svc.directory).map_err(DirectorySetupError::Urls)?;
    match svc.directory.first() {
        Some(DirectoryUrl::Ldif { path, base }) => Ok(Arc::new(ldif_directory(svc, path, base)?)),
        Some(DirectoryUrl::Ldap { .. }) | None => Ok(Arc::new(ldap::LdapDirectory::new(svc, tls))),
    }
}

fn ldif_directory(
    svc: &ServiceConfig,
    path: &std::path::Path,
    base: &str,
) -> Result<ldif::LdifDirectory, DirectorySetupError> {
    let dir = ldif::LdifDirectory::load(path, base).map_err(DirectorySetupError::Ldif)?;
    // Which indexes a login's search uses depends on the attributes the filter compares, not
    // on the user's values, so any value stands in for them.
    let sample =
        |template: &mailmux_config::Template| template.expand(|_| Some("x".to_owned()), ldap_filter::escape_value);
    dir.prepare_index(&ldif::index_attributes(&sample(&svc.search_format)));
    if svc.lookup.hosted_domains {
        dir.prepare_index(&ldif::index_attributes(&sample(&svc.lookup.domain_search_format)));
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(dir: &std::path::Path, lines: &str) -> ServiceConfig {
        let file = dir.join("ImapProxyAService.cfg");
        let mut diags = mailmux_config::Diagnostics::default();
        let entries = mailmux_config::raw::parse(&file, lines, None, &mut diags);
        mailmux_config::service::build(mailmux_config::Protocol::Imap, Vec::new(), &file, dir, &entries, &mut diags)
            .unwrap_or_else(|| panic!("{diags}"))
    }

    #[test]
    fn ldif_directories_get_the_indexes_of_search_format() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("u.ldif"), "dn: uid=a\nobjectClass: person\nuid: a\nmail: a@x\n").unwrap();
        let cases = [
            ("(&(objectClass=person)(mail=%s))", 2),
            ("uid=%U", 1),
            // An OR scans anyway; substrings cannot use an equality index.
            ("(|(uid=%U)(mail=%s))", 0),
            ("(mail=%U*)", 0),
        ];
        for (format, built) in cases {
            let svc = service(
                tmp.path(),
                &format!("default:LdapURL ldif:u.ldif\ndefault:HostedDomains no\ndefault:SearchFormat {format}\n"),
            );
            let Some(DirectoryUrl::Ldif { path, base }) = svc.directory.first() else { panic!("{svc:?}") };
            assert_eq!(ldif_directory(&svc, path, base).unwrap().indexes_built(), built, "{format}");
            assert!(from_config(&svc, None, &route_cache(&svc), &Metrics::new()).is_ok());
        }
    }

    #[test]
    fn several_ldif_files_or_mixed_kinds_are_refused_even_when_built_in_code() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("u.ldif"), "dn: uid=a\nuid: a\n").unwrap();
        let mut svc = service(tmp.path(), "default:LdapURL ldif:u.ldif\n");
        let one = svc.directory.clone();
        svc.directory.push(DirectoryUrl::Ldif { path: tmp.path().join("u.ldif"), base: String::new() });
        let err = from_config(&svc, None, &route_cache(&svc), &Metrics::new()).unwrap_err().to_string();
        assert!(err.contains("names 2 ldif: files"), "{err}");
        svc.directory = one;
        svc.directory.push(DirectoryUrl::Ldap { server: "ldap://127.0.0.1:389".into(), base: String::new() });
        let err = from_config(&svc, None, &route_cache(&svc), &Metrics::new()).unwrap_err().to_string();
        assert!(err.contains("mixes ldap:// and ldif:"), "{err}");
    }
}
