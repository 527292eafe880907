//! The MMP's wrap-style access filters: the `TCPAccess` parameter and the per-user attribute
//! named by `TCPAccessAttr` (`mailAllowedServiceAccess`), which share one language.
//!
//! ```text
//! default:TCPAccess +imap,pop:ALL$-pop:badhost.example
//! default:TCPAccess -ALL:ALL EXCEPT server1.sesta.com
//! mailAllowedServiceAccess: +imaps,pops:*$+imap,pop:192.0.2.99
//! ```
//!
//! # Grammar
//!
//! ```text
//! filter   = [ rule *( "$" rule ) ]            ; empty: no rule at all
//! rule     = ( "+" | "-" ) services ":" clients ; + allows, - denies
//! services = list(service)
//! clients  = list(client)
//! list(x)  = items [ "EXCEPT" list(x) ]        ; a EXCEPT b EXCEPT c = a EXCEPT (b EXCEPT c)
//! items    = x *( ("," | white space) x )
//! service  = "imap" | "imaps" | "pop" | "pops" | "smtp" | "smtps" | "http" | "smime" | "ALL" | "*"
//! client   = "ALL" | "*" | "LOCAL" | "KNOWN" | "UNKNOWN" | "DNSSPOOFER" | "PARANOID"
//!          | address | net | ipv4-prefix | ".domain.suffix" | host.name | wildcard-pattern
//! ```
//!
//! Names and keywords are case-insensitive; white space around any token is allowed. The first
//! `:` of a rule ends its services, so IPv6 clients need no brackets (`+imap:2001:db8::/32`),
//! though `[2001:db8::]/32` is accepted too. An empty rule (`$$`, a trailing `$`), an empty
//! item (`a,,b`), a missing sign or `:` are errors that name the rule and the token.
//!
//! # Services
//!
//! The names the Sun schema lists as legal. mailmux proxies only IMAP and POP, but per-user
//! values written for the other Messaging Server components (`+imap,pop,http:*`) must still
//! load, so `smtp`, `smtps`, `http` and `smime` are accepted and simply never asked about by
//! mailmux. A rule naming a plain service also covers its TLS variant: `imap` matches
//! `imaps` connections, `pop` `pops`, `smtp` `smtps`, while `imaps` matches only TLS
//! connections. This is the MMP's
//! behaviour ("the MMP `imap` service controls both IMAP and IMAP+SSL ... both ports 143 and
//! 993", msg.wikidoc.info `Client_access_to_Message_Store_servers`), and it keeps the
//! documented "TLS only" attribute `+imaps,pops:*$+imap,pop:<MMP address>` meaning what it
//! says. The server passes [`Service::Imaps`] / [`Service::Pops`] when the session is
//! encrypted at the time of the check (implicit TLS at admission; implicit TLS or STARTTLS
//! for the per-user check after login).
//!
//! # Clients
//!
//! | pattern | matches |
//! | --- | --- |
//! | `ALL`, `*` | everyone |
//! | `192.0.2.7`, `2001:db8::7`, `[2001:db8::7]` | that address |
//! | `192.168.1.0/24`, `192.168.1.0/255.255.255.0`, `2001:db8::/64` | the range ([`IpNet`]) |
//! | `192.168.` | tcp_wrappers prefix: the first one to three whole octets (= `192.168.0.0/16`) |
//! | `192.0.2.*`, `2001:db8::?` | `*`/`?` wildcards over the address's text (IPv6 in its compressed form) |
//! | `mail.example.com` | that host name |
//! | `.example.com` | host names ending so (not `example.com` itself) |
//! | `mail*.example.com`, `pop?.example.com` | `*`/`?` wildcards over the host name |
//! | `LOCAL` | a host name without a dot |
//! | `KNOWN` | a host name is known (reverse lookup confirmed by the forward one) |
//! | `UNKNOWN` | no confirmed host name: no lookup, no PTR record, DNS failure, or a spoofed name |
//! | `DNSSPOOFER` (`PARANOID`) | the PTR name does not resolve back to the address |
//!
//! Patterns that look like addresses match the address only and the rest match the host
//! name only: with tcp_wrappers' looser rule, `+imap:192.168.*` would also admit whoever
//! controls the PTR and A records of `192.168.1.attacker.example`.
//!
//! Host-name patterns need the client's name ([`TcpAccess::needs_host_name_for`]): the server
//! does the reverse lookup, then the forward lookup of that name, and passes the outcome as a
//! [`HostName`]. Until a name is confirmed, name patterns do not match and `UNKNOWN` does, as in
//! tcp_wrappers. So a deny rule by name can be escaped by a client without a PTR record: deny
//! by address, or deny `UNKNOWN` as well. `DNSSPOOFER` is a special case of `UNKNOWN`: it
//! matches only when a PTR name exists and fails the forward check (tcp_wrappers treats a
//! `PARANOID` host as unknown too); with no lookup done there is no evidence either way and it
//! does not match.
//!
//! Not supported, refused with a message: netgroups (`@group`), `user@host` (needs identd),
//! `service@host` (needs the server address), a host name with a trailing dot (it would be a
//! tcp_wrappers *prefix*: `+imap:trusted.example.com.` would admit
//! `trusted.example.com.attacker.example`), non-ASCII names (write IDNs as `xn--`), masks with
//! host bits or holes (see [`IpNet`]), and more than [`MAX_EXCEPT`] nested `EXCEPT`s.
//!
//! # Evaluation
//!
//! As documented for `mailAllowedServiceAccess` and the store's access filters, which
//! `TCPAccess` shares ("The syntax of this option is the same as
//! mailDomainAllowedServiceAccess", Messaging Server 6.3 Administration Guide 7.5.1):
//!
//! 1. **Allow rules first**: if any `+` rule matches the service and the client, access is
//!    allowed (Administration Guide 23.7.3: "Allow filters are processed before Deny filters,
//!    the search terminates when a match is found").
//! 2. Then **deny rules**: if any `-` rule matches, access is denied.
//! 3. **No match**: allowed, "except in the case where there are allow filters but no deny
//!    filters. In this case, a lack of match means access is denied" (Schema Reference,
//!    `mailAllowedServiceAccess`, Communications Services 6 2005Q4). So `+imap:ALL` alone
//!    denies POP; `-pop:ALL` alone allows IMAP; a filter with no rule allows everything
//!    ("If no rules are specified, then user is allowed access to all services from all
//!    clients").
//!
//! Written order therefore never changes the decision; [`Verdict::rule`] names the first
//! rule (in written order, allow rules before deny rules) that decided, for the log.
//!
//! # For the server
//!
//! * `TCPAccess` unset is [`TcpAccess::default`]: no rule, everyone admitted. (7.x fell back
//!   to the store's `domainallowed` options then; mailmux has no such options.)
//! * A `TCPAccess` that does not parse is a configuration error (file and line, at load).
//!   A per-user value that does not parse is only seen at login; refuse that login and log
//!   the error, because a typo in the directory must not open what the value meant to close.
//! * [`TcpAccess::needs_host_name_for`] says whether to resolve the client's name for this
//!   service at all; a loader can warn when it is true while `ClientLookup` is off (every
//!   client would then be `UNKNOWN`).
//! * [`Service::of`] gives the service to ask about from the protocol and whether the session
//!   is encrypted.
//!
//! ```
//! use mailmux_config::tcp_access::{Client, Decision, HostName, Service, TcpAccess};
//!
//! let filter = TcpAccess::parse("-ALL:ALL EXCEPT 10.0.0.0/8, .example.com").unwrap();
//! assert!(filter.needs_host_name());
//! let inside = Client::new("10.1.2.3".parse().unwrap());
//! assert_eq!(filter.decide(Service::Imap, &inside), Decision::Allow);
//! let named = Client::with_host("203.0.113.9".parse().unwrap(), HostName::Known("mx.example.com"));
//! assert_eq!(filter.decide(Service::Pop, &named), Decision::Allow);
//! let stranger = Client::with_host("203.0.113.9".parse().unwrap(), HostName::Unknown);
//! assert_eq!(filter.decide(Service::Pop, &stranger), Decision::Deny);
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use crate::address_list::IpNet;
use crate::service::Protocol;

