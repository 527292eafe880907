//! The parameters of one proxy service (`ImapProxyAService.cfg`, `PopProxyAService.cfg`),
//! typed and validated.
//!
//! Three kinds of names are recognised:
//! * implemented MMP parameters, parsed here (see the [`ServiceConfig`] fields);
//! * mailmux additions, documented in `docs/configuration.md` (`ReplayMechanism`,
//!   `PreAuthTimeout`, `LdapTimeout`, `BacksideTimeout`, `ShutdownTimeout`, `ForwardClientAddress`,
//!   `LdapStartTLS`,
//!   `LdapCAFile`, and the TLS ones in [`crate::tls`]);
//! * MMP parameters mailmux does not implement yet: accepted with a warning saying so, so an
//!   MMP file loads unchanged and the operator knows what is not in effect.
//!
//! Anything else is an unknown name: a warning with file and line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mailmux_proto::{ReplayMechanism, Secret};

use crate::certmap::CertMap;
use crate::edge::EdgeConfig;
use crate::raw::Entry;
use crate::tls::{ServerTls, StoreTls, TlsParams};
use crate::{Diagnostics, DirectoryUrl, Template, directory_url};

/// The protocol a service proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// IMAP4rev1 / IMAP4rev2.
    Imap,
    /// POP3.
    Pop3,
}

impl Protocol {
    /// Short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Imap => "imap",
            Protocol::Pop3 => "pop3",
        }
    }

    /// The store port when neither the mailHost nor `BacksidePort` gives one.
    pub fn default_store_port(self) -> u16 {
        match self {
            Protocol::Imap => 143,
            Protocol::Pop3 => 110,
        }
    }
}

/// `LogLevel`: a syslog severity, 3 (errors) to 7 (debug). 5 (notice) is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogLevel(pub u8);

impl Default for LogLevel {
    fn default() -> Self {
        LogLevel(5)
    }
}

impl LogLevel {
    /// Parses a level; values below 3 (the pre-6.3 scale) are read as 3.
    pub fn parse(value: &str) -> Result<LogLevel, String> {
        match value.trim().parse::<u8>() {
            Ok(n) if n <= 7 => Ok(LogLevel(n.max(3))),
            _ => Err(format!("'{value}' is not a level from 0 to 7")),
        }
    }
}

