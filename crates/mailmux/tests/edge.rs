//! The pre-login edge against hostile clients: failed logins slowed per address and alike
//! in timing, pipelined guessing cut short, budgets that keep logged-in users working,
//! memory that stays flat whatever a client sends, and the descriptor limit.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::{Mailmux, MailmuxProcess, captured_logs, lab};
use mailmux_testkit::lab::DirectoryKind;
use mailmux_testkit::transcript::Transcript;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const USERS: usize = 4;

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// Logs in with LOGIN from `source`; returns the tagged answer and how long it took.
async fn timed_login(addr: SocketAddr, source: IpAddr, user: &str, password: &str) -> (String, Duration) {
    let mut c = Transcript::connect_from(source, addr).await;
    c.expect("* OK").await;
    let started = Instant::now();
    c.send(&format!("a LOGIN {user} {password}")).await;
    let answer = c.until("a ").await.pop().unwrap_or_default();
    (answer, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_look_alike_and_slow_down_only_their_address() {
    let lab = lab(USERS);
    // FailureDelay above Dovecot's own 2 s failure delay, which a wrong password pays.
    let cfg = lab.write_config(DirectoryKind::Ldif, "default:FailureDelay 3\ndefault:BGPenalty 1\n", "");
    let mm = Mailmux::start(&cfg).await;
    let user = lab.user_on(0);
    let (unknown, wrong) = tokio::join!(
        timed_login(mm.imap, ip(21), "nosuchuser", "Canary-Wrong-Pw"),
        timed_login(mm.imap, ip(22), &user.uid, "Canary-Wrong-Pw"),
    );
    assert_eq!(unknown.0, "a NO [AUTHENTICATIONFAILED] Authentication failed.");
    assert_eq!(wrong.0, unknown.0, "same answer");
    for (what, took) in [("unknown user", unknown.1), ("wrong password", wrong.1)] {
        assert!(took >= Duration::from_secs(3) && took < Duration::from_secs(4), "{what} took {took:?}");
    }
    let gap = unknown.1.abs_diff(wrong.1);
    assert!(gap < Duration::from_millis(300), "unknown user {:?} vs wrong password {:?}", unknown.1, wrong.1);

    // 127.0.0.21 now has 1 s of badness: its next attempt waits for it on top of the floor,
    // while another address logs in at once.
    let (again, other) = tokio::join!(
        timed_login(mm.imap, ip(21), "nosuchuser", "x"),
        timed_login(mm.imap, ip(23), &user.uid, &user.password)
    );
    assert!(again.1 >= Duration::from_secs(4), "the bad guy waited only {:?}", again.1);
    assert!(other.0.starts_with("a OK"), "{}", other.0);
    assert!(other.1 < Duration::from_secs(1), "an innocent address waited {:?}", other.1);
    mm.stop().await;
    let logs = captured_logs();
    assert!(logs.contains("badguy 127.0.0.21 now has 1 badness"), "{logs}");
    assert!(logs.contains("badguy 127.0.0.21 now has 2 badness"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_guessing_is_answered_in_turn_and_cut_off() {
    let lab = lab(USERS);
    let cfg = lab.write_config(DirectoryKind::Ldif, "default:MaxLoginFailures 3\n", "default:MaxLoginFailures 3\n");
    let mm = Mailmux::start(&cfg).await;
    // Unknown users: guessing at a store would make the store (Dovecot's own auth penalty
    // for mailmux's address) slow down every other test of this binary.
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    let guesses: String = (0..1000).map(|i| format!("g{i} LOGIN nosuchuser guess{i}\r\n")).collect();
    c.send_raw(guesses.as_bytes()).await;
    c.expect("g0 NO [AUTHENTICATIONFAILED]").await;
    c.expect("g1 NO [AUTHENTICATIONFAILED]").await;
    c.expect("* BYE Too many authentication failures").await;
    c.expect("g2 NO [AUTHENTICATIONFAILED]").await;
    c.expect_closed().await;

    let mut p = Transcript::connect(mm.pop3).await;
    p.expect("+OK").await;
    let guesses: String = (0..1000).map(|i| format!("USER nosuchuser\r\nPASS guess{i}\r\n")).collect();
    p.send_raw(guesses.as_bytes()).await;
    for _ in 0..2 {
        p.expect("+OK").await;
        p.expect("-ERR [AUTH] Authentication failed.").await;
    }
    p.expect("+OK").await;
    p.expect("-ERR [AUTH] Authentication failed; too many failures").await;
    p.expect_closed().await;
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_network_gets_its_share_of_the_prelogin_budget() {
    let lab = lab(USERS);
    let cfg = lab.write_config(DirectoryKind::Ldif, "", "");
    let aservice = cfg.join("AService.cfg");
    let text = std::fs::read_to_string(&aservice).expect("AService.cfg");
    std::fs::write(&aservice, text + "default:MaxPreLoginSessions 100\ndefault:MaxPreLoginPerNetwork 3\n")
        .expect("write AService.cfg");
    let mm = Mailmux::start(&cfg).await;
    // Three addresses of 127.0.0.0/24 (each well within ConnLimits) fill the network's share.
    let mut held = Vec::new();
    for last in [41, 42, 43] {
        let mut c = Transcript::connect_from(ip(last), mm.imap).await;
        c.expect("* OK").await;
        held.push(c);
    }
    let mut refused = Transcript::connect_from(ip(44), mm.imap).await;
    refused.expect("* BYE [UNAVAILABLE] Too many connections").await;
    // Logging in frees the network's slot.
    let user = lab.user_on(0);
    held[0].send(&format!("a LOGIN {} {}", user.uid, user.password)).await;
    held[0].expect("a OK").await;
    let mut again = Transcript::connect_from(ip(44), mm.imap).await;
    again.expect("* OK").await;
    mm.stop().await;
    assert!(captured_logs().contains("too many sessions before login from the client's network"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prelogin_budget_refuses_politely_and_spares_logged_in_users() {
    let lab = lab(USERS);
    let cfg = lab.write_config(DirectoryKind::Ldif, "", "");
    let aservice = cfg.join("AService.cfg");
    let text = std::fs::read_to_string(&aservice).expect("AService.cfg");
    // Every test client is in 127.0.0.0/24: the per-network share must not be the limit here.
    std::fs::write(&aservice, text + "default:MaxPreLoginSessions 5\ndefault:MaxPreLoginPerNetwork 5\n")
        .expect("write AService.cfg");
    let mm = Mailmux::start(&cfg).await;
    let user = lab.user_on(0);
    let mut logged_in = Transcript::connect(mm.imap).await;
    logged_in.expect("* OK").await;
    logged_in.send(&format!("a LOGIN {} {}", user.uid, user.password)).await;
    logged_in.expect("a OK").await;

    let mut idle = Vec::new();
    for _ in 0..5 {
        let mut c = Transcript::connect(mm.imap).await;
        c.expect("* OK").await;
        idle.push(c);
    }
    let mut refused = Transcript::connect(mm.imap).await;
    refused.expect("* BYE [UNAVAILABLE] Too many connections").await;
    refused.expect_closed().await;
    let mut refused = Transcript::connect(mm.pop3).await;
    refused.expect("-ERR [SYS/TEMP] Too many connections").await;
    refused.expect_closed().await;

    // The logged-in user is not part of the budget and keeps working.
    logged_in.send("b NOOP").await;
    logged_in.until("b OK").await;
    // One idle client leaves: a new one gets in.
    drop(idle.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    mm.stop().await;
}

/// Streams `pattern` (cycled, so the stream stays well-formed) to `addr` for `duration`, in
/// writes of a little over 64 KiB that end in the middle of whatever the pattern is, while
/// draining and discarding the answers.
async fn hostile_client(addr: SocketAddr, preamble: &'static [u8], pattern: &'static [u8], duration: Duration) {
    let Ok(stream) = tokio::net::TcpStream::connect(addr).await else { return };
    let (mut read, mut write) = stream.into_split();
    let drain = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        while matches!(read.read(&mut buf).await, Ok(n) if n > 0) {}
    });
    let mut stream = pattern.iter().copied().cycle();
    let started = Instant::now();
    if write.write_all(preamble).await.is_ok() {
        while started.elapsed() < duration {
            let chunk: Vec<u8> = stream.by_ref().take(64 * 1024 + 5).collect();
            if write.write_all(&chunk).await.is_err() {
                break;
            }
        }
    }
    drop(write);
    drain.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_flat_whatever_hostile_clients_send() {
    let lab = lab(USERS);
    let cfg = lab.write_config(DirectoryKind::Ldif, "", "");
    let mm = MailmuxProcess::start(&cfg, "").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = mm.rss_kib();
    let seconds = Duration::from_secs(3);
    // Four connections of each pattern at once.
    let patterns: [(SocketAddr, &'static [u8], &'static [u8]); 5] = [
        // Pipelined commands, each write ending mid-command: ~57 MB/s of growth before the fix.
        (mm.imap, b"", b"a NOOP\r\nb CAPABILITY\r\n"),
        // A non-synchronising literal that never ends.
        (mm.imap, b"a LOGIN joe {4000000000+}\r\n", b"x"),
        // Pipelined POP3 commands cut mid-line.
        (mm.pop3, b"", b"CAPA\r\nNOOP\r\n"),
        // A SASL exchange whose response keeps coming.
        (mm.imap, b"a AUTHENTICATE PLAIN\r\n", b"QUFBQUFB"),
        // ID with parameters, again and again.
        (mm.imap, b"", b"i ID (\"name\" \"hostile\" \"version\" \"1\")\r\n"),
    ];
    let mut clients = Vec::new();
    for (addr, preamble, pattern) in patterns {
        for _ in 0..4 {
            clients.push(tokio::spawn(hostile_client(addr, preamble, pattern, seconds)));
        }
    }
    let mut peak = before;
    let started = Instant::now();
    while started.elapsed() < seconds + Duration::from_millis(500) {
        peak = peak.max(mm.rss_kib());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for client in clients {
        let _ = client.await;
    }
    let growth = peak.saturating_sub(before);
    // 20 connections, each allowed at most a 64 KiB line and a 64 KiB command, plus the
    // allocator's slack: 16 MiB is generous, and far below what one connection took before.
    assert!(growth < 16 * 1024, "RSS grew by {growth} KiB (from {before} KiB)");
    // And mailmux still serves.
    let user = lab.user_on(0);
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    c.send(&format!("a LOGIN {} {}", user.uid, user.password)).await;
    c.expect("a OK").await;
    eprintln!("RSS before {before} KiB, peak {peak} KiB under 20 hostile connections for {seconds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_descriptor_limit_is_raised_and_sizes_the_session_limit() {
    let lab = lab(USERS);
    let cfg = lab.write_config(DirectoryKind::Ldif, "", "");
    let mm = MailmuxProcess::start(&cfg, "").await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", mm.pid)).expect("read /proc limits");
    let open_files = limits.lines().find(|l| l.starts_with("Max open files")).expect("Max open files");
    let fields: Vec<&str> = open_files.split_whitespace().collect();
    assert_eq!(fields[3], fields[4], "soft limit raised to the hard limit: {open_files}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = mm.log(&cfg);
    assert!(log.contains("open-files limit raised") && log.contains("session limits"), "{log}");
}