/// How many `EXCEPT`s one list may nest; real filters use one.
pub const MAX_EXCEPT: usize = 8;

/// A service a filter names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// IMAP without TLS. (A rule naming `imap` matches this and [`Service::Imaps`].)
    Imap,
    /// IMAP over TLS.
    Imaps,
    /// POP3 without TLS.
    Pop,
    /// POP3 over TLS.
    Pops,
    /// SMTP submission.
    Smtp,
    /// SMTP submission over TLS.
    Smtps,
    /// Webmail (other Messaging Server components).
    Http,
    /// S/MIME in webmail (other Messaging Server components).
    Smime,
}

const SERVICES: [Service; 8] = [
    Service::Imap,
    Service::Imaps,
    Service::Pop,
    Service::Pops,
    Service::Smtp,
    Service::Smtps,
    Service::Http,
    Service::Smime,
];

impl Service {
    /// The name filters use.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Imap => "imap",
            Service::Imaps => "imaps",
            Service::Pop => "pop",
            Service::Pops => "pops",
            Service::Smtp => "smtp",
            Service::Smtps => "smtps",
            Service::Http => "http",
            Service::Smime => "smime",
        }
    }

    /// The service of a name, case-insensitively.
    pub fn from_name(name: &str) -> Option<Service> {
        SERVICES.into_iter().find(|s| s.as_str().eq_ignore_ascii_case(name))
    }

    /// The service a session of `protocol` is checked as: the TLS variant when the session
    /// is encrypted at the time of the check.
    pub fn of(protocol: Protocol, encrypted: bool) -> Service {
        match (protocol, encrypted) {
            (Protocol::Imap, false) => Service::Imap,
            (Protocol::Imap, true) => Service::Imaps,
            (Protocol::Pop3, false) => Service::Pop,
            (Protocol::Pop3, true) => Service::Pops,
        }
    }

    /// The plain service a TLS one is a variant of (itself for the others).
    pub fn plain(self) -> Service {
        match self {
            Service::Imaps => Service::Imap,
            Service::Pops => Service::Pop,
            Service::Smtps => Service::Smtp,
            other => other,
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a filter decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Let the client in.
    Allow,
    /// Refuse it.
    Deny,
}

/// What the server knows of the client's host name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostName<'a> {
    /// No lookup was made; name patterns cannot match, `UNKNOWN` does.
    NotLookedUp,
    /// The lookup gave no name (no PTR record, or DNS failed).
    Unknown,
    /// A PTR name exists but does not resolve back to the client's address.
    Unconfirmed,
    /// The PTR name, confirmed by its forward lookup (a trailing dot is ignored).
    Known(&'a str),
}

/// The client a filter is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client<'a> {
    /// Its address (IPv4-mapped IPv6 addresses count as IPv4).
    pub ip: IpAddr,
    /// Its host name, as far as looked up.
    pub host: HostName<'a>,
}

