//! Several hundred concurrent logins, each proven to land on its own store.
//!
//! The rate printed here is a smoke figure from a debug build sharing two cores with slapd
//! and two Dovecots; `bench/` holds the real measurements.

mod common;

use std::time::{Duration, Instant};

use common::{Mailmux, lab};
use mailmux_testkit::dovecot::marker_subject;
use mailmux_testkit::lab::{DirectoryKind, STORE_NAMES};
use mailmux_testkit::transcript::Transcript;

const IMAP_SESSIONS: usize = 300;
const POP3_SESSIONS: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_concurrent_logins_each_reach_the_right_store() {
    let lab = lab(IMAP_SESSIONS);
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldap, "", "")).await;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for user in lab.users.iter().take(IMAP_SESSIONS).cloned() {
        let addr = mm.imap;
        tasks.spawn(async move {
            let mut c = Transcript::connect(addr).await;
            c.expect("* OK").await;
            c.send(&format!("a1 LOGIN {} {}", user.uid, user.password)).await;
            c.expect("a1 OK").await;
            c.send("a3 SELECT INBOX").await;
            let lines = c.until("a3 ").await;
            assert!(lines.iter().any(|l| l == "* 1 EXISTS"), "{}", c.transcript());
            c.send("a4 FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]").await;
            let lines = c.until("a4 ").await;
            let subject = format!("Subject: {}", marker_subject(STORE_NAMES[user.store]));
            assert!(lines.contains(&subject), "{}", c.transcript());
            c.send("a5 LOGOUT").await;
            c.expect_closed().await;
        });
    }
    for user in lab.users.iter().take(POP3_SESSIONS).cloned() {
        let addr = mm.pop3;
        tasks.spawn(async move {
            let mut c = Transcript::connect(addr).await;
            c.expect("+OK").await;
            c.send(&format!("USER {}", user.uid)).await;
            c.expect("+OK").await;
            c.send(&format!("PASS {}", user.password)).await;
            c.expect("+OK").await;
            c.send("STAT").await;
            c.expect("+OK 1 ").await;
            c.send("QUIT").await;
            c.expect("+OK").await;
        });
    }
    let all = async {
        while let Some(result) = tasks.join_next().await {
            if let Err(e) = result {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(180), all).await.expect("sessions finished in time");
    let elapsed = started.elapsed();
    let total = IMAP_SESSIONS + POP3_SESSIONS;
    println!(
        "{total} concurrent sessions ({IMAP_SESSIONS} IMAP, {POP3_SESSIONS} POP3) in {:.2} s: {:.0} logins/s",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_queue_thousands_of_pending_connections() {
    // The accept queue must hold a reconnect storm; `ss` shows a listener's backlog as Send-Q.
    let lab = lab(IMAP_SESSIONS);
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, "", "")).await;
    for port in [mm.imap.port(), mm.pop3.port()] {
        let out = tokio::process::Command::new("ss")
            .args(["-ltnH", &format!("sport = :{port}")])
            .output()
            .await
            .expect("ss is installed (iproute2)");
        let text = String::from_utf8_lossy(&out.stdout);
        let send_q: Vec<u32> = text.lines().filter_map(|l| l.split_whitespace().nth(2)?.parse().ok()).collect();
        let expected = mailmux::listen::LISTEN_BACKLOG.min(somaxconn());
        assert_eq!(send_q, vec![expected], "{text}");
    }
    mm.stop().await;
}

fn somaxconn() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(4096)
}
