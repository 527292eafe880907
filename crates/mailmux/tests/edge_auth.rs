//! Authentication at the edge, against a real slapd (which logs every bind) and the lab's
//! Dovecot stores: PreAuth and its log line, the AuthCache, CRAM-MD5 and APOP checked against
//! the directory's cleartext passwords, and the clear error when `BindDN` cannot read them.

mod common;

use std::time::Duration;

use common::{Mailmux, captured_logs, imap_expect_store, lab, pop3_expect_store};
use hmac::Mac;
use mailmux_testkit::dovecot::{STORE_ADMIN, STORE_ADMIN_PASSWORD};
use mailmux_testkit::lab::{DirectoryKind, Lab};
use mailmux_testkit::slapd::{SUFFIX, Slapd, SlapdConfig};
use mailmux_testkit::transcript::Transcript;
use md5::Digest;

const USERS: usize = 8;

/// A slapd of this test's own, loaded with the lab's users, logging every operation.
fn own_slapd(lab: &Lab, dir: &std::path::Path, config: SlapdConfig) -> Slapd {
    Slapd::start_config(dir, &std::fs::read_to_string(&lab.ldif).expect("lab LDIF"), &config.with_stats())
}

fn dn(uid: &str) -> String {
    format!("uid={uid},ou=people,{SUFFIX}")
}

async fn imap_login(mm: &Mailmux, user: &str, password: &str) -> String {
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    c.send(&format!("a LOGIN {user} {password}")).await;
    c.until("a ").await.pop().unwrap_or_default()
}

/// Lines of `log` about `uid` that say a store refused a login.
fn store_refusals(lab: &Lab, uid: &str) -> usize {
    let user = format!("user=<{uid}>");
    lab.stores
        .iter()
        .map(|s| s.log_text().lines().filter(|l| l.contains("auth failed") && l.contains(&user)).count())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preauth_refuses_wrong_passwords_before_any_store_and_logs_the_mmp_line() {
    let lab = lab(USERS);
    let dir = tempfile::tempdir().expect("temp dir");
    let slapd = own_slapd(lab, dir.path(), SlapdConfig::default());
    let url = format!("default:LdapURL {}/{SUFFIX}\ndefault:LdapCacheSize 0\n", slapd.url);
    let (checked, unchecked) = (lab.user_on(0).clone(), lab.user_on(1).clone());

    // Without PreAuth a wrong password goes to the store, which refuses it: the control.
    let plain = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, &url, "")).await;
    assert!(imap_login(&plain, &unchecked.uid, "wrong").await.starts_with("a NO [AUTHENTICATIONFAILED]"));
    plain.stop().await;
    for _ in 0..50 {
        if store_refusals(lab, &unchecked.uid) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(store_refusals(lab, &unchecked.uid), 1, "the store saw the wrong password");
    assert_eq!(slapd.binds_as(&dn(&unchecked.uid)), 0, "no PreAuth, no bind as the user");

    let extra = format!("{url}default:PreAuth yes\n");
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, &extra, &extra)).await;
    assert_eq!(imap_login(&mm, &checked.uid, "wrong").await, "a NO [AUTHENTICATIONFAILED] Authentication failed.");
    let mut p = Transcript::connect(mm.pop3).await;
    p.expect("+OK").await;
    p.send(&format!("USER {}", checked.uid)).await;
    p.expect("+OK").await;
    p.send("PASS also-wrong").await;
    p.expect("-ERR [AUTH]").await;
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    c.send(&format!("a LOGIN {} {}", checked.uid, checked.password)).await;
    c.expect("a OK").await;
    imap_expect_store(&mut c, 0).await;
    mm.stop().await;
    // Give Dovecot's log process the time it took for the control above.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(store_refusals(lab, &checked.uid), 0, "a wrong password never reached a store");
    assert_eq!(slapd.binds_as(&dn(&checked.uid)), 3, "two wrong passwords and the right one were bound");

    // The MMP's line, with the session's id in hexadecimal.
    let logs = captured_logs();
    let line = logs
        .lines()
        .find(|l| l.contains(&format!(") {} pre-authenticated - 127.0.0.1, 127.0.0.1", checked.uid)))
        .unwrap_or_else(|| panic!("no pre-authenticated line in\n{logs}"));
    let at = line.find(" (sid 0x").expect("sid");
    let message = &line[at.checked_sub(15).expect("date and time")..];
    let (date, rest) = message.split_once(' ').expect("date");
    let (time, rest) = rest.split_once(' ').expect("time");
    assert!(date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()), "{line}");
    assert!(time.len() == 6 && time.bytes().all(|b| b.is_ascii_digit()), "{line}");
    let sid = rest.strip_prefix("(sid 0x").and_then(|r| r.split_once(')')).map(|(hex, _)| hex).expect("sid");
    let id = line.split("{id=").nth(1).and_then(|r| r.split([' ', '}']).next()).expect("session id");
    assert_eq!(u64::from_str_radix(sid, 16).ok(), id.parse::<u64>().ok(), "{line}");
    let lines = logs.matches(&format!(") {} pre-authenticated", checked.uid)).count();
    assert_eq!(lines, 1, "one line, for the right password only");
    assert!(!logs.contains("also-wrong") && !logs.contains(&checked.password), "no password in the log");
}

