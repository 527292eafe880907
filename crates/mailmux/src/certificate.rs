//! Client certificates to directory searches, per `certmap.conf`.
//!
//! The certificate's subject is read into `(attribute, value)` components with short
//! lower-case names (`cn`, `ou`, `o`, `c`, `e` for emailAddress, `uid`, `dc` …). DN strings are
//! written the LDAP way (RFC 4514): most specific component first, which is the reverse of the
//! order inside the certificate.

use mailmux_config::certmap::{Component, DnComps, Mapping};
use mailmux_proto::ldap_filter::escape_value;
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

use crate::directory::{Base, Scope};

/// What a certificate says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateNames {
    /// Subject components in LDAP order (most specific first).
    pub subject: Vec<(String, String)>,
    /// The subject DN, LDAP order.
    pub subject_dn: String,
    /// The issuer DN, LDAP order.
    pub issuer_dn: String,
}

/// Reads the names of a DER certificate.
pub fn read(der: &[u8]) -> Result<CertificateNames, String> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| format!("unreadable certificate: {e}"))?;
    let subject = components(cert.subject());
    let issuer = components(cert.issuer());
    Ok(CertificateNames { subject_dn: dn_string(&subject), issuer_dn: dn_string(&issuer), subject })
}

fn components(name: &X509Name<'_>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = name
        .iter_rdn()
        .flat_map(|rdn| rdn.iter())
        .filter_map(|atv| {
            let attr = short_name(&atv.attr_type().to_id_string());
            atv.as_str().ok().map(|v| (attr, v.to_owned()))
        })
        .collect();
    out.reverse();
    out
}

fn short_name(oid: &str) -> String {
    match oid {
        "2.5.4.3" => "cn",
        "2.5.4.6" => "c",
        "2.5.4.7" => "l",
        "2.5.4.8" => "st",
        "2.5.4.10" => "o",
        "2.5.4.11" => "ou",
        "2.5.4.5" => "serialnumber",
        "1.2.840.113549.1.9.1" => "e",
        "0.9.2342.19200300.100.1.1" => "uid",
        "0.9.2342.19200300.100.1.25" => "dc",
        other => other,
    }
    .to_owned()
}

/// certmap writes the e-mail component as `e`; people also write `email` or `mail`.
fn canonical(attr: &str) -> &str {
    match attr {
        "email" | "emailaddress" | "mail" => "e",
        other => other,
    }
}

fn dn_string(components: &[(String, String)]) -> String {
    components.iter().map(|(a, v)| format!("{a}={}", escape_dn_value(v))).collect::<Vec<_>>().join(",")
}

/// RFC 4514 escaping of a DN attribute value.
fn escape_dn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' | ' ' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    if out.ends_with(' ') {
        out.pop();
        out.push_str("\\ ");
    }
    out
}

/// The search a mapping asks for: where, how deep, with what filter.
pub fn query(mapping: &Mapping, names: &CertificateNames) -> (Base, Scope, String) {
    let pick = |wanted: &[Component]| -> Vec<(String, String)> {
        names
            .subject
            .iter()
            .filter_map(|(attr, value)| {
                wanted.iter().find(|c| canonical(&c.from) == canonical(attr)).map(|c| (c.to.clone(), value.clone()))
            })
            .collect()
    };
    let (base, scope) = match &mapping.dn_comps {
        DnComps::SubjectIsEntry => (Base::Dn(names.subject_dn.clone()), Scope::Base),
        DnComps::ConfiguredBase => (Base::Configured, Scope::Subtree),
        DnComps::Components(comps) => (Base::Dn(dn_string(&pick(comps))), Scope::Subtree),
    };
    let mut terms: Vec<String> =
        pick(&mapping.filter_comps).iter().map(|(attr, value)| format!("({attr}={})", escape_value(value))).collect();
    if let Some(attr) = &mapping.cmap_ldap_attr {
        terms.push(format!("({attr}={})", escape_value(&names.subject_dn)));
    }
    let filter = match terms.len() {
        0 => "(objectClass=*)".to_owned(),
        1 => terms.remove(0),
        _ => format!("(&{})", terms.concat()),
    };
    (base, scope, filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> CertificateNames {
        let subject = vec![
            ("cn".to_owned(), "Pilar Lorca".to_owned()),
            ("ou".to_owned(), "pilar".to_owned()),
            ("e".to_owned(), "pilar@siroe.com".to_owned()),
            ("o".to_owned(), "siroe.com".to_owned()),
        ];
        CertificateNames { subject_dn: dn_string(&subject), issuer_dn: "cn=ca".into(), subject }
    }

    fn mapping(dn: DnComps, filter: &[(&str, &str)], cmap: Option<&str>) -> Mapping {
        Mapping {
            name: "m".into(),
            issuer: None,
            dn_comps: dn,
            filter_comps: filter.iter().map(|(f, t)| Component { from: f.to_string(), to: t.to_string() }).collect(),
            verify_cert: false,
            cmap_ldap_attr: cmap.map(str::to_owned),
        }
    }

    #[test]
    fn the_mmp_example_ou_to_uid() {
        let (base, scope, filter) = query(&mapping(DnComps::ConfiguredBase, &[("ou", "uid")], None), &names());
        assert_eq!((base, scope, filter.as_str()), (Base::Configured, Scope::Subtree, "(uid=pilar)"));
    }

    #[test]
    fn email_to_mail_and_several_components() {
        let (_, _, filter) = query(&mapping(DnComps::ConfiguredBase, &[("e", "mail"), ("cn", "cn")], None), &names());
        assert_eq!(filter, "(&(cn=Pilar Lorca)(mail=pilar@siroe.com))");
    }

    #[test]
    fn dncomps_forms() {
        let (base, scope, filter) = query(&mapping(DnComps::SubjectIsEntry, &[], None), &names());
        assert_eq!(base, Base::Dn("cn=Pilar Lorca,ou=pilar,e=pilar@siroe.com,o=siroe.com".into()));
        assert_eq!((scope, filter.as_str()), (Scope::Base, "(objectClass=*)"));
        let comps =
            vec![Component { from: "ou".into(), to: "ou".into() }, Component { from: "o".into(), to: "o".into() }];
        let (base, _, _) = query(&mapping(DnComps::Components(comps), &[], None), &names());
        assert_eq!(base, Base::Dn("ou=pilar,o=siroe.com".into()));
    }

    #[test]
    fn cmap_ldap_attr_and_escaping() {
        let mut n = names();
        n.subject[1].1 = "pi*lar)".into();
        n.subject_dn = dn_string(&n.subject);
        let (_, _, filter) = query(&mapping(DnComps::ConfiguredBase, &[("ou", "uid")], Some("certsubjectdn")), &n);
        assert_eq!(
            filter,
            "(&(uid=pi\\2alar\\29)(certsubjectdn=cn=Pilar Lorca,ou=pi\\2alar\\29,e=pilar@siroe.com,o=siroe.com))"
        );
    }

    #[test]
    fn dn_values_are_escaped() {
        assert_eq!(escape_dn_value("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_dn_value(" x "), "\\ x\\ ");
        assert!(read(b"not a certificate").is_err());
    }
}
