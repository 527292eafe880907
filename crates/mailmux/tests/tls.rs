//! TLS toward clients (implicit, STARTTLS/STLS, RestrictPlainPasswords) and toward stores
//! (implicit, STARTTLS, certificate checks), with a Rust client, openssl s_client and Python.

mod common;

use std::net::SocketAddr;

use common::{Mailmux, captured_logs, imap_expect_store, lab, pop3_expect_store};
use mailmux_testkit::dovecot::marker_subject;
use mailmux_testkit::lab::{DirectoryKind, Lab, STORE_NAMES, TlsConfig};
use mailmux_testkit::transcript::{Transcript, tls_connector};
use rustls::pki_types::ServerName;

const USERS: usize = 6;

fn localhost() -> ServerName<'static> {
    ServerName::from(std::net::IpAddr::from([127, 0, 0, 1]))
}

fn tls_addr(port: u16) -> SocketAddr {
    ([127, 0, 0, 1], port).into()
}

async fn start(lab: &Lab, imap_extra: &str, pop3_extra: &str) -> (Mailmux, TlsConfig) {
    let cfg = lab.write_tls_config(DirectoryKind::Ldif, imap_extra, pop3_extra);
    (Mailmux::start(&cfg.dir).await, cfg)
}

/// Logs in with LOGIN and proves the store by its marker.
async fn imap_login_reaches(c: &mut Transcript, lab: &Lab, store: usize) {
    let user = lab.user_on(store);
    c.send(&format!("l1 LOGIN {} {}", user.uid, user.password)).await;
    c.expect("l1 OK").await;
    imap_expect_store(c, store).await;
}

