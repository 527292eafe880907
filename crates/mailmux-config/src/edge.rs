//! The pre-login edge of a service: who may connect, how many at once, and what failed
//! logins cost.
//!
//! | parameter | default | meaning |
//! | --- | --- | --- |
//! | `BGPenalty` | 2 s | badness an address earns per failed login; its next authentication waits that long |
//! | `BGMaxBadness` | 60 s | upper bound of an address's badness |
//! | `BGDecay` | 900 s | how long badness lasts after the last failure |
//! | `BGLinear` | no | yes: badness shrinks linearly over `BGDecay`; no: it drops to 0 at the end |
//! | `BGMax` | 10000 | addresses tracked at most (the oldest are forgotten first) |
//! | `BGExcluded` | none | addresses never penalised (IP/mask pairs, or a file of them) |
//! | `MaxLoginFailures` (mailmux) | 5 | failed logins one connection may make before it is closed |
//! | `FailureDelay` (mailmux) | 3 s | no failed login is answered sooner than this after it began |
//! | `ConnLimits` | `0.0.0.0\|0.0.0.0:20` | simultaneous connections per client address ([`crate::conn_limits`]) |
//! | `TCPAccess` | none | who may use the service, checked when a connection arrives ([`crate::tcp_access`]) |
//! | `TCPAccessAttr` | `mailAllowedServiceAccess` | the user's own filter, checked after the lookup |
//! | `ClientLookup` | no | look up every client's host name (for the log); rules naming hosts look it up anyway |
//! | `ProxyProtocolFrom` (mailmux) | none | load balancers whose connections start with a PROXY header (v1 or v2) giving the real client |
//!
//! The BadGuy, access and limit parameters are the MMP's (`../shared/spec/mmp-params.md`);
//! `MaxLoginFailures` and `FailureDelay` are mailmux's. `FailureDelay` makes an unknown user and a wrong
//! password take the same time to fail: set it above the stores' own failure delay (Dovecot's
//! `auth_failure_delay` is 2 s), which a wrong password pays at the store.

use std::path::Path;
use std::time::Duration;

use crate::address_list::{AddressList, BgExcluded};
use crate::conn_limits::ConnLimits;
use crate::raw::{Entry, parse_bool};
use crate::tcp_access::TcpAccess;

/// BadGuy: penalties for addresses that fail to log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadGuyConfig {
    /// `BGPenalty`.
    pub penalty: Duration,
    /// `BGMaxBadness`.
    pub max_badness: Duration,
    /// `BGDecay`.
    pub decay: Duration,
    /// `BGLinear`.
    pub linear: bool,
    /// `BGMax`.
    pub max_tracked: usize,
    /// `BGExcluded`: addresses never penalised (from the value, or the file it names).
    pub excluded: AddressList,
}

impl Default for BadGuyConfig {
    fn default() -> Self {
        BadGuyConfig {
            penalty: Duration::from_secs(2),
            max_badness: Duration::from_secs(60),
            decay: Duration::from_secs(900),
            linear: false,
            max_tracked: 10_000,
            excluded: AddressList::default(),
        }
    }
}

/// Everything about a service's edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeConfig {
    /// BadGuy penalties.
    pub badguy: BadGuyConfig,
    /// `MaxLoginFailures`: failed logins per connection before it is closed.
    pub max_login_failures: u32,
    /// `FailureDelay`: the least time a failed login takes to be answered.
    pub failure_delay: Duration,
    /// `ConnLimits`: connections at once per client address.
    pub conn_limits: ConnLimits,
    /// `TCPAccess`: who may connect to the service.
    pub tcp_access: TcpAccess,
    /// `TCPAccessAttr`: the entry attribute holding the user's own access filter (lower-cased).
    pub tcp_access_attr: String,
    /// `ClientLookup`: look up each client's host name.
    pub client_lookup: bool,
    /// `ProxyProtocolFrom`: peers that must send a PROXY header, whose addresses then stand
    /// for theirs.
    pub proxy_from: AddressList,
}

/// The attribute that holds a user's access filter unless `TCPAccessAttr` names another.
pub const DEFAULT_TCP_ACCESS_ATTR: &str = "mailallowedserviceaccess";

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            badguy: BadGuyConfig::default(),
            max_login_failures: 5,
            failure_delay: Duration::from_secs(3),
            conn_limits: ConnLimits::default(),
            tcp_access: TcpAccess::default(),
            tcp_access_attr: DEFAULT_TCP_ACCESS_ATTR.to_owned(),
            client_lookup: false,
            proxy_from: AddressList::default(),
        }
    }
}

