//! Certificate logins: certmap.conf maps a client certificate to a user, mailmux logs into
//! the store as StoreAdmin on the user's behalf; bad certificates are refused, and so are
//! subjects that cannot be mapped unambiguously (multi-valued RDNs, undecodable values,
//! components the mapping needs but the subject lacks or repeats).

mod common;

use std::net::SocketAddr;

use common::{Mailmux, captured_logs, imap_expect_store, lab};
use mailmux_testkit::dovecot::{STORE_ADMIN, STORE_ADMIN_PASSWORD, marker_subject};
use mailmux_testkit::lab::{DirectoryKind, Lab, STORE_NAMES, TlsConfig};
use mailmux_testkit::pki::CertFiles;
use mailmux_testkit::subject::{RawAva, oid, tag};
use mailmux_testkit::transcript::{Transcript, tls_connector};
use rustls::pki_types::ServerName;
use tokio::io::AsyncReadExt;

const USERS: usize = 8;

/// Both MMP certmap forms: the default map finds users by e-mail (`e=mail`), a map for the
/// lab CA finds them by `ou=uid`. Which one applies depends on the issuer, so two
/// configurations are written.
fn certmap(lab: &Lab, form: &str) -> String {
    let path = lab.dir.path().join(format!("certmap-{form}.conf"));
    let text = match form {
        "email" => "# MMP QA form\ncertmap default default\ndefault:DNComps\ndefault:FilterComps e=mail\n".to_owned(),
        "verify" => {
            "certmap default default\ndefault:DNComps\ndefault:FilterComps e=mail\ndefault:VerifyCert on\n".to_owned()
        }
        // No DNComps: the subject DN is the entry's DN.
        "subject" => "certmap default default\ndefault:FilterComps\n".to_owned(),
        "dncomps" => "certmap default default\ndefault:DNComps ou, dc\ndefault:FilterComps uid\n".to_owned(),
        _ => "certmap default default\ndefault:DNComps\ndefault:FilterComps uid\n\n\
              # The lab CA, issuer written as in the certificate, most specific first.\n\
              certmap lab cn=mailmux-test-ca, o=mailmux tests\nlab:DNComps\nlab:FilterComps ou=uid\n"
            .to_owned(),
    };
    std::fs::write(&path, text).expect("write certmap.conf");
    format!(
        "default:CertMapFile {}\ndefault:StoreAdmin {STORE_ADMIN}\ndefault:StoreAdminPass {STORE_ADMIN_PASSWORD}\n",
        path.display()
    )
}

async fn start(lab: &Lab, form: &str, extra: &str) -> (Mailmux, TlsConfig) {
    let lines = certmap(lab, form) + extra;
    let cfg = lab.write_tls_config(DirectoryKind::Ldap, &lines, &lines);
    (Mailmux::start(&cfg.dir).await, cfg)
}

