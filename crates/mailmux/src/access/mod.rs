//! The edge: who gets in, how many at once, and what failed logins cost.
//!
//! ```text
//! accept ─▶ session permit ─▶ admit: ConnLimits ─▶ network share ─▶ pre-login budget ─▶ TCPAccess ─▶ greeting …
//!   (listen.rs)  (process-wide,       (per address) (per /24, /48)   (process-wide)
//!                 from RLIMIT_NOFILE)
//!                                    … login attempt: BadGuy penalty ─▶ verify ─▶ failure floor
//! ```
//!
//! Everything here that counts (permits, connection counts, penalty tables) lives in
//! [`Edge`], which lasts as long as the server; the limits themselves come from the
//! session's configuration generation.

pub mod badguy;
pub mod budget;
pub mod conn_limits;
pub mod host_name;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mailmux_config::{Protocol, ServiceConfig};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::outcome::Refusal;
use badguy::BadGuys;
use conn_limits::{ConnCounts, ConnSlot};

pub use mailmux_config::conn_limits::IpKey;

/// A client's network, for the pre-login share: IPv4 by /24, IPv6 by /48 (what one site or
/// one subscriber usually holds, so one of them cannot take the whole pre-login budget).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NetKey(IpAddr);

impl NetKey {
    /// The network of an address.
    pub fn of(ip: IpAddr) -> NetKey {
        match ip.to_canonical() {
            IpAddr::V4(v4) => NetKey(std::net::Ipv4Addr::from(u32::from(v4) & 0xffff_ff00).into()),
            IpAddr::V6(v6) => NetKey(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 80) - 1)).into()),
        }
    }
}

impl std::fmt::Display for NetKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}/24"),
            IpAddr::V6(v6) => write!(f, "{v6}/48"),
        }
    }
}

/// The edge's state for the life of the server.
#[derive(Debug)]
pub struct Edge {
    /// Sessions at once (what the descriptor limit allows).
    pub sessions: Arc<Semaphore>,
    /// Sessions before login at once.
    pub prelogin: Arc<Semaphore>,
    /// The session limit, for logs.
    pub session_limit: usize,
    /// The pre-login limit, for logs.
    pub prelogin_limit: usize,
    /// Sessions before login at once from one network ([`NetKey`]).
    pub prelogin_per_network: u32,
    /// Connections per service and address (`ConnLimits`).
    pub conns: Arc<ConnCounts<(Protocol, IpKey)>>,
    /// Sessions before login per network.
    pub prelogin_networks: Arc<ConnCounts<NetKey>>,
    /// BadGuy tables, one per service.
    badguys: [BadGuys; 2],
    /// Refusal log lines this second, per [`Refusal`] kind (see [`Edge::log_refusal`]).
    refusal_lines: [LogThrottle; 5],
    /// What relays may hold for slow clients, all sessions together (`SlowClientBufferTotal`).
    pub slow_clients: crate::relay::LagBudget,
}

impl Edge {
    /// An edge for `sessions` sessions at once, `prelogin` of them before login, at most
    /// `per_network` of those from one network.
    pub fn new(sessions: usize, prelogin: usize, per_network: u32) -> Edge {
        Edge {
            sessions: Arc::new(Semaphore::new(sessions)),
            prelogin: Arc::new(Semaphore::new(prelogin)),
            session_limit: sessions,
            prelogin_limit: prelogin,
            prelogin_per_network: per_network,
            conns: Arc::new(ConnCounts::default()),
            prelogin_networks: Arc::new(ConnCounts::default()),
            badguys: [BadGuys::new(), BadGuys::new()],
            refusal_lines: Default::default(),
            slow_clients: crate::relay::LagBudget::new(mailmux_config::DEFAULT_SLOW_CLIENT_BUFFER_TOTAL),
        }
    }

