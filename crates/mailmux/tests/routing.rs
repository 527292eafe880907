//! Routing beyond the first attribute: account status, failover between a user's stores,
//! user names with other delimiters and cases, and the route cache keeping known users
//! logging in while the directory is down.

mod common;

use std::time::{Duration, Instant};

use common::{Mailmux, captured_logs, imap_expect_store, lab};
use mailmux_testkit::lab::{DOWN_STORE_IP, DirectoryKind, Lab, STORE_IPS};
use mailmux_testkit::slapd::{SUFFIX, Slapd};
use mailmux_testkit::transcript::Transcript;

const USERS: usize = 8;

/// The lab's LDIF with extra attribute lines for some users, as an LdapURL line.
fn ldif_with(lab: &Lab, name: &str, extra: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(&lab.ldif).expect("lab LDIF");
    for (uid, line) in extra {
        let head = format!("dn: uid={uid},ou=people,");
        let at = text.find(&head).expect("user in LDIF");
        let end = text[at..].find("\n\n").map_or(text.len(), |e| at + e);
        text.insert_str(end, &format!("\n{line}"));
    }
    let path = lab.dir.path().join(name);
    std::fs::write(&path, text).expect("write LDIF");
    format!("default:LdapURL ldif:{}\n", path.display())
}

async fn login(mm: &Mailmux, user: &str, password: &str) -> String {
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    c.send(&format!("a LOGIN {user} {password}")).await;
    c.until("a ").await.pop().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inactive_accounts_are_refused_and_the_log_says_why() {
    let lab = lab(USERS);
    let u = |i: usize| lab.users[i].clone();
    let directory = ldif_with(
        lab,
        "status.ldif",
        &[
            (&u(0).uid, "inetUserStatus: inactive"),
            (&u(1).uid, "mailUserStatus: disabled"),
            (&u(2).uid, "mailUserStatus: hold"),
            (&u(3).uid, "inetUserStatus: deleted"),
            (&u(4).uid, "mailUserStatus: overquota"),
            (&u(5).uid, "inetUserStatus: Active"),
        ],
    );
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, &directory, &directory)).await;
    for i in 0..4 {
        let answer = login(&mm, &u(i).uid, &u(i).password).await;
        assert_eq!(answer, "a NO [AUTHENTICATIONFAILED] Authentication failed.", "{}", u(i).uid);
    }
    for i in 4..6 {
        assert!(login(&mm, &u(i).uid, &u(i).password).await.starts_with("a OK"), "{} may log in", u(i).uid);
    }
    let mut p = Transcript::connect(mm.pop3).await;
    p.expect("+OK").await;
    p.send(&format!("USER {}", u(1).uid)).await;
    p.expect("+OK").await;
    p.send(&format!("PASS {}", u(1).password)).await;
    p.expect("-ERR [AUTH]").await;
    mm.stop().await;
    let logs = captured_logs();
    for line in [
        format!("user '{}' inetUserStatus: 'inactive'", u(0).uid),
        format!("user '{}' mailUserStatus: 'disabled'", u(1).uid),
        format!("user '{}' mailUserStatus: 'hold'", u(2).uid),
        format!("user '{}' inetUserStatus: 'deleted'", u(3).uid),
    ] {
        assert!(logs.contains(&line), "missing {line:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_whose_first_store_is_down_lands_on_the_next() {
    let lab = lab(USERS);
    let user = lab.user_on(0).clone();
    // The lab entry has mailHost 127.0.0.2 (store A); put the dead 127.0.0.9 first, as
    // mailRoutingHost, so MailHostAttrs' order decides.
    let directory = ldif_with(lab, "failover.ldif", &[(&user.uid, &format!("mailRoutingHost: {DOWN_STORE_IP}"))]);
    let attrs = "default:MailHostAttrs mailRoutingHost mailHost\n";
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, &(directory.clone() + attrs), "")).await;
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    c.send(&format!("a LOGIN {} {}", user.uid, user.password)).await;
    c.expect("a OK").await;
    imap_expect_store(&mut c, 0).await;
    // The dead store is now skipped by every session: the next login does not wait on it.
    let started = Instant::now();
    assert!(login(&mm, &user.uid, &user.password).await.starts_with("a OK"));
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    mm.stop().await;
    let logs = captured_logs();
    let expected = format!("store={DOWN_STORE_IP}:{} next={}:{}", lab.imap_port, STORE_IPS[0], lab.imap_port);
    assert!(logs.contains("store unreachable; failing over") && logs.contains(&expected), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delimiters_and_case_lead_to_the_same_user() {
    let lab = lab(USERS);
    let user = lab.user_on(1).clone();
    let extra = "default:SearchFormat (mail=%s)\ndefault:VirtualDomainDelim +@\n";
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, extra, "")).await;
    for name in
        [format!("{}@example.com", user.uid), format!("{}+EXAMPLE.com", user.uid), format!("{}@Example.Com", user.uid)]
    {
        assert!(login(&mm, &name, &user.password).await.starts_with("a OK"), "{name}");
    }
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_users_log_in_while_the_directory_is_down() {
    let lab = lab(USERS);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut own = Slapd::start(dir.path(), &std::fs::read_to_string(&lab.ldif).expect("lab LDIF"));
    // A TTL shorter than the test, so the cached route is past it when the directory is gone.
    let url = format!("default:LdapURL {}/{SUFFIX}\ndefault:LdapCacheTTL 1\ndefault:LdapTimeout 2\n", own.url);
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, &url, "")).await;
    let (known, unknown) = (lab.user_on(0).clone(), lab.user_on(1).clone());
    assert!(login(&mm, &known.uid, &known.password).await.starts_with("a OK"));
    own.stop();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    c.send(&format!("a LOGIN {} {}", known.uid, known.password)).await;
    c.expect("a OK").await;
    imap_expect_store(&mut c, 0).await;
    assert!(login(&mm, &unknown.uid, &unknown.password).await.starts_with("a NO [UNAVAILABLE]"));
    mm.stop().await;
    assert!(captured_logs().contains("directory unavailable; using a cached route past its TTL"));
}