/// Everything one proxy service needs, from its configuration file.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// IMAP or POP3.
    pub protocol: Protocol,
    /// The file it came from, for messages.
    pub file: PathBuf,
    /// Addresses to listen on (from `ServiceList`).
    pub listeners: Vec<SocketAddr>,
    /// `LdapURL`: directory servers, tried in order.
    pub directory: Vec<DirectoryUrl>,
    /// `BindDN`: the identity of mailmux's own searches (anonymous when unset).
    pub bind_dn: Option<String>,
    /// `BindPass`.
    pub bind_pass: Option<Secret>,
    /// `ForwardClientAddress` (mailmux): tell IMAP stores the client's address with an ID
    /// command ahead of the login.
    pub forward_client_address: bool,
    /// `LdapStartTLS` (mailmux): StartTLS on `ldap://` servers before binding.
    pub ldap_starttls: bool,
    /// `LdapCAFile` (mailmux): CA certificates LDAP servers' certificates must chain to
    /// (`ldaps://` and StartTLS); without it, the system's roots.
    pub ldap_ca_file: Option<PathBuf>,
    /// `SearchFormat`: the filter that finds the user's entry, always in parentheses.
    pub search_format: Template,
    /// `MailHostAttrs`: attributes naming the store, first present wins.
    pub mail_host_attrs: Vec<String>,
    /// `DefaultDomain`: appended to login names without a domain.
    pub default_domain: Option<String>,
    /// `VirtualDomainDelim`: characters that separate user and domain in a login name.
    pub domain_delims: Vec<char>,
    /// `ReplayFormat`: the user id presented to the store.
    pub replay_format: Template,
    /// `ReplayMechanism` (mailmux): how the login is presented to the store.
    pub replay_mechanism: ReplayMechanism,
    /// `BacksidePort`: the store port when the mailHost has none.
    pub backside_port: u16,
    /// `Timeout`: how long a session may be idle.
    pub timeout: Duration,
    /// `PreAuthTimeout` (mailmux): how long a client may take to log in.
    pub preauth_timeout: Duration,
    /// `LdapTimeout` (mailmux): limit for one directory operation, connecting included.
    pub ldap_timeout: Duration,
    /// `BacksideTimeout` (mailmux): limit for connecting to and logging into a store.
    pub backside_timeout: Duration,
    /// `ShutdownTimeout` (mailmux): how long relayed sessions may drain at shutdown.
    pub shutdown_timeout: Duration,
    /// `Banner`: greeting text.
    pub banner: String,
    /// `Capability`: the pre-login IMAP capability list (without STARTTLS and AUTH=).
    pub capability: String,
    /// `ServerDownAlert`: shown to users whose store is down.
    pub server_down_alert: Option<String>,
    /// `LogDir` of this service.
    pub log_dir: Option<PathBuf>,
    /// `LogLevel` of this service.
    pub log_level: Option<LogLevel>,
    /// TLS toward clients (`SSLEnable yes`).
    pub tls: Option<ServerTls>,
    /// TLS toward stores.
    pub store_tls: StoreTls,
    /// `RestrictPlainPasswords`: no plaintext password before TLS.
    pub restrict_plain_passwords: bool,
    /// `CertMapFile`: how client certificates map to users (certificate logins).
    pub cert_map: Option<CertMap>,
    /// `StoreAdmin` / `StoreAdminPass`: the store identity mailmux logs in as on behalf of
    /// users it authenticated itself (certificates).
    pub store_admin: Option<(String, Secret)>,
    /// Who may connect and what failed logins cost (BadGuy, failure limits).
    pub edge: EdgeConfig,
}

/// What mailmux advertises before login when `Capability` is not set.
pub const DEFAULT_IMAP_CAPABILITY: &str = "IMAP4rev1 ID LITERAL+ SASL-IR";

/// MMP parameters recognised but not implemented yet.
const NOT_YET: &[&str] = &[
    "authcachesize",
    "authcachettl",
    "authenticationldapattributes",
    "authenticationserver",
    "authservice",
    "authservicettl",
    "canonicalvirtualdomaindelim",
    "crams",
    "domainsearchformat",
    "failovertimeout",
    "hosteddomains",
    "ldapcachesize",
    "ldapcachettl",
    "preauth",
    "spoofmessagefile",
    "ssladjustciphersuites",
    "virtualdomainfile",
    "adminpolicy",
    "spooftempfail",
    "spoofemptymailbox",
];