    /// Whether a refusal of this kind may be logged now: at most [`REFUSAL_LINES_PER_SECOND`]
    /// a second each, so a flood of connections cannot become a flood of log lines.
    pub fn log_refusal(&self, refusal: Refusal) -> bool {
        let i = match refusal {
            Refusal::SessionLimit => 0,
            Refusal::PreLoginBudget => 1,
            Refusal::ConnLimit => 2,
            Refusal::Access => 3,
            Refusal::PreLoginNetwork => 4,
        };
        self.refusal_lines[i].allow()
    }

    /// The BadGuy table of a service.
    pub fn badguys(&self, protocol: Protocol) -> &BadGuys {
        match protocol {
            Protocol::Imap => &self.badguys[0],
            Protocol::Pop3 => &self.badguys[1],
        }
    }

    /// Admits a connection that holds a session permit: a pre-login permit, then a slot for
    /// its address within the service's `ConnLimits`.
    pub fn admit(
        &self,
        svc: &ServiceConfig,
        client: IpAddr,
        session: OwnedSemaphorePermit,
    ) -> Result<Admission, Refusal> {
        let limits = &svc.edge.conn_limits;
        let slot = self
            .conns
            .try_take((svc.protocol, limits.key(client)), limits.limit_for(client))
            .ok_or(Refusal::ConnLimit)?;
        let network = self
            .prelogin_networks
            .try_take(NetKey::of(client), Some(self.prelogin_per_network))
            .ok_or(Refusal::PreLoginNetwork)?;
        let prelogin = self.prelogin.clone().try_acquire_owned().map_err(|_| Refusal::PreLoginBudget)?;
        Ok(Admission { _session: session, prelogin: Some((prelogin, network)), _slot: slot })
    }
}

/// Refusal lines logged per second and kind, at most.
pub const REFUSAL_LINES_PER_SECOND: u64 = 20;

/// Counts lines in the current second.
#[derive(Debug, Default)]
struct LogThrottle {
    /// The second (since the process's clock origin) and the count in it, packed:
    /// `second << 20 | count`.
    state: AtomicU64,
}

impl LogThrottle {
    fn allow(&self) -> bool {
        let second = clock_origin().elapsed().as_secs();
        let mut current = self.state.load(Ordering::Relaxed);
        loop {
            let (at, count) = (current >> 20, current & 0xf_ffff);
            let next = if at == second { (second << 20) | (count + 1).min(0xf_ffff) } else { (second << 20) | 1 };
            match self.state.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return next & 0xf_ffff <= REFUSAL_LINES_PER_SECOND,
                Err(seen) => current = seen,
            }
        }
    }
}

fn clock_origin() -> std::time::Instant {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(std::time::Instant::now)
}

/// What an admitted connection holds until it ends.
#[derive(Debug)]
pub struct Admission {
    _session: OwnedSemaphorePermit,
    /// Given back when the session logs in (see [`Admission::logged_in`]).
    prelogin: Option<(OwnedSemaphorePermit, ConnSlot<NetKey>)>,
    _slot: ConnSlot<(Protocol, IpKey)>,
}

impl Admission {
    /// The session logged in: it no longer counts against the pre-login budget.
    pub fn logged_in(&mut self) {
        self.prelogin = None;
    }
}

