//! Tests of [`super`]: mappings over hand-written names, then real certificates (made with
//! rcgen, hostile subjects spliced in by the testkit) read and mapped.

use std::path::Path;

use mailmux_config::Diagnostics;
use mailmux_config::certmap::{self, CertMap};
use mailmux_testkit::pki::Ca;
use mailmux_testkit::subject::{RawAva, oid, tag};

use super::*;

fn names(subject: &str) -> CertificateNames {
    CertificateNames { subject: Dn::parse(subject).expect("test DN"), issuer: Dn::parse("cn=ca").expect("test DN") }
}

fn pilar() -> CertificateNames {
    names("cn=Pilar Lorca,ou=pilar,e=pilar@siroe.com,o=siroe.com")
}

/// The mapping of a one-map certmap.conf whose property lines are `props`.
fn mapping(props: &str) -> Mapping {
    let text = format!("certmap default default\n{}\n", props.replace("; ", "\ndefault:").replace("@", "default:"));
    let mut diags = Diagnostics::default();
    let map = certmap::parse(Path::new("certmap.conf"), &text, &mut diags);
    assert!(!diags.has_errors(), "{diags}");
    map.mappings.into_iter().next().expect("one mapping")
}

#[test]
fn the_mmp_example_ou_to_uid() {
    let (base, scope, filter) = query(&mapping("@DNComps; FilterComps ou=uid"), &pilar()).expect("maps");
    assert_eq!((base, scope, filter.as_str()), (Base::Configured, Scope::Subtree, "(uid=pilar)"));
}

#[test]
fn email_to_mail_and_several_components() {
    let (_, _, filter) = query(&mapping("@DNComps; FilterComps e=mail, cn"), &pilar()).expect("maps");
    assert_eq!(filter, "(&(mail=pilar@siroe.com)(cn=Pilar Lorca))");
}

#[test]
fn dncomps_forms() {
    let (base, scope, filter) = query(&mapping("@VerifyCert off"), &pilar()).expect("maps");
    assert_eq!(base, Base::Dn("cn=Pilar Lorca,ou=pilar,e=pilar@siroe.com,o=siroe.com".into()));
    assert_eq!((scope, filter.as_str()), (Scope::Base, "(objectClass=*)"));
    let (base, _, _) = query(&mapping("@DNComps ou, o"), &pilar()).expect("maps");
    assert_eq!(base, Base::Dn("ou=pilar,o=siroe.com".into()));
    // Repeated attributes make a path, kept in subject order.
    let n = names("cn=x,uid=user1,ou=people,dc=example,dc=com");
    let (base, _, _) = query(&mapping("@DNComps ou dc"), &n).expect("maps");
    assert_eq!(base, Base::Dn("ou=people,dc=example,dc=com".into()));
}

#[test]
fn cmap_ldap_attr_and_escaping() {
    let n = names("cn=Pilar Lorca,ou=pi*lar),e=pilar@siroe.com,o=siroe.com");
    let (_, _, filter) = query(&mapping("@DNComps; FilterComps ou=uid; CmapLdapAttr certSubjectDN"), &n).expect("maps");
    assert_eq!(
        filter,
        "(&(uid=pi\\2alar\\29)(certsubjectdn=cn=Pilar Lorca,ou=pi\\2alar\\29,e=pilar@siroe.com,o=siroe.com))"
    );
}

#[test]
fn missing_and_repeated_components_refuse() {
    let no_ou = names("cn=Pilar Lorca,e=pilar@siroe.com,o=siroe.com");
    let refusal = query(&mapping("@DNComps; FilterComps ou=uid"), &no_ou).expect_err("refused");
    assert_eq!(
        refusal.to_string(),
        "FilterComps needs 'ou', which subject 'cn=Pilar Lorca,e=pilar@siroe.com,o=siroe.com' does not have"
    );
    let refusal = query(&mapping("@DNComps ou, o"), &no_ou).expect_err("refused");
    assert!(matches!(&refusal, Refusal::Missing { property: "DNComps", attr, .. } if attr == "ou"), "{refusal}");
    let two_ous = names("cn=x,ou=user1,ou=user8,o=siroe.com");
    let refusal = query(&mapping("@DNComps; FilterComps ou=uid"), &two_ous).expect_err("refused");
    assert!(matches!(refusal, Refusal::Ambiguous { count: 2, .. }), "{refusal}");
    let empty_ou = names("cn=x,ou=,o=siroe.com");
    let refusal = query(&mapping("@DNComps; FilterComps ou=uid"), &empty_ou).expect_err("refused");
    assert!(matches!(refusal, Refusal::EmptyValue { property: "FilterComps", .. }), "{refusal}");
    let refusal = query(&mapping("@DNComps"), &names("")).expect_err("refused");
    assert_eq!(refusal, Refusal::EmptySubject);
}

