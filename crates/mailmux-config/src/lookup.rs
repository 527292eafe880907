//! How a service finds a user: the directory model (hosted domains or one tree), the
//! canonical user@domain, and the route cache.
//!
//! | parameter | default | meaning |
//! | --- | --- | --- |
//! | `HostedDomains` | yes | the DC-tree / Schema 2 model: find the login's domain entry first, then the user below its base |
//! | `DomainSearchFormat` | `(uid=%U)` | the user filter below a hosted domain's base |
//! | `HostedDomainFilter` (mailmux) | `(\|(associatedDomain=%V)(sunPreferredDomain=%V))` | how a hosted domain's entry is found, below the `LdapURL` base |
//! | `CanonicalVirtualDomainDelim` | `@` | the delimiter of `%s` (user, delimiter, domain) |
//! | `LdapCacheSize` | 10000 | directory answers kept (entries and misses) |
//! | `LdapCacheTTL` | 900 s | how long a cached answer is used without asking the directory |
//! | `LdapCacheMaxStale` (mailmux) | 3600 s | how long past its TTL a cached entry is still used while the directory cannot answer |
//!
//! With `HostedDomains yes`, a login without a domain (and no `DefaultDomain`) is looked up
//! with `SearchFormat` under the `LdapURL` base, as with `no`.

use std::time::Duration;

use crate::raw::{Entry, parse_bool};
use crate::template::Template;

/// The lookup parameters of a service.
#[derive(Debug, Clone)]
pub struct LookupConfig {
    /// `HostedDomains`.
    pub hosted_domains: bool,
    /// `DomainSearchFormat`.
    pub domain_search_format: Template,
    /// `HostedDomainFilter`.
    pub hosted_domain_filter: Template,
    /// `CanonicalVirtualDomainDelim`.
    pub canonical_delim: char,
    /// `LdapCacheSize`; 0 turns the cache off.
    pub cache_size: u64,
    /// `LdapCacheTTL`.
    pub cache_ttl: Duration,
    /// `LdapCacheMaxStale`.
    pub cache_max_stale: Duration,
}

/// The default `DomainSearchFormat`.
pub const DEFAULT_DOMAIN_SEARCH_FORMAT: &str = "(uid=%U)";
/// The default `HostedDomainFilter`.
pub const DEFAULT_HOSTED_DOMAIN_FILTER: &str = "(|(associatedDomain=%V)(sunPreferredDomain=%V))";

impl Default for LookupConfig {
    fn default() -> Self {
        LookupConfig {
            hosted_domains: true,
            // Constants, proven to parse by a unit test.
            domain_search_format: filter(DEFAULT_DOMAIN_SEARCH_FORMAT).expect("DEFAULT_DOMAIN_SEARCH_FORMAT parses"),
            hosted_domain_filter: filter(DEFAULT_HOSTED_DOMAIN_FILTER).expect("DEFAULT_HOSTED_DOMAIN_FILTER parses"),
            canonical_delim: '@',
            cache_size: 10_000,
            cache_ttl: Duration::from_secs(900),
            cache_max_stale: Duration::from_secs(3600),
        }
    }
}

/// A search filter template; parentheses added when missing, as for `SearchFormat`.
fn filter(v: &str) -> Result<Template, String> {
    if v.starts_with('(') { Template::parse(v, false) } else { Template::parse(&format!("({v})"), false) }
}

impl LookupConfig {
    /// Takes one entry if it is a lookup parameter: `None` when it is not, else its result.
    pub fn take(&mut self, entry: &Entry) -> Option<Result<(), String>> {
        let v = entry.value.trim();
        Some(match entry.key.as_str() {
            "hosteddomains" => parse_bool(v).map(|b| self.hosted_domains = b),
            "domainsearchformat" => filter(v).map(|t| self.domain_search_format = t),
            "hosteddomainfilter" => filter(v).map(|t| self.hosted_domain_filter = t),
            "canonicalvirtualdomaindelim" | "canonicaldomaindelim" => {
                let mut chars = v.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) if !c.is_whitespace() && !c.is_control() => {
                        self.canonical_delim = c;
                        Ok(())
                    }
                    _ => Err(format!("'{v}' is not one character")),
                }
            }
            "ldapcachesize" => {
                v.parse::<u64>().map(|n| self.cache_size = n).map_err(|_| format!("'{v}' is not a number"))
            }
            "ldapcachettl" => seconds(v).map(|d| self.cache_ttl = d),
            "ldapcachemaxstale" => seconds(v).map(|d| self.cache_max_stale = d),
            _ => return None,
        })
    }

    /// Which directory model is in effect, for `mailmux check` and the start-up log.
    pub fn model(&self) -> &'static str {
        if self.hosted_domains {
            "hosted domains (domain entry first, then DomainSearchFormat below its base)"
        } else {
            "one user tree (SearchFormat below the LdapURL base)"
        }
    }
}

fn seconds(v: &str) -> Result<Duration, String> {
    v.parse::<u64>().map(Duration::from_secs).map_err(|_| format!("'{v}' is not a number of seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, value: &str) -> Entry {
        Entry { key: name.to_ascii_lowercase(), name: name.to_owned(), value: value.to_owned(), line: 1 }
    }

    #[test]
    fn defaults_parse_and_values_are_read() {
        let d = LookupConfig::default();
        assert_eq!(d.domain_search_format.source(), DEFAULT_DOMAIN_SEARCH_FORMAT);
        assert_eq!(d.hosted_domain_filter.source(), DEFAULT_HOSTED_DOMAIN_FILTER);
        assert!(d.hosted_domains);
        let mut c = LookupConfig::default();
        for (name, value) in [
            ("HostedDomains", "no"),
            ("DomainSearchFormat", "mail=%s"),
            ("CanonicalVirtualDomainDelim", "+"),
            ("LdapCacheSize", "0"),
            ("LdapCacheTTL", "60"),
            ("LdapCacheMaxStale", "7200"),
        ] {
            assert_eq!(c.take(&entry(name, value)), Some(Ok(())), "{name}");
        }
        assert!(!c.hosted_domains && c.canonical_delim == '+' && c.cache_size == 0);
        assert_eq!(c.domain_search_format.source(), "(mail=%s)");
        assert_eq!((c.cache_ttl, c.cache_max_stale), (Duration::from_secs(60), Duration::from_secs(7200)));
        assert!(matches!(c.take(&entry("CanonicalVirtualDomainDelim", "@@")), Some(Err(_))));
        assert!(matches!(c.take(&entry("DomainSearchFormat", "(uid=%q)")), Some(Err(_))));
        assert_eq!(c.take(&entry("BindDN", "x")), None);
    }
}
