//! The LDAP directory against a real slapd: servers tried in order, and reconnection after
//! the server went away.

mod common;

use common::{Mailmux, lab};
use mailmux_testkit::lab::DirectoryKind;
use mailmux_testkit::ports::free_port;
use mailmux_testkit::slapd::{SUFFIX, Slapd};
use mailmux_testkit::transcript::Transcript;

const USERS: usize = 4;

async fn login(addr: std::net::SocketAddr, uid: &str, password: &str) -> String {
    let mut c = Transcript::connect(addr).await;
    c.expect("* OK").await;
    c.send(&format!("a LOGIN {uid} {password}")).await;
    c.until("a ").await.pop().expect("a tagged answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldap_urls_are_tried_in_order() {
    let lab = lab(USERS);
    let slapd = lab.slapd.as_ref().expect("lab slapd");
    // The first server does not exist; the second answers.
    let urls = format!("default:LdapURL ldap://127.0.0.1:{}/{SUFFIX} {}/{SUFFIX}\n", free_port(), slapd.url);
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, &urls, "")).await;
    let user = lab.user_on(1);
    assert!(login(mm.imap, &user.uid, &user.password).await.starts_with("a OK"));
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_ldap_server_is_picked_up_again() {
    let lab = lab(USERS);
    let dir = tempfile::tempdir().expect("temp dir");
    let ldif = std::fs::read_to_string(&lab.ldif).expect("lab LDIF");
    let mut own = Slapd::start(dir.path(), &ldif);
    // No route cache: the point is what the pool does when slapd goes away.
    let url = format!("default:LdapURL {}/{SUFFIX}\ndefault:LdapCacheSize 0\n", own.url);
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, &url, "")).await;
    let user = lab.user_on(0);
    // Warm every pooled connection, so the next logins meet connections slapd has dropped.
    for _ in 0..4 {
        assert!(login(mm.imap, &user.uid, &user.password).await.starts_with("a OK"));
    }
    own.stop();
    for _ in 0..4 {
        assert_eq!(
            login(mm.imap, &user.uid, &user.password).await,
            "a NO [UNAVAILABLE] Mail service temporarily unavailable, try again later."
        );
    }
    own.restart();
    // A server that failed is skipped for DOWN_FOR (5 s), then tried again.
    let restarted = std::time::Instant::now();
    while !login(mm.imap, &user.uid, &user.password).await.starts_with("a OK") {
        assert!(restarted.elapsed() < std::time::Duration::from_secs(8), "not reconnected within 8 s");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    for _ in 0..4 {
        assert!(login(mm.imap, &user.uid, &user.password).await.starts_with("a OK"), "reconnected");
    }
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_domain_delimiters_and_replay_format_from_the_entry() {
    let lab = lab(USERS);
    // Users are found by mail address; the store is given the entry's uid.
    let extra = "default:SearchFormat (mail=%s)\ndefault:DefaultDomain example.com\n\
                 default:VirtualDomainDelim @+\ndefault:ReplayFormat %A[uid]\n";
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldap, extra, "")).await;
    let user = lab.user_on(0);
    for login_name in [user.uid.clone(), format!("{}@example.com", user.uid), format!("{}+example.com", user.uid)] {
        let answer = login(mm.imap, &login_name, &user.password).await;
        assert!(answer.starts_with("a OK"), "{login_name}: {answer}");
    }
    // Another domain: no entry has that mail address.
    let answer = login(mm.imap, &format!("{}@other.org", user.uid), &user.password).await;
    assert_eq!(answer, "a NO [AUTHENTICATIONFAILED] Authentication failed.");
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldaps_and_starttls_to_the_directory_verify_its_certificate() {
    let lab = lab(USERS);
    let slapd = lab.slapd.as_ref().expect("lab slapd");
    let ldaps = slapd.ldaps_url.as_ref().expect("slapd with TLS");
    let user = lab.user_on(1);
    let (good, bad) = (lab.ca.cert.display(), lab.other_ca.cert.display());
    let cases = [
        (format!("default:LdapURL {ldaps}/{SUFFIX}\ndefault:LdapCAFile {good}\n"), true),
        (
            format!("default:LdapURL {}/{SUFFIX}\ndefault:LdapStartTLS yes\ndefault:LdapCAFile {good}\n", slapd.url),
            true,
        ),
        (format!("default:LdapURL {ldaps}/{SUFFIX}\ndefault:LdapCAFile {bad}\n"), false),
        (
            format!("default:LdapURL {}/{SUFFIX}\ndefault:LdapStartTLS yes\ndefault:LdapCAFile {bad}\n", slapd.url),
            false,
        ),
    ];
    for (lines, works) in cases {
        let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, &lines, "")).await;
        let answer = login(mm.imap, &user.uid, &user.password).await;
        if works {
            assert!(answer.starts_with("a OK"), "{lines}: {answer}");
        } else {
            // A directory whose certificate does not verify is unavailable, never "wrong password".
            assert!(answer.starts_with("a NO [UNAVAILABLE]"), "{lines}: {answer}");
        }
        mm.stop().await;
    }
}
