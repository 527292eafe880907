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
//!
//! The BadGuy parameters are the MMP's (`../shared/spec/mmp-params.md`); `MaxLoginFailures`
//! and `FailureDelay` are mailmux's. `FailureDelay` makes an unknown user and a wrong
//! password take the same time to fail: set it above the stores' own failure delay (Dovecot's
//! `auth_failure_delay` is 2 s), which a wrong password pays at the store.

use std::path::Path;
use std::time::Duration;

use crate::raw::{Entry, parse_bool};

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
    /// `BGExcluded`, as written (an address list or a file name); parsed with the rest of
    /// the access rules.
    pub excluded: Option<String>,
}

impl Default for BadGuyConfig {
    fn default() -> Self {
        BadGuyConfig {
            penalty: Duration::from_secs(2),
            max_badness: Duration::from_secs(60),
            decay: Duration::from_secs(900),
            linear: false,
            max_tracked: 10_000,
            excluded: None,
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
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig { badguy: BadGuyConfig::default(), max_login_failures: 5, failure_delay: Duration::from_secs(3) }
    }
}

impl EdgeConfig {
    /// Takes one entry if it is an edge parameter: `None` when it is not, else its result.
    pub fn take(&mut self, entry: &Entry, _dir: &Path) -> Option<Result<(), String>> {
        let v = entry.value.trim();
        let bg = &mut self.badguy;
        Some(match entry.key.as_str() {
            "bgpenalty" => seconds(v, true).map(|d| bg.penalty = d),
            "bgmaxbadness" => seconds(v, true).map(|d| bg.max_badness = d),
            "bgdecay" => seconds(v, false).map(|d| bg.decay = d),
            "bglinear" => parse_bool(v).map(|b| bg.linear = b),
            "bgmax" => count(v).map(|n| bg.max_tracked = n),
            "bgexcluded" => {
                bg.excluded = (!v.is_empty()).then(|| v.to_owned());
                Ok(())
            }
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
            ("BGExcluded", "/etc/bgexcl.cfg"),
            ("MaxLoginFailures", "3"),
            ("FailureDelay", "0"),
        ] {
            assert_eq!(e.take(&entry(name, value), Path::new("/")), Some(Ok(())), "{name}");
        }
        assert_eq!(e.badguy.penalty, Duration::from_secs(5));
        assert!(e.badguy.linear && e.badguy.max_tracked == 100);
        assert_eq!(e.badguy.excluded.as_deref(), Some("/etc/bgexcl.cfg"));
        assert_eq!((e.max_login_failures, e.failure_delay), (3, Duration::ZERO));
        assert_eq!(e.take(&entry("BindDN", "x"), Path::new("/")), None);
    }

    #[test]
    fn bad_values_are_errors() {
        let mut e = EdgeConfig::default();
        for (name, value) in [("BGPenalty", "-1"), ("BGDecay", "0"), ("MaxLoginFailures", "0"), ("BGLinear", "maybe")] {
            assert!(matches!(e.take(&entry(name, value), Path::new("/")), Some(Err(_))), "{name} {value}");
        }
    }
}
