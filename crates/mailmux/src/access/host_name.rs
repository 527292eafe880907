//! The client's host name, for `TCPAccess` rules that name hosts and for `ClientLookup`.
//!
//! A name counts only when its forward lookup leads back to the client's address (otherwise
//! anyone controlling their own reverse zone could claim `trusted.example.com`). The system
//! resolver is blocking, so lookups run on the blocking pool, at most [`CONCURRENT_LOOKUPS`]
//! at once and each within [`LOOKUP_TIMEOUT`]: a flood of connections or a dead DNS server
//! costs a bounded number of threads, and a client whose lookup could not be made counts as
//! having no name. Like the MMP, mailmux keeps no DNS cache of its own.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use mailmux_config::tcp_access::HostName;
use tokio::sync::Semaphore;

/// Lookups in flight at once, process-wide.
pub const CONCURRENT_LOOKUPS: usize = 32;
/// How long one lookup (reverse and forward) may take.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientHost {
    /// No PTR record, DNS failed, or the lookup could not be made in time.
    Unknown,
    /// A PTR name whose forward lookup does not include the client's address.
    Unconfirmed(String),
    /// A confirmed name.
    Known(String),
}

impl ClientHost {
    /// As the access rules see it.
    pub fn as_host_name(&self) -> HostName<'_> {
        match self {
            ClientHost::Unknown => HostName::Unknown,
            ClientHost::Unconfirmed(_) => HostName::Unconfirmed,
            ClientHost::Known(name) => HostName::Known(name),
        }
    }

    /// For the log (which escapes it): the name, marked when unconfirmed.
    pub fn describe(&self) -> String {
        match self {
            ClientHost::Unknown => "unknown".to_owned(),
            ClientHost::Unconfirmed(name) => format!("{name} (unconfirmed)"),
            ClientHost::Known(name) => name.clone(),
        }
    }
}

fn lookups() -> &'static Arc<Semaphore> {
    static LOOKUPS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    LOOKUPS.get_or_init(|| Arc::new(Semaphore::new(CONCURRENT_LOOKUPS)))
}

/// Looks up `ip`'s host name and confirms it.
pub async fn look_up(ip: IpAddr) -> ClientHost {
    let ip = ip.to_canonical();
    let Ok(permit) = lookups().clone().try_acquire_owned() else {
        tracing::debug!("every resolver slot is busy; the client's host name is not looked up");
        return ClientHost::Unknown;
    };
    let lookup = tokio::task::spawn_blocking(move || {
        let found = confirm(ip);
        drop(permit);
        found
    });
    match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
        Ok(Ok(found)) => found,
        _ => ClientHost::Unknown,
    }
}

fn confirm(ip: IpAddr) -> ClientHost {
    let Ok(name) = dns_lookup::lookup_addr(&ip) else { return ClientHost::Unknown };
    // getnameinfo hands back the address itself when it finds no name.
    if name.parse::<IpAddr>().is_ok() {
        return ClientHost::Unknown;
    }
    let confirmed = dns_lookup::lookup_host(&name).is_ok_and(|mut addrs| addrs.any(|a| a.to_canonical() == ip));
    if confirmed { ClientHost::Known(name) } else { ClientHost::Unconfirmed(name) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_has_a_confirmed_name_and_test_addresses_none() {
        // /etc/hosts names 127.0.0.1 "localhost" on every Debian machine.
        assert_eq!(look_up("127.0.0.1".parse().unwrap()).await, ClientHost::Known("localhost".into()));
        // 127.0.0.77 has no name in /etc/hosts and loopback has no reverse zone.
        assert!(matches!(look_up("127.0.0.77".parse().unwrap()).await, ClientHost::Unknown));
    }
}