/// A CA in a temporary directory (the directory lives as long as the CA is used).
fn ca(name: &str) -> (tempfile::TempDir, Ca) {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = Ca::new(dir.path(), name);
    (dir, ca)
}

/// Reads a certificate from the test CA with exactly this subject (certificate order).
fn read_subject(rdns: &[Vec<RawAva>]) -> Result<CertificateNames, Refusal> {
    let (_dir, ca) = ca("unit-ca");
    read(&ca.client_with_subject("leaf", rdns).der())
}

/// `DC=com, DC=example, OU=people` then `last`: user1's place in the lab directory.
fn under_people(last: Vec<Vec<RawAva>>) -> Vec<Vec<RawAva>> {
    let mut rdns = vec![
        vec![RawAva::ia5(oid::DC, "com")],
        vec![RawAva::ia5(oid::DC, "example")],
        vec![RawAva::utf8(oid::OU, "people")],
    ];
    rdns.extend(last);
    rdns
}

#[test]
fn a_multi_valued_rdn_is_read_whole_and_refused() {
    let rdns = vec![
        vec![RawAva::ia5(oid::DC, "com")],
        vec![RawAva::ia5(oid::DC, "example")],
        vec![RawAva::utf8(oid::UID, "user1"), RawAva::utf8(oid::OU, "people")],
    ];
    let names = read_subject(&rdns).expect("readable");
    assert_eq!(names.subject.rdns.len(), 3, "{}", names.subject);
    let rdn = &names.subject.rdns[0];
    assert!(rdn.contains(&Ava { attr: "uid".into(), value: "user1".into() }), "{}", names.subject);
    assert!(rdn.contains(&Ava { attr: "ou".into(), value: "people".into() }), "{}", names.subject);
    for props in ["@VerifyCert off", "@DNComps; FilterComps uid", "@DNComps; FilterComps cn"] {
        let refusal = query(&mapping(props), &names).expect_err("refused");
        assert!(matches!(refusal, Refusal::MultiValued { .. }), "{props}: {refusal}");
        assert!(refusal.to_string().contains("multi-valued RDN (ou=people+uid=user1)"), "{refusal}");
    }
}

#[test]
fn a_bmpstring_cn_is_decoded_not_dropped() {
    let names = read_subject(&under_people(vec![
        vec![RawAva::utf8(oid::UID, "user1")],
        vec![RawAva::bmp(oid::CN, "Jörg 中村")],
    ]))
    .expect("readable");
    assert_eq!(names.subject.to_string(), "cn=Jörg 中村,uid=user1,ou=people,dc=example,dc=com");
    // The entry searched for is the whole subject, not user1's entry.
    let (base, scope, _) = query(&mapping("@VerifyCert off"), &names).expect("maps");
    assert_eq!((base, scope), (Base::Dn("cn=Jörg 中村,uid=user1,ou=people,dc=example,dc=com".into()), Scope::Base));
    let (_, _, filter) = query(&mapping("@DNComps; FilterComps cn"), &names).expect("maps");
    assert_eq!(filter, "(cn=Jörg 中村)");
}

#[test]
fn every_string_type_decodes() {
    let names = read_subject(&[
        vec![RawAva::raw(oid::C, tag::PRINTABLE, b"ES")],
        vec![RawAva::raw(oid::O, tag::TELETEX, &[b'S', 0xe9, b'v'])],
        vec![RawAva::raw(oid::OU, tag::UNIVERSAL, &[0, 0, 0, b'u', 0, 1, 0xf6, 0])],
        vec![RawAva::ia5(oid::E, "p@siroe.com")],
        vec![RawAva::bmp(oid::CN, "Ωmega")],
    ])
    .expect("readable");
    assert_eq!(names.subject.to_string(), "cn=Ωmega,e=p@siroe.com,ou=u😀,o=Sév,c=ES");
    // rcgen's default CN keeps its first place when the CA sets it, so the CN is least specific.
    assert_eq!(names.issuer.to_string(), "o=mailmux tests,cn=unit-ca");
}