impl<'a> Client<'a> {
    /// A client whose name was not looked up.
    pub fn new(ip: IpAddr) -> Client<'a> {
        Client { ip, host: HostName::NotLookedUp }
    }

    /// A client with the outcome of a lookup.
    pub fn with_host(ip: IpAddr, host: HostName<'a>) -> Client<'a> {
        Client { ip, host }
    }

    fn name(&self) -> Option<&'a str> {
        match self.host {
            HostName::Known(name) => Some(name.strip_suffix('.').unwrap_or(name)).filter(|n| !n.is_empty()),
            _ => None,
        }
    }
}

/// A decision and the rule that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Allow or deny.
    pub decision: Decision,
    /// The deciding rule's index in [`TcpAccess::rules`]; `None` when no rule matched.
    pub rule: Option<usize>,
}

/// `items EXCEPT except`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct List<T> {
    items: Vec<T>,
    except: Option<Box<List<T>>>,
}

impl<T> List<T> {
    fn matches(&self, hit: &impl Fn(&T) -> bool) -> bool {
        self.items.iter().any(hit) && !self.except.as_ref().is_some_and(|e| e.matches(hit))
    }

    fn any_item(&self, test: &impl Fn(&T) -> bool) -> bool {
        self.items.iter().any(test) || self.except.as_ref().is_some_and(|e| e.any_item(test))
    }
}