/// Builds a service from its entries; `None` when an error was recorded.
pub fn build(
    protocol: Protocol,
    listeners: Vec<SocketAddr>,
    file: &Path,
    dir: &Path,
    entries: &[Entry],
    diags: &mut Diagnostics,
) -> Option<ServiceConfig> {
    let errors_before = diags.0.iter().filter(|d| d.severity == crate::Severity::Error).count();
    let mut svc = ServiceConfig {
        protocol,
        file: file.to_path_buf(),
        listeners,
        directory: Vec::new(),
        bind_dn: None,
        bind_pass: None,
        forward_client_address: true,
        ldap_starttls: false,
        ldap_ca_file: None,
        search_format: Template::parse("(uid=%s)", false).ok()?,
        mail_host_attrs: vec!["mailhost".to_owned()],
        default_domain: None,
        domain_delims: vec!['@'],
        replay_format: Template::parse("%U", true).ok()?,
        replay_mechanism: ReplayMechanism::Login,
        backside_port: protocol.default_store_port(),
        timeout: Duration::from_secs(1800),
        preauth_timeout: Duration::from_secs(120),
        ldap_timeout: Duration::from_secs(10),
        backside_timeout: Duration::from_secs(15),
        shutdown_timeout: Duration::from_secs(30),
        banner: match protocol {
            Protocol::Imap => "mailmux IMAP proxy ready".to_owned(),
            Protocol::Pop3 => "mailmux POP3 proxy ready".to_owned(),
        },
        capability: DEFAULT_IMAP_CAPABILITY.to_owned(),
        server_down_alert: None,
        log_dir: None,
        log_level: None,
        tls: None,
        store_tls: StoreTls::default(),
        restrict_plain_passwords: false,
        cert_map: None,
        store_admin: None,
        edge: EdgeConfig::default(),
    };
    let (mut store_admin, mut store_admin_pass) = (None, None);
    let mut cert_map_line = 0;
    let mut saw_ldap_url = false;
    let mut tls = TlsParams::default();
    for e in entries {
        let v = e.value.trim();
        if let Some(result) = tls.take(e, dir, file, diags).or_else(|| svc.edge.take(e, dir)) {
            if let Err(message) = result {
                diags.error(file, e.line, format!("{}: {message}", e.name));
            }
            continue;
        }
        let result: Result<(), String> = match e.key.as_str() {
            "ldapurl" => {
                saw_ldap_url = true;
                v.split_whitespace()
                    .map(|u| directory_url::parse(u, dir))
                    .collect::<Result<Vec<_>, _>>()
                    .and_then(|urls| if urls.is_empty() { Err("LdapURL is empty".into()) } else { Ok(urls) })
                    .and_then(|urls| directory_url::check_list(&urls).map(|()| urls))
                    .map(|urls| svc.directory = urls)
            }
            "forwardclientaddress" => crate::raw::parse_bool(v).map(|b| svc.forward_client_address = b),
            "ldapstarttls" => crate::raw::parse_bool(v).map(|b| svc.ldap_starttls = b),
            "ldapcafile" => {
                svc.ldap_ca_file = Some(crate::resolve(dir, v));
                Ok(())
            }
            "binddn" => {
                svc.bind_dn = (!v.is_empty()).then(|| v.to_owned());
                Ok(())
            }
            "bindpass" => {
                svc.bind_pass = (!v.is_empty()).then(|| Secret::new(v));
                Ok(())
            }
            // `uid=%s` is written without parentheses in some MMP files; LDAP wants them.
            "searchformat" if v.starts_with('(') => Template::parse(v, false).map(|t| svc.search_format = t),
            "searchformat" => Template::parse(&format!("({v})"), false).map(|t| svc.search_format = t),
            "mailhostattrs" => {
                let attrs: Vec<String> = v.split_whitespace().map(str::to_ascii_lowercase).collect();
                if attrs.is_empty() {
                    Err("MailHostAttrs names no attribute".into())
                } else {
                    svc.mail_host_attrs = attrs;
                    Ok(())
                }
            }
            "defaultdomain" => {
                svc.default_domain = (!v.is_empty()).then(|| v.to_owned());
                Ok(())
            }
            "virtualdomaindelim" | "domaindelim" => {
                if v.is_empty() {
                    Err("VirtualDomainDelim is empty".into())
                } else {
                    svc.domain_delims = v.chars().filter(|c| !c.is_whitespace()).collect();
                    Ok(())
                }
            }
            "replayformat" => Template::parse(v, true).map(|t| svc.replay_format = t),
            "replaymechanism" => match v.to_ascii_lowercase().as_str() {
                "login" => Ok(ReplayMechanism::Login),
                "plain" => Ok(ReplayMechanism::Plain),
                _ => Err(format!("ReplayMechanism '{v}' is not 'login' or 'plain'")),
            }
            .map(|m| svc.replay_mechanism = m),
            "backsideport" => parse_port(v).map(|p| svc.backside_port = p),
            "timeout" => parse_seconds(v).map(|d| svc.timeout = d),
            "preauthtimeout" => parse_seconds(v).map(|d| svc.preauth_timeout = d),
            "ldaptimeout" => parse_seconds(v).map(|d| svc.ldap_timeout = d),
            "backsidetimeout" => parse_seconds(v).map(|d| svc.backside_timeout = d),
            "shutdowntimeout" => parse_seconds(v).map(|d| svc.shutdown_timeout = d),
            "banner" => {
                if v.contains(['\r', '\n']) {
                    Err("Banner must be one line".into())
                } else {
                    svc.banner = v.to_owned();
                    Ok(())
                }
            }
            "capability" => {
                let caps: Vec<&str> = v.split_whitespace().collect();
                if caps
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case("STARTTLS") || c.to_ascii_uppercase().starts_with("AUTH="))
                {
                    diags.warn(
                        file,
                        e.line,
                        "Capability: STARTTLS and AUTH= items are added by mailmux and were dropped here",
                    );
                }
                let kept: Vec<&str> = caps
                    .into_iter()
                    .filter(|c| !c.eq_ignore_ascii_case("STARTTLS") && !c.to_ascii_uppercase().starts_with("AUTH="))
                    .collect();
                if protocol == Protocol::Pop3 {
                    diags.warn(file, e.line, "Capability has no effect on POP3");
                }
                svc.capability = kept.join(" ");
                Ok(())
            }
            "certmapfile" => {
                cert_map_line = e.line;
                let path = crate::resolve(dir, v);
                std::fs::read_to_string(&path)
                    .map(|text| svc.cert_map = Some(crate::certmap::parse(&path, &text, diags)))
                    .map_err(|err| format!("cannot read {}: {err}", path.display()))
            }
            "storeadmin" => {
                store_admin = (!v.is_empty()).then(|| v.to_owned());
                Ok(())
            }
            "storeadminpass" => {
                store_admin_pass = (!v.is_empty()).then(|| Secret::new(v));
                Ok(())
            }
            "serverdownalert" => {
                svc.server_down_alert = (!v.is_empty()).then(|| v.to_owned());
                Ok(())
            }
            "logdir" => {
                svc.log_dir = Some(crate::resolve(dir, v));
                Ok(())
            }
            "loglevel" => LogLevel::parse(v).map(|l| svc.log_level = Some(l)),
            key if NOT_YET.contains(&key) => {
                diags.warn(
                    file,
                    e.line,
                    format!("{} is an MMP parameter mailmux does not implement yet; ignored", e.name),
                );
                Ok(())
            }
            _ => {
                diags.warn(file, e.line, format!("unknown parameter '{}' ignored", e.name));
                Ok(())
            }
        };
        if let Err(message) = result {
            diags.error(file, e.line, format!("{}: {message}", e.name));
        }
    }
    svc.restrict_plain_passwords = tls.restrict_plain_passwords;
    (svc.tls, svc.store_tls) = tls.finish(&svc.listeners, file, diags);
    svc.store_admin = match (store_admin, store_admin_pass) {
        (Some(user), Some(pass)) => Some((user, pass)),
        (None, None) => None,
        _ => {
            diags.error(file, 0, "StoreAdmin and StoreAdminPass must be set together");
            None
        }
    };
    if svc.cert_map.is_some() {
        if svc.tls.as_ref().is_none_or(|t| t.client_ca_file.is_none()) {
            diags.error(
                file,
                cert_map_line,
                "CertMapFile needs SSLEnable yes and SSLCACertFile (the CA client certificates must chain to)",
            );
        }
        if svc.store_admin.is_none() {
            diags.error(
                file,
                cert_map_line,
                "CertMapFile needs StoreAdmin and StoreAdminPass: certificate users have no password to replay",
            );
        }
    }
    if !saw_ldap_url {
        diags.error(file, 0, "LdapURL is missing: mailmux needs a directory (ldap://… or ldif:…)");
    }
    if svc.bind_dn.is_some() != svc.bind_pass.is_some() {
        diags.warn(file, 0, "BindDN and BindPass should be set together; searches will bind anonymously");
    }
    let errors_after = diags.0.iter().filter(|d| d.severity == crate::Severity::Error).count();
    (errors_after == errors_before).then_some(svc)
}

