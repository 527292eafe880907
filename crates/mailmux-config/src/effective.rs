//! Every parameter's effective value and where it came from, like `doveconf -n`: what
//! `mailmux check --effective` prints.
//!
//! ```text
//! # AService.cfg
//! ServiceList = imapproxy@0.0.0.0:143 popproxy@0.0.0.0:110   # AService.cfg:6
//! LogLevel = 5                                              # default
//!
//! # imap: ImapProxyAService.cfg
//! BindPass = <hidden>                                       # ImapProxyAService.cfg:9
//! SearchFormat = (uid=%s)                                   # ImapProxyAService.cfg:10
//!
//! # imap: vdmap org 192.0.2.10 (vdmap.cfg:8)
//! DefaultDomain = example.org                               # vdmap: vdmap.cfg:9
//! SearchFormat = (uid=%s)                                   # ImapProxyAService.cfg:10
//! ```
//!
//! A value is what mailmux uses, after defaults, parsing and normalising (`SearchFormat`
//! with its parentheses, paths resolved against the configuration directory, the
//! `StoreAdmin` that `StoreAdminPass` alone implies), written as a `.cfg` file would write it
//! (quoted when it holds spaces or is empty). The origin is `default`, `FILE:LINE`, or
//! `vdmap: FILE:LINE` (a line of the vdmap entry whose section it is in). Secrets (`BindPass`, `StoreAdminPass`) print as `<hidden>`.
//!
//! Every parameter of [`crate::service`]'s lists is printed, for the service and for each
//! vdmap entry (an entry shows the parameters an entry may set, [`crate::vdmap::PER_DOMAIN`]:
//! its own, or the service's it inherits). A unit test keeps [`SERVICE_PARAMETERS`] and those
//! lists in step.

use std::fmt::Write;
use std::path::Path;

use mailmux_proto::ReplayMechanism;

use crate::origin::Origin;
use crate::service::ServiceConfig;
use crate::tls::StoreTlsMode;
use crate::{Config, VirtualDomain};

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The parameter, spelled as the MMP's documents spell it.
    pub name: &'static str,
    /// The effective value, as a `.cfg` file would write it.
    pub value: String,
    /// What the value means when the value alone cannot say it ("from the open-files
    /// limit", "not implemented yet").
    pub note: Option<String>,
    /// Where it was written; `None` for the default.
    pub origin: Option<Origin>,
}

/// A rendered value and its note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    text: String,
    note: Option<String>,
}

impl From<String> for Value {
    fn from(text: String) -> Value {
        Value { text, note: None }
    }
}

impl Value {
    /// A value with a note.
    fn noted(text: impl Into<String>, note: impl Into<String>) -> Value {
        Value { text: text.into(), note: Some(note.into()) }
    }
}

/// What the value of a parameter is rendered from: the service, and the whole configuration
/// (for what a service inherits from `AService.cfg`).
type Render = fn(&ServiceConfig, &Config) -> Value;

/// How an `AService.cfg` value is rendered.
type RenderProcess = fn(&Config) -> Value;

/// Printed in place of a secret's value.
pub const HIDDEN: &str = "<hidden>";

