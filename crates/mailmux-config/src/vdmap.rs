//! The vdmap file: settings of a proxy service per local address ("virtual domains").
//!
//! ```text
//! # siroe.com's users connect to 192.0.2.10 and log in without a domain.
//! vdmap siroe 192.0.2.10
//! siroe:DefaultDomain siroe.com
//! siroe:SearchFormat "(&(uid=%U)(o=siroe))"
//!
//! vdmap sesta [2001:db8::11]
//! sesta:DefaultDomain sesta.com
//! sesta:TCPAccess "+imap,pop:ALL$-pop:198.51.100.0/24"
//! ```
//!
//! A service file names the vdmap file with `VirtualDomainFile` (relative to the configuration
//! directory). A connection that arrives on an entry's address — the mailmux address the
//! client connected to, not the client's — is served with the service's settings and the
//! entry's laid over them. The lines are those of the `.cfg` files ([`crate::raw::lines`]:
//! `#` comments, blank lines, double-quoted values that may continue on the next line); what
//! the first word means differs:
//!
//! ```text
//! file     = *( comment / blank / header / setting )
//! header   = "vdmap" WSP name WSP address        ; "vdmap" in any case
//! name     = 1*( VCHAR except ":" )              ; a key, matched ignoring case
//! address  = IPv4address / IPv6address / "[" IPv6address "]"
//! setting  = name ":" Parameter [ WSP value ]    ; below its name's header
//! ```
//!
//! Only the parameters of [`PER_DOMAIN`] may be set in an entry (the MMP 6.x list, with the
//! ones the wikis show "under vdomain", and mailmux's own `OAuthBearer`). `DomainDelim` is `VirtualDomainDelim`, and the
//! administrator's guide's `AuthCacheSizeTTL` is read as `AuthCacheTTL`. `CertMap` exists
//! only here: it names a map of the service's `CertMapFile`.
//!
//! | problem | severity |
//! | --- | --- |
//! | a header without a name and an address, or whose address is not one | error |
//! | a name or an address declared twice | error |
//! | a setting for a name not declared above | error |
//! | a parameter that may not be set per domain (`BacksidePort`, `SSLPorts` …) | error |
//! | a bad value in an entry (reported at the entry's line) | error |
//! | `CertMap` naming a map the service's `CertMapFile` does not define | error |
//! | a combination that fails once laid over the service (`StoreAdmin` here, `StoreAdminPass` nowhere) | error, at the entry's header |
//! | an unknown parameter | warning |
//! | an entry without settings; a parameter set twice in an entry | warning |
//! | an address none of the service's listeners can receive | warning |
//! | a parameter mailmux does not implement yet (`PreAuth` …): kept, not in effect | warning, once per file and name |
//!
//! The file is read once per load even when several services name it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::raw::{self, Entry, Line};
use crate::service::{self, Overrides, ServiceConfig};
use crate::{Diagnostic, Diagnostics, Severity};

/// The parameters a vdmap entry may set (lower case, one spelling each).
pub const PER_DOMAIN: &[&str] = &[
    "authcachesize",
    "authcachettl",
    "authenticationldapattributes",
    "authenticationserver",
    "authservice",
    "authservicettl",
    "binddn",
    "bindpass",
    "canonicalvirtualdomaindelim",
    "certmap",
    "clientlookup",
    "crams",
    "defaultdomain",
    "domainsearchformat",
    "hosteddomainfilter",
    "hosteddomains",
    "ldapcachemaxstale",
    "ldapcachesize",
    "ldapcachettl",
    "ldapurl",
    "mailhostattrs",
    "oauthbearer",
    "preauth",
    "replayformat",
    "restrictplainpasswords",
    "searchformat",
    "storeadmin",
    "storeadminpass",
    "tcpaccess",
    "tcpaccessattr",
    "virtualdomaindelim",
];

