//! Bearer tokens passed through (`OAuthBearer yes`): OAUTHBEARER and XOAUTH2 from IMAP and
//! POP3 clients reach a real Dovecot store that checks them with its `oauth2` passdb against
//! a token introspection endpoint. The endpoint records every token it is asked about, so the
//! test sees that the store got the client's token byte for byte, that mailmux routed the
//! token's user, and what happens with a bad token or a store that takes no tokens.

mod common;

use base64::Engine;
use common::{Mailmux, captured_logs, lab};
use mailmux_testkit::dovecot::{Dovecot, StoreSpec, marker_subject};
use mailmux_testkit::lab::{DirectoryKind, STORE_IPS};
use mailmux_testkit::oauth2::Introspection;
use mailmux_testkit::transcript::Transcript;

/// Where the token-checking store listens: its own address, the lab's ports.
const OAUTH_STORE_IP: &str = "127.0.0.44";
const OAUTH_STORE: &str = "store-oauth";
/// Every b64token character class (RFC 6750 §2.1), so a token that was re-encoded, trimmed
/// or decoded on the way would not match at the store.
const TOKEN: &str = "mF_9.B5f-4~1JqM+x/yZ==";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn oauthbearer(user: &str, token: &str) -> String {
    b64(format!("n,a={user},\x01host=mail.example.com\x01port=143\x01auth=Bearer {token}\x01\x01").as_bytes())
}

fn xoauth2(user: &str, token: &str) -> String {
    b64(format!("user={user}\x01auth=Bearer {token}\x01\x01").as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_reach_the_store_unchanged_for_the_users_route() {
    let lab = lab(8);
    common::capture_logs();
    let dir = tempfile::tempdir().expect("temp dir");
    let _ = std::process::Command::new("chmod").arg("755").arg(dir.path()).status();
    // Store-0 users live on the token-checking store, store-1 users on the lab's store B,
    // which knows nothing of tokens.
    let (user, other) = (lab.user_on(0).clone(), lab.user_on(1).clone());
    let endpoint = Introspection::start(&[(TOKEN, &user.uid), ("token-of-the-other", &other.uid)]);
    let ip = OAUTH_STORE_IP.parse().expect("address");
    let spec = StoreSpec {
        name: OAUTH_STORE.into(),
        index: 0,
        ip,
        imap_port: lab.imap_port,
        pop3_port: lab.pop3_port,
        imaps_port: lab.imaps_port,
        pop3s_port: lab.pop3s_port,
        tls: lab.ca.server(OAUTH_STORE, &[OAUTH_STORE_IP]),
    };
    let _store = Dovecot::start_with_oauth2(&dir.path().join("store"), &spec, &lab.users, &endpoint.url());
    let ldif = dir.path().join("users.ldif");
    let store_b = STORE_IPS[1].to_string();
    std::fs::write(&ldif, mailmux_testkit::slapd::users_ldif(&lab.users, &[OAUTH_STORE_IP, &store_b], ""))
        .expect("write LDIF");
    let extra = format!("default:LdapURL ldif:{}\ndefault:OAuthBearer yes\n", ldif.display());
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, &extra, &extra)).await;

    // C: a CAPABILITY / S: … AUTH=OAUTHBEARER AUTH=XOAUTH2 …
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    c.send("a CAPABILITY").await;
    let caps = c.expect("* CAPABILITY").await;
    assert!(caps.contains("AUTH=OAUTHBEARER") && caps.contains("AUTH=XOAUTH2"), "{caps}");
    c.expect("a OK").await;
    c.send(&format!("b AUTHENTICATE OAUTHBEARER {}", oauthbearer(&user.uid, TOKEN))).await;
    c.expect("b OK").await;
    c.send("s SELECT INBOX").await;
    c.until("s OK").await;
    c.send("c FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]").await;
    let lines = c.until("c ").await;
    assert!(lines.contains(&format!("Subject: {}", marker_subject(OAUTH_STORE))), "{}", c.transcript());
    c.send("d LOGOUT").await;
    c.expect("* BYE").await;
    assert_eq!(endpoint.asked(), [TOKEN], "the store asked about the client's token, unchanged");

    // POP3, XOAUTH2 without an initial response.
    let mut p = Transcript::connect(mm.pop3).await;
    p.expect("+OK").await;
    p.send("AUTH XOAUTH2").await;
    p.expect("+ ").await;
    p.send(&xoauth2(&user.uid, TOKEN)).await;
    p.expect("+OK").await;
    p.send("RETR 1").await;
    p.expect("+OK").await;
    assert!(p.until(".").await.contains(&format!("Subject: {}", marker_subject(OAUTH_STORE))), "{}", p.transcript());
    p.send("QUIT").await;
    p.expect("+OK").await;
    assert_eq!(endpoint.asked(), [TOKEN, TOKEN]);

    // A token the store does not accept: the client gets RFC 7628's error report, answers it,
    // and is refused as for a wrong password.
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    c.send(&format!("a AUTHENTICATE OAUTHBEARER {}", oauthbearer(&user.uid, "expired-token"))).await;
    let report = c.expect("+ ").await;
    let report = base64::engine::general_purpose::STANDARD.decode(&report[2..]).expect("base64 report");
    assert!(String::from_utf8_lossy(&report).contains("invalid_token"), "{report:?}");
    c.send("AQ==").await;
    c.expect("a NO [AUTHENTICATIONFAILED]").await;
    assert_eq!(endpoint.asked().last().map(String::as_str), Some("expired-token"));

    // A user whose store takes no tokens: nothing is sent there, the client is told to try
    // later and the log says why.
    let asked = endpoint.asked().len();
    let other_store = &lab.stores[other.store];
    let other_log = other_store.log_text().len();
    c.send(&format!("b AUTHENTICATE XOAUTH2 {}", xoauth2(&other.uid, "token-of-the-other"))).await;
    let answer = c.until("b ").await;
    assert!(answer.last().is_some_and(|l| l.starts_with("b NO [UNAVAILABLE]")), "{}", c.transcript());
    assert_eq!(endpoint.asked().len(), asked, "no token reached the introspection endpoint");
    // That store asks no endpoint: its own log says whether a token attempt reached it.
    let since = other_store.log_text()[other_log..].to_owned();
    assert!(!since.contains("XOAUTH2") && !since.contains(&other.uid), "the store was asked:\n{since}");
    assert!(captured_logs().contains("does not advertise AUTH=XOAUTH2"), "{}", captured_logs());
    assert!(!captured_logs().contains(TOKEN), "a token is a password: never logged");
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_oauth_bearer_the_mechanisms_are_neither_offered_nor_accepted() {
    let lab = lab(8);
    let user = lab.user_on(0).clone();
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, "", "")).await;
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    c.send("a CAPABILITY").await;
    let caps = c.expect("* CAPABILITY").await;
    assert!(!caps.contains("OAUTHBEARER") && !caps.contains("XOAUTH2"), "{caps}");
    c.expect("a OK").await;
    c.send(&format!("b AUTHENTICATE OAUTHBEARER {}", oauthbearer(&user.uid, TOKEN))).await;
    c.expect("b NO").await;
    let mut p = Transcript::connect(mm.pop3).await;
    p.expect("+OK").await;
    p.send("CAPA").await;
    let capa = p.until(".").await;
    assert!(!capa.iter().any(|l| l.contains("XOAUTH2") || l.contains("OAUTHBEARER")), "{capa:?}");
    p.send(&format!("AUTH XOAUTH2 {}", xoauth2(&user.uid, TOKEN))).await;
    p.expect("-ERR").await;
    mm.stop().await;
}