/// What a refused client is told, in its protocol. Implicit-TLS ports are closed without a
/// word: a refusal would cost a handshake, which is what an overloaded server cannot spend.
pub fn refusal_text(protocol: Protocol, refusal: Refusal) -> &'static [u8] {
    match (protocol, refusal) {
        (Protocol::Imap, Refusal::ConnLimit) => b"* BYE [UNAVAILABLE] Too many connections from your address\r\n",
        (Protocol::Imap, Refusal::Access) => b"* BYE Access denied\r\n",
        (Protocol::Imap, Refusal::SessionLimit | Refusal::PreLoginBudget | Refusal::PreLoginNetwork) => {
            b"* BYE [UNAVAILABLE] Too many connections, try again later\r\n"
        }
        (Protocol::Pop3, Refusal::ConnLimit) => b"-ERR [SYS/TEMP] Too many connections from your address\r\n",
        (Protocol::Pop3, Refusal::Access) => b"-ERR Access denied\r\n",
        (Protocol::Pop3, Refusal::SessionLimit | Refusal::PreLoginBudget | Refusal::PreLoginNetwork) => {
            b"-ERR [SYS/TEMP] Too many connections, try again later\r\n"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_count_ipv6_per_64_and_mapped_ipv4_as_ipv4() {
        let key = |s: &str| IpKey::of(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.1"), key("192.0.2.1"));
        assert_eq!(key("2001:db8:1:2::1").to_string(), "2001:db8:1:2::/64");
        assert_eq!(key("192.0.2.1").to_string(), "192.0.2.1");
    }

    #[test]
    fn networks_are_slash_24_and_slash_48() {
        let net = |s: &str| NetKey::of(s.parse().unwrap());
        assert_eq!(net("192.0.2.1"), net("192.0.2.254"));
        assert_ne!(net("192.0.2.1"), net("192.0.3.1"));
        assert_eq!(net("2001:db8:1:ff00::1"), net("2001:db8:1:1::1"));
        assert_ne!(net("2001:db8:1::1"), net("2001:db8:2::1"));
        assert_eq!(net("::ffff:192.0.2.9"), net("192.0.2.1"));
        assert_eq!(net("2001:db8:1:2::1").to_string(), "2001:db8:1::/48");
    }

    #[test]
    fn refusal_lines_are_throttled() {
        let edge = Edge::new(1, 1, 1);
        let logged = (0..1000).filter(|_| edge.log_refusal(Refusal::ConnLimit)).count() as u64;
        // Two seconds at most may have been touched while counting.
        assert!((REFUSAL_LINES_PER_SECOND..=2 * REFUSAL_LINES_PER_SECOND).contains(&logged), "{logged}");
        assert!(edge.log_refusal(Refusal::Access), "kinds are throttled apart");
    }

    #[tokio::test]
    async fn the_prelogin_budget_is_given_back_at_login_and_conn_limits_apply() {
        let edge = Edge::new(10, 3, 2);
        let dir = std::env::temp_dir();
        let svc = |limits: &str| {
            let text = format!("default:LdapURL ldif:users.ldif\ndefault:ConnLimits {limits}\n");
            let file = dir.join("ImapProxyAService.cfg");
            let mut diags = mailmux_config::Diagnostics::default();
            let entries = mailmux_config::raw::parse(&file, &text, None, &mut diags);
            mailmux_config::service::build(Protocol::Imap, Vec::new(), &file, &dir, &entries, &mut diags)
                .unwrap_or_else(|| panic!("{diags}"))
        };
        let one_each = svc("0.0.0.0|0.0.0.0:1");
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let permit = || edge.sessions.clone().try_acquire_owned().unwrap();
        let mut first = edge.admit(&one_each, ip, permit()).unwrap();
        assert_eq!(edge.admit(&one_each, ip, permit()).unwrap_err(), Refusal::ConnLimit);
        let _other = edge.admit(&one_each, "192.0.2.2".parse().unwrap(), permit()).unwrap();
        // Two from 192.0.2.0/24 before login: the network's share is used up.
        assert_eq!(
            edge.admit(&one_each, "192.0.2.3".parse().unwrap(), permit()).unwrap_err(),
            Refusal::PreLoginNetwork
        );
        let _elsewhere = edge.admit(&one_each, "198.51.100.1".parse().unwrap(), permit()).unwrap();
        assert_eq!(
            edge.admit(&one_each, "203.0.113.1".parse().unwrap(), permit()).unwrap_err(),
            Refusal::PreLoginBudget
        );
        first.logged_in();
        let _third = edge.admit(&svc("0.0.0.0|0.0.0.0:9"), ip, permit()).unwrap();
        assert_eq!(edge.sessions.available_permits(), 6);
    }
}