/// One entry of a service's vdmap file, built.
#[derive(Debug, Clone)]
pub struct VirtualDomain {
    /// The entry's name (`vdmap NAME …`), for logs.
    pub name: String,
    /// The local address it applies to; an IPv4-mapped IPv6 address is stored as IPv4.
    pub address: IpAddr,
    /// The line of its header in the vdmap file.
    pub line: usize,
    /// The parameters it sets that are in effect, as written, in file order (for `mailmux
    /// check` and logs; the values are in `config`).
    pub overrides: Vec<String>,
    /// The parameters it sets that mailmux does not implement yet, as written; their values
    /// are kept in `config.not_implemented`.
    pub not_implemented: Vec<String>,
    /// The service's configuration with the entry's settings laid over it.
    pub config: Arc<ServiceConfig>,
}

/// One entry as read from the file, before it is laid over a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    /// `vdmap NAME …`.
    pub name: String,
    /// `vdmap … ADDRESS`, canonical (IPv4-mapped IPv6 as IPv4).
    pub address: IpAddr,
    /// The header's line.
    pub line: usize,
    /// Its settings: only [`PER_DOMAIN`] names, keys in their one spelling, one per key
    /// (a later line replaces an earlier one in place).
    pub entries: Vec<Entry>,
}

/// Parses a vdmap file; problems are reported with file and line, and the lines in error
/// are left out.
pub fn parse(file: &Path, text: &str, diags: &mut Diagnostics) -> Vec<Declared> {
    let mut domains: Vec<Declared> = Vec::new();
    // Names whose header was in error: their settings are not errors of their own.
    let mut broken: Vec<String> = Vec::new();
    // Not-yet-implemented names already warned about: one warning per file is enough.
    let mut warned: Vec<String> = Vec::new();
    for Line { head, value, line } in raw::lines(file, text, diags) {
        if head.eq_ignore_ascii_case("vdmap") {
            header(file, &value, line, &mut domains, &mut broken, diags);
            continue;
        }
        let Some((name, param)) = head.split_once(':') else {
            diags.error(file, line, format!("'{head}' is neither 'vdmap NAME IPADDR' nor 'NAME:Parameter value'"));
            continue;
        };
        if param.is_empty() {
            diags.error(file, line, "missing parameter name after ':'");
            continue;
        }
        let Some(domain) = domains.iter_mut().find(|d| d.name.eq_ignore_ascii_case(name)) else {
            if !broken.iter().any(|b| b.eq_ignore_ascii_case(name)) {
                diags.error(
                    file,
                    line,
                    format!("setting for vdmap '{name}', which is not declared above ('vdmap {name} IPADDR')"),
                );
            }
            continue;
        };
        let lower = param.to_ascii_lowercase();
        let key = service::canonical_key(&lower);
        if !PER_DOMAIN.contains(&key) {
            if service::is_known(key) {
                diags.error(
                    file,
                    line,
                    format!(
                        "{param} cannot be set per virtual domain; set it in the service file \
                         (docs/configuration.md lists the vdmap parameters)"
                    ),
                );
            } else {
                diags.warn(file, line, format!("unknown parameter '{param}' ignored"));
            }
            continue;
        }
        if service::is_not_implemented(key) && !warned.iter().any(|w| w == key) {
            warned.push(key.to_owned());
            diags.warn(
                file,
                line,
                format!(
                    "{param} is an MMP parameter mailmux does not implement yet; kept, not in effect \
                     (said once for this file)"
                ),
            );
        }
        let entry = Entry { name: param.to_owned(), key: key.to_owned(), value, line };
        match domain.entries.iter_mut().find(|e| e.key == entry.key) {
            Some(earlier) => {
                diags.warn(
                    file,
                    line,
                    format!("{param} set again for vdmap {}; this replaces line {}", domain.name, earlier.line),
                );
                *earlier = entry;
            }
            None => domain.entries.push(entry),
        }
    }
    for d in &domains {
        if d.entries.is_empty() {
            diags.warn(
                file,
                d.line,
                format!("vdmap {} has no settings: connections on {} get the service's own", d.name, d.address),
            );
        }
    }
    domains
}

