//! `MetricsListen` and `AdminListen` (mailmux, `AService.cfg`): where the Prometheus and
//! admin endpoints listen.
//!
//! ```text
//! default:MetricsListen 9143                  127.0.0.1:9143 (a bare port is loopback)
//! default:MetricsListen 192.0.2.10:9143       refused unless MetricsAllowRemote yes
//! default:AdminListen unix:mailmux.sock       a Unix socket (relative: under the configuration directory)
//! default:AdminListen [::1]:9144              loopback TCP; any other address is refused
//! ```
//!
//! Both are off unless set. The admin endpoint has no authentication of its own (it can
//! reload, and end users' sessions), so it listens on loopback or on a Unix socket (mode 0600)
//! only; who may reach it is who may use the machine (or the socket file). Metrics carry no
//! user data, so they may be exposed further, but only when `MetricsAllowRemote` says so.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// Where a control endpoint listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ControlAddr {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix-domain socket at this path.
    Unix(PathBuf),
}

impl std::fmt::Display for ControlAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ControlAddr::Tcp(addr) => write!(f, "{addr}"),
            ControlAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// Which endpoint a value is for: what it may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `MetricsListen`: TCP; a non-loopback address only with `remote`.
    Metrics {
        /// `MetricsAllowRemote yes`.
        remote: bool,
    },
    /// `AdminListen`: loopback TCP or a Unix socket.
    Admin,
}

/// Parses a `MetricsListen` / `AdminListen` value; relative socket paths are resolved
/// against `dir`.
pub fn parse(value: &str, dir: &Path, endpoint: Endpoint) -> Result<ControlAddr, String> {
    let value = value.trim();
    if let Some(path) = value.strip_prefix("unix:") {
        if endpoint != Endpoint::Admin {
            return Err(format!("'{value}': metrics are served over TCP only (Prometheus scrapes TCP)"));
        }
        if path.is_empty() {
            return Err("'unix:' names no socket file".to_owned());
        }
        return Ok(ControlAddr::Unix(crate::resolve(dir, path)));
    }
    let addr = if let Ok(port) = value.parse::<u16>() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
    } else {
        value
            .parse::<SocketAddr>()
            .map_err(|_| format!("'{value}' is not PORT, ADDRESS:PORT, [IPv6]:PORT or unix:PATH"))?
    };
    if addr.ip().to_canonical().is_loopback() {
        return Ok(ControlAddr::Tcp(addr));
    }
    match endpoint {
        Endpoint::Metrics { remote: true } => Ok(ControlAddr::Tcp(addr)),
        Endpoint::Metrics { remote: false } => Err(format!(
            "{addr} is not a loopback address: set MetricsAllowRemote yes to serve metrics beyond this machine"
        )),
        Endpoint::Admin => Err(format!(
            "{addr} is not a loopback address: the admin endpoint has no authentication and listens on \
             loopback or a unix: socket only"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_addresses_and_sockets() {
        let dir = Path::new("/etc/mailmux");
        let metrics = Endpoint::Metrics { remote: false };
        assert_eq!(parse("9143", dir, metrics), Ok(ControlAddr::Tcp("127.0.0.1:9143".parse().unwrap())));
        assert_eq!(parse(" [::1]:0 ", dir, Endpoint::Admin), Ok(ControlAddr::Tcp("[::1]:0".parse().unwrap())));
        assert_eq!(
            parse("unix:run/admin.sock", dir, Endpoint::Admin),
            Ok(ControlAddr::Unix("/etc/mailmux/run/admin.sock".into()))
        );
        assert_eq!(parse("unix:/run/a.sock", dir, Endpoint::Admin), Ok(ControlAddr::Unix("/run/a.sock".into())));
        assert!(parse("unix:/run/a.sock", dir, metrics).unwrap_err().contains("TCP only"));
        assert!(parse("unix:", dir, Endpoint::Admin).is_err());
        assert!(parse("localhost:9143", dir, metrics).unwrap_err().contains("is not PORT"));
        assert!(parse("70000", dir, metrics).is_err());
    }

    #[test]
    fn beyond_loopback_only_metrics_and_only_when_allowed() {
        let dir = Path::new("/etc/mailmux");
        assert!(
            parse("0.0.0.0:9143", dir, Endpoint::Metrics { remote: false }).unwrap_err().contains("MetricsAllowRemote")
        );
        assert_eq!(
            parse("0.0.0.0:9143", dir, Endpoint::Metrics { remote: true }),
            Ok(ControlAddr::Tcp("0.0.0.0:9143".parse().unwrap()))
        );
        assert!(parse("192.0.2.1:9144", dir, Endpoint::Admin).unwrap_err().contains("no authentication"));
        assert!(parse("[::ffff:192.0.2.1]:9144", dir, Endpoint::Admin).is_err());
        assert!(parse("[::ffff:127.0.0.1]:9144", dir, Endpoint::Admin).is_ok());
    }
}
