//! `certmap.conf`: how a client certificate becomes a directory search (the MMP flavour of
//! the Netscape certificate-mapping file).
//!
//! ```text
//! # Used for any issuer not named below.
//! certmap default default
//! default:DNComps
//! default:FilterComps e=mail
//!
//! # Certificates issued by this CA (issuer DN as in the certificate):
//! certmap siroe o=siroe.com, c=US
//! siroe:DNComps
//! siroe:FilterComps ou=uid
//! siroe:VerifyCert on
//! ```
//!
//! * `DNComps` — absent: the certificate's subject DN is the user's entry DN. Present and empty:
//!   search the whole `LdapURL` base. Listing attributes: the search base is made of those
//!   subject components.
//! * `FilterComps` — the subject components that form the (AND-ed) filter. The MMP's extension
//!   `FROMATTR=TOATTR` renames: `ou=uid` turns the subject's `ou=pilar` into `(uid=pilar)`;
//!   `e=mail` the e-mail component into `(mail=…)`.
//! * `CmapLdapAttr` — search for entries whose attribute holds the subject DN instead.
//! * `VerifyCert on` — the presented certificate must also be one of the entry's
//!   `userCertificate` values.
//!
//! Certmap plug-ins (`library`, `InitFn`) are not supported, as in the MMP.

use std::path::Path;

use crate::Diagnostics;

/// One subject component used by `DNComps` or `FilterComps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// The subject attribute, lower-case short name (`cn`, `ou`, `o`, `e`, `uid` …).
    pub from: String,
    /// The directory attribute it becomes (the same unless renamed).
    pub to: String,
}

/// Where to search for a certificate's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnComps {
    /// `DNComps` absent: the subject DN is the entry's DN.
    SubjectIsEntry,
    /// `DNComps` empty: the `LdapURL` base.
    ConfiguredBase,
    /// The base DN is built from these subject components.
    Components(Vec<Component>),
}

/// One `certmap NAME ISSUER` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// The map's name.
    pub name: String,
    /// The issuer DN it applies to; `None` for `certmap default default`.
    pub issuer: Option<String>,
    /// `DNComps`.
    pub dn_comps: DnComps,
    /// `FilterComps` (empty: every entry under the base, `(objectClass=*)`).
    pub filter_comps: Vec<Component>,
    /// `VerifyCert`.
    pub verify_cert: bool,
    /// `CmapLdapAttr`.
    pub cmap_ldap_attr: Option<String>,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertMap {
    /// The mappings, in file order.
    pub mappings: Vec<Mapping>,
}

impl CertMap {
    /// The mapping for a certificate issuer (as an RFC 4514 string, in either order), or
    /// the default one.
    pub fn for_issuer(&self, issuer: &str) -> Option<&Mapping> {
        let wanted = normalize_dn(issuer);
        let mut reversed = wanted.clone();
        reversed.reverse();
        self.mappings
            .iter()
            .find(|m| {
                m.issuer.as_deref().is_some_and(|i| {
                    let i = normalize_dn(i);
                    i == wanted || i == reversed
                })
            })
            .or_else(|| self.mappings.iter().find(|m| m.issuer.is_none()))
    }
}

/// A DN as lower-case `attr=value` components, spaces around separators removed.
pub fn normalize_dn(dn: &str) -> Vec<String> {
    dn.split(',')
        .map(|rdn| {
            let (a, v) = rdn.split_once('=').unwrap_or((rdn, ""));
            format!("{}={}", a.trim().to_ascii_lowercase(), v.trim().to_lowercase())
        })
        .filter(|c| c != "=")
        .collect()
}

