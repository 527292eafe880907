//! HAProxy in front of several mailmux instances, as a site scaling out would run it: TCP
//! mode, round robin, a PROXY protocol v2 header on every connection to a backend.
//!
//! HAProxy (Debian package `haproxy`) runs in the foreground (`-db`) under the daemon
//! watchdog, with a configuration written here:
//!
//! ```text
//! global
//!     nbthread 1
//! defaults
//!     mode tcp
//!     timeout connect 5s
//!     timeout client 60s
//!     timeout server 60s
//! frontend mail
//!     bind 127.0.0.1:PORT
//!     default_backend mailmux
//! backend mailmux
//!     balance roundrobin
//!     server mailmux1 127.0.0.1:P1 send-proxy-v2
//!     server mailmux2 127.0.0.1:P2 send-proxy-v2
//! ```
//!
//! No health checks: a check is a connection of its own, which would show up as a session in
//! mailmux's log and skew what a test counts. HAProxy connects to the backends from
//! 127.0.0.1, so mailmux's `ProxyProtocolFrom` must list that address.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::daemon::Daemon;
use crate::{ports, require_binary};

/// A running HAProxy.
#[derive(Debug)]
pub struct HaProxy {
    /// Where clients connect (127.0.0.1, a free port).
    pub addr: SocketAddr,
    /// The configuration file, for messages.
    pub config: PathBuf,
    daemon: Daemon,
}

/// The `haproxy.cfg` of a TCP balancer on `listen` over `backends`, round robin, PROXY v2.
pub fn config(listen: SocketAddr, backends: &[SocketAddr]) -> String {
    let servers: String = backends
        .iter()
        .enumerate()
        .map(|(i, addr)| format!("    server mailmux{} {addr} send-proxy-v2\n", i + 1))
        .collect();
    format!(
        "# Written by mailmux-testkit\n\
         global\n    nbthread 1\n\
         defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n\
         frontend mail\n    bind {listen}\n    default_backend mailmux\n\
         backend mailmux\n    balance roundrobin\n{servers}"
    )
}

impl HaProxy {
    /// Writes `dir/haproxy.cfg`, starts HAProxy and waits until it listens. Fails the test,
    /// naming the package, when HAProxy is not installed.
    pub fn start(dir: &Path, backends: &[SocketAddr]) -> HaProxy {
        let haproxy = require_binary("haproxy", "haproxy");
        std::fs::create_dir_all(dir).expect("haproxy dir");
        let addr = SocketAddr::from(([127, 0, 0, 1], ports::free_port()));
        let config_path = dir.join("haproxy.cfg");
        std::fs::write(&config_path, config(addr, backends)).expect("write haproxy.cfg");
        let check =
            std::process::Command::new(&haproxy).args(["-c", "-f"]).arg(&config_path).output().expect("run haproxy -c");
        assert!(
            check.status.success(),
            "haproxy rejects {}:\n{}{}",
            config_path.display(),
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        let config_arg = config_path.display().to_string();
        let mut daemon = Daemon::spawn("haproxy", &haproxy, &["-db", "-f", &config_arg], &dir.join("haproxy.log"));
        daemon.wait_for_port(addr);
        HaProxy { addr, config: config_path, daemon }
    }

    /// HAProxy's output so far.
    pub fn log_text(&self) -> String {
        self.daemon.log_text()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_backend_gets_a_proxy_v2_header() {
        let text = config(
            "127.0.0.1:1143".parse().unwrap(),
            &["127.0.0.1:2143".parse().unwrap(), "127.0.0.1:3143".parse().unwrap()],
        );
        assert!(text.contains("bind 127.0.0.1:1143\n"), "{text}");
        assert!(text.contains("balance roundrobin\n"), "{text}");
        assert!(text.contains("server mailmux1 127.0.0.1:2143 send-proxy-v2\n"), "{text}");
        assert!(text.contains("server mailmux2 127.0.0.1:3143 send-proxy-v2\n"), "{text}");
        assert!(!text.contains(" check"), "no health checks: {text}");
    }
}
