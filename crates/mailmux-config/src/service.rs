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
//!
//! `VirtualDomainFile` names a vdmap file ([`crate::vdmap`]); it is read by [`crate::load`],
//! which builds one complete [`ServiceConfig`] per virtual domain with [`build_layered`]: the
//! service file's entries, then the domain's, the later replacing the earlier.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use mailmux_proto::{ReplayMechanism, Secret};

use crate::auth::AuthConfig;
use crate::certmap::CertMap;
use crate::edge::EdgeConfig;
use crate::lookup::LookupConfig;
use crate::raw::Entry;
use crate::tls::{ServerTls, StoreTls, TlsParams};
use crate::vdmap::VirtualDomain;
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

/// `LogLevel`: a syslog severity, the highest written: 1 alert, 2 critical, 3 error,
/// 4 warning, 5 notice (the default), 6 information, 7 debug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogLevel(pub u8);

impl Default for LogLevel {
    fn default() -> Self {
        LogLevel(5)
    }
}

impl LogLevel {
    /// Parses a level from 0 to 7; 0 (emergency) reads as 1, since mailmux writes no
    /// emergency lines and a log that shows nothing at all helps nobody.
    pub fn parse(value: &str) -> Result<LogLevel, String> {
        match value.trim().parse::<u8>() {
            Ok(n) if n <= 7 => Ok(LogLevel(n.max(1))),
            _ => Err(format!("'{value}' is not a level from 1 (alerts only) to 7 (debug)")),
        }
    }
}

/// `LogFormat` (mailmux): how log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event (the default).
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl LogFormat {
    /// Parses `text` or `json`.
    pub fn parse(value: &str) -> Result<LogFormat, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("'{value}' is not 'text' or 'json'")),
        }
    }

    /// The name as written in the files.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// `SlowClientBuffer`'s default: 1 MiB per session, a few large messages' worth of slack.
pub const DEFAULT_SLOW_CLIENT_BUFFER: usize = 1 << 20;

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
    /// `ForwardClientAddress` (mailmux): tell stores the client's address ahead of the login
    /// (IMAP `ID`, POP3 `XCLIENT`).
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
    /// `SlowClientBuffer` (mailmux): bytes a relayed session may read from its store ahead of
    /// a client that reads slower, so the store finishes and moves on (the MMP's "buffering so
    /// that slow clients do not slow down the Messaging Server"). 0: flow control only.
    pub slow_client_buffer: usize,
    /// `LdapTimeout` (mailmux): limit for one directory operation, connecting included.
    pub ldap_timeout: Duration,
    /// `BacksideTimeout` (mailmux): limit for connecting to and logging into a store.
    pub backside_timeout: Duration,
    /// `ShutdownTimeout` (mailmux): how long relayed sessions may drain at shutdown.
    pub shutdown_timeout: Duration,
    /// `Banner`: greeting text.
    pub banner: String,
    /// `Capability`: the pre-login IMAP capability list (without STARTTLS and AUTH=); `None`
    /// (not set): what the stores share, learned from them (see `capability_learning`).
    pub capability: Option<String>,
    /// `CapabilityStores`, `CapabilityRefresh`: which stores are asked what they offer, how often.
    pub capability_learning: crate::store_capabilities::CapabilityLearning,
    /// `SpoofMessageFile`, `SpoofEmptyMailbox`, `SpoofTempFail` (POP3): the maildrop served
    /// when the store is down.
    pub spoof: crate::spoof::SpoofConfig,
    /// `ServerDownAlert`: shown to users whose store is down.
    pub server_down_alert: Option<String>,
    /// `LogDir` of this service.
    pub log_dir: Option<PathBuf>,
    /// `LogLevel` of this service.
    pub log_level: Option<LogLevel>,
    /// `LogFormat` (mailmux) of this service's log.
    pub log_format: Option<LogFormat>,
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
    /// How users are found: hosted domains or one tree, the canonical delimiter, the cache.
    pub lookup: LookupConfig,
    /// `PreAuth`, `AuthCache*`, `CRAMs`.
    pub auth: AuthConfig,
    /// `CertMap` (vdmap entries only): the map of `CertMapFile` named for connections on the
    /// domain's address. Checked at load against the maps the file defines; not yet used by
    /// the certificate login, which chooses a map by issuer.
    pub cert_map_name: Option<String>,
    /// `VirtualDomainFile`: the vdmap file `virtual_domains` were read from.
    pub virtual_domain_file: Option<PathBuf>,
    /// The vdmap entries: per local address, a complete configuration of its own. Empty in
    /// the configurations of the domains themselves. See [`ServiceConfig::for_local_address`].
    pub virtual_domains: Vec<VirtualDomain>,
    /// Where each setting was written (file and line), for `mailmux check --effective`.
    pub origins: crate::origin::Origins,
    /// `CertMapFile`: the file `cert_map` was read from.
    pub cert_map_file: Option<PathBuf>,
    /// MMP parameters mailmux recognises but does not implement yet (`NOT_YET`), as written
    /// and unchecked, so that each feature finds its value (per virtual domain, too) when it
    /// lands. None of them is a secret, which is why they may appear in `Debug`.
    pub not_implemented: Vec<Entry>,
}

