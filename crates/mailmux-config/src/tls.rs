//! TLS parameters: toward clients (`SSLEnable`, `SSLPorts`, certificates), toward stores
//! (`SSLBacksidePort`, mailmux's `BacksideStartTLS`), client certificates and
//! `RestrictPlainPasswords`.
//!
//! The MMP kept certificates in NSS databases (`cert8.db`, `key3.db`, `secmod.db`) and chose
//! one by nickname. mailmux reads PEM files: `SSLCertFile` is the certificate chain (leaf
//! first) and `SSLKeyFile` the private key. The NSS-only names are recognised and answered with
//! a warning explaining the replacement; an `SSLCertFile` that names a `.db` file is an error.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::Diagnostics;
use crate::raw::{Entry, parse_bool};

/// TLS toward clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
    /// Listening ports that speak TLS from the first byte (993, 995); the others offer
    /// STARTTLS / STLS.
    pub implicit_ports: Vec<u16>,
    /// Cipher suites by IANA name (`SSLCipherSpecs`); empty means the defaults.
    pub cipher_suites: Vec<String>,
    /// CA certificates that client certificates must chain to (`SSLCACertFile`); without it
    /// no client certificate is requested.
    pub client_ca_file: Option<PathBuf>,
    /// Revoked client certificates (`SSLCRLFile`, PEM CRLs).
    pub crl_file: Option<PathBuf>,
}

/// How mailmux talks to stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreTlsMode {
    /// Plain TCP.
    Off,
    /// TLS from the first byte, on this port (`SSLBacksidePort`).
    Implicit {
        /// The store's TLS port.
        port: u16,
    },
    /// STARTTLS / STLS on the plain port before logging in (`BacksideStartTLS yes`).
    StartTls,
}

/// TLS toward stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreTls {
    /// Off, implicit or STARTTLS.
    pub mode: StoreTlsMode,
    /// CA certificates the stores' certificates must chain to (`SSLBacksideCAFile`); without
    /// it, the system's roots in `/etc/ssl/certs/ca-certificates.crt`.
    pub ca_file: Option<PathBuf>,
    /// `SSLBacksideVerify no` turns verification off (labs only; logged at start-up).
    pub verify: bool,
}

impl Default for StoreTls {
    fn default() -> Self {
        StoreTls { mode: StoreTlsMode::Off, ca_file: None, verify: true }
    }
}

/// NSS-database parameters of the MMP and what replaces them.
const NSS_ONLY: &[&str] = &["sslsecmodfile", "sslcertnicknames", "sslkeypasswdfile", "sslcertprefix", "sslcachedir"];

/// Collects the TLS parameters of one service file.
#[derive(Debug, Default)]
pub struct TlsParams {
    enable: Option<(bool, usize)>,
    ports: Option<(Vec<u16>, usize)>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    cipher_suites: Vec<String>,
    client_ca_file: Option<PathBuf>,
    crl_file: Option<PathBuf>,
    backside_port: Option<u16>,
    backside_starttls: bool,
    backside_ca_file: Option<PathBuf>,
    backside_verify: Option<bool>,
    /// `RestrictPlainPasswords`.
    pub restrict_plain_passwords: bool,
}

