//! `ServiceList`: which proxy services run, and on which addresses.
//!
//! ```text
//! default:ServiceList imapproxy@143|993 popproxy@110|995          (7.x form)
//! default:ServiceList ImapProxyAService.cfg@143 PopProxyAService@110  (older form: names the file)
//! default:ServiceList imapproxy@127.0.0.1:143|[::1]:143            (mailmux: bind one address)
//! ```
//!
//! A bare port listens on every IPv4 address (`0.0.0.0`), as the MMP did.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use crate::{Diagnostics, Protocol};

/// One service named by `ServiceList`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceItem {
    /// Which protocol the service proxies.
    pub protocol: Protocol,
    /// Its configuration file, relative to the configuration directory.
    pub file: String,
    /// Where it listens.
    pub listeners: Vec<SocketAddr>,
    /// The `AService.cfg` line, for messages.
    pub line: usize,
}

/// Parses the value of `ServiceList`; problems are recorded against `file:line`.
pub fn parse(value: &str, file: &Path, line: usize, diags: &mut Diagnostics) -> Vec<ServiceItem> {
    let mut items: Vec<ServiceItem> = Vec::new();
    for token in value.split_whitespace() {
        let Some((name, ports)) = token.split_once('@') else {
            diags.error(file, line, format!("ServiceList item '{token}' is not service@port"));
            continue;
        };
        let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
        let stem = base.split('.').next().unwrap_or(base).to_ascii_lowercase();
        let (protocol, default_file) = match stem.as_str() {
            "imapproxy" | "imapproxyaservice" => (Protocol::Imap, "ImapProxyAService.cfg"),
            "popproxy" | "popproxyaservice" => (Protocol::Pop3, "PopProxyAService.cfg"),
            "submitproxy" | "smtpproxy" | "smtpproxyaservice" => {
                diags.warn(
                    file,
                    line,
                    format!("service '{name}' (SMTP submission proxy) is not supported by mailmux; skipped"),
                );
                continue;
            }
            _ => {
                diags.error(
                    file,
                    line,
                    format!("unknown service '{name}' in ServiceList (expected imapproxy or popproxy)"),
                );
                continue;
            }
        };
        // The older form names the file itself; the 7.x form implies it.
        let file_name = if stem.ends_with("aservice") {
            if base.contains('.') && base.to_ascii_lowercase().ends_with(".cfg") {
                base.to_owned()
            } else {
                format!("{}.cfg", base.split('.').next().unwrap_or(base))
            }
        } else {
            default_file.to_owned()
        };
        let mut listeners = Vec::new();
        for port in ports.split('|') {
            match parse_listen(port) {
                Ok(addr) => listeners.push(addr),
                Err(e) => diags.error(file, line, format!("ServiceList {name}: {e}")),
            }
        }
        if let Some(existing) = items.iter_mut().find(|i| i.protocol == protocol) {
            diags.warn(file, line, format!("{name} listed twice; its ports are merged"));
            existing.listeners.extend(listeners);
        } else {
            items.push(ServiceItem { protocol, file: file_name, listeners, line });
        }
    }
    items
}

/// `PORT`, `ADDR:PORT` or `[V6ADDR]:PORT`.
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    text.parse::<SocketAddr>().map_err(|_| format!("'{text}' is not a port, ADDR:PORT or [IPv6]:PORT"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(value: &str) -> (Vec<ServiceItem>, Diagnostics) {
        let mut d = Diagnostics::default();
        (parse(value, Path::new("AService.cfg"), 7, &mut d), d)
    }

    #[test]
    fn seven_x_form() {
        let (i, d) = items("imapproxy@1143|1993 popproxy@1110|1995 submitproxy@125|1465");
        assert_eq!(i.len(), 2);
        assert_eq!(i[0].protocol, Protocol::Imap);
        assert_eq!(i[0].file, "ImapProxyAService.cfg");
        assert_eq!(i[0].listeners, vec!["0.0.0.0:1143".parse().unwrap(), "0.0.0.0:1993".parse().unwrap()]);
        assert_eq!(i[1].file, "PopProxyAService.cfg");
        assert!(d.to_string().contains("not supported"));
    }

    #[test]
    fn older_form_and_addresses() {
        let (i, d) = items("ImapProxyAService.cfg@127.0.0.2:143|[::1]:143 PopProxyAService@110");
        assert!(!d.has_errors(), "{d}");
        assert_eq!(i[0].file, "ImapProxyAService.cfg");
        assert_eq!(i[0].listeners, vec!["127.0.0.2:143".parse().unwrap(), "[::1]:143".parse().unwrap()]);
        assert_eq!(i[1].protocol, Protocol::Pop3);
        assert_eq!(i[1].file, "PopProxyAService.cfg");
    }

    #[test]
    fn errors_name_the_line() {
        let (_, d) = items("imapproxy@99999 mystery@1 noport");
        let text = d.to_string();
        assert!(text.contains("AService.cfg:7: error: ServiceList imapproxy: '99999'"), "{text}");
        assert!(text.contains("unknown service 'mystery'"), "{text}");
        assert!(text.contains("'noport' is not service@port"), "{text}");
    }
}