/// Parses `certmap.conf`; problems are reported with file and line.
pub fn parse(file: &Path, text: &str, diags: &mut Diagnostics) -> CertMap {
    let mut mappings: Vec<Mapping> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (head, rest) = trimmed.split_once(char::is_whitespace).unwrap_or((trimmed, ""));
        let rest = rest.trim();
        if head.eq_ignore_ascii_case("certmap") {
            let (name, issuer) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let issuer = issuer.trim();
            if name.is_empty() || issuer.is_empty() {
                diags.error(file, line, "certmap needs a name and an issuer DN (or 'default default')");
                continue;
            }
            if mappings.iter().any(|m| m.name.eq_ignore_ascii_case(name)) {
                diags.error(file, line, format!("certmap {name} is defined twice"));
                continue;
            }
            let is_default = name.eq_ignore_ascii_case("default") && issuer.eq_ignore_ascii_case("default");
            mappings.push(Mapping {
                name: name.to_owned(),
                issuer: (!is_default).then(|| issuer.to_owned()),
                dn_comps: DnComps::SubjectIsEntry,
                filter_comps: Vec::new(),
                verify_cert: false,
                cmap_ldap_attr: None,
            });
            continue;
        }
        let Some((map_name, property)) = head.split_once(':') else {
            diags.error(file, line, format!("'{head}' is neither 'certmap NAME ISSUER' nor 'NAME:Property value'"));
            continue;
        };
        let Some(mapping) = mappings.iter_mut().find(|m| m.name.eq_ignore_ascii_case(map_name)) else {
            diags.error(file, line, format!("property for certmap '{map_name}', which is not defined above"));
            continue;
        };
        match property.to_ascii_lowercase().as_str() {
            "dncomps" => {
                let comps = components(rest);
                mapping.dn_comps = if comps.is_empty() {
                    DnComps::ConfiguredBase
                } else {
                    DnComps::Components(comps)
                };
            }
            "filtercomps" => mapping.filter_comps = components(rest),
            "verifycert" => match crate::raw::parse_bool(rest) {
                Ok(b) => mapping.verify_cert = b,
                Err(e) => diags.error(file, line, format!("VerifyCert: {e}")),
            },
            "cmapldapattr" => mapping.cmap_ldap_attr = (!rest.is_empty()).then(|| rest.to_ascii_lowercase()),
            "library" | "initfn" => diags.error(file, line, "certmap plug-ins are not supported (nor were they by the MMP); use DNComps/FilterComps with FROMATTR=TOATTR"),
            _ => diags.warn(file, line, format!("unknown certmap property '{property}' ignored")),
        }
    }
    if !mappings.iter().any(|m| m.issuer.is_none()) && !mappings.is_empty() {
        diags.warn(file, 0, "no 'certmap default default' entry: certificates from other issuers map to nobody");
    }
    CertMap { mappings }
}

fn components(value: &str) -> Vec<Component> {
    value
        .split([',', ' '])
        .filter(|c| !c.is_empty())
        .map(|c| {
            let (from, to) = c.split_once('=').unwrap_or((c, c));
            Component { from: from.trim().to_ascii_lowercase(), to: to.trim().to_ascii_lowercase() }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# comment\ncertmap default default\ndefault:DNComps\ndefault:FilterComps e=mail\n\n\
                          certmap siroe o=siroe.com, c=US\nsiroe:FilterComps ou=uid, cn\nsiroe:VerifyCert on\nsiroe:Frob x\n";

    #[test]
    fn parses_the_mmp_forms() {
        let mut d = Diagnostics::default();
        let map = parse(Path::new("certmap.conf"), SAMPLE, &mut d);
        assert_eq!(map.mappings.len(), 2);
        let default = &map.mappings[0];
        assert_eq!(default.issuer, None);
        assert_eq!(default.dn_comps, DnComps::ConfiguredBase);
        assert_eq!(default.filter_comps, vec![Component { from: "e".into(), to: "mail".into() }]);
        let siroe = &map.mappings[1];
        assert_eq!(siroe.dn_comps, DnComps::SubjectIsEntry);
        assert_eq!(
            siroe.filter_comps,
            vec![Component { from: "ou".into(), to: "uid".into() }, Component { from: "cn".into(), to: "cn".into() }]
        );
        assert!(siroe.verify_cert);
        assert!(d.to_string().contains("certmap.conf:9: warning: unknown certmap property 'Frob'"), "{d}");
    }

    #[test]
    fn issuer_matching_ignores_case_spacing_and_order() {
        let mut d = Diagnostics::default();
        let map = parse(Path::new("c"), SAMPLE, &mut d);
        assert_eq!(map.for_issuer("C=US,O=Siroe.com").map(|m| m.name.as_str()), Some("siroe"));
        assert_eq!(map.for_issuer("o=siroe.com,c=us").map(|m| m.name.as_str()), Some("siroe"));
        assert_eq!(map.for_issuer("CN=Other CA").map(|m| m.name.as_str()), Some("default"));
    }

    #[test]
    fn errors_have_lines() {
        let mut d = Diagnostics::default();
        parse(Path::new("c"), "x:DNComps\ncertmap onlyname\ncertmap a b\na:library /x.so\n", &mut d);
        let text = d.to_string();
        assert!(text.contains("c:1: error: property for certmap 'x'"), "{text}");
        assert!(text.contains("c:2: error: certmap needs a name"), "{text}");
        assert!(text.contains("c:4: error: certmap plug-ins are not supported"), "{text}");
    }
}