impl ServiceConfig {
    /// The store port a `mailHost` without one means: `SSLBacksidePort` with implicit TLS,
    /// else `BacksidePort`.
    pub fn store_port(&self) -> u16 {
        match self.store_tls.mode {
            crate::StoreTlsMode::Implicit { port } => port,
            crate::StoreTlsMode::Off | crate::StoreTlsMode::StartTls => self.backside_port,
        }
    }

    /// The configuration for connections that arrived on `local` (the mailmux address the
    /// client connected to): its virtual domain's, or the service's own. An IPv4-mapped IPv6
    /// address (a dual-stack `[::]` listener) matches the IPv4 entry.
    pub fn for_local_address(&self, local: IpAddr) -> &ServiceConfig {
        self.virtual_domain(local).map_or(self, |d| &d.config)
    }

    /// The virtual domain of connections that arrived on `local`, if any (for its name in logs).
    pub fn virtual_domain(&self, local: IpAddr) -> Option<&VirtualDomain> {
        let local = local.to_canonical();
        // One entry per address of the machine at most: a scan is all it takes.
        self.virtual_domains.iter().find(|d| d.address == local)
    }
}

/// `StoreAdmin` when only `StoreAdminPass` is set: the uid of the site administrator that
/// Messaging Server's installer creates (`service.siteadmin.userid`).
pub const DEFAULT_STORE_ADMIN: &str = "admin";

/// What mailmux advertises before login when `Capability` is not set and no store has said
/// what it offers yet: what its own pre-login parser takes.
pub const DEFAULT_IMAP_CAPABILITY: &str = "IMAP4rev1 ID LITERAL+ SASL-IR";

/// MMP parameters recognised but not implemented yet.
pub(crate) const NOT_YET: &[&str] = &[
    "authenticationldapattributes",
    "authenticationserver",
    "authservice",
    "authservicettl",
    "failovertimeout",
    "ssladjustciphersuites",
    "adminpolicy",
];