/// `vdmap NAME ADDRESS`.
fn header(
    file: &Path,
    value: &str,
    line: usize,
    domains: &mut Vec<Declared>,
    broken: &mut Vec<String>,
    diags: &mut Diagnostics,
) {
    let words: Vec<&str> = value.split_whitespace().collect();
    let [name, address] = words[..] else {
        diags.error(file, line, "a vdmap header is 'vdmap NAME IPADDR'");
        broken.extend(words.first().map(|w| (*w).to_owned()));
        return;
    };
    if name.contains(':') {
        diags.error(file, line, format!("vdmap name '{name}' contains ':', which ends the name in a setting line"));
        broken.push(name.to_owned());
        return;
    }
    let address = match parse_address(address) {
        Ok(a) => a,
        Err(e) => {
            diags.error(file, line, format!("vdmap {name}: {e}"));
            broken.push(name.to_owned());
            return;
        }
    };
    if let Some(first) = domains.iter().find(|d| d.name.eq_ignore_ascii_case(name)) {
        diags.error(file, line, format!("vdmap {name} is declared twice (first at line {})", first.line));
        return;
    }
    if let Some(first) = domains.iter().find(|d| d.address == address) {
        diags.error(
            file,
            line,
            format!(
                "vdmap {name}: {address} is already the address of vdmap {} (line {}); one entry per address",
                first.name, first.line
            ),
        );
        broken.push(name.to_owned());
        return;
    }
    domains.push(Declared { name: name.to_owned(), address, line, entries: Vec::new() });
}

/// An IPv4 or IPv6 address, the latter bracketed or not; IPv4-mapped IPv6 becomes IPv4, the
/// form [`ServiceConfig::for_local_address`] compares.
fn parse_address(text: &str) -> Result<IpAddr, String> {
    let parsed = match text.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
        Some(v6) => v6.parse::<Ipv6Addr>().map(IpAddr::V6),
        None => text.parse::<IpAddr>(),
    };
    let address =
        parsed.map_err(|_| format!("'{text}' is not an IP address (dot-quad IPv4, IPv6, or [IPv6])"))?.to_canonical();
    if address.is_unspecified() {
        return Err(format!("{address} is not an address a client can connect to; name the listening address"));
    }
    Ok(address)
}

/// vdmap files already read in this load, by path: read once, reported once.
#[derive(Debug, Default)]
pub(crate) struct Files(HashMap<PathBuf, Result<Vec<Declared>, String>>);

/// Reads the vdmap file a service's `VirtualDomainFile` names and lays each entry over the
/// service. `entries` are those of the service file `file`; `svc` is what they built, `None`
/// when they had errors: the vdmap file is still read, so that its own problems are reported
/// in the same pass.
pub(crate) fn attach(
    svc: Option<&mut ServiceConfig>,
    entries: &[Entry],
    file: &Path,
    dir: &Path,
    files: &mut Files,
    diags: &mut Diagnostics,
) {
    let Some(setting) = entries.iter().find(|e| e.key == "virtualdomainfile") else { return };
    let value = setting.value.trim();
    if value.is_empty() {
        return;
    }
    let path = crate::resolve(dir, value);
    let read = files.0.entry(path.clone()).or_insert_with(|| {
        std::fs::read_to_string(&path).map(|text| parse(&path, &text, diags)).map_err(|e| e.to_string())
    });
    let declared = match read {
        Ok(declared) => &*declared,
        Err(e) => {
            diags.error(file, setting.line, format!("{}: cannot read {}: {e}", setting.name, path.display()));
            return;
        }
    };
    let Some(svc) = svc else { return };
    // A domain's configuration has no domains of its own.
    let base: Vec<Entry> = entries.iter().filter(|e| e.key != "virtualdomainfile").cloned().collect();
    for d in declared {
        if !receives(&svc.listeners, d.address) {
            diags.warn(
                &path,
                d.line,
                format!(
                    "vdmap {}: {} listens on no address that receives connections for {} (ServiceList), \
                     so the entry never applies to it",
                    d.name,
                    file_name(&svc.file),
                    d.address
                ),
            );
        }
        let mut scratch = Diagnostics::default();
        let built = service::build_layered(
            svc.protocol,
            svc.listeners.clone(),
            &svc.file,
            dir,
            &base,
            Some(Overrides { file: &path, entries: &d.entries }),
            &mut scratch,
        );
        for diag in scratch.0 {
            let diag = if diag.file == path {
                let pending = d.entries.iter().any(|e| e.line == diag.line && service::is_not_implemented(&e.key));
                if pending && diag.severity == Severity::Warning {
                    // Said once for the whole file when it was read.
                    continue;
                }
                diag
            } else if diags.0.contains(&diag) {
                // The service file's own problem, reported when the service was built.
                continue;
            } else {
                // Born of the combination (StoreAdmin here, StoreAdminPass missing …): said at
                // the entry, naming the service file it was laid over.
                let at =
                    if diag.line > 0 { format!(" ({}:{})", diag.file.display(), diag.line) } else { String::new() };
                Diagnostic {
                    severity: diag.severity,
                    file: path.clone(),
                    line: d.line,
                    message: format!("vdmap {} over {}: {}{at}", d.name, file_name(&svc.file), diag.message),
                }
            };
            // Two services naming one vdmap file would say the same thing twice.
            if !diags.0.contains(&diag) {
                diags.0.push(diag);
            }
        }
        let Some(config) = built else { continue };
        let (pending, in_effect): (Vec<&Entry>, Vec<&Entry>) =
            d.entries.iter().partition(|e| service::is_not_implemented(&e.key));
        svc.virtual_domains.push(VirtualDomain {
            name: d.name.clone(),
            address: d.address,
            line: d.line,
            overrides: in_effect.iter().map(|e| e.name.clone()).collect(),
            not_implemented: pending.iter().map(|e| e.name.clone()).collect(),
            config: Arc::new(config),
        });
    }
}

