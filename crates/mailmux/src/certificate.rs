//! Client certificates to directory searches, per `certmap.conf`, failing closed.
//!
//! The subject and the issuer are read as whole distinguished names ([`Dn`], RFC 4514): a
//! sequence of RDNs, most specific first (the LDAP order, the reverse of the certificate's),
//! each RDN keeping all of its attribute values. Every value is decoded from the string type
//! the certificate uses (UTF8String, PrintableString, IA5String, TeletexString as Latin-1,
//! BMPString as UTF-16BE, UniversalString as UTF-32BE; see [`decode_string`]). DN strings
//! handed to the directory are written from that structure with RFC 4514 escaping, so a value
//! such as `a,uid=user2` stays one escaped value and cannot add a component.
//!
//! # What refuses a certificate login
//!
//! A certificate maps to a user only when the mapping is unambiguous. Each case below is a
//! [`Refusal`]; the login fails with `NO [AUTHENTICATIONFAILED]` / `-ERR [AUTH]` and the log
//! says which case it was. None of them drops a component, widens or narrows the search, or
//! rewrites the DN: the old flattening reader did, and mapped `UID=user1+OU=people,DC=…` to
//! `uid=user1,ou=people,DC=…`, or dropped a BMPString `CN` and so landed on another entry.
//!
//! * **A value that does not decode**, in the subject or the issuer: not a string type, bytes
//!   invalid for the type (bad UTF-8, odd-length BMPString, a non-ASCII PrintableString …), or a
//!   control character. A name that cannot be read whole cannot be compared or searched for.
//! * **A multi-valued RDN in the subject** (`uid=user1+ou=people`), whatever the mapping uses.
//!   Certmap has no way to say which of the values names the user, and directories and the MMP
//!   disagree on how such an RDN is ordered or flattened.
//! * **An empty subject**: it names nobody (and as a search base it would be the root DSE).
//! * **A `FilterComps` attribute the subject does not have**: leaving the term out would widen
//!   the filter, up to `(objectClass=*)`.
//! * **A `FilterComps` attribute the subject has more than once** (`OU=a, OU=b`): which value
//!   names the user is ambiguous.
//! * **A `DNComps` attribute the subject does not have**: the base would be a different,
//!   wider subtree. Repeats are not ambiguous here and are kept: the base is every subject RDN
//!   whose attribute is listed, in subject order, so `DNComps ou, dc` on
//!   `cn=x,ou=people,dc=example,dc=com` gives `ou=people,dc=example,dc=com`.
//! * **An empty value** used by `FilterComps` or `DNComps`.
//!
//! Issuers are matched structurally by [`CertMap::for_issuer`](mailmux_config::certmap::CertMap::for_issuer)
//! ([`Dn::matches`]: attribute types and values ignoring ASCII case, as the MMP's certmap
//! library did; insignificant spaces ignored; either RDN order). A multi-valued RDN in the
//! issuer is allowed and compared as a set: the CA is already trusted, and nothing is built
//! from its name.

use mailmux_config::certmap::{Component, DnComps, Mapping};
use mailmux_config::dn::{Ava, Dn, DnError, attr_from_oid, decode_string};
use mailmux_proto::ldap_filter::escape_value;
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

use crate::directory::{Base, Scope};

/// What a certificate says about its holder and its issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateNames {
    /// The subject, most specific RDN first.
    pub subject: Dn,
    /// The issuer, most specific RDN first.
    pub issuer: Dn,
}

/// Why a certificate does not map to a search (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not an X.509 certificate.
    #[error("unreadable certificate: {0}")]
    Unreadable(String),
    /// A value of the subject or issuer does not decode.
    #[error("{name} RDN {position} ({attr}) cannot be decoded: {reason}")]
    Undecodable {
        /// `subject` or `issuer`.
        name: &'static str,
        /// Which RDN, counted from 1 at the most specific.
        position: usize,
        /// Its attribute type.
        attr: String,
        /// What is wrong with the value.
        reason: DnError,
    },
    /// The subject has a multi-valued RDN.
    #[error("subject has a multi-valued RDN ({rdn}), which cannot be mapped unambiguously")]
    MultiValued {
        /// That RDN, RFC 4514.
        rdn: String,
    },
    /// The subject has no RDN.
    #[error("subject is empty")]
    EmptySubject,
    /// A `FilterComps` or `DNComps` attribute is missing from the subject.
    #[error("{property} needs '{attr}', which subject '{subject}' does not have")]
    Missing {
        /// `FilterComps` or `DNComps`.
        property: &'static str,
        /// The attribute.
        attr: String,
        /// The subject, RFC 4514.
        subject: String,
    },
    /// A `FilterComps` attribute is in the subject more than once.
    #[error("FilterComps uses '{attr}', which subject '{subject}' has {count} times (ambiguous)")]
    Ambiguous {
        /// The attribute.
        attr: String,
        /// How many times it is there.
        count: usize,
        /// The subject, RFC 4514.
        subject: String,
    },
    /// A `FilterComps` or `DNComps` attribute has an empty value.
    #[error("{property} uses '{attr}', which is empty in subject '{subject}'")]
    EmptyValue {
        /// `FilterComps` or `DNComps`.
        property: &'static str,
        /// The attribute.
        attr: String,
        /// The subject, RFC 4514.
        subject: String,
    },
}

