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
//! The issuer DN is parsed here ([`Dn::parse`]: RFC 4514, `\,` and `\XX` escapes honoured), so
//! a line that is not a DN is a configuration error with its line, not a map that silently
//! never applies. It is compared with a certificate's issuer as the MMP did ([`Dn::matches`]:
//! attribute types and values ignoring case, spaces around separators ignored, either order).
//! `DNComps`/`FilterComps` attributes are stored in [`dn`]'s canonical form, the
//! one certificate subjects are read into; a name mailmux never reads from a certificate is
//! warned about, since every certificate would then be refused.
//!
//! Certmap plug-ins (`library`, `InitFn`) are not supported, as in the MMP.

use std::path::Path;

use crate::Diagnostics;
use crate::dn::{self, Dn};

/// One subject component used by `DNComps` or `FilterComps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// The subject attribute, canonical (`cn`, `ou`, `o`, `e`, `uid` … or a dotted OID; see
    /// [`dn::canonical_attr`]).
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
    pub issuer: Option<Dn>,
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
    /// The mapping for a certificate issuer, or the default one.
    pub fn for_issuer(&self, issuer: &Dn) -> Option<&Mapping> {
        self.mappings
            .iter()
            .find(|m| m.issuer.as_ref().is_some_and(|i| i.matches(issuer)))
            .or_else(|| self.mappings.iter().find(|m| m.issuer.is_none()))
    }

    /// The mapping with this name (names are matched ignoring case, as the file's own
    /// `NAME:Property` lines are); a vdmap entry's `CertMap` names one.
    pub fn named(&self, name: &str) -> Option<&Mapping> {
        self.mappings.iter().find(|m| m.name.eq_ignore_ascii_case(name))
    }
}