#[test]
fn an_undecodable_value_is_refused_not_skipped() {
    let cases: [(RawAva, &str); 5] = [
        (RawAva::raw(oid::CN, tag::UTF8, b"a\xffb"), "invalid UTF8String"),
        (RawAva::raw(oid::CN, tag::BMP, &[0, b'a', 0]), "BMPString (odd length)"),
        (RawAva::raw(oid::CN, tag::PRINTABLE, "é".as_bytes()), "ASCII string"),
        (RawAva::raw(oid::CN, 4, b"octets"), "not an X.509 string type (ASN.1 tag 4)"),
        (RawAva::utf8(oid::CN, "a\0b"), "control character U+0000"),
    ];
    for (cn, why) in cases {
        let refusal =
            read_subject(&under_people(vec![vec![RawAva::utf8(oid::UID, "user1")], vec![cn]])).expect_err("refused");
        assert!(matches!(&refusal, Refusal::Undecodable { name: "subject", position: 1, .. }), "{refusal}");
        assert!(refusal.to_string().contains(why), "{refusal}");
    }
}

#[test]
fn an_escaped_comma_in_a_cn_does_not_inject_a_component() {
    let names = read_subject(&under_people(vec![vec![RawAva::utf8(oid::CN, "a,uid=user2")]])).expect("readable");
    let dn = names.subject.to_string();
    assert_eq!(dn, "cn=a\\,uid\\=user2,ou=people,dc=example,dc=com");
    assert_eq!(Dn::parse(&dn).expect("re-parses"), names.subject, "one CN value, four RDNs");
    let refusal = query(&mapping("@DNComps; FilterComps uid"), &names).expect_err("no uid in this subject");
    assert!(matches!(refusal, Refusal::Missing { .. }), "{refusal}");
    let (base, _, filter) = query(&mapping("@DNComps cn, ou, dc; FilterComps cn"), &names).expect("maps");
    assert_eq!(base, Base::Dn(dn));
    assert_eq!(filter, "(cn=a,uid=user2)");
}

#[test]
fn a_missing_filter_comps_component_is_refused() {
    let names = read_subject(&[vec![RawAva::utf8(oid::O, "siroe.com")], vec![RawAva::utf8(oid::CN, "Pilar")]])
        .expect("readable");
    let refusal = query(&mapping("@DNComps; FilterComps ou=uid"), &names).expect_err("refused");
    assert_eq!(refusal.to_string(), "FilterComps needs 'ou', which subject 'cn=Pilar,o=siroe.com' does not have");
}

#[test]
fn an_issuer_with_an_escaped_comma_is_matched_as_one_value() {
    let (_dir, ca) = ca("Siroe, Inc. CA");
    let names = read(&ca.client("leaf", &[("CN", "Pilar"), ("OU", "pilar")], false).der()).expect("readable");
    assert_eq!(names.issuer.to_string(), "o=mailmux tests,cn=Siroe\\, Inc. CA");
    let text = "certmap default default\ndefault:DNComps\n\
                certmap split cn=Siroe, cn=Inc. CA, o=mailmux tests\nsplit:DNComps\n\
                certmap siroe CN=Siroe\\, Inc. CA, O=mailmux tests\nsiroe:DNComps\nsiroe:FilterComps ou=uid\n";
    let mut diags = Diagnostics::default();
    let map: CertMap = certmap::parse(Path::new("certmap.conf"), text, &mut diags);
    assert!(diags.is_empty(), "{diags}");
    let mapping = map.for_issuer(&names.issuer).expect("a mapping");
    assert_eq!(mapping.name, "siroe");
    assert_eq!(query(mapping, &names).expect("maps").2, "(uid=pilar)");
}

#[test]
fn not_a_certificate() {
    assert!(matches!(read(b"not a certificate"), Err(Refusal::Unreadable(_))));
}