/// Whether a connection to `address` can reach one of the listeners: the same address, or a
/// wildcard of its family (`[::]` too for IPv4, as Linux binds it dual-stack by default).
fn receives(listeners: &[SocketAddr], address: IpAddr) -> bool {
    listeners.iter().any(|l| match l.ip() {
        ip if ip.to_canonical() == address => true,
        IpAddr::V4(v4) => v4.is_unspecified() && address.is_ipv4(),
        IpAddr::V6(v6) => v6.is_unspecified(),
    })
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use std::ptr;

    use super::*;
    use crate::service::Protocol;

    const SERVICE: &str = "default:LdapURL ldap://ldap.example.com/o=example\n\
                           default:BindDN \"cn=Directory Manager\"\n\
                           default:BindPass secret\n\
                           default:Timeout 600\n\
                           default:VirtualDomainFile vdmap.cfg\n";

    const VDMAP: &str = "# two hosted domains and one on IPv6\n\
                         vdmap siroe 127.0.0.2\n\
                         siroe:DefaultDomain siroe.com\n\
                         siroe:SearchFormat \"(&(uid=%U)(o=siroe))\"\n\
                         siroe:ReplayFormat %U@%V\n\
                         \n\
                         vdmap sesta 127.0.0.3\n\
                         sesta:DefaultDomain sesta.com\n\
                         sesta:LdapURL ldap://ldap.sesta.com/o=sesta\n\
                         sesta:TCPAccess \"+imap:ALL$-imap:198.51.100.0/24\"\n\
                         sesta:DomainDelim +\n\
                         VDMAP six [2001:db8::11]\n\
                         six:DefaultDomain six.example\n";

    fn listeners() -> Vec<SocketAddr> {
        vec!["0.0.0.0:143".parse().unwrap(), "[::]:143".parse().unwrap()]
    }

    /// Builds `service` (from `ImapProxyAService.cfg` in a temporary directory holding
    /// `vdmap.cfg` and the `extra` files) with its virtual domains.
    fn with_vdmap(service: &str, vdmap: &str, extra: &[(&str, &str)]) -> (Option<ServiceConfig>, String) {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("vdmap.cfg"), vdmap).expect("write vdmap");
        for (name, text) in extra {
            std::fs::write(dir.path().join(name), text).expect("write");
        }
        let file = dir.path().join("ImapProxyAService.cfg");
        let mut d = Diagnostics::default();
        let entries = raw::parse(&file, service, None, &mut d);
        let mut svc = service::build(Protocol::Imap, listeners(), &file, dir.path(), &entries, &mut d);
        attach(svc.as_mut(), &entries, &file, dir.path(), &mut Files::default(), &mut d);
        // Paths differ per run: messages are compared by file name.
        let text = d.to_string().replace(&format!("{}/", dir.path().display()), "");
        (svc.filter(|_| !d.has_errors()), text)
    }

    #[test]
    fn parse_reads_headers_settings_quoting_and_spellings() {
        let mut d = Diagnostics::default();
        let text = format!("{VDMAP}vdmap mapped ::ffff:127.0.0.4\nmapped:AuthCacheSizeTTL 60\n");
        let domains = parse(Path::new("vdmap.cfg"), &text, &mut d);
        let names: Vec<(&str, String, usize)> =
            domains.iter().map(|d| (d.name.as_str(), d.address.to_string(), d.line)).collect();
        assert_eq!(
            names,
            vec![
                ("siroe", "127.0.0.2".to_owned(), 2),
                ("sesta", "127.0.0.3".to_owned(), 7),
                ("six", "2001:db8::11".to_owned(), 12),
                ("mapped", "127.0.0.4".to_owned(), 14)
            ]
        );
        assert_eq!(domains[0].entries[1].value, "(&(uid=%U)(o=siroe))");
        assert_eq!(domains[1].entries[3].key, "virtualdomaindelim", "DomainDelim is VirtualDomainDelim");
        assert_eq!(domains[1].entries[3].name, "DomainDelim", "messages use the name as written");
        assert_eq!(domains[3].entries[0].key, "authcachettl", "the guide's AuthCacheSizeTTL");
        assert!(d.0.is_empty(), "{d}");
    }

    #[test]
    fn each_domain_gets_a_whole_configuration_chosen_by_local_address() {
        let (svc, diags) = with_vdmap(SERVICE, VDMAP, &[]);
        assert_eq!(diags, "");
        let svc = svc.expect("builds");
        assert_eq!(svc.virtual_domains.len(), 3);
        assert!(svc.virtual_domain_file.as_ref().is_some_and(|p| p.ends_with("vdmap.cfg")));

        let siroe = svc.for_local_address("127.0.0.2".parse().unwrap());
        assert_eq!(siroe.default_domain.as_deref(), Some("siroe.com"));
        assert_eq!(siroe.search_format.source(), "(&(uid=%U)(o=siroe))");
        assert_eq!(siroe.replay_format.source(), "%U@%V");
        // What the entry does not set is the service's.
        assert_eq!(siroe.directory, svc.directory);
        assert_eq!(siroe.bind_dn.as_deref(), Some("cn=Directory Manager"));
        assert_eq!(siroe.timeout, std::time::Duration::from_secs(600));
        assert!(siroe.virtual_domains.is_empty() && siroe.virtual_domain_file.is_none());

        let sesta = svc.for_local_address("127.0.0.3".parse().unwrap());
        assert_eq!(sesta.default_domain.as_deref(), Some("sesta.com"));
        assert_eq!(sesta.directory[0].to_string(), "ldap://ldap.sesta.com:389/o=sesta");
        assert_eq!(sesta.search_format.source(), "(uid=%s)");
        assert_eq!(sesta.domain_delims, vec!['+']);
        assert!(!sesta.edge.tcp_access.is_empty() && svc.edge.tcp_access.is_empty());

        // A dual-stack listener sees IPv4 clients' local address as IPv4-mapped IPv6.
        let mapped = svc.for_local_address("::ffff:127.0.0.2".parse().unwrap());
        assert_eq!(mapped.default_domain.as_deref(), Some("siroe.com"));
        let six = svc.for_local_address("2001:db8::11".parse().unwrap());
        assert_eq!(six.default_domain.as_deref(), Some("six.example"));
        assert!(ptr::eq(svc.for_local_address("127.0.0.9".parse().unwrap()), &svc));
        assert_eq!(svc.virtual_domain("127.0.0.3".parse().unwrap()).map(|d| d.name.as_str()), Some("sesta"));

        let sesta = &svc.virtual_domains[1];
        assert_eq!(sesta.overrides, vec!["DefaultDomain", "LdapURL", "TCPAccess", "DomainDelim"]);
        assert!(sesta.not_implemented.is_empty());
        assert_eq!(sesta.line, 7);
    }

    #[test]
    fn problems_in_the_file_are_reported_with_its_lines() {
        let vdmap = "vdmap onlyname\n\
                     onlyname:DefaultDomain a.example\n\
                     vdmap bad 127.0.0.300\n\
                     vdmap ok 127.0.0.2\n\
                     ok:BacksidePort 1143\n\
                     ok:SSLPorts 993\n\
                     ok:SearchFormat (uid=%q)\n\
                     ok:Frobnicate 1\n\
                     ghost:DefaultDomain g.example\n\
                     vdmap again [::ffff:127.0.0.2]\n\
                     vdmap OK 127.0.0.5\n\
                     vdmap empty 127.0.0.6\n\
                     ok:DefaultDomain x.example\n\
                     ok:DefaultDomain y.example\n\
                     just words\n\
                     vdmap any 0.0.0.0\n\
                     vdmap:x 127.0.0.7\n";
        let (svc, text) = with_vdmap(SERVICE, vdmap, &[]);
        assert!(svc.is_none());
        for needle in [
            "vdmap.cfg:1: error: a vdmap header is 'vdmap NAME IPADDR'",
            "vdmap.cfg:3: error: vdmap bad: '127.0.0.300' is not an IP address",
            "vdmap.cfg:5: error: BacksidePort cannot be set per virtual domain",
            "vdmap.cfg:6: error: SSLPorts cannot be set per virtual domain",
            "vdmap.cfg:7: error: SearchFormat: unknown token %q",
            "vdmap.cfg:8: warning: unknown parameter 'Frobnicate' ignored",
            "vdmap.cfg:9: error: setting for vdmap 'ghost', which is not declared above",
            "vdmap.cfg:10: error: vdmap again: 127.0.0.2 is already the address of vdmap ok (line 4)",
            "vdmap.cfg:11: error: vdmap OK is declared twice (first at line 4)",
            "vdmap.cfg:12: warning: vdmap empty has no settings",
            "vdmap.cfg:14: warning: DefaultDomain set again for vdmap ok; this replaces line 13",
            "vdmap.cfg:15: error: 'just' is neither 'vdmap NAME IPADDR' nor 'NAME:Parameter value'",
            "vdmap.cfg:16: error: vdmap any: 0.0.0.0 is not an address a client can connect to",
            // The name ends at the first ':'.
            "vdmap.cfg:17: error: setting for vdmap 'vdmap', which is not declared above",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert!(!text.contains("vdmap.cfg:2:"), "a broken header's settings are not errors again:\n{text}");
        assert_eq!(text.matches("vdmap.cfg:7:").count(), 1, "{text}");
    }

    #[test]
    fn not_yet_implemented_parameters_are_kept_and_warned_once_per_file() {
        let vdmap = "vdmap a 127.0.0.2\na:AuthService yes\na:AuthServiceTTL 60\n\
                     vdmap b 127.0.0.3\nb:AuthService no\nb:AuthenticationServer 127.0.0.1:56\n";
        let (svc, text) = with_vdmap(&format!("{SERVICE}default:AuthService no\n"), vdmap, &[]);
        let svc = svc.unwrap_or_else(|| panic!("{text}"));
        assert_eq!(
            text.matches("AuthService is an MMP parameter").count(),
            2,
            "service file once, vdmap once:\n{text}"
        );
        assert!(text.contains("vdmap.cfg:2: warning: AuthService is an MMP parameter"), "{text}");
        assert!(text.contains("vdmap.cfg:3: warning: AuthServiceTTL"), "{text}");
        assert!(text.contains("vdmap.cfg:6: warning: AuthenticationServer"), "{text}");
        assert!(!text.contains("vdmap.cfg:5:"), "{text}");
        let b = &svc.virtual_domains[1];
        assert_eq!(b.not_implemented, vec!["AuthService", "AuthenticationServer"]);
        assert!(b.overrides.is_empty());
        let kept: Vec<&str> =
            b.config.not_implemented.iter().filter(|e| e.key == "authservice").map(|e| e.value.as_str()).collect();
        assert_eq!(kept, vec!["no"]);
        assert_eq!(b.config.not_implemented.iter().find(|e| e.key == "authenticationserver").map(|e| e.line), Some(6));
    }

    #[test]
    fn problems_of_the_combination_are_said_at_the_entry() {
        let (svc, text) = with_vdmap(SERVICE, "vdmap a 127.0.0.2\na:StoreAdmin mmpstore\n", &[]);
        assert!(svc.is_none());
        assert!(
            text.contains("vdmap.cfg:1: error: vdmap a over ImapProxyAService.cfg: StoreAdmin needs StoreAdminPass"),
            "{text}"
        );
        // The service's own problems are not repeated per domain.
        let (_, text) = with_vdmap(&format!("{SERVICE}default:Frobnicate 1\n"), "vdmap a 127.0.0.2\na:BindDN x\n", &[]);
        assert_eq!(text.matches("Frobnicate").count(), 1, "{text}");
    }

    #[test]
    fn cert_map_names_a_map_of_the_services_file() {
        let certmap = "certmap default default\ndefault:DNComps\ncertmap siroe o=siroe.com\nsiroe:FilterComps ou=uid\n";
        let service = format!(
            "{SERVICE}default:SSLEnable yes\ndefault:SSLCertFile c.pem\ndefault:SSLKeyFile k.pem\n\
             default:SSLCACertFile ca.pem\ndefault:CertMapFile certmap.conf\n\
             default:StoreAdmin mmpstore\ndefault:StoreAdminPass pw\n"
        );
        let files = [("certmap.conf", certmap)];
        let (svc, text) = with_vdmap(&service, "vdmap a 127.0.0.2\na:CertMap SIROE\n", &files);
        let svc = svc.unwrap_or_else(|| panic!("{text}"));
        assert_eq!(svc.cert_map_name, None);
        let a = svc.for_local_address("127.0.0.2".parse().unwrap());
        assert_eq!(a.cert_map_name.as_deref(), Some("SIROE"));
        assert!(a.cert_map.as_ref().and_then(|m| m.named("SIROE")).is_some());

        let (svc, text) = with_vdmap(&service, "vdmap a 127.0.0.2\na:CertMap sesta\n", &files);
        assert!(svc.is_none());
        assert!(
            text.contains(
                "vdmap.cfg:2: error: CertMap: CertMapFile defines no map named 'sesta' (it has: default, siroe)"
            ),
            "{text}"
        );
        // Without a CertMapFile the name has nothing to select: said, not refused.
        let (svc, text) = with_vdmap(SERVICE, "vdmap a 127.0.0.2\na:CertMap siroe\n", &[]);
        assert!(svc.is_some(), "{text}");
        assert!(text.contains("vdmap.cfg:2: warning: CertMap has no effect"), "{text}");
        // In the service file it means nothing.
        let (_, text) =
            with_vdmap(&format!("{SERVICE}default:CertMap siroe\n"), "vdmap a 127.0.0.2\na:BindDN x\n", &[]);
        assert!(text.contains("ImapProxyAService.cfg:6: warning: CertMap is read only in a vdmap entry"), "{text}");
    }

    #[test]
    fn an_address_no_listener_receives_is_warned() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("vdmap.cfg"), "vdmap a 192.0.2.1\na:DefaultDomain a.example\n").expect("write");
        let file = dir.path().join("ImapProxyAService.cfg");
        let mut d = Diagnostics::default();
        let entries = raw::parse(&file, SERVICE, None, &mut d);
        let only_loopback = vec!["127.0.0.1:143".parse().unwrap()];
        let mut svc = service::build(Protocol::Imap, only_loopback, &file, dir.path(), &entries, &mut d);
        attach(svc.as_mut(), &entries, &file, dir.path(), &mut Files::default(), &mut d);
        assert!(
            d.to_string().contains("vdmap.cfg:1: warning: vdmap a: ImapProxyAService.cfg listens on no address"),
            "{d}"
        );
        assert!(receives(&["0.0.0.0:1".parse().unwrap()], "192.0.2.1".parse().unwrap()));
        assert!(!receives(&["0.0.0.0:1".parse().unwrap()], "2001:db8::1".parse().unwrap()));
        assert!(receives(&["[::]:1".parse().unwrap()], "192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn an_unreadable_file_is_an_error_at_the_setting() {
        let (svc, text) = with_vdmap(&SERVICE.replace("vdmap.cfg", "missing.cfg"), "", &[]);
        assert!(svc.is_none());
        assert!(text.contains("ImapProxyAService.cfg:5: error: VirtualDomainFile: cannot read missing.cfg"), "{text}");
    }

    #[test]
    fn odd_input_is_reported_not_a_panic() {
        for text in
            ["vdmap", "vdmap a", "vdmap a b c", ":", "a:", ":x y", "vdmap a [::1", "vdmap a [1.2.3.4]", "\"", "a:\"b"]
        {
            let mut d = Diagnostics::default();
            let domains = parse(Path::new("v"), text, &mut d);
            assert!(domains.is_empty() && d.has_errors(), "{text:?}: {d}");
        }
    }

    #[test]
    fn the_per_domain_list_holds_known_names_in_their_one_spelling() {
        for key in PER_DOMAIN {
            assert!(service::is_known(key), "{key}");
            assert_eq!(service::canonical_key(key), *key);
        }
    }

    #[test]
    fn the_shipped_example_loads_cleanly_when_enabled() {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/mmp");
        let dir = tempfile::tempdir().expect("temp dir");
        for name in ["AService.cfg", "ImapProxyAService.cfg", "PopProxyAService.cfg", "vdmap.cfg"] {
            let text = std::fs::read_to_string(examples.join(name)).expect("shipped example");
            let text = text.replace("#default:VirtualDomainFile vdmap.cfg", "default:VirtualDomainFile vdmap.cfg");
            std::fs::write(dir.path().join(name), text).expect("write");
        }
        let loaded = crate::load(dir.path(), None).unwrap_or_else(|d| panic!("{d}"));
        assert!(loaded.warnings.is_empty(), "{}", loaded.warnings);
        let imap = &loaded.config.services[0];
        let names: Vec<&str> = imap.virtual_domains.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["org", "net"]);
        let org = imap.for_local_address("192.0.2.10".parse().unwrap());
        assert_eq!(org.default_domain.as_deref(), Some("example.org"));
    }

    #[test]
    fn load_reads_the_vdmap_once_for_both_services() {
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
        // Dual-stack listeners: the IPv6 entry is reachable (a bare port would be IPv4 only).
        write("AService.cfg", "default:ServiceList imapproxy@[::]:143 popproxy@[::]:110\n");
        write("ImapProxyAService.cfg", SERVICE);
        write(
            "PopProxyAService.cfg",
            &SERVICE.replace("vdmap.cfg", &dir.path().join("vdmap.cfg").display().to_string()),
        );
        write("vdmap.cfg", &format!("{VDMAP}siroe:AuthService yes\nsesta:AuthService yes\nsesta:PreAuth yes\n"));
        let loaded = crate::load(dir.path(), None).unwrap_or_else(|d| panic!("{d}"));
        let warnings = loaded.warnings.to_string();
        assert_eq!(loaded.warnings.0.len(), 1, "{warnings}");
        assert!(warnings.contains("vdmap.cfg:14: warning: AuthService is an MMP parameter"), "{warnings}");
        for svc in &loaded.config.services {
            assert_eq!(svc.virtual_domains.len(), 3);
            let sesta = svc.for_local_address("127.0.0.3".parse().unwrap());
            assert_eq!((sesta.protocol, sesta.default_domain.as_deref()), (svc.protocol, Some("sesta.com")));
            assert!(sesta.auth.preauth && !svc.auth.preauth, "PreAuth per vdmap entry");
        }

        // An error in an entry stops the load, reported once although both services use it.
        write("vdmap.cfg", "vdmap a 127.0.0.2\na:ReplayFormat %Q\n");
        let diags = crate::load(dir.path(), None).expect_err("a bad value");
        assert_eq!(diags.0.len(), 1, "{diags}");
        assert!(diags.to_string().contains("vdmap.cfg:2: error: ReplayFormat"), "{diags}");
    }
}
