//! Who gets in: `ConnLimits`, `TCPAccess` (by address and by host name), the user's own
//! `mailAllowedServiceAccess`, `BGExcluded`, and log lines that peers cannot forge.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use common::{Mailmux, MailmuxProcess, captured_logs, imap_expect_store, lab};
use mailmux_testkit::lab::{DirectoryKind, Lab};
use mailmux_testkit::transcript::Transcript;

const USERS: usize = 4;

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conn_limits_count_per_address() {
    let lab = lab(USERS);
    // The lab allows 100000 per address; this realm is more specific.
    let limits = "default:ConnLimits 0.0.0.0|0.0.0.0:100000,127.0.0.31|255.255.255.255:3\n";
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, limits, limits)).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = Transcript::connect_from(ip(31), mm.imap).await;
        c.expect("* OK").await;
        held.push(c);
    }
    let mut refused = Transcript::connect_from(ip(31), mm.imap).await;
    refused.expect("* BYE [UNAVAILABLE] Too many connections from your address").await;
    refused.expect_closed().await;
    // Another address, and another service from the same address, are not affected.
    let mut other = Transcript::connect_from(ip(32), mm.imap).await;
    other.expect("* OK").await;
    let mut pop = Transcript::connect_from(ip(31), mm.pop3).await;
    pop.expect("+OK").await;
    // A connection that ends gives its slot back, logged in or not.
    let user = lab.user_on(0);
    let mut first = held.remove(0);
    first.send(&format!("a LOGIN {} {}", user.uid, user.password)).await;
    first.expect("a OK").await;
    let mut fourth = Transcript::connect_from(ip(31), mm.imap).await;
    fourth.expect("* BYE [UNAVAILABLE]").await;
    drop(first);
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut again = Transcript::connect_from(ip(31), mm.imap).await;
    again.expect("* OK").await;
    mm.stop().await;
    assert!(captured_logs().contains("Connection limit reached for client IP 127.0.0.31"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_access_by_address_and_by_host_name() {
    let lab = lab(USERS);
    // 127.0.0.33 may not use IMAP; the host named "localhost" (127.0.0.1, confirmed by
    // /etc/hosts) may not use POP3; everybody else may use both.
    let rules = "default:TCPAccess \"-imap:127.0.0.33$-pop:localhost\"\n";
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, rules, rules)).await;
    let mut denied = Transcript::connect_from(ip(33), mm.imap).await;
    denied.expect("* BYE Access denied").await;
    denied.expect_closed().await;
    let mut allowed = Transcript::connect_from(ip(34), mm.imap).await;
    allowed.expect("* OK").await;
    let mut pop_33 = Transcript::connect_from(ip(33), mm.pop3).await;
    pop_33.expect("+OK").await;
    let mut pop_localhost = Transcript::connect_from(ip(1), mm.pop3).await;
    pop_localhost.expect("-ERR Access denied").await;
    pop_localhost.expect_closed().await;
    mm.stop().await;
    let logs = captured_logs();
    assert!(logs.contains("access denied by TCPAccess (rule 1)"), "{logs}");
    assert!(logs.contains("access denied by TCPAccess (rule 2)"), "{logs}");
}