impl<T: fmt::Display> fmt::Display for List<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{item}")?;
        }
        match &self.except {
            Some(except) => write!(f, " EXCEPT {except}"),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServicePattern {
    All,
    One(Service),
}

impl ServicePattern {
    fn matches(self, service: Service) -> bool {
        match self {
            ServicePattern::All => true,
            ServicePattern::One(s) => s == service || s == service.plain(),
        }
    }
}

impl fmt::Display for ServicePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServicePattern::All => f.write_str("ALL"),
            ServicePattern::One(s) => f.write_str(s.as_str()),
        }
    }
}

/// Host names and patterns are kept lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ClientPattern {
    All,
    Local,
    Known,
    Unknown,
    DnsSpoofer,
    Net(IpNet),
    Name(String),
    /// With its leading dot.
    Suffix(String),
    NameGlob(String),
    AddrGlob(String),
}

impl ClientPattern {
    fn matches(&self, client: &Client<'_>) -> bool {
        let name = client.name();
        match self {
            ClientPattern::All => true,
            ClientPattern::Local => name.is_some_and(|n| !n.contains('.')),
            ClientPattern::Known => name.is_some(),
            ClientPattern::Unknown => name.is_none(),
            ClientPattern::DnsSpoofer => client.host == HostName::Unconfirmed,
            ClientPattern::Net(net) => net.contains(client.ip),
            ClientPattern::Name(want) => name.is_some_and(|n| n.eq_ignore_ascii_case(want)),
            ClientPattern::Suffix(suffix) => name.is_some_and(|n| {
                n.len() > suffix.len()
                    && n.get(n.len() - suffix.len()..).is_some_and(|tail| tail.eq_ignore_ascii_case(suffix))
            }),
            ClientPattern::NameGlob(pattern) => name.is_some_and(|n| glob(pattern.as_bytes(), n.as_bytes())),
            ClientPattern::AddrGlob(pattern) => {
                glob(pattern.as_bytes(), client.ip.to_canonical().to_string().as_bytes())
            }
        }
    }

    fn needs_name(&self) -> bool {
        matches!(
            self,
            ClientPattern::Local
                | ClientPattern::Known
                | ClientPattern::Unknown
                | ClientPattern::DnsSpoofer
                | ClientPattern::Name(_)
                | ClientPattern::Suffix(_)
                | ClientPattern::NameGlob(_)
        )
    }
}

impl fmt::Display for ClientPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientPattern::All => f.write_str("ALL"),
            ClientPattern::Local => f.write_str("LOCAL"),
            ClientPattern::Known => f.write_str("KNOWN"),
            ClientPattern::Unknown => f.write_str("UNKNOWN"),
            ClientPattern::DnsSpoofer => f.write_str("DNSSPOOFER"),
            ClientPattern::Net(net) => write!(f, "{net}"),
            ClientPattern::Name(s)
            | ClientPattern::Suffix(s)
            | ClientPattern::NameGlob(s)
            | ClientPattern::AddrGlob(s) => f.write_str(s),
        }
    }
}

/// One `+services:clients` or `-services:clients`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    decision: Decision,
    services: List<ServicePattern>,
    clients: List<ClientPattern>,
}

impl Rule {
    /// `Allow` for a `+` rule, `Deny` for a `-` one.
    pub fn decision(&self) -> Decision {
        self.decision
    }