/// Every other name the service files may hold (besides [`NOT_YET`]): what [`build`],
/// [`TlsParams::take`], [`EdgeConfig::take`] and [`LookupConfig::take`] parse, and `AService.cfg`'s own names. The
/// vdmap reader needs the list to tell a known parameter that may not be set per domain (an
/// error) from an unknown one (a warning); a test keeps it in step with the parsers.
const KNOWN: &[&str] = &[
    // build
    "ldapurl",
    "forwardclientaddress",
    "ldapstarttls",
    "ldapcafile",
    "binddn",
    "bindpass",
    "searchformat",
    "mailhostattrs",
    "defaultdomain",
    "virtualdomaindelim",
    "replayformat",
    "replaymechanism",
    "backsideport",
    "timeout",
    "preauthtimeout",
    "slowclientbuffer",
    "ldaptimeout",
    "backsidetimeout",
    "shutdowntimeout",
    "banner",
    "capability",
    "certmapfile",
    "certmap",
    "storeadmin",
    "storeadminpass",
    "serverdownalert",
    "logdir",
    "loglevel",
    "logformat",
    "virtualdomainfile",
    // TlsParams::take
    "sslenable",
    "sslports",
    "sslcertfile",
    "sslkeyfile",
    "sslcipherspecs",
    "sslcacertfile",
    "sslcrlfile",
    "sslbacksideport",
    "backsidestarttls",
    "sslbacksidecafile",
    "sslbacksideverify",
    "restrictplainpasswords",
    "sslsecmodfile",
    "sslcertnicknames",
    "sslkeypasswdfile",
    "sslcertprefix",
    "sslcachedir",
    // EdgeConfig::take
    "bgpenalty",
    "bgmaxbadness",
    "bgdecay",
    "bglinear",
    "bgmax",
    "bgexcluded",
    "connlimits",
    "tcpaccess",
    "tcpaccessattr",
    "clientlookup",
    "maxloginfailures",
    "failuredelay",
    "proxyprotocolfrom",
    // LookupConfig::take
    "hosteddomains",
    "domainsearchformat",
    "hosteddomainfilter",
    "canonicalvirtualdomaindelim",
    "canonicaldomaindelim",
    "ldapcachesize",
    "ldapcachettl",
    "ldapcachemaxstale",
    // AuthConfig::take
    "preauth",
    "authcachesize",
    "authcachettl",
    "crams",
    "oauthbearer",
    // CapabilityLearning::take
    "capabilitystores",
    "capabilityrefresh",
    // SpoofConfig::take
    "spoofmessagefile",
    "spoofemptymailbox",
    "spooftempfail",
];

/// `AService.cfg`'s own parameters (parsed by `crate::load`, not by a service's `build`).
const ASERVICE_KNOWN: &[&str] = &[
    "servicelist",
    "numthreads",
    "maxsessions",
    "maxpreloginsessions",
    "maxpreloginpernetwork",
    "pidfile",
    "slowclientbuffertotal",
    "metricslisten",
    "metricsallowremote",
    "adminlisten",
];

/// Every parameter name mailmux knows, implemented or not, lower case (aliases included).
#[cfg(test)]
pub(crate) fn known_names() -> impl Iterator<Item = &'static str> {
    KNOWN.iter().chain(ASERVICE_KNOWN).chain(NOT_YET).copied()
}

/// Whether a (lower-case) name is a parameter mailmux knows, implemented or not.
pub(crate) fn is_known(key: &str) -> bool {
    let key = canonical_key(key);
    KNOWN.contains(&key) || ASERVICE_KNOWN.contains(&key) || NOT_YET.contains(&key)
}

/// Whether a (lower-case) name is an MMP parameter mailmux does not implement yet.
pub(crate) fn is_not_implemented(key: &str) -> bool {
    NOT_YET.contains(&canonical_key(key))
}

/// The one spelling of a (lower-case) name that has two, so that a vdmap entry written one
/// way replaces a service setting written the other.
pub(crate) fn canonical_key(key: &str) -> &str {
    match key {
        // The MMP's vdmap option list says DomainDelim for VirtualDomainDelim.
        "domaindelim" => "virtualdomaindelim",
        // The 6.x administrator's guide lists "AuthCacheSize and AuthCacheSizeTTL".
        "authcachesizettl" => "authcachettl",
        "canonicaldomaindelim" => "canonicalvirtualdomaindelim",
        other => other,
    }
}

/// Settings of one virtual domain, laid over a service file's entries by [`build_layered`].
#[derive(Debug, Clone, Copy)]
pub struct Overrides<'a> {
    /// The vdmap file, where problems with these entries are reported.
    pub file: &'a Path,
    /// The domain's entries, one per (canonical) name; their lines are the vdmap file's.
    pub entries: &'a [Entry],
}

/// Builds a service from its entries; `None` when an error was recorded.
pub fn build(
    protocol: Protocol,
    listeners: Vec<SocketAddr>,
    file: &Path,
    dir: &Path,
    entries: &[Entry],
    diags: &mut Diagnostics,
) -> Option<ServiceConfig> {
    build_layered(protocol, listeners, file, dir, entries, None, diags)
}