/// Long enough for the logins before the password change to finish within it on a busy
/// machine; the test waits it out once.
const TTL: u64 = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auth_cache_binds_once_and_a_changed_password_counts_at_the_ttl() {
    let lab = lab(USERS);
    let dir = tempfile::tempdir().expect("temp dir");
    let slapd = own_slapd(lab, dir.path(), SlapdConfig::default());
    let extra = format!("default:LdapURL {}/{SUFFIX}\ndefault:PreAuth yes\ndefault:AuthCacheTTL {TTL}\n", slapd.url);
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, &extra, "")).await;
    let user = lab.user_on(1).clone();
    let user_dn = dn(&user.uid);

    // Twenty first logins at once: one bind.
    let mut logins = Vec::new();
    for _ in 0..20 {
        let (addr, user) = (mm.imap, user.clone());
        logins.push(tokio::spawn(async move {
            let mut c = Transcript::connect(addr).await;
            c.expect("* OK").await;
            c.send(&format!("a LOGIN {} {}", user.uid, user.password)).await;
            c.until("a ").await.pop().unwrap_or_default()
        }));
    }
    for login in logins {
        assert!(login.await.expect("login task").starts_with("a OK"));
    }
    assert_eq!(slapd.binds_as(&user_dn), 1, "concurrent first logins bind once");
    assert!(imap_login(&mm, &user.uid, &user.password).await.starts_with("a OK"));
    assert_eq!(slapd.binds_as(&user_dn), 1, "a cached proof skips the bind");

    // The password changes in the directory (and at the store, which has its own copy).
    let new = "changed-password";
    slapd.ldapmodify(&format!("dn: {user_dn}\nchangetype: modify\nreplace: userPassword\nuserPassword: {new}\n"));
    // The old password is still accepted by PreAuth until the TTL: the store is what refuses
    // it now, since the lab's stores keep the old one (mailmux passed it on, as it should).
    let answer = imap_login(&mm, &user.uid, &user.password).await;
    assert!(answer.starts_with("a OK"), "{answer}");
    assert_eq!(slapd.binds_as(&user_dn), 1, "within the TTL the old password is proven from the cache");
    // The new password is not in the cache: it is bound (and succeeds at the directory).
    let _ = imap_login(&mm, &user.uid, new).await;
    assert_eq!(slapd.binds_as(&user_dn), 2);
    tokio::time::sleep(Duration::from_secs(TTL) + Duration::from_millis(200)).await;
    assert_eq!(
        imap_login(&mm, &user.uid, &user.password).await,
        "a NO [AUTHENTICATIONFAILED] Authentication failed.",
        "past the TTL the old password goes to the directory, which refuses it"
    );
    assert_eq!(slapd.binds_as(&user_dn), 3);
    mm.stop().await;
}

fn cram_md5(challenge: &[u8], password: &str) -> String {
    let mut mac = hmac::Hmac::<md5::Md5>::new_from_slice(password.as_bytes()).expect("any key length");
    mac.update(challenge);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text.trim()).expect("base64 challenge")
}

const CRAMS: &str = "default:CRAMs yes\n";

