//! Learning the stores' pre-login capabilities (mailmux; the MMP had only `Capability`).
//!
//! | parameter | default | meaning |
//! | --- | --- | --- |
//! | `CapabilityStores` (mailmux) | none | stores probed from the start (`host`, `host:port`, `[v6]:port`; the port defaults as for `mailHost`), besides those users are routed to |
//! | `CapabilityRefresh` (mailmux) | 300 s | how often every known store is asked again; 0: once |
//!
//! Without `Capability`, an IMAP service advertises what every known store offers before
//! login; a POP3 service's CAPA always does (`Capability` has no effect on POP3).

use std::time::Duration;

use crate::raw::Entry;

/// How a service learns what its stores offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapabilityLearning {
    /// `CapabilityStores`, as written (each checked to be a store address).
    pub stores: Vec<String>,
    /// `CapabilityRefresh`; zero: each store is asked once.
    pub refresh: Duration,
}

/// The default `CapabilityRefresh`.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(300);
/// Most stores `CapabilityStores` may list.
pub const MAX_CONFIGURED_STORES: usize = 64;

impl Default for CapabilityLearning {
    fn default() -> Self {
        CapabilityLearning { stores: Vec::new(), refresh: DEFAULT_REFRESH }
    }
}

impl CapabilityLearning {
    /// Takes one entry if it is one of these parameters: `None` when it is not, else its result.
    pub fn take(&mut self, entry: &Entry) -> Option<Result<(), String>> {
        let v = entry.value.trim();
        Some(match entry.key.as_str() {
            "capabilitystores" => {
                let stores: Vec<String> = v.split_whitespace().map(str::to_owned).collect();
                match stores.iter().find(|s| !is_store_address(s)) {
                    Some(bad) => Err(format!("'{bad}' is not host, host:port or [IPv6]:port")),
                    None if stores.len() > MAX_CONFIGURED_STORES => {
                        Err(format!("{} stores; at most {MAX_CONFIGURED_STORES}", stores.len()))
                    }
                    None => {
                        self.stores = stores;
                        Ok(())
                    }
                }
            }
            "capabilityrefresh" => v
                .parse::<u64>()
                .map(|s| self.refresh = Duration::from_secs(s))
                .map_err(|_| format!("'{v}' is not a number of seconds")),
            _ => return None,
        })
    }
}

/// Whether `s` reads as a `mailHost`-style store address.
fn is_store_address(s: &str) -> bool {
    let Some((host, _)) = crate::store_address::split(s) else { return false };
    if s.starts_with('[') || host.contains(':') {
        return host.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, value: &str) -> Entry {
        Entry { key: name.to_ascii_lowercase(), name: name.to_owned(), value: value.to_owned(), line: 1 }
    }

    #[test]
    fn stores_and_refresh() {
        let mut c = CapabilityLearning::default();
        assert_eq!(c.take(&entry("CapabilityStores", "store1.example.com 127.0.0.2:1143 [::1]:143 ::1")), Some(Ok(())));
        assert_eq!(c.stores.len(), 4);
        assert_eq!(c.take(&entry("CapabilityRefresh", "0")), Some(Ok(())));
        assert_eq!(c.refresh, Duration::ZERO);
        for bad in ["a:0", "a:x", "[::1", "[nope]:1", "a/b", "a:1:2x"] {
            assert!(matches!(c.take(&entry("CapabilityStores", bad)), Some(Err(_))), "{bad}");
        }
        let many = vec!["s"; MAX_CONFIGURED_STORES + 1].join(" ");
        assert!(matches!(c.take(&entry("CapabilityStores", &many)), Some(Err(_))));
        assert!(matches!(c.take(&entry("CapabilityRefresh", "soon")), Some(Err(_))));
        assert_eq!(c.take(&entry("Capability", "IMAP4rev1")), None);
    }
}
