//! Stopping with relayed sessions: SIGTERM to a `mailmux run` process with 100 logged-in
//! sessions (IMAP and POP3) that never end by themselves. mailmux lets them run until
//! `ShutdownTimeout` (2 s in the lab), then closes each in its protocol — IMAP clients read
//! `* BYE [UNAVAILABLE] Server shutting down` and then the end of the stream, POP3 clients the
//! end of the stream — and exits. The time from the signal to the exit is printed.

mod common;

use std::time::{Duration, Instant};

use common::{MailmuxProcess, lab};
use mailmux_testkit::lab::DirectoryKind;
use mailmux_testkit::transcript::Transcript;

const SESSIONS: usize = 100;
const USERS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_relayed_sessions_in_their_protocol_at_the_drain_deadline() {
    let lab = lab(USERS);
    let cfg = lab.write_config(DirectoryKind::Ldif, "", "");
    let mut mm = MailmuxProcess::start(&cfg, "").await;
    let mut imap = Vec::new();
    let mut pop3 = Vec::new();
    for i in 0..SESSIONS {
        let user = &lab.users[i % USERS];
        if i % 4 == 3 {
            let mut c = Transcript::connect(mm.pop3).await;
            c.expect("+OK").await;
            c.send(&format!("USER {}", user.uid)).await;
            c.expect("+OK").await;
            c.send(&format!("PASS {}", user.password)).await;
            c.expect("+OK").await;
            pop3.push(c);
        } else {
            let mut c = Transcript::connect(mm.imap).await;
            c.expect("* OK").await;
            c.send(&format!("a LOGIN {} {}", user.uid, user.password)).await;
            c.expect("a OK").await;
            imap.push(c);
        }
    }
    // Every session is relayed: a command goes through to the store.
    for c in &mut imap {
        c.send("n NOOP").await;
        c.until("n OK").await;
    }
    let signalled = Instant::now();
    let status = std::process::Command::new("kill").args(["-TERM", &mm.pid.to_string()]).status().expect("kill");
    assert!(status.success());
    for c in &mut imap {
        // Nothing from the store, then the goodbye, then the end.
        c.expect("* BYE [UNAVAILABLE] Server shutting down").await;
        c.expect_closed().await;
    }
    for c in &mut pop3 {
        c.expect_closed().await;
    }
    let closed = signalled.elapsed();
    let exit =
        tokio::time::timeout(Duration::from_secs(15), mm.child.wait()).await.expect("mailmux exits").expect("wait");
    let exited = signalled.elapsed();
    assert!(exit.success(), "{exit}");
    eprintln!(
        "SIGTERM with {SESSIONS} relayed sessions ({} IMAP, {} POP3): all closed after {closed:?}, exit after {exited:?}",
        imap.len(),
        pop3.len()
    );
    assert!(closed >= Duration::from_millis(1900), "sessions were cut before ShutdownTimeout: {closed:?}");
    assert!(exited < Duration::from_secs(6), "ShutdownTimeout 2 s, then at most 2 s to say goodbye: {exited:?}");
    let log = mm.log(&cfg);
    let drained = log.lines().filter(|l| l.contains("outcome=drain-deadline")).count();
    assert_eq!(drained, SESSIONS, "every session's summary line says why it ended");
}
