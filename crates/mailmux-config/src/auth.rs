//! How a service checks who a client is before it contacts the store.
//!
//! | parameter | default | meaning |
//! | --- | --- | --- |
//! | `PreAuth` | no | bind to the directory as the user with the client's password before the store is contacted; a wrong password never reaches a store |
//! | `AuthCacheSize` | 10000 | successful pre-authentications remembered (0: none) |
//! | `AuthCacheTTL` (also `AuthCacheSizeTTL`) | 900 s | how long one is remembered: a changed password takes effect for the old one after this |
//! | `CRAMs` | no | offer CRAM-MD5 (IMAP, POP3) and APOP, verified against the user's cleartext `userPassword` |
//! | `OAuthBearer` | no | offer OAUTHBEARER and XOAUTH2 and hand the client's token to the store, which checks it (new; set it only where every store accepts bearer tokens) |
//!
//! A hosted domain's `mailAccessProxyPreAuth` overrides `PreAuth` for its users.

use std::time::Duration;

use crate::raw::{Entry, parse_bool};

/// The authentication parameters of a service (or of one vdmap entry laid over it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// `PreAuth`.
    pub preauth: bool,
    /// `AuthCacheSize`; 0 turns the cache off.
    pub cache_size: u64,
    /// `AuthCacheTTL`.
    pub cache_ttl: Duration,
    /// `CRAMs`.
    pub crams: bool,
    /// `OAuthBearer`: mailmux cannot check a token itself, so offering the mechanisms is the
    /// operator's statement that the stores can.
    pub bearer: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            preauth: false,
            cache_size: 10_000,
            cache_ttl: Duration::from_secs(900),
            crams: false,
            bearer: false,
        }
    }
}

impl AuthConfig {
    /// Takes one entry if it is an authentication parameter: `None` when it is not, else
    /// its result.
    pub fn take(&mut self, entry: &Entry) -> Option<Result<(), String>> {
        let v = entry.value.trim();
        Some(match entry.key.as_str() {
            "preauth" => parse_bool(v).map(|b| self.preauth = b),
            "crams" => parse_bool(v).map(|b| self.crams = b),
            "oauthbearer" => parse_bool(v).map(|b| self.bearer = b),
            "authcachesize" => {
                v.parse::<u64>().map(|n| self.cache_size = n).map_err(|_| format!("'{v}' is not a number"))
            }
            // The 6.x administrator's guide writes "AuthCacheSize and AuthCacheSizeTTL".
            "authcachettl" | "authcachesizettl" => v
                .parse::<u64>()
                .map(|s| self.cache_ttl = Duration::from_secs(s))
                .map_err(|_| format!("'{v}' is not a number of seconds")),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, value: &str) -> Entry {
        Entry { key: name.to_ascii_lowercase(), name: name.to_owned(), value: value.to_owned(), line: 1 }
    }

    #[test]
    fn mmp_defaults_and_both_spellings_of_the_ttl() {
        let d = AuthConfig::default();
        assert!(!d.preauth && !d.crams && !d.bearer);
        assert_eq!((d.cache_size, d.cache_ttl), (10_000, Duration::from_secs(900)));
        let mut c = AuthConfig::default();
        for (name, value) in [
            ("PreAuth", "yes"),
            ("CRAMs", "1"),
            ("AuthCacheSize", "0"),
            ("AuthCacheSizeTTL", "60"),
            ("OAuthBearer", "yes"),
        ] {
            assert_eq!(c.take(&entry(name, value)), Some(Ok(())), "{name}");
        }
        assert_eq!(
            c,
            AuthConfig { preauth: true, cache_size: 0, cache_ttl: Duration::from_secs(60), crams: true, bearer: true }
        );
        assert_eq!(c.take(&entry("AuthCacheTTL", "30")), Some(Ok(())));
        assert_eq!(c.cache_ttl, Duration::from_secs(30));
        assert!(matches!(c.take(&entry("PreAuth", "sometimes")), Some(Err(_))));
        assert!(matches!(c.take(&entry("AuthCacheTTL", "-1")), Some(Err(_))));
        assert_eq!(c.take(&entry("LdapCacheTTL", "1")), None);
    }
}
