//! Certificate logins: certmap.conf maps a client certificate to a user, mailmux logs into
//! the store as StoreAdmin on the user's behalf; bad certificates are refused.

mod common;

use std::net::SocketAddr;

use common::{Mailmux, captured_logs, imap_expect_store, lab};
use mailmux_testkit::dovecot::{STORE_ADMIN, STORE_ADMIN_PASSWORD, marker_subject};
use mailmux_testkit::lab::{DirectoryKind, Lab, STORE_NAMES, TlsConfig};
use mailmux_testkit::pki::CertFiles;
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