    /// Whether the rule applies to this service and client.
    pub fn matches(&self, service: Service, client: &Client<'_>) -> bool {
        self.services.matches(&|p: &ServicePattern| p.matches(service))
            && self.clients.matches(&|p: &ClientPattern| p.matches(client))
    }

    fn applies_to(&self, service: Service) -> bool {
        self.services.matches(&|p: &ServicePattern| p.matches(service))
    }

    fn needs_name(&self) -> bool {
        self.clients.any_item(&ClientPattern::needs_name)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = match self.decision {
            Decision::Allow => '+',
            Decision::Deny => '-',
        };
        write!(f, "{sign}{}:{}", self.services, self.clients)
    }
}

/// A parsed filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TcpAccess {
    rules: Vec<Rule>,
}

impl TcpAccess {
    /// Parses a filter. An empty (or all-blank) text has no rule and allows everything; any
    /// other mistake is an error naming the rule (1-based) and the token.
    pub fn parse(text: &str) -> Result<TcpAccess, String> {
        if text.trim().is_empty() {
            return Ok(TcpAccess::default());
        }
        let mut rules = Vec::new();
        for (i, rule_text) in text.split('$').enumerate() {
            let rule =
                parse_rule(rule_text).map_err(|e| format!("rule {} '{}': {e}", i + 1, shown(rule_text.trim())))?;
            rules.push(rule);
        }
        Ok(TcpAccess { rules })
    }

    /// The rules, in the order written.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether the filter has no rule (and so allows everything).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Allow or deny `client` the `service`.
    pub fn decide(&self, service: Service, client: &Client<'_>) -> Decision {
        self.verdict(service, client).decision
    }

    /// [`TcpAccess::decide`], with the rule that decided.
    pub fn verdict(&self, service: Service, client: &Client<'_>) -> Verdict {
        for want in [Decision::Allow, Decision::Deny] {
            let hit = self.rules.iter().position(|r| r.decision == want && r.matches(service, client));
            if let Some(i) = hit {
                return Verdict { decision: want, rule: Some(i) };
            }
        }
        let has = |d: Decision| self.rules.iter().any(|r| r.decision == d);
        let decision = if has(Decision::Allow) && !has(Decision::Deny) { Decision::Deny } else { Decision::Allow };
        Verdict { decision, rule: None }
    }

    /// Whether any rule looks at host names, so the server knows whether to do reverse DNS.
    pub fn needs_host_name(&self) -> bool {
        self.rules.iter().any(Rule::needs_name)
    }

    /// Whether a rule for `service` looks at host names: no lookup for an IMAP client when
    /// only POP rules name hosts.
    pub fn needs_host_name_for(&self, service: Service) -> bool {
        self.rules.iter().any(|r| r.applies_to(service) && r.needs_name())
    }
}

impl fmt::Display for TcpAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rule) in self.rules.iter().enumerate() {
            if i > 0 {
                f.write_str("$")?;
            }
            write!(f, "{rule}")?;
        }
        Ok(())
    }
}

/// A token for an error message: bounded and with control characters escaped.
fn shown(text: &str) -> String {
    let mut out: String = text.chars().take(64).flat_map(char::escape_debug).collect();
    if text.chars().nth(64).is_some() {
        out.push('…');
    }
    out
}

fn parse_rule(text: &str) -> Result<Rule, String> {
    let text = text.trim();
    let decision = match text.chars().next() {
        None => return Err("empty rule (two '$' in a row, or one at the end?)".to_owned()),
        Some('+') => Decision::Allow,
        Some('-') => Decision::Deny,
        Some(_) => return Err("a rule starts with + (allow) or - (deny)".to_owned()),
    };
    let Some((services, clients)) = text[1..].split_once(':') else {
        return Err("missing ':' between the services and the clients".to_owned());
    };
    let services = parse_list(services, "service", parse_service)?;
    let clients = parse_list(clients, "client", parse_client)?;
    Ok(Rule { decision, services, clients })
}