async fn pop3_login_reaches(c: &mut Transcript, lab: &Lab, store: usize) {
    let user = lab.user_on(store);
    c.send(&format!("USER {}", user.uid)).await;
    c.expect("+OK").await;
    c.send(&format!("PASS {}", user.password)).await;
    c.expect("+OK").await;
    pop3_expect_store(c, store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_on_993_and_995_style_ports() {
    let lab = lab(USERS);
    let (mm, cfg) = start(lab, "", "").await;
    let tls = tls_connector(&lab.ca.cert, None);
    let mut c = Transcript::connect_tls(tls_addr(cfg.imaps), &tls).await;
    let greeting = c.expect("* OK [CAPABILITY").await;
    assert!(!greeting.contains("STARTTLS") && greeting.contains("AUTH=PLAIN"), "{greeting}");
    imap_login_reaches(&mut c, lab, 1).await;

    let mut p = Transcript::connect_tls(tls_addr(cfg.pop3s), &tls).await;
    p.expect("+OK").await;
    p.send("CAPA").await;
    let capa = p.until(".").await;
    assert!(!capa.iter().any(|l| l == "STLS"), "{}", p.transcript());
    pop3_login_reaches(&mut p, lab, 0).await;
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_then_login_and_capabilities_reflect_tls() {
    let lab = lab(USERS);
    let (mm, _) = start(lab, "", "").await;
    let tls = tls_connector(&lab.ca.cert, None);
    let mut c = Transcript::connect(mm.imap).await;
    let greeting = c.expect("* OK [CAPABILITY").await;
    assert!(greeting.contains("STARTTLS"), "{greeting}");
    c.send("a STARTTLS").await;
    c.expect("a OK").await;
    let mut c = c.start_tls(localhost(), &tls).await.expect("handshake");
    c.send("b CAPABILITY").await;
    let caps = c.expect("* CAPABILITY").await;
    assert!(!caps.contains("STARTTLS"), "{caps}");
    c.expect("b OK").await;
    c.send("c STARTTLS").await;
    c.expect("c BAD").await;
    imap_login_reaches(&mut c, lab, 0).await;

    let mut p = Transcript::connect(mm.pop3).await;
    p.expect("+OK").await;
    p.send("CAPA").await;
    assert!(p.until(".").await.iter().any(|l| l == "STLS"), "{}", p.transcript());
    p.send("STLS").await;
    p.expect("+OK").await;
    let mut p = p.start_tls(localhost(), &tls).await.expect("handshake");
    pop3_login_reaches(&mut p, lab, 1).await;
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_pipelined_after_starttls_never_run() {
    let lab = lab(USERS);
    let (mm, _) = start(lab, "", "").await;
    let tls = tls_connector(&lab.ca.cert, None);
    let user = lab.user_on(0);
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    // The 2011 injection: a LOGIN sent in plaintext behind STARTTLS, hoping it runs inside TLS.
    c.send_raw(format!("a STARTTLS\r\nb LOGIN {} {}\r\n", user.uid, user.password).as_bytes()).await;
    c.expect("a OK").await;
    let mut c = c.start_tls(localhost(), &tls).await.expect("handshake");
    c.send("c NOOP").await;
    // Had the LOGIN run, "b OK"/"b NO" would come first.
    assert_eq!(c.line().await, "c OK NOOP completed.", "{}", c.transcript());
    c.send("d SELECT INBOX").await;
    c.expect("d BAD Please log in first").await;

    let mut p = Transcript::connect(mm.pop3).await;
    p.expect("+OK").await;
    p.send_raw(format!("STLS\r\nUSER {}\r\nPASS {}\r\n", user.uid, user.password).as_bytes()).await;
    p.expect("+OK").await;
    let mut p = p.start_tls(localhost(), &tls).await.expect("handshake");
    p.send("STAT").await;
    p.expect("-ERR Not logged in").await;
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restrict_plain_passwords_until_tls() {
    let lab = lab(USERS);
    let (mm, cfg) = start(lab, "default:RestrictPlainPasswords yes\n", "default:RestrictPlainPasswords yes\n").await;
    let tls = tls_connector(&lab.ca.cert, None);
    let user = lab.user_on(1);
    let mut c = Transcript::connect(mm.imap).await;
    let greeting = c.expect("* OK [CAPABILITY").await;
    assert!(
        greeting.contains("STARTTLS") && greeting.contains("LOGINDISABLED") && !greeting.contains("AUTH=PLAIN"),
        "{greeting}"
    );
    c.send(&format!("a LOGIN {} {}", user.uid, user.password)).await;
    c.expect("a NO [PRIVACYREQUIRED]").await;
    c.send("b AUTHENTICATE PLAIN").await;
    c.expect("b NO [PRIVACYREQUIRED]").await;
    c.send("c STARTTLS").await;
    c.expect("c OK").await;
    let mut c = c.start_tls(localhost(), &tls).await.expect("handshake");
    imap_login_reaches(&mut c, lab, 1).await;

    // The implicit-TLS port is not restricted.
    let mut c = Transcript::connect_tls(tls_addr(cfg.imaps), &tls).await;
    let greeting = c.expect("* OK").await;
    assert!(!greeting.contains("LOGINDISABLED"), "{greeting}");

    let mut p = Transcript::connect(mm.pop3).await;
    p.expect("+OK").await;
    p.send(&format!("USER {}", user.uid)).await;
    p.expect("-ERR [AUTH] Plaintext authentication is disabled").await;
    p.send("AUTH PLAIN").await;
    p.expect("-ERR [AUTH]").await;
    p.send("STLS").await;
    p.expect("+OK").await;
    let mut p = p.start_tls(localhost(), &tls).await.expect("handshake");
    pop3_login_reaches(&mut p, lab, 1).await;
    mm.stop().await;
}

/// Dovecot's login line says `TLS` when the login came over TLS (implicit or STARTTLS).
fn over_tls(line: &str) -> bool {
    line.contains("TLS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_stores_implicit_and_starttls_with_verified_certificates() {
    let lab = lab(USERS);
    let ca = lab.ca.cert.display();
    let implicit = |port: u16| format!("default:SSLBacksidePort {port}\ndefault:SSLBacksideCAFile {ca}\n");
    let starttls = format!("default:BacksideStartTLS yes\ndefault:SSLBacksideCAFile {ca}\n");
    // Implicit TLS to store A's users, STARTTLS to store B's; each store must log two TLS logins.
    let cases = [(implicit(lab.imaps_port), implicit(lab.pop3s_port), 0), (starttls.clone(), starttls, 1)];
    for (imap_lines, pop3_lines, store) in cases {
        let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, &imap_lines, &pop3_lines)).await;
        let user = lab.user_on(store);
        let before = lab.stores[store].logins(&user.uid, over_tls).len();
        let mut c = Transcript::connect(mm.imap).await;
        c.expect("* OK").await;
        imap_login_reaches(&mut c, lab, store).await;
        let mut p = Transcript::connect(mm.pop3).await;
        p.expect("+OK").await;
        pop3_login_reaches(&mut p, lab, store).await;
        mm.stop().await;
        lab.stores[store].wait_for_logins(&user.uid, before + 2, over_tls).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_certificate_from_an_unknown_ca_is_refused_unless_verification_is_off() {
    let lab = lab(USERS);
    let other = lab.other_ca.cert.display();
    let bad = format!("default:SSLBacksidePort {}\ndefault:SSLBacksideCAFile {other}\n", lab.imaps_port);
    let cfg = lab.write_config(DirectoryKind::Ldif, &bad, "");
    let mm = Mailmux::start(&cfg).await;
    let user = lab.user_on(0);
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    c.send(&format!("a LOGIN {} {}", user.uid, user.password)).await;
    c.expect("* NO [ALERT]").await;
    c.expect("a NO [UNAVAILABLE]").await;
    mm.stop().await;
    let logs = captured_logs();
    assert!(logs.contains("TLS handshake failed: invalid peer certificate"), "the log says why");

    let lab_only =
        format!("default:BacksideStartTLS yes\ndefault:SSLBacksideCAFile {other}\ndefault:SSLBacksideVerify no\n");
    let cfg = lab.write_config(DirectoryKind::Ldif, &lab_only, "");
    let mm = Mailmux::start(&cfg).await;
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    imap_login_reaches(&mut c, lab, 0).await;
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_s_client_logs_in_with_starttls_and_on_the_tls_port() {
    let lab = lab(USERS);
    let (mm, cfg) = start(lab, "", "").await;
    let user = lab.user_on(1);
    let script = format!(
        "a1 LOGIN {} {}\na2 SELECT INBOX\na3 FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]\na4 LOGOUT\n",
        user.uid, user.password
    );
    for args in [
        vec!["-connect".to_owned(), mm.imap.to_string(), "-starttls".into(), "imap".into()],
        vec!["-connect".to_owned(), tls_addr(cfg.imaps).to_string()],
    ] {
        let mut child = tokio::process::Command::new("openssl")
            .arg("s_client")
            .args(&args)
            .args(["-CAfile"])
            .arg(&lab.ca.cert)
            .args(["-verify_return_error", "-crlf", "-quiet"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("openssl is installed");
        {
            use tokio::io::AsyncWriteExt;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(script.as_bytes()).await.expect("write");
            // Keep stdin open until the server closes after LOGOUT.
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_secs(20)).await;
                drop(stdin);
            });
        }
        let out = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
            .await
            .expect("s_client finished")
            .expect("s_client output");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("a1 OK"), "{args:?}\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains(&marker_subject(STORE_NAMES[1])), "{args:?}\n{stdout}");
    }
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_imaplib_and_poplib_over_tls() {
    let lab = lab(USERS);
    let (mm, cfg) = start(lab, "", "").await;
    let a = lab.user_on(0);
    let b = lab.user_on(1);
    let script = format!(
        r#"
import imaplib, poplib, ssl, sys
ctx = ssl.create_default_context(cafile={ca:?})
def subject(m):
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    return data[0][1].decode().strip()
m = imaplib.IMAP4_SSL("127.0.0.1", {imaps}, ssl_context=ctx)
m.login({a_uid:?}, {a_pw:?}); m.select("INBOX"); print("imaps", subject(m)); m.logout()
m = imaplib.IMAP4("127.0.0.1", {imap})
m.starttls(ssl_context=ctx)
m.login({b_uid:?}, {b_pw:?}); m.select("INBOX"); print("starttls", subject(m)); m.logout()
p = poplib.POP3_SSL("127.0.0.1", {pop3s}, context=ctx)
p.user({b_uid:?}); p.pass_({b_pw:?}); print("pop3s", [l.decode() for l in p.retr(1)[1] if l.startswith(b"Subject")][0]); p.quit()
p = poplib.POP3("127.0.0.1", {pop3})
p.stls(context=ctx)
p.user({a_uid:?}); p.pass_({a_pw:?}); print("stls", [l.decode() for l in p.retr(1)[1] if l.startswith(b"Subject")][0]); p.quit()
"#,
        ca = lab.ca.cert.display().to_string(),
        imaps = cfg.imaps,
        imap = mm.imap.port(),
        pop3s = cfg.pop3s,
        pop3 = mm.pop3.port(),
        a_uid = a.uid,
        a_pw = a.password,
        b_uid = b.uid,
        b_pw = b.password,
    );
    let out =
        tokio::process::Command::new("python3").arg("-c").arg(&script).output().await.expect("python3 is installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let (sa, sb) = (marker_subject(STORE_NAMES[0]), marker_subject(STORE_NAMES[1]));
    for expected in [
        format!("imaps Subject: {sa}"),
        format!("starttls Subject: {sb}"),
        format!("pop3s Subject: {sb}"),
        format!("stls Subject: {sa}"),
    ] {
        assert!(stdout.lines().any(|l| l == expected), "missing {expected:?} in\n{stdout}");
    }
    mm.stop().await;
}