/// Builds a service from its file's entries and, for a virtual domain, the domain's entries
/// on top: a name the domain sets replaces the service file's setting (no "set again"
/// warning: overriding is the point). Problems with an override are reported at its vdmap
/// line. `None` when an error was recorded.
pub fn build_layered(
    protocol: Protocol,
    listeners: Vec<SocketAddr>,
    file: &Path,
    dir: &Path,
    entries: &[Entry],
    overrides: Option<Overrides<'_>>,
    diags: &mut Diagnostics,
) -> Option<ServiceConfig> {
    // (where to report, whether it is a per-domain setting, the entry)
    let layered: Vec<(&Path, bool, &Entry)> = match overrides {
        None => entries.iter().map(|e| (file, false, e)).collect(),
        Some(o) => entries
            .iter()
            .filter(|e| !o.entries.iter().any(|x| canonical_key(&x.key) == canonical_key(&e.key)))
            .map(|e| (file, false, e))
            .chain(o.entries.iter().map(|e| (o.file, true, e)))
            .collect(),
    };
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
        slow_client_buffer: DEFAULT_SLOW_CLIENT_BUFFER,
        ldap_timeout: Duration::from_secs(10),
        backside_timeout: Duration::from_secs(15),
        shutdown_timeout: Duration::from_secs(30),
        banner: match protocol {
            Protocol::Imap => "mailmux IMAP proxy ready".to_owned(),
            Protocol::Pop3 => "mailmux POP3 proxy ready".to_owned(),
        },
        capability: None,
        capability_learning: Default::default(),
        spoof: Default::default(),
        server_down_alert: None,
        log_dir: None,
        log_level: None,
        log_format: None,
        tls: None,
        store_tls: StoreTls::default(),
        restrict_plain_passwords: false,
        cert_map: None,
        store_admin: None,
        edge: EdgeConfig::default(),
        lookup: LookupConfig::default(),
        auth: AuthConfig::default(),
        cert_map_name: None,
        virtual_domain_file: None,
        virtual_domains: Vec::new(),
        not_implemented: Vec::new(),
        origins: crate::origin::Origins::default(),
        cert_map_file: None,
    };
    let (mut store_admin, mut store_admin_pass) = (None, None);
    let mut cert_map_line = 0;
    let mut cert_map_name: Option<(String, &Path, usize)> = None;
    let mut saw_ldap_url = false;
    let mut crams_at: (&Path, usize) = (file, 0);
    let mut tls = TlsParams::default();
    for (at, per_domain, e) in layered {
        let v = e.value.trim();
        svc.origins.set(canonical_key(&e.key), at, e.line, per_domain);
        if e.key == "crams" {
            crams_at = (at, e.line);
        }
        if let Some(result) = tls
            .take(e, dir, at, diags)
            .or_else(|| svc.edge.take(e, dir))
            .or_else(|| svc.lookup.take(e))
            .or_else(|| svc.auth.take(e))
            .or_else(|| svc.capability_learning.take(e))
            .or_else(|| svc.spoof.take(e, dir))
        {
            if protocol == Protocol::Imap && e.key.starts_with("spoof") {
                diags.warn(at, e.line, format!("{} has no effect on IMAP (a POP3 maildrop)", e.name));
            }
            if let Err(message) = result {
                diags.error(at, e.line, format!("{}: {message}", e.name));
            }
            continue;
        }
        let result: Result<(), String> = match canonical_key(&e.key) {
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
            "virtualdomaindelim" => {
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
            "slowclientbuffer" => crate::raw::parse_size(v).map(|n| svc.slow_client_buffer = n),
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
                        at,
                        e.line,
                        "Capability: STARTTLS and AUTH= items are added by mailmux and were dropped here",
                    );
                }
                let kept: Vec<&str> = caps
                    .into_iter()
                    .filter(|c| !c.eq_ignore_ascii_case("STARTTLS") && !c.to_ascii_uppercase().starts_with("AUTH="))
                    .collect();
                if protocol == Protocol::Pop3 {
                    diags.warn(at, e.line, "Capability has no effect on POP3");
                }
                svc.capability = Some(kept.join(" "));
                Ok(())
            }
            "certmapfile" => {
                cert_map_line = e.line;
                let path = crate::resolve(dir, v);
                svc.cert_map_file = Some(path.clone());
                std::fs::read_to_string(&path)
                    .map(|text| svc.cert_map = Some(crate::certmap::parse(&path, &text, diags)))
                    .map_err(|err| format!("cannot read {}: {err}", path.display()))
            }
            "certmap" if !per_domain => {
                diags.warn(
                    at,
                    e.line,
                    "CertMap is read only in a vdmap entry (it picks a map of CertMapFile per address); ignored here",
                );
                Ok(())
            }
            "certmap" if v.is_empty() => Err("CertMap names no map".into()),
            "certmap" => {
                cert_map_name = Some((v.to_owned(), at, e.line));
                Ok(())
            }
            "virtualdomainfile" => {
                svc.virtual_domain_file = (!v.is_empty()).then(|| crate::resolve(dir, v));
                Ok(())
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
            "logformat" => LogFormat::parse(v).map(|f| svc.log_format = Some(f)),
            key if NOT_YET.contains(&key) => {
                diags.warn(
                    at,
                    e.line,
                    format!("{} is an MMP parameter mailmux does not implement yet; ignored", e.name),
                );
                svc.not_implemented.push(e.clone());
                Ok(())
            }
            _ => {
                diags.warn(at, e.line, format!("unknown parameter '{}' ignored", e.name));
                Ok(())
            }
        };
        if let Err(message) = result {
            diags.error(at, e.line, format!("{}: {message}", e.name));
        }
    }
    svc.restrict_plain_passwords = tls.restrict_plain_passwords;
    (svc.tls, svc.store_tls) = tls.finish(&svc.listeners, file, diags);
    svc.store_admin = match (store_admin, store_admin_pass) {
        (Some(user), Some(pass)) => Some((user, pass)),
        // Messaging Server 7 files set only the password: the administrator is then the
        // site administrator its installer creates.
        (None, Some(pass)) => Some((DEFAULT_STORE_ADMIN.to_owned(), pass)),
        (None, None) => None,
        (Some(_), None) => {
            diags.error(file, 0, "StoreAdmin needs StoreAdminPass");
            None
        }
    };
    if svc.auth.crams && svc.store_admin.is_none() {
        diags.error(
            crams_at.0,
            crams_at.1,
            "CRAMs needs StoreAdminPass: a challenge-response login gives mailmux no password to replay",
        );
    }
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
    if let Some((name, at, line)) = cert_map_name {
        match &svc.cert_map {
            Some(map) if map.named(&name).is_none() => {
                let names: Vec<&str> = map.mappings.iter().map(|m| m.name.as_str()).collect();
                diags.error(
                    at,
                    line,
                    format!("CertMap: CertMapFile defines no map named '{name}' (it has: {})", names.join(", ")),
                );
            }
            Some(_) => svc.cert_map_name = Some(name),
            None => {
                diags.warn(at, line, "CertMap has no effect: the service has no CertMapFile");
                svc.cert_map_name = Some(name);
            }
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
    fn store_admin_defaults_to_the_site_administrator_and_crams_need_it() {
        let base = "default:LdapURL ldap://127.0.0.1/o=x\n";
        let (svc, d) = service(&format!("{base}default:StoreAdminPass s3cret\n"));
        let svc = svc.unwrap_or_else(|| panic!("{d}"));
        assert_eq!(svc.store_admin.as_ref().map(|(user, _)| user.as_str()), Some(DEFAULT_STORE_ADMIN));
        let (svc, d) = service(&format!("{base}default:StoreAdmin mmpstore\n"));
        assert!(svc.is_none() && d.to_string().contains("StoreAdmin needs StoreAdminPass"), "{d}");
        let (svc, d) = service(&format!("{base}default:CRAMs yes\n"));
        assert!(svc.is_none());
        assert!(d.to_string().contains("ImapProxyAService.cfg:2: error: CRAMs needs StoreAdminPass"), "{d}");
        let (svc, d) = service(&format!("{base}default:CRAMs yes\ndefault:PreAuth yes\ndefault:StoreAdminPass s\n"));
        let svc = svc.unwrap_or_else(|| panic!("{d}"));
        assert!(svc.auth.crams && svc.auth.preauth, "{d}");
    }

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
        assert!(!text.contains("PreAuth"), "PreAuth is implemented:\n{text}");

        let with_pem =
            format!("{VENDOR_SAMPLE}default:SSLCertFile /etc/mailmux/cert.pem\ndefault:SSLKeyFile key.pem\n");
        let (svc, d) = service(&with_pem);
        let svc = svc.unwrap_or_else(|| panic!("{d}"));
        assert_eq!(svc.bind_dn.as_deref(), Some("cn=Directory Manager"));
        assert_eq!(svc.timeout, Duration::from_secs(1800));
        assert!(svc.capability.as_deref().is_some_and(|c| c.starts_with("IMAP4 IMAP4rev1 ACL")));
        assert_eq!(svc.mail_host_attrs, vec!["mailhost"]);
        assert_eq!(svc.server_down_alert.as_deref(), Some("your IMAP server appears to be temporarily out of service"));
        let tls = svc.tls.expect("TLS on");
        assert_eq!(tls.implicit_ports, vec![993]);
        assert_eq!(tls.key_file, Path::new("/cfg/key.pem"));
    }

    #[test]
    fn log_levels_are_the_syslog_scale_and_formats_text_or_json() {
        let level = |v: &str| LogLevel::parse(v).map(|l| l.0);
        assert_eq!((1..=7).map(|n| level(&n.to_string())).collect::<Vec<_>>(), (1..=7).map(Ok).collect::<Vec<_>>());
        assert_eq!(level("0"), Ok(1), "no emergency lines: 0 reads as alerts only");
        assert!(level("8").is_err() && level("notice").is_err());
        assert_eq!(LogLevel::default().0, 5);
        let (svc, d) = service("default:LdapURL ldif:u\ndefault:LogLevel 6\ndefault:LogFormat JSON\n");
        let svc = svc.unwrap_or_else(|| panic!("{d}"));
        assert_eq!((svc.log_level, svc.log_format), (Some(LogLevel(6)), Some(LogFormat::Json)));
        let (svc, d) = service("default:LdapURL ldif:u\ndefault:LogFormat xml\n");
        assert!(svc.is_none());
        assert!(
            d.to_string().contains("ImapProxyAService.cfg:2: error: LogFormat: 'xml' is not 'text' or 'json'"),
            "{d}"
        );
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
    fn the_known_names_are_the_parsed_names() {
        // Listed, so parsed: build does not call it unknown (AService.cfg's names are load's).
        for key in KNOWN.iter().chain(NOT_YET) {
            let (_, d) = service(&format!("default:LdapURL ldif:u\ndefault:{key} 1\n"));
            assert!(!d.to_string().contains("unknown parameter"), "{key}: {d}");
        }
        // Parsed, so listed: the quoted names of the parsers' match arms.
        for (file, source) in [
            ("service.rs", include_str!("service.rs")),
            ("tls.rs", include_str!("tls.rs")),
            ("edge.rs", include_str!("edge.rs")),
            ("lookup.rs", include_str!("lookup.rs")),
            ("auth.rs", include_str!("auth.rs")),
            ("store_capabilities.rs", include_str!("store_capabilities.rs")),
            ("spoof.rs", include_str!("spoof.rs")),
            ("lib.rs", include_str!("lib.rs")),
        ] {
            let code = source.split("#[cfg(test)]").next().unwrap_or(source);
            for line in code.lines().map(str::trim).filter(|l| l.starts_with('"') && l.contains("=>")) {
                let arm = line.split("=>").next().unwrap_or_default();
                let arm = arm.split(" if ").next().unwrap_or_default();
                for name in arm.split('|').map(|n| n.trim().trim_matches('"')) {
                    // ReplayMechanism's and LogFormat's values, not parameter names.
                    if !["login", "plain", "text", "json"].contains(&name) {
                        assert!(is_known(name), "{file}: '{name}' is parsed but missing from KNOWN");
                    }
                }
            }
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
        assert_eq!(svc.unwrap().capability.as_deref(), Some("IMAP4rev1 IDLE"));
    }
}
