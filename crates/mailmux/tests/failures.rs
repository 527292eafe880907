//! What clients see when a login cannot succeed, and that nothing leaks into logs.

mod common;

use common::{Mailmux, captured_logs, lab};
use mailmux_testkit::lab::{DirectoryKind, GHOST, NOHOST, SERVER_DOWN_ALERT};
use mailmux_testkit::transcript::Transcript;

const USERS: usize = 4;
const AUTH_FAILED: &str = "NO [AUTHENTICATIONFAILED] Authentication failed.";

/// Sends a LOGIN and returns the lines up to the tagged answer.
async fn imap_login(c: &mut Transcript, tag: &str, user: &str, password: &str) -> Vec<String> {
    c.send(&format!("{tag} LOGIN {user} {password}")).await;
    c.until(&format!("{tag} ")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_user_look_the_same_and_retry_works() {
    let lab = lab(USERS);
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldap, "", "")).await;
    let user = lab.user_on(0);
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    let wrong = imap_login(&mut c, "a1", &user.uid, "Canary-Wrong-Pw").await;
    let unknown = imap_login(&mut c, "a1", "nosuchuser", "Canary-Wrong-Pw").await;
    let nohost = imap_login(&mut c, "a1", NOHOST, "nohostpw").await;
    assert_eq!(wrong, vec![format!("a1 {AUTH_FAILED}")], "{}", c.transcript());
    assert_eq!(unknown, wrong, "unknown user must look like a wrong password");
    assert_eq!(nohost, wrong);
    // Same connection, right password.
    let ok = imap_login(&mut c, "a2", &user.uid, &user.password).await;
    assert!(ok.last().is_some_and(|l| l.starts_with("a2 OK")), "{}", c.transcript());
    c.send("a3 LOGOUT").await;
    c.expect("* BYE").await;

    let mut p = Transcript::connect(mm.pop3).await;
    p.expect("+OK").await;
    for (name, pw) in [(user.uid.as_str(), "Canary-Wrong-Pw"), ("nosuchuser", "Canary-Wrong-Pw")] {
        p.send(&format!("USER {name}")).await;
        p.expect("+OK").await;
        p.send(&format!("PASS {pw}")).await;
        assert_eq!(p.line().await, "-ERR [AUTH] Authentication failed.");
    }
    p.send(&format!("USER {}", user.uid)).await;
    p.expect("+OK").await;
    p.send(&format!("PASS {}", user.password)).await;
    p.expect("+OK").await;
    p.send("QUIT").await;
    p.expect("+OK").await;
    mm.stop().await;

    let logs = captured_logs();
    assert!(logs.contains("no such user"), "the log says why");
    assert!(!logs.contains("Canary-Wrong-Pw"), "a password reached the log");
    assert!(!logs.contains(&user.password), "a password reached the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_down_gives_unavailable_with_the_alert() {
    let lab = lab(USERS);
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldap, "", "")).await;
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    let lines = imap_login(&mut c, "a1", GHOST, "ghostpw").await;
    assert_eq!(
        lines,
        vec![
            format!("* NO [ALERT] {SERVER_DOWN_ALERT}"),
            "a1 NO [UNAVAILABLE] Mail service temporarily unavailable, try again later.".to_owned()
        ],
        "{}",
        c.transcript()
    );
    // The session is still usable.
    let user = lab.user_on(1);
    let ok = imap_login(&mut c, "a2", &user.uid, &user.password).await;
    assert!(ok.last().is_some_and(|l| l.starts_with("a2 OK")), "{}", c.transcript());

    let mut p = Transcript::connect(mm.pop3).await;
    p.expect("+OK").await;
    p.send(&format!("USER {GHOST}")).await;
    p.expect("+OK").await;
    p.send("PASS ghostpw").await;
    assert_eq!(p.line().await, format!("-ERR [SYS/TEMP] {SERVER_DOWN_ALERT}"));
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_down_is_temporary_never_a_wrong_password() {
    let lab = lab(USERS);
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Unreachable, "", "")).await;
    let user = lab.user_on(0);
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    let lines = imap_login(&mut c, "a1", &user.uid, &user.password).await;
    assert_eq!(
        lines.last().map(String::as_str),
        Some("a1 NO [UNAVAILABLE] Mail service temporarily unavailable, try again later."),
        "{}",
        c.transcript()
    );
    let mut p = Transcript::connect(mm.pop3).await;
    p.expect("+OK").await;
    p.send(&format!("USER {}", user.uid)).await;
    p.expect("+OK").await;
    p.send(&format!("PASS {}", user.password)).await;
    p.expect("-ERR [SYS/TEMP]").await;
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_is_answered_or_closed_and_the_listener_lives_on() {
    let lab = lab(USERS);
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, "", "")).await;
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    c.send_raw(b"\x00\xff\xfe garbage\r\n").await;
    c.expect("* BAD").await;
    c.send_raw(b"x LOGIN {99999999}\r\n").await;
    c.expect("x BAD").await;
    c.send_raw(&vec![b'A'; 70_000]).await;
    c.expect("* BYE").await;
    c.expect_closed().await;

    let mut p = Transcript::connect(mm.pop3).await;
    p.expect("+OK").await;
    p.send_raw(&vec![b'A'; 5_000]).await;
    p.expect("-ERR").await;
    p.expect_closed().await;

    // A client that never says anything does not stop others.
    let _silent = tokio::net::TcpStream::connect(mm.imap).await.expect("connect");
    let user = lab.user_on(0);
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    let ok = imap_login(&mut c, "a1", &user.uid, &user.password).await;
    assert!(ok.last().is_some_and(|l| l.starts_with("a1 OK")), "{}", c.transcript());
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_before_login_are_told_at_shutdown() {
    let lab = lab(USERS);
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, "", "")).await;
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    let mut p = Transcript::connect(mm.pop3).await;
    p.expect("+OK").await;
    mm.stop().await;
    c.expect("* BYE [UNAVAILABLE] Server shutting down").await;
    c.expect_closed().await;
    p.expect("-ERR [SYS/TEMP]").await;
    p.expect_closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_timeout_closes_idle_pre_login_sessions() {
    let lab = lab(USERS);
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, "default:PreAuthTimeout 1\n", "")).await;
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    c.expect("* BYE").await;
    c.expect_closed().await;
    mm.stop().await;
}
