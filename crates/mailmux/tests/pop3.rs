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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_see_the_client_address_by_xclient_unless_told_not_to() {
    let lab = lab(USERS);
    let user = lab.users.iter().rev().find(|u| u.store == 1).expect("a store B user").clone();
    let client_ip = std::net::IpAddr::from([127, 0, 0, 6]);
    let pop3_logins = |l: &str| l.contains("pop3-login:");
    let before = lab.stores[1].logins(&user.uid, pop3_logins).len();
    for (forward, expected_rip) in [(true, "rip=127.0.0.6"), (false, "rip=127.0.0.1")] {
        let extra = if forward { String::new() } else { "default:ForwardClientAddress no\n".to_owned() };
        let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, "", &extra)).await;
        let mut c = Transcript::connect_from(client_ip, mm.pop3).await;
        c.expect("+OK").await;
        c.send(&format!("USER {}", user.uid)).await;
        c.expect("+OK").await;
        c.send(&format!("PASS {}", user.password)).await;
        c.expect("+OK").await;
        c.send("QUIT").await;
        c.expect("+OK").await;
        mm.stop().await;
        let lines = lab.stores[1].wait_for_logins(&user.uid, before + if forward { 1 } else { 2 }, pop3_logins).await;
        let last = lines.last().expect("a login line");
        assert!(last.contains(expected_rip), "forward={forward}: {last}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_balancers_client_reaches_the_pop3_store_by_xclient() {
    let lab = lab(USERS);
    // 127.0.0.39 plays a load balancer speaking for 192.0.2.78.
    let cfg = "default:ProxyProtocolFrom 127.0.0.39\n";
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, "", cfg)).await;
    let user = lab.user_on(0);
    let mut c = Transcript::connect_from(std::net::IpAddr::from([127, 0, 0, 39]), mm.pop3).await;
    c.send_raw(format!("PROXY TCP4 192.0.2.78 127.0.0.1 50124 {}\r\n", mm.pop3.port()).as_bytes()).await;
    c.expect("+OK").await;
    // Through STLS-free AUTH PLAIN this time.
    c.send(&format!("AUTH PLAIN {}", user.sasl_plain())).await;
    c.expect("+OK").await;
    pop3_expect_store(&mut c, 0).await;
    lab.stores[0].wait_for_logins(&user.uid, 1, |l| l.contains("pop3-login:") && l.contains("rip=192.0.2.78")).await;
    mm.stop().await;
}