fn addr(port: u16) -> SocketAddr {
    ([127, 0, 0, 1], port).into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_user7_lands_on_user7s_mailbox_without_a_password() {
    let lab = lab(USERS);
    let (mm, cfg) = start(lab, "email", "").await;
    let cert = lab.ca.client("user7-email", &[("CN", "User Seven"), ("E", "user7@example.com")], false);
    let tls = tls_connector(&lab.ca.cert, Some(&cert));
    let mut c = Transcript::connect_tls(addr(cfg.imaps), &tls).await;
    let greeting = c.expect("* OK [CAPABILITY").await;
    assert!(greeting.contains("AUTH=EXTERNAL"), "{greeting}");
    c.send("a AUTHENTICATE EXTERNAL =").await;
    c.expect("a OK").await;
    imap_expect_store(&mut c, 0).await; // user7 lives on store A

    // STARTTLS then EXTERNAL with the continuation form; POP3 too.
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    c.send("a STARTTLS").await;
    c.expect("a OK").await;
    let mut c = c.start_tls(ServerName::from(std::net::IpAddr::from([127, 0, 0, 1])), &tls).await.expect("handshake");
    c.send("b AUTHENTICATE EXTERNAL").await;
    c.expect("+").await;
    c.send("=").await;
    c.expect("b OK").await;
    imap_expect_store(&mut c, 0).await;

    let mut p = Transcript::connect_tls(addr(cfg.pop3s), &tls).await;
    p.expect("+OK").await;
    p.send("AUTH EXTERNAL =").await;
    p.expect("+OK").await;
    p.send("RETR 1").await;
    assert!(p.until(".").await.contains(&format!("Subject: {}", marker_subject(STORE_NAMES[0]))), "{}", p.transcript());
    mm.stop().await;
    assert!(captured_logs().contains("logged in user=user7"), "the summary names the mapped user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ou_to_uid_form_and_asking_to_be_someone_else() {
    let lab = lab(USERS);
    let (mm, cfg) = start(lab, "ou", "").await;
    let cert = lab.ca.client("pilar-user8", &[("O", "siroe.com"), ("OU", "user8"), ("CN", "Pilar Lorca")], false);
    let tls = tls_connector(&lab.ca.cert, Some(&cert));
    let mut c = Transcript::connect_tls(addr(cfg.imaps), &tls).await;
    c.expect("* OK").await;
    // Asking to act as another user is refused; as oneself is fine.
    c.send("a AUTHENTICATE EXTERNAL dXNlcjE=").await; // "user1"
    c.expect("a NO [AUTHENTICATIONFAILED]").await;
    c.send("b AUTHENTICATE EXTERNAL dXNlcjg=").await; // "user8"
    c.expect("b OK").await;
    imap_expect_store(&mut c, 1).await; // user8 lives on store B
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_are_requested_not_required_and_unmapped_ones_fail_cleanly() {
    let lab = lab(USERS);
    let (mm, cfg) = start(lab, "email", "").await;
    // No certificate: no EXTERNAL, passwords work.
    let plain = tls_connector(&lab.ca.cert, None);
    let mut c = Transcript::connect_tls(addr(cfg.imaps), &plain).await;
    let greeting = c.expect("* OK").await;
    assert!(!greeting.contains("AUTH=EXTERNAL"), "{greeting}");
    c.send("a AUTHENTICATE EXTERNAL =").await;
    c.expect("a NO").await;
    let user = lab.user_on(1);
    c.send(&format!("b LOGIN {} {}", user.uid, user.password)).await;
    c.expect("b OK").await;
    imap_expect_store(&mut c, 1).await;

    // A valid certificate nobody in the directory has.
    let stranger = lab.ca.client("stranger", &[("CN", "Stranger"), ("E", "nobody@example.com")], false);
    let mut c = Transcript::connect_tls(addr(cfg.imaps), &tls_connector(&lab.ca.cert, Some(&stranger))).await;
    c.expect("* OK").await;
    c.send("a AUTHENTICATE EXTERNAL =").await;
    c.expect("a NO [AUTHENTICATIONFAILED]").await;
    mm.stop().await;
    assert!(captured_logs().contains("no entry for"), "the log says why");
}

/// Connects with `cert`; true when the server refused it (handshake or first read fails).
async fn refused(port: u16, ca: &std::path::Path, cert: &CertFiles) -> bool {
    let tls = tls_connector(ca, Some(cert));
    let Ok(tcp) = tokio::net::TcpStream::connect(addr(port)).await else { return true };
    let Ok(mut stream) = tls.connect(ServerName::from(std::net::IpAddr::from([127, 0, 0, 1])), tcp).await else {
        return true;
    };
    let mut buf = [0u8; 64];
    match tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => false,
        Err(_) => panic!("no answer"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_revoked_and_unknown_ca_certificates_are_refused() {
    let lab = lab(USERS);
    let good = lab.ca.client("good", &[("CN", "Good"), ("E", "user3@example.com")], false);
    let expired = lab.ca.client("expired", &[("CN", "Old"), ("E", "user3@example.com")], true);
    let revoked = lab.ca.client("revoked", &[("CN", "Revoked"), ("E", "user3@example.com")], false);
    let foreign = lab.other_ca.client("foreign", &[("CN", "Foreign"), ("E", "user3@example.com")], false);
    let crl = lab.ca.crl("crl", &[&revoked]);
    let (mm, cfg) = start(lab, "email", &format!("default:SSLCRLFile {}\n", crl.display())).await;
    // Every client trusts the server (lab CA); the server trusts client certificates from the lab CA only.
    assert!(!refused(cfg.imaps, &lab.ca.cert, &good).await, "a good certificate is accepted");
    assert!(refused(cfg.imaps, &lab.ca.cert, &expired).await, "expired");
    assert!(refused(cfg.imaps, &lab.ca.cert, &revoked).await, "revoked");
    assert!(refused(cfg.imaps, &lab.ca.cert, &foreign).await, "unknown CA");
    // The listener is unharmed.
    let mut c = Transcript::connect_tls(addr(cfg.imaps), &tls_connector(&lab.ca.cert, Some(&good))).await;
    c.expect("* OK").await;
    c.send("a AUTHENTICATE EXTERNAL =").await;
    c.expect("a OK").await;
    mm.stop().await;
}

/// Stores `cert` as `userCertificate;binary` of `uid`'s entry in the lab's slapd.
fn publish_certificate(lab: &Lab, uid: &str, cert: &CertFiles) {
    use base64::Engine;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let der = CertificateDer::from_pem_file(&cert.cert).expect("read certificate");
    let ldif = format!(
        "dn: uid={uid},ou=people,{}\nchangetype: modify\nadd: userCertificate;binary\nuserCertificate;binary:: {}\n",
        mailmux_testkit::slapd::SUFFIX,
        base64::engine::general_purpose::STANDARD.encode(der.as_ref())
    );
    let file = lab.dir.path().join(format!("publish-{uid}.ldif"));
    std::fs::write(&file, ldif).expect("write LDIF");
    let slapd = lab.slapd.as_ref().expect("lab slapd");
    let out = std::process::Command::new("ldapmodify")
        .args([
            "-x",
            "-H",
            &slapd.url,
            "-D",
            mailmux_testkit::slapd::ADMIN_DN,
            "-w",
            mailmux_testkit::slapd::ADMIN_PASSWORD,
            "-f",
        ])
        .arg(&file)
        .output()
        .expect("ldapmodify is installed (apt-get install ldap-utils)");
    assert!(out.status.success(), "ldapmodify: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_cert_accepts_only_the_certificate_stored_in_the_entry() {
    let lab = lab(USERS);
    let subject = [("CN", "User Five"), ("E", "user5@example.com")];
    let stored = lab.ca.client("user5-stored", &subject, false);
    let other = lab.ca.client("user5-other", &subject, false);
    publish_certificate(lab, "user5", &stored);
    let (mm, cfg) = start(lab, "verify", "").await;

    let mut c = Transcript::connect_tls(addr(cfg.imaps), &tls_connector(&lab.ca.cert, Some(&stored))).await;
    c.expect("* OK").await;
    c.send("a AUTHENTICATE EXTERNAL =").await;
    c.expect("a OK").await;
    imap_expect_store(&mut c, 0).await; // user5 lives on store A

    // Same subject, same CA, but not the certificate the directory holds.
    let mut c = Transcript::connect_tls(addr(cfg.imaps), &tls_connector(&lab.ca.cert, Some(&other))).await;
    c.expect("* OK").await;
    c.send("a AUTHENTICATE EXTERNAL =").await;
    c.expect("a NO [AUTHENTICATIONFAILED]").await;
    mm.stop().await;
    assert!(captured_logs().contains("VerifyCert: uid=user5"), "the log says why");
}

/// Connects to implicit-TLS IMAP with `cert` and asks for `AUTHENTICATE EXTERNAL`; the answer
/// must start with `answer`. The greeting is read first and must offer EXTERNAL, which mailmux
/// does only after the handshake accepted the client certificate: a refusal seen here comes
/// from the mapping, not from TLS.
async fn external(port: u16, cert: &CertFiles, answer: &str) -> Transcript {
    let lab = lab(USERS);
    let mut c = Transcript::connect_tls(addr(port), &tls_connector(&lab.ca.cert, Some(cert))).await;
    let greeting = c.expect("* OK [CAPABILITY").await;
    assert!(greeting.contains("AUTH=EXTERNAL"), "handshake with the client certificate: {greeting}");
    c.send("a AUTHENTICATE EXTERNAL =").await;
    c.expect(answer).await;
    c
}

/// Asserts the log holds `why` (the refusal is logged before the client is answered).
fn logged(why: &str) {
    let logs = captured_logs();
    assert!(logs.contains(why), "the log should say '{why}':\n{logs}");
}

/// `DC=com, DC=example, OU=people` followed by `rest`: where the lab's users live.
fn people(rest: Vec<Vec<RawAva>>) -> Vec<Vec<RawAva>> {
    let mut rdns = vec![
        vec![RawAva::ia5(oid::DC, "com")],
        vec![RawAva::ia5(oid::DC, "example")],
        vec![RawAva::utf8(oid::OU, "people")],
    ];
    rdns.extend(rest);
    rdns
}

/// The subject DN is the entry's DN (`DNComps` absent). Before subjects were read whole, the
/// first two certificates below logged in as user1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subjects_that_do_not_name_one_entry_exactly_are_refused() {
    let lab = lab(USERS);
    let (mm, cfg) = start(lab, "subject", "").await;
    let uid = |v: &str| vec![RawAva::utf8(oid::UID, v)];

    // UID=user1+OU=people,DC=example,DC=com: one multi-valued RDN, not two RDNs.
    let multi = lab.ca.client_with_subject(
        "multi-rdn",
        &[
            vec![RawAva::ia5(oid::DC, "com")],
            vec![RawAva::ia5(oid::DC, "example")],
            vec![RawAva::utf8(oid::UID, "user1"), RawAva::utf8(oid::OU, "people")],
        ],
    );
    external(cfg.imaps, &multi, "a NO [AUTHENTICATIONFAILED]").await;
    logged("certmap default: subject has a multi-valued RDN (ou=people+uid=user1)");

    // A BMPString CN in front of user1's DN is decoded and kept: it names another entry.
    let bmp =
        lab.ca.client_with_subject("bmp-cn", &people(vec![uid("user1"), vec![RawAva::bmp(oid::CN, "Jörg 中村")]]));
    external(cfg.imaps, &bmp, "a NO [AUTHENTICATIONFAILED]").await;
    logged("no entry for cn=Jörg 中村,uid=user1,ou=people,dc=example,dc=com");

    // A CN that is not valid UTF-8 is an error, not a component to skip.
    let bad = vec![RawAva::raw(oid::CN, tag::UTF8, b"J\xf6rg")];
    let undecodable = lab.ca.client_with_subject("undecodable-cn", &people(vec![uid("user1"), bad]));
    external(cfg.imaps, &undecodable, "a NO [AUTHENTICATIONFAILED]").await;
    logged("subject RDN 1 (cn) cannot be decoded: invalid UTF8String");

    // An escaped comma stays inside its value.
    let comma = lab.ca.client_with_subject("comma-cn", &people(vec![vec![RawAva::utf8(oid::CN, "a,uid=user2")]]));
    external(cfg.imaps, &comma, "a NO [AUTHENTICATIONFAILED]").await;
    // The log escapes backslashes (log_safe), so the DN's escapes appear doubled.
    logged("no entry for cn=a\\\\,uid\\\\=user2,ou=people,dc=example,dc=com");

    // user1's own DN logs in.
    let good = lab.ca.client_with_subject("user1-dn", &people(vec![uid("user1")]));
    let mut c = external(cfg.imaps, &good, "a OK").await;
    imap_expect_store(&mut c, 0).await; // user1 lives on store A
    mm.stop().await;
}

/// `FilterComps ou=uid` for the lab CA: the subject must have exactly one OU.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_comps_refuse_a_missing_or_repeated_component() {
    let lab = lab(USERS);
    let (mm, cfg) = start(lab, "ou", "").await;
    let o = || vec![RawAva::utf8(oid::O, "siroe.com")];

    let no_ou = lab.ca.client_with_subject("no-ou", &[o(), vec![RawAva::utf8(oid::CN, "No Unit")]]);
    external(cfg.imaps, &no_ou, "a NO [AUTHENTICATIONFAILED]").await;
    logged("certmap lab: FilterComps needs 'ou', which subject 'cn=No Unit,o=siroe.com' does not have");

    let two_ous = lab.ca.client_with_subject(
        "two-ous",
        &[
            o(),
            vec![RawAva::utf8(oid::OU, "user1")],
            vec![RawAva::utf8(oid::OU, "user8")],
            vec![RawAva::utf8(oid::CN, "Two Units")],
        ],
    );
    external(cfg.imaps, &two_ous, "a NO [AUTHENTICATIONFAILED]").await;
    logged("FilterComps uses 'ou', which subject 'cn=Two Units,ou=user8,ou=user1,o=siroe.com' has 2 times (ambiguous)");

    // One OU, as a BMPString: decoded, and user8 logs in.
    let bmp_ou = lab.ca.client_with_subject(
        "bmp-ou",
        &[o(), vec![RawAva::bmp(oid::OU, "user8")], vec![RawAva::utf8(oid::CN, "Pilar Lorca")]],
    );
    let mut c = external(cfg.imaps, &bmp_ou, "a OK").await;
    imap_expect_store(&mut c, 1).await; // user8 lives on store B
    mm.stop().await;
}

/// `DNComps ou, dc`: the base is built from the subject, and every listed component must be
/// there (both `dc`s are kept, in order).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dn_comps_refuse_a_missing_component() {
    let lab = lab(USERS);
    let (mm, cfg) = start(lab, "dncomps", "").await;
    let no_dc = lab
        .ca
        .client_with_subject("no-dc", &[vec![RawAva::utf8(oid::OU, "people")], vec![RawAva::utf8(oid::UID, "user3")]]);
    external(cfg.imaps, &no_dc, "a NO [AUTHENTICATIONFAILED]").await;
    logged("certmap default: DNComps needs 'dc', which subject 'uid=user3,ou=people' does not have");

    let good = lab.ca.client_with_subject("user3-dncomps", &people(vec![vec![RawAva::utf8(oid::UID, "user3")]]));
    let mut c = external(cfg.imaps, &good, "a OK").await;
    imap_expect_store(&mut c, 0).await; // user3 lives on store A
    mm.stop().await;
    logged("base=Dn(\"ou=people,dc=example,dc=com\") filter=(uid=user3)");
}
