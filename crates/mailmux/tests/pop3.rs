//! POP3 logins through mailmux, against real slapd and Dovecot, written as transcripts.

mod common;

use common::{Mailmux, lab, pop3_expect_store};
use mailmux_testkit::dovecot::marker_subject;
use mailmux_testkit::lab::{DirectoryKind, STORE_NAMES};
use mailmux_testkit::transcript::Transcript;

const USERS: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_pass_reaches_each_users_store() {
    let lab = lab(USERS);
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldap, "", "")).await;
    for store in [0, 1] {
        let user = lab.user_on(store);
        let mut c = Transcript::connect(mm.pop3).await;
        c.expect("+OK mailmux").await;
        c.send("CAPA").await;
        let capa = c.until(".").await;
        assert!(capa.iter().any(|l| l == "SASL PLAIN LOGIN"), "{}", c.transcript());
        c.send(&format!("USER {}", user.uid)).await;
        c.expect("+OK").await;
        c.send(&format!("PASS {}", user.password)).await;
        c.expect("+OK").await;
        pop3_expect_store(&mut c, store).await;
    }
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_plain_with_initial_response_and_continuation() {
    let lab = lab(USERS);
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldap, "", "")).await;

    let user = lab.user_on(1);
    let mut c = Transcript::connect(mm.pop3).await;
    c.expect("+OK").await;
    c.send(&format!("AUTH PLAIN {}", user.sasl_plain())).await;
    c.expect("+OK").await;
    pop3_expect_store(&mut c, 1).await;

    let user = lab.user_on(0);
    let mut c = Transcript::connect(mm.pop3).await;
    c.expect("+OK").await;
    c.send("AUTH PLAIN").await;
    c.expect("+ ").await;
    c.send(&user.sasl_plain()).await;
    c.expect("+OK").await;
    pop3_expect_store(&mut c, 0).await;
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_with_auth_plain_to_the_store() {
    let lab = lab(USERS);
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, "", "default:ReplayMechanism plain\n")).await;
    let user = lab.user_on(0);
    let mut c = Transcript::connect(mm.pop3).await;
    c.expect("+OK").await;
    // USER, PASS and STAT in one write: STAT belongs to the store.
    c.send_raw(format!("USER {}\r\nPASS {}\r\nSTAT\r\n", user.uid, user.password).as_bytes()).await;
    c.expect("+OK").await;
    c.expect("+OK").await;
    c.expect("+OK 1 ").await;
    c.send("QUIT").await;
    c.expect("+OK").await;
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_retrieves_each_users_mail_through_mailmux() {
    let lab = lab(USERS);
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldap, "", "")).await;
    for store in [0, 1] {
        let user = lab.user_on(store);
        let out = tokio::process::Command::new("curl")
            .args(["-sS", "--max-time", "20"])
            .arg(format!("pop3://{}/1", mm.pop3))
            .arg("-u")
            .arg(format!("{}:{}", user.uid, user.password))
            .output()
            .await
            .expect("curl is installed (apt-get install curl)");
        assert!(out.status.success(), "curl failed: {}", String::from_utf8_lossy(&out.stderr));
        let body = String::from_utf8_lossy(&out.stdout);
        assert!(body.contains(&marker_subject(STORE_NAMES[store])), "{body}");
    }
    mm.stop().await;
}