/// Parses `certmap.conf`; problems are reported with file and line.
pub fn parse(file: &Path, text: &str, diags: &mut Diagnostics) -> CertMap {
    let mut mappings: Vec<Mapping> = Vec::new();
    // Maps whose header line was in error: their property lines are not errors of their own.
    let mut broken: Vec<String> = Vec::new();
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
            let issuer = if is_default {
                None
            } else {
                match Dn::parse(issuer) {
                    Ok(dn) => Some(dn),
                    Err(e) => {
                        let hint = if issuer.eq_ignore_ascii_case("default") {
                            " (only 'certmap default default' names the default map)"
                        } else {
                            ""
                        };
                        diags.error(file, line, format!("certmap {name}: issuer '{issuer}' is not a DN: {e}{hint}"));
                        broken.push(name.to_owned());
                        continue;
                    }
                }
            };
            mappings.push(Mapping {
                name: name.to_owned(),
                issuer,
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
            if broken.iter().any(|b| b.eq_ignore_ascii_case(map_name)) {
                continue;
            }
            diags.error(file, line, format!("property for certmap '{map_name}', which is not defined above"));
            continue;
        };
        match property.to_ascii_lowercase().as_str() {
            "dncomps" => {
                let comps = components(rest, file, line, diags);
                mapping.dn_comps = if comps.is_empty() {
                    DnComps::ConfiguredBase
                } else {
                    DnComps::Components(comps)
                };
            }
            "filtercomps" => mapping.filter_comps = components(rest, file, line, diags),
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

/// `ATTR` or `FROMATTR=TOATTR` items, separated by commas or spaces.
fn components(value: &str, file: &Path, line: usize, diags: &mut Diagnostics) -> Vec<Component> {
    let mut out = Vec::new();
    for item in value.split([',', ' ']).filter(|c| !c.is_empty()) {
        let (from, to) = item.split_once('=').unwrap_or((item, item));
        // `mail` is the directory's name for what certificates call emailAddress (`e`).
        let canonical = if from.eq_ignore_ascii_case("mail") { Some("e".to_owned()) } else { dn::canonical_attr(from) };
        let Some(from) = canonical else {
            diags.error(file, line, format!("'{from}' is not an attribute name"));
            continue;
        };
        if to.trim().is_empty() {
            diags.error(file, line, format!("'{item}' names no directory attribute after '='"));
            continue;
        }
        if !dn::is_known(&from) && !from.starts_with(|c: char| c.is_ascii_digit()) {
            diags.warn(
                file,
                line,
                format!(
                    "'{from}' is not a subject attribute mailmux reads by name ({}, or a dotted OID): every certificate will be refused",
                    dn::KNOWN_ATTRIBUTES.iter().map(|(_, n, _)| *n).collect::<Vec<_>>().join(" ")
                ),
            );
        }
        out.push(Component { from, to: to.trim().to_ascii_lowercase() });
    }
    out
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
        let name = |issuer: &str| {
            map.for_issuer(&Dn::parse(issuer).expect("test DN")).map(|m| m.name.clone()).unwrap_or_default()
        };
        assert_eq!(name("C=US,O=Siroe.com"), "siroe");
        assert_eq!(name("o=siroe.com,c=us"), "siroe");
        assert_eq!(name("CN=Other CA"), "default");
        assert_eq!(name("o=siroe.com+c=US"), "default", "one multi-valued RDN is not two RDNs");
    }

    #[test]
    fn issuer_with_an_escaped_comma_is_one_value() {
        let text = "certmap default default\ndefault:DNComps\n\
                    certmap inc cn=Siroe\\, Inc. CA, o=siroe.com\ninc:FilterComps uid\n";
        let mut d = Diagnostics::default();
        let map = parse(Path::new("c"), text, &mut d);
        assert!(d.is_empty(), "{d}");
        let name = |issuer: &str| {
            map.for_issuer(&Dn::parse(issuer).expect("test DN")).map(|m| m.name.clone()).unwrap_or_default()
        };
        assert_eq!(name("CN=Siroe\\, Inc. CA,O=siroe.com"), "inc");
        assert_eq!(name("CN=Siroe\\2C Inc. CA,O=siroe.com"), "inc");
        // Split at the comma, the old way, this was three components and matched.
        assert_eq!(name("CN=Siroe,CN=Inc. CA,O=siroe.com"), "default");
    }

    #[test]
    fn an_issuer_that_is_not_a_dn_is_an_error_with_its_line() {
        let text = "certmap default default\ncertmap bad cn=a\\\nbad:FilterComps uid\ncertmap other default\n\
                    certmap odd o=x\nodd:FilterComps u_id, mail, title, cn=\n";
        let mut d = Diagnostics::default();
        let map = parse(Path::new("certmap.conf"), text, &mut d);
        let text = d.to_string();
        assert!(text.contains("certmap.conf:2: error: certmap bad: issuer 'cn=a\\' is not a DN"), "{text}");
        assert!(!text.contains("certmap.conf:3"), "no second error for the broken map's properties: {text}");
        assert!(text.contains("certmap.conf:4: error: certmap other: issuer 'default' is not a DN"), "{text}");
        assert!(text.contains("only 'certmap default default'"), "{text}");
        assert!(text.contains("certmap.conf:6: error: 'u_id' is not an attribute name"), "{text}");
        assert!(text.contains("certmap.conf:6: warning: 'title' is not a subject attribute"), "{text}");
        assert!(text.contains("certmap.conf:6: error: 'cn=' names no directory attribute"), "{text}");
        let odd = map.mappings.iter().find(|m| m.name == "odd").expect("odd map");
        assert_eq!(odd.filter_comps[0], Component { from: "e".into(), to: "mail".into() });
    }

    #[test]
    fn errors_have_lines() {
        let mut d = Diagnostics::default();
        parse(Path::new("c"), "x:DNComps\ncertmap onlyname\ncertmap a cn=b\na:library /x.so\n", &mut d);
        let text = d.to_string();
        assert!(text.contains("c:1: error: property for certmap 'x'"), "{text}");
        assert!(text.contains("c:2: error: certmap needs a name"), "{text}");
        assert!(text.contains("c:4: error: certmap plug-ins are not supported"), "{text}");
    }
}