/// Reads the subject and issuer of a DER certificate.
pub fn read(der: &[u8]) -> Result<CertificateNames, Refusal> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| Refusal::Unreadable(e.to_string()))?;
    Ok(CertificateNames { subject: dn_of(cert.subject(), "subject")?, issuer: dn_of(cert.issuer(), "issuer")? })
}

fn dn_of(name: &X509Name<'_>, which: &'static str) -> Result<Dn, Refusal> {
    let total = name.iter_rdn().count();
    let mut rdns = Vec::with_capacity(total);
    for (i, rdn) in name.iter_rdn().enumerate() {
        let mut avas = Vec::new();
        for atv in rdn.iter() {
            let attr = attr_from_oid(&atv.attr_type().to_id_string());
            let value = atv.attr_value();
            // Strings are universal, primitive types; a constructed or tagged value is not one.
            let decoded = if value.header.is_universal() && value.header.is_primitive() {
                decode_string(value.header.tag().0, value.data)
            } else {
                Err(DnError::NotAString(value.header.tag().0))
            };
            let value = decoded.map_err(|reason| Refusal::Undecodable {
                name: which,
                position: total - i,
                attr: attr.clone(),
                reason,
            })?;
            avas.push(Ava { attr, value });
        }
        rdns.push(avas);
    }
    rdns.reverse();
    Ok(Dn { rdns })
}

/// The search a mapping asks for: where, how deep, with what filter; or why there is none.
pub fn query(mapping: &Mapping, names: &CertificateNames) -> Result<(Base, Scope, String), Refusal> {
    let subject = &names.subject;
    if subject.is_empty() {
        return Err(Refusal::EmptySubject);
    }
    if let Some(rdn) = subject.rdns.iter().find(|rdn| rdn.len() != 1) {
        return Err(Refusal::MultiValued { rdn: Dn { rdns: vec![rdn.clone()] }.to_string() });
    }
    // From here every RDN is exactly one AVA.
    let avas: Vec<&Ava> = subject.rdns.iter().flatten().collect();
    let subject_dn = subject.to_string();
    let (base, scope) = match &mapping.dn_comps {
        DnComps::SubjectIsEntry => (Base::Dn(subject_dn.clone()), Scope::Base),
        DnComps::ConfiguredBase => (Base::Configured, Scope::Subtree),
        DnComps::Components(comps) => (Base::Dn(base_dn(comps, &avas, &subject_dn)?.to_string()), Scope::Subtree),
    };
    let mut terms = Vec::new();
    for c in &mapping.filter_comps {
        let mut found = avas.iter().filter(|a| a.attr == c.from);
        let value = match (found.next(), found.count()) {
            (Some(a), 0) => &a.value,
            (None, _) => return Err(missing("FilterComps", c, &subject_dn)),
            (Some(_), more) => {
                return Err(Refusal::Ambiguous { attr: c.from.clone(), count: more + 1, subject: subject_dn });
            }
        };
        if value.is_empty() {
            return Err(empty("FilterComps", c, &subject_dn));
        }
        terms.push(format!("({}={})", c.to, escape_value(value)));
    }
    if let Some(attr) = &mapping.cmap_ldap_attr {
        terms.push(format!("({attr}={})", escape_value(&subject_dn)));
    }
    let filter = match terms.len() {
        0 => "(objectClass=*)".to_owned(),
        1 => terms.concat(),
        _ => format!("(&{})", terms.concat()),
    };
    Ok((base, scope, filter))
}

/// `DNComps` with a list: every subject RDN whose attribute is listed, in subject order,
/// renamed as the list says.
fn base_dn(comps: &[Component], avas: &[&Ava], subject_dn: &str) -> Result<Dn, Refusal> {
    if let Some(c) = comps.iter().find(|c| !avas.iter().any(|a| a.attr == c.from)) {
        return Err(missing("DNComps", c, subject_dn));
    }
    let mut rdns = Vec::new();
    for a in avas {
        if let Some(c) = comps.iter().find(|c| c.from == a.attr) {
            if a.value.is_empty() {
                return Err(empty("DNComps", c, subject_dn));
            }
            rdns.push(vec![Ava { attr: c.to.clone(), value: a.value.clone() }]);
        }
    }
    Ok(Dn { rdns })
}

fn missing(property: &'static str, c: &Component, subject: &str) -> Refusal {
    Refusal::Missing { property, attr: c.from.clone(), subject: subject.to_owned() }
}

fn empty(property: &'static str, c: &Component, subject: &str) -> Refusal {
    Refusal::EmptyValue { property, attr: c.from.clone(), subject: subject.to_owned() }
}

#[cfg(test)]
#[path = "certificate_tests.rs"]
mod tests;