impl TlsParams {
    /// Takes one entry if it is a TLS parameter: `None` when it is not, else its result.
    pub fn take(
        &mut self,
        entry: &Entry,
        dir: &Path,
        file: &Path,
        diags: &mut Diagnostics,
    ) -> Option<Result<(), String>> {
        let (key, name, value, line) = (entry.key.as_str(), entry.name.as_str(), entry.value.trim(), entry.line);

        let path = || crate::resolve(dir, value);
        let result = match key {
            "sslenable" => parse_bool(value).map(|b| self.enable = Some((b, line))),
            "sslports" => value
                .split(|c: char| c.is_whitespace() || c == '|' || c == ',')
                .filter(|p| !p.is_empty())
                .map(|p| p.parse::<u16>().map_err(|_| format!("'{p}' is not a port")))
                .collect::<Result<Vec<_>, _>>()
                .map(|ports| self.ports = Some((ports, line))),
            "sslcertfile" if is_nss_db(value) => Err(format!(
                "'{value}' is an NSS certificate database; mailmux reads PEM: export the server certificate \
                 and its chain (certutil -L -a -n NICKNAME) into a .pem file and name it here"
            )),
            "sslkeyfile" if is_nss_db(value) => Err(format!(
                "'{value}' is an NSS key database; mailmux reads a PEM private key: export it \
                 (pk12util -o key.p12 -n NICKNAME, then openssl pkcs12 -nocerts -nodes) and name the .pem here"
            )),
            "sslcertfile" => {
                self.cert_file = Some(path());
                Ok(())
            }
            "sslkeyfile" => {
                self.key_file = Some(path());
                Ok(())
            }
            "sslcipherspecs" => {
                if !value.eq_ignore_ascii_case("all") {
                    self.cipher_suites =
                        value.split([' ', ':', ',']).filter(|s| !s.is_empty()).map(str::to_owned).collect();
                }
                Ok(())
            }
            "sslcacertfile" => {
                self.client_ca_file = Some(path());
                Ok(())
            }
            "sslcrlfile" => {
                self.crl_file = Some(path());
                Ok(())
            }
            "sslbacksideport" => value
                .parse::<u16>()
                .map(|p| self.backside_port = (p != 0).then_some(p))
                .map_err(|_| format!("'{value}' is not a port number (0 turns TLS to stores off)")),
            "backsidestarttls" => parse_bool(value).map(|b| self.backside_starttls = b),
            "sslbacksidecafile" => {
                self.backside_ca_file = Some(path());
                Ok(())
            }
            "sslbacksideverify" => parse_bool(value).map(|b| self.backside_verify = Some(b)),
            "restrictplainpasswords" => parse_bool(value).map(|b| self.restrict_plain_passwords = b),
            _ if NSS_ONLY.contains(&key) => {
                diags.warn(
                    file,
                    line,
                    format!("{name}: NSS databases are not used by mailmux; certificates and keys are PEM files named by SSLCertFile and SSLKeyFile (docs/tls.md)"),
                );
                Ok(())
            }
            _ => return None,
        };
        Some(result)
    }

    /// Checks the collected values against the service's listeners.
    pub fn finish(
        self,
        listeners: &[SocketAddr],
        file: &Path,
        diags: &mut Diagnostics,
    ) -> (Option<ServerTls>, StoreTls) {
        let store = StoreTls {
            mode: match (self.backside_port, self.backside_starttls) {
                (Some(port), false) => StoreTlsMode::Implicit { port },
                (None, true) => StoreTlsMode::StartTls,
                (Some(_), true) => {
                    diags.error(file, 0, "SSLBacksidePort and BacksideStartTLS exclude each other: choose implicit TLS or STARTTLS to stores");
                    StoreTlsMode::Off
                }
                (None, false) => StoreTlsMode::Off,
            },
            ca_file: self.backside_ca_file,
            verify: self.backside_verify.unwrap_or(true),
        };
        let enabled = self.enable.is_some_and(|(b, _)| b);
        if !enabled {
            if let Some((_, line)) = self.ports {
                diags.warn(file, line, "SSLPorts has no effect without SSLEnable yes");
            }
            if self.restrict_plain_passwords {
                diags.warn(file, 0, "RestrictPlainPasswords without SSLEnable yes refuses every plaintext password");
            }
            return (None, store);
        }
        let line = self.enable.map_or(0, |(_, l)| l);
        let (Some(cert_file), Some(key_file)) = (self.cert_file, self.key_file) else {
            diags.error(
                file,
                line,
                "SSLEnable yes needs SSLCertFile (PEM certificate chain) and SSLKeyFile (PEM private key)",
            );
            return (None, store);
        };
        let implicit_ports = self.ports.map(|(p, _)| p).unwrap_or_default();
        for port in &implicit_ports {
            if !listeners.iter().any(|l| l.port() == *port) {
                diags.error(
                    file,
                    line,
                    format!("SSLPorts names port {port}, which ServiceList does not give this service"),
                );
            }
        }
        (
            Some(ServerTls {
                cert_file,
                key_file,
                implicit_ports,
                cipher_suites: self.cipher_suites,
                client_ca_file: self.client_ca_file,
                crl_file: self.crl_file,
            }),
            store,
        )
    }
}

fn is_nss_db(value: &str) -> bool {
    value.to_ascii_lowercase().ends_with(".db")
}