/// `items [EXCEPT items [EXCEPT ...]]`, items separated by commas and/or white space.
fn parse_list<T>(text: &str, what: &str, item: fn(&str) -> Result<T, String>) -> Result<List<T>, String> {
    let mut segments: Vec<Vec<T>> = vec![Vec::new()];
    for part in text.split(',') {
        if part.trim().is_empty() {
            let problem = if text.trim().is_empty() { "none given" } else { "an empty item (',,'?)" };
            return Err(format!("{what} list '{}': {problem}", shown(text.trim())));
        }
        for token in part.split_whitespace() {
            if token.eq_ignore_ascii_case("EXCEPT") {
                if segments.last().is_some_and(Vec::is_empty) {
                    return Err(format!("nothing before EXCEPT in the {what} list"));
                }
                if segments.len() > MAX_EXCEPT {
                    return Err(format!("more than {MAX_EXCEPT} nested EXCEPTs in the {what} list"));
                }
                segments.push(Vec::new());
            } else {
                let parsed = item(token).map_err(|e| format!("{what} '{}': {e}", shown(token)))?;
                if let Some(last) = segments.last_mut() {
                    last.push(parsed);
                }
            }
        }
    }
    if segments.last().is_some_and(Vec::is_empty) {
        return Err(format!("nothing after EXCEPT in the {what} list"));
    }
    // a EXCEPT b EXCEPT c nests to the right: a EXCEPT (b EXCEPT c).
    let mut list: Option<Box<List<T>>> = None;
    for items in segments.into_iter().rev() {
        list = Some(Box::new(List { items, except: list }));
    }
    list.map(|l| *l).ok_or_else(|| format!("no {what} given"))
}

fn parse_service(token: &str) -> Result<ServicePattern, String> {
    if token == "*" || token.eq_ignore_ascii_case("ALL") {
        return Ok(ServicePattern::All);
    }
    if token.contains('@') {
        return Err("service@host patterns are not supported".to_owned());
    }
    Service::from_name(token)
        .map(ServicePattern::One)
        .ok_or_else(|| "unknown service (imap, imaps, pop, pops, smtp, smtps, http, smime or ALL)".to_owned())
}

fn parse_client(token: &str) -> Result<ClientPattern, String> {
    for (word, pattern) in [
        ("ALL", ClientPattern::All),
        ("*", ClientPattern::All),
        ("LOCAL", ClientPattern::Local),
        ("KNOWN", ClientPattern::Known),
        ("UNKNOWN", ClientPattern::Unknown),
        ("DNSSPOOFER", ClientPattern::DnsSpoofer),
        ("PARANOID", ClientPattern::DnsSpoofer),
    ] {
        if token.eq_ignore_ascii_case(word) {
            return Ok(pattern);
        }
    }
    if token.starts_with('@') {
        return Err("netgroups are not supported".to_owned());
    }
    if token.contains('@') {
        return Err("user@host patterns are not supported (they need identd)".to_owned());
    }
    if token.starts_with('[') || token.contains(['/', '|']) {
        return IpNet::parse(token).map(ClientPattern::Net);
    }
    if let Ok(ip) = token.parse::<IpAddr>() {
        return Ok(ClientPattern::Net(IpNet::host(ip)));
    }
    let lower = token.to_ascii_lowercase();
    if token.contains(['*', '?']) {
        if token.bytes().all(|b| b.is_ascii_digit() || b"*?.".contains(&b)) {
            return Ok(ClientPattern::AddrGlob(lower));
        }
        if token.contains(':') {
            if token.bytes().all(|b| b.is_ascii_hexdigit() || b"*?.:".contains(&b)) {
                return Ok(ClientPattern::AddrGlob(lower));
            }
            return Err("not an IPv6 address pattern (hex digits, ':', '.', '*', '?')".to_owned());
        }
        if token.starts_with('.') {
            return Err("a wildcard cannot follow a leading dot; write *.example.com".to_owned());
        }
        check_host_name(token, true)?;
        return Ok(ClientPattern::NameGlob(lower));
    }
    if let Some(domain) = token.strip_prefix('.') {
        check_host_name(domain, false)?;
        return Ok(ClientPattern::Suffix(lower));
    }
    if let Some(prefix) = token.strip_suffix('.') {
        return ipv4_prefix(prefix).map(ClientPattern::Net);
    }
    if token.contains(':') {
        return Err("not an IPv6 address".to_owned());
    }
    if token.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err("not an IPv4 address (a prefix of whole octets ends with a dot: 192.168.)".to_owned());
    }
    check_host_name(token, false)?;
    Ok(ClientPattern::Name(lower))
}