fn crams_config(slapd_url: &str) -> String {
    format!(
        "default:LdapURL {slapd_url}/{SUFFIX}\n{CRAMS}default:StoreAdmin {STORE_ADMIN}\ndefault:StoreAdminPass {STORE_ADMIN_PASSWORD}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cram_md5_and_apop_log_in_as_the_store_administrator_for_the_user() {
    let lab = lab(USERS);
    let dir = tempfile::tempdir().expect("temp dir");
    let slapd = own_slapd(lab, dir.path(), SlapdConfig::default());
    let extra = crams_config(&slapd.url);
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, &extra, &extra)).await;
    let (a, b) = (lab.user_on(0).clone(), lab.user_on(1).clone());

    // IMAP AUTHENTICATE CRAM-MD5.
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    c.send("c CAPABILITY").await;
    assert!(c.expect("* CAPABILITY").await.contains("AUTH=CRAM-MD5"), "{}", c.transcript());
    c.expect("c OK").await;
    c.send("a AUTHENTICATE CRAM-MD5").await;
    let challenge = unb64(c.expect("+ ").await.trim_start_matches("+ "));
    assert!(challenge.starts_with(b"<") && challenge.ends_with(b">"), "{}", String::from_utf8_lossy(&challenge));
    c.send(&b64(format!("{} {}", a.uid, cram_md5(&challenge, &a.password)).as_bytes())).await;
    c.expect("a OK").await;
    imap_expect_store(&mut c, 0).await;

    // A wrong digest is a failed login like a wrong password.
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    c.send("a AUTHENTICATE CRAM-MD5").await;
    let challenge = unb64(c.expect("+ ").await.trim_start_matches("+ "));
    c.send(&b64(format!("{} {}", a.uid, cram_md5(&challenge, "not-it")).as_bytes())).await;
    assert_eq!(c.line().await, "a NO [AUTHENTICATIONFAILED] Authentication failed.");

    // POP3 APOP, with the timestamp of the greeting.
    let mut p = Transcript::connect(mm.pop3).await;
    let greeting = p.expect("+OK").await;
    let stamp = &greeting[greeting.find('<').expect("APOP timestamp")..=greeting.rfind('>').expect("timestamp end")];
    let digest: String =
        md5::Md5::digest(format!("{stamp}{}", b.password).as_bytes()).iter().map(|x| format!("{x:02x}")).collect();
    p.send(&format!("APOP {} {digest}", b.uid)).await;
    p.expect("+OK").await;
    pop3_expect_store(&mut p, 1).await;

    // POP3 AUTH CRAM-MD5.
    let mut p = Transcript::connect(mm.pop3).await;
    p.expect("+OK").await;
    p.send("AUTH CRAM-MD5").await;
    let challenge = unb64(p.expect("+ ").await.trim_start_matches("+ "));
    p.send(&b64(format!("{} {}", b.uid, cram_md5(&challenge, &b.password)).as_bytes())).await;
    p.expect("+OK").await;
    pop3_expect_store(&mut p, 1).await;
    mm.stop().await;
    // mailmux never had the users' passwords from the clients: the stores were logged into
    // as the administrator (the only other credentials it holds) for each user.
    let logs = captured_logs();
    assert!(!logs.contains(&a.password) && !logs.contains(&b.password));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bind_dn_that_cannot_read_passwords_is_an_error_at_start_and_in_check() {
    let lab = lab(USERS);
    let dir = tempfile::tempdir().expect("temp dir");
    let reader = format!("cn=reader,{SUFFIX}");
    let config = SlapdConfig::default()
        .with_access("to attrs=userPassword by self write by anonymous auth by * none")
        .with_access("to * by * read");
    let slapd = own_slapd(lab, dir.path(), config);
    slapd.ldapmodify(&format!(
        "dn: {reader}\nchangetype: add\nobjectClass: person\ncn: reader\nsn: reader\nuserPassword: readerpw\n"
    ));
    let extra = format!("{}default:BindDN \"{reader}\"\ndefault:BindPass readerpw\n", crams_config(&slapd.url));
    let cfg = lab.write_config(DirectoryKind::Ldif, &extra, "");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailmux")).arg("check").arg("-c").arg(&cfg).output();
    let out = out.expect("run mailmux check");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains(&format!("error: {}", cfg.join("ImapProxyAService.cfg").display())), "{text}");
    assert!(text.contains(&format!("CRAMs yes, but {reader} cannot read userPassword")), "{text}");

    let mm = Mailmux::start(&cfg).await;
    let user = lab.user_on(0).clone();
    // The start-up check runs in the background: wait for its line.
    let mut logged = false;
    for _ in 0..50 {
        logged = captured_logs().contains(&format!("CRAMs yes, but {reader} cannot read userPassword"));
        if logged {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(logged, "the start-up check said nothing");
    // And a user's CRAM-MD5 login fails, saying why in the log.
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    c.send("a AUTHENTICATE CRAM-MD5").await;
    let challenge = unb64(c.expect("+ ").await.trim_start_matches("+ "));
    c.send(&b64(format!("{} {}", user.uid, cram_md5(&challenge, &user.password)).as_bytes())).await;
    assert_eq!(c.line().await, "a NO [AUTHENTICATIONFAILED] Authentication failed.");
    mm.stop().await;
    assert!(captured_logs().contains(&format!("{} has no cleartext userPassword that BindDN can read", dn(&user.uid))));
}
