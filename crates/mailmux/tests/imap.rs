//! IMAP logins through mailmux, against real slapd and Dovecot, written as transcripts.

mod common;

use common::{Mailmux, imap_expect_store, lab};
use mailmux_testkit::dovecot::marker_subject;
use mailmux_testkit::lab::{DirectoryKind, STORE_NAMES};
use mailmux_testkit::transcript::Transcript;

const USERS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_quoted_strings_reaches_each_users_store() {
    let lab = lab(USERS);
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldap, "", "")).await;
    for store in [0, 1] {
        let user = lab.user_on(store);
        let mut c = Transcript::connect(mm.imap).await;
        c.expect("* OK [CAPABILITY IMAP4rev1").await;
        c.send(&format!("a1 LOGIN \"{}\" \"{}\"", user.uid, user.password)).await;
        // The client's own tag carries the store's post-login capabilities.
        let ok = c.expect("a1 OK [CAPABILITY IMAP4rev1").await;
        assert!(ok.contains("IDLE"), "store capabilities expected: {ok}");
        imap_expect_store(&mut c, store).await;
    }
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_synchronising_and_non_synchronising_literals() {
    let lab = lab(USERS);
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldap, "", "")).await;
    let user = lab.user_on(1);
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    c.send(&format!("a1 LOGIN {{{}}}", user.uid.len())).await;
    c.expect("+ ").await;
    c.send(&format!("{} {{{}}}", user.uid, user.password.len())).await;
    c.expect("+ ").await;
    c.send(&user.password).await;
    c.expect("a1 OK").await;
    imap_expect_store(&mut c, 1).await;

    let user = lab.user_on(0);
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    c.send_raw(
        format!(
            "a1 LOGIN {{{}+}}\r\n{} {{{}+}}\r\n{}\r\n",
            user.uid.len(),
            user.uid,
            user.password.len(),
            user.password
        )
        .as_bytes(),
    )
    .await;
    c.expect("a1 OK").await;
    imap_expect_store(&mut c, 0).await;
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticate_plain_with_sasl_ir_and_with_continuation() {
    let lab = lab(USERS);
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldap, "", "")).await;

    let user = lab.user_on(0);
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    c.send(&format!("a1 AUTHENTICATE PLAIN {}", user.sasl_plain())).await;
    c.expect("a1 OK [CAPABILITY").await;
    imap_expect_store(&mut c, 0).await;

    let user = lab.user_on(1);
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    c.send("a1 AUTHENTICATE PLAIN").await;
    c.expect("+").await;
    c.send(&user.sasl_plain()).await;
    c.expect("a1 OK").await;
    imap_expect_store(&mut c, 1).await;
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticate_login_mechanism() {
    use base64::Engine;
    let lab = lab(USERS);
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldap, "", "")).await;
    let user = lab.user_on(1);
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    c.send("a1 AUTHENTICATE LOGIN").await;
    c.expect("+ VXNlcm5hbWU6").await;
    c.send(&b64(&user.uid)).await;
    c.expect("+ UGFzc3dvcmQ6").await;
    c.send(&b64(&user.password)).await;
    c.expect("a1 OK").await;
    imap_expect_store(&mut c, 1).await;
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_login_commands_then_login_with_pipelined_select() {
    let lab = lab(USERS);
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldap, "", "")).await;
    let user = lab.user_on(0);
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    c.send("c1 CAPABILITY").await;
    let caps = c.expect("* CAPABILITY ").await;
    assert!(caps.contains("AUTH=PLAIN") && caps.contains("SASL-IR") && caps.contains("LITERAL+"), "{caps}");
    c.expect("c1 OK").await;
    c.send("c2 NOOP").await;
    c.expect("c2 OK").await;
    c.send("c3 ID (\"name\" \"transcript\")").await;
    c.expect("* ID").await;
    c.expect("c3 OK").await;
    c.send("c4 SELECT INBOX").await;
    c.expect("c4 BAD").await;
    c.send("c5 AUTHENTICATE GSSAPI").await;
    c.expect("c5 NO").await;
    // LOGIN and SELECT in one write: the SELECT is the store's to answer.
    c.send_raw(format!("c6 LOGIN {} {}\r\nc7 SELECT INBOX\r\n", user.uid, user.password).as_bytes()).await;
    c.expect("c6 OK").await;
    let lines = c.until("c7 ").await;
    assert!(lines.iter().any(|l| l == "* 1 EXISTS"), "{}", c.transcript());
    assert!(lines.last().is_some_and(|l| l.starts_with("c7 OK")), "{}", c.transcript());
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldif_directory_routes_like_ldap() {
    let lab = lab(USERS);
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, "", "")).await;
    for store in [1, 0] {
        let user = lab.user_on(store);
        let mut c = Transcript::connect(mm.imap).await;
        c.expect("* OK").await;
        c.send(&format!("a1 LOGIN {} {}", user.uid, user.password)).await;
        c.expect("a1 OK").await;
        imap_expect_store(&mut c, store).await;
    }
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_fetches_each_users_mail_through_mailmux() {
    let lab = lab(USERS);
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldap, "", "")).await;
    for store in [0, 1] {
        let user = lab.user_on(store);
        let out = tokio::process::Command::new("curl")
            .args(["-sS", "--max-time", "20"])
            .arg(format!("imap://{}/INBOX;MAILINDEX=1", mm.imap))
            .arg("-u")
            .arg(format!("{}:{}", user.uid, user.password))
            .output()
            .await
            .expect("curl is installed (apt-get install curl)");
        let body = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "curl failed: {}", String::from_utf8_lossy(&out.stderr));
        assert!(body.contains(&marker_subject(STORE_NAMES[store])), "{body}");
    }
    // curl's AUTHENTICATE PLAIN path, and a refused login (curl exit 67).
    let user = lab.user_on(1);
    let plain = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "--login-options", "AUTH=PLAIN"])
        .arg(format!("imap://{}/INBOX;MAILINDEX=1", mm.imap))
        .arg("-u")
        .arg(format!("{}:{}", user.uid, user.password))
        .output()
        .await
        .expect("curl");
    assert!(String::from_utf8_lossy(&plain.stdout).contains(&marker_subject(STORE_NAMES[1])));
    let denied = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .arg(format!("imap://{}/INBOX;MAILINDEX=1", mm.imap))
        .args(["-u", "user1:wrong"])
        .status()
        .await
        .expect("curl");
    assert_eq!(denied.code(), Some(67), "login denied");
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listens_on_an_ipv6_address_from_service_list() {
    let lab = lab(USERS);
    let dir = lab.write_config(DirectoryKind::Ldif, "", "");
    std::fs::write(dir.join("AService.cfg"), "default:ServiceList imapproxy@[::1]:0 popproxy@127.0.0.1:0\n")
        .expect("write");
    let mm = Mailmux::start(&dir).await;
    assert!(mm.imap.is_ipv6(), "{}", mm.imap);
    let user = lab.user_on(1);
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    c.send(&format!("a1 LOGIN {} {}", user.uid, user.password)).await;
    c.expect("a1 OK").await;
    imap_expect_store(&mut c, 1).await;
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_files_and_override_default_lines() {
    let lab = lab(USERS);
    let dir =
        lab.write_config(DirectoryKind::Ldif, "east:Banner \"East entrance\"\nwest:Banner \"West entrance\"\n", "");
    for (instance, banner) in
        [(None, "mailmux IMAP proxy ready"), (Some("east"), "East entrance"), (Some("west"), "West entrance")]
    {
        let mm = Mailmux::start_instance(&dir, instance).await;
        let mut c = Transcript::connect(mm.imap).await;
        let greeting = c.expect("* OK").await;
        assert!(greeting.ends_with(banner), "{instance:?}: {greeting}");
        mm.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_see_the_client_address_unless_told_not_to() {
    let lab = lab(USERS);
    let user = lab.users.iter().rev().find(|u| u.store == 1).expect("a store B user").clone();
    let client_ip = std::net::IpAddr::from([127, 0, 0, 5]);
    let before = lab.stores[1].logins(&user.uid, |_| true).len();
    for (forward, expected_rip) in [(true, "rip=127.0.0.5"), (false, "rip=127.0.0.1")] {
        let extra = if forward { String::new() } else { "default:ForwardClientAddress no\n".to_owned() };
        let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, &extra, "")).await;
        let mut c = Transcript::connect_from(client_ip, mm.imap).await;
        c.expect("* OK").await;
        c.send(&format!("a1 LOGIN {} {}", user.uid, user.password)).await;
        c.expect("a1 OK").await;
        c.send("a2 LOGOUT").await;
        c.expect_closed().await;
        mm.stop().await;
        let lines = lab.stores[1].wait_for_logins(&user.uid, before + if forward { 1 } else { 2 }, |_| true).await;
        let last = lines.last().expect("a login line");
        assert!(last.contains(expected_rip), "forward={forward}: {last}");
    }
}
