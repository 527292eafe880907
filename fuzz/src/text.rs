//! `ldap_filter` and `config_file`: the parsers an operator (or a user name placed in a filter)
//! feeds with text.

use std::net::SocketAddr;
use std::path::Path;

use mailmux_config::service::{Protocol, build};
use mailmux_config::{Diagnostics, certmap, dn, raw, service_list};
use mailmux_proto::ldap_filter::{escape_value, parse};

/// What an `ldap_filter` input did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterOutcome {
    /// Whether the text parsed as a filter.
    pub parsed: bool,
}

/// The harness of the `ldap_filter` target.
///
/// Any text parses or is refused without a panic, and matching gives the same answer whether
/// values are lower-cased per match or once up front (the LDIF directory does the latter).
/// Placed in a filter escaped (what `SearchFormat` does with a user name), the text before
/// the first newline matches exactly the values equal to it ignoring case: the text after the
/// newline stands for another user, who must not be matched — the RFC 4515 injection property.
pub fn ldap_filter(data: &[u8]) -> FilterOutcome {
    let Ok(text) = std::str::from_utf8(data) else { return FilterOutcome { parsed: false } };
    let parsed = parse(text);
    if let Ok(filter) = &parsed {
        let values = vec!["joe".to_owned(), text.to_owned()];
        let lowered: Vec<String> = values.iter().map(|v| v.to_lowercase()).collect();
        assert_eq!(
            filter.matches(&|_| values.as_slice()),
            filter.matches_lowercased(&|_| lowered.as_slice()),
            "lower-casing once and per match disagree"
        );
    }
    let (user, other) = text.split_once('\n').unwrap_or((text, "joe"));
    for (template, wanted) in
        [("(uid={})", true), ("(&(objectClass=*)(|(uid={})(mail={})))", true), ("(!(uid={}))", false)]
    {
        let filter = parse(&template.replace("{}", &escape_value(user)))
            .unwrap_or_else(|e| panic!("{template} with an escaped value does not parse: {e}"));
        let mine = vec![user.to_owned()];
        assert_eq!(filter.matches(&|_| mine.as_slice()), wanted, "{template} and its own value");
        let theirs = vec![other.to_owned()];
        let same = user.to_lowercase() == other.to_lowercase();
        assert_eq!(filter.matches(&|_| theirs.as_slice()), wanted == same, "{template} and another value");
    }
    FilterOutcome { parsed: parsed.is_ok() }
}

/// What a `config_file` input did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigOutcome {
    /// Entries read from the text.
    pub entries: usize,
    /// Whether it built into a service configuration.
    pub built: bool,
    /// `certmap` blocks read from the text.
    pub cert_maps: usize,
}

/// A password in a seed contains this; if it is written once in the text (as the value of a
/// password parameter), no diagnostic and no `Debug` of the built configuration may show it.
pub const PASSWORD_MARK: &str = "S3cr3t";

/// The harness of the `config_file` target: the MMP line syntax, a service built from the
/// entries (IMAP and POP3), `ServiceList`, and `certmap.conf`.
pub fn config_file(data: &[u8]) -> ConfigOutcome {
    let Ok(text) = std::str::from_utf8(data) else {
        return ConfigOutcome { entries: 0, built: false, cert_maps: 0 };
    };
    let file = Path::new("fuzz.cfg");
    let mut diags = Diagnostics::default();
    let mut entries = raw::parse(file, text, Some("inst"), &mut diags);
    let count = entries.len();
    // CertMapFile and SpoofMessageFile name files to read: the harness must not read whatever
    // path the fuzzer writes. certmap.conf's syntax is fuzzed directly below.
    entries.retain(|e| e.key != "certmapfile" && e.key != "spoofmessagefile");
    let mut built = false;
    let mut shown = String::new();
    // The ports AService.cfg would give the service, so SSLPorts can name them.
    let listeners: Vec<SocketAddr> =
        [143, 993, 110, 995].into_iter().map(|port| SocketAddr::from(([0, 0, 0, 0], port))).collect();
    for protocol in [Protocol::Imap, Protocol::Pop3] {
        let dir = Path::new("/nonexistent");
        if let Some(service) = build(protocol, listeners.clone(), file, dir, &entries, &mut diags) {
            built = true;
            shown.push_str(&format!("{service:?}"));
        }
    }
    // The whole text read as a ServiceList value and as certmap.conf: their diagnostics quote
    // it, so they are kept apart from those the password check reads.
    let mut other = Diagnostics::default();
    let _ = service_list::parse(text, file, 1, &mut other);
    let map = certmap::parse(file, text, &mut other);
    let _ = other.to_string();
    // Every map is found by its own issuer, and DN strings round-trip: what Display writes
    // parses back to the same structure.
    for mapping in &map.mappings {
        if let Some(issuer) = &mapping.issuer {
            assert!(map.for_issuer(issuer).is_some(), "certmap {} is not found by its own issuer", mapping.name);
            assert_eq!(dn::Dn::parse(&issuer.to_string()).ok().as_ref(), Some(issuer), "{issuer}");
        }
    }
    if let Ok(issuer) = dn::Dn::parse(text) {
        let _ = map.for_issuer(&issuer);
        assert_eq!(dn::Dn::parse(&issuer.to_string()).ok(), Some(issuer));
    }
    shown.push_str(&diags.to_string());
    let secret_once = text.matches(PASSWORD_MARK).count() == 1
        && entries
            .iter()
            .any(|e| matches!(e.key.as_str(), "bindpass" | "storeadminpass") && e.value.contains(PASSWORD_MARK));
    if secret_once {
        assert!(!shown.contains(PASSWORD_MARK), "a password shows in diagnostics or Debug: {shown}");
    }
    ConfigOutcome { entries: count, built, cert_maps: map.mappings.len() }
}