/// The lab's LDIF with extra lines for some users.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_own_access_filter_is_applied_after_the_lookup() {
    let lab = lab(USERS);
    let pop_only = lab.user_on(0).clone();
    let garbled = lab.user_on(1).clone();
    let directory = ldif_with(
        lab,
        "access.ldif",
        &[
            (pop_only.uid.as_str(), "mailAllowedServiceAccess: +pop,pops:ALL"),
            (garbled.uid.as_str(), "mailAllowedServiceAccess: +imap"),
        ],
    );
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, &directory, &directory)).await;
    for user in [&pop_only, &garbled] {
        let mut c = Transcript::connect(mm.imap).await;
        c.expect("* OK").await;
        c.send(&format!("a LOGIN {} {}", user.uid, user.password)).await;
        c.expect("a NO [AUTHENTICATIONFAILED]").await;
    }
    let mut p = Transcript::connect(mm.pop3).await;
    p.expect("+OK").await;
    p.send(&format!("USER {}", pop_only.uid)).await;
    p.expect("+OK").await;
    p.send(&format!("PASS {}", pop_only.password)).await;
    p.expect("+OK").await;
    // A user without the attribute is not restricted.
    let free = lab.user_on(0).clone();
    let free = lab.users.iter().find(|u| u.store == 0 && u.uid != free.uid).expect("a second user on store A");
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    c.send(&format!("a LOGIN {} {}", free.uid, free.password)).await;
    c.expect("a OK").await;
    imap_expect_store(&mut c, 0).await;
    mm.stop().await;
    let logs = captured_logs();
    assert!(logs.contains("mailallowedserviceaccess of the user does not allow imap"), "{logs}");
    assert!(logs.contains("mailallowedserviceaccess cannot be read"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bgexcluded_addresses_are_never_penalised() {
    let lab = lab(USERS);
    let cfg = "default:BGPenalty 2\ndefault:BGExcluded 127.0.0.35|255.255.255.255\n";
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, cfg, "")).await;
    for (source, penalised) in [(ip(35), false), (ip(36), true)] {
        let mut c = Transcript::connect_from(source, mm.imap).await;
        c.expect("* OK").await;
        c.send("a LOGIN nosuchuser x").await;
        c.expect("a NO").await;
        let started = std::time::Instant::now();
        c.send("b LOGIN nosuchuser x").await;
        c.expect("b NO").await;
        let waited = started.elapsed() >= Duration::from_secs(2);
        assert_eq!(waited, penalised, "{source}: second attempt took {:?}", started.elapsed());
    }
    mm.stop().await;
    let logs = captured_logs();
    assert!(logs.contains("badguy 127.0.0.36 now has 2 badness"), "{logs}");
    assert!(!logs.contains("badguy 127.0.0.35"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_with_control_characters_cannot_forge_log_lines() {
    let lab = lab(USERS);
    let cfg = lab.write_config(DirectoryKind::Ldif, "", "");
    let mm = MailmuxProcess::start(&cfg, "").await;
    let forged = "2026-11-28T00:00:00.000000Z  INFO imap{id=999}: logged in user=admin";
    // A literal, a SASL PLAIN authcid and a bare CR (and a NUL) in a POP3 USER line: each
    // smuggles a line break into the name.
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    let name = format!("joe\r\n{forged}");
    c.send(&format!("a LOGIN {{{}}}", name.len())).await;
    c.expect("+").await;
    c.send(&format!("{name} pw")).await;
    c.expect("a NO [AUTHENTICATIONFAILED]").await;
    let plain = base64::engine::general_purpose::STANDARD.encode(format!("\0joe\n{forged}\0pw"));
    c.send(&format!("b AUTHENTICATE PLAIN {plain}")).await;
    c.expect("b NO [AUTHENTICATIONFAILED]").await;
    let mut p = Transcript::connect(mm.pop3).await;
    p.expect("+OK").await;
    p.send_raw(format!("USER joe\r{forged}\0\r\nPASS pw\r\n").as_bytes()).await;
    p.expect("+OK").await;
    p.expect("-ERR [AUTH]").await;
    p.send("QUIT").await;
    p.expect("+OK").await;
    c.send("z LOGOUT").await;
    c.expect("* BYE").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = std::fs::read_to_string(cfg.join("log/mailmux.log")).expect("log file");
    for line in log.lines() {
        // Every line is one of mailmux's: it starts with a timestamp of this year.
        assert!(line.starts_with("20") && line.as_bytes().get(4) == Some(&b'-'), "a foreign line: {line:?}");
        assert!(!line.contains('\0') && !line.contains('\r'), "a raw control character: {line:?}");
        assert!(!line.starts_with("2026-11-28T00:00:00"), "a forged line: {line:?}");
    }
    // The names are there, escaped.
    assert!(log.contains("joe\\r\\n2026-11-28T00:00:00.000000Z  INFO imap{id=999}: logged in user=admin"), "{log}");
    assert!(log.contains("joe\\n2026-11-28"), "{log}");
    assert!(log.contains("joe\\r2026-11-28T00:00:00.000000Z  INFO imap{id=999}: logged in user=admin\\u{0}"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_load_balancer_says_who_the_client_is() {
    let lab = lab(USERS);
    // 127.0.0.37 plays the load balancer; the client it speaks for is 192.0.2.77, which
    // TCPAccess lets in only for IMAP and ConnLimits allows one connection.
    let cfg = "default:ProxyProtocolFrom 127.0.0.37\n\
               default:ConnLimits 0.0.0.0|0.0.0.0:100000,192.0.2.77|255.255.255.255:1\n";
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, cfg, "")).await;
    let user = lab.user_on(0);
    let header = format!("PROXY TCP4 192.0.2.77 127.0.0.1 50123 {}\r\n", mm.imap.port());
    let mut c = Transcript::connect_from(ip(37), mm.imap).await;
    // Header and the first command in one write, as a load balancer passing a client through.
    c.send_raw(header.as_bytes()).await;
    c.expect("* OK").await;
    c.send(&format!("a LOGIN {} {}", user.uid, user.password)).await;
    c.expect("a OK").await;
    // The client's second connection through the balancer meets its ConnLimits.
    let mut second = Transcript::connect_from(ip(37), mm.imap).await;
    second.send_raw(header.as_bytes()).await;
    second.expect("* BYE [UNAVAILABLE] Too many connections from your address").await;
    // A header from anyone else is not believed: it is just a bad command.
    let mut liar = Transcript::connect_from(ip(38), mm.imap).await;
    liar.expect("* OK").await;
    liar.send_raw(header.as_bytes()).await;
    liar.expect("PROXY BAD").await;
    // The balancer without a header is refused.
    let mut bare = Transcript::connect_from(ip(37), mm.imap).await;
    bare.send("a NOOP").await;
    bare.expect_closed().await;
    // The store heard of the real client too (ID x-originating-ip).
    lab.stores[0].wait_for_logins(&user.uid, 1, |l| l.contains("rip=192.0.2.77")).await;
    mm.stop().await;
    let logs = captured_logs();
    assert!(logs.contains("client=192.0.2.77:50123"), "the session's lines carry the real client");
    assert!(logs.contains("connection from a trusted proxy closed"), "{logs}");
}