impl EdgeConfig {
    /// Takes one entry if it is an edge parameter: `None` when it is not, else its result.
    pub fn take(&mut self, entry: &Entry, dir: &Path) -> Option<Result<(), String>> {
        let v = entry.value.trim();
        let bg = &mut self.badguy;
        Some(match entry.key.as_str() {
            "bgpenalty" => seconds(v, true).map(|d| bg.penalty = d),
            "bgmaxbadness" => seconds(v, true).map(|d| bg.max_badness = d),
            "bgdecay" => seconds(v, false).map(|d| bg.decay = d),
            "bglinear" => parse_bool(v).map(|b| bg.linear = b),
            "bgmax" => count(v).map(|n| bg.max_tracked = n),
            "bgexcluded" if v.is_empty() => {
                bg.excluded = AddressList::default();
                Ok(())
            }
            "bgexcluded" => match BgExcluded::parse(v) {
                Ok(BgExcluded::List(list)) => {
                    bg.excluded = list;
                    Ok(())
                }
                Ok(BgExcluded::File(name)) => {
                    let path = crate::resolve(dir, &name);
                    std::fs::read_to_string(&path)
                        .map_err(|e| format!("cannot read {}: {e}", path.display()))
                        .and_then(|text| {
                            AddressList::parse_file(&text).map_err(|errors| {
                                let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
                                format!("{}: {}", path.display(), lines.join("; "))
                            })
                        })
                        .map(|list| bg.excluded = list)
                }
                Err(e) => Err(e),
            },
            "connlimits" => ConnLimits::parse(v).map(|l| self.conn_limits = l),
            "tcpaccess" => TcpAccess::parse(v).map(|a| self.tcp_access = a),
            "tcpaccessattr" if v.is_empty() => Err("TCPAccessAttr names no attribute".into()),
            "tcpaccessattr" => {
                self.tcp_access_attr = v.to_ascii_lowercase();
                Ok(())
            }
            "clientlookup" => parse_bool(v).map(|b| self.client_lookup = b),
            "proxyprotocolfrom" => AddressList::parse(v).map(|list| self.proxy_from = list),
            "maxloginfailures" => count(v).and_then(|n| {
                u32::try_from(n)
                    .ok()
                    .filter(|n| *n > 0)
                    .map(|n| self.max_login_failures = n)
                    .ok_or_else(|| format!("'{v}' is not a number of failures from 1 to {}", u32::MAX))
            }),
            "failuredelay" => seconds(v, true).map(|d| self.failure_delay = d),
            _ => return None,
        })
    }
}

/// Whole seconds; `zero_ok` allows 0 (turning a delay off).
fn seconds(v: &str, zero_ok: bool) -> Result<Duration, String> {
    v.parse::<u64>()
        .ok()
        .filter(|s| zero_ok || *s > 0)
        .filter(|s| *s <= 86_400)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("'{v}' is not a number of seconds (0 to 86400)"))
}

fn count(v: &str) -> Result<usize, String> {
    v.parse::<usize>().map_err(|_| format!("'{v}' is not a whole number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, value: &str) -> Entry {
        Entry { key: name.to_ascii_lowercase(), name: name.to_owned(), value: value.to_owned(), line: 1 }
    }

    #[test]
    fn mmp_sample_values_and_mailmux_additions() {
        let mut e = EdgeConfig::default();
        for (name, value) in [
            ("BGPenalty", "5"),
            ("BGMaxBadness", "30"),
            ("BGDecay", "600"),
            ("BGLinear", "yes"),
            ("BGMax", "100"),
            ("BGExcluded", "192.0.2.0|255.255.255.0 198.51.100.7"),
            ("ConnLimits", "0.0.0.0|0.0.0.0:50,192.0.2.0/24:5"),
            ("TCPAccess", "-ALL:192.0.2.66"),
            ("TCPAccessAttr", "myAccess"),
            ("ClientLookup", "yes"),
            ("MaxLoginFailures", "3"),
            ("FailureDelay", "0"),
        ] {
            assert_eq!(e.take(&entry(name, value), Path::new("/")), Some(Ok(())), "{name}");
        }
        assert_eq!(e.badguy.penalty, Duration::from_secs(5));
        assert!(e.badguy.linear && e.badguy.max_tracked == 100);
        assert!(e.badguy.excluded.contains("192.0.2.9".parse().unwrap()));
        assert_eq!(e.conn_limits.limit_for("192.0.2.9".parse().unwrap()), Some(5));
        assert_eq!(e.conn_limits.limit_for("10.0.0.1".parse().unwrap()), Some(50));
        assert!(!e.tcp_access.is_empty() && e.client_lookup);
        assert_eq!(e.tcp_access_attr, "myaccess");
        assert_eq!((e.max_login_failures, e.failure_delay), (3, Duration::ZERO));
        assert_eq!(e.take(&entry("BindDN", "x"), Path::new("/")), None);
    }

    #[test]
    fn bgexcluded_file_relative_to_the_configuration() {
        let dir = std::env::temp_dir().join(format!("mailmux-bgexcl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("bgexcl.cfg"), "# monitoring\n192.0.2.10\n10.0.0.0|255.0.0.0\n").unwrap();
        let mut e = EdgeConfig::default();
        assert_eq!(e.take(&entry("BGExcluded", "bgexcl.cfg"), &dir), Some(Ok(())));
        assert!(e.badguy.excluded.contains("10.1.2.3".parse().unwrap()));
        std::fs::write(dir.join("bad.cfg"), "192.0.2.10\nnonsense!\n").unwrap();
        let err = e.take(&entry("BGExcluded", "bad.cfg"), &dir).unwrap().unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_values_are_errors() {
        let mut e = EdgeConfig::default();
        for (name, value) in [
            ("BGPenalty", "-1"),
            ("BGDecay", "0"),
            ("MaxLoginFailures", "0"),
            ("BGLinear", "maybe"),
            ("BGExcluded", "/nonexistent/bgexcl.cfg"),
            ("BGExcluded", "10.0.0.300"),
            ("ConnLimits", "10.0.0.0|255.0.0.0"),
            ("TCPAccess", "+imap"),
        ] {
            assert!(matches!(e.take(&entry(name, value), Path::new("/")), Some(Err(_))), "{name} {value}");
        }
    }
}