fn parse_port(v: &str) -> Result<u16, String> {
    v.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| format!("'{v}' is not a port number (1-65535)"))
}

fn parse_seconds(v: &str) -> Result<Duration, String> {
    v.parse::<u64>()
        .ok()
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("'{v}' is not a positive number of seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(text: &str) -> (Option<ServiceConfig>, Diagnostics) {
        let mut d = Diagnostics::default();
        let file = Path::new("/cfg/ImapProxyAService.cfg");
        let entries = crate::raw::parse(file, text, None, &mut d);
        let listeners = vec!["0.0.0.0:143".parse().unwrap(), "0.0.0.0:993".parse().unwrap()];
        let svc = build(Protocol::Imap, listeners, file, Path::new("/cfg"), &entries, &mut d);
        (svc, d)
    }

    const VENDOR_SAMPLE: &str = "default:LdapUrl ldap://phonebook.siroe.com/o=internet\n\
             default:LogLevel 5\n\
             default:BindDN \"cn=Directory Manager\"\n\
             default:BindPass secret\n\
             default:BacksidePort 143\n\
             default:Timeout 1800\n\
             default:Capability \"IMAP4 IMAP4rev1 ACL QUOTA LITERAL+ NAMESPACE UIDPLUS CHILDREN BINARY LANGUAGE XSENDER X-NETSCAPE XSERVERINFO\"\n\
             default:SearchFormat (uid=%s)\n\
             default:SSLEnable yes\n\
             default:SSLPorts 993\n\
             default:SSLCertNicknames Siroe.com Server-Cert\n\
             default:VirtualDomainDelim @\n\
             default:ServerDownAlert \"your IMAP server appears to be temporarily out of service\"\n\
             default:MailHostAttrs mailHost\n\
             default:PreAuth no\n";

    #[test]
    fn vendor_sample_needs_only_pem_files_to_load() {
        // As shipped, the sample names an NSS certificate: mailmux says what to do instead.
        let (svc, d) = service(VENDOR_SAMPLE);
        assert!(svc.is_none());
        let text = d.to_string();
        assert!(
            text.contains("ImapProxyAService.cfg:9: error: SSLEnable yes needs SSLCertFile (PEM certificate chain)"),
            "{text}"
        );
        assert!(
            text.contains("ImapProxyAService.cfg:11: warning: SSLCertNicknames: NSS databases are not used by mailmux"),
            "{text}"
        );
        assert!(
            text.contains(
                "ImapProxyAService.cfg:15: warning: PreAuth is an MMP parameter mailmux does not implement yet"
            ),
            "{text}"
        );

        let with_pem =
            format!("{VENDOR_SAMPLE}default:SSLCertFile /etc/mailmux/cert.pem\ndefault:SSLKeyFile key.pem\n");
        let (svc, d) = service(&with_pem);
        let svc = svc.unwrap_or_else(|| panic!("{d}"));
        assert_eq!(svc.bind_dn.as_deref(), Some("cn=Directory Manager"));
        assert_eq!(svc.timeout, Duration::from_secs(1800));
        assert!(svc.capability.starts_with("IMAP4 IMAP4rev1 ACL"));
        assert_eq!(svc.mail_host_attrs, vec!["mailhost"]);
        assert_eq!(svc.server_down_alert.as_deref(), Some("your IMAP server appears to be temporarily out of service"));
        let tls = svc.tls.expect("TLS on");
        assert_eq!(tls.implicit_ports, vec![993]);
        assert_eq!(tls.key_file, Path::new("/cfg/key.pem"));
    }

    #[test]
    fn search_format_without_parentheses_gets_them() {
        let (svc, _) = service("default:LdapURL ldif:u\ndefault:SearchFormat uid=%s\n");
        assert_eq!(svc.unwrap().search_format.source(), "(uid=%s)");
    }

    #[test]
    fn tls_to_stores_and_its_conflicts() {
        let (svc, _) =
            service("default:LdapURL ldif:u\ndefault:SSLBacksidePort 993\ndefault:SSLBacksideCAFile ca.pem\n");
        let store = svc.unwrap().store_tls;
        assert_eq!(store.mode, crate::StoreTlsMode::Implicit { port: 993 });
        assert_eq!(store.ca_file.as_deref(), Some(Path::new("/cfg/ca.pem")));
        assert!(store.verify);
        let (svc, _) = service("default:LdapURL ldif:u\ndefault:BacksideStartTLS yes\ndefault:SSLBacksideVerify no\n");
        let store = svc.unwrap().store_tls;
        assert_eq!((store.mode, store.verify), (crate::StoreTlsMode::StartTls, false));
        let (svc, d) = service("default:LdapURL ldif:u\ndefault:BacksideStartTLS yes\ndefault:SSLBacksidePort 993\n");
        assert!(svc.is_none(), "{d}");
        let (svc, d) = service("default:LdapURL ldif:u\ndefault:SSLEnable yes\ndefault:SSLCertFile /x/cert8.db\n");
        assert!(svc.is_none());
        assert!(d.to_string().contains("is an NSS certificate database"), "{d}");
    }

    #[test]
    fn every_bad_value_and_unknown_name_is_reported_in_one_pass() {
        let (svc, d) = service(
            "default:LdapURL ldap://h/o=x\n\
             default:BacksidePort 70000\n\
             default:Timeout soon\n\
             default:SearchFormat (uid=%q)\n\
             default:Frobnicate 1\n\
             default:ReplayMechanism kerberos\n",
        );
        assert!(svc.is_none());
        let text = d.to_string();
        for needle in [
            "ImapProxyAService.cfg:2: error: BacksidePort: '70000' is not a port",
            "ImapProxyAService.cfg:3: error: Timeout: 'soon'",
            "ImapProxyAService.cfg:4: error: SearchFormat: unknown token %q",
            "ImapProxyAService.cfg:5: warning: unknown parameter 'Frobnicate' ignored",
            "ImapProxyAService.cfg:6: error: ReplayMechanism",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }

    #[test]
    fn ldap_url_names_one_ldif_file_and_does_not_mix_kinds() {
        let (svc, d) = service("default:Timeout 60\ndefault:LdapURL ldif:a.ldif ldif:b.ldif\n");
        assert!(svc.is_none());
        let text = d.to_string();
        assert!(text.contains("ImapProxyAService.cfg:2: error: LdapURL: names 2 ldif: files"), "{text}");
        let (svc, d) = service("default:LdapURL ldap://h/o=x ldif:a.ldif\n");
        assert!(svc.is_none());
        let text = d.to_string();
        assert!(text.contains("ImapProxyAService.cfg:1: error: LdapURL: mixes ldap:// and ldif:"), "{text}");
        let (svc, d) = service("default:LdapURL ldap://h/o=x ldap://g/o=x\n");
        assert_eq!(svc.map(|s| s.directory.len()), Some(2), "{d}");
    }

    #[test]
    fn ldap_url_is_required_and_capability_drops_auth_items() {
        let (svc, d) = service("default:Capability \"IMAP4rev1 STARTTLS AUTH=PLAIN IDLE\"\n");
        assert!(svc.is_none());
        assert!(d.to_string().contains("LdapURL is missing"));
        let (svc, _) =
            service("default:LdapURL ldif:u.ldif\ndefault:Capability \"IMAP4rev1 STARTTLS AUTH=PLAIN IDLE\"\n");
        assert_eq!(svc.unwrap().capability, "IMAP4rev1 IDLE");
    }
}