/// `192.168` (written `192.168.`): one to three whole octets.
fn ipv4_prefix(text: &str) -> Result<IpNet, String> {
    let octets: Vec<&str> = text.split('.').collect();
    let numeric = octets.iter().all(|o| !o.is_empty() && o.bytes().all(|b| b.is_ascii_digit()));
    if !numeric {
        return Err(
            "a trailing dot marks an IPv4 prefix such as 192.168.; host names are written without it".to_owned()
        );
    }
    if octets.len() > 3 {
        return Err("a full address takes no trailing dot".to_owned());
    }
    let mut bytes = [0u8; 4];
    for (slot, octet) in bytes.iter_mut().zip(&octets) {
        // Leading zeros are refused like the address parser does: 010 could be read as octal.
        *slot = match octet.parse::<u8>() {
            Ok(n) if !(octet.len() > 1 && octet.starts_with('0')) => n,
            _ => return Err(format!("'{octet}' is not an octet (0-255)")),
        };
    }
    let prefix = u8::try_from(octets.len() * 8).unwrap_or(32);
    IpNet::new(IpAddr::V4(Ipv4Addr::from(bytes)), prefix)
}

/// Letters, digits, '-' and '_' in dot-separated labels (and `*`/`?` in patterns).
fn check_host_name(name: &str, wildcards: bool) -> Result<(), String> {
    if let Some(c) = name.chars().find(|c| !c.is_ascii()) {
        return Err(format!("'{}' is not ASCII; write internationalised names in their xn-- form", c.escape_debug()));
    }
    let allowed =
        |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (wildcards && (b == b'*' || b == b'?'));
    if let Some(b) = name.bytes().find(|b| *b != b'.' && !allowed(*b)) {
        return Err(format!("'{}' cannot be in a host name", char::from(b).escape_debug()));
    }
    if name.len() > 253 {
        return Err("a host name has at most 253 characters".to_owned());
    }
    if name.split('.').any(str::is_empty) {
        return Err("empty label in the host name (two dots in a row?)".to_owned());
    }
    if name.split('.').any(|label| label.len() > 63) {
        return Err("a host name label has at most 63 characters".to_owned());
    }
    Ok(())
}

/// `*` any run, `?` any one byte, everything else itself (ASCII case-insensitively). Linear
/// backtracking to the last `*`: no recursion, no blow-up on hostile patterns.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c.eq_ignore_ascii_case(&text[t]) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_table() {
        for (pattern, text, expected) in [
            ("*", "", true),
            ("*", "anything", true),
            ("?", "", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("mail*.example.com", "mail12.example.com", true),
            ("mail*.example.com", "MAIL.EXAMPLE.COM", true),
            ("mail*.example.com", "mail.example.org", false),
            ("*.*", "nodot", false),
            ("*a*b*c*", "xxaxxbxxcxx", true),
            ("*a*b*c*", "xxaxxcxxbxx", false),
            ("192.0.2.*", "192.0.2.77", true),
            ("192.0.2.*", "192.0.20.1", false),
            ("**", "x", true),
            ("a*", "a", true),
        ] {
            assert_eq!(glob(pattern.as_bytes(), text.as_bytes()), expected, "{pattern} ~ {text}");
        }
        // Hostile: many stars against a long non-matching text stays fast (quadratic at worst).
        let pattern = "*a".repeat(200);
        let text = "a".repeat(199) + "b";
        assert!(!glob(pattern.as_bytes(), text.as_bytes()));
    }
}
