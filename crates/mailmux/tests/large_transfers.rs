//! Large messages through the relay, over TLS toward the client and toward the store, with
//! clients that read slowly so that their receive windows fill up: every FETCH must complete,
//! every byte intact. (A TLS writer that is never flushed keeps the last records of a
//! response to itself; these tests hang without the relay's flush.)
//!
//! This binary has a lab of its own: the big messages it delivers would upset the
//! one-message mailboxes other tests expect.

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::Mailmux;
use mailmux_testkit::User;
use mailmux_testkit::lab::{DirectoryKind, Lab};
use mailmux_testkit::transcript::{Transcript, tls_connector};

/// The big message's size: large enough that a response takes many TLS records and many
/// fills of a receive window.
const MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// Concurrent connections.
const CONNECTIONS: usize = 8;
/// FETCHes of the big message per connection.
const FETCHES: usize = 2;
/// What a FETCH of the big message may take, slow reading included (about 0.3 s unloaded).
const FETCH_BOUND: Duration = Duration::from_secs(20);

/// The lab, and the big message delivered to every user as message 2. Users 1–4 fetch,
/// user 5 uploads.
fn lab() -> &'static (Lab, Vec<u8>) {
    static LAB: OnceLock<(Lab, Vec<u8>)> = OnceLock::new();
    common::capture_logs();
    LAB.get_or_init(|| {
        let lab = Lab::start(5, false);
        let message = big_message(MESSAGE_BYTES);
        for user in &lab.users {
            lab.stores[user.store].add_message(&user.uid, "1700000001.M2P1.big", &message);
        }
        (lab, message)
    })
}

/// A message of about `size` bytes: headers, then numbered 76-character lines, so that a
/// misplaced or missing chunk cannot go unnoticed.
fn big_message(size: usize) -> Vec<u8> {
    let mut m = b"From: postmaster@example.com\r\nSubject: big\r\nMessage-ID: <big@example.com>\r\n\r\n".to_vec();
    let mut n = 0u64;
    while m.len() < size {
        m.extend_from_slice(format!("{n:010} {:-<65}\r\n", "").as_bytes());
        n += 1;
    }
    m
}

async fn log_in(c: &mut Transcript, user: &User) {
    c.expect("* OK").await;
    c.send(&format!("l LOGIN {} {}", user.uid, user.password)).await;
    c.expect("l OK").await;
    c.send("s SELECT INBOX").await;
    c.until("s OK").await;
}

/// Fetches message 2 `FETCHES` times, reading it in 4 KiB pieces with a pause after each;
/// every FETCH must come back whole within [`FETCH_BOUND`].
async fn fetch_slowly(c: &mut Transcript, message: &[u8]) {
    for i in 0..FETCHES {
        let started = Instant::now();
        c.send(&format!("f{i} FETCH 2 BODY.PEEK[]")).await;
        let head = c.expect("* 2 FETCH (BODY[] {").await;
        let len: usize = head
            .trim_start_matches("* 2 FETCH (BODY[] {")
            .trim_end_matches('}')
            .parse()
            .unwrap_or_else(|_| c.fail("literal length"));
        assert_eq!(len, message.len(), "the store's size of the big message");
        let body = c.read_bytes(len, 4096, Duration::from_micros(200)).await;
        if body != message {
            c.fail("the message changed on the way");
        }
        c.expect(")").await;
        c.expect(&format!("f{i} OK")).await;
        let took = started.elapsed();
        assert!(took < FETCH_BOUND, "FETCH took {took:?}");
    }
    c.send("z LOGOUT").await;
    c.expect("* BYE").await;
}

/// Uploads the big message with APPEND (client → store) and checks the store's size of it.
async fn append(c: &mut Transcript, message: &[u8]) {
    c.send(&format!("a APPEND INBOX {{{}}}", message.len())).await;
    c.expect("+ ").await;
    c.send_raw(message).await;
    c.send("").await;
    let answer = c.until("a ").await;
    if !answer.last().is_some_and(|l| l.starts_with("a OK")) {
        c.fail("APPEND refused");
    }
    c.send("n NOOP").await;
    c.until("n OK").await;
    c.send("z LOGOUT").await;
    c.expect("* BYE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_large_fetches_over_tls_complete_with_slow_readers() {
    let (lab, message) = lab();
    let tls = tls_connector(&lab.ca.cert, None);
    let store_tls =
        format!("default:SSLBacksidePort {}\ndefault:SSLBacksideCAFile {}\n", lab.imaps_port, lab.ca.cert.display());
    // TLS toward the client only, then toward the store too.
    for extra in [String::new(), store_tls] {
        let cfg = lab.write_tls_config(DirectoryKind::Ldif, &extra, "");
        let mm = Mailmux::start(&cfg.dir).await;
        let addr = ([127, 0, 0, 1], cfg.imaps).into();
        let clients: Vec<_> = (0..CONNECTIONS)
            .map(|i| {
                let (tls, user, message) = (tls.clone(), lab.users[i % 4].clone(), message.clone());
                tokio::spawn(async move {
                    let mut c = Transcript::connect_tls_slow_link(addr, &tls, 16 * 1024).await;
                    log_in(&mut c, &user).await;
                    fetch_slowly(&mut c, &message).await;
                })
            })
            .collect();
        for client in clients {
            client.await.expect("every client got every FETCH whole");
        }
        mm.stop().await;
    }
}

/// Pre-login answers go through the same TLS writer: many pipelined commands whose answers
/// far exceed a slow client's window must all be answered, the last one included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_pre_login_answers_reach_a_slow_tls_client() {
    let (lab, _) = lab();
    let tls = tls_connector(&lab.ca.cert, None);
    let cfg = lab.write_tls_config(DirectoryKind::Ldif, "", "");
    let mm = Mailmux::start(&cfg.dir).await;
    let mut c = Transcript::connect_tls_slow_link(([127, 0, 0, 1], cfg.imaps).into(), &tls, 4096).await;
    c.expect("* OK").await;
    const COMMANDS: usize = 500;
    let pipelined: String = (0..COMMANDS).map(|i| format!("c{i} CAPABILITY\r\n")).collect();
    c.send_raw(pipelined.as_bytes()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..COMMANDS {
        c.expect("* CAPABILITY").await;
        c.expect(&format!("c{i} OK")).await;
    }
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_uploads_reach_a_tls_store_whole() {
    let (lab, message) = lab();
    let store_tls =
        format!("default:SSLBacksidePort {}\ndefault:SSLBacksideCAFile {}\n", lab.imaps_port, lab.ca.cert.display());
    let cfg = lab.write_config(DirectoryKind::Ldif, &store_tls, "");
    let mm = Mailmux::start(&cfg).await;
    let user = lab.users.last().expect("a user").clone();
    let mut c = Transcript::connect(mm.imap).await;
    log_in(&mut c, &user).await;
    append(&mut c, message).await;
    // The store has it whole: same size as sent.
    let mut c = Transcript::connect(mm.imap).await;
    log_in(&mut c, &user).await;
    c.send("r FETCH 3 RFC822.SIZE").await;
    c.expect(&format!("* 3 FETCH (RFC822.SIZE {})", message.len())).await;
    c.expect("r OK").await;
    mm.stop().await;
}