fn none() -> String {
    String::new()
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

fn seconds(d: std::time::Duration) -> String {
    d.as_secs().to_string()
}

fn opt_path(p: Option<&Path>) -> String {
    p.map_or_else(none, |p| p.display().to_string())
}

fn opt_str(s: Option<&str>) -> String {
    s.map_or_else(none, str::to_owned)
}

/// A parameter mailmux does not implement yet: its value as written, if set.
fn not_yet(svc: &ServiceConfig, key: &str) -> Value {
    match svc.not_implemented.iter().rev().find(|e| e.key == key) {
        Some(e) => Value::noted(e.value.clone(), "not in effect: not implemented yet"),
        None => Value::noted("", "not implemented yet"),
    }
}

/// What `SSLEnable no` leaves of a client TLS setting.
fn server_tls(svc: &ServiceConfig, f: impl Fn(&crate::ServerTls) -> String) -> String {
    svc.tls.as_ref().map_or_else(none, f)
}

const NSS_ONLY: &str = "ignored: mailmux reads PEM files, not NSS databases";

/// Every parameter a service file may hold, in the order of `docs/configuration.md`, with how
/// its effective value is rendered. Aliases (`DomainDelim`, `AuthCacheSizeTTL`,
/// `CanonicalDomainDelim`) are printed under their main spelling.
pub const SERVICE_PARAMETERS: &[(&str, Render)] = &[
    ("LdapURL", |s, _| Value::from(s.directory.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "))),
    ("BindDN", |s, _| Value::from(opt_str(s.bind_dn.as_deref()))),
    ("BindPass", |s, _| Value::from(s.bind_pass.as_ref().map_or_else(none, |_| HIDDEN.to_owned()))),
    ("SearchFormat", |s, _| Value::from(s.search_format.source().to_owned())),
    ("MailHostAttrs", |s, _| Value::from(s.mail_host_attrs.join(" "))),
    ("DefaultDomain", |s, _| Value::from(opt_str(s.default_domain.as_deref()))),
    ("VirtualDomainDelim", |s, _| Value::from(s.domain_delims.iter().collect::<String>())),
    ("CanonicalVirtualDomainDelim", |s, _| Value::from(s.lookup.canonical_delim.to_string())),
    ("HostedDomains", |s, _| Value::from(yes_no(s.lookup.hosted_domains))),
    ("DomainSearchFormat", |s, _| Value::from(s.lookup.domain_search_format.source().to_owned())),
    ("HostedDomainFilter", |s, _| Value::from(s.lookup.hosted_domain_filter.source().to_owned())),
    ("LdapCacheSize", |s, _| Value::from(s.lookup.cache_size.to_string())),
    ("LdapCacheTTL", |s, _| Value::from(seconds(s.lookup.cache_ttl))),
    ("LdapCacheMaxStale", |s, _| Value::from(seconds(s.lookup.cache_max_stale))),
    ("LdapTimeout", |s, _| Value::from(seconds(s.ldap_timeout))),
    ("LdapStartTLS", |s, _| Value::from(yes_no(s.ldap_starttls))),
    ("LdapCAFile", |s, _| Value::from(opt_path(s.ldap_ca_file.as_deref()))),
    ("ReplayFormat", |s, _| Value::from(s.replay_format.source().to_owned())),
    ("ReplayMechanism", |s, _| {
        Value::from({
            match s.replay_mechanism {
                ReplayMechanism::Login => "login",
                ReplayMechanism::Plain => "plain",
            }
            .to_owned()
        })
    }),
    ("BacksidePort", |s, _| Value::from(s.backside_port.to_string())),
    ("BacksideTimeout", |s, _| Value::from(seconds(s.backside_timeout))),
    ("ForwardClientAddress", |s, _| Value::from(yes_no(s.forward_client_address))),
    ("StoreAdmin", |s, _| Value::from(opt_str(s.store_admin.as_ref().map(|(user, _)| user.as_str())))),
    ("StoreAdminPass", |s, _| Value::from(s.store_admin.as_ref().map_or_else(none, |_| HIDDEN.to_owned()))),
    ("PreAuth", |s, _| Value::from(yes_no(s.auth.preauth))),
    ("AuthCacheSize", |s, _| Value::from(s.auth.cache_size.to_string())),
    ("AuthCacheTTL", |s, _| Value::from(seconds(s.auth.cache_ttl))),
    ("CRAMs", |s, _| Value::from(yes_no(s.auth.crams))),
    ("OAuthBearer", |s, _| Value::from(yes_no(s.auth.bearer))),
    ("Banner", |s, _| Value::from(s.banner.clone())),
    ("Capability", |s, _| match &s.capability {
        Some(list) => Value::from(list.clone()),
        None => Value::noted("", "learned from the stores"),
    }),
    ("CapabilityStores", |s, _| Value::from(s.capability_learning.stores.join(" "))),
    ("CapabilityRefresh", |s, _| Value::from(seconds(s.capability_learning.refresh))),
    ("SpoofMessageFile", |s, _| match &s.spoof.message {
        Some(m) => Value::noted("", format!("{} octets, read when the files were loaded", m.octets())),
        None => Value::noted("", "none"),
    }),
    ("SpoofEmptyMailbox", |s, _| Value::from(yes_no(s.spoof.empty_mailbox))),
    ("SpoofTempFail", |s, _| Value::from(yes_no(s.spoof.temp_fail))),
    ("ServerDownAlert", |s, _| Value::from(opt_str(s.server_down_alert.as_deref()))),
    ("Timeout", |s, _| Value::from(seconds(s.timeout))),
    ("PreAuthTimeout", |s, _| Value::from(seconds(s.preauth_timeout))),
    ("SlowClientBuffer", |s, _| Value::from(s.slow_client_buffer.to_string())),
    ("ShutdownTimeout", |s, _| Value::from(seconds(s.shutdown_timeout))),
    ("LogDir", |s, _| match &s.log_dir {
        Some(d) => Value::from(d.display().to_string()),
        None => Value::noted("", "sessions go to AService.cfg's log"),
    }),
    ("LogLevel", |s, c| match s.log_level {
        Some(level) => Value::from(level.0.to_string()),
        None => Value::noted(c.log_level.0.to_string(), "AService.cfg's"),
    }),
    ("LogFormat", |s, c| match s.log_format {
        Some(format) => Value::from(format.as_str().to_owned()),
        None => Value::noted(c.log_format.as_str(), "AService.cfg's"),
    }),
    ("SSLEnable", |s, _| Value::from(yes_no(s.tls.is_some()))),
    ("SSLPorts", |s, _| {
        Value::from({
            server_tls(s, |t| t.implicit_ports.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "))
        })
    }),
    ("SSLCertFile", |s, _| Value::from(server_tls(s, |t| t.cert_file.display().to_string()))),
    ("SSLKeyFile", |s, _| Value::from(server_tls(s, |t| t.key_file.display().to_string()))),
    ("SSLCipherSpecs", |s, _| {
        Value::from({
            server_tls(s, |t| if t.cipher_suites.is_empty() { "all".to_owned() } else { t.cipher_suites.join(":") })
        })
    }),
    ("SSLCACertFile", |s, _| Value::from(server_tls(s, |t| opt_path(t.client_ca_file.as_deref())))),
    ("SSLCRLFile", |s, _| Value::from(server_tls(s, |t| opt_path(t.crl_file.as_deref())))),
    ("RestrictPlainPasswords", |s, _| Value::from(yes_no(s.restrict_plain_passwords))),
    ("CertMapFile", |s, _| Value::from(opt_path(s.cert_map_file.as_deref()))),
    ("CertMap", |s, _| Value::from(opt_str(s.cert_map_name.as_deref()))),
    ("SSLBacksidePort", |s, _| {
        Value::from(match s.store_tls.mode {
            StoreTlsMode::Implicit { port } => port.to_string(),
            StoreTlsMode::Off | StoreTlsMode::StartTls => "0".to_owned(),
        })
    }),
    ("BacksideStartTLS", |s, _| Value::from(yes_no(s.store_tls.mode == StoreTlsMode::StartTls))),
    ("SSLBacksideCAFile", |s, _| Value::from(opt_path(s.store_tls.ca_file.as_deref()))),
    ("SSLBacksideVerify", |s, _| Value::from(yes_no(s.store_tls.verify))),
    ("SSLSecmodFile", |_, _| Value::noted("", NSS_ONLY)),
    ("SSLCertNicknames", |_, _| Value::noted("", NSS_ONLY)),
    ("SSLKeyPasswdFile", |_, _| Value::noted("", NSS_ONLY)),
    ("SSLCertPrefix", |_, _| Value::noted("", NSS_ONLY)),
    ("SSLCacheDir", |_, _| Value::noted("", NSS_ONLY)),
    ("ProxyProtocolFrom", |s, _| Value::from(s.edge.proxy_from.to_string())),
    ("ConnLimits", |s, _| Value::from(s.edge.conn_limits.to_string())),
    ("TCPAccess", |s, _| Value::from(s.edge.tcp_access.to_string())),
    ("TCPAccessAttr", |s, _| Value::from(s.edge.tcp_access_attr.clone())),
    ("ClientLookup", |s, _| Value::from(yes_no(s.edge.client_lookup))),
    ("BGPenalty", |s, _| Value::from(seconds(s.edge.badguy.penalty))),
    ("BGMaxBadness", |s, _| Value::from(seconds(s.edge.badguy.max_badness))),
    ("BGDecay", |s, _| Value::from(seconds(s.edge.badguy.decay))),
    ("BGLinear", |s, _| Value::from(yes_no(s.edge.badguy.linear))),
    ("BGMax", |s, _| Value::from(s.edge.badguy.max_tracked.to_string())),
    ("BGExcluded", |s, _| Value::from(s.edge.badguy.excluded.to_string())),
    ("MaxLoginFailures", |s, _| Value::from(s.edge.max_login_failures.to_string())),
    ("FailureDelay", |s, _| Value::from(seconds(s.edge.failure_delay))),
    ("VirtualDomainFile", |s, _| Value::from(opt_path(s.virtual_domain_file.as_deref()))),
    ("AuthService", |s, _| not_yet(s, "authservice")),
    ("AuthServiceTTL", |s, _| not_yet(s, "authservicettl")),
    ("AuthenticationServer", |s, _| not_yet(s, "authenticationserver")),
    ("AuthenticationLdapAttributes", |s, _| not_yet(s, "authenticationldapattributes")),
    ("FailoverTimeout", |s, _| not_yet(s, "failovertimeout")),
    ("SSLAdjustCipherSuites", |s, _| not_yet(s, "ssladjustciphersuites")),
    ("AdminPolicy", |s, _| not_yet(s, "adminpolicy")),
];

/// `AService.cfg`'s parameters, rendered from the configuration.
pub const ASERVICE_PARAMETERS: &[(&str, RenderProcess)] = &[
    ("ServiceList", |c| {
        Value::from({
            let items: Vec<String> = c
                .services
                .iter()
                .map(|s| {
                    let service = match s.protocol {
                        crate::Protocol::Imap => "imapproxy",
                        crate::Protocol::Pop3 => "popproxy",
                    };
                    let ports: Vec<String> = s.listeners.iter().map(ToString::to_string).collect();
                    format!("{service}@{}", ports.join("|"))
                })
                .collect();
            items.join(" ")
        })
    }),
    ("LogDir", |c| match &c.log_dir {
        Some(d) => Value::from(d.display().to_string()),
        None => Value::noted("", "standard error"),
    }),
    ("LogLevel", |c| Value::from(c.log_level.0.to_string())),
    ("LogFormat", |c| Value::from(c.log_format.as_str().to_owned())),
    ("PidFile", |c| Value::from(c.pid_file.display().to_string())),
    ("MaxSessions", |c| {
        c.max_sessions.map_or_else(|| Value::noted("", "from the open-files limit"), |n| Value::from(n.to_string()))
    }),
    ("MaxPreLoginSessions", |c| {
        c.max_prelogin_sessions.map_or_else(|| Value::noted("", "half of MaxSessions"), |n| Value::from(n.to_string()))
    }),
    ("MaxPreLoginPerNetwork", |c| {
        c.max_prelogin_per_network
            .map_or_else(|| Value::noted("", "an eighth of MaxPreLoginSessions"), |n| Value::from(n.to_string()))
    }),
    ("SlowClientBufferTotal", |c| Value::from(c.slow_client_buffer_total.to_string())),
    ("MetricsListen", |c| {
        c.metrics_listen.as_ref().map_or_else(|| Value::noted("", "off"), |a| Value::from(a.to_string()))
    }),
    ("MetricsAllowRemote", |c| {
        let remote = matches!(&c.metrics_listen, Some(crate::control::ControlAddr::Tcp(a)) if !a.ip().is_loopback());
        Value::from(yes_no(remote))
    }),
    ("AdminListen", |c| {
        c.admin_listen.as_ref().map_or_else(|| Value::noted("", "off"), |a| Value::from(a.to_string()))
    }),
    ("NumThreads", |_| Value::noted("", "ignored: one worker per core")),
];

/// `AService.cfg`'s settings.
pub fn aservice(config: &Config) -> Vec<Setting> {
    ASERVICE_PARAMETERS
        .iter()
        .map(|(name, render)| {
            let Value { text, note } = render(config);
            Setting { name, value: text, note, origin: config.origins.get(&name.to_ascii_lowercase()).cloned() }
        })
        .collect()
}

/// A service's settings, every parameter.
pub fn service(svc: &ServiceConfig, config: &Config) -> Vec<Setting> {
    settings(svc, config, |_| true)
}

/// A vdmap entry's settings: the parameters an entry may set, its own or inherited.
pub fn virtual_domain(domain: &VirtualDomain, config: &Config) -> Vec<Setting> {
    settings(&domain.config, config, |key| crate::vdmap::PER_DOMAIN.contains(&key))
}

fn settings(svc: &ServiceConfig, config: &Config, wanted: impl Fn(&str) -> bool) -> Vec<Setting> {
    SERVICE_PARAMETERS
        .iter()
        .filter_map(|(name, render)| {
            let key = name.to_ascii_lowercase();
            wanted(&key).then(|| {
                let Value { text, note } = render(svc, config);
                Setting { name, value: text, note, origin: svc.origins.get(&key).cloned() }
            })
        })
        .collect()
}

/// The whole report: `AService.cfg`, then each service and its vdmap entries.
pub fn report(config: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}", shown(&config.dir.join(crate::ASERVICE_FILE), &config.dir));
    section(&mut out, &aservice(config), &config.dir);
    for svc in &config.services {
        let _ = writeln!(out, "\n# {}: {}", svc.protocol.as_str(), shown(&svc.file, &config.dir));
        section(&mut out, &service(svc, config), &config.dir);
        for domain in &svc.virtual_domains {
            let file = svc.virtual_domain_file.as_deref().map_or_else(String::new, |f| shown(f, &config.dir));
            let _ = writeln!(
                out,
                "\n# {}: vdmap {} {} ({file}:{})",
                svc.protocol.as_str(),
                domain.name,
                domain.address,
                domain.line
            );
            section(&mut out, &virtual_domain(domain, config), &config.dir);
        }
    }
    out
}

fn section(out: &mut String, settings: &[Setting], dir: &Path) {
    let lines: Vec<(String, String)> = settings
        .iter()
        .map(|s| {
            let origin = origin_text(s.origin.as_ref(), dir);
            let origin = match &s.note {
                Some(note) => format!("{origin}; {note}"),
                None => origin,
            };
            (format!("{} = {}", s.name, quoted(&s.value)), origin)
        })
        .collect();
    let width = lines.iter().map(|(l, _)| l.chars().count()).max().unwrap_or(0).min(60);
    for (setting, origin) in lines {
        let _ = writeln!(out, "{setting:<width$}  # {origin}");
    }
}

/// `default`, `FILE:LINE` or `vdmap: FILE:LINE`.
fn origin_text(origin: Option<&Origin>, dir: &Path) -> String {
    match origin {
        None => "default".to_owned(),
        Some(o) if o.vdmap => format!("vdmap: {}:{}", shown(&o.file, dir), o.line),
        Some(o) => format!("{}:{}", shown(&o.file, dir), o.line),
    }
}

/// A path relative to the configuration directory when it is inside it.
fn shown(path: &Path, dir: &Path) -> String {
    path.strip_prefix(dir).unwrap_or(path).display().to_string()
}

/// A value as a `.cfg` line writes it: quoted when empty or holding white space.
fn quoted(value: &str) -> String {
    if value.is_empty() || value.contains(char::is_whitespace) { format!("\"{value}\"") } else { value.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(files: &[(&str, &str)]) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write");
        }
        let loaded = crate::load(dir.path(), None).unwrap_or_else(|d| panic!("{d}"));
        (dir, loaded.config)
    }

    const ASERVICE: &str = "default:ServiceList imapproxy@127.0.0.1:143\ndefault:LogLevel 6\n";
    const IMAP: &str = "# a comment\n\
                        default:LdapURL ldap://ldap.example.com/o=example\n\
                        default:BindDN \"cn=Directory Manager\"\n\
                        default:BindPass S3cret-Bind\n\
                        default:SearchFormat uid=%s\n\
                        default:StoreAdminPass S3cret-Admin\n\
                        default:VirtualDomainFile vdmap.cfg\n\
                        default:AuthService yes\n\
                        default:DomainDelim +\n";
    const VDMAP: &str = "vdmap org 127.0.0.1\norg:DefaultDomain example.org\norg:BindPass S3cret-Org\n";

    fn find<'a>(settings: &'a [Setting], name: &str) -> &'a Setting {
        settings.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("{name} is listed"))
    }

    #[test]
    fn values_and_origins_of_a_service_and_its_vdmap_entry() {
        let (dir, config) = load(&[("AService.cfg", ASERVICE), ("ImapProxyAService.cfg", IMAP), ("vdmap.cfg", VDMAP)]);
        let imap_file = dir.path().join("ImapProxyAService.cfg");
        let at = |line| Some(Origin { file: imap_file.clone(), line, vdmap: false });
        let svc = &config.services[0];
        let settings = service(svc, &config);
        assert_eq!(find(&settings, "SearchFormat").value, "(uid=%s)", "normalised, not as written");
        assert_eq!(find(&settings, "SearchFormat").origin, at(5));
        assert_eq!(find(&settings, "BindPass").value, HIDDEN);
        assert_eq!(find(&settings, "StoreAdmin").value, "admin", "implied by StoreAdminPass");
        assert_eq!(find(&settings, "StoreAdmin").origin, None);
        assert_eq!(find(&settings, "VirtualDomainDelim").origin, at(9), "written DomainDelim");
        assert_eq!(find(&settings, "Timeout").value, "1800");
        assert_eq!(find(&settings, "Timeout").origin, None);
        assert_eq!(find(&settings, "LogLevel").value, "6", "AService.cfg's, inherited");
        assert_eq!(find(&settings, "AuthService").value, "yes");
        assert_eq!(find(&settings, "AuthService").note.as_deref(), Some("not in effect: not implemented yet"));
        assert_eq!(find(&settings, "LogLevel").note.as_deref(), Some("AService.cfg's"));

        let org = virtual_domain(&svc.virtual_domains[0], &config);
        assert!(org.iter().all(|s| crate::vdmap::PER_DOMAIN.contains(&s.name.to_ascii_lowercase().as_str())));
        let vdmap_at = |line| Some(Origin { file: dir.path().join("vdmap.cfg"), line, vdmap: true });
        assert_eq!(find(&org, "DefaultDomain").value, "example.org");
        assert_eq!(find(&org, "DefaultDomain").origin, vdmap_at(2));
        assert_eq!(find(&org, "BindPass").origin, vdmap_at(3));
        assert_eq!(find(&org, "BindDN").origin, at(3), "inherited from the service file");
        assert!(org.iter().all(|s| s.name != "Timeout"), "not a per-domain parameter");

        let text = report(&config);
        for secret in ["S3cret-Bind", "S3cret-Admin", "S3cret-Org"] {
            assert!(!text.contains(secret), "{secret} printed:\n{text}");
        }
        assert!(text.contains("# imap: vdmap org 127.0.0.1 (vdmap.cfg:1)"), "{text}");
        let line = |prefix: &str| text.lines().filter(|l| l.starts_with(prefix)).map(str::to_owned).collect::<Vec<_>>();
        assert!(line("ServiceList = imapproxy@127.0.0.1:143")[0].ends_with("# AService.cfg:1"), "{text}");
        assert!(line("LogLevel = 6")[0].ends_with("# AService.cfg:2"), "{text}");
        assert!(line("BindDN = \"cn=Directory Manager\"").iter().all(|l| l.ends_with("# ImapProxyAService.cfg:3")));
        assert!(line("DefaultDomain = example.org")[0].ends_with("# vdmap: vdmap.cfg:2"), "{text}");
        assert!(line("Timeout = 1800")[0].ends_with("# default"), "{text}");
    }

    #[test]
    fn every_known_parameter_is_listed_once() {
        let names: Vec<String> = SERVICE_PARAMETERS
            .iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .chain(ASERVICE_PARAMETERS.iter().map(|(n, _)| n.to_ascii_lowercase()))
            .collect();
        for (i, name) in names.iter().enumerate() {
            assert!(crate::service::is_known(name), "{name} is listed but not a known parameter");
            assert_eq!(crate::service::canonical_key(name), name, "{name}: listed under an alias");
            // LogDir, LogLevel and LogFormat are both AService.cfg's and each service's.
            if !["logdir", "loglevel", "logformat"].contains(&name.as_str()) {
                assert!(!names[..i].contains(name), "{name} listed twice");
            }
        }
        for key in crate::service::known_names() {
            assert!(names.iter().any(|n| n == crate::service::canonical_key(key)), "{key} is known but not listed");
        }
    }
}
